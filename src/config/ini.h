/* ini.h: the configuration file's INI syntax. Bytes in, one callback per section header and per
 * `key = value`, each with its line number; no I/O and no allocation, so the parser is
 * unit-tested (tests/unit/test_ini.c) and fuzzed (fuzz/fuzz_config.c). What the keys mean is
 * config.c's business, not this module's.
 *
 * The syntax (docs/configuration.md):
 *   - lines end with LF (a CR before it is dropped); a UTF-8 byte-order mark at the start is
 *     skipped; no other control character (tab aside) may appear;
 *   - blank lines, and lines whose first non-blank character is '#' or ';', are comments;
 *   - `[name]` opens a section; `key = value` sets a key (spaces around '=' are optional);
 *   - an unquoted value is trimmed and ends at a '#' that starts a word (a trailing comment);
 *   - a value in double quotes keeps everything between them, '#' included; inside, only \" and
 *     \\ are escapes.
 * Names (sections and keys) are 1 to INI_MAX_NAME_BYTES of A-Z a-z 0-9 '-' '_' '.'. */
#ifndef SIG_CONFIG_INI_H
#define SIG_CONFIG_INI_H

#include <stddef.h>

#include "core/buf.h"

/* Longest line, in bytes, without its line end. Config values are at most 4 KiB, so a line four
 * times that long can only be a mistake (or an attack on the parser). */
#define INI_MAX_LINE_BYTES 16384
/* Longest section or key name, in bytes. */
#define INI_MAX_NAME_BYTES 64

enum ini_kind {
    INI_SECTION = 1, /* a [section] header: section is set, key and value are NULL */
    INI_KEY = 2,     /* key = value, in the current section ("" before the first header) */
};

/* One section header or key, valid only during the callback: the strings live in the parser's
 * own buffers and are NUL-terminated. */
typedef struct ini_entry {
    int kind;            /* enum ini_kind */
    unsigned line;       /* 1-based line number */
    const char *section; /* the current section name, "" before the first header */
    const char *key;     /* INI_KEY only */
    const char *value;   /* INI_KEY only: unquoted, comment removed, trimmed unless quoted */
    size_t value_len;    /* bytes of value (it cannot hold a NUL: control bytes are refused) */
} ini_entry_t;

/* A syntax error: the line and a static, human-readable reason. */
typedef struct ini_error {
    unsigned line;
    const char *msg;
} ini_error_t;

/* Called once per entry, in file order. Returns 0 to go on; any other value stops the parse, and
 * ini_parse returns it. */
typedef int (*ini_cb)(void *arg, const ini_entry_t *e);

/* Parses data[0..len) and calls cb for every section header and key. Returns 0 when the whole
 * input was read; -EINVAL on a syntax error, with the line and reason in *err (err may be NULL);
 * or the callback's non-zero return, unchanged (*err untouched). Pure: no I/O, no allocation,
 * about 20 KiB of stack. Any thread. */
int ini_parse(const char *data, size_t len, ini_cb cb, void *arg, ini_error_t *err);

/* Appends value v (NUL-terminated) to b in the form ini_parse reads back as exactly v: bare when
 * it can be, in double quotes when it is surrounded by blanks or holds '#', '"' or '\'. v must not
 * hold control characters other than tab. */
void ini_write_value(buf_t *b, const char *v);

#endif
