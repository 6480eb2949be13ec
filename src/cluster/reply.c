/* reply.c: decoders for Redis replies (see reply.h). */
#include "cluster/reply.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int is_str(const redisReply *e) {
    return e != NULL && (e->type == REDIS_REPLY_STRING || e->type == REDIS_REPLY_STATUS) &&
           e->str != NULL;
}

int reply_holder(const char *v, size_t len, cluster_holder_t *h) {
    char tmp[128];
    if (v == NULL || len == 0 || len >= sizeof(tmp))
        return -EINVAL;
    memcpy(tmp, v, len);
    tmp[len] = '\0';
    unsigned long long node;
    unsigned long slot, gen;
    int used = 0;
    if (sscanf(tmp, "%16llx %10lu %10lu %n", &node, &slot, &gen, &used) != 3 || used == 0 ||
        node == 0 || slot > UINT32_MAX || gen > UINT32_MAX || tmp[0] == ' ' || tmp[0] == '-')
        return -EINVAL;
    h->node = node;
    h->slot = (uint32_t)slot;
    h->gen = (uint32_t)gen;
    return 0;
}

int reply_claim(const redisReply *r, int *result, cluster_holder_t *old) {
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
        r->element[0]->type != REDIS_REPLY_INTEGER)
        return -EBADMSG;
    long long code = r->element[0]->integer;
    if (code == 0 && r->elements == 1) {
        *result = CLUSTER_CLAIMED;
        return 0;
    }
    if (code == 2 && r->elements == 2) {
        *result = CLUSTER_TAKEN;
        return 0;
    }
    if (code == 1 && r->elements == 2 && is_str(r->element[1]) &&
        reply_holder(r->element[1]->str, r->element[1]->len, old) == 0) {
        *result = CLUSTER_RECLAIMED;
        return 0;
    }
    return -EBADMSG;
}

int reply_heartbeat(const redisReply *r, uint64_t *ids, size_t max, reply_beat_t *out) {
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 4 ||
        r->element[0]->type != REDIS_REPLY_ARRAY || r->element[1]->type != REDIS_REPLY_INTEGER ||
        r->element[2]->type != REDIS_REPLY_INTEGER || r->element[3]->type != REDIS_REPLY_INTEGER ||
        r->element[1]->integer < 0 || r->element[2]->integer < 0)
        return -EBADMSG;
    const redisReply *live = r->element[0];
    out->n = 0;
    for (size_t i = 0; i < live->elements && out->n < max; i++) {
        const redisReply *e = live->element[i];
        if (!is_str(e) || e->len != 16)
            continue;
        uint64_t id = 0;
        int ok = 1;
        for (size_t k = 0; k < 16 && ok; k++) {
            char ch = e->str[k];
            int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
            if (d < 0)
                ok = 0;
            else
                id = id << 4 | (uint64_t)d;
        }
        if (ok && id != 0)
            ids[out->n++] = id;
    }
    out->connections = (uint64_t)r->element[1]->integer;
    out->identified = (uint64_t)r->element[2]->integer;
    out->was_missing = r->element[3]->integer != 0;
    return 0;
}

int64_t reply_count(const redisReply *e) {
    if (!is_str(e) || e->len == 0 || e->len > 19)
        return 0;
    uint64_t v = 0; /* 19 digits fit in 64 bits unsigned, not always signed */
    for (size_t i = 0; i < e->len; i++) {
        char ch = e->str[i];
        if (ch < '0' || ch > '9')
            return 0;
        v = v * 10 + (uint64_t)(ch - '0');
    }
    return v > (uint64_t)INT64_MAX ? 0 : (int64_t)v;
}

int reply_push(const redisReply *r, const uint8_t **payload, size_t *len) {
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 3 || !is_str(r->element[0]))
        return 0;
    const redisReply *kind = r->element[0];
    if (kind->len == 9 && memcmp(kind->str, "subscribe", 9) == 0)
        return 2;
    if (kind->len == 7 && memcmp(kind->str, "message", 7) == 0 && is_str(r->element[2])) {
        *payload = (const uint8_t *)r->element[2]->str;
        *len = r->element[2]->len;
        return 1;
    }
    return 0;
}
