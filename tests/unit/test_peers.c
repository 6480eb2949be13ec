/* test_peers.c: unit tests of the handle table and of the mirror of other nodes' peers
 * (src/hub/peers.c). The server runs in cluster mode pointed at a Redis that does not exist, so
 * the cluster client stays down and nothing leaves the process: records from "other nodes" are
 * handed to peers_apply / route_on_record directly. */
#include "unit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/log.h"
#include "hub/peers.h"
#include "proto/route.h"
#include "server/conn.h"
#include "server/server.h"

/* Two node IDs that are not this node's. */
#define NODE_X 0x1111111111111111ULL
#define NODE_Y 0x2222222222222222ULL

static server_t *make_server(int cluster) {
    config_t cfg;
    config_defaults(&cfg);
    snprintf(cfg.db_path, sizeof(cfg.db_path), "/tmp/sigtracker-test-peers-%ld.db", (long)getpid());
    if (cluster)
        snprintf(cfg.cluster, sizeof(cfg.cluster), "unix:/nonexistent/sigtracker-test.sock");
    char err[256] = "";
    server_t *s = server_create(&cfg, err, sizeof(err));
    if (s == NULL)
        fail_msg("server_create: %s", err);
    return s;
}

static void destroy(server_t *s) {
    char p[128];
    server_destroy(s);
    snprintf(p, sizeof(p), "/tmp/sigtracker-test-peers-%ld.db", (long)getpid());
    unlink(p);
    snprintf(p, sizeof(p), "/tmp/sigtracker-test-peers-%ld.db-wal", (long)getpid());
    unlink(p);
    snprintf(p, sizeof(p), "/tmp/sigtracker-test-peers-%ld.db-shm", (long)getpid());
    unlink(p);
}

static wire_rec_t rec(int type, const char *id) {
    wire_rec_t r;
    memset(&r, 0, sizeof(r));
    r.type = (uint8_t)type;
    r.id_len = (uint8_t)strlen(id);
    memcpy(r.id, id, r.id_len);
    r.dialect = DIALECT_ST;
    return r;
}

static void test_handles(void **state) {
    (void)state;
    server_t *s = make_server(0);
    conn_t *a = conn_create(s, -1, NULL, 0, 0), *b = conn_create(s, -1, NULL, 0, 0);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_not_equal(a->slot, b->slot);
    conn_ref_t ra = peers_ref(s, a);
    assert_ptr_equal(peers_resolve(s, ra.slot, ra.gen), a);
    assert_null(peers_resolve(s, ra.slot, ra.gen + 1));
    assert_null(peers_resolve(s, ra.slot, 0));
    assert_null(peers_resolve(s, 1u << 30, 1));
    /* A freed slot is reused with a new generation: the old handle resolves to nothing. */
    conn_destroy(s, a);
    assert_null(peers_resolve(s, ra.slot, ra.gen));
    conn_t *c = conn_create(s, -1, NULL, 0, 0);
    assert_int_equal(c->slot, ra.slot);
    assert_null(peers_resolve(s, ra.slot, ra.gen));
    assert_ptr_equal(peers_resolve(s, c->slot, peers_ref(s, c).gen), c);
    /* The table grows past its first size. */
    conn_t *many[200];
    for (int i = 0; i < 200; i++)
        many[i] = conn_create(s, -1, NULL, 0, 0);
    for (int i = 0; i < 200; i++)
        assert_ptr_equal(peers_resolve(s, many[i]->slot, peers_ref(s, many[i]).gen), many[i]);
    destroy(s);
}

static void test_mirror(void **state) {
    (void)state;
    server_t *s = make_server(1);
    uint8_t ih[20];
    memset(ih, 0xab, sizeof(ih));
    /* A peer of node X comes up, joins a swarm as a leecher, then seeds. */
    wire_rec_t up = rec(WIRE_PEER_UP, "xavier");
    up.slot = 5;
    up.gen = 9;
    route_on_record(s, NODE_X, &up);
    registry_entry_t *e = registry_find(s->registry, "xavier", 6);
    assert_non_null(e);
    assert_int_not_equal(e->at.node, 0);
    assert_true(peers_node_id(s, e->at.node) == NODE_X);
    assert_int_equal(e->at.slot, 5);
    assert_int_equal(e->at.gen, 9);
    wire_rec_t join = rec(WIRE_MEMBER, "xavier");
    memcpy(join.ih, ih, 20);
    route_on_record(s, NODE_X, &join);
    swarm_t *w = swarm_find(s->swarms, ih);
    assert_non_null(w);
    assert_int_equal(w->count, 1);
    assert_int_equal(w->seeders, 0);
    join.seeder = 1;
    route_on_record(s, NODE_X, &join);
    assert_int_equal(w->seeders, 1);
    assert_int_equal(e->nswarms, 1);
    /* Mirrored peers are not this node's: the local figures do not move. */
    assert_int_equal(s->local_peers, 0);
    assert_int_equal(s->local_members, 0);
    assert_int_equal(s->local_swarms, 0);
    /* Another node cannot change X's peer, nor release it. */
    route_on_record(s, NODE_Y, &join);
    wire_rec_t leave = rec(WIRE_LEAVE, "xavier");
    memcpy(leave.ih, ih, 20);
    route_on_record(s, NODE_Y, &leave);
    assert_int_equal(swarm_find(s->swarms, ih)->count, 1);
    wire_rec_t down = rec(WIRE_PEER_DOWN, "xavier");
    down.slot = 5;
    down.gen = 8; /* an older connection's release */
    route_on_record(s, NODE_X, &down);
    assert_non_null(registry_find(s->registry, "xavier", 6));
    /* The swarm expiry refreshes, never expires, a mirrored member. */
    s->now += s->cfg.peer_timeout + 100;
    swarm_expire(s->swarms, s->now, s->cfg.peer_timeout, 1u << 20, peers_expired, s);
    assert_int_equal(swarm_find(s->swarms, ih)->count, 1);
    /* X's own release removes the peer and its memberships; the emptied swarm goes. */
    down.gen = 9;
    route_on_record(s, NODE_X, &down);
    assert_null(registry_find(s->registry, "xavier", 6));
    assert_null(swarm_find(s->swarms, ih));
    /* RESET forgets everything of that node, and only of that node. */
    up = rec(WIRE_PEER_UP, "x1");
    route_on_record(s, NODE_X, &up);
    up = rec(WIRE_PEER_UP, "y1");
    route_on_record(s, NODE_Y, &up);
    join = rec(WIRE_MEMBER, "x1");
    memcpy(join.ih, ih, 20);
    route_on_record(s, NODE_X, &join);
    wire_rec_t reset = rec(WIRE_RESET, "-");
    route_on_record(s, NODE_X, &reset);
    assert_null(registry_find(s->registry, "x1", 2));
    assert_non_null(registry_find(s->registry, "y1", 2));
    assert_null(swarm_find(s->swarms, ih));
    /* A node that dies is forgotten whole. */
    registry_entry_t *y = registry_find(s->registry, "y1", 2);
    peers_forget_node(s, y->at.node, 0);
    assert_int_equal(registry_count(s->registry), 0);
    destroy(s);
}

static void test_mirror_does_not_override_local(void **state) {
    (void)state;
    server_t *s = make_server(1);
    conn_t *c = conn_create(s, -1, NULL, 0, 0);
    c->state = CONN_WS;
    c->dialect = DIALECT_ST;
    /* Redis is down: the claim cannot be decided. */
    assert_int_equal(peers_claim(s, c, "mine", 4, DIALECT_ST, NULL, NULL), -EAGAIN);
    assert_null(c->peer);
    /* Decided as the cluster's answer would: the ID is ours. */
    cluster_claim_req_t req = {
        .len = 4, .dialect = DIALECT_ST, .slot = c->slot, .gen = peers_ref(s, c).gen};
    memcpy(req.id, "mine", 4);
    c->flags |= CF_PARKED;
    peers_on_claim(s, &req, CLUSTER_CLAIMED, NULL);
    assert_non_null(c->peer);
    assert_true(c->flags & CF_ASYNC_DONE);
    assert_int_equal(s->resume.n, 1);
    assert_int_equal(peers_claim(s, c, "mine", 4, DIALECT_ST, NULL, NULL), 0);
    assert_int_equal(s->local_peers, 1);
    /* A record from another node naming the same ID does not take it from us. */
    wire_rec_t up = rec(WIRE_PEER_UP, "mine");
    route_on_record(s, NODE_X, &up);
    assert_ptr_equal(registry_find(s->registry, "mine", 4), c->peer);
    assert_int_equal(c->peer->at.node, 0);
    /* Without a token, a claim for a held ID is refused at once, without asking Redis. */
    conn_t *d = conn_create(s, -1, NULL, 0, 0);
    d->state = CONN_WS;
    assert_int_equal(peers_claim(s, d, "mine", 4, DIALECT_ST, NULL, NULL), -EEXIST);
    /* A kick from another node (it reclaimed the ID) releases it here. */
    wire_rec_t kick = rec(WIRE_KICK, "-");
    kick.slot = c->slot;
    kick.gen = peers_ref(s, c).gen;
    route_on_record(s, NODE_X, &kick);
    assert_null(c->peer);
    assert_int_equal(s->kicks.n, 1);
    assert_int_equal(s->local_peers, 0);
    destroy(s);
}

int main(void) {
    log_set_level(LOG_OFF);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handles),
        cmocka_unit_test(test_mirror),
        cmocka_unit_test(test_mirror_does_not_override_local),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
