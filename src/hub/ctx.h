/* ctx.h: the server context and the connection record. The event loop (server/) owns them; the
 * protocol code (proto/) works on its own connection's record and reaches every other peer only
 * through hub/peers.h (who is where) and proto/route.h (delivery by handle, local or remote).
 * The public face of the whole server is server/server.h.
 *
 * All tracker state hangs off one server_t (no globals). Everything here is owned by the
 * event-loop thread. */
#ifndef SIG_HUB_CTX_H
#define SIG_HUB_CTX_H

#include <netinet/in.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/hash.h"
#include "core/histo.h"
#include "core/hmap.h"
#include "core/rng.h"
#include "json/json.h"
#include "limits/bucket.h"
#include "limits/loglimit.h"
#include "hub/refusal.h"
#include "cluster/cluster.h"
#include "config/config.h"
#include "store/store.h"
#include "tracker/acl.h"
#include "tracker/registry.h"
#include "tracker/swarm.h"

/* TLS state (server/tls.h), opaque here: the seam does not depend on the server. C11 allows
 * the typedefs to be repeated there. */
typedef struct tls_ctx tls_ctx_t;
typedef struct tls_conn tls_conn_t;

/* Bytes read from a socket per read() call, and the size of the shared read buffer. */
#define SERVER_READ_BYTES 65536
/* Connections the admin listener (--admin-listen) holds at once. They do not count against the
 * client caps, so a scrape still gets in when clients fill them; this cap (and the descriptors
 * server.c reserves for it) keeps them from taking the descriptors clients need. */
#define SERVER_ADMIN_MAX_CONNECTIONS 16
/* JSON tokens one message may have. A WebTorrent announce with 10 offers needs 95; a scrape
 * of 100 infohashes about 105. */
#define SERVER_MAX_JSON_TOKENS 1024
/* Seconds a closing connection may take to drain its output and receive the peer's close. */
#define SERVER_LINGER_SECONDS 2
/* Largest swarms the dashboard lists. */
#define SERVER_TOP_SWARMS 10
/* Offers remembered per WebTorrent connection for the answer check (oldest forgotten first). */
#define WT_MAX_PENDING_OFFERS 64

enum conn_state {
    CONN_HTTP = 0, /* reading the HTTP request head */
    CONN_WS,       /* WebSocket open */
    CONN_CLOSING,  /* decided to close: output is flushed, then the socket is shut down */
    CONN_DRAIN,    /* write side shut down; reading until EOF or the linger deadline */
    CONN_PROXY,    /* from a --trusted-proxy address: looking for a PROXY protocol header before
                    * anything else reads the socket (then CONN_HTTP) */
};

enum dialect {
    DIALECT_NONE = 0, /* no message yet */
    DIALECT_ST = 1,   /* {"type":...} */
    DIALECT_WT = 2,   /* {"action":...}, the WebTorrent tracker protocol */
};

enum conn_flag {
    CF_FLUSH_QUEUED = 1 << 0, /* on the server's flush list */
    CF_EPOLLOUT = 1 << 1,     /* registered for writability */
    CF_PING_SENT = 1 << 2,    /* a ping is outstanding */
    CF_CLOSE_SENT = 1 << 3,   /* our close frame is queued */
    CF_CLOSE_QUEUED = 1 << 4, /* on the server's close list */
    CF_GONE = 1 << 5,         /* the peer closed or reset the socket: nothing to drain */
    CF_READ_OFF = 1 << 8,     /* registered without EPOLLIN (while parked) */
    CF_PARKED = 1 << 6,       /* a message waits for an answer from Redis or the database;
                               * it is kept in c->frag and input is not read meanwhile */
    CF_ASYNC_DONE = 1 << 7,   /* that answer arrived: c->async_result holds it for the re-run */
    CF_TRUSTED = 1 << 9,      /* the bytes come from a --trusted-proxy: it may send a PROXY
                               * header, and its X-Forwarded-For is believed */
    CF_EDGE = 1 << 10,        /* registered edge-triggered (while CONN_PROXY waits for more) */
    CF_ADMIN = 1 << 11,       /* accepted on the --admin-listen listener: HTTP only */
};

/* Kinds of message, the fixed values of the metrics' `type` label (never a client's text). */
enum msg_type {
    MSG_HELLO = 0, /* ST ola and its answer */
    MSG_ANNOUNCE,  /* announces and their answers */
    MSG_SCRAPE,    /* scrapes and their answers */
    MSG_SIGNAL,    /* offers, answers and candidates relayed between peers */
    MSG_PING,      /* ST ping and pong messages (not WebSocket control frames) */
    MSG_ERROR,     /* errors, failures and refusals we send */
    MSG_BYE,       /* the goodbye before we close */
    MSG_OTHER,     /* invalid JSON, unknown types, rate-limited before being read */
    MSG_TYPES
};

/* Kinds of rate-limit refusal, the fixed values of the metrics' `kind` label. */
enum rl_kind {
    RL_MESSAGES = 0, /* --msg-rate: messages on one connection */
    RL_SIGNALS_SENT, /* --signal-rate: signals one peer sends */
    RL_SIGNALS_RECV, /* --recv-rate: signals one peer receives */
    RL_ANNOUNCE,     /* --min-interval: announces to one swarm too often */
    RL_KINDS
};

/* Kinds of timeout, the fixed values of the metrics' `kind` label. */
enum timeout_kind {
    TO_HANDSHAKE = 0, /* --handshake-timeout */
    TO_STUCK,         /* --stuck-timeout: output queue full too long */
    TO_PING,          /* --ping-timeout: no pong */
    TO_IDLE,          /* --idle-timeout: no message */
    TO_KINDS
};

/* An offer relayed to this connection, remembered so that only a real answer is relayed back.
 * The offer is kept as a keyed hash of (offerer, offer_id, info_hash) rather than its 60 bytes:
 * 12 bytes a record instead of 64, and a forged answer would need a 64-bit SipHash collision
 * under a key it cannot know. The record keeps when the offer was relayed, not when it expires,
 * so that a reload that changes --offer-ttl applies to offers already relayed. */
typedef struct wt_offer_rec {
    uint64_t key;
    uint32_t sent; /* monotonic seconds */
} __attribute__((packed)) wt_offer_rec_t;

/* Connections open from one client address (server/conn.c keeps the table). */
typedef struct ip_entry {
    hmap_node_t node;
    uint8_t addr[16]; /* IPv6, or IPv4-mapped IPv6 */
    uint32_t count;
} ip_entry_t;

typedef struct conn {
    int fd;
    uint8_t state;            /* enum conn_state */
    uint8_t dialect;          /* enum dialect */
    uint8_t frag_op;          /* opcode of the fragmented message being assembled; 0 when none */
    uint16_t flags;           /* enum conn_flag */
    int8_t async_result;      /* see CF_ASYNC_DONE */
    uint32_t slot;            /* this connection's entry in the handle table (hub/peers.h) */
    uint32_t created;         /* monotonic seconds */
    uint32_t last_rx;         /* any bytes received */
    uint32_t last_msg;        /* last data message */
    uint32_t deadline;        /* ping answer, or linger end, depending on state */
    uint32_t stuck_since;     /* when the output queue went over the limit; 0 when not */
    uint32_t rl_notice;       /* when we last told this peer it was rate limited */
    buf_t in;                 /* bytes of an incomplete request head or frame */
    buf_t frag;               /* a fragmented message being reassembled, or the parked one */
    buf_t out;                /* frames waiting to be written */
    uint32_t out_partial;     /* leading bytes of out that finish a frame (or HTTP answer)
                               * already partly written; frames start after them */
    registry_entry_t *peer;   /* the claimed peer ID and its swarms, or NULL */
    struct conn *prev, *next; /* all connections */
    struct conn *next_flush;  /* output to write at the end of this loop iteration */
    struct conn *next_close;  /* to close at the end of this loop iteration */
    ip_entry_t *ip;           /* per-address connection count */
    bucket_t msg_bucket;      /* all messages */
    bucket_t sig_bucket;      /* signals this peer sends */
    bucket_t recv_bucket;     /* signals this peer receives */
    wt_offer_rec_t *offers;   /* WebTorrent: offers relayed to us (allocated on first use) */
    uint8_t noffers;          /* records in use */
    uint8_t offers_cap;       /* records allocated */
    tls_conn_t *tls;          /* TLS state on a wss listener's connection; NULL on ws */
} conn_t;

/* Counters for /stats.json; only ever incremented. */
typedef struct server_counters {
    uint64_t accepted;
    uint64_t refused; /* connections refused by a cap */
    uint64_t messages_in;
    uint64_t messages_out;
    uint64_t bytes_in;
    uint64_t bytes_out;
    uint64_t relayed;
    uint64_t dropped; /* messages dropped because a reader was too slow */
    uint64_t rate_limited;
    uint64_t protocol_errors;
    uint64_t timeouts;
    uint64_t shed;
    uint64_t expired_peers;
    uint64_t remote_in;         /* deliveries received from other nodes */
    uint64_t remote_out;        /* deliveries sent to other nodes */
    uint64_t parked;            /* messages that waited for Redis or the database */
    uint64_t refused_unlisted;  /* announces and scraped infohashes not in the allowlist */
    uint64_t refused_denied;    /* announces and scraped infohashes in the denylist */
    uint64_t acl_removed;       /* memberships a reload removed from swarms no longer allowed */
    uint64_t reloads;           /* reloads (SIGHUP) applied */
    uint64_t reload_failures;   /* reloads refused: the running configuration was kept */
    uint64_t proxy_headers;     /* PROXY headers taken: the connection now counts as the client */
    uint64_t proxy_kept;        /* PROXY headers taken that name no client (LOCAL, UNKNOWN, ...) */
    uint64_t proxy_untrusted;   /* PROXY headers from an address not trusted: closed */
    uint64_t proxy_malformed;   /* malformed PROXY headers from a trusted address: closed */
    uint64_t tls_full;          /* TLS handshakes completed without resumption */
    uint64_t tls_resumed;       /* TLS handshakes that resumed a session (ticket) */
    uint64_t tls_handed_over;   /* TLS 1.3 connections handed over to tlsrec after the handshake */
    uint64_t tls_errors;        /* TLS connections closed for speaking something else than TLS */
    uint64_t tls_reloads;       /* certificate reloads that took effect */
    uint64_t tls_reload_errors; /* certificate reloads that failed (the old one stays) */
    /* Metrics (server/metrics.c): the counters above split by a fixed label. */
    uint64_t msg_in[MSG_TYPES];
    uint64_t msg_out[MSG_TYPES];
    uint64_t rate_limited_by[RL_KINDS];
    uint64_t timeouts_by[TO_KINDS];
    uint64_t http_requests; /* plain HTTP requests answered (/health, /metrics, ...) */
    uint64_t refused_msgs[REFUSAL_COUNT]; /* messages refused, by reason (hub/refusal.h) */
} server_counters_t;

/* Histograms of the event loop, for /metrics. Written by the loop thread only. */
typedef struct server_histos {
    histo_t iteration_us; /* busy time of one loop iteration (after epoll_wait returns) */
    histo_t message_us;   /* handling of one client message, from read to answer queued */
} server_histos_t;

/* A listening socket: ws or wss (its config_listener_t says which). */
typedef struct server_listener {
    int fd;      /* -1 when not open */
    uint8_t tls; /* connections accepted here speak TLS */
} server_listener_t;

/* A connection addressed by its handle-table entry (see hub/peers.h). */
typedef struct conn_ref {
    uint32_t slot, gen;
} conn_ref_t;

/* A growable list of connection references. */
typedef struct ref_list {
    conn_ref_t *v;
    uint32_t n, cap;
} ref_list_t;

/* Other nodes this node knows of; index 0 is this node. */
#define HUB_MAX_NODES 256

typedef struct hub_node {
    uint64_t id;   /* 0 when the entry is free */
    uint32_t seen; /* monotonic seconds when it was last in the live list */
} hub_node_t;

typedef struct server {
    config_t cfg;
    int epfd;
    server_listener_t listeners[CONFIG_MAX_LISTENERS]; /* one per cfg.listeners entry */
    uint32_t nlisteners;                               /* open listeners */
    tls_ctx_t *tls; /* certificate and ticket keys for wss listeners; NULL without any */
    int afd;        /* the --admin-listen socket, -1 when none */
    int sfd;        /* the signalfd (stop signals and SIGHUP), -1 when not running */
    int stopping;
    int reload_pending; /* SIGHUP arrived: reload at the end of this iteration */
    uint32_t fd_cap;    /* connections the descriptor limit allows */
    uint32_t max_conns; /* effective connection cap */
    uint32_t shed_high, shed_low;
    swarm_table_t *swarms;
    registry_t *registry;
    store_t *store;
    cluster_t *cluster; /* NULL in standalone mode */
    acl_t *acl;         /* the access list (--allowlist, --denylist), NULL when none */
    hmap_t ips;         /* client address -> ip_entry_t */
    rng_t rng;
    hash_key_t key;
    conn_t *conns;   /* all connections */
    uint32_t nconns; /* client connections (the caps and shedding count these) */
    uint32_t nadmin; /* admin-listener connections, capped by SERVER_ADMIN_MAX_CONNECTIONS */
    conn_t *flush_list;
    conn_t *close_list;
    /* The handle table: slot -> connection, with a generation that changes when a slot is
     * reused, so a stale handle (from another node, or a late reply) never reaches a newer
     * connection. */
    conn_t **slots;
    uint32_t *gens;
    uint32_t *free_slots; /* a stack of unused slots */
    uint32_t nslots, nfree;
    ref_list_t resume;     /* parked connections whose answer arrived */
    ref_list_t store_wait; /* parked connections waiting for the database */
    ref_list_t kicks;      /* connections to close with bye "replaced" */
    hub_node_t nodes[HUB_MAX_NODES];
    uint32_t node_hint;     /* the node-table index found last (peers_node_index) */
    uint32_t cluster_nodes; /* live nodes, from the last heartbeat */
    uint64_t cluster_conns; /* cluster-wide connections, from the last heartbeat */
    uint64_t local_members; /* swarm memberships of this node's peers */
    uint64_t local_swarms;  /* swarms with at least one of this node's peers */
    uint64_t local_seeders;
    uint64_t local_peers; /* IDs held by this node's connections */
    buf_t scratch;        /* a frame being built for route_deliver */
    uint32_t now;         /* monotonic seconds since start */
    uint32_t now_ms;      /* monotonic milliseconds since start (wraps after 49 days; buckets
                           * only use differences) */
    int64_t wall;         /* unix seconds */
    uint64_t start_ns;
    uint32_t next_tick;
    uint32_t next_flush_db;
    uint32_t accept_paused_until;
    server_counters_t count;
    server_histos_t histos;
    uint64_t iter_start_ns;                /* when epoll_wait last returned (metrics) */
    size_t top_cursor;                     /* where the dashboard's bounded swarm scan resumes */
    uint8_t top_ih[SERVER_TOP_SWARMS][20]; /* the largest swarms found so far */
    uint32_t ntop;
    loglimit_t loglimit;            /* log lines clients cause (hub/evlog.c) */
    server_counters_t summary_base; /* the counters at the last log summary */
    uint32_t next_summary;          /* when the next log summary is due (monotonic seconds) */
    uint8_t rbuf[SERVER_READ_BYTES];
    json_tok_t toks[SERVER_MAX_JSON_TOKENS];
} server_t;

#endif
