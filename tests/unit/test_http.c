/* test_http.c: unit tests of the HTTP request-head parser and the WebSocket handshake checks. */
#include "unit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ws/http.h"

/* Size of the scratch buffers the tests build request heads in, in bytes. */
#define TEST_BUF_BYTES 16384

/* An upgrade request as Chromium 120 sends it, byte for byte. */
static const char chromium_upgrade[] =
    "GET /announce HTTP/1.1\r\n"
    "Host: localhost:8000\r\n"
    "Connection: Upgrade\r\n"
    "Pragma: no-cache\r\n"
    "Cache-Control: no-cache\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36\r\n"
    "Upgrade: websocket\r\n"
    "Origin: http://localhost:8000\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Accept-Language: en-US,en;q=0.9\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    "\r\n";

/* An upgrade request as Firefox sends it: note "Connection: keep-alive, Upgrade". */
static const char firefox_upgrade[] =
    "GET /announce?x=1 HTTP/1.1\r\n"
    "Host: tracker.example:443\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0\r\n"
    "Accept: */*\r\n"
    "Accept-Language: en-US,en;q=0.5\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Origin: https://app.example\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate\r\n"
    "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n"
    "Connection: keep-alive, Upgrade\r\n"
    "Sec-Fetch-Dest: empty\r\n"
    "Sec-Fetch-Mode: websocket\r\n"
    "Sec-Fetch-Site: same-site\r\n"
    "Pragma: no-cache\r\n"
    "Cache-Control: no-cache\r\n"
    "Upgrade: websocket\r\n"
    "\r\n";

/* Parses the NUL-terminated string s with the default limit. */
static int parse(const char *s, http_request_t *req) {
    return http_request_parse(s, strlen(s), HTTP_MAX_HEAD_BYTES, req);
}

/* Parses s and returns the http_upgrade_check verdict; fails the test if s does not parse. */
static int check(const char *s) {
    http_request_t req;

    assert_int_equal(parse(s, &req), 0);
    return http_upgrade_check(&req);
}

/* Returns 1 when slice s holds exactly lit. */
static int is(str_t s, const char *lit) {
    return str_eq(s, lit);
}

/* Parses every proper prefix of s from an exactly-sized heap copy (so that ASan catches any read
 * past the end) and expects -EAGAIN, then expects the whole of s to parse. */
static void expect_split_eagain(const char *s) {
    size_t len = strlen(s);
    size_t i;
    http_request_t req;

    for (i = 0; i < len; i++) {
        char *copy = malloc(i > 0 ? i : 1);

        assert_non_null(copy);
        memcpy(copy, s, i);
        if (http_request_parse(copy, i, HTTP_MAX_HEAD_BYTES, &req) != -EAGAIN) {
            fail_msg("prefix of %zu bytes did not give -EAGAIN", i);
        }
        free(copy);
    }
    assert_int_equal(http_request_parse(s, len, HTTP_MAX_HEAD_BYTES, &req), 0);
    assert_int_equal(req.head_len, len);
}

static void test_accept_rfc_vector(void **state) {
    char out[29];

    (void)state;
    assert_int_equal(http_ws_accept("dGhlIHNhbXBsZSBub25jZQ==", 24, out), 0);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_int_equal(http_ws_accept("x3JJHMbDL1EzLkh9GBhXDw==", 24, out), 0);
    assert_string_equal(out, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
}

static void test_accept_bad_length(void **state) {
    char out[29];

    (void)state;
    assert_int_equal(http_ws_accept("dGhlIHNhbXBsZSBub25jZQ=", 23, out), -EINVAL);
    assert_int_equal(http_ws_accept("dGhlIHNhbXBsZSBub25jZQ===", 25, out), -EINVAL);
    assert_int_equal(http_ws_accept("", 0, out), -EINVAL);
}

static void test_chromium_upgrade(void **state) {
    http_request_t req;
    size_t len = strlen(chromium_upgrade);

    (void)state;
    assert_int_equal(parse(chromium_upgrade, &req), 0);
    assert_int_equal(req.head_len, len);
    assert_true(is(req.method, "GET"));
    assert_true(is(req.target, "/announce"));
    assert_true(is(req.path, "/announce"));
    assert_int_equal(req.version_minor, 1);
    assert_true(is(req.host, "localhost:8000"));
    assert_true(is(req.upgrade, "websocket"));
    assert_true(is(req.ws_key, "dGhlIHNhbXBsZSBub25jZQ=="));
    assert_true(is(req.ws_version, "13"));
    assert_true(is(req.origin, "http://localhost:8000"));
    assert_null(req.forwarded_for.p);
    assert_int_equal(req.conn_upgrade, 1);
    assert_int_equal(http_upgrade_check(&req), 0);
}

static void test_firefox_upgrade(void **state) {
    http_request_t req;

    (void)state;
    assert_int_equal(parse(firefox_upgrade, &req), 0);
    assert_true(is(req.target, "/announce?x=1"));
    assert_true(is(req.path, "/announce"));
    assert_true(is(req.host, "tracker.example:443"));
    assert_int_equal(req.conn_upgrade, 1);
    assert_int_equal(http_upgrade_check(&req), 0);
}

static void test_health_get(void **state) {
    http_request_t req;

    (void)state;
    assert_int_equal(parse("GET /health HTTP/1.0\r\n\r\n", &req), 0);
    assert_true(is(req.path, "/health"));
    assert_int_equal(req.version_minor, 0);
    assert_null(req.host.p);
    assert_null(req.upgrade.p);
    assert_int_equal(req.conn_upgrade, 0);
    assert_int_equal(req.head_len, 24);
    assert_int_equal(http_upgrade_check(&req), 400);
}

static void test_split_every_offset(void **state) {
    (void)state;
    expect_split_eagain(chromium_upgrade);
    expect_split_eagain(firefox_upgrade);
    expect_split_eagain("GET /stats.json HTTP/1.1\nHost: x\n\n");
    expect_split_eagain("GET / HTTP/1.1\r\n\r\n");
}

static void test_bytes_after_head(void **state) {
    char buf[TEST_BUF_BYTES];
    http_request_t req;
    size_t len = strlen(chromium_upgrade);

    (void)state;
    /* A client may pipeline its first frame right behind the head: it is not part of the head. */
    memcpy(buf, chromium_upgrade, len);
    memcpy(buf + len, "\x81\x85garbage", 9);
    assert_int_equal(http_request_parse(buf, len + 9, HTTP_MAX_HEAD_BYTES, &req), 0);
    assert_int_equal(req.head_len, len);
}

static void test_bare_lf(void **state) {
    http_request_t req;
    const char *s = "GET /a?b HTTP/1.1\nHost: h\nConnection: upgrade\r\nUpgrade: WebSocket\n"
                    "Sec-WebSocket-Version: 13\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\n\n";

    (void)state;
    assert_int_equal(parse(s, &req), 0);
    assert_int_equal(req.head_len, strlen(s));
    assert_true(is(req.path, "/a"));
    assert_true(is(req.host, "h"));
    assert_int_equal(http_upgrade_check(&req), 0);
    assert_int_equal(parse("GET / HTTP/1.1\r\n\n", &req), 0);
    assert_int_equal(req.head_len, 17);
}

static void test_bad_cr(void **state) {
    http_request_t req;

    (void)state;
    assert_int_equal(parse("GET / HTTP/1.1\rX\r\n\r\n", &req), -EINVAL);
    assert_int_equal(parse("GET / HTTP/1.1\r\r\n\r\n", &req), -EINVAL);
    assert_int_equal(parse("GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", &req), -EINVAL);
    assert_int_equal(parse("GET / HTTP/1.1\r\nA: b\r\n\rx", &req), -EINVAL);
    assert_int_equal(parse("GET / HTTP/1.1\r\n\r\r\n", &req), -EINVAL);
    /* A CR that is the last byte so far may still be followed by its LF. */
    assert_int_equal(parse("GET / HTTP/1.1\r", &req), -EAGAIN);
    assert_int_equal(parse("GET / HTTP/1.1\r\nA: b\r", &req), -EAGAIN);
}

static void test_bad_request_lines(void **state) {
    static const char *const bad[] = {
        "\r\n\r\n",                                     /* empty request line */
        "\r\nGET / HTTP/1.1\r\n\r\n",                   /* leading empty line */
        "GET\r\n\r\n",                                  /* method only */
        "GET /\r\n\r\n",                                /* no version */
        "GET / \r\n\r\n",                               /* empty version */
        " GET / HTTP/1.1\r\n\r\n",                      /* leading space */
        "GET  / HTTP/1.1\r\n\r\n",                      /* two spaces */
        "GET /  HTTP/1.1\r\n\r\n",                      /* two spaces before version */
        "GET\t/ HTTP/1.1\r\n\r\n",                      /* tab as separator */
        "GET / HTTP/1.1 \r\n\r\n",                      /* trailing space */
        "GET / HTTP/2.0\r\n\r\n",                       /* HTTP/2 */
        "GET / HTTP/1.x\r\n\r\n",                       /* minor not a digit */
        "GET / HTTP/1.11\r\n\r\n",                      /* two-digit minor */
        "GET / HTTP/1\r\n\r\n",                         /* no minor */
        "GET / http/1.1\r\n\r\n",                       /* lower-case protocol */
        "GET / HTTP/1.1 extra\r\n\r\n",                 /* extra field */
        "G@T / HTTP/1.1\r\n\r\n",                       /* non-token method */
        "GET /a b HTTP/1.1\r\n\r\n",                    /* space in target */
        "GET /\x7f HTTP/1.1\r\n\r\n",                   /* DEL in target */
        "GET /\xc3\xa9 HTTP/1.1\r\n\r\n",               /* raw UTF-8 in target */
        "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", /* a TLS ClientHello */
        "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",             /* the HTTP/2 preface */
    };
    http_request_t req;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse(bad[i], &req) != -EINVAL) {
            fail_msg("bad request line %zu was not refused", i);
        }
    }
    {
        /* A NUL in the target; sizeof because strlen would stop at it. */
        static const char nul[] = "GET /\0 HTTP/1.1\r\n\r\n";

        assert_int_equal(http_request_parse(nul, sizeof(nul) - 1, HTTP_MAX_HEAD_BYTES, &req),
                         -EINVAL);
    }
}

static void test_bad_detected_early(void **state) {
    http_request_t req;

    (void)state;
    /* Invalid bytes are refused before the line ends: no need to wait for more. */
    assert_int_equal(parse("GET /x HTTP/1.1 ", &req), -EINVAL);
    assert_int_equal(parse("G T", &req), -EAGAIN);
    assert_int_equal(parse("G\x01", &req), -EINVAL);
    assert_int_equal(parse("GET / HTTQ", &req), -EINVAL);
    assert_int_equal(parse("GET / HTTP/1.1\r\nHo st", &req), -EINVAL);
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\x01", &req), -EINVAL);
}

static void test_other_methods_and_versions(void **state) {
    http_request_t req;

    (void)state;
    assert_int_equal(parse("POST /x HTTP/1.1\r\n\r\n", &req), 0);
    assert_true(is(req.method, "POST"));
    assert_int_equal(parse("OPTIONS * HTTP/1.1\r\n\r\n", &req), 0);
    assert_true(is(req.target, "*"));
    assert_int_equal(parse("GET /?q HTTP/1.9\r\n\r\n", &req), 0);
    assert_int_equal(req.version_minor, 9);
    assert_true(is(req.path, "/"));
    assert_int_equal(parse("GET ?q HTTP/1.1\r\n\r\n", &req), 0);
    assert_non_null(req.path.p);
    assert_int_equal(req.path.len, 0);
}

static void test_bad_header_lines(void **state) {
    static const char *const bad[] = {
        "GET / HTTP/1.1\r\nHost : x\r\n\r\n",     /* space before colon */
        "GET / HTTP/1.1\r\nHost\t: x\r\n\r\n",    /* tab before colon */
        "GET / HTTP/1.1\r\n: x\r\n\r\n",          /* empty name */
        "GET / HTTP/1.1\r\nHost x\r\n\r\n",       /* no colon */
        "GET / HTTP/1.1\r\nHost\r\n\r\n",         /* name only */
        "GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n",   /* obs-fold with space */
        "GET / HTTP/1.1\r\nA: b\r\n\tc\r\n\r\n",  /* obs-fold with tab */
        "GET / HTTP/1.1\r\n Host: x\r\n\r\n",     /* whitespace before first header */
        "GET / HTTP/1.1\r\nH(st: x\r\n\r\n",      /* non-token name */
        "GET / HTTP/1.1\r\nH\xc3\xa9: x\r\n\r\n", /* non-ASCII name */
        "GET / HTTP/1.1\r\nA: b\x7f\r\n\r\n",     /* DEL in value */
        "GET / HTTP/1.1\r\nA: b\x01\r\n\r\n",     /* control in value */
        "GET / HTTP/1.1\r\nA: b\x0b\r\n\r\n",     /* vertical tab in value */
    };
    http_request_t req;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse(bad[i], &req) != -EINVAL) {
            fail_msg("bad header line %zu was not refused", i);
        }
    }
    /* NUL inside a value. */
    {
        static const char nul[] = "GET / HTTP/1.1\r\nA: \0\r\n\r\n";

        assert_int_equal(http_request_parse(nul, sizeof(nul) - 1, HTTP_MAX_HEAD_BYTES, &req),
                         -EINVAL);
    }
}

static void test_header_values(void **state) {
    http_request_t req;

    (void)state;
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost:x\r\nOrigin: \t o \t \r\nX-Forwarded-For:  "
                           "1.2.3.4, 5.6.7.8 \r\nUpgrade:\r\nX-Latin: caf\xe9\r\n\r\n",
                           &req),
                     0);
    assert_true(is(req.host, "x"));
    assert_true(is(req.origin, "o"));
    assert_true(is(req.forwarded_for, "1.2.3.4, 5.6.7.8"));
    /* A header present with an empty value is not absent. */
    assert_non_null(req.upgrade.p);
    assert_int_equal(req.upgrade.len, 0);
}

static void test_header_case_and_duplicates(void **state) {
    http_request_t req;

    (void)state;
    assert_int_equal(parse("GET / HTTP/1.1\r\nhOsT: first\r\nHOST: second\r\n"
                           "sec-websocket-key: k1\r\nSEC-WEBSOCKET-KEY: k2\r\n"
                           "x-forwarded-for: a\r\nX-Forwarded-For: b\r\n\r\n",
                           &req),
                     0);
    assert_true(is(req.host, "first"));
    assert_true(is(req.ws_key, "k1"));
    /* X-Forwarded-For keeps its last line: the one a trusted proxy added. */
    assert_true(is(req.forwarded_for, "b"));
}

static void test_connection_tokens(void **state) {
    http_request_t req;

    (void)state;
    assert_int_equal(parse("GET / HTTP/1.1\r\nConnection: UPGRADE\r\n\r\n", &req), 0);
    assert_int_equal(req.conn_upgrade, 1);
    assert_int_equal(parse("GET / HTTP/1.1\r\nConnection: keep-alive,upgrade\r\n\r\n", &req), 0);
    assert_int_equal(req.conn_upgrade, 1);
    assert_int_equal(parse("GET / HTTP/1.1\r\nConnection: ,, Upgrade ,\r\n\r\n", &req), 0);
    assert_int_equal(req.conn_upgrade, 1);
    /* Across repeated Connection headers, in either order. */
    assert_int_equal(
        parse("GET / HTTP/1.1\r\nConnection: keep-alive\r\nconnection: Upgrade\r\n\r\n", &req), 0);
    assert_int_equal(req.conn_upgrade, 1);
    assert_int_equal(
        parse("GET / HTTP/1.1\r\nConnection: Upgrade\r\nConnection: close\r\n\r\n", &req), 0);
    assert_int_equal(req.conn_upgrade, 1);
    /* Substrings and near misses are not the token. */
    assert_int_equal(parse("GET / HTTP/1.1\r\nConnection: upgraded, keep-alive\r\n\r\n", &req), 0);
    assert_int_equal(req.conn_upgrade, 0);
    assert_int_equal(parse("GET / HTTP/1.1\r\nConnection: upgrade-now\r\n\r\n", &req), 0);
    assert_int_equal(req.conn_upgrade, 0);
    assert_int_equal(parse("GET / HTTP/1.1\r\nConnection: up grade\r\n\r\n", &req), 0);
    assert_int_equal(req.conn_upgrade, 0);
    assert_int_equal(parse("GET / HTTP/1.1\r\nConnection:\r\n\r\n", &req), 0);
    assert_int_equal(req.conn_upgrade, 0);
    assert_int_equal(parse("GET / HTTP/1.1\r\nX-Connection: upgrade\r\n\r\n", &req), 0);
    assert_int_equal(req.conn_upgrade, 0);
}

/* Builds a GET head with `headers` filler header lines into buf and returns its length. */
static size_t build_head(char *buf, size_t cap, int headers, size_t filler_bytes) {
    size_t len = (size_t)snprintf(buf, cap, "GET / HTTP/1.1\r\n");
    int i;

    for (i = 0; i < headers; i++) {
        len += (size_t)snprintf(buf + len, cap - len, "X-H%d: ", i);
        assert_true(len + filler_bytes + 4 < cap);
        memset(buf + len, 'v', filler_bytes);
        len += filler_bytes;
        len += (size_t)snprintf(buf + len, cap - len, "\r\n");
    }
    len += (size_t)snprintf(buf + len, cap - len, "\r\n");
    return len;
}

static void test_too_many_headers(void **state) {
    char buf[TEST_BUF_BYTES];
    http_request_t req;
    size_t len;

    (void)state;
    len = build_head(buf, sizeof(buf), HTTP_MAX_HEADERS, 1);
    assert_int_equal(http_request_parse(buf, len, HTTP_MAX_HEAD_BYTES, &req), 0);
    len = build_head(buf, sizeof(buf), HTTP_MAX_HEADERS + 1, 1);
    assert_int_equal(http_request_parse(buf, len, HTTP_MAX_HEAD_BYTES, &req), -EMSGSIZE);
    /* Refused as soon as the extra line starts, without waiting for the rest. */
    len = build_head(buf, sizeof(buf), HTTP_MAX_HEADERS, 1);
    memcpy(buf + len - 2, "X", 1);
    assert_int_equal(http_request_parse(buf, len - 1, HTTP_MAX_HEAD_BYTES, &req), -EMSGSIZE);
}

static void test_oversized_head(void **state) {
    char buf[TEST_BUF_BYTES];
    http_request_t req;
    size_t len;

    (void)state;
    /* 40 headers of about 200 bytes is about 8.4 KiB: over the limit. */
    len = build_head(buf, sizeof(buf), 40, 200);
    assert_true(len > HTTP_MAX_HEAD_BYTES);
    assert_int_equal(http_request_parse(buf, len, HTTP_MAX_HEAD_BYTES, &req), -EMSGSIZE);
    /* An unfinished head that already fills the limit is refused without waiting. */
    assert_int_equal(http_request_parse(buf, HTTP_MAX_HEAD_BYTES, HTTP_MAX_HEAD_BYTES, &req),
                     -EMSGSIZE);
    assert_int_equal(http_request_parse(buf, HTTP_MAX_HEAD_BYTES - 1, HTTP_MAX_HEAD_BYTES, &req),
                     -EAGAIN);
    /* One very long line with no LF at all. */
    memset(buf, 'A', sizeof(buf));
    assert_int_equal(http_request_parse(buf, sizeof(buf), HTTP_MAX_HEAD_BYTES, &req), -EMSGSIZE);
}

static void test_head_exactly_at_limit(void **state) {
    const char *s = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    size_t len = strlen(s);
    http_request_t req;

    (void)state;
    assert_int_equal(http_request_parse(s, len, len, &req), 0);
    assert_int_equal(req.head_len, len);
    assert_int_equal(http_request_parse(s, len, len - 1, &req), -EMSGSIZE);
    /* The limit counts the final LF: one byte short with the CR present is still too long. */
    assert_int_equal(http_request_parse(s, len - 1, len - 1, &req), -EMSGSIZE);
    assert_int_equal(http_request_parse(s, 0, 0, &req), -EMSGSIZE);
    assert_int_equal(http_request_parse(NULL, 0, HTTP_MAX_HEAD_BYTES, &req), -EAGAIN);
}

static void test_upgrade_check_missing(void **state) {
    static const char *const fields[] = {
        "Host: h\r\n",
        "Connection: Upgrade\r\n",
        "Upgrade: websocket\r\n",
        "Sec-WebSocket-Version: 13\r\n",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
    };
    /* Expected verdict when field i is left out. Host is not required by http.h's contract. */
    static const int verdict[] = {0, 400, 400, 426, 400};
    char buf[TEST_BUF_BYTES];
    size_t i;
    size_t j;

    (void)state;
    for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        size_t len = (size_t)snprintf(buf, sizeof(buf), "GET /announce HTTP/1.1\r\n");

        for (j = 0; j < sizeof(fields) / sizeof(fields[0]); j++) {
            if (j != i) {
                len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s", fields[j]);
            }
        }
        snprintf(buf + len, sizeof(buf) - len, "\r\n");
        if (check(buf) != verdict[i]) {
            fail_msg("leaving out field %zu gave %d, want %d", i, check(buf), verdict[i]);
        }
    }
}

/* Builds an upgrade request from its varying parts and returns http_upgrade_check's verdict. */
static int verdict(const char *method, char minor, const char *upgrade, const char *connection,
                   const char *version, const char *key) {
    char buf[TEST_BUF_BYTES];

    snprintf(buf, sizeof(buf),
             "%s /announce HTTP/1.%c\r\nHost: h\r\nUpgrade: %s\r\nConnection: %s\r\n"
             "Sec-WebSocket-Version: %s\r\nSec-WebSocket-Key: %s\r\n\r\n",
             method, minor, upgrade, connection, version, key);
    return check(buf);
}

static void test_upgrade_check_fields(void **state) {
    const char *key = "dGhlIHNhbXBsZSBub25jZQ==";

    (void)state;
    assert_int_equal(verdict("GET", '1', "websocket", "Upgrade", "13", key), 0);
    assert_int_equal(verdict("GET", '1', "WebSocket", "upgrade", "13", "AAAAAAAAAAAAAAAAAAAAAA=="),
                     0);
    assert_int_equal(verdict("POST", '1', "websocket", "Upgrade", "13", key), 400);
    assert_int_equal(verdict("get", '1', "websocket", "Upgrade", "13", key), 400);
    assert_int_equal(verdict("GET", '0', "websocket", "Upgrade", "13", key), 400);
    assert_int_equal(verdict("GET", '1', "h2c", "Upgrade", "13", key), 400);
    assert_int_equal(verdict("GET", '1', "websocket2", "Upgrade", "13", key), 400);
    assert_int_equal(verdict("GET", '1', "websocket", "keep-alive", "13", key), 400);
    /* Version: anything but exactly 13 asks the client to upgrade to 13. */
    assert_int_equal(verdict("GET", '1', "websocket", "Upgrade", "12", key), 426);
    assert_int_equal(verdict("GET", '1', "websocket", "Upgrade", "8", key), 426);
    assert_int_equal(verdict("GET", '1', "websocket", "Upgrade", "013", key), 426);
    assert_int_equal(verdict("GET", '1', "websocket", "Upgrade", "13, 8", key), 426);
    assert_int_equal(verdict("GET", '1', "websocket", "Upgrade", "", key), 426);
    /* A version other than 13 wins over a bad key: the client learns which version to use. */
    assert_int_equal(verdict("GET", '1', "websocket", "Upgrade", "12", "bad"), 426);
}

static void test_upgrade_check_keys(void **state) {
    static const char *const bad[] = {
        "",
        "dGhlIHNhbXBsZSBub25jZQ=",   /* 23 characters */
        "dGhlIHNhbXBsZSBub25jZQ===", /* 25 characters */
        "dGhlIHNhbXBsZSBub25jZQAA",  /* no padding: 18 bytes */
        "dGhlIHNhbXBsZSBub25jZ===",  /* 15 bytes */
        "dGhlIHNhbXBsZSBub25jZR==",  /* stray bits in the last character */
        "+/+/+/+/+/+/+/+/+/+/+B==",  /* stray bits in the last character */
        "dGhlIHNhbXBsZSBub25j-Q==",  /* base64url, not base64 */
        "dGhlIHNhbXBsZSBub25j_Q==",  /* base64url, not base64 */
        "dGhlIHNhbXBs ZSBub25jQ==",  /* inner space */
        "=GhlIHNhbXBsZSBub25jZQ==",  /* padding first */
        "dGhlIHNhbXBsZSBub25jZQ=A",  /* padding then data */
    };
    /* The four characters whose low 4 bits are zero are the only valid last data characters. */
    static const char *const good[] = {
        "+/+/+/+/+/+/+/+/+/+/+w==", "+/+/+/+/+/+/+/+/+/+/+g==", "+/+/+/+/+/+/+/+/+/+/+Q==",
        "+/+/+/+/+/+/+/+/+/+/+A==", "x3JJHMbDL1EzLkh9GBhXDw==",
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (verdict("GET", '1', "websocket", "Upgrade", "13", bad[i]) != 400) {
            fail_msg("bad key \"%s\" was not refused", bad[i]);
        }
    }
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (verdict("GET", '1', "websocket", "Upgrade", "13", good[i]) != 0) {
            fail_msg("good key \"%s\" was refused", good[i]);
        }
    }
}

static void test_upgrade_check_trims_key(void **state) {
    (void)state;
    assert_int_equal(check("GET / HTTP/1.1\r\nUpgrade:  websocket \r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Version:\t13\t\r\n"
                           "Sec-WebSocket-Key:   dGhlIHNhbXBsZSBub25jZQ==  \r\n\r\n"),
                     0);
}

/* Parses s and returns the http_host_check verdict; fails the test if s does not parse. */
static int host_verdict(const char *s) {
    http_request_t req;

    assert_int_equal(parse(s, &req), 0);
    return http_host_check(&req);
}

static void test_host_rule(void **state) {
    http_request_t req;

    (void)state;
    /* HTTP/1.1: exactly one Host. */
    assert_int_equal(host_verdict("GET / HTTP/1.1\r\nHost: tracker.example:8000\r\n\r\n"), 0);
    assert_int_equal(host_verdict(chromium_upgrade), 0);
    assert_int_equal(host_verdict(firefox_upgrade), 0);
    assert_int_equal(host_verdict("GET / HTTP/1.1\r\n\r\n"), 400);
    assert_int_equal(host_verdict("GET / HTTP/1.1\r\nX-Host: a\r\n\r\n"), 400);
    assert_int_equal(host_verdict("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), 400);
    assert_int_equal(host_verdict("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n"), 400);
    assert_int_equal(parse("GET / HTTP/1.1\r\nHOST: a\r\nhost: b\r\nHost: c\r\n\r\n", &req), 0);
    assert_int_equal(req.host_count, 3);
    assert_true(is(req.host, "a"));
    /* An empty Host is what RFC 9112 asks for when the target has no authority. */
    assert_int_equal(host_verdict("GET / HTTP/1.1\r\nHost:\r\n\r\n"), 0);
    /* HTTP/1.0: Host is optional, but never twice. */
    assert_int_equal(host_verdict("GET /stats.json HTTP/1.0\r\n\r\n"), 0);
    assert_int_equal(host_verdict("GET / HTTP/1.0\r\nHost: a\r\n\r\n"), 0);
    assert_int_equal(host_verdict("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
    /* Later minor versions are held to the HTTP/1.1 rule. */
    assert_int_equal(host_verdict("GET / HTTP/1.2\r\n\r\n"), 400);
    /* The value must be a host with an optional port. */
    static const char *const good[] = {
        "localhost",   "127.0.0.1:8000",   "[::1]:8000", "[2001:db8::7]", "xn--bcher-kva.example",
        "a_b.example", "tracker.example.", "%61.example"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        char buf[256];
        snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", good[i]);
        if (host_verdict(buf) != 0)
            fail_msg("Host: %s refused", good[i]);
    }
    static const char *const bad[] = {"a b",    "a\tb",   "user@host", "host/path",
                                      "host?q", "host#f", "h\"st",     "caf\xc3\xa9.example",
                                      "<x>",    "a\\b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char buf[256];
        snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", bad[i]);
        if (host_verdict(buf) != 400)
            fail_msg("Host: %s accepted", bad[i]);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_rule),
        cmocka_unit_test(test_accept_rfc_vector),
        cmocka_unit_test(test_accept_bad_length),
        cmocka_unit_test(test_chromium_upgrade),
        cmocka_unit_test(test_firefox_upgrade),
        cmocka_unit_test(test_health_get),
        cmocka_unit_test(test_split_every_offset),
        cmocka_unit_test(test_bytes_after_head),
        cmocka_unit_test(test_bare_lf),
        cmocka_unit_test(test_bad_cr),
        cmocka_unit_test(test_bad_request_lines),
        cmocka_unit_test(test_bad_detected_early),
        cmocka_unit_test(test_other_methods_and_versions),
        cmocka_unit_test(test_bad_header_lines),
        cmocka_unit_test(test_header_values),
        cmocka_unit_test(test_header_case_and_duplicates),
        cmocka_unit_test(test_connection_tokens),
        cmocka_unit_test(test_too_many_headers),
        cmocka_unit_test(test_oversized_head),
        cmocka_unit_test(test_head_exactly_at_limit),
        cmocka_unit_test(test_upgrade_check_missing),
        cmocka_unit_test(test_upgrade_check_fields),
        cmocka_unit_test(test_upgrade_check_keys),
        cmocka_unit_test(test_upgrade_check_trims_key),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
