/* log.h: one line per event on stderr: "2026-11-25T09:40:00Z level message". */
#ifndef SIG_CORE_LOG_H
#define SIG_CORE_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_OFF };

/* Sets the lowest level that is written: at start-up, and again on a reload. Any thread. */
void log_set_level(enum log_level level);

/* Parses "debug", "info", "warn", "error" or "off". Returns the level, or -1 if unknown. */
int log_level_parse(const char *name);

/* Returns 1 when messages at `level` are written (to skip building expensive messages). */
int log_enabled(enum log_level level);

/* Writes one log line if level is enabled. Thread-safe (one write() per line). */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
