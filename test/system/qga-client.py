#!/usr/bin/env python3
"""qga-client.py: a qemu-guest-agent client, written from qemu-ga's
documented wire protocol (QEMU's qga/qapi-schema.json and
docs/interop/qemu-ga.rst) the way QEMU's own qemu-ga-client and libvirt
speak it: on connecting, send 0xFF and guest-sync-delimited with a random
id, drop everything up to the 0xFF that precedes the matching response,
then one request at a time, one response line each.  Independent of chand:
the same client runs against Debian's real qemu-ga (qemu-ga -m
unix-listen) and against chand-qga, and the test compares the two.

  qga-client.py SOCKET list FILE-PREFIX
        runs the command list below against SOCKET and prints, as JSON,
        {name: {"return": ..} or {"error": {"class", "desc"}}}; FILE-PREFIX
        is a path prefix for the files the list writes.
  qga-client.py compare OURS THEIRS
        compares two such outputs by shape: each command returns in both or
        fails in both with the same error class; returned objects have
        members of qemu-ga's names (a subset) and of the same JSON types,
        recursively.  Prints the differences; exit 1 if any.
  qga-client.py SOCKET cat PATH COUNT
        reads PATH with guest-file-open, guest-file-read of COUNT bytes at
        a time, guest-file-close; prints the sha256 of the bytes and their
        count; exit 1 on an error response (printed).
  qga-client.py SOCKET execute NAME [JSON-ARGS]
        one command; prints the response line's JSON; exit 1 on an error.
  qga-client.py SOCKET raw HEX-OR-TEXT...
        sends each argument (hex if it starts with 0x) and prints the
        response lines that arrive within 3 s, as JSON strings.
"""

import base64
import hashlib
import json
import os
import random
import socket
import sys
import time

TIMEOUT = 600


class Client:
    def __init__(self, path, timeout=TIMEOUT):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def line(self):
        buf = bytearray(self.buf)
        start = 0
        while True:
            end = buf.find(b"\n", start)
            if end >= 0:
                break
            start = len(buf)
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise EOFError("the agent closed the connection")
            buf += chunk
        self.buf = bytes(buf[end + 1:])
        return bytes(buf[:end])

    def sync(self):
        """guest-sync-delimited: as qemu-ga-client, after a 0xFF."""
        sid = random.randint(0, 2**31 - 1)
        self.send(b"\xff" + json.dumps(
            {"execute": "guest-sync-delimited",
             "arguments": {"id": sid}}).encode())
        while True:
            line = self.line()
            if b"\xff" not in line:
                continue        # Stale data, or the 0xFF's own error.
            resp = json.loads(line.split(b"\xff")[-1])
            if resp.get("return") == sid:
                return sid

    def execute(self, name, args=None, rid=None):
        req = {"execute": name}
        if args is not None:
            req["arguments"] = args
        if rid is not None:
            req["id"] = rid
        self.send(json.dumps(req).encode())
        return json.loads(self.line())


def command_list(c, prefix):
    out = {}

    def run(label, name, args=None):
        r = c.execute(name, args)
        out[label] = r
        return r

    run("guest-ping", "guest-ping")
    run("guest-sync", "guest-sync", {"id": 4242})
    run("guest-info", "guest-info")
    run("guest-get-osinfo", "guest-get-osinfo")
    run("guest-get-time", "guest-get-time")
    run("guest-network-get-interfaces", "guest-network-get-interfaces")
    run("guest-fsfreeze-status", "guest-fsfreeze-status")
    path = prefix + "-file"
    h = run("guest-file-open w+", "guest-file-open",
            {"path": path, "mode": "w+"}).get("return")
    data = base64.b64encode(b"hello, qemu-ga\n").decode()
    run("guest-file-write", "guest-file-write",
        {"handle": h, "buf-b64": data})
    run("guest-file-seek", "guest-file-seek",
        {"handle": h, "offset": 0, "whence": "set"})
    run("guest-file-read", "guest-file-read", {"handle": h, "count": 100})
    run("guest-file-close", "guest-file-close", {"handle": h})
    run("guest-file-close again", "guest-file-close", {"handle": h})
    run("guest-file-open missing", "guest-file-open",
        {"path": prefix + "-no-such-file"})
    pid = run("guest-exec", "guest-exec",
              {"path": "/bin/sh",
               "arg": ["-c", "echo out; echo err >&2; exit 3"],
               "capture-output": True}).get("return", {}).get("pid")
    deadline = time.time() + 60
    while True:
        r = c.execute("guest-exec-status", {"pid": pid})
        if "error" in r or r["return"].get("exited") or \
                time.time() > deadline:
            break
        time.sleep(0.1)
    out["guest-exec-status"] = r
    run("guest-exec-status reaped", "guest-exec-status", {"pid": pid})
    run("unknown command", "guest-frobnicate")
    run("missing argument", "guest-sync", {})
    run("unexpected argument", "guest-ping", {"x": 1})
    run("wrong type", "guest-sync", {"id": "x"})
    run("bad count", "guest-file-read", {"handle": 1, "count": -1})
    return out


def shape(v):
    if isinstance(v, dict):
        return {k: shape(x) for k, x in v.items()}
    if isinstance(v, list):
        return [shape(v[0])] if v else []
    return type(v).__name__


def diff(ours, theirs, where, out):
    if isinstance(theirs, dict) and isinstance(ours, dict):
        for k in ours:
            if k not in theirs:
                out.append("%s: member %r is not qemu-ga's" % (where, k))
            else:
                diff(ours[k], theirs[k], "%s.%s" % (where, k), out)
    elif isinstance(theirs, list) and isinstance(ours, list):
        if ours and theirs:
            diff(ours[0], theirs[0], where + "[0]", out)
    elif ours != theirs:
        out.append("%s: %s here, %s in qemu-ga" % (where, ours, theirs))


def compare(ours, theirs):
    out = []
    for name, t in theirs.items():
        o = ours.get(name)
        if o is None:
            out.append("%s: missing" % name)
        elif ("error" in o) != ("error" in t):
            out.append("%s: %s here, %s in qemu-ga" % (name, o, t))
        elif "error" in o:
            if o["error"]["class"] != t["error"]["class"]:
                out.append("%s: error class %s here, %s in qemu-ga"
                           % (name, o["error"]["class"],
                              t["error"]["class"]))
        else:
            diff(shape(o["return"]), shape(t["return"]), name, out)
    return out


def cat(c, path, count):
    r = c.execute("guest-file-open", {"path": path})
    if "error" in r:
        print(json.dumps(r))
        return 1
    h = r["return"]
    digest = hashlib.sha256()
    total = 0
    while True:
        r = c.execute("guest-file-read", {"handle": h, "count": count})
        if "error" in r:
            print(json.dumps(r))
            return 1
        data = base64.b64decode(r["return"]["buf-b64"])
        if len(data) != r["return"]["count"]:
            print("count %d but %d bytes" % (r["return"]["count"],
                                             len(data)))
            return 1
        digest.update(data)
        total += len(data)
        if r["return"]["eof"]:
            break
    c.execute("guest-file-close", {"handle": h})
    print(digest.hexdigest(), total)
    return 0


def raw(path, parts):
    c = Client(path, timeout=3)
    for p in parts:
        c.send(bytes.fromhex(p[2:]) if p.startswith("0x") else p.encode())
    lines = []
    try:
        while True:
            lines.append(c.line().decode("latin-1"))
    except (socket.timeout, EOFError):
        pass
    for line in lines:
        print(json.dumps(line))
    return 0


def main(argv):
    if len(argv) >= 4 and argv[1] == "compare":
        with open(argv[2]) as f:
            ours = json.load(f)
        with open(argv[3]) as f:
            theirs = json.load(f)
        out = compare(ours, theirs)
        for line in out:
            print(line)
        return 1 if out else 0
    path, verb = argv[1], argv[2]
    if verb == "raw":
        return raw(path, argv[3:])
    c = Client(path)
    c.sync()
    if verb == "list":
        print(json.dumps(command_list(c, argv[3]), sort_keys=True))
        return 0
    if verb == "cat":
        return cat(c, argv[3], int(argv[4]))
    if verb == "execute":
        args = json.loads(argv[4]) if len(argv) > 4 else None
        r = c.execute(argv[3], args)
        print(json.dumps(r, sort_keys=True))
        return 1 if "error" in r else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
