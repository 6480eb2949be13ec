/* loadgen.c: the load generator of the sigtracker benchmark suite.
 *
 * One thread, one epoll loop, its own minimal RFC 6455 client (HTTP upgrade, masked frames, 16- and
 * 64-bit lengths, pings answered, fragmented messages and many frames per read handled). It drives
 * any tracker at ws://HOST:PORT in one of two dialects:
 *
 *   --mode wt   WebTorrent, the wire format of bittorrent-tracker (and aquatic_ws, wt-tracker...).
 *               It follows aquatic_ws_load_test: each connection has one random 20-byte peer_id,
 *               announces with N offers to an infohash drawn from a Gamma(0.2, 100)-skewed
 *               distribution over T torrents, and keeps at most --window requests outstanding
 *               (aquatic: one). Unlike aquatic it reads every message the server sends and answers
 *               every relayed offer, so a tracker that never drops (bittorrent-tracker) and one
 * that does (sigtracker, aquatic) are measured under the same, closed-loop load.
 *   --mode st   sigtracker's own dialect: ola, announce with num_want, then offer, answer and
 *               candidate relays between the returned peers.
 *
 * Besides the active connections it can hold idle ones (--idle, spread over source addresses
 * 127.0.0.2 and up) and churn connections (--churn per second). Given several ports (--port
 * A,B,...: the nodes of a sigtracker cluster) it deals its connections round-robin over them and
 * tells relays that crossed from one port to another from those that stayed on one. It measures
 * over a window that starts once every connection is open and a warm-up has passed, reads the
 * server's CPU time and memory from /proc when given its pid (or several pids, summed), and ends
 * with a human-readable report and one "RESULT key=value ..." line for scripts.
 *
 * With --tls every connection speaks wss:// instead: TLS (OpenSSL 3, non-blocking, on the same
 * epoll loop) after the TCP connect, then the same upgrade and frames through SSL_write_ex and
 * SSL_read_ex. The server's certificate is not verified and no SNI is sent: this is a benchmark
 * against a server we started ourselves with a self-signed certificate, not a client to trust. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

/* ---- limits and tunables ------------------------------------------------------------------- */

/* Bytes in a WebTorrent "binary string" ID (info_hash, peer_id, offer_id). */
#define ID_BYTES 20
/* Longest JSON form of a binary string: every byte as \u00XX, plus the quotes. */
#define ID_JSON_MAX (ID_BYTES * 6 + 2)
/* Longest ST peer_id we generate (the dialect allows 64 characters). */
#define ST_ID_MAX 32
/* Events taken from epoll per wait. */
#define MAX_EVENTS 1024
/* Bytes asked of one recv(2); the shared read buffer has this size. */
#define READ_CHUNK (256 * 1024)
/* Largest message accepted from a server; no tracker sends anything near it. */
#define MAX_MESSAGE_BYTES (16 * 1024 * 1024)
/* Largest message this program builds: an announce with MAX_OFFERS offers is about 20 KB. */
#define MAX_BUILD_BYTES (128 * 1024)
/* Most offers one announce may carry (--offers). */
#define MAX_OFFERS 64
/* Most requests one connection may have outstanding (--window). */
#define MAX_WINDOW 16
/* Connections being opened at once (TCP connect, upgrade and, for idle ones, the first announce),
 * so that the ramp does not overflow the server's listen backlog. */
#define MAX_PENDING_OPENS 256
/* Idle and churn connections per source address. One address runs out of ephemeral ports near
 * 28k; churned sockets also sit in TIME_WAIT for 60 s, hence the margin. */
#define DEFAULT_PER_ADDR 5000
/* Most top-level fields read from one server message. */
#define MAX_FIELDS 24
/* Most peers read from one ST announce answer. */
#define MAX_ST_PEERS 128
/* Longest HTTP upgrade response we wait for before calling it broken. */
#define MAX_UPGRADE_RESPONSE 8192
/* Milliseconds between sweeps for stuck opens and requests that got no answer. */
#define SWEEP_INTERVAL_MS 100
/* Seconds between progress lines on stderr. */
#define PROGRESS_INTERVAL_S 5
/* Distinct error texts kept for the report; the rest are counted as "other". */
#define MAX_REASONS 24
/* Longest error text kept. */
#define REASON_TEXT 120
/* Times an active connection is reopened after the server closed it, across the whole run. */
#define MAX_REOPENS 100000
/* Probability that an announce says the peer is a seeder (aquatic: peer_seeder_probability). */
#define SEEDER_PROBABILITY 0.25
/* Bytes "left" that a leecher reports (aquatic sends 50). */
#define LEECHER_LEFT 50
/* aquatic_ws_load_test's torrent selection: Gamma(shape, scale), then (min(p, 101) - 1) / 100. */
#define TORRENT_GAMMA_SHAPE 0.2
#define TORRENT_GAMMA_SCALE 100.0
/* Infohashes in one scrape request (aquatic: 5). */
#define SCRAPE_HASHES 5
/* Seconds the server's /stats.json request may take. */
#define STATS_TIMEOUT_S 2
/* Nanoseconds per second, microsecond and millisecond. */
#define NS_PER_S 1000000000ull
#define NS_PER_US 1000ull
#define NS_PER_MS 1000000ull
/* The largest fd budget this program claims beyond its connections (epoll, stdio, stats). */
#define SPARE_FDS 16
/* Most ports (--port A,B,...) and server processes (--server-pid A,B,...) one run may name. */
#define MAX_PORTS 16
/* Bytes of OpenSSL's error text kept for one failure reason. */
#define TLS_ERROR_TEXT 96
#define MAX_PIDS 16

/* A fake SDP of about 200 bytes, JSON-escaped, in offers and answers. */
#define FAKE_SDP                                                                                   \
    "v=0\\r\\no=- 4611731400430051336 2 IN IP4 127.0.0.1\\r\\ns=-\\r\\nt=0 0\\r\\n"                \
    "a=group:BUNDLE 0\\r\\na=msid-semantic: WMS\\r\\nm=application 9 UDP/DTLS/SCTP "               \
    "webrtc-datachannel\\r\\nc=IN IP4 0.0.0.0\\r\\na=ice-ufrag:Wq3x\\r\\n"                         \
    "a=ice-pwd:Tk4fGhJ2kLmN8pQrS5tUvWxY\\r\\n"
/* The ICE candidate the ST mode trickles after an answer. */
#define FAKE_CANDIDATE "candidate:1 1 UDP 2122252543 192.0.2.10 54400 typ host"

/* ---- small utilities ----------------------------------------------------------------------- */

/* Prints the message and exits with status 2 (a usage or set-up error, not a measurement). */
__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("loadgen: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n);
    if (q == NULL && n != 0)
        die("out of memory (%zu bytes)", n);
    return q;
}

/* splitmix64: fast and good enough for picking torrents and filling IDs. */
static uint64_t g_rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd64(void) {
    uint64_t z = (g_rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Returns a double uniform in [0, 1). */
static double rnd_unit(void) {
    return (double)(rnd64() >> 11) * (1.0 / 9007199254740992.0);
}

static void rnd_bytes(uint8_t *p, size_t n) {
    while (n > 0) {
        uint64_t r = rnd64();
        size_t k = n < 8 ? n : 8;
        memcpy(p, &r, k);
        p += k;
        n -= k;
    }
}

/* Standard normal by Box-Muller; only the set-up and torrent draws use it. */
static double rnd_normal(void) {
    double u1 = rnd_unit(), u2 = rnd_unit();
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* Gamma(shape, 1) by Marsaglia and Tsang; shapes below 1 use the boost Gamma(a+1) * U^(1/a). */
static double rnd_gamma(double shape) {
    if (shape < 1.0) {
        double u = rnd_unit();
        return rnd_gamma(shape + 1.0) * pow(u > 0 ? u : 1e-300, 1.0 / shape);
    }
    double d = shape - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x = rnd_normal(), v = 1.0 + c * x;
        if (v <= 0)
            continue;
        v = v * v * v;
        double u = rnd_unit();
        if (u < 1.0 - 0.0331 * x * x * x * x || log(u) < 0.5 * x * x + d * (1.0 - v + log(v)))
            return d * v;
    }
}

/* ---- byte buffers -------------------------------------------------------------------------- */

typedef struct {
    uint8_t *p;
    size_t len, cap;
} buf_t;

static void buf_reserve(buf_t *b, size_t extra) {
    if (b->len + extra <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra)
        cap *= 2;
    b->p = xrealloc(b->p, cap);
    b->cap = cap;
}

static void buf_append(buf_t *b, const void *p, size_t n) {
    buf_reserve(b, n);
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void buf_free(buf_t *b) {
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* ---- latency histograms -------------------------------------------------------------------- */

/* 64 linear sub-buckets per power of two of nanoseconds: every percentile is exact to 1/64
 * (1.6 %) at any scale, in a fixed 30 KB per histogram. */
#define HIST_SUB_BITS 6
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_BUCKETS ((64u - HIST_SUB_BITS + 1u) * HIST_SUB)

typedef struct {
    uint64_t count, max;
    uint64_t b[HIST_BUCKETS];
} hist_t;

static unsigned hist_index(uint64_t v) {
    if (v < HIST_SUB)
        return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v);
    unsigned sub = (unsigned)(v >> (e - HIST_SUB_BITS)) & (HIST_SUB - 1);
    return (e - HIST_SUB_BITS + 1) * HIST_SUB + sub;
}

/* Returns the largest value that falls into bucket i. */
static uint64_t hist_upper(unsigned i) {
    if (i < HIST_SUB)
        return i;
    unsigned e = i / HIST_SUB - 1 + HIST_SUB_BITS;
    uint64_t sub = i % HIST_SUB;
    uint64_t lo = (1ull << e) | (sub << (e - HIST_SUB_BITS));
    return lo + (1ull << (e - HIST_SUB_BITS)) - 1;
}

static void hist_add(hist_t *h, uint64_t v) {
    h->b[hist_index(v)]++;
    h->count++;
    if (v > h->max)
        h->max = v;
}

/* Returns the q-quantile (0 < q <= 1) in nanoseconds, never above the exact maximum. */
static uint64_t hist_quantile(const hist_t *h, double q) {
    if (h->count == 0)
        return 0;
    uint64_t rank = (uint64_t)ceil(q * (double)h->count), seen = 0;
    if (rank == 0)
        rank = 1;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            uint64_t v = hist_upper(i);
            return v < h->max ? v : h->max;
        }
    }
    return h->max;
}

/* ---- a scanner for the top level of a JSON object ------------------------------------------ */

/* One top-level member: the key without quotes, and the raw value text (strings with quotes). */
typedef struct {
    const char *key, *val;
    size_t klen, vlen;
} field_t;

static const char *skip_ws(const char *p, const char *e) {
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* p points at a quote. Returns the pointer past the closing quote, or NULL when unterminated. */
static const char *skip_string(const char *p, const char *e) {
    /* memchr finds the candidate quotes quickly (SDPs are long and full of escapes); a quote
     * preceded by an odd number of backslashes is escaped and the search goes on. */
    for (p++; p < e;) {
        const char *q = memchr(p, '"', (size_t)(e - p));
        if (q == NULL)
            return NULL;
        size_t bs = 0;
        while (q - bs > p && q[-1 - (ptrdiff_t)bs] == '\\')
            bs++;
        if (bs % 2 == 0)
            return q + 1;
        p = q + 1;
    }
    return NULL;
}

/* Returns the pointer past the value starting at p, or NULL when it is truncated. The scanner
 * trusts the server to send JSON; it only has to find the fields, not validate them. */
static const char *skip_value(const char *p, const char *e) {
    if (p >= e)
        return NULL;
    if (*p == '"')
        return skip_string(p, e);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        while (p < e) {
            if (*p == '"') {
                p = skip_string(p, e);
                if (p == NULL)
                    return NULL;
                continue;
            }
            if (*p == '{' || *p == '[')
                depth++;
            else if ((*p == '}' || *p == ']') && --depth == 0)
                return p + 1;
            p++;
        }
        return NULL;
    }
    while (p < e && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\n' && *p != '\r' &&
           *p != '\t')
        p++;
    return p;
}

/* Fills f with the top-level members of the object in p[0..n). Returns how many, or -1 when the
 * text is not an object. Members beyond max are skipped. */
static int scan_object(const char *p, size_t n, field_t *f, int max) {
    const char *e = p + n;
    p = skip_ws(p, e);
    if (p >= e || *p != '{')
        return -1;
    p = skip_ws(p + 1, e);
    int k = 0;
    if (p < e && *p == '}')
        return 0;
    while (p < e) {
        if (*p != '"')
            return -1;
        const char *ke = skip_string(p, e);
        if (ke == NULL)
            return -1;
        const char *key = p + 1;
        size_t klen = (size_t)(ke - 1 - key);
        p = skip_ws(ke, e);
        if (p >= e || *p != ':')
            return -1;
        p = skip_ws(p + 1, e);
        const char *ve = skip_value(p, e);
        if (ve == NULL)
            return -1;
        if (k < max)
            f[k++] = (field_t){key, p, klen, (size_t)(ve - p)};
        p = skip_ws(ve, e);
        if (p < e && *p == ',') {
            p = skip_ws(p + 1, e);
            continue;
        }
        if (p < e && *p == '}')
            return k;
        return -1;
    }
    return -1;
}

static const field_t *field_get(const field_t *f, int n, const char *key) {
    size_t kl = strlen(key);
    for (int i = 0; i < n; i++)
        if (f[i].klen == kl && memcmp(f[i].key, key, kl) == 0)
            return &f[i];
    return NULL;
}

/* True when the field is the JSON string s (no escapes in s). */
static bool field_is(const field_t *v, const char *s) {
    size_t n = strlen(s);
    return v != NULL && v->vlen == n + 2 && v->val[0] == '"' && memcmp(v->val + 1, s, n) == 0;
}

static int hexval(int ch) {
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Decodes a JSON string value (with quotes) into code points <= 0xFF, one byte each, as the
 * WebTorrent "binary strings" are: \u00XX escapes and 2-byte UTF-8 both appear on the wire.
 * Returns the byte count, or -1 when a code point does not fit a byte or out is too small. */
static int json_latin1(const char *v, size_t n, uint8_t *out, size_t cap) {
    if (n < 2 || v[0] != '"' || v[n - 1] != '"')
        return -1;
    const unsigned char *p = (const unsigned char *)v + 1, *e = (const unsigned char *)v + n - 1;
    size_t k = 0;
    while (p < e) {
        unsigned cp;
        if (*p == '\\') {
            if (p + 1 >= e)
                return -1;
            switch (p[1]) {
            case 'b':
                cp = '\b';
                break;
            case 'f':
                cp = '\f';
                break;
            case 'n':
                cp = '\n';
                break;
            case 'r':
                cp = '\r';
                break;
            case 't':
                cp = '\t';
                break;
            case 'u': {
                if (p + 6 > e)
                    return -1;
                cp = 0;
                for (int i = 2; i < 6; i++) {
                    int h = hexval(p[i]);
                    if (h < 0)
                        return -1;
                    cp = cp << 4 | (unsigned)h;
                }
                p += 4;
                break;
            }
            default:
                cp = p[1];
                break;
            }
            p += 2;
        } else if (*p < 0x80) {
            cp = *p++;
        } else if ((*p & 0xE0) == 0xC0 && p + 1 < e && (p[1] & 0xC0) == 0x80) {
            cp = (unsigned)(p[0] & 0x1F) << 6 | (p[1] & 0x3F);
            p += 2;
        } else {
            return -1;
        }
        if (cp > 0xFF || k >= cap)
            return -1;
        out[k++] = (uint8_t)cp;
    }
    return (int)k;
}

static int decode_id(const field_t *v, uint8_t out[ID_BYTES]) {
    return v != NULL && json_latin1(v->val, v->vlen, out, ID_BYTES) == ID_BYTES ? 0 : -1;
}

/* ---- message building ---------------------------------------------------------------------- */

/* Every outgoing message is built here, then framed and masked into the connection's buffer. */
static char g_msg[MAX_BUILD_BYTES];
static size_t g_msg_len;

static void sb_reset(void) {
    g_msg_len = 0;
}

static void sb_mem(const char *s, size_t n) {
    if (g_msg_len + n > sizeof(g_msg))
        die("internal: message larger than %d bytes", MAX_BUILD_BYTES);
    memcpy(g_msg + g_msg_len, s, n);
    g_msg_len += n;
}

/* Appends a string literal; the "" makes anything but a literal (a pointer, whose sizeof is not
 * its length) a compile error. */
#define SB_LIT(s) sb_mem("" s, sizeof(s) - 1)

static void sb_u64(uint64_t v) {
    char t[24];
    int n = snprintf(t, sizeof(t), "%llu", (unsigned long long)v);
    sb_mem(t, (size_t)n);
}

static void sb_hex(const uint8_t *p, size_t n) {
    static const char digits[] = "0123456789abcdef";
    char t[2 * ID_BYTES];
    for (size_t i = 0; i < n && i < ID_BYTES; i++) {
        t[2 * i] = digits[p[i] >> 4];
        t[2 * i + 1] = digits[p[i] & 15];
    }
    sb_mem(t, 2 * (n < ID_BYTES ? n : ID_BYTES));
}

/* Writes a binary-string ID as JSON, 7-bit clean: \u00XX for controls and bytes >= 0x7F. */
static size_t id_json(const uint8_t id[ID_BYTES], char *o) {
    static const char digits[] = "0123456789abcdef";
    size_t k = 0;
    o[k++] = '"';
    for (int i = 0; i < ID_BYTES; i++) {
        uint8_t ch = id[i];
        if (ch == '"' || ch == '\\') {
            o[k++] = '\\';
            o[k++] = (char)ch;
        } else if (ch < 0x20 || ch >= 0x7f) {
            memcpy(o + k, "\\u00", 4);
            o[k + 4] = digits[ch >> 4];
            o[k + 5] = digits[ch & 15];
            k += 6;
        } else {
            o[k++] = (char)ch;
        }
    }
    o[k++] = '"';
    return k;
}

static void sb_id(const uint8_t id[ID_BYTES]) {
    char t[ID_JSON_MAX];
    sb_mem(t, id_json(id, t));
}

/* ---- configuration ------------------------------------------------------------------------- */

enum { MODE_WT, MODE_ST };

static struct {
    const char *host;
    int port;             /* the first of ports[] */
    int ports[MAX_PORTS]; /* connection i goes to ports[i % nports] */
    uint32_t nports;
    int mode;
    uint32_t connections, idle, window, offers, torrents, numwant, per_addr, addr_base;
    double churn, scrape_ratio, duration, warmup, rate, ramp_timeout, req_timeout;
    pid_t server_pid; /* the first of server_pids[]; 0 = none */
    pid_t server_pids[MAX_PIDS];
    uint32_t nserver_pids; /* their CPU time and memory are summed */
    bool server_stats;
    int stats_port; /* GET /stats.json goes here (plain HTTP) instead of to ports[]; 0 = ports[] */
    bool tls;       /* wss://: TLS on every connection */
    uint64_t seed;
} g_cfg = {
    .host = "127.0.0.1",
    .mode = MODE_WT,
    .connections = 100,
    .window = 1,
    .offers = 10,
    .torrents = 10000,
    .numwant = 10,
    .per_addr = DEFAULT_PER_ADDR,
    .addr_base = 2,
    .duration = 10,
    .warmup = 2,
    .ramp_timeout = 60,
    .req_timeout = 10,
};

/* ---- counters ------------------------------------------------------------------------------ */

/* Everything counted in the measurement window; reset when the window opens. */
typedef struct {
    uint64_t sent, recv, bytes_sent, bytes_recv;
    uint64_t announces, scrapes, olas, offers_sent, answers_sent, candidates_sent;
    uint64_t ann_ok, scrape_ok, offers_recv, answers_recv, candidates_recv;
    uint64_t errors, closes, timeouts, unmatched, bad_messages, connect_failures, upgrade_failures;
    uint64_t churn_done, reopens;
    hist_t ann, offer, answer, churn;
    /* With several ports: offers delivered on another port than the offerer's, and on its own. */
    hist_t offer_cross, offer_local;
} counts_t;

static counts_t g_n;

typedef struct {
    char text[REASON_TEXT];
    uint64_t n;
} reason_t;

static reason_t g_reasons[MAX_REASONS];
static uint64_t g_reasons_other;

/* Counts one error text (a failure reason, an error code and message, a close reason). */
__attribute__((format(printf, 1, 2))) static void note_reason(const char *fmt, ...) {
    char t[REASON_TEXT];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t, sizeof(t), fmt, ap);
    va_end(ap);
    for (int i = 0; i < MAX_REASONS; i++) {
        if (g_reasons[i].n == 0) {
            memcpy(g_reasons[i].text, t, sizeof(t));
            g_reasons[i].n = 1;
            return;
        }
        if (strcmp(g_reasons[i].text, t) == 0) {
            g_reasons[i].n++;
            return;
        }
    }
    g_reasons_other++;
}

/* Copies a JSON string value (without its quotes and unescaped only crudely) for a report. */
static void field_text(const field_t *v, char *out, size_t cap) {
    size_t k = 0;
    if (v != NULL) {
        size_t s = v->vlen >= 2 && v->val[0] == '"' ? 1 : 0;
        size_t e = s ? v->vlen - 1 : v->vlen;
        for (size_t i = s; i < e && k + 1 < cap; i++)
            out[k++] = (char)((unsigned char)v->val[i] < 0x20 ? '?' : v->val[i]);
    }
    out[k] = '\0';
}

/* ---- connections --------------------------------------------------------------------------- */

enum { KIND_ACTIVE, KIND_IDLE, KIND_CHURN };
enum { CS_FREE, CS_CONNECTING, CS_HANDSHAKE, CS_UPGRADING, CS_OPEN };
enum { REQ_ANNOUNCE, REQ_SCRAPE };

/* One outstanding request: when it left, and the torrent it named (to match its answer). */
typedef struct {
    uint64_t sent_ns;
    uint32_t torrent;
    uint8_t type;
} req_t;

typedef struct conn conn_t;
struct conn {
    int fd;
    SSL *ssl; /* with --tls, from the TCP connect on; NULL in plain mode */
    uint8_t kind, state;
    uint8_t identified; /* ST: the server accepted our ola */
    uint8_t settled;    /* idle/churn: the one announce was answered */
    uint8_t pending;    /* counted in g_pending (being opened) */
    uint8_t dirty, waiting, queued;
    uint8_t frag_op, nreq, req_head, st_id_len;
    uint32_t index, addr;
    uint8_t port_ix; /* index into g_cfg.ports[] (and g_server[]) */
    uint64_t opened_ns;
    req_t req[MAX_WINDOW];
    uint8_t peer_id[ID_BYTES];
    char st_id[ST_ID_MAX];
    char ws_key[25];
    buf_t in, out, frag;
    conn_t *next_dirty, *next_wait;
};

static conn_t *g_conns;
static uint32_t g_nconns; /* slots: active, then idle, then churn */
static uint32_t g_churn_base, g_churn_slots;
static uint32_t *g_churn_free, g_churn_nfree;
static uint32_t *g_openq, g_openq_head, g_openq_len; /* slots waiting to be opened */
static uint32_t g_pending, g_open_active, g_settled_idle, g_failed_idle, g_reopens;
static uint64_t g_churn_started, g_churn_lag;
static int g_ep = -1;
static conn_t *g_dirty_head;
static conn_t *g_wait_head, *g_wait_tail;
static double g_credit;
static struct sockaddr_in g_server[MAX_PORTS];
static char g_host_header[MAX_PORTS][64];
static char g_target[256]; /* for the report: HOST:PORT or HOST:PORT,PORT,... */
static uint8_t g_port_key; /* hides the offerer's port index in offer IDs (with several ports) */
static uint8_t (*g_ih)[ID_BYTES];
static char (*g_ih_json)[ID_JSON_MAX];
static uint8_t *g_ih_json_len;
static uint64_t g_ts_key; /* hides the send time inside offer IDs so they still look random */
static uint64_t g_t0;
static bool g_measuring;
static bool g_started; /* the ramp is over: active connections may send requests */
static volatile sig_atomic_t g_stop;
static uint8_t g_rbuf[READ_CHUNK];
static SSL_CTX *g_tls_ctx;  /* with --tls */
static char g_tls_desc[64]; /* the first handshake's protocol and cipher, for the report */

static uint32_t pick_torrent(void) {
    if (g_cfg.torrents <= 1)
        return 0;
    double p = rnd_gamma(TORRENT_GAMMA_SHAPE) * TORRENT_GAMMA_SCALE;
    p = (fmin(p, 101.0) - 1.0) / 100.0;
    double idx = p * (double)(g_cfg.torrents - 1);
    if (!(idx > 0))
        return 0;
    return idx >= (double)(g_cfg.torrents - 1) ? g_cfg.torrents - 1 : (uint32_t)idx;
}

/* An offer ID carries its send time (XOR a per-run key) in its first 8 bytes, so a relayed offer
 * tells its own latency wherever it lands, without a table. With several ports the next byte
 * carries the offerer's port index (XOR another key), so the receiver can tell whether the offer
 * crossed between nodes. */
static void make_offer_id(uint8_t id[ID_BYTES], uint64_t t, const conn_t *from) {
    uint64_t x = t ^ g_ts_key;
    memcpy(id, &x, sizeof(x));
    rnd_bytes(id + sizeof(x), ID_BYTES - sizeof(x));
    if (g_cfg.nports > 1)
        id[sizeof(x)] = (uint8_t)(from->port_ix ^ g_port_key);
}

/* Records an offer's delivery latency; with several ports also as crossed or not. */
static void offer_delivered(const conn_t *to, const uint8_t id[ID_BYTES], uint64_t t,
                            uint64_t now) {
    hist_add(&g_n.offer, now - t);
    if (g_cfg.nports > 1) {
        uint8_t from = (uint8_t)(id[sizeof(uint64_t)] ^ g_port_key);
        hist_add(from == to->port_ix ? &g_n.offer_local : &g_n.offer_cross, now - t);
    }
}

/* Returns the send time hidden in an offer ID, or 0 when it is not one of ours. */
static uint64_t offer_time(const uint8_t id[ID_BYTES], uint64_t now) {
    uint64_t x;
    memcpy(&x, id, sizeof(x));
    x ^= g_ts_key;
    return x >= g_t0 && x <= now ? x : 0;
}

static void mark_dirty(conn_t *c) {
    if (!c->dirty) {
        c->dirty = 1;
        c->next_dirty = g_dirty_head;
        g_dirty_head = c;
    }
}

/* Frames, masks and queues one message; it leaves at the end of the loop iteration. */
static void ws_send(conn_t *c, int opcode, const void *payload, size_t n) {
    buf_t *b = &c->out;
    buf_reserve(b, n + 14);
    uint8_t *h = b->p + b->len;
    size_t hl;
    h[0] = (uint8_t)(0x80 | opcode);
    if (n < 126) {
        h[1] = (uint8_t)(0x80 | n);
        hl = 2;
    } else if (n <= 0xFFFF) {
        h[1] = 0x80 | 126;
        h[2] = (uint8_t)(n >> 8);
        h[3] = (uint8_t)n;
        hl = 4;
    } else {
        h[1] = 0x80 | 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
        hl = 10;
    }
    uint32_t key32 = (uint32_t)rnd64();
    uint8_t key[4];
    memcpy(key, &key32, 4);
    memcpy(h + hl, key, 4);
    hl += 4;
    uint8_t *o = h + hl;
    const uint8_t *s = payload;
    size_t i = 0;
    /* Mask eight bytes at a time: offers make announces of several kilobytes. */
    uint64_t k8 = (uint64_t)key32 | (uint64_t)key32 << 32, w;
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, s + i, 8);
        w ^= k8;
        memcpy(o + i, &w, 8);
    }
    for (; i < n; i++)
        o[i] = s[i] ^ key[i & 3];
    b->len += hl + n;
    if (opcode == 0x1 || opcode == 0x2) {
        g_n.sent++;
        g_n.bytes_sent += n;
        if (g_cfg.rate > 0)
            g_credit -= 1.0;
    }
    mark_dirty(c);
}

static void send_msg(conn_t *c) {
    ws_send(c, 0x1, g_msg, g_msg_len);
}

static void conn_close(conn_t *c);

/* Describes a failed OpenSSL call for a failure reason: the oldest error OpenSSL queued, or errno
 * for a failed system call, or the SSL_get_error() code. It empties OpenSSL's error queue, because
 * SSL_get_error() reads that queue and would blame the next connection's failure on this one.
 * Returns a static buffer. */
static const char *tls_error_text(int ssl_error) {
    static char text[TLS_ERROR_TEXT];
    unsigned long e = ERR_get_error();
    if (e != 0)
        ERR_error_string_n(e, text, sizeof(text));
    else if (ssl_error == SSL_ERROR_SYSCALL && errno != 0)
        snprintf(text, sizeof(text), "%s", strerror(errno));
    else
        snprintf(text, sizeof(text), "SSL_get_error %d", ssl_error);
    ERR_clear_error();
    return text;
}

/* Writes out what is queued through TLS, advancing *off. Returns 0 when everything went or the
 * socket is full, -1 when the connection broke (and was closed). The context has
 * SSL_MODE_ENABLE_PARTIAL_WRITE, so a write reports each record it sent and a full socket leaves
 * the rest queued here, and SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER, because the retry after
 * SSL_ERROR_WANT_WRITE starts with the same bytes but the queue may have been moved by then. */
static int tls_flush(conn_t *c, size_t *off) {
    while (*off < c->out.len) {
        size_t w = 0;
        if (SSL_write_ex(c->ssl, c->out.p + *off, c->out.len - *off, &w) == 1) {
            *off += w;
            continue;
        }
        int e = SSL_get_error(c->ssl, 0);
        /* WANT_READ would be a renegotiation, which TLS 1.3 has not and the server refuses; the
         * next readable event retries either way (on_event reads on every TLS event). */
        if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
            return 0;
        if (c->state == CS_OPEN) {
            g_n.closes++;
            note_reason("SSL_write_ex: %s", tls_error_text(e));
        } else {
            ERR_clear_error();
        }
        conn_close(c);
        return -1;
    }
    return 0;
}

/* Writes out what is queued. Returns 0, or -1 when the connection broke (and was closed). */
static int conn_flush(conn_t *c) {
    size_t off = 0;
    if (c->ssl != NULL && tls_flush(c, &off) != 0)
        return -1;
    while (c->ssl == NULL && off < c->out.len) {
        ssize_t w = send(c->fd, c->out.p + off, c->out.len - off, MSG_NOSIGNAL);
        if (w > 0) {
            off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (c->state == CS_OPEN) {
            g_n.closes++;
            note_reason("send: %s", strerror(errno));
        }
        conn_close(c);
        return -1;
    }
    if (off == c->out.len) {
        c->out.len = 0;
        /* Idle connections go quiet: give their buffer back, as 15,000 of them add up. */
        if (c->kind != KIND_ACTIVE)
            buf_free(&c->out);
    } else if (off > 0) {
        memmove(c->out.p, c->out.p + off, c->out.len - off);
        c->out.len -= off;
    }
    return 0;
}

static void flush_dirty(void) {
    while (g_dirty_head != NULL) {
        conn_t *c = g_dirty_head;
        g_dirty_head = c->next_dirty;
        c->dirty = 0;
        if (c->state != CS_FREE && c->out.len > 0)
            conn_flush(c);
    }
}

static void wait_credit(conn_t *c) {
    if (c->waiting)
        return;
    c->waiting = 1;
    c->next_wait = NULL;
    if (g_wait_tail)
        g_wait_tail->next_wait = c;
    else
        g_wait_head = c;
    g_wait_tail = c;
}

static void openq_push(uint32_t i) {
    if (g_conns[i].queued)
        return;
    g_conns[i].queued = 1;
    g_openq[(g_openq_head + g_openq_len++) % g_nconns] = i;
}

static void unpend(conn_t *c) {
    if (c->pending) {
        c->pending = 0;
        g_pending--;
    }
}

/* Closes the socket and resets the slot, keeping the list links that may still name it. */
static void conn_close(conn_t *c) {
    if (c->state == CS_FREE)
        return;
    if (c->kind == KIND_ACTIVE && c->state == CS_OPEN)
        g_open_active--;
    if (c->kind == KIND_IDLE && c->settled) {
        g_settled_idle--; /* no longer held: it counts as a failed idle connection */
        g_failed_idle++;
    }
    unpend(c);
    /* No close_notify: the socket is closed right after, and the server takes a TCP EOF for an
     * ordinary close (SSL_OP_IGNORE_UNEXPECTED_EOF on its side). */
    if (c->ssl != NULL) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    close(c->fd);
    c->fd = -1;
    c->state = CS_FREE;
    buf_free(&c->in);
    buf_free(&c->out);
    buf_free(&c->frag);
    c->nreq = c->req_head = 0;
    c->identified = c->settled = 0;
    if (c->kind == KIND_CHURN)
        g_churn_free[g_churn_nfree++] = c->index;
}

/* The server closed the connection, or it broke. Active connections are reopened so that the
 * load stays what was asked; the close is counted either way. */
static void conn_lost(conn_t *c, const char *why) {
    bool was_open = c->state == CS_OPEN;
    if (was_open && !(c->kind == KIND_CHURN && c->settled)) {
        g_n.closes++;
        note_reason("closed by server: %s", why);
    }
    if (c->kind == KIND_IDLE && !c->settled)
        g_failed_idle++;
    conn_close(c);
    if (c->kind == KIND_ACTIVE && !g_stop && g_reopens < MAX_REOPENS) {
        g_reopens++;
        g_n.reopens++;
        openq_push(c->index);
    }
}

/* Picks the source address of an idle or churn connection: 127.0.0.(base + k / per_addr). */
static int bind_source(int fd, uint32_t k) {
    if (g_cfg.addr_base == 0)
        return 0;
    uint32_t host = g_cfg.addr_base + k / g_cfg.per_addr;
    if (host > 254)
        die("too many idle/churn connections for 127.0.0.%u..254 at %u per address",
            g_cfg.addr_base, g_cfg.per_addr);
    int one = 1;
    /* Without this, bind() reserves a port for the address alone and the 4-tuple space is lost. */
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(0x7F000000u | host);
    return bind(fd, (struct sockaddr *)&a, sizeof(a));
}

static void conn_open(conn_t *c) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket: %s", strerror(errno));
    if (c->kind != KIND_ACTIVE && bind_source(fd, c->addr) != 0) {
        g_n.connect_failures++;
        note_reason("bind 127.0.0.x: %s", strerror(errno));
        close(fd);
        if (c->kind == KIND_IDLE)
            g_failed_idle++;
        else
            g_churn_free[g_churn_nfree++] = c->index;
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->fd = fd;
    c->state = CS_CONNECTING;
    c->opened_ns = now_ns();
    c->pending = 1;
    g_pending++;
    int r = connect(fd, (struct sockaddr *)&g_server[c->port_ix], sizeof(g_server[0]));
    if (r != 0 && errno != EINPROGRESS) {
        g_n.connect_failures++;
        note_reason("connect: %s", strerror(errno));
        if (c->kind == KIND_IDLE)
            g_failed_idle++;
        conn_close(c);
        return;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
    if (epoll_ctl(g_ep, EPOLL_CTL_ADD, fd, &ev) != 0)
        die("epoll_ctl: %s", strerror(errno));
}

/* Base64 of n bytes, NUL-terminated; out needs 4 * ceil(n / 3) + 1 bytes. */
static void base64(const uint8_t *p, size_t n, char *out) {
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t k = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        out[k++] = t[v >> 18 & 63];
        out[k++] = t[v >> 12 & 63];
        out[k++] = i + 1 < n ? t[v >> 6 & 63] : '=';
        out[k++] = i + 2 < n ? t[v & 63] : '=';
    }
    out[k] = '\0';
}

static void send_upgrade(conn_t *c) {
    uint8_t nonce[16];
    rnd_bytes(nonce, sizeof(nonce));
    base64(nonce, sizeof(nonce), c->ws_key);
    char req[512];
    int n = snprintf(req, sizeof(req),
                     "GET / HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                     g_host_header[c->port_ix], c->ws_key);
    buf_append(&c->out, req, (size_t)n);
    c->state = CS_UPGRADING;
    mark_dirty(c);
}

static void on_open(conn_t *c);

/* Checks the upgrade response in c->in. Returns 1 when the connection is now open (the header has
 * been consumed), 0 when more bytes are needed, -1 when it failed (the connection is closed). */
static int upgrade_parse(conn_t *c) {
    const char *p = (const char *)c->in.p;
    size_t n = c->in.len;
    const char *end = memmem(p, n, "\r\n\r\n", 4);
    if (end == NULL) {
        if (n > MAX_UPGRADE_RESPONSE) {
            g_n.upgrade_failures++;
            note_reason("upgrade: response header too long");
            conn_close(c);
            return -1;
        }
        return 0;
    }
    size_t hlen = (size_t)(end - p) + 4;
    char line[80];
    size_t ll = (size_t)((const char *)memchr(p, '\r', hlen) - p);
    snprintf(line, sizeof(line), "%.*s", (int)(ll < sizeof(line) - 1 ? ll : sizeof(line) - 1), p);
    if (strncmp(line, "HTTP/1.1 101", 12) != 0) {
        g_n.upgrade_failures++;
        note_reason("upgrade refused: %s", line);
        conn_close(c);
        return -1;
    }
    /* Sec-WebSocket-Accept must be base64(SHA-1(key + GUID)) (RFC 6455 section 4.1). */
    char src[64], want[32];
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    int sl = snprintf(src, sizeof(src), "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", c->ws_key);
    EVP_Digest(src, (size_t)sl, md, &mdlen, EVP_sha1(), NULL);
    base64(md, mdlen, want);
    bool ok = false;
    for (const char *q = p; q < end; q++) {
        if ((q == p || q[-1] == '\n') && strncasecmp(q, "sec-websocket-accept:", 21) == 0) {
            q += 21;
            while (*q == ' ')
                q++;
            ok = strncmp(q, want, strlen(want)) == 0;
            break;
        }
    }
    if (!ok) {
        g_n.upgrade_failures++;
        note_reason("upgrade: bad or missing Sec-WebSocket-Accept");
        conn_close(c);
        return -1;
    }
    memmove(c->in.p, c->in.p + hlen, n - hlen);
    c->in.len -= hlen;
    c->state = CS_OPEN;
    if (c->kind == KIND_ACTIVE) {
        g_open_active++;
        unpend(c);
    }
    on_open(c);
    return c->state == CS_OPEN ? 1 : -1;
}

/* ---- requests ------------------------------------------------------------------------------ */

static void push_req(conn_t *c, uint8_t type, uint32_t torrent) {
    req_t *r = &c->req[(c->req_head + c->nreq++) % MAX_WINDOW];
    r->sent_ns = now_ns();
    r->torrent = torrent;
    r->type = type;
}

/* Pops the oldest request if it matches (torrent UINT32_MAX matches any). Returns it, or NULL. */
static req_t *pop_req(conn_t *c, uint8_t type, uint32_t torrent) {
    if (c->nreq == 0)
        return NULL;
    req_t *r = &c->req[c->req_head];
    if (r->type != type || (torrent != UINT32_MAX && r->torrent != torrent))
        return NULL;
    c->req_head = (uint8_t)((c->req_head + 1) % MAX_WINDOW);
    c->nreq--;
    return r;
}

static void wt_announce(conn_t *c, uint32_t t, uint32_t noffers) {
    bool seeder = rnd_unit() < SEEDER_PROBABILITY;
    uint64_t now = now_ns();
    sb_reset();
    SB_LIT("{\"action\":\"announce\",\"info_hash\":");
    sb_mem(g_ih_json[t], g_ih_json_len[t]);
    SB_LIT(",\"peer_id\":");
    sb_id(c->peer_id);
    SB_LIT(",\"numwant\":");
    sb_u64(noffers);
    SB_LIT(",\"uploaded\":0,\"downloaded\":0,\"left\":");
    sb_u64(seeder ? 0 : LEECHER_LEFT);
    SB_LIT(",\"event\":\"started\"");
    if (noffers > 0) {
        SB_LIT(",\"offers\":[");
        for (uint32_t i = 0; i < noffers; i++) {
            uint8_t id[ID_BYTES];
            make_offer_id(id, now, c);
            if (i)
                SB_LIT(",");
            SB_LIT("{\"offer\":{\"type\":\"offer\",\"sdp\":\"" FAKE_SDP "\"},\"offer_id\":");
            sb_id(id);
            SB_LIT("}");
        }
        SB_LIT("]");
    }
    SB_LIT("}");
    push_req(c, REQ_ANNOUNCE, t);
    send_msg(c);
    g_n.announces++;
    g_n.offers_sent += noffers;
}

static void st_announce(conn_t *c, uint32_t t, uint32_t numwant) {
    bool seeder = rnd_unit() < SEEDER_PROBABILITY;
    sb_reset();
    SB_LIT("{\"type\":\"announce\",\"info_hash\":\"");
    sb_hex(g_ih[t], ID_BYTES);
    SB_LIT("\",\"event\":\"started\",\"left\":");
    sb_u64(seeder ? 0 : LEECHER_LEFT);
    SB_LIT(",\"num_want\":");
    sb_u64(numwant);
    SB_LIT("}");
    push_req(c, REQ_ANNOUNCE, t);
    send_msg(c);
    g_n.announces++;
}

static void send_scrape(conn_t *c) {
    uint32_t first = pick_torrent();
    sb_reset();
    if (g_cfg.mode == MODE_WT)
        SB_LIT("{\"action\":\"scrape\",\"info_hash\":[");
    else
        SB_LIT("{\"type\":\"scrape\",\"info_hashes\":[");
    for (int i = 0; i < SCRAPE_HASHES; i++) {
        uint32_t t = i == 0 ? first : pick_torrent();
        if (i)
            SB_LIT(",");
        if (g_cfg.mode == MODE_WT) {
            sb_mem(g_ih_json[t], g_ih_json_len[t]);
        } else {
            SB_LIT("\"");
            sb_hex(g_ih[t], ID_BYTES);
            SB_LIT("\"");
        }
    }
    SB_LIT("]}");
    push_req(c, REQ_SCRAPE, first);
    send_msg(c);
    g_n.scrapes++;
}

/* Sends new requests while the window and the rate allow; an active connection's loop. */
static void pump(conn_t *c) {
    if (c->kind != KIND_ACTIVE || c->state != CS_OPEN || g_stop || !g_started)
        return;
    if (g_cfg.mode == MODE_ST && !c->identified)
        return;
    while (c->nreq < g_cfg.window) {
        if (g_cfg.rate > 0 && g_credit < 1.0) {
            wait_credit(c);
            return;
        }
        if (g_cfg.scrape_ratio > 0 && rnd_unit() < g_cfg.scrape_ratio)
            send_scrape(c);
        else if (g_cfg.mode == MODE_WT)
            wt_announce(c, pick_torrent(), g_cfg.offers);
        else
            st_announce(c, pick_torrent(), g_cfg.numwant);
    }
}

static void st_ola(conn_t *c) {
    sb_reset();
    SB_LIT("{\"type\":\"ola\",\"peer_id\":\"");
    sb_mem(c->st_id, c->st_id_len);
    SB_LIT("\"}");
    send_msg(c);
    g_n.olas++;
}

static void new_identity(conn_t *c) {
    rnd_bytes(c->peer_id, ID_BYTES);
    static const char kinds[] = "aic";
    int n = snprintf(c->st_id, sizeof(c->st_id), "lg%c%u-%08llx", kinds[c->kind], c->index,
                     (unsigned long long)(rnd64() & 0xffffffffull));
    c->st_id_len = (uint8_t)n;
}

static void on_open(conn_t *c) {
    new_identity(c);
    if (g_cfg.mode == MODE_ST)
        st_ola(c);
    else if (c->kind == KIND_ACTIVE)
        pump(c);
    else
        wt_announce(c, pick_torrent(), 0);
}

/* An idle or churn connection got the answer to its one announce. */
static void settle(conn_t *c, uint64_t now) {
    if (c->settled)
        return;
    c->settled = 1;
    if (c->kind == KIND_IDLE) {
        g_settled_idle++;
        unpend(c);
    } else if (c->kind == KIND_CHURN) {
        g_n.churn_done++;
        if (g_measuring)
            hist_add(&g_n.churn, now - c->opened_ns);
        /* connect, ola/announce, answer, then a clean close frame and goodbye. */
        static const uint8_t bye[2] = {0x03, 0xE8};
        ws_send(c, 0x8, bye, sizeof(bye));
        conn_flush(c);
        conn_close(c);
    }
}

static void request_done(conn_t *c, req_t *r, bool ok, uint64_t now) {
    if (ok && g_measuring && r->type == REQ_ANNOUNCE)
        hist_add(&g_n.ann, now - r->sent_ns);
    if (c->kind == KIND_ACTIVE)
        pump(c);
    else
        settle(c, now);
}

/* ---- WebTorrent messages ------------------------------------------------------------------- */

static void wt_on_offer(conn_t *c, const field_t *f, int nf, uint64_t now) {
    const field_t *ih = field_get(f, nf, "info_hash"), *from = field_get(f, nf, "peer_id"),
                  *oid = field_get(f, nf, "offer_id");
    uint8_t id[ID_BYTES], tmp[ID_BYTES];
    if (decode_id(oid, id) != 0 || decode_id(ih, tmp) != 0 || decode_id(from, tmp) != 0) {
        g_n.bad_messages++;
        return;
    }
    g_n.offers_recv++;
    uint64_t t = offer_time(id, now);
    if (t && g_measuring)
        offer_delivered(c, id, t, now);
    if (c->kind != KIND_ACTIVE || g_stop)
        return;
    /* The answer names the swarm, the offerer and the offer exactly as the server wrote them. */
    sb_reset();
    SB_LIT("{\"action\":\"announce\",\"info_hash\":");
    sb_mem(ih->val, ih->vlen);
    SB_LIT(",\"peer_id\":");
    sb_id(c->peer_id);
    SB_LIT(",\"to_peer_id\":");
    sb_mem(from->val, from->vlen);
    SB_LIT(",\"offer_id\":");
    sb_mem(oid->val, oid->vlen);
    SB_LIT(",\"answer\":{\"type\":\"answer\",\"sdp\":\"" FAKE_SDP "\"}}");
    send_msg(c);
    g_n.answers_sent++;
}

static void wt_message(conn_t *c, const char *p, size_t n, uint64_t now) {
    field_t f[MAX_FIELDS];
    int nf = scan_object(p, n, f, MAX_FIELDS);
    if (nf < 0) {
        g_n.bad_messages++;
        return;
    }
    const field_t *fail = field_get(f, nf, "failure reason");
    const field_t *action = field_get(f, nf, "action");
    if (fail != NULL) {
        char text[REASON_TEXT];
        field_text(fail, text, sizeof(text));
        g_n.errors++;
        note_reason("failure: %s", text);
        /* A failure about an answer is not the reply to an outstanding announce; any other one
         * is, and frees its slot in the window. */
        if (strstr(text, "offer") == NULL && strstr(text, "to_peer_id") == NULL) {
            req_t *r =
                pop_req(c, field_is(action, "scrape") ? REQ_SCRAPE : REQ_ANNOUNCE, UINT32_MAX);
            if (r != NULL)
                request_done(c, r, false, now);
        }
        return;
    }
    if (field_is(action, "announce")) {
        if (field_get(f, nf, "offer") != NULL) {
            wt_on_offer(c, f, nf, now);
            return;
        }
        if (field_get(f, nf, "answer") != NULL) {
            uint8_t id[ID_BYTES];
            g_n.answers_recv++;
            if (decode_id(field_get(f, nf, "offer_id"), id) == 0) {
                uint64_t t = offer_time(id, now);
                if (t && g_measuring)
                    hist_add(&g_n.answer, now - t);
            }
            return;
        }
        uint8_t ih[ID_BYTES];
        req_t *r = NULL;
        if (decode_id(field_get(f, nf, "info_hash"), ih) == 0 && c->nreq > 0 &&
            memcmp(g_ih[c->req[c->req_head].torrent], ih, ID_BYTES) == 0)
            r = pop_req(c, REQ_ANNOUNCE, UINT32_MAX);
        if (r == NULL) {
            g_n.unmatched++;
            return;
        }
        g_n.ann_ok++;
        request_done(c, r, true, now);
        return;
    }
    if (field_is(action, "scrape")) {
        req_t *r = pop_req(c, REQ_SCRAPE, UINT32_MAX);
        if (r == NULL) {
            g_n.unmatched++;
            return;
        }
        g_n.scrape_ok++;
        request_done(c, r, true, now);
        return;
    }
    g_n.bad_messages++;
}

/* ---- ST messages --------------------------------------------------------------------------- */

/* Decodes a JSON string of 40 hex digits (an ST infohash, or the id in our payloads). Returns 0
 * or -1. */
static int hex_id(const field_t *v, uint8_t id[ID_BYTES]) {
    if (v == NULL || v->vlen != 2 * ID_BYTES + 2 || v->val[0] != '"')
        return -1;
    for (int i = 0; i < ID_BYTES; i++) {
        int hi = hexval(v->val[1 + 2 * i]), lo = hexval(v->val[2 + 2 * i]);
        if (hi < 0 || lo < 0)
            return -1;
        id[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

/* Reads the "id" our payloads carry (an offer ID in hex). Returns 0 or -1. */
static int st_payload_id(const field_t *payload, uint8_t id[ID_BYTES]) {
    field_t pf[8];
    if (payload == NULL)
        return -1;
    int n = scan_object(payload->val, payload->vlen, pf, 8);
    return hex_id(n > 0 ? field_get(pf, n, "id") : NULL, id);
}

/* Sends an ST signal to the peer whose peer_id JSON string (with quotes) is to. */
static void st_signal(const char *type, const char *to, size_t tolen, const uint8_t id[ID_BYTES]) {
    sb_reset();
    SB_LIT("{\"type\":\"");
    sb_mem(type, strlen(type));
    SB_LIT("\",\"to\":");
    sb_mem(to, tolen);
    SB_LIT(",\"payload\":{");
    if (strcmp(type, "candidate") == 0)
        SB_LIT("\"candidate\":\"" FAKE_CANDIDATE "\",\"sdpMid\":\"0\"");
    else if (strcmp(type, "offer") == 0)
        SB_LIT("\"type\":\"offer\",\"sdp\":\"" FAKE_SDP "\"");
    else
        SB_LIT("\"type\":\"answer\",\"sdp\":\"" FAKE_SDP "\"");
    SB_LIT(",\"id\":\"");
    sb_hex(id, ID_BYTES);
    SB_LIT("\"}}");
}

/* Sends offers to up to --offers of the peers an announce answer listed. */
static void st_offer_peers(conn_t *c, const field_t *peers, uint64_t now) {
    if (peers == NULL || g_cfg.offers == 0 || g_stop || peers->vlen < 2 || peers->val[0] != '[')
        return;
    const char *p = peers->val + 1, *e = peers->val + peers->vlen - 1;
    uint32_t sent = 0;
    while (p < e && sent < g_cfg.offers) {
        p = skip_ws(p, e);
        if (p >= e || *p != '{')
            break;
        const char *pe = skip_value(p, e);
        if (pe == NULL)
            break;
        field_t pf[4];
        int n = scan_object(p, (size_t)(pe - p), pf, 4);
        const field_t *id = n > 0 ? field_get(pf, n, "peer_id") : NULL;
        if (id != NULL) {
            uint8_t oid[ID_BYTES];
            make_offer_id(oid, now, c);
            st_signal("offer", id->val, id->vlen, oid);
            send_msg(c);
            g_n.offers_sent++;
            sent++;
        }
        p = skip_ws(pe, e);
        if (p < e && *p == ',')
            p++;
    }
}

static void st_message(conn_t *c, const char *p, size_t n, uint64_t now) {
    field_t f[MAX_FIELDS];
    int nf = scan_object(p, n, f, MAX_FIELDS);
    const field_t *type = nf >= 0 ? field_get(f, nf, "type") : NULL;
    if (type == NULL) {
        g_n.bad_messages++;
        return;
    }
    if (field_is(type, "announce")) {
        uint8_t ih[ID_BYTES];
        bool match = c->nreq > 0 && hex_id(field_get(f, nf, "info_hash"), ih) == 0 &&
                     memcmp(g_ih[c->req[c->req_head].torrent], ih, ID_BYTES) == 0;
        req_t *r = match ? pop_req(c, REQ_ANNOUNCE, UINT32_MAX) : NULL;
        if (r == NULL) {
            g_n.unmatched++;
            return;
        }
        g_n.ann_ok++;
        if (c->kind == KIND_ACTIVE)
            st_offer_peers(c, field_get(f, nf, "peers"), now);
        request_done(c, r, true, now);
    } else if (field_is(type, "offer") || field_is(type, "answer")) {
        bool offer = field_is(type, "offer");
        const field_t *from = field_get(f, nf, "from");
        uint8_t id[ID_BYTES];
        if (from == NULL || st_payload_id(field_get(f, nf, "payload"), id) != 0) {
            g_n.bad_messages++;
            return;
        }
        uint64_t t = offer_time(id, now);
        if (offer)
            g_n.offers_recv++;
        else
            g_n.answers_recv++;
        if (t && g_measuring) {
            if (offer)
                offer_delivered(c, id, t, now);
            else
                hist_add(&g_n.answer, now - t);
        }
        if (c->kind != KIND_ACTIVE || g_stop)
            return;
        /* Offer -> answer; answer -> one trickled candidate, as a WebRTC peer would. */
        st_signal(offer ? "answer" : "candidate", from->val, from->vlen, id);
        send_msg(c);
        if (offer)
            g_n.answers_sent++;
        else
            g_n.candidates_sent++;
    } else if (field_is(type, "candidate")) {
        g_n.candidates_recv++;
    } else if (field_is(type, "ola")) {
        const field_t *ok = field_get(f, nf, "ok");
        if (ok == NULL || ok->vlen != 4 || memcmp(ok->val, "true", 4) != 0) {
            char text[REASON_TEXT];
            field_text(field_get(f, nf, "error"), text, sizeof(text));
            g_n.errors++;
            note_reason("ola refused: %s", text);
            return;
        }
        c->identified = 1;
        if (c->kind == KIND_ACTIVE)
            pump(c);
        else
            st_announce(c, pick_torrent(), 0);
    } else if (field_is(type, "error")) {
        char code[REASON_TEXT / 2], msg[REASON_TEXT];
        field_text(field_get(f, nf, "code"), code, sizeof(code));
        field_text(field_get(f, nf, "message"), msg, sizeof(msg));
        g_n.errors++;
        note_reason("error %s: %s", code, msg);
        const field_t *ref = field_get(f, nf, "ref");
        if (field_is(ref, "announce") || field_is(ref, "scrape")) {
            req_t *r = pop_req(c, field_is(ref, "scrape") ? REQ_SCRAPE : REQ_ANNOUNCE, UINT32_MAX);
            if (r != NULL)
                request_done(c, r, false, now);
        }
    } else if (field_is(type, "scrape")) {
        req_t *r = pop_req(c, REQ_SCRAPE, UINT32_MAX);
        if (r == NULL) {
            g_n.unmatched++;
            return;
        }
        g_n.scrape_ok++;
        request_done(c, r, true, now);
    } else if (field_is(type, "bye")) {
        char text[REASON_TEXT];
        field_text(field_get(f, nf, "reason"), text, sizeof(text));
        note_reason("bye: %s", text);
    } else if (!field_is(type, "pong")) {
        g_n.bad_messages++;
    }
}

/* ---- WebSocket frames ---------------------------------------------------------------------- */

static void deliver(conn_t *c, const uint8_t *p, size_t n) {
    g_n.recv++;
    g_n.bytes_recv += n;
    uint64_t now = now_ns();
    if (g_cfg.mode == MODE_WT)
        wt_message(c, (const char *)p, n, now);
    else
        st_message(c, (const char *)p, n, now);
}

static void on_frame(conn_t *c, bool fin, int op, uint8_t *p, size_t n) {
    switch (op) {
    case 0x0:
        if (c->frag_op == 0) {
            g_n.bad_messages++;
            return;
        }
        buf_append(&c->frag, p, n);
        if (c->frag.len > MAX_MESSAGE_BYTES) {
            g_n.bad_messages++;
            conn_lost(c, "message too large");
            return;
        }
        if (fin) {
            deliver(c, c->frag.p, c->frag.len);
            c->frag_op = 0;
            buf_free(&c->frag);
        }
        return;
    case 0x1:
    case 0x2:
        if (fin) {
            deliver(c, p, n);
        } else {
            c->frag_op = (uint8_t)op;
            c->frag.len = 0;
            buf_append(&c->frag, p, n);
        }
        return;
    case 0x8: {
        unsigned code = n >= 2 ? (unsigned)p[0] << 8 | p[1] : 1005;
        if (!(c->kind == KIND_CHURN && c->settled)) {
            g_n.closes++;
            note_reason("close frame %u: %.*s", code, (int)(n > 2 ? (n - 2 > 60 ? 60 : n - 2) : 0),
                        (const char *)p + 2);
        }
        uint8_t reply[2] = {(uint8_t)(code >> 8), (uint8_t)code};
        ws_send(c, 0x8, reply, code == 1005 ? 0 : 2);
        conn_flush(c);
        /* Counted above already: reopen without counting twice. */
        if (c->state != CS_FREE) {
            bool idle_unsettled = c->kind == KIND_IDLE && !c->settled;
            conn_close(c);
            if (idle_unsettled)
                g_failed_idle++;
            if (c->kind == KIND_ACTIVE && !g_stop && g_reopens < MAX_REOPENS) {
                g_reopens++;
                g_n.reopens++;
                openq_push(c->index);
            }
        }
        return;
    }
    case 0x9:
        ws_send(c, 0xA, p, n);
        return;
    case 0xA:
        return;
    default:
        g_n.bad_messages++;
        conn_lost(c, "unknown opcode");
    }
}

/* Handles every whole frame in p[0..n). Returns the bytes used; the rest is a partial frame.
 * Stops as soon as the connection closes (p may then be freed memory). */
static size_t ws_consume(conn_t *c, uint8_t *p, size_t n) {
    size_t off = 0;
    while (c->state == CS_OPEN) {
        size_t avail = n - off;
        if (avail < 2)
            break;
        uint8_t *h = p + off;
        uint64_t len = h[1] & 0x7f;
        size_t hl = 2;
        if (len == 126) {
            if (avail < 4)
                break;
            len = (uint64_t)h[2] << 8 | h[3];
            hl = 4;
        } else if (len == 127) {
            if (avail < 10)
                break;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = len << 8 | h[2 + i];
            hl = 10;
        }
        bool masked = h[1] & 0x80;
        if (masked)
            hl += 4;
        if (len > MAX_MESSAGE_BYTES) {
            g_n.bad_messages++;
            conn_lost(c, "frame too large");
            return n;
        }
        if (avail < hl + len)
            break;
        uint8_t *payload = h + hl;
        if (masked) /* servers must not mask, but unmasking costs nothing */
            for (size_t i = 0; i < len; i++)
                payload[i] ^= h[hl - 4 + (i & 3)];
        off += hl + (size_t)len;
        on_frame(c, h[0] & 0x80, h[0] & 0x0f, payload, (size_t)len);
    }
    return off;
}

/* Reads decrypted bytes into dst. Returns how many, 0 when nothing more can be read now (OpenSSL
 * needs more from the socket, which is then drained), or -1 when the connection was lost (and is
 * closed). */
static ssize_t tls_read(conn_t *c, uint8_t *dst, size_t room) {
    size_t got = 0;
    if (SSL_read_ex(c->ssl, dst, room, &got) == 1)
        return (ssize_t)got;
    int e = SSL_get_error(c->ssl, 0);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
    if (e == SSL_ERROR_ZERO_RETURN) {
        /* close_notify, or (SSL_OP_IGNORE_UNEXPECTED_EOF) a bare TCP EOF: as in plain mode. */
        conn_lost(c, "EOF");
    } else {
        conn_lost(c, tls_error_text(e));
    }
    return -1;
}

static void conn_readable(conn_t *c) {
    for (;;) {
        if (c->state != CS_OPEN && c->state != CS_UPGRADING)
            return;
        /* Data goes straight into the shared buffer unless a partial frame (or the upgrade
         * response) is waiting in the connection's own. */
        bool own = c->in.len > 0 || c->state == CS_UPGRADING;
        uint8_t *dst = g_rbuf;
        size_t room = sizeof(g_rbuf);
        if (own) {
            buf_reserve(&c->in, READ_CHUNK);
            dst = c->in.p + c->in.len;
            room = c->in.cap - c->in.len;
        }
        ssize_t r;
        if (c->ssl != NULL) {
            r = tls_read(c, dst, room);
            if (r <= 0)
                return;
        } else {
            r = recv(c->fd, dst, room, 0);
        }
        if (r == 0) {
            conn_lost(c, "EOF");
            return;
        }
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                conn_lost(c, strerror(errno));
            return;
        }
        if (own) {
            c->in.len += (size_t)r;
            if (c->state == CS_UPGRADING && upgrade_parse(c) <= 0) {
                if (c->state == CS_FREE)
                    return;
                continue;
            }
            size_t used = ws_consume(c, c->in.p, c->in.len);
            if (c->state == CS_FREE)
                return;
            memmove(c->in.p, c->in.p + used, c->in.len - used);
            c->in.len -= used;
            if (c->in.len == 0)
                buf_free(&c->in);
        } else {
            size_t used = ws_consume(c, g_rbuf, (size_t)r);
            if (c->state == CS_FREE)
                return;
            if (used < (size_t)r)
                buf_append(&c->in, g_rbuf + used, (size_t)r - used);
        }
        /* A short read drained the socket; edge-triggered epoll reports the next arrival. Not so
         * with TLS: SSL_read_ex returns one record at a time (16 KiB at most), so TLS reads go on
         * until OpenSSL has nothing left, neither buffered (SSL_pending, read-ahead) nor on the
         * socket. */
        if (c->ssl == NULL && (size_t)r < room)
            return;
    }
}

/* Takes the TLS handshake one step further. The socket stays registered for EPOLLIN and EPOLLOUT,
 * edge-triggered, so whichever of SSL_ERROR_WANT_READ and SSL_ERROR_WANT_WRITE stopped it, the
 * next event on the socket brings it back here; no re-registration is needed. Once done it sends
 * the HTTP upgrade, as a plain connection does right after its TCP connect. */
static void tls_handshake(conn_t *c) {
    int r = SSL_connect(c->ssl);
    if (r == 1) {
        if (g_tls_desc[0] == '\0')
            snprintf(g_tls_desc, sizeof(g_tls_desc), "%s %s", SSL_get_version(c->ssl),
                     SSL_get_cipher_name(c->ssl));
        send_upgrade(c);
        conn_flush(c);
        return;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return;
    g_n.connect_failures++;
    note_reason("TLS handshake: %s", tls_error_text(e));
    if (c->kind == KIND_IDLE)
        g_failed_idle++;
    conn_close(c);
}

/* Wraps a freshly connected socket in TLS and starts the handshake. */
static void tls_start(conn_t *c) {
    c->ssl = SSL_new(g_tls_ctx);
    if (c->ssl == NULL)
        die("SSL_new: %s", tls_error_text(SSL_ERROR_SSL));
    if (SSL_set_fd(c->ssl, c->fd) != 1)
        die("SSL_set_fd: %s", tls_error_text(SSL_ERROR_SSL));
    c->state = CS_HANDSHAKE;
    tls_handshake(c);
}

static void on_event(conn_t *c, uint32_t ev) {
    if (c->state == CS_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
            g_n.connect_failures++;
            note_reason("connect: %s", strerror(err));
            if (c->kind == KIND_IDLE)
                g_failed_idle++;
            conn_close(c);
            return;
        }
        if (!(ev & EPOLLOUT))
            return;
        if (g_cfg.tls) {
            tls_start(c);
            return;
        }
        send_upgrade(c);
        conn_flush(c);
        return;
    }
    if (c->state == CS_HANDSHAKE) {
        tls_handshake(c);
        return;
    }
    if ((ev & EPOLLOUT) && c->out.len > 0 && conn_flush(c) != 0)
        return;
    /* A TLS read can stop on SSL_ERROR_WANT_WRITE (OpenSSL had to answer something and the socket
     * was full); only a writable event brings that one back, so TLS reads on every event. */
    if ((ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) || c->ssl != NULL)
        conn_readable(c);
}

/* ---- the server's side: /proc and /stats.json ---------------------------------------------- */

/* Returns the server's CPU seconds (user + system), or -1 when it cannot be read. */
static double proc_cpu(pid_t pid) {
    char path[64], text[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        return -1;
    size_t n = fread(text, 1, sizeof(text) - 1, fp);
    fclose(fp);
    text[n] = '\0';
    /* The command name may hold spaces and parentheses: fields are counted after the last ')'. */
    char *p = strrchr(text, ')');
    if (p == NULL)
        return -1;
    unsigned long long utime = 0, stime = 0;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
        return -1;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

/* Returns this process's own CPU seconds: a load generator at 100 % limits what it measures. */
static double self_cpu(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Returns the CPU seconds every CPU of the machine spent busy (not idle, not waiting for I/O),
 * from /proc/stat, or -1. What neither the server nor this program used was other processes'
 * work: noise the report shows, since it skews throughput and latency (not CPU-normalised
 * figures). */
static double machine_busy(void) {
    FILE *fp = fopen("/proc/stat", "r");
    if (fp == NULL)
        return -1;
    unsigned long long v[8] = {0};
    int n = fscanf(fp, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]);
    fclose(fp);
    if (n < 5)
        return -1;
    unsigned long long busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    return (double)busy / (double)sysconf(_SC_CLK_TCK);
}

/* The CPU seconds of every --server-pid together, or -1 when one cannot be read. */
static double servers_cpu(void) {
    double sum = 0;
    for (uint32_t i = 0; i < g_cfg.nserver_pids; i++) {
        double v = proc_cpu(g_cfg.server_pids[i]);
        if (v < 0)
            return -1;
        sum += v;
    }
    return sum;
}

/* Reads VmRSS and VmHWM (kB) of the server. Returns 0 or -1. */
static int proc_mem(pid_t pid, long *rss, long *hwm) {
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        return -1;
    *rss = *hwm = 0;
    while (fgets(line, sizeof(line), fp)) {
        if (strncmp(line, "VmRSS:", 6) == 0)
            *rss = atol(line + 6);
        else if (strncmp(line, "VmHWM:", 6) == 0)
            *hwm = atol(line + 6);
    }
    fclose(fp);
    return 0;
}

/* VmRSS and VmHWM (kB) of every --server-pid, summed. Returns 0, or -1 when one cannot be read. */
static int servers_mem(long *rss, long *hwm) {
    *rss = *hwm = 0;
    for (uint32_t i = 0; i < g_cfg.nserver_pids; i++) {
        long r, h;
        if (proc_mem(g_cfg.server_pids[i], &r, &h) != 0)
            return -1;
        *rss += r;
        *hwm += h;
    }
    return 0;
}

/* The server-side counters that show drops and refusals (sigtracker's GET /stats.json). */
static const char *const STAT_KEYS[] = {"dropped",  "rate_limited", "protocol_errors",
                                        "timeouts", "refused",      "shed"};
#define NSTAT (sizeof(STAT_KEYS) / sizeof(STAT_KEYS[0]))

/* Fetches /stats.json from the server at port index k with a blocking request. Returns 0 and
 * fills v, or -1. */
static int fetch_stats_one(const struct sockaddr_in *addr, const char *host, uint64_t v[NSTAT]) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {.tv_sec = STATS_TIMEOUT_S};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    static char resp[64 * 1024];
    size_t n = 0;
    if (connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) == 0) {
        char req[256];
        int rl =
            snprintf(req, sizeof(req),
                     "GET /stats.json HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", host);
        if (send(fd, req, (size_t)rl, MSG_NOSIGNAL) == rl) {
            ssize_t r;
            while (n < sizeof(resp) - 1 && (r = recv(fd, resp + n, sizeof(resp) - 1 - n, 0)) > 0)
                n += (size_t)r;
        }
    }
    close(fd);
    resp[n] = '\0';
    const char *body = strstr(resp, "\r\n\r\n");
    if (strncmp(resp, "HTTP/1.1 200", 12) != 0 || body == NULL)
        return -1;
    body += 4;
    field_t f[64];
    int nf = scan_object(body, strlen(body), f, 64);
    if (nf < 0)
        return -1;
    for (size_t i = 0; i < NSTAT; i++) {
        const field_t *x = field_get(f, nf, STAT_KEYS[i]);
        v[i] = x ? strtoull(x->val, NULL, 10) : 0;
    }
    return 0;
}

/* Fetches /stats.json from the server on every port and sums the counters, or, with --stats-port,
 * from that one port (a ws:// listener of the server the --tls connections go to: the request is
 * plain HTTP). Returns 0 or -1. */
static int fetch_stats(uint64_t v[NSTAT]) {
    if (g_cfg.stats_port != 0) {
        struct sockaddr_in a = g_server[0];
        char host[64];
        a.sin_port = htons((uint16_t)g_cfg.stats_port);
        snprintf(host, sizeof(host), "%s:%d", g_cfg.host, g_cfg.stats_port);
        return fetch_stats_one(&a, host, v);
    }
    memset(v, 0, NSTAT * sizeof(v[0]));
    for (uint32_t k = 0; k < g_cfg.nports; k++) {
        uint64_t one[NSTAT];
        if (fetch_stats_one(&g_server[k], g_host_header[k], one) != 0)
            return -1;
        for (size_t i = 0; i < NSTAT; i++)
            v[i] += one[i];
    }
    return 0;
}

/* ---- the main loop ------------------------------------------------------------------------- */

static void on_signal_stop(int sig) {
    (void)sig;
    g_stop = 1;
}

static void usage(void) {
    fputs(
        "usage: loadgen --port P [options]\n"
        "  --host A            server address (default 127.0.0.1)\n"
        "  --port P[,P2,...]   server port (ws://A:P/); several: connections dealt round-robin,\n"
        "                      and relay latency split by whether the offer crossed ports\n"
        "  --mode wt|st        WebTorrent or sigtracker's ST dialect (default wt)\n"
        "  --connections N     active connections (default 100)\n"
        "  --idle M            idle connections: upgrade, one announce (ST: ola first), silence\n"
        "  --churn R           connections per second that connect, announce and leave\n"
        "  --window W          requests outstanding per active connection (default 1, max 16)\n"
        "  --offers N          WT: offers per announce; ST: peers offered to (default 10)\n"
        "  --numwant N         ST: num_want of each announce (default 10)\n"
        "  --torrents T        infohashes to draw from, Gamma(0.2,100)-skewed (default 10000)\n"
        "  --scrape-ratio F    fraction of requests that are scrapes of 5 infohashes (default 0)\n"
        "  --rate R            cap on messages sent per second, all connections (default none)\n"
        "  --duration S        measurement window in seconds (default 10)\n"
        "  --warmup S          seconds between the last connection opening and the window (2)\n"
        "  --ramp-timeout S    give up waiting for connections to open after S s (default 60)\n"
        "  --req-timeout S     a request unanswered this long is counted and forgotten (10)\n"
        "  --server-pid PID[,PID2,...]  read the server's CPU time and memory from /proc\n"
        "                      (several: summed, e.g. a cluster's nodes and its Redis)\n"
        "  --server-stats      read drop counters from the server's GET /stats.json (sigtracker)\n"
        "  --stats-port P      ask that port for /stats.json (plain HTTP) instead of --port;\n"
        "                      needed with --tls (give a ws:// listener of the same server)\n"
        "  --tls               wss://: TLS on every connection (no certificate verification,\n"
        "                      no SNI: for a benchmark against one's own test server)\n"
        "  --addr-base K       idle/churn sources are 127.0.0.K and up; 0 = no bind (default 2)\n"
        "  --per-addr N        idle/churn connections per source address (default 5000)\n"
        "  --seed S            random seed (default: from the clock)\n",
        stderr);
    exit(2);
}

static double arg_num(const char *s, const char *name, double lo, double hi) {
    char *end;
    double v = strtod(s, &end);
    if (*s == '\0' || *end != '\0' || !(v >= lo && v <= hi))
        die("--%s: want a number in [%g, %g], got \"%s\"", name, lo, hi, s);
    return v;
}

/* Parses "N" or "N,N,..." into at most max numbers in [lo, hi]. Returns how many. */
static uint32_t arg_list(const char *s, const char *name, double lo, double hi, double *out,
                         uint32_t max) {
    char tmp[256];
    if (strlen(s) >= sizeof(tmp))
        die("--%s: list too long", name);
    strcpy(tmp, s);
    uint32_t n = 0;
    char *save = NULL;
    for (char *t = strtok_r(tmp, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
        if (n == max)
            die("--%s: at most %u values", name, max);
        out[n++] = arg_num(t, name, lo, hi);
    }
    if (n == 0)
        die("--%s: want a number or a comma-separated list", name);
    return n;
}

static void parse_args(int argc, char **argv) {
    static const struct option opts[] = {{"host", 1, 0, 'h'},
                                         {"port", 1, 0, 'p'},
                                         {"mode", 1, 0, 'm'},
                                         {"connections", 1, 0, 'c'},
                                         {"idle", 1, 0, 'i'},
                                         {"churn", 1, 0, 'C'},
                                         {"window", 1, 0, 'w'},
                                         {"offers", 1, 0, 'o'},
                                         {"numwant", 1, 0, 'n'},
                                         {"torrents", 1, 0, 't'},
                                         {"scrape-ratio", 1, 0, 's'},
                                         {"rate", 1, 0, 'r'},
                                         {"duration", 1, 0, 'd'},
                                         {"warmup", 1, 0, 'W'},
                                         {"ramp-timeout", 1, 0, 'R'},
                                         {"req-timeout", 1, 0, 'T'},
                                         {"server-pid", 1, 0, 'P'},
                                         {"server-stats", 0, 0, 'S'},
                                         {"stats-port", 1, 0, 'q'},
                                         {"tls", 0, 0, 'L'},
                                         {"addr-base", 1, 0, 'a'},
                                         {"per-addr", 1, 0, 'A'},
                                         {"seed", 1, 0, 'x'},
                                         {"help", 0, 0, '?'},
                                         {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'h':
            g_cfg.host = optarg;
            break;
        case 'p': {
            double v[MAX_PORTS];
            g_cfg.nports = arg_list(optarg, "port", 1, 65535, v, MAX_PORTS);
            for (uint32_t i = 0; i < g_cfg.nports; i++)
                g_cfg.ports[i] = (int)v[i];
            g_cfg.port = g_cfg.ports[0];
            break;
        }
        case 'm':
            if (strcmp(optarg, "wt") == 0)
                g_cfg.mode = MODE_WT;
            else if (strcmp(optarg, "st") == 0)
                g_cfg.mode = MODE_ST;
            else
                die("--mode: wt or st");
            break;
        case 'c':
            g_cfg.connections = (uint32_t)arg_num(optarg, "connections", 0, 1e6);
            break;
        case 'i':
            g_cfg.idle = (uint32_t)arg_num(optarg, "idle", 0, 1e6);
            break;
        case 'C':
            g_cfg.churn = arg_num(optarg, "churn", 0, 1e5);
            break;
        case 'w':
            g_cfg.window = (uint32_t)arg_num(optarg, "window", 1, MAX_WINDOW);
            break;
        case 'o':
            g_cfg.offers = (uint32_t)arg_num(optarg, "offers", 0, MAX_OFFERS);
            break;
        case 'n':
            g_cfg.numwant = (uint32_t)arg_num(optarg, "numwant", 0, 1000);
            break;
        case 't':
            g_cfg.torrents = (uint32_t)arg_num(optarg, "torrents", 1, 1e7);
            break;
        case 's':
            g_cfg.scrape_ratio = arg_num(optarg, "scrape-ratio", 0, 1);
            break;
        case 'r':
            g_cfg.rate = arg_num(optarg, "rate", 0, 1e9);
            break;
        case 'd':
            g_cfg.duration = arg_num(optarg, "duration", 0.1, 86400);
            break;
        case 'W':
            g_cfg.warmup = arg_num(optarg, "warmup", 0, 3600);
            break;
        case 'R':
            g_cfg.ramp_timeout = arg_num(optarg, "ramp-timeout", 1, 3600);
            break;
        case 'T':
            g_cfg.req_timeout = arg_num(optarg, "req-timeout", 0.1, 3600);
            break;
        case 'P': {
            double v[MAX_PIDS];
            g_cfg.nserver_pids = arg_list(optarg, "server-pid", 1, 1e9, v, MAX_PIDS);
            for (uint32_t i = 0; i < g_cfg.nserver_pids; i++)
                g_cfg.server_pids[i] = (pid_t)v[i];
            g_cfg.server_pid = g_cfg.server_pids[0];
            break;
        }
        case 'S':
            g_cfg.server_stats = true;
            break;
        case 'q':
            g_cfg.stats_port = (int)arg_num(optarg, "stats-port", 1, 65535);
            break;
        case 'L':
            g_cfg.tls = true;
            break;
        case 'a':
            g_cfg.addr_base = (uint32_t)arg_num(optarg, "addr-base", 0, 254);
            break;
        case 'A':
            g_cfg.per_addr = (uint32_t)arg_num(optarg, "per-addr", 1, 60000);
            break;
        case 'x':
            g_cfg.seed = (uint64_t)arg_num(optarg, "seed", 0, 1e18);
            break;
        default:
            usage();
        }
    }
    if (optind != argc || g_cfg.port == 0)
        usage();
    if (g_cfg.tls && g_cfg.server_stats && g_cfg.stats_port == 0)
        die("--server-stats with --tls needs --stats-port: /stats.json is read over plain HTTP");
}

/* Makes the client context every --tls connection is made from. Verification is off and no SNI
 * is sent (see the header comment). Read-ahead lets one read(2) fetch several records, as a plain
 * connection's one recv(2) fetches several frames; the session cache is off, so that a reopened
 * connection costs a full handshake like a new one. */
static void tls_setup(void) {
    g_tls_ctx = SSL_CTX_new(TLS_client_method());
    if (g_tls_ctx == NULL)
        die("SSL_CTX_new: %s", tls_error_text(SSL_ERROR_SSL));
    if (SSL_CTX_set_min_proto_version(g_tls_ctx, TLS1_2_VERSION) != 1)
        die("SSL_CTX_set_min_proto_version: %s", tls_error_text(SSL_ERROR_SSL));
    SSL_CTX_set_verify(g_tls_ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_options(g_tls_ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(g_tls_ctx,
                     SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_read_ahead(g_tls_ctx, 1);
    SSL_CTX_set_session_cache_mode(g_tls_ctx, SSL_SESS_CACHE_OFF);
}

static void setup(void) {
    size_t tl = (size_t)snprintf(g_target, sizeof(g_target), "%s:", g_cfg.host);
    for (uint32_t k = 0; k < g_cfg.nports; k++) {
        struct sockaddr_in *a = &g_server[k];
        if (inet_pton(AF_INET, g_cfg.host, &a->sin_addr) != 1)
            die("--host: want an IPv4 address, got \"%s\"", g_cfg.host);
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)g_cfg.ports[k]);
        snprintf(g_host_header[k], sizeof(g_host_header[k]), "%s:%d", g_cfg.host, g_cfg.ports[k]);
        if (tl < sizeof(g_target))
            tl += (size_t)snprintf(g_target + tl, sizeof(g_target) - tl, "%s%d", k ? "," : "",
                                   g_cfg.ports[k]);
    }

    if (g_cfg.tls)
        tls_setup();
    g_rng = g_cfg.seed ? g_cfg.seed : now_ns() ^ ((uint64_t)getpid() << 32);
    g_ts_key = rnd64();
    if (g_cfg.nports > 1)
        g_port_key = (uint8_t)rnd64(); /* drawn only then: one port keeps the old random stream */
    g_ih = xrealloc(NULL, (size_t)g_cfg.torrents * sizeof(*g_ih));
    g_ih_json = xrealloc(NULL, (size_t)g_cfg.torrents * sizeof(*g_ih_json));
    g_ih_json_len = xrealloc(NULL, g_cfg.torrents);
    for (uint32_t t = 0; t < g_cfg.torrents; t++) {
        rnd_bytes(g_ih[t], ID_BYTES);
        g_ih_json_len[t] = (uint8_t)id_json(g_ih[t], g_ih_json[t]);
    }

    /* Churn slots: enough for every churn connection that may be in flight for a few seconds. */
    g_churn_slots = g_cfg.churn > 0 ? (uint32_t)fmin(g_cfg.churn * 4 + 16, 4096) : 0;
    g_churn_base = g_cfg.connections + g_cfg.idle;
    g_nconns = g_churn_base + g_churn_slots;
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if ((uint64_t)g_nconns + SPARE_FDS > rl.rlim_cur)
        die("%u connections need more file descriptors than the limit of %llu", g_nconns,
            (unsigned long long)rl.rlim_cur);
    if (g_nconns == 0)
        die("nothing to do: give --connections, --idle or --churn");
    g_conns = calloc(g_nconns, sizeof(*g_conns));
    g_openq = calloc(g_nconns, sizeof(*g_openq));
    g_churn_free = calloc(g_churn_slots + 1, sizeof(*g_churn_free));
    if (g_conns == NULL || g_openq == NULL || g_churn_free == NULL)
        die("out of memory");
    for (uint32_t i = 0; i < g_nconns; i++) {
        conn_t *c = &g_conns[i];
        c->fd = -1;
        c->index = i;
        c->kind = i < g_cfg.connections ? KIND_ACTIVE : i < g_churn_base ? KIND_IDLE : KIND_CHURN;
        c->addr = c->kind == KIND_IDLE ? i - g_cfg.connections : 0;
        /* Active and idle connections each dealt round-robin over the ports from the first. */
        c->port_ix = (uint8_t)((c->kind == KIND_IDLE ? i - g_cfg.connections : i) % g_cfg.nports);
    }
    /* Idle connections first, so that their swarms are full before the active ones start. */
    for (uint32_t i = g_cfg.connections; i < g_churn_base; i++)
        openq_push(i);
    for (uint32_t i = 0; i < g_cfg.connections; i++)
        openq_push(i);
    for (uint32_t i = g_nconns; i-- > g_churn_base;)
        g_churn_free[g_churn_nfree++] = i;

    g_ep = epoll_create1(EPOLL_CLOEXEC);
    if (g_ep < 0)
        die("epoll_create1: %s", strerror(errno));
    struct sigaction sa = {.sa_handler = on_signal_stop};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* Opens queued connections while fewer than MAX_PENDING_OPENS are on their way. */
static void open_some(void) {
    while (g_openq_len > 0 && g_pending < MAX_PENDING_OPENS) {
        uint32_t i = g_openq[g_openq_head];
        g_openq_head = (g_openq_head + 1) % g_nconns;
        g_openq_len--;
        g_conns[i].queued = 0;
        if (g_conns[i].state == CS_FREE)
            conn_open(&g_conns[i]);
    }
}

/* Starts the churn connections that are due by now, R per second since start. */
static void churn_some(uint64_t now, uint64_t start) {
    uint64_t due = (uint64_t)((double)(now - start) / NS_PER_S * g_cfg.churn);
    while (g_churn_started < due) {
        if (g_churn_nfree == 0 || g_pending >= MAX_PENDING_OPENS) {
            g_churn_lag = due - g_churn_started;
            return;
        }
        conn_t *c = &g_conns[g_churn_free[--g_churn_nfree]];
        /* Churn sources rotate over their own addresses, after the idle ones. */
        c->addr = g_cfg.idle + (uint32_t)(g_churn_started % ((uint64_t)g_cfg.per_addr * 4));
        c->port_ix = (uint8_t)(g_churn_started % g_cfg.nports);
        g_churn_started++;
        conn_open(c);
    }
}

/* Forgets requests that waited too long, and opens that never completed. */
static void sweep(uint64_t now) {
    uint64_t req_limit = (uint64_t)(g_cfg.req_timeout * NS_PER_S);
    for (uint32_t i = 0; i < g_nconns; i++) {
        conn_t *c = &g_conns[i];
        if (c->state == CS_FREE)
            continue;
        if (c->state != CS_OPEN || (c->kind != KIND_ACTIVE && !c->settled && c->nreq == 0)) {
            if (now > c->opened_ns && now - c->opened_ns > req_limit) {
                g_n.connect_failures++;
                note_reason("open not completed within %.0f s", g_cfg.req_timeout);
                if (c->kind == KIND_IDLE)
                    g_failed_idle++;
                conn_close(c);
                if (c->kind == KIND_ACTIVE)
                    openq_push(c->index);
            }
            continue;
        }
        /* Times taken later in this iteration than now would underflow: compare both ways. */
        while (c->nreq > 0 && now > c->req[c->req_head].sent_ns &&
               now - c->req[c->req_head].sent_ns > req_limit) {
            g_n.timeouts++;
            c->req_head = (uint8_t)((c->req_head + 1) % MAX_WINDOW);
            c->nreq--;
            if (c->kind == KIND_ACTIVE)
                pump(c);
        }
    }
}

static void refill_credit(uint64_t now, uint64_t *last) {
    if (g_cfg.rate <= 0)
        return;
    g_credit += g_cfg.rate * (double)(now - *last) / NS_PER_S;
    *last = now;
    /* At most 1 ms of sending may be saved up: bursts would queue behind each other in the
     * server and the latency measured would be the burst's, not the rate's. */
    double cap = fmax(g_cfg.rate / 1000.0, 1.0);
    if (g_credit > cap)
        g_credit = cap;
    while (g_wait_head != NULL && g_credit >= 1.0) {
        conn_t *c = g_wait_head;
        g_wait_head = c->next_wait;
        if (g_wait_head == NULL)
            g_wait_tail = NULL;
        c->waiting = 0;
        pump(c);
    }
}

static const char *mode_name(void) {
    return g_cfg.mode == MODE_WT ? "wt" : "st";
}

static double us(uint64_t ns) {
    return (double)ns / NS_PER_US;
}

static double g_self_cpu_s; /* this process's CPU seconds in the window */
static double g_busy_s;     /* the whole machine's busy CPU seconds in the window */

static void report(double window_s, double ramp_s, double cpu_s, long rss0, long rss, long hwm,
                   bool have_stats, const uint64_t st0[NSTAT], const uint64_t st1[NSTAT]) {
    const counts_t *n = &g_n;
    uint32_t held = g_open_active + g_settled_idle;
    double sent_s = (double)n->sent / window_s, recv_s = (double)n->recv / window_s;
    double per_cpu = cpu_s > 0 ? (double)(n->sent + n->recv) / cpu_s : 0;
    double recv_cpu = cpu_s > 0 ? (double)n->recv / cpu_s : 0;
    double rss_per = held ? (double)rss * 1024.0 / held : 0;
    double delta_per = held ? (double)(rss - rss0) * 1024.0 / held : 0;
    printf("loadgen: mode=%s %s://%s/ active=%u idle=%u churn=%g/s window=%u offers=%u "
           "torrents=%u rate=%s\n",
           mode_name(), g_cfg.tls ? "wss" : "ws", g_target, g_cfg.connections, g_cfg.idle,
           g_cfg.churn, g_cfg.window, g_cfg.offers, g_cfg.torrents,
           g_cfg.rate > 0 ? "capped" : "unlimited");
    if (g_cfg.rate > 0)
        printf("  rate cap: %.0f messages sent per second\n", g_cfg.rate);
    if (g_cfg.tls)
        printf("  TLS: %s (first handshake; no verification, no SNI, no resumption)\n",
               g_tls_desc[0] ? g_tls_desc : "no handshake completed");
    printf("  connections: %u active open, %u idle held (%u failed), ramp %.1f s, window %.1f s\n",
           g_open_active, g_settled_idle, g_failed_idle, ramp_s, window_s);
    printf("  messages: sent %llu (%.0f/s), received %llu (%.0f/s), total %.0f/s\n",
           (unsigned long long)n->sent, sent_s, (unsigned long long)n->recv, recv_s,
           sent_s + recv_s);
    printf("  requests: %llu announces (%llu answered), %llu scrapes (%llu answered), %llu olas\n",
           (unsigned long long)n->announces, (unsigned long long)n->ann_ok,
           (unsigned long long)n->scrapes, (unsigned long long)n->scrape_ok,
           (unsigned long long)n->olas);
    printf("  signals: offers sent %llu / received %llu, answers sent %llu / received %llu, "
           "candidates sent %llu / received %llu\n",
           (unsigned long long)n->offers_sent, (unsigned long long)n->offers_recv,
           (unsigned long long)n->answers_sent, (unsigned long long)n->answers_recv,
           (unsigned long long)n->candidates_sent, (unsigned long long)n->candidates_recv);
    if (g_cfg.churn > 0)
        printf("  churn: %llu cycles (%.1f/s; asked %g/s, lag %llu), cycle p50 %.0f us p99 %.0f "
               "us\n",
               (unsigned long long)n->churn_done, (double)n->churn_done / window_s, g_cfg.churn,
               (unsigned long long)g_churn_lag, us(hist_quantile(&n->churn, 0.5)),
               us(hist_quantile(&n->churn, 0.99)));
    if (g_cfg.server_pid) {
        printf("  server cpu: %.2f s in the window (%.0f%% of one core): %.0f messages per "
               "CPU-second (%.0f received by clients)\n",
               cpu_s, 100.0 * cpu_s / window_s, per_cpu, recv_cpu);
        printf("  server memory: RSS %ld kB (peak %ld kB, %ld kB before connecting): %.0f B per "
               "connection, %.0f B per connection above the start\n",
               rss, hwm, rss0, rss_per, delta_per);
    }
    double others = g_busy_s - g_self_cpu_s - cpu_s;
    if (others < 0)
        others = 0;
    printf("  load generator cpu: %.2f s in the window (%.0f%% of one core); other processes: "
           "%.2f CPU-s (%.0f%% of one core)\n",
           g_self_cpu_s, 100.0 * g_self_cpu_s / window_s, others, 100.0 * others / window_s);
    printf("  latency announce->response: p50 %.0f us, p99 %.0f us, max %.0f us (%llu)\n",
           us(hist_quantile(&n->ann, 0.5)), us(hist_quantile(&n->ann, 0.99)), us(n->ann.max),
           (unsigned long long)n->ann.count);
    printf("  latency offer sent->delivered: p50 %.0f us, p99 %.0f us, max %.0f us (%llu)\n",
           us(hist_quantile(&n->offer, 0.5)), us(hist_quantile(&n->offer, 0.99)), us(n->offer.max),
           (unsigned long long)n->offer.count);
    if (g_cfg.nports > 1) {
        printf("  latency offer delivered across ports (between nodes): p50 %.0f us, p99 %.0f us, "
               "max %.0f us (%llu)\n",
               us(hist_quantile(&n->offer_cross, 0.5)), us(hist_quantile(&n->offer_cross, 0.99)),
               us(n->offer_cross.max), (unsigned long long)n->offer_cross.count);
        printf("  latency offer delivered on the offerer's port (within a node): p50 %.0f us, "
               "p99 %.0f us, max %.0f us (%llu)\n",
               us(hist_quantile(&n->offer_local, 0.5)), us(hist_quantile(&n->offer_local, 0.99)),
               us(n->offer_local.max), (unsigned long long)n->offer_local.count);
    }
    printf("  latency offer sent->answer back: p50 %.0f us, p99 %.0f us, max %.0f us (%llu)\n",
           us(hist_quantile(&n->answer, 0.5)), us(hist_quantile(&n->answer, 0.99)),
           us(n->answer.max), (unsigned long long)n->answer.count);
    printf("  problems (whole run): %llu error messages, %llu closes by the server, %llu requests "
           "timed out, "
           "%llu connect and %llu upgrade failures, %llu unmatched, %llu malformed, %llu reopens\n",
           (unsigned long long)n->errors, (unsigned long long)n->closes,
           (unsigned long long)n->timeouts, (unsigned long long)n->connect_failures,
           (unsigned long long)n->upgrade_failures, (unsigned long long)n->unmatched,
           (unsigned long long)n->bad_messages, (unsigned long long)n->reopens);
    for (int i = 0; i < MAX_REASONS && g_reasons[i].n; i++)
        printf("    %8llu x %s\n", (unsigned long long)g_reasons[i].n, g_reasons[i].text);
    if (g_reasons_other)
        printf("    %8llu x (other texts)\n", (unsigned long long)g_reasons_other);
    uint64_t sd[NSTAT] = {0};
    if (have_stats) {
        printf("  server counters in the window:");
        for (size_t i = 0; i < NSTAT; i++) {
            sd[i] = st1[i] - st0[i];
            printf(" %s=%llu", STAT_KEYS[i], (unsigned long long)sd[i]);
        }
        printf("\n");
    }
    printf("RESULT mode=%s conns=%u idle=%u churn=%g window_s=%.2f sent=%llu recv=%llu "
           "sent_per_s=%.0f recv_per_s=%.0f msgs_per_s=%.0f server_cpu_s=%.3f msgs_per_cpu_s=%.0f "
           "recv_per_cpu_s=%.0f ann_p50_us=%.0f ann_p99_us=%.0f ann_max_us=%.0f ann_n=%llu "
           "offer_p50_us=%.0f offer_p99_us=%.0f offer_max_us=%.0f offer_n=%llu "
           "answer_p50_us=%.0f answer_p99_us=%.0f rss_start_kb=%ld rss_kb=%ld hwm_kb=%ld "
           "rss_per_conn_b=%.0f rss_delta_per_conn_b=%.0f held=%u announces=%llu offers_sent=%llu "
           "offers_recv=%llu answers_sent=%llu answers_recv=%llu errors=%llu closes=%llu "
           "timeouts=%llu connect_failures=%llu upgrade_failures=%llu unmatched=%llu "
           "malformed=%llu churn_done=%llu churn_p50_us=%.0f churn_p99_us=%.0f loadgen_cpu_s=%.3f "
           "others_cpu_s=%.3f",
           mode_name(), g_cfg.connections, g_cfg.idle, g_cfg.churn, window_s,
           (unsigned long long)n->sent, (unsigned long long)n->recv, sent_s, recv_s,
           sent_s + recv_s, cpu_s, per_cpu, recv_cpu, us(hist_quantile(&n->ann, 0.5)),
           us(hist_quantile(&n->ann, 0.99)), us(n->ann.max), (unsigned long long)n->ann.count,
           us(hist_quantile(&n->offer, 0.5)), us(hist_quantile(&n->offer, 0.99)), us(n->offer.max),
           (unsigned long long)n->offer.count, us(hist_quantile(&n->answer, 0.5)),
           us(hist_quantile(&n->answer, 0.99)), rss0, rss, hwm, rss_per, delta_per, held,
           (unsigned long long)n->announces, (unsigned long long)n->offers_sent,
           (unsigned long long)n->offers_recv, (unsigned long long)n->answers_sent,
           (unsigned long long)n->answers_recv, (unsigned long long)n->errors,
           (unsigned long long)n->closes, (unsigned long long)n->timeouts,
           (unsigned long long)n->connect_failures, (unsigned long long)n->upgrade_failures,
           (unsigned long long)n->unmatched, (unsigned long long)n->bad_messages,
           (unsigned long long)n->churn_done, us(hist_quantile(&n->churn, 0.5)),
           us(hist_quantile(&n->churn, 0.99)), g_self_cpu_s, others);
    if (have_stats)
        for (size_t i = 0; i < NSTAT; i++)
            printf(" srv_%s=%llu", STAT_KEYS[i], (unsigned long long)sd[i]);
    /* Only with TLS, so that a plain RESULT line stays what it was. */
    if (g_cfg.tls)
        printf(" tls=1");
    /* Only with several ports, so that a one-port RESULT line stays what it was. */
    if (g_cfg.nports > 1)
        printf(" ports=%u offer_x_p50_us=%.0f offer_x_p99_us=%.0f offer_x_max_us=%.0f "
               "offer_x_n=%llu offer_l_p50_us=%.0f offer_l_p99_us=%.0f offer_l_max_us=%.0f "
               "offer_l_n=%llu",
               g_cfg.nports, us(hist_quantile(&n->offer_cross, 0.5)),
               us(hist_quantile(&n->offer_cross, 0.99)), us(n->offer_cross.max),
               (unsigned long long)n->offer_cross.count, us(hist_quantile(&n->offer_local, 0.5)),
               us(hist_quantile(&n->offer_local, 0.99)), us(n->offer_local.max),
               (unsigned long long)n->offer_local.count);
    printf("\n");
    fflush(stdout);
}

enum { PH_RAMP, PH_WARMUP, PH_MEASURE };

int main(int argc, char **argv) {
    parse_args(argc, argv);
    setup();
    static struct epoll_event evs[MAX_EVENTS];
    long rss0 = 0, rss = 0, hwm = 0;
    if (g_cfg.server_pid && servers_mem(&rss0, &hwm) != 0)
        die("cannot read /proc/PID/status of --server-pid");

    uint64_t start = now_ns(), phase_at = start, last_sweep = start, last_credit = start;
    uint64_t last_progress = start, churn_start = 0, end_at = 0;
    g_t0 = start;
    int phase = PH_RAMP;
    double cpu0 = 0, ramp_s = 0;
    uint64_t st0[NSTAT] = {0}, st1[NSTAT] = {0};
    bool have_stats = false;
    uint64_t prog_sent = 0, prog_recv = 0;

    while (!g_stop) {
        uint64_t now = now_ns();
        if (phase == PH_RAMP) {
            bool done =
                g_openq_len == 0 && g_pending == 0 &&
                g_open_active + g_settled_idle + g_failed_idle >= g_cfg.connections + g_cfg.idle;
            bool late = now - start > (uint64_t)(g_cfg.ramp_timeout * NS_PER_S);
            if (done || late) {
                if (late && !done)
                    fprintf(stderr, "loadgen: ramp timed out: %u of %u active open, %u idle\n",
                            g_open_active, g_cfg.connections, g_settled_idle);
                ramp_s = (double)(now - start) / NS_PER_S;
                /* Active connections start together once all are open, as aquatic's
                 * measure_after_max_connections_reached does: a busy server must not be asked
                 * to accept connections and serve the first ones' load at the same time. */
                g_started = true;
                for (uint32_t i = 0; i < g_cfg.connections; i++)
                    pump(&g_conns[i]);
                phase = PH_WARMUP;
                phase_at = now;
                churn_start = now;
                fprintf(stderr, "loadgen: %u active and %u idle connections open after %.1f s\n",
                        g_open_active, g_settled_idle, ramp_s);
            }
        } else if (phase == PH_WARMUP && now - phase_at >= (uint64_t)(g_cfg.warmup * NS_PER_S)) {
            /* Traffic and latency count from here; problems count over the whole run, ramp
             * included, so that a failure while connecting is never hidden. */
            static counts_t keep;
            keep = g_n;
            memset(&g_n, 0, sizeof(g_n));
            g_n.errors = keep.errors;
            g_n.closes = keep.closes;
            g_n.timeouts = keep.timeouts;
            g_n.unmatched = keep.unmatched;
            g_n.bad_messages = keep.bad_messages;
            g_n.connect_failures = keep.connect_failures;
            g_n.upgrade_failures = keep.upgrade_failures;
            g_n.reopens = keep.reopens;
            if (g_cfg.server_pid)
                cpu0 = servers_cpu();
            g_self_cpu_s = self_cpu();
            g_busy_s = machine_busy();
            if (g_cfg.server_stats)
                have_stats = fetch_stats(st0) == 0;
            phase = PH_MEASURE;
            now = now_ns();
            phase_at = now;
            end_at = now + (uint64_t)(g_cfg.duration * NS_PER_S);
            g_measuring = true;
        } else if (phase == PH_MEASURE && now >= end_at) {
            break;
        }
        open_some();
        if (phase != PH_RAMP && g_cfg.churn > 0)
            churn_some(now, churn_start);
        refill_credit(now, &last_credit);
        if (now - last_sweep >= SWEEP_INTERVAL_MS * NS_PER_MS) {
            sweep(now);
            last_sweep = now;
        }
        if (now - last_progress >= PROGRESS_INTERVAL_S * NS_PER_S) {
            double dt = (double)(now - last_progress) / NS_PER_S;
            fprintf(stderr,
                    "loadgen: t=%.0fs %s active=%u idle=%u sent/s=%.0f recv/s=%.0f errors=%llu "
                    "closes=%llu\n",
                    (double)(now - start) / NS_PER_S,
                    phase == PH_RAMP     ? "ramp"
                    : phase == PH_WARMUP ? "warmup"
                                         : "measure",
                    g_open_active, g_settled_idle,
                    (double)(g_n.sent >= prog_sent ? g_n.sent - prog_sent : g_n.sent) / dt,
                    (double)(g_n.recv >= prog_recv ? g_n.recv - prog_recv : g_n.recv) / dt,
                    (unsigned long long)g_n.errors, (unsigned long long)g_n.closes);
            prog_sent = g_n.sent;
            prog_recv = g_n.recv;
            last_progress = now;
        }
        flush_dirty();
        /* Wake often while requests wait for rate credit or connections are still opening. */
        int timeout = g_wait_head != NULL || g_openq_len > 0 || g_cfg.churn > 0 ? 1 : 10;
        int ne = epoll_wait(g_ep, evs, MAX_EVENTS, timeout);
        if (ne < 0 && errno != EINTR)
            die("epoll_wait: %s", strerror(errno));
        for (int i = 0; i < ne; i++) {
            conn_t *c = evs[i].data.ptr;
            if (c->state != CS_FREE)
                on_event(c, evs[i].events);
        }
        flush_dirty();
    }

    uint64_t stop = now_ns();
    g_measuring = false;
    g_self_cpu_s = phase == PH_MEASURE ? self_cpu() - g_self_cpu_s : self_cpu();
    g_busy_s = phase == PH_MEASURE && g_busy_s >= 0 ? machine_busy() - g_busy_s : 0;
    double window_s = phase == PH_MEASURE ? (double)(stop - phase_at) / NS_PER_S : 0;
    double cpu_s = 0;
    if (g_cfg.server_pid) {
        double cpu1 = servers_cpu();
        cpu_s = phase == PH_MEASURE && cpu1 >= 0 && cpu0 >= 0 ? cpu1 - cpu0 : 0;
        servers_mem(&rss, &hwm);
    }
    if (have_stats)
        have_stats = fetch_stats(st1) == 0;
    if (phase != PH_MEASURE) {
        fprintf(stderr, "loadgen: stopped before the measurement window opened; the figures "
                        "below cover the whole run\n");
        window_s = (double)(stop - start) / NS_PER_S;
    }
    report(window_s, ramp_s, cpu_s, rss0, rss, hwm, have_stats, st0, st1);
    for (uint32_t i = 0; i < g_nconns; i++)
        if (g_conns[i].state != CS_FREE)
            close(g_conns[i].fd);
    return phase == PH_MEASURE ? 0 : 1;
}
