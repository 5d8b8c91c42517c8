/* import.h - files that snapfs did not make: validating them, importing a
 * Cinder share (-o import=TENANT), reconciling the volumes it already
 * knows with what Cinder did to their files since, and the manageable/
 * listing.
 *
 * Validation (docs/snapfs.md section 2), the same for import, manageable/ and user.manage:
 *   - the basename is volume-<uuid> (a base) or volume-<uuid>.<uuid> (an
 *     overlay), canonical lower-case uuids, nothing else;
 *   - it is a regular file in the share, not a symlink (O_NOFOLLOW, lstat);
 *   - raw or qcow2 (by magic), and for qcow2 every check qcow2_validate()
 *     makes: no external data file, no unknown incompatible feature, sane
 *     tables;
 *   - a base has no backing file; an overlay is qcow2 and its backing name
 *     is the base or another overlay of the same volume;
 *   - a volume's chain, walked from its active file down to its base
 *     through those names, goes through chain_open(), which checks that each
 *     header names exactly the next file (and its format).
 * Backing names are only followed after they passed these checks, and
 * nothing here writes to the share's files.
 *
 * Threading: every function is thread-safe (no shared state; catalogue
 * access through the caller's transaction or one of its own).
 * Returns 0 or a negative errno unless said otherwise.
 */
#ifndef SNAPFS_IMPORT_H
#define SNAPFS_IMPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog.h"
#include "qcow2.h"
#include "snapfs.h"

enum share_name_kind {
	SHARE_NAME_OTHER = 0, /* not a volume file */
	SHARE_NAME_BASE, /* volume-<uuid> */
	SHARE_NAME_OVERLAY, /* volume-<uuid>.<uuid> */
	SHARE_NAME_INFO, /* volume-<uuid>.info */
};

/* What kind of share file name is. vol_id and snap_id (UUID_STR_LEN bytes
 * each, may be NULL) receive the uuids it holds ("" when none). */
enum share_name_kind import_name_parse(const char *name, char *vol_id, char *snap_id);

/* Check the file name on the share (dirfd) as above, except the chain
 * walk: fills *info (qcow2_validate()) and returns 0 when it may be taken
 * in, -EINVAL with a short cause in reason (len bytes) when not, or the
 * -errno of a failed open/read (reason filled). Does not log. */
int import_file_check(int dirfd, const char *name, struct image_info *info, char *reason,
		      size_t len);

/* A volume's chain, top first, as import_chain_resolve() found it. */
struct import_chain {
	size_t n;
	char (*names)[256];
	enum image_format *formats;
	uint64_t *sizes; /* virtual size of each file */
};

/* Walk volume vol_id's chain from the file top down to its base, checking
 * each file with import_file_check() and the backing names as above
 * (same volume, no loop, at most SNAPSHOT_CHAIN_MAX files, ending at
 * volume-<vol_id> without backing file), then resolve it with chain_open().
 * On success *c holds the chain (free with import_chain_free()). -EINVAL
 * (reason filled) when a file or a link fails, -ENOMEM, -errno of I/O.
 * Does not log, except chain_open()'s own line. */
int import_chain_resolve(int dirfd, const char *vol_id, const char *top, struct import_chain *c,
			 char *reason, size_t len);

/* Release c's arrays (c may be zeroed or half filled). */
void import_chain_free(struct import_chain *c);

/* Would the qcow2 file name open as a new top over volume vol's live chain
 * (as the catalogue resolves it, through txn)? Runs chain_open() over
 * name and that chain. Returns 0, or chain_open()'s -errno (logged). */
int import_overlay_check(struct snapfs *fs, struct catalog_txn *txn, const struct object *vol,
			 const char *name);

/* -o import=TENANT, called by snapfs_open() after recovery, before the
 * mount serves: catalogue every volume of the share (its .info, or a bare
 * volume-<uuid>) that no catalogue object knows, with its snapshots (the
 * .info keys), under tenant (created if missing: root's, mode 0755).
 * A volume keeps its uuid as id and name, a snapshot its uuid as id and
 * name; the volume's size is its active file's virtual size, its format
 * that of its base. Overlays of the chain that .info does not name become
 * hidden layers (snapshot.h). One write transaction per volume. A volume
 * whose files, .info or uuids fail validation or collide with the
 * catalogue is skipped whole, with a log line naming the file and the
 * cause; files are never changed.
 *
 * A volume the catalogue knows (in any tenant) whose .info exists and
 * differs from the catalogue is reconciled with it, when the volume is
 * idle (no op on it or its snapshots, available, its group and its
 * snapshots' group snapshots without op): the chain from .info's active
 * file is checked with import_chain_resolve(), and it must be the
 * catalogue's chain with new overlays on top (snapshots Cinder took: each
 * a new .info key, added as a snapshot named by its uuid, or a hidden
 * layer when no key names it; the top becomes the active file) and
 * without overlays Cinder merged away (snapshots whose key is gone and
 * whose file no longer exists, available or error, no merge begun:
 * forgotten; the layer above moves onto the file below it). The change
 * may not forget or move a snapshot of a group snapshot. Anything else
 * (including a taken uuid or snapshot name) leaves the volume as it is,
 * with one log line naming it and the reason. All changes of a volume
 * are one write transaction: a crash leaves all or none of them.
 *
 * Idempotent: a second run adds nothing. Single-threaded use (mount
 * time). Returns 0 (even when volumes were skipped or left alone), or
 * -errno when the share or the catalogue cannot be read or written
 * (-ENOSPC when the catalogue is full). *added (may be NULL) counts the
 * volumes and snapshots catalogued, including the snapshots a reconcile
 * added. */
int import_share(struct snapfs *fs, const char *tenant, unsigned *added);

/* One entry of tenants/T/manageable/: a volume file of the share that no
 * catalogue object owns (owned: a catalogued volume's base file, or a
 * snapshot's overlay; a hidden layer is not owned, it can be managed).
 * .info files and temporary files are never listed. */
struct manageable {
	char reference[256]; /* the basename on the share */
	char cinder_id[UUID_STR_LEN]; /* snapshot uuid of an overlay, volume uuid of a base; "" */
	uint64_t size; /* bytes: its virtual size (0 when unreadable) */
	bool safe; /* safe_to_manage */
	char reason[256]; /* reason_not_safe when !safe */
};

/* manageable/ entries are regular files with inode numbers outside the
 * catalogue's: INO_MANAGEABLE_BASE | (FNV-1a-64 of the basename, low 62
 * bits). Stable across remounts without any record; the same file has the
 * same inode in every tenant (a hard link, nlink 1). Catalogue inodes
 * (sequence << 4) never reach 2^62. A name whose hash collides with an
 * earlier name in directory order is left out (logged). */
#define INO_MANAGEABLE_BASE (1ULL << 62)

/* The inode number of manageable entry name. */
uint64_t import_manageable_ino(const char *name);

/* True when ino is in the manageable range. */
bool import_ino_is_manageable(uint64_t ino);

/* Call fn(name, ino, arg) for each manageable file, in name order; stops
 * early with fn's non-zero value. Reads the share's directory and the
 * catalogue through txn. */
int import_manageable_list(struct snapfs *fs, struct catalog_txn *txn,
			   int (*fn)(const char *name, uint64_t ino, void *arg), void *arg);

/* The name of the manageable file whose inode is ino into name (len
 * bytes), or of the one called name when ino is 0 (then *ino_out, may be
 * NULL, receives its inode). -ENOENT when there is none. */
int import_manageable_find(struct snapfs *fs, struct catalog_txn *txn, uint64_t ino, char *name,
			   size_t len, uint64_t *ino_out);

/* Describe the manageable file whose inode is ino into *m, checking it
 * (for an overlay, against its volume's chain in the catalogue). -ENOENT
 * when no such manageable file exists. */
int import_manageable_get(struct snapfs *fs, struct catalog_txn *txn, uint64_t ino,
			  struct manageable *m);

#endif
