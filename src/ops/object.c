/* object.c - see object.h. */
#include "object.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "util.h"

int object_modify(struct snapfs *fs, uint64_t ino, int (*fn)(struct catalog_txn *txn, struct object *obj, void *arg),
		  void *arg)
{
	struct catalog_txn *txn;
	struct object obj;
	int rc = catalog_txn_begin(fs->cat, true, &txn);

	if (rc)
		return rc;
	rc = catalog_object_get(txn, ino, &obj);
	if (!rc)
		rc = fn(txn, &obj, arg);
	if (!rc) {
		obj.updated_at = time_now_usec();
		rc = catalog_object_update(txn, &obj);
	}
	object_clear(&obj);
	if (rc) {
		catalog_txn_abort(txn);
		return rc;
	}
	return catalog_txn_commit(txn);
}

struct owner_change {
	int what;
	mode_t mode;
	uid_t uid;
	gid_t gid;
};

static int apply_owner(struct catalog_txn *txn, struct object *obj, void *arg)
{
	const struct owner_change *c = arg;

	if (c->what & OBJECT_SET_MODE)
		obj->mode = c->mode & 07777;
	if (c->what & OBJECT_SET_UID)
		obj->uid = c->uid;
	if (c->what & OBJECT_SET_GID)
		obj->gid = c->gid;
	return 0;
}

int object_set_owner(struct snapfs *fs, const struct cred *cred, uint64_t ino, int what,
		     mode_t mode, uid_t uid, gid_t gid)
{
	struct owner_change c = {what, mode, uid, gid};

	if (!cred_is_admin(fs, cred))
		return log_refuse(-EPERM, "uid %u may not change owner or mode (admins only)",
				  (unsigned)cred->uid);
	return object_modify(fs, ino, apply_owner, &c);
}

int object_rename(struct snapfs *fs, const struct cred *cred, uint64_t ino, const char *new_name)
{
	struct catalog_txn *txn;
	struct object obj;
	int rc;

	rc = object_name_check(new_name);
	if (rc)
		return rc;
	rc = catalog_txn_begin(fs->cat, true, &txn);
	if (rc)
		return rc;
	rc = catalog_object_get(txn, ino, &obj);
	if (!rc && obj.kind == OBJ_TENANT && !cred_is_admin(fs, cred))
		rc = log_refuse(-EPERM, "uid %u may not rename tenants (admins only)",
				(unsigned)cred->uid);
	if (!rc && strcmp(obj.name, new_name)) {
		char old[256];

		snprintf(old, sizeof(old), "%s", obj.name);
		obj.updated_at = time_now_usec();
		rc = catalog_object_rename(txn, &obj, new_name);
		if (rc == -EEXIST)
			log_refuse(rc, "%s is the name of another object there", new_name);
		if (!rc)
			log_info("renamed %s %s to %s", obj.id, old, new_name);
	}
	object_clear(&obj);
	if (rc) {
		catalog_txn_abort(txn);
		return rc;
	}
	return catalog_txn_commit(txn);
}

int tenant_create(struct snapfs *fs, const struct cred *cred, const char *name, mode_t mode,
		  uint64_t *ino)
{
	struct catalog_txn *txn;
	struct object obj;
	int rc;

	if (!cred_is_admin(fs, cred))
		return log_refuse(-EPERM, "uid %u may not create tenant %s (admins only)",
				  (unsigned)cred->uid, name);
	rc = object_name_check(name);
	if (rc)
		return rc;
	object_init(&obj);
	obj.kind = OBJ_TENANT;
	obj.parent = 0;
	snprintf(obj.name, sizeof(obj.name), "%s", name);
	rc = uuid_generate_str(obj.id);
	if (rc)
		goto out;
	obj.uid = cred->uid;
	obj.gid = cred->gid;
	obj.mode = mode & 07777;
	obj.created_at = obj.updated_at = time_now_usec();
	rc = catalog_txn_begin(fs->cat, true, &txn);
	if (rc)
		goto out;
	rc = catalog_object_insert(txn, &obj);
	if (rc) {
		catalog_txn_abort(txn);
		goto out;
	}
	/* A tenant belongs to itself; its ino is known only after insert. */
	obj.tenant = obj.ino;
	rc = catalog_object_update(txn, &obj);
	if (rc) {
		catalog_txn_abort(txn);
		goto out;
	}
	rc = catalog_txn_commit(txn);
	if (!rc) {
		*ino = obj.ino;
		log_info("created tenant %s (%s)", name, obj.id);
	}
out:
	object_clear(&obj);
	return rc;
}

int tenant_delete(struct snapfs *fs, const struct cred *cred, uint64_t ino)
{
	struct catalog_txn *txn;
	struct object obj;
	int rc;

	if (!cred_is_admin(fs, cred))
		return -EPERM;
	rc = catalog_txn_begin(fs->cat, true, &txn);
	if (rc)
		return rc;
	rc = catalog_object_get(txn, ino, &obj);
	if (!rc && (catalog_children_any(txn, obj.ino, OBJ_VOLUME) ||
		    catalog_children_any(txn, obj.ino, OBJ_GROUP)))
		rc = -ENOTEMPTY;
	if (!rc)
		rc = catalog_object_delete(txn, &obj);
	if (!rc)
		log_info("deleted tenant %s (%s)", obj.name, obj.id);
	object_clear(&obj);
	if (rc) {
		catalog_txn_abort(txn);
		return rc;
	}
	return catalog_txn_commit(txn);
}
