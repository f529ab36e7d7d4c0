#!/usr/bin/env python3
"""Capture real OVSDB JSON-RPC messages for the fuzz-ovsdb seed corpus.

    test/fuzz/capture-ovsdb.py OUTDIR

Starts a private ovsdb-server on a fresh Open_vSwitch database (the schema
installed with Open vSwitch), monitors Interface, Port and Bridge with the
columns chand-host reads, provisions a channel with ovs-vsctl (as an
operator would), changes and removes it, and runs one transaction that
succeeds and one that fails.  Every message the server sends is written,
byte for byte as received, to OUTDIR/ovs-<n>-<what>.  The whole monitor
session is also written as one fuzz-ovsdb replica script (OUTDIR/ovs-script:
the first monitor reply, the updates, a change-tracking clear, the second
monitor reply as a snapshot; ovs-script-typed is the same with the leading
space that selects typed replicas).  Needs ovsdb-tool, ovsdb-server and
ovs-vsctl; nothing else is touched.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"


class Client:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.buf = b""
        self.next_id = 1

    def send(self, method, params):
        msg_id = self.next_id
        self.next_id += 1
        self.sock.sendall(json.dumps({"method": method, "params": params,
                                      "id": msg_id}).encode())
        return msg_id

    def recv(self, timeout=5.0):
        """Returns (raw bytes, parsed message) of the next message."""
        dec = json.JSONDecoder()
        deadline = time.time() + timeout
        while True:
            text = self.buf.decode("utf-8", "surrogateescape").lstrip()
            skipped = len(self.buf) - len(text.encode("utf-8",
                                                      "surrogateescape"))
            if text:
                try:
                    obj, end = dec.raw_decode(text)
                    raw = text[:end].encode("utf-8", "surrogateescape")
                    self.buf = self.buf[skipped + len(raw):]
                    return raw, obj
                except ValueError:
                    pass
            left = deadline - time.time()
            if left <= 0:
                raise TimeoutError("no message from ovsdb-server")
            self.sock.settimeout(left)
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("ovsdb-server closed the connection")
            self.buf += data


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="chand-capture-")
    sock = os.path.join(tmp, "db.sock")
    db = os.path.join(tmp, "conf.db")
    env = dict(os.environ, OVS_RUNDIR=tmp, OVS_LOGDIR=tmp, OVS_DBDIR=tmp)
    server = None
    count = [0]

    def save(what, raw):
        count[0] += 1
        name = os.path.join(outdir, "ovs-%02d-%s" % (count[0], what))
        with open(name, "wb") as f:
            f.write(raw)

    def vsctl(*args):
        subprocess.run(["ovs-vsctl", "--db=unix:" + sock, "--no-wait"]
                       + list(args), check=True, env=env)

    try:
        subprocess.run(["ovsdb-tool", "create", db, SCHEMA], check=True)
        server = subprocess.Popen(
            ["ovsdb-server", "--remote=punix:" + sock,
             "--unixctl=" + os.path.join(tmp, "ctl"), "--no-chdir",
             "--log-file=" + os.path.join(tmp, "ovsdb-server.log"), db],
            env=env)
        for _ in range(100):
            if os.path.exists(sock):
                break
            time.sleep(0.05)

        c = Client(sock)
        requests = {
            "Interface": {"columns": ["name", "external_ids", "ofport"]},
            "Port": {"columns": ["name", "interfaces"]},
            "Bridge": {"columns": ["name", "ports"]},
        }
        c.send("monitor", ["Open_vSwitch", None, requests])
        raw, msg = c.recv()
        save("monitor-reply-empty", raw)
        script = [msg["result"]]

        vsctl("add-br", "br-int", "--", "set", "Bridge", "br-int",
              "datapath_type=netdev")
        vsctl("add-port", "br-int", "vnet7", "--",
              "set", "Interface", "vnet7", "type=internal",
              "external_ids:chand-vm=vm1", "external_ids:chand-id=7",
              "external_ids:chand-vid=100",
              "external_ids:chand-guest-ip=169.254.1.7")
        vsctl("set", "Interface", "vnet7", "external_ids:chand-id=8",
              "ofport_request=5")
        vsctl("remove", "Interface", "vnet7", "external_ids", "chand-vid")
        vsctl("del-port", "br-int", "vnet7")

        # Updates for each ovs-vsctl transaction (some send several).
        while True:
            try:
                raw, msg = c.recv(timeout=1.0)
            except (TimeoutError, socket.timeout):
                break
            if msg.get("method") == "update":
                save("update", raw)
                script.append(msg["params"][1])

        # A second monitor sees the current contents as a snapshot.
        c.send("monitor", ["Open_vSwitch", "m2", requests])
        raw, msg = c.recv()
        save("monitor-reply", raw)
        script += [None, [msg["result"]]]
        text = json.dumps(script, separators=(",", ":")).encode()
        with open(os.path.join(outdir, "ovs-script"), "wb") as f:
            f.write(text)
        with open(os.path.join(outdir, "ovs-script-typed"), "wb") as f:
            f.write(b" " + text)

        ok = c.send("transact", [
            "Open_vSwitch",
            {"op": "insert", "table": "Interface",
             "row": {"name": "vnet9",
                     "external_ids": ["map", [["chand-vm", "vm9"],
                                              ["chand-id", "9"]]]},
             "uuid-name": "row1"},
            {"op": "select", "table": "Bridge", "where": [],
             "columns": ["name"]},
            {"op": "comment", "comment": "chand capture"}])
        bad = c.send("transact", [
            "Open_vSwitch",
            {"op": "comment", "comment": "chand capture"},
            {"op": "insert", "table": "Bridge", "row": {"no_such": 1}}])
        wanted = {ok: "transact-reply", bad: "transact-error"}
        while wanted:
            raw, msg = c.recv()
            what = wanted.pop(msg.get("id"), None)
            if what:
                save(what, raw)
    finally:
        if server:
            server.terminate()
            server.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
