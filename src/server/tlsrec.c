/* tlsrec.c: the TLS 1.3 record layer of tlsrec.h, on OpenSSL's EVP AEAD ciphers.
 *
 * Cipher contexts: the engine holds one EVP_CIPHER_CTX per suite for every connection. Setting a
 * key costs an AES key expansion and GHASH table (a few hundred cycles), so the engine remembers
 * which key array each context holds and only sets the nonce when the same key seals or opens
 * again, the common case of one connection's batch of records. The cache is keyed by the key's
 * address, which is why destroying a state or updating a key tells the engine to forget it. */
#include "server/tlsrec.h"

#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>

#include "core/alloc.h"

/* Content types (RFC 8446 §5.1). */
#define CT_ALERT 21
#define CT_HANDSHAKE 22
#define CT_APPLICATION_DATA 23
/* Handshake message types a peer may send after the handshake (§4.6). */
#define HS_KEY_UPDATE 24
/* Bytes of a handshake message header: type and 24-bit length. */
#define HS_HEADER_BYTES 4
/* Bytes of an AEAD tag and of a nonce, for all three suites. */
#define TAG_BYTES 16
#define IV_BYTES 12
#define KEY_MAX_BYTES 32
#define SUITES 3
/* Alert levels. */
#define ALERT_WARNING 1
#define ALERT_FATAL 2
/* An alert that is followed by close_notify and is otherwise harmless (§6.1). */
#define ALERT_USER_CANCELED 90
/* The most KeyUpdate credit a peer holds, in application bytes: TLSREC_KEY_UPDATE_BURST updates'
 * worth, which is also what a connection starts with. */
#define KEY_UPDATE_CREDIT_MAX ((uint32_t)TLSREC_KEY_UPDATE_BURST * TLSREC_KEY_UPDATE_MIN_BYTES)

typedef struct suite_info {
    uint16_t id;
    uint8_t key_len;
    uint8_t hash_len;
    const char *cipher; /* OpenSSL's name for EVP_CIPHER_fetch */
    const char *md;     /* the HKDF hash */
} suite_info_t;

static const suite_info_t suites[SUITES] = {
    {TLSREC_AES_128_GCM_SHA256, 16, 32, "AES-128-GCM", "SHA256"},
    {TLSREC_AES_256_GCM_SHA384, 32, 48, "AES-256-GCM", "SHA384"},
    {TLSREC_CHACHA20_POLY1305_SHA256, 32, 32, "ChaCha20-Poly1305", "SHA256"},
};

struct tlsrec_engine {
    EVP_CIPHER *cipher[SUITES];
    EVP_CIPHER_CTX *cx[SUITES];
    const uint8_t *keyed[SUITES]; /* the key array each context holds, or NULL */
    /* HMAC with each suite's hash, the digest set once: OpenSSL 3's one-shot HMAC() fetches the
     * algorithm and the digest by name on every call, which cost each handshake about a tenth
     * of its CPU time for the seven expansions of the hand-over. */
    EVP_MAC *hmac;
    EVP_MAC_CTX *mac[SUITES];
    uint64_t rekey_records;
};

/* One direction's keys. */
typedef struct dir {
    uint64_t seq;
    uint8_t secret[TLSREC_SECRET_MAX_BYTES];
    uint8_t key[KEY_MAX_BYTES];
    uint8_t iv[IV_BYTES];
    uint16_t updates;
} dir_t;

struct tlsrec {
    uint8_t suite;           /* index into suites */
    uint8_t failed : 1;      /* nothing more is read or written */
    uint8_t read_closed : 1; /* the peer's close_notify came: nothing more is read */
    uint8_t answer_owed : 1; /* the peer asked for our KeyUpdate: sent before our next data */
    uint8_t control_run;     /* records in a row that carried no application byte */
    uint32_t update_credit;  /* application bytes that pay for the peer's next KeyUpdates */
    dir_t rd, wr;
};

/* ---- the engine ------------------------------------------------------------------------------ */

tlsrec_engine_t *tlsrec_engine_create(void) {
    tlsrec_engine_t *e = xcalloc(1, sizeof(*e));
    e->rekey_records = TLSREC_REKEY_RECORDS;
    e->hmac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
    for (int i = 0; i < SUITES; i++) {
        OSSL_PARAM params[2] = {OSSL_PARAM_construct_utf8_string(
                                    OSSL_MAC_PARAM_DIGEST, (char *)(uintptr_t)suites[i].md, 0),
                                OSSL_PARAM_construct_end()};
        e->cipher[i] = EVP_CIPHER_fetch(NULL, suites[i].cipher, NULL);
        e->mac[i] = e->hmac != NULL ? EVP_MAC_CTX_new(e->hmac) : NULL;
        e->cx[i] = EVP_CIPHER_CTX_new();
        if (e->cipher[i] == NULL || e->mac[i] == NULL || e->cx[i] == NULL ||
            EVP_MAC_CTX_set_params(e->mac[i], params) != 1 ||
            EVP_CipherInit_ex(e->cx[i], e->cipher[i], NULL, NULL, NULL, 1) != 1) {
            tlsrec_engine_destroy(e);
            return NULL;
        }
    }
    return e;
}

void tlsrec_engine_destroy(tlsrec_engine_t *e) {
    if (e == NULL)
        return;
    for (int i = 0; i < SUITES; i++) {
        EVP_CIPHER_CTX_free(e->cx[i]);
        EVP_CIPHER_free(e->cipher[i]);
        EVP_MAC_CTX_free(e->mac[i]);
    }
    EVP_MAC_free(e->hmac);
    xfree(e);
}

int tlsrec_engine_set_rekey_records(tlsrec_engine_t *e, uint64_t records) {
    if (records == 0)
        return -EINVAL;
    e->rekey_records = records;
    return 0;
}

static int suite_index(uint16_t suite) {
    for (int i = 0; i < SUITES; i++)
        if (suites[i].id == suite)
            return i;
    return -1;
}

size_t tlsrec_secret_len(uint16_t suite) {
    int i = suite_index(suite);
    return i < 0 ? 0 : suites[i].hash_len;
}

/* ---- key schedule (RFC 8446 §7.1, §7.3) ------------------------------------------------------ */

/* HKDF-Expand-Label(secret, label, "", out_len). Every output here is at most one hash long, so
 * HKDF-Expand is the single block HMAC(secret, HkdfLabel || 0x01). */
static int expand_label(EVP_MAC_CTX *hmac, const uint8_t *secret, size_t slen, const char *label,
                        uint8_t *out, size_t out_len) {
    uint8_t info[64], mac[EVP_MAX_MD_SIZE];
    size_t llen = strlen(label), n = 0;
    info[n++] = (uint8_t)(out_len >> 8);
    info[n++] = (uint8_t)out_len;
    info[n++] = (uint8_t)(6 + llen);
    memcpy(info + n, "tls13 ", 6);
    n += 6;
    memcpy(info + n, label, llen);
    n += llen;
    info[n++] = 0; /* empty context */
    info[n++] = 1; /* the first (only) block */
    size_t mlen = 0;
    if (EVP_MAC_init(hmac, secret, slen, NULL) != 1 || EVP_MAC_update(hmac, info, n) != 1 ||
        EVP_MAC_final(hmac, mac, &mlen, sizeof(mac)) != 1 || mlen < out_len)
        return -EINVAL;
    memcpy(out, mac, out_len);
    OPENSSL_cleanse(mac, sizeof(mac));
    return 0;
}

/* Derives a direction's key and IV from its secret (and resets its sequence number). */
static int derive(const tlsrec_engine_t *e, int s, dir_t *d) {
    int rc =
        expand_label(e->mac[s], d->secret, suites[s].hash_len, "key", d->key, suites[s].key_len);
    if (rc == 0)
        rc = expand_label(e->mac[s], d->secret, suites[s].hash_len, "iv", d->iv, IV_BYTES);
    d->seq = 0;
    return rc;
}

/* Moves a direction to its next traffic secret (§7.2) and forgets its key in the cache. */
static int update_dir(tlsrec_engine_t *e, int s, dir_t *d) {
    uint8_t next[TLSREC_SECRET_MAX_BYTES];
    size_t hl = suites[s].hash_len;
    if (expand_label(e->mac[s], d->secret, hl, "traffic upd", next, hl) != 0)
        return -EINVAL;
    memcpy(d->secret, next, hl);
    OPENSSL_cleanse(next, sizeof(next));
    if (e->keyed[s] == d->key)
        e->keyed[s] = NULL;
    d->updates++;
    return derive(e, s, d);
}

int tlsrec_create(tlsrec_engine_t *e, tlsrec_t **out, uint16_t suite, int is_server,
                  const uint8_t *client_secret, const uint8_t *server_secret, size_t secret_len,
                  uint64_t client_seq, uint64_t server_seq) {
    int s = suite_index(suite);
    if (s < 0 || secret_len != suites[s].hash_len)
        return -EINVAL;
    tlsrec_t *r = xcalloc(1, sizeof(*r));
    r->suite = (uint8_t)s;
    memcpy(r->rd.secret, is_server ? client_secret : server_secret, secret_len);
    memcpy(r->wr.secret, is_server ? server_secret : client_secret, secret_len);
    if (derive(e, s, &r->rd) != 0 || derive(e, s, &r->wr) != 0) {
        tlsrec_destroy(e, r);
        return -EINVAL;
    }
    r->update_credit = KEY_UPDATE_CREDIT_MAX; /* a burst of KeyUpdates needs no data first */
    r->rd.seq = is_server ? client_seq : server_seq;
    r->wr.seq = is_server ? server_seq : client_seq;
    *out = r;
    return 0;
}

void tlsrec_destroy(tlsrec_engine_t *e, tlsrec_t *r) {
    if (r == NULL)
        return;
    if (e != NULL && (e->keyed[r->suite] == r->rd.key || e->keyed[r->suite] == r->wr.key))
        e->keyed[r->suite] = NULL;
    OPENSSL_cleanse(r, sizeof(*r));
    xfree(r);
}

/* ---- sealing and opening --------------------------------------------------------------------- */

/* Readies the suite's context for key with the nonce of seq (§5.3: the IV XOR the sequence
 * number, left-padded). */
static EVP_CIPHER_CTX *ready(tlsrec_engine_t *e, int s, const dir_t *d, uint64_t seq, int enc) {
    uint8_t nonce[IV_BYTES];
    memcpy(nonce, d->iv, IV_BYTES);
    for (int i = 0; i < 8; i++)
        nonce[IV_BYTES - 1 - i] ^= (uint8_t)(seq >> (8 * i));
    EVP_CIPHER_CTX *cx = e->cx[s];
    const uint8_t *key = e->keyed[s] == d->key ? NULL : d->key;
    if (EVP_CipherInit_ex(cx, NULL, NULL, key, nonce, enc) != 1) {
        e->keyed[s] = NULL;
        return NULL;
    }
    e->keyed[s] = d->key;
    return cx;
}

/* Seals the inner plaintext already at w + header (inner bytes: content, type, padding) in place,
 * writes the header and commits the record to out. */
static int seal_in_place(tlsrec_engine_t *e, tlsrec_t *r, uint8_t *w, size_t inner, buf_t *out) {
    size_t body = inner + TAG_BYTES;
    w[0] = CT_APPLICATION_DATA; /* the outer type of every protected record */
    w[1] = 3;
    w[2] = 3;
    w[3] = (uint8_t)(body >> 8);
    w[4] = (uint8_t)body;
    uint8_t *c = w + TLSREC_HEADER_BYTES;
    int len = 0;
    EVP_CIPHER_CTX *cx = ready(e, r->suite, &r->wr, r->wr.seq, 1);
    if (cx == NULL || EVP_EncryptUpdate(cx, NULL, &len, w, TLSREC_HEADER_BYTES) != 1 ||
        EVP_EncryptUpdate(cx, c, &len, c, (int)inner) != 1 ||
        EVP_EncryptFinal_ex(cx, c + len, &len) != 1 ||
        EVP_CIPHER_CTX_ctrl(cx, EVP_CTRL_AEAD_GET_TAG, TAG_BYTES, c + inner) != 1) {
        e->keyed[r->suite] = NULL;
        r->failed = 1;
        return -EPROTO;
    }
    out->len += (uint32_t)(TLSREC_HEADER_BYTES + body);
    r->wr.seq++;
    return 0;
}

/* Seals one record of content type ct (n <= 2^14 bytes, no padding) and appends it to out. */
static int seal_record(tlsrec_engine_t *e, tlsrec_t *r, uint8_t ct, const uint8_t *p, size_t n,
                       buf_t *out) {
    uint8_t *w = buf_reserve(out, TLSREC_HEADER_BYTES + n + 1 + TAG_BYTES);
    if (n > 0)
        memcpy(w + TLSREC_HEADER_BYTES, p, n);
    w[TLSREC_HEADER_BYTES + n] = ct;
    return seal_in_place(e, r, w, n + 1, out);
}

int tlsrec_seal_inner(tlsrec_engine_t *e, tlsrec_t *r, const void *inner, size_t n, buf_t *out) {
    if (r->failed)
        return -EPROTO;
    if (n > TLSREC_CIPHERTEXT_MAX_BYTES - TAG_BYTES)
        return -EINVAL;
    uint8_t *w = buf_reserve(out, TLSREC_HEADER_BYTES + n + TAG_BYTES);
    if (n > 0)
        memcpy(w + TLSREC_HEADER_BYTES, inner, n);
    return seal_in_place(e, r, w, n, out);
}

/* Seals a KeyUpdate (request: ask the peer to update too) and moves to the next write key. */
static int send_key_update(tlsrec_engine_t *e, tlsrec_t *r, int request, buf_t *out) {
    const uint8_t msg[HS_HEADER_BYTES + 1] = {HS_KEY_UPDATE, 0, 0, 1, (uint8_t)(request ? 1 : 0)};
    if (seal_record(e, r, CT_HANDSHAKE, msg, sizeof(msg), out) != 0)
        return -EPROTO;
    if (update_dir(e, r->suite, &r->wr) != 0) {
        r->failed = 1;
        return -EPROTO;
    }
    return 0;
}

int tlsrec_seal(tlsrec_engine_t *e, tlsrec_t *r, const void *p, size_t n, buf_t *out) {
    const uint8_t *b = p;
    if (r->failed)
        return -EPROTO;
    /* The KeyUpdate a peer asked for goes out before our next application data (RFC 8446
     * §4.6.3), once however many requests came meanwhile: a peer cannot make our output grow
     * by asking. */
    if (n > 0 && r->answer_owed) {
        if (send_key_update(e, r, 0, out) != 0)
            return -EPROTO;
        r->answer_owed = 0;
    }
    while (n > 0) {
        if (r->wr.seq >= e->rekey_records && send_key_update(e, r, 0, out) != 0)
            return -EPROTO;
        size_t k = n < TLSREC_PLAINTEXT_MAX_BYTES ? n : TLSREC_PLAINTEXT_MAX_BYTES;
        if (seal_record(e, r, CT_APPLICATION_DATA, b, k, out) != 0)
            return -EPROTO;
        b += k;
        n -= k;
    }
    return 0;
}

void tlsrec_alert(tlsrec_engine_t *e, tlsrec_t *r, uint8_t description, buf_t *out) {
    if (r->failed)
        return;
    uint8_t level = description == TLSREC_ALERT_CLOSE_NOTIFY ? ALERT_WARNING : ALERT_FATAL;
    const uint8_t a[2] = {level, description};
    (void)seal_record(e, r, CT_ALERT, a, sizeof(a), out);
    if (level == ALERT_FATAL)
        r->failed = 1;
}

/* Decrypts the record at rec (header plus body of blen bytes) in place under d at seq. Returns
 * the inner plaintext length (body minus tag) or -1 when the tag does not verify. */
static long open_record(tlsrec_engine_t *e, int s, const dir_t *d, uint64_t seq, uint8_t *rec,
                        size_t blen) {
    uint8_t *c = rec + TLSREC_HEADER_BYTES;
    size_t clen = blen - TAG_BYTES;
    int len = 0;
    EVP_CIPHER_CTX *cx = ready(e, s, d, seq, 0);
    if (cx == NULL || EVP_DecryptUpdate(cx, NULL, &len, rec, TLSREC_HEADER_BYTES) != 1 ||
        EVP_DecryptUpdate(cx, c, &len, c, (int)clen) != 1 ||
        EVP_CIPHER_CTX_ctrl(cx, EVP_CTRL_AEAD_SET_TAG, TAG_BYTES, c + clen) != 1 ||
        EVP_DecryptFinal_ex(cx, c + len, &len) != 1)
        return -1;
    return (long)clen;
}

/* Fails the state with a fatal alert. */
static int fail(tlsrec_engine_t *e, tlsrec_t *r, uint8_t description, buf_t *out) {
    tlsrec_alert(e, r, description, out);
    r->failed = 1;
    return -EPROTO;
}

/* Handles the handshake messages of one record: only KeyUpdate is legal from a peer after the
 * handshake (we never ask for a client certificate, and tickets only go the other way). A
 * KeyUpdate must end its record (§5.1: handshake messages may not span a key change); messages
 * split across records are refused, which no client does with KeyUpdate. */
static int handle_handshake(tlsrec_engine_t *e, tlsrec_t *r, const uint8_t *m, size_t n,
                            buf_t *out) {
    if (n < HS_HEADER_BYTES)
        return fail(e, r, TLSREC_ALERT_UNEXPECTED_MESSAGE, out);
    size_t len = ((size_t)m[1] << 16) | ((size_t)m[2] << 8) | m[3];
    if (m[0] != HS_KEY_UPDATE)
        return fail(e, r, TLSREC_ALERT_UNEXPECTED_MESSAGE, out);
    if (len != 1 || n < HS_HEADER_BYTES + len)
        return fail(e, r, TLSREC_ALERT_DECODE_ERROR, out);
    if (n > HS_HEADER_BYTES + len)
        return fail(e, r, TLSREC_ALERT_UNEXPECTED_MESSAGE, out);
    uint8_t request = m[HS_HEADER_BYTES];
    if (request > 1)
        return fail(e, r, TLSREC_ALERT_ILLEGAL_PARAMETER, out);
    /* Each update costs two HMACs and carries no data, so it is paid for with
     * TLSREC_KEY_UPDATE_MIN_BYTES of credit: TLSREC_KEY_UPDATE_BURST in a row are fine, but a peer
     * that goes on updating more often than its data earns is flooding, not protecting its key. */
    if (r->update_credit < TLSREC_KEY_UPDATE_MIN_BYTES)
        return fail(e, r, TLSREC_ALERT_UNEXPECTED_MESSAGE, out);
    if (update_dir(e, r->suite, &r->rd) != 0) {
        r->failed = 1;
        return -EPROTO;
    }
    r->update_credit -= TLSREC_KEY_UPDATE_MIN_BYTES;
    if (request == 1)
        r->answer_owed = 1;
    return 0;
}

int tlsrec_open(tlsrec_engine_t *e, tlsrec_t *r, uint8_t *buf, size_t len, size_t *used,
                size_t *plain, buf_t *out) {
    size_t off = 0, pl = 0;
    int rc = 0;
    *used = 0;
    *plain = 0;
    if (r->failed)
        return -EPROTO;
    if (r->read_closed)
        return -EPIPE;
    while (rc == 0 && len - off >= TLSREC_HEADER_BYTES) {
        uint8_t *rec = buf + off;
        size_t blen = ((size_t)rec[3] << 8) | rec[4];
        /* After the handshake every record is protected and says application_data outside (a
         * change_cipher_spec now is an unexpected record, §5); the legacy version is ignored. */
        if (rec[0] != CT_APPLICATION_DATA) {
            rc = fail(e, r, TLSREC_ALERT_UNEXPECTED_MESSAGE, out);
            break;
        }
        if (blen > TLSREC_CIPHERTEXT_MAX_BYTES) {
            rc = fail(e, r, TLSREC_ALERT_RECORD_OVERFLOW, out);
            break;
        }
        if (blen < TAG_BYTES + 1) {
            rc = fail(e, r, TLSREC_ALERT_DECODE_ERROR, out);
            break;
        }
        if (len - off < TLSREC_HEADER_BYTES + blen)
            break; /* partial: the caller brings the rest */
        long il = open_record(e, r->suite, &r->rd, r->rd.seq, rec, blen);
        if (il < 0) {
            e->keyed[r->suite] = NULL;
            rc = fail(e, r, TLSREC_ALERT_BAD_RECORD_MAC, out);
            break;
        }
        r->rd.seq++;
        off += TLSREC_HEADER_BYTES + blen;
        /* The inner plaintext is content, type, then zero padding (§5.4). */
        uint8_t *ip = rec + TLSREC_HEADER_BYTES;
        size_t n = (size_t)il;
        while (n > 0 && ip[n - 1] == 0)
            n--;
        if (n == 0) {
            rc = fail(e, r, TLSREC_ALERT_UNEXPECTED_MESSAGE, out);
            break;
        }
        uint8_t ct = ip[--n];
        if (n > TLSREC_PLAINTEXT_MAX_BYTES) {
            rc = fail(e, r, TLSREC_ALERT_RECORD_OVERFLOW, out);
            break;
        }
        /* Records that carry no application byte (empty data, KeyUpdate, user_canceled) cost a
         * decryption each and give the caller nothing to account for: a run of more than
         * TLSREC_CONTROL_RUN_MAX of them is refused, as BoringSSL does. Data earns KeyUpdate
         * credit, byte for byte, up to KEY_UPDATE_CREDIT_MAX. */
        if (ct == CT_APPLICATION_DATA && n > 0) {
            r->control_run = 0;
            r->update_credit = n >= KEY_UPDATE_CREDIT_MAX - r->update_credit
                                   ? KEY_UPDATE_CREDIT_MAX
                                   : r->update_credit + (uint32_t)n;
        } else if (++r->control_run > TLSREC_CONTROL_RUN_MAX) {
            rc = fail(e, r, TLSREC_ALERT_UNEXPECTED_MESSAGE, out);
            break;
        }
        if (ct == CT_APPLICATION_DATA) {
            /* The plaintext always lands at or before where it was: pl <= off of this record. */
            memmove(buf + pl, ip, n);
            pl += n;
        } else if (ct == CT_ALERT) {
            if (n != 2) {
                rc = fail(e, r, TLSREC_ALERT_DECODE_ERROR, out);
            } else if (ip[1] == TLSREC_ALERT_CLOSE_NOTIFY) {
                rc = -EPIPE;
            } else if (ip[1] != ALERT_USER_CANCELED) {
                r->failed = 1; /* the peer's fatal alert: it has closed, nothing is sent */
                rc = -EPROTO;
            }
        } else if (ct == CT_HANDSHAKE) {
            rc = handle_handshake(e, r, ip, n, out);
        } else {
            rc = fail(e, r, TLSREC_ALERT_UNEXPECTED_MESSAGE, out);
        }
    }
    /* Nothing is read after close_notify; writing goes on (our own close_notify, RFC 8446 §6.1). */
    if (rc == -EPIPE)
        r->read_closed = 1;
    *used = off;
    *plain = pl;
    return rc;
}

int tlsrec_probe(tlsrec_engine_t *e, uint16_t suite, const uint8_t *secret, size_t secret_len,
                 const uint8_t *record, size_t len, uint64_t max_seq, uint64_t *seq) {
    int s = suite_index(suite);
    if (s < 0 || secret_len != suites[s].hash_len || len < TLSREC_HEADER_BYTES + TAG_BYTES + 1 ||
        len > TLSREC_RECORD_MAX_BYTES ||
        len != TLSREC_HEADER_BYTES + (((size_t)record[3] << 8) | record[4]))
        return -EINVAL;
    dir_t d = {0};
    memcpy(d.secret, secret, secret_len);
    int rc = derive(e, s, &d);
    uint8_t *copy = xmalloc(len);
    for (uint64_t q = 0; rc == 0 && q < max_seq; q++) {
        memcpy(copy, record, len);
        if (open_record(e, s, &d, q, copy, len - TLSREC_HEADER_BYTES) >= 0) {
            *seq = q;
            rc = 1;
        }
    }
    /* d lived on the stack: its key must not stay the cache's idea of a keyed context. */
    if (e->keyed[s] == d.key)
        e->keyed[s] = NULL;
    OPENSSL_cleanse(&d, sizeof(d));
    OPENSSL_cleanse(copy, len);
    xfree(copy);
    return rc == 1 ? 0 : rc == 0 ? -ENOENT : rc;
}

uint64_t tlsrec_read_seq(const tlsrec_t *r) {
    return r->rd.seq;
}

uint64_t tlsrec_write_seq(const tlsrec_t *r) {
    return r->wr.seq;
}

unsigned tlsrec_read_updates(const tlsrec_t *r) {
    return r->rd.updates;
}

unsigned tlsrec_write_updates(const tlsrec_t *r) {
    return r->wr.updates;
}
