/* snapfs-check - compare a share with its catalogue and report what
 * disagrees (check.h); never changes either.
 *
 *   snapfs-check [-q] [-o catalog=DIR | -o etcd=ENDPOINTS[,etcd_prefix=P]] SHARE
 *
 * The catalogue is found as snapfs finds it (the same defaults), opened
 * read-only beside a mounted snapfs (LMDB: a reader, no writer lock;
 * etcd: the prefix read at one revision into a scratch copy). Exit status
 * 0 when everything agrees, 1 when something disagrees, 2 on error.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "catalog.h"
#include "check.h"
#include "log.h"
#include "options.h"
#include "share.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: snapfs-check [-q] [-o catalog=DIR | -o "
		   "etcd=HOST:PORT[+...][,etcd_prefix=P]] "
		   "SHARE\n"
		   "Compare SHARE with its snapfs catalogue and print one line per disagreement;\n"
		   "change nothing. Exit status: 0 all agree, 1 disagreements, 2 error.\n");
}

/* Is snapfs.lock in dir flocked by a mounted snapfs? Read from
 * /proc/locks, so the lock is never taken, not even for a moment. */
static bool catalogue_mounted(const char *dir)
{
	char path[4096], line[512];
	struct stat st;
	FILE *f;
	bool found = false;

	snprintf(path, sizeof(path), "%s/snapfs.lock", dir);
	if (stat(path, &st))
		return false;
	f = fopen("/proc/locks", "r");
	if (!f)
		return true; /* unknown: assume a mount, report nothing as crashed */
	while (!found && fgets(line, sizeof(line), f)) {
		unsigned maj, min;
		unsigned long long ino;
		char *p = strstr(line, "FLOCK");

		if (!p)
			continue;
		for (p = line; *p; p++)
			if (sscanf(p, " %x:%x:%llu", &maj, &min, &ino) == 3 && p[0] == ' ' &&
			    strchr(p + 1, ':') && maj == major(st.st_dev) &&
			    min == minor(st.st_dev) && ino == (unsigned long long)st.st_ino) {
				found = true;
				break;
			}
	}
	fclose(f);
	return found;
}

static int set_option(struct snapfs_options *o, char *opt)
{
	char *v = strchr(opt, '=');
	char **field = NULL;

	if (!v)
		return -EINVAL;
	*v++ = '\0';
	if (!strcmp(opt, "catalog"))
		field = &o->catalog;
	else if (!strcmp(opt, "etcd"))
		field = &o->etcd;
	else if (!strcmp(opt, "etcd_prefix"))
		field = &o->etcd_prefix;
	else if (!strcmp(opt, "host_id"))
		field = &o->host_id;
	if (!field)
		return -EINVAL;
	free(*field);
	*field = strdup(v);
	return *field ? 0 : -ENOMEM;
}

int main(int argc, char **argv)
{
	struct snapfs_options o = {0};
	struct catalog *cat = NULL;
	struct share *share = NULL;
	char err[512], scratch[] = "/tmp/snapfs-check.XXXXXX";
	bool quiet = false, made_scratch = false;
	int c, rc, status = 2;

	log_set_level(LOG_LEVEL_WARN); /* to stderr: why a file or etcd failed */
	while ((c = getopt(argc, argv, "o:qh")) != -1) {
		switch (c) {
		case 'o':
			for (char *s = optarg, *tok; (tok = strsep(&s, ","));) {
				if (*tok && set_option(&o, tok)) {
					fprintf(stderr, "snapfs-check: unknown or bad option %s\n",
						tok);
					return 2;
				}
			}
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind + 1 != argc) {
		usage(stderr);
		return 2;
	}
	if (quiet)
		log_set_level(LOG_LEVEL_ERR);
	options_set_defaults(&o);
	if (options_finalize(&o, argv[optind], err, sizeof(err))) {
		fprintf(stderr, "snapfs-check: %s\n", err);
		goto out;
	}
	if (o.etcd) {
		struct catalog_shared_options so = {
			.endpoints = o.etcd, .prefix = o.etcd_prefix_used, .host_id = ""};

		if (!mkdtemp(scratch)) {
			fprintf(stderr, "snapfs-check: %s: %s\n", scratch, strerror(errno));
			goto out;
		}
		made_scratch = true;
		rc = catalog_open_readonly(&cat, scratch, &so);
	} else {
		rc = catalog_open_readonly(&cat, o.catalog_dir, NULL);
	}
	if (rc == -ENOENT && !o.etcd)
		rmdir(o.catalog_dir); /* options_finalize() made it: leave no trace */
	if (rc) {
		fprintf(stderr, "snapfs-check: cannot read the catalogue (%s): %s\n",
			o.etcd ? o.etcd : o.catalog_dir, strerror(-rc));
		goto out;
	}
	rc = share_open(&share, o.share, NULL);
	if (rc) {
		fprintf(stderr, "snapfs-check: cannot open the share %s: %s\n", o.share,
			strerror(-rc));
		goto out;
	}
	rc = check_run(cat, share, o.etcd ? true : catalogue_mounted(o.catalog_dir), stdout);
	if (rc < 0) {
		fprintf(stderr, "snapfs-check: %s\n", strerror(-rc));
		goto out;
	}
	printf("snapfs-check: %s: %d disagreement%s\n", o.share, rc, rc == 1 ? "" : "s");
	status = rc ? 1 : 0;
out:
	share_close(share);
	catalog_close(cat);
	if (made_scratch) {
		char cmd[128];

		/* the scratch copy: data.mdb and lock.mdb */
		snprintf(cmd, sizeof(cmd), "%s/data.mdb", scratch);
		unlink(cmd);
		snprintf(cmd, sizeof(cmd), "%s/lock.mdb", scratch);
		unlink(cmd);
		rmdir(scratch);
	}
	options_free(&o);
	return status;
}
