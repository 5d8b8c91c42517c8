/* util.h - small helpers shared by the core: ids, times, sizes, names.
 * All functions are thread-safe and keep no state.
 */
#ifndef SNAPFS_UTIL_H
#define SNAPFS_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#define UUID_STR_LEN 37 /* 36 characters and the NUL */
#define GIB ((uint64_t)1 << 30)

/* A size as the API shows it: whole GiB, rounded up (an imported image
 * need not be a whole number of GiB). */
#define SIZE_GIB(bytes) (((uint64_t)(bytes) + GIB - 1) / GIB)

/* Fill out with a new random (version 4) UUID in lower-case text form.
 * Returns 0, or -errno when the kernel gives no random bytes. */
int uuid_generate_str(char out[UUID_STR_LEN]);

/* True when s is a UUID in canonical lower-case text form. */
bool uuid_is_valid(const char *s);

/* Format t as ISO 8601 UTC with microseconds, as the OpenStack API does:
 * "2026-11-22T15:41:32.000000". out must hold 32 bytes. */
void time_format_iso8601(int64_t usec_since_epoch, char *out, size_t len);

/* Microseconds since the epoch, from CLOCK_REALTIME. */
int64_t time_now_usec(void);

/* Parse a size: digits with an optional suffix K, M, G, T (powers of 1024,
 * an optional "iB" or "B" after it); no suffix means GiB, as the API counts.
 * Returns 0 and sets *bytes, or -EINVAL. */
int size_parse_bytes(const char *s, uint64_t *bytes);

/* Parse a strict decimal unsigned integer. Returns 0 or -EINVAL. */
int parse_u64(const char *s, uint64_t *out);

/* 64-bit FNV-1a of len bytes; used to name the default catalogue directory. */
uint64_t hash_fnv1a64(const void *data, size_t len);

/* True when name is a usable directory entry name for an object: 1..255
 * bytes, no '/', not "." or "..", no control characters, valid UTF-8. */
bool object_name_is_valid(const char *name);

/* The same as an errno: 0, -ENAMETOOLONG (over 255 bytes) or -EINVAL. */
int object_name_check(const char *name);

/* True when s is valid UTF-8 (the JSON we serve must be). */
bool utf8_is_valid(const char *s, size_t len);

/* mkdir -p with mode for each created component. Returns 0 or -errno. */
int mkdir_parents(const char *path, mode_t mode);

#endif
