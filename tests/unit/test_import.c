/* test_import.c - unit tests of import's validation core without a mount:
 * share names, the checks of one file (symlinks, hostile headers, backing
 * names), chain resolution, import_share() (what it takes, what it skips,
 * idempotence, never a changed file), manageable files and their inode
 * numbers, and user.manage / user.unmanage on the catalogue and .info. */
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
#include "import.h"
#include "object.h"
#include "qcow2.h"
#include "share.h"
#include "snapshot.h"
#include "tree.h"
#include "util.h"

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
	int rc = qcow2_overlay_create(fx.fs->share.dirfd, name, backing, fmt, 0, 0644);

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

	return import_file_check(fx.fs->share.dirfd, name, &info, reason, len);
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
	cr_assert_eq(renameat(fx.fs->share.dirfd, "volume-" VA "." S3, fx.fs->share.dirfd,
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
	rc = import_chain_resolve(fx.fs->share.dirfd, VA, "volume-" VA "." S2, &c, reason,
				  sizeof(reason));
	cr_assert_eq(rc, 0, "%s", reason);
	cr_expect_eq(c.n, 3);
	cr_expect_str_eq(c.names[1], "volume-" VA "." S1);
	cr_expect_eq(c.formats[2], IMAGE_FORMAT_RAW);
	cr_expect_eq(c.sizes[0], 64 * MB);
	import_chain_free(&c);

	/* not the volume asked for */
	rc = import_chain_resolve(fx.fs->share.dirfd, VB, "volume-" VA "." S2, &c, reason,
				  sizeof(reason));
	cr_expect_eq(rc, -EINVAL);
	/* a chain that loops: S1 over S2 over S1 */
	unlinkat(fx.fs->share.dirfd, "volume-" VA "." S1, 0);
	overlay("volume-" VA "." S1, "volume-" VA "." S2, IMAGE_FORMAT_QCOW2);
	rc = import_chain_resolve(fx.fs->share.dirfd, VA, "volume-" VA "." S2, &c, reason,
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
	write_info(VA, "{\"active\": \"volume-" VA "." S2 "\", \"" S2 "\": \"volume-" VA "." S2
		       "\"}");
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
	cr_assert_eq(unlinkat(fx.fs->share.dirfd, "volume-" VB, 0), 0);
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
	char (*names)[256] = calloc(SNAPSHOT_CHAIN_MAX, sizeof(*names));
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
	cr_assert_eq(import_manageable_get(fx.fs, txn, import_manageable_ino("volume-" VA "." S3),
					   &m),
		     0);
	cr_expect(m.safe, "%s", m.reason);
	cr_expect_str_eq(m.cinder_id, S3);
	cr_expect_eq(m.size, 64 * MB);
	cr_assert_eq(import_manageable_get(fx.fs, txn, import_manageable_ino("volume-" VB "." S3),
					   &m),
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
	cr_assert_eq(share_info_read(&fx.fs->share, VA, &info), 0);
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
	cr_assert_eq(share_info_read(&fx.fs->share, VA, &info), 0);
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
	cr_assert_eq(import_manageable_get(fx.fs, txn, import_manageable_ino("volume-" VA "." S2),
					   &m),
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
