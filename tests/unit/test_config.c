/* test_config.c: unit tests of the command-line parser (src/server/config.c). Each call runs with
 * stdout and stderr captured into temporary files, so the tests can check what was printed. */
#include "unit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "config/config.h"

/* Bytes of captured output the tests look at. */
#define CAPTURE_BYTES 16384

typedef struct run {
    int rc;
    char out[CAPTURE_BYTES];
    char err[CAPTURE_BYTES];
} run_t;

/* Redirects fd to a fresh temporary file; returns the saved original and sets *tmp. */
static int redirect(int fd, FILE *stream, int *tmp) {
    char path[] = "/tmp/sigtracker-test-config.XXXXXX";
    fflush(stream);
    *tmp = mkstemp(path);
    assert_true(*tmp >= 0);
    unlink(path);
    int saved = dup(fd);
    assert_true(saved >= 0);
    assert_int_equal(dup2(*tmp, fd), fd);
    return saved;
}

static void restore(int fd, FILE *stream, int saved, int tmp, char *into) {
    fflush(stream);
    assert_int_equal(dup2(saved, fd), fd);
    close(saved);
    ssize_t n = pread(tmp, into, CAPTURE_BYTES - 1, 0);
    into[n > 0 ? n : 0] = '\0';
    close(tmp);
}

/* Parses argv (NULL-terminated, without argv[0]) on top of the defaults into *c. */
static void parse(config_t *c, run_t *r, const char *const *args) {
    /* config_parse takes char **, as main() does: hand it writable copies. */
    char *argv[64];
    int argc = 0;
    argv[argc++] = strdup("sigtracker");
    for (; *args; args++)
        argv[argc++] = strdup(*args);
    argv[argc] = NULL;
    config_defaults(c);
    int tout, terr;
    int sout = redirect(STDOUT_FILENO, stdout, &tout);
    int serr = redirect(STDERR_FILENO, stderr, &terr);
    r->rc = config_parse(c, argc, argv);
    restore(STDERR_FILENO, stderr, serr, terr, r->err);
    restore(STDOUT_FILENO, stdout, sout, tout, r->out);
    for (int i = 0; i < argc; i++)
        free(argv[i]);
}

/* Expects the arguments to be refused with -EINVAL and a message on stderr naming `needle`. */
static void expect_refused(const char *const *args, const char *needle) {
    config_t c;
    static run_t r;
    parse(&c, &r, args);
    if (r.rc != -EINVAL)
        fail_msg("%s...: got %d, expected -EINVAL", args[0], r.rc);
    if (r.err[0] == '\0')
        fail_msg("%s...: no message on stderr", args[0]);
    if (needle != NULL && strstr(r.err, needle) == NULL)
        fail_msg("%s...: stderr [%s] does not mention [%s]", args[0], r.err, needle);
    assert_int_equal(r.out[0], '\0');
}

static void test_defaults(void **state) {
    (void)state;
    config_t c;
    static run_t r;
    const char *args[] = {NULL};
    parse(&c, &r, args);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.err, "");
    assert_string_equal(r.out, "");
    assert_string_equal(c.host, "0.0.0.0");
    assert_int_equal(c.port, 8000);
    assert_string_equal(c.db_path, "./sigtracker.db");
    assert_int_equal(c.log_level, LOG_INFO);
    assert_int_equal(c.interval, 120);
    assert_int_equal(c.min_interval, 20);
    assert_int_equal(c.peer_timeout, 200);
    assert_int_equal(c.max_numwant, 50);
    assert_int_equal(c.default_numwant, 20);
    assert_int_equal(c.max_offers, 10);
    assert_int_equal(c.max_frame, 65536);
    assert_int_equal(c.max_message, 65536);
    assert_int_equal(c.max_json_depth, 16);
    assert_int_equal(c.max_connections, 0);
    assert_int_equal(c.max_per_ip, 1024);
    assert_int_equal(c.max_swarms, 256);
    assert_int_equal(c.max_outbuf, 262144);
    assert_int_equal(c.msg_rate, 50);
    assert_int_equal(c.msg_burst, 200);
    assert_int_equal(c.shed_high, 0);
    assert_int_equal(c.test_drop_offers, 0);
    assert_string_equal(c.origins, "");
    assert_string_equal(c.trusted_proxies, "");
    /* Defaults respect their own rules. */
    assert_true(c.min_interval <= c.interval);
    assert_true(c.default_numwant <= c.max_numwant);
}

static void test_port_forms(void **state) {
    (void)state;
    config_t c;
    static run_t r;
    const char *a1[] = {"--port", "9000", NULL};
    parse(&c, &r, a1);
    assert_int_equal(r.rc, 0);
    assert_int_equal(c.port, 9000);
    assert_string_equal(r.err, "");
    const char *a2[] = {"--port=9000", NULL};
    parse(&c, &r, a2);
    assert_int_equal(r.rc, 0);
    assert_int_equal(c.port, 9000);
    /* The range ends are accepted. */
    const char *a3[] = {"--port=1", NULL};
    parse(&c, &r, a3);
    assert_int_equal(r.rc, 0);
    assert_int_equal(c.port, 1);
    const char *a4[] = {"--port", "65535", NULL};
    parse(&c, &r, a4);
    assert_int_equal(r.rc, 0);
    assert_int_equal(c.port, 65535);
    /* The last occurrence wins. */
    const char *a5[] = {"--port", "1000", "--port=2000", NULL};
    parse(&c, &r, a5);
    assert_int_equal(r.rc, 0);
    assert_int_equal(c.port, 2000);
}

static void test_bad_numbers(void **state) {
    (void)state;
    const char *a[][3] = {
        {"--port", "0", NULL},
        {"--port", "65536", NULL},
        {"--port", "abc", NULL},
        {"--port", "-1", NULL},
        {"--port", "9000x", NULL},
        {"--port", "", NULL},
        {"--port=", NULL, NULL},
        {"--port", "99999999999999999999999", NULL},
        {"--port", "4294967297", NULL}, /* 2^32 + 1: must not wrap to 1 */
        {"--interval", "0", NULL},
        {"--max-frame", "124", NULL},
        {"--max-frame", "16777217", NULL},
        {"--max-json-depth", "1", NULL},
        {"--max-outbuf", "1023", NULL},
        {"--port", "1.5", NULL},
    };
    for (size_t i = 0; i < sizeof(a) / sizeof(a[0]); i++) {
        /* The message names the option. */
        char needle[64];
        const char *name = a[i][0] + 2;
        size_t n = strcspn(name, "=");
        snprintf(needle, sizeof(needle), "--%.*s", (int)n, name);
        expect_refused(a[i], needle);
    }
}

static void test_unknown_and_malformed(void **state) {
    (void)state;
    const char *a1[] = {"--no-such-option", NULL};
    expect_refused(a1, "no-such-option");
    const char *a2[] = {"--no-such-option=3", NULL};
    expect_refused(a2, "no-such-option");
    const char *a3[] = {"positional", NULL};
    expect_refused(a3, "positional");
    const char *a4[] = {"-p", "9000", NULL};
    expect_refused(a4, "-p");
    const char *a5[] = {"--", NULL};
    expect_refused(a5, NULL);
    /* A prefix of an option is not that option. */
    const char *a6[] = {"--por", "9000", NULL};
    expect_refused(a6, "--por");
    const char *a7[] = {"--portx", "9000", NULL};
    expect_refused(a7, "--portx");
    /* A value is required, and a flag takes none. */
    const char *a8[] = {"--port", NULL};
    expect_refused(a8, "--port");
    const char *a9[] = {"--test-drop-offers=1", NULL};
    expect_refused(a9, "--test-drop-offers");
    const char *a10[] = {"--log-level", "verbose", NULL};
    expect_refused(a10, "verbose");
}

static void test_strings_and_flags(void **state) {
    (void)state;
    config_t c;
    static run_t r;
    const char *a1[] = {"--host",
                        "::1",
                        "--db=/tmp/x.db",
                        "--log-level",
                        "debug",
                        "--test-drop-offers",
                        "--allow-origin",
                        "https://a.example,https://b",
                        NULL};
    parse(&c, &r, a1);
    assert_int_equal(r.rc, 0);
    assert_string_equal(c.host, "::1");
    assert_string_equal(c.db_path, "/tmp/x.db");
    assert_int_equal(c.log_level, LOG_DEBUG);
    assert_int_equal(c.test_drop_offers, 1);
    assert_string_equal(c.origins, "https://a.example,https://b");
    /* The longest host that fits (255 bytes) is accepted, one more is refused. */
    char host[300];
    memset(host, 'h', sizeof(host));
    host[255] = '\0';
    const char *a2[] = {"--host", host, NULL};
    parse(&c, &r, a2);
    assert_int_equal(r.rc, 0);
    assert_int_equal(strlen(c.host), 255);
    host[255] = 'h';
    host[256] = '\0';
    const char *a3[] = {"--host", host, NULL};
    expect_refused(a3, "--host");
}

static void test_help_and_version(void **state) {
    (void)state;
    config_t c;
    static run_t r;
    const char *a1[] = {"--help", NULL};
    parse(&c, &r, a1);
    assert_int_equal(r.rc, 1);
    assert_non_null(strstr(r.out, "usage: sigtracker"));
    assert_non_null(strstr(r.out, "--port"));
    assert_non_null(strstr(r.out, "(default 8000)"));
    assert_non_null(strstr(r.out, "--min-interval"));
    assert_string_equal(r.err, "");
    const char *a2[] = {"-h", NULL};
    parse(&c, &r, a2);
    assert_int_equal(r.rc, 1);
    assert_non_null(strstr(r.out, "usage: sigtracker"));
    /* --help wins over options after it, and valid options before it. */
    const char *a3[] = {"--port", "9000", "--help", "--bogus", NULL};
    parse(&c, &r, a3);
    assert_int_equal(r.rc, 1);
    const char *a4[] = {"--version", NULL};
    parse(&c, &r, a4);
    assert_int_equal(r.rc, 1);
    assert_non_null(strstr(r.out, "sigtracker"));
}

static void test_min_interval_rule(void **state) {
    (void)state;
    config_t c;
    static run_t r;
    const char *a1[] = {"--min-interval", "121", NULL}; /* default interval is 120 */
    expect_refused(a1, "--min-interval");
    const char *a2[] = {"--interval", "30", "--min-interval", "31", NULL};
    expect_refused(a2, "--min-interval");
    /* The rule is checked after all options, whatever their order. */
    const char *a3[] = {"--min-interval", "60", "--interval", "30", NULL};
    expect_refused(a3, "--min-interval");
    const char *a4[] = {"--min-interval", "300", "--interval", "300", NULL};
    parse(&c, &r, a4);
    assert_int_equal(r.rc, 0);
    assert_int_equal(c.interval, 300);
    assert_int_equal(c.min_interval, 300);
    const char *a5[] = {"--min-interval", "0", NULL};
    parse(&c, &r, a5);
    assert_int_equal(r.rc, 0);
    assert_int_equal(c.min_interval, 0);
}

static void test_numwant_clamp(void **state) {
    (void)state;
    config_t c;
    static run_t r;
    const char *a1[] = {"--max-numwant", "5", NULL};
    parse(&c, &r, a1);
    assert_int_equal(r.rc, 0);
    assert_int_equal(c.max_numwant, 5);
    assert_int_equal(c.default_numwant, 5);
    const char *a2[] = {"--max-numwant", "80", "--default-numwant", "30", NULL};
    parse(&c, &r, a2);
    assert_int_equal(r.rc, 0);
    assert_int_equal(c.default_numwant, 30);
}

static void test_usage_lists_every_option(void **state) {
    (void)state;
    config_t c;
    static run_t r;
    const char *a[] = {"--help", NULL};
    parse(&c, &r, a);
    static const char *const names[] = {
        "--host",        "--db",         "--log-level",    "--interval",      "--peer-timeout",
        "--max-numwant", "--max-offers", "--max-frame",    "--max-message",   "--max-per-ip",
        "--max-swarms",  "--shed-high",  "--allow-origin", "--trusted-proxy", "--test-drop-offers",
        "--version",
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strstr(r.out, names[i]) == NULL)
            fail_msg("--help does not mention %s", names[i]);
    /* Every option named in --help is accepted with a valid value (a round trip through the
     * table): spot-check a few numeric ones at the bottom of their ranges. */
    const char *ok[] = {"--max-connections=0", "--idle-timeout=0",    "--shed-min-seeders=0",
                        "--max-offers=0",      "--default-numwant=0", NULL};
    parse(&c, &r, ok);
    assert_int_equal(r.rc, 0);
}

/* --listen: repeatable ws:// and wss:// listeners; --host/--port make the one ws listener when
 * there is none; a wss listener needs both the certificate and the key. */
static void test_listen(void **state) {
    (void)state;
    config_t c;
    run_t r;
    parse(&c, &r, (const char *const[]){"--host", "127.0.0.1", "--port", "9000", NULL});
    assert_int_equal(r.rc, 0);
    assert_int_equal(c.nlisten, 1);
    assert_int_equal(c.listen[0].scheme, CONFIG_SCHEME_WS);
    assert_string_equal(c.listen[0].host, "127.0.0.1");
    assert_int_equal(c.listen[0].port, 9000);

    parse(&c, &r,
          (const char *const[]){"--listen", "ws://0.0.0.0:8000", "--listen=wss://[::1]:8443",
                                "--tls-cert", "c.pem", "--tls-key", "k.pem", NULL});
    assert_int_equal(r.rc, 0);
    assert_int_equal(c.nlisten, 2);
    assert_int_equal(c.listen[0].scheme, CONFIG_SCHEME_WS);
    assert_string_equal(c.listen[0].host, "0.0.0.0");
    assert_int_equal(c.listen[0].port, 8000);
    assert_int_equal(c.listen[1].scheme, CONFIG_SCHEME_WSS);
    assert_string_equal(c.listen[1].host, "::1");
    assert_int_equal(c.listen[1].port, 8443);
    assert_true(config_has_tls(&c));
    assert_string_equal(c.tls_cert, "c.pem");
    assert_string_equal(c.tls_key, "k.pem");

    parse(&c, &r, (const char *const[]){"--listen", "wss://0.0.0.0:8443", "--tls-cert", "c", NULL});
    assert_int_equal(r.rc, -EINVAL);
    assert_non_null(strstr(r.err, "needs both --tls-cert and --tls-key"));

    static const char *const bad[] = {"http://h:1",   "ws://h",      "ws://:80",  "ws://h:0",
                                      "ws://h:65536", "wss://[::1]", "ws://h:8x", NULL};
    for (const char *const *b = bad; *b; b++) {
        parse(&c, &r, (const char *const[]){"--listen", *b, NULL});
        assert_int_equal(r.rc, -EINVAL);
        assert_non_null(strstr(r.err, "--listen"));
    }
    parse(&c, &r, (const char *const[]){"--listen", NULL});
    assert_int_equal(r.rc, -EINVAL);

    const char *many[2 * CONFIG_MAX_LISTENERS + 3];
    int n = 0;
    for (int i = 0; i <= CONFIG_MAX_LISTENERS; i++) {
        many[n++] = "--listen";
        many[n++] = "ws://127.0.0.1:1";
    }
    many[n] = NULL;
    parse(&c, &r, many);
    assert_int_equal(r.rc, -EINVAL);
    assert_non_null(strstr(r.err, "at most"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_port_forms),
        cmocka_unit_test(test_bad_numbers),
        cmocka_unit_test(test_unknown_and_malformed),
        cmocka_unit_test(test_strings_and_flags),
        cmocka_unit_test(test_help_and_version),
        cmocka_unit_test(test_min_interval_rule),
        cmocka_unit_test(test_numwant_clamp),
        cmocka_unit_test(test_usage_lists_every_option),
        cmocka_unit_test(test_listen),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
