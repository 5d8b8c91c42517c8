/* volume.c - see volume.h. */
#include "volume.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "object.h"
#include "qemu_img.h"
#include "quota.h"
#include "share.h"
#include "snapshot.h"
#include "util.h"

bool volume_status_is_valid(const char *status)
{
	static const char *const statuses[] = {
		"creating", "available", "in-use", "deleting", "error", "error_deleting",
		"error_extending", "error_restoring", "error_managing", "attaching", "detaching",
		"maintenance", "reserved", "extending", "downloading", "uploading", "retyping",
		"backing-up", "restoring-backup", "awaiting-transfer", "managing",
	};

	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
		if (!strcmp(status, statuses[i]))
			return true;
	return false;
}

/* Statuses from which the API deletes a volume without force. */
static bool volume_status_deletable(const char *status)
{
	return !strcmp(status, "available") || !strcmp(status, "error") ||
	       !strcmp(status, "error_restoring") || !strcmp(status, "error_extending") ||
	       !strcmp(status, "error_managing");
}

static int set_state(struct catalog_txn *txn, struct object *obj, void *arg)
{
	const char *const *state = arg; /* {status, op} */

	snprintf(obj->status, sizeof(obj->status), "%s", state[0]);
	snprintf(obj->op, sizeof(obj->op), "%s", state[1]);
	if (!*obj->op)
		obj->op_arg[0] = '\0';
	return 0;
}

static int volume_set_state(struct snapfs *fs, uint64_t ino, const char *status, const char *op)
{
	const char *state[2] = {status, op};

	return object_modify(fs, ino, set_state, state);
}

int volume_file_create(struct snapfs *fs, const struct object *vol)
{
	int rc;

	if (strcmp(vol->format, "qcow2"))
		return share_raw_create(fs->share, vol->file, vol->size);
	/* Claim the name with O_EXCL first: qemu-img create would overwrite. */
	rc = share_raw_create(fs->share, vol->file, 0);
	if (rc)
		return rc;
	rc = qemu_img_create_qcow2(fs->opts->qemu_img, fs->share->dirfd, vol->file, vol->size);
	if (!rc)
		rc = share_file_sync(fs->share, vol->file);
	if (rc)
		share_file_remove(fs->share, vol->file);
	return rc;
}

/* Undo step 1 of a create. If even that fails, the record keeps op
 * "create" and the next mount's recovery removes it. */
static void volume_forget(struct snapfs *fs, const struct object *vol)
{
	struct catalog_txn *txn;

	if (catalog_txn_begin(fs->cat, true, &txn))
		return;
	if (catalog_object_delete(txn, vol))
		catalog_txn_abort(txn);
	else
		catalog_txn_commit(txn);
}

int volume_create(struct snapfs *fs, const struct cred *cred, uint64_t tenant_ino,
		  const char *name, uint64_t *ino)
{
	struct catalog_txn *txn;
	struct object vol, tenant;
	int rc;

	rc = object_name_check(name);
	if (rc)
		return rc;
	object_init(&vol);
	vol.kind = OBJ_VOLUME;
	rc = uuid_generate_str(vol.id);
	if (rc)
		goto out;
	snprintf(vol.name, sizeof(vol.name), "%s", name);
	snprintf(vol.status, sizeof(vol.status), "creating");
	snprintf(vol.op, sizeof(vol.op), "create");
	snprintf(vol.format, sizeof(vol.format), "%s", fs->opts->qcow2_volumes ? "qcow2" : "raw");
	share_volume_base_name(vol.id, vol.file, sizeof(vol.file));
	vol.size = fs->opts->default_bytes;
	vol.created_at = vol.updated_at = time_now_usec();

	/* Step 1: record the intent (status creating, op create). */
	rc = catalog_txn_begin(fs->cat, true, &txn);
	if (rc)
		goto out;
	rc = catalog_object_get(txn, tenant_ino, &tenant);
	if (!rc && tenant.kind != OBJ_TENANT)
		rc = -EIO;
	if (!rc) {
		vol.parent = vol.tenant = tenant.ino;
		vol.uid = cred->uid;
		vol.gid = tenant.gid; /* new objects inherit the tenant's group and mode */
		vol.mode = tenant.mode & 07777;
		rc = catalog_object_insert(txn, &vol);
	}
	if (!rc) {
		int64_t add[QUOTA_RESOURCES] = {1, 0, (int64_t)SIZE_GIB(vol.size)};

		rc = quota_check(fs, txn, tenant.ino, add, true, "volume create");
	}
	object_clear(&tenant);
	if (rc) {
		catalog_txn_abort(txn);
		goto out;
	}
	rc = catalog_txn_commit(txn);
	if (rc)
		goto out;
	fault_point("volume-create-recorded");

	/* Step 2: the file. */
	rc = volume_file_create(fs, &vol);
	if (rc) {
		log_err("volume %s (%s): cannot create %s", name, vol.id, vol.file);
		volume_forget(fs, &vol);
		goto out;
	}
	fault_point("volume-create-file");

	/* Step 3: available. */
	rc = volume_set_state(fs, vol.ino, "available", "");
	if (rc) {
		share_file_remove(fs->share, vol.file);
		volume_forget(fs, &vol);
		goto out;
	}
	*ino = vol.ino;
	log_info("created volume %s (%s) as %s, %" PRIu64 " GiB %s", name, vol.id, vol.file,
		 vol.size / GIB, vol.format);
out:
	object_clear(&vol);
	return rc;
}

struct delete_check {
	const struct snapfs *fs;
	bool force;
	char file[256];
	char id[UUID_STR_LEN];
	char name[256];
};

static int begin_delete(struct catalog_txn *txn, struct object *vol, void *arg)
{
	struct delete_check *c = arg;

	if (vol->kind != OBJ_VOLUME)
		return -EINVAL;
	if (*vol->op)
		return log_refuse(-EBUSY, "volume %s is busy (%s)", vol->id, vol->op);
	if (vol->link_id[0])
		return log_refuse(-EBUSY, "volume %s is a member of group %s", vol->id,
				  vol->link_id);
	if (catalog_children_any(txn, vol->ino, OBJ_SNAPSHOT))
		return log_refuse(-ENOTEMPTY, "volume %s has snapshots: not deletable", vol->id);
	if (snapshot_hidden_unmanaged_any(vol))
		return log_refuse(
			-ENOTEMPTY,
			"volume %s has unmanaged snapshot files in its chain (manageable/): "
			"not deletable",
			vol->id);
	if (!c->force && !volume_status_deletable(vol->status))
		return log_refuse(-EBUSY, "volume %s is %s: not deletable", vol->id, vol->status);
	snprintf(vol->status, sizeof(vol->status), "deleting");
	snprintf(vol->op, sizeof(vol->op), "delete");
	snprintf(c->file, sizeof(c->file), "%s", vol->file);
	snprintf(c->id, sizeof(c->id), "%s", vol->id);
	snprintf(c->name, sizeof(c->name), "%s", vol->name);
	return 0;
}

/* Remove file, the volume's active file, and the files below it that are
 * hidden layers of the catalogue's record, down to the base: top first, so
 * that a retry after a crash finds the rest. */
static int volume_chain_remove(struct snapfs *fs, uint64_t ino, const char *file)
{
	struct catalog_txn *txn;
	struct object vol;
	char cur[256], below[256];
	int rc = catalog_txn_begin(fs->cat, false, &txn);

	if (rc)
		return rc;
	rc = catalog_object_get(txn, ino, &vol);
	catalog_txn_abort(txn);
	snprintf(cur, sizeof(cur), "%s", file);
	for (size_t depth = 0; !rc && depth < SNAPSHOT_CHAIN_MAX; depth++) {
		bool hidden = snapshot_hidden_get(&vol, cur, below, sizeof(below));

		rc = share_file_remove(fs->share, cur);
		if (!hidden)
			break;
		snprintf(cur, sizeof(cur), "%s", below);
	}
	object_clear(&vol);
	return rc;
}

int volume_delete_finish(struct snapfs *fs, uint64_t ino, const char *file,
				const char *volume_id)
{
	char info[300];
	struct catalog_txn *txn;
	struct object vol;
	int rc;

	rc = volume_chain_remove(fs, ino, file);
	if (!rc) {
		snprintf(info, sizeof(info), "volume-%s.info", volume_id);
		rc = share_file_remove(fs->share, info);
	}
	if (rc) {
		volume_set_state(fs, ino, "error_deleting", "");
		return -EIO;
	}
	fault_point("volume-delete-file");
	rc = catalog_txn_begin(fs->cat, true, &txn);
	if (rc)
		return rc;
	rc = catalog_object_get(txn, ino, &vol);
	if (!rc)
		rc = catalog_object_delete(txn, &vol);
	object_clear(&vol);
	if (rc) {
		catalog_txn_abort(txn);
		return rc;
	}
	return catalog_txn_commit(txn);
}

/* -EBUSY when a process such as QEMU writes the volume's active file. */
static int volume_check_unused(struct snapfs *fs, uint64_t ino)
{
	struct catalog_txn *txn;
	struct object vol;
	int rc = catalog_txn_begin(fs->cat, false, &txn);

	if (rc)
		return rc;
	rc = catalog_object_get(txn, ino, &vol);
	catalog_txn_abort(txn);
	if (!rc && vol.kind == OBJ_VOLUME)
		rc = share_file_check_unused(fs->share, vol.file);
	object_clear(&vol);
	return rc;
}

int volume_delete(struct snapfs *fs, const struct cred *cred, uint64_t ino, bool force)
{
	struct delete_check c = {fs, force, "", "", ""};
	int rc;

	if (force && !cred_is_admin(fs, cred))
		return -EPERM;
	rc = volume_check_unused(fs, ino);
	if (rc)
		return rc;
	rc = object_modify(fs, ino, begin_delete, &c);
	if (rc)
		return rc;
	fault_point("volume-delete-recorded");
	rc = volume_delete_finish(fs, ino, c.file, c.id);
	if (!rc)
		log_info("deleted volume %s (%s)%s", c.name, c.id, force ? " (force)" : "");
	return rc;
}

struct extend_check {
	struct snapfs *fs;
	uint64_t size;
	char file[256];
	char format[8];
};

static int begin_extend(struct catalog_txn *txn, struct object *vol, void *arg)
{
	struct extend_check *c = arg;

	if (vol->kind != OBJ_VOLUME)
		return -EINVAL;
	if (c->size == 0 || c->size % GIB || c->size <= vol->size)
		return log_refuse(-EINVAL,
				  "volume %s: new size %" PRIu64
				  " bytes is not a larger whole GiB than %" PRIu64,
				  vol->id, c->size, vol->size);
	if (catalog_children_any(txn, vol->ino, OBJ_SNAPSHOT) || snapshot_hidden_any(vol))
		return log_refuse(-EBUSY,
				  "volume %s has snapshots: cannot extend (as Cinder's NFS driver)",
				  vol->id);
	if (*vol->op || strcmp(vol->status, "available"))
		return log_refuse(-EBUSY, "volume %s is %s: cannot extend", vol->id,
				  *vol->op ? vol->op : vol->status);
	{
		int64_t add[QUOTA_RESOURCES] = {0, 0,
						(int64_t)(SIZE_GIB(c->size) - SIZE_GIB(vol->size))};
		int rc = quota_check(c->fs, txn, vol->tenant, add, false, "volume extend");

		if (rc)
			return rc;
	}
	snprintf(vol->status, sizeof(vol->status), "extending");
	snprintf(vol->op, sizeof(vol->op), "extend");
	snprintf(vol->op_arg, sizeof(vol->op_arg), "%" PRIu64, c->size);
	snprintf(c->file, sizeof(c->file), "%s", vol->file);
	snprintf(c->format, sizeof(c->format), "%s", vol->format);
	return 0;
}

static int finish_extend(struct catalog_txn *txn, struct object *vol, void *arg)
{
	const uint64_t *size = arg;

	vol->size = *size;
	snprintf(vol->status, sizeof(vol->status), "available");
	vol->op[0] = vol->op_arg[0] = '\0';
	return 0;
}

static int volume_file_extend(struct snapfs *fs, const char *file, const char *format,
			      uint64_t size)
{
	if (strcmp(format, "qcow2"))
		return share_raw_extend(fs->share, file, size);
	/* qcow2: the header's size is what counts; the file size says nothing.
	 * qemu-img resize to the same size again is harmless. */
	if (qemu_img_resize_qcow2(fs->opts->qemu_img, fs->share->dirfd, file, size))
		return -EIO;
	return share_file_sync(fs->share, file);
}

int volume_extend(struct snapfs *fs, const struct cred *cred, uint64_t ino, uint64_t size)
{
	struct extend_check c = {fs, size, "", ""};
	int rc = object_modify(fs, ino, begin_extend, &c);

	if (rc)
		return rc;
	fault_point("volume-extend-recorded");
	rc = volume_file_extend(fs, c.file, c.format, size);
	if (rc) {
		volume_set_state(fs, ino, "error_extending", "");
		return rc == -ENOSPC ? rc : -EIO;
	}
	fault_point("volume-extend-file");
	rc = object_modify(fs, ino, finish_extend, &size);
	if (!rc)
		log_info("extended %s to %" PRIu64 " GiB", c.file, size / GIB);
	return rc;
}

int volume_extend_finish(struct snapfs *fs, uint64_t ino)
{
	struct catalog_txn *txn;
	struct object vol;
	uint64_t size = 0;
	int rc = catalog_txn_begin(fs->cat, false, &txn);

	if (rc)
		return rc;
	rc = catalog_object_get(txn, ino, &vol);
	catalog_txn_abort(txn);
	if (!rc && parse_u64(vol.op_arg, &size))
		rc = -EIO;
	if (!rc)
		rc = volume_file_extend(fs, vol.file, vol.format, size);
	if (!rc)
		rc = object_modify(fs, ino, finish_extend, &size);
	else
		volume_set_state(fs, ino, "error_extending", "");
	object_clear(&vol);
	return rc;
}
