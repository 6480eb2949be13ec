/* refusal.h: the reasons a message is refused, one fixed set for both dialects. They are the
 * ST dialect's error codes (docs/protocol.md); a WebTorrent failure is counted under the code
 * the ST dialect would send for the same fault. /stats.json counts refused messages by reason
 * ("refused_messages"), and the debug log names the reason. */
#ifndef SIG_HUB_REFUSAL_H
#define SIG_HUB_REFUSAL_H

enum refusal {
    REFUSAL_BAD_JSON = 0,
    REFUSAL_BAD_MESSAGE,
    REFUSAL_UNKNOWN_TYPE,
    REFUSAL_WRONG_DIALECT,
    REFUSAL_INVALID_FIELD,
    REFUSAL_INVALID_PEER_ID,
    REFUSAL_INVALID_INFO_HASH,
    REFUSAL_NOT_IDENTIFIED,
    REFUSAL_ALREADY_IDENTIFIED,
    REFUSAL_PEER_ID_TAKEN,
    REFUSAL_PEER_NOT_FOUND,
    REFUSAL_UNKNOWN_OFFER,
    REFUSAL_RATE_LIMITED,
    REFUSAL_TOO_MANY_SWARMS,
    REFUSAL_TORRENT_NOT_ALLOWED,
    REFUSAL_UNAVAILABLE,
    REFUSAL_INTERNAL_ERROR,
    REFUSAL_COUNT
};

/* Returns the code's name ("bad_json", ...), or "?" when out of range. Pure. */
const char *refusal_name(int code);

/* Returns the code named name, or -1. Pure. */
int refusal_parse(const char *name);

#endif
