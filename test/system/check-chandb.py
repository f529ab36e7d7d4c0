#!/usr/bin/env python3
"""Checks that the Chan DB's observed state agrees with its desired state.

usage: ovsdb-client transact REMOTE '["Chan", select Record, select Channel]' \
         | check-chandb.py VM...

For each VM: its Channel row must say synced, and 'applied' must map exactly
the keys of the VM's desired state (its own records plus the all-VM ones it
does not override) to their versions.
"""
import json
import sys


def datum(d):
    if isinstance(d, list) and d and d[0] == "set":
        return d[1]
    if isinstance(d, list) and d and d[0] == "map":
        return dict(d[1])
    return d


reply = json.load(sys.stdin)
records, channels = reply[0]["rows"], reply[1]["rows"]
failed = False
for vm in sys.argv[1:]:
    desired = {}
    for r in records:
        if datum(r["vm"]) == []:
            desired.setdefault(r["key"], r["version"])
    for r in records:
        if datum(r["vm"]) == vm:
            desired[r["key"]] = r["version"]
    rows = [c for c in channels if c["vm"] == vm]
    if len(rows) != 1:
        print("%s: %d Channel rows" % (vm, len(rows)))
        failed = True
        continue
    ch = rows[0]
    applied = datum(ch["applied"])
    if applied != desired or not ch["synced"] or ch["state"] != "ready":
        failed = True
        print("%s: state=%s synced=%s applied %d keys, desired %d"
              % (vm, ch["state"], ch["synced"], len(applied), len(desired)))
        for k in sorted(set(desired) | set(applied)):
            if desired.get(k) != applied.get(k):
                print("  %s: applied %s, desired %s"
                      % (k, applied.get(k), desired.get(k)))
                break
    else:
        print("%s: Chan DB says %d records applied, in sync" % (vm, len(applied)))
sys.exit(1 if failed else 0)
