/* binstr.c: the WebTorrent "binary string" codec. See binstr.h and protocols.md section 1.2.
 *
 * Decoding works straight from the raw token bytes: it resolves escapes and decodes UTF-8 in the
 * same loop, so it needs no buffer however long the string is. A code point U+0000-U+00FF takes
 * one of three forms on the wire: a raw ASCII byte, a two-byte UTF-8 sequence C2 xx or C3 xx, or a
 * JSON escape (\b \t \n \f \r \" \\ \/ or \u00XX). Anything else means a code point above U+00FF
 * or broken UTF-8, and either way the string is not a binary string. */
#include "proto/binstr.h"

#include <errno.h>

static int hex_digit(unsigned char c) {
    if ((unsigned)(c - '0') < 10u)
        return c - '0';
    c |= 0x20; /* ASCII letters only differ by this bit between cases. */
    if ((unsigned)(c - 'a') < 6u)
        return c - 'a' + 10;
    return -1;
}

/* Decodes the escape at p (p[0] == '\\') into its code point. Returns the number of bytes it
 * spans and sets *cp, or returns 0 when it is malformed or names a code point above U+00FF
 * (surrogates included, since they always do). */
static size_t escape_to_byte(const unsigned char *p, const unsigned char *end, unsigned *cp) {
    if (end - p < 2)
        return 0;
    switch (p[1]) {
    case '"':
    case '\\':
    case '/':
        *cp = p[1];
        return 2;
    case 'b':
        *cp = '\b';
        return 2;
    case 'f':
        *cp = '\f';
        return 2;
    case 'n':
        *cp = '\n';
        return 2;
    case 'r':
        *cp = '\r';
        return 2;
    case 't':
        *cp = '\t';
        return 2;
    case 'u': {
        if (end - p < 6)
            return 0;
        int a = hex_digit(p[2]), b = hex_digit(p[3]), c = hex_digit(p[4]), d = hex_digit(p[5]);
        if ((a | b | c | d) < 0 || a != 0 || b != 0)
            return 0;
        *cp = (unsigned)(c << 4 | d);
        return 6;
    }
    default:
        return 0;
    }
}

int binstr_decode(const char *src, const json_tok_t *t, uint8_t *out, size_t n) {
    if (t->type != JSON_STRING)
        return -EINVAL;
    const unsigned char *p = (const unsigned char *)src + t->start;
    const unsigned char *end = (const unsigned char *)src + t->end;
    size_t k = 0;
    while (p < end) {
        unsigned cp;
        unsigned char c = *p;
        if (c == '\\') {
            size_t used = escape_to_byte(p, end, &cp);
            if (used == 0)
                return -EINVAL;
            p += used;
        } else if (c < 0x80) {
            cp = c;
            p++;
        } else if ((c == 0xC2 || c == 0xC3) && end - p >= 2 && (p[1] & 0xC0) == 0x80) {
            /* U+0080-U+00FF; C0 and C1 would be overlong forms, C4 and up exceed U+00FF. */
            cp = (unsigned)((c & 0x1F) << 6 | (p[1] & 0x3F));
            p += 2;
        } else {
            return -EINVAL;
        }
        if (k == n)
            return -EINVAL; /* Too long; stop before writing past out. */
        out[k++] = (uint8_t)cp;
    }
    return k == n ? 0 : -EINVAL;
}

size_t binstr_encode(const uint8_t *in, size_t n, char *out) {
    static const char hex[] = "0123456789abcdef";
    char *o = out;
    *o++ = '"';
    for (size_t k = 0; k < n; k++) {
        uint8_t b = in[k];
        if (b == '"' || b == '\\') {
            *o++ = '\\';
            *o++ = (char)b;
        } else if (b >= 0x20 && b < 0x7F) {
            *o++ = (char)b;
        } else {
            /* Control bytes, DEL and 0x80-0xFF: escaping the high half keeps the frame 7-bit,
             * so it is valid UTF-8 whatever the ID holds. */
            *o++ = '\\';
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = hex[b >> 4];
            *o++ = hex[b & 0xF];
        }
    }
    *o++ = '"';
    return (size_t)(o - out);
}
