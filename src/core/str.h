/* str.h: a borrowed byte slice, used by every parser so that parsing never copies. */
#ifndef SIG_CORE_STR_H
#define SIG_CORE_STR_H

#include <stddef.h>
#include <string.h>

/* A slice of bytes owned by someone else (usually the connection's input buffer). It is not
 * NUL-terminated. A slice with p == NULL means "absent". */
typedef struct str {
    const char *p;
    size_t len;
} str_t;

/* Returns 1 when the slice holds exactly the NUL-terminated literal lit, else 0. */
static inline int str_eq(str_t s, const char *lit) {
    size_t n = strlen(lit);
    return s.p != NULL && s.len == n && memcmp(s.p, lit, n) == 0;
}

#endif
