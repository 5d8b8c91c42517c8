/* fsops.c - see fsops.h.
 *
 * Each handler: decode the request, make one call into the core (which
 * returns 0 or -errno), then reply. Inode numbers are computed and stable
 * (tree.h), so lookup counts need no bookkeeping and forget is a no-op.
 */
#include "fsops.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "attr.h"
#include "group.h"
#include "json.h"
#include "log.h"
#include "object.h"
#include "reader.h"
#include "share.h"
#include "snapshot.h"
#include "status.h"
#include "tree.h"
#include "volume.h"

/* How long the kernel may keep attributes and names (-o attr_timeout,
 * 1 s by default). Every catalogue change also reaches the kernel as an
 * invalidation: this mount's own from the committing thread, before the
 * reply (on_local_commit()), other hosts' from the notifier thread; the
 * timeout only bounds what a lost notice could leave. Links keep at most
 * LINK_TIMEOUT: a link's size and a group's link names follow renames of
 * the objects they point to, which send no notice for the link. Regular
 * files are never cached: info.json changes with every update and is
 * read with direct_io, as status.json; disk.raw's st_blocks follows
 * merges under it. */
#define LINK_TIMEOUT 1.0

static struct snapfs *req_fs(fuse_req_t req)
{
	return ((struct mount_ctx *)fuse_req_userdata(req))->fs;
}

static void req_cred(fuse_req_t req, struct cred *c)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	const struct snapfs_options *o = req_fs(req)->opts;
	int n;

	c->uid = ctx->uid;
	c->gid = ctx->gid;
	c->ngroups = 0;
	/* Supplementary groups cost a read of /proc: only when they can
	 * make the caller an admin. */
	if (ctx->uid == 0 || !o->has_admin_gid || ctx->gid == o->admin_gid)
		return;
	n = fuse_req_getgroups(req, CRED_MAX_GROUPS, c->groups);
	c->ngroups = n < 0 ? 0 : (n > CRED_MAX_GROUPS ? CRED_MAX_GROUPS : n);
}

/* The names of directories and files: those of links keep less. */
static double entry_timeout_for(const struct snapfs *fs, const struct stat *st)
{
	double t = fs->opts->attr_timeout_s;

	/* changes/ entries come and go with the snapshots of a volume, which
	 * send no notice for them: never cached */
	if ((uint64_t)st->st_ino & INO_CHANGES_BASE)
		return 0.0;
	return S_ISLNK(st->st_mode) && t > LINK_TIMEOUT ? LINK_TIMEOUT : t;
}

/* Directories (objects, the top ones and the fixed ones such as volumes/
 * and snapshots/, which a path walk checks with default_permissions) and
 * links are cached; regular files are not. */
static double attr_timeout_for(const struct snapfs *fs, const struct stat *st)
{
	return S_ISREG(st->st_mode) ? 0.0 : entry_timeout_for(fs, st);
}

static void fill_entry(const struct snapfs *fs, struct fuse_entry_param *e, const struct stat *st)
{
	memset(e, 0, sizeof(*e));
	e->ino = st->st_ino;
	e->generation = 1;
	e->attr = *st;
	e->attr_timeout = attr_timeout_for(fs, st);
	e->entry_timeout = entry_timeout_for(fs, st);
}

static void reply_entry_or_err(fuse_req_t req, int rc, const struct stat *st)
{
	struct fuse_entry_param e;

	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	fill_entry(req_fs(req), &e, st);
	fuse_reply_entry(req, &e);
}

/* The one log line of a request that ends with rc (log.h): what op did to
 * name in directory parent (name NULL: to inode parent itself). Changes
 * are logged at info; queries (level debug) only when debug lines are
 * written, since finding nothing is their ordinary answer. Returns rc. */
static int request_end(fuse_req_t req, int rc, enum log_level level, const char *op,
		       fuse_ino_t parent, const char *name)
{
	char path[4400];

	if (rc < 0 && (log_enabled(level) || rc == -EIO || rc == -ENOMEM || rc == -ENOSPC))
		tree_ino_path(req_fs(req), parent, name, path, sizeof(path));
	else
		path[0] = '\0';
	return log_request_end(rc, level, op, path);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	const struct mount_ctx *ctx = userdata;

	conn->max_read = SNAPFS_MAX_READ;
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE;
	/* The kernel lowers the mount's read-ahead window to this; main.c
	 * raises the window itself (the kernel offers only 128K here). */
	if (ctx->read_ahead > conn->max_readahead)
		conn->max_readahead = (unsigned)ctx->read_ahead;
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO; /* always plus: ls -l is the common case */
	/* Nothing changes under a cached page: snapshots never change and
	 * info.json is read with direct_io. Without this the kernel asks for
	 * attributes before every cached read of disk.raw. */
	conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct stat st;
	int rc;

	log_request_begin();
	rc = tree_lookup(req_fs(req), parent, name, &st);
	request_end(req, rc, LOG_LEVEL_DEBUG, "lookup", parent, name);
	reply_entry_or_err(req, rc, &st);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;
	int rc = tree_getattr(req_fs(req), ino, &st);

	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &st, attr_timeout_for(req_fs(req), &st));
}

static int do_setattr(fuse_req_t req, fuse_ino_t ino, const struct stat *attr, int to_set)
{
	struct snapfs *fs = req_fs(req);
	struct node node;
	struct cred cred;
	int what = 0, rc = tree_node_get(fs, ino, &node);

	if (rc)
		return rc;
	if (to_set & FUSE_SET_ATTR_SIZE)
		rc = S_ISDIR(node.mode) ? -EISDIR : -EROFS;
	else if (node.type != NODE_OBJECT)
		rc = S_ISDIR(node.mode) ? -EPERM : -EROFS;
	else if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME_NOW |
			   FUSE_SET_ATTR_MTIME_NOW))
		rc = -EPERM; /* times are the catalogue's: created_at, updated_at */
	tree_node_clear(&node);
	if (rc)
		return rc;
	if (to_set & FUSE_SET_ATTR_MODE)
		what |= OBJECT_SET_MODE;
	if (to_set & FUSE_SET_ATTR_UID)
		what |= OBJECT_SET_UID;
	if (to_set & FUSE_SET_ATTR_GID)
		what |= OBJECT_SET_GID;
	if (!what)
		return 0;
	req_cred(req, &cred);
	return object_set_owner(fs, &cred, ino, what, attr->st_mode, attr->st_uid, attr->st_gid);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	struct stat st;
	int rc;

	log_request_begin();
	snapfs_change_begin(req_fs(req));
	rc = do_setattr(req, ino, attr, to_set);
	snapfs_change_end(req_fs(req));
	request_end(req, rc, LOG_LEVEL_INFO, to_set & FUSE_SET_ATTR_SIZE ? "truncate" : "setattr",
		    ino, NULL);

	if (!rc)
		rc = tree_getattr(req_fs(req), ino, &st);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	fuse_reply_attr(req, &st, attr_timeout_for(req_fs(req), &st));
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char buf[4096];
	int rc = tree_readlink(req_fs(req), ino, buf, sizeof(buf));

	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_readlink(req, buf);
}

static int do_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		    struct stat *st)
{
	struct snapfs *fs = req_fs(req);
	struct node dir;
	struct cred cred;
	uint64_t ino = 0;
	int rc = tree_node_get(fs, parent, &dir);

	if (rc)
		return rc;
	req_cred(req, &cred);
	switch (dir.type) {
	case NODE_TENANTS:
		rc = tenant_create(fs, &cred, name, mode, &ino);
		break;
	case NODE_TENANT_VOLUMES:
		rc = volume_create(fs, &cred, dir.obj.ino, name, &ino);
		break;
	case NODE_VOLUME_SNAPSHOTS:
		rc = snapshot_create(fs, &cred, dir.obj.ino, name, &ino);
		break;
	case NODE_TENANT_GROUPS:
		rc = group_create(fs, &cred, dir.obj.ino, name, &ino);
		break;
	case NODE_GROUP_CGSNAPSHOTS:
		rc = group_snapshot_create(fs, &cred, dir.obj.ino, name, &ino);
		break;
	default:
		rc = -EPERM;
		break;
	}
	tree_node_clear(&dir);
	if (!rc)
		rc = tree_getattr(fs, ino, st);
	return rc;
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct stat st;
	int rc;

	log_request_begin();
	snapfs_change_begin(req_fs(req));
	rc = do_mkdir(req, parent, name, mode & ~fuse_req_ctx(req)->umask, &st);
	snapfs_change_end(req_fs(req));
	request_end(req, rc, LOG_LEVEL_INFO, "mkdir", parent, name);
	reply_entry_or_err(req, rc, &st);
}

/* The object called name in the container directory parent. */
static int child_object(struct snapfs *fs, fuse_ino_t parent, const char *name,
			struct node *child)
{
	struct stat st;
	int rc = tree_lookup(fs, parent, name, &st);

	if (rc)
		return rc;
	return tree_node_get(fs, st.st_ino, child);
}

static int do_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct snapfs *fs = req_fs(req);
	struct node child;
	struct cred cred;
	int rc = child_object(fs, parent, name, &child);

	if (rc)
		return rc;
	req_cred(req, &cred);
	if (child.type != NODE_OBJECT)
		rc = S_ISDIR(child.mode) ? -EPERM : -ENOTDIR;
	else if (child.obj.kind == OBJ_TENANT)
		rc = tenant_delete(fs, &cred, child.obj.ino);
	else if (child.obj.kind == OBJ_VOLUME)
		rc = volume_delete(fs, &cred, child.obj.ino, false);
	else if (child.obj.kind == OBJ_SNAPSHOT)
		rc = snapshot_delete(fs, &cred, child.obj.ino, false);
	else if (child.obj.kind == OBJ_GROUP)
		rc = group_delete(fs, &cred, child.obj.ino);
	else
		rc = group_snapshot_delete(fs, &cred, child.obj.ino, false);
	tree_node_clear(&child);
	return rc;
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	int rc;

	log_request_begin();
	snapfs_change_begin(req_fs(req));
	rc = do_rmdir(req, parent, name);
	snapfs_change_end(req_fs(req));
	request_end(req, rc, LOG_LEVEL_INFO, "rmdir", parent, name);
	fuse_reply_err(req, -rc);
}

/* rm of a group's volumes/V removes V from the group; nothing else can
 * be unlinked. */
static int do_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct snapfs *fs = req_fs(req);
	struct node child, dir;
	struct cred cred;
	int rc = child_object(fs, parent, name, &child);

	if (rc)
		return rc;
	rc = S_ISDIR(child.mode) ? -EISDIR : -EPERM;
	if (child.type == NODE_MEMBER_LINK && !tree_node_get(fs, parent, &dir)) {
		if (dir.type == NODE_GROUP_VOLUMES) {
			req_cred(req, &cred);
			rc = group_volume_unlink(fs, &cred, dir.obj.ino, name);
		}
		tree_node_clear(&dir);
	} else if (rc == -EPERM) {
		log_refuse(rc, "only a group's volumes/<volume> links are removed");
	}
	tree_node_clear(&child);
	return rc;
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	int rc;

	log_request_begin();
	snapfs_change_begin(req_fs(req));
	rc = do_unlink(req, parent, name);
	snapfs_change_end(req_fs(req));
	request_end(req, rc, LOG_LEVEL_INFO, "unlink", parent, name);
	fuse_reply_err(req, -rc);
}

/* ln -s TARGET G/volumes/V adds V to the group; no other link can be made. */
static int do_symlink(fuse_req_t req, const char *target, fuse_ino_t parent, const char *name,
		      struct stat *st)
{
	struct snapfs *fs = req_fs(req);
	struct node dir;
	struct cred cred;
	uint64_t ino;
	int rc = tree_node_get(fs, parent, &dir);

	if (rc)
		return rc;
	if (dir.type == NODE_GROUP_VOLUMES) {
		req_cred(req, &cred);
		rc = group_volume_link(fs, &cred, dir.obj.ino, name, target, &ino);
	} else {
		rc = log_refuse(-EPERM, "links are made only in a group's volumes/");
	}
	tree_node_clear(&dir);
	if (!rc)
		rc = tree_getattr(fs, ino | SLOT_MEMBER_LINK, st);
	return rc;
}

static void op_symlink(fuse_req_t req, const char *target, fuse_ino_t parent, const char *name)
{
	struct stat st;
	int rc;

	log_request_begin();
	snapfs_change_begin(req_fs(req));
	rc = do_symlink(req, target, parent, name, &st);
	snapfs_change_end(req_fs(req));
	request_end(req, rc, LOG_LEVEL_INFO, "symlink", parent, name);

	reply_entry_or_err(req, rc, &st);
}

static void op_eperm_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
			   dev_t rdev)
{
	log_request_begin();
	log_refuse(-EPERM, "the tree holds only objects: no device nodes or other files");
	fuse_reply_err(req, -request_end(req, -EPERM, LOG_LEVEL_INFO, "mknod", parent, name));
}

static void op_eperm_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
			  const char *newname)
{
	log_request_begin();
	log_refuse(-EPERM, "no hard links: the tree's names are its objects'");
	fuse_reply_err(req, -request_end(req, -EPERM, LOG_LEVEL_INFO, "link", newparent, newname));
}

static void op_eperm_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
			    struct fuse_file_info *fi)
{
	log_request_begin();
	log_refuse(-EPERM, "the tree holds only objects: no regular files");
	fuse_reply_err(req, -request_end(req, -EPERM, LOG_LEVEL_INFO, "create", parent, name));
}

static int do_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		     const char *newname, unsigned int flags)
{
	struct snapfs *fs = req_fs(req);
	struct node child;
	struct cred cred;
	int rc;

	if (flags & RENAME_EXCHANGE)
		return log_refuse(-EINVAL, "objects are renamed, never exchanged");
	rc = child_object(fs, parent, name, &child);
	if (rc)
		return rc;
	if (child.type != NODE_OBJECT)
		rc = log_refuse(-EPERM, "fixed entries keep their names");
	else if (parent != newparent)
		rc = log_refuse(-EPERM, "objects do not move between containers");
	tree_node_clear(&child);
	if (rc)
		return rc;
	req_cred(req, &cred);
	return object_rename(fs, &cred, child.ino, newname);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	int rc;

	log_request_begin();
	snapfs_change_begin(req_fs(req));
	rc = do_rename(req, parent, name, newparent, newname, flags);
	snapfs_change_end(req_fs(req));
	request_end(req, rc, LOG_LEVEL_INFO, "rename", parent, name);
	fuse_reply_err(req, -rc);
}

void fsops_handles_init(struct mount_ctx *ctx)
{
	pthread_mutex_init(&ctx->handles_lock, NULL);
	ctx->handles.prev = ctx->handles.next = &ctx->handles;
}

static void handle_add(struct mount_ctx *ctx, struct fh_link *h)
{
	pthread_mutex_lock(&ctx->handles_lock);
	h->next = &ctx->handles;
	h->prev = ctx->handles.prev;
	h->prev->next = h;
	ctx->handles.prev = h;
	pthread_mutex_unlock(&ctx->handles_lock);
}

static void handle_remove(struct mount_ctx *ctx, struct fh_link *h)
{
	pthread_mutex_lock(&ctx->handles_lock);
	h->prev->next = h->next;
	h->next->prev = h->prev;
	h->prev = h->next = NULL;
	pthread_mutex_unlock(&ctx->handles_lock);
}

void fsops_handles_drop(struct mount_ctx *ctx)
{
	unsigned n = 0;

	while (ctx->handles.next != &ctx->handles) {
		struct fh_link *h = ctx->handles.next;

		h->drop(h); /* removes h from the list */
		n++;
	}
	if (n)
		log_info("%u open files or directories not released by the kernel: freed", n);
}

static struct mount_ctx *req_ctx(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* What an open file handle (fi->fh) holds. */
struct open_file {
	struct fh_link link;      /* in the mount's handles once opened */
	struct mount_ctx *ctx;    /* whose handles; NULL before */
	unsigned refs;            /* the open, and each read replying from it */
	enum node_type type;      /* NODE_INFO_JSON, NODE_DISK_RAW, NODE_MANAGEABLE_FILE (empty),
				   * NODE_CHANGES_FILE or NODE_CHANGES_JSON */
	char *data;               /* info.json, changes.json: one copy per open */
	size_t len;
	struct reader *reader;    /* disk.raw: the snapshot's resolved chain */
	struct reader_changes *changes; /* changes/, changes.json/: both snapshots held */
};

/* Drop a reference. The kernel may complete a read and send the release
 * before the reading thread has left fuse_reply_buf(), so the last
 * reference, not the release, frees the data. */
static void open_file_free(struct snapfs *fs, struct open_file *of)
{
	if (!of || __atomic_sub_fetch(&of->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	if (of->ctx)
		handle_remove(of->ctx, &of->link);
	if (of->reader)
		reader_release(fs, of->reader);
	if (of->changes)
		reader_changes_release(fs, of->changes);
	if (of->type != NODE_CHANGES_JSON)
		free(of->data);
	free(of);
}

/* fsops_handles_drop(): no request runs, so only the open's reference is left. */
static void open_file_drop(struct fh_link *link)
{
	struct open_file *of = (struct open_file *)link;

	of->refs = 1;
	open_file_free(of->ctx->fs, of);
}

/* changes.json: the pair's text, built by the first open, shared. */
static int changes_text(struct open_file *of)
{
	const struct chain_range *r;
	const char *t;
	size_t n, len;
	char *text;
	int rc;

	t = reader_changes_text(of->changes, &len);
	if (!t) {
		r = reader_changes_ranges(of->changes, &n, NULL);
		rc = changes_json_text(reader_changes_chain(of->changes), r, n, &text, &len);
		if (rc)
			return rc;
		rc = reader_changes_text_set(of->changes, text, len);
		if (rc)
			return rc;
		t = reader_changes_text(of->changes, &len);
	}
	/* the entry's text, kept while of->changes holds the entry */
	of->data = (char *)t;
	of->len = len;
	return 0;
}

static int do_open(struct snapfs *fs, const struct cred *cred, fuse_ino_t ino,
		   struct fuse_file_info *fi, struct open_file **out)
{
	struct open_file *of;
	struct node node;
	int rc = tree_node_get(fs, ino, &node);

	if (rc)
		return rc;
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC))
		rc = log_refuse(-EROFS, "files of the tree are read-only");
	else if (node.type != NODE_INFO_JSON && node.type != NODE_DISK_RAW &&
		 node.type != NODE_MANAGEABLE_FILE && node.type != NODE_STATUS &&
		 node.type != NODE_CHANGES_FILE && node.type != NODE_CHANGES_JSON)
		rc = S_ISDIR(node.mode) ? -EISDIR : -ENOTSUP;
	of = rc ? NULL : calloc(1, sizeof(*of));
	if (!rc && !of)
		rc = -ENOMEM;
	if (!rc) {
		of->refs = 1;
		of->type = node.type;
		if (node.type == NODE_MANAGEABLE_FILE) {
			/* empty: what it is lies in its attributes */
			fi->direct_io = 1;
		} else if (node.type == NODE_STATUS) {
			/* made anew at each open; its size is 0 until then */
			rc = cred_is_admin(fs, cred)
				     ? status_json_text(fs, &of->data, &of->len)
				     : log_refuse(-EACCES, "status.json is for admins only");
			fi->direct_io = 1;
		} else if (node.type == NODE_INFO_JSON) {
			/* read without the page cache: its size changes with
			 * every update of the object */
			rc = tree_read_info(fs, ino, &of->data, &of->len);
			fi->direct_io = 1;
		} else if (node.type == NODE_CHANGES_FILE) {
			/* never changes either */
			rc = reader_changes_open(fs, node.obj.ino, node.older, &of->changes);
			fi->keep_cache = 1;
		} else if (node.type == NODE_CHANGES_JSON) {
			rc = reader_changes_open(fs, node.obj.ino, node.older, &of->changes);
			if (!rc)
				rc = changes_text(of);
			fi->direct_io = 1;
		} else {
			/* a snapshot never changes: keep the page cache */
			rc = reader_open(fs, ino & ~INO_SLOT_MASK, &of->reader);
			fi->keep_cache = 1;
		}
	}
	tree_node_clear(&node);
	if (rc) {
		open_file_free(fs, of);
		return rc;
	}
	*out = of;
	return 0;
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct snapfs *fs = req_fs(req);
	struct open_file *of = NULL;
	bool write = (fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC);
	struct cred cred;
	int rc;

	log_request_begin();
	req_cred(req, &cred);
	rc = do_open(fs, &cred, ino, fi, &of);
	request_end(req, rc, write ? LOG_LEVEL_INFO : LOG_LEVEL_DEBUG, "open", ino, NULL);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	of->ctx = req_ctx(req);
	of->link.drop = open_file_drop;
	handle_add(of->ctx, &of->link);
	fi->fh = (uint64_t)(uintptr_t)of;
	if (fuse_reply_open(req, fi) == -ENOENT)
		open_file_free(fs, of);
}

/* One read buffer per worker thread, as large as the largest request: a
 * fresh 1 MiB malloc per read would be an mmap, page faults and a munmap. */
static pthread_key_t read_buf_key;
static pthread_once_t read_buf_once = PTHREAD_ONCE_INIT;

static void read_buf_key_make(void)
{
	pthread_key_create(&read_buf_key, free);
}

static char *read_buf_get(size_t size)
{
	char *buf;

	if (size > SNAPFS_MAX_READ)
		return malloc(size);
	pthread_once(&read_buf_once, read_buf_key_make);
	buf = pthread_getspecific(read_buf_key);
	if (!buf) {
		buf = malloc(SNAPFS_MAX_READ);
		if (buf && pthread_setspecific(read_buf_key, buf)) {
			free(buf);
			buf = NULL;
		}
	}
	return buf;
}

/* Read [off, off + size) of chain c into buf; with ranges (changes/),
 * only what they cover, zeros elsewhere. Returns the bytes or -errno. */
static int read_masked(struct chain *c, const struct chain_range *r, size_t nr, char *buf,
		       size_t size, uint64_t off)
{
	uint64_t end, pos = off;
	size_t i;

	if (!r)
		return chain_read(c, buf, size, off);
	if (off >= chain_size(c))
		return 0;
	end = off + size > chain_size(c) ? chain_size(c) : off + size;
	i = chain_ranges_find(r, nr, off);
	while (pos < end) {
		uint64_t next = i < nr && r[i].start < end ? r[i].start : end;

		if (next > pos) { /* a hole of the changes file */
			memset(buf + (pos - off), 0, (size_t)(next - pos));
			pos = next;
			continue;
		}
		next = r[i].start + r[i].len < end ? r[i].start + r[i].len : end;
		int n = chain_read(c, buf + (pos - off), (size_t)(next - pos), pos);

		if (n < 0)
			return n;
		pos = next;
		i++;
	}
	return (int)(end - off);
}

static void read_disk_copy(fuse_req_t req, struct chain *c, const struct chain_range *r,
			   size_t nr, size_t size, off_t off)
{
	char *buf = read_buf_get(size);
	int n;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = read_masked(c, r, nr, buf, size, (uint64_t)off);
	if (n < 0)
		fuse_reply_err(req, -n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	if (size > SNAPFS_MAX_READ)
		free(buf);
}

/* Zeros for holes and zero clusters. */
static const char zero_page_run[SNAPFS_MAX_READ];

/* Most pieces a spliced reply may have and still fit libfuse's pipe (see
 * SNAPFS_MAX_READ): a larger one is read by copy. */
#define READ_SPLICE_PIECES 28

/* Reply to a read of disk.raw. A range with data is answered with
 * (fd, offset) pieces straight from the map, so that libfuse splices
 * page-cache pages of the share instead of copying them through a buffer;
 * zeros between them come from a static zero run. A range with no data at
 * all is answered from the zero run by plain write: a spliced memory piece
 * costs one copy into the pipe and another out of it. A range that needs
 * decompression or more than READ_SPLICE_PIECES pieces is read by copy.
 * A changes file reads the same way, with zeros outside its ranges. */
static void read_disk(fuse_req_t req, struct open_file *of, size_t size, off_t off)
{
	struct chain *c = of->changes ? reader_changes_chain(of->changes) : reader_chain(of->reader);
	const struct chain_range *r = NULL;
	size_t nr = 0, ri = 0;
	/* a fuse_bufvec with room for READ_SPLICE_PIECES buffers: its buf[]
	 * is declared with one element, so the pieces are reached through a
	 * pointer into storage of the right size */
	union {
		struct fuse_bufvec v;
		char bytes[sizeof(struct fuse_bufvec) +
			   (READ_SPLICE_PIECES - 1) * sizeof(struct fuse_buf)];
	} bv;
	struct fuse_buf *pieces = (struct fuse_buf *)(bv.bytes + offsetof(struct fuse_bufvec, buf));
	uint64_t pos = (uint64_t)off, end;
	size_t count = 0;
	bool data = false;

	if (off < 0 || (uint64_t)off >= chain_size(c) || size == 0) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (of->changes) {
		r = reader_changes_ranges(of->changes, &nr, NULL);
		ri = chain_ranges_find(r, nr, pos);
	}
	if (size > SNAPFS_MAX_READ) { /* larger than the zero run */
		read_disk_copy(req, c, r, nr, size, off);
		return;
	}
	end = pos + size > chain_size(c) ? chain_size(c) : pos + size;
	while (pos < end) {
		struct chain_extent e;
		struct fuse_buf *b;
		uint64_t len, limit = end;

		if (r) {
			while (ri < nr && r[ri].start + r[ri].len <= pos)
				ri++;
			if (ri == nr || r[ri].start > pos) {
				/* a hole of the changes file */
				e.kind = CHAIN_EXTENT_HOLE;
				e.length = (ri < nr ? r[ri].start : end) - pos;
				goto piece;
			}
			if (r[ri].start + r[ri].len < limit)
				limit = r[ri].start + r[ri].len;
		}
		if (chain_extent_get(c, pos, &e) || e.kind == CHAIN_EXTENT_COMPRESSED) {
			read_disk_copy(req, c, r, nr, size, off);
			return;
		}
piece:
		if (count == READ_SPLICE_PIECES) {
			read_disk_copy(req, c, r, nr, size, off);
			return;
		}
		len = e.length < limit - pos ? e.length : limit - pos;
		b = pieces + count++;
		memset(b, 0, sizeof(*b));
		b->size = len;
		if (e.kind == CHAIN_EXTENT_DATA) {
			b->flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK | FUSE_BUF_FD_RETRY;
			b->fd = e.fd;
			b->pos = (off_t)e.offset;
			data = true;
		} else {
			b->mem = (void *)zero_page_run;
		}
		pos += len;
	}
	if (!data) {
		fuse_reply_buf(req, zero_page_run, (size_t)(end - (uint64_t)off));
		return;
	}
	bv.v.count = count;
	bv.v.idx = 0;
	bv.v.off = 0;
	fuse_reply_data(req, &bv.v, 0); /* no SPLICE_MOVE: never steal the share's pages */
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct open_file *of = (struct open_file *)(uintptr_t)fi->fh;
	struct snapfs *fs;

	if (of->type == NODE_DISK_RAW || of->type == NODE_CHANGES_FILE) {
		read_disk(req, of, size, off);
		return;
	}
	if (off < 0 || (size_t)off >= of->len) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > of->len - (size_t)off)
		size = of->len - (size_t)off;
	fs = req_fs(req); /* req is gone after the reply */
	__atomic_add_fetch(&of->refs, 1, __ATOMIC_ACQ_REL);
	fuse_reply_buf(req, of->data + off, size);
	open_file_free(fs, of);
}

static void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi)
{
	struct open_file *of = (struct open_file *)(uintptr_t)fi->fh;
	int64_t pos;

	if (off < 0 || (whence != SEEK_DATA && whence != SEEK_HOLE)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (of->type == NODE_CHANGES_FILE) {
		const struct chain_range *r;
		size_t nr;

		r = reader_changes_ranges(of->changes, &nr, NULL);
		pos = chain_ranges_seek(r, nr, chain_size(reader_changes_chain(of->changes)),
					(uint64_t)off, whence);
		if (pos < 0)
			fuse_reply_err(req, (int)-pos);
		else
			fuse_reply_lseek(req, (off_t)pos);
		return;
	}
	if (of->type != NODE_DISK_RAW) {
		/* info.json: all data. (ENOSYS would turn lseek off for the
		 * whole mount.) */
		if ((size_t)off >= of->len)
			fuse_reply_err(req, ENXIO);
		else
			fuse_reply_lseek(req, whence == SEEK_DATA ? off : (off_t)of->len);
		return;
	}
	pos = chain_seek(reader_chain(of->reader), (uint64_t)off, whence);
	if (pos < 0)
		fuse_reply_err(req, (int)-pos);
	else
		fuse_reply_lseek(req, (off_t)pos);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	open_file_free(req_fs(req), (struct open_file *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

/* What an open directory handle (fi->fh) holds. */
struct open_dir {
	struct fh_link link; /* in the mount's handles */
	struct mount_ctx *ctx;
	struct dir_listing *listing;
};

static void open_dir_free(struct open_dir *d)
{
	handle_remove(d->ctx, &d->link);
	tree_listing_free(d->listing);
	free(d);
}

static void open_dir_drop(struct fh_link *link)
{
	open_dir_free((struct open_dir *)link);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct open_dir *d = calloc(1, sizeof(*d));
	int rc = d ? tree_readdir(req_fs(req), ino, &d->listing) : -ENOMEM;

	if (rc) {
		free(d);
		fuse_reply_err(req, -rc);
		return;
	}
	d->ctx = req_ctx(req);
	d->link.drop = open_dir_drop;
	handle_add(d->ctx, &d->link);
	fi->fh = (uint64_t)(uintptr_t)d;
	if (fuse_reply_open(req, fi) == -ENOENT)
		open_dir_free(d);
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi, bool plus)
{
	struct dir_listing *l = ((struct open_dir *)(uintptr_t)fi->fh)->listing;
	struct snapfs *fs = req_fs(req);
	struct catalog_txn *txn = NULL;
	char *buf = malloc(size);
	size_t used = 0;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	/* one read transaction for the attributes of the whole batch */
	if (plus && catalog_txn_begin(fs->cat, false, &txn))
		txn = NULL;
	for (size_t i = (size_t)off; i < l->count; i++) {
		const struct dir_entry *d = &l->entries[i];
		struct fuse_entry_param e;
		struct stat st = {.st_ino = d->ino ? d->ino : 1, .st_mode = d->type}, full;
		size_t n;

		if (plus) {
			bool dot = !strcmp(d->name, ".") || !strcmp(d->name, "..");

			if (dot || !txn || tree_getattr_txn(fs, txn, d->ino, &full)) {
				/* no attributes: the kernel looks it up later */
				memset(&e, 0, sizeof(e));
				e.attr = st;
			} else {
				fill_entry(fs, &e, &full);
			}
			n = fuse_add_direntry_plus(req, buf + used, size - used, d->name, &e,
						   (off_t)i + 1);
		} else {
			n = fuse_add_direntry(req, buf + used, size - used, d->name, &st,
					      (off_t)i + 1);
		}
		if (n > size - used)
			break;
		used += n;
	}
	catalog_txn_abort(txn);
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, true);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	open_dir_free((struct open_dir *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;

	if (fstatvfs(req_fs(req)->share->dirfd, &sv) < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	fuse_reply_statfs(req, &sv);
}

/* Only user.* names are ours; every other namespace is unknown. */
static bool user_name(const char *name)
{
	return !strncmp(name, "user.", 5);
}

/* request_end() of an attribute operation: "OP NAME OBJECT: ...". */
static void xattr_request_end(fuse_req_t req, int rc, enum log_level level, const char *op,
			      fuse_ino_t ino, const char *name)
{
	char what[300];

	snprintf(what, sizeof(what), "%s %.255s", op, name);
	request_end(req, rc, level, what, ino, NULL);
}

static void reply_xattr_value(fuse_req_t req, int rc, char *value, size_t len, size_t size)
{
	if (rc)
		fuse_reply_err(req, -rc);
	else if (size == 0)
		fuse_reply_xattr(req, len);
	else if (len > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, value, len);
	free(value);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	char *value = NULL;
	size_t len = 0;
	int rc;

	log_request_begin();
	rc = user_name(name) ? attr_get(req_fs(req), ino, name, &value, &len) : -ENOTSUP;
	xattr_request_end(req, rc, LOG_LEVEL_DEBUG, "getxattr", ino, name);
	reply_xattr_value(req, rc, value, len, size);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	char *names = NULL;
	size_t len = 0;
	int rc = attr_list(req_fs(req), ino, &names, &len);

	reply_xattr_value(req, rc, names, len, size);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	struct cred cred;
	int rc;

	req_cred(req, &cred);
	log_request_begin();
	snapfs_change_begin(req_fs(req));
	rc = user_name(name) ? attr_set(req_fs(req), &cred, ino, name, value, size, flags)
			     : log_refuse(-ENOTSUP, "only user.* attributes are snapfs's");
	snapfs_change_end(req_fs(req));
	/* Other namespaces (security.*, system.*) are what copying tools probe. */
	xattr_request_end(req, rc, user_name(name) ? LOG_LEVEL_INFO : LOG_LEVEL_DEBUG, "setxattr",
			  ino, name);
	fuse_reply_err(req, -rc);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct cred cred;
	int rc;

	req_cred(req, &cred);
	log_request_begin();
	snapfs_change_begin(req_fs(req));
	rc = user_name(name) ? attr_remove(req_fs(req), &cred, ino, name)
			     : log_refuse(-ENOTSUP, "only user.* attributes are snapfs's");
	snapfs_change_end(req_fs(req));
	xattr_request_end(req, rc, user_name(name) ? LOG_LEVEL_INFO : LOG_LEVEL_DEBUG,
			  "removexattr", ino, name);
	fuse_reply_err(req, -rc);
}

const struct fuse_lowlevel_ops snapfs_fsops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readlink = op_readlink,
	.mknod = op_eperm_mknod,
	.mkdir = op_mkdir,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.symlink = op_symlink,
	.rename = op_rename,
	.link = op_eperm_link,
	.open = op_open,
	.read = op_read,
	.release = op_release,
	.lseek = op_lseek,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.releasedir = op_releasedir,
	.statfs = op_statfs,
	.setxattr = op_setxattr,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.removexattr = op_removexattr,
	.create = op_eperm_create,
};

/* ---- catalogue changes to the kernel ---- */

/* The kernel may hold attributes of an object's directory, of the fixed
 * entries inside it (which show its mtime; fixed directories also its
 * tenant's owner and mode) and of its links (by-id, member: their size is
 * their target's length). Dropping attributes never blocks, so this runs
 * in request handlers too; an inode the kernel does not have is skipped by
 * the kernel. A notice also makes the kernel discard a reply computed
 * before it (attr_version), so a concurrent lookup cannot bring the old
 * attributes back. */
static void invalidate_object(struct fuse_session *se, uint64_t ino)
{
	static const unsigned slots[] = {0, 1, 2, 3, SLOT_MEMBER_LINK, SLOT_BYID};

	ino &= ~INO_SLOT_MASK;
	if (!ino)
		return;
	for (size_t i = 0; i < sizeof(slots) / sizeof(slots[0]); i++)
		fuse_lowlevel_notify_inval_inode(se, ino | slots[i], -1, 0);
}

struct tenant_walk {
	struct fuse_session *se;
	unsigned slot_from, slot_to;
};

static int invalidate_child_fixed(const char *name, uint64_t ino, void *arg)
{
	const struct tenant_walk *w = arg;

	for (unsigned slot = w->slot_from; slot <= w->slot_to; slot++)
		fuse_lowlevel_notify_inval_inode(w->se, ino | slot, -1, 0);
	return 0;
}

/* Object ino changed. When it is a tenant, the fixed directories of its
 * volumes (snapshots/) and groups (volumes/, cgsnapshots/) show its owner
 * and mode: drop theirs too. kind is OBJ_NONE when unknown. */
static void invalidate_changed(struct snapfs *fs, struct fuse_session *se, uint64_t ino,
			       enum object_kind kind, bool deleted)
{
	struct catalog_txn *txn;

	invalidate_object(se, ino);
	if (deleted || (kind != OBJ_NONE && kind != OBJ_TENANT))
		return;
	if (catalog_txn_begin(fs->cat, false, &txn))
		return;
	if (kind == OBJ_NONE) {
		struct object o;

		if (!catalog_object_get_brief(txn, ino, &o))
			kind = o.kind;
		object_clear(&o);
	}
	if (kind == OBJ_TENANT) {
		struct tenant_walk vols = {se, 2, 2}, groups = {se, 2, 3};

		catalog_children_foreach(txn, ino, OBJ_VOLUME, invalidate_child_fixed, &vols);
		catalog_children_foreach(txn, ino, OBJ_GROUP, invalidate_child_fixed, &groups);
	}
	catalog_txn_abort(txn);
}

/* Names are invalidated from a thread of its own: the kernel locks the
 * directory for that, and a request that changed the name may hold that
 * lock until it has its reply. Other hosts' record changes go the same
 * way, so that the catalogue's watch never waits for the kernel. */
struct notice {
	bool is_name, deleted;
	uint64_t ino;           /* the directory (is_name) or the object */
	char name[256];
	struct notice *next;
};

struct notifier {
	struct mount_ctx *ctx;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t more;
	struct notice *head, **tail;
	bool stop;
};

static void notice_add(struct notifier *n, const struct catalog_change *c)
{
	struct notice *e = calloc(1, sizeof(*e));

	if (!e)
		return; /* the kernel's timeouts (attr_timeout) still apply */
	e->is_name = c->is_name;
	e->deleted = c->deleted;
	if (c->is_name) {
		e->ino = tree_children_dir(c->parent, c->kind);
		snprintf(e->name, sizeof(e->name), "%s", c->name);
	} else {
		e->ino = c->ino;
	}
	pthread_mutex_lock(&n->lock);
	*n->tail = e;
	n->tail = &e->next;
	pthread_cond_signal(&n->more);
	pthread_mutex_unlock(&n->lock);
}

/* Another host's change, from the watch thread. */
static void on_catalog_change(void *arg, const struct catalog_change *c)
{
	notice_add(arg, c);
}

/* This mount's own change, from the thread that committed it: records at
 * once, so that the reply that follows finds the kernel's cache clean; a
 * removed or renamed name later (the kernel drops the name the request
 * itself named; this is for the others, e.g. a group snapshot's members). */
static void on_local_commit(void *arg, const struct catalog_change *c)
{
	struct notifier *n = arg;

	if (c->is_name)
		notice_add(n, c);
	else
		invalidate_changed(n->ctx->fs, n->ctx->se, c->ino, c->kind, c->deleted);
}

static void *notify_loop(void *arg)
{
	struct notifier *n = arg;
	struct fuse_session *se = n->ctx->se;

	pthread_mutex_lock(&n->lock);
	while (!n->stop || n->head) {
		struct notice *e = n->head;

		if (!e) {
			pthread_cond_wait(&n->more, &n->lock);
			continue;
		}
		n->head = e->next;
		if (!n->head)
			n->tail = &n->head;
		pthread_mutex_unlock(&n->lock);
		if (e->is_name && e->ino) {
			fuse_lowlevel_notify_inval_entry(se, e->ino, e->name, strlen(e->name));
		} else if (!e->is_name) {
			invalidate_changed(n->ctx->fs, se, e->ino, OBJ_NONE, e->deleted);
			if (e->deleted) /* a cached chain may hold merged files open */
				reader_drop_unused(n->ctx->fs);
		}
		free(e);
		pthread_mutex_lock(&n->lock);
	}
	pthread_mutex_unlock(&n->lock);
	return NULL;
}

int fsops_notifier_start(struct mount_ctx *ctx)
{
	struct notifier *n = calloc(1, sizeof(*n));

	if (!n)
		return -ENOMEM;
	n->ctx = ctx;
	n->tail = &n->head;
	pthread_mutex_init(&n->lock, NULL);
	pthread_cond_init(&n->more, NULL);
	if (pthread_create(&n->thread, NULL, notify_loop, n)) {
		free(n);
		return -EAGAIN;
	}
	ctx->notifier = n;
	catalog_set_commit_hook(ctx->fs->cat, on_local_commit, n);
	if (catalog_is_shared(ctx->fs->cat))
		catalog_set_change_hook(ctx->fs->cat, on_catalog_change, n);
	return 0;
}

void fsops_notifier_stop(struct mount_ctx *ctx)
{
	struct notifier *n = ctx->notifier;

	if (!n)
		return;
	/* waits for the hooks' calls under way */
	catalog_set_change_hook(ctx->fs->cat, NULL, NULL);
	catalog_set_commit_hook(ctx->fs->cat, NULL, NULL);
	pthread_mutex_lock(&n->lock);
	n->stop = true;
	pthread_cond_signal(&n->more);
	pthread_mutex_unlock(&n->lock);
	pthread_join(n->thread, NULL);
	pthread_cond_destroy(&n->more);
	pthread_mutex_destroy(&n->lock);
	free(n);
	ctx->notifier = NULL;
}
