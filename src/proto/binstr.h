/* binstr.h: the WebTorrent "binary string" codec. info_hash, peer_id, offer_id and to_peer_id are
 * JSON strings of code points U+0000-U+00FF, one per byte (latin-1). Pure. */
#ifndef SIG_PROTO_BINSTR_H
#define SIG_PROTO_BINSTR_H

#include <stddef.h>
#include <stdint.h>
#include "json/json.h"

/* Bytes in every WebTorrent identifier. */
#define BINSTR_ID_BYTES 20
/* Room binstr_encode needs for n input bytes: two quotes and \u00XX for each byte, plus one byte
 * of slack the encoder may overwrite past what it returns (it copies 7 bytes per input byte). */
#define BINSTR_ENCODED_MAX(n) (2 + 6 * (n) + 1)

/* Decodes the JSON string token t (escapes resolved, UTF-8 decoded) into exactly n bytes.
 * Returns 0, or -EINVAL when t is not a string, does not hold exactly n code points, or holds a
 * code point above U+00FF (strict: we refuse what bittorrent-tracker silently truncates). */
int binstr_decode(const char *src, const json_tok_t *t, uint8_t *out, size_t n);

/* Encodes n bytes as a JSON string literal, quotes included, in 7-bit ASCII: printable ASCII
 * (0x20-0x7E) as itself except '"' and '\\' (escaped as \" and \\), every other byte as \u00XX
 * with lowercase hex. Returns the number of bytes written; out must hold BINSTR_ENCODED_MAX(n). */
size_t binstr_encode(const uint8_t *in, size_t n, char *out);

#endif
