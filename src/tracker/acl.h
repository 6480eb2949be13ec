/* acl.h: the access list (--allowlist or --denylist): a set of infohashes read from a file of one
 * 40-hex-character infohash a line. The parser is pure (bytes in, entries into the set, errors
 * naming the line) and fuzzed (fuzz/fuzz_acl.c). The set is an open-addressing hash table of
 * 20-byte keys hashed with the server's SipHash key, so a lookup costs the same for ten entries
 * or ten million, and nobody can craft a list, or infohashes to announce, that collide.
 * Not thread-safe: the owner (the event loop, or whoever is building a list) uses it alone. */
#ifndef SIG_TRACKER_ACL_H
#define SIG_TRACKER_ACL_H

#include <stddef.h>
#include <stdint.h>

#include "core/hash.h"

/* Bytes of one key (an infohash). */
#define ACL_KEY_BYTES 20
/* Most infohashes one list may hold: 8,388,608, whose table takes 320 MiB at most. */
#define ACL_MAX_ENTRIES (8u * 1024 * 1024)
/* Largest list file read, in bytes (a line with a comment can be long; 8 Mi bare lines are
 * 344 MB). */
#define ACL_MAX_FILE_BYTES (1024u * 1024 * 1024)
/* The table doubles when more than this percentage of its slots is used; at 50% a lookup of an
 * absent key probes 2.5 slots on average, most of them in the same cache line. */
#define ACL_MAX_LOAD_PERCENT 50
/* Characters of a malformed line quoted in the error message. */
#define ACL_QUOTE_BYTES 48

enum acl_mode {
    ACL_ALLOW = 1, /* an allowlist: only the listed infohashes are tracked */
    ACL_DENY = 2,  /* a denylist: every infohash but the listed ones is tracked */
};

typedef struct acl acl_t;

/* Creates an empty list of the given mode (enum acl_mode) whose table is keyed with key. Never
 * returns NULL (allocation aborts on exhaustion). */
acl_t *acl_create(int mode, const hash_key_t *key);

/* Frees the list (NULL is ignored). */
void acl_destroy(acl_t *a);

/* The list's mode (enum acl_mode). */
int acl_mode(const acl_t *a);

/* Distinct infohashes in the list. */
size_t acl_count(const acl_t *a);

/* Bytes the list's table takes. */
size_t acl_bytes(const acl_t *a);

/* Makes room for n more entries without growing during the next n adds. */
void acl_reserve(acl_t *a, size_t n);

/* Adds an infohash. Returns 1 when added, 0 when it was there already, -ENOSPC when the list
 * holds ACL_MAX_ENTRIES. */
int acl_add(acl_t *a, const uint8_t key[ACL_KEY_BYTES]);

/* Returns 1 when the infohash is in the list. Pure; O(1) whatever the list's size. */
int acl_contains(const acl_t *a, const uint8_t key[ACL_KEY_BYTES]);

/* Returns 1 when the list lets the infohash be tracked: no list (a == NULL), listed in an
 * allowlist, or absent from a denylist. */
int acl_allows(const acl_t *a, const uint8_t key[ACL_KEY_BYTES]);

/* Parses a list file's bytes data[0..len) into a: one infohash a line, 40 hex characters in
 * either case; blank lines and '#' comments (whole-line or trailing) are ignored, and so are
 * blanks around an entry and a CR before the LF. name is the file's name in messages. Returns 0,
 * or -EINVAL (a malformed line) or -ENOSPC (too many entries) with "name:LINE: reason" in err.
 * Entries before the error stay in a. Pure: no I/O. */
int acl_parse(acl_t *a, const char *name, const char *data, size_t len, char *err, size_t errlen);

/* Reads the list file at path into a (as acl_parse). Returns 0, or a negative errno with a
 * reason naming the file (and the line) in err. */
int acl_load_file(acl_t *a, const char *path, char *err, size_t errlen);

#endif
