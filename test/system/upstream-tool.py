#!/usr/bin/env python3
"""upstream-tool.py -- the guest applications and the checks of the
upstream system tests (test-upstream.sh): records a VM publishes.

usage:
  upstream-tool.py work MODEL PREFIX SEED N [--api PATH] [--pause S]
      Inside a VM: N operations on keys PREFIX<n> through chand-guest's
      local API (JSON-RPC on the abstract socket @chand-guest): mostly new
      publications, some updates of keys already published, some
      withdrawals.  A request whose connection breaks (chand-guest killed)
      is sent again once the daemon answers: a publication again with the
      same value, a withdrawal again (an "unknown key" answer then means the
      first one went through).  MODEL (JSON: key -> value of every record
      that must be published, updated after every operation) is the
      expected state, kept across runs.

  upstream-tool.py published [PREFIX] [--api PATH]
      Inside a VM: prints {"records": {key: value}, "pending": n} of what
      chand-guest holds as published (withdrawn records left out).

  upstream-tool.py call METHOD JSON_PARAMS [--api PATH]
      Inside a VM: one request; prints the reply's result, or exits 1 with
      the error on stderr.

  upstream-tool.py guest-records DB VM [PREFIX]
      On the host: prints {key: value} of VM's Guest_Record rows.

  upstream-tool.py compare WHAT A.json B.json
      Prints "ok: WHAT" if the two JSON files hold equal objects, else
      "FAIL: WHAT" with the differences; exit status 0 or 1.
"""

import json
import random
import socket
import subprocess
import sys
import time

API = "@chand-guest"


class Api:
    def __init__(self, path=API):
        self.path = path
        self.sock = None
        self.buf = ""
        self.next_id = 0

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        addr = "\0" + self.path[1:] if self.path.startswith("@") else self.path
        s.connect(addr)
        self.sock = s
        self.buf = ""

    def close(self):
        if self.sock:
            self.sock.close()
        self.sock = None

    def call(self, method, params, timeout=10):
        """Returns (result, error); raises OSError if the connection
        breaks."""
        if not self.sock:
            self.connect()
        self.next_id += 1
        req = {"method": method, "params": params, "id": self.next_id}
        self.sock.sendall(json.dumps(req).encode())
        self.sock.settimeout(timeout)
        dec = json.JSONDecoder()
        while True:
            text = self.buf.lstrip()
            if text:
                try:
                    obj, end = dec.raw_decode(text)
                except ValueError:
                    obj = None
                if obj is not None:
                    self.buf = text[end:]
                    if obj.get("id") == self.next_id:
                        return obj.get("result"), obj.get("error")
                    continue    # A notification or an old reply.
            data = self.sock.recv(65536)
            if not data:
                raise OSError("connection closed")
            self.buf += data.decode()


def call_retry(api, method, params, deadline=120):
    """Calls until the daemon answers; returns (result, error, retried)."""
    retried = False
    t_end = time.time() + deadline
    while True:
        try:
            res, err = api.call(method, params)
            return res, err, retried
        except OSError:
            api.close()
            retried = True
            if time.time() > t_end:
                raise
            time.sleep(0.2)


def cmd_work(model_path, prefix, seed, n, api_path, pause):
    rnd = random.Random(seed)
    try:
        model = json.load(open(model_path))
    except (OSError, ValueError):
        model = {}
    api = Api(api_path)
    counter = 0
    retries = 0
    for i in range(n):
        mine = [k for k in model if k.startswith(prefix)]
        r = rnd.random()
        if mine and r < 0.1:
            key = rnd.choice(mine)
            res, err, retried = call_retry(api, "unpublish", [key])
            retries += retried
            if err and not (retried and "unknown" in str(err)):
                print("unpublish %s: %s" % (key, err), file=sys.stderr)
                return 1
            del model[key]
        else:
            if mine and r < 0.3:
                key = rnd.choice(mine)
            else:
                counter += 1
                key = "%s%d-%d" % (prefix, seed, counter)
            value = {"n": i, "seed": seed, "pad": "x" * rnd.randint(0, 200)}
            res, err, retried = call_retry(api, "publish", [key, value])
            retries += retried
            if err:
                print("publish %s: %s" % (key, err), file=sys.stderr)
                return 1
            model[key] = value
        if i % 50 == 0:
            json.dump(model, open(model_path, "w"), sort_keys=True)
        if pause:
            time.sleep(pause)
    json.dump(model, open(model_path, "w"), sort_keys=True)
    print(json.dumps({"ops": n, "records": len(model), "retries": retries}))
    return 0


def cmd_published(prefix, api_path):
    api = Api(api_path)
    res, err, _ = call_retry(api, "published", [prefix] if prefix else [],
                             deadline=30)
    if err:
        print(err, file=sys.stderr)
        return 1
    records = {}
    pending = 0
    for r in res["records"]:
        if r.get("state") == "pending":
            pending += 1
        if not r.get("deleted"):
            records[r["key"]] = r["value"]
    print(json.dumps({"records": records, "pending": pending},
                     sort_keys=True))
    return 0


def cmd_call(method, params, api_path):
    api = Api(api_path)
    res, err = api.call(method, json.loads(params))
    if err:
        print(json.dumps(err), file=sys.stderr)
        return 1
    print(json.dumps(res, sort_keys=True))
    return 0


def cmd_guest_records(db, vm, prefix):
    out = subprocess.run(
        ["ovsdb-client", "transact", db, json.dumps(
            ["Chan", {"op": "select", "table": "Guest_Record",
                      "where": [["vm", "==", vm]],
                      "columns": ["key", "value"]}])],
        check=True, stdout=subprocess.PIPE, text=True).stdout
    rows = json.loads(out)[0]["rows"]
    print(json.dumps({r["key"]: json.loads(r["value"]) for r in rows
                      if r["key"].startswith(prefix)}, sort_keys=True))
    return 0


def cmd_compare(what, a, b):
    ja, jb = json.load(open(a)), json.load(open(b))
    if ja == jb:
        print("ok: %s (%d records)" % (what, len(ja)))
        return 0
    only_a = sorted(set(ja) - set(jb))
    only_b = sorted(set(jb) - set(ja))
    diff = sorted(k for k in set(ja) & set(jb) if ja[k] != jb[k])
    print("FAIL: %s: %d only in %s %s, %d only in %s %s, %d differ %s"
          % (what, len(only_a), a, only_a[:5], len(only_b), b, only_b[:5],
             len(diff), diff[:5]))
    return 1


def opt(args, name, default=None):
    if name in args:
        i = args.index(name)
        v = args[i + 1]
        del args[i:i + 2]
        return v
    return default


def main(argv):
    args = argv[1:]
    api_path = opt(args, "--api", API)
    pause = float(opt(args, "--pause", "0"))
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    cmd = args[0]
    if cmd == "work" and len(args) == 5:
        return cmd_work(args[1], args[2], int(args[3]), int(args[4]),
                        api_path, pause)
    if cmd == "published" and len(args) <= 2:
        return cmd_published(args[1] if len(args) > 1 else "", api_path)
    if cmd == "call" and len(args) == 3:
        return cmd_call(args[1], args[2], api_path)
    if cmd == "guest-records" and len(args) in (3, 4):
        return cmd_guest_records(args[1], args[2],
                                 args[3] if len(args) > 3 else "")
    if cmd == "compare" and len(args) == 4:
        return cmd_compare(args[1], args[2], args[3])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
