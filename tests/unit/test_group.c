/* test_group.c - unit tests of consistency groups without a mount:
 * membership (links, add/remove lists), group snapshots and their delete,
 * filling a group from a source, and the members arrays. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catalog.h"
#include "fixture.h"
#include "group.h"
#include "object.h"
#include "snapshot.h"
#include "tree.h"
#include "util.h"
#include "volume.h"

TestSuite(group, .init = fx_setup, .fini = fx_teardown, .timeout = 120);
TestSuite(members, .fini = test_leak_check);

static uint64_t tenant, vol_a, vol_b, vol_c, group;

static uint64_t mk_volume(const char *name)
{
	uint64_t ino = 0;
	int rc = volume_create(fx.fs, &cred_root, tenant, name, &ino);

	cr_assert_eq(rc, 0, "volume_create %s: %s", name, strerror(-rc));
	return ino;
}

/* A tenant with volumes a, b, c and an empty group G. */
static void setup_group(void)
{
	int rc = tenant_create(fx.fs, &cred_root, "T", 0755, &tenant);

	cr_assert_eq(rc, 0);
	vol_a = mk_volume("a");
	vol_b = mk_volume("b");
	vol_c = mk_volume("c");
	rc = group_create(fx.fs, &cred_root, tenant, "G", &group);
	cr_assert_eq(rc, 0, "group_create: %s", strerror(-rc));
}

static void set_status(uint64_t ino, const char *status)
{
	struct catalog_txn *txn;
	struct object o;

	cr_assert_eq(catalog_txn_begin(fx.fs->cat, true, &txn), 0);
	cr_assert_eq(catalog_object_get(txn, ino, &o), 0);
	snprintf(o.status, sizeof(o.status), "%s", status);
	cr_assert_eq(catalog_object_update(txn, &o), 0);
	cr_assert_eq(catalog_txn_commit(txn), 0);
	object_clear(&o);
}

static size_t members_of(uint64_t ino)
{
	struct object o;
	size_t n;

	fx_get_obj(ino, &o);
	n = json_array_size(o.members);
	object_clear(&o);
	return n;
}

static void assert_link_id(uint64_t ino, const char *id)
{
	struct object o;

	fx_get_obj(ino, &o);
	cr_assert_str_eq(o.link_id, id, "link_id of %s", o.name);
	object_clear(&o);
}

static const char *group_id(char *buf)
{
	struct object o;

	fx_get_obj(group, &o);
	strcpy(buf, o.id);
	object_clear(&o);
	return buf;
}

/* Fill the start of volume ino's active file with byte. */
static void write_volume(uint64_t ino, int byte)
{
	char path[PATH_MAX + 300], buf[4096];
	struct object o;
	int fd;

	fx_get_obj(ino, &o);
	memset(buf, byte, sizeof(buf));
	fd = open(fx_share_path(path, sizeof(path), o.file), O_WRONLY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pwrite(fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	close(fd);
	object_clear(&o);
}

/* The first byte of volume ino's base file (raw volumes, no snapshots). */
static int first_byte(uint64_t ino)
{
	char path[PATH_MAX + 300];
	unsigned char c = 0;
	struct object o;
	int fd;

	fx_get_obj(ino, &o);
	fd = open(fx_share_path(path, sizeof(path), o.file), O_RDONLY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pread(fd, &c, 1, 0), 1);
	close(fd);
	object_clear(&o);
	return c;
}

Test(members, add_has_remove)
{
	json_t *m = NULL;

	cr_assert_eq(members_add(&m, 16), 0);
	cr_assert_eq(members_add(&m, 32), 0);
	cr_assert_eq(members_add(&m, 16), 0, "adding twice is a no-op");
	cr_assert_eq(json_array_size(m), 2);
	cr_assert(members_has(m, 32));
	members_remove(m, 16);
	cr_assert_not(members_has(m, 16));
	cr_assert_eq(json_array_size(m), 1);
	members_remove(m, 48); /* absent: nothing */
	cr_assert_eq(json_array_size(m), 1);
	json_decref(m);
}

Test(group, members_survive_the_catalogue)
{
	char id[UUID_STR_LEN];
	uint64_t ino;

	setup_group();
	cr_assert_eq(group_volume_link(fx.fs, &cred_root, group, "a", "../../../volumes/a", &ino),
		     0);
	cr_assert_eq(ino, vol_a);
	fx_reopen();
	cr_assert_eq(members_of(group), 1);
	assert_link_id(vol_a, group_id(id));
}

Test(group, link_targets)
{
	uint64_t ino, other;
	char id[UUID_STR_LEN];

	setup_group();
	group_id(id);
	cr_assert_eq(group_volume_link(fx.fs, &cred_root, group, "a", "../../../volumes/a/", &ino),
		     0);
	cr_assert_eq(group_volume_link(fx.fs, &cred_root, group, "a", "../../../volumes/a", &ino),
		     -EEXIST);
	cr_assert_eq(group_volume_link(fx.fs, &cred_root, group, "b", "../../../volumes/c", &ino),
		     -EINVAL, "the link is named after its volume");
	cr_assert_eq(group_volume_link(fx.fs, &cred_root, group, "x", "../../../volumes/x", &ino),
		     -EINVAL, "no such volume");
	cr_assert_eq(group_volume_link(fx.fs, &cred_root, group, "b", "/mnt/tenants/T/volumes/b",
				       &ino),
		     -EINVAL);
	cr_assert_eq(group_volume_link(fx.fs, &cred_root, group, "b",
				       "../../../../U/volumes/b", &ino),
		     -EINVAL, "another tenant");
	cr_assert_eq(group_volume_link(fx.fs, &cred_root, group, "b",
				       "../../../../../../../../b", &ino),
		     -EINVAL);
	cr_assert_eq(group_volume_link(fx.fs, &cred_root, group, "b",
				       ".././../../volumes/./b", &ino),
		     0, "any spelling that resolves to the volume");
	set_status(vol_c, "error");
	cr_assert_eq(group_volume_link(fx.fs, &cred_root, group, "c", "../../../volumes/c", &ino),
		     -EBUSY);
	set_status(vol_c, "available");
	cr_assert_eq(group_create(fx.fs, &cred_root, tenant, "H", &other), 0);
	cr_assert_eq(group_volume_link(fx.fs, &cred_root, other, "a", "../../../volumes/a", &ino),
		     -EINVAL, "a volume is in one group at most");
	cr_assert_eq(members_of(group), 2);
	assert_link_id(vol_c, "");
	cr_assert_eq(group_volume_unlink(fx.fs, &cred_root, group, "c"), -ENOENT);
	cr_assert_eq(group_volume_unlink(fx.fs, &cred_root, group, "a"), 0);
	assert_link_id(vol_a, "");
	assert_link_id(vol_b, id);
	cr_assert_eq(members_of(group), 1);
}

Test(group, add_remove_all_or_nothing)
{
	char id[UUID_STR_LEN];

	setup_group();
	group_id(id);
	cr_assert_eq(group_volumes_update(fx.fs, &cred_root, group, "a,nosuch", true), -EINVAL);
	cr_assert_eq(members_of(group), 0, "nothing added when one name is bad");
	assert_link_id(vol_a, "");
	cr_assert_eq(group_volumes_update(fx.fs, &cred_root, group, " a , b ", true), 0);
	cr_assert_eq(members_of(group), 2);
	cr_assert_eq(group_volumes_update(fx.fs, &cred_root, group, "c,a", true), -EINVAL,
		     "a is a member already");
	assert_link_id(vol_c, "");
	cr_assert_eq(group_volumes_update(fx.fs, &cred_root, group, ",", true), -EINVAL);
	cr_assert_eq(group_volumes_update(fx.fs, &cred_root, group, "a,c", false), -EINVAL,
		     "c is no member");
	assert_link_id(vol_a, id);
	cr_assert_eq(group_volumes_update(fx.fs, &cred_root, group, "a,b", false), 0);
	cr_assert_eq(members_of(group), 0);
	assert_link_id(vol_b, "");
}

Test(group, delete_needs_empty)
{
	uint64_t ino;

	setup_group();
	cr_assert_eq(group_volumes_update(fx.fs, &cred_root, group, "a", true), 0);
	cr_assert_eq(group_delete(fx.fs, &cred_root, group), -ENOTEMPTY);
	cr_assert_eq(volume_delete(fx.fs, &cred_root, vol_a, false), -EBUSY,
		     "a member volume stays until it leaves");
	cr_assert_eq(group_snapshot_create(fx.fs, &cred_root, group, "C", &ino), 0);
	cr_assert_eq(group_volumes_update(fx.fs, &cred_root, group, "a", false), 0);
	cr_assert_eq(group_delete(fx.fs, &cred_root, group), -ENOTEMPTY, "a group snapshot");
	cr_assert_eq(group_snapshot_delete(fx.fs, &cred_root, ino, false), 0);
	cr_assert_eq(group_delete(fx.fs, &cred_root, group), 0);
	cr_assert_eq(fx_obj_rc(group), -ENOENT);
}

Test(group, snapshot_of_every_member)
{
	uint64_t cg, snap;
	struct object o, s;
	char link[256];
	int rc;

	setup_group();
	cr_assert_eq(group_volumes_update(fx.fs, &cred_root, group, "a,b", true), 0);
	rc = group_snapshot_create(fx.fs, &cred_root, group, "C", &cg);
	cr_assert_eq(rc, 0, "group_snapshot_create: %s", strerror(-rc));
	fx_get_obj(cg, &o);
	cr_assert_str_eq(o.status, "available");
	cr_assert_str_eq(o.op, "");
	cr_assert_eq(json_array_size(o.members), 2);
	for (size_t i = 0; i < 2; i++) {
		snap = (uint64_t)json_integer_value(json_array_get(o.members, i));
		fx_get_obj(snap, &s);
		cr_assert_str_eq(s.name, "C");
		cr_assert_str_eq(s.status, "available");
		cr_assert_str_eq(s.link_id, o.id);
		cr_assert_eq(snapshot_delete(fx.fs, &cred_root, snap, false), -EBUSY,
			     "a member is not deleted alone");
		cr_assert_eq(snapshot_delete(fx.fs, &cred_root, snap, true), -EBUSY);
		cr_assert_eq(tree_readlink(fx.fs, snap | SLOT_MEMBER_LINK, link, sizeof(link)), 0);
		cr_assert_str_eq(link, i ? "../../../../volumes/b/snapshots/C"
					 : "../../../../volumes/a/snapshots/C");
		object_clear(&s);
	}
	object_clear(&o);
	/* 3 base files, 2 overlays, 2 .info */
	cr_assert_eq(fx_share_count(), 7);
	cr_assert_eq(group_snapshot_create(fx.fs, &cred_root, group, "C", &cg), -EEXIST);
	cr_assert_eq(fx_share_count(), 7, "nothing left by a refused group snapshot");
	cr_assert_eq(group_snapshot_delete(fx.fs, &cred_other, cg, true), -EPERM);
	set_status(cg, "creating");
	cr_assert_eq(group_snapshot_delete(fx.fs, &cred_root, cg, false), -EBUSY);
	cr_assert_eq(group_snapshot_delete(fx.fs, &cred_root, cg, true), 0);
	cr_assert_eq(fx_obj_rc(cg), -ENOENT);
	cr_assert_eq(fx_share_count(), 5, "overlays merged, .info kept");
}

Test(group, snapshot_refused_when_a_member_is_busy)
{
	uint64_t cg;

	setup_group();
	cr_assert_eq(group_volumes_update(fx.fs, &cred_root, group, "a,b,c", true), 0);
	set_status(vol_c, "error");
	cr_assert_eq(group_snapshot_create(fx.fs, &cred_root, group, "C", &cg), -EBUSY);
	cr_assert_eq(fx_share_count(), 3, "no overlay, no .info");
	cr_assert_eq(members_of(group), 3);
	set_status(vol_c, "available");
	cr_assert_eq(group_snapshot_create(fx.fs, &cred_root, group, "C", &cg), 0);
}

Test(group, fill_from_a_group_snapshot)
{
	uint64_t cg, h, copy;
	struct catalog_txn *txn;
	struct object o;

	setup_group();
	write_volume(vol_a, 0x11);
	write_volume(vol_b, 0x22);
	cr_assert_eq(group_volumes_update(fx.fs, &cred_root, group, "a,b", true), 0);
	cr_assert_eq(group_snapshot_create(fx.fs, &cred_root, group, "C", &cg), 0);
	cr_assert_eq(group_create(fx.fs, &cred_root, tenant, "H", &h), 0);
	cr_assert_eq(group_fill(fx.fs, &cred_root, h, "consistencygroups/G/cgsnapshots/nope"),
		     -EINVAL);
	cr_assert_eq(group_fill(fx.fs, &cred_root, h, "volumes/a"), -EINVAL);
	cr_assert_eq(group_fill(fx.fs, &cred_root, h, "consistencygroups/G/cgsnapshots/C"), 0);
	cr_assert_eq(members_of(h), 2);
	cr_assert_eq(group_fill(fx.fs, &cred_root, h, "consistencygroups/G"), -ENOTEMPTY);
	cr_assert_eq(catalog_txn_begin(fx.fs->cat, false, &txn), 0);
	cr_assert_eq(catalog_child_lookup(txn, tenant, OBJ_VOLUME, "H-b", &copy), 0);
	catalog_txn_abort(txn);
	fx_get_obj(copy, &o);
	cr_assert_str_eq(o.status, "available");
	cr_assert_str_eq(o.op, "");
	cr_assert_eq(o.progress, 100);
	object_clear(&o);
	cr_assert_eq(first_byte(copy), 0x22);
	fx_get_obj(vol_a, &o);
	cr_assert_str_eq(o.op, "");
	object_clear(&o);
}

Test(group, fill_refuses_busy_sources_and_taken_names)
{
	uint64_t h, ino;
	int before;

	setup_group();
	cr_assert_eq(group_volumes_update(fx.fs, &cred_root, group, "a,b", true), 0);
	cr_assert_eq(group_create(fx.fs, &cred_root, tenant, "H", &h), 0);
	set_status(vol_b, "error");
	before = fx_share_count();
	cr_assert_eq(group_fill(fx.fs, &cred_root, h, "consistencygroups/G"), -EBUSY);
	set_status(vol_b, "available");
	cr_assert_eq(volume_create(fx.fs, &cred_root, tenant, "H-b", &ino), 0);
	cr_assert_eq(group_fill(fx.fs, &cred_root, h, "consistencygroups/G"), -EEXIST);
	cr_assert_eq(fx_share_count(), before + 1, "only H-b's own file is new");
	cr_assert_eq(members_of(h), 0);
}
