/* admin.h: the private listener of --admin-listen. It speaks plain HTTP only and answers
 * /metrics, /stats.json, /health, /dashboard and /dashboard.json (conn.c routes requests of its
 * connections, which carry CF_ADMIN); a WebSocket upgrade there is refused. Meant for loopback or
 * a private network, so the public port need not expose the metrics (--public-metrics).
 * Event-loop thread only. */
#ifndef SIG_SERVER_ADMIN_H
#define SIG_SERVER_ADMIN_H

#include <stddef.h>

#include "hub/ctx.h"

/* Opens the --admin-listen socket and watches it (epoll data &s->afd). Does nothing and returns 0
 * without --admin-listen. Returns a negative errno with one line in err when the address cannot
 * be resolved or bound. */
int admin_listen(server_t *s, char *err, size_t errlen);

/* Accepts pending connections on the admin socket (its epoll event). */
void admin_accept(server_t *s);

/* Closes the admin socket, if open. */
void admin_close(server_t *s);

#endif
