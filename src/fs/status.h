/* status.h - the operator's view: /status.json at the mount's root.
 *
 * One JSON document, made when the file is opened: the operations under
 * way (object, kind, operation, status, owning host, since when), the
 * objects in an error* status, how full the catalogue is (LMDB map;
 * etcd's database and this share's keys), the hosts registered in etcd
 * and the snapshots open for reading. It names every tenant and object,
 * so only admins may read it (tree.c gives it mode 0440, root and
 * admin_group; fsops.c refuses others with EACCES). Read-only; it changes
 * nothing.
 */
#ifndef SNAPFS_STATUS_H
#define SNAPFS_STATUS_H

#include <stddef.h>

#include "snapfs.h"

/* The document as malloc'd text in *data (*len bytes, a final newline),
 * which the caller frees. Returns 0, -ENOMEM or -EIO (the catalogue could
 * not be read; etcd not answering is reported inside the document).
 * Thread-safe: one read transaction, plus a few etcd requests when the
 * catalogue is shared. */
int status_json_text(struct snapfs *fs, char **data, size_t *len);

#endif
