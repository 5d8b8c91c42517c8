/* mount.c - see mount.h. */
#include "config.h"
#include "mount.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "catalog.h"
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

int snapfs_open(struct snapfs **out, const struct snapfs_options *opts)
{
	struct snapfs *fs = calloc(1, sizeof(*fs));
	int rc;

	if (!fs)
		return -ENOMEM;
	fs->opts = opts;
	fs->mounted_at = time_now_usec();
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
	rc = catalog_open(&fs->cat, opts->catalog_dir, opts->catalog_bytes);
	if (rc)
		goto fail_share;
	rc = recover_all(fs);
	if (!rc && opts->import)
		rc = import_share(fs, opts->import, NULL);
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
	free(fs);
	return rc;
}

void snapfs_close(struct snapfs *fs)
{
	if (!fs)
		return;
	reader_registry_free(fs->readers);
	catalog_close(fs->cat);
	share_close(fs->share);
	close(fs->lock_fd);
	free(fs);
}

