#!/usr/bin/python3
"""tests/real/capture.py - the end of the line for mail Postfix accepted in the
real-server suite: the pipe(8) transport runs it (as nobody) once per
delivery with the envelope as KEY=VALUE arguments and the message on stdin.

    capture.py DIR queue_id=ID sender=S size=N sasl_method=M sasl_username=U
               protocol=P rcpt=R... orcpt=O...

Writes DIR/ID.N.eml (the bytes Postfix delivered) and then DIR/ID.N.json
(the envelope), each through a rename, so a reader that sees the .json sees
a complete pair. N counts deliveries of one queue id: Postfix splits a
message's recipients by next hop (domain), one delivery each.
"""
import json
import os
import sys


def main():
    out = sys.argv[1]
    env = {"rcpt": [], "orcpt": []}
    for a in sys.argv[2:]:
        k, _, v = a.partition("=")
        if k in ("rcpt", "orcpt"):
            env[k].append(v)
        else:
            env[k] = v
    body = sys.stdin.buffer.read()
    qid = env.get("queue_id") or "noqueue"
    for n in range(1000):
        base = os.path.join(out, "%s.%d" % (qid, n))
        try:
            # O_EXCL claims the number: two deliveries of one queue id may
            # run at the same time.
            fd = os.open(base + ".claim", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            continue
        os.close(fd)
        break
    else:
        return 75          # EX_TEMPFAIL: Postfix keeps the message
    env["bytes"] = len(body)
    with open(base + ".eml.tmp", "wb") as f:
        f.write(body)
    os.rename(base + ".eml.tmp", base + ".eml")
    with open(base + ".json.tmp", "w") as f:
        json.dump(env, f)
    os.rename(base + ".json.tmp", base + ".json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
