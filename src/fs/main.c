/* main.c - parse options, open the share and catalogue, mount, serve,
 * unwind. Usage: snapfs [-f] [-d] [-o OPTION,...] SHARE MOUNTPOINT
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsops.h"
#include "log.h"
#include "options.h"
#include "mount.h"

struct cmdline {
	struct snapfs_options opts;
	char *share;
	int nonopts;
	bool help, version;
};

enum { KEY_HELP, KEY_VERSION };

static const struct fuse_opt snapfs_opt_spec[] = {
#define OPTION(name, type, def, meta, help)                                                    \
	{#name "=%s", offsetof(struct cmdline, opts.name), 0},
#define FUSE_OPTION(name, help)
#include "options.def"
#undef OPTION
#undef FUSE_OPTION
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_KEY("-V", KEY_VERSION),
	FUSE_OPT_KEY("--version", KEY_VERSION),
	FUSE_OPT_END,
};

static int opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct cmdline *cl = data;

	switch (key) {
	case KEY_HELP:
		cl->help = true;
		return 0;
	case KEY_VERSION:
		cl->version = true;
		return 0;
	case FUSE_OPT_KEY_NONOPT:
		/* The first non-option is SHARE (ours); the second, MOUNTPOINT,
		 * goes on to libfuse. */
		if (cl->nonopts++ == 0) {
			cl->share = strdup(arg);
			return 0;
		}
		return 1;
	default:
		return 1;
	}
}

/* Set the read-ahead window of the FUSE mount at mnt to bytes. The kernel
 * starts a FUSE mount at 128K, and FUSE_INIT can only lower that, while the
 * window also caps the size of each read request: only the mount's
 * backing device in sysfs raises it (root only). Sends no request to the
 * mount (statx with AT_STATX_DONT_SYNC reads the device number from the
 * superblock), so it can run before the session loop. Failure is logged
 * and harmless: reads stay correct, in smaller requests. */
static void set_read_ahead(const char *mnt, uint64_t bytes)
{
	struct statx stx;
	char path[80], val[24];
	int fd, n;

	if (statx(AT_FDCWD, mnt, AT_STATX_DONT_SYNC, 0, &stx) < 0) {
		log_info("read_ahead: cannot stat %s: %s", mnt, strerror(errno));
		return;
	}
	snprintf(path, sizeof(path), "/sys/class/bdi/%u:%u/read_ahead_kb", stx.stx_dev_major,
		 stx.stx_dev_minor);
	n = snprintf(val, sizeof(val), "%llu", (unsigned long long)(bytes / 1024));
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, val, (size_t)n) != n)
		log_info("read_ahead: cannot set %s to %s: %s; the kernel's window stays", path,
			 val, strerror(errno));
	if (fd >= 0)
		close(fd);
}

/* Print one option with its help wrapped at 78 columns. */
static void print_option(const char *opt, const char *help, const char *def)
{
	const char *p = help;
	int col = 8;

	printf("    %s\n        ", opt);
	while (*p) {
		size_t w = strcspn(p, " ");

		if (col + (int)w > 78) {
			printf("\n        ");
			col = 8;
		}
		printf("%.*s", (int)w, p);
		col += (int)w;
		p += w;
		if (*p == ' ') {
			putchar(' ');
			col++;
			p++;
		}
	}
	if (def)
		printf(" Default: %s.", def);
	putchar('\n');
}

static void print_help(const char *prog)
{
	printf("usage: %s [-f] [-d] [-o OPTION[,OPTION...]] SHARE MOUNTPOINT\n\n"
	       "Mount the qcow2 volumes of SHARE as a tree of tenants, volumes and snapshots.\n\n"
	       "snapfs options:\n",
	       prog);
#define OPTION(name, type, def, meta, help) print_option("-o " #name "=" meta, help, def);
#define FUSE_OPTION(name, help) print_option(#name[0] == '-' ? #name : "-o " #name, help, NULL);
#include "options.def"
#undef OPTION
#undef FUSE_OPTION
}

/* Fork the daemon. The parent waits until the child calls daemon_ready()
 * (exit status 0) or ends without calling it (exit status 1), and never
 * returns. The child returns 0 with the pipe's write end in *ready_fd.
 * Returns -1 (errno set) when the pipe or the fork fails. */
static int daemon_fork(int *ready_fd)
{
	int waiter[2];
	char ok = 0;
	pid_t pid;

	if (pipe2(waiter, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		close(waiter[0]);
		close(waiter[1]);
		return -1;
	}
	if (pid > 0) {
		close(waiter[1]);
		while (read(waiter[0], &ok, 1) < 0 && errno == EINTR)
			;
		_exit(ok == 1 ? 0 : 1);
	}
	close(waiter[0]);
	*ready_fd = waiter[1];
	return 0;
}

/* The mount is up: detach from the terminal and let daemon_fork()'s parent
 * exit 0. Logs go to their destination (log=) from here on; when that is
 * stderr (log=stderr, or syslog without a listener and no file to fall
 * back to), the daemon keeps the stderr it was started with. */
static void daemon_ready(int ready_fd)
{
	char ok = 1;
	int nullfd;

	if (setsid() < 0)
		log_warn("setsid: %s", strerror(errno));
	nullfd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (nullfd >= 0) {
		dup2(nullfd, 0);
		dup2(nullfd, 1);
		if (!log_uses_stderr())
			dup2(nullfd, 2);
		if (nullfd > 2)
			close(nullfd);
	}
	if (write(ready_fd, &ok, 1) != 1)
		log_warn("cannot tell the starting process the mount is up: %s", strerror(errno));
	close(ready_fd);
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct cmdline cl = {0};
	struct fuse_cmdline_opts fo = {0};
	struct fuse_loop_config *loop = NULL;
	struct mount_ctx ctx = {0};
	char err[512], fsname[4200], logfile[PATH_MAX + 16];
	int ret = 1, rc, ready_fd = -1;

	if (fuse_opt_parse(&args, &cl, snapfs_opt_spec, opt_proc) == -1)
		return 2;
	if (cl.help) {
		print_help(argv[0]);
		printf("\nlibfuse options:\n");
		fuse_cmdline_help();
		fuse_lowlevel_help();
		ret = 0;
		goto out_args;
	}
	if (cl.version) {
		printf("snapfs %s (libfuse %s)%s\n", PACKAGE_VERSION, fuse_pkgversion(),
#ifdef SNAPFS_FAULT_INJECTION
		       " fault-injection"
#else
		       ""
#endif
		);
		ret = 0;
		goto out_args;
	}
	if (!cl.share || cl.nonopts != 2) {
		fprintf(stderr, "usage: %s [-f] [-d] [-o OPTION,...] SHARE MOUNTPOINT "
				"(--help for options)\n", argv[0]);
		ret = 2;
		goto out_args;
	}
	options_set_defaults(&cl.opts);
	rc = options_finalize(&cl.opts, cl.share, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "snapfs: %s\n", err);
		goto out_opts;
	}
	/* Always let the kernel check mode bits; name the mount after SHARE. */
	snprintf(fsname, sizeof(fsname),
		 "-ofsname=snapfs:%s,subtype=snapfs,default_permissions,max_read=%u", cl.opts.share,
		 (unsigned)SNAPFS_MAX_READ);
	if (fuse_opt_add_arg(&args, fsname) || fuse_parse_cmdline(&args, &fo) != 0)
		goto out_opts;
	if (!fo.mountpoint) {
		fprintf(stderr, "snapfs: no MOUNTPOINT given\n");
		goto out_opts;
	}
	log_set_level(cl.opts.log_level_value);
	snprintf(logfile, sizeof(logfile), "%s/snapfs.log", cl.opts.catalog_dir);
	if (log_setup(cl.opts.log, fo.foreground, logfile, err, sizeof(err))) {
		fprintf(stderr, "snapfs: %s\n", err);
		goto out_cmdline;
	}
	if (fo.foreground)
		log_start();
	/* One process opens the catalogue and serves: the daemon forks before
	 * anything is opened (LMDB and the etcd threads do not cross a fork),
	 * and its parent exits only once the mount is up, with its status, so
	 * that errors still reach the terminal and mount(8). */
	if (!fo.foreground && daemon_fork(&ready_fd)) {
		fprintf(stderr, "snapfs: cannot fork: %s\n", strerror(errno));
		goto out_cmdline;
	}
	rc = snapfs_open(&ctx.fs, &cl.opts);
	if (rc) {
		fprintf(stderr, "snapfs: cannot open share %s with catalogue %s: %s\n",
			cl.opts.share, cl.opts.catalog_dir, strerror(-rc));
		goto out_cmdline;
	}
	ctx.read_ahead = cl.opts.read_ahead_bytes;
	fsops_handles_init(&ctx);
	ctx.se = fuse_session_new(&args, &snapfs_fsops, sizeof(snapfs_fsops), &ctx);
	if (!ctx.se)
		goto out_cmdline;
	if (fuse_set_signal_handlers(ctx.se) != 0)
		goto out_session;
	if (fuse_session_mount(ctx.se, fo.mountpoint) != 0)
		goto out_signals;
	if (ctx.read_ahead)
		set_read_ahead(fo.mountpoint, ctx.read_ahead);
	if (!fo.foreground)
		log_start();
	if (ready_fd >= 0)
		daemon_ready(ready_fd);
	if (chdir("/") < 0)
		log_warn("cannot change directory to /: %s", strerror(errno));
	if (fsops_notifier_start(&ctx))
		log_warn("changes reach the kernel's cache through timeouts only (attr_timeout)");
	log_info("mounted %s on %s (catalogue %s)", cl.opts.share, fo.mountpoint,
		 cl.opts.catalog_dir);
	if (fo.singlethread) {
		ret = fuse_session_loop(ctx.se);
	} else {
		loop = fuse_loop_cfg_create();
		fuse_loop_cfg_set_clone_fd(loop, fo.clone_fd);
		fuse_loop_cfg_set_max_threads(loop, fo.max_threads);
		if (fo.max_idle_threads != UINT_MAX)
			fuse_loop_cfg_set_idle_threads(loop, fo.max_idle_threads);
		ret = fuse_session_loop_mt(ctx.se, loop);
		fuse_loop_cfg_destroy(loop);
	}
	ret = ret ? 1 : 0;
	fsops_notifier_stop(&ctx);
	fuse_session_unmount(ctx.se);
	fsops_handles_drop(&ctx);
	log_info("unmounted %s", fo.mountpoint);
out_signals:
	fuse_remove_signal_handlers(ctx.se);
out_session:
	fuse_session_destroy(ctx.se);
	snapfs_close(ctx.fs);
out_cmdline:
	free(fo.mountpoint);
out_opts:
	options_free(&cl.opts);
out_args:
	free(cl.share);
	fuse_opt_free_args(&args);
	return ret;
}
