/* log.h - one log line per event, to stderr, syslog or a file (log=).
 *
 * Every failure that reaches a user as an errno also leaves a log line that
 * names the errno, the object and the reason: the core records the reason
 * with log_refuse() where it decides, and the FUSE front end writes the one
 * line when it replies (log_request_end()). Thread-safe: each call writes
 * one whole line.
 */
#ifndef SNAPFS_LOG_H
#define SNAPFS_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_LEVEL_ERR = 3, LOG_LEVEL_WARN = 4, LOG_LEVEL_INFO = 6, LOG_LEVEL_DEBUG = 7 };

/* Choose where lines go: spec is "syslog", "stderr" or an absolute file
 * path (opened for appending, created 0640 if missing), or NULL for the
 * default: stderr in the foreground, else syslog. syslog without a
 * listener on /dev/log falls back, with a warning, to the file fallback
 * (a daemon, when fallback is not NULL and opens) or to stderr. Lines keep
 * going to stderr until log_start(), except for spec's own file. Returns
 * 0, or -errno with a message in err (errlen bytes) when spec is not one
 * of these or its file cannot be opened. Call once at start-up, before
 * threads start. */
int log_setup(const char *spec, bool foreground, const char *fallback, char *err, size_t errlen);

/* Send lines to the destination chosen by log_setup() from now on. Call
 * once, before threads start. */
void log_start(void);

/* True when lines go to stderr after log_start(): the daemon then keeps
 * its stderr open instead of pointing it at /dev/null. */
bool log_uses_stderr(void);

/* "error", "warning", "info" or "debug" into *level. Returns 0 or -EINVAL. */
int log_level_parse(const char *name, enum log_level *level);

/* Lines above this level are dropped; the default is LOG_LEVEL_INFO. */
void log_set_level(enum log_level level);

/* True when a line of this level would be written. */
bool log_enabled(enum log_level level);

/* Silence everything (the fuzzer and unit tests of hostile input). */
void log_set_quiet(bool quiet);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level level, const char *fmt, va_list ap);

#define log_err(...) log_msg(LOG_LEVEL_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

/* The symbolic name of errno value err ("EBUSY"), or "E<number>". Returns
 * a static string. Thread-safe. */
const char *errno_name(int err);

/* Why the current operation fails with rc (a -errno): within a request
 * (log_request_begin()) the first reason is kept for the request's line;
 * outside one, it is logged at once as "ENAME: reason". Returns rc, so that
 * "return log_refuse(-EBUSY, ...);" reads naturally. Thread-safe (the
 * reason is per thread). */
int log_refuse(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A request starts on this thread: forget any earlier reason. */
void log_request_begin(void);

/* The request ends with rc. When rc is a -errno, write its one line:
 * "OP OBJECT: ENAME: reason" (the reason given to log_refuse(), else the
 * errno's text; when the reason came with another errno, both), at level
 * (raised to error for EIO and ENOMEM, to warning for ENOSPC). Returns rc. */
int log_request_end(int rc, enum log_level level, const char *op, const char *object);

#endif
