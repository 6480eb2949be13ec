/* conn.c: the connection state machine. Bytes arrive through conn_feed; a PROXY protocol header
 * (trusted addresses only) is parsed by ws/proxy.c, the request head by ws/http.c, frames by
 * ws/frame.c, and complete messages go to proto/proto.c. Output is appended to c->out and written
 * once per loop iteration (server.c walks the flush list), so a burst of relays to one peer costs
 * one send(). On a wss connection (c->tls) the same batch is encrypted by one SSL_write into the
 * TLS ciphertext buffer, which the same send() loop writes; reads go through tls_conn_read until
 * OpenSSL has nothing buffered (see server/tls.h). A PROXY header precedes the TLS handshake: it
 * is read from the raw socket before OpenSSL sees a byte. */
#include "server/conn.h"
#include "server/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <time.h>

#include "core/alloc.h"
#include "core/log.h"
#include "hub/evlog.h"
#include "hub/out.h"
#include "hub/peers.h"
#include "proto/proto.h"
#include "server/home.h"
#include "server/server.h"
#include "server/dashboard.h"
#include "server/metrics.h"
#include "server/stats.h"
#include "ws/frame.h"
#include "ws/http.h"
#include "ws/proxy.h"
#include "ws/utf8.h"

/* ---- per-address accounting ------------------------------------------------------------- */

static void addr_key(const struct sockaddr *sa, socklen_t len, uint8_t out[16]) {
    memset(out, 0, 16);
    if (sa != NULL && sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        out[10] = 0xff;
        out[11] = 0xff;
        memcpy(out + 12, &in->sin_addr, 4);
    } else if (sa != NULL && sa->sa_family == AF_INET6 &&
               len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        memcpy(out, &in6->sin6_addr, 16);
    }
}

static ip_entry_t *ip_get(server_t *s, const uint8_t addr[16], int create) {
    uint64_t h = hash_bytes(&s->key, addr, 16);
    for (hmap_node_t *n = hmap_chain(&s->ips, h); n; n = n->next)
        if (n->hash == h && memcmp(((ip_entry_t *)n)->addr, addr, 16) == 0)
            return (ip_entry_t *)n;
    if (!create)
        return NULL;
    ip_entry_t *e = xcalloc(1, sizeof(*e));
    memcpy(e->addr, addr, 16);
    hmap_insert(&s->ips, &e->node, h);
    return e;
}

static void ip_put(server_t *s, ip_entry_t *e) {
    if (e != NULL && --e->count == 0) {
        hmap_remove(&s->ips, &e->node);
        xfree(e);
    }
}

/* Formats an address key for logs. */
static const char *addr_str(const uint8_t a[16], char *buf, size_t len) {
    return evlog_addr(a, buf, len);
}

/* Returns 1 when the comma- or space-separated list holds item (compared without case). */
static int list_has(const char *list, const char *item, size_t len) {
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',' && *e != ' ')
            e++;
        if ((size_t)(e - p) == len && len > 0 && strncasecmp(p, item, len) == 0)
            return 1;
        p = e;
    }
    return 0;
}

/* Returns 1 when an address is in the --trusted-proxy list. Such an address is not held to
 * --max-per-ip at accept: all its clients arrive through it, and each is counted against its
 * own address once the proxy has said which (a PROXY header, or X-Forwarded-For in the
 * upgrade). */
static int is_trusted_proxy(server_t *s, const uint8_t addr[16]) {
    if (s->cfg.trusted_proxies[0] == '\0')
        return 0;
    char me[INET6_ADDRSTRLEN];
    addr_str(addr, me, sizeof(me));
    return list_has(s->cfg.trusted_proxies, me, strlen(me));
}

/* Moves c's per-address count to addr, the client a trusted proxy named. Returns 0, or -EUSERS
 * (and changes nothing) when addr already has --max-per-ip connections. When addr is the one c
 * is counted on already (a proxy naming itself), c is one of them, so only more than the cap is
 * refused. */
static int move_to_address(server_t *s, conn_t *c, const uint8_t addr[16]) {
    ip_entry_t *e = ip_get(s, addr, 0);
    uint32_t cap = s->cfg.max_per_ip;
    if (e == c->ip)
        return cap && e->count > cap ? -EUSERS : 0;
    if (cap && e != NULL && e->count >= cap)
        return -EUSERS;
    if (e == NULL)
        e = ip_get(s, addr, 1);
    e->count++;
    ip_put(s, c->ip);
    c->ip = e;
    return 0;
}

/* Parses the last address of an X-Forwarded-For list (the one our trusted proxy appended).
 * Returns 0 and fills out, or -1. */
static int xff_client(str_t xff, uint8_t out[16]) {
    if (xff.p == NULL || xff.len == 0)
        return -1;
    size_t end = xff.len, start;
    while (end > 0 && (xff.p[end - 1] == ' ' || xff.p[end - 1] == ','))
        end--;
    start = end;
    while (start > 0 && xff.p[start - 1] != ',')
        start--;
    while (start < end && xff.p[start] == ' ')
        start++;
    char tmp[INET6_ADDRSTRLEN + 1];
    if (end - start == 0 || end - start >= sizeof(tmp))
        return -1;
    memcpy(tmp, xff.p + start, end - start);
    tmp[end - start] = '\0';
    struct in_addr a4;
    memset(out, 0, 16);
    if (inet_pton(AF_INET, tmp, &a4) == 1) {
        out[10] = 0xff;
        out[11] = 0xff;
        memcpy(out + 12, &a4, 4);
        return 0;
    }
    return inet_pton(AF_INET6, tmp, out) == 1 ? 0 : -1;
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

conn_t *conn_create(server_t *s, int fd, const struct sockaddr *addr, socklen_t addrlen,
                    uint32_t flags) {
    uint8_t key[16];
    addr_key(addr, addrlen, key);
    ip_entry_t *ip = ip_get(s, key, 0);
    int admin = (flags & CF_ADMIN) != 0;
    int trusted = !admin && is_trusted_proxy(s, key);
    if (admin ? s->nadmin >= SERVER_ADMIN_MAX_CONNECTIONS
              : s->nconns >= s->max_conns || (s->cfg.max_per_ip && ip != NULL &&
                                              ip->count >= s->cfg.max_per_ip && !trusted)) {
        s->count.refused++;
        return NULL;
    }
    conn_t *c = xcalloc(1, sizeof(*c));
    c->fd = fd;
    c->flags = flags;
    /* Only a trusted proxy may send a PROXY header, so only its connections look for one: the
     * others go straight to HTTP, and the stage costs them nothing but the check above. */
    if (trusted) {
        c->flags |= CF_TRUSTED;
        c->state = CONN_PROXY;
    }
    c->created = c->last_rx = c->last_msg = s->now;
    c->ip = ip ? ip : ip_get(s, key, 1);
    c->ip->count++;
    bucket_init(&c->msg_bucket, s->cfg.msg_burst, s->now_ms);
    bucket_init(&c->sig_bucket, s->cfg.signal_burst, s->now_ms);
    bucket_init(&c->recv_bucket, s->cfg.recv_burst, s->now_ms);
    peers_slot_alloc(s, c);
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    if (admin)
        s->nadmin++;
    else
        s->nconns++;
    s->count.accepted++;
    if (evlog_enabled(EVLOG_OPEN)) {
        logfmt_field_t f[] = {LOGFMT_U("open", s->nconns)};
        evlog_conn(s, c, EVLOG_OPEN, "connection opened", f, 1);
    }
    return c;
}

void conn_destroy(server_t *s, conn_t *c) {
    peers_forget(s, c);
    peers_slot_free(s, c);
    if (c->fd >= 0) {
        /* Closing the descriptor removes it from the epoll set too; the explicit delete only
         * guards against a duplicated descriptor keeping the registration alive. */
        if (epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL) != 0 && errno != ENOENT &&
            errno != EBADF)
            log_msg(LOG_WARN, "epoll_ctl(DEL, %d): %s", c->fd, strerror(errno));
        close(c->fd);
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->flags & CF_ADMIN)
        s->nadmin--;
    else
        s->nconns--;
    ip_put(s, c->ip);
    buf_dispose(&c->in);
    buf_dispose(&c->frag);
    buf_dispose(&c->out);
    tls_conn_destroy(c->tls);
    xfree(c->offers);
    xfree(c);
}

static void queue_close(server_t *s, conn_t *c) {
    if (!(c->flags & CF_CLOSE_QUEUED)) {
        c->flags |= CF_CLOSE_QUEUED;
        c->next_close = s->close_list;
        s->close_list = c;
    }
}

/* Logs that c closes, once: its peer ID (still held), the reason, and the close code when one
 * was sent. */
static void log_close(server_t *s, const conn_t *c, uint16_t ws_code, const char *why) {
    if (!evlog_enabled(EVLOG_CLOSE) || c->state == CONN_CLOSING || c->state == CONN_DRAIN)
        return;
    logfmt_field_t f[] = {LOGFMT_S("reason", why), LOGFMT_U("seconds", s->now - c->created),
                          LOGFMT_U("code", ws_code)};
    evlog_conn(s, c, EVLOG_CLOSE, "connection closed", f, ws_code ? 3 : 2);
}

/* The peer closed or reset the socket, or sent what deserves no answer: forget it now, free it
 * (closing the socket) at the end of the iteration. why names the cause in the log. */
static void peer_gone(server_t *s, conn_t *c, const char *why) {
    log_close(s, c, 0, why);
    buf_dispose(&c->out);
    c->out_partial = 0;
    peers_forget(s, c);
    c->state = CONN_CLOSING;
    c->flags |= CF_GONE;
    c->deadline = s->now;
    queue_close(s, c);
}

/* ---- output ------------------------------------------------------------------------------- */

static void send_control(server_t *s, conn_t *c, int opcode, const uint8_t *p, size_t n) {
    size_t off = out_begin(c);
    buf_append(&c->out, p, n);
    out_end(s, c, off, opcode);
}

/* Returns the length of the server frame at p (header and payload). Our frames are unmasked
 * and always complete in the buffer. */
static size_t frame_len(const uint8_t *p) {
    size_t len = p[1] & 0x7f, hl = 2;
    if (len == 126) {
        len = (size_t)p[2] << 8 | p[3];
        hl = 4;
    } else if (len == 127) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | p[2 + i];
        hl = 10;
    }
    return hl + len;
}

/* Keeps out_partial true after `done` bytes at the front of c->out have been written. */
static void advance_partial(conn_t *c, size_t done) {
    if (done <= c->out_partial) {
        c->out_partial -= (uint32_t)done;
        return;
    }
    size_t pos = c->out_partial;
    while (pos < done)
        pos += frame_len(c->out.data + pos);
    c->out_partial = (uint32_t)(pos - done);
}

size_t conn_drop_output(conn_t *c) {
    size_t dropped = c->out.len - c->out_partial;
    c->out.len = c->out_partial;
    if (c->out.len == 0)
        buf_dispose(&c->out);
    return dropped;
}

/* Registers the events c waits for: readability unless a parked message holds its input back,
 * writability while output is pending (want_out). The flag follows the kernel's state only when
 * the call succeeded, so a failed call is retried at the next change instead of stalling c. */
static void update_events(server_t *s, conn_t *c, int want_out) {
    int want_in = !(c->flags & CF_PARKED);
    int has_out = !!(c->flags & CF_EPOLLOUT), has_in = !(c->flags & CF_READ_OFF);
    if (c->fd < 0 || (has_out == !!want_out && has_in == want_in))
        return;
    struct epoll_event ev = {.events = (want_in ? EPOLLIN : 0) | (want_out ? EPOLLOUT : 0) |
                                       (c->flags & CF_EDGE ? EPOLLET : 0),
                             .data.ptr = c};
    if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0) {
        log_msg(LOG_WARN, "epoll_ctl(MOD, %d): %s", c->fd, strerror(errno));
        return;
    }
    c->flags = (uint16_t)((c->flags & ~(CF_EPOLLOUT | CF_READ_OFF)) | (want_out ? CF_EPOLLOUT : 0) |
                          (want_in ? 0 : CF_READ_OFF));
}

/* Sends from b until it is empty or the socket is full. Returns the bytes sent, or -1 when the
 * peer is gone (EPIPE, ECONNRESET): nothing more can reach it. */
static ssize_t send_some(int fd, const buf_t *b) {
    size_t done = 0;
    while (done < b->len) {
        ssize_t w = send(fd, b->data + done, b->len - done, MSG_NOSIGNAL);
        if (w > 0) {
            done += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        return -1;
    }
    return (ssize_t)done;
}

/* The wss half of conn_flush: when the previous ciphertext is all sent, the whole pending output
 * is encrypted at once (it has then started going out: out_partial no longer matters) and sent.
 * Output that arrives while the socket is full waits in c->out, so the slow-reader limits see it
 * as on a ws connection. Returns 0, or -1 when c is gone. */
static int flush_tls(server_t *s, conn_t *c) {
    buf_t *ct = tls_conn_out(c->tls);
    for (;;) {
        if (ct->len == 0) {
            if (c->out.len == 0 || !tls_conn_established(c->tls))
                return 0;
            if (tls_conn_write(c->tls, c->out.data, c->out.len) != 0) {
                s->count.tls_errors++;
                peer_gone(s, c, "tls_error");
                return -1;
            }
            c->out_partial = 0;
            buf_dispose(&c->out);
        }
        ssize_t done = send_some(c->fd, ct);
        if (done < 0) {
            peer_gone(s, c, "write_error");
            return -1;
        }
        s->count.bytes_out += (size_t)done;
        buf_consume(ct, (size_t)done);
        if (ct->len > 0)
            return 0; /* the socket is full: EPOLLOUT */
    }
}

int conn_has_output(conn_t *c) {
    return c->out.len > 0 || (c->tls != NULL && tls_conn_out(c->tls)->len > 0);
}

void conn_flush(server_t *s, conn_t *c) {
    if (!conn_has_output(c) || c->state == CONN_DRAIN || (c->flags & CF_GONE))
        return;
    if (c->fd < 0) {
        buf_dispose(&c->out); /* tests and fuzzing: nobody to write to */
        c->out_partial = 0;
    } else if (c->tls != NULL) {
        if (flush_tls(s, c) != 0)
            return;
    } else {
        ssize_t done = send_some(c->fd, &c->out);
        if (done < 0) {
            peer_gone(s, c, "write_error");
            return;
        }
        s->count.bytes_out += (size_t)done;
        advance_partial(c, (size_t)done);
        buf_consume(&c->out, (size_t)done);
    }
    if (c->out.len < s->cfg.max_outbuf)
        c->stuck_since = 0;
    update_events(s, c, conn_has_output(c));
    if (!conn_has_output(c) && c->state == CONN_CLOSING)
        queue_close(s, c);
}

void conn_shutdown_write(server_t *s, conn_t *c) {
    if (c->tls != NULL && c->fd >= 0) {
        /* The close_notify is a courtesy: it goes out if the socket takes it now. */
        tls_conn_close_notify(c->tls);
        buf_t *ct = tls_conn_out(c->tls);
        ssize_t done = send_some(c->fd, ct);
        if (done > 0)
            s->count.bytes_out += (size_t)done;
        buf_dispose(ct);
    }
    if (c->fd >= 0 && shutdown(c->fd, SHUT_WR) != 0 && errno != ENOTCONN)
        log_msg(LOG_DEBUG, "shutdown(%d): %s", c->fd, strerror(errno));
}

void conn_close(server_t *s, conn_t *c, uint16_t ws_code, const char *bye_reason) {
    if (c->state == CONN_CLOSING || c->state == CONN_DRAIN)
        return;
    if (c->state == CONN_WS) {
        /* The goodbye goes out even over a full queue: it is the last thing this peer gets. */
        if (bye_reason != NULL)
            proto_send_bye(s, c, bye_reason);
        if (ws_code != 0 && !(c->flags & CF_CLOSE_SENT)) {
            uint8_t payload[2] = {(uint8_t)(ws_code >> 8), (uint8_t)(ws_code & 0xff)};
            send_control(s, c, WS_OP_CLOSE, payload, 2);
            c->flags |= CF_CLOSE_SENT;
        }
    }
    /* A connection closed by its HTTP answer is logged by that answer's line (log_http). */
    if (c->state == CONN_WS || bye_reason != NULL || c->out.len == 0)
        log_close(s, c, ws_code,
                  bye_reason            ? bye_reason
                  : c->state == CONN_WS ? (ws_code ? "client_close" : "closed")
                                        : "no_request");
    peers_forget(s, c);
    c->state = CONN_CLOSING;
    c->deadline = s->now + SERVER_LINGER_SECONDS;
    c->flags &= (uint16_t) ~(CF_PARKED | CF_ASYNC_DONE);
    buf_dispose(&c->in);
    buf_dispose(&c->frag);
    out_queue_flush(s, c);
    queue_close(s, c);
}

/* ---- HTTP ------------------------------------------------------------------------------------ */

static void http_reply(server_t *s, conn_t *c, const char *status, const char *extra_headers,
                       const char *ctype, const void *body, size_t blen) {
    char head[512];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\nAccess-Control-Allow-Origin: *\r\n"
                     "Connection: close\r\n%s\r\n",
                     status, ctype, blen, extra_headers);
    buf_append(&c->out, head, (size_t)n);
    buf_append(&c->out, body, blen);
    c->out_partial = c->out.len;
    conn_close(s, c, 0, NULL);
}

static void http_error(server_t *s, conn_t *c, int status, const char *why) {
    const char *line = status == 400   ? "400 Bad Request"
                       : status == 403 ? "403 Forbidden"
                       : status == 404 ? "404 Not Found"
                       : status == 405 ? "405 Method Not Allowed"
                       : status == 426 ? "426 Upgrade Required"
                       : status == 429 ? "429 Too Many Requests"
                       : status == 431 ? "431 Request Header Fields Too Large"
                                       : "503 Service Unavailable";
    char body[256];
    int n = snprintf(body, sizeof(body), "%s\n", why);
    http_reply(s, c, line, status == 426 ? "Sec-WebSocket-Version: 13\r\n" : "",
               "text/plain; charset=utf-8", body, (size_t)n);
}

static int origin_allowed(server_t *s, str_t origin) {
    if (s->cfg.origins[0] == '\0')
        return 1;
    return origin.p != NULL && list_has(s->cfg.origins, origin.p, origin.len);
}

/* Answers the monitoring paths: on the admin listener always, on the public one when
 * --public-metrics allows. Returns 0 when path is not one of them (or not served here). */
static int serve_monitoring(server_t *s, conn_t *c, str_t path) {
    if (!(c->flags & CF_ADMIN) && !s->cfg.public_metrics)
        return 0;
    buf_t body = {0};
    if (str_eq(path, "/stats.json") || str_eq(path, "/stats")) {
        stats_write_json(s, &body);
        http_reply(s, c, "200 OK", "", "application/json", body.data, body.len);
    } else if (str_eq(path, "/metrics")) {
        metrics_write_prometheus(s, &body);
        http_reply(s, c, "200 OK", "", METRICS_CONTENT_TYPE, body.data, body.len);
    } else if (str_eq(path, "/dashboard.json")) {
        metrics_write_dashboard(s, &body);
        http_reply(s, c, "200 OK", "", "application/json", body.data, body.len);
    } else if (str_eq(path, "/dashboard")) {
        size_t n = 0;
        const char *page = dashboard_page(&n);
        /* The page loads nothing from elsewhere and runs only its own script: a strict policy
         * costs nothing and keeps any injected markup inert. */
        char csp[DASHBOARD_CSP_BYTES];
        if (dashboard_csp(csp, sizeof(csp)) != 0) /* no script in the page: none may run */
            snprintf(csp, sizeof(csp), "Content-Security-Policy: default-src 'none'\r\n");
        http_reply(s, c, "200 OK", csp, "text/html; charset=utf-8", page, n);
    } else {
        return 0;
    }
    buf_dispose(&body);
    return 1;
}

/* Handles a complete request head. Returns 1 when the connection is now a WebSocket. */
static int http_request(server_t *s, conn_t *c, const http_request_t *req) {
    /* First, whatever the method and path: a request without its one Host (HTTP/1.1) is
     * malformed, and answering it anything else would hide a broken client or proxy. */
    if (http_host_check(req) != 0) {
        http_error(s, c, 400, "exactly one valid Host header is required (RFC 9112 section 3.2)");
        return 0;
    }
    if (!str_eq(req->method, "GET")) {
        http_error(s, c, 405, "only GET is served here");
        return 0;
    }
    if (req->upgrade.p == NULL) {
        s->count.http_requests++;
        if (str_eq(req->path, "/")) {
            buf_t body = {0};
            home_write_html(s, (c->flags & CF_ADMIN) || s->cfg.public_metrics, &body);
            http_reply(s, c, "200 OK", "", "text/html; charset=utf-8", body.data, body.len);
            buf_dispose(&body);
        } else if (str_eq(req->path, "/health")) {
            if (s->cluster != NULL && cluster_state(s->cluster) != CLUSTER_UP)
                http_error(s, c, 503, "redis unreachable: this node cannot take new peers");
            else
                http_reply(s, c, "200 OK", "", "text/plain; charset=utf-8", "ok\n", 3);
        } else if (!serve_monitoring(s, c, req->path)) {
            http_error(s, c, 404,
                       "not found: this is a WebSocket tracker (see /, /health, /stats.json)");
        }
        return 0;
    }
    if (c->flags & CF_ADMIN) {
        http_error(s, c, 403, "the admin listener serves plain HTTP only");
        return 0;
    }
    int status = http_upgrade_check(req);
    if (status != 0) {
        http_error(s, c, status,
                   status == 426 ? "WebSocket version 13 required"
                                 : "invalid WebSocket upgrade request");
        return 0;
    }
    if (!origin_allowed(s, req->origin)) {
        http_error(s, c, 403, "origin not allowed");
        return 0;
    }
    if (c->flags & CF_TRUSTED) {
        /* Without X-Forwarded-For this is the proxy's own connection, not a forwarded client:
         * it was let through the accept-time check (see is_trusted_proxy), so it is held to the
         * cap here, as the address it is counted on. */
        uint8_t client[16];
        const uint8_t *named = xff_client(req->forwarded_for, client) == 0 ? client : c->ip->addr;
        if (move_to_address(s, c, named) != 0) {
            s->count.refused++;
            http_error(s, c, 429, "too many connections from your address");
            return 0;
        }
    }
    char accept[29];
    if (http_ws_accept(req->ws_key.p, req->ws_key.len, accept) != 0) {
        http_error(s, c, 400, "invalid Sec-WebSocket-Key");
        return 0;
    }
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                     accept);
    buf_append(&c->out, head, (size_t)n);
    c->out_partial = c->out.len;
    out_queue_flush(s, c);
    c->state = CONN_WS;
    c->last_msg = s->now;
    return 1;
}

/* ---- the PROXY stage ----------------------------------------------------------------------- */

int conn_watch(server_t *s, conn_t *c) {
    /* While the PROXY stage waits for the rest of a header, the bytes that came are left in the
     * socket (they were only peeked at): a level-triggered registration would report them again
     * at once and spin the loop until the header is whole. Edge-triggered, the loop is woken
     * only when more arrive. Every other state is level-triggered (decision 2). */
    int edge = c->state == CONN_PROXY;
    struct epoll_event ev = {.events = EPOLLIN | (edge ? EPOLLET : 0), .data.ptr = c};
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0)
        return -errno;
    if (edge)
        c->flags |= CF_EDGE;
    return 0;
}

/* Registers c level-triggered again when the PROXY stage made it edge-triggered. Returns 0, or a
 * negative errno when epoll refuses (c could then stall: the caller closes it). */
static int leave_edge(server_t *s, conn_t *c) {
    if (!(c->flags & CF_EDGE))
        return 0;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0) {
        int e = errno;
        log_msg(LOG_WARN, "epoll_ctl(MOD, %d): %s", c->fd, strerror(e));
        return -e;
    }
    c->flags &= (uint16_t)~CF_EDGE;
    return 0;
}

/* Refuses c, now counted on a client address that is at --max-per-ip, as the accept-time check
 * refuses a direct connection: 503 with Retry-After, closed. The answer is plaintext HTTP, as at
 * accept; on a wss listener, where TLS follows the header and no handshake has happened, it is
 * only closed. */
static void refuse_over_cap(server_t *s, conn_t *c) {
    static const char body[] = "too many connections from your address\n";
    s->count.refused++;
    if (c->tls != NULL) {
        peer_gone(s, c, "over_cap");
        return;
    }
    http_reply(s, c, "503 Service Unavailable", "Retry-After: 30\r\n", "text/plain; charset=utf-8",
               body, sizeof(body) - 1);
}

/* Runs the PROXY stage on p[0..n), the first bytes of c (peeked at in its socket, or handed to
 * conn_feed). Returns -EAGAIN while they are the start of a header that has not ended; -EPROTO
 * when c was closed (a malformed header, counted); otherwise the stage is over: c is in
 * CONN_HTTP (or closing, when the client it now counts as is at --max-per-ip) and the return
 * value is the header's length in bytes (0: c sent none and is served as any trusted
 * connection is). */
static int proxy_stage(server_t *s, conn_t *c, const uint8_t *p, size_t n) {
    proxy_header_t h;
    char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];
    int rc = proxy_parse(p, n, &h);
    if (rc == -EAGAIN)
        return rc;
    if (leave_edge(s, c) != 0) {
        peer_gone(s, c, "epoll_error");
        return -EPROTO;
    }
    c->state = CONN_HTTP;
    if (rc == -ENOMSG)
        return 0;
    if (rc < 0) {
        /* The specification asks to abort at once, so a sender that is misconfigured notices. */
        s->count.proxy_malformed++;
        if (log_enabled(LOG_DEBUG))
            log_msg(LOG_DEBUG, "closing a connection from %s: malformed PROXY header (%s)",
                    addr_str(c->ip->addr, a, sizeof(a)), strerror(-rc));
        peer_gone(s, c, "bad_proxy_header");
        return -EPROTO;
    }
    if (h.family == PROXY_FAMILY_KEEP) {
        s->count.proxy_kept++;
        if (!h.local) {
            /* v1 UNKNOWN, or a v2 family we do not take: a client's bytes follow, forwarded, so
             * the proxy no longer speaks (its X-Forwarded-For would be the client's), and the
             * connection stays counted on the proxy's address, now held to the cap as any. */
            c->flags &= (uint16_t)~CF_TRUSTED;
            if (s->cfg.max_per_ip && c->ip->count > s->cfg.max_per_ip)
                refuse_over_cap(s, c);
        }
        /* LOCAL is the proxy's own connection (a health check): it stays trusted. */
        return (int)h.len;
    }
    /* From here on the bytes are the client's: nothing in them speaks for the proxy. */
    s->count.proxy_headers++;
    c->flags &= (uint16_t)~CF_TRUSTED;
    if (log_enabled(LOG_DEBUG))
        log_msg(LOG_DEBUG, "a connection from proxy %s is for client %s port %u (PROXY v%u)",
                addr_str(c->ip->addr, a, sizeof(a)), addr_str(h.addr, b, sizeof(b)), h.port,
                h.version);
    if (move_to_address(s, c, h.addr) != 0)
        refuse_over_cap(s, c);
    return (int)h.len;
}

/* Runs the PROXY stage on c's socket: peeks at up to PROXY_MAX_HEADER_BYTES and, once the
 * verdict is in, consumes exactly the header, so that whatever reads next (HTTP now, a TLS layer
 * later: the header precedes the ClientHello) starts at its own first byte. Nothing is consumed
 * before that, so a connection without a header loses no byte. Returns 0 when c goes on reading
 * as CONN_HTTP, else nonzero (waiting for more bytes, or closing). */
static int proxy_read(server_t *s, conn_t *c) {
    ssize_t r;
    do {
        r = recv(c->fd, s->rbuf, PROXY_MAX_HEADER_BYTES, MSG_PEEK);
    } while (r < 0 && errno == EINTR);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return -EAGAIN;
    if (r <= 0) {
        peer_gone(s, c, r == 0 ? "peer_closed" : "read_error");
        return -EPIPE;
    }
    c->last_rx = s->now;
    int k = proxy_stage(s, c, s->rbuf, (size_t)r);
    if (k < 0)
        return k; /* -EAGAIN: edge-triggered, woken when more arrive (or the handshake timeout) */
    if (k > 0) {
        ssize_t got;
        do {
            got = recv(c->fd, s->rbuf, (size_t)k, 0);
        } while (got < 0 && errno == EINTR);
        if (got != k) {
            /* The bytes were in the socket a moment ago and only this thread reads it. */
            log_msg(LOG_WARN, "reading a %d-byte PROXY header got %zd: %s", k, got,
                    got < 0 ? strerror(errno) : "short read");
            peer_gone(s, c, "read_error");
            return -EIO;
        }
        s->count.bytes_in += (size_t)k;
    }
    return c->state == CONN_HTTP ? 0 : -EPIPE;
}

/* ---- WebSocket frames --------------------------------------------------------------------- */

static void fail(server_t *s, conn_t *c, uint16_t code, const char *why) {
    s->count.protocol_errors++;
    if (evlog_enabled(EVLOG_PROTOCOL)) {
        logfmt_field_t f[] = {LOGFMT_S("error", why), LOGFMT_U("code", code)};
        evlog_conn(s, c, EVLOG_PROTOCOL, "WebSocket protocol violation", f, 2);
    }
    conn_close(s, c, code, "protocol_error");
}

/* Keeps a parked message in c->frag (unused meanwhile: no frame is read while parked). `owned`
 * is a buffer holding exactly the message, handed over; otherwise the bytes are copied. */
static void keep_parked(server_t *s, conn_t *c, const uint8_t *p, size_t n, buf_t *owned) {
    if (c->state != CONN_WS) {
        c->flags &= (uint16_t)~CF_PARKED;
        if (owned)
            buf_dispose(owned);
        return;
    }
    buf_dispose(&c->frag);
    if (owned) {
        c->frag = *owned;
        *owned = (buf_t){0};
    } else {
        buf_append(&c->frag, p, n);
    }
    update_events(s, c, conn_has_output(c));
}

/* Hands a complete message to the protocol layer; owned as for keep_parked. */
static void deliver(server_t *s, conn_t *c, int opcode, const uint8_t *p, size_t n, buf_t *owned) {
    s->count.messages_in++;
    c->last_msg = s->now;
    int utf8_ok = utf8_valid(p, n);
    if (opcode == WS_OP_TEXT && !utf8_ok) {
        s->count.msg_in[MSG_OTHER]++;
        fail(s, c, WS_CLOSE_INVALID_DATA, "text message is not UTF-8");
        return;
    }
    /* Two reads of the vDSO clock a message (tens of nanoseconds) for the handling-time
     * histogram; a parked message's wait is not handling time. */
    struct timespec t0, t1;
    (void)clock_gettime(CLOCK_MONOTONIC, &t0); /* cannot fail: valid clock, valid pointer */
    if (proto_message(s, c, (const char *)p, n, utf8_ok) == -EINPROGRESS)
        keep_parked(s, c, p, n, owned);
    (void)clock_gettime(CLOCK_MONOTONIC, &t1);
    int64_t us = (int64_t)(t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000;
    histo_observe(&s->histos.message_us, us > 0 ? (uint64_t)us : 0);
}

static void on_frame(server_t *s, conn_t *c, const ws_frame_t *f, const uint8_t *p) {
    size_t n = (size_t)f->payload_len;
    switch (f->opcode) {
    case WS_OP_TEXT:
    case WS_OP_BINARY:
        if (c->frag_op != 0) {
            fail(s, c, WS_CLOSE_PROTOCOL, "new message inside a fragmented one");
        } else if (f->fin) {
            deliver(s, c, f->opcode, p, n, NULL);
        } else {
            c->frag_op = f->opcode;
            buf_append(&c->frag, p, n);
        }
        break;
    case WS_OP_CONT:
        if (c->frag_op == 0) {
            fail(s, c, WS_CLOSE_PROTOCOL, "continuation without a message");
        } else if ((uint64_t)c->frag.len + n > s->cfg.max_message) {
            fail(s, c, WS_CLOSE_TOO_BIG, "message too big");
        } else {
            buf_append(&c->frag, p, n);
            if (f->fin) {
                int op = c->frag_op;
                c->frag_op = 0;
                /* Detach the buffer first: the handler may close c, which disposes c->frag. */
                buf_t msg = c->frag;
                c->frag = (buf_t){0};
                deliver(s, c, op, msg.data, msg.len, &msg);
                buf_dispose(&msg);
            }
        }
        break;
    case WS_OP_PING:
        if (out_can_send(s, c))
            send_control(s, c, WS_OP_PONG, p, n);
        break;
    case WS_OP_PONG:
        c->flags &= (uint16_t)~CF_PING_SENT;
        break;
    case WS_OP_CLOSE: {
        uint16_t code = 0;
        int r = ws_close_parse(p, n, &code);
        if (r < 0) {
            fail(s, c, (uint16_t)-r, "bad close frame");
            break;
        }
        /* Echo the peer's code, as RFC 6455 section 5.5.1 asks; an empty close gets 1000. */
        conn_close(s, c, code == 1005 ? WS_CLOSE_NORMAL : code, NULL);
        break;
    }
    }
}

/* Processes frames in p[0..n). Returns the bytes consumed (complete frames). */
static size_t ws_process(server_t *s, conn_t *c, uint8_t *p, size_t n) {
    size_t off = 0;
    while (off < n && c->state == CONN_WS && !(c->flags & CF_PARKED)) {
        ws_frame_t f;
        int r = ws_frame_parse(p + off, n - off, s->cfg.max_frame, &f);
        if (r == 0)
            break;
        if (r < 0) {
            fail(s, c, (uint16_t)-r, "bad frame");
            return n;
        }
        if (f.opcode == WS_OP_TEXT || f.opcode == WS_OP_BINARY || f.opcode == WS_OP_CONT) {
            uint64_t total = (f.opcode == WS_OP_CONT ? c->frag.len : 0) + f.payload_len;
            if (total > s->cfg.max_message) {
                fail(s, c, WS_CLOSE_TOO_BIG, "message too big");
                return n;
            }
        }
        if ((uint64_t)(n - off - f.header_len) < f.payload_len)
            break; /* wait for the rest of the frame */
        uint8_t *payload = p + off + f.header_len;
        ws_unmask(payload, (size_t)f.payload_len, f.mask, 0);
        off += f.header_len + (size_t)f.payload_len;
        on_frame(s, c, &f, payload);
    }
    return off;
}

/* Logs an answered HTTP request: its method and path (NULL before they were parsed) and the
 * status, read back from the answer just queued (nothing else is queued before it). */
static void log_http(server_t *s, conn_t *c, const http_request_t *req) {
    if (!evlog_enabled(EVLOG_HTTP))
        return;
    unsigned status = 0;
    const uint8_t *o = c->out.data;
    if (c->out.len >= 12 && memcmp(o, "HTTP/1.1 ", 9) == 0)
        status =
            (unsigned)(o[9] - '0') * 100 + (unsigned)(o[10] - '0') * 10 + (unsigned)(o[11] - '0');
    logfmt_field_t f[] = {
        LOGFMT_B("method", req ? req->method.p : "-", req ? req->method.len : 1),
        LOGFMT_B("path", req ? req->path.p : "-", req ? req->path.len : 1),
        LOGFMT_U("status", status),
    };
    evlog_conn(s, c, EVLOG_HTTP, "HTTP request", f, 3);
}

/* Processes p[0..n) in the current state. Returns the bytes consumed. */
static size_t process(server_t *s, conn_t *c, uint8_t *p, size_t n) {
    size_t off = 0;
    if (c->state == CONN_PROXY) {
        int k = proxy_stage(s, c, p, n);
        if (k == -EAGAIN)
            return 0;
        if (k < 0 || c->state != CONN_HTTP)
            return n;
        off = (size_t)k;
    }
    if (c->state == CONN_HTTP) {
        http_request_t req;
        int r = http_request_parse((const char *)p + off, n - off, HTTP_MAX_HEAD_BYTES, &req);
        if (r == -EAGAIN)
            return off;
        if (r == -EMSGSIZE) {
            http_error(s, c, 431, "request head too large");
            log_http(s, c, NULL);
            return n;
        }
        if (r != 0 && proxy_has_signature(p + off, n - off)) {
            /* A PROXY header where none is taken: from an address not in --trusted-proxy, or a
             * second one (a client behind the load balancer posing as it). Not HTTP, so no
             * HTTP answer. */
            s->count.proxy_untrusted++;
            if (log_enabled(LOG_DEBUG)) {
                char a[INET6_ADDRSTRLEN];
                log_msg(LOG_DEBUG, "closing a connection from %s: PROXY header not accepted",
                        addr_str(c->ip->addr, a, sizeof(a)));
            }
            peer_gone(s, c, "untrusted_proxy_header");
            return n;
        }
        if (r != 0) {
            http_error(s, c, 400, "malformed HTTP request");
            log_http(s, c, NULL);
            return n;
        }
        off += req.head_len;
        int upgraded = http_request(s, c, &req);
        log_http(s, c, &req);
        if (!upgraded)
            return n;
    }
    if (c->state == CONN_WS)
        off += ws_process(s, c, p + off, n - off);
    else
        off = n; /* closing: whatever else arrives is discarded */
    return off;
}

/* Returns 1 when c is in a state whose unprocessed input is kept for later: the start of a
 * PROXY header (at most PROXY_MAX_HEADER_BYTES: the parser refuses a longer one), of a request
 * head, or of a frame. */
static int keeps_input(const conn_t *c) {
    return c->state == CONN_PROXY || c->state == CONN_HTTP || c->state == CONN_WS;
}

void conn_feed(server_t *s, conn_t *c, uint8_t *data, size_t len) {
    if (c->state == CONN_CLOSING || c->state == CONN_DRAIN || len == 0)
        return;
    c->last_rx = s->now;
    s->count.bytes_in += len;
    if (c->flags & CF_PARKED) {
        /* A message waits for its answer: later ones wait behind it, in order. Reading is off
         * meanwhile, so this holds at most what one read brought. */
        buf_append(&c->in, data, len);
        return;
    }
    if (c->in.len == 0) {
        size_t used = process(s, c, data, len);
        if (used < len && keeps_input(c))
            buf_append(&c->in, data + used, len - used);
    } else {
        buf_append(&c->in, data, len);
        /* Process from a detached buffer: handlers may close c, which disposes c->in. */
        buf_t in = c->in;
        c->in = (buf_t){0};
        size_t used = process(s, c, in.data, in.len);
        if (used < in.len && keeps_input(c))
            buf_append(&c->in, in.data + used, in.len - used);
        buf_dispose(&in);
    }
    if (c->state == CONN_HTTP && c->in.len > HTTP_MAX_HEAD_BYTES)
        http_error(s, c, 431, "request head too large");
}

void conn_resume(server_t *s, conn_t *c) {
    if (!(c->flags & CF_PARKED) || c->state != CONN_WS)
        return;
    buf_t msg = c->frag;
    c->frag = (buf_t){0};
    if (proto_resume(s, c, (const char *)msg.data, msg.len) == -EINPROGRESS) {
        keep_parked(s, c, msg.data, msg.len, &msg);
        return;
    }
    buf_dispose(&msg);
    if (c->state != CONN_WS)
        return;
    update_events(s, c, conn_has_output(c));
    /* Handle what arrived meanwhile, as if it arrived now. */
    if (c->in.len > 0) {
        buf_t in = c->in;
        c->in = (buf_t){0};
        size_t used = ws_process(s, c, in.data, in.len);
        if (used < in.len && c->state == CONN_WS)
            buf_append(&c->in, in.data + used, in.len - used);
        buf_dispose(&in);
    }
    /* Input OpenSSL read before the message parked never wakes epoll: read it now. */
    if (c->tls != NULL && c->state == CONN_WS && !(c->flags & CF_PARKED) &&
        tls_conn_has_pending(c->tls))
        conn_on_readable(s, c);
}

/* The wss read path: the handshake first (under --handshake-timeout, as the HTTP upgrade is),
 * then decrypted input fed as on a ws connection, until OpenSSL holds nothing more that epoll
 * would not report. */
static void tls_readable(server_t *s, conn_t *c) {
    tls_conn_t *tc = c->tls;
    if (!tls_conn_established(tc)) {
        int r = tls_conn_handshake(tc);
        if (tls_conn_out(tc)->len > 0)
            out_queue_flush(s, c);
        if (r == -EAGAIN)
            return;
        if (r == -ECONNRESET) {
            peer_gone(s, c, "peer_closed");
            return;
        }
        if (r < 0) {
            /* Garbage, plain HTTP or a broken record: the alert OpenSSL wrote (if any) goes
             * out, then the connection closes like any other. */
            s->count.tls_errors++;
            if (log_enabled(LOG_DEBUG)) {
                char a[INET6_ADDRSTRLEN];
                log_msg(LOG_DEBUG, "TLS handshake with %s failed: not TLS 1.2/1.3",
                        addr_str(c->ip->addr, a, sizeof(a)));
            }
            conn_close(s, c, 0, NULL);
            return;
        }
        if (tls_conn_resumed(tc))
            s->count.tls_resumed++;
        else
            s->count.tls_full++;
        if (tls_conn_handed_over(tc))
            s->count.tls_handed_over++;
    }
    size_t got = 0;
    while (c->state == CONN_HTTP || c->state == CONN_WS) {
        long n = tls_conn_read(tc, s->rbuf, sizeof(s->rbuf));
        if (n > 0) {
            conn_feed(s, c, s->rbuf, (size_t)n);
            got += (size_t)n;
            /* As on ws, one read's worth per event, so one busy peer cannot starve the others;
             * what is still in the socket wakes epoll again, what OpenSSL holds does not. */
            if (got >= SERVER_READ_BYTES && !tls_conn_has_pending(tc))
                break;
            continue;
        }
        if (n == -EAGAIN)
            break;
        if (n == -EPROTO)
            s->count.tls_errors++;
        peer_gone(s, c, n == -EPROTO ? "tls_error" : "peer_closed");
        return;
    }
    if (tls_conn_out(tc)->len > 0)
        out_queue_flush(s, c);
}

void conn_on_readable(server_t *s, conn_t *c) {
    /* The PROXY stage reads the raw socket (a header precedes the TLS handshake), then the
     * connection goes on as CONN_HTTP, over TLS on a wss listener. */
    if (c->state == CONN_PROXY && proxy_read(s, c) != 0)
        return;
    if (c->tls != NULL && (c->state == CONN_HTTP || c->state == CONN_WS)) {
        tls_readable(s, c);
        return;
    }
    ssize_t r;
    do {
        r = read(c->fd, s->rbuf, sizeof(s->rbuf));
    } while (r < 0 && errno == EINTR);
    if (r > 0) {
        if (c->state == CONN_DRAIN)
            return; /* discard until EOF */
        conn_feed(s, c, s->rbuf, (size_t)r);
        return;
    }
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    peer_gone(s, c, r == 0 ? "peer_closed" : "read_error");
}
