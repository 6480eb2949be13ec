/* cluster_redis.c: the cluster client on Redis (see cluster.h): two hiredis connections on our
 * epoll loop, node heartbeats, ID claims through Lua scripts, and per-destination batches of
 * node-channel records.
 *
 * hiredis is attached to the loop the way its adapters/ae.h attaches it to Redis's own loop:
 * ac->ev.addRead/delRead/addWrite/delWrite register interest, and the loop calls
 * redisAsyncHandleRead/Write when the descriptor is ready. Nothing here blocks. */
#include "cluster/redis_int.h"
#include "cluster/reply.h"

#include <arpa/inet.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <hiredis/sds.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/log.h"
#include "core/rng.h"

/* A claim not answered within this long is answered CLUSTER_UNAVAILABLE, in milliseconds. */
#define CLUSTER_CLAIM_TIMEOUT_MS 2000
/* A heartbeat reply later than this makes the state STALLED, in milliseconds. */
#define CLUSTER_STALL_MS 1500
/* Reconnect delays: the first retry, and the most a retry waits, in milliseconds. */
#define CLUSTER_RETRY_MIN_MS 250
#define CLUSTER_RETRY_MAX_MS 2000
/* Bytes waiting to be written to Redis above which the connection is dropped (and rebuilt once
 * Redis answers again), so a paused Redis cannot make a node buffer without bound. */
#define CLUSTER_MAX_BACKLOG_BYTES (64u << 20)
/* Reads (of up to 16 KiB each, hiredis's size) per readiness event of a Redis connection. */
#define CLUSTER_READS_PER_EVENT 64
/* Malformed channel messages logged at most once per this many milliseconds. */
#define CLUSTER_LOG_EVERY_MS 10000
/* Bytes waiting to be written to Redis above which relays to other nodes are dropped (as for a
 * slow reader) rather than queued: under overload, relays give way before membership records,
 * and long before the connection itself (CLUSTER_MAX_BACKLOG_BYTES). */
#define CLUSTER_RELAY_BACKLOG_BYTES (8u << 20)
/* Releases remembered while Redis is unreachable, at most; beyond it the ID stays held in Redis
 * until this node dies (it is logged). */
#define CLUSTER_MAX_PENDING_RELEASES 1000000
/* Each node's IDs are spread over this many small Redis hashes (st:ids:<node>:<bucket>). Redis
 * stores a hash of up to 128 fields (hash-max-listpack-entries) as one packed listpack, at about
 * 59 bytes an ID here against 107 for one big hash and 293 for a key per ID plus a per-node set
 * (measured with 15,000 20-byte IDs, docs/benchmarks.md 8.4). With 1,024 buckets a node's IDs
 * stay packed up to about 130,000 IDs; beyond that Redis converts the fullest buckets to real
 * hash tables, which still works, at the larger cost. Every node must use the same number. */
#define CLUSTER_ID_BUCKETS 1024
#define STR_(x) #x
#define STR(x) STR_(x)
/* Bucket keys deleted per UNLINK when a node's IDs are dropped (Lua's unpack has a stack limit). */
#define CLUSTER_UNLINK_BATCH "256"

/* Whether a node whose last heartbeat is hb counts as alive at time now (Lua, shared by the
 * scripts). Every node beats once a second, so a gap of over 2 s between any two beats means
 * Redis itself stopped (paused, or restarted): then nobody could beat, and a node that was
 * alive when Redis stopped (st:paused) stays alive for a node timeout after it resumed
 * (st:resumed), instead of being declared dead for Redis's own silence. */
#define ALIVE_LUA                                                                                  \
    "local function alive(hb, now, timeout)\n"                                                     \
    "  if not hb then return false end\n"                                                          \
    "  hb = tonumber(hb)\n"                                                                        \
    "  if now - hb <= timeout then return true end\n"                                              \
    "  local resumed = tonumber(redis.call('GET', 'st:resumed') or '0')\n"                         \
    "  local paused = tonumber(redis.call('GET', 'st:paused') or '0')\n"                           \
    "  return now - resumed <= timeout and paused - hb <= timeout\n"                               \
    "end\n"

/* Deletes every ID bucket of node d (Lua, shared by the scripts). */
#define DROP_IDS_LUA                                                                               \
    "local function drop_ids(d)\n"                                                                 \
    "  local keys = {}\n"                                                                          \
    "  for b = 0, " STR(                                                                           \
        CLUSTER_ID_BUCKETS) " - 1 do\n"                                                            \
                            "    keys[#keys + 1] = 'st:ids:' .. d .. ':' .. b\n"                   \
                            "    if #keys == " CLUSTER_UNLINK_BATCH " then\n"                      \
                            "      redis.call('UNLINK', unpack(keys)); keys = {}\n"                \
                            "    end\n"                                                            \
                            "  end\n"                                                              \
                            "  if #keys > 0 then redis.call('UNLINK', unpack(keys)) end\n"         \
                            "end\n"

/* The heartbeat: records this node's time and totals, drops the nodes that are not alive (and
 * their IDs: a node's IDs live in its own buckets, so this is a fixed number of UNLINKs whatever
 * the cluster's size), and returns the live nodes, the cluster-wide totals and whether this node
 * was missing (declared dead meanwhile). Time is Redis's own (TIME), so nodes' clocks need not
 * agree. */
static const char hb_lua[] = ALIVE_LUA DROP_IDS_LUA
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local timeout = tonumber(ARGV[2])\n"
    "local last = tonumber(redis.call('GET', 'st:beat') or '0')\n"
    "redis.call('SET', 'st:beat', now)\n"
    "if last > 0 and now - last > 2000 then\n"
    "  redis.call('SET', 'st:paused', last)\n"
    "  redis.call('SET', 'st:resumed', now)\n"
    "end\n"
    "local known = redis.call('ZSCORE', KEYS[1], ARGV[1])\n"
    "local nodes = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')\n"
    "for i = 1, #nodes, 2 do\n"
    "  local d = nodes[i]\n"
    "  if d ~= ARGV[1] and not alive(nodes[i + 1], now, timeout) then\n"
    "    redis.call('ZREM', KEYS[1], d)\n"
    "    redis.call('HDEL', KEYS[2], d)\n"
    "    drop_ids(d)\n"
    "  end\n"
    "end\n"
    "redis.call('ZADD', KEYS[1], now, ARGV[1])\n"
    "redis.call('HSET', KEYS[2], ARGV[1], ARGV[3] .. ' ' .. ARGV[4])\n"
    "local live = redis.call('ZRANGE', KEYS[1], 0, -1)\n"
    "local conns, ids = 0, 0\n"
    "for _, v in ipairs(redis.call('HMGET', KEYS[2], unpack(live))) do\n"
    "  if v then\n"
    "    local a, b = string.match(v, '^(%d+) (%d+)$')\n"
    "    if a then conns = conns + tonumber(a); ids = ids + tonumber(b) end\n"
    "  end\n"
    "end\n"
    "return {live, conns, ids, known and 0 or 1}\n";

/* An ID claim. An ID's record is a field of its holder node's bucket (st:ids:<node>:<bucket>):
 * field = the ID's bytes, value = slot and generation (8 bytes, big-endian) then the 16-byte
 * hash of the reclaim token, if any. A claim looks for the ID in the same bucket of every node
 * in st:nodes (a few nodes: a few listpack lookups). KEYS: st:nodes. ARGV: node, bucket, ID,
 * slot and gen (8 bytes), the hash of the token shown (or ''), the hash of the new token (or ''),
 * the node timeout in ms, '1' for a reassert. Returns {0} claimed, {1, "node slot gen"}
 * reclaimed from a live holder whose token matched, {2, holder node} taken. A holder on a node
 * without a recent heartbeat loses the ID. */
static const char claim_lua[] = ALIVE_LUA
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local timeout = tonumber(ARGV[7])\n"
    "local nodes = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')\n"
    "local old = nil\n"
    "for i = 1, #nodes, 2 do\n"
    "  local d = nodes[i]\n"
    "  local k = 'st:ids:' .. d .. ':' .. ARGV[2]\n"
    "  local cur = redis.call('HGET', k, ARGV[3])\n"
    "  if cur and not (d == ARGV[1] and string.sub(cur, 1, 8) == ARGV[4]) then\n"
    "    if #cur >= 8 and alive(nodes[i + 1], now, timeout) then\n"
    "      if ARGV[8] == '1' or ARGV[5] == '' or string.sub(cur, 9) ~= ARGV[5] then\n"
    "        return {2, d}\n"
    "      end\n"
    "      local slot, gen = struct.unpack('>I4I4', string.sub(cur, 1, 8))\n"
    "      old = d .. ' ' .. string.format('%d %d', slot, gen)\n"
    "    end\n"
    "    redis.call('HDEL', k, ARGV[3])\n"
    "  end\n"
    "end\n"
    "redis.call('HSET', 'st:ids:' .. ARGV[1] .. ':' .. ARGV[2], ARGV[3], ARGV[4] .. ARGV[6])\n"
    "if old then return {1, old} end\n"
    "return {0}\n";

/* A release: deletes the ID's field only while (slot, gen) still holds it. KEYS: this node's
 * bucket of the ID. ARGV: the ID, slot and gen (8 bytes). */
static const char release_lua[] = "local cur = redis.call('HGET', KEYS[1], ARGV[1])\n"
                                  "if cur and string.sub(cur, 1, 8) == ARGV[2] then\n"
                                  "  redis.call('HDEL', KEYS[1], ARGV[1])\n"
                                  "  return 1\n"
                                  "end\n"
                                  "return 0\n";

/* A node's orderly exit: it leaves st:nodes and drops its IDs at once. ARGV: the node. */
static const char leave_lua[] = DROP_IDS_LUA "redis.call('ZREM', 'st:nodes', ARGV[1])\n"
                                             "redis.call('HDEL', 'st:nodeinfo', ARGV[1])\n"
                                             "drop_ids(ARGV[1])\n"
                                             "return 0\n";

enum script { SCRIPT_HB, SCRIPT_CLAIM, SCRIPT_RELEASE, SCRIPT_LEAVE, SCRIPT_COUNT };
static const char *const scripts[SCRIPT_COUNT] = {hb_lua, claim_lua, release_lua, leave_lua};

/* One hiredis connection and its registration in our epoll set. */
typedef struct rconn {
    cluster_t *cl;
    redisAsyncContext *ac; /* NULL when not connected */
    int fd;
    int reading, writing, registered;
    int connected;
} rconn_t;

/* A claim waiting for Redis. */
typedef struct pending_claim {
    struct pending_claim *prev, *next;
    cluster_t *cl;
    cluster_claim_req_t req;
    uint64_t sent_ms;
    int timed_out; /* answered CLUSTER_UNAVAILABLE already; hiredis still holds it */
    int unsent;    /* never handed to hiredis: the tick answers and frees it */
} pending_claim_t;

/* Records waiting to be published to one destination. */
typedef struct dest {
    uint64_t node; /* 0 = st:all */
    buf_t buf;
} dest_t;

struct cluster {
    cluster_addr_t addr;
    int epfd;
    uint32_t node_timeout_ms;
    cluster_callbacks_t cb;
    uint64_t node_id;
    char node_hex[17];
    rconn_t cmd, sub;
    int state;
    int scripts_loaded; /* SCRIPT LOAD replies received on this connection */
    int subscribed;     /* subscribe confirmations received */
    int up_once;        /* the first heartbeat after (re)connecting came back */
    int destroying;
    char sha[SCRIPT_COUNT][41];
    uint64_t now_ms;
    uint64_t retry_at_ms;
    uint32_t backoff_ms;
    uint64_t hb_sent_ms; /* 0 when no heartbeat is outstanding */
    uint64_t hb_sent_us; /* the same, in microseconds, for the round-trip figure */
    uint64_t last_reject_log_ms;
    pending_claim_t *claims; /* oldest first */
    pending_claim_t *claims_tail;
    dest_t *dests;
    uint32_t ndests, dests_cap;
    /* IDs released while Redis was unreachable: released once it is back, so an ID a peer of
     * this node gave up meanwhile does not stay held by this (live) node in Redis. */
    cluster_claim_req_t *releases;
    uint32_t nreleases, releases_cap;
    store_t *store;
    cluster_stats_t stats;
};

static uint64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t cluster__now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- address ------------------------------------------------------------------------------- */

int cluster_addr_parse(const char *url, cluster_addr_t *out, char *err, size_t errlen) {
    memset(out, 0, sizeof(*out));
    if (strncmp(url, "unix:", 5) == 0) {
        const char *path = url + 5;
        if (strncmp(path, "//", 2) == 0)
            path += 2; /* unix:///path is accepted too */
        if (path[0] != '/' || strlen(path) >= sizeof(out->path)) {
            snprintf(err, errlen, "--cluster %s: want unix:/absolute/path/to/redis.sock", url);
            return -EINVAL;
        }
        strcpy(out->path, path);
        return 0;
    }
    if (strncmp(url, "redis://", 8) != 0) {
        snprintf(err, errlen, "--cluster %s: want redis://HOST:PORT or unix:/path", url);
        return -EINVAL;
    }
    const char *h = url + 8, *end;
    size_t hlen;
    if (*h == '[') {
        end = strchr(h, ']');
        if (end == NULL) {
            snprintf(err, errlen, "--cluster %s: unclosed [ in the host", url);
            return -EINVAL;
        }
        hlen = (size_t)(end - h - 1);
        h++;
        end++;
    } else {
        end = h + strcspn(h, ":/");
        hlen = (size_t)(end - h);
    }
    if (hlen == 0 || hlen >= sizeof(out->host)) {
        snprintf(err, errlen, "--cluster %s: the host is missing or too long", url);
        return -EINVAL;
    }
    memcpy(out->host, h, hlen);
    out->port = 6379;
    if (*end == ':') {
        char *stop = NULL;
        errno = 0;
        unsigned long p = strtoul(end + 1, &stop, 10);
        if (errno || stop == end + 1 || p == 0 || p > 65535 || (*stop != '\0' && *stop != '/')) {
            snprintf(err, errlen, "--cluster %s: the port must be 1 to 65535", url);
            return -EINVAL;
        }
        out->port = (uint16_t)p;
        end = stop;
    }
    if (*end == '/' && end[1] != '\0' && strcmp(end, "/0") != 0) {
        snprintf(err, errlen, "--cluster %s: only database 0 is supported", url);
        return -EINVAL;
    }
    if (*end != '\0' && *end != '/') {
        snprintf(err, errlen, "--cluster %s: unexpected text after the host", url);
        return -EINVAL;
    }
    return 0;
}

/* ---- epoll adapter ------------------------------------------------------------------------- */

static void ev_update(rconn_t *rc) {
    if (rc->fd < 0)
        return;
    uint32_t events = (rc->reading ? EPOLLIN : 0) | (rc->writing ? EPOLLOUT : 0);
    struct epoll_event ev = {.events = events, .data.ptr = rc};
    int op = rc->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(rc->cl->epfd, op, rc->fd, &ev) != 0) {
        log_msg(LOG_ERROR, "cluster: epoll_ctl for the Redis connection: %s", strerror(errno));
        return;
    }
    rc->registered = 1;
}

/* Turns reading or writing interest on or off (hiredis asks through these four). */
static void ev_set(rconn_t *rc, int *flag, int on) {
    if (*flag != on) {
        *flag = on;
        ev_update(rc);
    }
}

static void ev_add_read(void *p) {
    ev_set(p, &((rconn_t *)p)->reading, 1);
}

static void ev_del_read(void *p) {
    ev_set(p, &((rconn_t *)p)->reading, 0);
}

static void ev_add_write(void *p) {
    ev_set(p, &((rconn_t *)p)->writing, 1);
}

static void ev_del_write(void *p) {
    ev_set(p, &((rconn_t *)p)->writing, 0);
}

/* hiredis frees the context: forget the descriptor before it is closed. */
static void ev_cleanup(void *p) {
    rconn_t *rc = p;
    if (rc->registered && rc->fd >= 0 &&
        epoll_ctl(rc->cl->epfd, EPOLL_CTL_DEL, rc->fd, NULL) != 0 && errno != EBADF &&
        errno != ENOENT)
        log_msg(LOG_WARN, "cluster: epoll_ctl(DEL): %s", strerror(errno));
    rc->registered = rc->reading = rc->writing = 0;
    rc->fd = -1;
    rc->ac = NULL;
    rc->connected = 0;
}

int cluster_owns(const cluster_t *cl, const void *ptr) {
    return ptr == &cl->cmd || ptr == &cl->sub;
}

/* Reads what the connection has, up to CLUSTER_READS_PER_EVENT reads of hiredis's 16 KiB. */
static void read_available(rconn_t *rc) {
    for (int i = 0; i < CLUSTER_READS_PER_EVENT && rc->ac != NULL; i++) {
        redisAsyncHandleRead(rc->ac);
        int avail = 0;
        if (rc->ac == NULL || rc->fd < 0 || ioctl(rc->fd, FIONREAD, &avail) != 0 || avail <= 0)
            break;
    }
}

void cluster_on_event(cluster_t *cl, const void *ptr, uint32_t events) {
    rconn_t *rc = ptr == &cl->cmd ? &cl->cmd : &cl->sub;
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
        read_available(rc);
    if (rc->ac != NULL && (events & (EPOLLOUT | EPOLLERR)))
        redisAsyncHandleWrite(rc->ac);
}

void cluster_drain(cluster_t *cl) {
    /* A node busy with its clients gets one readiness event per iteration for the channel
     * connection, and a socket holds a few hundred KiB: reading only then would let the other
     * nodes' records pile up in Redis until Redis drops the subscriber
     * (client-output-buffer-limit pubsub). The loop calls this between batches of events. */
    if (cl->sub.ac != NULL && cl->sub.connected)
        read_available(&cl->sub);
}

/* ---- connection lifecycle ------------------------------------------------------------------ */

static void set_state(cluster_t *cl, int state) {
    if (cl->state == state)
        return;
    int was = cl->state;
    cl->state = state;
    if (cl->store != NULL)
        store_redis__on_state(cl->store, state);
    if (state == CLUSTER_DOWN) {
        log_msg(LOG_WARN, "cluster: Redis unreachable; serving this node's peers only, "
                          "refusing new peer IDs until it is back");
        cl->cb.on_state(cl->cb.arg, CLUSTER_DOWN);
    } else if (state == CLUSTER_STALLED) {
        log_msg(LOG_WARN, "cluster: Redis is not answering (over %d ms); new peer IDs wait",
                CLUSTER_STALL_MS);
    } else if (was == CLUSTER_STALLED) {
        log_msg(LOG_INFO, "cluster: Redis answers again");
    }
}

static void drop_connections(cluster_t *cl) {
    /* redisAsyncDisconnect calls our disconnect callback (now or once pending replies are
     * flushed); the callback tears the other connection down too. */
    if (cl->cmd.ac != NULL)
        redisAsyncDisconnect(cl->cmd.ac);
    if (cl->sub.ac != NULL)
        redisAsyncDisconnect(cl->sub.ac);
}

static void on_disconnect(const redisAsyncContext *ac, int status) {
    rconn_t *rc = ac->data;
    cluster_t *cl = rc->cl;
    rc->ac = NULL;
    rc->connected = 0;
    if (cl->destroying)
        return;
    if (status != REDIS_OK)
        log_msg(LOG_WARN, "cluster: lost the Redis connection: %s", ac->errstr);
    cl->scripts_loaded = cl->subscribed = cl->up_once = 0;
    cl->hb_sent_ms = cl->hb_sent_us = 0;
    for (uint32_t i = 0; i < cl->ndests; i++)
        buf_dispose(&cl->dests[i].buf);
    cl->ndests = 0;
    drop_connections(cl);
    if (cl->retry_at_ms == 0) {
        cl->retry_at_ms = cl->now_ms + cl->backoff_ms;
        cl->backoff_ms =
            cl->backoff_ms * 2 > CLUSTER_RETRY_MAX_MS ? CLUSTER_RETRY_MAX_MS : cl->backoff_ms * 2;
    }
    set_state(cl, CLUSTER_DOWN);
}

static void send_heartbeat(cluster_t *cl, uint64_t connections, uint64_t identified);
static void unlink_claim(cluster_t *cl, pending_claim_t *p);

/* Both connections ready and the scripts loaded: this node is in the cluster. */
static void maybe_up(cluster_t *cl) {
    if (cl->state == CLUSTER_UP || cl->scripts_loaded < SCRIPT_COUNT || cl->subscribed < 2)
        return;
    cl->backoff_ms = CLUSTER_RETRY_MIN_MS;
    cl->retry_at_ms = 0;
    log_msg(LOG_INFO, "cluster: node %s joined through Redis at %s", cl->node_hex,
            cl->addr.path[0] ? cl->addr.path : cl->addr.host);
    /* The heartbeat goes first, so this node is alive before its claims are judged. */
    send_heartbeat(cl, 0, 0);
    cl->state = CLUSTER_UP;
    uint32_t n = cl->nreleases;
    cl->nreleases = 0;
    for (uint32_t i = 0; i < n; i++)
        cluster_release(cl, cl->releases[i].id, cl->releases[i].len, cl->releases[i].slot,
                        cl->releases[i].gen);
    if (cl->store != NULL)
        store_redis__on_state(cl->store, CLUSTER_UP);
    cl->cb.on_state(cl->cb.arg, CLUSTER_UP);
}

static void on_script_loaded(redisAsyncContext *ac, void *reply, void *privdata) {
    rconn_t *rc = ac->data;
    cluster_t *cl = rc->cl;
    redisReply *r = reply;
    intptr_t which = (intptr_t)privdata;
    if (r == NULL || cl->destroying)
        return;
    if (r->type != REDIS_REPLY_STRING || r->len != 40) {
        log_msg(LOG_ERROR, "cluster: Redis refused a script (%s); Lua scripting is required",
                r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        redisAsyncDisconnect(ac);
        return;
    }
    memcpy(cl->sha[which], r->str, 40);
    cl->sha[which][40] = '\0';
    cl->scripts_loaded++;
    maybe_up(cl);
}

static void on_channel(redisAsyncContext *ac, void *reply, void *privdata);

static void on_connect(const redisAsyncContext *cac, int status) {
    rconn_t *rc = cac->data;
    cluster_t *cl = rc->cl;
    if (status != REDIS_OK) {
        /* hiredis frees the context after this callback and calls no disconnect callback. */
        log_msg(LOG_DEBUG, "cluster: cannot connect to Redis: %s", cac->errstr);
        rc->ac = NULL;
        if (!cl->destroying) {
            drop_connections(cl);
            if (cl->retry_at_ms == 0) {
                cl->retry_at_ms = cl->now_ms + cl->backoff_ms;
                cl->backoff_ms = cl->backoff_ms * 2 > CLUSTER_RETRY_MAX_MS ? CLUSTER_RETRY_MAX_MS
                                                                           : cl->backoff_ms * 2;
            }
        }
        return;
    }
    rc->connected = 1;
    redisAsyncContext *ac = rc->ac;
    cl->stats.commands++;
    if (rc == &cl->sub) {
        char own[32];
        snprintf(own, sizeof(own), "st:n:%s", cl->node_hex);
        const char *argv[] = {"SUBSCRIBE", "st:all", own};
        redisAsyncCommandArgv(ac, on_channel, NULL, 3, argv, NULL);
    } else {
        for (intptr_t i = 0; i < SCRIPT_COUNT; i++) {
            const char *argv[] = {"SCRIPT", "LOAD", scripts[i]};
            redisAsyncCommandArgv(ac, on_script_loaded, (void *)i, 3, argv, NULL);
            cl->stats.commands++;
        }
    }
}

static int open_one(cluster_t *cl, rconn_t *rc) {
    redisAsyncContext *ac = cl->addr.path[0] ? redisAsyncConnectUnix(cl->addr.path)
                                             : redisAsyncConnect(cl->addr.host, cl->addr.port);
    if (ac == NULL)
        return -ENOMEM;
    if (ac->err) {
        log_msg(LOG_DEBUG, "cluster: cannot connect to Redis: %s", ac->errstr);
        redisAsyncFree(ac);
        return -ECONNREFUSED;
    }
    rc->cl = cl;
    rc->ac = ac;
    rc->fd = ac->c.fd;
    rc->reading = rc->writing = rc->registered = rc->connected = 0;
    ac->data = rc;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    ac->ev.data = rc;
    /* The connect callback needs the write event, so the adapter is attached first. */
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    return 0;
}

static void start_connecting(cluster_t *cl) {
    cl->retry_at_ms = 0;
    cl->stats.reconnects++;
    if (open_one(cl, &cl->cmd) != 0 || open_one(cl, &cl->sub) != 0) {
        drop_connections(cl);
        cl->retry_at_ms = cl->now_ms + cl->backoff_ms;
        cl->backoff_ms =
            cl->backoff_ms * 2 > CLUSTER_RETRY_MAX_MS ? CLUSTER_RETRY_MAX_MS : cl->backoff_ms * 2;
    }
}

cluster_t *cluster_create(const cluster_addr_t *addr, int epfd, uint32_t node_timeout_ms,
                          const cluster_callbacks_t *cb, char *err, size_t errlen) {
    cluster_t *cl = xcalloc(1, sizeof(*cl));
    cl->addr = *addr;
    cl->epfd = epfd;
    cl->node_timeout_ms = node_timeout_ms;
    cl->cb = *cb;
    cl->cmd.fd = cl->sub.fd = -1;
    cl->cmd.cl = cl->sub.cl = cl;
    cl->backoff_ms = CLUSTER_RETRY_MIN_MS;
    while (cl->node_id == 0) {
        if (rng_secure(&cl->node_id, sizeof(cl->node_id)) != 0) {
            snprintf(err, errlen, "cannot read random bytes for the node ID: %s", strerror(errno));
            xfree(cl);
            return NULL;
        }
    }
    snprintf(cl->node_hex, sizeof(cl->node_hex), "%016llx", (unsigned long long)cl->node_id);
    cl->now_ms = cluster__now_ms();
    start_connecting(cl);
    return cl;
}

static void fail_claims(cluster_t *cl, int notify);

void cluster_destroy(cluster_t *cl) {
    if (cl == NULL)
        return;
    cl->destroying = 1;
    if (cl->cmd.ac != NULL)
        redisAsyncFree(cl->cmd.ac);
    if (cl->sub.ac != NULL)
        redisAsyncFree(cl->sub.ac);
    fail_claims(cl, 0);
    for (uint32_t i = 0; i < cl->ndests; i++)
        buf_dispose(&cl->dests[i].buf);
    xfree(cl->dests);
    xfree(cl->releases);
    if (cl->store != NULL)
        store_redis__destroy(cl->store);
    xfree(cl);
}

uint64_t cluster_node_id(const cluster_t *cl) {
    return cl->node_id;
}

int cluster_state(const cluster_t *cl) {
    return cl->state;
}

cluster_stats_t cluster_stats(const cluster_t *cl) {
    return cl->stats;
}

int cluster__command(cluster_t *cl, redisCallbackFn *fn, void *privdata, int argc,
                     const char **argv, const size_t *argvlen) {
    if (cl->cmd.ac == NULL || !cl->cmd.connected)
        return -ENOTCONN;
    if (redisAsyncCommandArgv(cl->cmd.ac, fn, privdata, argc, argv, argvlen) != REDIS_OK)
        return -ENOTCONN;
    cl->stats.commands++;
    return 0;
}

/* ---- channels ------------------------------------------------------------------------------ */

static void reject(cluster_t *cl, const char *why, size_t len) {
    cl->stats.rejected++;
    if (cl->now_ms - cl->last_reject_log_ms >= CLUSTER_LOG_EVERY_MS ||
        cl->last_reject_log_ms == 0) {
        cl->last_reject_log_ms = cl->now_ms;
        log_msg(LOG_WARN, "cluster: dropped a %zu-byte channel message: %s (%llu so far)", len, why,
                (unsigned long long)cl->stats.rejected);
    }
}

static void on_channel(redisAsyncContext *ac, void *reply, void *privdata) {
    (void)privdata;
    rconn_t *rc = ac->data;
    cluster_t *cl = rc->cl;
    redisReply *r = reply;
    if (r == NULL || cl->destroying)
        return;
    const uint8_t *p = NULL;
    size_t n = 0;
    int kind = reply_push(r, &p, &n);
    if (kind == 2) {
        cl->subscribed++;
        maybe_up(cl);
        return;
    }
    if (kind != 1)
        return;
    cl->stats.received++;
    wire_reader_t rd;
    uint64_t from;
    int rcode = wire_open(&rd, p, n, &from);
    if (rcode != 0) {
        reject(cl, rcode == -EMSGSIZE ? "too large" : "not a sigtracker message", n);
        return;
    }
    if (from == cl->node_id)
        return; /* our own broadcast */
    wire_rec_t rec;
    int k;
    while ((k = wire_next(&rd, &rec)) == 1)
        cl->cb.on_record(cl->cb.arg, from, &rec);
    if (k < 0)
        reject(cl, "malformed record", n);
}

static dest_t *dest_for(cluster_t *cl, uint64_t node) {
    for (uint32_t i = 0; i < cl->ndests; i++)
        if (cl->dests[i].node == node)
            return &cl->dests[i];
    if (cl->ndests == cl->dests_cap) {
        cl->dests_cap = cl->dests_cap ? cl->dests_cap * 2 : 8;
        cl->dests = xrealloc(cl->dests, cl->dests_cap * sizeof(*cl->dests));
    }
    dest_t *d = &cl->dests[cl->ndests++];
    d->node = node;
    d->buf = (buf_t){0};
    return d;
}

static void publish(cluster_t *cl, dest_t *d) {
    if (d->buf.len <= WIRE_HEADER_BYTES) {
        d->buf.len = 0;
        return;
    }
    char chan[32];
    if (d->node == 0)
        snprintf(chan, sizeof(chan), "st:all");
    else
        snprintf(chan, sizeof(chan), "st:n:%016llx", (unsigned long long)d->node);
    const char *argv[] = {"PUBLISH", chan, (const char *)d->buf.data};
    size_t argvlen[] = {7, strlen(chan), d->buf.len};
    if (cluster__command(cl, NULL, NULL, 3, argv, argvlen) == 0)
        cl->stats.published++;
    d->buf.len = 0;
}

static void queue(cluster_t *cl, uint64_t node, const wire_rec_t *r) {
    if (cl->state == CLUSTER_DOWN)
        return;
    dest_t *d = dest_for(cl, node);
    if (d->buf.len > WIRE_SPLIT_BYTES)
        publish(cl, d);
    if (d->buf.len == 0)
        wire_begin(&d->buf, cl->node_id);
    if (wire_put(&d->buf, r) != 0)
        log_msg(LOG_ERROR, "cluster: a record of type %u could not be encoded", r->type);
}

void cluster_publish(cluster_t *cl, const wire_rec_t *r) {
    queue(cl, 0, r);
}

void cluster_send(cluster_t *cl, uint64_t node, const wire_rec_t *r) {
    if (node != 0 && node != cl->node_id)
        queue(cl, node, r);
}

void cluster_flush(cluster_t *cl) {
    if (cl->state != CLUSTER_DOWN) {
        for (uint32_t i = 0; i < cl->ndests; i++)
            publish(cl, &cl->dests[i]);
        if (cl->store != NULL)
            store_redis__flush_now(cl->store);
    }
    /* Keep buffers of busy destinations; give back those of idle ones now and then. */
    for (uint32_t i = 0; i < cl->ndests; i++)
        if (cl->dests[i].buf.len == 0 && cl->dests[i].buf.cap > WIRE_SPLIT_BYTES * 2)
            buf_dispose(&cl->dests[i].buf);
    if (cl->cmd.ac != NULL && cl->cmd.ac->c.obuf != NULL &&
        sdslen(cl->cmd.ac->c.obuf) > CLUSTER_MAX_BACKLOG_BYTES) {
        log_msg(LOG_WARN, "cluster: over %u MiB wait to be written to Redis; reconnecting",
                CLUSTER_MAX_BACKLOG_BYTES >> 20);
        drop_connections(cl);
        return;
    }
    /* Write now rather than at the next writability event: that saves a loop iteration on
     * every relay that crosses nodes. What does not fit waits for EPOLLOUT as usual. */
    if (cl->cmd.ac != NULL && cl->cmd.connected && cl->cmd.ac->c.obuf != NULL &&
        sdslen(cl->cmd.ac->c.obuf) > 0)
        redisAsyncHandleWrite(cl->cmd.ac);
}

/* ---- heartbeat ----------------------------------------------------------------------------- */

static void on_heartbeat(redisAsyncContext *ac, void *reply, void *privdata) {
    (void)privdata;
    rconn_t *rc = ac->data;
    cluster_t *cl = rc->cl;
    redisReply *r = reply;
    if (r == NULL || cl->destroying)
        return;
    if (cl->hb_sent_us != 0) {
        uint64_t rtt = now_us() - cl->hb_sent_us;
        cl->stats.rtt_us = rtt > UINT32_MAX ? UINT32_MAX : (uint32_t)rtt;
    }
    cl->hb_sent_ms = cl->hb_sent_us = 0;
    uint64_t ids[REPLY_MAX_NODES];
    reply_beat_t beat;
    if (reply_heartbeat(r, ids, REPLY_MAX_NODES, &beat) != 0) {
        log_msg(LOG_ERROR, "cluster: unexpected heartbeat reply (%s)",
                r->type == REDIS_REPLY_ERROR ? r->str : "wrong shape");
        return;
    }
    if (cl->state == CLUSTER_STALLED)
        set_state(cl, CLUSTER_UP);
    cl->cb.on_nodes(cl->cb.arg, ids, beat.n, beat.connections, beat.identified);
    if (beat.was_missing && cl->up_once) {
        /* Another node declared this one dead (a long stall) and freed its IDs: claim them
         * again and send our state, as after a reconnect. */
        log_msg(LOG_WARN, "cluster: this node was taken for dead; registering again");
        cl->cb.on_state(cl->cb.arg, CLUSTER_UP);
    }
    cl->up_once = 1;
}

static void send_heartbeat(cluster_t *cl, uint64_t connections, uint64_t identified) {
    char timeout[16], conns[24], idents[24];
    snprintf(timeout, sizeof(timeout), "%u", cl->node_timeout_ms);
    snprintf(conns, sizeof(conns), "%llu", (unsigned long long)connections);
    snprintf(idents, sizeof(idents), "%llu", (unsigned long long)identified);
    const char *argv[] = {"EVALSHA",     cl->sha[SCRIPT_HB], "2",     "st:nodes",
                          "st:nodeinfo", cl->node_hex,       timeout, conns,
                          idents};
    if (cluster__command(cl, on_heartbeat, NULL, 9, argv, NULL) == 0 && cl->hb_sent_ms == 0) {
        cl->hb_sent_ms = cluster__now_ms();
        cl->hb_sent_us = now_us();
    }
}

void cluster_tick(cluster_t *cl, uint64_t now_ms, uint64_t connections, uint64_t identified) {
    (void)now_ms;
    cl->now_ms = cluster__now_ms();
    /* Claims Redis has not answered in time are answered "unavailable" now; the reply, when it
     * comes, gives back an ID nobody waits for. Claims never sent are answered and freed. */
    for (pending_claim_t *p = cl->claims, *next; p; p = next) {
        next = p->next;
        if (p->unsent) {
            unlink_claim(cl, p);
            cl->cb.on_claim(cl->cb.arg, &p->req, CLUSTER_UNAVAILABLE, NULL);
            xfree(p);
        } else if (!p->timed_out && cl->now_ms - p->sent_ms > CLUSTER_CLAIM_TIMEOUT_MS) {
            p->timed_out = 1;
            cl->cb.on_claim(cl->cb.arg, &p->req, CLUSTER_UNAVAILABLE, NULL);
        }
    }
    if (cl->cmd.ac == NULL && cl->sub.ac == NULL && cl->retry_at_ms != 0 &&
        cl->now_ms >= cl->retry_at_ms) {
        start_connecting(cl);
        return;
    }
    if (cl->state == CLUSTER_DOWN)
        return;
    if (cl->hb_sent_ms != 0 && cl->now_ms - cl->hb_sent_ms > CLUSTER_STALL_MS)
        set_state(cl, CLUSTER_STALLED);
    if (cl->hb_sent_ms == 0)
        send_heartbeat(cl, connections, identified);
}

/* ---- claims -------------------------------------------------------------------------------- */

/* The stored form of a token: the first 16 bytes of its SHA-256. Redis never holds a token a
 * client could present. */
static void token_hash(const uint8_t token[16], uint8_t out[16]) {
    uint8_t d[SHA256_DIGEST_LENGTH];
    SHA256(token, 16, d);
    memcpy(out, d, 16);
}

/* The bucket of an ID: FNV-1a, the same on every node (a keyed hash would differ per process). */
static uint32_t id_bucket(const uint8_t *id, size_t len) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ id[i]) * 16777619u;
    return h % CLUSTER_ID_BUCKETS;
}

/* A connection's slot and generation as the 8 big-endian bytes the scripts compare. */
static void slot_gen(uint32_t slot, uint32_t gen, uint8_t out[8]) {
    for (int i = 0; i < 4; i++) {
        out[i] = (uint8_t)(slot >> (24 - 8 * i));
        out[4 + i] = (uint8_t)(gen >> (24 - 8 * i));
    }
}

static void unlink_claim(cluster_t *cl, pending_claim_t *p) {
    if (p->prev)
        p->prev->next = p->next;
    else
        cl->claims = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        cl->claims_tail = p->prev;
}

static void fail_claims(cluster_t *cl, int notify) {
    /* At destroy hiredis has already called every callback with a NULL reply (freeing those
     * claims); what is left was never sent. */
    while (cl->claims) {
        pending_claim_t *p = cl->claims;
        unlink_claim(cl, p);
        if (notify && !p->timed_out)
            cl->cb.on_claim(cl->cb.arg, &p->req, CLUSTER_UNAVAILABLE, NULL);
        xfree(p);
    }
}

static void on_claim_reply(redisAsyncContext *ac, void *reply, void *privdata) {
    pending_claim_t *p = privdata;
    cluster_t *cl = p->cl;
    (void)ac;
    redisReply *r = reply;
    unlink_claim(cl, p);
    if (cl->destroying) {
        xfree(p);
        return;
    }
    int result = CLUSTER_UNAVAILABLE;
    cluster_holder_t old = {0, 0, 0};
    if (r != NULL && reply_claim(r, &result, &old) != 0) {
        log_msg(LOG_ERROR, "cluster: unexpected reply to a claim (%s)",
                r->type == REDIS_REPLY_ERROR ? r->str : "wrong shape");
        result = CLUSTER_UNAVAILABLE;
    }
    cluster_holder_t *oldp = result == CLUSTER_RECLAIMED ? &old : NULL;
    if (p->timed_out) {
        /* Nobody waits any more: give back what we got. */
        if (result == CLUSTER_CLAIMED || result == CLUSTER_RECLAIMED)
            cluster_release(cl, p->req.id, p->req.len, p->req.slot, p->req.gen);
    } else {
        cl->cb.on_claim(cl->cb.arg, &p->req, result, oldp);
    }
    xfree(p);
}

void cluster_claim(cluster_t *cl, const cluster_claim_req_t *req) {
    pending_claim_t *p = xcalloc(1, sizeof(*p));
    p->cl = cl;
    p->req = *req;
    p->sent_ms = cluster__now_ms();
    char bucket[16], timeout[16];
    uint8_t sg[8], present[16], fresh[16];
    snprintf(bucket, sizeof(bucket), "%u", id_bucket(req->id, req->len));
    snprintf(timeout, sizeof(timeout), "%u", cl->node_timeout_ms);
    slot_gen(req->slot, req->gen, sg);
    if (req->has_present)
        token_hash(req->present, present);
    if (req->has_new)
        token_hash(req->new_token, fresh);
    const char *argv[] = {"EVALSHA",
                          cl->sha[SCRIPT_CLAIM],
                          "1",
                          "st:nodes",
                          cl->node_hex,
                          bucket,
                          (const char *)req->id,
                          (const char *)sg,
                          (const char *)present,
                          (const char *)fresh,
                          timeout,
                          req->reassert ? "1" : "0"};
    const size_t argvlen[] = {7,
                              40,
                              1,
                              8,
                              strlen(cl->node_hex),
                              strlen(bucket),
                              req->len,
                              sizeof(sg),
                              req->has_present ? sizeof(present) : 0,
                              req->has_new ? sizeof(fresh) : 0,
                              strlen(timeout),
                              1};
    /* Claims that cannot be sent are answered at the next tick, never from inside this call. */
    p->unsent = cl->state == CLUSTER_DOWN ||
                cluster__command(cl, on_claim_reply, p, 12, argv, argvlen) != 0;
    p->prev = cl->claims_tail;
    if (cl->claims_tail)
        cl->claims_tail->next = p;
    else
        cl->claims = p;
    cl->claims_tail = p;
}

void cluster_release(cluster_t *cl, const void *id, size_t len, uint32_t slot, uint32_t gen) {
    if (cl->state == CLUSTER_DOWN || cl->scripts_loaded < SCRIPT_COUNT) {
        if (cl->nreleases >= CLUSTER_MAX_PENDING_RELEASES) {
            log_msg(LOG_WARN, "cluster: too many IDs released while Redis is away; some stay "
                              "held until this node stops");
            return;
        }
        if (cl->nreleases == cl->releases_cap) {
            cl->releases_cap = cl->releases_cap ? cl->releases_cap * 2 : 64;
            cl->releases = xrealloc(cl->releases, cl->releases_cap * sizeof(*cl->releases));
        }
        cluster_claim_req_t *r = &cl->releases[cl->nreleases++];
        memset(r, 0, sizeof(*r));
        r->len = (uint8_t)len;
        memcpy(r->id, id, len);
        r->slot = slot;
        r->gen = gen;
        return;
    }
    char key[48];
    uint8_t sg[8];
    snprintf(key, sizeof(key), "st:ids:%s:%u", cl->node_hex, id_bucket(id, len));
    slot_gen(slot, gen, sg);
    const char *argv[] = {"EVALSHA", cl->sha[SCRIPT_RELEASE], "1", key, id, (const char *)sg};
    const size_t argvlen[] = {7, 40, 1, strlen(key), len, sizeof(sg)};
    (void)cluster__command(cl, NULL, NULL, 6, argv, argvlen);
}

void cluster_leave(cluster_t *cl) {
    const char *argv[] = {"EVALSHA", cl->sha[SCRIPT_LEAVE], "0", cl->node_hex};
    if (cl->scripts_loaded == SCRIPT_COUNT)
        (void)cluster__command(cl, NULL, NULL, 4, argv, NULL);
}

int cluster_congested(const cluster_t *cl) {
    const redisAsyncContext *ac = cl->cmd.ac;
    return cl->state != CLUSTER_UP ||
           (ac != NULL && ac->c.obuf != NULL && sdslen(ac->c.obuf) > CLUSTER_RELAY_BACKLOG_BYTES);
}

int cluster_busy(const cluster_t *cl) {
    const redisAsyncContext *ac = cl->cmd.ac;
    if (ac == NULL || !cl->cmd.connected || cl->state == CLUSTER_STALLED)
        return 0;
    return (ac->c.obuf != NULL && sdslen(ac->c.obuf) > 0) || ac->replies.head != NULL;
}

store_t *cluster_store_create(cluster_t *cl, const hash_key_t *key) {
    if (cl->store == NULL)
        cl->store = store_redis__create(cl, key);
    return cl->store;
}
