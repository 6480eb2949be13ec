/* registry.c: peer ID registry, a chained hash table of its own. In cluster mode every node
 * holds an entry for every peer of the cluster (the mirror), so each byte of an entry counts once
 * per node (docs/benchmarks.md 8.4):
 * - entries do not store their hash; it is recomputed when the table doubles and when an entry
 *   is removed, and lookups compare the length before the bytes;
 * - entries come from pools, one per 8-byte size class, sized to the ID (and token): 56 bytes
 *   for a 20-byte ID, where malloc would take 64 (and 80 with the hash);
 * - the table doubles at two entries per bucket, not one: 4 to 8 bytes of bucket an entry
 *   instead of 8 to 16, for chains of one or two entries. */
#include "tracker/registry.h"

#include <string.h>

#include "core/alloc.h"
#include "core/pool.h"

/* Buckets of a new registry (a power of two). */
#define REGISTRY_INITIAL_BUCKETS 1024
/* Entries per bucket at which the table doubles. */
#define REGISTRY_LOAD 2
/* Entry sizes are rounded up to a multiple of this, one pool per multiple. */
#define REGISTRY_SIZE_STEP 8
/* The largest entry: the header, the longest ID and a token. */
#define REGISTRY_MAX_ENTRY                                                                         \
    (offsetof(registry_entry_t, id) + REGISTRY_MAX_ID_BYTES + REGISTRY_TOKEN_BYTES)
#define REGISTRY_CLASSES ((REGISTRY_MAX_ENTRY + REGISTRY_SIZE_STEP - 1) / REGISTRY_SIZE_STEP + 1)

struct registry {
    registry_entry_t **buckets;
    size_t mask;  /* bucket count - 1 */
    size_t count; /* entries held */
    hash_key_t key;
    pool_t *pools[REGISTRY_CLASSES]; /* by size class; made on first use */
};

/* The size class of an entry with an ID of len bytes and `extra` bytes after it. */
static size_t size_class(size_t len, size_t extra) {
    return (offsetof(registry_entry_t, id) + len + extra + REGISTRY_SIZE_STEP - 1) /
           REGISTRY_SIZE_STEP;
}

static size_t entry_class(const registry_entry_t *e) {
    return size_class(e->len, e->has_token ? REGISTRY_TOKEN_BYTES : 0);
}

static size_t bucket_of(const registry_t *r, const void *id, size_t len) {
    return (size_t)hash_bytes(&r->key, id, len) & r->mask;
}

registry_t *registry_create(const hash_key_t *key) {
    registry_t *r = xcalloc(1, sizeof(*r));
    r->buckets = xcalloc(REGISTRY_INITIAL_BUCKETS, sizeof(*r->buckets));
    r->mask = REGISTRY_INITIAL_BUCKETS - 1;
    r->key = *key;
    return r;
}

void registry_destroy(registry_t *r) {
    if (r == NULL)
        return;
    for (size_t i = 0; i < REGISTRY_CLASSES; i++)
        pool_destroy(r->pools[i]); /* and with them every entry */
    xfree(r->buckets);
    xfree(r);
}

registry_entry_t *registry_find(registry_t *r, const void *id, size_t len) {
    for (registry_entry_t *e = r->buckets[bucket_of(r, id, len)]; e; e = e->next)
        if (e->len == len && memcmp(e->id, id, len) == 0)
            return e;
    return NULL;
}

/* Doubles the bucket array, rehashing every entry from its ID. */
static void grow(registry_t *r) {
    size_t n = (r->mask + 1) * 2;
    registry_entry_t **old = r->buckets;
    size_t old_n = r->mask + 1;
    r->buckets = xcalloc(n, sizeof(*r->buckets));
    r->mask = n - 1;
    for (size_t i = 0; i < old_n; i++) {
        for (registry_entry_t *e = old[i], *next; e; e = next) {
            next = e->next;
            size_t b = bucket_of(r, e->id, e->len);
            e->next = r->buckets[b];
            r->buckets[b] = e;
        }
    }
    xfree(old);
}

registry_entry_t *registry_claim(registry_t *r, const void *id, size_t len, const uint8_t *token) {
    if (len == 0 || len > REGISTRY_MAX_ID_BYTES || registry_find(r, id, len) != NULL)
        return NULL;
    if (r->count >= REGISTRY_LOAD * (r->mask + 1))
        grow(r);
    /* Sized to the ID (and token), not to sizeof: the struct's tail padding holds ID bytes. */
    size_t cls = size_class(len, token != NULL ? REGISTRY_TOKEN_BYTES : 0);
    if (r->pools[cls] == NULL)
        r->pools[cls] = pool_create(cls * REGISTRY_SIZE_STEP);
    registry_entry_t *e = pool_alloc(r->pools[cls]);
    e->len = (uint8_t)len;
    memcpy(e->id, id, len);
    if (token != NULL) {
        memcpy(e->id + len, token, REGISTRY_TOKEN_BYTES);
        e->has_token = 1;
    }
    size_t b = bucket_of(r, id, len);
    e->next = r->buckets[b];
    r->buckets[b] = e;
    r->count++;
    return e;
}

void registry_release(registry_t *r, registry_entry_t *e) {
    registry_entry_t **pp = &r->buckets[bucket_of(r, e->id, e->len)];
    while (*pp && *pp != e)
        pp = &(*pp)->next;
    if (*pp) {
        *pp = e->next;
        r->count--;
    }
    pool_free(r->pools[entry_class(e)], e);
}

size_t registry_count(const registry_t *r) {
    return r->count;
}

void registry_each(registry_t *r, void (*fn)(registry_entry_t *e, void *arg), void *arg) {
    for (size_t i = 0; i <= r->mask; i++) {
        for (registry_entry_t *e = r->buckets[i], *next; e; e = next) {
            next = e->next; /* fn may release e */
            fn(e, arg);
        }
    }
}
