/* st.c: the ST dialect. Each handler reads its fields from the token array, checks them, acts
 * through tracker.c / the registry, and writes its answer straight into the output buffer. */
#include "proto/st.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "proto/jw.h"
#include "core/alloc.h"
#include "hub/out.h"
#include "hub/peers.h"
#include "proto/proto.h"
#include "proto/route.h"
#include "proto/tracker.h"
#include "ws/frame.h"

/* Longest "message" text we write. */
#define ST_MAX_MESSAGE_TEXT 200
/* What an ola refused for lack of Redis suggests as a wait before retrying, in milliseconds. */
#define ST_UNAVAILABLE_RETRY_MS 1000

/* ---- output helpers ------------------------------------------------------------------------ */

static void put_str(buf_t *b, const char *key, const char *val) {
    jw_raw(b, key, strlen(key));
    jw_str(b, val, strlen(val));
}

void st_error(server_t *s, conn_t *c, const char *code, const char *message, const char *ref) {
    proto_refused(s, c, refusal_parse(code));
    if (!out_can_send(s, c))
        return;
    size_t off = out_begin(c);
    put_str(&c->out, "{\"type\":\"error\",\"code\":", code);
    put_str(&c->out, ",\"message\":", message);
    if (ref != NULL)
        put_str(&c->out, ",\"ref\":", ref);
    JW_LIT(&c->out, "}");
    out_msg_end(s, c, off, MSG_ERROR);
}

void st_refused(server_t *s, conn_t *c, const char *ref, const uint8_t *info_hash,
                const char *why) {
    if (!out_can_send(s, c))
        return;
    size_t off = out_begin(c);
    put_str(&c->out, "{\"type\":\"error\",\"code\":", "torrent_not_allowed");
    put_str(&c->out, ",\"message\":", why);
    put_str(&c->out, ",\"ref\":", ref);
    if (info_hash != NULL) {
        JW_LIT(&c->out, ",\"info_hash\":");
        jw_hex(&c->out, info_hash, 20);
    }
    JW_LIT(&c->out, "}");
    out_msg_end(s, c, off, MSG_ERROR);
}

void st_rate_limited(server_t *s, conn_t *c, int kind, const st_limited_t *what, uint32_t retry_ms,
                     const char *message) {
    s->count.rate_limited++; /* the one place an ST refusal is counted */
    s->count.rate_limited_by[kind]++;
    proto_refused(s, c, REFUSAL_RATE_LIMITED);
    if (!out_can_send(s, c))
        return;
    size_t off = out_begin(c);
    put_str(&c->out, "{\"type\":\"error\",\"code\":", "rate_limited");
    put_str(&c->out, ",\"message\":", message);
    if (what != NULL && what->ref != NULL)
        put_str(&c->out, ",\"ref\":", what->ref);
    if (what != NULL && what->to != NULL) {
        JW_LIT(&c->out, ",\"to\":");
        jw_str(&c->out, what->to, what->to_len);
    }
    if (what != NULL && what->info_hash != NULL) {
        JW_LIT(&c->out, ",\"info_hash\":");
        jw_hex(&c->out, what->info_hash, 20);
    }
    JW_LIT(&c->out, ",\"retry_after_ms\":");
    jw_u64(&c->out, retry_ms);
    JW_LIT(&c->out, "}");
    out_msg_end(s, c, off, MSG_ERROR);
}

void st_bye(server_t *s, conn_t *c, const char *reason) {
    size_t off = out_begin(c);
    put_str(&c->out, "{\"type\":\"bye\",\"reason\":", reason);
    JW_LIT(&c->out, "}");
    out_msg_end(s, c, off, MSG_BYE);
}

/* An error about one field: "invalid_field" with a message naming it. */
static void bad_field(server_t *s, conn_t *c, const char *ref, const char *field,
                      const char *want) {
    char msg[ST_MAX_MESSAGE_TEXT];
    snprintf(msg, sizeof(msg), "field \"%s\" %s", field, want);
    st_error(s, c, "invalid_field", msg, ref);
}

/* ---- field readers ------------------------------------------------------------------------- */

int st_peer_id_valid(const char *id, size_t n) {
    if (n == 0 || n > ST_MAX_PEER_ID)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = id[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '.' || ch == '_' || ch == '~' || ch == '-';
        if (!ok)
            return 0;
    }
    return 1;
}

/* Reads an ST peer ID from a string token. Returns its length, or -1 when invalid. */
static int read_peer_id(const char *src, const json_tok_t *t, char out[ST_MAX_PEER_ID]) {
    if (t->type != JSON_STRING)
        return -1;
    int n = json_str_unescape(src, t, out, ST_MAX_PEER_ID);
    if (n <= 0 || !st_peer_id_valid(out, (size_t)n))
        return -1;
    return n;
}

static int hexval(char ch) {
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Reads 2*n hex digits (any case) from a string token into n bytes. Returns 0 or -1. */
static int read_hex(const char *src, const json_tok_t *t, uint8_t *out, size_t n) {
    if (t->type != JSON_STRING || t->escaped || t->end - t->start != 2 * n)
        return -1;
    const char *p = src + t->start;
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(p[2 * i]), lo = hexval(p[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

/* Reads an optional non-negative integer field. Returns 1 when present and valid (*v set), 0 when
 * absent, -1 when invalid (an error has been sent). */
static int opt_count(server_t *s, conn_t *c, const char *src, int obj, const char *field,
                     const char *ref, int64_t *v) {
    int i = json_obj_get(src, s->toks, obj, field);
    if (i < 0 || s->toks[i].type == JSON_NULL)
        return 0;
    if (s->toks[i].type != JSON_NUMBER || json_get_i64(src, &s->toks[i], v) != 0 || *v < 0) {
        bad_field(s, c, ref, field, "must be a non-negative integer");
        return -1;
    }
    return 1;
}

/* ---- handlers ------------------------------------------------------------------------------ */

static void ola_answer(server_t *s, conn_t *c, const char *id, size_t idlen, const char *error) {
    if (error != NULL)
        proto_refused(s, c, refusal_parse(error));
    if (!out_can_send(s, c))
        return;
    size_t off = out_begin(c);
    if (error == NULL) {
        JW_LIT(&c->out, "{\"type\":\"ola\",\"ok\":true,\"peer_id\":");
        jw_str(&c->out, id, idlen);
        JW_LIT(&c->out, ",\"token\":");
        jw_hex(&c->out, registry_token(c->peer), REGISTRY_TOKEN_BYTES);
        JW_LIT(&c->out, ",\"interval\":");
        jw_u64(&c->out, s->cfg.interval);
        JW_LIT(&c->out, "}");
    } else {
        JW_LIT(&c->out, "{\"type\":\"ola\",\"ok\":false,\"peer_id\":");
        jw_str(&c->out, id, idlen);
        put_str(&c->out, ",\"error\":", error);
        if (strcmp(error, "unavailable") == 0) {
            JW_LIT(&c->out, ",\"retry_after_ms\":");
            jw_u64(&c->out, ST_UNAVAILABLE_RETRY_MS);
        }
        JW_LIT(&c->out, "}");
    }
    out_msg_end(s, c, off, MSG_HELLO);
}

static void on_ola(server_t *s, conn_t *c, const char *src) {
    char id[ST_MAX_PEER_ID];
    int i = json_obj_get(src, s->toks, 0, "peer_id");
    if (i < 0) {
        st_error(s, c, "invalid_peer_id", "ola needs a \"peer_id\"", "ola");
        return;
    }
    int n = read_peer_id(src, &s->toks[i], id);
    if (n < 0) {
        st_error(s, c, "invalid_peer_id",
                 "peer_id must be 1 to 64 characters of A-Z a-z 0-9 . _ ~ -", "ola");
        return;
    }
    if (c->peer != NULL && !(c->flags & CF_ASYNC_DONE)) {
        st_error(s, c, "already_identified", "this connection already holds a peer_id", "ola");
        return;
    }
    uint8_t token[16], fresh[16];
    int has_token = 0;
    int ti = json_obj_get(src, s->toks, 0, "token");
    if (ti >= 0 && s->toks[ti].type != JSON_NULL) {
        if (read_hex(src, &s->toks[ti], token, sizeof(token)) != 0) {
            bad_field(s, c, "ola", "token", "must be the 32 hex characters the server issued");
            return;
        }
        has_token = 1;
    }
    if (!(c->flags & CF_ASYNC_DONE) && rng_secure(fresh, sizeof(fresh)) != 0) {
        st_error(s, c, "internal_error", "could not make a token; try again", "ola");
        return;
    }
    /* A holder whose token matches is replaced (closed with bye "replaced") before the new
     * connection takes the ID, so two connections never hold it at the same moment. */
    int r = peers_claim(s, c, id, (size_t)n, DIALECT_ST, has_token ? token : NULL, fresh);
    if (r == -EINPROGRESS)
        proto_park(s, c, NULL);
    else if (r == 0)
        ola_answer(s, c, id, (size_t)n, NULL);
    else
        ola_answer(s, c, id, (size_t)n, r == -EEXIST ? "peer_id_taken" : "unavailable");
}

static void write_counts(buf_t *b, uint32_t complete, uint32_t incomplete) {
    JW_LIT(b, ",\"complete\":");
    jw_u64(b, complete);
    JW_LIT(b, ",\"incomplete\":");
    jw_u64(b, incomplete);
}

static void on_announce(server_t *s, conn_t *c, const char *src) {
    static const char ref[] = "announce";
    uint8_t ih[20];
    int i = json_obj_get(src, s->toks, 0, "info_hash");
    if (i < 0 || read_hex(src, &s->toks[i], ih, sizeof(ih)) != 0) {
        st_error(s, c, "invalid_info_hash", "info_hash must be 40 hex characters", ref);
        return;
    }
    if (!tracker_allowed(s, ih)) {
        proto_refused(s, c, REFUSAL_TORRENT_NOT_ALLOWED);
        st_refused(s, c, ref, ih, tracker_refused(s, 1));
        return;
    }
    int event = TRACKER_UPDATE;
    int ei = json_obj_get(src, s->toks, 0, "event");
    if (ei >= 0 && s->toks[ei].type != JSON_NULL) {
        event = tracker_event_parse(src, &s->toks[ei]);
        if (event < 0 || event == TRACKER_PAUSED) {
            bad_field(s, c, ref, "event", "must be \"started\", \"completed\" or \"stopped\"");
            return;
        }
    }
    int64_t up = 0, down = 0, left = 0, want = s->cfg.default_numwant;
    int has_left;
    if (opt_count(s, c, src, 0, "uploaded", ref, &up) < 0 ||
        opt_count(s, c, src, 0, "downloaded", ref, &down) < 0 ||
        (has_left = opt_count(s, c, src, 0, "left", ref, &left)) < 0 ||
        opt_count(s, c, src, 0, "num_want", ref, &want) < 0)
        return;
    if (want > (int64_t)s->cfg.max_numwant)
        want = s->cfg.max_numwant;
    swarm_member_t *m = NULL;
    uint32_t retry = 0;
    int lstate = !has_left   ? TRACKER_LEFT_UNKNOWN
                 : left == 0 ? TRACKER_LEFT_ZERO
                             : TRACKER_LEFT_SOME;
    int r = tracker_announce(s, c, ih, event, lstate, &m, &retry);
    if (r == -EAGAIN) {
        char msg[ST_MAX_MESSAGE_TEXT];
        snprintf(msg, sizeof(msg), "announce again in %u s (min_interval %u s)",
                 (retry + 999) / 1000, s->cfg.min_interval);
        st_limited_t what = {ref, NULL, 0, ih};
        st_rate_limited(s, c, RL_ANNOUNCE, &what, retry, msg);
        return;
    }
    if (r == -ENOSPC) {
        char msg[ST_MAX_MESSAGE_TEXT];
        snprintf(msg, sizeof(msg), "a connection may be in at most %u swarms", s->cfg.max_swarms);
        st_error(s, c, "too_many_swarms", msg, ref);
        return;
    }
    if (!out_can_send(s, c))
        return;
    uint32_t complete, incomplete;
    tracker_counts(s, ih, &complete, &incomplete);
    buf_t *b = &c->out;
    size_t off = out_begin(c);
    JW_LIT(b, "{\"type\":\"announce\",\"info_hash\":");
    jw_hex(b, ih, sizeof(ih));
    JW_LIT(b, ",\"interval\":");
    jw_u64(b, s->cfg.interval);
    JW_LIT(b, ",\"min_interval\":");
    jw_u64(b, s->cfg.min_interval);
    write_counts(b, complete, incomplete);
    JW_LIT(b, ",\"peers\":[");
    if (m != NULL && want > 0) {
        swarm_member_t *picked[128];
        uint32_t n =
            swarm_sample(m->swarm, m, m->seeder, DIALECT_ST, &s->rng, picked, (uint32_t)want);
        for (uint32_t k = 0; k < n; k++) {
            const registry_entry_t *pe = picked[k]->owner;
            if (k)
                JW_LIT(b, ",");
            JW_LIT(b, "{\"peer_id\":");
            jw_str(b, pe->id, pe->len);
            if (picked[k]->seeder)
                JW_LIT(b, ",\"complete\":true}");
            else
                JW_LIT(b, ",\"complete\":false}");
        }
    }
    JW_LIT(b, "]}");
    out_msg_end(s, c, off, MSG_ANNOUNCE);
}

static void on_signal(server_t *s, conn_t *c, const char *src, const char *type) {
    char to[ST_MAX_PEER_ID];
    int ti = json_obj_get(src, s->toks, 0, "to");
    int n = ti >= 0 ? read_peer_id(src, &s->toks[ti], to) : -1;
    if (n < 0) {
        bad_field(s, c, type, "to",
                  "must be a peer_id (1 to 64 characters of A-Z a-z 0-9 . _ ~ -)");
        return;
    }
    int pi = json_obj_get(src, s->toks, 0, "payload");
    if (pi < 0) {
        bad_field(s, c, type, "payload", "is required");
        return;
    }
    uint8_t ih[20];
    int hi = json_obj_get(src, s->toks, 0, "info_hash");
    if (hi >= 0 && read_hex(src, &s->toks[hi], ih, sizeof(ih)) != 0) {
        st_error(s, c, "invalid_info_hash", "info_hash must be 40 hex characters", type);
        return;
    }
    registry_entry_t *dst = registry_find(s->registry, to, (size_t)n);
    if (dst == NULL || dst->dialect != DIALECT_ST) {
        proto_refused(s, c, REFUSAL_PEER_NOT_FOUND);
        if (!out_can_send(s, c))
            return;
        size_t off = out_begin(c);
        JW_LIT(&c->out, "{\"type\":\"error\",\"code\":\"peer_not_found\",\"message\":"
                        "\"no connected peer has that peer_id\",\"ref\":");
        jw_str(&c->out, type, strlen(type));
        JW_LIT(&c->out, ",\"to\":");
        jw_str(&c->out, to, (size_t)n);
        JW_LIT(&c->out, "}");
        out_msg_end(s, c, off, MSG_ERROR);
        return;
    }
    st_limited_t what = {type, to, (size_t)n, hi >= 0 ? ih : NULL};
    uint32_t wait =
        bucket_take(&c->sig_bucket, s->now_ms, s->cfg.signal_rate, s->cfg.signal_burst, 1);
    if (wait != 0) {
        st_rate_limited(s, c, RL_SIGNALS_SENT, &what, wait, "you are sending signals too fast");
        return;
    }
    /* The payload is copied verbatim: the tokenizer has validated it as JSON. A string token's
     * extent excludes its quotes. */
    const json_tok_t *pt = &s->toks[pi];
    size_t pstart = pt->type == JSON_STRING ? pt->start - 1 : pt->start;
    size_t pend = pt->type == JSON_STRING ? pt->end + 1 : pt->end;
    buf_t *b = &s->scratch;
    b->len = 0;
    JW_LIT(b, "{\"type\":");
    jw_str(b, type, strlen(type));
    JW_LIT(b, ",\"from\":");
    jw_str(b, c->peer->id, c->peer->len);
    if (hi >= 0) {
        JW_LIT(b, ",\"info_hash\":");
        jw_hex(b, ih, sizeof(ih));
    }
    JW_LIT(b, ",\"payload\":");
    jw_raw(b, src + pstart, pend - pstart);
    JW_LIT(b, "}");
    int kind = strcmp(type, "offer") == 0    ? WIRE_ST_OFFER
               : strcmp(type, "answer") == 0 ? WIRE_ST_ANSWER
                                             : WIRE_ST_CANDIDATE;
    delivery_t d = {(uint8_t)kind, dst->at, c->peer, hi >= 0 ? ih : NULL, NULL, b->data, b->len};
    if (route_deliver(s, &d, &wait) == -EAGAIN)
        st_rate_limited(s, c, RL_SIGNALS_RECV, &what, wait,
                        "that peer is receiving signals too fast");
}

/* Reorders the n infohashes at ihs (20 bytes each) so that those the access list allows come
 * first, in their order, and the refused ones after them, in theirs. Returns how many are
 * allowed. */
static uint32_t partition_allowed(const server_t *s, uint8_t *ihs, uint32_t n) {
    uint32_t allowed = 0;
    for (uint32_t k = 0; k < n; k++)
        allowed += (uint32_t)tracker_allowed(s, ihs + 20 * (size_t)k);
    if (allowed == n || allowed == 0)
        return allowed;
    uint8_t *tmp = xmalloc((size_t)n * 20);
    uint32_t a = 0, r = allowed;
    for (uint32_t k = 0; k < n; k++) {
        const uint8_t *ih = ihs + 20 * (size_t)k;
        memcpy(tmp + 20 * (size_t)(tracker_allowed(s, ih) ? a++ : r++), ih, 20);
    }
    memcpy(ihs, tmp, (size_t)n * 20);
    xfree(tmp);
    return allowed;
}

static void on_scrape(server_t *s, conn_t *c, const char *src) {
    static const char ref[] = "scrape";
    int ai = json_obj_get(src, s->toks, 0, "info_hashes");
    if (ai < 0 || s->toks[ai].type != JSON_ARRAY) {
        bad_field(s, c, ref, "info_hashes", "must be an array of 40-hex-character infohashes");
        return;
    }
    if (s->toks[ai].size > s->cfg.max_scrape) {
        char msg[ST_MAX_MESSAGE_TEXT];
        snprintf(msg, sizeof(msg), "at most %u infohashes per scrape", s->cfg.max_scrape);
        st_error(s, c, "invalid_field", msg, ref);
        return;
    }
    /* Validate everything before writing anything. */
    uint32_t count = s->toks[ai].size;
    uint8_t *ihs = xmalloc((size_t)count * 20 + 1);
    tracker_scrape_t *v = xmalloc((size_t)count * sizeof(*v) + 1);
    int r = 0;
    for (uint32_t k = 0, t = (uint32_t)ai + 1; k < count && r == 0; k++, t = s->toks[t].next)
        if (read_hex(src, &s->toks[t], ihs + 20 * (size_t)k, 20) != 0)
            r = -EINVAL;
    /* Infohashes the access list refuses are moved to the end of ihs and left out of the
     * answer's files; the answer lists them in "refused". When all are refused it is an error. */
    uint32_t allowed = 0;
    if (r != 0) {
        st_error(s, c, "invalid_info_hash", "info_hash must be 40 hex characters", ref);
    } else {
        allowed = partition_allowed(s, ihs, count);
        if (allowed == 0 && count > 0) {
            proto_refused(s, c, REFUSAL_TORRENT_NOT_ALLOWED);
            st_refused(s, c, ref, count == 1 ? ihs : NULL, tracker_refused(s, count));
            r = -EACCES;
        } else {
            r = tracker_scrape(s, c, ihs, allowed, v);
        }
    }
    if (r == -EAGAIN)
        st_error(s, c, "unavailable",
                 "the infohash database cannot be read now (in cluster mode: Redis is "
                 "unreachable); retry shortly",
                 ref);
    if (r == 0 && allowed < count)
        tracker_refused(s, count - allowed);
    if (r == 0 && out_can_send(s, c)) {
        buf_t *b = &c->out;
        size_t off = out_begin(c);
        JW_LIT(b, "{\"type\":\"scrape\",\"files\":{");
        for (uint32_t k = 0; k < allowed; k++) {
            if (k)
                JW_LIT(b, ",");
            jw_hex(b, ihs + 20 * (size_t)k, 20);
            JW_LIT(b, ":");
            tracker_write_scrape(b, &v[k]);
        }
        JW_LIT(b, "}");
        if (allowed < count) {
            JW_LIT(b, ",\"refused\":[");
            for (uint32_t k = allowed; k < count; k++) {
                if (k > allowed)
                    JW_LIT(b, ",");
                jw_hex(b, ihs + 20 * (size_t)k, 20);
            }
            JW_LIT(b, "]");
        }
        JW_LIT(b, "}");
        out_msg_end(s, c, off, MSG_SCRAPE);
    }
    xfree(ihs);
    xfree(v);
}

void st_handle(server_t *s, conn_t *c, const char *src, int ntoks) {
    (void)ntoks;
    int ti = json_obj_get(src, s->toks, 0, "type");
    if (ti < 0) {
        if (json_obj_get(src, s->toks, 0, "action") >= 0)
            st_error(s, c, "wrong_dialect",
                     "this connection speaks the ST dialect ({\"type\":...}); open another one "
                     "for WebTorrent messages",
                     NULL);
        else
            st_error(s, c, "bad_message", "message needs a \"type\" field", NULL);
        return;
    }
    const json_tok_t *t = &s->toks[ti];
    if (t->type != JSON_STRING) {
        st_error(s, c, "bad_message", "\"type\" must be a string", NULL);
        return;
    }
    if (json_str_eq(src, t, "ping")) {
        if (out_can_send(s, c)) {
            size_t off = out_begin(c);
            JW_LIT(&c->out, "{\"type\":\"pong\"}");
            out_msg_end(s, c, off, MSG_PING);
        }
        return;
    }
    if (json_str_eq(src, t, "ola")) {
        on_ola(s, c, src);
        return;
    }
    static const char *const known[] = {"announce", "offer", "answer", "candidate", "scrape"};
    const char *type = NULL;
    for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++)
        if (json_str_eq(src, t, known[k]))
            type = known[k];
    if (type == NULL) {
        char name[32];
        int n = json_str_unescape(src, t, name, sizeof(name) - 1);
        int printable = n > 0;
        for (int k = 0; k < n; k++)
            if ((unsigned char)name[k] < 0x20 || (unsigned char)name[k] >= 0x7f || name[k] == '"' ||
                name[k] == '\\')
                printable = 0;
        if (printable)
            name[n] = '\0';
        char msg[ST_MAX_MESSAGE_TEXT];
        snprintf(msg, sizeof(msg), "unknown message type%s%s%s", printable ? " \"" : "",
                 printable ? name : "", printable ? "\"" : "");
        st_error(s, c, "unknown_type", msg, printable ? name : NULL);
        return;
    }
    if (c->peer == NULL) {
        st_error(s, c, "not_identified", "send {\"type\":\"ola\",\"peer_id\":...} first", type);
        return;
    }
    if (strcmp(type, "announce") == 0)
        on_announce(s, c, src);
    else if (strcmp(type, "scrape") == 0)
        on_scrape(s, c, src);
    else
        on_signal(s, c, src, type);
}
