/* stats.c: /stats.json. Every figure is read from counters kept exact by the code that changes
 * them, so a request costs O(1), never a walk over swarms (bittorrent-tracker's walks them all). */
#include "server/stats.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "proto/jw.h"

static void field(buf_t *b, const char *name, uint64_t v, int first) {
    if (!first)
        JW_LIT(b, ",");
    jw_str(b, name, strlen(name));
    JW_LIT(b, ":");
    jw_u64(b, v);
}

void stats_write_json(server_t *s, buf_t *b) {
    swarm_totals_t t = swarm_totals(s->swarms);
    store_stats_t st = store_stats(s->store);
    JW_LIT(b, "{");
    field(b, "connections", s->nconns, 1);
    field(b, "max_connections", s->max_conns, 0);
    field(b, "identified_peers", s->local_peers, 0);
    field(b, "swarms", s->local_swarms, 0);
    field(b, "peers", s->local_members, 0);
    field(b, "seeders", s->local_seeders, 0);
    field(b, "leechers", s->local_members - s->local_seeders, 0);
    field(b, "messages_in", s->count.messages_in, 0);
    field(b, "messages_out", s->count.messages_out, 0);
    field(b, "bytes_in", s->count.bytes_in, 0);
    field(b, "bytes_out", s->count.bytes_out, 0);
    field(b, "relayed", s->count.relayed, 0);
    field(b, "dropped", s->count.dropped, 0);
    field(b, "accepted", s->count.accepted, 0);
    field(b, "refused", s->count.refused, 0);
    field(b, "rate_limited", s->count.rate_limited, 0);
    field(b, "protocol_errors", s->count.protocol_errors, 0);
    field(b, "timeouts", s->count.timeouts, 0);
    field(b, "shed", s->count.shed, 0);
    field(b, "expired_peers", s->count.expired_peers, 0);
    field(b, "db_batches", st.batches_committed, 0);
    field(b, "db_rows_written", st.rows_written, 0);
    field(b, "db_write_errors", st.write_errors, 0);
    field(b, "db_cached_records", st.cached_records, 0);
    field(b, "heap_bytes", alloc_bytes_in_use(), 0);
    field(b, "uptime_seconds", s->now, 0);
    field(b, "parked", s->count.parked, 0);
    field(b, "proxy_headers", s->count.proxy_headers, 0);
    field(b, "proxy_kept_address", s->count.proxy_kept, 0);
    field(b, "proxy_refused_untrusted", s->count.proxy_untrusted, 0);
    field(b, "proxy_refused_malformed", s->count.proxy_malformed, 0);
    /* Announces and scraped infohashes the access list refused, by reason. */
    JW_LIT(b, ",\"refusals\":{");
    field(b, "not_in_allowlist", s->count.refused_unlisted, 1);
    field(b, "in_denylist", s->count.refused_denied, 0);
    JW_LIT(b, "},\"access_list\":{\"mode\":");
    const char *mode = s->acl == NULL ? "none" : acl_mode(s->acl) == ACL_ALLOW ? "allow" : "deny";
    jw_str(b, mode, strlen(mode));
    field(b, "entries", s->acl != NULL ? acl_count(s->acl) : 0, 0);
    field(b, "removed_peers", s->count.acl_removed, 0);
    JW_LIT(b, "}");
    /* Messages refused, by the error code of hub/refusal.h (both dialects). */
    JW_LIT(b, ",\"refused_messages\":{");
    for (int i = 0; i < REFUSAL_COUNT; i++)
        field(b, refusal_name(i), s->count.refused_msgs[i], i == 0);
    JW_LIT(b, "}");
    field(b, "config_reloads", s->count.reloads, 0);
    field(b, "config_reload_failures", s->count.reload_failures, 0);
    field(b, "tls_handshakes_full", s->count.tls_full, 0);
    field(b, "tls_handshakes_resumed", s->count.tls_resumed, 0);
    field(b, "tls_handed_over", s->count.tls_handed_over, 0);
    field(b, "tls_errors", s->count.tls_errors, 0);
    field(b, "tls_reloads", s->count.tls_reloads, 0);
    field(b, "tls_reload_errors", s->count.tls_reload_errors, 0);
    if (s->cluster != NULL) {
        /* Every node mirrors every other node's peers, so the tables give cluster-wide
         * totals; connections are summed from the nodes' heartbeats. */
        static const char *const states[] = {"down", "up", "stalled"};
        cluster_stats_t cs = cluster_stats(s->cluster);
        char id[17];
        snprintf(id, sizeof(id), "%016llx", (unsigned long long)cluster_node_id(s->cluster));
        JW_LIT(b, ",\"cluster\":{\"node_id\":");
        jw_str(b, id, 16);
        JW_LIT(b, ",\"redis\":");
        const char *st_name = states[cluster_state(s->cluster)];
        jw_str(b, st_name, strlen(st_name));
        field(b, "nodes", s->cluster_nodes, 0);
        field(b, "connections", s->cluster_conns, 0);
        field(b, "identified_peers", registry_count(s->registry), 0);
        field(b, "swarms", t.swarms, 0);
        field(b, "peers", t.members, 0);
        field(b, "seeders", t.seeders, 0);
        field(b, "leechers", t.members - t.seeders, 0);
        field(b, "remote_in", s->count.remote_in, 0);
        field(b, "remote_out", s->count.remote_out, 0);
        field(b, "redis_commands", cs.commands, 0);
        field(b, "redis_published", cs.published, 0);
        field(b, "redis_received", cs.received, 0);
        field(b, "redis_rejected", cs.rejected, 0);
        field(b, "redis_reconnects", cs.reconnects, 0);
        field(b, "redis_rtt_us", cs.rtt_us, 0);
        JW_LIT(b, "}");
    }
    JW_LIT(b, "}");
}
