/* histo.h: a fixed-bucket histogram for Prometheus (cumulative buckets are computed when it is
 * read, so an observation is one bucket increment and a sum). Each histogram has one
 * writer thread; any thread may read it. The fields are C11 atomics written with relaxed
 * load-and-store (no locked instruction: an ordinary add on x86), so a reader on another thread
 * is race-free and sees each field whole, though the sum may be an observation apart from the
 * buckets in one reading. */
#ifndef SIG_CORE_HISTO_H
#define SIG_CORE_HISTO_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Most finite buckets one histogram has (the +Inf bucket is the count). */
#define HISTO_MAX_BUCKETS 16

typedef struct histo {
    const uint64_t *bounds; /* upper bounds (inclusive), ascending, in the observed unit */
    uint32_t nbounds;       /* at most HISTO_MAX_BUCKETS */
    _Atomic uint64_t bucket[HISTO_MAX_BUCKETS + 1]; /* per bucket, not cumulative; last: above */
    _Atomic uint64_t sum; /* the count is the buckets' total, so it always agrees */
} histo_t;

/* Bounds for durations in microseconds: 10 us to 1 s. */
extern const uint64_t histo_us_bounds[];
extern const uint32_t histo_us_nbounds;
/* Bounds for sizes (rows, items): 1 to 100000. */
extern const uint64_t histo_size_bounds[];
extern const uint32_t histo_size_nbounds;

/* Initialises h empty with the given bounds (static storage, ascending, at most
 * HISTO_MAX_BUCKETS). Call before the histogram is shared with another thread. */
void histo_init(histo_t *h, const uint64_t *bounds, uint32_t nbounds);

/* Records one value. Only the histogram's one writer thread may call it. */
static inline void histo_observe(histo_t *h, uint64_t v) {
    uint32_t i = 0;
    /* Most observations are small: the scan from the bottom ends early. */
    while (i < h->nbounds && v > h->bounds[i])
        i++;
    atomic_store_explicit(&h->bucket[i],
                          atomic_load_explicit(&h->bucket[i], memory_order_relaxed) + 1,
                          memory_order_relaxed);
    atomic_store_explicit(&h->sum, atomic_load_explicit(&h->sum, memory_order_relaxed) + v,
                          memory_order_relaxed);
}

/* A reading of a histogram: cumulative counts per bound, then the total. */
typedef struct histo_snap {
    uint32_t nbounds;
    const uint64_t *bounds;
    uint64_t cumulative[HISTO_MAX_BUCKETS]; /* observations <= bounds[i] */
    uint64_t sum;
    uint64_t count; /* all observations (the +Inf bucket) */
} histo_snap_t;

/* Reads h (any thread). The count is the buckets' total, so the reading is always a valid
 * cumulative histogram even while the writer is mid-observation. */
void histo_read(const histo_t *h, histo_snap_t *out);

#endif
