/* main.c: wires the parts together: read the configuration, open the server, load the access
 * list and the TLS certificate, listen, run, clean up. Exit codes: 0 done, 1 the server could not
 * start, 2 the configuration is wrong (nothing was started). */
#include <stdio.h>

#include "core/hash.h"
#include "core/log.h"
#include "config/config.h"
#include "server/server.h"
#include "server/tls.h"
#include "tracker/acl.h"

/* --check-config: the configuration is valid; check the access list it names and, with a wss://
 * listener, that the certificate and key load and match (as start-up does), and say so. */
static int check_config(const config_t *cfg) {
    const char *path = cfg->allowlist[0] ? cfg->allowlist : cfg->denylist;
    char list[CONFIG_PATH_BYTES + 96] = "no access list";
    if (path[0] != '\0') {
        /* A throwaway key: this list only proves it parses. */
        hash_key_t key = {0x736967747261636bull, 0x636865636b000000ull};
        acl_t *a = acl_create(cfg->allowlist[0] ? ACL_ALLOW : ACL_DENY, &key);
        char err[CONFIG_PATH_BYTES + 256];
        if (acl_load_file(a, path, err, sizeof(err)) != 0) {
            fprintf(stderr, "sigtracker: %s\n", err);
            acl_destroy(a);
            return 2;
        }
        snprintf(list, sizeof(list), "%s %s: %zu infohashes",
                 cfg->allowlist[0] ? "allowlist" : "denylist", path, acl_count(a));
        acl_destroy(a);
    }
    char cert[600] = "";
    if (config_has_tls(cfg)) {
        char err[CONFIG_PATH_BYTES + 512], desc[512];
        tls_ctx_t *t = tls_ctx_create(cfg->tls_cert, cfg->tls_key, err, sizeof(err));
        if (t == NULL) {
            fprintf(stderr, "sigtracker: %s\n", err);
            return 2;
        }
        tls_ctx_describe(t, desc, sizeof(desc));
        snprintf(cert, sizeof(cert), "; certificate %s", desc);
        tls_ctx_destroy(t);
    }
    printf("sigtracker: configuration OK (%s%s; %s%s)\n",
           cfg->config_file[0] ? "file " : "no file, flags only",
           cfg->config_file[0] ? cfg->config_file : "", list, cert);
    return 0;
}

int main(int argc, char **argv) {
    /* First, before anything makes OpenSSL allocate, so its memory is counted in heap_bytes. */
    int tls_counted = tls_global_init();
    config_t cfg;
    config_defaults(&cfg);
    int rc = config_parse(&cfg, argc, argv);
    if (rc == CONFIG_EXIT)
        return 0;
    if (rc < 0)
        return 2;
    if (rc == CONFIG_CHECK)
        return check_config(&cfg);
    log_set_level((enum log_level)cfg.log_level);
    log_set_format(cfg.log_format);
    if (tls_counted != 0)
        log_msg(LOG_WARN, "OpenSSL allocated before start-up: its memory is not in heap_bytes");

    char err[CONFIG_PATH_BYTES + 512] = "";
    server_t *s = server_create(&cfg, err, sizeof(err));
    if (s == NULL) {
        log_msg(LOG_ERROR, "%s", err);
        fprintf(stderr, "sigtracker: %s\n", err);
        return 1;
    }
    if (server_load_access_list(s, err, sizeof(err)) != 0 ||
        server_load_tls(s, err, sizeof(err)) != 0) {
        log_msg(LOG_ERROR, "%s", err);
        fprintf(stderr, "sigtracker: %s\n", err);
        server_destroy(s);
        return 2;
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
