/* qmp.c - see qmp.h. */
#include "qmp.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define QMP_LINE_MAX (1 << 20) /* a reply longer than this is not one we asked for */
#define QMP_POLL_USEC 100000 /* between two query-jobs of qmp_job_wait() */

static pthread_mutex_t qmp_lock = PTHREAD_MUTEX_INITIALIZER;

struct qmp_conn {
	const char *path;
	int fd;
	int64_t deadline; /* usec, monotonic */
	char *buf; /* received, not yet parsed */
	size_t len, cap;
	unsigned next_id;
};

static int64_t now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Wait until fd is ready for events, or the deadline: 0 or -EIO. */
static int conn_wait(struct qmp_conn *c, short events)
{
	for (;;) {
		int64_t left = c->deadline - now_usec();
		struct pollfd p = {c->fd, events, 0};
		int n;

		if (left <= 0) {
			log_err("QMP %s: no answer in time", c->path);
			return -EIO;
		}
		n = poll(&p, 1, (int)((left + 999) / 1000));
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR) {
			log_err("QMP %s: poll: %s", c->path, strerror(errno));
			return -EIO;
		}
	}
}

static int conn_open(struct qmp_conn *c)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int err = 0;
	socklen_t elen = sizeof(err);

	if (strlen(c->path) > QMP_SOCKET_PATH_MAX)
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, c->path, strlen(c->path) + 1);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -errno;
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return 0;
	if (errno != EINPROGRESS && errno != EAGAIN) {
		log_err("QMP %s: connect: %s", c->path, strerror(errno));
		return -EIO;
	}
	if (conn_wait(c, POLLOUT))
		return -EIO;
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen) || err) {
		log_err("QMP %s: connect: %s", c->path, strerror(err ? err : errno));
		return -EIO;
	}
	return 0;
}

static int conn_send(struct qmp_conn *c, json_t *msg)
{
	char *text = json_dumps(msg, JSON_COMPACT);
	size_t off = 0, len;
	int rc = 0;

	if (!text)
		return -ENOMEM;
	len = strlen(text);
	text[len++] = '\n'; /* replaces the NUL: one message per line */
	while (off < len && !rc) {
		ssize_t n = send(c->fd, text + off, len - off, MSG_NOSIGNAL);

		if (n > 0) {
			off += (size_t)n;
		} else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			rc = conn_wait(c, POLLOUT);
		} else {
			log_err("QMP %s: send: %s", c->path, strerror(errno));
			rc = -EIO;
		}
	}
	free(text);
	return rc;
}

/* The next message QEMU sends (one JSON object per line) into *msg. */
static int conn_recv(struct qmp_conn *c, json_t **msg)
{
	for (;;) {
		char *nl = c->len ? memchr(c->buf, '\n', c->len) : NULL;

		if (nl) {
			size_t line = (size_t)(nl - c->buf) + 1;
			json_error_t jerr;

			*msg = json_loadb(c->buf, line, 0, &jerr);
			memmove(c->buf, c->buf + line, c->len - line);
			c->len -= line;
			if (!json_is_object(*msg)) {
				log_err("QMP %s: not a QMP message: %s", c->path, jerr.text);
				json_decref(*msg);
				*msg = NULL;
				return -EIO;
			}
			return 0;
		}
		if (c->len == c->cap) {
			size_t cap = c->cap ? c->cap * 2 : 4096;
			char *b;

			if (cap > QMP_LINE_MAX) {
				log_err("QMP %s: message too long", c->path);
				return -EIO;
			}
			b = realloc(c->buf, cap);
			if (!b)
				return -ENOMEM;
			c->buf = b;
			c->cap = cap;
		}
		ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);

		if (n > 0) {
			c->len += (size_t)n;
		} else if (n == 0) {
			log_err("QMP %s: connection closed by QEMU", c->path);
			return -EIO;
		} else if (errno == EAGAIN || errno == EINTR) {
			int rc = conn_wait(c, POLLIN);

			if (rc)
				return rc;
		} else {
			log_err("QMP %s: recv: %s", c->path, strerror(errno));
			return -EIO;
		}
	}
}

/* Send command (args stolen) and wait for its answer, skipping events. */
static int conn_command(struct qmp_conn *c, const char *command, json_t *args, json_t **ret)
{
	unsigned id = ++c->next_id;
	json_t *msg = json_pack("{s:s, s:I}", "execute", command, "id", (json_int_t)id);
	int rc;

	if (!msg) {
		json_decref(args);
		return -ENOMEM;
	}
	if (args && json_object_set_new(msg, "arguments", args)) {
		json_decref(msg);
		return -ENOMEM;
	}
	rc = conn_send(c, msg);
	json_decref(msg);
	while (!rc) {
		json_t *reply = NULL, *err;

		rc = conn_recv(c, &reply);
		if (rc)
			break;
		if (json_object_get(reply, "event")) {
			log_debug("QMP %s: event %s", c->path,
				  json_string_value(json_object_get(reply, "event")) ?: "?");
			json_decref(reply);
			continue;
		}
		if (json_integer_value(json_object_get(reply, "id")) != (json_int_t)id) {
			json_decref(reply);
			continue; /* not ours (cannot happen on our own connection) */
		}
		err = json_object_get(reply, "error");
		if (err) {
			const char *cls = json_string_value(json_object_get(err, "class"));

			log_err("QMP %s: %s failed: %s", c->path, command,
				json_string_value(json_object_get(err, "desc")) ?: "?");
			rc = cls && !strcmp(cls, "DeviceNotFound") ? -ENOENT : -EIO;
		} else if (!json_object_get(reply, "return")) {
			log_err("QMP %s: %s: reply without return", c->path, command);
			rc = -EIO;
		} else if (ret) {
			*ret = json_incref(json_object_get(reply, "return"));
		}
		json_decref(reply);
		break;
	}
	return rc;
}

int qmp_execute(const char *path, int timeout_ms, const char *command, json_t *args, json_t **ret)
{
	struct qmp_conn c = {path, -1, now_usec() + (int64_t)timeout_ms * 1000, NULL, 0, 0, 0};
	json_t *greeting = NULL;
	int rc;

	if (ret)
		*ret = NULL;
	pthread_mutex_lock(&qmp_lock);
	rc = conn_open(&c);
	if (!rc)
		rc = conn_recv(&c, &greeting);
	if (!rc && !json_object_get(greeting, "QMP")) {
		log_err("QMP %s: no QMP greeting", path);
		rc = -EIO;
	}
	json_decref(greeting);
	if (!rc)
		rc = conn_command(&c, "qmp_capabilities", NULL, NULL);
	if (!rc)
		rc = conn_command(&c, command, args, ret);
	else
		json_decref(args);
	if (c.fd >= 0)
		close(c.fd);
	pthread_mutex_unlock(&qmp_lock);
	free(c.buf);
	return rc;
}

/* The entry of query-jobs' list for job_id, or NULL. */
static json_t *job_find(json_t *jobs, const char *job_id)
{
	size_t i;
	json_t *j;

	json_array_foreach (jobs, i, j) {
		const char *id = json_string_value(json_object_get(j, "id"));

		if (id && !strcmp(id, job_id))
			return j;
	}
	return NULL;
}

int qmp_job_wait(const char *path, int timeout_ms, const char *job_id, qmp_progress_fn progress,
		 void *arg)
{
	bool completed = false;

	for (;;) {
		json_t *jobs = NULL, *job;
		const char *status;
		int rc = qmp_execute(path, timeout_ms, "query-jobs", NULL, &jobs);

		if (rc)
			return rc == -ENOENT ? -EIO : rc;
		job = job_find(jobs, job_id);
		if (!job) {
			json_decref(jobs);
			return -ENOENT;
		}
		status = json_string_value(json_object_get(job, "status")) ?: "";
		if (!strcmp(status, "concluded")) {
			const char *error = json_string_value(json_object_get(job, "error"));

			if (error)
				log_err("QMP %s: job %s failed: %s", path, job_id, error);
			json_decref(jobs);
			rc = qmp_execute(path, timeout_ms, "job-dismiss",
					 json_pack("{s:s}", "id", job_id), NULL);
			return error ? -EIO : rc == -ENOENT ? -EIO : rc;
		}
		if (!strcmp(status, "ready") && !completed) {
			rc = qmp_execute(path, timeout_ms, "job-complete",
					 json_pack("{s:s}", "id", job_id), NULL);
			if (rc) {
				json_decref(jobs);
				return -EIO;
			}
			completed = true;
		}
		if (progress) {
			json_int_t cur =
				json_integer_value(json_object_get(job, "current-progress"));
			json_int_t total =
				json_integer_value(json_object_get(job, "total-progress"));

			if (total > 0 && cur >= 0 && cur <= total)
				progress((int)(cur * 100 / total) > 99 ? 99
								       : (int)(cur * 100 / total),
					 arg);
		}
		json_decref(jobs);
		usleep(QMP_POLL_USEC);
	}
}
