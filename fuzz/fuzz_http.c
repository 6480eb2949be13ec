/* fuzz_http.c: libFuzzer driver for the HTTP request-head parser and the handshake checks.
 * It parses the input under several head limits and aborts when an invariant breaks: results
 * outside the documented set, slices outside the input, a head that stops parsing when cut at
 * its own length, or limits that disagree with each other. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ws/http.h"

/* Head limits tried on every input, in bytes: degenerate, small, the default, and unbounded. */
static const size_t limits[] = {0, 1, 2, 17, 64, 300, HTTP_MAX_HEAD_BYTES, SIZE_MAX};

/* Aborts with a message when cond is false, so that libFuzzer records the input. */
static void require(int cond, const char *what) {
    if (!cond) {
        fprintf(stderr, "fuzz_http: invariant broken: %s\n", what);
        abort();
    }
}

/* Checks that slice s is absent or lies inside buf[0..len). Addresses are compared as integers
 * because comparing pointers into different objects is undefined. */
static void require_inside(str_t s, const char *buf, size_t len, const char *what) {
    uintptr_t lo = (uintptr_t)buf;
    uintptr_t p = (uintptr_t)s.p;

    if (s.p == NULL) {
        require(s.len == 0, what);
        return;
    }
    require(p >= lo && s.len <= len && p - lo <= len - s.len, what);
}

/* Checks every invariant of a request that parsed into req from buf with the given limit. */
static void check_parsed(const char *buf, size_t len, size_t max_head, const http_request_t *req) {
    const size_t h = req->head_len;
    int status;

    require(h >= 2 && h <= len && h <= max_head, "head_len within the input and the limit");
    require(buf[h - 1] == '\n', "head ends with LF");
    require_inside(req->method, buf, h, "method inside head");
    require_inside(req->target, buf, h, "target inside head");
    require_inside(req->path, buf, h, "path inside head");
    require_inside(req->host, buf, h, "host inside head");
    require_inside(req->upgrade, buf, h, "upgrade inside head");
    require_inside(req->ws_key, buf, h, "ws_key inside head");
    require_inside(req->ws_version, buf, h, "ws_version inside head");
    require_inside(req->origin, buf, h, "origin inside head");
    require_inside(req->forwarded_for, buf, h, "forwarded_for inside head");
    require(req->method.len > 0 && req->target.len > 0, "method and target not empty");
    require(req->path.p == req->target.p && req->path.len <= req->target.len,
            "path is a prefix of target");
    require(req->path.len == req->target.len || req->target.p[req->path.len] == '?',
            "path ends at the query");
    require(req->version_minor >= 0 && req->version_minor <= 9, "version_minor is a digit");
    require(req->conn_upgrade == 0 || req->conn_upgrade == 1, "conn_upgrade is a flag");
    require(req->host_count >= 0 && req->host_count <= HTTP_MAX_HEADERS, "host_count in range");
    require((req->host_count == 0) == (req->host.p == NULL), "host present when counted");
    require(http_host_check(req) == 0 || http_host_check(req) == 400, "host_check result");
    if (http_host_check(req) == 0)
        require(req->host_count == 1 || (req->host_count == 0 && req->version_minor == 0),
                "an accepted request has one Host, or none in HTTP/1.0");

    status = http_upgrade_check(req);
    require(status == 0 || status == 400 || status == 426, "upgrade_check result");
    if (status == 0) {
        char accept[29];
        size_t i;

        require(req->ws_key.len == 24, "accepted key has 24 characters");
        require(req->conn_upgrade == 1, "accepted request has Connection: upgrade");
        require(http_ws_accept(req->ws_key.p, req->ws_key.len, accept) == 0, "ws_accept");
        require(strlen(accept) == 28 && accept[27] == '=', "accept is 28 characters");
        for (i = 0; i < 27; i++) {
            require(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
                           accept[i]) != NULL &&
                        accept[i] != '\0',
                    "accept is base64");
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *buf = (const char *)data;
    http_request_t unbounded;
    int rc_unbounded = http_request_parse(buf, size, SIZE_MAX, &unbounded);
    size_t i;

    for (i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
        http_request_t req;
        int rc = http_request_parse(buf, size, limits[i], &req);

        require(rc == 0 || rc == -EAGAIN || rc == -EINVAL || rc == -EMSGSIZE, "result code");
        if (rc == -EAGAIN) {
            require(size < limits[i], "-EAGAIN only below the limit");
        }
        /* A head that parses without a limit parses under any limit it fits in, and is too big
         * for any limit it does not fit in. */
        if (rc_unbounded == 0) {
            if (unbounded.head_len <= limits[i]) {
                require(rc == 0 && req.head_len == unbounded.head_len, "limit that fits");
            } else {
                require(rc == -EMSGSIZE, "limit that does not fit");
            }
        }
        if (rc == 0) {
            http_request_t again;

            check_parsed(buf, size, limits[i], &req);
            /* The head alone parses the same, and one byte less asks for more. */
            require(http_request_parse(buf, req.head_len, limits[i], &again) == 0 &&
                        again.head_len == req.head_len,
                    "head alone parses");
            require(http_request_parse(buf, req.head_len - 1, limits[i], &again) == -EAGAIN,
                    "head minus one byte needs more");
        }
    }
    return 0;
}
