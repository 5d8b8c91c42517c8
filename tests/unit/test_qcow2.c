/* test_qcow2.c - unit tests of the qcow2 engine (src/engine/qcow2.c, src/engine/chain.c):
 * a tiny valid image crafted in memory, read back; then a hostile-image
 * suite that breaks it one field at a time and expects -EIO (and no crash
 * under ASan); seeks, extents, threads, probes and the overlay writer.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "chain.h"
#include "log.h"
#include "qcow2.h"

/* 512-byte clusters; 16 KiB with extended L2 (qemu's minimum). */
static uint64_t CS = 512;
#define VSIZE (64 * 1024ULL)
#define NCL 10

static char dir[64];
static int dfd = -1;
static uint8_t *img;
static size_t img_len;
static bool ext_l2;

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, v >> 32);
	put32(p + 4, (uint32_t)v);
}

/* Offsets in the crafted image. */
/* Under ASan, LeakSanitizer reports a 48-byte allocation that Criterion's
 * own runner never frees; it is not ours. */
#define H_BACKING_OFF 8
#define H_BACKING_LEN 16
#define H_CLUSTER_BITS 20
#define H_SIZE 24
#define H_CRYPT 32
#define H_L1_SIZE 36
#define H_L1_OFF 40
#define H_RT_OFF 48
#define H_RT_CLUSTERS 56
#define H_NB_SNAP 60
#define H_SNAP_OFF 64
#define H_INCOMPAT 72
#define H_REFCOUNT_ORDER 96
#define H_HEADER_LEN 100
#define H_COMPRESSION 104
#define L1 (3 * CS)
#define L2 (4 * CS)
#define DATA0 (5 * CS)
#define COMP (6 * CS)
#define DATA3 (7 * CS)

/* The L2 entry slot for guest cluster i (standard or extended). */
static uint8_t *l2e(unsigned i)
{
	return img + L2 + i * (ext_l2 ? 16 : 8);
}

/* Build the valid image: guest cluster 0 data 0xAB, 1 compressed 0xCD,
 * 2 zero, 3 data 0xEF, the rest unallocated. */
static void build(bool ext)
{
	static uint8_t plain[16384], packed[16384];
	z_stream zs;

	ext_l2 = ext;
	CS = ext ? 16384 : 512;
	img_len = NCL * CS;
	free(img);
	img = calloc(1, img_len);
	cr_assert(img);
	put32(img, 0x514649fb);
	put32(img + 4, 3);
	put32(img + H_CLUSTER_BITS, ext ? 14 : 9);
	put64(img + H_SIZE, VSIZE);
	put32(img + H_L1_SIZE, ext ? 1 : 2);
	put64(img + H_L1_OFF, L1);
	put64(img + H_RT_OFF, CS);
	put32(img + H_RT_CLUSTERS, 1);
	put64(img + H_INCOMPAT, ext ? QCOW2_INCOMPAT_EXTL2 : 0);
	put32(img + H_REFCOUNT_ORDER, 4);
	put32(img + H_HEADER_LEN, 112);
	put64(img + CS, 2 * CS);
	for (int i = 0; i < NCL; i++)
		put16(img + 2 * CS + 2 * i, 1);
	put64(img + L1, L2 | (1ULL << 63));

	memset(img + DATA0, 0xab, CS);
	memset(img + DATA3, 0xef, CS);
	memset(plain, 0xcd, CS);
	memset(&zs, 0, sizeof(zs));
	cr_assert(deflateInit2(&zs, 6, Z_DEFLATED, -12, 9, Z_DEFAULT_STRATEGY) == Z_OK);
	zs.next_in = plain;
	zs.avail_in = CS;
	zs.next_out = packed;
	zs.avail_out = CS;
	cr_assert(deflate(&zs, Z_FINISH) == Z_STREAM_END);
	memcpy(img + COMP, packed, CS - zs.avail_out);
	deflateEnd(&zs);

	if (!ext) {
		put64(l2e(0), DATA0 | (1ULL << 63));
		put64(l2e(1), (1ULL << 62) | COMP); /* one sector */
		put64(l2e(2), 1); /* zero */
		put64(l2e(3), DATA3 | (1ULL << 63));
	} else {
		put64(l2e(0), DATA0);
		put64(l2e(0) + 8, 0xffffffffULL); /* all allocated */
		put64(l2e(1), (1ULL << 62) | COMP);
		put64(l2e(2) + 8, 0xffffffffULL << 32); /* all zero */
		put64(l2e(3), DATA3);
		put64(l2e(3) + 8,
		      0x0000ffffULL | (0xff000000ULL << 32)); /* half data, quarter zero */
	}
}

static void write_file(const char *name, const void *buf, size_t len)
{
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	cr_assert(fd >= 0);
	cr_assert(write(fd, buf, len) == (ssize_t)len);
	close(fd);
}

static int open_img(struct chain **c)
{
	struct chain_layer l = {dfd, "img", IMAGE_FORMAT_QCOW2, false};

	write_file("img", img, img_len);
	return chain_open(c, &l, 1, 0);
}

/* Expect the current image to be refused with -EIO. */
static void refused(void)
{
	struct chain *c = NULL;
	int ret = open_img(&c);

	cr_expect_eq(ret, -EIO, "expected -EIO, got %d", ret);
	cr_expect_null(c);
	chain_close(c);
}

/* Expect it to open and read without crashing; returns chain_open's result. */
static int opens_and_reads(void)
{
	struct chain *c = NULL;
	static uint8_t buf[VSIZE];
	int ret = open_img(&c);

	if (ret == 0) {
		for (uint64_t off = 0; off < chain_size(c); off += sizeof(buf))
			(void)chain_read(c, buf, sizeof(buf), off);
		chain_close(c);
	}
	return ret;
}

static void setup(void)
{
	strcpy(dir, "/tmp/test_qcow2.XXXXXX");
	cr_assert(mkdtemp(dir));
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	cr_assert(dfd >= 0);
	log_set_quiet(true);
	build(false);
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", dir);
	close(dfd);
	free(img);
	img = NULL;
}

TestSuite(qcow2, .init = setup, .fini = teardown, .timeout = 60);

static void expect_bytes(struct chain *c, uint64_t off, size_t len, int val)
{
	uint8_t *buf = malloc(len);

	cr_assert(buf);
	cr_assert_eq(chain_read(c, buf, len, off), (int)len);
	for (size_t i = 0; i < len; i++)
		cr_assert_eq(buf[i], val, "byte %llu is 0x%02x, expected 0x%02x",
			     (unsigned long long)(off + i), buf[i], val);
	free(buf);
}

/* ---- the valid image ---- */

Test(qcow2, valid_image_reads)
{
	struct chain *c;

	cr_assert_eq(open_img(&c), 0);
	cr_assert_eq(chain_size(c), VSIZE);
	expect_bytes(c, 0, CS, 0xab);
	expect_bytes(c, CS, CS, 0xcd);
	expect_bytes(c, 2 * CS, CS, 0);
	expect_bytes(c, 3 * CS, CS, 0xef);
	expect_bytes(c, 4 * CS, VSIZE - 4 * CS, 0);
	expect_bytes(c, CS + 100, 50, 0xcd); /* inside a compressed cluster */
	cr_expect_eq(chain_read(c, img, 100, VSIZE), 0);
	cr_expect_eq(chain_read(c, img, 100, VSIZE - 10), 10);
	chain_close(c);
}

Test(qcow2, valid_image_extents_and_seek)
{
	struct chain *c;
	struct chain_extent e;

	cr_assert_eq(open_img(&c), 0);
	cr_assert_eq(chain_extent_get(c, 10, &e), 0);
	cr_expect_eq(e.kind, CHAIN_EXTENT_DATA);
	cr_expect_eq(e.offset, DATA0 + 10);
	cr_expect_eq(e.length, CS - 10);
	cr_expect(e.fd >= 0);
	cr_assert_eq(chain_extent_get(c, CS + 7, &e), 0);
	cr_expect_eq(e.kind, CHAIN_EXTENT_COMPRESSED);
	cr_expect_eq(e.offset, COMP);
	cr_expect_eq(e.cluster_offset, 7);
	cr_assert_eq(chain_extent_get(c, 2 * CS, &e), 0);
	cr_expect_eq(e.kind, CHAIN_EXTENT_ZERO);
	cr_assert_eq(chain_extent_get(c, 5 * CS, &e), 0);
	cr_expect_eq(e.kind, CHAIN_EXTENT_HOLE);
	cr_expect_eq(e.length, VSIZE - 5 * CS);
	cr_expect_eq(chain_extent_get(c, VSIZE, &e), -ENXIO);

	cr_expect_eq((uint64_t)chain_seek(c, 0, SEEK_DATA), 0);
	cr_expect_eq((uint64_t)chain_seek(c, 0, SEEK_HOLE), 2 * CS);
	cr_expect_eq((uint64_t)chain_seek(c, 2 * CS, SEEK_DATA), 3 * CS);
	cr_expect_eq((uint64_t)chain_seek(c, 3 * CS + 1, SEEK_HOLE), 4 * CS);
	cr_expect_eq(chain_seek(c, 4 * CS, SEEK_DATA), -ENXIO);
	cr_expect_eq((uint64_t)chain_seek(c, 4 * CS, SEEK_HOLE), 4 * CS);
	cr_expect_eq(chain_seek(c, VSIZE, SEEK_HOLE), -ENXIO);
	cr_expect_eq((uint64_t)chain_seek(c, VSIZE - 1, SEEK_HOLE), VSIZE - 1);
	cr_expect_eq(chain_seek(c, 0, SEEK_SET), -EINVAL);
	chain_close(c);
}

Test(qcow2, extended_l2_subclusters)
{
	struct chain *c;
	uint64_t sc;

	build(true);
	sc = CS / 32;
	cr_assert_eq(open_img(&c), 0);
	expect_bytes(c, 0, CS, 0xab);
	expect_bytes(c, CS, CS, 0xcd);
	expect_bytes(c, 2 * CS, CS, 0);
	expect_bytes(c, 3 * CS, 16 * sc, 0xef);
	expect_bytes(c, 3 * CS + 16 * sc, 16 * sc, 0);
	cr_expect_eq((uint64_t)chain_seek(c, 3 * CS, SEEK_HOLE), 3 * CS + 16 * sc);
	chain_close(c);
}

Test(qcow2, dirty_bit_is_fine)
{
	put64(img + H_INCOMPAT, QCOW2_INCOMPAT_DIRTY);
	cr_expect_eq(opens_and_reads(), 0);
}

Test(qcow2, size_param_cuts_and_extends)
{
	struct chain_layer l = {dfd, "img", IMAGE_FORMAT_QCOW2, false};
	struct chain *c;

	write_file("img", img, img_len);
	cr_assert_eq(chain_open(&c, &l, 1, CS + 10), 0);
	cr_expect_eq(chain_size(c), CS + 10);
	expect_bytes(c, CS, 10, 0xcd);
	chain_close(c);
	cr_assert_eq(chain_open(&c, &l, 1, 2 * VSIZE), 0);
	expect_bytes(c, VSIZE - 100, VSIZE + 100, 0);
	cr_expect_eq(chain_seek(c, 4 * CS, SEEK_DATA), -ENXIO);
	chain_close(c);
}

/* ---- hostile headers ---- */

Test(qcow2, truncated_files)
{
	const size_t lens[] = {0, 3, 4, 71, 72, 103, 104, 111, 600, 3 * 512 + 8, 5 * 512};

	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		struct chain *c = NULL;
		struct chain_layer l = {dfd, "t", IMAGE_FORMAT_QCOW2, false};

		write_file("t", img, lens[i]);
		cr_expect_eq(chain_open(&c, &l, 1, 0), -EIO, "length %zu", lens[i]);
		chain_close(c);
	}
}

Test(qcow2, bad_magic)
{
	img[0] = 'X';
	refused();
}
Test(qcow2, version_1)
{
	put32(img + 4, 1);
	refused();
}
Test(qcow2, version_4)
{
	put32(img + 4, 4);
	refused();
}
Test(qcow2, cluster_bits_8)
{
	put32(img + H_CLUSTER_BITS, 8);
	refused();
}
Test(qcow2, cluster_bits_22)
{
	put32(img + H_CLUSTER_BITS, 22);
	refused();
}
Test(qcow2, cluster_bits_huge)
{
	put32(img + H_CLUSTER_BITS, 0xffffffff);
	refused();
}
Test(qcow2, header_length_small)
{
	put32(img + H_HEADER_LEN, 100);
	refused();
}
Test(qcow2, header_length_past_cluster)
{
	put32(img + H_HEADER_LEN, CS + 8);
	refused();
}
Test(qcow2, backing_offset_past_cluster)
{
	put64(img + H_BACKING_OFF, CS + 8);
	put32(img + H_BACKING_LEN, 4);
	refused();
}
Test(qcow2, backing_name_too_long)
{
	put64(img + H_BACKING_OFF, 200);
	put32(img + H_BACKING_LEN, 1024);
	refused();
}
Test(qcow2, encryption)
{
	put32(img + H_CRYPT, 1);
	refused();
}
Test(qcow2, encryption_aes_luks)
{
	put32(img + H_CRYPT, 2);
	refused();
}
Test(qcow2, external_data_file)
{
	put64(img + H_INCOMPAT, QCOW2_INCOMPAT_DATA_FILE);
	refused();
}
Test(qcow2, corrupt_bit)
{
	put64(img + H_INCOMPAT, QCOW2_INCOMPAT_CORRUPT);
	refused();
}
Test(qcow2, unknown_incompat_bit5)
{
	put64(img + H_INCOMPAT, 1ULL << 5);
	refused();
}
Test(qcow2, unknown_incompat_bit63)
{
	put64(img + H_INCOMPAT, 1ULL << 63);
	refused();
}
Test(qcow2, compression_bit_without_type)
{
	put64(img + H_INCOMPAT, QCOW2_INCOMPAT_COMPRESSION);
	refused();
}
Test(qcow2, compression_type_without_bit)
{
	img[H_COMPRESSION] = 1;
	refused();
}
Test(qcow2, compression_type_unknown)
{
	img[H_COMPRESSION] = 2;
	put64(img + H_INCOMPAT, QCOW2_INCOMPAT_COMPRESSION);
	refused();
}
Test(qcow2, refcount_order_7)
{
	put32(img + H_REFCOUNT_ORDER, 7);
	refused();
}
Test(qcow2, refcount_table_past_eof)
{
	put64(img + H_RT_OFF, 100 * CS);
	refused();
}
Test(qcow2, refcount_table_unaligned)
{
	put64(img + H_RT_OFF, CS + 8);
	refused();
}
Test(qcow2, refcount_table_huge)
{
	put32(img + H_RT_CLUSTERS, 0x7fffffff);
	refused();
}
Test(qcow2, refcount_table_missing)
{
	put64(img + H_RT_OFF, 0);
	refused();
}
Test(qcow2, snapshots_absurd)
{
	put32(img + H_NB_SNAP, 100000);
	refused();
}
/* Opens and reads what the valid image reads at cluster 1 (0xCD). */
static void reads_cluster1(void)
{
	struct chain *c = NULL;

	cr_assert_eq(open_img(&c), 0);
	expect_bytes(c, CS, CS, 0xcd);
	chain_close(c);
}

/* Opens, but reading guest cluster 1 fails with -EIO. */
static void cluster1_read_fails(void)
{
	struct chain *c = NULL;
	static uint8_t buf[16384];

	cr_assert_eq(open_img(&c), 0);
	cr_expect_eq(chain_read(c, buf, CS, CS), -EIO);
	chain_close(c);
}

/* The snapshot table is read as qemu reads it: past the end of the file
 * its entries are zeros, which qemu opens. */
Test(qcow2, snapshots_past_eof)
{
	put32(img + H_NB_SNAP, 1);
	put64(img + H_SNAP_OFF, 1000 * CS);
	reads_cluster1();
}
/* Read syscalls of this process so far (/proc/self/io), or -1. */
static long long read_syscalls(void)
{
	FILE *f = fopen("/proc/self/io", "r");
	long long n = -1;
	char line[128];

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "syscr: %lld", &n) == 1)
			break;
	fclose(f);
	return n;
}

/* The most snapshots qemu allows, all past the end of the file: they read
 * as zeros and open, without a read per entry (the fuzzer found a header
 * like this costing 65536 preads per open). */
Test(qcow2, snapshots_past_eof_not_read)
{
	struct image_info info;
	long long before, after;

	put32(img + H_NB_SNAP, QCOW2_MAX_SNAPSHOTS);
	put64(img + H_SNAP_OFF, 1000 * CS);
	reads_cluster1();
	before = read_syscalls();
	cr_assert_eq(qcow2_probe(dfd, "img", &info), 0);
	cr_expect(info.safe, "%s", info.reason);
	after = read_syscalls();
	if (before >= 0 && after >= 0)
		cr_expect_lt(after - before, 100, "%lld reads to probe one header", after - before);
}

/* A table that starts inside the file and runs past its end: the entries
 * in the file are checked (over more than one 4 KiB read), those past the
 * end are zeros. */
Test(qcow2, snapshots_across_eof)
{
	size_t nin = 150, at = (NCL + 1) * CS; /* an extra 8 KiB after the image */
	uint8_t *grown = realloc(img, at + nin * 56);

	cr_assert(grown);
	img = grown;
	memset(img + img_len, 0, at + nin * 56 - img_len);
	img_len = at + nin * 56 - 20; /* the last entry cut short */
	for (size_t i = 0; i < nin; i++) {
		put16(img + at + i * 56 + 12, 3); /* id "1" .. padded */
		put16(img + at + i * 56 + 14, 13); /* name */
	}
	put32(img + H_NB_SNAP, (uint32_t)nin + 1000);
	put64(img + H_SNAP_OFF, at);
	reads_cluster1();
	/* an entry in the second 4 KiB read with too much extra data */
	put32(img + at + 100 * 56 + 36, QCOW2_MAX_SNAPSHOT_EXTRA + 1);
	refused();
}

Test(qcow2, snapshots_offset_unaligned_without_snapshots)
{
	put64(img + H_SNAP_OFF, 9 * CS + 8);
	refused();
}
Test(qcow2, snapshots_extra_data)
{
	/* one entry in the free cluster 9: 1024 bytes of extra data are
	 * allowed, 1025 are not (qemu's limits) */
	put32(img + H_NB_SNAP, 1);
	put64(img + H_SNAP_OFF, 9 * CS);
	put32(img + 9 * CS + 36, 1024);
	reads_cluster1();
	put32(img + 9 * CS + 36, 1025);
	refused();
}
Test(qcow2, l1_past_eof)
{
	put64(img + H_L1_OFF, 64 * CS);
	refused();
}
Test(qcow2, l1_unaligned)
{
	put64(img + H_L1_OFF, L1 + 8);
	refused();
}
Test(qcow2, l1_at_header)
{
	put64(img + H_L1_OFF, 0);
	refused();
}
Test(qcow2, l1_over_qemu_limit)
{
	put32(img + H_L1_SIZE, (32u << 20) / 8 + 1);
	refused();
}
Test(qcow2, l1_size_max_u32)
{
	put32(img + H_L1_SIZE, 0xffffffff);
	refused();
}
Test(qcow2, l1_too_small_for_size)
{
	put64(img + H_SIZE, 10 * VSIZE);
	refused();
}
Test(qcow2, virtual_size_absurd)
{
	put64(img + H_SIZE, 1ULL << 62);
	refused();
}
Test(qcow2, virtual_size_overflow)
{
	put64(img + H_SIZE, ~0ULL);
	refused();
}
Test(qcow2, header_extension_too_large)
{
	put32(img + 112, 0x12345678);
	put32(img + 116, 0x7fffffff);
	refused();
}
Test(qcow2, crypto_header_extension)
{
	put32(img + 112, 0x0537be77);
	put32(img + 116, 16);
	refused();
}
Test(qcow2, backing_format_unknown)
{
	struct chain_layer l[2] = {{dfd, "img", IMAGE_FORMAT_QCOW2, false}, {dfd, "b", IMAGE_FORMAT_RAW, false}};
	struct chain *c = NULL;

	put32(img + 112, 0xe2792aca);
	put32(img + 116, 4);
	memcpy(img + 120, "vmdk", 4);
	put64(img + H_BACKING_OFF, 200);
	put32(img + H_BACKING_LEN, 1);
	img[200] = 'b';
	write_file("b", "x", 1);
	write_file("img", img, img_len);
	cr_expect_eq(chain_open(&c, l, 2, 0), -EIO);
}

/* ---- hostile tables ---- */

Test(qcow2, l1_reserved_bits)
{
	static const uint64_t bits[] = {1, 1ULL << 8, 1ULL << 56, 1ULL << 62};

	for (size_t i = 0; i < 4; i++) {
		build(false);
		put64(img + L1, L2 | bits[i]);
		refused();
	}
}
Test(qcow2, l2_reserved_bits)
{
	static const uint64_t bits[] = {1ULL << 1, 1ULL << 8, 1ULL << 56, 1ULL << 61};

	for (size_t i = 0; i < 4; i++) {
		build(false);
		put64(l2e(0), DATA0 | bits[i]);
		refused();
	}
}
Test(qcow2, l2_zero_bit_in_v2)
{
	put32(img + 4, 2);
	refused(); /* guest cluster 2 has the v3-only zero flag */
}
Test(qcow2, l2_table_past_eof)
{
	put64(img + L1, 100 * CS);
	refused();
}
Test(qcow2, l2_table_unaligned)
{
	put64(img + L1, L2 + 8 * 64);
	refused();
}
Test(qcow2, l2_table_is_l1)
{
	put64(img + L1, L1);
	refused();
}
Test(qcow2, l2_table_is_refcount_table)
{
	put64(img + L1, CS);
	refused();
}
Test(qcow2, l1_loop_two_entries_one_l2)
{
	put64(img + L1 + 8, L2);
	refused();
}
Test(qcow2, data_cluster_past_eof)
{
	put64(l2e(0), 1000 * CS);
	refused();
}
/* A file that grows while it is mapped (qemu-img commit writing into the
 * file under an overlay being merged: the new cluster is written before
 * the L2 entry that points to it) maps: the size is asked again. */
static int find_host(void *opaque, const struct qcow2_run *r)
{
	uint64_t *want = opaque;

	if (r->kind == QCOW2_RUN_DATA && r->start == 4 * CS && r->host == want[0])
		want[1] = 1;
	return 0;
}
Test(qcow2, data_cluster_written_after_open)
{
	static uint8_t data[16384];
	struct qcow2_image qi;
	uint64_t want[2] = {img_len, 0};
	uint8_t entry[8];
	char reason[256];
	int fd;

	write_file("img", img, img_len);
	fd = openat(dfd, "img", O_RDWR);
	cr_assert(fd >= 0);
	cr_assert_eq(qcow2_image_open(&qi, fd, "img", reason, sizeof(reason)), 0, "%s", reason);
	memset(data, 0x77, CS);
	cr_assert_eq(pwrite(fd, data, CS, img_len), (ssize_t)CS);
	put64(entry, img_len | (1ULL << 63));
	cr_assert_eq(pwrite(fd, entry, 8, L2 + 4 * 8), 8);
	cr_expect_eq(qcow2_image_map(&qi, find_host, want, reason, sizeof(reason)), 0, "%s", reason);
	cr_expect_eq(want[1], 1, "the new cluster is mapped");
	/* an entry past the end of what the file holds is still refused */
	put64(entry, (img_len + 8 * CS) | (1ULL << 63));
	cr_assert_eq(pwrite(fd, entry, 8, L2 + 4 * 8), 8);
	cr_expect_eq(qcow2_image_map(&qi, find_host, want, reason, sizeof(reason)), -EIO);
	close(fd);
}
Test(qcow2, data_cluster_far_past_eof)
{
	put64(l2e(0), 0x00fffffffffffe00ULL);
	refused();
}
Test(qcow2, data_cluster_unaligned)
{
	/* 512-byte clusters are always 512-aligned: use 4 KiB ones. */
	put32(img + H_CLUSTER_BITS, 12);
	refused(); /* tables at 512-byte offsets are now unaligned */
}
/* A descriptor past the end of the file reads zeros there, as in qemu:
 * it opens, and the cluster fails to decompress when read. */
Test(qcow2, compressed_past_eof)
{
	put64(l2e(1), (1ULL << 62) | (NCL * CS + 10));
	cluster1_read_fails();
}
Test(qcow2, compressed_sectors_past_eof)
{
	/* 512-byte clusters: one bit of sector count, at bit 61. */
	put64(l2e(1), (1ULL << 62) | (1ULL << 61) | (9 * CS + 100));
	cluster1_read_fails();
}
Test(qcow2, extl2_small_clusters)
{
	put64(img + H_INCOMPAT, QCOW2_INCOMPAT_EXTL2);
	refused();
}
Test(qcow2, compressed_in_header)
{
	put64(l2e(1), (1ULL << 62) | 100);
	refused();
}
Test(qcow2, compressed_corrupt_stream)
{
	struct chain *c;
	uint8_t buf[512];

	memset(img + COMP, 0xff, CS);
	cr_assert_eq(open_img(&c), 0);
	cr_expect_eq(chain_read(c, buf, CS, CS), -EIO);
	cr_expect_eq(chain_read(c, buf, CS, 0), (int)CS);
	chain_close(c);
}
Test(qcow2, compressed_short_stream)
{
	struct chain *c;
	uint8_t buf[512];

	memset(img + COMP + 4, 0, CS - 4); /* cut the deflate stream */
	cr_assert_eq(open_img(&c), 0);
	cr_expect_eq(chain_read(c, buf, CS, CS), -EIO);
	chain_close(c);
}
Test(qcow2, zstd_garbage)
{
	struct chain *c;
	uint8_t buf[512];

	img[H_COMPRESSION] = 1;
	put64(img + H_INCOMPAT, QCOW2_INCOMPAT_COMPRESSION);
	cr_assert_eq(open_img(&c), 0);
	cr_expect_eq(chain_read(c, buf, CS, CS), -EIO);
	chain_close(c);
}
Test(qcow2, extl2_allocated_and_zero)
{
	build(true);
	put64(l2e(0) + 8, 0x1ULL | (0x1ULL << 32));
	refused();
}
Test(qcow2, extl2_allocated_without_offset)
{
	build(true);
	put64(l2e(2) + 8, 0x3);
	refused();
}
/* A compressed cluster's subcluster bitmap means nothing (qemu ignores
 * it): the cluster reads as the compressed stream says. */
Test(qcow2, extl2_compressed_with_bitmap)
{
	build(true);
	put64(l2e(1) + 8, 1ULL << 40);
	reads_cluster1();
	put64(l2e(1) + 8, 0xffffffffffffffffULL);
	reads_cluster1();
}
Test(qcow2, extl2_zero_bit_reserved)
{
	build(true);
	put64(l2e(0), DATA0 | 1);
	refused();
}

/* ---- backing names and chains ---- */

static void set_backing(const char *name, size_t len)
{
	put64(img + H_BACKING_OFF, 256);
	put32(img + H_BACKING_LEN, (uint32_t)len);
	memcpy(img + 256, name, len);
}

static int open_two(const char *next_name)
{
	struct chain_layer l[2] = {{dfd, "img", IMAGE_FORMAT_QCOW2, false},
				   {dfd, next_name, IMAGE_FORMAT_RAW, false}};
	struct chain *c = NULL;
	int ret;

	write_file("img", img, img_len);
	ret = chain_open(&c, l, 2, 0);
	chain_close(c);
	return ret;
}

Test(qcow2, backing_etc_passwd)
{
	struct image_info info;

	set_backing("/etc/passwd", 11);
	write_file("passwd", "x", 1);
	cr_expect_eq(open_two("passwd"), -EIO);
	refused(); /* alone: the header names a backing file */
	cr_assert_eq(qcow2_probe(dfd, "img", &info), 0);
	cr_expect_not(info.safe);
	cr_expect(strstr(info.reason, "basename") != NULL, "%s", info.reason);
}
Test(qcow2, backing_dotdot)
{
	set_backing("../x", 4);
	write_file("x", "x", 1);
	cr_expect_eq(open_two("x"), -EIO);
}
Test(qcow2, backing_dot)
{
	set_backing("..", 2);
	cr_expect_eq(open_two(".."), -EIO);
	set_backing(".", 1);
	cr_expect_eq(open_two("."), -EIO);
}
Test(qcow2, backing_with_nul)
{
	set_backing("ab\0c", 4);
	write_file("ab", "x", 1);
	cr_expect_eq(open_two("ab"), -EIO);
}
Test(qcow2, backing_mismatch)
{
	set_backing("base", 4);
	write_file("other", "x", 1);
	cr_expect_eq(open_two("other"), -EIO);
	write_file("base", "x", 1);
	cr_expect_eq(open_two("base"), 0);
}
Test(qcow2, backing_format_mismatch)
{
	set_backing("base", 4);
	put32(img + 112, 0xe2792aca);
	put32(img + 116, 5);
	memcpy(img + 120, "qcow2", 5);
	write_file("base", "x", 1);
	cr_expect_eq(open_two("base"), -EIO);
}
Test(qcow2, no_backing_but_more_layers)
{
	write_file("base", "x", 1);
	cr_expect_eq(open_two("base"), -EIO);
}
Test(qcow2, bad_arguments)
{
	struct chain_layer l[2] = {{dfd, "a", IMAGE_FORMAT_RAW, false}, {dfd, "b", IMAGE_FORMAT_RAW, false}};
	struct chain *c = NULL;

	write_file("a", "x", 1);
	write_file("b", "x", 1);
	cr_expect_eq(chain_open(&c, l, 0, 0), -EINVAL);
	cr_expect_eq(chain_open(&c, l, 2, 0), -EINVAL); /* raw above the base */
	cr_expect_eq(chain_open(&c, l, 1, 1ULL << 62), -EINVAL);
	l[0].format = 7;
	cr_expect_eq(chain_open(&c, l, 1, 0), -EINVAL);
	cr_expect_null(c);
}
Test(qcow2, symlink_and_directory_refused)
{
	struct chain_layer l = {dfd, "link", IMAGE_FORMAT_RAW, false};
	struct chain *c = NULL;

	cr_assert_eq(symlinkat("/etc/passwd", dfd, "link"), 0);
	cr_expect_eq(chain_open(&c, &l, 1, 0), -ELOOP);
	cr_assert_eq(mkdirat(dfd, "d", 0755), 0);
	l.name = "d";
	cr_expect_eq(chain_open(&c, &l, 1, 0), -EIO);
	l.name = "missing";
	cr_expect_eq(chain_open(&c, &l, 1, 0), -ENOENT);
}

/* ---- chains through the engine ---- */

Test(qcow2, overlay_over_raw_base)
{
	struct chain_layer l[2] = {{dfd, "img", IMAGE_FORMAT_QCOW2, false},
				   {dfd, "base", IMAGE_FORMAT_RAW, false}};
	static uint8_t base[VSIZE];
	struct chain *c;

	memset(base, 0x55, sizeof(base));
	write_file("base", base, VSIZE / 2); /* shorter than the overlay */
	set_backing("base", 4);
	write_file("img", img, img_len);
	cr_assert_eq(chain_open(&c, l, 2, 0), 0);
	expect_bytes(c, 0, CS, 0xab);
	expect_bytes(c, 2 * CS, CS, 0); /* zero cluster hides base */
	expect_bytes(c, 4 * CS, VSIZE / 2 - 4 * CS, 0x55);
	expect_bytes(c, VSIZE / 2, VSIZE / 2, 0); /* past the base */
	cr_expect_eq((uint64_t)chain_seek(c, 2 * CS, SEEK_DATA), 3 * CS);
	cr_expect_eq((uint64_t)chain_seek(c, 0, SEEK_HOLE), 2 * CS);
	cr_expect_eq((uint64_t)chain_seek(c, 3 * CS, SEEK_HOLE), VSIZE / 2);
	chain_close(c);
}

Test(qcow2, deep_chain_of_overlays)
{
	enum { DEPTH = 64 };
	struct chain_layer l[DEPTH];
	char names[DEPTH][16];
	static uint8_t base[VSIZE];
	struct chain *c;

	memset(base, 0x11, sizeof(base));
	write_file("base", base, sizeof(base));
	for (int i = 0; i < DEPTH - 1; i++)
		snprintf(names[i], sizeof(names[i]), "ov%02d", i);
	for (int i = 0; i < DEPTH - 1; i++) {
		int ret = qcow2_overlay_create(
			dfd, names[i], i == DEPTH - 2 ? "base" : names[i + 1],
			i == DEPTH - 2 ? IMAGE_FORMAT_RAW : IMAGE_FORMAT_QCOW2, VSIZE, 0644);

		cr_assert_eq(ret, 0, "overlay %d: %d", i, ret);
		l[i] = (struct chain_layer){dfd, names[i], IMAGE_FORMAT_QCOW2, false};
	}
	l[DEPTH - 1] = (struct chain_layer){dfd, "base", IMAGE_FORMAT_RAW, false};
	cr_assert_eq(chain_open(&c, l, DEPTH, 0), 0);
	cr_expect_eq(chain_extent_count(c), 1);
	expect_bytes(c, 0, VSIZE, 0x11);
	chain_close(c);
}

/* A merge under way (snapfs deleting a snapshot): the file above the
 * merged one already names the one below it, or the merged file is gone.
 * A layer marked merging is then left out; an unmarked one never is. */
Test(qcow2, merging_layer_left_out)
{
	struct chain_layer l[3] = {{dfd, "top", IMAGE_FORMAT_QCOW2, false},
				   {dfd, "mid", IMAGE_FORMAT_QCOW2, false},
				   {dfd, "base", IMAGE_FORMAT_RAW, false}};
	static uint8_t base[VSIZE];
	uint64_t counts[3];
	struct chain *c;

	memset(base, 0x22, sizeof(base));
	write_file("base", base, sizeof(base));
	cr_assert_eq(qcow2_overlay_create(dfd, "mid", "base", IMAGE_FORMAT_RAW, VSIZE, 0644), 0);
	/* top rebased onto base: mid is being merged away */
	cr_assert_eq(qcow2_overlay_create(dfd, "top", "base", IMAGE_FORMAT_RAW, VSIZE, 0644), 0);
	cr_expect_eq(chain_open(&c, l, 3, 0), -EIO, "an unmarked layer is never skipped");
	l[1].merging = true;
	cr_assert_eq(chain_open(&c, l, 3, 0), 0);
	cr_expect_eq(chain_depth(c), 2);
	cr_expect_str_eq(chain_layer_name(c, 1), "base");
	expect_bytes(c, 0, VSIZE, 0x22);
	chain_close(c);
	cr_assert_eq(chain_data_by_depth(l, 3, counts), 0);
	cr_expect_eq(counts[0], VSIZE);
	cr_expect_eq(counts[1], counts[2], "a layer left out counts as the one below it");
	/* the header names neither the next layer nor one below merging ones */
	l[2].name = "mid";
	l[2].format = IMAGE_FORMAT_QCOW2;
	cr_expect_eq(chain_open(&c, l, 3, 0), -EIO);

	/* the merged file gone: left out when marked, else ENOENT */
	{
		struct chain_layer g[2] = {{dfd, "gone", IMAGE_FORMAT_QCOW2, false},
					   {dfd, "base", IMAGE_FORMAT_RAW, false}};

		cr_expect_eq(chain_open(&c, g, 2, 0), -ENOENT);
		g[0].merging = true;
		cr_assert_eq(chain_open(&c, g, 2, 0), 0);
		cr_expect_eq(chain_depth(c), 1);
		expect_bytes(c, 0, VSIZE, 0x22);
		chain_close(c);
	}
}

/* ---- threads ---- */

struct reader_arg {
	struct chain *c;
	int bad;
};

static void *reader(void *p)
{
	struct reader_arg *a = p;
	uint8_t buf[3 * CS];

	for (int i = 0; i < 2000; i++) {
		uint64_t off = (uint64_t)(i * 37) % (4 * CS);
		int n = chain_read(a->c, buf, sizeof(buf), off);

		if (n != (int)sizeof(buf)) {
			a->bad++;
			continue;
		}
		for (size_t k = 0; k < sizeof(buf); k++) {
			uint64_t v = off + k;
			int want = v < CS	? 0xab
				   : v < 2 * CS ? 0xcd
				   : v < 3 * CS ? 0
				   : v < 4 * CS ? 0xef
						: 0;

			if (buf[k] != want) {
				a->bad++;
				break;
			}
		}
	}
	return NULL;
}

Test(qcow2, concurrent_reads)
{
	struct reader_arg args[8];
	pthread_t th[8];
	struct chain *c;

	cr_assert_eq(open_img(&c), 0);
	for (int i = 0; i < 8; i++) {
		args[i] = (struct reader_arg){c, 0};
		cr_assert_eq(pthread_create(&th[i], NULL, reader, &args[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		cr_expect_eq(args[i].bad, 0, "thread %d saw %d bad reads", i, args[i].bad);
	}
	chain_close(c);
}

/* ---- probe ---- */

Test(qcow2, probe)
{
	struct image_info info;

	set_backing("base", 4);
	put32(img + 112, 0xe2792aca);
	put32(img + 116, 3);
	memcpy(img + 120, "raw", 3);
	write_file("img", img, img_len);
	cr_assert_eq(qcow2_probe(dfd, "img", &info), 0);
	cr_expect_eq(info.format, IMAGE_FORMAT_QCOW2);
	cr_expect_eq(info.version, 3);
	cr_expect_eq(info.cluster_size, CS);
	cr_expect_eq(info.virtual_size, VSIZE);
	cr_expect(info.has_backing);
	cr_expect_str_eq(info.backing_name, "base");
	cr_expect(info.backing_format_known);
	cr_expect_eq(info.backing_format, IMAGE_FORMAT_RAW);
	cr_expect(info.safe, "%s", info.reason);

	write_file("r", "hello", 5);
	cr_assert_eq(qcow2_probe(dfd, "r", &info), 0);
	cr_expect_eq(info.format, IMAGE_FORMAT_RAW);
	cr_expect_eq(info.virtual_size, 512); /* a whole sector, as in qemu */
	cr_expect(info.safe);

	put64(img + H_INCOMPAT, QCOW2_INCOMPAT_DATA_FILE);
	write_file("img", img, img_len);
	cr_assert_eq(qcow2_probe(dfd, "img", &info), 0);
	cr_expect_not(info.safe);
	cr_expect(strstr(info.reason, "external data file") != NULL, "%s", info.reason);
	cr_expect_eq(qcow2_probe(dfd, "nope", &info), -ENOENT);
}

/* ---- overlay writer ---- */

Test(qcow2, overlay_create)
{
	struct chain_layer l[2] = {{dfd, "ov", IMAGE_FORMAT_QCOW2, false},
				   {dfd, "base", IMAGE_FORMAT_RAW, false}};
	static uint8_t base[VSIZE];
	struct image_info info;
	struct chain *c;
	struct stat st;

	memset(base, 0x77, sizeof(base));
	write_file("base", base, sizeof(base));
	cr_assert_eq(qcow2_overlay_create(dfd, "ov", "base", IMAGE_FORMAT_RAW, 0, 0600), 0);
	cr_assert_eq(fstatat(dfd, "ov", &st, 0), 0);
	cr_expect_eq(st.st_mode & 0777, 0600);
	cr_assert_eq(qcow2_probe(dfd, "ov", &info), 0);
	cr_expect(info.safe, "%s", info.reason);
	cr_expect_eq(info.virtual_size, VSIZE);
	cr_expect_eq(info.cluster_size, 65536);
	cr_expect_str_eq(info.backing_name, "base");
	cr_assert_eq(chain_open(&c, l, 2, 0), 0);
	expect_bytes(c, 0, VSIZE, 0x77);
	chain_close(c);

	cr_expect_eq(qcow2_overlay_create(dfd, "ov", "base", IMAGE_FORMAT_RAW, VSIZE, 0600),
		     -EEXIST);
	cr_expect_eq(qcow2_overlay_create(dfd, "x", "../base", IMAGE_FORMAT_RAW, VSIZE, 0600),
		     -EINVAL);
	cr_expect_eq(qcow2_overlay_create(dfd, "a/b", "base", IMAGE_FORMAT_RAW, VSIZE, 0600),
		     -EINVAL);
	cr_expect_eq(qcow2_overlay_create(dfd, "x", "base", IMAGE_FORMAT_RAW, 1ULL << 62, 0600),
		     -EINVAL);
	cr_expect_eq(qcow2_overlay_create(dfd, "x", "base", 9, VSIZE, 0600), -EINVAL);
	cr_expect_neq(qcow2_overlay_create(dfd, "x", "missing", IMAGE_FORMAT_RAW, 0, 0600), 0);
	cr_expect_neq(faccessat(dfd, "x", F_OK, 0), 0, "a failed create left a file");
}

Test(qcow2, overlay_passes_qemu_img_check)
{
	char cmd[512];
	static uint8_t base[VSIZE];

	if (system("command -v qemu-img >/dev/null 2>&1") != 0)
		cr_skip_test("qemu-img not installed");
	write_file("base", base, sizeof(base));
	cr_assert_eq(qcow2_overlay_create(dfd, "ov", "base", IMAGE_FORMAT_RAW, 1ULL << 40, 0644),
		     0);
	snprintf(cmd, sizeof(cmd), "qemu-img check -q '%s/ov'", dir);
	cr_expect_eq(system(cmd), 0);
	snprintf(cmd, sizeof(cmd),
		 "qemu-img info --backing-chain '%s/ov' | grep -q 'backing file format: raw'", dir);
	cr_expect_eq(system(cmd), 0);
}

/* ---- bounded memory for sparse images ---- */

Test(qcow2, sparse_1tib_map_is_small)
{
	/* 64 KiB clusters: 2048 L1 entries, all empty but one. */
	const uint64_t cs = 65536, tib = 1ULL << 40;
	size_t len = 5 * cs;
	uint8_t *b = calloc(1, len);
	struct chain_layer l = {dfd, "big", IMAGE_FORMAT_QCOW2, false};
	struct chain *c;

	cr_assert(b);
	put32(b, 0x514649fb);
	put32(b + 4, 3);
	put32(b + H_CLUSTER_BITS, 16);
	put64(b + H_SIZE, tib);
	put32(b + H_L1_SIZE, 2048);
	put64(b + H_L1_OFF, 3 * cs);
	put64(b + H_RT_OFF, cs);
	put32(b + H_RT_CLUSTERS, 1);
	put32(b + H_REFCOUNT_ORDER, 4);
	put32(b + H_HEADER_LEN, 112);
	put64(b + 3 * cs + 8 * 1000, 4 * cs); /* one L2 table ... */
	put64(b + 4 * cs + 8 * 17, 1); /* ... with one zero cluster */
	write_file("big", b, len);
	free(b);
	cr_assert_eq(chain_open(&c, &l, 1, 0), 0);
	cr_expect_eq(chain_size(c), tib);
	cr_expect_leq(chain_extent_count(c), 3);
	cr_expect_eq(chain_seek(c, 0, SEEK_DATA), -ENXIO);
	chain_close(c);
}

/* ---- random corruption: -EIO or a clean read, never a crash ---- */

Test(qcow2, random_corruption, .timeout = 120)
{
	uint8_t *good;
	unsigned seed = 12345;

	for (int variant = 0; variant < 2; variant++) {
		build(variant);
		good = malloc(img_len);
		cr_assert(good);
		memcpy(good, img, img_len);
		for (int i = 0; i < 400; i++) {
			memcpy(img, good, img_len);
			for (int k = 0; k < 1 + i % 4; k++) {
				size_t pos = (size_t)rand_r(&seed) % (5 * CS);

				img[pos] ^= (uint8_t)(1u << (rand_r(&seed) % 8));
			}
			int ret = opens_and_reads();

			cr_expect(ret == 0 || ret == -EIO, "iteration %d: %d", i, ret);
		}
		free(good);
	}
}

/* ---- names ---- */

Test(qcow2, basename_rules)
{
	char longname[1100];

	cr_expect(qcow2_name_is_basename("volume-1"));
	cr_expect_not(qcow2_name_is_basename(""));
	cr_expect_not(qcow2_name_is_basename("."));
	cr_expect_not(qcow2_name_is_basename(".."));
	cr_expect_not(qcow2_name_is_basename("a/b"));
	cr_expect_not(qcow2_name_is_basename("/etc/passwd"));
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	cr_expect_not(qcow2_name_is_basename(longname));
	longname[1023] = '\0';
	cr_expect(qcow2_name_is_basename(longname));
}

/* ---- deep validation ---- */

Test(qcow2, validate_walks_tables)
{
	struct image_info info;

	write_file("img", img, img_len);
	cr_assert_eq(qcow2_validate(dfd, "img", &info), 0);
	cr_expect(info.safe, "%s", info.reason);
	put64(l2e(3), DATA3 | (1ULL << 5));
	write_file("img", img, img_len);
	cr_assert_eq(qcow2_probe(dfd, "img", &info), 0);
	cr_expect(info.safe, "the header probe does not read tables");
	cr_assert_eq(qcow2_validate(dfd, "img", &info), 0);
	cr_expect_not(info.safe);
	cr_expect(strstr(info.reason, "reserved bits") != NULL, "%s", info.reason);
	write_file("r", "raw", 3);
	cr_assert_eq(qcow2_validate(dfd, "r", &info), 0);
	cr_expect(info.safe);
}

/* ---- what changed between a chain and its suffix ---- */

Test(qcow2, ranges_above_layers)
{
	struct chain_layer l[3] = {{dfd, "ov", IMAGE_FORMAT_QCOW2, false},
				   {dfd, "img", IMAGE_FORMAT_QCOW2, false},
				   {dfd, "base", IMAGE_FORMAT_RAW, false}};
	static uint8_t base[VSIZE];
	struct chain_range *r;
	struct chain *c;
	uint64_t bytes;
	size_t n;

	memset(base, 0x55, sizeof(base));
	write_file("base", base, VSIZE / 2);
	set_backing("base", 4);
	write_file("img", img, img_len);
	cr_assert_eq(qcow2_overlay_create(dfd, "ov", "img", IMAGE_FORMAT_QCOW2, 0, 0644), 0);
	cr_assert_eq(chain_open(&c, l, 3, 0), 0);

	/* the empty top overlay changed nothing */
	cr_assert_eq(chain_ranges_above(c, 1, &r, &n, &bytes), 0);
	cr_expect_eq(n, 0);
	cr_expect_eq(bytes, 0);
	chain_ranges_free(r, n);

	/* img: data, compressed, zero and data clusters, one range */
	cr_assert_eq(chain_ranges_above(c, 2, &r, &n, &bytes), 0);
	cr_assert_eq(n, 1);
	cr_expect_eq(r[0].start, 0);
	cr_expect_eq(r[0].len, 4 * CS);
	cr_expect_eq(bytes, 4 * CS);
	chain_ranges_free(r, n);

	/* down to the base: what the base file holds, not the virtual size */
	cr_assert_eq(chain_ranges_above(c, 3, &r, &n, &bytes), 0);
	cr_assert_eq(n, 1);
	cr_expect_eq(r[0].start, 0);
	cr_expect_eq(r[0].len, VSIZE / 2);
	cr_expect_eq(bytes, VSIZE / 2);
	chain_ranges_free(r, n);

	cr_expect_eq(chain_ranges_above(c, 0, &r, &n, &bytes), -EINVAL);
	cr_expect_eq(chain_ranges_above(c, 4, &r, &n, &bytes), -EINVAL);
	chain_close(c);
}

Test(qcow2, ranges_above_only_allocated_clusters)
{
	struct chain_layer l[2] = {{dfd, "img", IMAGE_FORMAT_QCOW2, false},
				   {dfd, "base", IMAGE_FORMAT_RAW, false}};
	static uint8_t base[VSIZE];
	struct chain_range *r;
	struct chain *c;
	uint64_t bytes;
	size_t n;

	/* img's cluster 2 is a zero cluster, 3 data; unallocate 1 */
	write_file("base", base, VSIZE);
	set_backing("base", 4);
	memset(l2e(1), 0, 8);
	write_file("img", img, img_len);
	cr_assert_eq(chain_open(&c, l, 2, 0), 0);
	cr_assert_eq(chain_ranges_above(c, 1, &r, &n, &bytes), 0);
	cr_assert_eq(n, 2);
	cr_expect_eq(r[0].start, 0);
	cr_expect_eq(r[0].len, CS);
	cr_expect_eq(r[1].start, 2 * CS);
	cr_expect_eq(r[1].len, 2 * CS);
	cr_expect_eq(bytes, 3 * CS);
	cr_expect_eq(chain_ranges_find(r, n, 0), 0);
	cr_expect_eq(chain_ranges_find(r, n, CS), 1);
	cr_expect_eq(chain_ranges_find(r, n, 4 * CS), 2);
	cr_expect_eq((uint64_t)chain_ranges_seek(r, n, VSIZE, 0, SEEK_DATA), 0);
	cr_expect_eq((uint64_t)chain_ranges_seek(r, n, VSIZE, 0, SEEK_HOLE), CS);
	cr_expect_eq((uint64_t)chain_ranges_seek(r, n, VSIZE, CS, SEEK_DATA), 2 * CS);
	cr_expect_eq((uint64_t)chain_ranges_seek(r, n, VSIZE, CS + 5, SEEK_HOLE), CS + 5);
	cr_expect_eq((uint64_t)chain_ranges_seek(r, n, VSIZE, 2 * CS + 5, SEEK_DATA), 2 * CS + 5);
	cr_expect_eq((uint64_t)chain_ranges_seek(r, n, VSIZE, 2 * CS, SEEK_HOLE), 4 * CS);
	cr_expect_eq(chain_ranges_seek(r, n, VSIZE, 4 * CS, SEEK_DATA), -ENXIO);
	cr_expect_eq(chain_ranges_seek(r, n, VSIZE, VSIZE, SEEK_HOLE), -ENXIO);
	cr_expect_eq(chain_ranges_seek(r, n, VSIZE, 0, SEEK_SET), -EINVAL);
	/* a file shorter than the last range: its end is the hole */
	cr_expect_eq((uint64_t)chain_ranges_seek(r, n, 3 * CS, 2 * CS, SEEK_HOLE), 3 * CS);
	cr_expect_eq(chain_ranges_seek(NULL, 0, VSIZE, 0, SEEK_DATA), -ENXIO);
	cr_expect_eq((uint64_t)chain_ranges_seek(NULL, 0, VSIZE, 7, SEEK_HOLE), 7);
	chain_ranges_free(r, n);
	chain_close(c);
}
