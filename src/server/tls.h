/* tls.h: TLS for the wss listeners, on OpenSSL 3 and our non-blocking epoll loop.
 *
 * A tls_ctx_t holds the certificate, the key and the session-ticket keys; a tls_conn_t is one
 * connection's TLS state: OpenSSL's during the handshake (and for TLS 1.2), our own record layer
 * (tlsrec.h) after a TLS 1.3 handshake. Reads come straight from the socket; writes (handshake
 * messages, alerts and application records) go into a per-connection ciphertext buffer that the
 * caller sends with send(), exactly as it sends plain output, so TLS never changes how output is
 * batched or when EPOLLOUT is wanted. Nothing here knows about the server: conn.c drives it.
 *
 * Event-loop thread only, except tls_global_init (call it first thing in main). */
#ifndef SIG_SERVER_TLS_H
#define SIG_SERVER_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

typedef struct tls_ctx tls_ctx_t;
typedef struct tls_conn tls_conn_t;

/* Routes OpenSSL's allocations through core/alloc.h, so /stats.json's heap_bytes includes TLS
 * memory. Must run before anything allocates through OpenSSL (first thing in main). Returns 0, or
 * -EBUSY when OpenSSL has already allocated (the server works; TLS memory is then not counted). */
int tls_global_init(void);

/* Creates a server context from a PEM certificate chain file (leaf first) and a PEM private key
 * file, checking that they match. TLS 1.2 and 1.3 only, renegotiation off, stateless session
 * tickets for resumption. Returns NULL with a reason in err on failure. */
tls_ctx_t *tls_ctx_create(const char *cert_path, const char *key_path, char *err, size_t errlen);

/* Loads the certificate and key again (from the same or new paths). On success new handshakes use
 * them and connections already open keep the context they started with (OpenSSL counts the
 * references); the ticket keys carry over, so clients still resume. On failure nothing changes and
 * err says why. Returns 0 or a negative errno. */
int tls_ctx_reload(tls_ctx_t *t, const char *cert_path, const char *key_path, char *err,
                   size_t errlen);

/* Writes "subject ..., serial ..., expires ..." of the current leaf certificate into out. */
void tls_ctx_describe(const tls_ctx_t *t, char *out, size_t outlen);

/* Sets after how many records a handed-over connection updates its write key (tlsrec.h's
 * TLSREC_REKEY_RECORDS by default; tests lower it). Returns 0 or -EINVAL for 0. */
int tls_ctx_set_rekey_records(tls_ctx_t *t, uint64_t records);

/* Frees the context. Every connection made from it must be destroyed first: their output method
 * lives here (a reload keeps it). NULL is ignored. */
void tls_ctx_destroy(tls_ctx_t *t);

/* Creates the TLS state of an accepted, non-blocking socket (server side). Returns NULL when
 * OpenSSL cannot allocate it (the caller closes the connection). */
tls_conn_t *tls_conn_create(tls_ctx_t *t, int fd);

/* Frees the TLS state (not the socket). NULL is ignored. */
void tls_conn_destroy(tls_conn_t *tc);

/* Advances the handshake with what the socket has. Returns 0 once it is complete, -EAGAIN when it
 * waits for more input, -EPROTO when the peer spoke something else than TLS 1.2/1.3 (garbage,
 * plain HTTP, a truncated record, no shared cipher) and -ECONNRESET when the socket closed. Any
 * output (server flight, alert) is left in the ciphertext buffer. */
int tls_conn_handshake(tls_conn_t *tc);

/* Returns 1 once the handshake is complete. */
int tls_conn_established(const tls_conn_t *tc);

/* Returns 1 when the completed handshake resumed a session (a ticket), 0 for a full one. */
int tls_conn_resumed(const tls_conn_t *tc);

/* Returns 1 when the connection was handed over to our own TLS 1.3 record layer after its
 * handshake (tlsrec.h: about 200 bytes instead of OpenSSL's 14.8 KB), 0 while OpenSSL runs it. */
int tls_conn_handed_over(const tls_conn_t *tc);

/* The smallest buffer tls_conn_read takes on a handed-over connection: records are opened in
 * place, so it must hold a partial record plus a whole one. */
#define TLS_READ_MIN_BYTES (2 * (16384 + 256 + 5))

/* Reads decrypted bytes into buf. Returns the count (> 0), -EAGAIN when the socket has nothing
 * more, -EPIPE when the peer closed (close_notify or EOF), -EPROTO on a TLS error, -EINVAL when a
 * handed-over connection gets a buffer under TLS_READ_MIN_BYTES. */
long tls_conn_read(tls_conn_t *tc, void *buf, size_t len);

/* Returns 1 when OpenSSL holds input already read from the socket (decrypted or not): epoll will
 * not report it, so the caller must read again before waiting. */
int tls_conn_has_pending(const tls_conn_t *tc);

/* Encrypts n bytes into the ciphertext buffer, in as few records as OpenSSL makes (one
 * SSL_write_ex). Returns 0 or -EPROTO. */
int tls_conn_write(tls_conn_t *tc, const void *p, size_t n);

/* Queues a close_notify alert in the ciphertext buffer (best effort, once). */
void tls_conn_close_notify(tls_conn_t *tc);

/* The ciphertext waiting to be sent. The caller sends from it and buf_consume()s what went out;
 * the buffer is freed when empty, so an idle connection holds none. */
buf_t *tls_conn_out(tls_conn_t *tc);

#endif
