/* options.h - the parsed mount options (see mountopts/options.def).
 *
 * The FUSE front end fills the string fields (one per OPTION line); then
 * options_finalize() checks them and computes the typed values.
 * Not thread-safe; used once at start-up.
 */
#ifndef SNAPFS_OPTIONS_H
#define SNAPFS_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "log.h"

struct snapfs_options {
	/* As given (or defaulted), one field per OPTION line. */
#define OPTION(name, type, def, meta, help) char *name;
#define FUSE_OPTION(name, help)
#include "options.def"
#undef OPTION
#undef FUSE_OPTION
	/* Computed by options_finalize(). */
	char *share;            /* real path of SHARE */
	char *catalog_dir;      /* catalogue directory, created if missing */
	uint64_t catalog_bytes;
	uint64_t default_bytes;
	uint64_t read_ahead_bytes; /* 0: keep the kernel's */
	uint64_t map_memory_bytes;
	int qmp_timeout_ms;
	double attr_timeout_s;
	bool qcow2_volumes;
	bool no_snapshot_gb;    /* no_snapshot_gb_quota=true */
	bool has_admin_gid;
	gid_t admin_gid;
	mode_t file_mode_bits;  /* file_mode, at most 0777 */
	bool has_file_uid;      /* file_owner given; else the share's top directory's */
	uid_t file_uid;
	bool has_file_gid;      /* file_group given; else the share's top directory's */
	gid_t file_gid;
	char *etcd_prefix_used;  /* etcd_prefix, or its default; NULL without etcd= */
	char *host_name;        /* host_id, or the host name */
	unsigned etcd_ttl_s;
	enum log_level log_level_value; /* log_level */
};

/* Fill unset fields with the defaults of options.def (strdup'd). */
void options_set_defaults(struct snapfs_options *o);

/* Check every field, resolve SHARE to its real path, compute the catalogue
 * directory and create it. Returns 0, or -errno with a message in err (an
 * errlen-byte buffer) that names the option and the reason. */
int options_finalize(struct snapfs_options *o, const char *share, char *err, size_t errlen);

/* Free every string the options own. */
void options_free(struct snapfs_options *o);

#endif
