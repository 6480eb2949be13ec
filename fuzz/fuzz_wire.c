/* fuzz_wire.c: libFuzzer driver for the node-to-node message codec (cluster/wire.c). Messages
 * come from Redis and are not trusted, so the reader must survive any bytes; and since a decoded
 * record has exactly one encoding, whatever the reader accepts the writer must give back byte for
 * byte.
 *
 * Byte 0 of the input chooses the mode (its value modulo 3); the rest is the data.
 *   0  the data is a whole message, header included
 *   1  the data is the records of a message; the driver writes a valid header before them (so
 *      that the fuzzer spends no effort finding the magic)
 *   2  the data describes records (see build_record); each is written with wire_put, then the
 *      message is read back and every record compared with what was put
 * In modes 0 and 1, every record read must write back (wire_put returns 0) to the very bytes it
 * was read from and read again to an equal record, the reader must end (within one step per five
 * bytes), and after -EBADMSG it must stay at the end. Any broken invariant aborts. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/wire.h"
#include "core/buf.h"

/* Bytes of a record's head (type, body_len): the least a record can take. */
#define REC_HEAD_BYTES 5
/* Node ID the driver writes into the headers it makes. */
#define FUZZ_NODE 0x1122334455667788ULL
/* A payload source for mode 2 that is large enough for the limit plus one byte. */
static uint8_t big_payload[WIRE_MAX_PAYLOAD_BYTES + 1];

/* Aborts with a message when cond is false, so that libFuzzer records the input. */
static void require(int cond, const char *what) {
    if (!cond) {
        fprintf(stderr, "fuzz_wire: invariant broken: %s\n", what);
        abort();
    }
}

/* Returns 1 when records a and b are equal field by field, payloads compared by their bytes. */
static int rec_equal(const wire_rec_t *a, const wire_rec_t *b) {
    return a->type == b->type && a->kind == b->kind && a->dialect == b->dialect &&
           a->seeder == b->seeder && a->has_ih == b->has_ih && a->id_len == b->id_len &&
           a->slot == b->slot && a->gen == b->gen && a->from_slot == b->from_slot &&
           a->from_gen == b->from_gen && a->retry_ms == b->retry_ms &&
           memcmp(a->id, b->id, sizeof(a->id)) == 0 && memcmp(a->ih, b->ih, sizeof(a->ih)) == 0 &&
           memcmp(a->offer_id, b->offer_id, sizeof(a->offer_id)) == 0 &&
           a->payload_len == b->payload_len &&
           (a->payload_len == 0 || memcmp(a->payload, b->payload, a->payload_len) == 0);
}

/* Returns 1 when r is all zeros, as the reader leaves it when it returns no record. */
static int rec_zero(const wire_rec_t *r) {
    wire_rec_t zero;

    memset(&zero, 0, sizeof(zero));
    return rec_equal(r, &zero) && r->payload == NULL;
}

static int type_has_id(unsigned t) {
    return t == WIRE_PEER_UP || t == WIRE_PEER_DOWN || t == WIRE_MEMBER || t == WIRE_LEAVE ||
           t == WIRE_DELIVER || t == WIRE_REFUSED;
}

/* The driver's own model of the rules in wire.h and wire.c: 1 when wire_put must accept r. */
static int model_valid(const wire_rec_t *r) {
    unsigned t = r->type;

    if (t < 1 || t > WIRE_TYPE_MAX) {
        return 0;
    }
    if (type_has_id(t) && (r->id_len == 0 || r->id_len > WIRE_MAX_ID_BYTES)) {
        return 0;
    }
    if (t == WIRE_PEER_UP && r->dialect != 1 && r->dialect != 2) {
        return 0;
    }
    if (t == WIRE_MEMBER && r->seeder > 1) {
        return 0;
    }
    if ((t == WIRE_DELIVER || t == WIRE_REFUSED) &&
        (r->kind < 1 || r->kind > WIRE_KIND_MAX || r->has_ih > 1)) {
        return 0;
    }
    if ((t == WIRE_DELIVER || t == WIRE_KICK) &&
        (r->payload_len > WIRE_MAX_PAYLOAD_BYTES || (r->payload_len > 0 && r->payload == NULL))) {
        return 0;
    }
    return 1;
}

/* Returns r with the fields its type does not use zeroed: what the reader returns for it. */
static wire_rec_t model_normalized(const wire_rec_t *r) {
    wire_rec_t n;
    unsigned t = r->type;

    memset(&n, 0, sizeof(n));
    n.type = r->type;
    if (t == WIRE_PEER_UP || t == WIRE_PEER_DOWN || t == WIRE_DELIVER || t == WIRE_REFUSED ||
        t == WIRE_KICK) {
        n.slot = r->slot;
        n.gen = r->gen;
    }
    if (type_has_id(t)) {
        n.id_len = r->id_len;
        memcpy(n.id, r->id, r->id_len);
    }
    if (t == WIRE_PEER_UP) {
        n.dialect = r->dialect;
    }
    if (t == WIRE_MEMBER) {
        n.seeder = r->seeder;
    }
    if (t == WIRE_DELIVER || t == WIRE_REFUSED) {
        n.kind = r->kind;
        n.has_ih = r->has_ih;
    }
    if (t == WIRE_MEMBER || t == WIRE_LEAVE ||
        ((t == WIRE_DELIVER || t == WIRE_REFUSED) && r->has_ih)) {
        memcpy(n.ih, r->ih, sizeof(n.ih));
    }
    if (t == WIRE_DELIVER) {
        n.from_slot = r->from_slot;
        n.from_gen = r->from_gen;
        if (r->kind == WIRE_WT_OFFER || r->kind == WIRE_WT_ANSWER) {
            memcpy(n.offer_id, r->offer_id, sizeof(n.offer_id));
        }
    }
    if (t == WIRE_REFUSED) {
        n.retry_ms = r->retry_ms;
    }
    if ((t == WIRE_DELIVER || t == WIRE_KICK) && r->payload_len > 0) {
        n.payload = r->payload;
        n.payload_len = r->payload_len;
    }
    return n;
}

/* Checks that a record the reader accepted follows the rules, has its unused fields zeroed, and
 * its payload inside the message. */
static void check_decoded(const wire_rec_t *r, const uint8_t *msg, size_t n) {
    wire_rec_t norm = model_normalized(r);

    require(model_valid(r), "decoded record follows the rules");
    require(rec_equal(r, &norm), "unused fields are zero");
    require((r->payload_len == 0) == (r->payload == NULL), "payload NULL exactly when empty");
    if (r->payload_len > 0) {
        require(r->payload >= msg && r->payload_len <= n && r->payload <= msg + n - r->payload_len,
                "payload inside the message");
    }
}

/* Reads message msg[0..n) to its end and checks every invariant of modes 0 and 1. */
static void check_message(const uint8_t *msg, size_t n) {
    wire_reader_t rd;
    uint64_t node = 0;
    buf_t out = {0};
    size_t steps = 0;
    size_t good_end;
    int rc;

    rc = wire_open(&rd, msg, n, &node);
    require(rc == 0 || rc == -EBADMSG || rc == -EMSGSIZE, "open result");
    if (rc != 0) {
        wire_rec_t r;

        require(n < WIRE_HEADER_BYTES || n > WIRE_MAX_MESSAGE_BYTES ||
                    memcmp(msg, "ST\x01", 3) != 0,
                "a refused header is wrong");
        require(wire_next(&rd, &r) == 0 && rec_zero(&r), "a refused message reads as empty");
        return;
    }
    require(n >= WIRE_HEADER_BYTES && memcmp(msg, "ST\x01", 3) == 0, "an accepted header");
    wire_begin(&out, node);
    require(out.len == WIRE_HEADER_BYTES && memcmp(out.data, msg, WIRE_HEADER_BYTES) == 0,
            "header writes back");
    good_end = rd.off;
    for (;;) {
        wire_rec_t r;
        size_t before = rd.off;

        require(++steps <= (n - WIRE_HEADER_BYTES) / REC_HEAD_BYTES + 1, "reader ends");
        rc = wire_next(&rd, &r);
        require(rc == 1 || rc == 0 || rc == -EBADMSG, "next result");
        if (rc != 1) {
            require(rec_zero(&r), "no partial record");
            require(rc == -EBADMSG || before == n, "the end is the end of the message");
            require(wire_next(&rd, &r) == 0 && rec_zero(&r), "the reader stays at the end");
            break;
        }
        require(rd.off > before && rd.off <= n, "reader moves forward within the message");
        check_decoded(&r, msg, n);

        /* The record writes back to the very bytes it was read from. */
        require(wire_put(&out, &r) == 0, "a decoded record writes back");
        require(out.len == rd.off && memcmp(out.data + before, msg + before, rd.off - before) == 0,
                "the encoding is unique");
        good_end = rd.off;

        /* And those bytes, alone in a message, read back to an equal record. */
        {
            buf_t one = {0};
            wire_reader_t rd2;
            wire_rec_t again;
            uint64_t node2 = 0;

            wire_begin(&one, node);
            require(wire_put(&one, &r) == 0, "writes back alone");
            require(wire_open(&rd2, one.data, one.len, &node2) == 0 && node2 == node, "reopens");
            require(wire_next(&rd2, &again) == 1 && rec_equal(&again, &r), "reads back equal");
            require(wire_next(&rd2, &again) == 0, "one record");
            buf_dispose(&one);
        }
    }
    require(out.len == good_end && memcmp(out.data, msg, good_end) == 0,
            "the accepted records write back to the message's prefix");
    buf_dispose(&out);
}

/* A cursor over the fuzz data for mode 2; reading past the end yields zeros. */
typedef struct src {
    const uint8_t *p;
    size_t n;
} src_t;

static uint8_t src_u8(src_t *s) {
    uint8_t v = 0;

    if (s->n > 0) {
        v = s->p[0];
        s->p++;
        s->n--;
    }
    return v;
}

static uint32_t src_u32(src_t *s) {
    uint32_t v = 0;
    int i;

    for (i = 0; i < 4; i++) {
        v |= (uint32_t)src_u8(s) << (8 * i);
    }
    return v;
}

/* Fills r from the data. Flags and enums are taken mostly in range and sometimes out of it, so
 * that both the accept and the refuse paths of wire_put are reached. */
static void build_record(src_t *s, wire_rec_t *r) {
    uint8_t sel = src_u8(s);
    uint8_t len_sel;
    size_t i;

    memset(r, 0, sizeof(*r));
    r->type = (uint8_t)(sel % (WIRE_TYPE_MAX + 2)); /* 0 and TYPE_MAX + 1 are invalid */
    r->kind = src_u8(s);
    if ((sel & 0x80) == 0) {
        r->kind = (uint8_t)(r->kind % (WIRE_KIND_MAX + 1));
    }
    r->dialect = src_u8(s);
    r->seeder = src_u8(s);
    r->has_ih = src_u8(s);
    if ((sel & 0x40) == 0) {
        r->dialect = (uint8_t)(1 + r->dialect % 2);
        r->seeder &= 1;
        r->has_ih &= 1;
    }
    r->id_len = src_u8(s);
    if ((sel & 0x20) == 0) {
        r->id_len = (uint8_t)(r->id_len % (WIRE_MAX_ID_BYTES + 1));
    }
    r->slot = src_u32(s);
    r->gen = src_u32(s);
    r->from_slot = src_u32(s);
    r->from_gen = src_u32(s);
    r->retry_ms = src_u32(s);
    for (i = 0; i < sizeof(r->id); i++) {
        r->id[i] = (uint8_t)(i < r->id_len ? src_u8(s) : 0xA5); /* junk past id_len */
    }
    for (i = 0; i < sizeof(r->ih); i++) {
        r->ih[i] = src_u8(s);
    }
    for (i = 0; i < sizeof(r->offer_id); i++) {
        r->offer_id[i] = src_u8(s);
    }
    /* The payload: usually the next bytes of the data, sometimes the largest one allowed or one
     * byte more, sometimes a length with no pointer. */
    len_sel = src_u8(s);
    if (len_sel == 0xFF) {
        r->payload = big_payload;
        r->payload_len = WIRE_MAX_PAYLOAD_BYTES + (src_u8(s) & 1);
    } else if (len_sel == 0xFE) {
        r->payload = NULL;
        r->payload_len = src_u8(s);
    } else {
        r->payload_len = len_sel < s->n ? len_sel : (uint32_t)s->n;
        r->payload = s->p;
        s->p += r->payload_len;
        s->n -= r->payload_len;
    }
}

/* Mode 2: writes the records the data describes, then reads them back. */
static void check_built(const uint8_t *data, size_t size) {
    /* Records kept for the comparison; more than any input of libFuzzer's default -max_len makes.
     */
    enum { MAX_RECORDS = 64 };
    wire_rec_t put[MAX_RECORDS];
    size_t count = 0;
    src_t s = {data, size};
    buf_t b = {0};
    wire_reader_t rd;
    uint64_t node = 0;
    wire_rec_t got;
    size_t i;

    wire_begin(&b, FUZZ_NODE);
    while (s.n > 0 && count < MAX_RECORDS) {
        wire_rec_t r;
        uint32_t len = b.len;
        int rc;

        build_record(&s, &r);
        rc = wire_put(&b, &r);
        require(rc == 0 || rc == -EINVAL, "put result");
        require((rc == 0) == model_valid(&r), "put accepts exactly the valid records");
        if (rc != 0) {
            require(b.len == len, "a refused record appends nothing");
            continue;
        }
        put[count++] = model_normalized(&r);
    }
    require(wire_open(&rd, b.data, b.len, &node) == 0 && node == FUZZ_NODE, "open what we wrote");
    for (i = 0; i < count; i++) {
        require(wire_next(&rd, &got) == 1, "read back every record");
        check_decoded(&got, b.data, b.len);
        require(rec_equal(&got, &put[i]), "read back what was put");
    }
    require(wire_next(&rd, &got) == 0, "nothing more");
    /* What the writer wrote passes the reader's own checks too. */
    check_message(b.data, b.len);
    buf_dispose(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    unsigned mode;

    if (size == 0) {
        return 0;
    }
    if (big_payload[1] == 0) {
        size_t i;

        for (i = 0; i < sizeof(big_payload); i++) {
            big_payload[i] = (uint8_t)(i * 13 + 1);
        }
    }
    mode = data[0] % 3;
    data++;
    size--;
    if (mode == 0) {
        /* An exactly-sized heap copy, so that any read past the end trips AddressSanitizer
         * (libFuzzer's own buffer is exact too, but this keeps the check local). */
        uint8_t *copy = malloc(size > 0 ? size : 1);

        require(copy != NULL, "malloc");
        if (size > 0) {
            memcpy(copy, data, size);
        }
        check_message(copy, size);
        free(copy);
    } else if (mode == 1) {
        buf_t b = {0};
        uint8_t *copy;

        wire_begin(&b, FUZZ_NODE);
        buf_append(&b, data, size);
        copy = malloc(b.len);
        require(copy != NULL, "malloc");
        memcpy(copy, b.data, b.len);
        check_message(copy, b.len);
        free(copy);
        buf_dispose(&b);
    } else {
        check_built(data, size);
    }
    return 0;
}
