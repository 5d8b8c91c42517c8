/* group.c - see group.h. */
#include "group.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attach.h"
#include "chain.h"
#include "log.h"
#include "quota.h"
#include "share.h"
#include "object.h"
#include "qemu_img.h"
#include "reader.h"
#include "snapshot.h"
#include "volume.h"

#define GROUP_MEMBERS_MAX 1024

bool group_status_is_valid(const char *status)
{
	static const char *const statuses[] = {
		"creating", "available", "error", "deleting", "deleted", "updating",
		"error_deleting",
	};

	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
		if (!strcmp(status, statuses[i]))
			return true;
	return false;
}

bool group_snapshot_status_is_valid(const char *status)
{
	return snapshot_status_is_valid(status) || !strcmp(status, "deleted");
}

/* ---- members arrays ---- */

bool members_has(const json_t *members, uint64_t ino)
{
	size_t i;
	json_t *v;

	json_array_foreach (members, i, v)
		if ((uint64_t)json_integer_value(v) == ino)
			return true;
	return false;
}

int members_add(json_t **members, uint64_t ino)
{
	if (!*members)
		*members = json_array();
	if (!*members || json_array_size(*members) >= GROUP_MEMBERS_MAX)
		return *members ? -ENOSPC : -ENOMEM;
	if (members_has(*members, ino))
		return 0;
	return json_array_append_new(*members, json_integer((json_int_t)ino)) ? -ENOMEM : 0;
}

void members_remove(json_t *members, uint64_t ino)
{
	for (size_t i = 0; i < json_array_size(members); i++) {
		if ((uint64_t)json_integer_value(json_array_get(members, i)) == ino) {
			json_array_remove(members, i);
			return;
		}
	}
}

static uint64_t member_at(const struct object *o, size_t i)
{
	return (uint64_t)json_integer_value(json_array_get(o->members, i));
}

static size_t member_count(const struct object *o)
{
	return json_array_size(o->members);
}

static void set_op(struct object *o, const char *op, const char *arg)
{
	snprintf(o->op, sizeof(o->op), "%s", op);
	snprintf(o->op_arg, sizeof(o->op_arg), "%s", arg);
}

static int txn_end(struct catalog_txn *txn, int rc)
{
	if (rc) {
		catalog_txn_abort(txn);
		return rc;
	}
	return catalog_txn_commit(txn);
}

/* Replace the valid record *o with that of ino (always valid after). */
static int reload(struct catalog_txn *txn, uint64_t ino, struct object *o)
{
	object_clear(o);
	return catalog_object_get(txn, ino, o);
}

/* Load ino as an object of kind: -EINVAL when it is another kind. */
static int load_kind(struct catalog_txn *txn, uint64_t ino, enum object_kind kind,
		     struct object *o)
{
	int rc = catalog_object_get(txn, ino, o);

	if (!rc && o->kind != kind)
		rc = -EINVAL;
	return rc;
}

/* The group may change its members or be snapshotted: available, idle. */
static int group_check_idle(const struct object *g)
{
	if (*g->op || strcmp(g->status, "available"))
		return log_refuse(-EBUSY, "group %s is %s: try again later", g->id,
				  *g->op ? g->op : g->status);
	return 0;
}

/* ---- groups ---- */

int group_create(struct snapfs *fs, const struct cred *cred, uint64_t tenant_ino,
		 const char *name, uint64_t *ino)
{
	struct catalog_txn *txn;
	struct object g, tenant;
	int rc = object_name_check(name);

	if (rc)
		return rc;
	object_init(&g);
	object_init(&tenant);
	g.kind = OBJ_GROUP;
	rc = uuid_generate_str(g.id);
	if (rc)
		goto out;
	snprintf(g.name, sizeof(g.name), "%s", name);
	snprintf(g.status, sizeof(g.status), "available");
	g.created_at = g.updated_at = time_now_usec();
	g.members = json_array();
	rc = catalog_txn_begin(fs->cat, true, &txn);
	if (rc)
		goto out;
	object_clear(&tenant);
	rc = load_kind(txn, tenant_ino, OBJ_TENANT, &tenant);
	if (!rc) {
		g.parent = g.tenant = tenant.ino;
		g.uid = cred->uid;
		g.gid = tenant.gid;
		g.mode = tenant.mode & 07777;
		rc = catalog_object_insert(txn, &g);
	}
	rc = txn_end(txn, rc);
	if (!rc) {
		*ino = g.ino;
		log_info("created group %s (%s)", name, g.id);
	}
out:
	object_clear(&g);
	object_clear(&tenant);
	return rc;
}

int group_delete(struct snapfs *fs, const struct cred *cred, uint64_t ino)
{
	struct catalog_txn *txn;
	struct object g;
	int rc = catalog_txn_begin(fs->cat, true, &txn);

	if (rc)
		return rc;
	rc = load_kind(txn, ino, OBJ_GROUP, &g);
	if (!rc && *g.op)
		rc = log_refuse(-EBUSY, "group %s is busy (%s)", g.id, g.op);
	if (!rc && (member_count(&g) || catalog_children_any(txn, g.ino, OBJ_CGSNAPSHOT)))
		rc = log_refuse(-ENOTEMPTY,
				"group %s has members or group snapshots: not deletable", g.id);
	if (!rc)
		rc = catalog_object_delete(txn, &g);
	rc = txn_end(txn, rc);
	if (!rc)
		log_info("deleted group %s (%s)", g.name, g.id);
	object_clear(&g);
	return rc;
}

/* ---- membership ---- */

/* The volume of g's tenant called (or, failing that, whose id is) ref,
 * into *vol, which is valid afterwards in every case. */
static int tenant_volume(struct catalog_txn *txn, const struct object *g, const char *ref,
			 struct object *vol)
{
	uint64_t ino;
	int rc = catalog_child_lookup(txn, g->tenant, OBJ_VOLUME, ref, &ino);

	object_init(vol);
	if (rc == -ENOENT && !catalog_id_lookup(txn, ref, &ino))
		rc = 0;
	if (!rc)
		rc = reload(txn, ino, vol);
	if (!rc && (vol->kind != OBJ_VOLUME || vol->tenant != g->tenant))
		rc = -ENOENT;
	return rc;
}

/* Make vol a member of g, both records updated in txn. already is what to
 * answer when vol is a member of g already. */
static int member_add(struct catalog_txn *txn, struct object *g, struct object *vol, int already)
{
	int rc;

	if (!strcmp(vol->link_id, g->id))
		return already;
	if (vol->link_id[0])
		return log_refuse(-EINVAL, "volume %s is in group %s already", vol->id,
				  vol->link_id);
	if (*vol->op || (strcmp(vol->status, "available") && strcmp(vol->status, "in-use")))
		return log_refuse(-EBUSY, "volume %s is %s: cannot join group %s", vol->id,
				  *vol->op ? vol->op : vol->status, g->id);
	rc = members_add(&g->members, vol->ino);
	if (rc)
		return rc;
	snprintf(vol->link_id, sizeof(vol->link_id), "%s", g->id);
	vol->updated_at = time_now_usec();
	return catalog_object_update(txn, vol);
}

static int member_remove(struct catalog_txn *txn, struct object *g, struct object *vol)
{
	if (strcmp(vol->link_id, g->id))
		return -EINVAL;
	members_remove(g->members, vol->ino);
	vol->link_id[0] = '\0';
	vol->updated_at = time_now_usec();
	return catalog_object_update(txn, vol);
}

/* The volume name a link target in G/volumes/ names: it must resolve,
 * from tenants/T/consistencygroups/G/volumes, to tenants/T/volumes/NAME. */
static int link_target_name(const char *target, const char *tenant, const char *group,
			    char *out, size_t len)
{
	const char *path[64] = {"tenants", tenant, "consistencygroups", group, "volumes"};
	size_t depth = 5;
	char *copy, *comp, *save = NULL;
	int rc = 0;

	if (target[0] == '/')
		return -EINVAL; /* the mount point is not ours to know */
	copy = strdup(target);
	if (!copy)
		return -ENOMEM;
	for (comp = strtok_r(copy, "/", &save); comp && !rc; comp = strtok_r(NULL, "/", &save)) {
		if (!strcmp(comp, "."))
			continue;
		if (!strcmp(comp, "..")) {
			if (depth == 0)
				rc = -EINVAL;
			else
				depth--;
		} else if (depth == sizeof(path) / sizeof(path[0])) {
			rc = -EINVAL;
		} else {
			path[depth++] = comp;
		}
	}
	if (!rc && (depth != 4 || strcmp(path[0], "tenants") || strcmp(path[1], tenant) ||
		    strcmp(path[2], "volumes")))
		rc = -EINVAL;
	if (!rc && snprintf(out, len, "%s", path[3]) >= (int)len)
		rc = -EINVAL;
	free(copy);
	return rc;
}

int group_volume_link(struct snapfs *fs, const struct cred *cred, uint64_t group,
		      const char *name, const char *target, uint64_t *ino)
{
	struct catalog_txn *txn;
	struct object g, tenant, vol;
	char vname[256];
	int rc = catalog_txn_begin(fs->cat, true, &txn);

	if (rc)
		return rc;
	object_init(&tenant);
	object_init(&vol);
	rc = load_kind(txn, group, OBJ_GROUP, &g);
	if (!rc) {
		object_clear(&tenant);
		rc = catalog_object_get(txn, g.tenant, &tenant);
	}
	if (!rc) {
		rc = link_target_name(target, tenant.name, g.name, vname, sizeof(vname));
		if (!rc && strcmp(vname, name))
			rc = -EINVAL;
		if (rc)
			log_refuse(rc,
				   "group %s: link %s -> %s does not name a volume of tenant %s "
				   "called %s",
				   g.id, name, target, tenant.name, name);
	}
	if (!rc) {
		object_clear(&vol);
		rc = catalog_child_lookup(txn, g.tenant, OBJ_VOLUME, vname, ino);
		if (!rc)
			rc = catalog_object_get(txn, *ino, &vol);
		if (rc == -ENOENT)
			rc = log_refuse(-EINVAL, "group %s: no volume %s in tenant %s", g.id, vname,
					tenant.name);
	}
	if (!rc)
		rc = group_check_idle(&g);
	if (!rc)
		rc = member_add(txn, &g, &vol, -EEXIST);
	if (!rc)
		rc = catalog_object_update(txn, &g);
	rc = txn_end(txn, rc);
	if (!rc)
		log_info("volume %s (%s) joined group %s (%s)", vol.name, vol.id, g.name, g.id);
	object_clear(&g);
	object_clear(&tenant);
	object_clear(&vol);
	return rc;
}

int group_volume_unlink(struct snapfs *fs, const struct cred *cred, uint64_t group,
			const char *name)
{
	struct catalog_txn *txn;
	struct object g, vol;
	uint64_t ino;
	int rc = catalog_txn_begin(fs->cat, true, &txn);

	if (rc)
		return rc;
	object_init(&vol);
	rc = load_kind(txn, group, OBJ_GROUP, &g);
	if (!rc)
		rc = catalog_child_lookup(txn, g.tenant, OBJ_VOLUME, name, &ino);
	if (!rc) {
		object_clear(&vol);
		rc = catalog_object_get(txn, ino, &vol);
	}
	if (!rc && strcmp(vol.link_id, g.id))
		rc = -ENOENT;
	if (!rc)
		rc = group_check_idle(&g);
	if (!rc)
		rc = member_remove(txn, &g, &vol);
	if (!rc)
		rc = catalog_object_update(txn, &g);
	rc = txn_end(txn, rc);
	if (!rc)
		log_info("volume %s (%s) left group %s (%s)", vol.name, vol.id, g.name, g.id);
	object_clear(&g);
	object_clear(&vol);
	return rc;
}

int group_volumes_update(struct snapfs *fs, const struct cred *cred, uint64_t group,
			 const char *names, bool add)
{
	struct catalog_txn *txn;
	struct object g;
	char *list = strdup(names), *save = NULL, *ref;
	size_t count = 0;
	int rc;

	if (!list)
		return -ENOMEM;
	rc = catalog_txn_begin(fs->cat, true, &txn);
	if (rc) {
		free(list);
		return rc;
	}
	rc = load_kind(txn, group, OBJ_GROUP, &g);
	if (!rc)
		rc = group_check_idle(&g);
	for (ref = strtok_r(list, ",", &save); ref && !rc; ref = strtok_r(NULL, ",", &save)) {
		struct object vol;
		size_t n;

		ref += strspn(ref, " \t");
		n = strlen(ref);
		while (n && (ref[n - 1] == ' ' || ref[n - 1] == '\t'))
			ref[--n] = '\0';
		if (!n)
			continue;
		rc = tenant_volume(txn, &g, ref, &vol);
		if (rc == -ENOENT)
			rc = log_refuse(-EINVAL, "group %s: no volume %s", g.id, ref);
		if (!rc && add)
			rc = member_add(txn, &g, &vol, -EINVAL);
		else if (!rc && (rc = member_remove(txn, &g, &vol)) == -EINVAL)
			log_refuse(rc, "group %s: volume %s is no member", g.id, ref);
		object_clear(&vol);
		count++;
	}
	if (!rc && !count)
		rc = -EINVAL;
	if (!rc)
		rc = catalog_object_update(txn, &g);
	rc = txn_end(txn, rc);
	if (!rc)
		log_info("group %s (%s): %s volumes %s", g.name, g.id, add ? "added" : "removed",
			 names);
	object_clear(&g);
	free(list);
	return rc;
}

/* ---- group snapshots ---- */

/* A group snapshot's members, loaded: member snapshot i and its volume. */
struct member_set {
	size_t count;
	struct object *snaps, *vols;
};

static void member_set_free(struct member_set *m)
{
	for (size_t i = 0; i < m->count; i++) {
		object_clear(&m->snaps[i]);
		object_clear(&m->vols[i]);
	}
	free(m->snaps);
	free(m->vols);
	memset(m, 0, sizeof(*m));
}

/* Load group snapshot cg_ino into *cg and its members into *m. */
static int member_set_load(struct snapfs *fs, uint64_t cg_ino, struct object *cg,
			   struct member_set *m)
{
	struct catalog_txn *txn;
	size_t n;
	int rc = catalog_txn_begin(fs->cat, false, &txn);

	memset(m, 0, sizeof(*m));
	if (rc) {
		object_init(cg);
		return rc;
	}
	rc = load_kind(txn, cg_ino, OBJ_CGSNAPSHOT, cg);
	n = rc ? 0 : member_count(cg);
	m->snaps = calloc(n + 1, sizeof(*m->snaps));
	m->vols = calloc(n + 1, sizeof(*m->vols));
	if (!rc && (!m->snaps || !m->vols))
		rc = -ENOMEM;
	for (size_t i = 0; i < n && !rc; i++) {
		rc = catalog_object_get(txn, member_at(cg, i), &m->snaps[m->count]);
		if (!rc)
			rc = catalog_object_get(txn, m->snaps[m->count].parent,
						&m->vols[m->count]);
		else
			object_init(&m->vols[m->count]);
		m->count++;
	}
	catalog_txn_abort(txn);
	if (rc)
		member_set_free(m);
	return rc;
}

/* Every member's .info names its new overlay (active), or, with undo, the
 * volume's active file from before (and not the member snapshot). */
static int switch_info(struct snapfs *fs, const struct member_set *m, bool undo, size_t *done)
{
	int rc = 0;

	for (*done = 0; *done < m->count && !rc; (*done)++) {
		struct catalog_txn *txn;

		rc = catalog_txn_begin(fs->cat, false, &txn);
		if (rc)
			break;
		rc = undo ? snapshot_info_write(fs, txn, &m->vols[*done], m->vols[*done].file,
						m->snaps[*done].id)
			  : snapshot_info_write(fs, txn, &m->vols[*done], m->snaps[*done].file,
						NULL);
		catalog_txn_abort(txn);
		if (rc)
			break;
		if (!undo && *done == 0)
			fault_point("cgsnapshot-create-info-1");
	}
	return rc;
}

/* In txn: the group of group snapshot cg is idle again, if cg held it. */
static int release_group(struct catalog_txn *txn, const struct object *cg)
{
	struct object g;
	int rc = catalog_object_get(txn, cg->parent, &g);

	if (!rc && !strcmp(g.op_arg, cg->id)) {
		set_op(&g, "", "");
		rc = catalog_object_update(txn, &g);
	}
	object_clear(&g);
	return rc == -ENOENT ? 0 : rc;
}

/* Remove the overlay of member snapshot snap of vol that no QEMU switched
 * to (an attached one's QEMU may have it open, never written: closing it
 * is tidy, not needed). */
static int member_overlay_remove(struct snapfs *fs, const struct object *cg,
				 const struct object *vol, const struct object *snap)
{
	if (vol->attach[0] && attach_overlay_del(fs, vol, snap))
		log_warn("group snapshot %s: QEMU at %s may still hold %s open", cg->id, vol->attach,
			 snap->file);
	return share_file_remove(fs->share, snap->file);
}

/* Before the switch: remove every member overlay and record, the group
 * snapshot, and free the group. */
static int create_undo(struct snapfs *fs, uint64_t cg_ino)
{
	struct catalog_txn *txn;
	struct member_set m;
	struct object cg;
	int rc = member_set_load(fs, cg_ino, &cg, &m);

	for (size_t i = 0; i < m.count && !rc; i++)
		rc = member_overlay_remove(fs, &cg, &m.vols[i], &m.snaps[i]);
	if (!rc)
		rc = catalog_txn_begin(fs->cat, true, &txn);
	if (rc)
		goto out;
	for (size_t i = 0; i < m.count && !rc; i++)
		rc = snapshot_record_remove(txn, m.snaps[i].ino);
	if (!rc)
		rc = catalog_object_delete(txn, &cg);
	if (!rc)
		rc = release_group(txn, &cg);
	rc = txn_end(txn, rc);
out:
	member_set_free(&m);
	object_clear(&cg);
	return rc;
}

/* From the switch on: every .info, then the catalogue in one step. */
static int create_complete(struct snapfs *fs, uint64_t cg_ino)
{
	struct catalog_txn *txn;
	struct member_set m;
	struct object cg;
	size_t done;
	int rc = member_set_load(fs, cg_ino, &cg, &m);

	if (!rc)
		rc = switch_info(fs, &m, false, &done);
	if (rc)
		goto out;
	fault_point("cgsnapshot-create-info");
	rc = catalog_txn_begin(fs->cat, true, &txn);
	if (rc)
		goto out;
	for (size_t i = 0; i < m.count && !rc; i++)
		rc = snapshot_record_finish(txn, m.snaps[i].ino);
	if (!rc) {
		object_clear(&cg);
		rc = catalog_object_get(txn, cg_ino, &cg);
	}
	if (!rc) {
		snprintf(cg.status, sizeof(cg.status), "available");
		cg.progress = 100;
		set_op(&cg, "", "");
		cg.updated_at = time_now_usec();
		rc = catalog_object_update(txn, &cg);
	}
	if (!rc)
		rc = release_group(txn, &cg);
	rc = txn_end(txn, rc);
out:
	member_set_free(&m);
	object_clear(&cg);
	return rc;
}

static int mark_switch(struct catalog_txn *txn, struct object *o, void *arg)
{
	set_op(o, "create", "switch");
	return 0;
}

/* How a group snapshot's members are taken: "offline" (none attached:
 * nothing writes them), "transaction" (all attached to one QEMU: one QMP
 * transaction, one instant) or "sequential" (several QEMUs, or attached
 * and detached members: one after the other). */
static const char *consistency_of(const struct member_set *m)
{
	struct attach_target first, t;
	size_t attached = 0;
	bool one_qemu = true;

	for (size_t i = 0; i < m->count; i++) {
		if (!m->vols[i].attach[0] || attach_parse(m->vols[i].attach, &t))
			continue;
		if (!attached++)
			first = t;
		else if (strcmp(first.socket, t.socket))
			one_qemu = false;
	}
	if (!attached)
		return "offline";
	return attached == m->count && one_qemu ? "transaction" : "sequential";
}

static int set_status_error(struct catalog_txn *txn, struct object *o, void *arg)
{
	snprintf(o->status, sizeof(o->status), "error");
	return 0;
}

static int set_consistency(struct catalog_txn *txn, struct object *o, void *arg)
{
	snprintf(o->consistency, sizeof(o->consistency), "%s", (const char *)arg);
	return 0;
}

/* Step 2b: the attached members' QEMUs open their overlays and switch to
 * them, one transaction per QEMU. Stops at the first failure; what was
 * switched then stays switched (create_settle() sorts it out). */
static int switch_attached(struct snapfs *fs, const struct member_set *m)
{
	const struct object **vols = calloc(m->count + 1, sizeof(*vols));
	const struct object **snaps = calloc(m->count + 1, sizeof(*snaps));
	bool *sent = calloc(m->count + 1, sizeof(*sent));
	int rc = vols && snaps && sent ? 0 : -ENOMEM;

	for (size_t i = 0; i < m->count && !rc; i++)
		if (m->vols[i].attach[0])
			rc = attach_overlay_add(fs, &m->vols[i], &m->snaps[i]);
	if (!rc)
		fault_point("cgsnapshot-create-qmp-added");
	for (size_t i = 0; i < m->count && !rc; i++) {
		struct attach_target ti, tj;
		size_t n = 0;

		if (!m->vols[i].attach[0] || sent[i])
			continue;
		rc = attach_parse(m->vols[i].attach, &ti) ? -EIO : 0;
		for (size_t j = i; j < m->count && !rc; j++) {
			if (!m->vols[j].attach[0] || attach_parse(m->vols[j].attach, &tj) ||
			    strcmp(ti.socket, tj.socket))
				continue;
			vols[n] = &m->vols[j];
			snaps[n++] = &m->snaps[j];
			sent[j] = true;
		}
		if (!rc)
			rc = attach_overlays_switch(fs, vols, snaps, n);
	}
	free(vols);
	free(snaps);
	free(sent);
	return rc;
}

/* Before the switch mark, once QEMU may have switched some attached
 * members (a failed switch_attached(), or a crash): when none was
 * switched, undo all; otherwise keep the switched and the detached
 * members (their overlays may hold guest writes), drop the others, and
 * complete the group snapshot, in status error when some were dropped
 * (then -EIO). -EIO when a QEMU does not answer (nothing decided). */
static int create_settle(struct snapfs *fs, uint64_t cg_ino)
{
	struct catalog_txn *txn;
	struct member_set m;
	struct object cg;
	size_t switched = 0, dropped = 0;
	bool *keep = NULL;
	int rc = member_set_load(fs, cg_ino, &cg, &m);

	if (!rc && !(keep = calloc(m.count + 1, sizeof(*keep))))
		rc = -ENOMEM;
	for (size_t i = 0; i < m.count && !rc; i++) {
		keep[i] = !m.vols[i].attach[0];
		if (!keep[i])
			rc = snapshot_create_switched(fs, &m.snaps[i], &keep[i]);
		switched += m.vols[i].attach[0] && keep[i];
	}
	if (rc)
		goto out;
	if (!switched) {
		rc = create_undo(fs, cg_ino);
		goto out;
	}
	for (size_t i = 0; i < m.count && !rc; i++) {
		if (!keep[i])
			rc = member_overlay_remove(fs, &cg, &m.vols[i], &m.snaps[i]);
	}
	if (!rc)
		rc = catalog_txn_begin(fs->cat, true, &txn);
	if (rc)
		goto out;
	for (size_t i = 0; i < m.count && !rc; i++) {
		if (keep[i])
			continue;
		log_err("group snapshot %s (%s): QEMU did not switch volume %s: left out", cg.name,
			cg.id, m.vols[i].id);
		rc = snapshot_record_remove(txn, m.snaps[i].ino);
		members_remove(cg.members, m.snaps[i].ino);
		dropped++;
	}
	if (!rc) {
		set_op(&cg, "create", "switch");
		rc = catalog_object_update(txn, &cg);
	}
	rc = txn_end(txn, rc);
	if (!rc)
		rc = create_complete(fs, cg_ino);
	if (!rc && dropped) {
		object_modify(fs, cg_ino, set_status_error, NULL);
		rc = -EIO;
	}
out:
	free(keep);
	member_set_free(&m);
	object_clear(&cg);
	return rc;
}

/* Step 1: the group snapshot, every member's record, the group taken. */
static int create_record(struct snapfs *fs, const struct cred *cred, uint64_t group,
			 struct object *cg)
{
	struct catalog_txn *txn;
	struct object g, tenant;
	int64_t add[QUOTA_RESOURCES] = {0, 0, 0};
	int rc = catalog_txn_begin(fs->cat, true, &txn);

	if (rc)
		return rc;
	object_init(&tenant);
	rc = load_kind(txn, group, OBJ_GROUP, &g);
	if (!rc)
		rc = group_check_idle(&g);
	if (!rc) {
		object_clear(&tenant);
		rc = catalog_object_get(txn, g.tenant, &tenant);
	}
	if (!rc) {
		cg->parent = g.ino;
		cg->tenant = g.tenant;
		cg->uid = cred->uid;
		cg->gid = tenant.gid;
		cg->mode = tenant.mode & 07777;
		rc = catalog_object_insert(txn, cg);
	}
	for (size_t i = 0; !rc && i < member_count(&g); i++) {
		struct object snap, vol;

		object_init(&snap);
		object_init(&vol);
		snap.kind = OBJ_SNAPSHOT;
		rc = uuid_generate_str(snap.id);
		snprintf(snap.name, sizeof(snap.name), "%s", cg->name);
		snprintf(snap.status, sizeof(snap.status), "creating");
		set_op(&snap, "create", "");
		snprintf(snap.link_id, sizeof(snap.link_id), "%s", cg->id);
		snap.created_at = snap.updated_at = cg->created_at;
		object_clear(&vol);
		if (!rc)
			rc = snapshot_record_add(txn, cred, member_at(&g, i), &snap, &vol);
		else
			object_init(&vol);
		if (rc == -EEXIST)
			log_info("group snapshot %s: volume %s has a snapshot %s already", cg->name,
				 vol.id, cg->name);
		if (!rc)
			rc = members_add(&cg->members, snap.ino);
		add[QUOTA_SNAPSHOTS]++;
		add[QUOTA_GIGABYTES] += (int64_t)SIZE_GIB(snap.size);
		object_clear(&snap);
		object_clear(&vol);
	}
	/* Each member snapshot counts, as Cinder counts a group snapshot's. */
	if (!rc)
		rc = quota_check(fs, txn, g.tenant, add, true, "group snapshot create");
	if (!rc)
		rc = catalog_object_update(txn, cg);
	if (!rc) {
		set_op(&g, "cgsnapshot", cg->id);
		rc = catalog_object_update(txn, &g);
	}
	object_clear(&g);
	object_clear(&tenant);
	return txn_end(txn, rc);
}

int group_snapshot_create(struct snapfs *fs, const struct cred *cred, uint64_t group,
			  const char *name, uint64_t *ino)
{
	struct member_set m = {0, NULL, NULL};
	struct object cg;
	uint64_t cg_ino;
	int rc = object_name_check(name);

	if (rc)
		return rc;
	object_init(&cg);
	cg.kind = OBJ_CGSNAPSHOT;
	rc = uuid_generate_str(cg.id);
	if (rc)
		goto out;
	snprintf(cg.name, sizeof(cg.name), "%s", name);
	snprintf(cg.status, sizeof(cg.status), "creating");
	set_op(&cg, "create", "");
	cg.created_at = cg.updated_at = time_now_usec();
	cg.members = json_array();

	/* Step 1: the intent, for all members at once. */
	rc = create_record(fs, cred, group, &cg);
	if (rc)
		goto out;
	fault_point("cgsnapshot-create-recorded");

	/* Step 2: every overlay; one failure undoes all. */
	cg_ino = cg.ino;
	object_clear(&cg);
	rc = member_set_load(fs, cg_ino, &cg, &m);
	for (size_t i = 0; i < m.count && !rc; i++)
		rc = snapshot_overlay_create(fs, &m.snaps[i], &m.vols[i]);
	if (rc) {
		log_err("group snapshot %s (%s): a member's overlay failed: none taken", name,
			cg.id);
		create_undo(fs, cg.ino);
		goto out;
	}
	fault_point("cgsnapshot-create-overlays");
	rc = object_modify(fs, cg.ino, set_consistency, (void *)consistency_of(&m));
	if (rc) {
		create_undo(fs, cg.ino);
		goto out;
	}

	/* Step 2b: attached members switch in their QEMUs. */
	rc = switch_attached(fs, &m);
	if (rc) {
		log_err("group snapshot %s (%s): QEMU did not switch every member", name, cg.id);
		rc = create_settle(fs, cg.ino);
		rc = rc == -ENOSPC ? rc : -EIO;
		goto out;
	}
	fault_point("cgsnapshot-create-qmp-switched");

	/* Step 3: the switch mark, the point of no return for recovery. */
	rc = object_modify(fs, cg.ino, mark_switch, NULL);
	if (rc) {
		create_undo(fs, cg.ino);
		goto out;
	}
	fault_point("cgsnapshot-create-switching");

	/* Steps 4 and 5: every .info, then the catalogue in one step. */
	rc = create_complete(fs, cg.ino);
	if (rc) {
		size_t done;

		log_err("group snapshot %s (%s): switching the members failed: undoing", name,
			cg.id);
		if (!switch_info(fs, &m, true, &done))
			create_undo(fs, cg.ino);
		rc = rc == -ENOSPC ? rc : -EIO;
		goto out;
	}
	*ino = cg.ino;
	log_info("created group snapshot %s (%s) of %zu volumes (%s)", name, cg.id, m.count,
		 consistency_of(&m));
out:
	member_set_free(&m);
	object_clear(&cg);
	return rc;
}

/* ---- group snapshot delete ---- */

int group_snapshot_member_forget(struct catalog_txn *txn, const struct object *snap)
{
	struct object cg;
	uint64_t ino;
	int rc = catalog_id_lookup(txn, snap->link_id, &ino);

	if (rc)
		return rc == -ENOENT ? 0 : rc;
	rc = catalog_object_get(txn, ino, &cg);
	if (!rc && cg.kind == OBJ_CGSNAPSHOT && members_has(cg.members, snap->ino)) {
		members_remove(cg.members, snap->ino);
		rc = catalog_object_update(txn, &cg);
	}
	object_clear(&cg);
	return rc;
}

struct delete_check {
	bool force;
	int rc_busy; /* what a member check found (-EBUSY), before recording */
};

static int delete_begin(struct catalog_txn *txn, struct object *cg, void *arg)
{
	const struct delete_check *c = arg;

	if (cg->kind != OBJ_CGSNAPSHOT)
		return -ENOTDIR;
	if (*cg->op)
		return log_refuse(-EBUSY, "group snapshot %s is busy (%s)", cg->id, cg->op);
	if (!c->force && strcmp(cg->status, "available") && strcmp(cg->status, "error"))
		return log_refuse(-EBUSY, "group snapshot %s is %s: not deletable", cg->id,
				  cg->status);
	snprintf(cg->status, sizeof(cg->status), "deleting");
	set_op(cg, "delete", "");
	return 0;
}

static int delete_failed(struct catalog_txn *txn, struct object *cg, void *arg)
{
	snprintf(cg->status, sizeof(cg->status), "error_deleting");
	set_op(cg, "", "");
	return 0;
}

/* -EBUSY when QEMU writes a member's files: asked before anything is
 * recorded, so that a busy member changes nothing. (Readers and other
 * operations: delete_record_all().) */
static int members_check_unused(struct snapfs *fs, const struct member_set *m)
{
	int rc = 0;

	for (size_t i = 0; i < m->count && !rc; i++) {
		if (!rc && !m->vols[i].attach[0]) /* QEMU merges an attached one */
			rc = share_file_check_unused(fs->share, m->vols[i].file);
		if (!rc && !m->vols[i].attach[0])
			rc = share_file_check_unused(fs->share, m->snaps[i].backing);
	}
	return rc;
}

struct delete_all {
	struct snapfs *fs;
	uint64_t cg_ino;
	struct delete_check check;
};

/* Step 1 of a group snapshot's delete, under the reader registry's lock
 * with no member open here: in one transaction, the group snapshot and
 * every member's delete (snapshot_delete_member_record(): none open on
 * another host, no other operation on its volume) are recorded, or
 * nothing is (-EBUSY). From then on no other operation starts on a
 * member's volume and no member opens, until its merge is done: a
 * member's merge never meets another operation halfway through the
 * group's delete. */
static int delete_record_all(void *arg)
{
	struct delete_all *d = arg;
	struct catalog_txn *txn;
	struct object cg;
	int rc = catalog_txn_begin(d->fs->cat, true, &txn);

	if (rc)
		return rc;
	rc = load_kind(txn, d->cg_ino, OBJ_CGSNAPSHOT, &cg);
	if (!rc)
		rc = delete_begin(txn, &cg, &d->check);
	for (size_t i = 0; !rc && i < member_count(&cg); i++)
		rc = snapshot_delete_member_record(d->fs, txn, member_at(&cg, i));
	if (!rc)
		rc = catalog_object_update(txn, &cg);
	object_clear(&cg);
	return txn_end(txn, rc);
}

static int drop_member(struct catalog_txn *txn, struct object *cg, void *arg)
{
	members_remove(cg->members, *(const uint64_t *)arg);
	return 0;
}

/* The members whose deletes were recorded with the group snapshot's and
 * will not run now: error_deleting (as the group snapshot), their volumes
 * free for other operations. */
static void abandon_members(struct snapfs *fs, uint64_t cg_ino)
{
	struct catalog_txn *txn;
	struct object cg;
	uint64_t *inos = NULL;
	size_t n = 0;

	if (catalog_txn_begin(fs->cat, false, &txn))
		return;
	if (!load_kind(txn, cg_ino, OBJ_CGSNAPSHOT, &cg)) {
		n = member_count(&cg);
		inos = calloc(n + 1, sizeof(*inos));
		for (size_t i = 0; inos && i < n; i++)
			inos[i] = member_at(&cg, i);
	}
	object_clear(&cg);
	catalog_txn_abort(txn);
	for (size_t i = 0; inos && i < n; i++)
		snapshot_delete_abandon(fs, inos[i]);
	free(inos);
}

/* Merge every member still listed, then forget the group snapshot. */
static int delete_members(struct snapfs *fs, uint64_t cg_ino)
{
	struct catalog_txn *txn;
	struct object cg;
	bool first = true;
	int rc;

	for (;;) {
		uint64_t member;

		rc = catalog_txn_begin(fs->cat, false, &txn);
		if (rc)
			return rc;
		rc = load_kind(txn, cg_ino, OBJ_CGSNAPSHOT, &cg);
		member = rc || !member_count(&cg) ? 0 : member_at(&cg, 0);
		object_clear(&cg);
		catalog_txn_abort(txn);
		if (rc || !member)
			break;
		/* recorded with the group snapshot (delete_record_all()), or
		 * not (a retry, or a delete recorded before they were) */
		rc = snapshot_delete_recorded(fs, member);
		if (rc == -EINVAL)
			rc = snapshot_delete_member(fs, member);
		if (rc == -ENOENT) /* a stale entry */
			rc = object_modify(fs, cg_ino, drop_member, &member);
		if (rc) {
			abandon_members(fs, cg_ino);
			return rc;
		}
		if (first)
			fault_point("cgsnapshot-delete-member");
		first = false;
	}
	if (rc)
		return rc;
	rc = catalog_txn_begin(fs->cat, true, &txn);
	if (rc)
		return rc;
	rc = load_kind(txn, cg_ino, OBJ_CGSNAPSHOT, &cg);
	if (!rc)
		rc = catalog_object_delete(txn, &cg);
	object_clear(&cg);
	return txn_end(txn, rc);
}

int group_snapshot_delete(struct snapfs *fs, const struct cred *cred, uint64_t ino, bool force)
{
	struct delete_all d = {fs, ino, {force, 0}};
	struct member_set m;
	struct object cg;
	uint64_t *inos = NULL;
	int rc;

	if (force && !cred_is_admin(fs, cred))
		return -EPERM;
	rc = member_set_load(fs, ino, &cg, &m);
	if (!rc)
		rc = members_check_unused(fs, &m);
	if (!rc && !(inos = calloc(m.count + 1, sizeof(*inos))))
		rc = -ENOMEM;
	for (size_t i = 0; !rc && i < m.count; i++)
		inos[i] = m.snaps[i].ino;
	if (!rc)
		rc = reader_exclude_many(fs, inos, m.count, delete_record_all, &d);
	free(inos);
	member_set_free(&m);
	if (rc)
		goto out;
	fault_point("cgsnapshot-delete-recorded");
	rc = delete_members(fs, ino);
	if (rc) {
		log_err("group snapshot %s (%s): deleting its members failed: status "
			"error_deleting", cg.name, cg.id);
		object_modify(fs, ino, delete_failed, NULL);
		rc = rc == -ENOSPC || rc == -EBUSY ? rc : -EIO;
		goto out;
	}
	log_info("deleted group snapshot %s (%s)%s", cg.name, cg.id, force ? " (force)" : "");
out:
	object_clear(&cg);
	return rc;
}

/* ---- filling a group from a source ---- */

/* Split "consistencygroups/G1[/cgsnapshots/C]" into G1 and C ("" when
 * absent). */
static int source_parse(const char *source, char *group, char *cgsnap, size_t len)
{
	char copy[1024], *comp[5], *save = NULL;
	size_t n = 0;

	if (source[0] == '/' || snprintf(copy, sizeof(copy), "%s", source) >= (int)sizeof(copy))
		return -EINVAL; /* relative to the tenant only */
	for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		if (!strcmp(c, "."))
			continue;
		if (n == 5)
			return -EINVAL;
		comp[n++] = c;
	}
	if ((n != 2 && n != 4) || strcmp(comp[0], "consistencygroups") ||
	    (n == 4 && strcmp(comp[2], "cgsnapshots")))
		return -EINVAL;
	snprintf(group, len, "%s", comp[1]);
	snprintf(cgsnap, len, "%s", n == 4 ? comp[3] : "");
	return 0;
}

/* The source volume of a copy: the snapshot's volume, or src itself. */
static uint64_t source_volume(const struct object *src)
{
	return src->kind == OBJ_SNAPSHOT ? src->parent : src->ino;
}

/* In txn: a new member of g copying src (a volume or a snapshot), and the
 * source volume taken for the copy. */
static int fill_record_one(struct catalog_txn *txn, const struct cred *cred, struct object *g,
			   const struct object *tenant, const struct object *src,
			   const char *format)
{
	struct object vol, copy;
	char name[512];
	int rc;

	object_init(&copy);
	rc = catalog_object_get(txn, source_volume(src), &vol);
	if (!rc && (strcmp(src->status, "available") || *vol.op ||
		    (src->kind == OBJ_VOLUME && strcmp(vol.status, "available"))))
		rc = log_refuse(-EBUSY, "group %s: source %s is %s: no copy now", g->id, src->id,
				*vol.op ? vol.op : src->status);
	snprintf(name, sizeof(name), "%s-%s", g->name, vol.name);
	if (!rc)
		rc = object_name_check(name);
	if (!rc) {
		copy.kind = OBJ_VOLUME;
		rc = uuid_generate_str(copy.id);
	}
	if (!rc) {
		memcpy(copy.name, name, strlen(name) + 1); /* checked: < 256 */
		snprintf(copy.status, sizeof(copy.status), "creating");
		snprintf(copy.op, sizeof(copy.op), "fill");
		snprintf(copy.op_arg, sizeof(copy.op_arg), "%" PRIu64, src->ino);
		snprintf(copy.format, sizeof(copy.format), "%s", format);
		share_volume_base_name(copy.id, copy.file, sizeof(copy.file));
		snprintf(copy.link_id, sizeof(copy.link_id), "%s", g->id);
		copy.size = src->size;
		copy.parent = copy.tenant = tenant->ino;
		copy.uid = cred->uid;
		copy.gid = tenant->gid;
		copy.mode = tenant->mode & 07777;
		copy.created_at = copy.updated_at = time_now_usec();
		rc = catalog_object_insert(txn, &copy);
	}
	if (!rc)
		rc = members_add(&g->members, copy.ino);
	if (!rc) {
		set_op(&vol, "fill-source", g->id);
		rc = catalog_object_update(txn, &vol);
	}
	object_clear(&vol);
	object_clear(&copy);
	return rc;
}

/* Step 1: every new volume recorded (creating, op fill), the sources and
 * the group taken. */
static int fill_record(struct snapfs *fs, const struct cred *cred, uint64_t group,
		       const char *source)
{
	char g1_name[256], cg_name[256];
	struct catalog_txn *txn;
	struct object g, tenant, from;
	int64_t add[QUOTA_RESOURCES] = {0, 0, 0};
	uint64_t ino;
	int rc = source_parse(source, g1_name, cg_name, sizeof(g1_name));

	if (rc) {
		return log_refuse(rc,
				  "user.source %s: not consistencygroups/G or "
				  "consistencygroups/G/cgsnapshots/C",
				  source);
	}
	rc = catalog_txn_begin(fs->cat, true, &txn);
	if (rc)
		return rc;
	object_init(&tenant);
	object_init(&from);
	rc = load_kind(txn, group, OBJ_GROUP, &g);
	if (!rc)
		rc = group_check_idle(&g);
	if (!rc && member_count(&g))
		rc = log_refuse(-ENOTEMPTY, "group %s has members: cannot fill it from %s", g.id,
				source);
	if (!rc)
		rc = reload(txn, g.tenant, &tenant);
	if (!rc) {
		rc = catalog_child_lookup(txn, g.tenant, OBJ_GROUP, g1_name, &ino);
		if (!rc && *cg_name)
			rc = catalog_child_lookup(txn, ino, OBJ_CGSNAPSHOT, cg_name, &ino);
		if (!rc)
			rc = reload(txn, ino, &from);
		if (rc == -ENOENT)
			rc = log_refuse(-EINVAL, "user.source %s: no such group or group snapshot",
					source);
	}
	for (size_t i = 0; !rc && i < member_count(&from); i++) {
		struct object src;

		rc = catalog_object_get(txn, member_at(&from, i), &src);
		if (!rc)
			rc = fill_record_one(txn, cred, &g, &tenant, &src,
					     fs->opts->qcow2_volumes ? "qcow2" : "raw");
		add[QUOTA_VOLUMES]++;
		add[QUOTA_GIGABYTES] += (int64_t)SIZE_GIB(src.size);
		object_clear(&src);
	}
	if (!rc)
		rc = quota_check(fs, txn, g.tenant, add, true, "group fill");
	if (!rc) {
		set_op(&g, "fill", source);
		rc = catalog_object_update(txn, &g);
	}
	object_clear(&g);
	object_clear(&tenant);
	object_clear(&from);
	return txn_end(txn, rc);
}

struct fill_progress {
	struct snapfs *fs;
	uint64_t ino;
	int last;
};

static int set_progress(struct catalog_txn *txn, struct object *o, void *arg)
{
	o->progress = *(const int *)arg;
	return 0;
}

static void on_fill_progress(int percent, void *arg)
{
	struct fill_progress *p = arg;

	if (percent <= p->last || percent >= 100)
		return;
	p->last = percent;
	object_modify(p->fs, p->ino, set_progress, &percent);
}

/* The chain of src's data, top first, checked by the engine as it would
 * read it: qemu-img then reads exactly the files the catalogue names. */
static int source_layers(struct snapfs *fs, struct catalog_txn *txn, const struct object *src,
			 char (*names)[256], enum image_format *formats, size_t *n)
{
	struct chain_layer layers[SNAPSHOT_CHAIN_MAX];
	struct object top;
	struct chain *chain;
	int rc;

	object_init(&top);
	if (src->kind == OBJ_SNAPSHOT) {
		object_copy(&top, src);
	} else { /* the live data: as a snapshot taken now would see it */
		top.kind = OBJ_SNAPSHOT;
		top.parent = src->ino;
		snprintf(top.id, sizeof(top.id), "%s", src->id);
		snprintf(top.backing, sizeof(top.backing), "%s", src->file);
	}
	rc = snapshot_layers(txn, &top, names, formats, SNAPSHOT_CHAIN_MAX, n);
	object_clear(&top);
	if (rc)
		return rc;
	for (size_t i = 0; i < *n; i++)
		layers[i] = (struct chain_layer){fs->share->dirfd, names[i], formats[i], false};
	rc = chain_open(&chain, layers, *n, src->size);
	if (rc)
		return rc == -ENOMEM ? rc : -EIO;
	chain_close(chain);
	return 0;
}

/* Step 2 for one new volume: its file, holding a copy of its source. */
static int fill_copy(struct snapfs *fs, uint64_t ino)
{
	char(*names)[256] = malloc(SNAPSHOT_CHAIN_MAX * sizeof(*names));
	enum image_format *formats = malloc(SNAPSHOT_CHAIN_MAX * sizeof(*formats));
	struct fill_progress prog = {fs, ino, -1};
	struct catalog_txn *txn = NULL;
	struct object copy, src;
	size_t n = 0;
	int rc = names && formats ? catalog_txn_begin(fs->cat, false, &txn) : -ENOMEM;

	object_init(&copy);
	object_init(&src);
	if (!rc)
		rc = reload(txn, ino, &copy);
	if (!rc)
		rc = reload(txn, strtoull(copy.op_arg, NULL, 10), &src);
	if (!rc)
		rc = source_layers(fs, txn, &src, names, formats, &n);
	catalog_txn_abort(txn);
	if (!rc)
		rc = volume_file_create(fs, &copy);
	if (!rc)
		rc = qemu_img_convert_into(fs->opts->qemu_img, fs->share->dirfd, names[0],
					   formats[0] == IMAGE_FORMAT_RAW ? "raw" : "qcow2",
					   copy.file, copy.format, on_fill_progress, &prog);
	if (!rc)
		rc = share_file_sync(fs->share, copy.file);
	if (rc)
		log_err("volume %s (%s): copy of %s %s failed", copy.name, copy.id,
			src.kind == OBJ_SNAPSHOT ? "snapshot" : "volume", src.id);
	object_clear(&copy);
	object_clear(&src);
	free(names);
	free(formats);
	return rc;
}

/* In txn: release the source volume that new member copy took. */
static int fill_release_source(struct catalog_txn *txn, const struct object *g,
			       const struct object *copy)
{
	struct object src, vol;
	int rc = catalog_object_get(txn, strtoull(copy->op_arg, NULL, 10), &src);

	object_init(&vol);
	if (rc == -ENOENT)
		rc = 0;
	else if (!rc)
		rc = reload(txn, source_volume(&src), &vol);
	if (!rc && !strcmp(vol.op, "fill-source") && !strcmp(vol.op_arg, g->id)) {
		set_op(&vol, "", "");
		rc = catalog_object_update(txn, &vol);
	}
	object_clear(&src);
	object_clear(&vol);
	return rc == -ENOENT ? 0 : rc;
}

/* The end of a fill: with keep, every new volume available; without,
 * every new volume's file and record gone. Sources and group released. */
static int fill_end(struct snapfs *fs, uint64_t group, bool keep)
{
	struct catalog_txn *txn;
	struct object g;
	int rc = catalog_txn_begin(fs->cat, false, &txn);

	if (rc)
		return rc;
	rc = load_kind(txn, group, OBJ_GROUP, &g);
	for (size_t i = 0; !rc && !keep && i < member_count(&g); i++) {
		struct object copy;

		rc = catalog_object_get(txn, member_at(&g, i), &copy);
		if (!rc && !strcmp(copy.op, "fill"))
			rc = share_file_remove(fs->share, copy.file);
		object_clear(&copy);
	}
	catalog_txn_abort(txn);
	if (!rc)
		rc = catalog_txn_begin(fs->cat, true, &txn);
	if (rc) {
		object_clear(&g);
		return rc;
	}
	rc = reload(txn, group, &g);
	for (size_t i = 0; !rc && i < member_count(&g);) {
		struct object copy;

		rc = catalog_object_get(txn, member_at(&g, i), &copy);
		if (!rc && !strcmp(copy.op, "fill")) {
			rc = fill_release_source(txn, &g, &copy);
			if (!rc && keep) {
				snprintf(copy.status, sizeof(copy.status), "available");
				copy.progress = 100;
				set_op(&copy, "", "");
				copy.updated_at = time_now_usec();
				rc = catalog_object_update(txn, &copy);
			} else if (!rc) {
				rc = catalog_object_delete(txn, &copy);
				members_remove(g.members, copy.ino);
				object_clear(&copy);
				continue;
			}
		}
		object_clear(&copy);
		i++;
	}
	if (!rc) {
		set_op(&g, "", "");
		rc = catalog_object_update(txn, &g);
	}
	object_clear(&g);
	return txn_end(txn, rc);
}

int group_fill(struct snapfs *fs, const struct cred *cred, uint64_t group, const char *source)
{
	struct catalog_txn *txn;
	struct object g;
	size_t n;
	int rc = fill_record(fs, cred, group, source);

	if (rc)
		return rc;
	fault_point("group-clone-recorded");
	rc = catalog_txn_begin(fs->cat, false, &txn);
	if (rc)
		return rc;
	rc = load_kind(txn, group, OBJ_GROUP, &g);
	catalog_txn_abort(txn);
	n = rc ? 0 : member_count(&g);
	for (size_t i = 0; i < n && !rc; i++) {
		rc = fill_copy(fs, member_at(&g, i));
		if (!rc && i == 0)
			fault_point("group-clone-copied");
	}
	if (!rc)
		rc = fill_end(fs, group, true);
	if (rc) {
		log_err("group %s (%s): filling from %s failed: no new volume kept", g.name, g.id,
			source);
		fill_end(fs, group, false);
		rc = rc == -ENOSPC || rc == -EBUSY ? rc : -EIO;
	} else {
		log_info("group %s (%s): filled from %s with %zu volumes", g.name, g.id, source,
			 n);
	}
	object_clear(&g);
	return rc;
}

/* ---- recovery ---- */

static int clear_op(struct catalog_txn *txn, struct object *o, void *arg)
{
	set_op(o, "", "");
	return 0;
}

int group_recover(struct snapfs *fs, const struct object *obj)
{
	int rc;

	if (obj->kind == OBJ_CGSNAPSHOT && !strcmp(obj->op, "create"))
		return !strcmp(obj->op_arg, "switch") ? create_complete(fs, obj->ino)
						      : create_settle(fs, obj->ino);
	if (obj->kind == OBJ_CGSNAPSHOT && !strcmp(obj->op, "delete")) {
		rc = delete_members(fs, obj->ino);
		if (rc)
			object_modify(fs, obj->ino, delete_failed, NULL);
		return rc;
	}
	if (obj->kind == OBJ_GROUP && !strcmp(obj->op, "fill"))
		return fill_end(fs, obj->ino, false);
	if (obj->kind == OBJ_GROUP && !strcmp(obj->op, "cgsnapshot"))
		return object_modify(fs, obj->ino, clear_op, NULL); /* its cgsnapshot recovers */
	return -EINVAL;
}
