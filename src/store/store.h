/* store.h: the infohash database. Every infohash ever announced, with first-seen and last-seen
 * times and its number of completions, kept across restarts.
 *
 * The event loop never waits on the database: announces update an in-memory record, reads of a
 * record not in memory start a load and return -EINPROGRESS (the backend calls the on_ready
 * callback on the loop thread when loads have finished: ask again then), and changes are written
 * in batches. Two backends, chosen at start-up, each in its own file: SQLite with a writer thread
 * (store_sqlite.c, standalone mode) and Redis hashes (cluster/store_redis.c, cluster mode).
 * Callers use the store_* functions below; they dispatch to the backend. */
#ifndef SIG_STORE_STORE_H
#define SIG_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/hash.h"
#include "core/histo.h"

typedef struct store store_t;

/* What the database knows about one infohash. */
typedef struct store_info {
    uint64_t completions; /* times a peer announced "completed" */
    int64_t first_seen;   /* unix seconds; 0 when never seen */
    int64_t last_seen;    /* unix seconds; 0 when never seen */
} store_info_t;

/* Counters for /stats.json. */
typedef struct store_stats {
    uint64_t batches_committed;
    uint64_t rows_written;
    uint64_t write_errors;
    uint64_t cached_records;
    uint64_t loads; /* records read from the backend */
    /* Histograms of the backend's writes, or NULL when it keeps none (Redis). Written by the
     * backend's writer thread; readable from the loop thread (see core/histo.h). */
    const histo_t *batch_rows; /* rows per committed batch */
    const histo_t *commit_us;  /* time to write and commit one batch, in microseconds */
} store_stats_t;

/* A backend. Every function is called on the event-loop thread only. */
typedef struct store_ops {
    void (*touch)(store_t *s, const uint8_t info_hash[20], int64_t now, int completed);
    int (*get)(store_t *s, const uint8_t info_hash[20], store_info_t *out);
    void (*flush)(store_t *s, int64_t now);
    int (*fd)(store_t *s);
    void (*poll)(store_t *s);
    store_stats_t (*stats)(store_t *s);
    void (*close)(store_t *s);
} store_ops_t;

/* The part every backend's struct starts with. */
struct store {
    const store_ops_t *ops;
    void (*on_ready)(void *arg); /* loads finished: pending reads may now succeed */
    void *on_ready_arg;
};

/* Opens (creating if needed) the SQLite database at path and starts its threads.
 * On failure returns NULL and writes a human-readable reason into err (errlen bytes).
 * Call from the main thread. */
store_t *store_open_sqlite(const char *path, const hash_key_t *key, char *err, size_t errlen);

/* Sets the callback the backend calls (on the loop thread) when loads have finished. */
static inline void store_set_ready(store_t *s, void (*on_ready)(void *), void *arg) {
    s->on_ready = on_ready;
    s->on_ready_arg = arg;
}

/* Records an announce for info_hash at unix time now; completed adds one completion. Never
 * blocks and never reads the database: the change is a delta merged when written. */
static inline void store_touch(store_t *s, const uint8_t info_hash[20], int64_t now,
                               int completed) {
    s->ops->touch(s, info_hash, now, completed);
}

/* Reads what is known about info_hash, including changes not yet written. Returns 0 with *out
 * filled; -EINPROGRESS when the record is being loaded (on_ready will be called; ask again then);
 * -EAGAIN when the backend cannot answer now (Redis unreachable). Never blocks. */
static inline int store_get(store_t *s, const uint8_t info_hash[20], store_info_t *out) {
    return s->ops->get(s, info_hash, out);
}

/* Hands dirty records to be written (never waits) and forgets records that are clean, written
 * and idle. Call once per flush interval. */
static inline void store_flush(store_t *s, int64_t now) {
    s->ops->flush(s, now);
}

/* A descriptor the loop watches for readability (then calls store_poll), or -1 when the backend
 * has none (it calls on_ready from its own events). */
static inline int store_fd(store_t *s) {
    return s->ops->fd(s);
}

/* Collects finished loads and calls on_ready when there were any. */
static inline void store_poll(store_t *s) {
    s->ops->poll(s);
}

static inline store_stats_t store_stats(store_t *s) {
    return s->ops->stats(s);
}

/* Flushes every pending change, stops the backend's threads and frees it. NULL is ignored. */
static inline void store_close(store_t *s) {
    if (s != NULL)
        s->ops->close(s);
}

#endif
