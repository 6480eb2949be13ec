/* test_swarm.c: unit tests of the swarm table (src/tracker/swarm.c). A checker walks every swarm
 * the test knows of and verifies the layout invariants (count, seeders, the leechers-first
 * partition, every member's index and back pointer) and the table totals; the randomized test
 * runs it after every one of 100k operations against a plain array model. */
#include "unit.h"

#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/rng.h"
#include "tracker/swarm.h"

/* Owners (connections) and infohashes of the randomized model test. */
#define MODEL_OWNERS 48
#define MODEL_SWARMS 12
/* Operations of the randomized model test. */
#define MODEL_OPS 100000
/* Samples drawn by the uniformity tests. */
#define UNIFORM_ROUNDS 60000
/* Allowed relative deviation of a pick frequency from its expectation (about 10 sigma at the
 * smallest expectation used here, so the test is deterministic in practice: the seed is fixed). */
#define UNIFORM_TOLERANCE 0.06

static const hash_key_t test_key = {0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};

/* A stand-in for a connection: the list head of its memberships. */
typedef struct owner {
    swarm_member_t *list;
    int id;
} owner_t;

static void make_ih(uint8_t ih[SWARM_INFOHASH_BYTES], unsigned n) {
    memset(ih, 0, SWARM_INFOHASH_BYTES);
    ih[0] = (uint8_t)n;
    ih[1] = (uint8_t)(n >> 8);
    ih[19] = 0xa5;
}

/* Checks every layout invariant of one swarm and returns its member count. */
static uint32_t check_swarm(const swarm_t *s) {
    assert_non_null(s);
    assert_true(s->count > 0); /* empty swarms must have been freed */
    assert_true(s->count <= s->cap);
    assert_true(s->seeders <= s->count);
    for (uint32_t i = 0; i < s->count; i++) {
        const swarm_member_t *m = s->members[i];
        assert_non_null(m);
        assert_ptr_equal(m->swarm, s);
        assert_int_equal(m->index, i);
        /* Leechers first, then seeders. */
        assert_int_equal(m->seeder, i >= s->count - s->seeders ? 1 : 0);
        for (uint32_t j = 0; j < i; j++)
            assert_ptr_not_equal(s->members[j], m);
    }
    return s->count;
}

/* Checks every swarm of ihs[0..n) (absent ones must be NULL when expect_count[i] == 0) and the
 * table totals. */
static void check_table(swarm_table_t *t, const unsigned *ihs, const uint32_t *expect_count,
                        const uint32_t *expect_seeders, size_t n) {
    swarm_totals_t tot = swarm_totals(t);
    uint64_t swarms = 0, members = 0, seeders = 0;
    for (size_t k = 0; k < n; k++) {
        uint8_t ih[SWARM_INFOHASH_BYTES];
        make_ih(ih, ihs[k]);
        swarm_t *s = swarm_find(t, ih);
        if (expect_count[k] == 0) {
            assert_null(s);
            continue;
        }
        assert_int_equal(check_swarm(s), expect_count[k]);
        assert_int_equal(s->seeders, expect_seeders[k]);
        assert_int_equal(swarm_leechers(s), expect_count[k] - expect_seeders[k]);
        assert_memory_equal(s->info_hash, ih, SWARM_INFOHASH_BYTES);
        swarms++;
        members += s->count;
        seeders += s->seeders;
    }
    assert_int_equal(tot.swarms, swarms);
    assert_int_equal(tot.members, members);
    assert_int_equal(tot.seeders, seeders);
}

static swarm_member_t *join(swarm_table_t *t, unsigned ih_n, owner_t *o, int seeder,
                            uint8_t dialect, uint32_t now) {
    uint8_t ih[SWARM_INFOHASH_BYTES];
    make_ih(ih, ih_n);
    swarm_member_t *m = swarm_join(t, ih, o, dialect, &o->list, seeder, now);
    assert_non_null(m);
    assert_ptr_equal(m->owner, o);
    assert_ptr_equal(o->list, m); /* linked at the head */
    assert_int_equal(m->seeder, seeder ? 1 : 0);
    assert_int_equal(m->dialect, dialect);
    assert_int_equal(m->last_announce, now);
    return m;
}

static swarm_t *find(swarm_table_t *t, unsigned ih_n) {
    uint8_t ih[SWARM_INFOHASH_BYTES];
    make_ih(ih, ih_n);
    return swarm_find(t, ih);
}

/* ---- join, leave, set_seeder ---------------------------------------------------------------- */

static void test_join_partition(void **state) {
    (void)state;
    size_t heap0 = alloc_bytes_in_use();
    swarm_table_t *t = swarm_table_create(&test_key);
    owner_t o[10] = {{0}};
    unsigned ihs[1] = {7};
    uint32_t cnt = 0, seeds = 0;
    /* Interleave seeders and leechers so the array grows past its initial capacity while a new
     * leecher has to displace the first seeder each time. */
    static const int pattern[10] = {1, 0, 1, 1, 0, 0, 1, 0, 1, 0};
    for (int i = 0; i < 10; i++) {
        join(t, 7, &o[i], pattern[i], 1, 100);
        cnt++;
        seeds += (uint32_t)pattern[i];
        check_table(t, ihs, &cnt, &seeds, 1);
    }
    assert_int_equal(swarm_totals(t).swarms, 1);
    /* swarm_member_of finds each owner's membership. */
    swarm_t *s = find(t, 7);
    for (int i = 0; i < 10; i++) {
        swarm_member_t *m = swarm_member_of(o[i].list, s);
        assert_non_null(m);
        assert_ptr_equal(m->owner, &o[i]);
    }
    assert_null(swarm_member_of(NULL, s));
    for (int i = 0; i < 10; i++) {
        seeds -= o[i].list->seeder;
        swarm_leave(t, o[i].list, &o[i].list);
        assert_null(o[i].list);
        cnt--;
        check_table(t, ihs, &cnt, &seeds, 1);
    }
    assert_null(find(t, 7));
    swarm_totals_t tot = swarm_totals(t);
    assert_int_equal(tot.swarms, 0);
    assert_int_equal(tot.members, 0);
    assert_int_equal(tot.seeders, 0);
    swarm_table_destroy(t);
    assert_int_equal(alloc_bytes_in_use(), heap0);
}

static void test_set_seeder(void **state) {
    (void)state;
    size_t heap0 = alloc_bytes_in_use();
    swarm_table_t *t = swarm_table_create(&test_key);
    owner_t o[6] = {{0}};
    unsigned ihs[1] = {3};
    uint32_t cnt = 6, seeds = 0;
    for (int i = 0; i < 6; i++)
        join(t, 3, &o[i], 0, 1, 1);
    check_table(t, ihs, &cnt, &seeds, 1);
    /* Promote from every position of the leecher part, including the first and the last. */
    int order[6] = {0, 5, 2, 3, 1, 4};
    for (int k = 0; k < 6; k++) {
        swarm_member_t *m = o[order[k]].list;
        swarm_set_seeder(t, m, 1);
        assert_int_equal(m->seeder, 1);
        seeds++;
        check_table(t, ihs, &cnt, &seeds, 1);
        swarm_set_seeder(t, m, 7); /* any non-zero means seeder: a no-op now */
        check_table(t, ihs, &cnt, &seeds, 1);
    }
    for (int k = 5; k >= 0; k--) {
        swarm_member_t *m = o[order[k]].list;
        swarm_set_seeder(t, m, 0);
        assert_int_equal(m->seeder, 0);
        seeds--;
        check_table(t, ihs, &cnt, &seeds, 1);
        swarm_set_seeder(t, m, 0);
        check_table(t, ihs, &cnt, &seeds, 1);
    }
    for (int i = 0; i < 6; i++)
        swarm_leave_all(t, &o[i].list);
    swarm_table_destroy(t);
    assert_int_equal(alloc_bytes_in_use(), heap0);
}

/* Leaves from every position of a mixed swarm: first/last leecher, first/last seeder. */
static void test_leave_positions(void **state) {
    (void)state;
    size_t heap0 = alloc_bytes_in_use();
    for (uint32_t victim = 0; victim < 8; victim++) {
        swarm_table_t *t = swarm_table_create(&test_key);
        owner_t o[8] = {{0}};
        unsigned ihs[1] = {9};
        uint32_t cnt = 8, seeds = 4;
        for (int i = 0; i < 8; i++)
            join(t, 9, &o[i], i % 2, 1, 1);
        check_table(t, ihs, &cnt, &seeds, 1);
        swarm_t *s = find(t, 9);
        swarm_member_t *m = s->members[victim];
        owner_t *ow = m->owner;
        seeds -= m->seeder;
        swarm_leave(t, m, &ow->list);
        cnt--;
        check_table(t, ihs, &cnt, &seeds, 1);
        assert_null(ow->list);
        for (int i = 0; i < 8; i++)
            swarm_leave_all(t, &o[i].list);
        assert_int_equal(swarm_totals(t).members, 0);
        swarm_table_destroy(t);
    }
    assert_int_equal(alloc_bytes_in_use(), heap0);
}

/* The array shrinks when a big swarm empties, and stays consistent while it does. */
static void test_grow_and_shrink(void **state) {
    (void)state;
    size_t heap0 = alloc_bytes_in_use();
    enum { N = 300 };
    swarm_table_t *t = swarm_table_create(&test_key);
    owner_t *o = calloc(N, sizeof(*o));
    assert_non_null(o);
    unsigned ihs[1] = {1};
    uint32_t cnt = 0, seeds = 0;
    for (int i = 0; i < N; i++) {
        join(t, 1, &o[i], (i % 3) == 0, 1, 1);
        cnt++;
        seeds += (i % 3) == 0;
    }
    check_table(t, ihs, &cnt, &seeds, 1);
    uint32_t big_cap = find(t, 1)->cap;
    assert_true(big_cap >= N);
    for (int i = 0; i < N - 2; i++) {
        seeds -= o[i].list->seeder;
        swarm_leave(t, o[i].list, &o[i].list);
        cnt--;
        check_table(t, ihs, &cnt, &seeds, 1);
    }
    assert_true(find(t, 1)->cap < big_cap);
    for (int i = N - 2; i < N; i++)
        swarm_leave_all(t, &o[i].list);
    assert_null(find(t, 1));
    swarm_table_destroy(t);
    free(o);
    assert_int_equal(alloc_bytes_in_use(), heap0);
}

/* One owner in many swarms: swarm_leave_all empties its list and frees the emptied swarms. */
static void test_leave_all(void **state) {
    (void)state;
    size_t heap0 = alloc_bytes_in_use();
    enum { SW = 20 };
    swarm_table_t *t = swarm_table_create(&test_key);
    owner_t a = {0}, b = {0};
    unsigned ihs[SW];
    uint32_t cnt[SW], seeds[SW];
    for (unsigned i = 0; i < SW; i++) {
        ihs[i] = 100 + i;
        join(t, ihs[i], &a, (int)(i & 1), 1, 1);
        cnt[i] = 1;
        seeds[i] = i & 1;
        if (i % 4 == 0) {
            join(t, ihs[i], &b, 0, 2, 1);
            cnt[i]++;
        }
    }
    check_table(t, ihs, cnt, seeds, SW);
    /* a's list holds exactly one membership per swarm. */
    unsigned n = 0;
    for (swarm_member_t *m = a.list; m; m = m->next_of_owner) {
        assert_ptr_equal(m->owner, &a);
        n++;
    }
    assert_int_equal(n, SW);
    swarm_leave_all(t, &a.list);
    assert_null(a.list);
    for (unsigned i = 0; i < SW; i++) {
        cnt[i] = i % 4 == 0 ? 1 : 0;
        seeds[i] = 0;
    }
    check_table(t, ihs, cnt, seeds, SW);
    assert_int_equal(swarm_totals(t).swarms, SW / 4);
    swarm_leave_all(t, &b.list);
    assert_null(b.list);
    swarm_leave_all(t, &b.list); /* an empty list is fine */
    swarm_totals_t tot = swarm_totals(t);
    assert_int_equal(tot.swarms, 0);
    assert_int_equal(tot.members, 0);
    assert_int_equal(tot.seeders, 0);
    swarm_table_destroy(t);
    assert_int_equal(alloc_bytes_in_use(), heap0);
}

/* swarm_leave removes the right node from the middle of an owner's list. */
static void test_leave_middle_of_owner_list(void **state) {
    (void)state;
    swarm_table_t *t = swarm_table_create(&test_key);
    owner_t a = {0};
    swarm_member_t *m[5];
    for (unsigned i = 0; i < 5; i++)
        m[i] = join(t, 200 + i, &a, 0, 1, 1);
    swarm_leave(t, m[2], &a.list); /* list is m4 m3 m2 m1 m0 */
    swarm_member_t *expect[4] = {m[4], m[3], m[1], m[0]};
    swarm_member_t *p = a.list;
    for (int i = 0; i < 4; i++, p = p->next_of_owner)
        assert_ptr_equal(p, expect[i]);
    assert_null(p);
    assert_null(find(t, 202));
    swarm_leave(t, m[4], &a.list); /* the head */
    assert_ptr_equal(a.list, m[3]);
    swarm_leave(t, m[0], &a.list); /* the tail */
    assert_ptr_equal(a.list->next_of_owner, m[1]);
    assert_null(m[1]->next_of_owner);
    swarm_leave_all(t, &a.list);
    assert_int_equal(swarm_totals(t).swarms, 0);
    swarm_table_destroy(t);
}

/* 100k random joins, leaves, state changes and leave_alls against a model; the checker runs
 * after every operation, and every owner's list is compared with the model. */
static void test_random_model(void **state) {
    (void)state;
    size_t heap0 = alloc_bytes_in_use();
    swarm_table_t *t = swarm_table_create(&test_key);
    owner_t o[MODEL_OWNERS];
    /* model[owner][swarm]: -1 absent, 0 leecher, 1 seeder */
    signed char model[MODEL_OWNERS][MODEL_SWARMS];
    unsigned ihs[MODEL_SWARMS];
    uint32_t cnt[MODEL_SWARMS], seeds[MODEL_SWARMS];
    memset(o, 0, sizeof(o));
    memset(model, -1, sizeof(model));
    memset(cnt, 0, sizeof(cnt));
    memset(seeds, 0, sizeof(seeds));
    for (unsigned k = 0; k < MODEL_SWARMS; k++)
        ihs[k] = 1000 + k * 37;
    rng_t r;
    rng_seed(&r, 12345);
    uint64_t counts[4] = {0};
    for (uint32_t op = 0; op < MODEL_OPS; op++) {
        unsigned oi = rng_below(&r, MODEL_OWNERS);
        unsigned k = rng_below(&r, MODEL_SWARMS);
        owner_t *ow = &o[oi];
        uint32_t what = rng_below(&r, 1000);
        swarm_t *s = find(t, ihs[k]);
        swarm_member_t *m = s ? swarm_member_of(ow->list, s) : NULL;
        assert_true((m != NULL) == (model[oi][k] >= 0));
        if (what < 4) {
            /* Rarely: the owner closes. */
            swarm_leave_all(t, &ow->list);
            for (unsigned j = 0; j < MODEL_SWARMS; j++) {
                if (model[oi][j] >= 0) {
                    cnt[j]--;
                    seeds[j] -= (uint32_t)model[oi][j];
                    model[oi][j] = -1;
                }
            }
            counts[3]++;
        } else if (m == NULL) {
            int seeder = (int)rng_below(&r, 2);
            join(t, ihs[k], ow, seeder, (uint8_t)(1 + oi % 2), op);
            model[oi][k] = (signed char)seeder;
            cnt[k]++;
            seeds[k] += (uint32_t)seeder;
            counts[0]++;
        } else if (what < 450) {
            seeds[k] -= m->seeder;
            swarm_leave(t, m, &ow->list);
            model[oi][k] = -1;
            cnt[k]--;
            counts[1]++;
        } else {
            int seeder = (int)rng_below(&r, 2);
            swarm_set_seeder(t, m, seeder);
            seeds[k] = seeds[k] - (uint32_t)model[oi][k] + (uint32_t)seeder;
            model[oi][k] = (signed char)seeder;
            assert_int_equal(m->seeder, seeder);
            counts[2]++;
        }
        check_table(t, ihs, cnt, seeds, MODEL_SWARMS);
        /* The owner's list holds exactly its model memberships. */
        unsigned listed = 0;
        for (swarm_member_t *p = ow->list; p; p = p->next_of_owner) {
            assert_ptr_equal(p->owner, ow);
            listed++;
        }
        unsigned expected = 0;
        for (unsigned j = 0; j < MODEL_SWARMS; j++) {
            if (model[oi][j] < 0)
                continue;
            expected++;
            swarm_member_t *pm = swarm_member_of(ow->list, find(t, ihs[j]));
            assert_non_null(pm);
            assert_int_equal(pm->seeder, model[oi][j]);
        }
        assert_int_equal(listed, expected);
    }
    /* Every kind of operation ran many times. */
    assert_true(counts[0] > 10000 && counts[1] > 10000 && counts[2] > 10000 && counts[3] > 100);
    for (unsigned i = 0; i < MODEL_OWNERS; i++)
        swarm_leave_all(t, &o[i].list);
    swarm_totals_t tot = swarm_totals(t);
    assert_int_equal(tot.swarms, 0);
    assert_int_equal(tot.members, 0);
    assert_int_equal(tot.seeders, 0);
    swarm_table_destroy(t);
    assert_int_equal(alloc_bytes_in_use(), heap0);
}

/* The table can be destroyed while swarms still have members (shutdown). */
static void test_destroy_nonempty(void **state) {
    (void)state;
    size_t heap0 = alloc_bytes_in_use();
    swarm_table_t *t = swarm_table_create(&test_key);
    owner_t o[30] = {{0}};
    for (unsigned i = 0; i < 30; i++)
        for (unsigned k = 0; k < 5; k++)
            join(t, k, &o[i], (int)((i + k) & 1), 1, 1);
    assert_int_equal(swarm_totals(t).members, 150);
    swarm_table_destroy(t);
    swarm_table_destroy(NULL);
    assert_int_equal(alloc_bytes_in_use(), heap0);
}

/* ---- sampling ------------------------------------------------------------------------------- */

/* Snapshot of a swarm's array, to prove a sample leaves it as it was. */
static swarm_member_t **snapshot(const swarm_t *s) {
    swarm_member_t **copy = malloc(s->count * sizeof(*copy));
    assert_non_null(copy);
    memcpy(copy, s->members, s->count * sizeof(*copy));
    return copy;
}

/* Draws one sample and checks every documented property; returns how many were picked. */
static uint32_t sample_checked(swarm_t *s, const swarm_member_t *self, int leechers_only,
                               uint8_t dialect, rng_t *r, swarm_member_t **out, uint32_t want) {
    uint32_t count = s->count, seeders = s->seeders;
    swarm_member_t **before = snapshot(s);
    uint32_t n = swarm_sample(s, self, leechers_only, dialect, r, out, want);
    assert_true(n <= want);
    for (uint32_t i = 0; i < n; i++) {
        assert_non_null(out[i]);
        assert_ptr_equal(out[i]->swarm, s);
        assert_ptr_not_equal(out[i], self);
        if (leechers_only)
            assert_int_equal(out[i]->seeder, 0);
        if (dialect != 0)
            assert_int_equal(out[i]->dialect, dialect);
        for (uint32_t j = 0; j < i; j++)
            assert_ptr_not_equal(out[i], out[j]);
    }
    assert_int_equal(s->count, count);
    assert_int_equal(s->seeders, seeders);
    assert_memory_equal(s->members, before, count * sizeof(*before));
    check_swarm(s);
    free(before);
    return n;
}

/* Counts the members eligible for a sample. */
static uint32_t eligible(const swarm_t *s, const swarm_member_t *self, int leechers_only,
                         uint8_t dialect) {
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->count; i++) {
        const swarm_member_t *m = s->members[i];
        if (m != self && !(leechers_only && m->seeder) && !(dialect && m->dialect != dialect))
            n++;
    }
    return n;
}

static void test_sample_properties(void **state) {
    (void)state;
    size_t heap0 = alloc_bytes_in_use();
    enum { N = 40 };
    swarm_table_t *t = swarm_table_create(&test_key);
    owner_t o[N];
    memset(o, 0, sizeof(o));
    swarm_member_t *ms[N];
    for (int i = 0; i < N; i++)
        ms[i] = join(t, 5, &o[i], i % 3 == 0, (uint8_t)(1 + (i % 4 == 0)), 1);
    swarm_t *s = find(t, 5);
    rng_t r;
    rng_seed(&r, 99);
    swarm_member_t *out[128];
    for (int round = 0; round < 2000; round++) {
        const swarm_member_t *self = round % 5 == 0 ? NULL : ms[rng_below(&r, N)];
        int lo = (int)rng_below(&r, 2);
        uint8_t dialect = (uint8_t)rng_below(&r, 3);
        uint32_t want = rng_below(&r, 60);
        uint32_t n = sample_checked(s, self, lo, dialect, &r, out, want);
        /* In a swarm this small every eligible member is reachable, so a sample is only short
         * when there are not enough eligible members. */
        uint32_t e = eligible(s, self, lo, dialect);
        assert_int_equal(n, want < e ? want : e);
    }
    /* want = 0 picks nothing. */
    assert_int_equal(sample_checked(s, NULL, 0, 0, &r, out, 0), 0);
    /* A swarm of one, sampled by that one, gives nothing. */
    owner_t lone = {0};
    swarm_member_t *lm = join(t, 6, &lone, 0, 1, 1);
    assert_int_equal(sample_checked(find(t, 6), lm, 0, 0, &r, out, 10), 0);
    assert_int_equal(sample_checked(find(t, 6), NULL, 0, 0, &r, out, 10), 1);
    assert_ptr_equal(out[0], lm);
    /* A swarm of seeders only: a leechers-only sample is empty. */
    swarm_set_seeder(t, lm, 1);
    assert_int_equal(sample_checked(find(t, 6), NULL, 1, 0, &r, out, 10), 0);
    swarm_leave_all(t, &lone.list);
    for (int i = 0; i < N; i++)
        swarm_leave_all(t, &o[i].list);
    swarm_table_destroy(t);
    assert_int_equal(alloc_bytes_in_use(), heap0);
}

/* A want beyond the sample cap is capped, never overflowing out[] of the capped size. */
static void test_sample_large_want(void **state) {
    (void)state;
    enum { N = 300 };
    swarm_table_t *t = swarm_table_create(&test_key);
    owner_t *o = calloc(N, sizeof(*o));
    assert_non_null(o);
    for (int i = 0; i < N; i++)
        join(t, 8, &o[i], 0, 1, 1);
    swarm_t *s = find(t, 8);
    rng_t r;
    rng_seed(&r, 5);
    swarm_member_t **out = calloc(N, sizeof(*out));
    assert_non_null(out);
    uint32_t n = sample_checked(s, NULL, 0, 0, &r, out, N);
    assert_true(n > 0 && n <= 128);
    for (int i = 0; i < N; i++)
        swarm_leave_all(t, &o[i].list);
    swarm_table_destroy(t);
    free(out);
    free(o);
}

/* Checks that over many samples each eligible member was picked about equally often. */
static void check_uniform(const uint32_t *hits, const int *elig, int n, double expect) {
    for (int i = 0; i < n; i++) {
        if (!elig[i]) {
            assert_int_equal(hits[i], 0);
            continue;
        }
        double dev = ((double)hits[i] - expect) / expect;
        if (dev > UNIFORM_TOLERANCE || dev < -UNIFORM_TOLERANCE)
            fail_msg("member %d picked %u times, expected about %.0f", i, hits[i], expect);
    }
}

static void test_sample_uniform(void **state) {
    (void)state;
    enum { N = 12 };
    swarm_table_t *t = swarm_table_create(&test_key);
    owner_t o[N];
    memset(o, 0, sizeof(o));
    swarm_member_t *ms[N];
    /* Members 0..7 leechers, 8..11 seeders; even members dialect 1, odd dialect 2. */
    for (int i = 0; i < N; i++) {
        o[i].id = i;
        ms[i] = join(t, 11, &o[i], i >= 8, (uint8_t)(1 + (i & 1)), 1);
    }
    swarm_t *s = find(t, 11);
    rng_t r;
    rng_seed(&r, 2024);
    swarm_member_t *out[128];
    uint32_t hits[N];
    int elig[N];

    /* Any member but self, 3 at a time: 11 eligible, each expected 3/11 of the rounds. */
    memset(hits, 0, sizeof(hits));
    for (int round = 0; round < UNIFORM_ROUNDS; round++) {
        uint32_t n = swarm_sample(s, ms[0], 0, 0, &r, out, 3);
        assert_int_equal(n, 3);
        for (uint32_t k = 0; k < n; k++)
            hits[((owner_t *)out[k]->owner)->id]++;
    }
    for (int i = 0; i < N; i++)
        elig[i] = i != 0;
    check_uniform(hits, elig, N, UNIFORM_ROUNDS * 3.0 / 11.0);

    /* The first pick alone is uniform too (position bias would show here). */
    memset(hits, 0, sizeof(hits));
    for (int round = 0; round < UNIFORM_ROUNDS; round++) {
        uint32_t n = swarm_sample(s, NULL, 0, 0, &r, out, 4);
        assert_int_equal(n, 4);
        hits[((owner_t *)out[0]->owner)->id]++;
    }
    for (int i = 0; i < N; i++)
        elig[i] = 1;
    check_uniform(hits, elig, N, UNIFORM_ROUNDS / 12.0);

    /* Leechers only, of dialect 1, not self (member 2): members 0, 4, 6 are eligible. */
    memset(hits, 0, sizeof(hits));
    for (int round = 0; round < UNIFORM_ROUNDS; round++) {
        uint32_t n = swarm_sample(s, ms[2], 1, 1, &r, out, 2);
        assert_int_equal(n, 2);
        for (uint32_t k = 0; k < n; k++)
            hits[((owner_t *)out[k]->owner)->id]++;
    }
    for (int i = 0; i < N; i++)
        elig[i] = i < 8 && (i & 1) == 0 && i != 2;
    check_uniform(hits, elig, N, UNIFORM_ROUNDS * 2.0 / 3.0);
    check_swarm(s);
    for (int i = 0; i < N; i++)
        swarm_leave_all(t, &o[i].list);
    swarm_table_destroy(t);
}

/* ---- expiry --------------------------------------------------------------------------------- */

typedef struct expire_ctx {
    swarm_table_t *t;
    uint32_t now, timeout;
    uint32_t calls;
} expire_ctx_t;

/* The callback the server uses, plus checks: only expired members are offered, and each once
 * (a member is freed by swarm_leave, so a second offer would be a use after free under ASan). */
static void on_expired(swarm_member_t *m, void *arg) {
    expire_ctx_t *x = arg;
    assert_true(x->now - m->last_announce > x->timeout);
    owner_t *ow = m->owner;
    swarm_leave(x->t, m, &ow->list);
    x->calls++;
}

/* Runs swarm_expire in small steps (budget buckets per call) over many swarms, some of which
 * expire entirely, and checks that after a full sweep exactly the expired members are gone. */
static void run_expire(unsigned nswarms, uint32_t budget, uint32_t base) {
    size_t heap0 = alloc_bytes_in_use();
    enum { PER = 5 };
    swarm_table_t *t = swarm_table_create(&test_key);
    unsigned nown = nswarms * PER;
    owner_t *o = calloc(nown, sizeof(*o));
    unsigned *ihs = calloc(nswarms, sizeof(*ihs));
    uint32_t *cnt = calloc(nswarms, sizeof(*cnt));
    uint32_t *seeds = calloc(nswarms, sizeof(*seeds));
    assert_true(o && ihs && cnt && seeds);
    const uint32_t timeout = 100, now = base + 1000;
    uint32_t expect_expired = 0;
    rng_t r;
    rng_seed(&r, nswarms * 31u + budget);
    for (unsigned k = 0; k < nswarms; k++) {
        ihs[k] = k;
        for (unsigned j = 0; j < PER; j++) {
            owner_t *ow = &o[k * PER + j];
            /* Swarms divisible by 4 expire entirely; others keep a random part. Ages straddle
             * the timeout, including exactly timeout (not expired) and timeout + 1. */
            uint32_t age;
            if (k % 4 == 0)
                age = timeout + 1 + rng_below(&r, 500);
            else
                age = rng_below(&r, 3) == 0 ? timeout + 1 : rng_below(&r, 2) ? timeout : 5;
            int seeder = (int)rng_below(&r, 2);
            join(t, ihs[k], ow, seeder, 1, now - age);
            if (age > timeout) {
                expect_expired++;
            } else {
                cnt[k]++;
                seeds[k] += (uint32_t)seeder;
            }
        }
    }
    expire_ctx_t x = {t, now, timeout, 0};
    uint32_t removed = 0;
    /* Enough calls for a full sweep of the (possibly grown) bucket array, and then some: the
     * second pass must find nothing more. */
    for (int call = 0; call < 2 * 4096; call++)
        removed += swarm_expire(t, now, timeout, budget, on_expired, &x);
    assert_int_equal(removed, expect_expired);
    assert_int_equal(x.calls, expect_expired);
    check_table(t, ihs, cnt, seeds, nswarms);
    for (unsigned i = 0; i < nown; i++)
        swarm_leave_all(t, &o[i].list);
    assert_int_equal(swarm_totals(t).swarms, 0);
    swarm_table_destroy(t);
    free(o);
    free(ihs);
    free(cnt);
    free(seeds);
    assert_int_equal(alloc_bytes_in_use(), heap0);
}

static void test_expire_small_budget(void **state) {
    (void)state;
    run_expire(200, 3, 0);
}

static void test_expire_default_budget(void **state) {
    (void)state;
    run_expire(200, 0, 0);
}

/* More swarms than the table's initial buckets, so the table has grown. */
static void test_expire_grown_table(void **state) {
    (void)state;
    run_expire(3000, 17, 0);
}

/* The monotonic clock near its wrap-around: ages are differences, so they still work. */
static void test_expire_clock_wrap(void **state) {
    (void)state;
    run_expire(100, 50, UINT32_MAX - 500);
}

/* A partial sweep expires only the buckets it visits, and the next call continues from there:
 * after ceil(buckets / budget) calls, everything expired is gone. */
static void test_expire_incremental(void **state) {
    (void)state;
    enum { NS = 400 };
    swarm_table_t *t = swarm_table_create(&test_key);
    owner_t o[NS];
    memset(o, 0, sizeof(o));
    for (unsigned k = 0; k < NS; k++)
        join(t, k, &o[k], 0, 1, 1);
    expire_ctx_t x = {t, 1000, 10, 0};
    /* The table starts with 1024 buckets; with budget 128 a sweep takes 8 calls. */
    uint32_t total = 0;
    for (int call = 0; call < 8; call++) {
        uint32_t n = swarm_expire(t, 1000, 10, 128, on_expired, &x);
        total += n;
        if (call < 7)
            assert_true(total < NS);
    }
    assert_int_equal(total, NS);
    assert_int_equal(swarm_totals(t).swarms, 0);
    assert_int_equal(swarm_expire(t, 1000, 10, 128, on_expired, &x), 0);
    swarm_table_destroy(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_join_partition),
        cmocka_unit_test(test_set_seeder),
        cmocka_unit_test(test_leave_positions),
        cmocka_unit_test(test_grow_and_shrink),
        cmocka_unit_test(test_leave_all),
        cmocka_unit_test(test_leave_middle_of_owner_list),
        cmocka_unit_test(test_random_model),
        cmocka_unit_test(test_destroy_nonempty),
        cmocka_unit_test(test_sample_properties),
        cmocka_unit_test(test_sample_large_want),
        cmocka_unit_test(test_sample_uniform),
        cmocka_unit_test(test_expire_small_budget),
        cmocka_unit_test(test_expire_default_budget),
        cmocka_unit_test(test_expire_grown_table),
        cmocka_unit_test(test_expire_clock_wrap),
        cmocka_unit_test(test_expire_incremental),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
