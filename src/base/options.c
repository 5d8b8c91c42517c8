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

#include "log.h"
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

/* The filesystem SHARE is on, as every host names it: the mount's source
 * (server:/export for NFS), the mount's root inside it, and SHARE's path
 * below the mount point. */
static void share_identity(const char *share, char *out, size_t len)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char line[8192];
	size_t best = 0;

	snprintf(out, len, "%s", share);
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char root[4096], point[4096], *dash = strstr(line, " - "), source[4096], type[256];
		size_t n;

		if (!dash || sscanf(line, "%*s %*s %*s %4095s %4095s", root, point) != 2 ||
		    sscanf(dash + 3, "%255s %4095s", type, source) != 2)
			continue;
		n = strlen(point);
		if (strcmp(point, "/") && (strncmp(share, point, n) || (share[n] && share[n] != '/')))
			continue;
		if (n < best)
			continue;
		best = n;
		snprintf(out, len, "%s:%s%s", source, strcmp(root, "/") ? root : "",
			 strcmp(point, "/") ? share + n : share);
	}
	fclose(f);
}

static int finalize_etcd(struct snapfs_options *o, char *err, size_t errlen)
{
	char host[256], ident[8192];
	uint64_t ttl;

	if (parse_u64(o->etcd_ttl, &ttl) || ttl < 2 || ttl > 300) {
		snprintf(err, errlen, "etcd_ttl=%s: not a number of seconds from 2 to 300",
			 o->etcd_ttl);
		return -EINVAL;
	}
	o->etcd_ttl_s = (unsigned)ttl;
	if (o->host_id && *o->host_id) {
		snprintf(host, sizeof(host), "%s", o->host_id);
	} else if (gethostname(host, sizeof(host))) {
		snprintf(err, errlen, "no host name: give -o host_id=NAME");
		return -EINVAL;
	}
	if (strlen(host) >= 64 || strchr(host, '/') || !object_name_is_valid(host)) {
		snprintf(err, errlen, "host_id=%s: a name of 1 to 63 bytes without '/'", host);
		return -EINVAL;
	}
	o->host_name = strdup(host);
	if (!o->etcd)
		return o->host_name ? 0 : -ENOMEM;
	if (o->etcd_prefix && *o->etcd_prefix) {
		if (o->etcd_prefix[0] != '/' || strlen(o->etcd_prefix) > 200) {
			snprintf(err, errlen, "etcd_prefix=%s: a path from '/' of at most 200 bytes",
				 o->etcd_prefix);
			return -EINVAL;
		}
		o->etcd_prefix_used = strdup(o->etcd_prefix);
	} else {
		share_identity(o->share, ident, sizeof(ident));
		if (asprintf(&o->etcd_prefix_used, "/snapfs/%016llx",
			     (unsigned long long)hash_fnv1a64(ident, strlen(ident))) < 0)
			o->etcd_prefix_used = NULL;
	}
	return o->host_name && o->etcd_prefix_used ? 0 : -ENOMEM;
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
	if (size_parse_bytes(o->map_memory, &o->map_memory_bytes) ||
	    o->map_memory_bytes < 64 * 1024) {
		snprintf(err, errlen, "map_memory=%s: not a size of at least 64K", o->map_memory);
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
	{
		char *end;

		errno = 0;
		o->attr_timeout_s = strtod(o->attr_timeout, &end);
		if (errno || end == o->attr_timeout || *end || !(o->attr_timeout_s >= 0) ||
		    o->attr_timeout_s > 3600) {
			snprintf(err, errlen, "attr_timeout=%s: not a number of seconds from 0 "
					      "to 3600", o->attr_timeout);
			return -EINVAL;
		}
	}
	if (log_level_parse(o->log_level, &o->log_level_value)) {
		snprintf(err, errlen, "log_level=%s: must be error, warning, info or debug",
			 o->log_level);
		return -EINVAL;
	}
	if (!strcmp(o->volume_format, "qcow2")) {
		o->qcow2_volumes = true;
	} else if (strcmp(o->volume_format, "raw")) {
		snprintf(err, errlen, "volume_format=%s: must be raw or qcow2", o->volume_format);
		return -EINVAL;
	}
	if (!strcmp(o->no_snapshot_gb_quota, "true")) {
		o->no_snapshot_gb = true;
	} else if (strcmp(o->no_snapshot_gb_quota, "false")) {
		snprintf(err, errlen, "no_snapshot_gb_quota=%s: must be true or false",
			 o->no_snapshot_gb_quota);
		return -EINVAL;
	}
	rc = resolve_admin_group(o, err, errlen);
	if (!rc)
		rc = resolve_file_policy(o, err, errlen);
	if (!rc)
		rc = finalize_etcd(o, err, errlen);
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
	free(o->etcd_prefix_used);
	free(o->host_name);
	memset(o, 0, sizeof(*o));
}
