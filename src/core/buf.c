/* buf.c: growable byte buffer. */
#include "core/buf.h"

#include <string.h>

#include "core/alloc.h"

/* Smallest allocation, in bytes: most frames we write are 100-300 bytes. */
#define BUF_MIN_CAP 256

uint8_t *buf_reserve(buf_t *b, size_t extra) {
    size_t need = (size_t)b->len + extra;
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : BUF_MIN_CAP;
        while (cap < need)
            cap *= 2;
        b->data = xrealloc(b->data, cap);
        b->cap = (uint32_t)cap;
    }
    return b->data + b->len;
}

void buf_append(buf_t *b, const void *p, size_t n) {
    if (n == 0)
        return;
    memcpy(buf_reserve(b, n), p, n);
    b->len += (uint32_t)n;
}

void buf_puts(buf_t *b, const char *s) {
    buf_append(b, s, strlen(s));
}

void buf_consume(buf_t *b, size_t n) {
    if (n >= b->len) {
        buf_dispose(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= (uint32_t)n;
}

void buf_dispose(buf_t *b) {
    xfree(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}
