/* test_store.c: unit tests of the infohash database (src/store/store_sqlite.c), on real SQLite
 * files in a temporary directory that each test creates and removes. The test plays the event
 * loop: it watches store_fd with poll(2) and calls store_poll when it is readable. */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sqlite3.h>
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
/* Longest time a test waits for a load to finish, in milliseconds. */
#define LOAD_WAIT_MS 10000
/* Records the many-records test writes. */
#define MANY_RECORDS 3000
/* Records the touch-never-reads test stores and then touches. */
#define COLD_RECORDS 10000
/* Infohashes and steps of the randomised interleaving test. */
#define RANDOM_RECORDS 40
#define RANDOM_STEPS 4000

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
    store_t *s = store_open_sqlite(path, &test_key, err, sizeof(err));
    if (s == NULL)
        fail_msg("store_open_sqlite(%s): %s", path, err);
    return s;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until the writer has committed at least n batches. */
static void wait_committed(store_t *s, uint64_t n) {
    for (int ms = 0; ms < COMMIT_WAIT_MS; ms++) {
        if (store_stats(s).batches_committed >= n)
            return;
        sleep_ms(1);
    }
    fail_msg("the writer did not commit %llu batches in time", (unsigned long long)n);
}

/* Waits up to ms milliseconds for the store's descriptor to be readable. Returns 1 when it is. */
static int wait_fd(store_t *s, int ms) {
    struct pollfd p = {store_fd(s), POLLIN, 0};
    int n = poll(&p, 1, ms);
    if (n < 0)
        fail_msg("poll: %s", strerror(errno));
    return n > 0 && (p.revents & POLLIN) != 0;
}

/* store_get as the event loop does it: on -EINPROGRESS, wait for the descriptor, collect the
 * finished loads and ask again. Returns store_get's final answer. */
static int get_wait(store_t *s, const uint8_t ih[20], store_info_t *out) {
    long deadline = now_ms() + LOAD_WAIT_MS;
    for (;;) {
        int rc = store_get(s, ih, out);
        if (rc != -EINPROGRESS)
            return rc;
        long left = deadline - now_ms();
        if (left <= 0)
            fail_msg("a load did not finish in %d ms", LOAD_WAIT_MS);
        wait_fd(s, (int)left);
        store_poll(s);
    }
}

static void expect_info(store_info_t got, uint64_t completions, int64_t first, int64_t last) {
    if (got.completions != completions || got.first_seen != first || got.last_seen != last)
        fail_msg("got completions %llu first %lld last %lld, expected %llu %lld %lld",
                 (unsigned long long)got.completions, (long long)got.first_seen,
                 (long long)got.last_seen, (unsigned long long)completions, (long long)first,
                 (long long)last);
}

/* Gets info_hash (waiting for its load) and checks the answer. */
static void expect_get(store_t *s, const uint8_t ih[20], uint64_t completions, int64_t first,
                       int64_t last) {
    store_info_t got = {0, 0, 0};
    assert_int_equal(get_wait(s, ih, &got), 0);
    expect_info(got, completions, first, last);
}

/* Reads a row straight from the file with a connection of the test's own (the store may be open:
 * the file is in WAL mode). Returns 1 when found, 0 when absent. */
static int file_row(const char *path, const uint8_t ih[20], store_info_t *out) {
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        fail_msg("cannot open %s: %s", path, sqlite3_errmsg(db));
    if (sqlite3_prepare_v2(db,
                           "SELECT completions, first_seen, last_seen FROM infohash"
                           " WHERE info_hash = ?1",
                           -1, &st, NULL) != SQLITE_OK)
        fail_msg("cannot read %s: %s", path, sqlite3_errmsg(db));
    assert_int_equal(sqlite3_bind_blob(st, 1, ih, 20, SQLITE_STATIC), SQLITE_OK);
    int found = 0;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        out->completions = (uint64_t)sqlite3_column_int64(st, 0);
        out->first_seen = sqlite3_column_int64(st, 1);
        out->last_seen = sqlite3_column_int64(st, 2);
        found = 1;
    } else if (rc != SQLITE_DONE) {
        fail_msg("cannot read %s: %s", path, sqlite3_errmsg(db));
    }
    assert_int_equal(sqlite3_finalize(st), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    return found;
}

static void expect_file(const char *path, const uint8_t ih[20], uint64_t completions, int64_t first,
                        int64_t last) {
    store_info_t got = {0, 0, 0};
    if (!file_row(path, ih, &got))
        fail_msg("the file has no row for the infohash");
    expect_info(got, completions, first, last);
}

/* Counts on_ready calls. */
typedef struct ready_count {
    int calls;
} ready_count_t;

static void on_ready(void *arg) {
    ((ready_count_t *)arg)->calls++;
}

static void test_touch_get_in_memory(void **state) {
    fixture_t *f = *state;
    size_t heap0 = alloc_bytes_in_use();
    store_t *s = open_ok(f->db);
    uint8_t a[20], b[20];
    make_ih(a, 1);
    make_ih(b, 2);
    expect_get(s, a, 0, 0, 0);
    store_touch(s, a, 1000, 0);
    expect_get(s, a, 0, 1000, 1000);
    store_touch(s, a, 1010, 1);
    store_touch(s, a, 1020, 1);
    expect_get(s, a, 2, 1000, 1020);
    expect_get(s, b, 0, 0, 0);
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
    expect_file(f->db, a, 2, 1000, 1020);
    expect_file(f->db, b, 0, 1005, 1005);

    s = open_ok(f->db);
    expect_get(s, a, 2, 1000, 1020);
    expect_get(s, b, 0, 1005, 1005);
    expect_get(s, never, 0, 0, 0);
    /* A later run adds to what is stored: first_seen stays, completions accumulate. */
    store_touch(s, a, 2000, 1);
    expect_get(s, a, 3, 1000, 2000);
    store_close(s); /* no explicit flush: close flushes */

    s = open_ok(f->db);
    expect_get(s, a, 3, 1000, 2000);
    expect_get(s, b, 0, 1005, 1005);
    store_stats_t st = store_stats(s);
    assert_int_equal(st.write_errors, 0);
    assert_int_equal(st.loads, 2);
    store_close(s);
    expect_file(f->db, a, 3, 1000, 2000);
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
    /* The record was never read: the first get loads it, after the three batches. */
    assert_int_equal(st.loads, 0);
    expect_get(s, a, 2, 100, 110);
    store_close(s);
    s = open_ok(f->db);
    expect_get(s, a, 2, 100, 110);
    store_close(s);
    expect_file(f->db, a, 2, 100, 110);
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
    expect_get(s, a, 1, 1000, 1000);
    store_touch(s, a, 5000, 1);
    expect_get(s, a, 2, 1000, 5000);
    store_close(s);
    s = open_ok(f->db);
    expect_get(s, a, 2, 1000, 5000);
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
            expect_get(s, ih, 2, 500 + i, 600 + i);
        else
            expect_get(s, ih, 0, 500 + i, 500 + i);
    }
    assert_int_equal(store_stats(s).loads, MANY_RECORDS);
    store_close(s);
    assert_int_equal(alloc_bytes_in_use(), heap0);
}

static void expect_open_fails(const char *path, const char *needle) {
    char err[512] = "";
    size_t heap0 = alloc_bytes_in_use();
    store_t *s = store_open_sqlite(path, &test_key, err, sizeof(err));
    if (s != NULL) {
        store_close(s);
        fail_msg("store_open_sqlite(%s) succeeded", path);
    }
    if (err[0] == '\0')
        fail_msg("store_open_sqlite(%s) failed without a message", path);
    if (strstr(err, path) == NULL)
        fail_msg("message [%s] does not name the path", err);
    if (needle != NULL && strstr(err, needle) == NULL)
        fail_msg("message [%s] does not say [%s]", err, needle);
    assert_int_equal(alloc_bytes_in_use(), heap0);
}

static void test_open_directory(void **state) {
    fixture_t *f = *state;
    expect_open_fails(f->dir, "it is a directory");
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
    expect_get(s, a, 0, 0, 0);
    store_close(s);
}

/* The descriptor is a non-blocking, close-on-exec eventfd that is not readable while nothing was
 * loaded, and the ops table is the sqlite one with no callback set. */
static void test_fd_is_quiet_eventfd(void **state) {
    fixture_t *f = *state;
    store_t *s = open_ok(f->db);
    int fd = store_fd(s);
    assert_true(fd >= 0);
    assert_true((fcntl(fd, F_GETFL) & O_NONBLOCK) != 0);
    assert_true((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
    assert_true(s->on_ready == NULL);
    uint8_t a[20];
    make_ih(a, 50);
    store_touch(s, a, 100, 1);
    store_flush(s, 100);
    wait_committed(s, 1);
    /* Touches and batches never wake the loop; only loads do. */
    assert_int_equal(wait_fd(s, 50), 0);
    store_poll(s); /* nothing to collect: harmless */
    assert_int_equal(store_stats(s).loads, 0);
    store_close(s);
}

/* A get on a record not in memory answers -EINPROGRESS (and keeps answering so without starting
 * a second load) until the loop collects the load; on_ready is called once per poll that applied
 * loads and never by a poll that applied none. */
static void test_cold_get_in_progress_then_ready(void **state) {
    fixture_t *f = *state;
    size_t heap0 = alloc_bytes_in_use();
    uint8_t a[20], b[20], c[20];
    make_ih(a, 60);
    make_ih(b, 61);
    make_ih(c, 62);
    store_t *s = open_ok(f->db);
    store_touch(s, a, 100, 1);
    store_touch(s, b, 200, 0);
    store_close(s);

    s = open_ok(f->db);
    ready_count_t rc = {0};
    store_set_ready(s, on_ready, &rc);
    store_info_t got = {0, 0, 0};
    assert_int_equal(store_get(s, a, &got), -EINPROGRESS);
    assert_int_equal(store_get(s, a, &got), -EINPROGRESS);
    assert_int_equal(store_stats(s).cached_records, 1);
    /* Until the loop polls, nothing is applied, however long the load has been done. */
    assert_int_equal(wait_fd(s, LOAD_WAIT_MS), 1);
    assert_int_equal(store_get(s, a, &got), -EINPROGRESS);
    assert_int_equal(rc.calls, 0);
    store_poll(s);
    assert_int_equal(rc.calls, 1);
    assert_int_equal(store_stats(s).loads, 1); /* two gets, one load */
    assert_int_equal(store_get(s, a, &got), 0);
    expect_info(got, 1, 100, 100);
    /* A poll with nothing finished does not call on_ready. */
    store_poll(s);
    assert_int_equal(rc.calls, 1);

    /* Three cold records at once: every poll that applies loads calls on_ready exactly once. */
    assert_int_equal(store_get(s, b, &got), -EINPROGRESS);
    assert_int_equal(store_get(s, c, &got), -EINPROGRESS);
    int polls = 0;
    long deadline = now_ms() + LOAD_WAIT_MS;
    while (store_stats(s).loads < 3) {
        if (now_ms() > deadline)
            fail_msg("loads did not finish");
        uint64_t loads0 = store_stats(s).loads;
        int calls0 = rc.calls;
        wait_fd(s, 100);
        store_poll(s);
        polls++;
        assert_int_equal(rc.calls - calls0, store_stats(s).loads > loads0 ? 1 : 0);
    }
    assert_true(rc.calls >= 2 && rc.calls <= 3);
    expect_get(s, b, 0, 200, 200);
    expect_get(s, c, 0, 0, 0); /* known absent */
    assert_int_equal(store_stats(s).loads, 3);
    store_close(s);
    assert_int_equal(alloc_bytes_in_use(), heap0);
}

/* on_ready may ask again from inside the callback, as the server does. */
typedef struct reask {
    store_t *s;
    uint8_t ih[20];
    int answered;
    store_info_t got;
} reask_t;

static void reask_ready(void *arg) {
    reask_t *r = arg;
    if (store_get(r->s, r->ih, &r->got) == 0)
        r->answered++;
}

static void test_get_from_on_ready(void **state) {
    fixture_t *f = *state;
    store_t *s = open_ok(f->db);
    reask_t r = {s, {0}, 0, {0, 0, 0}};
    make_ih(r.ih, 70);
    store_touch(s, r.ih, 300, 1);
    store_set_ready(s, reask_ready, &r);
    store_info_t got;
    assert_int_equal(store_get(s, r.ih, &got), -EINPROGRESS);
    long deadline = now_ms() + LOAD_WAIT_MS;
    while (r.answered == 0) {
        if (now_ms() > deadline)
            fail_msg("on_ready was not called");
        wait_fd(s, 100);
        store_poll(s);
    }
    expect_info(r.got, 1, 300, 300);
    store_close(s);
}

/* A get for an infohash nobody touched makes a record that is loaded but never written. */
static void test_get_unknown_is_not_written(void **state) {
    fixture_t *f = *state;
    uint8_t a[20], b[20];
    make_ih(a, 80);
    make_ih(b, 81);
    store_t *s = open_ok(f->db);
    expect_get(s, a, 0, 0, 0);
    store_touch(s, b, 10, 0);
    store_flush(s, 10);
    wait_committed(s, 1);
    store_stats_t st = store_stats(s);
    assert_int_equal(st.rows_written, 1);
    store_close(s);
    store_info_t got;
    assert_int_equal(file_row(f->db, a, &got), 0);
    assert_int_equal(file_row(f->db, b, &got), 1);
}

/* Touches never read: touching COLD_RECORDS infohashes that all have rows loads nothing and does
 * not wake the loop; gets afterwards (many loads in flight at once) answer stored + deltas. */
static void test_touch_never_reads(void **state) {
    fixture_t *f = *state;
    size_t heap0 = alloc_bytes_in_use();
    uint8_t ih[20];
    store_t *s = open_ok(f->db);
    for (unsigned i = 0; i < COLD_RECORDS; i++) {
        make_ih(ih, i);
        store_touch(s, ih, 1000 + i, (int)(i % 4 == 0));
    }
    store_close(s);

    s = open_ok(f->db);
    for (unsigned i = 0; i < COLD_RECORDS; i++) {
        make_ih(ih, i);
        store_touch(s, ih, 50000, (int)(i % 2 == 0));
        if (i % 5 == 0)
            store_touch(s, ih, 50001, 1);
    }
    assert_int_equal(store_stats(s).loads, 0);
    assert_int_equal(store_stats(s).cached_records, COLD_RECORDS);
    assert_int_equal(wait_fd(s, 0), 0);
    /* Half the deltas in flight to the writer, half still pending, when the loads are queued. */
    store_flush(s, 50001);
    for (unsigned i = 0; i < COLD_RECORDS; i += 2) {
        make_ih(ih, i);
        store_touch(s, ih, 50002, 1);
    }
    store_info_t got;
    for (unsigned i = 0; i < COLD_RECORDS; i++) {
        make_ih(ih, i);
        assert_int_equal(store_get(s, ih, &got), -EINPROGRESS);
    }
    /* And a completion on every record while its load is in flight. */
    for (unsigned i = 0; i < COLD_RECORDS; i++) {
        make_ih(ih, i);
        store_touch(s, ih, 50003, 1);
    }
    long deadline = now_ms() + LOAD_WAIT_MS;
    while (store_stats(s).loads < COLD_RECORDS) {
        if (now_ms() > deadline)
            fail_msg("only %llu loads finished", (unsigned long long)store_stats(s).loads);
        wait_fd(s, 100);
        store_poll(s);
    }
    for (unsigned i = 0; i < COLD_RECORDS; i++) {
        make_ih(ih, i);
        uint64_t c = (i % 4 == 0) + (i % 2 == 0) + (i % 5 == 0) + (i % 2 == 0) + 1;
        assert_int_equal(store_get(s, ih, &got), 0);
        expect_info(got, c, 1000 + i, 50003);
    }
    assert_int_equal(store_stats(s).loads, COLD_RECORDS);
    store_close(s);
    for (unsigned i = 0; i < COLD_RECORDS; i += 997) {
        make_ih(ih, i);
        uint64_t c = (i % 4 == 0) + (i % 2 == 0) + (i % 5 == 0) + (i % 2 == 0) + 1;
        expect_file(f->db, ih, c, 1000 + i, 50003);
    }
    assert_int_equal(alloc_bytes_in_use(), heap0);
}

/* The ordering hazard, step by step: completions in a batch queued before the load (the load sees
 * them), pending when the load is queued, touched while it is in flight and handed to a batch
 * queued after it, and touched while in flight and still pending when it finishes. None is lost
 * and none is counted twice, in memory or in the file. */
static void test_touch_while_loading(void **state) {
    fixture_t *f = *state;
    uint8_t a[20];
    make_ih(a, 90);
    store_t *s = open_ok(f->db);
    for (int i = 0; i < 5; i++)
        store_touch(s, a, 100, 1);
    store_close(s);

    for (int round = 0; round < 50; round++) {
        uint64_t base = 5 + (uint64_t)round * 4;
        int64_t t = 1000 + round;
        s = open_ok(f->db);
        store_touch(s, a, t, 1);
        store_flush(s, t); /* batch before the load: seen by it */
        store_touch(s, a, t, 1);
        store_info_t got;
        assert_int_equal(store_get(s, a, &got), -EINPROGRESS); /* one pending: unseen */
        store_touch(s, a, t, 1);
        store_flush(s, t); /* batch after the load: not seen */
        store_touch(s, a, t, 1);
        if (round % 2 == 0)
            sleep_ms(round % 3); /* vary which batch the load overtakes in time */
        expect_get(s, a, base + 4, 100, t);
        store_touch(s, a, t, 0);
        expect_get(s, a, base + 4, 100, t);
        store_close(s);
        expect_file(f->db, a, base + 4, 100, t);
    }
}

/* Dirty, uncommitted and loading records stay in memory whatever their age; evicted records come
 * back with every delta. */
static void test_eviction_keeps_deltas(void **state) {
    fixture_t *f = *state;
    size_t heap0 = alloc_bytes_in_use();
    uint8_t a[20], b[20], c[20];
    make_ih(a, 100);
    make_ih(b, 101);
    make_ih(c, 102);
    store_t *s = open_ok(f->db);
    store_touch(s, a, 1000, 1);
    store_touch(s, b, 1000, 1);
    store_flush(s, 1000);
    wait_committed(s, 1);
    /* a is dirty again: the next flush hands it over and cannot evict it. */
    store_touch(s, a, 1001, 1);
    store_info_t got;
    assert_int_equal(store_get(s, c, &got), -EINPROGRESS); /* c is loading */
    store_flush(s, 100000);
    /* b was clean, settled and idle: gone. a was dirty: kept. c is loading: kept. */
    assert_int_equal(store_stats(s).cached_records, 2);
    wait_committed(s, 2);
    expect_get(s, b, 1, 1000, 1000);
    expect_get(s, a, 2, 1000, 1001);
    expect_get(s, c, 0, 0, 0);
    /* Everything idle and settled now: all three go, and come back from the file. */
    store_flush(s, 200000);
    assert_int_equal(store_stats(s).cached_records, 0);
    store_touch(s, a, 200001, 1);
    expect_get(s, a, 3, 1000, 200001);
    expect_get(s, b, 1, 1000, 1000);
    /* Evicting right after handing a batch over: only once it has settled. */
    for (int i = 0; i < 100; i++) {
        store_touch(s, b, 300000 + i, 1);
        store_flush(s, 300000 + i);
        store_flush(s, 400000 + i * 1000); /* evicts b only if its batch settled */
        expect_get(s, b, 2 + (uint64_t)i, 1000, 300000 + i);
    }
    store_close(s);
    expect_file(f->db, a, 3, 1000, 200001);
    expect_file(f->db, b, 101, 1000, 300099);
    assert_int_equal(alloc_bytes_in_use(), heap0);
}

/* Closing with loads queued and finished loads never polled frees everything cleanly. */
static void test_close_abandons_loads(void **state) {
    fixture_t *f = *state;
    size_t heap0 = alloc_bytes_in_use();
    uint8_t ih[20];
    store_t *s = open_ok(f->db);
    for (unsigned i = 0; i < 1000; i++) {
        make_ih(ih, i);
        store_touch(s, ih, 10, 1);
    }
    store_close(s);
    for (int round = 0; round < 3; round++) {
        s = open_ok(f->db);
        store_info_t got;
        for (unsigned i = 0; i < 1000; i++) {
            make_ih(ih, i);
            assert_int_equal(store_get(s, ih, &got), -EINPROGRESS);
            if (i % 3 == 0)
                store_touch(s, ih, 20, 1); /* a delta on a loading record, written at close */
        }
        if (round == 1)
            wait_fd(s, LOAD_WAIT_MS); /* some loads finished, none collected */
        store_close(s);
    }
    make_ih(ih, 0);
    expect_file(f->db, ih, 4, 10, 20);
    make_ih(ih, 1);
    expect_file(f->db, ih, 1, 10, 10);
    assert_int_equal(alloc_bytes_in_use(), heap0);
}

/* A load that fails (here: the table vanished under the store) makes the next get answer -EAGAIN
 * once and loses no delta; the get after it loads again. */
static void test_failed_load_answers_eagain(void **state) {
    fixture_t *f = *state;
    size_t heap0 = alloc_bytes_in_use();
    uint8_t a[20];
    make_ih(a, 110);
    store_t *s = open_ok(f->db);
    store_touch(s, a, 100, 1);
    store_close(s);

    s = open_ok(f->db);
    ready_count_t rc = {0};
    store_set_ready(s, on_ready, &rc);
    sqlite3 *other = NULL;
    assert_int_equal(sqlite3_open(f->db, &other), SQLITE_OK);
    assert_int_equal(sqlite3_exec(other, "ALTER TABLE infohash RENAME TO saved", NULL, NULL, NULL),
                     SQLITE_OK);
    store_touch(s, a, 200, 1);
    store_info_t got;
    assert_int_equal(store_get(s, a, &got), -EINPROGRESS);
    long deadline = now_ms() + LOAD_WAIT_MS;
    while (rc.calls == 0) {
        if (now_ms() > deadline)
            fail_msg("the failed load was not reported");
        wait_fd(s, 100);
        store_poll(s);
    }
    assert_int_equal(rc.calls, 1); /* a failed load wakes the asker too */
    assert_int_equal(store_stats(s).loads, 0);
    assert_int_equal(store_get(s, a, &got), -EAGAIN);
    store_touch(s, a, 300, 1); /* a delta while the record's base is unknown again */
    assert_int_equal(sqlite3_exec(other, "ALTER TABLE saved RENAME TO infohash", NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_close(other), SQLITE_OK);
    expect_get(s, a, 3, 100, 300);
    assert_int_equal(store_stats(s).loads, 1);
    store_close(s);
    expect_file(f->db, a, 3, 100, 300);
    assert_int_equal(alloc_bytes_in_use(), heap0);
}

/* Random interleavings of touch, get, flush, poll, eviction and reopen against a model: whenever
 * get answers, it answers exactly what the model says, and the file agrees at the end. */
typedef struct model {
    uint64_t completions;
    int64_t first, last;
} model_t;

static void test_random_interleavings(void **state) {
    fixture_t *f = *state;
    size_t heap0 = alloc_bytes_in_use();
    model_t m[RANDOM_RECORDS];
    uint8_t ih[20];
    memset(m, 0, sizeof(m));
    store_t *s = open_ok(f->db);
    /* Half the records have a stored base before the run. */
    for (unsigned i = 0; i < RANDOM_RECORDS; i += 2) {
        make_ih(ih, i);
        for (unsigned k = 0; k <= i % 5; k++)
            store_touch(s, ih, 100 + i, 1);
        m[i] = (model_t){i % 5 + 1, 100 + i, 100 + i};
    }
    store_close(s);

    s = open_ok(f->db);
    unsigned seed = 12345;
    int64_t t = 1000;
    int answered = 0;
    for (int step = 0; step < RANDOM_STEPS; step++) {
        unsigned op = (unsigned)rand_r(&seed) % 100;
        unsigned i = (unsigned)rand_r(&seed) % RANDOM_RECORDS;
        make_ih(ih, i);
        if (op < 40) {
            int done = rand_r(&seed) % 2;
            t += rand_r(&seed) % 3;
            store_touch(s, ih, t, done);
            m[i].completions += (uint64_t)done;
            if (m[i].first == 0)
                m[i].first = t;
            m[i].last = t;
        } else if (op < 65) {
            store_info_t got;
            int rc = store_get(s, ih, &got);
            if (rc == 0) {
                expect_info(got, m[i].completions, m[i].first, m[i].last);
                answered++;
            } else {
                assert_int_equal(rc, -EINPROGRESS);
            }
        } else if (op < 75) {
            store_flush(s, t);
        } else if (op < 78) {
            t += 700; /* the next flush may evict */
        } else if (op < 93) {
            wait_fd(s, rand_r(&seed) % 2);
            store_poll(s);
        } else if (op < 99) {
            sleep_ms(rand_r(&seed) % 2);
        } else if (op == 99 && rand_r(&seed) % 8 == 0) {
            store_close(s);
            s = open_ok(f->db);
        }
    }
    assert_true(answered > 100);
    for (unsigned i = 0; i < RANDOM_RECORDS; i++) {
        make_ih(ih, i);
        expect_get(s, ih, m[i].completions, m[i].first, m[i].last);
    }
    assert_int_equal(store_stats(s).write_errors, 0);
    store_close(s);
    for (unsigned i = 0; i < RANDOM_RECORDS; i++) {
        make_ih(ih, i);
        store_info_t got;
        if (m[i].first == 0) {
            assert_int_equal(file_row(f->db, ih, &got), 0);
            continue;
        }
        expect_file(f->db, ih, m[i].completions, m[i].first, m[i].last);
    }
    assert_int_equal(alloc_bytes_in_use(), heap0);
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
        cmocka_unit_test_setup_teardown(test_fd_is_quiet_eventfd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cold_get_in_progress_then_ready, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_from_on_ready, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_unknown_is_not_written, setup, teardown),
        cmocka_unit_test_setup_teardown(test_touch_never_reads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_touch_while_loading, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eviction_keeps_deltas, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_abandons_loads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_load_answers_eagain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_interleavings, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
