/* fuzz_tlsrec.c: libFuzzer driver for the TLS 1.3 record layer (src/server/tlsrec.c). A client
 * state and a server state made from fixed secrets share one engine; the input is a script of
 * what the client side puts on the wire and how the bytes reach the server.
 *
 * Byte 0: bits 0-1 pick the suite (3 counts as 0); bits 2-4, when not 0, are the number of
 * records a write key seals before its writer updates it (so that tlsrec_seal sends KeyUpdates).
 * Then operations, at most FUZZ_MAX_OPS, each an op byte whose low three bits (modulo 5) say:
 *   0  raw bytes appended to the server's input: a length byte and that many bytes; with op bit
 *      3 a record header (type 23, version 3.3, a 2-byte length from the input) goes first;
 *   1  an inner plaintext sealed by the client with tlsrec_seal_inner, so that authentic records
 *      reach the content type, alert, handshake and KeyUpdate logic. Op bits 3-4 pick its form:
 *      0 bytes as given (a length byte, then the bytes; op bit 5 puts a run of 16256 to 16511
 *      content bytes in front, to reach the 2^14 content limit), 1 a KeyUpdate with the request
 *      byte given (op bit 5: then a length byte and a trailing byte), 2 an alert with the level
 *      and description given, 3 application data given; op bit 6 adds a length byte's worth of
 *      zero padding;
 *   2  application data sealed by the client with tlsrec_seal (a 2-byte length; the bytes are a
 *      pattern of their position in the stream, so that loss or reordering shows);
 *   3  the stream so far fed to the server's tlsrec_open: a 2-byte amount (0: all that is left)
 *      in pieces of a byte's worth (0: one piece), as a socket might deliver them;
 *   4  the server acts: with op bit 3 it sends an alert (a description byte), else it seals
 *      application data (a 2-byte length).
 * Whatever the server appends to its output (KeyUpdate answers, alerts, its data) goes to the
 * client's tlsrec_open at once, so both sides stay in step. At the end the rest of the stream is
 * fed in one call.
 *
 * Invariants, checked after every call: results are 0, -EPROTO or -EPIPE; *used <= len and ends
 * on a record boundary of the bytes given (walked here from the headers), *plain <= *used and
 * within the content those records can hold; with 0, what is left is an incomplete record with
 * a header that could be valid; once a state returned an error (or sent a fatal alert) every
 * later open returns an error and consumes nothing, and once it returned -EPROTO (or sent a
 * fatal alert) every seal returns -EPROTO and every alert appends nothing (after the peer's
 * close_notify, whether it still writes is left to the state); as long as the client's stream
 * holds only what tlsrec_seal wrote (no raw bytes, no tlsrec_seal_inner), the server never fails
 * and reads back exactly what was sealed, byte for byte; a writer never seals more records under
 * one key than the engine allows, and its KeyUpdates are exactly where the limit and the peer's
 * requests (answered once, before the next data) put them; the server's output, all of it
 * written by tlsrec, never fails the client unless it carries an alert, and the client reads
 * back exactly what the server sealed and never answers anything. The exception to both: with a
 * low key limit a writer can send more KeyUpdates than its reader's credit pays for
 * (TLSREC_KEY_UPDATE_BURST back to back, then one per TLSREC_KEY_UPDATE_MIN_BYTES of data), and
 * its reader must then refuse the first one that overdraws it (and does, which is checked too). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "server/tlsrec.h"
#include "fuzz_check.h"

/* Operations read from one input at most. */
#define FUZZ_MAX_OPS 64
/* tlsrec_open calls made for one input at most (each on a copy of the pending bytes). */
#define FUZZ_MAX_OPEN_CALLS 512
/* Bytes of the client's stream at most; operations that would pass it are skipped. */
#define FUZZ_MAX_STREAM_BYTES (256 * 1024)
/* Bytes of application data one seal operation writes at most: enough for three records. */
#define FUZZ_MAX_SEAL_BYTES (2 * TLSREC_PLAINTEXT_MAX_BYTES + 64)
/* The shortest run of content bytes op bit 5 puts in an inner plaintext; an input byte adds up
 * to 255 more, so the content lands on either side of the 2^14 limit. */
#define FUZZ_BIG_CONTENT_BYTES (TLSREC_PLAINTEXT_MAX_BYTES - 128)
/* Bytes of an AEAD tag (all three suites). */
#define TAG_BYTES 16
/* The smallest record body: a content type byte and the tag. */
#define BODY_MIN_BYTES (TAG_BYTES + 1)
/* The longest inner plaintext tlsrec_seal_inner takes. */
#define INNER_MAX_BYTES (TLSREC_CIPHERTEXT_MAX_BYTES - TAG_BYTES)
/* Content types and the handshake type the templates use (RFC 8446 §5.1, §4). */
#define CT_ALERT 21
#define CT_HANDSHAKE 22
#define CT_APPLICATION_DATA 23
#define HS_KEY_UPDATE 24
/* The most KeyUpdate credit a reader holds, and what it starts with, in application bytes (as
 * tlsrec.c keeps it). */
#define KEY_UPDATE_CREDIT_MAX ((size_t)TLSREC_KEY_UPDATE_BURST * TLSREC_KEY_UPDATE_MIN_BYTES)

enum { OP_RAW, OP_INNER, OP_SEAL, OP_FEED, OP_SERVER, OP_KINDS };

static const uint16_t suite_ids[3] = {TLSREC_AES_128_GCM_SHA256, TLSREC_AES_256_GCM_SHA384,
                                      TLSREC_CHACHA20_POLY1305_SHA256};

/* Fixed traffic secrets: the first secret_len bytes are used. */
static const uint8_t client_secret[TLSREC_SECRET_MAX_BYTES] = {
    0x1f, 0x2e, 0x3d, 0x4c, 0x5b, 0x6a, 0x79, 0x88, 0x97, 0xa6, 0xb5, 0xc4, 0xd3, 0xe2, 0xf1, 0x00,
    0x0f, 0x1e, 0x2d, 0x3c, 0x4b, 0x5a, 0x69, 0x78, 0x87, 0x96, 0xa5, 0xb4, 0xc3, 0xd2, 0xe1, 0xf0,
    0x01, 0x12, 0x23, 0x34, 0x45, 0x56, 0x67, 0x78, 0x89, 0x9a, 0xab, 0xbc, 0xcd, 0xde, 0xef, 0xf0};
static const uint8_t server_secret[TLSREC_SECRET_MAX_BYTES] = {
    0xf0, 0xe1, 0xd2, 0xc3, 0xb4, 0xa5, 0x96, 0x87, 0x78, 0x69, 0x5a, 0x4b, 0x3c, 0x2d, 0x1e, 0x0f,
    0x00, 0xf1, 0xe2, 0xd3, 0xc4, 0xb5, 0xa6, 0x97, 0x88, 0x79, 0x6a, 0x5b, 0x4c, 0x3d, 0x2e, 0x1f,
    0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe, 0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01};

/* The engine lives for the whole run, as it does in the server: its key cache then sees states
 * come and go at reused addresses. */
static tlsrec_engine_t *engine;

/* The input, read front to back; reads past the end give zeros. */
typedef struct cursor {
    const uint8_t *p;
    size_t n;
} cursor_t;

/* One end of the connection: its state, how far it has gone wrong, and its output. */
typedef struct side {
    tlsrec_t *r;
    int dead;       /* reads no more: an open failed (close_notify too), or it sent a fatal alert */
    int failed;     /* writes no more either: an open returned -EPROTO, or it sent a fatal alert */
    buf_t out;      /* what this state appended as a reader's output */
    size_t out_fed; /* bytes of out already given to the other side */
    /* Its KeyUpdates as a writer, replayed by the driver (see track_seal). */
    size_t credit; /* its reader's KeyUpdate credit: starts full, data adds, KeyUpdates spend */
    unsigned paid; /* its KeyUpdates the credit paid for, up to the first that overdrew it */
    int overdrawn; /* one came with too little credit left: its reader must refuse it */
} side_t;

/* A writer's KeyUpdates as track_seal replays them. */
typedef struct writer_sim {
    uint64_t seq;
    size_t credit;
    unsigned paid;
    int overdrawn;
    unsigned updates;
} writer_sim_t;

typedef struct run {
    side_t cli, srv;
    buf_t stream;     /* the client's bytes on the wire, as written (never decrypted in place) */
    size_t consumed;  /* bytes of stream the server has consumed */
    size_t fed;       /* bytes of stream the server has been given */
    int tainted;      /* the stream holds something tlsrec_seal did not write */
    int may_request;  /* the client sealed by hand since the server last answered a KeyUpdate */
    int srv_alerted;  /* the server sent an alert of its own accord */
    buf_t up_sent;    /* application data the client sealed with tlsrec_seal */
    size_t up_read;   /* bytes of it the server read back */
    buf_t down_sent;  /* application data the server sealed */
    size_t down_read; /* bytes of it the client read back */
    unsigned calls;   /* tlsrec_open calls so far */
    uint8_t pattern;  /* varies the application data bytes between inputs */
    uint64_t rekey;   /* records a write key seals before its writer updates it */
    buf_t scratch;    /* inner plaintexts being built */
} run_t;

static uint8_t take(cursor_t *c) {
    if (c->n == 0)
        return 0;
    c->n--;
    return *c->p++;
}

static size_t take16(cursor_t *c) {
    size_t hi = take(c);
    return (hi << 8) | take(c);
}

/* Returns up to n bytes of the input and their count in *got. */
static const uint8_t *take_bytes(cursor_t *c, size_t n, size_t *got) {
    const uint8_t *p = c->p;
    *got = n < c->n ? n : c->n;
    c->p += *got;
    c->n -= *got;
    return p;
}

/* The application data byte at position pos of a direction's plaintext. */
static uint8_t data_byte(const run_t *u, size_t pos, int down) {
    return (uint8_t)((pos * 2654435761u) >> 13) ^ u->pattern ^ (uint8_t)(down ? 0x5a : 0);
}

/* Fills p with the n bytes of a direction's plaintext that start at pos. */
static void make_data(const run_t *u, uint8_t *p, size_t pos, size_t n, int down) {
    for (size_t i = 0; i < n; i++)
        p[i] = data_byte(u, pos + i, down);
}

/* Checks that the first used bytes of w[0, len) are whole records with headers tlsrec_open may
 * accept, and returns the most application data they can hold. */
static size_t check_boundary(const uint8_t *w, size_t len, size_t used) {
    size_t pos = 0, room = 0;
    while (pos < used) {
        CHECK(used - pos >= TLSREC_HEADER_BYTES);
        size_t body = ((size_t)w[pos + 3] << 8) | w[pos + 4];
        CHECK(w[pos] == CT_APPLICATION_DATA);
        CHECK(body >= BODY_MIN_BYTES && body <= TLSREC_CIPHERTEXT_MAX_BYTES);
        pos += TLSREC_HEADER_BYTES + body;
        room += body - BODY_MIN_BYTES;
    }
    CHECK(pos == used);
    CHECK(used <= len);
    return room;
}

/* Checks that what tlsrec_open left of w[0, len) after returning 0 is not something it should
 * have consumed or refused: less than a header, or the start of a record with a valid header. */
static void check_rest(const uint8_t *w, size_t len) {
    if (len < TLSREC_HEADER_BYTES)
        return;
    size_t body = ((size_t)w[3] << 8) | w[4];
    CHECK(w[0] == CT_APPLICATION_DATA);
    CHECK(body >= BODY_MIN_BYTES && body <= TLSREC_CIPHERTEXT_MAX_BYTES);
    CHECK(len < TLSREC_HEADER_BYTES + body);
}

/* Calls tlsrec_open on an exactly sized copy of w[0, len) (so that ASan sees any read past the
 * end) for side s, checks the invariants every call keeps and returns the result; plain is
 * emptied and given the plaintext, whose length also goes to *pl. */
static int open_checked(run_t *u, side_t *s, const uint8_t *w, size_t len, buf_t *plain,
                        size_t *used, size_t *pl) {
    uint8_t *copy = malloc(len > 0 ? len : 1);
    CHECK(copy != NULL);
    if (len > 0)
        memcpy(copy, w, len);
    size_t out_before = s->out.len;
    *used = SIZE_MAX;
    *pl = SIZE_MAX;
    int rc = tlsrec_open(engine, s->r, copy, len, used, pl, &s->out);
    u->calls++;
    CHECK(rc == 0 || rc == -EPROTO || rc == -EPIPE);
    CHECK(*used <= len);
    CHECK(*pl <= *used);
    if (s->dead) {
        /* A failed state accepts nothing more, and says nothing more. */
        CHECK(rc != 0 && *used == 0 && *pl == 0 && s->out.len == out_before);
    }
    size_t room = check_boundary(w, len, *used);
    CHECK(*pl <= room);
    if (rc == 0)
        check_rest(w + *used, len - *used);
    else
        s->dead = 1;
    if (rc == -EPROTO)
        s->failed = 1;
    plain->len = 0;
    buf_append(plain, copy, *pl);
    free(copy);
    return rc;
}

/* Says what a write by side s must do: 1 succeed, 0 be refused (-EPROTO) since the state has
 * failed, -1 either, after the peer's close_notify (whether a state may still write then, as
 * TLS 1.3 allows, is its own choice). */
static int writable(const side_t *s) {
    return s->failed ? 0 : s->dead ? -1 : 1;
}

/* Checks the result rc of a write by side s that grew its output from before to after bytes,
 * and returns 1 when it wrote. */
static int check_write(const side_t *s, int rc, size_t before, size_t after) {
    int w = writable(s);
    if (rc == 0 && w != 0)
        return 1;
    CHECK(w <= 0 && rc == -EPROTO && after == before);
    return 0;
}

/* A KeyUpdate spends TLSREC_KEY_UPDATE_MIN_BYTES of the reader's credit, which must hold that
 * much; the first that finds less overdraws it, and the reader takes no update after that. */
static void sim_key_update(writer_sim_t *w) {
    if (w->overdrawn || w->credit < TLSREC_KEY_UPDATE_MIN_BYTES) {
        w->overdrawn = 1;
    } else {
        w->credit -= TLSREC_KEY_UPDATE_MIN_BYTES;
        w->paid++;
    }
    w->seq = 0;
    w->updates++;
}

/* Replays what tlsrec_seal did with n bytes on side s, which wrote from sequence number seq0
 * after upd0 key updates, and checks that the state agrees: first a KeyUpdate if the peer had
 * asked for one (the driver cannot see whether the server took a hand-sealed record for a
 * request, so after one both ways are tried), then one before any record that would pass the
 * key's record limit. Each record's data adds to the reader's KeyUpdate credit, up to
 * KEY_UPDATE_CREDIT_MAX, and each KeyUpdate spends from it: one that overdraws it (only a low
 * test limit makes that happen) is noted, since the reader must refuse it. */
static void track_seal(run_t *u, side_t *s, uint64_t seq0, unsigned upd0, size_t n) {
    int matched = 0;
    /* Only a hand-sealed record can ask for a KeyUpdate: tlsrec_seal never does. */
    int may_answer = s == &u->srv && u->may_request;
    for (int answer = 0; answer <= may_answer && !matched; answer++) {
        writer_sim_t w = {seq0, s->credit, s->paid, s->overdrawn, 0};
        if (answer && n > 0)
            sim_key_update(&w);
        for (size_t left = n; left > 0;) {
            if (w.seq >= u->rekey)
                sim_key_update(&w);
            size_t k = left < TLSREC_PLAINTEXT_MAX_BYTES ? left : TLSREC_PLAINTEXT_MAX_BYTES;
            w.seq++;
            w.credit = w.credit + k < KEY_UPDATE_CREDIT_MAX ? w.credit + k : KEY_UPDATE_CREDIT_MAX;
            left -= k;
        }
        if (w.updates == tlsrec_write_updates(s->r) - upd0 && w.seq == tlsrec_write_seq(s->r)) {
            matched = 1;
            if (answer)
                u->may_request = 0;
            s->credit = w.credit;
            s->paid = w.paid;
            s->overdrawn = w.overdrawn;
        }
    }
    CHECK(matched);
}

/* Gives the client what the server has appended to its output since the last time: whole
 * records, all written by tlsrec. */
static void deliver_down(run_t *u) {
    size_t len = u->srv.out.len - u->srv.out_fed;
    if (len == 0)
        return;
    const uint8_t *w = u->srv.out.data + u->srv.out_fed;
    buf_t plain = {0};
    size_t used, pl;
    int was_dead = u->cli.dead;
    int rc = open_checked(u, &u->cli, w, len, &plain, &used, &pl);
    if (!was_dead) {
        /* Only an alert from the server (its own, or the one it sent on failing) or a KeyUpdate
         * that overdrew the client's credit fails the client, at exactly that KeyUpdate;
         * otherwise every record opens. */
        if (rc != 0 && !u->srv_alerted && !u->srv.dead)
            CHECK(u->srv.overdrawn && tlsrec_read_updates(u->cli.r) == u->srv.paid);
        else if (rc == 0)
            CHECK(used == len);
        CHECK(pl <= u->down_sent.len - u->down_read);
        CHECK(pl == 0 || memcmp(plain.data, u->down_sent.data + u->down_read, pl) == 0);
        u->down_read += pl;
    }
    /* The server never asks the client for anything (its KeyUpdates do not request one): the
     * client only writes the alert for a KeyUpdate that overdrew its credit. */
    CHECK(u->cli.out.len == 0 || u->srv.overdrawn);
    buf_dispose(&plain);
    u->srv.out_fed = u->srv.out.len;
}

/* Feeds the server stream[fed, fed + amount) in pieces of chunk bytes (0: one piece). A server
 * that has failed is given it all in one call, which it must refuse. */
static void feed(run_t *u, size_t amount, size_t chunk) {
    size_t left = u->stream.len - u->fed;
    if (amount == 0 || amount > left)
        amount = left;
    if (chunk == 0 || chunk > amount || u->srv.dead)
        chunk = amount;
    if (amount == 0)
        return;
    buf_t plain = {0};
    size_t end = u->fed + amount;
    while (u->fed < end && u->calls < FUZZ_MAX_OPEN_CALLS) {
        size_t k = end - u->fed < chunk ? end - u->fed : chunk;
        u->fed += k;
        const uint8_t *w = u->stream.data + u->consumed;
        size_t len = u->fed - u->consumed, used, pl;
        int was_dead = u->srv.dead;
        int rc = open_checked(u, &u->srv, w, len, &plain, &used, &pl);
        /* Nothing tlsrec_seal writes is refused, but the KeyUpdate that overdraws the server's
         * credit, and it is refused exactly there: after the ones the credit paid for. */
        if (!u->tainted && !u->srv_alerted)
            CHECK(rc == 0 || (rc == -EPROTO && u->cli.overdrawn &&
                              tlsrec_read_updates(u->srv.r) == u->cli.paid));
        if (!was_dead && !u->tainted) {
            CHECK(pl <= u->up_sent.len - u->up_read);
            CHECK(pl == 0 || memcmp(plain.data, u->up_sent.data + u->up_read, pl) == 0);
            u->up_read += pl;
        }
        u->consumed += used;
        deliver_down(u);
    }
    buf_dispose(&plain);
}

/* Seals an inner plaintext built from the input with the client's tlsrec_seal_inner. */
static void op_inner(run_t *u, cursor_t *c, uint8_t op) {
    buf_t *b = &u->scratch;
    size_t n;
    const uint8_t *p;
    b->len = 0;
    switch ((op >> 3) & 3) {
    case 0:
        if (op & 0x20) {
            size_t run = FUZZ_BIG_CONTENT_BYTES + take(c);
            memset(buf_reserve(b, run), 'x', run);
            b->len += (uint32_t)run;
        }
        p = take_bytes(c, take(c), &n);
        buf_append(b, p, n);
        break;
    case 1: {
        const uint8_t ku[] = {HS_KEY_UPDATE, 0, 0, 1, take(c)};
        buf_append(b, ku, sizeof(ku));
        if (op & 0x20) {
            /* A malformed one: its length byte from the input, and a byte after the message. */
            b->data[3] = take(c);
            buf_append(b, (const uint8_t[]){take(c)}, 1);
        }
        buf_append(b, (const uint8_t[]){CT_HANDSHAKE}, 1);
        break;
    }
    case 2: {
        uint8_t level = take(c);
        const uint8_t alert[] = {level, take(c), CT_ALERT};
        buf_append(b, alert, sizeof(alert));
        break;
    }
    default:
        p = take_bytes(c, take(c), &n);
        buf_append(b, p, n);
        buf_append(b, (const uint8_t[]){CT_APPLICATION_DATA}, 1);
        break;
    }
    if (op & 0x40) {
        size_t pad = take(c);
        memset(buf_reserve(b, pad), 0, pad);
        b->len += (uint32_t)pad;
    }
    if (u->stream.len + TLSREC_RECORD_MAX_BYTES > FUZZ_MAX_STREAM_BYTES)
        return;
    size_t before = u->stream.len;
    int rc = tlsrec_seal_inner(engine, u->cli.r, b->data, b->len, &u->stream);
    if (b->len > INNER_MAX_BYTES) {
        CHECK(rc == -EINVAL || (rc == -EPROTO && writable(&u->cli) <= 0));
        CHECK(u->stream.len == before);
    } else if (check_write(&u->cli, rc, before, u->stream.len)) {
        CHECK(u->stream.len == before + TLSREC_HEADER_BYTES + b->len + TAG_BYTES);
        u->tainted = 1;
        u->may_request = 1;
    }
}

/* Seals n bytes of the client's application data pattern with tlsrec_seal. */
static void op_seal(run_t *u, size_t n) {
    if (u->stream.len + n + 3 * (TLSREC_RECORD_MAX_BYTES - TLSREC_PLAINTEXT_MAX_BYTES) +
            TLSREC_RECORD_MAX_BYTES >
        FUZZ_MAX_STREAM_BYTES)
        return;
    uint8_t *data = malloc(n > 0 ? n : 1);
    CHECK(data != NULL);
    make_data(u, data, u->up_sent.len, n, 0);
    size_t before = u->stream.len;
    uint64_t seq0 = tlsrec_write_seq(u->cli.r);
    unsigned upd0 = tlsrec_write_updates(u->cli.r);
    int rc = tlsrec_seal(engine, u->cli.r, data, n, &u->stream);
    if (check_write(&u->cli, rc, before, u->stream.len)) {
        track_seal(u, &u->cli, seq0, upd0, n);
        CHECK(n > 0 || u->stream.len == before);
        /* The writer replaced its key before it sealed more records than allowed. */
        CHECK(n == 0 || tlsrec_write_seq(u->cli.r) <= u->rekey);
        CHECK(check_boundary(u->stream.data + before, u->stream.len - before,
                             u->stream.len - before) >= n);
        buf_append(&u->up_sent, data, n);
    }
    free(data);
}

/* The server sends an alert, or seals n bytes of its application data pattern. */
static void op_server(run_t *u, cursor_t *c, uint8_t op) {
    size_t before = u->srv.out.len;
    if (op & 0x08) {
        uint8_t description = take(c);
        tlsrec_alert(engine, u->srv.r, description, &u->srv.out);
        int w = writable(&u->srv);
        CHECK(w != 1 || u->srv.out.len > before);
        CHECK(w != 0 || u->srv.out.len == before);
        if (u->srv.out.len > before) {
            CHECK(check_boundary(u->srv.out.data + before, u->srv.out.len - before,
                                 u->srv.out.len - before) == 2);
            u->srv_alerted = 1;
            if (description != TLSREC_ALERT_CLOSE_NOTIFY)
                u->srv.dead = u->srv.failed = 1;
        }
    } else {
        size_t n = take16(c) % (FUZZ_MAX_SEAL_BYTES + 1);
        uint8_t *data = malloc(n > 0 ? n : 1);
        CHECK(data != NULL);
        make_data(u, data, u->down_sent.len, n, 1);
        uint64_t seq0 = tlsrec_write_seq(u->srv.r);
        unsigned upd0 = tlsrec_write_updates(u->srv.r);
        int rc = tlsrec_seal(engine, u->srv.r, data, n, &u->srv.out);
        if (check_write(&u->srv, rc, before, u->srv.out.len)) {
            track_seal(u, &u->srv, seq0, upd0, n);
            CHECK(n == 0 || tlsrec_write_seq(u->srv.r) <= u->rekey);
            buf_append(&u->down_sent, data, n);
        }
        free(data);
    }
    deliver_down(u);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    engine = tlsrec_engine_create();
    CHECK(engine != NULL);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cursor_t c = {data, size};
    run_t u;
    memset(&u, 0, sizeof(u));
    uint8_t head = take(&c);
    uint16_t suite = suite_ids[(head & 3) % 3];
    unsigned rekey = (head >> 2) & 7;
    u.rekey = rekey ? rekey : TLSREC_REKEY_RECORDS;
    size_t slen = tlsrec_secret_len(suite);
    u.pattern = (uint8_t)(size * 37);
    CHECK(tlsrec_engine_set_rekey_records(engine, u.rekey) == 0);
    CHECK(tlsrec_create(engine, &u.cli.r, suite, 0, client_secret, server_secret, slen, 0, 0) == 0);
    CHECK(tlsrec_create(engine, &u.srv.r, suite, 1, client_secret, server_secret, slen, 0, 0) == 0);
    u.cli.credit = u.srv.credit = KEY_UPDATE_CREDIT_MAX;

    for (int ops = 0; ops < FUZZ_MAX_OPS && c.n > 0; ops++) {
        uint8_t op = take(&c);
        switch ((op & 7) % OP_KINDS) {
        case OP_RAW: {
            size_t n;
            if (op & 0x08) {
                size_t body = take16(&c);
                const uint8_t hdr[TLSREC_HEADER_BYTES] = {CT_APPLICATION_DATA, 3, 3,
                                                          (uint8_t)(body >> 8), (uint8_t)body};
                buf_append(&u.stream, hdr, sizeof(hdr));
            }
            const uint8_t *p = take_bytes(&c, take(&c), &n);
            buf_append(&u.stream, p, n);
            u.tainted = 1;
            break;
        }
        case OP_INNER:
            op_inner(&u, &c, op);
            break;
        case OP_SEAL:
            op_seal(&u, take16(&c) % (FUZZ_MAX_SEAL_BYTES + 1));
            break;
        case OP_FEED: {
            size_t amount = take16(&c);
            feed(&u, amount, take(&c));
            break;
        }
        default:
            op_server(&u, &c, op);
            break;
        }
    }
    /* The rest in one call, and then a stream of tlsrec_seal records must have arrived whole. */
    u.calls = 0;
    feed(&u, 0, 0);
    if (!u.tainted && !u.srv_alerted && u.cli.overdrawn) {
        /* The KeyUpdate that overdrew the credit was refused, and none after the ones it paid. */
        CHECK(u.srv.dead);
        CHECK(tlsrec_read_updates(u.srv.r) == u.cli.paid);
    } else if (!u.tainted && !u.srv_alerted) {
        CHECK(u.consumed == u.stream.len);
        CHECK(u.up_read == u.up_sent.len);
        CHECK(tlsrec_read_updates(u.srv.r) == tlsrec_write_updates(u.cli.r));
        /* Unless the client sealed an alert of its own, which stays in its output. */
        CHECK(u.cli.out.len > 0 || tlsrec_read_seq(u.srv.r) == tlsrec_write_seq(u.cli.r));
    }
    if (!u.cli.dead) {
        CHECK(!u.srv.overdrawn); /* the client read it, and must have refused it */
        CHECK(u.down_read == u.down_sent.len);
        CHECK(tlsrec_read_updates(u.cli.r) == tlsrec_write_updates(u.srv.r));
        CHECK(tlsrec_read_seq(u.cli.r) == tlsrec_write_seq(u.srv.r));
    }

    tlsrec_destroy(engine, u.cli.r);
    tlsrec_destroy(engine, u.srv.r);
    buf_dispose(&u.stream);
    buf_dispose(&u.up_sent);
    buf_dispose(&u.down_sent);
    buf_dispose(&u.cli.out);
    buf_dispose(&u.srv.out);
    buf_dispose(&u.scratch);
    return 0;
}
