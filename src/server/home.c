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
    /* The first listener of each scheme gives the WebSocket URLs; monitoring is on the admin
     * listener when there is one, else on the first listener (https when that one is wss). */
    char ws[CONFIG_HOST_BYTES + 32] = "", wss[CONFIG_HOST_BYTES + 32] = "";
    char http[CONFIG_HOST_BYTES + 32] = "", mon[CONFIG_HOST_BYTES + 32] = "";
    for (uint32_t i = 0; i < s->cfg.nlisteners; i++) {
        const config_listener_t *l = &s->cfg.listeners[i];
        int tls = l->scheme == CONFIG_WSS;
        char *dst = tls ? wss : ws;
        if (dst[0] == '\0') {
            home_base_url(tls ? "wss" : "ws", l->host, l->port, dst, sizeof(ws));
            strcat(dst, "/");
        }
        if (http[0] == '\0')
            home_base_url(tls ? "https" : "http", l->host, l->port, http, sizeof(http));
    }
    snprintf(mon, sizeof(mon), "%s", http);
    if (s->cfg.admin_listen[0] != '\0') {
        config_listener_t a;
        const char *why = NULL;
        char url[sizeof(s->cfg.admin_listen) + 8];
        snprintf(url, sizeof(url), "ws://%s", s->cfg.admin_listen);
        if (config_listen_parse(url, &a, &why) == 0)
            home_base_url("http", a.host, a.port, mon, sizeof(mon));
    }
    char health[sizeof(http) + 16], stats[sizeof(mon) + 16], metrics[sizeof(mon) + 16],
        dash[sizeof(mon) + 16];
    snprintf(health, sizeof(health), "%s/health", http);
    snprintf(stats, sizeof(stats), "%s/stats.json", mon);
    snprintf(metrics, sizeof(metrics), "%s/metrics", mon);
    snprintf(dash, sizeof(dash), "%s/dashboard", mon);
    char msg[64];
    snprintf(msg, sizeof(msg), "sigtracker %s started", SIGTRACKER_VERSION);
    logfmt_field_t f[7];
    size_t n = 0;
    f[n++] = LOGFMT_S("version", SIGTRACKER_VERSION);
    if (ws[0])
        f[n++] = LOGFMT_S("ws", ws);
    if (wss[0])
        f[n++] = LOGFMT_S("wss", wss);
    f[n++] = LOGFMT_S("health", health);
    if ((s->cfg.admin_listen[0] != '\0') || s->cfg.public_metrics) {
        f[n++] = LOGFMT_S("stats", stats);
        f[n++] = LOGFMT_S("metrics", metrics);
        f[n++] = LOGFMT_S("dashboard", dash);
    }
    log_event(LOG_INFO, msg, f, n);
}
