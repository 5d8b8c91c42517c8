/* quota.h - tenant quotas as Cinder has them: volumes, snapshots, gigabytes.
 *
 * A tenant's limits live in its catalogue record (object.quota), -1 meaning
 * unlimited, which is also Cinder's default when no limit is set. Usage is
 * never stored: it is counted from the catalogue's records, in the same
 * write transaction that adds the new records, so that the check and the
 * create are one decision (with etcd the write transaction holds the
 * cluster-wide writer lock) and no counter can drift through a crash or a
 * delete. What counts, as in Cinder:
 *   volumes    every volume record of the tenant, whatever its status
 *              (creating, error, deleting included: Cinder releases a
 *              volume's quota when its record goes);
 *   snapshots  every snapshot record of the tenant's volumes, a group
 *              snapshot's member snapshots one by one;
 *   gigabytes  the sizes of those volumes (a volume being extended counts
 *              its new size) plus, unless no_snapshot_gb_quota is set, the
 *              sizes of those snapshots (the size of their volume when they
 *              were taken), each rounded up to whole GiB.
 * Hidden layers (unmanaged overlays) count for nothing, as in Cinder.
 */
#ifndef SNAPFS_QUOTA_H
#define SNAPFS_QUOTA_H

#include <stdbool.h>
#include <stdint.h>

#include "catalog.h"
#include "snapfs.h"

enum quota_resource {
	QUOTA_VOLUMES = 0,
	QUOTA_SNAPSHOTS = 1,
	QUOTA_GIGABYTES = 2,
	QUOTA_RESOURCES = 3,
};

/* Largest limit accepted (Cinder's database limit, 2^31 - 1). */
#define QUOTA_LIMIT_MAX 2147483647LL

/* The resource's name in attributes and JSON: "volumes", "snapshots",
 * "gigabytes". */
const char *quota_resource_name(enum quota_resource r);

/* The resource called name; -EINVAL for any other name. */
int quota_resource_parse(const char *name, enum quota_resource *r);

/* Parse a limit: a decimal integer from -1 to QUOTA_LIMIT_MAX, nothing
 * else (no sign but '-' of -1, no space, no suffix). 0 or -EINVAL. */
int quota_limit_parse(const char *text, int64_t *limit);

/* Count the use of tenant (its ino) as txn sees it (read or write
 * transaction) into use[]; snapshot_gb: snapshots' sizes count in
 * gigabytes. Returns 0 or -errno of the catalogue. */
int quota_usage_count(struct catalog_txn *txn, uint64_t tenant, bool snapshot_gb,
		      int64_t use[QUOTA_RESOURCES]);

/* In the write transaction txn that makes an operation's change: may
 * tenant take add[] more? added says whether txn already holds the new
 * records (then the count includes them). A resource with add[r] > 0 is
 * refused when its use before the operation plus add[r] exceeds its
 * limit; a limit already below use refuses only new use. -EDQUOT with a
 * log line naming the tenant, the resource, the use, the request and the
 * limit (what: the operation, for the log); 0 when it fits. The tenant's
 * record is read through txn, so a limit set meanwhile counts. */
int quota_check(struct snapfs *fs, struct catalog_txn *txn, uint64_t tenant,
		const int64_t add[QUOTA_RESOURCES], bool added, const char *what);

/* setfattr user.quota.R on a tenant: set its limit (admins only, -EPERM;
 * a bad value -EINVAL). As Cinder's quota update, a limit below the use
 * (other than -1) is refused with -EINVAL and a log line; the check and
 * the change are one write transaction. remove: setfattr -x, back to -1
 * (value ignored). Thread-safe. */
int quota_set(struct snapfs *fs, const struct cred *cred, uint64_t tenant, enum quota_resource r,
	      const char *value, bool remove);

#endif
