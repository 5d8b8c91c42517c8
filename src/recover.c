/* recover.c - see recover.h. */
#include "recover.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "object.h"
#include "snapshot.h"
#include "volume.h"

struct pending {
	size_t count, cap;
	struct object *objs;
};

static int collect_pending(const struct object *obj, void *arg)
{
	struct pending *p = arg;

	if (!*obj->op)
		return 0;
	if (p->count == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 8;
		struct object *o = realloc(p->objs, cap * sizeof(*o));

		if (!o)
			return -ENOMEM;
		p->objs = o;
		p->cap = cap;
	}
	object_init(&p->objs[p->count]);
	object_copy(&p->objs[p->count], obj);
	p->count++;
	return 0;
}

static int undo_volume_create(struct snapfs *fs, const struct object *vol)
{
	struct catalog_txn *txn;
	int rc = share_file_remove(&fs->share, vol->file);

	if (rc)
		return rc;
	rc = catalog_txn_begin(fs->cat, true, &txn);
	if (rc)
		return rc;
	rc = catalog_object_delete(txn, vol);
	if (rc) {
		catalog_txn_abort(txn);
		return rc;
	}
	return catalog_txn_commit(txn);
}

/* A volume's "snapshot" and "snapshot-delete" ops belong to a snapshot's
 * operation, which clears them; one left over is cleared here. */
static int clear_op(struct catalog_txn *txn, struct object *o, void *arg)
{
	o->op[0] = o->op_arg[0] = '\0';
	return 0;
}

/* An operation this version does not know: leave the files, clear the
 * op (so that a force-delete can act), and say error. */
static int set_error(struct catalog_txn *txn, struct object *o, void *arg)
{
	snprintf(o->status, sizeof(o->status), "error");
	o->op[0] = o->op_arg[0] = '\0';
	return 0;
}

static int recover_one(struct snapfs *fs, const struct object *obj)
{
	if (obj->kind == OBJ_SNAPSHOT &&
	    (!strcmp(obj->op, "create") || !strcmp(obj->op, "delete")))
		return snapshot_recover(fs, obj);
	if (obj->kind == OBJ_VOLUME && !strncmp(obj->op, "snapshot", 8)) {
		struct object now;
		struct catalog_txn *txn;
		int rc = catalog_txn_begin(fs->cat, false, &txn);

		if (rc)
			return rc;
		rc = catalog_object_get(txn, obj->ino, &now);
		catalog_txn_abort(txn);
		if (!rc && *now.op)
			rc = object_modify(fs, obj->ino, clear_op, NULL);
		object_clear(&now);
		return rc;
	}
	if (obj->kind == OBJ_VOLUME) {
		if (!strcmp(obj->op, "create"))
			return undo_volume_create(fs, obj);
		if (!strcmp(obj->op, "delete"))
			return volume_delete_finish(fs, obj->ino, obj->file, obj->id);
		if (!strcmp(obj->op, "extend"))
			return volume_extend_finish(fs, obj->ino);
	}
	log_err("%s %s: unknown interrupted operation '%s': status error", obj->name, obj->id,
		obj->op);
	return object_modify(fs, obj->ino, set_error, NULL);
}

int recover_all(struct snapfs *fs)
{
	struct pending p = {0, 0, NULL};
	struct catalog_txn *txn;
	int rc = catalog_txn_begin(fs->cat, false, &txn);

	if (rc)
		return rc;
	rc = catalog_objects_foreach(txn, collect_pending, &p);
	catalog_txn_abort(txn);
	/* Snapshots first: their operations also hold their volume's op. */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < p.count && !rc; i++) {
			int r;

			if ((p.objs[i].kind == OBJ_SNAPSHOT) != (pass == 0))
				continue;
			r = recover_one(fs, &p.objs[i]);
			log_info("recovery: %s %s (%s) after a crash: %s", p.objs[i].op,
				 p.objs[i].name, p.objs[i].id, r ? strerror(-r) : "done");
		}
	}
	for (size_t i = 0; i < p.count; i++)
		object_clear(&p.objs[i]);
	free(p.objs);
	return rc;
}
