/* test_config.c: unit tests of the configuration (src/config/config.c): the command line, the
 * configuration file on top of the defaults and under the command line, the errors (which name
 * the flag, or the file, line and key), repeatable --listen, --print-config's round trip, and
 * what a reload keeps. Calls that print run with stdout and stderr captured into temporary
 * files, so the tests can check what was printed. */
#include "unit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
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

/* ---- the configuration file ---------------------------------------------------------------- */

/* Bytes of an error message the tests look at. */
#define ERR_BYTES 8192

/* Loads `text` as the file "t.conf" under the command line args (NULL-terminated, without
 * argv[0]). Returns what config_load_buffer returns; err holds its message. */
static int load_text(config_t *c, const char *text, const char *const *args, char *err) {
    static char *argv[64];
    static char storage[64][256];
    int argc = 0;
    argv[argc++] = strcpy(storage[0], "sigtracker");
    for (; args != NULL && *args; args++, argc++)
        argv[argc] = strcpy(storage[argc], *args);
    argv[argc] = NULL;
    err[0] = '\0';
    return config_load_buffer(c, "t.conf", text, text ? strlen(text) : 0, argc, argv, err,
                              ERR_BYTES);
}

/* Expects text (with args) to be refused, with a message containing every needle. */
static void expect_file_refused(const char *text, const char *const *args, const char *n1,
                                const char *n2) {
    static config_t c;
    char err[ERR_BYTES];
    int rc = load_text(&c, text, args, err);
    if (rc != -EINVAL)
        fail_msg("[%s]: got %d, expected -EINVAL", text, rc);
    if (n1 != NULL && strstr(err, n1) == NULL)
        fail_msg("[%s]: error [%s] does not mention [%s]", text, err, n1);
    if (n2 != NULL && strstr(err, n2) == NULL)
        fail_msg("[%s]: error [%s] does not mention [%s]", text, err, n2);
}

static void test_file_values_and_overrides(void **state) {
    (void)state;
    static config_t c;
    char err[ERR_BYTES];
    const char *text = "# a comment\n"
                       "max-per-ip = 20   # per address\n"
                       "[limits]\n"
                       "msg-rate=5\n"
                       "allow-origin = \"https://a.example#frag\"\n"
                       "[network]\n"
                       "reuse-port = yes\n"
                       "[logging]\n"
                       "log-level = debug\n"
                       "[access]\n"
                       "denylist = /etc/deny.txt\n";
    assert_int_equal(load_text(&c, text, NULL, err), 0);
    assert_string_equal(err, "");
    assert_int_equal(c.max_per_ip, 20);
    assert_int_equal(c.msg_rate, 5);
    assert_string_equal(c.origins, "https://a.example#frag");
    assert_int_equal(c.reuse_port, 1);
    assert_int_equal(c.log_level, LOG_DEBUG);
    assert_string_equal(c.denylist, "/etc/deny.txt");
    assert_int_equal(c.port, 8000); /* untouched keys keep their defaults */
    /* The command line overrides the file, key by key; --no-X turns a file's boolean off. */
    const char *args[] = {"--msg-rate", "9", "--no-reuse-port", "--denylist=", "--port=9001", NULL};
    assert_int_equal(load_text(&c, text, args, err), 0);
    assert_int_equal(c.msg_rate, 9);
    assert_int_equal(c.reuse_port, 0);
    assert_string_equal(c.denylist, "");
    assert_int_equal(c.max_per_ip, 20);
    assert_int_equal(c.port, 9001);
    assert_int_equal(c.listeners[0].port, 9001);
    /* Without a file, only the flags count. */
    assert_int_equal(load_text(&c, NULL, args, err), 0);
    assert_int_equal(c.max_per_ip, 1024);
    assert_int_equal(c.msg_rate, 9);
}

static void test_file_errors(void **state) {
    (void)state;
    expect_file_refused("port = 9000\nno-such-key = 3\n", NULL, "t.conf:2:", "no-such-key");
    expect_file_refused("\n\nmax-per-ip = many\n", NULL, "t.conf:3: key max-per-ip", "many");
    expect_file_refused("max-per-ip = -1\n", NULL, "t.conf:1: key max-per-ip", "0 to 10000000");
    expect_file_refused("port = 70000\n", NULL, "t.conf:1: key port", "65535");
    expect_file_refused("reuse-port = maybe\n", NULL, "t.conf:1: key reuse-port", "true or false");
    expect_file_refused("log-level = loud\n", NULL, "t.conf:1: key log-level", "loud");
    expect_file_refused("[tracker]\nmax-per-ip = 3\n", NULL, "t.conf:2: key max-per-ip",
                        "section [limits], not [tracker]");
    expect_file_refused("[nowhere]\n", NULL, "t.conf:1:", "unknown section [nowhere]");
    expect_file_refused("port = 1\nport = 2\n", NULL, "t.conf:2: key port",
                        "already set on line 1");
    expect_file_refused("config = other.conf\n", NULL, "t.conf:1: key config", "command line");
    expect_file_refused("print-config = true\n", NULL, "t.conf:1: key print-config", NULL);
    expect_file_refused("port 9000\n", NULL, "t.conf:1:", "key = value");
    expect_file_refused("allow-origin = \"open\n", NULL, "t.conf:1:", "quote");
    expect_file_refused("interval = 10\n", NULL, "t.conf:1: key interval", "min-interval");
    expect_file_refused("interval = 60\nmin-interval = 61\n", NULL, "t.conf:2: key min-interval",
                        "must not exceed interval (60)");
    expect_file_refused("allowlist = a.txt\ndenylist = d.txt\n", NULL, "t.conf:2: key denylist",
                        "cannot both be set");
    const char *deny[] = {"--denylist", "d.txt", NULL};
    expect_file_refused("allowlist = a.txt\n", deny, "--denylist", "cannot both be set");
    expect_file_refused("tls-cert = c.pem\n", NULL, "t.conf:1: key tls-cert", "tls-key");
    expect_file_refused("tls-key = k.pem\n", NULL, "t.conf:1: key tls-key", "tls-cert");
    expect_file_refused("listen = ws://a:1\nlisten = wss://b:2\nlisten = ws://c:3\n", NULL,
                        "t.conf:2: key listen", "wss://b:2 needs tls-cert and tls-key");
    expect_file_refused("listen = http://a:1\n", NULL, "t.conf:1: key listen", "ws://");
    expect_file_refused("allow-origin = a\tb\n", NULL, "t.conf:1: key allow-origin", "control");
    /* A bad flag is reported as a flag, even when the file is wrong too. */
    const char *bad[] = {"--port", "x", NULL};
    expect_file_refused("nope = 1\n", bad, "--port wants", NULL);
}

static void test_booleans(void **state) {
    (void)state;
    static config_t c;
    char err[ERR_BYTES];
    static const char *const yes[] = {"true", "yes", "1", "TRUE", "Yes"};
    static const char *const no[] = {"false", "no", "0", "False", "NO"};
    char text[64];
    for (size_t i = 0; i < 5; i++) {
        snprintf(text, sizeof(text), "test-drop-offers = %s\n", yes[i]);
        assert_int_equal(load_text(&c, text, NULL, err), 0);
        assert_int_equal(c.test_drop_offers, 1);
        snprintf(text, sizeof(text), "test-drop-offers = %s\n", no[i]);
        assert_int_equal(load_text(&c, text, NULL, err), 0);
        assert_int_equal(c.test_drop_offers, 0);
    }
    /* The command line: a bare flag sets, --no-flag clears, and neither takes a value. */
    const char *on[] = {"--test-drop-offers", NULL};
    assert_int_equal(load_text(&c, "test-drop-offers = no\n", on, err), 0);
    assert_int_equal(c.test_drop_offers, 1);
    const char *off[] = {"--no-test-drop-offers", NULL};
    assert_int_equal(load_text(&c, "test-drop-offers = yes\n", off, err), 0);
    assert_int_equal(c.test_drop_offers, 0);
    const char *bad[] = {"--no-test-drop-offers=1", NULL};
    expect_file_refused(NULL, bad, "--no-test-drop-offers takes no value", NULL);
    const char *notbool[] = {"--no-port", NULL};
    expect_file_refused(NULL, notbool, "unknown option", NULL);
}

/* --admin-listen takes HOST:PORT; it turns the public port's metrics off unless
 * --public-metrics says otherwise, in the file or on the command line. */
static void test_admin_listen(void **state) {
    (void)state;
    static config_t c;
    char err[ERR_BYTES];
    assert_int_equal(load_text(&c, NULL, NULL, err), 0);
    assert_int_equal(c.public_metrics, 1);
    assert_string_equal(c.admin_listen, "");
    const char *a[] = {"--admin-listen", "127.0.0.1:9100", NULL};
    assert_int_equal(load_text(&c, NULL, a, err), 0);
    assert_string_equal(c.admin_listen, "127.0.0.1:9100");
    assert_int_equal(c.public_metrics, 0);
    const char *both[] = {"--admin-listen", "[::1]:9100", "--public-metrics", NULL};
    assert_int_equal(load_text(&c, NULL, both, err), 0);
    assert_int_equal(c.public_metrics, 1);
    assert_int_equal(load_text(&c, "admin-listen = 127.0.0.1:1\npublic-metrics = yes\n", NULL, err),
                     0);
    assert_int_equal(c.public_metrics, 1);
    const char *off[] = {"--no-public-metrics", NULL};
    assert_int_equal(load_text(&c, NULL, off, err), 0);
    assert_int_equal(c.public_metrics, 0);
    const char *bad[] = {"--admin-listen", "127.0.0.1", NULL};
    assert_int_equal(load_text(&c, NULL, bad, err), -EINVAL);
    assert_non_null(strstr(err, "admin-listen"));
    const char *bad2[] = {"--admin-listen", "127.0.0.1:0", NULL};
    assert_int_equal(load_text(&c, NULL, bad2, err), -EINVAL);
    /* A reload keeps the running admin-listen, and the default of public-metrics follows it. */
    static config_t running, next;
    assert_int_equal(load_text(&running, NULL, NULL, err), 0);
    assert_int_equal(load_text(&next, "admin-listen = 127.0.0.1:9100\n", NULL, err), 0);
    assert_int_equal(next.public_metrics, 0);
    config_reload_merge(&running, &next, NULL, NULL);
    assert_string_equal(next.admin_listen, "");
    assert_int_equal(next.public_metrics, 1);
    assert_int_equal(load_text(&running, "admin-listen = 127.0.0.1:9100\n", NULL, err), 0);
    assert_int_equal(load_text(&next, NULL, NULL, err), 0);
    config_reload_merge(&running, &next, NULL, NULL);
    assert_int_equal(next.public_metrics, 0);
    assert_int_equal(load_text(&next, "public-metrics = true\n", NULL, err), 0);
    config_reload_merge(&running, &next, NULL, NULL);
    assert_int_equal(next.public_metrics, 1);
}

static void test_listen(void **state) {
    (void)state;
    static config_t c;
    char err[ERR_BYTES];
    /* Without --listen, host and port make the one ws:// listener. */
    const char *hp[] = {"--host", "::1", "--port", "9100", NULL};
    assert_int_equal(load_text(&c, NULL, hp, err), 0);
    assert_int_equal(c.listen_given, 0);
    assert_int_equal(c.nlisteners, 1);
    assert_int_equal(c.listeners[0].scheme, CONFIG_WS);
    assert_string_equal(c.listeners[0].host, "::1");
    assert_int_equal(c.listeners[0].port, 9100);
    /* A repeated key in the file appends. */
    const char *file = "tls-cert = c.pem\ntls-key = k.pem\n"
                       "listen = ws://0.0.0.0:80\n"
                       "listen = wss://[::]:443/\n"
                       "listen = WS://tracker.example:8000\n";
    assert_int_equal(load_text(&c, file, NULL, err), 0);
    assert_int_equal(c.listen_given, 1);
    assert_int_equal(c.nlisteners, 3);
    assert_int_equal(c.listeners[1].scheme, CONFIG_WSS);
    assert_string_equal(c.listeners[1].host, "::");
    assert_int_equal(c.listeners[1].port, 443);
    assert_string_equal(c.listeners[2].host, "tracker.example");
    /* The command line's list, when given, replaces the file's; several flags append. */
    const char *cli[] = {"--listen", "ws://127.0.0.1:9000", "--listen=wss://[::1]:9443", NULL};
    assert_int_equal(load_text(&c, file, cli, err), 0);
    assert_int_equal(c.nlisteners, 2);
    assert_string_equal(c.listeners[0].host, "127.0.0.1");
    assert_int_equal(c.listeners[1].port, 9443);
    char url[CONFIG_HOST_BYTES + 32];
    config_listen_format(&c.listeners[1], url, sizeof(url));
    assert_string_equal(url, "wss://[::1]:9443");
    /* At most CONFIG_MAX_LISTENERS, each once. */
    char many[CONFIG_MAX_LISTENERS * 40 + 64] = "";
    for (int i = 0; i <= CONFIG_MAX_LISTENERS; i++) {
        char line[40];
        snprintf(line, sizeof(line), "listen = ws://h:%d\n", 1000 + i);
        strcat(many, line);
    }
    char where[32];
    snprintf(where, sizeof(where), "t.conf:%d: key listen", CONFIG_MAX_LISTENERS + 1);
    expect_file_refused(many, NULL, where, "CONFIG_MAX_LISTENERS");
    expect_file_refused("listen = ws://h:1\nlisten = ws://h:1/\n", NULL, "t.conf:2: key listen",
                        "twice");
}

static void test_listen_urls(void **state) {
    (void)state;
    static const struct {
        const char *url;
        int scheme;
        const char *host;
        unsigned port;
    } good[] = {
        {"ws://0.0.0.0:8000", CONFIG_WS, "0.0.0.0", 8000},
        {"wss://[::]:443", CONFIG_WSS, "::", 443},
        {"ws://[2001:db8::1]:1/", CONFIG_WS, "2001:db8::1", 1},
        {"wss://tracker.example.org:65535", CONFIG_WSS, "tracker.example.org", 65535},
        {"Ws://localhost:9", CONFIG_WS, "localhost", 9},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        config_listener_t l;
        const char *why = NULL;
        if (config_listen_parse(good[i].url, &l, &why) != 0)
            fail_msg("%s refused: %s", good[i].url, why);
        assert_int_equal(l.scheme, good[i].scheme);
        assert_string_equal(l.host, good[i].host);
        assert_int_equal(l.port, good[i].port);
        /* Formatting and parsing again gives the same listener. */
        char url[CONFIG_HOST_BYTES + 32];
        config_listen_format(&l, url, sizeof(url));
        config_listener_t again;
        assert_int_equal(config_listen_parse(url, &again, &why), 0);
        assert_memory_equal(&l, &again, sizeof(l));
    }
    static const char *const bad[] = {
        "",
        "ws://",
        "ws://:80",
        "http://a:80",
        "ws://a",
        "ws://a:",
        "ws://a:0",
        "ws://a:65536",
        "ws://a:123456",
        "ws://a:80/path",
        "ws://a:80x",
        "ws://::1:80",
        "ws://[::1:80",
        "ws://[]:80",
        "ws://[1.2.3.4]:80",
        "ws://[::1]80",
        "ws://a b:80",
        "ws://a_b:80",
        "ws://user@a:80",
        "ws://a:+80",
        "ws://a:-1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        config_listener_t l;
        const char *why = NULL;
        if (config_listen_parse(bad[i], &l, &why) == 0)
            fail_msg("[%s] accepted", bad[i]);
        assert_non_null(why);
    }
}

/* Every key with a value other than its default: what --print-config writes reads back into the
 * same configuration and prints again byte for byte. */
static const char every_key[] = "[network]\n"
                                "host = 127.0.0.2\n"
                                "port = 9999\n"
                                "listen = ws://127.0.0.1:9001\n"
                                "listen = wss://[::1]:9443\n"
                                "reuse-port = true\n"
                                "admin-listen = 127.0.0.1:9100\n"
                                "public-metrics = false\n"
                                "[tls]\n"
                                "tls-cert = /etc/ssl/cert one.pem\n"
                                "tls-key = \" /etc/ssl/key#1.pem\"\n"
                                "[logging]\n"
                                "log-level = warn\n"
                                "log-format = json\n"
                                "log-summary = 30\n"
                                "[database]\n"
                                "db = /var/lib/sigtracker/x.db\n"
                                "db-flush = 7\n"
                                "[tracker]\n"
                                "interval = 300\n"
                                "min-interval = 30\n"
                                "peer-timeout = 500\n"
                                "max-numwant = 70\n"
                                "default-numwant = 25\n"
                                "max-offers = 5\n"
                                "offer-ttl = 60\n"
                                "max-scrape = 50\n"
                                "[access]\n"
                                "allowlist = /etc/sigtracker/allow.txt\n"
                                "denylist =\n"
                                "[liveness]\n"
                                "ping-interval = 40\n"
                                "ping-timeout = 20\n"
                                "handshake-timeout = 5\n"
                                "idle-timeout = 0\n"
                                "[limits]\n"
                                "max-frame = 32768\n"
                                "max-message = 131072\n"
                                "max-json-depth = 8\n"
                                "max-connections = 5000\n"
                                "max-per-ip = 20\n"
                                "max-swarms = 64\n"
                                "max-outbuf = 131072\n"
                                "stuck-timeout = 15\n"
                                "msg-rate = 10\n"
                                "msg-burst = 40\n"
                                "signal-rate = 20\n"
                                "signal-burst = 80\n"
                                "recv-rate = 30\n"
                                "recv-burst = 90\n"
                                "allow-origin = https://a.example,https://b.example\n"
                                "trusted-proxy = 10.0.0.1,::1\n"
                                "[shedding]\n"
                                "shed-high = 4000\n"
                                "shed-low = 3000\n"
                                "shed-ratio = 6\n"
                                "shed-min-seeders = 2\n"
                                "[cluster]\n"
                                "cluster = redis://127.0.0.1:6379\n"
                                "node-timeout = 20\n"
                                "[testing]\n"
                                "test-drop-offers = yes\n";

static void test_print_round_trip(void **state) {
    (void)state;
    static config_t c1, c2, d;
    char err[ERR_BYTES];
    assert_int_equal(load_text(&c1, every_key, NULL, err), 0);
    config_defaults(&d);
    buf_t p1 = {0}, p2 = {0};
    config_print(&c1, &p1);
    buf_puts(&p1, "");
    char *text = malloc(p1.len + 1);
    memcpy(text, p1.data, p1.len);
    text[p1.len] = '\0';
    /* Every key of the file is in the print, with its help, unit and default as comments. */
    for (const char *line = every_key; *line;) {
        const char *eol = strchr(line, '\n');
        if (line[0] != '[' && strchr(line, '=') != NULL) {
            char key[64];
            size_t n = (size_t)(strchr(line, ' ') - line);
            snprintf(key, sizeof(key), "\n# %.*s: ", (int)n, line);
            if (strstr(text, key) == NULL)
                fail_msg("--print-config has no help comment for %s", key + 3);
        }
        line = eol + 1;
    }
    assert_non_null(strstr(text, "\nmax-per-ip = 20\n"));
    assert_non_null(strstr(text, "# unit: conns; default: 1024; applies on reload (SIGHUP)\n"));
    assert_non_null(strstr(text, "\nlisten = wss://[::1]:9443\n"));
    assert_non_null(strstr(text, "\ntls-key = \" /etc/ssl/key#1.pem\"\n"));
    assert_non_null(strstr(text, "# unit: port; default: 8000; needs a restart\nport = 9999\n"));
    /* Loaded back, it is the same configuration, and prints the same. */
    assert_int_equal(load_text(&c2, text, NULL, err), 0);
    config_print(&c2, &p2);
    assert_int_equal(p1.len, p2.len);
    assert_memory_equal(p1.data, p2.data, p1.len);
    assert_int_equal(c2.msg_rate, 10);
    assert_string_equal(c2.tls_key, " /etc/ssl/key#1.pem");
    assert_int_equal(c2.nlisteners, 2);
    assert_int_equal(c2.test_drop_offers, 1);
    /* No key is left at its default in this file (so the test covers them all): every value
     * line of the print differs from the defaults' print. */
    buf_t pd = {0};
    config_print(&d, &pd);
    buf_puts(&pd, "");
    char *dtext = malloc(pd.len + 1);
    memcpy(dtext, pd.data, pd.len);
    dtext[pd.len] = '\0';
    int values = 0;
    for (char *line = text; *line;) {
        char *eol = strchr(line, '\n');
        size_t n = eol ? (size_t)(eol - line) : strlen(line);
        if (n > 0 && line[0] != '#' && line[0] != '[' && strncmp(line, "denylist", 8) != 0) {
            char needle[512];
            snprintf(needle, sizeof(needle), "\n%.*s\n", (int)n, line);
            if (strstr(dtext, needle) != NULL)
                fail_msg("every_key leaves [%.*s] at its default", (int)n, line);
            values++;
        }
        line = eol ? eol + 1 : line + n;
    }
    /* 50 keys, listen on two lines and denylist left out: a new key must join every_key. */
    assert_int_equal(values, 50);
    /* The defaults round-trip too. */
    static config_t c3;
    assert_int_equal(load_text(&c3, dtext, NULL, err), 0);
    buf_t p3 = {0};
    config_print(&c3, &p3);
    assert_int_equal(p3.len, pd.len);
    assert_memory_equal(p3.data, pd.data, pd.len);
    free(text);
    free(dtext);
    buf_dispose(&p1);
    buf_dispose(&p2);
    buf_dispose(&p3);
    buf_dispose(&pd);
}

typedef struct notes {
    char text[2048];
    int restart, applied;
} notes_t;

static void on_note(void *arg, const char *name, const char *was, const char *now, int restart) {
    notes_t *n = arg;
    size_t len = strlen(n->text);
    snprintf(n->text + len, sizeof(n->text) - len, "%s%s:%s->%s;", restart ? "!" : "", name, was,
             now);
    if (restart)
        n->restart++;
    else
        n->applied++;
}

static void test_reload_merge(void **state) {
    (void)state;
    static config_t running, next;
    char err[ERR_BYTES];
    assert_int_equal(load_text(&running, "max-per-ip = 20\n", NULL, err), 0);
    assert_int_equal(load_text(&next,
                               "max-per-ip = 5\nport = 9000\ndb = other.db\nmsg-rate = 7\n"
                               "listen = ws://1.2.3.4:5\nlog-level = warn\n",
                               NULL, err),
                     0);
    notes_t n;
    memset(&n, 0, sizeof(n));
    int applied = config_reload_merge(&running, &next, on_note, &n);
    assert_int_equal(applied, 3);
    assert_int_equal(n.applied, 3);
    assert_int_equal(n.restart, 3);
    assert_non_null(strstr(n.text, "max-per-ip:20->5;"));
    assert_non_null(strstr(n.text, "msg-rate:50->7;"));
    assert_non_null(strstr(n.text, "log-level:info->warn;"));
    assert_non_null(strstr(n.text, "!port:8000->9000;"));
    assert_non_null(strstr(n.text, "!db:./sigtracker.db->other.db;"));
    assert_non_null(strstr(n.text, "!listen:(from host and port)->ws://1.2.3.4:5;"));
    /* What needs a restart is back at its running value; the rest is the new one. */
    assert_int_equal(next.port, 8000);
    assert_string_equal(next.db_path, "./sigtracker.db");
    assert_int_equal(next.listen_given, 0);
    assert_int_equal(next.nlisteners, 1);
    assert_int_equal(next.listeners[0].port, 8000);
    assert_int_equal(next.max_per_ip, 5);
    assert_int_equal(next.msg_rate, 7);
    /* Nothing changed: no notes. */
    memset(&n, 0, sizeof(n));
    assert_int_equal(config_reload_merge(&next, &next, on_note, &n), 0);
    assert_string_equal(n.text, "");
}

/* config_parse with --config: the file is read, flags override it, and errors are printed. */
static void test_parse_with_file(void **state) {
    (void)state;
    char path[] = "/tmp/sigtracker-test-config.conf.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "[limits]\nmax-per-ip = 20\nmsg-rate = 5\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    config_t c;
    static run_t r;
    const char *a1[] = {"--config", path, "--msg-rate", "9", NULL};
    parse(&c, &r, a1);
    assert_int_equal(r.rc, CONFIG_RUN);
    assert_int_equal(c.max_per_ip, 20);
    assert_int_equal(c.msg_rate, 9);
    assert_string_equal(c.config_file, path);
    /* --print-config prints the effective configuration and asks main to exit. */
    const char *a2[] = {"--msg-rate=9", "--config", path, "--print-config", NULL};
    parse(&c, &r, a2);
    assert_int_equal(r.rc, CONFIG_EXIT);
    assert_non_null(strstr(r.out, "\nmax-per-ip = 20\n"));
    assert_non_null(strstr(r.out, "\nmsg-rate = 9\n"));
    assert_string_equal(r.err, "");
    /* --check-config asks main to check the access list and say so. */
    const char *a3[] = {"--config", path, "--check-config", NULL};
    parse(&c, &r, a3);
    assert_int_equal(r.rc, CONFIG_CHECK);
    /* A broken file: the message names the file, the line and the key. */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("[limits]\nmax-per-ip = 20\nmsg-rate = fast\n", f);
    fclose(f);
    const char *a4[] = {"--config", path, NULL};
    expect_refused(a4, ":3: key msg-rate wants a whole number");
    expect_refused(a4, path);
    unlink(path);
    /* A missing file. */
    expect_refused(a4, "cannot read the configuration file");
}

/* The loader frees everything it allocates. */
static void test_no_leaks(void **state) {
    (void)state;
    size_t heap0 = alloc_bytes_in_use();
    static config_t c;
    char err[ERR_BYTES];
    assert_int_equal(load_text(&c, every_key, NULL, err), 0);
    assert_int_equal(load_text(&c, "bad\n", NULL, err), -EINVAL);
    buf_t b = {0};
    config_print(&c, &b);
    buf_dispose(&b);
    assert_int_equal(alloc_bytes_in_use(), heap0);
}

/* --listen on the command line (the TLS branch's cases, in this parser's words): repeatable
 * ws:// and wss:// listeners, --host/--port make the one ws listener when there is none, a wss
 * listener needs both the certificate and the key, config_has_tls says when one is wss. */
static void test_listen_command_line(void **state) {
    (void)state;
    static config_t c;
    run_t r;
    parse(&c, &r, (const char *const[]){"--host", "127.0.0.1", "--port", "9000", NULL});
    assert_int_equal(r.rc, 0);
    assert_int_equal(c.nlisteners, 1);
    assert_int_equal(c.listeners[0].scheme, CONFIG_WS);
    assert_string_equal(c.listeners[0].host, "127.0.0.1");
    assert_int_equal(c.listeners[0].port, 9000);
    assert_false(config_has_tls(&c));

    parse(&c, &r,
          (const char *const[]){"--listen", "ws://0.0.0.0:8000", "--listen=wss://[::1]:8443",
                                "--tls-cert", "c.pem", "--tls-key", "k.pem", NULL});
    assert_int_equal(r.rc, 0);
    assert_int_equal(c.nlisteners, 2);
    assert_int_equal(c.listeners[0].scheme, CONFIG_WS);
    assert_string_equal(c.listeners[0].host, "0.0.0.0");
    assert_int_equal(c.listeners[0].port, 8000);
    assert_int_equal(c.listeners[1].scheme, CONFIG_WSS);
    assert_string_equal(c.listeners[1].host, "::1");
    assert_int_equal(c.listeners[1].port, 8443);
    assert_true(config_has_tls(&c));
    assert_string_equal(c.tls_cert, "c.pem");
    assert_string_equal(c.tls_key, "k.pem");

    parse(&c, &r, (const char *const[]){"--listen", "wss://0.0.0.0:8443", NULL});
    assert_int_equal(r.rc, -EINVAL);
    assert_non_null(strstr(r.err, "wss://0.0.0.0:8443 needs tls-cert and tls-key"));
    parse(&c, &r, (const char *const[]){"--listen", "wss://0.0.0.0:8443", "--tls-cert", "c", NULL});
    assert_int_equal(r.rc, -EINVAL);
    assert_non_null(strstr(r.err, "--tls-cert needs tls-key too"));

    static const char *const bad[] = {"http://h:1",   "ws://h",      "ws://:80",  "ws://h:0",
                                      "ws://h:65536", "wss://[::1]", "ws://h:8x", NULL};
    for (const char *const *b = bad; *b; b++) {
        parse(&c, &r, (const char *const[]){"--listen", *b, NULL});
        assert_int_equal(r.rc, -EINVAL);
        assert_non_null(strstr(r.err, "--listen"));
        assert_non_null(strstr(r.err, "wants ws://HOST:PORT or wss://HOST:PORT"));
    }
    parse(&c, &r, (const char *const[]){"--listen", NULL});
    assert_int_equal(r.rc, -EINVAL);

    const char *many[2 * CONFIG_MAX_LISTENERS + 3];
    char ports[CONFIG_MAX_LISTENERS + 1][32];
    int n = 0;
    for (int i = 0; i <= CONFIG_MAX_LISTENERS; i++) {
        snprintf(ports[i], sizeof(ports[i]), "ws://127.0.0.1:%d", 1000 + i);
        many[n++] = "--listen";
        many[n++] = ports[i];
    }
    many[n] = NULL;
    parse(&c, &r, many);
    assert_int_equal(r.rc, -EINVAL);
    assert_non_null(strstr(r.err, "CONFIG_MAX_LISTENERS"));
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
        cmocka_unit_test(test_file_values_and_overrides),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_booleans),
        cmocka_unit_test(test_listen),
        cmocka_unit_test(test_admin_listen),
        cmocka_unit_test(test_listen_urls),
        cmocka_unit_test(test_print_round_trip),
        cmocka_unit_test(test_reload_merge),
        cmocka_unit_test(test_parse_with_file),
        cmocka_unit_test(test_no_leaks),
        cmocka_unit_test(test_listen_command_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
