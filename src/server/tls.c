/* tls.c: the OpenSSL 3 backend of tls.h, and the hand-over of TLS 1.3 connections to tlsrec.
 *
 * Why the hand-over: OpenSSL keeps about 14.8 KB per idle connection whatever it is told, and an
 * established TLS 1.3 connection needs 200 bytes of keys (tlsrec.h). So once a TLS 1.3 handshake
 * completes, the secrets OpenSSL reported to the keylog callback become a tlsrec state and the SSL
 * is freed. The client's next record is number 0 because OpenSSL read nothing past its Finished
 * (no read-ahead during the handshake); ours is proven by finding the sequence number under which
 * OpenSSL's last record authenticates, so no nonce is ever used twice. A TLS 1.2 connection, or one
 * where any condition fails, stays with OpenSSL.
 *
 * Why the write side is a memory sink and the read side the socket: conn.c batches output and
 * writes it once per loop iteration, tracking partly written frames so that a slow reader's queue
 * can be trimmed without cutting a frame. OpenSSL's socket writes, on WANT_WRITE, keep a record
 * that must be retried with the same bytes, which would pin part of the queue in a state conn.c
 * cannot see. Encrypting into our own buffer instead makes SSL_write_ex always complete at once:
 * the plaintext is consumed, the ciphertext is sent by the same send() loop as plain output, and
 * EAGAIN means EPOLLOUT exactly as on a ws connection. Reads go straight to the socket (one copy
 * less); SSL_has_pending tells the caller what epoll cannot see. */
#include "server/tls.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <sys/socket.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509err.h>

#include "core/alloc.h"
#include "server/tlsrec.h"

/* Seconds a session ticket stays valid for resumption. */
#define TLS_TICKET_LIFETIME_SECONDS 7200
/* TLS 1.3 tickets sent after a full handshake: one is enough for a client that reconnects, and
 * each costs an encryption and about 250 bytes on the wire. */
#define TLS_TICKETS_PER_HANDSHAKE 1
/* Bytes of the session-ticket keys (name, HMAC and AES keys) that OpenSSL 3 exposes. */
#define TLS_TICKET_KEY_BYTES 80
/* The session ID context: sessions made by another application are never resumed here. */
#define TLS_SESSION_CONTEXT "sigtracker"
/* Sequence numbers tried when proving which one OpenSSL's last record used (it has written one
 * ticket, so the answer is 0; the margin covers OpenSSL versions that send more). */
#define TLS_PROBE_SEQS 8

struct tls_ctx {
    SSL_CTX *ctx;         /* the context new handshakes use; open connections hold references */
    BIO_METHOD *sink;     /* the write BIO type (see the top of the file) */
    tlsrec_engine_t *rec; /* cipher contexts of the connections handed over to tlsrec */
    char subject[256];    /* of the current leaf certificate, for logs */
    char serial[96];
    char not_after[32];
};

/* What the hand-over needs from the handshake, gathered while it runs and freed after it: the
 * traffic secrets OpenSSL reports through its keylog callback (never written anywhere), and a copy
 * of the last protected record OpenSSL wrote, on which the write sequence number is proven. */
typedef struct tls_hs {
    uint8_t server_hs[TLSREC_SECRET_MAX_BYTES];  /* SERVER_HANDSHAKE_TRAFFIC_SECRET */
    uint8_t client_app[TLSREC_SECRET_MAX_BYTES]; /* CLIENT_TRAFFIC_SECRET_0 */
    uint8_t server_app[TLSREC_SECRET_MAX_BYTES]; /* SERVER_TRAFFIC_SECRET_0 */
    uint8_t len[3];                              /* bytes of each secret, 0 until reported */
    uint8_t hdr[TLSREC_HEADER_BYTES];            /* header of the record being written */
    uint8_t hdr_have;                            /* header bytes seen of it */
    uint16_t body_left;                          /* body bytes of it still to come */
    buf_t last; /* the last application_data-typed record written, whole */
} tls_hs_t;

struct tls_conn {
    SSL *ssl;         /* NULL once the connection is handed over to tlsrec */
    tlsrec_t *rec;    /* the record layer after the hand-over */
    tls_ctx_t *owner; /* for its tlsrec engine */
    tls_hs_t *hs;     /* during the handshake only */
    buf_t out;        /* ciphertext waiting for send() */
    buf_t in;         /* after the hand-over: the start of a record that is still arriving */
    int fd;
    int16_t err;         /* after the hand-over: the error to report once plaintext is read */
    uint8_t established; /* the handshake is complete */
    uint8_t notified;    /* close_notify queued */
    uint8_t resumed;     /* the handshake resumed a session */
};

/* ---- allocation ------------------------------------------------------------------------------ */

static void *ossl_malloc(size_t n, const char *file, int line) {
    (void)file;
    (void)line;
    return xmalloc(n);
}

static void *ossl_realloc(void *p, size_t n, const char *file, int line) {
    (void)file;
    (void)line;
    return xrealloc(p, n);
}

static void ossl_free(void *p, const char *file, int line) {
    (void)file;
    (void)line;
    xfree(p);
}

int tls_global_init(void) {
    return CRYPTO_set_mem_functions(ossl_malloc, ossl_realloc, ossl_free) == 1 ? 0 : -EBUSY;
}

/* ---- the ciphertext sink --------------------------------------------------------------------- */

/* Follows the record framing of what OpenSSL writes during the handshake and keeps a copy of the
 * last record whose outer type is application_data (every protected TLS 1.3 record). */
static void hs_track(tls_hs_t *hs, const uint8_t *p, size_t n) {
    while (n > 0) {
        if (hs->hdr_have < TLSREC_HEADER_BYTES) {
            hs->hdr[hs->hdr_have++] = *p++;
            n--;
            if (hs->hdr_have < TLSREC_HEADER_BYTES)
                continue;
            hs->body_left = (uint16_t)((hs->hdr[3] << 8) | hs->hdr[4]);
            if (hs->hdr[0] == 23) {
                buf_dispose(&hs->last);
                buf_append(&hs->last, hs->hdr, TLSREC_HEADER_BYTES);
            }
        } else {
            size_t k = n < hs->body_left ? n : hs->body_left;
            if (hs->hdr[0] == 23)
                buf_append(&hs->last, p, k);
            hs->body_left = (uint16_t)(hs->body_left - k);
            p += k;
            n -= k;
        }
        if (hs->hdr_have == TLSREC_HEADER_BYTES && hs->body_left == 0)
            hs->hdr_have = 0;
    }
}

static int sink_write_ex(BIO *b, const char *p, size_t n, size_t *written) {
    tls_conn_t *tc = BIO_get_data(b);
    if (tc->hs != NULL)
        hs_track(tc->hs, (const uint8_t *)p, n);
    buf_append(&tc->out, p, n);
    *written = n;
    return 1;
}

static long sink_ctrl(BIO *b, int cmd, long num, void *ptr) {
    (void)b;
    (void)num;
    (void)ptr;
    /* OpenSSL flushes after each flight; there is nothing to flush, the caller sends. */
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int sink_create(BIO *b) {
    BIO_set_init(b, 1);
    return 1;
}

/* Describes the error at the top of OpenSSL's queue (or what happened instead) and clears it. */
static void ossl_reason(char *err, size_t errlen, const char *what, const char *path) {
    unsigned long e = ERR_peek_last_error();
    char reason[256] = "unknown reason";
    if (e != 0)
        ERR_error_string_n(e, reason, sizeof(reason));
    snprintf(err, errlen, "%s %s: %s", what, path, reason);
    ERR_clear_error();
}

/* ---- contexts ----------------------------------------------------------------------------------
 */

/* Fills the description fields from the context's leaf certificate. */
static void describe_cert(tls_ctx_t *t) {
    X509 *x = SSL_CTX_get0_certificate(t->ctx);
    snprintf(t->subject, sizeof(t->subject), "?");
    snprintf(t->serial, sizeof(t->serial), "?");
    snprintf(t->not_after, sizeof(t->not_after), "?");
    if (x == NULL)
        return;
    X509_NAME_oneline(X509_get_subject_name(x), t->subject, (int)sizeof(t->subject));
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    if (hex != NULL)
        snprintf(t->serial, sizeof(t->serial), "%s", hex);
    OPENSSL_free(hex);
    BN_free(bn);
    struct tm tm;
    if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1)
        strftime(t->not_after, sizeof(t->not_after), "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Decodes the hex secret at the end of a keylog line into out (TLSREC_SECRET_MAX_BYTES). Returns
 * its bytes, or 0 when it is not hex or too long. */
static size_t hex_secret(const char *line, uint8_t *out) {
    const char *h = strrchr(line, ' ');
    size_t n = 0;
    /* This runs inside SSL_do_handshake: a decoding error must not stay in OpenSSL's error queue,
     * where SSL_get_error would take it for the handshake's. */
    ERR_set_mark();
    int ok = h != NULL && OPENSSL_hexstr2buf_ex(out, TLSREC_SECRET_MAX_BYTES, &n, h + 1, '\0') == 1;
    ERR_pop_to_mark();
    return ok ? n : 0;
}

/* OpenSSL's keylog callback: keeps the three secrets the hand-over needs (TLS 1.3 only; the TLS
 * 1.2 CLIENT_RANDOM line is of no use here). */
static void keylog(const SSL *ssl, const char *line) {
    tls_conn_t *tc = SSL_get_app_data(ssl);
    if (tc == NULL || tc->hs == NULL)
        return;
    static const char *const labels[3] = {"SERVER_HANDSHAKE_TRAFFIC_SECRET ",
                                          "CLIENT_TRAFFIC_SECRET_0 ", "SERVER_TRAFFIC_SECRET_0 "};
    uint8_t *slots[3] = {tc->hs->server_hs, tc->hs->client_app, tc->hs->server_app};
    for (int i = 0; i < 3; i++)
        if (strncmp(line, labels[i], strlen(labels[i])) == 0)
            tc->hs->len[i] = (uint8_t)hex_secret(line, slots[i]);
}

/* Builds a server SSL_CTX from the files. Returns NULL with a reason in err. */
static SSL_CTX *build_ctx(const char *cert_path, const char *key_path, char *err, size_t errlen) {
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        ossl_reason(err, errlen, "cannot create a TLS context", "");
        return NULL;
    }
    /* Renegotiation is off: it lets a client make the server do handshake work at will inside an
     * established connection, and WebSocket clients never need it. An EOF without close_notify
     * is an ordinary close here: WebSocket frames delimit themselves, so truncation is seen. */
    uint64_t opts = SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                    SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_IGNORE_UNEXPECTED_EOF;
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1) {
        ossl_reason(err, errlen, "cannot restrict TLS to 1.2 and 1.3", "");
        goto fail;
    }
    SSL_CTX_set_options(ctx, opts);
    /* RELEASE_BUFFERS frees the 16 KiB read and write buffers whenever they are empty, which is
     * almost always for a signaling connection: idle wss connections stay small. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    /* No read-ahead during the handshake: OpenSSL then reads exactly up to the client's Finished,
     * so a TLS 1.3 connection handed over to tlsrec right after it has read no application record
     * (the next one carries sequence number 0). A connection that stays with OpenSSL turns
     * read-ahead on after the handshake (fewer system calls under load). */
    SSL_CTX_set_read_ahead(ctx, 0);
    /* The traffic secrets for the hand-over come through the keylog callback, kept in memory for
     * the length of the handshake and never written out. */
    SSL_CTX_set_keylog_callback(ctx, keylog);
    /* Resumption is by stateless tickets only (TLS 1.2 and 1.3): no per-session memory on the
     * server, whatever the number of clients. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_timeout(ctx, TLS_TICKET_LIFETIME_SECONDS);
    if (SSL_CTX_set_num_tickets(ctx, TLS_TICKETS_PER_HANDSHAKE) != 1 ||
        SSL_CTX_set_session_id_context(ctx, (const unsigned char *)TLS_SESSION_CONTEXT,
                                       sizeof(TLS_SESSION_CONTEXT) - 1) != 1) {
        ossl_reason(err, errlen, "cannot set up session tickets", "");
        goto fail;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_path) != 1) {
        ossl_reason(err, errlen, "cannot load the certificate chain", cert_path);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_path, SSL_FILETYPE_PEM) != 1) {
        /* OpenSSL compares the key with the certificate while loading it: say so plainly. */
        unsigned long e = ERR_peek_last_error();
        if (ERR_GET_LIB(e) == ERR_LIB_X509 && ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH)
            ossl_reason(err, errlen, "the private key does not match the certificate", key_path);
        else
            ossl_reason(err, errlen, "cannot load the private key", key_path);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ossl_reason(err, errlen, "the private key does not match the certificate", key_path);
        goto fail;
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

tls_ctx_t *tls_ctx_create(const char *cert_path, const char *key_path, char *err, size_t errlen) {
    SSL_CTX *ctx = build_ctx(cert_path, key_path, err, errlen);
    if (ctx == NULL)
        return NULL;
    BIO_METHOD *sink = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "sigtracker-out");
    if (sink == NULL || BIO_meth_set_write_ex(sink, sink_write_ex) != 1 ||
        BIO_meth_set_ctrl(sink, sink_ctrl) != 1 || BIO_meth_set_create(sink, sink_create) != 1) {
        ossl_reason(err, errlen, "cannot create the TLS output method", "");
        BIO_meth_free(sink);
        SSL_CTX_free(ctx);
        return NULL;
    }
    tlsrec_engine_t *rec = tlsrec_engine_create();
    if (rec == NULL) {
        ossl_reason(err, errlen, "cannot set up the TLS 1.3 ciphers", "");
        BIO_meth_free(sink);
        SSL_CTX_free(ctx);
        return NULL;
    }
    tls_ctx_t *t = xcalloc(1, sizeof(*t));
    t->ctx = ctx;
    t->sink = sink;
    t->rec = rec;
    describe_cert(t);
    return t;
}

int tls_ctx_reload(tls_ctx_t *t, const char *cert_path, const char *key_path, char *err,
                   size_t errlen) {
    SSL_CTX *ctx = build_ctx(cert_path, key_path, err, errlen);
    if (ctx == NULL)
        return -EINVAL;
    /* The ticket keys carry over, so a client that got a ticket before the reload still resumes
     * after it. */
    unsigned char keys[TLS_TICKET_KEY_BYTES];
    if (SSL_CTX_get_tlsext_ticket_keys(t->ctx, keys, sizeof(keys)) != 1 ||
        SSL_CTX_set_tlsext_ticket_keys(ctx, keys, sizeof(keys)) != 1) {
        ossl_reason(err, errlen, "cannot carry the session-ticket keys over", "");
        OPENSSL_cleanse(keys, sizeof(keys));
        SSL_CTX_free(ctx);
        return -EINVAL;
    }
    OPENSSL_cleanse(keys, sizeof(keys));
    /* Each open connection's SSL holds a reference to the old context: it lives until the last
     * of them closes. */
    SSL_CTX_free(t->ctx);
    t->ctx = ctx;
    describe_cert(t);
    return 0;
}

void tls_ctx_describe(const tls_ctx_t *t, char *out, size_t outlen) {
    snprintf(out, outlen, "subject %s, serial %s, expires %s", t->subject, t->serial, t->not_after);
}

int tls_ctx_set_rekey_records(tls_ctx_t *t, uint64_t records) {
    return tlsrec_engine_set_rekey_records(t->rec, records);
}

void tls_ctx_destroy(tls_ctx_t *t) {
    if (t == NULL)
        return;
    SSL_CTX_free(t->ctx);
    BIO_meth_free(t->sink);
    tlsrec_engine_destroy(t->rec);
    xfree(t);
}

/* ---- connections -------------------------------------------------------------------------------
 */

tls_conn_t *tls_conn_create(tls_ctx_t *t, int fd) {
    ERR_clear_error();
    tls_conn_t *tc = xcalloc(1, sizeof(*tc));
    tc->owner = t;
    tc->fd = fd;
    tc->hs = xcalloc(1, sizeof(*tc->hs));
    tc->ssl = SSL_new(t->ctx);
    BIO *rbio = BIO_new_socket(fd, BIO_NOCLOSE);
    BIO *wbio = BIO_new(t->sink);
    if (tc->ssl == NULL || rbio == NULL || wbio == NULL) {
        ERR_clear_error();
        BIO_free(rbio);
        BIO_free(wbio);
        SSL_free(tc->ssl);
        xfree(tc->hs);
        xfree(tc);
        return NULL;
    }
    BIO_set_data(wbio, tc);
    SSL_set_bio(tc->ssl, rbio, wbio); /* the SSL owns both BIOs from here */
    SSL_set_app_data(tc->ssl, tc);
    SSL_set_accept_state(tc->ssl);
    return tc;
}

/* Wipes and frees the handshake's secrets. */
static void hs_free(tls_conn_t *tc) {
    if (tc->hs == NULL)
        return;
    buf_dispose(&tc->hs->last);
    OPENSSL_cleanse(tc->hs, sizeof(*tc->hs));
    xfree(tc->hs);
    tc->hs = NULL;
}

void tls_conn_destroy(tls_conn_t *tc) {
    if (tc == NULL)
        return;
    SSL_free(tc->ssl);
    tlsrec_destroy(tc->owner->rec, tc->rec);
    hs_free(tc);
    buf_dispose(&tc->out);
    buf_dispose(&tc->in);
    xfree(tc);
}

/* Finds the write sequence number OpenSSL reached: the last protected record it wrote is tried
 * under the server's application secret (then the next record is one higher) and, failing that,
 * under its handshake secret (then no application record was written: 0). Returns 0 with *seq,
 * or a negative errno when neither proves it. */
static int proven_write_seq(tls_conn_t *tc, uint16_t suite, uint64_t *seq) {
    tls_hs_t *hs = tc->hs;
    const buf_t *last = &hs->last;
    if (last->len < TLSREC_HEADER_BYTES || hs->hdr_have != 0)
        return -ENOENT;
    uint64_t q = 0;
    int rc = tlsrec_probe(tc->owner->rec, suite, hs->server_app, hs->len[2], last->data, last->len,
                          TLS_PROBE_SEQS, &q);
    if (rc == 0) {
        *seq = q + 1;
        return 0;
    }
    rc = tlsrec_probe(tc->owner->rec, suite, hs->server_hs, hs->len[0], last->data, last->len,
                      TLS_PROBE_SEQS, &q);
    if (rc == 0)
        *seq = 0;
    return rc;
}

/* Hands a TLS 1.3 connection over to tlsrec right after its handshake, when every condition
 * holds: a suite tlsrec runs, all three secrets, nothing OpenSSL has read and not yet processed
 * (no read-ahead: the client's next record is number 0), no KeyUpdate OpenSSL still owes, and a
 * write sequence number proven on OpenSSL's last record. Otherwise the connection stays with
 * OpenSSL, which is always correct, only larger. Either way the secrets are wiped. */
static void hand_over(tls_conn_t *tc) {
    tls_hs_t *hs = tc->hs;
    const SSL_CIPHER *c = SSL_get_current_cipher(tc->ssl);
    uint16_t suite = c != NULL ? SSL_CIPHER_get_protocol_id(c) : 0;
    size_t sl = tlsrec_secret_len(suite);
    uint64_t wseq = 0;
    if (hs != NULL && SSL_version(tc->ssl) == TLS1_3_VERSION && sl > 0 && hs->len[0] == sl &&
        hs->len[1] == sl && hs->len[2] == sl && SSL_has_pending(tc->ssl) == 0 &&
        SSL_get_key_update_type(tc->ssl) == SSL_KEY_UPDATE_NONE &&
        proven_write_seq(tc, suite, &wseq) == 0 &&
        tlsrec_create(tc->owner->rec, &tc->rec, suite, 1, hs->client_app, hs->server_app, sl, 0,
                      wseq) == 0) {
        SSL_free(tc->ssl);
        tc->ssl = NULL;
    } else {
        SSL_set_read_ahead(tc->ssl, 1);
    }
    hs_free(tc);
    ERR_clear_error();
}

int tls_conn_handshake(tls_conn_t *tc) {
    if (tc->established)
        return 0;
    ERR_clear_error();
    int r = SSL_do_handshake(tc->ssl);
    if (r == 1) {
        tc->established = 1;
        tc->resumed = SSL_session_reused(tc->ssl) == 1;
        hand_over(tc);
        return 0;
    }
    int e = SSL_get_error(tc->ssl, r);
    ERR_clear_error();
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return -EAGAIN;
    if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && r == 0))
        return -ECONNRESET;
    return e == SSL_ERROR_SYSCALL ? -ECONNRESET : -EPROTO;
}

int tls_conn_established(const tls_conn_t *tc) {
    return tc->established;
}

int tls_conn_resumed(const tls_conn_t *tc) {
    return tc->resumed;
}

int tls_conn_handed_over(const tls_conn_t *tc) {
    return tc->rec != NULL;
}

/* tls_conn_read after the hand-over: the start of a record kept from the last call, then one
 * recv() behind it, all opened in place in buf. A partial record at the end is kept for the next
 * call (it is never longer than a record, so the idle connection keeps nothing). */
static long rec_read(tls_conn_t *tc, uint8_t *buf, size_t len) {
    if (tc->err != 0)
        return tc->err;
    if (len < TLS_READ_MIN_BYTES)
        return -EINVAL;
    size_t have = tc->in.len;
    if (have > 0)
        memcpy(buf, tc->in.data, have);
    buf_dispose(&tc->in);
    for (;;) {
        ssize_t n = recv(tc->fd, buf + have, len - have, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            buf_append(&tc->in, buf, have);
            return -EAGAIN;
        }
        if (n <= 0)
            return tc->err = -EPIPE; /* EOF (with or without close_notify) or a reset */
        have += (size_t)n;
        size_t used = 0, plain = 0;
        int rc = tlsrec_open(tc->owner->rec, tc->rec, buf, have, &used, &plain, &tc->out);
        if (rc < 0)
            tc->err = (int16_t)rc;
        else if (used < have)
            memmove(buf + plain, buf + used, have - used);
        if (plain > 0) {
            if (rc == 0)
                buf_append(&tc->in, buf + plain, have - used);
            return (long)plain;
        }
        if (rc < 0)
            return rc;
        have -= used; /* only control records (a KeyUpdate) or a partial one: read on */
    }
}

long tls_conn_read(tls_conn_t *tc, void *buf, size_t len) {
    if (tc->ssl == NULL)
        return rec_read(tc, buf, len);
    size_t got = 0;
    ERR_clear_error();
    if (SSL_read_ex(tc->ssl, buf, len, &got) == 1)
        return (long)got;
    int e = SSL_get_error(tc->ssl, 0);
    ERR_clear_error();
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return -EAGAIN;
    if (e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL)
        return -EPIPE;
    return -EPROTO;
}

int tls_conn_has_pending(const tls_conn_t *tc) {
    if (tc->ssl == NULL)
        return tc->err != 0; /* a partial record waits for the socket, which epoll watches */
    return SSL_has_pending(tc->ssl) == 1;
}

int tls_conn_write(tls_conn_t *tc, const void *p, size_t n) {
    if (tc->ssl == NULL)
        return tlsrec_seal(tc->owner->rec, tc->rec, p, n, &tc->out);
    size_t done = 0;
    ERR_clear_error();
    /* The sink never refuses bytes, so without SSL_MODE_ENABLE_PARTIAL_WRITE this either writes
     * everything or fails for good. */
    if (n == 0 || (SSL_write_ex(tc->ssl, p, n, &done) == 1 && done == n))
        return 0;
    ERR_clear_error();
    return -EPROTO;
}

void tls_conn_close_notify(tls_conn_t *tc) {
    if (tc->notified || !tc->established)
        return;
    tc->notified = 1;
    if (tc->ssl == NULL) {
        tlsrec_alert(tc->owner->rec, tc->rec, TLSREC_ALERT_CLOSE_NOTIFY, &tc->out);
        return;
    }
    ERR_clear_error();
    /* 0 means "sent, the peer's has not come": we do not wait for it. */
    (void)SSL_shutdown(tc->ssl);
    ERR_clear_error();
}

buf_t *tls_conn_out(tls_conn_t *tc) {
    return &tc->out;
}
