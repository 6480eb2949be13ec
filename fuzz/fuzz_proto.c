/* fuzz_proto.c: libFuzzer driver for the protocol layer: the JSON tokenizer, the ST dialect
 * (proto/st.c), the WebTorrent dialect (proto/wt.c), the announce logic (proto/tracker.c), the
 * swarms and the peer ID registry. Each input is the payload of one complete WebSocket message,
 * sent through a connection that has completed the upgrade, in a server where other peers are
 * already in a swarm, so offers, answers and signals are relayed.
 *
 * One server is created per process (its database in /tmp, named after the pid); every input
 * builds its scene from scratch and closes it afterwards, with the clock reset and the sampling
 * generator reseeded, so an input replays the same way.
 *
 * Byte 0 of the input chooses the scene; the rest is the message.
 *   bits 0-1  scene: 0 no peers (the message is the connection's first), 1 three ST peers
 *             (peer-a seeder, peer-b and peer-c leechers) in the Sintel swarm, 2 three WebTorrent
 *             peers in the Sintel swarm, where A has been sent offers by B and C (so A's answers
 *             pass the answer gate), 3 one ST and one WebTorrent peer in the same swarm (the ST
 *             infohash in hex and the WebTorrent one in binary are the same 20 bytes)
 *   bit 2     send the message as a binary frame instead of a text frame
 *   bit 3     send the same message again, from the next peer
 *   bit 4     advance the clock past --min-interval first (so regular announces are accepted)
 *   bit 5     afterwards, run the housekeeping tick past --peer-timeout (expiry, pings)
 *   bits 6-7  sender: peer A, B or C of the scene, or 3 for a fresh connection
 * After the message the driver checks the same invariants as fuzz_conn: swarm totals against the
 * connections' memberships, the registry against the connections' peer IDs, and that everything
 * the server queued is well-formed frames whose text is valid UTF-8 JSON.
 *
 * Access lists: every input runs with a denylist of the infohash 2222...2 (announces to it are
 * refused, scrapes of it answered without it). Before the scene is closed, the list becomes a
 * denylist of the Sintel infohash as a reload would make it, and its peers are removed
 * (tracker_enforce_access): the invariants must hold after that too, and no peer may be left in
 * the Sintel swarm while the other swarms keep theirs. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "json/json.h"
#include "hub/peers.h"
#include "proto/tracker.h"
#include "server/conn.h"
#include "server/server.h"
#include "fuzz_server.h"
#include "ws/frame.h"
#include "ws/utf8.h"

/* Inputs after which the server (and its database) is recreated, so the database and its cache
 * cannot grow without bound over a long run. */
#define FUZZ_RECREATE_EVERY 20000
/* Clock at the start of every input: seconds, and unix time for the database. */
#define FUZZ_BASE_SECONDS 1000
#define FUZZ_BASE_WALL 1800000000
/* Tokens and nesting for checking the server's output. */
#define FUZZ_OUT_TOKENS 16384
#define FUZZ_OUT_DEPTH 64
/* Peers of a scene. */
#define FUZZ_PEERS 3

/* The swarms a connection's peer is in, and how many (none before it holds a peer ID). */
#define MEMBERS(c) ((c)->peer != NULL ? (c)->peer->members : NULL)
#define NSWARMS(c) ((c)->peer != NULL ? (c)->peer->nswarms : 0u)

static const char upgrade[] = "GET /announce HTTP/1.1\r\nHost: localhost:8000\r\n"
                              "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Sec-WebSocket-Version: 13\r\n\r\n";

/* The Sintel infohash of protocols.md section 1.2, as ST hex and as a WebTorrent binary string. */
#define SINTEL_HEX "\"08ada5a7a6183aae1e09d831df6748d566095a10\""
#define SINTEL_BIN                                                                                 \
    "\"\\b\\u00ad\\u00a5\\u00a7\\u00a6\\u0018:"                                                    \
    "\\u00ae\\u001e\\t\\u00d81\\u00dfgH\\u00d5f\\tZ\\u0010\""
#define WT_A "\"-WW0208-k3J9xQ2mVbLp\""
#define WT_B "\"-WW0208-Zt7uR1cPq0sN\""
#define WT_C "\"-WW0208-C0c0C0c0C0c0\""
/* The offer_id of section 1.8 (NUL, '"', '\\', CR, LF, 0x7f, 0x80, 0xff) and a plain one. */
#define OFFER_ID_1                                                                                 \
    "\"\\u009f\\u001c.z\\u0000\\u00ff\\u0010\\u0080[\\\\\\\"1\\u007f\\r\\n\\u001b,=N_\""
#define OFFER_ID_2 "\"offer-00000000000002\""
#define OFFER_ID_3 "\"offer-00000000000003\""
#define SDP_OFFER "{\"type\":\"offer\",\"sdp\":\"v=0\\r\\no=- 1 2 IN IP4 127.0.0.1\\r\\n\"}"

/* The same infohash as raw bytes, and the one every input's denylist holds. */
static const uint8_t sintel_ih[20] = {0x08, 0xad, 0xa5, 0xa7, 0xa6, 0x18, 0x3a, 0xae, 0x1e, 0x09,
                                      0xd8, 0x31, 0xdf, 0x67, 0x48, 0xd5, 0x66, 0x09, 0x5a, 0x10};
static const uint8_t denied_ih[20] = {0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
                                      0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22};

static const char *const st_scene[FUZZ_PEERS][2] = {
    {"{\"type\":\"ola\",\"peer_id\":\"peer-a\"}",
     "{\"type\":\"announce\",\"info_hash\":" SINTEL_HEX ",\"left\":0,\"event\":\"started\"}"},
    {"{\"type\":\"ola\",\"peer_id\":\"peer-b\"}",
     "{\"type\":\"announce\",\"info_hash\":" SINTEL_HEX ",\"left\":5,\"event\":\"started\"}"},
    {"{\"type\":\"ola\",\"peer_id\":\"peer-c\"}",
     "{\"type\":\"announce\",\"info_hash\":" SINTEL_HEX ",\"num_want\":10}"},
};

static const char *const wt_scene[FUZZ_PEERS] = {
    "{\"action\":\"announce\",\"info_hash\":" SINTEL_BIN ",\"peer_id\":" WT_A
    ",\"left\":0,\"event\":\"started\",\"numwant\":5,\"offers\":[]}",
    "{\"action\":\"announce\",\"info_hash\":" SINTEL_BIN ",\"peer_id\":" WT_B
    ",\"left\":100,\"event\":\"started\",\"numwant\":5,\"offers\":[{\"offer\":" SDP_OFFER
    ",\"offer_id\":" OFFER_ID_1 "},{\"offer\":" SDP_OFFER ",\"offer_id\":" OFFER_ID_2 "}]}",
    "{\"action\":\"announce\",\"info_hash\":" SINTEL_BIN ",\"peer_id\":" WT_C
    ",\"left\":null,\"numwant\":5,\"offers\":[{\"offer\":" SDP_OFFER ",\"offer_id\":" OFFER_ID_3
    "},{\"offer\":" SDP_OFFER ",\"offer_id\":" OFFER_ID_3 "}]}",
};

static server_t *srv;
static char db_path[FUZZ_DB_PATH_BYTES];
static unsigned long inputs;
/* Set from SIGTRACKER_FUZZ_TRACE: print every frame the server queues (to check seeds). */
static int trace;
static json_tok_t out_toks[FUZZ_OUT_TOKENS];

static void destroy_server(void) {
    fuzz_server_destroy(&srv, db_path);
}

static void create_server(void) {
    config_t cfg;
    config_defaults(&cfg);
    cfg.log_level = LOG_OFF;
    cfg.max_swarms = 16;
    cfg.max_scrape = 20;
    cfg.max_outbuf = 65536;
    /* No pings and no idle timeout: the expiry path must see its peers still connected. */
    cfg.ping_interval = 3600;
    cfg.idle_timeout = 0;
    srv = fuzz_server_create(&cfg, "fuzz-proto", db_path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    log_set_level(LOG_OFF);
    trace = getenv("SIGTRACKER_FUZZ_TRACE") != NULL;
    create_server();
    atexit(destroy_server);
    return 0;
}

/* ---- invariants (as in fuzz_conn.c) ---------------------------------------------------------- */

static void check_output(const conn_t *c) {
    const uint8_t *p = c->out.data;
    size_t n = c->out.len, off = 0;
    while (off < n) {
        CHECK(n - off >= 2);
        uint8_t b0 = p[off], b1 = p[off + 1];
        CHECK((b0 & 0xf0) == 0x80); /* FIN, no RSV bits */
        CHECK((b1 & 0x80) == 0);
        int op = b0 & 0x0f;
        uint64_t len = b1 & 0x7f;
        size_t h = 2;
        if (len == 126) {
            CHECK(n - off >= 4);
            len = (uint64_t)p[off + 2] << 8 | p[off + 3];
            CHECK(len > 125);
            h = 4;
        } else if (len == 127) {
            CHECK(n - off >= 10);
            len = 0;
            for (int i = 0; i < 8; i++)
                len = len << 8 | p[off + 2 + i];
            CHECK(len > 0xffff);
            h = 10;
        }
        CHECK(len <= n - off - h);
        const uint8_t *pl = p + off + h;
        if (trace)
            fprintf(stderr, "  -> conn %p op %d: %.*s\n", (const void *)c, op,
                    op == WS_OP_CLOSE ? 0 : (int)len, (const char *)pl);
        if (trace && op == WS_OP_CLOSE && len == 2)
            fprintf(stderr, "     close code %u\n", (unsigned)(pl[0] << 8 | pl[1]));
        if (op == WS_OP_TEXT) {
            CHECK(utf8_valid(pl, (size_t)len));
            int r = json_parse((const char *)pl, (size_t)len, out_toks, FUZZ_OUT_TOKENS,
                               FUZZ_OUT_DEPTH);
            if (r < 0)
                fprintf(stderr, "server wrote invalid JSON: %.*s\n", (int)len, (const char *)pl);
            CHECK(r >= 1);
            CHECK(out_toks[0].type == JSON_OBJECT);
        } else if (op == WS_OP_CLOSE) {
            CHECK(len == 2);
        } else {
            CHECK(op == WS_OP_PING || op == WS_OP_PONG);
            CHECK(len <= WS_MAX_CONTROL_PAYLOAD);
        }
        off += h + (size_t)len;
    }
}

static void check_invariants(server_t *s) {
    uint64_t members = 0, seeders = 0, peers = 0, conns = 0;
    for (conn_t *c = s->conns; c; c = c->next) {
        conns++;
        uint32_t mine = 0;
        for (swarm_member_t *m = MEMBERS(c); m; m = m->next_of_owner) {
            CHECK(m->owner == c->peer);
            CHECK(m->dialect == c->dialect);
            CHECK(m->index < m->swarm->count);
            CHECK(m->swarm->members[m->index] == m);
            CHECK(m->seeder == (m->index >= m->swarm->count - m->swarm->seeders));
            seeders += m->seeder;
            mine++;
        }
        CHECK(mine == NSWARMS(c));
        CHECK(mine <= s->cfg.max_swarms);
        members += mine;
        if (c->peer != NULL) {
            peers++;
            CHECK(c->peer->at.node == 0 &&
                  peers_resolve(s, c->peer->at.slot, c->peer->at.gen) == c);
            CHECK(registry_find(s->registry, c->peer->id, c->peer->len) == c->peer);
            if (c->dialect == DIALECT_WT)
                CHECK(c->peer->len == 20);
        }
        if (c->state == CONN_CLOSING || c->state == CONN_DRAIN) {
            CHECK(c->peer == NULL);
            CHECK(MEMBERS(c) == NULL);
        }
        CHECK(c->noffers <= c->offers_cap);
        check_output(c);
    }
    swarm_totals_t t = swarm_totals(s->swarms);
    CHECK(conns == s->nconns);
    CHECK(t.members == members);
    CHECK(t.seeders == seeders);
    CHECK(registry_count(s->registry) == peers);
}

/* ---- driving -------------------------------------------------------------------------------- */

static void drop_output(server_t *s) {
    for (conn_t *c = s->conns; c; c = c->next)
        conn_flush(s, c);
}

/* Sends p[0..n) as one masked frame of the given opcode (fed from a private buffer, since
 * conn_feed unmasks in place). */
static void send_message(server_t *s, conn_t *c, int opcode, const uint8_t *p, size_t n) {
    uint8_t *buf = malloc(n + 14);
    size_t h = 0;
    buf[h++] = (uint8_t)(0x80 | opcode);
    if (n <= 125) {
        buf[h++] = (uint8_t)(0x80 | n);
    } else if (n <= 0xffff) {
        buf[h++] = 0x80 | 126;
        buf[h++] = (uint8_t)(n >> 8);
        buf[h++] = (uint8_t)n;
    } else {
        buf[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            buf[h++] = (uint8_t)((uint64_t)n >> (8 * i));
    }
    static const uint8_t mask[4] = {0xa1, 0x07, 0x5e, 0x3c};
    memcpy(buf + h, mask, 4);
    h += 4;
    for (size_t i = 0; i < n; i++)
        buf[h + i] = p[i] ^ mask[i % 4];
    conn_feed(s, c, buf, h + n);
    fuzz_settle(s);
    free(buf);
}

static void send_str(server_t *s, conn_t *c, const char *json) {
    send_message(s, c, WS_OP_TEXT, (const uint8_t *)json, strlen(json));
    CHECK(c->state == CONN_WS); /* the scene's own messages are all valid */
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

static void reset_clock(server_t *s) {
    s->now = FUZZ_BASE_SECONDS;
    s->now_ms = FUZZ_BASE_SECONDS * 1000u;
    s->wall = FUZZ_BASE_WALL;
    s->next_tick = s->now + 1;
    s->next_flush_db = s->now + s->cfg.db_flush;
    rng_seed(&s->rng, 0x5eed);
}

/* Builds the scene; peers[] receives its connections (NULL where the scene has fewer). */
static void build_scene(server_t *s, int scene, conn_t *peers[FUZZ_PEERS]) {
    memset(peers, 0, FUZZ_PEERS * sizeof(*peers));
    switch (scene) {
    case 1:
        for (int i = 0; i < FUZZ_PEERS; i++) {
            peers[i] = open_upgraded(s);
            send_str(s, peers[i], st_scene[i][0]);
            send_str(s, peers[i], st_scene[i][1]);
        }
        send_str(s, peers[0],
                 "{\"type\":\"announce\",\"info_hash\":\"1111111111111111111111111111111111111111\""
                 ",\"left\":0}");
        CHECK(swarm_totals(s->swarms).members == 4);
        break;
    case 2:
        for (int i = 0; i < FUZZ_PEERS; i++) {
            peers[i] = open_upgraded(s);
            send_str(s, peers[i], wt_scene[i]);
        }
        CHECK(swarm_totals(s->swarms).members == 3);
        CHECK(peers[0]->noffers > 0);
        break;
    case 3:
        peers[0] = open_upgraded(s);
        send_str(s, peers[0], st_scene[0][0]);
        send_str(s, peers[0], st_scene[0][1]);
        peers[1] = open_upgraded(s);
        send_str(s, peers[1], wt_scene[1]);
        CHECK(swarm_totals(s->swarms).swarms == 1);
        CHECK(swarm_totals(s->swarms).members == 2);
        break;
    default:
        break;
    }
    check_invariants(s);
    drop_output(s);
}

/* Replaces the server's access list by a denylist of one infohash. */
static void deny_only(server_t *s, const uint8_t ih[20]) {
    acl_destroy(s->acl);
    s->acl = acl_create(ACL_DENY, &s->key);
    CHECK(acl_add(s->acl, ih) == 1);
}

/* As a reload that starts refusing the Sintel swarm: its peers leave it, the others stay. */
static void purge_sintel(server_t *s) {
    swarm_totals_t before = swarm_totals(s->swarms);
    swarm_t *w = swarm_find(s->swarms, sintel_ih);
    uint32_t in_sintel = w ? w->count : 0;
    deny_only(s, sintel_ih);
    uint64_t removed = tracker_enforce_access(s);
    CHECK(removed == in_sintel);
    CHECK(swarm_find(s->swarms, sintel_ih) == NULL);
    swarm_totals_t after = swarm_totals(s->swarms);
    CHECK(after.members == before.members - in_sintel);
    check_invariants(s);
    drop_output(s);
}

static void close_all(server_t *s) {
    for (conn_t *c = s->conns; c; c = c->next)
        conn_close(s, c, WS_CLOSE_GOING_AWAY, NULL);
    check_invariants(s);
    server_end_iteration(s);
    CHECK(s->conns == NULL && s->nconns == 0);
    CHECK(s->flush_list == NULL && s->close_list == NULL);
    swarm_totals_t t = swarm_totals(s->swarms);
    CHECK(t.swarms == 0 && t.members == 0 && t.seeders == 0);
    CHECK(registry_count(s->registry) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0)
        return 0;
    if (++inputs % FUZZ_RECREATE_EVERY == 0) {
        destroy_server();
        create_server();
    }
    server_t *s = srv;
    reset_clock(s);
    deny_only(s, denied_ih);
    uint8_t mode = data[0];
    int scene = mode & 3;
    int opcode = (mode & 4) ? WS_OP_BINARY : WS_OP_TEXT;
    int twice = (mode >> 3) & 1;
    int later = (mode >> 4) & 1;
    int expire = (mode >> 5) & 1;
    int who = mode >> 6;
    conn_t *peers[FUZZ_PEERS];
    build_scene(s, scene, peers);
    conn_t *from = who < FUZZ_PEERS && peers[who] ? peers[who] : open_upgraded(s);
    if (later) {
        s->now += s->cfg.min_interval + 1;
        s->now_ms += (s->cfg.min_interval + 1) * 1000u;
        s->wall += s->cfg.min_interval + 1;
    }
    send_message(s, from, opcode, data + 1, size - 1);
    check_invariants(s);
    drop_output(s);
    if (twice) {
        int next = who < FUZZ_PEERS ? (who + 1) % FUZZ_PEERS : 0;
        conn_t *again = peers[next] && peers[next]->state == CONN_WS ? peers[next] : from;
        if (again->state == CONN_WS) {
            send_message(s, again, opcode, data + 1, size - 1);
            check_invariants(s);
            drop_output(s);
        }
    }
    if (expire) {
        /* Past the peer timeout in steps of the tick, as the loop would run it. */
        for (uint32_t t = 0; t <= s->cfg.peer_timeout + 16; t += 8) {
            s->now += 8;
            s->now_ms += 8000;
            s->wall += 8;
            server_tick(s);
            check_invariants(s);
            server_end_iteration(s);
        }
    }
    purge_sintel(s);
    close_all(s);
    return 0;
}
