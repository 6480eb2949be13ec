/* test_proxy.c: unit tests of the PROXY protocol header parser (src/ws/proxy.c): versions 1 and
 * 2, every kind of malformed header, and every split point of every valid one. */
#include "unit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ws/proxy.h"

/* Size of the scratch buffers headers are built in, in bytes. */
#define TEST_BUF_BYTES 4096

/* What follows the header in the samples: the first bytes of the proxied stream. */
static const char http_start[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

/* The v2 signature. */
static const uint8_t sig2[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* Parses p[0..n) from an exactly-sized heap copy, so that ASan catches any read past the end. */
static int parse_exact(const uint8_t *p, size_t n, proxy_header_t *h) {
    uint8_t *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    memcpy(copy, p, n);
    int rc = proxy_parse(copy, n, h);
    free(copy);
    return rc;
}

/* Parses the string s. */
static int parse_str(const char *s, proxy_header_t *h) {
    return parse_exact((const uint8_t *)s, strlen(s), h);
}

/* Checks that every proper prefix of p[0..len) needs more bytes, that the whole parses with
 * exactly len bytes, and that bytes after it (the proxied stream) change nothing. Returns the
 * header parsed. */
static proxy_header_t expect_header(const uint8_t *p, size_t len) {
    proxy_header_t h, again;
    uint8_t buf[TEST_BUF_BYTES];

    for (size_t k = 0; k < len; k++) {
        int rc = parse_exact(p, k, &h);
        if (rc != -EAGAIN)
            fail_msg("prefix of %zu of %zu bytes: %d, expected -EAGAIN", k, len, rc);
    }
    assert_int_equal(parse_exact(p, len, &h), 0);
    assert_int_equal(h.len, len);
    assert_true(len + sizeof(http_start) <= sizeof(buf));
    memcpy(buf, p, len);
    memcpy(buf + len, http_start, sizeof(http_start) - 1);
    assert_int_equal(parse_exact(buf, len + sizeof(http_start) - 1, &again), 0);
    assert_memory_equal(&h, &again, sizeof(h));
    return h;
}

/* Checks that p[0..len) gets verdict rc, that every prefix gets -EAGAIN or rc, and that more
 * bytes after it do not change the verdict. */
static void expect_verdict(const uint8_t *p, size_t len, int rc) {
    proxy_header_t h;
    uint8_t buf[TEST_BUF_BYTES];
    int first = 1;

    for (size_t k = 0; k <= len; k++) {
        int r = parse_exact(p, k, &h);
        if (r != -EAGAIN && r != rc)
            fail_msg("prefix of %zu of %zu bytes: %d, expected -EAGAIN or %d", k, len, r, rc);
        if (r == rc)
            first = 0;
        else if (!first)
            fail_msg("prefix of %zu bytes: back to -EAGAIN after the verdict", k);
    }
    assert_int_equal(parse_exact(p, len, &h), rc);
    assert_true(len + sizeof(http_start) <= sizeof(buf));
    memcpy(buf, p, len);
    memcpy(buf + len, http_start, sizeof(http_start) - 1);
    assert_int_equal(parse_exact(buf, len + sizeof(http_start) - 1, &h), rc);
}

static void expect_verdict_str(const char *s, int rc) {
    expect_verdict((const uint8_t *)s, strlen(s), rc);
}

/* Returns the IPv4-mapped form of a.b.c.d. */
static void mapped(uint8_t out[16], uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
    memset(out, 0, 16);
    out[10] = out[11] = 0xff;
    out[12] = a;
    out[13] = b;
    out[14] = c;
    out[15] = d;
}

/* Builds a v2 header: version and command byte, family and transport byte, length field len,
 * then body[0..body_len). Returns its size. */
static size_t build_v2(uint8_t *out, uint8_t ver_cmd, uint8_t fam, uint16_t len,
                       const uint8_t *body, size_t body_len) {
    memcpy(out, sig2, 12);
    out[12] = ver_cmd;
    out[13] = fam;
    out[14] = (uint8_t)(len >> 8);
    out[15] = (uint8_t)len;
    if (body_len)
        memcpy(out + 16, body, body_len);
    return 16 + body_len;
}

/* ---- version 1 --------------------------------------------------------------------------------
 */

static void test_v1_tcp4(void **state) {
    (void)state;
    static const char line[] = "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n";
    proxy_header_t h = expect_header((const uint8_t *)line, sizeof(line) - 1);
    uint8_t want[16];
    mapped(want, 192, 168, 0, 1);
    assert_int_equal(h.version, 1);
    assert_int_equal(h.family, PROXY_FAMILY_INET);
    assert_int_equal(h.local, 0);
    assert_memory_equal(h.addr, want, 16);
    assert_int_equal(h.port, 56324);

    /* The longest TCP4 line, and the extremes of every number. */
    static const char max4[] = "PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n";
    h = expect_header((const uint8_t *)max4, sizeof(max4) - 1);
    mapped(want, 255, 255, 255, 255);
    assert_memory_equal(h.addr, want, 16);
    assert_int_equal(h.port, 65535);
    static const char zeros[] = "PROXY TCP4 0.0.0.0 10.0.0.1 0 0\r\n";
    h = expect_header((const uint8_t *)zeros, sizeof(zeros) - 1);
    mapped(want, 0, 0, 0, 0);
    assert_memory_equal(h.addr, want, 16);
    assert_int_equal(h.port, 0);
}

static void test_v1_tcp6(void **state) {
    (void)state;
    static const char line[] = "PROXY TCP6 2001:db8::1 2001:db8::2 1234 443\r\n";
    proxy_header_t h = expect_header((const uint8_t *)line, sizeof(line) - 1);
    static const uint8_t want[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    assert_int_equal(h.family, PROXY_FAMILY_INET6);
    assert_memory_equal(h.addr, want, 16);
    assert_int_equal(h.port, 1234);

    /* Full groups in upper case: the longest TCP6 line (104 bytes). */
    static const char full[] = "PROXY TCP6 FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF "
                               "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    assert_int_equal(sizeof(full) - 1, 104);
    h = expect_header((const uint8_t *)full, sizeof(full) - 1);
    for (int i = 0; i < 16; i++)
        assert_int_equal(h.addr[i], 0xff);

    /* An IPv4-mapped address counts as the IPv4 address it maps. */
    static const char map[] = "PROXY TCP6 ::ffff:10.1.2.3 ::1 5 6\r\n";
    h = expect_header((const uint8_t *)map, sizeof(map) - 1);
    uint8_t m[16];
    mapped(m, 10, 1, 2, 3);
    assert_memory_equal(h.addr, m, 16);
}

static void test_v1_unknown(void **state) {
    (void)state;
    static const char shortest[] = "PROXY UNKNOWN\r\n";
    proxy_header_t h = expect_header((const uint8_t *)shortest, sizeof(shortest) - 1);
    assert_int_equal(h.version, 1);
    assert_int_equal(h.family, PROXY_FAMILY_KEEP);
    assert_int_equal(h.local, 0);
    /* Whatever follows UNKNOWN is ignored, up to the 107-byte worst case of the specification. */
    static const char worst[] = "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                                "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    assert_int_equal(sizeof(worst) - 1, PROXY_V1_MAX_BYTES);
    h = expect_header((const uint8_t *)worst, sizeof(worst) - 1);
    assert_int_equal(h.family, PROXY_FAMILY_KEEP);
    static const char junk[] = "PROXY UNKNOWN whatever \x01 goes\r\n";
    h = expect_header((const uint8_t *)junk, sizeof(junk) - 1);
    assert_int_equal(h.family, PROXY_FAMILY_KEEP);
}

static void test_v1_length_limit(void **state) {
    (void)state;
    char line[PROXY_V1_MAX_BYTES + 8];
    proxy_header_t h;

    /* 107 bytes with the CRLF at the end: fine. One more byte before it: too long. */
    memset(line, 'x', sizeof(line));
    memcpy(line, "PROXY UNKNOWN ", 14);
    memcpy(line + PROXY_V1_MAX_BYTES - 2, "\r\n", 2);
    expect_header((const uint8_t *)line, PROXY_V1_MAX_BYTES);
    memset(line, 'x', sizeof(line));
    memcpy(line, "PROXY UNKNOWN ", 14);
    memcpy(line + PROXY_V1_MAX_BYTES - 1, "\r\n", 2);
    expect_verdict((const uint8_t *)line, PROXY_V1_MAX_BYTES + 1, -EMSGSIZE);
    /* Without any LF: more is needed until 107 bytes, then it is too long. */
    memset(line, 'x', sizeof(line));
    memcpy(line, "PROXY TCP4 ", 11);
    assert_int_equal(parse_exact((const uint8_t *)line, PROXY_V1_MAX_BYTES - 1, &h), -EAGAIN);
    assert_int_equal(parse_exact((const uint8_t *)line, PROXY_V1_MAX_BYTES, &h), -EMSGSIZE);
    assert_int_equal(parse_exact((const uint8_t *)line, sizeof(line), &h), -EMSGSIZE);
}

static void test_v1_malformed(void **state) {
    (void)state;
    static const char *const bad[] = {
        "PROXYTCP4 1.2.3.4 5.6.7.8 1 2\r\n",        /* no space after the word */
        "PROXY\r\n",                                /* nothing after the word */
        "PROXY \r\n",                               /* no protocol */
        "PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n",      /* two spaces */
        "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",       /* unknown protocol */
        "PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n",       /* lower case */
        "PROXY UNKNOWNX\r\n",                       /* not the word UNKNOWN */
        "PROXY TCP4\r\n",                           /* no addresses */
        "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",         /* no destination port */
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",     /* an extra field */
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",      /* trailing space */
        "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",      /* two spaces between fields */
        "PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n",      /* tab as separator */
        "PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n",         /* three parts */
        "PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n",     /* five parts */
        "PROXY TCP4 1.2..4 5.6.7.8 1 2\r\n",        /* empty part */
        "PROXY TCP4 .1.2.3 5.6.7.8 1 2\r\n",        /* leading dot */
        "PROXY TCP4 256.1.1.1 5.6.7.8 1 2\r\n",     /* part above 255 */
        "PROXY TCP4 1.2.3.4 5.6.7.1000 1 2\r\n",    /* four-digit part */
        "PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n",      /* leading zero (octal?) */
        "PROXY TCP4 1.2.3.4 5.6.7.08 1 2\r\n",      /* leading zero in the destination */
        "PROXY TCP4 1.2.3.a 5.6.7.8 1 2\r\n",       /* not a digit */
        "PROXY TCP4 ::1 5.6.7.8 1 2\r\n",           /* IPv6 source in TCP4 */
        "PROXY TCP4 1.2.3.4 ::1 1 2\r\n",           /* IPv6 destination in TCP4 */
        "PROXY TCP6 1.2.3.4 ::1 1 2\r\n",           /* IPv4 source in TCP6 */
        "PROXY TCP6 ::1 5.6.7.8 1 2\r\n",           /* IPv4 destination in TCP6 */
        "PROXY TCP6 2001:db8:::1 ::1 1 2\r\n",      /* three colons */
        "PROXY TCP6 2001::db8::1 ::1 1 2\r\n",      /* two double colons */
        "PROXY TCP6 12345::1 ::1 1 2\r\n",          /* five hex digits in a group */
        "PROXY TCP6 2001:db8::g ::1 1 2\r\n",       /* not a hex digit */
        "PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n", /* nine groups */
        "PROXY TCP6 [::1] ::1 1 2\r\n",             /* brackets */
        "PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n",      /* zone index */
        "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",   /* port out of range */
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n",   /* port out of range */
        "PROXY TCP4 1.2.3.4 5.6.7.8 100000 2\r\n",  /* six digits */
        "PROXY TCP4 1.2.3.4 5.6.7.8 0443 2\r\n",    /* leading zero in a port */
        "PROXY TCP4 1.2.3.4 5.6.7.8 00 2\r\n",      /* two zeros */
        "PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",      /* negative */
        "PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n",      /* plus sign */
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2x\r\n",      /* junk after a port */
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",         /* bare LF */
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n",     /* two CRs */
        "PROXY TCP4 1.2.3.4\r5.6.7.8 1 2\r\n",      /* a CR inside */
        "PROXY UNKNOWN a\rb\r\n",                   /* a CR inside an UNKNOWN line */
        "PROXY UNKNOWN\n",                          /* bare LF after UNKNOWN */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        proxy_header_t h;
        int rc = parse_str(bad[i], &h);
        if (rc != -EINVAL)
            fail_msg("%zu: \"%s\": %d, expected -EINVAL", i, bad[i], rc);
        expect_verdict_str(bad[i], -EINVAL);
    }
}

/* Bytes that do not start a PROXY header are not one: the connection is served without. */
static void test_not_a_header(void **state) {
    (void)state;
    proxy_header_t h;
    static const char *const none[] = {
        "GET / HTTP/1.1\r\n",
        "POST /x HTTP/1.1\r\n",
        "PUT /x HTTP/1.1\r\n",
        "PATCH /x HTTP/1.1\r\n",
        "PROPFIND /x HTTP/1.1\r\n",
        "PRI * HTTP/2.0\r\n",
        "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n",           /* the word is case-sensitive */
        "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", /* a TLS ClientHello */
    };
    for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
        int rc = parse_str(none[i], &h);
        if (rc != -ENOMSG)
            fail_msg("%zu: \"%s\": %d, expected -ENOMSG", i, none[i], rc);
        expect_verdict_str(none[i], -ENOMSG);
    }
    /* Prefixes of the signatures need more; no bytes at all need more. */
    assert_int_equal(proxy_parse(NULL, 0, &h), -EAGAIN);
    assert_int_equal(parse_str("P", &h), -EAGAIN);
    assert_int_equal(parse_str("PRO", &h), -EAGAIN);
    assert_int_equal(parse_str("PROXY", &h), -EAGAIN);
    assert_int_equal(parse_str("\r", &h), -EAGAIN);
    assert_int_equal(parse_str("\r\n\r\n", &h), -EAGAIN);
    static const uint8_t nul[] = {0};
    assert_int_equal(parse_exact(nul, 1, &h), -ENOMSG);
}

/* ---- version 2 --------------------------------------------------------------------------------
 */

static void test_v2_tcp4(void **state) {
    (void)state;
    uint8_t buf[TEST_BUF_BYTES];
    static const uint8_t body[12] = {203, 0, 113, 7, 10, 0, 0, 1, 0xc3, 0x50, 0x01, 0xbb};
    size_t n = build_v2(buf, 0x21, 0x11, 12, body, sizeof(body));
    proxy_header_t h = expect_header(buf, n);
    uint8_t want[16];
    mapped(want, 203, 0, 113, 7);
    assert_int_equal(h.version, 2);
    assert_int_equal(h.len, 28);
    assert_int_equal(h.family, PROXY_FAMILY_INET);
    assert_int_equal(h.local, 0);
    assert_memory_equal(h.addr, want, 16);
    assert_int_equal(h.port, 50000);
}

static void test_v2_tcp6(void **state) {
    (void)state;
    uint8_t buf[TEST_BUF_BYTES], body[36];
    for (int i = 0; i < 32; i++)
        body[i] = (uint8_t)(0x20 + i);
    body[32] = 0xff;
    body[33] = 0xfe;
    body[34] = 0x00;
    body[35] = 0x50;
    size_t n = build_v2(buf, 0x21, 0x21, 36, body, sizeof(body));
    proxy_header_t h = expect_header(buf, n);
    assert_int_equal(h.len, 52);
    assert_int_equal(h.family, PROXY_FAMILY_INET6);
    assert_memory_equal(h.addr, body, 16);
    assert_int_equal(h.port, 0xfffe);
}

/* TLVs after the addresses are skipped: the header's length includes them, nothing is read. */
static void test_v2_tlvs_skipped(void **state) {
    (void)state;
    uint8_t buf[TEST_BUF_BYTES], body[12 + 64];
    static const uint8_t addrs[12] = {198, 51, 100, 9, 10, 0, 0, 1, 0x12, 0x34, 0x01, 0xbb};
    memcpy(body, addrs, 12);
    /* An AUTHORITY TLV, a NOOP, an AWS-style custom TLV, and a truncated one: none is looked at. */
    static const uint8_t tlvs[] = {0x02, 0x00, 0x0b, 't', 'r', 'a',  'c',  'k',  'e',
                                   'r',  '.',  'e',  'x', 'a', 0x04, 0x00, 0x00, 0xea,
                                   0x00, 0x04, 'v',  'p', 'c', 'e',  0x05, 0xff, 0xff};
    memcpy(body + 12, tlvs, sizeof(tlvs));
    size_t n = build_v2(buf, 0x21, 0x11, (uint16_t)(12 + sizeof(tlvs)), body, 12 + sizeof(tlvs));
    proxy_header_t h = expect_header(buf, n);
    uint8_t want[16];
    mapped(want, 198, 51, 100, 9);
    assert_int_equal(h.len, 16 + 12 + sizeof(tlvs));
    assert_memory_equal(h.addr, want, 16);
    assert_int_equal(h.port, 0x1234);
    /* The same after IPv6 addresses. */
    uint8_t body6[36 + 8] = {0};
    body6[15] = 1;
    memcpy(body6 + 36, "\x04\x00\x05hello", 8);
    n = build_v2(buf, 0x21, 0x21, sizeof(body6), body6, sizeof(body6));
    h = expect_header(buf, n);
    assert_int_equal(h.family, PROXY_FAMILY_INET6);
    assert_int_equal(h.addr[15], 1);
}

static void test_v2_local(void **state) {
    (void)state;
    uint8_t buf[TEST_BUF_BYTES];
    /* LOCAL as HAProxy sends it for health checks: no address. */
    size_t n = build_v2(buf, 0x20, 0x00, 0, NULL, 0);
    proxy_header_t h = expect_header(buf, n);
    assert_int_equal(h.len, 16);
    assert_int_equal(h.local, 1);
    assert_int_equal(h.family, PROXY_FAMILY_KEEP);
    /* LOCAL with addresses, and even a family byte that is not defined: the block is skipped. */
    static const uint8_t body[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    n = build_v2(buf, 0x20, 0x11, 12, body, sizeof(body));
    h = expect_header(buf, n);
    assert_int_equal(h.local, 1);
    assert_int_equal(h.family, PROXY_FAMILY_KEEP);
    n = build_v2(buf, 0x20, 0xff, 3, body, 3);
    h = expect_header(buf, n);
    assert_int_equal(h.local, 1);
}

/* Valid combinations we do not take fall back to the connection's address, as the
 * specification asks: unspecified, UDP, UNIX sockets. */
static void test_v2_fallbacks(void **state) {
    (void)state;
    uint8_t buf[TEST_BUF_BYTES], body[216 + 4];
    memset(body, 0x41, sizeof(body));
    static const struct {
        uint8_t fam;
        uint16_t len;
    } cases[] = {
        {0x00, 0},   /* UNSPEC */
        {0x00, 7},   /* UNSPEC with bytes to skip */
        {0x01, 0},   /* unspecified family, stream */
        {0x10, 0},   /* IPv4, unspecified transport */
        {0x12, 12},  /* UDP over IPv4 */
        {0x22, 36},  /* UDP over IPv6 */
        {0x31, 216}, /* UNIX stream */
        {0x32, 220}, /* UNIX datagram, with a TLV */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = build_v2(buf, 0x21, cases[i].fam, cases[i].len, body, cases[i].len);
        proxy_header_t h = expect_header(buf, n);
        assert_int_equal(h.family, PROXY_FAMILY_KEEP);
        assert_int_equal(h.local, 0);
        assert_int_equal(h.len, 16 + cases[i].len);
    }
}

static void test_v2_malformed(void **state) {
    (void)state;
    uint8_t buf[TEST_BUF_BYTES], body[256];
    memset(body, 0, sizeof(body));
    size_t n;

    /* A broken signature after its first byte, at every position. */
    for (size_t i = 1; i < 12; i++) {
        n = build_v2(buf, 0x21, 0x11, 12, body, 12);
        buf[i] ^= 0x20;
        expect_verdict(buf, n, -EINVAL);
    }
    /* Versions other than 2. */
    static const uint8_t versions[] = {0x01, 0x11, 0x31, 0xf1, 0x00};
    for (size_t i = 0; i < sizeof(versions); i++) {
        n = build_v2(buf, versions[i], 0x11, 12, body, 12);
        expect_verdict(buf, n, -EPROTONOSUPPORT);
    }
    /* Commands other than LOCAL and PROXY. */
    n = build_v2(buf, 0x22, 0x11, 12, body, 12);
    expect_verdict(buf, n, -EINVAL);
    n = build_v2(buf, 0x2f, 0x11, 12, body, 12);
    expect_verdict(buf, n, -EINVAL);
    /* Families and transports that are not defined. */
    static const uint8_t fams[] = {0x41, 0xf1, 0x13, 0x1f, 0x03};
    for (size_t i = 0; i < sizeof(fams); i++) {
        n = build_v2(buf, 0x21, fams[i], 12, body, 12);
        expect_verdict(buf, n, -EINVAL);
    }
    /* An address block shorter than its family needs. */
    n = build_v2(buf, 0x21, 0x11, 11, body, 11);
    expect_verdict(buf, n, -EINVAL);
    n = build_v2(buf, 0x21, 0x21, 35, body, 35);
    expect_verdict(buf, n, -EINVAL);
    n = build_v2(buf, 0x21, 0x21, 12, body, 12);
    expect_verdict(buf, n, -EINVAL);
    n = build_v2(buf, 0x21, 0x31, 215, body, 215);
    expect_verdict(buf, n, -EINVAL);
    n = build_v2(buf, 0x21, 0x12, 0, body, 0);
    expect_verdict(buf, n, -EINVAL);
}

/* The length field is refused above its cap at once, before the rest is waited for. */
static void test_v2_length_cap(void **state) {
    (void)state;
    static uint8_t buf[PROXY_MAX_HEADER_BYTES + 64];
    proxy_header_t h;
    static uint8_t body[PROXY_V2_MAX_LEN];
    size_t n = build_v2(buf, 0x21, 0x11, PROXY_V2_MAX_LEN, body, PROXY_V2_MAX_LEN);
    assert_int_equal(n, PROXY_MAX_HEADER_BYTES);
    assert_int_equal(parse_exact(buf, n - 1, &h), -EAGAIN);
    assert_int_equal(parse_exact(buf, n, &h), 0);
    assert_int_equal(h.len, PROXY_MAX_HEADER_BYTES);
    n = build_v2(buf, 0x21, 0x11, PROXY_V2_MAX_LEN + 1, body, 0);
    assert_int_equal(parse_exact(buf, 15, &h), -EAGAIN);
    assert_int_equal(parse_exact(buf, 16, &h), -EMSGSIZE);
    n = build_v2(buf, 0x20, 0x00, 0xffff, body, 0);
    assert_int_equal(parse_exact(buf, 16, &h), -EMSGSIZE);
}

static void test_has_signature(void **state) {
    (void)state;
    uint8_t buf[64];
    assert_int_equal(proxy_has_signature((const uint8_t *)"PROXY TCP4", 10), 1);
    assert_int_equal(proxy_has_signature((const uint8_t *)"PROXY ", 6), 1);
    assert_int_equal(proxy_has_signature((const uint8_t *)"PROXY", 5), 0);
    assert_int_equal(proxy_has_signature((const uint8_t *)"PROXYZ", 6), 0);
    assert_int_equal(proxy_has_signature((const uint8_t *)"GET / HTTP/1.1", 14), 0);
    size_t n = build_v2(buf, 0x21, 0x11, 0, NULL, 0);
    assert_int_equal(proxy_has_signature(buf, n), 1);
    assert_int_equal(proxy_has_signature(buf, 12), 1);
    assert_int_equal(proxy_has_signature(buf, 11), 0);
    assert_int_equal(proxy_has_signature(NULL, 0), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_tcp4),         cmocka_unit_test(test_v1_tcp6),
        cmocka_unit_test(test_v1_unknown),      cmocka_unit_test(test_v1_length_limit),
        cmocka_unit_test(test_v1_malformed),    cmocka_unit_test(test_not_a_header),
        cmocka_unit_test(test_v2_tcp4),         cmocka_unit_test(test_v2_tcp6),
        cmocka_unit_test(test_v2_tlvs_skipped), cmocka_unit_test(test_v2_local),
        cmocka_unit_test(test_v2_fallbacks),    cmocka_unit_test(test_v2_malformed),
        cmocka_unit_test(test_v2_length_cap),   cmocka_unit_test(test_has_signature),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
