/* fixture.h - shared helpers of the unit tests: temporary directories and a
 * whole struct snapfs (share directory + catalogue) without a mount.
 *
 * Criterion runs every test in a process of its own, so the fixture is one
 * static struct per test process. Log lines are silenced unless the
 * environment variable SNAPFS_TEST_LOG is set.
 */
#ifndef SNAPFS_TEST_FIXTURE_H
#define SNAPFS_TEST_FIXTURE_H

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog.h"
#include "log.h"
#include "options.h"
#include "mount.h"

#if defined(__SANITIZE_ADDRESS__)
#define FX_LEAK_CHECK 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FX_LEAK_CHECK 1
#endif
#endif
#ifdef FX_LEAK_CHECK
#include <sanitizer/lsan_interface.h>
#endif

/* Under AddressSanitizer, fail the test process when the test leaked:
 * LeakSanitizer's report at exit alone does not fail a Criterion test, and
 * a failed assertion in .fini is not counted either; abort() makes the test
 * program exit non-zero. Every suite's .fini ends with this. */
static inline void test_leak_check(void)
{
#ifdef FX_LEAK_CHECK
	if (__lsan_do_recoverable_leak_check()) {
		fprintf(stderr, "memory leaked: see the LeakSanitizer report above\n");
		abort();
	}
#endif
}

/* Silence the core's log lines unless SNAPFS_TEST_LOG is set. */
static inline void test_log_setup(void)
{
	log_set_quiet(getenv("SNAPFS_TEST_LOG") == NULL);
}

/* Make a new empty directory under $TMPDIR (or /tmp) into buf. */
static inline void tmpdir_make(char *buf, size_t len, const char *tag)
{
	const char *tmp = getenv("TMPDIR");
	int n = snprintf(buf, len, "%s/snapfs-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", tag);

	cr_assert(n > 0 && (size_t)n < len, "temporary path too long");
	cr_assert_not_null(mkdtemp(buf), "mkdtemp %s: %s", buf, strerror(errno));
}

static inline int rm_rf_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP || flag == FTW_D)
		return rmdir(path) < 0 ? -1 : 0;
	return unlink(path) < 0 ? -1 : 0;
}

/* rm -rf path; a missing path is fine. */
static inline void rm_rf(const char *path)
{
	if (access(path, F_OK) < 0)
		return;
	cr_expect_eq(nftw(path, rm_rf_one, 16, FTW_DEPTH | FTW_PHYS), 0, "rm -rf %s: %s", path,
		     strerror(errno));
}

/* Credentials: root, a plain user and a member of the fixture's admin group. */
#define FX_ADMIN_GID 4242
#define FX_USER_UID 1000
#define FX_USER_GID 1000
#define FX_OTHER_UID 1001

/* Not every test file uses every helper. */
#define FX_UNUSED __attribute__((unused))

FX_UNUSED static const struct cred cred_root = {0, 0, 0, {0}};
FX_UNUSED static const struct cred cred_user = {FX_USER_UID, FX_USER_GID, 1, {FX_USER_GID}};
FX_UNUSED static const struct cred cred_other = {FX_OTHER_UID, FX_USER_GID, 1, {FX_USER_GID}};
/* Not root, primary group not the admin group: admin through groups[]. */
FX_UNUSED static const struct cred cred_group_admin = {
	FX_USER_UID, FX_USER_GID, 3, {FX_USER_GID, 100, FX_ADMIN_GID}};

struct fixture {
	char root[PATH_MAX - 64]; /* everything below lives here */
	char share[PATH_MAX]; /* root/share */
	char catalog[PATH_MAX]; /* root/catalog (not inside the share) */
	struct snapfs_options opts;
	struct snapfs *fs;
};

FX_UNUSED static struct fixture fx;

/* Replace an option string. */
static inline void fx_opt(char **field, const char *value)
{
	free(*field);
	*field = value ? strdup(value) : NULL;
	cr_assert(!value || *field, "out of memory");
}

/* Open fx.fs on the fixture's share and catalogue with the current options. */
static inline void fx_open(void)
{
	int rc = snapfs_open(&fx.fs, &fx.opts);

	cr_assert_eq(rc, 0, "snapfs_open: %s", strerror(-rc));
}

/* Close fx.fs (as an unmount would). */
static inline void fx_close(void)
{
	snapfs_close(fx.fs);
	fx.fs = NULL;
}

/* A remount: close and open again, which runs crash recovery. */
static inline void fx_reopen(void)
{
	fx_close();
	fx_open();
}

/* Make the directories and options; tweak (may be NULL) changes the option
 * strings before options_finalize(); then open. */
static inline void fx_setup_with(void (*tweak)(struct snapfs_options *o))
{
	char err[256] = "";
	int rc;

	test_log_setup();
	memset(&fx, 0, sizeof(fx));
	tmpdir_make(fx.root, sizeof(fx.root), "unit");
	snprintf(fx.share, sizeof(fx.share), "%s/share", fx.root);
	snprintf(fx.catalog, sizeof(fx.catalog), "%s/catalog", fx.root);
	cr_assert_eq(mkdir(fx.share, 0755), 0, "mkdir %s: %s", fx.share, strerror(errno));
	options_set_defaults(&fx.opts);
	fx_opt(&fx.opts.catalog, fx.catalog);
	fx_opt(&fx.opts.admin_group, "4242"); /* FX_ADMIN_GID, as a number */
	if (tweak)
		tweak(&fx.opts);
	rc = options_finalize(&fx.opts, fx.share, err, sizeof(err));
	cr_assert_eq(rc, 0, "options_finalize: %s (%s)", strerror(-rc), err);
	fx_open();
}

static inline void fx_setup(void)
{
	fx_setup_with(NULL);
}

/* Close everything and remove every file the test made. */
static inline void fx_teardown(void)
{
	if (fx.fs)
		fx_close();
	options_free(&fx.opts);
	if (fx.root[0])
		rm_rf(fx.root);
	memset(&fx, 0, sizeof(fx));
	test_leak_check();
}

/* The catalogue record of ino into o (to be object_clear()ed); fails the
 * test when there is none. */
static inline void fx_get_obj(uint64_t ino, struct object *o)
{
	struct catalog_txn *txn;
	int rc = catalog_txn_begin(fx.fs->cat, false, &txn);

	cr_assert_eq(rc, 0);
	rc = catalog_object_get(txn, ino, o);
	catalog_txn_abort(txn);
	cr_assert_eq(rc, 0, "record %llu: %s", (unsigned long long)ino, strerror(-rc));
}

/* 0 when ino has a record, else catalog_object_get()'s error. */
static inline int fx_obj_rc(uint64_t ino)
{
	struct catalog_txn *txn;
	struct object o;
	int rc = catalog_txn_begin(fx.fs->cat, false, &txn);

	cr_assert_eq(rc, 0);
	rc = catalog_object_get(txn, ino, &o);
	catalog_txn_abort(txn);
	object_clear(&o);
	return rc;
}

/* How many files the share holds. */
static inline int fx_share_count(void)
{
	DIR *d = opendir(fx.share);
	struct dirent *e;
	int n = 0;

	cr_assert_not_null(d);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

/* Path of a file on the share into buf. */
static inline const char *fx_share_path(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", fx.share, name);
	return buf;
}

#endif
