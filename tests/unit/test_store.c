/* test_store.c: unit tests of the infohash database (src/store/store_sqlite.c), on real SQLite
 * files in a temporary directory that each test creates and removes. */
#include "unit.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/log.h"
#include "store/store.h"

/* Longest time a test waits for the writer thread to commit a batch, in milliseconds. */
#define COMMIT_WAIT_MS 10000
/* Records the many-records test writes. */
#define MANY_RECORDS 3000

static const hash_key_t test_key = {0x1234, 0x5678};

typedef struct fixture {
    char dir[64];
    char db[128];
} fixture_t;

static int setup(void **state) {
    fixture_t *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    strcpy(f->dir, "/tmp/sigtracker-test-store.XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->db, sizeof(f->db), "%s/t.db", f->dir);
    /* Store errors are logged; keep the test output readable. */
    log_set_level(LOG_OFF);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture_t *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    int rc = system(cmd);
    free(f);
    return rc == 0 ? 0 : -1;
}

static void make_ih(uint8_t ih[20], unsigned n) {
    for (int i = 0; i < 20; i++)
        ih[i] = (uint8_t)(n * 31 + (unsigned)i * 7);
    ih[0] = (uint8_t)n;
    ih[1] = (uint8_t)(n >> 8);
}

static store_t *open_ok(const char *path) {
    char err[256] = "";
    store_t *s = store_open(path, &test_key, err, sizeof(err));
    if (s == NULL)
        fail_msg("store_open(%s): %s", path, err);
    return s;
}

/* Waits until the writer has committed at least n batches. */
static void wait_committed(store_t *s, uint64_t n) {
    for (int ms = 0; ms < COMMIT_WAIT_MS; ms++) {
        if (store_stats(s).batches_committed >= n)
            return;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    fail_msg("the writer did not commit %llu batches in time", (unsigned long long)n);
}

static void expect_info(store_info_t got, uint64_t completions, int64_t first, int64_t last) {
    if (got.completions != completions || got.first_seen != first || got.last_seen != last)
        fail_msg("got completions %llu first %lld last %lld, expected %llu %lld %lld",
                 (unsigned long long)got.completions, (long long)got.first_seen,
                 (long long)got.last_seen, (unsigned long long)completions, (long long)first,
                 (long long)last);
}

static void test_touch_get_in_memory(void **state) {
    fixture_t *f = *state;
    size_t heap0 = alloc_bytes_in_use();
    store_t *s = open_ok(f->db);
    uint8_t a[20], b[20];
    make_ih(a, 1);
    make_ih(b, 2);
    expect_info(store_get(s, a), 0, 0, 0);
    store_touch(s, a, 1000, 0);
    expect_info(store_get(s, a), 0, 1000, 1000);
    store_touch(s, a, 1010, 1);
    store_touch(s, a, 1020, 1);
    expect_info(store_get(s, a), 2, 1000, 1020);
    expect_info(store_get(s, b), 0, 0, 0);
    store_close(s);
    assert_int_equal(alloc_bytes_in_use(), heap0);
}

/* Touch, flush, close, reopen: the file has the completions and both timestamps. */
static void test_persist_across_reopen(void **state) {
    fixture_t *f = *state;
    size_t heap0 = alloc_bytes_in_use();
    uint8_t a[20], b[20], never[20];
    make_ih(a, 10);
    make_ih(b, 11);
    make_ih(never, 12);
    store_t *s = open_ok(f->db);
    store_touch(s, a, 1000, 0);
    store_touch(s, a, 1010, 1);
    store_touch(s, a, 1020, 1);
    store_touch(s, b, 1005, 0);
    store_flush(s, 1020);
    store_close(s);

    s = open_ok(f->db);
    expect_info(store_get(s, a), 2, 1000, 1020);
    expect_info(store_get(s, b), 0, 1005, 1005);
    expect_info(store_get(s, never), 0, 0, 0);
    /* A later run adds to what is stored: first_seen stays, completions accumulate. */
    store_touch(s, a, 2000, 1);
    expect_info(store_get(s, a), 3, 1000, 2000);
    store_close(s); /* no explicit flush: close flushes */

    s = open_ok(f->db);
    expect_info(store_get(s, a), 3, 1000, 2000);
    expect_info(store_get(s, b), 0, 1005, 1005);
    store_stats_t st = store_stats(s);
    assert_int_equal(st.write_errors, 0);
    store_close(s);
    assert_int_equal(alloc_bytes_in_use(), heap0);
}

/* Several flushes in one run: each batch adds only the completions not yet handed over. */
static void test_completions_not_double_counted(void **state) {
    fixture_t *f = *state;
    uint8_t a[20];
    make_ih(a, 20);
    store_t *s = open_ok(f->db);
    store_touch(s, a, 100, 1);
    store_flush(s, 100);
    store_touch(s, a, 105, 1);
    store_flush(s, 105);
    store_touch(s, a, 110, 0);
    store_flush(s, 110);
    store_flush(s, 111); /* nothing dirty: no batch */
    wait_committed(s, 3);
    store_stats_t st = store_stats(s);
    assert_int_equal(st.batches_committed, 3);
    assert_int_equal(st.rows_written, 3);
    store_close(s);
    s = open_ok(f->db);
    expect_info(store_get(s, a), 2, 100, 110);
    store_close(s);
}

/* A record that is clean, committed and idle is evicted from memory; the file then answers, and
 * a new touch continues from the stored values. */
static void test_eviction_reads_back(void **state) {
    fixture_t *f = *state;
    uint8_t a[20];
    make_ih(a, 30);
    store_t *s = open_ok(f->db);
    store_touch(s, a, 1000, 1);
    store_flush(s, 1000);
    wait_committed(s, 1);
    assert_int_equal(store_stats(s).cached_records, 1);
    store_flush(s, 1000 + 601); /* idle for more than STORE_EVICT_IDLE_SECONDS */
    assert_int_equal(store_stats(s).cached_records, 0);
    expect_info(store_get(s, a), 1, 1000, 1000);
    store_touch(s, a, 5000, 1);
    expect_info(store_get(s, a), 2, 1000, 5000);
    store_close(s);
    s = open_ok(f->db);
    expect_info(store_get(s, a), 2, 1000, 5000);
    store_close(s);
}

static void test_many_records(void **state) {
    fixture_t *f = *state;
    size_t heap0 = alloc_bytes_in_use();
    store_t *s = open_ok(f->db);
    uint8_t ih[20];
    for (unsigned i = 0; i < MANY_RECORDS; i++) {
        make_ih(ih, i);
        store_touch(s, ih, 500 + i, (int)(i % 3 == 0));
        if (i % 3 == 0)
            store_touch(s, ih, 600 + i, 1);
    }
    store_flush(s, 5000);
    store_close(s);
    s = open_ok(f->db);
    for (unsigned i = 0; i < MANY_RECORDS; i++) {
        make_ih(ih, i);
        if (i % 3 == 0)
            expect_info(store_get(s, ih), 2, 500 + i, 600 + i);
        else
            expect_info(store_get(s, ih), 0, 500 + i, 500 + i);
    }
    store_close(s);
    assert_int_equal(alloc_bytes_in_use(), heap0);
}

static void expect_open_fails(const char *path, const char *needle) {
    char err[512] = "";
    size_t heap0 = alloc_bytes_in_use();
    store_t *s = store_open(path, &test_key, err, sizeof(err));
    if (s != NULL) {
        store_close(s);
        fail_msg("store_open(%s) succeeded", path);
    }
    if (err[0] == '\0')
        fail_msg("store_open(%s) failed without a message", path);
    if (strstr(err, path) == NULL)
        fail_msg("message [%s] does not name the path", err);
    if (needle != NULL && strstr(err, needle) == NULL)
        fail_msg("message [%s] does not say [%s]", err, needle);
    assert_int_equal(alloc_bytes_in_use(), heap0);
}

static void test_open_directory(void **state) {
    fixture_t *f = *state;
    expect_open_fails(f->dir, "directory");
}

static void test_open_in_missing_directory(void **state) {
    fixture_t *f = *state;
    char path[256];
    snprintf(path, sizeof(path), "%s/no/such/dir/t.db", f->dir);
    expect_open_fails(path, NULL);
    /* Nothing was created along the way. */
    char parent[256];
    snprintf(parent, sizeof(parent), "%s/no", f->dir);
    struct stat st;
    assert_int_not_equal(stat(parent, &st), 0);
}

static void write_file(const char *path, const void *p, size_t n) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, n), (ssize_t)n);
    close(fd);
}

static void test_open_not_sqlite(void **state) {
    fixture_t *f = *state;
    char path[256];
    snprintf(path, sizeof(path), "%s/text.db", f->dir);
    char text[4096];
    for (size_t i = 0; i < sizeof(text); i++)
        text[i] = (char)('a' + i % 26);
    write_file(path, text, sizeof(text));
    expect_open_fails(path, NULL);
    /* A short file too. */
    write_file(path, "hello\n", 6);
    expect_open_fails(path, NULL);
    /* The file was not overwritten. */
    char back[16] = "";
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, back, sizeof(back)), 6);
    close(fd);
    assert_memory_equal(back, "hello\n", 6);
}

/* An empty file is a valid (empty) SQLite database. */
static void test_open_empty_file(void **state) {
    fixture_t *f = *state;
    write_file(f->db, "", 0);
    store_t *s = open_ok(f->db);
    uint8_t a[20];
    make_ih(a, 40);
    expect_info(store_get(s, a), 0, 0, 0);
    store_close(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_touch_get_in_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_persist_across_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_completions_not_double_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eviction_reads_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_in_missing_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_not_sqlite, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_empty_file, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
