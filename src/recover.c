/* recover.c - see recover.h. */
#include "recover.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
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

static int recover_one(struct snapfs *fs, const struct object *obj)
{
	if (obj->kind == OBJ_VOLUME) {
		if (!strcmp(obj->op, "create"))
			return undo_volume_create(fs, obj);
		if (!strcmp(obj->op, "delete"))
			return volume_delete_finish(fs, obj->ino, obj->file, obj->id);
		if (!strcmp(obj->op, "extend"))
			return volume_extend_finish(fs, obj->ino);
	}
	log_err("%s %s: unknown interrupted operation '%s' left as is", obj->name, obj->id,
		obj->op);
	return -EINVAL;
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
	for (size_t i = 0; i < p.count; i++) {
		if (!rc) {
			int r = recover_one(fs, &p.objs[i]);

			log_info("recovery: %s %s (%s) after a crash: %s", p.objs[i].op,
				 p.objs[i].name, p.objs[i].id, r ? strerror(-r) : "done");
		}
		object_clear(&p.objs[i]);
	}
	free(p.objs);
	return rc;
}
