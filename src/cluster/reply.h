/* reply.h: decoders for what Redis answers the cluster client, as pure functions over hiredis's
 * reply objects (no I/O). Redis is trusted infrastructure, but a reply of an unexpected shape (a
 * script of another version, a key another program wrote) must be refused, never followed off
 * the end of an array: every decoder checks types and counts first. Thread: any. */
#ifndef SIG_CLUSTER_REPLY_H
#define SIG_CLUSTER_REPLY_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/cluster.h"

/* Most live nodes a heartbeat reply may list; more are ignored. */
#define REPLY_MAX_NODES 256

/* The claim script's answer: {0} claimed, {1, "node slot gen token"} reclaimed, {2, holder}
 * taken. Returns 0 with *result (enum cluster_claim_result) and, for CLUSTER_RECLAIMED, *old set;
 * -EBADMSG when r has another shape (an error reply included). */
int reply_claim(const redisReply *r, int *result, cluster_holder_t *old);

/* A holder value "node slot gen token" (node 16 hex digits). Returns 0, or -EINVAL. */
int reply_holder(const char *v, size_t len, cluster_holder_t *h);

/* The heartbeat script's answer: {live node IDs, connections, identified peers, missing}.
 * Returns 0 with up to `max` node IDs in ids (*n of them; malformed IDs are skipped) and the
 * figures set; -EBADMSG when r has another shape. */
typedef struct reply_beat {
    size_t n;
    uint64_t connections;
    uint64_t identified;
    int was_missing; /* this node was not in st:nodes: declared dead meanwhile */
} reply_beat_t;
int reply_heartbeat(const redisReply *r, uint64_t *ids, size_t max, reply_beat_t *out);

/* A non-negative decimal from a bulk string (an HMGET field). Nil, a negative or malformed
 * number, or one over INT64_MAX, reads as 0 (a field nobody wrote yet). */
int64_t reply_count(const redisReply *e);

/* A pub/sub push: returns 1 with payload/len set for a "message" on some channel, 2 for a
 * subscribe confirmation, 0 for anything else. */
int reply_push(const redisReply *r, const uint8_t **payload, size_t *len);

#endif
