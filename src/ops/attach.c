/* attach.c - see attach.h. */
#include "attach.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "share.h"
#include "object.h"

static int qmp_timeout(const struct snapfs *fs)
{
	return fs->opts->qmp_timeout_ms;
}

static bool node_name_is_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= ATTACH_NODE_MAX ||
	    !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '.' || *s == '_'))
			return false;
	return true;
}

int attach_parse(const char *value, struct attach_target *t)
{
	const char *hash = strrchr(value, '#');
	size_t slen;

	if (!hash || value[0] != '/')
		return -EINVAL;
	slen = (size_t)(hash - value);
	if (slen > QMP_SOCKET_PATH_MAX || !node_name_is_valid(hash + 1))
		return -EINVAL;
	memcpy(t->socket, value, slen);
	t->socket[slen] = '\0';
	snprintf(t->node, sizeof(t->node), "%s", hash + 1);
	return 0;
}

void attach_overlay_node(const char *snap_id, char *out, size_t len)
{
	char hex[33];
	size_t n = 0;

	for (const char *p = snap_id; *p && n < 24; p++)
		if (*p != '-')
			hex[n++] = *p;
	hex[n] = '\0';
	snprintf(out, len, "snapfs-%.24s", hex);
}

void attach_job_id(const char *snap_id, char *out, size_t len)
{
	snprintf(out, len, "snapfs-merge-%s", snap_id);
}

void attach_value_with_node(const char *value, const char *node, char *out, size_t len)
{
	const char *hash = strrchr(value, '#');
	int slen = hash ? (int)(hash - value) : (int)strlen(value);

	snprintf(out, len, "%.*s#%s", slen, value, node);
}

/* ---- QEMU's block graph ---- */

/* query-named-block-nodes: every node, each image with its backing chain
 * ("backing-image", which the flat form omits). */
static int graph_query(struct snapfs *fs, const char *socket, json_t **nodes)
{
	int rc = qmp_execute(socket, qmp_timeout(fs), "query-named-block-nodes", NULL, nodes);

	if (!rc && !json_is_array(*nodes)) {
		json_decref(*nodes);
		*nodes = NULL;
		rc = -EIO;
	}
	return rc == -ENOENT ? -EIO : rc;
}

static json_t *graph_node(json_t *nodes, const char *name)
{
	size_t i;
	json_t *n;

	json_array_foreach (nodes, i, n) {
		const char *nn = json_string_value(json_object_get(n, "node-name"));

		if (nn && !strcmp(nn, name))
			return n;
	}
	return NULL;
}

/* True when path (as QEMU names an image) is file of the share. QEMU
 * names a node whose options differ from its image header (an overlay
 * opened with "backing": null, then given one) by a pseudo-filename
 * "json:{...}": its file's filename is the path. */
static bool path_is_share_file(struct snapfs *fs, const char *path, const char *file)
{
	struct stat a, b;
	json_t *opts = NULL;
	bool same;

	if (path && !strncmp(path, "json:", 5)) {
		json_t *f;

		opts = json_loads(path + 5, 0, NULL);
		f = json_object_get(opts, "file");
		path = json_is_string(f) ? json_string_value(f)
					 : json_string_value(json_object_get(f, "filename"));
	}
	same = path && path[0] == '/' && !stat(path, &a) &&
	       !fstatat(fs->share->dirfd, file, &b, AT_SYMLINK_NOFOLLOW) && a.st_dev == b.st_dev &&
	       a.st_ino == b.st_ino;
	json_decref(opts);
	return same;
}

static bool node_is_format(json_t *n)
{
	const char *drv = json_string_value(json_object_get(n, "drv"));

	return drv && (!strcmp(drv, "qcow2") || !strcmp(drv, "raw"));
}

/* The position of file in the chain below root (0: root's own image), or
 * -1 when it is not in it. */
static int chain_index(struct snapfs *fs, json_t *root, const char *file)
{
	json_t *img = json_object_get(root, "image");

	for (int i = 0; json_is_object(img); i++) {
		if (path_is_share_file(fs, json_string_value(json_object_get(img, "filename")),
				       file))
			return i;
		img = json_object_get(img, "backing-image");
	}
	return -1;
}

/* The name of the format node that holds file in the chain below node
 * root: the node whose image is file and whose chain depth fits file's
 * place in root's chain. -ENOENT when there is none. */
static int graph_node_of_file(struct snapfs *fs, json_t *nodes, const char *root_name,
			      const char *file, char *out, size_t len)
{
	json_t *root = graph_node(nodes, root_name), *n;
	json_int_t depth;
	size_t i;
	int idx;

	if (!root)
		return -ENOENT;
	idx = chain_index(fs, root, file);
	if (idx < 0)
		return -ENOENT;
	depth = json_integer_value(json_object_get(root, "backing_file_depth")) - idx;
	json_array_foreach (nodes, i, n) {
		if (!node_is_format(n) ||
		    json_integer_value(json_object_get(n, "backing_file_depth")) != depth ||
		    !path_is_share_file(fs, json_string_value(json_object_get(n, "file")), file))
			continue;
		snprintf(out, len, "%s", json_string_value(json_object_get(n, "node-name")));
		return 0;
	}
	return -ENOENT;
}

/* The QMP socket and root node of attached volume vol. */
static int vol_target(const struct object *vol, struct attach_target *t)
{
	int rc = attach_parse(vol->attach, t);

	if (rc)
		log_err("volume %s: bad attach value \"%s\"", vol->id, vol->attach);
	return rc ? -EIO : 0;
}

/* ---- attach, detach ---- */

struct attach_change {
	const char *value; /* NULL: detach */
};

static int apply_attach(struct catalog_txn *txn, struct object *o, void *arg)
{
	const struct attach_change *c = arg;

	if (o->kind != OBJ_VOLUME)
		return -ENOTSUP;
	if (!c->value) {
		if (!o->attach[0])
			return -ENODATA;
		if (*o->op)
			return log_refuse(-EBUSY, "volume %s is busy (%s): not detached", o->id,
					  o->op);
		log_info("volume %s detached from %s", o->id, o->attach);
		o->attach[0] = '\0';
		snprintf(o->status, sizeof(o->status), "available");
		return 0;
	}
	if (*o->op || strcmp(o->status, "available") || o->attach[0])
		return log_refuse(-EBUSY, "volume %s is %s: not attached", o->id,
				  *o->op ? o->op : o->status);
	log_info("volume %s attached to %s", o->id, c->value);
	snprintf(o->attach, sizeof(o->attach), "%s", c->value);
	snprintf(o->status, sizeof(o->status), "in-use");
	return 0;
}

int volume_attach(struct snapfs *fs, const struct cred *cred, uint64_t ino, const char *value)
{
	struct attach_target t;
	struct attach_change c = {value};
	struct catalog_txn *txn;
	struct object vol;
	json_t *nodes = NULL, *n;
	int rc;

	if (!cred_is_admin(fs, cred))
		return log_refuse(-EPERM, "uid %u may not attach volumes (admins only)",
				  (unsigned)cred->uid);
	if (strlen(value) >= ATTACH_VALUE_MAX || attach_parse(value, &t))
		return log_refuse(
			-EINVAL,
			"attach: \"%s\" is not SOCKET#NODE (an absolute path, a node name)", value);
	rc = catalog_txn_begin(fs->cat, false, &txn);
	if (rc)
		return rc;
	rc = catalog_object_get(txn, ino, &vol);
	catalog_txn_abort(txn);
	if (!rc && (*vol.op || strcmp(vol.status, "available") || vol.attach[0]))
		rc = log_refuse(-EBUSY, "volume %s is %s: not attached", vol.id,
				*vol.op		? vol.op
				: vol.attach[0] ? "attached"
						: vol.status);
	if (!rc)
		rc = graph_query(fs, t.socket, &nodes);
	if (!rc) {
		n = graph_node(nodes, t.node);
		if (!n || !node_is_format(n) ||
		    !path_is_share_file(fs, json_string_value(json_object_get(n, "file")),
					vol.file))
			rc = log_refuse(-EINVAL,
					"attach of volume %s: QEMU at %s has no %s node %s on %s",
					vol.id, t.socket, n ? "format" : "block", t.node, vol.file);
	}
	json_decref(nodes);
	if (!rc)
		rc = object_modify(fs, ino, apply_attach, &c);
	object_clear(&vol);
	return rc;
}

int volume_detach(struct snapfs *fs, const struct cred *cred, uint64_t ino)
{
	struct attach_change c = {NULL};

	if (!cred_is_admin(fs, cred))
		return log_refuse(-EPERM, "uid %u may not detach volumes (admins only)",
				  (unsigned)cred->uid);
	return object_modify(fs, ino, apply_attach, &c);
}

/* ---- snapshots ---- */

int attach_overlay_add(struct snapfs *fs, const struct object *vol, const struct object *snap)
{
	struct attach_target t;
	char node[ATTACH_NODE_MAX], path[4096];
	int rc = vol_target(vol, &t);

	if (rc)
		return rc;
	attach_overlay_node(snap->id, node, sizeof(node));
	snprintf(path, sizeof(path), "%s/%s", fs->opts->share, snap->file);
	rc = qmp_execute(t.socket, qmp_timeout(fs), "blockdev-add",
			 json_pack("{s:s, s:s, s:{s:s, s:s}, s:n}", "driver", "qcow2", "node-name",
				   node, "file", "driver", "file", "filename", path, "backing"),
			 NULL);
	if (rc)
		log_err("snapshot %s of volume %s: QEMU at %s did not open %s", snap->id, vol->id,
			t.socket, snap->file);
	return rc ? -EIO : 0;
}

int attach_overlay_del(struct snapfs *fs, const struct object *vol, const struct object *snap)
{
	struct attach_target t;
	char node[ATTACH_NODE_MAX];
	int rc = vol_target(vol, &t);

	if (rc)
		return rc;
	attach_overlay_node(snap->id, node, sizeof(node));
	rc = qmp_execute(t.socket, qmp_timeout(fs), "blockdev-del",
			 json_pack("{s:s}", "node-name", node), NULL);
	return rc == -ENOENT ? 0 : rc;
}

int attach_overlays_switch(struct snapfs *fs, const struct object *const *vols,
			   const struct object *const *snaps, size_t n)
{
	struct attach_target t, ti;
	json_t *actions = json_array();
	int rc = n ? vol_target(vols[0], &t) : -EINVAL;

	for (size_t i = 0; i < n && !rc; i++) {
		char node[ATTACH_NODE_MAX];

		rc = vol_target(vols[i], &ti);
		if (!rc && strcmp(ti.socket, t.socket))
			rc = -EINVAL;
		attach_overlay_node(snaps[i]->id, node, sizeof(node));
		if (!rc &&
		    json_array_append_new(actions, json_pack("{s:s, s:{s:s, s:s}}", "type",
							     "blockdev-snapshot", "data", "node",
							     ti.node, "overlay", node)))
			rc = -ENOMEM;
	}
	if (rc) {
		json_decref(actions);
		return rc;
	}
	if (n == 1) {
		json_t *data = json_incref(json_object_get(json_array_get(actions, 0), "data"));

		json_decref(actions);
		rc = qmp_execute(t.socket, qmp_timeout(fs), "blockdev-snapshot", data, NULL);
	} else {
		rc = qmp_execute(t.socket, qmp_timeout(fs), "transaction",
				 json_pack("{s:o}", "actions", actions), NULL);
	}
	if (rc)
		log_err("QEMU at %s did not switch %zu volume%s onto new overlays", t.socket, n,
			n == 1 ? "" : "s");
	return rc ? -EIO : 0;
}

int attach_overlay_state(struct snapfs *fs, const struct object *vol, const struct object *snap,
			 enum attach_overlay_state *state)
{
	struct attach_target t;
	char node[ATTACH_NODE_MAX];
	json_t *nodes = NULL, *n;
	int rc = vol_target(vol, &t);

	if (!rc)
		rc = graph_query(fs, t.socket, &nodes);
	if (rc)
		return rc;
	attach_overlay_node(snap->id, node, sizeof(node));
	n = graph_node(nodes, node);
	if (!n)
		*state = ATTACH_ABSENT;
	else if (json_integer_value(json_object_get(n, "backing_file_depth")) > 0)
		*state = ATTACH_SWITCHED;
	else
		*state = ATTACH_ADDED;
	json_decref(nodes);
	return 0;
}

int attach_file_present(struct snapfs *fs, const struct object *vol, const char *file,
			bool *present)
{
	struct attach_target t;
	json_t *nodes = NULL, *root;
	int rc = vol_target(vol, &t);

	if (!rc)
		rc = graph_query(fs, t.socket, &nodes);
	if (rc)
		return rc;
	root = graph_node(nodes, t.node);
	if (!root) {
		log_err("volume %s: QEMU at %s has no node %s", vol->id, t.socket, t.node);
		rc = -EIO;
	} else {
		*present = chain_index(fs, root, file) >= 0;
	}
	json_decref(nodes);
	return rc;
}

/* ---- merges ---- */

void attach_file_drop(struct snapfs *fs, const struct object *vol, const char *file)
{
	struct attach_target target, *t = &target;
	json_t *nodes = NULL, *n;
	size_t i;

	if (vol_target(vol, t) || graph_query(fs, t->socket, &nodes))
		return;
	for (int pass = 0; pass < 2; pass++) {
		json_array_foreach (nodes, i, n) {
			const char *name = json_string_value(json_object_get(n, "node-name"));

			if (!name || node_is_format(n) != (pass == 0) ||
			    !path_is_share_file(fs, json_string_value(json_object_get(n, "file")),
						file))
				continue;
			if (qmp_execute(t->socket, qmp_timeout(fs), "blockdev-del",
					json_pack("{s:s}", "node-name", name), NULL))
				log_warn("QEMU at %s keeps node %s on %s, which is gone", t->socket,
					 name, file);
		}
	}
	json_decref(nodes);
}

/* Follow job, starting it with command and args (stolen) unless QEMU
 * runs it already. */
static int job_run(struct snapfs *fs, const struct attach_target *t, const char *command,
		   json_t *args, const char *job, qmp_progress_fn progress, void *arg)
{
	int rc = qmp_job_wait(t->socket, qmp_timeout(fs), job, progress, arg);

	if (rc != -ENOENT) {
		json_decref(args);
		return rc;
	}
	rc = qmp_execute(t->socket, qmp_timeout(fs), command, args, NULL);
	if (rc)
		return -EIO;
	rc = qmp_job_wait(t->socket, qmp_timeout(fs), job, progress, arg);
	return rc == -ENOENT ? -EIO : rc;
}

int attach_commit(struct snapfs *fs, const struct object *vol, const char *top, const char *base,
		  const char *job, qmp_progress_fn progress, void *arg)
{
	struct attach_target t;
	char top_node[ATTACH_NODE_MAX], base_node[ATTACH_NODE_MAX];
	json_t *nodes = NULL;
	int rc = vol_target(vol, &t);

	if (!rc)
		rc = graph_query(fs, t.socket, &nodes);
	if (rc)
		return rc;
	rc = graph_node_of_file(fs, nodes, t.node, top, top_node, sizeof(top_node));
	if (!rc)
		rc = graph_node_of_file(fs, nodes, t.node, base, base_node, sizeof(base_node));
	json_decref(nodes);
	if (rc) {
		log_err("volume %s: QEMU at %s has no chain %s over %s under %s", vol->id, t.socket,
			top, base, t.node);
		return -EIO;
	}
	rc = job_run(fs, &t, "block-commit",
		     json_pack("{s:s, s:s, s:s, s:s, s:s, s:b}", "job-id", job, "device", t.node,
			       "top-node", top_node, "base-node", base_node, "backing-file", base,
			       "auto-dismiss", 0),
		     job, progress, arg);
	return rc;
}
