/* json.h: a strict (RFC 8259), zero-copy JSON tokenizer in the style of jsmn, plus accessors.
 * The message parsers of both dialects read their fields through it; nothing is allocated and no
 * byte is copied until a field is actually needed. Pure: no I/O, no global state. */
#ifndef SIG_JSON_JSON_H
#define SIG_JSON_JSON_H

#include <stddef.h>
#include <stdint.h>

/* Default nesting limit for client messages. Real messages nest 3 deep (offers[].offer.sdp);
 * a small limit keeps a hostile "[[[[..." from costing anything. */
#define JSON_DEFAULT_MAX_DEPTH 16
/* Default token budget for one message. A WebTorrent announce with 10 offers needs 95
 * (5 plus 9 per offer). */
#define JSON_DEFAULT_MAX_TOKENS 512

typedef enum json_type {
    JSON_OBJECT = 1,
    JSON_ARRAY,
    JSON_STRING,
    JSON_NUMBER,
    JSON_TRUE,
    JSON_FALSE,
    JSON_NULL,
} json_type_t;

/* One token. Tokens are stored in document order (pre-order); an object's tokens are
 * key, value, key, value... where each key is a JSON_STRING token. */
typedef struct json_tok {
    uint32_t start;  /* byte offset of the value; for a string, the first byte after the quote */
    uint32_t end;    /* byte offset one past the value; for a string, the closing quote */
    uint32_t size;   /* object: number of members; array: number of elements; else 0 */
    uint32_t next;   /* index of the first token after this token's whole subtree */
    uint8_t type;    /* json_type_t */
    uint8_t escaped; /* string contains at least one backslash escape */
} json_tok_t;

/* Tokenizes src[0..len) as exactly one JSON value with optional surrounding whitespace.
 * Strict: no trailing commas, no comments, no leading zeros, no control characters (< 0x20) in
 * strings, only the escapes of RFC 8259, \u escapes must form valid surrogate pairs, no trailing
 * bytes after the value. It does not validate UTF-8 (the WebSocket layer already did).
 * Returns the number of tokens written to toks (>= 1), or -EINVAL (malformed), -ENOSPC (more than
 * max_toks tokens), -ELOOP (nested deeper than max_depth). Pure. */
int json_parse(const char *src, size_t len, json_tok_t *toks, uint32_t max_toks,
               uint32_t max_depth);

/* Looks up key in the object at token index obj (toks[obj].type must be JSON_OBJECT). Keys are
 * compared after unescaping, so "\u0074ype" matches "type". Returns the index of the value token,
 * or -1 when absent. When a key is repeated, the first occurrence wins. */
int json_obj_get(const char *src, const json_tok_t *toks, int obj, const char *key);

/* Returns 1 when the string token t unescapes to exactly the NUL-terminated literal lit. */
int json_str_eq(const char *src, const json_tok_t *t, const char *lit);

/* Unescapes the string token t into out (UTF-8, not NUL-terminated).
 * Returns the number of bytes written, or -ENOSPC when cap is too small. */
int json_str_unescape(const char *src, const json_tok_t *t, char *out, size_t cap);

/* Reads an integer number token. Returns 0 and sets *out; -EINVAL when t is not a number or has a
 * fraction or exponent (1.0 and 1e3 are refused: fields are counts of bytes); -ERANGE when it does
 * not fit in int64_t. */
int json_get_i64(const char *src, const json_tok_t *t, int64_t *out);

/* Reads any number token as a double (used where clients are known to send floats).
 * Returns 0, -EINVAL when t is not a number, or -ERANGE when it overflows a double or is longer
 * than 64 bytes. */
int json_get_double(const char *src, const json_tok_t *t, double *out);

#endif
