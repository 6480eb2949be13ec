/* test_bucket.c: unit tests of the token bucket (src/limits/bucket.c). */
#include "unit.h"

#include "limits/bucket.h"

static void test_burst(void **state) {
    (void)state;
    bucket_t b;
    bucket_init(&b, 5, 1000);
    for (int i = 0; i < 5; i++)
        assert_int_equal(bucket_take(&b, 1000, 10, 5, 1), 0);
    /* Empty: at 10 tokens/s the next token is 100 ms away. */
    assert_int_equal(bucket_take(&b, 1000, 10, 5, 1), 100);
    /* A refused take takes nothing: asking again gives the same answer. */
    assert_int_equal(bucket_take(&b, 1000, 10, 5, 1), 100);
}

static void test_refill_at_rate(void **state) {
    (void)state;
    bucket_t b;
    bucket_init(&b, 2, 0);
    assert_int_equal(bucket_take(&b, 0, 10, 2, 2), 0);
    /* Half a token after 50 ms: 50 ms to wait. */
    assert_int_equal(bucket_take(&b, 50, 10, 2, 1), 50);
    assert_int_equal(bucket_take(&b, 99, 10, 2, 1), 1);
    assert_int_equal(bucket_take(&b, 100, 10, 2, 1), 0);
    assert_int_equal(bucket_take(&b, 100, 10, 2, 1), 100);
    /* Refill stops at burst: a long pause gives back 2 tokens, not more. */
    assert_int_equal(bucket_take(&b, 100000, 10, 2, 1), 0);
    assert_int_equal(bucket_take(&b, 100000, 10, 2, 1), 0);
    assert_int_equal(bucket_take(&b, 100000, 10, 2, 1), 100);
}

static void test_wait_time(void **state) {
    (void)state;
    bucket_t b;
    bucket_init(&b, 10, 0);
    assert_int_equal(bucket_take(&b, 0, 50, 10, 10), 0);
    /* 50 tokens/s: one token per 20 ms; three tokens 60 ms. */
    assert_int_equal(bucket_take(&b, 0, 50, 10, 1), 20);
    assert_int_equal(bucket_take(&b, 0, 50, 10, 3), 60);
    /* Fractions of a millisecond round up, never down to 0 (which would mean "taken"):
     * 3 tokens/s is one token per 333.3 ms. */
    bucket_init(&b, 1, 0);
    assert_int_equal(bucket_take(&b, 0, 3, 1, 1), 0);
    assert_int_equal(bucket_take(&b, 0, 3, 1, 1), 334);
    assert_int_equal(bucket_take(&b, 333, 3, 1, 1), 1);
    assert_int_equal(bucket_take(&b, 334, 3, 1, 1), 0);
    /* A fast rate: 1,000,000/s is 1000 tokens per ms, so the wait is at least 1 ms. */
    bucket_init(&b, 1, 0);
    assert_int_equal(bucket_take(&b, 0, 1000000, 1, 1), 0);
    assert_int_equal(bucket_take(&b, 0, 1000000, 1, 1), 1);
    assert_int_equal(bucket_take(&b, 1, 1000000, 1, 1), 0);
}

static void test_sustained_rate(void **state) {
    (void)state;
    bucket_t b;
    bucket_init(&b, 1, 0);
    /* One take attempt per millisecond for 10 s at 7 tokens/s with burst 1: about 70 taken. */
    uint32_t taken = 0;
    for (uint32_t ms = 0; ms < 10000; ms++)
        taken += bucket_take(&b, ms, 7, 1, 1) == 0;
    assert_in_range(taken, 70, 71);
}

/* The millisecond clock is a uint32 that wraps after 49.7 days; only differences matter. */
static void test_clock_wraparound(void **state) {
    (void)state;
    bucket_t b;
    uint32_t t0 = UINT32_MAX - 49; /* 50 ms before the wrap */
    bucket_init(&b, 3, t0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(bucket_take(&b, t0, 10, 3, 1), 0);
    assert_int_equal(bucket_take(&b, t0, 10, 3, 1), 100);
    /* 100 ms later the clock reads 50: one token has come back, not a full bucket. */
    uint32_t t1 = t0 + 100;
    assert_int_equal(t1, 50);
    assert_int_equal(bucket_take(&b, t1, 10, 3, 1), 0);
    assert_int_equal(bucket_take(&b, t1, 10, 3, 1), 100);
    assert_int_equal(bucket_take(&b, t1 + 30, 10, 3, 1), 70);
    assert_int_equal(bucket_take(&b, t1 + 100, 10, 3, 1), 0);
    /* Exactly across the wrap point. */
    bucket_init(&b, 1, UINT32_MAX);
    assert_int_equal(bucket_take(&b, UINT32_MAX, 1000, 1, 1), 0);
    assert_int_equal(bucket_take(&b, UINT32_MAX, 1000, 1, 1), 1);
    assert_int_equal(bucket_take(&b, 0, 1000, 1, 1), 0);
}

/* The largest configurable burst and rate (config.c allows up to 1,000,000) do not overflow the
 * milli-token counter. */
static void test_large_values(void **state) {
    (void)state;
    bucket_t b;
    bucket_init(&b, 1000000, 0);
    assert_int_equal(b.milli, 1000000000u);
    assert_int_equal(bucket_take(&b, 0, 1000000, 1000000, 1000000), 0);
    assert_int_equal(bucket_take(&b, 0, 1000000, 1000000, 1), 1);
    /* After a very long pause the bucket is full again, and not more. */
    assert_int_equal(bucket_take(&b, 4000000000u, 1000000, 1000000, 1000000), 0);
    assert_int_equal(bucket_take(&b, 4000000000u, 1000000, 1000000, 1), 1);
}

/* cost 0 always succeeds (nothing to take). */
static void test_zero_cost(void **state) {
    (void)state;
    bucket_t b;
    bucket_init(&b, 1, 0);
    assert_int_equal(bucket_take(&b, 0, 1, 1, 1), 0);
    assert_int_equal(bucket_take(&b, 0, 1, 1, 0), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst),
        cmocka_unit_test(test_refill_at_rate),
        cmocka_unit_test(test_wait_time),
        cmocka_unit_test(test_sustained_rate),
        cmocka_unit_test(test_clock_wraparound),
        cmocka_unit_test(test_large_values),
        cmocka_unit_test(test_zero_cost),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
