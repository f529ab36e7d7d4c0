#!/usr/bin/env python3
"""Helpers for the fault tests (test/system/test-fault-*.sh).

Push logs: every writer appends the operations it committed, one per line,
in the format of push-model.py (the arguments of a chanctl command):
    push [--vm VM] KEY JSON
    delete [--vm VM] KEY
Each writer owns its keys, so the logs of several writers can be
concatenated in any order and still give the desired state
(push-model.py --expect) and the history of every key.

usage:
  fault-tool.py bulk DB LOG PREFIX SEED N BATCH PAUSE VM...
      Commits N operations on keys PREFIX... in transactions of BATCH
      operations (sleeping PAUSE seconds between them), appending each
      committed transaction to LOG.  Mostly new records (aimed at one of
      the VMs or at all), with updates and deletes of earlier ones.  The
      writes are what chanctl would do: a new record gets version 1, an
      update the version plus one.

  fault-tool.py midpush DB VM MIN_APPLIED TIMEOUT
      Waits until VM's Channel row shows applied_count >= MIN_APPLIED and
      applied_count < desired_count (a push under way), prints the counts
      and exits 0; exits 1 after TIMEOUT seconds, or at once if the channel
      caught up first (the moment for a mid-push fault was missed).

  fault-tool.py applies VM GUEST_DB LOG...
      Exactly-once check on a guest datastore: for each key, the number of
      changes the store applied to it (records.apply_count) must not
      exceed the number of times the state aimed at VM changed to a new
      present value, as the logs tell.  Prints a summary; exits 1 on a
      violation.

  fault-tool.py guest-counters GUEST_DB
      Prints "frames_applied ops_applied position host_epoch guest_epoch".

  fault-tool.py json-get PATH...
      Reads JSON on stdin, prints the member at each dotted PATH (one per
      line; "-" if absent).
"""
import json
import random
import os
import signal
import sqlite3
import sys
import time

sys.dont_write_bytecode = True          # nothing left in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ovsdb_rpc import Conn, connect  # noqa: E402
from push_log import next_batch, read_log, versions, vm_cond  # noqa: E402


def committed(conn, op, live):
    """Whether the transaction whose first operation is 'op' committed,
    from the state of the record it touched ('live' is the state after
    it)."""
    if op["op"] == "insert":
        key = op["row"]["key"]
        vm = op["row"].get("vm")
    else:
        key, vm = op["where"][0][2], op["where"][1][2]
        vm = vm if isinstance(vm, str) else None
    rows = conn.transact([{"op": "select", "table": "Record",
                           "where": [["key", "==", key], vm_cond(vm)],
                           "columns": ["version"]}])[0]["rows"]
    want = live.get((key, vm))
    return (rows[0]["version"] == want) if rows else want is None


def cmd_bulk(db, log, prefix, seed, n, batch, pause, vms):
    rng = random.Random(seed)
    live = versions(log)                # (key, vm) -> version
    serial = sum(1 for _ in read_log(log))
    done = 0
    conn = Conn(db, timeout=60)
    while done < n:
        ops, lines = next_batch(rng, live, [None] + vms, prefix, serial,
                                min(batch, n - done))
        try:
            result = conn.transact(ops)
        except (OSError, RuntimeError, ValueError) as e:
            # ovsdb-server went away (a fault test restarts it): reconnect,
            # then find out whether the transaction committed.
            print("bulk: %s; reconnecting" % e, file=sys.stderr)
            conn, _ = connect(db, time.time() + 30, timeout=60)
            if committed(conn, ops[0], live):
                result = [{"count": 1}] * len(ops)
            else:
                result = conn.transact(ops)
        bad = [r for r in result if not isinstance(r, dict) or "error" in r
               or r.get("count", 1) != 1]
        if bad or len(result) != len(ops):
            sys.exit("bulk: transaction failed: %s" % json.dumps(bad[:3]))
        with open(log, "a") as f:
            f.writelines(lines)
        serial += len(ops)
        done += len(ops)
        if pause and done < n:
            time.sleep(pause)


def channel_row(conn, vm):
    rows = conn.transact([{"op": "select", "table": "Channel",
                       "where": [["vm", "==", vm]],
                       "columns": ["applied_count", "desired_count",
                                   "synced", "state"]}])[0]["rows"]
    return rows[0] if rows else None


def pid_of(pidfile, prog):
    """The pid in 'pidfile' if that process runs 'prog', else None."""
    try:
        pid = int(open(pidfile).read().strip())
        cmdline = open("/proc/%d/cmdline" % pid, "rb").read()
    except (OSError, ValueError):
        return None
    return pid if prog.encode() in cmdline else None


def cmd_midpush(db, ctl, vm, min_applied, min_outstanding, timeout,
                victim=None):
    pid = None
    if victim:
        pid = pid_of(*victim)
        if not pid:
            print("%s: no %s running (pidfile %s)" % (vm, victim[1],
                                                      victim[0]))
            return 1
    deadline = time.time() + timeout
    row = show = None
    conn = Conn(db, timeout=60)
    host = Conn("unix:" + ctl, timeout=60)
    while time.time() < deadline:
        row = channel_row(conn, vm)
        if row and row["applied_count"] >= min_applied:
            # The Channel row is written every 200 ms while records flow,
            # the host's own view is live: a push to one VM is delivered in tens of ms.
            show = json.loads(host.call("channel/show", [vm]))["counters"]
            if show["queued_msgs"] >= min_outstanding:
                if pid:
                    os.kill(pid, signal.SIGKILL)
                print("%s: mid-push: chand-host has %d messages queued (%d "
                      "frames in flight), %d frames sent, %d acked; Channel "
                      "row shows applied_count %d, desired_count %d"
                      % (vm, show["queued_msgs"], show["in_flight"],
                         show["frames_sent"], show["frames_acked"],
                         row["applied_count"], row["desired_count"])
                      + ("; killed %s (pid %d, SIGKILL) at once"
                         % (victim[1], pid) if pid else ""))
                print("%d %d" % (show["frames_sent"], show["frames_acked"]))
                return 0
        time.sleep(0.002)
    print("%s: no push under way within %g s (last row: %s, host: %s)"
          % (vm, timeout, row, show and {k: show[k] for k in
                                         ("in_flight", "queued_msgs")}))
    return 1


def changes_per_key(logs, vm):
    """For each key, how many times the state aimed at 'vm' changed to a
    new present value (a VM's own record overrides the all-VM one)."""
    own, common = {}, {}                # key -> (version, value)
    changes = {}
    for log in logs:
        for verb, target, key, value in read_log(log):
            if target is not None and target != vm:
                continue
            table = own if target else common
            before = ("own", own[key]) if key in own else (
                ("all", common[key]) if key in common else None)
            if verb == "push":
                version = table[key][0] + 1 if key in table else 1
                table[key] = (version, json.dumps(value, sort_keys=True))
            else:
                table.pop(key, None)
            after = ("own", own[key]) if key in own else (
                ("all", common[key]) if key in common else None)
            if after is not None and after != before:
                changes[key] = changes.get(key, 0) + 1
    return changes


def cmd_applies(vm, path, logs):
    changes = changes_per_key(logs, vm)
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    rows = db.execute("SELECT key, apply_count FROM records").fetchall()
    bad = [(k, n, changes.get(k, 0)) for k, n in rows
           if n > changes.get(k, 0)]
    total = sum(n for _, n in rows)
    bound = sum(changes.get(k, 0) for k, _ in rows)
    multi = sum(1 for k, _ in rows if changes.get(k, 0) > 1)
    if bad:
        print("%s: %d of %d keys applied more often than they changed:"
              % (vm, len(bad), len(rows)))
        for k, n, c in sorted(bad)[:10]:
            print("  %s: apply_count %d, changed %d times" % (k, n, c))
        return 1
    print("%s: %d keys, %d applies <= %d changes (%d keys changed more "
          "than once): none applied twice" % (vm, len(rows), total, bound,
                                              multi))
    return 0


def cmd_guest_counters(path):
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    row = db.execute("SELECT frames_applied, ops_applied, position,"
                     " host_epoch, guest_epoch FROM channel").fetchone()
    print(" ".join(str(x) for x in row))
    return 0


def cmd_json_get(paths):
    j = json.load(sys.stdin)
    for p in paths:
        v = j
        for part in p.split("."):
            v = v.get(part) if isinstance(v, dict) else None
        print("-" if v is None else json.dumps(v) if not isinstance(v, str)
              else v)
    return 0


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "bulk":
        db, log, prefix, seed, n, batch, pause = args[:7]
        cmd_bulk(db, log, prefix, int(seed), int(n), int(batch),
                 float(pause), args[7:])
        return 0
    if cmd == "midpush":
        return cmd_midpush(args[0], args[1], args[2], int(args[3]),
                           int(args[4]), float(args[5]),
                           args[6:8] if len(args) >= 8 else None)
    if cmd == "applies":
        return cmd_applies(args[0], args[1], args[2:])
    if cmd == "guest-counters":
        return cmd_guest_counters(args[0])
    if cmd == "json-get":
        return cmd_json_get(args)
    sys.exit("fault-tool.py: unknown command %s" % cmd)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
