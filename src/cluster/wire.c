/* wire.c: the node-to-node message codec. Pure: no I/O, no globals, and no allocation while
 * reading (wire_put grows the caller's buffer).
 *
 * Byte layout of each record body, all integers little-endian. "id" is id_len(u8) followed by
 * id_len bytes; "payload" is payload_len(u32) followed by payload_len bytes. ih and offer_id are
 * 20 raw bytes, present only where the layout says so.
 *
 *   PEER_UP    slot(u32) gen(u32) dialect(u8) id                       10 + id_len
 *   PEER_DOWN  slot(u32) gen(u32) id                                   9 + id_len
 *   MEMBER     ih[20] seeder(u8) id                                    22 + id_len
 *   LEAVE      ih[20] id                                               21 + id_len
 *   RESET      (empty)                                                 0
 *   HELLO      (empty)                                                 0
 *   DELIVER    kind(u8) has_ih(u8) slot(u32) gen(u32) from_slot(u32) from_gen(u32) id
 *              [ih[20] when has_ih = 1] [offer_id[20] when kind is WT_OFFER or WT_ANSWER]
 *              payload                           23 + id_len + 20 has_ih + 20 wt + payload_len
 *   REFUSED    kind(u8) has_ih(u8) slot(u32) gen(u32) retry_ms(u32) id
 *              [ih[20] when has_ih = 1]                                15 + id_len + 20 has_ih
 *   KICK       slot(u32) gen(u32) payload                              12 + payload_len
 *
 * Every field that decides the shape of the rest (kind, has_ih, id_len) comes before what it
 * shapes, so a body is read front to back in one pass.
 *
 * Rules on fields, the same for wire_put (which refuses with -EINVAL) and wire_next (which
 * refuses with -EBADMSG), so that every record one node can write, every node can read:
 *   - every record that carries an id needs one: 1 <= id_len <= WIRE_MAX_ID_BYTES (a peer is
 *     always named; an empty ID would match nothing on the receiving side);
 *   - dialect is 1 (ST) or 2 (WebTorrent); seeder and has_ih are 0 or 1;
 *   - kind is 1..WIRE_KIND_MAX for DELIVER and REFUSED;
 *   - payload_len <= WIRE_MAX_PAYLOAD_BYTES, and may be 0 (an empty KICK reason; the codec does
 *     not judge a DELIVER's frame text, the receiving dialect does); wire_put also refuses a
 *     payload_len above 0 with a NULL payload.
 * wire_put does not watch the message's size: the largest record (a DELIVER with the largest
 * payload) is just over 1 MiB, well under WIRE_MAX_MESSAGE_BYTES, and splitting at
 * WIRE_SPLIT_BYTES is the writer's job, as wire.h says.
 * A decoded record with payload_len 0 has payload NULL. Everything a type does not use is zero
 * in a decoded record, so that the encoding of a record is unique: decoding then encoding gives
 * back the same bytes. */
#include "cluster/wire.h"

#include <errno.h>
#include <string.h>

/* The magic that starts every message. */
#define MAGIC0 'S'
#define MAGIC1 'T'
/* Bytes of a record's head: type(u8) body_len(u32). */
#define REC_HEAD_BYTES 5
/* Bytes of an infohash and of a WebTorrent offer ID. */
#define HASH_BYTES 20
/* Dialects a PEER_UP may name. */
#define DIALECT_ST 1
#define DIALECT_WT 2

/* A bounded read cursor over one record body. Reads past the end fail (ok becomes 0) and return
 * zeros, so a decoder reads its whole layout and checks ok once at the end. */
typedef struct cursor {
    const uint8_t *p;
    size_t len;
    size_t off;
    int ok;
} cursor_t;

static void put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t load_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Returns a pointer to the next n bytes of the body and moves past them, or NULL (with ok
 * cleared) when fewer than n remain. */
static const uint8_t *take(cursor_t *c, size_t n) {
    const uint8_t *q;

    if (!c->ok || c->len - c->off < n) {
        c->ok = 0;
        return NULL;
    }
    q = c->p + c->off;
    c->off += n;
    return q;
}

static uint8_t get_u8(cursor_t *c) {
    const uint8_t *q = take(c, 1);

    return q != NULL ? q[0] : 0;
}

static uint32_t get_u32(cursor_t *c) {
    const uint8_t *q = take(c, 4);

    return q != NULL ? load_u32(q) : 0;
}

static void get_hash(cursor_t *c, uint8_t out[HASH_BYTES]) {
    const uint8_t *q = take(c, HASH_BYTES);

    if (q != NULL) {
        memcpy(out, q, HASH_BYTES);
    }
}

/* Reads an id into r. The length is checked before the copy, as id[] holds only
 * WIRE_MAX_ID_BYTES. */
static void get_id(cursor_t *c, wire_rec_t *r) {
    uint8_t n = get_u8(c);
    const uint8_t *q;

    if (n > WIRE_MAX_ID_BYTES) {
        c->ok = 0;
        return;
    }
    q = take(c, n);
    if (q != NULL) {
        r->id_len = n;
        memcpy(r->id, q, n);
    }
}

/* Reads a payload into r as a pointer into the message. */
static void get_payload(cursor_t *c, wire_rec_t *r) {
    uint32_t n = get_u32(c);
    const uint8_t *q = take(c, n);

    if (q != NULL) {
        r->payload_len = n;
        r->payload = n > 0 ? q : NULL;
    }
}

/* Returns 1 for the DELIVER kinds that carry a WebTorrent offer_id. */
static int kind_has_offer_id(unsigned kind) {
    return kind == WIRE_WT_OFFER || kind == WIRE_WT_ANSWER;
}

/* Returns 1 when the type carries an id. */
static int type_has_id(unsigned type) {
    return type == WIRE_PEER_UP || type == WIRE_PEER_DOWN || type == WIRE_MEMBER ||
           type == WIRE_LEAVE || type == WIRE_DELIVER || type == WIRE_REFUSED;
}

/* Returns 1 for a kind a DELIVER or REFUSED may carry. */
static int kind_valid(unsigned kind) {
    return kind >= WIRE_ST_OFFER && kind <= WIRE_KIND_MAX;
}

/* Returns 1 when r's payload is within its limit and, when not empty, present. */
static int payload_valid(const wire_rec_t *r) {
    return r->payload_len <= WIRE_MAX_PAYLOAD_BYTES && (r->payload_len == 0 || r->payload != NULL);
}

/* Returns 1 when the fields type r->type uses are in range (see the rules at the top). Both the
 * writer and the reader call it, so they cannot disagree on what a valid record is. */
static int rec_valid(const wire_rec_t *r) {
    if (r->type < WIRE_PEER_UP || r->type > WIRE_TYPE_MAX) {
        return 0;
    }
    if (type_has_id(r->type) && (r->id_len < 1 || r->id_len > WIRE_MAX_ID_BYTES)) {
        return 0;
    }
    switch (r->type) {
    case WIRE_PEER_UP:
        return r->dialect == DIALECT_ST || r->dialect == DIALECT_WT;
    case WIRE_MEMBER:
        return r->seeder <= 1;
    case WIRE_DELIVER:
        return kind_valid(r->kind) && r->has_ih <= 1 && payload_valid(r);
    case WIRE_REFUSED:
        return kind_valid(r->kind) && r->has_ih <= 1;
    case WIRE_KICK:
        return payload_valid(r);
    default: /* PEER_DOWN, LEAVE, RESET, HELLO: nothing beyond the id */
        return 1;
    }
}

/* Returns the body length of a valid record r, per the layout at the top. */
static size_t body_size(const wire_rec_t *r) {
    size_t id = 1 + (size_t)r->id_len;
    size_t payload = 4 + (size_t)r->payload_len;

    switch (r->type) {
    case WIRE_PEER_UP:
        return 4 + 4 + 1 + id;
    case WIRE_PEER_DOWN:
        return 4 + 4 + id;
    case WIRE_MEMBER:
        return HASH_BYTES + 1 + id;
    case WIRE_LEAVE:
        return HASH_BYTES + id;
    case WIRE_DELIVER:
        return 2 + 4 * 4 + id + (r->has_ih ? HASH_BYTES : 0) +
               (kind_has_offer_id(r->kind) ? HASH_BYTES : 0) + payload;
    case WIRE_REFUSED:
        return 2 + 3 * 4 + id + (r->has_ih ? HASH_BYTES : 0);
    case WIRE_KICK:
        return 4 + 4 + payload;
    default: /* RESET, HELLO */
        return 0;
    }
}

void wire_begin(buf_t *b, uint64_t from_node) {
    uint8_t h[WIRE_HEADER_BYTES];
    int i;

    h[0] = MAGIC0;
    h[1] = MAGIC1;
    h[2] = WIRE_VERSION;
    for (i = 0; i < 8; i++) {
        h[3 + i] = (uint8_t)(from_node >> (8 * i));
    }
    buf_append(b, h, sizeof(h));
}

/* Writers for wire_put: each stores at *w and returns the position after what it wrote. */
static uint8_t *w_u8(uint8_t *w, uint8_t v) {
    *w = v;
    return w + 1;
}

static uint8_t *w_u32(uint8_t *w, uint32_t v) {
    put_u32(w, v);
    return w + 4;
}

static uint8_t *w_bytes(uint8_t *w, const uint8_t *p, size_t n) {
    if (n > 0) {
        memcpy(w, p, n);
    }
    return w + n;
}

static uint8_t *w_id(uint8_t *w, const wire_rec_t *r) {
    return w_bytes(w_u8(w, r->id_len), r->id, r->id_len);
}

static uint8_t *w_payload(uint8_t *w, const wire_rec_t *r) {
    return w_bytes(w_u32(w, r->payload_len), r->payload, r->payload_len);
}

int wire_put(buf_t *b, const wire_rec_t *r) {
    size_t body;
    uint8_t *start;
    uint8_t *w;

    /* Everything is checked before the buffer is touched, so a refused record leaves no trace. */
    if (!rec_valid(r)) {
        return -EINVAL;
    }
    body = body_size(r);
    start = buf_reserve(b, REC_HEAD_BYTES + body);
    w = w_u8(start, r->type);
    w = w_u32(w, (uint32_t)body);
    switch (r->type) {
    case WIRE_PEER_UP:
        w = w_u32(w, r->slot);
        w = w_u32(w, r->gen);
        w = w_u8(w, r->dialect);
        w = w_id(w, r);
        break;
    case WIRE_PEER_DOWN:
        w = w_u32(w, r->slot);
        w = w_u32(w, r->gen);
        w = w_id(w, r);
        break;
    case WIRE_MEMBER:
        w = w_bytes(w, r->ih, HASH_BYTES);
        w = w_u8(w, r->seeder);
        w = w_id(w, r);
        break;
    case WIRE_LEAVE:
        w = w_bytes(w, r->ih, HASH_BYTES);
        w = w_id(w, r);
        break;
    case WIRE_DELIVER:
        w = w_u8(w, r->kind);
        w = w_u8(w, r->has_ih);
        w = w_u32(w, r->slot);
        w = w_u32(w, r->gen);
        w = w_u32(w, r->from_slot);
        w = w_u32(w, r->from_gen);
        w = w_id(w, r);
        if (r->has_ih) {
            w = w_bytes(w, r->ih, HASH_BYTES);
        }
        if (kind_has_offer_id(r->kind)) {
            w = w_bytes(w, r->offer_id, HASH_BYTES);
        }
        w = w_payload(w, r);
        break;
    case WIRE_REFUSED:
        w = w_u8(w, r->kind);
        w = w_u8(w, r->has_ih);
        w = w_u32(w, r->slot);
        w = w_u32(w, r->gen);
        w = w_u32(w, r->retry_ms);
        w = w_id(w, r);
        if (r->has_ih) {
            w = w_bytes(w, r->ih, HASH_BYTES);
        }
        break;
    case WIRE_KICK:
        w = w_u32(w, r->slot);
        w = w_u32(w, r->gen);
        w = w_payload(w, r);
        break;
    default: /* RESET, HELLO: no body */
        break;
    }
    b->len += (uint32_t)(w - start);
    return 0;
}

int wire_open(wire_reader_t *rd, const uint8_t *p, size_t n, uint64_t *from_node) {
    uint64_t node = 0;
    int i;

    /* A refused message leaves an empty reader, so a caller that reads on anyway gets no record. */
    rd->p = p;
    rd->len = 0;
    rd->off = 0;
    if (n > WIRE_MAX_MESSAGE_BYTES) {
        return -EMSGSIZE;
    }
    if (n < WIRE_HEADER_BYTES || p[0] != MAGIC0 || p[1] != MAGIC1 || p[2] != WIRE_VERSION) {
        return -EBADMSG;
    }
    for (i = 0; i < 8; i++) {
        node |= (uint64_t)p[3 + i] << (8 * i);
    }
    *from_node = node;
    rd->len = n;
    rd->off = WIRE_HEADER_BYTES;
    return 0;
}

/* Decodes body c of a record of type r->type into r. Returns 1 when the body follows the type's
 * layout exactly, to its last byte, and the fields are in range. */
static int decode_body(cursor_t *c, wire_rec_t *r) {
    switch (r->type) {
    case WIRE_PEER_UP:
        r->slot = get_u32(c);
        r->gen = get_u32(c);
        r->dialect = get_u8(c);
        get_id(c, r);
        break;
    case WIRE_PEER_DOWN:
        r->slot = get_u32(c);
        r->gen = get_u32(c);
        get_id(c, r);
        break;
    case WIRE_MEMBER:
        get_hash(c, r->ih);
        r->seeder = get_u8(c);
        get_id(c, r);
        break;
    case WIRE_LEAVE:
        get_hash(c, r->ih);
        get_id(c, r);
        break;
    case WIRE_RESET:
    case WIRE_HELLO:
        break;
    case WIRE_DELIVER:
        r->kind = get_u8(c);
        r->has_ih = get_u8(c);
        r->slot = get_u32(c);
        r->gen = get_u32(c);
        r->from_slot = get_u32(c);
        r->from_gen = get_u32(c);
        get_id(c, r);
        /* has_ih above 1 and unknown kinds are refused by rec_valid below; until then they only
         * decide which optional parts are read, which cannot overrun the body. */
        if (r->has_ih) {
            get_hash(c, r->ih);
        }
        if (kind_has_offer_id(r->kind)) {
            get_hash(c, r->offer_id);
        }
        get_payload(c, r);
        break;
    case WIRE_REFUSED:
        r->kind = get_u8(c);
        r->has_ih = get_u8(c);
        r->slot = get_u32(c);
        r->gen = get_u32(c);
        r->retry_ms = get_u32(c);
        get_id(c, r);
        if (r->has_ih) {
            get_hash(c, r->ih);
        }
        break;
    case WIRE_KICK:
        r->slot = get_u32(c);
        r->gen = get_u32(c);
        get_payload(c, r);
        break;
    default:
        return 0;
    }
    return c->ok && c->off == c->len && rec_valid(r);
}

int wire_next(wire_reader_t *rd, wire_rec_t *r) {
    size_t left;
    uint32_t body_len;
    cursor_t c;

    memset(r, 0, sizeof(*r));
    if (rd->off >= rd->len) {
        return 0;
    }
    left = rd->len - rd->off;
    if (left < REC_HEAD_BYTES) {
        goto bad;
    }
    r->type = rd->p[rd->off];
    body_len = load_u32(rd->p + rd->off + 1);
    if (body_len > left - REC_HEAD_BYTES) {
        goto bad;
    }
    c.p = rd->p + rd->off + REC_HEAD_BYTES;
    c.len = body_len;
    c.off = 0;
    c.ok = 1;
    if (!decode_body(&c, r)) {
        goto bad;
    }
    rd->off += REC_HEAD_BYTES + (size_t)body_len;
    return 1;

bad:
    /* No partial record, and no second look at the rest of a message that lied once. */
    memset(r, 0, sizeof(*r));
    rd->off = rd->len;
    return -EBADMSG;
}
