/* qcow2.h - the only code in snapfs that parses qcow2 images.
 *
 * This module checks headers, walks L1/L2 tables (standard and extended L2
 * entries), decodes compressed cluster descriptors, decompresses clusters
 * (zlib, zstd) and writes fresh overlays. It never follows a backing file
 * name found in a header: chain.c decides which files make a chain.
 *
 * Conventions: functions return 0 (or a count) on success and a negative
 * errno on failure, never exit or abort on bad input. A corrupt or hostile
 * image is -EIO. Functions that take a "reason" buffer fill it with a short
 * human readable cause and do not log; the caller logs one line naming the
 * file. Functions that do not take one log a single log_err line per -EIO.
 *
 * Threading: an opened struct qcow2_image is immutable and may be shared by
 * threads; a struct qcow2_dctx belongs to one thread at a time.
 */
#ifndef SNAPFS_QCOW2_H
#define SNAPFS_QCOW2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* qemu's limits, which snapfs also enforces. */
#define QCOW2_MIN_CLUSTER_BITS 9
#define QCOW2_MAX_CLUSTER_BITS 21
#define QCOW2_MAX_L1_BYTES (32u << 20)
#define QCOW2_MAX_REFTABLE_BYTES (8u << 20)
#define QCOW2_MAX_BACKING_NAME 1023
#define QCOW2_MAX_SNAPSHOTS 65536
#define QCOW2_MAX_SNAPSHOT_EXTRA 1024 /* bytes of extra data in one entry */
#define QCOW2_MAX_SNAPSHOTS_BYTES (1024u * QCOW2_MAX_SNAPSHOTS) /* the whole table */
#define QCOW2_MAX_REFCOUNT_ORDER 6
/* Largest virtual size snapfs accepts for any layer or chain (2^61 bytes,
 * the most a qcow2 L1 table within qemu's limit can describe). */
#define QCOW2_MAX_VIRTUAL_SIZE (1ULL << 61)

/* Header feature bits. */
#define QCOW2_INCOMPAT_DIRTY (1ULL << 0)
#define QCOW2_INCOMPAT_CORRUPT (1ULL << 1)
#define QCOW2_INCOMPAT_DATA_FILE (1ULL << 2)
#define QCOW2_INCOMPAT_COMPRESSION (1ULL << 3)
#define QCOW2_INCOMPAT_EXTL2 (1ULL << 4)
#define QCOW2_INCOMPAT_KNOWN 0x1fULL

/* Reserved bits of table entries (must be zero). */
#define QCOW2_L1E_RESERVED 0x7f000000000001ffULL
#define QCOW2_L2E_RESERVED 0x3f000000000001feULL
#define QCOW2_OFFSET_MASK 0x00fffffffffffe00ULL

enum image_format {
	IMAGE_FORMAT_RAW = 0,
	IMAGE_FORMAT_QCOW2 = 1,
};

enum qcow2_compression {
	QCOW2_COMPRESSION_ZLIB = 0,
	QCOW2_COMPRESSION_ZSTD = 1,
};

/* The virtual size of a raw file of file_size bytes: rounded up to a whole
 * sector, the tail past the end reading as zeros, as in qemu. */
static inline uint64_t raw_virtual_size(uint64_t file_size)
{
	return file_size > UINT64_MAX - 511 ? file_size : (file_size + 511) & ~(uint64_t)511;
}

/* What qcow2_probe() learns about one file. */
struct image_info {
	enum image_format format;
	uint64_t virtual_size; /* bytes, as qemu has them (raw_virtual_size()) */
	uint64_t file_size; /* st_size */
	uint32_t version; /* 2 or 3; 0 for raw */
	uint32_t cluster_size; /* 0 for raw */
	bool extended_l2;
	enum qcow2_compression compression;
	uint64_t incompatible_features;
	bool has_backing;
	char backing_name[QCOW2_MAX_BACKING_NAME + 1];
	bool backing_format_known; /* a backing format extension exists */
	enum image_format backing_format;
	bool safe; /* snapfs would read this file */
	char reason[192]; /* why not, when !safe; else "" */
};

/* An opened, header-checked qcow2 file. Filled by qcow2_image_open(). */
struct qcow2_image {
	int fd; /* not owned */
	const char *name; /* for log lines; not owned */
	uint64_t file_size;
	uint32_t version;
	uint32_t cluster_bits;
	uint64_t cluster_size;
	uint64_t virtual_size;
	uint64_t incompatible;
	uint32_t l1_size; /* entries in the header */
	uint32_t l1_used; /* entries that cover virtual_size */
	uint64_t l1_offset;
	uint64_t reftable_offset;
	uint64_t reftable_bytes;
	uint32_t l2_bits; /* log2 of entries per L2 table */
	bool extended_l2;
	enum qcow2_compression compression;
	uint32_t csize_shift; /* compressed descriptor layout */
	uint64_t csize_mask;
	uint64_t coffset_mask;
	bool has_backing;
	char backing_name[QCOW2_MAX_BACKING_NAME + 1];
	bool backing_format_known;
	enum image_format backing_format;
};

/* Kinds of run reported by qcow2_image_map(). */
enum qcow2_run_kind {
	QCOW2_RUN_UNALLOCATED = 0, /* read from the backing file */
	QCOW2_RUN_DATA, /* bytes at file offset host */
	QCOW2_RUN_ZERO, /* reads as zeros (host valid if has_host) */
	QCOW2_RUN_COMPRESSED, /* one whole compressed cluster */
	QCOW2_RUN_ZERO_DATA, /* allocated past the end of the file: reads as
			      * zeros, yet is data (qemu-img map: zero and data) */
};

struct qcow2_run {
	uint64_t start; /* virtual offset */
	uint64_t length;
	enum qcow2_run_kind kind;
	bool has_host;
	uint64_t host; /* DATA/ZERO: file offset of start;
			* COMPRESSED: offset of compressed bytes */
	uint32_t csize; /* COMPRESSED: bytes to read at host */
};

/* Called for each run in increasing virtual order, covering exactly
 * [0, virtual_size). Return 0 to go on, or a negative errno to stop
 * (qcow2_image_map then returns it). */
typedef int (*qcow2_run_fn)(void *opaque, const struct qcow2_run *run);

/* Per-thread decompression state; zero-initialise, then free with
 * qcow2_dctx_free(). */
struct qcow2_dctx {
	void *zlib; /* z_stream *, created on first use */
	void *zstd; /* ZSTD_DCtx *, created on first use */
};

/* Read and check the header of the qcow2 file open at fd (name is only
 * used for messages). Checks magic, version, cluster size, header length,
 * backing name placement and length, feature bits (encryption, external
 * data file, corrupt and unknown incompatible bits are refused; dirty is
 * fine), compression type, refcount order and table, snapshot table, L1
 * size and placement, and the virtual size. Fills *img.
 * Returns 0, -EIO (hostile or unsupported image; reason filled) or
 * another -errno on I/O failure (reason filled). Does not log.
 * Thread-safe (uses pread only). */
int qcow2_image_open(struct qcow2_image *img, int fd, const char *name, char *reason,
		     size_t reason_len);

/* Walk the L1 and L2 tables of an opened image and report its layout as
 * runs to fn, coalescing adjacent runs of the same kind (data runs only
 * when contiguous in the file). Sparse L1 entries are skipped without I/O.
 * Checks reserved bits of L1/L2 entries, alignment and placement of L2
 * tables (inside the file, not over the header, L1 or refcount table, not
 * shared by two L1 entries), data clusters starting inside the file,
 * subclusters that are both allocated and zero, and compressed
 * descriptors that point past EOF. Data runs that reach past EOF are cut
 * at EOF, the tail reported as ZERO (that is how they read).
 * Returns 0, -EIO with reason filled, -ENOMEM, or fn's error.
 * Thread-safe for distinct callers (pread only). Does not log. */
int qcow2_image_map(const struct qcow2_image *img, qcow2_run_fn fn, void *opaque, char *reason,
		    size_t reason_len);

/* Decompress one cluster: in/in_len are the bytes of a compressed
 * descriptor (in_len = csize), out receives exactly cluster_size bytes.
 * Returns 0 or -EIO (corrupt stream, or it does not fill the cluster),
 * -ENOMEM. ctx is per thread. Does not log. */
int qcow2_cluster_decompress(struct qcow2_dctx *ctx, enum qcow2_compression type, const void *in,
			     size_t in_len, void *out, size_t cluster_size);

/* Free the state in ctx (ctx itself is the caller's). */
void qcow2_dctx_free(struct qcow2_dctx *ctx);

/* Is name a plain basename snapfs accepts as a backing file name:
 * non-empty, <= 1023 bytes, no '/', no NUL, not "." or ".."? */
bool qcow2_name_is_basename(const char *name);

/* Open dirfd/name (O_RDONLY|O_CLOEXEC|O_NOFOLLOW, regular files only),
 * detect raw or qcow2 by magic and fill *info. For qcow2 the header is
 * checked as by qcow2_image_open() (the tables are not walked) and the
 * backing name must be a plain basename; info->safe and info->reason say
 * whether snapfs would read the file.
 * Returns 0 when info is filled (even if !info->safe), or -errno when the
 * file cannot be opened or read (info->reason filled). Thread-safe. */
int qcow2_probe(int dirfd, const char *name, struct image_info *info);

/* qcow2_probe(), then for a qcow2 file that passed, walk its L1/L2 tables
 * with every check chain_open() makes (reserved bits, placement, loops,
 * subclusters, compressed descriptors): info->safe is true only if the
 * whole image would be read. Costs one pass over the image's tables.
 * Returns as qcow2_probe(). Thread-safe. */
int qcow2_validate(int dirfd, const char *name, struct image_info *info);

/* Create dirfd/name as a new qcow2 v3 overlay of virtual_size bytes
 * (rounded up to 512; 0 means the backing file's virtual size) whose
 * backing file is backing_name (a plain basename, in the same directory)
 * of format backing_fmt: 64 KiB clusters, refcount_order 4, no lazy
 * refcounts, a backing format header extension and a feature name table.
 * The file is created with O_CREAT|O_EXCL and mode, written, fsync'd, and
 * dirfd is fsync'd. On any failure the new file is unlinked.
 * Returns 0, -EEXIST, -EINVAL (bad name, size or format), or -errno of
 * the failing call (logged). Thread-safe. */
int qcow2_overlay_create(int dirfd, const char *name, const char *backing_name,
			 enum image_format backing_fmt, uint64_t virtual_size, mode_t mode);

/* The overlay qcow2_overlay_create() writes, written into fd instead: an
 * empty file the caller created (and owns, and fsyncs). virtual_size must
 * not be 0. Returns 0, -EINVAL (bad name, size or format), or -errno of the
 * failing write (logged). For callers that decide themselves how the file is
 * created (the share's owner and mode). Thread-safe. */
int qcow2_overlay_write(int fd, const char *name, const char *backing_name,
			enum image_format backing_fmt, uint64_t virtual_size);

/* "raw" / "qcow2"; and back (returns 0 or -EINVAL). */
const char *image_format_name(enum image_format fmt);
int image_format_parse(const char *s, enum image_format *fmt);

#endif
