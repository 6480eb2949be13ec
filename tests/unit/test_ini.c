/* test_ini.c: unit tests of the INI parser (src/config/ini.c): what it reads, where it says a
 * line is wrong, and that ini_write_value writes what it reads back. */
#include "unit.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config/ini.h"

/* Entries one test collects. */
#define MAX_ENTRIES 32
/* Bytes kept of each name or value. */
#define TEXT_BYTES 128

typedef struct seen {
    int kind;
    unsigned line;
    char section[TEXT_BYTES];
    char key[TEXT_BYTES];
    char value[TEXT_BYTES];
    size_t value_len;
} seen_t;

typedef struct collect {
    seen_t e[MAX_ENTRIES];
    int n;
    int stop_at; /* return -42 from this entry (1-based), 0 never */
} collect_t;

static int on_entry(void *arg, const ini_entry_t *e) {
    collect_t *c = arg;
    assert_true(c->n < MAX_ENTRIES);
    seen_t *s = &c->e[c->n++];
    s->kind = e->kind;
    s->line = e->line;
    snprintf(s->section, sizeof(s->section), "%s", e->section);
    if (e->kind == INI_KEY) {
        snprintf(s->key, sizeof(s->key), "%s", e->key);
        snprintf(s->value, sizeof(s->value), "%s", e->value);
        s->value_len = e->value_len;
        assert_int_equal(strlen(e->value), e->value_len);
    } else {
        assert_null(e->key);
        assert_null(e->value);
    }
    return c->n == c->stop_at ? -42 : 0;
}

static int parse(const char *text, collect_t *c, ini_error_t *err) {
    memset(c, 0, sizeof(*c));
    err->line = 0;
    err->msg = NULL;
    return ini_parse(text, strlen(text), on_entry, c, err);
}

static void expect_key(const seen_t *s, unsigned line, const char *section, const char *key,
                       const char *value) {
    assert_int_equal(s->kind, INI_KEY);
    assert_int_equal(s->line, line);
    assert_string_equal(s->section, section);
    assert_string_equal(s->key, key);
    assert_string_equal(s->value, value);
}

/* Expects text to be refused at `line` with a reason containing `needle`. */
static void expect_error(const char *text, unsigned line, const char *needle) {
    collect_t c;
    ini_error_t err;
    int rc = parse(text, &c, &err);
    if (rc != -EINVAL)
        fail_msg("[%s]: got %d, expected -EINVAL", text, rc);
    assert_int_equal(err.line, line);
    assert_non_null(err.msg);
    if (strstr(err.msg, needle) == NULL)
        fail_msg("[%s]: reason [%s] does not mention [%s]", text, err.msg, needle);
}

static void test_basic(void **state) {
    (void)state;
    collect_t c;
    ini_error_t err;
    const char *text = "# a comment\n"
                       "; another\n"
                       "\n"
                       "top = 1\n"
                       "[limits]\n"
                       "  max-per-ip=20\n"
                       "msg-rate   =   5   \n"
                       "\t[ tracker ]\t# spaced header\n"
                       "interval = 60";
    assert_int_equal(parse(text, &c, &err), 0);
    assert_int_equal(c.n, 6);
    expect_key(&c.e[0], 4, "", "top", "1");
    assert_int_equal(c.e[1].kind, INI_SECTION);
    assert_int_equal(c.e[1].line, 5);
    assert_string_equal(c.e[1].section, "limits");
    expect_key(&c.e[2], 6, "limits", "max-per-ip", "20");
    expect_key(&c.e[3], 7, "limits", "msg-rate", "5");
    assert_int_equal(c.e[4].kind, INI_SECTION);
    assert_string_equal(c.e[4].section, "tracker");
    expect_key(&c.e[5], 9, "tracker", "interval", "60");
}

static void test_line_ends_and_bom(void **state) {
    (void)state;
    collect_t c;
    ini_error_t err;
    assert_int_equal(parse("\xef\xbb\xbf"
                           "a = 1\r\nb = 2\r\n\r\nc = 3\n",
                           &c, &err),
                     0);
    assert_int_equal(c.n, 3);
    expect_key(&c.e[0], 1, "", "a", "1");
    expect_key(&c.e[1], 2, "", "b", "2");
    expect_key(&c.e[2], 4, "", "c", "3");
    /* Empty input, and only comments, are fine. */
    assert_int_equal(parse("", &c, &err), 0);
    assert_int_equal(c.n, 0);
    assert_int_equal(parse("# x\n\n;y", &c, &err), 0);
    assert_int_equal(c.n, 0);
}

static void test_values(void **state) {
    (void)state;
    collect_t c;
    ini_error_t err;
    const char *text = "empty =\n"
                       "empty2 =    # only a comment\n"
                       "trail = value # comment\n"
                       "inner = a#b\n"
                       "hashstart=#x\n"
                       "spaces = a b  c\n"
                       "quoted = \"  x # y \"\n"
                       "esc = \"a\\\"b\\\\c\" # after\n"
                       "qempty = \"\"\n"
                       "semi = a;b\n"
                       "path = /var/lib/st db/x.db\n"
                       "eq = a=b\n";
    assert_int_equal(parse(text, &c, &err), 0);
    assert_int_equal(c.n, 12);
    expect_key(&c.e[0], 1, "", "empty", "");
    expect_key(&c.e[1], 2, "", "empty2", "");
    expect_key(&c.e[2], 3, "", "trail", "value");
    expect_key(&c.e[3], 4, "", "inner", "a#b");
    expect_key(&c.e[4], 5, "", "hashstart", "");
    expect_key(&c.e[5], 6, "", "spaces", "a b  c");
    expect_key(&c.e[6], 7, "", "quoted", "  x # y ");
    expect_key(&c.e[7], 8, "", "esc", "a\"b\\c");
    expect_key(&c.e[8], 9, "", "qempty", "");
    expect_key(&c.e[9], 10, "", "semi", "a;b");
    expect_key(&c.e[10], 11, "", "path", "/var/lib/st db/x.db");
    expect_key(&c.e[11], 12, "", "eq", "a=b");
}

static void test_errors(void **state) {
    (void)state;
    expect_error("a = 1\njust words\n", 2, "key = value");
    expect_error("a = 1\n= 3\n", 2, "invalid key");
    expect_error("bad key = 3\n", 1, "invalid key");
    expect_error("k\xc3\xa9y = 3\n", 1, "invalid key");
    expect_error("a = \"open\n", 1, "closing quote");
    expect_error("a = \"x\" y\n", 1, "after the closing quote");
    expect_error("a = \"x\\n\"\n", 1, "escape");
    expect_error("a = \"x\\\"\n", 1, "closing quote");
    expect_error("a = 1\nb = x\x01y\n", 2, "control character");
    expect_error("a = x\ry\n", 1, "control character");
    expect_error("[limits\n", 1, "closing ']'");
    expect_error("[]\n", 1, "invalid section");
    expect_error("[a b]\n", 1, "invalid section");
    expect_error("[a] b\n", 1, "after a section header");
    /* A NUL byte is a control character too (the input has a length, not a terminator). */
    collect_t c;
    ini_error_t err;
    static const char nul[] = "a = 1\nb = x\0y\n";
    memset(&c, 0, sizeof(c));
    assert_int_equal(ini_parse(nul, sizeof(nul) - 1, on_entry, &c, &err), -EINVAL);
    assert_int_equal(err.line, 2);
    /* The longest line is accepted, one byte more is not. */
    static char line[INI_MAX_LINE_BYTES + 16];
    memset(line, 'x', sizeof(line));
    memcpy(line, "k = ", 4);
    line[INI_MAX_LINE_BYTES] = '\0';
    assert_int_equal(parse(line, &c, &err), 0);
    line[INI_MAX_LINE_BYTES] = 'x';
    line[INI_MAX_LINE_BYTES + 1] = '\0';
    expect_error(line, 1, "too long");
    /* Names: the longest accepted, one more refused. */
    char name[INI_MAX_NAME_BYTES + 16];
    memset(name, 'n', INI_MAX_NAME_BYTES);
    strcpy(name + INI_MAX_NAME_BYTES, "=1");
    assert_int_equal(parse(name, &c, &err), 0);
    memset(name, 'n', INI_MAX_NAME_BYTES + 1);
    strcpy(name + INI_MAX_NAME_BYTES + 1, "=1");
    expect_error(name, 1, "invalid key");
}

static void test_callback_stops(void **state) {
    (void)state;
    collect_t c;
    ini_error_t err;
    memset(&c, 0, sizeof(c));
    c.stop_at = 2;
    err.line = 77;
    const char *text = "a=1\nb=2\nc=3\n";
    assert_int_equal(ini_parse(text, strlen(text), on_entry, &c, &err), -42);
    assert_int_equal(c.n, 2);
    assert_int_equal(err.line, 77); /* untouched: the callback's error is its own */
}

/* ini_write_value writes what ini_parse reads back exactly. */
static void test_write_value_round_trip(void **state) {
    (void)state;
    static const char *const values[] = {
        "",    "plain",   "a b",   " lead", "trail ", "\tx",   "#x",        "a #b",
        "a#b", "q\"uote", "b\\sl", "\"",    "\\",     "semi;", "/p/a th/x", "https://a#f",
    };
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        buf_t b = {0};
        buf_puts(&b, "k = ");
        ini_write_value(&b, values[i]);
        buf_puts(&b, " # trailing comment\n");
        collect_t c;
        ini_error_t err;
        memset(&c, 0, sizeof(c));
        int rc = ini_parse((const char *)b.data, b.len, on_entry, &c, &err);
        if (rc != 0)
            fail_msg("[%.*s]: %s", (int)b.len, (const char *)b.data, err.msg);
        assert_int_equal(c.n, 1);
        if (strcmp(c.e[0].value, values[i]) != 0)
            fail_msg("wrote [%s] as [%.*s], read back [%s]", values[i], (int)b.len,
                     (const char *)b.data, c.e[0].value);
        buf_dispose(&b);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),          cmocka_unit_test(test_line_ends_and_bom),
        cmocka_unit_test(test_values),         cmocka_unit_test(test_errors),
        cmocka_unit_test(test_callback_stops), cmocka_unit_test(test_write_value_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
