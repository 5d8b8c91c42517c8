/* snapfs-map - print the resolved map of a qcow2/raw chain, or its bytes,
 * through snapfs's own engine (src/engine/qcow2.c, src/engine/chain.c). See
 * snapfs-map.1 and --help.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chain.h"
#include "log.h"
#include "qcow2.h"
#include "util.h"

#define MAX_FILES CHAIN_MAX_DEPTH

static const char usage_text[] =
	"Usage: snapfs-map [OPTIONS] [[--format FMT] FILE]...\n"
	"       snapfs-map --probe|--check FILE...\n"
	"       snapfs-map --create NEW [--backing-format FMT] [--size BYTES] BACKING\n"
	"\n"
	"Resolve a chain of qcow2/raw images with snapfs's reader and print its map\n"
	"as JSON in the shape of 'qemu-img map --output=json', or its bytes.\n"
	"\n"
	"FILEs are the chain, TOP FIRST (the image you read, then its backing file,\n"
	"... down to the base). Each qcow2 header must name the next FILE as its\n"
	"backing file (same basename); backing names in headers are otherwise\n"
	"never followed. With a single qcow2 FILE, its backing names are followed\n"
	"for convenience, but only within FILE's directory and only after checking\n"
	"that each is a plain basename (no '/', not '.' or '..'); --no-follow\n"
	"turns that off.\n"
	"\n"
	"Options:\n"
	"  -f, --format FMT     raw or qcow2, for the next FILE (default: detect\n"
	"                       by magic; give it for untrusted raw files)\n"
	"  -c, --cat            write the virtual disk's bytes to stdout\n"
	"  -o, --offset BYTES   with --cat: start there (default 0)\n"
	"  -l, --length BYTES   with --cat: write at most that many bytes\n"
	"  -d, --data           print the data ranges found with SEEK_DATA and\n"
	"                       SEEK_HOLE, one \"START END\" line each\n"
	"  -s, --size BYTES     virtual size to expose (default: the top's)\n"
	"  -n, --no-follow      never follow backing names, even for one FILE\n"
	"  -p, --probe          print what the header probe says about each FILE\n"
	"  -k, --check          like --probe, but also walk every table of each\n"
	"                       qcow2 FILE and read the whole chain it heads\n"
	"                       (backing names followed as for one FILE) as\n"
	"                       --cat does: \"safe\" is true only when --cat of\n"
	"                       FILE would succeed\n"
	"      --create NEW     create NEW as a qcow2 v3 overlay of BACKING (in\n"
	"                       NEW's directory); --size 0 or none: BACKING's size\n"
	"  -F, --backing-format FMT   backing format for --create (default: detect)\n"
	"  -m, --map-memory SIZE  most memory the map may take (K, M, G suffixes;\n"
	"                       default 1G): a chain whose map needs more is\n"
	"                       refused (exit 1, a log line)\n"
	"  -q, --quiet          no log lines on stderr\n"
	"  -h, --help           this text\n"
	"\n"
	"Exit status: 0 on success, 1 when an image is refused or unreadable\n"
	"(a log line on stderr says which file and why), 2 on bad usage.\n";

static void usage(FILE *f)
{
	fputs(usage_text, f);
}

struct file_arg {
	char *path;
	bool fmt_given;
	enum image_format fmt;
	int dirfd;
	char *base;
};

static int split_path(struct file_arg *fa)
{
	char *d = strdup(fa->path), *b = strdup(fa->path);

	if (!d || !b) {
		free(d);
		free(b);
		return -ENOMEM;
	}
	fa->dirfd = open(dirname(d), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(fa->base);
	fa->base = strdup(basename(b));
	free(d);
	free(b);
	if (fa->dirfd < 0)
		return -errno;
	return fa->base ? 0 : -ENOMEM;
}

static int detect(struct file_arg *fa)
{
	struct image_info info;
	int ret;

	if (fa->fmt_given)
		return 0;
	ret = qcow2_probe(fa->dirfd, fa->base, &info);
	if (ret < 0) {
		log_err("%s: %s", fa->path, info.reason);
		return ret;
	}
	fa->fmt = info.format;
	return 0;
}

static void print_json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

static int follow(struct file_arg *files, int *nfiles);
static int check_as_top(const struct file_arg *top, bool no_follow, char *reason, size_t len);

/* --probe, or --check (deep): each FILE's header, and with deep every table
 * of it and the whole chain it tops, read as --cat reads it. */
static int do_probe(struct file_arg *files, int nfiles, bool deep, bool no_follow)
{
	int rc = 0;

	printf("[");
	for (int i = 0; i < nfiles; i++) {
		struct image_info in;
		int ret = deep ? qcow2_validate(files[i].dirfd, files[i].base, &in)
			       : qcow2_probe(files[i].dirfd, files[i].base, &in);

		if (ret < 0) {
			log_err("%s: %s", files[i].path, in.reason);
			rc = 1;
			continue;
		}
		if (deep && in.safe &&
		    check_as_top(&files[i], no_follow, in.reason, sizeof(in.reason)) < 0)
			in.safe = false;
		printf("%s{ \"filename\": ", i ? ",\n" : "");
		print_json_str(files[i].path);
		printf(", \"format\": \"%s\", \"virtual-size\": %" PRIu64
		       ", \"actual-size\": %" PRIu64,
		       image_format_name(in.format), in.virtual_size, in.file_size);
		if (in.format == IMAGE_FORMAT_QCOW2) {
			printf(", \"version\": %u, \"cluster-size\": %u, \"extended-l2\": %s, "
			       "\"compression-type\": \"%s\"",
			       in.version, in.cluster_size, in.extended_l2 ? "true" : "false",
			       in.compression == QCOW2_COMPRESSION_ZSTD ? "zstd" : "zlib");
			if (in.has_backing) {
				printf(", \"backing-filename\": ");
				print_json_str(in.backing_name);
				if (in.backing_format_known)
					printf(", \"backing-filename-format\": \"%s\"",
					       image_format_name(in.backing_format));
			}
		}
		printf(", \"safe\": %s", in.safe ? "true" : "false");
		if (!in.safe) {
			printf(", \"reason\": ");
			print_json_str(in.reason);
			rc = 1;
		}
		printf(" }");
	}
	printf("]\n");
	return rc;
}

struct jrow {
	uint64_t start, length, offset;
	unsigned depth;
	bool present, zero, data, has_offset, valid;
};

static void jrow_print(const struct jrow *r, bool first)
{
	printf("%s{ \"start\": %" PRIu64 ", \"length\": %" PRIu64 ", \"depth\": %u, "
	       "\"present\": %s, \"zero\": %s, \"data\": %s",
	       first ? "[" : ",\n", r->start, r->length, r->depth, r->present ? "true" : "false",
	       r->zero ? "true" : "false", r->data ? "true" : "false");
	if (r->has_offset)
		printf(", \"offset\": %" PRIu64, r->offset);
	printf("}");
}

static int print_map(struct chain *c)
{
	uint64_t off = 0, size = chain_size(c);
	unsigned nl = (unsigned)chain_depth(c);
	struct jrow cur = {0};
	bool first = true;

	while (off < size) {
		struct chain_extent e;
		struct jrow r = {0};

		if (chain_extent_get(c, off, &e) < 0)
			return -EIO;
		r.start = off;
		r.length = e.length;
		r.depth = e.kind == CHAIN_EXTENT_HOLE ? nl - 1 : e.depth;
		r.present = e.kind != CHAIN_EXTENT_HOLE;
		r.zero = e.kind == CHAIN_EXTENT_ZERO || e.kind == CHAIN_EXTENT_HOLE;
		r.data = e.data;
		r.has_offset = e.kind != CHAIN_EXTENT_COMPRESSED && e.offset_valid;
		r.offset = e.offset;
		r.valid = true;
		if (cur.valid && cur.depth == r.depth && cur.present == r.present &&
		    cur.zero == r.zero && cur.data == r.data && cur.has_offset == r.has_offset &&
		    (!r.has_offset || cur.offset + cur.length == r.offset)) {
			cur.length += r.length;
		} else {
			if (cur.valid)
				jrow_print(&cur, first), first = false;
			cur = r;
		}
		off += e.length;
	}
	if (cur.valid)
		jrow_print(&cur, first), first = false;
	printf(first ? "[]\n" : "]\n");
	return 0;
}

static int print_data_ranges(struct chain *c)
{
	uint64_t size = chain_size(c);
	int64_t d = 0, h;

	while ((uint64_t)d < size) {
		d = chain_seek(c, (uint64_t)d, SEEK_DATA);
		if (d == -ENXIO)
			break;
		if (d < 0)
			return (int)d;
		h = chain_seek(c, (uint64_t)d, SEEK_HOLE);
		if (h < 0)
			return (int)h;
		printf("%" PRId64 " %" PRId64 "\n", d, h);
		d = h;
	}
	return 0;
}

static int cat(struct chain *c, uint64_t off, uint64_t length)
{
	const size_t bufsz = 1 << 20;
	uint64_t size = chain_size(c);
	char *buf = malloc(bufsz);

	if (!buf)
		return -ENOMEM;
	if (length != UINT64_MAX && off < size && length < size - off)
		size = off + length;
	while (off < size) {
		int n = chain_read(c, buf, size - off < bufsz ? (size_t)(size - off) : bufsz, off);

		if (n <= 0) {
			free(buf);
			return n < 0 ? n : -EIO;
		}
		for (int w = 0; w < n;) {
			ssize_t k = write(STDOUT_FILENO, buf + w, (size_t)(n - w));

			if (k < 0) {
				if (errno == EINTR)
					continue;
				free(buf);
				return -errno;
			}
			w += (int)k;
		}
		off += (uint64_t)n;
	}
	free(buf);
	return 0;
}

/* One FILE given: follow the backing names in its directory. */
static int follow(struct file_arg *files, int *nfiles)
{
	while (*nfiles < MAX_FILES) {
		struct file_arg *top = &files[*nfiles - 1];
		struct file_arg *next = &files[*nfiles];
		struct image_info in;
		int ret;

		if (top->fmt != IMAGE_FORMAT_QCOW2)
			return 0;
		ret = qcow2_probe(top->dirfd, top->base, &in);
		if (ret < 0) {
			log_err("%s: %s", top->path, in.reason);
			return ret;
		}
		if (!in.safe) {
			log_err("%s: %s", top->path, in.reason);
			return -EIO;
		}
		if (!in.has_backing)
			return 0;
		if (!qcow2_name_is_basename(in.backing_name)) {
			log_err("%s: backing name \"%.100s\" is not a plain basename", top->path,
				in.backing_name);
			return -EIO;
		}
		memset(next, 0, sizeof(*next));
		next->dirfd = dup(top->dirfd);
		next->base = strdup(in.backing_name);
		next->path = next->base;
		if (next->dirfd < 0 || !next->base)
			return -ENOMEM;
		(*nfiles)++;
		if (in.backing_format_known) {
			next->fmt = in.backing_format;
			next->fmt_given = true;
		} else if ((ret = detect(next)) < 0) {
			return ret;
		}
	}
	log_err("%s: backing chain deeper than %d", files[0].path, MAX_FILES);
	return -EIO;
}

/* Open the chain that top heads (its backing names followed in its
 * directory unless no_follow) and read every byte of it, as --cat would:
 * 0, or -errno with the reason in reason. */
static int check_as_top(const struct file_arg *top, bool no_follow, char *reason, size_t len)
{
	static struct file_arg chain_files[MAX_FILES];
	static struct chain_layer layers[MAX_FILES];
	const size_t bufsz = 1 << 20;
	struct chain *c = NULL;
	char *buf = NULL;
	int n = 1, ret;

	memset(chain_files, 0, sizeof(chain_files));
	chain_files[0] = *top;
	chain_files[0].dirfd = dup(top->dirfd);
	chain_files[0].base = strdup(top->base);
	if (chain_files[0].dirfd < 0 || !chain_files[0].base) {
		ret = -ENOMEM;
		snprintf(reason, len, "out of memory");
		goto out;
	}
	ret = detect(&chain_files[0]);
	if (!ret && !no_follow)
		ret = follow(chain_files, &n);
	if (ret < 0) {
		snprintf(reason, len, "its backing chain cannot be opened (%s)", strerror(-ret));
		goto out;
	}
	for (int i = 0; i < n; i++) {
		layers[i].dirfd = chain_files[i].dirfd;
		layers[i].name = chain_files[i].base;
		layers[i].format = chain_files[i].fmt;
	}
	ret = chain_open(&c, layers, (size_t)n, 0);
	if (ret < 0) {
		snprintf(reason, len, "its chain of %d file%s is refused (%s)", n, n > 1 ? "s" : "",
			 strerror(-ret));
		goto out;
	}
	buf = malloc(bufsz);
	if (!buf) {
		ret = -ENOMEM;
		snprintf(reason, len, "out of memory");
		goto out;
	}
	for (uint64_t off = 0, size = chain_size(c); off < size;) {
		int k = chain_read(c, buf, size - off < bufsz ? (size_t)(size - off) : bufsz, off);

		if (k <= 0) {
			ret = k < 0 ? k : -EIO;
			snprintf(reason, len, "its chain cannot be read at offset %" PRIu64 " (%s)",
				 off, strerror(-ret));
			goto out;
		}
		off += (uint64_t)k;
	}
out:
	free(buf);
	chain_close(c);
	for (int i = 0; i < n; i++) {
		if (chain_files[i].dirfd >= 0)
			close(chain_files[i].dirfd);
		free(chain_files[i].base);
	}
	return ret;
}

static struct file_arg files[MAX_FILES];
static int nfiles;

static int run(int argc, char **argv)
{
	static const struct option opts[] = {
		{"format", required_argument, NULL, 'f'},
		{"cat", no_argument, NULL, 'c'},
		{"data", no_argument, NULL, 'd'},
		{"size", required_argument, NULL, 's'},
		{"no-follow", no_argument, NULL, 'n'},
		{"probe", no_argument, NULL, 'p'},
		{"check", no_argument, NULL, 'k'},
		{"create", required_argument, NULL, 'C'},
		{"backing-format", required_argument, NULL, 'F'},
		{"map-memory", required_argument, NULL, 'm'},
		{"quiet", no_argument, NULL, 'q'},
		{"offset", required_argument, NULL, 'o'},
		{"length", required_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	static struct chain_layer layers[MAX_FILES];
	bool do_cat = false, do_data = false, no_follow = false, probe = false, deep = false;
	bool pending_fmt = false, bfmt_given = false;
	enum image_format fmt = IMAGE_FORMAT_RAW, bfmt = IMAGE_FORMAT_RAW;
	const char *create = NULL;
	uint64_t size = 0, cat_off = 0, cat_len = UINT64_MAX;
	struct chain *c = NULL;
	int ch, ret;

	/* "+-": options and FILEs in order, so --format applies to the next FILE. */
	while ((ch = getopt_long(argc, argv, "-f:cds:npkF:m:qho:l:", opts, NULL)) != -1) {
		switch (ch) {
		case 1:
			if (nfiles >= MAX_FILES) {
				fprintf(stderr, "snapfs-map: too many files\n");
				return 2;
			}
			files[nfiles].path = optarg;
			files[nfiles].fmt_given = pending_fmt;
			files[nfiles].fmt = fmt;
			pending_fmt = false;
			nfiles++;
			break;
		case 'f':
			if (image_format_parse(optarg, &fmt) < 0) {
				fprintf(stderr, "snapfs-map: unknown format '%s'\n", optarg);
				return 2;
			}
			pending_fmt = true;
			break;
		case 'F':
			if (image_format_parse(optarg, &bfmt) < 0) {
				fprintf(stderr, "snapfs-map: unknown format '%s'\n", optarg);
				return 2;
			}
			bfmt_given = true;
			break;
		case 'c':
			do_cat = true;
			break;
		case 'd':
			do_data = true;
			break;
		case 's':
		case 'o':
		case 'l': {
			char *end;
			uint64_t v;

			errno = 0;
			v = strtoull(optarg, &end, 0);
			if (errno || *end || end == optarg) {
				fprintf(stderr, "snapfs-map: bad number '%s'\n", optarg);
				return 2;
			}
			if (ch == 's')
				size = v;
			else if (ch == 'o')
				cat_off = v;
			else
				cat_len = v;
			break;
		}
		case 'n':
			no_follow = true;
			break;
		case 'p':
			probe = true;
			break;
		case 'k':
			deep = true;
			break;
		case 'C':
			create = optarg;
			break;
		case 'm': {
			uint64_t bytes;

			if (size_parse_bytes(optarg, &bytes) || bytes == 0) {
				fprintf(stderr, "snapfs-map: bad size '%s'\n", optarg);
				return 2;
			}
			chain_memory_set_limit(bytes);
			break;
		}
		case 'q':
			log_set_quiet(true);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (nfiles == 0) {
		usage(stderr);
		return 2;
	}
	for (int i = 0; i < nfiles; i++) {
		ret = split_path(&files[i]);
		if (ret < 0) {
			fprintf(stderr, "snapfs-map: %s: %s\n", files[i].path, strerror(-ret));
			return 1;
		}
	}
	if (probe || deep)
		return do_probe(files, nfiles, deep, no_follow);
	if (create) {
		struct file_arg nf = {.path = (char *)create};

		if (nfiles != 1) {
			usage(stderr);
			return 2;
		}
		ret = split_path(&nf);
		if (ret < 0) {
			fprintf(stderr, "snapfs-map: %s: %s\n", create, strerror(-ret));
			return 1;
		}
		if (bfmt_given) {
			files[0].fmt = bfmt;
		} else if (!files[0].fmt_given && detect(&files[0]) < 0) {
			return 1;
		}
		ret = qcow2_overlay_create(nf.dirfd, nf.base, files[0].base, files[0].fmt, size,
					   0644);
		close(nf.dirfd);
		free(nf.base);
		if (ret < 0) {
			fprintf(stderr, "snapfs-map: create %s: %s\n", create, strerror(-ret));
			return 1;
		}
		return 0;
	}
	for (int i = 0; i < nfiles; i++) {
		if (detect(&files[i]) < 0)
			return 1;
	}
	if (nfiles == 1 && !no_follow && follow(files, &nfiles) < 0)
		return 1;
	for (int i = 0; i < nfiles; i++) {
		layers[i].dirfd = files[i].dirfd;
		layers[i].name = files[i].base;
		layers[i].format = files[i].fmt;
	}
	ret = chain_open(&c, layers, (size_t)nfiles, size);
	if (ret < 0) {
		fprintf(stderr, "snapfs-map: %s: %s\n", files[0].path, strerror(-ret));
		return ret == -EINVAL ? 2 : 1;
	}
	if (do_cat)
		ret = cat(c, cat_off, cat_len);
	else if (do_data)
		ret = print_data_ranges(c);
	else
		ret = print_map(c);
	if (fflush(stdout) != 0 && ret == 0)
		ret = -EIO;
	chain_close(c);
	if (ret < 0) {
		fprintf(stderr, "snapfs-map: %s: %s\n", files[0].path, strerror(-ret));
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	int rc = run(argc, argv);

	for (int i = 0; i < nfiles; i++) {
		if (files[i].dirfd > 0)
			close(files[i].dirfd);
		free(files[i].base);
	}
	return rc;
}
