/* fuzz_qcow2.c - libFuzzer target for the qcow2 engine: header checks,
 * table walks, map building, seeks and reads (decompression included).
 *
 * Each input is written to a scratch file (on /dev/shm when there is one)
 * and opened as a one-layer chain, then as an overlay over a small raw
 * base named "base" (seeds name it as their backing file). Built by
 * `make fuzz` with clang -fsanitize=fuzzer,address,undefined.
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

static int dfd = -1;
static int top_fd = -1;
static char scratch[64];

/* libFuzzer ends with exit(): remove the scratch directory then. */
static void cleanup(void)
{
	unlinkat(dfd, "top", 0);
	unlinkat(dfd, "base", 0);
	rmdir(scratch);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char dir[] = "/dev/shm/fuzz_qcow2.XXXXXX";
	char dir2[] = "/tmp/fuzz_qcow2.XXXXXX";
	const char *d = mkdtemp(dir);
	uint8_t base[65536];
	int fd;

	(void)argc;
	(void)argv;
	if (!d)
		d = mkdtemp(dir2);
	if (!d)
		abort();
	dfd = open(d, O_RDONLY | O_DIRECTORY);
	if (dfd < 0)
		abort();
	for (size_t i = 0; i < sizeof(base); i++)
		base[i] = (uint8_t)(i * 7 + 1);
	fd = openat(dfd, "base", O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, base, sizeof(base)) != (ssize_t)sizeof(base))
		abort();
	close(fd);
	top_fd = openat(dfd, "top", O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (top_fd < 0)
		abort();
	snprintf(scratch, sizeof(scratch), "%s", d);
	atexit(cleanup);
	log_set_quiet(true);
	return 0;
}

static void exercise(struct chain *c)
{
	static uint8_t buf[1 << 17];
	uint64_t size = chain_size(c), off = 0;
	struct chain_extent e;
	int n = 0;

	/* Walk up to 64 extents, reading up to 4 KiB at the start of each
	 * (and its last bytes, into the next one): the read paths without
	 * copying megabytes per input. */
	while (off < size && n++ < 64) {
		if (chain_extent_get(c, off, &e) < 0)
			abort();
		if (e.length == 0 || e.length > size - off)
			abort();
		size_t len = e.length < 4096 ? (size_t)e.length : 4096;
		int r = chain_read(c, buf, len, off);

		if (r != (int)len && r != -EIO && r != -ENOMEM)
			abort();
		if (e.length > 4096)
			(void)chain_read(c, buf, 1024, off + e.length - 512);
		off += e.length;
	}
	/* Reads straddling extents, at the end, and seeks. */
	(void)chain_read(c, buf, sizeof(buf), 0);
	if (size > 100)
		(void)chain_read(c, buf, 4096, size - 100);
	for (uint64_t p = 0; p < size && n++ < 128;) {
		int64_t d = chain_seek(c, p, SEEK_DATA);

		if (d < 0)
			break;
		if ((uint64_t)d < p || (uint64_t)d >= size)
			abort();
		int64_t h = chain_seek(c, (uint64_t)d, SEEK_HOLE);

		if (h <= d || (uint64_t)h > size)
			abort();
		p = (uint64_t)h;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct chain_layer one = {dfd, "top", IMAGE_FORMAT_QCOW2, false};
	struct chain_layer two[2] = {{dfd, "top", IMAGE_FORMAT_QCOW2, false},
				     {dfd, "base", IMAGE_FORMAT_RAW, false}};
	struct image_info info;
	struct chain *c;
	int ret;

	if (ftruncate(top_fd, 0) < 0 || pwrite(top_fd, data, size, 0) != (ssize_t)size)
		abort();
	(void)qcow2_probe(dfd, "top", &info);
	ret = chain_open(&c, &one, 1, 0);
	if (ret == 0) {
		exercise(c);
		chain_close(c);
	} else if (ret != -EIO && ret != -ENOMEM) {
		abort();
	}
	ret = chain_open(&c, two, 2, 0);
	if (ret == 0) {
		exercise(c);
		chain_close(c);
	} else if (ret != -EIO && ret != -ENOMEM) {
		abort();
	}
	return 0;
}
