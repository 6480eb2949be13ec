/* test_tls.c: unit tests of server/tls.c over a socketpair, with a plain OpenSSL client on the
 * other end: the non-blocking handshake, draining what OpenSSL buffered (SSL_has_pending), one
 * SSL_write per batch into the ciphertext buffer, ticket resumption, garbage, and reloads that
 * fail without changing anything. Then the hand-over of TLS 1.3 connections to tlsrec, with
 * OpenSSL's client as the reference: every suite, full and resumed handshakes, records that
 * arrive a byte at a time, KeyUpdate either way, and records a client must not send. The
 * certificates are made in memory and written to /tmp. */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "server/tls.h"
#include "server/tlsrec.h"

/* Round trips the handshake driver allows before calling it stuck. */
#define MAX_ROUNDS 64

typedef struct pki {
    char dir[64];
    char cert1[128], key1[128], cert2[128], key2[128];
} pki_t;

static pki_t pki;

/* Writes a fresh P-256 key and a self-signed certificate with the given serial. */
static void make_cert(const char *cert_path, const char *key_path, long serial) {
    EVP_PKEY *k = EVP_EC_gen("P-256");
    assert_non_null(k);
    X509 *x = X509_new();
    assert_non_null(x);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"unit", -1, -1, 0);
    X509_set_issuer_name(x, n);
    X509_set_pubkey(x, k);
    assert_true(X509_sign(x, k, EVP_sha256()) > 0);
    FILE *f = fopen(cert_path, "w");
    assert_non_null(f);
    PEM_write_X509(f, x);
    fclose(f);
    f = fopen(key_path, "w");
    assert_non_null(f);
    PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(k);
}

static int setup_pki(void **state) {
    (void)state;
    snprintf(pki.dir, sizeof(pki.dir), "/tmp/sigtracker-tls-unit.XXXXXX");
    assert_non_null(mkdtemp(pki.dir));
    snprintf(pki.cert1, sizeof(pki.cert1), "%s/c1.pem", pki.dir);
    snprintf(pki.key1, sizeof(pki.key1), "%s/k1.pem", pki.dir);
    snprintf(pki.cert2, sizeof(pki.cert2), "%s/c2.pem", pki.dir);
    snprintf(pki.key2, sizeof(pki.key2), "%s/k2.pem", pki.dir);
    make_cert(pki.cert1, pki.key1, 0x1001);
    make_cert(pki.cert2, pki.key2, 0x2002);
    return 0;
}

static int teardown_pki(void **state) {
    (void)state;
    unlink(pki.cert1);
    unlink(pki.key1);
    unlink(pki.cert2);
    unlink(pki.key2);
    rmdir(pki.dir);
    return 0;
}

/* One server connection (ours) and one client (plain OpenSSL) on a socketpair. */
typedef struct pair {
    int sfd, cfd;
    tls_conn_t *srv;
    SSL_CTX *cctx;
    SSL *cli;
} pair_t;

static void pair_open_suite(pair_t *p, tls_ctx_t *t, SSL_SESSION *resume, int max_version,
                            const char *suites) {
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    p->sfd = sv[0];
    p->cfd = sv[1];
    p->srv = tls_conn_create(t, p->sfd);
    assert_non_null(p->srv);
    p->cctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(p->cctx);
    SSL_CTX_set_max_proto_version(p->cctx, max_version);
    if (suites != NULL)
        assert_int_equal(SSL_CTX_set_ciphersuites(p->cctx, suites), 1);

    p->cli = SSL_new(p->cctx);
    assert_non_null(p->cli);
    SSL_set_fd(p->cli, p->cfd);
    SSL_set_connect_state(p->cli);
    if (resume != NULL)
        assert_int_equal(SSL_set_session(p->cli, resume), 1);
}

static void pair_open(pair_t *p, tls_ctx_t *t, SSL_SESSION *resume, int max_version) {
    pair_open_suite(p, t, resume, max_version, NULL);
}

static void pair_close(pair_t *p) {
    tls_conn_destroy(p->srv);
    SSL_free(p->cli);
    SSL_CTX_free(p->cctx);
    close(p->sfd);
    close(p->cfd);
}

/* Sends the server's ciphertext buffer to the client's socket (a socketpair takes it all). */
static void pump(pair_t *p) {
    buf_t *out = tls_conn_out(p->srv);
    while (out->len > 0) {
        ssize_t w = send(p->sfd, out->data, out->len, 0);
        assert_true(w > 0);
        buf_consume(out, (size_t)w);
    }
}

/* Runs both handshakes to completion. */
static void handshake(pair_t *p) {
    int cdone = 0, sdone = 0;
    for (int i = 0; i < MAX_ROUNDS && !(cdone && sdone); i++) {
        if (!cdone) {
            int r = SSL_do_handshake(p->cli);
            if (r == 1)
                cdone = 1;
            else
                assert_int_equal(SSL_get_error(p->cli, r), SSL_ERROR_WANT_READ);
        }
        if (!sdone) {
            int r = tls_conn_handshake(p->srv);
            if (r == 0)
                sdone = 1;
            else
                assert_int_equal(r, -EAGAIN);
            pump(p);
        }
    }
    assert_true(cdone && sdone);
    assert_true(tls_conn_established(p->srv));
}

/* Reads until the client has n bytes (processing tickets on the way). */
static void client_read(pair_t *p, uint8_t *buf, size_t n) {
    size_t got = 0;
    for (int i = 0; i < 10000 && got < n; i++) {
        size_t k = 0;
        if (SSL_read_ex(p->cli, buf + got, n - got, &k) == 1)
            got += k;
        else
            assert_int_equal(SSL_get_error(p->cli, 0), SSL_ERROR_WANT_READ);
    }
    assert_int_equal(got, n);
}

static void test_handshake_and_pending(void **state) {
    (void)state;
    char err[512];
    tls_ctx_t *t = tls_ctx_create(pki.cert1, pki.key1, err, sizeof(err));
    assert_non_null(t);
    for (int v = 0; v < 2; v++) {
        pair_t p;
        pair_open(&p, t, NULL, v == 0 ? TLS1_2_VERSION : TLS1_3_VERSION);
        handshake(&p);
        assert_int_equal(SSL_version(p.cli), v == 0 ? TLS1_2_VERSION : TLS1_3_VERSION);
        assert_false(tls_conn_resumed(p.srv));
        /* TLS 1.3 is handed over to tlsrec, TLS 1.2 stays with OpenSSL. */
        assert_int_equal(tls_conn_handed_over(p.srv), v == 1);
        if (v == 1) {
            pair_close(&p);
            continue; /* test_handover covers the rest for TLS 1.3 */
        }
        /* Three records arrive at once; a small read leaves the rest inside OpenSSL, where epoll
         * would never report it: has_pending must say so until it is drained. */
        uint8_t msg[300], in[64];
        for (size_t i = 0; i < sizeof(msg); i++)
            msg[i] = (uint8_t)i;
        for (int r = 0; r < 3; r++) {
            size_t w = 0;
            assert_int_equal(SSL_write_ex(p.cli, msg + r * 100, 100, &w), 1);
        }
        size_t total = 0;
        long n;
        uint8_t got[300];
        assert_int_equal(tls_conn_read(p.srv, got, sizeof(in)), sizeof(in));
        assert_true(tls_conn_has_pending(p.srv));
        total = sizeof(in);
        while ((n = tls_conn_read(p.srv, in, sizeof(in))) > 0) {
            memcpy(got + total, in, (size_t)n);
            total += (size_t)n;
        }
        assert_int_equal(n, -EAGAIN);
        assert_int_equal(total, sizeof(msg));
        assert_memory_equal(got, msg, sizeof(msg));
        assert_false(tls_conn_has_pending(p.srv));
        /* One batch of 40 KB: one tls_conn_write, several records, all in the buffer. */
        size_t big = 40000;
        uint8_t *b = malloc(big), *back = malloc(big);
        for (size_t i = 0; i < big; i++)
            b[i] = (uint8_t)(i * 7);
        assert_int_equal(tls_conn_write(p.srv, b, big), 0);
        assert_true(tls_conn_out(p.srv)->len > big);
        pump(&p);
        client_read(&p, back, big);
        assert_memory_equal(back, b, big);
        free(b);
        free(back);
        /* The peer's close_notify reads as -EPIPE. */
        SSL_shutdown(p.cli);
        assert_int_equal(tls_conn_read(p.srv, in, sizeof(in)), -EPIPE);
        pair_close(&p);
    }
    tls_ctx_destroy(t);
}

static void test_resumption(void **state) {
    (void)state;
    char err[512];
    tls_ctx_t *t = tls_ctx_create(pki.cert1, pki.key1, err, sizeof(err));
    assert_non_null(t);
    for (int v = 0; v < 2; v++) {
        int version = v == 0 ? TLS1_2_VERSION : TLS1_3_VERSION;
        pair_t p;
        pair_open(&p, t, NULL, version);
        handshake(&p);
        /* TLS 1.3 tickets come after the handshake: one read on the client processes them. */
        uint8_t x = 42, y = 0;
        assert_int_equal(tls_conn_write(p.srv, &x, 1), 0);
        pump(&p);
        client_read(&p, &y, 1);
        SSL_SESSION *sess = SSL_get1_session(p.cli);
        assert_non_null(sess);
        assert_true(SSL_SESSION_is_resumable(sess));
        /* A client that drops a TLS 1.2 connection without close_notify marks its session
         * unusable (OpenSSL's rule): close properly. */
        SSL_shutdown(p.cli);
        pair_close(&p);
        /* A reload in between: the ticket keys carry over, so the ticket still works. */
        assert_int_equal(tls_ctx_reload(t, pki.cert1, pki.key1, err, sizeof(err)), 0);
        pair_open(&p, t, sess, version);
        handshake(&p);
        assert_true(tls_conn_resumed(p.srv));
        assert_int_equal(tls_conn_handed_over(p.srv), version == TLS1_3_VERSION);
        /* The resumed connection carries data both ways. */
        x = 43;
        assert_int_equal(tls_conn_write(p.srv, &x, 1), 0);
        pump(&p);
        client_read(&p, &y, 1);
        assert_int_equal(y, 43);
        assert_int_equal(SSL_session_reused(p.cli), 1);
        pair_close(&p);
        SSL_SESSION_free(sess);
    }
    tls_ctx_destroy(t);
}

static void test_garbage(void **state) {
    (void)state;
    char err[512];
    tls_ctx_t *t = tls_ctx_create(pki.cert1, pki.key1, err, sizeof(err));
    assert_non_null(t);
    static const char *const inputs[] = {"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                                         "\x16\x03\x03\x00\x04\x02\x00\x00\x00",
                                         "garbage garbage garbage\r\n"};
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        pair_t p;
        pair_open(&p, t, NULL, TLS1_3_VERSION);
        assert_true(send(p.cfd, inputs[i], i == 1 ? 9 : strlen(inputs[i]), 0) > 0);
        int r = tls_conn_handshake(p.srv);
        if (r != -EPROTO)
            fail_msg("input %zu: %d, expected -EPROTO", i, r);
        pair_close(&p);
    }
    /* EOF in the middle of a ClientHello. */
    pair_t p;
    pair_open(&p, t, NULL, TLS1_3_VERSION);
    assert_true(send(p.cfd, "\x16\x03\x01\x02\x00\x01", 6, 0) == 6);
    shutdown(p.cfd, SHUT_WR);
    assert_int_equal(tls_conn_handshake(p.srv), -ECONNRESET);
    pair_close(&p);
    tls_ctx_destroy(t);
}

static void test_reload(void **state) {
    (void)state;
    char err[512], d1[512], d2[512];
    assert_null(tls_ctx_create(pki.cert1, pki.key2, err, sizeof(err)));
    assert_non_null(strstr(err, "does not match"));
    assert_null(tls_ctx_create("/nonexistent.pem", pki.key1, err, sizeof(err)));
    assert_non_null(strstr(err, "cannot load the certificate chain /nonexistent.pem"));
    tls_ctx_t *t = tls_ctx_create(pki.cert1, pki.key1, err, sizeof(err));
    assert_non_null(t);
    tls_ctx_describe(t, d1, sizeof(d1));
    assert_non_null(strstr(d1, "serial 1001"));
    /* A connection made before the reload keeps working after it. */
    pair_t p;
    pair_open(&p, t, NULL, TLS1_3_VERSION);
    handshake(&p);
    assert_int_equal(tls_ctx_reload(t, pki.cert2, pki.key1, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "does not match"));
    assert_int_equal(tls_ctx_reload(t, pki.cert2, "/nonexistent.key", err, sizeof(err)), -EINVAL);
    tls_ctx_describe(t, d2, sizeof(d2));
    assert_string_equal(d1, d2);
    assert_int_equal(tls_ctx_reload(t, pki.cert2, pki.key2, err, sizeof(err)), 0);
    tls_ctx_describe(t, d2, sizeof(d2));
    assert_non_null(strstr(d2, "serial 2002"));
    uint8_t x = 7, y = 0;
    assert_int_equal(tls_conn_write(p.srv, &x, 1), 0);
    pump(&p);
    client_read(&p, &y, 1);
    assert_int_equal(y, 7);
    pair_close(&p);
    tls_ctx_destroy(t);
}

/* Bytes of the read buffer the server's loop gives tls_conn_read (ctx.h's SERVER_READ_BYTES). */
#define READ_BUF 65536

/* Reads from the server until it has n bytes of plaintext or fails; returns the last result. */
static long server_read(pair_t *p, uint8_t *got, size_t n, size_t *have) {
    static uint8_t buf[READ_BUF];
    long r = 0;
    *have = 0;
    for (int i = 0; i < 100000 && *have < n; i++) {
        r = tls_conn_read(p->srv, buf, sizeof(buf));
        if (r > 0) {
            assert_true(*have + (size_t)r <= n);
            memcpy(got + *have, buf, (size_t)r);
            *have += (size_t)r;
        } else if (r != -EAGAIN) {
            return r;
        }
    }
    return r;
}

/* Sends n pattern bytes from the client and checks the server reads exactly them. */
static void client_to_server(pair_t *p, size_t n, uint8_t seed) {
    uint8_t *b = malloc(n), *got = malloc(n);
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(i * 13 + seed);
    size_t off = 0, have = 0, w = 0;
    /* The socketpair holds a few hundred KB: write it all, then read it all. */
    while (off < n) {
        assert_int_equal(SSL_write_ex(p->cli, b + off, n - off, &w), 1);
        off += w;
    }
    long r = server_read(p, got, n, &have);
    if (have != n)
        fail_msg("server read %zu of %zu bytes (last result %ld)", have, n, r);
    assert_memory_equal(got, b, n);
    free(b);
    free(got);
}

/* Sends n pattern bytes from the server (one write, as the loop batches) to the client. */
static void server_to_client(pair_t *p, size_t n, uint8_t seed) {
    uint8_t *b = malloc(n), *got = malloc(n);
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(i * 7 + seed);
    assert_int_equal(tls_conn_write(p->srv, b, n), 0);
    pump(p);
    client_read(p, got, n);
    assert_memory_equal(got, b, n);
    free(b);
    free(got);
}

/* A context with the first certificate. */
static tls_ctx_t *ctx_one(void) {
    char err[512];
    tls_ctx_t *t = tls_ctx_create(pki.cert1, pki.key1, err, sizeof(err));
    if (t == NULL)
        fail_msg("%s", err);
    return t;
}

/* Opens a pair, runs the TLS 1.3 handshake and checks the server handed the connection over. */
static void open_handed_over(pair_t *p, tls_ctx_t *t) {
    pair_open(p, t, NULL, TLS1_3_VERSION);
    handshake(p);
    assert_true(tls_conn_handed_over(p->srv));
}

static void test_handover(void **state) {
    (void)state;
    tls_ctx_t *t = ctx_one();
    static const char *const suites[] = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                                         "TLS_CHACHA20_POLY1305_SHA256"};
    for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++) {
        SSL_SESSION *sess = NULL;
        for (int resumed = 0; resumed < 2; resumed++) {
            pair_t p;
            pair_open_suite(&p, t, sess, TLS1_3_VERSION, suites[i]);
            handshake(&p);
            assert_int_equal(tls_conn_resumed(p.srv), resumed);
            if (!tls_conn_handed_over(p.srv))
                fail_msg("%s (resumed %d) was not handed over", suites[i], resumed);
            /* The HTTP upgrade's shape: the client speaks first, then many small writes, then
             * batches larger than a record. */
            client_to_server(&p, 200, 1);
            server_to_client(&p, 1, 2);
            if (sess == NULL) {
                sess = SSL_get1_session(p.cli);
                assert_non_null(sess);
            }
            for (int k = 0; k < 50; k++) {
                client_to_server(&p, 30, (uint8_t)k);
                server_to_client(&p, 40, (uint8_t)k);
            }
            client_to_server(&p, 100000, 3);
            server_to_client(&p, 100000, 4);
            assert_false(tls_conn_has_pending(p.srv));
            /* Our close_notify reads as a clean close on the client. */
            tls_conn_close_notify(p.srv);
            pump(&p);
            uint8_t x;
            size_t k = 0;
            assert_int_equal(SSL_read_ex(p.cli, &x, 1, &k), 0);
            assert_int_equal(SSL_get_error(p.cli, 0), SSL_ERROR_ZERO_RETURN);
            /* A client that frees its SSL without answering marks the session unusable. */
            SSL_shutdown(p.cli);
            pair_close(&p);
        }
        SSL_SESSION_free(sess);
    }
    tls_ctx_destroy(t);
}

static void test_handover_trickle_and_close(void **state) {
    (void)state;
    tls_ctx_t *t = ctx_one();
    pair_t p;
    open_handed_over(&p, t);
    /* A record that arrives a byte at a time: nothing until its last byte, then all of it. The
     * client writes into a memory BIO so that the test can deliver the bytes itself. */
    BIO *mem = BIO_new(BIO_s_mem());
    SSL_set0_wbio(p.cli, mem);
    size_t w = 0;
    assert_int_equal(SSL_write_ex(p.cli, "hello, world", 12, &w), 1);
    uint8_t *rec = NULL;
    long rlen = BIO_get_mem_data(mem, (char **)&rec);
    assert_true(rlen > 12);
    static uint8_t buf[READ_BUF];
    for (long i = 0; i < rlen; i++) {
        assert_int_equal(send(p.cfd, rec + i, 1, 0), 1);
        long r = tls_conn_read(p.srv, buf, sizeof(buf));
        if (i + 1 < rlen) {
            assert_int_equal(r, -EAGAIN);
        } else {
            assert_int_equal(r, 12);
            assert_memory_equal(buf, "hello, world", 12);
        }
    }
    /* A buffer smaller than two records is refused, not overrun. */
    assert_int_equal(tls_conn_read(p.srv, buf, 1000), -EINVAL);
    /* Data and the client's close_notify in one segment: the data first, then -EPIPE. */
    (void)BIO_reset(mem);
    assert_int_equal(SSL_write_ex(p.cli, "bye", 3, &w), 1);
    SSL_shutdown(p.cli);
    rlen = BIO_get_mem_data(mem, (char **)&rec);
    assert_int_equal(send(p.cfd, rec, (size_t)rlen, 0), rlen);
    assert_int_equal(tls_conn_read(p.srv, buf, sizeof(buf)), 3);
    assert_memory_equal(buf, "bye", 3);
    assert_true(tls_conn_has_pending(p.srv)); /* the close must be read, epoll will not say */
    assert_int_equal(tls_conn_read(p.srv, buf, sizeof(buf)), -EPIPE);
    assert_int_equal(tls_conn_read(p.srv, buf, sizeof(buf)), -EPIPE);
    pair_close(&p);
    /* EOF without close_notify in the middle of a record reads as a close too. */
    open_handed_over(&p, t);
    assert_int_equal(send(p.cfd,
                          "\x17\x03\x03\x00\x20"
                          "abc",
                          8, 0),
                     8);
    assert_int_equal(tls_conn_read(p.srv, buf, sizeof(buf)), -EAGAIN);
    shutdown(p.cfd, SHUT_WR);
    assert_int_equal(tls_conn_read(p.srv, buf, sizeof(buf)), -EPIPE);
    pair_close(&p);
    tls_ctx_destroy(t);
}

static void test_handover_key_update(void **state) {
    (void)state;
    tls_ctx_t *t = ctx_one();
    pair_t p;
    open_handed_over(&p, t);
    client_to_server(&p, 10, 1);
    server_to_client(&p, 10, 1);
    /* The client updates its key and asks for ours: the server answers before its next data,
     * and the client (OpenSSL) reads that data under our new key. */
    for (int round = 0; round < 3; round++) {
        assert_int_equal(SSL_key_update(p.cli, round == 1 ? SSL_KEY_UPDATE_NOT_REQUESTED
                                                          : SSL_KEY_UPDATE_REQUESTED),
                         1);
        client_to_server(&p, TLSREC_KEY_UPDATE_MIN_BYTES, (uint8_t)round);
        server_to_client(&p, 500, (uint8_t)round);
    }
    /* Our own updates: every 3 records the server updates its write key. */
    assert_int_equal(tls_ctx_set_rekey_records(t, 3), 0);
    assert_int_equal(tls_ctx_set_rekey_records(t, 0), -EINVAL);
    for (int k = 0; k < 20; k++)
        server_to_client(&p, 100, (uint8_t)k);
    server_to_client(&p, 70000, 9); /* five records in one write, an update inside it */
    client_to_server(&p, 100, 5);
    pair_close(&p);
    /* A client may update its key TLSREC_KEY_UPDATE_BURST times back to back (a byte of data
     * each is far from the TLSREC_KEY_UPDATE_MIN_BYTES that earns another); one more is flooding,
     * refused with an alert. */
    open_handed_over(&p, t);
    static uint8_t buf[READ_BUF];
    for (int k = 0; k <= TLSREC_KEY_UPDATE_BURST; k++) {
        assert_int_equal(SSL_key_update(p.cli, SSL_KEY_UPDATE_NOT_REQUESTED), 1);
        size_t w = 0;
        assert_int_equal(SSL_write_ex(p.cli, "x", 1, &w), 1);
        long r = tls_conn_read(p.srv, buf, sizeof(buf));
        if (k < TLSREC_KEY_UPDATE_BURST) {
            if (r != 1)
                fail_msg("KeyUpdate %d of a burst of %d: %ld, expected 1", k + 1,
                         TLSREC_KEY_UPDATE_BURST, r);
            assert_int_equal(buf[0], 'x');
            assert_int_equal(tls_conn_out(p.srv)->len, 0);
        } else {
            assert_int_equal(r, -EPROTO);
            assert_true(tls_conn_out(p.srv)->len > 0);
        }
    }
    pair_close(&p);
    tls_ctx_destroy(t);
}

/* Sends raw bytes to a fresh handed-over server connection and checks it refuses them with
 * -EPROTO and queues an alert. */
static void refuses(tls_ctx_t *t, const void *bytes, size_t n, const char *what) {
    pair_t p;
    open_handed_over(&p, t);
    assert_int_equal(send(p.cfd, bytes, n, 0), (ssize_t)n);
    static uint8_t buf[READ_BUF];
    long r = tls_conn_read(p.srv, buf, sizeof(buf));
    if (r != -EPROTO)
        fail_msg("%s: %ld, expected -EPROTO", what, r);
    if (tls_conn_out(p.srv)->len == 0)
        fail_msg("%s: no alert queued", what);
    /* The client reads the alert as a fatal error. */
    pump(&p);
    uint8_t x;
    size_t k = 0;
    assert_int_equal(SSL_read_ex(p.cli, &x, 1, &k), 0);
    assert_int_equal(SSL_get_error(p.cli, 0), SSL_ERROR_SSL);
    ERR_clear_error();
    assert_int_equal(tls_conn_read(p.srv, buf, sizeof(buf)), -EPROTO);
    pair_close(&p);
}

static void test_handover_bad_records(void **state) {
    (void)state;
    tls_ctx_t *t = ctx_one();
    uint8_t forged[5 + 40] = {0x17, 0x03, 0x03, 0x00, 40};
    for (size_t i = 5; i < sizeof(forged); i++)
        forged[i] = (uint8_t)i;
    refuses(t, forged, sizeof(forged), "a forged record");
    refuses(t, "\x14\x03\x03\x00\x01\x01", 6, "change_cipher_spec after the handshake");
    refuses(t, "\x15\x03\x03\x00\x02\x02\x28", 7, "a plaintext alert");
    refuses(t, "\x16\x03\x03\x00\x04\x01\x00\x00\x00", 9, "a plaintext handshake message");
    refuses(t, "\x17\x03\x03\x41\x11", 5, "a record longer than 2^14 + 256");
    refuses(t, "\x17\x03\x03\x00\x10", 5, "a record shorter than its tag");
    static uint8_t buf[READ_BUF];
    pair_t p;
    BIO *mem;
    uint8_t *rec = NULL;
    long rlen;
    size_t w = 0;
    /* A real record with one bit of its body flipped (test_tlsrec.c flips every bit). */
    open_handed_over(&p, t);
    mem = BIO_new(BIO_s_mem());
    SSL_set0_wbio(p.cli, mem);
    assert_int_equal(SSL_write_ex(p.cli, "0123456789", 10, &w), 1);
    rlen = BIO_get_mem_data(mem, (char **)&rec);
    rec[7] ^= 0x04;
    assert_int_equal(send(p.cfd, rec, (size_t)rlen, 0), rlen);
    assert_int_equal(tls_conn_read(p.srv, buf, sizeof(buf)), -EPROTO);
    assert_true(tls_conn_out(p.srv)->len > 0); /* bad_record_mac */
    pair_close(&p);
    /* A record replayed after it was accepted once. */
    open_handed_over(&p, t);
    mem = BIO_new(BIO_s_mem());
    SSL_set0_wbio(p.cli, mem);
    assert_int_equal(SSL_write_ex(p.cli, "0123456789", 10, &w), 1);
    rlen = BIO_get_mem_data(mem, (char **)&rec);
    assert_int_equal(send(p.cfd, rec, (size_t)rlen, 0), rlen);
    assert_int_equal(tls_conn_read(p.srv, buf, sizeof(buf)), 10);
    assert_int_equal(send(p.cfd, rec, (size_t)rlen, 0), rlen);
    assert_int_equal(tls_conn_read(p.srv, buf, sizeof(buf)), -EPROTO);
    pair_close(&p);
    tls_ctx_destroy(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_and_pending),
        cmocka_unit_test(test_resumption),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_reload),
        cmocka_unit_test(test_handover),
        cmocka_unit_test(test_handover_trickle_and_close),
        cmocka_unit_test(test_handover_key_update),
        cmocka_unit_test(test_handover_bad_records),
    };
    return cmocka_run_group_tests(tests, setup_pki, teardown_pki);
}
