/* alloc.c: counting allocator wrappers. The counter is the one piece of process-wide state
 * outside a context struct: like Redis's used_memory, it describes the process, not a server. */
#include "core/alloc.h"

#include <malloc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

static _Atomic size_t bytes_in_use;

static void oom(size_t n) {
    fprintf(stderr, "sigtracker: out of memory allocating %zu bytes\n", n);
    abort();
}

void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        oom(n);
    atomic_fetch_add_explicit(&bytes_in_use, malloc_usable_size(p), memory_order_relaxed);
    return p;
}

void *xcalloc(size_t count, size_t size) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (p == NULL)
        oom(count * size);
    atomic_fetch_add_explicit(&bytes_in_use, malloc_usable_size(p), memory_order_relaxed);
    return p;
}

void *xrealloc(void *p, size_t n) {
    size_t old = p ? malloc_usable_size(p) : 0;
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        oom(n);
    atomic_fetch_sub_explicit(&bytes_in_use, old, memory_order_relaxed);
    atomic_fetch_add_explicit(&bytes_in_use, malloc_usable_size(q), memory_order_relaxed);
    return q;
}

void *xpages(size_t n) {
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        oom(n);
    atomic_fetch_add_explicit(&bytes_in_use, n, memory_order_relaxed);
    return p;
}

void xpages_free(void *p, size_t n) {
    if (p == NULL)
        return;
    /* munmap fails only for arguments that are not a mapping we made: a bug, not a condition. */
    if (munmap(p, n) != 0) {
        fprintf(stderr, "sigtracker: munmap(%p, %zu) failed\n", p, n);
        abort();
    }
    atomic_fetch_sub_explicit(&bytes_in_use, n, memory_order_relaxed);
}

void xfree(void *p) {
    if (p == NULL)
        return;
    atomic_fetch_sub_explicit(&bytes_in_use, malloc_usable_size(p), memory_order_relaxed);
    free(p);
}

size_t alloc_bytes_in_use(void) {
    return atomic_load_explicit(&bytes_in_use, memory_order_relaxed);
}
