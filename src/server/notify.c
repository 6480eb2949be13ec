/* notify.c: sd_notify(3) by hand. A datagram socket is opened for each message and closed at
 * once: there are a handful of messages in a process's life (ready, each reload, stopping), so
 * keeping a descriptor open would only be one more thing to leak across the fork-free server. */
#include "server/notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Fills addr from $NOTIFY_SOCKET's value. Returns the address length, or a negative errno. */
static int notify_address(const char *name, struct sockaddr_un *addr) {
    size_t len = strlen(name);
    if (name[0] != '/' && name[0] != '@')
        return -EAFNOSUPPORT; /* "vsock:..." and anything else are not for us */
    if (len < 2 || len > sizeof(addr->sun_path))
        return len < 2 ? -EINVAL : -ENAMETOOLONG;
    memset(addr, 0, sizeof(*addr));
    addr->sun_family = AF_UNIX;
    memcpy(addr->sun_path, name, len);
    if (name[0] == '@') {
        /* An abstract name: a leading NUL, and the length says where it ends (no trailing NUL). */
        addr->sun_path[0] = '\0';
        return (int)(offsetof(struct sockaddr_un, sun_path) + len);
    }
    /* A path: count its NUL when there is room for it, as sd_notify does. */
    return (int)(offsetof(struct sockaddr_un, sun_path) + len +
                 (len < sizeof(addr->sun_path) ? 1 : 0));
}

int notify_send(const char *state) {
    const char *name = getenv("NOTIFY_SOCKET");
    if (name == NULL || name[0] == '\0')
        return 0;
    size_t len = strlen(state);
    if (len == 0 || len > NOTIFY_MAX_BYTES)
        return -EINVAL;
    struct sockaddr_un addr;
    int alen = notify_address(name, &addr);
    if (alen < 0)
        return alen;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int rc = 0;
    ssize_t n;
    do
        n = sendto(fd, state, len, MSG_NOSIGNAL, (const struct sockaddr *)&addr, (socklen_t)alen);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        rc = -errno;
    else if ((size_t)n != len)
        rc = -EMSGSIZE; /* a datagram is all or nothing; a short count would be a kernel oddity */
    if (close(fd) != 0 && rc == 0 && errno != EINTR)
        rc = -errno;
    return rc;
}

int notify_ready(void) {
    return notify_send("READY=1\nSTATUS=serving");
}

int notify_reloading(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return -errno;
    char msg[96];
    int n = snprintf(msg, sizeof(msg), "RELOADING=1\nSTATUS=reloading\nMONOTONIC_USEC=%llu",
                     (unsigned long long)ts.tv_sec * 1000000ull +
                         (unsigned long long)ts.tv_nsec / 1000ull);
    if (n < 0 || (size_t)n >= sizeof(msg))
        return -EINVAL;
    return notify_send(msg);
}

int notify_stopping(void) {
    return notify_send("STOPPING=1\nSTATUS=stopping");
}
