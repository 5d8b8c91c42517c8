/* log.h - one log line per event, to stderr (foreground) or syslog (daemon).
 *
 * Every failure that reaches a user as an errno also leaves a log line that
 * names the object or file and the reason. Thread-safe: each call writes one
 * whole line.
 */
#ifndef SNAPFS_LOG_H
#define SNAPFS_LOG_H

#include <stdarg.h>
#include <stdbool.h>

enum log_level { LOG_LEVEL_ERR = 3, LOG_LEVEL_WARN = 4, LOG_LEVEL_INFO = 6, LOG_LEVEL_DEBUG = 7 };

/* Send lines to syslog (true) or stderr (false, the default). Call once
 * before threads start. */
void log_use_syslog(bool on);

/* Lines above this level are dropped; the default is LOG_LEVEL_INFO. */
void log_set_level(enum log_level level);

/* Silence everything (the fuzzer and unit tests of hostile input). */
void log_set_quiet(bool quiet);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level level, const char *fmt, va_list ap);

#define log_err(...) log_msg(LOG_LEVEL_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif
