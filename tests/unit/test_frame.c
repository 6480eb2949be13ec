/* test_frame.c: unit tests of the WebSocket frame codec. */
#include "unit.h"

#include <stdlib.h>
#include <string.h>

#include "ws/frame.h"

/* The payload limit the tests parse with, in bytes (the server's default frame cap). */
#define TEST_MAX_PAYLOAD 16384
/* Longest payload the unmask tests try, in bytes. */
#define TEST_UNMASK_MAX_LEN 40
/* Offsets the unmask tests try: every position within two mask periods. */
#define TEST_UNMASK_OFFSETS 8

static const uint8_t test_mask[4] = {0x37, 0xfa, 0x21, 0x3d};

/* Writes a masked client frame header into out and returns its length. */
static size_t client_header(uint8_t *out, uint8_t b0, uint64_t len) {
    size_t n;
    size_t i;

    if (len <= 125) {
        out[1] = (uint8_t)len;
        n = 2;
    } else if (len <= 0xFFFF) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        n = 4;
    } else {
        out[1] = 127;
        for (i = 0; i < 8; i++) {
            out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
        }
        n = 10;
    }
    out[0] = b0;
    out[1] |= 0x80;
    memcpy(out + n, test_mask, 4);
    return n + 4;
}

/* Parses every proper prefix of buf[0..len) from an exactly-sized heap copy and expects 0 ("more
 * bytes needed"), then expects the whole header to parse. */
static void expect_prefixes_incomplete(const uint8_t *buf, size_t len) {
    ws_frame_t f;
    size_t i;

    for (i = 0; i < len; i++) {
        uint8_t *copy = malloc(i > 0 ? i : 1);

        assert_non_null(copy);
        memcpy(copy, buf, i);
        assert_int_equal(ws_frame_parse(copy, i, TEST_MAX_PAYLOAD, &f), 0);
        free(copy);
    }
    assert_int_equal(ws_frame_parse(buf, len, TEST_MAX_PAYLOAD, &f), 1);
}

static void test_rfc_masked_hello(void **state) {
    /* RFC 6455 section 5.7: a single-frame masked text message containing "Hello". */
    uint8_t msg[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    ws_frame_t f;

    (void)state;
    assert_int_equal(ws_frame_parse(msg, sizeof(msg), TEST_MAX_PAYLOAD, &f), 1);
    assert_int_equal(f.fin, 1);
    assert_int_equal(f.opcode, WS_OP_TEXT);
    assert_int_equal(f.payload_len, 5);
    assert_int_equal(f.header_len, 6);
    assert_memory_equal(f.mask, test_mask, 4);
    ws_unmask(msg + f.header_len, 5, f.mask, 0);
    assert_memory_equal(msg + 6, "Hello", 5);
    expect_prefixes_incomplete(msg, 6);
}

static void test_length_forms(void **state) {
    static const uint64_t lens[] = {
        0, 1, 125, 126, 127, 0xFFFF, 0x10000, 0x123456789ULL, 0x7FFFFFFFFFFFFFFFULL};
    static const size_t header_lens[] = {6, 6, 6, 8, 8, 8, 14, 14, 14};
    uint8_t buf[WS_MAX_HEADER_BYTES];
    ws_frame_t f;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        size_t n = client_header(buf, 0x82, lens[i]);

        assert_int_equal(n, header_lens[i]);
        assert_int_equal(ws_frame_parse(buf, n, UINT64_MAX, &f), 1);
        assert_int_equal(f.payload_len, lens[i]);
        assert_int_equal(f.header_len, header_lens[i]);
        assert_int_equal(f.opcode, WS_OP_BINARY);
        assert_int_equal(f.fin, 1);
        assert_memory_equal(f.mask, test_mask, 4);
        if (lens[i] <= TEST_MAX_PAYLOAD) {
            expect_prefixes_incomplete(buf, n);
        }
    }
}

static void test_every_opcode(void **state) {
    uint8_t buf[WS_MAX_HEADER_BYTES];
    ws_frame_t f;
    unsigned op;

    (void)state;
    for (op = 0; op < 16; op++) {
        int known = op <= 2 || (op >= 8 && op <= 10);
        size_t n = client_header(buf, (uint8_t)(0x80 | op), 3);

        if (known) {
            assert_int_equal(ws_frame_parse(buf, n, TEST_MAX_PAYLOAD, &f), 1);
            assert_int_equal(f.opcode, op);
        } else {
            assert_int_equal(ws_frame_parse(buf, n, TEST_MAX_PAYLOAD, &f), -WS_CLOSE_PROTOCOL);
            /* The first byte is enough to know. */
            assert_int_equal(ws_frame_parse(buf, 1, TEST_MAX_PAYLOAD, &f), -WS_CLOSE_PROTOCOL);
        }
    }
}

static void test_fragments(void **state) {
    uint8_t buf[WS_MAX_HEADER_BYTES];
    ws_frame_t f;
    size_t n;

    (void)state;
    n = client_header(buf, 0x01, 10); /* text, not final */
    assert_int_equal(ws_frame_parse(buf, n, TEST_MAX_PAYLOAD, &f), 1);
    assert_int_equal(f.fin, 0);
    assert_int_equal(f.opcode, WS_OP_TEXT);
    n = client_header(buf, 0x00, 10); /* continuation, not final */
    assert_int_equal(ws_frame_parse(buf, n, TEST_MAX_PAYLOAD, &f), 1);
    assert_int_equal(f.fin, 0);
    assert_int_equal(f.opcode, WS_OP_CONT);
    n = client_header(buf, 0x80, 10); /* continuation, final */
    assert_int_equal(ws_frame_parse(buf, n, TEST_MAX_PAYLOAD, &f), 1);
    assert_int_equal(f.fin, 1);
}

static void test_unmasked(void **state) {
    uint8_t buf[] = {0x81, 0x05, 'H', 'e', 'l', 'l', 'o'};
    ws_frame_t f;

    (void)state;
    assert_int_equal(ws_frame_parse(buf, sizeof(buf), TEST_MAX_PAYLOAD, &f), -WS_CLOSE_PROTOCOL);
    assert_int_equal(ws_frame_parse(buf, 2, TEST_MAX_PAYLOAD, &f), -WS_CLOSE_PROTOCOL);
}

static void test_rsv_bits(void **state) {
    uint8_t buf[WS_MAX_HEADER_BYTES];
    ws_frame_t f;
    uint8_t rsv;

    (void)state;
    for (rsv = 1; rsv < 8; rsv++) {
        size_t n = client_header(buf, (uint8_t)(0x81 | (rsv << 4)), 5);

        assert_int_equal(ws_frame_parse(buf, n, TEST_MAX_PAYLOAD, &f), -WS_CLOSE_PROTOCOL);
        assert_int_equal(ws_frame_parse(buf, 1, TEST_MAX_PAYLOAD, &f), -WS_CLOSE_PROTOCOL);
    }
}

static void test_control_frames(void **state) {
    static const uint8_t ops[] = {WS_OP_CLOSE, WS_OP_PING, WS_OP_PONG};
    uint8_t buf[WS_MAX_HEADER_BYTES];
    ws_frame_t f;
    size_t i;
    size_t n;

    (void)state;
    for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        n = client_header(buf, (uint8_t)(0x80 | ops[i]), 125);
        assert_int_equal(ws_frame_parse(buf, n, TEST_MAX_PAYLOAD, &f), 1);
        assert_int_equal(f.payload_len, 125);
        n = client_header(buf, (uint8_t)(0x80 | ops[i]), 0);
        assert_int_equal(ws_frame_parse(buf, n, TEST_MAX_PAYLOAD, &f), 1);
        /* Fragmented control frame. */
        n = client_header(buf, ops[i], 5);
        assert_int_equal(ws_frame_parse(buf, n, TEST_MAX_PAYLOAD, &f), -WS_CLOSE_PROTOCOL);
        /* 126 bytes; then an extended length form, refused even when it announces few bytes. */
        n = client_header(buf, (uint8_t)(0x80 | ops[i]), 126);
        assert_int_equal(ws_frame_parse(buf, n, TEST_MAX_PAYLOAD, &f), -WS_CLOSE_PROTOCOL);
        buf[1] = 0x80 | 126;
        buf[2] = 0;
        buf[3] = 5;
        assert_int_equal(ws_frame_parse(buf, 8, TEST_MAX_PAYLOAD, &f), -WS_CLOSE_PROTOCOL);
        buf[1] = 0x80 | 127;
        assert_int_equal(ws_frame_parse(buf, 2, TEST_MAX_PAYLOAD, &f), -WS_CLOSE_PROTOCOL);
    }
}

static void test_length_msb(void **state) {
    uint8_t buf[WS_MAX_HEADER_BYTES];
    ws_frame_t f;
    size_t n;

    (void)state;
    n = client_header(buf, 0x82, 0x8000000000000000ULL);
    assert_int_equal(ws_frame_parse(buf, n, UINT64_MAX, &f), -WS_CLOSE_PROTOCOL);
    /* Known as soon as the length has arrived, before the mask. */
    assert_int_equal(ws_frame_parse(buf, 10, UINT64_MAX, &f), -WS_CLOSE_PROTOCOL);
    n = client_header(buf, 0x82, UINT64_MAX);
    assert_int_equal(ws_frame_parse(buf, n, UINT64_MAX, &f), -WS_CLOSE_PROTOCOL);
}

static void test_too_big(void **state) {
    uint8_t buf[WS_MAX_HEADER_BYTES];
    ws_frame_t f;
    size_t n;

    (void)state;
    n = client_header(buf, 0x82, TEST_MAX_PAYLOAD);
    assert_int_equal(ws_frame_parse(buf, n, TEST_MAX_PAYLOAD, &f), 1);
    n = client_header(buf, 0x82, TEST_MAX_PAYLOAD + 1);
    assert_int_equal(ws_frame_parse(buf, n, TEST_MAX_PAYLOAD, &f), -WS_CLOSE_TOO_BIG);
    /* Known before the mask has arrived. */
    assert_int_equal(ws_frame_parse(buf, 4, TEST_MAX_PAYLOAD, &f), -WS_CLOSE_TOO_BIG);
    n = client_header(buf, 0x82, 0x7FFFFFFFFFFFFFFFULL);
    assert_int_equal(ws_frame_parse(buf, n, TEST_MAX_PAYLOAD, &f), -WS_CLOSE_TOO_BIG);
    n = client_header(buf, 0x81, 6);
    assert_int_equal(ws_frame_parse(buf, n, 5, &f), -WS_CLOSE_TOO_BIG);
    n = client_header(buf, 0x81, 0);
    assert_int_equal(ws_frame_parse(buf, n, 0, &f), 1);
    /* A protocol error is reported before the size: the connection fails either way, but with
     * the more precise code. */
    n = client_header(buf, 0x89, 126);
    assert_int_equal(ws_frame_parse(buf, n, 10, &f), -WS_CLOSE_PROTOCOL);
}

/* Unmasks p[0..n) one byte at a time: the obviously correct reference. */
static void unmask_reference(uint8_t *p, size_t n, const uint8_t mask[4], uint64_t offset) {
    size_t i;

    for (i = 0; i < n; i++) {
        p[i] ^= mask[(offset + i) % 4];
    }
}

static void test_unmask_every_offset(void **state) {
    uint8_t orig[TEST_UNMASK_MAX_LEN + 1];
    uint8_t want[TEST_UNMASK_MAX_LEN + 1];
    uint64_t offset;
    size_t start;
    size_t len;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(orig); i++) {
        orig[i] = (uint8_t)(i * 37 + 11);
    }
    for (offset = 0; offset < TEST_UNMASK_OFFSETS; offset++) {
        /* start shifts the pointer too, so both aligned and unaligned buffers are covered. */
        for (start = 0; start < 2; start++) {
            for (len = 0; len <= TEST_UNMASK_MAX_LEN - start; len++) {
                /* An exactly-sized heap block, so ASan sees any access past the end. */
                uint8_t *got = malloc(len + start > 0 ? len + start : 1);

                assert_non_null(got);
                memcpy(got, orig, len + start);
                memcpy(want, orig, len + start);
                ws_unmask(got + start, len, test_mask, offset);
                unmask_reference(want + start, len, test_mask, offset);
                assert_memory_equal(got, want, len + start);
                free(got);
            }
        }
    }
    /* A large offset: only its value modulo 4 matters. */
    memcpy(want, orig, sizeof(orig));
    ws_unmask(orig, 33, test_mask, 0xFFFFFFFFFFFFFFFDULL);
    unmask_reference(want, 33, test_mask, 1);
    assert_memory_equal(orig, want, 33);
}

static void test_unmask_in_pieces(void **state) {
    uint8_t whole[100];
    uint8_t pieces[100];
    size_t cut1;
    size_t cut2;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(whole); i++) {
        whole[i] = (uint8_t)(i ^ 0x5a);
    }
    ws_unmask(whole, sizeof(whole), test_mask, 0);
    for (cut1 = 0; cut1 <= 20; cut1++) {
        for (cut2 = cut1; cut2 <= 40; cut2 += 3) {
            for (i = 0; i < sizeof(pieces); i++) {
                pieces[i] = (uint8_t)(i ^ 0x5a);
            }
            ws_unmask(pieces, cut1, test_mask, 0);
            ws_unmask(pieces + cut1, cut2 - cut1, test_mask, cut1);
            ws_unmask(pieces + cut2, sizeof(pieces) - cut2, test_mask, cut2);
            assert_memory_equal(pieces, whole, sizeof(whole));
        }
    }
}

static void test_unmask_round_trip(void **state) {
    uint8_t buf[64];
    uint8_t copy[64];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(buf); i++) {
        buf[i] = (uint8_t)(i * 7);
    }
    memcpy(copy, buf, sizeof(buf));
    ws_unmask(buf, sizeof(buf), test_mask, 3);
    assert_memory_not_equal(buf, copy, sizeof(buf));
    ws_unmask(buf, sizeof(buf), test_mask, 3);
    assert_memory_equal(buf, copy, sizeof(buf));
    ws_unmask(NULL, 0, test_mask, 0);
}

static void test_server_header(void **state) {
    uint8_t out[10];
    ws_frame_t f;
    uint8_t client[WS_MAX_HEADER_BYTES];

    (void)state;
    assert_int_equal(ws_frame_header(out, WS_OP_TEXT, 0), 2);
    assert_memory_equal(out, "\x81\x00", 2);
    assert_int_equal(ws_frame_header(out, WS_OP_TEXT, 5), 2);
    assert_memory_equal(out, "\x81\x05", 2);
    assert_int_equal(ws_frame_header(out, WS_OP_PONG, 125), 2);
    assert_memory_equal(out, "\x8a\x7d", 2);
    assert_int_equal(ws_frame_header(out, WS_OP_BINARY, 126), 4);
    assert_memory_equal(out, "\x82\x7e\x00\x7e", 4);
    /* RFC 6455 section 5.7: a 256-byte binary message. */
    assert_int_equal(ws_frame_header(out, WS_OP_BINARY, 256), 4);
    assert_memory_equal(out, "\x82\x7e\x01\x00", 4);
    assert_int_equal(ws_frame_header(out, WS_OP_BINARY, 0xFFFF), 4);
    assert_memory_equal(out, "\x82\x7e\xff\xff", 4);
    /* RFC 6455 section 5.7: a 64 KiB binary message. */
    assert_int_equal(ws_frame_header(out, WS_OP_BINARY, 65536), 10);
    assert_memory_equal(out, "\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10);
    assert_int_equal(ws_frame_header(out, WS_OP_CLOSE, 0x0102030405060708ULL), 10);
    assert_memory_equal(out, "\x88\x7f\x01\x02\x03\x04\x05\x06\x07\x08", 10);

    /* What we write parses back once the mask bit and a mask are added. */
    memcpy(client, out, 10);
    client[1] |= 0x80;
    memcpy(client + 10, test_mask, 4);
    client[0] = 0x82;
    assert_int_equal(ws_frame_parse(client, 14, UINT64_MAX, &f), 1);
    assert_int_equal(f.payload_len, 0x0102030405060708ULL);
}

/* Returns ws_close_parse's result for the payload p[0..n), storing the code in *code. */
static int close_rc(const char *p, size_t n, uint16_t *code) {
    return ws_close_parse((const uint8_t *)p, n, code);
}

static void test_close_payload(void **state) {
    static const uint16_t good[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009,
                                    1010, 1011, 3000, 3999, 4000, 4999};
    static const uint16_t bad[] = {0,    1,    999,  1004, 1005, 1006, 1012, 1013,
                                   1014, 1015, 1016, 1100, 2000, 2999, 5000, 65535};
    uint16_t code = 0;
    uint8_t p[2];
    size_t i;

    (void)state;
    assert_int_equal(ws_close_parse(NULL, 0, &code), 0);
    assert_int_equal(code, 1005);
    assert_int_equal(close_rc("\x03", 1, &code), -WS_CLOSE_PROTOCOL);
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        p[0] = (uint8_t)(good[i] >> 8);
        p[1] = (uint8_t)good[i];
        code = 0;
        assert_int_equal(ws_close_parse(p, 2, &code), 0);
        assert_int_equal(code, good[i]);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        p[0] = (uint8_t)(bad[i] >> 8);
        p[1] = (uint8_t)bad[i];
        if (ws_close_parse(p, 2, &code) != -WS_CLOSE_PROTOCOL) {
            fail_msg("close code %u was accepted", bad[i]);
        }
    }
}

static void test_close_reason(void **state) {
    uint16_t code = 0;

    (void)state;
    assert_int_equal(close_rc("\x03\xe8"
                              "bye",
                              5, &code),
                     0);
    assert_int_equal(code, 1000);
    assert_int_equal(close_rc("\x03\xe8"
                              "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5",
                              13, &code),
                     0);
    assert_int_equal(close_rc("\x0f\xa0"
                              "\xf0\x9f\x98\x80",
                              6, &code),
                     0);
    assert_int_equal(code, 4000);
    /* Invalid UTF-8: a lone continuation byte, a truncated sequence, a surrogate, an overlong. */
    assert_int_equal(close_rc("\x03\xe8"
                              "\x80",
                              3, &code),
                     -WS_CLOSE_INVALID_DATA);
    assert_int_equal(close_rc("\x03\xe8"
                              "ok\xe2\x82",
                              6, &code),
                     -WS_CLOSE_INVALID_DATA);
    assert_int_equal(close_rc("\x03\xe8"
                              "\xed\xa0\x80",
                              5, &code),
                     -WS_CLOSE_INVALID_DATA);
    assert_int_equal(close_rc("\x03\xe8"
                              "\xc0\xaf",
                              4, &code),
                     -WS_CLOSE_INVALID_DATA);
    /* A bad code is reported even when the reason is bad too. */
    assert_int_equal(close_rc("\x03\xed"
                              "\x80",
                              3, &code),
                     -WS_CLOSE_PROTOCOL);
    /* A NUL is valid UTF-8. */
    assert_int_equal(close_rc("\x03\xe8"
                              "a\0b",
                              5, &code),
                     0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc_masked_hello), cmocka_unit_test(test_length_forms),
        cmocka_unit_test(test_every_opcode),     cmocka_unit_test(test_fragments),
        cmocka_unit_test(test_unmasked),         cmocka_unit_test(test_rsv_bits),
        cmocka_unit_test(test_control_frames),   cmocka_unit_test(test_length_msb),
        cmocka_unit_test(test_too_big),          cmocka_unit_test(test_unmask_every_offset),
        cmocka_unit_test(test_unmask_in_pieces), cmocka_unit_test(test_unmask_round_trip),
        cmocka_unit_test(test_server_header),    cmocka_unit_test(test_close_payload),
        cmocka_unit_test(test_close_reason),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
