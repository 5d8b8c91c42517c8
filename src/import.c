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
			layers[i] = (struct chain_layer){dirfd, c->names[i], c->formats[i]};
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
	int fd = openat(fs->share.dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *de;
	DIR *d;
	int rc = 0;

	memset(l, 0, sizeof(*l));
	if (fd < 0 || !(d = fdopendir(fd))) {
		rc = -errno;
		if (fd >= 0)
			close(fd);
		log_err("cannot list share %s: %s", fs->share.path, strerror(-rc));
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

/* Import volume vid if nothing of it is catalogued. Returns 0 (also when
 * skipped, with a log line) or -errno of the catalogue. */
static int import_volume(struct snapfs *fs, const char *tenant, const char *vid,
			 const struct file_sets *sets, unsigned *added)
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
		return 0; /* already catalogued: imported before, or made by snapfs */
	}
	rc = share_info_read(&fs->share, vid, &info);
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
		rc = import_chain_resolve(fs->share.dirfd, vid, active, &c, reason, sizeof(reason));
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
	unsigned count = 0;
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
		rc = import_volume(fs, tenant, vid, &sets, &count);
	}
	file_sets_free(&sets);
	name_list_free(&names);
	if (!rc)
		log_info("import into tenant %s: %u volumes and snapshots added", tenant, count);
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
			layers[i] = (struct chain_layer){fs->share.dirfd, names[i], formats[i]};
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
	rc = import_file_check(fs->share.dirfd, name, &info, why, sizeof(why));
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

		rc = share_info_read(&fs->share, vid, &vinfo);
		if (!rc)
			active = json_string_value(json_object_get(vinfo, "active"));
		if (rc && rc != -ENOENT) {
			snprintf(m->reason, sizeof(m->reason), "volume-%s.info is unreadable", vid);
		} else if (!active) {
			snprintf(m->reason, sizeof(m->reason),
				 "volume-%s.info names no active file", vid);
		} else if (import_chain_resolve(fs->share.dirfd, vid, active, &c, why,
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
