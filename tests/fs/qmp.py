#!/usr/bin/env python3
"""qmp.py - the test side's QMP client (no packages beyond the standard library).

Usage: qmp.py [-t SECONDS] SOCKET COMMAND [ARGS-JSON] [COMMAND [ARGS-JSON]]...

Connects to the QMP unix socket of a QEMU or qemu-storage-daemon, negotiates
(qmp_capabilities), runs each COMMAND with its arguments (a JSON object; a
word that starts with '{' is the arguments of the command before it) and
prints the "return" of each, as compact JSON, one line per command. Events
are skipped. Exits 1 at the first command that answers an error (its class
and description go to stderr), 2 when the socket cannot be reached or does
not answer within SECONDS in all (default 10), 64 on bad usage.
"""
import json
import socket
import sys
import time


def usage(msg):
    sys.stderr.write("qmp.py: %s\n%s" % (msg, __doc__.split("\n\n")[1] + "\n"))
    sys.exit(64)


def main(argv):
    timeout = 10.0
    if len(argv) >= 2 and argv[0] == "-t":
        try:
            timeout = float(argv[1])
        except ValueError:
            usage("bad timeout %r" % argv[1])
        argv = argv[2:]
    if len(argv) < 2:
        usage("need a socket and a command")
    path, words = argv[0], argv[1:]
    cmds = []
    for w in words:
        if w.startswith("{"):
            if not cmds or cmds[-1][1] is not None:
                usage("arguments %r follow no command" % w)
            try:
                args = json.loads(w)
            except ValueError as e:
                usage("arguments %r are not JSON: %s" % (w, e))
            if not isinstance(args, dict):
                usage("arguments %r are not a JSON object" % w)
            cmds[-1][1] = args
        else:
            cmds.append([w, None])

    deadline = time.monotonic() + timeout
    # QEMU's QMP socket serves one client at a time and its listen backlog
    # is 1: while another client is connected, one more connect succeeds
    # (and waits for the greeting), further ones fail with EAGAIN. Retry
    # those until the deadline.
    while True:
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(timeout)
            s.connect(path)
            break
        except BlockingIOError:
            s.close()
            if time.monotonic() >= deadline:
                sys.stderr.write("qmp.py: %s: timed out (connect)\n" % path)
                return 2
            time.sleep(0.05)
        except OSError as e:
            sys.stderr.write("qmp.py: %s: %s\n" % (path, e))
            return 2
    buf = [b""]

    def recv():
        """The next message that is not an event (the whole run has one deadline)."""
        while True:
            while b"\n" not in buf[0]:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise socket.timeout("timed out")
                s.settimeout(left)
                chunk = s.recv(65536)
                if not chunk:
                    raise EOFError("connection closed")
                buf[0] += chunk
            line, buf[0] = buf[0].split(b"\n", 1)
            if not line.strip():
                continue
            msg = json.loads(line)
            if "event" not in msg:
                return msg

    def send(cmd, args, ident):
        msg = {"execute": cmd, "id": ident}
        if args is not None:
            msg["arguments"] = args
        s.sendall((json.dumps(msg) + "\n").encode())
        while True:
            r = recv()
            if r.get("id") == ident:
                return r

    try:
        greeting = recv()
        if "QMP" not in greeting:
            sys.stderr.write("qmp.py: no QMP greeting: %s\n" % greeting)
            return 2
        r = send("qmp_capabilities", None, "cap")
        if "error" in r:
            sys.stderr.write("qmp.py: qmp_capabilities: %s\n" % r["error"])
            return 2
        for i, (cmd, args) in enumerate(cmds):
            try:
                r = send(cmd, args, i)
            except EOFError:
                if cmd == "quit":  # QEMU may close before it answers
                    print("{}")
                    continue
                raise
            if "error" in r:
                e = r["error"]
                sys.stderr.write("qmp.py: %s: %s: %s\n" % (cmd, e.get("class"), e.get("desc")))
                return 1
            print(json.dumps(r.get("return"), separators=(",", ":")))
            sys.stdout.flush()
    except (OSError, EOFError, ValueError) as e:
        sys.stderr.write("qmp.py: %s: %s\n" % (path, e))
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
