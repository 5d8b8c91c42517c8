/* snapfs.c - see snapfs.h. */
#include "config.h"
#include "snapfs.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "reader.h"
#include "recover.h"
#include "util.h"

int snapfs_open(struct snapfs **out, const struct snapfs_options *opts)
{
	struct snapfs *fs = calloc(1, sizeof(*fs));
	int rc;

	if (!fs)
		return -ENOMEM;
	fs->opts = opts;
	fs->mounted_at = time_now_usec();
	rc = reader_registry_new(&fs->readers);
	if (rc)
		goto fail;
	rc = share_open(&fs->share, opts->share);
	if (rc)
		goto fail_readers;
	rc = catalog_open(&fs->cat, opts->catalog_dir, opts->catalog_bytes);
	if (rc)
		goto fail_share;
	rc = recover_all(fs);
	if (rc)
		goto fail_catalog;
	*out = fs;
	return 0;
fail_catalog:
	catalog_close(fs->cat);
fail_share:
	share_close(&fs->share);
fail_readers:
	reader_registry_free(fs->readers);
fail:
	free(fs);
	return rc;
}

void snapfs_close(struct snapfs *fs)
{
	if (!fs)
		return;
	reader_registry_free(fs->readers);
	catalog_close(fs->cat);
	share_close(&fs->share);
	free(fs);
}

bool cred_is_admin(const struct snapfs *fs, const struct cred *c)
{
	if (c->uid == 0)
		return true;
	if (!fs->opts->has_admin_gid)
		return false;
	if (c->gid == fs->opts->admin_gid)
		return true;
	for (int i = 0; i < c->ngroups; i++)
		if (c->groups[i] == fs->opts->admin_gid)
			return true;
	return false;
}

void fault_point(const char *step)
{
#ifdef SNAPFS_FAULT_INJECTION
	const char *at = getenv("SNAPFS_CRASH_AT");

	if (at && !strcmp(at, step)) {
		log_err("fault injection: killing the daemon at %s", step);
		raise(SIGKILL);
	}
#else
	(void)step;
#endif
}
