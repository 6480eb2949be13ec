/* stats.h: the /stats.json document. */
#ifndef SIG_SERVER_STATS_H
#define SIG_SERVER_STATS_H

#include "core/buf.h"
#include "hub/ctx.h"

/* Appends the /stats.json body: connections, identified peers, swarms, seeders, leechers,
 * message and byte counters, limits that fired, database counters, memory. */
void stats_write_json(server_t *s, buf_t *b);

#endif
