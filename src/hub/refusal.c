/* refusal.c: the names of the refusal codes, in the order of enum refusal. */
#include "hub/refusal.h"

#include <string.h>

static const char *const names[REFUSAL_COUNT] = {
    "bad_json",           "bad_message",     "unknown_type",        "wrong_dialect",
    "invalid_field",      "invalid_peer_id", "invalid_info_hash",   "not_identified",
    "already_identified", "peer_id_taken",   "peer_not_found",      "unknown_offer",
    "rate_limited",       "too_many_swarms", "torrent_not_allowed", "unavailable",
    "internal_error",
};

const char *refusal_name(int code) {
    return code >= 0 && code < REFUSAL_COUNT ? names[code] : "?";
}

int refusal_parse(const char *name) {
    for (int i = 0; i < REFUSAL_COUNT; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return -1;
}
