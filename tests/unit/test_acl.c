/* test_acl.c: unit tests of the access list (src/tracker/acl.c): the set, its modes, the file
 * parser and its errors, and reading a file. */
#include "unit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "tracker/acl.h"

static const hash_key_t key = {0x0123456789abcdefull, 0xfedcba9876543210ull};

/* Bytes of an error message the tests look at. */
#define ERR_BYTES 512

/* A key made from a number, so that tests can make many distinct ones. */
static void key_of(uint32_t i, uint8_t out[ACL_KEY_BYTES]) {
    memset(out, 0, ACL_KEY_BYTES);
    out[0] = 0x5a;
    memcpy(out + 16, &i, sizeof(i));
}

static void test_set(void **state) {
    (void)state;
    size_t heap0 = alloc_bytes_in_use();
    acl_t *a = acl_create(ACL_ALLOW, &key);
    uint8_t k[ACL_KEY_BYTES], zero[ACL_KEY_BYTES] = {0};
    assert_int_equal(acl_count(a), 0);
    key_of(1, k);
    assert_int_equal(acl_contains(a, k), 0);
    assert_int_equal(acl_add(a, k), 1);
    assert_int_equal(acl_add(a, k), 0); /* a duplicate is not counted twice */
    assert_int_equal(acl_contains(a, k), 1);
    assert_int_equal(acl_count(a), 1);
    /* The all-zero infohash is a key like any other, though it marks empty slots inside. */
    assert_int_equal(acl_contains(a, zero), 0);
    assert_int_equal(acl_add(a, zero), 1);
    assert_int_equal(acl_add(a, zero), 0);
    assert_int_equal(acl_contains(a, zero), 1);
    assert_int_equal(acl_count(a), 2);
    /* Growth keeps every key findable, and nothing else. */
    for (uint32_t i = 2; i < 100000; i++) {
        key_of(i, k);
        assert_int_equal(acl_add(a, k), 1);
    }
    assert_int_equal(acl_count(a), 100000);
    for (uint32_t i = 1; i < 100000; i++) {
        key_of(i, k);
        assert_int_equal(acl_contains(a, k), 1);
        key_of(i + 200000, k);
        assert_int_equal(acl_contains(a, k), 0);
    }
    /* Within the load limit. */
    assert_true(acl_count(a) * 100 <= acl_bytes(a) / ACL_KEY_BYTES * ACL_MAX_LOAD_PERCENT);
    acl_destroy(a);
    acl_destroy(NULL);
    assert_int_equal(alloc_bytes_in_use(), heap0);
}

static void test_modes(void **state) {
    (void)state;
    uint8_t in[ACL_KEY_BYTES], out[ACL_KEY_BYTES];
    key_of(7, in);
    key_of(8, out);
    acl_t *allow = acl_create(ACL_ALLOW, &key), *deny = acl_create(ACL_DENY, &key);
    acl_add(allow, in);
    acl_add(deny, in);
    assert_int_equal(acl_mode(allow), ACL_ALLOW);
    assert_int_equal(acl_mode(deny), ACL_DENY);
    assert_int_equal(acl_allows(allow, in), 1);
    assert_int_equal(acl_allows(allow, out), 0);
    assert_int_equal(acl_allows(deny, in), 0);
    assert_int_equal(acl_allows(deny, out), 1);
    assert_int_equal(acl_allows(NULL, in), 1); /* no list: everything is tracked */
    acl_destroy(allow);
    acl_destroy(deny);
}

static const char good_list[] = "# infohashes we serve\n"
                                "\n"
                                "08ada5a7a6183aae1e09d831df6748d566095a10\n"
                                "  DD8255ECDC7CA55FB0BBF81323D87062DB1F6D1C   # Big Buck Bunny\r\n"
                                "\t0123456789abcdefABCDEF0123456789abcdef01\t\n"
                                "08ADA5A7A6183AAE1E09D831DF6748D566095A10\n" /* the first again */
                                "   # indented comment\n"
                                "c9e15763f722f23e98a29decdfae341b98d53056"; /* no final LF */

static void test_parse(void **state) {
    (void)state;
    acl_t *a = acl_create(ACL_DENY, &key);
    char err[ERR_BYTES] = "";
    assert_int_equal(acl_parse(a, "list.txt", good_list, sizeof(good_list) - 1, err, sizeof(err)),
                     0);
    assert_string_equal(err, "");
    assert_int_equal(acl_count(a), 4);
    static const uint8_t sintel[ACL_KEY_BYTES] = {0x08, 0xad, 0xa5, 0xa7, 0xa6, 0x18, 0x3a,
                                                  0xae, 0x1e, 0x09, 0xd8, 0x31, 0xdf, 0x67,
                                                  0x48, 0xd5, 0x66, 0x09, 0x5a, 0x10};
    static const uint8_t bbb[ACL_KEY_BYTES] = {0xdd, 0x82, 0x55, 0xec, 0xdc, 0x7c, 0xa5,
                                               0x5f, 0xb0, 0xbb, 0xf8, 0x13, 0x23, 0xd8,
                                               0x70, 0x62, 0xdb, 0x1f, 0x6d, 0x1c};
    assert_int_equal(acl_contains(a, sintel), 1);
    assert_int_equal(acl_contains(a, bbb), 1);
    acl_destroy(a);
    /* An empty file, and one of comments only, are empty lists. */
    a = acl_create(ACL_ALLOW, &key);
    assert_int_equal(acl_parse(a, "e", "", 0, err, sizeof(err)), 0);
    assert_int_equal(acl_parse(a, "e", "# x\n\n  \n#", 9, err, sizeof(err)), 0);
    assert_int_equal(acl_count(a), 0);
    acl_destroy(a);
}

/* Expects text to be refused with an error naming "bad.txt:<line>:" and containing needle. */
static void expect_refused(const char *text, size_t len, unsigned line, const char *needle) {
    acl_t *a = acl_create(ACL_ALLOW, &key);
    char err[ERR_BYTES] = "";
    int rc = acl_parse(a, "bad.txt", text, len, err, sizeof(err));
    if (rc != -EINVAL)
        fail_msg("[%.*s]: got %d, expected -EINVAL", (int)len, text, rc);
    char where[64];
    snprintf(where, sizeof(where), "bad.txt:%u:", line);
    if (strncmp(err, where, strlen(where)) != 0)
        fail_msg("[%.*s]: error [%s] does not start with [%s]", (int)len, text, err, where);
    if (needle != NULL && strstr(err, needle) == NULL)
        fail_msg("[%.*s]: error [%s] does not mention [%s]", (int)len, text, err, needle);
    acl_destroy(a);
}

#define REFUSED(text, line, needle) expect_refused(text, sizeof(text) - 1, line, needle)

static void test_malformed(void **state) {
    (void)state;
    REFUSED("08ada5a7a6183aae1e09d831df6748d566095a1\n", 1, "40 hex characters"); /* 39 */
    REFUSED("08ada5a7a6183aae1e09d831df6748d566095a100\n", 1, "found");           /* 41 */
    REFUSED("# ok\n08ada5a7a6183aae1e09d831df6748d566095a10\nzz\n", 3, "\"zz\"");
    REFUSED("08ada5a7a6183aae1e09d831df6748d566095a1g\n", 1, NULL);
    REFUSED("08ada5a7a6183aae1e09d831df6748d566095a10 extra\n", 1, NULL);
    REFUSED("08ada5a7a6183aae 1e09d831df6748d566095a10\n", 1, NULL);
    REFUSED("magnet:?xt=urn:btih:08ada5a7a6183aae1e09d831df6748d566095a10\n", 1, "magnet");
    /* Unprintable bytes are shown as '?', and a long line is cut. */
    REFUSED("\n\n\x01\xff\n", 3, "\"??\"");
    char long_line[300];
    memset(long_line, 'q', sizeof(long_line));
    expect_refused(long_line, sizeof(long_line), 1, "...");
}

static void test_load_file(void **state) {
    (void)state;
    char path[] = "/tmp/sigtracker-test-acl.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, good_list, sizeof(good_list) - 1), (ssize_t)sizeof(good_list) - 1);
    close(fd);
    acl_t *a = acl_create(ACL_ALLOW, &key);
    char err[ERR_BYTES] = "";
    assert_int_equal(acl_load_file(a, path, err, sizeof(err)), 0);
    assert_int_equal(acl_count(a), 4);
    acl_destroy(a);
    /* A malformed file names itself and the line. */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("08ada5a7a6183aae1e09d831df6748d566095a10\nnot-a-hash\n", f);
    fclose(f);
    a = acl_create(ACL_ALLOW, &key);
    assert_int_equal(acl_load_file(a, path, err, sizeof(err)), -EINVAL);
    char where[64];
    snprintf(where, sizeof(where), "%s:2:", path);
    assert_non_null(strstr(err, where));
    acl_destroy(a);
    unlink(path);
    /* A missing file says so. */
    a = acl_create(ACL_ALLOW, &key);
    assert_int_equal(acl_load_file(a, path, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, path));
    acl_destroy(a);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set),       cmocka_unit_test(test_modes),
        cmocka_unit_test(test_parse),     cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_load_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
