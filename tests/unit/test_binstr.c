/* test_binstr.c: unit tests of the WebTorrent binary-string codec (src/proto/binstr.c). */
#include "unit.h"

#include <errno.h>
#include <string.h>

#include "json/json.h"
#include "proto/binstr.h"

/* The Sintel info_hash 08ada5a7a6183aae1e09d831df6748d566095a10 (protocols.md section 1.2). */
static const uint8_t SINTEL[BINSTR_ID_BYTES] = {0x08, 0xad, 0xa5, 0xa7, 0xa6, 0x18, 0x3a,
                                                0xae, 0x1e, 0x09, 0xd8, 0x31, 0xdf, 0x67,
                                                0x48, 0xd5, 0x66, 0x09, 0x5a, 0x10};
/* Its encoding by binstr_encode: every byte outside printable ASCII as \u00xx. */
static const char SINTEL_ENCODED[] = "\"\\u0008\\u00ad\\u00a5\\u00a7\\u00a6\\u0018:\\u00ae\\u001e"
                                     "\\u0009\\u00d81\\u00dfgH\\u00d5f\\u0009Z\\u0010\"";
/* Its JSON.stringify form in 7-bit (webtorrent-examples/examples_ascii.txt). */
static const char SINTEL_ASCII[] = "\"\\b\\u00ad\\u00a5\\u00a7\\u00a6\\u0018:\\u00ae\\u001e\\t"
                                   "\\u00d81\\u00dfgH\\u00d5f\\tZ\\u0010\"";
/* Its JSON.stringify form as wire bytes: raw UTF-8 for 0x80-0xFF (examples.txt, the hex dump). */
static const char SINTEL_RAW[] = "\"\\b\xc2\xad\xc2\xa5\xc2\xa7\xc2\xa6\\u0018:\xc2\xae\\u001e\\t"
                                 "\xc3\x98"
                                 "1\xc3\x9fgH\xc3\x95"
                                 "f\\tZ\\u0010\"";

/* The offer_id of section 1.8, which holds NUL, '"', '\\', CR, LF, 0x7f, 0x80 and 0xff. */
static const uint8_t OFFER_ID[BINSTR_ID_BYTES] = {0x9f, 0x1c, 0x2e, 0x7a, 0x00, 0xff, 0x10,
                                                  0x80, 0x5b, 0x5c, 0x22, 0x31, 0x7f, 0x0d,
                                                  0x0a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f};
static const char OFFER_ID_ENCODED[] = "\"\\u009f\\u001c.z\\u0000\\u00ff\\u0010\\u0080[\\\\\\\"1"
                                       "\\u007f\\u000d\\u000a\\u001b,=N_\"";
static const char OFFER_ID_ASCII[] = "\"\\u009f\\u001c.z\\u0000\\u00ff\\u0010\\u0080[\\\\\\\"1"
                                     "\\u007f\\r\\n\\u001b,=N_\"";
static const char OFFER_ID_RAW[] = "\"\xc2\x9f\\u001c.z\\u0000\xc3\xbf\\u0010\xc2\x80[\\\\\\\"1\x7f"
                                   "\\r\\n\\u001b,=N_\"";

/* Tokenizes a JSON document held in s[0..len) that must be one string, then decodes it. */
static int decode(const char *s, size_t len, uint8_t *out, size_t n) {
    json_tok_t t[2];
    int r = json_parse(s, len, t, 2, JSON_DEFAULT_MAX_DEPTH);
    if (r != 1)
        fail_msg("json_parse(%.*s) gave %d", (int)len, s, r);
    assert_int_equal(t[0].type, JSON_STRING);
    return binstr_decode(s, &t[0], out, n);
}

static int decode_str(const char *s, uint8_t *out, size_t n) {
    return decode(s, strlen(s), out, n);
}

/* Asserts that every byte of p[0..n) is 7-bit printable ASCII. */
static void assert_7bit(const char *p, size_t n) {
    for (size_t k = 0; k < n; k++)
        assert_true((unsigned char)p[k] >= 0x20 && (unsigned char)p[k] < 0x7f);
}

static void test_sintel_forms(void **state) {
    (void)state;
    uint8_t out[BINSTR_ID_BYTES];
    memset(out, 0, sizeof out);
    assert_int_equal(decode_str(SINTEL_ENCODED, out, BINSTR_ID_BYTES), 0);
    assert_memory_equal(out, SINTEL, BINSTR_ID_BYTES);
    memset(out, 0, sizeof out);
    assert_int_equal(decode_str(SINTEL_ASCII, out, BINSTR_ID_BYTES), 0);
    assert_memory_equal(out, SINTEL, BINSTR_ID_BYTES);
    memset(out, 0, sizeof out);
    assert_int_equal(decode_str(SINTEL_RAW, out, BINSTR_ID_BYTES), 0);
    assert_memory_equal(out, SINTEL, BINSTR_ID_BYTES);

    char enc[BINSTR_ENCODED_MAX(BINSTR_ID_BYTES)];
    size_t n = binstr_encode(SINTEL, BINSTR_ID_BYTES, enc);
    assert_int_equal(n, sizeof SINTEL_ENCODED - 1);
    assert_memory_equal(enc, SINTEL_ENCODED, n);
}

static void test_offer_id_forms(void **state) {
    (void)state;
    uint8_t out[BINSTR_ID_BYTES];
    memset(out, 0, sizeof out);
    assert_int_equal(decode_str(OFFER_ID_ASCII, out, BINSTR_ID_BYTES), 0);
    assert_memory_equal(out, OFFER_ID, BINSTR_ID_BYTES);
    memset(out, 0, sizeof out);
    assert_int_equal(decode_str(OFFER_ID_RAW, out, BINSTR_ID_BYTES), 0);
    assert_memory_equal(out, OFFER_ID, BINSTR_ID_BYTES);
    memset(out, 0, sizeof out);
    assert_int_equal(decode_str(OFFER_ID_ENCODED, out, BINSTR_ID_BYTES), 0);
    assert_memory_equal(out, OFFER_ID, BINSTR_ID_BYTES);

    char enc[BINSTR_ENCODED_MAX(BINSTR_ID_BYTES)];
    size_t n = binstr_encode(OFFER_ID, BINSTR_ID_BYTES, enc);
    assert_int_equal(n, sizeof OFFER_ID_ENCODED - 1);
    assert_memory_equal(enc, OFFER_ID_ENCODED, n);
}

static void test_ascii_peer_id(void **state) {
    (void)state;
    /* WebTorrent peer_ids are plain ASCII, so they decode byte for byte. */
    const char *s = "\"-WW0208-k3J9xQ2mVbLp\"";
    uint8_t out[BINSTR_ID_BYTES];
    assert_int_equal(decode_str(s, out, BINSTR_ID_BYTES), 0);
    assert_memory_equal(out, "-WW0208-k3J9xQ2mVbLp", BINSTR_ID_BYTES);
    char enc[BINSTR_ENCODED_MAX(BINSTR_ID_BYTES)];
    assert_int_equal(binstr_encode(out, BINSTR_ID_BYTES, enc), strlen(s));
    assert_memory_equal(enc, s, strlen(s));
}

/* Every byte value, alone: its exact encoding, and the round trip through the tokenizer. */
static void test_every_byte(void **state) {
    (void)state;
    static const char hex[] = "0123456789abcdef";
    for (unsigned b = 0; b < 256; b++) {
        uint8_t in = (uint8_t)b, out = 0;
        char enc[BINSTR_ENCODED_MAX(1)];
        size_t n = binstr_encode(&in, 1, enc);
        assert_true(n <= sizeof enc);
        assert_7bit(enc, n);
        assert_int_equal(enc[0], '"');
        assert_int_equal(enc[n - 1], '"');
        if (b == '"' || b == '\\') {
            assert_int_equal(n, 4);
            assert_int_equal(enc[1], '\\');
            assert_int_equal((unsigned char)enc[2], b);
        } else if (b >= 0x20 && b < 0x7f) {
            assert_int_equal(n, 3);
            assert_int_equal((unsigned char)enc[1], b);
        } else {
            char want[8] = {'"', '\\', 'u', '0', '0', hex[b >> 4], hex[b & 15], '"'};
            assert_int_equal(n, 8);
            assert_memory_equal(enc, want, 8);
        }
        assert_int_equal(decode(enc, n, &out, 1), 0);
        assert_int_equal(out, b);
    }
}

/* A 20-byte window slides over a sequence of all 256 values, so every byte appears at every
 * position next to every kind of neighbour. */
static void test_sliding_window(void **state) {
    (void)state;
    uint8_t seq[256 + BINSTR_ID_BYTES];
    for (size_t k = 0; k < sizeof seq; k++)
        seq[k] = (uint8_t)(k * 167 + 13); /* 167 is odd, so this visits all 256 values. */
    for (size_t k = 0; k < 256; k++) {
        char enc[BINSTR_ENCODED_MAX(BINSTR_ID_BYTES)];
        size_t n = binstr_encode(seq + k, BINSTR_ID_BYTES, enc);
        assert_true(n <= sizeof enc);
        assert_7bit(enc, n);
        uint8_t out[BINSTR_ID_BYTES];
        assert_int_equal(decode(enc, n, out, BINSTR_ID_BYTES), 0);
        assert_memory_equal(out, seq + k, BINSTR_ID_BYTES);
    }
    /* And the whole sequence at once, as one long binary string. */
    char enc[BINSTR_ENCODED_MAX(sizeof seq)];
    size_t n = binstr_encode(seq, sizeof seq, enc);
    uint8_t out[sizeof seq];
    assert_int_equal(decode(enc, n, out, sizeof seq), 0);
    assert_memory_equal(out, seq, sizeof seq);
}

static void test_wrong_length(void **state) {
    (void)state;
    uint8_t out[BINSTR_ID_BYTES + 4];
    /* 19 and 21 code points, in escaped and raw forms. */
    const char *s19 = "\"\\u00ff123456789012345678\"";
    const char *s20 = "\"\\u00ff1234567890123456789\"";
    const char *s21 = "\"\\u00ff12345678901234567890\"";
    const char *raw19 = "\"\xc3\xbf"
                        "123456789012345678\"";
    const char *raw21 = "\"\xc3\xbf"
                        "12345678901234567890\"";
    assert_int_equal(decode_str(s19, out, BINSTR_ID_BYTES), -EINVAL);
    assert_int_equal(decode_str(s20, out, BINSTR_ID_BYTES), 0);
    assert_int_equal(decode_str(s21, out, BINSTR_ID_BYTES), -EINVAL);
    assert_int_equal(decode_str(raw19, out, BINSTR_ID_BYTES), -EINVAL);
    assert_int_equal(decode_str(raw21, out, BINSTR_ID_BYTES), -EINVAL);
    assert_int_equal(decode_str(s19, out, 19), 0);
    assert_int_equal(decode_str(s21, out, 21), 0);
    assert_int_equal(decode_str("\"\"", out, BINSTR_ID_BYTES), -EINVAL);
    assert_int_equal(decode_str("\"\"", out, 0), 0);
    /* Forty bytes of UTF-8 are twenty code points, not forty. */
    char two[2 + 2 * BINSTR_ID_BYTES + 1] = "\"";
    for (int k = 0; k < BINSTR_ID_BYTES; k++)
        memcpy(two + 1 + 2 * k, "\xc3\xa9", 2);
    memcpy(two + 1 + 2 * BINSTR_ID_BYTES, "\"", 2);
    assert_int_equal(decode_str(two, out, BINSTR_ID_BYTES), 0);
    for (int k = 0; k < BINSTR_ID_BYTES; k++)
        assert_int_equal(out[k], 0xe9);
    assert_int_equal(decode_str(two, out, 2 * BINSTR_ID_BYTES), -EINVAL);

    /* A string that is too long never makes decode write past n bytes. */
    memset(out, 0xAA, sizeof out);
    assert_int_equal(decode_str(s21, out, BINSTR_ID_BYTES), -EINVAL);
    for (size_t k = BINSTR_ID_BYTES; k < sizeof out; k++)
        assert_int_equal(out[k], 0xAA);
}

static void test_code_points_above_ff(void **state) {
    (void)state;
    uint8_t out[BINSTR_ID_BYTES];
    static const char *const bad[] = {
        /* U+0100, escaped and raw, then other escapes above U+00FF. */
        "\"\\u01001234567890123456789\"",
        "\"\xc4\x80"
        "1234567890123456789\"",
        "\"\\u10001234567890123456789\"",
        "\"\\uFFFF1234567890123456789\"",
        "\"\\u20ac1234567890123456789\"",
        /* A surrogate pair (one code point, U+1F600) and its raw UTF-8. */
        "\"\\ud83d\\ude001234567890123456789\"",
        "\"\xf0\x9f\x98\x80"
        "1234567890123456789\"",
        /* Raw three-byte UTF-8 (U+20AC). */
        "\"\xe2\x82\xac"
        "1234567890123456789\"",
        /* Broken UTF-8, which json_parse lets through: overlong forms, a lone continuation
         * byte, a lead byte without its continuation, and a lead byte at the end. */
        "\"\xc0\x80"
        "1234567890123456789\"",
        "\"\xc1\xbf"
        "1234567890123456789\"",
        "\"\x80"
        "1234567890123456789\"",
        "\"\xc3"
        "A1234567890123456789\"",
        "\"1234567890123456789\xc3\"",
        "\"\xff"
        "1234567890123456789\"",
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        int r = decode_str(bad[k], out, BINSTR_ID_BYTES);
        if (r != -EINVAL)
            fail_msg("case %zu gave %d, want -EINVAL", k, r);
    }
    /* U+00FF is the last code point accepted. */
    assert_int_equal(decode_str("\"\\u00ff\"", out, 1), 0);
    assert_int_equal(out[0], 0xff);
    assert_int_equal(decode_str("\"\\u0100\"", out, 1), -EINVAL);
}

/* Every spelling of one code point decodes to the same byte. */
static void test_equivalent_forms(void **state) {
    (void)state;
    static const char hexl[] = "0123456789abcdef", hexu[] = "0123456789ABCDEF";
    for (unsigned b = 0; b < 256; b++) {
        uint8_t out;
        char esc[8] = {'"', '\\', 'u', '0', '0', hexl[b >> 4], hexl[b & 15], '"'};
        out = 0;
        assert_int_equal(decode(esc, 8, &out, 1), 0);
        assert_int_equal(out, b);
        esc[5] = hexu[b >> 4];
        esc[6] = hexu[b & 15];
        out = 0;
        assert_int_equal(decode(esc, 8, &out, 1), 0);
        assert_int_equal(out, b);
        if (b >= 0x80) {
            char raw[4] = {'"', (char)(0xC0 | (b >> 6)), (char)(0x80 | (b & 0x3F)), '"'};
            out = 0;
            assert_int_equal(decode(raw, 4, &out, 1), 0);
            assert_int_equal(out, b);
        } else if (b >= 0x20 && b != '"' && b != '\\') {
            char raw[3] = {'"', (char)b, '"'};
            out = 0;
            assert_int_equal(decode(raw, 3, &out, 1), 0);
            assert_int_equal(out, b);
        }
    }
    /* The short escapes of JSON.stringify, and the solidus escape nobody sends but RFC 8259
     * allows. */
    static const struct {
        const char *s;
        uint8_t b;
    } shorts[] = {{"\"\\b\"", '\b'}, {"\"\\f\"", '\f'}, {"\"\\n\"", '\n'},  {"\"\\r\"", '\r'},
                  {"\"\\t\"", '\t'}, {"\"\\\"\"", '"'}, {"\"\\\\\"", '\\'}, {"\"\\/\"", '/'}};
    for (size_t k = 0; k < sizeof shorts / sizeof shorts[0]; k++) {
        uint8_t out = 0;
        assert_int_equal(decode_str(shorts[k].s, &out, 1), 0);
        assert_int_equal(out, shorts[k].b);
    }
}

static void test_non_string_tokens(void **state) {
    (void)state;
    static const char *const docs[] = {
        "12345678901234567890",         "true", "false", "null", "[\"-WW0208-k3J9xQ2mVbLp\"]",
        "{\"-WW0208-k3J9xQ2mVbLp\":1}",
    };
    json_tok_t t[4];
    uint8_t out[BINSTR_ID_BYTES];
    for (size_t k = 0; k < sizeof docs / sizeof docs[0]; k++) {
        assert_true(json_parse(docs[k], strlen(docs[k]), t, 4, 4) >= 1);
        assert_int_equal(binstr_decode(docs[k], &t[0], out, BINSTR_ID_BYTES), -EINVAL);
    }
}

static void test_encode_empty(void **state) {
    (void)state;
    char enc[BINSTR_ENCODED_MAX(0)];
    assert_int_equal(binstr_encode(NULL, 0, enc), 2);
    assert_memory_equal(enc, "\"\"", 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sintel_forms),         cmocka_unit_test(test_offer_id_forms),
        cmocka_unit_test(test_ascii_peer_id),        cmocka_unit_test(test_every_byte),
        cmocka_unit_test(test_sliding_window),       cmocka_unit_test(test_wrong_length),
        cmocka_unit_test(test_code_points_above_ff), cmocka_unit_test(test_equivalent_forms),
        cmocka_unit_test(test_non_string_tokens),    cmocka_unit_test(test_encode_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
