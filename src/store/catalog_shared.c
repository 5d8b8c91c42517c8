/* catalog_shared.c - see catalog_shared.h. */
#include "catalog_shared.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "etcd.h"
#include "log.h"

#define CALL_MS 3000          /* one etcd request */
#define CATCH_UP_MS 3000      /* the watch reaching the lock's revision */
#define RANGE_PAGE 1000       /* keys per request of the first load */
#define MAX_HOLDS 4096
#define LINGER_MS 100         /* an idle host keeps the writer lock this long */
#define LOCK_TTL_S 2          /* the writer lock's own lease: a dead holder's
			       * lock goes this fast, whatever etcd_ttl is */

struct hold {
	uint64_t ino;
	unsigned count;
};

struct catalog_shared {
	struct catalog *cat;
	struct etcd *etcd;
	char prefix[256];
	size_t plen;
	char host_id[CATALOG_HOST_ID_MAX];
	unsigned ttl;

	pthread_mutex_t lock;   /* everything below */
	pthread_cond_t cond;    /* applied moved, the writer lock went, stop */
	pthread_cond_t keeper_wake; /* stop (the keeper sleeps on its own) */
	int64_t lease;
	int64_t lock_lease;     /* the lease of P/c/L and P/w/<host> */
	int64_t applied;        /* the cache holds every change up to here */
	int64_t lock_rev;       /* our writer lock's revision, 0 when not held */
	bool lock_busy;         /* a write of this host runs under it */
	bool lock_lost;         /* etcd deleted it (our lease went): take it anew */
	bool releasing;         /* the linger thread is deleting it */
	bool acquiring;         /* shared_lock() is asking etcd for it */
	int64_t orphan_rev;     /* a lock of ours no write holds, to delete */
	bool orphan_retry;      /* deleting it failed: the next try waits */
	bool wanted;            /* another host waits for it */
	int64_t lock_used_ms;   /* when our last write under it ended */
	pthread_cond_t linger_wake; /* a write ended, wanted, lost, stop */
	bool resync;            /* the watch must load everything again */
	bool stop;
	pthread_t watcher, keeper, linger;
	bool threads;

	pthread_mutex_t holds_lock; /* orders hold puts and deletes */
	struct hold holds[MAX_HOLDS];
	size_t nholds;
	uint64_t unheld[64];    /* hold deletes to retry */
	size_t nunheld;
};

/* ---- keys ---- */

static json_t *key_json(struct catalog_shared *sh, const char *part, const void *rest, size_t len)
{
	unsigned char buf[1024];
	size_t n = strlen(part);

	if (sh->plen + n + len > sizeof(buf))
		return NULL;
	memcpy(buf, sh->prefix, sh->plen);
	memcpy(buf + sh->plen, part, n);
	memcpy(buf + sh->plen + n, rest, len);
	return etcd_b64(buf, sh->plen + n + len);
}

static json_t *range_end_json(struct catalog_shared *sh, const char *part)
{
	unsigned char buf[512];
	size_t n = strlen(part);

	memcpy(buf, sh->prefix, sh->plen);
	memcpy(buf + sh->plen, part, n);
	return etcd_prefix_end(buf, sh->plen + n);
}

static json_t *lock_key(struct catalog_shared *sh)
{
	return key_json(sh, "c/L", "", 0);
}

static json_t *host_key(struct catalog_shared *sh, const char *host)
{
	return key_json(sh, "h/", host, strlen(host));
}

static void hold_part(uint64_t ino, char *buf, size_t len)
{
	snprintf(buf, len, "r/%016llx/", (unsigned long long)ino);
}

static json_t *hold_key(struct catalog_shared *sh, uint64_t ino)
{
	char part[40];

	hold_part(ino, part, sizeof(part));
	return key_json(sh, part, sh->host_id, strlen(sh->host_id));
}

static int64_t header_rev(json_t *reply)
{
	return etcd_int(json_object_get(reply, "header"), "revision");
}

static bool succeeded(json_t *reply)
{
	return json_is_true(json_object_get(reply, "succeeded"));
}

/* The first kv of the first range response of a txn reply. */
static json_t *txn_first_kv(json_t *reply)
{
	json_t *r = json_array_get(json_object_get(reply, "responses"), 0);

	return json_array_get(json_object_get(json_object_get(r, "response_range"), "kvs"), 0);
}

static int post(struct catalog_shared *sh, const char *path, json_t *body, json_t **reply)
{
	int rc = body ? etcd_post(sh->etcd, path, body, CALL_MS, reply) : -ENOMEM;

	json_decref(body);
	return rc;
}

static json_t *put_req(json_t *key, json_t *value, int64_t lease)
{
	json_t *p = json_pack("{s{soso}}", "request_put", "key", key, "value", value);

	if (p && lease)
		json_object_set_new(json_object_get(p, "request_put"), "lease", json_integer(lease));
	return p;
}

static json_t *create_rev_is(json_t *key, int64_t rev)
{
	return json_pack("{sosssssI}", "key", key, "target", "CREATE", "result", "EQUAL",
			 "create_revision", (json_int_t)rev);
}

/* ---- the lease and this host ---- */

static int lease_grant(struct catalog_shared *sh, unsigned ttl, int64_t *id)
{
	json_t *reply;
	int rc = post(sh, "/v3/lease/grant", json_pack("{sI}", "TTL", (json_int_t)ttl), &reply);

	if (rc)
		return rc;
	*id = etcd_int(reply, "ID");
	json_decref(reply);
	if (!*id) {
		log_err("etcd at %s granted no lease", etcd_endpoint(sh->etcd));
		return -EIO;
	}
	return 0;
}

/* Keep lease id alive: 1, 0 when it has expired (etcd answers 200 with
 * no TTL), or -errno when etcd does not answer. */
static int lease_keepalive(struct catalog_shared *sh, int64_t id)
{
	json_t *reply;
	int alive, rc = post(sh, "/v3/lease/keepalive", json_pack("{sI}", "ID", (json_int_t)id),
			     &reply);

	if (rc)
		return rc;
	alive = etcd_int(json_object_get(reply, "result") ?: reply, "TTL") > 0;
	json_decref(reply);
	return alive;
}

static void lease_revoke(struct catalog_shared *sh, int64_t id)
{
	json_t *reply;

	if (!post(sh, "/v3/lease/revoke", json_pack("{sI}", "ID", (json_int_t)id), &reply))
		json_decref(reply);
}

static int put_holds(struct catalog_shared *sh, int64_t lease);

/* Register this host under a new lease; an older registration of the same
 * host_id (this host before a crash: the caller holds the local state's
 * lock) loses its lease, and with it its holds and writer lock. */
static int host_register(struct catalog_shared *sh)
{
	json_t *reply, *kv;
	int64_t lease;
	char value[128];
	int rc = lease_grant(sh, sh->ttl, &lease);

	if (rc)
		return rc;
	rc = post(sh, "/v3/kv/range", json_pack("{so}", "key", host_key(sh, sh->host_id)), &reply);
	if (rc)
		return rc;
	kv = json_array_get(json_object_get(reply, "kvs"), 0);
	if (kv && etcd_int(kv, "lease") && etcd_int(kv, "lease") != lease) {
		log_info("etcd: host %s was registered before (lease %llx): revoking it", sh->host_id,
			 (unsigned long long)etcd_int(kv, "lease"));
		lease_revoke(sh, etcd_int(kv, "lease"));
	}
	json_decref(reply);
	snprintf(value, sizeof(value), "{\"lease\":%lld,\"pid\":%d}", (long long)lease, (int)getpid());
	rc = post(sh, "/v3/kv/put",
		  json_pack("{sososI}", "key", host_key(sh, sh->host_id), "value",
			    etcd_b64(value, strlen(value)), "lease", (json_int_t)lease),
		  &reply);
	if (rc)
		return rc;
	json_decref(reply);
	pthread_mutex_lock(&sh->lock);
	sh->lease = lease;
	if (sh->lock_rev)
		sh->lock_lost = true; /* it went with the old lease */
	pthread_mutex_unlock(&sh->lock);
	return put_holds(sh, lease);
}

/* ---- holds: open snapshots ---- */

static struct hold *hold_find(struct catalog_shared *sh, uint64_t ino)
{
	for (size_t i = 0; i < sh->nholds; i++)
		if (sh->holds[i].ino == ino)
			return &sh->holds[i];
	return NULL;
}

/* Put every hold again (under a new lease), and retry failed deletes. */
static int put_holds(struct catalog_shared *sh, int64_t lease)
{
	int rc = 0;

	pthread_mutex_lock(&sh->holds_lock);
	for (size_t i = 0; i < sh->nholds && !rc; i++) {
		json_t *reply;

		rc = post(sh, "/v3/kv/put",
			  json_pack("{sososI}", "key", hold_key(sh, sh->holds[i].ino), "value",
				    etcd_b64("1", 1), "lease", (json_int_t)lease),
			  &reply);
		if (!rc)
			json_decref(reply);
	}
	while (!rc && sh->nunheld) {
		json_t *reply;

		rc = post(sh, "/v3/kv/deleterange",
			  json_pack("{so}", "key", hold_key(sh, sh->unheld[sh->nunheld - 1])), &reply);
		if (!rc) {
			json_decref(reply);
			sh->nunheld--;
		}
	}
	pthread_mutex_unlock(&sh->holds_lock);
	return rc;
}

void shared_holds_committed(struct catalog_shared *sh, const struct kv_op *ops, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t ino;
		struct hold *h;

		if (ops[i].db != 'r')
			continue;
		memcpy(&ino, ops[i].key, sizeof(ino));
		h = hold_find(sh, ino);
		if (!h && sh->nholds < MAX_HOLDS) {
			h = &sh->holds[sh->nholds++];
			h->ino = ino;
			h->count = 0;
		}
		if (h)
			h->count++;
	}
	pthread_mutex_unlock(&sh->holds_lock);
}

void shared_unhold(struct catalog_shared *sh, uint64_t ino)
{
	struct hold *h;
	json_t *reply;

	pthread_mutex_lock(&sh->holds_lock);
	h = hold_find(sh, ino);
	if (h && --h->count == 0) {
		*h = sh->holds[--sh->nholds];
		if (!post(sh, "/v3/kv/deleterange", json_pack("{so}", "key", hold_key(sh, ino)),
			  &reply))
			json_decref(reply);
		else if (sh->nunheld < sizeof(sh->unheld) / sizeof(sh->unheld[0]))
			sh->unheld[sh->nunheld++] = ino; /* the keeper retries */
	}
	pthread_mutex_unlock(&sh->holds_lock);
}

int shared_held_elsewhere(struct catalog_shared *sh, uint64_t ino)
{
	char part[40];
	json_t *reply, *kvs;
	size_t i, hl = strlen(sh->host_id);
	int rc, held = 0;

	hold_part(ino, part, sizeof(part));
	rc = post(sh, "/v3/kv/range",
		  json_pack("{soso sb}", "key", key_json(sh, part, "", 0), "range_end",
			    range_end_json(sh, part), "keys_only", 1),
		  &reply);
	if (rc)
		return rc;
	kvs = json_object_get(reply, "kvs");
	for (i = 0; i < json_array_size(kvs); i++) {
		size_t len;
		unsigned char *k = etcd_unb64(json_object_get(json_array_get(kvs, i), "key"), &len);
		size_t at = sh->plen + strlen(part);

		if (k && (len - at != hl || memcmp(k + at, sh->host_id, hl)))
			held = 1;
		free(k);
	}
	json_decref(reply);
	return held;
}

/* ---- the writer lock ---- */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void timespec_in(struct timespec *ts, long ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static int wait_applied(struct catalog_shared *sh, int64_t rev)
{
	struct timespec until;
	int rc = 0;

	timespec_in(&until, CATCH_UP_MS);
	pthread_mutex_lock(&sh->lock);
	while (sh->applied < rev && !sh->stop && !rc)
		rc = pthread_cond_timedwait(&sh->cond, &sh->lock, &until);
	rc = sh->applied >= rev ? 0 : -EIO;
	pthread_mutex_unlock(&sh->lock);
	if (rc)
		log_err("etcd: the catalogue cache did not reach revision %lld in %d ms (watch at %s)",
			(long long)rev, CATCH_UP_MS, etcd_endpoint(sh->etcd));
	return rc;
}

/* Delete the lock if it is still the one created at rev. */
static int lock_delete(struct catalog_shared *sh, int64_t rev)
{
	json_t *reply;
	int rc = post(sh, "/v3/kv/txn",
		      json_pack("{s[o]s[{s{so}}]}", "compare", create_rev_is(lock_key(sh), rev),
				"success", "request_delete_range", "key", lock_key(sh)),
		      &reply);

	if (!rc) {
		json_decref(reply);
	} else {
		/* still there, perhaps: the linger thread tries again */
		pthread_mutex_lock(&sh->lock);
		if (!sh->orphan_rev)
			sh->orphan_rev = rev;
		sh->orphan_retry = true;
		pthread_mutex_unlock(&sh->lock);
	}
	return rc;
}

/* The write of this host under the lock has ended: keep the lock for the
 * next one, or forget it (dropped: it was released, lost or is unsure). */
static void lock_idle(struct catalog_shared *sh, bool dropped)
{
	pthread_mutex_lock(&sh->lock);
	sh->lock_busy = false;
	if (dropped) {
		sh->lock_rev = 0;
		sh->wanted = false;
	}
	sh->lock_used_ms = now_ms();
	pthread_cond_signal(&sh->linger_wake);
	pthread_mutex_unlock(&sh->lock);
}

/* Tell the host holding the lock that this one waits for it: the holder
 * sees P/w/<host> through its watch and lets the lock go. */
static void lock_want(struct catalog_shared *sh, int64_t lease)
{
	json_t *reply;

	if (!post(sh, "/v3/kv/put",
		  json_pack("{sososI}", "key", key_json(sh, "w/", sh->host_id, strlen(sh->host_id)),
			    "value", etcd_b64("1", 1), "lease", (json_int_t)lease),
		  &reply))
		json_decref(reply);
}

/* After a failed write: the lock is lost, or its state unknown. */
static void lock_drop(struct catalog_shared *sh)
{
	int64_t rev;

	pthread_mutex_lock(&sh->lock);
	rev = sh->lock_rev;
	pthread_mutex_unlock(&sh->lock);
	if (rev)
		lock_delete(sh, rev); /* if it still is ours; else the next shared_lock() mends it */
	lock_idle(sh, true);
}

/* The lock is still ours from an earlier write: nothing to ask etcd. */
static bool lock_reuse(struct catalog_shared *sh)
{
	bool ours;

	pthread_mutex_lock(&sh->lock);
	while (sh->releasing && !sh->stop)
		pthread_cond_wait(&sh->cond, &sh->lock);
	if (sh->lock_lost)
		sh->lock_rev = 0;
	sh->lock_lost = false;
	ours = sh->lock_rev != 0;
	sh->lock_busy = true;
	pthread_mutex_unlock(&sh->lock);
	return ours;
}

int shared_lock(struct catalog_shared *sh)
{
	long waited_ms = 0, limit_ms = 2000L * (sh->ttl > 5 ? sh->ttl : 5);
	int64_t lease, wanted_from = -1;

	if (lock_reuse(sh))
		return 0;
	for (;;) {
		json_t *reply, *kv, *success;
		int64_t rev;
		int rc;

		pthread_mutex_lock(&sh->lock);
		lease = sh->lock_lease;
		pthread_mutex_unlock(&sh->lock);
		success = json_pack("[o]", put_req(lock_key(sh),
						   etcd_b64(sh->host_id, strlen(sh->host_id)), lease));
		if (success && wanted_from >= 0)
			json_array_append_new(success,
					      json_pack("{s{so}}", "request_delete_range", "key",
							key_json(sh, "w/", sh->host_id,
								 strlen(sh->host_id))));
		pthread_mutex_lock(&sh->lock);
		sh->acquiring = true;
		pthread_mutex_unlock(&sh->lock);
		rc = post(sh, "/v3/kv/txn",
			  json_pack("{s[o]sos[{s{so}}]}", "compare", create_rev_is(lock_key(sh), 0),
				    "success", success, "failure", "request_range", "key",
				    lock_key(sh)),
			  &reply);
		rev = rc ? 0 : header_rev(reply);
		pthread_mutex_lock(&sh->lock);
		sh->acquiring = false;
		if (!rc && succeeded(reply))
			sh->lock_rev = rev;
		pthread_mutex_unlock(&sh->lock);
		if (rc) {
			lock_idle(sh, true);
			return rc;
		}
		if (succeeded(reply)) {
			json_decref(reply);
			rc = wait_applied(sh, rev);
			if (rc)
				lock_drop(sh);
			return rc;
		}
		kv = txn_first_kv(reply);
		if (kv) {
			size_t len;
			unsigned char *holder = etcd_unb64(json_object_get(kv, "value"), &len);
			int64_t created = etcd_int(kv, "create_revision");

			/* ours, left by a write whose end did not reach etcd (this
			 * host writes one at a time: no write of ours is live) */
			if (holder && len == strlen(sh->host_id) && !memcmp(holder, sh->host_id, len)) {
				free(holder);
				json_decref(reply);
				if (lock_delete(sh, created)) {
					lock_idle(sh, true);
					return -EIO;
				}
				continue;
			}
			free(holder);
			/* once per holder: it may have kept the lock after its write */
			if (created != wanted_from) {
				lock_want(sh, lease);
				wanted_from = created;
			}
		}
		json_decref(reply);
		if (waited_ms >= limit_ms) {
			log_err("etcd: another host has held the catalogue's writer lock for %ld ms",
				waited_ms);
			lock_idle(sh, true);
			return -EAGAIN;
		}
		{
			struct timespec until;

			timespec_in(&until, 50);
			pthread_mutex_lock(&sh->lock);
			pthread_cond_timedwait(&sh->cond, &sh->lock, &until);
			pthread_mutex_unlock(&sh->lock);
			waited_ms += 50;
		}
	}
}

void shared_unlock(struct catalog_shared *sh)
{
	int64_t rev;
	bool release;

	pthread_mutex_lock(&sh->lock);
	rev = sh->lock_rev;
	release = sh->wanted || sh->lock_lost;
	pthread_mutex_unlock(&sh->lock);
	if (rev && release)
		lock_delete(sh, rev);
	lock_idle(sh, release);
}

int shared_wait(struct catalog_shared *sh, int64_t rev)
{
	return wait_applied(sh, rev);
}

int shared_commit(struct catalog_shared *sh, const struct kv_op *ops, size_t n, bool keep_lock,
		  int64_t *rev)
{
	json_t *success = json_array(), *reply, *body;
	bool holds = false, release;
	int64_t lease, lock_rev;
	int rc;

	pthread_mutex_lock(&sh->lock);
	lease = sh->lease;
	lock_rev = sh->lock_rev;
	release = !keep_lock && (sh->wanted || sh->stop);
	pthread_mutex_unlock(&sh->lock);
	if (!success)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const struct kv_op *op = &ops[i];
		json_t *key, *req;

		if (op->db == 'r') {
			uint64_t ino;

			memcpy(&ino, op->key, sizeof(ino));
			key = hold_key(sh, ino);
			holds = true;
		} else {
			char part[4] = {'c', '/', op->db, '\0'};

			key = key_json(sh, part, op->key, op->klen);
		}
		if (op->del)
			req = json_pack("{s{so}}", "request_delete_range", "key", key);
		else
			req = put_req(key, op->db == 'r' ? etcd_b64("1", 1) : etcd_b64(op->val, op->vlen),
				      op->db == 'r' ? lease : 0);
		if (!req || json_array_append_new(success, req)) {
			json_decref(success);
			return -ENOMEM;
		}
	}
	if (release)
		json_array_append_new(success, json_pack("{s{so}}", "request_delete_range", "key",
							 lock_key(sh)));
	body = json_pack("{s[o]so}", "compare", create_rev_is(lock_key(sh), lock_rev), "success",
			 success);
	if (holds)
		pthread_mutex_lock(&sh->holds_lock); /* released by shared_holds_committed() */
	rc = post(sh, "/v3/kv/txn", body, &reply);
	if (!rc) {
		*rev = header_rev(reply);
		if (!succeeded(reply)) {
			log_err("etcd: this host lost the catalogue's writer lock (lease expired?): "
				"nothing written");
			rc = -EIO;
		}
		json_decref(reply);
	}
	if (rc) {
		if (holds)
			pthread_mutex_unlock(&sh->holds_lock);
		lock_drop(sh);
		return rc;
	}
	if (!keep_lock)
		lock_idle(sh, release);
	if (holds)
		shared_holds_committed(sh, ops, n);
	return 0;
}

/* Let the lock go once this host has not written for LINGER_MS, or at once
 * when another host waits for it and no write of ours is running. */
static void *linger_loop(void *arg)
{
	struct catalog_shared *sh = arg;

	pthread_mutex_lock(&sh->lock);
	while (!sh->stop) {
		int64_t idle = now_ms() - sh->lock_used_ms, rev = sh->lock_rev;
		struct timespec until;

		if (sh->orphan_rev && !sh->acquiring && !sh->orphan_retry) {
			int64_t orphan = sh->orphan_rev;

			sh->orphan_rev = 0;
			pthread_mutex_unlock(&sh->lock);
			log_warn("etcd: deleting a writer lock of this host's that a failed request "
				 "left (revision %lld)", (long long)orphan);
			lock_delete(sh, orphan);
			pthread_mutex_lock(&sh->lock);
			pthread_cond_broadcast(&sh->cond);
			continue;
		}
		if (sh->orphan_retry) {
			/* etcd did not answer: wait a little before the next try */
			sh->orphan_retry = false;
			timespec_in(&until, 300);
			pthread_cond_timedwait(&sh->linger_wake, &sh->lock, &until);
			continue;
		}
		if (rev && !sh->lock_busy && (sh->wanted || sh->lock_lost || idle >= LINGER_MS)) {
			sh->releasing = true;
			pthread_mutex_unlock(&sh->lock);
			lock_delete(sh, rev);
			pthread_mutex_lock(&sh->lock);
			sh->lock_rev = 0;
			sh->lock_lost = false;
			sh->wanted = false;
			sh->releasing = false;
			pthread_cond_broadcast(&sh->cond);
			continue;
		}
		if (rev && !sh->lock_busy)
			timespec_in(&until, (long)(LINGER_MS - idle));
		else
			timespec_in(&until, 60 * 1000);
		pthread_cond_timedwait(&sh->linger_wake, &sh->lock, &until);
	}
	pthread_mutex_unlock(&sh->lock);
	return NULL;
}

void shared_applied(struct catalog_shared *sh, int64_t rev)
{
	pthread_mutex_lock(&sh->lock);
	if (rev > sh->applied)
		sh->applied = rev;
	pthread_cond_broadcast(&sh->cond);
	pthread_mutex_unlock(&sh->lock);
}

/* ---- owners of operations ---- */

enum op_owner_state shared_owner_state(struct catalog_shared *sh, const char *owner)
{
	json_t *reply;
	bool live;

	if (!strcmp(owner, sh->host_id))
		return OWNER_MINE;
	if (!*owner)
		return OWNER_GONE; /* recorded by a one-host catalogue */
	if (post(sh, "/v3/kv/range", json_pack("{sosb}", "key", host_key(sh, owner), "count_only", 1),
		 &reply))
		return OWNER_LIVE; /* unsure: leave it */
	live = etcd_int(reply, "count") > 0;
	json_decref(reply);
	return live ? OWNER_LIVE : OWNER_GONE;
}

const char *shared_host_id(struct catalog_shared *sh)
{
	return sh->host_id;
}

/* ---- the operator's view ---- */

int shared_usage(struct catalog_shared *sh, struct catalog_usage *u)
{
	json_t *reply;
	int rc = post(sh, "/v3/maintenance/status", json_object(), &reply);

	if (rc)
		return rc;
	u->etcd_db_size = etcd_int(reply, "dbSize");
	u->etcd_db_in_use = etcd_int(reply, "dbSizeInUse");
	snprintf(u->etcd_endpoint, sizeof(u->etcd_endpoint), "%s", etcd_endpoint(sh->etcd));
	json_decref(reply);
	rc = post(sh, "/v3/kv/range",
		  json_pack("{soso sb}", "key", key_json(sh, "", "", 0), "range_end",
			    range_end_json(sh, ""), "count_only", 1),
		  &reply);
	if (rc)
		return rc;
	u->etcd_keys = (uint64_t)etcd_int(reply, "count");
	json_decref(reply);
	return 0;
}

/* Call fn(key after P/part, arg) for every key under P/part, in key order. */
static int keys_foreach(struct catalog_shared *sh, const char *part,
			int (*fn)(const char *rest, void *arg), void *arg)
{
	size_t at = sh->plen + strlen(part);
	json_t *reply, *kvs;
	int rc = post(sh, "/v3/kv/range",
		      json_pack("{soso sb}", "key", key_json(sh, part, "", 0), "range_end",
				range_end_json(sh, part), "keys_only", 1),
		      &reply);

	if (rc)
		return rc;
	kvs = json_object_get(reply, "kvs");
	for (size_t i = 0; !rc && i < json_array_size(kvs); i++) {
		size_t len;
		unsigned char *k = etcd_unb64(json_object_get(json_array_get(kvs, i), "key"), &len);

		if (k && len > at)
			rc = fn((const char *)k + at, arg);
		free(k);
	}
	json_decref(reply);
	return rc;
}

struct host_walk {
	int (*host)(const char *host, void *arg);
	int (*hold)(uint64_t ino, const char *host, void *arg);
	void *arg;
};

static int host_key_seen(const char *rest, void *arg)
{
	struct host_walk *w = arg;

	return w->host(rest, w->arg);
}

/* rest: "<ino in hex>/<host>" */
static int hold_key_seen(const char *rest, void *arg)
{
	struct host_walk *w = arg;
	char *end;
	unsigned long long ino = strtoull(rest, &end, 16);

	if (*end != '/')
		return 0;
	return w->hold((uint64_t)ino, end + 1, w->arg);
}

int shared_hosts_foreach(struct catalog_shared *sh, int (*fn)(const char *host, void *arg),
			 void *arg)
{
	struct host_walk w = {.host = fn, .arg = arg};

	return keys_foreach(sh, "h/", host_key_seen, &w);
}

int shared_holds_foreach(struct catalog_shared *sh,
			 int (*fn)(uint64_t ino, const char *host, void *arg), void *arg)
{
	struct host_walk w = {.hold = fn, .arg = arg};

	return keys_foreach(sh, "r/", hold_key_seen, &w);
}

/* ---- the cache: first load and watch ---- */

struct op_list {
	struct kv_op *ops;
	size_t n, cap;
};

static void op_list_free(struct op_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->ops[i].key);
		free(l->ops[i].val);
	}
	free(l->ops);
	memset(l, 0, sizeof(*l));
}

/* Add a received key (full etcd key) to l when it is a catalogue entry. */
static int op_list_add(struct catalog_shared *sh, struct op_list *l, const unsigned char *k,
		       size_t klen, json_t *value, bool del, int64_t rev)
{
	struct kv_op *op;
	size_t at = sh->plen + 2;

	if (klen < at + 1 || memcmp(k + sh->plen, "c/", 2) || k[at] == 'L')
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct kv_op *o = realloc(l->ops, cap * sizeof(*o));

		if (!o)
			return -ENOMEM;
		l->ops = o;
		l->cap = cap;
	}
	op = &l->ops[l->n];
	memset(op, 0, sizeof(*op));
	op->db = (char)k[at];
	op->del = del;
	op->rev = rev;
	op->klen = klen - at - 1;
	op->key = malloc(op->klen + 1);
	if (!op->key)
		return -ENOMEM;
	memcpy(op->key, k + at + 1, op->klen);
	if (!del) {
		op->val = etcd_unb64(value, &op->vlen);
		if (!op->val) {
			op->val = (unsigned char *)strdup("");
			op->vlen = 0;
		}
	}
	l->n++;
	return 0;
}

/* Load all of P/c/ at one revision into an emptied cache. */
static int full_load(struct catalog_shared *sh)
{
	struct op_list l = {0};
	json_t *from = key_json(sh, "c/", "", 0);
	int64_t rev = 0;
	int rc = 0;

	for (bool more = true; more && !rc;) {
		json_t *reply, *body, *kvs;

		body = json_pack("{sOsosI}", "key", from, "range_end", range_end_json(sh, "c/"),
				 "limit", (json_int_t)RANGE_PAGE);
		if (body && rev)
			json_object_set_new(body, "revision", json_integer(rev));
		rc = post(sh, "/v3/kv/range", body, &reply);
		if (rc)
			break;
		if (!rev)
			rev = header_rev(reply);
		kvs = json_object_get(reply, "kvs");
		for (size_t i = 0; i < json_array_size(kvs) && !rc; i++) {
			json_t *kv = json_array_get(kvs, i);
			size_t klen;
			unsigned char *k = etcd_unb64(json_object_get(kv, "key"), &klen);

			rc = k ? op_list_add(sh, &l, k, klen, json_object_get(kv, "value"), false, 0) : -EIO;
			if (!rc && i + 1 == json_array_size(kvs)) {
				unsigned char *next = malloc(klen + 1);

				if (next) {
					memcpy(next, k, klen);
					next[klen] = '\0'; /* the key right after the last */
					json_decref(from);
					from = etcd_b64(next, klen + 1);
					free(next);
				}
			}
			free(k);
		}
		more = json_is_true(json_object_get(reply, "more"));
		json_decref(reply);
	}
	json_decref(from);
	if (!rc)
		rc = catalog_cache_apply(sh->cat, l.ops, l.n, rev, true);
	op_list_free(&l);
	if (!rc) {
		pthread_mutex_lock(&sh->lock);
		sh->applied = rev; /* a reload may go back from what a commit recorded */
		sh->resync = false;
		pthread_cond_broadcast(&sh->cond);
		pthread_mutex_unlock(&sh->lock);
		log_info("etcd: catalogue loaded at revision %lld", (long long)rev);
	}
	return rc;
}

#define WATCH_RESYNC 1

/* Whether a base64 value is this host's id. */
static bool value_is_host(struct catalog_shared *sh, json_t *value)
{
	size_t len;
	unsigned char *v = etcd_unb64(value, &len);
	bool is = v && len == strlen(sh->host_id) && !memcmp(v, sh->host_id, len);

	free(v);
	return is;
}

static int on_watch(json_t *result, void *arg)
{
	struct catalog_shared *sh = arg;
	json_t *events = json_object_get(result, "events");
	struct op_list l = {0};
	int64_t rev = 0;
	bool lock_gone = false, wanted = false;
	int64_t lock_deleted_at = 0, lock_put_at = 0;
	int rc = 0;

	if (etcd_int(result, "compact_revision") > 0) {
		log_warn("etcd: the watch fell behind a compaction: loading the catalogue again");
		return WATCH_RESYNC;
	}
	if (json_is_true(json_object_get(result, "canceled"))) {
		log_warn("etcd: the watch was cancelled: %s",
			 json_string_value(json_object_get(result, "cancel_reason")) ?: "no reason");
		return WATCH_RESYNC;
	}
	for (size_t i = 0; i < json_array_size(events) && !rc; i++) {
		json_t *ev = json_array_get(events, i), *kv = json_object_get(ev, "kv");
		bool del = !strcmp(json_string_value(json_object_get(ev, "type")) ?: "PUT", "DELETE");
		size_t klen;
		unsigned char *k = etcd_unb64(json_object_get(kv, "key"), &klen);
		int64_t r = etcd_int(kv, "mod_revision");

		if (!k)
			continue;
		if (r > rev)
			rev = r;
		if (klen == sh->plen + 3 && !memcmp(k + sh->plen, "c/L", 3)) {
			lock_gone |= del;
			if (del)
				lock_deleted_at = r;
			else if (value_is_host(sh, json_object_get(kv, "value")))
				lock_put_at = etcd_int(kv, "create_revision");
		} else if (!del && klen > sh->plen + 2 && !memcmp(k + sh->plen, "w/", 2)) {
			if (klen - sh->plen - 2 != strlen(sh->host_id) ||
			    memcmp(k + sh->plen + 2, sh->host_id, klen - sh->plen - 2))
				wanted = true;
		} else if (del && klen > sh->plen + 2 && !memcmp(k + sh->plen, "h/", 2)) {
			char host[CATALOG_HOST_ID_MAX];
			size_t hl = klen - sh->plen - 2;

			if (hl < sizeof(host)) {
				memcpy(host, k + sh->plen + 2, hl);
				host[hl] = '\0';
				catalog_host_gone(sh->cat, host);
			}
		} else {
			rc = op_list_add(sh, &l, k, klen, json_object_get(kv, "value"), del, r);
		}
		free(k);
	}
	if (!rc && rev)
		rc = catalog_cache_apply(sh->cat, l.ops, l.n, rev, false);
	op_list_free(&l);
	if (rc) {
		log_err("etcd: cannot apply a change to the catalogue cache: %s", strerror(-rc));
		return WATCH_RESYNC;
	}
	if (rev || lock_gone) {
		pthread_mutex_lock(&sh->lock);
		if (rev > sh->applied)
			sh->applied = rev;
		/* a delete after our lock's creation that we did not send */
		if (sh->lock_rev && lock_deleted_at > sh->lock_rev && !sh->releasing)
			sh->lock_lost = true;
		if (wanted)
			sh->wanted = true; /* kept until this host next lets its lock go */
		/* a lock of ours that no write of ours took: a request that timed
		 * out reached etcd after all; the linger thread deletes it */
		if (lock_put_at && lock_put_at != sh->lock_rev && !sh->acquiring &&
		    lock_put_at > lock_deleted_at)
			sh->orphan_rev = lock_put_at;
		if (sh->lock_lost || sh->wanted || sh->orphan_rev)
			pthread_cond_signal(&sh->linger_wake);
		pthread_cond_broadcast(&sh->cond);
		pthread_mutex_unlock(&sh->lock);
	}
	return 0;
}

static void *watch_loop(void *arg)
{
	struct catalog_shared *sh = arg;

	while (!sh->stop) {
		json_t *req;
		int64_t from;
		int rc;

		pthread_mutex_lock(&sh->lock);
		from = sh->applied + 1;
		pthread_mutex_unlock(&sh->lock);
		if (sh->resync) {
			if (full_load(sh)) {
				usleep(500 * 1000);
				continue;
			}
			pthread_mutex_lock(&sh->lock);
			from = sh->applied + 1;
			pthread_mutex_unlock(&sh->lock);
		}
		req = json_pack("{sososI}", "key", key_json(sh, "", "", 0), "range_end",
				etcd_prefix_end(sh->prefix, sh->plen), "start_revision", (json_int_t)from);
		if (!req) {
			usleep(100 * 1000);
			continue;
		}
		rc = etcd_watch(sh->etcd, req, on_watch, sh, &sh->stop);
		json_decref(req);
		if (rc == WATCH_RESYNC)
			sh->resync = true;
		else if (rc && !sh->stop)
			usleep(200 * 1000);
	}
	return NULL;
}

/* Keep the writer lock's lease alive, or take a new one when it expired
 * (a lock under the old one is gone: lost). Returns 0 or -EIO. */
static int lock_lease_keep(struct catalog_shared *sh)
{
	int64_t lease;
	int rc;

	pthread_mutex_lock(&sh->lock);
	lease = sh->lock_lease;
	pthread_mutex_unlock(&sh->lock);
	if (lease) {
		rc = lease_keepalive(sh, lease);
		if (rc)
			return rc < 0 ? rc : 0;
	}
	rc = lease_grant(sh, LOCK_TTL_S, &lease);
	if (rc)
		return rc;
	pthread_mutex_lock(&sh->lock);
	sh->lock_lease = lease;
	if (sh->lock_rev)
		sh->lock_lost = true;
	pthread_mutex_unlock(&sh->lock);
	return 0;
}

/* Keep the lease alive; after it expired (etcd was away longer than its
 * TTL), register again and put the holds back. */
static void *keep_loop(void *arg)
{
	struct catalog_shared *sh = arg;
	bool failing = false;

	pthread_mutex_lock(&sh->lock);
	while (!sh->stop) {
		struct timespec until;
		int64_t lease = sh->lease;
		int rc;

		pthread_mutex_unlock(&sh->lock);
		rc = lease_keepalive(sh, lease);
		if (rc == 0) {
			log_warn("etcd: lease of host %s expired: registering again", sh->host_id);
			rc = host_register(sh);
		} else if (rc > 0) {
			rc = 0;
			if (sh->nunheld)
				put_holds(sh, lease);
		}
		if (!rc)
			rc = lock_lease_keep(sh);
		if (rc && !failing)
			log_err("etcd: cannot keep host %s's lease alive; changes fail until etcd answers",
				sh->host_id);
		else if (!rc && failing)
			log_info("etcd: reachable again at %s", etcd_endpoint(sh->etcd));
		failing = rc != 0;
		timespec_in(&until, failing ? 300 : LOCK_TTL_S * 1000 / 4);
		pthread_mutex_lock(&sh->lock);
		if (!sh->stop)
			pthread_cond_timedwait(&sh->keeper_wake, &sh->lock, &until);
	}
	pthread_mutex_unlock(&sh->lock);
	return NULL;
}

/* A new handle for the share's prefix, its locks ready, not yet talking to
 * etcd. Returns 0, -ENOMEM, or -EINVAL (a prefix too long, logged). */
static int shared_new(struct catalog_shared **out, struct catalog *cat,
		      const struct catalog_shared_options *opts)
{
	struct catalog_shared *sh = calloc(1, sizeof(*sh));

	if (!sh)
		return -ENOMEM;
	sh->cat = cat;
	if (snprintf(sh->prefix, sizeof(sh->prefix), "%s/", opts->prefix) >= (int)sizeof(sh->prefix)) {
		log_err("etcd_prefix too long");
		free(sh);
		return -EINVAL;
	}
	sh->plen = strlen(sh->prefix);
	pthread_mutex_init(&sh->lock, NULL);
	pthread_cond_init(&sh->cond, NULL);
	pthread_cond_init(&sh->keeper_wake, NULL);
	pthread_cond_init(&sh->linger_wake, NULL);
	pthread_mutex_init(&sh->holds_lock, NULL);
	*out = sh;
	return 0;
}

int shared_open(struct catalog_shared **out, struct catalog *cat,
		const struct catalog_shared_options *opts)
{
	struct catalog_shared *sh;
	int rc;

	if (strlen(opts->host_id) >= sizeof(sh->host_id) ||
	    !*opts->host_id || strchr(opts->host_id, '/')) {
		log_err("host_id too long, or empty, or with '/'");
		return -EINVAL;
	}
	rc = shared_new(&sh, cat, opts);
	if (rc)
		return rc;
	sh->ttl = opts->ttl ? opts->ttl : 10;
	snprintf(sh->host_id, sizeof(sh->host_id), "%s", opts->host_id);
	rc = etcd_new(&sh->etcd, opts->endpoints);
	if (!rc)
		rc = host_register(sh);
	if (!rc)
		rc = lock_lease_keep(sh);
	if (!rc)
		rc = full_load(sh);
	if (!rc && pthread_create(&sh->watcher, NULL, watch_loop, sh))
		rc = -EAGAIN;
	if (!rc && pthread_create(&sh->keeper, NULL, keep_loop, sh)) {
		sh->stop = true;
		pthread_join(sh->watcher, NULL);
		rc = -EAGAIN;
	}
	if (!rc && pthread_create(&sh->linger, NULL, linger_loop, sh)) {
		pthread_mutex_lock(&sh->lock);
		sh->stop = true;
		pthread_cond_signal(&sh->keeper_wake);
		pthread_mutex_unlock(&sh->lock);
		pthread_join(sh->watcher, NULL);
		pthread_join(sh->keeper, NULL);
		rc = -EAGAIN;
	}
	if (rc) {
		if (sh->lease)
			lease_revoke(sh, sh->lease);
		if (sh->lock_lease)
			lease_revoke(sh, sh->lock_lease);
		etcd_free(sh->etcd);
		free(sh);
		return rc == -EINVAL ? rc : -EIO;
	}
	sh->threads = true;
	log_info("etcd: host %s shares the catalogue at %s (prefix %s, lease TTL %u s)", sh->host_id,
		 etcd_endpoint(sh->etcd), opts->prefix, sh->ttl);
	*out = sh;
	return 0;
}

int shared_open_snapshot(struct catalog_shared **out, struct catalog *cat,
			 const struct catalog_shared_options *opts)
{
	struct catalog_shared *sh;
	int rc = shared_new(&sh, cat, opts);

	if (rc)
		return rc;
	rc = etcd_new(&sh->etcd, opts->endpoints);
	if (!rc)
		rc = full_load(sh);
	if (rc) {
		shared_close(sh);
		return rc == -EINVAL ? rc : -EIO;
	}
	*out = sh;
	return 0;
}

void shared_close(struct catalog_shared *sh)
{
	if (!sh)
		return;
	pthread_mutex_lock(&sh->lock);
	sh->stop = true;
	pthread_cond_broadcast(&sh->cond);
	pthread_cond_signal(&sh->keeper_wake);
	pthread_cond_signal(&sh->linger_wake);
	pthread_mutex_unlock(&sh->lock);
	if (sh->threads) {
		pthread_join(sh->watcher, NULL);
		pthread_join(sh->keeper, NULL);
		pthread_join(sh->linger, NULL);
	}
	if (sh->lock_lease)
		lease_revoke(sh, sh->lock_lease);
	if (sh->lease)
		lease_revoke(sh, sh->lease);
	etcd_free(sh->etcd);
	pthread_mutex_destroy(&sh->holds_lock);
	pthread_cond_destroy(&sh->keeper_wake);
	pthread_cond_destroy(&sh->linger_wake);
	pthread_cond_destroy(&sh->cond);
	pthread_mutex_destroy(&sh->lock);
	free(sh);
}
