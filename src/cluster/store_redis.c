/* store_redis.c: the infohash store of cluster mode, in Redis hashes st:ih:<hex> with fields
 * c (completions), f (first seen) and l (last seen), so every node reads the same figures and
 * they outlive any node (and Redis restarts, with Redis persistence on: docs/cluster.md).
 *
 * Completions are added with HINCRBY at the end of the loop iteration that saw them (pipelined),
 * so a scrape on any node right after sees them. Seen-times are written at --db-flush, to a
 * minute's resolution (STORE_REDIS_SEEN_STEP_SECONDS). Reads are fetched for each scrape (HMGET,
 * one round trip for all the infohashes of a scrape) and kept for STORE_REDIS_FRESH_MS only,
 * because other nodes change them. Completions seen while Redis is unreachable wait in memory and
 * are added once it is back. */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <string.h>

#include "cluster/redis_int.h"
#include "cluster/reply.h"
#include "core/alloc.h"
#include "core/hmap.h"
#include "core/log.h"

/* Seen-times are kept to this resolution in Redis, in seconds: a record seen again is written
 * once this much later than what Redis has, not at every --db-flush (every node writes the
 * infohashes it sees, so the same ones come from every node). */
#define STORE_REDIS_SEEN_STEP_SECONDS 60
/* How long a fetched record answers reads, in milliseconds. */
#define STORE_REDIS_FRESH_MS 250
/* A record untouched and unread this long is dropped from memory, in milliseconds. */
#define STORE_REDIS_IDLE_MS 60000
/* Records with completions waiting for Redis, at most; further completions are counted as
 * lost (write_errors) rather than let memory grow while Redis is away. */
#define STORE_REDIS_MAX_DIRTY 1000000

typedef struct srec {
    hmap_node_t node;
    uint8_t ih[20];
    uint8_t loading;     /* an HMGET is out */
    uint8_t seen_dirty;  /* last_seen changed since the last write */
    uint8_t in_dirty;    /* on the completions list */
    uint64_t fetched_ms; /* when base was fetched; 0 = never */
    uint64_t used_ms;    /* last touch or read */
    uint64_t base;       /* completions in Redis when fetched */
    uint64_t unsent;     /* completions not yet sent to Redis */
    int64_t first_seen, last_seen, db_first, db_last;
    int64_t written_last; /* the last_seen last written to Redis; 0 = nothing written yet */
} srec_t;

typedef struct store_redis {
    struct store base;
    cluster_t *cl;
    hash_key_t key;
    hmap_t recs;
    srec_t **dirty; /* records with unsent completions */
    uint32_t ndirty, dirty_cap;
    int state;
    int ready_pending; /* loads finished since on_ready was last called */
    store_stats_t stats;
} store_redis_t;

/* A pending HMGET: the record may be evicted meanwhile, so the reply finds it again by key. */
typedef struct load {
    store_redis_t *st;
    uint8_t ih[20];
} load_t;

static srec_t *find(store_redis_t *st, const uint8_t ih[20], int create) {
    uint64_t h = hash_bytes(&st->key, ih, 20);
    for (hmap_node_t *n = hmap_chain(&st->recs, h); n; n = n->next)
        if (n->hash == h && memcmp(((srec_t *)n)->ih, ih, 20) == 0)
            return (srec_t *)n;
    if (!create)
        return NULL;
    srec_t *r = xcalloc(1, sizeof(*r));
    memcpy(r->ih, ih, 20);
    hmap_insert(&st->recs, &r->node, h);
    return r;
}

static void key_of(const uint8_t ih[20], char out[47]) {
    static const char digits[] = "0123456789abcdef";
    memcpy(out, "st:ih:", 6);
    for (int i = 0; i < 20; i++) {
        out[6 + 2 * i] = digits[ih[i] >> 4];
        out[7 + 2 * i] = digits[ih[i] & 15];
    }
    out[46] = '\0';
}

static void sr_touch(store_t *s, const uint8_t info_hash[20], int64_t now, int completed) {
    store_redis_t *st = (store_redis_t *)s;
    srec_t *r = find(st, info_hash, 1);
    r->used_ms = cluster__now_ms();
    if (r->first_seen == 0 || now < r->first_seen)
        r->first_seen = now;
    r->last_seen = now;
    r->seen_dirty = 1;
    if (!completed)
        return;
    if (!r->in_dirty) {
        if (st->ndirty >= STORE_REDIS_MAX_DIRTY) {
            st->stats.write_errors++;
            return;
        }
        if (st->ndirty == st->dirty_cap) {
            st->dirty_cap = st->dirty_cap ? st->dirty_cap * 2 : 64;
            st->dirty = xrealloc(st->dirty, st->dirty_cap * sizeof(*st->dirty));
        }
        st->dirty[st->ndirty++] = r;
        r->in_dirty = 1;
    }
    r->unsent++;
}

static void on_load(redisAsyncContext *ac, void *reply, void *privdata) {
    (void)ac;
    load_t *ld = privdata;
    store_redis_t *st = ld->st;
    redisReply *r = reply;
    srec_t *rec = st != NULL ? find(st, ld->ih, 0) : NULL;
    if (rec != NULL) {
        rec->loading = 0;
        if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 3) {
            rec->base = (uint64_t)reply_count(r->element[0]);
            rec->db_first = reply_count(r->element[1]);
            rec->db_last = reply_count(r->element[2]);
            rec->fetched_ms = cluster__now_ms();
            st->stats.loads++;
        } else if (r != NULL) {
            log_msg(LOG_ERROR, "cluster store: unexpected reply to HMGET (%s)",
                    r->type == REDIS_REPLY_ERROR ? r->str : "wrong shape");
        }
    }
    xfree(ld);
    if (st != NULL && st->base.on_ready != NULL)
        st->base.on_ready(st->base.on_ready_arg);
}

static int sr_get(store_t *s, const uint8_t info_hash[20], store_info_t *out) {
    store_redis_t *st = (store_redis_t *)s;
    uint64_t now = cluster__now_ms();
    srec_t *r = find(st, info_hash, 0);
    if (r != NULL && r->fetched_ms != 0 && now - r->fetched_ms <= STORE_REDIS_FRESH_MS) {
        r->used_ms = now;
        out->completions = r->base + r->unsent;
        out->first_seen = r->db_first && (r->db_first < r->first_seen || !r->first_seen)
                              ? r->db_first
                              : r->first_seen;
        out->last_seen = r->db_last > r->last_seen ? r->db_last : r->last_seen;
        return 0;
    }
    if (st->state != CLUSTER_UP)
        return -EAGAIN;
    if (r == NULL)
        r = find(st, info_hash, 1);
    r->used_ms = now;
    if (r->loading)
        return -EINPROGRESS;
    char key[47];
    key_of(info_hash, key);
    const char *argv[] = {"HMGET", key, "c", "f", "l"};
    load_t *ld = xmalloc(sizeof(*ld));
    ld->st = st;
    memcpy(ld->ih, info_hash, 20);
    if (cluster__command(st->cl, on_load, ld, 5, argv, NULL) != 0) {
        xfree(ld);
        return -EAGAIN;
    }
    r->loading = 1;
    return -EINPROGRESS;
}

void store_redis__flush_now(store_t *s) {
    store_redis_t *st = (store_redis_t *)s;
    if (st->state == CLUSTER_DOWN || st->ndirty == 0)
        return;
    st->stats.batches_committed++;
    for (uint32_t i = 0; i < st->ndirty; i++) {
        srec_t *r = st->dirty[i];
        char key[47], n[24];
        key_of(r->ih, key);
        snprintf(n, sizeof(n), "%llu", (unsigned long long)r->unsent);
        const char *argv[] = {"HINCRBY", key, "c", n};
        if (cluster__command(st->cl, NULL, NULL, 4, argv, NULL) != 0)
            return; /* the rest waits for the reconnect */
        /* Once sent, it counts in what a fetch returns; a fresh fetch already counted it. */
        if (r->fetched_ms != 0)
            r->base += r->unsent;
        r->unsent = 0;
        r->in_dirty = 0;
        st->stats.rows_written++;
        /* Remove by swapping with the last, then look at this index again. */
        st->dirty[i] = st->dirty[--st->ndirty];
        i--;
    }
}

typedef struct flush_ctx {
    store_redis_t *st;
    uint64_t now;
} flush_ctx_t;

static void flush_one(hmap_node_t *n, void *arg) {
    flush_ctx_t *fc = arg;
    srec_t *r = (srec_t *)n;
    int idle = fc->now - r->used_ms > STORE_REDIS_IDLE_MS;
    int due = r->written_last == 0 || idle ||
              r->last_seen - r->written_last >= STORE_REDIS_SEEN_STEP_SECONDS;
    if (r->seen_dirty && due && fc->st->state == CLUSTER_UP) {
        char key[47], first[24], last[24];
        key_of(r->ih, key);
        snprintf(first, sizeof(first), "%lld", (long long)r->first_seen);
        snprintf(last, sizeof(last), "%lld", (long long)r->last_seen);
        const char *a1[] = {"HSETNX", key, "f", first};
        const char *a2[] = {"HSET", key, "l", last};
        /* first_seen is set once per record this node holds; HSETNX keeps the earliest. */
        if ((r->written_last != 0 || cluster__command(fc->st->cl, NULL, NULL, 4, a1, NULL) == 0) &&
            cluster__command(fc->st->cl, NULL, NULL, 4, a2, NULL) == 0) {
            r->seen_dirty = 0;
            r->written_last = r->last_seen;
        }
    }
    if (!r->loading && !r->in_dirty && !r->seen_dirty && idle) {
        hmap_remove(&fc->st->recs, n);
        xfree(r);
    }
}

static void sr_flush(store_t *s, int64_t now) {
    (void)now;
    store_redis_t *st = (store_redis_t *)s;
    flush_ctx_t fc = {st, cluster__now_ms()};
    hmap_each(&st->recs, flush_one, &fc);
}

static int sr_fd(store_t *s) {
    (void)s;
    return -1; /* replies arrive on the cluster's connection */
}

static void sr_poll(store_t *s) {
    (void)s;
}

static store_stats_t sr_stats(store_t *s) {
    store_redis_t *st = (store_redis_t *)s;
    store_stats_t out = st->stats;
    out.cached_records = st->recs.count;
    return out;
}

static void sr_close(store_t *s) {
    /* The cluster owns the store: it is freed with it (store_redis__destroy), after the last
     * completions were handed to Redis. */
    store_redis__flush_now(s);
}

void store_redis__on_state(store_t *s, int state) {
    store_redis_t *st = (store_redis_t *)s;
    st->state = state;
    if (state != CLUSTER_UP && st->base.on_ready != NULL) {
        /* Reads waiting for a reply that may not come soon answer "unavailable" now. */
        st->base.on_ready(st->base.on_ready_arg);
    }
}

static void free_rec(hmap_node_t *n, void *arg) {
    (void)arg;
    xfree(n);
}

void store_redis__destroy(store_t *s) {
    store_redis_t *st = (store_redis_t *)s;
    hmap_each(&st->recs, free_rec, NULL);
    hmap_dispose(&st->recs);
    xfree(st->dirty);
    xfree(st);
}

static const store_ops_t redis_ops = {sr_touch, sr_get,   sr_flush, sr_fd,
                                      sr_poll,  sr_stats, sr_close};

store_t *store_redis__create(cluster_t *cl, const hash_key_t *key) {
    store_redis_t *st = xcalloc(1, sizeof(*st));
    st->base.ops = &redis_ops;
    st->cl = cl;
    st->key = *key;
    st->state = cluster_state(cl);
    hmap_init(&st->recs, 8);
    return &st->base;
}
