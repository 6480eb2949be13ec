/* logfmt.c: one event, one line. A writer with a fixed budget: every escape sequence is written
 * whole or not at all, and room for the closing bytes (a quote, " truncated=true" or
 * ",\"truncated\":true}", the newline) is kept back from the start, so a cut line is still one
 * valid JSON object or one logfmt line. */
#include "core/logfmt.h"

#include <string.h>
#include <time.h>

/* Bytes kept back for the end of a cut line: "\",\"truncated\":true}\n" is 20. */
#define TAIL_RESERVE 24
/* Bytes of the longest value that cannot be cut: a 64-bit number. */
#define VALUE_MIN 20

typedef struct writer {
    char *p;
    size_t len, limit; /* limit: LOGFMT_LINE_BYTES - TAIL_RESERVE */
    int full;          /* something did not fit: the rest is dropped */
} writer_t;

static const char hexdig[] = "0123456789abcdef";

static int put(writer_t *w, const char *s, size_t n) {
    if (w->full || w->len + n > w->limit) {
        w->full = 1;
        return -1;
    }
    memcpy(w->p + w->len, s, n);
    w->len += n;
    return 0;
}

static int printable(uint8_t b) {
    return b >= 0x20 && b < 0x7f;
}

/* Writes bytes as the inside of a quoted string: a JSON string (json 1: other bytes as \u00HH)
 * or a logfmt value (json 0: as \xHH). Both escape the quote, the backslash, \n and \t alike. */
static void escaped(writer_t *w, const uint8_t *s, size_t n, int json) {
    for (size_t i = 0; i < n && !w->full; i++) {
        uint8_t b = s[i];
        if (b == '"' || b == '\\') {
            char q[2] = {'\\', (char)b};
            put(w, q, 2);
        } else if (b == '\n') {
            put(w, "\\n", 2);
        } else if (b == '\t') {
            put(w, "\\t", 2);
        } else if (printable(b)) {
            put(w, (const char *)&b, 1);
        } else if (json) {
            char e[6] = {'\\', 'u', '0', '0', hexdig[b >> 4], hexdig[b & 15]};
            put(w, e, 6);
        } else {
            char e[4] = {'\\', 'x', hexdig[b >> 4], hexdig[b & 15]};
            put(w, e, 4);
        }
    }
}

/* Returns 1 when a logfmt value must be quoted. */
static int needs_quotes(const uint8_t *s, size_t n) {
    if (n == 0)
        return 1;
    for (size_t i = 0; i < n; i++)
        if (!printable(s[i]) || s[i] == ' ' || s[i] == '=' || s[i] == '"' || s[i] == '\\')
            return 1;
    return 0;
}

/* Writes a logfmt key: bytes outside [A-Za-z0-9_.-] become '_', so a key can never hold a
 * space, '=' or a quote. */
static void text_key(writer_t *w, const char *k) {
    size_t n = strlen(k);
    if (n == 0)
        put(w, "_", 1);
    for (size_t i = 0; i < n && !w->full; i++) {
        char ch = k[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '_' || ch == '.' || ch == '-';
        put(w, ok ? &ch : "_", 1);
    }
}

static size_t u64_digits(uint64_t v, char *buf) {
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    return n;
}

/* Writes one value (after "key=" or "\"key\":"). A value that does not fit is cut, and a
 * quoted one is closed from the reserve. */
static void value(writer_t *w, int json, const logfmt_field_t *f) {
    if (f->kind == LOGFMT_U64) {
        char d[20];
        put(w, d, u64_digits(f->u, d));
        return;
    }
    const uint8_t *s = f->p != NULL ? f->p : (const uint8_t *)"";
    size_t n = f->p != NULL ? f->len : 0;
    int quoted = f->kind == LOGFMT_HEX ? json || n == 0 : json || needs_quotes(s, n);
    if (quoted && put(w, "\"", 1) != 0)
        return;
    if (f->kind == LOGFMT_HEX) {
        for (size_t i = 0; i < n && !w->full; i++) {
            char h[2] = {hexdig[s[i] >> 4], hexdig[s[i] & 15]};
            put(w, h, 2);
        }
    } else if (json) {
        escaped(w, s, n, 1);
    } else if (quoted) {
        escaped(w, s, n, 0);
    } else {
        for (size_t i = 0; i < n && !w->full; i++)
            put(w, (const char *)s + i, 1);
    }
    if (quoted && put(w, "\"", 1) != 0)
        w->p[w->len++] = '"'; /* from the reserve */
}

/* Writes the separator and key of a field. Returns -1 when they did not fit. */
static int key(writer_t *w, int json, const char *k) {
    size_t mark = w->len;
    if (json) {
        put(w, ",\"", 2);
        escaped(w, (const uint8_t *)k, strlen(k), 1);
        put(w, "\":", 2);
    } else {
        put(w, " ", 1);
        text_key(w, k);
        put(w, "=", 1);
    }
    /* A key without its value would be a broken line: the key goes only with room for the
     * shortest whole value after it (a number's 20 digits, or a string's two quotes). */
    if (w->full || w->len + VALUE_MIN > w->limit) {
        w->len = mark;
        w->full = 1;
        return -1;
    }
    return 0;
}

int logfmt_parse(const char *name) {
    if (strcmp(name, "text") == 0)
        return LOGFMT_TEXT;
    if (strcmp(name, "json") == 0)
        return LOGFMT_JSON;
    return -1;
}

const char *logfmt_name(int format) {
    return format == LOGFMT_JSON ? "json" : "text";
}

size_t logfmt_line(char *out, int format, int64_t ts_ms, const char *level, const char *msg,
                   size_t msglen, const logfmt_field_t *fields, size_t nfields) {
    writer_t w = {out, 0, LOGFMT_LINE_BYTES - TAIL_RESERVE, 0};
    int json = format == LOGFMT_JSON;
    char ts[32];
    time_t sec = (time_t)(ts_ms >= 0 ? ts_ms / 1000 : 0);
    struct tm tm;
    gmtime_r(&sec, &tm);
    size_t tn = strftime(ts, sizeof(ts) - 5, "%Y-%m-%dT%H:%M:%S", &tm);
    unsigned ms = (unsigned)(ts_ms >= 0 ? ts_ms % 1000 : 0);
    ts[tn++] = '.';
    ts[tn++] = (char)('0' + ms / 100);
    ts[tn++] = (char)('0' + ms / 10 % 10);
    ts[tn++] = (char)('0' + ms % 10);
    ts[tn++] = 'Z';
    put(&w, json ? "{\"ts\":\"" : "ts=", json ? 7 : 3);
    put(&w, ts, tn);
    put(&w, json ? "\",\"level\":\"" : " level=", json ? 11 : 7);
    put(&w, level, strlen(level));
    if (json)
        put(&w, "\"", 1);
    logfmt_field_t m = {"msg", LOGFMT_STR, msg, msglen, 0};
    if (key(&w, json, "msg") == 0)
        value(&w, json, &m);
    for (size_t i = 0; i < nfields && !w.full; i++)
        if (key(&w, json, fields[i].key != NULL ? fields[i].key : "") == 0)
            value(&w, json, &fields[i]);
    /* The reserve holds the rest: the closing quote a cut value took, and these. */
    static const char cut_json[] = ",\"truncated\":true", cut_text[] = " truncated=true";
    if (w.full) {
        const char *t = json ? cut_json : cut_text;
        size_t tl = json ? sizeof(cut_json) - 1 : sizeof(cut_text) - 1;
        memcpy(out + w.len, t, tl);
        w.len += tl;
    }
    if (json)
        out[w.len++] = '}';
    out[w.len++] = '\n';
    return w.len;
}
