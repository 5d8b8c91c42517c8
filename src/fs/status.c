/* status.c - see status.h. */
#include "status.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catalog.h"
#include "chain.h"
#include "log.h"
#include "reader.h"
#include "tree.h"

static const char *const kind_names[] = {
	[OBJ_TENANT] = "tenant",	 [OBJ_VOLUME] = "volume",
	[OBJ_SNAPSHOT] = "snapshot",	 [OBJ_GROUP] = "consistencygroup",
	[OBJ_CGSNAPSHOT] = "cgsnapshot",
};

static json_t *iso_time(int64_t usec)
{
	char buf[40];

	if (!usec)
		return json_null();
	time_format_iso8601(usec, buf, sizeof(buf));
	return json_string(buf);
}

struct walk {
	struct snapfs *fs;
	struct catalog_txn *txn;
	json_t *ops, *errors, *counts;
};

/* The object's path from the mount's root, or null when it has none
 * (a record whose parent is gone). */
static json_t *object_path(struct catalog_txn *txn, const struct object *o)
{
	char path[4096];

	return tree_object_path(txn, o, path, sizeof(path)) ? json_null() : json_string(path);
}

static json_t *object_entry(struct catalog_txn *txn, const struct object *o)
{
	return json_pack("{so ss ss ss ss}", "path", object_path(txn, o), "kind",
			 kind_names[o->kind], "id", o->id, "name", o->name, "status", o->status);
}

static const char *owner_state_name(struct snapfs *fs, const char *owner)
{
	switch (catalog_op_owner_state(fs->cat, owner)) {
	case OWNER_MINE:
		return "this host";
	case OWNER_LIVE:
		return "live";
	default:
		return "gone";
	}
}

static int walk_object(const struct object *o, void *arg)
{
	struct walk *w = arg;
	json_t *e, *n;

	if (o->kind < OBJ_TENANT || o->kind > OBJ_CGSNAPSHOT)
		return 0;
	n = json_object_get(w->counts, kind_names[o->kind]);
	json_object_set_new(w->counts, kind_names[o->kind],
			    json_integer(json_integer_value(n) + 1));
	if (o->op[0]) {
		e = object_entry(w->txn, o);
		if (!e)
			return -ENOMEM;
		json_object_set_new(e, "op", json_string(o->op));
		json_object_set_new(e, "owner",
				    catalog_is_shared(w->fs->cat) ? json_string(o->op_owner)
								  : json_null());
		json_object_set_new(e, "owner_state",
				    json_string(owner_state_name(w->fs, o->op_owner)));
		json_object_set_new(e, "since", iso_time(o->op_since));
		json_object_set_new(e, "progress", json_integer(o->progress));
		json_array_append_new(w->ops, e);
	}
	if (!strncmp(o->status, "error", 5)) {
		e = object_entry(w->txn, o);
		if (!e)
			return -ENOMEM;
		json_object_set_new(e, "updated_at", iso_time(o->updated_at));
		json_array_append_new(w->errors, e);
	}
	return 0;
}

struct readers_walk {
	json_t *list;
	const char *host;
};

static int add_reader(uint64_t ino, const char *host, unsigned opens, struct readers_walk *r)
{
	json_t *e = json_pack("{sI ss}", "ino", (json_int_t)ino, "host", host);

	if (!e)
		return -ENOMEM;
	if (opens)
		json_object_set_new(e, "opens", json_integer(opens));
	json_array_append_new(r->list, e);
	return 0;
}

static int local_reader(uint64_t ino, unsigned opens, void *arg)
{
	struct readers_walk *r = arg;

	return add_reader(ino, r->host, opens, r);
}

static int remote_reader(uint64_t ino, const char *host, void *arg)
{
	struct readers_walk *r = arg;

	if (!strcmp(host, r->host))
		return 0; /* this host's: listed with their counts */
	return add_reader(ino, host, 0, r);
}

static int add_host(const char *host, void *arg)
{
	return json_array_append_new(arg, json_string(host)) ? -ENOMEM : 0;
}

/* Name each reader's snapshot (ino -> path, id), in the transaction. */
static void name_readers(struct catalog_txn *txn, json_t *list)
{
	size_t i;
	json_t *e;

	json_array_foreach (list, i, e) {
		struct object o;
		uint64_t ino = (uint64_t)json_integer_value(json_object_get(e, "ino"));

		if (!catalog_object_get(txn, ino, &o)) {
			json_object_set_new(e, "path", object_path(txn, &o));
			json_object_set_new(e, "id", json_string(o.id));
		} else {
			json_object_set_new(e, "path", json_null());
		}
		object_clear(&o);
		json_object_del(e, "ino");
	}
}

static json_t *usage_json(struct snapfs *fs, json_t **problems)
{
	struct catalog_usage u;
	int rc = catalog_usage(fs->cat, &u);
	json_t *j = json_pack("{ss sI sI sI}", "backend", u.shared ? "etcd" : "lmdb", "records",
			      (json_int_t)u.records, "map_size", (json_int_t)u.map_size, "map_used",
			      (json_int_t)u.map_used);

	if (!j)
		return NULL;
	if (u.map_size)
		json_object_set_new(j, "map_used_percent",
				    json_real((double)(u.map_used * 1000 / u.map_size) / 10));
	if (u.shared && !rc)
		json_object_set_new(j, "etcd",
				    json_pack("{ss sI sI sI}", "endpoint", u.etcd_endpoint,
					      "db_size", (json_int_t)u.etcd_db_size,
					      "db_size_in_use", (json_int_t)u.etcd_db_in_use,
					      "keys", (json_int_t)u.etcd_keys));
	else if (u.shared || rc)
		json_array_append_new(*problems,
				      json_string("catalogue usage: etcd did not answer"));
	return j;
}

int status_json_text(struct snapfs *fs, char **data, size_t *len)
{
	struct walk w = {.fs = fs};
	struct readers_walk r;
	struct catalog_txn *txn;
	char host[CATALOG_HOST_ID_MAX] = "";
	json_t *doc, *hosts, *problems, *usage;
	int rc;

	if (catalog_is_shared(fs->cat))
		snprintf(host, sizeof(host), "%s", catalog_host_id(fs->cat));
	else if (gethostname(host, sizeof(host) - 1))
		snprintf(host, sizeof(host), "localhost");
	w.ops = json_array();
	w.errors = json_array();
	w.counts = json_object();
	r.list = json_array();
	r.host = host;
	hosts = json_array();
	problems = json_array();
	doc = json_object();
	if (!w.ops || !w.errors || !w.counts || !r.list || !hosts || !problems || !doc) {
		rc = -ENOMEM;
		goto out;
	}
	/* readers first: the transaction below then names them */
	rc = reader_foreach(fs, local_reader, &r);
	if (!rc && catalog_holds_foreach(fs->cat, remote_reader, &r))
		json_array_append_new(problems,
				      json_string("readers of other hosts: etcd did not answer"));
	if (!rc && catalog_hosts_foreach(fs->cat, add_host, hosts))
		json_array_append_new(problems, json_string("hosts: etcd did not answer"));
	if (!rc)
		rc = catalog_txn_begin(fs->cat, false, &txn);
	if (rc)
		goto out;
	w.txn = txn;
	rc = catalog_objects_foreach(txn, walk_object, &w);
	if (!rc)
		name_readers(txn, r.list);
	catalog_txn_abort(txn);
	if (rc)
		goto out;
	usage = usage_json(fs, &problems);
	if (!usage) {
		rc = -ENOMEM;
		goto out;
	}
	json_object_set_new(usage, "objects", json_incref(w.counts));
	json_object_set_new(doc, "host", json_string(host));
	json_object_set_new(doc, "time", iso_time(time_now_usec()));
	json_object_set_new(doc, "operations", json_incref(w.ops));
	json_object_set_new(doc, "errors", json_incref(w.errors));
	json_object_set_new(doc, "catalogue", usage);
	json_object_set_new(doc, "hosts", json_incref(hosts));
	json_object_set_new(doc, "readers", json_incref(r.list));
	json_object_set_new(doc, "map_memory",
			    json_pack("{s:I,s:I}", "used", (json_int_t)chain_memory_used(), "limit",
				      (json_int_t)chain_memory_limit()));
	json_object_set_new(doc, "problems", json_incref(problems));
	*data = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (!*data) {
		rc = -ENOMEM;
		goto out;
	}
	*len = strlen(*data);
	{
		char *t = realloc(*data, *len + 2);

		if (t) {
			t[(*len)++] = '\n';
			t[*len] = '\0';
			*data = t;
		}
	}
out:
	json_decref(w.ops);
	json_decref(w.errors);
	json_decref(w.counts);
	json_decref(r.list);
	json_decref(hosts);
	json_decref(problems);
	json_decref(doc);
	return rc;
}
