/* server.h: the server as main.c sees it: create from a config, listen, run until a signal,
 * destroy. Everything is owned by the thread that calls server_run. */
#ifndef SIG_SERVER_SERVER_H
#define SIG_SERVER_SERVER_H

#include <stddef.h>

#include "config/config.h"

typedef struct server server_t;

/* Creates a server: opens the database, the swarm table and the epoll instance, and computes
 * the effective connection cap from the fd limit. It does not listen yet.
 * On failure returns NULL with a human-readable reason in err. */
server_t *server_create(const config_t *cfg, char *err, size_t errlen);

/* Binds and listens on every cfg->listen entry (ws and wss alike, all in the one epoll set).
 * Returns 0, or -errno with a reason in err. */
int server_listen(server_t *s, char *err, size_t errlen);

/* Loads --tls-cert and --tls-key again (the loop calls it on SIGHUP). New handshakes use the new
 * certificate; open connections keep theirs. On failure the current certificate stays and the
 * log says why. Returns 0 (also when there is no wss listener) or a negative errno. */
int server_tls_reload(server_t *s);

/* Logs the listening address, the effective connection cap and where it came from. */
void server_log_start(const server_t *s);

/* Runs the event loop until server_stop is called or SIGINT/SIGTERM arrives (SIGHUP reloads the
 * certificate, see server_tls_reload); then says bye to
 * every peer, flushes their output briefly, and returns 0. */
int server_run(server_t *s);

/* Asks the loop to stop at its next iteration (async-signal-safe). */
void server_stop(server_t *s);

/* Closes every connection, flushes the database and frees everything. */
void server_destroy(server_t *s);

/* Advances the server's clocks (monotonic seconds and milliseconds, wall time). The loop calls it
 * every iteration; tests and fuzzers call it to control time. */
void server_update_clock(server_t *s);

/* Runs the once-per-second housekeeping: WebSocket pings and their timeouts, handshake and idle
 * timeouts, lingering closes, expiry of silent peers, overload shedding, database batches. */
void server_tick(server_t *s);

/* Handles what the iteration left pending: parked messages whose answer arrived, connections
 * replaced by a reclaim (closed with bye "replaced"), records for other nodes. The first step of
 * server_end_iteration; tests call it alone to look at output before it is written. */
void server_settle(server_t *s);

/* Does server_settle, writes all queued output and finishes closes; the end of every loop
 * iteration. */
void server_end_iteration(server_t *s);

#endif
