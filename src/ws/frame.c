/* frame.c: the RFC 6455 section 5 frame codec: client frame headers with every protocol check,
 * unmasking, server frame headers, and close payloads. Pure: no I/O, no allocation. */
#include "ws/frame.h"

#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "ws/utf8.h"

/* Bits of the first header byte. */
#define FIN_BIT 0x80
#define RSV_BITS 0x70
#define OPCODE_BITS 0x0F
/* Opcodes with this bit set are control frames (RFC 6455 section 5.5). */
#define CONTROL_BIT 0x08
/* Bits of the second header byte. */
#define MASK_BIT 0x80
#define LEN7_BITS 0x7F
/* 7-bit length values that announce a 16-bit or a 64-bit extended length. */
#define LEN7_EXT16 126
#define LEN7_EXT64 127
/* Sizes, in bytes, of the header parts. */
#define BASE_HEADER_BYTES 2
#define EXT16_BYTES 2
#define EXT64_BYTES 8
#define MASK_BYTES 4
/* Largest payload a 16-bit extended length is used for, in bytes. */
#define EXT16_MAX 0xFFFF
/* Bytes unmasked at once by the fast path of ws_unmask. */
#define UNMASK_WORD_BYTES 8
/* Close code reported for an empty close payload ("no status received", section 7.1.5). */
#define CLOSE_NO_STATUS 1005
/* Bytes of the status code at the start of a close payload. */
#define CLOSE_CODE_BYTES 2

/* Returns 1 for the opcodes RFC 6455 defines; the others are reserved and must fail the
 * connection because we negotiate no extension that would give them a meaning. */
static int opcode_known(unsigned op) {
    return op == WS_OP_CONT || op == WS_OP_TEXT || op == WS_OP_BINARY || op == WS_OP_CLOSE ||
           op == WS_OP_PING || op == WS_OP_PONG;
}

int ws_frame_parse(const uint8_t *buf, size_t len, uint64_t max_payload, ws_frame_t *f) {
    unsigned b0;
    unsigned b1;
    unsigned len7;
    size_t ext_bytes;
    size_t header_len;
    uint64_t payload_len;
    size_t i;

    /* Each check runs as soon as its bytes have arrived, so that a bad frame is refused without
     * waiting for a header it may never complete. */
    if (len < 1) {
        return 0;
    }
    b0 = buf[0];
    if ((b0 & RSV_BITS) != 0 || !opcode_known(b0 & OPCODE_BITS)) {
        return -WS_CLOSE_PROTOCOL;
    }
    if ((b0 & CONTROL_BIT) != 0 && (b0 & FIN_BIT) == 0) {
        return -WS_CLOSE_PROTOCOL;
    }
    if (len < BASE_HEADER_BYTES) {
        return 0;
    }
    b1 = buf[1];
    len7 = b1 & LEN7_BITS;
    if ((b1 & MASK_BIT) == 0) {
        return -WS_CLOSE_PROTOCOL;
    }
    if ((b0 & CONTROL_BIT) != 0 && len7 > WS_MAX_CONTROL_PAYLOAD) {
        return -WS_CLOSE_PROTOCOL;
    }

    ext_bytes = len7 == LEN7_EXT16 ? EXT16_BYTES : len7 == LEN7_EXT64 ? EXT64_BYTES : 0;
    if (len < BASE_HEADER_BYTES + ext_bytes) {
        return 0;
    }
    payload_len = ext_bytes == 0 ? len7 : 0;
    for (i = 0; i < ext_bytes; i++) {
        payload_len = (payload_len << 8) | buf[BASE_HEADER_BYTES + i];
    }
    if ((payload_len >> 63) != 0) {
        return -WS_CLOSE_PROTOCOL;
    }
    if (payload_len > max_payload) {
        return -WS_CLOSE_TOO_BIG;
    }

    header_len = BASE_HEADER_BYTES + ext_bytes + MASK_BYTES;
    if (len < header_len) {
        return 0;
    }
    f->fin = (b0 & FIN_BIT) != 0;
    f->opcode = (uint8_t)(b0 & OPCODE_BITS);
    memcpy(f->mask, buf + BASE_HEADER_BYTES + ext_bytes, MASK_BYTES);
    f->payload_len = payload_len;
    f->header_len = header_len;
    return 1;
}

void ws_unmask(uint8_t *p, size_t n, const uint8_t mask[4], uint64_t offset) {
    uint8_t rot[UNMASK_WORD_BYTES];
    uint64_t word_mask;
    size_t i;

    /* rot[k] is the mask byte for payload byte offset + k. Because 8 is a multiple of 4, the same
     * 8 bytes apply at every multiple of 8 from p, whatever the offset. */
    for (i = 0; i < UNMASK_WORD_BYTES; i++) {
        rot[i] = mask[(offset + i) & 3];
    }
    memcpy(&word_mask, rot, sizeof(word_mask));
    i = 0;
#ifdef __SSE2__
    /* 16 bytes per step where SSE2 exists (every x86-64): offers carry kilobytes of SDP. */
    __m128i mask16 = _mm_set1_epi64x((long long)word_mask);
    for (; i + 16 <= n; i += 16) {
        __m128i *q = (__m128i *)(void *)(p + i);
        _mm_storeu_si128(q, _mm_xor_si128(_mm_loadu_si128(q), mask16));
    }
#endif
    /* memcpy keeps the loads and stores legal for any alignment of p; compilers turn each into
     * one unaligned 8-byte access. Byte order does not matter as both sides are loaded alike. */
    for (; i + UNMASK_WORD_BYTES <= n; i += UNMASK_WORD_BYTES) {
        uint64_t w;

        memcpy(&w, p + i, sizeof(w));
        w ^= word_mask;
        memcpy(p + i, &w, sizeof(w));
    }
    for (; i < n; i++) {
        p[i] ^= rot[i % UNMASK_WORD_BYTES];
    }
}

size_t ws_frame_header(uint8_t out[10], int opcode, uint64_t payload_len) {
    size_t i;

    out[0] = (uint8_t)(FIN_BIT | ((unsigned)opcode & OPCODE_BITS));
    if (payload_len <= WS_MAX_CONTROL_PAYLOAD) {
        out[1] = (uint8_t)payload_len;
        return BASE_HEADER_BYTES;
    }
    if (payload_len <= EXT16_MAX) {
        out[1] = LEN7_EXT16;
        out[2] = (uint8_t)(payload_len >> 8);
        out[3] = (uint8_t)payload_len;
        return BASE_HEADER_BYTES + EXT16_BYTES;
    }
    out[1] = LEN7_EXT64;
    for (i = 0; i < EXT64_BYTES; i++) {
        out[BASE_HEADER_BYTES + i] = (uint8_t)(payload_len >> (8 * (EXT64_BYTES - 1 - i)));
    }
    return BASE_HEADER_BYTES + EXT64_BYTES;
}

/* Returns 1 for a close code an endpoint may put on the wire: the ones RFC 6455 section 7.4.1
 * defines for that use, and the ranges reserved for libraries (3000-3999) and applications
 * (4000-4999). 1004-1006 and 1015 are reserved and must never be sent. */
static int close_code_sendable(unsigned code) {
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
           (code >= 3000 && code <= 4999);
}

int ws_close_parse(const uint8_t *p, size_t n, uint16_t *code) {
    uint16_t c;

    if (n == 0) {
        *code = CLOSE_NO_STATUS;
        return 0;
    }
    if (n < CLOSE_CODE_BYTES) {
        return -WS_CLOSE_PROTOCOL;
    }
    c = (uint16_t)((p[0] << 8) | p[1]);
    if (!close_code_sendable(c)) {
        return -WS_CLOSE_PROTOCOL;
    }
    if (!utf8_valid(p + CLOSE_CODE_BYTES, n - CLOSE_CODE_BYTES)) {
        return -WS_CLOSE_INVALID_DATA;
    }
    *code = c;
    return 0;
}
