/* redis_int.h: what the Redis backends of cluster/ share (the client in cluster_redis.c and the
 * infohash store in store_redis.c). Not for use outside cluster/. Event-loop thread only. */
#ifndef SIG_CLUSTER_REDIS_INT_H
#define SIG_CLUSTER_REDIS_INT_H

#include <hiredis/async.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/cluster.h"

/* Sends a command on the command connection. Returns 0, or -ENOTCONN when there is none (the
 * callback is then not called). fn gets a NULL reply when the connection is lost. */
int cluster__command(cluster_t *cl, redisCallbackFn *fn, void *privdata, int argc,
                     const char **argv, const size_t *argvlen);

/* The store's hooks: called by the client at the end of every iteration (push what waits),
 * when the state changes, and once a second. */
void store_redis__flush_now(store_t *st);
void store_redis__on_state(store_t *st, int state);
void store_redis__destroy(store_t *st);

/* Creates the Redis store of cl. */
store_t *store_redis__create(cluster_t *cl, const hash_key_t *key);

/* Monotonic milliseconds. */
uint64_t cluster__now_ms(void);

#endif
