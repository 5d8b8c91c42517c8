/* test_tree.c - unit tests of the core without a mount: tenants, volumes,
 * the inode/path model, attributes, renames, owners and crash recovery. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "attr.h"
#include "catalog.h"
#include "fixture.h"
#include "json.h"
#include "object.h"
#include "tree.h"
#include "util.h"
#include "volume.h"

#define SLOT_VOLUMES 1
#define SLOT_GROUPS 2
#define SLOT_MANAGEABLE 3
#define SLOT_INFO 1
#define SLOT_SNAPSHOTS 2
#define SLOT_BYID 15

TestSuite(tree, .init = fx_setup, .fini = fx_teardown, .timeout = 60);
TestSuite(volume, .init = fx_setup, .fini = fx_teardown, .timeout = 60);
TestSuite(attr, .init = fx_setup, .fini = fx_teardown, .timeout = 60);
TestSuite(object, .init = fx_setup, .fini = fx_teardown, .timeout = 60);
TestSuite(recover, .init = fx_setup, .fini = fx_teardown, .timeout = 60);
/* Tests that set options of their own call fx_setup_with() first. */
TestSuite(options, .fini = fx_teardown, .timeout = 60);

/* Helpers */

static uint64_t mk_tenant(const struct cred *c, const char *name, mode_t mode)
{
	uint64_t ino = 0;
	int rc = tenant_create(fx.fs, c, name, mode, &ino);

	cr_assert_eq(rc, 0, "tenant_create %s: %s", name, strerror(-rc));
	return ino;
}

static uint64_t mk_volume(const struct cred *c, uint64_t tenant, const char *name)
{
	uint64_t ino = 0;
	int rc = volume_create(fx.fs, c, tenant, name, &ino);

	cr_assert_eq(rc, 0, "volume_create %s: %s", name, strerror(-rc));
	return ino;
}

static int id_lookup(const char *id, uint64_t *ino)
{
	struct catalog_txn *txn;
	int rc = catalog_txn_begin(fx.fs->cat, false, &txn);

	cr_assert_eq(rc, 0);
	rc = catalog_id_lookup(txn, id, ino);
	catalog_txn_abort(txn);
	return rc;
}

static void update_obj(const struct object *o)
{
	struct catalog_txn *txn;
	int rc = catalog_txn_begin(fx.fs->cat, true, &txn);

	cr_assert_eq(rc, 0);
	rc = catalog_object_update(txn, o);
	cr_assert_eq(rc, 0, "update: %s", strerror(-rc));
	cr_assert_eq(catalog_txn_commit(txn), 0);
}

/* An attribute as a NUL-terminated string, or NULL and *rc. */
static char *attr_str(uint64_t ino, const char *name, int *rcp)
{
	char *value = NULL, *s;
	size_t len = 0;
	int rc = attr_get(fx.fs, ino, name, &value, &len);

	if (rcp)
		*rcp = rc;
	if (rc)
		return NULL;
	s = malloc(len + 1);
	cr_assert_not_null(s);
	memcpy(s, value, len);
	s[len] = '\0';
	free(value);
	return s;
}

static void assert_attr(uint64_t ino, const char *name, const char *expected)
{
	int rc;
	char *v = attr_str(ino, name, &rc);

	cr_assert_eq(rc, 0, "get %s: %s", name, strerror(-rc));
	cr_assert_str_eq(v, expected, "%s", name);
	free(v);
}

static int attr_rc(uint64_t ino, const char *name)
{
	int rc;

	free(attr_str(ino, name, &rc));
	return rc;
}

static int attr_put(const struct cred *c, uint64_t ino, const char *name, const char *value,
		    int flags)
{
	return attr_set(fx.fs, c, ino, name, value, strlen(value), flags);
}

/* Attributes of name in directory parent, asserting it is there. */
static struct stat lookup_ok(uint64_t parent, const char *name)
{
	struct stat st;
	int rc = tree_lookup(fx.fs, parent, name, &st);

	cr_assert_eq(rc, 0, "lookup %s in %llu: %s", name, (unsigned long long)parent,
		     strerror(-rc));
	return st;
}

static int lookup_rc(uint64_t parent, const char *name)
{
	struct stat st;

	return tree_lookup(fx.fs, parent, name, &st);
}

/* The listing of ino is exactly ".", ".." and names, in that order. */
static void assert_listing(uint64_t ino, const char *const *names, size_t n)
{
	struct dir_listing *l = NULL;
	int rc = tree_readdir(fx.fs, ino, &l);

	cr_assert_eq(rc, 0, "readdir %llu: %s", (unsigned long long)ino, strerror(-rc));
	cr_assert_eq(l->count, n + 2, "readdir %llu: %zu entries, not %zu", (unsigned long long)ino,
		     l->count, n + 2);
	cr_assert_str_eq(l->entries[0].name, ".");
	cr_assert_eq(l->entries[0].ino, ino);
	cr_assert_eq(l->entries[0].type, S_IFDIR);
	cr_assert_str_eq(l->entries[1].name, "..");
	cr_assert_eq(l->entries[1].type, S_IFDIR);
	for (size_t i = 0; i < n; i++) {
		struct stat st = lookup_ok(ino, names[i]);

		cr_assert_str_eq(l->entries[i + 2].name, names[i], "entry %zu", i + 2);
		/* a listing agrees with lookup */
		cr_assert_eq(l->entries[i + 2].ino, st.st_ino, "ino of %s", names[i]);
		cr_assert_eq(l->entries[i + 2].type, st.st_mode & S_IFMT, "type of %s", names[i]);
	}
	tree_listing_free(l);
}

/* Size of a file on the share, or -1 when it does not exist. */
static long long share_size(const char *name)
{
	char path[PATH_MAX + 300];
	struct stat st;

	if (stat(fx_share_path(path, sizeof(path), name), &st) < 0)
		return -1;
	return (long long)st.st_size;
}

static json_t *parse_json(const char *text, size_t len)
{
	json_error_t err;
	json_t *j = json_loadb(text, len, 0, &err);

	cr_assert_not_null(j, "not JSON: %s: %.*s", err.text, (int)len, text);
	return j;
}

/* info.json of the object ino, parsed. */
static json_t *info_json(uint64_t obj_ino)
{
	char *text = NULL;
	size_t len = 0;
	json_t *j;
	int rc = tree_read_info(fx.fs, obj_ino | SLOT_INFO, &text, &len);

	cr_assert_eq(rc, 0, "info.json: %s", strerror(-rc));
	j = parse_json(text, len);
	free(text);
	return j;
}

static uint64_t be64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

/* Tenants */

Test(tree, tenant_create_as_root)
{
	int64_t before = time_now_usec();
	uint64_t t = mk_tenant(&cred_root, "acme", 0750);
	struct object o;
	struct stat st;

	cr_assert_eq(t % 16, 0);
	cr_assert_geq(t, 16);
	st = lookup_ok(INO_TENANTS, "acme");
	cr_assert_eq(st.st_ino, t);
	cr_assert_eq(st.st_mode, S_IFDIR | 0750);
	cr_assert_eq(st.st_uid, 0);
	cr_assert_eq(st.st_gid, 0);
	fx_get_obj(t, &o);
	cr_assert_eq(o.kind, OBJ_TENANT);
	cr_assert_str_eq(o.name, "acme");
	cr_assert_eq(o.parent, 0);
	cr_assert_eq(o.tenant, t, "a tenant belongs to itself");
	cr_assert(uuid_is_valid(o.id));
	cr_assert_geq(o.created_at, before);
	cr_assert_leq(o.created_at, time_now_usec());
	object_clear(&o);
	/* the mode keeps permission bits only */
	t = mk_tenant(&cred_root, "sticky", S_IFDIR | 03770);
	cr_assert_eq(lookup_ok(INO_TENANTS, "sticky").st_mode, S_IFDIR | 03770);
}

Test(tree, tenant_create_not_admin)
{
	uint64_t t = 0;

	cr_assert_eq(tenant_create(fx.fs, &cred_user, "acme", 0750, &t), -EPERM);
	cr_assert_eq(lookup_rc(INO_TENANTS, "acme"), -ENOENT);
	assert_listing(INO_TENANTS, NULL, 0);
}

Test(tree, tenant_create_admin_group)
{
	uint64_t t = mk_tenant(&cred_group_admin, "team", 0770);
	struct stat st = lookup_ok(INO_TENANTS, "team");

	cr_assert_eq(st.st_ino, t);
	/* owned by its creator */
	cr_assert_eq(st.st_uid, FX_USER_UID);
	cr_assert_eq(st.st_gid, FX_USER_GID);
}

static void no_admin_group(struct snapfs_options *o)
{
	fx_opt(&o->admin_group, NULL);
}

Test(options, no_admin_group)
{
	uint64_t t = 0;

	fx_setup_with(no_admin_group);
	cr_assert_eq(tenant_create(fx.fs, &cred_group_admin, "team", 0770, &t), -EPERM);
	cr_assert_eq(tenant_create(fx.fs, &cred_root, "team", 0770, &t), 0);
}

Test(tree, tenant_create_errors)
{
	char long_name[300];
	uint64_t t = 0;

	mk_tenant(&cred_root, "acme", 0750);
	cr_assert_eq(tenant_create(fx.fs, &cred_root, "acme", 0750, &t), -EEXIST);
	cr_assert_eq(tenant_create(fx.fs, &cred_root, "", 0750, &t), -EINVAL);
	cr_assert_eq(tenant_create(fx.fs, &cred_root, ".", 0750, &t), -EINVAL);
	cr_assert_eq(tenant_create(fx.fs, &cred_root, "..", 0750, &t), -EINVAL);
	cr_assert_eq(tenant_create(fx.fs, &cred_root, "a/b", 0750, &t), -EINVAL);
	cr_assert_eq(tenant_create(fx.fs, &cred_root, "a\nb", 0750, &t), -EINVAL);
	cr_assert_eq(tenant_create(fx.fs, &cred_root, "\xc3", 0750, &t), -EINVAL);
	memset(long_name, 'n', 256);
	long_name[256] = '\0';
	cr_assert_eq(tenant_create(fx.fs, &cred_root, long_name, 0750, &t), -ENAMETOOLONG);
	long_name[255] = '\0';
	cr_assert_eq(tenant_create(fx.fs, &cred_root, long_name, 0750, &t), 0);
	{
		const char *names[] = {"acme", long_name};

		assert_listing(INO_TENANTS, names, 2);
	}
}

Test(tree, tenant_delete)
{
	uint64_t t = mk_tenant(&cred_root, "acme", 0750);
	uint64_t v = mk_volume(&cred_root, t, "v");

	cr_assert_eq(tenant_delete(fx.fs, &cred_user, t), -EPERM);
	cr_assert_eq(tenant_delete(fx.fs, &cred_root, t), -ENOTEMPTY);
	cr_assert_eq(volume_delete(fx.fs, &cred_root, v, false), 0);
	cr_assert_eq(tenant_delete(fx.fs, &cred_group_admin, t), 0);
	cr_assert_eq(lookup_rc(INO_TENANTS, "acme"), -ENOENT);
	cr_assert_eq(fx_obj_rc(t), -ENOENT);
}

/* The fixed part of the tree */

Test(tree, top_directories)
{
	static const char *const root[] = {"tenants", "by-id"};
	struct stat st;

	cr_assert_eq(tree_getattr(fx.fs, INO_ROOT, &st), 0);
	cr_assert_eq(st.st_ino, 1);
	cr_assert_eq(st.st_mode & S_IFMT, S_IFDIR);
	cr_assert_geq(st.st_nlink, 2);
	st = lookup_ok(INO_ROOT, "tenants");
	cr_assert_eq(st.st_ino, 2);
	cr_assert_eq(st.st_mode & S_IFMT, S_IFDIR);
	st = lookup_ok(INO_ROOT, "by-id");
	cr_assert_eq(st.st_ino, 3);
	cr_assert_eq(st.st_mode & S_IFMT, S_IFDIR);
	cr_assert_eq(st.st_mode & 0222, 0, "by-id/ is read-only");
	cr_assert_eq(lookup_rc(INO_ROOT, "nope"), -ENOENT);
	cr_assert_eq(lookup_rc(INO_ROOT, "volumes"), -ENOENT);
	cr_assert_eq(tree_getattr(fx.fs, 4, &st), -ENOENT);
	cr_assert_eq(tree_getattr(fx.fs, 0, &st), -ENOENT);
	assert_listing(INO_ROOT, root, 2);
	assert_listing(INO_TENANTS, NULL, 0);
	assert_listing(INO_BYID, NULL, 0);
}

Test(tree, tenant_fixed_directories)
{
	static const char *const fixed[] = {"volumes", "consistencygroups", "manageable"};
	static const unsigned slots[] = {SLOT_VOLUMES, SLOT_GROUPS, SLOT_MANAGEABLE};
	uint64_t t = mk_tenant(&cred_group_admin, "team", 02770);
	struct stat st;

	assert_listing(t, fixed, 3);
	for (int i = 0; i < 3; i++) {
		st = lookup_ok(t, fixed[i]);
		cr_assert_eq(st.st_ino, t | slots[i], "%s", fixed[i]);
		cr_assert_eq(st.st_mode, S_IFDIR | 02770, "%s: mode %o", fixed[i], st.st_mode);
		cr_assert_eq(st.st_uid, FX_USER_UID, "%s", fixed[i]);
		cr_assert_eq(st.st_gid, FX_USER_GID, "%s", fixed[i]);
		cr_assert_eq(tree_getattr(fx.fs, t | slots[i], &st), 0);
		cr_assert_eq(st.st_mode, S_IFDIR | 02770);
	}
	cr_assert_eq(lookup_rc(t, "snapshots"), -ENOENT);
	cr_assert_eq(lookup_rc(t, "info.json"), -ENOENT);
	assert_listing(t | SLOT_VOLUMES, NULL, 0);
	assert_listing(t | SLOT_GROUPS, NULL, 0);
}

Test(tree, volume_entries)
{
	static const char *const inside[] = {"info.json", "snapshots"};
	uint64_t t = mk_tenant(&cred_group_admin, "team", 02770);
	uint64_t v = mk_volume(&cred_other, t | SLOT_VOLUMES, "data");
	struct stat st;
	struct object o;
	char *text = NULL;
	size_t len = 0;

	st = lookup_ok(t | SLOT_VOLUMES, "data");
	cr_assert_eq(st.st_ino, v);
	cr_assert_eq(st.st_mode & S_IFMT, S_IFDIR);
	/* made by cred_other, in the tenant's group */
	cr_assert_eq(st.st_uid, FX_OTHER_UID);
	cr_assert_eq(st.st_gid, FX_USER_GID);
	cr_assert_eq(st.st_mode, S_IFDIR | 02770);
	fx_get_obj(v, &o);
	cr_assert_eq(o.uid, FX_OTHER_UID);
	cr_assert_eq(o.gid, FX_USER_GID);
	object_clear(&o);
	assert_listing(v, inside, 2);

	/* info.json: a read-only regular file as long as its text */
	st = lookup_ok(v, "info.json");
	cr_assert_eq(st.st_ino, v | SLOT_INFO);
	cr_assert(S_ISREG(st.st_mode));
	cr_assert_eq(st.st_mode & 0222, 0, "info.json is writable: %o", st.st_mode);
	cr_assert_eq(st.st_nlink, 1);
	cr_assert_eq(tree_read_info(fx.fs, v | SLOT_INFO, &text, &len), 0);
	cr_assert_eq((size_t)st.st_size, len);
	cr_assert_eq(strlen(text), len);
	cr_assert_eq(text[len - 1], '\n');
	free(text);

	/* snapshots/: the tenant's owner, group and mode, not the volume's */
	st = lookup_ok(v, "snapshots");
	cr_assert_eq(st.st_ino, v | SLOT_SNAPSHOTS);
	cr_assert_eq(st.st_mode, S_IFDIR | 02770);
	cr_assert_eq(st.st_uid, FX_USER_UID);
	cr_assert_eq(st.st_gid, FX_USER_GID);
	assert_listing(v | SLOT_SNAPSHOTS, NULL, 0);

	/* not directories, or not there */
	cr_assert_eq(lookup_rc(v | SLOT_INFO, "x"), -ENOTDIR);
	{
		struct dir_listing *l = NULL;

		cr_assert_eq(tree_readdir(fx.fs, v | SLOT_INFO, &l), -ENOTDIR);
	}
	cr_assert_eq(lookup_rc(v, "disk.raw"), -ENOENT);
	cr_assert_eq(lookup_rc(v, "volumes"), -ENOENT);
	cr_assert_eq(tree_getattr(fx.fs, v | 7, &st), -ENOENT);
	cr_assert_eq(tree_read_info(fx.fs, v, &text, &len), -EINVAL);
}

Test(tree, info_json)
{
	uint64_t t = mk_tenant(&cred_root, "acme", 0750);
	uint64_t v = mk_volume(&cred_root, t, "data");
	struct object vo, to;
	json_t *j, *vol;
	char created[32];

	fx_get_obj(v, &vo);
	fx_get_obj(t, &to);
	j = info_json(v);
	vol = json_object_get(j, "volume");
	cr_assert(json_is_object(vol), "no \"volume\" object");
	cr_assert_str_eq(json_string_value(json_object_get(vol, "id")), vo.id);
	cr_assert_str_eq(json_string_value(json_object_get(vol, "name")), "data");
	cr_assert_eq(json_integer_value(json_object_get(vol, "size")), 1, "size in GiB");
	cr_assert_str_eq(json_string_value(json_object_get(vol, "status")), "available");
	cr_assert(json_is_null(json_object_get(vol, "description")));
	cr_assert(json_is_object(json_object_get(vol, "metadata")));
	cr_assert_eq(json_object_size(json_object_get(vol, "metadata")), 0);
	cr_assert_str_eq(json_string_value(json_object_get(vol, "os-vol-tenant-attr:tenant_id")),
			 to.id);
	time_format_iso8601(vo.created_at, created, sizeof(created));
	cr_assert_str_eq(json_string_value(json_object_get(vol, "created_at")), created);
	/* what snapfs fills in where Cinder has values of its own (README) */
	cr_assert_str_eq(json_string_value(json_object_get(vol, "user_id")),
			 "00000000-0000-0000-0000-000000000000", "root's uid as a UUID");
	cr_assert_str_eq(json_string_value(json_object_get(vol, "volume_type")), "__DEFAULT__");
	cr_assert_str_eq(json_string_value(json_object_get(vol, "replication_status")), "disabled");
	cr_assert_eq(json_array_size(json_object_get(vol, "links")), 2);
	{
		char href[64];

		snprintf(href, sizeof(href), "snapfs:by-id/%s", vo.id);
		cr_assert_str_eq(json_string_value(json_object_get(
					 json_array_get(json_object_get(vol, "links"), 0), "href")),
				 href);
	}
	cr_assert_eq(json_array_size(json_object_get(vol, "attachments")), 0);
	json_decref(j);
	object_clear(&vo);
	object_clear(&to);
}

/* An attached volume's attachment: Cinder's keys, no QMP socket, an
 * attachment_id that stays while the node changes. */
Test(tree, info_json_attachment)
{
	uint64_t t = mk_tenant(&cred_root, "acme", 0750);
	uint64_t v = mk_volume(&cred_root, t, "data");
	struct catalog_txn *txn;
	struct object vo;
	json_t *j1, *j2, *j3, *a1;
	const char *aid;

	fx_get_obj(v, &vo);
	cr_assert_eq(catalog_txn_begin(fx.fs->cat, false, &txn), 0);
	snprintf(vo.attach, sizeof(vo.attach), "/run/vm1.qmp#disk0");
	j1 = api_json_build(txn, &vo);
	snprintf(vo.attach, sizeof(vo.attach), "/run/vm1.qmp#snapfs-0123456789abcdef01234567");
	j2 = api_json_build(txn, &vo);
	snprintf(vo.attach, sizeof(vo.attach), "/run/vm2.qmp#disk0");
	j3 = api_json_build(txn, &vo);
	catalog_txn_abort(txn);
	a1 = json_array_get(json_object_get(json_object_get(j1, "volume"), "attachments"), 0);
	cr_assert(json_is_object(a1));
	cr_assert_eq(json_object_size(a1), 7,
		     "id attachment_id volume_id server_id host_name "
		     "device attached_at");
	cr_assert_str_eq(json_string_value(json_object_get(a1, "id")), vo.id);
	cr_assert_str_eq(json_string_value(json_object_get(a1, "volume_id")), vo.id);
	cr_assert_str_eq(json_string_value(json_object_get(a1, "device")), "disk0");
	cr_assert_null(json_object_get(a1, "qmp_socket"));
	aid = json_string_value(json_object_get(a1, "attachment_id"));
	cr_assert(aid && uuid_is_valid(aid), "attachment_id %s", aid ? aid : "(none)");
	cr_assert_str_eq(
		json_string_value(json_object_get(
			json_array_get(
				json_object_get(json_object_get(j2, "volume"), "attachments"), 0),
			"attachment_id")),
		aid, "the same QEMU: the same attachment");
	cr_assert_str_neq(
		json_string_value(json_object_get(
			json_array_get(
				json_object_get(json_object_get(j3, "volume"), "attachments"), 0),
			"attachment_id")),
		aid, "another QEMU: another attachment");
	json_decref(j1);
	json_decref(j2);
	json_decref(j3);
	object_clear(&vo);
}

Test(tree, listing_order)
{
	static const char *const sorted[] = {"A", "a", "b", "c"};
	uint64_t t = mk_tenant(&cred_root, "acme", 0750);

	mk_tenant(&cred_root, "zeta", 0750);
	mk_tenant(&cred_root, "beta", 0750);
	mk_volume(&cred_root, t, "c");
	mk_volume(&cred_root, t, "a");
	mk_volume(&cred_root, t, "A");
	mk_volume(&cred_root, t, "b");
	assert_listing(t | SLOT_VOLUMES, sorted, 4);
	{
		static const char *const tenants[] = {"acme", "beta", "zeta"};

		assert_listing(INO_TENANTS, tenants, 3);
	}
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

Test(tree, by_id)
{
	uint64_t t = mk_tenant(&cred_root, "acme", 0750);
	uint64_t v = mk_volume(&cred_root, t, "data");
	uint64_t w = mk_volume(&cred_root, t, "more");
	struct object to, vo, wo;
	const char *ids[3];
	char target[256];
	struct stat st;

	fx_get_obj(t, &to);
	fx_get_obj(v, &vo);
	fx_get_obj(w, &wo);
	st = lookup_ok(INO_BYID, vo.id);
	cr_assert_eq(st.st_ino, v | SLOT_BYID);
	cr_assert(S_ISLNK(st.st_mode));
	cr_assert_eq(tree_readlink(fx.fs, v | SLOT_BYID, target, sizeof(target)), 0);
	cr_assert_str_eq(target, "../tenants/acme/volumes/data");
	cr_assert_eq((size_t)st.st_size, strlen(target));
	cr_assert_eq(tree_readlink(fx.fs, t | SLOT_BYID, target, sizeof(target)), 0);
	cr_assert_str_eq(target, "../tenants/acme");
	cr_assert_eq(lookup_ok(INO_BYID, to.id).st_ino, t | SLOT_BYID);

	/* every id, in id order, as links */
	ids[0] = to.id, ids[1] = vo.id, ids[2] = wo.id;
	qsort(ids, 3, sizeof(ids[0]), cmp_str);
	assert_listing(INO_BYID, ids, 3);

	/* not links, or not there */
	cr_assert_eq(tree_readlink(fx.fs, v, target, sizeof(target)), -EINVAL);
	cr_assert_eq(lookup_rc(INO_BYID, "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"), -ENOENT);
	cr_assert_eq(lookup_rc(INO_BYID, "data"), -ENOENT);
	cr_assert_eq(lookup_rc(INO_BYID, ""), -ENOENT);
	/* too small a buffer: an error, or at least a NUL-terminated result */
	memset(target, 'x', sizeof(target));
	if (tree_readlink(fx.fs, v | SLOT_BYID, target, 8) == 0)
		cr_assert_not_null(memchr(target, '\0', 8), "no NUL within the buffer");
	object_clear(&to);
	object_clear(&vo);
	object_clear(&wo);
}

Test(tree, object_path)
{
	uint64_t t = mk_tenant(&cred_root, "acme", 0750);
	uint64_t v = mk_volume(&cred_root, t, "data");
	struct catalog_txn *txn;
	struct object o;
	char buf[256];

	fx_get_obj(v, &o);
	cr_assert_eq(catalog_txn_begin(fx.fs->cat, false, &txn), 0);
	cr_assert_eq(tree_object_path(txn, &o, buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "tenants/acme/volumes/data");
	cr_assert_eq(tree_object_path(txn, &o, buf, 10), -ENAMETOOLONG);
	catalog_txn_abort(txn);
	object_clear(&o);
}

Test(tree, node_get)
{
	uint64_t t = mk_tenant(&cred_root, "acme", 0750);
	uint64_t v = mk_volume(&cred_root, t, "data");
	struct node n;

	cr_assert_eq(tree_node_get(fx.fs, INO_TENANTS, &n), 0);
	cr_assert_eq(n.type, NODE_TENANTS);
	cr_assert_eq(n.obj.kind, OBJ_NONE);
	tree_node_clear(&n);
	cr_assert_eq(tree_node_get(fx.fs, t | SLOT_MANAGEABLE, &n), 0);
	cr_assert_eq(n.type, NODE_TENANT_MANAGEABLE);
	cr_assert_eq(n.obj.ino, t);
	tree_node_clear(&n);
	cr_assert_eq(tree_node_get(fx.fs, v | SLOT_INFO, &n), 0);
	cr_assert_eq(n.type, NODE_INFO_JSON);
	cr_assert_eq(n.obj.kind, OBJ_VOLUME);
	tree_node_clear(&n);
	cr_assert_eq(tree_node_get(fx.fs, v | SLOT_BYID, &n), 0);
	cr_assert_eq(n.type, NODE_BYID_LINK);
	tree_node_clear(&n);
	cr_assert_eq(tree_node_get(fx.fs, v + 16, &n), -ENOENT);
}

/* Volumes */

Test(volume, create)
{
	uint64_t t = mk_tenant(&cred_group_admin, "team", 02770);
	int64_t before = time_now_usec();
	uint64_t v = mk_volume(&cred_user, t, "data");
	char path[PATH_MAX + 300], name[64];
	struct object o;
	struct stat st;

	fx_get_obj(v, &o);
	cr_assert_eq(o.kind, OBJ_VOLUME);
	cr_assert_str_eq(o.name, "data");
	cr_assert_eq(o.parent, t);
	cr_assert_eq(o.tenant, t);
	cr_assert(uuid_is_valid(o.id));
	cr_assert_str_eq(o.status, "available");
	cr_assert_str_eq(o.op, "", "an operation left pending");
	cr_assert_str_eq(o.op_arg, "");
	cr_assert_str_eq(o.format, "raw");
	cr_assert_eq(o.size, GIB);
	cr_assert_eq(o.has_description, false);
	cr_assert_eq(o.uid, FX_USER_UID);
	cr_assert_eq(o.gid, FX_USER_GID);
	cr_assert_geq(o.created_at, before);
	snprintf(name, sizeof(name), "volume-%s", o.id);
	cr_assert_str_eq(o.file, name);

	/* the file: volume-<id>, raw, sparse, default_size */
	cr_assert_eq(stat(fx_share_path(path, sizeof(path), name), &st), 0, "%s: %s", path,
		     strerror(errno));
	cr_assert(S_ISREG(st.st_mode));
	cr_assert_eq((uint64_t)st.st_size, GIB);
	cr_assert_lt((uint64_t)st.st_blocks * 512, 1024 * 1024, "not sparse: %lld blocks",
		     (long long)st.st_blocks);
	cr_assert_eq(fx_share_count(), 1, "other files left on the share");
	assert_attr(v, "user.active_file", name);
	object_clear(&o);
}

static void size_3g(struct snapfs_options *o)
{
	fx_opt(&o->default_size, "3G");
}

Test(options, default_size)
{
	uint64_t t, v;
	struct object o;

	fx_setup_with(size_3g);
	t = mk_tenant(&cred_root, "acme", 0750);
	v = mk_volume(&cred_root, t, "data");
	fx_get_obj(v, &o);
	cr_assert_eq(o.size, 3 * GIB);
	cr_assert_eq(share_size(o.file), (long long)(3 * GIB));
	assert_attr(v, "user.size", "3");
	object_clear(&o);
}

Test(volume, create_errors)
{
	uint64_t t = mk_tenant(&cred_root, "acme", 0750), u = mk_tenant(&cred_root, "other", 0750);
	uint64_t v = 0;
	char long_name[300];

	mk_volume(&cred_root, t, "data");
	cr_assert_eq(volume_create(fx.fs, &cred_root, t, "data", &v), -EEXIST);
	cr_assert_eq(volume_create(fx.fs, &cred_root, t, "", &v), -EINVAL);
	cr_assert_eq(volume_create(fx.fs, &cred_root, t, ".", &v), -EINVAL);
	cr_assert_eq(volume_create(fx.fs, &cred_root, t, "..", &v), -EINVAL);
	cr_assert_eq(volume_create(fx.fs, &cred_root, t, "a/b", &v), -EINVAL);
	cr_assert_eq(volume_create(fx.fs, &cred_root, t, "tab\t", &v), -EINVAL);
	cr_assert_eq(volume_create(fx.fs, &cred_root, t, "\xff", &v), -EINVAL);
	memset(long_name, 'n', 256);
	long_name[256] = '\0';
	cr_assert_eq(volume_create(fx.fs, &cred_root, t, long_name, &v), -ENAMETOOLONG);
	/* no tenant there */
	cr_assert_lt(volume_create(fx.fs, &cred_root, t + 1024, "x", &v), 0);
	/* nothing half-done: one volume, one file */
	cr_assert_eq(fx_share_count(), 1);
	{
		static const char *const one[] = {"data"};

		assert_listing(t | SLOT_VOLUMES, one, 1);
	}
	/* the same name in another tenant is another volume */
	mk_volume(&cred_root, u, "data");
	cr_assert_eq(fx_share_count(), 2);
}

Test(volume, delete)
{
	uint64_t t = mk_tenant(&cred_root, "acme", 0750);
	uint64_t v = mk_volume(&cred_user, t, "data");
	uint64_t keep = mk_volume(&cred_user, t, "keep");
	struct object o;
	uint64_t found;

	fx_get_obj(v, &o);
	cr_assert_eq(share_size(o.file), (long long)GIB);
	/* a plain user deletes an available volume */
	cr_assert_eq(volume_delete(fx.fs, &cred_user, v, false), 0);
	cr_assert_eq(share_size(o.file), -1, "%s left behind", o.file);
	cr_assert_eq(fx_obj_rc(v), -ENOENT);
	cr_assert_eq(lookup_rc(t | SLOT_VOLUMES, "data"), -ENOENT);
	cr_assert_eq(id_lookup(o.id, &found), -ENOENT);
	cr_assert_eq(lookup_rc(INO_BYID, o.id), -ENOENT);
	cr_assert_eq(fx_share_count(), 1);
	cr_assert_eq(lookup_ok(t | SLOT_VOLUMES, "keep").st_ino, keep);
	cr_assert_eq(volume_delete(fx.fs, &cred_user, v, false), -ENOENT);
	object_clear(&o);
}

Test(volume, delete_busy_and_force)
{
	uint64_t t = mk_tenant(&cred_root, "acme", 0750);
	uint64_t v = mk_volume(&cred_user, t, "data");
	struct object o;

	fx_get_obj(v, &o);
	cr_assert_eq(attr_put(&cred_root, v, "user.status", "creating", 0), 0);
	cr_assert_eq(volume_delete(fx.fs, &cred_user, v, false), -EBUSY);
	cr_assert_eq(volume_delete(fx.fs, &cred_root, v, false), -EBUSY);
	assert_attr(v, "user.status", "creating");
	cr_assert_eq(share_size(o.file), (long long)GIB);
	/* force: admins only */
	cr_assert_eq(volume_delete(fx.fs, &cred_user, v, true), -EPERM);
	assert_attr(v, "user.status", "creating");
	cr_assert_eq(share_size(o.file), (long long)GIB);
	cr_assert_eq(volume_delete(fx.fs, &cred_root, v, true), 0);
	cr_assert_eq(fx_obj_rc(v), -ENOENT);
	cr_assert_eq(share_size(o.file), -1);
	object_clear(&o);

	/* an admin through admin_group may force too */
	v = mk_volume(&cred_user, t, "data");
	cr_assert_eq(attr_put(&cred_root, v, "user.status", "in-use", 0), 0);
	cr_assert_eq(volume_delete(fx.fs, &cred_user, v, false), -EBUSY);
	cr_assert_eq(volume_delete(fx.fs, &cred_group_admin, v, true), 0);
	cr_assert_eq(fx_share_count(), 0);
}

Test(volume, delete_in_error)
{
	uint64_t t = mk_tenant(&cred_root, "acme", 0750);
	uint64_t v = mk_volume(&cred_user, t, "data");

	cr_assert_eq(attr_put(&cred_root, v, "user.status", "error", 0), 0);
	cr_assert_eq(volume_delete(fx.fs, &cred_user, v, false), 0);
	cr_assert_eq(fx_share_count(), 0);
}

Test(volume, force_delete_attribute)
{
	uint64_t t = mk_tenant(&cred_root, "acme", 0750);
	uint64_t v = mk_volume(&cred_user, t, "data");

	cr_assert_eq(attr_put(&cred_root, v, "user.status", "deleting", 0), 0);
	cr_assert_eq(attr_put(&cred_user, v, "user.force_delete", "1", 0), -EPERM);
	cr_assert_eq(attr_put(&cred_root, v, "user.force_delete", "yes please", 0), -EINVAL);
	cr_assert_eq(fx_obj_rc(v), 0);
	cr_assert_eq(attr_put(&cred_root, v, "user.force_delete", "1", 0), 0);
	cr_assert_eq(fx_obj_rc(v), -ENOENT);
	cr_assert_eq(fx_share_count(), 0);
}

/* One operation per volume at a time: while one is recorded as under way,
 * delete (even forced) and extend answer EBUSY. */
Test(volume, busy_while_operation_runs)
{
	uint64_t t = mk_tenant(&cred_root, "acme", 0750);
	uint64_t v = mk_volume(&cred_user, t, "data");
	struct object o;

	fx_get_obj(v, &o);
	snprintf(o.status, sizeof(o.status), "extending");
	snprintf(o.op, sizeof(o.op), "extend");
	snprintf(o.op_arg, sizeof(o.op_arg), "%llu", (unsigned long long)(4 * GIB));
	update_obj(&o);
	cr_assert_eq(volume_delete(fx.fs, &cred_user, v, false), -EBUSY);
	cr_assert_eq(volume_delete(fx.fs, &cred_root, v, true), -EBUSY);
	cr_assert_eq(volume_extend(fx.fs, &cred_user, v, 2 * GIB), -EBUSY);
	cr_assert_eq(fx_obj_rc(v), 0);
	cr_assert_eq(share_size(o.file), (long long)GIB);
	object_clear(&o);
	fx_get_obj(v, &o);
	cr_assert_str_eq(o.op, "extend", "a refused request changed the pending operation");
	cr_assert_eq(o.size, GIB);
	object_clear(&o);
}

Test(volume, extend_raw)
{
	uint64_t t = mk_tenant(&cred_root, "acme", 0750);
	uint64_t v = mk_volume(&cred_user, t, "data");
	struct object o;
	json_t *j;

	cr_assert_eq(volume_extend(fx.fs, &cred_user, v, 3 * GIB), 0);
	fx_get_obj(v, &o);
	cr_assert_eq(o.size, 3 * GIB);
	cr_assert_str_eq(o.status, "available");
	cr_assert_str_eq(o.op, "");
	cr_assert_str_eq(o.op_arg, "");
	cr_assert_eq(share_size(o.file), (long long)(3 * GIB));
	assert_attr(v, "user.size", "3");
	j = info_json(v);
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(j, "volume"), "size")), 3);
	json_decref(j);

	/* not larger, or not whole GiB */
	cr_assert_eq(volume_extend(fx.fs, &cred_user, v, 3 * GIB), -EINVAL);
	cr_assert_eq(volume_extend(fx.fs, &cred_user, v, 2 * GIB), -EINVAL);
	cr_assert_eq(volume_extend(fx.fs, &cred_user, v, 0), -EINVAL);
	cr_assert_eq(volume_extend(fx.fs, &cred_user, v, 3 * GIB + 1), -EINVAL);
	cr_assert_eq(volume_extend(fx.fs, &cred_user, v, 4 * GIB + GIB / 2), -EINVAL);
	cr_assert_eq(share_size(o.file), (long long)(3 * GIB));
	object_clear(&o);
	fx_get_obj(v, &o);
	cr_assert_eq(o.size, 3 * GIB);
	cr_assert_str_eq(o.status, "available");
	object_clear(&o);
}

Test(volume, extend_busy)
{
	uint64_t t = mk_tenant(&cred_root, "acme", 0750);
	uint64_t v = mk_volume(&cred_user, t, "data");
	struct object o;

	fx_get_obj(v, &o);
	cr_assert_eq(attr_put(&cred_root, v, "user.status", "error", 0), 0);
	cr_assert_eq(volume_extend(fx.fs, &cred_user, v, 2 * GIB), -EBUSY);
	cr_assert_eq(share_size(o.file), (long long)GIB);
	assert_attr(v, "user.status", "error");
	assert_attr(v, "user.size", "1");
	cr_assert_eq(attr_put(&cred_root, v, "user.status", "in-use", 0), 0);
	cr_assert_eq(volume_extend(fx.fs, &cred_user, v, 2 * GIB), -EBUSY);
	cr_assert_eq(attr_put(&cred_root, v, "user.status", "available", 0), 0);
	cr_assert_eq(volume_extend(fx.fs, &cred_user, v, 2 * GIB), 0);
	cr_assert_eq(share_size(o.file), (long long)(2 * GIB));
	object_clear(&o);
}

Test(volume, extend_through_user_size)
{
	uint64_t t = mk_tenant(&cred_root, "acme", 0750);
	uint64_t v = mk_volume(&cred_user, t, "data");
	struct object o;

	fx_get_obj(v, &o);
	cr_assert_eq(attr_put(&cred_user, v, "user.size", "2", 0), 0);
	cr_assert_eq(share_size(o.file), (long long)(2 * GIB));
	cr_assert_eq(attr_put(&cred_user, v, "user.size", "4GiB", 0), 0);
	cr_assert_eq(share_size(o.file), (long long)(4 * GIB));
	cr_assert_eq(attr_put(&cred_user, v, "user.size", "4G", 0), -EINVAL);
	cr_assert_eq(attr_put(&cred_user, v, "user.size", "3", 0), -EINVAL);
	cr_assert_eq(attr_put(&cred_user, v, "user.size", "5.5", 0), -EINVAL);
	cr_assert_eq(attr_put(&cred_user, v, "user.size", "5121M", 0), -EINVAL);
	cr_assert_eq(attr_put(&cred_user, v, "user.size", "big", 0), -EINVAL);
	cr_assert_eq(attr_put(&cred_user, v, "user.size", "", 0), -EINVAL);
	assert_attr(v, "user.size", "4");
	cr_assert_eq(share_size(o.file), (long long)(4 * GIB));
	object_clear(&o);
}

/* qcow2 volumes (needs qemu-img) */

static void qcow2_volumes(struct snapfs_options *o)
{
	fx_opt(&o->volume_format, "qcow2");
}

/* The qcow2 header of a file on the share: magic and virtual size. */
static void qcow2_header(const char *name, char magic[4], uint64_t *size)
{
	char path[PATH_MAX + 300];
	unsigned char h[32];
	int fd = open(fx_share_path(path, sizeof(path), name), O_RDONLY);

	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	cr_assert_eq(pread(fd, h, sizeof(h), 0), (ssize_t)sizeof(h));
	close(fd);
	memcpy(magic, h, 4);
	*size = be64(h + 24);
}

Test(options, qcow2_volumes)
{
	uint64_t t, v, size;
	struct object o;
	char magic[4];

	fx_setup_with(qcow2_volumes);
	if (access("/usr/bin/qemu-img", X_OK) && access("/usr/local/bin/qemu-img", X_OK))
		cr_skip_test("no qemu-img");
	t = mk_tenant(&cred_root, "acme", 0750);
	v = mk_volume(&cred_user, t, "data");
	fx_get_obj(v, &o);
	cr_assert_str_eq(o.format, "qcow2");
	cr_assert_eq(o.size, GIB);
	qcow2_header(o.file, magic, &size);
	cr_assert_arr_eq(magic, "QFI\xfb", 4, "not a qcow2 image");
	cr_assert_eq(size, GIB, "virtual size %llu", (unsigned long long)size);
	cr_assert_lt(share_size(o.file), 16 * 1024 * 1024, "an empty qcow2 image is small");

	cr_assert_eq(volume_extend(fx.fs, &cred_user, v, 2 * GIB), 0);
	qcow2_header(o.file, magic, &size);
	cr_assert_eq(size, 2 * GIB);
	object_clear(&o);
	fx_get_obj(v, &o);
	cr_assert_eq(o.size, 2 * GIB);
	cr_assert_str_eq(o.status, "available");
	cr_assert_eq(fx_share_count(), 1);
	cr_assert_eq(volume_delete(fx.fs, &cred_user, v, false), 0);
	cr_assert_eq(fx_share_count(), 0);
	object_clear(&o);
}

/* Attributes */

Test(attr, read_only_values)
{
	uint64_t t = mk_tenant(&cred_root, "acme", 0750);
	uint64_t v = mk_volume(&cred_user, t, "data");
	struct object vo, to;
	char created[32];

	fx_get_obj(v, &vo);
	fx_get_obj(t, &to);
	assert_attr(v, "user.id", vo.id);
	assert_attr(v, "user.status", "available");
	assert_attr(v, "user.size", "1");
	assert_attr(v, "user.project_id", to.id);
	assert_attr(v, "user.active_file", vo.file);
	time_format_iso8601(vo.created_at, created, sizeof(created));
	assert_attr(v, "user.created_at", created);
	assert_attr(t, "user.id", to.id);
	cr_assert_eq(attr_rc(v, "user.consistency_group_id"), -ENODATA);
	cr_assert_eq(attr_rc(v, "user.description"), -ENODATA);
	cr_assert_eq(attr_rc(v, "user.meta.none"), -ENODATA);

	/* writing them: EPERM, as root too */
	static const char *const ro[] = {"user.id",	    "user.created_at",
					 "user.project_id", "user.active_file",
					 "user.json",	    "user.consistency_group_id"};

	for (size_t i = 0; i < sizeof(ro) / sizeof(ro[0]); i++) {
		cr_assert_eq(attr_put(&cred_root, v, ro[i], "x", 0), -EPERM, "%s", ro[i]);
		cr_assert_eq(attr_remove(fx.fs, &cred_root, v, ro[i]), -EPERM, "remove %s", ro[i]);
	}
	cr_assert_eq(attr_put(&cred_root, t, "user.id", "x", 0), -EPERM);
	assert_attr(v, "user.id", vo.id);
	object_clear(&vo);
	object_clear(&to);
}

Test(attr, unknown_names)
{
	uint64_t t = mk_tenant(&cred_root, "acme", 0750);
	uint64_t v = mk_volume(&cred_user, t, "data");
	static const char *const unknown[] = {"user.nope",    "user.ID",     "user",
					      "user.",	      "trusted.foo", "security.selinux",
					      "user.metadata"};

	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		cr_assert_eq(attr_rc(v, unknown[i]), -ENOTSUP, "get %s", unknown[i]);
		cr_assert_eq(attr_put(&cred_root, v, unknown[i], "x", 0), -ENOTSUP, "set %s",
			     unknown[i]);
		cr_assert_eq(attr_remove(fx.fs, &cred_root, v, unknown[i]), -ENOTSUP, "remove %s",
			     unknown[i]);
	}
	/* volume-only names on a tenant */
	cr_assert_eq(attr_rc(t, "user.size"), -ENOTSUP);
	cr_assert_eq(attr_rc(t, "user.status"), -ENOTSUP);
	cr_assert_eq(attr_put(&cred_root, t, "user.status", "error", 0), -ENOTSUP);
	cr_assert_eq(attr_put(&cred_root, t, "user.size", "2", 0), -ENOTSUP);
}

Test(attr, description)
{
	uint64_t t = mk_tenant(&cred_root, "acme", 0750);
	uint64_t v = mk_volume(&cred_user, t, "data");
	char text[300];
	json_t *j;

	cr_assert_eq(attr_rc(v, "user.description"), -ENODATA);
	{
		struct object o;
		struct stat st;
		int64_t before;

		fx_get_obj(v, &o);
		before = o.updated_at;
		object_clear(&o);
		usleep(2000);
		cr_assert_eq(attr_put(&cred_user, v, "user.description", "stamp", 0), 0);
		fx_get_obj(v, &o);
		cr_assert_gt(o.updated_at, before, "updated_at not stamped");
		cr_assert_eq(tree_getattr(fx.fs, v, &st), 0);
		cr_assert_eq((int64_t)st.st_mtim.tv_sec * 1000000 + st.st_mtim.tv_nsec / 1000,
			     o.updated_at, "mtime is not updated_at");
		object_clear(&o);
		cr_assert_eq(attr_remove(fx.fs, &cred_user, v, "user.description"), 0);
	}
	cr_assert_eq(attr_put(&cred_user, v, "user.description", "x", XATTR_REPLACE), -ENODATA);
	cr_assert_eq(attr_rc(v, "user.description"), -ENODATA);
	cr_assert_eq(attr_put(&cred_user, v, "user.description", "first", XATTR_CREATE), 0);
	assert_attr(v, "user.description", "first");
	cr_assert_eq(attr_put(&cred_user, v, "user.description", "second", XATTR_CREATE), -EEXIST);
	assert_attr(v, "user.description", "first");
	cr_assert_eq(attr_put(&cred_user, v, "user.description", "second", XATTR_REPLACE), 0);
	assert_attr(v, "user.description", "second");

	/* 255 bytes fit, 256 do not */
	memset(text, 'd', 255);
	text[255] = '\0';
	cr_assert_eq(attr_put(&cred_user, v, "user.description", text, 0), 0);
	assert_attr(v, "user.description", text);
	memset(text, 'e', 256);
	text[256] = '\0';
	cr_assert_eq(attr_put(&cred_user, v, "user.description", text, 0), -E2BIG);
	text[255] = '\0';
	memset(text, 'd', 255);
	assert_attr(v, "user.description", text);
	cr_assert_eq(attr_put(&cred_user, v, "user.description", "bad \xff utf-8", 0), -EINVAL);

	/* "" is a description, not none */
	cr_assert_eq(attr_put(&cred_user, v, "user.description", "", 0), 0);
	assert_attr(v, "user.description", "");
	j = info_json(v);
	cr_assert_str_eq(
		json_string_value(json_object_get(json_object_get(j, "volume"), "description")),
		"");
	json_decref(j);

	cr_assert_eq(attr_remove(fx.fs, &cred_user, v, "user.description"), 0);
	cr_assert_eq(attr_rc(v, "user.description"), -ENODATA);
	cr_assert_eq(attr_remove(fx.fs, &cred_user, v, "user.description"), -ENODATA);
	j = info_json(v);
	cr_assert(json_is_null(json_object_get(json_object_get(j, "volume"), "description")));
	json_decref(j);

	/* tenants have one too */
	cr_assert_eq(attr_put(&cred_root, t, "user.description", "the acme tenant", 0), 0);
	assert_attr(t, "user.description", "the acme tenant");
}

Test(attr, metadata)
{
	uint64_t t = mk_tenant(&cred_root, "acme", 0750);
	uint64_t v = mk_volume(&cred_user, t, "data");
	char key[300], value[300];
	json_t *j, *meta;

	cr_assert_eq(attr_put(&cred_user, v, "user.meta.k1", "v1", 0), 0);
	cr_assert_eq(attr_put(&cred_user, v, "user.meta.a-b_c:d.e f", "sp\303\244ce", 0), 0);
	assert_attr(v, "user.meta.k1", "v1");
	assert_attr(v, "user.meta.a-b_c:d.e f", "sp\303\244ce");
	cr_assert_eq(attr_put(&cred_user, v, "user.meta.empty", "", 0), 0);
	assert_attr(v, "user.meta.empty", "");

	/* bad keys */
	static const char *const bad_keys[] = {"user.meta.",	      "user.meta.a/b",
					       "user.meta.k\xc3\xa9", "user.meta.new\nline",
					       "user.meta.a=b",	      "user.meta.*"};

	for (size_t i = 0; i < sizeof(bad_keys) / sizeof(bad_keys[0]); i++)
		cr_assert_eq(attr_put(&cred_user, v, bad_keys[i], "x", 0), -EINVAL, "%s",
			     bad_keys[i]);
	snprintf(key, sizeof(key), "user.meta.");
	memset(key + 10, 'k', 256);
	key[266] = '\0';
	cr_assert_eq(attr_put(&cred_user, v, key, "x", 0), -EINVAL, "a 256-byte key");
	key[265] = '\0';
	cr_assert_eq(attr_put(&cred_user, v, key, "x", 0), 0, "a 255-byte key");

	/* value: 255 bytes fit, 256 do not */
	memset(value, 'v', 255);
	value[255] = '\0';
	cr_assert_eq(attr_put(&cred_user, v, "user.meta.k1", value, 0), 0);
	assert_attr(v, "user.meta.k1", value);
	value[255] = 'v';
	value[256] = '\0';
	cr_assert_eq(attr_put(&cred_user, v, "user.meta.k1", value, 0), -E2BIG);
	value[255] = '\0';
	assert_attr(v, "user.meta.k1", value);
	cr_assert_eq(attr_put(&cred_user, v, "user.meta.k1", "\xc3", 0), -EINVAL);

	/* create / replace */
	cr_assert_eq(attr_put(&cred_user, v, "user.meta.k1", "again", XATTR_CREATE), -EEXIST);
	cr_assert_eq(attr_put(&cred_user, v, "user.meta.k2", "x", XATTR_REPLACE), -ENODATA);
	cr_assert_eq(attr_rc(v, "user.meta.k2"), -ENODATA);
	cr_assert_eq(attr_put(&cred_user, v, "user.meta.k1", "replaced", XATTR_REPLACE), 0);
	assert_attr(v, "user.meta.k1", "replaced");
	cr_assert_eq(attr_put(&cred_user, v, "user.meta.k2", "created", XATTR_CREATE), 0);
	assert_attr(v, "user.meta.k2", "created");

	/* in info.json */
	j = info_json(v);
	meta = json_object_get(json_object_get(j, "volume"), "metadata");
	cr_assert_str_eq(json_string_value(json_object_get(meta, "k1")), "replaced");
	cr_assert_str_eq(json_string_value(json_object_get(meta, "k2")), "created");
	cr_assert_str_eq(json_string_value(json_object_get(meta, "empty")), "");
	json_decref(j);

	/* remove */
	cr_assert_eq(attr_remove(fx.fs, &cred_user, v, "user.meta.missing"), -ENODATA);
	cr_assert_eq(attr_remove(fx.fs, &cred_user, v, "user.meta.k1"), 0);
	cr_assert_eq(attr_rc(v, "user.meta.k1"), -ENODATA);
	cr_assert_eq(attr_remove(fx.fs, &cred_user, v, "user.meta.k1"), -ENODATA);
	assert_attr(v, "user.meta.k2", "created");

	/* tenants have metadata too */
	cr_assert_eq(attr_put(&cred_root, t, "user.meta.owner", "ops", 0), 0);
	assert_attr(t, "user.meta.owner", "ops");
	cr_assert_eq(attr_rc(v, "user.meta.owner"), -ENODATA);
}

Test(attr, status)
{
	uint64_t t = mk_tenant(&cred_root, "acme", 0750);
	uint64_t v = mk_volume(&cred_user, t, "data");

	cr_assert_eq(attr_put(&cred_root, v, "user.status", "bogus", 0), -EINVAL);
	cr_assert_eq(attr_put(&cred_root, v, "user.status", "", 0), -EINVAL);
	cr_assert_eq(attr_put(&cred_root, v, "user.status", "Available", 0), -EINVAL);
	assert_attr(v, "user.status", "available");
	cr_assert_eq(attr_put(&cred_user, v, "user.status", "error", 0), -EPERM);
	cr_assert_eq(attr_put(&cred_other, v, "user.status", "error", 0), -EPERM);
	assert_attr(v, "user.status", "available");
	cr_assert_eq(attr_put(&cred_group_admin, v, "user.status", "error", 0), 0);
	assert_attr(v, "user.status", "error");
	/* setfattr never sends a NUL, but a trailing one is harmless */
	cr_assert_eq(attr_set(fx.fs, &cred_root, v, "user.status", "in-use", 7, 0), 0);
	assert_attr(v, "user.status", "in-use");
	{
		json_t *j = info_json(v);

		cr_assert_str_eq(
			json_string_value(json_object_get(json_object_get(j, "volume"), "status")),
			"in-use");
		json_decref(j);
	}
	cr_assert_eq(attr_put(&cred_root, v, "user.status", "available", 0), 0);
	cr_assert_eq(attr_remove(fx.fs, &cred_root, v, "user.status"), -EPERM);
}

/* user.json is the object of info.json. */
Test(attr, json_matches_info)
{
	uint64_t t = mk_tenant(&cred_root, "acme", 0750);
	uint64_t v = mk_volume(&cred_user, t, "data");
	char *value = NULL;
	size_t len = 0;
	json_t *a, *b;

	cr_assert_eq(attr_put(&cred_user, v, "user.meta.k", "v", 0), 0);
	cr_assert_eq(attr_put(&cred_user, v, "user.description", "d", 0), 0);
	cr_assert_eq(attr_get(fx.fs, v, "user.json", &value, &len), 0);
	cr_assert(utf8_is_valid(value, len));
	a = parse_json(value, len);
	b = info_json(v);
	cr_assert(json_equal(a, b), "user.json %.*s differs from info.json", (int)len, value);
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(a, "volume"), "name")),
			 "data");
	json_decref(a);
	json_decref(b);
	free(value);

	/* a tenant's user.json is its API object */
	cr_assert_eq(attr_get(fx.fs, t, "user.json", &value, &len), 0);
	a = parse_json(value, len);
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(a, "tenant"), "name")),
			 "acme");
	json_decref(a);
	free(value);
}

static bool names_have(const char *names, size_t len, const char *name)
{
	for (size_t off = 0; off < len; off += strlen(names + off) + 1)
		if (!strcmp(names + off, name))
			return true;
	return false;
}

Test(attr, list)
{
	uint64_t t = mk_tenant(&cred_root, "acme", 0750);
	uint64_t v = mk_volume(&cred_user, t, "data");
	static const char *const volume_names[] = {
		"user.id",	   "user.status",      "user.created_at", "user.size",
		"user.project_id", "user.active_file", "user.json"};
	char *names = NULL;
	size_t len = 0;

	cr_assert_eq(attr_list(fx.fs, v, &names, &len), 0);
	cr_assert_gt(len, 0);
	cr_assert_eq(names[len - 1], '\0', "the list does not end with a NUL");
	for (size_t i = 0; i < sizeof(volume_names) / sizeof(volume_names[0]); i++)
		cr_assert(names_have(names, len, volume_names[i]), "%s not listed",
			  volume_names[i]);
	cr_assert_not(names_have(names, len, "user.description"), "no description yet");
	cr_assert_not(names_have(names, len, "user.force_delete"), "an action is listed");
	cr_assert_not(names_have(names, len, "user.consistency_group_id"), "not in a group");
	/* every listed name can be read */
	for (size_t off = 0; off < len; off += strlen(names + off) + 1)
		cr_assert_eq(attr_rc(v, names + off), 0, "%s listed but not readable", names + off);
	free(names);

	cr_assert_eq(attr_put(&cred_user, v, "user.description", "d", 0), 0);
	cr_assert_eq(attr_put(&cred_user, v, "user.meta.k1", "1", 0), 0);
	cr_assert_eq(attr_put(&cred_user, v, "user.meta.key two", "2", 0), 0);
	cr_assert_eq(attr_list(fx.fs, v, &names, &len), 0);
	cr_assert(names_have(names, len, "user.description"));
	cr_assert(names_have(names, len, "user.meta.k1"));
	cr_assert(names_have(names, len, "user.meta.key two"));
	cr_assert(names_have(names, len, "user.id"));
	free(names);

	cr_assert_eq(attr_remove(fx.fs, &cred_user, v, "user.meta.k1"), 0);
	cr_assert_eq(attr_list(fx.fs, v, &names, &len), 0);
	cr_assert_not(names_have(names, len, "user.meta.k1"));
	cr_assert(names_have(names, len, "user.meta.key two"));
	free(names);

	cr_assert_eq(attr_list(fx.fs, t, &names, &len), 0);
	cr_assert(names_have(names, len, "user.id"));
	cr_assert(names_have(names, len, "user.created_at"));
	cr_assert(names_have(names, len, "user.json"));
	cr_assert_not(names_have(names, len, "user.size"));
	cr_assert_not(names_have(names, len, "user.status"));
	free(names);
}

/* Rename */

Test(object, rename_volume)
{
	uint64_t t = mk_tenant(&cred_root, "acme", 0750);
	uint64_t v = mk_volume(&cred_user, t, "old");
	struct object o;
	char target[256], long_name[300];
	json_t *j;

	mk_volume(&cred_user, t, "taken");
	fx_get_obj(v, &o);
	cr_assert_eq(object_rename(fx.fs, &cred_user, v, "new"), 0);
	cr_assert_eq(lookup_rc(t | SLOT_VOLUMES, "old"), -ENOENT);
	cr_assert_eq(lookup_ok(t | SLOT_VOLUMES, "new").st_ino, v, "the inode is kept");
	cr_assert_eq(tree_readlink(fx.fs, v | SLOT_BYID, target, sizeof(target)), 0);
	cr_assert_str_eq(target, "../tenants/acme/volumes/new");
	j = info_json(v);
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "volume"), "name")),
			 "new");
	json_decref(j);
	/* the file on the share is named by the id, not the name */
	cr_assert_eq(share_size(o.file), (long long)GIB);

	cr_assert_eq(object_rename(fx.fs, &cred_user, v, "taken"), -EEXIST);
	cr_assert_eq(object_rename(fx.fs, &cred_user, v, "a/b"), -EINVAL);
	cr_assert_eq(object_rename(fx.fs, &cred_user, v, ""), -EINVAL);
	cr_assert_eq(object_rename(fx.fs, &cred_user, v, ".."), -EINVAL);
	memset(long_name, 'n', 256);
	long_name[256] = '\0';
	cr_assert_eq(object_rename(fx.fs, &cred_user, v, long_name), -ENAMETOOLONG);
	cr_assert_eq(object_rename(fx.fs, &cred_user, v, "new"), 0, "rename to itself");
	{
		static const char *const names[] = {"new", "taken"};

		assert_listing(t | SLOT_VOLUMES, names, 2);
	}
	object_clear(&o);
}

Test(object, rename_tenant)
{
	uint64_t t = mk_tenant(&cred_root, "acme", 0750);
	uint64_t v = mk_volume(&cred_user, t, "data");
	char target[256];

	cr_assert_eq(object_rename(fx.fs, &cred_user, t, "mine"), -EPERM);
	cr_assert_eq(lookup_ok(INO_TENANTS, "acme").st_ino, t);
	cr_assert_eq(object_rename(fx.fs, &cred_root, t, "renamed"), 0);
	cr_assert_eq(lookup_rc(INO_TENANTS, "acme"), -ENOENT);
	cr_assert_eq(lookup_ok(INO_TENANTS, "renamed").st_ino, t);
	/* what is inside follows */
	cr_assert_eq(tree_readlink(fx.fs, v | SLOT_BYID, target, sizeof(target)), 0);
	cr_assert_str_eq(target, "../tenants/renamed/volumes/data");
	cr_assert_eq(lookup_ok(t | SLOT_VOLUMES, "data").st_ino, v);
}

/* Owner and mode */

Test(object, set_owner)
{
	uint64_t t = mk_tenant(&cred_root, "acme", 0750);
	uint64_t v = mk_volume(&cred_user, t, "data");
	struct stat st;

	/* not an admin: nothing changes */
	cr_assert_eq(object_set_owner(fx.fs, &cred_user, t, OBJECT_SET_MODE, 0777, 0, 0), -EPERM);
	cr_assert_eq(object_set_owner(fx.fs, &cred_user, t, OBJECT_SET_GID, 0, 0, FX_USER_GID),
		     -EPERM);
	cr_assert_eq(object_set_owner(fx.fs, &cred_user, v, OBJECT_SET_UID, 0, FX_OTHER_UID, 0),
		     -EPERM);
	cr_assert_eq(tree_getattr(fx.fs, t, &st), 0);
	cr_assert_eq(st.st_mode, S_IFDIR | 0750);
	cr_assert_eq(st.st_uid, 0);
	cr_assert_eq(st.st_gid, 0);

	/* chgrp TEAM; chmod 2770 */
	cr_assert_eq(object_set_owner(fx.fs, &cred_root, t, OBJECT_SET_GID, 0, 12345, 4243), 0);
	cr_assert_eq(object_set_owner(fx.fs, &cred_group_admin, t, OBJECT_SET_MODE, S_IFDIR | 02770,
				      12345, 12345),
		     0);
	cr_assert_eq(tree_getattr(fx.fs, t, &st), 0);
	cr_assert_eq(st.st_mode, S_IFDIR | 02770, "mode %o", st.st_mode);
	cr_assert_eq(st.st_uid, 0, "only the group was to change");
	cr_assert_eq(st.st_gid, 4243);
	/* the fixed directories follow the tenant */
	st = lookup_ok(t, "volumes");
	cr_assert_eq(st.st_mode, S_IFDIR | 02770);
	cr_assert_eq(st.st_gid, 4243);
	st = lookup_ok(v, "snapshots");
	cr_assert_eq(st.st_mode, S_IFDIR | 02770);
	cr_assert_eq(st.st_gid, 4243);
	/* the volume keeps its own */
	cr_assert_eq(tree_getattr(fx.fs, v, &st), 0);
	cr_assert_eq(st.st_mode, S_IFDIR | 0750);
	cr_assert_eq(st.st_uid, FX_USER_UID);
	cr_assert_eq(st.st_gid, 0);

	/* chown */
	cr_assert_eq(object_set_owner(fx.fs, &cred_root, v, OBJECT_SET_UID | OBJECT_SET_GID, 0,
				      FX_OTHER_UID, 4243),
		     0);
	cr_assert_eq(tree_getattr(fx.fs, v, &st), 0);
	cr_assert_eq(st.st_uid, FX_OTHER_UID);
	cr_assert_eq(st.st_gid, 4243);
	cr_assert_eq(st.st_mode, S_IFDIR | 0750);
	/* a new volume takes the tenant's group and mode */
	v = mk_volume(&cred_user, t, "later");
	cr_assert_eq(tree_getattr(fx.fs, v, &st), 0);
	cr_assert_eq(st.st_gid, 4243);
	cr_assert_eq(st.st_mode, S_IFDIR | 02770);
}

/* Crash recovery: a record left with an operation under way is finished or
 * undone by the next snapfs_open(). */

static void insert_raw(struct object *o)
{
	struct catalog_txn *txn;
	int rc = catalog_txn_begin(fx.fs->cat, true, &txn);

	cr_assert_eq(rc, 0);
	rc = catalog_object_insert(txn, o);
	cr_assert_eq(rc, 0, "insert: %s", strerror(-rc));
	cr_assert_eq(catalog_txn_commit(txn), 0);
}

static void make_share_file(const char *name, uint64_t size)
{
	char path[PATH_MAX + 300];
	int fd = open(fx_share_path(path, sizeof(path), name), O_CREAT | O_EXCL | O_WRONLY, 0660);

	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	cr_assert_eq(ftruncate(fd, (off_t)size), 0);
	close(fd);
}

/* A volume record as volume_create() writes it before the file exists. */
static void half_created(struct object *o, uint64_t tenant, const char *name)
{
	object_init(o);
	o->kind = OBJ_VOLUME;
	o->parent = o->tenant = tenant;
	cr_assert_eq(uuid_generate_str(o->id), 0);
	snprintf(o->name, sizeof(o->name), "%s", name);
	snprintf(o->status, sizeof(o->status), "creating");
	snprintf(o->op, sizeof(o->op), "create");
	snprintf(o->format, sizeof(o->format), "raw");
	snprintf(o->file, sizeof(o->file), "volume-%s", o->id);
	o->size = GIB;
	o->mode = 0750;
	o->created_at = o->updated_at = time_now_usec();
}

Test(recover, undo_create)
{
	uint64_t t = mk_tenant(&cred_root, "acme", 0750);
	uint64_t keep = mk_volume(&cred_user, t, "keep");
	struct object a, b, k;
	uint64_t found;

	fx_get_obj(keep, &k);
	/* crashed after the file was made */
	half_created(&a, t, "with-file");
	insert_raw(&a);
	make_share_file(a.file, GIB);
	/* crashed before */
	half_created(&b, t, "without-file");
	insert_raw(&b);
	cr_assert_eq(fx_share_count(), 2);

	fx_reopen();
	cr_assert_eq(fx_obj_rc(a.ino), -ENOENT);
	cr_assert_eq(fx_obj_rc(b.ino), -ENOENT);
	cr_assert_eq(lookup_rc(t | SLOT_VOLUMES, "with-file"), -ENOENT);
	cr_assert_eq(lookup_rc(t | SLOT_VOLUMES, "without-file"), -ENOENT);
	cr_assert_eq(id_lookup(a.id, &found), -ENOENT);
	cr_assert_eq(id_lookup(b.id, &found), -ENOENT);
	cr_assert_eq(share_size(a.file), -1, "the half-made file is left");
	/* the finished volume is untouched */
	cr_assert_eq(share_size(k.file), (long long)GIB);
	cr_assert_eq(lookup_ok(t | SLOT_VOLUMES, "keep").st_ino, keep);
	cr_assert_eq(fx_share_count(), 1);
	/* and the name is free again */
	mk_volume(&cred_user, t, "with-file");
	object_clear(&a);
	object_clear(&b);
	object_clear(&k);
}

Test(recover, finish_delete)
{
	uint64_t t = mk_tenant(&cred_root, "acme", 0750);
	uint64_t v = mk_volume(&cred_user, t, "doomed");
	uint64_t w = mk_volume(&cred_user, t, "gone-already");
	struct object o, p;
	char info[80];
	uint64_t found;

	/* crashed after the intent was recorded, before any file went */
	fx_get_obj(v, &o);
	snprintf(o.status, sizeof(o.status), "deleting");
	snprintf(o.op, sizeof(o.op), "delete");
	update_obj(&o);
	snprintf(info, sizeof(info), "volume-%s.info", o.id);
	make_share_file(info, 40);
	/* crashed after the file went, before the record did */
	fx_get_obj(w, &p);
	snprintf(p.status, sizeof(p.status), "deleting");
	snprintf(p.op, sizeof(p.op), "delete");
	update_obj(&p);
	cr_assert_eq(unlink(fx_share_path((char[PATH_MAX + 300]){0}, PATH_MAX + 300, p.file)), 0);

	fx_reopen();
	cr_assert_eq(fx_obj_rc(v), -ENOENT);
	cr_assert_eq(fx_obj_rc(w), -ENOENT);
	cr_assert_eq(id_lookup(o.id, &found), -ENOENT);
	cr_assert_eq(lookup_rc(t | SLOT_VOLUMES, "doomed"), -ENOENT);
	cr_assert_eq(lookup_rc(t | SLOT_VOLUMES, "gone-already"), -ENOENT);
	cr_assert_eq(share_size(o.file), -1);
	cr_assert_eq(share_size(info), -1, ".info left behind");
	cr_assert_eq(fx_share_count(), 0);
	object_clear(&o);
	object_clear(&p);
}

Test(recover, finish_extend)
{
	uint64_t t = mk_tenant(&cred_root, "acme", 0750);
	uint64_t v = mk_volume(&cred_user, t, "grow");
	uint64_t w = mk_volume(&cred_user, t, "grown");
	struct object o, p;

	/* crashed after the intent was recorded */
	fx_get_obj(v, &o);
	snprintf(o.status, sizeof(o.status), "extending");
	snprintf(o.op, sizeof(o.op), "extend");
	snprintf(o.op_arg, sizeof(o.op_arg), "%llu", (unsigned long long)(3 * GIB));
	update_obj(&o);
	/* crashed after the file grew */
	fx_get_obj(w, &p);
	snprintf(p.status, sizeof(p.status), "extending");
	snprintf(p.op, sizeof(p.op), "extend");
	snprintf(p.op_arg, sizeof(p.op_arg), "%llu", (unsigned long long)(2 * GIB));
	update_obj(&p);
	cr_assert_eq(truncate(fx_share_path((char[PATH_MAX + 300]){0}, PATH_MAX + 300, p.file),
			      (off_t)(2 * GIB)),
		     0);
	object_clear(&o);
	object_clear(&p);

	fx_reopen();
	fx_get_obj(v, &o);
	cr_assert_eq(share_size(o.file), (long long)(3 * GIB));
	cr_assert_eq(o.size, 3 * GIB);
	cr_assert_str_eq(o.status, "available");
	cr_assert_str_eq(o.op, "");
	cr_assert_str_eq(o.op_arg, "");
	fx_get_obj(w, &p);
	cr_assert_eq(share_size(p.file), (long long)(2 * GIB));
	cr_assert_eq(p.size, 2 * GIB);
	cr_assert_str_eq(p.status, "available");
	cr_assert_str_eq(p.op, "");
	assert_attr(v, "user.size", "3");
	object_clear(&o);
	object_clear(&p);
}

/* An operation that cannot be finished leaves an error status and does
 * not stop the mount. */
Test(recover, extend_that_cannot_finish)
{
	uint64_t t = mk_tenant(&cred_root, "acme", 0750);
	uint64_t v = mk_volume(&cred_user, t, "grow");
	uint64_t keep = mk_volume(&cred_user, t, "keep");
	struct object o;

	fx_get_obj(v, &o);
	snprintf(o.status, sizeof(o.status), "extending");
	snprintf(o.op, sizeof(o.op), "extend");
	snprintf(o.op_arg, sizeof(o.op_arg), "not a size");
	update_obj(&o);
	object_clear(&o);

	fx_reopen();
	fx_get_obj(v, &o);
	cr_assert_str_eq(o.status, "error_extending");
	cr_assert_str_eq(o.op, "");
	cr_assert_eq(o.size, GIB);
	cr_assert_eq(share_size(o.file), (long long)GIB);
	object_clear(&o);
	cr_assert_eq(lookup_ok(t | SLOT_VOLUMES, "keep").st_ino, keep);
	/* error_extending is deletable */
	cr_assert_eq(volume_delete(fx.fs, &cred_user, v, false), 0);
}

/* A mount with nothing to recover changes nothing. */
Test(recover, clean_remount)
{
	uint64_t t = mk_tenant(&cred_root, "acme", 0750);
	uint64_t v = mk_volume(&cred_user, t, "data");
	struct object before, after;

	cr_assert_eq(attr_put(&cred_user, v, "user.meta.k", "v", 0), 0);
	fx_get_obj(v, &before);
	fx_reopen();
	fx_get_obj(v, &after);
	cr_assert_str_eq(after.status, before.status);
	cr_assert_eq(after.size, before.size);
	cr_assert_eq(after.updated_at, before.updated_at);
	cr_assert(json_equal(after.metadata, before.metadata));
	cr_assert_eq(lookup_ok(t | SLOT_VOLUMES, "data").st_ino, v, "ino not stable");
	cr_assert_eq(lookup_ok(INO_TENANTS, "acme").st_ino, t);
	cr_assert_eq(share_size(before.file), (long long)GIB);
	object_clear(&before);
	object_clear(&after);
}
