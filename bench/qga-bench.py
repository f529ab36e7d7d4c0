#!/usr/bin/env python3
"""bench/qga-bench.py -- the timed roles of scripts/bench's qga phase.

  qga-bench.py read SOCKET PATH COUNT OUT
        through chand-qga's SOCKET (a qemu-ga client: test/system/
        qga-client.py's), guest-file-open PATH, guest-file-read of COUNT
        bytes until eof, guest-file-close; each request timed, a read's
        response received here in chunks (qga-client.py's line() copies
        its buffer per 1 MiB received), with the times of its first byte
        and its end.  Writes OUT (JSON): seconds from the open to the
        close's response, the reads, bytes, their sha256 and whether it
        is PATH's.
  qga-bench.py lane CHANCTL VM PATH SIZE CONTENT-DIR OUT
        the same bytes through the transfer lane alone, as chand-qga does
        it: chanctl call --vm VM file-open and file-export, then chanctl
        object-fetch --vm VM DIGEST --size SIZE --wait, then file-close;
        each step timed; the fetched content's sha256 checked against
        PATH's.  chanctl polls every 200 ms, so the fetch is also timed
        until chand-host's CONTENT-DIR has DIGEST (polled every 2 ms).
        CHANCTL's environment names the Chan DB and chand-host's control
        socket.
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
import threading
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


def timed_read(c, args, steps):
    """guest-file-read on qga client 'c', its response line received in
    a list of chunks (no copy of the line per chunk), with the times of
    its first byte and of its end, and of decoding it, in 'steps'."""
    t0 = now()
    c.send(json.dumps({"execute": "guest-file-read",
                       "arguments": args}).encode())
    chunks, t_first = [c.buf], None
    while b"\n" not in chunks[-1]:
        chunk = c.sock.recv(1 << 20)
        if not chunk:
            raise RuntimeError("guest-file-read: the agent closed the "
                               "connection")
        t_first = t_first or now()
        chunks.append(chunk)
    t_end = now()
    line, c.buf = b"".join(chunks).split(b"\n", 1)
    r = json.loads(line)
    if "error" in r:
        raise RuntimeError("guest-file-read: %s" % json.dumps(r["error"]))
    data = base64.b64decode(r["return"]["buf-b64"])
    steps.append({"command": "guest-file-read", "ns": now() - t0,
                  "first_byte_ns": (t_first or t_end) - t0,
                  "last_byte_ns": t_end - t0, "line_bytes": len(line)})
    return r["return"], data


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
            r, data = timed_read(c, {"handle": h, "count": count},
                                 res["steps"])
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


def watch(path, t0, res, stop):
    """Sets res["fetch_exact_ns"] to the time from 't0' until 'path'
    exists, polled every 2 ms until 'stop' is set."""
    while not stop.is_set():
        if os.path.exists(path):
            res["fetch_exact_ns"] = now() - t0
            return
        stop.wait(0.002)


def lane_fetch(chanctl, vm, digest, size, content_dir, res):
    """chanctl object-fetch --wait of 'digest', and meanwhile the time
    until 'content_dir' has it."""
    stop = threading.Event()
    th = threading.Thread(target=watch, args=(
        os.path.join(content_dir, digest), now(), res, stop))
    th.start()
    try:
        chanctl_json(chanctl, res["steps"], "object-fetch", "object-fetch",
                     "--vm", vm, digest, "--size", str(size), "--wait",
                     "--timeout", "600")
    finally:
        stop.wait(0.01)
        stop.set()
        th.join()


def lane_read(chanctl, vm, path, size, content_dir, out):
    res = {"path": path, "bytes": size, "steps": []}
    s = res["steps"]
    t0 = now()
    try:
        h = chanctl_json(chanctl, s, "file-open", "call", "--vm", vm,
                         "file-open", json.dumps({"path": path}))["handle"]
        e = chanctl_json(chanctl, s, "file-export", "call", "--vm", vm,
                         "--timeout", "120", "file-export",
                         json.dumps({"handle": h, "count": size}))
        lane_fetch(chanctl, vm, e["digest"], size, content_dir, res)
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
    if len(argv) == 8 and argv[1] == "lane":
        return lane_read(argv[2], argv[3], argv[4], int(argv[5]), argv[6],
                         argv[7])
    if len(argv) == 5 and argv[1] == "ping":
        return ping(argv[2], int(argv[3]), argv[4])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
