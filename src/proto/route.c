/* route.c: delivery by handle, local or through another node (see route.h). */
#include "proto/route.h"

#include <errno.h>
#include <string.h>

#include "hub/out.h"
#include "hub/peers.h"
#include "proto/st.h"
#include "proto/wt.h"
#include "ws/utf8.h"

/* The dialect a kind of delivery is for. */
static int kind_dialect(int kind) {
    return kind == WIRE_WT_OFFER || kind == WIRE_WT_ANSWER ? DIALECT_WT : DIALECT_ST;
}

/* The receive side, on the receiver's node: its signal bucket, its output limit, and for a
 * WebTorrent offer the record that lets exactly one answer come back. */
static int receive(server_t *s, conn_t *dst, int kind, const uint8_t *from_id,
                   const uint8_t *info_hash, const uint8_t *offer_id, const uint8_t *frame,
                   size_t len, uint32_t *retry_ms) {
    if (dst->peer == NULL || dst->dialect != kind_dialect(kind))
        return -ENOENT;
    uint32_t wait =
        bucket_take(&dst->recv_bucket, s->now_ms, s->cfg.recv_rate, s->cfg.recv_burst, 1);
    if (wait != 0) {
        *retry_ms = wait;
        return -EAGAIN;
    }
    if (!out_can_send(s, dst))
        return -ENOBUFS;
    out_text(s, dst, frame, len);
    if (kind == WIRE_WT_OFFER && from_id != NULL && offer_id != NULL && info_hash != NULL)
        wt_remember_offer(s, dst, from_id, offer_id, info_hash);
    s->count.relayed++;
    return 0;
}

int route_deliver(server_t *s, const delivery_t *d, uint32_t *retry_ms) {
    if (d->to.node == 0) {
        conn_t *dst = peers_resolve(s, d->to.slot, d->to.gen);
        if (dst == NULL)
            return -ENOENT;
        return receive(s, dst, d->kind, (const uint8_t *)d->from->id, d->info_hash, d->offer_id,
                       d->frame, d->len, retry_ms);
    }
    uint64_t node = peers_node_id(s, d->to.node);
    if (s->cluster == NULL || node == 0 || d->len > WIRE_MAX_PAYLOAD_BYTES)
        return -ENOENT;
    if (cluster_congested(s->cluster)) {
        s->count.dropped++; /* as for a receiver that reads too slowly */
        return -ENOBUFS;
    }
    wire_rec_t r = {.type = WIRE_DELIVER,
                    .kind = d->kind,
                    .slot = d->to.slot,
                    .gen = d->to.gen,
                    .from_slot = d->from->at.slot,
                    .from_gen = d->from->at.gen,
                    .id_len = d->from->len,
                    .payload = d->frame,
                    .payload_len = (uint32_t)d->len};
    memcpy(r.id, d->from->id, d->from->len);
    if (d->info_hash != NULL) {
        r.has_ih = 1;
        memcpy(r.ih, d->info_hash, 20);
    }
    if (d->offer_id != NULL)
        memcpy(r.offer_id, d->offer_id, 20);
    cluster_send(s->cluster, node, &r);
    s->count.remote_out++;
    return -EINPROGRESS;
}

/* A DELIVER from another node: the same receive side as a local delivery; a refusal by the
 * receiver's bucket goes back to the sender's node. */
static void on_deliver(server_t *s, uint64_t from_node, const wire_rec_t *r) {
    s->count.remote_in++;
    conn_t *dst = peers_resolve(s, r->slot, r->gen);
    /* Another node built the frame; still, only valid UTF-8 goes into a text frame, whatever a
     * channel carried. */
    if (dst == NULL || !utf8_valid(r->payload, r->payload_len)) {
        s->count.dropped++;
        return;
    }
    uint32_t retry = 0;
    int rc = receive(s, dst, r->kind, r->id, r->has_ih ? r->ih : NULL, r->offer_id, r->payload,
                     r->payload_len, &retry);
    if (rc != -EAGAIN)
        return;
    wire_rec_t back = {.type = WIRE_REFUSED,
                       .kind = r->kind,
                       .slot = r->from_slot,
                       .gen = r->from_gen,
                       .has_ih = r->has_ih,
                       .retry_ms = retry,
                       .id_len = dst->peer->len};
    memcpy(back.id, dst->peer->id, dst->peer->len);
    memcpy(back.ih, r->ih, 20);
    cluster_send(s->cluster, from_node, &back);
}

/* A REFUSED for one of our senders: the answer its dialect gives when a receiver's bucket
 * refuses a signal on this node. */
static void on_refused(server_t *s, const wire_rec_t *r) {
    conn_t *c = peers_resolve(s, r->slot, r->gen);
    if (c == NULL || c->state != CONN_WS)
        return;
    const uint8_t *ih = r->has_ih ? r->ih : NULL;
    switch (r->kind) {
    case WIRE_ST_OFFER:
    case WIRE_ST_ANSWER:
    case WIRE_ST_CANDIDATE: {
        static const char *const names[] = {"offer", "answer", "candidate"};
        if (!st_peer_id_valid((const char *)r->id, r->id_len))
            return; /* it would be written into the error as "to" */
        st_limited_t what = {names[r->kind - WIRE_ST_OFFER], (const char *)r->id, r->id_len, ih};
        st_rate_limited(s, c, RL_SIGNALS_RECV, &what, r->retry_ms,
                        "that peer is receiving signals too fast");
        break;
    }
    case WIRE_WT_OFFER:
        s->count.rate_limited++;
        s->count.rate_limited_by[RL_SIGNALS_RECV]++;
        s->count.rate_limited_by[RL_SIGNALS_RECV]++;
        wt_failure(s, c, REFUSAL_RATE_LIMITED, "announce", ih,
                   "rate limited: 1 of 1 offers were not relayed, slow down");
        break;
    case WIRE_WT_ANSWER:
        s->count.rate_limited++;
        wt_failure(s, c, REFUSAL_RATE_LIMITED, "announce", ih,
                   "rate limited: too many signals, slow down");
        break;
    }
}

void route_on_record(void *server, uint64_t from_node, const wire_rec_t *r) {
    server_t *s = server;
    int idx = peers_node_index(s, from_node);
    if (idx <= 0)
        return; /* our own record echoed back, or the node table is full */
    switch (r->type) {
    case WIRE_DELIVER:
        on_deliver(s, from_node, r);
        break;
    case WIRE_REFUSED:
        on_refused(s, r);
        break;
    case WIRE_KICK: {
        conn_t *c = peers_resolve(s, r->slot, r->gen);
        if (c != NULL && c->peer != NULL) {
            ref_list_push(&s->kicks, peers_ref(s, c));
            peers_forget(s, c);
        }
        break;
    }
    case WIRE_HELLO:
        peers_snapshot(s, from_node);
        break;
    case WIRE_PEER_UP:
        /* Only IDs a client of that dialect could have claimed: they are written into frames
         * (announce answers, relays) as they are. */
        if (r->dialect == DIALECT_ST ? !st_peer_id_valid((const char *)r->id, r->id_len)
                                     : r->id_len != 20) {
            s->count.dropped++;
            break;
        }
        peers_apply(s, (uint32_t)idx, r);
        break;
    default:
        peers_apply(s, (uint32_t)idx, r);
        break;
    }
}
