#!/usr/bin/python3
"""tests/real/reaper.py - stops the real-server suite's servers when the
suite itself is gone without its teardown (SIGKILL, a crash of the
interpreter). The suite starts it first, in its own session, and writes
one line per server on its stdin:

    pid PID         a process the suite started (with its descendants)
    clear           teardown ran: exit without touching anything

At EOF without "clear" (the suite died: the kernel closed the pipe) it
sends SIGTERM to every PID it was given and every descendant those have
then, waits up to 5 s, and SIGKILLs what is left. Only those pids: it
never looks processes up by name. Postfix's master drops its parent-death
signal (it changes credentials), so PR_SET_PDEATHSIG alone is not enough.
"""
import os
import signal
import sys
import time


def children():
    """ppid -> [pid] of every process now."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        out.setdefault(ppid, []).append(int(d))
    return out


def descendants(pids):
    tree = children()
    seen, todo = [], list(pids)
    while todo and len(seen) < 10000:
        p = todo.pop()
        if p in seen:
            continue
        seen.append(p)
        todo += tree.get(p, [])
    return seen


def main():
    signal.signal(signal.SIGINT, signal.SIG_IGN)    # Ctrl-C is the suite's to handle
    pids = []
    for line in sys.stdin:
        w = line.split()
        if w == ["clear"]:
            return 0
        if len(w) == 2 and w[0] == "pid" and w[1].isdigit():
            pids.append(int(w[1]))
    victims = [p for p in descendants(pids) if p != os.getpid()]
    for p in victims:
        try:
            os.kill(p, signal.SIGTERM)
        except ProcessLookupError:
            pass
    end = time.monotonic() + 5
    while time.monotonic() < end:
        alive = [p for p in victims if os.path.exists("/proc/%d" % p)]
        if not alive:
            return 0
        time.sleep(0.1)
    for p in victims:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
