/* test_pool.c: unit tests of the fixed-size object pool (src/core/pool.c). */
#include "unit.h"

#include <stdint.h>
#include <string.h>

#include "core/alloc.h"
#include "core/pool.h"

/* Objects the chunk test allocates: several chunks' worth of 32-byte objects. */
#define MANY_OBJECTS (3 * (POOL_CHUNK_BYTES / 32) + 7)

static void test_alloc_zeroed_and_reused(void **state) {
    (void)state;
    pool_t *p = pool_create(32);
    unsigned char *a = pool_alloc(p);
    unsigned char *b = pool_alloc(p);
    assert_ptr_not_equal(a, b);
    assert_true((uintptr_t)a % 8 == 0 && (uintptr_t)b % 8 == 0);
    for (int i = 0; i < 32; i++)
        assert_int_equal(a[i], 0);
    memset(a, 0xab, 32);
    assert_int_equal(pool_in_use(p), 2);
    pool_free(p, a);
    assert_int_equal(pool_in_use(p), 1);
    /* The freed object comes back first, zeroed again. */
    unsigned char *c = pool_alloc(p);
    assert_ptr_equal(c, a);
    for (int i = 0; i < 32; i++)
        assert_int_equal(c[i], 0);
    pool_free(p, NULL); /* a no-op */
    assert_int_equal(pool_in_use(p), 2);
    pool_destroy(p);
    pool_destroy(NULL);
}

static void test_many_objects_distinct(void **state) {
    (void)state;
    size_t heap0 = alloc_bytes_in_use();
    pool_t *p = pool_create(30); /* rounded up to 32 */
    unsigned char **objs = xcalloc(MANY_OBJECTS, sizeof(*objs));
    for (size_t i = 0; i < MANY_OBJECTS; i++) {
        objs[i] = pool_alloc(p);
        memset(objs[i], (int)(i & 0xff), 30);
    }
    assert_int_equal(pool_in_use(p), MANY_OBJECTS);
    /* No object overlaps another: each still holds its own pattern. */
    for (size_t i = 0; i < MANY_OBJECTS; i++)
        for (size_t k = 0; k < 30; k++)
            assert_int_equal(objs[i][k], (unsigned char)(i & 0xff));
    /* Less than 8 bytes of overhead an object beyond the chunk headers. */
    size_t used = alloc_bytes_in_use() - heap0 - MANY_OBJECTS * sizeof(*objs);
    assert_true(used < (size_t)MANY_OBJECTS * 32 + 5 * POOL_CHUNK_BYTES);
    for (size_t i = 0; i < MANY_OBJECTS; i += 2)
        pool_free(p, objs[i]);
    assert_int_equal(pool_in_use(p), MANY_OBJECTS / 2);
    /* Freeing the rest gives every chunk back, before the pool itself is destroyed. */
    for (size_t i = 1; i < MANY_OBJECTS; i += 2)
        pool_free(p, objs[i]);
    assert_int_equal(pool_in_use(p), 0);
    xfree(objs);
    assert_true(alloc_bytes_in_use() - heap0 < 256);
    /* And a pool with objects still allocated frees them with itself. */
    for (int i = 0; i < 1000; i++)
        (void)pool_alloc(p);
    pool_destroy(p);
    assert_int_equal(alloc_bytes_in_use(), heap0);
}

static void test_tiny_objects(void **state) {
    (void)state;
    pool_t *p = pool_create(1); /* at least a free-list link */
    void *a = pool_alloc(p), *b = pool_alloc(p);
    assert_true((unsigned char *)b - (unsigned char *)a >= (ptrdiff_t)sizeof(void *) ||
                (unsigned char *)a - (unsigned char *)b >= (ptrdiff_t)sizeof(void *));
    pool_free(p, a);
    pool_free(p, b);
    assert_int_equal(pool_in_use(p), 0);
    pool_destroy(p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_zeroed_and_reused),
        cmocka_unit_test(test_many_objects_distinct),
        cmocka_unit_test(test_tiny_objects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
