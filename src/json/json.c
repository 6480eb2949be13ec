/* json.c: a strict RFC 8259 tokenizer and its accessors. See json.h for the contract.
 *
 * The tokenizer is one iterative pass over the input driven by a small state machine. It needs no
 * stack of its own: while a container is open, its `next` field holds the index of the enclosing
 * container, and when the container closes that field is read back and overwritten with the real
 * `next`. Nesting therefore costs nothing beyond the depth counter that enforces max_depth. */
#include "json/json.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* Longest number, in bytes, that json_get_double copies to its local buffer for strtod. The
 * longest double JSON.stringify writes is 24 bytes ("-1.7976931348623157e+308"), so anything
 * longer is not a number a real client produces. */
#define JSON_NUMBER_MAX_BYTES 64
/* Largest input, in bytes, whose offsets fit in the 32-bit fields of json_tok_t. */
#define JSON_MAX_INPUT_BYTES ((size_t)UINT32_MAX)
/* Stored in `next` of an open container that sits at the top level. */
#define NO_PARENT UINT32_MAX

/* What the tokenizer accepts at the next non-whitespace byte. */
enum expect {
    EXPECT_VALUE,          /* start of the document, after ':' or after ',' in an array */
    EXPECT_VALUE_OR_CLOSE, /* just after '[' */
    EXPECT_KEY,            /* after ',' in an object */
    EXPECT_KEY_OR_CLOSE,   /* just after '{' */
    EXPECT_COLON,          /* after a key */
    EXPECT_COMMA_OR_CLOSE, /* after a complete value inside a container */
    EXPECT_END,            /* after the top-level value: only whitespace may follow */
};

/* Returned by scan_string when the string is malformed or unterminated. */
#define SCAN_ERROR SIZE_MAX

/* Eight copies of one byte, for the word-at-a-time string scan. */
#define BYTES8(b) ((uint64_t)0x0101010101010101u * (uint8_t)(b))

static inline int is_ws(unsigned char c) {
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

static inline int is_digit(unsigned char c) {
    return (unsigned)(c - '0') < 10u;
}

/* One more than the value of each hex digit, so that the zero of every other entry means "not a
 * hex digit". A table because \u escapes are frequent: WebTorrent IDs are full of them. */
static const uint8_t hex_plus1[256] = {
    ['0'] = 1,  ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,  ['6'] = 7,  ['7'] = 8,
    ['8'] = 9,  ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
    ['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
};

/* Reads the four hex digits at p[0..4) when they lie before end. Returns the value or -1. */
static inline int32_t hex4(const unsigned char *p, const unsigned char *end) {
    if (end - p < 4)
        return -1;
    int a = hex_plus1[p[0]], b = hex_plus1[p[1]], c = hex_plus1[p[2]], d = hex_plus1[p[3]];
    if (a == 0 || b == 0 || c == 0 || d == 0)
        return -1;
    return ((a - 1) << 12) | ((b - 1) << 8) | ((c - 1) << 4) | (d - 1);
}

static inline int is_high_surrogate(int32_t cp) {
    return cp >= 0xD800 && cp <= 0xDBFF;
}

static inline int is_low_surrogate(int32_t cp) {
    return cp >= 0xDC00 && cp <= 0xDFFF;
}

/* The string scan finds the first special byte of a word by counting trailing zero bits, which
 * assumes that the first byte in memory is the least significant one. That holds on every target
 * we build for (x86-64, arm64). */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "json.c assumes a little-endian target");

/* Returns a mask with the top bit set for the bytes of the 8-byte word v that are '"', '\\' or a
 * control character (< 0x20), or 0 when there are none. It is the classic "has a zero byte"
 * trick applied three times. A borrow can also flag a byte above a flagged one, but never below,
 * so the lowest flagged byte, the only one the scan uses, is exact. */
static inline uint64_t special_mask(uint64_t v) {
    const uint64_t ones = BYTES8(0x01), highs = BYTES8(0x80);
    uint64_t q = v ^ BYTES8('"');
    uint64_t b = v ^ BYTES8('\\');
    uint64_t hits = ((q - ones) & ~q) | ((b - ones) & ~b) | ((v - BYTES8(0x20)) & ~v);
    return hits & highs;
}

#ifdef __SSE2__
/* The same test, 16 bytes at a time with SSE2 (always present on x86-64): a bit per byte that is
 * '"', '\\' or below 0x20. SDP blobs are most of a message's bytes, and this halves the
 * instructions spent on them; other targets use the portable word-at-a-time mask above. */
static inline uint32_t special_mask16(const unsigned char *p) {
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
    __m128i quote = _mm_cmpeq_epi8(v, _mm_set1_epi8('"'));
    __m128i bslash = _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'));
    /* v <= 0x1F (unsigned) exactly when max(v, 0x1F) == 0x1F. */
    __m128i ctl = _mm_cmpeq_epi8(_mm_max_epu8(v, _mm_set1_epi8(0x1F)), _mm_set1_epi8(0x1F));
    return (uint32_t)_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, bslash), ctl));
}
#endif

static inline int byte_is_special(unsigned char c) {
    return c == '"' || c == '\\' || c < 0x20;
}

/* The bytes \ u 0 0 read as a little-endian 32-bit word. */
#define ESCAPE_U00 ((uint32_t)'\\' | (uint32_t)'u' << 8 | (uint32_t)'0' << 16 | (uint32_t)'0' << 24)

/* 1 for the characters that may follow a backslash to form a two-byte escape (RFC 8259 section 7).
 */
static const uint8_t short_escape[256] = {
    ['"'] = 1, ['\\'] = 1, ['/'] = 1, ['b'] = 1, ['f'] = 1, ['n'] = 1, ['r'] = 1, ['t'] = 1,
};

/* Validates one backslash escape at p (p[0] == '\\'), including a following low surrogate when
 * the escape is a high surrogate. Returns the number of bytes it spans (2, 6 or 12), or 0 when it
 * is malformed. */
static inline size_t check_escape(const unsigned char *p, const unsigned char *end) {
    if (end - p < 2)
        return 0;
    switch (p[1]) {
    case '"':
    case '\\':
    case '/':
    case 'b':
    case 'f':
    case 'n':
    case 'r':
    case 't':
        return 2;
    case 'u': {
        int32_t cp = hex4(p + 2, end);
        if (cp < 0 || is_low_surrogate(cp))
            return 0;
        if (!is_high_surrogate(cp))
            return 6;
        /* RFC 8259 section 7 leaves unpaired surrogates undefined; we refuse them so that every
         * accepted string unescapes to valid UTF-8. */
        if (end - p < 12 || p[6] != '\\' || p[7] != 'u')
            return 0;
        int32_t lo = hex4(p + 8, end);
        if (!is_low_surrogate(lo))
            return 0;
        return 12;
    }
    default:
        return 0;
    }
}

/* Scans a string body that starts at s[i], just after the opening quote. Returns the index of
 * the closing quote and sets *escaped, or returns SCAN_ERROR. Long strings (SDP blobs) dominate
 * the bytes of a message, so plain runs are skipped eight bytes at a time. */
static inline size_t scan_string(const unsigned char *s, size_t i, size_t len, uint8_t *escaped) {
    for (;;) {
        for (;;) {
#ifdef __SSE2__
            if (len - i >= 16) {
                uint32_t m = special_mask16(s + i);
                if (m != 0) {
                    i += (size_t)__builtin_ctz(m);
                    break;
                }
                i += 16;
                continue;
            }
#endif
            if (len - i < 8) {
                while (i < len && !byte_is_special(s[i]))
                    i++;
                if (i >= len)
                    return SCAN_ERROR;
                break;
            }
            uint64_t v;
            memcpy(&v, s + i, sizeof v);
            uint64_t m = special_mask(v);
            if (m != 0) {
                i += (size_t)__builtin_ctzll(m) / 8;
                break;
            }
            i += 8;
        }
        unsigned char c = s[i];
        if (c == '"')
            return i;
        if (c != '\\')
            return SCAN_ERROR; /* A raw control character. */
        *escaped = 1;
        /* Escapes come in runs in WebTorrent IDs ("\u00ad\u00a5..."), so look at the byte after
         * each one before paying for another word-sized scan. */
        do {
            /* The two-byte escapes (\r\n ends every SDP line) are settled by one table lookup;
             * only \u needs the full check. */
            if (len - i >= 2 && short_escape[s[i + 1]]) {
                i += 2;
                continue;
            }
            /* \u00XX, the form of every non-printable byte in a WebTorrent ID: one 4-byte
             * compare and two table lookups (it cannot be a surrogate). */
            uint32_t head;
            if (len - i >= 6 && (memcpy(&head, s + i, 4), head == ESCAPE_U00) &&
                hex_plus1[s[i + 4]] && hex_plus1[s[i + 5]]) {
                i += 6;
                continue;
            }
            size_t n = check_escape(s + i, s + len);
            if (n == 0)
                return SCAN_ERROR;
            i += n;
        } while (i < len && s[i] == '\\');
        if (i < len && s[i] == '"')
            return i;
    }
}

/* Scans a number that starts at s[i] against the RFC 8259 grammar
 * -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? and returns the index one past it, or
 * SCAN_ERROR. What follows (for example the second digit of "01") is left to the state machine,
 * which only accepts a delimiter there. */
static inline size_t scan_number(const unsigned char *s, size_t i, size_t len) {
    if (s[i] == '-')
        i++;
    if (i >= len)
        return SCAN_ERROR;
    if (s[i] == '0') {
        i++;
    } else if (is_digit(s[i])) {
        while (i < len && is_digit(s[i]))
            i++;
    } else {
        return SCAN_ERROR;
    }
    if (i < len && s[i] == '.') {
        i++;
        if (i >= len || !is_digit(s[i]))
            return SCAN_ERROR;
        while (i < len && is_digit(s[i]))
            i++;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= len || !is_digit(s[i]))
            return SCAN_ERROR;
        while (i < len && is_digit(s[i]))
            i++;
    }
    return i;
}

/* Closes the open container toks[*parent], whose closing bracket is at offset i: records its end,
 * swaps the parent link kept in `next` for the real `next`, and returns what may follow. */
static inline enum expect close_container(json_tok_t *toks, uint32_t *parent, uint32_t ntok,
                                          size_t i) {
    json_tok_t *p = &toks[*parent];
    p->end = (uint32_t)(i + 1);
    *parent = p->next;
    p->next = ntok;
    return *parent == NO_PARENT ? EXPECT_END : EXPECT_COMMA_OR_CLOSE;
}

int json_parse(const char *src, size_t len, json_tok_t *toks, uint32_t max_toks,
               uint32_t max_depth) {
    const unsigned char *s = (const unsigned char *)src;
    if (len > JSON_MAX_INPUT_BYTES)
        return -EINVAL;
    /* The count is returned as an int. */
    if (max_toks > (uint32_t)INT_MAX)
        max_toks = (uint32_t)INT_MAX;

    uint32_t ntok = 0, depth = 0, parent = NO_PARENT;
    enum expect st = EXPECT_VALUE;
    size_t i = 0;

    for (;;) {
        /* Machine-written JSON has no whitespace, so one compare usually settles it. */
        while (i < len && s[i] <= ' ' && is_ws(s[i]))
            i++;
        if (i >= len)
            return st == EXPECT_END ? (int)ntok : -EINVAL;
        unsigned char c = s[i];

        switch (st) {
        case EXPECT_END:
            return -EINVAL;

        case EXPECT_COLON:
            if (c != ':')
                return -EINVAL;
            i++;
            st = EXPECT_VALUE;
            continue;

        case EXPECT_COMMA_OR_CLOSE:
            if (c == ',') {
                i++;
                st = toks[parent].type == JSON_OBJECT ? EXPECT_KEY : EXPECT_VALUE;
                continue;
            }
            if (c != (toks[parent].type == JSON_OBJECT ? '}' : ']'))
                return -EINVAL;
            st = close_container(toks, &parent, ntok, i++);
            depth--;
            continue;

        case EXPECT_KEY_OR_CLOSE:
        case EXPECT_KEY: {
            if (c == '}' && st == EXPECT_KEY_OR_CLOSE) {
                st = close_container(toks, &parent, ntok, i++);
                depth--;
                continue;
            }
            if (c != '"')
                return -EINVAL;
            if (ntok >= max_toks)
                return -ENOSPC;
            json_tok_t *t = &toks[ntok];
            t->escaped = 0;
            size_t q = scan_string(s, i + 1, len, &t->escaped);
            if (q == SCAN_ERROR)
                return -EINVAL;
            t->type = JSON_STRING;
            t->start = (uint32_t)(i + 1);
            t->end = (uint32_t)q;
            t->size = 0;
            t->next = ++ntok;
            toks[parent].size++;
            i = q + 1;
            st = EXPECT_COLON;
            continue;
        }

        case EXPECT_VALUE_OR_CLOSE:
        case EXPECT_VALUE:
            if (c == ']' && st == EXPECT_VALUE_OR_CLOSE) {
                st = close_container(toks, &parent, ntok, i++);
                depth--;
                continue;
            }
            break;
        }

        /* A value starts at s[i]. Array elements are counted here; object members were counted
         * at their key. */
        if (ntok >= max_toks)
            return -ENOSPC;
        if (parent != NO_PARENT && toks[parent].type == JSON_ARRAY)
            toks[parent].size++;
        json_tok_t *t = &toks[ntok];
        t->start = (uint32_t)i;
        t->size = 0;
        t->escaped = 0;

        if (c == '{' || c == '[') {
            if (depth >= max_depth)
                return -ELOOP;
            depth++;
            t->type = c == '{' ? JSON_OBJECT : JSON_ARRAY;
            t->next = parent; /* Until the container closes: see the comment at the top. */
            parent = ntok++;
            i++;
            st = c == '{' ? EXPECT_KEY_OR_CLOSE : EXPECT_VALUE_OR_CLOSE;
            continue;
        }

        size_t e;
        if (c == '"') {
            e = scan_string(s, i + 1, len, &t->escaped);
            if (e == SCAN_ERROR)
                return -EINVAL;
            t->type = JSON_STRING;
            t->start = (uint32_t)(i + 1);
            t->end = (uint32_t)e;
            e++;
        } else if (c == '-' || is_digit(c)) {
            e = scan_number(s, i, len);
            if (e == SCAN_ERROR)
                return -EINVAL;
            t->type = JSON_NUMBER;
            t->end = (uint32_t)e;
        } else if (c == 't' && len - i >= 4 && memcmp(s + i, "true", 4) == 0) {
            t->type = JSON_TRUE;
            e = i + 4;
            t->end = (uint32_t)e;
        } else if (c == 'f' && len - i >= 5 && memcmp(s + i, "false", 5) == 0) {
            t->type = JSON_FALSE;
            e = i + 5;
            t->end = (uint32_t)e;
        } else if (c == 'n' && len - i >= 4 && memcmp(s + i, "null", 4) == 0) {
            t->type = JSON_NULL;
            e = i + 4;
            t->end = (uint32_t)e;
        } else {
            return -EINVAL;
        }
        t->next = ++ntok;
        i = e;
        st = parent == NO_PARENT ? EXPECT_END : EXPECT_COMMA_OR_CLOSE;
        continue;
    }
}

/* The byte each two-character escape stands for, by its second character; 0 for the rest. */
static const unsigned char simple_escape[256] = {
    ['"'] = '"',  ['\\'] = '\\', ['/'] = '/',  ['b'] = '\b',
    ['f'] = '\f', ['n'] = '\n',  ['r'] = '\r', ['t'] = '\t',
};

/* Decodes the escape at p (p[0] == '\\', p < end) of a string that json_parse accepted, writing
 * its UTF-8 form to out. Returns the number of input bytes it spans and sets *outlen, or returns
 * 0 when the escape is malformed (only possible for a token json_parse did not produce). */
static inline size_t unescape_one(const unsigned char *p, const unsigned char *end,
                                  unsigned char out[4], size_t *outlen) {
    if (end - p < 2)
        return 0;
    *outlen = 1;
    if (p[1] != 'u') {
        unsigned char c = simple_escape[p[1]];
        out[0] = c;
        return c != 0 ? 2 : 0;
    }
    int32_t cp = hex4(p + 2, end);
    size_t used = 6;
    if (cp < 0 || is_low_surrogate(cp))
        return 0;
    if (is_high_surrogate(cp)) {
        if (end - p < 12 || p[6] != '\\' || p[7] != 'u')
            return 0;
        int32_t lo = hex4(p + 8, end);
        if (!is_low_surrogate(lo))
            return 0;
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        used = 12;
    }
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
    } else if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        *outlen = 2;
    } else if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        *outlen = 3;
    } else {
        out[0] = (unsigned char)(0xF0 | (cp >> 18));
        out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[3] = (unsigned char)(0x80 | (cp & 0x3F));
        *outlen = 4;
    }
    return used;
}

int json_str_eq(const char *src, const json_tok_t *t, const char *lit) {
    if (t->type != JSON_STRING)
        return 0;
    const unsigned char *p = (const unsigned char *)src + t->start;
    const unsigned char *end = (const unsigned char *)src + t->end;
    const unsigned char *l = (const unsigned char *)lit;
    if (!t->escaped) {
        size_t n = strlen(lit);
        return (size_t)(end - p) == n && memcmp(p, lit, n) == 0;
    }
    /* Compare while unescaping, so that no buffer is needed. A literal cannot hold a NUL byte,
     * hence the checks of *l before every byte: "a\u0000" must not equal "a". */
    while (p < end) {
        if (*p != '\\') {
            if (*l == 0 || *l != *p)
                return 0;
            l++;
            p++;
            continue;
        }
        unsigned char buf[4];
        size_t n = 0;
        size_t used = unescape_one(p, end, buf, &n);
        if (used == 0)
            return 0;
        for (size_t k = 0; k < n; k++, l++) {
            if (*l == 0 || *l != buf[k])
                return 0;
        }
        p += used;
    }
    return *l == 0;
}

int json_obj_get(const char *src, const json_tok_t *toks, int obj, const char *key) {
    if (obj < 0 || toks[obj].type != JSON_OBJECT)
        return -1;
    size_t klen = strlen(key);
    uint32_t i = (uint32_t)obj + 1;
    for (uint32_t m = 0; m < toks[obj].size; m++) {
        const json_tok_t *k = &toks[i];
        uint32_t rawlen = k->end - k->start;
        if (!k->escaped) {
            /* The common case: compare the raw bytes. */
            if (rawlen == klen &&
                (klen == 0 || (src[k->start] == key[0] && memcmp(src + k->start, key, klen) == 0)))
                return (int)i + 1;
        } else if (rawlen >= klen && json_str_eq(src, k, key)) {
            /* Unescaping never lengthens a string, so a shorter raw key cannot match. */
            return (int)i + 1;
        }
        i = toks[i + 1].next;
    }
    return -1;
}

/* Returns a mask with the top bit set for the bytes of v that are a backslash; as with
 * special_mask, only the lowest flagged byte is exact. */
static inline uint64_t backslash_mask(uint64_t v) {
    uint64_t b = v ^ BYTES8('\\');
    return (b - BYTES8(0x01)) & ~b & BYTES8(0x80);
}

int json_str_unescape(const char *src, const json_tok_t *t, char *out, size_t cap) {
    if (t->type != JSON_STRING)
        return -EINVAL;
    /* The length is returned as an int. */
    if (cap > (size_t)INT_MAX)
        cap = (size_t)INT_MAX;
    const unsigned char *p = (const unsigned char *)src + t->start;
    const unsigned char *end = (const unsigned char *)src + t->end;
    if (!t->escaped) {
        size_t n = (size_t)(end - p);
        if (n > cap)
            return -ENOSPC;
        memcpy(out, p, n);
        return (int)n;
    }
    size_t o = 0;
    while (p < end) {
        if (*p == '\\') {
            /* Decode straight into out when any escape fits, through buf near the end. */
            unsigned char buf[4];
            int direct = cap - o >= sizeof buf;
            unsigned char *dst = direct ? (unsigned char *)out + o : buf;
            size_t n = 0;
            size_t used = unescape_one(p, end, dst, &n);
            if (used == 0)
                return -EINVAL;
            if (!direct) {
                if (n > cap - o)
                    return -ENOSPC;
                memcpy(out + o, buf, n);
            }
            o += n;
            p += used;
            continue;
        }
        /* Copy plain bytes eight at a time while both sides have room for a word. IDs are
         * escape-dense and SDPs are long, so neither a memchr call per run nor a byte loop
         * suits both. */
        if (end - p >= 8 && cap - o >= 8) {
            uint64_t v;
            memcpy(&v, p, sizeof v);
            uint64_t m = backslash_mask(v);
            size_t run = m == 0 ? 8 : (size_t)__builtin_ctzll(m) / 8;
            for (size_t k = 0; k < run; k++)
                out[o + k] = (char)p[k];
            o += run;
            p += run;
            continue;
        }
        if (o == cap)
            return -ENOSPC;
        out[o++] = (char)*p++;
    }
    return (int)o;
}

int json_get_i64(const char *src, const json_tok_t *t, int64_t *out) {
    if (t->type != JSON_NUMBER)
        return -EINVAL;
    const unsigned char *p = (const unsigned char *)src + t->start;
    const unsigned char *end = (const unsigned char *)src + t->end;
    int neg = 0;
    if (p < end && *p == '-') {
        neg = 1;
        p++;
    }
    if (p == end)
        return -EINVAL;
    /* Accumulate the magnitude unsigned, so that INT64_MIN, whose magnitude exceeds INT64_MAX,
     * is representable until the sign is applied. */
    const uint64_t limit = neg ? (uint64_t)INT64_MAX + 1u : (uint64_t)INT64_MAX;
    uint64_t mag = 0;
    int overflow = 0;
    for (; p < end && is_digit(*p); p++) {
        unsigned d = (unsigned)(*p - '0');
        if (mag > (limit - d) / 10u)
            overflow = 1; /* Keep scanning: a fraction makes it -EINVAL, not -ERANGE. */
        else
            mag = mag * 10u + d;
    }
    if (p != end)
        return -EINVAL; /* A fraction or an exponent. */
    if (overflow)
        return -ERANGE;
    if (neg)
        *out = mag == (uint64_t)INT64_MAX + 1u ? INT64_MIN : -(int64_t)mag;
    else
        *out = (int64_t)mag;
    return 0;
}

int json_get_double(const char *src, const json_tok_t *t, double *out) {
    if (t->type != JSON_NUMBER)
        return -EINVAL;
    size_t n = t->end - t->start;
    /* strtod needs a NUL terminator, which the input does not have, so the number is copied. It
     * parses with the "C" locale's '.' because the server never calls setlocale(LC_NUMERIC). */
    char buf[JSON_NUMBER_MAX_BYTES + 1];
    if (n == 0)
        return -EINVAL;
    if (n > JSON_NUMBER_MAX_BYTES)
        return -ERANGE;
    memcpy(buf, src + t->start, n);
    buf[n] = '\0';
    int saved = errno;
    errno = 0;
    char *endp = NULL;
    double v = strtod(buf, &endp);
    int range = errno == ERANGE;
    errno = saved;
    if (endp != buf + n)
        return -EINVAL;
    /* Underflow rounds towards zero, which is harmless; overflow has no useful value. */
    if (range && (v == HUGE_VAL || v == -HUGE_VAL))
        return -ERANGE;
    *out = v;
    return 0;
}
