/* mount.c - see mount.h. */
#include "config.h"
#include "mount.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog.h"
#include "chain.h"
#include "import.h"
#include "log.h"
#include "reader.h"
#include "recover.h"
#include "share.h"
#include "util.h"

static int lock_catalog(struct snapfs *fs)
{
	char path[4200];
	int rc;

	snprintf(path, sizeof(path), "%s/snapfs.lock", fs->opts->catalog_dir);
	fs->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fs->lock_fd < 0) {
		rc = -errno;
		log_err("cannot open %s: %s", path, strerror(errno));
		return rc;
	}
	if (flock(fs->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
		log_err("catalogue %s is in use by another snapfs", fs->opts->catalog_dir);
		close(fs->lock_fd);
		fs->lock_fd = -1;
		return rc;
	}
	return 0;
}

static bool same_file(int a, int b)
{
	struct stat sa, sb;

	return !fstat(a, &sa) && !fstat(b, &sb) && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* Load a one-host catalogue into etcd (etcd_seed=), while no snapfs
 * serves it: its lock is taken for the time of the load. */
static int seed_catalog(struct snapfs *fs, const char *dir)
{
	char path[4200];
	int fd, rc;

	snprintf(path, sizeof(path), "%s/snapfs.lock", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0 && same_file(fd, fs->lock_fd)) {
		close(fd); /* catalog= is that directory: this mount holds its lock */
		fd = -1;
	}
	if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0) {
		log_err("etcd_seed=%s: a snapfs still serves that catalogue: unmount it first", dir);
		close(fd);
		catalog_close(fs->cat);
		return -EBUSY;
	}
	rc = catalog_seed(fs->cat, dir);
	if (fd >= 0)
		close(fd);
	if (rc)
		catalog_close(fs->cat);
	return rc;
}

/* Several hosts: a thread that finishes or undoes the operations of hosts
 * that are gone, woken when the watch sees a host leave, and every
 * RECOVERY_SWEEP_S seconds in case a wake-up was missed. */
#define RECOVERY_SWEEP_S 30

struct recovery_worker {
	struct snapfs *fs;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool pending, stop;
	bool own;       /* a change of this host failed: its own operations too */
};

/* How often recovery of this host's own operations is tried while etcd
 * does not answer. */
#define RECOVERY_RETRY_MS 1000

static void host_gone(void *arg, const char *host)
{
	struct recovery_worker *w = arg;

	if (host)
		log_info("etcd: host %s is gone: looking for its unfinished operations", host);
	pthread_mutex_lock(&w->lock);
	if (!host && !w->own)
		log_warn("etcd: a change failed: operations of this host it leaves half done are "
			 "finished or undone once etcd answers");
	if (host)
		w->pending = true;
	else
		w->own = true;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
}



static void *recovery_loop(void *arg)
{
	struct recovery_worker *w = arg;
	bool retry = false; /* recovery of own operations failed: again soon */

	pthread_mutex_lock(&w->lock);
	while (!w->stop) {
		long wait_ms = retry ? RECOVERY_RETRY_MS : RECOVERY_SWEEP_S * 1000L;
		struct timespec until;
		bool own;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += wait_ms / 1000;
		until.tv_nsec += (wait_ms % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		while (!w->pending && !(w->own && !retry) && !w->stop)
			if (pthread_cond_timedwait(&w->wake, &w->lock, &until) == ETIMEDOUT)
				break;
		if (w->stop)
			break;
		w->pending = false;
		own = w->own;
		w->own = false;
		pthread_mutex_unlock(&w->lock);
		recover_gone_hosts(w->fs);
		retry = own && recover_own(w->fs);
		pthread_mutex_lock(&w->lock);
		if (retry)
			w->own = true; /* etcd still away: again later */
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

static int recovery_start(struct snapfs *fs)
{
	struct recovery_worker *w = calloc(1, sizeof(*w));

	if (!w)
		return -ENOMEM;
	w->fs = fs;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->wake, NULL);
	if (pthread_create(&w->thread, NULL, recovery_loop, w)) {
		free(w);
		return -EAGAIN;
	}
	catalog_set_recovery_hook(fs->cat, host_gone, w);
	fs->recovery = w;
	return 0;
}

static void recovery_stop(struct snapfs *fs)
{
	struct recovery_worker *w = fs->recovery;

	if (!w)
		return;
	catalog_set_recovery_hook(fs->cat, NULL, NULL);
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	pthread_cond_destroy(&w->wake);
	pthread_mutex_destroy(&w->lock);
	free(w);
	fs->recovery = NULL;
}

int snapfs_open(struct snapfs **out, const struct snapfs_options *opts)
{
	struct snapfs *fs = calloc(1, sizeof(*fs));
	int rc;

	if (!fs)
		return -ENOMEM;
	fs->opts = opts;
	fs->mounted_at = time_now_usec();
	chain_memory_set_limit(opts->map_memory_bytes);
	{
		pthread_rwlockattr_t attr;

		/* recovery of own operations must not wait behind a stream of changes */
		pthread_rwlockattr_init(&attr);
		pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
		pthread_rwlock_init(&fs->changes, &attr);
		pthread_rwlockattr_destroy(&attr);
	}
	fs->lock_fd = -1;
	rc = lock_catalog(fs);
	if (rc) {
		free(fs);
		return rc;
	}
	rc = reader_registry_new(&fs->readers);
	if (rc)
		goto fail;
	{
		struct share_file_policy policy = {
			.uid = opts->has_file_uid ? opts->file_uid : SHARE_ID_OF_TOP,
			.gid = opts->has_file_gid ? opts->file_gid : SHARE_ID_OF_TOP,
			.mode = opts->file_mode_bits,
		};

		rc = share_open(&fs->share, opts->share, &policy);
	}
	if (rc)
		goto fail_readers;
	if (opts->etcd) {
		struct catalog_shared_options shared = {opts->etcd, opts->etcd_prefix_used,
							opts->host_name, opts->etcd_ttl_s};

		rc = catalog_open(&fs->cat, opts->catalog_dir, opts->catalog_bytes, &shared);
	} else {
		rc = catalog_open(&fs->cat, opts->catalog_dir, opts->catalog_bytes, NULL);
	}
	if (!rc && opts->etcd && opts->etcd_seed)
		rc = seed_catalog(fs, opts->etcd_seed);
	if (rc)
		goto fail_share;
	rc = recover_all(fs);
	if (!rc && opts->import)
		rc = import_share(fs, opts->import, NULL);
	if (!rc && catalog_is_shared(fs->cat))
		rc = recovery_start(fs);
	if (rc)
		goto fail_catalog;
	*out = fs;
	return 0;
fail_catalog:
	catalog_close(fs->cat);
fail_share:
	share_close(fs->share);
fail_readers:
	reader_registry_free(fs->readers);
fail:
	close(fs->lock_fd);
	pthread_rwlock_destroy(&fs->changes);
	free(fs);
	return rc;
}

void snapfs_close(struct snapfs *fs)
{
	if (!fs)
		return;
	recovery_stop(fs);
	reader_registry_free(fs->readers);
	catalog_close(fs->cat);
	share_close(fs->share);
	close(fs->lock_fd);
	pthread_rwlock_destroy(&fs->changes);
	free(fs);
}

