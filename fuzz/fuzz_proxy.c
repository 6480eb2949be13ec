/* fuzz_proxy.c: libFuzzer driver for the PROXY protocol header parser (src/ws/proxy.c). It parses
 * the input and aborts when an invariant breaks: a result outside the documented set, a header
 * longer than the input or the caps, a v1 header that does not end with its CRLF or whose
 * address and port do not print back to the text they came from, a v2 header whose length or
 * address is not the one in its bytes, a verdict on a prefix that a longer input changes, or
 * the signature check disagreeing with the parser. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ws/proxy.h"

/* Bytes of the fixed v2 prefixes checked as split points of a v2 header. */
#define FIXED_SPLITS 17

/* Aborts with a message when cond is false, so that libFuzzer records the input. */
static void require(int cond, const char *what) {
    if (!cond) {
        fprintf(stderr, "fuzz_proxy: invariant broken: %s\n", what);
        abort();
    }
}

/* Returns 1 when a and b are the same verdict with the same header. */
static int same(int ra, const proxy_header_t *a, int rb, const proxy_header_t *b) {
    return ra == rb && (ra != 0 || memcmp(a, b, sizeof(*a)) == 0);
}

/* Returns the n-th space-separated field of the v1 line p (n counts from 0 after "PROXY"). */
static const uint8_t *v1_field(const uint8_t *p, size_t len, int n, size_t *flen) {
    size_t i = 6, start;
    for (int k = 0;; k++) {
        start = i;
        while (i < len && p[i] != ' ' && p[i] != '\r')
            i++;
        if (k == n) {
            *flen = i - start;
            return p + start;
        }
        require(i < len && p[i] == ' ', "v1 fields separated by single spaces");
        i++;
    }
}

/* Checks a v1 header h parsed from p. */
static void check_v1(const uint8_t *p, const proxy_header_t *h) {
    size_t n;
    require(h->len >= 15 && h->len <= PROXY_V1_MAX_BYTES, "v1 length");
    require(memcmp(p, "PROXY ", 6) == 0, "v1 signature");
    require(p[h->len - 2] == '\r' && p[h->len - 1] == '\n', "v1 ends with CRLF");
    require(memchr(p, '\n', h->len - 1) == NULL, "v1 has one LF");
    require(memchr(p, '\r', h->len - 2) == NULL, "v1 has one CR");
    require(h->local == 0, "v1 is never LOCAL");
    const uint8_t *proto = v1_field(p, h->len, 0, &n);
    if (h->family == PROXY_FAMILY_KEEP) {
        require(n == 7 && memcmp(proto, "UNKNOWN", 7) == 0, "v1 keeps the address for UNKNOWN");
        return;
    }
    require(n == 4 && memcmp(proto, h->family == PROXY_FAMILY_INET ? "TCP4" : "TCP6", 4) == 0,
            "v1 family is the protocol's");
    /* The source address and port print back to their text: canonical forms only. */
    char text[INET6_ADDRSTRLEN + 1], port[8];
    const uint8_t *src = v1_field(p, h->len, 1, &n);
    if (h->family == PROXY_FAMILY_INET) {
        static const uint8_t v4map[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        require(memcmp(h->addr, v4map, 12) == 0, "v1 IPv4 is mapped");
        require(inet_ntop(AF_INET, h->addr + 12, text, sizeof(text)) != NULL, "inet_ntop");
        require(strlen(text) == n && memcmp(text, src, n) == 0, "v1 IPv4 address round trip");
    } else {
        uint8_t again[16];
        require(n < sizeof(text), "v1 IPv6 address length");
        memcpy(text, src, n);
        text[n] = '\0';
        require(inet_pton(AF_INET6, text, again) == 1 && memcmp(again, h->addr, 16) == 0,
                "v1 IPv6 address round trip");
    }
    const uint8_t *sport = v1_field(p, h->len, 3, &n);
    snprintf(port, sizeof(port), "%u", h->port);
    require(strlen(port) == n && memcmp(port, sport, n) == 0, "v1 port round trip");
}

/* Checks a v2 header h parsed from p. */
static void check_v2(const uint8_t *p, const proxy_header_t *h) {
    static const uint8_t sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                    0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
    require(memcmp(p, sig, 12) == 0, "v2 signature");
    require(p[12] >> 4 == 2, "v2 version");
    require(h->len == PROXY_V2_FIXED_BYTES + ((size_t)p[14] << 8 | p[15]), "v2 length field");
    require(h->local == ((p[12] & 0x0f) == 0), "v2 LOCAL");
    if (h->family == PROXY_FAMILY_INET) {
        require(p[13] == 0x11 && h->len >= 28, "v2 TCP4");
        require(memcmp(h->addr + 12, p + 16, 4) == 0, "v2 IPv4 source");
        require(h->port == (p[24] << 8 | p[25]), "v2 IPv4 source port");
    } else if (h->family == PROXY_FAMILY_INET6) {
        require(p[13] == 0x21 && h->len >= 52, "v2 TCP6");
        require(memcmp(h->addr, p + 16, 16) == 0, "v2 IPv6 source");
        require(h->port == (p[48] << 8 | p[49]), "v2 IPv6 source port");
    } else {
        require(h->local || (p[13] != 0x11 && p[13] != 0x21), "v2 keeps the address only when "
                                                              "there is no TCP address");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    proxy_header_t h, again;
    int rc = proxy_parse(data, size, &h);

    require(rc == 0 || rc == -EAGAIN || rc == -ENOMSG || rc == -EINVAL || rc == -EMSGSIZE ||
                rc == -EPROTONOSUPPORT,
            "result code");
    /* The parser decides within its caps: it never asks for more than a header can hold. */
    if (rc == -EAGAIN)
        require(size < (size > 0 && data[0] == 'P' ? PROXY_V1_MAX_BYTES : PROXY_MAX_HEADER_BYTES),
                "-EAGAIN only below the cap");
    if (proxy_has_signature(data, size))
        require(rc != -ENOMSG, "a signature is a header");
    if (rc == -ENOMSG)
        require(size > 0 && data[0] != '\r', "no header never starts with CR");
    /* A verdict on a prefix holds for the whole input. */
    if (size > 0) {
        int rp = proxy_parse(data, size - 1, &again);
        if (rp != -EAGAIN)
            require(same(rp, &again, rc, &h), "the verdict on a prefix stands");
    }
    if (rc != 0)
        return 0;
    require(h.len > 0 && h.len <= size && h.len <= PROXY_MAX_HEADER_BYTES, "header length");
    require(h.family == PROXY_FAMILY_KEEP || h.family == PROXY_FAMILY_INET ||
                h.family == PROXY_FAMILY_INET6,
            "family");
    if (h.family == PROXY_FAMILY_KEEP) {
        static const uint8_t zero[16] = {0};
        require(memcmp(h.addr, zero, 16) == 0 && h.port == 0, "no address when it is kept");
    }
    require(h.version == 1 || h.version == 2, "version");
    if (h.version == 1)
        check_v1(data, &h);
    else
        check_v2(data, &h);
    /* The header alone parses the same, and any shorter prefix needs more. */
    require(proxy_parse(data, h.len, &again) == 0 && memcmp(&again, &h, sizeof(h)) == 0,
            "the header alone parses the same");
    for (size_t k = 0; k < h.len; k++) {
        if (h.version == 2 && k >= FIXED_SPLITS && k + 1 < h.len)
            continue; /* long v2 headers: the fixed part and the last byte suffice */
        require(proxy_parse(data, k, &again) == -EAGAIN, "a prefix of a header needs more");
    }
    return 0;
}
