/* qcow2.c - qcow2 header checks, table walks, decompression and overlay
 * creation. See qcow2.h and docs/engine.md.
 *
 * Format reference: qemu's docs/interop/qcow2.txt. All multi-byte fields
 * are big-endian.
 */
#include "qcow2.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "log.h"

#define QCOW2_MAGIC 0x514649fbU
#define QCOW2_V2_HEADER_LEN 72
#define QCOW2_V3_HEADER_LEN 104

#define EXT_END 0x00000000U
#define EXT_BACKING_FORMAT 0xe2792acaU
#define EXT_FEATURE_TABLE 0x6803f857U
#define EXT_CRYPTO 0x0537be77U

#define L2E_COMPRESSED (1ULL << 62)
#define L2E_ZERO 1ULL

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get_be64(const uint8_t *p)
{
	return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

static uint16_t get_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, v >> 32);
	put_be32(p + 4, (uint32_t)v);
}

/* pread until len bytes or EOF. Returns bytes read or -errno. */
static ssize_t pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (uint8_t *)buf + done, len - done, (off_t)(off + done));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

static int pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n =
			pwrite(fd, (const uint8_t *)buf + done, len - done, (off_t)(off + done));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		done += (size_t)n;
	}
	return 0;
}

static int fail(char *reason, size_t reason_len, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(char *reason, size_t reason_len, int err, const char *fmt, ...)
{
	va_list ap;

	if (reason && reason_len) {
		va_start(ap, fmt);
		vsnprintf(reason, reason_len, fmt, ap);
		va_end(ap);
	}
	return err;
}

#define FAIL(...) return fail(reason, reason_len, -EIO, __VA_ARGS__)

bool qcow2_name_is_basename(const char *name)
{
	size_t len;

	if (!name)
		return false;
	len = strnlen(name, QCOW2_MAX_BACKING_NAME + 1);
	if (len == 0 || len > QCOW2_MAX_BACKING_NAME)
		return false;
	if (strchr(name, '/'))
		return false;
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return false;
	return true;
}

const char *image_format_name(enum image_format fmt)
{
	return fmt == IMAGE_FORMAT_QCOW2 ? "qcow2" : "raw";
}

int image_format_parse(const char *s, enum image_format *fmt)
{
	if (!strcmp(s, "raw"))
		*fmt = IMAGE_FORMAT_RAW;
	else if (!strcmp(s, "qcow2"))
		*fmt = IMAGE_FORMAT_QCOW2;
	else
		return -EINVAL;
	return 0;
}

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/* Walk the header extensions in [start, end) of buf (buf holds bytes from
 * file offset 0). */
static int parse_extensions(struct qcow2_image *img, const uint8_t *buf, uint64_t start,
			    uint64_t end, char *reason, size_t reason_len)
{
	uint64_t off = start;

	while (off + 8 <= end) {
		uint32_t type = get_be32(buf + off);
		uint32_t len = get_be32(buf + off + 4);

		off += 8;
		if (type == EXT_END)
			return 0;
		if (len > end - off)
			FAIL("header extension 0x%08x too large (%u bytes)", type, len);
		switch (type) {
		case EXT_BACKING_FORMAT: {
			char fmt[16];

			if (len >= sizeof(fmt))
				FAIL("backing format extension too long (%u bytes)", len);
			memcpy(fmt, buf + off, len);
			fmt[len] = '\0';
			if (image_format_parse(fmt, &img->backing_format) < 0)
				FAIL("unsupported backing format \"%.15s\"", fmt);
			img->backing_format_known = true;
			break;
		}
		case EXT_CRYPTO:
			FAIL("encryption header extension present");
		default:
			break;
		}
		off += ((uint64_t)len + 7) & ~7ULL;
	}
	return 0;
}

/* The internal snapshot table, as qemu reads it when it opens an image:
 * nb entries from off (bytes past the end of the file read as zeros), none
 * with more than QCOW2_MAX_SNAPSHOT_EXTRA bytes of extra data, the table
 * within QCOW2_MAX_SNAPSHOTS_BYTES. snapfs reads no snapshot, but refuses
 * what qemu refuses. Returns 0 or -EIO with reason filled. */
/* Walk the snapshot table's nb entries from off, checking each entry's
 * size, as qemu reads it: bytes past the end of the file (file_size) read
 * as zeros. The table is read 4 KiB at a time, and past the end of the
 * file not at all: every entry there is 40 zero bytes (no extra data, no
 * names), so the rest of the table is only its length. (An entry at a
 * time cost a hostile header 65536 preads per open.) */
static int snapshot_table_check(int fd, uint64_t file_size, uint64_t off, uint32_t nb, char *reason,
				size_t reason_len)
{
	uint8_t buf[4096];
	uint64_t pos = off, bpos = 0;
	size_t blen = 0;

	if (off > (uint64_t)INT64_MAX - (uint64_t)nb * 40)
		FAIL("snapshot table offset 0x%llx invalid", (unsigned long long)off);
	for (uint32_t i = 0; i < nb; i++) {
		uint8_t e[40];
		uint32_t extra;

		if (pos >= file_size) {
			pos += (uint64_t)(nb - i) * sizeof(e);
			if (pos - off > QCOW2_MAX_SNAPSHOTS_BYTES)
				FAIL("snapshot table too large");
			break;
		}
		if (pos < bpos || pos + sizeof(e) > bpos + blen) {
			ssize_t n = pread_full(fd, buf, sizeof(buf), pos);

			if (n < 0)
				return fail(reason, reason_len, (int)n, "read snapshot table: %s",
					    strerror((int)-n));
			bpos = pos;
			blen = (size_t)n;
		}
		memset(e, 0, sizeof(e));
		if (bpos + blen > pos) {
			size_t have = (size_t)(bpos + blen - pos);

			memcpy(e, buf + (pos - bpos), have < sizeof(e) ? have : sizeof(e));
		}
		extra = get_be32(e + 36);
		if (extra > QCOW2_MAX_SNAPSHOT_EXTRA)
			FAIL("too much extra data (%u bytes) in snapshot table entry %u", extra, i);
		pos += sizeof(e) + extra + get_be16(e + 12) + get_be16(e + 14);
		pos = (pos + 7) & ~7ULL;
		if (pos - off > QCOW2_MAX_SNAPSHOTS_BYTES)
			FAIL("snapshot table too large");
	}
	return 0;
}

int qcow2_image_open(struct qcow2_image *img, int fd, const char *name, char *reason,
		     size_t reason_len)
{
	uint8_t h[112];
	struct stat st;
	uint64_t cs, backing_off, l1_bytes, needed, shift, ext_end, snap_off;
	uint32_t backing_len, header_len, refcount_order, nb_snap, crypt, rt_clusters;
	uint8_t compression = 0;
	uint8_t *ebuf;
	ssize_t n;
	int ret;

	memset(img, 0, sizeof(*img));
	img->fd = fd;
	img->name = name;
	if (fstat(fd, &st) < 0)
		return fail(reason, reason_len, -errno, "fstat: %s", strerror(errno));
	if (!S_ISREG(st.st_mode))
		FAIL("not a regular file");
	img->file_size = (uint64_t)st.st_size;

	memset(h, 0, sizeof(h));
	n = pread_full(fd, h, sizeof(h), 0);
	if (n < 0)
		return fail(reason, reason_len, (int)n, "read header: %s", strerror((int)-n));
	if (n < QCOW2_V2_HEADER_LEN)
		FAIL("truncated header (%zd bytes)", n);
	if (get_be32(h) != QCOW2_MAGIC)
		FAIL("bad magic 0x%08x", get_be32(h));
	img->version = get_be32(h + 4);
	if (img->version != 2 && img->version != 3)
		FAIL("unsupported version %u", img->version);
	backing_off = get_be64(h + 8);
	backing_len = get_be32(h + 16);
	img->cluster_bits = get_be32(h + 20);
	if (img->cluster_bits < QCOW2_MIN_CLUSTER_BITS ||
	    img->cluster_bits > QCOW2_MAX_CLUSTER_BITS)
		FAIL("cluster_bits %u outside %d..%d", img->cluster_bits, QCOW2_MIN_CLUSTER_BITS,
		     QCOW2_MAX_CLUSTER_BITS);
	cs = img->cluster_size = 1ULL << img->cluster_bits;
	img->virtual_size = get_be64(h + 24);
	crypt = get_be32(h + 32);
	img->l1_size = get_be32(h + 36);
	img->l1_offset = get_be64(h + 40);
	img->reftable_offset = get_be64(h + 48);
	rt_clusters = get_be32(h + 56);
	nb_snap = get_be32(h + 60);
	snap_off = get_be64(h + 64);

	if (img->version == 3) {
		if (n < QCOW2_V3_HEADER_LEN)
			FAIL("truncated v3 header (%zd bytes)", n);
		img->incompatible = get_be64(h + 72);
		refcount_order = get_be32(h + 96);
		header_len = get_be32(h + 100);
		if (header_len < QCOW2_V3_HEADER_LEN)
			FAIL("header_length %u too small", header_len);
		if (header_len > cs)
			FAIL("header_length %u outside the first cluster", header_len);
		if (header_len > img->file_size)
			FAIL("truncated header (%llu of %u bytes)",
			     (unsigned long long)img->file_size, header_len);
		if (header_len > QCOW2_V3_HEADER_LEN)
			compression = h[104];
	} else {
		refcount_order = 4;
		header_len = QCOW2_V2_HEADER_LEN;
	}

	if (crypt != 0)
		FAIL("encrypted image (method %u)", crypt);
	if (img->incompatible & QCOW2_INCOMPAT_CORRUPT)
		FAIL("image is marked corrupt");
	if (img->incompatible & QCOW2_INCOMPAT_DATA_FILE)
		FAIL("image uses an external data file");
	if (img->incompatible & ~QCOW2_INCOMPAT_KNOWN)
		FAIL("unknown incompatible features 0x%llx",
		     (unsigned long long)(img->incompatible & ~QCOW2_INCOMPAT_KNOWN));
	if (compression > QCOW2_COMPRESSION_ZSTD)
		FAIL("unknown compression type %u", compression);
	if ((compression != 0) != !!(img->incompatible & QCOW2_INCOMPAT_COMPRESSION))
		FAIL("compression type %u does not match the compression feature bit", compression);
	img->compression = compression;
	img->extended_l2 = !!(img->incompatible & QCOW2_INCOMPAT_EXTL2);
	if (img->extended_l2 && img->cluster_bits < 14)
		FAIL("extended L2 entries with %llu-byte clusters (subclusters under 512 bytes)",
		     (unsigned long long)cs);
	if (refcount_order > QCOW2_MAX_REFCOUNT_ORDER)
		FAIL("refcount_order %u > %d", refcount_order, QCOW2_MAX_REFCOUNT_ORDER);

	/* Refcount table: snapfs never uses it to read, but a sane image has
	 * one, aligned and inside the file. */
	img->reftable_bytes = (uint64_t)rt_clusters << img->cluster_bits;
	if (rt_clusters == 0 || img->reftable_offset == 0)
		FAIL("no refcount table");
	if (img->reftable_bytes > QCOW2_MAX_REFTABLE_BYTES)
		FAIL("refcount table too large (%u clusters)", rt_clusters);
	if (img->reftable_offset & (cs - 1))
		FAIL("refcount table offset 0x%llx unaligned",
		     (unsigned long long)img->reftable_offset);
	if (img->reftable_offset > img->file_size ||
	    img->reftable_bytes > img->file_size - img->reftable_offset)
		FAIL("refcount table past EOF");

	if (nb_snap > QCOW2_MAX_SNAPSHOTS)
		FAIL("too many internal snapshots (%u)", nb_snap);
	if (snap_off & (cs - 1))
		FAIL("snapshot table offset 0x%llx invalid", (unsigned long long)snap_off);
	ret = snapshot_table_check(fd, img->file_size, snap_off, nb_snap, reason, reason_len);
	if (ret < 0)
		return ret;

	/* Virtual size and L1 table. */
	if (img->virtual_size > QCOW2_MAX_VIRTUAL_SIZE)
		FAIL("absurd virtual size %llu", (unsigned long long)img->virtual_size);
	img->l2_bits = img->cluster_bits - (img->extended_l2 ? 4 : 3);
	shift = img->cluster_bits + img->l2_bits;
	needed = (img->virtual_size >> shift) + ((img->virtual_size & ((1ULL << shift) - 1)) != 0);
	if ((uint64_t)img->l1_size > QCOW2_MAX_L1_BYTES / 8)
		FAIL("L1 table too large (%u entries)", img->l1_size);
	if (needed > img->l1_size)
		FAIL("L1 table too small for the virtual size (%u < %llu entries)", img->l1_size,
		     (unsigned long long)needed);
	img->l1_used = (uint32_t)needed;
	/* The L1 table covers the header's size; what is read stops at the last
	 * whole sector, as in qemu (1000001 bytes in the header read as 999936). */
	img->virtual_size &= ~(uint64_t)511;
	l1_bytes = (uint64_t)img->l1_size * 8;
	if (img->l1_size) {
		if (img->l1_offset & (cs - 1))
			FAIL("L1 table offset 0x%llx unaligned",
			     (unsigned long long)img->l1_offset);
		if (img->l1_offset == 0)
			FAIL("L1 table overlaps the header");
		if (img->l1_offset > img->file_size || l1_bytes > img->file_size - img->l1_offset)
			FAIL("L1 table past EOF");
	}

	/* Compressed cluster descriptor layout. */
	img->csize_shift = 62 - (img->cluster_bits - 8);
	img->csize_mask = (1ULL << (img->cluster_bits - 8)) - 1;
	img->coffset_mask = (1ULL << img->csize_shift) - 1;

	/* Backing file name. */
	if (backing_off) {
		if (backing_len == 0 || backing_len > QCOW2_MAX_BACKING_NAME)
			FAIL("backing file name length %u invalid", backing_len);
		if (backing_off > cs || backing_len > cs - backing_off)
			FAIL("backing file name outside the first cluster");
		if (backing_off + backing_len > img->file_size)
			FAIL("backing file name past EOF");
		n = pread_full(fd, img->backing_name, backing_len, backing_off);
		if (n < 0)
			return fail(reason, reason_len, (int)n, "read backing name: %s",
				    strerror((int)-n));
		if (n != backing_len)
			FAIL("backing file name past EOF");
		img->backing_name[backing_len] = '\0';
		if (strlen(img->backing_name) != backing_len)
			FAIL("backing file name contains a NUL byte");
		img->has_backing = true;
	}

	/* Header extensions, between the header and the backing name (or the
	 * end of the first cluster). */
	ext_end = backing_off ? backing_off : cs;
	if (ext_end > header_len) {
		ebuf = calloc(1, ext_end);
		if (!ebuf)
			return fail(reason, reason_len, -ENOMEM, "out of memory");
		n = pread_full(fd, ebuf, ext_end, 0);
		if (n < 0) {
			free(ebuf);
			return fail(reason, reason_len, (int)n, "read header extensions: %s",
				    strerror((int)-n));
		}
		ret = parse_extensions(img, ebuf, header_len, ext_end, reason, reason_len);
		free(ebuf);
		if (ret < 0)
			return ret;
	}
	if (!img->has_backing)
		img->backing_format_known = false;
	return 0;
}

/* ---- table walk ---- */

struct map_state {
	const struct qcow2_image *img;
	uint64_t file_size; /* img's, asked again when it falls short */
	qcow2_run_fn fn;
	void *opaque;
	struct qcow2_run cur;
	bool have;
};

static int map_flush(struct map_state *st)
{
	int ret = 0;

	if (st->have)
		ret = st->fn(st->opaque, &st->cur);
	st->have = false;
	return ret;
}

static int map_emit(struct map_state *st, enum qcow2_run_kind kind, uint64_t start, uint64_t len,
		    bool has_host, uint64_t host, uint32_t csize)
{
	struct qcow2_run *c = &st->cur;
	int ret;

	if (len == 0)
		return 0;
	if (st->have && c->kind == kind && c->start + c->length == start) {
		if (kind == QCOW2_RUN_UNALLOCATED) {
			c->length += len;
			return 0;
		}
		if (kind == QCOW2_RUN_DATA && c->host + c->length == host) {
			c->length += len;
			return 0;
		}
		if (kind == QCOW2_RUN_ZERO || kind == QCOW2_RUN_ZERO_DATA) {
			if (!(c->has_host && has_host && c->host + c->length == host))
				c->has_host = false;
			c->length += len;
			return 0;
		}
	}
	ret = map_flush(st);
	if (ret < 0)
		return ret;
	c->kind = kind;
	c->start = start;
	c->length = len;
	c->has_host = has_host;
	c->host = host;
	c->csize = csize;
	st->have = true;
	return 0;
}

/* Whether [off, off + len) lies within the file. A file may grow while it
 * is mapped (qemu-img commit writing into the file under an overlay being
 * merged, which other snapshots' chains hold: qemu writes a new cluster
 * before the table entry that points to it): its size is asked again
 * before saying no. A hostile image's size does not change. */
static bool within_file(struct map_state *st, uint64_t off, uint64_t len)
{
	struct stat sb;

	if (off <= st->file_size && len <= st->file_size - off)
		return true;
	if (fstat(st->img->fd, &sb) == 0 && (uint64_t)sb.st_size > st->file_size)
		st->file_size = (uint64_t)sb.st_size;
	return off <= st->file_size && len <= st->file_size - off;
}

/* Data at host for len bytes; the part past EOF reads as zeros. */
static int map_emit_data(struct map_state *st, uint64_t start, uint64_t len, uint64_t host)
{
	uint64_t fsz = st->file_size;
	uint64_t avail = host < fsz ? fsz - host : 0;
	uint64_t d = len < avail ? len : avail;
	int ret;

	ret = map_emit(st, QCOW2_RUN_DATA, start, d, true, host, 0);
	if (ret == 0)
		ret = map_emit(st, QCOW2_RUN_ZERO_DATA, start + d, len - d, true, host + d, 0);
	return ret;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Check the L1 table and the placement of every L2 table. */
static int check_l1(struct map_state *st, const uint64_t *l1, char *reason, size_t reason_len)
{
	const struct qcow2_image *img = st->img;
	uint64_t cs = img->cluster_size;
	uint64_t *offs;
	size_t k = 0, i;

	offs = malloc((img->l1_used ? img->l1_used : 1) * sizeof(*offs));
	if (!offs)
		return fail(reason, reason_len, -ENOMEM, "out of memory");
	for (i = 0; i < img->l1_used; i++) {
		uint64_t e = l1[i], off = e & QCOW2_OFFSET_MASK;

		if (e & QCOW2_L1E_RESERVED) {
			free(offs);
			FAIL("L1 entry %zu has reserved bits set (0x%016llx)", i,
			     (unsigned long long)e);
		}
		if (!off)
			continue;
		if (off & (cs - 1)) {
			free(offs);
			FAIL("L2 table %zu offset 0x%llx unaligned", i, (unsigned long long)off);
		}
		if (!within_file(st, off, cs)) {
			free(offs);
			FAIL("L2 table %zu at 0x%llx past EOF", i, (unsigned long long)off);
		}
		if (ranges_overlap(off, cs, img->l1_offset, (uint64_t)img->l1_size * 8) ||
		    ranges_overlap(off, cs, img->reftable_offset, img->reftable_bytes)) {
			free(offs);
			FAIL("L2 table %zu at 0x%llx overlaps the L1 or refcount table", i,
			     (unsigned long long)off);
		}
		offs[k++] = off;
	}
	qsort(offs, k, sizeof(*offs), cmp_u64);
	for (i = 1; i < k; i++) {
		if (offs[i] == offs[i - 1]) {
			uint64_t dup = offs[i];

			free(offs);
			FAIL("L2 table at 0x%llx used by two L1 entries", (unsigned long long)dup);
		}
	}
	free(offs);
	return 0;
}

/* One L2 table covering virtual [vstart, vend). */
static int map_l2(struct map_state *st, const uint8_t *l2, uint64_t vstart, uint64_t vend,
		  char *reason, size_t reason_len)
{
	const struct qcow2_image *img = st->img;
	uint64_t cs = img->cluster_size;
	uint64_t sc = cs / 32;
	uint64_t reserved = QCOW2_L2E_RESERVED;
	size_t esz = img->extended_l2 ? 16 : 8;
	size_t j;
	int ret;

	if (img->version == 2 || img->extended_l2)
		reserved |= L2E_ZERO;
	for (j = 0; vstart + j * cs < vend; j++) {
		uint64_t cstart = vstart + j * cs;
		uint64_t clen = vend - cstart < cs ? vend - cstart : cs;
		uint64_t e = get_be64(l2 + j * esz);
		uint64_t bm = img->extended_l2 ? get_be64(l2 + j * esz + 8) : 0;
		uint64_t off;

		if (e & L2E_COMPRESSED) {
			uint64_t coff = e & img->coffset_mask;
			uint64_t nsec = ((e >> img->csize_shift) & img->csize_mask) + 1;
			uint64_t csize = nsec * 512 - (coff & 511);

			/* A compressed cluster's subcluster bitmap means nothing:
			 * qemu ignores it, so does snapfs. */
			if (coff >> 56)
				FAIL("compressed cluster at 0x%llx: offset too large",
				     (unsigned long long)cstart);
			if (coff < cs)
				FAIL("compressed cluster at 0x%llx inside the header",
				     (unsigned long long)cstart);
			/* A descriptor may run past the end of the file, whose
			 * bytes there read as zeros (as in qemu): the cluster reads
			 * if its compressed stream ends before. */
			ret = map_emit(st, QCOW2_RUN_COMPRESSED, cstart, clen, true, coff,
				       (uint32_t)csize);
			if (ret < 0)
				return ret;
			continue;
		}
		if (e & reserved)
			FAIL("L2 entry for 0x%llx has reserved bits set (0x%016llx)",
			     (unsigned long long)cstart, (unsigned long long)e);
		off = e & QCOW2_OFFSET_MASK;
		if (off & (cs - 1))
			FAIL("cluster offset 0x%llx unaligned", (unsigned long long)off);
		if (!img->extended_l2) {
			if (e & L2E_ZERO)
				ret = map_emit(st, QCOW2_RUN_ZERO, cstart, clen, off != 0, off, 0);
			else if (!off)
				ret = map_emit(st, QCOW2_RUN_UNALLOCATED, cstart, clen, false, 0,
					       0);
			else if (!within_file(st, off, 1))
				FAIL("data cluster for 0x%llx at 0x%llx past EOF",
				     (unsigned long long)cstart, (unsigned long long)off);
			else
				ret = map_emit_data(st, cstart, clen, off);
			if (ret < 0)
				return ret;
			continue;
		}
		/* Extended L2: 32 subclusters. */
		uint32_t alloc = (uint32_t)bm, zero = (uint32_t)(bm >> 32);

		if (alloc & zero)
			FAIL("cluster at 0x%llx has subclusters both allocated and zero",
			     (unsigned long long)cstart);
		if (alloc && !off)
			FAIL("cluster at 0x%llx has allocated subclusters but no host cluster",
			     (unsigned long long)cstart);
		if (alloc && !within_file(st, off, 1))
			FAIL("data cluster for 0x%llx at 0x%llx past EOF",
			     (unsigned long long)cstart, (unsigned long long)off);
		if (!alloc && !zero) {
			ret = map_emit(st, QCOW2_RUN_UNALLOCATED, cstart, clen, false, 0, 0);
		} else if (alloc == 0xffffffffU) {
			ret = map_emit_data(st, cstart, clen, off);
		} else if (zero == 0xffffffffU) {
			ret = map_emit(st, QCOW2_RUN_ZERO, cstart, clen, off != 0, off, 0);
		} else {
			ret = 0;
			for (unsigned s = 0; s < 32 && ret == 0; s++) {
				uint64_t sstart = cstart + s * sc;
				uint64_t slen;

				if (sstart >= cstart + clen)
					break;
				slen = cstart + clen - sstart < sc ? cstart + clen - sstart : sc;
				if (alloc & (1U << s))
					ret = map_emit_data(st, sstart, slen, off + s * sc);
				else if (zero & (1U << s))
					ret = map_emit(st, QCOW2_RUN_ZERO, sstart, slen, off != 0,
						       off + s * sc, 0);
				else
					ret = map_emit(st, QCOW2_RUN_UNALLOCATED, sstart, slen,
						       false, 0, 0);
			}
		}
		if (ret < 0)
			return ret;
	}
	return 0;
}

int qcow2_image_map(const struct qcow2_image *img, qcow2_run_fn fn, void *opaque, char *reason,
		    size_t reason_len)
{
	struct map_state st = {.img = img, .file_size = img->file_size, .fn = fn, .opaque = opaque};
	uint64_t cs = img->cluster_size;
	uint64_t coverage = cs << img->l2_bits;
	uint64_t *l1 = NULL;
	uint8_t *l2 = NULL;
	uint8_t *raw = NULL;
	ssize_t n;
	int ret = 0;
	size_t i;

	if (img->l1_used == 0)
		return 0;
	raw = malloc((size_t)img->l1_used * 8);
	l1 = malloc((size_t)img->l1_used * sizeof(*l1));
	l2 = malloc(cs);
	if (!raw || !l1 || !l2) {
		ret = fail(reason, reason_len, -ENOMEM, "out of memory");
		goto out;
	}
	n = pread_full(img->fd, raw, (size_t)img->l1_used * 8, img->l1_offset);
	if (n < 0) {
		ret = fail(reason, reason_len, (int)n, "read L1 table: %s", strerror((int)-n));
		goto out;
	}
	if ((size_t)n != (size_t)img->l1_used * 8) {
		ret = fail(reason, reason_len, -EIO, "L1 table past EOF");
		goto out;
	}
	for (i = 0; i < img->l1_used; i++)
		l1[i] = get_be64(raw + i * 8);
	ret = check_l1(&st, l1, reason, reason_len);
	if (ret < 0)
		goto out;

	for (i = 0; i < img->l1_used; i++) {
		uint64_t vstart = (uint64_t)i * coverage;
		uint64_t vend = img->virtual_size - vstart < coverage ? img->virtual_size
								      : vstart + coverage;
		uint64_t off = l1[i] & QCOW2_OFFSET_MASK;

		if (!off) {
			ret = map_emit(&st, QCOW2_RUN_UNALLOCATED, vstart, vend - vstart, false, 0,
				       0);
		} else {
			n = pread_full(img->fd, l2, cs, off);
			if (n < 0) {
				ret = fail(reason, reason_len, (int)n, "read L2 table: %s",
					   strerror((int)-n));
				goto out;
			}
			if ((uint64_t)n != cs) {
				ret = fail(reason, reason_len, -EIO, "L2 table past EOF");
				goto out;
			}
			ret = map_l2(&st, l2, vstart, vend, reason, reason_len);
		}
		if (ret < 0)
			goto out;
	}
	ret = map_flush(&st);
out:
	free(raw);
	free(l1);
	free(l2);
	return ret;
}

/* ---- decompression ---- */

int qcow2_cluster_decompress(struct qcow2_dctx *ctx, enum qcow2_compression type, const void *in,
			     size_t in_len, void *out, size_t cluster_size)
{
	if (type == QCOW2_COMPRESSION_ZLIB) {
		z_stream *zs = ctx->zlib;
		int ret;

		if (!zs) {
			zs = calloc(1, sizeof(*zs));
			if (!zs)
				return -ENOMEM;
			/* qemu deflates with a 4 KiB window (-12); -15
			 * inflates that and anything smaller. */
			if (inflateInit2(zs, -15) != Z_OK) {
				free(zs);
				return -ENOMEM;
			}
			ctx->zlib = zs;
		} else if (inflateReset(zs) != Z_OK) {
			return -EIO;
		}
		zs->next_in = (Bytef *)(uintptr_t)in;
		zs->avail_in = (uInt)in_len;
		zs->next_out = out;
		zs->avail_out = (uInt)cluster_size;
		ret = inflate(zs, Z_FINISH);
		if ((ret == Z_STREAM_END || ret == Z_BUF_ERROR || ret == Z_OK) &&
		    zs->avail_out == 0)
			return 0;
		return -EIO;
	}
	if (type == QCOW2_COMPRESSION_ZSTD) {
		ZSTD_DCtx *d = ctx->zstd;
		ZSTD_inBuffer ib = {in, in_len, 0};
		ZSTD_outBuffer ob = {out, cluster_size, 0};

		if (!d) {
			d = ZSTD_createDCtx();
			if (!d)
				return -ENOMEM;
			/* Bound the window a hostile frame may ask for. */
			ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, 23);
			ctx->zstd = d;
		} else {
			ZSTD_DCtx_reset(d, ZSTD_reset_session_only);
		}
		while (ob.pos < ob.size) {
			size_t in_before = ib.pos, out_before = ob.pos;
			size_t r = ZSTD_decompressStream(d, &ob, &ib);

			if (ZSTD_isError(r))
				return -EIO;
			if (ob.pos == ob.size)
				break;
			if (r == 0 || (ib.pos == in_before && ob.pos == out_before))
				return -EIO;
		}
		return 0;
	}
	return -EIO;
}

void qcow2_dctx_free(struct qcow2_dctx *ctx)
{
	if (ctx->zlib) {
		inflateEnd(ctx->zlib);
		free(ctx->zlib);
		ctx->zlib = NULL;
	}
	if (ctx->zstd) {
		ZSTD_freeDCtx(ctx->zstd);
		ctx->zstd = NULL;
	}
}

/* ---- probe ---- */

int qcow2_probe(int dirfd, const char *name, struct image_info *info)
{
	struct qcow2_image img;
	struct stat st;
	uint8_t magic[4];
	ssize_t n;
	int fd, ret;

	memset(info, 0, sizeof(*info));
	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		ret = -errno;
		snprintf(info->reason, sizeof(info->reason), "open: %s", strerror(errno));
		return ret;
	}
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		snprintf(info->reason, sizeof(info->reason), "fstat: %s", strerror(errno));
		goto out;
	}
	info->file_size = (uint64_t)st.st_size;
	if (!S_ISREG(st.st_mode)) {
		snprintf(info->reason, sizeof(info->reason), "not a regular file");
		ret = 0;
		goto out;
	}
	n = pread_full(fd, magic, 4, 0);
	if (n < 0) {
		ret = (int)n;
		snprintf(info->reason, sizeof(info->reason), "read: %s", strerror((int)-n));
		goto out;
	}
	ret = 0;
	if (n < 4 || get_be32(magic) != QCOW2_MAGIC) {
		info->format = IMAGE_FORMAT_RAW;
		info->virtual_size = raw_virtual_size(info->file_size);
		info->safe = true;
		goto out;
	}
	info->format = IMAGE_FORMAT_QCOW2;
	ret = qcow2_image_open(&img, fd, name, info->reason, sizeof(info->reason));
	if (ret == -EIO) {
		/* Fill what the header says, where it was read. */
		info->version = img.version;
		info->virtual_size = img.virtual_size;
		ret = 0;
		goto out;
	}
	if (ret < 0)
		goto out;
	info->version = img.version;
	info->virtual_size = img.virtual_size;
	info->cluster_size = (uint32_t)img.cluster_size;
	info->extended_l2 = img.extended_l2;
	info->compression = img.compression;
	info->incompatible_features = img.incompatible;
	info->has_backing = img.has_backing;
	memcpy(info->backing_name, img.backing_name, sizeof(info->backing_name));
	info->backing_format_known = img.backing_format_known;
	info->backing_format = img.backing_format;
	if (img.has_backing && !qcow2_name_is_basename(img.backing_name)) {
		snprintf(info->reason, sizeof(info->reason),
			 "backing file name \"%.100s\" is not a plain basename", img.backing_name);
		goto out;
	}
	info->safe = true;
out:
	close(fd);
	return ret;
}

static int run_ignore(void *opaque, const struct qcow2_run *run)
{
	(void)opaque;
	(void)run;
	return 0;
}

int qcow2_validate(int dirfd, const char *name, struct image_info *info)
{
	struct qcow2_image img;
	int fd, ret;

	ret = qcow2_probe(dirfd, name, info);
	if (ret < 0 || !info->safe || info->format != IMAGE_FORMAT_QCOW2)
		return ret;
	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		ret = -errno;
		snprintf(info->reason, sizeof(info->reason), "open: %s", strerror(errno));
		info->safe = false;
		return ret;
	}
	ret = qcow2_image_open(&img, fd, name, info->reason, sizeof(info->reason));
	if (ret == 0)
		ret = qcow2_image_map(&img, run_ignore, NULL, info->reason, sizeof(info->reason));
	close(fd);
	if (ret < 0) {
		info->safe = false;
		if (ret == -EIO)
			ret = 0;
	}
	return ret;
}

/* ---- overlay writer ---- */

#define OV_CLUSTER_BITS 16
#define OV_CLUSTER_SIZE (1U << OV_CLUSTER_BITS)
#define OV_HEADER_LEN 112

static int fsync_dir(int dirfd)
{
	int fd = dirfd, ret = 0;

	if (dirfd == AT_FDCWD) {
		fd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			return -errno;
	}
	if (fsync(fd) < 0)
		ret = -errno;
	if (fd != dirfd)
		close(fd);
	return ret;
}

struct feature_name {
	uint8_t type, bit;
	const char *name;
};

static const struct feature_name ov_features[] = {
	{0, 0, "dirty bit"},	    {0, 1, "corrupt bit"},	   {0, 2, "external data file"},
	{0, 3, "compression type"}, {0, 4, "extended L2 entries"}, {1, 0, "lazy refcounts"},
	{2, 0, "bitmaps"},	    {2, 1, "raw external data"},
};

/* An overlay's bytes: cluster 0 (header, extensions, backing name), the
 * refcount table in cluster 1, its one block in cluster 2, and the L1 table
 * (zeros) up to size. */
struct overlay_image {
	uint8_t hdr[4096];
	size_t hdr_len;
	uint8_t rt[8];
	uint8_t *rb; /* the refcount block's used part */
	size_t rb_len;
	uint64_t size;
};

/* Lay out the overlay for name of virtual_size bytes (not 0) on backing_name
 * of format backing_fmt. 0, -EINVAL or -ENOMEM; free img->rb after. */
static int overlay_build(const char *name, const char *backing_name,
			 enum image_format backing_fmt, uint64_t virtual_size,
			 struct overlay_image *img)
{
	const uint64_t cs = OV_CLUSTER_SIZE;
	const uint64_t coverage = cs * (cs / 8);
	uint8_t *hdr = img->hdr;
	uint64_t l1_size, l1_clusters, nclusters, off;
	const char *fmt = image_format_name(backing_fmt);
	size_t blen, flen, k;

	img->rb = NULL;
	if (!qcow2_name_is_basename(name) || !qcow2_name_is_basename(backing_name) ||
	    (backing_fmt != IMAGE_FORMAT_RAW && backing_fmt != IMAGE_FORMAT_QCOW2))
		return -EINVAL;
	if (!strcmp(name, backing_name))
		return -EINVAL;
	if (virtual_size == 0 || virtual_size > QCOW2_MAX_VIRTUAL_SIZE)
		return -EINVAL;
	virtual_size = (virtual_size + 511) & ~511ULL;
	l1_size = virtual_size / coverage + (virtual_size % coverage != 0);
	if (l1_size == 0)
		l1_size = 1;
	if (l1_size * 8 > QCOW2_MAX_L1_BYTES)
		return -EINVAL;
	l1_clusters = (l1_size * 8 + cs - 1) / cs;
	nclusters = 3 + l1_clusters; /* header, reftable, refblock, L1 */

	/* Cluster 0: header, extensions, backing name. */
	memset(hdr, 0, sizeof(img->hdr));
	put_be32(hdr + 0, QCOW2_MAGIC);
	put_be32(hdr + 4, 3);
	put_be32(hdr + 20, OV_CLUSTER_BITS);
	put_be64(hdr + 24, virtual_size);
	put_be32(hdr + 36, (uint32_t)l1_size);
	put_be64(hdr + 40, 3 * cs);
	put_be64(hdr + 48, cs);
	put_be32(hdr + 56, 1);
	put_be32(hdr + 96, 4);
	put_be32(hdr + 100, OV_HEADER_LEN);
	off = OV_HEADER_LEN;
	flen = strlen(fmt);
	put_be32(hdr + off, EXT_BACKING_FORMAT);
	put_be32(hdr + off + 4, (uint32_t)flen);
	memcpy(hdr + off + 8, fmt, flen);
	off += 8 + ((flen + 7) & ~7UL);
	put_be32(hdr + off, EXT_FEATURE_TABLE);
	put_be32(hdr + off + 4, (uint32_t)(48 * (sizeof(ov_features) / sizeof(ov_features[0]))));
	off += 8;
	for (k = 0; k < sizeof(ov_features) / sizeof(ov_features[0]); k++) {
		hdr[off] = ov_features[k].type;
		hdr[off + 1] = ov_features[k].bit;
		strncpy((char *)hdr + off + 2, ov_features[k].name, 46);
		off += 48;
	}
	off += 8; /* end of extensions */
	blen = strlen(backing_name);
	put_be64(hdr + 8, off);
	put_be32(hdr + 16, (uint32_t)blen);
	memcpy(hdr + off, backing_name, blen);
	off += blen;
	img->hdr_len = off;

	/* Cluster 1: the refcount table; cluster 2: its one block. */
	put_be64(img->rt, 2 * cs);
	img->rb = calloc(nclusters, 2);
	if (!img->rb)
		return -ENOMEM;
	for (k = 0; k < nclusters; k++)
		put_be16(img->rb + 2 * k, 1);
	img->rb_len = nclusters * 2;
	img->size = nclusters * cs;
	return 0;
}

static int overlay_put(int fd, const struct overlay_image *img)
{
	int ret = pwrite_full(fd, img->hdr, img->hdr_len, 0);

	if (ret == 0)
		ret = pwrite_full(fd, img->rt, sizeof(img->rt), OV_CLUSTER_SIZE);
	if (ret == 0)
		ret = pwrite_full(fd, img->rb, img->rb_len, 2 * OV_CLUSTER_SIZE);
	if (ret == 0 && ftruncate(fd, (off_t)img->size) < 0)
		ret = -errno;
	return ret;
}

int qcow2_overlay_write(int fd, const char *name, const char *backing_name,
			enum image_format backing_fmt, uint64_t virtual_size)
{
	struct overlay_image img;
	int ret = overlay_build(name, backing_name, backing_fmt, virtual_size, &img);

	if (ret == 0)
		ret = overlay_put(fd, &img);
	if (ret < 0 && ret != -EINVAL)
		log_err("qcow2: write overlay %s: %s", name, strerror(-ret));
	free(img.rb);
	return ret;
}

int qcow2_overlay_create(int dirfd, const char *name, const char *backing_name,
			 enum image_format backing_fmt, uint64_t virtual_size, mode_t mode)
{
	struct overlay_image img;
	int fd, ret;

	if (!qcow2_name_is_basename(name) || !qcow2_name_is_basename(backing_name) ||
	    (backing_fmt != IMAGE_FORMAT_RAW && backing_fmt != IMAGE_FORMAT_QCOW2))
		return -EINVAL;
	if (!strcmp(name, backing_name))
		return -EINVAL;
	if (virtual_size == 0) {
		struct image_info bi;

		ret = qcow2_probe(dirfd, backing_name, &bi);
		if (ret < 0) {
			log_err("qcow2: overlay %s: backing file %s: %s", name, backing_name,
				bi.reason);
			return ret;
		}
		if (!bi.safe || bi.format != backing_fmt) {
			log_err("qcow2: overlay %s: backing file %s: %s", name, backing_name,
				bi.safe ? "format differs" : bi.reason);
			return -EIO;
		}
		virtual_size = bi.virtual_size;
	}
	ret = overlay_build(name, backing_name, backing_fmt, virtual_size, &img);
	if (ret < 0) {
		free(img.rb);
		return ret;
	}
	fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0) {
		ret = -errno;
		if (ret != -EEXIST)
			log_err("qcow2: create overlay %s: %s", name, strerror(-ret));
		free(img.rb);
		return ret;
	}
	ret = overlay_put(fd, &img);
	if (ret == 0 && fsync(fd) < 0)
		ret = -errno;
	if (close(fd) < 0 && ret == 0)
		ret = -errno;
	if (ret == 0)
		ret = fsync_dir(dirfd);
	free(img.rb);
	if (ret < 0) {
		log_err("qcow2: write overlay %s: %s", name, strerror(-ret));
		unlinkat(dirfd, name, 0);
	}
	return ret;
}
