/* tracker.c: announce semantics shared by the ST and WebTorrent dialects. */
#include "proto/tracker.h"

#include <errno.h>

#include "hub/peers.h"
#include "proto/jw.h"
#include "proto/proto.h"

int tracker_event_parse(const char *src, const json_tok_t *t) {
    if (t->type != JSON_STRING)
        return -1;
    if (json_str_eq(src, t, "started"))
        return TRACKER_STARTED;
    if (json_str_eq(src, t, "completed"))
        return TRACKER_COMPLETED;
    if (json_str_eq(src, t, "stopped"))
        return TRACKER_STOPPED;
    if (json_str_eq(src, t, "paused"))
        return TRACKER_PAUSED;
    if (json_str_eq(src, t, "update") || json_str_eq(src, t, "empty"))
        return TRACKER_UPDATE;
    return -1;
}

int tracker_announce(server_t *s, conn_t *c, const uint8_t info_hash[20], int event, int left,
                     swarm_member_t **member, uint32_t *retry_ms) {
    registry_entry_t *e = c->peer;
    swarm_t *w = swarm_find(s->swarms, info_hash);
    swarm_member_t *m = w ? swarm_member_of(e->members, w) : NULL;
    *member = NULL;
    if (event == TRACKER_STOPPED) {
        if (m != NULL)
            peers_leave(s, m);
        store_touch(s->store, info_hash, s->wall, 0);
        return 0;
    }
    int regular = event == TRACKER_UPDATE || event == TRACKER_PAUSED;
    if (m != NULL && regular && s->cfg.min_interval &&
        s->now - m->last_announce < s->cfg.min_interval) {
        /* Too soon: refuse, and do not count it as activity (the peer still expires on time). */
        *retry_ms = (m->last_announce + s->cfg.min_interval - s->now) * 1000u;
        return -EAGAIN;
    }
    int seeder;
    if (event == TRACKER_COMPLETED || left == TRACKER_LEFT_ZERO)
        seeder = 1;
    else if (left == TRACKER_LEFT_SOME)
        seeder = 0;
    else
        seeder = m ? m->seeder : 0;
    /* A completion is the move to seeder with "completed" (a new peer that says completed
     * counts too, as in bittorrent-tracker), and counts once per membership, so cycling
     * started/completed on one connection cannot inflate the count. */
    int completed = event == TRACKER_COMPLETED && (m == NULL || (!m->seeder && !m->completed));
    if (m == NULL) {
        if (e->nswarms >= s->cfg.max_swarms)
            return -ENOSPC;
        m = peers_join(s, e, info_hash, seeder);
    } else {
        peers_set_seeder(s, m, seeder);
        m->last_announce = s->now;
    }
    if (completed)
        m->completed = 1;
    store_touch(s->store, info_hash, s->wall, completed);
    *member = m;
    return 0;
}

void tracker_counts(server_t *s, const uint8_t info_hash[20], uint32_t *complete,
                    uint32_t *incomplete) {
    swarm_t *w = swarm_find(s->swarms, info_hash);
    *complete = w ? w->seeders : 0;
    *incomplete = w ? swarm_leechers(w) : 0;
}

int tracker_scrape(server_t *s, conn_t *c, const uint8_t *info_hashes, uint32_t n,
                   tracker_scrape_t *out) {
    int pending = 0, unavailable = 0;
    for (uint32_t k = 0; k < n; k++) {
        const uint8_t *ih = info_hashes + 20 * (size_t)k;
        store_info_t info = {0, 0, 0};
        int r = store_get(s->store, ih, &info);
        if (r == -EINPROGRESS)
            pending = 1;
        else if (r != 0)
            unavailable = 1;
        tracker_counts(s, ih, &out[k].complete, &out[k].incomplete);
        out[k].downloaded = info.completions;
    }
    if (pending) {
        proto_park(s, c, &s->store_wait);
        return -EINPROGRESS;
    }
    return unavailable ? -EAGAIN : 0;
}

int tracker_allowed(const server_t *s, const uint8_t info_hash[20]) {
    return acl_allows(s->acl, info_hash);
}

const char *tracker_refused(server_t *s, uint32_t n) {
    if (s->acl != NULL && acl_mode(s->acl) == ACL_DENY) {
        s->count.refused_denied += n;
        return "torrent not allowed on this tracker (in its denylist)";
    }
    s->count.refused_unlisted += n;
    return "torrent not allowed on this tracker (not in its allowlist)";
}

uint64_t tracker_enforce_access(server_t *s) {
    uint64_t removed = 0;
    if (s->acl == NULL)
        return 0;
    const char *why = acl_mode(s->acl) == ACL_ALLOW
                          ? "torrent no longer allowed on this tracker (not in its allowlist): "
                            "removed from its swarm"
                          : "torrent no longer allowed on this tracker (in its denylist): "
                            "removed from its swarm";
    /* Walk this node's connections rather than the swarm table: only their memberships are
     * this node's to remove, and each is reached in O(1) from its owner. */
    for (conn_t *c = s->conns; c; c = c->next) {
        if (c->peer == NULL || c->state != CONN_WS)
            continue;
        swarm_member_t *m = c->peer->members;
        while (m != NULL) {
            swarm_member_t *next = m->next_of_owner;
            if (!acl_allows(s->acl, m->swarm->info_hash)) {
                proto_send_refusal(s, c, m->swarm->info_hash, why);
                peers_leave(s, m);
                removed++;
            }
            m = next;
        }
    }
    s->count.acl_removed += removed;
    return removed;
}

void tracker_write_scrape(buf_t *b, const tracker_scrape_t *v) {
    JW_LIT(b, "{\"complete\":");
    jw_u64(b, v->complete);
    JW_LIT(b, ",\"incomplete\":");
    jw_u64(b, v->incomplete);
    JW_LIT(b, ",\"downloaded\":");
    jw_u64(b, v->downloaded);
    JW_LIT(b, "}");
}
