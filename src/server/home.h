/* home.h: what a newcomer is shown: the page at GET / and the start-up line naming the URLs.
 * Both read one table of HTTP endpoints (home.c), so a new endpoint is one row. */
#ifndef SIG_SERVER_HOME_H
#define SIG_SERVER_HOME_H

#include <stddef.h>

#include "core/buf.h"
#include "hub/ctx.h"

/* Appends the GET / page: a small HTML document naming the WebSocket endpoint and linking every
 * HTTP endpoint this listener serves (`monitoring`: whether /stats.json, /metrics and /dashboard
 * are served on it). No external assets. Event-loop thread. */
void home_write_html(const server_t *s, int monitoring, buf_t *b);

/* Writes base, the URL prefix for this listener as a client would type it ("http://HOST:PORT",
 * with a wildcard address shown as localhost and an IPv6 literal in brackets), for scheme
 * "http" or "ws" (or their TLS forms). Pure. */
void home_base_url(const char *scheme, const char *host, unsigned port, char *base, size_t len);

/* Logs the start-up line at info: the version and the URLs to use (WebSocket, /health,
 * /stats.json, /metrics, /dashboard). */
void home_log_start(const server_t *s);

#endif
