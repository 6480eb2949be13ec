/* test_histo.c: core/histo.c, and swarm_scan's bounded walk that the dashboard uses. */
#include "unit.h"

#include "core/histo.h"
#include "tracker/swarm.h"

static void test_buckets(void **state) {
    (void)state;
    static histo_t h;
    static const uint64_t bounds[] = {10, 100, 1000};
    histo_init(&h, bounds, 3);
    histo_observe(&h, 0);
    histo_observe(&h, 10); /* bounds are inclusive (Prometheus's le) */
    histo_observe(&h, 11);
    histo_observe(&h, 1000);
    histo_observe(&h, 5000); /* only in +Inf */
    histo_snap_t s;
    histo_read(&h, &s);
    assert_int_equal(s.nbounds, 3);
    assert_int_equal(s.cumulative[0], 2);
    assert_int_equal(s.cumulative[1], 3);
    assert_int_equal(s.cumulative[2], 4);
    assert_int_equal(s.count, 5);
    assert_int_equal(s.sum, 0 + 10 + 11 + 1000 + 5000);
}

static void test_standard_bounds(void **state) {
    (void)state;
    assert_true(histo_us_nbounds <= HISTO_MAX_BUCKETS);
    assert_true(histo_size_nbounds <= HISTO_MAX_BUCKETS);
    for (uint32_t i = 1; i < histo_us_nbounds; i++)
        assert_true(histo_us_bounds[i] > histo_us_bounds[i - 1]);
    for (uint32_t i = 1; i < histo_size_nbounds; i++)
        assert_true(histo_size_bounds[i] > histo_size_bounds[i - 1]);
}

static void count_swarm(const swarm_t *s, void *arg) {
    (void)s;
    (*(uint32_t *)arg)++;
}

/* A scan in slices visits every swarm exactly once per round. */
static void test_swarm_scan(void **state) {
    (void)state;
    hash_key_t key = {1, 2};
    swarm_table_t *t = swarm_table_create(&key);
    swarm_member_t *owned[50] = {0};
    for (uint32_t i = 0; i < 50; i++) {
        uint8_t ih[20] = {0};
        ih[0] = (uint8_t)i;
        ih[19] = 7;
        assert_non_null(swarm_join(t, ih, &owned[i], 1, &owned[i], (int)(i % 2), 1));
    }
    uint32_t seen = 0;
    size_t cur = 0;
    int slices = 0;
    do {
        cur = swarm_scan(t, cur, 7, count_swarm, &seen);
        slices++;
    } while (cur != 0 && slices < 10000);
    assert_int_equal(seen, 50);
    assert_true(slices > 1);
    seen = 0;
    assert_int_equal(swarm_scan(t, 0, 1u << 20, count_swarm, &seen), 0);
    assert_int_equal(seen, 50);
    for (uint32_t i = 0; i < 50; i++)
        swarm_leave_all(t, &owned[i]);
    swarm_table_destroy(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buckets),
        cmocka_unit_test(test_standard_bounds),
        cmocka_unit_test(test_swarm_scan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
