/* object.h - changes common to every kind of object: rename, owner and
 * mode, and the read-modify-write of one record.
 *
 * Thread-safe; each call is one write transaction, all or nothing. Returns
 * 0 or a negative errno (docs/snapfs.md section 7), with a log line for failures that
 * are not the caller's input.
 */
#ifndef SNAPFS_OBJECT_H
#define SNAPFS_OBJECT_H

#include <stdint.h>
#include <sys/types.h>

#include "catalog.h"
#include "snapfs.h"

/* Load object ino in a write transaction, let fn check and change it (fn may
 * read other records through txn; it returns 0 or -errno, and a non-zero
 * return changes nothing), stamp updated_at and commit.
 * fn must be quick: the catalogue's writer lock is held while it runs. */
int object_modify(struct snapfs *fs, uint64_t ino, int (*fn)(struct catalog_txn *txn, struct object *obj, void *arg),
		  void *arg);

/* Which of owner, group and mode to change. */
#define OBJECT_SET_MODE 1
#define OBJECT_SET_UID 2
#define OBJECT_SET_GID 4

/* chmod / chown / chgrp of the object directory ino: admins only (-EPERM).
 * mode keeps only its permission bits (07777). */
int object_set_owner(struct snapfs *fs, const struct cred *cred, uint64_t ino, int what,
		     mode_t mode, uid_t uid, gid_t gid);

/* Rename the object ino (a directory entry of a tenants/, volumes/, ...
 * container) to new_name in the same container. -EEXIST when taken,
 * -EINVAL for a bad name, -EPERM for a tenant renamed by a non-admin. */
int object_rename(struct snapfs *fs, const struct cred *cred, uint64_t ino,
		  const char *new_name);

/* mkdir tenants/NAME: admins only. mode is mkdir's (umask applied). The new
 * tenant is owned by the caller. On success *ino is its inode. */
int tenant_create(struct snapfs *fs, const struct cred *cred, const char *name, mode_t mode,
		  uint64_t *ino);

/* rmdir tenants/NAME: admins only; -ENOTEMPTY while it has volumes or
 * groups. */
int tenant_delete(struct snapfs *fs, const struct cred *cred, uint64_t ino);

#endif
