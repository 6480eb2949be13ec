/* fuzz_logfmt.c: libFuzzer driver for the log line formatter. Arbitrary bytes become the message,
 * field values (strings and hex) and one arbitrary key; every line must be printable ASCII with one
 * newline at its end, a JSON line must parse (cJSON as the oracle) as one object whose msg and
 * string fields decode back to the bytes given (each byte b as the code point b), and a logfmt
 * line must split into key=value pairs whose values decode back the same way. A line cut for
 * length must end with truncated=true; values are only compared when it was not cut. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/logfmt.h"

/* Fields one input may carry. */
#define MAX_FIELDS 6

static void fail(const char *why, const char *line, size_t n) {
    fprintf(stderr, "fuzz_logfmt: %s in line: %.*s\n", why, (int)n, line);
    abort();
}

/* Decodes the UTF-8 of code points U+0000-U+00FF back into bytes. Returns the length, or -1. */
static int latin1_bytes(const char *s, uint8_t *out, size_t cap) {
    size_t n = 0;
    for (const uint8_t *p = (const uint8_t *)s; *p; p++) {
        if (n >= cap)
            return -1;
        if (*p < 0x80) {
            out[n++] = *p;
        } else if ((*p == 0xc2 || *p == 0xc3) && (p[1] & 0xc0) == 0x80) {
            out[n++] = (uint8_t)(((*p & 3) << 6) | (p[1] & 0x3f));
            p++;
        } else {
            return -1;
        }
    }
    return (int)n;
}

/* Bytes before the first NUL: cJSON's strings end there, so only they can be compared. */
static size_t before_nul(const void *p, size_t n) {
    const void *z = memchr(p, 0, n);
    return z != NULL ? (size_t)((const uint8_t *)z - (const uint8_t *)p) : n;
}

static int hexv(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Parses one logfmt value at *pp (quoted or bare), decoding it into out. Returns its length, or
 * -1 when malformed. */
static int text_value(const char **pp, const char *end, uint8_t *out, size_t cap) {
    const char *p = *pp;
    size_t n = 0;
    if (p < end && *p == '"') {
        p++;
        while (p < end && *p != '"') {
            if (n >= cap)
                return -1;
            if (*p != '\\') {
                out[n++] = (uint8_t)*p++;
                continue;
            }
            if (p + 1 >= end)
                return -1;
            char e = p[1];
            if (e == '"' || e == '\\') {
                out[n++] = (uint8_t)e;
                p += 2;
            } else if (e == 'n' || e == 't') {
                out[n++] = e == 'n' ? '\n' : '\t';
                p += 2;
            } else if (e == 'x' && p + 3 < end && hexv(p[2]) >= 0 && hexv(p[3]) >= 0) {
                out[n++] = (uint8_t)(hexv(p[2]) * 16 + hexv(p[3]));
                p += 4;
            } else {
                return -1;
            }
        }
        if (p >= end)
            return -1;
        p++;
    } else {
        while (p < end && *p != ' ') {
            if (*p == '"' || *p == '=' || *p == '\\' || n >= cap)
                return -1;
            out[n++] = (uint8_t)*p++;
        }
    }
    *pp = p;
    return (int)n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2)
        return 0;
    int json = data[0] & 1;
    size_t nf = (size_t)(data[0] >> 1) % (MAX_FIELDS + 1);
    data++;
    size--;
    /* The message, then each field: a length byte (top bit: hex) and that many bytes. */
    size_t mlen = data[0] < size - 1 ? data[0] : size - 1;
    const char *msg = (const char *)data + 1;
    size_t off = 1 + mlen;
    logfmt_field_t f[MAX_FIELDS + 1];
    static const char *const keys[MAX_FIELDS] = {"f0", "f1", "f2", "f3", "f4", "f5"};
    size_t n = 0;
    while (n < nf && off < size) {
        size_t len = data[off] & 0x7f;
        int hex = data[off] >> 7;
        off++;
        if (len > size - off)
            len = size - off;
        f[n] = (logfmt_field_t){keys[n], hex ? LOGFMT_HEX : LOGFMT_STR, data + off, len, 0};
        off += len;
        n++;
    }
    /* The rest, NUL-terminated, is an arbitrary key with a number. */
    char key[64];
    size_t kl = size - off < sizeof(key) - 1 ? size - off : sizeof(key) - 1;
    memcpy(key, data + off, kl);
    key[kl] = '\0';
    f[n++] = (logfmt_field_t){key, LOGFMT_U64, NULL, 0, 12345};

    char line[LOGFMT_LINE_BYTES];
    size_t len = logfmt_line(line, json, 1796428799123LL, "warn", msg, mlen, f, n);
    if (len == 0 || len > LOGFMT_LINE_BYTES || line[len - 1] != '\n')
        fail("no newline at the end", line, len);
    for (size_t i = 0; i + 1 < len; i++)
        if ((uint8_t)line[i] < 0x20 || (uint8_t)line[i] >= 0x7f)
            fail("a byte outside printable ASCII", line, len);
    /* The last field is a number, so only a cut line ends with this. */
    const char *suffix = json ? ",\"truncated\":true}\n" : " truncated=true\n";
    size_t sl = strlen(suffix);
    int cut = len >= sl && memcmp(line + len - sl, suffix, sl) == 0;
    uint8_t got[LOGFMT_LINE_BYTES];
    if (json) {
        cJSON *root = cJSON_ParseWithLength(line, len - 1);
        if (root == NULL || !cJSON_IsObject(root))
            fail("not one JSON object", line, len);
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "msg");
        const cJSON *ts = cJSON_GetObjectItemCaseSensitive(root, "ts");
        if (!cJSON_IsString(ts) || !cJSON_IsString(m))
            fail("no ts or msg", line, len);
        int truncated = cut;
        int gl = latin1_bytes(m->valuestring, got, sizeof(got));
        if (!truncated && (gl != (int)before_nul(msg, mlen) || memcmp(got, msg, (size_t)gl) != 0))
            fail("msg does not decode back", line, len);
        for (size_t i = 0; i + 1 < n && !truncated; i++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, keys[i]);
            if (!cJSON_IsString(v))
                fail("a field is missing", line, len);
            if (f[i].kind == LOGFMT_STR) {
                gl = latin1_bytes(v->valuestring, got, sizeof(got));
                if (gl != (int)before_nul(f[i].p, f[i].len) || memcmp(got, f[i].p, (size_t)gl) != 0)
                    fail("a field does not decode back", line, len);
            } else if (strlen(v->valuestring) != 2 * f[i].len) {
                fail("a hex field has the wrong length", line, len);
            }
        }
        cJSON_Delete(root);
        return 0;
    }
    /* logfmt: key=value pairs separated by one space. */
    const char *p = line, *end = line + len - 1;
    size_t pair = 0;
    while (p < end) {
        const char *k = p;
        while (p < end && *p != '=' && *p != ' ' && *p != '"')
            p++;
        if (p >= end || *p != '=' || p == k)
            fail("a pair without key=", line, len);
        p++;
        int vl = text_value(&p, end, got, sizeof(got));
        if (vl < 0)
            fail("a malformed value", line, len);
        if (p < end && *p++ != ' ')
            fail("pairs not separated by a space", line, len);
        /* Pairs: ts, level, msg, then the fields in order. */
        if (pair == 2 && !cut && (vl != (int)mlen || memcmp(got, msg, mlen) != 0))
            fail("msg does not decode back", line, len);
        if (pair >= 3 && pair - 3 + 1 < n && f[pair - 3].kind == LOGFMT_STR && !cut &&
            (vl != (int)f[pair - 3].len || memcmp(got, f[pair - 3].p, f[pair - 3].len) != 0))
            fail("a field does not decode back", line, len);
        pair++;
    }
    if (pair < 3 + (cut ? 0 : n))
        fail("pairs are missing", line, len);
    return 0;
}
