/* import.c - see import.h. */
#include "import.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "chain.h"
#include "log.h"
#include "share.h"
#include "snapshot.h"
#include "util.h"

#define UUID_CHARS 36
#define PREFIX "volume-"
#define PREFIX_LEN 7

/* ---- names ---- */

static bool uuid_copy(const char *s, char *out)
{
	char u[UUID_STR_LEN];

	memcpy(u, s, UUID_CHARS);
	u[UUID_CHARS] = '\0';
	if (!uuid_is_valid(u))
		return false;
	if (out)
		memcpy(out, u, UUID_STR_LEN);
	return true;
}

enum share_name_kind import_name_parse(const char *name, char *vol_id, char *snap_id)
{
	size_t n = strlen(name);
	const char *rest;

	if (vol_id)
		vol_id[0] = '\0';
	if (snap_id)
		snap_id[0] = '\0';
	if (strncmp(name, PREFIX, PREFIX_LEN) || n < PREFIX_LEN + UUID_CHARS ||
	    !uuid_copy(name + PREFIX_LEN, NULL))
		return SHARE_NAME_OTHER;
	rest = name + PREFIX_LEN + UUID_CHARS;
	if (*rest && strcmp(rest, ".info") &&
	    (rest[0] != '.' || strlen(rest) != 1 + UUID_CHARS || !uuid_copy(rest + 1, snap_id)))
		return SHARE_NAME_OTHER;
	if (vol_id)
		uuid_copy(name + PREFIX_LEN, vol_id);
	if (!*rest)
		return SHARE_NAME_BASE;
	return strcmp(rest, ".info") ? SHARE_NAME_OVERLAY : SHARE_NAME_INFO;
}

/* ---- one file ---- */

int import_file_check(int dirfd, const char *name, struct image_info *info, char *reason,
		      size_t len)
{
	char vid[UUID_STR_LEN], bvid[UUID_STR_LEN];
	enum share_name_kind kind = import_name_parse(name, vid, NULL), bkind;
	struct stat st;
	int rc;

	memset(info, 0, sizeof(*info));
	reason[0] = '\0';
	if (kind != SHARE_NAME_BASE && kind != SHARE_NAME_OVERLAY) {
		snprintf(reason, len, "name is not volume-<uuid> or volume-<uuid>.<uuid>");
		return -EINVAL;
	}
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		rc = -errno;
		snprintf(reason, len, "%s", strerror(errno));
		return rc;
	}
	if (S_ISLNK(st.st_mode)) {
		snprintf(reason, len, "a symbolic link");
		return -EINVAL;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(reason, len, "not a regular file");
		return -EINVAL;
	}
	rc = qcow2_validate(dirfd, name, info);
	if (rc) {
		snprintf(reason, len, "%s", info->reason[0] ? info->reason : strerror(-rc));
		return rc;
	}
	if (!info->safe) {
		snprintf(reason, len, "%s", info->reason[0] ? info->reason : "unreadable image");
		return -EINVAL;
	}
	if (kind == SHARE_NAME_BASE) {
		if (info->has_backing) {
			snprintf(reason, len, "a base file with a backing file (%.200s)",
				 info->backing_name);
			return -EINVAL;
		}
		return 0;
	}
	if (info->format != IMAGE_FORMAT_QCOW2) {
		snprintf(reason, len, "a snapshot file that is not qcow2");
		return -EINVAL;
	}
	if (!info->has_backing) {
		snprintf(reason, len, "a snapshot file without backing file");
		return -EINVAL;
	}
	bkind = import_name_parse(info->backing_name, bvid, NULL);
	if ((bkind != SHARE_NAME_BASE && bkind != SHARE_NAME_OVERLAY) || strcmp(bvid, vid)) {
		snprintf(reason, len, "backing file %.200s is not a file of volume %s",
			 info->backing_name, vid);
		return -EINVAL;
	}
	if (!strcmp(info->backing_name, name)) {
		snprintf(reason, len, "its own backing file");
		return -EINVAL;
	}
	return 0;
}

/* ---- a volume's chain ---- */

void import_chain_free(struct import_chain *c)
{
	free(c->names);
	free(c->formats);
	free(c->sizes);
	memset(c, 0, sizeof(*c));
}

int import_chain_resolve(int dirfd, const char *vol_id, const char *top, struct import_chain *c,
			 char *reason, size_t len)
{
	char cur[256], why[224], vid[UUID_STR_LEN];
	struct chain_layer *layers = NULL;
	struct image_info info;
	struct chain *chain;
	int rc = 0;

	memset(c, 0, sizeof(*c));
	c->names = calloc(SNAPSHOT_CHAIN_MAX, sizeof(*c->names));
	c->formats = calloc(SNAPSHOT_CHAIN_MAX, sizeof(*c->formats));
	c->sizes = calloc(SNAPSHOT_CHAIN_MAX, sizeof(*c->sizes));
	if (!c->names || !c->formats || !c->sizes) {
		import_chain_free(c);
		return -ENOMEM;
	}
	snprintf(cur, sizeof(cur), "%s", top);
	for (;;) {
		enum share_name_kind kind = import_name_parse(cur, vid, NULL);

		if (c->n == SNAPSHOT_CHAIN_MAX) {
			snprintf(reason, len, "chain deeper than %d files", SNAPSHOT_CHAIN_MAX);
			rc = -EINVAL;
			break;
		}
		for (size_t i = 0; i < c->n && !rc; i++)
			if (!strcmp(c->names[i], cur)) {
				snprintf(reason, len, "backing files loop at %s", cur);
				rc = -EINVAL;
			}
		if (rc)
			break;
		if (kind == SHARE_NAME_OTHER || kind == SHARE_NAME_INFO || strcmp(vid, vol_id)) {
			snprintf(reason, len, "%.200s is not a file of volume %s", cur, vol_id);
			rc = -EINVAL;
			break;
		}
		rc = import_file_check(dirfd, cur, &info, why, sizeof(why));
		if (rc) {
			snprintf(reason, len, "%s: %s", cur, why);
			break;
		}
		snprintf(c->names[c->n], sizeof(c->names[0]), "%s", cur);
		c->formats[c->n] = info.format;
		c->sizes[c->n] = info.virtual_size;
		c->n++;
		if (!info.has_backing)
			break; /* import_file_check(): only a base has none */
		/* a volume file's name (import_file_check()): 80 bytes at most */
		memcpy(cur, info.backing_name, sizeof(cur) - 1);
		cur[sizeof(cur) - 1] = '\0';
	}
	if (!rc) {
		layers = calloc(c->n, sizeof(*layers));
		if (!layers)
			rc = -ENOMEM;
	}
	if (!rc) {
		for (size_t i = 0; i < c->n; i++)
			layers[i] = (struct chain_layer){dirfd, c->names[i], c->formats[i], false};
		rc = chain_open(&chain, layers, c->n, 0);
		if (rc) {
			snprintf(reason, len, "the chain from %s does not resolve: %s", top,
				 strerror(-rc));
			rc = rc == -ENOMEM ? rc : -EINVAL;
		} else {
			chain_close(chain);
		}
	}
	free(layers);
	if (rc)
		import_chain_free(c);
	return rc;
}

/* ---- the share's volume files ---- */

struct name_list {
	size_t count, cap;
	char **names;
};

static void name_list_free(struct name_list *l)
{
	for (size_t i = 0; i < l->count; i++)
		free(l->names[i]);
	free(l->names);
	memset(l, 0, sizeof(*l));
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every volume-* entry of the share, sorted. A directory handle of its
 * own: the share's dirfd is shared by all threads. */
static int share_names(struct snapfs *fs, struct name_list *l)
{
	int fd = openat(fs->share->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *de;
	DIR *d;
	int rc = 0;

	memset(l, 0, sizeof(*l));
	if (fd < 0 || !(d = fdopendir(fd))) {
		rc = -errno;
		if (fd >= 0)
			close(fd);
		log_err("cannot list share %s: %s", fs->share->path, strerror(-rc));
		return rc;
	}
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, PREFIX, PREFIX_LEN))
			continue;
		if (l->count == l->cap) {
			size_t cap = l->cap ? l->cap * 2 : 64;
			char **n = realloc(l->names, cap * sizeof(*n));

			if (!n) {
				rc = -ENOMEM;
				break;
			}
			l->names = n;
			l->cap = cap;
		}
		if (!(l->names[l->count] = strdup(de->d_name))) {
			rc = -ENOMEM;
			break;
		}
		l->count++;
	}
	closedir(d);
	if (rc)
		name_list_free(l);
	else if (l->count)
		qsort(l->names, l->count, sizeof(*l->names), name_cmp);
	return rc;
}

/* Files the catalogue knows. owned: catalogued volumes' base files and
 * snapshots' overlays (what manageable/ leaves out). known: also every
 * active, backing and hidden-layer file (what import must not take). */
struct file_sets {
	json_t *owned, *known;
};

static void set_add(json_t *set, const char *name)
{
	if (*name)
		json_object_set_new(set, name, json_true());
}

static int collect_files(const struct object *o, void *arg)
{
	struct file_sets *s = arg;
	char base[64];
	size_t i;
	json_t *pair;

	if (o->kind == OBJ_VOLUME) {
		share_volume_base_name(o->id, base, sizeof(base));
		set_add(s->owned, base);
		set_add(s->known, base);
		set_add(s->known, o->file);
		if (json_is_array(o->members))
			json_array_foreach (o->members, i, pair)
				set_add(s->known, json_string_value(json_array_get(pair, 0)) ?: "");
	} else if (o->kind == OBJ_SNAPSHOT) {
		set_add(s->owned, o->file);
		set_add(s->known, o->file);
		set_add(s->known, o->backing);
	}
	return 0;
}

static int file_sets_load(struct catalog_txn *txn, struct file_sets *s)
{
	s->owned = json_object();
	s->known = json_object();
	if (!s->owned || !s->known)
		return -ENOMEM;
	return catalog_objects_foreach(txn, collect_files, s);
}

static void file_sets_free(struct file_sets *s)
{
	json_decref(s->owned);
	json_decref(s->known);
	s->owned = s->known = NULL;
}

/* ---- import ---- */

/* The tenant called name, created (root's, mode 0755) when missing, in
 * the write transaction txn; loaded into *t. */
static int tenant_ensure(struct catalog_txn *txn, const char *name, struct object *t)
{
	uint64_t ino;
	int rc = catalog_child_lookup(txn, 0, OBJ_TENANT, name, &ino);

	if (!rc) {
		object_clear(t); /* catalog_object_get() overwrites, never frees */
		return catalog_object_get(txn, ino, t);
	}
	if (rc != -ENOENT)
		return rc;
	object_clear(t);
	object_init(t);
	t->kind = OBJ_TENANT;
	snprintf(t->name, sizeof(t->name), "%s", name);
	rc = uuid_generate_str(t->id);
	if (rc)
		return rc;
	t->uid = 0;
	t->gid = 0;
	t->mode = 0755;
	t->created_at = t->updated_at = time_now_usec();
	rc = catalog_object_insert(txn, t);
	if (rc)
		return rc;
	t->tenant = t->ino;
	rc = catalog_object_update(txn, t);
	if (!rc)
		log_info("import: created tenant %s (%s)", name, t->id);
	return rc;
}

/* Snapshot key k of a .info, checked: its overlay's index in the chain. */
struct info_snap {
	const char *id;
	size_t at;
};

/* Check volume vid's .info (NULL: none) against its resolved chain; fill
 * snaps (n of them). Returns 0 or -EINVAL with reason. */
static int info_check(struct catalog_txn *txn, const char *vid, json_t *info,
		      const struct import_chain *c, const struct file_sets *sets,
		      struct info_snap *snaps, size_t *n, char *reason, size_t len)
{
	const char *key;
	json_t *val;
	uint64_t ino;

	*n = 0;
	for (size_t i = 0; i < c->n; i++)
		if (json_object_get(sets->known, c->names[i])) {
			snprintf(reason, len, "%s is already in the catalogue", c->names[i]);
			return -EINVAL;
		}
	if (!info)
		return 0;
	json_object_foreach (info, key, val) {
		const char *file = json_string_value(val);
		size_t at;

		if (!strcmp(key, "active"))
			continue;
		if (!uuid_is_valid(key) || !strcmp(key, vid)) {
			snprintf(reason, len, "key \"%.60s\" is not a snapshot uuid", key);
			return -EINVAL;
		}
		if (!file) {
			snprintf(reason, len, "snapshot %s: value is not a file name", key);
			return -EINVAL;
		}
		for (at = 0; at + 1 < c->n; at++)
			if (!strcmp(c->names[at], file))
				break;
		if (at + 1 >= c->n) {
			snprintf(reason, len, "snapshot %s: %.100s is not an overlay of the chain",
				 key, file);
			return -EINVAL;
		}
		for (size_t j = 0; j < *n; j++)
			if (snaps[j].at == at) {
				snprintf(reason, len,
					 "snapshots %s and %s name the same file %.80s",
					 snaps[j].id, key, file);
				return -EINVAL;
			}
		if (catalog_id_lookup(txn, key, &ino) == 0) {
			snprintf(reason, len, "snapshot id %s is already in the catalogue", key);
			return -EINVAL;
		}
		snaps[*n].id = key;
		snaps[*n].at = at;
		(*n)++;
	}
	return 0;
}

/* Fill snap (cleared first) as import catalogues a snapshot of vol: id
 * and name id, available, overlay file over backing, size the virtual
 * size of its data's top file, the volume's owner and mode. */
static void snap_record_fill(struct object *snap, const struct object *vol, const char *id,
			     const char *file, const char *backing, uint64_t size, int64_t now)
{
	object_clear(snap);
	object_init(snap);
	snap->kind = OBJ_SNAPSHOT;
	snap->parent = vol->ino;
	snap->tenant = vol->tenant;
	snprintf(snap->id, sizeof(snap->id), "%s", id);
	snprintf(snap->name, sizeof(snap->name), "%s", id);
	snprintf(snap->status, sizeof(snap->status), "available");
	snap->progress = 100;
	snprintf(snap->file, sizeof(snap->file), "%s", file);
	snprintf(snap->backing, sizeof(snap->backing), "%s", backing);
	snap->size = size;
	snap->uid = vol->uid;
	snap->gid = vol->gid;
	snap->mode = vol->mode;
	snap->created_at = snap->updated_at = now;
}

/* Catalogue volume vid (and its snapshots) in one write transaction. */
static int import_insert(struct snapfs *fs, const char *tenant, const char *vid,
			 const struct import_chain *c, const struct info_snap *snaps, size_t n)
{
	struct catalog_txn *txn;
	struct object t, vol, snap;
	int64_t now = time_now_usec();
	bool *named = calloc(c->n, sizeof(*named));
	int rc;

	if (!named)
		return -ENOMEM;
	object_init(&t);
	object_init(&vol);
	object_init(&snap);
	rc = catalog_txn_begin(fs->cat, true, &txn);
	if (rc)
		goto out;
	rc = tenant_ensure(txn, tenant, &t);
	if (rc)
		goto abort;
	vol.kind = OBJ_VOLUME;
	vol.parent = vol.tenant = t.ino;
	snprintf(vol.id, sizeof(vol.id), "%s", vid);
	snprintf(vol.name, sizeof(vol.name), "%s", vid);
	snprintf(vol.status, sizeof(vol.status), "available");
	snprintf(vol.format, sizeof(vol.format), "%s", image_format_name(c->formats[c->n - 1]));
	snprintf(vol.file, sizeof(vol.file), "%s", c->names[0]);
	vol.size = c->sizes[0];
	vol.uid = t.uid;
	vol.gid = t.gid;
	vol.mode = t.mode & 07777;
	vol.created_at = vol.updated_at = now;
	rc = catalog_object_insert(txn, &vol);
	for (size_t i = 0; i < n && !rc; i++) {
		size_t at = snaps[i].at;

		snap_record_fill(&snap, &vol, snaps[i].id, c->names[at], c->names[at + 1],
				 c->sizes[at + 1], now);
		rc = catalog_object_insert(txn, &snap);
		named[at] = true;
	}
	for (size_t at = 0; at + 1 < c->n && !rc; at++)
		if (!named[at])
			rc = snapshot_hidden_set(&vol, c->names[at], c->names[at + 1]);
	if (!rc && vol.members)
		rc = catalog_object_update(txn, &vol);
	if (rc)
		goto abort;
	rc = catalog_txn_commit(txn);
	goto out;
abort:
	catalog_txn_abort(txn);
out:
	free(named);
	object_clear(&t);
	object_clear(&vol);
	object_clear(&snap);
	return rc;
}

/* ---- reconcile: a catalogued volume and its .info ----
 *
 * Cinder may change a volume's files after import: its snapshots add an
 * overlay on the active file (and a key to .info), its offline deletes
 * commit an overlay into its backing file, remove it, rebase the overlay
 * above (-u) and drop the key. A volume the catalogue knows is compared
 * with its .info on every import; when they differ, the share's chain is
 * walked and checked as import checks it, and the catalogue follows only
 * when the difference is exactly such snapshots and deletes. */

/* A catalogued volume, its snapshots and its chain as the catalogue
 * resolves it: files[0] the active file ... files[n - 1] the base. */
struct cat_volume {
	struct object vol;
	struct object *snaps;
	size_t nsnaps, cap;
	size_t n;
	char (*files)[256];
	long *owner; /* per layer: its snapshot in snaps, -1: a hidden layer or the base */
};

struct cat_load_arg {
	struct catalog_txn *txn;
	struct cat_volume *cv;
};

static void cat_volume_free(struct cat_volume *cv)
{
	object_clear(&cv->vol);
	for (size_t i = 0; i < cv->nsnaps; i++)
		object_clear(&cv->snaps[i]);
	free(cv->snaps);
	free(cv->files);
	free(cv->owner);
	memset(cv, 0, sizeof(*cv)); /* vol is cleared: catalog_object_get() may fill it */
}

static int cat_load_snap(const char *name, uint64_t ino, void *arg)
{
	struct cat_load_arg *a = arg;
	struct cat_volume *cv = a->cv;

	(void)name;
	if (cv->nsnaps == cv->cap) {
		size_t cap = cv->cap ? cv->cap * 2 : 8;
		struct object *o = realloc(cv->snaps, cap * sizeof(*o));

		if (!o)
			return -ENOMEM;
		cv->snaps = o;
		cv->cap = cap;
	}
	/* cleared by cat_volume_free() even on failure */
	return catalog_object_get(a->txn, ino, &cv->snaps[cv->nsnaps++]);
}

/* Load volume ino and its snapshots into *cv (cat_volume_free() it in
 * every case): -ENOENT when ino is no volume. */
static int cat_volume_load(struct catalog_txn *txn, uint64_t ino, struct cat_volume *cv)
{
	struct cat_load_arg a = {txn, cv};
	int rc;

	cat_volume_free(cv);
	rc = catalog_object_get(txn, ino, &cv->vol);
	if (!rc && cv->vol.kind != OBJ_VOLUME)
		rc = -ENOENT;
	if (!rc)
		rc = catalog_children_foreach(txn, ino, OBJ_SNAPSHOT, cat_load_snap, &a);
	return rc;
}

/* Resolve cv's chain from the catalogue (files, owner, n): -EINVAL
 * (reason) unless it holds every snapshot and hidden layer once, down to
 * the volume's base; -ENOMEM. */
static int cat_volume_chain(struct cat_volume *cv, char *reason, size_t len)
{
	char cur[256], next[256], base[64];
	bool ended = false;
	size_t max;

	max = cv->nsnaps + (json_is_array(cv->vol.members) ? json_array_size(cv->vol.members) : 0) +
	      1;
	cv->files = calloc(max, sizeof(*cv->files));
	cv->owner = calloc(max, sizeof(*cv->owner));
	if (!cv->files || !cv->owner)
		return -ENOMEM;
	share_volume_base_name(cv->vol.id, base, sizeof(base));
	snprintf(cur, sizeof(cur), "%s", cv->vol.file);
	while (cv->n < max) { /* more layers than records: a loop, caught below */
		long own = -1;

		for (size_t i = 0; i < cv->nsnaps && own < 0; i++)
			if (!strcmp(cv->snaps[i].file, cur))
				own = (long)i;
		snprintf(cv->files[cv->n], sizeof(cv->files[0]), "%s", cur);
		cv->owner[cv->n++] = own;
		if (own >= 0)
			snprintf(next, sizeof(next), "%s", cv->snaps[own].backing);
		else if (!snapshot_hidden_get(&cv->vol, cur, next, sizeof(next)))
			ended = true; /* no record has it on top: the base */
		if (ended)
			break;
		memcpy(cur, next, sizeof(cur));
	}
	if (!ended || strcmp(cur, base) || cv->n != max) {
		snprintf(reason, len, "its catalogue chain from %.100s is broken at %.100s",
			 cv->vol.file, cur);
		return -EINVAL;
	}
	return 0;
}

/* True when .info says what the catalogue says: the same active file and
 * a key for each snapshot naming its overlay, nothing else. */
static bool info_agrees(const struct cat_volume *cv, json_t *info)
{
	const char *active = json_string_value(json_object_get(info, "active"));

	if (!active || strcmp(active, cv->vol.file) || json_object_size(info) != cv->nsnaps + 1)
		return false;
	for (size_t i = 0; i < cv->nsnaps; i++) {
		const char *f = json_string_value(json_object_get(info, cv->snaps[i].id));

		if (!f || strcmp(f, cv->snaps[i].file))
			return false;
	}
	return true;
}

/* The op of the object whose uuid is id ("" when none or no such object). */
static void op_of(struct catalog_txn *txn, const char *id, char *op, size_t len)
{
	struct object o;
	uint64_t ino;

	op[0] = '\0';
	if (catalog_id_lookup(txn, id, &ino))
		return;
	if (!catalog_object_get(txn, ino, &o))
		snprintf(op, len, "%s", o.op);
	object_clear(&o);
}

/* True (reason filled) unless the volume is idle: no op on it or its
 * snapshots, available, and neither its group nor a group snapshot of
 * its snapshots has an operation under way. */
static bool volume_busy(struct catalog_txn *txn, const struct cat_volume *cv, char *reason,
			size_t len)
{
	const struct object *v = &cv->vol;
	char op[sizeof(v->op)];

	if (*v->op) {
		snprintf(reason, len, "it is busy (%s)", v->op);
		return true;
	}
	if (strcmp(v->status, "available")) {
		snprintf(reason, len, "it is %s, not available", v->status);
		return true;
	}
	if (v->link_id[0]) {
		op_of(txn, v->link_id, op, sizeof(op));
		if (*op) {
			snprintf(reason, len, "its group %s is busy (%s)", v->link_id, op);
			return true;
		}
	}
	for (size_t i = 0; i < cv->nsnaps; i++) {
		const struct object *s = &cv->snaps[i];

		if (*s->op) {
			snprintf(reason, len, "snapshot %s is busy (%s)", s->id, s->op);
			return true;
		}
		if (!s->link_id[0])
			continue;
		op_of(txn, s->link_id, op, sizeof(op));
		if (*op) {
			snprintf(reason, len, "group snapshot %s is busy (%s)", s->link_id, op);
			return true;
		}
	}
	return false;
}

/* How the share's chain s maps onto the catalogue's: s->names[0 ..
 * nnew - 1] are new overlays, each named by .info key key[i] (NULL: a
 * hidden layer); every lower layer i is the catalogue's layer at[i];
 * dropped[j] marks the catalogue's layers gone from the share. */
struct rc_plan {
	size_t nnew;
	long *at;
	const char **key;
	bool *dropped;
	unsigned added, hidden, forgotten, moved;
};

static void rc_plan_free(struct rc_plan *p)
{
	free(p->at);
	free(p->key);
	free(p->dropped);
	memset(p, 0, sizeof(*p));
}

static long cat_layer_of(const struct cat_volume *cv, const char *file)
{
	for (size_t j = 0; j < cv->n; j++)
		if (!strcmp(cv->files[j], file))
			return (long)j;
	return -1;
}

static bool is_cat_snapshot(const struct cat_volume *cv, const char *id)
{
	for (size_t i = 0; i < cv->nsnaps; i++)
		if (!strcmp(cv->snaps[i].id, id))
			return true;
	return false;
}

/* Decide whether the share's chain s (checked by import_chain_resolve()
 * from .info's active file) and .info are the catalogue's volume cv plus
 * snapshots Cinder took and minus snapshots Cinder deleted; fill *p.
 * Returns 0, -EINVAL (reason filled) when they are anything else,
 * -ENOMEM. Reads the catalogue through txn and stats dropped files. */
static int reconcile_plan(int dirfd, struct catalog_txn *txn, const struct cat_volume *cv,
			  json_t *info, const struct import_chain *s, struct rc_plan *p,
			  char *reason, size_t len)
{
	const struct object *vol = &cv->vol;
	const char *key;
	json_t *val;
	size_t k;

	memset(p, 0, sizeof(*p));
	p->at = calloc(s->n, sizeof(*p->at));
	p->key = calloc(s->n, sizeof(*p->key));
	p->dropped = calloc(cv->n, sizeof(*p->dropped));
	if (!p->at || !p->key || !p->dropped)
		return -ENOMEM;

	/* New overlays on top, then the catalogue's layers that are left, in
	 * its order, down to the same base. */
	for (size_t i = 0; i < s->n; i++)
		p->at[i] = cat_layer_of(cv, s->names[i]);
	for (k = 0; k < s->n && p->at[k] < 0; k++)
		;
	if (k == s->n) {
		snprintf(reason, len, "no file of its chain is in the catalogue's");
		return -EINVAL;
	}
	for (size_t i = k + 1; i < s->n; i++) {
		if (p->at[i] < 0) {
			snprintf(reason, len,
				 "the chain does not extend the catalogue's: %.100s, below %.100s, "
				 "is not in the catalogue",
				 s->names[i], s->names[k]);
			return -EINVAL;
		}
		if (p->at[i] <= p->at[i - 1]) {
			snprintf(reason, len,
				 "the chain puts %.100s below %.100s, unlike the catalogue",
				 s->names[i], s->names[i - 1]);
			return -EINVAL;
		}
	}
	p->nnew = k;
	for (size_t j = 0; j < cv->n; j++)
		p->dropped[j] = true;
	for (size_t i = k; i < s->n; i++)
		p->dropped[p->at[i]] = false;
	if (strcmp(image_format_name(s->formats[s->n - 1]), vol->format)) {
		snprintf(reason, len, "its base is %s, the catalogue says %s",
			 image_format_name(s->formats[s->n - 1]), vol->format);
		return -EINVAL;
	}
	if (s->sizes[0] != vol->size) {
		snprintf(reason, len, "%.100s is %" PRIu64 " bytes, the volume %" PRIu64,
			 s->names[0], s->sizes[0], vol->size);
		return -EINVAL;
	}

	/* Layers gone from the chain: snapshots Cinder deleted (a merge
	 * removes the overlay and drops the key). */
	for (size_t j = 0; j < cv->n; j++) {
		const struct object *snap;
		struct stat st;

		if (!p->dropped[j])
			continue;
		if (cv->owner[j] < 0) {
			snprintf(reason, len, "hidden layer %.100s is no longer in the chain",
				 cv->files[j]);
			return -EINVAL;
		}
		snap = &cv->snaps[cv->owner[j]];
		if (json_object_get(info, snap->id)) {
			snprintf(reason, len,
				 ".info names snapshot %s, but its file %.100s is not in the chain",
				 snap->id, cv->files[j]);
			return -EINVAL;
		}
		if (fstatat(dirfd, cv->files[j], &st, AT_SYMLINK_NOFOLLOW) == 0) {
			snprintf(reason, len, "%.100s left the chain but is still on the share",
				 cv->files[j]);
			return -EINVAL;
		}
		if (errno != ENOENT) {
			snprintf(reason, len, "%.100s: %s", cv->files[j], strerror(errno));
			return -EINVAL;
		}
		if (snap->link_id[0]) {
			snprintf(reason, len,
				 "snapshot %s, gone from .info, belongs to group snapshot %s",
				 snap->id, snap->link_id);
			return -EINVAL;
		}
		if ((strcmp(snap->status, "available") && strcmp(snap->status, "error")) ||
		    snap->merge_state != MERGE_NONE) {
			snprintf(reason, len, "snapshot %s, gone from .info, is %s%s", snap->id,
				 snap->status,
				 snap->merge_state != MERGE_NONE ? " (merge begun)" : "");
			return -EINVAL;
		}
		p->forgotten++;
	}

	/* Layers left: a snapshot keeps its key; a layer moves onto another
	 * backing only where one below it left. */
	for (size_t i = k; i + 1 < s->n; i++) {
		long o = cv->owner[p->at[i]];
		const struct object *snap;
		const char *f;
		char b[256];

		if (o < 0) {
			if (snapshot_hidden_get(vol, s->names[i], b, sizeof(b)) &&
			    strcmp(b, s->names[i + 1]))
				p->moved++;
			continue;
		}
		snap = &cv->snaps[o];
		f = json_string_value(json_object_get(info, snap->id));
		if (!f) {
			snprintf(reason, len,
				 "snapshot %s is not in .info, but its file %.100s is in the chain",
				 snap->id, snap->file);
			return -EINVAL;
		}
		if (strcmp(f, snap->file)) {
			snprintf(reason, len,
				 ".info names %.100s for snapshot %s, the catalogue %.100s", f,
				 snap->id, snap->file);
			return -EINVAL;
		}
		if (!strcmp(snap->backing, s->names[i + 1]))
			continue;
		if (snap->link_id[0]) {
			snprintf(reason, len,
				 "snapshot %s of group snapshot %s would move onto %.100s",
				 snap->id, snap->link_id, s->names[i + 1]);
			return -EINVAL;
		}
		p->moved++;
	}

	/* New keys: snapshots Cinder took, each naming a new overlay. */
	json_object_foreach (info, key, val) {
		const char *file = json_string_value(val);
		uint64_t ino;
		size_t i;

		if (!strcmp(key, "active") || is_cat_snapshot(cv, key))
			continue; /* the active file is s->names[0]; known keys checked above */
		if (!uuid_is_valid(key) || !strcmp(key, vol->id)) {
			snprintf(reason, len, "key \"%.60s\" is not a snapshot uuid", key);
			return -EINVAL;
		}
		if (!file) {
			snprintf(reason, len, "snapshot %s: value is not a file name", key);
			return -EINVAL;
		}
		for (i = 0; i < k; i++)
			if (!strcmp(s->names[i], file))
				break;
		if (i == k) {
			snprintf(reason, len, "new snapshot %s: %.100s is not a new overlay on top",
				 key, file);
			return -EINVAL;
		}
		if (p->key[i]) {
			snprintf(reason, len, "snapshots %s and %s name the same file %.100s",
				 p->key[i], key, file);
			return -EINVAL;
		}
		if (catalog_id_lookup(txn, key, &ino) == 0) {
			snprintf(reason, len, "snapshot id %s is already in the catalogue", key);
			return -EINVAL;
		}
		if (catalog_child_lookup(txn, vol->ino, OBJ_SNAPSHOT, key, &ino) == 0) {
			snprintf(reason, len, "the name %s is taken by another snapshot of it",
				 key);
			return -EINVAL;
		}
		p->key[i] = key;
		p->added++;
	}
	p->hidden = (unsigned)k - p->added;
	return 0;
}

/* Make the catalogue say what plan p says, in the caller's write
 * transaction txn: forget the dropped snapshots, move the layers left
 * onto their new backing files, add the new snapshots (and unnamed new
 * overlays as hidden layers), and make s->names[0] the active file. */
static int reconcile_apply(struct catalog_txn *txn, struct cat_volume *cv,
			   const struct import_chain *s, const struct rc_plan *p)
{
	struct object *vol = &cv->vol;
	int64_t now = time_now_usec();
	struct object snap;
	int rc = 0;

	for (size_t j = 0; j < cv->n && !rc; j++)
		if (p->dropped[j])
			rc = catalog_object_delete(txn, &cv->snaps[cv->owner[j]]);
	for (size_t i = p->nnew; i + 1 < s->n && !rc; i++) {
		long o = cv->owner[p->at[i]];
		struct object *sn;

		if (o < 0) {
			if (snapshot_hidden_get(vol, s->names[i], NULL, 0))
				rc = snapshot_hidden_set(vol, s->names[i], s->names[i + 1]);
			continue;
		}
		sn = &cv->snaps[o];
		if (!strcmp(sn->backing, s->names[i + 1]))
			continue;
		snprintf(sn->backing, sizeof(sn->backing), "%s", s->names[i + 1]);
		sn->updated_at = now;
		rc = catalog_object_update(txn, sn);
	}
	object_init(&snap);
	for (size_t i = p->nnew; i-- > 0 && !rc;) { /* oldest first */
		if (!p->key[i]) {
			rc = snapshot_hidden_set(vol, s->names[i], s->names[i + 1]);
			continue;
		}
		snap_record_fill(&snap, vol, p->key[i], s->names[i], s->names[i + 1],
				 s->sizes[i + 1], now);
		rc = catalog_object_insert(txn, &snap);
	}
	object_clear(&snap);
	if (!rc) {
		snprintf(vol->file, sizeof(vol->file), "%s", s->names[0]);
		vol->updated_at = now;
		rc = catalog_object_update(txn, vol);
	}
	return rc;
}

/* Load volume ino into *cv through txn and say whether its .info (info)
 * needs a reconcile: 0 yes, 1 no (its uuid is no volume's, or they agree),
 * -EINVAL (reason) when the volume is busy, or another -errno. */
static int reconcile_needed(struct catalog_txn *txn, uint64_t ino, json_t *info,
			    struct cat_volume *cv, char *reason, size_t len)
{
	int rc = cat_volume_load(txn, ino, cv);

	if (rc == -ENOENT || (!rc && info_agrees(cv, info)))
		return 1;
	if (!rc && volume_busy(txn, cv, reason, len))
		return -EINVAL;
	return rc;
}

/* Reconcile catalogued volume vid (ino) with its .info. Returns 0 (also
 * when it is left alone, with one log line naming it and the reason), or
 * -errno of the catalogue (-ENOMEM, -ENOSPC, -EIO). */
static int reconcile_volume(struct snapfs *fs, const char *vid, uint64_t ino, unsigned *added,
			    unsigned *forgotten)
{
	struct import_chain s = {0};
	struct rc_plan p = {0};
	struct cat_volume cv;
	struct catalog_txn *txn;
	char reason[512] = "";
	const char *active;
	json_t *info = NULL;
	int rc;

	memset(&cv, 0, sizeof(cv));
	rc = share_info_read(fs->share, vid, &info);
	if (rc == -ENOENT)
		return 0; /* no .info: Cinder took no snapshot of it, nothing to compare */
	if (rc) {
		snprintf(reason, sizeof(reason), "volume-%s.info: %s", vid, strerror(-rc));
		rc = -EINVAL;
		goto out;
	}

	/* A look first, without the writer's lock: most volumes agree. */
	rc = catalog_txn_begin(fs->cat, false, &txn);
	if (rc)
		goto out;
	rc = reconcile_needed(txn, ino, info, &cv, reason, sizeof(reason));
	catalog_txn_abort(txn);
	if (rc)
		goto out;

	/* The share's chain, checked as import checks it (no transaction
	 * open: this reads every file's tables). */
	active = json_string_value(json_object_get(info, "active"));
	if (!active) {
		snprintf(reason, sizeof(reason), "volume-%s.info has no \"active\" file", vid);
		rc = -EINVAL;
		goto out;
	}
	rc = import_chain_resolve(fs->share->dirfd, vid, active, &s, reason, sizeof(reason));
	if (rc && rc != -ENOMEM)
		rc = -EINVAL;
	if (rc)
		goto out;

	/* Crash safety: every change of the volume (snapshots forgotten and
	 * added, backings moved, hidden layers, the active file) is made in
	 * this one LMDB write transaction, decided from the records read in
	 * it: a crash leaves the catalogue as it was or fully reconciled,
	 * and the share is never written, so the next mount decides again. */
	rc = catalog_txn_begin(fs->cat, true, &txn);
	if (rc)
		goto out;
	rc = reconcile_needed(txn, ino, info, &cv, reason, sizeof(reason));
	if (!rc)
		rc = cat_volume_chain(&cv, reason, sizeof(reason));
	if (!rc)
		rc = reconcile_plan(fs->share->dirfd, txn, &cv, info, &s, &p, reason,
				    sizeof(reason));
	if (!rc)
		rc = reconcile_apply(txn, &cv, &s, &p);
	if (rc == -EEXIST) {
		snprintf(reason, sizeof(reason), "a new snapshot's uuid or name is taken");
		rc = -EINVAL;
	}
	if (rc) {
		catalog_txn_abort(txn);
		goto out;
	}
	fault_point("import-reconcile"); /* killed here: nothing of it is committed */
	rc = catalog_txn_commit(txn);
	if (rc)
		goto out;
	*added += p.added;
	*forgotten += p.forgotten;
	log_info("import: volume %s follows volume-%s.info: %u snapshots added, %u forgotten, "
		 "%u new hidden layers, %u layers on a new backing file; active file %s",
		 vid, vid, p.added, p.forgotten, p.hidden, p.moved, s.names[0]);
out:
	if (rc == -EINVAL) {
		log_err("import: volume %s left alone: %s", vid, reason);
		rc = 0;
	}
	if (rc == 1)
		rc = 0;
	rc_plan_free(&p);
	import_chain_free(&s);
	cat_volume_free(&cv);
	json_decref(info);
	return rc;
}

/* Import volume vid if nothing of it is catalogued, else reconcile it
 * with its .info. Returns 0 (also when skipped, with a log line) or
 * -errno of the catalogue. */
static int import_volume(struct snapfs *fs, const char *tenant, const char *vid,
			 const struct file_sets *sets, unsigned *added, unsigned *forgotten)
{
	struct import_chain c = {0};
	struct info_snap *snaps = NULL;
	struct catalog_txn *txn;
	char active[256], reason[320];
	json_t *info = NULL;
	uint64_t ino;
	size_t n = 0;
	int rc;

	rc = catalog_txn_begin(fs->cat, false, &txn);
	if (rc)
		return rc;
	if (catalog_id_lookup(txn, vid, &ino) == 0) {
		catalog_txn_abort(txn);
		/* imported before, or made by snapfs: follow what Cinder did since */
		return reconcile_volume(fs, vid, ino, added, forgotten);
	}
	rc = share_info_read(fs->share, vid, &info);
	if (rc == -ENOENT) {
		share_volume_base_name(vid, active, sizeof(active));
		rc = 0;
	} else if (!rc) {
		const char *a = json_string_value(json_object_get(info, "active"));

		if (!a) {
			snprintf(reason, sizeof(reason), "volume-%s.info has no \"active\" file",
				 vid);
			rc = -EINVAL;
		} else {
			snprintf(active, sizeof(active), "%s", a);
		}
	} else {
		snprintf(reason, sizeof(reason), "volume-%s.info: %s", vid, strerror(-rc));
		rc = -EINVAL;
	}
	if (!rc) {
		rc = import_chain_resolve(fs->share->dirfd, vid, active, &c, reason, sizeof(reason));
		if (rc && rc != -ENOMEM)
			rc = -EINVAL; /* a missing or unreadable file: skip the volume */
	}
	if (!rc) {
		snaps = calloc(c.n, sizeof(*snaps));
		rc = snaps ? info_check(txn, vid, info, &c, sets, snaps, &n, reason, sizeof(reason))
			   : -ENOMEM;
	}
	catalog_txn_abort(txn);
	if (rc == -EINVAL) {
		log_err("import: volume %s skipped: %s", vid, reason);
		rc = 0;
		goto out;
	}
	if (!rc)
		rc = import_insert(fs, tenant, vid, &c, snaps, n);
	if (rc == -EEXIST) {
		log_err("import: volume %s skipped: its uuid or a snapshot's is taken", vid);
		rc = 0;
		goto out;
	}
	if (!rc) {
		*added += 1 + (unsigned)n;
		log_info("import: volume %s (%s, %zu files, %zu snapshots, %" PRIu64
			 " bytes) into tenant %s",
			 vid, c.names[0], c.n, n, c.sizes[0], tenant);
	}
out:
	free(snaps);
	import_chain_free(&c);
	json_decref(info);
	return rc;
}

int import_share(struct snapfs *fs, const char *tenant, unsigned *added)
{
	struct file_sets sets = {NULL, NULL};
	struct name_list names;
	struct catalog_txn *txn;
	unsigned count = 0, forgotten = 0;
	char last[UUID_STR_LEN] = "";
	int rc = object_name_check(tenant);

	if (rc) {
		log_err("import=%s: not a usable tenant name", tenant);
		return rc;
	}
	rc = share_names(fs, &names);
	if (rc)
		return rc;
	rc = catalog_txn_begin(fs->cat, false, &txn);
	if (!rc) {
		rc = file_sets_load(txn, &sets);
		catalog_txn_abort(txn);
	}
	/* Sorted: a volume's base, .info and overlays are neighbours. */
	for (size_t i = 0; i < names.count && !rc; i++) {
		char vid[UUID_STR_LEN];
		enum share_name_kind kind = import_name_parse(names.names[i], vid, NULL);

		if (kind != SHARE_NAME_BASE && kind != SHARE_NAME_INFO)
			continue;
		if (!strcmp(vid, last))
			continue;
		snprintf(last, sizeof(last), "%s", vid);
		rc = import_volume(fs, tenant, vid, &sets, &count, &forgotten);
	}
	file_sets_free(&sets);
	name_list_free(&names);
	if (!rc)
		log_info("import into tenant %s: %u volumes and snapshots added, %u snapshots "
			 "forgotten",
			 tenant, count, forgotten);
	if (added)
		*added = count;
	return rc;
}

/* ---- manageable/ ---- */

uint64_t import_manageable_ino(const char *name)
{
	return INO_MANAGEABLE_BASE | (hash_fnv1a64(name, strlen(name)) & (INO_MANAGEABLE_BASE - 1));
}

bool import_ino_is_manageable(uint64_t ino)
{
	return ino >= INO_MANAGEABLE_BASE && ino < (INO_MANAGEABLE_BASE << 1);
}

/* Call fn for each manageable file name (see import.h). */
static int manageable_each(struct snapfs *fs, struct catalog_txn *txn,
			   int (*fn)(const char *name, uint64_t ino, void *arg), void *arg)
{
	struct file_sets sets = {NULL, NULL};
	struct name_list names;
	uint64_t *inos = NULL;
	size_t nino = 0;
	int rc = share_names(fs, &names);

	if (rc)
		return rc;
	rc = file_sets_load(txn, &sets);
	if (!rc && names.count && !(inos = calloc(names.count, sizeof(*inos))))
		rc = -ENOMEM;
	for (size_t i = 0; i < names.count && !rc; i++) {
		const char *name = names.names[i];
		uint64_t ino = import_manageable_ino(name);
		bool clash = false;

		if (import_name_parse(name, NULL, NULL) == SHARE_NAME_INFO ||
		    json_object_get(sets.owned, name))
			continue;
		for (size_t j = 0; j < nino && !clash; j++)
			clash = inos[j] == ino;
		if (clash) {
			log_err("manageable: %s left out: its inode number collides", name);
			continue;
		}
		inos[nino++] = ino;
		rc = fn(name, ino, arg);
	}
	free(inos);
	file_sets_free(&sets);
	name_list_free(&names);
	return rc;
}

int import_manageable_list(struct snapfs *fs, struct catalog_txn *txn,
			   int (*fn)(const char *name, uint64_t ino, void *arg), void *arg)
{
	return manageable_each(fs, txn, fn, arg);
}

struct find_arg {
	uint64_t ino;
	char name[256];
};

static int find_ino(const char *name, uint64_t ino, void *arg)
{
	struct find_arg *f = arg;

	if (f->ino ? ino != f->ino : strcmp(name, f->name))
		return 0;
	snprintf(f->name, sizeof(f->name), "%s", name);
	f->ino = ino;
	return 1;
}

int import_manageable_find(struct snapfs *fs, struct catalog_txn *txn, uint64_t ino, char *name,
			   size_t len, uint64_t *ino_out)
{
	struct find_arg f = {ino, ""};
	int rc;

	if (!ino)
		snprintf(f.name, sizeof(f.name), "%s", name);
	rc = manageable_each(fs, txn, find_ino, &f);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return -ENOENT;
	snprintf(name, len, "%s", f.name);
	if (ino_out)
		*ino_out = f.ino;
	return 0;
}

int import_overlay_check(struct snapfs *fs, struct catalog_txn *txn, const struct object *vol,
			 const char *name)
{
	char(*names)[256] = calloc(SNAPSHOT_CHAIN_MAX + 1, sizeof(*names));
	enum image_format *formats = calloc(SNAPSHOT_CHAIN_MAX + 1, sizeof(*formats));
	struct chain_layer *layers = calloc(SNAPSHOT_CHAIN_MAX + 1, sizeof(*layers));
	struct object top;
	struct chain *chain;
	size_t n = 0;
	int rc = names && formats && layers ? 0 : -ENOMEM;

	object_init(&top);
	top.kind = OBJ_SNAPSHOT;
	top.parent = vol->ino;
	snprintf(top.id, sizeof(top.id), "%s", vol->id);
	snprintf(top.backing, sizeof(top.backing), "%s", vol->file);
	if (!rc)
		rc = snapshot_layers(txn, &top, names + 1, formats + 1, SNAPSHOT_CHAIN_MAX, &n);
	if (!rc) {
		snprintf(names[0], sizeof(names[0]), "%s", name);
		formats[0] = IMAGE_FORMAT_QCOW2;
		for (size_t i = 0; i <= n; i++)
			layers[i] = (struct chain_layer){fs->share->dirfd, names[i], formats[i], false};
		rc = chain_open(&chain, layers, n + 1, 0);
		if (!rc)
			chain_close(chain);
	}
	object_clear(&top);
	free(names);
	free(formats);
	free(layers);
	return rc;
}

/* Describe and check manageable file name into *m. */
static int manageable_describe(struct snapfs *fs, struct catalog_txn *txn, const char *name,
			       struct manageable *m)
{
	char vid[UUID_STR_LEN], sid[UUID_STR_LEN], why[224];
	enum share_name_kind kind = import_name_parse(name, vid, sid);
	struct image_info info;
	struct object vol;
	uint64_t ino;
	int rc;

	memset(m, 0, sizeof(*m));
	snprintf(m->reference, sizeof(m->reference), "%s", name);
	snprintf(m->cinder_id, sizeof(m->cinder_id), "%s",
		 kind == SHARE_NAME_OVERLAY ? sid
		 : kind == SHARE_NAME_BASE  ? vid
					    : "");
	rc = import_file_check(fs->share->dirfd, name, &info, why, sizeof(why));
	m->size = info.virtual_size;
	if (rc == -ENOMEM)
		return rc;
	if (rc) {
		snprintf(m->reason, sizeof(m->reason), "%s", why);
		return 0;
	}
	if (kind == SHARE_NAME_BASE) {
		/* no volume owns it: safe when -o import would take its volume */
		json_t *vinfo = NULL;
		const char *active = name;
		struct import_chain c;

		rc = share_info_read(fs->share, vid, &vinfo);
		if (!rc)
			active = json_string_value(json_object_get(vinfo, "active"));
		if (rc && rc != -ENOENT) {
			snprintf(m->reason, sizeof(m->reason), "volume-%s.info is unreadable", vid);
		} else if (!active) {
			snprintf(m->reason, sizeof(m->reason),
				 "volume-%s.info names no active file", vid);
		} else if (import_chain_resolve(fs->share->dirfd, vid, active, &c, why,
						sizeof(why)) == 0) {
			import_chain_free(&c);
			m->safe = true;
		} else {
			snprintf(m->reason, sizeof(m->reason), "its volume's chain: %s", why);
		}
		json_decref(vinfo);
		return 0;
	}
	rc = catalog_id_lookup(txn, vid, &ino);
	if (rc == -ENOENT) {
		snprintf(m->reason, sizeof(m->reason), "volume %s is not in the catalogue", vid);
		return 0;
	}
	if (!rc)
		rc = catalog_object_get(txn, ino, &vol);
	else
		object_init(&vol);
	if (!rc && vol.kind != OBJ_VOLUME) {
		snprintf(m->reason, sizeof(m->reason), "%s is not a volume's uuid", vid);
	} else if (!rc && snapshot_hidden_get(&vol, name, NULL, 0)) {
		m->safe = true; /* a member of the volume's chain that no snapshot names */
	} else if (!rc && strcmp(info.backing_name, vol.file)) {
		snprintf(m->reason, sizeof(m->reason),
			 "backing file %.100s is not the active file of volume %s",
			 info.backing_name, vid);
	} else if (!rc) {
		int r = import_overlay_check(fs, txn, &vol, name);

		if (r == -ENOMEM)
			rc = r;
		else if (r)
			snprintf(m->reason, sizeof(m->reason),
				 "does not resolve over volume %s's chain", vid);
		else
			m->safe = true;
	}
	object_clear(&vol);
	return rc;
}

int import_manageable_get(struct snapfs *fs, struct catalog_txn *txn, uint64_t ino,
			  struct manageable *m)
{
	char name[256];
	int rc = import_manageable_find(fs, txn, ino, name, sizeof(name), NULL);

	return rc ? rc : manageable_describe(fs, txn, name, m);
}
