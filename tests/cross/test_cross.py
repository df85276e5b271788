#!/usr/bin/python3
"""tests/cross/test_cross.py - tlsmail built for other C libraries, CPUs and
systems, sending real mail: musl (static, run on the host), aarch64 and
armhf (static glibc, run under qemu-user), Windows (mingw-w64, run under
wine64: tlsmail-send.exe on the library's Winsock transport, the
TLSMAIL_NO_SOCKETS program win_send.exe, and the test drivers itest.exe and
rdial.exe for what only a driver can show: the STARTTLS fallback after a
refused port, a silent server, a resolver that never answers; and the
system trust store, the current user's ROOT store, which win_store.exe
fills and empties inside the suite's own prefix) and a Cortex-M4 image
(linked and measured, not run).

    /usr/bin/python3 tests/cross/test_cross.py --build DIR [-k SUBSTR]... [--keep] [-v]
    (tests/cross/run.sh DIR [-k SUBSTR]... runs it)

BearSSL comes from Debian's source package of the libbearssl-dev installed
here (apt-get source with a private deb-src list, lists and cache under
DIR/cross/apt: the system's apt configuration is only read), and is built
once per target with its own build system into DIR/cross/TARGET/bearssl,
kept there until the package version, the compiler or the flags change.
The Windows prefix (DIR/cross/wine) is made once, too. Whatever is cached
is reused; delete DIR/cross to start cold.

The sends go to tests/lib/smtpd.py (aiosmtpd, implicit TLS, AUTH required,
a certificate of tests/lib/pki.sh) on 127.0.0.1; each case checks that the
server stored exactly the expected bytes, for the expected envelope and
login. The dead-resolver cases run wine in the private namespace of
tests/resolve/deadns.py. The Cortex-M4 image must stay within
tests/cross/budget.txt.

Prints "PASS name" or "FAIL name: reason" per case and, last, exactly
"N passed, N failed"; exits 1 if any case failed. Every wait is bounded.
"""
import argparse
import glob
import hashlib
import math
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))
from testlib import (CaseFailure, check, normalise, registry, run_cases,  # noqa: E402
                     Server, ROOT, PKI_SH, WARN, READY_TIMEOUT, Result, SilentListener,
                     free_port, NO_SMTP)

DEADNS = os.path.join(os.path.dirname(HERE), "resolve", "deadns.py")
RESOLVER_S = 6            # deadns.py's default: the dead resolver's own timeout
SLACK_MS = 3000           # wine and a loaded machine
WIN_SWITCHES = ["", "-DTLSMAIL_STARTTLS", "-DTLSMAIL_NO_THREADS", "-DTLSMAIL_NO_STDIO",
                "-DTLSMAIL_NO_SOCKETS", "-DTLSMAIL_STARTTLS -DTLSMAIL_NO_SOCKETS -DTLSMAIL_NO_STDIO",
                "-DTLSMAIL_STATIC -DTLSMAIL_STARTTLS -DTLSMAIL_NO_THREADS"]
# Windows programs from the project's sources: (sources, flags, libraries).
# itest.c reads CLOCK_MONOTONIC, which mingw-w64 keeps in winpthreads.
WIN_PROGRAMS = {
    "tlsmail-send.exe": (["examples/tlsmail-send/tlsmail-send.c"], ["-DTLSMAIL_STARTTLS", "-I."], []),
    "itest.exe": (["tests/integration/itest.c"], ["-DTLSMAIL_STARTTLS"], ["-static", "-lpthread"]),
    "rdial.exe": (["tests/resolve/rdial.c"], [], []),
    "rdial-nothreads.exe": (["tests/resolve/rdial.c"], ["-DTLSMAIL_NO_THREADS"], []),
}

# The sources of tlsmail-send, relative to the repository root.
TLSMAIL_SEND_SOURCES = ["examples/tlsmail-send/tlsmail-send.c"]
TLSMAIL_SEND_FLAGS = ["-DTLSMAIL_STARTTLS"]       # as the Makefile builds it

USER, PASS = "cross@example.org", "cross-Pw-1"
BUDGET = os.path.join(HERE, "budget.txt")

BEARSSL_CFLAGS = ["-W", "-Wall", "-Os", "-ffunction-sections", "-fdata-sections"]
M4_CPU = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]

# How each target's BearSSL and programs are built and run. run: the
# command prefix that executes the target's binaries here. machine: what
# readelf -h must say, so a host binary can't pass for a cross one (None:
# the host's own).
TARGETS = {
    "musl": dict(cc="musl-gcc", ar="ar", cflags=BEARSSL_CFLAGS, run=[], machine=None),
    "aarch64": dict(cc="aarch64-linux-gnu-gcc", ar="aarch64-linux-gnu-ar",
                    cflags=BEARSSL_CFLAGS, machine="AArch64",
                    run=["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu"]),
    "armhf": dict(cc="arm-linux-gnueabihf-gcc", ar="arm-linux-gnueabihf-ar",
                  cflags=BEARSSL_CFLAGS, machine="ARM",
                  run=["qemu-arm", "-L", "/usr/arm-linux-gnueabihf"]),
    "mingw": dict(cc="x86_64-w64-mingw32-gcc", ar="x86_64-w64-mingw32-ar",
                  cflags=BEARSSL_CFLAGS),
    # The host, built as for a board: no system random source and no clock
    # in BearSSL (tests/cross/board_host.c gives both through tlsmail_config).
    "board": dict(cc="gcc", ar="ar", machine=None, run=[],
                  cflags=BEARSSL_CFLAGS + ["-DBR_RDRAND=0", "-DBR_USE_URANDOM=0",
                                           "-DBR_USE_WIN32_RAND=0", "-DBR_USE_UNIX_TIME=0",
                                           "-DBR_USE_WIN32_TIME=0"]),
    # No OS: no /dev/urandom and no time(); BR_ARMEL_CORTEXM_GCC is
    # BearSSL's own switch for its Cortex-M assembly.
    "cortex-m4": dict(cc="arm-none-eabi-gcc", ar="arm-none-eabi-ar",
                      cflags=BEARSSL_CFLAGS + M4_CPU + ["-DBR_ARMEL_CORTEXM_GCC",
                                                        "-DBR_USE_UNIX_TIME=0",
                                                        "-DBR_USE_URANDOM=0"]),
}

BUILD_TIMEOUT = 900       # seconds for one make or compiler run
APT_TIMEOUT = 600         # seconds for apt-get update / source
SEND_TIMEOUT = 120        # seconds for one send under qemu or wine
WINEBOOT_TIMEOUT = 600    # seconds to make the wine prefix, the first time
WINE_PATHS = ["/usr/lib/wine/wine64", "wine64", "wine"]


def tail(text, n=8):
    lines = [l for l in text.strip().splitlines() if l.strip()]
    return " | ".join(lines[-n:])


def run(cmd, timeout, what, **kw):
    """Run cmd; CaseFailure with the end of its output if it fails."""
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout, **kw)
    except subprocess.TimeoutExpired:
        raise CaseFailure("%s: no result within %d s" % (what, timeout))
    except OSError as e:
        raise CaseFailure("%s: %s" % (what, e))
    out = p.stdout.decode("utf-8", "replace")
    if p.returncode != 0:
        raise CaseFailure("%s: exit %d: %s" % (what, p.returncode, tail(out)))
    return out


def first_line(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, timeout=60).stdout.decode()
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.strip().splitlines()[0] if out.strip() else ""


def elf_machine(path):
    hdr = run(["readelf", "-h", path], 30, "readelf -h")
    return [l.split(":", 1)[1].strip() for l in hdr.splitlines()
            if l.strip().startswith("Machine:")]


def up_to_date(out, inputs, stamp_text):
    """out exists, is newer than every input, and was made by stamp_text."""
    stamp = out + ".cmd"
    if not os.path.exists(out) or not os.path.exists(stamp):
        return False
    with open(stamp) as f:
        if f.read() != stamp_text:
            return False
    t = os.path.getmtime(out)
    return all(os.path.getmtime(i) <= t for i in inputs)


# The shared test headers the C drivers include: a change rebuilds them.
TEST_HEADERS = [os.path.join(ROOT, "tests", "lib", h) for h in ("heap_count.h", "err_name.h")]


def build_file(out, inputs, cmd, what):
    """Compile/link with cmd unless out is up to date for these inputs."""
    text = " ".join(cmd) + "\n"
    if up_to_date(out, inputs, text):
        return False
    for f in (out, out + ".cmd"):
        if os.path.exists(f):
            os.unlink(f)
    run(["nice", "-n", "10"] + cmd, BUILD_TIMEOUT, what, cwd=ROOT)
    with open(out + ".cmd", "w") as f:
        f.write(text)
    return True


def make_message(tag):
    """A message that exercises what a byte-exact check can catch: ~200 KB
    (many TLS records), lines that need dot-stuffing, UTF-8, a bare LF and
    a bare CR (normalised to CRLF), lines of 998 octets."""
    head = ("From: Cross Test <%s>\r\nTo: rcpt-%s@example.org\r\n"
            "Subject: tlsmail on %s\r\nDate: Sat, 28 Nov 2026 18:27:24 +0000\r\n"
            "Message-ID: <cross-%s@example.org>\r\n\r\n" % (USER, tag, tag, tag)).encode()
    lines = [b".starts with a dot", b"..two dots", b".", b"Gr\xc3\xbc\xc3\x9fe aus %s"
             % tag.encode(), b"bare LF follows\nbare CR follows\rend"]
    seed = 0x2545F491
    for i in range(2400):
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        n = 20 + seed % 140
        lines.append((b"%05d " % i) + bytes(33 + (seed >> (k % 16)) % 94 for k in range(n)))
    lines.append(b"x" * 998)
    lines.append(b"." + b"y" * 997)
    return head + b"\r\n".join(lines) + b"\r\n"


class Suite:
    def __init__(self, build_dir, work, verbose):
        self.build = build_dir
        self.root = os.path.join(build_dir, "cross")
        self.work = work
        self.verbose = verbose
        self.servers = {}
        self.pki = os.path.join(self.root, "pki")
        self.memo = {}
        self.wine_env = None     # (wineserver, env) once wine may have run

    def say(self, text):
        print("  " + text, flush=True)

    def once(self, key, fn):
        """fn() the first time; later calls repeat its result or its failure."""
        if key not in self.memo:
            try:
                self.memo[key] = (True, fn())
            except CaseFailure as e:
                self.memo[key] = (False, e)
        ok, v = self.memo[key]
        if not ok:
            raise CaseFailure("%s failed earlier: %s" % (key, v))
        return v

    # --------------------------------------------------------- BearSSL --

    def apt_options(self):
        """apt options that read the system's configuration but keep every
        list, cache and lock under DIR/cross/apt, with deb-src entries of
        the system's own sources."""
        d = os.path.join(self.root, "apt")
        for sub in ("lists/partial", "cache/archives/partial", "parts"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        deb822 = "/etc/apt/sources.list.d/debian.sources"
        if os.path.exists(deb822):
            src = os.path.join(d, "deb-src.sources")
            with open(deb822) as f:
                text = f.read()
            text = "\n".join("Types: deb-src" if l.strip().startswith("Types:") else l
                             for l in text.splitlines()) + "\n"
        elif os.path.exists("/etc/apt/sources.list"):
            src = os.path.join(d, "deb-src.list")
            with open("/etc/apt/sources.list") as f:
                text = "".join("deb-src" + l[3:] for l in f if l.startswith("deb "))
        else:
            raise CaseFailure("no Debian sources list to copy")
        with open(src, "w") as f:
            f.write(text)
        opts = ["-o", "Dir::Etc::sourcelist=" + src,
                "-o", "Dir::Etc::sourceparts=" + os.path.join(d, "parts"),
                "-o", "Dir::State::Lists=" + os.path.join(d, "lists"),
                "-o", "Dir::Cache=" + os.path.join(d, "cache")]
        if os.getuid() == 0:
            # _apt could not write into a build directory owned by root.
            opts += ["-o", "APT::Sandbox::User=root"]
        return opts

    def bearssl_source(self):
        """The unpacked Debian source of the installed libbearssl-dev."""
        version = first_line(["dpkg-query", "-W", "-f=${source:Version}\n", "libbearssl-dev"])
        base = os.path.join(self.root, "src")
        if version:
            tree = self.source_tree(base, version)
            if tree:
                return version, tree
        opts = self.apt_options()
        run(["apt-get", "-q"] + opts + ["update"], APT_TIMEOUT, "apt-get update (deb-src)")
        if not version:
            out = run(["apt-cache"] + opts + ["showsrc", "bearssl"], 60, "apt-cache showsrc")
            vs = [l.split(None, 1)[1] for l in out.splitlines() if l.startswith("Version: ")]
            check(vs, "apt-cache showsrc bearssl: no version")
            version = vs[0]
        dest = os.path.join(base, version.replace(":", "_"))
        tmp = dest + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        # dpkg-source -x (run by apt-get source) applies Debian's patches,
        # when the package has any, and checks the files against the .dsc.
        run(["apt-get", "-q"] + opts + ["source", "bearssl=" + version], APT_TIMEOUT,
            "apt-get source bearssl=" + version, cwd=tmp)
        shutil.rmtree(dest, ignore_errors=True)
        os.rename(tmp, dest)
        with open(os.path.join(dest, "ok"), "w") as f:
            f.write(version + "\n")
        # The source lists (tens of MB) serve only this fetch.
        shutil.rmtree(os.path.join(self.root, "apt", "lists"), ignore_errors=True)
        tree = self.source_tree(base, version)
        check(tree, "apt-get source bearssl: no source tree in %s" % dest)
        return version, tree

    @staticmethod
    def source_tree(base, version):
        dest = os.path.join(base, version.replace(":", "_"))
        if not os.path.exists(os.path.join(dest, "ok")):
            return None
        trees = [d for d in glob.glob(os.path.join(dest, "bearssl-*"))
                 if os.path.isfile(os.path.join(d, "mk", "Rules.mk"))]
        return trees[0] if len(trees) == 1 else None

    def bearssl(self, target):
        """DIR/cross/TARGET/bearssl: libbearssl.a and include/, rebuilt only
        when the key changes."""
        return self.once("bearssl " + target, lambda: self._bearssl(target))

    def _bearssl(self, target):
        version, tree = self.once("bearssl source", self.bearssl_source)
        t = TARGETS[target]
        cc_id = first_line([t["cc"], "--version"])
        check(cc_id, "%s: not found (tests/deps.sh cross installs it)" % t["cc"])
        key = "bearssl %s\ncc %s: %s (%s)\ncflags %s\n" % (
            version, t["cc"], cc_id, first_line([t["cc"], "-dumpmachine"]),
            " ".join(t["cflags"]))
        out = os.path.join(self.root, target, "bearssl")
        keyf = os.path.join(out, "key")
        if os.path.exists(keyf):
            with open(keyf) as f:
                if f.read() == key:
                    if self.verbose:
                        self.say("BearSSL for %s: cached in %s" % (target, out))
                    return out
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(os.path.join(out, "obj"))   # make -j2 would race to create it
        t0 = time.monotonic()
        # BearSSL's own makefiles (conf/Unix.mk), their variables set on the
        # command line as its README describes; objects go to out, the
        # source tree stays as unpacked.
        run(["nice", "-n", "10", "make", "-C", tree, "-j2", "lib", "CONF=Unix",
             "BUILD=" + out, "CC=" + t["cc"], "AR=" + t["ar"], "LD=" + t["cc"],
             "CFLAGS=" + " ".join(t["cflags"]), "DLL=no", "TESTS=no"],
            BUILD_TIMEOUT, "BearSSL for " + target)
        shutil.copytree(os.path.join(tree, "inc"), os.path.join(out, "include"))
        with open(keyf, "w") as f:
            f.write(key)
        self.say("built BearSSL %s for %s with %s in %.0f s"
                 % (version, target, cc_id, time.monotonic() - t0))
        return out

    def brssl(self):
        return self.once("brssl", self._brssl)

    def _brssl(self):
        """BearSSL's command-line tool for the host, from the same source,
        linked with the installed libbearssl.a (the same version)."""
        _version, tree = self.once("bearssl source", self.bearssl_source)
        lib = first_line(["cc", "-print-file-name=libbearssl.a"])
        check(os.path.isabs(lib), "no libbearssl.a on the host (libbearssl-dev)")
        out = os.path.join(self.root, "host", "brssl")
        os.makedirs(os.path.dirname(out), exist_ok=True)
        srcs = sorted(glob.glob(os.path.join(tree, "tools", "*.c")))
        build_file(out, srcs + [lib], ["cc"] + BEARSSL_CFLAGS + ["-I" + os.path.join(tree, "inc")] +
                   srcs + ["-o", out, lib], "brssl")
        return out

    # -------------------------------------------------------- programs --

    def tlsmail_send(self, target):
        return self.once("tlsmail-send " + target, lambda: self._tlsmail_send(target))

    def _tlsmail_send(self, target):
        t = TARGETS[target]
        b = self.bearssl(target)
        out = os.path.join(self.root, target, "tlsmail-send")
        srcs = [os.path.join(ROOT, s) for s in TLSMAIL_SEND_SOURCES]
        cmd = ([t["cc"]] + WARN + ["-O2"] + TLSMAIL_SEND_FLAGS +
               ["-I" + ROOT, "-isystem", os.path.join(b, "include"), "-static"] + srcs +
               ["-o", out, os.path.join(b, "libbearssl.a"), "-Wl,--gc-sections"])
        build_file(out, srcs + [os.path.join(ROOT, "tlsmail.h"),
                                os.path.join(b, "libbearssl.a")], cmd,
                   "tlsmail-send for " + target)
        want = [t["machine"]] if t["machine"] else elf_machine(os.path.realpath(sys.executable))
        got = elf_machine(out)
        check(got == want, "%s is for %s, not %s" % (out, got, want))
        prog = run(["readelf", "-l", "-d", out], 30, "readelf -l -d")
        check("INTERP" not in prog and "(NEEDED)" not in prog,
              "%s is not static: %s" % (out, tail(prog, 4)))
        return out

    def win_send(self):
        return self.once("win_send", self._win_send)

    def _win_send(self):
        t = TARGETS["mingw"]
        b = self.bearssl("mingw")
        out = os.path.join(self.root, "mingw", "win_send.exe")
        src = os.path.join(HERE, "win_send.c")
        # advapi32: BearSSL seeds from the Win32 RNG, and its "#pragma
        # comment(lib)" is MSVC's alone; crypt32: the system trust store.
        cmd = ([t["cc"]] + WARN + ["-O2", "-isystem", os.path.join(b, "include"), src, "-o",
                                   out, os.path.join(b, "libbearssl.a"), "-lws2_32",
                                   "-lcrypt32", "-ladvapi32"])
        build_file(out, [src, os.path.join(ROOT, "tlsmail.h"),
                         os.path.join(b, "libbearssl.a")], cmd, "win_send.exe")
        dump = run(["x86_64-w64-mingw32-objdump", "-f", "-p", out], 30, "objdump")
        check("file format pei-x86-64" in dump, "%s is not a PE32+ x86-64 image" % out)
        dlls = sorted(l.split(":", 1)[1].strip().upper() for l in dump.splitlines()
                      if "DLL Name:" in l)
        check("WS2_32.DLL" in dlls, "win_send.exe imports no Winsock: %s" % dlls)
        return out

    def board_host(self):
        return self.once("board_host", self._board_host)

    def _board_host(self):
        b = self.bearssl("board")
        out = os.path.join(self.root, "board", "board_host")
        src = os.path.join(HERE, "board_host.c")
        cmd = (["gcc"] + WARN + ["-O2", "-isystem", os.path.join(b, "include"), src, "-o", out,
                                 os.path.join(b, "libbearssl.a")])
        build_file(out, [src, os.path.join(ROOT, "tlsmail.h"), os.path.join(b, "libbearssl.a")] +
                   TEST_HEADERS, cmd, "board_host")
        return out

    def board_run(self, args, tag, stdin=b"Subject: board\r\n\r\nhi\r\n", timeout=60):
        """board_host with args; (exit status, stdout, stderr, seconds)."""
        srv = self.server()
        cmd = [self.board_host(), str(srv.port), os.path.join(self.pki, "ca.crt"), USER, USER,
               "rcpt-%s@example.org" % tag] + list(args)
        t0 = time.monotonic()
        p = subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout,
                           env=dict(os.environ, TLSMAIL_PASSWORD=PASS))
        return (p.returncode, p.stdout.decode("utf-8", "replace"),
                p.stderr.decode("utf-8", "replace"), time.monotonic() - t0)
    def win_program(self, name):
        return self.once(name, lambda: self._win_program(name))

    def _win_program(self, name):
        """One of WIN_PROGRAMS on the library's own Winsock transport."""
        t = TARGETS["mingw"]
        b = self.bearssl("mingw")
        srcs, flags, libs = WIN_PROGRAMS[name]
        srcs = [os.path.join(ROOT, x) for x in srcs]
        out = os.path.join(self.root, "mingw", name)
        cmd = ([t["cc"]] + WARN + ["-O2"] + flags + ["-isystem", os.path.join(b, "include")] +
               srcs + ["-o", out, os.path.join(b, "libbearssl.a"), "-lws2_32", "-lcrypt32",
                       "-ladvapi32"] + libs)
        build_file(out, srcs + [os.path.join(ROOT, "tlsmail.h"), os.path.join(b, "libbearssl.a")] +
                   TEST_HEADERS, cmd, name)
        dump = run(["x86_64-w64-mingw32-objdump", "-f", "-p", out], 30, "objdump")
        check("file format pei-x86-64" in dump, "%s is not a PE32+ x86-64 image" % out)
        dlls = sorted(l.split(":", 1)[1].strip().upper() for l in dump.splitlines()
                      if "DLL Name:" in l)
        check("WS2_32.DLL" in dlls, "%s imports no Winsock: %s" % (name, dlls))
        return out

    def wine_run(self, cmd, env, timeout=SEND_TIMEOUT, stdin_data=b"", namespace=False):
        """cmd under wine (and, with namespace, behind the dead resolver);
        a testlib Result. Files, not pipes, for the reason send() gives."""
        wine, server, wenv = self.wine()
        full = [wine] + cmd
        if namespace:
            full = [sys.executable, DEADNS, "--timeout", str(RESOLVER_S), "--"] + full
        tag = "run%d" % len(os.listdir(self.work))
        inp, outp, errp = (os.path.join(self.work, "%s.%s" % (tag, x)) for x in ("in", "out", "err"))
        with open(inp, "wb") as f:
            f.write(stdin_data)
        # A wineserver outlives its last program by a few seconds; a program
        # that starts just as it exits reaches a closing socket ("wine client
        # error: ... Connection reset by peer") and never runs. Then, once
        # that server is gone, the program is started once more.
        for attempt in (1, 2):
            t0 = time.monotonic()
            with open(inp, "rb") as i, open(outp, "wb") as o, open(errp, "wb") as e:
                try:
                    p = subprocess.run(full, stdin=i, stdout=o, stderr=e, timeout=timeout,
                                       env=dict(wenv, **env))
                except subprocess.TimeoutExpired:
                    raise CaseFailure("no exit within %d s: %s" % (timeout, " ".join(cmd[:3])))
            wall = int((time.monotonic() - t0) * 1000)
            with open(outp, "rb") as o, open(errp, "rb") as e:
                p.stdout, p.stderr = o.read(), e.read()
            if attempt == 2 or p.returncode == 0 or not p.stderr.startswith(b"wine client error"):
                break
            self.say("wine: %s; once more after the old wineserver: %s" % (
                p.stderr.decode(errors="replace").strip()[:80], " ".join(os.path.basename(c) for c in cmd[:2])))
            run([server, "-w"], 30, "wineserver -w", env=wenv)
        r = Result(p, wall)
        if self.verbose:
            self.say("%s -> %s" % (" ".join(os.path.basename(c) for c in cmd[:2]), r))
        return r

    def win_store(self):
        return self.once("win_store", self._win_store)

    def _win_store(self):
        """tests/cross/win_store.c: the current user's certificate stores."""
        t = TARGETS["mingw"]
        b = self.bearssl("mingw")
        out = os.path.join(self.root, "mingw", "win_store.exe")
        src = os.path.join(HERE, "win_store.c")
        cmd = ([t["cc"]] + WARN + ["-O2", "-isystem", os.path.join(b, "include"), src, "-o",
                                   out, os.path.join(b, "libbearssl.a"), "-lcrypt32",
                                   "-ladvapi32"])
        build_file(out, [src, os.path.join(ROOT, "tlsmail.h"), os.path.join(b, "libbearssl.a")] +
                   TEST_HEADERS, cmd, "win_store.exe")
        dump = run(["x86_64-w64-mingw32-objdump", "-f", "-p", out], 30, "objdump")
        dlls = sorted(l.split(":", 1)[1].strip().upper() for l in dump.splitlines()
                      if "DLL Name:" in l)
        check("CRYPT32.DLL" in dlls, "win_store.exe imports no crypt32: %s" % dlls)
        return out

    def store(self, *args, **kw):
        """win_store.exe ARGS under wine (the test CA as Z:CAFILE where an
        argument is None); its stdout. CaseFailure unless it exits 0."""
        ca = kw.get("ca", "ca.crt")
        args = ["Z:" + os.path.join(self.pki, ca) if a is None else a for a in args]
        self.server()  # the PKI
        r = self.wine_run([self.win_store()] + args, {}, timeout=60)
        check(r.rc == 0, "win_store %s: %s" % (" ".join(args[:2]), r))
        return r.stdout

    def ca_sha1(self):
        """The test CA's SHA-1 thumbprint, as Windows names store entries."""
        self.server()
        with open(os.path.join(self.pki, "ca.crt")) as f:
            return hashlib.sha1(ssl.PEM_cert_to_DER_cert(f.read())).hexdigest().upper()

    def itest_default(self, tag):
        """itest.exe with no trust of its own (a zeroed tlsmail_trust: the
        system store), AUTH PLAIN, to rcpt-TAG; only the trust's heap is
        counted (the address is given, so no name lookup block)."""
        srv = self.server()
        return [self.win_program("itest.exe"), "--addr", "localhost:%d" % srv.port,
                "--addresses", "127.0.0.1", "--api", "client", "--auth", "plain", "--user", USER,
                "--pass", PASS, "--authhost", "localhost", "--from", USER, "--to",
                "rcpt-%s@example.org" % tag, "--timeout-ms", "60000"]

    def expect_untrusted(self, tag, env=None):
        """itest_default fails in the handshake, ECERT_UNTRUSTED, and the
        server hears no SMTP."""
        srv = self.server()
        mark = srv.mark()
        r = self.wine_run(self.itest_default(tag), env or {}, stdin_data=b"Subject: x\r\n\r\nx\r\n")
        check(r.name == "ECERT_UNTRUSTED" and r.stage == "TLS handshake", "%s" % r)
        time.sleep(0.25)
        events, new = srv.since(mark)
        check(not new and not [e for e in events if len(e) > 1 and e[1] in NO_SMTP],
              "SMTP reached the server: %s" % events)

    def m4_image(self, small=False):
        return self.once("cortex-m4 image" + (" small" if small else ""),
                         lambda: self._m4_image(small))

    def _m4_image(self, small):
        t = TARGETS["cortex-m4"]
        b = self.bearssl("cortex-m4")
        d = os.path.join(self.root, "cortex-m4")
        ta = os.path.join(d, "ta.h")
        ca = os.path.join(self.pki, "ca.crt")
        if not os.path.exists(ta) or os.path.getmtime(ta) < os.path.getmtime(ca):
            # The test CA as BearSSL source text, by BearSSL's own tool.
            p = subprocess.run([self.brssl(), "ta", ca], capture_output=True, timeout=60)
            code = p.stdout.decode()
            check(p.returncode == 0 and "TAs_NUM" in code,
                  "brssl ta: exit %d: %s" % (p.returncode, tail(p.stderr.decode())))
            with open(ta + ".tmp", "w") as f:
                f.write(code)
            os.replace(ta + ".tmp", ta)
        out = os.path.join(d, "image-small.elf" if small else "image.elf")
        src = os.path.join(HERE, "m4_image.c")
        ld = os.path.join(HERE, "m4.ld")
        cmd = ([t["cc"]] + WARN + ["-Os"] + M4_CPU + (["-DTLSMAIL_SMALL"] if small else []) +
               ["-ffunction-sections", "-fdata-sections", "-isystem",
                os.path.join(b, "include"), "-I" + d, src, "-o", out,
                os.path.join(b, "libbearssl.a"), "-T", ld, "-nostartfiles",
                "--specs=nano.specs", "--specs=nosys.specs", "-Wl,--gc-sections",
                "-Wl,-Map=" + out[:-4] + ".map"])
        build_file(out, [src, ld, ta, os.path.join(ROOT, "tlsmail.h"),
                         os.path.join(b, "libbearssl.a")], cmd, "Cortex-M4 image")
        return out

    # ------------------------------------------------------------ wine --

    def wine(self):
        return self.once("wine prefix", self._wine)

    def _wine(self):
        exe = next((p for p in (w if os.path.isabs(w) else shutil.which(w)
                                for w in WINE_PATHS) if p and os.access(p, os.X_OK)), None)
        check(exe, "no wine64 (tests/deps.sh cross installs it)")
        server = next((os.path.join(os.path.dirname(exe), s) for s in ("wineserver", "wineserver64")
                       if os.access(os.path.join(os.path.dirname(exe), s), os.X_OK)), None)
        check(server, "no wineserver next to %s" % exe)
        base = os.path.join(self.root, "wine")
        env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
        # No Mono or Gecko download offers (a console program needs
        # neither), and no winemenubuilder, which would write menu entries
        # under $HOME: wine keeps to the build directory.
        env.update(WINEPREFIX=os.path.join(base, "prefix"), WINEDEBUG="-all",
                   WINEDLLOVERRIDES="mscoree,mshtml=;winemenubuilder.exe=d")
        # Wine hands the environment on: the host's SSL_CERT_FILE would
        # replace the Windows store the store cases are about.
        for k in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
            env.pop(k, None)
        self.wine_env = (server, env)
        version = first_line([exe, "--version"])
        ready = os.path.join(base, "ready")
        if os.path.exists(ready):
            with open(ready) as f:
                if f.read() == version + "\n":
                    return exe, server, env
        shutil.rmtree(base, ignore_errors=True)
        os.makedirs(base)
        t0 = time.monotonic()
        run([exe, "wineboot", "--init"], WINEBOOT_TIMEOUT, "wineboot --init", env=env,
            stdin=subprocess.DEVNULL)
        # The registry is on disk only once the prefix's wineserver is done.
        run([server, "-w"], 120, "wineserver -w", env=env)
        with open(ready, "w") as f:
            f.write(version + "\n")
        self.say("made the wine prefix (%s) in %.0f s" % (version, time.monotonic() - t0))
        return exe, server, env

    # ---------------------------------------------------------- server --

    def server(self):
        return self.once("server", self._server)

    def _server(self):
        run(["bash", PKI_SH, self.pki], 120, "pki.sh")
        s = Server("good", self.pki, self.work, [(USER, PASS)])
        self.servers["good"] = s
        try:
            s.wait_ready(time.monotonic() + READY_TIMEOUT)
        except RuntimeError as e:
            raise CaseFailure(str(e))
        return s

    def starttls_server(self):
        return self.once("starttls server", self._starttls_server)

    def _starttls_server(self):
        self.server()  # the PKI
        s = Server("starttls", self.pki, self.work, [(USER, PASS)], mode="starttls", cert="good")
        try:
            s.wait_ready(time.monotonic() + READY_TIMEOUT)
        except RuntimeError as e:
            s.stop()
            raise CaseFailure(str(e))
        self.servers["starttls"] = s
        return s

    def send(self, tag, cmd, env, expect_stdout=None):
        """Run one client; the server must have stored exactly the message
        for exactly this envelope and login."""
        srv = self.server()
        msg = make_message(tag)
        mark = srv.mark()
        inp, outp, errp = (os.path.join(self.work, "%s.%s" % (tag, x)) for x in ("in", "out", "err"))
        with open(inp, "wb") as f:
            f.write(msg)
        t0 = time.monotonic()
        # Files, not pipes: wine's background processes inherit the
        # client's descriptors and would hold a pipe open after it exits.
        with open(inp, "rb") as i, open(outp, "wb") as o, open(errp, "wb") as e:
            try:
                rc = subprocess.run(cmd, stdin=i, stdout=o, stderr=e, timeout=SEND_TIMEOUT,
                                    env=env).returncode
            except subprocess.TimeoutExpired:
                raise CaseFailure("no exit within %d s" % SEND_TIMEOUT)
        wall = time.monotonic() - t0
        with open(outp, "rb") as o, open(errp, "rb") as e:
            out, err = (f.read().decode("utf-8", "replace") for f in (o, e))
        check(rc == 0, "exit %d: %s" % (rc, tail(err)))
        if expect_stdout is not None:
            check(out.strip() == expect_stdout, "stdout %r, wanted %r" % (out[:200], expect_stdout))
        events, new = srv.since(mark)
        check(len(new) == 1, "server stored %d messages, wanted 1" % len(new))
        body, meta = srv.stored(new[0])
        want = normalise(msg)
        if body != want:
            at = next((i for i in range(min(len(body), len(want))) if body[i] != want[i]),
                      min(len(body), len(want)))
            raise CaseFailure("stored message differs at octet %d of %d (got %d octets): "
                              "%r vs %r" % (at, len(want), len(body), body[at:at + 40],
                                            want[at:at + 40]))
        check(meta["mail_from"] == USER, "MAIL FROM %r" % meta["mail_from"])
        check(meta["rcpt_tos"] == ["rcpt-%s@example.org" % tag], "RCPT %r" % meta["rcpt_tos"])
        check(meta["auth_user"] == USER, "login %r" % meta["auth_user"])
        flat = [" ".join(e[1:]) for e in events]
        check("SNI localhost" in flat, "no SNI localhost in %s" % flat[:6])
        check("AUTH PLAIN ok" in flat, "no AUTH PLAIN ok in %s" % flat)
        if self.verbose:
            self.say("%s: %d octets stored in %.2f s" % (tag, len(body), wall))
        return out

    def teardown(self):
        for s in self.servers.values():
            s.stop()
        if self.wine_env:
            server, env = self.wine_env
            # Only the wineserver of our own prefix, which outlives its
            # programs by a few seconds.
            try:
                subprocess.run([server, "-k"], env=env, timeout=30,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            except subprocess.TimeoutExpired:
                pass


# ------------------------------------------------------------------ budget --

def read_budget():
    budget = {}
    with open(BUDGET) as f:
        for line in f:
            line = line.split("#", 1)[0].split()
            if line:
                check(len(line) == 2 and line[1].isdigit(), "budget.txt: bad line %r" % line)
                budget[line[0]] = int(line[1])
    return budget


def budget_for(n):
    """n + 10%, rounded up to 16 octets: what budget.txt should say."""
    return int(math.ceil(n * 1.1 / 16.0)) * 16


def image_size(elf):
    out = run(["arm-none-eabi-size", "-B", elf], 30, "arm-none-eabi-size")
    fields = out.splitlines()[1].split()
    return dict(text=int(fields[0]), data=int(fields[1]), bss=int(fields[2]))


# ------------------------------------------------------------------- cases --

def build_cases(S):
    cases, case = registry()

    @case("bearssl: Debian source package, unpacked")
    def _():
        version, tree = S.once("bearssl source", S.bearssl_source)
        check(os.path.isfile(os.path.join(tree, "inc", "bearssl.h")), "no inc/bearssl.h in %s" % tree)
        series = os.path.join(tree, "debian", "patches", "series")
        patches = []
        if os.path.exists(series):
            with open(series) as f:
                patches = [l.split()[0] for l in f if l.strip() and not l.startswith("#")]
        applied = []
        if os.path.exists(os.path.join(tree, ".pc", "applied-patches")):
            with open(os.path.join(tree, ".pc", "applied-patches")) as f:
                applied = f.read().split()
        check(applied == patches, "Debian patches %s, applied %s" % (patches, applied))
        S.say("BearSSL %s from %s, Debian patches: %s"
              % (version, tree, " ".join(patches) or "none"))

    for target, how in (("musl", "on the host"), ("aarch64", "under qemu-aarch64"),
                        ("armhf", "under qemu-arm")):
        @case("%s: static tlsmail-send" % target)
        def _(target=target):
            S.tlsmail_send(target)

        @case("%s: tlsmail-send %s stores the message byte-exact" % (target, how))
        def _(target=target):
            exe = S.tlsmail_send(target)
            srv = S.server()
            env = dict(os.environ, TLSMAIL_PASSWORD=PASS)
            S.send(target, TARGETS[target]["run"] + [
                exe, "--server", "localhost:%d" % srv.port, "--cafile",
                os.path.join(S.pki, "ca.crt"), "--user", USER, "--timeout", "60",
                "-f", USER, "rcpt-%s@example.org" % target], env)

    @case("mingw: win_send.exe, TLSMAIL_NO_SOCKETS over a Winsock tlsmail_io")
    def _():
        S.win_send()

    @case("mingw: win_send.exe under wine64 stores the message byte-exact")
    def _():
        exe = S.win_send()
        wine, _server, env = S.wine()
        srv = S.server()
        env = dict(env, TLSMAIL_USER=USER, TLSMAIL_PASSWORD=PASS)
        S.send("mingw", [wine, exe, "localhost", str(srv.port),
                         "Z:" + os.path.join(S.pki, "ca.crt"), USER,
                         "rcpt-mingw@example.org"], env, expect_stdout="sent")

    @case("board: BearSSL has no system random source and no clock")
    def _():
        b = S.bearssl("board")
        syms = run(["nm", os.path.join(b, "libbearssl.a")], 30, "nm")
        check("seeder_urandom" not in syms and "seeder_rdrand" not in syms,
              "the board's BearSSL still has a system seeder")
        check(not re.search(r" U time$", syms, re.M), "the board's BearSSL still calls time()")

    @case("board: a verified send with the caller's entropy and clock, byte-exact")
    def _():
        S.send("board", [S.board_host(), str(S.server().port), os.path.join(S.pki, "ca.crt"),
                         USER, USER, "rcpt-board@example.org"],
               dict(os.environ, TLSMAIL_PASSWORD=PASS), expect_stdout="sent")

    @case("board: no entropy given: ENORANDOM, nothing sent")
    def _():
        mark = S.server().mark()
        rc, out, err, _s = S.board_run(["--no-entropy"], "noentropy")
        check(rc == 1 and "result ENORANDOM" in out, "exit %d: %r %r" % (rc, out, err[-200:]))
        events, new = S.server().since(mark)
        check(not new and "SNI" not in " ".join(" ".join(e) for e in events),
              "something reached the server: %s" % events)

    @case("board: no clock given: ENOTIME, no SMTP")
    def _():
        mark = S.server().mark()
        rc, out, err, _s = S.board_run(["--no-clock"], "noclock")
        check(rc == 1 and "result ENOTIME" in out, "exit %d: %r %r" % (rc, out, err[-200:]))
        events, new = S.server().since(mark)
        check(not new and not [e for e in events if len(e) > 1 and e[1] in ("EHLO", "AUTH")],
              "SMTP reached the server: %s" % events)

    @case("board: the caller's clock dates the certificate (2099: expired)")
    def _():
        rc, out, err, _s = S.board_run(["--clock-ms", str(4070908800 * 1000)], "future")
        check(rc == 1 and "result ECERT_EXPIRED" in out, "exit %d: %r %r" % (rc, out, err[-200:]))

    @case("board: the caller's clock keeps the deadline (a dripping server, 1.5 s)")
    def _():
        sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
        import hostile
        srv = hostile.HostileServer(hostile.SCENARIOS["drip_ehlo"], S.pki)
        port = srv.start()
        try:
            t0 = time.monotonic()
            p = subprocess.run([S.board_host(), str(port), os.path.join(S.pki, "ca.crt"), USER, USER,
                                "rcpt-drip@example.org", "--deadline-ms", "1500"],
                               input=b"Subject: x\r\n\r\nhi\r\n", capture_output=True, timeout=60,
                               env=dict(os.environ, TLSMAIL_PASSWORD=PASS))
            took = time.monotonic() - t0
        finally:
            srv.stop()
        out = p.stdout.decode("utf-8", "replace")
        check(p.returncode == 1 and "result ETIMEOUT" in out, "exit %d: %r" % (p.returncode, out))
        check(took < 1.5 + 3, "took %.1f s for a 1.5 s deadline" % took)
    @case("mingw: every switch builds warning-free for Windows, as C (gcc) and C++ (clang++)")
    def _():
        b = os.path.join(S.bearssl("mingw"), "include")
        src = os.path.join(S.work, "impl.c")
        with open(src, "w") as f:
            f.write('#define TLSMAIL_IMPLEMENTATION\n#include "tlsmail.h"\n'
                    'int main(void) { return tlsmail_strerror(0)[0] == 0; }\n')
        for sw in WIN_SWITCHES:
            for cmd in ([TARGETS["mingw"]["cc"]] + WARN,
                        ["clang++", "--target=x86_64-w64-mingw32", "-x", "c++", "-std=c++11",
                         "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-Wshadow"]):
                run(cmd + sw.split() + ["-I" + ROOT, "-isystem", b, "-c", src, "-o",
                                        os.path.join(S.work, "impl.o")], BUILD_TIMEOUT,
                    "%s %s" % (cmd[0], sw or "(no switch)"))

    @case("mingw: TLSMAIL_NO_SOCKETS after the caller's <windows.h>, or before its "
          "<winsock2.h>, builds warning-free (C and C++)")
    def _():
        b = os.path.join(S.bearssl("mingw"), "include")
        for name, before, after in (("winfirst", "#include <windows.h>\n", ""),
                                    ("ws2after", "", "#include <winsock2.h>\n")):
            src = os.path.join(S.work, name + ".c")
            with open(src, "w") as f:
                f.write(before + '#define TLSMAIL_NO_SOCKETS\n#define TLSMAIL_IMPLEMENTATION\n'
                        '#include "tlsmail.h"\n' + after +
                        'int main(void) { return tlsmail_strerror(0)[0] == 0; }\n')
            for cmd in ([TARGETS["mingw"]["cc"]] + WARN,
                        ["clang++", "--target=x86_64-w64-mingw32", "-x", "c++", "-std=c++11",
                         "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-Wshadow"]):
                run(cmd + ["-I" + ROOT, "-isystem", b, "-c", src, "-o",
                           os.path.join(S.work, name + ".o")], BUILD_TIMEOUT,
                    "%s %s" % (cmd[0], name))

    @case("mingw: tlsmail-send.exe on the library's Winsock transport")
    def _():
        S.win_program("tlsmail-send.exe")

    @case("mingw: tlsmail-send.exe under wine64 stores the message byte-exact (--cafile)")
    def _():
        exe = S.win_program("tlsmail-send.exe")
        wine, _server, env = S.wine()
        srv = S.server()
        S.send("mingw-cli", [wine, exe, "--server", "localhost:%d" % srv.port, "--cafile",
                             "Z:" + os.path.join(S.pki, "ca.crt"), "--user", USER, "--timeout",
                             "60", "-f", USER, "rcpt-mingw-cli@example.org"],
               dict(env, TLSMAIL_PASSWORD=PASS))

    @case("mingw: tlsmail-send.exe password_command by CreateProcess, a log line with an offset")
    def _():
        exe = S.win_program("tlsmail-send.exe")
        wine, _server, env = S.wine()
        srv = S.server()
        log = os.path.join(S.work, "mingw.log")
        S.send("mingw-pwcmd", [wine, exe, "--server", "localhost:%d" % srv.port, "--cafile",
                               "Z:" + os.path.join(S.pki, "ca.crt"), "--user", USER,
                               "-f", USER, "rcpt-mingw-pwcmd@example.org"],
               dict(env, TLSMAIL_PASSWORD_COMMAND="cmd /c echo " + PASS, TLSMAIL_LOG="Z:" + log))
        with open(log) as f:
            lines = f.read().splitlines()
        check(len(lines) == 1, "log: %r" % lines)
        check(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} account=- host=localhost "
                       r"port=%d from=%s recipients=rcpt-mingw-pwcmd@example.org size=\d+ "
                       r"status=0 \(EX_OK\) result='sent' reply='250 [^']*' queue=\w+$" % (srv.port, re.escape(USER)),
                       lines[0]), "log line %r" % lines[0])

    @case("mingw: tlsmail-send.exe password_command that never ends: 75 at the 2 s timeout")
    def _():
        exe = S.win_program("tlsmail-send.exe")
        slow = S.win_program("rdial.exe")
        srv = S.server()
        mark = srv.mark()
        # a program that prints at once and then holds its stdout open
        cmd = "%s --host localhost:%d --linger-ms 60000" % ("Z:" + slow, free_port())
        r = S.wine_run([exe, "--server", "localhost:%d" % srv.port, "--user", USER, "--timeout",
                        "2", "-f", USER, "rcpt@example.org"],
                       {"TLSMAIL_PASSWORD_COMMAND": cmd}, stdin_data=b"Subject: x\r\n\r\nx\r\n")
        check(r.rc == 75 and "did not finish within the timeout" in r.stderr, "%s" % r)
        check(r.wall_ms < 2000 + SLACK_MS * 2, "gave up after %d ms" % r.wall_ms)
        time.sleep(0.25)
        events, _new = srv.since(mark)
        check(not events, "the server saw %s" % events[:3])

    @case("mingw: tlsmail-send.exe --session-cache: written beside and moved over, then resumed")
    def _():
        exe = S.win_program("tlsmail-send.exe")
        srv = S.server()
        cache = os.path.join(S.work, "mingw-sessions")
        cmd = [exe, "--server", "localhost:%d" % srv.port, "--cafile", "Z:" + os.path.join(S.pki, "ca.crt"),
               "--user", USER, "-f", USER, "-v", "--session-cache", "Z:" + cache,
               "rcpt-mingw-cache@example.org"]
        runs = [S.wine_run(cmd, {"TLSMAIL_PASSWORD": PASS}, stdin_data=b"Subject: cache\r\n\r\nx\r\n")
                for _ in range(2)]
        check(runs[0].rc == 0 and "* TLS session not resumed" in runs[0].stderr, "%s" % runs[0])
        check(runs[1].rc == 0 and "* TLS session resumed" in runs[1].stderr, "%s" % runs[1])
        with open(cache) as f:
            lines = f.read().splitlines()
        check(lines[0].startswith("tlsmail-send-cache 1 ") and lines[1].startswith("entry localhost %d "
              % srv.port) and lines[-1].startswith("sha256 "), "cache file %r" % lines)
        left = [n for n in os.listdir(S.work) if n.startswith("mingw-sessions.")]
        check(not left, "files left beside the cache: %r" % left)

    @case("mingw: log syslog is the event log (ReportEvent, through wine's eventlog channel)")
    def _():
        exe = S.win_program("tlsmail-send.exe")
        srv = S.server()
        r = S.wine_run([exe, "--server", "localhost:%d" % srv.port, "--cafile",
                        "Z:" + os.path.join(S.pki, "ca.crt"), "--user", USER, "-f", USER,
                        "rcpt-mingw-syslog@example.org"],
                       {"TLSMAIL_PASSWORD": PASS, "TLSMAIL_LOG": "syslog",
                        "WINEDEBUG": "-all,trace+eventlog"},
                       stdin_data=b"Subject: syslog\r\n\r\nx\r\n")
        check(r.rc == 0, "%s" % r)
        got = [l for l in r.stderr.splitlines() if "ReportEvent" in l]
        check(len(got) == 1 and "recipients=rcpt-mingw-syslog@example.org" in got[0] and
              "status=0 (EX_OK)" in got[0], "event log: %r" % got)

    @case("mingw: itest.exe, implicit-TLS port refused (WSAECONNREFUSED): STARTTLS on the other")
    def _():
        exe = S.win_program("itest.exe")
        srv = S.starttls_server()
        mark = srv.mark()
        r = S.wine_run([exe, "--addr", "localhost:%d" % free_port(), "--security", "fallback",
                        "--starttls-port", str(srv.port), "--api", "client", "--cafile",
                        "Z:" + os.path.join(S.pki, "ca.crt"), "--auth", "plain", "--user", USER,
                        "--pass", PASS, "--authhost", "localhost", "--from", USER, "--to",
                        "rcpt-fallback@example.org"], {},
                       stdin_data=b"Subject: fallback\r\n\r\nafter a refused port\r\n")
        check(r.rc == 0 and r.name == "OK", "%s" % r)
        time.sleep(0.25)
        events, new = srv.since(mark)
        check(len(new) == 1, "server stored %d messages" % len(new))
        body, _meta = srv.stored(new[0])
        check(body == b"Subject: fallback\r\n\r\nafter a refused port\r\n", "stored %r" % body)
        flat = [" ".join(e[1:]) for e in events]
        check("STARTTLS" in flat and "AUTH PLAIN ok" in flat, "events %s" % flat)

    @case("mingw: itest.exe, closed port: ECONNECT, Winsock's error 10061 named in the description")
    def _():
        exe = S.win_program("itest.exe")
        r = S.wine_run([exe, "--addr", "localhost:%d" % free_port(), "--api", "client",
                        "--cafile", "Z:" + os.path.join(S.pki, "ca.crt")], {},
                       stdin_data=b"Subject: x\r\n\r\nx\r\n")
        check(r.name == "ECONNECT" and r.stage == "connect" and
              "(connection refused; errno 10061)" in r.stderr, "%s" % r)

    for what, extra, bound in (("the 1.5 s timeout", ["--timeout-ms", "1500"], 1500),
                               ("the 1.5 s deadline", ["--timeout-ms", "30000", "--deadline-ms",
                                                       "1500"], 1500)):
        @case("mingw: itest.exe, a server that never speaks: ETIMEOUT at %s (select)" % what)
        def _(extra=extra, bound=bound):
            exe = S.win_program("itest.exe")
            quiet = SilentListener()
            try:
                r = S.wine_run([exe, "--addr", "localhost:%d" % quiet.port, "--api", "client",
                                "--cafile", "Z:" + os.path.join(S.pki, "ca.crt")] + extra, {},
                               stdin_data=b"Subject: x\r\n\r\nx\r\n")
            finally:
                quiet.close()
            check(r.name == "ETIMEOUT" and r.stage == "TLS handshake", "%s" % r)
            check(bound - 100 <= r.elapsed <= bound + SLACK_MS, "gave up after %d ms" % r.elapsed)

    @case("mingw: rdial.exe, a resolver that never answers: ERESOLVE at the 1 s timeout "
          "(a Win32 lookup thread)")
    def _():
        r = S.wine_run([S.win_program("rdial.exe"), "--host", "mail.resolve.test:465",
                        "--cafile", "Z:" + os.path.join(S.pki, "ca.crt"), "--timeout-ms", "1000"],
                       {}, namespace=True)
        check(r.name == "ERESOLVE" and r.stage == "connect", "%s" % r)
        check(900 <= r.elapsed <= 1000 + SLACK_MS, "gave up after %d ms" % r.elapsed)

    @case("mingw: control: rdial.exe with TLSMAIL_NO_THREADS waits for the dead resolver (%d s)"
          % RESOLVER_S)
    def _():
        r = S.wine_run([S.win_program("rdial-nothreads.exe"), "--host", "mail.resolve.test:465",
                        "--cafile", "Z:" + os.path.join(S.pki, "ca.crt"), "--timeout-ms", "1000"],
                       {}, namespace=True)
        check(r.name == "ERESOLVE" and r.stage == "connect", "%s" % r)
        check(r.elapsed >= (RESOLVER_S - 1) * 1000, "gave up after %d ms" % r.elapsed)

    # -- the system trust store on Windows: the current user's ROOT store --
    # Every case puts the test CA where it needs it and takes it out again,
    # so the cached prefix never keeps it.

    @case("mingw: win_store.exe puts the test CA in the user's ROOT store: no dialog, "
          "only in the suite's prefix")
    def _():
        _wine, server, env = S.wine()
        prefix = env["WINEPREFIX"]
        check(os.path.realpath(prefix).startswith(os.path.realpath(S.root) + os.sep),
              "WINEPREFIX %s is not under %s" % (prefix, S.root))
        home_reg = os.path.join(os.path.expanduser("~"), ".wine", "user.reg")
        home_before = open(home_reg, "rb").read() if os.path.exists(home_reg) else None
        key = "SystemCertificates\\\\ROOT\\\\Certificates\\\\" + S.ca_sha1()
        try:
            S.store("remove", "ROOT", None)
            check(S.store("has", "ROOT", None).strip() == "absent", "the CA is still in ROOT")
            # On Windows itself adding a root asks the user; here nobody can
            # answer (no display): the call must return on its own.
            t0 = time.monotonic()
            out = S.store("add", "ROOT", None)
            took = time.monotonic() - t0
            check(out.strip() == "added", "win_store add: %r" % out)
            check(took < 30, "adding took %.0f s: waiting for a dialog?" % took)
            check(S.store("has", "ROOT", None).strip() == "present", "the CA is not in ROOT")
            # the registry reaches the disk once the prefix's wineserver is done
            run([server, "-w"], 120, "wineserver -w", env=env)
            with open(os.path.join(prefix, "user.reg"), encoding="utf-8", errors="replace") as f:
                check(key in f.read(), "no %s in %s/user.reg" % (key, prefix))
            home_after = open(home_reg, "rb").read() if os.path.exists(home_reg) else None
            check(home_after == home_before, "%s changed" % home_reg)
        finally:
            S.store("remove", "ROOT", None)

    @case("mingw: itest.exe with no trust given uses the ROOT store: byte-exact, "
          "heap within 16 KB, all freed")
    def _():
        wine, _server, env = S.wine()
        try:
            S.store("add", "ROOT", None)
            out = S.send("mingw-store", [wine] + S.itest_default("mingw-store"), env)
        finally:
            S.store("remove", "ROOT", None)
        m = re.search(r"^heap (\d+) (\d+) (\d+)\r?$", out, re.M)
        check(m, "no heap line in %r" % out[:300])
        peak, allocs, live = (int(x) for x in m.groups())
        check(allocs > 0 and peak <= 16 * 1024, "heap peak %d in %d blocks" % (peak, allocs))
        check(live == 0, "%d octets of heap still held after the session" % live)
        S.say("ROOT store send: heap peak %d octets in %d blocks" % (peak, allocs))

    @case("mingw: control: the test CA not in the ROOT store: ECERT_UNTRUSTED, no SMTP")
    def _():
        S.store("remove", "ROOT", None)
        S.expect_untrusted("mingw-nostore")

    @case("mingw: SSL_CERT_FILE replaces the ROOT store: the CA file alone, byte-exact")
    def _():
        wine, _server, env = S.wine()
        S.store("remove", "ROOT", None)
        S.send("mingw-envfile", [wine] + S.itest_default("mingw-envfile"),
               dict(env, SSL_CERT_FILE="Z:" + os.path.join(S.pki, "ca.crt")))

    @case("mingw: SSL_CERT_FILE replaces the ROOT store: the CA in the store, "
          "another CA in the file: ECERT_UNTRUSTED")
    def _():
        try:
            S.store("add", "ROOT", None)
            S.expect_untrusted("mingw-envother",
                               {"SSL_CERT_FILE": "Z:" + os.path.join(S.pki, "rogue-ca.crt")})
        finally:
            S.store("remove", "ROOT", None)

    @case("mingw: a root that is in the Disallowed store too anchors nothing")
    def _():
        wine, _server, env = S.wine()
        try:
            S.store("add", "ROOT", None)
            S.store("add", "Disallowed", None)
            S.expect_untrusted("mingw-disallowed")
            S.store("remove", "Disallowed", None)
            S.send("mingw-allowed", [wine] + S.itest_default("mingw-allowed"), env)
        finally:
            S.store("remove", "Disallowed", None)
            S.store("remove", "ROOT", None)

    @case("mingw: a root whose purposes in the store leave out serverAuth anchors nothing")
    def _():
        wine, _server, env = S.wine()
        code_signing, server_auth = "1.3.6.1.5.5.7.3.3", "1.3.6.1.5.5.7.3.1"
        try:
            S.store("add", "ROOT", None)
            S.store("purposes", None, code_signing)
            S.expect_untrusted("mingw-codesigning")
            S.store("purposes", None, "none")   # "Disable all purposes"
            S.expect_untrusted("mingw-nopurpose")
            S.store("purposes", None, code_signing, server_auth)
            S.send("mingw-serverauth", [wine] + S.itest_default("mingw-serverauth"), env)
        finally:
            S.store("remove", "ROOT", None)

    def cli_default(tag):
        """tlsmail-send.exe with no trust option: the system store."""
        return [S.win_program("tlsmail-send.exe"), "--server", "localhost:%d" % S.server().port,
                "--user", USER, "--timeout", "60", "-f", USER, "rcpt-%s@example.org" % tag]

    @case("mingw: tlsmail-send.exe without --cafile uses the ROOT store: byte-exact")
    def _():
        wine, _server, env = S.wine()
        exe = cli_default("mingw-cli-store")
        try:
            S.store("add", "ROOT", None)
            S.send("mingw-cli-store", [wine] + exe, dict(env, TLSMAIL_PASSWORD=PASS))
        finally:
            S.store("remove", "ROOT", None)

    @case("mingw: control: tlsmail-send.exe without --cafile, the CA not in the ROOT store: "
          "69, not trusted")
    def _():
        exe = cli_default("mingw-cli-nostore")
        S.store("remove", "ROOT", None)
        srv = S.server()
        mark = srv.mark()
        r = S.wine_run(exe, {"TLSMAIL_PASSWORD": PASS}, stdin_data=b"Subject: x\r\n\r\nx\r\n")
        check(r.rc == 69 and "not trusted" in r.stderr, "%s" % r)
        time.sleep(0.25)
        events, new = srv.since(mark)
        check(not new and not [e for e in events if len(e) > 1 and e[1] in NO_SMTP],
              "SMTP reached the server: %s" % events)

    @case("mingw: tlsmail-send.exe with SSL_CERT_FILE, the CA not in the ROOT store: byte-exact")
    def _():
        wine, _server, env = S.wine()
        exe = cli_default("mingw-cli-envfile")
        S.store("remove", "ROOT", None)
        S.send("mingw-cli-envfile", [wine] + exe,
               dict(env, TLSMAIL_PASSWORD=PASS, SSL_CERT_FILE="Z:" + os.path.join(S.pki, "ca.crt")))

    @case("mingw: the ROOT store lookup finds the CA by its subject alone, within 16 KB of heap")
    def _():
        try:
            S.store("add", "ROOT", None)
            out = S.store("lookup", None, "20")
            S.store("remove", "ROOT", None)
            without = S.store("lookup", None, "1")
        finally:
            S.store("remove", "ROOT", None)
        got = dict((l.split()[0], [int(x) for x in l.split()[1:]]) for l in out.splitlines()
                   if l.strip())
        check(got.get("found") == [1, 1], "found %s, wanted the CA once: %r" % (got.get("found"), out))
        peak, allocs, live = got["heap"]
        check(peak <= 16 * 1024 and live == 0, "heap peak %d, %d held after" % (peak, live))
        check(re.search(r"^found 0 0\r?$", without, re.M), "without the CA: %r" % without)
        S.say("ROOT store: %d certificates; a lookup %.1f ms (the first in a process %.1f ms, "
              "wine loading its store), heap peak %d octets"
              % (got["store"][0], got["us"][1] / 1000.0, got["us"][0] / 1000.0, peak))

    @case("mingw: TLSMAIL_NO_STDIO has no store and needs no crypt32: a zeroed trust is ETRUST")
    def _():
        t = TARGETS["mingw"]
        b = S.bearssl("mingw")
        src = os.path.join(S.work, "nostdio.c")
        exe = os.path.join(S.work, "nostdio.exe")
        with open(src, "w") as f:
            f.write('#define TLSMAIL_NO_STDIO\n#define TLSMAIL_IMPLEMENTATION\n'
                    '#include "tlsmail.h"\n#include <stdio.h>\n#include <string.h>\n'
                    'static tlsmail_client c;\n'
                    'int main(int argc, char **argv) {\n'
                    '    tlsmail_config cfg;\n    int err;\n'
                    '    memset(&cfg, 0, sizeof cfg);\n'
                    '    cfg.host = argc > 1 ? argv[1] : "localhost";\n'
                    '    err = tlsmail_dial(&c, &cfg);\n'
                    '    printf("%s\\n", err == TLSMAIL_ETRUST ? "ETRUST" : tlsmail_strerror(err));\n'
                    '    tlsmail_close(&c);\n    return 0;\n}\n')
        # no -lcrypt32: the link fails if anything still wants it
        run([t["cc"]] + WARN + ["-O2", "-I" + ROOT, "-isystem", os.path.join(b, "include"), src,
                                "-o", exe, os.path.join(b, "libbearssl.a"), "-lws2_32",
                                "-ladvapi32"], BUILD_TIMEOUT, "TLSMAIL_NO_STDIO program")
        dump = run(["x86_64-w64-mingw32-objdump", "-p", exe], 30, "objdump")
        check("CRYPT32" not in dump.upper(), "a TLSMAIL_NO_STDIO program imports crypt32")
        srv = S.server()
        mark = srv.mark()
        r = S.wine_run([exe, "localhost:%d" % srv.port], {})
        check(r.rc == 0 and r.stdout.strip() == "ETRUST", "%s" % r)
        time.sleep(0.25)
        events, _new = srv.since(mark)
        check(not events, "the server saw %s" % events[:3])

    @case("cortex-m4: image links (newlib nano, m4.ld: 1 MB flash, 128 KB RAM)")
    def _():
        elf = S.m4_image()
        sym = run(["arm-none-eabi-nm", elf], 30, "arm-none-eabi-nm")
        names = {l.split()[-1] for l in sym.splitlines() if l.strip()}
        for need in ("tlsmail_client_send", "br_ssl_client_reset", "Reset_Handler"):
            check(need in names, "%s is not in the image" % need)
        # only what tlsmail offers is registered: no full profile, and none
        # of what only the suites it never offers use (CBC, 3DES, CCM)
        extra = sorted(n for n in names if n == "br_ssl_client_init_full" or
                       n.startswith(("br_des_", "br_sslrec_in_cbc", "br_sslrec_in_ccm")))
        check(not extra, "in the image though tlsmail never offers it: %s" % extra)
        for never in ("socket", "connect", "getaddrinfo", "fopen", "opendir"):
            check(never not in names, "%s is in a TLSMAIL_NO_SOCKETS/NO_STDIO image" % never)

    def within_budget(small):
        size = image_size(S.m4_image(small))
        pre = "small_" if small else ""
        budget = read_budget()
        S.say("cortex-m4 image%s: text %d data %d bss %d" % (
            " (TLSMAIL_SMALL)" if small else "", size["text"], size["data"], size["bss"]) +
            "  (budget: %s)" % " ".join("%s %d" % kv for kv in sorted(budget.items())))
        over = ["%s%s %d > %d" % (pre, k, size[k], budget.get(pre + k, -1)) for k in ("text", "data", "bss")
                if pre + k not in budget or size[k] > budget[pre + k]]
        if over:
            raise CaseFailure("over budget: %s (today + 10%%: %s)" % (", ".join(over), " ".join(
                "%s%s %d" % (pre, k, budget_for(size[k])) for k in size)))
        return size

    @case("cortex-m4: image within tests/cross/budget.txt")
    def _():
        within_budget(False)

    # the board build: one implementation of each BearSSL piece, none of
    # the alternatives the default links, and smaller by what they weigh
    @case("cortex-m4: TLSMAIL_SMALL image within budget.txt, smaller, no ChaCha20 or X25519")
    def _():
        small = within_budget(True)
        full = image_size(S.m4_image())
        sym = run(["arm-none-eabi-nm", S.m4_image(True)], 30, "arm-none-eabi-nm")
        alts = sorted({l.split()[-1] for l in sym.splitlines() if l.strip() and l.split()[-1].startswith(
            ("br_chacha20_", "br_poly1305_", "br_ec_c25519_", "br_ec_p256_m", "br_aes_x86ni",
             "br_ghash_pclmul", "br_rsa_i62_"))})
        check(not alts, "in the TLSMAIL_SMALL image: %s" % alts)
        check(small["text"] + 8192 <= full["text"], "TLSMAIL_SMALL text %d, default %d: wanted at "
              "least 8 KB less" % (small["text"], full["text"]))

    return cases


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", required=True, help="build directory (cache in DIR/cross)")
    ap.add_argument("-k", action="append", default=[], metavar="SUBSTR",
                    help="run only cases whose name contains SUBSTR (repeatable)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    os.makedirs(os.path.join(build, "cross"), exist_ok=True)
    work = tempfile.mkdtemp(prefix="tlsmail-cross-")
    S = Suite(build, work, a.verbose)
    t0 = time.monotonic()
    try:
        passed, failed = run_cases(S, build_cases(S), a.k)
    finally:
        S.teardown()
        if a.keep:
            print("kept %s" % work, file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    S.say("cross: %.0f s" % (time.monotonic() - t0))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
