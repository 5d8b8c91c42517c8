/* chain.c - resolve a chain of qcow2/raw files into one immutable extent
 * map, and read through it. See chain.h and docs/engine.md.
 */
#include "chain.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

/* Internal marker for "this layer has nothing here, look below". */
#define KIND_FALLTHROUGH 255

struct xt {
	uint64_t start;
	uint64_t len;
	uint64_t host; /* DATA/ZERO: file offset of start; COMPRESSED: descriptor */
	uint32_t csize; /* COMPRESSED: compressed bytes */
	uint32_t cskip; /* COMPRESSED: offset of start in the cluster */
	uint32_t run_end; /* first later extent whose data-ness differs */
	uint16_t layer;
	uint8_t kind;
	uint8_t has_host;
	uint8_t zero_data; /* ZERO: allocated past EOF, data for SEEK_DATA */
};

struct xvec {
	struct xt *v;
	size_t n, cap;
	uint64_t *own; /* bytes every vector of one build holds */
};

struct layer {
	int fd;
	char *name;
	enum image_format format;
	uint64_t vsize;
	uint64_t file_size;
	uint64_t cluster_size;
	enum qcow2_compression compression;
};

struct chain {
	uint64_t size;
	uint64_t uid;
	size_t nlayers;
	struct layer *layers;
	struct xt *ext;
	size_t next;
	uint64_t ext_bytes; /* taken from the memory bound */
};

static atomic_uint_fast64_t chain_uid_next = 1;

/* ---- the process-wide memory bound (chain_memory_set_limit()) ---- */

static atomic_uint_fast64_t memory_used;
static atomic_uint_fast64_t memory_limit = CHAIN_MEMORY_DEFAULT;

void chain_memory_set_limit(uint64_t bytes)
{
	atomic_store(&memory_limit, bytes ? bytes : CHAIN_MEMORY_DEFAULT);
}

uint64_t chain_memory_limit(void)
{
	return atomic_load(&memory_limit);
}

uint64_t chain_memory_used(void)
{
	return atomic_load(&memory_used);
}

int chain_memory_take(uint64_t bytes)
{
	uint_fast64_t used = atomic_load(&memory_used);
	uint64_t limit = atomic_load(&memory_limit);

	do {
		if (bytes > limit || used > limit - bytes)
			return -ENOMEM;
	} while (!atomic_compare_exchange_weak(&memory_used, &used, used + bytes));
	return 0;
}

void chain_memory_put(uint64_t bytes)
{
	atomic_fetch_sub(&memory_used, bytes);
}

/* ---- extent vectors ---- */

/* Room for one more extent. Returns 0, -EFBIG when this build alone would
 * pass the bound or CHAIN_MAX_EXTENTS (the image's fault), -ENOBUFS when
 * the bound is full with other chains' maps, -ENOMEM when malloc fails. */
static int xvec_reserve(struct xvec *x)
{
	if (x->n < x->cap)
		return 0;
	if (x->n >= CHAIN_MAX_EXTENTS)
		return -EFBIG;
	/* double; near the bound, grow by an eighth */
	size_t cap = x->cap ? x->cap * 2 : 64;
	uint64_t limit = chain_memory_limit();
	uint64_t own = x->own ? *x->own : 0;

	if (cap > CHAIN_MAX_EXTENTS)
		cap = CHAIN_MAX_EXTENTS;
	if (own + (cap - x->cap) * sizeof(struct xt) > limit)
		cap = x->cap + x->cap / 8 + 1;
	uint64_t more = (cap - x->cap) * sizeof(struct xt);

	if (own + more > limit)
		return -EFBIG;
	if (chain_memory_take(more))
		return -ENOBUFS;
	struct xt *v = realloc(x->v, cap * sizeof(*v));

	if (!v) {
		chain_memory_put(more);
		return -ENOMEM;
	}
	if (x->own)
		*x->own += more;
	x->v = v;
	x->cap = cap;
	return 0;
}

/* Free x's extents and give their memory back. */
static void xvec_free(struct xvec *x)
{
	uint64_t bytes = x->cap * sizeof(struct xt);

	free(x->v);
	chain_memory_put(bytes);
	if (x->own)
		*x->own -= bytes;
	x->v = NULL;
	x->n = x->cap = 0;
}

/* Append e, merging with the last extent when they continue each other. */
static int xvec_push(struct xvec *x, const struct xt *e)
{
	if (e->len == 0)
		return 0;
	if (x->n) {
		struct xt *l = &x->v[x->n - 1];

		if (l->start + l->len == e->start && l->kind == e->kind) {
			switch (e->kind) {
			case CHAIN_EXTENT_HOLE:
			case KIND_FALLTHROUGH:
				l->len += e->len;
				return 0;
			case CHAIN_EXTENT_DATA:
				if (l->layer == e->layer && l->host + l->len == e->host) {
					l->len += e->len;
					return 0;
				}
				break;
			case CHAIN_EXTENT_ZERO:
				if (l->layer == e->layer && l->zero_data == e->zero_data) {
					if (!(l->has_host && e->has_host &&
					      l->host + l->len == e->host))
						l->has_host = 0;
					l->len += e->len;
					return 0;
				}
				break;
			default:
				break;
			}
		}
	}
	int ret = xvec_reserve(x);

	if (ret < 0)
		return ret;
	x->v[x->n++] = *e;
	return 0;
}

/* ---- per-layer maps ---- */

struct run_ctx {
	struct xvec *vec;
	uint16_t layer;
};

static int run_to_xt(void *opaque, const struct qcow2_run *r)
{
	struct run_ctx *rc = opaque;
	struct xt e = {
		.start = r->start,
		.len = r->length,
		.host = r->host,
		.layer = rc->layer,
		.has_host = r->has_host,
	};

	switch (r->kind) {
	case QCOW2_RUN_UNALLOCATED:
		e.kind = KIND_FALLTHROUGH;
		break;
	case QCOW2_RUN_DATA:
		e.kind = CHAIN_EXTENT_DATA;
		break;
	case QCOW2_RUN_ZERO:
		e.kind = CHAIN_EXTENT_ZERO;
		break;
	case QCOW2_RUN_ZERO_DATA:
		e.kind = CHAIN_EXTENT_ZERO;
		e.zero_data = 1;
		break;
	case QCOW2_RUN_COMPRESSED:
		e.kind = CHAIN_EXTENT_COMPRESSED;
		e.csize = r->csize;
		e.cskip = 0;
		break;
	}
	return xvec_push(rc->vec, &e);
}

/* A raw layer: data where the file has data, holes (per SEEK_HOLE) read
 * as zeros, as qemu-img map reports them. */
static int raw_map(const struct layer *l, uint16_t idx, struct xvec *vec)
{
	uint64_t pos = 0, size = l->vsize;
	int ret;

	while (pos < size) {
		off_t d = lseek(l->fd, (off_t)pos, SEEK_DATA);
		off_t h;

		if (d < 0) {
			if (errno == ENXIO) {
				d = (off_t)size;
			} else {
				/* No SEEK_DATA support: all data. */
				struct xt e = {.start = pos,
					       .len = size - pos,
					       .host = pos,
					       .layer = idx,
					       .kind = CHAIN_EXTENT_DATA,
					       .has_host = 1};
				return xvec_push(vec, &e);
			}
		}
		if ((uint64_t)d > size)
			d = (off_t)size;
		if ((uint64_t)d > pos) {
			struct xt e = {.start = pos,
				       .len = (uint64_t)d - pos,
				       .host = pos,
				       .layer = idx,
				       .kind = CHAIN_EXTENT_ZERO,
				       .has_host = 1};

			ret = xvec_push(vec, &e);
			if (ret < 0)
				return ret;
		}
		if ((uint64_t)d >= size)
			break;
		h = lseek(l->fd, d, SEEK_HOLE);
		if (h < 0 || (uint64_t)h > size)
			h = (off_t)size;
		if (h <= d)
			h = d + 1;
		struct xt e = {.start = (uint64_t)d,
			       .len = (uint64_t)(h - d),
			       .host = (uint64_t)d,
			       .layer = idx,
			       .kind = CHAIN_EXTENT_DATA,
			       .has_host = 1};
		ret = xvec_push(vec, &e);
		if (ret < 0)
			return ret;
		pos = (uint64_t)h;
	}
	return 0;
}

/* Copy the part of view covering [a, b) into out; *j is a cursor into view
 * that only moves forward. Past the end of view everything is a hole. */
static int copy_range(struct xvec *out, const struct xvec *view, size_t *j, uint64_t a, uint64_t b,
		      uint16_t hole_layer)
{
	int ret;

	while (*j < view->n && view->v[*j].start + view->v[*j].len <= a)
		(*j)++;
	while (a < b) {
		if (*j >= view->n) {
			struct xt h = {.start = a,
				       .len = b - a,
				       .layer = hole_layer,
				       .kind = CHAIN_EXTENT_HOLE};
			return xvec_push(out, &h);
		}
		const struct xt *s = &view->v[*j];
		uint64_t send = s->start + s->len;
		uint64_t cut = a - s->start;
		uint64_t end = send < b ? send : b;
		struct xt e = *s;

		e.start = a;
		e.len = end - a;
		if (e.kind == CHAIN_EXTENT_COMPRESSED)
			e.cskip += (uint32_t)cut;
		else
			e.host += cut;
		ret = xvec_push(out, &e);
		if (ret < 0)
			return ret;
		a = end;
		if (end == send)
			(*j)++;
	}
	return 0;
}

/* Overlay layer map L (with fall-through runs) on view; result in out. */
static int overlay(struct xvec *out, const struct xvec *lmap, const struct xvec *view,
		   uint16_t hole_layer)
{
	size_t j = 0;
	int ret;

	for (size_t i = 0; i < lmap->n; i++) {
		const struct xt *e = &lmap->v[i];

		if (e->kind == KIND_FALLTHROUGH)
			ret = copy_range(out, view, &j, e->start, e->start + e->len, hole_layer);
		else
			ret = xvec_push(out, e);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static bool xt_is_data(const struct xt *e)
{
	return e->kind == CHAIN_EXTENT_DATA || e->kind == CHAIN_EXTENT_COMPRESSED ||
	       (e->kind == CHAIN_EXTENT_ZERO && e->zero_data);
}

/* ---- open / close ---- */

/* Open cl as c->layers[k] and read its header into img. A layer marked
 * merging whose file is gone answers -ENOENT without a log line (the
 * caller leaves it out). */
static int layer_open(struct chain *c, const struct chain_layer *cl, size_t k,
		      struct qcow2_image *img)
{
	struct layer *l = &c->layers[k];
	char reason[256];
	struct stat st;
	int ret;

	l->fd = -1;
	l->format = cl->format;
	l->name = strdup(cl->name);
	if (!l->name)
		return -ENOMEM;
	l->fd = openat(cl->dirfd, cl->name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (l->fd < 0) {
		ret = -errno;
		if (ret != -ENOENT || !cl->merging)
			log_err("chain: %s: open: %s", cl->name, strerror(-ret));
		return ret;
	}
	if (fstat(l->fd, &st) < 0) {
		ret = -errno;
		log_err("chain: %s: fstat: %s", cl->name, strerror(-ret));
		return ret;
	}
	if (!S_ISREG(st.st_mode)) {
		log_err("chain: %s: not a regular file", cl->name);
		return -EIO;
	}
	l->file_size = (uint64_t)st.st_size;
	if (cl->format == IMAGE_FORMAT_RAW) {
		l->vsize = raw_virtual_size(l->file_size);
		if (l->vsize > QCOW2_MAX_VIRTUAL_SIZE) {
			log_err("chain: %s: raw file too large", cl->name);
			return -EIO;
		}
		return 0;
	}
	ret = qcow2_image_open(img, l->fd, l->name, reason, sizeof(reason));
	if (ret < 0) {
		log_err("chain: %s: %s", cl->name, reason);
		return ret;
	}
	l->vsize = img->virtual_size;
	l->cluster_size = img->cluster_size;
	l->compression = img->compression;
	return 0;
}

/* A qcow2 layer's header must name next as its backing file (none when
 * next is NULL). */
static int layer_check_backing(const struct chain_layer *cl, const struct qcow2_image *img,
			       const struct chain_layer *next)
{
	if (!next) {
		if (img->has_backing) {
			log_err("chain: %s: header names backing file \"%.100s\" but the chain "
				"ends here",
				cl->name, img->backing_name);
			return -EIO;
		}
		return 0;
	}
	if (!img->has_backing) {
		log_err("chain: %s: header has no backing file, expected \"%.100s\"", cl->name,
			next->name);
		return -EIO;
	}
	if (!qcow2_name_is_basename(img->backing_name)) {
		log_err("chain: %s: backing file name \"%.100s\" is not a plain basename", cl->name,
			img->backing_name);
		return -EIO;
	}
	if (strcmp(img->backing_name, next->name) != 0) {
		log_err("chain: %s: backing file \"%.100s\" is not the next layer \"%.100s\"",
			cl->name, img->backing_name, next->name);
		return -EIO;
	}
	if (img->backing_format_known && img->backing_format != next->format) {
		log_err("chain: %s: backing format %s, but %s was given as %s", cl->name,
			image_format_name(img->backing_format), next->name,
			image_format_name(next->format));
		return -EIO;
	}
	return 0;
}

/* The layer after layers[i] that img's header names: i + 1, or a lower one
 * when every layer in between is merging (a merge under way has already
 * rebased layers[i] onto it); i + 1 when none fits (the check then says
 * why). */
static size_t layer_next(const struct chain_layer *layers, size_t n, size_t i,
			 const struct qcow2_image *img)
{
	if (!img->has_backing || i + 1 >= n)
		return i + 1;
	for (size_t j = i + 1; j < n; j++) {
		if (!strcmp(img->backing_name, layers[j].name))
			return j;
		if (!layers[j].merging)
			break;
	}
	return i + 1;
}

static void layer_clear(struct layer *l)
{
	if (l->fd >= 0)
		close(l->fd);
	free(l->name);
	memset(l, 0, sizeof(*l));
	l->fd = -1;
}

static int layer_map(struct chain *c, size_t i, const struct qcow2_image *img, struct xvec *vec)
{
	struct layer *l = &c->layers[i];
	struct run_ctx rc = {.vec = vec, .layer = (uint16_t)i};
	char reason[256];
	int ret;

	if (l->format == IMAGE_FORMAT_RAW)
		return raw_map(l, (uint16_t)i, vec);
	reason[0] = '\0';
	ret = qcow2_image_map(img, run_to_xt, &rc, reason, sizeof(reason));
	if (ret < 0 && ret != -ENOMEM && ret != -EFBIG && ret != -ENOBUFS)
		log_err("chain: %s: %s", l->name, reason[0] ? reason : strerror(-ret));
	return ret;
}

void chain_close(struct chain *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nlayers; i++) {
		if (c->layers[i].fd >= 0)
			close(c->layers[i].fd);
		free(c->layers[i].name);
	}
	free(c->layers);
	free(c->ext);
	chain_memory_put(c->ext_bytes);
	free(c);
}

/* Data bytes of view within [0, limit). */
static uint64_t view_data_bytes(const struct xvec *view, uint64_t limit)
{
	uint64_t total = 0;

	for (size_t i = 0; i < view->n && view->v[i].start < limit; i++) {
		const struct xt *e = &view->v[i];
		uint64_t end = e->start + e->len < limit ? e->start + e->len : limit;

		if (xt_is_data(e))
			total += end - e->start;
	}
	return total;
}

/* chain_open(); with counts, also counts[i] = the data bytes of the chain
 * from layer i down, within layer i's virtual size. */
static int chain_open_counting(struct chain **out, const struct chain_layer *layers, size_t n,
			       uint64_t size, uint64_t *counts);

int chain_open(struct chain **out, const struct chain_layer *layers, size_t n, uint64_t size)
{
	return chain_open_counting(out, layers, n, size, NULL);
}

int chain_data_by_depth(const struct chain_layer *layers, size_t n, uint64_t *bytes)
{
	struct chain *c;
	int ret = chain_open_counting(&c, layers, n, 0, bytes);

	if (!ret)
		chain_close(c);
	return ret;
}

static int chain_open_counting(struct chain **out, const struct chain_layer *layers, size_t n,
			       uint64_t size, uint64_t *counts)
{
	uint64_t own = 0;
	struct xvec view = {.own = &own}, lmap = {.own = &own}, res = {.own = &own};
	struct qcow2_image *imgs = NULL;
	size_t *orig = NULL, kept = 0, i, k;
	struct chain *c;
	int ret;

	*out = NULL;
	if (n == 0 || n > CHAIN_MAX_DEPTH || size > QCOW2_MAX_VIRTUAL_SIZE)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		if (!layers[i].name || (layers[i].format != IMAGE_FORMAT_RAW &&
					layers[i].format != IMAGE_FORMAT_QCOW2))
			return -EINVAL;
		if (layers[i].format == IMAGE_FORMAT_RAW && i != n - 1)
			return -EINVAL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->layers = calloc(n, sizeof(*c->layers));
	if (!c->layers) {
		free(c);
		return -ENOMEM;
	}
	for (i = 0; i < n; i++)
		c->layers[i].fd = -1;
	c->nlayers = n;
	c->uid = atomic_fetch_add(&chain_uid_next, 1);
	imgs = calloc(n, sizeof(*imgs));
	orig = calloc(n, sizeof(*orig));
	if (!imgs || !orig) {
		ret = -ENOMEM;
		goto fail;
	}

	/* Top down: each header names the next file kept. A merging layer
	 * whose file is gone was merged into the one below (it is removed
	 * only then), as is one the header above already skips. */
	for (i = 0; i < n;) {
		size_t next = i + 1;

		ret = layer_open(c, &layers[i], kept, &imgs[kept]);
		if (ret == -ENOENT && layers[i].merging && i + 1 < n) {
			layer_clear(&c->layers[kept]);
			i++;
			continue;
		}
		if (ret < 0)
			goto fail;
		if (layers[i].format == IMAGE_FORMAT_QCOW2) {
			next = layer_next(layers, n, i, &imgs[kept]);
			ret = layer_check_backing(&layers[i], &imgs[kept],
						  next < n ? &layers[next] : NULL);
			if (ret < 0)
				goto fail;
		}
		orig[kept++] = i;
		i = next;
	}

	/* Bottom up: view is what layer k+1 and below show. */
	for (k = kept; k-- > 0;) {
		lmap.n = 0;
		ret = layer_map(c, k, &imgs[k], &lmap);
		if (ret < 0)
			goto fail;
		res.n = 0;
		ret = overlay(&res, &lmap, &view, (uint16_t)kept);
		if (ret < 0)
			goto fail;
		struct xvec t = view;
		view = res;
		res = t;
		if (counts)
			counts[orig[k]] = view_data_bytes(&view, c->layers[k].vsize);
	}
	if (counts) {
		/* a layer left out shows what the layer below it shows */
		for (i = n, k = kept; i-- > 0;) {
			if (k > 0 && orig[k - 1] == i)
				k--;
			else
				counts[i] = i + 1 < n ? counts[i + 1] : 0;
		}
	}
	c->nlayers = kept;
	free(imgs);
	free(orig);
	imgs = NULL;
	orig = NULL;
	xvec_free(&lmap);
	xvec_free(&res);

	/* Expose size bytes: cut or extend the top's view. */
	c->size = size ? size : c->layers[0].vsize;
	while (view.n && view.v[view.n - 1].start >= c->size)
		view.n--;
	if (view.n) {
		struct xt *l = &view.v[view.n - 1];

		if (l->start + l->len > c->size)
			l->len = c->size - l->start;
	}
	{
		uint64_t end = view.n ? view.v[view.n - 1].start + view.v[view.n - 1].len : 0;
		struct xt h = {.start = end,
			       .len = c->size - end,
			       .layer = (uint16_t)kept,
			       .kind = CHAIN_EXTENT_HOLE};

		ret = xvec_push(&view, &h);
		if (ret < 0)
			goto fail;
	}
	for (i = view.n; i-- > 0;) {
		struct xt *e = &view.v[i];

		if (i + 1 < view.n && xt_is_data(e) == xt_is_data(&view.v[i + 1]))
			e->run_end = view.v[i + 1].run_end;
		else
			e->run_end = (uint32_t)(i + 1);
	}
	if (view.n && view.n < view.cap) {
		struct xt *v = realloc(view.v, view.n * sizeof(*v));

		if (v) {
			chain_memory_put((view.cap - view.n) * sizeof(*v));
			view.v = v;
			view.cap = view.n;
		}
	}
	c->ext = view.v;
	c->next = view.n;
	c->ext_bytes = view.cap * sizeof(struct xt);
	*out = c;
	return 0;
fail:
	if (ret == -EFBIG) {
		log_err("chain: %s: its map would pass the bound on map memory (%llu KiB) or "
			"%u extents: refused",
			layers[0].name, (unsigned long long)(chain_memory_limit() >> 10),
			CHAIN_MAX_EXTENTS);
		ret = -EIO;
	} else if (ret == -ENOBUFS) {
		log_err("chain: %s: the maps of open chains hold %llu KiB of the %llu KiB they "
			"may use: not resolved now",
			layers[0].name, (unsigned long long)(chain_memory_used() >> 10),
			(unsigned long long)(chain_memory_limit() >> 10));
		ret = -ENOMEM;
	}
	xvec_free(&view);
	xvec_free(&lmap);
	xvec_free(&res);
	free(imgs);
	free(orig);
	chain_close(c);
	return ret;
}

uint64_t chain_size(const struct chain *c)
{
	return c->size;
}

size_t chain_depth(const struct chain *c)
{
	return c->nlayers;
}

const char *chain_layer_name(const struct chain *c, unsigned depth)
{
	return depth < c->nlayers ? c->layers[depth].name : NULL;
}

size_t chain_extent_count(const struct chain *c)
{
	return c->next;
}

/* Index of the extent containing off (off < size). */
static size_t chain_find(const struct chain *c, uint64_t off)
{
	size_t lo = 0, hi = c->next;

	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (c->ext[mid].start <= off)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* ---- reads ---- */

struct tscratch {
	struct qcow2_dctx dctx;
	uint8_t *in, *out;
	size_t in_cap, out_cap;
	uint64_t uid, host; /* the cluster in out (uid 0: none) */
	uint16_t layer;
};

static pthread_key_t tscratch_key;
static pthread_once_t tscratch_once = PTHREAD_ONCE_INIT;

static void tscratch_free(void *p)
{
	struct tscratch *ts = p;

	if (!ts)
		return;
	qcow2_dctx_free(&ts->dctx);
	free(ts->in);
	free(ts->out);
	free(ts);
}

static void tscratch_init(void)
{
	pthread_key_create(&tscratch_key, tscratch_free);
}

static struct tscratch *tscratch_get(void)
{
	struct tscratch *ts;

	pthread_once(&tscratch_once, tscratch_init);
	ts = pthread_getspecific(tscratch_key);
	if (ts)
		return ts;
	ts = calloc(1, sizeof(*ts));
	if (!ts)
		return NULL;
	if (pthread_setspecific(tscratch_key, ts) != 0) {
		free(ts);
		return NULL;
	}
	return ts;
}

static int grow(uint8_t **buf, size_t *cap, size_t need)
{
	uint8_t *p;

	if (*cap >= need)
		return 0;
	p = realloc(*buf, need);
	if (!p)
		return -ENOMEM;
	*buf = p;
	*cap = need;
	return 0;
}

static ssize_t pread_all(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t r = pread(fd, (uint8_t *)buf + done, len - done, (off_t)(off + done));

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			break;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

/* The decompressed cluster of extent e, in the thread's scratch. */
static const uint8_t *cluster_get(struct chain *c, const struct xt *e, uint64_t voff)
{
	const struct layer *l = &c->layers[e->layer];
	struct tscratch *ts = tscratch_get();
	ssize_t r;
	int ret;

	if (!ts) {
		errno = ENOMEM;
		return NULL;
	}
	if (ts->uid == c->uid && ts->layer == e->layer && ts->host == e->host)
		return ts->out;
	ts->uid = 0;
	if (grow(&ts->in, &ts->in_cap, e->csize) < 0 ||
	    grow(&ts->out, &ts->out_cap, l->cluster_size) < 0) {
		errno = ENOMEM;
		return NULL;
	}
	r = pread_all(l->fd, ts->in, e->csize, e->host);
	if (r < 0) {
		log_err("chain: %s: read compressed cluster at 0x%llx: %s", l->name,
			(unsigned long long)e->host, strerror((int)-r));
		errno = EIO;
		return NULL;
	}
	/* The last sector of a descriptor may run past EOF. */
	memset(ts->in + r, 0, e->csize - (size_t)r);
	ret = qcow2_cluster_decompress(&ts->dctx, l->compression, ts->in, e->csize, ts->out,
				       l->cluster_size);
	if (ret < 0) {
		if (ret == -EIO)
			log_err("chain: %s: compressed cluster for virtual 0x%llx (file 0x%llx) "
				"does not decompress",
				l->name, (unsigned long long)voff, (unsigned long long)e->host);
		errno = -ret;
		return NULL;
	}
	ts->uid = c->uid;
	ts->layer = e->layer;
	ts->host = e->host;
	return ts->out;
}

int chain_read(struct chain *c, void *buf, size_t len, uint64_t off)
{
	uint8_t *dst = buf;
	size_t done = 0, i;

	if (off >= c->size || len == 0)
		return 0;
	if (len > ((size_t)INT_MAX & ~(size_t)4095))
		len = (size_t)INT_MAX & ~(size_t)4095;
	if (len > c->size - off)
		len = (size_t)(c->size - off);
	i = chain_find(c, off);
	while (done < len) {
		const struct xt *e = &c->ext[i];
		uint64_t pos = off + done;
		uint64_t in = pos - e->start;
		size_t n = e->len - in < len - done ? (size_t)(e->len - in) : len - done;

		switch (e->kind) {
		case CHAIN_EXTENT_DATA: {
			const struct layer *l = &c->layers[e->layer];
			ssize_t r = pread_all(l->fd, dst + done, n, e->host + in);

			if (r < 0) {
				log_err("chain: %s: read at 0x%llx: %s", l->name,
					(unsigned long long)(e->host + in), strerror((int)-r));
				return -EIO;
			}
			if ((size_t)r < n) /* file shrank: reads as zeros */
				memset(dst + done + r, 0, n - (size_t)r);
			break;
		}
		case CHAIN_EXTENT_COMPRESSED: {
			const uint8_t *cl = cluster_get(c, e, pos);

			if (!cl)
				return errno == ENOMEM ? -ENOMEM : -EIO;
			memcpy(dst + done, cl + e->cskip + in, n);
			break;
		}
		default:
			memset(dst + done, 0, n);
			break;
		}
		done += n;
		i++;
	}
	return (int)done;
}

int chain_extent_get(const struct chain *c, uint64_t off, struct chain_extent *ext)
{
	const struct xt *e;
	uint64_t in;

	memset(ext, 0, sizeof(*ext));
	ext->fd = -1;
	if (off >= c->size)
		return -ENXIO;
	e = &c->ext[chain_find(c, off)];
	in = off - e->start;
	ext->kind = e->kind;
	ext->data = xt_is_data(e);
	ext->length = e->len - in;
	ext->depth = e->layer;
	if (e->kind == CHAIN_EXTENT_HOLE)
		return 0;
	ext->fd = c->layers[e->layer].fd;
	switch (e->kind) {
	case CHAIN_EXTENT_DATA:
		ext->offset_valid = 1;
		ext->offset = e->host + in;
		break;
	case CHAIN_EXTENT_ZERO:
		ext->offset_valid = e->has_host;
		ext->offset = e->has_host ? e->host + in : 0;
		break;
	case CHAIN_EXTENT_COMPRESSED:
		ext->offset_valid = 1;
		ext->offset = e->host;
		ext->csize = e->csize;
		ext->cluster_offset = e->cskip + (uint32_t)in;
		break;
	default:
		break;
	}
	return 0;
}

int64_t chain_seek(const struct chain *c, uint64_t off, int whence)
{
	size_t i, j;

	if (whence != SEEK_DATA && whence != SEEK_HOLE)
		return -EINVAL;
	if (off >= c->size)
		return -ENXIO;
	i = chain_find(c, off);
	if (xt_is_data(&c->ext[i]) == (whence == SEEK_DATA))
		return (int64_t)off;
	j = c->ext[i].run_end;
	if (j >= c->next)
		return whence == SEEK_DATA ? -ENXIO : (int64_t)c->size;
	return (int64_t)c->ext[j].start;
}

/* Whether extent e comes from a layer above depth. */
static bool xt_above(const struct xt *e, unsigned depth)
{
	/* a hole's layer is the chain depth: never above */
	return e->kind != CHAIN_EXTENT_HOLE && e->layer < depth;
}

int chain_ranges_above(const struct chain *c, unsigned depth, struct chain_range **out, size_t *n,
		       uint64_t *bytes)
{
	struct chain_range *v = NULL;
	size_t cnt = 0, i;
	uint64_t total = 0, end = UINT64_MAX;

	*out = NULL;
	*n = 0;
	if (bytes)
		*bytes = 0;
	if (depth == 0 || depth > c->nlayers)
		return -EINVAL;
	/* count first: the ranges take exactly their room from the bound */
	for (i = 0; i < c->next; i++) {
		const struct xt *e = &c->ext[i];

		if (!xt_above(e, depth))
			continue;
		if (e->start != end)
			cnt++;
		end = e->start + e->len;
	}
	if (cnt) {
		if (chain_memory_take(cnt * sizeof(*v))) {
			log_err("chain: %s: the maps of open chains hold %llu KiB of the %llu KiB "
				"they may use: no room for %zu ranges",
				c->layers[0].name, (unsigned long long)(chain_memory_used() >> 10),
				(unsigned long long)(chain_memory_limit() >> 10), cnt);
			return -ENOMEM;
		}
		v = malloc(cnt * sizeof(*v));
		if (!v) {
			chain_memory_put(cnt * sizeof(*v));
			return -ENOMEM;
		}
	}
	cnt = 0;
	for (i = 0; i < c->next; i++) {
		const struct xt *e = &c->ext[i];

		if (!xt_above(e, depth))
			continue;
		total += e->len;
		if (cnt && v[cnt - 1].start + v[cnt - 1].len == e->start) {
			v[cnt - 1].len += e->len;
			continue;
		}
		v[cnt].start = e->start;
		v[cnt].len = e->len;
		cnt++;
	}
	*out = v;
	*n = cnt;
	if (bytes)
		*bytes = total;
	return 0;
}

void chain_ranges_free(struct chain_range *r, size_t n)
{
	free(r);
	chain_memory_put(n * sizeof(*r));
}

size_t chain_ranges_find(const struct chain_range *r, size_t n, uint64_t off)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (r[mid].start + r[mid].len <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int64_t chain_ranges_seek(const struct chain_range *r, size_t n, uint64_t size, uint64_t off,
			  int whence)
{
	size_t i;

	if (whence != SEEK_DATA && whence != SEEK_HOLE)
		return -EINVAL;
	if (off >= size)
		return -ENXIO;
	i = chain_ranges_find(r, n, off);
	if (whence == SEEK_DATA) {
		if (i == n || r[i].start >= size)
			return -ENXIO;
		return (int64_t)(r[i].start > off ? r[i].start : off);
	}
	if (i == n || r[i].start > off)
		return (int64_t)off;
	return (int64_t)(r[i].start + r[i].len < size ? r[i].start + r[i].len : size);
}
