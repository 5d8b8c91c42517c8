/* tree.c - see tree.h. */
#include "tree.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "import.h"
#include "json.h"
#include "log.h"
#include "reader.h"
#include "snapshot.h"

/* The fixed entries inside each kind of object directory. */
struct fixed_entry {
	enum object_kind kind;
	unsigned slot;
	const char *name;
	enum node_type type;
};

static const struct fixed_entry fixed_entries[] = {
	{OBJ_TENANT, 1, "volumes", NODE_TENANT_VOLUMES},
	{OBJ_TENANT, 2, "consistencygroups", NODE_TENANT_GROUPS},
	{OBJ_TENANT, 3, "manageable", NODE_TENANT_MANAGEABLE},
	{OBJ_VOLUME, 1, "info.json", NODE_INFO_JSON},
	{OBJ_VOLUME, 2, "snapshots", NODE_VOLUME_SNAPSHOTS},
	{OBJ_SNAPSHOT, 1, "info.json", NODE_INFO_JSON},
	{OBJ_SNAPSHOT, 2, "disk.raw", NODE_DISK_RAW},
	{OBJ_SNAPSHOT, 3, "changes", NODE_CHANGES_DIR},
	{OBJ_SNAPSHOT, 4, "changes.json", NODE_CHANGES_JSON_DIR},
	{OBJ_GROUP, 1, "info.json", NODE_INFO_JSON},
	{OBJ_GROUP, 2, "volumes", NODE_GROUP_VOLUMES},
	{OBJ_GROUP, 3, "cgsnapshots", NODE_GROUP_CGSNAPSHOTS},
	{OBJ_CGSNAPSHOT, 1, "info.json", NODE_INFO_JSON},
	{OBJ_CGSNAPSHOT, 2, "changes", NODE_CHANGES_DIR},
	{OBJ_CGSNAPSHOT, 3, "changes.json", NODE_CHANGES_JSON_DIR},
};

/* Which catalogue children a container directory lists: (kind of its
 * owning object, node type) -> kind of the children. */
static enum object_kind container_child_kind(enum node_type type)
{
	switch (type) {
	case NODE_TENANTS:
		return OBJ_TENANT;
	case NODE_TENANT_VOLUMES:
		return OBJ_VOLUME;
	case NODE_TENANT_GROUPS:
		return OBJ_GROUP;
	case NODE_VOLUME_SNAPSHOTS:
		return OBJ_SNAPSHOT;
	case NODE_GROUP_CGSNAPSHOTS:
		return OBJ_CGSNAPSHOT;
	default:
		return OBJ_NONE;
	}
}

uint64_t tree_children_dir(uint64_t parent, enum object_kind kind)
{
	if (kind == OBJ_TENANT)
		return INO_TENANTS;
	for (size_t i = 0; i < sizeof(fixed_entries) / sizeof(fixed_entries[0]); i++)
		if (container_child_kind(fixed_entries[i].type) == kind)
			return parent | fixed_entries[i].slot;
	return 0;
}

static bool node_is_dir(enum node_type type)
{
	return type != NODE_BYID_LINK && type != NODE_INFO_JSON && type != NODE_DISK_RAW &&
	       type != NODE_MEMBER_LINK && type != NODE_MANAGEABLE_FILE && type != NODE_STATUS &&
	       type != NODE_CHANGES_FILE && type != NODE_CHANGES_JSON;
}

/* ---- changes/: pairs of snapshots or group snapshots ---- */

#define SEQ_MASK ((1ULL << INO_CHANGES_SEQ_BITS) - 1)

uint64_t tree_changes_ino(enum changes_kind kind, uint64_t newer, uint64_t older)
{
	uint64_t a = newer >> INO_SLOT_BITS, b = older >> INO_SLOT_BITS;

	if (!a || !b || a > SEQ_MASK || b > SEQ_MASK)
		return 0;
	return INO_CHANGES_BASE | (uint64_t)kind << (2 * INO_CHANGES_SEQ_BITS) |
	       a << INO_CHANGES_SEQ_BITS | b;
}

/* For each member volume that group snapshots newer and older both
 * have, with older's member snapshot older than newer's: fn(volume name,
 * newer's member, older's member, arg). newer and older are full records
 * (members). Returns fn's non-zero value or 0. */
static int cg_pairs(struct catalog_txn *txn, const struct object *newer, const struct object *older,
		    int (*fn)(const char *vol, uint64_t s, uint64_t o, void *arg), void *arg)
{
	size_t i, j;
	json_t *v, *w;
	int rc = 0;

	if (newer->kind != OBJ_CGSNAPSHOT || older->kind != OBJ_CGSNAPSHOT ||
	    newer->parent != older->parent || newer->ino == older->ino)
		return 0;
	json_array_foreach (newer->members, i, v) {
		struct object s, vol;

		if (catalog_object_get_brief(txn, (uint64_t)json_integer_value(v), &s)) {
			object_clear(&s);
			continue;
		}
		if (catalog_object_get_brief(txn, s.parent, &vol)) {
			object_clear(&s);
			object_clear(&vol);
			continue;
		}
		json_array_foreach (older->members, j, w) {
			struct object o;

			if (!catalog_object_get_brief(txn, (uint64_t)json_integer_value(w), &o) &&
			    o.parent == s.parent && snapshot_is_older(txn, &s, &o) == 0)
				rc = fn(vol.name, s.ino, o.ino, arg);
			object_clear(&o);
			if (rc)
				break;
		}
		object_clear(&s);
		object_clear(&vol);
		if (rc)
			break;
	}
	return rc;
}

static int cg_pair_any(const char *vol, uint64_t s, uint64_t o, void *arg)
{
	(void)vol, (void)s, (void)o, (void)arg;
	return 1;
}

/* A pair's node: newer into node->obj, checked against older. */
static int changes_node_load(struct catalog_txn *txn, uint64_t ino, struct node *node)
{
	enum changes_kind kind = (enum changes_kind)((ino >> (2 * INO_CHANGES_SEQ_BITS)) & 31);
	uint64_t newer = ((ino >> INO_CHANGES_SEQ_BITS) & SEQ_MASK) << INO_SLOT_BITS;
	uint64_t older = (ino & SEQ_MASK) << INO_SLOT_BITS;
	bool cg = kind == CHANGES_CG_DIR || kind == CHANGES_CG_JSON;
	struct object o;
	int rc;

	if (kind > CHANGES_CG_JSON || tree_changes_ino(kind, newer, older) != ino) {
		object_init(&node->obj);
		return -ENOENT;
	}
	rc = catalog_object_get(txn, newer, &node->obj);
	if (rc)
		return rc;
	rc = catalog_object_get(txn, older, &o);
	if (rc) {
		object_clear(&o);
		return rc;
	}
	if (cg)
		rc = cg_pairs(txn, &node->obj, &o, cg_pair_any, NULL) == 1 ? 0 : -ENOENT;
	else if (node->obj.kind != OBJ_SNAPSHOT || o.kind != OBJ_SNAPSHOT)
		rc = -ENOENT;
	else
		rc = snapshot_is_older(txn, &node->obj, &o);
	object_clear(&o);
	if (rc)
		return rc == -EIO ? -EIO : -ENOENT;
	node->older = older;
	node->uid = node->obj.uid;
	node->gid = node->obj.gid;
	switch (kind) {
	case CHANGES_FILE:
		node->type = NODE_CHANGES_FILE;
		node->mode = S_IFREG | (node->obj.mode & 0444);
		break;
	case CHANGES_JSON:
		node->type = NODE_CHANGES_JSON;
		node->mode = S_IFREG | (node->obj.mode & 0444);
		break;
	case CHANGES_CG_DIR:
		node->type = NODE_CG_CHANGES_DIR;
		node->mode = S_IFDIR | (node->obj.mode & 0555);
		break;
	default:
		node->type = NODE_CG_CHANGES_JSON_DIR;
		node->mode = S_IFDIR | (node->obj.mode & 0555);
		break;
	}
	return 0;
}

void tree_node_clear(struct node *node)
{
	object_clear(&node->obj);
}

/* brief: the records without metadata, members or description
 * (catalog_object_get_brief()), enough for the attributes of everything
 * but info.json. */
static int node_load(struct snapfs *fs, struct catalog_txn *txn, uint64_t ino, struct node *node,
		     bool brief)
{
	int (*get)(struct catalog_txn *, uint64_t, struct object *) =
		brief ? catalog_object_get_brief : catalog_object_get;
	unsigned slot = (unsigned)(ino & INO_SLOT_MASK);
	int rc;

	memset(node, 0, sizeof(*node));
	node->ino = ino;
	if (ino < 16) {
		object_init(&node->obj);
		node->uid = 0, node->gid = 0;
		switch (ino) {
		case INO_ROOT:
			node->type = NODE_ROOT, node->mode = S_IFDIR | 0755;
			return 0;
		case INO_TENANTS:
			/* Open to all: snapfs itself answers EPERM to non-admins,
			 * as the API does, rather than the kernel's EACCES. */
			node->type = NODE_TENANTS, node->mode = S_IFDIR | 0777;
			return 0;
		case INO_BYID:
			node->type = NODE_BYID, node->mode = S_IFDIR | 0555;
			return 0;
		case INO_STATUS:
			/* names every tenant and object: admins only (root
			 * and admin_group, whom the kernel lets read) */
			node->type = NODE_STATUS, node->mode = S_IFREG | 0440;
			if (fs->opts->has_admin_gid)
				node->gid = fs->opts->admin_gid;
			return 0;
		default:
			return -ENOENT;
		}
	}
	if (ino & INO_CHANGES_BASE)
		return changes_node_load(txn, ino, node);
	if (import_ino_is_manageable(ino)) {
		/* a share file no object owns: root's, read-only */
		object_init(&node->obj);
		node->type = NODE_MANAGEABLE_FILE;
		node->mode = S_IFREG | 0444;
		return import_manageable_find(fs, txn, ino, node->obj.file, sizeof(node->obj.file),
					      NULL);
	}
	rc = get(txn, ino, &node->obj);
	if (rc)
		return rc;
	node->uid = node->obj.uid;
	node->gid = node->obj.gid;
	if (slot == 0) {
		node->type = NODE_OBJECT;
		node->mode = S_IFDIR | (node->obj.mode & 07777);
		return 0;
	}
	if (slot == SLOT_BYID) {
		node->type = NODE_BYID_LINK;
		node->uid = 0, node->gid = 0;
		node->mode = S_IFLNK | 0777;
		return 0;
	}
	if (slot == SLOT_MEMBER_LINK) {
		if (!node->obj.link_id[0] ||
		    (node->obj.kind != OBJ_VOLUME && node->obj.kind != OBJ_SNAPSHOT))
			return -ENOENT;
		node->type = NODE_MEMBER_LINK;
		node->mode = S_IFLNK | 0777;
		return 0;
	}
	for (size_t i = 0; i < sizeof(fixed_entries) / sizeof(fixed_entries[0]); i++) {
		const struct fixed_entry *f = &fixed_entries[i];

		if (f->kind != node->obj.kind || f->slot != slot)
			continue;
		node->type = f->type;
		if (!node_is_dir(f->type)) {
			node->mode = S_IFREG | (node->obj.mode & 0444);
			return 0;
		}
		if (f->type == NODE_CHANGES_DIR || f->type == NODE_CHANGES_JSON_DIR) {
			/* read-only: nothing is created or deleted inside */
			node->mode = S_IFDIR | (node->obj.mode & 0555);
			return 0;
		}
		/* Fixed directories take the tenant's owner, group and mode,
		 * so that a tenant's team can create and delete inside. */
		if (node->obj.kind != OBJ_TENANT) {
			struct object tenant;

			rc = get(txn, node->obj.tenant, &tenant);
			if (rc) {
				object_clear(&tenant);
				return rc == -ENOENT ? -EIO : rc;
			}
			node->uid = tenant.uid, node->gid = tenant.gid;
			node->mode = S_IFDIR | (tenant.mode & 07777);
			object_clear(&tenant);
		} else {
			node->mode = S_IFDIR | (node->obj.mode & 07777);
		}
		return 0;
	}
	return -ENOENT;
}

int tree_node_load(struct snapfs *fs, struct catalog_txn *txn, uint64_t ino, struct node *node)
{
	return node_load(fs, txn, ino, node, false);
}

int tree_node_get(struct snapfs *fs, uint64_t ino, struct node *node)
{
	struct catalog_txn *txn;
	int rc = catalog_txn_begin(fs->cat, false, &txn);

	if (rc)
		return rc;
	rc = tree_node_load(fs, txn, ino, node);
	catalog_txn_abort(txn);
	if (rc)
		tree_node_clear(node);
	return rc;
}

int tree_object_path(struct catalog_txn *txn, const struct object *obj, char *buf, size_t len)
{
	static const char *const container[] = {
		[OBJ_TENANT] = "tenants", [OBJ_VOLUME] = "volumes",
		[OBJ_SNAPSHOT] = "snapshots", [OBJ_GROUP] = "consistencygroups",
		[OBJ_CGSNAPSHOT] = "cgsnapshots",
	};
	char tail[4096];
	int n;

	if (obj->kind < OBJ_TENANT || obj->kind > OBJ_CGSNAPSHOT)
		return -EINVAL;
	if (obj->kind == OBJ_TENANT) {
		n = snprintf(buf, len, "tenants/%s", obj->name);
		return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
	}
	{
		struct object parent;
		int rc = catalog_object_get(txn, obj->parent, &parent);

		if (!rc)
			rc = tree_object_path(txn, &parent, tail, sizeof(tail));
		object_clear(&parent);
		if (rc)
			return rc;
	}
	n = snprintf(buf, len, "%s/%s/%s", tail, container[obj->kind], obj->name);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

void tree_ino_path(struct snapfs *fs, uint64_t ino, const char *name, char *buf, size_t len)
{
	const char *sep = name ? "/" : "", *tail = name ? name : "";
	char path[4096];
	struct catalog_txn *txn;
	struct node node;
	int rc = -ENOENT;

	if (ino == INO_ROOT || ino == INO_TENANTS || ino == INO_BYID) {
		snprintf(path, sizeof(path), "%s",
			 ino == INO_ROOT      ? "."
			 : ino == INO_TENANTS ? "tenants"
					      : "by-id");
		rc = 0;
	} else if (!catalog_txn_begin(fs->cat, false, &txn)) {
		rc = node_load(fs, txn, ino, &node, true);
		if (!rc && node.type == NODE_MANAGEABLE_FILE) {
			snprintf(path, sizeof(path), "manageable/%s", node.obj.file);
		} else if (!rc) {
			rc = tree_object_path(txn, &node.obj, path, sizeof(path));
			for (size_t i = 0;
			     !rc && i < sizeof(fixed_entries) / sizeof(fixed_entries[0]); i++)
				if (fixed_entries[i].kind == node.obj.kind &&
				    fixed_entries[i].type == node.type) {
					size_t n = strlen(path);

					snprintf(path + n, sizeof(path) - n, "/%s",
						 fixed_entries[i].name);
				}
		}
		tree_node_clear(&node);
		catalog_txn_abort(txn);
	}
	if (rc)
		snprintf(buf, len, "inode %llu%s%s", (unsigned long long)ino, sep, tail);
	else
		snprintf(buf, len, "%s%s%s", path, sep, tail);
}

static int byid_target(struct catalog_txn *txn, const struct object *obj, char *buf, size_t len)
{
	char path[4096];
	int rc = tree_object_path(txn, obj, path, sizeof(path));
	int n;

	if (rc)
		return rc;
	n = snprintf(buf, len, "../%s", path);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* A member link's target: a group's volumes/V -> ../../../volumes/V, a
 * group snapshot's V -> ../../../../volumes/V/snapshots/S. */
static int member_target(struct catalog_txn *txn, const struct object *obj, char *buf,
			 size_t len)
{
	struct object vol;
	int rc, n;

	if (obj->kind == OBJ_VOLUME) {
		n = snprintf(buf, len, "../../../volumes/%s", obj->name);
		return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
	}
	rc = catalog_object_get(txn, obj->parent, &vol);
	if (!rc) {
		n = snprintf(buf, len, "../../../../volumes/%s/snapshots/%s", vol.name, obj->name);
		rc = n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
	}
	object_clear(&vol);
	return rc;
}

/* The target of link node (by-id or member). */
static int link_target(struct catalog_txn *txn, const struct node *node, char *buf, size_t len)
{
	if (node->type == NODE_BYID_LINK)
		return byid_target(txn, &node->obj, buf, len);
	if (node->type == NODE_MEMBER_LINK)
		return member_target(txn, &node->obj, buf, len);
	return -EINVAL;
}

int tree_node_stat(struct snapfs *fs, struct catalog_txn *txn, const struct node *node,
		   struct stat *st)
{
	int64_t t = node->obj.kind ? (node->obj.updated_at ? node->obj.updated_at
							     : node->obj.created_at)
				   : fs->mounted_at;

	memset(st, 0, sizeof(*st));
	st->st_ino = node->ino;
	st->st_mode = node->mode;
	st->st_uid = node->uid;
	st->st_gid = node->gid;
	st->st_nlink = node_is_dir(node->type) ? 2 : 1;
	st->st_blksize = 4096;
	st->st_mtim.tv_sec = t / 1000000;
	st->st_mtim.tv_nsec = (t % 1000000) * 1000;
	st->st_atim = st->st_ctim = st->st_mtim;
	switch (node->type) {
	case NODE_INFO_JSON: {
		char *text;
		size_t len;
		int rc = api_json_text(txn, &node->obj, &text, &len);

		if (rc)
			return rc;
		free(text);
		st->st_size = (off_t)len;
		break;
	}
	case NODE_BYID_LINK:
	case NODE_MEMBER_LINK: {
		char target[4096];
		int rc = link_target(txn, node, target, sizeof(target));

		if (rc)
			return rc;
		st->st_size = (off_t)strlen(target);
		break;
	}
	case NODE_CHANGES_FILE:
	case NODE_CHANGES_JSON: {
		uint64_t allocated;
		size_t text_len = 0;
		bool open = reader_changes_allocated(fs, node->obj.ino, node->older, &allocated,
						     &text_len) == 0;

		if (node->type == NODE_CHANGES_JSON) {
			/* known while it is open (fstat); read it to its end */
			st->st_size = open ? (off_t)text_len : 0;
			break;
		}
		st->st_size = (off_t)node->obj.size;
		if (open) { /* as disk.raw: never sparse by mistake */
			st->st_blocks = (blkcnt_t)((allocated + 511) / 512);
			return 0;
		}
		break;
	}
	case NODE_DISK_RAW: {
		uint64_t allocated;

		st->st_size = (off_t)node->obj.size;
		/* Sparse-aware tools (cp, tar) look for holes with SEEK_DATA
		 * only when st_blocks says there are some, and du counts
		 * st_blocks: the data of the resolved chain (computed once
		 * per snapshot); when it cannot be resolved, say fully
		 * allocated, never sparse. */
		if (reader_allocated(fs, txn, &node->obj, &allocated) == 0) {
			st->st_blocks = (blkcnt_t)((allocated + 511) / 512);
			return 0;
		}
		break;
	}
	default:
		break;
	}
	st->st_blocks = (st->st_size + 511) / 512;
	return 0;
}

int tree_getattr_txn(struct snapfs *fs, struct catalog_txn *txn, uint64_t ino, struct stat *st)
{
	struct node node;
	int rc = node_load(fs, txn, ino, &node, true);

	if (!rc && node.type == NODE_INFO_JSON) { /* its size is the whole object's text */
		tree_node_clear(&node);
		rc = tree_node_load(fs, txn, ino, &node);
	}

	if (!rc)
		rc = tree_node_stat(fs, txn, &node, st);
	tree_node_clear(&node);
	return rc;
}

int tree_getattr(struct snapfs *fs, uint64_t ino, struct stat *st)
{
	struct catalog_txn *txn;
	int rc = catalog_txn_begin(fs->cat, false, &txn);

	if (rc)
		return rc;
	rc = tree_getattr_txn(fs, txn, ino, st);
	catalog_txn_abort(txn);
	return rc;
}

/* A group's volumes/NAME: the member volume called NAME. */
static int lookup_group_member(struct catalog_txn *txn, const struct object *g,
			       const char *name, uint64_t *ino)
{
	struct object vol;
	int rc = catalog_child_lookup(txn, g->tenant, OBJ_VOLUME, name, ino);

	if (rc)
		return rc;
	rc = catalog_object_get(txn, *ino, &vol);
	if (!rc && strcmp(vol.link_id, g->id))
		rc = -ENOENT;
	object_clear(&vol);
	*ino |= SLOT_MEMBER_LINK;
	return rc;
}

/* A group snapshot's NAME: its member snapshot of the volume called NAME. */
static int lookup_cgsnapshot_member(struct catalog_txn *txn, const struct object *cg,
				    const char *name, uint64_t *ino)
{
	uint64_t vol;
	int rc = catalog_child_lookup(txn, cg->tenant, OBJ_VOLUME, name, &vol);
	size_t i;
	json_t *v;

	if (rc)
		return rc;
	json_array_foreach (cg->members, i, v) {
		struct object snap;

		rc = catalog_object_get(txn, (uint64_t)json_integer_value(v), &snap);
		if (!rc && snap.parent == vol) {
			*ino = snap.ino | SLOT_MEMBER_LINK;
			object_clear(&snap);
			return 0;
		}
		object_clear(&snap);
	}
	return -ENOENT;
}

/* changes/NAME (changes.json/NAME) of a snapshot or a group snapshot:
 * the pair with the sibling called NAME; whether it is older is checked
 * when the pair's node loads. */
static int lookup_changes(struct catalog_txn *txn, const struct node *dir, const char *name,
			  uint64_t *ino)
{
	bool json = dir->type == NODE_CHANGES_JSON_DIR;
	bool cg = dir->obj.kind == OBJ_CGSNAPSHOT;
	uint64_t older;
	int rc = catalog_child_lookup(txn, dir->obj.parent, cg ? OBJ_CGSNAPSHOT : OBJ_SNAPSHOT,
				      name, &older);

	if (rc)
		return rc;
	*ino = tree_changes_ino(cg ? (json ? CHANGES_CG_JSON : CHANGES_CG_DIR)
				   : (json ? CHANGES_JSON : CHANGES_FILE),
				dir->obj.ino, older);
	return *ino ? 0 : -ENOENT;
}

struct cg_find {
	const char *name;
	bool json;
	uint64_t ino;
};

static int cg_find_one(const char *vol, uint64_t s, uint64_t o, void *arg)
{
	struct cg_find *f = arg;

	if (strcmp(vol, f->name))
		return 0;
	f->ino = tree_changes_ino(f->json ? CHANGES_JSON : CHANGES_FILE, s, o);
	return 1;
}

/* cgsnapshots/C/changes/OC/V: the changes of V's member snapshots. */
static int lookup_cg_changes(struct catalog_txn *txn, const struct node *dir, const char *name,
			     uint64_t *ino)
{
	struct cg_find f = {name, dir->type == NODE_CG_CHANGES_JSON_DIR, 0};
	struct object older;
	int rc = catalog_object_get(txn, dir->older, &older);

	if (!rc)
		rc = cg_pairs(txn, &dir->obj, &older, cg_find_one, &f);
	object_clear(&older);
	if (rc < 0)
		return rc;
	*ino = f.ino;
	return f.ino ? 0 : -ENOENT;
}

/* The inode of the entry name in the loaded directory node dir. */
static int lookup_in(struct snapfs *fs, struct catalog_txn *txn, const struct node *dir,
		     const char *name, uint64_t *ino)
{
	enum object_kind child_kind;
	char found[256];

	switch (dir->type) {
	case NODE_TENANT_MANAGEABLE:
		if (strlen(name) >= sizeof(found))
			return -ENOENT;
		snprintf(found, sizeof(found), "%s", name);
		return import_manageable_find(fs, txn, 0, found, sizeof(found), ino);
	case NODE_ROOT:
		if (!strcmp(name, "tenants"))
			*ino = INO_TENANTS;
		else if (!strcmp(name, "by-id"))
			*ino = INO_BYID;
		else if (!strcmp(name, "status.json"))
			*ino = INO_STATUS;
		else
			return -ENOENT;
		return 0;
	case NODE_BYID: {
		int rc = catalog_id_lookup(txn, name, ino);

		if (rc)
			return rc;
		*ino |= SLOT_BYID;
		return 0;
	}
	case NODE_OBJECT:
		for (size_t i = 0; i < sizeof(fixed_entries) / sizeof(fixed_entries[0]); i++) {
			if (fixed_entries[i].kind == dir->obj.kind &&
			    !strcmp(fixed_entries[i].name, name)) {
				*ino = dir->obj.ino | fixed_entries[i].slot;
				return 0;
			}
		}
		if (dir->obj.kind == OBJ_CGSNAPSHOT)
			return lookup_cgsnapshot_member(txn, &dir->obj, name, ino);
		return -ENOENT;
	case NODE_GROUP_VOLUMES:
		return lookup_group_member(txn, &dir->obj, name, ino);
	case NODE_CHANGES_DIR:
	case NODE_CHANGES_JSON_DIR:
		return lookup_changes(txn, dir, name, ino);
	case NODE_CG_CHANGES_DIR:
	case NODE_CG_CHANGES_JSON_DIR:
		return lookup_cg_changes(txn, dir, name, ino);
	default:
		break;
	}
	child_kind = container_child_kind(dir->type);
	if (child_kind == OBJ_NONE)
		return node_is_dir(dir->type) ? -ENOENT : -ENOTDIR;
	return catalog_child_lookup(txn, dir->type == NODE_TENANTS ? 0 : dir->obj.ino, child_kind,
				    name, ino);
}

int tree_lookup(struct snapfs *fs, uint64_t parent, const char *name, struct stat *st)
{
	struct catalog_txn *txn;
	struct node dir, child;
	uint64_t ino;
	int rc = catalog_txn_begin(fs->cat, false, &txn);

	if (rc)
		return rc;
	rc = tree_node_load(fs, txn, parent, &dir);
	if (rc)
		goto out_dir;
	rc = lookup_in(fs, txn, &dir, name, &ino);
	if (rc)
		goto out_dir;
	rc = tree_node_load(fs, txn, ino, &child);
	if (!rc)
		rc = tree_node_stat(fs, txn, &child, st);
	tree_node_clear(&child);
out_dir:
	tree_node_clear(&dir);
	catalog_txn_abort(txn);
	return rc;
}

static int listing_add(struct dir_listing *l, const char *name, uint64_t ino, uint32_t type)
{
	if (l->count == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct dir_entry *e = realloc(l->entries, cap * sizeof(*e));

		if (!e)
			return -ENOMEM;
		l->entries = e;
		l->cap = cap;
	}
	snprintf(l->entries[l->count].name, sizeof(l->entries[0].name), "%s", name);
	l->entries[l->count].ino = ino;
	l->entries[l->count].type = type;
	l->count++;
	return 0;
}

static int add_child_dir(const char *name, uint64_t ino, void *arg)
{
	return listing_add(arg, name, ino, S_IFDIR);
}

static int add_manageable(const char *name, uint64_t ino, void *arg)
{
	return listing_add(arg, name, ino, S_IFREG);
}

static int add_byid_link(const char *id, uint64_t ino, void *arg)
{
	return listing_add(arg, id, ino | SLOT_BYID, S_IFLNK);
}

/* A link per member of a group (named after the volume) or of a group
 * snapshot (named after the member snapshot's volume). */
static int list_members(struct catalog_txn *txn, const struct object *o, struct dir_listing *l)
{
	size_t i;
	json_t *v;
	int rc = 0;

	json_array_foreach (o->members, i, v) {
		struct object member, vol;

		rc = catalog_object_get(txn, (uint64_t)json_integer_value(v), &member);
		if (!rc && member.kind == OBJ_SNAPSHOT)
			rc = catalog_object_get(txn, member.parent, &vol);
		else
			object_init(&vol);
		if (!rc)
			rc = listing_add(l, member.kind == OBJ_SNAPSHOT ? vol.name : member.name,
					 member.ino | SLOT_MEMBER_LINK, S_IFLNK);
		object_clear(&member);
		object_clear(&vol);
		if (rc)
			break;
	}
	return rc;
}

struct changes_walk {
	struct catalog_txn *txn;
	const struct node *dir;
	struct dir_listing *l;
};

static int add_older_snapshot(const struct object *older, void *arg)
{
	struct changes_walk *w = arg;
	bool json = w->dir->type == NODE_CHANGES_JSON_DIR;
	uint64_t ino = tree_changes_ino(json ? CHANGES_JSON : CHANGES_FILE, w->dir->obj.ino,
					older->ino);

	return ino ? listing_add(w->l, older->name, ino, S_IFREG) : 0;
}

static int add_older_cgsnapshot(const char *name, uint64_t ino, void *arg)
{
	struct changes_walk *w = arg;
	bool json = w->dir->type == NODE_CHANGES_JSON_DIR;
	uint64_t pair = tree_changes_ino(json ? CHANGES_CG_JSON : CHANGES_CG_DIR,
					 w->dir->obj.ino, ino);
	struct object older;
	int rc;

	if (!pair)
		return 0;
	rc = catalog_object_get(w->txn, ino, &older);
	if (!rc)
		rc = cg_pairs(w->txn, &w->dir->obj, &older, cg_pair_any, NULL);
	object_clear(&older);
	if (rc == 1)
		return listing_add(w->l, name, pair, S_IFDIR);
	return rc == -ENOENT ? 0 : rc;
}

/* changes/ of a snapshot (its older snapshots) or of a group snapshot
 * (the older group snapshots of its group with at least one member
 * older). */
static int list_changes(struct catalog_txn *txn, const struct node *dir, struct dir_listing *l)
{
	struct changes_walk w = {txn, dir, l};

	if (dir->obj.kind == OBJ_SNAPSHOT)
		return snapshot_older_foreach(txn, &dir->obj, add_older_snapshot, &w);
	return catalog_children_foreach(txn, dir->obj.parent, OBJ_CGSNAPSHOT,
					add_older_cgsnapshot, &w);
}

static int add_cg_member(const char *vol, uint64_t s, uint64_t o, void *arg)
{
	struct changes_walk *w = arg;
	bool json = w->dir->type == NODE_CG_CHANGES_JSON_DIR;
	uint64_t ino = tree_changes_ino(json ? CHANGES_JSON : CHANGES_FILE, s, o);

	return ino ? listing_add(w->l, vol, ino, S_IFREG) : 0;
}

/* cgsnapshots/C/changes/OC/: one file per member volume. */
static int list_cg_changes(struct catalog_txn *txn, const struct node *dir, struct dir_listing *l)
{
	struct changes_walk w = {txn, dir, l};
	struct object older;
	int rc = catalog_object_get(txn, dir->older, &older);

	if (!rc)
		rc = cg_pairs(txn, &dir->obj, &older, add_cg_member, &w);
	object_clear(&older);
	return rc;
}

void tree_listing_free(struct dir_listing *l)
{
	if (!l)
		return;
	free(l->entries);
	free(l);
}

int tree_readdir(struct snapfs *fs, uint64_t ino, struct dir_listing **out)
{
	struct dir_listing *l = calloc(1, sizeof(*l));
	struct catalog_txn *txn;
	struct node dir;
	enum object_kind child_kind;
	int rc;

	if (!l)
		return -ENOMEM;
	rc = catalog_txn_begin(fs->cat, false, &txn);
	if (rc) {
		free(l);
		return rc;
	}
	rc = tree_node_load(fs, txn, ino, &dir);
	if (rc)
		goto out;
	if (!node_is_dir(dir.type)) {
		rc = -ENOTDIR;
		goto out;
	}
	if ((rc = listing_add(l, ".", ino, S_IFDIR)) || (rc = listing_add(l, "..", 0, S_IFDIR)))
		goto out;
	switch (dir.type) {
	case NODE_ROOT:
		if ((rc = listing_add(l, "tenants", INO_TENANTS, S_IFDIR)) ||
		    (rc = listing_add(l, "by-id", INO_BYID, S_IFDIR)) ||
		    (rc = listing_add(l, "status.json", INO_STATUS, S_IFREG)))
			goto out;
		break;
	case NODE_BYID:
		rc = catalog_ids_foreach(txn, add_byid_link, l);
		break;
	case NODE_OBJECT:
		for (size_t i = 0; i < sizeof(fixed_entries) / sizeof(fixed_entries[0]); i++) {
			const struct fixed_entry *f = &fixed_entries[i];

			if (f->kind != dir.obj.kind)
				continue;
			rc = listing_add(l, f->name, dir.obj.ino | f->slot,
					 node_is_dir(f->type) ? S_IFDIR : S_IFREG);
			if (rc)
				goto out;
		}
		if (dir.obj.kind == OBJ_CGSNAPSHOT)
			rc = list_members(txn, &dir.obj, l);
		break;
	case NODE_GROUP_VOLUMES:
		rc = list_members(txn, &dir.obj, l);
		break;
	case NODE_TENANT_MANAGEABLE:
		rc = import_manageable_list(fs, txn, add_manageable, l);
		break;
	case NODE_CHANGES_DIR:
	case NODE_CHANGES_JSON_DIR:
		rc = list_changes(txn, &dir, l);
		break;
	case NODE_CG_CHANGES_DIR:
	case NODE_CG_CHANGES_JSON_DIR:
		rc = list_cg_changes(txn, &dir, l);
		break;
	default:
		child_kind = container_child_kind(dir.type);
		if (child_kind != OBJ_NONE)
			rc = catalog_children_foreach(txn,
						      dir.type == NODE_TENANTS ? 0 : dir.obj.ino,
						      child_kind, add_child_dir, l);
		break;
	}
out:
	tree_node_clear(&dir);
	catalog_txn_abort(txn);
	if (rc) {
		tree_listing_free(l);
		return rc;
	}
	*out = l;
	return 0;
}

int tree_readlink(struct snapfs *fs, uint64_t ino, char *buf, size_t len)
{
	struct catalog_txn *txn;
	struct node node;
	int rc = catalog_txn_begin(fs->cat, false, &txn);

	if (rc)
		return rc;
	rc = tree_node_load(fs, txn, ino, &node);
	if (!rc)
		rc = link_target(txn, &node, buf, len);
	tree_node_clear(&node);
	catalog_txn_abort(txn);
	return rc;
}

int tree_read_info(struct snapfs *fs, uint64_t ino, char **data, size_t *len)
{
	struct catalog_txn *txn;
	struct node node;
	int rc = catalog_txn_begin(fs->cat, false, &txn);

	if (rc)
		return rc;
	rc = tree_node_load(fs, txn, ino, &node);
	if (!rc)
		rc = node.type == NODE_INFO_JSON ? api_json_text(txn, &node.obj, data, len)
						  : -EINVAL;
	tree_node_clear(&node);
	catalog_txn_abort(txn);
	return rc;
}
