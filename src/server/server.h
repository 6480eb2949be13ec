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

/* Recomputes the effective connection cap and the shedding marks from s->cfg and the descriptor
 * limit found at creation. server_create and server_reload call it. */
void server_apply_caps(server_t *s);

/* Loads the access list the configuration names (--allowlist or --denylist; none is fine), keyed
 * with the server's hash key. Returns 0, or a negative errno with a reason naming the file and
 * line in err: a configuration error (main exits 2). Call once, after server_create. */
int server_load_access_list(server_t *s, char *err, size_t errlen);

/* Loads --tls-cert and --tls-key into the TLS context of the wss:// listeners (none is loaded
 * when no listener is wss). Returns 0, or a negative errno with a reason naming the file in err:
 * a configuration error (main exits 2). Call once, after server_create, before server_listen. */
int server_load_tls(server_t *s, char *err, size_t errlen);

/* Binds and listens on every cfg->listeners entry (ws and wss alike, all in the one epoll set,
 * each with SO_REUSEPORT under --reuse-port). Returns 0, or -errno with a reason in err; the
 * listeners already open are closed by server_destroy. */
int server_listen(server_t *s, char *err, size_t errlen);

/* Logs the listening addresses, the certificate, the effective connection cap and where it came
 * from. */
void server_log_start(const server_t *s);

/* Runs the event loop until server_stop is called or SIGINT/SIGTERM arrives; then says bye to
 * every peer, flushes their output briefly, and returns 0. SIGHUP makes it call server_reload at
 * the end of the iteration in which it arrived. */
int server_run(server_t *s);

/* Asks the loop to stop at its next iteration (async-signal-safe). */
void server_stop(server_t *s);

/* Closes every connection, flushes the database and frees everything. */
void server_destroy(server_t *s);

/* Reloads the configuration as SIGHUP does (src/server/reload.c): builds it again from the file
 * and the original command line, with the access list and (through server_tls_reload) the TLS
 * certificates. Either all of it applies or nothing does: on any error the running configuration
 * and list stay as they are and the log says why (file, line, key). Options that need a restart
 * keep their running value, and the log names each. Live connections keep going: every limit,
 * interval, timeout and list that applies is read where it is used, so they follow at once; peers
 * in swarms the new access list refuses leave them (tracker_enforce_access). One log line sums up
 * what changed. Returns 0 when applied, or a negative errno when refused. Event-loop thread. */
int server_reload(server_t *s);

/* The TLS hook of a reload, called with the configuration about to be applied after everything
 * else that can fail has succeeded: when it returns 0 the reload is committed. With wss://
 * listeners open it loads next->tls_cert and next->tls_key again (the same or new paths) and, on
 * success, new handshakes use them while open connections keep the certificate they started with
 * (counted in tls_reloads). Returns 0 (also when no listener is wss), or a negative errno with a
 * reason in err, which refuses the whole reload: the running certificate and configuration stay
 * (counted in tls_reload_errors). Event-loop thread. */
int server_tls_reload(server_t *s, const config_t *next, char *err, size_t errlen);

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
