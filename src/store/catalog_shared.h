/* catalog_shared.h - the catalogue shared by several hosts through etcd.
 * Private to src/store: catalog.c is its only user, and it calls back into
 * catalog.c (catalog_cache_apply()) to keep the local LMDB cache.
 *
 * etcd holds the truth, under a prefix of its own per share:
 *
 *   P/c/<db><key>      one catalogue entry: db 'o' objects, 'n' names
 *                      (children), 'i' ids, 'm' shared meta (the sequence);
 *                      key and value as in the LMDB databases
 *   P/c/L              the writer lock: one host writes at a time; bound to
 *                      a lease of its own (LOCK_TTL_S, kept alive with the
 *                      host's), so a dead host's lock goes within seconds
 *   P/w/<host>         host waits for the writer lock (the lock's lease)
 *   P/h/<host>         a live host (bound to its lease)
 *   P/r/<ino>/<host>   snapshot ino is open for reading on host (its lease)
 *
 * Each host mirrors P/c/ into LMDB with a watch on P/, so reads stay local.
 * A write takes the lock (a transaction that creates P/c/L), waits until
 * the watch has applied the lock's own revision (so the cache holds every
 * earlier change), runs against the cache, and commits its changes to etcd
 * in one transaction that compares the lock's creation revision, then to
 * the cache. The host keeps the lock for its next write: while it holds it
 * no other host writes, so the cache is current and a write costs one etcd
 * transaction. A thread lets the lock go after LINGER_MS without a write,
 * when the watch shows another host's P/w/ key, or when the lock was lost
 * (lease expired: the commit's compare fails, nothing is written). A lock
 * of this host's that no write holds (a timed-out request that reached etcd
 * later, a delete that failed) is deleted by that thread too.
 *
 * Threading: as catalog.h; one writer per host at a time (catalog.c holds
 * its writer mutex around shared_lock() .. shared_commit()/shared_unlock()).
 */
#ifndef SNAPFS_CATALOG_SHARED_H
#define SNAPFS_CATALOG_SHARED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog.h"

/* One change of a catalogue entry, as logged by a write transaction or
 * received from the watch. db 'r' is a hold (key is the ino, 8 bytes),
 * put with this host's lease and not mirrored. */
struct kv_op {
	char db;
	bool del;
	int64_t rev;            /* a watched change: its revision (0 otherwise) */
	size_t klen, vlen;
	unsigned char *key, *val;
};

struct catalog_shared;

/* Connect, register this host (a previous incarnation of the same host_id
 * is cleared: its lease is revoked), load P/c/ into the cache through
 * catalog_cache_apply() and start the watch and the lease keeper.
 * Returns 0 and *out, or -EIO / -EINVAL with a log line. */
int shared_open(struct catalog_shared **out, struct catalog *cat,
		const struct catalog_shared_options *opts);

/* A reader's copy: load P/c/ into the cache once, at one revision, with
 * no host registered, no lease, no watch and no writer lock (the host id
 * is ""); for catalog_open_readonly(). Returns 0 and *out, or -EIO /
 * -EINVAL with a log line. shared_close() ends it. */
int shared_open_snapshot(struct catalog_shared **out, struct catalog *cat,
			 const struct catalog_shared_options *opts);
/* Stop the threads and revoke this host's lease (its holds and host key
 * go at once). */
void shared_close(struct catalog_shared *sh);

/* Take the writer lock and wait until the cache holds every change before
 * it. Returns 0, -EAGAIN (another host keeps the lock), -EIO. */
int shared_lock(struct catalog_shared *sh);

/* Commit ops in one etcd transaction under the lock; the write ends unless
 * keep_lock (more commits of the same write follow). The lock stays with
 * this host unless another host waits for it. Returns 0 and *rev (the
 * revision to record in the cache), or -EIO (nothing changed, unless the
 * reply was lost: then the watch brings the change); the lock is given up
 * on failure. */
int shared_commit(struct catalog_shared *sh, const struct kv_op *ops, size_t n, bool keep_lock,
		  int64_t *rev);

/* Wait until the watch has brought the cache to rev: 0 or -EIO. */
int shared_wait(struct catalog_shared *sh, int64_t rev);

/* End a write that committed nothing (aborted): as shared_commit(). */
void shared_unlock(struct catalog_shared *sh);

/* After a commit: the cache now holds rev. */
void shared_applied(struct catalog_shared *sh, int64_t rev);

/* See catalog_op_owner_state(), catalog_held_elsewhere(), catalog_unhold(). */
enum op_owner_state shared_owner_state(struct catalog_shared *sh, const char *owner);
int shared_held_elsewhere(struct catalog_shared *sh, uint64_t ino);
void shared_holds_committed(struct catalog_shared *sh, const struct kv_op *ops, size_t n);
void shared_unhold(struct catalog_shared *sh, uint64_t ino);
const char *shared_host_id(struct catalog_shared *sh);
/* See catalog_usage(), catalog_hosts_foreach(), catalog_holds_foreach():
 * the etcd side. */
int shared_usage(struct catalog_shared *sh, struct catalog_usage *u);
int shared_hosts_foreach(struct catalog_shared *sh, int (*fn)(const char *host, void *arg),
			 void *arg);
int shared_holds_foreach(struct catalog_shared *sh,
			 int (*fn)(uint64_t ino, const char *host, void *arg), void *arg);

/* Implemented by catalog.c for the watch: apply ops to the cache (after
 * emptying it when reset), skipping each op whose rev the cache already
 * holds (this host's own commits), record rev, and tell the change hook.
 * Does nothing for n == 0 unless reset. Returns 0 or -errno. */
int catalog_cache_apply(struct catalog *cat, const struct kv_op *ops, size_t n, int64_t rev,
			bool reset);

/* Implemented by catalog.c: a host went away (the recovery hook). */
void catalog_host_gone(struct catalog *cat, const char *host);

#endif
