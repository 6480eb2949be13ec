/* test_notify.c: unit tests of the sd_notify client (src/server/notify.c): each test binds its
 * own datagram socket (a path in a temporary directory, or an abstract name), points
 * $NOTIFY_SOCKET at it, and reads what the server would have told systemd. */
#include "unit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "server/notify.h"

/* Bytes of one received notification, with room for a NUL. */
#define RECV_BYTES (NOTIFY_MAX_BYTES + 64)

typedef struct listener {
    int fd;
    char dir[64];   /* the temporary directory of a path socket ("" for abstract) */
    char name[108]; /* what $NOTIFY_SOCKET says */
} listener_t;

/* Binds a datagram socket: a path one when abstract is 0, else an abstract name. */
static void listener_open(listener_t *l, int abstract) {
    memset(l, 0, sizeof(*l));
    l->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(l->fd >= 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    socklen_t alen;
    if (abstract) {
        snprintf(l->name, sizeof(l->name), "@sigtracker-test-notify-%ld", (long)getpid());
        memcpy(a.sun_path, l->name, strlen(l->name));
        a.sun_path[0] = '\0';
        alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(l->name));
    } else {
        strcpy(l->dir, "/tmp/sigtracker-notify-XXXXXX");
        assert_non_null(mkdtemp(l->dir));
        snprintf(l->name, sizeof(l->name), "%s/notify", l->dir);
        strcpy(a.sun_path, l->name);
        alen = (socklen_t)sizeof(a);
    }
    assert_int_equal(bind(l->fd, (struct sockaddr *)&a, alen), 0);
    assert_int_equal(setenv("NOTIFY_SOCKET", l->name, 1), 0);
}

static void listener_close(listener_t *l) {
    assert_int_equal(close(l->fd), 0);
    if (l->dir[0]) {
        assert_int_equal(unlink(l->name), 0);
        assert_int_equal(rmdir(l->dir), 0);
    }
    assert_int_equal(unsetenv("NOTIFY_SOCKET"), 0);
}

/* Receives one datagram without waiting (it was sent before we look) into buf. */
static void receive(listener_t *l, char *buf) {
    ssize_t n = recv(l->fd, buf, RECV_BYTES - 1, MSG_DONTWAIT);
    assert_true(n > 0);
    buf[n] = '\0';
}

static void assert_nothing_pending(listener_t *l) {
    char buf[8];
    assert_int_equal(recv(l->fd, buf, sizeof(buf), MSG_DONTWAIT), -1);
    assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
}

static void test_unset_is_a_no_op(void **state) {
    (void)state;
    assert_int_equal(unsetenv("NOTIFY_SOCKET"), 0);
    assert_int_equal(notify_ready(), 0);
    assert_int_equal(notify_reloading(), 0);
    assert_int_equal(notify_stopping(), 0);
    assert_int_equal(setenv("NOTIFY_SOCKET", "", 1), 0);
    assert_int_equal(notify_send("READY=1"), 0);
    assert_int_equal(unsetenv("NOTIFY_SOCKET"), 0);
}

static void test_path_socket(void **state) {
    (void)state;
    listener_t l;
    char buf[RECV_BYTES];
    listener_open(&l, 0);
    assert_int_equal(notify_ready(), 0);
    receive(&l, buf);
    assert_string_equal(buf, "READY=1\nSTATUS=serving");
    assert_int_equal(notify_stopping(), 0);
    receive(&l, buf);
    assert_string_equal(buf, "STOPPING=1\nSTATUS=stopping");
    assert_nothing_pending(&l);
    listener_close(&l);
}

static void test_abstract_socket(void **state) {
    (void)state;
    listener_t l;
    char buf[RECV_BYTES];
    listener_open(&l, 1);
    assert_int_equal(notify_send("READY=1"), 0);
    receive(&l, buf);
    assert_string_equal(buf, "READY=1");
    listener_close(&l);
}

/* RELOADING=1 carries MONOTONIC_USEC, which must be the monotonic clock now, in microseconds. */
static void test_reloading_has_monotonic_usec(void **state) {
    (void)state;
    listener_t l;
    char buf[RECV_BYTES];
    listener_open(&l, 0);
    struct timespec ts;
    assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
    unsigned long long before = (unsigned long long)ts.tv_sec * 1000000ull + ts.tv_nsec / 1000;
    assert_int_equal(notify_reloading(), 0);
    assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
    unsigned long long after = (unsigned long long)ts.tv_sec * 1000000ull + ts.tv_nsec / 1000;
    receive(&l, buf);
    assert_true(strncmp(buf, "RELOADING=1\n", 12) == 0);
    const char *m = strstr(buf, "\nMONOTONIC_USEC=");
    assert_non_null(m);
    unsigned long long usec = strtoull(m + 16, NULL, 10);
    assert_true(usec >= before);
    assert_true(usec <= after);
    listener_close(&l);
}

static void test_errors(void **state) {
    (void)state;
    assert_int_equal(setenv("NOTIFY_SOCKET", "vsock:2:1234", 1), 0);
    assert_int_equal(notify_send("READY=1"), -EAFNOSUPPORT);
    assert_int_equal(setenv("NOTIFY_SOCKET", "relative/path", 1), 0);
    assert_int_equal(notify_send("READY=1"), -EAFNOSUPPORT);
    assert_int_equal(setenv("NOTIFY_SOCKET", "@", 1), 0);
    assert_int_equal(notify_send("READY=1"), -EINVAL);
    char longname[200];
    memset(longname, 'x', sizeof(longname) - 1);
    longname[0] = '/';
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(setenv("NOTIFY_SOCKET", longname, 1), 0);
    assert_int_equal(notify_send("READY=1"), -ENAMETOOLONG);
    /* Nobody listens there: sendto's errno comes back. */
    assert_int_equal(setenv("NOTIFY_SOCKET", "/nonexistent/sigtracker/notify", 1), 0);
    assert_int_equal(notify_send("READY=1"), -ENOENT);
    assert_int_equal(notify_send(""), -EINVAL);
    char big[NOTIFY_MAX_BYTES + 2];
    memset(big, 'A', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(notify_send(big), -EINVAL);
    assert_int_equal(unsetenv("NOTIFY_SOCKET"), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unset_is_a_no_op),
        cmocka_unit_test(test_path_socket),
        cmocka_unit_test(test_abstract_socket),
        cmocka_unit_test(test_reloading_has_monotonic_usec),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
