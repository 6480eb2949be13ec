/* acl_micro.c: what an access list (--allowlist, --denylist; src/tracker/acl.c) costs. Two
 * questions from issue 10: does a list of 1,000,000 infohashes load in under a second, and does
 * the check an announce makes cost the same whatever the list's size?
 *
 *   - load: a list file of 1,000,000 random infohashes (41 bytes a line, 41 MB) written to a
 *     temporary file, then read and parsed into a fresh list with acl_load_file, exactly as the
 *     server does at start and on SIGHUP; and the same bytes parsed from memory (acl_parse), to
 *     split the cost of reading from that of parsing and inserting;
 *   - lookup: lists of 1,000, 100,000, 1,000,000 and 4,000,000 entries, each asked about
 *     2,000,000 keys in random order, half of them listed and half not (as an allowlist or a
 *     denylist sees them), with the keys prepared beforehand so only acl_allows is timed. "cold"
 *     asks about keys spread over the whole list, so a large table is mostly out of the CPU
 *     caches; "hot" asks about 1,024 keys only (a tracker's popular torrents), which shows the
 *     work of a lookup itself, apart from memory latency.
 * Each figure is the median of ROUNDS rounds.
 *
 *   make -C bench build/acl_micro && bench/build/acl_micro
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "tracker/acl.h"

/* Entries of the list whose load is timed. */
#define LOAD_ENTRIES 1000000
/* Keys looked up per round (half listed, half not). */
#define LOOKUPS 2000000
/* Distinct keys of the "hot" lookups. */
#define HOT_KEYS 1024
/* Rounds per figure; the median is printed. */
#define ROUNDS 7

static const hash_key_t key = {0x736967747261636bull, 0x62656e63686d6b21ull};

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return v[n / 2];
}

/* xorshift64*: reproducible random bytes without libc's rand. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t next_u64(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static void random_key(uint8_t k[ACL_KEY_BYTES]) {
    uint64_t a = next_u64(), b = next_u64(), c = next_u64();
    memcpy(k, &a, 8);
    memcpy(k + 8, &b, 8);
    memcpy(k + 16, &c, 4);
}

/* Writes n keys as a list file's text: 40 lowercase hex characters and a LF each. */
static char *list_text(const uint8_t (*keys)[ACL_KEY_BYTES], size_t n, size_t *len) {
    static const char hex[] = "0123456789abcdef";
    char *t = xmalloc(n * 41 + 1);
    for (size_t i = 0; i < n; i++) {
        char *p = t + i * 41;
        for (int j = 0; j < ACL_KEY_BYTES; j++) {
            p[2 * j] = hex[keys[i][j] >> 4];
            p[2 * j + 1] = hex[keys[i][j] & 15];
        }
        p[40] = '\n';
    }
    *len = n * 41;
    return t;
}

static void bench_load(void) {
    uint8_t(*keys)[ACL_KEY_BYTES] = xmalloc((size_t)LOAD_ENTRIES * ACL_KEY_BYTES);
    for (size_t i = 0; i < LOAD_ENTRIES; i++)
        random_key(keys[i]);
    size_t len;
    char *text = list_text((const uint8_t(*)[ACL_KEY_BYTES])keys, LOAD_ENTRIES, &len);
    char path[] = "/tmp/sigtracker-acl-micro.XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0 || write(fd, text, len) != (ssize_t)len) {
        perror("writing the list file");
        exit(1);
    }
    close(fd);
    double file_ms[ROUNDS], mem_ms[ROUNDS];
    size_t bytes = 0;
    char err[512];
    for (int r = 0; r < ROUNDS; r++) {
        acl_t *a = acl_create(ACL_ALLOW, &key);
        double t0 = now_ns();
        if (acl_load_file(a, path, err, sizeof(err)) != 0) {
            fprintf(stderr, "%s\n", err);
            exit(1);
        }
        file_ms[r] = (now_ns() - t0) / 1e6;
        if (acl_count(a) != LOAD_ENTRIES) {
            fprintf(stderr, "loaded %zu entries, expected %d\n", acl_count(a), LOAD_ENTRIES);
            exit(1);
        }
        bytes = acl_bytes(a);
        acl_destroy(a);
        a = acl_create(ACL_ALLOW, &key);
        t0 = now_ns();
        acl_parse(a, "mem", text, len, err, sizeof(err));
        mem_ms[r] = (now_ns() - t0) / 1e6;
        acl_destroy(a);
    }
    unlink(path);
    printf("load of %d infohashes (%.1f MB file): acl_load_file %.0f ms, acl_parse from memory "
           "%.0f ms (median of %d); table %.1f MiB\n",
           LOAD_ENTRIES, (double)len / 1e6, median(file_ms, ROUNDS), median(mem_ms, ROUNDS), ROUNDS,
           (double)bytes / (1024.0 * 1024.0));
    xfree(text);
    xfree(keys);
}

static void bench_lookup(size_t entries) {
    uint8_t(*listed)[ACL_KEY_BYTES] = xmalloc(entries * ACL_KEY_BYTES);
    acl_t *a = acl_create(ACL_DENY, &key);
    for (size_t i = 0; i < entries; i++) {
        random_key(listed[i]);
        acl_add(a, listed[i]);
    }
    /* The keys asked about: even ones listed (picked at random), odd ones not. The hot set
     * repeats the first HOT_KEYS of them. */
    uint8_t(*ask)[ACL_KEY_BYTES] = xmalloc((size_t)LOOKUPS * ACL_KEY_BYTES);
    for (size_t i = 0; i < LOOKUPS; i++) {
        if (i % 2 == 0)
            memcpy(ask[i], listed[next_u64() % entries], ACL_KEY_BYTES);
        else
            random_key(ask[i]);
    }
    double cold[ROUNDS], hot[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        size_t allowed = 0;
        double t0 = now_ns();
        for (size_t i = 0; i < LOOKUPS; i++)
            allowed += (size_t)acl_allows(a, ask[i]);
        cold[r] = (now_ns() - t0) / LOOKUPS;
        if (allowed != LOOKUPS / 2) {
            fprintf(stderr, "%zu of %d allowed, expected half\n", allowed, LOOKUPS);
            exit(1);
        }
        allowed = 0;
        t0 = now_ns();
        for (size_t i = 0; i < LOOKUPS; i++)
            allowed += (size_t)acl_allows(a, ask[i % HOT_KEYS]);
        hot[r] = (now_ns() - t0) / LOOKUPS;
        if (allowed != LOOKUPS / 2) {
            fprintf(stderr, "%zu of %d allowed (hot), expected half\n", allowed, LOOKUPS);
            exit(1);
        }
    }
    printf("lookup in %8zu entries: cold %5.1f ns, hot %5.1f ns per acl_allows (median of %d "
           "rounds of %d, half listed); table %.1f MiB\n",
           entries, median(cold, ROUNDS), median(hot, ROUNDS), ROUNDS, LOOKUPS,
           (double)acl_bytes(a) / (1024.0 * 1024.0));
    acl_destroy(a);
    xfree(ask);
    xfree(listed);
}

int main(void) {
    bench_load();
    bench_lookup(1000);
    bench_lookup(100000);
    bench_lookup(1000000);
    bench_lookup(4000000);
    return 0;
}
