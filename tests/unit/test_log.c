/* test_log.c - unit tests of src/base/log.c: destinations, levels, errno
 * names, and the one line of a refused request. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"
#include "log.h"

static char dir[256], path[300];

static void setup(void)
{
	char err[256];

	tmpdir_make(dir, sizeof(dir), "log");
	snprintf(path, sizeof(path), "%s/snapfs.log", dir);
	cr_assert_eq(log_setup(path, true, NULL, err, sizeof(err)), 0, "%s", err);
	log_start();
}

static void teardown(void)
{
	unlink(path);
	rmdir(dir);
	test_leak_check();
}

TestSuite(log_file, .init = setup, .fini = teardown);
TestSuite(log_names, .fini = test_leak_check);

/* The lines of the log file without their stamps, joined by '\n'. */
static char *lines(void)
{
	static char out[8192];
	char line[2300];
	FILE *f = fopen(path, "r");
	size_t n = 0;

	cr_assert_not_null(f);
	out[0] = '\0';
	while (fgets(line, sizeof(line), f)) {
		const char *p = strstr(line, "]: ");

		cr_assert_not_null(p, "no stamp on %s", line);
		n += (size_t)snprintf(out + n, sizeof(out) - n, "%s", p + 3);
	}
	fclose(f);
	return out;
}

Test(log_names, errno_names)
{
	cr_assert_str_eq(errno_name(EBUSY), "EBUSY");
	cr_assert_str_eq(errno_name(ENOTSUP), "ENOTSUP");
	cr_assert_str_eq(errno_name(E2BIG), "E2BIG");
	cr_assert_str_eq(errno_name(ENODATA), "ENODATA");
	cr_assert_str_eq(errno_name(9999), "E9999");
}

Test(log_names, levels)
{
	enum log_level l;

	cr_assert_eq(log_level_parse("error", &l), 0);
	cr_assert_eq(l, LOG_LEVEL_ERR);
	cr_assert_eq(log_level_parse("warning", &l), 0);
	cr_assert_eq(l, LOG_LEVEL_WARN);
	cr_assert_eq(log_level_parse("debug", &l), 0);
	cr_assert_eq(l, LOG_LEVEL_DEBUG);
	cr_assert_eq(log_level_parse("warn", &l), -EINVAL);
	cr_assert_eq(log_level_parse("", &l), -EINVAL);
	cr_assert_eq(log_level_parse(NULL, &l), -EINVAL);
}

Test(log_names, bad_destinations)
{
	char err[256];

	cr_assert_eq(log_setup("relative.log", true, NULL, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "log=relative.log") != NULL, "%s", err);
	cr_assert_eq(log_setup("/nonexistent-dir/x.log", true, NULL, err, sizeof(err)), -ENOENT);
	cr_assert(strstr(err, "cannot open the log file") != NULL, "%s", err);
	cr_assert_eq(log_setup("stderr", false, NULL, err, sizeof(err)), 0);
	cr_assert(log_uses_stderr());
}

Test(log_file, stamped_lines_and_mode)
{
	struct stat st;

	log_info("hello %d", 42);
	cr_assert_str_eq(lines(), "info: hello 42\n");
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0640);
}

Test(log_file, one_line_per_refused_request)
{
	log_request_begin();
	cr_assert_eq(log_refuse(-EBUSY, "volume %s is busy", "v1"), -EBUSY);
	log_refuse(-EINVAL, "a later reason"); /* the first one stands */
	cr_assert_eq(log_request_end(-EBUSY, LOG_LEVEL_INFO, "rmdir", "tenants/a/volumes/v"),
		     -EBUSY);
	log_request_begin();
	log_request_end(-ENOTSUP, LOG_LEVEL_INFO, "setxattr user.x", "tenants/a");
	log_request_begin();
	log_refuse(-EPERM, "not logged: the request succeeded");
	log_request_end(0, LOG_LEVEL_INFO, "mkdir", "tenants/b");
	cr_assert_str_eq(lines(),
			 "info: rmdir tenants/a/volumes/v: EBUSY: volume v1 is busy\n"
			 "info: setxattr user.x tenants/a: ENOTSUP: Operation not supported\n");
}

Test(log_file, reason_of_another_errno)
{
	log_request_begin();
	log_refuse(-EINVAL, "volume v1 is no member");
	log_request_end(-EIO, LOG_LEVEL_INFO, "setxattr user.remove_volumes", "g");
	cr_assert_str_eq(lines(), "error: setxattr user.remove_volumes g: EIO: Input/output error "
				  "(after EINVAL: volume v1 is no member)\n");
}

Test(log_file, refusal_outside_a_request)
{
	log_refuse(-EINVAL, "import: bad file %s", "f");
	cr_assert_str_eq(lines(), "info: EINVAL: import: bad file f\n");
}

Test(log_file, levels_filter)
{
	log_set_level(LOG_LEVEL_ERR);
	log_info("dropped");
	log_request_begin();
	log_request_end(-EINVAL, LOG_LEVEL_INFO, "mkdir", "x"); /* info: dropped */
	log_request_begin();
	log_refuse(-EIO, "qcow2 header of f is damaged");
	log_request_end(-EIO, LOG_LEVEL_INFO, "rmdir", "y"); /* EIO: raised to error */
	log_set_level(LOG_LEVEL_DEBUG);
	log_request_begin();
	log_request_end(-ENOENT, LOG_LEVEL_DEBUG, "lookup", "z");
	cr_assert_str_eq(lines(), "error: rmdir y: EIO: qcow2 header of f is damaged\n"
				  "debug: lookup z: ENOENT: No such file or directory\n");
}
