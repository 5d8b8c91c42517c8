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
struct mount_ctx {
	struct snapfs *fs;
	struct fuse_session *se; /* for invalidation notices */
};

extern const struct fuse_lowlevel_ops snapfs_fsops;

#endif
