/* etcd.c - see etcd.h. */
#include "etcd.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define ETCD_MAX_ENDPOINTS 16
#define ETCD_CONNECT_MS 1000

struct etcd {
	size_t count;
	char *urls[ETCD_MAX_ENDPOINTS];     /* "http://host:port" */
	pthread_mutex_t lock;
	size_t current;                     /* the endpoint that last answered */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

int etcd_new(struct etcd **out, const char *endpoints)
{
	struct etcd *e = calloc(1, sizeof(*e));
	char *list = strdup(endpoints ? endpoints : ""), *save = NULL;

	if (!e || !list) {
		free(e);
		free(list);
		return -ENOMEM;
	}
	pthread_once(&curl_once, curl_init_once);
	for (char *tok = strtok_r(list, "+", &save); tok; tok = strtok_r(NULL, "+", &save)) {
		const char *hp = strncmp(tok, "http://", 7) ? tok : tok + 7;

		if (e->count == ETCD_MAX_ENDPOINTS || !*hp || !strchr(hp, ':') ||
		    strpbrk(hp, "/ \t?#")) {
			log_err("etcd=%s: bad endpoint '%s' (host:port, several joined by '+')",
				endpoints, tok);
			free(list);
			etcd_free(e);
			return -EINVAL;
		}
		if (asprintf(&e->urls[e->count], "http://%s", hp) < 0) {
			free(list);
			etcd_free(e);
			return -ENOMEM;
		}
		e->count++;
	}
	free(list);
	if (!e->count) {
		log_err("etcd= names no endpoint");
		etcd_free(e);
		return -EINVAL;
	}
	pthread_mutex_init(&e->lock, NULL);
	*out = e;
	return 0;
}

void etcd_free(struct etcd *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < e->count; i++)
		free(e->urls[i]);
	if (e->count)
		pthread_mutex_destroy(&e->lock);
	free(e);
}

const char *etcd_endpoint(struct etcd *e)
{
	size_t i;

	pthread_mutex_lock(&e->lock);
	i = e->current;
	pthread_mutex_unlock(&e->lock);
	return e->urls[i] + 7;
}

static size_t first_endpoint(struct etcd *e)
{
	size_t i;

	pthread_mutex_lock(&e->lock);
	i = e->current;
	pthread_mutex_unlock(&e->lock);
	return i;
}

static void set_endpoint(struct etcd *e, size_t i)
{
	pthread_mutex_lock(&e->lock);
	e->current = i;
	pthread_mutex_unlock(&e->lock);
}

struct buffer {
	char *data;
	size_t len, cap;
};

static size_t buffer_append(char *ptr, size_t size, size_t n, void *arg)
{
	struct buffer *b = arg;
	size_t add = size * n;

	if (b->len + add + 1 > b->cap) {
		size_t cap = (b->len + add + 1) * 2;
		char *d = realloc(b->data, cap);

		if (!d)
			return 0;
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, ptr, add);
	b->len += add;
	b->data[b->len] = '\0';
	return add;
}

static CURL *easy_for(const char *url, const char *path, const char *body,
		      struct curl_slist *headers, long timeout_ms)
{
	CURL *c = curl_easy_init();
	char full[512];

	if (!c)
		return NULL;
	snprintf(full, sizeof(full), "%s%s", url, path);
	curl_easy_setopt(c, CURLOPT_URL, full);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)ETCD_CONNECT_MS);
	if (timeout_ms > 0)
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	return c;
}

/* etcd's own error reply: {"error": ..., "code": N, "message": ...}. */
static const char *server_error(json_t *reply)
{
	const char *msg = json_string_value(json_object_get(reply, "message"));

	if (!msg)
		msg = json_string_value(json_object_get(reply, "error"));
	return msg;
}

/* Append "; what" to why (every endpoint's failure goes in the log line). */
static void __attribute__((format(printf, 3, 4))) why_add(char *why, size_t len, const char *fmt, ...)
{
	size_t n = strlen(why);
	va_list ap;

	if (n && n + 2 < len)
		memcpy(why + n, "; ", 3), n += 2;
	va_start(ap, fmt);
	vsnprintf(why + n, len - n, fmt, ap);
	va_end(ap);
}

int etcd_post(struct etcd *e, const char *path, json_t *body, long timeout_ms, json_t **reply)
{
	struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
	char *text = json_dumps(body, JSON_COMPACT);
	size_t start = first_endpoint(e);
	char why[1024] = "";
	int rc = -EIO;

	*reply = NULL;
	if (!headers || !text) {
		curl_slist_free_all(headers);
		free(text);
		return -ENOMEM;
	}
	for (size_t k = 0; k < e->count && rc; k++) {
		size_t i = (start + k) % e->count;
		struct buffer b = {NULL, 0, 0};
		CURL *c = easy_for(e->urls[i], path, text, headers, timeout_ms);
		CURLcode cc;
		long status = 0;

		if (!c)
			break;
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, buffer_append);
		curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
		cc = curl_easy_perform(c);
		if (cc == CURLE_OK)
			curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		curl_easy_cleanup(c);
		if (cc != CURLE_OK) {
			why_add(why, sizeof(why), "%s: %s", e->urls[i] + 7, curl_easy_strerror(cc));
		} else {
			json_t *j = b.data ? json_loads(b.data, 0, NULL) : NULL;

			if (status == 200 && json_is_object(j)) {
				*reply = j;
				set_endpoint(e, i);
				rc = 0;
			} else {
				why_add(why, sizeof(why), "%s: HTTP %ld: %s", e->urls[i] + 7, status,
					j && server_error(j) ? server_error(j) : "no reply");
				json_decref(j);
				/* a refusal by the cluster itself (not this member's
				 * trouble) would be the same elsewhere */
				if (status == 400) {
					free(b.data);
					break;
				}
			}
		}
		free(b.data);
	}
	if (rc)
		log_err("etcd %s failed: %s", path, why);
	curl_slist_free_all(headers);
	free(text);
	return rc;
}

struct stream {
	struct buffer buf;
	int (*on_result)(json_t *result, void *arg);
	void *arg;
	const volatile bool *stop;
	int ret;
};

/* The gateway streams one JSON object per message; take each whole one
 * out of the buffer as it completes. */
static size_t stream_append(char *ptr, size_t size, size_t n, void *arg)
{
	struct stream *s = arg;
	size_t add = size * n, used = 0;

	if (buffer_append(ptr, size, n, &s->buf) != add)
		return 0;
	while (used < s->buf.len) {
		json_error_t err;
		json_t *msg;

		while (used < s->buf.len && strchr(" \r\n\t", s->buf.data[used]))
			used++;
		if (used == s->buf.len)
			break;
		msg = json_loadb(s->buf.data + used, s->buf.len - used, JSON_DISABLE_EOF_CHECK, &err);
		if (!msg)
			break; /* incomplete: wait for more */
		used += (size_t)err.position;
		if (json_is_object(json_object_get(msg, "result")))
			s->ret = s->on_result(json_object_get(msg, "result"), s->arg);
		else {
			log_err("etcd watch: %s", server_error(msg) ? server_error(msg) : "odd message");
			s->ret = -EIO;
		}
		json_decref(msg);
		if (s->ret) {
			used = s->buf.len;
			break;
		}
	}
	memmove(s->buf.data, s->buf.data + used, s->buf.len - used);
	s->buf.len -= used;
	return s->ret ? 0 : add;
}

static int stream_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	struct stream *s = arg;

	return *s->stop ? 1 : 0;
}

int etcd_watch(struct etcd *e, json_t *create_request, int (*on_result)(json_t *result, void *arg),
	       void *arg, const volatile bool *stop)
{
	struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
	json_t *req = json_pack("{sO}", "create_request", create_request);
	char *text = req ? json_dumps(req, JSON_COMPACT) : NULL;
	struct stream s = {{NULL, 0, 0}, on_result, arg, stop, 0};
	size_t i = first_endpoint(e);
	CURL *c = NULL;
	CURLcode cc;

	json_decref(req);
	if (!headers || !text || !(c = easy_for(e->urls[i], "/v3/watch", text, headers, 0))) {
		curl_slist_free_all(headers);
		free(text);
		return -ENOMEM;
	}
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, stream_append);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, stream_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, &s);
	/* a member that stops talking is dropped for another one */
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 600L);
	cc = curl_easy_perform(c);
	curl_easy_cleanup(c);
	curl_slist_free_all(headers);
	free(text);
	free(s.buf.data);
	if (s.ret)
		return s.ret;
	if (*stop)
		return 0;
	log_warn("etcd watch at %s ended: %s", e->urls[i] + 7, curl_easy_strerror(cc));
	set_endpoint(e, (i + 1) % e->count);
	return -EIO;
}

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

json_t *etcd_b64(const void *data, size_t len)
{
	const unsigned char *p = data;
	char *out = malloc(4 * ((len + 2) / 3) + 1), *o = out;
	json_t *j;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;

		if (i + 1 < len)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < len)
			v |= p[i + 2];
		*o++ = b64chars[(v >> 18) & 63];
		*o++ = b64chars[(v >> 12) & 63];
		*o++ = i + 1 < len ? b64chars[(v >> 6) & 63] : '=';
		*o++ = i + 2 < len ? b64chars[v & 63] : '=';
	}
	*o = '\0';
	j = json_string(out);
	free(out);
	return j;
}

static int b64_value(char c)
{
	const char *p = c ? strchr(b64chars, c) : NULL;

	return p ? (int)(p - b64chars) : -1;
}

unsigned char *etcd_unb64(json_t *j, size_t *len)
{
	const char *s = json_string_value(j);
	size_t n = s ? strlen(s) : 0, k = 0;
	unsigned char *out;
	uint32_t acc = 0;
	int bits = 0;

	if (!s)
		return NULL;
	out = malloc(n / 4 * 3 + 4);
	if (!out)
		return NULL;
	for (size_t i = 0; i < n && s[i] != '='; i++) {
		int v = b64_value(s[i]);

		if (v < 0) {
			free(out);
			return NULL;
		}
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[k++] = (unsigned char)(acc >> bits);
		}
	}
	out[k] = '\0';
	*len = k;
	return out;
}

int64_t etcd_int(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	if (json_is_integer(v))
		return json_integer_value(v);
	if (json_is_string(v))
		return strtoll(json_string_value(v), NULL, 10);
	return 0;
}

json_t *etcd_prefix_end(const void *prefix, size_t len)
{
	unsigned char end[512];

	if (len == 0 || len > sizeof(end))
		return etcd_b64("\0", 1); /* every key */
	memcpy(end, prefix, len);
	for (size_t i = len; i-- > 0;) {
		if (end[i] < 0xff) {
			end[i]++;
			return etcd_b64(end, i + 1);
		}
	}
	return etcd_b64("\0", 1);
}
