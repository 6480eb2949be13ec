/* jw.c: JSON appenders. */
#include "proto/jw.h"

static const char hexdigits[] = "0123456789abcdef";

void jw_str(buf_t *b, const char *s, size_t n) {
    /* Worst case every byte becomes \u00XX. */
    uint8_t *o = buf_reserve(b, 2 + 6 * n);
    uint8_t *start = o;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)s[i];
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = c;
        } else if (c < 0x20) {
            *o++ = '\\';
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = (uint8_t)hexdigits[c >> 4];
            *o++ = (uint8_t)hexdigits[c & 15];
        } else {
            *o++ = c;
        }
    }
    *o++ = '"';
    b->len += (uint32_t)(o - start);
}

void jw_u64(buf_t *b, uint64_t v) {
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    uint8_t *o = buf_reserve(b, (size_t)n);
    for (int i = 0; i < n; i++)
        o[i] = (uint8_t)tmp[n - 1 - i];
    b->len += (uint32_t)n;
}

void jw_hex(buf_t *b, const uint8_t *p, size_t n) {
    uint8_t *o = buf_reserve(b, 2 * n + 2);
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        *o++ = (uint8_t)hexdigits[p[i] >> 4];
        *o++ = (uint8_t)hexdigits[p[i] & 15];
    }
    *o = '"';
    b->len += (uint32_t)(2 * n + 2);
}
