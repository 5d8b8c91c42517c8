/* reader.c - see reader.h. */
#include "reader.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "share.h"
#include "snapshot.h"

/* Unused chains kept for the next open (a backup often reads twice). */
#define READER_CACHE_UNUSED 16

struct reader {
	uint64_t ino;
	struct chain *chain;
	uint64_t allocated;     /* bytes of data extents */
	unsigned refs;
	uint64_t last_used;
	struct reader *next;
};

/* How long a delete waits for the last reader to go: close(2) returns
 * before the kernel's release reaches the daemon, so "cp disk.raw && rmdir"
 * would otherwise race. */
#define READER_CLOSE_WAIT_MS 2000

/* Allocated bytes of snapshots whose chain is not open, computed at their
 * first stat and kept: a snapshot's content never changes, and what could
 * change the figure (a merge below it moves its data onto another file)
 * changes its record's backing file, whose hash keys the entry. */
#define ALLOC_BUCKETS 4096

/* An alloc_entry's allocated for a chain that did not resolve. */
#define ALLOC_UNRESOLVED UINT64_MAX

struct alloc_entry {
	uint64_t ino;
	uint64_t key;           /* hash of the snapshot's backing file */
	uint64_t allocated;     /* or ALLOC_UNRESOLVED */
	struct alloc_entry *next;
};

struct reader_changes {
	uint64_t newer, older;
	struct reader *rn, *ro;
	struct chain_range *ranges;
	size_t nranges;
	uint64_t bytes;
	char *text;
	size_t text_len;
	unsigned refs;
	struct reader_changes *next;
};

struct reader_registry {
	pthread_mutex_t lock;
	pthread_cond_t released;
	struct reader *head;
	struct reader_changes *changes; /* open pairs */
	uint64_t clock;
	struct alloc_entry *alloc[ALLOC_BUCKETS];
};

int reader_registry_new(struct reader_registry **out)
{
	struct reader_registry *reg = calloc(1, sizeof(*reg));

	if (!reg)
		return -ENOMEM;
	pthread_mutex_init(&reg->lock, NULL);
	pthread_cond_init(&reg->released, NULL);
	*out = reg;
	return 0;
}

/* Forget the allocation of snapshot ino (any ino when ino is 0). Under
 * reg->lock. */
static void alloc_forget(struct reader_registry *reg, uint64_t ino)
{
	for (size_t b = 0; b < ALLOC_BUCKETS; b++) {
		if (ino && b != (ino >> INO_SLOT_BITS) % ALLOC_BUCKETS)
			continue;
		for (struct alloc_entry **pp = &reg->alloc[b]; *pp;) {
			struct alloc_entry *e = *pp;

			if (ino && e->ino != ino) {
				pp = &e->next;
				continue;
			}
			*pp = e->next;
			free(e);
		}
	}
}

void reader_registry_free(struct reader_registry *reg)
{
	if (!reg)
		return;
	alloc_forget(reg, 0);
	while (reg->changes) { /* none once every file is closed */
		struct reader_changes *c = reg->changes;

		reg->changes = c->next;
		chain_ranges_free(c->ranges, c->nranges);
		if (c->text)
			chain_memory_put(c->text_len);
		free(c->text);
		free(c);
	}
	while (reg->head) {
		struct reader *r = reg->head;

		reg->head = r->next;
		chain_close(r->chain);
		free(r);
	}
	pthread_cond_destroy(&reg->released);
	pthread_mutex_destroy(&reg->lock);
	free(reg);
}

static struct reader *find(struct reader_registry *reg, uint64_t ino)
{
	for (struct reader *r = reg->head; r; r = r->next)
		if (r->ino == ino)
			return r;
	return NULL;
}

static void unlink_reader(struct reader_registry *reg, struct reader *victim)
{
	for (struct reader **pp = &reg->head; *pp; pp = &(*pp)->next) {
		if (*pp == victim) {
			*pp = victim->next;
			return;
		}
	}
}

/* Keep at most keep unused chains: drop the oldest. */
static void trim_to(struct reader_registry *reg, unsigned keep)
{
	for (;;) {
		struct reader *oldest = NULL;
		unsigned unused = 0;

		for (struct reader *r = reg->head; r; r = r->next) {
			if (r->refs)
				continue;
			unused++;
			if (!oldest || r->last_used < oldest->last_used)
				oldest = r;
		}
		if (unused <= keep)
			return;
		unlink_reader(reg, oldest);
		chain_close(oldest->chain);
		free(oldest);
	}
}

/* 0 when snap's data can be served; else -EINVAL (not a snapshot), -EBUSY
 * (being created or deleted), -EIO (a delete began and failed: never
 * served again). */
static int snapshot_servable(const struct object *snap)
{
	if (snap->kind != OBJ_SNAPSHOT)
		return -EINVAL;
	/* being created, or a delete under way (here or on another host): a
	 * refusal of the moment, as for any operation its status forbids */
	if (*snap->op)
		return log_refuse(-EBUSY, "snapshot %s (%s) is %s: not served now", snap->name,
				  snap->id, snap->status);
	if (snap->merge_state != MERGE_NONE) {
		/* a delete began and failed: the file under its overlay holds
		 * newer data */
		log_err("snapshot %s (%s) failed to be deleted (%s): its content is gone, not "
			"serving it", snap->name, snap->id, snap->status);
		return -EIO;
	}
	return 0;
}

/* Several hosts: check once more, under the catalogue's writer lock, that
 * snapshot ino can be served, and hold it open there, so that no host
 * merges it away while this one reads (catalog.h). */
static int hold_snapshot(struct snapfs *fs, uint64_t ino)
{
	struct catalog_txn *txn;
	struct object snap;
	int rc = catalog_txn_begin(fs->cat, true, &txn);

	if (rc)
		return rc;
	rc = catalog_object_get(txn, ino, &snap);
	if (!rc)
		rc = snapshot_servable(&snap);
	if (!rc)
		rc = catalog_txn_hold(txn, ino);
	object_clear(&snap);
	if (rc) {
		catalog_txn_abort(txn);
		return rc;
	}
	return catalog_txn_commit(txn);
}

/* Resolve snapshot ino's chain from the catalogue. */
static int build_chain(struct snapfs *fs, uint64_t ino, struct chain **out)
{
	char(*names)[256] = malloc(SNAPSHOT_CHAIN_MAX * sizeof(*names));
	enum image_format formats[SNAPSHOT_CHAIN_MAX];
	bool merging[SNAPSHOT_CHAIN_MAX];
	struct chain_layer layers[SNAPSHOT_CHAIN_MAX];
	struct catalog_txn *txn;
	struct object snap;
	size_t n = 0;
	int rc = names ? catalog_txn_begin(fs->cat, false, &txn) : -ENOMEM;

	if (rc) {
		free(names);
		return rc;
	}
	rc = catalog_object_get(txn, ino, &snap);
	if (!rc)
		rc = snapshot_servable(&snap);
	if (!rc)
		rc = snapshot_layers_merging(txn, &snap, names, formats, merging, SNAPSHOT_CHAIN_MAX,
					     &n);
	catalog_txn_abort(txn);
	if (!rc) {
		for (size_t i = 0; i < n; i++) {
			layers[i].dirfd = fs->share->dirfd;
			layers[i].name = names[i];
			layers[i].format = formats[i];
			layers[i].merging = merging[i];
		}
		rc = chain_open(out, layers, n, snap.size);
		if (rc)
			log_err("snapshot %s (%s): its chain does not resolve", snap.name, snap.id);
	}
	object_clear(&snap);
	free(names);
	return rc;
}

static uint64_t chain_data_bytes(const struct chain *c)
{
	uint64_t total = 0, size = chain_size(c);
	int64_t data = chain_seek(c, 0, SEEK_DATA);

	while (data >= 0 && (uint64_t)data < size) {
		int64_t hole = chain_seek(c, (uint64_t)data, SEEK_HOLE);

		if (hole < 0)
			hole = (int64_t)size;
		total += (uint64_t)(hole - data);
		if ((uint64_t)hole >= size)
			break;
		data = chain_seek(c, (uint64_t)hole, SEEK_DATA);
	}
	return total;
}

/* Keep ino's allocation (key: its backing file's hash). Under no lock. */
static void alloc_put(struct reader_registry *reg, uint64_t ino, uint64_t key, uint64_t bytes)
{
	struct alloc_entry *e = malloc(sizeof(*e));
	size_t bucket = (ino >> INO_SLOT_BITS) % ALLOC_BUCKETS;

	if (!e)
		return;
	e->ino = ino, e->key = key, e->allocated = bytes;
	pthread_mutex_lock(&reg->lock);
	alloc_forget(reg, ino);
	e->next = reg->alloc[bucket];
	reg->alloc[bucket] = e;
	pthread_mutex_unlock(&reg->lock);
}

/* A snapshot of the volume, as the allocation pass needs it. */
struct alloc_snap {
	uint64_t ino;
	char file[256], backing[256];
	bool servable;
};

struct alloc_snaps {
	struct catalog_txn *txn;
	struct alloc_snap *v;
	size_t n, cap;
};

static int alloc_snap_add(const char *name, uint64_t ino, void *arg)
{
	struct alloc_snaps *l = arg;
	struct object o;
	int rc;

	(void)name;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct alloc_snap *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v, l->cap = cap;
	}
	rc = catalog_object_get_brief(l->txn, ino, &o);
	if (!rc) {
		struct alloc_snap *a = &l->v[l->n++];

		a->ino = ino;
		snprintf(a->file, sizeof(a->file), "%s", o.file);
		snprintf(a->backing, sizeof(a->backing), "%s", o.backing);
		a->servable = o.merge_state == MERGE_NONE && !*o.op;
	}
	object_clear(&o);
	return rc;
}

/* The data bytes of every layer of snap's volume's chain, from the newest
 * snapshot's data down to the base, in one pass (chain_data_by_depth()),
 * kept for every servable snapshot whose data is in that chain. Sets
 * *bytes when snap is one of them: 0, else -ENOENT. */
static int alloc_fill_volume(struct snapfs *fs, struct catalog_txn *txn, const struct object *snap,
			     uint64_t *bytes)
{
	char(*names)[256] = malloc(SNAPSHOT_CHAIN_MAX * sizeof(*names));
	uint64_t *counts = malloc(SNAPSHOT_CHAIN_MAX * sizeof(*counts));
	enum image_format formats[SNAPSHOT_CHAIN_MAX];
	bool merging[SNAPSHOT_CHAIN_MAX];
	struct chain_layer layers[SNAPSHOT_CHAIN_MAX];
	struct alloc_snaps l = {.txn = txn};
	struct object vol = {0}, top = {0}; /* the loads initialise them */
	size_t n = 0;
	int rc = names && counts ? catalog_object_get_brief(txn, snap->parent, &vol) : -ENOMEM;

	if (!rc)
		rc = catalog_children_foreach(txn, snap->parent, OBJ_SNAPSHOT, alloc_snap_add, &l);
	if (!rc) {
		/* the newest snapshot: its overlay is the active file; its
		 * data's chain holds every older snapshot's data */
		uint64_t top_ino = snap->ino;

		for (size_t i = 0; i < l.n; i++)
			if (!strcmp(l.v[i].file, vol.file))
				top_ino = l.v[i].ino;
		rc = catalog_object_get_brief(txn, top_ino, &top);
	}
	if (!rc)
		rc = snapshot_layers_merging(txn, &top, names, formats, merging, SNAPSHOT_CHAIN_MAX,
					     &n);
	for (size_t i = 0; !rc && i < n; i++) {
		layers[i].dirfd = fs->share->dirfd;
		layers[i].name = names[i];
		layers[i].format = formats[i];
		layers[i].merging = merging[i];
	}
	if (!rc)
		rc = chain_data_by_depth(layers, n, counts);
	for (size_t i = 0; !rc && i < l.n; i++) {
		const struct alloc_snap *a = &l.v[i];

		if (!a->servable)
			continue;
		for (size_t d = 0; d < n; d++) {
			if (strcmp(names[d], a->backing))
				continue;
			alloc_put(fs->readers, a->ino, hash_fnv1a64(a->backing, strlen(a->backing)),
				  counts[d]);
			break;
		}
	}
	if (!rc) {
		rc = -ENOENT;
		for (size_t d = 0; d < n; d++) {
			if (!strcmp(names[d], snap->backing)) {
				*bytes = counts[d];
				rc = 0;
				break;
			}
		}
	}
	object_clear(&vol);
	object_clear(&top);
	free(l.v);
	free(names);
	free(counts);
	return rc;
}

int reader_allocated(struct snapfs *fs, struct catalog_txn *txn, const struct object *snap,
		     uint64_t *bytes)
{
	char(*names)[256] = NULL;
	enum image_format formats[SNAPSHOT_CHAIN_MAX];
	bool merging[SNAPSHOT_CHAIN_MAX];
	struct chain_layer layers[SNAPSHOT_CHAIN_MAX];
	struct reader_registry *reg = fs->readers;
	uint64_t ino = snap->ino & ~INO_SLOT_MASK;
	uint64_t key = hash_fnv1a64(snap->backing, strlen(snap->backing));
	size_t bucket = (ino >> INO_SLOT_BITS) % ALLOC_BUCKETS;
	struct alloc_entry *e;
	struct chain *c;
	struct reader *r;
	size_t n = 0;
	int rc;

	if (snap->kind != OBJ_SNAPSHOT || snap->merge_state != MERGE_NONE || *snap->op)
		return -ENOENT;
	pthread_mutex_lock(&reg->lock);
	r = find(reg, ino);
	if (r)
		*bytes = r->allocated;
	for (e = reg->alloc[bucket]; !r && e; e = e->next) {
		if (e->ino == ino && e->key == key) {
			*bytes = e->allocated;
			break;
		}
	}
	pthread_mutex_unlock(&reg->lock);
	if (r || e)
		return !r && e->allocated == ALLOC_UNRESOLVED ? -ENOENT : 0;
	/* Usually one pass over the volume's chain answers for all its
	 * snapshots (ls -ls of a snapshots/ directory); a snapshot off that
	 * chain, or a chain that does not resolve, is computed alone. */
	if (!alloc_fill_volume(fs, txn, snap, bytes))
		return 0;

	names = malloc(SNAPSHOT_CHAIN_MAX * sizeof(*names));
	if (!names)
		return -ENOMEM;
	rc = snapshot_layers_merging(txn, snap, names, formats, merging, SNAPSHOT_CHAIN_MAX, &n);
	for (size_t i = 0; !rc && i < n; i++) {
		layers[i].dirfd = fs->share->dirfd;
		layers[i].name = names[i];
		layers[i].format = formats[i];
		layers[i].merging = merging[i];
	}
	if (!rc)
		rc = chain_open(&c, layers, n, snap->size);
	free(names);
	if (rc) {
		/* logged once: the next stat does not resolve it again */
		alloc_put(reg, ino, key, ALLOC_UNRESOLVED);
		return -ENOENT;
	}
	*bytes = chain_data_bytes(c);
	chain_close(c);
	alloc_put(reg, ino, key, *bytes);
	return 0;
}

int reader_open(struct snapfs *fs, uint64_t ino, struct reader **out)
{
	struct reader_registry *reg = fs->readers;
	bool held = false;
	struct reader *r;
	int rc = 0;

	pthread_mutex_lock(&reg->lock);
	r = find(reg, ino);
	/* the first reader on this host holds the snapshot for all hosts; a
	 * cached chain is served again only once that is done (another host
	 * may have deleted the snapshot meanwhile) */
	if (catalog_is_shared(fs->cat) && (!r || !r->refs)) {
		rc = hold_snapshot(fs, ino);
		if (rc) {
			if (r) {
				unlink_reader(reg, r);
				chain_close(r->chain);
				free(r);
			}
			pthread_mutex_unlock(&reg->lock);
			return rc;
		}
		held = true;
	}
	if (!r) {
		r = calloc(1, sizeof(*r));
		if (!r)
			rc = -ENOMEM;
		else if ((rc = build_chain(fs, ino, &r->chain)) == -ENOMEM && reg->head) {
			/* the memory bound on maps is full: unused chains
			 * give their room */
			trim_to(reg, 0);
			rc = build_chain(fs, ino, &r->chain);
		}
		if (rc) {
			free(r);
			r = NULL;
		} else {
			r->allocated = chain_data_bytes(r->chain);
			r->ino = ino;
			r->next = reg->head;
			reg->head = r;
		}
	}
	if (r) {
		r->refs++;
		r->last_used = ++reg->clock;
		*out = r;
	}
	pthread_mutex_unlock(&reg->lock);
	if (rc && held)
		catalog_unhold(fs->cat, ino);
	return rc;
}

struct chain *reader_chain(struct reader *r)
{
	return r->chain;
}

void reader_release(struct snapfs *fs, struct reader *r)
{
	struct reader_registry *reg = fs->readers;
	uint64_t ino = r->ino;
	bool last;

	pthread_mutex_lock(&reg->lock);
	last = --r->refs == 0;
	r->last_used = ++reg->clock;
	trim_to(reg, READER_CACHE_UNUSED);
	pthread_cond_broadcast(&reg->released);
	pthread_mutex_unlock(&reg->lock);
	if (last)
		catalog_unhold(fs->cat, ino);
}

int reader_foreach(struct snapfs *fs, int (*fn)(uint64_t ino, unsigned opens, void *arg),
		   void *arg)
{
	struct reader_registry *reg = fs->readers;
	int rc = 0;

	pthread_mutex_lock(&reg->lock);
	for (struct reader *r = reg->head; r && !rc; r = r->next)
		if (r->refs)
			rc = fn(r->ino, r->refs, arg);
	pthread_mutex_unlock(&reg->lock);
	return rc;
}

void reader_drop_unused(struct snapfs *fs)
{
	struct reader_registry *reg = fs->readers;
	struct reader **pp = &reg->head;

	pthread_mutex_lock(&reg->lock);
	while (*pp) {
		struct reader *r = *pp;

		if (r->refs) {
			pp = &r->next;
			continue;
		}
		*pp = r->next;
		chain_close(r->chain);
		free(r);
	}
	alloc_forget(reg, 0);
	pthread_mutex_unlock(&reg->lock);
}

int reader_exclude(struct snapfs *fs, uint64_t ino, int (*fn)(void *arg), void *arg)
{
	return reader_exclude_many(fs, &ino, 1, fn, arg);
}

int reader_exclude_many(struct snapfs *fs, const uint64_t *inos, size_t n, int (*fn)(void *arg),
			void *arg)
{
	struct reader_registry *reg = fs->readers;
	struct reader *r, *open;
	struct timespec deadline;
	int rc;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += READER_CLOSE_WAIT_MS / 1000;
	pthread_mutex_lock(&reg->lock);
	for (;;) {
		open = NULL;
		for (size_t i = 0; i < n && !open; i++) {
			r = find(reg, inos[i] & ~INO_SLOT_MASK);
			if (r && r->refs)
				open = r;
		}
		if (!open ||
		    pthread_cond_timedwait(&reg->released, &reg->lock, &deadline) == ETIMEDOUT)
			break;
	}
	if (open && open->refs) {
		uint64_t ino = open->ino;

		pthread_mutex_unlock(&reg->lock);
		return log_refuse(-EBUSY, "snapshot inode %llu is open for reading: not now",
				  (unsigned long long)ino);
	}
	for (size_t i = 0; i < n; i++) {
		r = find(reg, inos[i] & ~INO_SLOT_MASK);
		if (r && r->refs) { /* opened meanwhile (after the timeout) */
			pthread_mutex_unlock(&reg->lock);
			return log_refuse(-EBUSY, "snapshot inode %llu is open for reading: not now",
					  (unsigned long long)r->ino);
		}
	}
	for (size_t i = 0; i < n; i++) {
		r = find(reg, inos[i] & ~INO_SLOT_MASK);
		if (r) {
			unlink_reader(reg, r);
			chain_close(r->chain);
			free(r);
		}
		alloc_forget(reg, inos[i] & ~INO_SLOT_MASK);
	}
	rc = fn(arg);
	pthread_mutex_unlock(&reg->lock);
	return rc;
}

/* ---- changes ---- */

/* Guards the text of every changes entry (taken inside reg->lock). */
static pthread_mutex_t changes_lock = PTHREAD_MUTEX_INITIALIZER;

static struct reader_changes *changes_find(struct reader_registry *reg, uint64_t newer,
					   uint64_t older)
{
	for (struct reader_changes *c = reg->changes; c; c = c->next)
		if (c->newer == newer && c->older == older)
			return c;
	return NULL;
}

/* The ranges of newer's chain above older's top file. */
static int changes_cut(struct reader_changes *c)
{
	struct chain *cn = c->rn->chain, *co = c->ro->chain;
	const char *top = chain_layer_name(co, 0);
	size_t dn = chain_depth(cn), doo = chain_depth(co);
	size_t k;

	/* older's chain must be what newer's shows below the cut */
	for (k = 1; k < dn; k++)
		if (!strcmp(chain_layer_name(cn, (unsigned)k), top))
			break;
	if (k >= dn || dn - k != doo) {
		log_err("snapshot inode %llu: its chain does not hold the chain of snapshot "
			"inode %llu: no changes between them",
			(unsigned long long)c->newer, (unsigned long long)c->older);
		return -EIO;
	}
	for (size_t i = 1; i < doo; i++) {
		if (strcmp(chain_layer_name(cn, (unsigned)(k + i)),
			   chain_layer_name(co, (unsigned)i))) {
			log_err("snapshot inode %llu: its chain below %s differs from snapshot "
				"inode %llu's",
				(unsigned long long)c->newer, top, (unsigned long long)c->older);
			return -EIO;
		}
	}
	return chain_ranges_above(cn, (unsigned)k, &c->ranges, &c->nranges, &c->bytes);
}

int reader_changes_open(struct snapfs *fs, uint64_t newer, uint64_t older,
			struct reader_changes **out)
{
	struct reader_registry *reg = fs->readers;
	struct reader *rn = NULL, *ro = NULL;
	struct reader_changes *c;
	int rc;

	newer &= ~INO_SLOT_MASK;
	older &= ~INO_SLOT_MASK;
	if (newer == older)
		return -ENOENT;
	/* each open holds both snapshots, as an open disk.raw does */
	rc = reader_open(fs, newer, &rn);
	if (!rc)
		rc = reader_open(fs, older, &ro);
	if (rc) {
		if (rn)
			reader_release(fs, rn);
		return rc;
	}
	pthread_mutex_lock(&reg->lock);
	/* an entry lives while an open holds it, and each open holds both
	 * readers: an existing entry's are the ones just opened */
	c = changes_find(reg, newer, older);
	if (c) {
		c->refs++;
	} else if (!(c = calloc(1, sizeof(*c)))) {
		rc = -ENOMEM;
	} else {
		c->newer = newer;
		c->older = older;
		c->rn = rn;
		c->ro = ro;
		rc = changes_cut(c);
		if (rc) {
			free(c);
			c = NULL;
		} else {
			c->refs = 1;
			c->next = reg->changes;
			reg->changes = c;
		}
	}
	pthread_mutex_unlock(&reg->lock);
	if (rc) {
		reader_release(fs, ro);
		reader_release(fs, rn);
		return rc;
	}
	*out = c;
	return 0;
}

struct chain *reader_changes_chain(struct reader_changes *rc)
{
	return rc->rn->chain;
}

const struct chain_range *reader_changes_ranges(struct reader_changes *rc, size_t *n,
						uint64_t *bytes)
{
	*n = rc->nranges;
	if (bytes)
		*bytes = rc->bytes;
	return rc->ranges;
}

const char *reader_changes_text(struct reader_changes *rc, size_t *len)
{
	const char *t;

	/* set once; the lock orders it with the setter */
	pthread_mutex_lock(&changes_lock);
	t = rc->text;
	if (t)
		*len = rc->text_len;
	pthread_mutex_unlock(&changes_lock);
	return t;
}

int reader_changes_text_set(struct reader_changes *rc, char *text, size_t len)
{
	int rc_take = 0;

	pthread_mutex_lock(&changes_lock);
	if (rc->text) {
		free(text);
	} else if ((rc_take = chain_memory_take(len)) != 0) {
		log_err("snapshot inode %llu: the maps of open chains hold %llu KiB of the %llu "
			"KiB they may use: no room for %zu bytes of changes.json",
			(unsigned long long)rc->newer,
			(unsigned long long)(chain_memory_used() >> 10),
			(unsigned long long)(chain_memory_limit() >> 10), len);
		free(text);
	} else {
		rc->text = text;
		rc->text_len = len;
	}
	pthread_mutex_unlock(&changes_lock);
	return rc_take;
}

void reader_changes_release(struct snapfs *fs, struct reader_changes *rc)
{
	struct reader_registry *reg = fs->readers;
	struct reader *rn = rc->rn, *ro = rc->ro;

	pthread_mutex_lock(&reg->lock);
	if (--rc->refs == 0) {
		for (struct reader_changes **pp = &reg->changes; *pp; pp = &(*pp)->next) {
			if (*pp == rc) {
				*pp = rc->next;
				break;
			}
		}
		chain_ranges_free(rc->ranges, rc->nranges);
		if (rc->text)
			chain_memory_put(rc->text_len);
		free(rc->text);
		free(rc);
	}
	pthread_mutex_unlock(&reg->lock);
	reader_release(fs, ro);
	reader_release(fs, rn);
}

int reader_changes_allocated(struct snapfs *fs, uint64_t newer, uint64_t older, uint64_t *bytes,
			     size_t *text_len)
{
	struct reader_registry *reg = fs->readers;
	struct reader_changes *c;

	pthread_mutex_lock(&reg->lock);
	c = changes_find(reg, newer & ~INO_SLOT_MASK, older & ~INO_SLOT_MASK);
	if (c) {
		*bytes = c->bytes;
		pthread_mutex_lock(&changes_lock);
		*text_len = c->text ? c->text_len : 0;
		pthread_mutex_unlock(&changes_lock);
	}
	pthread_mutex_unlock(&reg->lock);
	return c ? 0 : -ENOENT;
}
