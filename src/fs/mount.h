/* mount.h - assemble and take apart one mount's state (snapfs.h).
 *
 * The top of the core: it opens the stores (share, catalogue), runs the
 * operations' crash recovery and the import, and hands the finished state
 * to the front end. Nothing below includes this header.
 */
#ifndef SNAPFS_MOUNT_H
#define SNAPFS_MOUNT_H

#include "snapfs.h"

/* Open the share and the catalogue named by opts (options_finalize()d), and
 * finish or undo what a crashed mount left half done (recover.h); with
 * -o import=TENANT, then import the share's unknown volumes (import.h). Takes an
 * exclusive lock on the catalogue directory: -EBUSY when another snapfs
 * holds it. LMDB must not cross fork(): open in the process that serves.
 * Returns 0 and *out, or -errno with a log line. Not thread-safe: call once
 * per mount, before the first request. */
int snapfs_open(struct snapfs **out, const struct snapfs_options *opts);

/* Close what snapfs_open() opened; fs may be NULL. No request may be
 * running. */
void snapfs_close(struct snapfs *fs);

#endif
