/* cluster.h: the Redis side of cluster mode, as the rest of the server sees it. One cluster_t per
 * node holds two hiredis connections (commands and pub/sub) attached to the server's epoll loop;
 * nothing here ever waits: commands are pipelined, replies arrive as loop events and are handed
 * to the callbacks below.
 *
 * What lives in Redis (docs/cluster.md has the whole model):
 *   st:nodes            sorted set: node ID -> last heartbeat (Redis server time, ms)
 *   st:nodeinfo         hash: node ID -> "connections identified_peers" of that node
 *   st:ids:<node>:<b>   hash: the IDs a node holds, spread over 1,024 buckets b (FNV-1a of the ID
 *                       mod 1,024): field = ID bytes, value = slot and gen (8 bytes) + token hash
 *   st:ih:<hex ih>      hash: c = completions, f = first seen, l = last seen (unix seconds)
 *   channels st:all (membership events, for every node) and st:n:<node> (relays, kicks, state)
 *
 * The protocol code never includes this header: it talks to proto/route.h and hub/peers.h,
 * which call these functions only in cluster mode. Event-loop thread only. */
#ifndef SIG_CLUSTER_CLUSTER_H
#define SIG_CLUSTER_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "cluster/wire.h"
#include "store/store.h"

typedef struct cluster cluster_t;
typedef struct cluster_claim_req cluster_claim_req_t;

/* Where Redis is, parsed from --cluster. */
typedef struct cluster_addr {
    char host[256]; /* TCP host, empty for a unix socket */
    uint16_t port;
    char path[4096]; /* unix socket path, empty for TCP */
} cluster_addr_t;

/* Parses "redis://HOST:PORT" (PORT defaults to 6379; HOST may be [v6]) or "unix:/path".
 * Returns 0, or -EINVAL with a reason in err. Pure. */
int cluster_addr_parse(const char *url, cluster_addr_t *out, char *err, size_t errlen);

enum cluster_state {
    CLUSTER_DOWN = 0, /* not connected (connecting, or waiting to retry) */
    CLUSTER_UP,       /* connected, registered, replies on time */
    CLUSTER_STALLED,  /* connected, but a reply is overdue (Redis paused or overloaded) */
};

/* Outcome of an ID claim, passed to on_claim. */
enum cluster_claim_result {
    CLUSTER_CLAIMED = 0, /* the ID is ours */
    CLUSTER_RECLAIMED,   /* ours, taken from a live holder whose token matched: kick it */
    CLUSTER_TAKEN,       /* held by another live peer */
    CLUSTER_UNAVAILABLE, /* Redis could not answer in time: retry later */
};

/* The peer that held an ID before a reclaim. */
typedef struct cluster_holder {
    uint64_t node;
    uint32_t slot, gen;
} cluster_holder_t;

typedef struct cluster_callbacks {
    void *arg;
    /* A record published by another node (on st:all or on this node's channel). */
    void (*on_record)(void *arg, uint64_t from_node, const wire_rec_t *r);
    /* A claim started by cluster_claim (or cluster_reassert) finished; the claim's arguments
     * come back with it. old is set for CLUSTER_RECLAIMED. */
    void (*on_claim)(void *arg, const cluster_claim_req_t *req, int result,
                     const cluster_holder_t *old);
    /* The state changed. On CLUSTER_UP after a reconnect the server re-registers its peers
     * (cluster_reclaim for every local ID, then its snapshot); on DOWN it forgets other nodes. */
    void (*on_state)(void *arg, int state);
    /* After every heartbeat: the live nodes (this one included) and their totals. */
    void (*on_nodes)(void *arg, const uint64_t *nodes, size_t n, uint64_t connections,
                     uint64_t identified);
} cluster_callbacks_t;

/* Creates the cluster client and starts connecting (never waits). node_timeout_ms: heartbeats
 * older than this mean a dead node. Returns NULL with a reason in err. */
cluster_t *cluster_create(const cluster_addr_t *addr, int epfd, uint32_t node_timeout_ms,
                          const cluster_callbacks_t *cb, char *err, size_t errlen);

/* Disconnects and frees. Pending claims are dropped without callbacks. */
void cluster_destroy(cluster_t *cl);

/* This node's random 64-bit ID (never 0). */
uint64_t cluster_node_id(const cluster_t *cl);

int cluster_state(const cluster_t *cl);

/* The loop calls this for epoll events whose data.ptr is a cluster marker (see cluster_owns). */
int cluster_owns(const cluster_t *cl, const void *ptr);
void cluster_on_event(cluster_t *cl, const void *ptr, uint32_t events);

/* Reads the records waiting on the channel connection (the loop calls it between batches of
 * client events, so a busy node keeps up with the others' records). */
void cluster_drain(cluster_t *cl);

/* Once per second: heartbeat, overdue replies, reconnect backoff, pending-claim timeouts. */
void cluster_tick(cluster_t *cl, uint64_t now_ms, uint64_t connections, uint64_t identified);

/* A claim: the ID, who wants it, and the tokens. */
struct cluster_claim_req {
    uint8_t id[WIRE_MAX_ID_BYTES];
    uint8_t len;
    uint8_t dialect;
    uint8_t has_present; /* present: the token the client showed to take the ID back */
    uint8_t has_new;     /* new: the token this claim stores (ST); absent for WebTorrent */
    uint8_t reassert;    /* 1: an ID this node already holds, asserted again after a reconnect */
    uint32_t slot, gen;
    uint8_t present[16];
    uint8_t new_token[16];
};

/* Asks Redis for an ID for local connection (slot, gen). A live holder whose stored token
 * matches req->present is replaced (CLUSTER_RECLAIMED); any other live holder keeps it
 * (CLUSTER_TAKEN); a holder on a dead node loses it. on_claim is called later, never from inside
 * this call; CLUSTER_UNAVAILABLE when Redis is not up or does not answer within
 * CLUSTER_CLAIM_TIMEOUT_MS. With req->reassert, a holder that is this very (slot, gen) keeps it
 * and a live other holder wins. */
void cluster_claim(cluster_t *cl, const cluster_claim_req_t *req);

/* Releases an ID held by (slot, gen) of this node (only if still held by it). */
void cluster_release(cluster_t *cl, const void *id, size_t len, uint32_t slot, uint32_t gen);

/* Queues a record for every node (st:all) or for one node (st:n:<node>). Records are sent at
 * cluster_flush, many per PUBLISH. Dropped silently while the state is not UP (the snapshot
 * after the reconnect covers them). */
void cluster_publish(cluster_t *cl, const wire_rec_t *r);
void cluster_send(cluster_t *cl, uint64_t node, const wire_rec_t *r);

/* Sends the queued records: one PUBLISH per destination, pipelined. End of every iteration. */
void cluster_flush(cluster_t *cl);

/* Returns 1 when a relay to another node should be dropped rather than sent: Redis is not up,
 * or over 8 MiB already wait to be written to it (overload). */
int cluster_congested(const cluster_t *cl);

/* Says this node is leaving (shutdown): it is removed from the live nodes at once, so the
 * others forget its peers at their next heartbeat instead of after --node-timeout. */
void cluster_leave(cluster_t *cl);

/* Returns 1 while commands wait to be written to Redis or answered (a shutdown waits for that,
 * briefly); 0 when idle, or when Redis is not reachable (there is nothing to wait for). */
int cluster_busy(const cluster_t *cl);

/* The infohash store kept in Redis hashes (cluster/store_redis.c), on this cluster's connection.
 * Returns a store whose lifetime must not exceed the cluster's. */
store_t *cluster_store_create(cluster_t *cl, const hash_key_t *key);

/* Counters for /stats.json. */
typedef struct cluster_stats {
    uint64_t commands;  /* commands sent */
    uint64_t published; /* PUBLISH messages sent */
    uint64_t received;  /* messages received on channels */
    uint64_t rejected;  /* malformed or oversized messages dropped */
    uint64_t reconnects;
    uint32_t rtt_us; /* round trip of the last heartbeat */
} cluster_stats_t;
cluster_stats_t cluster_stats(const cluster_t *cl);

#endif
