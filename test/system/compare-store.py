#!/usr/bin/env python3
"""Compares a guest datastore with the expected state.

usage: compare-store.py EXPECT_JSON VM DB_PATH
Exits 1 and prints the differences if the store's records (key -> JSON value)
are not exactly the expected ones for VM.
"""
import json
import sqlite3
import sys

expected = json.load(open(sys.argv[1]))[sys.argv[2]]
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[3], uri=True)
actual = {k: json.loads(v) for k, v in db.execute("SELECT key, value FROM records")}
missing = sorted(set(expected) - set(actual))
extra = sorted(set(actual) - set(expected))
wrong = sorted(k for k in set(expected) & set(actual) if expected[k] != actual[k])
if missing or extra or wrong:
    print("%s: %d expected, %d in store" % (sys.argv[2], len(expected), len(actual)))
    for k in missing[:10]:
        print("  missing %s (want %r)" % (k, expected[k]))
    for k in extra[:10]:
        print("  extra %s = %r" % (k, actual[k]))
    for k in wrong[:10]:
        print("  wrong %s: have %r, want %r" % (k, actual[k], expected[k]))
    sys.exit(1)
print("%s: %d records, exactly as aimed" % (sys.argv[2], len(actual)))
