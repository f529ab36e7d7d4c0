#!/usr/bin/env python3
"""Helpers for the clustered Chan DB tests (test/system/test-cluster-*.sh):
an OVSDB client over ssl: (or unix:/tcp:) with several remotes, a bulk
writer that survives the loss of the member it talks to (or of the
leader), and exact checks of guest datastores, versions included.

Push logs are in the format of push-model.py and fault-tool.py (the
arguments of a chanctl command), one committed operation per line:
    push [--vm VM] KEY JSON
    delete [--vm VM] KEY
Each writer owns its keys, so logs can be concatenated.  A key's version
is the number of pushes since it was last created (chanctl's rule: a new
record gets version 1, an update the version plus one).

TLS: the environment gives the client's files: CL_KEY, CL_CERT, CL_CACERT
(CL_CERT empty: no client certificate).

usage:
  cluster-tool.py bulk REMOTES LOG PREFIX SEED N BATCH PAUSE [--no-all] VM...
      Commits N operations on keys PREFIX... in transactions of BATCH
      (sleeping PAUSE seconds between them), aimed at one of the VMs or at
      all (vm empty; not with --no-all), appending each committed
      transaction to LOG.  When
      a transaction's outcome is unknown (the connection broke, the
      cluster lost its leader) it reconnects, to any member, and sends the
      same transaction again: updates and deletes are idempotent, and an
      insert that fails with a constraint violation shows that the first
      attempt committed (no one else writes these keys).
  cluster-tool.py expect LOG... -- VM...
      Prints {"vm": {key: [value, version]}}, the desired state.
  cluster-tool.py compare EXPECT_JSON VM GUEST_DB
      Exits 1, listing the differences, unless VM's datastore holds
      exactly the expected keys, values and versions.
  cluster-tool.py chandb-check REMOTES EXPECT_JSON VM...
      Exits 1 unless the Chan DB's Record table gives each VM exactly the
      expected records (per-VM records over the ones for all VMs).
  cluster-tool.py transact REMOTES JSON_OPS
      One transaction (a JSON array of operations on "Chan"); prints the
      result.
  cluster-tool.py probe REMOTE
      Connects to one remote and asks for its databases (list_dbs), 10 s
      at most; prints the answer or the error; exits 1 on an error.
  cluster-tool.py channels REMOTES [VM]
      Prints the Channel rows (JSON list, sorted by vm, claim).
"""
import json
import os
import random
import sqlite3
import sys
import time

sys.dont_write_bytecode = True          # nothing left in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ovsdb_rpc import Conn, RpcError, connect  # noqa: E402
from push_log import next_batch, read_log, versions  # noqa: E402


def model(logs):
    """(key, vm) -> [value, version] after the logs."""
    live = {}
    for path in logs:
        for verb, vm, key, value in read_log(path):
            if verb == "push":
                old = live.get((key, vm))
                live[(key, vm)] = [value, old[1] + 1 if old else 1]
            else:
                live.pop((key, vm), None)
    return live


def merged(live, vms):
    out = {}
    for vm in vms:
        state = {k: v for (k, t), v in live.items() if t is None}
        state.update({k: v for (k, t), v in live.items() if t == vm})
        out[vm] = state
    return out


def cmd_bulk(remotes, log, prefix, seed, n, batch, pause, vms):
    targets = [None] + vms
    if vms[:1] == ["--no-all"]:
        vms = vms[1:]
        targets = vms
    rng = random.Random(seed)
    live = versions(log)                # (key, vm) -> version
    serial = sum(1 for _ in read_log(log))
    done = 0
    retries = 0
    conn, at = connect(remotes, time.time() + 30)
    while done < n:
        ops, lines = next_batch(rng, live, targets, prefix, serial,
                                min(batch, n - done), accents=True)
        uncertain = False
        deadline = time.time() + 90
        while True:
            try:
                result = conn.transact(ops)
            except (OSError, RpcError) as e:
                print("bulk: %s: %s; reconnecting" % (conn.remote, e),
                      file=sys.stderr)
                conn.close()
                conn, at = connect(remotes, deadline, at + 1)
                uncertain = True
                retries += 1
                continue
            errors = [r for r in result if isinstance(r, dict) and "error" in r]
            if not errors and len(result) >= len(ops):
                bad = [r for r in result[:len(ops)]
                       if not uncertain and r.get("count", 1) != 1]
                if bad:
                    sys.exit("bulk: unexpected result: %s" % json.dumps(bad[:3]))
                break
            err = errors[0]["error"] if errors else "short result"
            if uncertain and err == "constraint violation":
                # The earlier attempt committed: our inserts are there.
                print("bulk: earlier attempt had committed", file=sys.stderr)
                break
            # The cluster has no leader right now, or the member lost it.
            print("bulk: %s: %s; retrying" % (conn.remote, json.dumps(errors[:1] or result[-1:])),
                  file=sys.stderr)
            if time.time() > deadline:
                sys.exit("bulk: transaction keeps failing: %s" % json.dumps(errors[:2]))
            uncertain = True
            retries += 1
            time.sleep(0.2)
            conn.close()
            conn, at = connect(remotes, deadline, at + 1)
        with open(log, "a") as f:
            f.writelines(lines)
        serial += len(ops)
        done += len(ops)
        if pause and done < n:
            time.sleep(pause)
    print("bulk: %d operations committed, %d retries" % (done, retries),
          file=sys.stderr)


def cmd_expect(args):
    sep = args.index("--")
    logs, vms = args[:sep], args[sep + 1:]
    print(json.dumps(merged(model(logs), vms), sort_keys=True,
                     ensure_ascii=False))


def describe_diff(name, expected, actual):
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    wrong = sorted(k for k in set(expected) & set(actual)
                   if expected[k] != actual[k])
    if not (missing or extra or wrong):
        return None
    out = ["%s: %d expected, %d there; %d missing, %d extra, %d wrong"
           % (name, len(expected), len(actual), len(missing), len(extra),
              len(wrong))]
    for k in missing[:10]:
        out.append("  missing %s (want %r)" % (k, expected[k]))
    for k in extra[:10]:
        out.append("  extra %s = %r" % (k, actual[k]))
    for k in wrong[:10]:
        out.append("  wrong %s: have %r, want %r" % (k, actual[k], expected[k]))
    return "\n".join(out)


def cmd_compare(expect_path, vm, db_path):
    expected = json.load(open(expect_path))[vm]
    db = sqlite3.connect("file:%s?mode=ro" % db_path, uri=True)
    actual = {k: [json.loads(v), ver] for k, v, ver in
              db.execute("SELECT key, value, version FROM records")}
    diff = describe_diff(vm, expected, actual)
    if diff:
        print(diff)
        sys.exit(1)
    print("%s: %d records, keys, values and versions exactly as desired"
          % (vm, len(actual)))


def cmd_chandb_check(remotes, expect_path, vms):
    expected = json.load(open(expect_path))
    conn, _ = connect(remotes, time.time() + 30)
    rows = conn.transact([{"op": "select", "table": "Record", "where": [],
                           "columns": ["key", "vm", "value", "version"]}])
    live = {}
    for r in rows[0]["rows"]:
        vm = r["vm"] if isinstance(r["vm"], str) else None
        live[(r["key"], vm)] = [json.loads(r["value"]), r["version"]]
    ok = True
    for vm in vms:
        diff = describe_diff("Chan DB for " + vm, expected[vm],
                             merged(live, [vm])[vm])
        if diff:
            print(diff)
            ok = False
    if not ok:
        sys.exit(1)
    print("the Chan DB's Record table is exactly the committed pushes")


def cmd_transact(remotes, ops):
    conn, _ = connect(remotes, time.time() + 30)
    print(json.dumps(conn.transact(json.loads(ops))))


def cmd_channels(remotes, vm):
    conn, _ = connect(remotes, time.time() + 30)
    where = [["vm", "==", vm]] if vm else []
    rows = conn.transact([{"op": "select", "table": "Channel",
                           "where": where}])[0]["rows"]
    for r in rows:
        for col in ("statistics", "errors", "applied", "external_ids"):
            if isinstance(r.get(col), list) and r[col][0] == "map":
                r[col] = {k: v for k, v in r[col][1]}
        for col, v in list(r.items()):
            if isinstance(v, list) and v[:1] == ["set"] and v[1] == []:
                r[col] = None
    rows.sort(key=lambda r: (r.get("vm", ""), r.get("claim") or 0))
    print(json.dumps(rows, sort_keys=True))


def cmd_probe(remote):
    try:
        c = Conn(remote, timeout=10)
        print("answered: %s" % json.dumps(c.call("list_dbs", [])))
    except (OSError, RpcError, ValueError) as e:
        print("refused: %s: %s" % (type(e).__name__, e))
        sys.exit(1)


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "bulk":
        cmd_bulk(args[0], args[1], args[2], int(args[3]), int(args[4]),
                 int(args[5]), float(args[6]), args[7:])
    elif cmd == "expect":
        cmd_expect(args)
    elif cmd == "compare":
        cmd_compare(*args)
    elif cmd == "chandb-check":
        cmd_chandb_check(args[0], args[1], args[2:])
    elif cmd == "transact":
        cmd_transact(*args)
    elif cmd == "probe":
        cmd_probe(args[0])
    elif cmd == "channels":
        cmd_channels(args[0], args[1] if len(args) > 1 else None)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
