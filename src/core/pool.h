/* pool.h: fixed-size object pools. malloc rounds every allocation up to a multiple of 16 bytes
 * plus an 8-byte header, so a 32-byte swarm membership costs 48 bytes and a 64-byte swarm 80;
 * in cluster mode every node holds one of each for every peer of the cluster, which made those
 * 16 bytes a measurable share of the memory per connection (docs/benchmarks.md 8.4). A pool
 * carves objects out of chunks of POOL_CHUNK_BYTES and gives a chunk back as soon as its last
 * object is freed, so memory follows the number of objects. Under AddressSanitizer, free
 * objects are poisoned, so a use after pool_free is still reported. Single-threaded: one pool
 * belongs to one table on the loop thread. */
#ifndef SIG_CORE_POOL_H
#define SIG_CORE_POOL_H

#include <stddef.h>

/* Bytes of one chunk of objects: one page, mapped on its own (xpages), so chunks are aligned to
 * their size and leave no gaps in malloc's heap. (aligned_alloc of 16 KiB chunks left ~45 bytes
 * of untouchable gap per mirrored peer in RSS: docs/benchmarks.md 8.4.) */
#define POOL_CHUNK_BYTES 4096u

typedef struct pool pool_t;

/* Creates a pool of objects of `size` bytes (8..POOL_CHUNK_BYTES/8; rounded up to a multiple of
 * 8 for alignment). Never returns NULL (aborts on out-of-memory, as xmalloc does). */
pool_t *pool_create(size_t size);

/* Frees every chunk, and with them every object still allocated. NULL is a no-op. */
void pool_destroy(pool_t *p);

/* Returns a zeroed object. Never NULL. */
void *pool_alloc(pool_t *p);

/* Gives an object of this pool back. NULL is a no-op. */
void pool_free(pool_t *p, void *obj);

/* Objects currently allocated (for tests and statistics). */
size_t pool_in_use(const pool_t *p);

#endif
