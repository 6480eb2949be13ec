/* fuzz_conn.c: libFuzzer driver for the whole connection: HTTP upgrade, WebSocket framing,
 * fragmentation, JSON, both dialects, the tracker, the swarms, the housekeeping tick, the output
 * queue with its partial writes, slow readers and closing, all through the real connection code.
 *
 * One server is created per process (its database in /tmp, named after the pid) and reused;
 * every input gets fresh connections, and everything is closed and freed after the input, so no
 * connection, swarm or peer ID outlives it. The clock is reset at the start of every input and
 * the sampling generator reseeded, so an input replays the same way.
 *
 * Connections 0-2 have fd = -1: bytes go in through conn_feed and their output is discarded by
 * conn_flush, as for a reader that takes everything at once. Connection 3 is the server end of a
 * socketpair with a small send buffer: bytes for it are written into the other end and read by
 * conn_on_readable, and its output is written by conn_flush into the socket, where the driver
 * reads it only when the input says so. That makes partial writes, a full output queue, dropped
 * messages, the stuck-reader close, EOF and EPIPE reachable.
 *
 * Input format. Byte 0 chooses the mode:
 *   0x00-0x1f  raw: the rest is fed as it is to one fresh connection (no upgrade is sent first),
 *              in chunks of (byte0 & 0x1f) bytes (0 = all at once): the HTTP parser, the
 *              upgrade and whatever frames follow.
 *   0x20-0xff  framed: connections 0 and 1 are created and upgraded with a valid request (one of
 *              a few variants, by byte0 % 4), then the rest is a sequence of records:
 *                header  bits 0-2: opcode index into {CONT, TEXT, BINARY, CLOSE, PING, PONG,
 *                                  3 (reserved), 0xB (reserved)}
 *                        bit 3:    FIN
 *                        bits 4-5: target connection 0-3 (2 and 3 are created on first use)
 *                        bits 6-7: kind: 0 masked frame, 1 masked frame fed in two chunks split at
 *                                  the byte after the length, 2 raw bytes, 3 control action
 *                length  one byte; 255 means a 16-bit big-endian length follows
 *                payload that many bytes (fewer at the end of the input)
 *              Control actions (payload[0] % 8, amount = payload[1]):
 *                0 advance the clock by amount seconds, run server_tick, end the iteration
 *                1 end the loop iteration (flush output, finish closes)
 *                2 close the target connection
 *                3 advance the clock by amount * 16 milliseconds (token buckets refill)
 *                4 read up to (amount + 1) * 256 bytes of connection 3's output from its socket
 *                5 shut down the write side of connection 3's client end (the server reads EOF)
 *                6 close connection 3's client end (the server's next write fails)
 *                7 write connection 3's output queue as EPOLLOUT would
 * So most inputs are valid masked frames, and the fuzzer gets past framing into the JSON and the
 * ST and WebTorrent handlers at once.
 *
 * After every step the driver checks the server's invariants: the swarm totals equal the
 * memberships of the live connections, the registry holds exactly the peer IDs the connections
 * hold, closing connections hold neither, every membership is where its index says, and every
 * frame the server queued is well formed (after the partly written part the queue records), with
 * text frames valid UTF-8 JSON objects and nothing after a close frame. The byte stream read from
 * connection 3's socket is checked the same way, frame by frame, across partial writes and the
 * output dropped for a stuck reader. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "json/json.h"
#include "hub/peers.h"
#include "server/conn.h"
#include "server/server.h"
#include "fuzz_server.h"
#include "ws/frame.h"
#include "ws/utf8.h"

/* Connections one framed input may use. */
#define FUZZ_CONNS 4
/* Inputs after which the server (and its database) is recreated, so the database and its cache
 * cannot grow without bound over a long run. */
#define FUZZ_RECREATE_EVERY 20000
/* Clock at the start of every input: seconds, and unix time for the database. */
#define FUZZ_BASE_SECONDS 1000
#define FUZZ_BASE_WALL 1800000000
/* Tokens for checking the server's output (a scrape answer for max_scrape infohashes needs about
 * 7 per infohash). */
#define FUZZ_OUT_TOKENS 16384
/* Nesting allowed in the server's output: a relayed payload is one level below its envelope. */
#define FUZZ_OUT_DEPTH 64
/* The connection slot backed by a socketpair, and its send buffer in bytes (the kernel doubles
 * it): small, so that a few frames fill it and writes are partial. */
#define FUZZ_SOCK_SLOT 3
#define FUZZ_SOCK_SNDBUF 4096
/* Bound on the rounds of writing and reading that drain the socket connection at the end. */
#define FUZZ_DRAIN_ROUNDS 100000

/* The swarms a connection's peer is in, and how many (none before it holds a peer ID). */
#define MEMBERS(c) ((c)->peer != NULL ? (c)->peer->members : NULL)
#define NSWARMS(c) ((c)->peer != NULL ? (c)->peer->nswarms : 0u)

static const char *const upgrades[] = {
    "GET /announce HTTP/1.1\r\nHost: localhost:8000\r\nUpgrade: websocket\r\n"
    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n\r\n",
    "GET / HTTP/1.1\r\nhost: tracker.example\r\nconnection: keep-alive, Upgrade\r\n"
    "upgrade: WebSocket\r\nsec-websocket-version: 13\r\norigin: https://app.example\r\n"
    "sec-websocket-key: x3JJHMbDL1EzLkh9GBhXDw==\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n",
    "GET /?x=1 HTTP/1.1\nHost: a\nUpgrade: websocket\nConnection: upgrade\n"
    "Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA==\nSec-WebSocket-Version: 13\n"
    "X-Forwarded-For: 203.0.113.7, 198.51.100.2\n\n",
    "GET /announce HTTP/1.1\r\nHost: b\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    "X-Forwarded-For: 2001:db8::7 ,\r\n\r\n",
};

static const uint8_t opcodes[8] = {WS_OP_CONT, WS_OP_TEXT, WS_OP_BINARY, WS_OP_CLOSE,
                                   WS_OP_PING, WS_OP_PONG, 0x3,          0xB};

static server_t *srv;
static char db_path[FUZZ_DB_PATH_BYTES];
static unsigned long inputs;
/* Set from SIGTRACKER_FUZZ_TRACE: print every frame the server queues (to check seeds). */
static int trace;
static json_tok_t out_toks[FUZZ_OUT_TOKENS];

/* Aborts with a message when cond is false, so that libFuzzer records the input. */

static void destroy_server(void) {
    fuzz_server_destroy(&srv, db_path);
}

static void create_server(void) {
    config_t cfg;
    config_defaults(&cfg);
    cfg.log_level = LOG_OFF;
    /* Limits small enough for inputs to reach them. */
    cfg.max_frame = 8192;
    cfg.max_message = 16384;
    cfg.max_outbuf = 16384;
    cfg.max_swarms = 16;
    cfg.max_scrape = 20;
    cfg.max_connections = 64;
    /* Shedding starts above 2 connections, so inputs that open three can trigger it. */
    cfg.shed_high = 2;
    cfg.shed_low = 1;
    cfg.shed_min_seeders = 1;
    /* Test connections have no address, which reads as "::": trusting it sends every
     * connection through the PROXY stage first (raw inputs may start with a header), makes the
     * upgrade variants with X-Forwarded-For move their connections to the forwarded address,
     * and the small per-address cap makes some connections and upgrades be refused. */
    snprintf(cfg.trusted_proxies, sizeof(cfg.trusted_proxies), "%s", "10.0.0.1, ::");
    cfg.max_per_ip = 3;
    srv = fuzz_server_create(&cfg, "fuzz-conn", db_path);
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

/* ---- invariants ----------------------------------------------------------------------------- */

/* Checks one server frame at p[0..n). Returns its length, or 0 when it is incomplete (only
 * allowed when partial_ok). *closed is set by a close frame, and no frame may follow one. */
static size_t check_frame(const void *owner, const uint8_t *p, size_t n, int partial_ok,
                          int *closed) {
    if (n < 2) {
        CHECK(partial_ok);
        return 0;
    }
    uint8_t b0 = p[0], b1 = p[1];
    CHECK((b0 & 0x80) != 0); /* FIN: the server never fragments */
    CHECK((b0 & 0x70) == 0);
    CHECK((b1 & 0x80) == 0); /* never masked */
    int op = b0 & 0x0f;
    CHECK(op == WS_OP_TEXT || op == WS_OP_CLOSE || op == WS_OP_PING || op == WS_OP_PONG);
    CHECK(!*closed); /* nothing after our close frame */
    uint64_t len = b1 & 0x7f;
    size_t h = 2;
    if (len == 126) {
        if (n < 4) {
            CHECK(partial_ok);
            return 0;
        }
        len = (uint64_t)p[2] << 8 | p[3];
        CHECK(len > 125);
        h = 4;
    } else if (len == 127) {
        if (n < 10) {
            CHECK(partial_ok);
            return 0;
        }
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | p[2 + i];
        CHECK(len > 0xffff && len < ((uint64_t)1 << 32));
        h = 10;
    }
    if (len > n - h) {
        CHECK(partial_ok);
        return 0;
    }
    const uint8_t *pl = p + h;
    if (trace)
        fprintf(stderr, "  -> conn %p op %d: %.*s\n", owner, op, op == WS_OP_CLOSE ? 0 : (int)len,
                (const char *)pl);
    if (trace && op == WS_OP_CLOSE && len == 2)
        fprintf(stderr, "     close code %u\n", (unsigned)(pl[0] << 8 | pl[1]));
    if (op == WS_OP_TEXT) {
        CHECK(utf8_valid(pl, (size_t)len));
        int r =
            json_parse((const char *)pl, (size_t)len, out_toks, FUZZ_OUT_TOKENS, FUZZ_OUT_DEPTH);
        if (r < 0)
            fprintf(stderr, "server wrote invalid JSON: %.*s\n", (int)len, (const char *)pl);
        CHECK(r >= 1);
        CHECK(out_toks[0].type == JSON_OBJECT);
    } else if (op == WS_OP_CLOSE) {
        CHECK(len == 2);
        *closed = 1;
    } else {
        CHECK(len <= WS_MAX_CONTROL_PAYLOAD);
    }
    return h + (size_t)len;
}

/* Checks c's output queue: out_partial bytes that finish something already partly written, then
 * only complete frames. */
static void check_output(const conn_t *c) {
    CHECK(c->out_partial <= c->out.len);
    CHECK(c->out.len <= c->out.cap);
    int closed = 0;
    size_t off = c->out_partial;
    while (off < c->out.len)
        off += check_frame(c, c->out.data + off, c->out.len - off, 0, &closed);
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
        }
        if (c->state == CONN_CLOSING || c->state == CONN_DRAIN) {
            CHECK(c->peer == NULL);
            CHECK(MEMBERS(c) == NULL);
            /* conn_close releases the input buffers at once; a peer that went away (CF_GONE)
             * keeps them until the connection is freed at the end of the iteration. */
            if (!(c->flags & CF_GONE)) {
                CHECK(c->in.len == 0);
                CHECK(c->frag.len == 0);
            }
        }
        if (c->state == CONN_HTTP)
            CHECK(c->dialect == DIALECT_NONE);
        CHECK(c->noffers <= c->offers_cap);
        check_output(c);
    }
    swarm_totals_t t = swarm_totals(s->swarms);
    CHECK(conns == s->nconns);
    CHECK(t.members == members);
    CHECK(t.seeders == seeders);
    CHECK(t.swarms <= t.members);
    CHECK(registry_count(s->registry) == peers);
}

/* ---- the socket-backed connection ------------------------------------------------------------ */

/* The client side of connection 3 and what the driver has read from it. */
typedef struct sock_peer {
    int fd;          /* client end of the socketpair, -1 when closed */
    conn_t *c;       /* the server's connection, NULL once it has been freed */
    uint8_t *stream; /* bytes read so far */
    size_t len, cap;
    size_t checked; /* bytes of stream checked: the HTTP head and complete frames */
    int head_state; /* 0 head not complete yet, 1 a 101 (frames follow), 2 another answer */
    int closed;     /* a close frame has been read */
    int eof;        /* read() returned 0 */
    int gone;       /* the server gave up on the connection (CF_GONE): it may have dropped a
                     * partly written frame, so the stream may end inside one */
} sock_peer_t;

static sock_peer_t sp = {.fd = -1};

/* Checks the stream read so far: the HTTP head, then as many complete frames as there are. */
static void check_stream(void) {
    if (sp.head_state == 0) {
        const uint8_t *end = memmem(sp.stream, sp.len, "\r\n\r\n", 4);
        if (end == NULL)
            return;
        CHECK(sp.len >= 5 && memcmp(sp.stream, "HTTP/", 5) == 0);
        sp.head_state = memcmp(sp.stream, "HTTP/1.1 101 ", 13) == 0 ? 1 : 2;
        sp.checked = (size_t)(end - sp.stream) + 4;
    }
    if (sp.head_state != 1)
        return; /* a plain HTTP answer: a body follows, then the end */
    for (;;) {
        size_t n = check_frame(&sp, sp.stream + sp.checked, sp.len - sp.checked, 1, &sp.closed);
        if (n == 0)
            break;
        sp.checked += n;
    }
}

/* Reads up to max bytes the server wrote to connection 3 and checks them. */
static void sock_read(size_t max) {
    while (sp.fd >= 0 && max > 0 && !sp.eof) {
        if (sp.cap - sp.len < 4096) {
            sp.cap = sp.cap ? sp.cap * 2 : 65536;
            sp.stream = realloc(sp.stream, sp.cap);
            CHECK(sp.stream != NULL);
        }
        size_t want = sp.cap - sp.len < max ? sp.cap - sp.len : max;
        ssize_t r = read(sp.fd, sp.stream + sp.len, want);
        if (trace)
            fprintf(stderr, "  socket read %zd (stream %zu bytes)\n", r, sp.len);
        if (r > 0) {
            sp.len += (size_t)r;
            max -= (size_t)r;
        } else if (r == 0) {
            sp.eof = 1;
        } else {
            CHECK(errno == EAGAIN || errno == ECONNRESET);
            break;
        }
    }
    check_stream();
}

/* Lets the server read everything pending on connection 3's socket. */
static void sock_readable(server_t *s) {
    int pending = 0;
    while (sp.c != NULL && ioctl(sp.c->fd, FIONREAD, &pending) == 0 && pending > 0)
        conn_on_readable(s, sp.c);
}

/* Sends p[0..n) from connection 3's client end, letting the server read as the socket fills. */
static void sock_write(server_t *s, const uint8_t *p, size_t n) {
    size_t off = 0;
    while (sp.fd >= 0 && sp.c != NULL && off < n) {
        ssize_t w = send(sp.fd, p + off, n - off, MSG_NOSIGNAL);
        if (w > 0) {
            off += (size_t)w;
            continue;
        }
        CHECK(w < 0);
        if (errno != EAGAIN)
            break; /* the server end is closed */
        int pending = 0;
        CHECK(ioctl(sp.c->fd, FIONREAD, &pending) == 0 && pending > 0);
        conn_on_readable(s, sp.c);
    }
    sock_readable(s);
}

static conn_t *open_socket_conn(server_t *s) {
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
    int sndbuf = FUZZ_SOCK_SNDBUF;
    CHECK(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)) == 0);
    conn_t *c = conn_create(s, sv[0], NULL, 0, 0);
    if (c == NULL) {
        close(sv[0]);
        close(sv[1]);
        return NULL;
    }
    /* As on_accept does: the loop is never run here, but conn_flush and conn_destroy update
     * this registration. */
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(s->epfd, EPOLL_CTL_ADD, sv[0], &ev);
    free(sp.stream);
    sp = (sock_peer_t){.fd = sv[1], .c = c};
    return c;
}

/* Forgets connection 3 if the server has freed it (after an iteration ended). */
static void sock_refresh(server_t *s) {
    if (sp.c == NULL)
        return;
    for (conn_t *c = s->conns; c; c = c->next)
        if (c == sp.c)
            return;
    sp.c = NULL;
}

/* Ends connection 3's input: the server has freed the connection, so the client end reads the
 * rest and then EOF; the stream must end after a complete frame unless the server gave up on
 * the connection (a peer that went away, or a timeout with output still queued). */
static void sock_finish(void) {
    int truncation_ok = sp.gone;
    if (sp.fd >= 0) {
        for (int i = 0; i < FUZZ_DRAIN_ROUNDS && !sp.eof; i++) {
            size_t before = sp.len;
            sock_read(SIZE_MAX);
            if (sp.len == before && !sp.eof)
                break;
        }
        if (!truncation_ok && sp.head_state == 1)
            CHECK(sp.checked == sp.len);
        close(sp.fd);
    }
    free(sp.stream);
    sp = (sock_peer_t){.fd = -1};
}

/* ---- driving -------------------------------------------------------------------------------- */

/* Discards the queued output of the fd -1 connections through conn_flush, which does for them
 * what a complete write would (including resetting the partly-written-frame mark);
 * check_invariants has checked it. The socket connection keeps its queue until the input lets
 * the loop write it. */
static void drop_output(server_t *s) {
    for (conn_t *c = s->conns; c; c = c->next)
        if (c->fd < 0)
            conn_flush(s, c);
}

static void end_iteration(server_t *s) {
    check_invariants(s);
    if (sp.c != NULL && (sp.c->flags & CF_GONE))
        sp.gone = 1;
    server_end_iteration(s);
    sock_refresh(s);
    check_invariants(s);
}

/* Feeds p[0..n) to c: through the socket for connection 3, else a private copy to conn_feed
 * (which unmasks frames in place). */
static void feed(server_t *s, conn_t *c, const uint8_t *p, size_t n) {
    if (n == 0)
        return;
    if (c->fd >= 0) {
        sock_write(s, p, n);
        return;
    }
    uint8_t *copy = malloc(n);
    memcpy(copy, p, n);
    conn_feed(s, c, copy, n);
    fuzz_settle(s);
    free(copy);
}

/* Builds a masked client frame for payload p[0..n) into out (n + 14 bytes). */
static size_t build_frame(uint8_t *out, int fin, int opcode, const uint8_t *p, size_t n,
                          uint32_t mask_seed) {
    size_t h = 0;
    out[h++] = (uint8_t)((fin ? 0x80 : 0) | opcode);
    if (n <= 125) {
        out[h++] = (uint8_t)(0x80 | n);
    } else if (n <= 0xffff) {
        out[h++] = 0x80 | 126;
        out[h++] = (uint8_t)(n >> 8);
        out[h++] = (uint8_t)n;
    } else {
        out[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            out[h++] = (uint8_t)((uint64_t)n >> (8 * i));
    }
    uint8_t mask[4] = {(uint8_t)(mask_seed * 0x9d + 1), (uint8_t)(mask_seed >> 3 ^ 0x5a),
                       (uint8_t)(mask_seed * 7 + 0x33), (uint8_t)(0xc4 ^ mask_seed)};
    memcpy(out + h, mask, 4);
    h += 4;
    for (size_t i = 0; i < n; i++)
        out[h + i] = p[i] ^ mask[i % 4];
    return h + n;
}

/* Starts an input: the clock at its base, the generator reseeded, housekeeping not yet due. */
static void reset_clock(server_t *s) {
    s->now = FUZZ_BASE_SECONDS;
    s->now_ms = FUZZ_BASE_SECONDS * 1000u;
    s->wall = FUZZ_BASE_WALL;
    s->next_tick = s->now + 1;
    s->next_flush_db = s->now + s->cfg.db_flush;
    rng_seed(&s->rng, 0x5eed);
}

/* Opens a connection (with a socket for slot 3) and upgrades it. Returns NULL when a cap refuses
 * the connection; the upgrade itself may be refused too (429 from the forwarded address's cap),
 * and then the connection is closing. */
static conn_t *open_upgraded(server_t *s, int slot_no, const char *req) {
    conn_t *c = slot_no == FUZZ_SOCK_SLOT ? open_socket_conn(s) : conn_create(s, -1, NULL, 0, 0);
    if (c == NULL) {
        CHECK(s->count.refused > 0);
        return NULL;
    }
    feed(s, c, (const uint8_t *)req, strlen(req));
    CHECK(c->state == CONN_WS || c->state == CONN_CLOSING);
    check_output(c);
    if (c->fd < 0)
        conn_flush(s, c);
    return c;
}

/* Closes every connection and frees them; afterwards the server must hold nothing. The socket
 * connection is drained as the loop would: its output written while the client end reads, then
 * the half-close, the client's EOF, and the free. */
static void close_all(server_t *s) {
    for (conn_t *c = s->conns; c; c = c->next)
        conn_close(s, c, WS_CLOSE_GOING_AWAY, NULL);
    end_iteration(s);
    for (int i = 0; sp.c != NULL && i < FUZZ_DRAIN_ROUNDS; i++) {
        conn_t *c = sp.c;
        if (trace)
            fprintf(stderr, "  draining: state %d, %u bytes queued, flags %#x\n", c->state,
                    c->out.len, c->flags);
        sock_read(SIZE_MAX);
        if (c->state == CONN_DRAIN || sp.fd < 0) {
            /* Our last frames are out and the write side is shut: the client closes too. */
            if (sp.fd >= 0)
                shutdown(sp.fd, SHUT_WR);
            conn_on_readable(s, c);
        } else {
            conn_flush(s, c); /* EPOLLOUT */
        }
        end_iteration(s);
    }
    CHECK(sp.c == NULL);
    sock_finish();
    CHECK(s->conns == NULL);
    CHECK(s->nconns == 0);
    CHECK(s->flush_list == NULL);
    CHECK(s->close_list == NULL);
    CHECK(s->ips.count == 0);
    swarm_totals_t t = swarm_totals(s->swarms);
    CHECK(t.swarms == 0 && t.members == 0 && t.seeders == 0);
    CHECK(registry_count(s->registry) == 0);
}

static void run_raw(server_t *s, const uint8_t *data, size_t size, size_t chunk) {
    conn_t *c = conn_create(s, -1, NULL, 0, 0);
    CHECK(c != NULL);
    if (chunk == 0)
        chunk = size;
    for (size_t off = 0; off < size; off += chunk) {
        size_t n = size - off < chunk ? size - off : chunk;
        feed(s, c, data + off, n);
        check_invariants(s);
        drop_output(s);
    }
}

/* Returns the live connection of slot i, creating and upgrading it if it is not open, or NULL
 * when a cap refuses it. A slot whose connection was freed (closed and then an iteration ended)
 * is reopened. */
static conn_t *slot(server_t *s, conn_t **conns, int i, const char *req) {
    if (conns[i] != NULL) {
        for (conn_t *c = s->conns; c; c = c->next)
            if (c == conns[i])
                return c;
    }
    if (i == FUZZ_SOCK_SLOT && sp.fd >= 0)
        sock_finish(); /* the previous socket connection was freed: start a new one */
    conns[i] = open_upgraded(s, i, req);
    return conns[i];
}

/* Runs control action `action` with `amount` (see the input format) on connection c. */
static void control(server_t *s, conn_t *c, uint8_t action, uint8_t amount, int bye) {
    switch (action) {
    case 0:
        s->now += amount;
        s->now_ms += amount * 1000u;
        s->wall += amount;
        check_invariants(s);
        server_tick(s);
        end_iteration(s);
        break;
    case 1:
        end_iteration(s);
        break;
    case 2:
        if (c != NULL)
            conn_close(s, c, WS_CLOSE_NORMAL, bye ? "fuzz" : NULL);
        break;
    case 3:
        s->now_ms += amount * 16u;
        break;
    case 4:
        sock_read(((size_t)amount + 1) * 256);
        break;
    case 5:
        if (sp.fd >= 0 && sp.c != NULL) {
            shutdown(sp.fd, SHUT_WR);
            conn_on_readable(s, sp.c);
        }
        break;
    case 6:
        if (sp.fd >= 0) {
            close(sp.fd);
            sp.fd = -1;
        }
        break;
    case 7:
        if (sp.c != NULL)
            conn_flush(s, sp.c);
        break;
    }
}

static void run_framed(server_t *s, const uint8_t *data, size_t size, const char *req) {
    conn_t *conns[FUZZ_CONNS] = {NULL};
    slot(s, conns, 0, req);
    slot(s, conns, 1, req);
    size_t off = 0;
    uint32_t rec = 0;
    uint8_t *wire = malloc(size + 16);
    while (off < size) {
        uint8_t hdr = data[off++];
        if (off >= size)
            break;
        size_t len = data[off++];
        if (len == 255) {
            if (size - off < 2)
                break;
            len = (size_t)data[off] << 8 | data[off + 1];
            off += 2;
        }
        if (len > size - off)
            len = size - off;
        const uint8_t *p = data + off;
        off += len;
        rec++;
        int opcode = opcodes[hdr & 7];
        int fin = (hdr >> 3) & 1;
        int target = (hdr >> 4) & 3;
        int kind = hdr >> 6;
        if (kind == 3) {
            /* Control actions do not open connections. */
            conn_t *c = conns[target];
            if (c != NULL) {
                c = NULL;
                for (conn_t *x = s->conns; x; x = x->next)
                    if (x == conns[target])
                        c = x;
            }
            control(s, c, len > 0 ? p[0] % 8 : 0, len > 1 ? p[1] : 1, len > 2);
        } else {
            conn_t *c = slot(s, conns, target, req);
            if (c == NULL)
                continue;
            size_t n = kind == 2 ? len : build_frame(wire, fin, opcode, p, len, rec);
            const uint8_t *bytes = kind == 2 ? p : wire;
            if (kind == 1) {
                /* The first payload byte doubles as the split point. */
                size_t cut = len ? p[0] % (n + 1) : n / 2;
                feed(s, c, bytes, cut);
                feed(s, c, bytes + cut, n - cut);
            } else {
                feed(s, c, bytes, n);
            }
        }
        if (trace && sp.c != NULL)
            fprintf(stderr,
                    "  record %u: socket connection state %d, %u bytes queued (%u partly "
                    "written), flags %#x\n",
                    rec, sp.c->state, sp.c->out.len, sp.c->out_partial, sp.c->flags);
        check_invariants(s);
        drop_output(s);
    }
    free(wire);
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
    uint8_t mode = data[0];
    if (mode < 0x20)
        run_raw(s, data + 1, size - 1, mode & 0x1f);
    else
        run_framed(s, data + 1, size - 1, upgrades[mode % (sizeof(upgrades) / sizeof(*upgrades))]);
    close_all(s);
    return 0;
}
