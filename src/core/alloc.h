/* alloc.h: the one place memory comes from. Every allocation aborts on out-of-memory (a tracker
 * that half-fails an allocation is worse than one that restarts) and is counted for /stats.json. */
#ifndef SIG_CORE_ALLOC_H
#define SIG_CORE_ALLOC_H

#include <stddef.h>

/* Like malloc, calloc, realloc and free, but never return NULL (they abort with a message). */
void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
void xfree(void *p);

/* Like aligned_alloc: n bytes at an address that is a multiple of `align` (a power of two that
 * divides n). Never returns NULL; free with xfree. */
void *xaligned_alloc(size_t align, size_t n);

/* Bytes currently allocated through these functions (as malloc_usable_size reports them).
 * Thread-safe: the counter is atomic because the database writer thread allocates too. */
size_t alloc_bytes_in_use(void);

#endif
