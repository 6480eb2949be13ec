/* bucket.h: token buckets, the rate limiter behind every per-connection and per-peer limit.
 * Eight bytes each, refilled lazily from the clock when used, so idle connections cost nothing. */
#ifndef SIG_LIMITS_BUCKET_H
#define SIG_LIMITS_BUCKET_H

#include <stdint.h>

typedef struct bucket {
    uint32_t milli;   /* tokens * 1000 currently in the bucket */
    uint32_t last_ms; /* clock (ms) of the last refill */
} bucket_t;

/* Fills a bucket to `burst` tokens at time now_ms. */
void bucket_init(bucket_t *b, uint32_t burst, uint32_t now_ms);

/* Takes `cost` tokens after refilling at `rate` tokens per second up to `burst`.
 * Returns 0 when taken, or the number of milliseconds after which they would be available
 * (nothing is taken then). Pure apart from updating *b. */
uint32_t bucket_take(bucket_t *b, uint32_t now_ms, uint32_t rate, uint32_t burst, uint32_t cost);

#endif
