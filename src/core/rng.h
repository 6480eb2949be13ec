/* rng.h: a small, fast, seedable generator (xoshiro256**) for peer sampling. Not for secrets:
 * tokens come from getrandom() directly. */
#ifndef SIG_CORE_RNG_H
#define SIG_CORE_RNG_H

#include <stdint.h>

typedef struct rng {
    uint64_t s[4];
} rng_t;

/* Seeds the generator from a 64-bit value (expanded with splitmix64). */
void rng_seed(rng_t *r, uint64_t seed);

/* Returns 64 random bits. */
uint64_t rng_next(rng_t *r);

/* Returns a uniform integer in [0, bound), bound > 0 (Lemire's multiply-shift, no modulo bias
 * worth measuring for bounds below 2^32). */
static inline uint32_t rng_below(rng_t *r, uint32_t bound) {
    return (uint32_t)(((rng_next(r) >> 32) * (uint64_t)bound) >> 32);
}

/* Fills p with n bytes from the kernel's CSPRNG (getrandom). Returns 0 or -errno. */
int rng_secure(void *p, unsigned long n);

#endif
