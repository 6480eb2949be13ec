/* config.h: every tunable of the server, with its default, unit and flag. One option table in
 * config.c drives the command line, the configuration file (`--config FILE`, INI, read by
 * config/ini.c), `--help`, `--print-config` and what a reload (SIGHUP) may change, so none of
 * them can disagree with another. Precedence: defaults, then the file, then the command line.
 * See docs/configuration.md. */
#ifndef SIG_CONFIG_CONFIG_H
#define SIG_CONFIG_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/buf.h"

/* The version --version prints and the start-up line names. */
#define SIGTRACKER_VERSION "0.1.0"
/* Most listeners (--listen) one server may have. */
#define CONFIG_MAX_LISTENERS 16
/* Largest configuration file read, in bytes: a complete annotated file is about 12 KiB. */
#define CONFIG_MAX_FILE_BYTES (1024 * 1024)
/* Size of every path buffer (database, certificates, access lists, the file itself), in bytes
 * including the terminating NUL. */
#define CONFIG_PATH_BYTES 4096
/* Size of a host name buffer, in bytes including the NUL (a DNS name is at most 253). */
#define CONFIG_HOST_BYTES 256

/* What config_parse asks main to do. */
enum config_action {
    CONFIG_RUN = 0,   /* start the server */
    CONFIG_EXIT = 1,  /* --help, --version or --print-config was printed: exit 0 */
    CONFIG_CHECK = 2, /* --check-config: the file and flags are valid; main checks the access
                       * list, says so and exits */
};

enum config_scheme {
    CONFIG_WS = 1,  /* ws:// plain WebSocket */
    CONFIG_WSS = 2, /* wss:// WebSocket over TLS (--tls-cert, --tls-key) */
};

/* One listening address (--listen URL). */
typedef struct config_listener {
    uint8_t scheme; /* enum config_scheme */
    uint16_t port;
    char host[CONFIG_HOST_BYTES]; /* an address literal or a name; IPv6 without brackets */
} config_listener_t;

typedef struct config {
    /* Network */
    char host[CONFIG_HOST_BYTES]; /* --host: address to listen on */
    uint32_t port;                /* --port */
    /* --listen: every listener the server opens (ws and wss in one epoll set). Without
     * --listen, listeners[0] is the ws:// listener of host and port. */
    config_listener_t listeners[CONFIG_MAX_LISTENERS];
    uint32_t nlisteners; /* >= 1 after config_load */
    int listen_given;    /* 1 when the listeners came from --listen (file or command line) */
    int reuse_port;      /* --reuse-port: SO_REUSEPORT, so several nodes share one port */
    char admin_listen[CONFIG_HOST_BYTES + 8]; /* --admin-listen: HOST:PORT for /metrics etc.
                                               * on a private plain-HTTP listener ("" = none) */
    int public_metrics; /* --public-metrics: /metrics, /stats.json and /dashboard on the public
                         * listener too (default: true without --admin-listen, false with it) */
    int public_metrics_given; /* set explicitly (file or flag), not derived from admin-listen */
    char tls_cert[CONFIG_PATH_BYTES]; /* --tls-cert: PEM certificate chain for wss:// */
    char tls_key[CONFIG_PATH_BYTES];  /* --tls-key: PEM private key for wss:// */
    char db_path[CONFIG_PATH_BYTES];  /* --db: SQLite file */
    int log_level;                    /* --log-level (enum log_level) */
    int log_format;                   /* --log-format (enum logfmt_format) */
    uint32_t log_summary;             /* --log-summary: seconds between summaries (0 = none) */

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
    char allowlist[CONFIG_PATH_BYTES]; /* --allowlist: only these infohashes ("" = none) */
    char denylist[CONFIG_PATH_BYTES];  /* --denylist: every infohash but these ("" = none) */

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
    char trusted_proxies[1024]; /* --trusted-proxy: addresses whose PROXY header and XFF count */

    /* Cluster (docs/cluster.md) */
    char cluster[4096];    /* --cluster: redis://HOST:PORT or unix:/path (empty = standalone) */
    uint32_t node_timeout; /* --node-timeout: seconds without heartbeat before a node is dead */

    /* Testing */
    int test_drop_offers; /* --test-drop-offers: never relay WebTorrent offers */

    /* Where this configuration came from, kept so that a reload can build it again. */
    char config_file[CONFIG_PATH_BYTES]; /* --config: "" when there is none */
    int argc;                            /* the command line (main's argv, which outlives us), */
    char **argv;                         /* reapplied over the file on every load */
} config_t;

/* Fills c with the defaults (no file, no command line). */
void config_defaults(config_t *c);

/* Handles the command line as main() does: --help and --version print and return CONFIG_EXIT;
 * otherwise builds the configuration with config_load into c, then --print-config prints it
 * (CONFIG_EXIT) and --check-config returns CONFIG_CHECK; else CONFIG_RUN. On an error, prints
 * one line naming the flag, or the file, line and key, to stderr and returns -EINVAL (exit 2).
 * argv must outlive c (a reload reads it again). Main thread. */
int config_parse(config_t *c, int argc, char **argv);

/* Builds a configuration from scratch into c: defaults, then the file named by --config in argv
 * (if any), then every other flag of argv. Prints nothing: on failure returns -EINVAL (or -errno
 * when the file cannot be read) with one line in err naming the flag, or the file, line and key.
 * Action flags (--help, --version, --check-config, --print-config) are ignored. This is what a
 * reload calls. Any thread; reads the file. */
int config_load(config_t *c, int argc, char **argv, char *err, size_t errlen);

/* As config_load, with the file's bytes given instead of read: data[0..len) is the file named
 * `name` in messages (data NULL: no file). Pure: no I/O. */
int config_load_buffer(config_t *c, const char *name, const char *data, size_t len, int argc,
                       char **argv, char *err, size_t errlen);

/* Appends c to out as an annotated configuration file: every key in its section, preceded by its
 * help text, unit, default and whether a reload applies it. The output loads back into the same
 * configuration and prints again byte for byte (tests/integration/config.test.mjs, and
 * fuzz/fuzz_config.c). Pure. */
void config_print(const config_t *c, buf_t *out);

/* Prints the usage text, generated from the option table. */
void config_usage(FILE *out);

/* Parses a --listen URL: ws://HOST:PORT or wss://HOST:PORT, an IPv6 host in brackets
 * ([::1]:PORT), an optional trailing '/'. Returns 0 with *out filled, or -EINVAL with a static
 * reason in *why. Pure. */
int config_listen_parse(const char *url, config_listener_t *out, const char **why);

/* Writes a listener as a URL (the form config_listen_parse reads) into out. Returns the length
 * snprintf would have written. Pure. */
int config_listen_format(const config_listener_t *l, char *out, size_t outlen);

/* Returns 1 when some listener of c is wss:// (so the server needs --tls-cert and --tls-key),
 * else 0. Pure. */
int config_has_tls(const config_t *c);

/* Told about one option a reload changes: its name, its running and new values as text, and
 * whether it needs a restart (then the running value is kept). */
typedef void (*config_note_fn)(void *arg, const char *name, const char *was, const char *now,
                               int needs_restart);

/* Compares the running configuration with a freshly loaded one, option by option, and calls
 * note for each that differs. Options that need a restart (listen, host, port, reuse-port, db,
 * cluster, node-timeout) are then set back to their running values in *next, so that next can be
 * applied as a whole. Returns the number of changed options that apply. Pure. */
int config_reload_merge(const config_t *running, config_t *next, config_note_fn note, void *arg);

#endif
