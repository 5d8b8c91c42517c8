#!/usr/bin/env python3
"""soak.py - the clients of the soak tests (tests/fs/soak.sh, etcd-soak.sh).

  soak.py run --mount MNT [--mount MNT2] --pid PID [--pid PID2] --share SHARE
              --work DIR --seconds N --checks FILE [--clients 16]
  soak.py logs --checks FILE LOG...

run: sets up one tenant with four volumes (data written by a "hypervisor",
qemu-io on the share's active file, before the first snapshots) in two
consistency groups, then runs CLIENTS threads for N seconds, each looping
over random operations on random volumes through its mount (client i uses
mount i % number of mounts: with two mounts, two hosts on one etcd cluster):

  mkdir      mkdir volumes/V/snapshots/sK
  rmdir      rmdir of a listed snapshot (sometimes a group snapshot's
             member: EBUSY by the contract)
  read       disk.raw of a listed snapshot, opened through its directory
             (so that name races cannot mix two snapshots up), its written
             regions compared by sha256 with what the snapshot must hold, a
             piece of the hole that must read as zeros, now and then every
             byte of it; held open a moment (deletes meet EBUSY)
  xattr      setfattr/getfattr/-x of user.meta.* and user.description on a
             volume, a snapshot or a group (each client its own keys, read
             back at once; on two hosts a volume's value is looked for on
             the other host too)
  ls         listings of volumes/, snapshots/, cgsnapshots/, a group's
             volumes/ and by-id/, stat of their entries, info.json parsed
  cgmkdir    mkdir consistencygroups/G/cgsnapshots/cK
  cgrmdir    rmdir of a listed group snapshot
  write      the hypervisor writes to the volume's active file (qemu-io:
             patterns, zeroes, compressed clusters on qcow2), the volume's
             model follows; qemu-img convert of the live chain is compared
             with the model
  verify     qemu-img convert of every snapshot's chain on the share (the
             backing file of the overlay .info names for it) compared with
             what the snapshot must hold; the catalogue's snapshots are
             .info's

The expected content of a snapshot is known independently of snapfs: a
volume's content is a model (the bytes the hypervisor wrote, a bytearray of
the two regions writes go to; zeros elsewhere), and the model changes only
under the volume's exclusive lock (write, verify), while every operation
that makes or deletes snapshots of the volume holds it shared: a snapshot
made under a shared hold holds the model of that moment, recorded by the
snapshot's id. The verify operation checks the model and these records
against qemu-img's conversion of the share's files.

Every failure is classified: an errno the contract (docs/snapfs.md section 7)
gives for a race between clients is expected and tallied by operation and
errno (EBUSY: a snapshot open, being made or deleted, an operation under way
on the volume, a group snapshot's member; EEXIST: a name another client
took; ENOENT: an object another client deleted first; ENODATA: an attribute
another client removed); anything else is an error. Wrong bytes are counted
apart. The daemons' VmRSS is sampled every few seconds.

At the end (clients stopped, still mounted): every snapshot of every volume
is read once more through each mount and converted with qemu-img, the live
images compared with their models; with two hosts, both list the same
snapshots. Results go to --checks as lines "ok DESC" / "not ok DESC" and
"# detail" (the shell test replays them as TAP), figures to stdout as
"# " lines.

logs: the daemons' logs hold no line at level warning or error and no
refusal other than those of the races (EBUSY, EEXIST, ENOENT).
"""

import argparse
import errno
import hashlib
import json
import os
import random
import re
import subprocess
import sys
import threading
import time
import zlib

GIB = 1 << 30
MIB = 1 << 20
VSIZE = GIB
# Where the hypervisor writes: region A at the start, region B at the end.
A_OFF, A_LEN = 0, 4 * MIB
B_OFF, B_LEN = VSIZE - MIB, MIB
TENANT = "acme"
VOLUMES = ["v0", "v1", "v2", "v3"]
GROUPS = {"ga": ["v0", "v1"], "gb": ["v2", "v3"]}
SNAP_NAMES = 8  # s0..s7 per volume
CG_NAMES = 4  # c0..c3 per group
WEIGHTS = {
    "mkdir": 18, "rmdir": 16, "read": 20, "xattr": 12, "ls": 12,
    "cgmkdir": 6, "cgrmdir": 6, "write": 5, "verify": 2,
}
KINDS = list(WEIGHTS)
# errnos the contract gives for races between clients, by operation
EXPECTED = {
    "mkdir": {errno.EEXIST, errno.EBUSY},
    "rmdir": {errno.ENOENT, errno.EBUSY},
    "read": {errno.ENOENT, errno.EBUSY},
    "xattr": {errno.ENOENT, errno.ENODATA},
    "ls": {errno.ENOENT},
    "cgmkdir": {errno.EEXIST, errno.EBUSY},
    "cgrmdir": {errno.ENOENT, errno.EBUSY},
    "write": set(),
    "verify": set(),
    "final": set(),
    "setup": set(),
}
# refusals of changes in the daemon's log (section 7: one info line each)
# that the races give: EBUSY, EEXIST (a name another client took; the
# kernel answers most itself), ENOENT (an rmdir of what another host
# deleted a moment before: this host's kernel still knew the name)
LOGGED_RACES = {"EBUSY", "EEXIST", "ENOENT"}
HANG_SECONDS = 120  # one operation longer than this is a hang
SEE_SECONDS = 5  # another host shows a change within this (contract: 1 s)


def ename(e):
    return errno.errorcode.get(e, str(e))


class Skip(Exception):
    """An operation ended early (an expected errno, or an error recorded)."""


class RWLock:
    """Many shared holders or one exclusive; a waiting writer goes first."""

    def __init__(self):
        self.c = threading.Condition()
        self.readers = 0
        self.writer = False
        self.waiting = 0

    def acquire_shared(self):
        with self.c:
            while self.writer or self.waiting:
                self.c.wait()
            self.readers += 1

    def release_shared(self):
        with self.c:
            self.readers -= 1
            if not self.readers:
                self.c.notify_all()

    def acquire_exclusive(self):
        with self.c:
            self.waiting += 1
            while self.writer or self.readers:
                self.c.wait()
            self.waiting -= 1
            self.writer = True

    def release_exclusive(self):
        with self.c:
            self.writer = False
            self.c.notify_all()


class Shared:
    def __init__(self, locks):
        self.locks = locks

    def __enter__(self):
        for l in self.locks:
            l.acquire_shared()

    def __exit__(self, *a):
        for l in reversed(self.locks):
            l.release_shared()


class Exclusive:
    def __init__(self, lock):
        self.lock = lock

    def __enter__(self):
        self.lock.acquire_exclusive()

    def __exit__(self, *a):
        self.lock.release_exclusive()


class Volume:
    """A volume and its model: the bytes of regions A and B (zeros elsewhere)."""

    def __init__(self, name):
        self.name = name
        self.id = None
        self.lock = RWLock()
        self.a = bytearray(A_LEN)
        self.b = bytearray(B_LEN)
        self.version = 0
        self.versions = {}  # version -> (sha256 of A+B, zlib of A+B)
        self.group = None
        self.snapshot()

    def snapshot(self):
        """Records the current model as self.version (under the exclusive lock)."""
        h = hashlib.sha256()
        h.update(self.a)
        h.update(self.b)
        self.versions[self.version] = (h.hexdigest(), zlib.compress(bytes(self.a) + bytes(self.b), 1))

    def apply(self, off, length, byte):
        for roff, buf in ((A_OFF, self.a), (B_OFF, self.b)):
            lo, hi = max(off, roff), min(off + length, roff + len(buf))
            if lo < hi:
                buf[lo - roff:hi - roff] = bytes([byte]) * (hi - lo)


def regions_of(fd):
    """The bytes of regions A and B of an open image (pread)."""
    out = []
    for off, length in ((A_OFF, A_LEN), (B_OFF, B_LEN)):
        buf = bytearray()
        while len(buf) < length:
            chunk = os.pread(fd, length - len(buf), off + len(buf))
            if not chunk:
                break
            buf += chunk
        out.append(bytes(buf))
    return out[0] + out[1]


def count_diff(x, y):
    """Bytes that differ between x and y (a missing byte counts)."""
    n = abs(len(x) - len(y))
    m = min(len(x), len(y))
    step = 65536
    for i in range(0, m, step):
        cx, cy = x[i:min(i + step, m)], y[i:min(i + step, m)]
        if cx != cy:
            n += sum(1 for p, q in zip(cx, cy) if p != q)
    return n


def first_diff(x, y):
    for i in range(min(len(x), len(y))):
        if x[i] != y[i]:
            return i
    return min(len(x), len(y))


class Soak:
    def __init__(self, args):
        self.args = args
        self.mounts = args.mount
        self.pids = [int(p) for p in args.pid]
        self.share = args.share
        self.work = args.work
        self.seconds = args.seconds
        self.nclients = args.clients
        self.full_reads = args.full_reads
        self.vols = {n: Volume(n) for n in VOLUMES}
        for g, members in GROUPS.items():
            for v in members:
                self.vols[v].group = g
        self.lock = threading.Lock()
        self.expected = {}  # snapshot id -> (volume, version, mount index)
        self.stats = {k: {"ok": 0, "expected": {}, "errors": 0, "lat": []} for k in KINDS + ["final", "setup"]}
        self.errors = []
        self.wrong = []  # (what, bytes)
        self.wrong_bytes = 0
        self.rss = {p: [] for p in self.pids}
        self.rss_split = {}  # pid -> [(t, RssAnon kB, RssFile kB)]
        self.cross = {"seen": 0, "late": 0, "ms": [], "reads_of_other_host": 0, "xattr_seen": 0}
        self.deadline = None
        self.t0 = None
        self.stop = threading.Event()
        self.current = {}  # client -> (kind, what, start)
        self.own = [dict() for _ in range(self.nclients)]
        self.seed = args.seed if args.seed is not None else random.randrange(1 << 30)

    # ---- paths ----
    def t(self, m):
        return os.path.join(self.mounts[m], "tenants", TENANT)

    def vdir(self, m, v):
        return os.path.join(self.t(m), "volumes", v)

    def gdir(self, m, g):
        return os.path.join(self.t(m), "consistencygroups", g)

    # ---- tallies ----
    def error(self, kind, msg):
        with self.lock:
            self.stats[kind]["errors"] += 1
            self.errors.append("%.1fs %s: %s" % (time.time() - (self.t0 or time.time()), kind, msg))

    def expect(self, kind, e):
        with self.lock:
            d = self.stats[kind]["expected"]
            d[ename(e)] = d.get(ename(e), 0) + 1

    def wrong_bytes_found(self, what, n):
        with self.lock:
            self.wrong_bytes += n
            self.wrong.append("%s: %d wrong bytes" % (what, n))

    def call(self, kind, what, fn, *a, ok=None, abort=True, **kw):
        """fn(*a, **kw); an OSError with an errno expected for kind is tallied
        (and ends the operation when abort), any other is an error (ends it)."""
        try:
            return fn(*a, **kw)
        except OSError as e:
            allowed = EXPECTED[kind] if ok is None else ok
            if e.errno in allowed:
                self.expect(kind, e.errno)
                if abort:
                    raise Skip()
                return None
            self.error(kind, "%s: %s (%s)" % (what, e.strerror, ename(e.errno)))
            raise Skip()

    # ---- expectations ----
    def record(self, sid, vol, m):
        with self.lock:
            self.expected[sid] = (vol.name, vol.version, m)

    def lookup(self, sid, wait=10.0):
        """The record of a snapshot id; its maker records it right after its
        mkdir returns, so a reader may have to wait a moment."""
        end = time.time() + wait
        while True:
            with self.lock:
                r = self.expected.get(sid)
            if r or time.time() > end:
                return r
            time.sleep(0.05)

    def compare(self, kind, what, got, vname, version):
        """Checks bytes of regions A+B against a model version: sha256, then
        the count of wrong bytes when they differ. True when they agree."""
        want_sha, z = self.vols[vname].versions[version]
        if hashlib.sha256(got).hexdigest() == want_sha:
            return True
        want = zlib.decompress(z)
        n = count_diff(got, want)
        i = first_diff(got, want)
        off = A_OFF + i if i < A_LEN else B_OFF + (i - A_LEN)
        self.wrong_bytes_found("%s: %s (%s version %d), first at offset %d" % (kind, what, vname, version, off),
                               max(n, 1))
        return False

    # ---- share helpers ----
    def info_of(self, vol):
        p = os.path.join(self.share, "volume-%s.info" % vol.id)
        try:
            with open(p) as f:
                return json.load(f)
        except FileNotFoundError:
            return {"active": "volume-%s" % vol.id}

    @staticmethod
    def fmt_of(name):
        return "qcow2" if "." in name else "raw"

    def run_tool(self, kind, argv):
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=HANG_SECONDS)
        except subprocess.TimeoutExpired:
            self.error(kind, "%s: timed out" % " ".join(argv))
            raise Skip()
        if r.returncode:
            self.error(kind, "%s: exit %d: %s" % (" ".join(argv), r.returncode, (r.stderr or r.stdout).strip()[:300]))
            raise Skip()
        return r.stdout

    def convert_regions(self, kind, name, fmt):
        """qemu-img convert -O raw of a share file and its chain: regions A+B."""
        out = os.path.join(self.work, "conv.%d.raw" % threading.get_ident())
        try:
            self.run_tool(kind, ["qemu-img", "convert", "-f", fmt, "-O", "raw",
                                 os.path.join(self.share, name), out])
            fd = os.open(out, os.O_RDONLY)
            try:
                if os.fstat(fd).st_size != VSIZE:
                    self.error(kind, "qemu-img convert of %s: size %d" % (name, os.fstat(fd).st_size))
                    raise Skip()
                return regions_of(fd)
            finally:
                os.close(fd)
        finally:
            try:
                os.unlink(out)
            except FileNotFoundError:
                pass

    def backing_of(self, kind, name):
        j = json.loads(self.run_tool(kind, ["qemu-img", "info", "--output=json", os.path.join(self.share, name)]))
        return j.get("backing-filename"), j.get("backing-filename-format")

    # ---- setup ----
    def hv_write(self, kind, vol, m, cmds):
        """The hypervisor: qemu-io on the volume's active file. cmds: (op, off,
        len, byte); op is write, zero or compress. The caller holds the
        volume's exclusive lock. The active file is .info's; the mount's
        user.active_file must agree (within SEE_SECONDS on two hosts)."""
        active = self.info_of(vol)["active"]
        end = time.time() + SEE_SECONDS
        while True:
            shown = self.call(kind, "getfattr user.active_file", os.getxattr, self.vdir(m, vol.name),
                              "user.active_file").decode()
            if shown == active or time.time() > end:
                break
            time.sleep(0.05)
        if shown != active:
            self.error(kind, "%s: user.active_file %s, .info's active %s" % (vol.name, shown, active))
            raise Skip()
        fmt = self.fmt_of(active)
        argv = ["qemu-io", "-f", fmt]
        for op, off, length, byte in cmds:
            if op == "zero":
                argv += ["-c", "write -z %d %d" % (off, length)]
            elif op == "compress":
                argv += ["-c", "write -c -P 0x%02x %d %d" % (byte, off, length)]
            else:
                argv += ["-c", "write -P 0x%02x %d %d" % (byte, off, length)]
        argv.append(os.path.join(self.share, active))
        try:
            self.run_tool(kind, argv)
        except Skip:
            # an error already; the model follows what the volume holds now
            got = self.convert_regions(kind, active, fmt)
            vol.a[:] = got[:A_LEN]
            vol.b[:] = got[A_LEN:]
            vol.version += 1
            vol.snapshot()
            raise
        for op, off, length, byte in cmds:
            vol.apply(off, length, 0 if op == "zero" else byte)
        vol.version += 1
        vol.snapshot()
        return active, fmt

    def setup(self):
        k = "setup"
        t = self.t(0)
        os.mkdir(t)
        for v in VOLUMES:
            os.mkdir(self.vdir(0, v))
            self.vols[v].id = os.getxattr(self.vdir(0, v), "user.id").decode()
        for g, members in GROUPS.items():
            os.mkdir(self.gdir(0, g))
            for v in members:
                os.symlink("../../../volumes/" + v, os.path.join(self.gdir(0, g), "volumes", v))
        # Data before the first snapshot: v0 both regions, v1 the start,
        # v2 a little, v3 nothing.
        data = {
            "v0": [("write", 0, 3 * MIB, 0xa1), ("write", B_OFF, 64 * 1024, 0xa2)],
            "v1": [("write", 512 * 1024, 2 * MIB, 0xb1), ("zero", MIB, 128 * 1024, 0)],
            "v2": [("write", 4096, 8192, 0xc1), ("write", VSIZE - 4096, 4096, 0xc2)],
            "v3": [],
        }
        for v, cmds in data.items():
            if cmds:
                self.hv_write(k, self.vols[v], 0, cmds)
            os.mkdir(os.path.join(self.vdir(0, v), "snapshots", "s0"))
            self.record(os.getxattr(os.path.join(self.vdir(0, v), "snapshots", "s0"), "user.id").decode(),
                        self.vols[v], 0)
        # every mount shows the tree
        for m in range(1, len(self.mounts)):
            end = time.time() + SEE_SECONDS
            while not all(os.path.exists(os.path.join(self.vdir(m, v), "snapshots", "s0")) for v in VOLUMES):
                if time.time() > end:
                    raise RuntimeError("mount %s does not show the volumes' snapshots" % self.mounts[m])
                time.sleep(0.05)

    # ---- operations ----
    def op_mkdir(self, c, rng, m):
        k = "mkdir"
        vol = self.vols[rng.choice(VOLUMES)]
        path = os.path.join(self.vdir(m, vol.name), "snapshots", "s%d" % rng.randrange(SNAP_NAMES))
        with Shared([vol.lock]):
            self.call(k, "mkdir " + path, os.mkdir, path)
            try:
                sid = os.getxattr(path, "user.id").decode()
            except OSError as e:
                if e.errno != errno.ENOENT:  # deleted at once by another client
                    self.error(k, "getfattr user.id %s: %s" % (path, e.strerror))
                return
            self.record(sid, vol, m)
        self.seen_elsewhere(k, m, sid, path)

    def seen_elsewhere(self, k, m, sid, path):
        """With several hosts: the snapshot just made shows on every other
        host (by-id/<id>) within SEE_SECONDS, unless deleted meanwhile."""
        for o in range(len(self.mounts)):
            if o == m:
                continue
            t0 = time.time()
            link = os.path.join(self.mounts[o], "by-id", sid)
            while True:
                if os.path.lexists(link):
                    with self.lock:
                        self.cross["seen"] += 1
                        self.cross["ms"].append((time.time() - t0) * 1000)
                    break
                if not os.path.lexists(os.path.join(self.mounts[m], "by-id", sid)):
                    break  # deleted already: nothing to see
                if time.time() - t0 > SEE_SECONDS:
                    with self.lock:
                        self.cross["late"] += 1
                    self.error(k, "snapshot %s (%s) made on mount %d not seen on mount %d in %d s"
                               % (path, sid, m, o, SEE_SECONDS))
                    break
                time.sleep(0.02)

    def pick(self, k, rng, d, prefix=None):
        names = self.call(k, "ls " + d, os.listdir, d)
        if prefix:
            pref = [n for n in names if n.startswith(prefix)]
            if pref and rng.random() < 0.9:
                names = pref
        if not names:
            return None
        return rng.choice(names)

    def op_rmdir(self, c, rng, m):
        k = "rmdir"
        vol = self.vols[rng.choice(VOLUMES)]
        d = os.path.join(self.vdir(m, vol.name), "snapshots")
        name = self.pick(k, rng, d, prefix="s")
        if name is None:
            return
        with Shared([vol.lock]):
            self.call(k, "rmdir %s/%s" % (d, name), os.rmdir, os.path.join(d, name))

    def op_read(self, c, rng, m):
        k = "read"
        vol = self.vols[rng.choice(VOLUMES)]
        d = os.path.join(self.vdir(m, vol.name), "snapshots")
        name = self.pick(k, rng, d)
        if name is None:
            return
        sdir = os.path.join(d, name)
        dfd = self.call(k, "open " + sdir, os.open, sdir, os.O_RDONLY | os.O_DIRECTORY)
        fd = None
        try:
            sid = self.call(k, "getfattr user.id " + sdir, os.getxattr, dfd, "user.id").decode()
            fd = self.call(k, "open %s/disk.raw" % sdir, os.open, "disk.raw", os.O_RDONLY, dir_fd=dfd)
            what = "%s/disk.raw (%s)" % (sdir, sid)
            rec = self.lookup(sid)
            if rec is None:
                self.error(k, "%s: a snapshot no client made" % what)
                return
            vname, version, maker = rec
            if vname != vol.name:
                self.error(k, "%s: made as a snapshot of %s" % (what, vname))
                return
            if maker != m:
                with self.lock:
                    self.cross["reads_of_other_host"] += 1
            size = self.call(k, "fstat " + what, os.fstat, fd).st_size
            if size != VSIZE:
                self.error(k, "%s: size %d, not %d" % (what, size, VSIZE))
                return
            got = self.call(k, "read " + what, regions_of, fd)
            self.compare(k, what, got, vname, version)
            # a piece of the hole between the regions: zeros
            off = rng.randrange((A_OFF + A_LEN) // 4096, (B_OFF - 256 * 1024) // 4096) * 4096
            hole = self.call(k, "read " + what, os.pread, fd, 256 * 1024, off)
            if hole != bytes(256 * 1024):
                self.wrong_bytes_found("%s: hole at %d" % (what, off),
                                       max(1, 256 * 1024 - hole.count(0)))
            if rng.random() < self.full_reads:
                self.full_read(k, what, fd, vname, version)
            # held open a moment: a delete meanwhile must answer EBUSY
            time.sleep(rng.random() * 0.2)
        finally:
            if fd is not None:
                os.close(fd)
            os.close(dfd)

    def full_read(self, k, what, fd, vname, version):
        """Every byte of disk.raw: regions A and B as the model, zeros elsewhere."""
        want = zlib.decompress(self.vols[vname].versions[version][1])
        zero = bytes(4 * MIB)
        off, bad, got_ab = 0, 0, bytearray()
        h = hashlib.sha256()
        while off < VSIZE:
            n = min(4 * MIB, VSIZE - off)
            chunk = self.call(k, "read " + what, os.pread, fd, n, off)
            if not chunk:
                break
            h.update(chunk)
            for lo, hi in ((A_OFF, A_OFF + A_LEN), (B_OFF, B_OFF + B_LEN)):
                s, e = max(lo, off), min(hi, off + len(chunk))
                if s < e:
                    got_ab += chunk[s - off:e - off]
            # outside the regions: zeros
            for lo, hi in ((0, A_OFF), (A_OFF + A_LEN, B_OFF), (B_OFF + B_LEN, VSIZE)):
                s, e = max(lo, off), min(hi, off + len(chunk))
                if s < e and chunk[s - off:e - off] != zero[:e - s]:
                    piece = chunk[s - off:e - off]
                    bad += len(piece) - piece.count(0)
            off += len(chunk)
        if off != VSIZE:
            self.error(k, "%s: read %d bytes of %d" % (what, off, VSIZE))
        bad += count_diff(bytes(got_ab), want)
        if bad:
            self.wrong_bytes_found("%s: full read" % what, bad)
        with self.lock:
            self.stats[k].setdefault("full", 0)
            self.stats[k]["full"] += 1

    def op_xattr(self, c, rng, m):
        k = "xattr"
        r = rng.random()
        g = None
        if r < 0.5:
            vname = rng.choice(VOLUMES)
            path = self.vdir(m, vname)
            is_volume = True
        elif r < 0.8:
            vname = rng.choice(VOLUMES)
            d = os.path.join(self.vdir(m, vname), "snapshots")
            name = self.pick(k, rng, d)
            if name is None:
                return
            path = os.path.join(d, name)
            is_volume = False
        else:
            g = rng.choice(list(GROUPS))
            path = self.gdir(m, g)
            is_volume = False
        fd = self.call(k, "open " + path, os.open, path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            oid = self.call(k, "getfattr -n user.id " + path, os.getxattr, fd, "user.id").decode()
            own = self.own[c]  # (object id, key) -> value: what this client set
            mine = [key for (o, key) in own if o == oid]
            r = rng.random()
            if r < 0.15 and mine:
                # setfattr -x of a key this client set on this object
                key = rng.choice(mine)
                self.call(k, "setfattr -x %s %s" % (key, path), os.removexattr, fd, key,
                          ok={errno.ENOENT})
                del own[(oid, key)]
                try:
                    os.getxattr(fd, key)
                    self.error(k, "%s of %s still reads after setfattr -x" % (key, path))
                except OSError as e:
                    if e.errno not in (errno.ENODATA, errno.ENOENT):
                        self.error(k, "getfattr -n %s %s after -x: %s" % (key, path, e.strerror))
            elif r < 0.7:
                key = "user.meta.c%02d-%d" % (c, rng.randrange(3))
                value = ("%08x" % rng.getrandbits(32)).encode() * rng.randrange(1, 8)
                self.call(k, "setfattr -n %s %s" % (key, path), os.setxattr, fd, key, value)
                own[(oid, key)] = value
                back = self.call(k, "getfattr -n %s %s" % (key, path), os.getxattr, fd, key)
                if back != value:
                    self.error(k, "%s of %s reads %r after setting %r" % (key, path, back[:40], value[:40]))
                    return
                if is_volume and len(self.mounts) > 1:
                    self.xattr_elsewhere(k, m, vname, key, value)
            elif r < 0.8:
                text = ("client %d at %.3f" % (c, time.time())).encode()
                self.call(k, "setfattr -n user.description " + path, os.setxattr, fd, "user.description", text)
                back = self.call(k, "getfattr -n user.description " + path, os.getxattr, fd, "user.description")
                # another client may have set its own meanwhile: a description of a client
                if not back.startswith(b"client "):
                    self.error(k, "user.description of %s reads %r" % (path, back[:60]))
            else:  # getfattr -d (another client may remove its key meanwhile: ENODATA)
                names = self.call(k, "listxattr " + path, os.listxattr, fd)
                for n in names:
                    if not n.startswith("user."):
                        continue
                    self.call(k, "getfattr -n %s %s" % (n, path), os.getxattr, fd, n, abort=False)
                if "user.id" not in names or "user.status" not in names:
                    self.error(k, "getfattr -d %s lists %s" % (path, names))
        finally:
            os.close(fd)

    def xattr_elsewhere(self, k, m, vname, key, value):
        for o in range(len(self.mounts)):
            if o == m:
                continue
            t0 = time.time()
            p = self.vdir(o, vname)
            while True:
                try:
                    got = os.getxattr(p, key)
                except OSError as e:
                    if e.errno != errno.ENODATA:
                        self.error(k, "getfattr -n %s %s: %s" % (key, p, e.strerror))
                        return
                    got = None
                if got == value:
                    with self.lock:
                        self.cross["xattr_seen"] += 1
                        self.cross["ms"].append((time.time() - t0) * 1000)
                    break
                # the key is this client's: nobody else changes it
                if time.time() - t0 > SEE_SECONDS:
                    self.error(k, "%s of %s set on mount %d: mount %d shows %r after %d s"
                               % (key, vname, m, o, got and got[:40], SEE_SECONDS))
                    return
                time.sleep(0.02)

    def op_ls(self, c, rng, m):
        k = "ls"
        r = rng.random()
        if r < 0.15:
            d = os.path.join(self.t(m), "volumes")
            names = self.call(k, "ls " + d, os.listdir, d)
            if sorted(names) != VOLUMES:
                self.error(k, "ls %s: %s" % (d, sorted(names)))
            for n in names:
                self.call(k, "stat", os.stat, os.path.join(d, n, "info.json"), abort=False)
        elif r < 0.6:
            vname = rng.choice(VOLUMES)
            d = os.path.join(self.vdir(m, vname), "snapshots")
            names = self.call(k, "ls " + d, os.listdir, d)
            for n in names:
                st = self.call(k, "stat %s/%s" % (d, n), os.lstat, os.path.join(d, n), abort=False)
                if st is not None:
                    self.call(k, "stat disk.raw", os.lstat, os.path.join(d, n, "disk.raw"), abort=False)
            if names:
                n = rng.choice(names)
                p = os.path.join(d, n, "info.json")
                try:
                    with open(p, "rb") as f:
                        raw = f.read()
                except OSError as e:
                    if e.errno != errno.ENOENT:
                        self.error(k, "cat %s: %s" % (p, e.strerror))
                    else:
                        self.expect(k, e.errno)
                    return
                try:
                    s = json.loads(raw)["snapshot"]
                except (ValueError, KeyError) as e:
                    self.error(k, "%s: not a snapshot's JSON: %r" % (p, raw[:100]))
                    return
                if s.get("name") != n or s.get("volume_id") != self.vols[vname].id or \
                   s.get("status") not in ("creating", "available", "deleting"):
                    self.error(k, "%s: name %s volume_id %s status %s" % (p, s.get("name"), s.get("volume_id"),
                                                                          s.get("status")))
        elif r < 0.8:
            g = rng.choice(list(GROUPS))
            d = os.path.join(self.gdir(m, g), "cgsnapshots")
            names = self.call(k, "ls " + d, os.listdir, d)
            for n in names:
                ents = self.call(k, "ls %s/%s" % (d, n), os.listdir, os.path.join(d, n), abort=False)
                for e in ents or []:
                    if e not in GROUPS[g]:
                        continue  # info.json, changes/, changes.json/
                    self.call(k, "readlink", os.readlink, os.path.join(d, n, e), abort=False)
            members = self.call(k, "ls", os.listdir, os.path.join(self.gdir(m, g), "volumes"))
            if sorted(members) != GROUPS[g]:
                self.error(k, "ls %s/volumes: %s" % (self.gdir(m, g), sorted(members)))
        else:
            d = os.path.join(self.mounts[m], "by-id")
            names = self.call(k, "ls " + d, os.listdir, d)
            for n in rng.sample(names, min(8, len(names))):
                self.call(k, "readlink by-id/" + n, os.readlink, os.path.join(d, n), abort=False)
            for v in self.vols.values():
                if v.id not in names:
                    self.error(k, "by-id lacks volume %s (%s)" % (v.name, v.id))

    def op_cgmkdir(self, c, rng, m):
        k = "cgmkdir"
        g = rng.choice(list(GROUPS))
        name = "c%d" % rng.randrange(CG_NAMES)
        path = os.path.join(self.gdir(m, g), "cgsnapshots", name)
        members = [self.vols[v] for v in sorted(GROUPS[g])]
        sids = []
        with Shared([v.lock for v in members]):
            self.call(k, "mkdir " + path, os.mkdir, path)
            # the members from the group snapshot's info.json (the names
            # in the members' snapshots/ may reach this host's kernel a
            # moment later: snapfs tells it from a thread of its own)
            try:
                dfd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
            except OSError as e:
                if e.errno != errno.ENOENT:  # deleted at once by another client
                    self.error(k, "open %s: %s" % (path, e.strerror))
                return
            try:
                fd = os.open("info.json", os.O_RDONLY, dir_fd=dfd)
                try:
                    info = json.loads(os.read(fd, 1 << 20))["cgsnapshot"]
                finally:
                    os.close(fd)
            except OSError as e:
                if e.errno != errno.ENOENT:
                    self.error(k, "cat %s/info.json: %s" % (path, e.strerror))
                return
            except (ValueError, KeyError) as e:
                self.error(k, "%s/info.json: %r" % (path, e))
                return
            finally:
                os.close(dfd)
            by_id = {v.id: v for v in members}
            got = info.get("cgsnapshot_members") or []
            if sorted(x.get("volume_id") for x in got) != sorted(by_id):
                self.error(k, "%s: members %s, not the group's volumes" % (path, got))
                return
            for x in got:
                v = by_id[x["volume_id"]]
                self.record(x["id"], v, m)
                sids.append((x["id"], os.path.join(self.vdir(m, v.name), "snapshots", name)))
        for sid, sp in sids:
            self.seen_elsewhere(k, m, sid, sp)

    def op_cgrmdir(self, c, rng, m):
        k = "cgrmdir"
        g = rng.choice(list(GROUPS))
        d = os.path.join(self.gdir(m, g), "cgsnapshots")
        name = self.pick(k, rng, d)
        if name is None:
            return
        members = [self.vols[v] for v in sorted(GROUPS[g])]
        with Shared([v.lock for v in members]):
            self.call(k, "rmdir %s/%s" % (d, name), os.rmdir, os.path.join(d, name))

    def op_write(self, c, rng, m):
        k = "write"
        vol = self.vols[rng.choice(VOLUMES)]
        with Exclusive(vol.lock):
            active = self.info_of(vol)["active"]
            cmds = []
            if self.fmt_of(active) == "qcow2" and rng.random() < 0.4:
                # compressed writes (first: qcow2 compresses only into
                # clusters the file does not have yet): whole 64 KiB clusters
                # the active overlay has not allocated
                mapping = json.loads(self.run_tool(k, ["qemu-img", "map", "--output=json", "-f", "qcow2",
                                                       os.path.join(self.share, active)]))
                taken = set()
                for e in mapping:
                    if e.get("depth") == 0:
                        taken.update(range(e["start"] // 65536, (e["start"] + e["length"] + 65535) // 65536))
                free = [c for c in list(range(A_OFF // 65536, (A_OFF + A_LEN) // 65536)) +
                        list(range(B_OFF // 65536, (B_OFF + B_LEN) // 65536)) if c not in taken]
                for cl in rng.sample(free, min(len(free), rng.randrange(1, 3))):
                    cmds.append(("compress", cl * 65536, 65536, rng.randrange(1, 256)))
            for _ in range(rng.randrange(1, 5)):
                r = rng.random()
                if rng.random() < 0.8:
                    lo, hi = A_OFF, A_OFF + A_LEN
                else:
                    lo, hi = B_OFF, B_OFF + B_LEN
                length = rng.randrange(1, 512) * 512
                off = lo + rng.randrange((hi - lo - length) // 512 + 1) * 512
                if r < 0.35:
                    cmds.append(("zero", off, length, 0))
                else:
                    cmds.append(("write", off, length, rng.randrange(1, 256)))
            active, fmt = self.hv_write(k, vol, m, cmds)
            got = self.convert_regions(k, active, fmt)
            self.compare(k, "live image %s (%s)" % (vol.name, active), got, vol.name, vol.version)

    def op_verify(self, c, rng, m):
        self.verify_volume("verify", self.vols[rng.choice(VOLUMES)], m, exclusive=True)

    def verify_volume(self, k, vol, m, exclusive):
        """qemu-img's view of every snapshot of vol (the backing of the overlay
        .info names) and of the live image against the model; the mount lists
        the snapshots .info has."""
        lock = Exclusive(vol.lock) if exclusive else Shared([])
        with lock:
            info = self.info_of(vol)
            sids = sorted(s for s in info if s != "active")
            # the mount's snapshots are .info's (another host's within SEE_SECONDS)
            d = os.path.join(self.vdir(m, vol.name), "snapshots")
            end = time.time() + SEE_SECONDS
            while True:
                listed = []
                for n in self.call(k, "ls " + d, os.listdir, d):
                    listed.append(self.call(k, "getfattr user.id", os.getxattr, os.path.join(d, n),
                                            "user.id").decode())
                if sorted(listed) == sids or time.time() > end:
                    break
                time.sleep(0.05)
            if sorted(listed) != sids:
                self.error(k, "%s: the mount lists snapshots %s, .info has %s" % (vol.name, sorted(listed), sids))
            for sid in sids:
                rec = self.lookup(sid, wait=0)
                if rec is None:
                    self.error(k, "%s: .info has a snapshot %s no client made" % (vol.name, sid))
                    continue
                backing, bfmt = self.backing_of(k, info[sid])
                if not backing:
                    self.error(k, "%s: overlay %s of snapshot %s has no backing file" % (vol.name, info[sid], sid))
                    continue
                got = self.convert_regions(k, backing, bfmt or self.fmt_of(backing))
                self.compare(k, "qemu-img convert of snapshot %s of %s (%s)" % (sid, vol.name, backing), got,
                             rec[0], rec[1])
            active = info["active"]
            got = self.convert_regions(k, active, self.fmt_of(active))
            self.compare(k, "qemu-img convert of the live image of %s (%s)" % (vol.name, active), got,
                         vol.name, vol.version)
            return sids

    # ---- the clients ----
    def client(self, c):
        rng = random.Random(self.seed * 1000 + c)
        m = c % len(self.mounts)
        kinds = KINDS
        weights = [WEIGHTS[x] for x in kinds]
        while time.time() < self.deadline and not self.stop.is_set():
            k = rng.choices(kinds, weights)[0]
            t0 = time.time()
            self.current[c] = (k, t0)
            before = self.stats[k]["errors"]
            try:
                getattr(self, "op_" + k)(c, rng, m)
                done = True
            except Skip:
                done = False
            except Exception as e:  # a bug of the client: an error too
                self.error(k, "client %d: %r" % (c, e))
                done = False
            dt = time.time() - t0
            with self.lock:
                s = self.stats[k]
                s["lat"].append(dt)
                if done and s["errors"] == before:
                    s["ok"] += 1
            if dt > HANG_SECONDS:
                self.error(k, "one operation took %.1f s" % dt)
            self.current.pop(c, None)

    def sampler(self, interval):
        while not self.stop.is_set():
            now = time.time() - self.t0
            for p in self.pids:
                try:
                    with open("/proc/%d/status" % p) as f:
                        fields = dict(line.split(":", 1) for line in f if ":" in line)
                    kb = {k: int(fields[k].split()[0]) for k in ("VmRSS", "RssAnon", "RssFile") if k in fields}
                    self.rss[p].append((now, kb["VmRSS"]))
                    self.rss_split.setdefault(p, []).append((now, kb.get("RssAnon", 0), kb.get("RssFile", 0)))
                except OSError:
                    self.error("final", "daemon %d is gone during the soak" % p)
                    self.stop.set()
                    return
            self.stop.wait(interval)

    def final(self):
        """Clients stopped: every snapshot read through every mount and
        converted by qemu-img; every mount lists the same snapshots."""
        k = "final"
        n = 0
        listings = []
        for vol in self.vols.values():
            try:
                sids = self.verify_volume(k, vol, 0, exclusive=False)
            except Skip:
                continue
            for m in range(len(self.mounts)):
                d = os.path.join(self.vdir(m, vol.name), "snapshots")
                for name in sorted(os.listdir(d)):
                    sdir = os.path.join(d, name)
                    sid = os.getxattr(sdir, "user.id").decode()
                    rec = self.lookup(sid, wait=0)
                    if rec is None:
                        self.error(k, "%s: a snapshot no client made" % sdir)
                        continue
                    fd = os.open(os.path.join(sdir, "disk.raw"), os.O_RDONLY)
                    try:
                        self.compare(k, sdir + "/disk.raw", regions_of(fd), rec[0], rec[1])
                        if name == "s0" and m == 0 and vol.name == "v0":
                            self.full_read(k, sdir + "/disk.raw", fd, rec[0], rec[1])
                    finally:
                        os.close(fd)
                    n += 1
                listings.append((vol.name, m, sorted(os.listdir(d))))
        self.final_reads = n
        self.final_listings = listings

    def run(self):
        t_setup = time.time()
        self.t0 = time.time()
        interval = max(1.0, min(5.0, self.seconds / 60.0))
        sampler = threading.Thread(target=self.sampler, args=(interval,), daemon=True)
        sampler.start()
        setup_ok = True
        try:
            self.setup()
        except Exception as e:
            setup_ok = False
            self.error("setup", repr(e))
        self.setup_seconds = time.time() - t_setup
        self.soak_t0 = time.time() - self.t0
        self.deadline = time.time() + (self.seconds if setup_ok else 0)
        threads = [threading.Thread(target=self.client, args=(c,), daemon=True) for c in range(self.nclients)]
        for th in threads:
            th.start()
        hung = []
        limit = self.deadline + HANG_SECONDS + 60
        for c, th in enumerate(threads):
            th.join(max(0.0, limit - time.time()))
            if th.is_alive():
                cur = self.current.get(c)
                hung.append("client %d in %s for %.0f s" % (c, cur and cur[0], cur and time.time() - cur[1] or 0))
        self.soak_t1 = time.time() - self.t0
        self.hung = hung
        for h in hung:
            self.error("final", "hang: " + h)
        self.final_reads = 0
        self.final_listings = []
        if not hung and setup_ok:
            t = time.time()
            try:
                self.final()
            except Exception as e:
                self.error("final", repr(e))
            self.final_seconds = time.time() - t
        else:
            self.final_seconds = 0
        self.stop.set()
        sampler.join(10)
        return setup_ok

    # ---- the report ----
    def rss_figures(self, p):
        s = self.rss[p]
        if not s:
            return None
        # warm-up: setup and the first fifth of the soak; the rest in quarters
        t_start, t_end = self.soak_t0, self.soak_t1
        warm = t_start + (t_end - t_start) / 5
        after = [x for x in s if warm <= x[0] <= t_end]
        q = (t_end - warm) / 4
        first = [kb for t, kb in after if t < warm + q]
        last = [kb for t, kb in after if t >= t_end - q]
        mid = min(s, key=lambda x: abs(x[0] - (t_start + t_end) / 2))
        return {
            "start": s[0][1], "middle": mid[1], "end": s[-1][1], "max": max(kb for _, kb in s),
            "first_quarter_max": max(first) if first else None,
            "last_quarter_max": max(last) if last else None,
            "samples": len(s),
        }

    def report(self, checks_path, rss_margin_kb, rss_check):
        out = []
        lines = []

        def check(ok, desc, details=()):
            out.append(("ok " if ok else "not ok ") + desc)
            for d in details:
                out.append("#   " + d)

        ran = self.soak_t1 - self.soak_t0
        lines.append("soak: %d clients, %d mount(s), %.0f s of operations (asked %d s), seed %d"
                     % (self.nclients, len(self.mounts), ran, self.seconds, self.seed))
        lines.append("setup %.1f s, final checks %.1f s, %d snapshot reads at the end"
                     % (self.setup_seconds, self.final_seconds, self.final_reads))
        lines.append("%-8s %7s %7s %7s %8s %8s  %s" % ("op", "ok", "errors", "total", "p50 ms", "max ms",
                                                   "expected errnos"))
        total_ok = total_exp = 0
        for kind in KINDS + ["final"]:
            s = self.stats[kind]
            lat = sorted(s["lat"])
            nexp = sum(s["expected"].values())
            total_ok += s["ok"]
            total_exp += nexp
            extra = " ".join("%s=%d" % kv for kv in sorted(s["expected"].items()))
            if s.get("full"):
                extra += " (full reads: %d)" % s["full"]
            lines.append("%-8s %7d %7d %7d %8.0f %8.0f  %s" % (
                kind, s["ok"], s["errors"], len(lat),
                lat[len(lat) // 2] * 1000 if lat else 0, lat[-1] * 1000 if lat else 0, extra or "-"))
        nerr = len(self.errors)
        lines.append("operations completed: %d; ended by an expected errno: %d; errors: %d; wrong bytes: %d"
                     % (total_ok, total_exp, nerr, self.wrong_bytes))
        if len(self.mounts) > 1:
            ms = sorted(self.cross["ms"])
            lines.append("across hosts: %d snapshots seen on the other host, %d late; %d metadata values seen; "
                         "%d reads of the other host's snapshots; delay p50 %.0f ms, max %.0f ms"
                         % (self.cross["seen"], self.cross["late"], self.cross["xattr_seen"],
                            self.cross["reads_of_other_host"], ms[len(ms) // 2] if ms else 0, ms[-1] if ms else 0))
        rssf = {}
        for i, p in enumerate(self.pids):
            f = self.rss_figures(p)
            rssf[p] = f
            if f:
                lines.append("RSS of daemon %d (mount %s), MiB: start %.1f, middle %.1f, end %.1f, max %.1f; "
                             "max of the first quarter after warm-up %.1f, of the last quarter %.1f (%d samples)"
                             % (p, self.mounts[i], f["start"] / 1024, f["middle"] / 1024, f["end"] / 1024,
                                f["max"] / 1024, (f["first_quarter_max"] or 0) / 1024,
                                (f["last_quarter_max"] or 0) / 1024, f["samples"]))
                lines.append("RSS samples (s:MiB): " + " ".join(
                    "%.0f:%.1f" % (t, kb / 1024) for t, kb in self.rss[p]))
                sp = self.rss_split.get(p) or []
                if sp:
                    mid = sp[len(sp) // 2]
                    lines.append("of which anonymous / file-backed (the catalogue's map, libraries), MiB: "
                                 "start %.1f / %.1f, middle %.1f / %.1f, end %.1f / %.1f"
                                 % (sp[0][1] / 1024, sp[0][2] / 1024, mid[1] / 1024, mid[2] / 1024,
                                    sp[-1][1] / 1024, sp[-1][2] / 1024))

        # the checks (a fixed number: 7 + one per daemon + 2 with several mounts)
        check(self.stats["setup"]["errors"] == 0,
              "setup: a tenant, %d volumes with data written before their first snapshot, %d groups"
              % (len(VOLUMES), len(GROUPS)), [e for e in self.errors if " setup: " in e])
        missing = [k for k in KINDS if self.stats[k]["ok"] == 0]
        check(not missing, "every kind of operation completed at least once (%s)" % " ".join(KINDS),
              ["never completed: " + " ".join(missing)] if missing else [])
        errs = [e for e in self.errors if " final: " not in e and " setup: " not in e]
        kinds = {}
        for e in errs:  # every error by its shape (ids, paths and times out)
            key = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}", "ID", e.split(" ", 1)[1])
            key = re.sub(r"/\S*/(mnt|share)\S*/", "/.../", key)
            kinds[key] = kinds.get(key, 0) + 1
        check(not errs, "%d clients for %.0f s: no error but the errnos the contract gives for races (%d errors)"
              % (self.nclients, ran, len(errs)),
              ["%d x %s" % (n, key) for key, n in sorted(kinds.items(), key=lambda x: -x[1])][:20] +
              ["first ones:"] * bool(errs) + errs[:20] + (["... %d more" % (len(errs) - 20)] if len(errs) > 20 else []))
        check(self.wrong_bytes == 0, "no wrong byte in any read of disk.raw or qemu-img conversion (%d)"
              % self.wrong_bytes, self.wrong[:40])
        check(not self.hung and all(max(self.stats[k]["lat"] or [0]) <= HANG_SECONDS for k in KINDS),
              "no operation hung (none over %d s; the longest %.1f s)"
              % (HANG_SECONDS, max(max(self.stats[k]["lat"] or [0]) for k in KINDS)), self.hung)
        for i, p in enumerate(self.pids):
            f = rssf[p]
            if f is None or f["first_quarter_max"] is None or f["last_quarter_max"] is None:
                check(False, "RSS of daemon %d: sampled" % p)
                continue
            grow = f["last_quarter_max"] - f["first_quarter_max"]
            desc = ("RSS of the daemon of mount %d is flat: the last quarter's max %.1f MiB <= the first "
                    "quarter's after warm-up %.1f MiB + %d MiB" % (i, f["last_quarter_max"] / 1024,
                                                                  f["first_quarter_max"] / 1024, rss_margin_kb // 1024))
            if rss_check:
                check(grow <= rss_margin_kb, desc)
            else:
                out.append("ok %s # SKIP %s" % (desc, "not checked under the sanitizers (their allocator keeps freed memory)"))
        final_errs = [e for e in self.errors if " final: " in e]
        check(not final_errs and self.final_reads > 0,
              "at the end: every snapshot's disk.raw on every mount (%d reads), qemu-img convert of its chain "
              "and the live images hold the expected bytes; .info and the catalogue agree" % self.final_reads,
              final_errs[:40])
        if len(self.mounts) > 1:
            check(self.cross["seen"] > 0 and self.cross["reads_of_other_host"] > 0 and self.cross["late"] == 0,
                  "each host saw the snapshots the other made (%d seen, %d late) and read them (%d reads)"
                  % (self.cross["seen"], self.cross["late"], self.cross["reads_of_other_host"]))
            by = {}
            for v, m, names in self.final_listings:
                by.setdefault(v, {})[m] = names
            diff = ["%s: %s" % (v, d) for v, d in sorted(by.items()) if len({tuple(x) for x in d.values()}) != 1]
            check(by and not diff, "at the end every host lists the same snapshots of every volume", diff)

        for line in lines:
            print("# " + line)
        sys.stdout.flush()
        with open(checks_path, "w") as f:
            for line in out:
                f.write(line + "\n")
        with open(checks_path + ".json", "w") as f:
            json.dump({"stats": {k: {"ok": v["ok"], "errors": v["errors"], "expected": v["expected"],
                                     "count": len(v["lat"])} for k, v in self.stats.items()},
                       "errors": self.errors, "wrong_bytes": self.wrong_bytes, "wrong": self.wrong,
                       "rss": {str(p): self.rss_figures(p) for p in self.pids}, "cross": {
                           k: v for k, v in self.cross.items() if k != "ms"}}, f, indent=1)


def cmd_run(args):
    s = Soak(args)
    s.run()
    margin = args.rss_margin_mib * 1024
    s.report(args.checks, margin, not args.no_rss_check)
    return 0


def cmd_logs(args):
    """The daemons' logs: no warning or error line, no refusal but those of
    the races (LOGGED_RACES); refusals tallied by errno."""
    bad = []
    refusals = {}
    total = 0
    for path in args.log:
        with open(path, errors="replace") as f:
            for line in f:
                line = line.rstrip("\n")
                if not line.startswith("snapfs"):
                    continue  # the test's own lines (etcdlib's "--- mount")
                total += 1
                rest = line.split(": ", 1)[1] if ": " in line else line
                level = rest.split(":", 1)[0]
                if level in ("warning", "error", "err", "crit", "alert", "emerg"):
                    bad.append("%s: %s" % (os.path.basename(path), line))
                    continue
                parts = rest.split(": ")
                en = next((p for p in parts[2:] if p.isupper() and p.startswith("E") and p.isalnum()), None)
                if en:
                    refusals[en] = refusals.get(en, 0) + 1
                    if en not in LOGGED_RACES:
                        bad.append("%s: %s" % (os.path.basename(path), line))
    print("# daemon logs: %d lines, refusals %s" % (
        total, " ".join("%s=%d" % kv for kv in sorted(refusals.items())) or "none"))
    with open(args.checks, "w") as f:
        f.write(("ok " if not bad else "not ok ") +
                "the daemons' logs hold no warning or error line and no refusal but %s (%d lines)\n"
                % (", ".join(sorted(LOGGED_RACES)), len(bad)))
        for b in bad[:40]:
            f.write("#   %s\n" % b)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--mount", action="append", required=True)
    r.add_argument("--pid", action="append", required=True)
    r.add_argument("--share", required=True)
    r.add_argument("--work", required=True)
    r.add_argument("--seconds", type=float, default=30)
    r.add_argument("--clients", type=int, default=16)
    r.add_argument("--checks", required=True)
    r.add_argument("--seed", type=int)
    r.add_argument("--full-reads", type=float, default=0.01, help="share of reads that read every byte")
    r.add_argument("--rss-margin-mib", type=int, default=16)
    r.add_argument("--no-rss-check", action="store_true")
    lg = sub.add_parser("logs")
    lg.add_argument("--checks", required=True)
    lg.add_argument("log", nargs="+")
    args = ap.parse_args()
    return cmd_run(args) if args.cmd == "run" else cmd_logs(args)


if __name__ == "__main__":
    sys.exit(main())
