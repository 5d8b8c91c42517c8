/* volume.h - volumes: create, delete, extend, reset-state.
 *
 * Each change is a small state machine: the intent (op, op_arg) is committed
 * to the catalogue before the share changes, so that recover.c can finish or
 * undo it after a crash. One operation per volume at a time: a second one
 * gets -EBUSY. No catalogue write transaction is held while files change.
 * Thread-safe. Returns 0 or a negative errno (docs/snapfs.md section 7).
 */
#ifndef SNAPFS_VOLUME_H
#define SNAPFS_VOLUME_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "catalog.h"
#include "snapfs.h"

/* The volume statuses reset-state accepts (the API's). */
bool volume_status_is_valid(const char *status);

/* mkdir tenants/T/volumes/NAME: creates volume-<uuid> on the share (raw
 * sparse or qcow2, of default_size) and the record, status available.
 * tenant is the tenant's ino. On success *ino is the volume's inode.
 * -EEXIST, -EINVAL (bad name), -EDQUOT (over a quota of the tenant,
 * quota.h), -ENOSPC, -EIO. */
int volume_create(struct snapfs *fs, const struct cred *cred, uint64_t tenant, const char *name,
		  uint64_t *ino);

/* Create vol's empty base file on the share (vol->file, raw sparse or
 * qcow2 as vol->format says, of vol->size bytes), claimed with O_EXCL and
 * synced; nothing is left behind on failure. */
int volume_file_create(struct snapfs *fs, const struct object *vol);

/* rmdir: removes the volume file and the record. -ENOTEMPTY with
 * snapshots; -EBUSY unless the status allows deletion or force is set
 * (force: admins only, -EPERM) or while another operation runs. */
int volume_delete(struct snapfs *fs, const struct cred *cred, uint64_t ino, bool force);

/* setfattr user.size: grow the volume to size bytes (a whole number of GiB
 * larger than now: -EINVAL otherwise); status available only (-EBUSY);
 * -EDQUOT when the growth would exceed the tenant's gigabytes quota. */
int volume_extend(struct snapfs *fs, const struct cred *cred, uint64_t ino, uint64_t size);

/* The last step of a delete (also after a crash): remove the volume's
 * file and .info, then its record; status error_deleting and -EIO when a
 * file cannot be removed. */
int volume_delete_finish(struct snapfs *fs, uint64_t ino, const char *file,
			 const char *volume_id);

/* Finish an extend recorded before a crash: grow the file to op_arg bytes
 * and make the record say so. Used by recover.c. */
int volume_extend_finish(struct snapfs *fs, uint64_t ino);

#endif
