/* proto.h: where a complete WebSocket message enters the protocol layer. It tokenizes the JSON,
 * tells the dialects apart on the first message ("action" = WebTorrent, "type" = ST), applies the
 * per-connection message rate limit, and hands the message to st.c or wt.c.
 * Event-loop thread only. */
#ifndef SIG_PROTO_PROTO_H
#define SIG_PROTO_PROTO_H

#include <stddef.h>

#include "server/ctx.h"

/* Handles one complete message (text, or binary holding JSON) received on c. `utf8_ok` is 0 when
 * a binary message is not valid UTF-8 (text messages were validated by the WebSocket layer). */
void proto_message(server_t *s, conn_t *c, const char *p, size_t n, int utf8_ok);

/* Queues the dialect's goodbye on c before the server closes it: {"type":"bye","reason":R} for
 * ST (and connections that never spoke), a failure reason per joined swarm for WebTorrent. */
void proto_send_bye(server_t *s, conn_t *c, const char *reason);

#endif
