/* swarm_micro.c: how the cost of an announce grows with swarm size and swarm count, measured on
 * the swarm table itself, so that swarms far larger than one process's descriptor limit (about
 * 20,000 connections here) can be measured: 1, 100, 10,000, 100,000 and 1,000,000 peers in one
 * swarm, and 1 versus 100,000 swarms.
 *
 * An "announce" here is what tracker_announce and the ST answer do to the table: find the swarm,
 * find the member among the owner's memberships, refresh it, and sample num_want peers.
 *
 *   gcc -O2 -D_GNU_SOURCE -Isrc bench/swarm_micro.c src/tracker/swarm.c src/core/hash.c \
 *       src/core/hmap.c src/core/rng.c src/core/alloc.c -o bench/build/swarm_micro
 *   bench/build/swarm_micro
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "tracker/swarm.h"

/* Announces timed per configuration. */
#define ANNOUNCES 200000
/* Peers asked for by each announce (the ST default is 20, the cap 50). */
#define NUM_WANT 50
/* Rounds per configuration; the median is printed. */
#define ROUNDS 5

typedef struct owner {
    swarm_member_t *members;
} owner_t;

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void make_hash(uint8_t ih[20], uint32_t i) {
    memset(ih, 0, 20);
    memcpy(ih, &i, sizeof(i));
    ih[19] = 0x5a;
}

/* Fills `swarms` swarms with `peers` members each (a quarter of them seeders) and returns the
 * owners. Then times announces by random owners of random swarms; prints ns per announce. */
static void run(uint32_t swarms, uint32_t peers) {
    hash_key_t key = {0x0123456789abcdefULL, 0xfedcba9876543210ULL};
    swarm_table_t *t = swarm_table_create(&key);
    rng_t rng;
    rng_seed(&rng, 42);
    uint64_t total = (uint64_t)swarms * peers;
    owner_t *owners = xcalloc(total, sizeof(*owners));
    uint8_t ih[20];
    size_t heap0 = alloc_bytes_in_use();
    for (uint32_t w = 0; w < swarms; w++) {
        make_hash(ih, w);
        for (uint32_t p = 0; p < peers; p++) {
            owner_t *o = &owners[(uint64_t)w * peers + p];
            swarm_join(t, ih, o, 1, &o->members, p % 4 == 0, 1);
        }
    }
    size_t heap = alloc_bytes_in_use() - heap0;
    double per[ROUNDS];
    swarm_member_t *out[NUM_WANT];
    uint64_t sink = 0;
    for (int r = 0; r < ROUNDS; r++) {
        double t0 = now_ns();
        for (uint32_t i = 0; i < ANNOUNCES; i++) {
            uint32_t w = rng_below(&rng, swarms);
            owner_t *o = &owners[(uint64_t)w * peers + rng_below(&rng, peers)];
            make_hash(ih, w);
            swarm_t *s = swarm_find(t, ih);
            swarm_member_t *m = swarm_member_of(o->members, s);
            m->last_announce = 2;
            swarm_set_seeder(t, m, m->seeder);
            sink += swarm_sample(s, m, m->seeder, 1, &rng, out, NUM_WANT);
        }
        per[r] = (now_ns() - t0) / ANNOUNCES;
    }
    qsort(per, ROUNDS, sizeof(per[0]), cmp_double);
    printf("%9u swarms x %9u peers: %7.1f ns per announce (num_want %d, median of %d x %d), "
           "%5.1f bytes of heap per member, %llu peers returned\n",
           swarms, peers, per[ROUNDS / 2], NUM_WANT, ROUNDS, ANNOUNCES,
           (double)heap / (double)total, (unsigned long long)sink);
    swarm_table_destroy(t);
    xfree(owners);
}

int main(void) {
    printf("swarm_micro: announce cost against swarm size and swarm count\n");
    run(1, 1);
    run(1, 100);
    run(1, 10000);
    run(1, 100000);
    run(1, 1000000);
    run(100000, 1);
    run(100000, 10);
    return 0;
}
