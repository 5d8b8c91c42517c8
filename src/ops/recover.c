/* recover.c - see recover.h. */
#include "recover.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "group.h"
#include "log.h"
#include "share.h"
#include "object.h"
#include "snapshot.h"
#include "volume.h"

struct pending {
	struct catalog *cat;
	bool at_mount;
	size_t count, cap;
	struct object *objs;
};

/* Whether this run takes obj's operation: with one host, every one (at
 * mount); with several, this host's own (left by its previous run: at
 * mount only) and those of hosts that are gone. */
static bool ours_to_recover(struct pending *p, const struct object *obj)
{
	switch (catalog_op_owner_state(p->cat, obj->op_owner)) {
	case OWNER_MINE:
		return p->at_mount;
	case OWNER_GONE:
		return true;
	default:
		return false;
	}
}

static int collect_pending(const struct object *obj, void *arg)
{
	struct pending *p = arg;

	if (!*obj->op || !ours_to_recover(p, obj))
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
	int rc = share_file_remove(fs->share, vol->file);

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
	if (obj->kind == OBJ_GROUP || obj->kind == OBJ_CGSNAPSHOT) {
		int rc = group_recover(fs, obj);

		return rc == -EINVAL ? object_modify(fs, obj->ino, set_error, NULL) : rc;
	}
	if (obj->kind == OBJ_SNAPSHOT &&
	    (!strcmp(obj->op, "create") || !strcmp(obj->op, "delete") ||
	     !strcmp(obj->op, "manage") || !strcmp(obj->op, "unmanage")))
		return snapshot_recover(fs, obj);
	/* Ops that belong to a snapshot's or a group's operation, which
	 * clears them; one left over is cleared here. */
	if (obj->kind == OBJ_VOLUME &&
	    (!strncmp(obj->op, "snapshot", 8) || !strcmp(obj->op, "fill-source")))
		return object_modify(fs, obj->ino, clear_op, NULL);
	if (obj->kind == OBJ_VOLUME) {
		if (!strcmp(obj->op, "create") || !strcmp(obj->op, "fill"))
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

/* Which pass of recover_all() takes o. */
static int recover_pass(const struct object *o)
{
	if (o->kind == OBJ_SNAPSHOT)
		return o->link_id[0] && !strcmp(o->op, "create") ? 3 : 0;
	if (o->kind == OBJ_GROUP || o->kind == OBJ_CGSNAPSHOT)
		return 1;
	return 2;
}

/* A member snapshot being created belongs to its group snapshot's
 * operation: it is taken only with it (or alone once the group snapshot is
 * gone or settled), so that two hosts never split one group snapshot. */
static bool member_of_open_group(struct catalog_txn *txn, const struct object *o)
{
	struct object group;
	uint64_t ino;
	bool open;

	if (o->kind != OBJ_SNAPSHOT || !o->link_id[0] || strcmp(o->op, "create"))
		return false;
	if (catalog_id_lookup(txn, o->link_id, &ino))
		return false;
	if (catalog_object_get(txn, ino, &group)) {
		object_clear(&group);
		return false;
	}
	open = group.op[0] != '\0';
	object_clear(&group);
	return open;
}

static bool taken_here(const struct pending *p, size_t kept, const char *id)
{
	for (size_t i = 0; i < kept; i++)
		if (p->objs[i].kind == OBJ_CGSNAPSHOT && !strcmp(p->objs[i].id, id))
			return true;
	return false;
}

/* Make the operations of gone hosts this host's, all in one transaction:
 * another host that looks at the same time finds them taken. Objects
 * another host took first are left out (dropped from p); members of a
 * group snapshot another host settles too. Group snapshots come first. */
static int take_over(struct snapfs *fs, struct pending *p)
{
	struct catalog_txn *txn;
	size_t kept = 0;
	int rc = catalog_txn_begin(fs->cat, true, &txn);

	if (rc)
		return rc;
	/* the members last: they go with a group snapshot taken before them */
	for (size_t i = 0, j = p->count; i < j;) {
		if (p->objs[i].kind == OBJ_SNAPSHOT && p->objs[i].link_id[0]) {
			struct object t = p->objs[i];

			p->objs[i] = p->objs[--j];
			p->objs[j] = t;
		} else {
			i++;
		}
	}
	for (size_t i = 0; i < p->count; i++) {
		struct object now;
		int r = rc ? -ECANCELED : catalog_object_get(txn, p->objs[i].ino, &now);

		if (!r && !strcmp(now.op, p->objs[i].op) &&
		    !strcmp(now.op_owner, p->objs[i].op_owner) &&
		    catalog_op_owner_state(fs->cat, now.op_owner) != OWNER_LIVE &&
		    (!member_of_open_group(txn, &now) || taken_here(p, kept, now.link_id))) {
			if (catalog_op_owner_state(fs->cat, now.op_owner) == OWNER_GONE)
				log_info("recovery: taking over %s of %s (%s) from host %s, which is "
					 "gone", now.op, now.name, now.id,
					 now.op_owner[0] ? now.op_owner : "(none)");
			now.op_owner[0] = '\0'; /* written as this host's */
			rc = catalog_object_update(txn, &now);
			object_clear(&p->objs[kept]);
			object_init(&p->objs[kept]);
			object_copy(&p->objs[kept++], &now);
		}
		if (r != -ECANCELED)
			object_clear(&now); /* also after -ENOENT: see catalog_object_get() */
	}
	for (size_t i = kept; i < p->count; i++)
		object_clear(&p->objs[i]);
	p->count = kept;
	if (rc) {
		catalog_txn_abort(txn);
		return rc;
	}
	return catalog_txn_commit(txn);
}

/* failed: how many operations are still pending after their attempt. */
static int recover_ops(struct snapfs *fs, bool at_mount, size_t *failed)
{
	struct pending p = {fs->cat, at_mount, 0, 0, NULL};
	struct catalog_txn *txn;
	int rc = catalog_txn_begin(fs->cat, false, &txn);

	if (rc)
		return rc;
	rc = catalog_objects_foreach(txn, collect_pending, &p);
	catalog_txn_abort(txn);
	if (!rc && p.count && catalog_is_shared(fs->cat))
		rc = take_over(fs, &p);
	/* Snapshots first (their operations also hold their volume's op),
	 * except a group snapshot's members being created, which their group
	 * snapshot finishes or undoes; then groups and group snapshots (which
	 * hold their members' and sources' ops); then the rest; last, members
	 * whose group snapshot is gone, alone. Each object is read again
	 * first: an earlier step may have finished it. */
	for (int pass = 0; pass < 4 && !rc; pass++) {
		for (size_t i = 0; i < p.count && !rc; i++) {
			const struct object *o = &p.objs[i];
			struct object now;
			int r;

			if (pass != recover_pass(o))
				continue;
			rc = catalog_txn_begin(fs->cat, false, &txn);
			if (rc)
				break;
			r = catalog_object_get(txn, o->ino, &now);
			catalog_txn_abort(txn);
			if (!r && *now.op && !strcmp(now.op, o->op))
				r = recover_one(fs, &now);
			else if (r == -ENOENT || !r)
				r = 0; /* finished meanwhile */
			log_info("recovery: interrupted %s of %s (%s): %s", o->op, o->name, o->id,
				 r ? strerror(-r) : "done");
			if (r)
				(*failed)++;
			object_clear(&now);
		}
	}
	for (size_t i = 0; i < p.count; i++)
		object_clear(&p.objs[i]);
	free(p.objs);
	return rc;
}

int recover_all(struct snapfs *fs)
{
	size_t failed = 0;

	return recover_ops(fs, true, &failed);
}

int recover_gone_hosts(struct snapfs *fs)
{
	size_t failed = 0;

	return recover_ops(fs, false, &failed);
}

int recover_own(struct snapfs *fs)
{
	struct catalog_txn *txn;
	/* Taking the writer lock anew fences off a failed change that may still
	 * reach etcd, and brings the copy up to every change before it. */
	int rc = catalog_txn_begin(fs->cat, true, &txn);
	size_t failed = 0;

	if (rc)
		return rc;
	catalog_txn_abort(txn);
	log_info("recovery: etcd answers again: finishing or undoing what failed changes of this "
		 "host left");
	pthread_rwlock_wrlock(&fs->changes); /* no operation of this host runs */
	rc = recover_ops(fs, true, &failed);
	pthread_rwlock_unlock(&fs->changes);
	return rc ? rc : failed ? -EAGAIN : 0;
}
