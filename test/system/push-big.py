#!/usr/bin/env python3
"""Writes one large record into the Chan DB over OVSDB JSON-RPC.

usage: push-big.py SOCKET_PATH VM KEY NBYTES

The value is a JSON string of NBYTES 'x' characters (too large for a
command-line argument, so not through chanctl or ovsdb-client).
"""
import json
import socket
import sys

path, vm, key, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
row = {"key": key, "vm": vm, "value": json.dumps("x" * n), "version": 1}
request = {"method": "transact", "id": 1,
           "params": ["Chan", {"op": "insert", "table": "Record", "row": row}]}
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(path)
s.sendall(json.dumps(request).encode())
buf = b""
decoder = json.JSONDecoder()
while True:
    chunk = s.recv(65536)
    if not chunk:
        sys.exit("connection closed before the reply")
    buf += chunk
    try:
        reply, _ = decoder.raw_decode(buf.decode())
    except ValueError:
        continue
    if reply.get("id") == 1:
        break
if reply.get("error") or any("error" in r for r in reply["result"]):
    sys.exit("transaction failed: %s" % reply)
