/* metrics.c: /metrics and /dashboard.json (see metrics.h). Names follow the Prometheus
 * conventions: the sigtracker_ prefix, base units (seconds, bytes), _total on counters. Every
 * label value is one of a fixed set written here, never text from a client. */
#include "server/metrics.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "proto/jw.h"

static const char *const msg_type_names[MSG_TYPES] = {"hello", "announce", "scrape", "signal",
                                                      "ping",  "error",    "bye",    "other"};
static const char *const rl_kind_names[RL_KINDS] = {"messages", "signals_sent", "signals_received",
                                                    "announce_interval"};
static const char *const timeout_kind_names[TO_KINDS] = {"handshake", "stuck", "ping", "idle"};

/* Longest line one printf-style append writes; longer output is cut (never happens with the
 * fixed names and numbers written here). */
#define METRICS_LINE_BYTES 512

static void put(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(buf_t *b, const char *fmt, ...) {
    char line[METRICS_LINE_BYTES];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n > 0)
        buf_append(b, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

/* Writes microseconds as decimal seconds ("0.00025"), exact, without a float's rounding. */
static const char *us_as_seconds(uint64_t us, char *out, size_t len) {
    int n = snprintf(out, len, "%llu.%06llu", (unsigned long long)(us / 1000000),
                     (unsigned long long)(us % 1000000));
    while (n > 0 && out[n - 1] == '0')
        out[--n] = '\0';
    if (n > 0 && out[n - 1] == '.')
        out[--n] = '\0';
    return out;
}

static void head(buf_t *b, const char *name, const char *type, const char *help) {
    put(b, "# HELP sigtracker_%s %s\n# TYPE sigtracker_%s %s\n", name, help, name, type);
}

static void metric(buf_t *b, const char *name, const char *type, const char *help, uint64_t v) {
    head(b, name, type, help);
    put(b, "sigtracker_%s %llu\n", name, (unsigned long long)v);
}

/* A counter split by one label with fixed values. */
static void by_label(buf_t *b, const char *name, const char *help, const char *label,
                     const char *const *values, const uint64_t *v, size_t n) {
    head(b, name, "counter", help);
    for (size_t i = 0; i < n; i++)
        put(b, "sigtracker_%s{%s=\"%s\"} %llu\n", name, label, values[i], (unsigned long long)v[i]);
}

/* A histogram; `seconds` when the observations are microseconds shown as seconds. */
static void histogram(buf_t *b, const char *name, const char *help, const histo_t *h, int seconds) {
    histo_snap_t snap;
    histo_read(h, &snap);
    char le[32];
    head(b, name, "histogram", help);
    for (uint32_t i = 0; i < snap.nbounds; i++) {
        if (seconds)
            us_as_seconds(snap.bounds[i], le, sizeof(le));
        else
            snprintf(le, sizeof(le), "%llu", (unsigned long long)snap.bounds[i]);
        put(b, "sigtracker_%s_bucket{le=\"%s\"} %llu\n", name, le,
            (unsigned long long)snap.cumulative[i]);
    }
    put(b, "sigtracker_%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)snap.count);
    if (seconds)
        put(b, "sigtracker_%s_sum %s\n", name, us_as_seconds(snap.sum, le, sizeof(le)));
    else
        put(b, "sigtracker_%s_sum %llu\n", name, (unsigned long long)snap.sum);
    put(b, "sigtracker_%s_count %llu\n", name, (unsigned long long)snap.count);
}

int metrics_proc_read(metrics_proc_t *out) {
    memset(out, 0, sizeof(*out));
    FILE *f = fopen("/proc/self/stat", "r");
    if (f == NULL)
        return -errno;
    char line[1024];
    size_t n = fread(line, 1, sizeof(line) - 1, f);
    fclose(f);
    line[n] = '\0';
    /* The command name (field 2) may hold spaces and parentheses: fields resume after the last
     * ')'. Then field 3 is the state; utime and stime are fields 14 and 15, vsize 23, rss 24. */
    const char *p = strrchr(line, ')');
    if (p == NULL)
        return -EINVAL;
    unsigned long long utime = 0, stime = 0, vsize = 0;
    long long rss = 0;
    if (sscanf(p + 2,
               "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d "
               "%*u %llu %lld",
               &utime, &stime, &vsize, &rss) != 4)
        return -EINVAL;
    long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    if (tick <= 0 || page <= 0)
        return -EINVAL;
    out->cpu_us = (utime + stime) * 1000000ull / (unsigned long long)tick;
    out->vsize_bytes = vsize;
    out->rss_bytes = rss > 0 ? (uint64_t)rss * (uint64_t)page : 0;
    DIR *d = opendir("/proc/self/fd");
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL)
            if (e->d_name[0] != '.')
                out->open_fds++;
        (void)closedir(d); /* a read-only directory: nothing to lose if closing fails */
        if (out->open_fds > 0)
            out->open_fds--; /* the descriptor opendir itself holds */
    }
    return 0;
}

void metrics_init(server_t *s) {
    histo_init(&s->histos.iteration_us, histo_us_bounds, histo_us_nbounds);
    histo_init(&s->histos.message_us, histo_us_bounds, histo_us_nbounds);
}

/* Connections by dialect and state, admin connections left out (a scrape must not count
 * itself). One pass over the connection list: about a nanosecond per connection. */
enum { CS_HTTP, CS_WS, CS_CLOSING, CS_STATES };
static void count_connections(const server_t *s, uint64_t n[3][CS_STATES]) {
    memset(n, 0, sizeof(uint64_t) * 3 * CS_STATES);
    for (const conn_t *c = s->conns; c != NULL; c = c->next) {
        if (c->flags & CF_ADMIN)
            continue;
        int st = c->state == CONN_WS                                  ? CS_WS
                 : c->state == CONN_CLOSING || c->state == CONN_DRAIN ? CS_CLOSING
                                                                      : CS_HTTP;
        n[c->dialect < 3 ? c->dialect : 0][st]++;
    }
}

void metrics_write_prometheus(server_t *s, buf_t *b) {
    static const char *const dialects[3] = {"none", "st", "wt"};
    static const char *const states[CS_STATES] = {"http", "websocket", "closing"};
    const server_counters_t *k = &s->count;
    uint64_t conns[3][CS_STATES];
    count_connections(s, conns);
    head(b, "connections", "gauge",
         "Open client connections by dialect (none until the first message) and state.");
    for (int d = 0; d < 3; d++)
        for (int st = 0; st < CS_STATES; st++)
            put(b, "sigtracker_connections{dialect=\"%s\",state=\"%s\"} %llu\n", dialects[d],
                states[st], (unsigned long long)conns[d][st]);
    metric(b, "connections_max", "gauge", "The effective connection cap.", s->max_conns);
    metric(b, "connections_accepted_total", "counter", "Connections accepted.", k->accepted);
    metric(b, "connections_refused_total", "counter",
           "Connections refused by the global or per-address cap.", k->refused);
    metric(b, "identified_peers", "gauge", "Peer IDs held by this node's connections.",
           s->local_peers);
    metric(b, "swarms", "gauge", "Swarms with at least one of this node's peers.", s->local_swarms);
    metric(b, "seeders", "gauge", "Swarm memberships of this node's peers that are seeding.",
           s->local_seeders);
    metric(b, "leechers", "gauge", "Swarm memberships of this node's peers that are leeching.",
           s->local_members - s->local_seeders);
    by_label(b, "messages_received_total", "Client messages received, by kind.", "type",
             msg_type_names, k->msg_in, MSG_TYPES);
    by_label(b, "messages_sent_total", "Messages sent to clients, by kind.", "type", msg_type_names,
             k->msg_out, MSG_TYPES);
    metric(b, "relays_total", "counter", "Signals relayed to a peer on this node.", k->relayed);
    metric(b, "drops_total", "counter",
           "Messages dropped because a reader was too slow (or Redis congested).", k->dropped);
    by_label(b, "rate_limited_total", "Messages refused by a rate limit, by limit.", "kind",
             rl_kind_names, k->rate_limited_by, RL_KINDS);
    metric(b, "shed_connections_total", "counter",
           "Seeder connections closed by overload shedding.", k->shed);
    by_label(b, "timeouts_total", "Connections closed by a timeout, by timeout.", "kind",
             timeout_kind_names, k->timeouts_by, TO_KINDS);
    metric(b, "protocol_errors_total", "counter", "Connections closed for a protocol error.",
           k->protocol_errors);
    metric(b, "received_bytes_total", "counter", "Bytes read from client sockets.", k->bytes_in);
    metric(b, "sent_bytes_total", "counter", "Bytes written to client sockets.", k->bytes_out);
    metric(b, "tls_handshakes_full_total", "counter",
           "TLS handshakes completed without resumption.", k->tls_full);
    metric(b, "tls_handshakes_resumed_total", "counter",
           "TLS handshakes that resumed a session from a ticket.", k->tls_resumed);
    metric(b, "tls_handed_over_total", "counter",
           "TLS 1.3 connections whose records our own record layer runs after the handshake.",
           k->tls_handed_over);
    metric(b, "tls_errors_total", "counter",
           "TLS connections closed for a TLS error (not TLS, a bad record, a fatal alert).",
           k->tls_errors);
    metric(b, "expired_peers_total", "counter", "Swarm memberships expired by --peer-timeout.",
           k->expired_peers);
    metric(b, "parked_messages_total", "counter", "Messages that waited for Redis or the database.",
           k->parked);
    static const char *const acl_reasons[2] = {"not_in_allowlist", "in_denylist"};
    uint64_t acl[2] = {k->refused_unlisted, k->refused_denied};
    by_label(b, "access_refusals_total", "Infohashes refused by the access list, by reason.",
             "reason", acl_reasons, acl, 2);
    static const char *const reload_results[2] = {"applied", "failed"};
    uint64_t reloads[2] = {k->reloads, k->reload_failures};
    by_label(b, "config_reloads_total", "Configuration reloads (SIGHUP), by result.", "result",
             reload_results, reloads, 2);
    metric(b, "http_requests_total", "counter", "Plain HTTP requests answered.", k->http_requests);
    histogram(b, "event_loop_iteration_seconds",
              "Busy time of one event-loop iteration, from epoll_wait's return to the end of "
              "the iteration.",
              &s->histos.iteration_us, 1);
    histogram(b, "message_handling_seconds",
              "Time to handle one client message, from its last frame to its answers queued.",
              &s->histos.message_us, 1);
    store_stats_t st = store_stats(s->store);
    metric(b, "db_batches_total", "counter", "Database write batches committed.",
           st.batches_committed);
    metric(b, "db_rows_written_total", "counter", "Infohash records written to the database.",
           st.rows_written);
    metric(b, "db_write_errors_total", "counter", "Database batches that failed every retry.",
           st.write_errors);
    metric(b, "db_cached_records", "gauge", "Infohash records held in memory.", st.cached_records);
    if (st.batch_rows != NULL)
        histogram(b, "db_batch_rows", "Rows in one committed database batch.", st.batch_rows, 0);
    if (st.commit_us != NULL)
        histogram(b, "db_commit_seconds", "Time to write and commit one database batch.",
                  st.commit_us, 1);
    metric(b, "heap_bytes", "gauge", "Bytes allocated through the server's allocator.",
           alloc_bytes_in_use());
    metrics_proc_t pr;
    if (metrics_proc_read(&pr) == 0) {
        char sec[32];
        metric(b, "process_resident_memory_bytes", "gauge", "Resident set size.", pr.rss_bytes);
        metric(b, "process_virtual_memory_bytes", "gauge", "Virtual memory size.", pr.vsize_bytes);
        metric(b, "process_open_fds", "gauge", "Open file descriptors.", pr.open_fds);
        head(b, "process_cpu_seconds_total", "counter", "User and system CPU time.");
        put(b, "sigtracker_process_cpu_seconds_total %s\n",
            us_as_seconds(pr.cpu_us, sec, sizeof(sec)));
    }
    metric(b, "uptime_seconds", "gauge", "Seconds since the server started.", s->now);
    if (s->cluster != NULL) {
        static const char *const cstates[3] = {"down", "up", "stalled"};
        cluster_stats_t cs = cluster_stats(s->cluster);
        int now = cluster_state(s->cluster);
        head(b, "cluster_redis_state", "gauge",
             "1 for the state of the connection to Redis, 0 for the others.");
        for (int i = 0; i < 3; i++)
            put(b, "sigtracker_cluster_redis_state{state=\"%s\"} %d\n", cstates[i], i == now);
        char sec[32];
        head(b, "cluster_heartbeat_rtt_seconds", "gauge",
             "Round trip of the last heartbeat to Redis.");
        put(b, "sigtracker_cluster_heartbeat_rtt_seconds %s\n",
            us_as_seconds(cs.rtt_us, sec, sizeof(sec)));
        swarm_totals_t t = swarm_totals(s->swarms);
        metric(b, "cluster_nodes", "gauge", "Live nodes, from the last heartbeat.",
               s->cluster_nodes);
        metric(b, "cluster_connections", "gauge", "Connections summed over the live nodes.",
               s->cluster_conns);
        metric(b, "cluster_identified_peers", "gauge", "Peer IDs held in the whole cluster.",
               registry_count(s->registry));
        metric(b, "cluster_swarms", "gauge", "Swarms in the whole cluster.", t.swarms);
        metric(b, "cluster_seeders", "gauge", "Seeding memberships in the whole cluster.",
               t.seeders);
        metric(b, "cluster_leechers", "gauge", "Leeching memberships in the whole cluster.",
               t.members - t.seeders);
        metric(b, "cluster_remote_received_total", "counter",
               "Deliveries received from other nodes.", k->remote_in);
        metric(b, "cluster_remote_sent_total", "counter", "Deliveries sent to other nodes.",
               k->remote_out);
        metric(b, "cluster_redis_commands_total", "counter", "Commands sent to Redis.",
               cs.commands);
        metric(b, "cluster_redis_rejected_total", "counter",
               "Malformed or oversized channel messages dropped.", cs.rejected);
        metric(b, "cluster_redis_reconnects_total", "counter", "Reconnections to Redis.",
               cs.reconnects);
    }
}

/* ---- the dashboard's document ------------------------------------------------------------ */

typedef struct top {
    const swarm_t *v[SERVER_TOP_SWARMS];
    uint32_t n;
} top_t;

static int bigger(const swarm_t *a, const swarm_t *b) {
    return a->count > b->count || (a->count == b->count && a->seeders > b->seeders);
}

/* Keeps sw in the sorted list if it is among the largest; O(SERVER_TOP_SWARMS). */
static void top_offer(const swarm_t *sw, void *arg) {
    top_t *t = arg;
    for (uint32_t i = 0; i < t->n; i++)
        if (t->v[i] == sw)
            return;
    if (t->n == SERVER_TOP_SWARMS && !bigger(sw, t->v[t->n - 1]))
        return;
    uint32_t i = t->n < SERVER_TOP_SWARMS ? t->n++ : t->n - 1;
    while (i > 0 && bigger(sw, t->v[i - 1])) {
        t->v[i] = t->v[i - 1];
        i--;
    }
    t->v[i] = sw;
}

static void field(buf_t *b, const char *name, uint64_t v) {
    jw_str(b, name, strlen(name));
    JW_LIT(b, ":");
    jw_u64(b, v);
    JW_LIT(b, ",");
}

void metrics_write_dashboard(server_t *s, buf_t *b) {
    /* The largest swarms: last time's list (refreshed: a swarm may have gone) and a bounded
     * slice of the table. */
    top_t top = {.n = 0};
    for (uint32_t i = 0; i < s->ntop; i++) {
        const swarm_t *sw = swarm_find(s->swarms, s->top_ih[i]);
        if (sw != NULL)
            top_offer(sw, &top);
    }
    s->top_cursor = swarm_scan(s->swarms, s->top_cursor, METRICS_TOP_SCAN_BUCKETS, top_offer, &top);
    s->ntop = top.n;
    for (uint32_t i = 0; i < top.n; i++)
        memcpy(s->top_ih[i], top.v[i]->info_hash, 20);

    metrics_proc_t pr;
    (void)metrics_proc_read(&pr); /* zeroes on failure: the charts then show 0 */
    const server_counters_t *k = &s->count;
    uint64_t refused = k->refused;
    for (int i = 0; i < RL_KINDS; i++)
        refused += k->rate_limited_by[i];
    uint64_t in = 0, out = 0;
    for (int i = 0; i < MSG_TYPES; i++) {
        in += k->msg_in[i];
        out += k->msg_out[i];
    }
    JW_LIT(b, "{");
    field(b, "uptime", s->now);
    field(b, "uptime_ms", s->now_ms);
    uint32_t open = 0;
    for (const conn_t *c = s->conns; c != NULL; c = c->next)
        open += !(c->flags & CF_ADMIN);
    field(b, "connections", open);
    field(b, "peers", s->local_peers);
    field(b, "seeders", s->local_seeders);
    field(b, "leechers", s->local_members - s->local_seeders);
    field(b, "swarms", s->local_swarms);
    field(b, "messages_in", in);
    field(b, "messages_out", out);
    field(b, "relays", k->relayed);
    field(b, "refusals", refused);
    field(b, "drops", k->dropped);
    field(b, "rss_bytes", pr.rss_bytes);
    field(b, "cpu_us", pr.cpu_us);
    JW_LIT(b, "\"top\":[");
    for (uint32_t i = 0; i < top.n; i++) {
        const swarm_t *sw = top.v[i];
        if (i > 0)
            JW_LIT(b, ",");
        JW_LIT(b, "{\"info_hash\":");
        jw_hex(b, sw->info_hash, 20);
        JW_LIT(b, ",");
        field(b, "seeders", sw->seeders);
        field(b, "leechers", swarm_leechers(sw));
        JW_LIT(b, "\"completions\":");
        store_info_t info;
        /* A record not in memory starts a load and is shown as unknown until the next poll. */
        if (store_get(s->store, sw->info_hash, &info) == 0)
            jw_u64(b, info.completions);
        else
            JW_LIT(b, "null");
        JW_LIT(b, "}");
    }
    JW_LIT(b, "]}");
}
