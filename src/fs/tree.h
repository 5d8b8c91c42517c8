/* tree.h - the path/inode model: which object or fixed entry an inode is.
 *
 *   /                       ino 1      tenants/ ino 2     by-id/ ino 3
 *   /status.json            ino 4 (the operator's view, status.h)
 *   an object               its catalogue ino (a multiple of 16)
 *   a fixed entry inside    object ino | slot (volumes/, info.json, ...)
 *   by-id/<uuid>            object ino | SLOT_BYID
 *   a group's volumes/<V>   V's ino | SLOT_MEMBER_LINK (a volume is in one
 *                           group at most)
 *   a group snapshot's <V>  the member snapshot's ino | SLOT_MEMBER_LINK
 *   manageable/<file>       INO_MANAGEABLE_BASE | hash of the file's name
 *                           (import.h), the same in every tenant
 *   a pair of objects       INO_CHANGES_BASE | kind << 58 | newer's
 *                           sequence << 29 | older's sequence (below):
 *                           snapshots/S/changes/<O>, changes.json/<O>,
 *                           cgsnapshots/C/changes/<OC>/ and
 *                           changes.json/<OC>/ (whose <V> entries are the
 *                           member snapshots' changes files themselves)
 *
 * So every inode number is stable across remounts and computed, not stored.
 * Read-only: these functions change nothing. Each runs in one read
 * transaction of its own; all are thread-safe. They return 0 or -errno:
 * -ENOENT (no such entry), -ENOTDIR, -EIO.
 */
#ifndef SNAPFS_TREE_H
#define SNAPFS_TREE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "catalog.h"
#include "snapfs.h"

#define INO_ROOT 1
#define INO_TENANTS 2
#define INO_BYID 3
#define INO_STATUS 4

/* Pairs (changes/): the sequence (ino >> INO_SLOT_BITS) of each object
 * in 29 bits; objects past that have no changes/ entries. */
#define INO_CHANGES_BASE (1ULL << 63)
#define INO_CHANGES_SEQ_BITS 29
enum changes_kind {
	CHANGES_FILE = 0,    /* snapshots/S/changes/<O> */
	CHANGES_JSON = 1,    /* snapshots/S/changes.json/<O> */
	CHANGES_CG_DIR = 2,  /* cgsnapshots/C/changes/<OC>/ */
	CHANGES_CG_JSON = 3, /* cgsnapshots/C/changes.json/<OC>/ */
};

#define SLOT_MEMBER_LINK 14
#define SLOT_BYID 15

enum node_type {
	NODE_ROOT = 1,
	NODE_TENANTS,
	NODE_BYID,
	NODE_BYID_LINK,          /* by-id/<uuid> */
	NODE_OBJECT,             /* tenant, volume, snapshot, group, cgsnapshot */
	NODE_INFO_JSON,          /* info.json of an object */
	NODE_DISK_RAW,           /* disk.raw of a snapshot */
	NODE_TENANT_VOLUMES,     /* tenants/T/volumes/ */
	NODE_TENANT_GROUPS,      /* tenants/T/consistencygroups/ */
	NODE_TENANT_MANAGEABLE,  /* tenants/T/manageable/ */
	NODE_VOLUME_SNAPSHOTS,   /* volumes/V/snapshots/ */
	NODE_GROUP_VOLUMES,      /* consistencygroups/G/volumes/ */
	NODE_GROUP_CGSNAPSHOTS,  /* consistencygroups/G/cgsnapshots/ */
	NODE_MEMBER_LINK,        /* G/volumes/<V>, G/cgsnapshots/C/<V> */
	NODE_MANAGEABLE_FILE,    /* manageable/<file>: obj.file is its name (import.h) */
	NODE_STATUS,             /* /status.json */
	NODE_CHANGES_DIR,        /* snapshots/S/changes/, cgsnapshots/C/changes/ */
	NODE_CHANGES_JSON_DIR,   /* the same, changes.json/ */
	NODE_CHANGES_FILE,       /* changes/<O>: obj is S, older is O */
	NODE_CHANGES_JSON,       /* changes.json/<O> */
	NODE_CG_CHANGES_DIR,     /* cgsnapshots/C/changes/<OC>/: obj is C, older OC */
	NODE_CG_CHANGES_JSON_DIR, /* cgsnapshots/C/changes.json/<OC>/ */
};

/* A resolved inode: its type, the object it belongs to (obj.kind is
 * OBJ_NONE for the three top directories) and the owner and mode it shows.
 * tree_node_clear() releases it. */
struct node {
	uint64_t ino;
	enum node_type type;
	struct object obj;
	uint32_t uid, gid, mode; /* mode includes the S_IF* type bits */
	uint64_t older;          /* a pair's older object (changes/) */
};

/* One directory entry of a listing. */
struct dir_entry {
	char name[256];
	uint64_t ino;
	uint32_t type; /* S_IFDIR, S_IFREG or S_IFLNK */
};

struct dir_listing {
	size_t count, cap;
	struct dir_entry *entries;
};

/* The directory that lists the catalogue children (parent, kind): e.g. a
 * tenant's volumes/ for kind OBJ_VOLUME; 0 for none. */
uint64_t tree_children_dir(uint64_t parent, enum object_kind kind);

/* Resolve ino within txn. */
int tree_node_load(struct snapfs *fs, struct catalog_txn *txn, uint64_t ino, struct node *node);

void tree_node_clear(struct node *node);

/* Resolve ino in a read transaction of its own. */
int tree_node_get(struct snapfs *fs, uint64_t ino, struct node *node);

/* Find the entry name in the directory parent; sets *st to its attributes. */
int tree_lookup(struct snapfs *fs, uint64_t parent, const char *name, struct stat *st);

/* Attributes of ino. */
int tree_getattr(struct snapfs *fs, uint64_t ino, struct stat *st);

/* The same within the caller's transaction (a directory listing's batch). */
int tree_getattr_txn(struct snapfs *fs, struct catalog_txn *txn, uint64_t ino, struct stat *st);

/* Attributes of an already loaded node (no catalogue access except for the
 * size of info.json and links). */
int tree_node_stat(struct snapfs *fs, struct catalog_txn *txn, const struct node *node,
		   struct stat *st);

/* All entries of directory ino ("." and ".." included), in a stable order.
 * On success the caller frees *out with tree_listing_free(). */
int tree_readdir(struct snapfs *fs, uint64_t ino, struct dir_listing **out);

void tree_listing_free(struct dir_listing *listing);

/* Target of the symbolic link ino, NUL-terminated, into buf. */
int tree_readlink(struct snapfs *fs, uint64_t ino, char *buf, size_t len);

/* Path of obj from the root without a leading '/', e.g.
 * "tenants/T/volumes/V". */
int tree_object_path(struct catalog_txn *txn, const struct object *obj, char *buf, size_t len);

/* Path of inode ino from the root without a leading '/' (the root is "."),
 * with "/name" appended when name is not NULL: what a log line names.
 * Falls back to "inode N" when the inode is gone; never fails. */
void tree_ino_path(struct snapfs *fs, uint64_t ino, const char *name, char *buf, size_t len);

/* The inode of the pair (newer, older) of the given kind; 0 when a
 * sequence does not fit. */
uint64_t tree_changes_ino(enum changes_kind kind, uint64_t newer, uint64_t older);

/* The contents of info.json (ino is its inode): malloc'd text in *data of
 * *len bytes, which the caller frees. */
int tree_read_info(struct snapfs *fs, uint64_t ino, char **data, size_t *len);

#endif
