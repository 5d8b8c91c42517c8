/* attr.c - see attr.h. */
#include "attr.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#include "attach.h"
#include "group.h"
#include "import.h"
#include "json.h"
#include "log.h"
#include "object.h"
#include "quota.h"
#include "tree.h"
#include "snapshot.h"
#include "volume.h"

#define META_PREFIX "user.meta."
#define KIND(k) (1u << (k))
#define GROUPS (KIND(OBJ_GROUP) | KIND(OBJ_CGSNAPSHOT))
#define VOL_SNAP (KIND(OBJ_VOLUME) | KIND(OBJ_SNAPSHOT))
#define ANY_OBJECT (KIND(OBJ_TENANT) | VOL_SNAP | GROUPS)

/* A getter returns a malloc'd NUL-terminated string, or NULL with *err set
 * (-ENODATA when the object lacks the attribute). */
/* "volume", "snapshot", ... for log lines. */
static const char *object_kind_name(enum object_kind kind)
{
	switch (kind) {
	case OBJ_TENANT:
		return "tenant";
	case OBJ_VOLUME:
		return "volume";
	case OBJ_SNAPSHOT:
		return "snapshot";
	case OBJ_GROUP:
		return "group";
	case OBJ_CGSNAPSHOT:
		return "group snapshot";
	default:
		return "entry";
	}
}

typedef char *(*attr_getter)(struct snapfs *fs, struct catalog_txn *txn, const struct object *obj,
			     int *err);
/* A setter gets the NUL-terminated value. */
typedef int (*attr_setter)(struct snapfs *fs, const struct cred *cred, uint64_t ino,
			   const char *value, int flags);
/* A remover serves setfattr -x. */
typedef int (*attr_remover)(struct snapfs *fs, const struct cred *cred, uint64_t ino);

struct attr_def {
	const char *name;
	unsigned kinds;
	attr_getter get;
	attr_setter set;      /* NULL: read-only (-EPERM) */
	attr_remover remove;  /* NULL: not removable (-EPERM) */
};

static char *dup_or_enomem(const char *s, int *err)
{
	char *d = strdup(s);

	if (!d)
		*err = -ENOMEM;
	return d;
}

static char *get_id(struct snapfs *fs, struct catalog_txn *txn, const struct object *o, int *err)
{
	return dup_or_enomem(o->id, err);
}

static char *get_status(struct snapfs *fs, struct catalog_txn *txn, const struct object *o,
			int *err)
{
	return dup_or_enomem(o->status, err);
}

static char *get_created_at(struct snapfs *fs, struct catalog_txn *txn, const struct object *o,
			    int *err)
{
	char t[40];

	api_time(o->created_at, t, sizeof(t));
	return dup_or_enomem(t, err);
}

static char *get_size(struct snapfs *fs, struct catalog_txn *txn, const struct object *o, int *err)
{
	char s[32];

	snprintf(s, sizeof(s), "%" PRIu64, SIZE_GIB(o->size));
	return dup_or_enomem(s, err);
}

/* The uuid of the object ino (the tenant or volume an object belongs to). */
static char *get_id_of(struct catalog_txn *txn, uint64_t ino, int *err)
{
	struct object other;
	char *s;

	*err = catalog_object_get(txn, ino, &other);
	s = *err ? NULL : dup_or_enomem(other.id, err);
	object_clear(&other);
	return s;
}

static char *get_project_id(struct snapfs *fs, struct catalog_txn *txn, const struct object *o,
			    int *err)
{
	return get_id_of(txn, o->tenant, err);
}

static char *get_active_file(struct snapfs *fs, struct catalog_txn *txn, const struct object *o,
			     int *err)
{
	return dup_or_enomem(o->file, err);
}

static char *get_link_id(struct snapfs *fs, struct catalog_txn *txn, const struct object *o,
			 int *err)
{
	if (!o->link_id[0]) {
		*err = -ENODATA;
		return NULL;
	}
	return dup_or_enomem(o->link_id, err);
}

static char *get_progress(struct snapfs *fs, struct catalog_txn *txn, const struct object *o,
			  int *err)
{
	/* A volume has a progress only when it was filled by a copy. */
	if (o->kind == OBJ_VOLUME && !o->progress && strcmp(o->op, "fill")) {
		*err = -ENODATA;
		return NULL;
	}
	char s[8];

	snprintf(s, sizeof(s), "%d%%", o->progress);
	return dup_or_enomem(s, err);
}

static char *get_parent_id(struct snapfs *fs, struct catalog_txn *txn, const struct object *o,
			   int *err)
{
	return get_id_of(txn, o->parent, err);
}

static char *get_description(struct snapfs *fs, struct catalog_txn *txn, const struct object *o,
			     int *err)
{
	if (!o->has_description) {
		*err = -ENODATA;
		return NULL;
	}
	return dup_or_enomem(o->description, err);
}

static char *get_json(struct snapfs *fs, struct catalog_txn *txn, const struct object *o, int *err)
{
	json_t *j = api_json_build(txn, o);
	char *s = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

	json_decref(j);
	if (!s)
		*err = -ENOMEM;
	return s;
}

static char *get_nothing(struct snapfs *fs, struct catalog_txn *txn, const struct object *o,
			 int *err)
{
	*err = -ENODATA;
	return NULL;
}

static int value_is_text(const char *value)
{
	return utf8_is_valid(value, strlen(value))
		       ? 0
		       : log_refuse(-EINVAL, "the value is not UTF-8 text");
}

struct text_change {
	const char *value;
	int flags;
};

static int apply_description(struct catalog_txn *txn, struct object *o, void *arg)
{
	const struct text_change *c = arg;

	if ((c->flags & XATTR_CREATE) && o->has_description)
		return log_refuse(-EEXIST, "%s has a description already", o->id);
	if ((c->flags & XATTR_REPLACE) && !o->has_description)
		return -ENODATA;
	if (!c->value) {
		if (!o->has_description)
			return -ENODATA;
		o->has_description = false;
		o->description[0] = '\0';
		return 0;
	}
	o->has_description = true;
	snprintf(o->description, sizeof(o->description), "%s", c->value);
	return 0;
}

static int set_description(struct snapfs *fs, const struct cred *cred, uint64_t ino,
			   const char *value, int flags)
{
	struct text_change c = {value, flags};
	int rc = value_is_text(value);

	if (rc)
		return rc;
	if (strlen(value) > ATTR_VALUE_MAX)
		return log_refuse(-E2BIG, "a description of %zu bytes (at most %d)", strlen(value),
				  ATTR_VALUE_MAX);
	return object_modify(fs, ino, apply_description, &c);
}

static int apply_status(struct catalog_txn *txn, struct object *o, void *arg)
{
	const char *status = arg;

	if ((o->kind == OBJ_VOLUME && !volume_status_is_valid(status)) ||
	    (o->kind == OBJ_SNAPSHOT && !snapshot_status_is_valid(status)) ||
	    (o->kind == OBJ_GROUP && !group_status_is_valid(status)) ||
	    (o->kind == OBJ_CGSNAPSHOT && !group_snapshot_status_is_valid(status)))
		return log_refuse(-EINVAL, "\"%.40s\" is not a status of %s %s", status,
				  object_kind_name(o->kind), o->id);
	log_info("reset-state of %s (%s): %s -> %s", o->name, o->id, o->status, status);
	snprintf(o->status, sizeof(o->status), "%s", status);
	return 0;
}

static int set_status(struct snapfs *fs, const struct cred *cred, uint64_t ino,
		      const char *value, int flags)
{
	if (!cred_is_admin(fs, cred))
		return log_refuse(-EPERM, "uid %u may not reset state (admins only)",
				  (unsigned)cred->uid);
	return object_modify(fs, ino, apply_status, (void *)value);
}

static int set_size(struct snapfs *fs, const struct cred *cred, uint64_t ino, const char *value,
		    int flags)
{
	uint64_t bytes;

	if (size_parse_bytes(value, &bytes) || bytes == 0 || bytes % GIB)
		return log_refuse(-EINVAL, "\"%.40s\" is not a size in whole GiB", value);
	return volume_extend(fs, cred, ino, bytes);
}

static int set_force_delete(struct snapfs *fs, const struct cred *cred, uint64_t ino,
			    const char *value, int flags)
{
	if (!cred_is_admin(fs, cred))
		return log_refuse(-EPERM, "uid %u may not force-delete (admins only)",
				  (unsigned)cred->uid);
	enum object_kind kind;
	struct node node;
	int rc;

	if (strcmp(value, "1") && strcmp(value, "true"))
		return log_refuse(-EINVAL, "user.force_delete takes 1 or true, not \"%.40s\"",
				  value);
	rc = tree_node_get(fs, ino, &node);
	if (rc)
		return rc;
	kind = node.obj.kind;
	tree_node_clear(&node);
	if (kind == OBJ_SNAPSHOT)
		return snapshot_delete(fs, cred, ino, true);
	if (kind == OBJ_CGSNAPSHOT)
		return group_snapshot_delete(fs, cred, ino, true);
	return volume_delete(fs, cred, ino, true);
}

static int set_unmanage(struct snapfs *fs, const struct cred *cred, uint64_t ino,
			const char *value, int flags)
{
	if (strcmp(value, "1") && strcmp(value, "true"))
		return log_refuse(-EINVAL, "user.unmanage takes 1 or true, not \"%.40s\"", value);
	return snapshot_unmanage(fs, cred, ino);
}

static int set_add_volumes(struct snapfs *fs, const struct cred *cred, uint64_t ino,
			   const char *value, int flags)
{
	return group_volumes_update(fs, cred, ino, value, true);
}

static int set_remove_volumes(struct snapfs *fs, const struct cred *cred, uint64_t ino,
			      const char *value, int flags)
{
	return group_volumes_update(fs, cred, ino, value, false);
}

static int set_source(struct snapfs *fs, const struct cred *cred, uint64_t ino,
		      const char *value, int flags)
{
	return group_fill(fs, cred, ino, value);
}

static char *get_attach(struct snapfs *fs, struct catalog_txn *txn, const struct object *o,
			int *err)
{
	if (!o->attach[0]) {
		*err = -ENODATA;
		return NULL;
	}
	return dup_or_enomem(o->attach, err);
}

static int set_attach(struct snapfs *fs, const struct cred *cred, uint64_t ino,
		      const char *value, int flags)
{
	return volume_attach(fs, cred, ino, value);
}

static int remove_attach(struct snapfs *fs, const struct cred *cred, uint64_t ino)
{
	return volume_detach(fs, cred, ino);
}

static int remove_description(struct snapfs *fs, const struct cred *cred, uint64_t ino)
{
	struct text_change c = {NULL, 0};

	return object_modify(fs, ino, apply_description, &c);
}

/* ---- tenants: quotas and usage (quota.h) ---- */

static char *int_text(int64_t v, int *err)
{
	char s[32];

	snprintf(s, sizeof(s), "%" PRId64, v);
	return dup_or_enomem(s, err);
}

static char *get_quota(struct snapfs *fs, struct catalog_txn *txn, const struct object *o,
		       enum quota_resource r, int *err)
{
	return int_text(o->quota[r], err);
}

static char *get_usage(struct snapfs *fs, struct catalog_txn *txn, const struct object *o,
		       enum quota_resource r, int *err)
{
	int64_t use[QUOTA_RESOURCES];

	*err = quota_usage_count(txn, o->ino, !fs->opts->no_snapshot_gb, use);
	return *err ? NULL : int_text(use[r], err);
}

/* Cinder's GET os-quota-sets/<project>?usage=true, without reservations
 * (snapfs reserves in the catalogue's own records). */
static char *get_quota_set(struct snapfs *fs, struct catalog_txn *txn, const struct object *o,
			   int *err)
{
	int64_t use[QUOTA_RESOURCES];
	json_t *set, *j;
	char *s = NULL;

	*err = quota_usage_count(txn, o->ino, !fs->opts->no_snapshot_gb, use);
	if (*err)
		return NULL;
	set = json_pack("{s:s}", "id", o->id);
	for (int r = 0; set && r < QUOTA_RESOURCES; r++)
		if (json_object_set_new(set, quota_resource_name((enum quota_resource)r),
					json_pack("{s:I s:I s:i s:i}", "limit",
						  (json_int_t)o->quota[r], "in_use",
						  (json_int_t)use[r], "reserved", 0, "allocated",
						  0))) {
			json_decref(set);
			set = NULL;
		}
	j = set ? json_pack("{s:o}", "quota_set", set) : NULL;
	if (j)
		s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(j);
	if (!s)
		*err = -ENOMEM;
	return s;
}

#define QUOTA_ATTR_FNS(res, R)                                                                  \
	static char *get_quota_##res(struct snapfs *fs, struct catalog_txn *txn,                \
				     const struct object *o, int *err)                          \
	{                                                                                       \
		return get_quota(fs, txn, o, R, err);                                           \
	}                                                                                       \
	static char *get_usage_##res(struct snapfs *fs, struct catalog_txn *txn,                \
				     const struct object *o, int *err)                          \
	{                                                                                       \
		return get_usage(fs, txn, o, R, err);                                           \
	}                                                                                       \
	static int set_quota_##res(struct snapfs *fs, const struct cred *cred, uint64_t ino,    \
				   const char *value, int flags)                                \
	{                                                                                       \
		return quota_set(fs, cred, ino, R, value, false);                               \
	}                                                                                       \
	static int remove_quota_##res(struct snapfs *fs, const struct cred *cred, uint64_t ino) \
	{                                                                                       \
		return quota_set(fs, cred, ino, R, NULL, true);                                 \
	}

QUOTA_ATTR_FNS(volumes, QUOTA_VOLUMES)
QUOTA_ATTR_FNS(snapshots, QUOTA_SNAPSHOTS)
QUOTA_ATTR_FNS(gigabytes, QUOTA_GIGABYTES)

static const struct attr_def attrs[] = {
	{"user.id", ANY_OBJECT, get_id, NULL, NULL},
	{"user.status", VOL_SNAP | GROUPS, get_status, set_status, NULL},
	{"user.progress", VOL_SNAP, get_progress, NULL, NULL},
	{"user.created_at", ANY_OBJECT, get_created_at, NULL, NULL},
	{"user.size", KIND(OBJ_VOLUME), get_size, set_size, NULL},
	{"user.size", KIND(OBJ_SNAPSHOT), get_size, NULL, NULL},
	{"user.volume_id", KIND(OBJ_SNAPSHOT), get_parent_id, NULL, NULL},
	{"user.project_id", VOL_SNAP | GROUPS, get_project_id, NULL, NULL},
	{"user.active_file", KIND(OBJ_VOLUME), get_active_file, NULL, NULL},
	{"user.consistency_group_id", KIND(OBJ_VOLUME), get_link_id, NULL, NULL},
	{"user.attach", KIND(OBJ_VOLUME), get_attach, set_attach, remove_attach},
	{"user.consistency_group_id", KIND(OBJ_CGSNAPSHOT), get_parent_id, NULL, NULL},
	{"user.cgsnapshot_id", KIND(OBJ_SNAPSHOT), get_link_id, NULL, NULL},
	{"user.description", ANY_OBJECT, get_description, set_description, remove_description},
	{"user.json", ANY_OBJECT, get_json, NULL, NULL},
	{"user.force_delete", VOL_SNAP | KIND(OBJ_CGSNAPSHOT), get_nothing, set_force_delete, NULL},
	{"user.unmanage", KIND(OBJ_SNAPSHOT), get_nothing, set_unmanage, NULL},
	{"user.add_volumes", KIND(OBJ_GROUP), get_nothing, set_add_volumes, NULL},
	{"user.remove_volumes", KIND(OBJ_GROUP), get_nothing, set_remove_volumes, NULL},
	{"user.source", KIND(OBJ_GROUP), get_nothing, set_source, NULL},
	{"user.quota.volumes", KIND(OBJ_TENANT), get_quota_volumes, set_quota_volumes,
	 remove_quota_volumes},
	{"user.quota.snapshots", KIND(OBJ_TENANT), get_quota_snapshots, set_quota_snapshots,
	 remove_quota_snapshots},
	{"user.quota.gigabytes", KIND(OBJ_TENANT), get_quota_gigabytes, set_quota_gigabytes,
	 remove_quota_gigabytes},
	{"user.usage.volumes", KIND(OBJ_TENANT), get_usage_volumes, NULL, NULL},
	{"user.usage.snapshots", KIND(OBJ_TENANT), get_usage_snapshots, NULL, NULL},
	{"user.usage.gigabytes", KIND(OBJ_TENANT), get_usage_gigabytes, NULL, NULL},
	{"user.quota_set", KIND(OBJ_TENANT), get_quota_set, NULL, NULL},
};

static const struct attr_def *attr_find(const char *name, enum object_kind kind)
{
	for (size_t i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++)
		if (!strcmp(attrs[i].name, name) && (attrs[i].kinds & KIND(kind)))
			return &attrs[i];
	return NULL;
}

bool attr_meta_key_is_valid(const char *key)
{
	size_t n = strlen(key);

	if (n == 0 || n > 255)
		return false;
	for (; *key; key++) {
		char c = *key;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == ':' || c == '.' || c == ' '))
			return false;
	}
	return true;
}

/* ---- manageable/<file> (read-only) ---- */

static const char *const manageable_attrs[] = {
	"user.reference", "user.size", "user.safe_to_manage", "user.reason_not_safe",
	"user.cinder_id",
};

/* The value of manageable attribute name of m: malloc'd, or NULL with *err
 * (-ENODATA when m lacks it, -ENOTSUP for an unknown name). */
static char *manageable_value(const struct manageable *m, const char *name, int *err)
{
	char s[32];

	if (!strcmp(name, "user.reference"))
		return dup_or_enomem(m->reference, err);
	if (!strcmp(name, "user.size")) {
		snprintf(s, sizeof(s), "%" PRIu64, SIZE_GIB(m->size));
		return dup_or_enomem(s, err);
	}
	if (!strcmp(name, "user.safe_to_manage"))
		return dup_or_enomem(m->safe ? "true" : "false", err);
	if (!strcmp(name, "user.reason_not_safe")) {
		if (m->safe || !m->reason[0]) {
			*err = -ENODATA;
			return NULL;
		}
		return dup_or_enomem(m->reason, err);
	}
	if (!strcmp(name, "user.cinder_id")) {
		if (!m->cinder_id[0]) {
			*err = -ENODATA;
			return NULL;
		}
		return dup_or_enomem(m->cinder_id, err);
	}
	*err = -ENOTSUP;
	return NULL;
}

/* Load the object that ino is; attributes live on object directories only. */
static int load_object(struct snapfs *fs, struct catalog_txn *txn, uint64_t ino,
		       struct node *node)
{
	int rc = tree_node_load(fs, txn, ino, node);

	if (!rc && node->type != NODE_OBJECT)
		rc = -ENOTSUP;
	return rc;
}

int attr_get(struct snapfs *fs, uint64_t ino, const char *name, char **value, size_t *len)
{
	struct catalog_txn *txn;
	struct node node;
	char *v = NULL;
	int rc = catalog_txn_begin(fs->cat, false, &txn);

	if (rc)
		return rc;
	rc = load_object(fs, txn, ino, &node);
	if (rc == -ENOTSUP && node.type == NODE_MANAGEABLE_FILE) {
		struct manageable m;

		rc = import_manageable_get(fs, txn, ino, &m);
		if (!rc)
			v = manageable_value(&m, name, &rc);
		goto value;
	}
	if (rc)
		goto out;
	if (!strncmp(name, META_PREFIX, strlen(META_PREFIX)) &&
	    (KIND(node.obj.kind) & ANY_OBJECT)) {
		const char *s = json_string_value(
			json_object_get(node.obj.metadata, name + strlen(META_PREFIX)));

		if (!s)
			rc = -ENODATA;
		else if (!(v = strdup(s)))
			rc = -ENOMEM;
	} else {
		const struct attr_def *a = attr_find(name, node.obj.kind);

		if (!a)
			rc = -ENOTSUP;
		else
			v = a->get(fs, txn, &node.obj, &rc);
	}
value:
	if (v) {
		*value = v;
		*len = strlen(v);
	}
out:
	tree_node_clear(&node);
	catalog_txn_abort(txn);
	return rc;
}

struct name_buf {
	char *data;
	size_t len, cap;
};

static int name_add(struct name_buf *b, const char *prefix, const char *name)
{
	size_t n = strlen(prefix) + strlen(name) + 1;

	if (b->len + n > b->cap) {
		size_t cap = (b->cap + n) * 2;
		char *d = realloc(b->data, cap);

		if (!d)
			return -ENOMEM;
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, prefix, strlen(prefix));
	memcpy(b->data + b->len + strlen(prefix), name, strlen(name) + 1);
	b->len += n;
	return 0;
}

int attr_list(struct snapfs *fs, uint64_t ino, char **names, size_t *len)
{
	struct name_buf b = {NULL, 0, 0};
	struct catalog_txn *txn;
	struct node node;
	int rc = catalog_txn_begin(fs->cat, false, &txn);

	if (rc)
		return rc;
	rc = tree_node_load(fs, txn, ino, &node);
	if (!rc && node.type == NODE_MANAGEABLE_FILE) {
		struct manageable m;

		rc = import_manageable_get(fs, txn, ino, &m);
		for (size_t i = 0; i < sizeof(manageable_attrs) / sizeof(manageable_attrs[0]) && !rc;
		     i++) {
			int err = 0;
			char *v = manageable_value(&m, manageable_attrs[i], &err);

			if (v)
				rc = name_add(&b, "", manageable_attrs[i]);
			else if (err != -ENODATA)
				rc = err;
			free(v);
		}
		goto out;
	}
	if (rc || node.type != NODE_OBJECT)
		goto out;
	for (size_t i = 0; i < sizeof(attrs) / sizeof(attrs[0]) && !rc; i++) {
		int err = 0;
		char *v;

		if (!(attrs[i].kinds & KIND(node.obj.kind)))
			continue;
		v = attrs[i].get(fs, txn, &node.obj, &err);
		if (v)
			rc = name_add(&b, "", attrs[i].name);
		else if (err != -ENODATA)
			rc = err;
		free(v);
	}
	if (!rc) {
		const char *key;
		json_t *val;

		json_object_foreach(node.obj.metadata, key, val) {
			rc = name_add(&b, META_PREFIX, key);
			if (rc)
				break;
		}
	}
out:
	tree_node_clear(&node);
	catalog_txn_abort(txn);
	if (rc) {
		free(b.data);
		return rc;
	}
	*names = b.data;
	*len = b.len;
	return 0;
}

struct meta_change {
	const char *key;
	const char *value; /* NULL: remove */
	int flags;
};

static int apply_meta(struct catalog_txn *txn, struct object *o, void *arg)
{
	const struct meta_change *c = arg;
	bool exists = json_object_get(o->metadata, c->key) != NULL;

	if (!c->value) {
		if (!exists)
			return -ENODATA;
		return json_object_del(o->metadata, c->key) ? -EIO : 0;
	}
	if ((c->flags & XATTR_CREATE) && exists)
		return log_refuse(-EEXIST, "%s has metadata key %s already", o->id, c->key);
	if ((c->flags & XATTR_REPLACE) && !exists)
		return -ENODATA;
	return json_object_set_new(o->metadata, c->key, json_string(c->value)) ? -ENOMEM : 0;
}

static int object_kind_of(struct snapfs *fs, uint64_t ino, enum object_kind *kind)
{
	struct node node;
	int rc = tree_node_get(fs, ino, &node);

	if (rc)
		return rc;
	*kind = node.type == NODE_OBJECT ? node.obj.kind : OBJ_NONE;
	if (node.type == NODE_MANAGEABLE_FILE)
		rc = log_refuse(-EPERM, "every attribute of a manageable file is read-only");
	tree_node_clear(&node);
	return rc;
}

/* setfattr -n user.manage -v FILE .../volumes/V/snapshots: the only
 * attribute of a snapshots/ directory. -ENOTSUP when ino is not one or
 * name is not user.manage. */
static int set_on_snapshots_dir(struct snapfs *fs, const struct cred *cred, uint64_t ino,
				const char *name, const char *value, size_t size)
{
	struct node node;
	uint64_t volume;
	char *v;
	int rc = tree_node_get(fs, ino, &node);

	if (rc)
		return rc;
	rc = node.type == NODE_VOLUME_SNAPSHOTS
		     ? 0
		     : log_refuse(-ENOTSUP, "this entry has no attribute %s", name);
	volume = node.obj.ino;
	tree_node_clear(&node);
	if (rc)
		return rc;
	if (strcmp(name, "user.manage"))
		return log_refuse(-ENOTSUP, "a snapshots/ directory has only user.manage");
	if (size && value[size - 1] == '\0')
		size--; /* a trailing NUL is tolerated, as for other attributes */
	if (!size || size > 255 || memchr(value, '\0', size))
		return log_refuse(-EINVAL, "user.manage takes a file name of 1 to 255 bytes");
	v = strndup(value, size);
	if (!v)
		return -ENOMEM;
	rc = snapshot_manage(fs, cred, volume, v);
	free(v);
	return rc;
}

int attr_set(struct snapfs *fs, const struct cred *cred, uint64_t ino, const char *name,
	     const char *value, size_t size, int flags)
{
	enum object_kind kind;
	const struct attr_def *a;
	char *v;
	int rc = object_kind_of(fs, ino, &kind);

	if (rc)
		return rc;
	if (kind == OBJ_NONE)
		return set_on_snapshots_dir(fs, cred, ino, name, value, size);
	if (!strncmp(name, META_PREFIX, strlen(META_PREFIX)) && (KIND(kind) & ANY_OBJECT)) {
		struct meta_change c = {name + strlen(META_PREFIX), NULL, flags};

		if (!attr_meta_key_is_valid(c.key))
			return log_refuse(-EINVAL,
					  "metadata key \"%.60s\" is not "
					  "[A-Za-z0-9-_:. ]{1,255}",
					  c.key);
		if (size > ATTR_VALUE_MAX)
			return log_refuse(-E2BIG, "a metadata value of %zu bytes (at most %d)",
					  size, ATTR_VALUE_MAX);
		if (memchr(value, '\0', size))
			return log_refuse(-EINVAL, "a metadata value holds a NUL byte");
		v = strndup(value, size);
		if (!v)
			return -ENOMEM;
		rc = value_is_text(v);
		c.value = v;
		if (!rc)
			rc = object_modify(fs, ino, apply_meta, &c);
		free(v);
		return rc;
	}
	a = attr_find(name, kind);
	if (!a)
		return log_refuse(-ENOTSUP, "a %s has no attribute %s", object_kind_name(kind),
				  name);
	if (!a->set)
		return log_refuse(-EPERM, "%s is read-only", name);
	if (memchr(value, '\0', size)) {
		/* setfattr never sends a NUL; a trailing one is tolerated */
		if (size == 0 || memchr(value, '\0', size) != value + size - 1)
			return log_refuse(-EINVAL, "the value holds a NUL byte");
		size--;
	}
	v = strndup(value, size);
	if (!v)
		return -ENOMEM;
	rc = a->set(fs, cred, ino, v, flags);
	free(v);
	return rc;
}

int attr_remove(struct snapfs *fs, const struct cred *cred, uint64_t ino, const char *name)
{
	enum object_kind kind;
	const struct attr_def *a;
	int rc = object_kind_of(fs, ino, &kind);

	if (rc)
		return rc;
	if (kind == OBJ_NONE)
		return log_refuse(-ENOTSUP, "this entry has no attribute %s to remove", name);
	if (!strncmp(name, META_PREFIX, strlen(META_PREFIX)) && (KIND(kind) & ANY_OBJECT)) {
		struct meta_change c = {name + strlen(META_PREFIX), NULL, 0};

		return object_modify(fs, ino, apply_meta, &c);
	}
	a = attr_find(name, kind);
	if (!a)
		return log_refuse(-ENOTSUP, "a %s has no attribute %s", object_kind_name(kind),
				  name);
	if (!a->remove)
		return log_refuse(-EPERM, "%s cannot be removed", name);
	return a->remove(fs, cred, ino);
}
