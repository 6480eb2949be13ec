/* fuzz_config.c: libFuzzer driver for the configuration file: the INI parser (config/ini.c) and
 * the loader behind it (config/config.c), with the listener URL parser.
 *
 * The input is a configuration file, optionally followed by a NUL and a command line: the bytes
 * after the first NUL, split at further NULs, are the flags (at most FUZZ_MAX_ARGS). Checked:
 *   - every entry the INI parser reports has a line number within the input, a valid name and
 *     a value without control bytes; a syntax error names a line within the input;
 *   - a refused configuration says why, naming the file ("fuzz.conf:LINE:" with LINE within the
 *     input) or a flag ("--", or an unexpected or unknown argument);
 *   - an accepted one prints (--print-config) into a file that loads back without flags and
 *     prints again byte for byte (the round trip tests/integration/config.test.mjs checks on the
 *     real binary), and has 1 to CONFIG_MAX_LISTENERS listeners;
 *   - the input's first line, as a --listen URL, either is refused with a reason or formats into
 *     a URL that parses into the same listener. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/ini.h"
#include "core/buf.h"
#include "core/log.h"
#include "fuzz_check.h"

/* Flags taken from the input after its first NUL. */
#define FUZZ_MAX_ARGS 16
/* Bytes of a loader error message. */
#define FUZZ_ERR_BYTES (CONFIG_PATH_BYTES + 512)

typedef struct ini_check {
    unsigned lines; /* lines in the input (an upper bound for line numbers) */
    unsigned last;  /* line of the previous entry */
} ini_check_t;

static int name_ok(const char *p) {
    size_t n = strlen(p);
    if (n == 0 || n > INI_MAX_NAME_BYTES)
        return 0;
    for (; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.'))
            return 0;
    return 1;
}

static int on_entry(void *arg, const ini_entry_t *e) {
    ini_check_t *ck = arg;
    CHECK(e->line >= 1 && e->line <= ck->lines);
    CHECK(e->line > ck->last);
    ck->last = e->line;
    CHECK(e->section != NULL);
    CHECK(e->section[0] == '\0' || name_ok(e->section));
    if (e->kind == INI_SECTION) {
        CHECK(e->key == NULL && e->value == NULL && name_ok(e->section));
    } else {
        CHECK(e->kind == INI_KEY);
        CHECK(name_ok(e->key));
        CHECK(strlen(e->value) == e->value_len);
        CHECK(e->value_len <= INI_MAX_LINE_BYTES);
        for (size_t i = 0; i < e->value_len; i++)
            CHECK((unsigned char)e->value[i] >= 0x20 || e->value[i] == '\t');
    }
    return 0;
}

/* Checks an error message from the loader. */
static void check_error(const char *err, unsigned lines) {
    CHECK(err[0] != '\0');
    if (strncmp(err, "fuzz.conf:", 10) == 0) {
        char *end = NULL;
        unsigned long line = strtoul(err + 10, &end, 10);
        CHECK(end != err + 10 && *end == ':');
        CHECK(line >= 1 && line <= lines);
        return;
    }
    CHECK(strncmp(err, "--", 2) == 0 || strncmp(err, "unexpected argument", 19) == 0 ||
          strncmp(err, "unknown option", 14) == 0);
}

static void check_listen_line(const uint8_t *data, size_t size) {
    char url[512];
    size_t n = 0;
    while (n < size && n < sizeof(url) - 1 && data[n] != '\n' && data[n] != '\0')
        n++;
    memcpy(url, data, n);
    url[n] = '\0';
    config_listener_t l, again;
    const char *why = NULL;
    if (config_listen_parse(url, &l, &why) != 0) {
        CHECK(why != NULL && why[0] != '\0');
        return;
    }
    CHECK(l.port >= 1 && (l.scheme == CONFIG_WS || l.scheme == CONFIG_WSS));
    CHECK(l.host[0] != '\0');
    char out[CONFIG_HOST_BYTES + 32];
    config_listen_format(&l, out, sizeof(out));
    CHECK(config_listen_parse(out, &again, &why) == 0);
    CHECK(memcmp(&l, &again, sizeof(l)) == 0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    log_set_level(LOG_OFF);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* The file is what comes before the first NUL; the flags follow it. */
    const uint8_t *nul = memchr(data, '\0', size);
    size_t flen = nul ? (size_t)(nul - data) : size;
    unsigned lines = 1;
    for (size_t i = 0; i < flen; i++)
        lines += data[i] == '\n';

    ini_check_t ck = {lines, 0};
    ini_error_t ie = {0, NULL};
    int rc = ini_parse((const char *)data, flen, on_entry, &ck, &ie);
    if (rc != 0) {
        CHECK(rc == -22); /* -EINVAL */
        CHECK(ie.msg != NULL && ie.line >= 1 && ie.line <= lines);
    }

    char *storage = malloc(size + 1);
    memcpy(storage, data, size);
    storage[size] = '\0';
    char *argv[FUZZ_MAX_ARGS + 2];
    int argc = 0;
    argv[argc++] = "sigtracker";
    if (nul != NULL) {
        char *p = storage + flen + 1, *end = storage + size;
        while (p < end && argc <= FUZZ_MAX_ARGS) {
            argv[argc++] = p;
            p += strlen(p) + 1;
        }
    }
    argv[argc] = NULL;

    static config_t c1, c2;
    static char err[FUZZ_ERR_BYTES];
    err[0] = '\0';
    rc = config_load_buffer(&c1, "fuzz.conf", storage, flen, argc, argv, err, sizeof(err));
    if (rc != 0) {
        check_error(err, lines);
    } else {
        CHECK(c1.nlisteners >= 1 && c1.nlisteners <= CONFIG_MAX_LISTENERS);
        CHECK(c1.min_interval <= c1.interval);
        CHECK(c1.default_numwant <= c1.max_numwant);
        CHECK(!(c1.allowlist[0] && c1.denylist[0]));
        buf_t p1 = {0}, p2 = {0};
        config_print(&c1, &p1);
        char *plain[] = {"sigtracker", NULL};
        rc = config_load_buffer(&c2, "printed.conf", (const char *)p1.data, p1.len, 1, plain, err,
                                sizeof(err));
        if (rc != 0)
            fprintf(stderr, "the printed configuration does not load: %s\n", err);
        CHECK(rc == 0);
        config_print(&c2, &p2);
        CHECK(p1.len == p2.len && memcmp(p1.data, p2.data, p1.len) == 0);
        buf_dispose(&p1);
        buf_dispose(&p2);
    }
    free(storage);
    check_listen_line(data, size);
    return 0;
}
