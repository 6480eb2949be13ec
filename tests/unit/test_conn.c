/* test_conn.c: drives the real connection state machine (src/server/conn.c and everything behind
 * it) without sockets: a server made by server_create (never listening), connections made with
 * fd = -1, bytes handed to conn_feed, and the output read from c->out before
 * server_end_iteration discards it. Each test checks at the end that every byte it allocated
 * through the counting allocator was given back. */
#include "unit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "core/alloc.h"
#include "core/log.h"
#include "json/json.h"
#include "proto/binstr.h"
#include "hub/peers.h"
#include "server/conn.h"
#include "server/server.h"
#include "ws/frame.h"

/* Frames one test may read from one output queue at once. */
#define MAX_OUT_FRAMES 64

/* The RFC 6455 section 1.3 sample key and its accept value. */
#define SAMPLE_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define SAMPLE_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

/* The swarms a connection's peer is in, and how many (none before it holds a peer ID). */
#define MEMBERS(c) ((c)->peer != NULL ? (c)->peer->members : NULL)
#define NSWARMS(c) ((c)->peer != NULL ? (c)->peer->nswarms : 0u)

static const char upgrade_request[] = "GET /announce HTTP/1.1\r\n"
                                      "Host: tracker.example:8000\r\n"
                                      "Upgrade: websocket\r\n"
                                      "Connection: Upgrade\r\n"
                                      "Sec-WebSocket-Key: " SAMPLE_KEY "\r\n"
                                      "Sec-WebSocket-Version: 13\r\n"
                                      "\r\n";

static const char expected_101[] = "HTTP/1.1 101 Switching Protocols\r\n"
                                   "Upgrade: websocket\r\n"
                                   "Connection: Upgrade\r\n"
                                   "Sec-WebSocket-Accept: " SAMPLE_ACCEPT "\r\n"
                                   "\r\n";

/* Section 1.8 of the protocol reference: the Sintel info_hash and an offer_id holding NUL, '"',
 * '\\', CR, LF, 0x7f, 0x80 and 0xff, as the client sends them (JSON.stringify, 7-bit form) and as
 * the server writes them (binstr_encode: \u00xx for everything outside printable ASCII). */
#define SINTEL_IN                                                                                  \
    "\"\\b\\u00ad\\u00a5\\u00a7\\u00a6\\u0018:"                                                    \
    "\\u00ae\\u001e\\t\\u00d81\\u00dfgH\\u00d5f\\tZ\\u0010\""
#define SINTEL_OUT                                                                                 \
    "\"\\u0008\\u00ad\\u00a5\\u00a7\\u00a6\\u0018:\\u00ae\\u001e\\u0009\\u00d81\\u00dfgH\\u00d5f"  \
    "\\u0009Z\\u0010\""
#define OFFER_ID_IN                                                                                \
    "\"\\u009f\\u001c.z\\u0000\\u00ff\\u0010\\u0080[\\\\\\\"1\\u007f\\r\\n\\u001b,=N_\""
#define OFFER_ID_OUT                                                                               \
    "\"\\u009f\\u001c.z\\u0000\\u00ff\\u0010\\u0080[\\\\\\\"1\\u007f\\u000d\\u000a\\u001b,=N_\""
#define PEER_A "\"-WW0208-k3J9xQ2mVbLp\""
#define PEER_B "\"-WW0208-Zt7uR1cPq0sN\""
#define OFFER_OBJ                                                                                  \
    "{\"type\":\"offer\",\"sdp\":\"v=0\\r\\no=- 4611731400430051336 2 IN IP4 127.0.0.1\\r\\n\"}"
#define ANSWER_OBJ "{\"type\":\"answer\",\"sdp\":\"v=0\\r\\n\"}"

typedef struct fixture {
    char dir[64];
    server_t *s;
    size_t heap0;
} fixture_t;

/* ---- server and connection helpers ---------------------------------------------------------- */

static server_t *make_server(fixture_t *f, void (*tweak)(config_t *)) {
    config_t cfg;
    config_defaults(&cfg);
    snprintf(cfg.db_path, sizeof(cfg.db_path), "%s/t.db", f->dir);
    if (tweak)
        tweak(&cfg);
    char err[256] = "";
    server_t *s = server_create(&cfg, err, sizeof(err));
    if (s == NULL)
        fail_msg("server_create: %s", err);
    f->s = s;
    return s;
}

static int setup(void **state) {
    fixture_t *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    strcpy(f->dir, "/tmp/sigtracker-test-conn.XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    log_set_level(LOG_OFF);
    f->heap0 = alloc_bytes_in_use();
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture_t *f = *state;
    if (f->s)
        server_destroy(f->s);
    size_t heap = alloc_bytes_in_use();
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    int rc = system(cmd);
    size_t heap0 = f->heap0;
    free(f);
    if (heap != heap0) {
        fprintf(stderr, "leak: %zu bytes allocated before the test, %zu after\n", heap0, heap);
        return -1;
    }
    return rc == 0 ? 0 : -1;
}

/* Feeds a copy of p[0..n) (conn_feed unmasks in place). */
static void feed(server_t *s, conn_t *c, const void *p, size_t n) {
    uint8_t *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    memcpy(copy, p, n);
    conn_feed(s, c, copy, n);
    free(copy);
}

/* Builds a client frame: masked unless mask is NULL. Returns its length. */
static size_t build_frame(uint8_t *out, int fin, int opcode, const void *payload, size_t n,
                          const uint8_t *mask) {
    size_t h = 0;
    out[h++] = (uint8_t)((fin ? 0x80 : 0) | opcode);
    uint8_t mbit = mask ? 0x80 : 0;
    if (n <= 125) {
        out[h++] = (uint8_t)(mbit | n);
    } else if (n <= 0xffff) {
        out[h++] = (uint8_t)(mbit | 126);
        out[h++] = (uint8_t)(n >> 8);
        out[h++] = (uint8_t)n;
    } else {
        out[h++] = (uint8_t)(mbit | 127);
        for (int i = 7; i >= 0; i--)
            out[h++] = (uint8_t)((uint64_t)n >> (8 * i));
    }
    if (mask) {
        memcpy(out + h, mask, 4);
        h += 4;
    }
    const uint8_t *p = payload;
    for (size_t i = 0; i < n; i++)
        out[h + i] = (uint8_t)(p[i] ^ (mask ? mask[i % 4] : 0));
    return h + n;
}

static const uint8_t test_mask[4] = {0x12, 0x34, 0x56, 0x78};

static void send_frame(server_t *s, conn_t *c, int fin, int opcode, const void *p, size_t n) {
    uint8_t *buf = malloc(n + 14);
    assert_non_null(buf);
    size_t len = build_frame(buf, fin, opcode, p, n, test_mask);
    conn_feed(s, c, buf, len);
    free(buf);
}

/* Lets what a message started finish, as the loop would before writing: database reads a
 * parked message waits for (scrapes), then resumed messages and reclaims. Output stays queued. */
static void settle(server_t *s) {
    for (int round = 0; round < 100 && s->store_wait.n > 0; round++) {
        struct pollfd pfd = {store_fd(s->store), POLLIN, 0};
        assert_true(poll(&pfd, 1, 5000) == 1);
        store_poll(s->store);
        server_settle(s);
    }
    assert_int_equal(s->store_wait.n, 0);
    server_settle(s);
}

static void send_text(server_t *s, conn_t *c, const char *json) {
    send_frame(s, c, 1, WS_OP_TEXT, json, strlen(json));
    settle(s);
}

/* A parsed server-to-client frame (pointing into c->out). */
typedef struct oframe {
    int fin, opcode;
    const uint8_t *p;
    size_t n;
} oframe_t;

/* Parses the frames of c->out from byte `start`; every byte must belong to a complete, unmasked
 * frame with no RSV bits. Returns the number of frames. */
static size_t out_frames(const conn_t *c, size_t start, oframe_t *f, size_t max) {
    size_t off = start, k = 0;
    while (off < c->out.len) {
        const uint8_t *b = c->out.data + off;
        size_t avail = c->out.len - off;
        assert_true(avail >= 2);
        assert_int_equal(b[0] & 0x70, 0);
        assert_int_equal(b[1] & 0x80, 0); /* server frames are never masked */
        size_t h = 2;
        uint64_t n = b[1] & 0x7f;
        if (n == 126) {
            assert_true(avail >= 4);
            n = (uint64_t)b[2] << 8 | b[3];
            assert_true(n > 125); /* shortest form */
            h = 4;
        } else if (n == 127) {
            assert_true(avail >= 10);
            n = 0;
            for (int i = 0; i < 8; i++)
                n = n << 8 | b[2 + i];
            assert_true(n > 0xffff);
            h = 10;
        }
        assert_true(n <= avail - h);
        assert_true(k < max);
        f[k].fin = b[0] >> 7;
        f[k].opcode = b[0] & 0x0f;
        f[k].p = b + h;
        f[k].n = (size_t)n;
        k++;
        off += h + (size_t)n;
    }
    return k;
}

/* Returns the text of the only frame in c->out (from byte start), which must be a text frame. */
static void expect_one_text(const conn_t *c, size_t start, const char *expect) {
    oframe_t f[MAX_OUT_FRAMES];
    size_t n = out_frames(c, start, f, MAX_OUT_FRAMES);
    if (n != 1)
        fail_msg("expected one frame, got %zu: [%.*s]", n, (int)(c->out.len - start),
                 (const char *)c->out.data + start);
    assert_int_equal(f[0].opcode, WS_OP_TEXT);
    assert_int_equal(f[0].fin, 1);
    if (expect != NULL && (f[0].n != strlen(expect) || memcmp(f[0].p, expect, f[0].n) != 0))
        fail_msg("got [%.*s]\nexpected [%s]", (int)f[0].n, (const char *)f[0].p, expect);
}

/* Checks that the text frame f holds a JSON object whose field key is the string lit. */
static int frame_has(const oframe_t *f, const char *key, const char *lit) {
    json_tok_t t[256];
    int n = json_parse((const char *)f->p, f->n, t, 256, 16);
    if (n < 1 || t[0].type != JSON_OBJECT)
        return 0;
    int i = json_obj_get((const char *)f->p, t, 0, key);
    if (i < 0)
        return 0;
    if (lit == NULL)
        return 1;
    return t[i].type == JSON_STRING && json_str_eq((const char *)f->p, &t[i], lit);
}

/* Discards the output of every connection through conn_flush, which for fd -1 does what a
 * complete write would (it also resets the partly-written-frame mark). */
static void drop_output(server_t *s) {
    for (conn_t *c = s->conns; c; c = c->next)
        conn_flush(s, c);
}

/* A new connection that has completed the upgrade, with its output emptied. */
static conn_t *ws_conn(server_t *s) {
    conn_t *c = conn_create(s, -1, NULL, 0, 0);
    assert_non_null(c);
    feed(s, c, upgrade_request, sizeof(upgrade_request) - 1);
    assert_int_equal(c->state, CONN_WS);
    assert_true(c->out.len >= sizeof(expected_101) - 1);
    assert_memory_equal(c->out.data, expected_101, sizeof(expected_101) - 1);
    conn_flush(s, c);
    return c;
}

/* An ST connection identified as id; output emptied. */
static conn_t *st_peer(server_t *s, const char *id) {
    conn_t *c = ws_conn(s);
    char msg[128];
    snprintf(msg, sizeof(msg), "{\"type\":\"ola\",\"peer_id\":\"%s\"}", id);
    send_text(s, c, msg);
    assert_non_null(c->peer);
    assert_int_equal(c->dialect, DIALECT_ST);
    conn_flush(s, c);
    return c;
}

/* Checks the server-wide invariants: swarm members and registry entries match the connections. */
static void check_invariants(server_t *s) {
    uint64_t members = 0, peers = 0, n = 0;
    for (conn_t *c = s->conns; c; c = c->next) {
        n++;
        uint32_t mine = 0;
        for (swarm_member_t *m = MEMBERS(c); m; m = m->next_of_owner) {
            assert_ptr_equal(m->owner, c->peer);
            assert_ptr_equal(m->swarm->members[m->index], m);
            mine++;
        }
        assert_int_equal(mine, NSWARMS(c));
        members += mine;
        if (c->peer) {
            peers++;
            assert_ptr_equal(peers_resolve(s, c->peer->at.slot, c->peer->at.gen), c);
            assert_int_equal(c->peer->at.node, 0);
            assert_ptr_equal(registry_find(s->registry, c->peer->id, c->peer->len), c->peer);
        }
        if (c->state == CONN_CLOSING || c->state == CONN_DRAIN) {
            assert_null(c->peer);
            assert_null(MEMBERS(c));
        }
    }
    assert_int_equal(n, s->nconns);
    assert_int_equal(swarm_totals(s->swarms).members, members);
    assert_int_equal(registry_count(s->registry), peers);
}

/* ---- HTTP upgrade -----------------------------------------------------------------------------
 */

static void test_upgrade_101(void **state) {
    fixture_t *f = *state;
    server_t *s = make_server(f, NULL);
    conn_t *c = conn_create(s, -1, NULL, 0, 0);
    assert_non_null(c);
    assert_int_equal(c->state, CONN_HTTP);
    assert_int_equal(s->nconns, 1);
    feed(s, c, upgrade_request, sizeof(upgrade_request) - 1);
    assert_int_equal(c->state, CONN_WS);
    assert_int_equal(c->out.len, sizeof(expected_101) - 1);
    assert_memory_equal(c->out.data, expected_101, sizeof(expected_101) - 1);
    server_end_iteration(s);
    assert_int_equal(c->out.len, 0); /* discarded for fd -1 */
    assert_int_equal(s->nconns, 1);
    conn_close(s, c, WS_CLOSE_GOING_AWAY, NULL);
    server_end_iteration(s);
    assert_int_equal(s->nconns, 0);
}

/* The request head arrives one byte at a time; a frame follows in the same last read. */
static void test_upgrade_byte_by_byte(void **state) {
    fixture_t *f = *state;
    server_t *s = make_server(f, NULL);
    conn_t *c = conn_create(s, -1, NULL, 0, 0);
    size_t n = sizeof(upgrade_request) - 1;
    for (size_t i = 0; i + 1 < n; i++) {
        feed(s, c, upgrade_request + i, 1);
        assert_int_equal(c->state, CONN_HTTP);
        assert_int_equal(c->out.len, 0);
    }
    uint8_t buf[256];
    buf[0] = (uint8_t)upgrade_request[n - 1];
    static const char ping[] = "{\"type\":\"ping\"}";
    size_t fl = build_frame(buf + 1, 1, WS_OP_TEXT, ping, strlen(ping), test_mask);
    conn_feed(s, c, buf, fl + 1);
    assert_int_equal(c->state, CONN_WS);
    assert_memory_equal(c->out.data, expected_101, sizeof(expected_101) - 1);
    expect_one_text(c, sizeof(expected_101) - 1, "{\"type\":\"pong\"}");
    assert_int_equal(c->in.len, 0);
}

static void test_http_health_and_errors(void **state) {
    fixture_t *f = *state;
    server_t *s = make_server(f, NULL);
    conn_t *c = conn_create(s, -1, NULL, 0, 0);
    static const char health[] = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
    feed(s, c, health, sizeof(health) - 1);
    assert_int_equal(c->state, CONN_CLOSING);
    assert_true(c->out.len > 0);
    assert_memory_equal(c->out.data, "HTTP/1.1 200 OK\r\n", 17);
    assert_memory_equal(c->out.data + c->out.len - 3, "ok\n", 3);
    /* Bytes after the decision to close are ignored. */
    feed(s, c, health, sizeof(health) - 1);
    assert_memory_equal(c->out.data + c->out.len - 3, "ok\n", 3);

    conn_t *c2 = conn_create(s, -1, NULL, 0, 0);
    static const char bad[] = "BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n";
    feed(s, c2, bad, sizeof(bad) - 1);
    assert_int_equal(c2->state, CONN_CLOSING);
    assert_memory_equal(c2->out.data, "HTTP/1.1 405", 12);

    conn_t *c3 = conn_create(s, -1, NULL, 0, 0);
    static const char v12[] = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                              "Connection: Upgrade\r\nSec-WebSocket-Key: " SAMPLE_KEY "\r\n"
                              "Sec-WebSocket-Version: 12\r\n\r\n";
    feed(s, c3, v12, sizeof(v12) - 1);
    assert_int_equal(c3->state, CONN_CLOSING);
    assert_memory_equal(c3->out.data, "HTTP/1.1 426", 12);
    assert_non_null(memmem(c3->out.data, c3->out.len, "Sec-WebSocket-Version: 13\r\n", 27));

    conn_t *c4 = conn_create(s, -1, NULL, 0, 0);
    static const char stats[] = "GET /stats.json HTTP/1.1\r\nHost: x\r\n\r\n";
    feed(s, c4, stats, sizeof(stats) - 1);
    assert_memory_equal(c4->out.data, "HTTP/1.1 200 OK\r\n", 17);
    assert_non_null(memmem(c4->out.data, c4->out.len, "\"connections\":4", 15));

    server_end_iteration(s);
    assert_int_equal(s->nconns, 0);
}

/* GET path on a new connection (admin or public) and returns it (closing, its answer queued). */
static conn_t *http_get(server_t *s, const char *path, int admin) {
    conn_t *c = conn_create(s, -1, NULL, 0, admin ? CF_ADMIN : 0);
    char req[256];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
    feed(s, c, req, (size_t)n);
    assert_int_equal(c->state, CONN_CLOSING);
    return c;
}

static void no_public_metrics(config_t *cfg) {
    cfg->public_metrics = 0;
}

/* /metrics, /dashboard and /dashboard.json: served on the public port by default, on admin
 * connections always; with public-metrics off the public port answers 404 (but /health). */
static void test_http_monitoring(void **state) {
    fixture_t *f = *state;
    server_t *s = make_server(f, NULL);
    conn_t *c = http_get(s, "/metrics", 0);
    assert_memory_equal(c->out.data, "HTTP/1.1 200 OK\r\n", 17);
    static const char ctype[] = "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n";
    assert_non_null(memmem(c->out.data, c->out.len, ctype, sizeof(ctype) - 1));
    assert_non_null(memmem(c->out.data, c->out.len, "\n# TYPE sigtracker_connections gauge\n", 37));
    c = http_get(s, "/dashboard", 0);
    assert_memory_equal(c->out.data, "HTTP/1.1 200 OK\r\n", 17);
    assert_non_null(memmem(c->out.data, c->out.len, "<!doctype html>", 15));
    assert_non_null(
        memmem(c->out.data, c->out.len, "Content-Security-Policy: default-src 'none'", 43));
    c = http_get(s, "/dashboard.json", 0);
    assert_non_null(memmem(c->out.data, c->out.len, "\"top\":[]}", 9));
    server_end_iteration(s);
    server_destroy(s);

    s = make_server(f, no_public_metrics);
    static const char *const paths[] = {"/metrics", "/stats.json", "/dashboard", "/dashboard.json"};
    for (size_t i = 0; i < 4; i++) {
        c = http_get(s, paths[i], 0);
        assert_memory_equal(c->out.data, "HTTP/1.1 404", 12);
        c = http_get(s, paths[i], 1);
        assert_memory_equal(c->out.data, "HTTP/1.1 200 OK\r\n", 17);
    }
    c = http_get(s, "/health", 0);
    assert_memory_equal(c->out.data, "HTTP/1.1 200 OK\r\n", 17);
    /* No WebSocket on the admin listener. */
    conn_t *up = conn_create(s, -1, NULL, 0, CF_ADMIN);
    static const char upgrade[] = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                                  "Connection: Upgrade\r\nSec-WebSocket-Key: " SAMPLE_KEY "\r\n"
                                  "Sec-WebSocket-Version: 13\r\n\r\n";
    feed(s, up, upgrade, sizeof(upgrade) - 1);
    assert_memory_equal(up->out.data, "HTTP/1.1 403", 12);
    server_end_iteration(s);
    assert_int_equal(s->nconns, 0);
    assert_int_equal(s->nadmin, 0);
}

/* RFC 9112 section 3.2: an HTTP/1.1 request without its one Host is refused with 400 before
 * anything else, an upgrade included; HTTP/1.0 may leave it out. */
static void test_host_required(void **state) {
    fixture_t *f = *state;
    server_t *s = make_server(f, NULL);
    static const char *const refused[] = {
        "GET /announce HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: " SAMPLE_KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n",
        "GET /announce HTTP/1.1\r\nHost: a\r\nHost: b\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: " SAMPLE_KEY
        "\r\nSec-WebSocket-Version: 13\r\n\r\n",
        "GET /health HTTP/1.1\r\n\r\n",
        "BREW /pot HTTP/1.1\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        conn_t *c = conn_create(s, -1, NULL, 0, 0);
        feed(s, c, refused[i], strlen(refused[i]));
        assert_int_equal(c->state, CONN_CLOSING);
        assert_memory_equal(c->out.data, "HTTP/1.1 400", 12);
        assert_non_null(memmem(c->out.data, c->out.len, "Host", 4));
    }
    conn_t *c = conn_create(s, -1, NULL, 0, 0);
    static const char old[] = "GET /health HTTP/1.0\r\n\r\n";
    feed(s, c, old, sizeof(old) - 1);
    assert_memory_equal(c->out.data, "HTTP/1.1 200 OK\r\n", 17);
    server_end_iteration(s);
    assert_int_equal(s->nconns, 0);
}

/* ---- the PROXY protocol stage ------------------------------------------------------------------
 */

/* Test connections have no address, which reads as "::": trusting it sends them through the
 * PROXY stage. Two connections per address. */
static void tweak_trust_unspecified(config_t *cfg) {
    snprintf(cfg->trusted_proxies, sizeof(cfg->trusted_proxies), "%s", "192.0.2.250, ::");
    cfg->max_per_ip = 2;
}

/* Builds a v2 PROXY header for TCP over IPv4 from a.b.c.d port 40000 into out (28 bytes). */
static size_t v2_tcp4(uint8_t *out, uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
    static const uint8_t head[16] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51,
                                     0x55, 0x49, 0x54, 0x0A, 0x21, 0x11, 0x00, 0x0C};
    memcpy(out, head, 16);
    const uint8_t addrs[12] = {a, b, c, d, 10, 0, 0, 1, 0x9c, 0x40, 0x01, 0xbb};
    memcpy(out + 16, addrs, 12);
    return 28;
}

/* Feeds a header and then the upgrade request, in one piece. */
static void feed_with_upgrade(server_t *s, conn_t *c, const void *hdr, size_t n,
                              const char *request) {
    uint8_t buf[1024];
    size_t rn = strlen(request);
    assert_true(n + rn <= sizeof(buf));
    memcpy(buf, hdr, n);
    memcpy(buf + n, request, rn);
    feed(s, c, buf, n + rn);
}

static const char upgrade_with_xff[] = "GET /announce HTTP/1.1\r\n"
                                       "Host: tracker.example:8000\r\n"
                                       "Upgrade: websocket\r\n"
                                       "Connection: Upgrade\r\n"
                                       "Sec-WebSocket-Key: " SAMPLE_KEY "\r\n"
                                       "Sec-WebSocket-Version: 13\r\n"
                                       "X-Forwarded-For: 198.51.100.1\r\n"
                                       "\r\n";

static void test_proxy_header_sets_client(void **state) {
    fixture_t *f = *state;
    server_t *s = make_server(f, tweak_trust_unspecified);
    static const char v1[] = "PROXY TCP4 203.0.113.9 10.0.0.1 51000 443\r\n";
    uint8_t v2[64];

    /* v1: the connection now counts as 203.0.113.9, not as the proxy. */
    conn_t *a = conn_create(s, -1, NULL, 0, 0);
    assert_int_equal(a->state, CONN_PROXY);
    assert_true(a->flags & CF_TRUSTED);
    feed_with_upgrade(s, a, v1, sizeof(v1) - 1, upgrade_request);
    assert_int_equal(a->state, CONN_WS);
    assert_memory_equal(a->out.data, expected_101, sizeof(expected_101) - 1);
    assert_false(a->flags & CF_TRUSTED);
    assert_int_equal(s->count.proxy_headers, 1);
    assert_int_equal(s->ips.count, 1); /* the proxy's own entry went with its last connection */

    /* v2, one byte at a time: the same client, so the same entry. */
    conn_t *b = conn_create(s, -1, NULL, 0, 0);
    size_t n = v2_tcp4(v2, 203, 0, 113, 9);
    for (size_t i = 0; i < n; i++) {
        feed(s, b, v2 + i, 1);
        assert_int_equal(b->state, i + 1 < n ? CONN_PROXY : CONN_HTTP);
    }
    feed(s, b, upgrade_request, sizeof(upgrade_request) - 1);
    assert_int_equal(b->state, CONN_WS);
    assert_ptr_equal(b->ip, a->ip);
    assert_int_equal(s->count.proxy_headers, 2);

    /* A third connection of 203.0.113.9 is over --max-per-ip 2: 503, as at accept. */
    conn_t *c = conn_create(s, -1, NULL, 0, 0);
    feed_with_upgrade(s, c, v1, sizeof(v1) - 1, upgrade_request);
    assert_int_equal(c->state, CONN_CLOSING);
    assert_memory_equal(c->out.data, "HTTP/1.1 503", 12);
    assert_non_null(memmem(c->out.data, c->out.len, "Retry-After: 30\r\n", 17));
    assert_int_equal(s->count.refused, 1);

    /* Another client is served. */
    conn_t *d = conn_create(s, -1, NULL, 0, 0);
    n = v2_tcp4(v2, 203, 0, 113, 10);
    feed_with_upgrade(s, d, v2, n, upgrade_request);
    assert_int_equal(d->state, CONN_WS);
    assert_ptr_not_equal(d->ip, a->ip);

    /* After a PROXY header the bytes are the client's: its X-Forwarded-For is not believed. */
    conn_t *e = conn_create(s, -1, NULL, 0, 0);
    n = v2_tcp4(v2, 203, 0, 113, 10);
    feed_with_upgrade(s, e, v2, n, upgrade_with_xff);
    assert_int_equal(e->state, CONN_WS);
    assert_ptr_equal(e->ip, d->ip);

    /* A trusted connection without a header is served as before: X-Forwarded-For applies. */
    conn_t *g = conn_create(s, -1, NULL, 0, 0);
    feed(s, g, upgrade_with_xff, sizeof(upgrade_with_xff) - 1);
    assert_int_equal(g->state, CONN_WS);
    assert_ptr_not_equal(g->ip, d->ip);
    assert_int_equal(s->count.proxy_headers, 5); /* c's header was taken, then refused */
    assert_int_equal(s->count.proxy_kept, 0);

    server_end_iteration(s);
    assert_int_equal(s->nconns, 5);
    for (conn_t *x = s->conns; x; x = x->next)
        conn_close(s, x, WS_CLOSE_GOING_AWAY, NULL);
    server_end_iteration(s);
    assert_int_equal(s->nconns, 0);
    assert_int_equal(s->ips.count, 0);
}

static void test_proxy_header_keeps_address(void **state) {
    fixture_t *f = *state;
    server_t *s = make_server(f, tweak_trust_unspecified);
    conn_t *waiting = conn_create(s, -1, NULL, 0, 0); /* holds the proxy's own entry */

    /* v2 LOCAL, a health check of the proxy's: its own address, still trusted. */
    static const uint8_t local[16] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51,
                                      0x55, 0x49, 0x54, 0x0A, 0x20, 0x00, 0x00, 0x00};
    conn_t *h = conn_create(s, -1, NULL, 0, 0);
    feed_with_upgrade(s, h, local, sizeof(local), "GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_memory_equal(h->out.data, "HTTP/1.1 200 OK\r\n", 17);
    assert_ptr_equal(h->ip, waiting->ip);
    assert_true(h->flags & CF_TRUSTED);
    assert_int_equal(s->count.proxy_kept, 1);
    server_end_iteration(s); /* h is gone */

    /* v1 UNKNOWN: a client's connection the proxy cannot describe. It stays on the proxy's
     * address, and the client's X-Forwarded-For is not believed. */
    static const char unknown[] = "PROXY UNKNOWN\r\n";
    conn_t *u = conn_create(s, -1, NULL, 0, 0);
    feed_with_upgrade(s, u, unknown, sizeof(unknown) - 1, upgrade_with_xff);
    assert_int_equal(u->state, CONN_WS);
    assert_ptr_equal(u->ip, waiting->ip);
    assert_false(u->flags & CF_TRUSTED);
    assert_int_equal(s->count.proxy_kept, 2);
    assert_int_equal(s->count.proxy_headers, 0);
    /* The proxy's address now has two connections, its cap: a third that names no client is
     * refused (it is no longer a trusted proxy's, whose handshakes are not held to the cap). */
    conn_t *u2 = conn_create(s, -1, NULL, 0, 0);
    feed(s, u2, unknown, sizeof(unknown) - 1);
    assert_int_equal(u2->state, CONN_CLOSING);
    assert_memory_equal(u2->out.data, "HTTP/1.1 503", 12);
    server_end_iteration(s);
}

static void test_proxy_header_refused(void **state) {
    fixture_t *f = *state;
    server_t *s = make_server(f, tweak_trust_unspecified);
    static const char *const malformed[] = {
        "PROXY TCP4 203.0.113.9 10.0.0.1 99999 443\r\n", /* port out of range */
        "PROXY TCP4 203.0.113.9 10.0.0.1 1 443\n",       /* bare LF */
        "PROXYTCP4",                                     /* broken signature */
        "\r\n\r\nGET / HTTP/1.1\r\n",                    /* broken v2 signature */
    };
    for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
        conn_t *c = conn_create(s, -1, NULL, 0, 0);
        feed_with_upgrade(s, c, malformed[i], strlen(malformed[i]), upgrade_request);
        assert_int_equal(c->state, CONN_CLOSING);
        assert_true(c->flags & CF_GONE);
        assert_int_equal(c->out.len, 0); /* closed without an answer */
        assert_int_equal(s->count.proxy_malformed, i + 1);
    }
    /* A second header after the first is a client posing as the proxy. */
    static const char twice[] = "PROXY TCP4 203.0.113.9 10.0.0.1 1 443\r\n"
                                "PROXY TCP4 198.51.100.7 10.0.0.1 1 443\r\n";
    conn_t *c = conn_create(s, -1, NULL, 0, 0);
    feed(s, c, twice, sizeof(twice) - 1);
    assert_int_equal(c->state, CONN_CLOSING);
    assert_int_equal(c->out.len, 0);
    assert_int_equal(s->count.proxy_untrusted, 1);
    assert_int_equal(s->count.proxy_headers, 1);

    /* A header that never ends is closed by the handshake timeout. */
    conn_t *slow = conn_create(s, -1, NULL, 0, 0);
    feed(s, slow, "PROXY TCP4 203.0", 16);
    assert_int_equal(slow->state, CONN_PROXY);
    uint64_t timeouts = s->count.timeouts;
    server_end_iteration(s);
    assert_int_equal(s->nconns, 1);
    s->now += s->cfg.handshake_timeout + 1;
    server_tick(s);
    server_end_iteration(s);
    assert_int_equal(s->nconns, 0);
    assert_int_equal(s->count.timeouts, timeouts + 1);
}

/* Without --trusted-proxy a PROXY header is refused: closed without an answer, counted. */
static void test_proxy_header_untrusted(void **state) {
    fixture_t *f = *state;
    server_t *s = make_server(f, NULL);
    static const char v1[] = "PROXY TCP4 203.0.113.9 10.0.0.1 51000 443\r\n";
    uint8_t v2[64];
    conn_t *a = conn_create(s, -1, NULL, 0, 0);
    assert_int_equal(a->state, CONN_HTTP);
    feed_with_upgrade(s, a, v1, sizeof(v1) - 1, upgrade_request);
    assert_int_equal(a->state, CONN_CLOSING);
    assert_int_equal(a->out.len, 0);
    conn_t *b = conn_create(s, -1, NULL, 0, 0);
    size_t n = v2_tcp4(v2, 203, 0, 113, 9);
    feed_with_upgrade(s, b, v2, n, upgrade_request);
    assert_int_equal(b->state, CONN_CLOSING);
    assert_int_equal(b->out.len, 0);
    assert_int_equal(s->count.proxy_untrusted, 2);
    assert_int_equal(s->count.proxy_headers, 0);
    server_end_iteration(s);
    assert_int_equal(s->nconns, 0);
}

/* Returns the bytes waiting to be read in fd. */
static int pending_bytes(int fd) {
    int n = -1;
    assert_int_equal(ioctl(fd, FIONREAD, &n), 0);
    return n;
}

/* Writes p[0..n) into fd, all of it. */
static void write_all(int fd, const void *p, size_t n) {
    assert_int_equal(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* On a socket the stage only peeks until the header is whole, then consumes exactly the header:
 * the next reader starts at the first byte after it. */
static void test_proxy_socket(void **state) {
    fixture_t *f = *state;
    server_t *s = make_server(f, tweak_trust_unspecified);
    int sv[2];
    uint8_t v2[64];

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    conn_t *c = conn_create(s, sv[0], NULL, 0, 0);
    assert_int_equal(conn_watch(s, c), 0);
    assert_true(c->flags & CF_EDGE);
    size_t n = v2_tcp4(v2, 203, 0, 113, 9);
    /* Half a header: nothing is taken from the socket. */
    write_all(sv[1], v2, 10);
    conn_on_readable(s, c);
    assert_int_equal(c->state, CONN_PROXY);
    assert_int_equal(pending_bytes(sv[0]), 10);
    assert_int_equal(c->in.len, 0);
    /* The rest and the upgrade: the header is consumed, then HTTP reads on. */
    write_all(sv[1], v2 + 10, n - 10);
    write_all(sv[1], upgrade_request, sizeof(upgrade_request) - 1);
    conn_on_readable(s, c);
    assert_int_equal(c->state, CONN_WS);
    assert_false(c->flags & CF_EDGE);
    assert_int_equal(pending_bytes(sv[0]), 0);
    assert_int_equal(s->count.proxy_headers, 1);
    server_end_iteration(s);
    char got[sizeof(expected_101)];
    assert_int_equal(recv(sv[1], got, sizeof(got) - 1, 0), (ssize_t)sizeof(expected_101) - 1);
    assert_memory_equal(got, expected_101, sizeof(expected_101) - 1);
    close(sv[1]);

    /* No header: not a byte is consumed by the stage. */
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    conn_t *d = conn_create(s, sv[0], NULL, 0, 0);
    assert_int_equal(conn_watch(s, d), 0);
    static const char health[] = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
    write_all(sv[1], health, sizeof(health) - 1);
    conn_on_readable(s, d);
    assert_int_equal(d->state, CONN_CLOSING);
    assert_memory_equal(d->out.data, "HTTP/1.1 200 OK\r\n", 17);
    assert_int_equal(s->count.bytes_in, n + sizeof(upgrade_request) - 1 + sizeof(health) - 1);
    close(sv[1]);

    /* A malformed header: closed, the socket unread. */
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    conn_t *e = conn_create(s, sv[0], NULL, 0, 0);
    assert_int_equal(conn_watch(s, e), 0);
    write_all(sv[1], "PROXY TCP9\r\n", 12);
    conn_on_readable(s, e);
    assert_int_equal(e->state, CONN_CLOSING);
    assert_int_equal(s->count.proxy_malformed, 1);
    server_end_iteration(s);
    char b;
    ssize_t r = recv(sv[1], &b, 1, 0);
    assert_true(r == 0 || (r < 0 && errno == ECONNRESET));
    close(sv[1]);

    /* The peer leaves with half a header. */
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    conn_t *g = conn_create(s, sv[0], NULL, 0, 0);
    assert_int_equal(conn_watch(s, g), 0);
    close(sv[1]);
    conn_on_readable(s, g);
    assert_true(g->flags & CF_GONE);
    server_end_iteration(s);
    for (conn_t *x = s->conns; x; x = x->next)
        conn_close(s, x, WS_CLOSE_GOING_AWAY, NULL);
    server_end_iteration(s);
    server_end_iteration(s);
}

/* ---- WebSocket framing ------------------------------------------------------------------------
 */

static void test_ola_answer(void **state) {
    fixture_t *f = *state;
    server_t *s = make_server(f, NULL);
    conn_t *c = ws_conn(s);
    send_text(s, c, "{\"type\":\"ola\",\"peer_id\":\"alice\"}");
    oframe_t fr[MAX_OUT_FRAMES];
    assert_int_equal(out_frames(c, 0, fr, MAX_OUT_FRAMES), 1);
    assert_int_equal(fr[0].opcode, WS_OP_TEXT);
    /* {"type":"ola","ok":true,"peer_id":"alice","token":"<32 hex>","interval":120} */
    static const char head[] = "{\"type\":\"ola\",\"ok\":true,\"peer_id\":\"alice\",\"token\":\"";
    static const char tail[] = "\",\"interval\":120}";
    assert_int_equal(fr[0].n, strlen(head) + 32 + strlen(tail));
    assert_memory_equal(fr[0].p, head, strlen(head));
    for (size_t i = 0; i < 32; i++)
        assert_non_null(strchr("0123456789abcdef", fr[0].p[strlen(head) + i]));
    assert_memory_equal(fr[0].p + strlen(head) + 32, tail, strlen(tail));
    assert_int_equal(c->dialect, DIALECT_ST);
    assert_non_null(c->peer);
    assert_int_equal(registry_count(s->registry), 1);
    check_invariants(s);
    server_end_iteration(s);
    assert_int_equal(s->nconns, 1);
}

static void test_ping_pong(void **state) {
    fixture_t *f = *state;
    server_t *s = make_server(f, NULL);
    conn_t *c = ws_conn(s);
    send_frame(s, c, 1, WS_OP_PING, "abc", 3);
    oframe_t fr[MAX_OUT_FRAMES];
    assert_int_equal(out_frames(c, 0, fr, MAX_OUT_FRAMES), 1);
    assert_int_equal(fr[0].opcode, WS_OP_PONG);
    assert_int_equal(fr[0].fin, 1);
    assert_int_equal(fr[0].n, 3);
    assert_memory_equal(fr[0].p, "abc", 3);
    conn_flush(s, c);
    /* An empty ping and a 125-byte ping (the control maximum). */
    send_frame(s, c, 1, WS_OP_PING, "", 0);
    char big[125];
    memset(big, 'p', sizeof(big));
    send_frame(s, c, 1, WS_OP_PING, big, sizeof(big));
    assert_int_equal(out_frames(c, 0, fr, MAX_OUT_FRAMES), 2);
    assert_int_equal(fr[0].n, 0);
    assert_int_equal(fr[1].n, 125);
    assert_memory_equal(fr[1].p, big, 125);
    /* A pong from the client clears an outstanding ping and produces nothing. */
    conn_flush(s, c);
    c->flags |= CF_PING_SENT;
    send_frame(s, c, 1, WS_OP_PONG, "", 0);
    assert_int_equal(c->out.len, 0);
    assert_false(c->flags & CF_PING_SENT);
    assert_int_equal(c->state, CONN_WS);
}

/* Checks that c->out holds, from start, an optional ST bye and then a close frame with code. */
static void expect_closed_with(const conn_t *c, uint16_t code, const char *bye) {
    oframe_t fr[MAX_OUT_FRAMES];
    size_t n = out_frames(c, 0, fr, MAX_OUT_FRAMES);
    assert_int_equal(c->state, CONN_CLOSING);
    assert_true(n >= 1);
    const oframe_t *cl = &fr[n - 1];
    assert_int_equal(cl->opcode, WS_OP_CLOSE);
    assert_int_equal(cl->n, 2);
    assert_int_equal(cl->p[0] << 8 | cl->p[1], code);
    if (bye != NULL) {
        assert_int_equal(n, 2);
        assert_int_equal(fr[0].opcode, WS_OP_TEXT);
        char expect[128];
        snprintf(expect, sizeof(expect), "{\"type\":\"bye\",\"reason\":\"%s\"}", bye);
        assert_int_equal(fr[0].n, strlen(expect));
        assert_memory_equal(fr[0].p, expect, fr[0].n);
    } else {
        assert_int_equal(n, 1);
    }
}

static void test_unmasked_frame_closes_1002(void **state) {
    fixture_t *f = *state;
    server_t *s = make_server(f, NULL);
    conn_t *c = st_peer(s, "alice");
    uint8_t buf[64];
    static const char msg[] = "{\"type\":\"ping\"}";
    size_t n = build_frame(buf, 1, WS_OP_TEXT, msg, strlen(msg), NULL);
    conn_feed(s, c, buf, n);
    expect_closed_with(c, WS_CLOSE_PROTOCOL, "protocol_error");
    /* Closing released the peer ID at once. */
    assert_null(c->peer);
    assert_int_equal(registry_count(s->registry), 0);
    assert_int_equal(s->count.protocol_errors, 1);
    /* Further input is ignored. */
    send_text(s, c, msg);
    expect_closed_with(c, WS_CLOSE_PROTOCOL, "protocol_error");
    check_invariants(s);
    server_end_iteration(s);
    assert_int_equal(s->nconns, 0);
    assert_null(s->conns);
}

static void test_bad_frames(void **state) {
    fixture_t *f = *state;
    server_t *s = make_server(f, NULL);
    /* RSV1 set. */
    conn_t *c = ws_conn(s);
    uint8_t buf[300];
    size_t n = build_frame(buf, 1, WS_OP_TEXT, "{}", 2, test_mask);
    buf[0] |= 0x40;
    conn_feed(s, c, buf, n);
    expect_closed_with(c, WS_CLOSE_PROTOCOL, "protocol_error");
    /* An unknown opcode. */
    c = ws_conn(s);
    n = build_frame(buf, 1, 3, "{}", 2, test_mask);
    conn_feed(s, c, buf, n);
    expect_closed_with(c, WS_CLOSE_PROTOCOL, "protocol_error");
    /* A fragmented ping. */
    c = ws_conn(s);
    n = build_frame(buf, 0, WS_OP_PING, "x", 1, test_mask);
    conn_feed(s, c, buf, n);
    expect_closed_with(c, WS_CLOSE_PROTOCOL, "protocol_error");
    /* A continuation with no message. */
    c = ws_conn(s);
    send_frame(s, c, 1, WS_OP_CONT, "x", 1);
    expect_closed_with(c, WS_CLOSE_PROTOCOL, "protocol_error");
    /* A new message inside a fragmented one. */
    c = ws_conn(s);
    send_frame(s, c, 0, WS_OP_TEXT, "{", 1);
    send_frame(s, c, 1, WS_OP_TEXT, "{}", 2);
    expect_closed_with(c, WS_CLOSE_PROTOCOL, "protocol_error");
    /* Text that is not UTF-8. */
    c = ws_conn(s);
    send_frame(s, c, 1, WS_OP_TEXT, "\"\xc3\x28\"", 4);
    expect_closed_with(c, WS_CLOSE_INVALID_DATA, "protocol_error");
    check_invariants(s);
    server_end_iteration(s);
    assert_int_equal(s->nconns, 0);
}

static void tweak_small_message(config_t *cfg) {
    cfg->max_frame = 200;
    cfg->max_message = 300;
}

static void test_too_big(void **state) {
    fixture_t *f = *state;
    server_t *s = make_server(f, tweak_small_message);
    char big[400];
    memset(big, ' ', sizeof(big));
    /* One frame over --max-frame: refused from its header alone. */
    conn_t *c = ws_conn(s);
    uint8_t hdr[8] = {0x81, 0x80 | 126, 0x01, 0x00, 1, 2, 3, 4}; /* 256 bytes announced */
    conn_feed(s, c, hdr, sizeof(hdr));
    expect_closed_with(c, WS_CLOSE_TOO_BIG, "protocol_error");
    /* Fragments that add up to more than --max-message. */
    c = ws_conn(s);
    send_frame(s, c, 0, WS_OP_TEXT, big, 200);
    assert_int_equal(c->state, CONN_WS);
    send_frame(s, c, 1, WS_OP_CONT, big, 101);
    expect_closed_with(c, WS_CLOSE_TOO_BIG, "protocol_error");
    /* Exactly --max-message is fine. */
    c = ws_conn(s);
    memcpy(big, "{\"type\":\"ping\"", 14);
    big[299] = '}';
    send_frame(s, c, 0, WS_OP_TEXT, big, 200);
    send_frame(s, c, 1, WS_OP_CONT, big + 200, 100);
    expect_one_text(c, 0, "{\"type\":\"pong\"}");
    server_end_iteration(s);
    assert_int_equal(s->nconns, 1);
}

static void test_fragmented_and_split(void **state) {
    fixture_t *f = *state;
    server_t *s = make_server(f, NULL);
    conn_t *c = ws_conn(s);
    static const char msg[] = "{\"type\":\"ola\",\"peer_id\":\"frag-peer\"}";
    /* Three fragments with a ping in the middle. */
    send_frame(s, c, 0, WS_OP_TEXT, msg, 5);
    send_frame(s, c, 1, WS_OP_PING, "hi", 2);
    send_frame(s, c, 0, WS_OP_CONT, msg + 5, 10);
    assert_int_equal(c->frag_op, WS_OP_TEXT);
    send_frame(s, c, 1, WS_OP_CONT, msg + 15, strlen(msg) - 15);
    assert_int_equal(c->frag_op, 0);
    assert_int_equal(c->frag.len, 0);
    oframe_t fr[MAX_OUT_FRAMES];
    assert_int_equal(out_frames(c, 0, fr, MAX_OUT_FRAMES), 2);
    assert_int_equal(fr[0].opcode, WS_OP_PONG);
    assert_true(frame_has(&fr[1], "ok", NULL));
    assert_true(frame_has(&fr[1], "peer_id", "frag-peer"));
    conn_flush(s, c);
    /* One whole frame fed one byte at a time, then two frames in one read. */
    uint8_t buf[128];
    static const char ping[] = "{\"type\":\"ping\"}";
    size_t n = build_frame(buf, 1, WS_OP_TEXT, ping, strlen(ping), test_mask);
    for (size_t i = 0; i < n; i++)
        conn_feed(s, c, buf + i, 1);
    expect_one_text(c, 0, "{\"type\":\"pong\"}");
    conn_flush(s, c);
    n = build_frame(buf, 1, WS_OP_TEXT, ping, strlen(ping), test_mask);
    n += build_frame(buf + n, 1, WS_OP_TEXT, ping, strlen(ping), test_mask);
    conn_feed(s, c, buf, n);
    assert_int_equal(out_frames(c, 0, fr, MAX_OUT_FRAMES), 2);
    /* A binary message holding JSON is handled like text. */
    conn_flush(s, c);
    send_frame(s, c, 1, WS_OP_BINARY, ping, strlen(ping));
    expect_one_text(c, 0, "{\"type\":\"pong\"}");
}

static void test_client_close(void **state) {
    fixture_t *f = *state;
    server_t *s = make_server(f, NULL);
    conn_t *c = st_peer(s, "closer");
    /* The server echoes the client's code, and says no bye (the client is leaving). */
    uint8_t code[] = {0x03, 0xe8, 'b', 'y', 'e'};
    send_frame(s, c, 1, WS_OP_CLOSE, code, sizeof(code));
    expect_closed_with(c, WS_CLOSE_NORMAL, NULL);
    assert_int_equal(registry_count(s->registry), 0);
    /* An empty close gets 1000. */
    c = ws_conn(s);
    send_frame(s, c, 1, WS_OP_CLOSE, "", 0);
    expect_closed_with(c, WS_CLOSE_NORMAL, NULL);
    /* A forbidden code (1005 on the wire) is a protocol error. */
    c = ws_conn(s);
    uint8_t bad[] = {0x03, 0xed};
    send_frame(s, c, 1, WS_OP_CLOSE, bad, sizeof(bad));
    expect_closed_with(c, WS_CLOSE_PROTOCOL, "protocol_error");
    server_end_iteration(s);
    assert_int_equal(s->nconns, 0);
}

/* ---- ST dialect through the connection ----------------------------------------------------- */

static void test_st_announce_and_relay(void **state) {
    fixture_t *f = *state;
    server_t *s = make_server(f, NULL);
    conn_t *a = st_peer(s, "alice");
    conn_t *b = st_peer(s, "bob");
    send_text(s, a,
              "{\"type\":\"announce\",\"info_hash\":\"08ada5a7a6183aae1e09d831df6748d566095a10\","
              "\"left\":0}");
    expect_one_text(
        a, 0,
        "{\"type\":\"announce\",\"info_hash\":\"08ada5a7a6183aae1e09d831df6748d566095a10"
        "\",\"interval\":120,\"min_interval\":20,\"complete\":1,\"incomplete\":0,"
        "\"peers\":[]}");
    send_text(s, b,
              "{\"type\":\"announce\",\"info_hash\":\"08ADA5A7A6183AAE1E09D831DF6748D566095A10\","
              "\"left\":100,\"event\":\"started\"}");
    expect_one_text(
        b, 0,
        "{\"type\":\"announce\",\"info_hash\":\"08ada5a7a6183aae1e09d831df6748d566095a10"
        "\",\"interval\":120,\"min_interval\":20,\"complete\":1,\"incomplete\":1,"
        "\"peers\":[{\"peer_id\":\"alice\",\"complete\":true}]}");
    assert_int_equal(swarm_totals(s->swarms).members, 2);
    check_invariants(s);
    drop_output(s);
    /* A signal is relayed verbatim, payload and all. */
    send_text(
        s, b,
        "{\"type\":\"offer\",\"to\":\"alice\",\"payload\":{\"sdp\":\"v=0\\r\\n\",\"n\":[1,2]}}");
    assert_int_equal(b->out.len, 0);
    expect_one_text(
        a, 0,
        "{\"type\":\"offer\",\"from\":\"bob\",\"payload\":{\"sdp\":\"v=0\\r\\n\",\"n\":[1,2]}}");
    drop_output(s);
    send_text(s, a, "{\"type\":\"answer\",\"to\":\"bob\",\"payload\":\"text\"}");
    expect_one_text(b, 0, "{\"type\":\"answer\",\"from\":\"alice\",\"payload\":\"text\"}");
    drop_output(s);
    send_text(s, a, "{\"type\":\"candidate\",\"to\":\"nobody\",\"payload\":null}");
    expect_one_text(a, 0,
                    "{\"type\":\"error\",\"code\":\"peer_not_found\",\"message\":\"no connected "
                    "peer has that peer_id\",\"ref\":\"candidate\",\"to\":\"nobody\"}");
    drop_output(s);
    /* Too soon: a regular announce within min_interval is refused. */
    send_text(s, b,
              "{\"type\":\"announce\",\"info_hash\":\"08ada5a7a6183aae1e09d831df6748d566095a10\"}");
    oframe_t fr[MAX_OUT_FRAMES];
    assert_int_equal(out_frames(b, 0, fr, MAX_OUT_FRAMES), 1);
    assert_true(frame_has(&fr[0], "code", "rate_limited"));
    drop_output(s);
    /* Closing bob takes him out of the swarm at once. */
    conn_close(s, b, WS_CLOSE_NORMAL, "bye");
    assert_int_equal(swarm_totals(s->swarms).members, 1);
    check_invariants(s);
    server_end_iteration(s);
    assert_int_equal(s->nconns, 1);
    send_text(
        s, a,
        "{\"type\":\"scrape\",\"info_hashes\":[\"08ada5a7a6183aae1e09d831df6748d566095a10\"]}");
    expect_one_text(a, 0,
                    "{\"type\":\"scrape\",\"files\":{\"08ada5a7a6183aae1e09d831df6748d566095a10\":"
                    "{\"complete\":1,\"incomplete\":0,\"downloaded\":0}}}");
}

static void test_st_reclaim(void **state) {
    fixture_t *f = *state;
    server_t *s = make_server(f, NULL);
    conn_t *a = ws_conn(s);
    send_text(s, a, "{\"type\":\"ola\",\"peer_id\":\"carol\"}");
    char token[33];
    char *tp = memmem(a->out.data, a->out.len, "\"token\":\"", 9);
    assert_non_null(tp);
    memcpy(token, tp + 9, 32);
    token[32] = '\0';
    drop_output(s);
    /* Without the token the ID is taken. */
    conn_t *b = ws_conn(s);
    send_text(s, b, "{\"type\":\"ola\",\"peer_id\":\"carol\"}");
    oframe_t fr[MAX_OUT_FRAMES];
    assert_int_equal(out_frames(b, 0, fr, MAX_OUT_FRAMES), 1);
    assert_true(frame_has(&fr[0], "error", "peer_id_taken"));
    assert_null(b->peer);
    drop_output(s);
    /* With it, the new connection takes the ID and the old one is told and closed. */
    char msg[128];
    snprintf(msg, sizeof(msg), "{\"type\":\"ola\",\"peer_id\":\"carol\",\"token\":\"%s\"}", token);
    send_text(s, b, msg);
    assert_non_null(b->peer);
    assert_ptr_equal(registry_find(s->registry, "carol", 5), b->peer);
    expect_closed_with(a, WS_CLOSE_NORMAL, "replaced");
    check_invariants(s);
    server_end_iteration(s);
    assert_int_equal(s->nconns, 1);
}

/* ---- WebTorrent dialect through the connection: the byte-exact flow of section 1.8 ----------- */

static void test_wt_flow(void **state) {
    fixture_t *f = *state;
    server_t *s = make_server(f, NULL);
    conn_t *a = ws_conn(s);
    conn_t *b = ws_conn(s);
    /* B joins first, without offers. */
    send_text(s, b,
              "{\"numwant\":5,\"uploaded\":0,\"downloaded\":0,\"left\":129241752,\"event\":"
              "\"started\",\"action\":\"announce\",\"info_hash\":" SINTEL_IN ",\"peer_id\":" PEER_B
              ",\"offers\":[]}");
    expect_one_text(b, 0,
                    "{\"action\":\"announce\",\"info_hash\":" SINTEL_OUT
                    ",\"complete\":0,\"incomplete\":1,\"interval\":120}");
    assert_int_equal(b->dialect, DIALECT_WT);
    drop_output(s);
    /* A announces with one offer: A gets its answer, B the relayed offer. */
    send_text(s, a,
              "{\"numwant\":5,\"uploaded\":0,\"downloaded\":0,\"left\":129241752,\"event\":"
              "\"started\",\"action\":\"announce\",\"info_hash\":" SINTEL_IN ",\"peer_id\":" PEER_A
              ",\"offers\":[{\"offer\":" OFFER_OBJ ",\"offer_id\":" OFFER_ID_IN "}]}");
    expect_one_text(a, 0,
                    "{\"action\":\"announce\",\"info_hash\":" SINTEL_OUT
                    ",\"complete\":0,\"incomplete\":2,\"interval\":120}");
    expect_one_text(b, 0,
                    "{\"action\":\"announce\",\"info_hash\":" SINTEL_OUT ",\"peer_id\":" PEER_A
                    ",\"offer_id\":" OFFER_ID_OUT ",\"offer\":" OFFER_OBJ "}");
    drop_output(s);
    /* B answers: A gets the answer, B nothing. */
    static const char answer[] =
        "{\"action\":\"announce\",\"info_hash\":" SINTEL_IN ",\"peer_id\":" PEER_B
        ",\"to_peer_id\":" PEER_A ",\"answer\":" ANSWER_OBJ ",\"offer_id\":" OFFER_ID_IN "}";
    send_text(s, b, answer);
    assert_int_equal(b->out.len, 0);
    expect_one_text(a, 0,
                    "{\"action\":\"announce\",\"info_hash\":" SINTEL_OUT ",\"peer_id\":" PEER_B
                    ",\"offer_id\":" OFFER_ID_OUT ",\"answer\":" ANSWER_OBJ "}");
    drop_output(s);
    /* The same answer again is not relayed: the offer was answered already. */
    send_text(s, b, answer);
    assert_int_equal(a->out.len, 0);
    oframe_t fr[MAX_OUT_FRAMES];
    assert_int_equal(out_frames(b, 0, fr, MAX_OUT_FRAMES), 1);
    assert_true(frame_has(&fr[0], "failure reason", NULL));
    drop_output(s);
    /* A scrape. */
    send_text(s, a, "{\"action\":\"scrape\",\"info_hash\":[" SINTEL_IN "]}");
    expect_one_text(a, 0,
                    "{\"action\":\"scrape\",\"files\":{" SINTEL_OUT
                    ":{\"complete\":0,\"incomplete\":2,\"downloaded\":0}}}");
    drop_output(s);
    check_invariants(s);
    /* A leaves with stopped. */
    send_text(s, a,
              "{\"numwant\":50,\"uploaded\":1024,\"downloaded\":129241752,\"left\":0,\"event\":"
              "\"stopped\",\"action\":\"announce\",\"info_hash\":" SINTEL_IN ",\"peer_id\":" PEER_A
              "}");
    expect_one_text(a, 0,
                    "{\"action\":\"announce\",\"info_hash\":" SINTEL_OUT
                    ",\"complete\":0,\"incomplete\":1,\"interval\":120}");
    assert_int_equal(swarm_totals(s->swarms).members, 1);
    assert_null(MEMBERS(a));
    check_invariants(s);
    /* A server-side close of B says why, once per swarm, then closes. */
    drop_output(s);
    conn_close(s, b, WS_CLOSE_GOING_AWAY, "shutdown");
    assert_int_equal(out_frames(b, 0, fr, MAX_OUT_FRAMES), 2);
    assert_true(frame_has(&fr[0], "failure reason", "tracker restarting: reconnect shortly"));
    assert_int_equal(fr[1].opcode, WS_OP_CLOSE);
    server_end_iteration(s);
    assert_int_equal(s->nconns, 1);
    assert_int_equal(swarm_totals(s->swarms).swarms, 0);
}

/* ---- housekeeping ---------------------------------------------------------------------------- */

static void test_tick_timeouts(void **state) {
    fixture_t *f = *state;
    server_t *s = make_server(f, NULL);
    conn_t *slow = conn_create(s, -1, NULL, 0, 0);
    conn_t *c = st_peer(s, "sleepy");
    (void)slow;
    /* Timeouts fire once more than their limit has passed (never early, whole seconds being
     * coarse). The handshake timeout: not yet at exactly --handshake-timeout... */
    s->now += s->cfg.handshake_timeout;
    server_tick(s);
    server_end_iteration(s);
    assert_int_equal(s->nconns, 2);
    /* ...a second later, the connection that never upgraded is freed. */
    s->now += 1;
    server_tick(s);
    server_end_iteration(s);
    assert_int_equal(s->nconns, 1);
    assert_ptr_equal(s->conns, c);
    /* Silence: at exactly --ping-interval no ping yet (timeouts never fire early), a second
     * later a ping. */
    s->now = c->last_rx + s->cfg.ping_interval;
    server_tick(s);
    assert_int_equal(c->out.len, 0);
    s->now += 1;
    server_tick(s);
    oframe_t fr[MAX_OUT_FRAMES];
    assert_int_equal(out_frames(c, 0, fr, MAX_OUT_FRAMES), 1);
    assert_int_equal(fr[0].opcode, WS_OP_PING);
    assert_true(c->flags & CF_PING_SENT);
    server_end_iteration(s);
    /* No pong: at exactly --ping-timeout not yet, a second later bye "timeout" and close 1001. */
    s->now += s->cfg.ping_timeout;
    server_tick(s);
    assert_int_equal(c->state, CONN_WS);
    assert_int_equal(c->out.len, 0);
    s->now += 1;
    server_tick(s);
    expect_closed_with(c, WS_CLOSE_GOING_AWAY, "timeout");
    assert_int_equal(registry_count(s->registry), 0);
    server_end_iteration(s);
    assert_int_equal(s->nconns, 0);
}

/* Peers that stop announcing leave their swarms on the sweep, and the connection's count follows.
 */
static void test_tick_expires_peers(void **state) {
    fixture_t *f = *state;
    server_t *s = make_server(f, NULL);
    conn_t *c = st_peer(s, "idle-peer");
    send_text(s, c,
              "{\"type\":\"announce\",\"info_hash\":\"1111111111111111111111111111111111111111\"}");
    assert_int_equal(NSWARMS(c), 1);
    drop_output(s);
    for (int i = 0; i < 20; i++) {
        s->now += 20;
        c->last_rx = c->last_msg = s->now; /* the connection itself stays alive */
        server_tick(s);
        server_end_iteration(s);
    }
    assert_int_equal(NSWARMS(c), 0);
    assert_null(MEMBERS(c));
    assert_int_equal(swarm_totals(s->swarms).members, 0);
    assert_true(s->count.expired_peers == 1);
    check_invariants(s);
}

/* server_destroy frees connections in every state, with swarms and peer IDs. */
static void test_destroy_with_live_conns(void **state) {
    fixture_t *f = *state;
    server_t *s = make_server(f, NULL);
    conn_t *a = st_peer(s, "a1");
    send_text(s, a,
              "{\"type\":\"announce\",\"info_hash\":\"2222222222222222222222222222222222222222\"}");
    conn_t *w = ws_conn(s);
    send_text(s, w, "{\"action\":\"announce\",\"info_hash\":" SINTEL_IN ",\"peer_id\":" PEER_A "}");
    conn_create(s, -1, NULL, 0, 0); /* still in HTTP */
    conn_t *closing = ws_conn(s);
    conn_close(s, closing, WS_CLOSE_NORMAL, NULL);
    check_invariants(s);
    assert_int_equal(s->nconns, 4);
    /* Teardown destroys the server with all of this alive, then checks for leaks. */
}

static void tweak_small_outbuf(config_t *cfg) {
    cfg->max_outbuf = 1024;
    cfg->stuck_timeout = 5;
}

/* A reader that does not drain its queue: messages to it are dropped and counted, and after
 * --stuck-timeout it is told "too_slow" and closed with 1008. */
static void test_slow_reader(void **state) {
    fixture_t *f = *state;
    server_t *s = make_server(f, tweak_small_outbuf);
    conn_t *a = st_peer(s, "slow");
    conn_t *b = st_peer(s, "fast");
    int relays = 0;
    while (a->out.len < s->cfg.max_outbuf) {
        send_text(s, b, "{\"type\":\"offer\",\"to\":\"slow\",\"payload\":{\"sdp\":\"v=0\"}}");
        relays++;
        assert_true(relays < 100);
    }
    uint32_t len = a->out.len;
    assert_int_equal(s->count.dropped, 0);
    send_text(s, b, "{\"type\":\"offer\",\"to\":\"slow\",\"payload\":{\"sdp\":\"v=0\"}}");
    assert_int_equal(a->out.len, len); /* dropped, not queued */
    assert_int_equal(s->count.dropped, 1);
    assert_int_equal(s->count.relayed, (uint64_t)relays);
    assert_true(a->stuck_since != 0);
    assert_int_equal(b->out.len, 0); /* the sender is not told */
    /* Not yet: the queue has been full for no more than --stuck-timeout. */
    s->now = a->stuck_since + s->cfg.stuck_timeout;
    a->last_rx = a->last_msg = b->last_rx = b->last_msg = s->now;
    server_tick(s);
    assert_int_equal(a->state, CONN_WS);
    s->now++;
    a->last_rx = a->last_msg = b->last_rx = b->last_msg = s->now;
    server_tick(s);
    /* What was queued was dropped so the goodbye can get out. */
    expect_closed_with(a, WS_CLOSE_POLICY, "too_slow");
    assert_int_equal(b->state, CONN_WS);
    assert_int_equal(registry_count(s->registry), 1);
    check_invariants(s);
    server_end_iteration(s);
    assert_int_equal(s->nconns, 1);
}

static void tweak_small_caps(config_t *cfg) {
    cfg->max_per_ip = 2;
    cfg->max_connections = 3;
}

static void test_connection_caps(void **state) {
    fixture_t *f = *state;
    server_t *s = make_server(f, tweak_small_caps);
    struct sockaddr_in a1 = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x0a000001)};
    struct sockaddr_in a2 = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x0a000002)};
    const struct sockaddr *p1 = (const struct sockaddr *)&a1, *p2 = (const struct sockaddr *)&a2;
    assert_non_null(conn_create(s, -1, p1, sizeof(a1), 0));
    assert_non_null(conn_create(s, -1, p1, sizeof(a1), 0));
    /* A third from the same address is refused by --max-per-ip... */
    assert_null(conn_create(s, -1, p1, sizeof(a1), 0));
    assert_int_equal(s->count.refused, 1);
    /* ...another address is fine, until --max-connections. */
    assert_non_null(conn_create(s, -1, p2, sizeof(a2), 0));
    assert_null(conn_create(s, -1, p2, sizeof(a2), 0));
    assert_int_equal(s->count.refused, 2);
    assert_int_equal(s->nconns, 3);
    assert_int_equal(s->ips.count, 2);
    /* Freeing a connection gives its slots back. */
    conn_t *c = s->conns; /* the newest: from a2 */
    assert_ptr_equal(c->ip, s->conns->ip);
    conn_close(s, c, 0, NULL);
    server_end_iteration(s);
    assert_int_equal(s->nconns, 2);
    assert_int_equal(s->ips.count, 1);
    assert_null(conn_create(s, -1, p1, sizeof(a1), 0)); /* a1 still has two */
    assert_non_null(conn_create(s, -1, p2, sizeof(a2), 0));
    assert_int_equal(s->nconns, 3);
    assert_int_equal(s->count.refused, 3);
    /* The admin listener's connections have their own cap, not the clients': a scrape gets in
     * while clients fill theirs, and no more than SERVER_ADMIN_MAX_CONNECTIONS at once. */
    for (int i = 0; i < SERVER_ADMIN_MAX_CONNECTIONS; i++)
        assert_non_null(conn_create(s, -1, p1, sizeof(a1), CF_ADMIN));
    assert_null(conn_create(s, -1, p1, sizeof(a1), CF_ADMIN));
    assert_int_equal(s->nadmin, SERVER_ADMIN_MAX_CONNECTIONS);
    assert_int_equal(s->nconns, 3);
    assert_int_equal(s->count.refused, 4);
}

/* ---- known bugs ------------------------------------------------------------------------------ */

static void tweak_many_swarms(config_t *cfg) {
    cfg->max_swarms = 65537;
    cfg->msg_rate = 1000000;
    cfg->msg_burst = 1000000;
}

/* Regression: the per-connection swarm count (now registry_entry_t.nswarms) was a uint16_t while
 * --max-swarms accepts up to 100000, so the per-connection swarm count wrapped at 65536 and the cap
 * check in tracker_announce stopped working. With --max-swarms 65537, the 65538th announce to a new
 * swarm must be refused with too_many_swarms. */
static void test_nswarms_does_not_wrap(void **state) {
    fixture_t *f = *state;
    server_t *s = make_server(f, tweak_many_swarms);
    conn_t *c = st_peer(s, "hoarder");
    char msg[128];
    for (uint32_t i = 0; i < 65537; i++) {
        snprintf(msg, sizeof(msg), "{\"type\":\"announce\",\"info_hash\":\"%040x\"}", i);
        send_text(s, c, msg);
        conn_flush(s, c);
    }
    assert_int_equal(swarm_totals(s->swarms).members, 65537);
    send_text(s, c,
              "{\"type\":\"announce\",\"info_hash\":\"ffffffffffffffffffffffffffffffffffffffff\"}");
    oframe_t fr[MAX_OUT_FRAMES];
    assert_int_equal(out_frames(c, 0, fr, MAX_OUT_FRAMES), 1);
    assert_true(frame_has(&fr[0], "code", "too_many_swarms"));
    assert_int_equal(swarm_totals(s->swarms).members, 65537);
}

int main(void) {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_upgrade_101),
        T(test_upgrade_byte_by_byte),
        T(test_http_health_and_errors),
        T(test_http_monitoring),
        T(test_host_required),
        T(test_proxy_header_sets_client),
        T(test_proxy_header_keeps_address),
        T(test_proxy_header_refused),
        T(test_proxy_header_untrusted),
        T(test_proxy_socket),
        T(test_ola_answer),
        T(test_ping_pong),
        T(test_unmasked_frame_closes_1002),
        T(test_bad_frames),
        T(test_too_big),
        T(test_fragmented_and_split),
        T(test_client_close),
        T(test_st_announce_and_relay),
        T(test_st_reclaim),
        T(test_wt_flow),
        T(test_tick_timeouts),
        T(test_tick_expires_peers),
        T(test_destroy_with_live_conns),
        T(test_slow_reader),
        T(test_connection_caps),
        T(test_nswarms_does_not_wrap),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
