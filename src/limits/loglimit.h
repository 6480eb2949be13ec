/* loglimit.h: the rate limit on log lines that clients cause, so that a flood of bad requests
 * cannot fill a disk. Two token buckets guard every line: one per (event kind, client address)
 * and one per event kind. The per-address buckets live in a fixed table of LOGLIMIT_SLOTS
 * slots (an attacker with many addresses cannot grow it): a slot is taken over once idle, an
 * address that lands on a busy slot of its kind shares its budget, and one that lands on a busy
 * slot of another kind is held by the kind's bucket alone. What is suppressed is counted and
 * reported by loglimit_flush ("suppressed N similar messages"). Pure apart from *l: no clock,
 * no I/O, no allocation; the caller's thread only. */
#ifndef SIG_LIMITS_LOGLIMIT_H
#define SIG_LIMITS_LOGLIMIT_H

#include <stdint.h>

#include "limits/bucket.h"

/* Per-address slots; 48 bytes each. */
#define LOGLIMIT_SLOTS 128
/* Event kinds the limiter tells apart. */
#define LOGLIMIT_KINDS 8
/* Lines one address may cause per kind in a burst, and per second after it. */
#define LOGLIMIT_ADDR_BURST 20
#define LOGLIMIT_ADDR_PER_SECOND 2
/* Lines of one kind in a burst, and per second after it, whatever the addresses. */
#define LOGLIMIT_KIND_BURST 200
#define LOGLIMIT_KIND_PER_SECOND 50
/* Milliseconds a slot must have been unused before another address takes it over. */
#define LOGLIMIT_IDLE_MS 10000

typedef struct loglimit_slot {
    uint64_t key;     /* keyed hash of (kind, address) */
    bucket_t bucket;  /* lines this address may still cause */
    uint32_t last_ms; /* last use */
    uint32_t suppressed;
    uint8_t used, kind;
    uint8_t addr[16];
} loglimit_slot_t;

typedef struct loglimit {
    loglimit_slot_t slots[LOGLIMIT_SLOTS];
    bucket_t kinds[LOGLIMIT_KINDS];
    uint64_t kind_suppressed[LOGLIMIT_KINDS]; /* refused by the kind's bucket */
} loglimit_t;

/* Resets l: every bucket full, nothing suppressed. */
void loglimit_init(loglimit_t *l, uint32_t now_ms);

/* Decides whether a line of `kind` (< LOGLIMIT_KINDS) caused by the client at addr (16 bytes,
 * IPv6 or IPv4-mapped; key is a keyed hash of kind and address) may be written at now_ms.
 * Returns 1 when it may; 0 when it is suppressed (and counted). */
int loglimit_allow(loglimit_t *l, unsigned kind, uint64_t key, const uint8_t addr[16],
                   uint32_t now_ms);

/* Called by loglimit_flush for each kind with suppressed lines: how many, from how many
 * addresses (0 when only the kind's bucket refused them), and the address with the most
 * (NULL when none). */
typedef void (*loglimit_report_fn)(void *arg, unsigned kind, uint64_t suppressed,
                                   uint32_t addresses, const uint8_t *top_addr);

/* Reports what was suppressed since the last flush, one call per kind, and resets the counts. */
void loglimit_flush(loglimit_t *l, loglimit_report_fn fn, void *arg);

#endif
