/* histo.c: fixed-bucket histograms (see histo.h). */
#include "core/histo.h"

#include <string.h>

/* Microseconds: an event-loop iteration or a message is usually tens of microseconds; a slow
 * disk commit may take a second. */
const uint64_t histo_us_bounds[] = {10,   25,    50,    100,   250,    500,    1000,   2500,
                                    5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000};
const uint32_t histo_us_nbounds = sizeof(histo_us_bounds) / sizeof(histo_us_bounds[0]);
/* Rows in a database batch: from one to a flush of every swarm of a large tracker. */
const uint64_t histo_size_bounds[] = {1,   2,    5,    10,   25,    50,    100,   250,
                                      500, 1000, 2500, 5000, 10000, 25000, 50000, 100000};
const uint32_t histo_size_nbounds = sizeof(histo_size_bounds) / sizeof(histo_size_bounds[0]);

void histo_init(histo_t *h, const uint64_t *bounds, uint32_t nbounds) {
    if (nbounds > HISTO_MAX_BUCKETS)
        nbounds = HISTO_MAX_BUCKETS;
    h->bounds = bounds;
    h->nbounds = nbounds;
    for (uint32_t i = 0; i <= HISTO_MAX_BUCKETS; i++)
        atomic_init(&h->bucket[i], 0);
    atomic_init(&h->sum, 0);
}

void histo_read(const histo_t *h, histo_snap_t *out) {
    memset(out, 0, sizeof(*out));
    out->nbounds = h->nbounds;
    out->bounds = h->bounds;
    uint64_t run = 0;
    for (uint32_t i = 0; i < h->nbounds; i++) {
        run += atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
        out->cumulative[i] = run;
    }
    run += atomic_load_explicit(&h->bucket[h->nbounds], memory_order_relaxed);
    out->count = run;
    out->sum = atomic_load_explicit(&h->sum, memory_order_relaxed);
}
