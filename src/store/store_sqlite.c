/* store_sqlite.c: the infohash database on SQLite in WAL mode, with one writer thread.
 *
 * Threads: the event loop owns the record cache and a read-only connection; the writer thread owns
 * the read-write connection. They share only the batch queue (under a mutex) and the sequence
 * number of the last committed batch (atomic). */
#include "store/store.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/hmap.h"
#include "core/log.h"

/* A cached record that is clean, committed and untouched for this long is dropped from memory;
 * the database then answers for it. In seconds. */
#define STORE_EVICT_IDLE_SECONDS 600
/* How long SQLite may wait on a lock before giving up, in milliseconds. Only the writer thread
 * can wait this long; the event loop's reads never wait on a WAL writer. */
#define STORE_BUSY_TIMEOUT_MS 5000
/* How many times the writer retries a batch whose transaction failed, one second apart. */
#define STORE_WRITE_RETRIES 3

typedef struct rec {
    hmap_node_t node;
    uint8_t ih[20];
    uint8_t dirty;
    uint64_t completions;         /* total known, committed or not */
    uint64_t pending_completions; /* not yet handed to the writer */
    int64_t first_seen;
    int64_t last_seen;
    uint64_t batch_seq; /* last batch that carried this record */
} rec_t;

typedef struct row {
    uint8_t ih[20];
    int64_t first_seen;
    int64_t last_seen;
    uint64_t add_completions;
} row_t;

typedef struct batch {
    struct batch *next;
    uint64_t seq;
    size_t n;
    row_t rows[];
} batch_t;

struct store {
    hash_key_t key;
    hmap_t recs;
    sqlite3 *rdb;
    sqlite3_stmt *rget;
    sqlite3 *wdb;
    pthread_t writer;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    batch_t *queue_head, *queue_tail;
    int stopping;
    uint64_t next_seq;
    _Atomic uint64_t committed_seq;
    _Atomic uint64_t batches_committed;
    _Atomic uint64_t rows_written;
    _Atomic uint64_t write_errors;
};

static const char schema[] = "CREATE TABLE IF NOT EXISTS infohash ("
                             " info_hash BLOB PRIMARY KEY,"
                             " first_seen INTEGER NOT NULL,"
                             " last_seen INTEGER NOT NULL,"
                             " completions INTEGER NOT NULL DEFAULT 0"
                             ") WITHOUT ROWID;";

static const char upsert_sql[] =
    "INSERT INTO infohash(info_hash, first_seen, last_seen, completions) VALUES(?1, ?2, ?3, ?4)"
    " ON CONFLICT(info_hash) DO UPDATE SET"
    " first_seen = min(first_seen, excluded.first_seen),"
    " last_seen = max(last_seen, excluded.last_seen),"
    " completions = completions + excluded.completions;";

static int write_batch(sqlite3 *db, const batch_t *b) {
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db, upsert_sql, -1, &st, NULL);
    for (size_t i = 0; rc == SQLITE_OK && i < b->n; i++) {
        const row_t *r = &b->rows[i];
        sqlite3_bind_blob(st, 1, r->ih, 20, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, r->first_seen);
        sqlite3_bind_int64(st, 3, r->last_seen);
        sqlite3_bind_int64(st, 4, (sqlite3_int64)r->add_completions);
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(db);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        log_msg(LOG_ERROR, "store: writing %zu rows failed: %s", b->n, sqlite3_errmsg(db));
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    return 0;
}

static void *writer_main(void *arg) {
    store_t *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (s->queue_head == NULL && !s->stopping)
            pthread_cond_wait(&s->cv, &s->mu);
        batch_t *b = s->queue_head;
        if (b == NULL)
            break; /* stopping and nothing left to write */
        s->queue_head = b->next;
        if (s->queue_head == NULL)
            s->queue_tail = NULL;
        pthread_mutex_unlock(&s->mu);
        int ok = -1;
        for (int attempt = 0; attempt < STORE_WRITE_RETRIES && ok != 0; attempt++) {
            if (attempt > 0)
                sqlite3_sleep(1000);
            ok = write_batch(s->wdb, b);
        }
        if (ok == 0) {
            atomic_fetch_add(&s->batches_committed, 1);
            atomic_fetch_add(&s->rows_written, b->n);
        } else {
            atomic_fetch_add(&s->write_errors, 1);
        }
        /* Even a failed batch counts as settled, so its records can be evicted and later reads
         * fall back to what the file holds; the error is logged and counted. */
        atomic_store(&s->committed_seq, b->seq);
        xfree(b);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static int open_db(const char *path, int flags, sqlite3 **db, char *err, size_t errlen) {
    int rc = sqlite3_open_v2(path, db, flags | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "cannot open database %s: %s", path,
                 *db ? sqlite3_errmsg(*db) : sqlite3_errstr(rc));
        sqlite3_close(*db);
        *db = NULL;
        return -1;
    }
    sqlite3_busy_timeout(*db, STORE_BUSY_TIMEOUT_MS);
    return 0;
}

store_t *store_open(const char *path, const hash_key_t *key, char *err, size_t errlen) {
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "cannot open database %s: it is a directory", path);
        return NULL;
    }
    store_t *s = xcalloc(1, sizeof(*s));
    s->key = *key;
    char *msg = NULL;
    if (open_db(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &s->wdb, err, errlen) != 0)
        goto fail;
    sqlite3_stmt *jm = NULL;
    if (sqlite3_prepare_v2(s->wdb, "PRAGMA journal_mode=WAL", -1, &jm, NULL) != SQLITE_OK ||
        sqlite3_step(jm) != SQLITE_ROW ||
        strcmp((const char *)sqlite3_column_text(jm, 0), "wal") != 0) {
        snprintf(err, errlen, "cannot use database %s: %s", path,
                 sqlite3_errcode(s->wdb) == SQLITE_OK ? "WAL mode unavailable"
                                                      : sqlite3_errmsg(s->wdb));
        sqlite3_finalize(jm);
        goto fail;
    }
    sqlite3_finalize(jm);
    if (sqlite3_exec(s->wdb, "PRAGMA synchronous=NORMAL", NULL, NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(s->wdb, schema, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "cannot use database %s: %s", path, msg ? msg : "unknown error");
        sqlite3_free(msg);
        goto fail;
    }
    if (open_db(path, SQLITE_OPEN_READONLY, &s->rdb, err, errlen) != 0)
        goto fail;
    if (sqlite3_prepare_v2(s->rdb,
                           "SELECT completions, first_seen, last_seen FROM infohash"
                           " WHERE info_hash = ?1",
                           -1, &s->rget, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot read database %s: %s", path, sqlite3_errmsg(s->rdb));
        goto fail;
    }
    hmap_init(&s->recs, 10);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (pthread_create(&s->writer, NULL, writer_main, s) != 0) {
        snprintf(err, errlen, "cannot start the database writer thread");
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
        hmap_dispose(&s->recs);
        goto fail;
    }
    return s;
fail:
    sqlite3_finalize(s->rget);
    sqlite3_close(s->rdb);
    sqlite3_close(s->wdb);
    xfree(s);
    return NULL;
}

static rec_t *find(store_t *s, const uint8_t ih[20], uint64_t h) {
    for (hmap_node_t *n = hmap_chain(&s->recs, h); n; n = n->next)
        if (n->hash == h && memcmp(((rec_t *)n)->ih, ih, 20) == 0)
            return (rec_t *)n;
    return NULL;
}

/* Reads one infohash from the file. Returns 1 when found. */
static int read_row(store_t *s, const uint8_t ih[20], store_info_t *out) {
    int found = 0;
    sqlite3_bind_blob(s->rget, 1, ih, 20, SQLITE_STATIC);
    if (sqlite3_step(s->rget) == SQLITE_ROW) {
        out->completions = (uint64_t)sqlite3_column_int64(s->rget, 0);
        out->first_seen = sqlite3_column_int64(s->rget, 1);
        out->last_seen = sqlite3_column_int64(s->rget, 2);
        found = 1;
    }
    sqlite3_reset(s->rget);
    return found;
}

void store_touch(store_t *s, const uint8_t info_hash[20], int64_t now, int completed) {
    uint64_t h = hash_bytes(&s->key, info_hash, 20);
    rec_t *r = find(s, info_hash, h);
    if (r == NULL) {
        store_info_t known = {0, 0, 0};
        r = xcalloc(1, sizeof(*r));
        memcpy(r->ih, info_hash, 20);
        if (read_row(s, info_hash, &known)) {
            r->completions = known.completions;
            r->first_seen = known.first_seen;
        } else {
            r->first_seen = now;
        }
        hmap_insert(&s->recs, &r->node, h);
    }
    r->last_seen = now;
    r->dirty = 1;
    if (completed) {
        r->completions++;
        r->pending_completions++;
    }
}

store_info_t store_get(store_t *s, const uint8_t info_hash[20]) {
    store_info_t info = {0, 0, 0};
    rec_t *r = find(s, info_hash, hash_bytes(&s->key, info_hash, 20));
    if (r != NULL) {
        info.completions = r->completions;
        info.first_seen = r->first_seen;
        info.last_seen = r->last_seen;
        return info;
    }
    /* Not cached: either never seen, or evicted after its last batch was committed, so the file
     * is up to date for it. */
    read_row(s, info_hash, &info);
    return info;
}

typedef struct flush_ctx {
    store_t *s;
    batch_t *b;
    int64_t now;
    uint64_t committed;
} flush_ctx_t;

static void collect(hmap_node_t *n, void *arg) {
    flush_ctx_t *fc = arg;
    rec_t *r = (rec_t *)n;
    if (r->dirty) {
        row_t *row = &fc->b->rows[fc->b->n++];
        memcpy(row->ih, r->ih, 20);
        row->first_seen = r->first_seen;
        row->last_seen = r->last_seen;
        row->add_completions = r->pending_completions;
        r->pending_completions = 0;
        r->dirty = 0;
        r->batch_seq = fc->b->seq;
    } else if (r->batch_seq <= fc->committed && fc->now - r->last_seen > STORE_EVICT_IDLE_SECONDS) {
        hmap_remove(&fc->s->recs, n);
        xfree(r);
    }
}

void store_flush(store_t *s, int64_t now) {
    /* Sized for every record; a batch lives only until the writer commits it. */
    batch_t *b = xmalloc(sizeof(*b) + s->recs.count * sizeof(row_t));
    b->next = NULL;
    b->n = 0;
    b->seq = ++s->next_seq;
    flush_ctx_t fc = {s, b, now, atomic_load(&s->committed_seq)};
    hmap_each(&s->recs, collect, &fc);
    if (b->n == 0) {
        s->next_seq--;
        xfree(b);
        return;
    }
    pthread_mutex_lock(&s->mu);
    if (s->queue_tail)
        s->queue_tail->next = b;
    else
        s->queue_head = b;
    s->queue_tail = b;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void free_rec(hmap_node_t *n, void *arg) {
    (void)arg;
    xfree(n);
}

void store_close(store_t *s) {
    if (s == NULL)
        return;
    store_flush(s, 0);
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->writer, NULL);
    hmap_each(&s->recs, free_rec, NULL);
    hmap_dispose(&s->recs);
    sqlite3_finalize(s->rget);
    sqlite3_close(s->rdb);
    sqlite3_close(s->wdb);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    xfree(s);
}

store_stats_t store_stats(store_t *s) {
    store_stats_t st = {atomic_load(&s->batches_committed), atomic_load(&s->rows_written),
                        atomic_load(&s->write_errors), s->recs.count};
    return st;
}
