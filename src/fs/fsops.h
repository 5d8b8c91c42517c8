/* fsops.h - the FUSE low-level operations table: decode, call the core,
 * reply. No logic of its own beyond mapping requests to core calls.
 */
#ifndef SNAPFS_FSOPS_H
#define SNAPFS_FSOPS_H

#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 14)
#include <fuse_lowlevel.h>

#include "snapfs.h"

/* Per-mount state handed to libfuse as userdata; every handler gets it
 * back with fuse_req_userdata(). */
struct notifier;

/* A file or directory handle the kernel has not released yet. */
struct fh_link {
	struct fh_link *prev, *next;
	void (*drop)(struct fh_link *link); /* frees the handle */
};

struct mount_ctx {
	struct snapfs *fs;
	struct fuse_session *se; /* for invalidation notices */
	uint64_t read_ahead; /* bytes, 0: the kernel's (set before mounting) */
	struct notifier *notifier; /* catalogue changes to the kernel */
	pthread_mutex_t handles_lock;
	struct fh_link handles; /* list head: open handles */
};

/* Set up ctx's list of open handles; before the session is made. */
void fsops_handles_init(struct mount_ctx *ctx);

/* Free the handles the kernel never released: a RELEASE still queued when
 * the file system is unmounted goes with the connection. Call once the
 * session loop has returned (no request runs), before ctx->fs goes. */
void fsops_handles_drop(struct mount_ctx *ctx);

/* Pass every catalogue change to the kernel (invalidate its cached
 * attributes and names): this mount's own as the write commits, before
 * the request replies; other hosts' (several hosts) from a thread of its
 * own, so that the catalogue's watch never waits for the kernel. Call
 * after ctx->fs and ctx->se are set. Returns 0 or -errno. */
int fsops_notifier_start(struct mount_ctx *ctx);

/* Stop that thread; before the session goes. */
void fsops_notifier_stop(struct mount_ctx *ctx);

/* The largest read request, in bytes: main.c passes it as -o max_read and
 * op_init() as conn->max_read (libfuse wants both equal).
 *
 * A spliced reply goes through a pipe that libfuse sizes for the reply
 * plus one page per piece and two more. Without CAP_SYS_RESOURCE a pipe
 * grows only to /proc/sys/fs/pipe-max-size (1 MiB by default), so a 1 MiB
 * request never fits and libfuse falls back to copying the whole reply
 * through a fresh buffer. 896 KiB leaves 128 KiB of room: the reply is
 * spliced while it has at most READ_SPLICE_PIECES pieces, enough for a
 * request that alternates between two layers at every 64 KiB cluster. */
#define SNAPFS_MAX_READ (896 * 1024)

extern const struct fuse_lowlevel_ops snapfs_fsops;

#endif
