/* server.c: the event loop (epoll, level-triggered), the listener, once-per-second housekeeping,
 * and the end-of-iteration flush. Connections are never freed inside their own callbacks: they
 * are queued on close_list and freed in server_end_iteration (the Redis "close ASAP" pattern). */
#include "server/server.h"
#include "server/tls.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/log.h"
#include "hub/ctx.h"
#include "hub/evlog.h"
#include "hub/peers.h"
#include "proto/proto.h"
#include "proto/route.h"
#include "server/admin.h"
#include "server/conn.h"
#include "server/home.h"
#include "server/metrics.h"
#include "server/notify.h"
#include "server/shed.h"
#include "ws/frame.h"

/* Descriptors kept back from the connection cap for the listeners, epoll, the signalfd, SQLite
 * (two connections, WAL and shared-memory files), logs, and the admin listener's connections. */
#define SERVER_RESERVED_FDS (32 + SERVER_ADMIN_MAX_CONNECTIONS)
/* Events handled per epoll_wait call. */
#define SERVER_MAX_EVENTS 256
/* Cluster mode: client events handled between two reads of the other nodes' records. */
#define SERVER_EVENTS_PER_DRAIN 32
/* Connections accepted per readiness event of the listener, so a connection flood cannot starve
 * the peers already connected. */
#define SERVER_ACCEPTS_PER_EVENT 64
/* Seconds the listener sleeps after accept() fails for lack of descriptors, instead of spinning
 * on a listener that stays readable. */
#define SERVER_ACCEPT_BACKOFF_SECONDS 1
/* Milliseconds the shutdown waits for goodbyes and close frames to be written. */
#define SERVER_SHUTDOWN_GRACE_MS 1000
/* Markers in epoll data for the descriptors that are not connections (the cluster's own are
 * recognised by cluster_owns, listeners by their address in s->listeners). */
static char signal_marker, store_marker;

static uint64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void server_update_clock(server_t *s) {
    uint64_t ns = mono_ns();
    s->iter_start_ns = ns; /* the start of the iteration's busy time (metrics) */
    uint64_t ms = (ns - s->start_ns) / 1000000ull;
    s->now_ms = (uint32_t)ms;
    /* Seconds start at 1 so that 0 can mean "never" in per-connection timestamps. */
    s->now = (uint32_t)(ms / 1000) + 1;
    s->wall = (int64_t)time(NULL);
}

/* The signals the loop handles, read through a signalfd so that they arrive as loop events:
 * SIGINT and SIGTERM stop the server, SIGHUP reloads its configuration. */
static void loop_signals(sigset_t *mask) {
    sigemptyset(mask);
    sigaddset(mask, SIGINT);
    sigaddset(mask, SIGTERM);
    sigaddset(mask, SIGHUP);
}

/* Returns the listener whose epoll data is p, or NULL. */
static server_listener_t *listener_of(server_t *s, void *p) {
    uintptr_t a = (uintptr_t)p, lo = (uintptr_t)&s->listeners[0],
              hi = (uintptr_t)&s->listeners[CONFIG_MAX_LISTENERS];
    return a >= lo && a < hi ? (server_listener_t *)p : NULL;
}

static uint32_t fd_cap(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 1024;
    /* Raise the soft limit as far as the hard limit allows. */
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit want = {rl.rlim_max, rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &want) == 0)
            rl = want;
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 10000000)
        return 10000000;
    return rl.rlim_cur > SERVER_RESERVED_FDS * 2 ? (uint32_t)(rl.rlim_cur - SERVER_RESERVED_FDS)
                                                 : (uint32_t)(rl.rlim_cur / 2);
}

/* The database has finished loads: connections waiting for it handle their message again. */
static void on_store_ready(void *arg) {
    server_t *s = arg;
    for (uint32_t i = 0; i < s->store_wait.n; i++)
        ref_list_push(&s->resume, s->store_wait.v[i]);
    s->store_wait.n = 0;
}

static void on_cluster_state(void *arg, int state) {
    server_t *s = arg;
    if (state == CLUSTER_UP) {
        /* (Re)joined: make sure Redis says our IDs are ours, tell every node our state, and
         * ask for theirs. */
        log_msg(LOG_INFO, "cluster: connected to Redis; registering %llu peers",
                (unsigned long long)s->local_peers);
        peers_reassert(s);
        peers_snapshot(s, 0);
        wire_rec_t hello = {.type = WIRE_HELLO};
        cluster_publish(s->cluster, &hello);
    } else {
        /* Other nodes cannot be reached: answer from this node's own peers until Redis is
         * back, then rebuild the view from their snapshots. */
        peers_forget_remote(s);
        s->cluster_nodes = 1;
    }
}

static void on_cluster_nodes(void *arg, const uint64_t *nodes, size_t n, uint64_t connections,
                             uint64_t identified) {
    server_t *s = arg;
    (void)identified;
    s->cluster_nodes = (uint32_t)n;
    s->cluster_conns = connections;
    for (size_t i = 0; i < n; i++) {
        int idx = peers_node_index(s, nodes[i]);
        if (idx > 0)
            s->nodes[idx].seen = s->now;
    }
    /* A node missing from the live list is dead: its peers leave every answer and count. */
    for (uint32_t i = 1; i < HUB_MAX_NODES; i++) {
        if (s->nodes[i].id != 0 && s->nodes[i].seen != s->now) {
            log_msg(LOG_WARN, "cluster: node %016llx is gone; forgetting its peers",
                    (unsigned long long)s->nodes[i].id);
            peers_forget_node(s, i, 0);
        }
    }
}

/* Opens the infohash store and, in cluster mode, the Redis client. */
static int open_backends(server_t *s, char *err, size_t errlen) {
    if (s->cfg.cluster[0] == '\0') {
        s->store = store_open_sqlite(s->cfg.db_path, &s->key, err, errlen);
    } else {
        cluster_addr_t addr;
        if (cluster_addr_parse(s->cfg.cluster, &addr, err, errlen) != 0)
            return -EINVAL;
        cluster_callbacks_t cb = {s, route_on_record, peers_on_claim, on_cluster_state,
                                  on_cluster_nodes};
        s->cluster = cluster_create(&addr, s->epfd, s->cfg.node_timeout * 1000u, &cb, err, errlen);
        if (s->cluster == NULL)
            return -EINVAL;
        s->store = cluster_store_create(s->cluster, &s->key);
        s->cluster_nodes = 1;
    }
    if (s->store == NULL)
        return -EINVAL;
    store_set_ready(s->store, on_store_ready, s);
    int fd = store_fd(s->store);
    if (fd >= 0) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &store_marker};
        if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            snprintf(err, errlen, "epoll_ctl(ADD) for the database: %s", strerror(errno));
            return -errno;
        }
    }
    return 0;
}

server_t *server_create(const config_t *cfg, char *err, size_t errlen) {
    /* Block the loop's signals before the database writer thread starts, so that every thread
     * inherits the mask and the signals wait for the loop's signalfd (a SIGHUP during start-up
     * is then a reload once the loop runs, not the default action, which would kill us). */
    sigset_t mask;
    loop_signals(&mask);
    pthread_sigmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    server_t *s = xcalloc(1, sizeof(*s));
    s->cfg = *cfg;
    for (uint32_t i = 0; i < CONFIG_MAX_LISTENERS; i++)
        s->listeners[i].fd = -1;
    s->afd = -1;
    s->epfd = -1;
    s->sfd = -1;
    s->start_ns = mono_ns();
    server_update_clock(s);
    metrics_init(s);
    s->next_tick = s->now + 1;
    s->next_flush_db = s->now + cfg->db_flush;
    uint64_t seed[3];
    if (rng_secure(seed, sizeof(seed)) != 0) {
        snprintf(err, errlen, "cannot read random bytes from the kernel: %s", strerror(errno));
        xfree(s);
        return NULL;
    }
    s->key.k0 = seed[0];
    s->key.k1 = seed[1];
    rng_seed(&s->rng, seed[2]);
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (s->epfd < 0) {
        snprintf(err, errlen, "epoll_create1: %s", strerror(errno));
        xfree(s);
        return NULL;
    }
    s->swarms = swarm_table_create(&s->key);
    s->registry = registry_create(&s->key);
    hmap_init(&s->ips, 8);
    if (open_backends(s, err, errlen) != 0) {
        server_destroy(s);
        return NULL;
    }
    s->fd_cap = fd_cap();
    server_apply_caps(s);
    evlog_init(s);
    return s;
}

void server_apply_caps(server_t *s) {
    const config_t *cfg = &s->cfg;
    uint32_t cap = s->fd_cap;
    s->max_conns = cfg->max_connections && cfg->max_connections < cap ? cfg->max_connections : cap;
    s->shed_high = cfg->shed_high ? cfg->shed_high : s->max_conns / 10 * 9;
    s->shed_low = cfg->shed_low ? cfg->shed_low : s->max_conns / 10 * 8;
    if (s->shed_low > s->shed_high)
        s->shed_low = s->shed_high;
}

int server_load_tls(server_t *s, char *err, size_t errlen) {
    if (!config_has_tls(&s->cfg) || s->tls != NULL)
        return 0;
    s->tls = tls_ctx_create(s->cfg.tls_cert, s->cfg.tls_key, err, errlen);
    return s->tls != NULL ? 0 : -EINVAL;
}

/* Opens one listener (bound, listening, in the epoll set). Returns 0 or -errno with a reason. */
static int listen_one(server_t *s, const config_listener_t *l, server_listener_t *out, char *err,
                      size_t errlen) {
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char port[16], url[CONFIG_HOST_BYTES + 32];
    snprintf(port, sizeof(port), "%u", l->port);
    config_listen_format(l, url, sizeof(url));
    int rc = getaddrinfo(l->host[0] ? l->host : NULL, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve %s: %s", url, gai_strerror(rc));
        return -EINVAL;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        (s->cfg.reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0) {
        int e = errno;
        snprintf(err, errlen, "cannot listen on %s: %s", url, strerror(e));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -e;
    }
    freeaddrinfo(res);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = out};
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        int e = errno;
        snprintf(err, errlen, "cannot watch the listening socket of %s: %s", url, strerror(e));
        close(fd);
        return -e;
    }
    out->fd = fd;
    out->tls = l->scheme == CONFIG_WSS;
    return 0;
}

int server_listen(server_t *s, char *err, size_t errlen) {
    for (uint32_t i = 0; i < s->cfg.nlisteners; i++) {
        int rc = listen_one(s, &s->cfg.listeners[i], &s->listeners[i], err, errlen);
        if (rc != 0)
            return rc; /* server_destroy closes the ones already open */
        s->nlisteners = i + 1;
    }
    return admin_listen(s, err, errlen);
}

void server_log_start(const server_t *s) {
    struct rlimit rl = {0, 0};
    getrlimit(RLIMIT_NOFILE, &rl);
    for (uint32_t i = 0; i < s->nlisteners; i++) {
        char url[CONFIG_HOST_BYTES + 32];
        config_listen_format(&s->cfg.listeners[i], url, sizeof(url));
        log_msg(LOG_INFO, "listening on %s", url);
    }
    if (s->tls != NULL) {
        char desc[512];
        tls_ctx_describe(s->tls, desc, sizeof(desc));
        log_msg(LOG_INFO, "TLS certificate: %s (reloaded on SIGHUP)", desc);
    }
    home_log_start(s);
    log_msg(LOG_INFO,
            "listening on %u socket%s%s; %s %s; fd limit %llu, connection cap %u "
            "(shedding above %u down to %u), %u per address",
            s->nlisteners, s->nlisteners == 1 ? "" : "s",
            s->cfg.reuse_port ? " (shared: SO_REUSEPORT)" : "", s->cluster ? "cluster" : "database",
            s->cluster ? s->cfg.cluster : s->cfg.db_path, (unsigned long long)rl.rlim_cur,
            s->max_conns, s->shed_high, s->shed_low, s->cfg.max_per_ip);
    if (s->cluster != NULL)
        log_msg(LOG_INFO,
                "cluster node %016llx (node timeout %u s); infohash records live in Redis, "
                "so --db %s is not used",
                (unsigned long long)cluster_node_id(s->cluster), s->cfg.node_timeout,
                s->cfg.db_path);
    if (s->cfg.config_file[0] != '\0')
        log_msg(LOG_INFO, "configuration from %s and the command line; SIGHUP reloads it",
                s->cfg.config_file);
    if (s->acl != NULL)
        log_msg(LOG_INFO, "%s %s: %zu infohashes",
                acl_mode(s->acl) == ACL_ALLOW ? "allowlist" : "denylist",
                acl_mode(s->acl) == ACL_ALLOW ? s->cfg.allowlist : s->cfg.denylist,
                acl_count(s->acl));
}

void server_stop(server_t *s) {
    s->stopping = 1;
}

static void mark_dead(server_t *s, conn_t *c);

/* Sets the events of every listener (EPOLLIN, or none while accepting is paused). Returns 0, or
 * -errno when one of them could not be changed (the others are). */
static int listeners_watch(server_t *s, uint32_t events) {
    int rc = 0;
    for (uint32_t i = 0; i < s->nlisteners; i++) {
        struct epoll_event ev = {.events = events, .data.ptr = &s->listeners[i]};
        if (s->listeners[i].fd >= 0 &&
            epoll_ctl(s->epfd, EPOLL_CTL_MOD, s->listeners[i].fd, &ev) != 0)
            rc = -errno;
    }
    return rc;
}

static void pause_accept(server_t *s) {
    int rc = listeners_watch(s, 0);
    if (rc != 0) {
        log_msg(LOG_WARN, "cannot pause the listeners: %s", strerror(-rc));
        return;
    }
    s->accept_paused_until = s->now + SERVER_ACCEPT_BACKOFF_SECONDS;
    log_msg(LOG_WARN, "out of file descriptors: not accepting for %d s (%u connections)",
            SERVER_ACCEPT_BACKOFF_SECONDS, s->nconns);
}

static void on_accept(server_t *s, server_listener_t *l) {
    static const char refusal[] = "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 30\r\n"
                                  "Content-Length: 20\r\nConnection: close\r\n\r\n"
                                  "server at capacity\r\n";
    for (int i = 0; i < SERVER_ACCEPTS_PER_EVENT; i++) {
        struct sockaddr_storage addr;
        socklen_t len = sizeof(addr);
        int fd = accept4(l->fd, (struct sockaddr *)&addr, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                pause_accept(s);
            return; /* EAGAIN, or a transient error such as ECONNABORTED */
        }
        conn_t *c = conn_create(s, fd, (struct sockaddr *)&addr, len, 0);
        if (c == NULL) {
            ssize_t w = send(fd, refusal, sizeof(refusal) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
            (void)w;
            close(fd);
            continue;
        }
        int one = 1;
        /* Without TCP_NODELAY small frames wait for acknowledgements; the connection still
         * works, so a failure is not fatal. */
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (l->tls && (c->tls = tls_conn_create(s->tls, fd)) == NULL) {
            log_msg(LOG_WARN, "cannot create the TLS state of a new connection");
            c->flags |= CF_GONE;
            mark_dead(s, c);
            continue;
        }
        int rc = conn_watch(s, c);
        if (rc != 0) {
            log_msg(LOG_WARN, "epoll_ctl(ADD) for a new connection: %s", strerror(-rc));
            c->flags |= CF_GONE;
            mark_dead(s, c);
        }
    }
}

static void mark_dead(server_t *s, conn_t *c) {
    c->flags |= CF_GONE;
    if (c->state != CONN_CLOSING && c->state != CONN_DRAIN)
        conn_close(s, c, 0, NULL);
    c->state = CONN_CLOSING;
    if (!(c->flags & CF_CLOSE_QUEUED)) {
        c->flags |= CF_CLOSE_QUEUED;
        c->next_close = s->close_list;
        s->close_list = c;
    }
}

void server_tick(server_t *s) {
    /* Timestamps are whole seconds and this runs once a second, so every timeout compares with
     * ">": a limit of T seconds fires after T to T+1 seconds, never before T. */
    const config_t *cfg = &s->cfg;
    for (conn_t *c = s->conns; c; c = c->next) {
        switch (c->state) {
        case CONN_PROXY: /* a PROXY header trickled or cut short is held to the same limit */
        case CONN_HTTP:
            if (s->now - c->created > cfg->handshake_timeout) {
                s->count.timeouts++;
                s->count.timeouts_by[TO_HANDSHAKE]++;
                mark_dead(s, c);
            }
            break;
        case CONN_WS:
            if (c->stuck_since && s->now - c->stuck_since > cfg->stuck_timeout) {
                /* It has not read what we sent for too long: drop what is queued (keeping a
                 * partly written frame whole) so the goodbye can follow, and close. */
                s->count.timeouts++;
                s->count.timeouts_by[TO_STUCK]++;
                conn_drop_output(c);
                conn_close(s, c, WS_CLOSE_POLICY, "too_slow");
            } else if (c->flags & CF_PING_SENT) {
                if ((int32_t)(s->now - c->deadline) > 0) {
                    s->count.timeouts++;
                    s->count.timeouts_by[TO_PING]++;
                    conn_close(s, c, WS_CLOSE_GOING_AWAY, "timeout");
                }
            } else if (cfg->idle_timeout && s->now - c->last_msg > cfg->idle_timeout) {
                s->count.timeouts++;
                s->count.timeouts_by[TO_IDLE]++;
                conn_close(s, c, WS_CLOSE_NORMAL, "idle");
            } else if (s->now - c->last_rx > cfg->ping_interval) {
                size_t off = out_begin(c);
                out_end(s, c, off, WS_OP_PING);
                c->flags |= CF_PING_SENT;
                c->deadline = s->now + cfg->ping_timeout;
            }
            break;
        case CONN_CLOSING:
        case CONN_DRAIN:
            if ((int32_t)(s->now - c->deadline) >= 0)
                mark_dead(s, c);
            break;
        }
    }
    /* Visit about an eighth of the swarm buckets per second: a full sweep every 8 s or so,
     * never a long pause. */
    swarm_expire(s->swarms, s->now, cfg->peer_timeout, 0, peers_expired, s);
    if (s->nconns > s->shed_high)
        shed_run(s);
    if ((int32_t)(s->now - s->next_flush_db) >= 0) {
        store_flush(s->store, s->wall);
        s->next_flush_db = s->now + cfg->db_flush;
    }
    if (s->accept_paused_until && (int32_t)(s->now - s->accept_paused_until) >= 0) {
        int rc = listeners_watch(s, EPOLLIN);
        if (rc == 0)
            s->accept_paused_until = 0;
        else
            log_msg(LOG_WARN, "cannot resume the listeners: %s", strerror(-rc));
    }
    if (s->cluster != NULL)
        cluster_tick(s->cluster, (uint64_t)s->now_ms, s->nconns, s->local_peers);
    evlog_tick(s);
}

static void close_kicked(server_t *s, conn_t *c) {
    conn_close(s, c, WS_CLOSE_NORMAL, "replaced");
}

void server_settle(server_t *s) {
    /* Parked messages whose answer arrived are handled first, so their answers go out in this
     * iteration's writes. A resumed message may park again (the list then grows). */
    for (uint32_t i = 0; i < s->resume.n; i++) {
        conn_t *c = peers_resolve(s, s->resume.v[i].slot, s->resume.v[i].gen);
        if (c != NULL)
            conn_resume(s, c);
    }
    s->resume.n = 0;
    peers_run_kicks(s, close_kicked);
    /* Records for other nodes go before the writes to clients: a client told "done" by this
     * node then finds the change on every node. */
    if (s->cluster != NULL)
        cluster_flush(s->cluster);
}

void server_end_iteration(server_t *s) {
    server_settle(s);
    while (s->flush_list) {
        conn_t *c = s->flush_list;
        s->flush_list = c->next_flush;
        c->flags &= (uint16_t)~CF_FLUSH_QUEUED;
        conn_flush(s, c);
    }
    while (s->close_list) {
        conn_t *c = s->close_list;
        s->close_list = c->next_close;
        c->flags &= (uint16_t)~CF_CLOSE_QUEUED;
        if ((c->flags & CF_GONE) || c->fd < 0 || c->state == CONN_DRAIN) {
            conn_destroy(s, c);
        } else if (c->state == CONN_CLOSING && !conn_has_output(c)) {
            /* Everything is written: half-close, then read until the peer's EOF (or the
             * linger deadline), so unread input cannot turn our last frames into a reset. */
            conn_shutdown_write(s, c);
            c->state = CONN_DRAIN;
        }
        /* Otherwise output is still pending; conn_flush requeues it once written. */
    }
}

/* Logs a failed notification to the service manager (systemd, Type=notify). A failure is not
 * fatal: the server serves either way, and systemd's own timeout reports a missing READY=1. */
static void notified(int rc, const char *what) {
    if (rc != 0)
        log_msg(LOG_WARN, "cannot tell the service manager %s: %s", what, strerror(-rc));
}

/* Reads every pending signal: a stop signal stops the loop; SIGHUP asks for a reload, done at the
 * end of the iteration (several SIGHUPs before then make one reload). */
static void on_signals(server_t *s) {
    struct signalfd_siginfo si;
    for (;;) {
        ssize_t r = read(s->sfd, &si, sizeof(si));
        if (r != (ssize_t)sizeof(si)) {
            if (r < 0 && errno == EINTR)
                continue;
            return; /* EAGAIN: none left */
        }
        if (si.ssi_signo == SIGHUP)
            s->reload_pending = 1;
        else
            s->stopping = 1;
    }
}

static void handle_events(server_t *s, int timeout_ms) {
    struct epoll_event evs[SERVER_MAX_EVENTS];
    int n = epoll_wait(s->epfd, evs, SERVER_MAX_EVENTS, timeout_ms);
    server_update_clock(s);
    for (int i = 0; i < n; i++) {
        if (s->cluster != NULL && i > 0 && i % SERVER_EVENTS_PER_DRAIN == 0)
            cluster_drain(s->cluster);
        void *p = evs[i].data.ptr;
        server_listener_t *l = listener_of(s, p);
        if (l != NULL) {
            on_accept(s, l);
        } else if (p == &s->afd) {
            admin_accept(s);
        } else if (p == &signal_marker) {
            on_signals(s);
        } else if (p == &store_marker) {
            store_poll(s->store);
        } else if (s->cluster != NULL && cluster_owns(s->cluster, p)) {
            cluster_on_event(s->cluster, p, evs[i].events);
        } else {
            conn_t *c = p;
            if (evs[i].events & EPOLLOUT)
                conn_flush(s, c);
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                conn_on_readable(s, c);
        }
    }
}

int server_run(server_t *s) {
    sigset_t mask;
    loop_signals(&mask);
    int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd < 0 ||
        epoll_ctl(s->epfd, EPOLL_CTL_ADD, sfd,
                  &(struct epoll_event){.events = EPOLLIN, .data.ptr = &signal_marker}) != 0) {
        /* SIGINT/SIGTERM are blocked: without the signalfd nothing would stop the loop. */
        log_msg(LOG_ERROR, "cannot watch for stop signals: %s", strerror(errno));
        if (sfd >= 0)
            close(sfd);
        return -errno;
    }
    s->sfd = sfd;
    notified(notify_ready(), "ready");
    while (!s->stopping) {
        uint32_t until_tick = (uint32_t)(s->next_tick * 1000u) - s->now_ms;
        int timeout = (int32_t)until_tick <= 0 ? 0 : (int)(until_tick > 1000 ? 1000 : until_tick);
        handle_events(s, timeout);
        if ((int32_t)(s->now - s->next_tick) >= 0) {
            server_tick(s);
            s->next_tick = s->now + 1;
        }
        if (s->reload_pending && !s->stopping) {
            s->reload_pending = 0;
            notified(notify_reloading(), "reloading");
            server_reload(s);
            notified(notify_ready(), "ready");
        }
        server_end_iteration(s);
        /* One clock read per iteration; the start was read when epoll_wait returned. */
        histo_observe(&s->histos.iteration_us, (mono_ns() - s->iter_start_ns) / 1000);
    }
    notified(notify_stopping(), "stopping");
    log_msg(LOG_INFO, "shutting down: saying bye to %u connections", s->nconns);
    for (uint32_t i = 0; i < s->nlisteners; i++) {
        if (s->listeners[i].fd >= 0)
            close(s->listeners[i].fd);
        s->listeners[i].fd = -1;
    }
    admin_close(s);
    for (conn_t *c = s->conns; c; c = c->next)
        conn_close(s, c, WS_CLOSE_GOING_AWAY, "shutdown");
    /* In cluster mode the releases of this node's IDs and its departure go to Redis too, so
     * the other nodes forget its peers at once. */
    if (s->cluster != NULL)
        cluster_leave(s->cluster);
    server_end_iteration(s);
    uint64_t until = mono_ns() + SERVER_SHUTDOWN_GRACE_MS * 1000000ull;
    while ((s->conns || (s->cluster != NULL && cluster_busy(s->cluster))) && mono_ns() < until) {
        handle_events(s, 50);
        server_end_iteration(s);
    }
    close(sfd);
    s->sfd = -1;
    return 0;
}

static void free_ip(hmap_node_t *n, void *arg) {
    (void)arg;
    xfree(n);
}

void server_destroy(server_t *s) {
    if (s == NULL)
        return;
    while (s->conns)
        conn_destroy(s, s->conns);
    s->flush_list = s->close_list = NULL;
    store_close(s->store);
    cluster_destroy(s->cluster);
    acl_destroy(s->acl);
    swarm_table_destroy(s->swarms);
    registry_destroy(s->registry);
    peers_dispose(s);
    buf_dispose(&s->scratch);
    hmap_each(&s->ips, free_ip, NULL);
    hmap_dispose(&s->ips);
    for (uint32_t i = 0; i < CONFIG_MAX_LISTENERS; i++)
        if (s->listeners[i].fd >= 0)
            close(s->listeners[i].fd);
    admin_close(s);
    /* After the connections: each of their SSL objects held a reference to the context. */
    tls_ctx_destroy(s->tls);
    if (s->epfd >= 0)
        close(s->epfd);
    xfree(s);
}
