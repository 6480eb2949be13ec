/* fuzz_check.h: CHECK, the invariant assertion every fuzz target uses. */
#ifndef SIG_FUZZ_CHECK_H
#define SIG_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

/* Aborts with the failed condition when an invariant does not hold, so libFuzzer records the
 * input. */
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
