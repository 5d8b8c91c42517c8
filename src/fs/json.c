/* json.c - see json.h. */
#include "json.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "attach.h"
#include "util.h"

void api_time(int64_t usec, char *out, size_t len)
{
	time_format_iso8601(usec, out, len);
}

static json_t *str_or_null(const char *s)
{
	return s && *s ? json_string(s) : json_null();
}

static json_t *build_tenant(const struct object *o, const char *created)
{
	return json_pack("{s:{s:s s:s s:o s:O s:s}}", "tenant", "id", o->id, "name", o->name,
			 "description", o->has_description ? json_string(o->description)
							   : json_null(),
			 "metadata", o->metadata, "created_at", created);
}

static json_t *build_volume(struct catalog_txn *txn, const struct object *o, const char *created,
			    const char *updated)
{
	struct object tenant;
	json_t *j;

	catalog_object_get(txn, o->tenant, &tenant); /* empty when missing */
	j = json_pack("{s:{s:s s:s s:I s:s s:o s:O s:s s:s s:s s:o s:s s:b s:s s:[] s:n s:b s:n "
		      "s:n}}",
		      "volume", "id", o->id, "name", o->name, "size", (json_int_t)SIZE_GIB(o->size),
		      "status", o->status, "description",
		      o->has_description ? json_string(o->description) : json_null(), "metadata",
		      o->metadata, "created_at", created, "updated_at", updated,
		      "os-vol-tenant-attr:tenant_id", tenant.id, "consistencygroup_id",
		      str_or_null(o->link_id), "bootable", "false", "encrypted", 0,
		      "availability_zone", "nova", "attachments", "volume_type", "multiattach", 0,
		      "snapshot_id", "source_volid");
	if (j && o->attach[0]) {
		struct attach_target t;

		if (!attach_parse(o->attach, &t))
			json_array_append_new(
				json_object_get(json_object_get(j, "volume"), "attachments"),
				json_pack("{s:s s:s s:s s:n s:n}", "volume_id", o->id, "device",
					  t.node, "qmp_socket", t.socket, "server_id",
					  "host_name"));
	}
	object_clear(&tenant);
	return j;
}

static json_t *build_snapshot(struct catalog_txn *txn, const struct object *o, const char *created,
			      const char *updated)
{
	struct object tenant, vol;
	char progress[8];
	json_t *j;

	catalog_object_get(txn, o->tenant, &tenant); /* empty when missing */
	catalog_object_get(txn, o->parent, &vol);
	snprintf(progress, sizeof(progress), "%d%%", o->progress);
	j = json_pack("{s:{s:s s:s s:o s:s s:I s:s s:s s:s s:O s:s s:s}}", "snapshot", "id", o->id,
		      "name", o->name, "description",
		      o->has_description ? json_string(o->description) : json_null(), "status",
		      o->status, "size", (json_int_t)SIZE_GIB(o->size), "volume_id", vol.id,
		      "created_at", created, "updated_at", updated, "metadata", o->metadata,
		      "os-extended-snapshot-attributes:progress", progress,
		      "os-extended-snapshot-attributes:project_id", tenant.id);
	object_clear(&tenant);
	object_clear(&vol);
	return j;
}

static json_t *build_group(struct catalog_txn *txn, const struct object *o, const char *created)
{
	struct object tenant;
	json_t *j;

	catalog_object_get(txn, o->tenant, &tenant); /* empty when missing */
	j = json_pack("{s:{s:s s:s s:o s:s s:s s:s s:[] s:s s:O}}", "consistencygroup", "id", o->id,
		      "name", o->name, "description",
		      o->has_description ? json_string(o->description) : json_null(), "status",
		      o->status, "created_at", created, "availability_zone", "nova",
		      "volume_types", "project_id", tenant.id, "metadata", o->metadata);
	object_clear(&tenant);
	return j;
}

/* One entry of a group snapshot's cgsnapshot_members. */
static json_t *build_cgsnapshot_member(struct catalog_txn *txn, uint64_t ino, const char *cg_id)
{
	struct object snap, vol;
	char created[40];
	json_t *j = NULL;

	if (!catalog_object_get(txn, ino, &snap) && !catalog_object_get(txn, snap.parent, &vol)) {
		api_time(snap.created_at, created, sizeof(created));
		j = json_pack("{s:s s:s s:s s:s s:I s:s s:s}", "id", snap.id, "name", snap.name,
			      "cgsnapshot_id", cg_id, "volume_id", vol.id, "size",
			      (json_int_t)SIZE_GIB(snap.size), "created_at", created, "status",
			      snap.status);
		object_clear(&vol);
	}
	object_clear(&snap);
	return j;
}

static json_t *build_cgsnapshot(struct catalog_txn *txn, const struct object *o,
				const char *created)
{
	struct object tenant, group;
	json_t *members = json_array(), *j;
	size_t i;
	json_t *v;

	json_array_foreach (o->members, i, v) {
		json_t *m = build_cgsnapshot_member(txn, (uint64_t)json_integer_value(v), o->id);

		if (m)
			json_array_append_new(members, m);
	}
	catalog_object_get(txn, o->tenant, &tenant); /* empty when missing */
	catalog_object_get(txn, o->parent, &group);
	j = json_pack("{s:{s:s s:s s:o s:s s:s s:s s:s s:o}}", "cgsnapshot", "id", o->id, "name",
		      o->name, "description",
		      o->has_description ? json_string(o->description) : json_null(), "status",
		      o->status, "consistency_group_id", group.id, "created_at", created,
		      "project_id", tenant.id, "cgsnapshot_members", members);
	if (j && o->consistency[0])
		json_object_set_new(json_object_get(j, "cgsnapshot"), "consistency",
				    json_string(o->consistency));
	object_clear(&tenant);
	object_clear(&group);
	return j;
}

json_t *api_json_build(struct catalog_txn *txn, const struct object *obj)
{
	char created[40], updated[40];

	api_time(obj->created_at, created, sizeof(created));
	api_time(obj->updated_at ? obj->updated_at : obj->created_at, updated, sizeof(updated));
	switch (obj->kind) {
	case OBJ_TENANT:
		return build_tenant(obj, created);
	case OBJ_VOLUME:
		return build_volume(txn, obj, created, updated);
	case OBJ_SNAPSHOT:
		return build_snapshot(txn, obj, created, updated);
	case OBJ_GROUP:
		return build_group(txn, obj, created);
	case OBJ_CGSNAPSHOT:
		return build_cgsnapshot(txn, obj, created);
	default:
		return NULL;
	}
}

int api_json_text(struct catalog_txn *txn, const struct object *obj, char **text, size_t *len)
{
	json_t *j = api_json_build(txn, obj);
	char *s;
	size_t n;

	if (!j)
		return -ENOMEM;
	s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(j);
	if (!s)
		return -ENOMEM;
	n = strlen(s);
	*text = realloc(s, n + 2);
	if (!*text) {
		free(s);
		return -ENOMEM;
	}
	(*text)[n] = '\n';
	(*text)[n + 1] = '\0';
	*len = n + 1;
	return 0;
}
