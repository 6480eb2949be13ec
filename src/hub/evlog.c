/* evlog.c: client events in the log. The line is built only when the level lets it through and
 * the rate limit allows it, so a flood costs a hash and two bucket updates per event. */
#include "hub/evlog.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

static const char *const kind_names[EVLOG_KINDS] = {"open", "close", "http", "refused", "protocol"};

void evlog_init(server_t *s) {
    loglimit_init(&s->loglimit, s->now_ms);
    s->summary_base = s->count;
    s->next_summary = s->now + s->cfg.log_summary;
}

int evlog_enabled(int kind) {
    (void)kind;
    return log_enabled(LOG_DEBUG);
}

const char *evlog_addr(const uint8_t a[16], char *buf, size_t len) {
    static const uint8_t v4prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    const char *r = memcmp(a, v4prefix, 12) == 0 ? inet_ntop(AF_INET, a + 12, buf, (socklen_t)len)
                                                 : inet_ntop(AF_INET6, a, buf, (socklen_t)len);
    if (r == NULL)
        snprintf(buf, len, "?");
    return buf;
}

/* Most fields one event carries: addr, peer, and the caller's. */
#define EVLOG_MAX_FIELDS 12

void evlog_conn(server_t *s, const conn_t *c, int kind, const char *msg,
                const logfmt_field_t *extra, size_t nextra) {
    if (!evlog_enabled(kind))
        return;
    static const uint8_t none[16] = {0};
    const uint8_t *addr = c != NULL && c->ip != NULL ? c->ip->addr : none;
    uint8_t keyb[17];
    memcpy(keyb, addr, 16);
    keyb[16] = (uint8_t)kind;
    uint64_t key = hash_bytes(&s->key, keyb, sizeof(keyb));
    if (!loglimit_allow(&s->loglimit, (unsigned)kind, key, addr, s->now_ms))
        return;
    logfmt_field_t f[EVLOG_MAX_FIELDS];
    size_t n = 0;
    char a[INET6_ADDRSTRLEN];
    f[n++] = LOGFMT_S("addr", evlog_addr(addr, a, sizeof(a)));
    if (c != NULL && c->peer != NULL) {
        /* WebTorrent IDs are 20 arbitrary bytes: hex. ST IDs are printable: as they are. */
        if (c->peer->dialect == DIALECT_WT)
            f[n++] = LOGFMT_X("peer", c->peer->id, c->peer->len);
        else
            f[n++] = LOGFMT_B("peer", c->peer->id, c->peer->len);
    }
    for (size_t i = 0; i < nextra && n < EVLOG_MAX_FIELDS; i++)
        f[n++] = extra[i];
    log_event(LOG_DEBUG, msg, f, n);
}

static void report(void *arg, unsigned kind, uint64_t suppressed, uint32_t addresses,
                   const uint8_t *top) {
    (void)arg;
    char msg[96], a[INET6_ADDRSTRLEN] = "-";
    snprintf(msg, sizeof(msg), "suppressed %llu similar messages", (unsigned long long)suppressed);
    if (top != NULL)
        evlog_addr(top, a, sizeof(a));
    logfmt_field_t f[] = {
        LOGFMT_S("kind", kind < EVLOG_KINDS ? kind_names[kind] : "?"),
        LOGFMT_U("suppressed", suppressed),
        LOGFMT_U("addresses", addresses),
        LOGFMT_S("addr", a),
    };
    log_event(LOG_DEBUG, msg, f, top != NULL ? 4 : 3);
}

static uint64_t sum_refused(const server_counters_t *c) {
    uint64_t n = 0;
    for (int i = 0; i < REFUSAL_COUNT; i++)
        n += c->refused_msgs[i];
    return n;
}

/* The activity summary: counts since the last one, and the gauges now. */
static void summary(server_t *s) {
    const server_counters_t *now = &s->count, *was = &s->summary_base;
    uint32_t secs = s->cfg.log_summary;
    char msg[64];
    snprintf(msg, sizeof(msg), "activity in the last %u s", secs);
    logfmt_field_t f[] = {
        LOGFMT_U("connections", s->nconns),
        LOGFMT_U("peers", s->local_peers),
        LOGFMT_U("swarms", s->local_swarms),
        LOGFMT_U("memberships", s->local_members),
        LOGFMT_U("accepted", now->accepted - was->accepted),
        LOGFMT_U("messages_in", now->messages_in - was->messages_in),
        LOGFMT_U("messages_out", now->messages_out - was->messages_out),
        LOGFMT_U("refused", sum_refused(now) - sum_refused(was)),
        LOGFMT_U("rate_limited", now->rate_limited - was->rate_limited),
        LOGFMT_U("protocol_errors", now->protocol_errors - was->protocol_errors),
        LOGFMT_U("dropped", now->dropped - was->dropped),
        LOGFMT_U("timeouts", now->timeouts - was->timeouts),
    };
    log_event(LOG_INFO, msg, f, sizeof(f) / sizeof(f[0]));
    s->summary_base = s->count;
}

void evlog_tick(server_t *s) {
    loglimit_flush(&s->loglimit, report, s);
    if (s->cfg.log_summary == 0)
        return;
    /* A reload may have shortened the interval. */
    if ((int32_t)(s->next_summary - s->now) > (int32_t)s->cfg.log_summary)
        s->next_summary = s->now + s->cfg.log_summary;
    if ((int32_t)(s->now - s->next_summary) >= 0) {
        summary(s);
        s->next_summary = s->now + s->cfg.log_summary;
    }
}
