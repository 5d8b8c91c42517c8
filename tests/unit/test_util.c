/* test_util.c - unit tests of src/base/util.c: ids, times, sizes, names;
 * and of qemu_img.c's reading of qemu-img -p progress. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "qemu_img.h"
#include "util.h"

TestSuite(uuid, .fini = test_leak_check);
TestSuite(size, .fini = test_leak_check);
TestSuite(parse_u64, .fini = test_leak_check);
TestSuite(hash, .fini = test_leak_check);
TestSuite(time, .fini = test_leak_check);
TestSuite(utf8, .fini = test_leak_check);
TestSuite(name, .fini = test_leak_check);
TestSuite(qemu_img, .fini = test_leak_check);

/* uuid_generate_str / uuid_is_valid */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

Test(uuid, generate_format)
{
	for (int i = 0; i < 200; i++) {
		char id[UUID_STR_LEN];

		memset(id, 'x', sizeof(id));
		cr_assert_eq(uuid_generate_str(id), 0);
		cr_assert_eq(strlen(id), 36, "'%s' is not 36 characters", id);
		for (int j = 0; j < 36; j++) {
			char c = id[j];

			if (j == 8 || j == 13 || j == 18 || j == 23)
				cr_assert_eq(c, '-', "'%s': no dash at %d", id, j);
			else
				cr_assert((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'),
					  "'%s': '%c' at %d is not a lower-case hex digit", id, c,
					  j);
		}
		cr_assert_eq(id[14], '4', "'%s': version nibble is not 4", id);
		cr_assert(strchr("89ab", id[19]) != NULL, "'%s': variant nibble %c is not RFC 4122",
			  id, id[19]);
		cr_assert(uuid_is_valid(id), "'%s' generated but not valid", id);
	}
}

Test(uuid, generate_unique)
{
	enum { N = 4000 };
	char *ids[N];

	for (int i = 0; i < N; i++) {
		ids[i] = malloc(UUID_STR_LEN);
		cr_assert_not_null(ids[i]);
		cr_assert_eq(uuid_generate_str(ids[i]), 0);
	}
	qsort(ids, N, sizeof(ids[0]), cmp_str);
	for (int i = 1; i < N; i++)
		cr_assert_str_neq(ids[i - 1], ids[i], "duplicate uuid %s", ids[i]);
	for (int i = 0; i < N; i++)
		free(ids[i]);
}

Test(uuid, is_valid_good)
{
	cr_assert(uuid_is_valid("00000000-0000-0000-0000-000000000000"));
	cr_assert(uuid_is_valid("0123abcd-4567-89ef-abcd-ef0123456789"));
	cr_assert(uuid_is_valid("c9a2b3e4-1f2d-4e5a-9b8c-7d6e5f4a3b2c"));
}

Test(uuid, is_valid_bad)
{
	static const char *const bad[] = {
		"",
		"C9A2B3E4-1F2D-4E5A-9B8C-7D6E5F4A3B2C", /* upper case */
		"c9a2b3e4-1f2d-4e5a-9b8c-7d6e5f4a3b2C", /* one upper-case digit */
		"c9a2b3e4-1f2d-4e5a-9b8c-7d6e5f4a3b2", /* short */
		"c9a2b3e4-1f2d-4e5a-9b8c-7d6e5f4a3b2c0", /* long */
		"c9a2b3e4-1f2d-4e5a-9b8c-7d6e5f4a3b2c ", /* trailing space */
		" c9a2b3e4-1f2d-4e5a-9b8c-7d6e5f4a3b2c", /* leading space */
		"c9a2b3e41f2d4e5a9b8c7d6e5f4a3b2c", /* no dashes */
		"c9a2b3e4-1f2d-4e5a-9b8c7d6e-5f4a3b2c", /* dash misplaced */
		"c9a2b3e4_1f2d_4e5a_9b8c_7d6e5f4a3b2c", /* not dashes */
		"g9a2b3e4-1f2d-4e5a-9b8c-7d6e5f4a3b2c", /* not hex */
		"{c9a2b3e4-1f2d-4e5a-9b8c-7d6e5f4a3b2c}",
		"c9a2b3e4-1f2d-4e5a-9b8c-7d6e5f4a3b/c",
		"------------------------------------",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_not(uuid_is_valid(bad[i]), "'%s' accepted", bad[i]);
}

/* size_parse_bytes */

Test(size, bare_number_is_gib)
{
	uint64_t b = 12345;

	cr_assert_eq(size_parse_bytes("1", &b), 0);
	cr_assert_eq(b, GIB);
	cr_assert_eq(size_parse_bytes("20", &b), 0);
	cr_assert_eq(b, 20 * GIB);
	cr_assert_eq(size_parse_bytes("0", &b), 0);
	cr_assert_eq(b, 0);
}

Test(size, suffixes)
{
	static const struct {
		const char *s;
		uint64_t bytes;
	} ok[] = {
		{"1K", 1024ULL},
		{"1KiB", 1024ULL},
		{"1KB", 1024ULL},
		{"3M", 3 * 1024ULL * 1024},
		{"3MiB", 3 * 1024ULL * 1024},
		{"3MB", 3 * 1024ULL * 1024},
		{"2G", 2 * GIB},
		{"2GiB", 2 * GIB},
		{"2GB", 2 * GIB},
		{"5T", 5 * 1024 * GIB},
		{"5TiB", 5 * 1024 * GIB},
		{"5TB", 5 * 1024 * GIB},
		{"1536M", 1536 * 1024ULL * 1024},
		{"0K", 0},
		{"17179869183G", 17179869183ULL * GIB}, /* the largest whole GiB that fits */
		{"16777215T", 16777215ULL * 1024 * GIB},
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		uint64_t b = 1;
		int rc = size_parse_bytes(ok[i].s, &b);

		cr_assert_eq(rc, 0, "'%s': %d", ok[i].s, rc);
		cr_assert_eq(b, ok[i].bytes, "'%s' gave %llu, not %llu", ok[i].s,
			     (unsigned long long)b, (unsigned long long)ok[i].bytes);
	}
}

Test(size, bad)
{
	static const char *const bad[] = {
		"",
		"G",
		"GiB",
		"-1",
		"+1",
		" 1",
		"1 ",
		"1 G",
		"1X",
		"1Gi",
		"1GiBB",
		"1GiB ",
		"1iB",
		"1.5",
		"1.5G",
		"0x10",
		"1e3",
		"17179869184", /* 2^34 GiB = 2^64 bytes: overflow */
		"17179869184G", /* likewise */
		"16777216T", /* 2^24 TiB = 2^64 bytes */
		"18446744073709551615", /* fits in u64, not as GiB */
		"18446744073709551616", /* does not fit at all */
		"000000000000000000000000000000000001", /* 36 digits */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t b = 777;

		cr_assert_eq(size_parse_bytes(bad[i], &b), -EINVAL, "'%s' accepted", bad[i]);
		cr_assert_eq(b, 777, "'%s': *bytes changed on failure", bad[i]);
	}
}

/* parse_u64 */

Test(parse_u64, good)
{
	uint64_t v = 1;

	cr_assert_eq(parse_u64("0", &v), 0);
	cr_assert_eq(v, 0);
	cr_assert_eq(parse_u64("42", &v), 0);
	cr_assert_eq(v, 42);
	cr_assert_eq(parse_u64("4294967296", &v), 0);
	cr_assert_eq(v, 4294967296ULL);
	cr_assert_eq(parse_u64("18446744073709551615", &v), 0);
	cr_assert_eq(v, UINT64_MAX);
	cr_assert_eq(parse_u64("18446744073709551609", &v), 0);
	cr_assert_eq(v, UINT64_MAX - 6);
}

Test(parse_u64, bad)
{
	static const char *const bad[] = {
		"",
		"-1",
		"+1",
		" 1",
		"1 ",
		"1a",
		"a1",
		"0x1",
		"1.0",
		"1,000",
		"18446744073709551616", /* UINT64_MAX + 1 */
		"18446744073709551620",
		"99999999999999999999",
		"184467440737095516150",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t v = 99;

		cr_assert_eq(parse_u64(bad[i], &v), -EINVAL, "'%s' accepted", bad[i]);
		cr_assert_eq(v, 99, "'%s': *out changed on failure", bad[i]);
	}
	cr_assert_eq(parse_u64(NULL, &(uint64_t){0}), -EINVAL);
}

/* hash_fnv1a64: the published FNV-1a 64-bit test vectors. */

Test(hash, fnv1a64_vectors)
{
	cr_assert_eq(hash_fnv1a64("", 0), 0xcbf29ce484222325ULL);
	cr_assert_eq(hash_fnv1a64("a", 1), 0xaf63dc4c8601ec8cULL);
	cr_assert_eq(hash_fnv1a64("foobar", 6), 0x85944171f73967e8ULL);
	/* len, not the NUL, bounds the input */
	cr_assert_eq(hash_fnv1a64("abc", 1), 0xaf63dc4c8601ec8cULL);
	cr_assert_neq(hash_fnv1a64("/srv/a", 6), hash_fnv1a64("/srv/b", 6));
}

/* time_format_iso8601 / time_now_usec */

Test(time, iso8601_fixed)
{
	char out[32];

	time_format_iso8601(1795362092000000LL, out, sizeof(out));
	cr_assert_str_eq(out, "2026-11-22T15:41:32.000000");
	time_format_iso8601(1795362092123456LL, out, sizeof(out));
	cr_assert_str_eq(out, "2026-11-22T15:41:32.123456");
	time_format_iso8601(0, out, sizeof(out));
	cr_assert_str_eq(out, "1970-01-01T00:00:00.000000");
	time_format_iso8601(951782400000001LL, out, sizeof(out)); /* leap day 2000 */
	cr_assert_str_eq(out, "2000-02-29T00:00:00.000001");
	time_format_iso8601(253402300799999999LL, out, sizeof(out));
	cr_assert_str_eq(out, "9999-12-31T23:59:59.999999");
}

/* Times before the epoch are still ISO 8601: the microseconds are never
 * negative. */
Test(time, iso8601_before_epoch)
{
	char out[32];

	time_format_iso8601(-1, out, sizeof(out));
	cr_assert_str_eq(out, "1969-12-31T23:59:59.999999");
	time_format_iso8601(-1500000, out, sizeof(out));
	cr_assert_str_eq(out, "1969-12-31T23:59:58.500000");
}

Test(time, iso8601_truncates_to_len)
{
	char out[11];

	memset(out, 'x', sizeof(out));
	time_format_iso8601(1795362092000000LL, out, sizeof(out));
	cr_assert_str_eq(out, "2026-11-22");
}

Test(time, now_usec)
{
	int64_t before = (int64_t)time(NULL);
	int64_t now = time_now_usec();
	int64_t after = (int64_t)time(NULL);

	cr_assert_geq(now / 1000000, before);
	cr_assert_leq(now / 1000000, after);
}

/* utf8_is_valid */

Test(utf8, valid)
{
	static const char *const good[] = {
		"",
		"plain ascii",
		"caf\xc3\xa9", /* U+00E9 */
		"\xc2\x80", /* U+0080, smallest 2-byte */
		"\xdf\xbf", /* U+07FF */
		"\xe0\xa0\x80", /* U+0800, smallest 3-byte */
		"\xe2\x82\xac", /* U+20AC euro */
		"\xed\x9f\xbf", /* U+D7FF, just below the surrogates */
		"\xee\x80\x80", /* U+E000, just above */
		"\xef\xbf\xbf", /* U+FFFF */
		"\xf0\x90\x80\x80", /* U+10000, smallest 4-byte */
		"\xf0\x9f\x98\x80", /* U+1F600 */
		"\xf4\x8f\xbf\xbf", /* U+10FFFF, the largest */
		"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
	};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		cr_assert(utf8_is_valid(good[i], strlen(good[i])), "case %zu rejected", i);
	/* an embedded NUL is a valid code point; len bounds the input */
	cr_assert(utf8_is_valid("a\0b", 3));
	cr_assert(utf8_is_valid("\xe2\x82\xac\xff", 3));
}

Test(utf8, invalid)
{
	static const char *const bad[] = {
		"\x80", /* lone continuation */
		"a\xbf", /* lone continuation after ascii */
		"\xc0\x80", /* overlong NUL */
		"\xc1\xbf", /* overlong U+007F */
		"\xe0\x80\x80", /* overlong 3-byte */
		"\xe0\x9f\xbf", /* overlong U+07FF */
		"\xf0\x80\x80\x80", /* overlong 4-byte */
		"\xf0\x8f\xbf\xbf", /* overlong U+FFFF */
		"\xed\xa0\x80", /* U+D800, a surrogate */
		"\xed\xbf\xbf", /* U+DFFF */
		"\xf4\x90\x80\x80", /* U+110000 */
		"\xf5\x80\x80\x80",
		"\xf8\x88\x80\x80\x80", /* 5-byte form */
		"\xfe",
		"\xff",
		"\xc3", /* truncated 2-byte */
		"\xe2\x82", /* truncated 3-byte */
		"\xf0\x9f\x98", /* truncated 4-byte */
		"\xe2\x28\xa1", /* bad continuation */
		"\xc3\xc3\xa9",
		"ok\xe2\x82", /* truncated at the end */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_not(utf8_is_valid(bad[i], strlen(bad[i])), "case %zu accepted", i);
	/* truncated by len though the bytes go on */
	cr_assert_not(utf8_is_valid("\xe2\x82\xac", 2));
}

/* object_name_is_valid */

Test(name, valid)
{
	char n255[256];

	memset(n255, 'v', 255);
	n255[255] = '\0';
	cr_assert(object_name_is_valid("a"));
	cr_assert(object_name_is_valid("vol-1"));
	cr_assert(object_name_is_valid("..."));
	cr_assert(object_name_is_valid(".hidden"));
	cr_assert(object_name_is_valid("a b"));
	cr_assert(object_name_is_valid("vol\xc3\xa9-\xe6\x97\xa5"));
	cr_assert(object_name_is_valid(n255));
}

Test(name, invalid)
{
	char n256[257];
	static const char *const bad[] = {
		"",   ".",     "..",   "/",	"a/b",	"a/",	   "/a",       "a\nb",
		"\t", "a\x01", "\x1f", "a\x7f", "\xff", "bad\xc3", "\xc0\xae", "\xed\xa0\x80",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_not(object_name_is_valid(bad[i]), "case %zu accepted", i);
	memset(n256, 'v', 256);
	n256[256] = '\0';
	cr_assert_not(object_name_is_valid(n256), "a 256-byte name accepted");
	/* 255 bytes, but the last character is cut: invalid UTF-8 */
	memset(n256, 'v', 253);
	memcpy(n256 + 253, "\xe2\x82", 3);
	cr_assert_eq(strlen(n256), 255);
	cr_assert_not(object_name_is_valid(n256));
}

Test(name, check_errno)
{
	char n[300];

	memset(n, 'v', sizeof(n));
	n[255] = '\0';
	cr_assert_eq(object_name_check(n), 0, "255 bytes");
	n[255] = 'v';
	n[256] = '\0';
	cr_assert_eq(object_name_check(n), -ENAMETOOLONG, "256 bytes");
	n[299] = '\0';
	memset(n, 'v', 299);
	cr_assert_eq(object_name_check(n), -ENAMETOOLONG, "299 bytes");
	cr_assert_eq(object_name_check("ok"), 0);
	cr_assert_eq(object_name_check(""), -EINVAL);
	cr_assert_eq(object_name_check("."), -EINVAL);
	cr_assert_eq(object_name_check(".."), -EINVAL);
	cr_assert_eq(object_name_check("a/b"), -EINVAL);
	cr_assert_eq(object_name_check("a\tb"), -EINVAL);
	cr_assert_eq(object_name_check("\xff"), -EINVAL);
}

/* mkdir_parents */

static char tmp_root[PATH_MAX];

static void tmp_setup(void)
{
	tmpdir_make(tmp_root, sizeof(tmp_root), "util");
}

static void tmp_teardown(void)
{
	chmod(tmp_root, 0700); /* in case a test failed with it read-only */
	rm_rf(tmp_root);
	test_leak_check();
}

TestSuite(mkdir_parents, .init = tmp_setup, .fini = tmp_teardown);

static mode_t dir_mode(const char *path)
{
	struct stat st;

	cr_assert_eq(stat(path, &st), 0, "stat %s: %s", path, strerror(errno));
	cr_assert(S_ISDIR(st.st_mode), "%s is not a directory", path);
	return st.st_mode & 07777;
}

Test(mkdir_parents, creates_every_component)
{
	char path[PATH_MAX + 64], p[PATH_MAX + 64];

	umask(022);
	snprintf(path, sizeof(path), "%s/a/b/c", tmp_root);
	cr_assert_eq(mkdir_parents(path, 0750), 0);
	snprintf(p, sizeof(p), "%s/a", tmp_root);
	cr_assert_eq(dir_mode(p), 0750);
	snprintf(p, sizeof(p), "%s/a/b", tmp_root);
	cr_assert_eq(dir_mode(p), 0750);
	cr_assert_eq(dir_mode(path), 0750);
	/* the existing parent keeps its mode */
	cr_assert_eq(dir_mode(tmp_root), 0700);
}

Test(mkdir_parents, existing_is_fine)
{
	char path[PATH_MAX + 64];

	umask(022);
	snprintf(path, sizeof(path), "%s/x/y", tmp_root);
	cr_assert_eq(mkdir_parents(path, 0700), 0);
	cr_assert_eq(mkdir_parents(path, 0755), 0);
	cr_assert_eq(dir_mode(path), 0700, "an existing directory changed mode");
	cr_assert_eq(mkdir_parents(tmp_root, 0700), 0);
	snprintf(path, sizeof(path), "%s/x/y/", tmp_root);
	cr_assert_eq(mkdir_parents(path, 0700), 0, "a trailing slash");
}

Test(mkdir_parents, relative_path)
{
	char cwd[PATH_MAX];

	cr_assert_not_null(getcwd(cwd, sizeof(cwd)));
	cr_assert_eq(chdir(tmp_root), 0);
	cr_assert_eq(mkdir_parents("r1/r2", 0700), 0);
	cr_assert_eq(dir_mode("r1/r2"), 0700);
	cr_assert_eq(chdir(cwd), 0);
}

Test(mkdir_parents, file_in_the_way)
{
	char file[PATH_MAX + 64], path[PATH_MAX + 64];
	int fd;

	snprintf(file, sizeof(file), "%s/f", tmp_root);
	fd = open(file, O_CREAT | O_WRONLY, 0600);
	cr_assert_geq(fd, 0);
	close(fd);
	snprintf(path, sizeof(path), "%s/f/sub", tmp_root);
	cr_assert_eq(mkdir_parents(path, 0700), -ENOTDIR);
}

/* As "mkdir -p": a last component that exists but is not a directory is an
 * error, not success. */
Test(mkdir_parents, file_as_last_component)
{
	char file[PATH_MAX + 64];
	int fd, rc;

	snprintf(file, sizeof(file), "%s/f", tmp_root);
	fd = open(file, O_CREAT | O_WRONLY, 0600);
	cr_assert_geq(fd, 0);
	close(fd);
	rc = mkdir_parents(file, 0700);
	cr_assert(rc == -EEXIST || rc == -ENOTDIR,
		  "mkdir_parents() of an existing regular file: %d, not -EEXIST or -ENOTDIR", rc);
}

Test(mkdir_parents, errors)
{
	char path[PATH_MAX + 64];

	cr_assert_lt(mkdir_parents("", 0700), 0);
	memset(path, 'a', PATH_MAX + 10);
	path[0] = '/';
	path[PATH_MAX + 10] = '\0';
	cr_assert_eq(mkdir_parents(path, 0700), -ENAMETOOLONG);
	if (geteuid() != 0) {
		cr_assert_eq(chmod(tmp_root, 0500), 0);
		snprintf(path, sizeof(path), "%s/denied/x", tmp_root);
		cr_assert_eq(mkdir_parents(path, 0700), -EACCES);
		cr_assert_eq(chmod(tmp_root, 0700), 0);
	}
}

/* qemu_img_run_progress(): what a fake qemu-img (cat of a file) prints */

struct pcts {
	int n, v[8];
};

static void record_pct(int pct, void *arg)
{
	struct pcts *p = arg;

	if (p->n < 8)
		p->v[p->n++] = pct;
}

/* Run "cat FILE" as qemu-img, FILE holding out (len bytes); its progress. */
static struct pcts progress_of(const char *out, size_t len)
{
	char dir[] = "/tmp/test_qemu_img.XXXXXX", script[64], file[64];
	const char *args[] = {file, NULL};
	struct pcts p = {0};
	FILE *f;
	int dfd;

	cr_assert(mkdtemp(dir));
	snprintf(script, sizeof(script), "%s/qemu-img", dir);
	snprintf(file, sizeof(file), "%s/out", dir);
	f = fopen(script, "w");
	cr_assert(f);
	fputs("#!/bin/sh\nexec cat \"$1\"\n", f);
	fclose(f);
	cr_assert_eq(chmod(script, 0755), 0);
	f = fopen(file, "w");
	cr_assert(f);
	cr_assert_eq(fwrite(out, 1, len, f), len);
	fclose(f);
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	cr_assert(dfd >= 0);
	cr_assert_eq(qemu_img_run_progress(script, dfd, args, record_pct, &p), 0);
	close(dfd);
	unlink(script);
	unlink(file);
	rmdir(dir);
	return p;
}

Test(qemu_img, progress_lines)
{
	static const char out[] = "    (0.00/100%)\r    (1.00/100%)\r    (99.50/100%)\r"
				  "(garbage/100%)\r(100.00/100%)\n";
	struct pcts p = progress_of(out, sizeof(out) - 1);

	cr_assert_eq(p.n, 4);
	cr_expect_eq(p.v[0], 0);
	cr_expect_eq(p.v[1], 1);
	cr_expect_eq(p.v[2], 99);
	cr_expect_eq(p.v[3], 100);
}

/* A read that ends in a progress line: the pipe's 4 KiB are not
 * NUL-terminated, and the number was scanned with sscanf() in place, on
 * past the read (into the stack: valgrind's memcheck found it under
 * tests/fs/snapshots.sh). */
Test(qemu_img, progress_at_the_end_of_a_read)
{
	static char out[4096];
	static const char tail[] = "(42.00/100%)";

	memset(out, 'x', sizeof(out));
	memcpy(out + sizeof(out) - (sizeof(tail) - 1), tail, sizeof(tail) - 1);
	struct pcts p = progress_of(out, sizeof(out));

	cr_assert_eq(p.n, 1);
	cr_expect_eq(p.v[0], 42);
}
