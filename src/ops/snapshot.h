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
 * time (-EBUSY). Thread-safe; returns 0 or a negative errno (docs/snapfs.md section 7).
 */
#ifndef SNAPFS_SNAPSHOT_H
#define SNAPFS_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog.h"
#include "qcow2.h"
#include "snapfs.h"

#define SNAPSHOT_CHAIN_MAX 1024

/* The snapshot statuses reset-state accepts (the API's). */
bool snapshot_status_is_valid(const char *status);

/* mkdir .../volumes/V/snapshots/NAME. volume is V's ino. -EBUSY unless V
 * is available and idle and no process writes its active file; -EEXIST,
 * -EINVAL, -ENAMETOOLONG, -EDQUOT (over a quota of the tenant, quota.h),
 * -ENOSPC, -EIO. On success *ino is the new
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
/* A group snapshot's delete records every member's delete at once, in its
 * own write transaction txn, under reader_exclude_many() of the members:
 * snapshot_delete_member_record() makes the same checks and records as
 * step 1 of snapshot_delete_member() (-EBUSY, a refusal, when the
 * snapshot or its volume is busy, or it is open on another host);
 * snapshot_delete_recorded() then runs the merge (the steps after it;
 * -EINVAL when the delete is not recorded). */
int snapshot_delete_member_record(struct snapfs *fs, struct catalog_txn *txn, uint64_t ino);
int snapshot_delete_recorded(struct snapfs *fs, uint64_t ino);
/* A member's delete recorded that will not run (the group snapshot's
 * delete stopped at another member): status error_deleting, its volume
 * free again; nothing to do when it is not recorded. */
int snapshot_delete_abandon(struct snapfs *fs, uint64_t ino);

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
/* snapshot_layers(), and merging[i]: whether file i is the overlay of a
 * snapshot whose delete began (a merge under way, here or on another host,
 * is moving its data into the file below: struct chain_layer's merging). */
int snapshot_layers_merging(struct catalog_txn *txn, const struct object *snap,
			    char (*names)[256], enum image_format *formats, bool *merging,
			    size_t max, size_t *n);

/* changes/ (reader.h): snapshot older is older than snapshot newer when
 * both belong to the same volume, neither is being created or deleted
 * (no operation, no merge begun), and older's top file lies below
 * newer's top file in newer's chain: newer's content is older's plus
 * what the files above that one hold.
 * snapshot_is_older(): 0 when it is, -ENOENT when not, -EIO (newer's
 * chain is broken), -ENOMEM.
 * snapshot_older_foreach(): call fn(older, arg) for each snapshot older
 * than newer, in name order; stops early with fn's non-zero value.
 * Read-only, within the caller's transaction; thread-safe. */
int snapshot_is_older(struct catalog_txn *txn, const struct object *newer,
		      const struct object *older);
int snapshot_older_foreach(struct catalog_txn *txn, const struct object *newer,
			   int (*fn)(const struct object *older, void *arg), void *arg);

/* Hidden layers: overlays of a volume's chain that no snapshot names
 * (an unmanaged snapshot's overlay, one found by import without a .info
 * key, or one snapfs put on top of an attached volume), kept in the
 * volume's record (members: [file, backing] pairs, [file, backing,
 * "snapfs"] for snapfs's own) so that the chain still resolves. Pure record edits: the caller
 * loads and updates vol in its transaction.
 * snapshot_hidden_get(): true when file is one; its backing into backing
 * (len bytes; backing may be NULL).
 * snapshot_hidden_set(): add file over backing, or move it onto backing;
 * 0 or -ENOMEM.
 * snapshot_hidden_remove(): forget file (nothing when it is not one).
 * snapshot_hidden_any(): true when vol has at least one.
 * snapshot_hidden_mark_own(): file is an overlay snapfs put on top itself
 * (to merge an attached volume's newest snapshot), not an unmanaged
 * snapshot's (-ENOENT when file is no hidden layer).
 * snapshot_hidden_unmanaged_any(): true when vol has a hidden layer that
 * is not marked so. */
bool snapshot_hidden_get(const struct object *vol, const char *file, char *backing,
			 size_t len);
int snapshot_hidden_set(struct object *vol, const char *file, const char *backing);
void snapshot_hidden_remove(struct object *vol, const char *file);
bool snapshot_hidden_any(const struct object *vol);
int snapshot_hidden_mark_own(struct object *vol, const char *file);
bool snapshot_hidden_unmanaged_any(const struct object *vol);

/* setfattr -n user.manage -v FILE .../volumes/V/snapshots (admins only,
 * else -EPERM): adopt FILE as a snapshot of volume (V's ino), named and
 * identified by FILE's snapshot uuid, status available. FILE must be
 * volume-<V>.<uuid>, a regular file that import_file_check() accepts, and
 * either a qcow2 overlay whose backing is V's active file (it becomes the
 * active file, as after a snapshot) or a hidden layer of V. .info is
 * rewritten atomically. -EINVAL with a log line when FILE does not
 * qualify (also when it does not exist); -EEXIST when the uuid or name is taken; -EBUSY when V is
 * busy or not available or a process writes FILE; -EDQUOT (quota.h); -ENOSPC; -EIO. Recorded as op
 * "manage" (never removes FILE on undo). */
int snapshot_manage(struct snapfs *fs, const struct cred *cred, uint64_t volume,
		    const char *file);

/* setfattr -n user.unmanage -v 1 SNAPSHOT (admins only, else -EPERM):
 * forget snapshot ino; its overlay stays on the share as a hidden layer of
 * the volume, so the chain and every other snapshot still read; .info
 * drops its key. -EBUSY unless it is idle and available or error, or when
 * it belongs to a group snapshot or its disk.raw is open. Recorded as op
 * "unmanage" (status unmanaging), which recovery finishes. */
int snapshot_unmanage(struct snapfs *fs, const struct cred *cred, uint64_t ino);

/* For the interrupted create of snap (status creating): *switched when
 * its volume is attached and QEMU has put the overlay on top (the guest
 * may have written it: the create must be finished), or QEMU is gone and
 * no process writes the volume's files. -EIO when QEMU does not answer but
 * still holds them (decide later). */
int snapshot_create_switched(struct snapfs *fs, const struct object *snap, bool *switched);

/* Finish or undo snap's interrupted operation (recover.c). */
int snapshot_recover(struct snapfs *fs, const struct object *snap);

/* -EBUSY (with a log line) when snap's disk.raw is open on another host
 * (catalog_held_elsewhere()), -EIO when that cannot be known, else 0. */
int snapshot_check_unread(struct snapfs *fs, const struct object *snap);

#endif
