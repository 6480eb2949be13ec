/* fuzz_server.h: what the whole-server fuzz targets (fuzz_conn, fuzz_proto, fuzz_mirror) share: a
 * server without a listening socket, on a throwaway database named after the target and the
 * process. */
#ifndef SIG_FUZZ_SERVER_H
#define SIG_FUZZ_SERVER_H

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "config/config.h"
#include "hub/ctx.h"
#include "server/server.h"
#include "fuzz_check.h"

/* Aborts with the failed condition when an invariant does not hold, so libFuzzer records the
 * input. */

/* Longest database path the targets build. */
#define FUZZ_DB_PATH_BYTES 128

/* Deletes the database file and its WAL and shared-memory companions. */
static inline void fuzz_remove_db(const char *db_path) {
    char p[FUZZ_DB_PATH_BYTES + 8];
    unlink(db_path);
    snprintf(p, sizeof(p), "%s-wal", db_path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", db_path);
    unlink(p);
}

/* Points cfg at a fresh database /tmp/sigtracker-<target>-<pid>.db (written to db_path) and
 * creates the server; aborts when it cannot, since no input could then be tried. */
static inline server_t *fuzz_server_create(config_t *cfg, const char *target,
                                           char db_path[FUZZ_DB_PATH_BYTES]) {
    snprintf(db_path, FUZZ_DB_PATH_BYTES, "/tmp/sigtracker-%s-%ld.db", target, (long)getpid());
    fuzz_remove_db(db_path);
    snprintf(cfg->db_path, sizeof(cfg->db_path), "%s", db_path);
    char err[256];
    server_t *s = server_create(cfg, err, sizeof(err));
    if (s == NULL) {
        fprintf(stderr, "%s: server_create: %s\n", target, err);
        abort();
    }
    return s;
}

/* Waits (briefly) for the database reads that parked messages wait for, and lets those messages
 * run again, as the loop would: a parked scrape is then answered within the same input. Aborts
 * when the database does not answer within seconds, which would be a hang in the loop. */
static inline void fuzz_settle(server_t *s) {
    for (int round = 0; round < 1000 && s->store_wait.n > 0; round++) {
        struct pollfd pfd = {store_fd(s->store), POLLIN, 0};
        if (poll(&pfd, 1, 5000) != 1) {
            fprintf(stderr, "fuzz: the database did not answer a parked read in 5 s\n");
            abort();
        }
        store_poll(s->store);
        server_settle(s);
    }
    server_settle(s);
}

/* Destroys the server (if any) and its database. */
static inline void fuzz_server_destroy(server_t **s, const char *db_path) {
    if (*s != NULL) {
        server_destroy(*s);
        *s = NULL;
        fuzz_remove_db(db_path);
    }
}

#endif
