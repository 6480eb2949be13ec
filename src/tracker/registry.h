/* registry.h: who holds which peer ID, and where that peer is connected. One namespace for both
 * dialects (an ST peer_id and a WebTorrent peer_id are both byte strings), so the uniqueness
 * rule holds across dialects. In cluster mode it also mirrors the peers of the other nodes
 * (entries whose handle names another node), so a relay by ID is routed without asking Redis.
 * Single-threaded: called from the event-loop thread only. */
#ifndef SIG_TRACKER_REGISTRY_H
#define SIG_TRACKER_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "core/hash.h"
#include "tracker/swarm.h"

/* Longest peer ID in bytes (the ST dialect allows 64 characters; WebTorrent IDs are 20 bytes). */
#define REGISTRY_MAX_ID_BYTES 64

typedef struct registry registry_t;

/* Where a peer is connected: a node (0 = this one; others index the server's node table) and
 * that node's connection slot and generation. Handlers address peers by handle only. */
typedef struct peer_handle {
    uint32_t node;
    uint32_t slot;
    uint32_t gen;
} peer_handle_t;

/* A held ID; the bytes follow the struct. It is also the owner of the peer's swarm memberships
 * (swarm_member_t.owner points here). */
typedef struct registry_entry {
    struct registry_entry *next; /* hash chain (the hash is not stored: see registry.c) */
    swarm_member_t *members;     /* the swarms this peer is in (the owner list of swarm.h) */
    peer_handle_t at;
    uint32_t nswarms;  /* length of members, kept by hub/peers.c only */
    uint8_t has_token; /* 1 when a reclaim token follows the ID (registry_token) */
    uint8_t dialect;   /* the dialect the peer speaks (enum dialect of hub/ctx.h) */
    uint8_t len;
    char id[]; /* len bytes, then the 16-byte token when has_token */
} registry_entry_t;

/* Bytes of an ST reclaim token. */
#define REGISTRY_TOKEN_BYTES 16

/* Creates an empty registry keyed with key. */
registry_t *registry_create(const hash_key_t *key);

/* Frees the registry and every entry still in it (owners are not touched). */
void registry_destroy(registry_t *r);

/* Returns the entry holding id, or NULL. */
registry_entry_t *registry_find(registry_t *r, const void *id, size_t len);

/* Claims id (1..REGISTRY_MAX_ID_BYTES bytes) with the reclaim token `token`
 * (REGISTRY_TOKEN_BYTES bytes, or NULL for none). The token is stored after the ID, so entries
 * without one (WebTorrent peers, and the mirror of other nodes' peers) do not pay for it. Returns
 * the new entry, every other field zero, or NULL when the ID is held already (the caller decides
 * whether to evict the holder first). */
registry_entry_t *registry_claim(registry_t *r, const void *id, size_t len, const uint8_t *token);

/* The entry's reclaim token (REGISTRY_TOKEN_BYTES bytes), or NULL when it has none. */
static inline const uint8_t *registry_token(const registry_entry_t *e) {
    return e->has_token ? (const uint8_t *)e->id + e->len : NULL;
}

/* Releases an entry (frees it). */
void registry_release(registry_t *r, registry_entry_t *e);

/* Number of IDs held. */
size_t registry_count(const registry_t *r);

/* Calls fn(e, arg) for every entry; fn may release the entry it is given (and only that one). */
void registry_each(registry_t *r, void (*fn)(registry_entry_t *e, void *arg), void *arg);

#endif
