#!/usr/bin/env python3
"""bench/qga-bench.py -- the timed roles of scripts/bench's qga phase.

  qga-bench.py read SOCKET PATH COUNT OUT
        through chand-qga's SOCKET (a qemu-ga client: test/system/
        qga-client.py's), guest-file-open PATH, guest-file-read of COUNT
        bytes until eof, guest-file-close; each request timed.  Writes OUT
        (JSON): seconds from the open to the close's response, the reads,
        bytes, their sha256 and whether it is PATH's.
  qga-bench.py lane CHANCTL VM PATH SIZE OUT
        the same bytes through the transfer lane alone, as chand-qga does
        it: chanctl call --vm VM file-open and file-export, then chanctl
        object-fetch --vm VM DIGEST --size SIZE --wait, then file-close;
        each step timed; the fetched content's sha256 checked against
        PATH's.  CHANCTL's environment names the Chan DB and chand-host's
        control socket.
  qga-bench.py ping SOCKET COUNT OUT
        COUNT guest-ping requests, one at a time, each timed from the send
        to its response line.

Each exits 1, with OUT saying why, if a request fails or the bytes are not
the file's.  Standard library only.
"""

import base64
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENT = os.path.join(HERE, "..", "test", "system", "qga-client.py")


def qga_client():
    """The qemu-ga client module of the system tests."""
    spec = importlib.util.spec_from_file_location("qga_client", CLIENT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def now():
    return time.monotonic_ns()


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write(out, res):
    with open(out, "w") as f:
        json.dump(res, f, indent=1)
        f.write("\n")


def timed_execute(c, name, args, steps):
    """Runs one command on qga client 'c', appends its timing to 'steps'
    and returns the response (an error response raises)."""
    t0 = now()
    r = c.execute(name, args)
    steps.append({"command": name, "ns": now() - t0})
    if "error" in r:
        raise RuntimeError("%s: %s" % (name, json.dumps(r["error"])))
    return r["return"]


def qga_read(sock, path, count, out):
    res = {"path": path, "count": count, "steps": []}
    c = qga_client().Client(sock)
    c.sync()
    digest = hashlib.sha256()
    total = reads = 0
    t0 = now()
    try:
        h = timed_execute(c, "guest-file-open", {"path": path}, res["steps"])
        while True:
            r = timed_execute(c, "guest-file-read",
                              {"handle": h, "count": count}, res["steps"])
            data = base64.b64decode(r["buf-b64"])
            if len(data) != r["count"]:
                raise RuntimeError("count %d but %d bytes"
                                   % (r["count"], len(data)))
            digest.update(data)
            total += len(data)
            reads += 1
            if r["eof"]:
                break
        timed_execute(c, "guest-file-close", {"handle": h}, res["steps"])
    except (RuntimeError, KeyError, ValueError) as e:
        res["error"] = str(e)
        write(out, res)
        return 1
    res.update({"ns": now() - t0, "bytes": total, "reads": reads,
                "sha256": digest.hexdigest()})
    res["sha256_ok"] = res["sha256"] == file_sha256(path)
    write(out, res)
    return 0 if res["sha256_ok"] else 1


def chanctl_json(chanctl, steps, label, *args):
    """Runs chanctl ARGS, appends its timing to 'steps' as 'label', and
    returns its stdout parsed as JSON (None if it is not)."""
    t0 = now()
    p = subprocess.run([chanctl] + list(args), capture_output=True,
                       text=True)
    steps.append({"command": label, "ns": now() - t0})
    if p.returncode:
        raise RuntimeError("chanctl %s: %s" % (" ".join(args),
                                               (p.stdout + p.stderr).strip()))
    try:
        return json.loads(p.stdout)
    except ValueError:
        return None


def lane_read(chanctl, vm, path, size, out):
    res = {"path": path, "bytes": size, "steps": []}
    s = res["steps"]
    t0 = now()
    try:
        h = chanctl_json(chanctl, s, "file-open", "call", "--vm", vm,
                         "file-open", json.dumps({"path": path}))["handle"]
        e = chanctl_json(chanctl, s, "file-export", "call", "--vm", vm,
                         "--timeout", "120", "file-export",
                         json.dumps({"handle": h, "count": size}))
        chanctl_json(chanctl, s, "object-fetch", "object-fetch", "--vm", vm,
                     e["digest"], "--size", str(size), "--wait",
                     "--timeout", "600")
        chanctl_json(chanctl, s, "file-close", "call", "--vm", vm,
                     "file-close", json.dumps({"handle": h}))
        res["ns"] = now() - t0
        st = chanctl_json(chanctl, [], "fetch-status", "host",
                          "object/fetch-status", e["digest"])
    except (RuntimeError, KeyError, TypeError) as err:
        res["error"] = str(err)
        write(out, res)
        return 1
    res.update({"sha256": e["digest"], "export_count": e["count"],
                "fetched_path": st.get("path"), "state": st.get("state")})
    want = file_sha256(path)
    res["sha256_ok"] = (e["digest"] == want and e["count"] == size
                        and file_sha256(st["path"]) == want)
    write(out, res)
    return 0 if res["sha256_ok"] else 1


def ping(sock, count, out):
    c = qga_client().Client(sock)
    c.sync()
    ns = []
    for _ in range(count):
        t0 = now()
        r = c.execute("guest-ping")
        ns.append(now() - t0)
        if "error" in r:
            write(out, {"count": count, "ns": ns, "error": r["error"]})
            return 1
    write(out, {"count": count, "ns": ns})
    return 0


def main(argv):
    if len(argv) == 6 and argv[1] == "read":
        return qga_read(argv[2], argv[3], int(argv[4]), argv[5])
    if len(argv) == 7 and argv[1] == "lane":
        return lane_read(argv[2], argv[3], argv[4], int(argv[5]), argv[6])
    if len(argv) == 5 and argv[1] == "ping":
        return ping(argv[2], int(argv[3]), argv[4])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
