/* ini.c: the INI parser (see ini.h for the syntax). One pass over the bytes, one line at a time;
 * every name and value is copied into a fixed buffer on the stack, so the callback gets
 * NUL-terminated strings without the parser allocating anything. */
#include "config/ini.h"

#include <errno.h>
#include <string.h>

/* The UTF-8 byte-order mark some editors put at the start of a file. */
static const char utf8_bom[] = "\xef\xbb\xbf";

static int is_blank(char ch) {
    return ch == ' ' || ch == '\t';
}

static int is_name_char(char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '_' || ch == '.';
}

/* Copies p[0..n) into out as a name. Returns 0, or -1 when it is empty, too long or holds a
 * character names may not have. */
static int take_name(const char *p, size_t n, char out[INI_MAX_NAME_BYTES + 1]) {
    if (n == 0 || n > INI_MAX_NAME_BYTES)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!is_name_char(p[i]))
            return -1;
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

/* Returns 1 when what remains of a line after a value or header, p[0..n), is blanks and at most a
 * comment. */
static int only_comment_left(const char *p, size_t n) {
    size_t i = 0;
    while (i < n && is_blank(p[i]))
        i++;
    return i == n || p[i] == '#' || p[i] == ';';
}

/* Reads the value of a key line from p[0..n) (after '=') into out. Returns its length, or -1 with
 * *why set. */
static long take_value(const char *p, size_t n, char *out, const char **why) {
    size_t i = 0;
    while (i < n && is_blank(p[i]))
        i++;
    if (i < n && p[i] == '"') {
        size_t o = 0;
        for (i++; i < n; i++) {
            if (p[i] == '"')
                break;
            if (p[i] == '\\') {
                if (i + 1 >= n || (p[i + 1] != '"' && p[i + 1] != '\\')) {
                    *why = "unknown escape in a quoted value (only \\\" and \\\\ are escapes)";
                    return -1;
                }
                i++;
            }
            out[o++] = p[i];
        }
        if (i >= n) {
            *why = "a quoted value has no closing quote";
            return -1;
        }
        if (!only_comment_left(p + i + 1, n - i - 1)) {
            *why = "text after the closing quote of a value";
            return -1;
        }
        out[o] = '\0';
        return (long)o;
    }
    /* Unquoted: up to a '#' that starts a word, then without trailing blanks. */
    size_t end = i;
    while (end < n && !(p[end] == '#' && (end == i || is_blank(p[end - 1]))))
        end++;
    while (end > i && is_blank(p[end - 1]))
        end--;
    memcpy(out, p + i, end - i);
    out[end - i] = '\0';
    return (long)(end - i);
}

int ini_parse(const char *data, size_t len, ini_cb cb, void *arg, ini_error_t *err) {
    char section[INI_MAX_NAME_BYTES + 1] = "";
    char key[INI_MAX_NAME_BYTES + 1];
    char value[INI_MAX_LINE_BYTES + 1];
    const char *why = NULL;
    unsigned line = 0;
    size_t pos = 0;
    if (len >= 3 && memcmp(data, utf8_bom, 3) == 0)
        pos = 3;
    while (pos < len) {
        line++;
        const char *eol = memchr(data + pos, '\n', len - pos);
        size_t n = eol ? (size_t)(eol - (data + pos)) : len - pos;
        const char *p = data + pos;
        pos += n + (eol ? 1 : 0);
        if (n > 0 && p[n - 1] == '\r')
            n--;
        if (n > INI_MAX_LINE_BYTES) {
            why = "line too long";
            goto fail;
        }
        for (size_t i = 0; i < n; i++) {
            unsigned char ch = (unsigned char)p[i];
            if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
                why = "control character in the line";
                goto fail;
            }
        }
        while (n > 0 && is_blank(*p)) {
            p++;
            n--;
        }
        while (n > 0 && is_blank(p[n - 1]))
            n--;
        if (n == 0 || p[0] == '#' || p[0] == ';')
            continue;
        ini_entry_t e = {0};
        e.line = line;
        e.section = section;
        if (p[0] == '[') {
            const char *close = memchr(p, ']', n);
            if (close == NULL) {
                why = "a section header needs a closing ']'";
                goto fail;
            }
            const char *a = p + 1, *b = close;
            while (a < b && is_blank(*a))
                a++;
            while (b > a && is_blank(b[-1]))
                b--;
            if (take_name(a, (size_t)(b - a), section) != 0) {
                why = "invalid section name (1 to 64 of A-Z a-z 0-9 - _ .)";
                goto fail;
            }
            if (!only_comment_left(close + 1, n - (size_t)(close + 1 - p))) {
                why = "text after a section header";
                goto fail;
            }
            e.kind = INI_SECTION;
        } else {
            const char *eq = memchr(p, '=', n);
            if (eq == NULL) {
                why = "expected `key = value`";
                goto fail;
            }
            const char *b = eq;
            while (b > p && is_blank(b[-1]))
                b--;
            if (take_name(p, (size_t)(b - p), key) != 0) {
                why = "invalid key name (1 to 64 of A-Z a-z 0-9 - _ .)";
                goto fail;
            }
            long vlen = take_value(eq + 1, n - (size_t)(eq + 1 - p), value, &why);
            if (vlen < 0)
                goto fail;
            e.kind = INI_KEY;
            e.key = key;
            e.value = value;
            e.value_len = (size_t)vlen;
        }
        int r = cb(arg, &e);
        if (r != 0)
            return r;
    }
    return 0;
fail:
    if (err != NULL) {
        err->line = line;
        err->msg = why;
    }
    return -EINVAL;
}

void ini_write_value(buf_t *b, const char *v) {
    size_t n = strlen(v);
    int quote = n > 0 && (is_blank(v[0]) || is_blank(v[n - 1]));
    for (size_t i = 0; i < n && !quote; i++)
        quote = v[i] == '#' || v[i] == '"' || v[i] == '\\';
    if (!quote) {
        buf_append(b, v, n);
        return;
    }
    buf_append(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        if (v[i] == '"' || v[i] == '\\')
            buf_append(b, "\\", 1);
        buf_append(b, v + i, 1);
    }
    buf_append(b, "\"", 1);
}
