/* pool.c: fixed-size object pools (see pool.h). A slab allocator: chunks of one page, mapped
 * one by one, so at addresses that are multiples of their size, so an object finds its chunk by
 * masking its address; each chunk keeps its own free list and count, and a chunk whose last object
 * is freed goes back to malloc at once. So memory follows the number of objects (a table that
 * empties gives everything back), and the cost is at most one malloc per chunk's worth of objects.
 */
#include "core/pool.h"

#include <stdint.h>
#include <string.h>

#include "core/alloc.h"

#if defined(__SANITIZE_ADDRESS__)
#define POOL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define POOL_ASAN 1
#endif
#endif
#ifdef POOL_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* A free object holds the link to the next free one of its chunk. */
typedef struct free_obj {
    struct free_obj *next;
} free_obj_t;

/* A chunk: its links and counts, then the objects. */
typedef struct chunk {
    struct chunk *prev, *next;           /* all chunks of the pool */
    struct chunk *room_prev, *room_next; /* chunks with a free object (or one never handed out) */
    free_obj_t *free;                    /* this chunk's objects given back */
    uint32_t carved;                     /* objects handed out at least once */
    uint32_t in_use;                     /* objects allocated now */
    _Alignas(16) unsigned char objects[];
} chunk_t;

_Static_assert((POOL_CHUNK_BYTES & (POOL_CHUNK_BYTES - 1)) == 0, "chunks align to their size");

struct pool {
    size_t size; /* bytes of one object */
    uint32_t per_chunk;
    chunk_t *chunks; /* all chunks */
    chunk_t *room;   /* chunks with room */
    size_t in_use;
};

pool_t *pool_create(size_t size) {
    pool_t *p = xcalloc(1, sizeof(*p));
    if (size < sizeof(free_obj_t))
        size = sizeof(free_obj_t);
    p->size = (size + 7) & ~(size_t)7;
    size_t n = (POOL_CHUNK_BYTES - sizeof(chunk_t)) / p->size;
    p->per_chunk = (uint32_t)(n > 0 ? n : 1);
    return p;
}

void pool_destroy(pool_t *p) {
    if (p == NULL)
        return;
    for (chunk_t *c = p->chunks, *next; c; c = next) {
        next = c->next;
        UNPOISON(c->objects, (size_t)p->per_chunk * p->size);
        xpages_free(c, POOL_CHUNK_BYTES);
    }
    xfree(p);
}

static void room_add(pool_t *p, chunk_t *c) {
    c->room_prev = NULL;
    c->room_next = p->room;
    if (p->room)
        p->room->room_prev = c;
    p->room = c;
}

static void room_remove(pool_t *p, chunk_t *c) {
    if (c->room_prev)
        c->room_prev->room_next = c->room_next;
    else
        p->room = c->room_next;
    if (c->room_next)
        c->room_next->room_prev = c->room_prev;
    c->room_prev = c->room_next = NULL;
}

void *pool_alloc(pool_t *p) {
    chunk_t *c = p->room;
    if (c == NULL) {
        c = xpages(POOL_CHUNK_BYTES); /* zeroed by the kernel */
        POISON(c->objects, (size_t)p->per_chunk * p->size);
        c->next = p->chunks;
        if (p->chunks)
            p->chunks->prev = c;
        p->chunks = c;
        room_add(p, c);
    }
    void *obj;
    if (c->free != NULL) {
        free_obj_t *f = c->free;
        UNPOISON(f, p->size);
        c->free = f->next;
        obj = f;
    } else {
        obj = c->objects + (size_t)c->carved++ * p->size;
        UNPOISON(obj, p->size);
    }
    if (++c->in_use == p->per_chunk)
        room_remove(p, c);
    p->in_use++;
    memset(obj, 0, p->size);
    return obj;
}

void pool_free(pool_t *p, void *obj) {
    if (obj == NULL)
        return;
    chunk_t *c = (chunk_t *)((uintptr_t)obj & ~(uintptr_t)(POOL_CHUNK_BYTES - 1));
    p->in_use--;
    if (c->in_use-- == p->per_chunk)
        room_add(p, c);
    if (c->in_use == 0) {
        room_remove(p, c);
        if (c->prev)
            c->prev->next = c->next;
        else
            p->chunks = c->next;
        if (c->next)
            c->next->prev = c->prev;
        UNPOISON(c->objects, (size_t)p->per_chunk * p->size);
        xpages_free(c, POOL_CHUNK_BYTES);
        return;
    }
    free_obj_t *f = obj;
    f->next = c->free;
    c->free = f;
    POISON(f, p->size);
}

size_t pool_in_use(const pool_t *p) {
    return p->in_use;
}
