/* proxy.h: a pure parser for the PROXY protocol header (HAProxy's proxy-protocol.txt, versions 1
 * and 2) that an L4 load balancer writes before anything else on a connection, to tell the
 * server the client's address. No I/O, no allocation: bytes in, a verdict out, so the connection
 * code can peek at a socket, ask, and consume exactly the header. */
#ifndef SIG_WS_PROXY_H
#define SIG_WS_PROXY_H

#include <stddef.h>
#include <stdint.h>

/* Longest version 1 line the specification allows, in bytes, CRLF included ("PROXY UNKNOWN"
 * with two full IPv6 addresses and ports). A line without its CRLF within this many bytes is
 * refused. */
#define PROXY_V1_MAX_BYTES 107
/* The fixed part of a version 2 header, in bytes: signature, version and command, family and
 * transport, and the 16-bit length of what follows. */
#define PROXY_V2_FIXED_BYTES 16
/* Largest version 2 length field we accept, in bytes (addresses and TLVs after the fixed part).
 * The largest address block (two UNIX paths, 216 bytes) plus every TLV HAProxy and the cloud
 * load balancers send (SSL details with a client certificate's CN, a unique ID of up to 128
 * bytes, the SNI authority of up to 255, ALPN, a VPC endpoint ID) stays near 1 KiB; the cap
 * leaves room for that and bounds what a trickled header can make us wait for. */
#define PROXY_V2_MAX_LEN 2048
/* Longest header of either version, in bytes: how far the connection code peeks. */
#define PROXY_MAX_HEADER_BYTES (PROXY_V2_FIXED_BYTES + PROXY_V2_MAX_LEN)

/* A parsed header. addr is meaningful only when family is PROXY_FAMILY_INET or _INET6. */
typedef struct proxy_header {
    size_t len;      /* bytes of the whole header (the CRLF of v1, the TLVs of v2 included) */
    uint8_t version; /* 1 or 2 */
    uint8_t family;  /* enum proxy_family */
    uint8_t local;   /* 1 for a v2 LOCAL command: the proxy's own connection (a health check) */
    uint8_t
        addr[16];  /* the client's (source) address: IPv6, or IPv4-mapped IPv6 (::ffff:a.b.c.d) */
    uint16_t port; /* the client's (source) port */
} proxy_header_t;

enum proxy_family {
    /* No client address to take: v1 UNKNOWN, v2 LOCAL, and v2 PROXY for the families and
     * transports we do not take (unspecified, UNIX sockets, UDP). The specification asks a
     * receiver to fall back to the connection's own address then. */
    PROXY_FAMILY_KEEP = 0,
    PROXY_FAMILY_INET = 4,  /* TCP over IPv4 */
    PROXY_FAMILY_INET6 = 6, /* TCP over IPv6 */
};

/* Parses the PROXY header at the start of p[0..n).
 * Returns 0 when a complete, valid header was parsed (out filled; out->len bytes belong to it and
 * the next byte is the first of the proxied stream);
 * -EAGAIN when every byte so far fits a header that has not ended (more are needed);
 * -ENOMSG when the bytes do not start a PROXY header at all: they differ from "PROXY" within its
 * five letters (no HTTP method starts so; PROPFIND and POST begin alike) and do not begin with
 * the CR that opens the version 2 signature (no HTTP request or TLS record starts with CR);
 * -EINVAL for a malformed header: a signature broken after it was recognised, a v1 line that is
 * not exactly "PROXY TCP4|TCP6|UNKNOWN ..." with single spaces, canonical addresses, ports
 * 0-65535 without leading zeros and a CRLF end, or a v2 header with an unknown command, family
 * or transport, or an address block shorter than its family needs;
 * -EMSGSIZE for a v1 line without CRLF within PROXY_V1_MAX_BYTES, or a v2 length field above
 * PROXY_V2_MAX_LEN;
 * -EPROTONOSUPPORT for a v2 signature followed by a version other than 2.
 * The verdict for a prefix that is not -EAGAIN stays the same for any longer input. TLVs of v2
 * are skipped unread. Pure: may be called from any thread. */
int proxy_parse(const uint8_t *p, size_t n, proxy_header_t *out);

/* Returns 1 when p[0..n) begins with a whole PROXY signature: "PROXY " (v1) or the 12-byte v2
 * signature; else 0. Used to recognise a header sent where none is accepted. Pure. */
int proxy_has_signature(const uint8_t *p, size_t n);

#endif
