/* main.c: wires the parts together: parse flags, open the server, listen, run, clean up. */
#include <stdio.h>

#include "core/log.h"
#include "config/config.h"
#include "server/server.h"
#include "server/tls.h"

int main(int argc, char **argv) {
    /* First, before anything makes OpenSSL allocate, so its memory is counted in heap_bytes. */
    int tls_counted = tls_global_init();
    config_t cfg;
    config_defaults(&cfg);
    int rc = config_parse(&cfg, argc, argv);
    if (rc > 0)
        return 0;
    if (rc < 0)
        return 2;
    log_set_level((enum log_level)cfg.log_level);
    if (tls_counted != 0)
        log_msg(LOG_WARN, "OpenSSL allocated before start-up: its memory is not in heap_bytes");

    char err[512] = "";
    server_t *s = server_create(&cfg, err, sizeof(err));
    if (s == NULL) {
        log_msg(LOG_ERROR, "%s", err);
        fprintf(stderr, "sigtracker: %s\n", err);
        return 1;
    }
    if (server_listen(s, err, sizeof(err)) != 0) {
        log_msg(LOG_ERROR, "%s", err);
        fprintf(stderr, "sigtracker: %s\n", err);
        server_destroy(s);
        return 1;
    }
    server_log_start(s);
    server_run(s);
    server_destroy(s);
    log_msg(LOG_INFO, "stopped");
    return 0;
}
