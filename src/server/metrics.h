/* metrics.h: GET /metrics (the Prometheus text exposition format 0.0.4) and GET /dashboard.json
 * (the compact document the live dashboard polls). Both are read from the counters, gauges and
 * histograms the server keeps as events happen (hub/ctx.h), plus /proc/self for the process, so
 * a request costs O(connections) for the per-state connection gauge and bounded work for the
 * largest swarms, never a walk over every swarm. Event-loop thread only. */
#ifndef SIG_SERVER_METRICS_H
#define SIG_SERVER_METRICS_H

#include <stdint.h>

#include "core/buf.h"
#include "hub/ctx.h"

/* The Content-Type of the Prometheus text format. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Hash buckets of the swarm table the dashboard visits per request when it looks for the largest
 * swarms. A table with at most this many buckets (about 2 swarms each) is scanned whole, so its
 * list is exact; a larger one is scanned a slice per request, the slices resuming where the last
 * ended, while the list found so far is kept and refreshed: exact after one full round. */
#define METRICS_TOP_SCAN_BUCKETS 8192

/* What /proc/self says about this process. */
typedef struct metrics_proc {
    uint64_t rss_bytes;   /* resident set size */
    uint64_t cpu_us;      /* user + system CPU time, in microseconds */
    uint64_t vsize_bytes; /* virtual memory size */
    uint64_t open_fds;    /* open descriptors */
} metrics_proc_t;

/* Reads /proc/self/stat and /proc/self/fd. Returns 0, or a negative errno (out is then zeroed). */
int metrics_proc_read(metrics_proc_t *out);

/* Initialises the server's histograms; call once from server_create. */
void metrics_init(server_t *s);

/* Appends the /metrics body to b. */
void metrics_write_prometheus(server_t *s, buf_t *b);

/* Appends the /dashboard.json body to b: current gauges and totals (the page turns totals into
 * rates) and the largest swarms (see METRICS_TOP_SCAN_BUCKETS). */
void metrics_write_dashboard(server_t *s, buf_t *b);

#endif
