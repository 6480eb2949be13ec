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

/* n bytes (a multiple of 4096) of zeroed memory straight from the kernel (mmap), at an address
 * that is a multiple of the page size, so of 4096. Unlike aligned_alloc, it leaves no gap in
 * malloc's heap. Never returns NULL; give it back with xpages_free(p, n). */
void *xpages(size_t n);
void xpages_free(void *p, size_t n);

/* Bytes currently allocated through these functions (as malloc_usable_size reports them).
 * Thread-safe: the counter is atomic because the database writer thread allocates too. */
size_t alloc_bytes_in_use(void);

#endif
