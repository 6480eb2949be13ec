/* fuzz_utf8.c: libFuzzer driver for the UTF-8 validator. The oracle below decodes one code point
 * at a time from the bit patterns, with no tables and no fast path, and utf8_valid must agree
 * with it on the input and on every suffix that starts within the first 8 bytes (so that the
 * fast path's 8-byte words fall at every alignment). Any disagreement aborts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "ws/utf8.h"

/* Largest Unicode code point. */
#define MAX_CODE_POINT 0x10FFFF
/* Number of suffixes checked: every start within one fast-path word. */
#define SUFFIX_STARTS 8

/* Returns 1 when p[0..n) is well-formed UTF-8, decoding it the slow and obvious way: the lead
 * byte gives the length, each continuation byte must be 10xxxxxx, and the decoded value must
 * need exactly that length, lie outside the surrogates and not exceed U+10FFFF. */
static int oracle_valid(const uint8_t *p, size_t n) {
    static const uint32_t min_for_len[5] = {0, 0, 0x80, 0x800, 0x10000};
    size_t i = 0;

    while (i < n) {
        uint32_t cp;
        size_t len;
        size_t k;

        if ((p[i] & 0x80) == 0) {
            i++;
            continue;
        }
        if ((p[i] & 0xE0) == 0xC0) {
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
        if (n - i < len) {
            return 0;
        }
        for (k = 1; k < len; k++) {
            if ((p[i + k] & 0xC0) != 0x80) {
                return 0;
            }
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if (cp < min_for_len[len] || cp > MAX_CODE_POINT || (cp >= 0xD800 && cp <= 0xDFFF)) {
            return 0;
        }
        i += len;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t start;

    for (start = 0; start < SUFFIX_STARTS && start <= size; start++) {
        int got = utf8_valid(data + start, size - start);
        int want = oracle_valid(data + start, size - start);

        if (got != want) {
            fprintf(stderr, "fuzz_utf8: utf8_valid says %d, oracle says %d, at start %zu\n", got,
                    want, start);
            abort();
        }
    }
    return 0;
}
