/* tls.c: the OpenSSL 3 backend of tls.h.
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

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509err.h>

#include "core/alloc.h"

/* Seconds a session ticket stays valid for resumption. */
#define TLS_TICKET_LIFETIME_SECONDS 7200
/* TLS 1.3 tickets sent after a full handshake: one is enough for a client that reconnects, and
 * each costs an encryption and about 250 bytes on the wire. */
#define TLS_TICKETS_PER_HANDSHAKE 1
/* Bytes of the session-ticket keys (name, HMAC and AES keys) that OpenSSL 3 exposes. */
#define TLS_TICKET_KEY_BYTES 80
/* The session ID context: sessions made by another application are never resumed here. */
#define TLS_SESSION_CONTEXT "sigtracker"

struct tls_ctx {
    SSL_CTX *ctx;      /* the context new handshakes use; open connections hold references */
    BIO_METHOD *sink;  /* the write BIO type (see the top of the file) */
    char subject[256]; /* of the current leaf certificate, for logs */
    char serial[96];
    char not_after[32];
};

struct tls_conn {
    SSL *ssl;
    buf_t out;           /* ciphertext waiting for send() */
    uint8_t established; /* the handshake is complete */
    uint8_t notified;    /* close_notify queued */
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

static int sink_write_ex(BIO *b, const char *p, size_t n, size_t *written) {
    tls_conn_t *tc = BIO_get_data(b);
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
    /* Read-ahead lets one recv() bring several records (fewer system calls under load); what it
     * brings beyond the current record is reported by SSL_has_pending. */
    SSL_CTX_set_read_ahead(ctx, 1);
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
    tls_ctx_t *t = xcalloc(1, sizeof(*t));
    t->ctx = ctx;
    t->sink = sink;
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

void tls_ctx_destroy(tls_ctx_t *t) {
    if (t == NULL)
        return;
    SSL_CTX_free(t->ctx);
    BIO_meth_free(t->sink);
    xfree(t);
}

/* ---- connections -------------------------------------------------------------------------------
 */

tls_conn_t *tls_conn_create(tls_ctx_t *t, int fd) {
    ERR_clear_error();
    tls_conn_t *tc = xcalloc(1, sizeof(*tc));
    tc->ssl = SSL_new(t->ctx);
    BIO *rbio = BIO_new_socket(fd, BIO_NOCLOSE);
    BIO *wbio = BIO_new(t->sink);
    if (tc->ssl == NULL || rbio == NULL || wbio == NULL) {
        ERR_clear_error();
        BIO_free(rbio);
        BIO_free(wbio);
        SSL_free(tc->ssl);
        xfree(tc);
        return NULL;
    }
    BIO_set_data(wbio, tc);
    SSL_set_bio(tc->ssl, rbio, wbio); /* the SSL owns both BIOs from here */
    SSL_set_accept_state(tc->ssl);
    return tc;
}

void tls_conn_destroy(tls_conn_t *tc) {
    if (tc == NULL)
        return;
    SSL_free(tc->ssl);
    buf_dispose(&tc->out);
    xfree(tc);
}

int tls_conn_handshake(tls_conn_t *tc) {
    if (tc->established)
        return 0;
    ERR_clear_error();
    int r = SSL_do_handshake(tc->ssl);
    if (r == 1) {
        tc->established = 1;
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
    return SSL_session_reused(tc->ssl) == 1;
}

long tls_conn_read(tls_conn_t *tc, void *buf, size_t len) {
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
    return SSL_has_pending(tc->ssl) == 1;
}

int tls_conn_write(tls_conn_t *tc, const void *p, size_t n) {
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
    ERR_clear_error();
    /* 0 means "sent, the peer's has not come": we do not wait for it. */
    (void)SSL_shutdown(tc->ssl);
    ERR_clear_error();
}

buf_t *tls_conn_out(tls_conn_t *tc) {
    return &tc->out;
}
