/* peers.c: the handle table, local IDs and memberships, and the mirror of other nodes (see
 * peers.h). */
#include "hub/peers.h"

#include <errno.h>
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"

/* Slots the handle table starts with; it doubles when full. */
#define PEERS_INITIAL_SLOTS 64

/* ---- handles ------------------------------------------------------------------------------- */

void peers_slot_alloc(server_t *s, conn_t *c) {
    if (s->nfree == 0) {
        uint32_t old = s->nslots, cap = old ? old * 2 : PEERS_INITIAL_SLOTS;
        s->slots = xrealloc(s->slots, cap * sizeof(*s->slots));
        s->gens = xrealloc(s->gens, cap * sizeof(*s->gens));
        s->free_slots = xrealloc(s->free_slots, cap * sizeof(*s->free_slots));
        /* Push the new slots so that the lowest is taken first. */
        for (uint32_t i = cap; i > old; i--) {
            s->slots[i - 1] = NULL;
            s->gens[i - 1] = 1; /* generation 0 never resolves */
            s->free_slots[s->nfree++] = i - 1;
        }
        s->nslots = cap;
    }
    c->slot = s->free_slots[--s->nfree];
    s->slots[c->slot] = c;
}

void peers_slot_free(server_t *s, conn_t *c) {
    if (c->slot >= s->nslots || s->slots[c->slot] != c)
        return;
    s->slots[c->slot] = NULL;
    if (++s->gens[c->slot] == 0)
        s->gens[c->slot] = 1;
    s->free_slots[s->nfree++] = c->slot;
}

conn_t *peers_resolve(server_t *s, uint32_t slot, uint32_t gen) {
    if (slot >= s->nslots || gen == 0 || s->gens[slot] != gen)
        return NULL;
    return s->slots[slot];
}

conn_ref_t peers_ref(const server_t *s, const conn_t *c) {
    conn_ref_t r = {c->slot, s->gens[c->slot]};
    return r;
}

void ref_list_push(ref_list_t *l, conn_ref_t r) {
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
    }
    l->v[l->n++] = r;
}

static void ref_list_dispose(ref_list_t *l) {
    xfree(l->v);
    *l = (ref_list_t){0};
}

void peers_dispose(server_t *s) {
    xfree(s->slots);
    xfree(s->gens);
    xfree(s->free_slots);
    s->slots = NULL;
    s->gens = s->free_slots = NULL;
    s->nslots = s->nfree = 0;
    ref_list_dispose(&s->resume);
    ref_list_dispose(&s->store_wait);
    ref_list_dispose(&s->kicks);
}

/* ---- publishing (cluster mode) ------------------------------------------------------------- */

static int publishing(const server_t *s, const registry_entry_t *e) {
    return s->cluster != NULL && e->at.node == 0;
}

static void set_id(wire_rec_t *r, const registry_entry_t *e) {
    r->id_len = e->len;
    memcpy(r->id, e->id, e->len);
}

static void publish_up(server_t *s, const registry_entry_t *e, uint64_t to_node) {
    wire_rec_t r = {
        .type = WIRE_PEER_UP, .dialect = e->dialect, .slot = e->at.slot, .gen = e->at.gen};
    set_id(&r, e);
    if (to_node)
        cluster_send(s->cluster, to_node, &r);
    else
        cluster_publish(s->cluster, &r);
}

static void publish_member(server_t *s, const swarm_member_t *m, uint64_t to_node) {
    const registry_entry_t *e = m->owner;
    wire_rec_t r = {.type = WIRE_MEMBER, .seeder = m->seeder};
    set_id(&r, e);
    memcpy(r.ih, m->swarm->info_hash, 20);
    if (to_node)
        cluster_send(s->cluster, to_node, &r);
    else
        cluster_publish(s->cluster, &r);
}

/* ---- swarms -------------------------------------------------------------------------------- */

swarm_member_t *peers_join(server_t *s, registry_entry_t *e, const uint8_t info_hash[20],
                           int seeder) {
    swarm_member_t *m =
        swarm_join(s->swarms, info_hash, e, e->dialect, &e->members, seeder, s->now);
    e->nswarms++;
    if (e->at.node == 0) {
        s->local_members++;
        s->local_seeders += seeder ? 1 : 0;
        if (m->swarm->local++ == 0)
            s->local_swarms++;
    }
    if (publishing(s, e))
        publish_member(s, m, 0);
    return m;
}

void peers_set_seeder(server_t *s, swarm_member_t *m, int seeder) {
    registry_entry_t *e = m->owner;
    if (!!m->seeder == !!seeder)
        return;
    swarm_set_seeder(s->swarms, m, seeder);
    if (e->at.node == 0) {
        if (seeder)
            s->local_seeders++;
        else
            s->local_seeders--;
    }
    if (publishing(s, e))
        publish_member(s, m, 0);
}

void peers_leave(server_t *s, swarm_member_t *m) {
    registry_entry_t *e = m->owner;
    if (publishing(s, e)) {
        wire_rec_t r = {.type = WIRE_LEAVE};
        set_id(&r, e);
        memcpy(r.ih, m->swarm->info_hash, 20);
        cluster_publish(s->cluster, &r);
    }
    if (e->at.node == 0) {
        s->local_members--;
        if (m->seeder)
            s->local_seeders--;
        if (--m->swarm->local == 0)
            s->local_swarms--;
    }
    swarm_leave(s->swarms, m, &e->members);
    e->nswarms--;
}

void peers_expired(swarm_member_t *m, void *arg) {
    server_t *s = arg;
    registry_entry_t *e = m->owner;
    if (e->at.node != 0) {
        m->last_announce = s->now;
        return;
    }
    peers_leave(s, m);
    s->count.expired_peers++;
}

/* ---- IDs ----------------------------------------------------------------------------------- */

/* Compares two tokens in time independent of where they differ. */
static int token_equal(const uint8_t a[16], const uint8_t b[16]) {
    uint8_t d = 0;
    for (int i = 0; i < 16; i++)
        d |= (uint8_t)(a[i] ^ b[i]);
    return d == 0;
}

/* Releases an entry: leaves its swarms, then frees it (publishing when it is ours). */
static void release_entry(server_t *s, registry_entry_t *e) {
    while (e->members)
        peers_leave(s, e->members);
    if (e->at.node == 0) {
        s->local_peers--;
        if (s->cluster != NULL) {
            wire_rec_t r = {.type = WIRE_PEER_DOWN, .slot = e->at.slot, .gen = e->at.gen};
            set_id(&r, e);
            cluster_publish(s->cluster, &r);
            cluster_release(s->cluster, e->id, e->len, e->at.slot, e->at.gen);
        }
    }
    registry_release(s->registry, e);
}

void peers_forget(server_t *s, conn_t *c) {
    if (c->peer == NULL)
        return;
    registry_entry_t *e = c->peer;
    c->peer = NULL;
    release_entry(s, e);
}

/* Creates the entry of an ID this node's connection c now holds. */
static registry_entry_t *hold(server_t *s, conn_t *c, const void *id, size_t len, int dialect,
                              const uint8_t *new_token) {
    registry_entry_t *e = registry_claim(s->registry, id, len, new_token);
    if (e == NULL)
        return NULL;
    e->at.node = 0;
    e->at.slot = c->slot;
    e->at.gen = s->gens[c->slot];
    e->dialect = (uint8_t)dialect;
    c->peer = e;
    s->local_peers++;
    if (s->cluster != NULL)
        publish_up(s, e, 0);
    return e;
}

/* Closes the holder of e with bye "replaced": e is released at once, so its ID is free for the
 * caller; a local holder is closed at the end of this iteration, a remote one by its node. */
static void kick(server_t *s, registry_entry_t *e) {
    if (e->at.node == 0) {
        conn_t *old = peers_resolve(s, e->at.slot, e->at.gen);
        if (old != NULL) {
            ref_list_push(&s->kicks, peers_ref(s, old));
            peers_forget(s, old);
            return;
        }
        release_entry(s, e);
        return;
    }
    wire_rec_t r = {.type = WIRE_KICK,
                    .slot = e->at.slot,
                    .gen = e->at.gen,
                    .payload = (const uint8_t *)"replaced",
                    .payload_len = 8};
    cluster_send(s->cluster, peers_node_id(s, e->at.node), &r);
    release_entry(s, e);
}

int peers_claim(server_t *s, conn_t *c, const void *id, size_t len, int dialect,
                const uint8_t *present, const uint8_t *new_token) {
    if (c->flags & CF_ASYNC_DONE) {
        /* The re-run of a parked message: the answer is in. */
        c->flags &= (uint16_t)~CF_ASYNC_DONE;
        return c->async_result;
    }
    registry_entry_t *held = registry_find(s->registry, id, len);
    if (s->cluster == NULL) {
        if (held != NULL) {
            if (present == NULL || registry_token(held) == NULL ||
                !token_equal(present, registry_token(held)))
                return -EEXIST;
            kick(s, held);
        }
        return hold(s, c, id, len, dialect, new_token) != NULL ? 0 : -EEXIST;
    }
    /* Cluster mode: Redis decides. What the mirror already knows refuses at once: a holder on
     * this node whose token does not match, or any holder when no token is shown. */
    if (held != NULL &&
        (present == NULL || (held->at.node == 0 && (registry_token(held) == NULL ||
                                                    !token_equal(present, registry_token(held))))))
        return -EEXIST;
    if (cluster_state(s->cluster) != CLUSTER_UP)
        return -EAGAIN;
    cluster_claim_req_t req = {
        .len = (uint8_t)len, .dialect = (uint8_t)dialect, .slot = c->slot, .gen = s->gens[c->slot]};
    memcpy(req.id, id, len);
    if (present != NULL) {
        req.has_present = 1;
        memcpy(req.present, present, 16);
    }
    if (new_token != NULL) {
        req.has_new = 1;
        memcpy(req.new_token, new_token, 16);
    }
    cluster_claim(s->cluster, &req);
    return -EINPROGRESS;
}

void peers_on_claim(void *server, const cluster_claim_req_t *req, int result,
                    const cluster_holder_t *old) {
    server_t *s = server;
    int ours = result == CLUSTER_CLAIMED || result == CLUSTER_RECLAIMED;
    conn_t *c = peers_resolve(s, req->slot, req->gen);
    if (req->reassert) {
        /* After a reconnect: another live peer took the ID while we were away, and Redis
         * keeps the newer claim. Our connection loses it. */
        if (result == CLUSTER_TAKEN && c != NULL && c->peer != NULL) {
            log_msg(LOG_WARN, "cluster: an ID of this node was claimed elsewhere meanwhile; "
                              "closing its connection here");
            ref_list_push(&s->kicks, peers_ref(s, c));
            peers_forget(s, c);
        }
        return;
    }
    if (c == NULL || c->state != CONN_WS || c->peer != NULL || !(c->flags & CF_PARKED)) {
        /* The connection went away (or timed out waiting): give the ID back. */
        if (ours)
            cluster_release(s->cluster, req->id, req->len, req->slot, req->gen);
        return;
    }
    if (ours) {
        /* Our former holder, or a mirror entry Redis has overruled, is kicked (and released at
         * once). The holder Redis names is kicked too when the mirror did not know it: it may
         * have claimed the ID after the last record we saw. */
        registry_entry_t *stale = registry_find(s->registry, req->id, req->len);
        peer_handle_t was = {UINT32_MAX, 0, 0};
        if (stale != NULL) {
            was = stale->at;
            kick(s, stale); /* frees stale */
        }
        if (result == CLUSTER_RECLAIMED && old != NULL &&
            old->node != cluster_node_id(s->cluster)) {
            int idx = peers_node_index(s, old->node);
            if (idx > 0 &&
                !(was.node == (uint32_t)idx && was.slot == old->slot && was.gen == old->gen)) {
                wire_rec_t r = {.type = WIRE_KICK,
                                .slot = old->slot,
                                .gen = old->gen,
                                .payload = (const uint8_t *)"replaced",
                                .payload_len = 8};
                cluster_send(s->cluster, old->node, &r);
            }
        }
        hold(s, c, req->id, req->len, req->dialect, req->has_new ? req->new_token : NULL);
        c->async_result = 0;
    } else {
        c->async_result = result == CLUSTER_TAKEN ? -EEXIST : -EAGAIN;
    }
    c->flags |= CF_ASYNC_DONE;
    ref_list_push(&s->resume, peers_ref(s, c));
}

void peers_run_kicks(server_t *s, void (*close_fn)(server_t *s, conn_t *c)) {
    /* close_fn may not add kicks (closing releases nothing new), but index rather than iterate
     * pointers in case the list grows. */
    for (uint32_t i = 0; i < s->kicks.n; i++) {
        conn_t *c = peers_resolve(s, s->kicks.v[i].slot, s->kicks.v[i].gen);
        if (c != NULL)
            close_fn(s, c);
    }
    s->kicks.n = 0;
}

/* ---- other nodes --------------------------------------------------------------------------- */

int peers_node_index(server_t *s, uint64_t node_id) {
    if (s->cluster == NULL || node_id == cluster_node_id(s->cluster))
        return 0;
    /* Records come in runs from one node: try the last answer first. */
    if (s->node_hint > 0 && s->node_hint < HUB_MAX_NODES && s->nodes[s->node_hint].id == node_id)
        return (int)s->node_hint;
    int free_at = -1;
    for (uint32_t i = 1; i < HUB_MAX_NODES; i++) {
        if (s->nodes[i].id == node_id) {
            s->node_hint = i;
            return (int)i;
        }
        if (s->nodes[i].id == 0 && free_at < 0)
            free_at = (int)i;
    }
    if (free_at < 0)
        return -ENOSPC;
    s->nodes[free_at].id = node_id;
    s->nodes[free_at].seen = s->now;
    return free_at;
}

uint64_t peers_node_id(const server_t *s, uint32_t index) {
    if (index == 0)
        return s->cluster ? cluster_node_id(s->cluster) : 0;
    return index < HUB_MAX_NODES ? s->nodes[index].id : 0;
}

static registry_entry_t *mirror_find(server_t *s, uint32_t node, const wire_rec_t *r) {
    registry_entry_t *e = registry_find(s->registry, r->id, r->id_len);
    return e != NULL && e->at.node == node ? e : NULL;
}

void peers_apply(server_t *s, uint32_t node, const wire_rec_t *r) {
    if (node == 0)
        return; /* our own records, echoed: nothing to learn */
    registry_entry_t *e;
    switch (r->type) {
    case WIRE_PEER_UP:
        e = registry_find(s->registry, r->id, r->id_len);
        if (e != NULL && e->at.node == 0)
            return; /* we hold it: Redis settles this when we assert our IDs again */
        if (e != NULL)
            release_entry(s, e); /* an older claim on another node: the newest wins */
        e = registry_claim(s->registry, r->id, r->id_len, NULL);
        if (e == NULL)
            return;
        e->at.node = node;
        e->at.slot = r->slot;
        e->at.gen = r->gen;
        e->dialect = r->dialect;
        return;
    case WIRE_PEER_DOWN:
        e = mirror_find(s, node, r);
        if (e != NULL && e->at.slot == r->slot && e->at.gen == r->gen)
            release_entry(s, e);
        return;
    case WIRE_MEMBER: {
        e = mirror_find(s, node, r);
        if (e == NULL)
            return;
        swarm_t *w = swarm_find(s->swarms, r->ih);
        swarm_member_t *m = w ? swarm_member_of(e->members, w) : NULL;
        if (m != NULL) {
            peers_set_seeder(s, m, r->seeder);
            m->last_announce = s->now;
        } else {
            peers_join(s, e, r->ih, r->seeder);
        }
        return;
    }
    case WIRE_LEAVE: {
        e = mirror_find(s, node, r);
        swarm_t *w = e ? swarm_find(s->swarms, r->ih) : NULL;
        swarm_member_t *m = w ? swarm_member_of(e->members, w) : NULL;
        if (m != NULL)
            peers_leave(s, m);
        return;
    }
    case WIRE_RESET:
        peers_forget_node(s, node, 1);
        return;
    default:
        return;
    }
}

typedef struct forget_ctx {
    server_t *s;
    uint32_t node; /* UINT32_MAX: every remote node */
} forget_ctx_t;

static void forget_one(registry_entry_t *e, void *arg) {
    forget_ctx_t *fc = arg;
    if (e->at.node != 0 && (fc->node == UINT32_MAX || e->at.node == fc->node))
        release_entry(fc->s, e);
}

void peers_forget_node(server_t *s, uint32_t node, int keep_index) {
    if (node == 0 || node >= HUB_MAX_NODES)
        return;
    forget_ctx_t fc = {s, node};
    registry_each(s->registry, forget_one, &fc);
    if (!keep_index)
        s->nodes[node] = (hub_node_t){0};
}

void peers_forget_remote(server_t *s) {
    forget_ctx_t fc = {s, UINT32_MAX};
    registry_each(s->registry, forget_one, &fc);
    for (uint32_t i = 1; i < HUB_MAX_NODES; i++)
        s->nodes[i] = (hub_node_t){0};
}

typedef struct snap_ctx {
    server_t *s;
    uint64_t to;
} snap_ctx_t;

static void snap_one(registry_entry_t *e, void *arg) {
    snap_ctx_t *sc = arg;
    if (e->at.node != 0)
        return;
    publish_up(sc->s, e, sc->to);
    for (swarm_member_t *m = e->members; m; m = m->next_of_owner)
        publish_member(sc->s, m, sc->to);
}

void peers_snapshot(server_t *s, uint64_t to_node) {
    if (s->cluster == NULL)
        return;
    wire_rec_t r = {.type = WIRE_RESET};
    if (to_node)
        cluster_send(s->cluster, to_node, &r);
    else
        cluster_publish(s->cluster, &r);
    snap_ctx_t sc = {s, to_node};
    registry_each(s->registry, snap_one, &sc);
}

static void reassert_one(registry_entry_t *e, void *arg) {
    server_t *s = arg;
    if (e->at.node != 0)
        return;
    cluster_claim_req_t req = {
        .len = e->len, .dialect = e->dialect, .reassert = 1, .slot = e->at.slot, .gen = e->at.gen};
    memcpy(req.id, e->id, e->len);
    if (registry_token(e) != NULL) {
        req.has_new = 1;
        memcpy(req.new_token, registry_token(e), REGISTRY_TOKEN_BYTES);
    }
    cluster_claim(s->cluster, &req);
}

void peers_reassert(server_t *s) {
    if (s->cluster != NULL)
        registry_each(s->registry, reassert_one, s);
}
