/* json.c - see json.h. */
#include "json.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attach.h"
#include "chain.h"
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

/* The volume type every volume has: Cinder's default type, as Cinder names
 * it since it gave every volume a type. */
#define DEFAULT_VOLUME_TYPE "__DEFAULT__"

/* The API's user_id of uid: a UUID whose last 12 digits are the uid in
 * decimal, so that uid 1000 reads 00000000-0000-0000-0000-000000001000. */
static void uid_as_user_id(uint32_t uid, char *out, size_t len)
{
	snprintf(out, len, "00000000-0000-0000-0000-%012u", (unsigned)uid);
}

/* Cinder's links of an object: self and bookmark; snapfs has no HTTP
 * endpoint, so both name the object's by-id entry from the mount point. */
static json_t *api_links(const char *id)
{
	char href[64];

	snprintf(href, sizeof(href), "snapfs:by-id/%s", id);
	return json_pack("[{s:s s:s} {s:s s:s}]", "href", href, "rel", "self", "href", href, "rel",
			 "bookmark");
}

/* The attachment's id: a UUID (version 8, RFC 9562) hashed from the volume's
 * id and the QMP socket of the QEMU it is attached to, the same for as long
 * as it stays attached there (its node changes with every snapshot). */
static void attachment_id(const char *volume_id, const char *socket, char *out, size_t len)
{
	char key[UUID_STR_LEN + ATTACH_VALUE_MAX + 2];
	uint64_t hi, lo;

	snprintf(key, sizeof(key), "%s#%s", volume_id, socket);
	hi = hash_fnv1a64(key, strlen(key));
	lo = hash_fnv1a64(socket, strlen(socket)) ^ (hi * 0x9e3779b97f4a7c15ULL);
	hi = (hi & ~0xf000ULL) | 0x8000ULL;       /* version 8 */
	lo = (lo & ~(3ULL << 62)) | (2ULL << 62); /* RFC variant */
	snprintf(out, len, "%08llx-%04llx-%04llx-%04llx-%012llx", (unsigned long long)(hi >> 32),
		 (unsigned long long)((hi >> 16) & 0xffff), (unsigned long long)(hi & 0xffff),
		 (unsigned long long)(lo >> 48), (unsigned long long)(lo & 0xffffffffffffULL));
}

/* Cinder's volume view (the detail of GET /volumes/{id}), key for key. An
 * attachment's QEMU socket is not in it (the API's attachment has no place
 * for it): user.attach gives it. */
static json_t *build_volume(struct catalog_txn *txn, const struct object *o, const char *created,
			    const char *updated)
{
	struct object tenant;
	char user_id[40];
	json_t *j, *attachments = json_array();

	catalog_object_get(txn, o->tenant, &tenant); /* empty when missing */
	uid_as_user_id(o->uid, user_id, sizeof(user_id));
	if (attachments && o->attach[0]) {
		struct attach_target t;
		char aid[40];

		if (!attach_parse(o->attach, &t)) {
			attachment_id(o->id, t.socket, aid, sizeof(aid));
			json_array_append_new(
				attachments,
				json_pack("{s:s s:s s:s s:n s:n s:s s:n}", "id", o->id, "attachment_id",
					  aid, "volume_id", o->id, "server_id", "host_name",
					  "device", t.node, "attached_at"));
		}
	}
	j = json_pack("{s:{s:s s:s s:I s:s s:s s:s s:s s:o s:s s:n s:n s:O s:o s:s s:s s:b s:s "
		      "s:o s:b s:o s:s}}",
		      "volume", "id", o->id, "status", o->status, "size",
		      (json_int_t)SIZE_GIB(o->size), "availability_zone", "nova", "created_at",
		      created, "updated_at", updated, "name", o->name, "description",
		      o->has_description ? json_string(o->description) : json_null(),
		      "volume_type", DEFAULT_VOLUME_TYPE, "snapshot_id", "source_volid",
		      "metadata", o->metadata, "links", api_links(o->id), "user_id", user_id,
		      "bootable", "false", "encrypted", 0, "replication_status", "disabled",
		      "consistencygroup_id", str_or_null(o->link_id), "multiattach", 0,
		      "attachments", attachments, "os-vol-tenant-attr:tenant_id", tenant.id);
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

	if (!catalog_object_get(txn, ino, &snap)) {
		if (!catalog_object_get(txn, snap.parent, &vol)) {
			api_time(snap.created_at, created, sizeof(created));
			j = json_pack("{s:s s:s s:s s:s s:I s:s s:s}", "id", snap.id, "name",
				      snap.name, "cgsnapshot_id", cg_id, "volume_id", vol.id, "size",
				      (json_int_t)SIZE_GIB(snap.size), "created_at", created,
				      "status", snap.status);
		}
		object_clear(&vol); /* also after a failed get: see catalog_object_get() */
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
	/* Cinder's key is consistencygroup_id; consistency_group_id, as
	 * the attribute, stays beside it. */
	j = json_pack("{s:{s:s s:s s:o s:s s:s s:s s:s s:s s:o}}", "cgsnapshot", "id", o->id,
		      "name", o->name, "description",
		      o->has_description ? json_string(o->description) : json_null(), "status",
		      o->status, "consistencygroup_id", group.id, "consistency_group_id", group.id,
		      "created_at", created,
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

/* ---- changes.json ---- */

struct map_entry {
	uint64_t start, length;
	int depth; /* -1: not present */
	bool zero, data;
};

struct text_buf {
	char *p;
	size_t len, cap;
	int rc;
};

static void text_entry(struct text_buf *b, const struct map_entry *e)
{
	char line[200];
	int n;

	if (b->rc)
		return;
	if (e->depth < 0)
		n = snprintf(line, sizeof(line),
			     "%s{ \"start\": %" PRIu64 ", \"length\": %" PRIu64
			     ", \"present\": false, \"zero\": false, \"data\": false}",
			     b->len > 1 ? ",\n" : "", e->start, e->length);
	else
		n = snprintf(line, sizeof(line),
			     "%s{ \"start\": %" PRIu64 ", \"length\": %" PRIu64
			     ", \"depth\": %d, \"present\": true, \"zero\": %s, \"data\": %s}",
			     b->len > 1 ? ",\n" : "", e->start, e->length, e->depth,
			     e->zero ? "true" : "false", e->data ? "true" : "false");
	if (b->len + (size_t)n + 4 > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 4096;
		char *p;

		while (cap < b->len + (size_t)n + 4)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p) {
			b->rc = -ENOMEM;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, line, (size_t)n);
	b->len += (size_t)n;
}

/* Add e, merging it with the pending entry *cur when they continue. */
static void text_add(struct text_buf *b, struct map_entry *cur, const struct map_entry *e)
{
	if (cur->length && cur->start + cur->length == e->start && cur->depth == e->depth &&
	    cur->zero == e->zero && cur->data == e->data) {
		cur->length += e->length;
		return;
	}
	if (cur->length)
		text_entry(b, cur);
	*cur = *e;
}

int changes_json_text(const struct chain *c, const struct chain_range *r, size_t n, char **text,
		      size_t *len)
{
	struct text_buf b = {0};
	struct map_entry cur = {0};
	uint64_t size = chain_size(c), pos = 0;

	b.p = malloc(4096);
	if (!b.p)
		return -ENOMEM;
	b.cap = 4096;
	b.p[b.len++] = '[';
	for (size_t i = 0; i <= n && !b.rc; i++) {
		uint64_t start = i < n ? r[i].start : size;
		uint64_t end = i < n ? r[i].start + r[i].len : size;

		if (start > size)
			start = size;
		if (end > size)
			end = size;
		if (start > pos) {
			struct map_entry e = {pos, start - pos, -1, false, false};

			text_add(&b, &cur, &e);
		}
		pos = start;
		while (pos < end && !b.rc) {
			struct chain_extent x;
			struct map_entry e;

			if (chain_extent_get(c, pos, &x))
				break;
			e.start = pos;
			e.length = x.length < end - pos ? x.length : end - pos;
			e.depth = (int)x.depth;
			e.data = x.kind == CHAIN_EXTENT_DATA || x.kind == CHAIN_EXTENT_COMPRESSED;
			e.zero = !e.data;
			text_add(&b, &cur, &e);
			pos += e.length;
		}
		pos = end > pos ? end : pos;
	}
	if (cur.length)
		text_entry(&b, &cur);
	if (!b.rc) { /* text_entry() leaves room for these 3 bytes */
		memcpy(b.p + b.len, "]\n", 3);
		b.len += 2;
	}
	if (b.rc) {
		free(b.p);
		return b.rc;
	}
	*text = b.p;
	*len = b.len;
	return 0;
}
