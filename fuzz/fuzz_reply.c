/* fuzz_reply.c: libFuzzer driver for the Redis reply decoders (src/cluster/reply.c). The input is
 * RESP bytes, read by hiredis's own reader exactly as replies from Redis are; every reply it
 * yields goes through every decoder, whose results must stay within their contracts. */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/reply.h"

/* Replies decoded per input at most: a reader that kept yielding would be a hang. */
#define FUZZ_MAX_REPLIES 1000

static void require(int cond, const char *what) {
    if (!cond) {
        fprintf(stderr, "fuzz_reply: invariant broken: %s\n", what);
        abort();
    }
}

static void check(const redisReply *r) {
    int result = -1;
    cluster_holder_t old = {0, 0, 0};
    int rc = reply_claim(r, &result, &old);
    require(rc == 0 || rc == -EBADMSG, "reply_claim result");
    if (rc == 0) {
        require(result == CLUSTER_CLAIMED || result == CLUSTER_TAKEN || result == CLUSTER_RECLAIMED,
                "claim outcome");
        if (result == CLUSTER_RECLAIMED)
            require(old.node != 0, "reclaimed from node 0");
    }
    uint64_t ids[8];
    reply_beat_t b;
    rc = reply_heartbeat(r, ids, 8, &b);
    require(rc == 0 || rc == -EBADMSG, "reply_heartbeat result");
    if (rc == 0) {
        require(b.n <= 8, "heartbeat node count");
        for (size_t i = 0; i < b.n; i++)
            require(ids[i] != 0, "node ID 0");
        require(b.connections <= INT64_MAX && b.identified <= INT64_MAX, "totals");
    }
    require(reply_count(r) >= 0, "reply_count sign");
    const uint8_t *p = NULL;
    size_t n = 0;
    int k = reply_push(r, &p, &n);
    require(k >= 0 && k <= 2, "reply_push kind");
    if (k == 1) {
        require(p != NULL || n == 0, "payload");
        volatile uint8_t sink = 0;
        for (size_t i = 0; i < n; i++)
            sink ^= p[i]; /* every byte must be readable */
        (void)sink;
    }
    if (r->type == REDIS_REPLY_ARRAY)
        for (size_t i = 0; i < r->elements; i++)
            check(r->element[i]);
    if (r->type == REDIS_REPLY_STRING)
        require(reply_holder(r->str, r->len, &old) == 0 ? old.node != 0 : 1, "holder node");
}

/* Largest array or string length an input may declare. hiredis allocates what a header declares
 * (a real Redis never lies about it); the decoders are what is under test, not that. */
#define FUZZ_MAX_DECLARED 100000

/* Returns 1 when some '*' or '$' is followed by a number above FUZZ_MAX_DECLARED. */
static int declares_huge(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '*' && p[i] != '$')
            continue;
        uint64_t v = 0;
        for (size_t k = i + 1; k < n && p[k] >= '0' && p[k] <= '9' && v <= FUZZ_MAX_DECLARED; k++)
            v = v * 10 + (uint64_t)(p[k] - '0');
        if (v > FUZZ_MAX_DECLARED)
            return 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (declares_huge(data, size))
        return 0;
    redisReader *rd = redisReaderCreate();
    if (rd == NULL)
        return 0;
    if (redisReaderFeed(rd, (const char *)data, size) == REDIS_OK) {
        for (int i = 0; i < FUZZ_MAX_REPLIES; i++) {
            void *reply = NULL;
            if (redisReaderGetReply(rd, &reply) != REDIS_OK || reply == NULL)
                break;
            check(reply);
            freeReplyObject(reply);
        }
    }
    redisReaderFree(rd);
    return 0;
}
