/* route.h: where a message crosses to another peer, and maybe to another node. Handlers build
 * the frame a peer should receive and hand it here with the receiver's handle; route_deliver
 * applies the receive-side checks and queues it on the receiver's connection when the receiver
 * is on this node, or sends it to the receiver's node (cluster mode), which applies the same
 * checks there (route_on_record). Either way the handler never touches the receiver's record.
 * Event-loop thread only. */
#ifndef SIG_PROTO_ROUTE_H
#define SIG_PROTO_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "cluster/wire.h"
#include "hub/ctx.h"

/* A frame for another peer. */
typedef struct delivery {
    uint8_t kind;                 /* enum wire_kind: what receive-side checks apply */
    peer_handle_t to;             /* the receiver */
    const registry_entry_t *from; /* the sender (its ID, and where a refusal goes) */
    const uint8_t *info_hash;     /* 20 bytes, or NULL */
    const uint8_t *offer_id;      /* 20 bytes (WebTorrent kinds), or NULL */
    const uint8_t *frame;         /* the JSON text the receiver gets */
    size_t len;
} delivery_t;

/* Delivers d. Returns 0 when queued on a receiver of this node; -EINPROGRESS when sent to the
 * receiver's node (a refusal there comes back later and becomes the dialect's rate-limit answer
 * to the sender); -EAGAIN when the receiver's signal bucket refuses (*retry_ms says when to
 * retry); -ENOBUFS when the receiver reads too slowly, or when the way to its node is congested
 (over 8 MiB wait for Redis: dropped and counted, as for a slow reader); -ENOENT when the
 * receiver is gone or speaks another dialect. */
int route_deliver(server_t *s, const delivery_t *d, uint32_t *retry_ms);

/* Handles a record from another node (registered as the cluster's on_record callback). */
void route_on_record(void *server, uint64_t from_node, const wire_rec_t *r);

#endif
