/* test_qmp.c - the QMP client against a scripted QMP server in a thread:
 * greeting and capabilities, replies, errors, events in between, a socket
 * with no listener, a silent or vanishing server (bounded by the timeout),
 * block jobs followed to their end; and the attach value's syntax. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "attach.h"
#include "qmp.h"

enum behaviour {
	SERVE,         /* answer as QEMU does */
	SILENT,        /* accept, never greet */
	HANG_UP,       /* greet, then close on the first command */
};

static struct server {
	char path[108];
	int fd;
	pthread_t thread;
	enum behaviour behaviour;
	int polls;              /* query-jobs answered so far */
	bool job_failed;        /* the job concludes with an error */
	bool completed;         /* job-complete was asked */
	bool dismissed;         /* job-dismiss was asked */
	char last_command[64];
} srv;

static void send_line(int fd, const char *s)
{
	ssize_t n = write(fd, s, strlen(s));

	cr_assert_eq(n, (ssize_t)strlen(s));
}

static bool read_line(int fd, char *buf, size_t len)
{
	size_t n = 0;

	while (n + 1 < len) {
		ssize_t r = read(fd, buf + n, 1);

		if (r <= 0)
			return false;
		if (buf[n++] == '\n')
			break;
	}
	buf[n] = '\0';
	return true;
}

/* The job's entry at the n-th query-jobs: running at 25%, ready, then
 * concluded (with an error when srv.job_failed). */
static json_t *job_entry(int n)
{
	const char *status = n == 0 ? "running" : n == 1 ? "ready" : "concluded";
	json_t *j = json_pack("{s:s, s:s, s:s, s:i, s:i}", "id", "j1", "type", "commit", "status",
			      status, "current-progress", n == 0 ? 25 : 100, "total-progress", 100);

	if (n > 1 && srv.job_failed)
		json_object_set_new(j, "error", json_string("No space left on device"));
	return j;
}

static void serve_one(int c)
{
	char line[4096], reply[1024];

	if (srv.behaviour == SILENT) {
		sleep(2);
		return;
	}
	send_line(c, "{\"QMP\": {\"version\": {\"qemu\": {\"major\": 7, \"minor\": 2, "
		     "\"micro\": 0}}, \"capabilities\": [\"oob\"]}}\r\n");
	while (read_line(c, line, sizeof(line))) {
		json_t *msg = json_loads(line, 0, NULL);
		const char *cmd = json_string_value(json_object_get(msg, "execute"));
		char *id = json_dumps(json_object_get(msg, "id") ?: json_null(), JSON_ENCODE_ANY);

		cr_assert(cmd, "not a command: %s", line);
		snprintf(srv.last_command, sizeof(srv.last_command), "%s", cmd);
		if (!strcmp(cmd, "qmp_capabilities")) {
			snprintf(reply, sizeof(reply), "{\"return\": {}, \"id\": %s}\r\n", id);
		} else if (srv.behaviour == HANG_UP) {
			free(id);
			json_decref(msg);
			return;
		} else if (!strcmp(cmd, "query-jobs")) {
			json_t *list = json_pack("[o]", job_entry(srv.polls++));
			char *jobs = json_dumps(list, JSON_COMPACT);

			snprintf(reply, sizeof(reply), "{\"return\": %s, \"id\": %s}\r\n", jobs, id);
			free(jobs);
			json_decref(list);
		} else if (!strcmp(cmd, "job-complete")) {
			srv.completed = true;
			snprintf(reply, sizeof(reply), "{\"return\": {}, \"id\": %s}\r\n", id);
		} else if (!strcmp(cmd, "job-dismiss")) {
			srv.dismissed = true;
			snprintf(reply, sizeof(reply), "{\"return\": {}, \"id\": %s}\r\n", id);
		} else if (!strcmp(cmd, "echo")) {
			/* an event first, then the reply with the arguments */
			send_line(c, "{\"event\": \"JOB_STATUS_CHANGE\", \"data\": {\"id\": \"j1\", "
				     "\"status\": \"running\"}, \"timestamp\": {\"seconds\": 1, "
				     "\"microseconds\": 2}}\r\n");
			char *args = json_dumps(json_object_get(msg, "arguments") ?: json_object(),
						JSON_COMPACT);

			snprintf(reply, sizeof(reply), "{\"return\": %s, \"id\": %s}\r\n", args, id);
			free(args);
		} else if (!strcmp(cmd, "blockdev-del")) {
			snprintf(reply, sizeof(reply),
				 "{\"error\": {\"class\": \"DeviceNotFound\", \"desc\": \"no node\"}, "
				 "\"id\": %s}\r\n", id);
		} else {
			snprintf(reply, sizeof(reply),
				 "{\"error\": {\"class\": \"GenericError\", \"desc\": \"The command "
				 "%s has not been found\"}, \"id\": %s}\r\n", cmd, id);
		}
		send_line(c, reply);
		free(id);
		json_decref(msg);
	}
}

static void *server_main(void *arg)
{
	for (;;) {
		int c = accept(srv.fd, NULL, NULL);

		if (c < 0)
			return NULL; /* closed by stop_server() */
		serve_one(c);
		close(c);
	}
	return arg;
}

static void start_server(enum behaviour b)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	memset(&srv, 0, sizeof(srv));
	srv.behaviour = b;
	snprintf(srv.path, sizeof(srv.path), "/tmp/snapfs-test-qmp.%d.sock", (int)getpid());
	unlink(srv.path);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", srv.path);
	srv.fd = socket(AF_UNIX, SOCK_STREAM, 0);
	cr_assert_geq(srv.fd, 0);
	cr_assert_eq(bind(srv.fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(listen(srv.fd, 4), 0);
	cr_assert_eq(pthread_create(&srv.thread, NULL, server_main, NULL), 0);
}

static void stop_server(void)
{
	shutdown(srv.fd, SHUT_RDWR);
	close(srv.fd);
	pthread_join(srv.thread, NULL);
	unlink(srv.path);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

TestSuite(qmp, .timeout = 30);

Test(qmp, command_returns_its_value_past_events)
{
	json_t *ret = NULL;

	start_server(SERVE);
	cr_assert_eq(qmp_execute(srv.path, 2000, "echo", json_pack("{s:s}", "node", "n1"), &ret),
		     0);
	cr_assert_str_eq(json_string_value(json_object_get(ret, "node")), "n1");
	json_decref(ret);
	stop_server();
}

Test(qmp, error_replies_map_to_errno)
{
	json_t *ret = NULL;

	start_server(SERVE);
	cr_assert_eq(qmp_execute(srv.path, 2000, "no-such-command", NULL, &ret), -EIO);
	cr_assert_null(ret);
	cr_assert_eq(qmp_execute(srv.path, 2000, "blockdev-del",
				 json_pack("{s:s}", "node-name", "x"), NULL),
		     -ENOENT);
	stop_server();
}

Test(qmp, no_listener_is_eio_at_once)
{
	double t0 = now();

	cr_assert_eq(qmp_execute("/tmp/snapfs-test-qmp-nobody.sock", 5000, "query-jobs", NULL,
				 NULL),
		     -EIO);
	cr_assert_lt(now() - t0, 1.0);
}

Test(qmp, silent_server_is_eio_after_the_timeout)
{
	double t0, dt;

	start_server(SILENT);
	t0 = now();
	cr_assert_eq(qmp_execute(srv.path, 300, "query-jobs", NULL, NULL), -EIO);
	dt = now() - t0;
	cr_assert(dt >= 0.29 && dt < 1.5, "waited %.3f s for a 0.3 s timeout", dt);
	stop_server();
}

Test(qmp, closed_connection_is_eio)
{
	start_server(HANG_UP);
	cr_assert_eq(qmp_execute(srv.path, 2000, "query-jobs", NULL, NULL), -EIO);
	stop_server();
}

Test(qmp, long_socket_path_is_refused)
{
	char path[200];

	memset(path, 'a', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	cr_assert_eq(qmp_execute(path, 100, "query-jobs", NULL, NULL), -ENAMETOOLONG);
}

static int last_progress = -1;

static void on_progress(int percent, void *arg)
{
	(void)arg;
	last_progress = percent;
}

Test(qmp, job_is_followed_completed_and_dismissed)
{
	start_server(SERVE);
	last_progress = -1;
	cr_assert_eq(qmp_job_wait(srv.path, 2000, "j1", on_progress, NULL), 0);
	cr_assert(srv.completed, "a ready job is completed");
	cr_assert(srv.dismissed, "a concluded job is dismissed");
	cr_assert_eq(last_progress, 99);
	stop_server();
}

Test(qmp, failed_job_is_eio_and_dismissed)
{
	start_server(SERVE);
	srv.job_failed = true;
	cr_assert_eq(qmp_job_wait(srv.path, 2000, "j1", NULL, NULL), -EIO);
	cr_assert(srv.dismissed);
	stop_server();
}

Test(qmp, unknown_job_is_enoent)
{
	start_server(SERVE);
	cr_assert_eq(qmp_job_wait(srv.path, 2000, "other", NULL, NULL), -ENOENT);
	stop_server();
}

Test(attach, value_syntax)
{
	struct attach_target t;

	cr_assert_eq(attach_parse("/run/vm1.qmp#disk0", &t), 0);
	cr_assert_str_eq(t.socket, "/run/vm1.qmp");
	cr_assert_str_eq(t.node, "disk0");
	cr_assert_eq(attach_parse("/a#b#node-1.x_y", &t), 0);
	cr_assert_str_eq(t.socket, "/a#b");
	cr_assert_eq(attach_parse("run/vm1.qmp#disk0", &t), -EINVAL);
	cr_assert_eq(attach_parse("/run/vm1.qmp", &t), -EINVAL);
	cr_assert_eq(attach_parse("/run/vm1.qmp#", &t), -EINVAL);
	cr_assert_eq(attach_parse("/run/vm1.qmp#0disk", &t), -EINVAL);
	cr_assert_eq(attach_parse("/run/vm1.qmp#disk 0", &t), -EINVAL);
	cr_assert_eq(attach_parse("/run/vm1.qmp#abcdefghijabcdefghijabcdefghijab", &t), -EINVAL);
}

Test(attach, overlay_node_names)
{
	char node[ATTACH_NODE_MAX], value[ATTACH_VALUE_MAX];

	attach_overlay_node("1f36c0b3-b0a9-4caf-9b26-b5937f4479f6", node, sizeof(node));
	cr_assert_str_eq(node, "snapfs-1f36c0b3b0a94caf9b26b593");
	cr_assert_lt(strlen(node), 32);
	attach_value_with_node("/run/a#b.qmp#disk0", node, value, sizeof(value));
	cr_assert_str_eq(value, "/run/a#b.qmp#snapfs-1f36c0b3b0a94caf9b26b593");
}
