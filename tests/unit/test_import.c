/* test_import.c - unit tests of import's validation core without a mount:
 * share names, the checks of one file (symlinks, hostile headers, backing
 * names), chain resolution, import_share() (what it takes, what it skips,
 * idempotence, never a changed file), manageable files and their inode
 * numbers, user.manage / user.unmanage on the catalogue and .info, and the
 * reconcile of catalogued volumes with what Cinder did to their files. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog.h"
#include "fixture.h"
#include "group.h"
#include "import.h"
#include "object.h"
#include "qcow2.h"
#include "share.h"
#include "snapshot.h"
#include "tree.h"
#include "util.h"
#include "volume.h"

TestSuite(import, .init = fx_setup, .fini = fx_teardown, .timeout = 60);
TestSuite(names, .fini = test_leak_check);

#define VA "aaaaaaaa-0000-4000-8000-000000000001"
#define VB "bbbbbbbb-0000-4000-8000-000000000002"
#define S1 "11111111-1111-4111-8111-111111111111"
#define S2 "22222222-2222-4222-8222-222222222222"
#define S3 "33333333-3333-4333-8333-333333333333"
#define MB (1024 * 1024)

Test(names, parse)
{
	char v[UUID_STR_LEN], s[UUID_STR_LEN];

	cr_expect_eq(import_name_parse("volume-" VA, v, s), SHARE_NAME_BASE);
	cr_expect_str_eq(v, VA);
	cr_expect_str_eq(s, "");
	cr_expect_eq(import_name_parse("volume-" VA "." S1, v, s), SHARE_NAME_OVERLAY);
	cr_expect_str_eq(v, VA);
	cr_expect_str_eq(s, S1);
	cr_expect_eq(import_name_parse("volume-" VA ".info", v, NULL), SHARE_NAME_INFO);
	cr_expect_eq(import_name_parse("volume-junk", v, s), SHARE_NAME_OTHER);
	cr_expect_eq(import_name_parse("volume-" VA ".", NULL, NULL), SHARE_NAME_OTHER);
	cr_expect_eq(import_name_parse("volume-" VA "." S1 "x", NULL, NULL), SHARE_NAME_OTHER);
	cr_expect_eq(import_name_parse("volume-AAAAAAAA-0000-4000-8000-000000000001", NULL, NULL),
		     SHARE_NAME_OTHER);
	cr_expect_eq(import_name_parse("../volume-" VA, NULL, NULL), SHARE_NAME_OTHER);
	cr_expect_eq(import_name_parse(".volume-" VA ".info.tmp", NULL, NULL), SHARE_NAME_OTHER);
}

Test(names, manageable_inodes)
{
	uint64_t a = import_manageable_ino("volume-" VA), b = import_manageable_ino("volume-" VB);

	cr_expect(import_ino_is_manageable(a));
	cr_expect(import_ino_is_manageable(b));
	cr_expect_neq(a, b);
	cr_expect_eq(a, import_manageable_ino("volume-" VA), "stable");
	cr_expect(!import_ino_is_manageable(16ULL << 20), "catalogue inodes are outside");
}

/* ---- share files ---- */

static void raw_file(const char *name, uint64_t size, unsigned char fill)
{
	char path[PATH_MAX + 256], buf[4096];
	int fd = open(fx_share_path(path, sizeof(path), name), O_WRONLY | O_CREAT | O_EXCL, 0644);

	cr_assert(fd >= 0, "create %s: %s", name, strerror(errno));
	memset(buf, fill, sizeof(buf));
	cr_assert_eq(pwrite(fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	cr_assert_eq(ftruncate(fd, (off_t)size), 0);
	close(fd);
}

static void overlay(const char *name, const char *backing, enum image_format fmt)
{
	int rc = qcow2_overlay_create(fx.fs->share->dirfd, name, backing, fmt, 0, 0644);

	cr_assert_eq(rc, 0, "overlay %s: %s", name, strerror(-rc));
}

static void put_be64(const char *name, off_t off, uint64_t v)
{
	char path[PATH_MAX + 256];
	unsigned char b[8];
	int fd = open(fx_share_path(path, sizeof(path), name), O_WRONLY);

	cr_assert(fd >= 0);
	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)(v >> (56 - 8 * i));
	cr_assert_eq(pwrite(fd, b, 8, off), 8);
	close(fd);
}

static uint64_t get_be64(const char *name, off_t off)
{
	char path[PATH_MAX + 256];
	unsigned char b[8];
	uint64_t v = 0;
	int fd = open(fx_share_path(path, sizeof(path), name), O_RDONLY);

	cr_assert(fd >= 0);
	cr_assert_eq(pread(fd, b, 8, off), 8);
	close(fd);
	for (int i = 0; i < 8; i++)
		v = v << 8 | b[i];
	return v;
}

static void write_info(const char *vid, const char *text)
{
	char path[PATH_MAX + 256], name[128];
	FILE *f;

	snprintf(name, sizeof(name), "volume-%s.info", vid);
	f = fopen(fx_share_path(path, sizeof(path), name), "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

static int check(const char *name, char *reason, size_t len)
{
	struct image_info info;

	return import_file_check(fx.fs->share->dirfd, name, &info, reason, len);
}

Test(import, file_checks)
{
	char reason[256], path[PATH_MAX + 256];

	raw_file("volume-" VA, 64 * MB, 0x11);
	overlay("volume-" VA "." S1, "volume-" VA, IMAGE_FORMAT_RAW);
	cr_expect_eq(check("volume-" VA, reason, sizeof(reason)), 0, "%s", reason);
	cr_expect_eq(check("volume-" VA "." S1, reason, sizeof(reason)), 0, "%s", reason);

	/* a symlink, even to a good file */
	cr_assert_eq(symlink("volume-" VA, fx_share_path(path, sizeof(path), "volume-" VB)), 0);
	cr_expect_eq(check("volume-" VB, reason, sizeof(reason)), -EINVAL);
	cr_expect_str_eq(reason, "a symbolic link");
	unlink(path);

	/* a directory */
	cr_assert_eq(mkdir(fx_share_path(path, sizeof(path), "volume-" VB), 0755), 0);
	cr_expect_eq(check("volume-" VB, reason, sizeof(reason)), -EINVAL);
	rmdir(path);

	/* a bad name */
	raw_file("volume-junk", MB, 0);
	cr_expect_eq(check("volume-junk", reason, sizeof(reason)), -EINVAL);

	/* an overlay of another volume's file */
	raw_file("volume-" VB, 64 * MB, 0x22);
	overlay("volume-" VA "." S2, "volume-" VB, IMAGE_FORMAT_RAW);
	cr_expect_eq(check("volume-" VA "." S2, reason, sizeof(reason)), -EINVAL);
	cr_expect(strstr(reason, "not a file of volume"), "%s", reason);

	/* a base with a backing file */
	overlay("volume-" VA "." S3, "volume-" VA, IMAGE_FORMAT_RAW);
	cr_assert_eq(renameat(fx.fs->share->dirfd, "volume-" VA "." S3, fx.fs->share->dirfd,
			      "volume-cccccccc-0000-4000-8000-000000000003"),
		     0);
	cr_expect_eq(check("volume-cccccccc-0000-4000-8000-000000000003", reason, sizeof(reason)),
		     -EINVAL);
}

Test(import, hostile_headers)
{
	char reason[256], path[PATH_MAX + 256];
	const char *ov = "volume-" VA "." S1;
	uint64_t boff;
	int fd;

	raw_file("volume-" VA, 64 * MB, 0x11);
	overlay(ov, "volume-" VA, IMAGE_FORMAT_RAW);

	/* the external data file bit */
	put_be64(ov, 72, QCOW2_INCOMPAT_DATA_FILE);
	cr_expect_eq(check(ov, reason, sizeof(reason)), -EINVAL, "%s", reason);
	cr_expect(strstr(reason, "data file"), "%s", reason);
	/* an unknown incompatible bit */
	put_be64(ov, 72, 1ULL << 10);
	cr_expect_neq(check(ov, reason, sizeof(reason)), 0);
	put_be64(ov, 72, 0);
	cr_expect_eq(check(ov, reason, sizeof(reason)), 0, "%s", reason);

	/* a backing name that is a path: "/olume-..." */
	boff = get_be64(ov, 8);
	fd = open(fx_share_path(path, sizeof(path), ov), O_WRONLY);
	cr_assert(fd >= 0);
	cr_assert_eq(pwrite(fd, "/", 1, (off_t)boff), 1);
	close(fd);
	cr_expect_neq(check(ov, reason, sizeof(reason)), 0);
}

Test(import, chain_resolve)
{
	struct import_chain c;
	char reason[256];
	int rc;

	raw_file("volume-" VA, 64 * MB, 0x11);
	overlay("volume-" VA "." S1, "volume-" VA, IMAGE_FORMAT_RAW);
	overlay("volume-" VA "." S2, "volume-" VA "." S1, IMAGE_FORMAT_QCOW2);
	rc = import_chain_resolve(fx.fs->share->dirfd, VA, "volume-" VA "." S2, &c, reason,
				  sizeof(reason));
	cr_assert_eq(rc, 0, "%s", reason);
	cr_expect_eq(c.n, 3);
	cr_expect_str_eq(c.names[1], "volume-" VA "." S1);
	cr_expect_eq(c.formats[2], IMAGE_FORMAT_RAW);
	cr_expect_eq(c.sizes[0], 64 * MB);
	import_chain_free(&c);

	/* not the volume asked for */
	rc = import_chain_resolve(fx.fs->share->dirfd, VB, "volume-" VA "." S2, &c, reason,
				  sizeof(reason));
	cr_expect_eq(rc, -EINVAL);
	/* a chain that loops: S1 over S2 over S1 */
	unlinkat(fx.fs->share->dirfd, "volume-" VA "." S1, 0);
	overlay("volume-" VA "." S1, "volume-" VA "." S2, IMAGE_FORMAT_QCOW2);
	rc = import_chain_resolve(fx.fs->share->dirfd, VA, "volume-" VA "." S2, &c, reason,
				  sizeof(reason));
	cr_expect_eq(rc, -EINVAL);
	cr_expect(strstr(reason, "loop"), "%s", reason);
}

static uint64_t lookup_path(const char *t, const char *v, const char *s)
{
	struct catalog_txn *txn;
	uint64_t ino = 0;
	int rc = catalog_txn_begin(fx.fs->cat, false, &txn);

	cr_assert_eq(rc, 0);
	rc = catalog_child_lookup(txn, 0, OBJ_TENANT, t, &ino);
	if (!rc && v)
		rc = catalog_child_lookup(txn, ino, OBJ_VOLUME, v, &ino);
	if (!rc && s)
		rc = catalog_child_lookup(txn, ino, OBJ_SNAPSHOT, s, &ino);
	catalog_txn_abort(txn);
	return rc ? 0 : ino;
}

static void get_obj(uint64_t ino, struct object *o)
{
	struct catalog_txn *txn;
	int rc = catalog_txn_begin(fx.fs->cat, false, &txn);

	cr_assert_eq(rc, 0);
	rc = catalog_object_get(txn, ino, o);
	catalog_txn_abort(txn);
	cr_assert_eq(rc, 0);
}

/* A: raw base, S1 and S2 (both in .info), S3 stray over the active file;
 * B: an overlay of A's base in B's name (skipped). */
static void cinder_share(void)
{
	raw_file("volume-" VA, 64 * MB, 0x11);
	overlay("volume-" VA "." S1, "volume-" VA, IMAGE_FORMAT_RAW);
	overlay("volume-" VA "." S2, "volume-" VA "." S1, IMAGE_FORMAT_QCOW2);
	overlay("volume-" VA "." S3, "volume-" VA "." S2, IMAGE_FORMAT_QCOW2);
	write_info(VA, "{\"active\": \"volume-" VA "." S2 "\", \"" S1 "\": \"volume-" VA "." S1
		       "\", \"" S2 "\": \"volume-" VA "." S2 "\"}");
	overlay("volume-" VB "." S3, "volume-" VA, IMAGE_FORMAT_RAW);
	write_info(VB, "{\"active\": \"volume-" VB "." S3 "\"}");
}

Test(import, share_import_is_idempotent)
{
	struct object vol, snap, t;
	unsigned added = 0;
	struct stat before, after;
	char path[PATH_MAX + 256];

	cinder_share();
	cr_assert_eq(stat(fx_share_path(path, sizeof(path), "volume-" VA ".info"), &before), 0);
	cr_assert_eq(import_share(fx.fs, "cinder", &added), 0);
	cr_expect_eq(added, 3, "A and its two snapshots");
	cr_assert_neq(lookup_path("cinder", VA, NULL), 0);
	cr_expect_eq(lookup_path("cinder", VB, NULL), 0, "B is skipped");
	get_obj(lookup_path("cinder", NULL, NULL), &t);
	cr_expect_eq(t.uid, 0);
	cr_expect_eq(t.mode, 0755);
	get_obj(lookup_path("cinder", VA, NULL), &vol);
	cr_expect_str_eq(vol.id, VA);
	cr_expect_str_eq(vol.file, "volume-" VA "." S2);
	cr_expect_str_eq(vol.format, "raw");
	cr_expect_eq(vol.size, 64 * MB);
	cr_expect(!snapshot_hidden_any(&vol));
	get_obj(lookup_path("cinder", VA, S2), &snap);
	cr_expect_str_eq(snap.id, S2);
	cr_expect_str_eq(snap.status, "available");
	cr_expect_str_eq(snap.backing, "volume-" VA "." S1);

	cr_assert_eq(import_share(fx.fs, "cinder", &added), 0);
	cr_expect_eq(added, 0, "nothing twice");
	cr_assert_eq(stat(fx_share_path(path, sizeof(path), "volume-" VA ".info"), &after), 0);
	cr_expect_eq(before.st_mtime, after.st_mtime);
	cr_expect_eq(before.st_ino, after.st_ino, ".info never rewritten by import");
	object_clear(&vol);
	object_clear(&snap);
	object_clear(&t);
}

Test(import, unnamed_overlays_become_hidden_layers)
{
	struct object vol;
	unsigned added = 0;

	raw_file("volume-" VA, 64 * MB, 0x11);
	overlay("volume-" VA "." S1, "volume-" VA, IMAGE_FORMAT_RAW);
	overlay("volume-" VA "." S2, "volume-" VA "." S1, IMAGE_FORMAT_QCOW2);
	write_info(VA,
		   "{\"active\": \"volume-" VA "." S2 "\", \"" S2 "\": \"volume-" VA "." S2 "\"}");
	cr_assert_eq(import_share(fx.fs, "t", &added), 0);
	cr_expect_eq(added, 2);
	get_obj(lookup_path("t", VA, NULL), &vol);
	cr_expect(snapshot_hidden_get(&vol, "volume-" VA "." S1, NULL, 0));
	object_clear(&vol);
}

Test(import, bad_info_skips_the_volume)
{
	unsigned added = 0;

	raw_file("volume-" VA, 64 * MB, 0x11);
	overlay("volume-" VA "." S1, "volume-" VA, IMAGE_FORMAT_RAW);
	/* a key that names the base, not an overlay */
	write_info(VA, "{\"active\": \"volume-" VA "." S1 "\", \"" S1 "\": \"volume-" VA "\"}");
	cr_assert_eq(import_share(fx.fs, "t", &added), 0);
	cr_expect_eq(added, 0);
	/* an active file outside the volume */
	write_info(VA, "{\"active\": \"../etc/passwd\"}");
	cr_assert_eq(import_share(fx.fs, "t", &added), 0);
	cr_expect_eq(added, 0);
	cr_expect_eq(import_share(fx.fs, "bad/name", &added), -EINVAL);
	/* a chain whose base is missing */
	write_info(VB, "{\"active\": \"volume-" VB "." S1 "\"}");
	raw_file("volume-" VB, 64 * MB, 0x22);
	overlay("volume-" VB "." S1, "volume-" VB, IMAGE_FORMAT_RAW);
	cr_assert_eq(unlinkat(fx.fs->share->dirfd, "volume-" VB, 0), 0);
	cr_expect_eq(import_share(fx.fs, "t", &added), 0, "a missing file skips, never fails");
	cr_expect_eq(added, 0);
}

static int count_entry(const char *name, uint64_t ino, void *arg)
{
	(void)name;
	(void)ino;
	(*(int *)arg)++;
	return 0;
}

Test(import, manageable_and_manage_unmanage)
{
	struct catalog_txn *txn;
	struct manageable m;
	struct object vol;
	uint64_t volume, s2, ino;
	unsigned added;
	char(*names)[256] = calloc(SNAPSHOT_CHAIN_MAX, sizeof(*names));
	enum image_format formats[SNAPSHOT_CHAIN_MAX];
	size_t n;
	int count = 0, rc;
	json_t *info;

	cr_assert_not_null(names);
	cinder_share();
	cr_assert_eq(import_share(fx.fs, "cinder", &added), 0);
	volume = lookup_path("cinder", VA, NULL);

	/* manageable: S3 (safe), B's overlay (unsafe) */
	cr_assert_eq(catalog_txn_begin(fx.fs->cat, false, &txn), 0);
	cr_assert_eq(import_manageable_list(fx.fs, txn, count_entry, &count), 0);
	cr_expect_eq(count, 2);
	cr_assert_eq(
		import_manageable_get(fx.fs, txn, import_manageable_ino("volume-" VA "." S3), &m),
		0);
	cr_expect(m.safe, "%s", m.reason);
	cr_expect_str_eq(m.cinder_id, S3);
	cr_expect_eq(m.size, 64 * MB);
	cr_assert_eq(
		import_manageable_get(fx.fs, txn, import_manageable_ino("volume-" VB "." S3), &m),
		0);
	cr_expect(!m.safe);
	cr_expect_neq(m.reason[0], '\0');
	cr_expect_eq(import_manageable_get(fx.fs, txn, import_manageable_ino("volume-" VA), &m),
		     -ENOENT, "owned files are not manageable");
	catalog_txn_abort(txn);

	/* manage */
	cr_expect_eq(snapshot_manage(fx.fs, &cred_user, volume, "volume-" VA "." S3), -EPERM);
	cr_expect_eq(snapshot_manage(fx.fs, &cred_root, volume, "volume-" VB "." S3), -EINVAL);
	cr_expect_eq(snapshot_manage(fx.fs, &cred_root, volume, "volume-" VA "." S1), -EEXIST);
	cr_expect_eq(snapshot_manage(fx.fs, &cred_root, volume, "../volume-" VA), -EINVAL);
	rc = snapshot_manage(fx.fs, &cred_group_admin, volume, "volume-" VA "." S3);
	cr_assert_eq(rc, 0, "%s", strerror(-rc));
	get_obj(volume, &vol);
	cr_expect_str_eq(vol.file, "volume-" VA "." S3);
	object_clear(&vol);
	cr_assert_eq(share_info_read(fx.fs->share, VA, &info), 0);
	cr_expect_str_eq(json_string_value(json_object_get(info, "active")), "volume-" VA "." S3);
	cr_expect_str_eq(json_string_value(json_object_get(info, S3)), "volume-" VA "." S3);
	json_decref(info);

	/* unmanage S2: a hidden layer; the chain of S3 still resolves */
	s2 = lookup_path("cinder", VA, S2);
	cr_expect_eq(snapshot_unmanage(fx.fs, &cred_user, s2), -EPERM);
	rc = snapshot_unmanage(fx.fs, &cred_root, s2);
	cr_assert_eq(rc, 0, "%s", strerror(-rc));
	cr_expect_eq(lookup_path("cinder", VA, S2), 0);
	get_obj(volume, &vol);
	cr_expect(snapshot_hidden_get(&vol, "volume-" VA "." S2, NULL, 0));
	object_clear(&vol);
	cr_assert_eq(share_info_read(fx.fs->share, VA, &info), 0);
	cr_expect_null(json_object_get(info, S2));
	json_decref(info);
	cr_assert_eq(catalog_txn_begin(fx.fs->cat, false, &txn), 0);
	{
		struct object s3;

		catalog_object_get(txn, lookup_path("cinder", VA, S3), &s3);
		cr_expect_eq(snapshot_layers(txn, &s3, names, formats, SNAPSHOT_CHAIN_MAX, &n), 0);
		cr_expect_eq(n, 3, "S3's data: S2's file, S1's, the base");
		cr_expect_str_eq(names[0], "volume-" VA "." S2);
		object_clear(&s3);
	}
	cr_assert_eq(
		import_manageable_get(fx.fs, txn, import_manageable_ino("volume-" VA "." S2), &m),
		0);
	cr_expect(m.safe, "a hidden layer can be managed again: %s", m.reason);
	catalog_txn_abort(txn);

	/* a remount keeps it; manage it back */
	fx_reopen();
	rc = snapshot_manage(fx.fs, &cred_root, volume, "volume-" VA "." S2);
	cr_assert_eq(rc, 0, "%s", strerror(-rc));
	cr_expect_neq(lookup_path("cinder", VA, S2), 0);
	get_obj(volume, &vol);
	cr_expect(!snapshot_hidden_any(&vol));
	cr_expect_str_eq(vol.file, "volume-" VA "." S3, "the active file did not move");
	object_clear(&vol);
	cr_assert_eq(catalog_txn_begin(fx.fs->cat, false, &txn), 0);
	cr_expect_eq(catalog_id_lookup(txn, S2, &ino), 0);
	catalog_txn_abort(txn);
	free(names);
}

/* ---- reconcile: what Cinder did to an imported volume since ---- */

#define S4 "44444444-4444-4444-8444-444444444444"
#define S5 "55555555-5555-4555-8555-555555555555"
#define OV(v, s) "volume-" v "." s

/* What Cinder does to .info: active (NULL: unchanged), and key set to
 * file (NULL: key removed; key NULL: no key changed). */
static void info_edit(const char *vid, const char *active, const char *key, const char *file)
{
	json_t *info = NULL;
	char *text;

	cr_assert_eq(share_info_read(fx.fs->share, vid, &info), 0);
	if (active)
		json_object_set_new(info, "active", json_string(active));
	if (key && file)
		json_object_set_new(info, key, json_string(file));
	else if (key)
		json_object_del(info, key);
	text = json_dumps(info, JSON_COMPACT | JSON_SORT_KEYS);
	cr_assert_not_null(text);
	cr_assert_eq(share_info_write(fx.fs->share, vid, text, strlen(text)), 0);
	free(text);
	json_decref(info);
}

/* Cinder's snapshot sid of volume vid (offline): an overlay on .info's
 * active file, which it becomes, and a key. */
static void cinder_snap(const char *vid, const char *sid)
{
	char file[128], active[256], base[64];
	json_t *info = NULL;

	cr_assert_eq(share_info_read(fx.fs->share, vid, &info), 0);
	snprintf(active, sizeof(active), "%s", json_string_value(json_object_get(info, "active")));
	json_decref(info);
	snprintf(file, sizeof(file), "volume-%s.%s", vid, sid);
	share_volume_base_name(vid, base, sizeof(base));
	overlay(file, active, strcmp(active, base) ? IMAGE_FORMAT_QCOW2 : IMAGE_FORMAT_RAW);
	info_edit(vid, file, sid, file);
}

/* Cinder's offline delete of snapshot sid of volume vid: its overlay is
 * committed into its backing file and removed; higher (NULL when it was
 * the active file) is rebased onto that backing file (-u: for these empty
 * overlays, made again over it); .info drops the key. */
static void cinder_delete(const char *vid, const char *sid, const char *higher)
{
	char file[128], below[256];
	struct image_info ii;

	snprintf(file, sizeof(file), "volume-%s.%s", vid, sid);
	cr_assert_eq(qcow2_probe(fx.fs->share->dirfd, file, &ii), 0);
	snprintf(below, sizeof(below), "%.200s", ii.backing_name);
	cr_assert_eq(unlinkat(fx.fs->share->dirfd, file, 0), 0);
	if (higher) {
		cr_assert_eq(unlinkat(fx.fs->share->dirfd, higher, 0), 0);
		overlay(higher, below, ii.backing_format);
	}
	info_edit(vid, higher ? NULL : below, sid, NULL);
}

struct state_arg {
	char *buf;
	size_t len;
};

static int state_snap(const char *name, uint64_t ino, void *arg)
{
	struct state_arg *a = arg;
	struct object o;
	size_t n = strlen(a->buf);

	fx_get_obj(ino, &o);
	snprintf(a->buf + n, a->len - n, " %s:%s:%s>%s:%s%s", name, o.id, o.file, o.backing,
		 o.status, o.link_id[0] ? ":linked" : "");
	object_clear(&o);
	return 0;
}

/* The catalogue's view of volume ino in buf: active file, hidden layers,
 * updated_at, each snapshot (name:id:file>backing:status). */
static void vol_state(uint64_t ino, char *buf, size_t len)
{
	struct state_arg a = {buf, len};
	struct catalog_txn *txn;
	struct object vol;
	char *members;

	fx_get_obj(ino, &vol);
	members = vol.members ? json_dumps(vol.members, JSON_COMPACT) : NULL;
	snprintf(buf, len, "%s %s %lld", vol.file, members ? members : "-",
		 (long long)vol.updated_at);
	free(members);
	object_clear(&vol);
	cr_assert_eq(catalog_txn_begin(fx.fs->cat, false, &txn), 0);
	cr_assert_eq(catalog_children_foreach(txn, ino, OBJ_SNAPSHOT, state_snap, &a), 0);
	catalog_txn_abort(txn);
}

static unsigned reimport(void)
{
	unsigned added = 99;
	int rc = import_share(fx.fs, "cinder", &added);

	cr_assert_eq(rc, 0, "import_share: %s", strerror(-rc));
	return added;
}

Test(import, reconcile_adds_the_snapshots_cinder_took)
{
	char(*names)[256] = calloc(SNAPSHOT_CHAIN_MAX, sizeof(*names));
	enum image_format formats[SNAPSHOT_CHAIN_MAX];
	char path[PATH_MAX + 256], before[4096], after[4096];
	struct stat st0, st1;
	struct catalog_txn *txn;
	struct object vol, s3, s4;
	uint64_t volume;
	size_t n;

	cr_assert_not_null(names);
	cinder_share(); /* A: base, S1, S2 active; S3's file a stray over S2's */
	cr_assert_eq(reimport(), 3);
	volume = lookup_path("cinder", VA, NULL);

	/* Cinder takes S3 (on the active file) and S4 on it */
	info_edit(VA, OV(VA, S3), S3, OV(VA, S3));
	cinder_snap(VA, S4);
	cr_assert_eq(stat(fx_share_path(path, sizeof(path), "volume-" VA ".info"), &st0), 0);
	cr_expect_eq(reimport(), 2, "S3 and S4");
	get_obj(volume, &vol);
	cr_expect_str_eq(vol.file, OV(VA, S4), "the active file moved");
	cr_expect(!snapshot_hidden_any(&vol));
	object_clear(&vol);
	get_obj(lookup_path("cinder", VA, S3), &s3);
	cr_expect_str_eq(s3.id, S3);
	cr_expect_str_eq(s3.file, OV(VA, S3));
	cr_expect_str_eq(s3.backing, OV(VA, S2));
	cr_expect_str_eq(s3.status, "available");
	cr_expect_eq(s3.size, 64 * MB);
	get_obj(lookup_path("cinder", VA, S4), &s4);
	cr_expect_str_eq(s4.backing, OV(VA, S3));
	cr_assert_eq(catalog_txn_begin(fx.fs->cat, false, &txn), 0);
	cr_expect_eq(snapshot_layers(txn, &s4, names, formats, SNAPSHOT_CHAIN_MAX, &n), 0);
	catalog_txn_abort(txn);
	cr_expect_eq(n, 4, "S4's data: S3's file, S2's, S1's, the base");
	cr_expect_eq(formats[3], IMAGE_FORMAT_RAW);
	object_clear(&s3);
	object_clear(&s4);

	/* again: nothing twice, nothing rewritten */
	vol_state(volume, before, sizeof(before));
	cr_expect_eq(reimport(), 0);
	vol_state(volume, after, sizeof(after));
	cr_expect_str_eq(after, before);
	cr_assert_eq(stat(fx_share_path(path, sizeof(path), "volume-" VA ".info"), &st1), 0);
	cr_expect_eq(st0.st_ino, st1.st_ino, ".info is never written by import");
	cr_expect_eq(st0.st_mtime, st1.st_mtime);
	free(names);
}

Test(import, reconcile_forgets_the_snapshots_cinder_deleted)
{
	char b[256];
	struct object vol, s3;
	uint64_t volume, ino;
	struct catalog_txn *txn;

	/* base, S1, S2 (no key: a hidden layer), S3 active */
	raw_file("volume-" VA, 64 * MB, 0x11);
	overlay(OV(VA, S1), "volume-" VA, IMAGE_FORMAT_RAW);
	overlay(OV(VA, S2), OV(VA, S1), IMAGE_FORMAT_QCOW2);
	overlay(OV(VA, S3), OV(VA, S2), IMAGE_FORMAT_QCOW2);
	write_info(VA, "{\"active\": \"" OV(VA, S3) "\", \"" S1 "\": \"" OV(
			       VA, S1) "\", \"" S3 "\": \"" OV(VA, S3) "\"}");
	cr_assert_eq(reimport(), 3);
	volume = lookup_path("cinder", VA, NULL);

	/* S1, under the hidden layer: the hidden layer moves onto the base */
	cinder_delete(VA, S1, OV(VA, S2));
	cr_expect_eq(reimport(), 0);
	cr_expect_eq(lookup_path("cinder", VA, S1), 0, "S1 is forgotten");
	cr_assert_eq(catalog_txn_begin(fx.fs->cat, false, &txn), 0);
	cr_expect_eq(catalog_id_lookup(txn, S1, &ino), -ENOENT, "and its id");
	catalog_txn_abort(txn);
	get_obj(volume, &vol);
	cr_expect(snapshot_hidden_get(&vol, OV(VA, S2), b, sizeof(b)));
	cr_expect_str_eq(b, "volume-" VA);
	cr_expect_str_eq(vol.file, OV(VA, S3));
	object_clear(&vol);
	get_obj(lookup_path("cinder", VA, S3), &s3);
	cr_expect_str_eq(s3.backing, OV(VA, S2));
	object_clear(&s3);

	/* S3, the active file: the hidden layer becomes the active file */
	cinder_delete(VA, S3, NULL);
	cr_expect_eq(reimport(), 0);
	cr_expect_eq(lookup_path("cinder", VA, S3), 0);
	get_obj(volume, &vol);
	cr_expect_str_eq(vol.file, OV(VA, S2));
	cr_expect(snapshot_hidden_get(&vol, OV(VA, S2), NULL, 0));
	object_clear(&vol);
	cr_expect_eq(reimport(), 0);
}

Test(import, reconcile_deletes_and_snapshots_at_once)
{
	struct object vol, s3;
	uint64_t volume;

	raw_file("volume-" VA, 64 * MB, 0x11);
	overlay(OV(VA, S1), "volume-" VA, IMAGE_FORMAT_RAW);
	overlay(OV(VA, S2), OV(VA, S1), IMAGE_FORMAT_QCOW2);
	overlay(OV(VA, S3), OV(VA, S2), IMAGE_FORMAT_QCOW2);
	write_info(VA, "{\"active\": \"" OV(VA, S3) "\", \"" S1 "\": \"" OV(
			       VA, S1) "\", \"" S2 "\": \"" OV(VA, S2) "\", \"" S3
								       "\": \"" OV(VA, S3) "\"}");
	cr_assert_eq(reimport(), 4);
	volume = lookup_path("cinder", VA, NULL);

	/* S2 merged away under S3, then S4 and S5 taken */
	cinder_delete(VA, S2, OV(VA, S3));
	cinder_snap(VA, S4);
	cinder_snap(VA, S5);
	cr_expect_eq(reimport(), 2);
	cr_expect_eq(lookup_path("cinder", VA, S2), 0);
	get_obj(lookup_path("cinder", VA, S3), &s3);
	cr_expect_str_eq(s3.backing, OV(VA, S1), "S3 sits on S1's file now");
	object_clear(&s3);
	get_obj(volume, &vol);
	cr_expect_str_eq(vol.file, OV(VA, S5));
	object_clear(&vol);
	cr_expect_neq(lookup_path("cinder", VA, S4), 0);
}

Test(import, reconcile_leaves_a_disagreeing_volume_alone)
{
	char before[4096], after[4096];
	const char *good = "{\"active\": \"" OV(VA, S2) "\", \"" S1 "\": \"" OV(
		VA, S1) "\", \"" S2 "\": \"" OV(VA, S2) "\"}";
	uint64_t volume, s1;
	int rc;

	cinder_share(); /* A: base, S1, S2 active; S3's file over S2's */
	cr_assert_eq(reimport(), 3);
	volume = lookup_path("cinder", VA, NULL);
	vol_state(volume, before, sizeof(before));

	/* a chain that does not extend the catalogue's: S4 over S1's file */
	overlay(OV(VA, S4), OV(VA, S1), IMAGE_FORMAT_QCOW2);
	info_edit(VA, OV(VA, S4), S4, OV(VA, S4));
	cr_expect_eq(reimport(), 0);
	vol_state(volume, after, sizeof(after));
	cr_expect_str_eq(after, before, "not on top");

	/* a new file inserted under a catalogued one: S2 rebased onto S4 */
	write_info(VA, good);
	info_edit(VA, NULL, S4, OV(VA, S4));
	cr_assert_eq(unlinkat(fx.fs->share->dirfd, OV(VA, S2), 0), 0);
	overlay(OV(VA, S2), OV(VA, S4), IMAGE_FORMAT_QCOW2);
	cr_expect_eq(reimport(), 0);
	vol_state(volume, after, sizeof(after));
	cr_expect_str_eq(after, before, "inserted below");
	cr_assert_eq(unlinkat(fx.fs->share->dirfd, OV(VA, S2), 0), 0);
	overlay(OV(VA, S2), OV(VA, S1), IMAGE_FORMAT_QCOW2);
	cr_assert_eq(unlinkat(fx.fs->share->dirfd, OV(VA, S4), 0), 0);

	/* a key gone while its file is still in the chain */
	write_info(VA, "{\"active\": \"" OV(VA, S2) "\", \"" S1 "\": \"" OV(VA, S1) "\"}");
	cr_expect_eq(reimport(), 0);
	vol_state(volume, after, sizeof(after));
	cr_expect_str_eq(after, before, "key missing");

	/* a snapshot dropped from .info whose file is still on the share */
	write_info(VA, "{\"active\": \"" OV(VA, S1) "\", \"" S1 "\": \"" OV(VA, S1) "\"}");
	cr_expect_eq(reimport(), 0);
	vol_state(volume, after, sizeof(after));
	cr_expect_str_eq(after, before, "file still there");

	/* a new key naming a file of the catalogue's chain */
	write_info(VA, "{\"active\": \"" OV(VA, S2) "\", \"" S1 "\": \"" OV(
			       VA, S1) "\", \"" S2 "\": \"" OV(VA, S2) "\", \"" S4
								       "\": \"" OV(VA, S1) "\"}");
	cr_expect_eq(reimport(), 0);
	vol_state(volume, after, sizeof(after));
	cr_expect_str_eq(after, before, "old file, new key");

	/* a new layer that fails validation: the external data file bit */
	write_info(VA, good);
	cinder_snap(VA, S4);
	put_be64(OV(VA, S4), 72, QCOW2_INCOMPAT_DATA_FILE);
	cr_expect_eq(reimport(), 0);
	vol_state(volume, after, sizeof(after));
	cr_expect_str_eq(after, before, "hostile layer");
	put_be64(OV(VA, S4), 72, 0);

	/* the new snapshot's name is taken in the volume */
	s1 = lookup_path("cinder", VA, S1);
	rc = object_rename(fx.fs, &cred_root, s1, S4);
	cr_assert_eq(rc, 0, "%s", strerror(-rc));
	vol_state(volume, before, sizeof(before));
	cr_expect_eq(reimport(), 0);
	vol_state(volume, after, sizeof(after));
	cr_expect_str_eq(after, before, "name taken");
	cr_assert_eq(object_rename(fx.fs, &cred_root, s1, S1), 0);
	vol_state(volume, before, sizeof(before));

	/* a volume that is not available */
	{
		struct catalog_txn *txn;
		struct object vol;

		cr_assert_eq(catalog_txn_begin(fx.fs->cat, true, &txn), 0);
		cr_assert_eq(catalog_object_get(txn, volume, &vol), 0);
		snprintf(vol.status, sizeof(vol.status), "error");
		cr_assert_eq(catalog_object_update(txn, &vol), 0);
		cr_assert_eq(catalog_txn_commit(txn), 0);
		vol_state(volume, before, sizeof(before));
		cr_expect_eq(reimport(), 0);
		vol_state(volume, after, sizeof(after));
		cr_expect_str_eq(after, before, "busy");
		cr_assert_eq(catalog_txn_begin(fx.fs->cat, true, &txn), 0);
		snprintf(vol.status, sizeof(vol.status), "available");
		cr_assert_eq(catalog_object_update(txn, &vol), 0);
		cr_assert_eq(catalog_txn_commit(txn), 0);
		object_clear(&vol);
	}

	/* once it agrees, the same change is taken */
	cr_expect_eq(reimport(), 1);
	cr_expect_neq(lookup_path("cinder", VA, S4), 0);
}

static void set_op(uint64_t ino, const char *op)
{
	struct catalog_txn *txn;
	struct object o;

	cr_assert_eq(catalog_txn_begin(fx.fs->cat, true, &txn), 0);
	cr_assert_eq(catalog_object_get(txn, ino, &o), 0);
	snprintf(o.op, sizeof(o.op), "%s", op);
	cr_assert_eq(catalog_object_update(txn, &o), 0);
	cr_assert_eq(catalog_txn_commit(txn), 0);
	object_clear(&o);
}

Test(import, reconcile_and_group_snapshots)
{
	char vid[UUID_STR_LEN], c1[UUID_STR_LEN], before[4096], after[4096];
	uint64_t tenant, volume, group, cg, c1ino;
	struct object vol, o;
	int rc;

	/* a volume made by snapfs, in a group, with group snapshot c1 */
	cr_assert_eq(tenant_create(fx.fs, &cred_root, "T", 0755, &tenant), 0);
	rc = volume_create(fx.fs, &cred_root, tenant, "a", &volume);
	cr_assert_eq(rc, 0, "%s", strerror(-rc));
	cr_assert_eq(group_create(fx.fs, &cred_root, tenant, "G", &group), 0);
	cr_assert_eq(group_volumes_update(fx.fs, &cred_root, group, "a", true), 0);
	rc = group_snapshot_create(fx.fs, &cred_root, group, "c1", &cg);
	cr_assert_eq(rc, 0, "%s", strerror(-rc));
	get_obj(volume, &vol);
	snprintf(vid, sizeof(vid), "%s", vol.id);
	object_clear(&vol);
	c1ino = lookup_path("T", "a", "c1");
	get_obj(c1ino, &o);
	snprintf(c1, sizeof(c1), "%s", o.id);
	object_clear(&o);

	/* Cinder's snapshot over c1's overlay: c1 is not touched; any tenant */
	cinder_snap(vid, S4);
	cr_expect_eq(reimport(), 1);
	cr_expect_neq(lookup_path("T", "a", S4), 0);

	/* not while its group is busy */
	cinder_snap(vid, S5);
	set_op(group, "cgsnapshot");
	vol_state(volume, before, sizeof(before));
	cr_expect_eq(reimport(), 0);
	vol_state(volume, after, sizeof(after));
	cr_expect_str_eq(after, before, "group busy");
	set_op(group, "");
	cr_expect_eq(reimport(), 1);

	/* S4 merged away between c1 and S5: c1's record stays as it is */
	{
		char f[128];

		snprintf(f, sizeof(f), "volume-%s.%s", vid, S5);
		cinder_delete(vid, S4, f);
	}
	cr_expect_eq(reimport(), 0);
	cr_expect_eq(lookup_path("T", "a", S4), 0);
	get_obj(lookup_path("T", "a", S5), &o);
	cr_expect(strstr(o.backing, c1) != NULL, "S5 sits on c1's overlay: %s", o.backing);
	object_clear(&o);

	/* c1 merged away by Cinder: a group snapshot's member, left alone */
	{
		char f[128];

		snprintf(f, sizeof(f), "volume-%s.%s", vid, S5);
		cinder_delete(vid, c1, f);
	}
	vol_state(volume, before, sizeof(before));
	cr_expect_eq(reimport(), 0);
	vol_state(volume, after, sizeof(after));
	cr_expect_str_eq(after, before, "group snapshot member");
	cr_expect_eq(fx_obj_rc(c1ino), 0, "c1 is still there");
	get_obj(cg, &o);
	cr_expect_eq(json_array_size(o.members), 1);
	object_clear(&o);
}
