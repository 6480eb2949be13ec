/* http.c: a strict HTTP/1.x request-head parser (RFC 9112) and the RFC 6455 opening-handshake
 * checks built on it. Pure: no I/O, no allocation, no global state. */
#include "ws/http.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

/* Length of a Sec-WebSocket-Key in characters: base64 of a 16-byte nonce (RFC 6455 4.1). */
#define WS_KEY_CHARS 24
/* Base64 characters of the key that carry data; the last two are "==" padding. */
#define WS_KEY_DATA_CHARS 22
/* The GUID that RFC 6455 section 1.3 appends to the key before hashing. */
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
/* Length of the GUID in bytes, without the NUL. */
#define WS_GUID_BYTES (sizeof(WS_GUID) - 1)
/* The only protocol version RFC 6455 defines, as sent in Sec-WebSocket-Version. */
#define WS_VERSION "13"
/* Status answered to a malformed handshake. */
#define HTTP_STATUS_BAD_REQUEST 400
/* Status answered when the client asks for a WebSocket version we do not speak. */
#define HTTP_STATUS_UPGRADE_REQUIRED 426

/* Returns 1 for the characters RFC 9110 section 5.6.2 allows in a token (method, header name). */
static int is_tchar(unsigned char c) {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
        return 1;
    }
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Returns 1 for a visible ASCII character, the only kind we accept in a request target. Bytes
 * above 0x7E must be percent-encoded there (RFC 3986), so refusing them costs no real client. */
static int is_vchar(unsigned char c) {
    return c >= 0x21 && c <= 0x7E;
}

/* Returns 1 for a character allowed inside a field value: VCHAR, SP, HTAB and obs-text (RFC 9110
 * section 5.5). obs-text is kept because some clients still send Latin-1 or UTF-8 in values. */
static int is_field_char(unsigned char c) {
    return c == '\t' || (c >= 0x20 && c != 0x7F);
}

/* Returns 1 for optional whitespace (OWS), which surrounds field values and list elements. */
static int is_ows(char c) {
    return c == ' ' || c == '\t';
}

/* Returns the ASCII lower-case form of c; locale-independent, unlike tolower(). */
static unsigned char lower(unsigned char c) {
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* Returns 1 when p[0..n) equals the lower-case literal lit, ignoring ASCII case. */
static int ieq(const char *p, size_t n, const char *lit) {
    size_t i;

    if (p == NULL || strlen(lit) != n) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        if (lower((unsigned char)p[i]) != (unsigned char)lit[i]) {
            return 0;
        }
    }
    return 1;
}

/* Returns p[0..n) without its leading and trailing optional whitespace. */
static str_t trim(const char *p, size_t n) {
    while (n > 0 && is_ows(p[0])) {
        p++;
        n--;
    }
    while (n > 0 && is_ows(p[n - 1])) {
        n--;
    }
    return (str_t){p, n};
}

/* Returns 1 when the comma-separated list v contains the token "upgrade" in any case. Empty list
 * elements are allowed and skipped, as RFC 9110 section 5.6.1 asks of recipients. */
static int list_has_upgrade(str_t v) {
    size_t start = 0;

    while (start <= v.len) {
        const char *comma = memchr(v.p + start, ',', v.len - start);
        size_t end = comma != NULL ? (size_t)(comma - v.p) : v.len;
        str_t elem = trim(v.p + start, end - start);

        if (ieq(elem.p, elem.len, "upgrade")) {
            return 1;
        }
        start = end + 1;
    }
    return 0;
}

/* Checks the request line line[0..n) (without its CR LF) and fills method, target, path and
 * version_minor. When complete is 0 the line has not fully arrived: running out of bytes is then
 * fine, and only a byte that can never be valid is an error. Returns 0 or -EINVAL. */
static int request_line(const char *line, size_t n, int complete, http_request_t *req) {
    static const char proto[] = "HTTP/1.";
    const int short_rc = complete ? -EINVAL : 0;
    size_t i = 0;
    size_t start;
    size_t k;
    const char *query;

    while (i < n && is_tchar((unsigned char)line[i])) {
        i++;
    }
    if (i == n) {
        return short_rc;
    }
    if (i == 0 || line[i] != ' ') {
        return -EINVAL;
    }
    req->method = (str_t){line, i};

    start = ++i;
    while (i < n && is_vchar((unsigned char)line[i])) {
        i++;
    }
    if (i == n) {
        return short_rc;
    }
    if (i == start || line[i] != ' ') {
        return -EINVAL;
    }
    req->target = (str_t){line + start, i - start};
    query = memchr(req->target.p, '?', req->target.len);
    req->path =
        (str_t){req->target.p, query != NULL ? (size_t)(query - req->target.p) : req->target.len};

    i++;
    for (k = 0; k < sizeof(proto) - 1; k++, i++) {
        if (i == n) {
            return short_rc;
        }
        if (line[i] != proto[k]) {
            return -EINVAL;
        }
    }
    if (i == n) {
        return short_rc;
    }
    if (line[i] < '0' || line[i] > '9') {
        return -EINVAL;
    }
    req->version_minor = line[i] - '0';
    /* The version is the last thing on the line: anything after it, even a space, is refused. */
    return i + 1 == n ? 0 : -EINVAL;
}

/* Stores a complete header field in req when it is one the server uses. The first occurrence of
 * each wins, except Connection, whose every occurrence is searched for "upgrade". */
static void store_header(const char *name, size_t name_len, str_t value, http_request_t *req) {
    str_t *slot = NULL;

    if (ieq(name, name_len, "connection")) {
        if (list_has_upgrade(value)) {
            req->conn_upgrade = 1;
        }
        return;
    }
    if (ieq(name, name_len, "host")) {
        req->host_count++;
        slot = &req->host;
    } else if (ieq(name, name_len, "upgrade")) {
        slot = &req->upgrade;
    } else if (ieq(name, name_len, "sec-websocket-key")) {
        slot = &req->ws_key;
    } else if (ieq(name, name_len, "sec-websocket-version")) {
        slot = &req->ws_version;
    } else if (ieq(name, name_len, "origin")) {
        slot = &req->origin;
    } else if (ieq(name, name_len, "x-forwarded-for")) {
        /* The last line wins: a proxy that adds its own X-Forwarded-For line (rather than
         * appending to the client's) puts it last, and only what the proxy wrote is trusted. */
        req->forwarded_for = value;
        return;
    }
    if (slot != NULL && slot->p == NULL) {
        *slot = value;
    }
}

/* Checks the header line line[0..n) (without its CR LF) and, when complete, stores it. A line
 * that starts with whitespace is obsolete line folding (RFC 9112 section 5.2) and whitespace
 * before the colon is forbidden (section 5.1): both are refused. Returns 0 or -EINVAL. */
static int header_line(const char *line, size_t n, int complete, http_request_t *req) {
    size_t i = 0;
    size_t j;

    while (i < n && is_tchar((unsigned char)line[i])) {
        i++;
    }
    if (i == n) {
        return complete ? -EINVAL : 0;
    }
    if (i == 0 || line[i] != ':') {
        return -EINVAL;
    }
    for (j = i + 1; j < n; j++) {
        if (!is_field_char((unsigned char)line[j])) {
            return -EINVAL;
        }
    }
    if (complete) {
        store_header(line, i, trim(line + i + 1, n - i - 1), req);
    }
    return 0;
}

int http_request_parse(const char *buf, size_t len, size_t max_head, http_request_t *req) {
    /* Bytes past max_head can never belong to an acceptable head, so they are not even looked at:
     * this keeps the cost of a slowloris client that trickles a huge head bounded. */
    const size_t window = len < max_head ? len : max_head;
    size_t pos = 0;
    size_t headers = 0;
    int first = 1;

    memset(req, 0, sizeof(*req));
    if (window == 0) {
        /* Nothing to look at (and buf may be NULL): the request line has not started. */
        return len >= max_head ? -EMSGSIZE : -EAGAIN;
    }
    for (;;) {
        const char *line = buf + pos;
        const char *lf = pos < window ? memchr(line, '\n', window - pos) : NULL;
        const int complete = lf != NULL;
        const size_t end = complete ? (size_t)(lf - buf) : window;
        size_t n = end - pos;
        int rc;

        /* A CR is only allowed right before the LF. On a line that has not fully arrived, a CR
         * as the last byte may still be followed by its LF, so it is set aside too; any other CR
         * then fails the character checks below. */
        if (n > 0 && line[n - 1] == '\r') {
            n--;
        }
        if (first) {
            rc = request_line(line, n, complete, req);
            first = 0;
        } else if (complete && n == 0) {
            req->head_len = end + 1;
            return 0;
        } else if (n > 0 && headers == HTTP_MAX_HEADERS) {
            return -EMSGSIZE;
        } else {
            rc = header_line(line, n, complete, req);
            headers++;
        }
        if (rc != 0) {
            return rc;
        }
        if (!complete) {
            /* All of the window is valid but the head has not ended: when the window was cut at
             * max_head, the head is too long; otherwise the rest has yet to arrive. */
            return len >= max_head ? -EMSGSIZE : -EAGAIN;
        }
        pos = end + 1;
    }
}

/* Returns the 6-bit value of a character of the standard base64 alphabet, or -1. */
static int b64_value(unsigned char c) {
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '+') {
        return 62;
    }
    if (c == '/') {
        return 63;
    }
    return -1;
}

/* Returns 1 when key is the canonical base64 encoding of 16 bytes: 22 alphabet characters and
 * "==". The 22 characters carry 132 bits of which only 128 are data, so the low 4 bits of the
 * last one must be zero; a key that breaks this was not made by a base64 encoder. */
static int ws_key_valid(str_t key) {
    size_t i;

    if (key.p == NULL || key.len != WS_KEY_CHARS) {
        return 0;
    }
    for (i = 0; i < WS_KEY_DATA_CHARS; i++) {
        if (b64_value((unsigned char)key.p[i]) < 0) {
            return 0;
        }
    }
    if (key.p[WS_KEY_DATA_CHARS] != '=' || key.p[WS_KEY_DATA_CHARS + 1] != '=') {
        return 0;
    }
    return (b64_value((unsigned char)key.p[WS_KEY_DATA_CHARS - 1]) & 0x0F) == 0;
}

/* Returns 1 for a character that may appear in Host: the reg-name, IP-literal and port characters
 * of RFC 3986 section 3.2.2 (unreserved, sub-delims, '%' of pct-encoding, ':', '[' and ']'). */
static int is_host_char(unsigned char c) {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
        return 1;
    }
    return c != '\0' && strchr("-._~!$&'()*+,;=%:[]", c) != NULL;
}

int http_host_check(const http_request_t *req) {
    size_t i;

    /* Two Host lines could name two different hosts, and a proxy in front of us might route by
     * one while we read the other; refusing both is what RFC 9112 section 3.2 asks. */
    if (req->host_count > 1 || (req->host_count == 0 && req->version_minor >= 1)) {
        return HTTP_STATUS_BAD_REQUEST;
    }
    for (i = 0; i < req->host.len; i++) {
        if (!is_host_char((unsigned char)req->host.p[i])) {
            return HTTP_STATUS_BAD_REQUEST;
        }
    }
    return 0;
}

int http_upgrade_check(const http_request_t *req) {
    /* First: is this a WebSocket handshake at all? If not, the version header is irrelevant. RFC
     * 6455 section 4.2.1 asks for HTTP/1.1 "or higher", hence >= 1. */
    if (!str_eq(req->method, "GET") || req->version_minor < 1 || !req->conn_upgrade ||
        !ieq(req->upgrade.p, req->upgrade.len, "websocket")) {
        return HTTP_STATUS_BAD_REQUEST;
    }
    /* Then the version, before the key, so that a client speaking another version learns which
     * one we want (section 4.4) instead of getting a bare 400 for a key it may encode differently.
     */
    if (!str_eq(req->ws_version, WS_VERSION)) {
        return HTTP_STATUS_UPGRADE_REQUIRED;
    }
    if (!ws_key_valid(req->ws_key)) {
        return HTTP_STATUS_BAD_REQUEST;
    }
    return 0;
}

int http_ws_accept(const char *key, size_t key_len, char out[29]) {
    unsigned char in[WS_KEY_CHARS + WS_GUID_BYTES];
    unsigned char digest[SHA_DIGEST_LENGTH];

    if (key_len != WS_KEY_CHARS) {
        return -EINVAL;
    }
    memcpy(in, key, WS_KEY_CHARS);
    memcpy(in + WS_KEY_CHARS, WS_GUID, WS_GUID_BYTES);
    SHA1(in, sizeof(in), digest);
    /* EVP_EncodeBlock writes 4 * ceil(20 / 3) = 28 characters and a NUL, exactly out's size. */
    EVP_EncodeBlock((unsigned char *)out, digest, SHA_DIGEST_LENGTH);
    return 0;
}
