#!/usr/bin/python3
"""bench/run.py - tlsmail-send beside curl, msmtp and Python's smtplib.

    /usr/bin/python3 bench/run.py --tlsmail-send build/tlsmail-send [--rounds N]

One aiosmtpd server (tests/smtpd.py, implicit TLS, AUTH PLAIN) on 127.0.0.1
with a throw-away PKI; every client sends the same 2 KiB message with AUTH
PLAIN, verifying the CA, in interleaved rounds so that drift in the machine's
load hits every client alike. Each send is checked: the server must have
stored one more message, or the run fails (a client that fails fast must not
look fast). Per client: median wall time, median CPU time of the client
process (user + sys, from wait4, including GNU time's own fraction of a
millisecond), and peak RSS (GNU time's %M); then each as a ratio to
tlsmail-send. The server's own time is in the wall figures of all clients
alike, so the CPU column is the cleaner comparison of the clients.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.join(os.path.dirname(HERE), "tests")
sys.path.insert(0, TESTS)
import test_integration as ti  # noqa: E402  (the aiosmtpd server wrapper)
sys.path.insert(0, HERE)
from delayproxy import DelayProxy  # noqa: E402

USER, PASS = "bench@example.org", "bench-pass"
FROM, TO = "bench@example.org", "rcpt@example.org"


def message():
    head = ("From: %s\r\nTo: %s\r\nSubject: benchmark\r\n\r\n" % (FROM, TO)).encode()
    line = b"The quick brown fox jumps over the lazy dog 0123456789.\r\n"
    body = line * ((2048 - len(head)) // len(line) + 1)
    return (head + body)[:2048 - 2] + b"\r\n"


SMTPLIB = r"""
import smtplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
with smtplib.SMTP_SSL("localhost", int(sys.argv[1]), context=ctx) as s:
    s.login(sys.argv[3], sys.argv[4])
    s.sendmail(sys.argv[5], [sys.argv[6]], sys.stdin.buffer.read())
"""


def clients(tlsmail_send, port, ca, work):
    pwfile = os.path.join(work, "pw")
    with open(pwfile, "w") as f:
        f.write(PASS + "\n")
    c = {
        "tlsmail-send": [tlsmail_send, "--server", "localhost:%d" % port, "--cafile", ca,
                         "--user", USER, "--password-file", pwfile, "--auth", "plain",
                         "--from", FROM, TO],
        "curl": ["curl", "-sS", "--url", "smtps://localhost:%d" % port, "--cacert", ca,
                 "--user", "%s:%s" % (USER, PASS), "--mail-from", FROM, "--mail-rcpt", TO,
                 "--upload-file", "-"],
        "msmtp": ["msmtp", "--host=localhost", "--port=%d" % port, "--tls=on",
                  "--tls-starttls=off", "--tls-trust-file=" + ca, "--auth=plain",
                  "--user=" + USER, "--passwordeval=cat " + pwfile, "--from=" + FROM, TO],
        "python smtplib": [ti.PYTHON, "-c", SMTPLIB, str(port), ca, USER, PASS, FROM, TO],
    }
    return {k: v for k, v in c.items() if shutil.which(v[0]) or os.access(v[0], os.X_OK)}


def run_one(cmd, msg, rssfile):
    """Wall ms, CPU ms and peak RSS KiB of one client process. The RSS comes
    from GNU time: a child forked straight from this Python process would
    count Python's own pages, copied before exec, in its high-water mark."""
    t0 = time.monotonic()
    p = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", rssfile] + cmd,
                         stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    p.stdin.write(msg)
    p.stdin.close()
    _, status, ru = os.wait4(p.pid, 0)
    wall = (time.monotonic() - t0) * 1000
    err = p.stderr.read().decode("utf-8", "replace")
    p.stderr.close()
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (cmd[0], p.returncode, err.strip()[:300]))
    with open(rssfile) as f:
        rss = int(f.read().split()[-1])
    return wall, (ru.ru_utime + ru.ru_stime) * 1000, rss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tlsmail-send", required=True)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--rtt-ms", type=int, default=100,
                    help="round-trip time of the delaying proxy for the round-trip count")
    ap.add_argument("--rtt-rounds", type=int, default=3)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="tlsmail-bench-")
    srv = None
    try:
        pki = os.path.join(work, "pki")
        subprocess.run(["bash", os.path.join(TESTS, "pki.sh"), pki], check=True, timeout=60,
                       stdout=subprocess.DEVNULL)
        srv = ti.Server("good", pki, work, [(USER, PASS)])
        srv.wait_ready(time.monotonic() + ti.READY_TIMEOUT)
        ca = os.path.join(pki, "ca.crt")
        cl = clients(os.path.abspath(a.tlsmail_send), srv.port, ca, work)
        msg = message()
        rssfile = os.path.join(work, "rss")
        res = {k: [] for k in cl}
        for name, cmd in cl.items():        # warm-up: page cache, server's first-use costs
            run_one(cmd, msg, rssfile)
        stored = len(srv.emls())
        for _ in range(a.rounds):
            for name, cmd in cl.items():
                res[name].append(run_one(cmd, msg, rssfile))
                now = len(srv.emls())
                if now != stored + 1:
                    raise RuntimeError("%s: the server stored %d messages, not 1" % (name, now - stored))
                stored = now
        base = res["tlsmail-send"]
        bw = statistics.median(r[0] for r in base)
        bc = statistics.median(r[1] for r in base)
        bm = max(r[2] for r in base)
        print("%d sends of a %d-byte message per client, AUTH PLAIN over implicit TLS, "
              "aiosmtpd on 127.0.0.1\n" % (a.rounds, len(msg)))
        print("%-16s %10s %8s %10s %8s %12s %8s" % ("client", "wall ms", "ratio", "CPU ms", "ratio",
                                                   "peak RSS KiB", "ratio"))
        for name, rs in res.items():
            w = statistics.median(r[0] for r in rs)
            c = statistics.median(r[1] for r in rs)
            m = max(r[2] for r in rs)
            print("%-16s %10.1f %7.2fx %10.1f %7.2fx %12d %7.2fx" % (name, w, w / bw, c, c / bc if bc else 0,
                                                                  m, m / bm))
        # Round trips: the same sends through a proxy that adds rtt/2 each
        # way. (wall - wall on loopback) / rtt counts the client's waits for
        # the server after TCP connect (the proxy answers the SYN at once).
        proxy = DelayProxy(srv.port, a.rtt_ms / 2000.0)
        try:
            rcl = clients(os.path.abspath(a.tlsmail_send), proxy.port, ca, work)
            rtt = {k: [] for k in rcl}
            for _ in range(a.rtt_rounds):
                for name, cmd in rcl.items():
                    rtt[name].append(run_one(cmd, msg, rssfile)[0])
                    stored += 1
            if len(srv.emls()) != stored:
                raise RuntimeError("the server stored %d messages through the proxy, not %d"
                                   % (len(srv.emls()) - stored + a.rtt_rounds * len(rcl),
                                      a.rtt_rounds * len(rcl)))
        finally:
            proxy.stop()
        print("\nround trips after TCP connect, through a proxy adding %d ms RTT "
              "(median of %d; (wall - loopback wall) / RTT):" % (a.rtt_ms, a.rtt_rounds))
        for name, ws in rtt.items():
            base_w = statistics.median(r[0] for r in res[name])
            print("  %-16s %5.1f" % (name, (statistics.median(ws) - base_w) / a.rtt_ms))
        missing = {"curl", "msmtp", "python smtplib"} - set(cl)
        if missing:
            print("\nnot measured (not installed): %s" % ", ".join(sorted(missing)))
    finally:
        if srv:
            srv.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
