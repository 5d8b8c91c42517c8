/* test_quota.c - unit tests of tenant quotas without a mount: parsing of
 * limits, the usage counted from the catalogue (volumes, snapshots, group
 * snapshots' members, extends under way, no_snapshot_gb_quota), each limit
 * at its boundary with nothing left behind by a refusal, limits below the
 * use, who may set them, and limits across a remount. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "fixture.h"
#include "group.h"
#include "object.h"
#include "quota.h"
#include "snapshot.h"
#include "util.h"
#include "volume.h"

TestSuite(quota, .init = fx_setup, .fini = fx_teardown, .timeout = 120);
TestSuite(quota_parse, .fini = test_leak_check);

static uint64_t tenant;

static void mk_tenant(const char *name, uint64_t *ino)
{
	int rc = tenant_create(fx.fs, &cred_root, name, 0755, ino);

	cr_assert_eq(rc, 0, "tenant_create %s: %s", name, strerror(-rc));
}

static uint64_t mk_volume_in(uint64_t t, const char *name)
{
	uint64_t ino = 0;
	int rc = volume_create(fx.fs, &cred_root, t, name, &ino);

	cr_assert_eq(rc, 0, "volume_create %s: %s", name, strerror(-rc));
	return ino;
}

static uint64_t mk_snapshot(uint64_t vol, const char *name)
{
	uint64_t ino = 0;
	int rc = snapshot_create(fx.fs, &cred_root, vol, name, &ino);

	cr_assert_eq(rc, 0, "snapshot_create %s: %s", name, strerror(-rc));
	return ino;
}

/* The use of tenant t as the catalogue says now. */
static void usage_of(uint64_t t, bool snapshot_gb, int64_t use[QUOTA_RESOURCES])
{
	struct catalog_txn *txn;
	int rc = catalog_txn_begin(fx.fs->cat, false, &txn);

	cr_assert_eq(rc, 0);
	rc = quota_usage_count(txn, t, snapshot_gb, use);
	catalog_txn_abort(txn);
	cr_assert_eq(rc, 0, "quota_usage_count: %s", strerror(-rc));
}

static void expect_usage(uint64_t t, int64_t volumes, int64_t snapshots, int64_t gigabytes)
{
	int64_t use[QUOTA_RESOURCES];

	usage_of(t, true, use);
	cr_expect_eq(use[QUOTA_VOLUMES], volumes, "volumes in use %" PRId64 ", expected %" PRId64,
		     use[QUOTA_VOLUMES], volumes);
	cr_expect_eq(use[QUOTA_SNAPSHOTS], snapshots,
		     "snapshots in use %" PRId64 ", expected %" PRId64, use[QUOTA_SNAPSHOTS],
		     snapshots);
	cr_expect_eq(use[QUOTA_GIGABYTES], gigabytes,
		     "gigabytes in use %" PRId64 ", expected %" PRId64, use[QUOTA_GIGABYTES],
		     gigabytes);
}

static void set_limit(uint64_t t, enum quota_resource r, const char *value)
{
	int rc = quota_set(fx.fs, &cred_root, t, r, value, false);

	cr_assert_eq(rc, 0, "quota_set %s=%s: %s", quota_resource_name(r), value, strerror(-rc));
}

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	cr_assert_not_null(d, "opendir %s", dir);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static int count_one(const char *name, uint64_t ino, void *arg)
{
	(*(int *)arg)++;
	return 0;
}

/* How many children of kind parent has in the catalogue. */
static int n_children(uint64_t parent, enum object_kind kind)
{
	struct catalog_txn *txn;
	int n = 0;

	cr_assert_eq(catalog_txn_begin(fx.fs->cat, false, &txn), 0);
	cr_assert_eq(catalog_children_foreach(txn, parent, kind, count_one, &n), 0);
	catalog_txn_abort(txn);
	return n;
}

static uint64_t child(uint64_t parent, enum object_kind kind, const char *name)
{
	struct catalog_txn *txn;
	uint64_t ino = 0;

	cr_assert_eq(catalog_txn_begin(fx.fs->cat, false, &txn), 0);
	cr_assert_eq(catalog_child_lookup(txn, parent, kind, name, &ino), 0, "no %s", name);
	catalog_txn_abort(txn);
	return ino;
}

Test(quota_parse, limits)
{
	static const char *const good[] = {"-1", "0", "1", "10", "2147483647"};
	static const int64_t good_v[] = {-1, 0, 1, 10, 2147483647};
	static const char *const bad[] = {"",	"-2",  "01",  "+1",	    "1G",  " 1",
					  "1 ", "1.0", "--1", "2147483648", "abc", "-0"};
	int64_t v;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		cr_expect_eq(quota_limit_parse(good[i], &v), 0, "'%s' refused", good[i]);
		cr_expect_eq(v, good_v[i], "'%s' read as %" PRId64, good[i], v);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(quota_limit_parse(bad[i], &v), -EINVAL, "'%s' accepted", bad[i]);
}

Test(quota_parse, resources)
{
	enum quota_resource r;

	for (int i = 0; i < QUOTA_RESOURCES; i++) {
		cr_expect_eq(quota_resource_parse(quota_resource_name((enum quota_resource)i), &r),
			     0);
		cr_expect_eq((int)r, i);
	}
	cr_expect_eq(quota_resource_parse("backups", &r), -EINVAL);
	cr_expect_eq(quota_resource_parse("", &r), -EINVAL);
}

Test(quota, unset_is_unlimited_and_nothing_in_use)
{
	struct object t;

	mk_tenant("T", &tenant);
	fx_get_obj(tenant, &t);
	for (int r = 0; r < QUOTA_RESOURCES; r++)
		cr_expect_eq(t.quota[r], -1);
	object_clear(&t);
	expect_usage(tenant, 0, 0, 0);
}

Test(quota, usage_counts_volumes_snapshots_and_their_sizes)
{
	uint64_t other, a, b;
	int64_t use[QUOTA_RESOURCES];

	mk_tenant("T", &tenant);
	mk_tenant("U", &other);
	a = mk_volume_in(tenant, "a");
	b = mk_volume_in(tenant, "b");
	mk_volume_in(other, "x"); /* another tenant's: not counted */
	cr_assert_eq(volume_extend(fx.fs, &cred_root, b, 3 * GIB), 0);
	mk_snapshot(a, "s1");
	mk_snapshot(a, "s2");
	/* volumes a (1) + b (3), snapshots s1, s2 of a (1 each) */
	expect_usage(tenant, 2, 2, 6);
	usage_of(tenant, false, use); /* no_snapshot_gb_quota */
	cr_expect_eq(use[QUOTA_GIGABYTES], 4);
	cr_expect_eq(use[QUOTA_SNAPSHOTS], 2);
	expect_usage(other, 1, 0, 1);
}

static int set_extend_op(struct catalog_txn *txn, struct object *o, void *arg)
{
	snprintf(o->op, sizeof(o->op), "extend");
	snprintf(o->op_arg, sizeof(o->op_arg), "%" PRIu64, *(const uint64_t *)arg);
	snprintf(o->status, sizeof(o->status), "extending");
	return 0;
}

Test(quota, an_extend_under_way_counts_its_new_size)
{
	uint64_t v, target = 5 * GIB;

	mk_tenant("T", &tenant);
	v = mk_volume_in(tenant, "v");
	cr_assert_eq(object_modify(fx.fs, v, set_extend_op, &target), 0);
	expect_usage(tenant, 1, 0, 5);
	/* recovery finishes it: the size is then the record's own */
	fx_reopen();
	expect_usage(tenant, 1, 0, 5);
	{
		struct object o;

		fx_get_obj(v, &o);
		cr_expect_eq(o.size, 5 * GIB);
		cr_expect_str_empty(o.op);
		object_clear(&o);
	}
}

Test(quota, volumes_limit_at_its_boundary)
{
	uint64_t ino = 0;

	mk_tenant("T", &tenant);
	set_limit(tenant, QUOTA_VOLUMES, "2");
	mk_volume_in(tenant, "a");
	mk_volume_in(tenant, "b");
	cr_expect_eq(volume_create(fx.fs, &cred_root, tenant, "c", &ino), -EDQUOT);
	cr_expect_eq(n_children(tenant, OBJ_VOLUME), 2, "no record of c");
	cr_expect_eq(count_entries(fx.share), 2, "only a's and b's files on the share");
	expect_usage(tenant, 2, 0, 2);
	/* a delete releases */
	cr_assert_eq(volume_delete(fx.fs, &cred_root, child(tenant, OBJ_VOLUME, "a"), false), 0);
	expect_usage(tenant, 1, 0, 1);
	cr_expect_eq(volume_create(fx.fs, &cred_root, tenant, "c", &ino), 0);
	expect_usage(tenant, 2, 0, 2);
}

Test(quota, snapshots_limit_at_its_boundary)
{
	uint64_t v, s1, ino;

	mk_tenant("T", &tenant);
	v = mk_volume_in(tenant, "v");
	set_limit(tenant, QUOTA_SNAPSHOTS, "2");
	s1 = mk_snapshot(v, "s1");
	mk_snapshot(v, "s2");
	cr_expect_eq(snapshot_create(fx.fs, &cred_root, v, "s3", &ino), -EDQUOT);
	cr_expect_eq(n_children(v, OBJ_SNAPSHOT), 2, "no record of s3");
	cr_expect_eq(count_entries(fx.share), 4, "base, two overlays, .info");
	{
		struct object vol;

		fx_get_obj(v, &vol);
		cr_expect_str_empty(vol.op, "the volume is left idle");
		cr_expect_str_eq(vol.status, "available");
		object_clear(&vol);
	}
	expect_usage(tenant, 1, 2, 3);
	cr_assert_eq(snapshot_delete(fx.fs, &cred_root, s1, false), 0);
	expect_usage(tenant, 1, 1, 2);
	mk_snapshot(v, "s3");
}

Test(quota, gigabytes_limit_counts_volumes_snapshots_and_extends)
{
	uint64_t a, b, ino;

	mk_tenant("T", &tenant);
	a = mk_volume_in(tenant, "a");
	b = mk_volume_in(tenant, "b");
	set_limit(tenant, QUOTA_GIGABYTES, "4");
	cr_expect_eq(volume_extend(fx.fs, &cred_root, b, 3 * GIB), 0); /* 1 + 3 */
	cr_expect_eq(volume_extend(fx.fs, &cred_root, a, 2 * GIB), -EDQUOT);
	{
		struct object o;

		fx_get_obj(a, &o);
		cr_expect_eq(o.size, GIB, "a refused extend leaves the size");
		cr_expect_str_eq(o.status, "available");
		cr_expect_str_empty(o.op);
		object_clear(&o);
	}
	cr_expect_eq(snapshot_create(fx.fs, &cred_root, a, "s", &ino), -EDQUOT,
		     "a snapshot's size counts in gigabytes");
	cr_expect_eq(volume_create(fx.fs, &cred_root, tenant, "c", &ino), -EDQUOT);
	expect_usage(tenant, 2, 0, 4);
	set_limit(tenant, QUOTA_GIGABYTES, "5");
	mk_snapshot(a, "s");
	expect_usage(tenant, 2, 1, 5);
}

Test(quota, no_snapshot_gb_quota_leaves_snapshots_out_of_gigabytes)
{
	uint64_t a;

	fx.opts.no_snapshot_gb = true; /* fx.fs->opts is &fx.opts */
	mk_tenant("T", &tenant);
	a = mk_volume_in(tenant, "a");
	set_limit(tenant, QUOTA_GIGABYTES, "1");
	mk_snapshot(a, "s1");
	mk_snapshot(a, "s2");
	expect_usage(tenant, 1, 2, 3); /* as counted with snapshots */
}

Test(quota, group_snapshot_counts_each_member_all_or_nothing)
{
	uint64_t g, cg = 0, vols[3];
	const char *names[] = {"a", "b", "c"};
	int files;

	mk_tenant("T", &tenant);
	for (int i = 0; i < 3; i++)
		vols[i] = mk_volume_in(tenant, names[i]);
	cr_assert_eq(group_create(fx.fs, &cred_root, tenant, "G", &g), 0);
	cr_assert_eq(group_volumes_update(fx.fs, &cred_root, g, "a,b,c", true), 0);
	mk_snapshot(vols[0], "before");
	set_limit(tenant, QUOTA_SNAPSHOTS, "3");
	files = count_entries(fx.share);
	cr_expect_eq(group_snapshot_create(fx.fs, &cred_root, g, "c1", &cg), -EDQUOT);
	cr_expect_eq(n_children(g, OBJ_CGSNAPSHOT), 0, "no group snapshot record");
	for (int i = 0; i < 3; i++)
		cr_expect_eq(n_children(vols[i], OBJ_SNAPSHOT), i == 0, "no member snapshot of %s",
			     names[i]);
	cr_expect_eq(count_entries(fx.share), files, "no new file on the share");
	expect_usage(tenant, 3, 1, 4);
	set_limit(tenant, QUOTA_SNAPSHOTS, "4");
	cr_expect_eq(group_snapshot_create(fx.fs, &cred_root, g, "c1", &cg), 0);
	expect_usage(tenant, 3, 4, 7);
	cr_expect_eq(group_snapshot_delete(fx.fs, &cred_root, cg, false), 0);
	expect_usage(tenant, 3, 1, 4);
}

Test(quota, group_fill_counts_every_new_volume)
{
	uint64_t g1, g2;

	mk_tenant("T", &tenant);
	mk_volume_in(tenant, "a");
	mk_volume_in(tenant, "b");
	cr_assert_eq(group_create(fx.fs, &cred_root, tenant, "G1", &g1), 0);
	cr_assert_eq(group_volumes_update(fx.fs, &cred_root, g1, "a,b", true), 0);
	cr_assert_eq(group_create(fx.fs, &cred_root, tenant, "G2", &g2), 0);
	set_limit(tenant, QUOTA_VOLUMES, "3");
	cr_expect_eq(group_fill(fx.fs, &cred_root, g2, "consistencygroups/G1"), -EDQUOT);
	cr_expect_eq(n_children(tenant, OBJ_VOLUME), 2);
	cr_expect_eq(count_entries(fx.share), 2);
	set_limit(tenant, QUOTA_VOLUMES, "4");
	cr_expect_eq(group_fill(fx.fs, &cred_root, g2, "consistencygroups/G1"), 0);
	expect_usage(tenant, 4, 0, 4);
}

Test(quota, setting_limits)
{
	struct object t;

	mk_tenant("T", &tenant);
	mk_volume_in(tenant, "a");
	mk_volume_in(tenant, "b");
	cr_expect_eq(quota_set(fx.fs, &cred_user, tenant, QUOTA_VOLUMES, "5", false), -EPERM);
	cr_expect_eq(quota_set(fx.fs, &cred_user, tenant, QUOTA_VOLUMES, NULL, true), -EPERM);
	cr_expect_eq(quota_set(fx.fs, &cred_group_admin, tenant, QUOTA_VOLUMES, "5", false), 0);
	cr_expect_eq(quota_set(fx.fs, &cred_root, tenant, QUOTA_VOLUMES, "x", false), -EINVAL);
	/* as Cinder's quota update: not below what is in use */
	cr_expect_eq(quota_set(fx.fs, &cred_root, tenant, QUOTA_VOLUMES, "1", false), -EINVAL);
	cr_expect_eq(quota_set(fx.fs, &cred_root, tenant, QUOTA_GIGABYTES, "1", false), -EINVAL);
	cr_expect_eq(quota_set(fx.fs, &cred_root, tenant, QUOTA_VOLUMES, "2", false), 0);
	cr_expect_eq(quota_set(fx.fs, &cred_root, tenant, QUOTA_SNAPSHOTS, "0", false), 0);
	fx_get_obj(tenant, &t);
	cr_expect_eq(t.quota[QUOTA_VOLUMES], 2);
	cr_expect_eq(t.quota[QUOTA_SNAPSHOTS], 0);
	cr_expect_eq(t.quota[QUOTA_GIGABYTES], -1);
	object_clear(&t);
	/* limits survive a remount */
	fx_reopen();
	fx_get_obj(tenant, &t);
	cr_expect_eq(t.quota[QUOTA_VOLUMES], 2);
	cr_expect_eq(t.quota[QUOTA_SNAPSHOTS], 0);
	object_clear(&t);
	cr_expect_eq(quota_set(fx.fs, &cred_root, tenant, QUOTA_VOLUMES, NULL, true), 0);
	fx_get_obj(tenant, &t);
	cr_expect_eq(t.quota[QUOTA_VOLUMES], -1);
	object_clear(&t);
}

static int force_limit(struct catalog_txn *txn, struct object *o, void *arg)
{
	o->quota[QUOTA_VOLUMES] = *(const int64_t *)arg;
	return 0;
}

Test(quota, a_limit_below_use_refuses_only_new_use_of_it)
{
	uint64_t a, ino;
	int64_t one = 1;

	mk_tenant("T", &tenant);
	a = mk_volume_in(tenant, "a");
	mk_volume_in(tenant, "b");
	/* what an import can leave: more volumes than the limit */
	cr_assert_eq(object_modify(fx.fs, tenant, force_limit, &one), 0);
	cr_expect_eq(volume_create(fx.fs, &cred_root, tenant, "c", &ino), -EDQUOT);
	mk_snapshot(a, "s"); /* snapshots and gigabytes are not limited */
	cr_expect_eq(volume_extend(fx.fs, &cred_root, child(tenant, OBJ_VOLUME, "b"), 2 * GIB), 0);
	expect_usage(tenant, 2, 1, 4);
}

Test(quota, check_before_and_after_the_records)
{
	struct catalog_txn *txn;
	int64_t add[QUOTA_RESOURCES] = {1, 0, 1};

	mk_tenant("T", &tenant);
	mk_volume_in(tenant, "a");
	set_limit(tenant, QUOTA_VOLUMES, "2");
	cr_assert_eq(catalog_txn_begin(fx.fs->cat, true, &txn), 0);
	/* not yet written: 1 in use + 1 fits in 2 */
	cr_expect_eq(quota_check(fx.fs, txn, tenant, add, false, "test"), 0);
	/* written already: the count (1) holds it, so 0 + 1 fits */
	cr_expect_eq(quota_check(fx.fs, txn, tenant, add, true, "test"), 0);
	add[QUOTA_VOLUMES] = 2;
	cr_expect_eq(quota_check(fx.fs, txn, tenant, add, false, "test"), -EDQUOT);
	add[QUOTA_VOLUMES] = 0; /* nothing asked of the limited resource */
	add[QUOTA_GIGABYTES] = 100;
	cr_expect_eq(quota_check(fx.fs, txn, tenant, add, false, "test"), 0);
	catalog_txn_abort(txn);
}
