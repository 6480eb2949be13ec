/* store.h: the infohash database. Every infohash ever announced, with first-seen and last-seen
 * times and its number of completions, kept across restarts.
 *
 * The event loop never waits on disk: announces update an in-memory record (loaded from the
 * database the first time an infohash is touched in this run), dirty records are handed in one
 * batch to a writer thread every flush interval, and the writer commits each batch in a single
 * transaction. A crash loses at most the batches not yet committed; WAL mode keeps the file
 * consistent. The backend is chosen by file (store_sqlite.c). */
#ifndef SIG_STORE_STORE_H
#define SIG_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/hash.h"

typedef struct store store_t;

/* What the database knows about one infohash. */
typedef struct store_info {
    uint64_t completions; /* times a peer announced "completed" */
    int64_t first_seen;   /* unix seconds; 0 when never seen */
    int64_t last_seen;    /* unix seconds; 0 when never seen */
} store_info_t;

/* Opens (creating if needed) the database at path and starts the writer thread.
 * On failure returns NULL and writes a human-readable reason into err (errlen bytes).
 * Call from the main thread. */
store_t *store_open(const char *path, const hash_key_t *key, char *err, size_t errlen);

/* Flushes every pending change, stops the writer thread and closes the database. */
void store_close(store_t *s);

/* Records an announce for info_hash at unix time now; completed adds one completion.
 * Event-loop thread only. Never blocks on the writer (it may read the database once, on the
 * first touch of an infohash in this run, through a separate read connection). */
void store_touch(store_t *s, const uint8_t info_hash[20], int64_t now, int completed);

/* Returns what is known about info_hash, including changes not yet written. Event-loop thread. */
store_info_t store_get(store_t *s, const uint8_t info_hash[20]);

/* Hands every dirty record to the writer thread (does not wait) and forgets records that are
 * clean, committed and idle. Call once per flush interval from the event-loop thread. */
void store_flush(store_t *s, int64_t now);

/* Counters for /stats.json. */
typedef struct store_stats {
    uint64_t batches_committed;
    uint64_t rows_written;
    uint64_t write_errors;
    uint64_t cached_records;
} store_stats_t;
store_stats_t store_stats(store_t *s);

#endif
