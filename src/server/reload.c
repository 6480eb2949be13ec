/* reload.c: SIGHUP. The configuration is built again from scratch (defaults, the file, the
 * original command line) and checked, the access list is read again, and only when all of that
 * succeeded is anything applied, so a broken file never leaves the server half reconfigured.
 *
 * Applying is a copy of the new configuration over the running one: every setting that may
 * change at run time is read where it is used (limits, intervals, timeouts, rates and bursts,
 * origins, trusted proxies), so live connections follow at once. The few values derived from
 * the configuration (the connection cap and shedding marks, the log level) are recomputed here.
 * Settings that need a restart are set back to their running values first (config.c knows
 * which), and each is named in the log. The TLS certificate and key are loaded again last
 * (server_tls_reload): a new context for new handshakes, while open connections keep theirs. */
#include "server/server.h"
#include "server/tls.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/log.h"
#include "hub/ctx.h"
#include "proto/tracker.h"
#include "tracker/acl.h"

/* Bytes of the list of changed settings in the one-line summary (a log line holds 1 KiB). */
#define RELOAD_CHANGES_BYTES 600

/* Builds the access list cfg names into *out (NULL when it names none). Returns 0, or a negative
 * errno with the file and line in err. */
static int load_list(server_t *s, const config_t *cfg, acl_t **out, char *err, size_t errlen) {
    *out = NULL;
    const char *path = cfg->allowlist[0] != '\0' ? cfg->allowlist : cfg->denylist;
    if (path[0] == '\0')
        return 0;
    acl_t *a = acl_create(cfg->allowlist[0] != '\0' ? ACL_ALLOW : ACL_DENY, &s->key);
    int rc = acl_load_file(a, path, err, errlen);
    if (rc != 0) {
        acl_destroy(a);
        return rc;
    }
    *out = a;
    return 0;
}

int server_load_access_list(server_t *s, char *err, size_t errlen) {
    acl_t *a = NULL;
    int rc = load_list(s, &s->cfg, &a, err, errlen);
    if (rc == 0) {
        acl_destroy(s->acl);
        s->acl = a;
    }
    return rc;
}

int server_tls_reload(server_t *s, const config_t *next, char *err, size_t errlen) {
    /* The listeners need a restart to change, so the running ones say whether there is a
     * context to reload: next may name wss:// listeners that are not open (they are kept from
     * the running configuration) or none at all. */
    if (s->tls == NULL)
        return 0;
    char why[CONFIG_PATH_BYTES + 256] = "", desc[512];
    int rc = 0;
    if (next->tls_cert[0] == '\0' || next->tls_key[0] == '\0') {
        snprintf(why, sizeof(why), "wss:// listeners are open, so tls-cert and tls-key must stay");
        rc = -EINVAL;
    } else {
        rc = tls_ctx_reload(s->tls, next->tls_cert, next->tls_key, why, sizeof(why));
    }
    tls_ctx_describe(s->tls, desc, sizeof(desc));
    if (rc != 0) {
        s->count.tls_reload_errors++;
        snprintf(err, errlen, "certificate reload failed, keeping the current one (%s): %s", desc,
                 why);
        return rc;
    }
    /* Committed: nothing after this hook can refuse the reload. */
    s->count.tls_reloads++;
    log_msg(LOG_INFO, "certificate reloaded: %s; open connections keep theirs", desc);
    return 0;
}

/* What a reload changed, gathered from config_reload_merge's notes. */
typedef struct changes {
    char text[RELOAD_CHANGES_BYTES];
    size_t len;
    int applied;
    int restart;
} changes_t;

static void note(void *arg, const char *name, const char *was, const char *now, int needs_restart) {
    changes_t *ch = arg;
    if (needs_restart) {
        ch->restart++;
        log_msg(LOG_WARN,
                "reload: changed %s from \"%s\" to \"%s\": needs a restart; keeping \"%s\"", name,
                was, now, was);
        return;
    }
    ch->applied++;
    if (ch->len + 4 >= sizeof(ch->text))
        return;
    int n =
        snprintf(ch->text + ch->len, sizeof(ch->text) - ch->len, "%s%s %s -> %s",
                 ch->applied > 1 ? ", " : "", name, was[0] ? was : "\"\"", now[0] ? now : "\"\"");
    if (n < 0 || (size_t)n >= sizeof(ch->text) - ch->len) {
        /* Full: end the list with an ellipsis; the count still says how many there were. */
        strcpy(ch->text + sizeof(ch->text) - 4, "...");
        ch->len = sizeof(ch->text) - 1;
    } else {
        ch->len += (size_t)n;
    }
}

static uint64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int server_reload(server_t *s) {
    char err[CONFIG_PATH_BYTES + 512];
    uint64_t t0 = mono_ms();
    config_t *next = xmalloc(sizeof(*next));
    acl_t *acl = NULL;
    int rc = config_load(next, s->cfg.argc, s->cfg.argv, err, sizeof(err));
    if (rc == 0)
        rc = load_list(s, next, &acl, err, sizeof(err));
    if (rc == 0)
        rc = server_tls_reload(s, next, err, sizeof(err));
    if (rc != 0) {
        s->count.reload_failures++;
        log_msg(LOG_ERROR, "reload refused: %s; the running configuration is unchanged", err);
        acl_destroy(acl);
        xfree(next);
        return rc;
    }
    changes_t ch = {.len = 0};
    config_reload_merge(&s->cfg, next, note, &ch);
    s->cfg = *next;
    xfree(next);
    server_apply_caps(s);
    log_set_level((enum log_level)s->cfg.log_level);
    log_set_format(s->cfg.log_format);
    size_t had = s->acl != NULL ? acl_count(s->acl) : 0;
    acl_destroy(s->acl);
    s->acl = acl;
    uint64_t removed = tracker_enforce_access(s);
    s->count.reloads++;
    char list[CONFIG_PATH_BYTES + 96];
    if (s->acl == NULL)
        snprintf(list, sizeof(list), "no access list");
    else
        snprintf(list, sizeof(list), "%s %s: %zu infohashes (was %zu), %llu peers removed",
                 acl_mode(s->acl) == ACL_ALLOW ? "allowlist" : "denylist",
                 acl_mode(s->acl) == ACL_ALLOW ? s->cfg.allowlist : s->cfg.denylist,
                 acl_count(s->acl), had, (unsigned long long)removed);
    log_msg(LOG_INFO, "reload of %s: %d changed (%s); %s; %d kept until a restart; %llu ms",
            s->cfg.config_file[0] ? s->cfg.config_file : "the command line", ch.applied,
            ch.applied ? ch.text : "none", list, ch.restart, (unsigned long long)(mono_ms() - t0));
    return 0;
}
