/* proto.c: from a complete message to a dialect handler. */
#include "proto/proto.h"

#include <errno.h>
#include <string.h>

#include "hub/evlog.h"
#include "hub/peers.h"
#include "proto/st.h"
#include "proto/wt.h"

/* Sends the dialect's "bad message" error on a connection whose dialect may still be unknown. */
static void refuse(server_t *s, conn_t *c, int code, const char *message) {
    if (c->dialect == DIALECT_WT)
        wt_failure(s, c, code, "announce", NULL, message);
    else
        st_error(s, c, refusal_name(code), message, NULL);
}

void proto_refused(server_t *s, conn_t *c, int code) {
    if (code < 0 || code >= REFUSAL_COUNT)
        return;
    s->count.refused_msgs[code]++;
    /* Not JSON at all is a protocol error as much as a bad frame is; the rest are requests the
     * tracker understood and declined. */
    if (code == REFUSAL_BAD_JSON)
        s->count.protocol_errors++;
    if (evlog_enabled(EVLOG_REFUSED)) {
        logfmt_field_t f[] = {LOGFMT_S("code", refusal_name(code))};
        evlog_conn(s, c, EVLOG_REFUSED, "refused a message", f, 1);
    }
}

void proto_park(server_t *s, conn_t *c, ref_list_t *wait_list) {
    c->flags |= CF_PARKED;
    s->count.parked++;
    if (wait_list != NULL)
        ref_list_push(wait_list, peers_ref(s, c));
}

int proto_message(server_t *s, conn_t *c, const char *p, size_t n, int utf8_ok) {
    uint32_t wait = bucket_take(&c->msg_bucket, s->now_ms, s->cfg.msg_rate, s->cfg.msg_burst, 1);
    if (wait != 0) {
        /* Answer at most one refused message per second: a flood must not turn into an equal
         * flood of errors. Every refused message is counted once. */
        s->count.msg_in[MSG_OTHER]++; /* not read: its kind is unknown */
        if (c->rl_notice == s->now) {
            s->count.rate_limited++;
            s->count.rate_limited_by[RL_MESSAGES]++;
            proto_refused(s, c, REFUSAL_RATE_LIMITED);
            return 0;
        }
        c->rl_notice = s->now;
        if (c->dialect == DIALECT_WT) {
            s->count.rate_limited++;
            s->count.rate_limited_by[RL_MESSAGES]++;
            wt_failure(s, c, REFUSAL_RATE_LIMITED, "announce", NULL,
                       "rate limited: too many messages, slow down");
        } else {
            st_rate_limited(s, c, RL_MESSAGES, NULL, wait, "too many messages on this connection");
        }
        return 0;
    }
    if (!utf8_ok) {
        refuse(s, c, REFUSAL_BAD_JSON, "message is not valid UTF-8 JSON");
        return 0;
    }
    return proto_resume(s, c, p, n);
}

/* The kind of a parsed message for the metrics, one of a fixed set (enum msg_type): what the
 * client wrote only picks among them. Only the connection's dialect's key is looked up (one scan
 * of the top-level keys a message); a message in the other dialect is refused and counts as
 * MSG_OTHER. */
static int msg_kind(server_t *s, const conn_t *c, const char *p) {
    int i = json_obj_get(p, s->toks, 0, c->dialect == DIALECT_WT ? "action" : "type");
    if (i < 0 || s->toks[i].type != JSON_STRING)
        return MSG_OTHER;
    const json_tok_t *t = &s->toks[i];
    if (json_str_eq(p, t, "announce"))
        /* A WebTorrent answer travels as an announce carrying "answer". */
        return json_obj_get(p, s->toks, 0, "answer") >= 0 ? MSG_SIGNAL : MSG_ANNOUNCE;
    if (json_str_eq(p, t, "scrape"))
        return MSG_SCRAPE;
    if (json_str_eq(p, t, "offer") || json_str_eq(p, t, "answer") || json_str_eq(p, t, "candidate"))
        return MSG_SIGNAL;
    if (json_str_eq(p, t, "ola"))
        return MSG_HELLO;
    if (json_str_eq(p, t, "ping"))
        return MSG_PING;
    return MSG_OTHER;
}

int proto_resume(server_t *s, conn_t *c, const char *p, size_t n) {
    c->flags &= (uint16_t)~CF_PARKED;
    int ntoks = json_parse(p, n, s->toks, SERVER_MAX_JSON_TOKENS, s->cfg.max_json_depth);
    if (ntoks < 0) {
        refuse(s, c, REFUSAL_BAD_JSON,
               ntoks == -ENOSPC  ? "message has too many JSON values"
               : ntoks == -ELOOP ? "message is nested too deeply"
                                 : "message is not valid JSON");
        s->count.msg_in[MSG_OTHER]++;
        return 0;
    }
    if (s->toks[0].type != JSON_OBJECT) {
        refuse(s, c, REFUSAL_BAD_MESSAGE, "message must be a JSON object");
        s->count.msg_in[MSG_OTHER]++;
        return 0;
    }
    if (c->dialect == DIALECT_NONE) {
        if (json_obj_get(p, s->toks, 0, "action") >= 0)
            c->dialect = DIALECT_WT;
        else if (json_obj_get(p, s->toks, 0, "type") >= 0)
            c->dialect = DIALECT_ST;
        else {
            s->count.msg_in[MSG_OTHER]++;
            st_error(s, c, "bad_message", "message needs a \"type\" (or \"action\") field", NULL);
            return 0;
        }
    }
    /* A message handled again after a wait (CF_ASYNC_DONE) was counted the first time. */
    if (!(c->flags & CF_ASYNC_DONE))
        s->count.msg_in[msg_kind(s, c, p)]++;
    if (c->dialect == DIALECT_WT)
        wt_handle(s, c, p, ntoks);
    else
        st_handle(s, c, p, ntoks);
    /* A result that was waited for is for this message only. */
    c->flags &= (uint16_t)~CF_ASYNC_DONE;
    return (c->flags & CF_PARKED) ? -EINPROGRESS : 0;
}

void proto_send_bye(server_t *s, conn_t *c, const char *reason) {
    if (c->dialect == DIALECT_WT)
        wt_bye(s, c, reason);
    else
        st_bye(s, c, reason);
}

void proto_send_refusal(server_t *s, conn_t *c, const uint8_t info_hash[20], const char *why) {
    if (c->dialect == DIALECT_WT)
        wt_failure(s, c, -1, "announce", info_hash, why);
    else
        st_refused(s, c, "announce", info_hash, why);
}
