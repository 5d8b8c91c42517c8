/* recover.h - finish or undo what a crashed mount left half done.
 *
 * Every multi-step change records its intent (object.op, object.op_arg) in
 * the catalogue before it touches the share. At mount, before the first
 * request, recover_all() looks at every record with an op and:
 *
 *   volume  create  -> undo: remove the file if it was made, forget the record
 *   volume  delete  -> finish: remove the files, forget the record
 *   volume  extend  -> finish: grow the file, record the new size
 *   snapshot create -> finish when .info names its overlay active, else undo
 *   snapshot delete -> finish: commit, rebase, .info, unlink, forget
 *   snapshot manage -> finish when .info names it, else forget the record
 *                      (never the file) and give a hidden layer back
 *   snapshot unmanage -> finish: .info without it, hidden layer, forget
 *
 * With several hosts (etcd), a mount takes only its own host's operations
 * and those of hosts that are gone.
 *
 * Single-threaded (called from snapfs_open()). Returns 0, or -errno when the
 * catalogue cannot be read; an operation that cannot be finished leaves its
 * object in an error status with a log line, and does not stop the mount.
 */
#ifndef SNAPFS_RECOVER_H
#define SNAPFS_RECOVER_H

#include "snapfs.h"

int recover_all(struct snapfs *fs);

/* Several hosts: finish or undo, as above, the operations of hosts that are
 * gone (their lease expired), taking them over first so that exactly one
 * host does each. Runs beside requests (an operation's objects stay busy
 * meanwhile); one call at a time. Returns 0 or -errno. */
int recover_gone_hosts(struct snapfs *fs);

#endif
