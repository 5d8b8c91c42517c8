/* log.c - see log.h. */
#include "log.h"

#include <stdio.h>
#include <syslog.h>
#include <time.h>

static bool log_to_syslog;
static bool log_quiet;
static enum log_level log_max = LOG_LEVEL_INFO;

void log_use_syslog(bool on)
{
	log_to_syslog = on;
	if (on)
		openlog("snapfs", LOG_PID, LOG_DAEMON);
}

void log_set_level(enum log_level level)
{
	log_max = level;
}

void log_set_quiet(bool quiet)
{
	log_quiet = quiet;
}

void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	static const char *const names[] = {
		[LOG_LEVEL_ERR] = "error", [LOG_LEVEL_WARN] = "warning",
		[LOG_LEVEL_INFO] = "info", [LOG_LEVEL_DEBUG] = "debug",
	};
	char line[2048];

	if (log_quiet || level > log_max)
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	if (log_to_syslog) {
		syslog((int)level, "%s", line);
		return;
	}
	/* One fprintf per line: stdio locks the stream, so lines never mix. */
	fprintf(stderr, "snapfs: %s: %s\n", names[level], line);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}
