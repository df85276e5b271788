#!/usr/bin/python3
"""tests/real/servers.py - the real servers of tests/real/test_real.py:
Postfix with Dovecot as its SASL server, and nodemailer's smtp-server, each
started in a private directory on 127.0.0.1 ports and stopped by pid.

Nothing here reads or writes the host's /etc/postfix or /etc/dovecot
configuration or spool: Postfix runs from `-c DIR` with its own queue, data
and log; Dovecot from `-c FILE` with its own base and state directories;
smtp-server from the build directory's node_modules (npm ci of
tests/real/package-lock.json).

Standard library only.
"""
import base64
import glob
import hmac
import hashlib
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
START_TIMEOUT = 30.0          # seconds for every listener of one server to accept
STOP_TIMEOUT = 10.0           # seconds for a server to exit after SIGTERM
POSTFIX_DAEMONS = "/usr/lib/postfix/sbin"

def jwt_hs256(key, claims):
    """A JWT (RFC 7519) signed with HMAC-SHA256: the bearer token Dovecot's
    oauth2 passdb validates locally."""
    enc = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=")
    head = enc(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "default"}).encode())
    body = enc(json.dumps(claims).encode())
    sig = enc(hmac.new(key, head + b"." + body, hashlib.sha256).digest())
    return (head + b"." + body + b"." + sig).decode()


class Reaper:
    """tests/real/reaper.py: stops every server the suite started if the
    suite dies without its teardown (SIGKILL); told "clear" by a teardown
    that ran."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "reaper.py")],
                                     stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)

    def watch(self, pid):
        self.proc.stdin.write(b"pid %d\n" % pid)
        self.proc.stdin.flush()

    def clear(self):
        try:
            self.proc.stdin.write(b"clear\n")
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_ports(ports, deadline, alive, what):
    """Until every 127.0.0.1 port accepts a TCP connection; alive() false or
    the deadline passed is an error naming what did not come up."""
    todo = list(ports)
    while todo:
        if not alive():
            raise RuntimeError("%s exited before listening on %s" % (what, todo))
        if time.monotonic() > deadline:
            raise RuntimeError("%s: ports %s not listening after %.0f s" % (what, todo, START_TIMEOUT))
        try:
            with socket.create_connection(("127.0.0.1", todo[0]), timeout=1):
                pass
            todo.pop(0)
        except OSError:
            time.sleep(0.05)


def stop_pid(proc, name, errors):
    """SIGTERM, then SIGKILL after STOP_TIMEOUT; a failure to stop is
    recorded in errors, not raised, so the other servers are stopped too."""
    if proc is None or proc.poll() is not None:
        return
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        errors.append("%s (pid %d) ignored SIGTERM for %.0f s: killed" % (name, proc.pid, STOP_TIMEOUT))
        proc.kill()
        proc.wait(5)


def pids_of_config(marker):
    """pids of processes whose command line or MAIL_CONFIG names marker (a
    private path): what is left of a server after its master was stopped."""
    found = []
    want = marker.encode()
    for d in glob.glob("/proc/[0-9]*"):
        try:
            with open(d + "/cmdline", "rb") as f:
                cmd = f.read()
            with open(d + "/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if want in cmd or b"MAIL_CONFIG=" + want in env:
            found.append(int(os.path.basename(d)))
    return found


# ------------------------------------------------------------ Dovecot SASL --

class Dovecot:
    """Dovecot 2.3 as Postfix's SASL server only: no mail protocols, one
    auth socket (in the Postfix queue's private/ directory), users from a
    passwd-file."""

    def __init__(self, work, sock_path, users, oauth_key):
        self.dir = os.path.join(work, "dovecot")
        os.makedirs(self.dir)
        self.conf = os.path.join(self.dir, "dovecot.conf")
        self.log = os.path.join(self.dir, "dovecot.log")
        self.sock = sock_path
        self.proc = None
        passwd = os.path.join(self.dir, "users")
        with open(passwd, "w") as f:
            for u, p in users:
                f.write("%s:{PLAIN}%s::::::\n" % (u, p))
        os.chmod(passwd, 0o640)
        shutil.chown(passwd, group="dovecot")
        # XOAUTH2 and OAUTHBEARER without an identity provider: Dovecot
        # checks the bearer token as a JWT signed (HS256) with oauth_key,
        # found in a file dict as KEYS/<azp>/<alg>/<kid> (shared/default/HS256/default).
        keys = os.path.join(self.dir, "keys", "default", "HS256")
        os.makedirs(keys)
        with open(os.path.join(keys, "default"), "w") as f:
            f.write(base64.b64encode(oauth_key).decode())
        oauth_conf = os.path.join(self.dir, "oauth2.conf.ext")
        with open(oauth_conf, "w") as f:
            f.write("introspection_mode = local\n"
                    "local_validation_key_dict = fs:posix:prefix=%s/\n"
                    "username_attribute = sub\n" % os.path.join(self.dir, "keys"))
        run = os.path.join(self.dir, "run")
        state = os.path.join(self.dir, "state")
        os.makedirs(run)
        os.makedirs(state)
        with open(self.conf, "w") as f:
            f.write("""# tests/real: Dovecot as SASL server for Postfix only
base_dir = {run}
state_dir = {state}
instance_name = tlsmail-real-{tag}
protocols =
listen = 127.0.0.1
log_path = {log}
auth_verbose = yes
ssl = no
# Postfix decides whether AUTH needs TLS (smtpd_tls_auth_only); the socket is local.
disable_plaintext_auth = no
# the suite sends wrong passwords on purpose: no 2 s penalty each
auth_failure_delay = 0
auth_mechanisms = plain login xoauth2 oauthbearer
passdb {{
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN username_format=%u {passwd}
}}
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {oauth_conf}
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home=/nonexistent
}}
service auth {{
  unix_listener {sock} {{
    mode = 0660
    user = postfix
    group = postfix
  }}
}}
service anvil {{
  chroot =
}}
""".format(run=run, state=state, log=self.log, passwd=passwd, sock=sock_path, oauth_conf=oauth_conf,
           tag=hashlib.sha1(self.dir.encode()).hexdigest()[:8]))

    def version(self):
        return subprocess.run(["dovecot", "--version"], capture_output=True, text=True,
                              timeout=10).stdout.strip()

    def start(self, deadline, reaper):
        self.errf = open(os.path.join(self.dir, "dovecot.stderr"), "wb")
        self.proc = subprocess.Popen(["dovecot", "-F", "-c", self.conf], stdin=subprocess.DEVNULL,
                                     stdout=self.errf, stderr=self.errf)
        reaper.watch(self.proc.pid)
        while not os.path.exists(self.sock):
            if self.proc.poll() is not None:
                raise RuntimeError("dovecot exited (rc %s): %s" % (self.proc.returncode, self.tail()))
            if time.monotonic() > deadline:
                raise RuntimeError("dovecot: no auth socket %s after %.0f s" % (self.sock, START_TIMEOUT))
            time.sleep(0.05)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def tail(self):
        out = []
        for p in (self.log, os.path.join(self.dir, "dovecot.stderr")):
            if os.path.exists(p):
                with open(p, "rb") as f:
                    out += f.read().decode("utf-8", "replace").splitlines()[-5:]
        return " | ".join(out)

    def log_since(self, offset):
        if not os.path.exists(self.log):
            return ""
        with open(self.log, "rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", "replace")

    def log_size(self):
        return os.path.getsize(self.log) if os.path.exists(self.log) else 0

    def stop(self, errors):
        stop_pid(self.proc, "dovecot", errors)
        if self.proc is not None:
            self.errf.close()
        left = pids_of_config(self.conf)
        for pid in left:   # children whose master is gone: one by one, by pid
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if left:
            errors.append("dovecot left processes %s: killed" % left)


# ----------------------------------------------------------------- Postfix --

# name -> (smtpd -o overrides, what it is for). Every listener is TLS from
# the first byte except "submission", where STARTTLS is required.
POSTFIX_LISTENERS = {
    "smtps": ({"smtpd_tls_wrappermode": "yes"},
              "implicit TLS, AUTH PLAIN LOGIN XOAUTH2 OAUTHBEARER (Dovecot)"),
    "submission": ({"smtpd_tls_security_level": "encrypt"},
                   "STARTTLS required (nothing but EHLO, STARTTLS, QUIT before it)"),
    "bare": ({"smtpd_tls_wrappermode": "yes",
              "smtpd_discard_ehlo_keywords": "pipelining,8bitmime,smtputf8,chunking",
              "broken_sasl_auth_clients": "yes"},
             "implicit TLS; PIPELINING, 8BITMIME, SMTPUTF8, CHUNKING not announced; "
             "AUTH also in the pre-RFC 4954 AUTH= form"),
    "limits": ({"smtpd_tls_wrappermode": "yes", "message_size_limit": "1048576"},
               "implicit TLS, SIZE 1048576"),
    "ccert": ({"smtpd_tls_wrappermode": "yes", "smtpd_tls_ask_ccert": "yes",
               "smtpd_tls_req_ccert": "yes"},
              "implicit TLS, a client certificate from the test CA required"),
    "limit100": ({"smtpd_tls_wrappermode": "yes", "smtpd_recipient_limit": "100"},
                 "implicit TLS, at most 100 recipients a transaction (452 4.5.3 after), as Gmail"),
}
REJECTED = "reject@example.org"       # check_recipient_access refuses it at RCPT
LIMIT_SIZE = 1048576


class Postfix:
    """A private Postfix instance: -c ETC, its own queue, data directory and
    maillog; SASL through Dovecot; every accepted message delivered by
    pipe(8) to capture.py. The SMTP dialogue of every connection from
    127.0.0.1 is logged (debug_peer_list) so tests can see the exact
    MAIL/RCPT lines and replies, parameters included."""

    def __init__(self, work, pki, users, oauth_key):
        self.dir = os.path.join(work, "postfix")
        self.etc = os.path.join(self.dir, "etc")
        self.queue = os.path.join(self.dir, "queue")
        self.data = os.path.join(self.dir, "data")
        self.capture = os.path.join(self.dir, "capture")
        self.maillog = os.path.join(self.dir, "maillog")
        for d in (self.etc, self.queue, self.data, self.capture):
            os.makedirs(d)
        shutil.chown(self.data, "postfix", "postfix")
        shutil.chown(self.capture, "nobody", "nogroup")
        self.capture_py = os.path.join(self.dir, "capture.py")
        shutil.copy(os.path.join(HERE, "capture.py"), self.capture_py)
        os.chmod(self.capture_py, 0o755)
        # pipe(8) runs capture.py as nobody: the way down must be open to it
        # (the key files stay 0600, read by smtpd as root before it drops
        # privileges).
        for d in (work, self.dir):
            os.chmod(d, os.stat(d).st_mode | 0o711)
        self.ports = {n: free_port() for n in POSTFIX_LISTENERS}
        self.dovecot = Dovecot(work, os.path.join(self.queue, "private", "auth"), users, oauth_key)
        self.proc = None
        self.pki = pki
        self._write_config()

    def _write_config(self):
        pki = self.pki
        main = {
            "compatibility_level": "3.6",
            "queue_directory": self.queue,
            "data_directory": self.data,
            "command_directory": "/usr/sbin",
            "daemon_directory": POSTFIX_DAEMONS,
            "meta_directory": "/etc/postfix",
            "shlib_directory": "/usr/lib/postfix",
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "maillog_file": self.maillog,
            "maillog_file_prefixes": self.dir,
            "syslog_name": "tlsmail-real",
            "myhostname": "mx.tlsmail.test",
            "mydomain": "tlsmail.test",
            "myorigin": "$myhostname",
            "mydestination": "",
            "relay_domains": "",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.1/32",
            "alias_maps": "",
            "alias_database": "",
            "biff": "no",
            # Everything accepted goes to capture.py, whatever the domain.
            "default_transport": "capture",
            "relay_transport": "capture",
            "local_transport": "capture",
            "capture_destination_concurrency_limit": "4",
            # The bytes delivered are the bytes received plus Postfix's
            # Received: header: no address rewriting, no added headers.
            "local_header_rewrite_clients": "",
            "always_add_missing_headers": "no",
            "message_size_limit": "52428800",
            "mailbox_size_limit": "0",
            "smtputf8_enable": "yes",
            "smtpd_relay_restrictions": "permit_sasl_authenticated, reject",
            "smtpd_recipient_restrictions":
                "check_recipient_access inline:{ { %s = 550 5.1.1 no such user here } }, "
                "permit_sasl_authenticated, reject" % REJECTED,
            "smtpd_sasl_auth_enable": "yes",
            "smtpd_sasl_type": "dovecot",
            "smtpd_sasl_path": "private/auth",
            "smtpd_sasl_security_options": "noanonymous",
            "smtpd_tls_chain_files": "%s/good.key, %s/good.crt" % (pki, pki),
            "smtpd_tls_CAfile": "%s/ca.crt" % pki,
            "smtpd_tls_security_level": "encrypt",
            "smtpd_tls_auth_only": "yes",
            "smtpd_tls_received_header": "yes",
            "smtpd_tls_loglevel": "1",
            # The SMTP dialogue with each client, command by command, in the
            # maillog: what the server really saw (parameters included).
            "debug_peer_list": "127.0.0.1",
            "debug_peer_level": "1",
            "smtpd_client_connection_rate_limit": "0",
            "anvil_rate_time_unit": "60s",
            "smtpd_error_sleep_time": "0",
            "smtpd_soft_error_limit": "100",
            "smtpd_hard_error_limit": "100",
            "queue_run_delay": "1s",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
            "notify_classes": "",
            "bounce_queue_lifetime": "0",
        }
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write("# tests/real: a private Postfix instance (postfix -c %s)\n" % self.etc)
            for k, v in main.items():
                f.write("%s = %s\n" % (k, v))
        lines = ["# service type private unpriv chroot wakeup maxproc command + args"]
        for name, (opts, _) in POSTFIX_LISTENERS.items():
            lines.append("127.0.0.1:%d inet n - n - - smtpd" % self.ports[name])
            lines.append("  -o syslog_name=tlsmail-real/%s" % name)
            for k, v in opts.items():
                lines.append("  -o %s=%s" % (k, v))
        lines += [
            "pickup    unix  n - n 60   1 pickup",
            "cleanup   unix  n - n -    0 cleanup",
            "qmgr      unix  n - n 300  1 qmgr",
            "tlsmgr    unix  - - n 1000? 1 tlsmgr",
            "rewrite   unix  - - n -    - trivial-rewrite",
            "bounce    unix  - - n -    0 bounce",
            "defer     unix  - - n -    0 bounce",
            "trace     unix  - - n -    0 bounce",
            "verify    unix  - - n -    1 verify",
            "flush     unix  n - n 1000? 0 flush",
            "proxymap  unix  - - n -    - proxymap",
            "showq     unix  n - n -    - showq",
            "error     unix  - - n -    - error",
            "retry     unix  - - n -    - error",
            "discard   unix  - - n -    - discard",
            "anvil     unix  - - n -    1 anvil",
            "scache    unix  - - n -    1 scache",
            "postlog   unix-dgram n - n - 1 postlogd",
            "capture   unix  - n n -    - pipe",
            "  eol=\\r\\n null_sender= user=nobody:nogroup",
            "  argv=/usr/bin/python3 %s %s queue_id=${queue_id} sender=${sender} size=${size}"
            % (self.capture_py, self.capture),
            "  sasl_method=${sasl_method} sasl_username=${sasl_username} protocol=${client_protocol}",
            "  rcpt=${recipient} orcpt=${original_recipient}",
        ]
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.write("\n".join(lines) + "\n")

    def postconf(self, *args):
        return subprocess.run(["postconf", "-c", self.etc] + list(args), capture_output=True,
                              text=True, timeout=20)

    def version(self):
        return self.postconf("-h", "mail_version").stdout.strip()

    def start(self, reaper):
        deadline = time.monotonic() + START_TIMEOUT
        # post-install create-missing: the queue's subdirectories, owners, modes.
        r = subprocess.run(["postfix", "-c", self.etc, "check"], capture_output=True, text=True,
                           timeout=60)
        if r.returncode != 0:
            # Without a terminal or syslog, only -v puts the reason on stderr.
            r = subprocess.run(["postfix", "-v", "-c", self.etc, "check"], capture_output=True,
                               text=True, timeout=60)
            why = [l for l in r.stderr.splitlines() if "fatal" in l or "error" in l]
            raise RuntimeError("postfix check failed: %s" % (" | ".join(why[-3:]) or r.stderr[-300:]))
        # Dovecot's auth socket goes in the queue's private/, made just now.
        self.dovecot.start(deadline, reaper)
        # Without -w or -d the master neither forks nor waits: the pid here is
        # the master's, and SIGTERM to it ends every Postfix process it started.
        self.errf = open(os.path.join(self.dir, "master.stderr"), "wb")
        self.proc = subprocess.Popen([os.path.join(POSTFIX_DAEMONS, "master"), "-c", self.etc],
                                     stdin=subprocess.DEVNULL, stdout=self.errf, stderr=self.errf)
        reaper.watch(self.proc.pid)
        wait_ports(self.ports.values(), deadline, self.alive, "postfix master: %s" % self.log_tail())

    def alive(self):
        return self.proc is not None and self.proc.poll() is None and self.dovecot.alive()

    def log_tail(self, n=6):
        if not os.path.exists(self.maillog):
            return "(no maillog)"
        with open(self.maillog, "rb") as f:
            return " | ".join(f.read().decode("utf-8", "replace").splitlines()[-n:])

    def stop(self, errors):
        stop_pid(self.proc, "postfix master", errors)
        if self.proc is not None:
            self.errf.close()
        # Postfix daemons may finish a request after the master's SIGTERM;
        # wait for them a moment, then by pid.
        end = time.monotonic() + STOP_TIMEOUT
        while pids_of_config(self.etc) and time.monotonic() < end:
            time.sleep(0.1)
        left = pids_of_config(self.etc)
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if left:
            errors.append("postfix left processes %s: killed" % left)
        self.dovecot.stop(errors)


# ------------------------------------------------------ nodemailer smtp-server --

NODE_LISTENERS = {
    "implicit": "implicit TLS, AUTH PLAIN LOGIN XOAUTH2",
    "starttls": "STARTTLS required (AUTH 538, MAIL 530 before it)",
    "bare": "implicit TLS; PIPELINING, 8BITMIME, SMTPUTF8 not announced",
    "limits": "implicit TLS, SIZE %d, a larger message refused with 552" % LIMIT_SIZE,
}


def node_modules(build):
    """BUILD/real-node/node_modules from the committed lockfile (npm ci),
    redone only when the lockfile changed."""
    dest = os.path.join(build, "real-node")
    with open(os.path.join(HERE, "package-lock.json"), "rb") as f:
        want = hashlib.sha256(f.read()).hexdigest()
    stamp = os.path.join(dest, "lock.sha256")
    mods = os.path.join(dest, "node_modules")
    try:
        with open(stamp) as f:
            if f.read().strip() == want and os.path.isdir(os.path.join(mods, "smtp-server")):
                return mods
    except OSError:
        pass
    os.makedirs(dest, exist_ok=True)
    for n in ("package.json", "package-lock.json"):
        shutil.copy(os.path.join(HERE, n), os.path.join(dest, n))
    r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=dest,
                       capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise RuntimeError("npm ci in %s failed: %s" % (dest, r.stderr.strip()[-500:]))
    with open(stamp, "w") as f:
        f.write(want + "\n")
    return mods


class Nodemailer:
    """tests/real/nodemailer.js: smtp-server's listeners in one node process."""

    def __init__(self, work, build, pki, users, tokens):
        self.dir = os.path.join(work, "nodemailer")
        self.spool = os.path.join(self.dir, "spool")
        os.makedirs(self.spool)
        self.modules = node_modules(build)
        self.conf = os.path.join(self.dir, "config.json")
        with open(self.conf, "w") as f:
            json.dump({"cert": os.path.join(pki, "good.crt"), "key": os.path.join(pki, "good.key"),
                       "spool": self.spool, "users": dict(users), "tokens": dict(tokens),
                       "reject": REJECTED, "limit": LIMIT_SIZE}, f)
        self.proc = None
        self.ports = {}

    def version(self):
        with open(os.path.join(self.modules, "smtp-server", "package.json")) as f:
            v = json.load(f)["version"]
        node = subprocess.run(["node", "--version"], capture_output=True, text=True,
                              timeout=10).stdout.strip()
        return "smtp-server %s on node %s" % (v, node)

    def start(self, reaper):
        deadline = time.monotonic() + START_TIMEOUT
        self.errf = open(os.path.join(self.dir, "node.stderr"), "wb")
        env = dict(os.environ, NODE_PATH=self.modules)
        self.proc = subprocess.Popen(["node", os.path.join(HERE, "nodemailer.js"), self.conf],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self.errf, env=env)
        reaper.watch(self.proc.pid)
        buf = b""
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError("nodemailer.js: no READY within %.0f s" % START_TIMEOUT)
            r, _, _ = select.select([self.proc.stdout], [], [], left)
            if r:
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    raise RuntimeError("nodemailer.js exited (rc %s): %s"
                                       % (self.proc.wait(5), self.stderr_tail()))
                buf += chunk
        line = buf.split(b"\n")[0].decode()
        if not line.startswith("READY "):
            raise RuntimeError("nodemailer.js: unexpected %r" % line)
        self.ports = json.loads(line[6:])
        wait_ports(self.ports.values(), deadline, self.alive, "nodemailer.js")

    def stderr_tail(self):
        with open(os.path.join(self.dir, "node.stderr"), "rb") as f:
            return " | ".join(f.read().decode("utf-8", "replace").splitlines()[-5:])

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, errors):
        stop_pid(self.proc, "nodemailer.js", errors)
        if self.proc is not None:
            self.proc.stdout.close()
            self.errf.close()


# ------------------------------------------------------------------ capture --
#
# What each server saw, in one shape for both: a Session is one client
# connection, its dialogue as the server logged it; a Delivery is one
# accepted message, its bytes and envelope as the server stored them.

class Session:
    def __init__(self, server, listener, key):
        self.server, self.listener, self.key = server, listener, key
        self.items = []        # ("C", command) ("S", reply line) ("TLS", note) ("LOG", text)
        self.closed = False

    def commands(self):
        return [t for k, t in self.items if k == "C"]

    def replies(self):
        return [t for k, t in self.items if k == "S"]

    def clear_commands(self):
        """Commands the server read before TLS was established."""
        out = []
        for k, t in self.items:
            if k == "TLS":
                return out
            if k == "C":
                out.append(t)
        return out

    def tls(self):
        return any(k == "TLS" for k, _ in self.items)

    def ehlo_lines(self):
        """The server's last EHLO reply, one entry per line, codes included."""
        last = None
        for i, (k, t) in enumerate(self.items):
            if k == "C" and t.upper().startswith("EHLO"):
                last = i
        out = []
        for k, t in (self.items[last + 1:] if last is not None else []):
            if k == "S":
                out.append(t)
                if t[3:4] == " ":
                    break
        return out

    def ehlo_keywords(self):
        """Keywords of that reply (the greeting line left out), upper case;
        the old "AUTH=PLAIN LOGIN" form counts as AUTH."""
        return [l[4:].split(" ")[0].split("=")[0].upper() for l in self.ehlo_lines()[1:]]

    def mail_params(self):
        """{PARAM: value or True} of each MAIL command, in order, as the
        server read them (SIZE=, BODY=, SMTPUTF8, RET=, ENVID=, AUTH=)."""
        return [esmtp_params(c) for c in self.commands() if c.upper().startswith("MAIL FROM:")]

    def rcpt_params(self):
        """(address, {PARAM: value}) of each RCPT command (NOTIFY=, ORCPT=)."""
        out = []
        for c in self.commands():
            if c.upper().startswith("RCPT TO:"):
                m = re.match(r"RCPT TO:\s*<([^>]*)>", c, re.I)
                out.append((m.group(1) if m else None, esmtp_params(c)))
        return out

    def log(self):
        return [t for k, t in self.items if k == "LOG"]

    def __repr__(self):
        return "<%s/%s %s>" % (self.server, self.listener, " ".join(
            ("%s:%s" % (k, t[:40])) for k, t in self.items[:30]))


def esmtp_params(command):
    """The ESMTP parameters after the path of a MAIL or RCPT command."""
    m = re.match(r"(?:MAIL FROM|RCPT TO):\s*<[^>]*>(.*)$", command, re.I | re.S)
    out = {}
    for p in (m.group(1).split() if m else []):
        k, eq, v = p.partition("=")
        out[k.upper()] = v if eq else True
    return out


class Delivery:
    def __init__(self, server, body, sender, rcpts, user, mech, queue_id, meta):
        self.server, self.body, self.sender, self.rcpts = server, body, sender, rcpts
        self.user, self.mech, self.queue_id, self.meta = user, mech, queue_id, meta

    def __repr__(self):
        return "<%s delivery %s from %r to %r, %d octets>" % (
            self.server, self.queue_id, self.sender, self.rcpts, len(self.body))


_PF_LINE = re.compile(r"^\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ tlsmail-real/([\w-]+)/smtpd\[(\d+)\]: (.*)$")
_PF_PEER = "localhost[127.0.0.1]: "


def split_received(body):
    """Postfix's own Received: header (the first header, with its folded
    lines) and the message as the client sent it."""
    if not body.startswith(b"Received: "):
        return None, body
    end = 0
    while True:
        nl = body.index(b"\r\n", end) + 2
        end = nl
        if body[end:end + 1] not in (b" ", b"\t"):
            break
    return body[:end], body[end:]


def _read_from(path, offset):
    """The whole lines of path after offset. A server may be writing its
    next line as we read (a reader can see part of a write), so an
    unfinished last line is left for the next read; every caller polls."""
    if not os.path.exists(path):
        return b""
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read()
    return data[:data.rfind(b"\n") + 1]


class PostfixCapture:
    """The maillog (debug_peer_list: the dialogue of every connection) and
    capture.py's spool of one Postfix instance."""

    def __init__(self, pf):
        self.pf = pf

    def mark(self):
        size = os.path.getsize(self.pf.maillog) if os.path.exists(self.pf.maillog) else 0
        return (size, set(os.listdir(self.pf.capture)))

    def sessions(self, mark):
        sessions, open_ = [], {}
        for raw in _read_from(self.pf.maillog, mark[0]).decode("utf-8", "replace").splitlines():
            m = _PF_LINE.match(raw)
            if not m:
                continue
            listener, pid, text = m.groups()
            key = (listener, pid)
            if text.startswith("connect from "):
                s = open_[key] = Session("postfix", listener, key)
                sessions.append(s)
                continue
            s = open_.get(key)
            if s is None:
                continue
            if text.startswith("disconnect from "):
                s.closed = True
                s.items.append(("LOG", text))
                del open_[key]
            elif text.startswith("< " + _PF_PEER):
                s.items.append(("C", text[2 + len(_PF_PEER):]))
            elif text.startswith("> " + _PF_PEER):
                s.items.append(("S", text[2 + len(_PF_PEER):]))
            elif "TLS connection established from" in text:
                s.items.append(("TLS", text))
            elif (text.startswith(("NOQUEUE:", "improper command pipelining", "warning:",
                                   "lost connection", "SSL_accept", "too many errors",
                                   "timeout after"))
                  or re.match(r"[0-9A-F]{8,}: ", text)):
                # the verdicts among the debug noise: rejections, queue ids
                s.items.append(("LOG", text))
        return sessions

    def wait_sessions(self, mark, count, timeout=10.0, listener=None):
        """At least count finished sessions since mark (postlogd writes
        after the client may have gone)."""
        end = time.monotonic() + timeout
        while True:
            got = [s for s in self.sessions(mark) if s.closed and
                   (listener is None or s.listener == listener)]
            if len(got) >= count or time.monotonic() > end:
                return got
            time.sleep(0.05)

    def queue_ids(self, session):
        out = []
        for r in session.replies():
            # after DATA "Ok: queued as ID", after BDAT "Ok: N bytes queued as ID"
            m = re.match(r"250 2\.0\.0 Ok: (?:\d+ bytes )?queued as (\w+)", r)
            if m:
                out.append(m.group(1))
        return out

    def accepted_before(self, mark, queue_id):
        """queue_id was accepted before mark: its delivery may land later."""
        with open(self.pf.maillog, "rb") as f:
            head = f.read(mark[0])
        return re.search(rb"Ok: (?:\d+ bytes )?queued as " + queue_id.encode() + rb"\b", head) is not None

    def new_deliveries(self, mark):
        """Every capture.py delivery since mark, one Delivery per queue id
        (the recipients of its deliveries merged, in Postfix's order)."""
        names = sorted(n for n in os.listdir(self.pf.capture)
                       if n.endswith(".json") and n not in mark[1])
        by_qid = {}
        for n in names:
            base = os.path.join(self.pf.capture, n[:-5])
            with open(base + ".json") as f:
                env = json.load(f)
            with open(base + ".eml", "rb") as f:
                body = f.read()
            by_qid.setdefault(env["queue_id"], []).append((env, body))
        out = []
        for qid, parts in by_qid.items():
            env, body = parts[0]
            received, msg = split_received(body)
            rcpts = [r for e, _ in parts for r in e["rcpt"]]
            meta = {"received": received, "parts": [e for e, _ in parts],
                    "bodies_equal": all(b == body for _, b in parts),
                    "orcpt": [r for e, _ in parts for r in e["orcpt"]]}
            out.append(Delivery("postfix", msg, env["sender"], rcpts, env["sasl_username"],
                                env["sasl_method"], qid, meta))
        return out

    def wait_report(self, mark, needle, timeout=20.0):
        """A delivery status notification Postfix itself sent (null sender)
        since mark whose text contains needle (e.g. the ENVID): its
        Original-Envelope-Id, Original-Recipient and Action fields are
        Postfix's reading of the client's DSN parameters."""
        end = time.monotonic() + timeout
        while True:
            for d in self.new_deliveries(mark):
                if d.sender == "" and needle.encode() in d.body:
                    return d
            if time.monotonic() > end:
                return None
            time.sleep(0.05)

    def wait_delivery(self, mark, queue_id, nrcpt, timeout=20.0):
        """The Delivery of queue_id once capture.py has all nrcpt recipients."""
        end = time.monotonic() + timeout
        while True:
            for d in self.new_deliveries(mark):
                if d.queue_id == queue_id and len(d.rcpts) >= nrcpt:
                    return d
            if time.monotonic() > end:
                return None
            time.sleep(0.05)


class NodeCapture:
    """nodemailer.js's events.jsonl, dialogue.jsonl and stored messages."""

    def __init__(self, node):
        self.node = node
        self.events_path = os.path.join(node.spool, "events.jsonl")
        self.dialogue_path = os.path.join(node.spool, "dialogue.jsonl")

    def mark(self):
        sz = lambda p: os.path.getsize(p) if os.path.exists(p) else 0
        return (sz(self.events_path), sz(self.dialogue_path), set(os.listdir(self.node.spool)))

    def events(self, mark):
        data = _read_from(self.events_path, mark[0]).decode("utf-8", "replace")
        return [json.loads(l) for l in data.splitlines() if l.strip()]

    def sessions(self, mark):
        closed = {e["cid"] for e in self.events(mark) if e["event"] == "close"}
        sessions, by_cid = [], {}
        data = _read_from(self.dialogue_path, mark[1]).decode("utf-8", "replace")
        for l in data.splitlines():
            if not l.strip():
                continue
            d = json.loads(l)
            s = by_cid.get(d["cid"])
            if s is None:
                s = by_cid[d["cid"]] = Session("nodemailer", d["server"], d["cid"])
                sessions.append(s)
                if d["server"] != "starttls":
                    s.items.append(("TLS", "implicit"))
            line = d["line"]
            if line.startswith("C: "):
                s.items.append(("C", line[3:]))
            elif line.startswith("S: "):
                for r in line[3:].split("\r\n"):
                    s.items.append(("S", r))
                if line.startswith("S: 220 ") and s.commands()[-1:] == ["STARTTLS"]:
                    s.items.append(("TLS", "after STARTTLS"))
        for s in sessions:
            s.closed = s.key in closed
        return sessions

    def wait_sessions(self, mark, count, timeout=10.0, listener=None):
        end = time.monotonic() + timeout
        while True:
            got = [s for s in self.sessions(mark) if s.closed and
                   (listener is None or s.listener == listener)]
            if len(got) >= count or time.monotonic() > end:
                return got
            time.sleep(0.05)

    def queue_ids(self, session):
        out = []
        for r in session.replies():
            m = re.match(r"250 (?:2\.\d\.\d )?OK: stored as (\d+)", r)
            if m:
                out.append(m.group(1))
        return out

    def accepted_before(self, mark, queue_id):
        return False      # smtp-server stores before it answers 250

    def new_deliveries(self, mark):
        evs = self.events(mark)
        out = []
        for n in sorted(os.listdir(self.node.spool)):
            if not n.endswith(".json") or n in mark[2]:
                continue
            base = os.path.join(self.node.spool, n[:-5])
            with open(base + ".json") as f:
                meta = json.load(f)
            with open(base + ".eml", "rb") as f:
                body = f.read()
            mech = [e["method"] for e in evs if e["cid"] == meta["cid"] and e["event"] == "auth" and e["ok"]]
            env = meta["envelope"]
            out.append(Delivery("nodemailer", body, env["mailFrom"]["address"],
                                [r["address"] for r in env["rcptTo"]], meta["user"],
                                mech[-1] if mech else None, str(int(n[:-5])), meta))
        return out

    def wait_delivery(self, mark, queue_id, nrcpt, timeout=20.0):
        end = time.monotonic() + timeout
        while True:
            for d in self.new_deliveries(mark):
                if d.queue_id == queue_id:
                    return d
            if time.monotonic() > end:
                return None
            time.sleep(0.05)
