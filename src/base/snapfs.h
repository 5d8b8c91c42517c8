/* snapfs.h - the per-mount state and the caller's credentials.
 *
 * The bottom of the layers: every module below the front end receives a
 * struct snapfs, and this header names the modules it points to without
 * including them, so it depends on nothing above it. The state is
 * assembled by mount.h (snapfs_open()); it holds only things that are
 * themselves thread-safe (the catalogue, the share, the reader registry,
 * read-only options) and is shared by every FUSE worker thread.
 */
#ifndef SNAPFS_SNAPFS_H
#define SNAPFS_SNAPFS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "options.h"

struct catalog;
struct share;
struct reader_registry;
struct recovery_worker;

struct snapfs {
	const struct snapfs_options *opts;
	struct catalog *cat;
	struct share *share;
	int64_t mounted_at; /* usec; times of the fixed top directories */
	struct reader_registry *readers; /* open snapshots (reader.h) */
	int lock_fd;        /* flock on <catalogue>/snapfs.lock: one mount per catalogue */
	struct recovery_worker *recovery; /* several hosts: takes over gone hosts' work */
};

/* Who asks: filled by the FUSE layer from the request. */
#define CRED_MAX_GROUPS 64
struct cred {
	uid_t uid;
	gid_t gid;
	int ngroups;
	gid_t groups[CRED_MAX_GROUPS];
};

/* True when c is uid 0 or a member of admin_group. Thread-safe. */
bool cred_is_admin(const struct snapfs *fs, const struct cred *c);

/* Crash points for recovery tests: with --enable-fault-injection, the
 * daemon kills itself with SIGKILL at the step named by the environment
 * variable SNAPFS_CRASH_AT. A no-op otherwise. */
void fault_point(const char *step);

#endif
