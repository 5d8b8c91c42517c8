/* snapfs.h - the per-mount state and the caller's credentials.
 *
 * One struct snapfs per mount, shared by every FUSE worker thread; it holds
 * only things that are themselves thread-safe (the catalogue, the share's
 * directory descriptor, read-only options).
 */
#ifndef SNAPFS_SNAPFS_H
#define SNAPFS_SNAPFS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "catalog.h"
#include "options.h"
#include "share.h"

struct reader_registry;

struct snapfs {
	const struct snapfs_options *opts;
	struct catalog *cat;
	struct share share;
	int64_t mounted_at; /* usec; times of the fixed top directories */
	struct reader_registry *readers; /* open snapshots (reader.h) */
	int lock_fd;        /* flock on <catalogue>/snapfs.lock: one mount per catalogue */
};

/* Who asks: filled by the FUSE layer from the request. */
#define CRED_MAX_GROUPS 64
struct cred {
	uid_t uid;
	gid_t gid;
	int ngroups;
	gid_t groups[CRED_MAX_GROUPS];
};

/* Open the share and the catalogue named by opts (options_finalize()d), and
 * finish or undo what a crashed mount left half done (recover.h); with
 * -o import=TENANT, then import the share's unknown volumes (import.h). Takes an
 * exclusive lock on the catalogue directory: -EBUSY when another snapfs
 * holds it. LMDB must not cross fork(): open in the process that serves.
 * Returns 0 and *out, or -errno with a log line. */
int snapfs_open(struct snapfs **out, const struct snapfs_options *opts);

/* Close what snapfs_open() opened. No request may be running. */
void snapfs_close(struct snapfs *fs);

/* True when c is uid 0 or a member of admin_group. */
bool cred_is_admin(const struct snapfs *fs, const struct cred *c);

/* Crash points for recovery tests: with --enable-fault-injection, the
 * daemon kills itself with SIGKILL at the step named by the environment
 * variable SNAPFS_CRASH_AT. A no-op otherwise. */
void fault_point(const char *step);

#endif
