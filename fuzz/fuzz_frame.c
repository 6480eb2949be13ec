/* fuzz_frame.c: libFuzzer driver for the WebSocket frame codec. It parses the input as a client
 * frame header under several payload limits, checks unmasking against a byte-by-byte reference
 * and its own inverse, and validates the input as a close payload; any broken invariant aborts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ws/frame.h"

/* Payload limits tried on every input, in bytes. */
static const uint64_t limits[] = {0, 1, 125, 126, 65535, 65536, 16384, UINT64_MAX};
/* Longest input unmasked by the reference, in bytes: enough to reach every code path. */
#define UNMASK_MAX_BYTES 4096

/* Aborts with a message when cond is false, so that libFuzzer records the input. */
static void require(int cond, const char *what) {
    if (!cond) {
        fprintf(stderr, "fuzz_frame: invariant broken: %s\n", what);
        abort();
    }
}

/* Checks a header that parsed into f from data[0..size) under limit. */
static void check_frame(const uint8_t *data, size_t size, uint64_t limit, const ws_frame_t *f) {
    uint8_t out[WS_MAX_HEADER_BYTES];
    ws_frame_t again;
    size_t n;

    require(f->header_len == 6 || f->header_len == 8 || f->header_len == 14, "header_len");
    require(f->header_len <= size, "header_len within input");
    require(f->payload_len <= limit, "payload_len within limit");
    require((f->payload_len >> 63) == 0, "payload_len top bit clear");
    require(f->fin <= 1, "fin is a flag");
    require(f->opcode <= 2 || (f->opcode >= 8 && f->opcode <= 10), "known opcode");
    if (f->opcode >= 8) {
        require(f->fin == 1 && f->payload_len <= WS_MAX_CONTROL_PAYLOAD, "control frame");
    }
    require(memcmp(f->mask, data + f->header_len - 4, 4) == 0, "mask is the last 4 bytes");
    require(ws_frame_parse(data, f->header_len - 1, limit, &again) == 0, "prefix needs more");

    /* A header we write, given the mask bit and a mask, parses back to the same frame. */
    n = ws_frame_header(out, f->opcode, f->payload_len);
    require(n == 2 || n == 4 || n == 10, "written header length");
    require(n + 4 <= f->header_len, "written header is shortest");
    out[1] |= 0x80;
    memcpy(out + n, f->mask, 4);
    require(ws_frame_parse(out, n + 4, limit, &again) == 1, "written header parses");
    require(again.opcode == f->opcode && again.fin == 1 && again.payload_len == f->payload_len &&
                again.header_len == n + 4,
            "written header round trip");
}

/* Checks ws_unmask on a copy of data against a byte-by-byte reference, in one piece and in two
 * pieces cut at a point taken from the input, and that unmasking twice restores the input. */
static void check_unmask(const uint8_t *data, size_t size) {
    static uint8_t fast[UNMASK_MAX_BYTES];
    static uint8_t slow[UNMASK_MAX_BYTES];
    uint8_t mask[4] = {0x12, 0x34, 0x56, 0x78};
    uint64_t offset = 0;
    size_t n;
    size_t cut;
    size_t i;

    if (size < 6) {
        return;
    }
    memcpy(mask, data, 4);
    offset = data[4];
    cut = data[5];
    data += 6;
    size -= 6;
    n = size < UNMASK_MAX_BYTES ? size : UNMASK_MAX_BYTES;
    cut = cut < n ? cut : n;

    memcpy(fast, data, n);
    memcpy(slow, data, n);
    ws_unmask(fast, cut, mask, offset);
    ws_unmask(fast + cut, n - cut, mask, offset + cut);
    for (i = 0; i < n; i++) {
        slow[i] ^= mask[(offset + i) % 4];
    }
    require(memcmp(fast, slow, n) == 0, "unmask matches the reference");
    ws_unmask(fast, n, mask, offset);
    require(memcmp(fast, data, n) == 0, "unmask is its own inverse");
}

/* Checks ws_close_parse on the input taken as a close payload. */
static void check_close(const uint8_t *data, size_t size) {
    uint16_t code = 0;
    int rc = ws_close_parse(data, size, &code);

    require(rc == 0 || rc == -WS_CLOSE_PROTOCOL || rc == -WS_CLOSE_INVALID_DATA, "close result");
    if (size == 0) {
        require(rc == 0 && code == 1005, "empty close");
    } else if (size == 1) {
        require(rc == -WS_CLOSE_PROTOCOL, "one-byte close");
    } else if (rc == 0) {
        require(code == ((data[0] << 8) | data[1]), "close code");
        require((code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
                    (code >= 3000 && code <= 4999),
                "close code sendable");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int rc_unbounded;
    ws_frame_t unbounded;
    size_t i;

    rc_unbounded = ws_frame_parse(data, size, UINT64_MAX, &unbounded);
    require(rc_unbounded >= -WS_CLOSE_PROTOCOL && rc_unbounded <= 1, "unbounded result");
    for (i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
        ws_frame_t f;
        int rc = ws_frame_parse(data, size, limits[i], &f);

        require(rc == 1 || rc == 0 || rc == -WS_CLOSE_PROTOCOL || rc == -WS_CLOSE_TOO_BIG,
                "result code");
        if (rc == 0) {
            require(size < WS_MAX_HEADER_BYTES, "incomplete only below the longest header");
        }
        if (rc == 1) {
            check_frame(data, size, limits[i], &f);
            require(rc_unbounded == 1 && f.payload_len == unbounded.payload_len,
                    "limit does not change the frame");
        }
        /* The limit only ever adds -WS_CLOSE_TOO_BIG, and only for frames over it. */
        if (rc_unbounded == 1 && unbounded.payload_len > limits[i]) {
            require(rc == -WS_CLOSE_TOO_BIG, "over the limit");
        }
        if (rc_unbounded == -WS_CLOSE_PROTOCOL) {
            require(rc == -WS_CLOSE_PROTOCOL, "protocol error stays");
        }
    }
    check_unmask(data, size);
    check_close(data, size);
    return 0;
}
