/* catalog.c - see catalog.h. The only file that includes <lmdb.h>; with
 * several hosts it logs each write transaction's changes for etcd
 * (catalog_shared.c) and applies the watch's changes to its LMDB copy. */
#include "catalog.h"

#include <errno.h>
#include <lmdb.h>
#include <stddef.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "catalog_shared.h"
#include "log.h"
#include "util.h"

#define CATALOG_FORMAT 1

struct catalog {
	MDB_env *env;
	MDB_dbi objects, children, ids, meta;
	struct catalog_shared *shared;  /* NULL with one host */
	char host_id[CATALOG_HOST_ID_MAX];
	pthread_mutex_t writer;         /* this host's one writer (shared) */
	pthread_rwlock_t hooks;         /* held to call on_change, on_commit */
	void (*on_change)(void *arg, const struct catalog_change *c);
	void *change_arg;
	void (*on_gone)(void *arg, const char *host);
	void *gone_arg;
	void (*on_commit)(void *arg, const struct catalog_change *c);
	void *commit_arg;
	bool readonly;                  /* catalog_open_readonly(): no writes */
};

/* A record or a name that a write transaction changed, for the commit
 * hook. */
struct touched {
	struct catalog_change c;
	char name[256];
};

struct catalog_txn {
	struct catalog *cat;
	MDB_txn *txn;
	bool write;
	struct kv_op *log;              /* shared: the changes for etcd */
	size_t nlog, caplog;
	struct touched *touched;        /* with a commit hook: what changed */
	size_t ntouched, captouched;
};

/* The databases as etcd names them (catalog_shared.h). */
static char db_char(struct catalog *cat, MDB_dbi dbi)
{
	return dbi == cat->objects ? 'o' : dbi == cat->children ? 'n' : dbi == cat->ids ? 'i' : 'm';
}

static MDB_dbi db_of(struct catalog *cat, char c)
{
	return c == 'o' ? cat->objects : c == 'n' ? cat->children : c == 'i' ? cat->ids : cat->meta;
}

static void kv_op_free(struct kv_op *op)
{
	free(op->key);
	free(op->val);
}

/* Log a change for etcd; a later change of the same key replaces it. */
static int log_change(struct catalog_txn *t, char db, const MDB_val *key, const MDB_val *val)
{
	struct kv_op *op = NULL;

	for (size_t i = 0; i < t->nlog; i++) {
		struct kv_op *o = &t->log[i];

		if (o->db == db && o->klen == key->mv_size && !memcmp(o->key, key->mv_data, o->klen)) {
			op = o;
			kv_op_free(op);
			break;
		}
	}
	if (!op) {
		if (t->nlog == t->caplog) {
			size_t cap = t->caplog ? t->caplog * 2 : 16;
			struct kv_op *l = realloc(t->log, cap * sizeof(*l));

			if (!l)
				return -ENOMEM;
			t->log = l;
			t->caplog = cap;
		}
		op = &t->log[t->nlog++];
	}
	memset(op, 0, sizeof(*op));
	op->db = db;
	op->del = val == NULL;
	op->klen = key->mv_size;
	op->key = malloc(key->mv_size + 1);
	if (val) {
		op->vlen = val->mv_size;
		op->val = malloc(val->mv_size + 1);
	}
	if (!op->key || (val && !op->val)) {
		t->nlog--;
		kv_op_free(op);
		return -ENOMEM;
	}
	memcpy(op->key, key->mv_data, key->mv_size);
	if (val)
		memcpy(op->val, val->mv_data, val->mv_size);
	return 0;
}

/* mdb_put/mdb_del of a shared entry: also logged when the catalogue is
 * shared. Return LMDB's codes (and ENOMEM). */
static int kv_put(struct catalog_txn *t, MDB_dbi dbi, MDB_val *key, MDB_val *val, unsigned flags)
{
	int rc = mdb_put(t->txn, dbi, key, val, flags);

	if (!rc && t->cat->shared && log_change(t, db_char(t->cat, dbi), key, val))
		rc = ENOMEM;
	return rc;
}

static int kv_del(struct catalog_txn *t, MDB_dbi dbi, MDB_val *key)
{
	int rc = mdb_del(t->txn, dbi, key, NULL);

	if (!rc && t->cat->shared && log_change(t, db_char(t->cat, dbi), key, NULL))
		rc = ENOMEM;
	return rc;
}

static void txn_free(struct catalog_txn *t)
{
	for (size_t i = 0; i < t->nlog; i++)
		kv_op_free(&t->log[i]);
	free(t->log);
	free(t->touched);
	free(t);
}

/* Note a changed record (is_name false: ino, kind) or name (parent, kind,
 * name) for the commit hook; a later change of the same one replaces it.
 * Without memory the hook misses it: the kernel's timeouts still apply. */
static void touch(struct catalog_txn *t, bool is_name, bool deleted, uint64_t ino, uint64_t parent,
		  enum object_kind kind, const char *name)
{
	struct touched *e = NULL;

	if (!t->cat->on_commit)
		return;
	for (size_t i = 0; i < t->ntouched && !e; i++) {
		struct touched *o = &t->touched[i];

		if (o->c.is_name == is_name &&
		    (is_name ? o->c.parent == parent && o->c.kind == kind && !strcmp(o->name, name)
			     : o->c.ino == ino))
			e = o;
	}
	if (!e) {
		if (t->ntouched == t->captouched) {
			size_t cap = t->captouched ? t->captouched * 2 : 8;
			struct touched *l = realloc(t->touched, cap * sizeof(*l));

			if (!l)
				return;
			t->touched = l;
			t->captouched = cap;
		}
		e = &t->touched[t->ntouched++];
	}
	memset(e, 0, sizeof(*e));
	e->c.is_name = is_name;
	e->c.deleted = deleted;
	e->c.ino = ino;
	e->c.parent = parent;
	e->c.kind = kind;
	if (is_name)
		snprintf(e->name, sizeof(e->name), "%s", name);
}

/* After a commit: tell the hook what the transaction changed. */
static void report_touched(struct catalog *cat, struct catalog_txn *t)
{
	if (!t->ntouched)
		return;
	pthread_rwlock_rdlock(&cat->hooks);
	for (size_t i = 0; i < t->ntouched && cat->on_commit; i++) {
		struct touched *e = &t->touched[i];

		e->c.name = e->c.is_name ? e->name : NULL;
		cat->on_commit(cat->commit_arg, &e->c);
	}
	pthread_rwlock_unlock(&cat->hooks);
}

static int mdb_to_errno(int rc, const char *what)
{
	switch (rc) {
	case 0:
		return 0;
	case MDB_NOTFOUND:
		return -ENOENT;
	case MDB_KEYEXIST:
		return -EEXIST;
	case MDB_MAP_FULL:
	case MDB_TXN_FULL:
		log_err("catalogue full during %s: %s", what, mdb_strerror(rc));
		return -ENOSPC;
	default:
		if (rc > 0) /* a system errno (LMDB's own codes are negative) */
			return -rc;
		log_err("catalogue error during %s: %s", what, mdb_strerror(rc));
		return -EIO;
	}
}

static void be64_put(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

static uint64_t be64_get(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

/* With several hosts the LMDB copy lives beside a one-host catalogue that
 * may be in dir (kept for etcd_seed=), never over it. */
#define SHARED_CACHE_DIR "etcd-cache"

int catalog_open(struct catalog **out, const char *dir, uint64_t map_size,
		 const struct catalog_shared_options *shared)
{
	struct catalog *cat = calloc(1, sizeof(*cat));
	char cache_dir[4200];
	MDB_txn *txn = NULL;
	int rc;

	if (!cat)
		return -ENOMEM;
	pthread_mutex_init(&cat->writer, NULL);
	pthread_rwlock_init(&cat->hooks, NULL);
	if (shared) {
		snprintf(cache_dir, sizeof(cache_dir), "%s/" SHARED_CACHE_DIR, dir);
		rc = mkdir_parents(cache_dir, 0700);
		if (rc) {
			log_err("cannot create %s: %s", cache_dir, strerror(-rc));
			free(cat);
			return rc;
		}
		dir = cache_dir;
	}
	rc = mdb_env_create(&cat->env);
	if (rc)
		goto fail;
	mdb_env_set_maxdbs(cat->env, 8);
	mdb_env_set_maxreaders(cat->env, 256);
	rc = mdb_env_set_mapsize(cat->env, (size_t)map_size);
	if (rc)
		goto fail_env;
	/* MDB_NOTLS: a read transaction is not tied to its thread's TLS slot,
	 * so FUSE worker threads can come and go. */
	/* MDB_NOSYNC for the copy of a shared catalogue: it is loaded anew
	 * from etcd at every mount. */
	rc = mdb_env_open(cat->env, dir, MDB_NOTLS | (shared ? MDB_NOSYNC : 0), 0600);
	if (rc)
		goto fail_env;
	rc = mdb_txn_begin(cat->env, NULL, 0, &txn);
	if (rc)
		goto fail_env;
	if ((rc = mdb_dbi_open(txn, "objects", MDB_CREATE, &cat->objects)) ||
	    (rc = mdb_dbi_open(txn, "children", MDB_CREATE, &cat->children)) ||
	    (rc = mdb_dbi_open(txn, "ids", MDB_CREATE, &cat->ids)) ||
	    (rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &cat->meta)))
		goto fail_txn;
	{
		MDB_val key = {strlen("format"), "format"}, val;
		unsigned char fmt[8];

		rc = mdb_get(txn, cat->meta, &key, &val);
		if (rc == MDB_NOTFOUND) {
			be64_put(fmt, CATALOG_FORMAT);
			val.mv_size = 8, val.mv_data = fmt;
			rc = mdb_put(txn, cat->meta, &key, &val, 0);
		} else if (rc == 0 && (val.mv_size != 8 || be64_get(val.mv_data) != CATALOG_FORMAT)) {
			log_err("catalogue %s has an unknown format", dir);
			mdb_txn_abort(txn);
			mdb_env_close(cat->env);
			free(cat);
			return -EIO;
		}
		if (rc)
			goto fail_txn;
	}
	rc = mdb_txn_commit(txn);
	if (rc)
		goto fail_env;
	if (shared) {
		snprintf(cat->host_id, sizeof(cat->host_id), "%s", shared->host_id);
		rc = shared_open(&cat->shared, cat, shared);
		if (rc) {
			mdb_env_close(cat->env);
			free(cat);
			return rc;
		}
	}
	*out = cat;
	return 0;
fail_txn:
	mdb_txn_abort(txn);
fail_env:
	mdb_env_close(cat->env);
fail:
	free(cat);
	log_err("cannot open catalogue %s: %s", dir, mdb_strerror(rc));
	return mdb_to_errno(rc, "open");
}

int catalog_open_readonly(struct catalog **out, const char *dir,
			  const struct catalog_shared_options *shared)
{
	struct catalog *cat;
	MDB_txn *txn = NULL;
	int rc;

	if (shared) {
		rc = catalog_open(&cat, dir, 1ULL << 30, NULL);
		if (rc)
			return rc;
		rc = shared_open_snapshot(&cat->shared, cat, shared);
		if (rc) {
			catalog_close(cat);
			return rc;
		}
		cat->readonly = true;
		*out = cat;
		return 0;
	}
	cat = calloc(1, sizeof(*cat));
	if (!cat)
		return -ENOMEM;
	pthread_mutex_init(&cat->writer, NULL);
	pthread_rwlock_init(&cat->hooks, NULL);
	cat->readonly = true;
	rc = mdb_env_create(&cat->env);
	if (rc)
		goto fail;
	mdb_env_set_maxdbs(cat->env, 8);
	rc = mdb_env_open(cat->env, dir, MDB_NOTLS | MDB_RDONLY, 0600);
	if (rc)
		goto fail_env;
	rc = mdb_txn_begin(cat->env, NULL, MDB_RDONLY, &txn);
	if (rc)
		goto fail_env;
	if ((rc = mdb_dbi_open(txn, "objects", 0, &cat->objects)) ||
	    (rc = mdb_dbi_open(txn, "children", 0, &cat->children)) ||
	    (rc = mdb_dbi_open(txn, "ids", 0, &cat->ids)) ||
	    (rc = mdb_dbi_open(txn, "meta", 0, &cat->meta))) {
		mdb_txn_abort(txn);
		goto fail_env;
	}
	rc = mdb_txn_commit(txn);
	if (rc)
		goto fail_env;
	*out = cat;
	return 0;
fail_env:
	mdb_env_close(cat->env);
fail:
	pthread_mutex_destroy(&cat->writer);
	pthread_rwlock_destroy(&cat->hooks);
	free(cat);
	log_err("cannot open catalogue %s to read it: %s", dir, mdb_strerror(rc));
	return rc == ENOENT || rc == MDB_NOTFOUND ? -ENOENT : -EIO;
}

void catalog_close(struct catalog *cat)
{
	if (!cat)
		return;
	shared_close(cat->shared);
	mdb_env_close(cat->env);
	pthread_mutex_destroy(&cat->writer);
	pthread_rwlock_destroy(&cat->hooks);
	free(cat);
}

bool catalog_is_shared(const struct catalog *cat)
{
	return cat->shared != NULL;
}

const char *catalog_host_id(const struct catalog *cat)
{
	return cat->shared ? cat->host_id : "";
}

int catalog_usage(struct catalog *cat, struct catalog_usage *u)
{
	MDB_envinfo info;
	MDB_stat st;
	MDB_txn *txn;
	int rc;

	memset(u, 0, sizeof(*u));
	mdb_env_info(cat->env, &info);
	mdb_env_stat(cat->env, &st);
	u->map_size = info.me_mapsize;
	u->map_used = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
	rc = mdb_txn_begin(cat->env, NULL, MDB_RDONLY, &txn);
	if (rc)
		return mdb_to_errno(rc, "begin");
	rc = mdb_stat(txn, cat->objects, &st);
	if (!rc)
		u->records = st.ms_entries;
	mdb_txn_abort(txn);
	if (rc)
		return mdb_to_errno(rc, "stat");
	if (!cat->shared)
		return 0;
	u->shared = true;
	return shared_usage(cat->shared, u);
}

int catalog_hosts_foreach(struct catalog *cat, int (*fn)(const char *host, void *arg), void *arg)
{
	return cat->shared ? shared_hosts_foreach(cat->shared, fn, arg) : 0;
}

int catalog_holds_foreach(struct catalog *cat,
			  int (*fn)(uint64_t ino, const char *host, void *arg), void *arg)
{
	return cat->shared ? shared_holds_foreach(cat->shared, fn, arg) : 0;
}

/* Setting a hook waits for the calls under way, so that a hook's arg may
 * be freed once it is unset. */
void catalog_set_change_hook(struct catalog *cat,
			     void (*fn)(void *arg, const struct catalog_change *c), void *arg)
{
	pthread_rwlock_wrlock(&cat->hooks);
	cat->change_arg = arg;
	cat->on_change = fn;
	pthread_rwlock_unlock(&cat->hooks);
}

void catalog_set_commit_hook(struct catalog *cat,
			     void (*fn)(void *arg, const struct catalog_change *c), void *arg)
{
	pthread_rwlock_wrlock(&cat->hooks);
	cat->commit_arg = arg;
	cat->on_commit = fn;
	pthread_rwlock_unlock(&cat->hooks);
}

void catalog_set_recovery_hook(struct catalog *cat, void (*fn)(void *arg, const char *host),
			       void *arg)
{
	cat->gone_arg = arg;
	cat->on_gone = fn;
}

void catalog_host_gone(struct catalog *cat, const char *host)
{
	if (cat->on_gone && strcmp(host, cat->host_id))
		cat->on_gone(cat->gone_arg, host);
}

enum op_owner_state catalog_op_owner_state(struct catalog *cat, const char *owner)
{
	return cat->shared ? shared_owner_state(cat->shared, owner) : OWNER_MINE;
}

int catalog_txn_begin(struct catalog *cat, bool write, struct catalog_txn **out)
{
	struct catalog_txn *t = calloc(1, sizeof(*t));
	int rc;

	if (!t)
		return -ENOMEM;
	if (write && cat->readonly) {
		free(t);
		return -EROFS;
	}
	if (write && cat->shared) {
		pthread_mutex_lock(&cat->writer);
		rc = shared_lock(cat->shared);
		if (rc) {
			pthread_mutex_unlock(&cat->writer);
			free(t);
			if (cat->on_gone)
				cat->on_gone(cat->gone_arg, NULL);
			return rc;
		}
	}
	rc = mdb_txn_begin(cat->env, NULL, write ? 0 : MDB_RDONLY, &t->txn);
	if (rc) {
		if (write && cat->shared) {
			shared_unlock(cat->shared);
			pthread_mutex_unlock(&cat->writer);
		}
		free(t);
		return mdb_to_errno(rc, "begin");
	}
	t->cat = cat;
	t->write = write;
	*out = t;
	return 0;
}

static const MDB_val rev_key = {sizeof("etcd_revision") - 1, "etcd_revision"};

static int64_t cache_rev(struct catalog *cat, MDB_txn *txn)
{
	MDB_val val;
	int64_t rev = 0;

	if (mdb_get(txn, cat->meta, (MDB_val *)&rev_key, &val) == 0 && val.mv_size == sizeof(rev))
		memcpy(&rev, val.mv_data, sizeof(rev));
	return rev;
}

static int cache_rev_put(struct catalog *cat, MDB_txn *txn, int64_t rev)
{
	MDB_val val = {sizeof(rev), &rev};

	return mdb_put(txn, cat->meta, (MDB_val *)&rev_key, &val, 0);
}

int catalog_txn_commit(struct catalog_txn *t)
{
	struct catalog *cat = t->cat;
	int64_t rev = 0;
	int rc;

	if (!t->write || !cat->shared) {
		rc = mdb_txn_commit(t->txn);
		if (!rc && t->write)
			report_touched(cat, t);
		txn_free(t);
		return mdb_to_errno(rc, "commit");
	}
	rc = t->nlog ? shared_commit(cat->shared, t->log, t->nlog, false, &rev) : 0;
	if (!t->nlog)
		shared_unlock(cat->shared);
	if (rc) {
		mdb_txn_abort(t->txn);
		if (cat->on_gone)
			cat->on_gone(cat->gone_arg, NULL);
	} else {
		if (rev)
			rc = mdb_to_errno(cache_rev_put(cat, t->txn, rev), "commit");
		if (!rc)
			rc = mdb_to_errno(mdb_txn_commit(t->txn), "commit");
		else
			mdb_txn_abort(t->txn);
		/* etcd has it: a failed copy is mended by loading it again */
		if (rc)
			log_err("catalogue copy: cannot record revision %lld: %s", (long long)rev,
				strerror(-rc));
		rc = 0;
		if (rev)
			shared_applied(cat->shared, rev);
	}
	pthread_mutex_unlock(&cat->writer);
	if (!rc)
		report_touched(cat, t);
	txn_free(t);
	return rc;
}

void catalog_txn_abort(struct catalog_txn *t)
{
	if (!t)
		return;
	mdb_txn_abort(t->txn);
	if (t->write && t->cat->shared) {
		shared_unlock(t->cat->shared);
		pthread_mutex_unlock(&t->cat->writer);
	}
	txn_free(t);
}

int catalog_txn_hold(struct catalog_txn *t, uint64_t ino)
{
	MDB_val key = {sizeof(ino), &ino};

	if (!t->cat->shared)
		return 0;
	if (log_change(t, 'r', &key, &key))
		return -ENOMEM;
	return 0;
}

void catalog_unhold(struct catalog *cat, uint64_t ino)
{
	if (cat->shared)
		shared_unhold(cat->shared, ino);
}

int catalog_held_elsewhere(struct catalog *cat, uint64_t ino)
{
	return cat->shared ? shared_held_elsewhere(cat->shared, ino & ~INO_SLOT_MASK) : 0;
}

/* Tell the hook what one applied change was. */
static void report_change(struct catalog *cat, const struct kv_op *op)
{
	struct catalog_change c = {.deleted = op->del};
	char name[256];

	if (op->db == 'n' && op->klen >= 9 && op->klen - 9 < sizeof(name)) {
		c.is_name = true;
		c.parent = 0;
		for (int i = 0; i < 8; i++)
			c.parent = (c.parent << 8) | op->key[i];
		c.kind = (enum object_kind)op->key[8];
		memcpy(name, op->key + 9, op->klen - 9);
		name[op->klen - 9] = '\0';
		c.name = name;
	} else if (op->db == 'o' && op->klen == 8) {
		for (int i = 0; i < 8; i++)
			c.ino = (c.ino << 8) | op->key[i];
	} else {
		return;
	}
	pthread_rwlock_rdlock(&cat->hooks);
	if (cat->on_change)
		cat->on_change(cat->change_arg, &c);
	pthread_rwlock_unlock(&cat->hooks);
}

int catalog_cache_apply(struct catalog *cat, const struct kv_op *ops, size_t n, int64_t rev,
			bool reset)
{
	MDB_txn *txn;
	int64_t have;
	int rc;

	if (!n && !reset)
		return 0;
	rc = mdb_txn_begin(cat->env, NULL, 0, &txn);
	if (rc)
		return mdb_to_errno(rc, "cache");
	have = reset ? 0 : cache_rev(cat, txn);
	if (reset && (mdb_drop(txn, cat->objects, 0) || mdb_drop(txn, cat->children, 0) ||
		      mdb_drop(txn, cat->ids, 0) ||
		      mdb_del(txn, cat->meta, &(MDB_val){8, "next_seq"}, NULL) > 0)) {
		mdb_txn_abort(txn);
		return -EIO;
	}
	for (size_t i = 0; i < n && !rc; i++) {
		MDB_val key = {ops[i].klen, ops[i].key}, val = {ops[i].vlen, ops[i].val};

		if (ops[i].rev && ops[i].rev <= have)
			continue; /* this host's own commit */
		if (ops[i].del)
			rc = mdb_del(txn, db_of(cat, ops[i].db), &key, NULL);
		else
			rc = mdb_put(txn, db_of(cat, ops[i].db), &key, &val, 0);
		if (rc == MDB_NOTFOUND)
			rc = 0;
	}
	if (!rc && rev > have)
		rc = cache_rev_put(cat, txn, rev);
	if (rc) {
		mdb_txn_abort(txn);
		return mdb_to_errno(rc, "cache");
	}
	rc = mdb_txn_commit(txn);
	if (rc)
		return mdb_to_errno(rc, "cache");
	for (size_t i = 0; i < n && !reset; i++)
		if (!ops[i].rev || ops[i].rev > have)
			report_change(cat, &ops[i]);
	return 0;
}

void object_init(struct object *obj)
{
	memset(obj, 0, sizeof(*obj));
	obj->metadata = json_object();
	for (size_t i = 0; i < sizeof(obj->quota) / sizeof(obj->quota[0]); i++)
		obj->quota[i] = -1;
}

void object_clear(struct object *obj)
{
	json_decref(obj->metadata);
	json_decref(obj->members);
	obj->metadata = NULL;
	obj->members = NULL;
}

void object_copy(struct object *dst, const struct object *src)
{
	json_t *meta = json_deep_copy(src->metadata);
	json_t *members = src->members ? json_deep_copy(src->members) : NULL;

	json_decref(dst->metadata);
	json_decref(dst->members);
	*dst = *src;
	dst->metadata = meta;
	dst->members = members;
}

/* Records are JSON so that later fields need no migration. owner: the
 * host of o->op ("" with one host). */
static char *object_encode(const struct object *o, const char *owner)
{
	json_t *j = json_pack("{sI sI sI ss ss ss ss ss sO sI sI sI sI sI sI ss ss ss si}",
			      "kind", (json_int_t)o->kind, "parent", (json_int_t)o->parent,
			      "tenant", (json_int_t)o->tenant, "id", o->id, "name", o->name,
			      "status", o->status, "op", o->op, "op_arg", o->op_arg,
			      "metadata", o->metadata, "uid", (json_int_t)o->uid,
			      "gid", (json_int_t)o->gid, "mode", (json_int_t)o->mode,
			      "created_at", (json_int_t)o->created_at,
			      "updated_at", (json_int_t)o->updated_at,
			      "size", (json_int_t)o->size, "format", o->format, "file", o->file,
			      "link_id", o->link_id, "progress", o->progress);
	char *text;

	if (!j)
		return NULL;
	if (o->has_description)
		json_object_set_new(j, "description", json_string(o->description));
	if (o->backing[0])
		json_object_set_new(j, "backing", json_string(o->backing));
	if (o->merge_state)
		json_object_set_new(j, "merge_state", json_integer(o->merge_state));
	if (o->attach[0])
		json_object_set_new(j, "attach", json_string(o->attach));
	if (o->consistency[0])
		json_object_set_new(j, "consistency", json_string(o->consistency));
	if (o->members)
		json_object_set(j, "members", o->members);
	if (o->op[0] && owner[0])
		json_object_set_new(j, "op_owner", json_string(owner));
	if (o->op[0])
		json_object_set_new(j, "op_since",
				    json_integer(o->op_since ? o->op_since : time_now_usec()));
	if (o->quota[0] != -1 || o->quota[1] != -1 || o->quota[2] != -1)
		json_object_set_new(j, "quota",
				    json_pack("[III]", (json_int_t)o->quota[0],
					      (json_int_t)o->quota[1], (json_int_t)o->quota[2]));
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return text;
}

static void copy_str(char *dst, size_t len, json_t *j, const char *key)
{
	const char *s = json_string_value(json_object_get(j, key));

	snprintf(dst, len, "%s", s ? s : "");
}

static int object_decode(const void *data, size_t len, uint64_t ino, struct object *o)
{
	json_error_t err;
	json_t *j = json_loadb(data, len, 0, &err);
	json_t *desc;

	if (!j || !json_is_object(j)) {
		json_decref(j);
		log_err("catalogue record %llu is damaged: %s", (unsigned long long)ino, err.text);
		return -EIO;
	}
	object_init(o);
	o->ino = ino;
	o->kind = (enum object_kind)json_integer_value(json_object_get(j, "kind"));
	o->parent = (uint64_t)json_integer_value(json_object_get(j, "parent"));
	o->tenant = (uint64_t)json_integer_value(json_object_get(j, "tenant"));
	copy_str(o->id, sizeof(o->id), j, "id");
	copy_str(o->name, sizeof(o->name), j, "name");
	copy_str(o->status, sizeof(o->status), j, "status");
	copy_str(o->op, sizeof(o->op), j, "op");
	copy_str(o->op_arg, sizeof(o->op_arg), j, "op_arg");
	copy_str(o->op_owner, sizeof(o->op_owner), j, "op_owner");
	copy_str(o->format, sizeof(o->format), j, "format");
	copy_str(o->file, sizeof(o->file), j, "file");
	copy_str(o->link_id, sizeof(o->link_id), j, "link_id");
	copy_str(o->backing, sizeof(o->backing), j, "backing");
	copy_str(o->attach, sizeof(o->attach), j, "attach");
	copy_str(o->consistency, sizeof(o->consistency), j, "consistency");
	desc = json_object_get(j, "description");
	if (json_is_string(desc)) {
		o->has_description = true;
		snprintf(o->description, sizeof(o->description), "%s", json_string_value(desc));
	}
	if (json_is_object(json_object_get(j, "metadata"))) {
		json_decref(o->metadata);
		o->metadata = json_incref(json_object_get(j, "metadata"));
	}
	o->uid = (uint32_t)json_integer_value(json_object_get(j, "uid"));
	o->gid = (uint32_t)json_integer_value(json_object_get(j, "gid"));
	o->mode = (uint32_t)json_integer_value(json_object_get(j, "mode"));
	o->created_at = json_integer_value(json_object_get(j, "created_at"));
	o->updated_at = json_integer_value(json_object_get(j, "updated_at"));
	o->size = (uint64_t)json_integer_value(json_object_get(j, "size"));
	o->progress = (int)json_integer_value(json_object_get(j, "progress"));
	o->merge_state = (int)json_integer_value(json_object_get(j, "merge_state"));
	o->op_since = json_integer_value(json_object_get(j, "op_since"));
	if (json_is_array(json_object_get(j, "members")))
		o->members = json_incref(json_object_get(j, "members"));
	for (size_t i = 0; i < sizeof(o->quota) / sizeof(o->quota[0]); i++) {
		json_t *q = json_array_get(json_object_get(j, "quota"), i);

		if (json_is_integer(q) && json_integer_value(q) >= -1)
			o->quota[i] = json_integer_value(q);
	}
	json_decref(j);
	return 0;
}

/* ---- a quick reader of a record's plain fields ----
 *
 * Listing a directory or writing a volume's .info reads thousands of
 * records, and jansson's parse of each (every member allocated) was most
 * of that time. This scanner walks the top level of a record as
 * object_encode() writes it and copies the fields that are plain strings
 * and integers, skipping the nested ones (metadata, members) and the
 * description. Anything it does not expect (a string with an escape, an
 * integer it cannot read, malformed text) sends the caller back to
 * object_decode(), which reads every record. */

static const char *scan_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* p at '"': just past the closing quote, or NULL; *escaped is set when
 * the string holds an escape. */
static const char *scan_string(const char *p, const char *end, bool *escaped)
{
	for (p++; p < end; p++) {
		if (*p == '"')
			return p + 1;
		if ((unsigned char)*p < 0x20)
			return NULL;
		if (*p == '\\') {
			*escaped = true;
			p++;
		}
	}
	return NULL;
}

/* Just past the value at p (p not at white space), or NULL. */
static const char *scan_value(const char *p, const char *end)
{
	int depth = 0;
	bool escaped;

	do {
		p = scan_ws(p, end);
		if (p == end)
			return NULL;
		if (*p == '"') {
			p = scan_string(p, end, &escaped);
			if (!p)
				return NULL;
		} else if (*p == '{' || *p == '[') {
			depth++;
			p++;
		} else if (*p == '}' || *p == ']') {
			if (--depth < 0)
				return NULL;
			p++;
		} else if (*p == ',' || *p == ':') {
			if (!depth)
				return NULL;
			p++;
		} else {
			const char *start = p; /* a number, true, false, null */

			while (p < end &&
			       ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
				(*p >= 'A' && *p <= 'Z') || *p == '-' || *p == '+' || *p == '.'))
				p++;
			if (p == start)
				return NULL;
		}
	} while (depth > 0);
	return p;
}

/* What json_integer_value() gives for the value [v, end): an integer, or
 * 0 for any other value. -1 when the integer cannot be read here. */
static int scan_integer(const char *v, const char *end, json_int_t *out)
{
	char buf[32];
	size_t n = (size_t)(end - v);
	const char *d = v + (n && *v == '-');
	char *stop;

	*out = 0;
	if (d == end || *d < '0' || *d > '9')
		return 0; /* a string, an object, true, null, ... */
	for (const char *q = d; q < end; q++)
		if (*q < '0' || *q > '9')
			return *q == '.' || *q == 'e' || *q == 'E' ? 0 : -1; /* a real: 0 */
	if (n >= sizeof(buf))
		return -1;
	memcpy(buf, v, n);
	buf[n] = '\0';
	errno = 0;
	*out = strtoll(buf, &stop, 10);
	return errno || *stop ? -1 : 0;
}

/* What copy_str() copies for the value [v, end). -1 for an escaped string. */
static int scan_str_field(const char *v, const char *end, char *dst, size_t len)
{
	bool escaped = false;
	size_t n;

	dst[0] = '\0';
	if (*v != '"')
		return 0;
	if (scan_string(v, end, &escaped) != end || escaped)
		return -1;
	n = (size_t)(end - v) - 2;
	if (n >= len)
		n = len - 1; /* as snprintf() truncates */
	memcpy(dst, v + 1, n);
	dst[n] = '\0';
	return 0;
}

#define FIELD(f, integer)                                                                 \
	{#f, sizeof(#f) - 1, offsetof(struct object, f), sizeof(((struct object *)0)->f), \
	 integer}

/* The fields the quick reader copies: strings and integers. */
static const struct brief_field {
	const char *key;
	size_t klen, off, size;
	bool integer;
} brief_fields[] = {
	FIELD(kind, true),        FIELD(parent, true),      FIELD(tenant, true),
	FIELD(id, false),         FIELD(name, false),       FIELD(status, false),
	FIELD(op, false),         FIELD(op_arg, false),     FIELD(op_owner, false),
	FIELD(format, false),     FIELD(file, false),       FIELD(link_id, false),
	FIELD(backing, false),    FIELD(attach, false),     FIELD(consistency, false),
	FIELD(uid, true),         FIELD(gid, true),         FIELD(mode, true),
	FIELD(created_at, true),  FIELD(updated_at, true),  FIELD(size, true),
	FIELD(progress, true),    FIELD(merge_state, true),   FIELD(op_since, true),
};

static int brief_set(struct object *o, const char *key, size_t klen, const char *v, const char *end,
		     bool *have_kind)
{
	for (size_t i = 0; i < sizeof(brief_fields) / sizeof(brief_fields[0]); i++) {
		const struct brief_field *f = &brief_fields[i];
		char *dst = (char *)o + f->off;
		json_int_t n;

		if (f->klen != klen || memcmp(f->key, key, klen))
			continue;
		if (!f->integer)
			return scan_str_field(v, end, dst, f->size);
		if (scan_integer(v, end, &n))
			return -1;
		if (f->size == 8) {
			int64_t x = (int64_t)n;

			memcpy(dst, &x, 8);
		} else { /* kind, uid, gid, mode, progress, merge_state */
			int32_t x = (int32_t)n;

			_Static_assert(sizeof(enum object_kind) == 4 && sizeof(uint32_t) == 4 &&
					       sizeof(int) == 4,
				       "integer fields of 4 or 8 bytes");

			memcpy(dst, &x, 4);
		}
		if (f->off == offsetof(struct object, kind))
			*have_kind = true;
		return 0;
	}
	return 0; /* a field the quick reader leaves out */
}

/* 0, or -EAGAIN: read it with object_decode(). */
static int object_decode_brief(const char *data, size_t len, uint64_t ino, struct object *o)
{
	const char *p = data, *end = data + len;
	bool have_kind = false;

	object_init(o);
	o->ino = ino;
	p = scan_ws(p, end);
	if (p == end || *p++ != '{')
		return -EAGAIN;
	for (;;) {
		const char *key, *v, *vend;
		bool escaped = false;

		p = scan_ws(p, end);
		if (p == end || *p != '"')
			return -EAGAIN;
		key = p + 1;
		p = scan_string(p, end, &escaped);
		if (!p || escaped)
			return -EAGAIN;
		p = scan_ws(p, end);
		if (p == end || *p != ':')
			return -EAGAIN;
		v = scan_ws(p + 1, end);
		vend = scan_value(v, end);
		if (!vend || brief_set(o, key, (size_t)(p - key) - 1, v, vend, &have_kind))
			return -EAGAIN;
		p = scan_ws(vend, end);
		if (p < end && *p == ',') {
			p++;
			continue;
		}
		if (p == end || *p != '}')
			return -EAGAIN;
		return scan_ws(p + 1, end) == end && have_kind ? 0 : -EAGAIN;
	}
}

/* The stored record of the object whose inode (any slot) is *ino, in *val;
 * *ino becomes the object's. On failure obj is initialised empty and the
 * -errno returned. */
static int record_get(struct catalog_txn *t, uint64_t *ino, MDB_val *val, struct object *obj)
{
	unsigned char k[8];
	MDB_val key = {8, k};
	int rc;

	*ino &= ~INO_SLOT_MASK;
	be64_put(k, *ino);
	rc = mdb_get(t->txn, t->cat->objects, &key, val);
	if (rc) {
		object_init(obj);
		return mdb_to_errno(rc, "get");
	}
	return 0;
}

int catalog_object_get_brief(struct catalog_txn *t, uint64_t ino, struct object *obj)
{
	MDB_val val;
	int rc = record_get(t, &ino, &val, obj);

	if (rc)
		return rc;
	if (!object_decode_brief(val.mv_data, val.mv_size, ino, obj))
		return 0;
	object_clear(obj);
	rc = object_decode(val.mv_data, val.mv_size, ino, obj);
	if (rc) {
		object_init(obj);
		return rc;
	}
	/* the same record as the quick reader's would be */
	json_decref(obj->members);
	obj->members = NULL;
	json_object_clear(obj->metadata);
	obj->has_description = false;
	obj->description[0] = '\0';
	return 0;
}

int catalog_object_get(struct catalog_txn *t, uint64_t ino, struct object *obj)
{
	MDB_val val;
	int rc = record_get(t, &ino, &val, obj);

	if (rc)
		return rc;
	rc = object_decode(val.mv_data, val.mv_size, ino, obj);
	if (rc)
		object_init(obj);
	return rc;
}

static int object_put(struct catalog_txn *t, const struct object *obj)
{
	unsigned char k[8];
	MDB_val key = {8, k}, val;
	/* an operation is stamped with its host when it is first written */
	char *text = object_encode(obj, obj->op_owner[0] ? obj->op_owner : t->cat->host_id);
	int rc;

	if (!text)
		return -ENOMEM;
	be64_put(k, obj->ino);
	val.mv_size = strlen(text);
	val.mv_data = text;
	rc = kv_put(t, t->cat->objects, &key, &val, 0);
	free(text);
	if (!rc)
		touch(t, false, false, obj->ino, obj->parent, obj->kind, NULL);
	return mdb_to_errno(rc, "put");
}

/* children key: parent (8), kind (1), name (no NUL). */
static size_t child_key(unsigned char *buf, uint64_t parent, enum object_kind kind,
			const char *name)
{
	size_t n = strlen(name);

	be64_put(buf, parent);
	buf[8] = (unsigned char)kind;
	memcpy(buf + 9, name, n);
	return 9 + n;
}

static int child_put(struct catalog_txn *t, uint64_t parent, enum object_kind kind,
		     const char *name, uint64_t ino)
{
	unsigned char kb[9 + 256], vb[8];
	MDB_val key, val = {8, vb};

	if (strlen(name) > 255)
		return -ENAMETOOLONG;
	key.mv_size = child_key(kb, parent, kind, name);
	key.mv_data = kb;
	be64_put(vb, ino);
	return mdb_to_errno(kv_put(t, t->cat->children, &key, &val, MDB_NOOVERWRITE),
			    "put name");
}

static int child_del(struct catalog_txn *t, uint64_t parent, enum object_kind kind,
		     const char *name)
{
	unsigned char kb[9 + 256];
	MDB_val key;
	int rc;

	if (strlen(name) > 255)
		return -ENOENT;
	key.mv_size = child_key(kb, parent, kind, name);
	key.mv_data = kb;
	rc = kv_del(t, t->cat->children, &key);
	if (!rc)
		touch(t, true, true, 0, parent, kind, name);
	return mdb_to_errno(rc, "delete name");
}

static int next_ino(struct catalog_txn *t, uint64_t *ino)
{
	MDB_val key = {strlen("next_seq"), "next_seq"}, val;
	unsigned char buf[8];
	uint64_t seq = 1;
	int rc = mdb_get(t->txn, t->cat->meta, &key, &val);

	if (rc == 0 && val.mv_size == 8)
		seq = be64_get(val.mv_data);
	else if (rc && rc != MDB_NOTFOUND)
		return mdb_to_errno(rc, "sequence");
	be64_put(buf, seq + 1);
	val.mv_size = 8, val.mv_data = buf;
	rc = kv_put(t, t->cat->meta, &key, &val, 0);
	if (rc)
		return mdb_to_errno(rc, "sequence");
	*ino = seq << INO_SLOT_BITS;
	return 0;
}

/* New objects stop CATALOG_RESERVE_PAGES short of the map's end, so that
 * the later steps of every operation (status updates, deletes: copy-on-write
 * needs fresh pages too) still fit when the catalogue is full. */
#define CATALOG_RESERVE_PAGES 16

/* Pages in use: LMDB's high-water mark less the reusable pages on its free
 * list (database 0: key a transaction id, value a count and that many page
 * numbers). Pages freed by the last two transactions are not reusable yet
 * (the previous meta page may still refer to them). LMDB lets no write
 * transaction open a cursor there, so a read transaction counts them. */
static uint64_t pages_in_use(struct catalog_txn *t, const MDB_envinfo *info)
{
	uint64_t used = (uint64_t)info->me_last_pgno + 1, freed = 0;
	MDB_txn *rd;
	MDB_cursor *cur;
	MDB_val key, val;

	if (mdb_txn_begin(t->cat->env, NULL, MDB_RDONLY, &rd))
		return used;
	if (mdb_cursor_open(rd, 0, &cur) == 0) {
		size_t last = mdb_txn_id(rd);

		while (mdb_cursor_get(cur, &key, &val, MDB_NEXT) == 0) {
			size_t freed_by;

			if (key.mv_size != sizeof(size_t) || val.mv_size < sizeof(size_t))
				continue;
			memcpy(&freed_by, key.mv_data, sizeof(freed_by));
			if (freed_by + 2 <= last)
				freed += *(const size_t *)val.mv_data;
		}
		mdb_cursor_close(cur);
	}
	mdb_txn_abort(rd);
	return freed < used ? used - freed : 0;
}

static int check_headroom(struct catalog_txn *t)
{
	MDB_envinfo info;
	MDB_stat st;
	uint64_t used;

	if (mdb_env_info(t->cat->env, &info) || mdb_env_stat(t->cat->env, &st))
		return 0;
	used = pages_in_use(t, &info);
	if ((used + CATALOG_RESERVE_PAGES) * st.ms_psize > (uint64_t)info.me_mapsize) {
		log_err("catalogue full: %llu of %zu bytes used; raise catalog_size",
			(unsigned long long)(used * st.ms_psize), info.me_mapsize);
		return -ENOSPC;
	}
	return 0;
}

int catalog_object_insert(struct catalog_txn *t, struct object *obj)
{
	MDB_val key = {strlen(obj->id), obj->id}, val;
	unsigned char vb[8];
	int rc;

	rc = check_headroom(t);
	if (rc)
		return rc;
	rc = next_ino(t, &obj->ino);
	if (rc)
		return rc;
	rc = child_put(t, obj->parent, obj->kind, obj->name, obj->ino);
	if (rc)
		return rc;
	be64_put(vb, obj->ino);
	val.mv_size = 8, val.mv_data = vb;
	rc = mdb_to_errno(kv_put(t, t->cat->ids, &key, &val, MDB_NOOVERWRITE), "put id");
	if (rc)
		return rc;
	return object_put(t, obj);
}

int catalog_object_update(struct catalog_txn *t, const struct object *obj)
{
	return object_put(t, obj);
}

int catalog_object_rename(struct catalog_txn *t, struct object *obj, const char *new_name)
{
	int rc = child_put(t, obj->parent, obj->kind, new_name, obj->ino);

	if (rc)
		return rc;
	rc = child_del(t, obj->parent, obj->kind, obj->name);
	if (rc)
		return rc;
	snprintf(obj->name, sizeof(obj->name), "%s", new_name);
	return object_put(t, obj);
}

int catalog_object_delete(struct catalog_txn *t, const struct object *obj)
{
	unsigned char k[8];
	MDB_val key = {8, k}, idkey = {strlen(obj->id), (void *)obj->id};
	int rc;

	rc = child_del(t, obj->parent, obj->kind, obj->name);
	if (rc && rc != -ENOENT)
		return rc;
	rc = mdb_to_errno(kv_del(t, t->cat->ids, &idkey), "delete id");
	if (rc && rc != -ENOENT)
		return rc;
	be64_put(k, obj->ino);
	rc = kv_del(t, t->cat->objects, &key);
	if (!rc)
		touch(t, false, true, obj->ino, obj->parent, obj->kind, NULL);
	return mdb_to_errno(rc, "delete");
}

int catalog_child_lookup(struct catalog_txn *t, uint64_t parent, enum object_kind kind,
			 const char *name, uint64_t *ino)
{
	unsigned char kb[9 + 256];
	MDB_val key, val;
	int rc;

	if (strlen(name) > 255)
		return -ENOENT;
	key.mv_size = child_key(kb, parent, kind, name);
	key.mv_data = kb;
	rc = mdb_get(t->txn, t->cat->children, &key, &val);
	if (rc)
		return mdb_to_errno(rc, "lookup");
	*ino = be64_get(val.mv_data);
	return 0;
}

int catalog_children_foreach(struct catalog_txn *t, uint64_t parent, enum object_kind kind,
			     int (*fn)(const char *name, uint64_t ino, void *arg), void *arg)
{
	unsigned char prefix[9];
	MDB_cursor *cur;
	MDB_val key = {9, prefix}, val;
	int rc, ret = 0;

	child_key(prefix, parent, kind, "");
	rc = mdb_cursor_open(t->txn, t->cat->children, &cur);
	if (rc)
		return mdb_to_errno(rc, "cursor");
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		char name[256];
		size_t n;

		if (key.mv_size < 9 || memcmp(key.mv_data, prefix, 9))
			break;
		n = key.mv_size - 9;
		if (n >= sizeof(name))
			continue;
		memcpy(name, (char *)key.mv_data + 9, n);
		name[n] = '\0';
		ret = fn(name, be64_get(val.mv_data), arg);
		if (ret)
			break;
	}
	mdb_cursor_close(cur);
	if (rc && rc != MDB_NOTFOUND && !ret)
		return mdb_to_errno(rc, "list");
	return ret;
}

static int stop_at_first(const char *name, uint64_t ino, void *arg)
{
	return 1;
}

bool catalog_children_any(struct catalog_txn *t, uint64_t parent, enum object_kind kind)
{
	return catalog_children_foreach(t, parent, kind, stop_at_first, NULL) == 1;
}

int catalog_id_lookup(struct catalog_txn *t, const char *id, uint64_t *ino)
{
	MDB_val key = {strlen(id), (void *)id}, val;
	int rc;

	if (key.mv_size == 0 || key.mv_size > 64)
		return -ENOENT;
	rc = mdb_get(t->txn, t->cat->ids, &key, &val);
	if (rc)
		return mdb_to_errno(rc, "id lookup");
	*ino = be64_get(val.mv_data);
	return 0;
}

int catalog_ids_foreach(struct catalog_txn *t, int (*fn)(const char *id, uint64_t ino, void *arg),
			void *arg)
{
	MDB_cursor *cur;
	MDB_val key, val;
	int rc, ret = 0;

	rc = mdb_cursor_open(t->txn, t->cat->ids, &cur);
	if (rc)
		return mdb_to_errno(rc, "cursor");
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		char id[65];

		if (key.mv_size >= sizeof(id))
			continue;
		memcpy(id, key.mv_data, key.mv_size);
		id[key.mv_size] = '\0';
		ret = fn(id, be64_get(val.mv_data), arg);
		if (ret)
			break;
	}
	mdb_cursor_close(cur);
	if (rc && rc != MDB_NOTFOUND && !ret)
		return mdb_to_errno(rc, "list ids");
	return ret;
}

int catalog_objects_foreach(struct catalog_txn *t, int (*fn)(const struct object *obj, void *arg),
			    void *arg)
{
	MDB_cursor *cur;
	MDB_val key, val;
	int rc, ret = 0;

	rc = mdb_cursor_open(t->txn, t->cat->objects, &cur);
	if (rc)
		return mdb_to_errno(rc, "cursor");
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		struct object obj;

		if (key.mv_size != 8)
			continue;
		ret = object_decode(val.mv_data, val.mv_size, be64_get(key.mv_data), &obj);
		if (ret)
			break;
		ret = fn(&obj, arg);
		object_clear(&obj);
		if (ret)
			break;
	}
	mdb_cursor_close(cur);
	if (rc && rc != MDB_NOTFOUND && !ret)
		return mdb_to_errno(rc, "list objects");
	return ret;
}

/* A seed goes to etcd in transactions of this many changes (etcd takes 128
 * operations per transaction by default; one more releases the lock). */
#define SEED_CHUNK 100

static int seed_send(struct catalog *cat, struct kv_op *ops, size_t *n, bool last, int64_t *rev)
{
	int rc = shared_commit(cat->shared, ops, *n, !last, rev);

	for (size_t i = 0; i < *n; i++)
		kv_op_free(&ops[i]);
	*n = 0;
	return rc;
}

static bool cache_empty(struct catalog *cat)
{
	MDB_txn *txn;
	MDB_stat st = {0};

	if (mdb_txn_begin(cat->env, NULL, MDB_RDONLY, &txn))
		return false;
	mdb_stat(txn, cat->objects, &st);
	mdb_txn_abort(txn);
	return st.ms_entries == 0;
}

int catalog_seed(struct catalog *cat, const char *dir)
{
	static const char dbs[] = "onim";
	struct kv_op ops[SEED_CHUNK];
	size_t n = 0, total = 0;
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	int64_t rev = 0;
	int rc;

	if (!cat->shared)
		return -EINVAL;
	rc = mdb_env_create(&env);
	if (!rc)
		mdb_env_set_maxdbs(env, 8);
	if (!rc)
		rc = mdb_env_open(env, dir, MDB_RDONLY | MDB_NOTLS, 0600);
	if (!rc)
		rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
	if (rc) {
		log_err("etcd_seed=%s: cannot open the catalogue there: %s", dir, mdb_strerror(rc));
		mdb_env_close(env);
		return rc > 0 ? -rc : -EIO;
	}
	pthread_mutex_lock(&cat->writer);
	rc = shared_lock(cat->shared);
	if (rc) {
		pthread_mutex_unlock(&cat->writer);
		mdb_txn_abort(txn);
		mdb_env_close(env);
		return rc;
	}
	if (!cache_empty(cat)) {
		log_info("etcd_seed=%s: etcd holds a catalogue for this share already: not loaded",
			 dir);
		shared_unlock(cat->shared);
		goto out;
	}
	for (const char *d = dbs; *d && !rc; d++) {
		MDB_dbi dbi;
		MDB_cursor *cur;
		MDB_val key, val;
		const char *name = *d == 'o' ? "objects" : *d == 'n' ? "children" : *d == 'i' ? "ids" : "meta";
		int r;

		if (mdb_dbi_open(txn, name, 0, &dbi) || mdb_cursor_open(txn, dbi, &cur))
			continue;
		for (r = mdb_cursor_get(cur, &key, &val, MDB_FIRST); r == 0 && !rc;
		     r = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
			struct kv_op *op = &ops[n];

			if (*d == 'm' && (key.mv_size != 8 || memcmp(key.mv_data, "next_seq", 8)))
				continue;
			memset(op, 0, sizeof(*op));
			op->db = *d;
			op->klen = key.mv_size;
			op->vlen = val.mv_size;
			op->key = malloc(key.mv_size + 1);
			op->val = malloc(val.mv_size + 1);
			if (!op->key || !op->val) {
				kv_op_free(op);
				rc = -ENOMEM;
				break;
			}
			memcpy(op->key, key.mv_data, key.mv_size);
			memcpy(op->val, val.mv_data, val.mv_size);
			n++;
			total++;
			if (n == SEED_CHUNK)
				rc = seed_send(cat, ops, &n, false, &rev);
		}
		mdb_cursor_close(cur);
	}
	if (!rc)
		rc = seed_send(cat, ops, &n, true, &rev);
	else {
		for (size_t i = 0; i < n; i++)
			kv_op_free(&ops[i]);
		shared_unlock(cat->shared);
	}
	if (!rc && rev)
		rc = shared_wait(cat->shared, rev);
	if (rc)
		log_err("etcd_seed=%s: loading into etcd failed after %zu entries: %s", dir, total,
			strerror(-rc));
	else
		log_info("etcd_seed=%s: loaded %zu catalogue entries into etcd", dir, total);
out:
	pthread_mutex_unlock(&cat->writer);
	mdb_txn_abort(txn);
	mdb_env_close(env);
	return rc;
}
