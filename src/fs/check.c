/* check.c - see check.h. */
#include "check.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

#include "import.h"
#include "log.h"
#include "qcow2.h"
#include "tree.h"

struct objs {
	struct object *v;
	size_t n, cap;
};

struct names {
	char (*v)[256];
	size_t n, cap;
};

struct check {
	struct catalog *cat;
	struct catalog_txn *txn;
	struct share *share;
	bool live;
	FILE *out;
	struct objs vols, snaps, busy; /* busy: objects with an operation */
	struct names owned;
	unsigned found;
};

static int objs_add(const struct object *o, void *arg)
{
	struct objs *l = arg;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct object *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v, l->cap = cap;
	}
	object_init(&l->v[l->n]);
	object_copy(&l->v[l->n++], o);
	return 0;
}

static void objs_free(struct objs *l)
{
	for (size_t i = 0; i < l->n; i++)
		object_clear(&l->v[i]);
	free(l->v);
}

static int names_add(struct names *l, const char *name)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		char(*v)[256] = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v, l->cap = cap;
	}
	snprintf(l->v[l->n++], 256, "%s", name);
	return 0;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

static bool names_has(const struct names *l, const char *name)
{
	return l->n && bsearch(name, l->v, l->n, sizeof(l->v[0]), name_cmp);
}

static void report(struct check *c, const char *what, const char *subject, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void report(struct check *c, const char *what, const char *subject, const char *fmt, ...)
{
	va_list ap;

	fprintf(c->out, "%s: %s: ", what, subject);
	va_start(ap, fmt);
	vfprintf(c->out, fmt, ap);
	va_end(ap);
	fputc('\n', c->out);
	if (strcmp(what, "note"))
		c->found++;
}

static void path_of(struct check *c, const struct object *o, char *buf, size_t len)
{
	if (tree_object_path(c->txn, o, buf, len))
		snprintf(buf, len, "%s %s", o->id, o->name);
}

static int collect(const struct object *o, void *arg)
{
	struct check *c = arg;
	int rc = 0;

	if (o->kind == OBJ_VOLUME)
		rc = objs_add(o, &c->vols);
	else if (o->kind == OBJ_SNAPSHOT)
		rc = objs_add(o, &c->snaps);
	if (!rc && o->op[0])
		rc = objs_add(o, &c->busy);
	return rc;
}

/* Is operation o's host alive (it may be running it now)? */
static bool op_live(struct check *c, const struct object *o)
{
	if (catalog_is_shared(c->cat))
		return catalog_op_owner_state(c->cat, o->op_owner) != OWNER_GONE;
	return c->live;
}

/* True when volume v, or one of its snapshots, runs an operation that a
 * live snapfs may be doing now: its files are not compared. */
static bool volume_busy(struct check *c, const struct object *v)
{
	for (size_t i = 0; i < c->busy.n; i++) {
		const struct object *o = &c->busy.v[i];

		if ((o->ino == v->ino || (o->kind == OBJ_SNAPSHOT && o->parent == v->ino)) &&
		    op_live(c, o))
			return true;
	}
	return false;
}

static void check_operations(struct check *c)
{
	for (size_t i = 0; i < c->busy.n; i++) {
		const struct object *o = &c->busy.v[i];
		char path[4096], since[40] = "?";
		bool gone;

		path_of(c, o, path, sizeof(path));
		if (o->op_since)
			time_format_iso8601(o->op_since, since, sizeof(since));
		gone = !op_live(c, o);
		if (gone)
			report(c, "operation", path,
			       "%s (status %s) since %s, left by %s: the next mount finishes or "
			       "undoes it",
			       o->op, o->status, since,
			       o->op_owner[0] ? o->op_owner : "a snapfs that is gone");
		else
			report(c, "note", path, "%s (status %s) under way since %s on %s", o->op,
			       o->status, since,
			       o->op_owner[0] ? o->op_owner : "the mounted snapfs");
	}
}

/* A regular file called name on the share? */
static bool file_exists(struct check *c, const char *name)
{
	struct stat st;

	return fstatat(c->share->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

static void expect_file(struct check *c, const char *path, const char *name, const char *role)
{
	if (*name && !file_exists(c, name))
		report(c, "missing", path, "%s %s is not on the share", role, name);
}

/* The header of name must name backing (or none when backing is ""). */
static void expect_backing(struct check *c, const char *path, const char *name, const char *backing,
			   const char *role)
{
	struct image_info info;

	if (!*name || !file_exists(c, name))
		return; /* reported as missing */
	if (qcow2_probe(c->share->dirfd, name, &info)) {
		report(c, "backing", path, "%s %s cannot be read: %s", role, name, info.reason);
		return;
	}
	if (*backing && info.format != IMAGE_FORMAT_QCOW2) {
		report(c, "backing", path, "%s %s is not qcow2, the catalogue has it over %s", role,
		       name, backing);
		return;
	}
	if (!*backing && info.has_backing) {
		report(c, "backing", path, "%s %s has backing file %s, the catalogue none", role,
		       name, info.backing_name);
		return;
	}
	if (*backing && (!info.has_backing || strcmp(info.backing_name, backing)))
		report(c, "backing", path, "%s %s has backing file %s, the catalogue %s", role,
		       name, info.has_backing ? info.backing_name : "(none)", backing);
}

static void check_info(struct check *c, const struct object *v, const char *path, const char *base)
{
	json_t *info = NULL, *val;
	const char *key;
	bool any_snap = false;
	int rc = share_info_read(c->share, v->id, &info);

	for (size_t i = 0; i < c->snaps.n; i++)
		any_snap |= c->snaps.v[i].parent == v->ino;
	if (rc == -ENOENT) {
		if (any_snap || strcmp(v->file, base))
			report(c, "info", path, "volume-%s.info is missing (active file %s%s)",
			       v->id, v->file, any_snap ? ", snapshots" : "");
		return;
	}
	if (rc) {
		report(c, "info", path, "volume-%s.info cannot be read (%s)", v->id, strerror(-rc));
		return;
	}
	val = json_object_get(info, "active");
	if (!json_is_string(val) || strcmp(json_string_value(val), v->file))
		report(c, "info", path, "volume-%s.info says active %s, the catalogue %s", v->id,
		       json_is_string(val) ? json_string_value(val) : "(none)", v->file);
	for (size_t i = 0; i < c->snaps.n; i++) {
		const struct object *s = &c->snaps.v[i];
		char spath[4096];

		if (s->parent != v->ino)
			continue;
		path_of(c, s, spath, sizeof(spath));
		val = json_object_get(info, s->id);
		if (!json_is_string(val))
			report(c, "info", spath, "volume-%s.info has no key for snapshot %s", v->id,
			       s->id);
		else if (strcmp(json_string_value(val), s->file))
			report(c, "info", spath,
			       "volume-%s.info maps snapshot %s to %s, the catalogue to %s", v->id,
			       s->id, json_string_value(val), s->file);
	}
	json_object_foreach (info, key, val) {
		bool known = !strcmp(key, "active");

		for (size_t i = 0; !known && i < c->snaps.n; i++)
			known = c->snaps.v[i].parent == v->ino && !strcmp(c->snaps.v[i].id, key);
		if (!known)
			report(c, "info", path,
			       "volume-%s.info names snapshot %s (%s), unknown to the "
			       "catalogue",
			       v->id, key, json_is_string(val) ? json_string_value(val) : "?");
	}
	json_decref(info);
}

static int check_volume(struct check *c, const struct object *v)
{
	char path[4096], base[256];
	size_t i;
	json_t *pair;
	int rc;

	path_of(c, v, path, sizeof(path));
	share_volume_base_name(v->id, base, sizeof(base));
	if ((rc = names_add(&c->owned, base)) || (rc = names_add(&c->owned, v->file)))
		return rc;
	for (i = 0; i < c->snaps.n; i++)
		if (c->snaps.v[i].parent == v->ino &&
		    (rc = names_add(&c->owned, c->snaps.v[i].file)))
			return rc;
	json_array_foreach (v->members, i, pair) {
		const char *f = json_string_value(json_array_get(pair, 0));

		if (f && (rc = names_add(&c->owned, f)))
			return rc;
	}
	if (volume_busy(c, v))
		return 0; /* changing now: its files are compared once it is idle */

	expect_file(c, path, base, "base file");
	if (strcmp(v->file, base))
		expect_file(c, path, v->file, "active file");
	expect_backing(c, path, base, "", "base file");
	for (i = 0; i < c->snaps.n; i++) {
		const struct object *s = &c->snaps.v[i];
		char spath[4096];

		if (s->parent != v->ino)
			continue;
		path_of(c, s, spath, sizeof(spath));
		expect_file(c, spath, s->file, "overlay");
		expect_file(c, spath, s->backing, "data file");
		expect_backing(c, spath, s->file, s->backing, "overlay");
	}
	json_array_foreach (v->members, i, pair) {
		const char *f = json_string_value(json_array_get(pair, 0));
		const char *b = json_string_value(json_array_get(pair, 1));

		if (!f || !b)
			continue;
		expect_file(c, path, f, "hidden layer");
		expect_backing(c, path, f, b, "hidden layer");
	}
	check_info(c, v, path, base);
	return 0;
}

/* A volume uuid the catalogue knows? */
static bool volume_known(struct check *c, const char *vid)
{
	for (size_t i = 0; i < c->vols.n; i++)
		if (!strcmp(c->vols.v[i].id, vid))
			return true;
	return false;
}

/* Would import take volume vid in? "" or the reason why not, into why. */
static void import_verdict(struct check *c, const char *vid, char *why, size_t len)
{
	struct import_chain chain = {0};
	char top[256], reason[256] = "";
	json_t *info = NULL;

	share_volume_base_name(vid, top, sizeof(top));
	if (!share_info_read(c->share, vid, &info)) {
		const char *a = json_string_value(json_object_get(info, "active"));

		if (a)
			snprintf(top, sizeof(top), "%s", a);
		json_decref(info);
	}
	if (import_chain_resolve(c->share->dirfd, vid, top, &chain, reason, sizeof(reason)))
		snprintf(why, len, "%s", reason[0] ? reason : "its chain does not resolve");
	else
		why[0] = '\0';
	import_chain_free(&chain);
}

static int check_unknown_files(struct check *c)
{
	struct names seen = {0}; /* unknown volumes already reported */
	struct dirent *d;
	int fd = openat(c->share->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
	struct names files = {0};
	int rc = 0;

	if (!dir) {
		rc = -errno;
		if (fd >= 0)
			close(fd);
		return rc;
	}
	while ((d = readdir(dir)) && !rc)
		if (import_name_parse(d->d_name, NULL, NULL) != SHARE_NAME_OTHER)
			rc = names_add(&files, d->d_name);
	closedir(dir);
	if (files.n)
		qsort(files.v, files.n, sizeof(files.v[0]), name_cmp);
	for (size_t i = 0; !rc && i < files.n; i++) {
		char vid[UUID_STR_LEN], why[256];
		const char *name = files.v[i];
		enum share_name_kind k = import_name_parse(name, vid, NULL);

		if (volume_known(c, vid)) {
			if (k != SHARE_NAME_INFO && !names_has(&c->owned, name))
				report(c, "unknown", name,
				       "a file of volume %s that the catalogue's chain "
				       "does not hold (manageable/ lists it)",
				       vid);
			continue;
		}
		if (names_has(&seen, vid))
			continue;
		rc = names_add(&seen, vid);
		if (!rc)
			qsort(seen.v, seen.n, sizeof(seen.v[0]), name_cmp);
		import_verdict(c, vid, why, sizeof(why));
		if (!why[0])
			report(c, "unknown", name,
			       "volume %s is not in the catalogue; -o import=TENANT "
			       "would add it",
			       vid);
		else
			report(c, "unknown", name,
			       "volume %s is not in the catalogue; import would skip "
			       "it: %s",
			       vid, why);
	}
	free(files.v);
	free(seen.v);
	return rc;
}

int check_run(struct catalog *cat, struct share *share, bool live, FILE *out)
{
	struct check c = {.cat = cat, .share = share, .live = live, .out = out};
	int rc = catalog_txn_begin(cat, false, &c.txn);

	if (rc)
		return rc;
	rc = catalog_objects_foreach(c.txn, collect, &c);
	if (!rc)
		check_operations(&c);
	for (size_t i = 0; !rc && i < c.vols.n; i++)
		rc = check_volume(&c, &c.vols.v[i]);
	if (!rc && c.owned.n)
		qsort(c.owned.v, c.owned.n, sizeof(c.owned.v[0]), name_cmp);
	if (!rc)
		rc = check_unknown_files(&c);
	catalog_txn_abort(c.txn);
	objs_free(&c.vols);
	objs_free(&c.snaps);
	objs_free(&c.busy);
	free(c.owned.v);
	return rc ? rc : (int)c.found;
}
