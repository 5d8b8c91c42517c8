/* options.c - see options.h. */
#include "options.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

static void set_default(char **field, const char *def)
{
	if (!*field && def)
		*field = strdup(def);
}

void options_set_defaults(struct snapfs_options *o)
{
#define OPTION(name, type, def, meta, help) set_default(&o->name, def);
#define FUSE_OPTION(name, help)
#include "options.def"
#undef OPTION
#undef FUSE_OPTION
}

static int default_catalog_dir(struct snapfs_options *o, char *err, size_t errlen)
{
	char base[PATH_MAX], dir[PATH_MAX];
	uint64_t h = hash_fnv1a64(o->share, strlen(o->share));

	if (geteuid() == 0) {
		snprintf(base, sizeof(base), "/var/lib/snapfs");
	} else {
		const char *state = getenv("XDG_STATE_HOME"), *home = getenv("HOME");

		if (state && *state)
			snprintf(base, sizeof(base), "%s/snapfs", state);
		else if (home && *home)
			snprintf(base, sizeof(base), "%s/.local/state/snapfs", home);
		else {
			snprintf(err, errlen, "no HOME or XDG_STATE_HOME: give -o catalog=DIR");
			return -EINVAL;
		}
	}
	if ((size_t)snprintf(dir, sizeof(dir), "%s/%016llx", base, (unsigned long long)h) >=
	    sizeof(dir)) {
		snprintf(err, errlen, "catalogue path too long");
		return -ENAMETOOLONG;
	}
	o->catalog_dir = strdup(dir);
	return o->catalog_dir ? 0 : -ENOMEM;
}

/* A group given as a name or a gid into *gid; -EINVAL with a message naming
 * option opt otherwise. */
static int resolve_group(const char *value, const char *opt, gid_t *gid, char *err,
			 size_t errlen)
{
	struct group grp, *res = NULL;
	char buf[16384];
	uint64_t id;

	if (parse_u64(value, &id) == 0) {
		if (id >= (gid_t)-1) {
			snprintf(err, errlen, "%s=%s: not a gid", opt, value);
			return -EINVAL;
		}
		*gid = (gid_t)id;
		return 0;
	}
	if (!*value || getgrnam_r(value, &grp, buf, sizeof(buf), &res) || !res) {
		snprintf(err, errlen, "%s=%s: no such group", opt, value);
		return -EINVAL;
	}
	*gid = res->gr_gid;
	return 0;
}

/* The same for a user, a name or a uid. */
static int resolve_user(const char *value, const char *opt, uid_t *uid, char *err,
			size_t errlen)
{
	struct passwd pw, *res = NULL;
	char buf[16384];
	uint64_t id;

	if (parse_u64(value, &id) == 0) {
		if (id >= (uid_t)-1) {
			snprintf(err, errlen, "%s=%s: not a uid", opt, value);
			return -EINVAL;
		}
		*uid = (uid_t)id;
		return 0;
	}
	if (!*value || getpwnam_r(value, &pw, buf, sizeof(buf), &res) || !res) {
		snprintf(err, errlen, "%s=%s: no such user", opt, value);
		return -EINVAL;
	}
	*uid = res->pw_uid;
	return 0;
}

/* Octal permission bits, at most 0777 ("660", "0660"). */
static int parse_file_mode(const char *value, mode_t *mode, char *err, size_t errlen)
{
	unsigned long v = 0;
	const char *p = value;

	for (; *p >= '0' && *p <= '7' && v <= 07777; p++)
		v = v * 8 + (unsigned long)(*p - '0');
	if (p == value || *p || v > 0777) {
		snprintf(err, errlen, "file_mode=%s: not an octal mode from 0 to 0777 "
				      "(permission bits only)", value);
		return -EINVAL;
	}
	*mode = (mode_t)v;
	return 0;
}

static int resolve_file_policy(struct snapfs_options *o, char *err, size_t errlen)
{
	int rc = parse_file_mode(o->file_mode, &o->file_mode_bits, err, errlen);

	if (!rc && o->file_owner) {
		rc = resolve_user(o->file_owner, "file_owner", &o->file_uid, err, errlen);
		o->has_file_uid = !rc;
	}
	if (!rc && o->file_group) {
		rc = resolve_group(o->file_group, "file_group", &o->file_gid, err, errlen);
		o->has_file_gid = !rc;
	}
	return rc;
}

static int resolve_admin_group(struct snapfs_options *o, char *err, size_t errlen)
{
	int rc;

	if (!o->admin_group)
		return 0;
	rc = resolve_group(o->admin_group, "admin_group", &o->admin_gid, err, errlen);
	o->has_admin_gid = !rc;
	return rc;
}

int options_finalize(struct snapfs_options *o, const char *share, char *err, size_t errlen)
{
	char real[PATH_MAX];
	int rc;

	if (!realpath(share, real)) {
		snprintf(err, errlen, "share %s: %s", share, strerror(errno));
		return -errno;
	}
	o->share = strdup(real);
	if (!o->share)
		return -ENOMEM;
	if (size_parse_bytes(o->default_size, &o->default_bytes) || o->default_bytes == 0 ||
	    o->default_bytes % GIB) {
		snprintf(err, errlen, "default_size=%s: not a whole number of GiB",
			 o->default_size);
		return -EINVAL;
	}
	if (size_parse_bytes(o->catalog_size, &o->catalog_bytes) ||
	    o->catalog_bytes < 256 * 1024) {
		snprintf(err, errlen, "catalog_size=%s: not a size of at least 256K",
			 o->catalog_size);
		return -EINVAL;
	}
	if (size_parse_bytes(o->read_ahead, &o->read_ahead_bytes) || o->read_ahead_bytes > GIB ||
	    o->read_ahead_bytes % 4096) {
		snprintf(err, errlen, "read_ahead=%s: not a multiple of 4K up to 1G",
			 o->read_ahead);
		return -EINVAL;
	}
	{
		uint64_t ms;

		if (parse_u64(o->qmp_timeout, &ms) || ms == 0 || ms > 3600000) {
			snprintf(err, errlen, "qmp_timeout=%s: not a number of milliseconds "
					      "from 1 to 3600000", o->qmp_timeout);
			return -EINVAL;
		}
		o->qmp_timeout_ms = (int)ms;
	}
	if (!strcmp(o->volume_format, "qcow2")) {
		o->qcow2_volumes = true;
	} else if (strcmp(o->volume_format, "raw")) {
		snprintf(err, errlen, "volume_format=%s: must be raw or qcow2", o->volume_format);
		return -EINVAL;
	}
	rc = resolve_admin_group(o, err, errlen);
	if (!rc)
		rc = resolve_file_policy(o, err, errlen);
	if (rc)
		return rc;
	if (o->catalog && *o->catalog) {
		o->catalog_dir = strdup(o->catalog);
		if (!o->catalog_dir)
			return -ENOMEM;
	} else {
		rc = default_catalog_dir(o, err, errlen);
		if (rc)
			return rc;
	}
	if (!strncmp(o->catalog_dir, o->share, strlen(o->share)) &&
	    (o->catalog_dir[strlen(o->share)] == '/' || !o->catalog_dir[strlen(o->share)]))
		fprintf(stderr, "snapfs: warning: catalogue %s is inside the share; LMDB must "
				"not live on NFS\n", o->catalog_dir);
	rc = mkdir_parents(o->catalog_dir, 0700);
	if (rc) {
		snprintf(err, errlen, "catalogue directory %s: %s", o->catalog_dir, strerror(-rc));
		return rc;
	}
	return 0;
}

void options_free(struct snapfs_options *o)
{
#define OPTION(name, type, def, meta, help) free(o->name);
#define FUSE_OPTION(name, help)
#include "options.def"
#undef OPTION
#undef FUSE_OPTION
	free(o->share);
	free(o->catalog_dir);
	memset(o, 0, sizeof(*o));
}
