/* log.c: levelled line logger. The level and the format are process configuration, so they live
 * here rather than in a context struct; they are atomic because a reload (SIGHUP) changes them
 * while the database writer thread may be logging. Formatting is core/logfmt.c's. */
#include "core/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Bytes of a log_msg message before it is formatted into a line. */
#define LOG_MESSAGE_BYTES 1024

static atomic_int min_level = LOG_INFO;
static atomic_int line_format = LOGFMT_TEXT;
static const char *const names[] = {"debug", "info", "warn", "error", "off"};

void log_set_level(enum log_level level) {
    atomic_store_explicit(&min_level, (int)level, memory_order_relaxed);
}

void log_set_format(int format) {
    atomic_store_explicit(&line_format, format, memory_order_relaxed);
}

int log_level_parse(const char *name) {
    for (int i = 0; i <= LOG_OFF; i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    return -1;
}

int log_enabled(enum log_level level) {
    return (int)level >= atomic_load_explicit(&min_level, memory_order_relaxed) && level < LOG_OFF;
}

static void emit(enum log_level level, const char *msg, size_t msglen, const logfmt_field_t *f,
                 size_t n) {
    char line[LOGFMT_LINE_BYTES];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    size_t len = logfmt_line(line, atomic_load_explicit(&line_format, memory_order_relaxed), ms,
                             names[level], msg, msglen, f, n);
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

void log_event(enum log_level level, const char *msg, const logfmt_field_t *fields,
               size_t nfields) {
    if (log_enabled(level))
        emit(level, msg, strlen(msg), fields, nfields);
}

void log_msg(enum log_level level, const char *fmt, ...) {
    if (!log_enabled(level))
        return;
    char msg[LOG_MESSAGE_BYTES];
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    if (m > (int)sizeof(msg) - 1)
        m = (int)sizeof(msg) - 1;
    emit(level, msg, (size_t)m, NULL, 0);
}
