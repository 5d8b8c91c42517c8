/* snapshot.h - volume snapshots: create (an overlay), delete (a merge).
 *
 * On the share, as Cinder's NFS driver: taking snapshot S of volume V
 * creates the qcow2 overlay volume-<V>.<S> over V's active file, which
 * becomes the active file; S's data is the backing chain of its overlay.
 * volume-<V>.info maps "active" and each snapshot id to its overlay.
 * Deleting S commits its overlay into its backing file (qemu-img commit)
 * and, when a newer overlay sits on it, rebases that one (-u) onto S's
 * backing; every other snapshot's bytes and the live image stay the same.
 *
 * Each operation records its intent (snapshot op create/delete, volume op
 * "snapshot"/"snapshot-delete") before the share changes; after a crash
 * snapshot_recover() finishes or undoes it. One operation per volume at a
 * time (-EBUSY). Thread-safe; returns 0 or a negative errno (SPEC 5).
 */
#ifndef SNAPFS_SNAPSHOT_H
#define SNAPFS_SNAPSHOT_H

#include <stdbool.h>
#include <stdint.h>

#include "qcow2.h"
#include "snapfs.h"

#define SNAPSHOT_CHAIN_MAX 1024

/* The snapshot statuses reset-state accepts (the API's). */
bool snapshot_status_is_valid(const char *status);

/* mkdir .../volumes/V/snapshots/NAME. volume is V's ino. -EBUSY unless V
 * is available and idle and no process writes its active file; -EEXIST,
 * -EINVAL, -ENAMETOOLONG, -ENOSPC, -EIO. On success *ino is the new
 * snapshot's inode and its status is available. */
int snapshot_create(struct snapfs *fs, const struct cred *cred, uint64_t volume,
		    const char *name, uint64_t *ino);

/* rmdir (force false) or user.force_delete (force true, admins only):
 * merge and forget snapshot ino. Without force only from available or
 * error (-EBUSY). -EBUSY while its disk.raw is open or another operation
 * runs on the volume; -EIO (status error_deleting) when a merge fails. */
int snapshot_delete(struct snapfs *fs, const struct cred *cred, uint64_t ino, bool force);

/* The files of snapshot snap's data, top first, as chain_open() takes
 * them: names[i] (basenames on the share) and formats[i]; *n of them.
 * Returns 0, or -EIO when the catalogue's chain is broken. */
int snapshot_layers(struct catalog_txn *txn, const struct object *snap,
		    char (*names)[256], enum image_format *formats, size_t max, size_t *n);

/* Finish or undo snap's interrupted operation (recover.c). */
int snapshot_recover(struct snapfs *fs, const struct object *snap);

#endif
