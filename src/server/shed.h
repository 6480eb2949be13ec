/* shed.h: overload shedding. Above the high-water mark of connections the server closes the
 * connections it needs least until it is back under the low-water mark: first connections that
 * are in no swarm, then seeders of swarms that have more seeders than --shed-ratio per leecher
 * (each swarm keeping at least --shed-min-seeders). Leechers, and seeders that some swarm still
 * needs, are never shed. Each shed connection is told why (bye "overload", or a WebTorrent
 * failure reason) before it is closed. Event-loop thread only. */
#ifndef SIG_SERVER_SHED_H
#define SIG_SERVER_SHED_H

#include "hub/ctx.h"

/* When the open WebSocket connections (not closing, not still handshaking) exceed s->shed_high,
 * sheds connections until they are at most s->shed_low. Returns the number of connections shed. */
uint32_t shed_run(server_t *s);

/* Returns 1 when every swarm membership of c is a surplus seeder (c is in at least one swarm). */
int shed_is_surplus_seeder(const server_t *s, const conn_t *c);

#endif
