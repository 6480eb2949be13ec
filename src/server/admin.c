/* admin.c: the --admin-listen listener (see admin.h). */
#include "server/admin.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "server/conn.h"

/* Connections accepted per readiness event: scrapes are rare, a handful is plenty. */
#define ADMIN_ACCEPTS_PER_EVENT 16
/* Pending connections the kernel queues on the admin socket. */
#define ADMIN_BACKLOG 64

int admin_listen(server_t *s, char *err, size_t errlen) {
    if (s->cfg.admin_listen[0] == '\0')
        return 0;
    /* The configuration checked the form (config_listen_parse): HOST:PORT or [V6]:PORT. */
    config_listener_t l;
    const char *why = NULL;
    char url[sizeof(s->cfg.admin_listen) + 8];
    snprintf(url, sizeof(url), "ws://%s", s->cfg.admin_listen);
    if (config_listen_parse(url, &l, &why) != 0) {
        snprintf(err, errlen, "--admin-listen %s: %s", s->cfg.admin_listen, why);
        return -EINVAL;
    }
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char port[16];
    snprintf(port, sizeof(port), "%u", l.port);
    int rc = getaddrinfo(l.host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve --admin-listen %s: %s", s->cfg.admin_listen,
                 gai_strerror(rc));
        return -EINVAL;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, ADMIN_BACKLOG) != 0) {
        int e = errno;
        snprintf(err, errlen, "cannot listen on --admin-listen %s: %s", s->cfg.admin_listen,
                 strerror(e));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -e;
    }
    freeaddrinfo(res);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &s->afd};
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        int e = errno;
        snprintf(err, errlen, "cannot watch the admin socket: %s", strerror(e));
        close(fd);
        return -e;
    }
    s->afd = fd;
    log_msg(LOG_INFO, "admin listener on %s (/metrics, /stats.json, /health, /dashboard)%s",
            s->cfg.admin_listen, s->cfg.public_metrics ? "; the public port serves them too" : "");
    return 0;
}

void admin_accept(server_t *s) {
    for (int i = 0; i < ADMIN_ACCEPTS_PER_EVENT; i++) {
        struct sockaddr_storage addr;
        socklen_t len = sizeof(addr);
        int fd = accept4(s->afd, (struct sockaddr *)&addr, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN, or a transient error; out of descriptors waits for the next */
        /* An admin connection has its own cap (conn_create), not the clients': monitoring must
         * get in when clients have filled theirs, which is when it matters most. */
        conn_t *c = conn_create(s, fd, (struct sockaddr *)&addr, len, CF_ADMIN);
        if (c == NULL) {
            close(fd);
            continue;
        }
        int rc = conn_watch(s, c);
        if (rc != 0) {
            log_msg(LOG_WARN, "epoll_ctl(ADD) for an admin connection: %s", strerror(-rc));
            c->flags |= CF_GONE;
            conn_close(s, c, 0, NULL);
        }
    }
}

void admin_close(server_t *s) {
    if (s->afd >= 0) {
        close(s->afd);
        s->afd = -1;
    }
}
