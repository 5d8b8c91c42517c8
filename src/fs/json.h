/* json.h - every object in the OpenStack API's JSON shape (info.json,
 * user.json).
 *
 *   volume      {"volume": {"id", "name", "size", "status", ...}}
 *   snapshot    {"snapshot": {"id", "name", "volume_id", "status", ...}}
 *   tenant      {"tenant": {"id", "name", "description", ...}}
 *
 * Thread-safe; txn is a read (or write) transaction used to look up the
 * objects a record refers to (its tenant, its volume).
 */
#ifndef SNAPFS_JSON_H
#define SNAPFS_JSON_H

#include <jansson.h>
#include <stddef.h>

#include "catalog.h"

/* The API object of obj, a new reference, or NULL when out of memory. */
json_t *api_json_build(struct catalog_txn *txn, const struct object *obj);

/* The same as indented text with a final newline, malloc'd; *len is its
 * length. Returns 0 or -ENOMEM. */
int api_json_text(struct catalog_txn *txn, const struct object *obj, char **text, size_t *len);

/* changes.json/<older>: the whole of chain c's virtual space in the shape
 * of qemu-img map --output=json, one entry per line in an array:
 *   {"start", "length", "depth", "present": true, "zero", "data"} for the
 *   n ranges r[] that changed (depth: the layer of c they come from, 0
 *   the newer snapshot's top file; zero: reads as zeros, data: reads from
 *   a data cluster), and {"start", "length", "present": false, "zero":
 *   false, "data": false} between them. Adjacent entries alike are merged.
 * malloc'd text in *text, *len bytes and a NUL. Returns 0, -ENOMEM.
 * Thread-safe. */
struct chain;
struct chain_range;
int changes_json_text(const struct chain *c, const struct chain_range *r, size_t n, char **text,
		      size_t *len);

/* Seconds since the epoch in the API's created_at form into out (32 bytes). */
void api_time(int64_t usec, char *out, size_t len);

#endif
