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

#include "catalog.h"
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

/* A group snapshot's member: merge and forget snapshot ino as
 * snapshot_delete() with force, although it belongs to a group snapshot. */
int snapshot_delete_member(struct snapfs *fs, uint64_t ino);

/* The steps of a create, for group snapshots (group.c), which run them for
 * every member with one catalogue transaction per step:
 *
 * snapshot_record_add(): in the write transaction txn, load volume into
 * *vol (-EBUSY unless it is available and idle), complete snap (parent,
 * owner, size, overlay and backing names) and insert it (-EEXIST when the
 * volume has a snapshot of that name), and take the volume for the
 * operation (its op says "snapshot").
 * snapshot_overlay_create(): create snap's overlay on vol's active file
 * (-EBUSY when a process writes that file, -ENOSPC, -EIO; nothing left
 * behind on failure).
 * snapshot_info_write(): rewrite vol's .info from the catalogue read
 * through txn with active as the active file, leaving out snapshot skip_id
 * (NULL: none).
 * snapshot_record_finish(): in txn, make snapshot snap_ino available and
 * its overlay the volume's active file; the volume is idle again.
 * snapshot_record_remove(): in txn, forget snapshot snap_ino (its overlay
 * must be gone) and make its volume idle. */
int snapshot_record_add(struct catalog_txn *txn, const struct cred *cred, uint64_t volume,
			struct object *snap, struct object *vol);
int snapshot_overlay_create(struct snapfs *fs, const struct object *snap,
			    const struct object *vol);
int snapshot_info_write(struct snapfs *fs, struct catalog_txn *txn, const struct object *vol,
			const char *active, const char *skip_id);
int snapshot_record_finish(struct catalog_txn *txn, uint64_t snap_ino);
int snapshot_record_remove(struct catalog_txn *txn, uint64_t snap_ino);

/* The files of snapshot snap's data, top first, as chain_open() takes
 * them: names[i] (basenames on the share) and formats[i]; *n of them.
 * Returns 0, or -EIO when the catalogue's chain is broken. */
int snapshot_layers(struct catalog_txn *txn, const struct object *snap,
		    char (*names)[256], enum image_format *formats, size_t max, size_t *n);

/* Finish or undo snap's interrupted operation (recover.c). */
int snapshot_recover(struct snapfs *fs, const struct object *snap);

#endif
