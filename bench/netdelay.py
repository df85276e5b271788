"""bench/netdelay.py - a packet-level delay for the benchmark's phase (c):
two private network namespaces joined by TUN devices, and a forwarder
that holds every IP packet crossing between them, SYNs included, for a
fixed time in each direction.

    near namespace (the clients)            far namespace (the sink)
    tdnear 10.77.0.1/24  <-- forwarder -->  tdfar 10.77.0.2/24 (delayed)
                                                  10.77.0.3/24 (not delayed)

The forwarder is one process (this file run as a script, as root): it
makes a private mount namespace whose /etc/hosts is the benchmark's
(DELAYED_NAME -> 10.77.0.2, DIRECT_NAME -> 10.77.0.3), then the near and
the far network namespaces, one TUN device in each; it reads a packet
from one device and writes it to the other DELAY later, in order. The
kernels at both ends run real TCP over that path: the handshake, ACKs,
delayed ACKs, Nagle, TCP Fast Open are theirs. Packets to or from
10.77.0.3 take the same path without the delay: the benchmark's direct
baseline, the same client through the same namespaces and forwarder.
In the far namespace net.ipv4.tcp_fastopen is 3 (client and server), in
the near one 1 (client, the kernel's default). The host's own network is
never touched: everything lives in namespaces that vanish when the
forwarder and the processes started in them end (TUN devices go with
them).

It also follows every TCP connection and counts the client's waits: one
each time the client sends (payload, SYN, FIN or RST) after a server
packet reached it (payload, SYN-ACK, FIN, RST, or an ACK of new data: a
client that Nagle or its congestion window holds back waits a round trip
for that) and after it had been silent for most of a round trip (0.8 x 2
x DELAY; a client streaming while replies come back is not waiting; 0 on
the undelayed address). The SYN-ACK is such a packet, so TCP's handshake
is one wait, unless the SYN carried data (TCP Fast Open), which is
recorded per connection (syn_data, and whether the SYN-ACK acknowledged
it: syn_data_acked; syn_opt/synack_opt: the TFO option seen).

Control (stdin, one command a line; replies on stdout, one JSON a line):
    take MS   the connections seen since the last take, once every one
              has ended (both FINs, or a RST), or after MS milliseconds
    quit      end (so does EOF on stdin, and --max-seconds)

Bounded: the loop ends after --max-seconds; at most MAX_QUEUED packets are
held (more are dropped, and counted); each wake reads at most 256 packets.

NetDelay is the benchmark's handle on it: start, the nsenter prefixes
for the near and far sides, take(), stop()."""
import ctypes
import errno
import fcntl
import heapq
import json
import os
import select
import shutil
import struct
import subprocess
import sys
import time

NEAR_ADDR, DELAYED_ADDR, DIRECT_ADDR = "10.77.0.1", "10.77.0.2", "10.77.0.3"
DELAYED_NAME, DIRECT_NAME = "delayed.bench.test", "direct.bench.test"
NEAR_DEV, FAR_DEV = "tdnear", "tdfar"
DELAYED_RAW = bytes(int(x) for x in DELAYED_ADDR.split("."))
MAX_QUEUED = 20000
MAX_CONNS = 20000

CLONE_NEWNS, CLONE_NEWNET = 0x00020000, 0x40000000
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
TUNSETIFF, IFF_TUN, IFF_NO_PI = 0x400454CA, 0x0001, 0x1000
FIN, SYN, RST, ACK = 0x01, 0x02, 0x04, 0x10


# ------------------------------------------------------------ the handle --

class NetDelay:
    """Starts the forwarder (delay_s each way) and waits until both
    namespaces are up. near/far: argv prefixes (nsenter) that run a
    command in the near namespace (with the private /etc/hosts) or the
    far one."""

    def __init__(self, delay_s, work, max_seconds=3600, python=sys.executable):
        self.delay = delay_s
        nsenter = shutil.which("nsenter")
        if not nsenter:
            raise RuntimeError("nsenter (util-linux) is not installed")
        if os.geteuid() != 0:
            raise RuntimeError("needs root (network namespaces, TUN devices)")
        self.hosts = os.path.join(work, "hosts")
        with open(self.hosts, "w") as f:
            f.write("127.0.0.1\tlocalhost\n::1\tlocalhost\n%s\t%s\n%s\t%s\n"
                    % (DELAYED_ADDR, DELAYED_NAME, DIRECT_ADDR, DIRECT_NAME))
        self.err = open(os.path.join(work, "netdelay.err"), "w")
        self.proc = subprocess.Popen(
            [python, os.path.abspath(__file__), "--delay-ms", "%g" % (delay_s * 1000),
             "--hosts", self.hosts, "--max-seconds", str(int(max_seconds))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err, text=True, bufsize=1)
        ready = self._reply(15)
        if not ready or "pid" not in ready:
            self.stop()
            with open(self.err.name) as f:
                raise RuntimeError("the packet delayer did not start: %s" % f.read().strip()[-600:])
        pid = ready["pid"]
        self.near = [nsenter, "--net=/proc/%d/fd/%d" % (pid, ready["near_fd"]),
                     "--mount=/proc/%d/ns/mnt" % pid, "--wd=" + work, "--"]
        self.far = [nsenter, "--net=/proc/%d/fd/%d" % (pid, ready["far_fd"]), "--"]
        self.addr = {DELAYED_NAME: DELAYED_ADDR, DIRECT_NAME: DIRECT_ADDR}

    def _reply(self, timeout):
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not r:
            return None
        line = self.proc.stdout.readline()
        return json.loads(line) if line.strip() else None

    def take(self, wait_s=5.0):
        """The connections since the last take (dicts, see Conn.view)."""
        self.proc.stdin.write("take %d\n" % int(wait_s * 1000))
        self.proc.stdin.flush()
        r = self._reply(wait_s + 5)
        if r is None or "conns" not in r:
            raise RuntimeError("the packet delayer did not answer")
        return r["conns"]

    def stop(self):
        stop_child(self.proc)
        self.err.close()


def stop_child(proc):
    """End a child that takes "quit" on stdin (the forwarder, bench/sink):
    asked first, killed after 5 s."""
    if proc.poll() is None:
        try:
            proc.stdin.write("quit\n")
            proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def tcp_ext(pid):
    """The TcpExt counters of the network namespace that process pid is in."""
    with open("/proc/%d/net/netstat" % pid) as f:
        lines = f.read().splitlines()
    for names, values in zip(lines, lines[1:]):
        if names.startswith("TcpExt:") and values.startswith("TcpExt:"):
            return dict(zip(names.split()[1:], (int(v) for v in values.split()[1:])))
    return {}


# -------------------------------------------------------- the forwarder --

libc = ctypes.CDLL(None, use_errno=True)


def check(rc, what):
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, "%s: %s" % (what, os.strerror(e)))


def write_proc(path, value):
    with open(path, "w") as f:
        f.write(value)


def ip(*args):
    exe = shutil.which("ip", path="/usr/sbin:/sbin:/usr/bin:/bin") or "ip"
    subprocess.run([exe] + list(args), check=True, timeout=10, stdout=subprocess.DEVNULL)


def make_tun(name):
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH22x", name.encode(), IFF_TUN | IFF_NO_PI))
    # no IPv6 on it: no link-local address, no router solicitations
    write_proc("/proc/sys/net/ipv6/conf/%s/disable_ipv6" % name, "1")
    return fd


def new_netns():
    """A new network namespace for this (single-threaded) process; returns
    an fd that keeps it alive and names it (/proc/PID/fd/FD)."""
    check(libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
    fd = os.open("/proc/self/ns/net", os.O_RDONLY)
    ip("link", "set", "lo", "up")
    return fd


def setup(hosts):
    check(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate /")
    check(libc.mount(hosts.encode(), b"/etc/hosts", None, MS_BIND, None), "bind-mount /etc/hosts")
    near_ns = new_netns()
    near = make_tun(NEAR_DEV)
    ip("addr", "add", NEAR_ADDR + "/24", "dev", NEAR_DEV)
    ip("link", "set", NEAR_DEV, "up")
    write_proc("/proc/sys/net/ipv4/tcp_fastopen", "1")
    far_ns = new_netns()
    far = make_tun(FAR_DEV)
    ip("addr", "add", DELAYED_ADDR + "/24", "dev", FAR_DEV)
    ip("addr", "add", DIRECT_ADDR + "/24", "dev", FAR_DEV)
    ip("link", "set", FAR_DEV, "up")
    write_proc("/proc/sys/net/ipv4/tcp_fastopen", "3")
    return near_ns, far_ns, near, far


class Conn:
    def __init__(self, key, now, syn_data, opts, quiet):
        self.addr, self.port, self.cport = key
        self.quiet = quiet
        self.t0 = now
        self.syn_data, self.syn_opt = syn_data, opts
        self.syn_data_acked = False
        self.synack_opt = None
        self.isn = None
        self.s_ack = None          # the server's highest acknowledgment so far
        self.syn_retx = 0
        self.turns = 0
        self.c_pkts = self.s_pkts = self.c_bytes = self.s_bytes = 0
        self.fin_c = self.fin_s = self.rst = False
        self.delivered = False     # server packet written to the client since its last send
        self.last_c = None
        self.timeline = []         # [ms since SYN, "C"/"S", payload, flags, turn?]

    def ended(self):
        return self.rst or (self.fin_c and self.fin_s)

    def view(self):
        return {"addr": self.addr, "port": self.port, "cport": self.cport,
                "syn_data": self.syn_data, "syn_data_acked": self.syn_data_acked,
                "syn_opt": self.syn_opt, "synack_opt": self.synack_opt, "syn_retx": self.syn_retx,
                "turns": self.turns, "c_pkts": self.c_pkts, "s_pkts": self.s_pkts,
                "c_bytes": self.c_bytes, "s_bytes": self.s_bytes, "ended": self.ended(),
                "timeline": self.timeline[:400]}


def tfo_option(tcp, doff):
    """'cookie request', 'cookie' or None: the TCP Fast Open option (34)."""
    i = 20
    while i < doff:
        kind = tcp[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= doff:
            break
        ln = tcp[i + 1]
        if ln < 2:
            break
        if kind == 34:
            return "cookie request" if ln == 2 else "cookie"
        i += ln
    return None


class Forwarder:
    def __init__(self, near, far, delay_s):
        self.near, self.far, self.delay = near, far, delay_s
        self.quiet = 1.6 * delay_s     # most of a round trip
        self.heap = []                 # (due, seq, out fd, packet, conn or None, server side?)
        self.seq = 0
        self.dropped = 0
        self.conns = {}                # key -> Conn, the latest for that key
        self.order = []                # Conns not taken yet, in order of their SYN

    def packet(self, pkt, from_near, now):
        if len(pkt) < 20 or pkt[0] >> 4 != 4:
            return                     # IPv4 only (IPv6 is off on both devices)
        src, dst = pkt[12:16], pkt[16:20]
        far_addr = dst if from_near else src
        delay = self.delay if far_addr == DELAYED_RAW else 0.0
        conn, event = None, False
        ihl = (pkt[0] & 15) * 4
        if pkt[9] == 6 and len(pkt) >= ihl + 20:
            conn, event = self.track(pkt, ihl, from_near, now, far_addr)
        if len(self.heap) >= MAX_QUEUED:
            self.dropped += 1
            return
        self.seq += 1
        heapq.heappush(self.heap, (now + delay, self.seq, self.far if from_near else self.near,
                                   pkt, conn if event else None))

    def track(self, pkt, ihl, from_near, now, far_addr):
        """The connection of a TCP packet, and for one from the server
        whether it is an event the client may be waiting for."""
        total = struct.unpack_from("!H", pkt, 2)[0]
        sport, dport, seq, ack = struct.unpack_from("!HHII", pkt, ihl)
        doff = (pkt[ihl + 12] >> 4) * 4
        flags = pkt[ihl + 13]
        payload = max(0, total - ihl - doff)
        key = (".".join(map(str, far_addr)), dport, sport) if from_near \
            else (".".join(map(str, far_addr)), sport, dport)
        c = self.conns.get(key)
        if from_near and flags & SYN and not flags & ACK:
            if c is None or c.ended() or c.isn != seq:
                if len(self.order) >= MAX_CONNS:
                    return None, False
                c = Conn(key, now, payload, tfo_option(pkt[ihl:ihl + doff], doff),
                         self.quiet if far_addr == DELAYED_RAW else 0.0)
                c.isn = seq
                self.conns[key] = c
                self.order.append(c)
            else:
                c.syn_retx += 1
                return c, False
        if c is None:
            return None, False
        fl = "".join(n for b, n in ((SYN, "S"), (FIN, "F"), (RST, "R")) if flags & b)
        event = False
        if from_near:
            c.c_pkts += 1
            c.c_bytes += payload
            if payload or flags & (SYN | FIN | RST):
                turn = c.delivered and (c.last_c is None or now - c.last_c >= c.quiet)
                if turn:
                    c.turns += 1
                c.delivered = False
                c.last_c = now
                c.timeline.append([round((now - c.t0) * 1000, 1), "C", payload, fl, turn])
            c.fin_c |= bool(flags & FIN)
        else:
            c.s_pkts += 1
            c.s_bytes += payload
            if flags & SYN and flags & ACK:
                c.synack_opt = tfo_option(pkt[ihl:ihl + doff], doff)
                c.syn_data_acked = c.syn_data > 0 and ack == (c.isn + 1 + c.syn_data) & 0xFFFFFFFF
            # an ACK of new data is one too: a client held back by Nagle or
            # by its congestion window waits a round trip for it
            acked = bool(flags & ACK) and c.s_ack is not None and \
                0 < (ack - c.s_ack) & 0xFFFFFFFF < 1 << 31
            if flags & ACK and (c.s_ack is None or acked):
                c.s_ack = ack
            event = bool(payload or flags & (SYN | FIN | RST) or acked)
            if event:
                c.timeline.append([round((now - c.t0) * 1000, 1), "S", payload,
                                   fl or ("" if payload else "A"), False])
            c.fin_s |= bool(flags & FIN)
        c.rst |= bool(flags & RST)
        return c, event

    def flush(self, now):
        """Writes the packets that are due; marks the client's connection
        when a server event reaches it."""
        while self.heap and self.heap[0][0] <= now:
            _, _, fd, pkt, conn = heapq.heappop(self.heap)
            try:
                os.write(fd, pkt)
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EIO, errno.ENOBUFS):
                    raise
                self.dropped += 1
                continue
            if conn is not None:
                conn.delivered = True

    def take(self):
        out = [c.view() for c in self.order]
        self.order = []
        return out


def serve(a):
    near_ns, far_ns, near, far = setup(a.hosts)
    fw = Forwarder(near, far, a.delay_ms / 1000.0)
    out = sys.stdout
    out.write(json.dumps({"pid": os.getpid(), "near_fd": near_ns, "far_fd": far_ns,
                          "near_dev": NEAR_DEV, "far_dev": FAR_DEV}) + "\n")
    out.flush()
    end = time.monotonic() + a.max_seconds
    inbuf = b""
    take_due = None                    # deadline of a pending take
    while True:
        now = time.monotonic()
        if now > end:
            break
        waits = [end - now]
        if fw.heap:
            waits.append(fw.heap[0][0] - now)
        if take_due is not None:
            waits.append(0.005)        # look again soon: the connections may have ended
        r, _, _ = select.select([near, far, 0], [], [], max(0.0, min(waits)))
        now = time.monotonic()
        for fd in (near, far):
            if fd in r:
                for _ in range(256):
                    try:
                        pkt = os.read(fd, 65536)
                    except BlockingIOError:
                        break
                    fw.packet(pkt, fd == near, now)
        fw.flush(time.monotonic())
        if 0 in r:
            data = os.read(0, 4096)
            if not data:
                break
            inbuf += data
            stop = False
            while b"\n" in inbuf:
                line, inbuf = inbuf.split(b"\n", 1)
                cmd = line.decode(errors="replace").split()
                if cmd[:1] == ["quit"]:
                    stop = True
                elif cmd[:1] == ["take"]:
                    take_due = now + (int(cmd[1]) / 1000.0 if len(cmd) > 1 else 5.0)
                elif cmd:
                    out.write(json.dumps({"error": "unknown command %r" % line[:80]}) + "\n")
                    out.flush()
            if stop:
                break
            inbuf = inbuf[-4096:]
        if take_due is not None and (all(c.ended() for c in fw.order) or now >= take_due):
            out.write(json.dumps({"conns": fw.take(), "dropped": fw.dropped}) + "\n")
            out.flush()
            take_due = None
    for fd in (near, far, near_ns, far_ns):
        os.close(fd)
    return 0


if __name__ == "__main__":
    import argparse
    sys.dont_write_bytecode = True
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--delay-ms", type=float, required=True)
    ap.add_argument("--hosts", required=True, help="the /etc/hosts of the near side")
    ap.add_argument("--max-seconds", type=float, default=3600)
    sys.exit(serve(ap.parse_args()))
