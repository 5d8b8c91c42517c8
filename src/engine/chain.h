/* chain.h - a snapshot's resolved, immutable map over a chain of files.
 *
 * The caller names the files of a chain, TOP FIRST (index 0 is the image a
 * reader sees, the last one is the base), as qemu-img info --backing-chain
 * prints them. chain_open() opens each with openat(dirfd, name,
 * O_RDONLY|O_CLOEXEC|O_NOFOLLOW), never follows a backing name found in a
 * header, checks that each qcow2 layer's header names the next file given
 * (a plain basename, with a matching backing format when the header has
 * one) and that the last layer has no backing file, walks every layer's
 * tables once, and resolves the whole chain into one sorted list of
 * extents. After that a read or a seek is a binary search plus preads:
 * the cost does not depend on the chain depth.
 *
 * Threading: a struct chain is immutable after chain_open(); all functions
 * below may be called from many threads at once without locks, except
 * chain_close(), which must not race with any other call on that chain.
 * Compressed clusters are decompressed with per-thread scratch (one cached
 * cluster per thread, freed when the thread exits).
 */
#ifndef SNAPFS_CHAIN_H
#define SNAPFS_CHAIN_H

#include <stddef.h>
#include <stdint.h>

#include "qcow2.h"

/* Deepest chain chain_open() accepts. */
#define CHAIN_MAX_DEPTH 1024

/* Most extents a resolved map (or one layer's map) may hold, 48 bytes
 * each: 32 Mi extents, 1.5 GiB. A sparse image costs a few extents however
 * large its virtual size; only images fragmented into tens of millions of
 * runs reach this, and are refused with -EIO and a log line. */
#define CHAIN_MAX_EXTENTS (1u << 25)

/* The memory bound on maps, process-wide: the extents of every open
 * chain, the maps chain_open() is building (all its intermediate maps
 * too), the ranges chain_ranges_above() returned and not yet freed, and
 * what callers count with chain_memory_take(), together never pass it.
 * A chain whose map alone would pass it is refused with -EIO (a hostile
 * or absurdly fragmented image); one that does not fit beside the maps
 * already held, with -ENOMEM. Both are logged. Outside the bound: per
 * chain_open() in progress, the L1 table of the layer being walked (at
 * most 2 x QCOW2_MAX_L1_BYTES) and one cluster; per reading thread, one
 * decompressed cluster. Default: CHAIN_MEMORY_DEFAULT (1 GiB, about 22
 * Mi extents: a 1.3 TiB disk written in scattered 64 KiB clusters). */
#define CHAIN_MEMORY_DEFAULT (1ULL << 30)

/* Set the bound (0: CHAIN_MEMORY_DEFAULT). A bound below what is held now
 * only refuses later growth. Thread-safe. */
void chain_memory_set_limit(uint64_t bytes);

/* The bound, and the bytes held under it now. Thread-safe. */
uint64_t chain_memory_limit(void);
uint64_t chain_memory_used(void);

/* Count bytes a caller keeps for a map (say, a text form of its ranges)
 * under the bound. Returns 0, or -ENOMEM when they do not fit (nothing
 * counted). chain_memory_put() gives them back. Thread-safe. */
int chain_memory_take(uint64_t bytes);
void chain_memory_put(uint64_t bytes);

struct chain;

/* One file of a chain, as given by the caller. */
struct chain_layer {
	int dirfd; /* directory to open name in (or AT_FDCWD) */
	const char *name; /* a plain basename in dirfd (any path
			   * with AT_FDCWD; only backing names from
			   * headers must be basenames) */
	enum image_format format; /* raw is only allowed as the last layer */
	bool merging; /* a merge under way commits this file's data into the
		       * next layer: it is left out when it is gone, or when the
		       * header above it already names a layer below it */
};

enum chain_extent_kind {
	CHAIN_EXTENT_DATA = 0, /* bytes at (fd, offset) */
	CHAIN_EXTENT_ZERO, /* a zero cluster, or a hole in a raw file */
	CHAIN_EXTENT_HOLE, /* no layer has data: reads as zeros */
	CHAIN_EXTENT_COMPRESSED, /* part of a compressed cluster */
};

/* What chain_extent_get() reports about the extent that holds an offset. */
struct chain_extent {
	enum chain_extent_kind kind;
	uint64_t length; /* bytes from the asked offset to the end of
			  * the extent (never past chain_size()) */
	unsigned depth; /* layer index (0 = top); chain depth for HOLE */
	int fd; /* layer's fd (DATA, ZERO, COMPRESSED), else -1 */
	int data; /* data for SEEK_DATA and maps: DATA, COMPRESSED, and ZERO
		   * for clusters allocated past the end of their file (which
		   * read as zeros; qemu-img map says zero and data) */
	int offset_valid; /* offset below is meaningful */
	uint64_t offset; /* DATA: file offset of the asked byte;
			  * ZERO: preallocated file offset, if valid;
			  * COMPRESSED: file offset of the compressed
			  * bytes of the cluster */
	uint32_t csize; /* COMPRESSED: compressed bytes at offset */
	uint32_t cluster_offset; /* COMPRESSED: the asked byte's offset in
				  * the decompressed cluster */
};

/* Open and resolve a chain of n files, top first. size is the virtual
 * size to expose (0: the top layer's virtual size); bytes past a layer's
 * own virtual size read as zeros, as in qemu.
 * Returns 0 and *out, or -EINVAL (bad arguments: n is 0 or over
 * CHAIN_MAX_DEPTH, raw above the base, size absurd), -EIO (a hostile or
 * corrupt image, or a header that does not name the next file; one
 * log_err line names the file and the reason; also a map that alone would
 * pass the memory bound or CHAIN_MAX_EXTENTS), -ENOMEM (out of memory, or
 * no room beside the maps already held: logged), or the -errno of a
 * failed open/read (logged). The chain owns the fds it opened.
 * Layers marked merging that the files no longer hold (see struct
 * chain_layer) are left out: chain_depth() and chain_layer_name() count
 * only the files opened.
 * Thread-safe (no shared state). */
int chain_open(struct chain **out, const struct chain_layer *layers, size_t n, uint64_t size);

/* Resolve the chain of n files as chain_open() does (the same checks and
 * errors), and set bytes[i] (n entries) to the data bytes of the chain
 * from file i down to the base, within file i's virtual size: what
 * chain_seek() would find as data in a chain opened from layers + i.
 * One pass for every depth; nothing is kept open. Returns 0 or as
 * chain_open(). Thread-safe. */
int chain_data_by_depth(const struct chain_layer *layers, size_t n, uint64_t *bytes);

/* Close the files and free the map. NULL is fine. Not concurrent with
 * other calls on the same chain. */
void chain_close(struct chain *c);

/* The virtual size in bytes. */
uint64_t chain_size(const struct chain *c);

/* Number of layers, and a layer's name as given to chain_open(). */
size_t chain_depth(const struct chain *c);
const char *chain_layer_name(const struct chain *c, unsigned depth);

/* Number of extents in the resolved map (48 bytes each). */
size_t chain_extent_count(const struct chain *c);

/* Read len bytes at virtual offset off into buf. Returns the number of
 * bytes read (short only at the end of the chain; 0 at or past it; at
 * most INT_MAX rounded down to 4 KiB), or -EIO (I/O error, corrupt
 * compressed cluster; logged), -ENOMEM. Thread-safe. */
int chain_read(struct chain *c, void *buf, size_t len, uint64_t off);

/* Describe the extent containing virtual offset off (see struct
 * chain_extent). Returns 0, or -ENXIO when off >= chain_size().
 * Thread-safe. */
int chain_extent_get(const struct chain *c, uint64_t off, struct chain_extent *ext);

/* lseek(2) SEEK_DATA / SEEK_HOLE over the map: data is DATA and
 * COMPRESSED extents (what qemu-img map calls "data": true), zero clusters
 * and holes are holes; the end of the chain is a hole. Returns the offset,
 * -ENXIO when off >= chain_size() or (SEEK_DATA) no data follows, -EINVAL
 * for another whence. Thread-safe. */
int64_t chain_seek(const struct chain *c, uint64_t off, int whence);

/* A byte range of a chain's virtual space. */
struct chain_range {
	uint64_t start, len;
};

/* The ranges whose content comes from the layers above depth (index <
 * depth: data, zero and compressed clusters those layers allocate, the
 * topmost of them winning), sorted, merged when they touch: what differs
 * between the chain and its suffix from depth down. *out (NULL when *n
 * is 0) is counted under the memory bound: free it with
 * chain_ranges_free(). *bytes (may be NULL) is their total length.
 * Returns 0, -EINVAL (depth is 0 or over chain_depth()), -ENOMEM (also
 * when the bound has no room; logged). Thread-safe. */
int chain_ranges_above(const struct chain *c, unsigned depth, struct chain_range **out, size_t *n,
		       uint64_t *bytes);

/* Free the n ranges chain_ranges_above() returned. NULL is fine. */
void chain_ranges_free(struct chain_range *r, size_t n);

/* lseek(2) SEEK_DATA / SEEK_HOLE in a file of size bytes whose data is
 * the n sorted, disjoint ranges r[] and holes elsewhere (the end is a
 * hole). Returns the offset, -ENXIO when off >= size or (SEEK_DATA) no
 * data follows, -EINVAL for another whence. Pure; thread-safe. */
int64_t chain_ranges_seek(const struct chain_range *r, size_t n, uint64_t size, uint64_t off,
			  int whence);

/* Index of the first of the n sorted ranges r[] that ends after off (n
 * when none does). Pure; thread-safe. */
size_t chain_ranges_find(const struct chain_range *r, size_t n, uint64_t off);

#endif
