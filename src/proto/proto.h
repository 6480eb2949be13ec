/* proto.h: where a complete WebSocket message enters the protocol layer. It tokenizes the JSON,
 * tells the dialects apart on the first message ("action" = WebTorrent, "type" = ST), applies the
 * per-connection message rate limit, and hands the message to st.c or wt.c.
 * Event-loop thread only. */
#ifndef SIG_PROTO_PROTO_H
#define SIG_PROTO_PROTO_H

#include <stddef.h>

#include "hub/ctx.h"

/* Handles one complete message (text, or binary holding JSON) received on c. `utf8_ok` is 0 when
 * a binary message is not valid UTF-8 (text messages were validated by the WebSocket layer).
 * Returns 0, or -EINPROGRESS when the message was parked (CF_PARKED): it waits for an answer
 * from Redis or the database; the caller keeps a copy of its bytes in c->frag, reads nothing
 * more from c meanwhile, and hands it to proto_resume when c is on s->resume. */
int proto_message(server_t *s, conn_t *c, const char *p, size_t n, int utf8_ok);

/* Handles a parked message again (its rate-limit token was spent the first time). Returns as
 * proto_message does. */
int proto_resume(server_t *s, conn_t *c, const char *p, size_t n);

/* Counts a message refused on c under code (enum refusal of hub/refusal.h; bad_json is also a
 * protocol error) and logs it at debug, rate-limited (hub/evlog.h). The answer, if any, is the
 * caller's: st_error, st_rate_limited and wt_failure call this. */
void proto_refused(server_t *s, conn_t *c, int code);

/* Parks the message being handled on c: it is handled again when c appears on s->resume.
 * wait_list is where c waits (s->store_wait for the database), or NULL when the answer puts c
 * on s->resume itself (an ID claim). */
void proto_park(server_t *s, conn_t *c, ref_list_t *wait_list);

/* Queues the dialect's goodbye on c before the server closes it: {"type":"bye","reason":R} for
 * ST (and connections that never spoke), a failure reason per joined swarm for WebTorrent. */
void proto_send_bye(server_t *s, conn_t *c, const char *reason);

/* Tells c that info_hash is refused by the access list, in its dialect: for WebTorrent a failure
 * with action "announce" and the info_hash; for ST the error torrent_not_allowed with ref
 * "announce" and the info_hash. why is the text. */
void proto_send_refusal(server_t *s, conn_t *c, const uint8_t info_hash[20], const char *why);

#endif
