/* bucket.c: token bucket arithmetic in thousandths of a token, so rates below one per
 * millisecond still refill smoothly without floating point. */
#include "limits/bucket.h"

void bucket_init(bucket_t *b, uint32_t burst, uint32_t now_ms) {
    b->milli = burst * 1000u;
    b->last_ms = now_ms;
}

uint32_t bucket_take(bucket_t *b, uint32_t now_ms, uint32_t rate, uint32_t burst, uint32_t cost) {
    uint64_t cap = (uint64_t)burst * 1000u;
    uint64_t have = b->milli + (uint64_t)(uint32_t)(now_ms - b->last_ms) * rate;
    if (have > cap)
        have = cap;
    b->last_ms = now_ms;
    uint64_t need = (uint64_t)cost * 1000u;
    if (have >= need) {
        b->milli = (uint32_t)(have - need);
        return 0;
    }
    b->milli = (uint32_t)have;
    /* rate tokens per second = rate milli-tokens per millisecond. */
    uint64_t wait = (need - have + rate - 1) / (rate ? rate : 1);
    return wait == 0 ? 1 : (uint32_t)(wait > UINT32_MAX ? UINT32_MAX : wait);
}
