/* test_tlsrec.c: unit tests of the TLS 1.3 record layer (src/server/tlsrec.c). A client-role and
 * a server-role state made from the same random traffic secrets talk to each other through one
 * shared engine, for each of the three suites: round trips of every size class both ways, fed
 * whole, a byte at a time and in random pieces; inner plaintexts built by hand (empty records,
 * padding, alerts, handshake messages, KeyUpdate in every form, unknown content types, content
 * over the limit); KeyUpdate requests answered once, before the next data; the KeyUpdate credit
 * (a burst, then one per TLSREC_KEY_UPDATE_MIN_BYTES of data, capped) and the limit on runs of
 * records without data; every bit of a record flipped; headers a peer must not send; replayed and
 * reordered records; the write side's own KeyUpdates; two connections sharing the engine's key
 * cache; tlsrec_probe; and the arguments tlsrec_create refuses. The traffic secret after a
 * KeyUpdate is computed here with OpenSSL's TLS13-KDF, so the test does not share the key
 * schedule of the code under test. Payloads and splits come from a fixed seed, so a failure
 * repeats. */
#include "unit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "core/buf.h"
#include "core/rng.h"
#include "server/tlsrec.h"

/* The suites this layer runs. */
#define SUITE_COUNT 3
/* Bytes of an AEAD tag, for all three suites (tlsrec.c keeps its own constant private). */
#define TAG_BYTES 16
/* The smallest body of a protected record: a content type byte and the tag. */
#define BODY_MIN_BYTES (TAG_BYTES + 1)
/* The longest inner plaintext tlsrec_seal_inner takes: a body of the limit, less the tag. */
#define INNER_MAX_BYTES (TLSREC_CIPHERTEXT_MAX_BYTES - TAG_BYTES)
/* The largest payload of the round trips, in bytes: several records and a partial last one. */
#define BIG_PAYLOAD_BYTES 100000
/* Random splittings each round trip is fed in, besides whole and a byte at a time. */
#define RANDOM_SPLITS 3
/* The largest piece of a random splitting, in bytes: a little over a record, so that pieces
 * end inside records as well as span them. */
#define SPLIT_MAX_BYTES (TLSREC_RECORD_MAX_BYTES + 100)
/* Bytes of the application data in the record whose bits are flipped. */
#define FLIP_PAYLOAD_BYTES 10
/* Records sealed for tlsrec_probe, and how many sequence numbers it is told to try. */
#define PROBE_RECORDS 5
#define PROBE_MAX_SEQ 8
/* The write key limit of the rekey test, and the writes sealed under it: each as large as the
 * data that earns a KeyUpdate, so that the writer's own never run out of its reader's credit. */
#define REKEY_RECORDS 3
#define REKEY_WRITES 10
#define REKEY_WRITE_BYTES TLSREC_KEY_UPDATE_MIN_BYTES
/* The data the credit test sends to show that the KeyUpdate credit is capped: writes of more than
 * a full credit each (three records), three times over. */
#define KEY_UPDATE_FLOOD_BYTES ((TLSREC_KEY_UPDATE_BURST + 2) * TLSREC_KEY_UPDATE_MIN_BYTES)
#define KEY_UPDATE_FLOOD_WRITES 3
/* Bytes of a KeyUpdate record: header, message (4-byte header and 1-byte body), type, tag. */
#define KEY_UPDATE_RECORD_BYTES (TLSREC_HEADER_BYTES + 4 + 1 + 1 + TAG_BYTES)
/* Zero padding added to the inner plaintexts that test its removal, in bytes. */
#define PADDING_BYTES 100
/* Content types (RFC 8446 §5.1) and the heartbeat type (RFC 6520) no TLS 1.3 peer may send. */
#define CT_CHANGE_CIPHER_SPEC 20
#define CT_ALERT 21
#define CT_HANDSHAKE 22
#define CT_APPLICATION_DATA 23
#define CT_HEARTBEAT 24
/* Handshake message types (RFC 8446 §4). */
#define HS_NEW_SESSION_TICKET 4
#define HS_FINISHED 20
#define HS_KEY_UPDATE 24
/* Alert levels and the descriptions we send as a peer (RFC 8446 §6). */
#define ALERT_WARNING 1
#define ALERT_FATAL 2
#define ALERT_HANDSHAKE_FAILURE 40
#define ALERT_USER_CANCELED 90
/* Seed of the generator of payloads and splits. */
#define RNG_SEED 0x7e57u

typedef struct suite {
    uint16_t id;
    size_t secret_len;
    const char *md; /* the suite's hash, for the KeyUpdate secret computed here */
} suite_t;

static const suite_t suites[SUITE_COUNT] = {
    {TLSREC_AES_128_GCM_SHA256, 32, "SHA256"},
    {TLSREC_AES_256_GCM_SHA384, 48, "SHA384"},
    {TLSREC_CHACHA20_POLY1305_SHA256, 32, "SHA256"},
};

/* The payload sizes of the round trips: none, one byte, a full record, one byte more, many. */
static const size_t round_trip_sizes[] = {
    0, 1, TLSREC_PLAINTEXT_MAX_BYTES, TLSREC_PLAINTEXT_MAX_BYTES + 1, BIG_PAYLOAD_BYTES,
};

static rng_t rng;

/* Two ends of one connection: the client's state and the server's, from the same secrets. */
typedef struct pair {
    tlsrec_engine_t *e;
    const suite_t *s;
    uint8_t csec[TLSREC_SECRET_MAX_BYTES];
    uint8_t ssec[TLSREC_SECRET_MAX_BYTES];
    tlsrec_t *cli, *srv;
} pair_t;

/* What one tlsrec_open call returned. */
typedef struct verdict {
    int rc;
    size_t used, plain;
} verdict_t;

static void fill_random(uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(rng_next(&rng) >> 56);
}

/* Creates a state with p's secrets on side is_server, whose next client record carries cseq and
 * whose next server record carries sseq. */
static tlsrec_t *make_state(const pair_t *p, int is_server, uint64_t cseq, uint64_t sseq) {
    tlsrec_t *r = NULL;
    assert_int_equal(tlsrec_create(p->e, &r, p->s->id, is_server, p->csec, p->ssec,
                                   p->s->secret_len, cseq, sseq),
                     0);
    assert_non_null(r);
    return r;
}

/* Opens a connection of suite s on engine e, with fresh random secrets. */
static void pair_open(pair_t *p, tlsrec_engine_t *e, const suite_t *s) {
    memset(p, 0, sizeof(*p));
    p->e = e;
    p->s = s;
    assert_int_equal(rng_secure(p->csec, s->secret_len), 0);
    assert_int_equal(rng_secure(p->ssec, s->secret_len), 0);
    p->cli = make_state(p, 0, 0, 0);
    p->srv = make_state(p, 1, 0, 0);
}

static void pair_close(pair_t *p) {
    tlsrec_destroy(p->e, p->cli);
    tlsrec_destroy(p->e, p->srv);
    p->cli = p->srv = NULL;
}

static tlsrec_engine_t *engine(void) {
    tlsrec_engine_t *e = tlsrec_engine_create();
    assert_non_null(e);
    return e;
}

/* Opens wire[0, n) at r in one call, from a heap copy of exactly n bytes so that ASan sees any
 * read past the end, and appends the plaintext to plain (when not NULL). Checks what holds for
 * any input: *used within the input and *plain within *used. */
static verdict_t open_copy(tlsrec_engine_t *e, tlsrec_t *r, const void *wire, size_t n,
                           buf_t *plain, buf_t *out) {
    uint8_t *copy = malloc(n > 0 ? n : 1);
    assert_non_null(copy);
    if (n > 0)
        memcpy(copy, wire, n);
    /* Values no call can leave, so that a result that was never written shows. */
    verdict_t v = {0, SIZE_MAX, SIZE_MAX};
    v.rc = tlsrec_open(e, r, copy, n, &v.used, &v.plain, out);
    assert_true(v.used <= n);
    assert_true(v.plain <= v.used);
    if (plain != NULL)
        buf_append(plain, copy, v.plain);
    free(copy);
    return v;
}

/* Returns how many records make up w[0, n) exactly, after checking that each is a protected
 * record as tlsrec writes them: outer type application_data, legacy version 3.3, a body of
 * BODY_MIN_BYTES to the limit. ends[i], when ends is not NULL, is the offset after record i. */
static size_t walk_records(const uint8_t *w, size_t n, size_t *ends, size_t max_ends) {
    size_t off = 0, count = 0;
    while (off < n) {
        assert_true(n - off >= TLSREC_HEADER_BYTES);
        assert_int_equal(w[off], CT_APPLICATION_DATA);
        assert_int_equal(w[off + 1], 3);
        assert_int_equal(w[off + 2], 3);
        size_t body = ((size_t)w[off + 3] << 8) | w[off + 4];
        assert_in_range(body, BODY_MIN_BYTES, TLSREC_CIPHERTEXT_MAX_BYTES);
        assert_true(TLSREC_HEADER_BYTES + body <= TLSREC_RECORD_MAX_BYTES);
        off += TLSREC_HEADER_BYTES + body;
        assert_true(off <= n);
        if (ends != NULL) {
            assert_true(count < max_ends);
            ends[count] = off;
        }
        count++;
    }
    return count;
}

/* Feeds wire[0, n), whole records only, to r in pieces as a socket might deliver them: one byte
 * at a time when piece_max is 1, else pieces of 1 to piece_max bytes at random. Like a connection
 * it keeps what a call did not consume and adds the next piece after it. Every call must succeed
 * and consume exactly the records complete in what it was given, never a partial one; the
 * plaintext is appended to plain. */
static void feed_pieces(tlsrec_engine_t *e, tlsrec_t *r, const uint8_t *wire, size_t n,
                        size_t piece_max, buf_t *plain, buf_t *out) {
    size_t max_ends = n / (TLSREC_HEADER_BYTES + BODY_MIN_BYTES) + 1;
    size_t *ends = malloc(max_ends * sizeof(*ends));
    uint8_t *pending = malloc(n > 0 ? n : 1);
    assert_non_null(ends);
    assert_non_null(pending);
    size_t count = walk_records(wire, n, ends, max_ends);
    size_t fed = 0, done = 0, plen = 0, next = 0; /* next: the first record not yet complete */
    while (fed < n) {
        size_t k = piece_max == 1 ? 1 : 1 + rng_below(&rng, (uint32_t)piece_max);
        if (k > n - fed)
            k = n - fed;
        memcpy(pending + plen, wire + fed, k);
        plen += k;
        fed += k;
        size_t used = SIZE_MAX, pl = SIZE_MAX;
        assert_int_equal(tlsrec_open(e, r, pending, plen, &used, &pl, out), 0);
        while (next < count && ends[next] <= done + plen)
            next++;
        size_t complete_end = next > 0 ? ends[next - 1] : 0;
        assert_int_equal(used, complete_end - done);
        assert_true(pl <= used);
        buf_append(plain, pending, pl);
        memmove(pending, pending + used, plen - used);
        plen -= used;
        done += used;
    }
    assert_int_equal(done, n);
    assert_int_equal(plen, 0);
    free(pending);
    free(ends);
}

/* Computes the traffic secret that follows secret (RFC 8446 §7.2: HKDF-Expand-Label(secret,
 * "traffic upd", "", Hash.length)) with OpenSSL's TLS 1.3 KDF. */
static void next_secret(const suite_t *s, const uint8_t *secret, uint8_t *next) {
    char digest[16], prefix[] = "tls13 ", label[] = "traffic upd";
    uint8_t key[TLSREC_SECRET_MAX_BYTES];
    int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
    snprintf(digest, sizeof(digest), "%s", s->md);
    memcpy(key, secret, s->secret_len);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, key, s->secret_len),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PREFIX, prefix, strlen(prefix)),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_LABEL, label, strlen(label)),
        OSSL_PARAM_construct_end(),
    };
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "TLS13-KDF", NULL);
    assert_non_null(kdf);
    EVP_KDF_CTX *cx = EVP_KDF_CTX_new(kdf);
    assert_non_null(cx);
    assert_int_equal(EVP_KDF_derive(cx, next, s->secret_len, params), 1);
    EVP_KDF_CTX_free(cx);
    EVP_KDF_free(kdf);
}

/* Seals inner[0, n) with the client's write key exactly as given and opens it at the server in
 * one call; the plaintext goes to plain, what the server sends to out. */
static verdict_t send_inner(pair_t *p, const void *inner, size_t n, buf_t *plain, buf_t *out) {
    buf_t wire = {0};
    assert_int_equal(tlsrec_seal_inner(p->e, p->cli, inner, n, &wire), 0);
    assert_int_equal(wire.len, TLSREC_HEADER_BYTES + n + TAG_BYTES);
    verdict_t v = open_copy(p->e, p->srv, wire.data, wire.len, plain, out);
    buf_dispose(&wire);
    return v;
}

/* Sends n bytes of application data from writer w to reader r and checks they arrive, whole. */
static void expect_data(tlsrec_engine_t *e, tlsrec_t *w, tlsrec_t *r, const void *data, size_t n) {
    buf_t wire = {0}, plain = {0}, out = {0};
    assert_int_equal(tlsrec_seal(e, w, data, n, &wire), 0);
    verdict_t v = open_copy(e, r, wire.data, wire.len, &plain, &out);
    assert_int_equal(v.rc, 0);
    assert_int_equal(v.used, wire.len);
    assert_int_equal(v.plain, n);
    assert_int_equal(plain.len, n);
    if (n > 0)
        assert_memory_equal(plain.data, data, n);
    assert_int_equal(out.len, 0);
    buf_dispose(&wire);
    buf_dispose(&plain);
    buf_dispose(&out);
}

/* Checks that out holds exactly one record, sealed by sender (which wrote nothing after it), that
 * a fresh state of the other side opens as a fatal alert. */
static void expect_alert_record(const pair_t *p, const tlsrec_t *sender, int sender_is_server,
                                const buf_t *out) {
    assert_int_equal(walk_records(out->data, out->len, NULL, 0), 1);
    uint64_t seq = tlsrec_write_seq(sender) - 1;
    tlsrec_t *peer = make_state(p, !sender_is_server, seq, seq);
    buf_t answer = {0};
    verdict_t v = open_copy(p->e, peer, out->data, out->len, NULL, &answer);
    assert_int_equal(v.rc, -EPROTO);
    assert_int_equal(v.used, out->len);
    assert_int_equal(v.plain, 0);
    assert_int_equal(answer.len, 0); /* nobody answers a fatal alert */
    tlsrec_destroy(p->e, peer);
}

/* Checks that r (on side is_server) reads nothing more: a record its peer sealed correctly (one
 * a healthy state at the same sequence number opens) is refused with want and not consumed
 * (-EPROTO after an error, -EPIPE again after the peer's close_notify). */
static void expect_reads_nothing(const pair_t *p, tlsrec_t *r, int is_server, int want) {
    uint64_t seq = tlsrec_read_seq(r);
    tlsrec_t *w = make_state(p, !is_server, seq, seq);
    tlsrec_t *healthy = make_state(p, is_server, seq, seq);
    buf_t rec = {0}, out = {0};
    assert_int_equal(tlsrec_seal(p->e, w, "x", 1, &rec), 0);
    verdict_t v = open_copy(p->e, healthy, rec.data, rec.len, NULL, &out);
    assert_int_equal(v.rc, 0);
    assert_int_equal(v.plain, 1);
    v = open_copy(p->e, r, rec.data, rec.len, NULL, &out);
    assert_int_equal(v.rc, want);
    assert_int_equal(v.used, 0);
    assert_int_equal(v.plain, 0);
    assert_int_equal(out.len, 0);
    tlsrec_destroy(p->e, w);
    tlsrec_destroy(p->e, healthy);
    buf_dispose(&rec);
    buf_dispose(&out);
}

/* Checks that r (on side is_server), after an error, refuses everything: it reads nothing more,
 * tlsrec_seal and tlsrec_seal_inner return -EPROTO, and tlsrec_alert appends nothing. */
static void expect_refuses(const pair_t *p, tlsrec_t *r, int is_server) {
    buf_t out = {0};
    expect_reads_nothing(p, r, is_server, -EPROTO);
    assert_int_equal(tlsrec_seal(p->e, r, "x", 1, &out), -EPROTO);
    static const uint8_t inner[] = {'x', CT_APPLICATION_DATA};
    assert_int_equal(tlsrec_seal_inner(p->e, r, inner, sizeof(inner), &out), -EPROTO);
    tlsrec_alert(p->e, r, TLSREC_ALERT_CLOSE_NOTIFY, &out);
    tlsrec_alert(p->e, r, TLSREC_ALERT_DECODE_ERROR, &out);
    assert_int_equal(out.len, 0);
}

/* Checks that the inner plaintext inner[0, n) from the client fails the server with -EPROTO and
 * no plaintext, that the server sends a fatal alert for it (or, when alert is 0, nothing: the
 * peer's own fatal alert is not answered), and that the server refuses everything afterwards. */
static void expect_inner_error(tlsrec_engine_t *e, const suite_t *s, const void *inner, size_t n,
                               int alert) {
    pair_t p;
    buf_t out = {0};
    pair_open(&p, e, s);
    verdict_t v = send_inner(&p, inner, n, NULL, &out);
    assert_int_equal(v.rc, -EPROTO);
    assert_int_equal(v.plain, 0);
    if (alert)
        expect_alert_record(&p, p.srv, 1, &out);
    else
        assert_int_equal(out.len, 0);
    expect_refuses(&p, p.srv, 1);
    buf_dispose(&out);
    pair_close(&p);
}

/* Checks that the inner plaintext inner[0, n) from the client is accepted with plaintext
 * want[0, want_len) and no answer, and that application data still flows after it. */
static void expect_inner_ok(tlsrec_engine_t *e, const suite_t *s, const void *inner, size_t n,
                            const void *want, size_t want_len) {
    pair_t p;
    buf_t plain = {0}, out = {0};
    pair_open(&p, e, s);
    verdict_t v = send_inner(&p, inner, n, &plain, &out);
    assert_int_equal(v.rc, 0);
    assert_int_equal(v.used, TLSREC_HEADER_BYTES + n + TAG_BYTES);
    assert_int_equal(v.plain, want_len);
    assert_int_equal(plain.len, want_len);
    if (want_len > 0)
        assert_memory_equal(plain.data, want, want_len);
    assert_int_equal(out.len, 0);
    assert_int_equal(tlsrec_read_seq(p.srv), 1);
    expect_data(e, p.cli, p.srv, "after", 5);
    buf_dispose(&plain);
    buf_dispose(&out);
    pair_close(&p);
}

/* ---- creation -------------------------------------------------------------------------------- */

static void test_create_refuses(void **state) {
    (void)state;
    tlsrec_engine_t *e = engine();
    uint8_t secret[TLSREC_SECRET_MAX_BYTES + 1] = {0};
    tlsrec_t *r = NULL;
    assert_int_equal(tlsrec_create(e, &r, 0x1304, 1, secret, secret, 32, 0, 0), -EINVAL);
    assert_int_equal(tlsrec_create(e, &r, 0x1304, 1, secret, secret, 48, 0, 0), -EINVAL);
    assert_int_equal(tlsrec_create(e, &r, 0, 0, secret, secret, 32, 0, 0), -EINVAL);
    assert_int_equal(tlsrec_create(e, &r, 0xc02f, 0, secret, secret, 32, 0, 0), -EINVAL);
    assert_int_equal(tlsrec_create(e, &r, TLSREC_AES_128_GCM_SHA256, 1, secret, secret, 48, 0, 0),
                     -EINVAL);
    assert_int_equal(tlsrec_create(e, &r, TLSREC_AES_128_GCM_SHA256, 1, secret, secret, 31, 0, 0),
                     -EINVAL);
    assert_int_equal(tlsrec_create(e, &r, TLSREC_AES_256_GCM_SHA384, 1, secret, secret, 32, 0, 0),
                     -EINVAL);
    assert_int_equal(tlsrec_create(e, &r, TLSREC_AES_256_GCM_SHA384, 0, secret, secret, 49, 0, 0),
                     -EINVAL);
    assert_int_equal(
        tlsrec_create(e, &r, TLSREC_CHACHA20_POLY1305_SHA256, 1, secret, secret, 48, 0, 0),
        -EINVAL);
    assert_int_equal(
        tlsrec_create(e, &r, TLSREC_CHACHA20_POLY1305_SHA256, 1, secret, secret, 0, 0, 0), -EINVAL);
    assert_null(r); /* a refused call leaves *out alone */
    assert_int_equal(tlsrec_secret_len(0x1304), 0);
    for (int i = 0; i < SUITE_COUNT; i++) {
        assert_int_equal(tlsrec_secret_len(suites[i].id), suites[i].secret_len);
        /* The sequence numbers given are where each direction starts. */
        assert_int_equal(
            tlsrec_create(e, &r, suites[i].id, 1, secret, secret + 1, suites[i].secret_len, 5, 7),
            0);
        assert_int_equal(tlsrec_read_seq(r), 5);
        assert_int_equal(tlsrec_write_seq(r), 7);
        assert_int_equal(tlsrec_read_updates(r), 0);
        assert_int_equal(tlsrec_write_updates(r), 0);
        tlsrec_destroy(e, r);
        r = NULL;
    }
    tlsrec_destroy(NULL, NULL);
    tlsrec_destroy(e, NULL);
    tlsrec_engine_destroy(e);
    tlsrec_engine_destroy(NULL);
}

/* ---- round trips ----------------------------------------------------------------------------- */

/* Sends n random bytes from w (on side w_is_server) to r: checks the records (count, exact
 * lengths, limits), opens them whole at r, then again at fresh readers at the same sequence
 * number a byte at a time and in random pieces. */
static void round_trip(pair_t *p, tlsrec_t *w, tlsrec_t *r, int w_is_server, size_t n) {
    uint8_t *data = malloc(n > 0 ? n : 1);
    assert_non_null(data);
    fill_random(data, n);
    buf_t wire = {0}, plain = {0}, out = {0};
    uint64_t wseq = tlsrec_write_seq(w), rseq = tlsrec_read_seq(r);
    assert_int_equal(wseq, rseq);
    assert_int_equal(tlsrec_seal(p->e, w, data, n, &wire), 0);
    if (n == 0) {
        /* Nothing is appended: not even an empty record. */
        assert_int_equal(wire.len, 0);
        assert_int_equal(tlsrec_write_seq(w), wseq);
        verdict_t v = open_copy(p->e, r, wire.data, 0, &plain, &out);
        assert_int_equal(v.rc, 0);
        assert_int_equal(v.used, 0);
        assert_int_equal(v.plain, 0);
        free(data);
        return;
    }
    /* As few records as fit, each full but the last, and none over the limit. */
    size_t records = (n + TLSREC_PLAINTEXT_MAX_BYTES - 1) / TLSREC_PLAINTEXT_MAX_BYTES;
    size_t *ends = malloc(records * sizeof(*ends));
    assert_non_null(ends);
    assert_int_equal(walk_records(wire.data, wire.len, ends, records), records);
    for (size_t i = 0, start = 0; i < records; start = ends[i], i++) {
        size_t content = i + 1 < records ? TLSREC_PLAINTEXT_MAX_BYTES
                                         : n - (records - 1) * TLSREC_PLAINTEXT_MAX_BYTES;
        assert_int_equal(ends[i] - start, TLSREC_HEADER_BYTES + content + 1 + TAG_BYTES);
    }
    assert_int_equal(tlsrec_write_seq(w), wseq + records);
    free(ends);

    verdict_t v = open_copy(p->e, r, wire.data, wire.len, &plain, &out);
    assert_int_equal(v.rc, 0);
    assert_int_equal(v.used, wire.len);
    assert_int_equal(v.plain, n);
    assert_memory_equal(plain.data, data, n);
    assert_int_equal(out.len, 0);
    assert_int_equal(tlsrec_read_seq(r), rseq + records);

    for (int split = 0; split <= RANDOM_SPLITS; split++) {
        tlsrec_t *fresh = make_state(p, !w_is_server, rseq, rseq);
        buf_dispose(&plain);
        feed_pieces(p->e, fresh, wire.data, wire.len, split == 0 ? 1 : SPLIT_MAX_BYTES, &plain,
                    &out);
        assert_int_equal(plain.len, n);
        assert_memory_equal(plain.data, data, n);
        assert_int_equal(out.len, 0);
        assert_int_equal(tlsrec_read_seq(fresh), rseq + records);
        tlsrec_destroy(p->e, fresh);
    }
    buf_dispose(&wire);
    buf_dispose(&plain);
    buf_dispose(&out);
    free(data);
}

static void test_round_trips(void **state) {
    (void)state;
    tlsrec_engine_t *e = engine();
    for (int i = 0; i < SUITE_COUNT; i++) {
        pair_t p;
        pair_open(&p, e, &suites[i]);
        for (size_t k = 0; k < sizeof(round_trip_sizes) / sizeof(round_trip_sizes[0]); k++) {
            round_trip(&p, p.cli, p.srv, 0, round_trip_sizes[k]);
            round_trip(&p, p.srv, p.cli, 1, round_trip_sizes[k]);
        }
        pair_close(&p);
    }
    tlsrec_engine_destroy(e);
}

/* Two connections of the same suite share the engine's cipher context, which remembers the key
 * it holds: alternating between them, and replacing one with a new connection (whose state may
 * reuse the freed memory, so the key's address), must always use the right key. */
static void test_interleaved_connections(void **state) {
    (void)state;
    tlsrec_engine_t *e = engine();
    uint8_t data[64];
    for (int i = 0; i < SUITE_COUNT; i++) {
        pair_t a, b;
        pair_open(&a, e, &suites[i]);
        pair_open(&b, e, &suites[i]);
        for (int round = 0; round < 4; round++) {
            fill_random(data, sizeof(data));
            expect_data(e, a.cli, a.srv, data, sizeof(data));
            expect_data(e, b.cli, b.srv, data, sizeof(data));
            expect_data(e, b.srv, b.cli, data, 1 + (size_t)round);
            expect_data(e, a.srv, a.cli, data, 1 + (size_t)round);
            /* Seal on one connection, then open on the other before the first is opened. */
            buf_t wa = {0}, wb = {0}, pa = {0}, pb = {0}, out = {0};
            assert_int_equal(tlsrec_seal(e, a.cli, data, sizeof(data), &wa), 0);
            assert_int_equal(tlsrec_seal(e, b.cli, data, sizeof(data), &wb), 0);
            assert_int_equal(open_copy(e, b.srv, wb.data, wb.len, &pb, &out).rc, 0);
            assert_int_equal(open_copy(e, a.srv, wa.data, wa.len, &pa, &out).rc, 0);
            assert_int_equal(pa.len, sizeof(data));
            assert_int_equal(pb.len, sizeof(data));
            assert_memory_equal(pa.data, data, sizeof(data));
            assert_memory_equal(pb.data, data, sizeof(data));
            buf_dispose(&wa);
            buf_dispose(&wb);
            buf_dispose(&pa);
            buf_dispose(&pb);
            buf_dispose(&out);
            pair_close(&a);
            pair_open(&a, e, &suites[i]);
        }
        /* The context holds the key of a server state that is then destroyed, and a new one is
         * created, most likely at the same address (the allocator reuses the freed block): its
         * first use must set its own key, not take the cached one for it. */
        pair_t c;
        buf_t wa = {0}, wc = {0}, plain = {0}, out = {0};
        assert_int_equal(tlsrec_seal(e, a.cli, "old", 3, &wa), 0);
        pair_open(&c, e, &suites[i]);
        tlsrec_destroy(e, c.srv);
        assert_int_equal(tlsrec_seal(e, c.cli, "new", 3, &wc), 0);
        assert_int_equal(open_copy(e, a.srv, wa.data, wa.len, &plain, &out).rc, 0);
        tlsrec_destroy(e, a.srv);
        c.srv = make_state(&c, 1, 0, 0);
        a.srv = NULL;
        buf_dispose(&plain);
        verdict_t v = open_copy(e, c.srv, wc.data, wc.len, &plain, &out);
        assert_int_equal(v.rc, 0);
        assert_int_equal(v.plain, 3);
        assert_memory_equal(plain.data, "new", 3);
        buf_dispose(&wa);
        buf_dispose(&wc);
        buf_dispose(&plain);
        buf_dispose(&out);
        pair_close(&c);
        pair_close(&a);
        pair_close(&b);
    }
    tlsrec_engine_destroy(e);
}

/* ---- inner plaintexts ------------------------------------------------------------------------ */

static void test_inner_application_data(void **state) {
    (void)state;
    tlsrec_engine_t *e = engine();
    uint8_t *big = malloc(INNER_MAX_BYTES + 1);
    assert_non_null(big);
    for (int i = 0; i < SUITE_COUNT; i++) {
        const suite_t *s = &suites[i];
        /* A zero-length application data record: legal, and nothing to deliver. */
        static const uint8_t empty[] = {CT_APPLICATION_DATA};
        expect_inner_ok(e, s, empty, sizeof(empty), NULL, 0);
        static const uint8_t empty_padded[] = {CT_APPLICATION_DATA, 0, 0, 0};
        expect_inner_ok(e, s, empty_padded, sizeof(empty_padded), NULL, 0);
        /* Padding zeros are removed, and only they: zeros that end the content stay. */
        uint8_t padded[2 + 1 + PADDING_BYTES] = {'h', 'i', CT_APPLICATION_DATA};
        expect_inner_ok(e, s, padded, sizeof(padded), "hi", 2);
        static const uint8_t zeros_inside[] = {'a', 0, 0, CT_APPLICATION_DATA, 0, 0};
        expect_inner_ok(e, s, zeros_inside, sizeof(zeros_inside), "a\0\0", 3);
        /* Content of exactly 2^14 bytes is accepted, with padding up to the largest record too
         * (the limit is on the content, as OpenSSL's receiver has it); one byte more is not. */
        memset(big, 'x', TLSREC_PLAINTEXT_MAX_BYTES + 1);
        big[TLSREC_PLAINTEXT_MAX_BYTES] = CT_APPLICATION_DATA;
        expect_inner_ok(e, s, big, TLSREC_PLAINTEXT_MAX_BYTES + 1, big, TLSREC_PLAINTEXT_MAX_BYTES);
        memset(big + TLSREC_PLAINTEXT_MAX_BYTES + 1, 0,
               INNER_MAX_BYTES - TLSREC_PLAINTEXT_MAX_BYTES - 1);
        expect_inner_ok(e, s, big, INNER_MAX_BYTES, big, TLSREC_PLAINTEXT_MAX_BYTES);
        big[TLSREC_PLAINTEXT_MAX_BYTES] = 'x';
        big[TLSREC_PLAINTEXT_MAX_BYTES + 1] = CT_APPLICATION_DATA;
        expect_inner_error(e, s, big, TLSREC_PLAINTEXT_MAX_BYTES + 2, 1);
        /* tlsrec_seal_inner refuses what no record can hold, and the state stays usable. */
        pair_t p;
        buf_t out = {0};
        pair_open(&p, e, s);
        assert_int_equal(tlsrec_seal_inner(e, p.cli, big, INNER_MAX_BYTES + 1, &out), -EINVAL);
        assert_int_equal(out.len, 0);
        assert_int_equal(tlsrec_write_seq(p.cli), 0);
        expect_data(e, p.cli, p.srv, "still", 5);
        pair_close(&p);
    }
    free(big);
    tlsrec_engine_destroy(e);
}

/* An inner plaintext of zeros only has no content type (RFC 8446 §5.4). So has an empty one,
 * whose record is shorter than the least a record can be. */
static void test_inner_zeros(void **state) {
    (void)state;
    tlsrec_engine_t *e = engine();
    static const uint8_t zeros[8] = {0};
    for (int i = 0; i < SUITE_COUNT; i++) {
        expect_inner_error(e, &suites[i], zeros, 1, 1);
        expect_inner_error(e, &suites[i], zeros, sizeof(zeros), 1);
        expect_inner_error(e, &suites[i], zeros, 0, 1);
    }
    tlsrec_engine_destroy(e);
}

static void test_inner_alerts(void **state) {
    (void)state;
    tlsrec_engine_t *e = engine();
    for (int i = 0; i < SUITE_COUNT; i++) {
        const suite_t *s = &suites[i];
        /* user_canceled is harmless (RFC 8446 §6.1): nothing is delivered, nothing fails. */
        static const uint8_t canceled[] = {ALERT_WARNING, ALERT_USER_CANCELED, CT_ALERT};
        expect_inner_ok(e, s, canceled, sizeof(canceled), NULL, 0);

        /* close_notify ends the stream: what came before it is delivered, what follows is not. */
        pair_t p;
        buf_t wire = {0}, plain = {0}, out = {0};
        pair_open(&p, e, s);
        static const uint8_t close_notify[] = {ALERT_WARNING, TLSREC_ALERT_CLOSE_NOTIFY, CT_ALERT};
        assert_int_equal(tlsrec_seal(e, p.cli, "before", 6, &wire), 0);
        assert_int_equal(tlsrec_seal_inner(e, p.cli, close_notify, sizeof(close_notify), &wire), 0);
        size_t through_close = wire.len;
        assert_int_equal(tlsrec_seal(e, p.cli, "after", 5, &wire), 0);
        verdict_t v = open_copy(e, p.srv, wire.data, wire.len, &plain, &out);
        assert_int_equal(v.rc, -EPIPE);
        assert_int_equal(v.plain, 6);
        assert_int_equal(plain.len, 6);
        assert_memory_equal(plain.data, "before", 6);
        assert_int_equal(v.used, through_close);
        assert_int_equal(out.len, 0);
        /* Nothing is read after close_notify (RFC 8446 §6.1), and it says so again. */
        expect_reads_nothing(&p, p.srv, 1, -EPIPE);
        /* Writing goes on: our own close_notify (§6.1: "each party MUST send a close_notify alert
         * before closing its write side"), which the peer reads as the end of the stream. */
        buf_t reply = {0};
        tlsrec_alert(e, p.srv, TLSREC_ALERT_CLOSE_NOTIFY, &reply);
        assert_true(reply.len > 0);
        v = open_copy(e, p.cli, reply.data, reply.len, NULL, &out);
        assert_int_equal(v.rc, -EPIPE);
        assert_int_equal(v.used, reply.len);
        buf_dispose(&reply);
        buf_dispose(&wire);
        buf_dispose(&plain);
        buf_dispose(&out);
        pair_close(&p);

        /* The peer's fatal alert fails the state; it has closed, so nothing is sent back. */
        static const uint8_t fatal[] = {ALERT_FATAL, ALERT_HANDSHAKE_FAILURE, CT_ALERT};
        expect_inner_error(e, s, fatal, sizeof(fatal), 0);
        /* Every alert but close_notify and user_canceled is an error whatever its level says
         * (RFC 8446 §6). */
        static const uint8_t warning[] = {ALERT_WARNING, ALERT_HANDSHAKE_FAILURE, CT_ALERT};
        expect_inner_error(e, s, warning, sizeof(warning), 0);
        /* An alert is two bytes. */
        static const uint8_t short_alert[] = {TLSREC_ALERT_CLOSE_NOTIFY + 1, CT_ALERT};
        expect_inner_error(e, s, short_alert, sizeof(short_alert), 1);
        static const uint8_t long_alert[] = {ALERT_WARNING, ALERT_USER_CANCELED, 1, CT_ALERT};
        expect_inner_error(e, s, long_alert, sizeof(long_alert), 1);
        static const uint8_t empty_alert[] = {CT_ALERT};
        expect_inner_error(e, s, empty_alert, sizeof(empty_alert), 1);
    }
    tlsrec_engine_destroy(e);
}

static void test_inner_content_types(void **state) {
    (void)state;
    tlsrec_engine_t *e = engine();
    static const uint8_t types[] = {CT_CHANGE_CIPHER_SPEC, CT_HEARTBEAT, 1, 19, 25, 255};
    for (int i = 0; i < SUITE_COUNT; i++) {
        const suite_t *s = &suites[i];
        for (size_t k = 0; k < sizeof(types); k++) {
            const uint8_t inner[] = {1, types[k]};
            expect_inner_error(e, s, inner, sizeof(inner), 1);
            expect_inner_error(e, s, inner + 1, 1, 1);
            /* Not even a well-formed KeyUpdate makes another content type a handshake. */
            const uint8_t ku[] = {HS_KEY_UPDATE, 0, 0, 1, 0, types[k]};
            expect_inner_error(e, s, ku, sizeof(ku), 1);
        }
        /* The only handshake message a peer may send now is KeyUpdate: not a ticket (those go
         * the other way), not a Finished, not a bare or partial header. */
        static const uint8_t ticket[] = {HS_NEW_SESSION_TICKET, 0, 0, 4, 0, 0, 0, 0, CT_HANDSHAKE};
        expect_inner_error(e, s, ticket, sizeof(ticket), 1);
        static const uint8_t finished[] = {HS_FINISHED, 0, 0, 1, 0, CT_HANDSHAKE};
        expect_inner_error(e, s, finished, sizeof(finished), 1);
        static const uint8_t empty[] = {CT_HANDSHAKE};
        expect_inner_error(e, s, empty, sizeof(empty), 1);
        static const uint8_t partial[] = {HS_KEY_UPDATE, 0, 0, CT_HANDSHAKE};
        expect_inner_error(e, s, partial, sizeof(partial), 1);
    }
    tlsrec_engine_destroy(e);
}

/* ---- KeyUpdate ------------------------------------------------------------------------------- */

/* A KeyUpdate that does not ask for ours: the server reads with the next key at once, even
 * within the same call, sends nothing, and refuses records under the old key. */
static void test_key_update_not_requested(void **state) {
    (void)state;
    tlsrec_engine_t *e = engine();
    static const uint8_t ku[] = {HS_KEY_UPDATE, 0, 0, 1, 0, CT_HANDSHAKE};
    for (int i = 0; i < SUITE_COUNT; i++) {
        const suite_t *s = &suites[i];
        pair_t p;
        pair_open(&p, e, s);
        expect_data(e, p.cli, p.srv, "first", 5);
        /* The client's KeyUpdate, then data under its next key: seal_inner does not move the
         * client's own key, so a state made from the next secret writes what follows. */
        buf_t wire = {0}, plain = {0}, out = {0};
        uint64_t rseq = tlsrec_read_seq(p.srv);
        assert_int_equal(tlsrec_seal_inner(e, p.cli, ku, sizeof(ku), &wire), 0);
        uint8_t next[TLSREC_SECRET_MAX_BYTES];
        next_secret(s, p.csec, next);
        tlsrec_t *cli2 = NULL;
        assert_int_equal(tlsrec_create(e, &cli2, s->id, 0, next, p.ssec, s->secret_len, 0,
                                       tlsrec_read_seq(p.cli)),
                         0);
        assert_int_equal(tlsrec_seal(e, cli2, "after the update", 16, &wire), 0);
        verdict_t v = open_copy(e, p.srv, wire.data, wire.len, &plain, &out);
        assert_int_equal(v.rc, 0);
        assert_int_equal(v.used, wire.len);
        assert_int_equal(v.plain, 16);
        assert_memory_equal(plain.data, "after the update", 16);
        assert_int_equal(out.len, 0);
        assert_int_equal(tlsrec_read_updates(p.srv), 1);
        assert_int_equal(tlsrec_write_updates(p.srv), 0);
        assert_int_equal(tlsrec_read_seq(p.srv), 1); /* a new key starts at 0 */
        /* The same stream a byte at a time at a fresh reader. */
        tlsrec_t *fresh = make_state(&p, 1, rseq, 0);
        buf_dispose(&plain);
        feed_pieces(e, fresh, wire.data, wire.len, 1, &plain, &out);
        assert_int_equal(plain.len, 16);
        assert_memory_equal(plain.data, "after the update", 16);
        assert_int_equal(tlsrec_read_updates(fresh), 1);
        tlsrec_destroy(e, fresh);
        /* Later data both ways still works; the old client key no longer does. */
        expect_data(e, cli2, p.srv, "later", 5);
        expect_data(e, p.srv, p.cli, "down", 4);
        buf_dispose(&wire);
        buf_dispose(&out);
        assert_int_equal(tlsrec_seal(e, p.cli, "stale", 5, &wire), 0);
        v = open_copy(e, p.srv, wire.data, wire.len, NULL, &out);
        assert_int_equal(v.rc, -EPROTO);
        assert_true(out.len > 0);
        tlsrec_destroy(e, cli2);
        buf_dispose(&wire);
        buf_dispose(&plain);
        buf_dispose(&out);
        pair_close(&p);
    }
    tlsrec_engine_destroy(e);
}

/* Seals a KeyUpdate by hand (request is 0 or 1) with w's write key, and returns a state of the
 * same side (is_server) that writes with the next key, from the next secret computed here: what
 * the peer's tlsrec_seal would do, written out. write_secret is w's secret and is moved on. */
static tlsrec_t *hand_key_update(const pair_t *p, tlsrec_t *w, int is_server, uint8_t *write_secret,
                                 int request, buf_t *wire) {
    const uint8_t ku[] = {HS_KEY_UPDATE, 0, 0, 1, (uint8_t)request, CT_HANDSHAKE};
    uint8_t next[TLSREC_SECRET_MAX_BYTES];
    tlsrec_t *r = NULL;
    assert_int_equal(tlsrec_seal_inner(p->e, w, ku, sizeof(ku), wire), 0);
    next_secret(p->s, write_secret, next);
    memcpy(write_secret, next, p->s->secret_len);
    assert_int_equal(tlsrec_create(p->e, &r, p->s->id, is_server, is_server ? p->csec : next,
                                   is_server ? next : p->ssec, p->s->secret_len, 0, 0),
                     0);
    return r;
}

/* A KeyUpdate that asks for ours: the server reads with the next key at once and owes its own
 * KeyUpdate (not requesting one back), which goes out with its next application data, before
 * it (RFC 8446 §4.6.3); sealing nothing sends nothing, the answer included. */
static void test_key_update_requested(void **state) {
    (void)state;
    tlsrec_engine_t *e = engine();
    for (int i = 0; i < SUITE_COUNT; i++) {
        const suite_t *s = &suites[i];
        pair_t p;
        pair_open(&p, e, s);
        expect_data(e, p.srv, p.cli, "first", 5);
        uint8_t csec[TLSREC_SECRET_MAX_BYTES], next_s[TLSREC_SECRET_MAX_BYTES];
        memcpy(csec, p.csec, s->secret_len);
        buf_t wire = {0}, plain = {0}, out = {0}, answer = {0};
        tlsrec_t *cli2 = hand_key_update(&p, p.cli, 0, csec, 1, &wire);
        verdict_t v = open_copy(e, p.srv, wire.data, wire.len, &plain, &out);
        assert_int_equal(v.rc, 0);
        assert_int_equal(v.plain, 0);
        assert_int_equal(out.len, 0);
        assert_int_equal(tlsrec_read_updates(p.srv), 1);
        assert_int_equal(tlsrec_write_updates(p.srv), 0);
        assert_int_equal(tlsrec_seal(e, p.srv, "", 0, &out), 0);
        assert_int_equal(out.len, 0);
        assert_int_equal(tlsrec_write_updates(p.srv), 0);
        /* The next data: a KeyUpdate record under the old key, then the data under the new one,
         * which a state knowing only the server's next secret (RFC 8446 §7.2) reads. */
        assert_int_equal(tlsrec_seal(e, p.srv, "down", 4, &out), 0);
        assert_int_equal(tlsrec_write_updates(p.srv), 1);
        assert_int_equal(tlsrec_write_seq(p.srv), 1);
        size_t ends[2];
        assert_int_equal(walk_records(out.data, out.len, ends, 2), 2);
        assert_int_equal(ends[0], KEY_UPDATE_RECORD_BYTES);
        next_secret(s, p.ssec, next_s);
        tlsrec_t *reader = NULL;
        assert_int_equal(tlsrec_create(e, &reader, s->id, 0, p.csec, next_s, s->secret_len, 0, 0),
                         0);
        v = open_copy(e, reader, out.data + ends[0], out.len - ends[0], &plain, &answer);
        assert_int_equal(v.rc, 0);
        assert_memory_equal(plain.data, "down", 4);
        tlsrec_destroy(e, reader);
        /* The client opens both: its read key moves on, and it answers nothing. */
        buf_dispose(&plain);
        v = open_copy(e, p.cli, out.data, out.len, &plain, &answer);
        assert_int_equal(v.rc, 0);
        assert_int_equal(v.used, out.len);
        assert_int_equal(v.plain, 4);
        assert_memory_equal(plain.data, "down", 4);
        assert_int_equal(answer.len, 0);
        assert_int_equal(tlsrec_read_updates(p.cli), 1);
        assert_int_equal(tlsrec_write_updates(p.cli), 0);
        /* The request is answered once: later data carries no KeyUpdate. */
        buf_dispose(&out);
        assert_int_equal(tlsrec_seal(e, p.srv, "more", 4, &out), 0);
        assert_int_equal(walk_records(out.data, out.len, NULL, 0), 1);
        assert_int_equal(tlsrec_write_updates(p.srv), 1);
        buf_dispose(&plain);
        assert_int_equal(open_copy(e, p.cli, out.data, out.len, &plain, &answer).rc, 0);
        assert_memory_equal(plain.data, "more", 4);
        /* Data both ways under the new keys. */
        expect_data(e, cli2, p.srv, "up", 2);
        expect_data(e, p.srv, p.cli, "down again", 10);
        expect_data(e, cli2, p.srv, "up again", 8);
        tlsrec_destroy(e, cli2);
        buf_dispose(&wire);
        buf_dispose(&plain);
        buf_dispose(&out);
        buf_dispose(&answer);
        pair_close(&p);
    }
    tlsrec_engine_destroy(e);
}

/* The client's writing side in the KeyUpdate limit tests: the state that seals its records now
 * (p->cli at first) and that state's traffic secret; every KeyUpdate sealed by hand moves both to
 * the next key. */
typedef struct writer {
    tlsrec_t *w;
    uint8_t secret[TLSREC_SECRET_MAX_BYTES];
} writer_t;

static void writer_start(const pair_t *p, writer_t *c) {
    c->w = p->cli;
    memcpy(c->secret, p->csec, p->s->secret_len);
}

/* Seals a KeyUpdate (request is 0 or 1) with c's state and moves c to the next key. */
static void writer_key_update(const pair_t *p, writer_t *c, int request, buf_t *wire) {
    tlsrec_t *next = hand_key_update(p, c->w, 0, c->secret, request, wire);
    if (c->w != p->cli)
        tlsrec_destroy(p->e, c->w);
    c->w = next;
}

static void writer_end(const pair_t *p, writer_t *c) {
    if (c->w != p->cli)
        tlsrec_destroy(p->e, c->w);
    c->w = NULL;
}

/* Seals count KeyUpdates from c back to back (asking for ours when request is 1) and opens them
 * at the server in one call: every one is accepted, nothing is delivered and nothing sent back. */
static void key_updates_accepted(pair_t *p, writer_t *c, int count, int request) {
    buf_t wire = {0}, out = {0};
    unsigned before = tlsrec_read_updates(p->srv);
    for (int k = 0; k < count; k++)
        writer_key_update(p, c, request, &wire);
    verdict_t v = open_copy(p->e, p->srv, wire.data, wire.len, NULL, &out);
    assert_int_equal(v.rc, 0);
    assert_int_equal(v.used, wire.len);
    assert_int_equal(v.plain, 0);
    assert_int_equal(out.len, 0);
    assert_int_equal(tlsrec_read_updates(p->srv), before + (unsigned)count);
    buf_dispose(&wire);
    buf_dispose(&out);
}

/* Checks that out holds exactly the fatal alert description that the server seals next under its
 * write key: AEAD sealing is deterministic, so a state made from the same traffic secret (the
 * server's first, moved on once per update it made) at the same sequence number seals the same
 * bytes. */
static void expect_server_alert(const pair_t *p, const buf_t *out, uint8_t description) {
    uint8_t secret[TLSREC_SECRET_MAX_BYTES], next[TLSREC_SECRET_MAX_BYTES];
    memcpy(secret, p->ssec, p->s->secret_len);
    for (unsigned k = 0; k < tlsrec_write_updates(p->srv); k++) {
        next_secret(p->s, secret, next);
        memcpy(secret, next, p->s->secret_len);
    }
    tlsrec_t *ref = NULL;
    buf_t want = {0};
    assert_int_equal(tlsrec_create(p->e, &ref, p->s->id, 1, p->csec, secret, p->s->secret_len, 0,
                                   tlsrec_write_seq(p->srv) - 1),
                     0);
    tlsrec_alert(p->e, ref, description, &want);
    assert_int_equal(out->len, want.len);
    assert_memory_equal(out->data, want.data, want.len);
    tlsrec_destroy(p->e, ref);
    buf_dispose(&want);
}

/* Seals one more KeyUpdate from c and checks the server refuses it as a flood: -EPROTO, the
 * record consumed but its key not taken, exactly an unexpected_message alert sent, and nothing
 * more read or written. */
static void key_update_refused(pair_t *p, writer_t *c) {
    buf_t wire = {0}, out = {0};
    unsigned before = tlsrec_read_updates(p->srv);
    writer_key_update(p, c, 0, &wire);
    verdict_t v = open_copy(p->e, p->srv, wire.data, wire.len, NULL, &out);
    assert_int_equal(v.rc, -EPROTO);
    assert_int_equal(v.used, wire.len);
    assert_int_equal(v.plain, 0);
    assert_int_equal(tlsrec_read_updates(p->srv), before);
    expect_server_alert(p, &out, TLSREC_ALERT_UNEXPECTED_MESSAGE);
    expect_refuses(p, p->srv, 1);
    buf_dispose(&wire);
    buf_dispose(&out);
}

/* A KeyUpdate is paid for with TLSREC_KEY_UPDATE_MIN_BYTES of credit, and a connection starts
 * with TLSREC_KEY_UPDATE_BURST updates' worth: the first needs no data before it, and that many
 * back to back, one per call, are accepted; the one after them is a flood. Requests that pile up
 * while the server writes nothing are answered by one KeyUpdate, so a peer cannot grow the
 * server's output by asking. */
static void test_key_update_limits(void **state) {
    (void)state;
    tlsrec_engine_t *e = engine();
    for (int i = 0; i < SUITE_COUNT; i++) {
        pair_t p;
        writer_t c;
        pair_open(&p, e, &suites[i]);
        writer_start(&p, &c);
        for (int k = 0; k < TLSREC_KEY_UPDATE_BURST; k++)
            key_updates_accepted(&p, &c, 1, 1);
        assert_int_equal(tlsrec_read_updates(p.srv), TLSREC_KEY_UPDATE_BURST);
        assert_int_equal(tlsrec_read_seq(p.srv), 0);
        /* All those requests, one answer, before the next data. */
        buf_t out = {0}, plain = {0}, answer = {0};
        assert_int_equal(tlsrec_seal(e, p.srv, "x", 1, &out), 0);
        assert_int_equal(tlsrec_write_updates(p.srv), 1);
        assert_int_equal(walk_records(out.data, out.len, NULL, 0), 2);
        verdict_t v = open_copy(e, p.cli, out.data, out.len, &plain, &answer);
        assert_int_equal(v.rc, 0);
        assert_int_equal(v.plain, 1);
        assert_memory_equal(plain.data, "x", 1);
        assert_int_equal(answer.len, 0);
        assert_int_equal(tlsrec_read_updates(p.cli), 1);
        /* The burst is spent: the next KeyUpdate, with no data before it, is refused. */
        key_update_refused(&p, &c);
        assert_int_equal(tlsrec_read_updates(p.srv), TLSREC_KEY_UPDATE_BURST);
        writer_end(&p, &c);
        buf_dispose(&out);
        buf_dispose(&plain);
        buf_dispose(&answer);
        pair_close(&p);
    }
    tlsrec_engine_destroy(e);
}

/* Once the burst is spent, application data earns the credit back byte for byte: exactly
 * TLSREC_KEY_UPDATE_MIN_BYTES, over several records, pays for exactly one more KeyUpdate, one
 * byte fewer for none, and records without data earn nothing. The credit is capped at the
 * burst: after far more data than that, TLSREC_KEY_UPDATE_BURST updates in a row are accepted
 * and the next one is not. */
static void test_key_update_credit(void **state) {
    (void)state;
    tlsrec_engine_t *e = engine();
    uint8_t *data = malloc(KEY_UPDATE_FLOOD_BYTES);
    assert_non_null(data);
    fill_random(data, KEY_UPDATE_FLOOD_BYTES);
    static const uint8_t empty[] = {CT_APPLICATION_DATA};
    static const uint8_t canceled[] = {ALERT_WARNING, ALERT_USER_CANCELED, CT_ALERT};
    for (int i = 0; i < SUITE_COUNT; i++) {
        const suite_t *s = &suites[i];
        for (int short_by = 0; short_by <= 1; short_by++) {
            pair_t p;
            writer_t c;
            pair_open(&p, e, s);
            writer_start(&p, &c);
            key_updates_accepted(&p, &c, TLSREC_KEY_UPDATE_BURST, 0);
            /* The data in two records, and records without data between them. */
            buf_t wire = {0}, plain = {0}, out = {0};
            size_t half = TLSREC_KEY_UPDATE_MIN_BYTES / 2;
            assert_int_equal(tlsrec_seal(e, c.w, data, half, &wire), 0);
            assert_int_equal(tlsrec_seal_inner(e, c.w, empty, sizeof(empty), &wire), 0);
            assert_int_equal(tlsrec_seal_inner(e, c.w, canceled, sizeof(canceled), &wire), 0);
            assert_int_equal(tlsrec_seal(e, c.w, data + half,
                                         TLSREC_KEY_UPDATE_MIN_BYTES - half - (size_t)short_by,
                                         &wire),
                             0);
            verdict_t v = open_copy(e, p.srv, wire.data, wire.len, &plain, &out);
            assert_int_equal(v.rc, 0);
            assert_int_equal(v.used, wire.len);
            assert_int_equal(plain.len, TLSREC_KEY_UPDATE_MIN_BYTES - (size_t)short_by);
            assert_memory_equal(plain.data, data, plain.len);
            assert_int_equal(out.len, 0);
            if (!short_by)
                key_updates_accepted(&p, &c, 1, 0);
            key_update_refused(&p, &c);
            assert_int_equal(tlsrec_read_updates(p.srv),
                             TLSREC_KEY_UPDATE_BURST + (short_by ? 0 : 1));
            writer_end(&p, &c);
            buf_dispose(&wire);
            buf_dispose(&plain);
            buf_dispose(&out);
            pair_close(&p);
        }
        /* The cap: the burst spent, then data worth several bursts, then a burst again. */
        pair_t p;
        writer_t c;
        pair_open(&p, e, s);
        writer_start(&p, &c);
        key_updates_accepted(&p, &c, TLSREC_KEY_UPDATE_BURST, 0);
        for (int k = 0; k < KEY_UPDATE_FLOOD_WRITES; k++)
            expect_data(e, c.w, p.srv, data, KEY_UPDATE_FLOOD_BYTES);
        key_updates_accepted(&p, &c, TLSREC_KEY_UPDATE_BURST, 0);
        key_update_refused(&p, &c);
        assert_int_equal(tlsrec_read_updates(p.srv), 2 * TLSREC_KEY_UPDATE_BURST);
        writer_end(&p, &c);
        pair_close(&p);
    }
    free(data);
    tlsrec_engine_destroy(e);
}

/* Records that carry no application byte (empty application data, KeyUpdate, user_canceled)
 * are refused after TLSREC_CONTROL_RUN_MAX in a row, whether they come in one call or one per
 * call; a record with data starts the count again. */
static void test_control_run(void **state) {
    (void)state;
    tlsrec_engine_t *e = engine();
    static const uint8_t empty[] = {CT_APPLICATION_DATA, 0, 0};
    static const uint8_t canceled[] = {ALERT_WARNING, ALERT_USER_CANCELED, CT_ALERT};
    for (int i = 0; i < SUITE_COUNT; i++) {
        pair_t p;
        pair_open(&p, e, &suites[i]);
        buf_t wire = {0}, plain = {0}, out = {0};
        for (int k = 0; k < TLSREC_CONTROL_RUN_MAX; k++) {
            const uint8_t *inner = k % 2 ? canceled : empty;
            size_t n = k % 2 ? sizeof(canceled) : sizeof(empty);
            assert_int_equal(tlsrec_seal_inner(e, p.cli, inner, n, &wire), 0);
        }
        assert_int_equal(tlsrec_seal(e, p.cli, "d", 1, &wire), 0);
        verdict_t v = open_copy(e, p.srv, wire.data, wire.len, &plain, &out);
        assert_int_equal(v.rc, 0);
        assert_int_equal(v.used, wire.len);
        assert_int_equal(v.plain, 1);
        for (int k = 0; k <= TLSREC_CONTROL_RUN_MAX; k++) {
            buf_dispose(&wire);
            assert_int_equal(tlsrec_seal_inner(e, p.cli, empty, sizeof(empty), &wire), 0);
            v = open_copy(e, p.srv, wire.data, wire.len, &plain, &out);
            if (k < TLSREC_CONTROL_RUN_MAX) {
                assert_int_equal(v.rc, 0);
                assert_int_equal(out.len, 0);
            } else {
                assert_int_equal(v.rc, -EPROTO);
                expect_alert_record(&p, p.srv, 1, &out);
            }
        }
        expect_refuses(&p, p.srv, 1);
        buf_dispose(&wire);
        buf_dispose(&plain);
        buf_dispose(&out);
        pair_close(&p);
    }
    tlsrec_engine_destroy(e);
}

static void test_key_update_malformed(void **state) {
    (void)state;
    tlsrec_engine_t *e = engine();
    /* request_update is 0 or 1. */
    static const uint8_t value2[] = {HS_KEY_UPDATE, 0, 0, 1, 2, CT_HANDSHAKE};
    /* A KeyUpdate must end its record (RFC 8446 §5.1), whatever follows it. */
    static const uint8_t trailing[] = {HS_KEY_UPDATE, 0, 0, 1, 0, 0xaa, CT_HANDSHAKE};
    static const uint8_t trailing_zero[] = {HS_KEY_UPDATE, 0, 0, 1, 0, 0, CT_HANDSHAKE};
    static const uint8_t two[] = {HS_KEY_UPDATE, 0, 0, 1, 0, HS_KEY_UPDATE, 0, 0, 1, 0,
                                  CT_HANDSHAKE};
    /* Its length is 1. */
    static const uint8_t len0[] = {HS_KEY_UPDATE, 0, 0, 0, CT_HANDSHAKE};
    static const uint8_t len2[] = {HS_KEY_UPDATE, 0, 0, 2, 0, 0, CT_HANDSHAKE};
    static const uint8_t len_high[] = {HS_KEY_UPDATE, 1, 0, 1, 0, CT_HANDSHAKE};
    static const uint8_t len_missing_body[] = {HS_KEY_UPDATE, 0, 0, 1, CT_HANDSHAKE};
    const struct {
        const uint8_t *inner;
        size_t n;
    } cases[] = {
        {value2, sizeof(value2)},
        {trailing, sizeof(trailing)},
        {trailing_zero, sizeof(trailing_zero)},
        {two, sizeof(two)},
        {len0, sizeof(len0)},
        {len2, sizeof(len2)},
        {len_high, sizeof(len_high)},
        {len_missing_body, sizeof(len_missing_body)},
    };
    for (int i = 0; i < SUITE_COUNT; i++)
        for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++)
            expect_inner_error(e, &suites[i], cases[k].inner, cases[k].n, 1);
    tlsrec_engine_destroy(e);
}

/* ---- damaged and refused records ------------------------------------------------------------- */

/* Every bit of a record flipped, one at a time, at a fresh reader: it must never open. A flip
 * that makes the length larger leaves a record that waits for its missing bytes, then fails. */
static void test_bit_flips(void **state) {
    (void)state;
    tlsrec_engine_t *e = engine();
    uint8_t data[FLIP_PAYLOAD_BYTES];
    fill_random(data, sizeof(data));
    for (int i = 0; i < SUITE_COUNT; i++) {
        pair_t p;
        pair_open(&p, e, &suites[i]);
        buf_t wire = {0};
        assert_int_equal(tlsrec_seal(e, p.cli, data, sizeof(data), &wire), 0);
        size_t n = wire.len;
        assert_int_equal(n, TLSREC_HEADER_BYTES + sizeof(data) + 1 + TAG_BYTES);
        uint8_t *rec = calloc(1, TLSREC_RECORD_MAX_BYTES);
        assert_non_null(rec);
        for (size_t bit = 0; bit < 8 * n; bit++) {
            memset(rec, 0, TLSREC_RECORD_MAX_BYTES);
            memcpy(rec, wire.data, n);
            rec[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            tlsrec_t *r = make_state(&p, 1, 0, 0);
            buf_t out = {0};
            size_t body = ((size_t)rec[3] << 8) | rec[4];
            size_t len = n;
            if (rec[0] == CT_APPLICATION_DATA && body >= BODY_MIN_BYTES &&
                body <= TLSREC_CIPHERTEXT_MAX_BYTES && TLSREC_HEADER_BYTES + body > n) {
                verdict_t wait = open_copy(e, r, rec, n, NULL, &out);
                assert_int_equal(wait.rc, 0);
                assert_int_equal(wait.used, 0);
                assert_int_equal(out.len, 0);
                len = TLSREC_HEADER_BYTES + body;
            }
            verdict_t v = open_copy(e, r, rec, len, NULL, &out);
            if (v.rc != -EPROTO)
                fail_msg("suite %04x, bit %zu flipped: %d, expected -EPROTO", suites[i].id, bit,
                         v.rc);
            assert_int_equal(v.used, 0);
            assert_int_equal(v.plain, 0);
            expect_alert_record(&p, r, 1, &out);
            expect_refuses(&p, r, 1);
            buf_dispose(&out);
            tlsrec_destroy(e, r);
        }
        /* The record as sealed opens. */
        tlsrec_t *r = make_state(&p, 1, 0, 0);
        buf_t plain = {0}, out = {0};
        verdict_t v = open_copy(e, r, wire.data, n, &plain, &out);
        assert_int_equal(v.rc, 0);
        assert_int_equal(v.plain, sizeof(data));
        assert_memory_equal(plain.data, data, sizeof(data));
        tlsrec_destroy(e, r);
        buf_dispose(&plain);
        buf_dispose(&out);
        free(rec);
        buf_dispose(&wire);
        pair_close(&p);
    }
    tlsrec_engine_destroy(e);
}

/* Opens hdr[0, n) at a fresh server and expects -EPROTO with an alert, nothing consumed. */
static void expect_header_error(tlsrec_engine_t *e, const suite_t *s, const void *hdr, size_t n) {
    pair_t p;
    buf_t out = {0};
    pair_open(&p, e, s);
    verdict_t v = open_copy(e, p.srv, hdr, n, NULL, &out);
    assert_int_equal(v.rc, -EPROTO);
    assert_int_equal(v.used, 0);
    assert_int_equal(v.plain, 0);
    expect_alert_record(&p, p.srv, 1, &out);
    expect_refuses(&p, p.srv, 1);
    buf_dispose(&out);
    pair_close(&p);
}

/* Opens hdr[0, n) at a fresh server and expects it to wait for more bytes. */
static void expect_header_waits(tlsrec_engine_t *e, const suite_t *s, const void *hdr, size_t n) {
    pair_t p;
    buf_t out = {0};
    pair_open(&p, e, s);
    verdict_t v = open_copy(e, p.srv, hdr, n, NULL, &out);
    assert_int_equal(v.rc, 0);
    assert_int_equal(v.used, 0);
    assert_int_equal(v.plain, 0);
    assert_int_equal(out.len, 0);
    expect_data(e, p.cli, p.srv, "ok", 2);
    buf_dispose(&out);
    pair_close(&p);
}

static void test_bad_headers(void **state) {
    (void)state;
    tlsrec_engine_t *e = engine();
    for (int i = 0; i < SUITE_COUNT; i++) {
        const suite_t *s = &suites[i];
        /* After the handshake every record says application_data outside. */
        expect_header_error(e, s, "\x14\x03\x03\x00\x01\x01", 6);
        expect_header_error(e, s, "\x15\x03\x03\x00\x02\x02\x28", 7);
        expect_header_error(e, s, "\x16\x03\x03\x00\x04\x01\x00\x00\x00", 9);
        expect_header_error(e, s, "\x00\x03\x03\x00\x11", 5);
        /* The length is refused as soon as the header is there, before the body. */
        expect_header_error(e, s, "\x17\x03\x03\x41\x01", 5);
        expect_header_error(e, s, "\x17\x03\x03\xff\xff", 5);
        expect_header_error(e, s, "\x17\x03\x03\x00\x10", 5);
        expect_header_error(e, s, "\x17\x03\x03\x00\x00", 5);
        /* The longest and the shortest legal lengths wait for their body; so does anything
         * shorter than a header. */
        expect_header_waits(e, s, "\x17\x03\x03\x41\x00", 5);
        expect_header_waits(e, s, "\x17\x03\x03\x00\x11", 5);
        expect_header_waits(e, s, "\x14\x03\x03\x00", 4);
        expect_header_waits(e, s, "", 0);

        /* A bad header after a good record: the good record is consumed and delivered. */
        pair_t p;
        buf_t wire = {0}, plain = {0}, out = {0};
        pair_open(&p, e, s);
        assert_int_equal(tlsrec_seal(e, p.cli, "good", 4, &wire), 0);
        size_t good = wire.len;
        buf_append(&wire, "\x14\x03\x03\x00\x01\x01", 6);
        verdict_t v = open_copy(e, p.srv, wire.data, wire.len, &plain, &out);
        assert_int_equal(v.rc, -EPROTO);
        assert_int_equal(v.used, good);
        assert_int_equal(v.plain, 4);
        assert_memory_equal(plain.data, "good", 4);
        expect_alert_record(&p, p.srv, 1, &out);
        buf_dispose(&wire);
        buf_dispose(&plain);
        buf_dispose(&out);
        pair_close(&p);
    }
    tlsrec_engine_destroy(e);
}

/* Records must arrive once each, in order: the nonce is the sequence number. */
static void test_replay_reorder(void **state) {
    (void)state;
    tlsrec_engine_t *e = engine();
    for (int i = 0; i < SUITE_COUNT; i++) {
        pair_t p;
        pair_open(&p, e, &suites[i]);
        buf_t rec[3] = {{0}}, out = {0};
        for (int k = 0; k < 3; k++) {
            assert_int_equal(tlsrec_seal(e, p.cli, &"abc"[k], 1, &rec[k]), 0);
            assert_int_equal(tlsrec_write_seq(p.cli), (uint64_t)k + 1);
        }
        /* In order: all open. */
        for (int k = 0; k < 3; k++)
            assert_int_equal(open_copy(e, p.srv, rec[k].data, rec[k].len, NULL, &out).rc, 0);
        assert_int_equal(tlsrec_read_seq(p.srv), 3);
        /* Replayed right after it was accepted. */
        tlsrec_t *r = make_state(&p, 1, 0, 0);
        assert_int_equal(open_copy(e, r, rec[0].data, rec[0].len, NULL, &out).rc, 0);
        assert_int_equal(open_copy(e, r, rec[0].data, rec[0].len, NULL, &out).rc, -EPROTO);
        tlsrec_destroy(e, r);
        /* Replayed later. */
        r = make_state(&p, 1, 0, 0);
        for (int k = 0; k < 3; k++)
            assert_int_equal(open_copy(e, r, rec[k].data, rec[k].len, NULL, &out).rc, 0);
        assert_int_equal(open_copy(e, r, rec[1].data, rec[1].len, NULL, &out).rc, -EPROTO);
        tlsrec_destroy(e, r);
        /* Reordered, and one missing. */
        r = make_state(&p, 1, 0, 0);
        assert_int_equal(open_copy(e, r, rec[1].data, rec[1].len, NULL, &out).rc, -EPROTO);
        tlsrec_destroy(e, r);
        r = make_state(&p, 1, 0, 0);
        assert_int_equal(open_copy(e, r, rec[0].data, rec[0].len, NULL, &out).rc, 0);
        assert_int_equal(open_copy(e, r, rec[2].data, rec[2].len, NULL, &out).rc, -EPROTO);
        tlsrec_destroy(e, r);
        /* A reader that starts where tlsrec_create says reads from there. */
        r = make_state(&p, 1, 1, 0);
        assert_int_equal(open_copy(e, r, rec[1].data, rec[1].len, NULL, &out).rc, 0);
        assert_int_equal(open_copy(e, r, rec[2].data, rec[2].len, NULL, &out).rc, 0);
        tlsrec_destroy(e, r);
        /* A record of the other direction (the same sequence number, the other key). */
        buf_t down = {0};
        assert_int_equal(tlsrec_seal(e, p.srv, "d", 1, &down), 0);
        r = make_state(&p, 1, 0, 0);
        assert_int_equal(open_copy(e, r, down.data, down.len, NULL, &out).rc, -EPROTO);
        tlsrec_destroy(e, r);
        buf_dispose(&down);
        for (int k = 0; k < 3; k++)
            buf_dispose(&rec[k]);
        buf_dispose(&out);
        pair_close(&p);
    }
    tlsrec_engine_destroy(e);
}

/* ---- the writer's own KeyUpdates ------------------------------------------------------------- */

static void test_rekey(void **state) {
    (void)state;
    tlsrec_engine_t *e = engine();
    assert_int_equal(tlsrec_engine_set_rekey_records(e, 0), -EINVAL);
    assert_int_equal(tlsrec_engine_set_rekey_records(e, REKEY_RECORDS), 0);
    uint8_t *chunk = malloc(REKEY_WRITE_BYTES);
    assert_non_null(chunk);
    for (int i = 0; i < SUITE_COUNT; i++) {
        pair_t p;
        pair_open(&p, e, &suites[i]);
        buf_t all = {0}, sent = {0}, plain = {0}, out = {0};
        for (int k = 0; k < REKEY_WRITES; k++) {
            memset(chunk, 'a' + k, REKEY_WRITE_BYTES);
            buf_append(&sent, chunk, REKEY_WRITE_BYTES);
            buf_t wire = {0};
            assert_int_equal(tlsrec_seal(e, p.cli, chunk, REKEY_WRITE_BYTES, &wire), 0);
            /* No key seals more records than the limit before it is replaced. */
            assert_true(tlsrec_write_seq(p.cli) <= REKEY_RECORDS);
            buf_append(&all, wire.data, wire.len);
            verdict_t v = open_copy(e, p.srv, wire.data, wire.len, &plain, &out);
            assert_int_equal(v.rc, 0);
            assert_int_equal(v.used, wire.len);
            assert_int_equal(v.plain, REKEY_WRITE_BYTES);
            assert_int_equal(out.len, 0); /* the writer's KeyUpdates ask for nothing */
            buf_dispose(&wire);
        }
        /* Ten records with a new key after every three: three updates, each one record. */
        assert_int_equal(tlsrec_write_updates(p.cli), (REKEY_WRITES - 1) / REKEY_RECORDS);
        assert_int_equal(tlsrec_read_updates(p.srv), tlsrec_write_updates(p.cli));
        assert_int_equal(walk_records(all.data, all.len, NULL, 0),
                         REKEY_WRITES + (REKEY_WRITES - 1) / REKEY_RECORDS);
        assert_int_equal(plain.len, sent.len);
        assert_memory_equal(plain.data, sent.data, sent.len);
        /* The same stream a byte at a time, and in one call. */
        tlsrec_t *r = make_state(&p, 1, 0, 0);
        buf_dispose(&plain);
        feed_pieces(e, r, all.data, all.len, 1, &plain, &out);
        assert_memory_equal(plain.data, sent.data, sent.len);
        tlsrec_destroy(e, r);
        r = make_state(&p, 1, 0, 0);
        buf_dispose(&plain);
        verdict_t v = open_copy(e, r, all.data, all.len, &plain, &out);
        assert_int_equal(v.rc, 0);
        assert_int_equal(v.plain, sent.len);
        assert_memory_equal(plain.data, sent.data, sent.len);
        tlsrec_destroy(e, r);
        /* One-byte writes under the same limit: the writer updates its key every three bytes,
         * which its reader's credit pays for TLSREC_KEY_UPDATE_BURST times; the next update is
         * taken for a flood. */
        pair_t q;
        pair_open(&q, e, &suites[i]);
        for (int k = 0; k < REKEY_RECORDS * (TLSREC_KEY_UPDATE_BURST + 1) + 1; k++) {
            const uint8_t byte = (uint8_t)('a' + k);
            buf_t wire = {0};
            assert_int_equal(tlsrec_seal(e, q.cli, &byte, 1, &wire), 0);
            buf_dispose(&out);
            v = open_copy(e, q.srv, wire.data, wire.len, NULL, &out);
            assert_int_equal(v.rc, k < REKEY_RECORDS * (TLSREC_KEY_UPDATE_BURST + 1) ? 0 : -EPROTO);
            buf_dispose(&wire);
        }
        assert_int_equal(tlsrec_write_updates(q.cli), TLSREC_KEY_UPDATE_BURST + 1);
        assert_int_equal(tlsrec_read_updates(q.srv), TLSREC_KEY_UPDATE_BURST);
        pair_close(&q);
        buf_dispose(&out);
        /* KeyUpdates inside one large write, the other way. */
        uint8_t *big = malloc(BIG_PAYLOAD_BYTES);
        assert_non_null(big);
        fill_random(big, BIG_PAYLOAD_BYTES);
        buf_t wire = {0};
        unsigned before = tlsrec_write_updates(p.srv);
        assert_int_equal(tlsrec_seal(e, p.srv, big, BIG_PAYLOAD_BYTES, &wire), 0);
        assert_true(tlsrec_write_updates(p.srv) > before);
        r = make_state(&p, 0, 0, 0);
        buf_dispose(&plain);
        feed_pieces(e, r, wire.data, wire.len, SPLIT_MAX_BYTES, &plain, &out);
        assert_int_equal(plain.len, BIG_PAYLOAD_BYTES);
        assert_memory_equal(plain.data, big, BIG_PAYLOAD_BYTES);
        assert_int_equal(tlsrec_read_updates(r), tlsrec_write_updates(p.srv));
        tlsrec_destroy(e, r);
        assert_int_equal(out.len, 0);
        free(big);
        buf_dispose(&wire);
        buf_dispose(&all);
        buf_dispose(&sent);
        buf_dispose(&plain);
        buf_dispose(&out);
        pair_close(&p);
    }
    free(chunk);
    tlsrec_engine_destroy(e);
}

/* ---- probing a record's sequence number ------------------------------------------------------ */

static void test_probe(void **state) {
    (void)state;
    tlsrec_engine_t *e = engine();
    for (int i = 0; i < SUITE_COUNT; i++) {
        const suite_t *s = &suites[i];
        pair_t p;
        pair_open(&p, e, s);
        buf_t rec[PROBE_RECORDS] = {{0}};
        for (int k = 0; k < PROBE_RECORDS; k++) {
            uint8_t data[32];
            fill_random(data, sizeof(data));
            assert_int_equal(tlsrec_seal(e, p.cli, data, 1 + (size_t)k * 7, &rec[k]), 0);
        }
        uint8_t wrong[TLSREC_SECRET_MAX_BYTES];
        memcpy(wrong, p.csec, s->secret_len);
        wrong[0] ^= 1;
        for (int k = 0; k < PROBE_RECORDS; k++) {
            size_t n = rec[k].len;
            /* An exactly sized copy, so that ASan sees any read past the end. */
            uint8_t *copy = malloc(n + 1);
            assert_non_null(copy);
            memcpy(copy, rec[k].data, n);
            uint64_t seq = UINT64_MAX;
            assert_int_equal(
                tlsrec_probe(e, s->id, p.csec, s->secret_len, copy, n, PROBE_MAX_SEQ, &seq), 0);
            assert_int_equal(seq, (uint64_t)k);
            assert_memory_equal(copy, rec[k].data, n); /* the record is not changed */
            assert_int_equal(
                tlsrec_probe(e, s->id, p.csec, s->secret_len, copy, n, (uint64_t)k + 1, &seq), 0);
            assert_int_equal(seq, (uint64_t)k);
            /* Not found: a smaller range, another secret, the other direction's secret. */
            assert_int_equal(
                tlsrec_probe(e, s->id, p.csec, s->secret_len, copy, n, (uint64_t)k, &seq), -ENOENT);
            assert_int_equal(
                tlsrec_probe(e, s->id, wrong, s->secret_len, copy, n, PROBE_MAX_SEQ, &seq),
                -ENOENT);
            assert_int_equal(
                tlsrec_probe(e, s->id, p.ssec, s->secret_len, copy, n, PROBE_MAX_SEQ, &seq),
                -ENOENT);
            /* Malformed: a truncated record, one with a byte too many, bad arguments. */
            assert_int_equal(
                tlsrec_probe(e, s->id, p.csec, s->secret_len, copy, n - 1, PROBE_MAX_SEQ, &seq),
                -EINVAL);
            copy[n] = 0;
            assert_int_equal(
                tlsrec_probe(e, s->id, p.csec, s->secret_len, copy, n + 1, PROBE_MAX_SEQ, &seq),
                -EINVAL);
            assert_int_equal(
                tlsrec_probe(e, s->id, p.csec, TLSREC_HEADER_BYTES, copy, n, PROBE_MAX_SEQ, &seq),
                -EINVAL);
            assert_int_equal(
                tlsrec_probe(e, 0x1304, p.csec, s->secret_len, copy, n, PROBE_MAX_SEQ, &seq),
                -EINVAL);
            assert_int_equal(tlsrec_probe(e, s->id, p.csec, s->secret_len, copy,
                                          TLSREC_HEADER_BYTES, PROBE_MAX_SEQ, &seq),
                             -EINVAL);
            assert_int_equal(seq, (uint64_t)k); /* *seq is only written when found */
            free(copy);
        }
        /* Probing used the shared cipher context: the connection still reads its records. */
        for (int k = 0; k < PROBE_RECORDS; k++) {
            buf_t out = {0};
            verdict_t v = open_copy(e, p.srv, rec[k].data, rec[k].len, NULL, &out);
            assert_int_equal(v.rc, 0);
            assert_int_equal(v.plain, 1 + (size_t)k * 7);
            assert_int_equal(out.len, 0);
        }
        expect_data(e, p.cli, p.srv, "after probing", 13);
        for (int k = 0; k < PROBE_RECORDS; k++)
            buf_dispose(&rec[k]);
        pair_close(&p);
    }
    tlsrec_engine_destroy(e);
}

/* ---- alerts this side sends ------------------------------------------------------------------ */

static void test_alerts_sent(void **state) {
    (void)state;
    tlsrec_engine_t *e = engine();
    for (int i = 0; i < SUITE_COUNT; i++) {
        pair_t p;
        buf_t out = {0}, plain = {0}, answer = {0};
        /* close_notify is a warning: the peer sees the end of the stream. */
        pair_open(&p, e, &suites[i]);
        assert_int_equal(tlsrec_seal(e, p.srv, "bye", 3, &out), 0);
        tlsrec_alert(e, p.srv, TLSREC_ALERT_CLOSE_NOTIFY, &out);
        assert_int_equal(walk_records(out.data, out.len, NULL, 0), 2);
        verdict_t v = open_copy(e, p.cli, out.data, out.len, &plain, &answer);
        assert_int_equal(v.rc, -EPIPE);
        assert_int_equal(v.used, out.len);
        assert_int_equal(v.plain, 3);
        assert_memory_equal(plain.data, "bye", 3);
        assert_int_equal(answer.len, 0);
        expect_reads_nothing(&p, p.cli, 0, -EPIPE);
        buf_dispose(&out);
        pair_close(&p);
        /* Any other alert is fatal: the peer fails, and so does the sender. */
        pair_open(&p, e, &suites[i]);
        tlsrec_alert(e, p.srv, TLSREC_ALERT_DECODE_ERROR, &out);
        expect_alert_record(&p, p.srv, 1, &out);
        expect_refuses(&p, p.srv, 1);
        buf_dispose(&out);
        buf_dispose(&plain);
        buf_dispose(&answer);
        pair_close(&p);
    }
    tlsrec_engine_destroy(e);
}

static int setup(void **state) {
    (void)state;
    rng_seed(&rng, RNG_SEED);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_refuses),
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_interleaved_connections),
        cmocka_unit_test(test_inner_application_data),
        cmocka_unit_test(test_inner_zeros),
        cmocka_unit_test(test_inner_alerts),
        cmocka_unit_test(test_inner_content_types),
        cmocka_unit_test(test_key_update_not_requested),
        cmocka_unit_test(test_key_update_requested),
        cmocka_unit_test(test_key_update_limits),
        cmocka_unit_test(test_key_update_credit),
        cmocka_unit_test(test_control_run),
        cmocka_unit_test(test_key_update_malformed),
        cmocka_unit_test(test_bit_flips),
        cmocka_unit_test(test_bad_headers),
        cmocka_unit_test(test_replay_reorder),
        cmocka_unit_test(test_rekey),
        cmocka_unit_test(test_probe),
        cmocka_unit_test(test_alerts_sent),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
