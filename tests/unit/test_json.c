/* test_json.c: unit tests of the strict JSON tokenizer and its accessors (src/json/json.c). */
#include "unit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json/json.h"

/* Token capacity of the tests that do not test the limit itself. */
#define TEST_MAX_TOKS 1024

/* A byte string that may hold NUL bytes: the length comes from sizeof, not strlen. */
typedef struct bytes {
    const char *s;
    size_t len;
} bytes_t;
#define B(lit)                                                                                     \
    { lit, sizeof(lit) - 1 }

/* The messages of protocols.md section 1.8, byte-exact from webtorrent-examples/: the 7-bit
 * form (escapes only) and the form JSON.stringify puts on the wire (raw UTF-8, raw DEL). */
static const char WT_ANNOUNCE_ASCII[] =
    "{\"numwant\":5,\"uploaded\":0,\"downloaded\":0,\"left\":129241752,\"event\":\"started\",\"ac"
    "tion\":\"announce\",\"info_hash\":\"\\b\\u00ad\\u00a5\\u00a7\\u00a6\\u0018:\\u00ae\\u001e\\t"
    "\\u00d81\\u00dfgH\\u00d5f\\tZ\\u0010\",\"peer_id\":\"-WW0208-k3J9xQ2mVbLp\",\"offers\":[{\"o"
    "ffer\":{\"type\":\"offer\",\"sdp\":\"v=0\\r\\no=- 4611731400430051336 2 IN IP4 127.0.0.1\\r"
    "\\ns=-\\r\\nt=0 0\\r\\na=group:BUNDLE 0\\r\\nm=application 9 UDP/DTLS/SCTP webrtc-datachanne"
    "l\\r\\n...\"},\"offer_id\":\"\\u009f\\u001c.z\\u0000\\u00ff\\u0010\\u0080[\\\\\\\"1\\u007f\\"
    "r\\n\\u001b,=N_\"}]}";
static const char WT_ANNOUNCE_RESPONSE_ASCII[] =
    "{\"complete\":0,\"incomplete\":1,\"action\":\"announce\",\"interval\":120,\"info_hash\":\"\\"
    "b\\u00ad\\u00a5\\u00a7\\u00a6\\u0018:\\u00ae\\u001e\\t\\u00d81\\u00dfgH\\u00d5f\\tZ\\u0010\""
    "}";
static const char WT_RELAYED_OFFER_ASCII[] =
    "{\"action\":\"announce\",\"offer\":{\"type\":\"offer\",\"sdp\":\"v=0\\r\\no=- 46117314004300"
    "51336 2 IN IP4 127.0.0.1\\r\\ns=-\\r\\nt=0 0\\r\\na=group:BUNDLE 0\\r\\nm=application 9 UDP/"
    "DTLS/SCTP webrtc-datachannel\\r\\n...\"},\"offer_id\":\"\\u009f\\u001c.z\\u0000\\u00ff\\u001"
    "0\\u0080[\\\\\\\"1\\u007f\\r\\n\\u001b,=N_\",\"peer_id\":\"-WW0208-k3J9xQ2mVbLp\",\"info_has"
    "h\":\"\\b\\u00ad\\u00a5\\u00a7\\u00a6\\u0018:\\u00ae\\u001e\\t\\u00d81\\u00dfgH\\u00d5f\\tZ"
    "\\u0010\"}";
static const char WT_ANSWER_ASCII[] =
    "{\"action\":\"announce\",\"info_hash\":\"\\b\\u00ad\\u00a5\\u00a7\\u00a6\\u0018:\\u00ae\\u00"
    "1e\\t\\u00d81\\u00dfgH\\u00d5f\\tZ\\u0010\",\"peer_id\":\"-WW0208-Zt7uR1cPq0sN\",\"to_peer_i"
    "d\":\"-WW0208-k3J9xQ2mVbLp\",\"answer\":{\"type\":\"answer\",\"sdp\":\"v=0\\r\\no=- 82241314"
    "00430051999 2 IN IP4 127.0.0.1\\r\\n...\"},\"offer_id\":\"\\u009f\\u001c.z\\u0000\\u00ff\\u0"
    "010\\u0080[\\\\\\\"1\\u007f\\r\\n\\u001b,=N_\"}";
static const char WT_RELAYED_ANSWER_ASCII[] =
    "{\"action\":\"announce\",\"answer\":{\"type\":\"answer\",\"sdp\":\"v=0\\r\\no=- 822413140043"
    "0051999 2 IN IP4 127.0.0.1\\r\\n...\"},\"offer_id\":\"\\u009f\\u001c.z\\u0000\\u00ff\\u0010"
    "\\u0080[\\\\\\\"1\\u007f\\r\\n\\u001b,=N_\",\"peer_id\":\"-WW0208-Zt7uR1cPq0sN\",\"info_hash"
    "\":\"\\b\\u00ad\\u00a5\\u00a7\\u00a6\\u0018:\\u00ae\\u001e\\t\\u00d81\\u00dfgH\\u00d5f\\tZ\\"
    "u0010\"}";
static const char WT_SCRAPE_ASCII[] =
    "{\"action\":\"scrape\",\"info_hash\":[\"\\b\\u00ad\\u00a5\\u00a7\\u00a6\\u0018:\\u00ae\\u001"
    "e\\t\\u00d81\\u00dfgH\\u00d5f\\tZ\\u0010\"]}";
static const char WT_SCRAPE_RESPONSE_ASCII[] =
    "{\"action\":\"scrape\",\"files\":{\"\\b\\u00ad\\u00a5\\u00a7\\u00a6\\u0018:\\u00ae\\u001e\\t"
    "\\u00d81\\u00dfgH\\u00d5f\\tZ\\u0010\":{\"complete\":1,\"incomplete\":1,\"downloaded\":1}},"
    "\"flags\":{\"min_request_interval\":600}}";
static const char WT_FAILURE_ASCII[] =
    "{\"action\":\"announce\",\"failure reason\":\"disallowed torrent\",\"info_hash\":\"\\b\\u00a"
    "d\\u00a5\\u00a7\\u00a6\\u0018:\\u00ae\\u001e\\t\\u00d81\\u00dfgH\\u00d5f\\tZ\\u0010\"}";
static const char WT_PARSE_FAILURE_ASCII[] = "{\"failure reason\":\"invalid info_hash\"}";
static const char WT_STOPPED_ASCII[] =
    "{\"numwant\":50,\"uploaded\":1024,\"downloaded\":129241752,\"left\":0,\"event\":\"stopped\","
    "\"action\":\"announce\",\"info_hash\":\"\\b\\u00ad\\u00a5\\u00a7\\u00a6\\u0018:\\u00ae\\u001"
    "e\\t\\u00d81\\u00dfgH\\u00d5f\\tZ\\u0010\",\"peer_id\":\"-WW0208-k3J9xQ2mVbLp\"}";
static const char WT_ANNOUNCE_RAW[] =
    "{\"numwant\":5,\"uploaded\":0,\"downloaded\":0,\"left\":129241752,\"event\":\"started\",\"ac"
    "tion\":\"announce\",\"info_hash\":\"\\b\302\255\302\245\302\247\302\246\\u0018:\302\256\\u00"
    "1e\\t\303\2301\303\237gH\303\225f\\tZ\\u0010\",\"peer_id\":\"-WW0208-k3J9xQ2mVbLp\",\"offers"
    "\":[{\"offer\":{\"type\":\"offer\",\"sdp\":\"v=0\\r\\no=- 4611731400430051336 2 IN IP4 127.0"
    ".0.1\\r\\ns=-\\r\\nt=0 0\\r\\na=group:BUNDLE 0\\r\\nm=application 9 UDP/DTLS/SCTP webrtc-dat"
    "achannel\\r\\n...\"},\"offer_id\":\"\302\237\\u001c.z\\u0000\303\277\\u0010\302\200[\\\\\\\""
    "1\177\\r\\n\\u001b,=N_\"}]}";
static const char WT_ANNOUNCE_RESPONSE_RAW[] =
    "{\"complete\":0,\"incomplete\":1,\"action\":\"announce\",\"interval\":120,\"info_hash\":\"\\"
    "b\302\255\302\245\302\247\302\246\\u0018:\302\256\\u001e\\t\303\2301\303\237gH\303\225f\\tZ"
    "\\u0010\"}";
static const char WT_RELAYED_OFFER_RAW[] =
    "{\"action\":\"announce\",\"offer\":{\"type\":\"offer\",\"sdp\":\"v=0\\r\\no=- 46117314004300"
    "51336 2 IN IP4 127.0.0.1\\r\\ns=-\\r\\nt=0 0\\r\\na=group:BUNDLE 0\\r\\nm=application 9 UDP/"
    "DTLS/SCTP webrtc-datachannel\\r\\n...\"},\"offer_id\":\"\302\237\\u001c.z\\u0000\303\277\\u0"
    "010\302\200[\\\\\\\"1\177\\r\\n\\u001b,=N_\",\"peer_id\":\"-WW0208-k3J9xQ2mVbLp\",\"info_has"
    "h\":\"\\b\302\255\302\245\302\247\302\246\\u0018:\302\256\\u001e\\t\303\2301\303\237gH\303"
    "\225f\\tZ\\u0010\"}";
static const char WT_ANSWER_RAW[] =
    "{\"action\":\"announce\",\"info_hash\":\"\\b\302\255\302\245\302\247\302\246\\u0018:\302\256"
    "\\u001e\\t\303\2301\303\237gH\303\225f\\tZ\\u0010\",\"peer_id\":\"-WW0208-Zt7uR1cPq0sN\",\"t"
    "o_peer_id\":\"-WW0208-k3J9xQ2mVbLp\",\"answer\":{\"type\":\"answer\",\"sdp\":\"v=0\\r\\no=- "
    "8224131400430051999 2 IN IP4 127.0.0.1\\r\\n...\"},\"offer_id\":\"\302\237\\u001c.z\\u0000"
    "\303\277\\u0010\302\200[\\\\\\\"1\177\\r\\n\\u001b,=N_\"}";
static const char WT_RELAYED_ANSWER_RAW[] =
    "{\"action\":\"announce\",\"answer\":{\"type\":\"answer\",\"sdp\":\"v=0\\r\\no=- 822413140043"
    "0051999 2 IN IP4 127.0.0.1\\r\\n...\"},\"offer_id\":\"\302\237\\u001c.z\\u0000\303\277\\u001"
    "0\302\200[\\\\\\\"1\177\\r\\n\\u001b,=N_\",\"peer_id\":\"-WW0208-Zt7uR1cPq0sN\",\"info_hash"
    "\":\"\\b\302\255\302\245\302\247\302\246\\u0018:\302\256\\u001e\\t\303\2301\303\237gH\303"
    "\225f\\tZ\\u0010\"}";
static const char WT_SCRAPE_RAW[] =
    "{\"action\":\"scrape\",\"info_hash\":[\"\\b\302\255\302\245\302\247\302\246\\u0018:\302\256"
    "\\u001e\\t\303\2301\303\237gH\303\225f\\tZ\\u0010\"]}";
static const char WT_SCRAPE_RESPONSE_RAW[] =
    "{\"action\":\"scrape\",\"files\":{\"\\b\302\255\302\245\302\247\302\246\\u0018:\302\256\\u00"
    "1e\\t\303\2301\303\237gH\303\225f\\tZ\\u0010\":{\"complete\":1,\"incomplete\":1,\"downloaded"
    "\":1}},\"flags\":{\"min_request_interval\":600}}";
static const char WT_FAILURE_RAW[] =
    "{\"action\":\"announce\",\"failure reason\":\"disallowed torrent\",\"info_hash\":\"\\b\302"
    "\255\302\245\302\247\302\246\\u0018:\302\256\\u001e\\t\303\2301\303\237gH\303\225f\\tZ\\u001"
    "0\"}";
static const char WT_PARSE_FAILURE_RAW[] = "{\"failure reason\":\"invalid info_hash\"}";
static const char WT_STOPPED_RAW[] =
    "{\"numwant\":50,\"uploaded\":1024,\"downloaded\":129241752,\"left\":0,\"event\":\"stopped\","
    "\"action\":\"announce\",\"info_hash\":\"\\b\302\255\302\245\302\247\302\246\\u0018:\302\256"
    "\\u001e\\t\303\2301\303\237gH\303\225f\\tZ\\u0010\",\"peer_id\":\"-WW0208-k3J9xQ2mVbLp\"}";

static int parse(const char *s, size_t len, json_tok_t *toks) {
    return json_parse(s, len, toks, TEST_MAX_TOKS, JSON_DEFAULT_MAX_DEPTH);
}

static int parse_str(const char *s, json_tok_t *toks) {
    return parse(s, strlen(s), toks);
}

/* Asserts the fields of one token. */
static void check_tok(const json_tok_t *t, json_type_t type, uint32_t start, uint32_t end,
                      uint32_t size, uint32_t next) {
    assert_int_equal(t->type, type);
    assert_int_equal(t->start, start);
    assert_int_equal(t->end, end);
    assert_int_equal(t->size, size);
    assert_int_equal(t->next, next);
}

/* Checks the structural invariants every successful parse must satisfy: pre-order, `next` after
 * the subtree, `size` equal to the number of direct children (members for objects), object keys
 * are strings, and offsets nested within the parent. Returns the index after the subtree. */
static int check_tree(const json_tok_t *toks, int n, int i) {
    assert_true(i < n);
    const json_tok_t *t = &toks[i];
    assert_true(t->start <= t->end);
    int j = i + 1;
    if (t->type == JSON_OBJECT || t->type == JSON_ARRAY) {
        uint32_t per = t->type == JSON_OBJECT ? 2 : 1;
        for (uint32_t m = 0; m < t->size * per; m++) {
            if (t->type == JSON_OBJECT && m % 2 == 0)
                assert_int_equal(toks[j].type, JSON_STRING);
            assert_true(toks[j].start > t->start && toks[j].end < t->end);
            j = check_tree(toks, n, j);
        }
    } else {
        assert_int_equal(t->size, 0);
    }
    assert_int_equal(t->next, j);
    return j;
}

static void check_whole(const json_tok_t *toks, int n) {
    assert_true(n >= 1);
    assert_int_equal(check_tree(toks, n, 0), n);
}

/* ---------------------------------------------------------------------------------------------
 * Valid documents */

static void test_scalars(void **state) {
    (void)state;
    json_tok_t t[4];
    assert_int_equal(parse_str("true", t), 1);
    check_tok(&t[0], JSON_TRUE, 0, 4, 0, 1);
    assert_int_equal(parse_str("false", t), 1);
    check_tok(&t[0], JSON_FALSE, 0, 5, 0, 1);
    assert_int_equal(parse_str("null", t), 1);
    check_tok(&t[0], JSON_NULL, 0, 4, 0, 1);
    assert_int_equal(parse_str("-12.5e+3", t), 1);
    check_tok(&t[0], JSON_NUMBER, 0, 8, 0, 1);
    /* A string token covers its content, without the quotes. */
    assert_int_equal(parse_str("\"abc\"", t), 1);
    check_tok(&t[0], JSON_STRING, 1, 4, 0, 1);
    assert_int_equal(t[0].escaped, 0);
    assert_int_equal(parse_str("\"\"", t), 1);
    check_tok(&t[0], JSON_STRING, 1, 1, 0, 1);
    /* All four RFC 8259 whitespace bytes around the value. */
    assert_int_equal(parse_str(" \t\r\n 42 \n\t\r ", t), 1);
    check_tok(&t[0], JSON_NUMBER, 5, 7, 0, 1);
}

static void test_valid_numbers(void **state) {
    (void)state;
    static const char *const ok[] = {
        "0",        "-0",    "0.0",   "-0.0",  "0e0",
        "0E+1",     "0e-1",  "1",     "10",    "-10",
        "1.5",      "1e5",   "1E5",   "1e+5",  "1e-5",
        "1.25e-05", "123.4", "9e999", "-1e-9", "1234567890123456789012345678901234567890",
        "0.000001",
    };
    json_tok_t t[2];
    for (size_t k = 0; k < sizeof ok / sizeof ok[0]; k++) {
        int n = parse_str(ok[k], t);
        if (n != 1)
            fail_msg("\"%s\" was refused (%d)", ok[k], n);
        check_tok(&t[0], JSON_NUMBER, 0, (uint32_t)strlen(ok[k]), 0, 1);
    }
}

static void test_empty_containers(void **state) {
    (void)state;
    json_tok_t t[8];
    assert_int_equal(parse_str("{}", t), 1);
    check_tok(&t[0], JSON_OBJECT, 0, 2, 0, 1);
    assert_int_equal(parse_str("[]", t), 1);
    check_tok(&t[0], JSON_ARRAY, 0, 2, 0, 1);
    assert_int_equal(parse_str(" [ ] ", t), 1);
    check_tok(&t[0], JSON_ARRAY, 1, 4, 0, 1);
    assert_int_equal(parse_str("[[],{}]", t), 3);
    check_tok(&t[0], JSON_ARRAY, 0, 7, 2, 3);
    check_tok(&t[1], JSON_ARRAY, 1, 3, 0, 2);
    check_tok(&t[2], JSON_OBJECT, 4, 6, 0, 3);
    assert_int_equal(parse_str("{\"a\":{}}", t), 3);
    check_tok(&t[0], JSON_OBJECT, 0, 8, 1, 3);
    check_tok(&t[1], JSON_STRING, 2, 3, 0, 2);
    check_tok(&t[2], JSON_OBJECT, 5, 7, 0, 3);
}

static void test_preorder_next_size(void **state) {
    (void)state;
    /*                  0           1              2             3
     *                  0 12 3456789 01 234567890 12 3 456 78 9012 */
    const char *doc = "{\"a\":[1,{\"b\":null},\"x\"],\"c\":true}";
    json_tok_t t[16];
    int n = parse_str(doc, t);
    assert_int_equal(n, 10);
    check_tok(&t[0], JSON_OBJECT, 0, 33, 2, 10);
    check_tok(&t[1], JSON_STRING, 2, 3, 0, 2);
    check_tok(&t[2], JSON_ARRAY, 5, 23, 3, 8);
    check_tok(&t[3], JSON_NUMBER, 6, 7, 0, 4);
    check_tok(&t[4], JSON_OBJECT, 8, 18, 1, 7);
    check_tok(&t[5], JSON_STRING, 10, 11, 0, 6);
    check_tok(&t[6], JSON_NULL, 13, 17, 0, 7);
    check_tok(&t[7], JSON_STRING, 20, 21, 0, 8);
    check_tok(&t[8], JSON_STRING, 25, 26, 0, 9);
    check_tok(&t[9], JSON_TRUE, 28, 32, 0, 10);
    check_whole(t, n);
}

static void test_nested_mixed(void **state) {
    (void)state;
    const char *doc = " { \"k\" : [ [ 1 , [ ] ] , { \"x\" : { \"y\" : [ false ] } } , \"s\" ] ,"
                      " \"z\" : { } , \"n\" : -0.5e-3 } ";
    json_tok_t t[32];
    int n = parse_str(doc, t);
    assert_int_equal(n, 17);
    check_whole(t, n);
    assert_int_equal(t[0].size, 3);
    assert_int_equal(t[2].type, JSON_ARRAY);
    assert_int_equal(t[2].size, 3);
    /* The closing bracket of the root is the last non-space byte. */
    assert_int_equal(t[0].end, strlen(doc) - 1);
    assert_int_equal(doc[t[0].end - 1], '}');
}

static void test_whitespace_everywhere(void **state) {
    (void)state;
    const char *doc = "\r\n\t {\t\"a\"\n:\r[ 1\t,\n2 ]\t,\"b\" : \"c\"\r}\n";
    json_tok_t t[8];
    int n = parse_str(doc, t);
    assert_int_equal(n, 7);
    check_whole(t, n);
}

/* ---------------------------------------------------------------------------------------------
 * Malformed documents */

static void test_malformed(void **state) {
    (void)state;
    static const bytes_t bad[] = {
        /* Empty or blank. */
        B(""),
        B(" "),
        B("\r\n\t"),
        /* Trailing and missing commas, misplaced separators. */
        B("[1,]"),
        B("{\"a\":1,}"),
        B("[,1]"),
        B("{,}"),
        B("[1 2]"),
        B("{\"a\":1 \"b\":2}"),
        B("[1,,2]"),
        B("{\"a\" 1}"),
        B("{\"a\":}"),
        B("{\"a\"}"),
        B("{\"a\"::1}"),
        B("{\"a\":1:2}"),
        B("[\"a\":1]"),
        B("{:1}"),
        B(","),
        B(":"),
        /* Keys must be strings. */
        B("{1:2}"),
        B("{a:1}"),
        B("{null:1}"),
        B("{'a':1}"),
        /* Mismatched or extra brackets. */
        B("[}"),
        B("{]"),
        B("[1}"),
        B("{\"a\":1]"),
        B("]"),
        B("}"),
        B("[1]]"),
        B("{}}"),
        /* Numbers outside the grammar. */
        B("01"),
        B("-01"),
        B("00"),
        B("1."),
        B(".5"),
        B("-"),
        B("+1"),
        B("1e"),
        B("1e+"),
        B("1.e5"),
        B("0x10"),
        B("1_000"),
        B("--1"),
        B("- 1"),
        B("1.5.5"),
        B("1e5e5"),
        B("NaN"),
        B("Infinity"),
        B("-Infinity"),
        B("[01]"),
        B("{\"a\":01}"),
        /* Literals. */
        B("tru"),
        B("nul"),
        B("fals"),
        B("True"),
        B("NULL"),
        B("truex"),
        B("nulll"),
        B("t"),
        /* Bad escapes. */
        B("\"\\x\""),
        B("\"\\a\""),
        B("\"\\U0041\""),
        B("\"\\'\""),
        B("\"\\u12\""),
        B("\"\\u12G4\""),
        B("\"\\u\""),
        B("\"\\"),
        B("\"\\u00"),
        B("\"\\\""),
        B("\"\\0\""),
        /* Surrogates: lone high, lone low, high followed by something else. */
        B("\"\\uD800\""),
        B("\"\\uDBFF\""),
        B("\"\\uDC00\""),
        B("\"\\uDFFF\""),
        B("\"\\uD800\\u0041\""),
        B("\"\\uD800x\""),
        B("\"\\uDBFF\\uDBFF\""),
        B("\"\\uD800\\n\""),
        B("\"\\uD800\\uD800\\uDC00\""),
        B("\"\\uDC00\\uD800\""),
        B("\"\\ud800\\u"),
        B("\"\\ud800\\udc0"),
        /* Raw control characters in strings. */
        B("\"a\tb\""),
        B("\"a\nb\""),
        B("\"\x01\""),
        B("\"\x1f\""),
        B("\"\0\""),
        B("\"\r\""),
        /* Trailing garbage after a complete value. */
        B("1 2"),
        B("{} x"),
        B("[] []"),
        B("\"a\"\"b\""),
        B("null,"),
        B("1\0"),
        B("{}\0"),
        B("[1]//"),
        B("true false"),
        /* Unterminated. */
        B("\"abc"),
        B("[1"),
        B("{\"a\":1"),
        B("["),
        B("{"),
        B("[[]"),
        B("{\"a\""),
        B("{\"a\":"),
        B("[1,"),
        B("\""),
        /* Not JSON at all, or extensions we refuse. */
        B("'a'"),
        B("/*c*/1"),
        B("\xef\xbb\xbf{}"),
        B("\f1"),
        B("\v1"),
        B("\x00"),
        B("\xa0"
          "1"),
        B("undefined"),
        B("{\"a\":1}{"),
    };
    json_tok_t t[16];
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        int n = parse(bad[k].s, bad[k].len, t);
        if (n != -EINVAL)
            fail_msg("case %zu (%.*s) gave %d, want -EINVAL", k, (int)bad[k].len, bad[k].s, n);
    }
}

/* The string scan reads eight bytes at a time; put every kind of special byte at every offset
 * around a word boundary and make sure none is skipped. */
static void test_string_scan_positions(void **state) {
    (void)state;
    char buf[64];
    json_tok_t t[2];
    for (size_t len = 0; len < 40; len++) {
        for (size_t pos = 0; pos < len; pos++) {
            buf[0] = '"';
            memset(buf + 1, 'a', len);
            buf[len + 1] = '"';
            /* A raw control character anywhere is refused. */
            buf[1 + pos] = '\x1f';
            assert_int_equal(parse(buf, len + 2, t), -EINVAL);
            buf[1 + pos] = '\0';
            assert_int_equal(parse(buf, len + 2, t), -EINVAL);
            /* A quote anywhere ends the string early: what follows is garbage. */
            buf[1 + pos] = '"';
            assert_int_equal(parse(buf, len + 2, t), -EINVAL);
            /* An invalid escape anywhere is refused. */
            buf[1 + pos] = '\\';
            assert_int_equal(parse(buf, len + 2, t), -EINVAL);
            /* Bytes that differ from the special ones only in the top bit are ordinary. */
            static const unsigned char highs[] = {0xa2, 0xdc, 0x80, 0x9f, 0xff, 0x7f, 0x20};
            for (size_t h = 0; h < sizeof highs; h++) {
                buf[1 + pos] = (char)highs[h];
                assert_int_equal(parse(buf, len + 2, t), 1);
                check_tok(&t[0], JSON_STRING, 1, (uint32_t)(len + 1), 0, 1);
                assert_int_equal(t[0].escaped, 0);
            }
            /* A valid escape anywhere is found and flagged. */
            if (pos + 1 < len) {
                buf[1 + pos] = '\\';
                buf[2 + pos] = 'n';
                assert_int_equal(parse(buf, len + 2, t), 1);
                assert_int_equal(t[0].escaped, 1);
                assert_int_equal(t[0].end, len + 1);
            }
        }
    }
}

/* ---------------------------------------------------------------------------------------------
 * Limits */

static char *nested(size_t depth, char open, char close, size_t *len) {
    char *s = malloc(2 * depth + 1);
    assert_non_null(s);
    memset(s, open, depth);
    memset(s + depth, close, depth);
    s[2 * depth] = '\0';
    *len = 2 * depth;
    return s;
}

static void test_depth_limit(void **state) {
    (void)state;
    json_tok_t t[64];
    size_t len;
    char *s = nested(JSON_DEFAULT_MAX_DEPTH, '[', ']', &len);
    assert_int_equal(json_parse(s, len, t, 64, JSON_DEFAULT_MAX_DEPTH), JSON_DEFAULT_MAX_DEPTH);
    check_whole(t, JSON_DEFAULT_MAX_DEPTH);
    free(s);
    s = nested(JSON_DEFAULT_MAX_DEPTH + 1, '[', ']', &len);
    assert_int_equal(json_parse(s, len, t, 64, JSON_DEFAULT_MAX_DEPTH), -ELOOP);
    assert_int_equal(json_parse(s, len, t, 64, JSON_DEFAULT_MAX_DEPTH + 1),
                     JSON_DEFAULT_MAX_DEPTH + 1);
    free(s);

    /* Objects count as levels too: {"a":{"a":{"a":1}}} is three deep. */
    const char *obj3 = "{\"a\":{\"a\":{\"a\":1}}}";
    assert_int_equal(json_parse(obj3, strlen(obj3), t, 64, 3), 7);
    assert_int_equal(json_parse(obj3, strlen(obj3), t, 64, 2), -ELOOP);
    /* Depth 0 allows scalars only. */
    assert_int_equal(json_parse("1", 1, t, 64, 0), 1);
    assert_int_equal(json_parse("[]", 2, t, 64, 0), -ELOOP);
    /* Depth is nesting, not the number of containers: siblings do not add up. */
    const char *flat = "[[],[],[],[]]";
    assert_int_equal(json_parse(flat, strlen(flat), t, 64, 2), 5);

    /* A hostile prefix is refused as soon as it is too deep, even if it never closes. */
    s = nested(100000, '[', ']', &len);
    assert_int_equal(json_parse(s, 100000, t, 64, JSON_DEFAULT_MAX_DEPTH), -ELOOP);
    /* The tokenizer keeps no stack of its own, so a very deep document costs no C stack. */
    json_tok_t *big = malloc(100000 * sizeof *big);
    assert_non_null(big);
    assert_int_equal(json_parse(s, len, big, 100000, UINT32_MAX), 100000);
    assert_int_equal(big[0].next, 100000);
    assert_int_equal(big[99999].next, 100000);
    assert_int_equal(big[0].end, len);
    assert_int_equal(big[50000].size, 1);
    free(big);
    free(s);
}

static void test_token_limit(void **state) {
    (void)state;
    json_tok_t t[8];
    assert_int_equal(json_parse("[1,2,3]", 7, t, 4, 4), 4);
    assert_int_equal(json_parse("[1,2,3]", 7, t, 3, 4), -ENOSPC);
    assert_int_equal(json_parse("1", 1, t, 0, 4), -ENOSPC);
    assert_int_equal(json_parse("1", 1, t, 1, 4), 1);
    /* Keys are tokens. */
    assert_int_equal(json_parse("{\"a\":1}", 7, t, 2, 4), -ENOSPC);
    assert_int_equal(json_parse("{\"a\":1}", 7, t, 3, 4), 3);
    /* An empty key or container is one token too. */
    assert_int_equal(json_parse("{\"\":[]}", 7, t, 2, 4), -ENOSPC);

    /* The default budget holds a WebTorrent announce with ten offers. */
    char doc[4096];
    size_t o = (size_t)snprintf(doc, sizeof doc, "{\"action\":\"announce\",\"offers\":[");
    for (int k = 0; k < 10; k++)
        o += (size_t)snprintf(
            doc + o, sizeof doc - o,
            "%s{\"offer\":{\"type\":\"offer\",\"sdp\":\"v=0\"},\"offer_id\":\"x\"}", k ? "," : "");
    o += (size_t)snprintf(doc + o, sizeof doc - o, "]}");
    json_tok_t *big = malloc(JSON_DEFAULT_MAX_TOKENS * sizeof *big);
    assert_non_null(big);
    int n = json_parse(doc, o, big, JSON_DEFAULT_MAX_TOKENS, JSON_DEFAULT_MAX_DEPTH);
    assert_int_equal(n, 5 + 10 * 9);
    check_whole(big, n);
    assert_int_equal(json_parse(doc, o, big, (uint32_t)n - 1, JSON_DEFAULT_MAX_DEPTH), -ENOSPC);
    free(big);
}

/* ---------------------------------------------------------------------------------------------
 * Strings */

static void test_escapes_unescape(void **state) {
    (void)state;
    const char *doc = "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0041\\u00e9\\u20AC\\ud83d\\ude00\\u0000z\"";
    const char want[] = "\"\\/\b\f\n\r\tA\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\0z";
    json_tok_t t[2];
    assert_int_equal(parse_str(doc, t), 1);
    assert_int_equal(t[0].escaped, 1);
    char out[64];
    int n = json_str_unescape(doc, &t[0], out, sizeof out);
    assert_int_equal(n, sizeof want - 1);
    assert_memory_equal(out, want, sizeof want - 1);
    /* An exact fit works; one byte less is -ENOSPC. */
    assert_int_equal(json_str_unescape(doc, &t[0], out, sizeof want - 1), sizeof want - 1);
    assert_int_equal(json_str_unescape(doc, &t[0], out, sizeof want - 2), -ENOSPC);
    /* The cap also bounds a multi-byte escape that does not fit whole. */
    assert_int_equal(json_str_unescape(doc, &t[0], out, 10), -ENOSPC);

    /* Raw UTF-8 and DEL pass through untouched, and the token is not flagged. */
    const char *raw = "\"caf\xc3\xa9 \x7f \xf0\x9f\x98\x80\"";
    assert_int_equal(parse_str(raw, t), 1);
    assert_int_equal(t[0].escaped, 0);
    n = json_str_unescape(raw, &t[0], out, sizeof out);
    assert_int_equal(n, strlen(raw) - 2);
    assert_memory_equal(out, raw + 1, (size_t)n);
    assert_int_equal(json_str_unescape(raw, &t[0], out, (size_t)n - 1), -ENOSPC);

    /* The empty string needs no room. */
    assert_int_equal(parse_str("\"\"", t), 1);
    assert_int_equal(json_str_unescape("\"\"", &t[0], out, 0), 0);

    /* Only strings unescape. */
    assert_int_equal(parse_str("12", t), 1);
    assert_int_equal(json_str_unescape("12", &t[0], out, sizeof out), -EINVAL);
}

/* Every capacity below the unescaped length is refused, every one from it up works, and the
 * output is the same whichever path (word-sized copy, byte copy, direct or buffered escape)
 * the capacity leads to. */
static void test_unescape_every_cap(void **state) {
    (void)state;
    const char *doc = "\"v=0\\r\\no=- 4611731400430051336 2 IN IP4 127.0.0.1\\r\\ns=-\\r\\n"
                      "\\u00e9\\u20ac\\ud83d\\ude00abcdefghijklmnop\\t\"";
    const char want[] = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\n"
                        "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"
                        "abcdefghijklmnop\t";
    const size_t m = sizeof want - 1;
    json_tok_t t[2];
    assert_int_equal(parse_str(doc, t), 1);
    assert_int_equal(t[0].end, strlen(doc) - 1);
    char out[128];
    for (size_t cap = 0; cap <= m + 8; cap++) {
        memset(out, 0x55, sizeof out);
        int n = json_str_unescape(doc, &t[0], out, cap);
        if (cap < m) {
            assert_int_equal(n, -ENOSPC);
        } else {
            assert_int_equal(n, m);
            assert_memory_equal(out, want, m);
        }
        /* Nothing is ever written at or past cap. */
        for (size_t k = cap; k < sizeof out; k++)
            assert_int_equal((unsigned char)out[k], 0x55);
    }
}

/* Runs of escapes are followed to their end, including when the closing quote comes right
 * after. */
static void test_escape_runs(void **state) {
    (void)state;
    json_tok_t t[4];
    static const char *const ok[] = {
        "\"\\n\"",
        "\"\\n\\n\"",
        "\"a\\u0041\\u0042\"",
        "\"\\u0041\\u0042b\"",
        "[\"\\\\\",\"\\\"\"]",
    };
    for (size_t k = 0; k < sizeof ok / sizeof ok[0]; k++) {
        int n = parse_str(ok[k], t);
        if (n < 1)
            fail_msg("%s was refused (%d)", ok[k], n);
        assert_int_equal(t[n - 1].escaped, 1);
    }
    assert_int_equal(parse_str("\"\\u0041\\u0042\"x", t), -EINVAL);
    assert_int_equal(parse_str("\"\\n\\n", t), -EINVAL);
    assert_int_equal(parse_str("\"\\n\\n\\", t), -EINVAL);
    assert_int_equal(parse_str("\"\\n\\q\"", t), -EINVAL);
    assert_int_equal(parse_str("\"\\n\x01\"", t), -EINVAL);
}

static void test_surrogates(void **state) {
    (void)state;
    json_tok_t t[2];
    char out[16];
    /* The first and last supplementary code points. */
    assert_int_equal(parse_str("\"\\uD800\\uDC00\"", t), 1);
    assert_int_equal(json_str_unescape("\"\\uD800\\uDC00\"", &t[0], out, sizeof out), 4);
    assert_memory_equal(out, "\xf0\x90\x80\x80", 4);
    assert_int_equal(parse_str("\"\\udbff\\udfff\"", t), 1);
    assert_int_equal(json_str_unescape("\"\\udbff\\udfff\"", &t[0], out, sizeof out), 4);
    assert_memory_equal(out, "\xf4\x8f\xbf\xbf", 4);
    /* Around the surrogate range: U+D7FF and U+E000 are ordinary. */
    assert_int_equal(parse_str("\"\\ud7ff\\ue000\\uffff\"", t), 1);
    assert_int_equal(json_str_unescape("\"\\ud7ff\\ue000\\uffff\"", &t[0], out, sizeof out), 9);
    assert_memory_equal(out, "\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf", 9);
    /* The pair's equality with raw UTF-8, through json_str_eq. */
    assert_int_equal(parse_str("\"\\ud83d\\ude00\"", t), 1);
    assert_int_equal(json_str_eq("\"\\ud83d\\ude00\"", &t[0], "\xf0\x9f\x98\x80"), 1);
}

static void test_str_eq(void **state) {
    (void)state;
    json_tok_t t[2];
    const char *s = "\"type\"";
    assert_int_equal(parse_str(s, t), 1);
    assert_int_equal(json_str_eq(s, &t[0], "type"), 1);
    assert_int_equal(json_str_eq(s, &t[0], "typ"), 0);
    assert_int_equal(json_str_eq(s, &t[0], "types"), 0);
    assert_int_equal(json_str_eq(s, &t[0], ""), 0);
    s = "\"\\u0074yp\\u0065\"";
    assert_int_equal(parse_str(s, t), 1);
    assert_int_equal(json_str_eq(s, &t[0], "type"), 1);
    assert_int_equal(json_str_eq(s, &t[0], "typ"), 0);
    assert_int_equal(json_str_eq(s, &t[0], "typee"), 0);
    assert_int_equal(json_str_eq(s, &t[0], "Type"), 0);
    /* An escaped NUL never equals the end of the literal. */
    s = "\"a\\u0000\"";
    assert_int_equal(parse_str(s, t), 1);
    assert_int_equal(json_str_eq(s, &t[0], "a"), 0);
    s = "\"\"";
    assert_int_equal(parse_str(s, t), 1);
    assert_int_equal(json_str_eq(s, &t[0], ""), 1);
    assert_int_equal(json_str_eq(s, &t[0], "a"), 0);
    /* Only strings compare equal. */
    s = "null";
    assert_int_equal(parse_str(s, t), 1);
    assert_int_equal(json_str_eq(s, &t[0], "null"), 0);
}

/* ---------------------------------------------------------------------------------------------
 * Object lookup */

static void test_obj_get(void **state) {
    (void)state;
    const char *doc = "{\"a\":1,\"nested\":{\"type\":\"inner\"},\"type\":\"outer\",\"e\":{}}";
    json_tok_t t[16];
    int n = parse_str(doc, t);
    assert_int_equal(n, 11);
    int v = json_obj_get(doc, t, 0, "a");
    assert_int_equal(v, 2);
    /* The lookup only sees direct members, not keys inside nested values. */
    v = json_obj_get(doc, t, 0, "type");
    assert_int_equal(v, 8);
    assert_int_equal(json_str_eq(doc, &t[v], "outer"), 1);
    int inner = json_obj_get(doc, t, 0, "nested");
    assert_int_equal(inner, 4);
    v = json_obj_get(doc, t, inner, "type");
    assert_int_equal(json_str_eq(doc, &t[v], "inner"), 1);
    assert_int_equal(json_obj_get(doc, t, 0, "missing"), -1);
    assert_int_equal(json_obj_get(doc, t, 0, ""), -1);
    assert_int_equal(json_obj_get(doc, t, 0, "nest"), -1);
    assert_int_equal(json_obj_get(doc, t, 0, "nestedx"), -1);
    /* An empty object, a non-object token and a negative index find nothing. */
    int e = json_obj_get(doc, t, 0, "e");
    assert_int_equal(e, 10);
    assert_int_equal(json_obj_get(doc, t, e, "a"), -1);
    assert_int_equal(json_obj_get(doc, t, 2, "a"), -1);
    assert_int_equal(json_obj_get(doc, t, -1, "a"), -1);
}

static void test_obj_get_escaped_keys(void **state) {
    (void)state;
    /* Keys are compared after unescaping, including multi-byte UTF-8 from \u escapes. */
    const char *doc =
        "{\"\\u0074ype\":\"hello\",\"caf\\u00e9\":1,\"na\\u00efve\":2,\"sm\\ud83d\\ude00\":3,"
        "\"a\\/b\":4,\"tab\\there\":5,\"x\\u0000\":6,\"x\":7,\"\\u00e9t\xc3\xa9\":8}";
    json_tok_t t[32];
    int n = parse_str(doc, t);
    assert_int_equal(n, 19);
    int v = json_obj_get(doc, t, 0, "type");
    assert_int_equal(v, 2);
    assert_int_equal(json_str_eq(doc, &t[v], "hello"), 1);
    v = json_obj_get(doc, t, 0, "caf\xc3\xa9");
    assert_int_equal(v, 4);
    v = json_obj_get(doc, t, 0, "na\xc3\xafve");
    assert_int_equal(v, 6);
    v = json_obj_get(doc, t, 0, "sm\xf0\x9f\x98\x80");
    assert_int_equal(v, 8);
    v = json_obj_get(doc, t, 0, "a/b");
    assert_int_equal(v, 10);
    v = json_obj_get(doc, t, 0, "tab\there");
    assert_int_equal(v, 12);
    /* "x\u0000" is not "x": the lookup must reach the later plain key. */
    v = json_obj_get(doc, t, 0, "x");
    assert_int_equal(v, 16);
    /* Mixed raw UTF-8 and escapes in one key. */
    v = json_obj_get(doc, t, 0, "\xc3\xa9t\xc3\xa9");
    assert_int_equal(v, 18);
    /* The escaped form itself is not the key. */
    assert_int_equal(json_obj_get(doc, t, 0, "\\u0074ype"), -1);
    assert_int_equal(json_obj_get(doc, t, 0, "cafe"), -1);
}

static void test_obj_get_duplicates(void **state) {
    (void)state;
    /* When a key repeats, the first occurrence wins, whatever the spelling of the later one. */
    const char *doc = "{\"k\":[1,2],\"k\":\"second\",\"\\u006b\":3}";
    json_tok_t t[16];
    int n = parse_str(doc, t);
    assert_int_equal(n, 9);
    assert_int_equal(json_obj_get(doc, t, 0, "k"), 2);
    const char *doc2 = "{\"\\u006b\":\"first\",\"k\":\"second\"}";
    n = parse_str(doc2, t);
    assert_int_equal(n, 5);
    int v = json_obj_get(doc2, t, 0, "k");
    assert_int_equal(v, 2);
    assert_int_equal(json_str_eq(doc2, &t[v], "first"), 1);
}

/* ---------------------------------------------------------------------------------------------
 * Numbers */

static int get_i64(const char *s, int64_t *out) {
    json_tok_t t[2];
    assert_int_equal(parse_str(s, t), 1);
    return json_get_i64(s, &t[0], out);
}

static void test_get_i64(void **state) {
    (void)state;
    int64_t v = 42;
    assert_int_equal(get_i64("0", &v), 0);
    assert_int_equal(v, 0);
    v = 42;
    assert_int_equal(get_i64("-0", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(get_i64("129241752", &v), 0);
    assert_int_equal(v, 129241752);
    assert_int_equal(get_i64("-1", &v), 0);
    assert_int_equal(v, -1);
    assert_int_equal(get_i64("9223372036854775807", &v), 0);
    assert_true(v == INT64_MAX);
    assert_int_equal(get_i64("-9223372036854775808", &v), 0);
    assert_true(v == INT64_MIN);
    assert_int_equal(get_i64("9223372036854775806", &v), 0);
    assert_true(v == INT64_MAX - 1);
    assert_int_equal(get_i64("-9223372036854775807", &v), 0);
    assert_true(v == INT64_MIN + 1);

    v = 7;
    assert_int_equal(get_i64("9223372036854775808", &v), -ERANGE);
    assert_int_equal(get_i64("-9223372036854775809", &v), -ERANGE);
    assert_int_equal(get_i64("18446744073709551615", &v), -ERANGE);
    assert_int_equal(get_i64("18446744073709551616", &v), -ERANGE);
    assert_int_equal(get_i64("92233720368547758070", &v), -ERANGE);
    assert_int_equal(get_i64("-99999999999999999999999999999", &v), -ERANGE);
    assert_int_equal(v, 7); /* Untouched on failure. */

    /* Fractions and exponents are refused even when their value is integral. */
    assert_int_equal(get_i64("1.0", &v), -EINVAL);
    assert_int_equal(get_i64("1e3", &v), -EINVAL);
    assert_int_equal(get_i64("1E3", &v), -EINVAL);
    assert_int_equal(get_i64("0e0", &v), -EINVAL);
    assert_int_equal(get_i64("-1.5", &v), -EINVAL);
    /* A fraction wins over overflow: the value is not an integer at all. */
    assert_int_equal(get_i64("99999999999999999999.5", &v), -EINVAL);
    assert_int_equal(v, 7);

    /* Only numbers. */
    json_tok_t t[2];
    assert_int_equal(parse_str("\"1\"", t), 1);
    assert_int_equal(json_get_i64("\"1\"", &t[0], &v), -EINVAL);
    assert_int_equal(parse_str("true", t), 1);
    assert_int_equal(json_get_i64("true", &t[0], &v), -EINVAL);
    assert_int_equal(parse_str("null", t), 1);
    assert_int_equal(json_get_i64("null", &t[0], &v), -EINVAL);
}

static void test_get_double(void **state) {
    (void)state;
    json_tok_t t[4];
    double d = 0;
    static const struct {
        const char *s;
        double want;
    } ok[] = {
        {"1.5", 1.5},
        {"-0.25", -0.25},
        {"1e3", 1000.0},
        {"123", 123.0},
        {"-0", -0.0},
        {"0.1", 0.1},
        {"1.7976931348623157e308", 1.7976931348623157e308},
        {"5e-324", 5e-324},
        {"1e-400", 0.0},
        {"2.5E+2", 250.0},
    };
    for (size_t k = 0; k < sizeof ok / sizeof ok[0]; k++) {
        assert_int_equal(parse_str(ok[k].s, t), 1);
        assert_int_equal(json_get_double(ok[k].s, &t[0], &d), 0);
        assert_true(d == ok[k].want);
    }
    /* Overflow has no useful value. */
    assert_int_equal(parse_str("1e400", t), 1);
    assert_int_equal(json_get_double("1e400", &t[0], &d), -ERANGE);
    assert_int_equal(parse_str("-1e400", t), 1);
    assert_int_equal(json_get_double("-1e400", &t[0], &d), -ERANGE);
    /* A number longer than any client writes does not fit the bounded copy. */
    const char *longnum = "1.000000000000000000000000000000000000000000000000000000000000000000001";
    assert_int_equal(parse_str(longnum, t), 1);
    assert_int_equal(json_get_double(longnum, &t[0], &d), -ERANGE);
    /* The input is not NUL-terminated: digits right after the token must not be read. */
    const char digits[] = "1.2599999";
    assert_int_equal(parse(digits, 4, t), 1);
    assert_int_equal(json_get_double(digits, &t[0], &d), 0);
    assert_true(d == 1.25);
    const char arr[] = "[7,8]";
    assert_int_equal(parse_str(arr, t), 3);
    assert_int_equal(json_get_double(arr, &t[1], &d), 0);
    assert_true(d == 7.0);
    /* Only numbers. */
    assert_int_equal(json_get_double(arr, &t[0], &d), -EINVAL);
    assert_int_equal(parse_str("\"1.5\"", t), 1);
    assert_int_equal(json_get_double("\"1.5\"", &t[0], &d), -EINVAL);
}

/* ---------------------------------------------------------------------------------------------
 * Real messages */

/* Reads the announce of section 1.8 the way the protocol layer will, in either wire form. */
static void check_announce(const char *doc, size_t len) {
    json_tok_t t[JSON_DEFAULT_MAX_TOKENS];
    int n = json_parse(doc, len, t, JSON_DEFAULT_MAX_TOKENS, JSON_DEFAULT_MAX_DEPTH);
    assert_int_equal(n, 28);
    check_whole(t, n);
    assert_int_equal(t[0].type, JSON_OBJECT);
    assert_int_equal(t[0].size, 9);

    int v = json_obj_get(doc, t, 0, "action");
    assert_true(v > 0);
    assert_int_equal(json_str_eq(doc, &t[v], "announce"), 1);
    v = json_obj_get(doc, t, 0, "event");
    assert_int_equal(json_str_eq(doc, &t[v], "started"), 1);
    int64_t i = 0;
    assert_int_equal(json_get_i64(doc, &t[json_obj_get(doc, t, 0, "numwant")], &i), 0);
    assert_int_equal(i, 5);
    assert_int_equal(json_get_i64(doc, &t[json_obj_get(doc, t, 0, "left")], &i), 0);
    assert_int_equal(i, 129241752);
    assert_int_equal(json_get_i64(doc, &t[json_obj_get(doc, t, 0, "uploaded")], &i), 0);
    assert_int_equal(i, 0);
    v = json_obj_get(doc, t, 0, "peer_id");
    assert_int_equal(t[v].escaped, 0);
    assert_int_equal(json_str_eq(doc, &t[v], "-WW0208-k3J9xQ2mVbLp"), 1);

    /* info_hash unescapes to the UTF-8 form of the 20 latin-1 code points. */
    static const char ih_utf8[] = "\b\xc2\xad\xc2\xa5\xc2\xa7\xc2\xa6\x18:\xc2\xae\x1e\t\xc3\x98"
                                  "1\xc3\x9fgH\xc3\x95"
                                  "f\tZ\x10";
    v = json_obj_get(doc, t, 0, "info_hash");
    assert_int_equal(t[v].type, JSON_STRING);
    assert_int_equal(t[v].escaped, 1);
    char out[64];
    int m = json_str_unescape(doc, &t[v], out, sizeof out);
    assert_int_equal(m, sizeof ih_utf8 - 1);
    assert_memory_equal(out, ih_utf8, sizeof ih_utf8 - 1);

    int offers = json_obj_get(doc, t, 0, "offers");
    assert_int_equal(t[offers].type, JSON_ARRAY);
    assert_int_equal(t[offers].size, 1);
    assert_int_equal(t[offers].next, n);
    int o0 = offers + 1;
    assert_int_equal(t[o0].type, JSON_OBJECT);
    int offer = json_obj_get(doc, t, o0, "offer");
    assert_int_equal(json_str_eq(doc, &t[json_obj_get(doc, t, offer, "type")], "offer"), 1);
    int sdp = json_obj_get(doc, t, offer, "sdp");
    char sdpbuf[256];
    m = json_str_unescape(doc, &t[sdp], sdpbuf, sizeof sdpbuf);
    assert_true(m > 0);
    assert_memory_equal(sdpbuf, "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n", 49);
    static const char oid_utf8[] = "\xc2\x9f\x1c.z\0\xc3\xbf\x10\xc2\x80[\\\"1\x7f\r\n\x1b,=N_";
    v = json_obj_get(doc, t, o0, "offer_id");
    m = json_str_unescape(doc, &t[v], out, sizeof out);
    assert_int_equal(m, sizeof oid_utf8 - 1);
    assert_memory_equal(out, oid_utf8, sizeof oid_utf8 - 1);
    assert_int_equal(json_obj_get(doc, t, o0, "answer"), -1);
}

static void test_webtorrent_announce(void **state) {
    (void)state;
    check_announce(WT_ANNOUNCE_ASCII, sizeof WT_ANNOUNCE_ASCII - 1);
    check_announce(WT_ANNOUNCE_RAW, sizeof WT_ANNOUNCE_RAW - 1);
}

static void test_webtorrent_flow(void **state) {
    (void)state;
    static const struct {
        const char *s;
        size_t len;
        int ntok;
    } msgs[] = {
#define M(name, ntok)                                                                              \
    {name##_ASCII, sizeof name##_ASCII - 1, ntok}, {name##_RAW, sizeof name##_RAW - 1, ntok}
        M(WT_ANNOUNCE_RESPONSE, 11),
        M(WT_RELAYED_OFFER, 15),
        M(WT_ANSWER, 17),
        M(WT_RELAYED_ANSWER, 15),
        M(WT_SCRAPE, 6),
        M(WT_SCRAPE_RESPONSE, 17),
        M(WT_FAILURE, 7),
        M(WT_PARSE_FAILURE, 3),
        M(WT_STOPPED, 17),
#undef M
    };
    json_tok_t t[JSON_DEFAULT_MAX_TOKENS];
    for (size_t k = 0; k < sizeof msgs / sizeof msgs[0]; k++) {
        int n =
            json_parse(msgs[k].s, msgs[k].len, t, JSON_DEFAULT_MAX_TOKENS, JSON_DEFAULT_MAX_DEPTH);
        if (n != msgs[k].ntok)
            fail_msg("message %zu: %d tokens, want %d", k, n, msgs[k].ntok);
        check_whole(t, n);
    }
    /* The scrape response is keyed by the binary info_hash itself. */
    const char *s = WT_SCRAPE_RESPONSE_RAW;
    int n = json_parse(s, strlen(s), t, JSON_DEFAULT_MAX_TOKENS, JSON_DEFAULT_MAX_DEPTH);
    int files = json_obj_get(s, t, 0, "files");
    assert_int_equal(t[files].size, 1);
    int ih = json_obj_get(s, t, files,
                          "\b\xc2\xad\xc2\xa5\xc2\xa7\xc2\xa6\x18:\xc2\xae\x1e\t\xc3\x98"
                          "1\xc3\x9fgH\xc3\x95"
                          "f\tZ\x10");
    assert_int_equal(ih, files + 2);
    int64_t c = 0;
    assert_int_equal(json_get_i64(s, &t[json_obj_get(s, t, ih, "complete")], &c), 0);
    assert_int_equal(c, 1);
    assert_true(n > ih);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalars),
        cmocka_unit_test(test_valid_numbers),
        cmocka_unit_test(test_empty_containers),
        cmocka_unit_test(test_preorder_next_size),
        cmocka_unit_test(test_nested_mixed),
        cmocka_unit_test(test_whitespace_everywhere),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_string_scan_positions),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_token_limit),
        cmocka_unit_test(test_escapes_unescape),
        cmocka_unit_test(test_unescape_every_cap),
        cmocka_unit_test(test_escape_runs),
        cmocka_unit_test(test_surrogates),
        cmocka_unit_test(test_str_eq),
        cmocka_unit_test(test_obj_get),
        cmocka_unit_test(test_obj_get_escaped_keys),
        cmocka_unit_test(test_obj_get_duplicates),
        cmocka_unit_test(test_get_i64),
        cmocka_unit_test(test_get_double),
        cmocka_unit_test(test_webtorrent_announce),
        cmocka_unit_test(test_webtorrent_flow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
