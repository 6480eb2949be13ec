/* out.c: a connection's output queue (see out.h). */
#include "hub/out.h"

#include <string.h>

#include "ws/frame.h"

/* Bytes reserved for a frame header before its payload is known; trimmed in out_end. */
#define OUT_HEADER_ROOM 10
/* Payload bytes reserved up front, so a typical answer needs no second reallocation. */
#define OUT_PAYLOAD_HINT 256

void out_queue_flush(server_t *s, conn_t *c) {
    if (!(c->flags & CF_FLUSH_QUEUED)) {
        c->flags |= CF_FLUSH_QUEUED;
        c->next_flush = s->flush_list;
        s->flush_list = c;
    }
}

size_t out_begin(conn_t *c) {
    size_t off = c->out.len;
    buf_reserve(&c->out, OUT_HEADER_ROOM + OUT_PAYLOAD_HINT);
    c->out.len += OUT_HEADER_ROOM;
    return off;
}

void out_end(server_t *s, conn_t *c, size_t off, int opcode) {
    size_t plen = c->out.len - off - OUT_HEADER_ROOM;
    uint8_t hdr[OUT_HEADER_ROOM];
    size_t hl = ws_frame_header(hdr, opcode, plen);
    uint8_t *base = c->out.data + off;
    if (hl < OUT_HEADER_ROOM)
        memmove(base + hl, base + OUT_HEADER_ROOM, plen);
    memcpy(base, hdr, hl);
    c->out.len -= (uint32_t)(OUT_HEADER_ROOM - hl);
    if (opcode == WS_OP_TEXT || opcode == WS_OP_BINARY)
        s->count.messages_out++;
    out_queue_flush(s, c);
}

void out_msg_end(server_t *s, conn_t *c, size_t off, int type) {
    out_end(s, c, off, WS_OP_TEXT);
    s->count.msg_out[type]++;
}

void out_text(server_t *s, conn_t *c, const void *p, size_t n) {
    size_t off = out_begin(c);
    buf_append(&c->out, p, n);
    out_msg_end(s, c, off, MSG_SIGNAL);
}

int out_can_send(server_t *s, conn_t *c) {
    if (c->state != CONN_WS)
        return 0;
    if (c->out.len >= s->cfg.max_outbuf) {
        s->count.dropped++;
        if (c->stuck_since == 0)
            c->stuck_since = s->now ? s->now : 1;
        return 0;
    }
    return 1;
}
