/* test_catalog.c - unit tests of src/store/catalog.c, the LMDB catalogue. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "fixture.h"

#define MAP_BIG (64ULL << 20)
#define MAP_SMALL (256ULL << 10) /* room for some records only */
#define MAP_MIN (64ULL << 10) /* the smallest catalog_size options accept */

static char dir[PATH_MAX];
static struct catalog *cat;

static void cat_open(uint64_t map_size)
{
	int rc = catalog_open(&cat, dir, map_size, NULL);

	cr_assert_eq(rc, 0, "catalog_open %s: %s", dir, strerror(-rc));
	cr_assert_not_null(cat);
}

static void cat_reopen(void)
{
	catalog_close(cat);
	cat = NULL;
	cat_open(MAP_BIG);
}

static void cat_setup(void)
{
	test_log_setup();
	tmpdir_make(dir, sizeof(dir), "cat");
	cat_open(MAP_BIG);
}

static void cat_setup_small(void)
{
	test_log_setup();
	tmpdir_make(dir, sizeof(dir), "cat");
	cat_open(MAP_SMALL);
}

static void cat_teardown(void)
{
	catalog_close(cat);
	cat = NULL;
	rm_rf(dir);
	test_leak_check();
}

TestSuite(catalog, .init = cat_setup, .fini = cat_teardown, .timeout = 30);
TestSuite(catalog_full, .init = cat_setup_small, .fini = cat_teardown, .timeout = 30);
TestSuite(catalog_open, .fini = cat_teardown, .timeout = 30);
TestSuite(object, .fini = test_leak_check, .timeout = 30);

static struct catalog_txn *txn_begin(bool write)
{
	struct catalog_txn *txn = NULL;
	int rc = catalog_txn_begin(cat, write, &txn);

	cr_assert_eq(rc, 0, "catalog_txn_begin: %s", strerror(-rc));
	cr_assert_not_null(txn);
	return txn;
}

static void txn_commit(struct catalog_txn *txn)
{
	int rc = catalog_txn_commit(txn);

	cr_assert_eq(rc, 0, "catalog_txn_commit: %s", strerror(-rc));
}

/* A minimal record of kind under parent, with a fresh uuid. */
static void obj_make(struct object *o, enum object_kind kind, uint64_t parent, const char *name)
{
	object_init(o);
	o->kind = kind;
	o->parent = parent;
	o->tenant = parent;
	cr_assert_eq(uuid_generate_str(o->id), 0);
	snprintf(o->name, sizeof(o->name), "%s", name);
	snprintf(o->status, sizeof(o->status), "available");
}

/* Insert in a transaction of its own; returns insert's result (the
 * transaction is committed on success, aborted otherwise). */
static int insert_with_id(enum object_kind kind, uint64_t parent, const char *name, const char *id,
			  uint64_t *ino)
{
	struct catalog_txn *txn = txn_begin(true);
	struct object o;
	int rc;

	obj_make(&o, kind, parent, name);
	if (id)
		snprintf(o.id, sizeof(o.id), "%s", id);
	rc = catalog_object_insert(txn, &o);
	if (rc) {
		catalog_txn_abort(txn);
	} else {
		txn_commit(txn);
		if (ino)
			*ino = o.ino;
	}
	object_clear(&o);
	return rc;
}

static uint64_t insert_ok(enum object_kind kind, uint64_t parent, const char *name)
{
	uint64_t ino = 0;
	int rc = insert_with_id(kind, parent, name, NULL, &ino);

	cr_assert_eq(rc, 0, "insert %s: %s", name, strerror(-rc));
	return ino;
}

/* Load ino in a read transaction of its own. */
static int get_one(uint64_t ino, struct object *o)
{
	struct catalog_txn *txn = txn_begin(false);
	int rc = catalog_object_get(txn, ino, o);

	catalog_txn_abort(txn);
	return rc;
}

static int lookup_one(uint64_t parent, enum object_kind kind, const char *name, uint64_t *ino)
{
	struct catalog_txn *txn = txn_begin(false);
	int rc = catalog_child_lookup(txn, parent, kind, name, ino);

	catalog_txn_abort(txn);
	return rc;
}

static int id_lookup_one(const char *id, uint64_t *ino)
{
	struct catalog_txn *txn = txn_begin(false);
	int rc = catalog_id_lookup(txn, id, ino);

	catalog_txn_abort(txn);
	return rc;
}

/* A record with every field set to something other than its zero value. */
static void obj_fill_all(struct object *o)
{
	object_init(o);
	o->kind = OBJ_SNAPSHOT;
	o->parent = 0x1230;
	o->tenant = 0x10;
	snprintf(o->id, sizeof(o->id), "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9");
	snprintf(o->name, sizeof(o->name), "sn\xc3\xa4pshot \"one\" \\ \xe6\x97\xa5\xe6\x9c\xac");
	snprintf(o->status, sizeof(o->status), "error_deleting");
	snprintf(o->op, sizeof(o->op), "extend");
	snprintf(o->op_arg, sizeof(o->op_arg), "3221225472");
	snprintf(o->description, sizeof(o->description), "line one\nline \xe2\x82\xac two");
	o->has_description = true;
	json_object_set_new(o->metadata, "k1", json_string("v1"));
	json_object_set_new(o->metadata, "key two", json_string("v\xc3\xa4lue"));
	json_object_set_new(o->metadata, "empty", json_string(""));
	json_object_set_new(o->metadata, "a:b.c-d_e", json_string("x"));
	o->uid = 4000000000u;
	o->gid = 4242;
	o->mode = 02770;
	o->created_at = 1795362092123456LL;
	o->updated_at = 1795362093654321LL;
	o->size = (1ULL << 62) | 12345;
	snprintf(o->format, sizeof(o->format), "qcow2");
	snprintf(
		o->file, sizeof(o->file),
		"volume-11111111-2222-4333-8444-555555555555.0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9");
	snprintf(o->backing, sizeof(o->backing), "volume-11111111-2222-4333-8444-555555555555");
	snprintf(o->link_id, sizeof(o->link_id), "99999999-8888-4777-a666-555555555555");
	o->progress = 42;
}

static void assert_obj_eq(const struct object *a, const struct object *b)
{
	cr_assert_eq(a->ino, b->ino, "ino %llu != %llu", (unsigned long long)a->ino,
		     (unsigned long long)b->ino);
	cr_assert_eq(a->kind, b->kind);
	cr_assert_eq(a->parent, b->parent);
	cr_assert_eq(a->tenant, b->tenant);
	cr_assert_str_eq(a->id, b->id);
	cr_assert_str_eq(a->name, b->name);
	cr_assert_str_eq(a->status, b->status);
	cr_assert_str_eq(a->op, b->op);
	cr_assert_str_eq(a->op_arg, b->op_arg);
	cr_assert_eq(a->has_description, b->has_description);
	cr_assert_str_eq(a->description, b->description);
	cr_assert(json_equal(a->metadata, b->metadata), "metadata differ");
	cr_assert_eq(a->uid, b->uid);
	cr_assert_eq(a->gid, b->gid);
	cr_assert_eq(a->mode, b->mode);
	cr_assert_eq(a->created_at, b->created_at);
	cr_assert_eq(a->updated_at, b->updated_at);
	cr_assert_eq(a->size, b->size);
	cr_assert_str_eq(a->format, b->format);
	cr_assert_str_eq(a->file, b->file);
	cr_assert_str_eq(a->backing, b->backing);
	cr_assert_str_eq(a->link_id, b->link_id);
	cr_assert_eq(a->progress, b->progress);
}

/* Open and close */

Test(catalog_open, missing_directory)
{
	char missing[PATH_MAX + 16];
	struct catalog *c = NULL;

	test_log_setup();
	tmpdir_make(dir, sizeof(dir), "cat");
	snprintf(missing, sizeof(missing), "%s/nope", dir);
	cr_assert_lt(catalog_open(&c, missing, MAP_BIG, NULL), 0);
	cr_assert_null(c);
}

Test(catalog, empty)
{
	struct catalog_txn *txn = txn_begin(false);
	struct object o;
	uint64_t ino = 77;

	cr_assert_eq(catalog_object_get(txn, 16, &o), -ENOENT);
	/* a failed get leaves an empty, valid record */
	cr_assert_eq(o.kind, OBJ_NONE);
	cr_assert_str_eq(o.name, "");
	cr_assert(json_is_object(o.metadata) && json_object_size(o.metadata) == 0);
	object_clear(&o);
	cr_assert_eq(catalog_child_lookup(txn, 0, OBJ_TENANT, "t", &ino), -ENOENT);
	cr_assert_eq(catalog_id_lookup(txn, "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9", &ino), -ENOENT);
	cr_assert_eq(ino, 77);
	cr_assert_not(catalog_children_any(txn, 0, OBJ_TENANT));
	catalog_txn_abort(txn);
	catalog_txn_abort(NULL);
}

/* Records */

Test(object, init_clear_copy)
{
	struct object a, b;

	obj_fill_all(&a);
	object_init(&b);
	object_copy(&b, &a);
	assert_obj_eq(&a, &b);
	/* deep: the copy's metadata is its own */
	cr_assert_neq(a.metadata, b.metadata);
	json_object_set_new(b.metadata, "k1", json_string("changed"));
	cr_assert_str_eq(json_string_value(json_object_get(a.metadata, "k1")), "v1");
	object_clear(&a);
	object_clear(&b);
	cr_assert_null(a.metadata);
	object_init(&a);
	cr_assert(json_is_object(a.metadata));
	cr_assert_eq(a.ino, 0);
	cr_assert_eq(a.has_description, false);
	object_clear(&a);
}

Test(catalog, insert_get_every_field)
{
	struct catalog_txn *txn = txn_begin(true);
	struct object in, out;

	obj_fill_all(&in);
	cr_assert_eq(catalog_object_insert(txn, &in), 0);
	cr_assert_neq(in.ino, 0, "insert did not set ino");
	/* visible inside the write transaction */
	cr_assert_eq(catalog_object_get(txn, in.ino, &out), 0);
	assert_obj_eq(&in, &out);
	object_clear(&out);
	txn_commit(txn);

	cr_assert_eq(get_one(in.ino, &out), 0);
	assert_obj_eq(&in, &out);
	object_clear(&out);
	/* the slot bits of an inode are ignored */
	cr_assert_eq(get_one(in.ino | 5, &out), 0);
	assert_obj_eq(&in, &out);
	object_clear(&out);
	object_clear(&in);
}

Test(catalog, longest_strings)
{
	struct catalog_txn *txn = txn_begin(true);
	struct object in, out;

	obj_fill_all(&in);
	memset(in.name, 'n', 255), in.name[255] = '\0';
	memset(in.op_arg, 'a', 255), in.op_arg[255] = '\0';
	memset(in.description, 'd', 255), in.description[255] = '\0';
	memset(in.file, 'f', 255), in.file[255] = '\0';
	memset(in.backing, 'b', 255), in.backing[255] = '\0';
	memset(in.status, 's', 31), in.status[31] = '\0';
	memset(in.op, 'o', 15), in.op[15] = '\0';
	memset(in.format, 'r', 7), in.format[7] = '\0';
	cr_assert_eq(catalog_object_insert(txn, &in), 0);
	txn_commit(txn);
	cr_assert_eq(get_one(in.ino, &out), 0);
	assert_obj_eq(&in, &out);
	object_clear(&out);
	object_clear(&in);
}

Test(catalog, description_null_vs_empty)
{
	struct object a, b, out;
	struct catalog_txn *txn = txn_begin(true);

	obj_make(&a, OBJ_VOLUME, 16, "no-description");
	a.has_description = false;
	obj_make(&b, OBJ_VOLUME, 16, "empty-description");
	b.has_description = true;
	b.description[0] = '\0';
	cr_assert_eq(catalog_object_insert(txn, &a), 0);
	cr_assert_eq(catalog_object_insert(txn, &b), 0);
	txn_commit(txn);

	cr_assert_eq(get_one(a.ino, &out), 0);
	cr_assert_eq(out.has_description, false);
	cr_assert_str_eq(out.description, "");
	object_clear(&out);
	cr_assert_eq(get_one(b.ino, &out), 0);
	cr_assert_eq(out.has_description, true);
	cr_assert_str_eq(out.description, "");
	object_clear(&out);
	object_clear(&a);
	object_clear(&b);
}

Test(catalog, update)
{
	struct catalog_txn *txn;
	struct object o, out;
	uint64_t ino = insert_ok(OBJ_VOLUME, 16, "v");

	cr_assert_eq(get_one(ino, &o), 0);
	snprintf(o.status, sizeof(o.status), "in-use");
	o.size = 5 * GIB;
	o.has_description = true;
	snprintf(o.description, sizeof(o.description), "new");
	json_object_set_new(o.metadata, "m", json_string("1"));
	txn = txn_begin(true);
	cr_assert_eq(catalog_object_update(txn, &o), 0);
	txn_commit(txn);
	cr_assert_eq(get_one(ino, &out), 0);
	assert_obj_eq(&o, &out);
	object_clear(&out);
	object_clear(&o);
}

/* Names and ids */

Test(catalog, name_unique_per_parent_and_kind)
{
	uint64_t a, b, c, d, ino;

	a = insert_ok(OBJ_VOLUME, 16, "x");
	cr_assert_eq(insert_with_id(OBJ_VOLUME, 16, "x", NULL, NULL), -EEXIST);
	/* the same name under another kind or parent is another name */
	b = insert_ok(OBJ_GROUP, 16, "x");
	c = insert_ok(OBJ_VOLUME, 32, "x");
	d = insert_ok(OBJ_TENANT, 0, "x");
	cr_assert(a != b && b != c && c != d && a != c && a != d && b != d);
	cr_assert_eq(lookup_one(16, OBJ_VOLUME, "x", &ino), 0);
	cr_assert_eq(ino, a);
	cr_assert_eq(lookup_one(16, OBJ_GROUP, "x", &ino), 0);
	cr_assert_eq(ino, b);
	cr_assert_eq(lookup_one(32, OBJ_VOLUME, "x", &ino), 0);
	cr_assert_eq(ino, c);
	cr_assert_eq(lookup_one(0, OBJ_TENANT, "x", &ino), 0);
	cr_assert_eq(ino, d);
	/* names are exact: no case folding, no prefix match */
	cr_assert_eq(lookup_one(16, OBJ_VOLUME, "X", &ino), -ENOENT);
	cr_assert_eq(lookup_one(16, OBJ_VOLUME, "x ", &ino), -ENOENT);
	cr_assert_eq(lookup_one(16, OBJ_VOLUME, "", &ino), -ENOENT);
	cr_assert_eq(lookup_one(16, OBJ_SNAPSHOT, "x", &ino), -ENOENT);
	cr_assert_eq(lookup_one(48, OBJ_VOLUME, "x", &ino), -ENOENT);
}

Test(catalog, long_name_lookup)
{
	char name[400];
	uint64_t ino = 5;

	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	cr_assert_eq(lookup_one(16, OBJ_VOLUME, name, &ino), -ENOENT);
	cr_assert_eq(ino, 5);
}

Test(catalog, id_unique)
{
	const char *id = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";
	uint64_t a = 0, ino = 0;

	cr_assert_eq(insert_with_id(OBJ_VOLUME, 16, "one", id, &a), 0);
	cr_assert_eq(insert_with_id(OBJ_VOLUME, 16, "two", id, NULL), -EEXIST);
	cr_assert_eq(insert_with_id(OBJ_TENANT, 0, "three", id, NULL), -EEXIST);
	cr_assert_eq(id_lookup_one(id, &ino), 0);
	cr_assert_eq(ino, a);
	/* the failed inserts left nothing behind */
	cr_assert_eq(lookup_one(16, OBJ_VOLUME, "two", &ino), -ENOENT);
	cr_assert_eq(lookup_one(0, OBJ_TENANT, "three", &ino), -ENOENT);
}

Test(catalog, id_lookup)
{
	struct object o, out;
	struct catalog_txn *txn = txn_begin(true);
	uint64_t ino = 9;

	obj_make(&o, OBJ_TENANT, 0, "t");
	cr_assert_eq(catalog_object_insert(txn, &o), 0);
	txn_commit(txn);
	cr_assert_eq(id_lookup_one(o.id, &ino), 0);
	cr_assert_eq(ino, o.ino);
	cr_assert_eq(get_one(ino, &out), 0);
	cr_assert_str_eq(out.id, o.id);
	object_clear(&out);
	ino = 9;
	cr_assert_eq(id_lookup_one("", &ino), -ENOENT);
	cr_assert_eq(id_lookup_one("0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9", &ino), -ENOENT);
	cr_assert_eq(ino, 9);
	object_clear(&o);
}

/* The quick reader: the same plain fields as catalog_object_get(), no
 * metadata, members or description. */
static void assert_brief_eq(uint64_t ino)
{
	struct catalog_txn *txn = txn_begin(false);
	struct object full, brief;

	cr_assert_eq(catalog_object_get(txn, ino, &full), 0);
	cr_assert_eq(catalog_object_get_brief(txn, ino, &brief), 0);
	catalog_txn_abort(txn);
	full.has_description = false;
	full.description[0] = '\0';
	json_object_clear(full.metadata);
	assert_obj_eq(&full, &brief);
	cr_assert_str_eq(full.op_owner, brief.op_owner);
	cr_assert_str_eq(full.attach, brief.attach);
	cr_assert_str_eq(full.consistency, brief.consistency);
	cr_assert_eq(full.merge_state, brief.merge_state);
	cr_assert_null(brief.members);
	cr_assert(json_is_object(brief.metadata) && json_object_size(brief.metadata) == 0);
	object_clear(&full);
	object_clear(&brief);
}

Test(catalog, get_brief)
{
	struct catalog_txn *txn = txn_begin(true);
	struct object plain, escaped, out;

	/* plain strings, nested values and an escaped description: read by
	 * the scanner */
	obj_fill_all(&plain);
	snprintf(plain.name, sizeof(plain.name), "plain name \xc3\xa4");
	plain.members = json_pack("[[ss]{s[i]}]", "a\"b", "c", "x", 1);
	plain.merge_state = 2;
	plain.mode = 0;
	snprintf(plain.attach, sizeof(plain.attach), "/run/q.sock#node-1");
	snprintf(plain.consistency, sizeof(plain.consistency), "frozen");
	json_object_set_new(plain.metadata, "nested \"quote\"", json_string("}]{["));
	/* a name with escapes: read by jansson */
	obj_fill_all(&escaped);
	cr_assert_eq(uuid_generate_str(escaped.id), 0);
	escaped.parent++;
	cr_assert_eq(catalog_object_insert(txn, &plain), 0);
	cr_assert_eq(catalog_object_insert(txn, &escaped), 0);
	txn_commit(txn);
	assert_brief_eq(plain.ino);
	assert_brief_eq(escaped.ino);
	txn = txn_begin(false);
	cr_assert_eq(catalog_object_get_brief(txn, plain.ino + 16 * 100, &out), -ENOENT);
	object_clear(&out);
	catalog_txn_abort(txn);
	object_clear(&plain);
	object_clear(&escaped);
}

/* Commit hook */

struct commits {
	int count;
	struct catalog_change c[16];
	char names[16][256];
};

static void record_commit(void *arg, const struct catalog_change *c)
{
	struct commits *s = arg;

	cr_assert_lt(s->count, 16);
	s->c[s->count] = *c;
	if (c->is_name)
		snprintf(s->names[s->count], sizeof(s->names[0]), "%s", c->name);
	s->c[s->count].name = s->names[s->count];
	s->count++;
}

static const struct catalog_change *find_change(const struct commits *s, bool is_name, uint64_t ino,
						const char *name)
{
	for (int i = 0; i < s->count; i++)
		if (s->c[i].is_name == is_name &&
		    (is_name ? !strcmp(s->c[i].name, name) : s->c[i].ino == ino))
			return &s->c[i];
	return NULL;
}

Test(catalog, commit_hook)
{
	struct commits s = {0};
	struct catalog_txn *txn;
	const struct catalog_change *c;
	struct object o;
	uint64_t ino;

	catalog_set_commit_hook(cat, record_commit, &s);
	ino = insert_ok(OBJ_VOLUME, 16, "v");
	/* a new record; a new name needs no notice */
	cr_assert_eq(s.count, 1);
	c = find_change(&s, false, ino, NULL);
	cr_assert_not_null(c);
	cr_assert_not(c->deleted);
	cr_assert_eq(c->kind, OBJ_VOLUME);
	cr_assert_eq(c->parent, 16);

	/* nothing before the commit, nothing for an abort */
	s.count = 0;
	cr_assert_eq(get_one(ino, &o), 0);
	txn = txn_begin(true);
	o.size = 5;
	cr_assert_eq(catalog_object_update(txn, &o), 0);
	o.size = 6;
	cr_assert_eq(catalog_object_update(txn, &o), 0);
	cr_assert_eq(s.count, 0);
	catalog_txn_abort(txn);
	cr_assert_eq(s.count, 0);

	/* two updates of one record: one notice */
	txn = txn_begin(true);
	cr_assert_eq(catalog_object_update(txn, &o), 0);
	cr_assert_eq(catalog_object_update(txn, &o), 0);
	txn_commit(txn);
	cr_assert_eq(s.count, 1);
	cr_assert_not_null(find_change(&s, false, ino, NULL));

	/* a rename: the old name goes */
	s.count = 0;
	txn = txn_begin(true);
	cr_assert_eq(catalog_object_rename(txn, &o, "w"), 0);
	txn_commit(txn);
	cr_assert_eq(s.count, 2);
	c = find_change(&s, true, 0, "v");
	cr_assert_not_null(c);
	cr_assert(c->deleted);
	cr_assert_eq(c->parent, 16);
	cr_assert_eq(c->kind, OBJ_VOLUME);
	cr_assert_not_null(find_change(&s, false, ino, NULL));

	/* a delete: the record and its name */
	s.count = 0;
	txn = txn_begin(true);
	cr_assert_eq(catalog_object_delete(txn, &o), 0);
	txn_commit(txn);
	cr_assert_eq(s.count, 2);
	cr_assert(find_change(&s, true, 0, "w")->deleted);
	cr_assert(find_change(&s, false, ino, NULL)->deleted);

	/* unset: no more calls */
	s.count = 0;
	catalog_set_commit_hook(cat, NULL, NULL);
	insert_ok(OBJ_VOLUME, 16, "x");
	cr_assert_eq(s.count, 0);
	object_clear(&o);
}

/* Rename */

Test(catalog, rename)
{
	struct catalog_txn *txn;
	struct object o, out;
	uint64_t ino = insert_ok(OBJ_VOLUME, 16, "old"), other = insert_ok(OBJ_VOLUME, 16, "taken");
	uint64_t found = 0;

	insert_ok(OBJ_VOLUME, 32, "new"); /* same name, another parent: no conflict */
	cr_assert_eq(get_one(ino, &o), 0);
	txn = txn_begin(true);
	cr_assert_eq(catalog_object_rename(txn, &o, "new"), 0);
	cr_assert_str_eq(o.name, "new", "rename did not update obj->name");
	txn_commit(txn);
	cr_assert_eq(lookup_one(16, OBJ_VOLUME, "old", &found), -ENOENT);
	cr_assert_eq(lookup_one(16, OBJ_VOLUME, "new", &found), 0);
	cr_assert_eq(found, ino);
	cr_assert_eq(get_one(ino, &out), 0);
	cr_assert_str_eq(out.name, "new");
	cr_assert_str_eq(out.id, o.id);
	object_clear(&out);
	cr_assert_eq(id_lookup_one(o.id, &found), 0);
	cr_assert_eq(found, ino);

	/* a taken name */
	txn = txn_begin(true);
	cr_assert_eq(catalog_object_rename(txn, &o, "taken"), -EEXIST);
	cr_assert_str_eq(o.name, "new", "a failed rename changed obj->name");
	catalog_txn_abort(txn);
	cr_assert_eq(lookup_one(16, OBJ_VOLUME, "taken", &found), 0);
	cr_assert_eq(found, other);
	cr_assert_eq(lookup_one(16, OBJ_VOLUME, "new", &found), 0);
	cr_assert_eq(found, ino);
	object_clear(&o);
}

Test(catalog, rename_aborted)
{
	struct catalog_txn *txn;
	struct object o, out;
	uint64_t ino = insert_ok(OBJ_TENANT, 0, "before"), found;

	cr_assert_eq(get_one(ino, &o), 0);
	txn = txn_begin(true);
	cr_assert_eq(catalog_object_rename(txn, &o, "after"), 0);
	catalog_txn_abort(txn);
	cr_assert_eq(lookup_one(0, OBJ_TENANT, "before", &found), 0);
	cr_assert_eq(found, ino);
	cr_assert_eq(lookup_one(0, OBJ_TENANT, "after", &found), -ENOENT);
	cr_assert_eq(get_one(ino, &out), 0);
	cr_assert_str_eq(out.name, "before");
	object_clear(&out);
	object_clear(&o);
}

/* Delete */

Test(catalog, delete)
{
	struct catalog_txn *txn;
	struct object o, out;
	uint64_t ino = insert_ok(OBJ_VOLUME, 16, "doomed"),
		 keep = insert_ok(OBJ_VOLUME, 16, "kept");
	uint64_t found, again;

	cr_assert_eq(get_one(ino, &o), 0);
	txn = txn_begin(true);
	cr_assert_eq(catalog_object_delete(txn, &o), 0);
	txn_commit(txn);
	cr_assert_eq(get_one(ino, &out), -ENOENT);
	object_clear(&out);
	cr_assert_eq(lookup_one(16, OBJ_VOLUME, "doomed", &found), -ENOENT);
	cr_assert_eq(id_lookup_one(o.id, &found), -ENOENT);
	/* the other one is untouched */
	cr_assert_eq(lookup_one(16, OBJ_VOLUME, "kept", &found), 0);
	cr_assert_eq(found, keep);
	/* a deleted object's name can be used again, by a new inode */
	again = insert_ok(OBJ_VOLUME, 16, "doomed");
	cr_assert_neq(again, ino);
	object_clear(&o);

	/* deleting the last child empties (parent, kind) */
	cr_assert_eq(get_one(keep, &o), 0);
	txn = txn_begin(true);
	cr_assert_eq(catalog_object_delete(txn, &o), 0);
	cr_assert_eq(catalog_object_get(txn, again, &out), 0);
	cr_assert_eq(catalog_object_delete(txn, &out), 0);
	cr_assert_not(catalog_children_any(txn, 16, OBJ_VOLUME));
	txn_commit(txn);
	object_clear(&out);
	object_clear(&o);
	txn = txn_begin(false);
	cr_assert_not(catalog_children_any(txn, 16, OBJ_VOLUME));
	catalog_txn_abort(txn);
}

/* Iteration */

struct seen {
	int count, stop_at, ret;
	char names[16][256];
	uint64_t inos[16];
};

static int collect_child(const char *name, uint64_t ino, void *arg)
{
	struct seen *s = arg;

	cr_assert_lt(s->count, 16);
	snprintf(s->names[s->count], sizeof(s->names[0]), "%s", name);
	s->inos[s->count] = ino;
	s->count++;
	return s->count == s->stop_at ? s->ret : 0;
}

Test(catalog, children_foreach_order)
{
	static const char *const inserted[] = {"b", "a", "c", "aa", "B", "a b", "\xc3\xa9"};
	static const char *const sorted[] = {"B", "a", "a b", "aa", "b", "c", "\xc3\xa9"};
	uint64_t inos[7];
	struct seen s = {0};
	struct catalog_txn *txn;

	for (int i = 0; i < 7; i++)
		inos[i] = insert_ok(OBJ_VOLUME, 16, inserted[i]);
	/* neighbours that must not be listed */
	insert_ok(OBJ_TENANT, 16, "t");
	insert_ok(OBJ_SNAPSHOT, 16, "s");
	insert_ok(OBJ_VOLUME, 0, "v0");
	insert_ok(OBJ_VOLUME, 32, "v32");
	insert_ok(OBJ_VOLUME, 16ULL << 8, "shifted");

	txn = txn_begin(false);
	cr_assert_eq(catalog_children_foreach(txn, 16, OBJ_VOLUME, collect_child, &s), 0);
	catalog_txn_abort(txn);
	cr_assert_eq(s.count, 7);
	for (int i = 0; i < 7; i++) {
		cr_assert_str_eq(s.names[i], sorted[i], "entry %d", i);
		for (int j = 0; j < 7; j++)
			if (!strcmp(inserted[j], sorted[i]))
				cr_assert_eq(s.inos[i], inos[j], "ino of %s", sorted[i]);
	}
}

Test(catalog, children_foreach_early_stop)
{
	struct seen s = {.stop_at = 2, .ret = 7};
	struct catalog_txn *txn;

	insert_ok(OBJ_GROUP, 16, "g1");
	insert_ok(OBJ_GROUP, 16, "g2");
	insert_ok(OBJ_GROUP, 16, "g3");
	txn = txn_begin(false);
	cr_assert_eq(catalog_children_foreach(txn, 16, OBJ_GROUP, collect_child, &s), 7);
	cr_assert_eq(s.count, 2);
	cr_assert_str_eq(s.names[1], "g2");
	s = (struct seen){.stop_at = 1, .ret = -ENOMEM};
	cr_assert_eq(catalog_children_foreach(txn, 16, OBJ_GROUP, collect_child, &s), -ENOMEM);
	cr_assert_eq(s.count, 1);
	/* nothing to list: fn never called */
	s = (struct seen){0};
	cr_assert_eq(catalog_children_foreach(txn, 16, OBJ_VOLUME, collect_child, &s), 0);
	cr_assert_eq(s.count, 0);
	catalog_txn_abort(txn);
}

Test(catalog, children_any)
{
	struct catalog_txn *txn;

	insert_ok(OBJ_VOLUME, 16, "v");
	insert_ok(OBJ_TENANT, 0, "t");
	txn = txn_begin(false);
	cr_assert(catalog_children_any(txn, 16, OBJ_VOLUME));
	cr_assert(catalog_children_any(txn, 0, OBJ_TENANT));
	cr_assert_not(catalog_children_any(txn, 16, OBJ_SNAPSHOT));
	cr_assert_not(catalog_children_any(txn, 16, OBJ_GROUP));
	cr_assert_not(catalog_children_any(txn, 32, OBJ_VOLUME));
	cr_assert_not(catalog_children_any(txn, 0, OBJ_VOLUME));
	catalog_txn_abort(txn);
}

struct id_seen {
	int count, stop_at;
	char ids[8][UUID_STR_LEN];
	uint64_t inos[8];
};

static int collect_id(const char *id, uint64_t ino, void *arg)
{
	struct id_seen *s = arg;

	cr_assert_lt(s->count, 8);
	snprintf(s->ids[s->count], sizeof(s->ids[0]), "%s", id);
	s->inos[s->count] = ino;
	s->count++;
	return s->count == s->stop_at ? 3 : 0;
}

Test(catalog, ids_foreach)
{
	static const char *const ids[] = {
		"cccccccc-0000-4000-8000-000000000000",
		"aaaaaaaa-0000-4000-8000-000000000000",
		"bbbbbbbb-0000-4000-8000-000000000000",
		"00000000-0000-4000-8000-000000000000",
	};
	static const int order[] = {3, 1, 2, 0};
	uint64_t inos[4];
	struct id_seen s = {0};
	struct catalog_txn *txn;
	char name[16];

	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "o%d", i);
		cr_assert_eq(insert_with_id(OBJ_VOLUME, 16, name, ids[i], &inos[i]), 0);
	}
	txn = txn_begin(false);
	cr_assert_eq(catalog_ids_foreach(txn, collect_id, &s), 0);
	cr_assert_eq(s.count, 4);
	for (int i = 0; i < 4; i++) {
		cr_assert_str_eq(s.ids[i], ids[order[i]]);
		cr_assert_eq(s.inos[i], inos[order[i]]);
	}
	s = (struct id_seen){.stop_at = 3};
	cr_assert_eq(catalog_ids_foreach(txn, collect_id, &s), 3);
	cr_assert_eq(s.count, 3);
	catalog_txn_abort(txn);
}

struct obj_seen {
	int count, stop_at;
	uint64_t inos[8];
	char names[8][256];
	enum object_kind kinds[8];
};

static int collect_obj(const struct object *o, void *arg)
{
	struct obj_seen *s = arg;

	cr_assert_lt(s->count, 8);
	s->inos[s->count] = o->ino;
	s->kinds[s->count] = o->kind;
	snprintf(s->names[s->count], sizeof(s->names[0]), "%s", o->name);
	s->count++;
	return s->count == s->stop_at ? 9 : 0;
}

Test(catalog, objects_foreach)
{
	uint64_t t = insert_ok(OBJ_TENANT, 0, "t");
	uint64_t v = insert_ok(OBJ_VOLUME, t, "v");
	uint64_t g = insert_ok(OBJ_GROUP, t, "g");
	struct obj_seen s = {0};
	struct catalog_txn *txn = txn_begin(false);

	cr_assert_eq(catalog_objects_foreach(txn, collect_obj, &s), 0);
	cr_assert_eq(s.count, 3);
	/* in inode order, each record decoded */
	cr_assert_eq(s.inos[0], t);
	cr_assert_eq(s.inos[1], v);
	cr_assert_eq(s.inos[2], g);
	cr_assert_str_eq(s.names[0], "t");
	cr_assert_str_eq(s.names[1], "v");
	cr_assert_str_eq(s.names[2], "g");
	cr_assert_eq(s.kinds[0], OBJ_TENANT);
	cr_assert_eq(s.kinds[1], OBJ_VOLUME);
	cr_assert_eq(s.kinds[2], OBJ_GROUP);
	s = (struct obj_seen){.stop_at = 2};
	cr_assert_eq(catalog_objects_foreach(txn, collect_obj, &s), 9);
	cr_assert_eq(s.count, 2);
	catalog_txn_abort(txn);
}

/* Inode numbers */

Test(catalog, inode_numbers)
{
	uint64_t inos[6];
	struct catalog_txn *txn;
	struct object o;
	uint64_t found;
	char name[16];

	for (int i = 0; i < 6; i++) {
		snprintf(name, sizeof(name), "i%d", i);
		inos[i] = insert_ok(i % 2 ? OBJ_VOLUME : OBJ_TENANT, i % 2 ? 16 : 0, name);
		cr_assert_eq(inos[i] & INO_SLOT_MASK, 0, "ino %llu is not a multiple of 16",
			     (unsigned long long)inos[i]);
		cr_assert_eq(inos[i] % 16, 0);
		cr_assert_geq(inos[i], 16, "ino %llu collides with the fixed inodes",
			      (unsigned long long)inos[i]);
		if (i)
			cr_assert_gt(inos[i], inos[i - 1]);
	}
	/* delete the newest: its number is not handed out again */
	cr_assert_eq(get_one(inos[5], &o), 0);
	txn = txn_begin(true);
	cr_assert_eq(catalog_object_delete(txn, &o), 0);
	txn_commit(txn);
	object_clear(&o);
	found = insert_ok(OBJ_VOLUME, 16, "after-delete");
	cr_assert_gt(found, inos[5]);
	cr_assert_eq(found % 16, 0);
	inos[5] = found;

	/* nor after a remount, and the others keep theirs */
	cr_assert_eq(get_one(inos[5], &o), 0);
	txn = txn_begin(true);
	cr_assert_eq(catalog_object_delete(txn, &o), 0);
	txn_commit(txn);
	object_clear(&o);
	cat_reopen();
	for (int i = 0; i < 5; i++) {
		snprintf(name, sizeof(name), "i%d", i);
		cr_assert_eq(
			lookup_one(i % 2 ? 16 : 0, i % 2 ? OBJ_VOLUME : OBJ_TENANT, name, &found),
			0);
		cr_assert_eq(found, inos[i], "%s changed ino across reopen", name);
	}
	found = insert_ok(OBJ_VOLUME, 16, "after-reopen");
	cr_assert_gt(found, inos[5], "ino %llu reused after reopen", (unsigned long long)found);
}

/* Transactions and persistence */

Test(catalog, persistence)
{
	struct catalog_txn *txn = txn_begin(true);
	struct object in, out;
	uint64_t found;

	obj_fill_all(&in);
	cr_assert_eq(catalog_object_insert(txn, &in), 0);
	txn_commit(txn);
	cat_reopen();
	cr_assert_eq(get_one(in.ino, &out), 0);
	assert_obj_eq(&in, &out);
	object_clear(&out);
	cr_assert_eq(lookup_one(in.parent, in.kind, in.name, &found), 0);
	cr_assert_eq(found, in.ino);
	cr_assert_eq(id_lookup_one(in.id, &found), 0);
	cr_assert_eq(found, in.ino);
	object_clear(&in);
}

Test(catalog, abort_discards)
{
	struct catalog_txn *txn;
	struct object a, o, out;
	uint64_t found, kept = insert_ok(OBJ_VOLUME, 16, "kept");

	/* insert, aborted */
	txn = txn_begin(true);
	obj_make(&a, OBJ_VOLUME, 16, "aborted");
	cr_assert_eq(catalog_object_insert(txn, &a), 0);
	catalog_txn_abort(txn);
	cr_assert_eq(lookup_one(16, OBJ_VOLUME, "aborted", &found), -ENOENT);
	cr_assert_eq(id_lookup_one(a.id, &found), -ENOENT);
	cr_assert_eq(get_one(a.ino, &out), -ENOENT);
	object_clear(&out);

	/* update, aborted */
	cr_assert_eq(get_one(kept, &o), 0);
	snprintf(o.status, sizeof(o.status), "error");
	txn = txn_begin(true);
	cr_assert_eq(catalog_object_update(txn, &o), 0);
	catalog_txn_abort(txn);
	cr_assert_eq(get_one(kept, &out), 0);
	cr_assert_str_eq(out.status, "available");
	object_clear(&out);

	/* delete, aborted */
	txn = txn_begin(true);
	cr_assert_eq(catalog_object_delete(txn, &o), 0);
	catalog_txn_abort(txn);
	cr_assert_eq(get_one(kept, &out), 0);
	object_clear(&out);
	cr_assert_eq(lookup_one(16, OBJ_VOLUME, "kept", &found), 0);
	cr_assert_eq(found, kept);

	/* and after a remount, too */
	cat_reopen();
	cr_assert_eq(lookup_one(16, OBJ_VOLUME, "aborted", &found), -ENOENT);
	cr_assert_eq(get_one(kept, &out), 0);
	cr_assert_str_eq(out.status, "available");
	object_clear(&out);
	object_clear(&o);
	object_clear(&a);
}

Test(catalog, read_txn_is_a_snapshot)
{
	struct catalog_txn *reader = txn_begin(false), *other;
	uint64_t found, ino = 0;

	cr_assert_eq(insert_with_id(OBJ_VOLUME, 16, "late", NULL, &ino), 0);
	/* the older read transaction does not see the commit... */
	cr_assert_eq(catalog_child_lookup(reader, 16, OBJ_VOLUME, "late", &found), -ENOENT);
	cr_assert_not(catalog_children_any(reader, 16, OBJ_VOLUME));
	/* ...a newer one does */
	other = txn_begin(false);
	cr_assert_eq(catalog_child_lookup(other, 16, OBJ_VOLUME, "late", &found), 0);
	cr_assert_eq(found, ino);
	catalog_txn_abort(other);
	catalog_txn_abort(reader);
}

Test(catalog, commit_read_txn)
{
	struct catalog_txn *txn;
	uint64_t found;

	insert_ok(OBJ_TENANT, 0, "t");
	txn = txn_begin(false);
	cr_assert_eq(catalog_child_lookup(txn, 0, OBJ_TENANT, "t", &found), 0);
	/* a read transaction may be committed: it is simply ended */
	cr_assert_eq(catalog_txn_commit(txn), 0);
}

/* A full catalogue */

#define FILL_MAX 5000

/* Insert records of about 1 KiB, each in a transaction of its own, until
 * one fails; inos gets the committed ones. Returns the failure. */
static int fill(uint64_t *inos, int *n)
{
	int rc = 0;

	*n = 0;
	for (int i = 0; i < FILL_MAX; i++) {
		struct catalog_txn *txn = txn_begin(true);
		struct object o;

		obj_make(&o, OBJ_VOLUME, 16, "");
		snprintf(o.name, sizeof(o.name), "volume-%05d", i);
		memset(o.description, 'd', 255);
		o.description[255] = '\0';
		o.has_description = true;
		json_object_set_new(o.metadata, "k", json_string(o.description));
		rc = catalog_object_insert(txn, &o);
		if (rc) {
			catalog_txn_abort(txn);
		} else {
			rc = catalog_txn_commit(txn);
			if (!rc)
				inos[(*n)++] = o.ino;
		}
		object_clear(&o);
		if (rc)
			break;
	}
	return rc;
}

/* Every one of the n records fill() made is there, by ino, name and id. */
static void assert_filled(const uint64_t *inos, int n)
{
	struct catalog_txn *txn = txn_begin(false);
	struct obj_seen s = {.stop_at = 1};
	char name[32];
	uint64_t found;

	for (int i = 0; i < n; i++) {
		struct object o;

		snprintf(name, sizeof(name), "volume-%05d", i);
		cr_assert_eq(catalog_object_get(txn, inos[i], &o), 0, "%s lost", name);
		cr_assert_str_eq(o.name, name);
		cr_assert_eq(catalog_child_lookup(txn, 16, OBJ_VOLUME, name, &found), 0);
		cr_assert_eq(found, inos[i]);
		cr_assert_eq(catalog_id_lookup(txn, o.id, &found), 0);
		cr_assert_eq(found, inos[i]);
		object_clear(&o);
	}
	cr_assert_eq(catalog_objects_foreach(txn, collect_obj, &s), 9);
	/* the insert that failed left no name behind */
	snprintf(name, sizeof(name), "volume-%05d", n);
	cr_assert_eq(catalog_child_lookup(txn, 16, OBJ_VOLUME, name, &found), -ENOENT);
	catalog_txn_abort(txn);
}

Test(catalog_full, enospc)
{
	uint64_t inos[FILL_MAX];
	int n, rc = fill(inos, &n);

	cr_assert_eq(rc, -ENOSPC, "after %d inserts: %d (%s), not -ENOSPC", n, rc, strerror(-rc));
	cr_assert_gt(n, 0, "not a single record fitted in %llu bytes",
		     (unsigned long long)MAP_SMALL);
	assert_filled(inos, n);
	/* still full: a second try fails the same way */
	cr_assert_eq(insert_with_id(OBJ_TENANT, 0, "t", NULL, NULL), -ENOSPC);

	/* and still readable after a remount of the same size */
	catalog_close(cat);
	cat = NULL;
	cat_open(MAP_SMALL);
	assert_filled(inos, n);
}

/* Full for new objects, but updates and deletes of existing records still
 * fit (catalog.h: the reserve keeps them possible). */
Test(catalog_full, update_and_delete_when_full)
{
	uint64_t inos[FILL_MAX];
	struct catalog_txn *txn;
	struct object o, out;
	int n;

	cr_assert_eq(fill(inos, &n), -ENOSPC);
	cr_assert_geq(n, 2);
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < n; i++) {
			cr_assert_eq(get_one(inos[i], &o), 0);
			snprintf(o.status, sizeof(o.status), "error_deleting");
			snprintf(o.op, sizeof(o.op), "delete");
			txn = txn_begin(true);
			cr_assert_eq(catalog_object_update(txn, &o), 0, "update %d", i);
			txn_commit(txn);
			object_clear(&o);
		}
	}
	cr_assert_eq(get_one(inos[n - 1], &out), 0);
	cr_assert_str_eq(out.status, "error_deleting");
	object_clear(&out);
	for (int i = 0; i < n; i++) {
		cr_assert_eq(get_one(inos[i], &o), 0);
		txn = txn_begin(true);
		cr_assert_eq(catalog_object_delete(txn, &o), 0, "delete %d", i);
		txn_commit(txn);
		object_clear(&o);
	}
	txn = txn_begin(false);
	cr_assert_not(catalog_children_any(txn, 16, OBJ_VOLUME));
	catalog_txn_abort(txn);
}

/* Deleting records makes room again: a catalogue emptied after it was full
 * is not "within a small reserve of full" and takes new objects. */
Test(catalog_full, room_again_after_deletes)
{
	uint64_t inos[FILL_MAX], ino = 0;
	struct catalog_txn *txn;
	struct object o;
	int n, rc;

	cr_assert_eq(fill(inos, &n), -ENOSPC);
	for (int i = 0; i < n; i++) {
		cr_assert_eq(get_one(inos[i], &o), 0);
		txn = txn_begin(true);
		cr_assert_eq(catalog_object_delete(txn, &o), 0);
		txn_commit(txn);
		object_clear(&o);
	}
	rc = insert_with_id(OBJ_TENANT, 0, "after-emptying", NULL, &ino);
	cr_assert_eq(rc, 0, "the catalogue is empty, yet insert answers %d (%s)", rc,
		     strerror(-rc));
}

/* The smallest map options_finalize() accepts: an insert that does not fit
 * fails cleanly, and the catalogue stays readable. */
Test(catalog_open, smallest_map)
{
	struct catalog_txn *txn;
	uint64_t found;
	int rc;

	test_log_setup();
	tmpdir_make(dir, sizeof(dir), "cat");
	cat_open(MAP_MIN);
	rc = insert_with_id(OBJ_TENANT, 0, "t", NULL, NULL);
	cr_assert(rc == 0 || rc == -ENOSPC, "insert: %d", rc);
	txn = txn_begin(false);
	cr_assert_eq(catalog_child_lookup(txn, 0, OBJ_TENANT, "t", &found), rc ? -ENOENT : 0);
	catalog_txn_abort(txn);
}

/* Concurrent readers and one writer */

#define WRITER_TXNS 120
#define READERS 3

struct reader_state {
	pthread_t thread;
	atomic_bool *stop;
	int rounds, errors;
	char first_error[256];
	int last_count;
};

struct count_arg {
	struct catalog_txn *txn;
	int count, bad;
};

static int check_child(const char *name, uint64_t ino, void *arg)
{
	struct count_arg *c = arg;
	struct object o;

	/* every name in a snapshot has its record in the same snapshot */
	if (catalog_object_get(c->txn, ino, &o) || strcmp(o.name, name) || o.kind != OBJ_VOLUME)
		c->bad++;
	object_clear(&o);
	c->count++;
	return 0;
}

static int count_id(const char *id, uint64_t ino, void *arg)
{
	(void)id;
	(void)ino;
	((struct count_arg *)arg)->count++;
	return 0;
}

static int count_obj(const struct object *o, void *arg)
{
	(void)o;
	((struct count_arg *)arg)->count++;
	return 0;
}

static void reader_fail(struct reader_state *r, const char *what, int value)
{
	if (!r->errors++)
		snprintf(r->first_error, sizeof(r->first_error), "round %d: %s (%d)", r->rounds,
			 what, value);
}

static void *reader_main(void *arg)
{
	struct reader_state *r = arg;

	r->last_count = 0;
	for (;;) {
		/* one more round after the writer's last commit */
		bool done = atomic_load(r->stop);
		struct catalog_txn *txn;
		struct count_arg children = {0}, ids = {0}, objs = {0};
		int rc = catalog_txn_begin(cat, false, &txn);

		if (rc) {
			reader_fail(r, "begin", rc);
			break;
		}
		children.txn = txn;
		rc = catalog_children_foreach(txn, 16, OBJ_VOLUME, check_child, &children);
		if (rc)
			reader_fail(r, "children_foreach", rc);
		rc = catalog_ids_foreach(txn, count_id, &ids);
		if (rc)
			reader_fail(r, "ids_foreach", rc);
		rc = catalog_objects_foreach(txn, count_obj, &objs);
		if (rc)
			reader_fail(r, "objects_foreach", rc);
		catalog_txn_abort(txn);
		if (children.bad)
			reader_fail(r, "name without its record", children.bad);
		/* the writer adds two objects per transaction */
		if (children.count % 2)
			reader_fail(r, "half a transaction seen", children.count);
		if (ids.count != children.count || objs.count != children.count)
			reader_fail(r, "names, ids and records disagree", ids.count - objs.count);
		if (children.count < r->last_count)
			reader_fail(r, "went back in time", children.count);
		r->last_count = children.count;
		r->rounds++;
		if (done && r->rounds >= 5)
			break;
	}
	return NULL;
}

Test(catalog, concurrent_readers)
{
	struct reader_state readers[READERS];
	atomic_bool stop = false;

	memset(readers, 0, sizeof(readers));
	for (int i = 0; i < READERS; i++) {
		readers[i].stop = &stop;
		cr_assert_eq(pthread_create(&readers[i].thread, NULL, reader_main, &readers[i]), 0);
	}
	for (int t = 0; t < WRITER_TXNS; t++) {
		struct catalog_txn *txn;
		int rc = catalog_txn_begin(cat, true, &txn);

		if (rc)
			break;
		for (int k = 0; k < 2 && !rc; k++) {
			struct object o;
			char name[32];

			snprintf(name, sizeof(name), "n%04d-%d", t, k);
			obj_make(&o, OBJ_VOLUME, 16, name);
			rc = catalog_object_insert(txn, &o);
			object_clear(&o);
		}
		if (rc) {
			catalog_txn_abort(txn);
			atomic_store(&stop, true);
			cr_assert_fail("writer: insert %d: %s", t, strerror(-rc));
		}
		rc = catalog_txn_commit(txn);
		if (rc) {
			atomic_store(&stop, true);
			cr_assert_fail("writer: commit %d: %s", t, strerror(-rc));
		}
	}
	atomic_store(&stop, true);
	for (int i = 0; i < READERS; i++) {
		pthread_join(readers[i].thread, NULL);
		cr_assert_eq(readers[i].errors, 0, "reader %d: %d errors, first: %s", i,
			     readers[i].errors, readers[i].first_error);
		cr_assert_gt(readers[i].rounds, 0);
		cr_assert_eq(readers[i].last_count, 2 * WRITER_TXNS,
			     "reader %d finally saw %d objects", i, readers[i].last_count);
	}
}

/* A reader beside the writer (snapfs-check beside a mount): read-only,
 * sees what the writer committed, never writes; the writer goes on. */
Test(catalog, open_readonly_beside_the_writer)
{
	struct catalog *ro = NULL;
	struct catalog_txn *txn;
	struct catalog_usage u;
	struct object o;
	uint64_t t = insert_ok(OBJ_TENANT, 0, "acme"), found = 0;
	int rc = catalog_open_readonly(&ro, dir, NULL);

	cr_assert_eq(rc, 0, "catalog_open_readonly: %s", strerror(-rc));
	cr_assert_eq(catalog_txn_begin(ro, true, &txn), -EROFS, "no write transaction");
	cr_assert_eq(catalog_txn_begin(ro, false, &txn), 0);
	cr_assert_eq(catalog_child_lookup(txn, 0, OBJ_TENANT, "acme", &found), 0);
	cr_assert_eq(found, t);
	cr_assert_eq(catalog_object_get(txn, t, &o), 0);
	cr_assert_str_eq(o.name, "acme");
	object_clear(&o);
	catalog_txn_abort(txn);
	/* the writer still writes while the reader is open */
	insert_ok(OBJ_TENANT, 0, "beta");
	cr_assert_eq(catalog_usage(ro, &u), 0);
	cr_assert_eq(u.records, 2, "the reader sees the writer's commit");
	cr_assert(!u.shared);
	cr_assert_gt(u.map_used, 0);
	cr_assert_leq(u.map_used, u.map_size);
	catalog_close(ro);
}

Test(catalog_open, readonly_without_catalogue)
{
	struct catalog *ro = NULL;

	test_log_setup();
	tmpdir_make(dir, sizeof(dir), "cat");
	cr_assert_lt(catalog_open_readonly(&ro, dir, NULL), 0, "an empty directory has none");
	cr_assert_null(ro);
	rm_rf(dir);
}

/* op_since: stamped when an operation is first written, kept while it
 * runs, gone when it ends. */
Test(catalog, op_since_stamped)
{
	uint64_t t = insert_ok(OBJ_TENANT, 0, "acme");
	struct catalog_txn *txn;
	struct object o;
	int64_t since;

	txn = txn_begin(true);
	cr_assert_eq(catalog_object_get(txn, t, &o), 0);
	cr_assert_eq(o.op_since, 0);
	snprintf(o.op, sizeof(o.op), "create");
	cr_assert_eq(catalog_object_update(txn, &o), 0);
	object_clear(&o);
	txn_commit(txn);
	cr_assert_eq(get_one(t, &o), 0);
	since = o.op_since;
	cr_assert_gt(since, time_now_usec() - 60 * 1000000LL);
	cr_assert_leq(since, time_now_usec());
	object_clear(&o);

	txn = txn_begin(true);
	cr_assert_eq(catalog_object_get(txn, t, &o), 0);
	o.progress = 50;
	cr_assert_eq(catalog_object_update(txn, &o), 0);
	object_clear(&o);
	txn_commit(txn);
	cr_assert_eq(get_one(t, &o), 0);
	cr_assert_eq(o.op_since, since, "kept while the operation runs");
	o.op[0] = '\0';
	object_clear(&o);

	txn = txn_begin(true);
	cr_assert_eq(catalog_object_get(txn, t, &o), 0);
	o.op[0] = '\0';
	cr_assert_eq(catalog_object_update(txn, &o), 0);
	object_clear(&o);
	txn_commit(txn);
	cr_assert_eq(get_one(t, &o), 0);
	cr_assert_eq(o.op_since, 0, "gone when it ends");
	object_clear(&o);
}
