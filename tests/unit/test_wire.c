/* test_wire.c: unit tests of the node-to-node message codec (cluster/wire.c). The tests carry
 * their own model of the body layouts (raw_record below) and of which fields each type uses
 * (normalized below), so that a change to either in wire.c shows up here as a difference. */
#include "unit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/wire.h"
#include "core/alloc.h"
#include "core/buf.h"

/* The node ID the test messages come from: every byte different, to catch byte-order errors. */
#define TEST_NODE 0x0123456789abcdefULL
/* Records in the many-records test. */
#define TEST_MANY_RECORDS 3000
/* Types of record, counting the two without a body. */
#define TEST_TYPES WIRE_TYPE_MAX

/* A payload of the largest allowed size plus one byte, filled with a pattern by main(). */
static uint8_t big_payload[WIRE_MAX_PAYLOAD_BYTES + 1];

/* Raw record fields: like wire_rec_t, but any value may be written, ID lengths past the limit
 * included, and the body length in the record head may be made to lie. */
typedef struct raw {
    uint8_t type, kind, dialect, seeder, has_ih, id_len;
    uint32_t slot, gen, from_slot, from_gen, retry_ms, payload_len;
    uint8_t fill;        /* first byte of the id/ih/offer_id/payload patterns */
    size_t extra;        /* junk bytes appended to the body (counted in body_len) */
    int64_t body_adjust; /* added to the true body length in the record head */
} raw_t;

static void raw_u8(buf_t *b, uint8_t v) {
    buf_append(b, &v, 1);
}

static void raw_u32(buf_t *b, uint32_t v) {
    uint8_t p[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};

    buf_append(b, p, 4);
}

/* Appends n pattern bytes starting at value start. */
static void raw_pattern(buf_t *b, size_t n, uint8_t start) {
    size_t i;

    for (i = 0; i < n; i++) {
        raw_u8(b, (uint8_t)(start + i));
    }
}

static void raw_id(buf_t *b, const raw_t *f) {
    raw_u8(b, f->id_len);
    raw_pattern(b, f->id_len, f->fill);
}

static void raw_ih(buf_t *b, const raw_t *f) {
    raw_pattern(b, 20, (uint8_t)(f->fill + 0x40));
}

static void raw_offer_id(buf_t *b, const raw_t *f) {
    raw_pattern(b, 20, (uint8_t)(f->fill + 0x80));
}

static void raw_payload(buf_t *b, const raw_t *f) {
    raw_u32(b, f->payload_len);
    buf_append(b, big_payload, f->payload_len);
}

/* Appends one record with fields f to b, following the layout documented in wire.c: the test's
 * own copy of it, written independently of the encoder. */
static void raw_record(buf_t *b, const raw_t *f) {
    buf_t body = {0};

    switch (f->type) {
    case WIRE_PEER_UP:
        raw_u32(&body, f->slot);
        raw_u32(&body, f->gen);
        raw_u8(&body, f->dialect);
        raw_id(&body, f);
        break;
    case WIRE_PEER_DOWN:
        raw_u32(&body, f->slot);
        raw_u32(&body, f->gen);
        raw_id(&body, f);
        break;
    case WIRE_MEMBER:
        raw_ih(&body, f);
        raw_u8(&body, f->seeder);
        raw_id(&body, f);
        break;
    case WIRE_LEAVE:
        raw_ih(&body, f);
        raw_id(&body, f);
        break;
    case WIRE_DELIVER:
        raw_u8(&body, f->kind);
        raw_u8(&body, f->has_ih);
        raw_u32(&body, f->slot);
        raw_u32(&body, f->gen);
        raw_u32(&body, f->from_slot);
        raw_u32(&body, f->from_gen);
        raw_id(&body, f);
        if (f->has_ih) {
            raw_ih(&body, f);
        }
        if (f->kind == WIRE_WT_OFFER || f->kind == WIRE_WT_ANSWER) {
            raw_offer_id(&body, f);
        }
        raw_payload(&body, f);
        break;
    case WIRE_REFUSED:
        raw_u8(&body, f->kind);
        raw_u8(&body, f->has_ih);
        raw_u32(&body, f->slot);
        raw_u32(&body, f->gen);
        raw_u32(&body, f->retry_ms);
        raw_id(&body, f);
        if (f->has_ih) {
            raw_ih(&body, f);
        }
        break;
    case WIRE_KICK:
        raw_u32(&body, f->slot);
        raw_u32(&body, f->gen);
        raw_payload(&body, f);
        break;
    default: /* RESET, HELLO and unknown types: empty */
        break;
    }
    raw_pattern(&body, f->extra, 0xEE);
    raw_u8(b, f->type);
    raw_u32(b, (uint32_t)((int64_t)body.len + f->body_adjust));
    buf_append(b, body.data, body.len);
    buf_dispose(&body);
}

/* Returns the record raw fields f describe, for the encoder (only meaningful when in range). */
static wire_rec_t rec_of(const raw_t *f) {
    wire_rec_t r;
    size_t i;

    memset(&r, 0, sizeof(r));
    r.type = f->type;
    r.kind = f->kind;
    r.dialect = f->dialect;
    r.seeder = f->seeder;
    r.has_ih = f->has_ih;
    r.id_len = f->id_len;
    r.slot = f->slot;
    r.gen = f->gen;
    r.from_slot = f->from_slot;
    r.from_gen = f->from_gen;
    r.retry_ms = f->retry_ms;
    for (i = 0; i < f->id_len && i < WIRE_MAX_ID_BYTES; i++) {
        r.id[i] = (uint8_t)(f->fill + i);
    }
    for (i = 0; i < 20; i++) {
        r.ih[i] = (uint8_t)(f->fill + 0x40 + i);
        r.offer_id[i] = (uint8_t)(f->fill + 0x80 + i);
    }
    r.payload = big_payload;
    r.payload_len = f->payload_len;
    return r;
}

/* Returns r with every field its type does not use set to zero: what wire_next must return for
 * a record wire_put wrote from r. The table is the one in wire.h. */
static wire_rec_t normalized(const wire_rec_t *r) {
    wire_rec_t n;
    int id = 0, ih = 0;

    memset(&n, 0, sizeof(n));
    n.type = r->type;
    switch (r->type) {
    case WIRE_PEER_UP:
        n.slot = r->slot;
        n.gen = r->gen;
        n.dialect = r->dialect;
        id = 1;
        break;
    case WIRE_PEER_DOWN:
        n.slot = r->slot;
        n.gen = r->gen;
        id = 1;
        break;
    case WIRE_MEMBER:
        n.seeder = r->seeder;
        id = ih = 1;
        break;
    case WIRE_LEAVE:
        id = ih = 1;
        break;
    case WIRE_DELIVER:
        n.kind = r->kind;
        n.slot = r->slot;
        n.gen = r->gen;
        n.from_slot = r->from_slot;
        n.from_gen = r->from_gen;
        n.has_ih = r->has_ih;
        id = 1;
        ih = r->has_ih;
        if (r->kind == WIRE_WT_OFFER || r->kind == WIRE_WT_ANSWER) {
            memcpy(n.offer_id, r->offer_id, 20);
        }
        n.payload = r->payload;
        n.payload_len = r->payload_len;
        break;
    case WIRE_REFUSED:
        n.kind = r->kind;
        n.slot = r->slot;
        n.gen = r->gen;
        n.retry_ms = r->retry_ms;
        n.has_ih = r->has_ih;
        id = 1;
        ih = r->has_ih;
        break;
    case WIRE_KICK:
        n.slot = r->slot;
        n.gen = r->gen;
        n.payload = r->payload;
        n.payload_len = r->payload_len;
        break;
    default:
        break;
    }
    if (id) {
        n.id_len = r->id_len;
        memcpy(n.id, r->id, r->id_len);
    }
    if (ih) {
        memcpy(n.ih, r->ih, 20);
    }
    if (n.payload_len == 0) {
        n.payload = NULL;
    }
    return n;
}

/* Asserts that decoded record got equals want field by field (payload by its bytes). */
static void expect_rec(const wire_rec_t *got, const wire_rec_t *want) {
    assert_int_equal(got->type, want->type);
    assert_int_equal(got->kind, want->kind);
    assert_int_equal(got->dialect, want->dialect);
    assert_int_equal(got->seeder, want->seeder);
    assert_int_equal(got->has_ih, want->has_ih);
    assert_int_equal(got->id_len, want->id_len);
    assert_int_equal(got->slot, want->slot);
    assert_int_equal(got->gen, want->gen);
    assert_int_equal(got->from_slot, want->from_slot);
    assert_int_equal(got->from_gen, want->from_gen);
    assert_int_equal(got->retry_ms, want->retry_ms);
    assert_memory_equal(got->id, want->id, WIRE_MAX_ID_BYTES);
    assert_memory_equal(got->ih, want->ih, 20);
    assert_memory_equal(got->offer_id, want->offer_id, 20);
    assert_int_equal(got->payload_len, want->payload_len);
    if (want->payload_len == 0) {
        assert_null(got->payload);
    } else {
        assert_non_null(got->payload);
        assert_memory_equal(got->payload, want->payload, want->payload_len);
    }
}

/* Asserts that r is all zeros, as wire_next leaves it when it returns no record. */
static void expect_zero_rec(const wire_rec_t *r) {
    wire_rec_t zero;

    memset(&zero, 0, sizeof(zero));
    expect_rec(r, &zero);
}

/* Encodes r alone in a message, checks the bytes against the raw model f when f is not NULL,
 * decodes it and checks it against normalized(r). */
static void round_trip(const wire_rec_t *r, const raw_t *f) {
    buf_t b = {0};
    wire_reader_t rd;
    wire_rec_t got, want = normalized(r);
    uint64_t node = 0;

    wire_begin(&b, TEST_NODE);
    assert_int_equal(wire_put(&b, r), 0);
    if (f != NULL) {
        buf_t model = {0};

        wire_begin(&model, TEST_NODE);
        raw_record(&model, f);
        assert_int_equal(b.len, model.len);
        assert_memory_equal(b.data, model.data, b.len);
        buf_dispose(&model);
    }
    assert_int_equal(wire_open(&rd, b.data, b.len, &node), 0);
    assert_true(node == TEST_NODE);
    assert_int_equal(wire_next(&rd, &got), 1);
    expect_rec(&got, &want);
    /* The payload points into the message, not into a copy. */
    if (got.payload_len > 0) {
        assert_true(got.payload > b.data && got.payload + got.payload_len <= b.data + b.len);
    }
    assert_int_equal(wire_next(&rd, &got), 0);
    expect_zero_rec(&got);
    buf_dispose(&b);
}

/* Returns a valid raw record of type t; v varies the values. */
static raw_t sample(uint8_t t, unsigned v) {
    raw_t f;

    memset(&f, 0, sizeof(f));
    f.type = t;
    f.fill = (uint8_t)('a' + v % 26);
    if (t == WIRE_RESET || t == WIRE_HELLO) {
        return f;
    }
    f.slot = 7 + v;
    f.gen = 1000 + 3 * v;
    if (t == WIRE_KICK) {
        f.payload_len = v % 17;
        return f;
    }
    f.id_len = (uint8_t)(1 + v % WIRE_MAX_ID_BYTES);
    f.dialect = (uint8_t)(1 + v % 2);
    f.seeder = (uint8_t)(v % 2);
    f.kind = (uint8_t)(1 + v % WIRE_KIND_MAX);
    f.has_ih = (uint8_t)(v / 2 % 2);
    if (t == WIRE_DELIVER) {
        f.from_slot = 99 + v;
        f.from_gen = 5 * v;
        f.payload_len = 30 + v % 200;
    }
    if (t == WIRE_REFUSED) {
        f.retry_ms = 250 * v;
    }
    return f;
}

/* Opens b, which must have a valid header, and expects the first record to be refused. */
static void expect_bad(const buf_t *b) {
    wire_reader_t rd;
    wire_rec_t got;
    uint64_t node;

    assert_int_equal(wire_open(&rd, b->data, b->len, &node), 0);
    assert_int_equal(wire_next(&rd, &got), -EBADMSG);
    expect_zero_rec(&got);
    /* The reader stays at the end. */
    assert_int_equal(wire_next(&rd, &got), 0);
    assert_int_equal(wire_next(&rd, &got), 0);
}

/* Expects the raw record f, alone in a message, to be refused. */
static void expect_raw_bad(const raw_t *f) {
    buf_t b = {0};

    wire_begin(&b, TEST_NODE);
    raw_record(&b, f);
    expect_bad(&b);
    buf_dispose(&b);
}

/* Expects wire_put to refuse r and leave b exactly as it was. */
static void expect_put_refused(buf_t *b, const wire_rec_t *r) {
    uint32_t len = b->len;
    uint32_t cap = b->cap;
    uint8_t before[WIRE_HEADER_BYTES];

    assert_true(len == WIRE_HEADER_BYTES);
    memcpy(before, b->data, len);
    assert_int_equal(wire_put(b, r), -EINVAL);
    assert_int_equal(b->len, len);
    assert_int_equal(b->cap, cap);
    assert_memory_equal(b->data, before, len);
}

static int setup(void **state) {
    *state = (void *)(uintptr_t)alloc_bytes_in_use();
    return 0;
}

/* Fails the test when it left memory allocated through the counting allocator. */
static int teardown(void **state) {
    size_t heap0 = (size_t)(uintptr_t)*state;

    if (alloc_bytes_in_use() != heap0) {
        fprintf(stderr, "leak: %zu bytes before the test, %zu after\n", heap0,
                alloc_bytes_in_use());
        return -1;
    }
    return 0;
}

static void test_header(void **state) {
    static const uint8_t want[] = {'S', 'T', 1, 0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01};
    buf_t b = {0};
    wire_reader_t rd;
    wire_rec_t r;
    uint64_t node = 0;

    (void)state;
    wire_begin(&b, TEST_NODE);
    assert_int_equal(b.len, WIRE_HEADER_BYTES);
    assert_memory_equal(b.data, want, sizeof(want));
    assert_int_equal(wire_open(&rd, b.data, b.len, &node), 0);
    assert_true(node == TEST_NODE);
    /* A message may carry no record at all. */
    assert_int_equal(wire_next(&rd, &r), 0);
    assert_int_equal(wire_next(&rd, &r), 0);
    buf_dispose(&b);

    /* from_node takes all 64 bits. */
    wire_begin(&b, UINT64_MAX);
    assert_int_equal(wire_open(&rd, b.data, b.len, &node), 0);
    assert_true(node == UINT64_MAX);
    buf_dispose(&b);
    wire_begin(&b, 0);
    assert_int_equal(wire_open(&rd, b.data, b.len, &node), 0);
    assert_true(node == 0);
    buf_dispose(&b);
}

/* Pins the byte layout of a few records, written out by hand. */
static void test_layout_bytes(void **state) {
    static const uint8_t peer_up[] = {
        WIRE_PEER_UP,
        12,
        0,
        0,
        0, /* type, body_len */
        0x04,
        0x03,
        0x02,
        0x01, /* slot */
        0x09,
        0,
        0,
        0, /* gen */
        2, /* dialect */
        2,
        'x',
        'y', /* id */
    };
    static const uint8_t kick[] = {
        WIRE_KICK, 20, 0, 0, 0,   1,   0,   0,   0,   2,   0,   0,   0,
        8,         0,  0, 0, 'r', 'e', 'p', 'l', 'a', 'c', 'e', 'd',
    };
    static const uint8_t hello[] = {WIRE_HELLO, 0, 0, 0, 0};
    uint8_t deliver[5 + 23 + 1 + 20 + 20 + 2];
    buf_t b = {0};
    wire_rec_t r;
    size_t i;

    (void)state;
    memset(&r, 0, sizeof(r));
    r.type = WIRE_PEER_UP;
    r.slot = 0x01020304;
    r.gen = 9;
    r.dialect = 2;
    r.id_len = 2;
    memcpy(r.id, "xy", 2);
    assert_int_equal(wire_put(&b, &r), 0);
    assert_int_equal(b.len, sizeof(peer_up));
    assert_memory_equal(b.data, peer_up, sizeof(peer_up));
    buf_dispose(&b);

    memset(&r, 0, sizeof(r));
    r.type = WIRE_KICK;
    r.slot = 1;
    r.gen = 2;
    r.payload = (const uint8_t *)"replaced";
    r.payload_len = 8;
    assert_int_equal(wire_put(&b, &r), 0);
    assert_int_equal(b.len, sizeof(kick));
    assert_memory_equal(b.data, kick, sizeof(kick));
    buf_dispose(&b);

    memset(&r, 0, sizeof(r));
    r.type = WIRE_HELLO;
    assert_int_equal(wire_put(&b, &r), 0);
    assert_int_equal(b.len, sizeof(hello));
    assert_memory_equal(b.data, hello, sizeof(hello));
    buf_dispose(&b);

    /* A WebTorrent offer with an infohash: id, then ih, then offer_id, then the payload. */
    memset(&r, 0, sizeof(r));
    r.type = WIRE_DELIVER;
    r.kind = WIRE_WT_OFFER;
    r.has_ih = 1;
    r.slot = 1;
    r.gen = 2;
    r.from_slot = 3;
    r.from_gen = 4;
    r.id_len = 1;
    r.id[0] = 'p';
    memset(r.ih, 0xAA, 20);
    memset(r.offer_id, 0xBB, 20);
    r.payload = (const uint8_t *)"{}";
    r.payload_len = 2;
    i = 0;
    deliver[i++] = WIRE_DELIVER;
    deliver[i++] = 23 + 1 + 20 + 20 + 2;
    deliver[i++] = 0;
    deliver[i++] = 0;
    deliver[i++] = 0;
    deliver[i++] = WIRE_WT_OFFER;
    deliver[i++] = 1;
    for (uint8_t k = 1; k <= 4; k++) {
        deliver[i++] = k;
        deliver[i++] = 0;
        deliver[i++] = 0;
        deliver[i++] = 0;
    }
    deliver[i++] = 1;
    deliver[i++] = 'p';
    memset(deliver + i, 0xAA, 20);
    i += 20;
    memset(deliver + i, 0xBB, 20);
    i += 20;
    deliver[i++] = 2;
    deliver[i++] = 0;
    deliver[i++] = 0;
    deliver[i++] = 0;
    deliver[i++] = '{';
    deliver[i++] = '}';
    assert_int_equal(i, sizeof(deliver));
    assert_int_equal(wire_put(&b, &r), 0);
    assert_int_equal(b.len, sizeof(deliver));
    assert_memory_equal(b.data, deliver, sizeof(deliver));
    buf_dispose(&b);
}

/* Every type with typical values, and with junk in the fields it does not use: wire_put ignores
 * them and wire_next returns them as zeros. */
static void test_round_trip_every_type(void **state) {
    static const char sdp[] = "{\"type\":\"offer\",\"sdp\":\"v=0\\r\\no=- 1 2 IN IP4 0.0.0.0\"}";
    uint8_t t;

    (void)state;
    for (t = 1; t <= WIRE_TYPE_MAX; t++) {
        raw_t f = sample(t, 5);
        wire_rec_t r = rec_of(&f);
        wire_rec_t junk = r;

        round_trip(&r, &f);
        /* Junk in every field the type does not use, including bytes past id_len. */
        memset(junk.id + junk.id_len, 0x5A, WIRE_MAX_ID_BYTES - junk.id_len);
        if (t != WIRE_DELIVER && t != WIRE_REFUSED) {
            junk.kind = 200;
            junk.has_ih = 9;
        }
        if (t != WIRE_PEER_UP) {
            junk.dialect = 77;
        }
        if (t != WIRE_MEMBER) {
            junk.seeder = 3;
        }
        if (t == WIRE_KICK || t == WIRE_RESET || t == WIRE_HELLO) {
            junk.id_len = 250;
        }
        if (t != WIRE_DELIVER && t != WIRE_KICK) {
            junk.payload = NULL;
            junk.payload_len = UINT32_MAX;
        }
        if (t != WIRE_DELIVER) {
            junk.from_slot = 1;
            junk.from_gen = 2;
        }
        if (t != WIRE_REFUSED) {
            junk.retry_ms = 3;
        }
        round_trip(&junk, &f);
    }

    /* A DELIVER as the relay sends it: an ST offer with a JSON text payload. */
    {
        raw_t f = sample(WIRE_DELIVER, 0);
        wire_rec_t r = rec_of(&f);

        r.kind = WIRE_ST_OFFER;
        r.payload = (const uint8_t *)sdp;
        r.payload_len = (uint32_t)strlen(sdp);
        round_trip(&r, NULL);
    }
}

/* Boundary values of every field that has bounds. */
static void test_round_trip_boundaries(void **state) {
    static const uint32_t u32s[] = {0, 1, 0x7FFFFFFF, 0x80000000, UINT32_MAX};
    static const uint8_t id_lens[] = {1, 2, 20, WIRE_MAX_ID_BYTES - 1, WIRE_MAX_ID_BYTES};
    static const uint32_t payload_lens[] = {0, 1, 125, WIRE_MAX_PAYLOAD_BYTES};
    uint8_t t;
    size_t i, j;
    unsigned k, h;

    (void)state;
    for (t = 1; t <= WIRE_TYPE_MAX; t++) {
        for (i = 0; i < sizeof(u32s) / sizeof(u32s[0]); i++) {
            for (j = 0; j < sizeof(id_lens) / sizeof(id_lens[0]); j++) {
                raw_t f = sample(t, (unsigned)(i + j));
                wire_rec_t r;

                f.slot = u32s[i];
                f.gen = u32s[(i + 1) % 5];
                f.from_slot = u32s[(i + 2) % 5];
                f.from_gen = u32s[(i + 3) % 5];
                f.retry_ms = u32s[(i + 4) % 5];
                if (t != WIRE_KICK && t != WIRE_RESET && t != WIRE_HELLO) {
                    f.id_len = id_lens[j];
                }
                r = rec_of(&f);
                round_trip(&r, &f);
            }
        }
    }
    for (k = 1; k <= 2; k++) {
        raw_t f = sample(WIRE_PEER_UP, 0);
        wire_rec_t r;

        f.dialect = (uint8_t)k;
        r = rec_of(&f);
        round_trip(&r, &f);
    }
    for (k = 0; k <= 1; k++) {
        raw_t f = sample(WIRE_MEMBER, 0);
        wire_rec_t r;

        f.seeder = (uint8_t)k;
        r = rec_of(&f);
        round_trip(&r, &f);
    }
    /* Every kind, with and without an infohash. */
    for (k = 1; k <= WIRE_KIND_MAX; k++) {
        for (h = 0; h <= 1; h++) {
            raw_t f = sample(WIRE_DELIVER, k);
            wire_rec_t r;

            f.kind = (uint8_t)k;
            f.has_ih = (uint8_t)h;
            r = rec_of(&f);
            round_trip(&r, &f);
            f = sample(WIRE_REFUSED, k);
            f.kind = (uint8_t)k;
            f.has_ih = (uint8_t)h;
            r = rec_of(&f);
            round_trip(&r, &f);
        }
    }
    /* Payloads from empty to the limit, for both types that carry one. */
    for (i = 0; i < sizeof(payload_lens) / sizeof(payload_lens[0]); i++) {
        raw_t f = sample(WIRE_DELIVER, 3);
        wire_rec_t r;

        f.payload_len = payload_lens[i];
        r = rec_of(&f);
        round_trip(&r, &f);
        f = sample(WIRE_KICK, 3);
        f.payload_len = payload_lens[i];
        r = rec_of(&f);
        round_trip(&r, &f);
    }
}

/* Many records of every type in one message come out in order, then the end, then the end. */
static void test_many_records(void **state) {
    buf_t b = {0};
    wire_reader_t rd;
    wire_rec_t got;
    uint64_t node;
    unsigned i;

    (void)state;
    wire_begin(&b, TEST_NODE);
    for (i = 0; i < TEST_MANY_RECORDS; i++) {
        raw_t f = sample((uint8_t)(1 + (i * 7) % TEST_TYPES), i);
        wire_rec_t r = rec_of(&f);

        assert_int_equal(wire_put(&b, &r), 0);
    }
    assert_int_equal(wire_open(&rd, b.data, b.len, &node), 0);
    for (i = 0; i < TEST_MANY_RECORDS; i++) {
        raw_t f = sample((uint8_t)(1 + (i * 7) % TEST_TYPES), i);
        wire_rec_t r = rec_of(&f);
        wire_rec_t want = normalized(&r);

        assert_int_equal(wire_next(&rd, &got), 1);
        expect_rec(&got, &want);
    }
    assert_int_equal(wire_next(&rd, &got), 0);
    assert_int_equal(wire_next(&rd, &got), 0);
    assert_int_equal(rd.off, b.len);
    buf_dispose(&b);
}

/* Every prefix of a message with each type (twice, with different shapes) decodes, from an
 * exactly-sized heap copy so that any read past the end trips AddressSanitizer, into the records
 * that fit whole, then ends cleanly when the cut is at a record boundary and is refused
 * otherwise. */
static void test_truncations(void **state) {
    enum { RECORDS = 2 * TEST_TYPES };
    buf_t b = {0};
    wire_rec_t want[RECORDS];
    size_t ends[RECORDS];
    size_t n, i;

    (void)state;
    wire_begin(&b, TEST_NODE);
    for (i = 0; i < RECORDS; i++) {
        raw_t f = sample((uint8_t)(1 + i % TEST_TYPES), (unsigned)i * 3 + 1);
        wire_rec_t r;

        if (f.type == WIRE_KICK || f.type == WIRE_DELIVER) {
            f.payload_len = (uint32_t)(i % 3 == 0 ? 0 : 9);
        }
        r = rec_of(&f);
        want[i] = normalized(&r);
        assert_int_equal(wire_put(&b, &r), 0);
        ends[i] = b.len;
    }
    for (n = 0; n <= b.len; n++) {
        uint8_t *copy = malloc(n > 0 ? n : 1);
        wire_reader_t rd;
        wire_rec_t got;
        uint64_t node;
        int rc;

        assert_non_null(copy);
        memcpy(copy, b.data, n);
        rc = wire_open(&rd, copy, n, &node);
        if (n < WIRE_HEADER_BYTES) {
            assert_int_equal(rc, -EBADMSG);
            assert_int_equal(wire_next(&rd, &got), 0);
            free(copy);
            continue;
        }
        assert_int_equal(rc, 0);
        for (i = 0; i < RECORDS && ends[i] <= n; i++) {
            assert_int_equal(wire_next(&rd, &got), 1);
            expect_rec(&got, &want[i]);
            /* A record's payload never reaches past the cut. */
            if (got.payload_len > 0) {
                assert_true(got.payload + got.payload_len <= copy + n);
            }
        }
        if (n == WIRE_HEADER_BYTES || (i > 0 && ends[i - 1] == n)) {
            assert_int_equal(wire_next(&rd, &got), 0);
        } else {
            assert_int_equal(wire_next(&rd, &got), -EBADMSG);
            expect_zero_rec(&got);
            assert_int_equal(wire_next(&rd, &got), 0);
        }
        free(copy);
    }
    buf_dispose(&b);
}

/* body_len must be exactly what the layout consumes: one byte more (with the byte present) or one
 * byte less is refused, for every type, as is a body_len that runs past the message. */
static void test_body_len_exact(void **state) {
    uint8_t t;

    (void)state;
    for (t = 1; t <= WIRE_TYPE_MAX; t++) {
        raw_t f = sample(t, 4);

        f.extra = 1; /* a trailing byte, counted in body_len */
        expect_raw_bad(&f);
        f.extra = 20;
        expect_raw_bad(&f);
        f.extra = 0;
        f.body_adjust = 1; /* body_len claims a byte the message does not have */
        expect_raw_bad(&f);
        f.body_adjust = (int64_t)UINT32_MAX; /* wraps to body_len - 1 */
        if (t != WIRE_RESET && t != WIRE_HELLO) {
            /* One byte less: the last field is cut. The byte is still in the message, where it
             * would be read as the next record's type. */
            expect_raw_bad(&f);
        }
    }
    /* A body_len near 2^32 on a short message. */
    {
        raw_t f = sample(WIRE_HELLO, 0);

        f.body_adjust = (int64_t)UINT32_MAX;
        expect_raw_bad(&f);
    }
    /* Inner lengths that disagree with body_len: an id_len or payload_len one too big or too
     * small, with body_len counting the bytes actually present. */
    {
        raw_t f = sample(WIRE_PEER_DOWN, 0);
        buf_t b = {0};

        f.id_len = 10;
        wire_begin(&b, TEST_NODE);
        raw_record(&b, &f);
        b.data[WIRE_HEADER_BYTES + 5 + 8] = 11; /* id_len */
        expect_bad(&b);
        b.data[WIRE_HEADER_BYTES + 5 + 8] = 9;
        expect_bad(&b);
        buf_dispose(&b);

        f = sample(WIRE_KICK, 0);
        f.payload_len = 10;
        wire_begin(&b, TEST_NODE);
        raw_record(&b, &f);
        b.data[WIRE_HEADER_BYTES + 5 + 8] = 11; /* payload_len, low byte */
        expect_bad(&b);
        b.data[WIRE_HEADER_BYTES + 5 + 8] = 9;
        expect_bad(&b);
        b.data[WIRE_HEADER_BYTES + 5 + 8] = 10;
        b.data[WIRE_HEADER_BYTES + 5 + 11] = 0x80; /* payload_len high byte: 2^31 + 10 */
        expect_bad(&b);
        buf_dispose(&b);
    }
    /* A record head cut short: fewer than 5 bytes left. */
    {
        static const uint8_t head[] = {'S', 'T', 1, 0, 0, 0, 0, 0, 0, 0, 0, WIRE_HELLO, 0, 0, 0};
        wire_reader_t rd;
        wire_rec_t got;
        uint64_t node;

        assert_int_equal(wire_open(&rd, head, sizeof(head), &node), 0);
        assert_int_equal(wire_next(&rd, &got), -EBADMSG);
        assert_int_equal(wire_next(&rd, &got), 0);
    }
}

/* Each rule on fields, broken alone in an otherwise consistent record, is refused. */
static void test_field_rules(void **state) {
    static const uint8_t bad_types[] = {0, WIRE_TYPE_MAX + 1, 100, 255};
    static const uint8_t bad_kinds[] = {WIRE_KIND_NONE, WIRE_KIND_MAX + 1, 255};
    static const uint8_t id_types[] = {WIRE_PEER_UP, WIRE_PEER_DOWN, WIRE_MEMBER,
                                       WIRE_LEAVE,   WIRE_DELIVER,   WIRE_REFUSED};
    raw_t f;
    size_t i, j;

    (void)state;
    for (i = 0; i < sizeof(bad_types); i++) {
        f = sample(WIRE_HELLO, 0);
        f.type = bad_types[i];
        expect_raw_bad(&f);
        /* Not even with a body. */
        f.extra = 12;
        expect_raw_bad(&f);
    }
    for (i = 0; i < sizeof(id_types); i++) {
        f = sample(id_types[i], 0);
        f.id_len = 0;
        expect_raw_bad(&f);
        f.id_len = WIRE_MAX_ID_BYTES + 1;
        expect_raw_bad(&f);
        f.id_len = 255;
        expect_raw_bad(&f);
    }
    for (i = 0; i < 256; i++) {
        if (i == 1 || i == 2) {
            continue;
        }
        f = sample(WIRE_PEER_UP, 0);
        f.dialect = (uint8_t)i;
        expect_raw_bad(&f);
    }
    for (i = 2; i < 256; i += 51) {
        f = sample(WIRE_MEMBER, 0);
        f.seeder = (uint8_t)i;
        expect_raw_bad(&f);
        f = sample(WIRE_DELIVER, 0);
        f.has_ih = (uint8_t)i;
        expect_raw_bad(&f);
        f = sample(WIRE_REFUSED, 0);
        f.has_ih = (uint8_t)i;
        expect_raw_bad(&f);
    }
    for (i = 0; i < sizeof(bad_kinds); i++) {
        for (j = 0; j <= 1; j++) {
            f = sample(WIRE_DELIVER, 0);
            f.kind = bad_kinds[i];
            f.has_ih = (uint8_t)j;
            expect_raw_bad(&f);
            f = sample(WIRE_REFUSED, 0);
            f.kind = bad_kinds[i];
            f.has_ih = (uint8_t)j;
            expect_raw_bad(&f);
        }
    }
    /* A payload one byte over the limit, though the message itself is small enough. */
    f = sample(WIRE_DELIVER, 0);
    f.payload_len = WIRE_MAX_PAYLOAD_BYTES + 1;
    expect_raw_bad(&f);
    f = sample(WIRE_KICK, 0);
    f.payload_len = WIRE_MAX_PAYLOAD_BYTES + 1;
    expect_raw_bad(&f);
}

/* A bad record stops the message: the valid records after it are not returned. */
static void test_error_stops_reader(void **state) {
    buf_t b = {0};
    raw_t good = sample(WIRE_LEAVE, 1);
    raw_t bad = sample(WIRE_MEMBER, 1);
    wire_reader_t rd;
    wire_rec_t got;
    wire_rec_t r = rec_of(&good);
    wire_rec_t want = normalized(&r);
    uint64_t node;

    (void)state;
    bad.seeder = 2;
    wire_begin(&b, TEST_NODE);
    raw_record(&b, &good);
    raw_record(&b, &bad);
    raw_record(&b, &good);
    assert_int_equal(wire_open(&rd, b.data, b.len, &node), 0);
    assert_int_equal(wire_next(&rd, &got), 1);
    expect_rec(&got, &want);
    assert_int_equal(wire_next(&rd, &got), -EBADMSG);
    assert_int_equal(wire_next(&rd, &got), 0);
    assert_int_equal(wire_next(&rd, &got), 0);
    buf_dispose(&b);
}

static void test_bad_header(void **state) {
    buf_t b = {0};
    wire_reader_t rd;
    wire_rec_t got;
    uint64_t node = 42;
    size_t i;

    (void)state;
    wire_begin(&b, TEST_NODE);
    {
        raw_t f = sample(WIRE_RESET, 0);
        raw_record(&b, &f);
    }
    for (i = 0; i < 3; i++) {
        static const uint8_t wrong[3][3] = {{'s', 'X', 0}, {'S', 't', 0}, {0, 2, 255}};
        size_t k;

        for (k = 0; k < 3; k++) {
            uint8_t keep = b.data[i];

            b.data[i] = wrong[i][k];
            assert_int_equal(wire_open(&rd, b.data, b.len, &node), -EBADMSG);
            assert_true(node == 42);
            /* A refused message reads as empty. */
            assert_int_equal(wire_next(&rd, &got), 0);
            b.data[i] = keep;
        }
    }
    assert_int_equal(wire_open(&rd, b.data, b.len, &node), 0);
    assert_int_equal(wire_open(&rd, b.data, WIRE_HEADER_BYTES - 1, &node), -EBADMSG);
    assert_int_equal(wire_open(&rd, NULL, 0, &node), -EBADMSG);
    assert_int_equal(wire_next(&rd, &got), 0);
    buf_dispose(&b);
}

/* A message of exactly WIRE_MAX_MESSAGE_BYTES is read; one byte more is refused as a whole. */
static void test_message_size(void **state) {
    buf_t b = {0};
    wire_reader_t rd;
    wire_rec_t got;
    uint64_t node;
    unsigned records = 0;
    int rc;

    (void)state;
    wire_begin(&b, TEST_NODE);
    /* KICKs of up to the largest payload, the last one sized to land on the limit. */
    while (b.len < WIRE_MAX_MESSAGE_BYTES) {
        size_t room = WIRE_MAX_MESSAGE_BYTES - b.len - 5 - 12;
        raw_t f = sample(WIRE_KICK, records);
        wire_rec_t r;

        f.payload_len = (uint32_t)(room < WIRE_MAX_PAYLOAD_BYTES ? room : WIRE_MAX_PAYLOAD_BYTES);
        r = rec_of(&f);
        assert_int_equal(wire_put(&b, &r), 0);
        records++;
    }
    assert_int_equal(b.len, WIRE_MAX_MESSAGE_BYTES);
    assert_int_equal(wire_open(&rd, b.data, b.len, &node), 0);
    while ((rc = wire_next(&rd, &got)) == 1) {
        records--;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(records, 0);

    buf_reserve(&b, 1);
    b.data[b.len] = 0;
    assert_int_equal(wire_open(&rd, b.data, b.len + 1, &node), -EMSGSIZE);
    assert_int_equal(wire_next(&rd, &got), 0);
    /* The size is checked before anything else. */
    b.data[0] = 'X';
    assert_int_equal(wire_open(&rd, b.data, b.len + 1, &node), -EMSGSIZE);
    assert_int_equal(wire_open(&rd, b.data, (size_t)UINT32_MAX + 1, &node), -EMSGSIZE);
    buf_dispose(&b);
}

/* wire_put refuses every out-of-range field and appends nothing. */
static void test_put_refuses(void **state) {
    static const uint8_t id_types[] = {WIRE_PEER_UP, WIRE_PEER_DOWN, WIRE_MEMBER,
                                       WIRE_LEAVE,   WIRE_DELIVER,   WIRE_REFUSED};
    buf_t b = {0};
    raw_t f;
    wire_rec_t r;
    size_t i;

    (void)state;
    wire_begin(&b, TEST_NODE);
    f = sample(WIRE_HELLO, 0);
    r = rec_of(&f);
    r.type = 0;
    expect_put_refused(&b, &r);
    r.type = WIRE_TYPE_MAX + 1;
    expect_put_refused(&b, &r);
    r.type = 255;
    expect_put_refused(&b, &r);
    for (i = 0; i < sizeof(id_types); i++) {
        f = sample(id_types[i], 0);
        r = rec_of(&f);
        r.id_len = 0;
        expect_put_refused(&b, &r);
        r.id_len = WIRE_MAX_ID_BYTES + 1;
        expect_put_refused(&b, &r);
        r.id_len = 255;
        expect_put_refused(&b, &r);
    }
    f = sample(WIRE_PEER_UP, 0);
    r = rec_of(&f);
    r.dialect = 0;
    expect_put_refused(&b, &r);
    r.dialect = 3;
    expect_put_refused(&b, &r);
    f = sample(WIRE_MEMBER, 0);
    r = rec_of(&f);
    r.seeder = 2;
    expect_put_refused(&b, &r);
    for (i = 0; i < 2; i++) {
        f = sample(i == 0 ? WIRE_DELIVER : WIRE_REFUSED, 0);
        r = rec_of(&f);
        r.kind = WIRE_KIND_NONE;
        expect_put_refused(&b, &r);
        r.kind = WIRE_KIND_MAX + 1;
        expect_put_refused(&b, &r);
        r.kind = WIRE_ST_OFFER;
        r.has_ih = 2;
        expect_put_refused(&b, &r);
    }
    for (i = 0; i < 2; i++) {
        f = sample(i == 0 ? WIRE_DELIVER : WIRE_KICK, 0);
        r = rec_of(&f);
        r.payload_len = WIRE_MAX_PAYLOAD_BYTES + 1;
        expect_put_refused(&b, &r);
        r.payload_len = UINT32_MAX;
        expect_put_refused(&b, &r);
        /* A payload length without a payload. */
        r.payload_len = 1;
        r.payload = NULL;
        expect_put_refused(&b, &r);
        /* An empty payload needs no pointer. */
        r.payload_len = 0;
        assert_int_equal(wire_put(&b, &r), 0);
        buf_dispose(&b);
        wire_begin(&b, TEST_NODE);
    }
    buf_dispose(&b);

    /* Into an empty, unallocated buffer: it stays unallocated. */
    f = sample(WIRE_MEMBER, 0);
    r = rec_of(&f);
    r.seeder = 7;
    assert_int_equal(wire_put(&b, &r), -EINVAL);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_layout_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip_every_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip_boundaries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_len_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_field_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_stops_reader, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_message_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_refuses, setup, teardown),
    };
    size_t i;

    for (i = 0; i < sizeof(big_payload); i++) {
        big_payload[i] = (uint8_t)(i * 31 + (i >> 8));
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
