/* test_utf8.c: unit tests of the UTF-8 validator, after Markus Kuhn's UTF-8 decoder stress test,
 * plus exhaustive comparisons against a byte-by-byte reference decoder. */
#include "unit.h"

#include <stdlib.h>
#include <string.h>

#include "ws/utf8.h"

/* Length of the ASCII runs the tests wrap sequences in, in bytes: more than one fast-path word. */
#define TEST_PAD_BYTES 19
/* Largest Unicode code point. */
#define TEST_MAX_CODE_POINT 0x10FFFF
/* Longest byte sequence the tests wrap in ASCII, in bytes. */
#define TEST_SEQ_MAX_BYTES 16

/* Validates the bytes of a string literal (sizeof - 1, so that embedded NULs count). */
#define VALID(lit) utf8_valid((const uint8_t *)(lit), sizeof(lit) - 1)

/* Validates p[0..n) from an exactly-sized heap copy, so that ASan catches any read past the end
 * (the fast path reads 8 bytes at a time, the likeliest place for such a bug). */
static int valid_exact(const uint8_t *p, size_t n) {
    uint8_t *copy = malloc(n > 0 ? n : 1);
    int rc;

    assert_non_null(copy);
    memcpy(copy, p, n);
    rc = utf8_valid(copy, n);
    free(copy);
    return rc;
}

/* Returns utf8_valid of pad + p[0..n) + pad, where pad is pre and post bytes of ASCII: this puts
 * the sequence at every alignment relative to the fast path's 8-byte words. */
static int valid_padded(const uint8_t *p, size_t n, size_t pre, size_t post) {
    uint8_t buf[2 * TEST_PAD_BYTES + TEST_SEQ_MAX_BYTES];

    assert_true(pre <= TEST_PAD_BYTES && post <= TEST_PAD_BYTES && n <= TEST_SEQ_MAX_BYTES);
    memset(buf, 'a', pre);
    memcpy(buf + pre, p, n);
    memset(buf + pre + n, 'z', post);
    return valid_exact(buf, pre + n + post);
}

/* Checks that p[0..n) gets the verdict want alone and wrapped in ASCII at every alignment. */
static void expect_everywhere(const uint8_t *p, size_t n, int want) {
    size_t pre;
    size_t post;

    for (pre = 0; pre <= TEST_PAD_BYTES; pre++) {
        for (post = 0; post <= TEST_PAD_BYTES; post += 3) {
            if (valid_padded(p, n, pre, post) != want) {
                fail_msg("sequence of %zu bytes starting %02x, pre %zu post %zu: want %d", n, p[0],
                         pre, post, want);
            }
        }
    }
}

/* Encodes code point cp (any value up to 0x7FFFFFFF, surrogates included) in the original
 * UTF-8 scheme of up to 6 bytes and returns the length. */
static size_t encode(uint32_t cp, uint8_t *out) {
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0 | (cp >> 6));
        out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0 | (cp >> 12));
        out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    if (cp < 0x200000) {
        out[0] = (uint8_t)(0xF0 | (cp >> 18));
        out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
        out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        out[3] = (uint8_t)(0x80 | (cp & 0x3F));
        return 4;
    }
    out[0] = (uint8_t)(0xF8 | (cp >> 24));
    out[1] = (uint8_t)(0x80 | ((cp >> 18) & 0x3F));
    out[2] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    out[3] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    out[4] = (uint8_t)(0x80 | (cp & 0x3F));
    return 5;
}

/* The reference: decodes p[0..n) one code point at a time from the bit patterns, then rejects
 * overlong forms, surrogates and values above U+10FFFF. Slow and obviously right. */
static int reference_valid(const uint8_t *p, size_t n) {
    size_t i = 0;

    while (i < n) {
        uint32_t cp;
        size_t len;
        size_t k;
        static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};

        if (p[i] < 0x80) {
            i++;
            continue;
        } else if ((p[i] & 0xE0) == 0xC0) {
            len = 2;
            cp = p[i] & 0x1F;
        } else if ((p[i] & 0xF0) == 0xE0) {
            len = 3;
            cp = p[i] & 0x0F;
        } else if ((p[i] & 0xF8) == 0xF0) {
            len = 4;
            cp = p[i] & 0x07;
        } else {
            return 0;
        }
        if (i + len > n) {
            return 0;
        }
        for (k = 1; k < len; k++) {
            if ((p[i + k] & 0xC0) != 0x80) {
                return 0;
            }
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if (cp < min_cp[len] || cp > TEST_MAX_CODE_POINT || (cp >= 0xD800 && cp <= 0xDFFF)) {
            return 0;
        }
        i += len;
    }
    return 1;
}

static void test_valid_text(void **state) {
    (void)state;
    assert_int_equal(utf8_valid(NULL, 0), 1);
    assert_int_equal(VALID(""), 1);
    assert_int_equal(VALID("hello, world"), 1);
    assert_int_equal(VALID("a\0b"), 1);
    assert_int_equal(VALID("\x7f"), 1);
    /* Kuhn 1: the Greek word "kosme". */
    assert_int_equal(VALID("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"), 1);
    assert_int_equal(VALID("{\"action\":\"announce\",\"info_hash\":\"\xc3\xa9\xe2\x82\xac\"}"), 1);
    assert_int_equal(VALID("\xf0\x9f\x98\x80\xf0\x9f\x8e\x89 emoji"), 1);
}

static void test_boundaries(void **state) {
    /* Kuhn 2.1-2.3: the first and last code point of each length, and other boundaries. */
    static const char *const good[] = {
        "\xc2\x80",         "\xdf\xbf",         "\xe0\xa0\x80", "\xef\xbf\xbf", "\xf0\x90\x80\x80",
        "\xf4\x8f\xbf\xbf", "\xed\x9f\xbf",     "\xee\x80\x80", "\xef\xbf\xbd", "\xef\xbf\xbe",
        "\xf3\xbf\xbf\xbf", "\xf1\x80\x80\x80", "\xe1\x80\x80", "\xec\xbf\xbf", "\xc3\xa9",
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        expect_everywhere((const uint8_t *)good[i], strlen(good[i]), 1);
    }
}

static void test_invalid_sequences(void **state) {
    static const char *const bad[] = {
        /* Kuhn 2.1/2.2: 5- and 6-byte forms, which RFC 3629 removed. */
        "\xf8\x88\x80\x80\x80",
        "\xfc\x84\x80\x80\x80\x80",
        "\xfb\xbf\xbf\xbf\xbf",
        "\xfd\xbf\xbf\xbf\xbf\xbf",
        /* Above U+10FFFF. */
        "\xf4\x90\x80\x80",
        "\xf7\xbf\xbf\xbf",
        "\xf5\x80\x80\x80",
        /* Kuhn 3.1: unexpected continuation bytes. */
        "\x80",
        "\xbf",
        "\x80\xbf",
        "\x80\xbf\x80",
        "\x80\xbf\x80\xbf",
        /* Kuhn 3.2: lonely start bytes followed by a space. */
        "\xc0 ",
        "\xdf ",
        "\xe0 ",
        "\xef ",
        "\xf0 ",
        "\xf7 ",
        "\xf8 ",
        "\xfc ",
        /* Kuhn 3.3/3.4: sequences with the last byte missing, alone and concatenated. */
        "\xc0",
        "\xe0\x80",
        "\xf0\x80\x80",
        "\xdf",
        "\xef\xbf",
        "\xf7\xbf\xbf",
        "\xc0\xe0\x80\xf0\x80\x80\xdf\xef\xbf\xf7\xbf\xbf",
        /* Kuhn 3.5: impossible bytes. */
        "\xfe",
        "\xff",
        "\xfe\xfe\xff\xff",
        /* Kuhn 4.1: overlong ASCII slash. */
        "\xc0\xaf",
        "\xe0\x80\xaf",
        "\xf0\x80\x80\xaf",
        "\xf8\x80\x80\x80\xaf",
        /* Kuhn 4.2: the largest overlong of each length. */
        "\xc1\xbf",
        "\xe0\x9f\xbf",
        "\xf0\x8f\xbf\xbf",
        /* Kuhn 4.3: overlong NUL. */
        "\xc0\x80",
        "\xe0\x80\x80",
        "\xf0\x80\x80\x80",
        /* Kuhn 5.1: single UTF-16 surrogates. */
        "\xed\xa0\x80",
        "\xed\xad\xbf",
        "\xed\xae\x80",
        "\xed\xaf\xbf",
        "\xed\xb0\x80",
        "\xed\xbe\x80",
        "\xed\xbf\xbf",
        /* Kuhn 5.2: paired UTF-16 surrogates. */
        "\xed\xa0\x80\xed\xb0\x80",
        "\xed\xaf\xbf\xed\xbf\xbf",
        /* Continuation byte where a lead was expected after a complete sequence. */
        "\xc3\xa9\xa9",
        "\xf0\x9f\x98\x80\x80",
        /* A lead byte where a continuation was expected. */
        "\xe2\xc2\x80",
        "\xf0\x9f\xc3\xa9",
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        expect_everywhere((const uint8_t *)bad[i], strlen(bad[i]), 0);
    }
}

static void test_every_single_byte(void **state) {
    unsigned b;

    (void)state;
    for (b = 0; b < 256; b++) {
        uint8_t c = (uint8_t)b;

        expect_everywhere(&c, 1, b < 0x80);
    }
}

static void test_truncated_at_every_position(void **state) {
    /* Every proper prefix of a valid multi-byte sequence is invalid, at the end of the input and
     * followed by ASCII, at every alignment. */
    static const char *const seqs[] = {"\xc2\x80",         "\xdf\xbf",         "\xe0\xa0\x80",
                                       "\xed\x9f\xbf",     "\xef\xbf\xbf",     "\xf0\x90\x80\x80",
                                       "\xf4\x8f\xbf\xbf", "\xf0\x9f\x98\x80", "\xe2\x82\xac"};
    size_t i;
    size_t cut;

    (void)state;
    for (i = 0; i < sizeof(seqs) / sizeof(seqs[0]); i++) {
        size_t n = strlen(seqs[i]);

        for (cut = 1; cut < n; cut++) {
            expect_everywhere((const uint8_t *)seqs[i], cut, 0);
        }
        expect_everywhere((const uint8_t *)seqs[i], n, 1);
    }
}

static void test_every_code_point(void **state) {
    uint8_t buf[8];
    uint32_t cp;

    (void)state;
    /* Every code point up to one past the largest, plus the first of the 5-byte range. */
    for (cp = 0; cp <= TEST_MAX_CODE_POINT + 1; cp++) {
        size_t n = encode(cp, buf);
        int want = cp <= TEST_MAX_CODE_POINT && (cp < 0xD800 || cp > 0xDFFF);

        if (utf8_valid(buf, n) != want) {
            fail_msg("U+%04X: want %d", cp, want);
        }
    }
    assert_int_equal(utf8_valid(buf, encode(0x200000, buf)), 0);
    /* Overlong forms of a sample of code points: each encoded with one more byte than needed. */
    for (cp = 0; cp < 0x10000; cp += 7) {
        buf[0] = (uint8_t)(0xF0 | (cp >> 18));
        buf[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
        buf[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        buf[3] = (uint8_t)(0x80 | (cp & 0x3F));
        assert_int_equal(utf8_valid(buf, 4), 0);
    }
}

static void test_all_short_sequences_match_reference(void **state) {
    /* Every 2-byte input, and every 3-byte input starting at 0xC0 or above (below that, the first
     * byte is either ASCII or a stray continuation and the rest is covered by 2-byte inputs). */
    uint8_t buf[4];
    unsigned a;
    unsigned b;
    unsigned c;

    (void)state;
    for (a = 0; a < 256; a++) {
        for (b = 0; b < 256; b++) {
            buf[0] = (uint8_t)a;
            buf[1] = (uint8_t)b;
            assert_int_equal(utf8_valid(buf, 2), reference_valid(buf, 2));
            if (a < 0xC0) {
                continue;
            }
            for (c = 0; c < 256; c++) {
                buf[2] = (uint8_t)c;
                if (utf8_valid(buf, 3) != reference_valid(buf, 3)) {
                    fail_msg("%02x %02x %02x disagrees with the reference", a, b, c);
                }
            }
        }
    }
}

static void test_four_byte_sequences_match_reference(void **state) {
    /* Every lead byte from F0, every second byte, and the interesting third and fourth bytes. */
    static const uint8_t tails[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90,
                                    0x9F, 0xA0, 0xBF, 0xC0, 0xFF};
    uint8_t buf[4];
    unsigned a;
    unsigned b;
    size_t c;
    size_t d;

    (void)state;
    for (a = 0xF0; a < 256; a++) {
        for (b = 0; b < 256; b++) {
            for (c = 0; c < sizeof(tails); c++) {
                for (d = 0; d < sizeof(tails); d++) {
                    buf[0] = (uint8_t)a;
                    buf[1] = (uint8_t)b;
                    buf[2] = tails[c];
                    buf[3] = tails[d];
                    if (utf8_valid(buf, 4) != reference_valid(buf, 4)) {
                        fail_msg("%02x %02x %02x %02x disagrees with the reference", buf[0], buf[1],
                                 buf[2], buf[3]);
                    }
                }
            }
        }
    }
}

static void test_long_ascii_with_error_at_every_position(void **state) {
    uint8_t buf[64];
    size_t len;
    size_t pos;

    (void)state;
    for (len = 1; len <= sizeof(buf); len++) {
        memset(buf, 'x', len);
        assert_int_equal(valid_exact(buf, len), 1);
        for (pos = 0; pos < len; pos++) {
            buf[pos] = 0x80;
            if (valid_exact(buf, len) != 0) {
                fail_msg("stray 0x80 at %zu of %zu was accepted", pos, len);
            }
            buf[pos] = 0xF4;
            if (valid_exact(buf, len) != 0) {
                fail_msg("truncated F4 at %zu of %zu was accepted", pos, len);
            }
            buf[pos] = 'x';
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_text),
        cmocka_unit_test(test_boundaries),
        cmocka_unit_test(test_invalid_sequences),
        cmocka_unit_test(test_every_single_byte),
        cmocka_unit_test(test_truncated_at_every_position),
        cmocka_unit_test(test_every_code_point),
        cmocka_unit_test(test_all_short_sequences_match_reference),
        cmocka_unit_test(test_four_byte_sequences_match_reference),
        cmocka_unit_test(test_long_ascii_with_error_at_every_position),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
