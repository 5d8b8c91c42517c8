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

int share_open(struct share **out, const char *path)
{
	struct share *share = calloc(1, sizeof(*share));
	int rc;

	if (!share)
		return -ENOMEM;
	share->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (share->dirfd < 0) {
		rc = -errno;
		log_err("cannot open share %s: %s", path, strerror(errno));
		free(share);
		return rc;
	}
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

int share_raw_create(struct share *share, const char *name, uint64_t size)
{
	int fd = openat(share->dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			0660);
	int rc = 0;

	if (fd < 0) {
		rc = -errno;
		log_err("cannot create %s/%s: %s", share->path, name, strerror(errno));
		return rc;
	}
	if (ftruncate(fd, (off_t)size) < 0 || fsync(fd) < 0) {
		rc = -errno;
		log_err("cannot size %s/%s: %s", share->path, name, strerror(errno));
	}
	close(fd);
	if (!rc)
		rc = share_dir_sync(share);
	if (rc)
		unlinkat(share->dirfd, name, 0);
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
			log_err("%s/%s is in use: a process (QEMU?) holds its write lock (byte %lld)",
				share->path, name, (long long)qemu_lock_bytes[i]);
			return -EBUSY;
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
	size_t done = 0;
	int fd, rc = 0;

	info_name(volume_id, name, sizeof(name));
	snprintf(tmp, sizeof(tmp), ".%s.tmp", name);
	unlinkat(share->dirfd, tmp, 0);
	fd = openat(share->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0660);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
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
