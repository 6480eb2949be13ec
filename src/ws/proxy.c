/* proxy.c: the PROXY protocol header parser (HAProxy's proxy-protocol.txt, sections 2.1 and 2.2).
 * Pure: no I/O, no allocation, no global state. Every check looks at bytes at fixed places and
 * the checks run in byte order, so a verdict reached on a prefix (anything but -EAGAIN) is the
 * verdict for every longer input too: the caller may decide as soon as it has one. */
#include "ws/proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

/* The v1 signature: the word that identifies the protocol, then exactly one space. */
#define V1_WORD "PROXY"
#define V1_WORD_BYTES (sizeof(V1_WORD) - 1)
#define V1_SIG_BYTES (V1_WORD_BYTES + 1)
/* The v2 signature; it holds a NUL, so it is never handled as a string. */
#define V2_SIG_BYTES 12
static const uint8_t v2_sig[V2_SIG_BYTES] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                             0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
/* The only version the v2 signature may be followed by (high nibble of byte 13). */
#define V2_VERSION 0x2
/* Commands (low nibble of byte 13). */
#define V2_CMD_LOCAL 0x0
#define V2_CMD_PROXY 0x1
/* Address families (high nibble of byte 14) and transports (low nibble). */
#define V2_AF_UNSPEC 0x0
#define V2_AF_INET 0x1
#define V2_AF_INET6 0x2
#define V2_AF_UNIX 0x3
#define V2_TRANSPORT_UNSPEC 0x0
#define V2_TRANSPORT_STREAM 0x1
#define V2_TRANSPORT_DGRAM 0x2
/* Bytes of the address block each family needs: two addresses and, for IP, two ports. */
#define V2_INET_ADDR_BYTES 12
#define V2_INET6_ADDR_BYTES 36
#define V2_UNIX_ADDR_BYTES 216
/* Longest textual IPv4 and IPv6 addresses we accept in a v1 line, in characters. The IPv6
 * bound is INET6_ADDRSTRLEN without its NUL, which covers the IPv4-mapped dotted form. */
#define V1_INET_ADDR_CHARS 15
#define V1_INET6_ADDR_CHARS 45
/* Longest port in a v1 line, in digits ("65535"), and the largest port value. */
#define V1_PORT_DIGITS 5
#define PORT_MAX 65535

/* Returns 1 when c is an ASCII decimal digit. */
static int is_digit(uint8_t c) {
    return c >= '0' && c <= '9';
}

/* Parses a decimal number of at most max_digits digits without leading zeros ("0" itself is
 * fine), as the specification asks for v1 ports and IPv4 parts so that nothing can be read as
 * octal. Returns the value, or -1. */
static long decimal(const uint8_t *p, size_t n, size_t max_digits) {
    long v = 0;

    if (n == 0 || n > max_digits || (n > 1 && p[0] == '0')) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(p[i])) {
            return -1;
        }
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

/* Parses a dotted-quad IPv4 address (exactly four parts 0-255, no leading zeros) into the last
 * four bytes of an IPv4-mapped IPv6 address. Returns 0 or -EINVAL. */
static int parse_inet(const uint8_t *p, size_t n, uint8_t out[16]) {
    size_t start = 0;
    int part = 0;

    if (n > V1_INET_ADDR_CHARS) {
        return -EINVAL;
    }
    memset(out, 0, 16);
    out[10] = 0xff;
    out[11] = 0xff;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && p[i] != '.') {
            continue;
        }
        long v = decimal(p + start, i - start, 3);
        if (v < 0 || v > 255 || part == 4) {
            return -EINVAL;
        }
        out[12 + part++] = (uint8_t)v;
        start = i + 1;
    }
    return part == 4 ? 0 : -EINVAL;
}

/* Parses an IPv6 address in any form inet_pton takes (groups of 1-4 hex digits, one "::", an
 * IPv4 tail) into out. Only hex digits, colons and dots reach inet_pton. Returns 0 or -EINVAL. */
static int parse_inet6(const uint8_t *p, size_t n, uint8_t out[16]) {
    char tmp[V1_INET6_ADDR_CHARS + 1];

    if (n == 0 || n > V1_INET6_ADDR_CHARS) {
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (!is_digit(c) && !(c >= 'a' && c <= 'f') && !(c >= 'A' && c <= 'F') && c != ':' &&
            c != '.') {
            return -EINVAL;
        }
    }
    memcpy(tmp, p, n);
    tmp[n] = '\0';
    return inet_pton(AF_INET6, tmp, out) == 1 ? 0 : -EINVAL;
}

/* Splits the next field off line[*pos..end): the bytes up to the next space (or the end when
 * last is set, where no space may follow). Returns 0 with the field in [*f, *f + *fn) and *pos
 * past its separator, or -EINVAL for an empty field or a missing or extra space. */
static int field(const uint8_t *line, size_t end, size_t *pos, int last, const uint8_t **f,
                 size_t *fn) {
    size_t i = *pos;

    while (i < end && line[i] != ' ') {
        i++;
    }
    if (i == *pos || (last ? i != end : i == end)) {
        return -EINVAL;
    }
    *f = line + *pos;
    *fn = i - *pos;
    *pos = last ? i : i + 1;
    return 0;
}

/* Parses a complete v1 line p[0..lf] (lf indexes its LF). Returns 0 or -EINVAL. */
static int v1_line(const uint8_t *p, size_t lf, proxy_header_t *out) {
    static const char tcp4[] = "TCP4 ", tcp6[] = "TCP6 ", unknown[] = "UNKNOWN";
    const size_t end = lf - 1; /* the CR */
    size_t pos = V1_SIG_BYTES;
    uint8_t dst[16];
    const uint8_t *f;
    size_t fn;
    int six;

    /* A lone LF does not end the line, and no CR may appear but the one before it. */
    if (lf < V1_SIG_BYTES + 1 || p[end] != '\r' || memchr(p, '\r', end) != NULL) {
        return -EINVAL;
    }
    out->version = 1;
    out->len = lf + 1;
    if (end - pos >= sizeof(unknown) - 1 && memcmp(p + pos, unknown, sizeof(unknown) - 1) == 0 &&
        (end - pos == sizeof(unknown) - 1 || p[pos + sizeof(unknown) - 1] == ' ')) {
        /* The receiver must ignore whatever follows UNKNOWN before the CRLF. */
        out->family = PROXY_FAMILY_KEEP;
        return 0;
    }
    if (end - pos >= sizeof(tcp4) - 1 && memcmp(p + pos, tcp4, sizeof(tcp4) - 1) == 0) {
        six = 0;
    } else if (end - pos >= sizeof(tcp6) - 1 && memcmp(p + pos, tcp6, sizeof(tcp6) - 1) == 0) {
        six = 1;
    } else {
        return -EINVAL;
    }
    pos += sizeof(tcp4) - 1;
    if (field(p, end, &pos, 0, &f, &fn) != 0 ||
        (six ? parse_inet6(f, fn, out->addr) : parse_inet(f, fn, out->addr)) != 0) {
        return -EINVAL;
    }
    /* The destination must be of the same family; it is checked, not kept. */
    if (field(p, end, &pos, 0, &f, &fn) != 0 ||
        (six ? parse_inet6(f, fn, dst) : parse_inet(f, fn, dst)) != 0) {
        return -EINVAL;
    }
    if (field(p, end, &pos, 0, &f, &fn) != 0) {
        return -EINVAL;
    }
    long sport = decimal(f, fn, V1_PORT_DIGITS);
    if (sport < 0 || sport > PORT_MAX || field(p, end, &pos, 1, &f, &fn) != 0) {
        return -EINVAL;
    }
    long dport = decimal(f, fn, V1_PORT_DIGITS);
    if (dport < 0 || dport > PORT_MAX) {
        return -EINVAL;
    }
    out->family = six ? PROXY_FAMILY_INET6 : PROXY_FAMILY_INET;
    out->port = (uint16_t)sport;
    return 0;
}

/* Parses a v1 header whose first V1_WORD_BYTES bytes are "PROXY". */
static int v1(const uint8_t *p, size_t n, proxy_header_t *out) {
    const size_t window = n < PROXY_V1_MAX_BYTES ? n : PROXY_V1_MAX_BYTES;
    const uint8_t *lf;

    if (n == V1_WORD_BYTES) {
        return -EAGAIN;
    }
    if (p[V1_WORD_BYTES] != ' ') {
        return -EINVAL;
    }
    /* The specification asks to wait for the CRLF before decoding anything. */
    lf = memchr(p, '\n', window);
    if (lf == NULL) {
        return n >= PROXY_V1_MAX_BYTES ? -EMSGSIZE : -EAGAIN;
    }
    return v1_line(p, (size_t)(lf - p), out);
}

/* Parses a v2 header whose first byte is the signature's CR. */
static int v2(const uint8_t *p, size_t n, proxy_header_t *out) {
    size_t i;
    uint8_t cmd, fam, transport;
    size_t len, need = 0;

    for (i = 1; i < V2_SIG_BYTES; i++) {
        if (i == n) {
            return -EAGAIN;
        }
        if (p[i] != v2_sig[i]) {
            return -EINVAL;
        }
    }
    if (n == V2_SIG_BYTES) {
        return -EAGAIN;
    }
    if (p[12] >> 4 != V2_VERSION) {
        return -EPROTONOSUPPORT;
    }
    cmd = p[12] & 0x0f;
    if (cmd != V2_CMD_LOCAL && cmd != V2_CMD_PROXY) {
        return -EINVAL;
    }
    if (n == 13) {
        return -EAGAIN;
    }
    fam = p[13] >> 4;
    transport = p[13] & 0x0f;
    /* LOCAL discards the protocol block, family included: it is not checked. */
    if (cmd == V2_CMD_PROXY && (fam > V2_AF_UNIX || transport > V2_TRANSPORT_DGRAM)) {
        return -EINVAL;
    }
    if (n < PROXY_V2_FIXED_BYTES) {
        return -EAGAIN;
    }
    len = (size_t)p[14] << 8 | p[15];
    if (len > PROXY_V2_MAX_LEN) {
        return -EMSGSIZE;
    }
    if (cmd == V2_CMD_PROXY && transport != V2_TRANSPORT_UNSPEC) {
        need = fam == V2_AF_INET    ? V2_INET_ADDR_BYTES
               : fam == V2_AF_INET6 ? V2_INET6_ADDR_BYTES
               : fam == V2_AF_UNIX  ? V2_UNIX_ADDR_BYTES
                                    : 0;
    }
    if (len < need) {
        return -EINVAL;
    }
    if (n < PROXY_V2_FIXED_BYTES + len) {
        return -EAGAIN;
    }
    memset(out, 0, sizeof(*out));
    out->version = 2;
    out->len = PROXY_V2_FIXED_BYTES + len;
    out->local = cmd == V2_CMD_LOCAL;
    out->family = PROXY_FAMILY_KEEP;
    if (cmd != V2_CMD_PROXY || transport != V2_TRANSPORT_STREAM) {
        /* LOCAL, or a transport we do not take (unspecified, UDP): the specification's
         * fallback is the connection's own address. */
        return 0;
    }
    if (fam == V2_AF_INET) {
        out->family = PROXY_FAMILY_INET;
        out->addr[10] = 0xff;
        out->addr[11] = 0xff;
        memcpy(out->addr + 12, p + PROXY_V2_FIXED_BYTES, 4);
        out->port = (uint16_t)(p[PROXY_V2_FIXED_BYTES + 8] << 8 | p[PROXY_V2_FIXED_BYTES + 9]);
    } else if (fam == V2_AF_INET6) {
        out->family = PROXY_FAMILY_INET6;
        memcpy(out->addr, p + PROXY_V2_FIXED_BYTES, 16);
        out->port = (uint16_t)(p[PROXY_V2_FIXED_BYTES + 32] << 8 | p[PROXY_V2_FIXED_BYTES + 33]);
    }
    /* UNIX and unspecified families keep the connection's address; TLVs after the addresses
     * are skipped. */
    return 0;
}

int proxy_parse(const uint8_t *p, size_t n, proxy_header_t *out) {
    size_t i;

    memset(out, 0, sizeof(*out));
    if (n == 0) {
        return -EAGAIN;
    }
    if (p[0] == v2_sig[0]) {
        return v2(p, n, out);
    }
    for (i = 0; i < V1_WORD_BYTES; i++) {
        if (i == n) {
            return -EAGAIN;
        }
        if (p[i] != (uint8_t)V1_WORD[i]) {
            return -ENOMSG;
        }
    }
    return v1(p, n, out);
}

int proxy_has_signature(const uint8_t *p, size_t n) {
    return (n >= V1_SIG_BYTES && memcmp(p, V1_WORD " ", V1_SIG_BYTES) == 0) ||
           (n >= V2_SIG_BYTES && memcmp(p, v2_sig, V2_SIG_BYTES) == 0);
}
