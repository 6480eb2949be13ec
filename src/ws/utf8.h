/* utf8.h: strict UTF-8 validation (RFC 3629) as RFC 6455 requires for text frames. */
#ifndef SIG_WS_UTF8_H
#define SIG_WS_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Returns 1 when p[0..n) is well-formed UTF-8: no overlong forms, no surrogates (U+D800-U+DFFF),
 * nothing above U+10FFFF, no truncated sequence at the end. Returns 0 otherwise. It has an ASCII
 * fast path (8 bytes at a time) because nearly every byte we see is ASCII. Pure. */
int utf8_valid(const uint8_t *p, size_t n);

#endif
