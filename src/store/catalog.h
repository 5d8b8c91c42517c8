/* catalog.h - the catalogue: typed object records, names, ids, inodes.
 *
 * The catalogue is the only source of truth for which tenants, volumes,
 * snapshots, groups and group snapshots exist. Two backends behind this one
 * interface:
 *   - one host: an LMDB environment in a local directory (never on NFS);
 *   - several hosts on one share: etcd holds the catalogue, and each host
 *     keeps an LMDB copy fed by a watch, so that reads stay local; a write
 *     transaction takes a writer lock in etcd, runs against the up-to-date
 *     copy and commits to etcd, then to the copy (catalog_shared.h).
 * Callers see the same records, names, ids and inode numbers on every host.
 * Three named databases:
 *
 *   objects   ino (8 bytes, big endian)          -> record (JSON text)
 *   children  parent ino, kind (1 byte), name    -> ino
 *   ids       uuid text                          -> ino
 *
 * Inode numbers are stable and never reused: an object's ino is a sequence
 * number shifted left by INO_SLOT_BITS; the low bits number the fixed entries
 * inside the object's directory (see tree.h).
 *
 * Threading: a struct catalog is shared by all threads. A struct catalog_txn
 * belongs to one thread at a time. Any number of read transactions run
 * concurrently with one write transaction; a second writer waits. Never hold
 * a write transaction across slow work (file copies, merges, qemu-img).
 *
 * Every function returns 0 or a negative errno: -ENOENT (no such record),
 * -EEXIST (name or id taken), -ENOSPC (catalogue full: MDB_MAP_FULL), -EIO
 * (anything else, with a log line).
 */
#ifndef SNAPFS_CATALOG_H
#define SNAPFS_CATALOG_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "util.h"

#define INO_SLOT_BITS 4
#define CATALOG_HOST_ID_MAX 64
#define INO_SLOT_MASK ((1ULL << INO_SLOT_BITS) - 1)

enum object_kind {
	OBJ_NONE = 0,
	OBJ_TENANT = 1,
	OBJ_VOLUME = 2,
	OBJ_SNAPSHOT = 3,
	OBJ_GROUP = 4,
	OBJ_CGSNAPSHOT = 5,
};

/* One catalogue record. Strings are NUL-terminated and bounded as the API
 * bounds them. metadata is a JSON object of string values owned by the
 * record; object_clear() releases it. */
struct object {
	uint64_t ino;
	enum object_kind kind;
	uint64_t parent;        /* owning object: tenant of a volume, ...; 0 for a tenant */
	uint64_t tenant;        /* the tenant the object belongs to (itself for a tenant) */
	char id[UUID_STR_LEN];
	char name[256];
	char status[32];
	char op[16];            /* multi-step operation under way ("" when idle) */
	char op_arg[256];       /* what the operation needs to finish or undo */
	char op_owner[CATALOG_HOST_ID_MAX]; /* the host running op ("" with one host;
				 * set by the catalogue when op is written) */
	int64_t op_since;       /* usec: when op was first written (set by the
				 * catalogue like op_owner; 0 when idle) */
	char description[256];
	bool has_description;   /* the API's null vs "" */
	json_t *metadata;
	uint32_t uid, gid, mode;
	int64_t created_at;     /* microseconds since the epoch */
	int64_t updated_at;
	uint64_t size;          /* bytes: a volume's virtual size */
	char format[8];         /* volume: "raw" or "qcow2" */
	char file[256];         /* volume: active file; snapshot: its overlay */
	char backing[256];      /* snapshot: its overlay's backing file, the
				 * top of the snapshot's data */
	char link_id[UUID_STR_LEN]; /* volume: its group; snapshot: its group snapshot */
	int progress;           /* percent, 0..100 */
	int merge_state;        /* snapshot: MERGE_* below; survives failures and reset-state */
	char attach[160];       /* volume: "SOCKET#NODE" of the QEMU that runs it
				 * (attach.h), "" when detached */
	char consistency[16];   /* group snapshot: how its members were taken
				 * (group.h), "" before */
	json_t *members;        /* group: its volumes' inos; group snapshot: its member
				 * snapshots' inos (a JSON array); volume: the overlays of
				 * its chain that no snapshot names (unmanaged or
				 * imported), as [file, backing] pairs (snapshot.h);
				 * NULL otherwise */
	int64_t quota[3];       /* tenant: its limits of volumes, snapshots and
				 * gigabytes (quota.h), -1 = unlimited; -1 elsewhere */
};

/* A snapshot's delete, as far as its files are concerned. */
#define MERGE_NONE 0      /* its data is intact */
#define MERGE_STARTED 1   /* a delete began: its data may be changing; never read it */
#define MERGE_DONE 2      /* commit and rebase are done and synced: never run them again */

struct catalog;
struct catalog_txn;

/* Several hosts: where the shared catalogue lives and who this host is. */
struct catalog_shared_options {
	const char *endpoints;  /* etcd client endpoints, "host:port+host:port" */
	const char *prefix;     /* this share's keys in etcd */
	const char *host_id;    /* this host, unique among the share's hosts */
	unsigned ttl;           /* this host's lease: seconds it outlives a crash */
};

/* Open (creating if needed) the catalogue in directory dir with an LMDB map
 * of map_size bytes. With shared (etcd), dir holds this host's copy, which
 * is loaded anew from etcd. Returns 0 and sets *out, or -errno (-EIO when
 * etcd cannot be reached). Call once per mount. */
int catalog_open(struct catalog **out, const char *dir, uint64_t map_size,
		 const struct catalog_shared_options *shared);

/* Open the catalogue only to read it, beside a mounted snapfs: with one
 * host, the LMDB environment in dir read-only (MDB_RDONLY: no write
 * transaction, no writer lock, snapfs.lock untouched; dir must hold a
 * catalogue); with shared, a copy of etcd's catalogue read at one
 * revision into a new LMDB environment in dir (a scratch directory of
 * the caller's), no host registered. Write transactions answer -EROFS.
 * Returns 0 and *out, -ENOENT (no catalogue in dir), -EIO. */
int catalog_open_readonly(struct catalog **out, const char *dir,
			  const struct catalog_shared_options *shared);

/* Close the environment (and leave etcd: this host's lease is revoked). No
 * transaction may be open. */
void catalog_close(struct catalog *cat);

/* True when the catalogue is shared by several hosts (etcd). */
bool catalog_is_shared(const struct catalog *cat);

/* Whose an operation is (object.op_owner): this host's (also a previous
 * run of it), a live host's, or a host's that is gone (its lease expired),
 * whose operation this host may finish or undo. Always OWNER_MINE with
 * one host. Asks etcd; an unanswered question counts as OWNER_LIVE. */
enum op_owner_state { OWNER_MINE, OWNER_LIVE, OWNER_GONE };
enum op_owner_state catalog_op_owner_state(struct catalog *cat, const char *owner);

/* In a write transaction: mark object ino as open for reading on this
 * host, from the commit on; catalog_unhold() ends it (hold and unhold
 * pair up). Other hosts see it through catalog_held_elsewhere(). A no-op
 * with one host, where the reader registry (reader.h) is enough. */
int catalog_txn_hold(struct catalog_txn *txn, uint64_t ino);
void catalog_unhold(struct catalog *cat, uint64_t ino);

/* 1 when another host holds ino open, 0 when none does, -EIO when etcd
 * does not answer; always 0 with one host. Asked while the caller has a
 * write transaction open, the answer holds until it commits (holds are
 * taken under the same writer lock). */
int catalog_held_elsewhere(struct catalog *cat, uint64_t ino);

/* A changed name or record: what another host changed, as the watch
 * applied it to this host's copy, or what a write transaction of this
 * process committed. */
struct catalog_change {
	bool is_name;           /* a name (parent, kind, name) or a record (ino) */
	bool deleted;
	uint64_t parent;        /* a record: its parent too, when kind is known */
	enum object_kind kind;  /* a record: OBJ_NONE (unknown) from the watch */
	const char *name;
	uint64_t ino;
};

/* Call fn for every change another host makes (from the watch thread,
 * after the copy holds it; fn must be quick and must not wait for a
 * request or a write transaction). Set once, before requests. */
void catalog_set_change_hook(struct catalog *cat,
			     void (*fn)(void *arg, const struct catalog_change *c), void *arg);

/* Call fn for every record this process writes or deletes and every name
 * it deletes (renames included), once the write transaction that did it
 * has committed: from the committing thread, before catalog_txn_commit()
 * returns. fn must not begin a write transaction. Set once, before
 * requests; NULL to stop. */
void catalog_set_commit_hook(struct catalog *cat,
			     void (*fn)(void *arg, const struct catalog_change *c), void *arg);

/* Call fn(arg, host) when another host leaves (its lease ended: a crash, or
 * an unmount), from the watch thread, under the same rules; and fn(arg,
 * NULL) when a change of this host failed in etcd (its lock or its commit),
 * from the thread that wrote: an operation of this host may be left half
 * done. */
void catalog_set_recovery_hook(struct catalog *cat, void (*fn)(void *arg, const char *host),
			       void *arg);

/* Begin a read-only (write == false) or a write transaction. A write
 * transaction blocks while another is open. Returns 0 or -errno. */
int catalog_txn_begin(struct catalog *cat, bool write, struct catalog_txn **out);

/* Commit a write transaction (a read one is simply ended). The handle is
 * freed in every case. Returns 0, -ENOSPC or -EIO. */
int catalog_txn_commit(struct catalog_txn *txn);

/* Drop the transaction and its changes; txn may be NULL. */
void catalog_txn_abort(struct catalog_txn *txn);

/* Initialise obj to an empty record (metadata = {}, members = NULL). */
void object_init(struct object *obj);

/* Release what obj owns; obj may be reused after object_init(). */
void object_clear(struct object *obj);

/* Deep copy src into an object_init()ed or cleared dst. */
void object_copy(struct object *dst, const struct object *src);

/* Load the record of the object whose ino is ino (slot bits ignored) into
 * obj, which is overwritten, not freed. In every case obj is afterwards a
 * valid record (empty on failure) to be object_clear()ed. Returns 0,
 * -ENOENT or -EIO. */
int catalog_object_get(struct catalog_txn *txn, uint64_t ino, struct object *obj);

/* The same without the record's nested and free-text fields: metadata
 * is left empty, members NULL, no description. Several times quicker, for
 * callers that read many records and need none of those (a directory
 * listing's attributes, the files of a volume's chain). */
int catalog_object_get_brief(struct catalog_txn *txn, uint64_t ino, struct object *obj);

/* Insert a new object: allocates obj->ino, registers obj->name under
 * (obj->parent, obj->kind) and obj->id. Write transaction. Returns 0,
 * -EEXIST when the name or the id is taken, or -ENOSPC when the catalogue
 * is within a small reserve of full (the reserve keeps updates and deletes
 * of existing records possible). On failure the transaction must be
 * aborted. */
int catalog_object_insert(struct catalog_txn *txn, struct object *obj);

/* Rewrite the record of an existing object (same ino, name and id; use
 * catalog_object_rename() for the name). Write transaction. */
int catalog_object_update(struct catalog_txn *txn, const struct object *obj);

/* Rename obj to new_name under the same parent; updates obj->name.
 * Returns 0, -EEXIST or -ENOSPC. */
int catalog_object_rename(struct catalog_txn *txn, struct object *obj, const char *new_name);

/* Remove the object's record, name and id. Write transaction. */
int catalog_object_delete(struct catalog_txn *txn, const struct object *obj);

/* Find the child of (parent, kind) called name. Returns 0 and *ino, or
 * -ENOENT. */
int catalog_child_lookup(struct catalog_txn *txn, uint64_t parent, enum object_kind kind,
			 const char *name, uint64_t *ino);

/* Call fn(name, ino, arg) for each child of (parent, kind) in name order.
 * Stops early and returns fn's value when it is non-zero. */
int catalog_children_foreach(struct catalog_txn *txn, uint64_t parent, enum object_kind kind,
			     int (*fn)(const char *name, uint64_t ino, void *arg), void *arg);

/* True when (parent, kind) has at least one child. */
bool catalog_children_any(struct catalog_txn *txn, uint64_t parent, enum object_kind kind);

/* Find an object by its uuid. Returns 0 and *ino, or -ENOENT. */
int catalog_id_lookup(struct catalog_txn *txn, const char *id, uint64_t *ino);

/* Call fn(id, ino, arg) for every registered id in id order; stops early
 * as catalog_children_foreach(). */
int catalog_ids_foreach(struct catalog_txn *txn,
			int (*fn)(const char *id, uint64_t ino, void *arg), void *arg);

/* Call fn(obj, arg) for every object record; stops early likewise. */
int catalog_objects_foreach(struct catalog_txn *txn,
			    int (*fn)(const struct object *obj, void *arg), void *arg);

/* How full the catalogue is, for the operator's view. */
struct catalog_usage {
	uint64_t records;       /* object records */
	uint64_t map_size;      /* LMDB (one host: the catalogue; etcd: this
				 * host's copy): bytes of the map (catalog_size=) */
	uint64_t map_used;      /* LMDB: bytes of the pages in use */
	bool shared;            /* the fields below are set */
	int64_t etcd_db_size;   /* etcd: the answering member's database file */
	int64_t etcd_db_in_use; /* etcd: bytes of it in use (0 when etcd does not say) */
	uint64_t etcd_keys;     /* etcd: keys under this share's prefix */
	char etcd_endpoint[128]; /* the member that answered */
};

/* Fill *u. Asks etcd (two requests) when shared. Returns 0, or -EIO when
 * etcd does not answer (the LMDB fields are filled). Thread-safe. */
int catalog_usage(struct catalog *cat, struct catalog_usage *u);

/* Several hosts: call fn(host, arg) for each host registered in etcd (a
 * live lease), in name order; stops early with fn's non-zero value. With
 * one host: nothing. Returns 0, fn's value or -EIO. Thread-safe. */
int catalog_hosts_foreach(struct catalog *cat, int (*fn)(const char *host, void *arg),
			  void *arg);

/* Several hosts: call fn(ino, host, arg) for each snapshot held open for
 * reading (catalog_txn_hold()) by any host, this one included; as
 * catalog_hosts_foreach() otherwise. */
int catalog_holds_foreach(struct catalog *cat,
			  int (*fn)(uint64_t ino, const char *host, void *arg), void *arg);

/* This host's name in a shared catalogue ("" with one host). */
const char *catalog_host_id(const struct catalog *cat);

/* Several hosts: when etcd holds no catalogue for this share yet, load
 * the one-host LMDB catalogue in dir into it (dir is only read), under the
 * writer lock, in transactions of at most 100 changes; then wait until the
 * copy has it. When etcd holds one already, log that and change nothing.
 * Returns 0 or -errno (a load that fails part way leaves what it sent:
 * load before other hosts mount). */
int catalog_seed(struct catalog *cat, const char *dir);

#endif
