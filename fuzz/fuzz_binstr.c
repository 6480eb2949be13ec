/* fuzz_binstr.c: libFuzzer driver for the WebTorrent binary-string codec (src/proto/binstr.c).
 *
 * The input is tokenized twice: as a JSON document, and wrapped in quotes as one JSON string (so
 * that most inputs reach the decoder). Every string token is then decoded and checked against a
 * reference built from other code: json_str_unescape followed by a strict UTF-8 decode. When the
 * reference finds n code points all <= U+00FF, binstr_decode must succeed for exactly n and give
 * the same bytes; otherwise it must fail for every n. After a successful decode, the encoding
 * must be 7-bit printable ASCII in the exact form binstr.h describes, tokenize as one string,
 * and decode back to the same bytes. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json/json.h"
#include "proto/binstr.h"
#include "fuzz_check.h"

/* The largest input the driver looks at, in bytes; also bounds every buffer below. */
#define FUZZ_MAX_INPUT_BYTES 65536
/* Token capacity: a token takes at least one input byte. */
#define FUZZ_MAX_TOKS (FUZZ_MAX_INPUT_BYTES + 2)

static json_tok_t toks[FUZZ_MAX_TOKS];
static char unesc[FUZZ_MAX_INPUT_BYTES + 2];
static uint8_t ref[FUZZ_MAX_INPUT_BYTES + 2];
static uint8_t out[FUZZ_MAX_INPUT_BYTES + 3];
static uint8_t back[FUZZ_MAX_INPUT_BYTES + 2];
static char enc[BINSTR_ENCODED_MAX(FUZZ_MAX_INPUT_BYTES + 2)];

/* The reference decoder: strict UTF-8 (RFC 3629) over the unescaped bytes, keeping only code
 * points <= U+00FF. Returns the number of code points, or -1 when the bytes are not UTF-8 or
 * hold a code point above U+00FF. */
static long reference_decode(const uint8_t *s, size_t len, uint8_t *dst) {
    long n = 0;
    for (size_t i = 0; i < len;) {
        uint8_t c = s[i];
        if (c < 0x80) {
            dst[n++] = c;
            i++;
            continue;
        }
        size_t need;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
            cp = c & 0x1Fu;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            cp = c & 0x0Fu;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            cp = c & 0x07u;
        } else {
            return -1;
        }
        if (len - i <= need)
            return -1;
        for (size_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return -1;
            cp = cp << 6 | (s[i + k] & 0x3Fu);
        }
        static const uint32_t min_cp[4] = {0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[need] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return -1;
        if (cp > 0xFF)
            return -1;
        dst[n++] = (uint8_t)cp;
        i += need + 1;
    }
    return n;
}

/* Checks the exact form binstr.h promises for the encoding of in[0..n). */
static void check_encoding(const uint8_t *in, size_t n, const char *e, size_t elen) {
    static const char hex[] = "0123456789abcdef";
    CHECK(elen >= 2 && elen <= BINSTR_ENCODED_MAX(n));
    CHECK(e[0] == '"' && e[elen - 1] == '"');
    size_t j = 1;
    for (size_t k = 0; k < n; k++) {
        uint8_t b = in[k];
        if (b == '"' || b == '\\') {
            CHECK(e[j] == '\\' && (uint8_t)e[j + 1] == b);
            j += 2;
        } else if (b >= 0x20 && b < 0x7F) {
            CHECK((uint8_t)e[j] == b);
            j++;
        } else {
            CHECK(memcmp(e + j, "\\u00", 4) == 0 && e[j + 4] == hex[b >> 4] &&
                  e[j + 5] == hex[b & 15]);
            j += 6;
        }
    }
    CHECK(j == elen - 1);
    for (size_t k = 0; k < elen; k++)
        CHECK((uint8_t)e[k] >= 0x20 && (uint8_t)e[k] < 0x7F);
}

static void check_token(const char *src, const json_tok_t *t) {
    size_t raw = t->end - t->start;
    int m = json_str_unescape(src, t, unesc, sizeof unesc);
    CHECK(m >= 0);
    long n = reference_decode((const uint8_t *)unesc, (size_t)m, ref);
    if (n < 0) {
        /* No length works: try the lengths the string could have, and the usual ID size. */
        const size_t tries[] = {0, BINSTR_ID_BYTES, (size_t)m, raw, raw / 2};
        for (size_t k = 0; k < sizeof tries / sizeof tries[0]; k++)
            CHECK(binstr_decode(src, t, out, tries[k]) == -EINVAL);
        return;
    }
    /* Guard bytes after n catch a decoder that writes past its length. */
    memset(out, 0xA5, (size_t)n + 1);
    CHECK(binstr_decode(src, t, out, (size_t)n) == 0);
    CHECK(memcmp(out, ref, (size_t)n) == 0);
    CHECK(out[n] == 0xA5);
    CHECK(binstr_decode(src, t, back, (size_t)n + 1) == -EINVAL);
    if (n > 0) {
        memset(back, 0xA5, (size_t)n);
        CHECK(binstr_decode(src, t, back, (size_t)n - 1) == -EINVAL);
        CHECK(back[n - 1] == 0xA5);
    }

    size_t elen = binstr_encode(out, (size_t)n, enc);
    check_encoding(out, (size_t)n, enc, elen);
    json_tok_t et[2];
    CHECK(json_parse(enc, elen, et, 2, 1) == 1);
    CHECK(et[0].type == JSON_STRING && et[0].start == 1 && et[0].end == elen - 1);
    CHECK(binstr_decode(enc, &et[0], back, (size_t)n) == 0);
    CHECK(memcmp(back, out, (size_t)n) == 0);
}

static void check_document(const char *src, size_t len) {
    int n = json_parse(src, len, toks, FUZZ_MAX_TOKS, JSON_DEFAULT_MAX_DEPTH);
    for (int i = 0; i < n; i++) {
        if (toks[i].type == JSON_STRING) {
            check_token(src, &toks[i]);
        } else {
            CHECK(binstr_decode(src, &toks[i], out, BINSTR_ID_BYTES) == -EINVAL);
            CHECK(binstr_decode(src, &toks[i], out, 0) == -EINVAL);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > FUZZ_MAX_INPUT_BYTES)
        return 0;
    check_document((const char *)data, size);
    /* An exact-size heap copy, so that ASan still sees any read past the closing quote. */
    char *wrapped = malloc(size + 2);
    CHECK(wrapped != NULL);
    wrapped[0] = '"';
    memcpy(wrapped + 1, data, size);
    wrapped[size + 1] = '"';
    check_document(wrapped, size + 2);
    free(wrapped);
    return 0;
}
