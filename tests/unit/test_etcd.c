/* test_etcd.c - the etcd client's encodings and endpoint parsing (no etcd:
 * the multi-host mount suite, tests/fs/multihost.sh, runs a real cluster). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "etcd.h"
#include "log.h"

static void quiet(void)
{
	log_set_quiet(true);
}

TestSuite(etcd, .init = quiet);

static void roundtrip(const void *data, size_t len, const char *expect)
{
	json_t *j = etcd_b64(data, len);
	size_t back_len = 99;
	unsigned char *back;

	cr_assert_not_null(j);
	cr_assert_str_eq(json_string_value(j), expect);
	back = etcd_unb64(j, &back_len);
	cr_assert_not_null(back);
	cr_assert_eq(back_len, len);
	cr_assert_eq(memcmp(back, data, len), 0);
	free(back);
	json_decref(j);
}

Test(etcd, base64_as_rfc4648)
{
	roundtrip("", 0, "");
	roundtrip("f", 1, "Zg==");
	roundtrip("fo", 2, "Zm8=");
	roundtrip("foo", 3, "Zm9v");
	roundtrip("foob", 4, "Zm9vYg==");
	roundtrip("\x00\xff\x10\x80", 4, "AP8QgA==");
}

Test(etcd, base64_refuses_garbage)
{
	json_t *j = json_string("Zm9v!");
	size_t len;

	cr_assert_null(etcd_unb64(j, &len));
	json_decref(j);
	cr_assert_null(etcd_unb64(NULL, &len));
}

Test(etcd, prefix_end_is_the_next_key)
{
	json_t *j = etcd_prefix_end("/p/c/", 5);
	size_t len;
	unsigned char *end = etcd_unb64(j, &len);

	cr_assert_eq(len, 5);
	cr_assert_eq(memcmp(end, "/p/c0", 5), 0); /* '/' + 1 */
	free(end);
	json_decref(j);
	j = etcd_prefix_end("a\xff", 2);
	end = etcd_unb64(j, &len);
	cr_assert_eq(len, 1);
	cr_assert_eq(end[0], 'b');
	free(end);
	json_decref(j);
}

Test(etcd, int64_as_string_or_number)
{
	json_t *o = json_pack("{sssIss}", "revision", "9007199254740993", "count", (json_int_t)7,
			      "bad", "x");

	cr_assert_eq(etcd_int(o, "revision"), 9007199254740993LL);
	cr_assert_eq(etcd_int(o, "count"), 7);
	cr_assert_eq(etcd_int(o, "bad"), 0);
	cr_assert_eq(etcd_int(o, "missing"), 0);
	json_decref(o);
}

Test(etcd, endpoints_joined_by_plus)
{
	struct etcd *e = NULL;

	cr_assert_eq(etcd_new(&e, "127.0.0.1:2379+http://[::1]:2379+localhost:22379"), 0);
	cr_assert_str_eq(etcd_endpoint(e), "127.0.0.1:2379");
	etcd_free(e);
	cr_assert_eq(etcd_new(&e, ""), -EINVAL);
	cr_assert_eq(etcd_new(&e, "nohostport"), -EINVAL);
	cr_assert_eq(etcd_new(&e, "a:1,b:2"), 0); /* ',' is no separator: one odd host */
	etcd_free(e);
	cr_assert_eq(etcd_new(&e, "a:1/x"), -EINVAL);
}
