/* log.h: one line per event on stderr, in logfmt ("text", the default) or JSON lines ("json"),
 * each with a timestamp, the level, the message and the event's fields (core/logfmt.h). */
#ifndef SIG_CORE_LOG_H
#define SIG_CORE_LOG_H

#include <stddef.h>

#include "core/logfmt.h"

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_OFF };

/* Sets the lowest level that is written: at start-up, and again on a reload. Any thread. */
void log_set_level(enum log_level level);

/* Sets the line format (enum logfmt_format): at start-up, and again on a reload. Any thread. */
void log_set_format(int format);

/* Parses "debug", "info", "warn", "error" or "off". Returns the level, or -1 if unknown. */
int log_level_parse(const char *name);

/* Returns 1 when messages at `level` are written (to skip building expensive messages). */
int log_enabled(enum log_level level);

/* Writes one log line if level is enabled. Thread-safe (one write() per line). */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes one log line with fields (msg is text, fields any bytes) if level is enabled.
 * Thread-safe (one write() per line). */
void log_event(enum log_level level, const char *msg, const logfmt_field_t *fields, size_t nfields);

#endif
