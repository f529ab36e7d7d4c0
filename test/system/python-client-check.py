#!/usr/bin/env python3
"""python-client-check.py -- the checks of test-python-client.sh: the chand
Python package (python/chand) against a real chand-guest.

usage: python-client-check.py VM WORKDIR INSTALL_DIR
  Runs inside VM's network namespace (the API is the abstract socket
  @chand-guest there), with the chand package installed in INSTALL_DIR
  (it must be imported from there, not from the source tree).  Makes the
  host's changes with the host's chanctl ($CHANCTL, with $CHAND_CHAN_DB and
  $CHAND_HOST_CTL): pushes, deletes, and reads the VM's Guest_Record rows
  ("chanctl published --vm VM --json").  WORKDIR is for files to register
  as objects.  Before it runs, the host pushed cfg/a "alpha", cfg/b
  {"n": 1}, other/x 1 and big, a string of 2 MiB.

Prints "ok: ..." or "FAIL: ..." per check; exits 1 if any failed.
"""

import hashlib
import json
import os
import random
import subprocess
import sys
import time

VM, WORK, INSTALL = sys.argv[1], sys.argv[2], sys.argv[3]
CHANCTL = os.environ["CHANCTL"]
failed = False


def check(what, cond, detail=""):
    global failed
    if cond:
        print("ok: " + what, flush=True)
    else:
        failed = True
        print("FAIL: %s%s" % (what, ": " + str(detail) if detail else ""),
              flush=True)
    return cond


def raises(what, exc, fn, *args, expect=None):
    """Checks that fn(*args) raises 'exc' (whose message holds 'expect');
    returns the exception."""
    try:
        fn(*args)
    except exc as e:
        return check("%s raises %s (%s)" % (what, exc.__name__, e),
                     expect is None or expect in str(e),
                     "message does not say %r" % expect) and e
    except Exception as e:
        check(what, False, "raised %s: %s" % (type(e).__name__, e))
        return None
    check(what, False, "no exception")
    return None


def host(*args):
    """Runs the host's chanctl; returns its output."""
    return subprocess.run([CHANCTL] + list(args), check=True,
                          capture_output=True, text=True).stdout


def host_records(prefix):
    """Returns {key: value} of VM's Guest_Record rows under 'prefix'."""
    rows = json.loads(host("published", "--vm", VM, "--json", prefix))
    return {r["key"]: r["value"] for r in rows}


def wait_for(cond, seconds=30):
    deadline = time.monotonic() + seconds
    while True:
        r = cond()
        if r or time.monotonic() > deadline:
            return r
        time.sleep(0.2)


def check_framing():
    """The stream reader alone: messages cut anywhere, escapes, strings
    holding braces, whitespace between messages."""
    from chand.jsonrpc import Reader
    msgs = [{"id": i, "result": {"s": 'q\\"}{][' * (i % 4), "l": [i, {}]}}
            for i in range(100)]
    data = b" \n".join(json.dumps(m).encode() for m in msgs)
    rnd = random.Random(1)
    ok = True
    for _ in range(20):
        r, out, i = Reader(), [], 0
        while i < len(data):
            n = rnd.randint(1, 40)
            r.feed(data[i:i + n])
            i += n
            while True:
                m = r.next_message()
                if m is None:
                    break
                out.append(m)
        ok = ok and out == msgs
    check("the reader splits messages cut at random places", ok)


def check_reads(c, chand):
    rec = c.get("cfg/a")
    check("get returns the pushed value", rec.value == "alpha"
          and rec.key == "cfg/a" and isinstance(rec.version, int), rec)
    check("get returns a JSON object value", c.get("cfg/b").value == {"n": 1})
    recs = c.list("cfg/")
    check("list(prefix) returns the prefix's records in key order",
          [(r.key, r.value) for r in recs]
          == [("cfg/a", "alpha"), ("cfg/b", {"n": 1})], recs)
    keys = [r.key for r in c.list()]
    check("list() returns every record", {"cfg/a", "cfg/b", "other/x", "big"}
          <= set(keys) and keys == sorted(keys), keys)
    big = c.get("big").value
    check("a 2 MiB value arrives whole", big == "x" * (2 * 1024 * 1024),
          len(big))
    e = raises("get of a missing key", chand.NotFound, c.get, "no/such/key",
               expect="not found")
    check("NotFound is a ChandError", isinstance(e, chand.ChandError))
    raises("get of an empty key", chand.InvalidParams, c.get, "",
           expect="invalid params")
    check("echo returns its params", c.echo(1, "a", {"b": None}, [True])
          == [1, "a", {"b": None}, [True]])
    st = c.status()
    check("status returns chand-guest's status", isinstance(st, dict)
          and "api" in st, sorted(st))


def check_watch(c, chand):
    w = c.watch("cfg/", initial=True)
    first = [w.get(timeout=5) for _ in range(2)]
    check("watch(initial=True) yields the current records first",
          [(x.key, x.op, x.value, x.initial) for x in first]
          == [("cfg/a", "put", "alpha", True), ("cfg/b", "put", {"n": 1},
                                                 True)], first)
    check("the watch's snapshot is the list", [r.key for r in w.snapshot]
          == ["cfg/a", "cfg/b"])
    check("nothing more before a change", w.get(timeout=0.5) is None)

    host("push", "--vm", VM, "other/y", "2")
    host("push", "--vm", VM, "cfg/c", '"gamma"')
    ch = w.get(timeout=30)
    check("a push after the watch starts is yielded (and not other/y)",
          ch is not None and (ch.key, ch.op, ch.value, ch.initial)
          == ("cfg/c", "put", "gamma", False), ch)
    check("its version is the record's", ch is not None
          and ch.version == c.get("cfg/c").version)
    host("delete", "--vm", VM, "cfg/a")
    ch = w.get(timeout=30)
    check("a delete is yielded", ch is not None and ch.key == "cfg/a"
          and ch.deleted and ch.value is None, ch)

    # Notifications that arrive while a call waits for its reply: a push
    # seen by another connection first, so that its notification is on
    # this one before the reply to get().
    host("push", "--vm", VM, "cfg/d", "4")
    with chand.Client() as other:
        seen = wait_for(lambda: other.list("cfg/d"))
    check("another client sees cfg/d", bool(seen))
    check("a call in between", c.get("cfg/b").value == {"n": 1})
    check("the notification that came during the call is queued",
          w.pending() == 1, w.pending())
    # (next() would wait forever for a change that was lost.)
    ch = next(w) if w.pending() else w.get(timeout=5)
    check("iteration yields it", ch is not None
          and (ch.key, ch.value) == ("cfg/d", 4), ch)

    # A change between the watch's reply and the list's, made certain by
    # a push done inside list(): it is in the list, and must not be
    # yielded a second time.
    host("push", "--vm", VM, "race/a", "1")
    real_list = c.list

    def list_after_a_push(prefix=None):
        host("push", "--vm", VM, "race/b", "2")
        with chand.Client() as other:
            wait_for(lambda: other.list("race/b"))
        return real_list(prefix)

    c.list = list_after_a_push
    try:
        rw = c.watch("race/", initial=True)
    finally:
        del c.list
    got = [rw.get(timeout=5) for _ in range(2)]
    check("a change made between watch and list is in the initial records",
          [(x.key, x.value, x.initial) for x in got if x]
          == [("race/a", 1, True), ("race/b", 2, True)], got)
    extra = rw.get(timeout=1)
    check("and is not yielded again", extra is None, extra)
    rw.close()

    # Two watches on one client: each gets the changes under its prefix.
    w2 = c.watch("other/")
    host("push", "--vm", VM, "other/z", "3", "cfg/e", "5")
    a, b = w.get(timeout=30), w2.get(timeout=30)
    check("two watches on one client each get their changes",
          a is not None and b is not None and (a.key, b.key)
          == ("cfg/e", "other/z"), (a, b))
    w2.close()
    w.close()


def check_publish(c, chand):
    v1 = c.publish("app/state", {"ready": True, "n": [1, 2]})
    check("publish returns a version", isinstance(v1, int) and v1 > 0, v1)
    p = c.published("app/")
    check("published() lists it", [(r.key, r.value) for r in p.records]
          == [("app/state", {"ready": True, "n": [1, 2]})]
          and p.count == 1, p)
    got = wait_for(lambda: host_records("app/").get("app/state"))
    check("the host's Guest_Record has the publication",
          got == {"ready": True, "n": [1, 2]}, got)
    check("the publication is delivered",
          wait_for(lambda: not c.published("app/").records[0].pending))
    v2 = c.unpublish("app/state")
    check("unpublish returns a later version", v2 > v1, (v1, v2))
    gone = wait_for(lambda: "app/state" not in host_records("app/"))
    check("unpublish withdraws it from the host", gone)
    raises("unpublish of a withdrawn key", chand.NotFound, c.unpublish,
           "app/state", expect="not found")
    raises("publish of an empty key", chand.InvalidParams, c.publish, "", 1,
           expect="invalid params: bad key")
    raises("publish under from/", chand.InvalidParams, c.publish, "from/x",
           1, expect="reserved key")
    raises("publish of a NaN", chand.InvalidParams, c.publish, "app/nan",
           float("nan"))
    check("the connection still works after refusals",
          c.get("cfg/b").value == {"n": 1})


def check_objects(c, chand):
    path = os.path.join(WORK, "file.bin")
    data = os.urandom(300000)
    with open(path, "wb") as f:
        f.write(data)
    digest = hashlib.sha256(data).hexdigest()
    # A relative path with "..": made absolute and normalized.
    os.makedirs(os.path.join(WORK, "sub"), exist_ok=True)
    os.chdir(WORK)
    added = c.object_add("sub/../file.bin", flags=["clean"],
                         params={"src": "python"})
    check("object_add computes the digest and size",
          (added.path, added.digest, added.size, added.key)
          == (path, digest, len(data), "obj/" + digest), added)
    objs = c.objects()
    check("objects() lists it", [(o.path, o.digest, o.size, o.flags, o.params)
                                 for o in objs]
          == [(path, digest, len(data), ["clean"], {"src": "python"})], objs)
    check("objects(digest) finds it", [o.path for o in c.objects(digest)]
          == [path])
    got = wait_for(lambda: host_records("obj/").get("obj/" + digest))
    check("the host has obj/DIGEST", got is not None and got.get("paths")
          == [path] and got.get("size") == len(data), got)
    os.symlink(path, os.path.join(WORK, "link"))
    raises("object_add of a symbolic link", chand.InvalidParams,
           c.object_add, os.path.join(WORK, "link"), expect="symbolic link")
    raises("object_add of a directory", chand.InvalidParams, c.object_add,
           os.path.join(WORK, "sub"), expect="not a regular file")
    check("object_remove returns the path", c.object_remove(path) == path)
    gone = wait_for(lambda: "obj/" + digest not in host_records("obj/"))
    check("the host's obj/DIGEST is withdrawn", gone)
    raises("object_remove of a path not registered", chand.NotFound,
           c.object_remove, path, expect="not found")


def check_errors(chand):
    e = raises("a wrong abstract socket", chand.Unavailable, chand.Client,
               "@chand-guest-nosuch",
               expect="chand-guest is not running or its API socket "
               "@chand-guest-nosuch is not reachable")
    check("Unavailable is a ConnectionError",
          isinstance(e, ConnectionError))
    raises("a wrong socket file", chand.Unavailable, chand.Client,
           os.path.join(WORK, "no.sock"), expect="is not reachable")
    c = chand.Client()
    c._sock.sendall(b"[not json")       # chand-guest closes on bad JSON.
    raises("a call on a connection chand-guest closed",
           chand.ConnectionLost, c.get, "cfg/b", expect="lost")
    raises("a call after close()", chand.ConnectionLost, c.get, "cfg/b",
           expect="closed")
    c.close()


def main():
    import chand
    where = os.path.dirname(os.path.abspath(chand.__file__))
    check("chand is imported from the installed copy (%s)" % where,
          where.startswith(os.path.abspath(INSTALL)))
    check_framing()
    with chand.Client(timeout=10) as c:
        check("the default socket is @chand-guest", c.path == "@chand-guest")
        check_reads(c, chand)
        check_watch(c, chand)
        check_publish(c, chand)
        check_objects(c, chand)
    check_errors(chand)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
