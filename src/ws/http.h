/* http.h: a pure, strict parser for the HTTP/1.1 request head that opens every connection
 * (a WebSocket upgrade, or a plain GET of /health or /stats.json). No I/O, no allocation. */
#ifndef SIG_WS_HTTP_H
#define SIG_WS_HTTP_H

#include <stddef.h>
#include "core/str.h"

/* Largest request head we accept, in bytes (request line + headers + blank line). Browsers send
 * about 500 bytes for an upgrade; 8 KiB leaves room for big cookies yet bounds slowloris memory. */
#define HTTP_MAX_HEAD_BYTES 8192
/* Most header lines we accept in one request head. */
#define HTTP_MAX_HEADERS 64

/* The fields of a request head that the server uses. Every str_t points into the caller's buffer;
 * an absent header has p == NULL. When a header appears twice, the values are not merged: the
 * first one is kept, except Connection (all its tokens are considered for "upgrade") and
 * X-Forwarded-For (the last line is kept: it is the one a trusted proxy added). */
typedef struct http_request {
    str_t method;      /* "GET" */
    str_t target;      /* request target as sent, e.g. "/announce?x=1" */
    str_t path;        /* target without the query string, e.g. "/announce" */
    int version_minor; /* 1 for HTTP/1.1, 0 for HTTP/1.0 */
    str_t host;        /* the first Host line's value, trimmed */
    int host_count;    /* Host lines seen (RFC 9112 section 3.2: exactly one in HTTP/1.1) */
    str_t upgrade;     /* value of Upgrade, trimmed */
    str_t ws_key;      /* Sec-WebSocket-Key, trimmed */
    str_t ws_version;  /* Sec-WebSocket-Version, trimmed */
    str_t origin;
    str_t forwarded_for; /* X-Forwarded-For, trimmed, whole list as sent (its last line) */
    int conn_upgrade;    /* 1 when a Connection header lists the token "upgrade" (any case) */
    size_t head_len;     /* bytes consumed, including the final CRLF CRLF */
} http_request_t;

/* Parses the request head at the start of buf[0..len).
 * Returns 0 when a complete head was parsed (req->head_len tells how much was consumed),
 * -EAGAIN when more bytes are needed (and none of the bytes so far is invalid),
 * -EMSGSIZE when the head is longer than max_head bytes or has more than HTTP_MAX_HEADERS lines,
 * -EINVAL when the bytes are not a valid HTTP/1.x request head (bad request line, bad header
 * name or value characters, bare LF is tolerated as line end, obsolete line folding is refused).
 * Header names are matched case-insensitively. Pure: may be called from any thread. */
int http_request_parse(const char *buf, size_t len, size_t max_head, http_request_t *req);

/* Checks the Host header of a parsed request as RFC 9112 section 3.2 (RFC 7230 section 5.4)
 * asks: an HTTP/1.1 request must carry exactly one, an HTTP/1.0 request at most one, and its value
 * must be a uri-host with an optional port (letters, digits, "-._~!$&'()*+,;=%", and ':', '[',
 * ']' for a port or an IPv6 literal; empty is allowed). Returns 0 when it is acceptable, else 400,
 * the status to answer with. Pure. */
int http_host_check(const http_request_t *req);

/* Checks that a parsed request is a valid RFC 6455 opening handshake: method GET, HTTP/1.1,
 * Upgrade "websocket" (any case), Connection with "upgrade", a Sec-WebSocket-Key that is 24
 * base64 characters decoding to 16 bytes, and Sec-WebSocket-Version 13.
 * Returns 0 when valid; otherwise the HTTP status the server should answer with: 426 when the
 * version is not 13 (the answer then carries "Sec-WebSocket-Version: 13"), 400 otherwise. */
int http_upgrade_check(const http_request_t *req);

/* Computes Sec-WebSocket-Accept for a key: base64(SHA-1(key + GUID)), written as 28 characters
 * plus a NUL into out. Returns 0, or -EINVAL if key_len is not 24. */
int http_ws_accept(const char *key, size_t key_len, char out[29]);

#endif
