/* hash.h: keyed hashing for every table whose keys come from the network (peer IDs,
 * infohashes). A keyed SipHash stops a client from choosing keys that all land in one bucket. */
#ifndef SIG_CORE_HASH_H
#define SIG_CORE_HASH_H

#include <stddef.h>
#include <stdint.h>

/* A SipHash key; make one per process from getrandom(). */
typedef struct hash_key {
    uint64_t k0, k1;
} hash_key_t;

/* SipHash-1-3 of p[0..n) under key. Pure. */
uint64_t hash_bytes(const hash_key_t *key, const void *p, size_t n);

#endif
