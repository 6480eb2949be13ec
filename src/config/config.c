/* config.c: defaults, the command line, the configuration file, --help, --print-config and what a
 * reload may change, all driven by one option table. */
#include "config/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/ini.h"
#include "core/alloc.h"
#include "core/log.h"

enum opt_kind {
    OPT_U32,    /* a whole number in [min, max] */
    OPT_STR,    /* text of at most size - 1 bytes, no control characters */
    OPT_BOOL,   /* a bare flag on the command line (--no-NAME turns it off); true/false in files */
    OPT_LEVEL,  /* a log level name */
    OPT_FORMAT, /* a log line format name (core/logfmt.h) */
    OPT_LISTEN, /* a listener URL; repeatable */
    OPT_ACTION, /* --check-config, --print-config: command line only, no value */
};

enum opt_flag {
    OPTF_RESTART = 1 << 0, /* a reload keeps the running value: the change needs a restart */
    OPTF_CLI = 1 << 1,     /* command line only: not a key of the file, not printed */
};

/* Sections of the file, in the order --print-config writes them; also --help's headings. */
enum group {
    G_NONE, /* command-line-only options */
    G_NETWORK,
    G_TLS,
    G_LOGGING,
    G_DATABASE,
    G_TRACKER,
    G_ACCESS,
    G_LIVENESS,
    G_LIMITS,
    G_SHEDDING,
    G_CLUSTER,
    G_TESTING,
    G_COUNT
};

static const char *const group_names[G_COUNT] = {
    "configuration", "network",  "tls",    "logging",  "database", "tracker",
    "access",        "liveness", "limits", "shedding", "cluster",  "testing",
};

typedef struct opt {
    const char *name;  /* flag without the leading dashes, and the file's key */
    uint8_t kind;      /* enum opt_kind */
    uint8_t group;     /* enum group */
    uint8_t flags;     /* enum opt_flag */
    size_t offset;     /* into config_t */
    size_t size;       /* bytes of the field (for strings: the buffer) */
    uint32_t min, max; /* for numbers: the accepted range */
    const char *unit;
    const char *help;
} opt_t;

#define FIELD(f) offsetof(config_t, f), sizeof(((config_t *)0)->f)
#define U32(name, group, flags, field, lo, hi, unit, help)                                         \
    { name, OPT_U32, group, flags, FIELD(field), lo, hi, unit, help }
#define STR(name, group, flags, field, unit, help)                                                 \
    { name, OPT_STR, group, flags, FIELD(field), 0, 0, unit, help }
#define BOOL(name, group, flags, field, help)                                                      \
    { name, OPT_BOOL, group, flags, FIELD(field), 0, 0, "", help }

static const opt_t opts[] = {
    STR("config", G_NONE, OPTF_CLI, config_file, "path",
        "read options from this INI file first; flags given here override it"),
    {"check-config", OPT_ACTION, G_NONE, OPTF_CLI, 0, 0, 0, 0, "",
     "check the configuration (file, flags, access list), say so and exit (0 valid, 2 not)"},
    {"print-config", OPT_ACTION, G_NONE, OPTF_CLI, 0, 0, 0, 0, "",
     "print the effective configuration as an annotated file and exit"},

    STR("host", G_NETWORK, OPTF_RESTART, host, "address",
        "address to listen on (IPv4 or IPv6 literal)"),
    U32("port", G_NETWORK, OPTF_RESTART, port, 1, 65535, "port", "TCP port for WebSocket and HTTP"),
    {"listen", OPT_LISTEN, G_NETWORK, OPTF_RESTART, FIELD(listeners), 0, 0, "url",
     "listen on ws://HOST:PORT or wss://HOST:PORT ([::1]:PORT for IPv6); repeatable"},
    BOOL("reuse-port", G_NETWORK, OPTF_RESTART, reuse_port,
         "listen with SO_REUSEPORT, so several nodes on this machine share one port"),
    STR("admin-listen", G_NETWORK, OPTF_RESTART, admin_listen, "host:port",
        "private plain-HTTP listener for /metrics, /stats.json, /health and /dashboard "
        "(e.g. 127.0.0.1:9100; [::1]:9100)"),
    BOOL("public-metrics", G_NETWORK, 0, public_metrics,
         "serve /metrics, /stats.json and /dashboard on the public port too (default: true "
         "without admin-listen, false with it)"),

    STR("tls-cert", G_TLS, 0, tls_cert, "path",
        "PEM certificate chain for wss:// listeners (reread on reload)"),
    STR("tls-key", G_TLS, 0, tls_key, "path",
        "PEM private key for wss:// listeners (reread on reload)"),

    {"log-level", OPT_LEVEL, G_LOGGING, 0, FIELD(log_level), 0, 0, "level",
     "debug, info, warn, error or off"},
    {"log-format", OPT_FORMAT, G_LOGGING, 0, FIELD(log_format), 0, 0, "format",
     "text (logfmt: key=value pairs) or json (one JSON object a line)"},
    U32("log-summary", G_LOGGING, 0, log_summary, 0, 86400, "s",
        "seconds between one-line activity summaries at info (0 = none)"),

    STR("db", G_DATABASE, OPTF_RESTART, db_path, "path",
        "SQLite database file (created on first start)"),
    U32("db-flush", G_DATABASE, 0, db_flush, 1, 3600, "s",
        "seconds between database write batches (a crash loses at most one)"),

    U32("interval", G_TRACKER, 0, interval, 1, 86400, "s", "announce interval told to peers"),
    U32("min-interval", G_TRACKER, 0, min_interval, 0, 86400, "s",
        "regular announces to one swarm faster than this are refused"),
    U32("peer-timeout", G_TRACKER, 0, peer_timeout, 1, 86400, "s",
        "a peer leaves a swarm it has not announced to for this long"),
    U32("max-numwant", G_TRACKER, 0, max_numwant, 1, 100, "peers",
        "most peers in one ST announce answer"),
    U32("default-numwant", G_TRACKER, 0, default_numwant, 0, 100, "peers",
        "peers in an ST announce answer when num_want is absent"),
    U32("max-offers", G_TRACKER, 0, max_offers, 0, 100, "offers",
        "WebTorrent offers relayed per announce, whatever numwant says"),
    U32("offer-ttl", G_TRACKER, 0, offer_ttl, 1, 3600, "s",
        "an answer is relayed only this long after its offer"),
    U32("max-scrape", G_TRACKER, 0, max_scrape, 1, 10000, "infohashes",
        "infohashes in one scrape request"),

    STR("allowlist", G_ACCESS, 0, allowlist, "path",
        "track only the infohashes in this file (40 hex characters a line)"),
    STR("denylist", G_ACCESS, 0, denylist, "path",
        "track every infohash except those in this file (not with --allowlist)"),

    U32("ping-interval", G_LIVENESS, 0, ping_interval, 1, 3600, "s",
        "silence after which the server sends a WebSocket ping"),
    U32("ping-timeout", G_LIVENESS, 0, ping_timeout, 1, 3600, "s",
        "time a peer has to answer a ping before it is disconnected"),
    U32("handshake-timeout", G_LIVENESS, 0, handshake_timeout, 1, 600, "s",
        "time to complete the HTTP upgrade (slowloris defence)"),
    U32("idle-timeout", G_LIVENESS, 0, idle_timeout, 0, 86400, "s",
        "close a connection that sends no message for this long (0 = never)"),

    U32("max-frame", G_LIMITS, 0, max_frame, 125, 16777216, "bytes",
        "largest WebSocket frame payload"),
    U32("max-message", G_LIMITS, 0, max_message, 125, 16777216, "bytes",
        "largest reassembled WebSocket message"),
    U32("max-json-depth", G_LIMITS, 0, max_json_depth, 2, 64, "levels",
        "deepest JSON nesting accepted"),
    U32("max-connections", G_LIMITS, 0, max_connections, 0, 10000000, "conns",
        "global connection cap (0 = what the fd limit allows)"),
    U32("max-per-ip", G_LIMITS, 0, max_per_ip, 0, 10000000, "conns",
        "connections per client address (0 = unlimited)"),
    U32("max-swarms", G_LIMITS, 0, max_swarms, 1, 100000, "swarms",
        "swarms one connection may be in"),
    U32("max-outbuf", G_LIMITS, 0, max_outbuf, 1024, 1073741824, "bytes",
        "output queued for one slow reader; beyond it messages are dropped"),
    U32("stuck-timeout", G_LIMITS, 0, stuck_timeout, 1, 3600, "s",
        "close a connection whose output queue stays full this long"),
    U32("msg-rate", G_LIMITS, 0, msg_rate, 1, 1000000, "msg/s",
        "messages per second one connection may send (token bucket refill)"),
    U32("msg-burst", G_LIMITS, 0, msg_burst, 1, 1000000, "msgs", "message bucket size"),
    U32("signal-rate", G_LIMITS, 0, signal_rate, 1, 1000000, "sig/s",
        "signals (offers, answers, candidates) per second one peer may send"),
    U32("signal-burst", G_LIMITS, 0, signal_burst, 1, 1000000, "sigs", "sent-signal bucket size"),
    U32("recv-rate", G_LIMITS, 0, recv_rate, 1, 1000000, "sig/s",
        "signals per second one peer may receive"),
    U32("recv-burst", G_LIMITS, 0, recv_burst, 1, 1000000, "sigs", "received-signal bucket size"),
    STR("allow-origin", G_LIMITS, 0, origins, "list",
        "comma-separated Origin allow-list for upgrades (empty = any origin)"),
    STR("trusted-proxy", G_LIMITS, 0, trusted_proxies, "list",
        "comma-separated proxy addresses believed about the client (PROXY header, "
        "X-Forwarded-For)"),

    U32("shed-high", G_SHEDDING, 0, shed_high, 0, 10000000, "conns",
        "above this many connections, surplus seeders are shed (0 = 90% of the cap)"),
    U32("shed-low", G_SHEDDING, 0, shed_low, 0, 10000000, "conns",
        "shedding stops at this many connections (0 = 80% of the cap)"),
    U32("shed-ratio", G_SHEDDING, 0, shed_ratio, 1, 1000000, "seeders/leecher",
        "a swarm with more seeders per leecher than this has surplus seeders"),
    U32("shed-min-seeders", G_SHEDDING, 0, shed_min_seeders, 0, 1000000, "seeders",
        "seeders a swarm keeps whatever the ratio"),

    STR("cluster", G_CLUSTER, OPTF_RESTART, cluster, "url",
        "join the cluster held by this Redis: redis://HOST:PORT or unix:/path/redis.sock"),
    U32("node-timeout", G_CLUSTER, OPTF_RESTART, node_timeout, 2, 3600, "s",
        "cluster: a node silent this long is dead; its peers leave and its IDs are free"),

    BOOL("test-drop-offers", G_TESTING, 0, test_drop_offers,
         "TESTS ONLY: answer WebTorrent announces but never relay offers"),
};

#define NOPTS (sizeof(opts) / sizeof(opts[0]))

void config_defaults(config_t *c) {
    memset(c, 0, sizeof(*c));
    strcpy(c->host, "0.0.0.0");
    c->port = 8000;
    c->public_metrics = 1;
    strcpy(c->db_path, "./sigtracker.db");
    c->log_level = LOG_INFO;
    c->log_format = LOGFMT_TEXT;
    c->log_summary = 60;
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
    /* The one ws:// listener of host and port, as config_load leaves it without --listen. */
    c->listeners[0].scheme = CONFIG_WS;
    c->listeners[0].port = (uint16_t)c->port;
    strcpy(c->listeners[0].host, c->host);
    c->nlisteners = 1;
}

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

static void *field_of(config_t *c, const opt_t *o) {
    return (char *)c + o->offset;
}

static const void *cfield_of(const config_t *c, const opt_t *o) {
    return (const char *)c + o->offset;
}

static uint32_t get_u32(const config_t *c, const opt_t *o) {
    uint32_t v;
    memcpy(&v, cfield_of(c, o), sizeof(v));
    return v;
}

static int get_int(const config_t *c, const opt_t *o) {
    int v;
    memcpy(&v, cfield_of(c, o), sizeof(v));
    return v;
}

static void set_int(config_t *c, const opt_t *o, int v) {
    memcpy(field_of(c, o), &v, sizeof(v));
}

static const opt_t *find_opt(const char *name, size_t len) {
    for (size_t k = 0; k < NOPTS; k++)
        if (strlen(opts[k].name) == len && strncmp(opts[k].name, name, len) == 0)
            return &opts[k];
    return NULL;
}

/* ---- listeners ----------------------------------------------------------------------------- */

int config_listen_parse(const char *url, config_listener_t *out, const char **why) {
    memset(out, 0, sizeof(*out));
    const char *p;
    if (strncasecmp(url, "ws://", 5) == 0) {
        out->scheme = CONFIG_WS;
        p = url + 5;
    } else if (strncasecmp(url, "wss://", 6) == 0) {
        out->scheme = CONFIG_WSS;
        p = url + 6;
    } else {
        *why = "must start with ws:// or wss://";
        return -EINVAL;
    }
    const char *host = p, *host_end;
    if (*p == '[') {
        host = p + 1;
        host_end = strchr(host, ']');
        if (host_end == NULL) {
            *why = "an IPv6 address needs its closing ']'";
            return -EINVAL;
        }
        size_t n = (size_t)(host_end - host);
        char tmp[INET6_ADDRSTRLEN];
        struct in6_addr a6;
        if (n == 0 || n >= sizeof(tmp)) {
            *why = "not an IPv6 address between [ and ]";
            return -EINVAL;
        }
        memcpy(tmp, host, n);
        tmp[n] = '\0';
        if (inet_pton(AF_INET6, tmp, &a6) != 1) {
            *why = "not an IPv6 address between [ and ]";
            return -EINVAL;
        }
        p = host_end + 1;
    } else {
        host_end = p;
        while (*host_end && *host_end != ':' && *host_end != '/')
            host_end++;
        if (host_end == host) {
            *why = "needs a host (0.0.0.0 or [::] for every address)";
            return -EINVAL;
        }
        for (const char *q = host; q < host_end; q++) {
            char ch = *q;
            if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '-')) {
                *why = "the host must be an address or a name (IPv6 in brackets)";
                return -EINVAL;
            }
        }
        p = host_end;
    }
    size_t hlen = (size_t)(host_end - host);
    if (hlen >= sizeof(out->host)) {
        *why = "the host is too long";
        return -EINVAL;
    }
    if (*p != ':') {
        *why = "needs a port (HOST:PORT)";
        return -EINVAL;
    }
    p++;
    uint32_t port = 0;
    int digits = 0;
    while (*p >= '0' && *p <= '9' && digits < 6) {
        port = port * 10 + (uint32_t)(*p - '0');
        p++;
        digits++;
    }
    if (digits == 0 || digits > 5 || port == 0 || port > 65535) {
        *why = "the port must be a number from 1 to 65535";
        return -EINVAL;
    }
    if (*p == '/')
        p++;
    if (*p != '\0') {
        *why = "nothing may follow the port (the server answers on every path)";
        return -EINVAL;
    }
    memcpy(out->host, host, hlen);
    out->host[hlen] = '\0';
    out->port = (uint16_t)port;
    return 0;
}

int config_listen_format(const config_listener_t *l, char *out, size_t outlen) {
    const char *scheme = l->scheme == CONFIG_WSS ? "wss" : "ws";
    if (strchr(l->host, ':') != NULL)
        return snprintf(out, outlen, "%s://[%s]:%u", scheme, l->host, l->port);
    return snprintf(out, outlen, "%s://%s:%u", scheme, l->host, l->port);
}

int config_has_tls(const config_t *c) {
    for (uint32_t k = 0; k < c->nlisteners; k++)
        if (c->listeners[k].scheme == CONFIG_WSS)
            return 1;
    return 0;
}

static int same_listener(const config_listener_t *a, const config_listener_t *b) {
    return a->scheme == b->scheme && a->port == b->port && strcmp(a->host, b->host) == 0;
}

/* ---- setting one value --------------------------------------------------------------------- */

/* Sets option o of c from text. Returns 0, or -EINVAL with the reason in why, worded to follow
 * the option's name ("wants a whole number ..."). */
static int set_value(config_t *c, const opt_t *o, const char *val, char *why, size_t whylen) {
    switch (o->kind) {
    case OPT_U32: {
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(val, &end, 10);
        /* strtoull would take a sign or leading blanks; a number here is digits only. */
        if (val[0] < '0' || val[0] > '9' || errno || *end != '\0' || v < o->min || v > o->max) {
            snprintf(why, whylen, "wants a whole number from %u to %u (%s), not \"%s\"", o->min,
                     o->max, o->unit, val);
            return -EINVAL;
        }
        uint32_t u = (uint32_t)v;
        memcpy(field_of(c, o), &u, sizeof(u));
        return 0;
    }
    case OPT_STR:
        if (strlen(val) >= o->size) {
            snprintf(why, whylen, "is longer than %zu bytes", o->size - 1);
            return -EINVAL;
        }
        for (const char *q = val; *q; q++) {
            if ((unsigned char)*q < 0x20 || *q == 0x7f) {
                snprintf(why, whylen, "must not contain control characters");
                return -EINVAL;
            }
        }
        strcpy(field_of(c, o), val);
        return 0;
    case OPT_FORMAT: {
        int f = logfmt_parse(val);
        if (f < 0) {
            snprintf(why, whylen, "wants text or json, not \"%s\"", val);
            return -EINVAL;
        }
        set_int(c, o, f);
        return 0;
    }
    case OPT_LEVEL: {
        int lv = log_level_parse(val);
        if (lv < 0) {
            snprintf(why, whylen, "wants debug, info, warn, error or off, not \"%s\"", val);
            return -EINVAL;
        }
        set_int(c, o, lv);
        return 0;
    }
    case OPT_BOOL: {
        static const char *const yes[] = {"true", "yes", "1"}, *const no[] = {"false", "no", "0"};
        for (size_t k = 0; k < 3; k++) {
            if (strcasecmp(val, yes[k]) == 0) {
                set_int(c, o, 1);
                return 0;
            }
            if (strcasecmp(val, no[k]) == 0) {
                set_int(c, o, 0);
                return 0;
            }
        }
        snprintf(why, whylen, "wants true or false (or yes/no, 1/0), not \"%s\"", val);
        return -EINVAL;
    }
    case OPT_LISTEN: {
        config_listener_t l;
        const char *reason = NULL;
        if (config_listen_parse(val, &l, &reason) != 0) {
            snprintf(why, whylen, "\"%s\": %s (wants ws://HOST:PORT or wss://HOST:PORT)", val,
                     reason);
            return -EINVAL;
        }
        uint32_t n = c->listen_given ? c->nlisteners : 0;
        for (uint32_t k = 0; k < n; k++) {
            if (same_listener(&c->listeners[k], &l)) {
                snprintf(why, whylen, "lists \"%s\" twice", val);
                return -EINVAL;
            }
        }
        if (n >= CONFIG_MAX_LISTENERS) {
            snprintf(why, whylen, "is given more than %d times (CONFIG_MAX_LISTENERS)",
                     CONFIG_MAX_LISTENERS);
            return -EINVAL;
        }
        c->listeners[n] = l;
        c->nlisteners = n + 1;
        c->listen_given = 1;
        return 0;
    }
    case OPT_ACTION:
        return 0;
    }
    return -EINVAL;
}

/* ---- loading ------------------------------------------------------------------------------- */

/* Where an option was last set: its line in the file, or one of these. */
#define FROM_DEFAULT 0u
#define FROM_CLI UINT_MAX

typedef struct loader {
    config_t *c;
    const char *file;     /* the file's name in messages */
    unsigned from[NOPTS]; /* where each option was last set */
    int cli_listen;       /* a --listen of the command line has replaced the file's list */
    unsigned listen_from[CONFIG_MAX_LISTENERS]; /* where each listener was set */
    int action;                                 /* what the command line asks for (scan only) */
    char *err;
    size_t errlen;
} loader_t;

/* Names where option o was set, for the start of a message: "--name", or "FILE:LINE: key name". */
static void where(const loader_t *L, const opt_t *o, char *out, size_t outlen) {
    unsigned from = L->from[o - opts];
    if (from == FROM_CLI || from == FROM_DEFAULT || L->file == NULL)
        snprintf(out, outlen, "--%s", o->name);
    else
        snprintf(out, outlen, "%s:%u: key %s", L->file, from, o->name);
}

static int on_ini(void *arg, const ini_entry_t *e) {
    loader_t *L = arg;
    if (e->kind == INI_SECTION) {
        for (int g = G_NONE + 1; g < G_COUNT; g++)
            if (strcmp(e->section, group_names[g]) == 0)
                return 0;
        snprintf(L->err, L->errlen,
                 "%s:%u: unknown section [%s] (sections: network, tls, logging, database, "
                 "tracker, access, liveness, limits, shedding, cluster, testing)",
                 L->file, e->line, e->section);
        return -EINVAL;
    }
    const opt_t *o = find_opt(e->key, strlen(e->key));
    if (o == NULL) {
        snprintf(L->err, L->errlen, "%s:%u: unknown key \"%s\" (see --help)", L->file, e->line,
                 e->key);
        return -EINVAL;
    }
    if (o->flags & OPTF_CLI) {
        snprintf(L->err, L->errlen, "%s:%u: key %s is only accepted on the command line", L->file,
                 e->line, o->name);
        return -EINVAL;
    }
    if (e->section[0] != '\0' && strcmp(e->section, group_names[o->group]) != 0) {
        snprintf(L->err, L->errlen, "%s:%u: key %s belongs in section [%s], not [%s]", L->file,
                 e->line, o->name, group_names[o->group], e->section);
        return -EINVAL;
    }
    unsigned *from = &L->from[o - opts];
    if (*from != FROM_DEFAULT && o->kind != OPT_LISTEN) {
        snprintf(L->err, L->errlen, "%s:%u: key %s is already set on line %u", L->file, e->line,
                 o->name, *from);
        return -EINVAL;
    }
    char why[512];
    if (set_value(L->c, o, e->value, why, sizeof(why)) != 0) {
        snprintf(L->err, L->errlen, "%s:%u: key %s %s", L->file, e->line, o->name, why);
        return -EINVAL;
    }
    *from = e->line;
    if (o->kind == OPT_LISTEN)
        L->listen_from[L->c->nlisteners - 1] = e->line;
    return 0;
}

/* Applies the command line to L->c. With scan set, also notes --help, --version and the action
 * flags in L->action and stops at --help or --version. Returns 0 or -EINVAL with err set. */
static int apply_args(loader_t *L, int argc, char **argv, int scan) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0 || strcmp(a, "--version") == 0) {
            if (scan) {
                L->action = a[2] == 'v' ? 'v' : 'h';
                return 0;
            }
            continue;
        }
        if (strncmp(a, "--", 2) != 0) {
            snprintf(L->err, L->errlen, "unexpected argument \"%s\" (see --help)", a);
            return -EINVAL;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const opt_t *o = find_opt(name, nlen);
        int negated = 0;
        if (o == NULL && nlen > 3 && strncmp(name, "no-", 3) == 0) {
            o = find_opt(name + 3, nlen - 3);
            negated = o != NULL && o->kind == OPT_BOOL;
            if (!negated)
                o = NULL;
        }
        if (o == NULL) {
            snprintf(L->err, L->errlen, "unknown option \"%s\" (see --help)", a);
            return -EINVAL;
        }
        const char *val = NULL;
        if (o->kind == OPT_BOOL || o->kind == OPT_ACTION) {
            if (eq) {
                snprintf(L->err, L->errlen, "--%.*s takes no value", (int)nlen, name);
                return -EINVAL;
            }
            val = negated ? "false" : "true";
        } else if (eq) {
            val = eq + 1;
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            snprintf(L->err, L->errlen, "--%s needs a value (see --help)", o->name);
            return -EINVAL;
        }
        if (o->kind == OPT_LISTEN && !L->cli_listen) {
            /* The command line's listeners replace the file's rather than add to them. */
            L->c->listen_given = 0;
            L->c->nlisteners = 0;
            L->cli_listen = 1;
        }
        if (o->kind == OPT_ACTION && scan)
            L->action = o->name[0]; /* 'c'heck-config or 'p'rint-config; the last one wins */
        char why[512];
        if (set_value(L->c, o, val, why, sizeof(why)) != 0) {
            snprintf(L->err, L->errlen, "--%s %s", o->name, why);
            return -EINVAL;
        }
        L->from[o - opts] = FROM_CLI;
        if (o->kind == OPT_LISTEN)
            L->listen_from[L->c->nlisteners - 1] = FROM_CLI;
    }
    return 0;
}

/* The checks that involve several options, after everything is applied. */
static int finish(loader_t *L) {
    config_t *c = L->c;
    char a[CONFIG_PATH_BYTES + 64], b[CONFIG_PATH_BYTES + 64];
    if (!c->listen_given) {
        c->nlisteners = 1;
        c->listeners[0].scheme = CONFIG_WS;
        c->listeners[0].port = (uint16_t)c->port;
        snprintf(c->listeners[0].host, sizeof(c->listeners[0].host), "%s", c->host);
    }
    if (c->min_interval > c->interval) {
        const opt_t *mi = find_opt("min-interval", 12), *iv = find_opt("interval", 8);
        if (L->from[mi - opts] != FROM_DEFAULT || L->from[iv - opts] == FROM_DEFAULT) {
            where(L, mi, a, sizeof(a));
            snprintf(L->err, L->errlen, "%s (%u) must not exceed interval (%u)", a, c->min_interval,
                     c->interval);
        } else {
            where(L, iv, a, sizeof(a));
            snprintf(L->err, L->errlen, "%s (%u) must not be below min-interval (%u)", a,
                     c->interval, c->min_interval);
        }
        return -EINVAL;
    }
    if (c->default_numwant > c->max_numwant)
        c->default_numwant = c->max_numwant;
    if (c->allowlist[0] != '\0' && c->denylist[0] != '\0') {
        const opt_t *al = find_opt("allowlist", 9), *dl = find_opt("denylist", 8);
        const opt_t *later = L->from[dl - opts] >= L->from[al - opts] ? dl : al;
        where(L, later, a, sizeof(a));
        snprintf(L->err, L->errlen,
                 "%s: --allowlist and --denylist cannot both be set (choose one)", a);
        return -EINVAL;
    }
    if (c->admin_listen[0] != '\0') {
        /* HOST:PORT is a ws:// URL without its scheme: one parser for both. */
        config_listener_t l;
        const char *reason = NULL;
        snprintf(b, sizeof(b), "ws://%s", c->admin_listen);
        const opt_t *al = find_opt("admin-listen", 12);
        if (config_listen_parse(b, &l, &reason) != 0) {
            where(L, al, a, sizeof(a));
            snprintf(L->err, L->errlen, "%s: \"%s\": %s (wants HOST:PORT)", a, c->admin_listen,
                     reason);
            return -EINVAL;
        }
    }
    /* With a private listener, the public port stops serving metrics unless asked to. */
    c->public_metrics_given = L->from[find_opt("public-metrics", 14) - opts] != FROM_DEFAULT;
    if (!c->public_metrics_given)
        c->public_metrics = c->admin_listen[0] == '\0';
    const opt_t *cert = find_opt("tls-cert", 8), *key = find_opt("tls-key", 7);
    if ((c->tls_cert[0] != '\0') != (c->tls_key[0] != '\0')) {
        const opt_t *set = c->tls_cert[0] ? cert : key;
        where(L, set, a, sizeof(a));
        snprintf(L->err, L->errlen, "%s needs %s too (a certificate and its key go together)", a,
                 set == cert ? "tls-key" : "tls-cert");
        return -EINVAL;
    }
    for (uint32_t k = 0; k < c->nlisteners && c->tls_cert[0] == '\0'; k++) {
        if (c->listeners[k].scheme == CONFIG_WSS) {
            if (L->listen_from[k] != FROM_CLI && L->file != NULL)
                snprintf(a, sizeof(a), "%s:%u: key listen", L->file, L->listen_from[k]);
            else
                snprintf(a, sizeof(a), "--listen");
            config_listen_format(&c->listeners[k], b, sizeof(b));
            snprintf(L->err, L->errlen, "%s: %s needs tls-cert and tls-key", a, b);
            return -EINVAL;
        }
    }
    return 0;
}

int config_load_buffer(config_t *c, const char *name, const char *data, size_t len, int argc,
                       char **argv, char *err, size_t errlen) {
    loader_t *L = xcalloc(1, sizeof(*L));
    config_t *scratch = xmalloc(sizeof(*scratch));
    int rc = 0;
    L->err = err;
    L->errlen = errlen;
    /* The command line is checked first, on a scratch copy, so that a bad flag is reported as
     * such even when the file has errors too. */
    config_defaults(scratch);
    L->c = scratch;
    rc = apply_args(L, argc, argv, 0);
    if (rc != 0)
        goto done;
    memset(L, 0, sizeof(*L));
    L->err = err;
    L->errlen = errlen;
    config_defaults(c);
    L->c = c;
    if (data != NULL) {
        L->file = name != NULL ? name : "(config)";
        ini_error_t ie = {0, NULL};
        rc = ini_parse(data, len, on_ini, L, &ie);
        if (rc == -EINVAL && ie.msg != NULL)
            snprintf(err, errlen, "%s:%u: %s", L->file, ie.line, ie.msg);
        if (rc != 0) {
            rc = -EINVAL;
            goto done;
        }
    }
    rc = apply_args(L, argc, argv, 0);
    if (rc == 0)
        rc = finish(L);
    c->argc = argc;
    c->argv = argv;
done:
    xfree(scratch);
    xfree(L);
    return rc;
}

/* Reads a whole file of at most CONFIG_MAX_FILE_BYTES. Returns 0 with *data (NUL-terminated,
 * owned by the caller) and *len, or -errno with err set. */
static int read_file(const char *path, char **data, size_t *len, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        int e = errno;
        snprintf(err, errlen, "cannot read the configuration file %s: %s", path, strerror(e));
        return -e;
    }
    char *buf = xmalloc(CONFIG_MAX_FILE_BYTES + 2);
    size_t n = fread(buf, 1, CONFIG_MAX_FILE_BYTES + 1, f);
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        snprintf(err, errlen, "cannot read the configuration file %s", path);
        xfree(buf);
        return -EIO;
    }
    if (n > CONFIG_MAX_FILE_BYTES) {
        snprintf(err, errlen, "%s: larger than %d bytes (CONFIG_MAX_FILE_BYTES)", path,
                 CONFIG_MAX_FILE_BYTES);
        xfree(buf);
        return -EFBIG;
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return 0;
}

int config_load(config_t *c, int argc, char **argv, char *err, size_t errlen) {
    /* Find --config (the last one wins, as for every flag) on a scratch copy. */
    loader_t *L = xcalloc(1, sizeof(*L));
    config_t *scratch = xmalloc(sizeof(*scratch));
    config_defaults(scratch);
    L->c = scratch;
    L->err = err;
    L->errlen = errlen;
    int rc = apply_args(L, argc, argv, 0);
    char *data = NULL;
    size_t len = 0;
    if (rc == 0 && scratch->config_file[0] != '\0')
        rc = read_file(scratch->config_file, &data, &len, err, errlen);
    if (rc == 0)
        rc = config_load_buffer(c, scratch->config_file, data, len, argc, argv, err, errlen);
    xfree(data);
    xfree(scratch);
    xfree(L);
    return rc;
}

int config_parse(config_t *c, int argc, char **argv) {
    char err[CONFIG_PATH_BYTES + 512];
    /* --help and --version win over anything after them, as they always did. */
    loader_t *L = xcalloc(1, sizeof(*L));
    config_t *scratch = xmalloc(sizeof(*scratch));
    config_defaults(scratch);
    L->c = scratch;
    L->err = err;
    L->errlen = sizeof(err);
    int rc = apply_args(L, argc, argv, 1);
    int action = L->action;
    xfree(scratch);
    xfree(L);
    if (rc == 0 && action == 'h') {
        config_usage(stdout);
        return CONFIG_EXIT;
    }
    if (rc == 0 && action == 'v') {
        printf("sigtracker %s\n", SIGTRACKER_VERSION);
        return CONFIG_EXIT;
    }
    if (rc == 0)
        rc = config_load(c, argc, argv, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "sigtracker: %s\n", err);
        return -EINVAL;
    }
    if (action == 'p') {
        buf_t b = {0};
        config_print(c, &b);
        fwrite(b.data, 1, b.len, stdout);
        fflush(stdout);
        buf_dispose(&b);
        return CONFIG_EXIT;
    }
    if (action == 'c')
        return CONFIG_CHECK;
    return CONFIG_RUN;
}

/* ---- printing ------------------------------------------------------------------------------ */

/* Writes option o's value as the file would hold it (listeners: comma-separated). */
static void format_value(const config_t *c, const opt_t *o, char *out, size_t outlen) {
    switch (o->kind) {
    case OPT_U32:
        snprintf(out, outlen, "%u", get_u32(c, o));
        return;
    case OPT_STR:
        snprintf(out, outlen, "%s", (const char *)cfield_of(c, o));
        return;
    case OPT_BOOL:
        snprintf(out, outlen, "%s", get_int(c, o) ? "true" : "false");
        return;
    case OPT_FORMAT:
        snprintf(out, outlen, "%s", logfmt_name(get_int(c, o)));
        return;
    case OPT_LEVEL: {
        int lv = get_int(c, o);
        snprintf(out, outlen, "%s", lv >= 0 && lv <= LOG_OFF ? level_names[lv] : "?");
        return;
    }
    case OPT_LISTEN: {
        size_t used = 0;
        out[0] = '\0';
        if (!c->listen_given) {
            snprintf(out, outlen, "(from host and port)");
            return;
        }
        for (uint32_t k = 0; k < c->nlisteners && used + 1 < outlen; k++) {
            if (k)
                used += (size_t)snprintf(out + used, outlen - used, ",");
            if (used + 1 < outlen)
                used += (size_t)config_listen_format(&c->listeners[k], out + used, outlen - used);
        }
        return;
    }
    default:
        out[0] = '\0';
    }
}

static void put(buf_t *b, const char *s) {
    buf_puts(b, s);
}

void config_print(const config_t *c, buf_t *out) {
    config_t d;
    config_defaults(&d);
    char val[CONFIG_PATH_BYTES + 64], line[CONFIG_PATH_BYTES + 256];
    put(out, "# sigtracker configuration file, as `sigtracker --print-config` writes it.\n"
             "#\n"
             "# Every key is the command-line flag of the same name (`max-per-ip = 20` is\n"
             "# `--max-per-ip 20`), and flags given on the command line override the file.\n"
             "# Section headers are optional; a key under a header must be in its own section.\n"
             "# Booleans take true/false, yes/no or 1/0; a trailing comment starts with \" #\".\n"
             "# SIGHUP reloads the file: keys marked \"needs a restart\" keep their running value\n"
             "# until the next start. Syntax, precedence and reloading: docs/configuration.md.\n");
    int group = -1;
    for (size_t k = 0; k < NOPTS; k++) {
        const opt_t *o = &opts[k];
        if (o->flags & OPTF_CLI)
            continue;
        if (o->group != group) {
            group = o->group;
            snprintf(line, sizeof(line), "\n[%s]\n", group_names[group]);
            put(out, line);
        }
        snprintf(line, sizeof(line), "\n# %s: %s\n", o->name, o->help);
        put(out, line);
        if (o->kind == OPT_LISTEN)
            snprintf(val, sizeof(val), "none (host and port give one ws:// listener)");
        else
            format_value(&d, o, val, sizeof(val));
        snprintf(line, sizeof(line), "# %s%s%sdefault: %s; %s\n", o->unit[0] ? "unit: " : "",
                 o->unit, o->unit[0] ? "; " : "", val[0] ? val : "empty",
                 (o->flags & OPTF_RESTART) ? "needs a restart" : "applies on reload (SIGHUP)");
        put(out, line);
        if (o->kind == OPT_LISTEN) {
            if (!c->listen_given) {
                char url[CONFIG_HOST_BYTES + 32];
                config_listen_format(&c->listeners[0], url, sizeof(url));
                snprintf(line, sizeof(line), "# listen = %s\n", url);
                put(out, line);
            }
            for (uint32_t i = 0; c->listen_given && i < c->nlisteners; i++) {
                char url[CONFIG_HOST_BYTES + 32];
                config_listen_format(&c->listeners[i], url, sizeof(url));
                snprintf(line, sizeof(line), "listen = %s\n", url);
                put(out, line);
            }
            continue;
        }
        format_value(c, o, val, sizeof(val));
        put(out, o->name);
        put(out, val[0] ? " = " : " =");
        if (o->kind == OPT_STR)
            ini_write_value(out, val);
        else
            put(out, val);
        put(out, "\n");
    }
}

void config_usage(FILE *out) {
    config_t d;
    config_defaults(&d);
    fprintf(out, "usage: sigtracker [options]\n\n"
                 "WebSocket signaling and WebTorrent tracker server.\n"
                 "HTTP on the same port: GET /health, /stats.json, /metrics (Prometheus) and\n"
                 "/dashboard; with --admin-listen, all but /health move to that listener.\n"
                 "Every option except those under \"configuration\" is also a key of the --config\n"
                 "file (same name, e.g. max-per-ip = 20); options given here override the file.\n"
                 "Boolean options also have a --no- form (--no-reuse-port) to turn off a file's.\n"
                 "SIGHUP reloads the file (docs/configuration.md).\n");
    int group = -1;
    for (size_t i = 0; i < NOPTS; i++) {
        const opt_t *o = &opts[i];
        if (o->group != group) {
            group = o->group;
            fprintf(out, "\n%s:\n", group_names[group]);
        }
        char arg[64] = "";
        char def[CONFIG_HOST_BYTES + 64] = "";
        char val[CONFIG_HOST_BYTES + 32];
        switch (o->kind) {
        case OPT_U32:
        case OPT_STR:
        case OPT_LEVEL:
        case OPT_FORMAT:
            snprintf(arg, sizeof(arg), " <%s>", o->unit);
            format_value(&d, o, val, sizeof(val));
            snprintf(def, sizeof(def), o->kind == OPT_STR ? " (default \"%s\")" : " (default %s)",
                     val);
            if (o->kind == OPT_STR && val[0] == '\0')
                def[0] = '\0';
            break;
        case OPT_LISTEN:
            snprintf(arg, sizeof(arg), " <%s>", o->unit);
            snprintf(def, sizeof(def), " (default: one ws:// listener on --host and --port)");
            break;
        case OPT_BOOL:
        case OPT_ACTION:
            break;
        }
        char left[96];
        snprintf(left, sizeof(left), "--%s%s", o->name, arg);
        fprintf(out, "  %-32s %s%s%s\n", left, o->help, def,
                (o->flags & OPTF_RESTART) ? " [restart]" : "");
    }
    fprintf(out, "  %-32s %s\n", "--help", "print this text and exit");
    fprintf(out, "  %-32s %s\n", "--version", "print the version and exit");
    fprintf(out, "\n[restart]: a reload (SIGHUP) keeps the running value; restart to change it.\n");
}

/* ---- reload -------------------------------------------------------------------------------- */

static int option_equal(const config_t *a, const config_t *b, const opt_t *o) {
    switch (o->kind) {
    case OPT_U32:
        return get_u32(a, o) == get_u32(b, o);
    case OPT_STR:
        return strcmp(cfield_of(a, o), cfield_of(b, o)) == 0;
    case OPT_BOOL:
    case OPT_LEVEL:
    case OPT_FORMAT:
        return get_int(a, o) == get_int(b, o);
    case OPT_LISTEN:
        if (a->listen_given != b->listen_given)
            return 0;
        if (!a->listen_given)
            return 1; /* both follow host and port, which are compared on their own */
        if (a->nlisteners != b->nlisteners)
            return 0;
        for (uint32_t k = 0; k < a->nlisteners; k++)
            if (!same_listener(&a->listeners[k], &b->listeners[k]))
                return 0;
        return 1;
    default:
        return 1;
    }
}

int config_reload_merge(const config_t *running, config_t *next, config_note_fn note, void *arg) {
    char was[512], now[512];
    int applied = 0;
    /* public-metrics' default follows admin-listen, which a reload cannot change: derive it from
     * the running listener, or a file that adds admin-listen would take the metrics off the
     * public port before the restart that opens the admin one. */
    if (!next->public_metrics_given)
        next->public_metrics = running->admin_listen[0] == '\0';
    for (size_t k = 0; k < NOPTS; k++) {
        const opt_t *o = &opts[k];
        if (o->flags & OPTF_CLI)
            continue;
        int restart = (o->flags & OPTF_RESTART) != 0;
        if (!option_equal(running, next, o)) {
            format_value(running, o, was, sizeof(was));
            format_value(next, o, now, sizeof(now));
            if (note != NULL)
                note(arg, o->name, was, now, restart);
            applied += !restart;
        }
        if (restart) {
            /* Always, equal or not: the derived listener follows host and port, so it must
             * come back with them. */
            if (o->kind == OPT_LISTEN) {
                memcpy(next->listeners, running->listeners, sizeof(next->listeners));
                next->nlisteners = running->nlisteners;
                next->listen_given = running->listen_given;
            } else {
                memcpy((char *)next + o->offset, (const char *)running + o->offset, o->size);
            }
        }
    }
    return applied;
}
