/* wt.c: the WebTorrent dialect. IDs arrive as 20-code-point "binary strings" and leave as 7-bit
 * \u00XX-escaped JSON (proto/binstr.c), so every frame we send is valid UTF-8 whatever the bytes.
 */
#include "proto/wt.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/hash.h"
#include "proto/binstr.h"
#include "proto/jw.h"
#include "hub/out.h"
#include "hub/peers.h"
#include "proto/proto.h"
#include "proto/route.h"
#include "proto/tracker.h"
#include "ws/frame.h"

/* Longest failure text we write. */
#define WT_MAX_REASON_TEXT 200
/* Offer records a connection starts with; the array doubles up to WT_MAX_PENDING_OFFERS. */
#define WT_INITIAL_OFFER_RECS 4

static void put_id(buf_t *b, const uint8_t id[BINSTR_ID_BYTES]) {
    uint8_t *o = buf_reserve(b, BINSTR_ENCODED_MAX(BINSTR_ID_BYTES));
    b->len += (uint32_t)binstr_encode(id, BINSTR_ID_BYTES, (char *)o);
}

void wt_failure(server_t *s, conn_t *c, int code, const char *action, const uint8_t *info_hash,
                const char *reason) {
    if (code >= 0)
        proto_refused(s, c, code);
    if (!out_can_send(s, c))
        return;
    buf_t *b = &c->out;
    size_t off = out_begin(c);
    JW_LIT(b, "{\"action\":");
    jw_str(b, action, strlen(action));
    if (info_hash != NULL) {
        JW_LIT(b, ",\"info_hash\":");
        put_id(b, info_hash);
    }
    JW_LIT(b, ",\"failure reason\":");
    jw_str(b, reason, strlen(reason));
    JW_LIT(b, "}");
    out_msg_end(s, c, off, MSG_ERROR);
}

void wt_bye(server_t *s, conn_t *c, const char *reason) {
    char text[WT_MAX_REASON_TEXT];
    snprintf(text, sizeof(text), "%s",
             strcmp(reason, "overload") == 0 ? "tracker overloaded: connection closed, retry later"
             : strcmp(reason, "shutdown") == 0 ? "tracker restarting: reconnect shortly"
             : strcmp(reason, "timeout") == 0  ? "connection timed out"
             : strcmp(reason, "idle") == 0     ? "connection idle for too long"
                                               : "connection closed by the tracker");
    /* One failure per swarm: the client drops failures for infohashes it does not have. The
     * output limit does not apply to this last word, but the swarm cap bounds it. */
    for (swarm_member_t *m = c->peer ? c->peer->members : NULL; m; m = m->next_of_owner) {
        buf_t *b = &c->out;
        size_t off = out_begin(c);
        JW_LIT(b, "{\"action\":\"announce\",\"info_hash\":");
        put_id(b, m->swarm->info_hash);
        JW_LIT(b, ",\"failure reason\":");
        jw_str(b, text, strlen(text));
        JW_LIT(b, "}");
        out_msg_end(s, c, off, MSG_BYE);
    }
}

/* Reads a binary-string field. Returns 0, or -1 when absent or invalid. */
static int read_id(server_t *s, const char *src, const char *field, uint8_t out[20]) {
    int i = json_obj_get(src, s->toks, 0, field);
    if (i < 0)
        return -1;
    return binstr_decode(src, &s->toks[i], out, BINSTR_ID_BYTES) == 0 ? 0 : -1;
}

/* Binds the connection to peer_id on its first announce. Returns 0, or -1 after sending a
 * failure or parking the message (cluster mode: Redis is asked first). */
static int bind_peer_id(server_t *s, conn_t *c, const uint8_t ih[20], const uint8_t pid[20]) {
    if (c->peer != NULL && !(c->flags & CF_ASYNC_DONE)) {
        if (memcmp(c->peer->id, pid, BINSTR_ID_BYTES) == 0)
            return 0;
        wt_failure(s, c, REFUSAL_ALREADY_IDENTIFIED, "announce", ih,
                   "a connection may use only one peer_id");
        return -1;
    }
    int r = peers_claim(s, c, pid, BINSTR_ID_BYTES, DIALECT_WT, NULL, NULL);
    if (r == -EINPROGRESS)
        proto_park(s, c, NULL);
    else if (r == -EEXIST)
        wt_failure(s, c, REFUSAL_PEER_ID_TAKEN, "announce", ih,
                   "peer_id is in use by another connection");
    else if (r != 0)
        wt_failure(s, c, REFUSAL_UNAVAILABLE, "announce", ih,
                   "tracker temporarily unavailable (cluster store unreachable): retry shortly");
    return r == 0 ? 0 : -1;
}

/* Returns the raw JSON text extent of token t (strings include their quotes). */
static void raw_extent(const json_tok_t *t, size_t *start, size_t *end) {
    *start = t->type == JSON_STRING ? t->start - 1 : t->start;
    *end = t->type == JSON_STRING ? t->end + 1 : t->end;
}

/* Delivers to peer `to` a relayed offer or answer from `from`:
 * {"action":"announce","info_hash","peer_id":<from>,"offer_id",<kind>:<the object, verbatim>}.
 * Returns what route_deliver returns. */
static int relay(server_t *s, const registry_entry_t *to, const uint8_t ih[20],
                 const registry_entry_t *from, const uint8_t offer_id[20], int kind,
                 const char *src, const json_tok_t *obj, uint32_t *retry_ms) {
    size_t start, end;
    raw_extent(obj, &start, &end);
    buf_t *b = &s->scratch;
    b->len = 0;
    JW_LIT(b, "{\"action\":\"announce\",\"info_hash\":");
    put_id(b, ih);
    JW_LIT(b, ",\"peer_id\":");
    put_id(b, (const uint8_t *)from->id);
    JW_LIT(b, ",\"offer_id\":");
    put_id(b, offer_id);
    if (kind == WIRE_WT_OFFER)
        JW_LIT(b, ",\"offer\":");
    else
        JW_LIT(b, ",\"answer\":");
    jw_raw(b, src + start, end - start);
    JW_LIT(b, "}");
    delivery_t d = {(uint8_t)kind, to->at, from, ih, offer_id, b->data, b->len};
    return route_deliver(s, &d, retry_ms);
}

/* ---- offer records (the answer gate) ------------------------------------------------------- */

/* The key an offer record is stored under. */
static uint64_t offer_key(server_t *s, const uint8_t offerer[20], const uint8_t offer_id[20],
                          const uint8_t ih[20]) {
    uint8_t k[60];
    memcpy(k, offerer, 20);
    memcpy(k + 20, offer_id, 20);
    memcpy(k + 40, ih, 20);
    return hash_bytes(&s->key, k, sizeof(k));
}

void wt_remember_offer(server_t *s, conn_t *dst, const uint8_t offerer[20],
                       const uint8_t offer_id[20], const uint8_t ih[20]) {
    /* Forget expired records first; then, if still full, overwrite the oldest. */
    uint32_t cap = dst->offers ? dst->offers_cap : 0;
    for (uint32_t i = 0; i < dst->noffers;) {
        if ((int32_t)(s->now - dst->offers[i].sent) >= (int32_t)s->cfg.offer_ttl)
            dst->offers[i] = dst->offers[--dst->noffers];
        else
            i++;
    }
    wt_offer_rec_t *r;
    if (dst->noffers < cap) {
        r = &dst->offers[dst->noffers++];
    } else if (cap < WT_MAX_PENDING_OFFERS) {
        cap = cap ? cap * 2 : WT_INITIAL_OFFER_RECS;
        dst->offers = xrealloc(dst->offers, cap * sizeof(*dst->offers));
        dst->offers_cap = (uint8_t)cap;
        r = &dst->offers[dst->noffers++];
    } else {
        r = &dst->offers[0];
        for (uint32_t i = 1; i < dst->noffers; i++)
            if ((int32_t)(dst->offers[i].sent - r->sent) < 0)
                r = &dst->offers[i];
    }
    r->key = offer_key(s, offerer, offer_id, ih);
    r->sent = s->now;
}

/* Finds and consumes the record of an offer relayed to c. Returns 1 when it was there and
 * live. The record array is released when it empties, so a connection that answered everything
 * holds no offer memory. */
static int take_offer(server_t *s, conn_t *c, const uint8_t offerer[20], const uint8_t offer_id[20],
                      const uint8_t ih[20]) {
    uint64_t key = offer_key(s, offerer, offer_id, ih);
    int live = 0, found = 0;
    for (uint32_t i = 0; i < c->noffers && !found; i++) {
        if (c->offers[i].key == key) {
            live = (int32_t)(s->now - c->offers[i].sent) < (int32_t)s->cfg.offer_ttl;
            c->offers[i] = c->offers[--c->noffers];
            found = 1;
        }
    }
    if (c->noffers == 0 && c->offers != NULL) {
        xfree(c->offers);
        c->offers = NULL;
        c->offers_cap = 0;
    }
    return live;
}

/* ---- announce ------------------------------------------------------------------------------ */

static void on_answer(server_t *s, conn_t *c, const char *src, const uint8_t ih[20], int ai) {
    uint8_t to[20], offer_id[20];
    if (read_id(s, src, "to_peer_id", to) != 0) {
        wt_failure(s, c, REFUSAL_INVALID_PEER_ID, "announce", ih,
                   "invalid to_peer_id (required with answer)");
        return;
    }
    if (read_id(s, src, "offer_id", offer_id) != 0) {
        wt_failure(s, c, REFUSAL_INVALID_FIELD, "announce", ih, "invalid offer_id");
        return;
    }
    if (s->toks[ai].type != JSON_OBJECT) {
        wt_failure(s, c, REFUSAL_INVALID_FIELD, "announce", ih,
                   "invalid answer: must be an object");
        return;
    }
    if (!take_offer(s, c, to, offer_id, ih)) {
        wt_failure(s, c, REFUSAL_UNKNOWN_OFFER, "announce", ih,
                   "no such offer: it was not sent to you, was answered already, expired, or was "
                   "displaced by "
                   "newer offers");
        return;
    }
    registry_entry_t *dst = registry_find(s->registry, to, 20);
    if (dst == NULL || dst->dialect != DIALECT_WT) {
        wt_failure(s, c, REFUSAL_PEER_NOT_FOUND, "announce", ih,
                   "the peer that sent this offer is gone");
        return;
    }
    uint32_t wait =
        bucket_take(&c->sig_bucket, s->now_ms, s->cfg.signal_rate, s->cfg.signal_burst, 1);
    int sent_limited = wait != 0;
    if (wait == 0 &&
        relay(s, dst, ih, c->peer, offer_id, WIRE_WT_ANSWER, src, &s->toks[ai], &wait) != -EAGAIN)
        return;
    s->count.rate_limited++;
    s->count.rate_limited_by[sent_limited ? RL_SIGNALS_SENT : RL_SIGNALS_RECV]++;
    wt_failure(s, c, REFUSAL_RATE_LIMITED, "announce", ih,
               "rate limited: too many signals, slow down");
}

static void relay_offers(server_t *s, conn_t *c, swarm_member_t *m, const char *src, int oi) {
    const json_tok_t *arr = &s->toks[oi];
    if (arr->type != JSON_ARRAY || arr->size == 0 || s->cfg.test_drop_offers)
        return;
    uint32_t want = arr->size < s->cfg.max_offers ? arr->size : s->cfg.max_offers;
    swarm_member_t *picked[128];
    uint32_t n = swarm_sample(m->swarm, m, m->seeder, DIALECT_WT, &s->rng, picked, want);
    uint32_t t = (uint32_t)oi + 1, limited = 0, sent_limited = 0;
    for (uint32_t k = 0; k < n; k++, t = s->toks[t].next) {
        const json_tok_t *ot = &s->toks[t];
        if (ot->type != JSON_OBJECT)
            continue;
        int offer = json_obj_get(src, s->toks, (int)t, "offer");
        int idt = json_obj_get(src, s->toks, (int)t, "offer_id");
        uint8_t offer_id[20];
        if (offer < 0 || s->toks[offer].type != JSON_OBJECT || idt < 0 ||
            binstr_decode(src, &s->toks[idt], offer_id, BINSTR_ID_BYTES) != 0)
            continue;
        if (bucket_take(&c->sig_bucket, s->now_ms, s->cfg.signal_rate, s->cfg.signal_burst, 1)) {
            limited += n - k;
            sent_limited = 1;
            break;
        }
        const registry_entry_t *dst = picked[k]->owner;
        uint32_t retry;
        if (relay(s, dst, m->swarm->info_hash, c->peer, offer_id, WIRE_WT_OFFER, src,
                  &s->toks[offer], &retry) == -EAGAIN)
            limited++;
    }
    if (limited > 0) {
        char msg[WT_MAX_REASON_TEXT];
        snprintf(msg, sizeof(msg), "rate limited: %u of %u offers were not relayed, slow down",
                 limited, n);
        s->count.rate_limited++;
        s->count.rate_limited_by[sent_limited ? RL_SIGNALS_SENT : RL_SIGNALS_RECV]++;
        wt_failure(s, c, REFUSAL_RATE_LIMITED, "announce", m->swarm->info_hash, msg);
    }
}

static void on_announce(server_t *s, conn_t *c, const char *src) {
    uint8_t ih[20], pid[20];
    if (read_id(s, src, "info_hash", ih) != 0) {
        wt_failure(s, c, REFUSAL_INVALID_INFO_HASH, "announce", NULL, "invalid info_hash");
        return;
    }
    /* Before the peer_id is claimed: a refused torrent costs nothing else, not even (in cluster
     * mode) a round trip to Redis. Answers to offers of a swarm refused since are refused too. */
    if (!tracker_allowed(s, ih)) {
        wt_failure(s, c, REFUSAL_TORRENT_NOT_ALLOWED, "announce", ih, tracker_refused(s, 1));
        return;
    }
    if (read_id(s, src, "peer_id", pid) != 0) {
        wt_failure(s, c, REFUSAL_INVALID_PEER_ID, "announce", ih, "invalid peer_id");
        return;
    }
    if (bind_peer_id(s, c, ih, pid) != 0)
        return;
    int ai = json_obj_get(src, s->toks, 0, "answer");
    if (ai >= 0 && s->toks[ai].type != JSON_NULL && s->toks[ai].type != JSON_FALSE) {
        on_answer(s, c, src, ih, ai);
        return;
    }
    int event = TRACKER_UPDATE;
    int ei = json_obj_get(src, s->toks, 0, "event");
    if (ei >= 0 && s->toks[ei].type != JSON_NULL) {
        event = tracker_event_parse(src, &s->toks[ei]);
        if (event < 0) {
            wt_failure(s, c, REFUSAL_INVALID_FIELD, "announce", ih, "invalid event");
            return;
        }
    }
    /* left: a number, null (a magnet leecher without metadata), negative (unknown) or absent. */
    int left = TRACKER_LEFT_UNKNOWN;
    int li = json_obj_get(src, s->toks, 0, "left");
    double lv;
    if (li >= 0 && s->toks[li].type == JSON_NUMBER && json_get_double(src, &s->toks[li], &lv) == 0)
        left = lv == 0 ? TRACKER_LEFT_ZERO : lv > 0 ? TRACKER_LEFT_SOME : TRACKER_LEFT_UNKNOWN;
    swarm_member_t *m = NULL;
    uint32_t retry = 0;
    int r = tracker_announce(s, c, ih, event, left, &m, &retry);
    if (r == -EAGAIN) {
        char msg[WT_MAX_REASON_TEXT];
        snprintf(msg, sizeof(msg), "rate limited: announce again in %u s", (retry + 999) / 1000);
        s->count.rate_limited++;
        s->count.rate_limited_by[RL_ANNOUNCE]++;
        wt_failure(s, c, REFUSAL_RATE_LIMITED, "announce", ih, msg);
        return;
    }
    if (r == -ENOSPC) {
        char msg[WT_MAX_REASON_TEXT];
        snprintf(msg, sizeof(msg), "too many torrents on one connection (at most %u)",
                 s->cfg.max_swarms);
        wt_failure(s, c, REFUSAL_TOO_MANY_SWARMS, "announce", ih, msg);
        return;
    }
    uint32_t complete, incomplete;
    tracker_counts(s, ih, &complete, &incomplete);
    if (out_can_send(s, c)) {
        buf_t *b = &c->out;
        size_t off = out_begin(c);
        JW_LIT(b, "{\"action\":\"announce\",\"info_hash\":");
        put_id(b, ih);
        JW_LIT(b, ",\"complete\":");
        jw_u64(b, complete);
        JW_LIT(b, ",\"incomplete\":");
        jw_u64(b, incomplete);
        JW_LIT(b, ",\"interval\":");
        jw_u64(b, s->cfg.interval);
        JW_LIT(b, "}");
        out_msg_end(s, c, off, MSG_ANNOUNCE);
    }
    int oi = json_obj_get(src, s->toks, 0, "offers");
    if (m != NULL && oi >= 0 && event != TRACKER_COMPLETED)
        relay_offers(s, c, m, src, oi);
}

/* ---- scrape -------------------------------------------------------------------------------- */

static void on_scrape(server_t *s, conn_t *c, const char *src) {
    int hi = json_obj_get(src, s->toks, 0, "info_hash");
    if (hi < 0 || s->toks[hi].type == JSON_NULL) {
        wt_failure(s, c, REFUSAL_INVALID_INFO_HASH, "scrape", NULL,
                   "full scrapes are not allowed: name the info_hash");
        return;
    }
    uint32_t first, count;
    if (s->toks[hi].type == JSON_ARRAY) {
        first = (uint32_t)hi + 1;
        count = s->toks[hi].size;
    } else {
        first = (uint32_t)hi;
        count = 1;
    }
    if (count > s->cfg.max_scrape) {
        char msg[WT_MAX_REASON_TEXT];
        snprintf(msg, sizeof(msg), "too many info_hashes in one scrape (at most %u)",
                 s->cfg.max_scrape);
        wt_failure(s, c, REFUSAL_INVALID_FIELD, "scrape", NULL, msg);
        return;
    }
    uint8_t *ihs = xmalloc((size_t)count * 20 + 1);
    tracker_scrape_t *v = xmalloc((size_t)count * sizeof(*v) + 1);
    int r = 0;
    for (uint32_t k = 0, t = first; k < count && r == 0; k++, t = s->toks[t].next)
        if (binstr_decode(src, &s->toks[t], ihs + 20 * (size_t)k, BINSTR_ID_BYTES) != 0)
            r = -EINVAL;
    /* Infohashes the access list refuses are left out of the answer's files (the WebTorrent
     * client has no per-file failure to show); when all are refused it is a failure. */
    uint32_t allowed = 0;
    if (r != 0) {
        wt_failure(s, c, REFUSAL_INVALID_INFO_HASH, "scrape", NULL, "invalid info_hash");
    } else {
        for (uint32_t k = 0; k < count; k++) {
            const uint8_t *ih = ihs + 20 * (size_t)k;
            if (tracker_allowed(s, ih))
                memmove(ihs + 20 * (size_t)allowed++, ih, 20);
        }
        if (allowed == 0 && count > 0) {
            /* The one refused infohash is still at the front when there was only one. */
            wt_failure(s, c, REFUSAL_TORRENT_NOT_ALLOWED, "scrape", count == 1 ? ihs : NULL,
                       tracker_refused(s, count));
            r = -EACCES;
        } else {
            r = tracker_scrape(s, c, ihs, allowed, v);
        }
    }
    if (r == -EAGAIN)
        wt_failure(s, c, REFUSAL_UNAVAILABLE, "scrape", NULL,
                   "tracker temporarily unavailable (the infohash database cannot be read): retry "
                   "shortly");
    if (r == 0 && allowed < count)
        tracker_refused(s, count - allowed);
    if (r == 0 && out_can_send(s, c)) {
        buf_t *b = &c->out;
        size_t off = out_begin(c);
        JW_LIT(b, "{\"action\":\"scrape\",\"files\":{");
        for (uint32_t k = 0; k < allowed; k++) {
            if (k)
                JW_LIT(b, ",");
            put_id(b, ihs + 20 * (size_t)k);
            JW_LIT(b, ":");
            tracker_write_scrape(b, &v[k]);
        }
        JW_LIT(b, "}}");
        out_msg_end(s, c, off, MSG_SCRAPE);
    }
    xfree(ihs);
    xfree(v);
}

void wt_handle(server_t *s, conn_t *c, const char *src, int ntoks) {
    (void)ntoks;
    int ai = json_obj_get(src, s->toks, 0, "action");
    const json_tok_t *t = ai >= 0 ? &s->toks[ai] : NULL;
    if (t != NULL && t->type == JSON_STRING && json_str_eq(src, t, "announce")) {
        on_announce(s, c, src);
    } else if (t != NULL && t->type == JSON_STRING && json_str_eq(src, t, "scrape")) {
        on_scrape(s, c, src);
    } else {
        /* Echo the action when it is printable, as bittorrent-tracker's message does. */
        char name[32] = "";
        int n =
            t && t->type == JSON_STRING ? json_str_unescape(src, t, name, sizeof(name) - 1) : -1;
        int printable = n > 0;
        for (int k = 0; k < n; k++)
            if ((unsigned char)name[k] < 0x20 || (unsigned char)name[k] >= 0x7f)
                printable = 0;
        name[printable ? n : 0] = '\0';
        char msg[WT_MAX_REASON_TEXT];
        snprintf(msg, sizeof(msg), "invalid action in WS request: %s", printable ? name : "?");
        wt_failure(s, c, REFUSAL_UNKNOWN_TYPE, printable ? name : "announce", NULL, msg);
    }
}
