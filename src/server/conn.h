/* conn.h: one client connection: the HTTP upgrade, the WebSocket framing state machine, the
 * output queue, and closing. Bytes in are handed to conn_feed, which needs no socket, so tests
 * and the whole-connection fuzz target drive the real state machine without I/O.
 * Event-loop thread only. */
#ifndef SIG_SERVER_CONN_H
#define SIG_SERVER_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "hub/ctx.h"
#include "hub/out.h"

/* Creates a connection for an accepted socket (fd may be -1 for tests and fuzzing: output is then
 * discarded at flush time), links it into the server's list and counts it against its address.
 * flags are its first CF_* flags: 0 for a client, CF_ADMIN for the admin listener's, which count
 * against SERVER_ADMIN_MAX_CONNECTIONS only (not the client caps, so that monitoring still works
 * when clients have filled them). A client connection from a --trusted-proxy address starts in
 * CONN_PROXY (it may send a PROXY protocol header first), any other in CONN_HTTP. Returns NULL
 * when a cap refuses it (the caller closes the fd). */
conn_t *conn_create(server_t *s, int fd, const struct sockaddr *addr, socklen_t addrlen,
                    uint32_t flags);

/* Registers c's socket with the loop's epoll set: level-triggered EPOLLIN, or edge-triggered
 * while c is in CONN_PROXY (see conn.c). Returns 0, or a negative errno from epoll_ctl (the
 * caller then closes c). */
int conn_watch(server_t *s, conn_t *c);

/* Processes bytes received on c. data may be modified in place (frames are unmasked there).
 * Any answers are queued on c (and on other connections for relays). In CONN_PROXY the bytes are
 * taken as already read from the socket: a header is looked for at their start, and what
 * follows it goes to the HTTP stage. */
void conn_feed(server_t *s, conn_t *c, uint8_t *data, size_t len);

/* Reads what the socket has and feeds it; handles EOF and errors. In CONN_PROXY it first peeks
 * at the socket and consumes exactly the PROXY header, if there is one. */
void conn_on_readable(server_t *s, conn_t *c);

/* Writes queued output. Called from the flush list and on EPOLLOUT. */
void conn_flush(server_t *s, conn_t *c);

/* Returns 1 while c has bytes to write: frames in c->out, or TLS ciphertext not yet sent. */
int conn_has_output(conn_t *c);

/* Half-closes c's socket once its output is written: on wss a close_notify goes first (if the
 * socket takes it at once). The loop calls it before reading until the peer's EOF. */
void conn_shutdown_write(server_t *s, conn_t *c);

/* Drops every queued frame that has not started going out (a partly written frame is kept whole,
 * so the stream stays well-formed). Returns the bytes dropped. */
size_t conn_drop_output(conn_t *c);

/* Decides to close c: sends {"type":"bye","reason":bye_reason} (or the WebTorrent equivalent)
 * when bye_reason is not NULL, then a close frame with ws_code when ws_code is not 0, releases its
 * peer ID and swarms at once, and queues it for closing at the end of the loop iteration. Safe to
 * call more than once and from inside c's own callbacks. */
void conn_close(server_t *s, conn_t *c, uint16_t ws_code, const char *bye_reason);

/* Handles c's parked message again now that its answer is in (c was on s->resume), then the
 * input that waited behind it. */
void conn_resume(server_t *s, conn_t *c);

/* Frees a connection (socket closed, unlinked from every list). Only the loop calls this, at
 * the end of an iteration. */
void conn_destroy(server_t *s, conn_t *c);

#endif
