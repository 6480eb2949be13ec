/* swarm.h: the swarm table, independent of any wire format. Per infohash it holds the set of
 * peers with their seeder/leecher state; both dialects (ST and WebTorrent) share it.
 *
 * Layout: a swarm keeps pointers to its members in one array, leechers first, then seeders, so
 * that complete/incomplete are derived from the set (never separate counters that can drift) and
 * so that a seeder asking for leechers samples only the leecher part. Each member knows its index,
 * which makes removal O(1) (swap with the last of its part). Sampling is a partial Fisher-Yates
 * shuffle over the part asked for, so an announce costs O(num_want), whatever the swarm size.
 * Single-threaded: all functions are called from the event-loop thread that owns the table. */
#ifndef SIG_TRACKER_SWARM_H
#define SIG_TRACKER_SWARM_H

#include <stdint.h>

#include "core/hash.h"
#include "core/hmap.h"
#include "core/rng.h"

/* Bytes in an infohash. */
#define SWARM_INFOHASH_BYTES 20

typedef struct swarm swarm_t;
typedef struct swarm_member swarm_member_t;
typedef struct swarm_table swarm_table_t;

/* One peer in one swarm. The owner (a connection) links its members into a list through
 * next_of_owner, so it can leave every swarm at once when it closes. */
struct swarm_member {
    swarm_t *swarm;
    void *owner;                   /* the connection; opaque here */
    swarm_member_t *next_of_owner; /* the owner's list of memberships */
    uint32_t last_announce;        /* monotonic seconds of the last accepted announce */
    /* Packed into 32 bits so that a member is 32 bytes: every node of a cluster holds one for
     * every membership of the cluster (docs/benchmarks.md 8.4). */
    uint32_t index : 28;    /* position in swarm->members (a swarm holds < SWARM_MAX_MEMBERS) */
    uint32_t seeder : 1;    /* 1 = complete, 0 = incomplete */
    uint32_t dialect : 2;   /* the owner's dialect: peers are only offered to their own */
    uint32_t completed : 1; /* a completion was counted for this membership */
};

/* Members one swarm can index (28 bits); far above what descriptors allow one machine. */
#define SWARM_MAX_MEMBERS (1u << 28)

struct swarm {
    hmap_node_t node;
    uint8_t info_hash[SWARM_INFOHASH_BYTES];
    uint32_t count;   /* members in total */
    uint32_t seeders; /* members[count - seeders .. count) are the seeders */
    uint32_t cap;     /* allocated length of members */
    uint32_t local;   /* free for the owner's use (hub/peers.c counts this node's members) */
    swarm_member_t **members;
};

/* Totals over the whole table, kept exactly by every join, leave and state change. */
typedef struct swarm_totals {
    uint64_t swarms;
    uint64_t members;
    uint64_t seeders;
} swarm_totals_t;

/* Creates an empty table whose hash is keyed with `key`. Never returns NULL. */
swarm_table_t *swarm_table_create(const hash_key_t *key);

/* Frees the table, every swarm and every member. Owners' lists are not touched: call this only
 * after every owner is gone, or at shutdown. */
void swarm_table_destroy(swarm_table_t *t);

/* Returns the swarm of info_hash, or NULL. */
swarm_t *swarm_find(swarm_table_t *t, const uint8_t info_hash[SWARM_INFOHASH_BYTES]);

/* Returns the member of `owner` in swarm s, by walking owner's list whose head is `first`. */
swarm_member_t *swarm_member_of(swarm_member_t *first, const swarm_t *s);

/* Adds owner to the swarm of info_hash (creating the swarm if needed) as a seeder or leecher and
 * links the new member at the head of the owner's list (*owner_list). The owner must not already
 * be a member of that swarm. Returns the member. */
swarm_member_t *swarm_join(swarm_table_t *t, const uint8_t info_hash[SWARM_INFOHASH_BYTES],
                           void *owner, uint8_t dialect, swarm_member_t **owner_list, int seeder,
                           uint32_t now);

/* Changes a member's state between seeder and leecher (no-op when unchanged). */
void swarm_set_seeder(swarm_table_t *t, swarm_member_t *m, int seeder);

/* Removes a member from its swarm and from the owner's list (*owner_list), frees it, and frees the
 * swarm when it becomes empty. */
void swarm_leave(swarm_table_t *t, swarm_member_t *m, swarm_member_t **owner_list);

/* Removes every member of an owner (its connection closed). */
void swarm_leave_all(swarm_table_t *t, swarm_member_t **owner_list);

/* Picks up to `want` members of s at random, distinct, never `self`, only of dialect `dialect`
 * when dialect != 0, and only leechers when leechers_only. Writes them to out and returns how many.
 * Cost is O(want) plus the members skipped for being self or of another dialect. */
uint32_t swarm_sample(swarm_t *s, const swarm_member_t *self, int leechers_only, uint8_t dialect,
                      rng_t *rng, swarm_member_t **out, uint32_t want);

/* Calls expired(m, arg) for every member whose last_announce is older than now - timeout, after
 * which the callback must have removed it (swarm_leave) or set its last_announce to now (a member
 * that some other authority keeps alive, such as another node's peer in cluster mode). Visits at
 * most `budget` hash buckets per call (0 = an eighth of the table plus 64), continuing where the
 * previous call stopped, so a sweep never blocks the loop for long and a full sweep takes about 8
 * calls. Returns the number of members expired. */
uint32_t swarm_expire(swarm_table_t *t, uint32_t now, uint32_t timeout, uint32_t budget,
                      void (*expired)(swarm_member_t *m, void *arg), void *arg);

/* Returns the table's totals. */
swarm_totals_t swarm_totals(const swarm_table_t *t);

/* Leechers of a swarm (count - seeders). */
/* Calls fn for every swarm in at most `buckets` hash buckets, starting at bucket `cursor`, and
 * returns the cursor to resume from (0 once the last bucket was visited). The table must not
 * change during the call. Bounded work for callers that must not walk a large table at once. */
size_t swarm_scan(const swarm_table_t *t, size_t cursor, uint32_t buckets,
                  void (*fn)(const swarm_t *s, void *arg), void *arg);

static inline uint32_t swarm_leechers(const swarm_t *s) {
    return s->count - s->seeders;
}

#endif
