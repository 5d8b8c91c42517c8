/* snapshot.c - see snapshot.h. */
#include "snapshot.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "group.h"
#include "log.h"
#include "object.h"
#include "qemu_img.h"
#include "reader.h"
#include "share.h"
#include "util.h"

bool snapshot_status_is_valid(const char *status)
{
	static const char *const statuses[] = {
		"creating", "available", "deleting", "error", "error_deleting",
		"backing-up", "restoring", "unmanaging",
	};

	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
		if (!strcmp(status, statuses[i]))
			return true;
	return false;
}

/* All snapshots of a volume, loaded. */
struct snap_list {
	size_t count, cap;
	struct object *objs;
};

static void snap_list_free(struct snap_list *l)
{
	for (size_t i = 0; i < l->count; i++)
		object_clear(&l->objs[i]);
	free(l->objs);
	l->objs = NULL;
	l->count = l->cap = 0;
}

struct collect_arg {
	struct catalog_txn *txn;
	struct snap_list *list;
};

static int collect_snapshot(const char *name, uint64_t ino, void *arg)
{
	struct collect_arg *a = arg;
	struct snap_list *l = a->list;
	int rc;

	if (l->count == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		struct object *o = realloc(l->objs, cap * sizeof(*o));

		if (!o)
			return -ENOMEM;
		l->objs = o;
		l->cap = cap;
	}
	rc = catalog_object_get(a->txn, ino, &l->objs[l->count]);
	l->count++; /* cleared by snap_list_free() even on failure */
	return rc;
}

static int snap_list_load(struct catalog_txn *txn, uint64_t volume, struct snap_list *l)
{
	struct collect_arg a = {txn, l};
	int rc;

	memset(l, 0, sizeof(*l));
	rc = catalog_children_foreach(txn, volume, OBJ_SNAPSHOT, collect_snapshot, &a);
	if (rc)
		snap_list_free(l);
	return rc;
}

/* The snapshot whose overlay is file, or NULL. */
static const struct object *snap_by_file(const struct snap_list *l, const char *file)
{
	for (size_t i = 0; i < l->count; i++)
		if (!strcmp(l->objs[i].file, file))
			return &l->objs[i];
	return NULL;
}

/* The snapshot whose overlay sits on file (its backing is file), or NULL. */
static const struct object *snap_above(const struct snap_list *l, const char *file)
{
	for (size_t i = 0; i < l->count; i++)
		if (!strcmp(l->objs[i].backing, file))
			return &l->objs[i];
	return NULL;
}

static enum image_format file_format(const struct object *vol, const char *file)
{
	char base[64];

	share_volume_base_name(vol->id, base, sizeof(base));
	if (!strcmp(file, base) && strcmp(vol->format, "qcow2"))
		return IMAGE_FORMAT_RAW;
	return IMAGE_FORMAT_QCOW2;
}

static const char *format_name(enum image_format f)
{
	return f == IMAGE_FORMAT_RAW ? "raw" : "qcow2";
}

int snapshot_layers(struct catalog_txn *txn, const struct object *snap,
		    char (*names)[256], enum image_format *formats, size_t max, size_t *n)
{
	struct snap_list l;
	struct object vol;
	const char *cur = snap->backing;
	size_t depth = 0;
	int rc;

	rc = catalog_object_get(txn, snap->parent, &vol);
	if (!rc)
		rc = snap_list_load(txn, vol.ino, &l);
	if (rc) {
		object_clear(&vol);
		return rc;
	}
	for (;;) {
		const struct object *below;

		if (depth == max || !*cur) {
			log_err("snapshot %s: chain of volume %s is broken or too deep", snap->id,
				vol.id);
			rc = -EIO;
			break;
		}
		snprintf(names[depth], 256, "%s", cur);
		formats[depth] = file_format(&vol, cur);
		depth++;
		below = snap_by_file(&l, cur);
		if (!below)
			break; /* the base file */
		cur = below->backing;
	}
	*n = depth;
	snap_list_free(&l);
	object_clear(&vol);
	return rc;
}

int snapshot_info_write(struct snapfs *fs, struct catalog_txn *txn, const struct object *vol,
			const char *active, const char *skip_id)
{
	struct snap_list l;
	json_t *info;
	int rc = snap_list_load(txn, vol->ino, &l);

	if (rc)
		return rc;
	info = json_object();
	json_object_set_new(info, "active", json_string(active));
	for (size_t i = 0; i < l.count; i++)
		if (!skip_id || strcmp(l.objs[i].id, skip_id))
			json_object_set_new(info, l.objs[i].id, json_string(l.objs[i].file));
	snap_list_free(&l);
	rc = share_info_write(&fs->share, vol->id, info);
	json_decref(info);
	return rc;
}

static int info_write_ino(struct snapfs *fs, uint64_t volume, const char *active,
			  const char *skip_id)
{
	struct catalog_txn *txn;
	struct object vol;
	int rc = catalog_txn_begin(fs->cat, false, &txn);

	if (rc)
		return rc;
	rc = catalog_object_get(txn, volume, &vol);
	if (!rc)
		rc = snapshot_info_write(fs, txn, &vol, active, skip_id);
	object_clear(&vol);
	catalog_txn_abort(txn);
	return rc;
}

/* ---- create ---- */

static void set_op(struct object *o, const char *op, const char *arg)
{
	snprintf(o->op, sizeof(o->op), "%s", op);
	snprintf(o->op_arg, sizeof(o->op_arg), "%s", arg);
}

int snapshot_record_add(struct catalog_txn *txn, const struct cred *cred, uint64_t volume,
			struct object *snap, struct object *vol)
{
	struct object tenant;
	int rc = catalog_object_get(txn, volume, vol);

	if (!rc && vol->kind != OBJ_VOLUME)
		rc = -EINVAL;
	if (!rc && (*vol->op || strcmp(vol->status, "available"))) {
		log_info("volume %s is %s: no snapshot now", vol->id, *vol->op ? vol->op : vol->status);
		rc = -EBUSY;
	}
	if (!rc)
		rc = catalog_object_get(txn, vol->tenant, &tenant);
	else
		object_init(&tenant);
	if (!rc) {
		snap->parent = vol->ino;
		snap->tenant = vol->tenant;
		snap->uid = cred->uid;
		snap->gid = tenant.gid;
		snap->mode = tenant.mode & 07777;
		snap->size = vol->size;
		snprintf(snap->file, sizeof(snap->file), "volume-%s.%s", vol->id, snap->id);
		snprintf(snap->backing, sizeof(snap->backing), "%s", vol->file);
		rc = catalog_object_insert(txn, snap);
	}
	object_clear(&tenant);
	if (!rc) {
		set_op(vol, "snapshot", snap->id);
		rc = catalog_object_update(txn, vol);
	}
	return rc;
}

static int create_record(struct snapfs *fs, const struct cred *cred, uint64_t volume,
			 struct object *snap, struct object *vol)
{
	struct catalog_txn *txn;
	int rc = catalog_txn_begin(fs->cat, true, &txn);

	if (rc)
		return rc;
	rc = snapshot_record_add(txn, cred, volume, snap, vol);
	if (rc) {
		catalog_txn_abort(txn);
		return rc;
	}
	return catalog_txn_commit(txn);
}

int snapshot_record_finish(struct catalog_txn *txn, uint64_t snap_ino)
{
	struct object snap, vol;
	int rc = catalog_object_get(txn, snap_ino, &snap);

	if (!rc)
		rc = catalog_object_get(txn, snap.parent, &vol);
	else
		object_init(&vol);
	if (!rc) {
		int64_t now = time_now_usec();

		snprintf(snap.status, sizeof(snap.status), "available");
		snap.progress = 100;
		set_op(&snap, "", "");
		snap.updated_at = now;
		snprintf(vol.file, sizeof(vol.file), "%s", snap.file);
		set_op(&vol, "", "");
		vol.updated_at = now;
		rc = catalog_object_update(txn, &snap);
		if (!rc)
			rc = catalog_object_update(txn, &vol);
	}
	object_clear(&snap);
	object_clear(&vol);
	return rc;
}

/* The last step of a create: the catalogue says what .info says. */
static int create_finish(struct snapfs *fs, uint64_t snap_ino)
{
	struct catalog_txn *txn;
	int rc = catalog_txn_begin(fs->cat, true, &txn);

	if (rc)
		return rc;
	rc = snapshot_record_finish(txn, snap_ino);
	if (rc) {
		catalog_txn_abort(txn);
		return rc;
	}
	return catalog_txn_commit(txn);
}

int snapshot_record_remove(struct catalog_txn *txn, uint64_t snap_ino)
{
	struct object snap, vol;
	int rc = catalog_object_get(txn, snap_ino, &snap);

	if (!rc)
		rc = catalog_object_get(txn, snap.parent, &vol);
	else
		object_init(&vol);
	if (!rc) {
		set_op(&vol, "", "");
		rc = catalog_object_update(txn, &vol);
	}
	if (!rc)
		rc = catalog_object_delete(txn, &snap);
	object_clear(&snap);
	object_clear(&vol);
	return rc;
}

/* Undo a create (only before .info names the overlay): no overlay, no
 * record, the volume idle. */
static int create_undo(struct snapfs *fs, uint64_t snap_ino)
{
	struct catalog_txn *txn;
	struct object snap;
	int rc = catalog_txn_begin(fs->cat, false, &txn);

	if (rc)
		return rc;
	rc = catalog_object_get(txn, snap_ino, &snap);
	catalog_txn_abort(txn);
	if (!rc)
		rc = share_file_remove(&fs->share, snap.file);
	object_clear(&snap);
	if (!rc)
		rc = catalog_txn_begin(fs->cat, true, &txn);
	if (rc)
		return rc;
	rc = snapshot_record_remove(txn, snap_ino);
	if (rc) {
		catalog_txn_abort(txn);
		return rc;
	}
	return catalog_txn_commit(txn);
}

int snapshot_overlay_create(struct snapfs *fs, const struct object *snap,
			    const struct object *vol)
{
	int rc = share_file_check_unused(&fs->share, vol->file);

	if (!rc)
		rc = qcow2_overlay_create(fs->share.dirfd, snap->file, vol->file,
					  file_format(vol, vol->file), vol->size, 0660);
	if (rc) {
		log_err("snapshot %s of volume %s: cannot create overlay %s", snap->id, vol->id,
			snap->file);
		rc = rc == -EBUSY || rc == -ENOSPC ? rc : -EIO;
	}
	return rc;
}

int snapshot_create(struct snapfs *fs, const struct cred *cred, uint64_t volume,
		    const char *name, uint64_t *ino)
{
	struct object snap, vol;
	int rc = object_name_check(name);

	if (rc)
		return rc;
	object_init(&snap);
	object_init(&vol);
	snap.kind = OBJ_SNAPSHOT;
	rc = uuid_generate_str(snap.id);
	if (rc)
		goto out;
	snprintf(snap.name, sizeof(snap.name), "%s", name);
	snprintf(snap.status, sizeof(snap.status), "creating");
	set_op(&snap, "create", "");
	snap.created_at = snap.updated_at = time_now_usec();

	/* Step 1: the intent, and the volume taken for this operation. */
	object_clear(&vol);
	rc = create_record(fs, cred, volume, &snap, &vol);
	if (rc)
		goto out;
	fault_point("snapshot-create-recorded");

	/* Step 2: the overlay, unless a process writes the active file. */
	rc = snapshot_overlay_create(fs, &snap, &vol);
	if (rc) {
		create_undo(fs, snap.ino);
		goto out;
	}
	fault_point("snapshot-create-overlay");

	/* Step 3: .info, the point of no return (recovery finishes from here). */
	rc = info_write_ino(fs, vol.ino, snap.file, NULL);
	if (rc) {
		create_undo(fs, snap.ino);
		rc = -EIO;
		goto out;
	}
	fault_point("snapshot-create-info");

	/* Step 4: available; the overlay is the volume's active file. */
	rc = create_finish(fs, snap.ino);
	if (rc)
		goto out;
	*ino = snap.ino;
	log_info("created snapshot %s (%s) of volume %s: overlay %s over %s", name, snap.id,
		 vol.id, snap.file, vol.file);
out:
	object_clear(&snap);
	object_clear(&vol);
	return rc;
}

/* ---- delete ---- */

struct delete_plan {
	struct snapfs *fs;
	const struct cred *cred;
	uint64_t ino;
	bool force;
	bool member;            /* deleted by its group snapshot's delete */
	struct object snap, vol;
	char higher[256];       /* the overlay above the snapshot's, "" if newest */
};

/* Step 1 (under the reader registry's lock): check and record. */
static int delete_record(void *arg)
{
	struct delete_plan *p = arg;
	struct catalog_txn *txn;
	struct snap_list l;
	int rc = catalog_txn_begin(p->fs->cat, true, &txn);

	if (rc)
		return rc;
	object_clear(&p->snap);
	object_clear(&p->vol);
	rc = catalog_object_get(txn, p->ino, &p->snap);
	if (!rc)
		rc = catalog_object_get(txn, p->snap.parent, &p->vol);
	else
		object_init(&p->vol);
	if (!rc && p->snap.kind != OBJ_SNAPSHOT)
		rc = -ENOTDIR;
	if (!rc && (*p->snap.op || *p->vol.op)) {
		log_info("snapshot %s: volume %s is busy (%s)", p->snap.id, p->vol.id,
			 *p->snap.op ? p->snap.op : p->vol.op);
		rc = -EBUSY;
	}
	if (!rc && p->snap.link_id[0] && !p->member) {
		log_info("snapshot %s belongs to group snapshot %s", p->snap.id, p->snap.link_id);
		rc = -EBUSY;
	}
	if (!rc && !p->force && !p->member && strcmp(p->snap.status, "available") &&
	    strcmp(p->snap.status, "error")) {
		log_info("snapshot %s is %s: not deletable", p->snap.id, p->snap.status);
		rc = -EBUSY;
	}
	if (!rc)
		rc = snap_list_load(txn, p->vol.ino, &l);
	if (!rc) {
		const struct object *above = snap_above(&l, p->snap.file);

		p->higher[0] = '\0';
		if (above)
			snprintf(p->higher, sizeof(p->higher), "%s", above->file);
		else if (strcmp(p->vol.file, p->snap.file))
			rc = -EIO; /* nothing above and not active: the chain is broken */
		snap_list_free(&l);
	}
	if (!rc) {
		snprintf(p->snap.status, sizeof(p->snap.status), "deleting");
		p->snap.progress = 0;
		if (p->snap.merge_state == MERGE_NONE)
			p->snap.merge_state = MERGE_STARTED;
		set_op(&p->snap, "delete", "");
		set_op(&p->vol, "snapshot-delete", p->snap.id);
		rc = catalog_object_update(txn, &p->snap);
		if (!rc)
			rc = catalog_object_update(txn, &p->vol);
	}
	if (rc) {
		catalog_txn_abort(txn);
		return rc;
	}
	return catalog_txn_commit(txn);
}

static int set_progress(struct catalog_txn *txn, struct object *o, void *arg)
{
	o->progress = *(const int *)arg;
	return 0;
}

struct progress_arg {
	struct snapfs *fs;
	uint64_t ino;
	int last;
};

static void on_progress(int percent, void *arg)
{
	struct progress_arg *p = arg;

	if (percent <= p->last || percent >= 100)
		return;
	p->last = percent;
	object_modify(p->fs, p->ino, set_progress, &percent);
}

static int set_merge_done(struct catalog_txn *txn, struct object *o, void *arg)
{
	o->merge_state = MERGE_DONE;
	return 0;
}

/* Steps 2 to 6 of a delete; also what recovery and a retry run again.
 * Commit and rebase are idempotent until the new .info is written: they
 * run only before MERGE_DONE is recorded, which happens before .info
 * changes; the later steps are idempotent. snap and vol are the records
 * as step 1 left them. */
static int delete_merge(struct snapfs *fs, const struct object *snap, const struct object *vol)
{
	struct progress_arg prog = {fs, snap->ino, -1};
	bool newest = !strcmp(vol->file, snap->file);
	struct catalog_txn *txn;
	struct snap_list l;
	char higher[256] = "";
	int rc;

	rc = catalog_txn_begin(fs->cat, false, &txn);
	if (rc)
		return rc;
	rc = snap_list_load(txn, vol->ino, &l);
	catalog_txn_abort(txn);
	if (rc)
		return rc;
	if (!newest) {
		const struct object *above = snap_above(&l, snap->file);

		if (above)
			snprintf(higher, sizeof(higher), "%s", above->file);
	}
	snap_list_free(&l);
	if (!newest && !*higher) {
		log_err("snapshot %s: no overlay above %s", snap->id, snap->file);
		return -EIO;
	}

	/* Once .info may name the backing active (after MERGE_DONE), a
	 * hypervisor may write to it: commit must never run again then. */
	if (snap->merge_state != MERGE_DONE) {
		rc = qemu_img_commit(fs->opts->qemu_img, fs->share.dirfd, snap->file, on_progress,
				     &prog);
		if (rc)
			return rc;
		fault_point("snapshot-delete-commit");
		if (!newest) {
			rc = qemu_img_rebase_unsafe(fs->opts->qemu_img, fs->share.dirfd, higher,
						    snap->backing,
						    format_name(file_format(vol, snap->backing)));
			if (rc)
				return rc;
			rc = share_file_sync(&fs->share, higher);
			if (rc)
				return rc;
			fault_point("snapshot-delete-rebase");
		}
		rc = share_file_sync(&fs->share, snap->backing);
		if (rc)
			return rc;
		rc = object_modify(fs, snap->ino, set_merge_done, NULL);
		if (rc)
			return rc;
	}
	rc = info_write_ino(fs, vol->ino, newest ? snap->backing : vol->file, snap->id);
	if (rc)
		return rc;
	fault_point("snapshot-delete-info");
	rc = share_file_remove(&fs->share, snap->file);
	if (rc)
		return rc;
	fault_point("snapshot-delete-unlink");

	/* The catalogue follows the share. */
	rc = catalog_txn_begin(fs->cat, true, &txn);
	if (rc)
		return rc;
	{
		struct object v, s, above;

		rc = catalog_object_get(txn, vol->ino, &v);
		object_init(&above);
		if (!rc && !newest) {
			uint64_t above_ino = 0;

			rc = snap_list_load(txn, vol->ino, &l);
			if (!rc) {
				const struct object *a = snap_above(&l, snap->file);

				if (a)
					above_ino = a->ino;
				snap_list_free(&l);
			}
			if (!rc && above_ino) {
				object_clear(&above);
				rc = catalog_object_get(txn, above_ino, &above);
				if (!rc) {
					snprintf(above.backing, sizeof(above.backing), "%s",
						 snap->backing);
					rc = catalog_object_update(txn, &above);
				}
			}
		}
		if (!rc) {
			if (newest)
				snprintf(v.file, sizeof(v.file), "%s", snap->backing);
			set_op(&v, "", "");
			v.updated_at = time_now_usec();
			rc = catalog_object_update(txn, &v);
		}
		if (!rc) {
			rc = catalog_object_get(txn, snap->ino, &s);
			if (!rc && s.link_id[0])
				rc = group_snapshot_member_forget(txn, &s);
			if (!rc)
				rc = catalog_object_delete(txn, &s);
			object_clear(&s);
		}
		object_clear(&v);
		object_clear(&above);
	}
	if (rc) {
		catalog_txn_abort(txn);
		return rc;
	}
	return catalog_txn_commit(txn);
}

static int delete_failed(struct catalog_txn *txn, struct object *o, void *arg)
{
	if (o->kind == OBJ_SNAPSHOT)
		snprintf(o->status, sizeof(o->status), "error_deleting");
	set_op(o, "", "");
	return 0;
}

static int delete_snapshot(struct snapfs *fs, const struct cred *cred, uint64_t ino, bool force,
			   bool member)
{
	struct delete_plan p = {fs, cred, ino, force, member, {0}, {0}, ""}; /* records below */
	struct catalog_txn *txn;
	int rc;

	if (force && !member && !cred_is_admin(fs, cred))
		return -EPERM;

	/* Refuse early, before anything is recorded, when QEMU writes. */
	rc = catalog_txn_begin(fs->cat, false, &txn);
	if (rc)
		goto out;
	rc = catalog_object_get(txn, ino, &p.snap);
	if (!rc)
		rc = catalog_object_get(txn, p.snap.parent, &p.vol);
	catalog_txn_abort(txn);
	if (!rc)
		rc = share_file_check_unused(&fs->share, p.vol.file);
	if (!rc)
		rc = share_file_check_unused(&fs->share, p.snap.backing);
	if (rc)
		goto out;

	rc = reader_exclude(fs, ino, delete_record, &p);
	if (rc)
		goto out;
	fault_point("snapshot-delete-recorded");
	rc = delete_merge(fs, &p.snap, &p.vol);
	if (rc) {
		log_err("snapshot %s (%s): merge of %s failed: status error_deleting", p.snap.name,
			p.snap.id, p.snap.file);
		object_modify(fs, p.snap.ino, delete_failed, NULL);
		object_modify(fs, p.vol.ino, delete_failed, NULL);
		rc = rc == -ENOSPC ? rc : -EIO;
		goto out;
	}
	reader_drop_unused(fs);
	log_info("deleted snapshot %s (%s) of volume %s%s", p.snap.name, p.snap.id, p.vol.id,
		 member ? " (with its group snapshot)" : force ? " (force)" : "");
out:
	object_clear(&p.snap);
	object_clear(&p.vol);
	return rc;
}

int snapshot_delete(struct snapfs *fs, const struct cred *cred, uint64_t ino, bool force)
{
	return delete_snapshot(fs, cred, ino, force, false);
}

int snapshot_delete_member(struct snapfs *fs, uint64_t ino)
{
	return delete_snapshot(fs, NULL, ino, true, true);
}

/* ---- recovery ---- */

int snapshot_recover(struct snapfs *fs, const struct object *snap)
{
	struct catalog_txn *txn;
	struct object vol;
	int rc;

	if (!strcmp(snap->op, "create")) {
		json_t *info = NULL;
		struct object v;
		bool done = false;

		rc = catalog_txn_begin(fs->cat, false, &txn);
		if (rc)
			return rc;
		rc = catalog_object_get(txn, snap->parent, &v);
		catalog_txn_abort(txn);
		if (!rc) {
			int r = share_info_read(&fs->share, v.id, &info);

			if (r == 0) {
				const char *active =
					json_string_value(json_object_get(info, "active"));

				done = active && !strcmp(active, snap->file);
				json_decref(info);
			} else if (r != -ENOENT) {
				/* unreadable .info: the overlay may be in use; keep it */
				log_err("snapshot %s: cannot tell whether its create finished", snap->id);
				rc = r;
			}
		}
		object_clear(&v);
		if (rc)
			return rc;
		return done ? create_finish(fs, snap->ino) : create_undo(fs, snap->ino);
	}
	if (!strcmp(snap->op, "delete")) {
		rc = catalog_txn_begin(fs->cat, false, &txn);
		if (rc)
			return rc;
		rc = catalog_object_get(txn, snap->parent, &vol);
		catalog_txn_abort(txn);
		if (!rc)
			rc = delete_merge(fs, snap, &vol);
		if (rc) {
			object_modify(fs, snap->ino, delete_failed, NULL);
			object_modify(fs, vol.ino, delete_failed, NULL);
		}
		object_clear(&vol);
		return rc;
	}
	log_err("snapshot %s: unknown interrupted operation '%s' left as is", snap->id, snap->op);
	return -EINVAL;
}
