/* buf.h: a growable byte buffer. Connections hold three of them (partial input, a fragmented
 * message, pending output), all empty and unallocated while the connection is idle, which is
 * what keeps an idle connection small. */
#ifndef SIG_CORE_BUF_H
#define SIG_CORE_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct buf {
    uint8_t *data; /* NULL while cap == 0 */
    uint32_t len;  /* bytes in use */
    uint32_t cap;  /* bytes allocated */
} buf_t;

/* Makes room for at least `extra` more bytes after len. Returns a pointer to data + len. */
uint8_t *buf_reserve(buf_t *b, size_t extra);

/* Appends n bytes. */
void buf_append(buf_t *b, const void *p, size_t n);

/* Appends a NUL-terminated string (without the NUL). */
void buf_puts(buf_t *b, const char *s);

/* Drops the first n bytes (n <= len). When the buffer becomes empty its memory is released, so
 * idle connections hold no buffer memory. */
void buf_consume(buf_t *b, size_t n);

/* Releases the memory; the buffer is empty and may be reused. */
void buf_dispose(buf_t *b);

#endif
