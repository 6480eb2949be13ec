/* frame.h: pure RFC 6455 frame codec (no I/O): client-to-server header parsing with every
 * protocol check, unmasking, server-to-client header writing, and close-payload validation. */
#ifndef SIG_WS_FRAME_H
#define SIG_WS_FRAME_H

#include <stddef.h>
#include <stdint.h>

enum ws_opcode {
    WS_OP_CONT = 0x0,
    WS_OP_TEXT = 0x1,
    WS_OP_BINARY = 0x2,
    WS_OP_CLOSE = 0x8,
    WS_OP_PING = 0x9,
    WS_OP_PONG = 0xA,
};

/* Close status codes (RFC 6455 section 7.4.1) that the server sends. */
enum ws_close_code {
    WS_CLOSE_NORMAL = 1000,
    WS_CLOSE_GOING_AWAY = 1001,
    WS_CLOSE_PROTOCOL = 1002,
    WS_CLOSE_UNSUPPORTED = 1003,
    WS_CLOSE_INVALID_DATA = 1007,
    WS_CLOSE_POLICY = 1008,
    WS_CLOSE_TOO_BIG = 1009,
    WS_CLOSE_INTERNAL = 1011,
};

/* Largest payload of a control frame, in bytes (RFC 6455 section 5.5). */
#define WS_MAX_CONTROL_PAYLOAD 125
/* Longest frame header: 2 bytes + 8-byte length + 4-byte mask. */
#define WS_MAX_HEADER_BYTES 14

/* A parsed frame header. */
typedef struct ws_frame {
    uint8_t fin;          /* 1 when this is the final fragment */
    uint8_t opcode;       /* enum ws_opcode */
    uint8_t mask[4];      /* masking key (client frames are always masked) */
    uint64_t payload_len; /* payload length in bytes */
    size_t header_len;    /* bytes of header before the payload */
} ws_frame_t;

/* Parses the header of a client-to-server frame at buf[0..len).
 * Returns 1 when the header is complete and valid (f is filled; the payload may not have arrived
 * yet), 0 when more bytes are needed, or a negative close code, -WS_CLOSE_PROTOCOL for an unmasked
 * frame, non-zero RSV bits, an unknown opcode, a fragmented or over-125-byte control frame, or a
 * 64-bit length with its top bit set; -WS_CLOSE_TOO_BIG when payload_len > max_payload.
 * Pure: may be called from any thread. */
int ws_frame_parse(const uint8_t *buf, size_t len, uint64_t max_payload, ws_frame_t *f);

/* XORs n bytes at p with the masking key, where p is at byte offset `offset` of the payload
 * (so a payload can be unmasked in pieces). Works 8 bytes at a time. */
void ws_unmask(uint8_t *p, size_t n, const uint8_t mask[4], uint64_t offset);

/* Writes an unmasked server-to-client frame header (FIN set) for opcode and payload length into
 * out, using the shortest length encoding. Returns the header length (2, 4 or 10). */
size_t ws_frame_header(uint8_t out[10], int opcode, uint64_t payload_len);

/* Validates the payload of a received close frame: empty, or a 2-byte code that may be sent on
 * the wire (1000-1003, 1007-1011, 3000-4999) followed by a UTF-8 reason.
 * Returns 0 and sets *code (1005 when the payload is empty), or -WS_CLOSE_PROTOCOL (a 1-byte
 * payload or a forbidden code) or -WS_CLOSE_INVALID_DATA (a reason that is not UTF-8). */
int ws_close_parse(const uint8_t *p, size_t n, uint16_t *code);

#endif
