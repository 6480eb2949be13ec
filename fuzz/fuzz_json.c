/* fuzz_json.c: libFuzzer driver for the JSON tokenizer (src/json/json.c), with cJSON as oracle.
 *
 * Every input is tokenized. The driver then checks, in both directions:
 *  - accept: whatever json_parse accepts, cJSON accepts too, and the two trees agree on every
 *    type, member count, key and string value (unescaped) and number;
 *  - reject: whatever cJSON accepts, it can print back as canonical JSON, and json_parse must
 *    accept that text and agree with the same tree. (cJSON itself is more lenient than RFC 8259,
 *    so the input it accepted may legitimately be refused by us; its printed form may not.)
 * It also checks the structural invariants of the tokens, that the token and depth limits are
 * exact, and every accessor on every token against an independent computation.
 *
 * Known, legitimate differences from cJSON 1.7.15, each skipped explicitly below rather than
 * ignored:
 *  1. cJSON copies at most 63 bytes of a number before strtod (parse_number's 64-byte buffer), so
 *     it refuses longer numbers that RFC 8259 allows. Inputs with such a number skip the accept
 *     check.
 *  2. cJSON strings are NUL-terminated, so a "\u0000" escape truncates its valuestring (and its
 *     key). Strings are compared up to our first NUL byte.
 *  3. cJSON turns a number that overflows a double into +-inf (printed as null); json_get_double
 *     refuses it with -ERANGE. Such numbers are compared by that rule.
 *  4. cJSON nests up to CJSON_NESTING_LIMIT (1000) and has no token limit; we run with
 *     FUZZ_MAX_DEPTH and FUZZ_MAX_TOKS, so the reject check skips trees beyond them.
 *  5. cJSON prints a double with 15 significant digits whenever that reads back within
 *     DBL_EPSILON (relative), so its printed numbers are compared with that tolerance.
 * What cJSON accepts and we refuse on purpose cannot be checked against cJSON: leading zeros,
 * "1." and ".5", raw control characters in strings, any byte <= 0x20 as whitespace (including
 * NUL), a UTF-8 byte order mark, and anything after a NUL. check_strict verifies those rules
 * directly on every document we accept. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "json/json.h"
#include "fuzz_check.h"

/* Nesting limit of the driver: deep enough for any interesting structure, far below cJSON's. */
#define FUZZ_MAX_DEPTH 64
/* Token capacity of the driver, and the largest input it looks at, in bytes. A token takes at
 * least one input byte, so an input this long can never run out of tokens. */
#define FUZZ_MAX_TOKS 65536
#define FUZZ_MAX_INPUT_BYTES FUZZ_MAX_TOKS
/* Longest number, in bytes, that cJSON 1.7.15 parses whole (difference 1 above). */
#define CJSON_NUMBER_MAX_BYTES 63

static json_tok_t toks[FUZZ_MAX_TOKS];
static json_tok_t toks2[FUZZ_MAX_TOKS];
/* Unescaped strings: never longer than the input. */
static char ubuf[FUZZ_MAX_INPUT_BYTES + 1];
static char kbuf[FUZZ_MAX_INPUT_BYTES + 1];

/* Checks pre-order, `next`, `size` and nesting of offsets; returns the index after the subtree
 * and raises *depth to the deepest container level seen. */
static int check_tree(const json_tok_t *t, int n, int i, uint32_t level, uint32_t *depth) {
    CHECK(i < n);
    CHECK(t[i].start <= t[i].end);
    int j = i + 1;
    if (t[i].type == JSON_OBJECT || t[i].type == JSON_ARRAY) {
        if (level + 1 > *depth)
            *depth = level + 1;
        uint32_t kids = t[i].type == JSON_OBJECT ? 2 * t[i].size : t[i].size;
        for (uint32_t m = 0; m < kids; m++) {
            if (t[i].type == JSON_OBJECT && m % 2 == 0)
                CHECK(t[j].type == JSON_STRING);
            CHECK(t[j].start > t[i].start && t[j].end < t[i].end);
            j = check_tree(t, n, j, level + 1, depth);
        }
    } else {
        CHECK(t[i].size == 0);
        CHECK(t[i].type >= JSON_STRING && t[i].type <= JSON_NULL);
    }
    CHECK(t[i].next == (uint32_t)j);
    return j;
}

/* Unescapes string token t into ubuf-like storage and checks the -ENOSPC boundary. */
static int unescape_checked(const char *src, const json_tok_t *t, char *out) {
    uint32_t raw = t->end - t->start;
    int m = json_str_unescape(src, t, out, raw);
    /* Unescaping never lengthens a string; json_obj_get relies on it. */
    CHECK(m >= 0 && (uint32_t)m <= raw);
    if (m > 0)
        CHECK(json_str_unescape(src, t, out, (size_t)m - 1) == -ENOSPC);
    CHECK(t->escaped || (m == (int)raw && memcmp(out, src + t->start, raw) == 0));
    return m;
}

/* Checks json_get_i64 and json_get_double on a number token against strtoll and strtod. */
static void check_number(const char *src, const json_tok_t *t) {
    size_t len = t->end - t->start;
    char *copy = malloc(len + 1);
    CHECK(copy != NULL);
    memcpy(copy, src + t->start, len);
    copy[len] = '\0';
    int integral = strpbrk(copy, ".eE") == NULL;

    int64_t v = 0;
    int r = json_get_i64(src, t, &v);
    errno = 0;
    long long ref = strtoll(copy, NULL, 10);
    if (!integral)
        CHECK(r == -EINVAL);
    else if (errno == ERANGE)
        CHECK(r == -ERANGE);
    else
        CHECK(r == 0 && v == ref);

    double d = 0;
    r = json_get_double(src, t, &d);
    errno = 0;
    double dref = strtod(copy, NULL);
    int overflow = errno == ERANGE && (dref == HUGE_VAL || dref == -HUGE_VAL);
    if (len > 64)
        CHECK(r == -ERANGE); /* JSON_NUMBER_MAX_BYTES in json.c */
    else if (overflow)
        CHECK(r == -ERANGE);
    else
        CHECK(r == 0 && d == dref);
    free(copy);
}

/* Exercises every accessor on every token of a successful parse. */
static void check_accessors(const char *src, const json_tok_t *t, int n) {
    for (int i = 0; i < n; i++) {
        int64_t v;
        double d;
        if (t[i].type != JSON_STRING) {
            CHECK(json_str_unescape(src, &t[i], ubuf, sizeof ubuf) == -EINVAL);
            CHECK(json_str_eq(src, &t[i], "") == 0);
        }
        if (t[i].type != JSON_NUMBER) {
            CHECK(json_get_i64(src, &t[i], &v) == -EINVAL);
            CHECK(json_get_double(src, &t[i], &d) == -EINVAL);
        } else {
            check_number(src, &t[i]);
        }
        if (t[i].type == JSON_STRING) {
            int m = unescape_checked(src, &t[i], ubuf);
            if (memchr(ubuf, 0, (size_t)m) == NULL) {
                ubuf[m] = '\0';
                CHECK(json_str_eq(src, &t[i], ubuf) == 1);
                if (m > 0) {
                    ubuf[m - 1] = '\0';
                    CHECK(json_str_eq(src, &t[i], ubuf) == 0);
                }
            }
        }
        if (t[i].type != JSON_OBJECT) {
            CHECK(json_obj_get(src, t, i, "") == -1);
            continue;
        }
        /* Every key must be found, at its first occurrence. */
        uint32_t k = (uint32_t)i + 1;
        for (uint32_t m = 0; m < t[i].size; m++, k = t[k + 1].next) {
            int kl = unescape_checked(src, &t[k], kbuf);
            if (memchr(kbuf, 0, (size_t)kl) != NULL)
                continue; /* A C-string key cannot hold NUL. */
            kbuf[kl] = '\0';
            int want = (int)k + 1;
            uint32_t e = (uint32_t)i + 1;
            for (uint32_t p = 0; p < m; p++, e = t[e + 1].next) {
                int el = json_str_unescape(src, &t[e], ubuf, sizeof ubuf);
                if (el == kl && memcmp(ubuf, kbuf, (size_t)kl) == 0) {
                    want = (int)e + 1;
                    break;
                }
            }
            CHECK(json_obj_get(src, t, i, kbuf) == want);
        }
    }
}

/* Returns 1 when s[0..len) matches -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, written
 * independently of json.c as a check of the one-pass scanner. */
static int rfc_number(const char *s, size_t len) {
    size_t i = 0;
    if (i < len && s[i] == '-')
        i++;
    if (i < len && s[i] == '0') {
        i++;
    } else {
        size_t d = i;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == d || s[d] == '0')
            return 0;
    }
    if (i < len && s[i] == '.') {
        size_t d = ++i;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == d)
            return 0;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t d = i;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == d)
            return 0;
    }
    return i == len;
}

/* cJSON accepts raw control characters in strings, numbers such as "01" and "1.", and any byte
 * <= 0x20 as whitespace, so the accept check alone would not notice if we did too. This checks
 * those rules directly on an accepted document: string tokens hold no byte < 0x20, number tokens
 * match the grammar, literals are spelled right, and every byte outside a token is RFC 8259
 * whitespace or punctuation. */
static void check_strict(const char *src, size_t size, const json_tok_t *t, int n) {
    unsigned char *covered = calloc(size + 1, 1);
    CHECK(covered != NULL);
    for (int i = 0; i < n; i++) {
        size_t a = t[i].start, b = t[i].end;
        switch (t[i].type) {
        case JSON_STRING:
            CHECK(a >= 1 && src[a - 1] == '"' && b < size && src[b] == '"');
            for (size_t k = a; k < b; k++)
                CHECK((unsigned char)src[k] >= 0x20);
            CHECK(t[i].escaped == (memchr(src + a, '\\', b - a) != NULL));
            memset(covered + a - 1, 1, b - a + 2);
            break;
        case JSON_NUMBER:
            CHECK(rfc_number(src + a, b - a));
            memset(covered + a, 1, b - a);
            break;
        case JSON_TRUE:
        case JSON_FALSE:
        case JSON_NULL: {
            const char *lit = t[i].type == JSON_TRUE    ? "true"
                              : t[i].type == JSON_FALSE ? "false"
                                                        : "null";
            CHECK(b - a == strlen(lit) && memcmp(src + a, lit, b - a) == 0);
            memset(covered + a, 1, b - a);
            break;
        }
        default:
            CHECK(src[a] == (t[i].type == JSON_OBJECT ? '{' : '['));
            CHECK(src[b - 1] == (t[i].type == JSON_OBJECT ? '}' : ']'));
            break;
        }
    }
    for (size_t k = 0; k < size; k++)
        if (!covered[k])
            CHECK(strchr(" \t\n\r{}[],:", src[k]) != NULL && src[k] != '\0');
    free(covered);
}

/* Returns 1 when some number token is too long for cJSON (difference 1). */
static int has_long_number(const json_tok_t *t, int n) {
    for (int i = 0; i < n; i++)
        if (t[i].type == JSON_NUMBER && t[i].end - t[i].start > CJSON_NUMBER_MAX_BYTES)
            return 1;
    return 0;
}

/* Compares our subtree at token i with cJSON item c; returns the index after the subtree. With
 * exact == 0, numbers need only agree to within cJSON's own printing tolerance (difference 5). */
static int compare(const char *src, const json_tok_t *t, int i, const cJSON *c, int exact) {
    switch (t[i].type) {
    case JSON_OBJECT:
    case JSON_ARRAY: {
        int obj = t[i].type == JSON_OBJECT;
        CHECK(obj ? cJSON_IsObject(c) : cJSON_IsArray(c));
        CHECK(cJSON_GetArraySize(c) == (int)t[i].size);
        int j = i + 1;
        for (const cJSON *kid = c->child; kid != NULL; kid = kid->next) {
            if (obj) {
                int kl = json_str_unescape(src, &t[j], kbuf, sizeof kbuf);
                CHECK(kl >= 0 && kid->string != NULL);
                const char *z = memchr(kbuf, 0, (size_t)kl);
                size_t cmp = z ? (size_t)(z - kbuf) : (size_t)kl; /* difference 2 */
                CHECK(strlen(kid->string) == cmp && memcmp(kid->string, kbuf, cmp) == 0);
                j++;
            }
            j = compare(src, t, j, kid, exact);
        }
        CHECK((uint32_t)j == t[i].next);
        return j;
    }
    case JSON_STRING: {
        CHECK(cJSON_IsString(c));
        int m = json_str_unescape(src, &t[i], ubuf, sizeof ubuf);
        CHECK(m >= 0);
        const char *z = memchr(ubuf, 0, (size_t)m);
        size_t cmp = z ? (size_t)(z - ubuf) : (size_t)m; /* difference 2 */
        CHECK(strlen(c->valuestring) == cmp && memcmp(c->valuestring, ubuf, cmp) == 0);
        return i + 1;
    }
    case JSON_NUMBER: {
        CHECK(cJSON_IsNumber(c));
        double d = 0;
        int r = json_get_double(src, &t[i], &d);
        double want = c->valuedouble;
        if (want == HUGE_VAL || want == -HUGE_VAL)
            CHECK(r == -ERANGE); /* difference 3 */
        else if (exact)
            CHECK(r == 0 && d == want);
        else
            CHECK(r == 0 && fabs(d - want) <= fmax(fabs(d), fabs(want)) * DBL_EPSILON);
        return i + 1;
    }
    case JSON_TRUE:
        CHECK(cJSON_IsTrue(c));
        return i + 1;
    case JSON_FALSE:
        CHECK(cJSON_IsFalse(c));
        return i + 1;
    case JSON_NULL:
        CHECK(cJSON_IsNull(c));
        return i + 1;
    default:
        CHECK(0);
        return -1;
    }
}

/* Counts the items of a cJSON tree as tokens (keys included), measures its depth and notes
 * numbers that are not finite (cJSON prints them as null). */
static void measure(const cJSON *c, uint32_t level, size_t *ntok, uint32_t *depth, int *nonfinite) {
    *ntok += 1 + (c->string != NULL);
    if (cJSON_IsNumber(c) && !isfinite(c->valuedouble))
        *nonfinite = 1;
    if (cJSON_IsArray(c) || cJSON_IsObject(c)) {
        if (level + 1 > *depth)
            *depth = level + 1;
        for (const cJSON *kid = c->child; kid != NULL; kid = kid->next)
            measure(kid, level + 1, ntok, depth, nonfinite);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > FUZZ_MAX_INPUT_BYTES)
        return 0;
    /* libFuzzer's buffer is exactly size bytes, so ASan catches any read past the end. */
    const char *src = (const char *)data;
    int n = json_parse(src, size, toks, FUZZ_MAX_TOKS, FUZZ_MAX_DEPTH);
    CHECK(n == -EINVAL || n == -ELOOP || n >= 1);
    if (n == -ELOOP) {
        size_t opens = 0;
        for (size_t k = 0; k < size; k++)
            opens += data[k] == '[' || data[k] == '{';
        CHECK(opens > FUZZ_MAX_DEPTH);
    }

    /* cJSON wants a NUL right after the value (require_null_terminated), inside the length it is
     * given, so it gets a NUL-terminated copy and size + 1. */
    char *copy = malloc(size + 1);
    CHECK(copy != NULL);
    memcpy(copy, data, size);
    copy[size] = '\0';
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(copy, size + 1, &end, 1);

    if (n >= 1) {
        uint32_t depth = 0;
        CHECK(check_tree(toks, n, 0, 0, &depth) == n);
        /* The limits are exact: the document fits in exactly n tokens and depth levels. */
        CHECK(json_parse(src, size, toks2, (uint32_t)n, depth) == n);
        for (int i = 0; i < n; i++) {
            CHECK(toks[i].start == toks2[i].start && toks[i].end == toks2[i].end);
            CHECK(toks[i].size == toks2[i].size && toks[i].next == toks2[i].next);
            CHECK(toks[i].type == toks2[i].type && toks[i].escaped == toks2[i].escaped);
        }
        CHECK(json_parse(src, size, toks2, (uint32_t)n - 1, FUZZ_MAX_DEPTH) == -ENOSPC);
        if (depth > 0)
            CHECK(json_parse(src, size, toks2, FUZZ_MAX_TOKS, depth - 1) == -ELOOP);
        check_strict(src, size, toks, n);
        check_accessors(src, toks, n);
        /* Accept direction. */
        if (!has_long_number(toks, n)) {
            if (root == NULL) {
                fprintf(stderr, "json_parse accepted what cJSON refused\n");
                abort();
            }
            CHECK(compare(src, toks, 0, root, 1) == n);
        }
    }

    /* Reject direction: cJSON's canonical print of what it accepted must be valid for us. */
    if (root != NULL) {
        size_t items = 0;
        uint32_t depth = 0;
        int nonfinite = 0;
        measure(root, 0, &items, &depth, &nonfinite);
        if (items <= FUZZ_MAX_TOKS && depth <= FUZZ_MAX_DEPTH) { /* difference 4 */
            char *printed = cJSON_PrintUnformatted(root);
            CHECK(printed != NULL);
            size_t plen = strlen(printed);
            int pn = plen <= FUZZ_MAX_INPUT_BYTES
                         ? json_parse(printed, plen, toks2, FUZZ_MAX_TOKS, FUZZ_MAX_DEPTH)
                         : (int)items;
            if (plen <= FUZZ_MAX_INPUT_BYTES) {
                if (pn != (int)items) {
                    fprintf(stderr, "json_parse gave %d on cJSON's output: %s\n", pn, printed);
                    abort();
                }
                if (!nonfinite) /* difference 3: an infinity comes back as null */
                    CHECK(compare(printed, toks2, 0, root, 0) == pn);
            }
            cJSON_free(printed);
        }
        cJSON_Delete(root);
    }
    free(copy);
    return 0;
}
