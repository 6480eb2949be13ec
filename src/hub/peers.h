/* peers.h: who is where. The handle table (a connection's slot and generation), the peer IDs
 * and swarm memberships of this node's peers, and, in cluster mode, the mirror of every other
 * node's peers. Every change to a local peer's ID or memberships goes through here, so the
 * counts stay exact and, in cluster mode, every change is published to the other nodes from
 * this one place. Event-loop thread only. */
#ifndef SIG_HUB_PEERS_H
#define SIG_HUB_PEERS_H

#include <stddef.h>
#include <stdint.h>

#include "cluster/wire.h"
#include "hub/ctx.h"

/* ---- handles ------------------------------------------------------------------------------- */

/* Gives c a slot in the handle table (c->slot). */
void peers_slot_alloc(server_t *s, conn_t *c);

/* Frees c's slot; its generation changes, so handles to c no longer resolve. */
void peers_slot_free(server_t *s, conn_t *c);

/* Returns the live connection at (slot, gen) of this node, or NULL. Safe for any values. */
conn_t *peers_resolve(server_t *s, uint32_t slot, uint32_t gen);

/* The reference (slot, gen) of a connection. */
conn_ref_t peers_ref(const server_t *s, const conn_t *c);

/* Appends r to a list (which grows as needed). */
void ref_list_push(ref_list_t *l, conn_ref_t r);

/* Frees the handle table and the lists. */
void peers_dispose(server_t *s);

/* ---- IDs ----------------------------------------------------------------------------------- */

/* Claims id for connection c, in dialect (DIALECT_ST or DIALECT_WT). present is the token the
 * client showed to take the ID back (ST, or NULL); new_token is the token to store with the
 * claim (ST, or NULL).
 * Returns 0 with c->peer set; -EEXIST when another peer holds it; -EAGAIN when the cluster
 * cannot decide now (Redis unreachable: retry later); -EINPROGRESS when Redis was asked: the
 * caller parks the message, which is handled again (this call then returns the answer). A holder
 * replaced by its token is closed with bye "replaced" (on whatever node it is). */
int peers_claim(server_t *s, conn_t *c, const void *id, size_t len, int dialect,
                const uint8_t *present, const uint8_t *new_token);

/* Releases c's ID and leaves every swarm (no-op when c holds none). */
void peers_forget(server_t *s, conn_t *c);

/* The cluster's answer to a claim (registered as the cluster's on_claim callback). */
void peers_on_claim(void *server, const cluster_claim_req_t *req, int result,
                    const cluster_holder_t *old);

/* ---- swarms -------------------------------------------------------------------------------- */

/* Adds peer e to the swarm of info_hash as seeder or leecher (e must not be in it). */
swarm_member_t *peers_join(server_t *s, registry_entry_t *e, const uint8_t info_hash[20],
                           int seeder);

/* Changes a membership's seeder state (no-op when unchanged). */
void peers_set_seeder(server_t *s, swarm_member_t *m, int seeder);

/* Removes a membership. */
void peers_leave(server_t *s, swarm_member_t *m);

/* The swarm expiry callback for swarm_expire: a local peer leaves; another node's peer is
 * refreshed (its own node expires it and tells us). arg is the server. */
void peers_expired(swarm_member_t *m, void *arg);

/* ---- other nodes (cluster mode) ------------------------------------------------------------ */

/* The node-table index of node_id (adding it), 0 for this node, or -ENOSPC when the table is
 * full. */
int peers_node_index(server_t *s, uint64_t node_id);

/* The node ID of a node-table index. */
uint64_t peers_node_id(const server_t *s, uint32_t index);

/* Applies a membership record from another node to the mirror (PEER_UP, PEER_DOWN, MEMBER,
 * LEAVE, RESET). Records that contradict what this node holds are ignored. */
void peers_apply(server_t *s, uint32_t node, const wire_rec_t *r);

/* Forgets every peer of node index (it died, or sent RESET); keep_index 0 also frees the
 * index. */
void peers_forget_node(server_t *s, uint32_t node, int keep_index);

/* Forgets every other node's peers (Redis is unreachable: they cannot be reached). */
void peers_forget_remote(server_t *s);

/* Publishes this node's whole state, RESET first, to one node (to_node) or to all (0). */
void peers_snapshot(server_t *s, uint64_t to_node);

/* Asserts every ID this node holds again (after a reconnect to Redis). */
void peers_reassert(server_t *s);

/* Closes, at the end of this iteration, every connection queued by a reclaim. */
void peers_run_kicks(server_t *s, void (*close_fn)(server_t *s, conn_t *c));

#endif
