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
 *
 * Every file snapfs creates on the share is created here (share_file_create(),
 * share_raw_create(), share_info_write()) and gets the share's file policy
 * (docs/snapfs.md section 12): the owner, group and mode Cinder's NFS driver would give
 * it, so that Cinder's service user and the hypervisor's user can open it.
 * The policy is set on the new descriptor before anything is written into
 * the file: its name appears empty, with mode 0600 and snapfs's own owner,
 * for the two system calls (fchown, fchmod) that follow the create. (A file
 * made under a temporary name and linked into place would not show even
 * that, but a crash would leave the temporary file where no recovery can
 * tell it from another host's create in progress; NFS has no O_TMPFILE.)
 * The mode is set with fchmod, so the process umask does not reduce it.
 * qemu-img, which snapfs runs on files it created (create, convert -n,
 * commit, rebase -u, resize), writes them in place and keeps their owner
 * and mode.
 */
#ifndef SNAPFS_SHARE_H
#define SNAPFS_SHARE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

/* Owner, group and mode of the files snapfs creates on the share. */
struct share_file_policy {
	uid_t uid;   /* SHARE_ID_OF_TOP: the owner of the share's top directory */
	gid_t gid;   /* SHARE_ID_OF_TOP: the group of the share's top directory */
	mode_t mode; /* permission bits (at most 0777) */
};

/* In a share_file_policy given to share_open(): take the id from the share's
 * top directory. */
#define SHARE_ID_OF_TOP ((unsigned)-1)

/* The policy of docs/snapfs.md section 12 with no option given. */
#define SHARE_FILE_MODE_DEFAULT 0660

struct share {
	int dirfd;
	char *path;
	struct share_file_policy policy; /* resolved: no SHARE_ID_OF_TOP left */
	atomic_bool chown_warned;        /* the one "cannot chown" warning was logged */
};

/* Open the share directory at path (its real path) with the file policy
 * policy (NULL: the default, the top directory's owner and group and mode
 * 0660); ids given as SHARE_ID_OF_TOP are resolved from the directory now.
 * 0 and *out, or -errno with a log line. */
int share_open(struct share **out, const char *path, const struct share_file_policy *policy);

/* Close and free what share_open() gave; share may be NULL. */
void share_close(struct share *share);

/* Write "volume-<volume_id>" into out (len >= 48). */
void share_volume_base_name(const char *volume_id, char *out, size_t len);

/* Writes the content of a new file into fd (open for reading and writing,
 * empty); returns 0 or -errno (logged). */
typedef int (*share_fill_fn)(int fd, void *arg);

/* Create name with O_EXCL, give it the share's file policy, let fill (may
 * be NULL) write it, fsync it and the directory. -EEXIST (not logged) when
 * name exists; on any other failure nothing is left behind. */
int share_file_create(struct share *share, const char *name, share_fill_fn fill, void *arg);

/* share_file_create() of an empty file of the given size (sparse). */
int share_raw_create(struct share *share, const char *name, uint64_t size);

/* Grow the raw file name to size bytes (never shrinks: -EINVAL) and fsync. */
int share_raw_extend(struct share *share, const char *name, uint64_t size);

/* Open name read-write and fsync it (after qemu-img changed it). */
int share_file_sync(struct share *share, const char *name);

/* Remove name and fsync the directory; a missing file is not an error. */
int share_file_remove(struct share *share, const char *name);

/* fsync the share directory. */
int share_dir_sync(struct share *share);

/* -EBUSY (a refusal: log_refuse()) when a process such as QEMU holds a lock on
 * name that says it writes the image or refuses to share writing (QEMU's
 * OFD locks: byte 101 "write", byte 201 "unshare write"); 0 otherwise,
 * also when name does not exist. */
int share_file_check_unused(struct share *share, const char *name);

/* Replace "volume-<volume_id>.info" with text (len bytes, a JSON object):
 * a temporary file, fsync, rename, fsync of the directory. The temporary
 * file gets, before it is written, the owner, group and mode of the .info it
 * replaces (whoever changed them by hand), or the share's file policy when
 * there is none. */
int share_info_write(struct share *share, const char *volume_id, const char *text, size_t len);

/* Read "volume-<volume_id>.info": a new reference in *info, or -ENOENT,
 * -EIO when it is not a JSON object. */
int share_info_read(struct share *share, const char *volume_id, json_t **info);

#endif
