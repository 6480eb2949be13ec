/* logfmt.h: formats one log event as one line, in logfmt ("text") or as one JSON object ("json").
 * Pure: no I/O, no clock, no allocation; fuzzed by fuzz/fuzz_logfmt.c. Whatever bytes a field
 * holds (a WebTorrent peer ID is 20 arbitrary bytes), the line is printable ASCII ending in one
 * '\n': in JSON every byte outside printable ASCII is written \u00XX (a byte b reads back as the
 * code point b, as WebTorrent's "binary strings" do), in logfmt as \xXX inside quotes. */
#ifndef SIG_CORE_LOGFMT_H
#define SIG_CORE_LOGFMT_H

#include <stddef.h>
#include <stdint.h>

/* Bytes of the longest line, newline included; longer events are cut at a field boundary or
 * inside a value and end with truncated=true. */
#define LOGFMT_LINE_BYTES 2048

enum logfmt_format { LOGFMT_TEXT = 0, LOGFMT_JSON = 1 };

enum logfmt_kind {
    LOGFMT_STR = 0, /* p points to len bytes, written escaped */
    LOGFMT_HEX,     /* p points to len bytes, written as 2 * len lower-case hex digits */
    LOGFMT_U64,     /* u, a number (unquoted in JSON) */
};

/* One key=value of an event. Keys are written escaped too, so any bytes are safe there. */
typedef struct logfmt_field {
    const char *key;
    uint8_t kind; /* enum logfmt_kind */
    const void *p;
    size_t len;
    uint64_t u;
} logfmt_field_t;

/* Convenience initialisers. */
#define LOGFMT_S(k, s) ((logfmt_field_t){(k), LOGFMT_STR, (s), strlen(s), 0})
#define LOGFMT_B(k, b, n) ((logfmt_field_t){(k), LOGFMT_STR, (b), (n), 0})
#define LOGFMT_X(k, b, n) ((logfmt_field_t){(k), LOGFMT_HEX, (b), (n), 0})
#define LOGFMT_U(k, v) ((logfmt_field_t){(k), LOGFMT_U64, NULL, 0, (uint64_t)(v)})

/* Parses "text" or "json". Returns the enum logfmt_format, or -1. */
int logfmt_parse(const char *name);

/* Returns "text" or "json". */
const char *logfmt_name(int format);

/* Writes ts (unix milliseconds, as 2026-12-04T23:59:59.123Z), level, msg (msglen bytes) and the
 * fields into out, which must hold LOGFMT_LINE_BYTES. Returns the line's length, newline
 * included; the line is not NUL-terminated. Any thread. */
size_t logfmt_line(char *out, int format, int64_t ts_ms, const char *level, const char *msg,
                   size_t msglen, const logfmt_field_t *fields, size_t nfields);

#endif
