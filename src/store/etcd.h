/* etcd.h - a small client of etcd's v3 JSON gateway (etcd 3.4 and later).
 *
 * etcd serves its v3 API as JSON over plain HTTP on the client port
 * (POST /v3/kv/range, /v3/kv/txn, /v3/lease/..., /v3/watch): keys and values
 * are base64 in the JSON, 64-bit numbers are strings. This module speaks
 * that with libcurl and jansson, tries the endpoints in turn, and turns
 * transport and server errors into -EIO with a log line naming the
 * endpoint. It knows nothing of snapfs's key layout (catalog_etcd.c).
 *
 * Threading: a struct etcd is shared by all threads; each call opens its
 * own connection. etcd_watch() blocks its caller for the stream's life.
 */
#ifndef SNAPFS_ETCD_H
#define SNAPFS_ETCD_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct etcd;

/* Parse endpoints ("host:port" joined by '+'; "http://" may precede
 * each). Returns 0 and *out, or -EINVAL with a log line. Not thread-safe
 * (call before threads start). */
int etcd_new(struct etcd **out, const char *endpoints);

void etcd_free(struct etcd *e);

/* POST body (not consumed) to path ("/v3/kv/txn", ...) on the first
 * endpoint that answers, starting with the last one that did, within
 * timeout_ms for each. Returns 0 and the decoded reply in *reply (a new
 * reference), or -EIO (no endpoint answered, or the server refused; logged
 * once per call with the endpoint and etcd's message). */
int etcd_post(struct etcd *e, const char *path, json_t *body, long timeout_ms, json_t **reply);

/* Open a watch with the JSON create_request (not consumed) and call
 * on_result(result, arg) for each streamed message (the value of its
 * "result" member) until on_result returns non-zero (returned), *stop
 * becomes true (0) or the stream breaks (-EIO). Tries one endpoint per
 * call, the next one after a failure. */
int etcd_watch(struct etcd *e, json_t *create_request, int (*on_result)(json_t *result, void *arg),
	       void *arg, const volatile bool *stop);

/* The endpoint calls go to now, for log lines. */
const char *etcd_endpoint(struct etcd *e);

/* Base64 of len bytes as a new JSON string. */
json_t *etcd_b64(const void *data, size_t len);

/* Decode the base64 JSON string j into a malloc'd buffer (NUL-terminated,
 * *len bytes before the NUL). NULL for a missing or bad value. */
unsigned char *etcd_unb64(json_t *j, size_t *len);

/* An int64 member of o that the gateway sends as a string (or a number);
 * 0 when absent. */
int64_t etcd_int(json_t *o, const char *key);

/* The end of the range of all keys that start with prefix (etcd's
 * "prefix + 1"), as a new base64 JSON string. */
json_t *etcd_prefix_end(const void *prefix, size_t len);

#endif
