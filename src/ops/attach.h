/* attach.h - attached volumes: the QEMU that runs a volume does its
 * snapshots and merges, asked over QMP (qmp.h).
 *
 * A volume is attached when its record's attach field holds "SOCKET#NODE":
 * the QMP socket of that QEMU and the node name of the block node whose
 * image is the volume's active file (the root of the guest disk's chain).
 * A snapshot's overlay is written by snapfs (as for a detached volume),
 * opened in QEMU as node attach_overlay_node(snapshot id) with no backing
 * (blockdev-add) and put on top of NODE (blockdev-snapshot, or one
 * transaction for a group snapshot); that node becomes the volume's NODE.
 * Merges are block-commit jobs named attach_job_id(snapshot id), started
 * with auto-dismiss off so that their outcome survives a crash of snapfs.
 *
 * Thread-safe. Functions return 0 or a negative errno (docs/snapfs.md section 7): -EIO with
 * a log line when QEMU does not answer or refuses.
 */
#ifndef SNAPFS_ATTACH_H
#define SNAPFS_ATTACH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog.h"
#include "qmp.h"
#include "snapfs.h"

#define ATTACH_NODE_MAX 32 /* QEMU's node names: up to 31 bytes */
#define ATTACH_VALUE_MAX (QMP_SOCKET_PATH_MAX + 1 + ATTACH_NODE_MAX)

struct attach_target {
	char socket[QMP_SOCKET_PATH_MAX + 1];
	char node[ATTACH_NODE_MAX];
};

/* Split value "SOCKET#NODE" (SOCKET an absolute path, NODE a QEMU node
 * name: a letter, then letters, digits, '-', '.', '_'). -EINVAL when it is
 * not one. */
int attach_parse(const char *value, struct attach_target *t);

/* The node name snapfs gives the overlay of snapshot snap_id, and the job
 * id of its merge. */
void attach_overlay_node(const char *snap_id, char *out, size_t len);
void attach_job_id(const char *snap_id, char *out, size_t len);

/* The volume's attach field with its node replaced by node, into out. */
void attach_value_with_node(const char *value, const char *node, char *out, size_t len);

/* setfattr -n user.attach -v SOCKET#NODE on volume ino (admins only, else
 * -EPERM): -EINVAL for a bad value, or when QEMU has no format node NODE
 * whose image is the volume's active file; -EBUSY unless the volume is
 * available and idle; -EIO when QEMU does not answer. Status in-use. */
int volume_attach(struct snapfs *fs, const struct cred *cred, uint64_t ino, const char *value);

/* setfattr -x user.attach (admins only): status available. -ENODATA when
 * it is not attached, -EBUSY while an operation runs on it. */
int volume_detach(struct snapfs *fs, const struct cred *cred, uint64_t ino);

/* Open snapshot snap's overlay (its file on the share) in vol's QEMU as
 * node attach_overlay_node(snap->id), with no backing. */
int attach_overlay_add(struct snapfs *fs, const struct object *vol, const struct object *snap);

/* Close that node again (undo of attach_overlay_add(); 0 when it is not
 * there). */
int attach_overlay_del(struct snapfs *fs, const struct object *vol, const struct object *snap);

/* Put the added overlays of snaps[i] on top of vols[i] for i < n, all in
 * one QMP transaction: every vols[i] must be attached to the same QEMU.
 * All or none are switched. */
int attach_overlays_switch(struct snapfs *fs, const struct object *const *vols,
			   const struct object *const *snaps, size_t n);

/* Where snap's overlay is in vol's QEMU: ATTACH_ABSENT (no such node),
 * ATTACH_ADDED (open, nothing on top of vol's chain changed) or
 * ATTACH_SWITCHED (it is the top of the chain: QEMU writes it). -EIO
 * when QEMU does not answer. */
enum attach_overlay_state { ATTACH_ABSENT, ATTACH_ADDED, ATTACH_SWITCHED };
int attach_overlay_state(struct snapfs *fs, const struct object *vol, const struct object *snap,
			 enum attach_overlay_state *state);

/* Whether QEMU's graph of vol still holds an image of file (the share's
 * basename): *present. -EIO when QEMU does not answer. */
int attach_file_present(struct snapfs *fs, const struct object *vol, const char *file,
			bool *present);

/* Close every node vol's QEMU still has on file once a merge took file
 * out of the chain: nodes opened by blockdev-add (snapfs's overlays, and
 * the operator's own nodes of the image) stay open until blockdev-del and
 * would hold the deleted file (on NFS, a .nfsXXXX file). Format nodes go
 * first, then protocol nodes. Failures (a node still in use, QEMU not
 * answering) are logged only. */
void attach_file_drop(struct snapfs *fs, const struct object *vol, const char *file);

/* block-commit of top (a file below vol's active one) into base, the file
 * below it, while QEMU runs the volume; QEMU writes base's basename into
 * the header of the file above top. job is attach_job_id(snapshot id),
 * progress as in qmp_job_wait(). A job of that id already under way
 * (after a crash of snapfs) is followed rather than started again. */
int attach_commit(struct snapfs *fs, const struct object *vol, const char *top, const char *base,
		  const char *job, qmp_progress_fn progress, void *arg);

#endif
