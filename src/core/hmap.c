/* hmap.c: intrusive chained hash table. */
#include "core/hmap.h"

#include "core/alloc.h"

void hmap_init(hmap_t *m, unsigned initial_bits) {
    size_t n = (size_t)1 << initial_bits;
    m->buckets = xcalloc(n, sizeof(*m->buckets));
    m->mask = n - 1;
    m->count = 0;
}

void hmap_dispose(hmap_t *m) {
    xfree(m->buckets);
    m->buckets = NULL;
    m->mask = 0;
    m->count = 0;
}

static void grow(hmap_t *m) {
    size_t n = (m->mask + 1) * 2;
    hmap_node_t **b = xcalloc(n, sizeof(*b));
    for (size_t i = 0; i <= m->mask; i++) {
        hmap_node_t *node = m->buckets[i];
        while (node) {
            hmap_node_t *next = node->next;
            node->next = b[node->hash & (n - 1)];
            b[node->hash & (n - 1)] = node;
            node = next;
        }
    }
    xfree(m->buckets);
    m->buckets = b;
    m->mask = n - 1;
}

void hmap_insert(hmap_t *m, hmap_node_t *node, uint64_t hash) {
    if (m->count >= m->mask + 1)
        grow(m);
    node->hash = hash;
    node->next = m->buckets[hash & m->mask];
    m->buckets[hash & m->mask] = node;
    m->count++;
}

void hmap_remove(hmap_t *m, hmap_node_t *node) {
    hmap_node_t **pp = &m->buckets[node->hash & m->mask];
    while (*pp && *pp != node)
        pp = &(*pp)->next;
    if (*pp) {
        *pp = node->next;
        node->next = NULL;
        m->count--;
    }
}

void hmap_each(hmap_t *m, void (*fn)(hmap_node_t *node, void *arg), void *arg) {
    for (size_t i = 0; i <= m->mask; i++) {
        hmap_node_t *node = m->buckets[i];
        while (node) {
            hmap_node_t *next = node->next;
            fn(node, arg);
            node = next;
        }
    }
}
