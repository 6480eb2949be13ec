/* wire.h: the messages nodes send each other through Redis pub/sub, as a pure codec (no I/O).
 *
 * One Redis message (one PUBLISH) carries many records, so a loop iteration that relays many
 * signals to one node costs one PUBLISH. Layout, all integers little-endian:
 *
 *   message := magic "ST" version(u8 = WIRE_VERSION) from_node(u64) record*
 *   record  := type(u8) body_len(u32) body[body_len]
 *
 * Each body has a fixed layout per type (see wire.c); strings inside bodies carry their own
 * lengths. A reader rejects, with -EBADMSG and no partial record: a wrong magic or version, a
 * record that overruns the message, a body whose inner lengths do not add up to body_len, an ID
 * longer than WIRE_MAX_ID_BYTES, a payload longer than WIRE_MAX_PAYLOAD_BYTES, an unknown type
 * or kind. A message longer than WIRE_MAX_MESSAGE_BYTES is rejected as a whole (-EMSGSIZE).
 * Data from Redis is not trusted: whatever the bytes, the reader never reads out of bounds.
 * Thread: any (pure functions). */
#ifndef SIG_CLUSTER_WIRE_H
#define SIG_CLUSTER_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define WIRE_VERSION 1
/* Bytes of the message header (magic, version, from_node). */
#define WIRE_HEADER_BYTES 11
/* Longest message a node accepts from a channel, in bytes. Writers start a new message before a
 * record would make the current one longer than WIRE_SPLIT_BYTES. */
#define WIRE_MAX_MESSAGE_BYTES (4u << 20)
#define WIRE_SPLIT_BYTES (256u << 10)
/* Longest peer ID (the ST dialect's 64 characters; WebTorrent IDs are 20 bytes). */
#define WIRE_MAX_ID_BYTES 64
/* Longest payload a record carries (a relayed frame's JSON text, or a reason), in bytes. */
#define WIRE_MAX_PAYLOAD_BYTES (1u << 20)

enum wire_type {
    WIRE_PEER_UP = 1, /* from_node's connection (slot, gen) holds id in dialect */
    WIRE_PEER_DOWN,   /* from_node's connection (slot, gen) released id */
    WIRE_MEMBER,      /* from_node's peer id is in swarm ih, as seeder or leecher (upsert) */
    WIRE_LEAVE,       /* from_node's peer id left swarm ih */
    WIRE_RESET,       /* from_node's full state follows: forget all of it first */
    WIRE_HELLO,       /* from_node asks every node for its state (sent to from_node's channel) */
    WIRE_DELIVER,     /* a frame for connection (slot, gen) of the receiving node */
    WIRE_REFUSED,     /* the receiver's node refused a DELIVER (rate limit); tells the sender */
    WIRE_KICK,        /* close connection (slot, gen) of the receiving node; payload = reason */
    WIRE_TYPE_MAX = WIRE_KICK,
};

/* What a DELIVER or REFUSED is about: the receive-side checks depend on it. */
enum wire_kind {
    WIRE_KIND_NONE = 0,
    WIRE_ST_OFFER = 1,
    WIRE_ST_ANSWER,
    WIRE_ST_CANDIDATE,
    WIRE_WT_OFFER,
    WIRE_WT_ANSWER,
    WIRE_KIND_MAX = WIRE_WT_ANSWER,
};

/* One record, decoded or to encode. Which fields a type uses:
 *   PEER_UP    slot, gen, dialect, id
 *   PEER_DOWN  slot, gen, id
 *   MEMBER     id, ih, seeder
 *   LEAVE      id, ih
 *   RESET, HELLO  (nothing)
 *   DELIVER    kind, slot, gen (receiver), from_slot, from_gen (sender), id (sender's peer ID),
 *              has_ih + ih, offer_id (WT kinds), payload (the frame's JSON text)
 *   REFUSED    kind, slot, gen (the original sender), id (the receiver's peer ID),
 *              has_ih + ih, retry_ms
 *   KICK       slot, gen, payload (the reason, e.g. "replaced")
 * Fields a type does not use are ignored by wire_put and zeroed by wire_next. */
typedef struct wire_rec {
    uint8_t type;    /* enum wire_type */
    uint8_t kind;    /* enum wire_kind */
    uint8_t dialect; /* 1 = ST, 2 = WebTorrent */
    uint8_t seeder;  /* 0 or 1 */
    uint8_t has_ih;  /* 0 or 1 */
    uint8_t id_len;  /* 0..WIRE_MAX_ID_BYTES */
    uint32_t slot, gen;
    uint32_t from_slot, from_gen;
    uint32_t retry_ms;
    uint8_t id[WIRE_MAX_ID_BYTES];
    uint8_t ih[20];
    uint8_t offer_id[20];
    const uint8_t *payload; /* decoded: points into the message; not owned */
    uint32_t payload_len;
} wire_rec_t;

/* Starts a message from from_node in b (appends the header). */
void wire_begin(buf_t *b, uint64_t from_node);

/* Appends one record. Returns 0, or -EINVAL when a field is out of range (unknown type or kind,
 * id_len or payload_len over its limit); nothing is appended then. */
int wire_put(buf_t *b, const wire_rec_t *r);

/* A reader over one received message. */
typedef struct wire_reader {
    const uint8_t *p;
    size_t len;
    size_t off;
} wire_reader_t;

/* Checks the header of message p[0..n) and sets up rd. Returns 0 with *from_node set, -EMSGSIZE
 * when n > WIRE_MAX_MESSAGE_BYTES, -EBADMSG when the header is wrong. */
int wire_open(wire_reader_t *rd, const uint8_t *p, size_t n, uint64_t *from_node);

/* Decodes the next record into r. Returns 1 with r filled, 0 at the end of the message, or
 * -EBADMSG when the rest of the message is malformed (the reader then stays at the end). */
int wire_next(wire_reader_t *rd, wire_rec_t *r);

#endif
