/* test_log.c: unit tests of the log line formatter (core/logfmt.c), the log rate limit
 * (limits/loglimit.c), the refusal codes (hub/refusal.c) and the console's URLs and page
 * (server/home.c). */
#include "unit.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/logfmt.h"
#include "hub/refusal.h"
#include "json/json.h"
#include "limits/loglimit.h"
#include "server/home.h"

/* 2026-12-04T23:59:59.123Z in unix milliseconds. */
#define TS_MS 1796428799123LL

static char line[LOGFMT_LINE_BYTES + 1];

static const char *fmt(int format, const char *msg, const logfmt_field_t *f, size_t n) {
    size_t len = logfmt_line(line, format, TS_MS, "info", msg, strlen(msg), f, n);
    assert_true(len <= LOGFMT_LINE_BYTES);
    line[len] = '\0';
    return line;
}

/* Every byte is printable ASCII but the one newline at the end. */
static void assert_one_line(const char *l) {
    size_t n = strlen(l);
    assert_true(n > 0);
    assert_int_equal(l[n - 1], '\n');
    for (size_t i = 0; i + 1 < n; i++)
        assert_true(l[i] >= 0x20 && l[i] < 0x7f);
}

static void assert_valid_json(const char *l) {
    static json_tok_t toks[256];
    int n = json_parse(l, strlen(l) - 1, toks, 256, 4);
    assert_true(n > 0);
    assert_int_equal(toks[0].type, JSON_OBJECT);
}

static void test_json_basic(void **state) {
    (void)state;
    logfmt_field_t f[] = {LOGFMT_S("addr", "127.0.0.1"), LOGFMT_U("open", 3)};
    assert_string_equal(fmt(LOGFMT_JSON, "connection opened", f, 2),
                        "{\"ts\":\"2026-12-04T23:59:59.123Z\",\"level\":\"info\","
                        "\"msg\":\"connection opened\",\"addr\":\"127.0.0.1\",\"open\":3}\n");
    assert_valid_json(line);
}

static void test_text_basic(void **state) {
    (void)state;
    logfmt_field_t f[] = {LOGFMT_S("addr", "127.0.0.1"), LOGFMT_U("open", 3),
                          LOGFMT_S("empty", "")};
    assert_string_equal(fmt(LOGFMT_TEXT, "connection opened", f, 3),
                        "ts=2026-12-04T23:59:59.123Z level=info msg=\"connection opened\" "
                        "addr=127.0.0.1 open=3 empty=\"\"\n");
}

static void test_escaping(void **state) {
    (void)state;
    static const uint8_t bytes[] = {0x00, '"', '\\', '\n', 0xff, 'a', '=', ' ', 0x7f, '\t'};
    logfmt_field_t f[] = {LOGFMT_B("peer", bytes, sizeof(bytes))};
    assert_string_equal(fmt(LOGFMT_JSON, "m", f, 1),
                        "{\"ts\":\"2026-12-04T23:59:59.123Z\",\"level\":\"info\",\"msg\":\"m\","
                        "\"peer\":\"\\u0000\\\"\\\\\\n\\u00ffa= \\u007f\\t\"}\n");
    assert_valid_json(line);
    assert_string_equal(fmt(LOGFMT_TEXT, "m", f, 1), "ts=2026-12-04T23:59:59.123Z level=info msg=m "
                                                     "peer=\"\\x00\\\"\\\\\\n\\xffa= \\x7f\\t\"\n");
    assert_one_line(line);
}

static void test_hex_and_keys(void **state) {
    (void)state;
    static const uint8_t id[] = {0x2d, 0x57, 0x57, 0x00, 0xff};
    logfmt_field_t f[] = {LOGFMT_X("peer", id, sizeof(id)), LOGFMT_S("bad key=\"", "v")};
    assert_string_equal(fmt(LOGFMT_TEXT, "m", f, 2),
                        "ts=2026-12-04T23:59:59.123Z level=info msg=m peer=2d575700ff "
                        "bad_key__=v\n");
    assert_string_equal(fmt(LOGFMT_JSON, "m", f, 2),
                        "{\"ts\":\"2026-12-04T23:59:59.123Z\",\"level\":\"info\",\"msg\":\"m\","
                        "\"peer\":\"2d575700ff\",\"bad key=\\\"\":\"v\"}\n");
    assert_valid_json(line);
}

static void test_truncation(void **state) {
    (void)state;
    static uint8_t big[3 * LOGFMT_LINE_BYTES];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 7); /* every byte value, most of them escaped */
    logfmt_field_t f[] = {LOGFMT_B("payload", big, sizeof(big)), LOGFMT_U("after", 1)};
    fmt(LOGFMT_JSON, "big", f, 2);
    assert_one_line(line);
    assert_valid_json(line);
    assert_non_null(strstr(line, ",\"truncated\":true}\n"));
    assert_null(strstr(line, "after"));
    fmt(LOGFMT_TEXT, "big", f, 2);
    assert_one_line(line);
    assert_non_null(strstr(line, "\" truncated=true\n"));
    /* A cut at every length: each line is still whole. */
    for (size_t n = LOGFMT_LINE_BYTES / 2; n < LOGFMT_LINE_BYTES; n += 3) {
        logfmt_field_t g[] = {LOGFMT_B("p", big, n), LOGFMT_S("tail", "x y")};
        fmt(LOGFMT_JSON, "cut", g, 2);
        assert_one_line(line);
        assert_valid_json(line);
        fmt(LOGFMT_TEXT, "cut", g, 2);
        assert_one_line(line);
    }
}

static void test_format_names(void **state) {
    (void)state;
    assert_int_equal(logfmt_parse("text"), LOGFMT_TEXT);
    assert_int_equal(logfmt_parse("json"), LOGFMT_JSON);
    assert_int_equal(logfmt_parse("xml"), -1);
    assert_string_equal(logfmt_name(LOGFMT_JSON), "json");
    assert_string_equal(logfmt_name(LOGFMT_TEXT), "text");
}

/* ---- loglimit -------------------------------------------------------------------------------- */

typedef struct seen {
    unsigned calls, kind, addresses;
    uint64_t suppressed;
} seen_t;

static void on_report(void *arg, unsigned kind, uint64_t suppressed, uint32_t addresses,
                      const uint8_t *top) {
    seen_t *s = arg;
    s->calls++;
    s->kind = kind;
    s->suppressed += suppressed;
    s->addresses += addresses;
    (void)top;
}

static void test_loglimit_per_address(void **state) {
    (void)state;
    static loglimit_t l;
    uint8_t a[16] = {0};
    loglimit_init(&l, 1000);
    unsigned allowed = 0;
    for (int i = 0; i < 1000; i++)
        allowed += (unsigned)loglimit_allow(&l, 3, 42, a, 1000);
    assert_int_equal(allowed, LOGLIMIT_ADDR_BURST);
    seen_t s = {0};
    loglimit_flush(&l, on_report, &s);
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.kind, 3);
    assert_int_equal(s.suppressed, 1000 - LOGLIMIT_ADDR_BURST);
    assert_int_equal(s.addresses, 1);
    /* Reported once: a second flush says nothing. */
    s = (seen_t){0};
    loglimit_flush(&l, on_report, &s);
    assert_int_equal(s.calls, 0);
    /* One second later the address has earned LOGLIMIT_ADDR_PER_SECOND lines. */
    allowed = 0;
    for (int i = 0; i < 100; i++)
        allowed += (unsigned)loglimit_allow(&l, 3, 42, a, 2000);
    assert_int_equal(allowed, LOGLIMIT_ADDR_PER_SECOND);
}

static void test_loglimit_per_kind(void **state) {
    (void)state;
    static loglimit_t l;
    loglimit_init(&l, 0);
    unsigned allowed = 0;
    /* Many addresses, one line each: the kind's bucket is what stops them. */
    for (uint32_t i = 0; i < 5000; i++) {
        uint8_t a[16] = {0};
        memcpy(a + 12, &i, 4);
        allowed += (unsigned)loglimit_allow(&l, 1, (uint64_t)i * 0x9e3779b97f4a7c15ULL, a, 5);
    }
    assert_true(allowed <= LOGLIMIT_KIND_BURST);
    seen_t s = {0};
    loglimit_flush(&l, on_report, &s);
    assert_int_equal(s.suppressed, 5000 - allowed);
    /* Another kind has its own budget. */
    uint8_t a[16] = {1};
    assert_int_equal(loglimit_allow(&l, 2, 7, a, 5), 1);
}

static void test_refusal_names(void **state) {
    (void)state;
    for (int i = 0; i < REFUSAL_COUNT; i++)
        assert_int_equal(refusal_parse(refusal_name(i)), i);
    assert_string_equal(refusal_name(REFUSAL_BAD_JSON), "bad_json");
    assert_string_equal(refusal_name(REFUSAL_COUNT), "?");
    assert_int_equal(refusal_parse("nope"), -1);
}

static void test_home_urls(void **state) {
    (void)state;
    char u[128];
    home_base_url("ws", "0.0.0.0", 8000, u, sizeof(u));
    assert_string_equal(u, "ws://localhost:8000");
    home_base_url("http", "::", 80, u, sizeof(u));
    assert_string_equal(u, "http://localhost:80");
    home_base_url("http", "::1", 8000, u, sizeof(u));
    assert_string_equal(u, "http://[::1]:8000");
    home_base_url("wss", "tracker.example", 443, u, sizeof(u));
    assert_string_equal(u, "wss://tracker.example:443");
    /* The page is one document, every link to an endpoint the listener serves. */
    buf_t b = {0};
    home_write_html(NULL, 1, &b);
    buf_append(&b, "", 1);
    const char *page = (const char *)b.data;
    assert_true(strncmp(page, "<!DOCTYPE html>", 15) == 0);
    assert_non_null(strstr(page, "<a href=\"/health\">"));
    assert_non_null(strstr(page, "<a href=\"/stats.json\">"));
    assert_non_null(strstr(page, "<a href=\"/metrics\">"));
    assert_non_null(strstr(page, "<a href=\"/dashboard\">"));
    assert_non_null(strstr(page, "</html>\n"));
    buf_dispose(&b);
    /* Where monitoring is not served (public port with --admin-listen), only /health is linked. */
    home_write_html(NULL, 0, &b);
    buf_append(&b, "", 1);
    page = (const char *)b.data;
    assert_non_null(strstr(page, "<a href=\"/health\">"));
    assert_null(strstr(page, "/stats.json"));
    assert_null(strstr(page, "/metrics"));
    assert_null(strstr(page, "/dashboard"));
    buf_dispose(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_basic),
        cmocka_unit_test(test_text_basic),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_hex_and_keys),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_format_names),
        cmocka_unit_test(test_loglimit_per_address),
        cmocka_unit_test(test_loglimit_per_kind),
        cmocka_unit_test(test_refusal_names),
        cmocka_unit_test(test_home_urls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
