/* fuzz_chain.c - libFuzzer target for the resolved chain map: extents,
 * SEEK_DATA/SEEK_HOLE, reads of holes, chain_ranges_above() and
 * chain_data_by_depth(), checked against each other.
 *
 * Each input is written to a scratch file "top" (on /dev/shm when there
 * is one) and opened as a chain alone, over a raw base named "base", and
 * over a qcow2 base named "base" (a copy of FUZZ_QCOW2_BASE, a seed
 * image; in its own directory), then once more over the raw base with a
 * virtual size larger than the top's. On every chain that opens, the
 * invariants below must hold; a violation aborts (a crash for libFuzzer):
 *
 *  - extents tile [0, size): each has a length, none reaches past the end,
 *    its kind, depth, fd and data flag agree; raw base data maps 1:1;
 *  - SEEK_DATA/SEEK_HOLE agree with the data runs the extents make, at
 *    every run edge, next to it and at input-chosen offsets; walking
 *    them from 0 alternates data and hole, monotonic, within [0, size],
 *    and finds exactly those runs;
 *  - every byte of a hole reads as zero (a budget of bytes per chain; past
 *    it, the first and last KiB of each hole), and
 *    raw base data reads as the base's bytes;
 *  - chain_ranges_above(d) for every depth: sorted, disjoint, not
 *    touching, inside [0, size], adding up to *bytes, and equal to the
 *    extents from layers above d; the data runs lie inside
 *    chain_ranges_above(depth); chain_ranges_seek() over them agrees with
 *    a scan;
 *  - chain_data_by_depth()'s top count is the data the seeks find;
 *  - all map memory is given back once the chains are closed.
 *
 * Built by `make fuzz` with clang -fsanitize=fuzzer,address,undefined.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chain.h"
#include "log.h"
#include "qcow2.h"

#ifndef FUZZ_QCOW2_BASE
#error "FUZZ_QCOW2_BASE must name a qcow2 image without a backing file"
#endif

#define BASE_SIZE 65536
#define MAX_EXTENTS 4096 /* walked per chain; the rest is checked loosely */
#define MAX_RUNS (MAX_EXTENTS + 1)
#define READ_BUDGET (256 << 10) /* bytes of holes read per chain */

struct xinfo {
	uint64_t start, len;
	struct chain_extent e;
};

static int dfd_raw = -1, dfd_q = -1;
static int top_raw = -1, top_q = -1;
static char dir_raw[64], dir_q[64];
static uint8_t base_bytes[BASE_SIZE];
static struct xinfo xs[MAX_EXTENTS];
static struct chain_range runs[MAX_RUNS];
static struct chain_range want[MAX_RUNS];
static uint8_t buf[1 << 16];

static void cleanup(void)
{
	unlinkat(dfd_raw, "top", 0);
	unlinkat(dfd_raw, "base", 0);
	unlinkat(dfd_q, "top", 0);
	unlinkat(dfd_q, "base", 0);
	rmdir(dir_raw);
	rmdir(dir_q);
}

static int scratch_dir(char *out, size_t len, const char *tag)
{
	char d1[64], d2[64];
	const char *d;

	snprintf(d1, sizeof(d1), "/dev/shm/fuzz_chain_%s.XXXXXX", tag);
	snprintf(d2, sizeof(d2), "/tmp/fuzz_chain_%s.XXXXXX", tag);
	d = mkdtemp(d1);
	if (!d)
		d = mkdtemp(d2);
	if (!d)
		abort();
	snprintf(out, len, "%s", d);
	return open(d, O_RDONLY | O_DIRECTORY);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static uint8_t q[1 << 20];
	ssize_t qn;
	int fd;

	(void)argc;
	(void)argv;
	dfd_raw = scratch_dir(dir_raw, sizeof(dir_raw), "raw");
	dfd_q = scratch_dir(dir_q, sizeof(dir_q), "qcow2");
	if (dfd_raw < 0 || dfd_q < 0)
		abort();
	for (size_t i = 0; i < sizeof(base_bytes); i++)
		base_bytes[i] = (uint8_t)(i * 7 + 1);
	fd = openat(dfd_raw, "base", O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, base_bytes, sizeof(base_bytes)) != (ssize_t)sizeof(base_bytes))
		abort();
	close(fd);
	fd = open(FUZZ_QCOW2_BASE, O_RDONLY);
	if (fd < 0) {
		fprintf(stderr, "fuzz_chain: cannot open %s\n", FUZZ_QCOW2_BASE);
		abort();
	}
	qn = read(fd, q, sizeof(q));
	close(fd);
	if (qn <= 0)
		abort();
	fd = openat(dfd_q, "base", O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, q, (size_t)qn) != qn)
		abort();
	close(fd);
	top_raw = openat(dfd_raw, "top", O_RDWR | O_CREAT | O_TRUNC, 0600);
	top_q = openat(dfd_q, "top", O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (top_raw < 0 || top_q < 0)
		abort();
	atexit(cleanup);
	log_set_quiet(true);
	return 0;
}

#define CHECK(cond)                                                                            \
	do {                                                                                   \
		if (!(cond)) {                                                                 \
			fprintf(stderr, "fuzz_chain: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                               \
		}                                                                              \
	} while (0)

/* What SEEK_DATA/SEEK_HOLE must return at p, given the data runs r[0..n)
 * found in [0, known) of a chain of size bytes. Returns 1 and *out when
 * the walked part decides it, 0 when the answer lies past known (then
 * *out is the least it may be). */
static int expect_seek(const struct chain_range *r, size_t n, uint64_t known, uint64_t size,
		       uint64_t p, int whence, int64_t *out)
{
	size_t i = chain_ranges_find(r, n, p);

	if (p >= size) {
		*out = -ENXIO;
		return 1;
	}
	if (whence == SEEK_DATA) {
		if (i < n) {
			*out = (int64_t)(r[i].start > p ? r[i].start : p);
			return 1;
		}
		if (known >= size) {
			*out = -ENXIO;
			return 1;
		}
		*out = (int64_t)(p > known ? p : known);
		return 0;
	}
	if (i < n && r[i].start <= p) {
		if (r[i].start + r[i].len < known || known >= size) {
			*out = (int64_t)(r[i].start + r[i].len);
			return 1;
		}
		*out = (int64_t)known;
		return 0;
	}
	if (p < known) {
		*out = (int64_t)p;
		return 1;
	}
	*out = (int64_t)p;
	return 0;
}

static void check_seek_at(const struct chain *c, size_t n, uint64_t known, uint64_t p)
{
	uint64_t size = chain_size(c);

	for (int w = 0; w < 2; w++) {
		int whence = w ? SEEK_HOLE : SEEK_DATA;
		int64_t want_off, got = chain_seek(c, p, whence);

		if (expect_seek(runs, n, known, size, p, whence, &want_off)) {
			CHECK(got == want_off);
		} else {
			/* decided past the walked extents */
			CHECK(got == -ENXIO ? whence == SEEK_DATA : got >= want_off);
			CHECK(got == -ENXIO || (uint64_t)got <= size);
		}
	}
}

/* Read [off, off + len) in pieces and check it is all zero. */
static void check_zero(struct chain *c, uint64_t off, uint64_t len, uint64_t *budget)
{
	while (len && *budget) {
		size_t n = len < sizeof(buf) ? (size_t)len : sizeof(buf);

		if (n > *budget)
			n = (size_t)*budget;
		memset(buf, 0xa5, n);
		int r = chain_read(c, buf, n, off);

		CHECK(r == (int)n);
		for (size_t i = 0; i < n; i++)
			CHECK(buf[i] == 0);
		off += n;
		len -= n;
		*budget -= n;
	}
}

static void check_hole(struct chain *c, uint64_t a, uint64_t b, uint64_t *budget)
{
	/* the whole hole while the budget lasts; else its first and last KiB */
	if (b - a <= *budget) {
		check_zero(c, a, b - a, budget);
		return;
	}
	uint64_t one = 1024;

	check_zero(c, a, one, &one);
	one = 1024;
	check_zero(c, b - one, one, &one);
}

static void check_ranges(const struct chain *c, size_t nx, uint64_t known, size_t nruns)
{
	size_t depth = chain_depth(c);
	uint64_t size = chain_size(c);
	struct chain_range *r;
	size_t n;
	uint64_t bytes;

	CHECK(chain_ranges_above(c, 0, &r, &n, &bytes) == -EINVAL);
	CHECK(chain_ranges_above(c, (unsigned)depth + 1, &r, &n, &bytes) == -EINVAL);
	for (unsigned d = 1; d <= depth; d++) {
		int ret = chain_ranges_above(c, d, &r, &n, &bytes);

		if (ret == -ENOMEM)
			continue;
		CHECK(ret == 0);
		CHECK((n == 0) == (r == NULL));
		uint64_t sum = 0, end = 0;

		for (size_t i = 0; i < n; i++) {
			CHECK(r[i].len > 0);
			CHECK(i == 0 || r[i].start > end); /* sorted, disjoint, merged */
			CHECK(r[i].start < size && r[i].len <= size - r[i].start);
			end = r[i].start + r[i].len;
			sum += r[i].len;
		}
		CHECK(sum == bytes);

		/* equal to the walked extents from layers above d */
		size_t nw = 0;

		for (size_t i = 0; i < nx; i++) {
			const struct xinfo *x = &xs[i];

			if (x->e.kind == CHAIN_EXTENT_HOLE || x->e.depth >= d)
				continue;
			if (nw && want[nw - 1].start + want[nw - 1].len == x->start)
				want[nw - 1].len += x->len;
			else
				want[nw++] = (struct chain_range){x->start, x->len};
		}
		for (size_t i = 0; i < nw; i++) {
			uint64_t wend = want[i].start + want[i].len;

			CHECK(i < n && r[i].start == want[i].start);
			if (wend < known || known >= size)
				CHECK(r[i].len == want[i].len);
			else
				CHECK(r[i].start + r[i].len >= wend);
		}
		if (known >= size)
			CHECK(n == nw);
		else
			CHECK(n == nw || r[nw].start >= known);

		/* every data run lies inside the ranges above the base */
		if (d == depth) {
			for (size_t i = 0; i < nruns; i++) {
				size_t k = chain_ranges_find(r, n, runs[i].start);

				CHECK(k < n && r[k].start <= runs[i].start &&
				      r[k].start + r[k].len >= runs[i].start + runs[i].len);
			}
		}

		/* chain_ranges_seek() against a scan of r[] */
		for (size_t i = 0; i < n && i < 64; i++) {
			uint64_t ps[4] = {r[i].start, r[i].start + r[i].len,
					  r[i].start ? r[i].start - 1 : 0,
					  r[i].start + r[i].len - 1};

			for (int k = 0; k < 4; k++) {
				int64_t dd = chain_ranges_seek(r, n, size, ps[k], SEEK_DATA);
				int64_t hh = chain_ranges_seek(r, n, size, ps[k], SEEK_HOLE);
				size_t j = 0;

				while (j < n && r[j].start + r[j].len <= ps[k])
					j++;
				if (ps[k] >= size) {
					CHECK(dd == -ENXIO && hh == -ENXIO);
				} else if (j == n) {
					CHECK(dd == -ENXIO && hh == (int64_t)ps[k]);
				} else if (r[j].start <= ps[k]) {
					CHECK(dd == (int64_t)ps[k] &&
					      hh == (int64_t)(r[j].start + r[j].len));
				} else {
					CHECK(dd == (int64_t)r[j].start && hh == (int64_t)ps[k]);
				}
			}
		}
		CHECK(chain_ranges_seek(r, n, size, 0, 42) == -EINVAL);
		chain_ranges_free(r, n);
	}
}

/* Check one open chain. base_raw: the last layer is the raw base. */
static void check_chain(struct chain *c, int base_raw, const uint8_t *data, size_t dsize,
			uint64_t *data_bytes)
{
	uint64_t size = chain_size(c), off = 0, known, budget = READ_BUDGET;
	size_t depth = chain_depth(c), nx = 0, nruns = 0;
	struct chain_extent e;

	CHECK(depth >= 1 && chain_extent_count(c) >= (size ? 1u : 0u));
	CHECK(chain_extent_get(c, size, &e) == -ENXIO);
	CHECK(chain_seek(c, 0, SEEK_CUR) == -EINVAL);
	CHECK(chain_seek(c, size, SEEK_DATA) == -ENXIO);
	CHECK(chain_seek(c, size, SEEK_HOLE) == -ENXIO);

	/* the extents, as far as MAX_EXTENTS of them */
	while (off < size && nx < MAX_EXTENTS) {
		struct xinfo *x = &xs[nx++];

		CHECK(chain_extent_get(c, off, &x->e) == 0);
		x->start = off;
		x->len = x->e.length;
		CHECK(x->len > 0 && x->len <= size - off);
		switch (x->e.kind) {
		case CHAIN_EXTENT_DATA:
		case CHAIN_EXTENT_COMPRESSED:
			CHECK(x->e.data == 1 && x->e.offset_valid && x->e.fd >= 0);
			CHECK(x->e.depth < depth);
			break;
		case CHAIN_EXTENT_ZERO:
			CHECK(x->e.data == 0 || x->e.data == 1);
			CHECK(x->e.fd >= 0 && x->e.depth < depth);
			break;
		case CHAIN_EXTENT_HOLE:
			CHECK(x->e.data == 0 && x->e.fd == -1 && x->e.depth == depth);
			break;
		default:
			CHECK(!"extent kind");
		}
		/* the top's data lies inside the input */
		if (x->e.depth == 0 && x->e.kind == CHAIN_EXTENT_DATA)
			CHECK(x->e.offset < dsize && x->len <= dsize - x->e.offset);
		/* (a compressed descriptor may run past EOF: zeros there) */
		if (x->e.kind == CHAIN_EXTENT_COMPRESSED)
			CHECK(x->e.csize > 0);
		/* the middle of an extent is the same extent */
		if (x->len > 1) {
			struct chain_extent m;
			uint64_t mid = off + x->len / 2;

			CHECK(chain_extent_get(c, mid, &m) == 0);
			CHECK(m.kind == x->e.kind && m.depth == x->e.depth && m.data == x->e.data &&
			      m.length == x->len - x->len / 2);
			if (m.kind == CHAIN_EXTENT_DATA)
				CHECK(m.offset == x->e.offset + x->len / 2);
		}
		/* the raw base maps byte for byte */
		if (base_raw && x->e.depth == depth - 1 && x->e.kind == CHAIN_EXTENT_DATA) {
			CHECK(x->e.offset == off && off + x->len <= BASE_SIZE);
			size_t n = x->len < 4096 ? (size_t)x->len : 4096;
			int r = chain_read(c, buf, n, off);

			CHECK(r == (int)n && !memcmp(buf, base_bytes + off, n));
		}
		/* data runs: data extents, merged */
		if (x->e.data) {
			if (nruns && runs[nruns - 1].start + runs[nruns - 1].len == off)
				runs[nruns - 1].len += x->len;
			else
				runs[nruns++] = (struct chain_range){off, x->len};
			/* each extent starts where the seeks say */
			CHECK(chain_seek(c, off, SEEK_DATA) == (int64_t)off);
		} else {
			CHECK(chain_seek(c, off, SEEK_HOLE) == (int64_t)off);
		}
		off += x->len;
	}
	known = off;

	/* seeks at every run edge, beside it, and at input-chosen offsets */
	check_seek_at(c, nruns, known, 0);
	check_seek_at(c, nruns, known, size ? size - 1 : 0);
	check_seek_at(c, nruns, known, size + 1);
	for (size_t i = 0; i < nruns; i++) {
		uint64_t a = runs[i].start, b = a + runs[i].len;

		check_seek_at(c, nruns, known, a);
		check_seek_at(c, nruns, known, b);
		check_seek_at(c, nruns, known, b - 1);
		if (a)
			check_seek_at(c, nruns, known, a - 1);
		check_seek_at(c, nruns, known, a + (b - a) / 2);
	}
	for (size_t i = 0; i + 8 <= dsize && i < 16 * 8; i += 8) {
		uint64_t p;

		memcpy(&p, data + dsize - 8 - i, 8);
		check_seek_at(c, nruns, known, size ? p % (size + 1) : p);
	}

	/* walk SEEK_DATA/SEEK_HOLE from 0: alternating, monotonic, the runs */
	uint64_t p = 0, seen = 0;
	size_t k = 0, steps = 0;
	int cut = 0;

	while (p < size) {
		if (steps++ > MAX_RUNS + 64) {
			cut = 1; /* far past what was walked: enough */
			break;
		}
		int64_t d = chain_seek(c, p, SEEK_DATA);

		if (d == -ENXIO)
			break;
		CHECK(d >= 0 && (uint64_t)d >= p && (uint64_t)d < size);
		int64_t h = chain_seek(c, (uint64_t)d, SEEK_HOLE);

		CHECK(h > d && (uint64_t)h <= size);
		if ((uint64_t)d < known) {
			CHECK(k < nruns && runs[k].start == (uint64_t)d);
			CHECK((uint64_t)h == runs[k].start + runs[k].len ||
			      ((uint64_t)h > known && runs[k].start + runs[k].len == known));
		}
		/* the hole before it is a hole */
		if ((uint64_t)d > p)
			CHECK(chain_seek(c, p, SEEK_HOLE) == (int64_t)p);
		if ((uint64_t)d < known)
			k++;
		seen += (uint64_t)(h - d);
		p = (uint64_t)h;
	}
	if (known >= size && !cut) {
		CHECK(k == nruns);
		*data_bytes = seen;
	}

	/* holes read as zeros */
	uint64_t h0 = 0;

	for (size_t i = 0; i <= nruns; i++) {
		uint64_t h1 = i < nruns ? runs[i].start : known;

		if (h1 > h0)
			check_hole(c, h0, h1, &budget);
		if (i < nruns)
			h0 = runs[i].start + runs[i].len;
	}

	/* reads across the end */
	if (size) {
		uint64_t at = size > 100 ? size - 100 : 0;
		int r = chain_read(c, buf, 4096, at);

		CHECK(r == (int)(size - at) || r == -EIO || r == -ENOMEM);
		CHECK(chain_read(c, buf, 4096, size) == 0);
	}

	check_ranges(c, nx, known, nruns);
}

static void one(const struct chain_layer *layers, size_t n, int base_raw, uint64_t size,
		const uint8_t *data, size_t dsize)
{
	struct chain *c;
	uint64_t seen = UINT64_MAX;
	int ret = chain_open(&c, layers, n, size);

	if (ret) {
		CHECK(ret == -EIO || ret == -ENOMEM || (size && ret == -EINVAL));
		return;
	}
	if (size)
		CHECK(chain_size(c) == size);
	check_chain(c, base_raw, data, dsize, &seen);
	chain_close(c);

	/* chain_data_by_depth() counts what the seeks found */
	if (!size && seen != UINT64_MAX) {
		uint64_t bytes[2] = {0, 0};

		ret = chain_data_by_depth(layers, n, bytes);
		CHECK(ret == 0 || ret == -ENOMEM);
		if (ret == 0)
			CHECK(bytes[0] == seen);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct chain_layer alone = {dfd_raw, "top", IMAGE_FORMAT_QCOW2};
	struct chain_layer over_raw[2] = {{dfd_raw, "top", IMAGE_FORMAT_QCOW2},
					  {dfd_raw, "base", IMAGE_FORMAT_RAW}};
	struct chain_layer over_q[2] = {{dfd_q, "top", IMAGE_FORMAT_QCOW2},
					{dfd_q, "base", IMAGE_FORMAT_QCOW2}};
	struct image_info info;

	if (ftruncate(top_raw, 0) < 0 || pwrite(top_raw, data, size, 0) != (ssize_t)size)
		abort();
	if (ftruncate(top_q, 0) < 0 || pwrite(top_q, data, size, 0) != (ssize_t)size)
		abort();

	one(&alone, 1, 0, 0, data, size);
	one(over_raw, 2, 1, 0, data, size);
	one(over_q, 2, 0, 0, data, size);
	/* a chain larger than its top: the tail is a hole */
	if (qcow2_probe(dfd_raw, "top", &info) == 0 && info.safe && info.virtual_size &&
	    info.virtual_size <= QCOW2_MAX_VIRTUAL_SIZE - 65536 && size)
		one(over_raw, 2, 1, info.virtual_size + 512 * (1 + data[0] % 128), data, size);

	CHECK(chain_memory_used() == 0);
	return 0;
}
