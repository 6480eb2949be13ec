/* st.h: the ST dialect ({"type":...} messages): ola, announce, offer/answer/candidate relay,
 * scrape, ping. See docs/protocol.md. Event-loop thread only. */
#ifndef SIG_PROTO_ST_H
#define SIG_PROTO_ST_H

#include <stddef.h>
#include <stdint.h>

#include "hub/ctx.h"

/* ST peer IDs: 1 to ST_MAX_PEER_ID characters of A-Za-z0-9._~- */
#define ST_MAX_PEER_ID 64

/* Returns 1 when id[0..n) is a valid ST peer ID. */
int st_peer_id_valid(const char *id, size_t n);

/* Handles one ST message whose tokens are in s->toks (token 0 is the object). */
void st_handle(server_t *s, conn_t *c, const char *src, int ntoks);

/* Queues {"type":"error","code":code,"message":message[,"ref":ref]} on c. ref may be NULL. The
 * message is counted as refused under code (proto_refused). */
void st_error(server_t *s, conn_t *c, const char *code, const char *message, const char *ref);

/* Queues {"type":"error","code":"torrent_not_allowed","message":why,"ref":ref,"info_hash":hex}
 * on c: the access list refuses that infohash. info_hash may be NULL (left out). Counts nothing:
 * a reload's notice uses it too, so the handlers count their refusals themselves. */
void st_refused(server_t *s, conn_t *c, const char *ref, const uint8_t *info_hash, const char *why);

/* What a rate_limited error refers to, so the client can tell which request to retry. Every
 * field may be NULL. */
typedef struct st_limited {
    const char *ref; /* the request type */
    const char *to;  /* a signal's recipient */
    size_t to_len;
    const uint8_t *info_hash; /* 20 bytes */
} st_limited_t;

/* Queues {"type":"error","code":"rate_limited",...,"retry_after_ms":N} on c and counts the
 * refusal by kind (enum rl_kind). */
void st_rate_limited(server_t *s, conn_t *c, int kind, const st_limited_t *what, uint32_t retry_ms,
                     const char *message);

/* Queues {"type":"bye","reason":reason} on c, even over a full output queue. */
void st_bye(server_t *s, conn_t *c, const char *reason);

#endif
