/* attr.h - the user.* extended attributes of objects (docs/snapfs.md section 5).
 *
 * Read-only: user.id user.status user.created_at user.size user.project_id
 * user.active_file user.consistency_group_id user.json (status and size are
 * also writable: reset-state and extend). Writable: user.description,
 * user.meta.KEY. Actions (write-only, not listed): user.force_delete,
 * user.unmanage (snapshots), user.manage (on a volume's snapshots/
 * directory, the only attribute a fixed directory takes).
 * manageable/<file> entries have the read-only user.reference, user.size
 * (GiB rounded up), user.safe_to_manage, user.reason_not_safe and
 * user.cinder_id (import.h); writing any attribute there is -EPERM.
 * Tenants: user.quota.volumes, user.quota.snapshots, user.quota.gigabytes
 * (admins set them; setfattr -x sets -1, unlimited), and the read-only
 * user.usage.volumes, user.usage.snapshots, user.usage.gigabytes and
 * user.quota_set (Cinder's quota set with usage), counted when read
 * (quota.h).
 *
 * Errors: an unknown name -ENOTSUP; a known one that the object does not
 * have -ENODATA; a read-only one written -EPERM; a bad value -EINVAL; a
 * description or metadata value over 255 bytes -E2BIG; an admin-only one
 * written by a non-admin -EPERM. Thread-safe; a write is one catalogue
 * transaction (or one volume operation), all or nothing.
 */
#ifndef SNAPFS_ATTR_H
#define SNAPFS_ATTR_H

#include <stddef.h>
#include <stdint.h>

#include "snapfs.h"

#define ATTR_VALUE_MAX 255

/* Value of name on ino, malloc'd into *value (not NUL-terminated; *len
 * bytes). */
int attr_get(struct snapfs *fs, uint64_t ino, const char *name, char **value, size_t *len);

/* The names ino has, each NUL-terminated, malloc'd into *names (*len bytes
 * in all). */
int attr_list(struct snapfs *fs, uint64_t ino, char **names, size_t *len);

/* Set name to value (size bytes). flags: XATTR_CREATE / XATTR_REPLACE. */
int attr_set(struct snapfs *fs, const struct cred *cred, uint64_t ino, const char *name,
	     const char *value, size_t size, int flags);

/* Remove name (user.description, user.meta.KEY). */
int attr_remove(struct snapfs *fs, const struct cred *cred, uint64_t ino, const char *name);

/* True when key is a valid metadata key: [A-Za-z0-9-_:. ]{1,255}. */
bool attr_meta_key_is_valid(const char *key);

#endif
