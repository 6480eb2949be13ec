/* registry.h: who holds which peer ID. One namespace for both dialects (an ST peer_id and a
 * WebTorrent peer_id are both byte strings), so the uniqueness rule holds across dialects.
 * Single-threaded: called from the event-loop thread only. */
#ifndef SIG_TRACKER_REGISTRY_H
#define SIG_TRACKER_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "core/hash.h"

/* Longest peer ID in bytes (the ST dialect allows 64 characters; WebTorrent IDs are 20 bytes). */
#define REGISTRY_MAX_ID_BYTES 64

typedef struct registry registry_t;

/* A held ID. The owner is the connection; the bytes follow the struct. */
typedef struct registry_entry {
    struct registry_entry *next; /* hash chain */
    uint64_t hash;
    void *owner;
    uint8_t len;
    char id[];
} registry_entry_t;

/* Creates an empty registry keyed with key. */
registry_t *registry_create(const hash_key_t *key);

/* Frees the registry and every entry still in it (owners are not touched). */
void registry_destroy(registry_t *r);

/* Returns the entry holding id, or NULL. */
registry_entry_t *registry_find(registry_t *r, const void *id, size_t len);

/* Claims id (1..REGISTRY_MAX_ID_BYTES bytes) for owner. Returns the new entry, or NULL when the ID
 * is held already (the caller decides whether to evict the holder first). */
registry_entry_t *registry_claim(registry_t *r, const void *id, size_t len, void *owner);

/* Releases an entry (frees it). */
void registry_release(registry_t *r, registry_entry_t *e);

/* Number of IDs held. */
size_t registry_count(const registry_t *r);

#endif
