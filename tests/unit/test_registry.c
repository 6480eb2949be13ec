/* test_registry.c: unit tests of the peer ID registry (src/tracker/registry.c). */
#include "unit.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "tracker/registry.h"

/* IDs the growth test claims: far more than the table's initial buckets. */
#define MANY_IDS 5000

static const hash_key_t test_key = {0x1111111111111111ULL, 0x2222222222222222ULL};

static void test_claim_find_release(void **state) {
    (void)state;
    size_t heap0 = alloc_bytes_in_use();
    registry_t *r = registry_create(&test_key);
    assert_int_equal(registry_count(r), 0);
    assert_null(registry_find(r, "alice", 5));
    registry_entry_t *a = registry_claim(r, "alice", 5, NULL);
    assert_non_null(a);
    assert_null(a->members);
    assert_int_equal(a->nswarms, 0);
    assert_int_equal(a->at.node, 0);
    assert_int_equal(a->len, 5);
    assert_memory_equal(a->id, "alice", 5);
    assert_int_equal(registry_count(r), 1);
    assert_ptr_equal(registry_find(r, "alice", 5), a);
    /* Prefixes and extensions are other IDs. */
    assert_null(registry_find(r, "alic", 4));
    assert_null(registry_find(r, "alice2", 6));
    assert_null(registry_find(r, "Alice", 5));
    registry_entry_t *b = registry_claim(r, "bob", 3, NULL);
    assert_non_null(b);
    assert_int_equal(registry_count(r), 2);
    registry_release(r, a);
    assert_null(registry_find(r, "alice", 5));
    assert_ptr_equal(registry_find(r, "bob", 3), b);
    assert_int_equal(registry_count(r), 1);
    /* A released ID can be claimed again, by anyone. */
    a = registry_claim(r, "alice", 5, NULL);
    assert_non_null(a);
    registry_release(r, a);
    registry_release(r, b);
    assert_int_equal(registry_count(r), 0);
    registry_destroy(r);
    assert_int_equal(alloc_bytes_in_use(), heap0);
}

static void test_duplicate_refused(void **state) {
    (void)state;
    registry_t *r = registry_create(&test_key);
    registry_entry_t *e = registry_claim(r, "peer-1", 6, NULL);
    assert_non_null(e);
    assert_null(registry_claim(r, "peer-1", 6, NULL));
    assert_null(registry_claim(r, "peer-1", 6, NULL)); /* and again */
    assert_int_equal(registry_count(r), 1);
    assert_ptr_equal(registry_find(r, "peer-1", 6), e);
    registry_destroy(r); /* frees the entry still held */
}

static void test_length_limits(void **state) {
    (void)state;
    registry_t *r = registry_create(&test_key);
    char id[REGISTRY_MAX_ID_BYTES + 2];
    memset(id, 'x', sizeof(id));
    assert_null(registry_claim(r, id, 0, NULL));
    assert_null(registry_claim(r, id, REGISTRY_MAX_ID_BYTES + 1, NULL));
    assert_int_equal(registry_count(r), 0);
    registry_entry_t *one = registry_claim(r, id, 1, NULL);
    registry_entry_t *max = registry_claim(r, id, REGISTRY_MAX_ID_BYTES, NULL);
    assert_non_null(one);
    assert_non_null(max);
    assert_int_equal(max->len, REGISTRY_MAX_ID_BYTES);
    assert_memory_equal(max->id, id, REGISTRY_MAX_ID_BYTES);
    assert_ptr_equal(registry_find(r, id, REGISTRY_MAX_ID_BYTES), max);
    assert_ptr_equal(registry_find(r, id, 1), one);
    assert_null(registry_find(r, id, 2));
    assert_int_equal(registry_count(r), 2);
    registry_destroy(r);
}

/* WebTorrent IDs are 20 arbitrary bytes: NULs and high bytes are part of the key. */
static void test_binary_ids(void **state) {
    (void)state;
    registry_t *r = registry_create(&test_key);
    static const uint8_t a[20] = {0};
    uint8_t b[20] = {0};
    b[19] = 1;
    uint8_t c[20];
    memset(c, 0xff, sizeof(c));
    c[3] = 0;
    registry_entry_t *ea = registry_claim(r, a, 20, NULL);
    registry_entry_t *eb = registry_claim(r, b, 20, NULL);
    registry_entry_t *ec = registry_claim(r, c, 20, NULL);
    assert_non_null(ea);
    assert_non_null(eb);
    assert_non_null(ec);
    assert_ptr_equal(registry_find(r, a, 20), ea);
    assert_ptr_equal(registry_find(r, b, 20), eb);
    assert_ptr_equal(registry_find(r, c, 20), ec);
    /* A shorter all-NUL ID is a different ID (not a C string comparison). */
    assert_null(registry_find(r, a, 19));
    registry_entry_t *short0 = registry_claim(r, a, 19, NULL);
    assert_non_null(short0);
    assert_null(registry_claim(r, a, 20, NULL));
    assert_memory_equal(ec->id, c, 20);
    assert_int_equal(registry_count(r), 4);
    registry_release(r, ea);
    assert_null(registry_find(r, a, 20));
    assert_ptr_equal(registry_find(r, a, 19), short0);
    registry_destroy(r);
}

/* Many IDs: the table grows and every ID stays findable; releasing them all empties it. */
static void test_many(void **state) {
    (void)state;
    size_t heap0 = alloc_bytes_in_use();
    registry_t *r = registry_create(&test_key);
    static registry_entry_t *e[MANY_IDS];
    char id[32];
    for (int i = 0; i < MANY_IDS; i++) {
        int n = snprintf(id, sizeof(id), "peer-%d", i);
        e[i] = registry_claim(r, id, (size_t)n, NULL);
        assert_non_null(e[i]);
    }
    assert_int_equal(registry_count(r), MANY_IDS);
    for (int i = 0; i < MANY_IDS; i++) {
        int n = snprintf(id, sizeof(id), "peer-%d", i);
        assert_ptr_equal(registry_find(r, id, (size_t)n), e[i]);
        assert_null(registry_claim(r, id, (size_t)n, NULL));
    }
    for (int i = 0; i < MANY_IDS; i += 2)
        registry_release(r, e[i]);
    assert_int_equal(registry_count(r), MANY_IDS / 2);
    for (int i = 0; i < MANY_IDS; i++) {
        int n = snprintf(id, sizeof(id), "peer-%d", i);
        registry_entry_t *f = registry_find(r, id, (size_t)n);
        if (i % 2)
            assert_ptr_equal(f, e[i]);
        else
            assert_null(f);
    }
    for (int i = 1; i < MANY_IDS; i += 2)
        registry_release(r, e[i]);
    assert_int_equal(registry_count(r), 0);
    registry_destroy(r);
    registry_destroy(NULL);
    assert_int_equal(alloc_bytes_in_use(), heap0);
}

/* Different keys still find the same IDs (the key only changes bucket placement). */
/* Every ID length, with and without a token: each entry is sized to its ID (and token), from a
 * pool of its size class, and keeps its bytes; the longest ID with a token is the largest class. */
static void test_every_length_with_token(void **state) {
    (void)state;
    size_t heap0 = alloc_bytes_in_use();
    registry_t *r = registry_create(&test_key);
    uint8_t token[REGISTRY_TOKEN_BYTES];
    registry_entry_t *e[2][REGISTRY_MAX_ID_BYTES + 1];
    for (int t = 0; t < 2; t++) {
        for (size_t len = 1; len <= REGISTRY_MAX_ID_BYTES; len++) {
            char id[REGISTRY_MAX_ID_BYTES];
            memset(id, 'a' + t, len);
            memset(token, (int)len, sizeof(token));
            e[t][len] = registry_claim(r, id, len, t ? token : NULL);
            assert_non_null(e[t][len]);
            memset(e[t][len]->id, 'a' + t, len); /* the whole ID is writable */
        }
    }
    for (int t = 0; t < 2; t++) {
        for (size_t len = 1; len <= REGISTRY_MAX_ID_BYTES; len++) {
            memset(token, (int)len, sizeof(token));
            if (t) {
                assert_non_null(registry_token(e[t][len]));
                assert_memory_equal(registry_token(e[t][len]), token, sizeof(token));
            } else {
                assert_null(registry_token(e[t][len]));
            }
            registry_release(r, e[t][len]);
        }
    }
    assert_int_equal(registry_count(r), 0);
    registry_destroy(r);
    assert_int_equal(alloc_bytes_in_use(), heap0);
}

static void test_other_key(void **state) {
    (void)state;
    hash_key_t k2 = {0, 0};
    registry_t *r = registry_create(&k2);
    assert_non_null(registry_claim(r, "x", 1, NULL));
    assert_non_null(registry_find(r, "x", 1));
    registry_destroy(r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_claim_find_release),
        cmocka_unit_test(test_duplicate_refused),
        cmocka_unit_test(test_length_limits),
        cmocka_unit_test(test_binary_ids),
        cmocka_unit_test(test_many),
        cmocka_unit_test(test_every_length_with_token),
        cmocka_unit_test(test_other_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
