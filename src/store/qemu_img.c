/* qemu_img.c - see qemu_img.h. */
#include "qemu_img.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"

#define QEMU_IMG_MAX_ARGS 32

/* Report each "(NN.NN/100%)" that qemu-img -p prints in chunk (len bytes,
 * not NUL-terminated: the number is copied out before it is parsed). */
static void parse_progress(const char *chunk, size_t len, qemu_img_progress_fn fn, void *arg)
{
	for (size_t i = 0; i + 6 <= len; i++) {
		size_t j = i;
		char num[16];
		double pct;

		if (memcmp(chunk + i, "/100%)", 6))
			continue;
		while (j > 0 && chunk[j - 1] != '(' && i - j < 8)
			j--;
		if (j == 0 || chunk[j - 1] != '(')
			continue;
		memcpy(num, chunk + j, i - j);
		num[i - j] = '\0';
		if (sscanf(num, "%lf", &pct) == 1)
			fn((int)pct, arg);
	}
}

int qemu_img_run_progress(const char *qemu_img, int dirfd, const char *const *args,
			  qemu_img_progress_fn progress, void *arg)
{
	const char *argv[QEMU_IMG_MAX_ARGS + 2];
	char out[4096];
	size_t n = 0, used = 0;
	int pipefd[2], status, rc = 0;
	pid_t pid;

	argv[0] = qemu_img;
	for (; args[n]; n++) {
		if (n >= QEMU_IMG_MAX_ARGS)
			return -E2BIG;
		argv[n + 1] = args[n];
	}
	argv[n + 1] = NULL;
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		rc = -errno;
		close(pipefd[0]);
		close(pipefd[1]);
		return rc;
	}
	if (pid == 0) {
		/* Child: only async-signal-safe calls until exec. It dies with
		 * the daemon, so a recovery never races an orphan merge. */
		int null = open("/dev/null", O_RDONLY);

		prctl(PR_SET_PDEATHSIG, SIGKILL);

		if (null >= 0)
			dup2(null, STDIN_FILENO);
		dup2(pipefd[1], STDOUT_FILENO);
		dup2(pipefd[1], STDERR_FILENO);
		if (fchdir(dirfd) < 0)
			_exit(126);
		execvp(qemu_img, (char *const *)argv);
		_exit(127);
	}
	close(pipefd[1]);
	/* Keep the last 4 KiB of its output (the error follows -p's progress
	 * lines); read on so it never blocks. */
	for (;;) {
		char chunk[4096];
		ssize_t r = read(pipefd[0], chunk, sizeof(chunk));
		size_t take;

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (progress)
			parse_progress(chunk, (size_t)r, progress, arg);
		take = (size_t)r < sizeof(out) - 1 ? (size_t)r : sizeof(out) - 1;
		if (used + take > sizeof(out) - 1) {
			size_t drop = used + take - (sizeof(out) - 1);

			memmove(out, out + drop, used - drop);
			used -= drop;
		}
		memcpy(out + used, chunk + r - take, take);
		used += take;
	}
	out[used] = '\0';
	close(pipefd[0]);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
		log_err("cannot run %s", qemu_img);
		return -ENOENT;
	}
	{
		/* The message, past -p's "(NN.NN/100%)" lines. */
		char *msg = strrchr(out, '\r');

		msg = msg ? msg + 1 : out;
		msg += strspn(msg, "\r\n ");
		msg[strcspn(msg, "\n")] = '\0';
		memmove(out, msg, strlen(msg) + 1);
	}
	log_err("%s %s failed (status %d): %s", qemu_img, args[0],
		WIFEXITED(status) ? WEXITSTATUS(status) : -1, out);
	return strstr(out, "No space left on device") ? -ENOSPC : -EIO;
}

int qemu_img_run(const char *qemu_img, int dirfd, const char *const *args)
{
	return qemu_img_run_progress(qemu_img, dirfd, args, NULL, NULL);
}

int qemu_img_commit(const char *qemu_img, int dirfd, const char *top, qemu_img_progress_fn progress,
		    void *arg)
{
	const char *args[] = {"commit", "-p", "-d", "-f", "qcow2", top, NULL};

	return qemu_img_run_progress(qemu_img, dirfd, args, progress, arg);
}

int qemu_img_convert_into(const char *qemu_img, int dirfd, const char *src, const char *src_fmt,
			  const char *dst, const char *dst_fmt, qemu_img_progress_fn progress,
			  void *arg)
{
	const char *args[] = {"convert", "-p", "-n", "--target-is-zero", "-f", src_fmt, "-O",
			      dst_fmt, src, dst, NULL};

	return qemu_img_run_progress(qemu_img, dirfd, args, progress, arg);
}

int qemu_img_rebase_unsafe(const char *qemu_img, int dirfd, const char *image,
			   const char *backing, const char *backing_fmt)
{
	const char *args[] = {"rebase", "-q", "-u", "-f", "qcow2", "-b", backing, "-F",
			      backing_fmt, image, NULL};

	return qemu_img_run(qemu_img, dirfd, args);
}

int qemu_img_create_qcow2(const char *qemu_img, int dirfd, const char *name, uint64_t size)
{
	char sz[32];
	const char *args[] = {"create", "-q", "-f", "qcow2", name, sz, NULL};

	snprintf(sz, sizeof(sz), "%" PRIu64, size);
	return qemu_img_run(qemu_img, dirfd, args);
}

int qemu_img_resize_qcow2(const char *qemu_img, int dirfd, const char *name, uint64_t size)
{
	char sz[32];
	const char *args[] = {"resize", "-q", "-f", "qcow2", name, sz, NULL};

	snprintf(sz, sizeof(sz), "%" PRIu64, size);
	return qemu_img_run(qemu_img, dirfd, args);
}
