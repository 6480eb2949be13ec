/* config.c: defaults, command-line parsing and --help, all driven by one option table. */
#include "config/config.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

enum opt_kind { OPT_U32, OPT_STR, OPT_FLAG, OPT_LEVEL };

typedef struct opt {
    const char *name; /* flag without the leading dashes */
    enum opt_kind kind;
    size_t offset;     /* into config_t */
    size_t size;       /* for strings: buffer size */
    uint32_t min, max; /* for numbers: accepted range */
    const char *unit;
    const char *help;
} opt_t;

#define U32(field, lo, hi, unit, help)                                                             \
    { #field, OPT_U32, offsetof(config_t, field), 0, lo, hi, unit, help }

static const opt_t opts[] = {
    {"host", OPT_STR, offsetof(config_t, host), sizeof(((config_t *)0)->host), 0, 0, "address",
     "address to listen on (IPv4 or IPv6 literal)"},
    {"port", OPT_U32, offsetof(config_t, port), 0, 1, 65535, "port",
     "TCP port for WebSocket and HTTP"},
    {"db", OPT_STR, offsetof(config_t, db_path), sizeof(((config_t *)0)->db_path), 0, 0, "path",
     "SQLite database file (created on first start)"},
    {"log-level", OPT_LEVEL, offsetof(config_t, log_level), 0, 0, 0, "level",
     "debug, info, warn, error or off"},
    {"interval", OPT_U32, offsetof(config_t, interval), 0, 1, 86400, "s",
     "announce interval told to peers"},
    {"min-interval", OPT_U32, offsetof(config_t, min_interval), 0, 0, 86400, "s",
     "regular announces to one swarm faster than this are refused"},
    {"peer-timeout", OPT_U32, offsetof(config_t, peer_timeout), 0, 1, 86400, "s",
     "a peer leaves a swarm it has not announced to for this long"},
    {"max-numwant", OPT_U32, offsetof(config_t, max_numwant), 0, 1, 100, "peers",
     "most peers in one ST announce answer"},
    {"default-numwant", OPT_U32, offsetof(config_t, default_numwant), 0, 0, 100, "peers",
     "peers in an ST announce answer when num_want is absent"},
    {"max-offers", OPT_U32, offsetof(config_t, max_offers), 0, 0, 100, "offers",
     "WebTorrent offers relayed per announce, whatever numwant says"},
    {"offer-ttl", OPT_U32, offsetof(config_t, offer_ttl), 0, 1, 3600, "s",
     "an answer is relayed only this long after its offer"},
    {"max-scrape", OPT_U32, offsetof(config_t, max_scrape), 0, 1, 10000, "infohashes",
     "infohashes in one scrape request"},
    {"db-flush", OPT_U32, offsetof(config_t, db_flush), 0, 1, 3600, "s",
     "seconds between database write batches (a crash loses at most one)"},
    {"ping-interval", OPT_U32, offsetof(config_t, ping_interval), 0, 1, 3600, "s",
     "silence after which the server sends a WebSocket ping"},
    {"ping-timeout", OPT_U32, offsetof(config_t, ping_timeout), 0, 1, 3600, "s",
     "time a peer has to answer a ping before it is disconnected"},
    {"handshake-timeout", OPT_U32, offsetof(config_t, handshake_timeout), 0, 1, 600, "s",
     "time to complete the HTTP upgrade (slowloris defence)"},
    {"idle-timeout", OPT_U32, offsetof(config_t, idle_timeout), 0, 0, 86400, "s",
     "close a connection that sends no message for this long (0 = never)"},
    {"max-frame", OPT_U32, offsetof(config_t, max_frame), 0, 125, 16777216, "bytes",
     "largest WebSocket frame payload"},
    {"max-message", OPT_U32, offsetof(config_t, max_message), 0, 125, 16777216, "bytes",
     "largest reassembled WebSocket message"},
    {"max-json-depth", OPT_U32, offsetof(config_t, max_json_depth), 0, 2, 64, "levels",
     "deepest JSON nesting accepted"},
    {"max-connections", OPT_U32, offsetof(config_t, max_connections), 0, 0, 10000000, "conns",
     "global connection cap (0 = what the fd limit allows)"},
    {"max-per-ip", OPT_U32, offsetof(config_t, max_per_ip), 0, 0, 10000000, "conns",
     "connections per client address (0 = unlimited)"},
    {"max-swarms", OPT_U32, offsetof(config_t, max_swarms), 0, 1, 100000, "swarms",
     "swarms one connection may be in"},
    {"max-outbuf", OPT_U32, offsetof(config_t, max_outbuf), 0, 1024, 1073741824, "bytes",
     "output queued for one slow reader; beyond it messages are dropped"},
    {"stuck-timeout", OPT_U32, offsetof(config_t, stuck_timeout), 0, 1, 3600, "s",
     "close a connection whose output queue stays full this long"},
    {"msg-rate", OPT_U32, offsetof(config_t, msg_rate), 0, 1, 1000000, "msg/s",
     "messages per second one connection may send (token bucket refill)"},
    {"msg-burst", OPT_U32, offsetof(config_t, msg_burst), 0, 1, 1000000, "msgs",
     "message bucket size"},
    {"signal-rate", OPT_U32, offsetof(config_t, signal_rate), 0, 1, 1000000, "sig/s",
     "signals (offers, answers, candidates) per second one peer may send"},
    {"signal-burst", OPT_U32, offsetof(config_t, signal_burst), 0, 1, 1000000, "sigs",
     "sent-signal bucket size"},
    {"recv-rate", OPT_U32, offsetof(config_t, recv_rate), 0, 1, 1000000, "sig/s",
     "signals per second one peer may receive"},
    {"recv-burst", OPT_U32, offsetof(config_t, recv_burst), 0, 1, 1000000, "sigs",
     "received-signal bucket size"},
    {"shed-high", OPT_U32, offsetof(config_t, shed_high), 0, 0, 10000000, "conns",
     "above this many connections, surplus seeders are shed (0 = 90% of the cap)"},
    {"shed-low", OPT_U32, offsetof(config_t, shed_low), 0, 0, 10000000, "conns",
     "shedding stops at this many connections (0 = 80% of the cap)"},
    {"shed-ratio", OPT_U32, offsetof(config_t, shed_ratio), 0, 1, 1000000, "seeders/leecher",
     "a swarm with more seeders per leecher than this has surplus seeders"},
    {"shed-min-seeders", OPT_U32, offsetof(config_t, shed_min_seeders), 0, 0, 1000000, "seeders",
     "seeders a swarm keeps whatever the ratio"},
    {"allow-origin", OPT_STR, offsetof(config_t, origins), sizeof(((config_t *)0)->origins), 0, 0,
     "list", "comma-separated Origin allow-list for upgrades (empty = any origin)"},
    {"trusted-proxy", OPT_STR, offsetof(config_t, trusted_proxies),
     sizeof(((config_t *)0)->trusted_proxies), 0, 0, "list",
     "comma-separated proxy addresses whose X-Forwarded-For is believed"},
    {"cluster", OPT_STR, offsetof(config_t, cluster), sizeof(((config_t *)0)->cluster), 0, 0, "url",
     "join the cluster held by this Redis: redis://HOST:PORT or unix:/path/redis.sock"},
    {"node-timeout", OPT_U32, offsetof(config_t, node_timeout), 0, 2, 3600, "s",
     "cluster: a node silent this long is dead; its peers leave and its IDs are free"},
    {"reuse-port", OPT_FLAG, offsetof(config_t, reuse_port), 0, 0, 0, "",
     "listen with SO_REUSEPORT, so several nodes on this machine share one port"},
    {"tls-cert", OPT_STR, offsetof(config_t, tls_cert), sizeof(((config_t *)0)->tls_cert), 0, 0,
     "path", "PEM certificate chain (leaf first) for wss:// listeners; reloaded on SIGHUP"},
    {"tls-key", OPT_STR, offsetof(config_t, tls_key), sizeof(((config_t *)0)->tls_key), 0, 0,
     "path", "PEM private key of --tls-cert; reloaded on SIGHUP"},
    {"test-drop-offers", OPT_FLAG, offsetof(config_t, test_drop_offers), 0, 0, 0, "",
     "TESTS ONLY: answer WebTorrent announces but never relay offers"},
};

void config_defaults(config_t *c) {
    memset(c, 0, sizeof(*c));
    strcpy(c->host, "0.0.0.0");
    c->port = 8000;
    strcpy(c->db_path, "./sigtracker.db");
    c->log_level = LOG_INFO;
    c->interval = 120;
    c->min_interval = 20;
    c->peer_timeout = 200;
    c->max_numwant = 50;
    c->default_numwant = 20;
    c->max_offers = 10;
    c->offer_ttl = 120;
    c->max_scrape = 100;
    c->db_flush = 5;
    c->ping_interval = 30;
    c->ping_timeout = 30;
    c->handshake_timeout = 10;
    c->idle_timeout = 300;
    c->max_frame = 65536;
    c->max_message = 65536;
    c->max_json_depth = 16;
    c->max_connections = 0;
    c->max_per_ip = 1024;
    c->max_swarms = 256;
    c->max_outbuf = 262144;
    c->stuck_timeout = 10;
    c->msg_rate = 50;
    c->msg_burst = 200;
    c->signal_rate = 50;
    c->signal_burst = 200;
    c->recv_rate = 100;
    c->recv_burst = 400;
    c->shed_high = 0;
    c->shed_low = 0;
    c->shed_ratio = 4;
    c->shed_min_seeders = 3;
    c->node_timeout = 15;
}

static const char *level_names[] = {"debug", "info", "warn", "error", "off"};

void config_usage(FILE *out) {
    config_t d;
    config_defaults(&d);
    fprintf(out, "usage: sigtracker [options]\n\n"
                 "WebSocket signaling and WebTorrent tracker server.\n"
                 "HTTP on the same port: GET /health, GET /stats.json.\n\n"
                 "options:\n");
    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
        const opt_t *o = &opts[i];
        const char *p = (const char *)&d + o->offset;
        char arg[64] = "";
        char def[128] = "";
        switch (o->kind) {
        case OPT_U32:
            snprintf(arg, sizeof(arg), " <%s>", o->unit);
            snprintf(def, sizeof(def), " (default %u)", *(const uint32_t *)(const void *)p);
            break;
        case OPT_STR:
            snprintf(arg, sizeof(arg), " <%s>", o->unit);
            snprintf(def, sizeof(def), " (default \"%s\")", p);
            break;
        case OPT_LEVEL:
            snprintf(arg, sizeof(arg), " <%s>", o->unit);
            snprintf(def, sizeof(def), " (default %s)", level_names[*(const int *)(const void *)p]);
            break;
        case OPT_FLAG:
            break;
        }
        char left[96];
        snprintf(left, sizeof(left), "--%s%s", o->name, arg);
        fprintf(out, "  %-32s %s%s\n", left, o->help, def);
    }
    fprintf(out, "  %-32s %s\n", "--listen <ws|wss://host:port>",
            "listen here (repeatable, at most 8; IPv6 as [::1]); without it, --host and --port "
            "give one ws:// listener; wss:// needs --tls-cert and --tls-key");
    fprintf(out, "  %-32s %s\n", "--help", "print this text and exit");
    fprintf(out, "  %-32s %s\n", "--version", "print the version and exit");
}

static int set(config_t *c, const opt_t *o, const char *val) {
    char *p = (char *)c + o->offset;
    switch (o->kind) {
    case OPT_U32: {
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(val, &end, 10);
        if (errno || end == val || *end != '\0' || val[0] == '-' || v < o->min || v > o->max) {
            fprintf(stderr,
                    "sigtracker: --%s wants a whole number from %u to %u (%s), not \"%s\"\n",
                    o->name, o->min, o->max, o->unit, val);
            return -EINVAL;
        }
        *(uint32_t *)(void *)p = (uint32_t)v;
        return 0;
    }
    case OPT_STR:
        if (strlen(val) >= o->size) {
            fprintf(stderr, "sigtracker: --%s is longer than %zu bytes\n", o->name, o->size - 1);
            return -EINVAL;
        }
        strcpy(p, val);
        return 0;
    case OPT_LEVEL: {
        int lv = log_level_parse(val);
        if (lv < 0) {
            fprintf(stderr, "sigtracker: --%s wants debug, info, warn, error or off, not \"%s\"\n",
                    o->name, val);
            return -EINVAL;
        }
        *(int *)(void *)p = lv;
        return 0;
    }
    case OPT_FLAG:
        *(int *)(void *)p = 1;
        return 0;
    }
    return -EINVAL;
}

/* ---- listeners and TLS: --listen (repeatable), checked with --tls-cert and --tls-key ----------
 */

int config_parse_listen(const char *val, config_listen_t *l, char *err, size_t errlen) {
    memset(l, 0, sizeof(*l));
    const char *p;
    if (strncmp(val, "ws://", 5) == 0) {
        l->scheme = CONFIG_SCHEME_WS;
        p = val + 5;
    } else if (strncmp(val, "wss://", 6) == 0) {
        l->scheme = CONFIG_SCHEME_WSS;
        p = val + 6;
    } else {
        snprintf(err, errlen, "--listen wants ws://HOST:PORT or wss://HOST:PORT, not \"%s\"", val);
        return -EINVAL;
    }
    const char *host = p, *host_end, *colon;
    if (*p == '[') {
        host = p + 1;
        host_end = strchr(host, ']');
        if (host_end == NULL || host_end[1] != ':') {
            snprintf(err, errlen, "--listen \"%s\": an IPv6 host is written [ADDR]:PORT", val);
            return -EINVAL;
        }
        colon = host_end + 1;
    } else {
        colon = strrchr(p, ':');
        host_end = colon;
    }
    if (colon == NULL || host_end == host || (size_t)(host_end - host) >= sizeof(l->host)) {
        snprintf(err, errlen, "--listen \"%s\": expected HOST:PORT after the scheme", val);
        return -EINVAL;
    }
    char *end = NULL;
    errno = 0;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (errno || end == colon + 1 || (*end != '\0' && strcmp(end, "/") != 0) || port < 1 ||
        port > 65535) {
        snprintf(err, errlen, "--listen \"%s\": the port must be 1 to 65535", val);
        return -EINVAL;
    }
    memcpy(l->host, host, (size_t)(host_end - host));
    l->port = (uint32_t)port;
    return 0;
}

int config_has_tls(const config_t *c) {
    for (uint32_t i = 0; i < c->nlisten; i++)
        if (c->listen[i].scheme == CONFIG_SCHEME_WSS)
            return 1;
    return 0;
}

/* Handles argv[*i], which is --listen or --listen=VALUE. Returns 0 or -EINVAL (printed). */
static int parse_listen_arg(config_t *c, const char *a, int argc, char **argv, int *i) {
    const char *val = NULL;
    if (a[8] == '=')
        val = a + 9;
    else if (*i + 1 < argc)
        val = argv[++*i];
    if (val == NULL) {
        fprintf(stderr, "sigtracker: --listen needs a value (see --help)\n");
        return -EINVAL;
    }
    if (c->nlisten >= CONFIG_MAX_LISTENERS) {
        fprintf(stderr, "sigtracker: at most %d --listen are accepted\n", CONFIG_MAX_LISTENERS);
        return -EINVAL;
    }
    char err[512];
    if (config_parse_listen(val, &c->listen[c->nlisten], err, sizeof(err)) != 0) {
        fprintf(stderr, "sigtracker: %s\n", err);
        return -EINVAL;
    }
    c->nlisten++;
    return 0;
}

/* Without --listen, --host and --port make the one ws listener; a wss listener needs both the
 * certificate and the key. Returns 0 or -EINVAL (printed). */
static int finish_listeners(config_t *c) {
    if (c->nlisten == 0) {
        c->listen[0].scheme = CONFIG_SCHEME_WS;
        snprintf(c->listen[0].host, sizeof(c->listen[0].host), "%s", c->host);
        c->listen[0].port = c->port;
        c->nlisten = 1;
    }
    if (config_has_tls(c) && (c->tls_cert[0] == '\0' || c->tls_key[0] == '\0')) {
        fprintf(stderr, "sigtracker: a wss:// listener needs both --tls-cert and --tls-key\n");
        return -EINVAL;
    }
    return 0;
}

int config_parse(config_t *c, int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            config_usage(stdout);
            return 1;
        }
        if (strcmp(a, "--version") == 0) {
            printf("sigtracker 0.1.0\n");
            return 1;
        }
        if (strncmp(a, "--", 2) != 0) {
            fprintf(stderr, "sigtracker: unexpected argument \"%s\" (see --help)\n", a);
            return -EINVAL;
        }
        if (strncmp(a, "--listen", 8) == 0 && (a[8] == '\0' || a[8] == '=')) {
            int rc = parse_listen_arg(c, a, argc, argv, &i);
            if (rc != 0)
                return rc;
            continue;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const opt_t *o = NULL;
        for (size_t k = 0; k < sizeof(opts) / sizeof(opts[0]); k++)
            if (strlen(opts[k].name) == nlen && strncmp(opts[k].name, name, nlen) == 0)
                o = &opts[k];
        if (o == NULL) {
            fprintf(stderr, "sigtracker: unknown option \"%s\" (see --help)\n", a);
            return -EINVAL;
        }
        const char *val = NULL;
        if (o->kind == OPT_FLAG) {
            if (eq) {
                fprintf(stderr, "sigtracker: --%s takes no value\n", o->name);
                return -EINVAL;
            }
        } else if (eq) {
            val = eq + 1;
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            fprintf(stderr, "sigtracker: --%s needs a value (see --help)\n", o->name);
            return -EINVAL;
        }
        if (set(c, o, val) != 0)
            return -EINVAL;
    }
    if (finish_listeners(c) != 0)
        return -EINVAL;
    if (c->min_interval > c->interval) {
        fprintf(stderr, "sigtracker: --min-interval (%u) must not exceed --interval (%u)\n",
                c->min_interval, c->interval);
        return -EINVAL;
    }
    if (c->default_numwant > c->max_numwant)
        c->default_numwant = c->max_numwant;
    return 0;
}
