/* group.h - consistency groups, their members and group snapshots.
 *
 * A group (OBJ_GROUP, a child of its tenant) keeps its member volumes' inos
 * in members, and each member's link_id is the group's id. A group snapshot
 * (OBJ_CGSNAPSHOT, a child of its group) keeps its member snapshots' inos,
 * and each member snapshot (named as the group snapshot, in its volume's
 * snapshots/) has link_id = the group snapshot's id. Both sides of a link
 * change in one catalogue transaction.
 *
 * A group snapshot is taken at one instant: every member's record first,
 * then every overlay, then a committed "switch" mark, then every .info,
 * then the catalogue in one transaction. Before the mark a failure or a
 * crash removes all of it; from the mark on, recovery completes all of it.
 * Filling a group from a source copies every source first and makes the
 * copies available in one transaction; a failure or a crash removes all.
 *
 * Thread-safe. Every function returns 0 or a negative errno (docs/snapfs.md section 7), with a
 * log line for failures that are not the caller's input.
 */
#ifndef SNAPFS_GROUP_H
#define SNAPFS_GROUP_H

#include <stdbool.h>
#include <stdint.h>

#include "catalog.h"
#include "snapfs.h"

/* The statuses reset-state accepts for groups and for group snapshots. */
bool group_status_is_valid(const char *status);
bool group_snapshot_status_is_valid(const char *status);

/* mkdir tenants/T/consistencygroups/NAME: status available. *ino is the
 * new group's inode. -EEXIST, -EINVAL, -ENAMETOOLONG, -ENOSPC. */
int group_create(struct snapfs *fs, const struct cred *cred, uint64_t tenant, const char *name,
		 uint64_t *ino);

/* rmdir of group ino: -ENOTEMPTY while it has members or group snapshots,
 * -EBUSY while an operation runs on it. */
int group_delete(struct snapfs *fs, const struct cred *cred, uint64_t ino);

/* ln -s TARGET G/volumes/NAME: add the volume TARGET names (relative to
 * G/volumes/, as ../../../volumes/NAME) to group. -EINVAL when TARGET is
 * not a volume of the group's tenant called NAME, or that volume is in
 * another group; -EEXIST when it is a member already; -EBUSY when the
 * volume is not available or in-use or is busy, or the group is not
 * available. On success *ino is the link's inode. */
int group_volume_link(struct snapfs *fs, const struct cred *cred, uint64_t group, const char *name,
		      const char *target, uint64_t *ino);

/* rm G/volumes/NAME: -ENOENT when NAME is no member, -EBUSY as above. */
int group_volume_unlink(struct snapfs *fs, const struct cred *cred, uint64_t group,
			const char *name);

/* setfattr user.add_volumes / user.remove_volumes: NAMES is a comma-separated
 * list of volume names of the group's tenant. All or nothing: -EINVAL when a
 * name is no volume, or (add) the volume is already in a group, or (remove)
 * it is no member of this one. */
int group_volumes_update(struct snapfs *fs, const struct cred *cred, uint64_t group,
			 const char *names, bool add);

/* setfattr user.source on an empty group: SOURCE is "consistencygroups/G1"
 * or "consistencygroups/G1/cgsnapshots/C", relative to the tenant. Creates,
 * for each source volume V (a member of G1, or of C), the volume "<group
 * name>-V" holding a full copy (qemu-img convert) of V or of C's snapshot of
 * V, as members of the group. -EINVAL for a bad path, -ENOTEMPTY when the
 * group has members, -EBUSY when a source is not available or busy,
 * -EEXIST when a new name is taken, -EDQUOT when the copies exceed a quota
 * of the tenant (quota.h), -EIO/-ENOSPC when a copy fails (then
 * no new volume remains). */
int group_fill(struct snapfs *fs, const struct cred *cred, uint64_t group, const char *source);

/* mkdir G/cgsnapshots/NAME: a snapshot NAME of every member at one instant.
 * -EBUSY when the group or a member is not available or is busy, or a
 * process writes a member's active file; -EEXIST when a member already
 * has a snapshot NAME; -EDQUOT when the member snapshots together exceed
 * a quota of the tenant (quota.h); -EIO, -ENOSPC. On failure no member snapshot
 * remains. *ino is the group snapshot's inode. */
int group_snapshot_create(struct snapfs *fs, const struct cred *cred, uint64_t group,
			  const char *name, uint64_t *ino);

/* rmdir (force false, only from available or error: -EBUSY) or
 * user.force_delete (force true, admins only: -EPERM) of group snapshot
 * ino: merges and forgets every member snapshot, then the group snapshot.
 * -EBUSY while a member's disk.raw is open; -EIO (status error_deleting)
 * when a merge fails. */
int group_snapshot_delete(struct snapfs *fs, const struct cred *cred, uint64_t ino, bool force);

/* In txn: drop member snapshot snap from its group snapshot's members
 * (snapshot.c, when the member's record goes). */
int group_snapshot_member_forget(struct catalog_txn *txn, const struct object *snap);

/* Finish or undo the interrupted operation of a group or group snapshot
 * (recover.c). */
int group_recover(struct snapfs *fs, const struct object *obj);

/* JSON array helpers for members: whether ino is listed, add, remove. */
bool members_has(const json_t *members, uint64_t ino);
int members_add(json_t **members, uint64_t ino);
void members_remove(json_t *members, uint64_t ino);

#endif
