/* json_micro.c: nanoseconds per message for our tokenizer, then the tokenizer plus the field reads
 * an announce handler does (lookups, integers, the three 20-byte IDs decoded to bytes), next to
 * cJSON parsing the same bytes and doing the same reads, in one run.
 *
 * Build and run (from the repository root):
 *   cc -std=c11 -O2 -D_GNU_SOURCE -Isrc bench/json_micro.c src/json/json.c src/proto/binstr.c \
 *      -lcjson -o /tmp/jm
 *   /tmp/jm
 * The messages are the byte-exact ones of protocols.md section 1.8. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "json/json.h"
#include "proto/binstr.h"

/* Messages parsed per timed round, and rounds per measurement; the best round is reported so that
 * a preempted round does not skew the figure. */
#define BENCH_ITERS 200000
#define BENCH_ROUNDS 7

/* Section 1.8, message 1: the first announce, in the 7-bit form. */
static const char ANNOUNCE[] =
    "{\"numwant\":5,\"uploaded\":0,\"downloaded\":0,\"left\":129241752,\"event\":\"started\","
    "\"action\":\"announce\",\"info_hash\":\"\\b\\u00ad\\u00a5\\u00a7\\u00a6\\u0018:\\u00ae"
    "\\u001e\\t\\u00d81\\u00dfgH\\u00d5f\\tZ\\u0010\",\"peer_id\":\"-WW0208-k3J9xQ2mVbLp\","
    "\"offers\":[{\"offer\":{\"type\":\"offer\",\"sdp\":\"v=0\\r\\no=- 4611731400430051336 2 IN "
    "IP4 127.0.0.1\\r\\ns=-\\r\\nt=0 0\\r\\na=group:BUNDLE 0\\r\\nm=application 9 "
    "UDP/DTLS/SCTP webrtc-datachannel\\r\\n...\"},\"offer_id\":\"\\u009f\\u001c.z\\u0000\\u00ff"
    "\\u0010\\u0080[\\\\\\\"1\\u007f\\r\\n\\u001b,=N_\"}]}";
/* Section 1.8, message 8: a stopped announce, without offers. */
static const char STOPPED[] =
    "{\"numwant\":50,\"uploaded\":1024,\"downloaded\":129241752,\"left\":0,\"event\":\"stopped\","
    "\"action\":\"announce\",\"info_hash\":\"\\b\\u00ad\\u00a5\\u00a7\\u00a6\\u0018:\\u00ae"
    "\\u001e\\t\\u00d81\\u00dfgH\\u00d5f\\tZ\\u0010\",\"peer_id\":\"-WW0208-k3J9xQ2mVbLp\"}";

static volatile uint64_t sink;

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Tokenizes and reads the fields the announce handler reads. */
static uint64_t ours_tokenize(const char *s, size_t len) {
    json_tok_t t[JSON_DEFAULT_MAX_TOKENS];
    return (uint64_t)json_parse(s, len, t, JSON_DEFAULT_MAX_TOKENS, JSON_DEFAULT_MAX_DEPTH);
}

static uint64_t ours_lookup(const char *s, size_t len) {
    json_tok_t t[JSON_DEFAULT_MAX_TOKENS];
    int n = json_parse(s, len, t, JSON_DEFAULT_MAX_TOKENS, JSON_DEFAULT_MAX_DEPTH);
    if (n < 1)
        abort();
    uint64_t acc = (uint64_t)n;
    int64_t v = 0;
    uint8_t id[BINSTR_ID_BYTES];
    acc += (uint64_t)json_str_eq(s, &t[json_obj_get(s, t, 0, "action")], "announce");
    acc += (uint64_t)binstr_decode(s, &t[json_obj_get(s, t, 0, "info_hash")], id, sizeof id);
    acc += id[0];
    acc += (uint64_t)binstr_decode(s, &t[json_obj_get(s, t, 0, "peer_id")], id, sizeof id);
    acc += id[0];
    int e = json_obj_get(s, t, 0, "event");
    acc += e > 0 ? (uint64_t)json_str_eq(s, &t[e], "started") : 0;
    json_get_i64(s, &t[json_obj_get(s, t, 0, "numwant")], &v);
    acc += (uint64_t)v;
    json_get_i64(s, &t[json_obj_get(s, t, 0, "left")], &v);
    acc += (uint64_t)v;
    acc += (uint64_t)json_obj_get(s, t, 0, "answer");
    int offers = json_obj_get(s, t, 0, "offers");
    if (offers > 0) {
        for (int o = offers + 1; o < (int)t[offers].next; o = (int)t[o].next) {
            int offer = json_obj_get(s, t, o, "offer");
            acc += (uint64_t)json_obj_get(s, t, offer, "sdp");
            acc += (uint64_t)binstr_decode(s, &t[json_obj_get(s, t, o, "offer_id")], id, sizeof id);
            acc += id[0];
        }
    }
    return acc;
}

/* The cJSON side of binstr_decode: its valuestring is UTF-8, so two-byte sequences become one
 * byte. No validation beyond that; this only has to cost about what the real thing costs. */
static uint64_t latin1(const char *p, uint8_t *out) {
    size_t k = 0;
    for (const unsigned char *u = (const unsigned char *)p; *u && k < BINSTR_ID_BYTES; k++) {
        if (*u < 0x80) {
            out[k] = *u++;
        } else {
            out[k] = (uint8_t)((u[0] & 0x1F) << 6 | (u[1] & 0x3F));
            u += 2;
        }
    }
    return k;
}

static uint64_t cjson_parse(const char *s, size_t len) {
    cJSON *root = cJSON_ParseWithLength(s, len);
    if (root == NULL)
        abort();
    cJSON_Delete(root);
    return 1;
}

static uint64_t cjson_lookup(const char *s, size_t len) {
    cJSON *root = cJSON_ParseWithLength(s, len);
    if (root == NULL)
        abort();
    uint64_t acc = 0;
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, "action");
    acc += cJSON_IsString(a) && strcmp(a->valuestring, "announce") == 0;
    uint8_t id[BINSTR_ID_BYTES];
    acc += latin1(cJSON_GetObjectItemCaseSensitive(root, "info_hash")->valuestring, id);
    acc += latin1(cJSON_GetObjectItemCaseSensitive(root, "peer_id")->valuestring, id);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "event");
    acc += e && strcmp(e->valuestring, "started") == 0;
    acc += (uint64_t)cJSON_GetObjectItemCaseSensitive(root, "numwant")->valuedouble;
    acc += (uint64_t)cJSON_GetObjectItemCaseSensitive(root, "left")->valuedouble;
    acc += cJSON_GetObjectItemCaseSensitive(root, "answer") != NULL;
    const cJSON *offers = cJSON_GetObjectItemCaseSensitive(root, "offers");
    const cJSON *o;
    cJSON_ArrayForEach(o, offers) {
        const cJSON *offer = cJSON_GetObjectItemCaseSensitive(o, "offer");
        acc += cJSON_GetObjectItemCaseSensitive(offer, "sdp") != NULL;
        acc += latin1(cJSON_GetObjectItemCaseSensitive(o, "offer_id")->valuestring, id);
    }
    cJSON_Delete(root);
    return acc;
}

/* Returns the best nanoseconds per call of fn over BENCH_ROUNDS rounds. */
static double measure(uint64_t (*fn)(const char *, size_t), const char *s, size_t len) {
    double best = 1e300;
    for (int r = 0; r < BENCH_ROUNDS; r++) {
        uint64_t acc = 0;
        double t0 = now_ns();
        for (int i = 0; i < BENCH_ITERS; i++)
            acc += fn(s, len);
        double per = (now_ns() - t0) / BENCH_ITERS;
        sink += acc;
        if (per < best)
            best = per;
    }
    return best;
}

int main(void) {
    static const struct {
        const char *name;
        const char *s;
        size_t len;
    } msgs[] = {
        {"announce (1 offer)", ANNOUNCE, sizeof ANNOUNCE - 1},
        {"stopped", STOPPED, sizeof STOPPED - 1},
    };
    printf("%-20s %6s %12s %12s %12s %12s\n", "message", "bytes", "json_parse", "+fields",
           "cJSON_Parse", "+fields");
    for (size_t k = 0; k < sizeof msgs / sizeof msgs[0]; k++) {
        double a = measure(ours_tokenize, msgs[k].s, msgs[k].len);
        double b = measure(ours_lookup, msgs[k].s, msgs[k].len);
        double c = measure(cjson_parse, msgs[k].s, msgs[k].len);
        double d = measure(cjson_lookup, msgs[k].s, msgs[k].len);
        printf("%-20s %6zu %9.1f ns %9.1f ns %9.1f ns %9.1f ns\n", msgs[k].name, msgs[k].len, a, b,
               c, d);
    }
    return 0;
}
