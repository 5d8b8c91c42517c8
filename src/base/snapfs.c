/* snapfs.c - see snapfs.h. */
#include "config.h"
#include "snapfs.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

bool cred_is_admin(const struct snapfs *fs, const struct cred *c)
{
	if (c->uid == 0)
		return true;
	if (!fs->opts->has_admin_gid)
		return false;
	if (c->gid == fs->opts->admin_gid)
		return true;
	for (int i = 0; i < c->ngroups; i++)
		if (c->groups[i] == fs->opts->admin_gid)
			return true;
	return false;
}

void fault_point(const char *step)
{
#ifdef SNAPFS_FAULT_INJECTION
	const char *at = getenv("SNAPFS_CRASH_AT");

	if (at && !strcmp(at, step)) {
		log_err("fault injection: killing the daemon at %s", step);
		raise(SIGKILL);
	}
#else
	(void)step;
#endif
}
