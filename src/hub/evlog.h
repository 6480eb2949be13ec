/* evlog.h: log lines about one client (a connection opened or closed, an HTTP request, a refused
 * message, a protocol violation), each with the client's address and, once it has one, its peer
 * ID; rate-limited per (kind, address) and per kind (limits/loglimit.h), with a line saying how
 * many similar ones were suppressed. Also the periodic activity summary (--log-summary).
 * Event-loop thread only. */
#ifndef SIG_HUB_EVLOG_H
#define SIG_HUB_EVLOG_H

#include <stddef.h>

#include "core/log.h"
#include "hub/ctx.h"

/* Kinds of client events; each is written at debug and limited on its own. */
enum evlog_kind {
    EVLOG_OPEN = 0, /* a connection was accepted */
    EVLOG_CLOSE,    /* a connection closes, with its reason */
    EVLOG_HTTP,     /* an HTTP request was answered, with its path and status */
    EVLOG_REFUSED,  /* a message was refused, with its code (hub/refusal.h) */
    EVLOG_PROTOCOL, /* a WebSocket or PROXY protocol violation */
    EVLOG_KINDS
};

/* Resets the rate limit and schedules the first summary. server_create calls it. */
void evlog_init(server_t *s);

/* Returns 1 when a line of this kind would be written at the current level (so callers can skip
 * building its fields). */
int evlog_enabled(int kind);

/* Writes msg with addr=<c's client address>, peer=<its peer ID, when it has one> and the extra
 * fields, unless the level is above debug or the rate limit suppresses it. */
void evlog_conn(server_t *s, const conn_t *c, int kind, const char *msg,
                const logfmt_field_t *extra, size_t nextra);

/* Once a second (server_tick): writes one "suppressed N similar messages" line per kind that had
 * lines suppressed, and the activity summary when --log-summary seconds have passed. */
void evlog_tick(server_t *s);

/* Formats a 16-byte address (IPv6, or IPv4-mapped) for a log line. Returns buf. */
const char *evlog_addr(const uint8_t a[16], char *buf, size_t len);

#endif
