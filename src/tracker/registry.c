/* registry.c: peer ID registry over the intrusive hash table. */
#include "tracker/registry.h"

#include <string.h>

#include "core/alloc.h"
#include "core/hmap.h"

struct registry {
    hmap_t map;
    hash_key_t key;
};

/* The entry starts with the same two fields as hmap_node_t, so it can be linked directly. */
_Static_assert(offsetof(registry_entry_t, next) == offsetof(hmap_node_t, next), "layout");
_Static_assert(offsetof(registry_entry_t, hash) == offsetof(hmap_node_t, hash), "layout");

registry_t *registry_create(const hash_key_t *key) {
    registry_t *r = xcalloc(1, sizeof(*r));
    hmap_init(&r->map, 10);
    r->key = *key;
    return r;
}

static void free_entry(hmap_node_t *n, void *arg) {
    (void)arg;
    xfree(n);
}

void registry_destroy(registry_t *r) {
    if (r == NULL)
        return;
    hmap_each(&r->map, free_entry, NULL);
    hmap_dispose(&r->map);
    xfree(r);
}

registry_entry_t *registry_find(registry_t *r, const void *id, size_t len) {
    uint64_t h = hash_bytes(&r->key, id, len);
    for (hmap_node_t *n = hmap_chain(&r->map, h); n; n = n->next) {
        registry_entry_t *e = (registry_entry_t *)n;
        if (n->hash == h && e->len == len && memcmp(e->id, id, len) == 0)
            return e;
    }
    return NULL;
}

registry_entry_t *registry_claim(registry_t *r, const void *id, size_t len, const uint8_t *token) {
    if (len == 0 || len > REGISTRY_MAX_ID_BYTES || registry_find(r, id, len) != NULL)
        return NULL;
    /* Sized to the ID (and token), not to sizeof: the struct's tail padding holds ID bytes. */
    size_t extra = token != NULL ? REGISTRY_TOKEN_BYTES : 0;
    registry_entry_t *e = xcalloc(1, offsetof(registry_entry_t, id) + len + extra);
    e->len = (uint8_t)len;
    memcpy(e->id, id, len);
    if (token != NULL) {
        memcpy(e->id + len, token, REGISTRY_TOKEN_BYTES);
        e->has_token = 1;
    }
    hmap_insert(&r->map, (hmap_node_t *)e, hash_bytes(&r->key, id, len));
    return e;
}

void registry_release(registry_t *r, registry_entry_t *e) {
    hmap_remove(&r->map, (hmap_node_t *)e);
    xfree(e);
}

size_t registry_count(const registry_t *r) {
    return r->map.count;
}

typedef struct each_ctx {
    void (*fn)(registry_entry_t *e, void *arg);
    void *arg;
} each_ctx_t;

static void each_entry(hmap_node_t *n, void *arg) {
    each_ctx_t *ec = arg;
    ec->fn((registry_entry_t *)n, ec->arg);
}

void registry_each(registry_t *r, void (*fn)(registry_entry_t *e, void *arg), void *arg) {
    each_ctx_t ec = {fn, arg};
    hmap_each(&r->map, each_entry, &ec);
}
