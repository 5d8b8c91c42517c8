/* log.c - see log.h. */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

enum log_dest { DEST_STDERR, DEST_SYSLOG, DEST_FILE };

static enum log_dest log_dest; /* where lines go now */
static enum log_dest log_chosen; /* where they go after log_start() */
static int log_fd = -1; /* DEST_FILE */
static bool log_quiet;
static enum log_level log_max = LOG_LEVEL_INFO;

/* The reason log_refuse() gave within the current request. */
static __thread bool req_active, req_has_reason;
static __thread int req_reason_rc;
static __thread char req_reason[1024];

static const char *const level_names[] = {
	[LOG_LEVEL_ERR] = "error",
	[LOG_LEVEL_WARN] = "warning",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_DEBUG] = "debug",
};

/* Whether something listens on /dev/log (a socket without a syslog daemon
 * behind it takes nothing). */
static bool syslog_listening(void)
{
	static const int types[] = {SOCK_DGRAM, SOCK_STREAM};
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", "/dev/log");
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		int fd = socket(AF_UNIX, types[i] | SOCK_CLOEXEC, 0), rc;

		if (fd < 0)
			return false;
		rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
		close(fd);
		if (rc == 0)
			return true;
		if (errno != EPROTOTYPE)
			return false;
	}
	return false;
}

int log_setup(const char *spec, bool foreground, const char *fallback, char *err, size_t errlen)
{
	if (!spec || !*spec)
		spec = foreground ? "stderr" : "syslog";
	if (!strcmp(spec, "stderr")) {
		log_chosen = DEST_STDERR;
	} else if (!strcmp(spec, "syslog")) {
		log_chosen = DEST_SYSLOG;
		if (!syslog_listening()) {
			/* A daemon must not keep its caller's stderr: a caller
			 * reading it to the end (a pipe) would wait until unmount. */
			if (!foreground && fallback)
				log_fd = open(fallback,
					      O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
			if (log_fd >= 0) {
				log_warn("log=syslog: nothing listens on /dev/log; logging to %s "
					 "instead",
					 fallback);
				log_chosen = DEST_FILE;
			} else {
				log_warn("log=syslog: nothing listens on /dev/log; logging to stderr "
					 "instead%s",
					 foreground ? "" : " (which the daemon keeps)");
				log_chosen = DEST_STDERR;
			}
		}
	} else if (spec[0] == '/') {
		log_fd = open(spec, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
		if (log_fd < 0) {
			int e = errno;

			snprintf(err, errlen, "log=%s: cannot open the log file: %s", spec,
				 strerror(e));
			return -e;
		}
		log_chosen = DEST_FILE;
		/* From the start: a file takes the start-up lines too. */
		log_dest = DEST_FILE;
	} else {
		snprintf(err, errlen, "log=%s: must be syslog, stderr or an absolute file path",
			 spec);
		return -EINVAL;
	}
	return 0;
}

void log_start(void)
{
	if (log_chosen == DEST_SYSLOG)
		openlog("snapfs", LOG_PID, LOG_DAEMON);
	log_dest = log_chosen;
}

bool log_uses_stderr(void)
{
	return log_chosen == DEST_STDERR;
}

int log_level_parse(const char *name, enum log_level *level)
{
	static const enum log_level levels[] = {LOG_LEVEL_ERR, LOG_LEVEL_WARN, LOG_LEVEL_INFO,
						LOG_LEVEL_DEBUG};

	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
		if (name && !strcmp(name, level_names[levels[i]])) {
			*level = levels[i];
			return 0;
		}
	return -EINVAL;
}

void log_set_level(enum log_level level)
{
	log_max = level;
}

bool log_enabled(enum log_level level)
{
	return !log_quiet && level <= log_max;
}

void log_set_quiet(bool quiet)
{
	log_quiet = quiet;
}

/* One line to the log file, stamped, in one write (O_APPEND keeps lines
 * whole, also when the file is rotated by copy and truncation). */
static void file_line(enum log_level level, const char *line)
{
	char buf[2200], stamp[40];
	struct timeval tv;
	struct tm tm;
	int n;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(buf, sizeof(buf), "%s.%06ldZ snapfs[%ld]: %s: %s\n", stamp, (long)tv.tv_usec,
		     (long)getpid(), level_names[level], line);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(buf)) {
		n = (int)sizeof(buf) - 1;
		buf[n - 1] = '\n';
	}
	if (write(log_fd, buf, (size_t)n) < 0) {
		/* nowhere else to say it */
	}
}

void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	char line[2048];

	if (!log_enabled(level))
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	switch (log_dest) {
	case DEST_SYSLOG:
		syslog((int)level, "%s", line);
		return;
	case DEST_FILE:
		file_line(level, line);
		return;
	case DEST_STDERR:
		/* One fprintf per line: stdio locks the stream, so lines never mix. */
		fprintf(stderr, "snapfs: %s: %s\n", level_names[level], line);
		return;
	}
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

const char *errno_name(int err)
{
	static __thread char other[16];

	switch (err) {
#define NAME(e) \
	case e: \
		return #e
		NAME(EPERM);
		NAME(ENOENT);
		NAME(EIO);
		NAME(ENXIO);
		NAME(E2BIG);
		NAME(EBADF);
		NAME(EAGAIN);
		NAME(ENOMEM);
		NAME(EACCES);
		NAME(EFAULT);
		NAME(EBUSY);
		NAME(EEXIST);
		NAME(EXDEV);
		NAME(ENODEV);
		NAME(ENOTDIR);
		NAME(EISDIR);
		NAME(EINVAL);
		NAME(ENFILE);
		NAME(EMFILE);
		NAME(EFBIG);
		NAME(ENOSPC);
		NAME(ESPIPE);
		NAME(EROFS);
		NAME(EMLINK);
		NAME(ERANGE);
		NAME(EDEADLK);
		NAME(ENAMETOOLONG);
		NAME(ENOSYS);
		NAME(ENOTEMPTY);
		NAME(ELOOP);
		NAME(ENODATA);
		NAME(ETIMEDOUT);
		NAME(ECONNREFUSED);
		NAME(EOVERFLOW);
		NAME(ENOTSUP);
		NAME(ECANCELED);
		NAME(ESTALE);
		NAME(EDQUOT);
		NAME(EINTR);
		NAME(EPROTO);
		NAME(ENOTCONN);
#undef NAME
	default:
		snprintf(other, sizeof(other), "E%d", err);
		return other;
	}
}

int log_refuse(int rc, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (req_active && req_has_reason)
		return rc; /* the first, innermost reason stands */
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (req_active) {
		snprintf(req_reason, sizeof(req_reason), "%s", line);
		req_reason_rc = rc;
		req_has_reason = true;
	} else {
		log_info("%s: %s", errno_name(-rc), line);
	}
	return rc;
}

void log_request_begin(void)
{
	req_active = true;
	req_has_reason = false;
}

int log_request_end(int rc, enum log_level level, const char *op, const char *object)
{
	if (rc < 0) {
		if (rc == -EIO || rc == -ENOMEM)
			level = LOG_LEVEL_ERR;
		else if (rc == -ENOSPC && level > LOG_LEVEL_WARN)
			level = LOG_LEVEL_WARN;
		if (!req_has_reason)
			log_msg(level, "%s %s: %s: %s", op, object, errno_name(-rc), strerror(-rc));
		else if (req_reason_rc == rc)
			log_msg(level, "%s %s: %s: %s", op, object, errno_name(-rc), req_reason);
		else /* the operation turned the refusal into another errno */
			log_msg(level, "%s %s: %s: %s (after %s: %s)", op, object, errno_name(-rc),
				strerror(-rc), errno_name(-req_reason_rc), req_reason);
	}
	req_active = false;
	req_has_reason = false;
	return rc;
}
