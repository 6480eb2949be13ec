/* hmap.h: an intrusive chained hash table. The caller embeds an hmap_node_t in its record and
 * compares keys itself, so one table type serves peer IDs, infohashes and database records
 * without a void-pointer key API, and lookups allocate nothing. */
#ifndef SIG_CORE_HMAP_H
#define SIG_CORE_HMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct hmap_node {
    struct hmap_node *next;
    uint64_t hash;
} hmap_node_t;

typedef struct hmap {
    hmap_node_t **buckets;
    size_t mask;  /* bucket count - 1; the count is a power of two */
    size_t count; /* nodes in the table */
} hmap_t;

/* Initialises an empty table with 2^initial_bits buckets. */
void hmap_init(hmap_t *m, unsigned initial_bits);

/* Frees the bucket array; the nodes belong to the caller and are not touched. */
void hmap_dispose(hmap_t *m);

/* Inserts a node with a precomputed hash (the caller has checked the key is absent). The table
 * doubles when it holds more nodes than buckets. */
void hmap_insert(hmap_t *m, hmap_node_t *node, uint64_t hash);

/* Unlinks a node that is in the table. */
void hmap_remove(hmap_t *m, hmap_node_t *node);

/* Returns the first node of the chain where `hash` would live; walk it with ->next and compare
 * node->hash before comparing keys. */
static inline hmap_node_t *hmap_chain(const hmap_t *m, uint64_t hash) {
    return m->buckets[hash & m->mask];
}

/* Calls fn(node, arg) for every node; fn may remove the node it is given (and only that one). */
void hmap_each(hmap_t *m, void (*fn)(hmap_node_t *node, void *arg), void *arg);

#endif
