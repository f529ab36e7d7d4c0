#!/usr/bin/env python3
"""kvp-tool.py: reads and writes Hyper-V KVP pool files the way Linux's
hv_kvp_daemon and the guest tools do, independently of chand: records of a
512-byte key and a 2,048-byte value (struct "512s2048s"), each a
NUL-terminated string, under an fcntl record lock (lockf) over the whole
file.

  kvp-tool.py read DIR POOL          {name: value} of DIR/.kvp_pool_POOL as
                                     JSON (exit 1 if the file is not whole
                                     records, or a field has no NUL)
  kvp-tool.py set DIR POOL NAME VALUE
                                     sets NAME (in place, or appended)
  kvp-tool.py remove DIR POOL NAME   removes NAME (later records move up)
"""

import fcntl
import json
import os
import struct
import sys

REC = struct.Struct("512s2048s")


def path_of(d, pool):
    return os.path.join(d, ".kvp_pool_%d" % int(pool))


def parse(data):
    if len(data) % REC.size:
        raise ValueError("%d bytes: not whole records" % len(data))
    out = []
    for off in range(0, len(data), REC.size):
        k, v = REC.unpack_from(data, off)
        if b"\0" not in k or b"\0" not in v:
            raise ValueError("record at %d: a field without its NUL" % off)
        out.append((k.split(b"\0", 1)[0], v.split(b"\0", 1)[0]))
    return out


def cmd_read(d, pool):
    p = path_of(d, pool)
    if not os.path.exists(p):
        print("{}")
        return 0
    with open(p, "rb") as f:
        fcntl.lockf(f, fcntl.LOCK_SH)
        data = f.read()
        fcntl.lockf(f, fcntl.LOCK_UN)
    try:
        recs = parse(data)
    except ValueError as e:
        print("kvp-tool: %s: %s" % (p, e), file=sys.stderr)
        return 1
    print(json.dumps({k.decode(): v.decode() for k, v in recs},
                     sort_keys=True))
    return 0


def modify(d, pool, name, value):
    p = path_of(d, pool)
    fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
    with os.fdopen(fd, "r+b") as f:
        fcntl.lockf(f, fcntl.LOCK_EX)
        recs = parse(f.read())
        key = name.encode()
        i = next((i for i, r in enumerate(recs) if r[0] == key), None)
        if value is None:
            if i is not None:
                del recs[i]
        elif i is None:
            recs.append((key, value.encode()))
        else:
            recs[i] = (key, value.encode())
        f.seek(0)
        f.write(b"".join(REC.pack(k, v) for k, v in recs))
        f.truncate()
        f.flush()
        fcntl.lockf(f, fcntl.LOCK_UN)
    return 0


def main(argv):
    if len(argv) == 4 and argv[1] == "read":
        return cmd_read(argv[2], argv[3])
    if len(argv) == 6 and argv[1] == "set":
        return modify(argv[2], argv[3], argv[4], argv[5])
    if len(argv) == 5 and argv[1] == "remove":
        return modify(argv[2], argv[3], argv[4], None)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
