/* store_sqlite.c: the infohash database on SQLite in WAL mode, behind the store_ops_t interface.
 *
 * Threads: the event loop owns the record cache (every op runs there and none touches SQLite).
 * One database thread owns the only connection and does all of SQLite's work, strictly in the
 * order the loop asked for it: it commits batches of changes, one transaction each, and reads the
 * records the loop asked for ("loads"), up to STORE_LOAD_BATCH of them in one read transaction.
 * The two threads share the work queue and the list of finished loads (both under one mutex), an
 * eventfd the database thread writes when loads have finished, and counters (atomics).
 *
 * Why loads run on the writer thread and not on a reader thread with its own connection: with one
 * queue served in order by one connection, what a load sees is exactly the batches queued before
 * it, which the loop knows without per-batch bookkeeping (the invariant below). A separate reader
 * would read while batches commit, and the loop would have to learn which of a record's in-flight
 * batches each read included. The cost is that a load waits behind the batches queued before it,
 * one transaction each: fine for scrape answers, which are the only readers.
 *
 * The invariant, loads against batches. The database thread takes one item at a time from a FIFO
 * queue, so a load group queued after batch k and before batch k+1 reads a file that holds batches
 * 1..k (those that committed: a batch that fails its retries is lost, logged and counted) and none
 * of batches k+1 onwards. The load reply says which batch the thread settled last before reading
 * (seen_seq), the group remembers k (its hdr.seq), and poll checks they are equal. So, when a
 * record's load is queued, its completions split into deltas already handed to batches (the load
 * sees them: they are in the stored value it returns) and deltas still pending (the load cannot
 * see them), and every completion touched while the load is in flight lands in a batch after k or
 * is still pending (not seen either). The record keeps those unseen completions in `unseen` (=
 * `pending` when the load is queued, plus one per completed touch while loading), and applying the
 * load sets completions = stored + unseen. From then on (REC_KNOWN) every completed touch adds one
 * to both `completions` (the answer) and `pending` (the next batch's delta). first_seen and
 * last_seen are a min and a max, which no ordering can double count. */
#include "store/store.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

#include "core/alloc.h"
#include "core/hmap.h"
#include "core/log.h"

/* A cached record that is clean, committed, not loading and neither touched nor read for this
 * long is dropped from memory; the database then answers for it. In seconds. */
#define STORE_EVICT_IDLE_SECONDS 600
/* How long SQLite may wait on a lock before giving up, in milliseconds. Only the database thread
 * talks to SQLite, so only it can wait this long. */
#define STORE_BUSY_TIMEOUT_MS 5000
/* How many times the writer tries a batch whose transaction failed, one second apart. */
#define STORE_WRITE_RETRIES 3
/* Most records read in one read transaction (one load group), in records. */
#define STORE_LOAD_BATCH 256

/* What the loop knows of a record's stored value. */
enum rec_state {
    REC_UNKNOWN, /* created by a touch, or its load failed: holds deltas only */
    REC_LOADING, /* a load is queued or running; the record must stay in memory */
    REC_KNOWN,   /* stored value read (or known absent): completions is the answer */
};

typedef struct rec {
    hmap_node_t node; /* first: the table's nodes are records */
    uint8_t ih[20];
    uint8_t state;        /* enum rec_state */
    uint8_t dirty;        /* touched since it was last handed to the writer */
    uint8_t load_failed;  /* its last load failed: the next get answers -EAGAIN once */
    uint64_t completions; /* REC_KNOWN: stored + every delta since the load (the answer) */
    uint64_t pending;     /* completions not yet handed to the writer */
    uint64_t unseen;      /* REC_LOADING: completions the load in flight cannot see */
    int64_t first_seen;   /* min of the touches, and of the stored value once known; 0: none */
    int64_t last_seen;    /* max of the same */
    int64_t used;         /* last touch or get (loop clock), for eviction */
    uint64_t batch_seq;   /* last batch that carried this record */
} rec_t;

/* One record's change in a batch: merged into the file by upsert_sql. */
typedef struct row {
    uint8_t ih[20];
    int64_t first_seen;
    int64_t last_seen;
    uint64_t add_completions;
} row_t;

/* The database thread's work queue holds batches and load groups, in the order they were queued. */
enum item_kind { ITEM_BATCH, ITEM_LOAD };

typedef struct item {
    struct item *next;
    int kind;     /* enum item_kind */
    uint64_t seq; /* a batch: its sequence; a load group: the last batch queued before it */
} item_t;

typedef struct batch {
    item_t hdr; /* first */
    size_t n;
    row_t rows[];
} batch_t;

enum load_status { LOAD_FAILED, LOAD_ABSENT, LOAD_FOUND };

typedef struct load_entry {
    uint8_t ih[20];
    uint8_t status; /* enum load_status, written by the database thread */
    store_info_t info;
} load_entry_t;

typedef struct load_group {
    item_t hdr;        /* first */
    uint64_t seen_seq; /* the last batch settled before the read, written by the database thread */
    size_t n;
    load_entry_t e[STORE_LOAD_BATCH];
} load_group_t;

typedef struct backend {
    struct store base; /* first: the store_t * handed out points here */
    /* Event-loop thread only. */
    hash_key_t key;
    hmap_t recs;
    size_t ndirty;     /* records with dirty set */
    uint64_t next_seq; /* sequence of the last batch queued */
    uint64_t loads;    /* loads applied */
    int64_t clock;     /* the latest `now` given to touch or flush */
    /* The database thread only, between open and close. */
    sqlite3 *db;
    sqlite3_stmt *upsert;
    sqlite3_stmt *select;
    /* Shared: set at open, read by both. */
    int efd;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* Shared under mu. */
    item_t *work_head, *work_tail; /* for the database thread, in order */
    item_t *done_head, *done_tail; /* finished load groups, for the loop */
    int stopping;
    /* Shared, atomic. */
    _Atomic uint64_t committed_seq; /* last batch settled (committed, or failed for good) */
    _Atomic uint64_t batches_committed;
    _Atomic uint64_t rows_written;
    _Atomic uint64_t write_errors;
    /* Written by the database thread only, read by the loop (atomic fields: core/histo.h). */
    histo_t batch_rows;
    histo_t commit_us;
} backend_t;

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

static const char select_sql[] =
    "SELECT completions, first_seen, last_seen FROM infohash WHERE info_hash = ?1";

/* A pthread call on our own mutex, condition variable or thread fails only when the program is
 * broken (EINVAL, EDEADLK); nothing can continue safely, so abort like the allocator does. */
static void check_pthread(int rc, const char *what) {
    if (rc != 0) {
        char buf[128];
        fprintf(stderr, "sigtracker: store: %s failed: %s\n", what,
                strerror_r(rc, buf, sizeof(buf)));
        abort();
    }
}

static void lock(backend_t *b) {
    check_pthread(pthread_mutex_lock(&b->mu), "pthread_mutex_lock");
}

static void unlock(backend_t *b) {
    check_pthread(pthread_mutex_unlock(&b->mu), "pthread_mutex_unlock");
}

/* Appends an item to a singly linked queue. The caller holds mu. */
static void push(item_t **head, item_t **tail, item_t *it) {
    it->next = NULL;
    if (*tail)
        (*tail)->next = it;
    else
        *head = it;
    *tail = it;
}

/* --- The database thread. --- */

/* Writes one batch in one transaction. Returns 0 when it committed, -1 (logged, rolled back)
 * otherwise. */
static int write_batch(backend_t *b, const batch_t *bt) {
    sqlite3_stmt *st = b->upsert;
    int rc = sqlite3_exec(b->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    for (size_t i = 0; rc == SQLITE_OK && i < bt->n; i++) {
        const row_t *r = &bt->rows[i];
        rc = sqlite3_bind_blob(st, 1, r->ih, 20, SQLITE_STATIC);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_int64(st, 2, r->first_seen);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_int64(st, 3, r->last_seen);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_int64(st, 4, (sqlite3_int64)r->add_completions);
        if (rc == SQLITE_OK)
            rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(b->db);
        /* reset repeats the step's error, which rc already holds. */
        int rr = sqlite3_reset(st);
        if (rc == SQLITE_OK)
            rc = rr;
    }
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(b->db, "COMMIT", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        return 0;
    log_msg(LOG_ERROR, "store: writing %zu rows failed: %s", bt->n, sqlite3_errmsg(b->db));
    if (!sqlite3_get_autocommit(b->db) &&
        sqlite3_exec(b->db, "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK)
        log_msg(LOG_ERROR, "store: rollback failed: %s", sqlite3_errmsg(b->db));
    return -1;
}

/* Writes a batch, retrying, and publishes it as settled whatever the outcome. Frees it. */
static void settle_batch(backend_t *b, batch_t *bt) {
    int ok = -1;
    struct timespec t0 = {0, 0}, t1 = {0, 0};
    for (int attempt = 0; attempt < STORE_WRITE_RETRIES && ok != 0; attempt++) {
        if (attempt > 0)
            (void)sqlite3_sleep(1000); /* returns the time slept: nothing to check */
        /* CLOCK_MONOTONIC cannot fail with a valid clock id and pointer; the last attempt's
         * time is what the histogram keeps (the retries' sleeps are not commit time). */
        (void)clock_gettime(CLOCK_MONOTONIC, &t0);
        ok = write_batch(b, bt);
        (void)clock_gettime(CLOCK_MONOTONIC, &t1);
    }
    if (ok == 0) {
        atomic_fetch_add(&b->batches_committed, 1);
        atomic_fetch_add(&b->rows_written, bt->n);
        int64_t us = (int64_t)(t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000;
        histo_observe(&b->batch_rows, bt->n);
        histo_observe(&b->commit_us, us > 0 ? (uint64_t)us : 0);
    } else {
        atomic_fetch_add(&b->write_errors, 1);
    }
    /* Even a failed batch counts as settled, so its records can be evicted and later loads fall
     * back to what the file holds; the error is logged and counted. */
    atomic_store(&b->committed_seq, bt->hdr.seq);
    xfree(bt);
}

/* Reads every record of a load group in one read transaction. On any error every entry is marked
 * LOAD_FAILED (logged): the loop then answers -EAGAIN once and loads again on the next get. */
static void read_group(backend_t *b, load_group_t *g) {
    sqlite3_stmt *st = b->select;
    int rc = sqlite3_exec(b->db, "BEGIN", NULL, NULL, NULL);
    for (size_t i = 0; rc == SQLITE_OK && i < g->n; i++) {
        load_entry_t *e = &g->e[i];
        rc = sqlite3_bind_blob(st, 1, e->ih, 20, SQLITE_STATIC);
        if (rc == SQLITE_OK) {
            int step = sqlite3_step(st);
            if (step == SQLITE_ROW) {
                e->info.completions = (uint64_t)sqlite3_column_int64(st, 0);
                e->info.first_seen = sqlite3_column_int64(st, 1);
                e->info.last_seen = sqlite3_column_int64(st, 2);
                e->status = LOAD_FOUND;
            } else if (step == SQLITE_DONE) {
                e->status = LOAD_ABSENT;
            } else {
                rc = sqlite3_errcode(b->db);
            }
        }
        int rr = sqlite3_reset(st);
        if (rc == SQLITE_OK)
            rc = rr;
    }
    /* Ends the read transaction; nothing was written, so there is nothing to lose. */
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(b->db, "COMMIT", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        return;
    log_msg(LOG_ERROR, "store: reading %zu rows failed: %s", g->n, sqlite3_errmsg(b->db));
    if (!sqlite3_get_autocommit(b->db) &&
        sqlite3_exec(b->db, "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK)
        log_msg(LOG_ERROR, "store: rollback failed: %s", sqlite3_errmsg(b->db));
    for (size_t i = 0; i < g->n; i++)
        g->e[i].status = LOAD_FAILED;
}

/* Makes the loop's eventfd readable. The counter cannot overflow in practice (it would take 2^64
 * wakeups the loop never read), so a failure is only logged. */
static void wake_loop(backend_t *b) {
    uint64_t one = 1;
    ssize_t n;
    do
        n = write(b->efd, &one, sizeof(one));
    while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof(one)) {
        char buf[128];
        log_msg(LOG_ERROR, "store: cannot wake the event loop: %s",
                n < 0 ? strerror_r(errno, buf, sizeof(buf)) : "short write");
    }
}

/* The database thread: serves the work queue in order until close asks it to stop and the queue
 * is empty. Loads still queued at close are dropped unread (nobody will ask for them). */
static void *db_main(void *arg) {
    backend_t *b = arg;
    uint64_t settled = 0; /* the last batch this thread settled */
    lock(b);
    for (;;) {
        while (b->work_head == NULL && !b->stopping)
            check_pthread(pthread_cond_wait(&b->cv, &b->mu), "pthread_cond_wait");
        item_t *it = b->work_head;
        if (it == NULL)
            break; /* stopping and nothing left to write */
        b->work_head = it->next;
        if (b->work_head == NULL)
            b->work_tail = NULL;
        int stopping = b->stopping;
        unlock(b);
        if (it->kind == ITEM_BATCH) {
            settled = it->seq;
            settle_batch(b, (batch_t *)it);
        } else if (stopping) {
            xfree(it);
        } else {
            load_group_t *g = (load_group_t *)it;
            g->seen_seq = settled;
            read_group(b, g);
            lock(b);
            push(&b->done_head, &b->done_tail, it);
            unlock(b);
            wake_loop(b);
        }
        lock(b);
    }
    unlock(b);
    return NULL;
}

/* --- Opening and closing. --- */

/* Finalizes the statements and closes the connection (any of them may be NULL). */
static void close_db(backend_t *b) {
    /* finalize returns the error of the statement's last step, already handled where it ran. */
    (void)sqlite3_finalize(b->upsert);
    (void)sqlite3_finalize(b->select);
    b->upsert = b->select = NULL;
    if (sqlite3_close(b->db) != SQLITE_OK)
        log_msg(LOG_ERROR, "store: closing the database failed: %s", sqlite3_errmsg(b->db));
    b->db = NULL;
}

/* Opens the database read-write in WAL mode, creates the table and prepares the statements.
 * Returns 0, or -1 with err filled and nothing left open. */
static int open_db(backend_t *b, const char *path, char *err, size_t errlen) {
    /* NOMUTEX: the connection is used by one thread at a time (this one, then the database
     * thread, then close after joining it). */
    int rc = sqlite3_open_v2(
        path, &b->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "cannot open database %s: %s", path,
                 b->db ? sqlite3_errmsg(b->db) : sqlite3_errstr(rc));
        goto fail;
    }
    if (sqlite3_busy_timeout(b->db, STORE_BUSY_TIMEOUT_MS) != SQLITE_OK) {
        snprintf(err, errlen, "cannot use database %s: %s", path, sqlite3_errmsg(b->db));
        goto fail;
    }
    sqlite3_stmt *jm = NULL;
    if (sqlite3_prepare_v2(b->db, "PRAGMA journal_mode=WAL", -1, &jm, NULL) != SQLITE_OK ||
        sqlite3_step(jm) != SQLITE_ROW ||
        strcmp((const char *)sqlite3_column_text(jm, 0), "wal") != 0) {
        snprintf(err, errlen, "cannot use database %s: %s", path,
                 sqlite3_errcode(b->db) == SQLITE_OK ? "WAL mode unavailable"
                                                     : sqlite3_errmsg(b->db));
        (void)sqlite3_finalize(jm); /* the error is reported above */
        goto fail;
    }
    if (sqlite3_finalize(jm) != SQLITE_OK) {
        snprintf(err, errlen, "cannot use database %s: %s", path, sqlite3_errmsg(b->db));
        goto fail;
    }
    char *msg = NULL;
    if (sqlite3_exec(b->db, "PRAGMA synchronous=NORMAL", NULL, NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(b->db, schema, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "cannot use database %s: %s", path, msg ? msg : "unknown error");
        sqlite3_free(msg);
        goto fail;
    }
    if (sqlite3_prepare_v2(b->db, upsert_sql, -1, &b->upsert, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(b->db, select_sql, -1, &b->select, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot use database %s: %s", path, sqlite3_errmsg(b->db));
        goto fail;
    }
    return 0;
fail:
    close_db(b);
    return -1;
}

/* --- The event-loop side. --- */

static rec_t *find(backend_t *b, const uint8_t ih[20], uint64_t h) {
    for (hmap_node_t *n = hmap_chain(&b->recs, h); n; n = n->next)
        if (n->hash == h && memcmp(((rec_t *)n)->ih, ih, 20) == 0)
            return (rec_t *)n;
    return NULL;
}

static rec_t *add_rec(backend_t *b, const uint8_t ih[20], uint64_t h) {
    rec_t *r = xcalloc(1, sizeof(*r));
    memcpy(r->ih, ih, 20);
    r->state = REC_UNKNOWN;
    hmap_insert(&b->recs, &r->node, h);
    return r;
}

/* Queues a load of r's stored value. The record's completions not yet handed to the writer are
 * exactly those the load will not see (see the invariant at the top). */
static void start_load(backend_t *b, rec_t *r) {
    r->state = REC_LOADING;
    r->unseen = r->pending;
    r->load_failed = 0;
    lock(b);
    /* Join the last queued group while it is still the tail: then no batch was queued after it,
     * so every key in a group has the same batches before it. */
    load_group_t *g = NULL;
    if (b->work_tail != NULL && b->work_tail->kind == ITEM_LOAD &&
        ((load_group_t *)b->work_tail)->n < STORE_LOAD_BATCH)
        g = (load_group_t *)b->work_tail;
    if (g == NULL) {
        g = xmalloc(sizeof(*g));
        g->hdr.kind = ITEM_LOAD;
        g->hdr.seq = b->next_seq;
        g->seen_seq = 0;
        g->n = 0;
        push(&b->work_head, &b->work_tail, &g->hdr);
        check_pthread(pthread_cond_signal(&b->cv), "pthread_cond_signal");
    }
    memcpy(g->e[g->n].ih, r->ih, 20);
    g->e[g->n].status = LOAD_FAILED;
    g->n++;
    unlock(b);
}

static void sq_touch(store_t *s, const uint8_t info_hash[20], int64_t now, int completed) {
    backend_t *b = (backend_t *)s;
    uint64_t h = hash_bytes(&b->key, info_hash, 20);
    rec_t *r = find(b, info_hash, h);
    if (r == NULL)
        r = add_rec(b, info_hash, h); /* never read here: the record holds deltas */
    b->clock = now;
    r->used = now;
    if (r->first_seen == 0 || now < r->first_seen)
        r->first_seen = now;
    if (now > r->last_seen)
        r->last_seen = now;
    if (!r->dirty) {
        r->dirty = 1;
        b->ndirty++;
    }
    if (completed) {
        r->pending++;
        if (r->state == REC_KNOWN)
            r->completions++;
        else if (r->state == REC_LOADING)
            r->unseen++;
    }
}

static int sq_get(store_t *s, const uint8_t info_hash[20], store_info_t *out) {
    backend_t *b = (backend_t *)s;
    uint64_t h = hash_bytes(&b->key, info_hash, 20);
    rec_t *r = find(b, info_hash, h);
    if (r == NULL) {
        /* Not dirty: a record nobody touched is never written. */
        r = add_rec(b, info_hash, h);
        r->used = b->clock;
        start_load(b, r);
        return -EINPROGRESS;
    }
    r->used = b->clock;
    switch (r->state) {
    case REC_KNOWN:
        out->completions = r->completions;
        out->first_seen = r->first_seen;
        out->last_seen = r->last_seen;
        return 0;
    case REC_LOADING:
        return -EINPROGRESS;
    default:
        if (r->load_failed) {
            r->load_failed = 0;
            return -EAGAIN;
        }
        start_load(b, r);
        return -EINPROGRESS;
    }
}

typedef struct flush_ctx {
    backend_t *b;
    batch_t *bt;
    int64_t now;
    uint64_t committed;
    int evict;
} flush_ctx_t;

static void collect(hmap_node_t *n, void *arg) {
    flush_ctx_t *fc = arg;
    rec_t *r = (rec_t *)n;
    if (r->dirty) {
        row_t *row = &fc->bt->rows[fc->bt->n++];
        memcpy(row->ih, r->ih, 20);
        row->first_seen = r->first_seen;
        row->last_seen = r->last_seen;
        row->add_completions = r->pending;
        r->pending = 0;
        r->dirty = 0;
        r->batch_seq = fc->bt->hdr.seq;
    } else if (fc->evict && r->state != REC_LOADING && r->batch_seq <= fc->committed &&
               fc->now - r->used > STORE_EVICT_IDLE_SECONDS) {
        /* Clean and settled: the file holds everything this record knows. Not loading: a load
         * reply must find its record. */
        hmap_remove(&fc->b->recs, n);
        xfree(r);
    }
}

/* Hands every dirty record to the writer in one batch and, when evict is set, drops records that
 * may be dropped. */
static void flush_records(backend_t *b, int64_t now, int evict) {
    batch_t *bt = NULL;
    if (b->ndirty > 0) {
        /* Sized for the dirty records; a batch lives only until the writer settles it. */
        bt = xmalloc(sizeof(*bt) + b->ndirty * sizeof(row_t));
        bt->hdr.kind = ITEM_BATCH;
        bt->hdr.seq = ++b->next_seq;
        bt->n = 0;
    }
    if (bt == NULL && !evict)
        return;
    flush_ctx_t fc = {b, bt, now, atomic_load(&b->committed_seq), evict};
    hmap_each(&b->recs, collect, &fc);
    b->ndirty = 0;
    if (bt == NULL)
        return;
    lock(b);
    push(&b->work_head, &b->work_tail, &bt->hdr);
    check_pthread(pthread_cond_signal(&b->cv), "pthread_cond_signal");
    unlock(b);
}

static void sq_flush(store_t *s, int64_t now) {
    backend_t *b = (backend_t *)s;
    b->clock = now;
    flush_records(b, now, 1);
}

static int sq_fd(store_t *s) {
    return ((backend_t *)s)->efd;
}

/* Applies one finished load to its record. */
static void apply(backend_t *b, const load_entry_t *e) {
    rec_t *r = find(b, e->ih, hash_bytes(&b->key, e->ih, 20));
    if (r == NULL || r->state != REC_LOADING) {
        /* Cannot happen: a record is loaded once at a time and never evicted while loading. */
        log_msg(LOG_ERROR, "store: a finished load has no loading record");
        return;
    }
    if (e->status == LOAD_FAILED) {
        /* Back to deltas only; its handed completions are in batches, its pending ones stay. */
        r->state = REC_UNKNOWN;
        r->unseen = 0;
        r->load_failed = 1;
        return;
    }
    r->completions = r->unseen;
    if (e->status == LOAD_FOUND) {
        r->completions += e->info.completions;
        if (e->info.first_seen != 0 && (r->first_seen == 0 || e->info.first_seen < r->first_seen))
            r->first_seen = e->info.first_seen;
        if (e->info.last_seen > r->last_seen)
            r->last_seen = e->info.last_seen;
    }
    r->unseen = 0;
    r->state = REC_KNOWN;
    b->loads++;
}

static void sq_poll(store_t *s) {
    backend_t *b = (backend_t *)s;
    /* Drain the eventfd first: a load finishing after this read writes it again, so none is
     * missed (at worst the next poll finds an empty list). */
    uint64_t count;
    ssize_t n;
    do
        n = read(b->efd, &count, sizeof(count));
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno != EAGAIN) {
        char buf[128];
        log_msg(LOG_ERROR, "store: reading the eventfd failed: %s",
                strerror_r(errno, buf, sizeof(buf)));
    }
    lock(b);
    item_t *done = b->done_head;
    b->done_head = b->done_tail = NULL;
    unlock(b);
    int applied = 0;
    while (done != NULL) {
        load_group_t *g = (load_group_t *)done;
        done = done->next;
        if (g->seen_seq != g->hdr.seq)
            log_msg(LOG_ERROR, "store: a load saw batch %llu, expected %llu",
                    (unsigned long long)g->seen_seq, (unsigned long long)g->hdr.seq);
        for (size_t i = 0; i < g->n; i++)
            apply(b, &g->e[i]);
        xfree(g);
        applied = 1;
    }
    /* Last: on_ready may call get, which may queue new loads. */
    if (applied && s->on_ready != NULL)
        s->on_ready(s->on_ready_arg);
}

static store_stats_t sq_stats(store_t *s) {
    backend_t *b = (backend_t *)s;
    store_stats_t st = {atomic_load(&b->batches_committed),
                        atomic_load(&b->rows_written),
                        atomic_load(&b->write_errors),
                        b->recs.count,
                        b->loads,
                        &b->batch_rows,
                        &b->commit_us};
    return st;
}

static void free_rec(hmap_node_t *n, void *arg) {
    (void)arg;
    xfree(n);
}

static void free_items(item_t *it) {
    while (it != NULL) {
        item_t *next = it->next;
        xfree(it);
        it = next;
    }
}

static void sq_close(store_t *s) {
    backend_t *b = (backend_t *)s;
    flush_records(b, b->clock, 0);
    lock(b);
    b->stopping = 1;
    check_pthread(pthread_cond_signal(&b->cv), "pthread_cond_signal");
    unlock(b);
    check_pthread(pthread_join(b->thread, NULL), "pthread_join");
    /* The thread wrote every batch and dropped the queued loads; finished loads nobody polled
     * are abandoned here. */
    free_items(b->work_head);
    free_items(b->done_head);
    hmap_each(&b->recs, free_rec, NULL);
    hmap_dispose(&b->recs);
    close_db(b);
    if (close(b->efd) != 0) {
        char buf[128];
        log_msg(LOG_ERROR, "store: closing the eventfd failed: %s",
                strerror_r(errno, buf, sizeof(buf)));
    }
    check_pthread(pthread_cond_destroy(&b->cv), "pthread_cond_destroy");
    check_pthread(pthread_mutex_destroy(&b->mu), "pthread_mutex_destroy");
    xfree(b);
}

static const store_ops_t sqlite_ops = {
    .touch = sq_touch,
    .get = sq_get,
    .flush = sq_flush,
    .fd = sq_fd,
    .poll = sq_poll,
    .stats = sq_stats,
    .close = sq_close,
};

store_t *store_open_sqlite(const char *path, const hash_key_t *key, char *err, size_t errlen) {
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "cannot open database %s: it is a directory", path);
        return NULL;
    }
    char buf[128];
    backend_t *b = xcalloc(1, sizeof(*b));
    b->base.ops = &sqlite_ops;
    b->key = *key;
    histo_init(&b->batch_rows, histo_size_bounds, histo_size_nbounds);
    histo_init(&b->commit_us, histo_us_bounds, histo_us_nbounds);
    if (open_db(b, path, err, errlen) != 0)
        goto fail_free;
    b->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (b->efd < 0) {
        snprintf(err, errlen, "cannot open database %s: eventfd: %s", path,
                 strerror_r(errno, buf, sizeof(buf)));
        goto fail_db;
    }
    int rc = pthread_mutex_init(&b->mu, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "cannot open database %s: pthread_mutex_init: %s", path,
                 strerror_r(rc, buf, sizeof(buf)));
        goto fail_efd;
    }
    rc = pthread_cond_init(&b->cv, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "cannot open database %s: pthread_cond_init: %s", path,
                 strerror_r(rc, buf, sizeof(buf)));
        goto fail_mu;
    }
    hmap_init(&b->recs, 10);
    /* From here on the connection belongs to the database thread until close joins it. */
    rc = pthread_create(&b->thread, NULL, db_main, b);
    if (rc != 0) {
        snprintf(err, errlen, "cannot open database %s: cannot start the database thread: %s", path,
                 strerror_r(rc, buf, sizeof(buf)));
        goto fail_recs;
    }
    return &b->base;
fail_recs:
    hmap_dispose(&b->recs);
    check_pthread(pthread_cond_destroy(&b->cv), "pthread_cond_destroy");
fail_mu:
    check_pthread(pthread_mutex_destroy(&b->mu), "pthread_mutex_destroy");
fail_efd:
    if (close(b->efd) != 0)
        log_msg(LOG_ERROR, "store: closing the eventfd failed: %s",
                strerror_r(errno, buf, sizeof(buf)));
fail_db:
    close_db(b);
fail_free:
    xfree(b);
    return NULL;
}
