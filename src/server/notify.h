/* notify.h: the systemd service notification protocol (sd_notify(3)) without libsystemd. When
 * the service manager starts us with Type=notify it sets $NOTIFY_SOCKET to a datagram socket
 * (a path, or an abstract name written with a leading '@'); each state change is one datagram
 * of newline-separated VAR=VALUE lines. Without $NOTIFY_SOCKET every function does nothing and
 * returns 0, so the server behaves the same under systemd, another supervisor, or a shell.
 * Event-loop thread only (the functions read the environment, which other threads must not
 * change meanwhile). */
#ifndef SIG_SERVER_NOTIFY_H
#define SIG_SERVER_NOTIFY_H

/* Longest notification sent, in bytes (systemd accepts far more; ours are one or two lines). */
#define NOTIFY_MAX_BYTES 512

/* Sends state (for example "READY=1") to $NOTIFY_SOCKET in one datagram. Returns 0 when it was
 * sent or when $NOTIFY_SOCKET is unset or empty; -EINVAL when state is empty or longer than
 * NOTIFY_MAX_BYTES; -EAFNOSUPPORT when $NOTIFY_SOCKET is neither an absolute path nor an
 * abstract name ('@...'); -ENAMETOOLONG when it does not fit a socket address; otherwise the
 * negative errno of socket(2) or sendto(2). Nothing is retained and no descriptor stays open. */
int notify_send(const char *state);

/* Says the server is listening and serving: "READY=1" plus a STATUS line. Returns as
 * notify_send. */
int notify_ready(void);

/* Says a reload (SIGHUP) begins: "RELOADING=1" and MONOTONIC_USEC, the CLOCK_MONOTONIC time in
 * microseconds, which Type=notify-reload requires and Type=notify accepts. Follow it with
 * notify_ready() once the reload is over, whether it was applied or refused. Returns as
 * notify_send. */
int notify_reloading(void);

/* Says the server is shutting down: "STOPPING=1". Returns as notify_send. */
int notify_stopping(void);

#endif
