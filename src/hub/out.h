/* out.h: writing frames to a connection's own output queue. Frames are appended to c->out and
 * the connection is queued on the flush list, so whatever number of frames a loop iteration
 * queues, the connection costs one send() at the end of it (server_end_iteration).
 * Event-loop thread only. */
#ifndef SIG_HUB_OUT_H
#define SIG_HUB_OUT_H

#include <stddef.h>

#include "hub/ctx.h"

/* Starts a server-to-client frame in c's output queue; write the payload into c->out, then call
 * out_end with the returned offset. */
size_t out_begin(conn_t *c);

/* Finishes the frame started at off with the given opcode and queues c for flushing. */
void out_end(server_t *s, conn_t *c, size_t off, int opcode);

/* Finishes the text message started at off, counting it as a message of the given kind (enum
 * msg_type, for the metrics), and queues c for flushing. */
void out_msg_end(server_t *s, conn_t *c, size_t off, int type);

/* Appends a whole text frame holding p[0..n), a signal relayed from another peer, and queues c
 * for flushing. */
void out_text(server_t *s, conn_t *c, const void *p, size_t n);

/* Returns 1 when a message may be queued on c; 0 when c is not an open WebSocket or its output
 * queue is over --max-outbuf (the message is then dropped and counted; a queue that stays full
 * for --stuck-timeout gets the connection closed). */
int out_can_send(server_t *s, conn_t *c);

/* Queues c on the flush list (once). */
void out_queue_flush(server_t *s, conn_t *c);

#endif
