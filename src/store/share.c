/* share.c - see share.h. */
#include "share.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

int share_open(struct share **out, const char *path, const struct share_file_policy *policy)
{
	struct share *share = calloc(1, sizeof(*share));
	struct stat st;
	int rc;

	if (!share)
		return -ENOMEM;
	share->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (share->dirfd < 0 || fstat(share->dirfd, &st) < 0) {
		rc = -errno;
		log_err("cannot open share %s: %s", path, strerror(errno));
		if (share->dirfd >= 0)
			close(share->dirfd);
		free(share);
		return rc;
	}
	share->policy.uid = policy && policy->uid != SHARE_ID_OF_TOP ? policy->uid : st.st_uid;
	share->policy.gid = policy && policy->gid != SHARE_ID_OF_TOP ? policy->gid : st.st_gid;
	share->policy.mode = (policy ? policy->mode : SHARE_FILE_MODE_DEFAULT) & 0777;
	atomic_init(&share->chown_warned, false);
	share->path = strdup(path);
	if (!share->path) {
		close(share->dirfd);
		free(share);
		return -ENOMEM;
	}
	*out = share;
	return 0;
}

void share_close(struct share *share)
{
	if (!share)
		return;
	if (share->dirfd >= 0)
		close(share->dirfd);
	free(share->path);
	free(share);
}

void share_volume_base_name(const char *volume_id, char *out, size_t len)
{
	snprintf(out, len, "volume-%s", volume_id);
}

int share_dir_sync(struct share *share)
{
	if (fsync(share->dirfd) < 0) {
		int rc = -errno;

		log_err("fsync of share %s: %s", share->path, strerror(errno));
		return rc;
	}
	return 0;
}

/* Give the new file fd (name, for log lines) owner uid, group gid and mode.
 * A refused chown (snapfs not root, or root squashed by NFS) is one warning
 * per mount and not an error: the group alone is tried, the mode is set. */
static int file_own(struct share *share, int fd, const char *name, uid_t uid, gid_t gid,
		    mode_t mode)
{
	struct stat st;
	int rc;

	if (fstat(fd, &st) < 0)
		goto fail;
	if ((st.st_uid != uid || st.st_gid != gid) && fchown(fd, uid, gid) < 0) {
		int err = errno;

		if (err != EPERM && err != EINVAL)
			goto fail;
		if (st.st_gid != gid)
			(void)!fchown(fd, (uid_t)-1, gid); /* a group of ours: allowed */
		if (!atomic_exchange(&share->chown_warned, true))
			log_warn("cannot give %s/%s to uid %u gid %u (%s): the files snapfs "
				 "creates on the share keep its own owner (run it as root, or "
				 "set file_owner= and file_group= to ids it may give)",
				 share->path, name, (unsigned)uid, (unsigned)gid, strerror(err));
	}
	if (fchmod(fd, mode) < 0)
		goto fail;
	return 0;
fail:
	rc = -errno;
	log_err("cannot set owner and mode of %s/%s: %s", share->path, name, strerror(errno));
	return rc;
}

/* Create name with O_EXCL, owned as given, open read-write in *fd. */
static int file_create_owned(struct share *share, const char *name, uid_t uid, gid_t gid,
			     mode_t mode, int *fd)
{
	int rc;

	*fd = openat(share->dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (*fd < 0) {
		rc = -errno;
		if (rc != -EEXIST)
			log_err("cannot create %s/%s: %s", share->path, name, strerror(errno));
		return rc;
	}
	rc = file_own(share, *fd, name, uid, gid, mode);
	if (rc) {
		close(*fd);
		*fd = -1;
		unlinkat(share->dirfd, name, 0);
	}
	return rc;
}

int share_file_create(struct share *share, const char *name, share_fill_fn fill, void *arg)
{
	int fd, rc;

	rc = file_create_owned(share, name, share->policy.uid, share->policy.gid,
			       share->policy.mode, &fd);
	if (rc)
		return rc;
	if (fill)
		rc = fill(fd, arg);
	if (!rc && fsync(fd) < 0) {
		rc = -errno;
		log_err("fsync of %s/%s: %s", share->path, name, strerror(errno));
	}
	if (close(fd) < 0 && !rc) {
		rc = -errno;
		log_err("close of %s/%s: %s", share->path, name, strerror(errno));
	}
	if (!rc)
		rc = share_dir_sync(share);
	if (rc)
		unlinkat(share->dirfd, name, 0);
	return rc;
}

struct raw_size {
	struct share *share;
	const char *name;
	uint64_t size;
};

static int raw_fill(int fd, void *arg)
{
	const struct raw_size *r = arg;

	if (ftruncate(fd, (off_t)r->size) < 0) {
		int rc = -errno;

		log_err("cannot size %s/%s: %s", r->share->path, r->name, strerror(errno));
		return rc;
	}
	return 0;
}

int share_raw_create(struct share *share, const char *name, uint64_t size)
{
	struct raw_size r = {share, name, size};
	int rc = share_file_create(share, name, raw_fill, &r);

	if (rc == -EEXIST)
		log_err("cannot create %s/%s: %s", share->path, name, strerror(-rc));
	return rc;
}

int share_raw_extend(struct share *share, const char *name, uint64_t size)
{
	int fd = openat(share->dirfd, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	int rc = 0;

	if (fd < 0) {
		rc = -errno;
		log_err("cannot open %s/%s: %s", share->path, name, strerror(errno));
		return rc;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
	} else if ((uint64_t)st.st_size > size) {
		log_err("refusing to shrink %s/%s", share->path, name);
		rc = -EINVAL;
	} else if (ftruncate(fd, (off_t)size) < 0 || fsync(fd) < 0) {
		rc = -errno;
		log_err("cannot extend %s/%s: %s", share->path, name, strerror(errno));
	}
	close(fd);
	return rc;
}

int share_file_sync(struct share *share, const char *name)
{
	int fd = openat(share->dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0) {
		rc = -errno;
		log_err("fsync of %s/%s: %s", share->path, name, strerror(errno));
	}
	close(fd);
	return rc;
}

int share_file_remove(struct share *share, const char *name)
{
	if (unlinkat(share->dirfd, name, 0) < 0) {
		if (errno == ENOENT)
			return 0;
		log_err("cannot remove %s/%s: %s", share->path, name, strerror(errno));
		return -errno;
	}
	return share_dir_sync(share);
}

int share_file_check_unused(struct share *share, const char *name)
{
	static const off_t qemu_lock_bytes[] = {101, 201};
	int fd = openat(share->dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	for (size_t i = 0; i < sizeof(qemu_lock_bytes) / sizeof(qemu_lock_bytes[0]); i++) {
		struct flock fl = {
			.l_type = F_WRLCK, .l_whence = SEEK_SET,
			.l_start = qemu_lock_bytes[i], .l_len = 1,
		};

		if (fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK) {
			close(fd);
			return log_refuse(-EBUSY,
					  "%s/%s is in use: a process (QEMU?) holds its write lock "
					  "(byte %lld)",
					  share->path, name, (long long)qemu_lock_bytes[i]);
		}
	}
	close(fd);
	return 0;
}

static void info_name(const char *volume_id, char *out, size_t len)
{
	snprintf(out, len, "volume-%s.info", volume_id);
}

int share_info_write(struct share *share, const char *volume_id, const char *text, size_t len)
{
	char name[128], tmp[160];
	struct share_file_policy own = share->policy;
	struct stat old;
	size_t done = 0;
	int fd, rc = 0;

	info_name(volume_id, name, sizeof(name));
	snprintf(tmp, sizeof(tmp), ".%s.tmp", name);
	/* The one it replaces keeps its owner and mode. */
	if (fstatat(share->dirfd, name, &old, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISREG(old.st_mode)) {
			own.uid = old.st_uid;
			own.gid = old.st_gid;
			own.mode = old.st_mode & 07777;
		}
	} else if (errno != ENOENT) {
		rc = -errno;
		goto out;
	}
	unlinkat(share->dirfd, tmp, 0);
	rc = file_create_owned(share, tmp, own.uid, own.gid, own.mode, &fd);
	if (rc)
		goto out;
	while (done < len) {
		ssize_t n = write(fd, text + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			break;
		}
		done += (size_t)n;
	}
	if (!rc && fsync(fd) < 0)
		rc = -errno;
	close(fd);
	if (!rc && renameat(share->dirfd, tmp, share->dirfd, name) < 0)
		rc = -errno;
	if (!rc)
		rc = share_dir_sync(share);
	if (rc)
		unlinkat(share->dirfd, tmp, 0);
out:
	if (rc)
		log_err("cannot write %s/%s: %s", share->path, name, strerror(-rc));
	return rc;
}

int share_info_read(struct share *share, const char *volume_id, json_t **info)
{
	char name[128];
	json_error_t err;
	json_t *j;
	int fd;

	info_name(volume_id, name, sizeof(name));
	fd = openat(share->dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	j = json_loadfd(fd, 0, &err);
	close(fd);
	if (!json_is_object(j)) {
		json_decref(j);
		log_err("%s/%s is not a JSON object: %s", share->path, name, err.text);
		return -EIO;
	}
	*info = j;
	return 0;
}
