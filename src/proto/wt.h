/* wt.h: the WebTorrent tracker dialect ({"action":...} messages), byte for byte as the
 * bittorrent-tracker client and the WebTorrent browser library expect it. Event-loop thread only.
 */
#ifndef SIG_PROTO_WT_H
#define SIG_PROTO_WT_H

#include "hub/ctx.h"

/* Handles one WebTorrent message whose tokens are in s->toks (token 0 is the object). */
void wt_handle(server_t *s, conn_t *c, const char *src, int ntoks);

/* Queues {"action":action[,"info_hash":ih],"failure reason":reason} on c. info_hash may be NULL.
 * Failures always carry action (and info_hash when known) so the client shows them instead of
 * dropping the socket and reconnecting. code is the refusal it counts as (hub/refusal.h,
 * through proto_refused), or -1 for a notice that refuses no message of c's. */
void wt_failure(server_t *s, conn_t *c, int code, const char *action, const uint8_t *info_hash,
                const char *reason);

/* Remembers on dst, the receiver of an offer, that offerer sent it (offer_id, info_hash), so
 * that exactly one answer may go back. Called on the receiver's node. */
void wt_remember_offer(server_t *s, conn_t *dst, const uint8_t offerer[20],
                       const uint8_t offer_id[20], const uint8_t info_hash[20]);

/* Tells a WebTorrent peer why the server is closing: one failure per swarm it is in. */
void wt_bye(server_t *s, conn_t *c, const char *reason);

#endif
