/* quota.c - see quota.h. */
#include "quota.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "object.h"
#include "util.h"

static const char *const resource_names[QUOTA_RESOURCES] = {"volumes", "snapshots", "gigabytes"};

const char *quota_resource_name(enum quota_resource r)
{
	return r < QUOTA_RESOURCES ? resource_names[r] : "?";
}

int quota_resource_parse(const char *name, enum quota_resource *r)
{
	for (int i = 0; i < QUOTA_RESOURCES; i++)
		if (!strcmp(name, resource_names[i])) {
			*r = (enum quota_resource)i;
			return 0;
		}
	return -EINVAL;
}

int quota_limit_parse(const char *text, int64_t *limit)
{
	int64_t v = 0;
	const char *p = text;

	if (!strcmp(text, "-1")) {
		*limit = -1;
		return 0;
	}
	if (!*p || (*p == '0' && p[1]))
		return -EINVAL; /* empty, or a leading zero */
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		v = v * 10 + (*p - '0');
		if (v > QUOTA_LIMIT_MAX)
			return -EINVAL;
	}
	*limit = v;
	return 0;
}

struct count {
	struct catalog_txn *txn;
	bool snapshot_gb;
	int64_t *use;
};

static int count_snapshot(const char *name, uint64_t ino, void *arg)
{
	struct count *c = arg;
	struct object snap;
	int rc = catalog_object_get_brief(c->txn, ino, &snap);

	if (!rc) {
		c->use[QUOTA_SNAPSHOTS]++;
		if (c->snapshot_gb)
			c->use[QUOTA_GIGABYTES] += (int64_t)SIZE_GIB(snap.size);
	}
	object_clear(&snap);
	return rc;
}

static int count_volume(const char *name, uint64_t ino, void *arg)
{
	struct count *c = arg;
	struct object vol;
	uint64_t size, target;
	int rc = catalog_object_get_brief(c->txn, ino, &vol);

	if (!rc) {
		size = vol.size;
		/* An extend under way holds its new size (recorded in op_arg)
		 * until it finishes or fails. */
		if (!strcmp(vol.op, "extend") && !parse_u64(vol.op_arg, &target) && target > size)
			size = target;
		c->use[QUOTA_VOLUMES]++;
		c->use[QUOTA_GIGABYTES] += (int64_t)SIZE_GIB(size);
		rc = catalog_children_foreach(c->txn, ino, OBJ_SNAPSHOT, count_snapshot, c);
	}
	object_clear(&vol);
	return rc;
}

int quota_usage_count(struct catalog_txn *txn, uint64_t tenant, bool snapshot_gb,
		      int64_t use[QUOTA_RESOURCES])
{
	struct count c = {txn, snapshot_gb, use};

	memset(use, 0, sizeof(int64_t) * QUOTA_RESOURCES);
	return catalog_children_foreach(txn, tenant, OBJ_VOLUME, count_volume, &c);
}

int quota_check(struct snapfs *fs, struct catalog_txn *txn, uint64_t tenant,
		const int64_t add[QUOTA_RESOURCES], bool added, const char *what)
{
	bool snapshot_gb = !fs->opts->no_snapshot_gb;
	int64_t use[QUOTA_RESOURCES];
	struct object t;
	bool limited = false;
	int rc = catalog_object_get(txn, tenant, &t);

	for (int r = 0; !rc && r < QUOTA_RESOURCES; r++)
		if (add[r] > 0 && t.quota[r] >= 0)
			limited = true;
	if (rc || !limited)
		goto out; /* nothing asked of a limited resource: no count */
	rc = quota_usage_count(txn, tenant, snapshot_gb, use);
	for (int r = 0; !rc && r < QUOTA_RESOURCES; r++) { /* the first refusal is the reason */
		int64_t before = added ? use[r] - add[r] : use[r];

		if (add[r] <= 0 || t.quota[r] < 0 || before + add[r] <= t.quota[r])
			continue;
		rc = log_refuse(-EDQUOT,
				"%s refused: tenant %s (%s) quota %s exceeded: in use %" PRId64
				", asked %" PRId64 ", limit %" PRId64,
				what, t.name, t.id, resource_names[r], before, add[r], t.quota[r]);
	}
out:
	object_clear(&t);
	return rc;
}

struct limit_change {
	struct snapfs *fs;
	enum quota_resource r;
	int64_t limit;
};

static int apply_limit(struct catalog_txn *txn, struct object *t, void *arg)
{
	const struct limit_change *c = arg;
	int64_t use[QUOTA_RESOURCES];
	int rc;

	if (t->kind != OBJ_TENANT)
		return -ENOTSUP;
	if (c->limit >= 0) {
		rc = quota_usage_count(txn, t->ino, !c->fs->opts->no_snapshot_gb, use);
		if (rc)
			return rc;
		if (c->limit < use[c->r]) {
			return log_refuse(
				-EINVAL,
				"tenant %s (%s): quota %s %" PRId64 " refused: below the %" PRId64
				" in use (as Cinder's quota update)",
				t->name, t->id, resource_names[c->r], c->limit, use[c->r]);
		}
	}
	log_info("tenant %s (%s): quota %s %" PRId64 " -> %" PRId64, t->name, t->id,
		 resource_names[c->r], t->quota[c->r], c->limit);
	t->quota[c->r] = c->limit;
	return 0;
}

int quota_set(struct snapfs *fs, const struct cred *cred, uint64_t tenant, enum quota_resource r,
	      const char *value, bool remove)
{
	struct limit_change c = {fs, r, -1};

	if (!cred_is_admin(fs, cred))
		return log_refuse(-EPERM, "uid %u may not set quotas (admins only)",
				  (unsigned)cred->uid);
	if (r >= QUOTA_RESOURCES)
		return -EINVAL;
	if (!remove && quota_limit_parse(value, &c.limit))
		return log_refuse(-EINVAL, "quota %s: bad limit '%s' (an integer from -1 to %lld)",
				  resource_names[r], value, QUOTA_LIMIT_MAX);
	return object_modify(fs, tenant, apply_limit, &c);
}
