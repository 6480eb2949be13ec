/* config.h: every tunable of the server, with its default, unit and flag. `sigtracker --help`
 * is generated from the same table, so the two cannot disagree. */
#ifndef SIG_CONFIG_CONFIG_H
#define SIG_CONFIG_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- listeners and TLS (issue 10) ---------------------------------------------------------- */

/* Listening sockets one server may have (--listen may be repeated this often). */
#define CONFIG_MAX_LISTENERS 8

enum config_scheme {
    CONFIG_SCHEME_WS = 0,  /* plain WebSocket and HTTP */
    CONFIG_SCHEME_WSS = 1, /* the same over TLS (needs --tls-cert and --tls-key) */
};

/* One --listen: ws://HOST:PORT or wss://HOST:PORT (an IPv6 host in brackets). */
typedef struct config_listen {
    int scheme;     /* enum config_scheme */
    char host[256]; /* address literal, without brackets */
    uint32_t port;
} config_listen_t;

typedef struct config {
    /* Network */
    char host[256];     /* --host: address to listen on */
    uint32_t port;      /* --port */
    char db_path[4096]; /* --db: SQLite file */
    int log_level;      /* --log-level (enum log_level) */

    /* Tracker */
    uint32_t interval;        /* --interval: seconds between announces we ask for */
    uint32_t min_interval;    /* --min-interval: seconds; faster regular announces are refused */
    uint32_t peer_timeout;    /* --peer-timeout: seconds without announce before a peer leaves */
    uint32_t max_numwant;     /* --max-numwant: cap on peers per ST announce answer */
    uint32_t default_numwant; /* --default-numwant */
    uint32_t max_offers;      /* --max-offers: WebTorrent offers relayed per announce */
    uint32_t offer_ttl;       /* --offer-ttl: seconds an answer may follow its offer */
    uint32_t max_scrape;      /* --max-scrape: infohashes per scrape request */
    uint32_t db_flush;        /* --db-flush: seconds between database batches */

    /* Liveness */
    uint32_t ping_interval;     /* --ping-interval: seconds of silence before a WebSocket ping */
    uint32_t ping_timeout;      /* --ping-timeout: seconds to answer a ping */
    uint32_t handshake_timeout; /* --handshake-timeout: seconds to complete the HTTP upgrade */
    uint32_t idle_timeout;      /* --idle-timeout: seconds without a message (pongs don't count) */

    /* Limits (abuse resistance) */
    uint32_t max_frame;       /* --max-frame: bytes of one WebSocket frame payload */
    uint32_t max_message;     /* --max-message: bytes of one reassembled message */
    uint32_t max_json_depth;  /* --max-json-depth */
    uint32_t max_connections; /* --max-connections: global cap (0 = as many as fds allow) */
    uint32_t max_per_ip;      /* --max-per-ip: connections per client address */
    uint32_t max_swarms;      /* --max-swarms: swarms one connection may be in */
    uint32_t max_outbuf;      /* --max-outbuf: bytes queued for one slow reader before drops */
    uint32_t stuck_timeout;   /* --stuck-timeout: seconds a full output queue may last */
    uint32_t msg_rate;        /* --msg-rate: messages per second per connection (bucket refill) */
    uint32_t msg_burst;       /* --msg-burst: bucket size */
    uint32_t signal_rate;     /* --signal-rate: relayed signals per second a peer may send */
    uint32_t signal_burst;    /* --signal-burst */
    uint32_t recv_rate;       /* --recv-rate: relayed signals per second a peer may receive */
    uint32_t recv_burst;      /* --recv-burst */
    uint32_t shed_high;       /* --shed-high: connections above which shedding starts (0 = off) */
    uint32_t shed_low;        /* --shed-low: connections shedding brings us back to */
    uint32_t shed_ratio; /* --shed-ratio: seeders per leecher above which seeders are surplus */
    uint32_t shed_min_seeders;  /* --shed-min-seeders: seeders a swarm always keeps */
    char origins[4096];         /* --allow-origin: comma-separated allow-list (empty = any) */
    char trusted_proxies[1024]; /* --trusted-proxy: comma-separated addresses allowed to set XFF */

    /* Cluster (docs/cluster.md) */
    char cluster[4096];    /* --cluster: redis://HOST:PORT or unix:/path (empty = standalone) */
    uint32_t node_timeout; /* --node-timeout: seconds without heartbeat before a node is dead */
    int reuse_port;        /* --reuse-port: SO_REUSEPORT, so several nodes share one port */

    /* Listeners and TLS. Without --listen, --host and --port give one ws listener. */
    config_listen_t listen[CONFIG_MAX_LISTENERS]; /* --listen (repeatable) */
    uint32_t nlisten;                             /* listeners in use (at least 1 after parsing) */
    char tls_cert[4096]; /* --tls-cert: PEM certificate chain, leaf first (reloaded on SIGHUP) */
    char tls_key[4096];  /* --tls-key: PEM private key matching it (reloaded on SIGHUP) */

    /* Testing */
    int test_drop_offers; /* --test-drop-offers: never relay WebTorrent offers */
} config_t;

/* Fills c with the defaults. */
void config_defaults(config_t *c);

/* Parses argv into c (on top of the defaults). Returns 0 to run, 1 when --help or --version was
 * printed (exit 0), or -EINVAL after printing a clear error to stderr (exit 2). */
int config_parse(config_t *c, int argc, char **argv);

/* Parses one --listen value ("ws://H:P" or "wss://H:P", IPv6 as "[::1]") into l. Returns 0, or
 * -EINVAL with a reason in err. */
int config_parse_listen(const char *val, config_listen_t *l, char *err, size_t errlen);

/* Returns 1 when some listener is wss (so the server needs a certificate). */
int config_has_tls(const config_t *c);

/* Prints the usage text, generated from the option table. */
void config_usage(FILE *out);

#endif
