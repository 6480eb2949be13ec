/* utf8.c: strict UTF-8 validation following the table of well-formed byte sequences in the
 * Unicode Standard (chapter 3, table 3-7), which is exactly RFC 3629. */
#include "ws/utf8.h"

#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* Bytes checked at once by the ASCII fast path. */
#define ASCII_WORD_BYTES 8
/* The top bit of each of 8 bytes: a word ANDed with it is zero only when all 8 bytes are ASCII. */
#define ASCII_WORD_HIGH_BITS UINT64_C(0x8080808080808080)

int utf8_valid(const uint8_t *p, size_t n) {
    size_t i = 0;

    while (i < n) {
        size_t need;
        size_t k;
        uint8_t c = p[i];
        /* The range of the second byte depends on the lead byte: that is where overlong forms
         * (E0, F0), surrogates (ED) and code points above U+10FFFF (F4) are excluded. */
        uint8_t lo = 0x80;
        uint8_t hi = 0xBF;

#ifdef __SSE2__
        /* 16 ASCII bytes at a time where SSE2 exists (every x86-64): the top bits of a 16-byte
         * load, gathered by movemask, are zero only when all 16 bytes are ASCII. */
        if (n - i >= 16 &&
            _mm_movemask_epi8(_mm_loadu_si128((const __m128i *)(const void *)(p + i))) == 0) {
            i += 16;
            continue;
        }
#endif
        if (n - i >= ASCII_WORD_BYTES) {
            uint64_t w;

            /* memcpy, not a cast, because p has no alignment guarantee; compilers turn it into
             * one unaligned load. */
            memcpy(&w, p + i, sizeof(w));
            if ((w & ASCII_WORD_HIGH_BITS) == 0) {
                i += ASCII_WORD_BYTES;
                continue;
            }
        }
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c == 0xE0) {
            need = 2;
            lo = 0xA0;
        } else if (c == 0xED) {
            need = 2;
            hi = 0x9F;
        } else if (c >= 0xE1 && c <= 0xEF) {
            need = 2;
        } else if (c == 0xF0) {
            need = 3;
            lo = 0x90;
        } else if (c == 0xF4) {
            need = 3;
            hi = 0x8F;
        } else if (c >= 0xF1 && c <= 0xF3) {
            need = 3;
        } else {
            /* 80-BF cannot start a sequence, C0-C1 only start overlong ones, F5-FF are beyond
             * U+10FFFF. */
            return 0;
        }
        if (n - i <= need) {
            return 0;
        }
        if (p[i + 1] < lo || p[i + 1] > hi) {
            return 0;
        }
        for (k = 2; k <= need; k++) {
            if ((p[i + k] & 0xC0) != 0x80) {
                return 0;
            }
        }
        i += need + 1;
    }
    return 1;
}
