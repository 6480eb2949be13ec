/* acl.c: the access list's set and its file parser (see acl.h).
 *
 * The table stores the 20-byte keys inline, in slots probed linearly from the key's hash, so a
 * lookup usually touches one cache line and never follows a pointer. The all-zero key marks an
 * empty slot; the all-zero infohash itself, which a list may legitimately hold, is kept in a flag
 * beside the table. */
#include "tracker/acl.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include "core/alloc.h"

/* Slots of a new list's table. */
#define ACL_INITIAL_SLOTS 64
/* Bytes of a huge page (x86-64's 2 MiB; see advise_huge_pages). */
#define ACL_HUGE_PAGE_BYTES (2u * 1024 * 1024)

typedef struct acl_slot {
    uint8_t key[ACL_KEY_BYTES];
} acl_slot_t;

struct acl {
    int mode;
    hash_key_t key;
    acl_slot_t *slots;
    size_t mask;  /* slots - 1; the slot count is a power of two */
    size_t count; /* keys in slots, plus the zero key when has_zero */
    int has_zero;
};

static const uint8_t zero_key[ACL_KEY_BYTES];

static int is_zero(const uint8_t *k) {
    return memcmp(k, zero_key, ACL_KEY_BYTES) == 0;
}

acl_t *acl_create(int mode, const hash_key_t *key) {
    acl_t *a = xcalloc(1, sizeof(*a));
    a->mode = mode;
    a->key = *key;
    a->slots = xcalloc(ACL_INITIAL_SLOTS, sizeof(*a->slots));
    a->mask = ACL_INITIAL_SLOTS - 1;
    return a;
}

void acl_destroy(acl_t *a) {
    if (a == NULL)
        return;
    xfree(a->slots);
    xfree(a);
}

int acl_mode(const acl_t *a) {
    return a->mode;
}

size_t acl_count(const acl_t *a) {
    return a->count;
}

size_t acl_bytes(const acl_t *a) {
    return (a->mask + 1) * sizeof(*a->slots);
}

/* Puts a key known to be absent into the table (no growth). */
static void place(acl_t *a, const uint8_t *k) {
    size_t i = (size_t)hash_bytes(&a->key, k, ACL_KEY_BYTES) & a->mask;
    while (!is_zero(a->slots[i].key))
        i = (i + 1) & a->mask;
    memcpy(a->slots[i].key, k, ACL_KEY_BYTES);
}

/* Asks the kernel to back the whole 2 MiB pages inside [p, p + n) with huge pages. A lookup in
 * a big list is one random access into tens of megabytes, and with 4 KiB pages most of them miss
 * the TLB as well as the caches: measured (bench/acl_micro.c) a lookup in 4,000,000 entries took
 * 155 ns without this and 120 ns with it, and a million-entry list loaded in 250 ms instead of
 * 290. Only a hint: where transparent huge pages are off, nothing changes. */
static void advise_huge_pages(void *p, size_t n) {
    uintptr_t start =
        ((uintptr_t)p + ACL_HUGE_PAGE_BYTES - 1) & ~(uintptr_t)(ACL_HUGE_PAGE_BYTES - 1);
    uintptr_t end = ((uintptr_t)p + n) & ~(uintptr_t)(ACL_HUGE_PAGE_BYTES - 1);
    if (end > start)
        (void)madvise((void *)start, end - start, MADV_HUGEPAGE);
}

/* Rebuilds the table with `slots` slots (a power of two that holds every key). */
static void rehash(acl_t *a, size_t slots) {
    acl_slot_t *old = a->slots;
    size_t n = a->mask + 1;
    a->slots = xcalloc(slots, sizeof(*a->slots));
    a->mask = slots - 1;
    advise_huge_pages(a->slots, slots * sizeof(*a->slots));
    for (size_t i = 0; i < n; i++)
        if (!is_zero(old[i].key))
            place(a, old[i].key);
    xfree(old);
}

/* Slots needed so that `keys` keys stay within the load limit. */
static size_t slots_for(size_t keys) {
    size_t slots = ACL_INITIAL_SLOTS;
    while (keys * 100 > slots * ACL_MAX_LOAD_PERCENT)
        slots *= 2;
    return slots;
}

void acl_reserve(acl_t *a, size_t n) {
    size_t want = a->count + n;
    if (want > ACL_MAX_ENTRIES)
        want = ACL_MAX_ENTRIES;
    size_t slots = slots_for(want);
    if (slots > a->mask + 1)
        rehash(a, slots);
}

int acl_contains(const acl_t *a, const uint8_t key[ACL_KEY_BYTES]) {
    if (is_zero(key))
        return a->has_zero;
    size_t i = (size_t)hash_bytes(&a->key, key, ACL_KEY_BYTES) & a->mask;
    for (;;) {
        const uint8_t *s = a->slots[i].key;
        if (memcmp(s, key, ACL_KEY_BYTES) == 0)
            return 1;
        if (is_zero(s))
            return 0;
        i = (i + 1) & a->mask;
    }
}

int acl_add(acl_t *a, const uint8_t key[ACL_KEY_BYTES]) {
    if (is_zero(key)) {
        if (a->has_zero)
            return 0;
        if (a->count >= ACL_MAX_ENTRIES)
            return -ENOSPC;
        a->has_zero = 1;
        a->count++;
        return 1;
    }
    /* Grow first (even if the key turns out to be there), so that one probe both finds the key
     * or the empty slot it goes into. */
    size_t slots = slots_for(a->count + 1);
    if (slots > a->mask + 1 && a->count < ACL_MAX_ENTRIES)
        rehash(a, slots);
    size_t i = (size_t)hash_bytes(&a->key, key, ACL_KEY_BYTES) & a->mask;
    for (;;) {
        uint8_t *s = a->slots[i].key;
        if (memcmp(s, key, ACL_KEY_BYTES) == 0)
            return 0;
        if (is_zero(s))
            break;
        i = (i + 1) & a->mask;
    }
    if (a->count >= ACL_MAX_ENTRIES)
        return -ENOSPC;
    memcpy(a->slots[i].key, key, ACL_KEY_BYTES);
    a->count++;
    return 1;
}

int acl_allows(const acl_t *a, const uint8_t key[ACL_KEY_BYTES]) {
    if (a == NULL)
        return 1;
    int listed = acl_contains(a, key);
    return a->mode == ACL_ALLOW ? listed : !listed;
}

/* ---- the file format ------------------------------------------------------------------------ */

/* Hex digit values, and 0xff for every other byte: one load per character instead of three
 * range tests, which matters when a million lines are decoded. */
static const uint8_t hex_value[256] = {
    ['0'] = 0,  ['1'] = 1,  ['2'] = 2,  ['3'] = 3,  ['4'] = 4,  ['5'] = 5,  ['6'] = 6,  ['7'] = 7,
    ['8'] = 8,  ['9'] = 9,  ['a'] = 10, ['b'] = 11, ['c'] = 12, ['d'] = 13, ['e'] = 14, ['f'] = 15,
    ['A'] = 10, ['B'] = 11, ['C'] = 12, ['D'] = 13, ['E'] = 14, ['F'] = 15,
};

/* Decodes 40 hex characters. Returns 0, or -1 when p[0..n) is not exactly that. */
static int decode(const char *p, size_t n, uint8_t out[ACL_KEY_BYTES]) {
    if (n != 2 * ACL_KEY_BYTES)
        return -1;
    unsigned bad = 0;
    for (size_t i = 0; i < ACL_KEY_BYTES; i++) {
        unsigned char c0 = (unsigned char)p[2 * i], c1 = (unsigned char)p[2 * i + 1];
        unsigned hi = hex_value[c0], lo = hex_value[c1];
        /* A zero in the table is '0' or a non-digit: tell them apart by the character. */
        bad |= (hi == 0 && c0 != '0') | (lo == 0 && c1 != '0');
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return bad ? -1 : 0;
}

/* Writes p[0..n) for an error message: at most ACL_QUOTE_BYTES, unprintable bytes as '?'. */
static void quote(const char *p, size_t n, char out[ACL_QUOTE_BYTES + 4]) {
    size_t k = 0;
    for (; k < n && k < ACL_QUOTE_BYTES; k++) {
        unsigned char ch = (unsigned char)p[k];
        out[k] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    if (n > ACL_QUOTE_BYTES) {
        memcpy(out + k, "...", 3);
        k += 3;
    }
    out[k] = '\0';
}

int acl_parse(acl_t *a, const char *name, const char *data, size_t len, char *err, size_t errlen) {
    /* Count the lines first so that the table is sized once, not doubled step by step: a
     * million-entry list then costs one pass of hashing, not two. An entry takes at least 40
     * bytes, which bounds the guess for a file of mostly blank lines. */
    size_t lines = 0;
    for (const char *q = data; q < data + len; q++) {
        q = memchr(q, '\n', (size_t)(data + len - q));
        if (q == NULL)
            break;
        lines++;
    }
    acl_reserve(a, lines + 1 < len / 40 + 1 ? lines + 1 : len / 40 + 1);
    unsigned line = 0;
    size_t pos = 0;
    while (pos < len) {
        line++;
        const char *p = data + pos;
        const char *eol = memchr(p, '\n', len - pos);
        size_t n = eol ? (size_t)(eol - p) : len - pos;
        pos += n + (eol ? 1 : 0);
        const char *hash = memchr(p, '#', n);
        if (hash != NULL)
            n = (size_t)(hash - p);
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r'))
            n--;
        while (n > 0 && (*p == ' ' || *p == '\t')) {
            p++;
            n--;
        }
        if (n == 0)
            continue;
        uint8_t key[ACL_KEY_BYTES];
        if (decode(p, n, key) != 0) {
            char q[ACL_QUOTE_BYTES + 4];
            quote(p, n, q);
            snprintf(err, errlen, "%s:%u: expected an infohash (40 hex characters), found \"%s\"",
                     name, line, q);
            return -EINVAL;
        }
        if (acl_add(a, key) < 0) {
            snprintf(err, errlen, "%s:%u: more than %u infohashes (ACL_MAX_ENTRIES)", name, line,
                     ACL_MAX_ENTRIES);
            return -ENOSPC;
        }
    }
    return 0;
}

int acl_load_file(acl_t *a, const char *path, char *err, size_t errlen) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        int e = errno;
        snprintf(err, errlen, "cannot read the access list %s: %s", path, strerror(e));
        if (fd >= 0)
            close(fd);
        return -e;
    }
    if (st.st_size > (off_t)ACL_MAX_FILE_BYTES) {
        snprintf(err, errlen, "%s: larger than %u bytes (ACL_MAX_FILE_BYTES)", path,
                 ACL_MAX_FILE_BYTES);
        close(fd);
        return -EFBIG;
    }
    /* Read to the end rather than trusting st_size, which is 0 for a pipe or /proc file. */
    size_t cap = st.st_size > 0 ? (size_t)st.st_size + 1 : 65536, len = 0;
    char *data = xmalloc(cap);
    for (;;) {
        if (len == cap) {
            if (cap > ACL_MAX_FILE_BYTES) {
                snprintf(err, errlen, "%s: larger than %u bytes (ACL_MAX_FILE_BYTES)", path,
                         ACL_MAX_FILE_BYTES);
                xfree(data);
                close(fd);
                return -EFBIG;
            }
            cap *= 2;
            data = xrealloc(data, cap);
        }
        ssize_t r = read(fd, data + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            snprintf(err, errlen, "cannot read the access list %s: %s", path, strerror(e));
            xfree(data);
            close(fd);
            return -e;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    int rc = acl_parse(a, path, data, len, err, errlen);
    xfree(data);
    return rc;
}
