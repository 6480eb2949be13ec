/* tlsrec.h: the TLS 1.3 record layer (RFC 8446 §5) of a connection whose handshake OpenSSL has
 * finished.
 *
 * Why it exists: an idle connection's OpenSSL state costs about 14.8 KB (the SSL object alone is
 * 7.6 KB, the two cipher contexts 1.9 KB, the session 0.9 KB) and no setting shrinks it, while what
 * an established TLS 1.3 connection needs is two traffic secrets, two keys, two IVs and two
 * sequence numbers: this state, about 200 bytes. server/tls.c hands a connection over to it once
 * the handshake is complete and the sequence numbers are proven (docs/tls.md, architecture
 * decision 26); TLS 1.2 connections stay with OpenSSL.
 *
 * What it does: seals application data into records of at most 2^14 bytes, opens records
 * (AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305), answers and performs KeyUpdate (RFC 8446 §4.6.3),
 * updates its own write key before AES-GCM's per-key record limit (§5.5), and sends and receives
 * alerts. It never reads or writes a socket: records come in as bytes and go out into a buf_t,
 * so it is fuzzed like the other parsers (fuzz/fuzz_tlsrec.c).
 *
 * Errors: -EPROTO for anything the peer got wrong (a fatal alert for it is appended to the output
 * first, best effort), -EPIPE for the peer's close_notify, -EINVAL for a bad argument. After an
 * error the state accepts nothing more. Event-loop thread only: the engine's cipher contexts are
 * shared by every connection of a tls_ctx. */
#ifndef SIG_SERVER_TLSREC_H
#define SIG_SERVER_TLSREC_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* Bytes of a record header: type, legacy version (2), length (2). */
#define TLSREC_HEADER_BYTES 5
/* Most bytes of content in one record (RFC 8446 §5.1: 2^14). */
#define TLSREC_PLAINTEXT_MAX_BYTES 16384
/* Most bytes after the header of a protected record (§5.2: 2^14 + 256). */
#define TLSREC_CIPHERTEXT_MAX_BYTES (16384 + 256)
/* The largest record on the wire, header included. */
#define TLSREC_RECORD_MAX_BYTES (TLSREC_HEADER_BYTES + TLSREC_CIPHERTEXT_MAX_BYTES)
/* Bytes of the longest traffic secret (SHA-384). */
#define TLSREC_SECRET_MAX_BYTES 48
/* Records sealed under one write key before this side updates it (KeyUpdate). RFC 8446 §5.5 puts
 * AES-GCM's limit at 2^24.5 records; 2^23 keeps a wide margin and costs one 27-byte record per
 * 8 million sent. */
#define TLSREC_REKEY_RECORDS (UINT64_C(1) << 23)

/* Records in a row that carry no application byte (empty application data, KeyUpdate, a
 * user_canceled warning) before the peer is refused: each costs a decryption and moves nothing
 * (BoringSSL's limit for empty records is the same 32). */
#define TLSREC_CONTROL_RUN_MAX 32
/* KeyUpdates a peer may send back to back. Each costs the server two HMACs and carries no data,
 * so a peer pays for them from a credit counted in application bytes: a full credit pays for this
 * many in a row, room for a user who asks for several updates at once (openssl s_client's "K")
 * or a stack that updates twice, while a peer that keeps updating runs out and is refused. */
#define TLSREC_KEY_UPDATE_BURST 8
/* Bytes of credit one KeyUpdate costs, and so the application data that earns one more: every
 * byte of data read adds one, up to TLSREC_KEY_UPDATE_BURST updates' worth, which is also where
 * the credit starts. Clients update a key after millions of records, so only a flood meets it. */
#define TLSREC_KEY_UPDATE_MIN_BYTES 4096

/* The TLS 1.3 cipher suites this layer runs (their IANA values). */
enum {
    TLSREC_AES_128_GCM_SHA256 = 0x1301,
    TLSREC_AES_256_GCM_SHA384 = 0x1302,
    TLSREC_CHACHA20_POLY1305_SHA256 = 0x1303,
};

/* Alert descriptions we send (RFC 8446 §6). */
enum {
    TLSREC_ALERT_CLOSE_NOTIFY = 0,
    TLSREC_ALERT_UNEXPECTED_MESSAGE = 10,
    TLSREC_ALERT_BAD_RECORD_MAC = 20,
    TLSREC_ALERT_RECORD_OVERFLOW = 22,
    TLSREC_ALERT_ILLEGAL_PARAMETER = 47,
    TLSREC_ALERT_DECODE_ERROR = 50,
};

typedef struct tlsrec_engine tlsrec_engine_t;
typedef struct tlsrec tlsrec_t;

/* Creates the cipher contexts every connection of one tls_ctx shares. Returns NULL when OpenSSL
 * cannot provide AES-GCM or ChaCha20-Poly1305. */
tlsrec_engine_t *tlsrec_engine_create(void);

/* Frees the engine; every tlsrec_t used with it must be destroyed first. NULL is ignored. */
void tlsrec_engine_destroy(tlsrec_engine_t *e);

/* Sets how many records a write key seals before it is updated (TLSREC_REKEY_RECORDS by
 * default; tests lower it to see updates happen). 0 is refused with -EINVAL. */
int tlsrec_engine_set_rekey_records(tlsrec_engine_t *e, uint64_t records);

/* Returns the bytes of the suite's traffic secrets (its hash length), or 0 when the suite (an
 * IANA value) is not one this layer runs. */
size_t tlsrec_secret_len(uint16_t suite);

/* Creates the state of one connection from its application traffic secrets (each secret_len
 * bytes, which must be the suite's hash length) and the sequence number the next record in each
 * direction carries; the keys are derived with e's HMAC contexts (e must not be NULL). is_server
 * says which secret this side writes with. Returns 0 and *out, or -EINVAL (unsupported suite,
 * wrong secret length). The secrets are copied. */
int tlsrec_create(tlsrec_engine_t *e, tlsrec_t **out, uint16_t suite, int is_server,
                  const uint8_t *client_secret, const uint8_t *server_secret, size_t secret_len,
                  uint64_t client_seq, uint64_t server_seq);

/* Wipes and frees the state (e is told so its key cache forgets it). NULL is ignored. */
void tlsrec_destroy(tlsrec_engine_t *e, tlsrec_t *r);

/* Opens the complete records at the start of buf[0, len): their application data is moved to the
 * start of buf (*plain bytes; never more than was read), *used is the bytes of whole records
 * consumed (a partial record at the end is left for the caller to complete). A KeyUpdate that
 * asks for ours gets it from the next tlsrec_seal, before its data (RFC 8446 §4.6.3). Returns 0;
 * -EPIPE after the peer's close_notify (the application data before it is still in *plain); -EPROTO
 * on a bad record, with an alert appended to out. */
int tlsrec_open(tlsrec_engine_t *e, tlsrec_t *r, uint8_t *buf, size_t len, size_t *used,
                size_t *plain, buf_t *out);

/* Seals n bytes of application data into as few records as fit and appends them to out (n may be
 * 0: nothing is appended). Returns 0, or -EPROTO once the state has failed. */
int tlsrec_seal(tlsrec_engine_t *e, tlsrec_t *r, const void *p, size_t n, buf_t *out);

/* Seals n bytes of inner plaintext exactly as given (content, content type, zero padding: RFC
 * 8446 §5.2) as one record: what tests and the fuzzer use to send what a peer might, well formed or
 * not. n is at most 2^14 + 256 - 16. Returns 0, -EINVAL or -EPROTO. */
int tlsrec_seal_inner(tlsrec_engine_t *e, tlsrec_t *r, const void *inner, size_t n, buf_t *out);

/* Appends an alert (close_notify is a warning, every other a fatal one) to out. After a fatal
 * alert the state accepts nothing more. */
void tlsrec_alert(tlsrec_engine_t *e, tlsrec_t *r, uint8_t description, buf_t *out);

/* Finds the sequence number a record was sealed with: tries 0 .. max_seq - 1 under the traffic
 * secret given and returns 0 with *seq for the one whose tag verifies, -ENOENT when none does, or
 * -EINVAL for a malformed record or an unsupported suite. The record is not changed. Used once per
 * connection, on the last record OpenSSL wrote, so that the hand-over never reuses a nonce. */
int tlsrec_probe(tlsrec_engine_t *e, uint16_t suite, const uint8_t *secret, size_t secret_len,
                 const uint8_t *record, size_t len, uint64_t max_seq, uint64_t *seq);

/* Sequence numbers of the next record each way (tests and the hand-over check). */
uint64_t tlsrec_read_seq(const tlsrec_t *r);
uint64_t tlsrec_write_seq(const tlsrec_t *r);

/* How many times each side's key has been updated (tests). */
unsigned tlsrec_read_updates(const tlsrec_t *r);
unsigned tlsrec_write_updates(const tlsrec_t *r);

#endif
