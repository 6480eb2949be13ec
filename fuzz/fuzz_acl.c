/* fuzz_acl.c: libFuzzer driver for the access list (tracker/acl.c): the file parser and the hash
 * set behind it, against a reference written here the plain way (a line at a time, the keys in an
 * array searched linearly).
 *
 * Byte 0 of the input picks the mode (bit 0: allowlist or denylist), whether keys are also added
 * directly (bit 1: the slow part, so only half the inputs do it), and the hash key (all of it,
 * so probe sequences vary); the rest is a list file. Checked:
 *   - acl_parse accepts the file exactly when the reference does; when not, its message names
 *     the file and the first bad line;
 *   - after a parse, the set holds exactly the reference's keys (count, and every key found);
 *   - 20-byte windows of the input (the first FUZZ_WINDOWS) and the reference's own keys are
 *     found in the set exactly when the reference has them, and acl_allows follows the mode;
 *   - with bit 1, keys derived from the input and added one by one (growing the table several
 *     times) are all found afterwards, with the count right and duplicates refused. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tracker/acl.h"
#include "fuzz_check.h"

/* Keys the reference holds at most (a list of 40-byte lines; libFuzzer's inputs are small). */
#define FUZZ_MAX_KEYS 65536
/* Keys added directly per input, on top of the file's: enough for several doublings of the
 * table, few enough to keep thousands of inputs a second. */
#define FUZZ_EXTRA_KEYS 600
/* 20-byte windows of the input looked up per input. */
#define FUZZ_WINDOWS 256

static uint8_t ref[FUZZ_MAX_KEYS][ACL_KEY_BYTES];
static size_t nref;

static int ref_has(const uint8_t *k) {
    for (size_t i = 0; i < nref; i++)
        if (memcmp(ref[i], k, ACL_KEY_BYTES) == 0)
            return 1;
    return 0;
}

static int hex(char ch) {
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* The reference parser. Returns 0, or the number of the first bad line. */
static unsigned ref_parse(const char *p, size_t len) {
    nref = 0;
    unsigned line = 0;
    size_t pos = 0;
    while (pos < len) {
        line++;
        size_t end = pos;
        while (end < len && p[end] != '\n')
            end++;
        /* The text before any '#', without blanks or CR at either end. */
        size_t a = pos, b = end;
        for (size_t i = pos; i < end; i++) {
            if (p[i] == '#') {
                b = i;
                break;
            }
        }
        while (a < b && (p[a] == ' ' || p[a] == '\t'))
            a++;
        while (b > a && (p[b - 1] == ' ' || p[b - 1] == '\t' || p[b - 1] == '\r'))
            b--;
        pos = end + 1;
        if (a == b)
            continue;
        if (b - a != 2 * ACL_KEY_BYTES)
            return line;
        uint8_t k[ACL_KEY_BYTES];
        for (size_t i = 0; i < ACL_KEY_BYTES; i++) {
            int hi = hex(p[a + 2 * i]), lo = hex(p[a + 2 * i + 1]);
            if (hi < 0 || lo < 0)
                return line;
            k[i] = (uint8_t)(hi << 4 | lo);
        }
        if (!ref_has(k) && nref < FUZZ_MAX_KEYS)
            memcpy(ref[nref++], k, ACL_KEY_BYTES);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0)
        return 0;
    int mode = (data[0] & 1) ? ACL_DENY : ACL_ALLOW;
    hash_key_t key = {0x9e3779b97f4a7c15ull * (uint64_t)(data[0] | 1), data[0]};
    const char *text = (const char *)data + 1;
    size_t len = size - 1;

    unsigned bad = ref_parse(text, len);
    acl_t *a = acl_create(mode, &key);
    char err[256] = "";
    int rc = acl_parse(a, "fuzz.txt", text, len, err, sizeof(err));
    if (bad != 0) {
        CHECK(rc == -EINVAL);
        char where[32];
        snprintf(where, sizeof(where), "fuzz.txt:%u:", bad);
        CHECK(strncmp(err, where, strlen(where)) == 0);
    } else {
        CHECK(rc == 0);
        CHECK(acl_count(a) == nref);
        for (size_t i = 0; i < nref; i++)
            CHECK(acl_contains(a, ref[i]));
    }
    if (rc == 0) {
        for (size_t off = 0; off + ACL_KEY_BYTES <= size && off < FUZZ_WINDOWS; off++) {
            int in = acl_contains(a, data + off);
            CHECK(in == ref_has(data + off));
            CHECK(acl_allows(a, data + off) == (mode == ACL_ALLOW ? in : !in));
        }
    }
    acl_destroy(a);

    if (!(data[0] & 2))
        return 0;
    /* The set alone: keys derived from the input, many more than a file of this size holds. */
    a = acl_create(mode, &key);
    size_t extra = size * 4 < FUZZ_EXTRA_KEYS ? size * 4 : FUZZ_EXTRA_KEYS;
    for (size_t i = 0; i < extra; i++) {
        uint8_t k[ACL_KEY_BYTES] = {0};
        k[i % ACL_KEY_BYTES] = data[i % size];
        k[(i * 7 + 3) % ACL_KEY_BYTES] ^= (uint8_t)(i >> 3);
        int was = acl_contains(a, k);
        int r = acl_add(a, k);
        CHECK(r == (was ? 0 : 1));
        CHECK(acl_contains(a, k));
    }
    size_t count = acl_count(a);
    for (size_t i = 0; i < extra; i++) {
        uint8_t k[ACL_KEY_BYTES] = {0};
        k[i % ACL_KEY_BYTES] = data[i % size];
        k[(i * 7 + 3) % ACL_KEY_BYTES] ^= (uint8_t)(i >> 3);
        CHECK(acl_contains(a, k));
        CHECK(acl_add(a, k) == 0);
    }
    CHECK(acl_count(a) == count);
    acl_destroy(a);
    return 0;
}
