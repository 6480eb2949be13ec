/* swarm.c: the swarm table. See swarm.h for the layout and why it was chosen. */
#include "tracker/swarm.h"

#include <string.h>

#include "core/alloc.h"
#include "core/pool.h"

/* Most members one sample may return; both dialects cap num_want well below this. */
#define SAMPLE_MAX 128
/* Most members one sample may look at: skipping self and peers of the other dialect must not turn
 * an announce into a walk over a large swarm. */
#define SAMPLE_MAX_PROBES 512
/* Initial member array length of a new swarm; most swarms are small. */
#define SWARM_INITIAL_CAP 4

_Static_assert(sizeof(swarm_member_t) == 32, "a member is 32 bytes (docs/benchmarks.md 8.4)");

struct swarm_table {
    hmap_t map;
    hash_key_t key;
    pool_t *swarm_pool;  /* swarm_t objects */
    pool_t *member_pool; /* swarm_member_t objects */
    swarm_totals_t totals;
    size_t sweep_bucket; /* where the incremental expiry sweep resumes */
};

swarm_table_t *swarm_table_create(const hash_key_t *key) {
    swarm_table_t *t = xcalloc(1, sizeof(*t));
    hmap_init(&t->map, 10);
    t->key = *key;
    t->swarm_pool = pool_create(sizeof(swarm_t));
    t->member_pool = pool_create(sizeof(swarm_member_t));
    return t;
}

/* Members and swarms go with their pools; only the member arrays are malloc'd. */
static void free_swarm(hmap_node_t *node, void *arg) {
    swarm_t *s = (swarm_t *)node;
    (void)arg;
    xfree(s->members);
}

void swarm_table_destroy(swarm_table_t *t) {
    if (t == NULL)
        return;
    hmap_each(&t->map, free_swarm, NULL);
    hmap_dispose(&t->map);
    pool_destroy(t->member_pool);
    pool_destroy(t->swarm_pool);
    xfree(t);
}

swarm_t *swarm_find(swarm_table_t *t, const uint8_t info_hash[SWARM_INFOHASH_BYTES]) {
    uint64_t h = hash_bytes(&t->key, info_hash, SWARM_INFOHASH_BYTES);
    for (hmap_node_t *n = hmap_chain(&t->map, h); n; n = n->next) {
        swarm_t *s = (swarm_t *)n;
        if (n->hash == h && memcmp(s->info_hash, info_hash, SWARM_INFOHASH_BYTES) == 0)
            return s;
    }
    return NULL;
}

swarm_member_t *swarm_member_of(swarm_member_t *first, const swarm_t *s) {
    for (swarm_member_t *m = first; m; m = m->next_of_owner)
        if (m->swarm == s)
            return m;
    return NULL;
}

static void place(swarm_t *s, uint32_t i, swarm_member_t *m) {
    s->members[i] = m;
    m->index = i;
}

swarm_member_t *swarm_join(swarm_table_t *t, const uint8_t info_hash[SWARM_INFOHASH_BYTES],
                           void *owner, uint8_t dialect, swarm_member_t **owner_list, int seeder,
                           uint32_t now) {
    swarm_t *s = swarm_find(t, info_hash);
    if (s == NULL) {
        s = pool_alloc(t->swarm_pool);
        memcpy(s->info_hash, info_hash, SWARM_INFOHASH_BYTES);
        s->cap = SWARM_INITIAL_CAP;
        s->members = xmalloc(s->cap * sizeof(*s->members));
        hmap_insert(&t->map, &s->node, hash_bytes(&t->key, info_hash, SWARM_INFOHASH_BYTES));
        t->totals.swarms++;
    }
    if (s->count == s->cap) {
        s->cap *= 2;
        s->members = xrealloc(s->members, s->cap * sizeof(*s->members));
    }
    swarm_member_t *m = pool_alloc(t->member_pool);
    m->swarm = s;
    m->owner = owner;
    m->dialect = dialect & 3u;
    m->last_announce = now;
    m->seeder = seeder ? 1 : 0;
    /* Keep the array partitioned: a new leecher goes at the end of the leecher part, which
     * first moves the seeder there to the end of the array. */
    uint32_t leechers = swarm_leechers(s);
    if (m->seeder) {
        place(s, s->count, m);
        s->seeders++;
    } else {
        if (s->seeders > 0)
            place(s, s->count, s->members[leechers]);
        place(s, leechers, m);
    }
    s->count++;
    m->next_of_owner = *owner_list;
    *owner_list = m;
    t->totals.members++;
    t->totals.seeders += m->seeder;
    return m;
}

static void swap(swarm_t *s, uint32_t a, uint32_t b) {
    swarm_member_t *ma = s->members[a];
    place(s, a, s->members[b]);
    place(s, b, ma);
}

void swarm_set_seeder(swarm_table_t *t, swarm_member_t *m, int seeder) {
    swarm_t *s = m->swarm;
    seeder = seeder ? 1 : 0;
    if (m->seeder == seeder)
        return;
    uint32_t leechers = swarm_leechers(s);
    if (seeder) {
        /* The last leecher slot becomes the first seeder slot. */
        swap(s, m->index, leechers - 1);
        s->seeders++;
        t->totals.seeders++;
    } else {
        swap(s, m->index, leechers);
        s->seeders--;
        t->totals.seeders--;
    }
    m->seeder = seeder ? 1u : 0u;
}

void swarm_leave(swarm_table_t *t, swarm_member_t *m, swarm_member_t **owner_list) {
    swarm_t *s = m->swarm;
    uint32_t i = m->index;
    uint32_t leechers = swarm_leechers(s);
    if (m->seeder) {
        place(s, i, s->members[s->count - 1]);
        s->seeders--;
        t->totals.seeders--;
    } else {
        /* Fill the hole with the last leecher, then fill that slot with the last seeder. */
        place(s, i, s->members[leechers - 1]);
        if (s->seeders > 0)
            place(s, leechers - 1, s->members[s->count - 1]);
    }
    s->count--;
    t->totals.members--;
    for (swarm_member_t **pp = owner_list; *pp; pp = &(*pp)->next_of_owner) {
        if (*pp == m) {
            *pp = m->next_of_owner;
            break;
        }
    }
    pool_free(t->member_pool, m);
    if (s->count == 0) {
        hmap_remove(&t->map, &s->node);
        t->totals.swarms--;
        xfree(s->members);
        pool_free(t->swarm_pool, s);
    } else if (s->cap > SWARM_INITIAL_CAP && s->count < s->cap / 4) {
        /* Give memory back when a big swarm has shrunk; halving (not quartering) avoids
         * reallocating back and forth around one size. */
        s->cap /= 2;
        s->members = xrealloc(s->members, s->cap * sizeof(*s->members));
    }
}

void swarm_leave_all(swarm_table_t *t, swarm_member_t **owner_list) {
    while (*owner_list)
        swarm_leave(t, *owner_list, owner_list);
}

uint32_t swarm_sample(swarm_t *s, const swarm_member_t *self, int leechers_only, uint8_t dialect,
                      rng_t *rng, swarm_member_t **out, uint32_t want) {
    uint32_t n = leechers_only ? swarm_leechers(s) : s->count;
    uint32_t js[SAMPLE_MAX_PROBES];
    uint32_t picked = 0, i = 0;
    if (want > SAMPLE_MAX)
        want = SAMPLE_MAX;
    /* A partial Fisher-Yates shuffle: position i receives a uniformly chosen member of [i, n).
     * The swaps are undone afterwards so the leecher/seeder partition stays intact. */
    while (picked < want && i < n && i < SAMPLE_MAX_PROBES) {
        uint32_t j = i + rng_below(rng, n - i);
        js[i] = j;
        swarm_member_t *m = s->members[j];
        s->members[j] = s->members[i];
        s->members[i] = m;
        i++;
        if (m == self || (dialect != 0 && m->dialect != dialect))
            continue;
        out[picked++] = m;
    }
    while (i > 0) {
        i--;
        swarm_member_t *m = s->members[js[i]];
        s->members[js[i]] = s->members[i];
        s->members[i] = m;
    }
    return picked;
}

uint32_t swarm_expire(swarm_table_t *t, uint32_t now, uint32_t timeout, uint32_t budget,
                      void (*expired)(swarm_member_t *m, void *arg), void *arg) {
    uint32_t removed = 0;
    if (budget == 0)
        budget = (uint32_t)(t->map.mask / 8 + 64);
    for (uint32_t b = 0; b < budget && b <= t->map.mask; b++) {
        if (t->sweep_bucket > t->map.mask)
            t->sweep_bucket = 0;
        hmap_node_t *node = t->map.buckets[t->sweep_bucket++];
        while (node) {
            hmap_node_t *next = node->next;
            swarm_t *s = (swarm_t *)node;
            /* Walk backwards: a removal only moves members from higher indices into lower
             * ones, and those have been visited already. The swarm is freed when its last
             * member goes, so stop touching it then. */
            for (uint32_t i = s->count; i > 0; i--) {
                swarm_member_t *m = s->members[i - 1];
                if (now - m->last_announce > timeout) {
                    int last = s->count == 1;
                    expired(m, arg);
                    removed++;
                    if (last)
                        break;
                }
            }
            node = next;
        }
    }
    return removed;
}

size_t swarm_scan(const swarm_table_t *t, size_t cursor, uint32_t buckets,
                  void (*fn)(const swarm_t *s, void *arg), void *arg) {
    /* The table may have shrunk or grown since the cursor was handed out: a cursor past the
     * end starts over, which at worst visits some buckets twice. */
    if (cursor > t->map.mask)
        cursor = 0;
    for (uint32_t b = 0; b < buckets; b++) {
        for (hmap_node_t *n = t->map.buckets[cursor]; n != NULL; n = n->next)
            fn((const swarm_t *)n, arg);
        if (++cursor > t->map.mask)
            return 0;
    }
    return cursor;
}

swarm_totals_t swarm_totals(const swarm_table_t *t) {
    return t->totals;
}
