/* share.h - the volume files on the share, in Cinder's NFS driver layout.
 *
 *   volume-<volume uuid>                   base file (raw or qcow2)
 *   volume-<volume uuid>.<snapshot uuid>   qcow2 overlay made by a snapshot
 *   volume-<volume uuid>.info              JSON: active file and snapshots
 *
 * All names are basenames inside the share, opened relative to its
 * directory descriptor with O_NOFOLLOW. New files are created with O_EXCL
 * and fsync'd, and so is the directory after every create, rename and unlink.
 * Functions are thread-safe and return 0 or a negative errno, with a log line
 * naming the file on failure.
 */
#ifndef SNAPFS_SHARE_H
#define SNAPFS_SHARE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct share {
	int dirfd;
	char *path;
};

/* Open the share directory at path (its real path): 0 and *out, or -errno
 * with a log line. */
int share_open(struct share **out, const char *path);

/* Close and free what share_open() gave; share may be NULL. */
void share_close(struct share *share);

/* Write "volume-<volume_id>" into out (len >= 48). */
void share_volume_base_name(const char *volume_id, char *out, size_t len);

/* Create name as an empty file with O_EXCL and the given size (sparse),
 * fsync it and the directory. On failure nothing is left behind. */
int share_raw_create(struct share *share, const char *name, uint64_t size);

/* Grow the raw file name to size bytes (never shrinks: -EINVAL) and fsync. */
int share_raw_extend(struct share *share, const char *name, uint64_t size);

/* Open name read-write and fsync it (after qemu-img changed it). */
int share_file_sync(struct share *share, const char *name);

/* Remove name and fsync the directory; a missing file is not an error. */
int share_file_remove(struct share *share, const char *name);

/* fsync the share directory. */
int share_dir_sync(struct share *share);

/* -EBUSY (with a log line) when a process such as QEMU holds a lock on
 * name that says it writes the image or refuses to share writing (QEMU's
 * OFD locks: byte 101 "write", byte 201 "unshare write"); 0 otherwise,
 * also when name does not exist. */
int share_file_check_unused(struct share *share, const char *name);

/* Replace "volume-<volume_id>.info" with text (len bytes, a JSON object):
 * a temporary file, fsync, rename, fsync of the directory. */
int share_info_write(struct share *share, const char *volume_id, const char *text, size_t len);

/* Read "volume-<volume_id>.info": a new reference in *info, or -ENOENT,
 * -EIO when it is not a JSON object. */
int share_info_read(struct share *share, const char *volume_id, json_t **info);

#endif
