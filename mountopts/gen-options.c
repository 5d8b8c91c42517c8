/* gen-options.c - print the snapfs.8 man page from options.def.
 *
 * Usage: gen-options man VERSION
 * Runs at build time; the daemon's --help includes options.def itself.
 */
#include <stdio.h>
#include <string.h>

static void man_escape(const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\e", stdout);
		else if (*s == '-')
			fputs("\\-", stdout);
		else
			putchar(*s);
	}
}

static void print_default(const char *def)
{
	if (def)
		printf(" Default: %s.", def);
}

static void print_man(const char *version)
{
	printf(".TH SNAPFS 8 \"\" \"snapfs %s\" \"System Administration\"\n", version);
	puts(".SH NAME\nsnapfs \\- mount a share of qcow2 volumes as a tree of tenants, "
	     "volumes and snapshots");
	puts(".SH SYNOPSIS\n.B snapfs\n[\\fB\\-f\\fR] [\\fB\\-d\\fR] [\\fB\\-o\\fR "
	     "\\fIOPTION\\fR[,\\fIOPTION\\fR...]] \\fISHARE\\fR \\fIMOUNTPOINT\\fR");
	puts(".SH DESCRIPTION\n\\fBsnapfs\\fR is a FUSE daemon that shows the volume files "
	     "of \\fISHARE\\fR (normally an NFS mount written by Cinder's NFS driver) as "
	     "directories: tenants, volumes and their snapshots. \\fBmkdir\\fR creates, "
	     "\\fBrmdir\\fR deletes, \\fBsetfattr\\fR sets metadata and resets state, "
	     "and \\fBgetfattr \\-d\\fR shows an object's attributes. The catalogue is an "
	     "LMDB environment on a local disk.");
	puts(".PP\nFrom /etc/fstab:\n.PP\n.nf\n/srv/nfs/cinder  /srv/snapfs  fuse.snapfs  "
	     "allow_other,admin_group=storage,_netdev  0 0\n.fi");
	puts(".SH OPTIONS");
#define OPTION(name, type, def, meta, help)                                                    \
	do {                                                                                   \
		printf(".TP\n\\fB\\-o %s=\\fR\\fI%s\\fR\n", #name, meta);                      \
		man_escape(help);                                                              \
		print_default(def);                                                            \
		putchar('\n');                                                                 \
	} while (0);
#define FUSE_OPTION(name, help)                                                                \
	do {                                                                                   \
		const char *n = #name;                                                         \
		if (n[0] == '-')                                                               \
			printf(".TP\n\\fB\\%s\\fR\n", n);                                      \
		else                                                                           \
			printf(".TP\n\\fB\\-o %s\\fR\n", n);                                   \
		man_escape(help);                                                              \
		putchar('\n');                                                                 \
	} while (0);
#include "options.def"
#undef OPTION
#undef FUSE_OPTION
	puts(".SH QUOTAS\nEach tenant has Cinder's quotas: \\fBuser.quota.volumes\\fR, "
	     "\\fBuser.quota.snapshots\\fR and \\fBuser.quota.gigabytes\\fR, set by admins "
	     "with \\fBsetfattr\\fR on the tenant's directory (\\-1, the default, is "
	     "unlimited; \\fBsetfattr \\-x\\fR sets \\-1 again). "
	     "\\fBuser.usage.volumes\\fR, \\fBuser.usage.snapshots\\fR, "
	     "\\fBuser.usage.gigabytes\\fR and \\fBuser.quota_set\\fR (Cinder's quota set "
	     "with usage, JSON) are read-only. Gigabytes count the volumes' sizes and, "
	     "unless \\fBno_snapshot_gb_quota=true\\fR, the snapshots' sizes. A create, "
	     "extend, snapshot, group snapshot, group fill or snapshot manage that would "
	     "exceed a limit fails with EDQUOT and changes nothing.");
	puts(".SH ERRORS\nEvery failed operation changes nothing and leaves a log line.\n"
	     ".TP\n.B EEXIST\nthe name is taken\n"
	     ".TP\n.B EBUSY\nthe object's state or another operation forbids it\n"
	     ".TP\n.B ENOTEMPTY\na tenant with volumes, a volume with snapshots, a group "
	     "with members or group snapshots\n"
	     ".TP\n.B EINVAL\na bad value (status, size, metadata key, source path, "
	     "quota limit, a limit below the use)\n"
	     ".TP\n.B E2BIG\na description or metadata value over 255 bytes\n"
	     ".TP\n.B EPERM\nan admin-only operation by a non-admin, a read-only "
	     "attribute, a regular file\n"
	     ".TP\n.B EACCES\nthe tenant's mode bits refuse\n"
	     ".TP\n.B EDQUOT\nthe operation would exceed a quota of the tenant "
	     "(volumes, snapshots or gigabytes)\n"
	     ".TP\n.B ENOTSUP\nan unknown attribute\n"
	     ".TP\n.B ENODATA\na missing attribute\n"
	     ".TP\n.B EROFS\na write to info.json or disk.raw\n"
	     ".TP\n.B ENOSPC\nthe catalogue or the share is full\n"
	     ".TP\n.B EIO\na corrupt image, a failed merge, etcd unreachable");
	puts(".SH FILES\n.TP\n.I /var/lib/snapfs/\nDefault catalogue directories (root).");
	puts(".SH SEE ALSO\n.BR fusermount3 (1),\n.BR mount.fuse3 (8),\n.BR getfattr (1),\n"
	     ".BR setfattr (1),\n.BR qemu-img (1)");
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "man")) {
		print_man(argv[2]);
		return 0;
	}
	fprintf(stderr, "usage: gen-options man VERSION\n");
	return 2;
}
