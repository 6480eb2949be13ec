/* loglimit.c: see loglimit.h. The table is direct-mapped by the key's low bits, so a lookup is
 * one slot whatever the number of addresses; the key is keyed by the caller (SipHash), so a
 * client cannot aim at another address's slot. */
#include "limits/loglimit.h"

#include <string.h>

void loglimit_init(loglimit_t *l, uint32_t now_ms) {
    memset(l, 0, sizeof(*l));
    for (unsigned k = 0; k < LOGLIMIT_KINDS; k++)
        bucket_init(&l->kinds[k], LOGLIMIT_KIND_BURST, now_ms);
}

int loglimit_allow(loglimit_t *l, unsigned kind, uint64_t key, const uint8_t addr[16],
                   uint32_t now_ms) {
    if (kind >= LOGLIMIT_KINDS)
        kind = LOGLIMIT_KINDS - 1;
    loglimit_slot_t *s = &l->slots[key % LOGLIMIT_SLOTS];
    if (!s->used || (s->key != key && s->suppressed == 0 &&
                     (uint32_t)(now_ms - s->last_ms) >= LOGLIMIT_IDLE_MS)) {
        /* Free, or idle with nothing left to report: this address takes it. */
        s->used = 1;
        s->key = key;
        s->kind = (uint8_t)kind;
        memcpy(s->addr, addr, 16);
        s->suppressed = 0;
        bucket_init(&s->bucket, LOGLIMIT_ADDR_BURST, now_ms);
    }
    /* Otherwise a different, busy address holds it. Of the same kind, this one shares its
     * budget; of another kind, only the kind's bucket applies (the kinds' budgets stay apart). */
    if (s->key == key || s->kind == kind) {
        s->last_ms = now_ms;
        if (bucket_take(&s->bucket, now_ms, LOGLIMIT_ADDR_PER_SECOND, LOGLIMIT_ADDR_BURST, 1) !=
            0) {
            s->suppressed++;
            return 0;
        }
    }
    if (bucket_take(&l->kinds[kind], now_ms, LOGLIMIT_KIND_PER_SECOND, LOGLIMIT_KIND_BURST, 1) !=
        0) {
        l->kind_suppressed[kind]++;
        return 0;
    }
    return 1;
}

void loglimit_flush(loglimit_t *l, loglimit_report_fn fn, void *arg) {
    for (unsigned k = 0; k < LOGLIMIT_KINDS; k++) {
        uint64_t total = l->kind_suppressed[k];
        uint32_t addresses = 0;
        const loglimit_slot_t *top = NULL;
        for (unsigned i = 0; i < LOGLIMIT_SLOTS; i++) {
            loglimit_slot_t *s = &l->slots[i];
            if (!s->used || s->kind != k || s->suppressed == 0)
                continue;
            total += s->suppressed;
            addresses++;
            if (top == NULL || s->suppressed > top->suppressed)
                top = s;
        }
        if (total == 0)
            continue;
        fn(arg, k, total, addresses, top != NULL ? top->addr : NULL);
        l->kind_suppressed[k] = 0;
        for (unsigned i = 0; i < LOGLIMIT_SLOTS; i++)
            if (l->slots[i].kind == k)
                l->slots[i].suppressed = 0;
    }
}
