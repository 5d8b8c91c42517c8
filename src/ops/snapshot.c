/* snapshot.c - see snapshot.h. */
#include "snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attach.h"
#include "group.h"
#include "import.h"
#include "log.h"
#include "object.h"
#include "qemu_img.h"
#include "reader.h"
#include "quota.h"
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
	/* kind, ino, id, file, backing are all a list's users read */
	rc = catalog_object_get_brief(a->txn, ino, &l->objs[l->count]);
	l->count++; /* cleared by snap_list_free() even on failure */
	return rc;
}

/* ---- hidden layers: a volume's overlays that no snapshot names ---- */

static json_t *hidden_find(const struct object *vol, const char *file)
{
	size_t i;
	json_t *pair;

	if (vol->kind != OBJ_VOLUME || !json_is_array(vol->members))
		return NULL;
	json_array_foreach (vol->members, i, pair) {
		const char *f = json_string_value(json_array_get(pair, 0));

		if (f && !strcmp(f, file))
			return pair;
	}
	return NULL;
}

bool snapshot_hidden_get(const struct object *vol, const char *file, char *backing,
			 size_t len)
{
	json_t *pair = hidden_find(vol, file);

	if (!pair)
		return false;
	if (backing)
		snprintf(backing, len, "%s", json_string_value(json_array_get(pair, 1)) ?: "");
	return true;
}

int snapshot_hidden_set(struct object *vol, const char *file, const char *backing)
{
	json_t *pair = hidden_find(vol, file);

	if (pair)
		return json_array_set_new(pair, 1, json_string(backing)) ? -ENOMEM : 0;
	if (!vol->members)
		vol->members = json_array();
	pair = json_pack("[ss]", file, backing);
	if (!vol->members || !pair || json_array_append_new(vol->members, pair)) {
		json_decref(pair);
		return -ENOMEM;
	}
	return 0;
}

void snapshot_hidden_remove(struct object *vol, const char *file)
{
	size_t i;
	json_t *pair;

	if (!json_is_array(vol->members))
		return;
	json_array_foreach (vol->members, i, pair) {
		const char *f = json_string_value(json_array_get(pair, 0));

		if (f && !strcmp(f, file)) {
			json_array_remove(vol->members, i);
			break;
		}
	}
	if (!json_array_size(vol->members)) {
		json_decref(vol->members);
		vol->members = NULL;
	}
}

bool snapshot_hidden_any(const struct object *vol)
{
	return vol->kind == OBJ_VOLUME && json_array_size(vol->members) > 0;
}

int snapshot_hidden_mark_own(struct object *vol, const char *file)
{
	json_t *pair = hidden_find(vol, file);

	if (!pair)
		return -ENOENT;
	if (json_array_size(pair) > 2)
		return 0;
	return json_array_append_new(pair, json_string("snapfs")) ? -ENOMEM : 0;
}

bool snapshot_hidden_unmanaged_any(const struct object *vol)
{
	size_t i;
	json_t *pair;

	if (vol->kind != OBJ_VOLUME || !json_is_array(vol->members))
		return false;
	json_array_foreach (vol->members, i, pair)
		if (json_array_size(pair) < 3)
			return true;
	return false;
}

/* The volume's snapshots, then a pseudo record (kind OBJ_NONE, ino 0, no
 * id) per hidden layer: the list describes every overlay of the chain. */
static int snap_list_load(struct catalog_txn *txn, uint64_t volume, struct snap_list *l)
{
	struct collect_arg a = {txn, l};
	struct object vol;
	size_t i;
	json_t *pair;
	int rc;

	memset(l, 0, sizeof(*l));
	rc = catalog_children_foreach(txn, volume, OBJ_SNAPSHOT, collect_snapshot, &a);
	if (!rc)
		rc = catalog_object_get(txn, volume, &vol);
	else
		object_init(&vol);
	if (!rc && vol.kind == OBJ_VOLUME && json_is_array(vol.members)) {
		json_array_foreach (vol.members, i, pair) {
			struct object *o;

			if (l->count == l->cap) {
				size_t cap = l->cap ? l->cap * 2 : 8;

				o = realloc(l->objs, cap * sizeof(*o));
				if (!o) {
					rc = -ENOMEM;
					break;
				}
				l->objs = o;
				l->cap = cap;
			}
			o = &l->objs[l->count++];
			object_init(o);
			o->parent = volume;
			snprintf(o->file, sizeof(o->file), "%s",
				 json_string_value(json_array_get(pair, 0)) ?: "");
			snprintf(o->backing, sizeof(o->backing), "%s",
				 json_string_value(json_array_get(pair, 1)) ?: "");
		}
	}
	object_clear(&vol);
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
	return snapshot_layers_merging(txn, snap, names, formats, NULL, max, n);
}

int snapshot_layers_merging(struct catalog_txn *txn, const struct object *snap,
			    char (*names)[256], enum image_format *formats, bool *merging,
			    size_t max, size_t *n)
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
		below = snap_by_file(&l, cur);
		/* the overlay of a snapshot whose delete began: being merged
		 * into the file below (or merged, and about to go) */
		if (merging)
			merging[depth] = below && below->merge_state != MERGE_NONE;
		depth++;
		if (!below)
			break; /* the base file */
		cur = below->backing;
	}
	*n = depth;
	snap_list_free(&l);
	object_clear(&vol);
	return rc;
}

/* ---- changes between snapshots ---- */

static bool snapshot_idle(const struct object *s)
{
	return s->kind == OBJ_SNAPSHOT && s->merge_state == MERGE_NONE && !*s->op;
}

/* newer's chain, when newer can be served: names[1..*n-1] are the files
 * older snapshots may have on top. */
static int newer_layers(struct catalog_txn *txn, const struct object *newer, char (**names)[256],
			size_t *n)
{
	enum image_format *formats;
	int rc;

	*names = NULL;
	*n = 0;
	if (!snapshot_idle(newer))
		return -ENOENT;
	*names = malloc(SNAPSHOT_CHAIN_MAX * sizeof(**names));
	formats = malloc(SNAPSHOT_CHAIN_MAX * sizeof(*formats));
	rc = *names && formats ? snapshot_layers(txn, newer, *names, formats, SNAPSHOT_CHAIN_MAX, n)
			       : -ENOMEM;
	free(formats);
	if (rc) {
		free(*names);
		*names = NULL;
	}
	return rc;
}

static bool below_top(const struct object *newer, const struct object *older,
		      char (*names)[256], size_t n)
{
	if (older->parent != newer->parent || older->ino == newer->ino || !snapshot_idle(older))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!strcmp(names[i], older->backing))
			return true;
	return false;
}

int snapshot_is_older(struct catalog_txn *txn, const struct object *newer,
		      const struct object *older)
{
	char(*names)[256];
	size_t n;
	int rc = newer_layers(txn, newer, &names, &n);

	if (rc)
		return rc;
	rc = below_top(newer, older, names, n) ? 0 : -ENOENT;
	free(names);
	return rc;
}

struct older_walk {
	struct catalog_txn *txn;
	const struct object *newer;
	char (*names)[256];
	size_t n;
	int (*fn)(const struct object *older, void *arg);
	void *arg;
};

static int older_visit(const char *name, uint64_t ino, void *arg)
{
	struct older_walk *w = arg;
	struct object o;
	int rc = catalog_object_get_brief(w->txn, ino, &o);

	(void)name;
	if (!rc && below_top(w->newer, &o, w->names, w->n))
		rc = w->fn(&o, w->arg);
	object_clear(&o);
	return rc;
}

int snapshot_older_foreach(struct catalog_txn *txn, const struct object *newer,
			   int (*fn)(const struct object *older, void *arg), void *arg)
{
	struct older_walk w = {.txn = txn, .newer = newer, .fn = fn, .arg = arg};
	int rc = newer_layers(txn, newer, &w.names, &w.n);

	if (rc)
		return rc == -ENOENT ? 0 : rc;
	rc = catalog_children_foreach(txn, newer->parent, OBJ_SNAPSHOT, older_visit, &w);
	free(w.names);
	return rc;
}

/* One member of .info. */
struct info_member {
	const char *key, *value;
};

static int info_member_cmp(const void *a, const void *b)
{
	return strcmp(((const struct info_member *)a)->key, ((const struct info_member *)b)->key);
}

/* Append s as a JSON string, escaped as jansson escapes it. */
static void info_put_string(char **p, const char *s)
{
	char *o = *p;

	*o++ = '"';
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			*o++ = '\\';
			*o++ = (char)c;
		} else if (c < 0x20) {
			static const char short_esc[] = {['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n',
							 ['\r'] = 'r', ['\t'] = 't'};

			*o++ = '\\';
			if (c < sizeof(short_esc) && short_esc[c])
				*o++ = short_esc[c];
			else
				o += sprintf(o, "u%04X", c);
		} else {
			*o++ = (char)c;
		}
	}
	*o++ = '"';
	*p = o;
}

/* Room info_put_string() may take for s (6 bytes per control character). */
static size_t info_string_room(const char *s)
{
	return strlen(s) * 6 + 2;
}

/* .info's text: {"active": ..., "<snapshot id>": "<its overlay>", ...},
 * compact and with sorted keys, byte for byte what jansson's
 * json_dumps(JSON_COMPACT | JSON_SORT_KEYS) wrote before. Written here
 * because with thousands of snapshots building the jansson object and
 * sorting it was most of a snapshot create. */
static int info_text(const char *active, const struct snap_list *l, const char *skip_id, char **out,
		     size_t *out_len)
{
	struct info_member *m = malloc((l->count + 1) * sizeof(*m));
	size_t n = 0, room = 3;
	char *text, *p;

	if (!m)
		return -ENOMEM;
	m[n++] = (struct info_member){"active", active};
	for (size_t i = 0; i < l->count; i++)
		if (l->objs[i].kind == OBJ_SNAPSHOT && (!skip_id || strcmp(l->objs[i].id, skip_id)))
			m[n++] = (struct info_member){l->objs[i].id, l->objs[i].file};
	qsort(m, n, sizeof(*m), info_member_cmp);
	for (size_t i = 0; i < n; i++)
		room += info_string_room(m[i].key) + info_string_room(m[i].value) + 2;
	text = p = malloc(room);
	if (!text) {
		free(m);
		return -ENOMEM;
	}
	*p++ = '{';
	for (size_t i = 0; i < n; i++) {
		/* a key once (ids are unique: never happens) */
		if (i + 1 < n && !strcmp(m[i].key, m[i + 1].key))
			continue;
		if (p > text + 1)
			*p++ = ',';
		info_put_string(&p, m[i].key);
		*p++ = ':';
		info_put_string(&p, m[i].value);
	}
	*p++ = '}';
	*p = '\0';
	free(m);
	*out = text;
	*out_len = (size_t)(p - text);
	return 0;
}

int snapshot_info_write(struct snapfs *fs, struct catalog_txn *txn, const struct object *vol,
			const char *active, const char *skip_id)
{
	struct snap_list l;
	char *text;
	size_t len;
	int rc = snap_list_load(txn, vol->ino, &l);

	if (rc)
		return rc;
	rc = info_text(active, &l, skip_id, &text, &len);
	snap_list_free(&l);
	if (rc)
		return rc;
	rc = share_info_write(fs->share, vol->id, text, len);
	free(text);
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

/* Load snapshot snap_ino into *snap and its volume into *vol through txn.
 * Both are records afterwards in every case (object_clear() them). */
static int snap_get_with_volume(struct catalog_txn *txn, uint64_t snap_ino, struct object *snap,
				struct object *vol)
{
	int rc = catalog_object_get(txn, snap_ino, snap);

	if (!rc)
		return catalog_object_get(txn, snap->parent, vol);
	object_init(vol);
	return rc;
}

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
	if (!rc && (*vol->op || strcmp(vol->status, vol->attach[0] ? "in-use" : "available")))
		rc = log_refuse(-EBUSY, "volume %s is %s: no snapshot now", vol->id,
				*vol->op ? vol->op : vol->status);
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
	if (!rc) {
		int64_t add[QUOTA_RESOURCES] = {0, 1, (int64_t)SIZE_GIB(snap->size)};

		rc = quota_check(fs, txn, vol->tenant, add, true, "snapshot create");
	}
	if (rc) {
		catalog_txn_abort(txn);
		return rc;
	}
	return catalog_txn_commit(txn);
}

int snapshot_record_finish(struct catalog_txn *txn, uint64_t snap_ino)
{
	struct object snap, vol;
	int rc = snap_get_with_volume(txn, snap_ino, &snap, &vol);

	if (!rc) {
		int64_t now = time_now_usec();

		snprintf(snap.status, sizeof(snap.status), "available");
		snap.progress = 100;
		set_op(&snap, "", "");
		snap.updated_at = now;
		snprintf(vol.file, sizeof(vol.file), "%s", snap.file);
		if (vol.attach[0]) {
			char node[ATTACH_NODE_MAX], value[sizeof(vol.attach)];

			attach_overlay_node(snap.id, node, sizeof(node));
			attach_value_with_node(vol.attach, node, value, sizeof(value));
			snprintf(vol.attach, sizeof(vol.attach), "%s", value);
		}
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

/* Run step(txn, ino) in a write transaction of its own. */
static int in_write_txn(struct snapfs *fs, int (*step)(struct catalog_txn *, uint64_t),
			uint64_t ino)
{
	struct catalog_txn *txn;
	int rc = catalog_txn_begin(fs->cat, true, &txn);

	if (rc)
		return rc;
	rc = step(txn, ino);
	if (rc) {
		catalog_txn_abort(txn);
		return rc;
	}
	return catalog_txn_commit(txn);
}

/* The last step of a create: the catalogue says what .info says. */
static int create_finish(struct snapfs *fs, uint64_t snap_ino)
{
	return in_write_txn(fs, snapshot_record_finish, snap_ino);
}

int snapshot_record_remove(struct catalog_txn *txn, uint64_t snap_ino)
{
	struct object snap, vol;
	int rc = snap_get_with_volume(txn, snap_ino, &snap, &vol);

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
	struct object snap, vol;
	int rc = catalog_txn_begin(fs->cat, false, &txn);

	if (rc)
		return rc;
	rc = snap_get_with_volume(txn, snap_ino, &snap, &vol);
	catalog_txn_abort(txn);
	/* QEMU may hold the overlay open, never written: closing it is tidy,
	 * not needed (removing the file is safe either way) */
	if (!rc && vol.attach[0] && attach_overlay_del(fs, &vol, &snap))
		log_warn("snapshot %s: QEMU at %s may still hold %s open", snap.id, vol.attach,
			 snap.file);
	if (!rc)
		rc = share_file_remove(fs->share, snap.file);
	object_clear(&snap);
	object_clear(&vol);
	return rc ? rc : in_write_txn(fs, snapshot_record_remove, snap_ino);
}

struct overlay_spec {
	const char *name, *backing;
	enum image_format backing_fmt;
	uint64_t size;
};

static int overlay_fill(int fd, void *arg)
{
	const struct overlay_spec *o = arg;

	return qcow2_overlay_write(fd, o->name, o->backing, o->backing_fmt, o->size);
}

/* Create the qcow2 overlay name of size bytes on backing (format fmt) on the
 * share, with the share's owner and mode. */
static int overlay_file_create(struct snapfs *fs, const char *name, const char *backing,
			       enum image_format fmt, uint64_t size)
{
	struct overlay_spec o = {name, backing, fmt, size};

	return share_file_create(fs->share, name, overlay_fill, &o);
}

int snapshot_overlay_create(struct snapfs *fs, const struct object *snap,
			    const struct object *vol)
{
	int rc = vol->attach[0] ? 0 : share_file_check_unused(fs->share, vol->file);

	if (!rc)
		rc = overlay_file_create(fs, snap->file, vol->file, file_format(vol, vol->file),
					 vol->size);
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

	/* Attached: QEMU opens the overlay and puts it on top; from then on the
	 * guest writes it, and the create can only be finished. */
	if (vol.attach[0]) {
		const struct object *vols[] = {&vol}, *snaps[] = {&snap};
		bool switched = false;

		rc = attach_overlay_add(fs, &vol, &snap);
		if (rc) {
			create_undo(fs, snap.ino);
			goto out;
		}
		fault_point("snapshot-create-qmp-added");
		rc = attach_overlays_switch(fs, vols, snaps, 1);
		/* a switch that failed may still have happened (a timeout) */
		if (rc && snapshot_create_switched(fs, &snap, &switched)) {
			log_err("snapshot %s of volume %s: left creating until QEMU answers (the "
				"next mount decides)", snap.id, vol.id);
			goto out;
		}
		if (rc && !switched) {
			create_undo(fs, snap.ino);
			goto out;
		}
		rc = 0;
		fault_point("snapshot-create-qmp-switched");
	}

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

int snapshot_check_unread(struct snapfs *fs, const struct object *snap)
{
	int rc = catalog_held_elsewhere(fs->cat, snap->ino);

	if (rc == 1)
		log_info("snapshot %s (%s) is open for reading on another host: not now", snap->name,
			 snap->id);
	return rc == 1 ? -EBUSY : rc;
}

struct delete_plan {
	struct snapfs *fs;
	const struct cred *cred;
	uint64_t ino;
	bool force;
	bool member;            /* deleted by its group snapshot's delete */
	struct object snap, vol;
	char higher[256];       /* the overlay above the snapshot's, "" if newest */
};

/* Step 1 in txn: check and record. */
static int delete_record_in(struct delete_plan *p, struct catalog_txn *txn)
{
	struct snap_list l;
	int rc;

	object_clear(&p->snap);
	object_clear(&p->vol);
	rc = snap_get_with_volume(txn, p->ino, &p->snap, &p->vol);
	if (!rc && p->snap.kind != OBJ_SNAPSHOT)
		rc = -ENOTDIR;
	if (!rc && (*p->snap.op || *p->vol.op))
		rc = log_refuse(-EBUSY, "snapshot %s: volume %s is busy (%s)", p->snap.id,
				p->vol.id, *p->snap.op ? p->snap.op : p->vol.op);
	if (!rc && p->snap.link_id[0] && !p->member)
		rc = log_refuse(-EBUSY, "snapshot %s belongs to group snapshot %s", p->snap.id,
				p->snap.link_id);
	if (!rc)
		rc = snapshot_check_unread(p->fs, &p->snap);
	if (!rc && !p->force && !p->member && strcmp(p->snap.status, "available") &&
	    strcmp(p->snap.status, "error"))
		rc = log_refuse(-EBUSY, "snapshot %s is %s: not deletable", p->snap.id,
				p->snap.status);
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
	return rc;
}

/* Step 1 (under the reader registry's lock): check and record. */
static int delete_record(void *arg)
{
	struct delete_plan *p = arg;
	struct catalog_txn *txn;
	int rc = catalog_txn_begin(p->fs->cat, true, &txn);

	if (rc)
		return rc;
	rc = delete_record_in(p, txn);
	if (rc) {
		catalog_txn_abort(txn);
		return rc;
	}
	return catalog_txn_commit(txn);
}

int snapshot_delete_member_record(struct snapfs *fs, struct catalog_txn *txn, uint64_t ino)
{
	struct delete_plan p = {fs, NULL, ino, true, true, {0}, {0}, ""}; /* records below */
	int rc;

	object_init(&p.snap);
	object_init(&p.vol);
	rc = delete_record_in(&p, txn);
	object_clear(&p.snap);
	object_clear(&p.vol);
	return rc;
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

/* The hidden layer of vol whose backing is file: its name into out. */
static bool hidden_get_above(const struct object *vol, const char *file, char *out, size_t len)
{
	size_t i;
	json_t *pair;

	if (!json_is_array(vol->members))
		return false;
	json_array_foreach (vol->members, i, pair) {
		const char *b = json_string_value(json_array_get(pair, 1));

		if (b && !strcmp(b, file)) {
			snprintf(out, len, "%s", json_string_value(json_array_get(pair, 0)) ?: "");
			return true;
		}
	}
	return false;
}

/* The last step of a delete: the catalogue follows the share. Forget snap;
 * when it was not the newest, the snapshot (or hidden layer) above its
 * overlay now sits on its backing; when it was, the volume's active file is
 * its backing. */
static int delete_forget(struct snapfs *fs, const struct object *snap, const struct object *vol,
			 bool newest)
{
	struct catalog_txn *txn;
	struct object v, s, above;
	struct snap_list l;
	char higher[256];
	int rc = catalog_txn_begin(fs->cat, true, &txn);

	if (rc)
		return rc;
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
				snprintf(above.backing, sizeof(above.backing), "%s", snap->backing);
				rc = catalog_object_update(txn, &above);
			}
		}
		/* a hidden layer above: the volume's record says where it now
		 * sits (updated with the volume below) */
		if (!rc && !above_ino && hidden_get_above(&v, snap->file, higher, sizeof(higher)))
			rc = snapshot_hidden_set(&v, higher, snap->backing);
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
	if (rc) {
		catalog_txn_abort(txn);
		return rc;
	}
	return catalog_txn_commit(txn);
}

/* The file above file in vol's chain (the overlay whose backing it is),
 * into out; -EIO when there is none. */
static int file_above(struct snapfs *fs, const struct object *vol, const char *file, char *out,
		      size_t len)
{
	struct catalog_txn *txn;
	struct snap_list l;
	int rc = catalog_txn_begin(fs->cat, false, &txn);

	if (rc)
		return rc;
	rc = snap_list_load(txn, vol->ino, &l);
	catalog_txn_abort(txn);
	if (rc)
		return rc;
	{
		const struct object *above = snap_above(&l, file);

		if (above)
			snprintf(out, len, "%s", above->file);
		else
			rc = -EIO;
	}
	snap_list_free(&l);
	if (rc)
		log_err("volume %s: no overlay above %s", vol->id, file);
	return rc;
}

/* upper's header must name below as its backing (none when below is ""),
 * as after a merge of dropped. -EIO with a log line otherwise: the files
 * stay as they are. */
static int merged_check(struct snapfs *fs, const struct object *vol, const char *upper,
			const char *dropped, const char *below)
{
	struct image_info info;
	int rc = qcow2_probe(fs->share->dirfd, upper, &info);

	if (!rc && (info.has_backing ? strcmp(info.backing_name, below) : *below != '\0'))
		rc = -EIO;
	if (rc)
		log_err("volume %s: %s does not have %s as its backing%s%s", vol->id, upper,
			*below ? below : "no file", *dropped ? " after the merge of " : "", dropped);
	return rc ? -EIO : 0;
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
	char higher[256] = "";
	int rc;

	if (!newest) {
		rc = file_above(fs, vol, snap->file, higher, sizeof(higher));
		if (rc)
			return rc;
	}

	/* Once .info may name the backing active (after MERGE_DONE), a
	 * hypervisor may write to it: commit must never run again then. */
	if (snap->merge_state != MERGE_DONE) {
		/* the overlay must still sit on the snapshot's data (a merge QEMU
		 * did for an attached volume may have changed that) */
		rc = merged_check(fs, vol, snap->file, "", snap->backing);
		if (rc)
			return rc;
		rc = qemu_img_commit(fs->opts->qemu_img, fs->share->dirfd, snap->file, on_progress,
				     &prog);
		if (rc)
			return rc;
		fault_point("snapshot-delete-commit");
		if (!newest) {
			rc = qemu_img_rebase_unsafe(fs->opts->qemu_img, fs->share->dirfd, higher,
						    snap->backing,
						    format_name(file_format(vol, snap->backing)));
			if (rc)
				return rc;
			rc = share_file_sync(fs->share, higher);
			if (rc)
				return rc;
			fault_point("snapshot-delete-rebase");
		}
		rc = share_file_sync(fs->share, snap->backing);
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
	rc = share_file_remove(fs->share, snap->file);
	if (rc)
		return rc;
	fault_point("snapshot-delete-unlink");
	return delete_forget(fs, snap, vol, newest);
}

static int set_op_arg(struct catalog_txn *txn, struct object *o, void *arg)
{
	snprintf(o->op_arg, sizeof(o->op_arg), "%s", (const char *)arg);
	return 0;
}

struct push_arg {
	const char *file, *below, *value;
};

static int push_record(struct catalog_txn *txn, struct object *vol, void *arg)
{
	const struct push_arg *p = arg;
	int rc = snapshot_hidden_set(vol, p->file, p->below);

	if (!rc)
		rc = snapshot_hidden_mark_own(vol, p->file);
	if (!rc) {
		snprintf(vol->file, sizeof(vol->file), "%s", p->file);
		snprintf(vol->attach, sizeof(vol->attach), "%s", p->value);
	}
	return rc;
}

/* Deleting the newest snapshot snap of attached vol (its overlay is the
 * active file): put a new overlay on top, as a hidden layer (its name kept
 * in snap's op_arg first, so that a retry or recovery reuses it), so that
 * snap's overlay is a middle file that block-commit merges. Switching
 * flushes the old active file in QEMU; a block-stream into the active file
 * (Nova's way) would leave the pulled data in QEMU's cache until the guest
 * flushes, while its source file is deleted, and QEMU 7.2 refuses it when a
 * user of the node holds the resize permission (a writable FUSE export).
 * The volume's record and .info then name the new overlay active; *vol is
 * reloaded. Idempotent. */
static int push_overlay(struct snapfs *fs, const struct object *snap, struct object *vol)
{
	enum attach_overlay_state state;
	struct object top;
	char value[sizeof(vol->attach)], node[ATTACH_NODE_MAX];
	struct push_arg pa;
	const char *dot;
	int rc = 0;

	object_init(&top);
	if (!snap->op_arg[0]) {
		char uuid[UUID_STR_LEN], name[256];

		rc = uuid_generate_str(uuid);
		snprintf(name, sizeof(name), "volume-%s.%s", vol->id, uuid);
		if (!rc)
			rc = object_modify(fs, snap->ino, set_op_arg, name);
		snprintf(top.file, sizeof(top.file), "%s", name);
	} else {
		snprintf(top.file, sizeof(top.file), "%s", snap->op_arg);
	}
	dot = strrchr(top.file, '.');
	snprintf(top.id, sizeof(top.id), "%s", dot ? dot + 1 : "");
	if (!rc)
		rc = attach_overlay_state(fs, vol, &top, &state);
	if (!rc && state == ATTACH_ABSENT) {
		rc = share_file_remove(fs->share, top.file);
		if (!rc)
			rc = overlay_file_create(fs, top.file, vol->file, IMAGE_FORMAT_QCOW2,
						 vol->size);
		if (!rc)
			rc = attach_overlay_add(fs, vol, &top);
		state = ATTACH_ADDED;
	}
	if (!rc && state == ATTACH_ADDED) {
		const struct object *vols[] = {vol}, *tops[] = {&top};

		rc = attach_overlays_switch(fs, vols, tops, 1);
	}
	if (rc) {
		log_err("snapshot %s of volume %s: no overlay %s on top in QEMU", snap->id, vol->id,
			top.file);
		object_clear(&top);
		return rc == -ENOSPC ? rc : -EIO;
	}
	fault_point("snapshot-delete-pushed");
	attach_overlay_node(top.id, node, sizeof(node));
	attach_value_with_node(vol->attach, node, value, sizeof(value));
	pa = (struct push_arg){top.file, vol->file, value};
	rc = object_modify(fs, vol->ino, push_record, &pa);
	if (!rc)
		rc = info_write_ino(fs, vol->ino, top.file, NULL);
	if (!rc) {
		uint64_t ino = vol->ino;
		struct catalog_txn *txn;

		rc = catalog_txn_begin(fs->cat, false, &txn);
		if (!rc) {
			object_clear(vol);
			rc = catalog_object_get(txn, ino, vol);
			catalog_txn_abort(txn);
		}
	}
	if (!rc)
		log_info("snapshot %s of volume %s: overlay %s put on top to commit %s", snap->id,
			 vol->id, top.file, snap->file);
	object_clear(&top);
	return rc;
}

/* delete_merge() for an attached volume: QEMU merges. The snapshot's
 * overlay is committed into its backing (block-commit; QEMU writes the
 * backing's name into the overlay above), after push_overlay() when it is
 * the active file. A job found under way after a crash is followed; an
 * overlay already gone from QEMU's chain means the job finished; the
 * headers on the share are checked before anything is recorded. */
static int delete_merge_attached(struct snapfs *fs, const struct object *snap,
				 const struct object *vol_in)
{
	struct progress_arg prog = {fs, snap->ino, -1};
	char job[64], higher[256] = "";
	struct object vol;
	bool present = true;
	int rc = 0;

	object_init(&vol);
	object_copy(&vol, vol_in);
	attach_job_id(snap->id, job, sizeof(job));
	if (!strcmp(vol.file, snap->file)) {
		/* the newest: a new overlay on top makes it a middle file */
		if (snap->merge_state == MERGE_DONE) {
			log_err("snapshot %s: merged, yet its overlay is the active file", snap->id);
			rc = -EIO;
		} else {
			rc = push_overlay(fs, snap, &vol);
		}
	}
	if (!rc)
		rc = file_above(fs, &vol, snap->file, higher, sizeof(higher));
	if (!rc && snap->merge_state != MERGE_DONE) {
		rc = attach_file_present(fs, &vol, snap->file, &present);
		if (!rc && present)
			rc = attach_commit(fs, &vol, snap->file, snap->backing, job, on_progress,
					   &prog);
		if (!rc)
			rc = merged_check(fs, &vol, higher, snap->file, snap->backing);
		if (!rc) {
			attach_file_drop(fs, &vol, snap->file);
			fault_point("snapshot-delete-job");
			rc = share_file_sync(fs->share, higher);
		}
		if (!rc)
			rc = share_file_sync(fs->share, snap->backing);
		if (!rc)
			rc = object_modify(fs, snap->ino, set_merge_done, NULL);
	}
	if (!rc)
		rc = info_write_ino(fs, vol.ino, vol.file, snap->id);
	if (rc)
		goto out;
	fault_point("snapshot-delete-info");
	rc = share_file_remove(fs->share, snap->file);
	if (rc)
		goto out;
	fault_point("snapshot-delete-unlink");
	rc = delete_forget(fs, snap, &vol, false);
out:
	object_clear(&vol);
	return rc;
}

static int delete_failed(struct catalog_txn *txn, struct object *o, void *arg)
{
	if (o->kind == OBJ_SNAPSHOT)
		snprintf(o->status, sizeof(o->status), "error_deleting");
	set_op(o, "", "");
	return 0;
}

/* Steps 2 to 6 of the delete step 1 recorded (p->snap and p->vol as it
 * left them); status error_deleting when the merge fails. */
static int delete_run(struct delete_plan *p)
{
	struct snapfs *fs = p->fs;
	int rc;

	fault_point("snapshot-delete-recorded");
	rc = p->vol.attach[0] ? delete_merge_attached(fs, &p->snap, &p->vol)
			      : delete_merge(fs, &p->snap, &p->vol);
	if (rc) {
		log_err("snapshot %s (%s): merge of %s failed: status error_deleting", p->snap.name,
			p->snap.id, p->snap.file);
		object_modify(fs, p->snap.ino, delete_failed, NULL);
		object_modify(fs, p->vol.ino, delete_failed, NULL);
		return rc == -ENOSPC ? rc : -EIO;
	}
	reader_drop_unused(fs);
	log_info("deleted snapshot %s (%s) of volume %s%s", p->snap.name, p->snap.id, p->vol.id,
		 p->member ? " (with its group snapshot)" : p->force ? " (force)" : "");
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
	rc = snap_get_with_volume(txn, ino, &p.snap, &p.vol);
	catalog_txn_abort(txn);
	/* An attached volume's files are QEMU's: it merges them itself. */
	if (!rc && !p.vol.attach[0])
		rc = share_file_check_unused(fs->share, p.vol.file);
	if (!rc && !p.vol.attach[0])
		rc = share_file_check_unused(fs->share, p.snap.backing);
	if (rc)
		goto out;

	rc = reader_exclude(fs, ino, delete_record, &p);
	if (!rc)
		rc = delete_run(&p);
out:
	object_clear(&p.snap);
	object_clear(&p.vol);
	return rc;
}

static int abandon_txn(struct catalog_txn *txn, uint64_t ino)
{
	struct object snap, vol;
	int rc = snap_get_with_volume(txn, ino, &snap, &vol);

	if (!rc && !strcmp(snap.op, "delete")) {
		snprintf(snap.status, sizeof(snap.status), "error_deleting");
		set_op(&snap, "", "");
		rc = catalog_object_update(txn, &snap);
		if (!rc && !strcmp(vol.op, "snapshot-delete") && !strcmp(vol.op_arg, snap.id)) {
			set_op(&vol, "", "");
			rc = catalog_object_update(txn, &vol);
		}
	}
	object_clear(&snap);
	object_clear(&vol);
	return rc == -ENOENT ? 0 : rc;
}

int snapshot_delete_abandon(struct snapfs *fs, uint64_t ino)
{
	return in_write_txn(fs, abandon_txn, ino);
}

int snapshot_delete_recorded(struct snapfs *fs, uint64_t ino)
{
	struct delete_plan p = {fs, NULL, ino, true, true, {0}, {0}, ""}; /* records below */
	struct catalog_txn *txn;
	int rc = catalog_txn_begin(fs->cat, false, &txn);

	if (rc)
		return rc;
	rc = snap_get_with_volume(txn, ino, &p.snap, &p.vol);
	catalog_txn_abort(txn);
	if (!rc && strcmp(p.snap.op, "delete"))
		rc = -EINVAL; /* not recorded: snapshot_delete_member() */
	if (!rc)
		rc = delete_run(&p);
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

/* ---- manage and unmanage ---- */

/* The last step of a manage: available; an adopted top becomes the
 * volume's active file (op_arg "active"), an adopted hidden layer leaves
 * it. The volume is idle again. */
static int manage_finish_txn(struct catalog_txn *txn, uint64_t snap_ino)
{
	struct object snap, vol;
	int rc = snap_get_with_volume(txn, snap_ino, &snap, &vol);

	if (!rc) {
		int64_t now = time_now_usec();

		if (!strcmp(snap.op_arg, "active"))
			snprintf(vol.file, sizeof(vol.file), "%s", snap.file);
		snprintf(snap.status, sizeof(snap.status), "available");
		snap.progress = 100;
		set_op(&snap, "", "");
		snap.updated_at = vol.updated_at = now;
		set_op(&vol, "", "");
		rc = catalog_object_update(txn, &snap);
		if (!rc)
			rc = catalog_object_update(txn, &vol);
	}
	object_clear(&snap);
	object_clear(&vol);
	return rc;
}

/* Undo a manage before .info names the snapshot: forget the record (the
 * file stays: snapfs did not make it), give a hidden layer back. */
static int manage_undo_txn(struct catalog_txn *txn, uint64_t snap_ino)
{
	struct object snap, vol;
	int rc = snap_get_with_volume(txn, snap_ino, &snap, &vol);

	if (!rc && !strcmp(snap.op_arg, "hidden"))
		rc = snapshot_hidden_set(&vol, snap.file, snap.backing);
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


struct manage_plan {
	struct snapfs *fs;
	const struct cred *cred;
	uint64_t volume;
	const char *file;
	char snap_id[UUID_STR_LEN];
	bool hidden;            /* FILE is a hidden layer of the volume */
	char backing[256];      /* FILE's backing: the top of the new snapshot's data */
	uint64_t size;          /* the virtual size of that backing file */
	struct object snap;     /* the record, once inserted */
};

/* Step 1 of a manage, in txn: check again and record op "manage". */
static int manage_record(struct catalog_txn *txn, struct manage_plan *p)
{
	struct object vol, tenant;
	int rc = catalog_object_get(txn, p->volume, &vol);

	object_init(&tenant);
	if (!rc && (*vol.op || strcmp(vol.status, "available")))
		rc = log_refuse(-EBUSY, "manage %s: volume %s is %s", p->file, vol.id,
				*vol.op ? vol.op : vol.status);
	if (!rc && (p->hidden ? !snapshot_hidden_get(&vol, p->file, NULL, 0)
			      : strcmp(vol.file, p->backing)))
		rc = log_refuse(-EBUSY, "manage %s: volume %s changed meanwhile", p->file, vol.id);
	if (!rc) {
		object_clear(&tenant); /* catalog_object_get() overwrites, never frees */
		rc = catalog_object_get(txn, vol.tenant, &tenant);
	}
	if (!rc) {
		struct object *s = &p->snap;

		s->kind = OBJ_SNAPSHOT;
		s->parent = vol.ino;
		s->tenant = vol.tenant;
		snprintf(s->id, sizeof(s->id), "%s", p->snap_id);
		snprintf(s->name, sizeof(s->name), "%s", p->snap_id);
		snprintf(s->status, sizeof(s->status), "creating");
		set_op(s, "manage", p->hidden ? "hidden" : "active");
		snprintf(s->file, sizeof(s->file), "%s", p->file);
		snprintf(s->backing, sizeof(s->backing), "%s", p->backing);
		s->size = p->size;
		s->uid = p->cred->uid;
		s->gid = tenant.gid;
		s->mode = tenant.mode & 07777;
		s->created_at = s->updated_at = time_now_usec();
		rc = catalog_object_insert(txn, s);
	}
	if (!rc) {
		int64_t add[QUOTA_RESOURCES] = {0, 1, (int64_t)SIZE_GIB(p->snap.size)};

		rc = quota_check(p->fs, txn, vol.tenant, add, true, "snapshot manage");
	}
	if (!rc) {
		if (p->hidden)
			snapshot_hidden_remove(&vol, p->file);
		set_op(&vol, "snapshot-manage", p->snap_id);
		rc = catalog_object_update(txn, &vol);
	}
	object_clear(&vol);
	object_clear(&tenant);
	return rc;
}

/* Check FILE for a manage of volume (read-only): fills the plan. */
static int manage_check(struct snapfs *fs, struct manage_plan *p)
{
	char vid[UUID_STR_LEN], why[224];
	struct image_info info, below;
	struct catalog_txn *txn;
	struct object vol;
	uint64_t ino;
	int rc;

	if (import_name_parse(p->file, vid, p->snap_id) != SHARE_NAME_OVERLAY) {
		log_err("manage: %.255s is not a snapshot file volume-<uuid>.<uuid>", p->file);
		return -EINVAL;
	}
	rc = catalog_txn_begin(fs->cat, false, &txn);
	if (rc)
		return rc;
	rc = catalog_object_get(txn, p->volume, &vol);
	if (!rc && strcmp(vid, vol.id)) {
		log_err("manage: %s is not a file of volume %s", p->file, vol.id);
		rc = -EINVAL;
	}
	if (!rc && catalog_id_lookup(txn, p->snap_id, &ino) == 0)
		rc = log_refuse(-EEXIST, "manage: %s: snapshot %s is already in the catalogue",
				p->file, p->snap_id);
	if (!rc) {
		rc = import_file_check(fs->share->dirfd, p->file, &info, why, sizeof(why));
		if (rc) {
			log_err("manage: %s refused: %s", p->file, why);
			rc = rc == -ENOMEM ? rc : -EINVAL;
		}
	}
	if (!rc) {
		p->hidden = snapshot_hidden_get(&vol, p->file, p->backing, sizeof(p->backing));
		if (p->hidden && strcmp(info.backing_name, p->backing)) {
			log_err("manage: %s: its header names %s, its chain %s", p->file,
				info.backing_name, p->backing);
			rc = -EINVAL;
		} else if (!p->hidden && strcmp(info.backing_name, vol.file)) {
			log_err("manage: %s: backing file %s is neither the active file %s of "
				"volume %s nor is it in its chain",
				p->file, info.backing_name, vol.file, vol.id);
			rc = -EINVAL;
		} else if (!p->hidden) {
			snprintf(p->backing, sizeof(p->backing), "%s", vol.file);
			if (import_overlay_check(fs, txn, &vol, p->file)) {
				log_err("manage: %s does not resolve over volume %s's chain",
					p->file, vol.id);
				rc = -EINVAL;
			}
		}
	}
	if (!rc) {
		rc = qcow2_probe(fs->share->dirfd, p->backing, &below);
		if (rc)
			log_err("manage: %s: cannot read %s: %s", p->file, p->backing, below.reason);
		p->size = below.virtual_size;
		rc = rc ? -EIO : 0;
	}
	catalog_txn_abort(txn);
	if (!rc && !p->hidden)
		rc = share_file_check_unused(fs->share, p->file);
	object_clear(&vol);
	return rc;
}

int snapshot_manage(struct snapfs *fs, const struct cred *cred, uint64_t volume,
		    const char *file)
{
	struct manage_plan p = {.fs = fs, .cred = cred, .volume = volume, .file = file};
	struct catalog_txn *txn;
	struct object vol;
	int rc;

	if (!cred_is_admin(fs, cred))
		return log_refuse(-EPERM, "uid %u may not manage %s (admins only)",
				  (unsigned)cred->uid, file);
	object_init(&p.snap);
	object_init(&vol);
	rc = manage_check(fs, &p);
	if (rc)
		goto out;

	/* Step 1: the intent; the volume taken. */
	rc = catalog_txn_begin(fs->cat, true, &txn);
	if (rc)
		goto out;
	rc = manage_record(txn, &p);
	if (rc) {
		catalog_txn_abort(txn);
		goto out;
	}
	rc = catalog_txn_commit(txn);
	if (rc)
		goto out;
	fault_point("snapshot-manage-recorded");

	/* Step 2: .info names it (the point of no return). */
	rc = catalog_txn_begin(fs->cat, false, &txn);
	if (!rc) {
		object_clear(&vol); /* catalog_object_get() overwrites, never frees */
		rc = catalog_object_get(txn, volume, &vol);
		if (!rc)
			rc = snapshot_info_write(fs, txn, &vol, p.hidden ? vol.file : file, NULL);
		catalog_txn_abort(txn);
	}
	if (rc) {
		in_write_txn(fs, manage_undo_txn, p.snap.ino);
		rc = rc == -ENOSPC ? rc : -EIO;
		goto out;
	}
	fault_point("snapshot-manage-info");

	/* Step 3: available. */
	rc = in_write_txn(fs, manage_finish_txn, p.snap.ino);
	if (!rc)
		log_info("managed %s as snapshot %s of volume %s%s", file, p.snap_id, vol.id,
			 p.hidden ? " (a member of its chain)" : " (its new active file)");
out:
	object_clear(&p.snap);
	object_clear(&vol);
	return rc;
}

/* Steps 2 and 3 of an unmanage, also what recovery runs: .info without
 * the key, then the catalogue keeps the overlay as a hidden layer. */
static int unmanage_finish(struct snapfs *fs, uint64_t snap_ino)
{
	struct catalog_txn *txn;
	struct object snap, vol;
	int rc = catalog_txn_begin(fs->cat, false, &txn);

	if (rc)
		return rc;
	rc = snap_get_with_volume(txn, snap_ino, &snap, &vol);
	if (!rc)
		rc = snapshot_info_write(fs, txn, &vol, vol.file, snap.id);
	catalog_txn_abort(txn);
	object_clear(&vol);
	if (rc) {
		object_clear(&snap);
		return rc;
	}
	fault_point("snapshot-unmanage-info");
	rc = catalog_txn_begin(fs->cat, true, &txn);
	if (!rc) {
		rc = catalog_object_get(txn, snap.parent, &vol);
		if (!rc)
			rc = snapshot_hidden_set(&vol, snap.file, snap.backing);
		if (!rc) {
			set_op(&vol, "", "");
			vol.updated_at = time_now_usec();
			rc = catalog_object_update(txn, &vol);
		}
		if (!rc)
			rc = catalog_object_delete(txn, &snap);
		object_clear(&vol);
		if (rc)
			catalog_txn_abort(txn);
		else
			rc = catalog_txn_commit(txn);
	}
	object_clear(&snap);
	return rc;
}

struct unmanage_plan {
	struct snapfs *fs;
	uint64_t ino;
	char prev_status[32];
};

/* Step 1 (no reader open): check and record op "unmanage". */
static int unmanage_record(void *arg)
{
	struct unmanage_plan *p = arg;
	struct catalog_txn *txn;
	struct object snap, vol;
	int rc = catalog_txn_begin(p->fs->cat, true, &txn);

	if (rc)
		return rc;
	rc = snap_get_with_volume(txn, p->ino, &snap, &vol);
	if (!rc && snap.kind != OBJ_SNAPSHOT)
		rc = -EINVAL;
	if (!rc && (*snap.op || *vol.op))
		rc = log_refuse(-EBUSY, "unmanage %s: volume %s is busy (%s)", snap.id, vol.id,
				*snap.op ? snap.op : vol.op);
	if (!rc && snap.link_id[0])
		rc = log_refuse(-EBUSY, "unmanage %s: it belongs to group snapshot %s", snap.id,
				snap.link_id);
	if (!rc && strcmp(snap.status, "available") && strcmp(snap.status, "error"))
		rc = log_refuse(-EBUSY, "unmanage %s: it is %s", snap.id, snap.status);
	if (!rc && snap.merge_state != MERGE_NONE)
		rc = log_refuse(-EBUSY, "unmanage %s: a merge of it began; delete it instead",
				snap.id);
	if (!rc) {
		snprintf(p->prev_status, sizeof(p->prev_status), "%s", snap.status);
		snprintf(snap.status, sizeof(snap.status), "unmanaging");
		set_op(&snap, "unmanage", "");
		set_op(&vol, "snapshot-forget", snap.id);
		rc = catalog_object_update(txn, &snap);
		if (!rc)
			rc = catalog_object_update(txn, &vol);
	}
	object_clear(&snap);
	object_clear(&vol);
	if (rc) {
		catalog_txn_abort(txn);
		return rc;
	}
	return catalog_txn_commit(txn);
}

static int unmanage_failed(struct catalog_txn *txn, struct object *o, void *arg)
{
	if (o->kind == OBJ_SNAPSHOT)
		snprintf(o->status, sizeof(o->status), "%s", (const char *)arg);
	set_op(o, "", "");
	return 0;
}

int snapshot_unmanage(struct snapfs *fs, const struct cred *cred, uint64_t ino)
{
	struct unmanage_plan p = {fs, ino, ""};
	struct catalog_txn *txn;
	struct object snap;
	int rc;

	if (!cred_is_admin(fs, cred))
		return log_refuse(-EPERM, "uid %u may not unmanage a snapshot (admins only)",
				  (unsigned)cred->uid);
	rc = reader_exclude(fs, ino, unmanage_record, &p);
	if (rc)
		return rc;
	fault_point("snapshot-unmanage-recorded");
	rc = catalog_txn_begin(fs->cat, false, &txn);
	if (rc)
		return rc;
	rc = catalog_object_get(txn, ino, &snap);
	catalog_txn_abort(txn);
	if (!rc)
		rc = unmanage_finish(fs, ino);
	if (rc) {
		log_err("unmanage of snapshot %s failed: %s", snap.id, strerror(-rc));
		object_modify(fs, ino, unmanage_failed, p.prev_status);
		object_modify(fs, snap.parent, unmanage_failed, NULL);
		rc = rc == -ENOSPC ? rc : -EIO;
	} else {
		log_info("unmanaged snapshot %s (%s): %s stays on the share, in volume's chain",
			 snap.name, snap.id, snap.file);
	}
	object_clear(&snap);
	return rc;
}

/* ---- recovery ---- */

/* The .info of snap's volume, for a recovery to tell how far snap's
 * operation got: 0 and a new reference in *info (NULL when there is no
 * .info), or -errno (an unreadable .info: leave the files as they are). */
static int recover_read_info(struct snapfs *fs, const struct object *snap, json_t **info)
{
	struct catalog_txn *txn;
	struct object vol;
	int rc = catalog_txn_begin(fs->cat, false, &txn);

	*info = NULL;
	if (rc)
		return rc;
	rc = catalog_object_get(txn, snap->parent, &vol);
	catalog_txn_abort(txn);
	if (!rc) {
		rc = share_info_read(fs->share, vol.id, info);
		if (rc == -ENOENT)
			rc = 0;
		else if (rc)
			log_err("snapshot %s: cannot read its volume's .info to tell whether its %s "
				"finished", snap->id, snap->op);
	}
	object_clear(&vol);
	return rc;
}

int snapshot_create_switched(struct snapfs *fs, const struct object *snap, bool *switched)
{
	enum attach_overlay_state state;
	struct catalog_txn *txn;
	struct object vol;
	int rc = catalog_txn_begin(fs->cat, false, &txn);

	*switched = false;
	if (rc)
		return rc;
	rc = catalog_object_get(txn, snap->parent, &vol);
	catalog_txn_abort(txn);
	if (rc || !vol.attach[0])
		goto out;
	rc = attach_overlay_state(fs, &vol, snap, &state);
	if (!rc) {
		*switched = state == ATTACH_SWITCHED;
	} else if (faccessat(fs->share->dirfd, snap->file, F_OK, AT_SYMLINK_NOFOLLOW)) {
		rc = 0; /* no overlay yet: nothing to switch */
	} else if (!share_file_check_unused(fs->share, vol.file) &&
		   !share_file_check_unused(fs->share, snap->file)) {
		/* QEMU is gone: the guest may have written the overlay, and
		 * nothing writes the snapshot's data any more. */
		log_warn("snapshot %s of volume %s: QEMU at %s does not answer and no process "
			 "writes %s: the overlay %s stays", snap->id, vol.id, vol.attach, vol.file,
			 snap->file);
		*switched = true;
		rc = 0;
	} else {
		log_err("snapshot %s of volume %s: QEMU at %s does not answer but holds its files: "
			"left as it is until the next mount", snap->id, vol.id, vol.attach);
	}
out:
	object_clear(&vol);
	return rc;
}

int snapshot_recover(struct snapfs *fs, const struct object *snap)
{
	struct catalog_txn *txn;
	struct object vol;
	int rc;

	if (!strcmp(snap->op, "create")) {
		json_t *info;
		const char *active;
		bool done;

		rc = recover_read_info(fs, snap, &info);
		if (rc)
			return rc;
		active = json_string_value(json_object_get(info, "active"));
		done = active && !strcmp(active, snap->file);
		json_decref(info);
		if (done)
			return create_finish(fs, snap->ino);
		rc = snapshot_create_switched(fs, snap, &done);
		if (!rc && done)
			rc = info_write_ino(fs, snap->parent, snap->file, NULL);
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
			rc = vol.attach[0] ? delete_merge_attached(fs, snap, &vol)
					   : delete_merge(fs, snap, &vol);
		if (rc) {
			object_modify(fs, snap->ino, delete_failed, NULL);
			object_modify(fs, vol.ino, delete_failed, NULL);
		}
		object_clear(&vol);
		return rc;
	}
	if (!strcmp(snap->op, "manage")) {
		json_t *info;
		bool done;

		rc = recover_read_info(fs, snap, &info);
		if (rc)
			return rc;
		done = json_object_get(info, snap->id) != NULL;
		json_decref(info);
		return in_write_txn(fs, done ? manage_finish_txn : manage_undo_txn, snap->ino);
	}
	if (!strcmp(snap->op, "unmanage"))
		return unmanage_finish(fs, snap->ino);
	log_err("snapshot %s: unknown interrupted operation '%s' left as is", snap->id, snap->op);
	return -EINVAL;
}
