/* test_changes.c - unit tests of changes/ without a mount: which snapshots
 * are older than which (snapshot_is_older(), snapshot_older_foreach()),
 * the tree's changes/ and changes.json/ entries (tree.c), and an open pair
 * (reader_changes_*()): its ranges, its hold on both snapshots, and what a
 * merge of a snapshot between them leaves. Volumes are written through
 * qemu-io, as a hypervisor writes them. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog.h"
#include "fixture.h"
#include "json.h"
#include "object.h"
#include "reader.h"
#include "snapshot.h"
#include "tree.h"
#include "volume.h"

TestSuite(changes, .init = fx_setup, .fini = fx_teardown, .timeout = 120);

static uint64_t tenant, vol, other, s1, s2, s3, o1;

/* qemu-io -c CMD on volume ino's active file. */
static void hv(uint64_t ino, const char *cmd)
{
	char path[PATH_MAX + 300], line[PATH_MAX + 600];
	struct object o;

	fx_get_obj(ino, &o);
	fx_share_path(path, sizeof(path), o.file);
	/* an overlay volume-<V>.<S> is qcow2; the base has the volume's format */
	snprintf(line, sizeof(line), "qemu-io -f %s -c '%s' '%s' >/dev/null",
		 strchr(o.file, '.') ? "qcow2" : o.format, cmd, path);
	object_clear(&o);
	cr_assert_eq(system(line), 0, "%s", line);
}

static uint64_t mk_snapshot(uint64_t v, const char *name)
{
	uint64_t ino = 0;
	int rc = snapshot_create(fx.fs, &cred_root, v, name, &ino);

	cr_assert_eq(rc, 0, "snapshot_create %s: %s", name, strerror(-rc));
	return ino;
}

/* Volume v: 1 MiB at 0 in the base; s1; 64 KiB at 1 MiB; s2; a zero write
 * of 128 KiB at 4 MiB; s3. Volume other: one snapshot o1. */
static void setup_chain(void)
{
	if (system("command -v qemu-io >/dev/null 2>&1") != 0)
		cr_skip_test("qemu-io not installed");
	cr_assert_eq(tenant_create(fx.fs, &cred_root, "T", 0755, &tenant), 0);
	cr_assert_eq(volume_create(fx.fs, &cred_root, tenant, "v", &vol), 0);
	cr_assert_eq(volume_create(fx.fs, &cred_root, tenant, "w", &other), 0);
	hv(vol, "write -P 0x11 0 1M");
	s1 = mk_snapshot(vol, "s1");
	hv(vol, "write -P 0x22 1M 64k");
	s2 = mk_snapshot(vol, "s2");
	hv(vol, "write -z 4M 128k");
	s3 = mk_snapshot(vol, "s3");
	o1 = mk_snapshot(other, "o1");
}

static int older_rc(uint64_t newer, uint64_t older)
{
	struct catalog_txn *txn;
	struct object n, o;
	int rc;

	cr_assert_eq(catalog_txn_begin(fx.fs->cat, false, &txn), 0);
	cr_assert_eq(catalog_object_get(txn, newer, &n), 0);
	cr_assert_eq(catalog_object_get(txn, older, &o), 0);
	rc = snapshot_is_older(txn, &n, &o);
	object_clear(&n);
	object_clear(&o);
	catalog_txn_abort(txn);
	return rc;
}

static int collect(const struct object *older, void *arg)
{
	char *out = arg;

	strcat(out, older->name);
	strcat(out, " ");
	return 0;
}

static void olders(uint64_t newer, char *out)
{
	struct catalog_txn *txn;
	struct object n;

	out[0] = '\0';
	cr_assert_eq(catalog_txn_begin(fx.fs->cat, false, &txn), 0);
	cr_assert_eq(catalog_object_get(txn, newer, &n), 0);
	cr_assert_eq(snapshot_older_foreach(txn, &n, collect, out), 0);
	object_clear(&n);
	catalog_txn_abort(txn);
}

Test(changes, older_is_earlier_in_the_chain)
{
	char buf[256];

	setup_chain();
	cr_expect_eq(older_rc(s3, s1), 0);
	cr_expect_eq(older_rc(s3, s2), 0);
	cr_expect_eq(older_rc(s2, s1), 0);
	cr_expect_eq(older_rc(s1, s3), -ENOENT, "a newer snapshot is not older");
	cr_expect_eq(older_rc(s2, s2), -ENOENT, "nor the snapshot itself");
	cr_expect_eq(older_rc(s3, o1), -ENOENT, "nor another volume's");
	olders(s3, buf);
	cr_expect_str_eq(buf, "s1 s2 ");
	olders(s2, buf);
	cr_expect_str_eq(buf, "s1 ");
	olders(s1, buf);
	cr_expect_str_eq(buf, "");
}

Test(changes, merged_snapshot_is_gone_older_stays)
{
	char buf[256];

	setup_chain();
	cr_assert_eq(snapshot_delete(fx.fs, &cred_root, s2, false), 0);
	olders(s3, buf);
	cr_expect_str_eq(buf, "s1 ");
	cr_expect_eq(older_rc(s3, s1), 0);
}

Test(changes, tree_entries)
{
	struct dir_listing *l;
	struct stat st;
	uint64_t f;

	setup_chain();
	f = tree_changes_ino(CHANGES_FILE, s3, s1);
	cr_assert_neq(f, 0);
	cr_assert_eq(tree_lookup(fx.fs, s3, "changes", &st), 0);
	cr_expect(S_ISDIR(st.st_mode));
	cr_expect_eq(st.st_mode & 0222, 0, "changes/ is writable: %o", st.st_mode);
	cr_assert_eq(tree_readdir(fx.fs, st.st_ino, &l), 0);
	cr_assert_eq(l->count, 4);
	cr_expect_str_eq(l->entries[2].name, "s1");
	cr_expect_eq(l->entries[2].ino, f);
	cr_expect_str_eq(l->entries[3].name, "s2");
	tree_listing_free(l);
	cr_assert_eq(tree_lookup(fx.fs, st.st_ino, "s1", &st), 0);
	cr_expect_eq(st.st_ino, f);
	cr_expect(S_ISREG(st.st_mode));
	cr_expect_eq(st.st_mode & 0222, 0);
	cr_expect_eq((uint64_t)st.st_size, 1ULL << 30, "changes/s1 has disk.raw's size");
	cr_expect_eq(tree_getattr(fx.fs, tree_changes_ino(CHANGES_FILE, s1, s3), &st), -ENOENT);
	cr_expect_eq(tree_getattr(fx.fs, tree_changes_ino(CHANGES_FILE, s3, o1), &st), -ENOENT);
	cr_expect_eq(tree_getattr(fx.fs, tree_changes_ino(CHANGES_JSON, s3, s2), &st), 0);
	cr_expect_eq(tree_getattr(fx.fs, tree_changes_ino(CHANGES_CG_DIR, s3, s2), &st), -ENOENT,
		     "snapshots make no group pair");
	cr_expect_eq(tree_lookup(fx.fs, s1 | 3, "s3", &st), -ENOENT);
	cr_expect_eq(tree_lookup(fx.fs, s1 | 3, "nope", &st), -ENOENT);
	cr_expect_eq(tree_lookup(fx.fs, s3 | 4, "s2", &st), 0);
	cr_expect_eq(st.st_ino, tree_changes_ino(CHANGES_JSON, s3, s2));
	cr_expect_eq(tree_changes_ino(CHANGES_FILE, (1ULL << 33) << 4, s1), 0, "sequence too large");
	cr_expect_eq(tree_changes_ino(CHANGES_FILE, 0, s1), 0);
}

Test(changes, open_pair_ranges_and_holds)
{
	struct reader_changes *rc;
	const struct chain_range *r;
	uint64_t bytes;
	size_t n, text_len;

	setup_chain();
	cr_assert_eq(reader_changes_open(fx.fs, s3, s1, &rc), 0);
	r = reader_changes_ranges(rc, &n, &bytes);
	/* 64 KiB at 1 MiB (after s1), 128 KiB of zeros at 4 MiB (after s2) */
	cr_assert_eq(n, 2);
	cr_expect_eq(r[0].start, 1 << 20);
	cr_expect_eq(r[0].len, 65536);
	cr_expect_eq(r[1].start, 4 << 20);
	cr_expect_eq(r[1].len, 131072);
	cr_expect_eq(bytes, 65536 + 131072);
	cr_expect_eq(reader_changes_allocated(fx.fs, s3, s1, &bytes, &text_len), 0);
	cr_expect_eq(bytes, 65536 + 131072);
	cr_expect_eq(text_len, 0);
	cr_expect_null(reader_changes_text(rc, &text_len));
	reader_changes_text_set(rc, strdup("[]\n"), 3);
	cr_expect_str_eq(reader_changes_text(rc, &text_len), "[]\n");
	cr_expect_eq(text_len, 3);
	cr_expect_eq(snapshot_delete(fx.fs, &cred_root, s1, false), -EBUSY, "older held");
	cr_expect_eq(snapshot_delete(fx.fs, &cred_root, s3, false), -EBUSY, "newer held");
	/* s2 is not held: its merge leaves the pair's ranges as they were */
	cr_expect_eq(snapshot_delete(fx.fs, &cred_root, s2, false), 0);
	reader_changes_release(fx.fs, rc);
	cr_expect_eq(reader_changes_allocated(fx.fs, s3, s1, &bytes, &text_len), -ENOENT);

	cr_assert_eq(reader_changes_open(fx.fs, s3, s1, &rc), 0);
	r = reader_changes_ranges(rc, &n, &bytes);
	cr_expect_eq(n, 2, "after the merge of s2");
	cr_expect_eq(bytes, 65536 + 131072);
	reader_changes_release(fx.fs, rc);

	cr_expect_eq(reader_changes_open(fx.fs, s1, s3, &rc), -EIO, "s3 is not in s1's chain");
	cr_expect_eq(reader_changes_open(fx.fs, s3, s3, &rc), -ENOENT);
	cr_expect_eq(snapshot_delete(fx.fs, &cred_root, s1, false), 0, "released");
	cr_expect_eq(snapshot_delete(fx.fs, &cred_root, s3, false), 0);
}

Test(changes, json_text)
{
	static const char expect[] =
		"[{ \"start\": 0, \"length\": 1048576, \"present\": false, \"zero\": false, "
		"\"data\": false},\n"
		"{ \"start\": 1048576, \"length\": 65536, \"depth\": 1, \"present\": true, "
		"\"zero\": false, \"data\": true},\n"
		"{ \"start\": 1114112, \"length\": 3080192, \"present\": false, \"zero\": false, "
		"\"data\": false},\n"
		"{ \"start\": 4194304, \"length\": 131072, \"depth\": 0, \"present\": true, "
		"\"zero\": true, \"data\": false},\n"
		"{ \"start\": 4325376, \"length\": 1069416448, \"present\": false, \"zero\": "
		"false, \"data\": false}]\n";
	struct reader_changes *rc;
	const struct chain_range *r;
	char *text;
	size_t n, len;

	setup_chain();
	cr_assert_eq(reader_changes_open(fx.fs, s3, s1, &rc), 0);
	r = reader_changes_ranges(rc, &n, NULL);
	cr_assert_eq(changes_json_text(reader_changes_chain(rc), r, n, &text, &len), 0);
	cr_expect_eq(len, strlen(text));
	cr_expect_str_eq(text, expect);
	free(text);
	/* nothing changed: one entry, not present */
	cr_assert_eq(changes_json_text(reader_changes_chain(rc), r, 0, &text, &len), 0);
	cr_expect_str_eq(text, "[{ \"start\": 0, \"length\": 1073741824, \"present\": false, "
			       "\"zero\": false, \"data\": false}]\n");
	free(text);
	reader_changes_release(fx.fs, rc);
}
