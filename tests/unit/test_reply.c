/* test_reply.c: unit tests of the Redis reply decoders (src/cluster/reply.c). Replies are built
 * by hiredis's own reader from RESP text, exactly as they arrive from Redis. */
#include "unit.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <string.h>

#include "cluster/reply.h"

/* Parses one complete RESP reply; fails the test when the text is not one. */
static redisReply *parse_n(const char *resp, size_t len) {
    redisReader *rd = redisReaderCreate();
    assert_non_null(rd);
    assert_int_equal(redisReaderFeed(rd, resp, len), REDIS_OK);
    void *reply = NULL;
    assert_int_equal(redisReaderGetReply(rd, &reply), REDIS_OK);
    assert_non_null(reply);
    redisReaderFree(rd);
    return reply;
}

static redisReply *parse(const char *resp) {
    return parse_n(resp, strlen(resp));
}

static void test_claim(void **state) {
    (void)state;
    int result = -1;
    cluster_holder_t old = {0, 0, 0};
    redisReply *r = parse("*1\r\n:0\r\n");
    assert_int_equal(reply_claim(r, &result, &old), 0);
    assert_int_equal(result, CLUSTER_CLAIMED);
    freeReplyObject(r);
    r = parse("*2\r\n:2\r\n$25\r\n00000000000000ff 3 9 abcd\r\n");
    assert_int_equal(reply_claim(r, &result, &old), 0);
    assert_int_equal(result, CLUSTER_TAKEN);
    freeReplyObject(r);
    r = parse("*2\r\n:1\r\n$31\r\n864c1851874523a5 7 4294967295 -\r\n");
    assert_int_equal(reply_claim(r, &result, &old), 0);
    assert_int_equal(result, CLUSTER_RECLAIMED);
    assert_true(old.node == 0x864c1851874523a5ULL);
    assert_int_equal(old.slot, 7);
    assert_true(old.gen == 4294967295u);
    freeReplyObject(r);
    /* Shapes that are not the script's answer. */
    const char *bad[] = {
        "-NOSCRIPT No matching script\r\n",
        ":0\r\n",
        "*0\r\n",
        "*1\r\n$1\r\n0\r\n",
        "*1\r\n:3\r\n",
        "*2\r\n:0\r\n:0\r\n",
        "*1\r\n:1\r\n",                                         /* reclaimed without the holder */
        "*2\r\n:1\r\n$5\r\nnodes\r\n",                          /* a holder that does not parse */
        "*2\r\n:1\r\n$29\r\n864c1851874523a5 7 4294967296\r\n", /* gen over 32 bits */
        "*2\r\n:1\r\n$-1\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r = parse(bad[i]);
        assert_int_equal(reply_claim(r, &result, &old), -EBADMSG);
        freeReplyObject(r);
    }
    assert_int_equal(reply_claim(NULL, &result, &old), -EBADMSG);
}

static void test_holder(void **state) {
    (void)state;
    cluster_holder_t h;
    assert_int_equal(reply_holder("0000000000000001 0 1 -", 22, &h), 0);
    assert_true(h.node == 1 && h.slot == 0 && h.gen == 1);
    assert_int_equal(reply_holder("", 0, &h), -EINVAL);
    assert_int_equal(reply_holder("0000000000000000 1 1 -", 22, &h), -EINVAL); /* node 0 */
    assert_int_equal(reply_holder(" 000000000000001 1 1 -", 22, &h), -EINVAL);
    assert_int_equal(reply_holder("0000000000000001 -1 1 -", 23, &h), -EINVAL);
    assert_int_equal(reply_holder("0000000000000001 1", 18, &h), -EINVAL);
    char longv[200];
    memset(longv, '1', sizeof(longv));
    assert_int_equal(reply_holder(longv, sizeof(longv), &h), -EINVAL);
}

static void test_heartbeat(void **state) {
    (void)state;
    uint64_t ids[4];
    reply_beat_t b;
    redisReply *r = parse("*4\r\n*3\r\n$16\r\n864c1851874523a5\r\n$16\r\nnot-a-hex-id!!!!\r\n"
                          "$16\r\n00000000000000aa\r\n:1200\r\n:1180\r\n:1\r\n");
    assert_int_equal(reply_heartbeat(r, ids, 4, &b), 0);
    assert_int_equal(b.n, 2); /* the malformed ID is skipped */
    assert_true(ids[0] == 0x864c1851874523a5ULL && ids[1] == 0xaa);
    assert_int_equal(b.connections, 1200);
    assert_int_equal(b.identified, 1180);
    assert_int_equal(b.was_missing, 1);
    freeReplyObject(r);
    /* More nodes than room: the rest are ignored. */
    r = parse("*4\r\n*3\r\n$16\r\n0000000000000001\r\n$16\r\n0000000000000002\r\n"
              "$16\r\n0000000000000003\r\n:0\r\n:0\r\n:0\r\n");
    assert_int_equal(reply_heartbeat(r, ids, 2, &b), 0);
    assert_int_equal(b.n, 2);
    assert_int_equal(b.was_missing, 0);
    freeReplyObject(r);
    const char *bad[] = {
        "-ERR boom\r\n",
        "*3\r\n*0\r\n:0\r\n:0\r\n",
        "*4\r\n:1\r\n:0\r\n:0\r\n:0\r\n",
        "*4\r\n*0\r\n$1\r\n1\r\n:0\r\n:0\r\n",
        "*4\r\n*0\r\n:-1\r\n:0\r\n:0\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r = parse(bad[i]);
        assert_int_equal(reply_heartbeat(r, ids, 4, &b), -EBADMSG);
        freeReplyObject(r);
    }
}

static void test_count(void **state) {
    (void)state;
    struct {
        const char *resp;
        int64_t want;
    } cases[] = {
        {"$1\r\n7\r\n", 7},
        {"$19\r\n9223372036854775807\r\n", INT64_MAX},
        {"$19\r\n9999999999999999999\r\n", 0}, /* over INT64_MAX */
        {"$20\r\n10000000000000000000\r\n", 0},
        {"$-1\r\n", 0},
        {"$2\r\n-1\r\n", 0},
        {"$3\r\n1x2\r\n", 0},
        {"$0\r\n\r\n", 0},
        {":5\r\n", 0}, /* an integer reply is not an HMGET field */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        redisReply *r = parse(cases[i].resp);
        assert_true(reply_count(r) == cases[i].want);
        freeReplyObject(r);
    }
    assert_int_equal(reply_count(NULL), 0);
}

static void test_push(void **state) {
    (void)state;
    const uint8_t *p = NULL;
    size_t n = 0;
    static const char msg[] = "*3\r\n$7\r\nmessage\r\n$6\r\nst:all\r\n$3\r\na\0b\r\n";
    redisReply *r = parse_n(msg, sizeof(msg) - 1);
    assert_int_equal(reply_push(r, &p, &n), 1);
    assert_int_equal(n, 3);
    assert_memory_equal(p, "a\0b", 3);
    freeReplyObject(r);
    r = parse("*3\r\n$9\r\nsubscribe\r\n$6\r\nst:all\r\n:1\r\n");
    assert_int_equal(reply_push(r, &p, &n), 2);
    freeReplyObject(r);
    const char *other[] = {"*3\r\n$7\r\nmessage\r\n$6\r\nst:all\r\n:1\r\n",
                           "*2\r\n$7\r\nmessage\r\n$6\r\nst:all\r\n", "+OK\r\n",
                           "*3\r\n$8\r\npmessage\r\n$1\r\nx\r\n$1\r\ny\r\n"};
    for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
        r = parse(other[i]);
        assert_int_equal(reply_push(r, &p, &n), 0);
        freeReplyObject(r);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_claim),     cmocka_unit_test(test_holder),
        cmocka_unit_test(test_heartbeat), cmocka_unit_test(test_count),
        cmocka_unit_test(test_push),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
