/* home.c: the GET / page and the start-up line. The page is built from a table of endpoints
 * and escaped as it is written, so a row added later (a dashboard) cannot break it. */
#include "server/home.h"

#include <stdio.h>
#include <string.h>

#include "core/log.h"

typedef struct home_endpoint {
    const char *path;
    const char *what;
    int monitoring; /* served only where monitoring is (--admin-listen, --public-metrics) */
} home_endpoint_t;

/* The HTTP endpoints, in the order the page lists them. */
static const home_endpoint_t endpoints[] = {
    {"/health", "liveness: 200 ok, or 503 while a cluster node cannot reach Redis", 0},
    {"/dashboard", "live dashboard: connections, peers, messages, the largest swarms", 1},
    {"/metrics", "Prometheus metrics (text format 0.0.4)", 1},
    {"/stats.json", "counters and gauges as one JSON object", 1},
};

/* Appends text with &, <, >, " and ' escaped for HTML. */
static void html(buf_t *b, const char *text) {
    for (const char *p = text; *p; p++) {
        const char *e = *p == '&'    ? "&amp;"
                        : *p == '<'  ? "&lt;"
                        : *p == '>'  ? "&gt;"
                        : *p == '"'  ? "&quot;"
                        : *p == '\'' ? "&#39;"
                                     : NULL;
        if (e != NULL)
            buf_append(b, e, strlen(e));
        else
            buf_append(b, p, 1);
    }
}

static void lit(buf_t *b, const char *text) {
    buf_append(b, text, strlen(text));
}

void home_write_html(const server_t *s, int monitoring, buf_t *b) {
    (void)s;
    lit(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
           "<title>sigtracker</title></head>\n<body>\n<h1>sigtracker ");
    html(b, SIGTRACKER_VERSION);
    lit(b, "</h1>\n<p>A WebSocket signaling tracker (ST dialect and the WebTorrent tracker "
           "protocol). Connect WebSocket clients to this address with ws:// (or wss:// on a TLS "
           "listener).</p>\n<ul>\n");
    for (size_t i = 0; i < sizeof(endpoints) / sizeof(endpoints[0]); i++) {
        if (endpoints[i].monitoring && !monitoring)
            continue;
        lit(b, "<li><a href=\"");
        html(b, endpoints[i].path);
        lit(b, "\">");
        html(b, endpoints[i].path);
        lit(b, "</a>: ");
        html(b, endpoints[i].what);
        lit(b, "</li>\n");
    }
    lit(b, "</ul>\n</body></html>\n");
}

void home_base_url(const char *scheme, const char *host, unsigned port, char *base, size_t len) {
    const char *h = host;
    if (h[0] == '\0' || strcmp(h, "0.0.0.0") == 0 || strcmp(h, "::") == 0)
        h = "localhost";
    int v6 = strchr(h, ':') != NULL;
    snprintf(base, len, "%s://%s%s%s:%u", scheme, v6 ? "[" : "", h, v6 ? "]" : "", port);
}

void home_log_start(const server_t *s) {
    char ws[CONFIG_HOST_BYTES + 32], http[CONFIG_HOST_BYTES + 32];
    char health[sizeof(http) + 16], stats[sizeof(http) + 16], metrics[sizeof(http) + 16],
        dash[sizeof(http) + 16];
    home_base_url("ws", s->cfg.host, s->cfg.port, ws, sizeof(ws));
    strcat(ws, "/");
    home_base_url("http", s->cfg.host, s->cfg.port, http, sizeof(http));
    snprintf(health, sizeof(health), "%s/health", http);
    snprintf(stats, sizeof(stats), "%s/stats.json", http);
    /* /metrics and /dashboard are named here for the operator's sake; GET / links only what
     * this listener serves (the table above). */
    snprintf(metrics, sizeof(metrics), "%s/metrics", http);
    snprintf(dash, sizeof(dash), "%s/dashboard", http);
    char msg[64];
    snprintf(msg, sizeof(msg), "sigtracker %s started", SIGTRACKER_VERSION);
    logfmt_field_t f[] = {
        LOGFMT_S("version", SIGTRACKER_VERSION),
        LOGFMT_S("ws", ws),
        LOGFMT_S("health", health),
        LOGFMT_S("stats", stats),
        LOGFMT_S("metrics", metrics),
        LOGFMT_S("dashboard", dash),
    };
    log_event(LOG_INFO, msg, f, sizeof(f) / sizeof(f[0]));
}
