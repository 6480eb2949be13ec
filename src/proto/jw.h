/* jw.h: writes outgoing JSON straight into a connection's output buffer. Responses have fixed
 * shapes, so templates plus these few appenders beat any general printer (cJSON's printer costs
 * about 2 us per document; these cost tens of nanoseconds). */
#ifndef SIG_PROTO_JW_H
#define SIG_PROTO_JW_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* Appends a literal fragment of JSON text. */
static inline void jw_raw(buf_t *b, const char *s, size_t n) {
    buf_append(b, s, n);
}

/* Appends a string literal with its quotes; bytes are escaped as JSON requires (", \, and control
 * characters as \u00XX). Bytes >= 0x80 are copied as they are: callers pass only validated UTF-8.
 */
void jw_str(buf_t *b, const char *s, size_t n);

/* Appends an unsigned decimal integer. */
void jw_u64(buf_t *b, uint64_t v);

/* Appends 2*n lowercase hex digits of the bytes, inside quotes. */
void jw_hex(buf_t *b, const uint8_t *p, size_t n);

/* Appends a string literal (convenience for templates). The "" concatenation makes anything but a
 * literal fail to compile, since sizeof of a pointer would silently truncate. */
#define JW_LIT(b, lit) jw_raw((b), "" lit, sizeof(lit) - 1)

#endif
