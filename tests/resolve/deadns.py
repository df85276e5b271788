#!/usr/bin/python3
"""tests/resolve/deadns.py - a system resolver that never answers, for the
tests of bounded name resolution; no LD_PRELOAD, no change to the host.

    /usr/bin/python3 tests/resolve/deadns.py [--timeout S] [--count FILE] -- CMD...

runs CMD in a private mount and network namespace where /etc/resolv.conf
is a bind mount of a file naming 127.0.0.1 with "options timeout:S
attempts:1" (default S = 6), and where a UDP socket on 127.0.0.1:53 reads
every query and answers none: getaddrinfo for any name that is not in
/etc/hosts waits S seconds for the system resolver to give up. The
namespace's loopback is its only network. Exits with CMD's status; with
--count, FILE gets the number of queries the dead server received.

As a module: enter() re-runs the calling script inside such a namespace
(unshare -m -n as root, else unshare -U -r -m -n), and DeadResolver sets it
up from inside. The mount and the network vanish with the namespace.
"""
import os
import socket
import subprocess
import sys
import tempfile
import threading

MARK = "TLSMAIL_DEADNS"          # set in the environment inside the namespace
DEFAULT_TIMEOUT = 6              # seconds the system resolver waits
UNSHARE = (["unshare", "-m", "-n", "--"], ["unshare", "-U", "-r", "-m", "-n", "--"])


def inside():
    return os.environ.get(MARK) == "1"


def unshare_prefix():
    """The first unshare that works here, or None."""
    for cmd in UNSHARE:
        try:
            p = subprocess.run(cmd + ["true"], capture_output=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if p.returncode == 0:
            return cmd
    return None


def enter():
    """Re-run this process's command line inside a new namespace, once.
    Returns only when already inside; exits with a message when no
    namespace can be made."""
    if inside():
        return
    prefix = unshare_prefix()
    if prefix is None:
        print("FAIL namespace: neither 'unshare -m -n' nor 'unshare -U -r -m -n' works here "
              "(needs root or unprivileged user namespaces)")
        print("0 passed, 1 failed")
        sys.exit(1)
    env = dict(os.environ)
    env[MARK] = "1"
    os.execvpe(prefix[0], prefix + [sys.executable] + sys.argv, env)


class DeadResolver:
    """From inside the namespace: loopback up, resolv.conf bound over, and a
    UDP server on 127.0.0.1:53 that counts queries and answers none."""

    def __init__(self, timeout=DEFAULT_TIMEOUT):
        if not inside():
            raise RuntimeError("DeadResolver outside its namespace")
        self.timeout = timeout
        r = subprocess.run(["ip", "link", "set", "lo", "up"], capture_output=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError("ip link set lo up: %s" % r.stderr.decode().strip())
        self.dir = tempfile.mkdtemp(prefix="tlsmail-deadns-")
        conf = os.path.join(self.dir, "resolv.conf")
        with open(conf, "w") as f:
            f.write("nameserver 127.0.0.1\noptions timeout:%d attempts:1\n" % timeout)
        r = subprocess.run(["mount", "--bind", conf, "/etc/resolv.conf"], capture_output=True,
                           timeout=30)
        if r.returncode != 0:
            raise RuntimeError("mount --bind over /etc/resolv.conf: %s" % r.stderr.decode().strip())
        with open("/etc/resolv.conf") as f:
            if "127.0.0.1" not in f.read():
                raise RuntimeError("/etc/resolv.conf is not ours after the bind mount")
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 53))
        self.sock.settimeout(0.2)
        self.queries = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping.is_set():
            try:
                self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.queries += 1

    def count(self):
        with self.lock:
            return self.queries

    def close(self):
        self.stopping.set()
        self.thread.join(5)
        self.sock.close()
        subprocess.run(["umount", "/etc/resolv.conf"], capture_output=True, timeout=30)
        try:
            os.unlink(os.path.join(self.dir, "resolv.conf"))
            os.rmdir(self.dir)
        except OSError:
            pass


def main():
    argv = sys.argv[1:]
    timeout, count = DEFAULT_TIMEOUT, None
    while argv and argv[0] != "--":
        if argv[0] == "--timeout" and len(argv) > 1:
            timeout = int(argv[1])
        elif argv[0] == "--count" and len(argv) > 1:
            count = argv[1]
        else:
            print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
            return 2
        argv = argv[2:]
    if not argv or len(argv) < 2:
        print("deadns.py: no command", file=sys.stderr)
        return 2
    if not inside():
        prefix = unshare_prefix()
        if prefix is None:
            print("deadns.py: no namespace (needs root or unprivileged user namespaces)",
                  file=sys.stderr)
            return 125
        env = dict(os.environ)
        env[MARK] = "1"
        # exec: one process to stop, whoever started this
        os.execvpe(prefix[0], prefix + [sys.executable] + sys.argv, env)
    dead = DeadResolver(timeout)
    try:
        rc = subprocess.run(argv[1:]).returncode
    finally:
        n = dead.count()
        dead.close()
    if count:
        with open(count, "w") as f:
            f.write("%d\n" % n)
    return rc


if __name__ == "__main__":
    sys.exit(main())
