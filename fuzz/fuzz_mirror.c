/* fuzz_mirror.c: libFuzzer driver for what other nodes send a node in cluster mode: records
 * from Redis channels through route_on_record into the mirror of other nodes' peers, the swarms,
 * the registry, deliveries to this node's connections, refusals and kicks. The server runs in
 * cluster mode against a Redis that does not exist (nothing leaves the process); its own peers
 * are made by completing their claims as the cluster would.
 *
 * Byte 0 of the input: bits 0-1 pick which of three node IDs sends the records (3 = each record
 * from the next node in turn); bit 2: afterwards, this node's ST peer announces (its answer lists
 * mirrored peers) and signals every mirrored ST peer; bit 3: afterwards the housekeeping tick runs
 * past --peer-timeout; bit 4: afterwards one of the nodes is forgotten (it died). The rest of the
 * input is records in the node-channel format (src/cluster/wire.h), after a header the driver
 * supplies; a DELIVER, REFUSED or KICK with generation 0 is aimed at this node's ST connection
 * (even slot) or WebTorrent connection (odd slot), whose generations change every input. After
 * every step the driver checks: every membership is owned by the registry entry whose list holds it
 * and is where its index says; the registry's swarm counts, the swarm totals and this node's own
 * figures add up; this node's connections hold entries of this node that resolve back to them; and
 * every frame queued to a client is well-formed, and a text frame is valid UTF-8. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster/wire.h"
#include "core/log.h"
#include "hub/peers.h"
#include "proto/route.h"
#include "server/conn.h"
#include "server/server.h"
#include "fuzz_server.h"
#include "ws/frame.h"
#include "ws/utf8.h"

/* Inputs after which the server is recreated, so nothing grows without bound over a long run. */
#define FUZZ_RECREATE_EVERY 20000
/* Records applied per input at most. */
#define FUZZ_MAX_RECORDS 256

static const uint64_t nodes[3] = {0x1111111111111111ULL, 0x2222222222222222ULL,
                                  0x0000000000000003ULL};

static const char upgrade[] = "GET /announce HTTP/1.1\r\nHost: localhost:8000\r\n"
                              "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Sec-WebSocket-Version: 13\r\n\r\n";

static server_t *srv;
static char db_path[FUZZ_DB_PATH_BYTES];
static unsigned long inputs;

static void destroy_server(void) {
    fuzz_server_destroy(&srv, db_path);
}

static void create_server(void) {
    config_t cfg;
    config_defaults(&cfg);
    cfg.log_level = LOG_OFF;
    cfg.ping_interval = 3600;
    cfg.idle_timeout = 0;
    snprintf(cfg.cluster, sizeof(cfg.cluster), "unix:/nonexistent/sigtracker-fuzz.sock");
    srv = fuzz_server_create(&cfg, "fuzz-mirror", db_path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    log_set_level(LOG_OFF);
    create_server();
    atexit(destroy_server);
    return 0;
}

/* ---- invariants ---------------------------------------------------------------------------- */

typedef struct tally {
    server_t *s;
    uint64_t members, local_members, local_seeders, local_peers, entries;
} tally_t;

static void check_entry(registry_entry_t *e, void *arg) {
    tally_t *t = arg;
    uint32_t n = 0;
    for (swarm_member_t *m = e->members; m; m = m->next_of_owner) {
        CHECK(m->owner == e);
        CHECK(m->dialect == e->dialect);
        CHECK(m->index < m->swarm->count);
        CHECK(m->swarm->members[m->index] == m);
        CHECK(m->seeder == (m->index >= m->swarm->count - m->swarm->seeders));
        if (e->at.node == 0) {
            t->local_members++;
            t->local_seeders += m->seeder;
        }
        n++;
    }
    CHECK(n == e->nswarms);
    CHECK(e->len >= 1 && e->len <= REGISTRY_MAX_ID_BYTES);
    if (e->at.node == 0) {
        conn_t *c = peers_resolve(t->s, e->at.slot, e->at.gen);
        CHECK(c != NULL && c->peer == e);
        t->local_peers++;
    } else {
        CHECK(e->at.node < HUB_MAX_NODES && t->s->nodes[e->at.node].id != 0);
    }
    t->members += n;
    t->entries++;
}

static void check_output(const conn_t *c) {
    size_t off = 0;
    while (off < c->out.len) {
        const uint8_t *b = c->out.data + off;
        size_t avail = c->out.len - off, h = 2, n;
        CHECK(avail >= 2);
        CHECK((b[1] & 0x80) == 0 && (b[0] & 0x70) == 0);
        n = b[1] & 0x7f;
        if (n == 126) {
            CHECK(avail >= 4);
            n = (size_t)b[2] << 8 | b[3];
            h = 4;
        } else if (n == 127) {
            CHECK(avail >= 10);
            n = 0;
            for (int i = 0; i < 8; i++)
                n = n << 8 | b[2 + i];
            h = 10;
        }
        CHECK(avail >= h + n);
        if (off >= c->out_partial && (b[0] & 0x0f) == WS_OP_TEXT)
            CHECK(utf8_valid(b + h, n));
        off += h + n;
    }
}

static void check_invariants(server_t *s) {
    tally_t t = {s, 0, 0, 0, 0, 0};
    registry_each(s->registry, check_entry, &t);
    swarm_totals_t tot = swarm_totals(s->swarms);
    CHECK(tot.members == t.members);
    CHECK(tot.swarms <= tot.members);
    CHECK(registry_count(s->registry) == t.entries);
    CHECK(s->local_members == t.local_members);
    CHECK(s->local_seeders == t.local_seeders);
    CHECK(s->local_peers == t.local_peers);
    for (conn_t *c = s->conns; c; c = c->next) {
        if (c->peer != NULL)
            CHECK(c->peer->at.node == 0);
        check_output(c);
    }
}

/* ---- the scene ----------------------------------------------------------------------------- */

static void send_text(server_t *s, conn_t *c, const char *json) {
    size_t n = strlen(json);
    uint8_t *buf = malloc(n + 14);
    size_t h = 0;
    buf[h++] = 0x80 | WS_OP_TEXT;
    if (n <= 125) {
        buf[h++] = (uint8_t)(0x80 | n);
    } else {
        buf[h++] = 0x80 | 126;
        buf[h++] = (uint8_t)(n >> 8);
        buf[h++] = (uint8_t)n;
    }
    memset(buf + h, 0, 4); /* a zero mask leaves the payload as it is */
    h += 4;
    memcpy(buf + h, json, n);
    conn_feed(s, c, buf, h + n);
    fuzz_settle(s);
    free(buf);
}

static conn_t *open_upgraded(server_t *s) {
    uint8_t req[sizeof(upgrade)];
    memcpy(req, upgrade, sizeof(upgrade));
    conn_t *c = conn_create(s, -1, NULL, 0, 0);
    CHECK(c != NULL);
    conn_feed(s, c, req, sizeof(upgrade) - 1);
    CHECK(c->state == CONN_WS);
    conn_flush(s, c);
    return c;
}

/* Gives c the ID as the cluster would: a claim Redis answered "yours". */
static void claim(server_t *s, conn_t *c, const char *id, int dialect) {
    c->dialect = (uint8_t)dialect;
    cluster_claim_req_t req = {.len = (uint8_t)strlen(id),
                               .dialect = (uint8_t)dialect,
                               .slot = c->slot,
                               .gen = peers_ref(s, c).gen};
    memcpy(req.id, id, req.len);
    c->flags |= CF_PARKED;
    peers_on_claim(s, &req, CLUSTER_CLAIMED, NULL);
    CHECK(c->peer != NULL);
    c->flags &= (uint16_t) ~(CF_PARKED | CF_ASYNC_DONE);
    s->resume.n = 0;
}

static void drop_output(server_t *s) {
    for (conn_t *c = s->conns; c; c = c->next)
        conn_flush(s, c);
}

typedef struct signal_ctx {
    server_t *s;
    conn_t *from;
} signal_ctx_t;

static void signal_one(registry_entry_t *e, void *arg) {
    signal_ctx_t *sc = arg;
    if (e->at.node == 0 || e->dialect != DIALECT_ST || sc->from->state != CONN_WS)
        return;
    char msg[256];
    snprintf(msg, sizeof(msg), "{\"type\":\"offer\",\"to\":\"%.*s\",\"payload\":{\"sdp\":\"x\"}}",
             (int)e->len, e->id);
    /* Sending changes no registry entry, so walking the registry meanwhile is safe. */
    send_text(sc->s, sc->from, msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0)
        return 0;
    if (++inputs % FUZZ_RECREATE_EVERY == 0) {
        destroy_server();
        create_server();
    }
    server_t *s = srv;
    s->now = 1000;
    s->now_ms = 1000000;
    rng_seed(&s->rng, 0x5eed);
    uint8_t mode = data[0];
    conn_t *st = open_upgraded(s), *wt = open_upgraded(s);
    claim(s, st, "local-st", DIALECT_ST);
    claim(s, wt, "-LL0001-abcdefghijkl", DIALECT_WT);
    send_text(s, st,
              "{\"type\":\"announce\",\"info_hash\":\"08ada5a7a6183aae1e09d831df6748d566095a10\","
              "\"left\":1}");
    check_invariants(s);
    drop_output(s);

    /* The records, as one channel message from the chosen node. */
    buf_t msg = {0};
    wire_begin(&msg, 0);
    buf_append(&msg, data + 1, size - 1);
    wire_reader_t rd;
    uint64_t from;
    if (wire_open(&rd, msg.data, msg.len, &from) == 0) {
        wire_rec_t r;
        for (int k = 0; k < FUZZ_MAX_RECORDS && wire_next(&rd, &r) == 1; k++) {
            uint64_t node = (mode & 3) == 3 ? nodes[k % 3] : nodes[mode & 3];
            /* A record for one of our connections with generation 0 gets the current one, so
             * deliveries, refusals and kicks reach them (generations change every input). */
            if ((r.type == WIRE_DELIVER || r.type == WIRE_REFUSED || r.type == WIRE_KICK) &&
                r.gen == 0) {
                conn_t *to = r.slot % 2 ? wt : st;
                r.slot = to->slot;
                r.gen = peers_ref(s, to).gen;
            }
            route_on_record(s, node, &r);
            server_settle(s);
            check_invariants(s);
        }
    }
    buf_dispose(&msg);
    if ((mode & 4) && st->state == CONN_WS) {
        send_text(s, st,
                  "{\"type\":\"announce\",\"info_hash\":"
                  "\"08ada5a7a6183aae1e09d831df6748d566095a10\",\"num_want\":50}");
        signal_ctx_t sc = {s, st};
        registry_each(s->registry, signal_one, &sc);
        check_invariants(s);
    }
    if (mode & 8) {
        for (uint32_t t = 0; t <= s->cfg.peer_timeout + 16; t += 8) {
            s->now += 8;
            s->now_ms += 8000;
            server_tick(s);
            check_invariants(s);
            server_end_iteration(s);
        }
    }
    if (mode & 16) {
        int idx = peers_node_index(s, nodes[(mode >> 5) % 3]);
        if (idx > 0)
            peers_forget_node(s, (uint32_t)idx, 0);
        check_invariants(s);
    }
    drop_output(s);
    /* Close everything; the mirror of every node goes too, as when Redis is lost. */
    for (conn_t *c = s->conns; c; c = c->next)
        conn_close(s, c, WS_CLOSE_GOING_AWAY, NULL);
    peers_forget_remote(s);
    check_invariants(s);
    server_end_iteration(s);
    CHECK(s->conns == NULL && registry_count(s->registry) == 0);
    swarm_totals_t t = swarm_totals(s->swarms);
    CHECK(t.swarms == 0 && t.members == 0);
    CHECK(s->local_swarms == 0 && s->local_members == 0 && s->local_peers == 0);
    return 0;
}
