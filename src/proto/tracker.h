/* tracker.h: the announce logic both dialects share: joining, leaving, seeder state, the
 * min_interval rule, the per-connection swarm cap, and the infohash database. The dialects only
 * parse and answer; what an announce does to a swarm is decided here, once.
 * Event-loop thread only. */
#ifndef SIG_PROTO_TRACKER_H
#define SIG_PROTO_TRACKER_H

#include <stdint.h>

#include "hub/ctx.h"

enum tracker_event {
    TRACKER_UPDATE = 0, /* no event: a regular announce (inserts the peer if absent) */
    TRACKER_STARTED,
    TRACKER_COMPLETED,
    TRACKER_STOPPED,
    TRACKER_PAUSED, /* WebTorrent/libtorrent: treated as a regular announce */
};

/* What the announce says about the peer's download. */
enum tracker_left {
    TRACKER_LEFT_UNKNOWN = 0, /* absent, null or negative: keep the state, leecher when new */
    TRACKER_LEFT_ZERO,        /* left == 0: a seeder */
    TRACKER_LEFT_SOME,        /* left > 0: a leecher */
};

/* Applies an announce by c (which holds a peer ID) to the swarm of info_hash.
 * Returns 0 with *member set (NULL after `stopped`), -EAGAIN when a regular announce came sooner
 * than --min-interval after the previous accepted one (*retry_ms says when to retry; nothing
 * changes), or -ENOSPC when c is already in --max-swarms swarms. */
int tracker_announce(server_t *s, conn_t *c, const uint8_t info_hash[20], int event, int left,
                     swarm_member_t **member, uint32_t *retry_ms);

/* Complete and incomplete counts of a swarm (0, 0 when there is none). */
void tracker_counts(server_t *s, const uint8_t info_hash[20], uint32_t *complete,
                    uint32_t *incomplete);

/* What a scrape reports for one infohash. */
typedef struct tracker_scrape {
    uint32_t complete, incomplete;
    uint64_t downloaded; /* completions recorded in the database */
} tracker_scrape_t;

/* Reads the scrape figures of n infohashes (info_hashes[k], 20 bytes each) into out[k].
 * Returns 0; -EINPROGRESS when the database is being read (c has been parked: the message is
 * handled again once the figures are in); -EAGAIN when the database cannot answer now (cluster
 * mode with Redis unreachable). */
int tracker_scrape(server_t *s, conn_t *c, const uint8_t *info_hashes, uint32_t n,
                   tracker_scrape_t *out);

/* Appends a scrape entry's value: {"complete":c,"incomplete":i,"downloaded":d}. */
void tracker_write_scrape(buf_t *b, const tracker_scrape_t *v);

/* Returns 1 when the access list (--allowlist or --denylist) lets info_hash be tracked, 0 when it
 * refuses it. Counts nothing (a parked message runs twice): see tracker_refused. */
int tracker_allowed(const server_t *s, const uint8_t info_hash[20]);

/* Counts n infohashes refused by the access list under the list's reason (refusals in
 * /stats.json), and returns the text clients are told. Call it once per refusal answered. */
const char *tracker_refused(server_t *s, uint32_t n);

/* After the access list changed (a reload): removes every membership of this node's peers in a
 * swarm the list no longer allows, through peers_leave (so counts, the other nodes' mirrors and
 * the stats follow), and tells each such peer once per swarm in its dialect. Other nodes' peers
 * are left to their own node, which enforces its own list. Returns the memberships removed. */
uint64_t tracker_enforce_access(server_t *s);

/* Parses an event name ("started", "completed", "stopped", "paused", "empty" or "update").
 * Returns the event, or -1 when unknown. */
int tracker_event_parse(const char *src, const json_tok_t *t);

#endif
