/* qemu_img.h - run qemu-img on files of the share.
 *
 * qemu-img runs with the share as its working directory, so every file is
 * named by its basename and backing names stay relative. Its messages are
 * logged when it fails. Thread-safe (fork + exec; the child only execs).
 */
#ifndef SNAPFS_QEMU_IMG_H
#define SNAPFS_QEMU_IMG_H

#include <stdint.h>

/* Run "qemu_img args..." (args is NULL-terminated, without argv[0]) in the
 * directory dirfd. Returns 0 when it exits 0, -ENOSPC when it failed for
 * want of space, -EIO otherwise (with a log line quoting its error
 * output), or -errno when it cannot be started. */
int qemu_img_run(const char *qemu_img, int dirfd, const char *const *args);

/* Called with the percentage done as qemu-img -p reports it. */
typedef void (*qemu_img_progress_fn)(int percent, void *arg);

/* The same as qemu_img_run(), with -p's progress sent to progress (its
 * messages are then not quoted on failure). */
int qemu_img_run_progress(const char *qemu_img, int dirfd, const char *const *args,
			  qemu_img_progress_fn progress, void *arg);

/* "qemu-img commit -d": merge the qcow2 overlay top into its backing file
 * (named in its header, relative to dirfd), leaving top as it was. */
int qemu_img_commit(const char *qemu_img, int dirfd, const char *top, qemu_img_progress_fn progress,
		    void *arg);

/* "qemu-img convert -n --target-is-zero": copy the content of src (format
 * src_fmt, with its backing chain) into the existing, zero-filled image dst
 * (format dst_fmt, at least as large), leaving dst sparse where src reads
 * as zeros. */
int qemu_img_convert_into(const char *qemu_img, int dirfd, const char *src, const char *src_fmt,
			  const char *dst, const char *dst_fmt, qemu_img_progress_fn progress,
			  void *arg);

/* "qemu-img rebase -u": make the qcow2 image's header name backing (a
 * basename, format backing_fmt) without copying data. */
int qemu_img_rebase_unsafe(const char *qemu_img, int dirfd, const char *image,
			   const char *backing, const char *backing_fmt);

/* Create name as an empty qcow2 image of size bytes. name must not exist. */
int qemu_img_create_qcow2(const char *qemu_img, int dirfd, const char *name, uint64_t size);

/* Grow the qcow2 image name to size bytes. */
int qemu_img_resize_qcow2(const char *qemu_img, int dirfd, const char *name, uint64_t size);

#endif
