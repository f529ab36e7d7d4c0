#!/usr/bin/env python3
"""idl-tool.py -- drives the Chan DB with the Open vSwitch Python IDL
(python3-openvswitch's ovs.db.idl), the way an operator's own control
plane would: no chand code involved.  Used by test-python-idl.sh.

  idl-tool.py push REMOTE SCHEMA VM KEY JSON
      Sets the desired record KEY for VM (Record row with key KEY and
      vm [VM]) to JSON, as `chanctl push --vm VM KEY JSON` does: inserts
      the row with version 1, or updates value and version + 1 of the one
      there, verifying that the version read is still the one in the
      database (the transaction is retried if another writer changed it).
      Prints the new version.

  idl-tool.py wait-applied REMOTE SCHEMA VM KEY VERSION SECONDS
      Waits until VM's Channel row says KEY is applied at VERSION or later
      (Channel.applied), then prints "applied KEY VERSION state STATE".
      Exits 1 after SECONDS, saying what the Channel row showed.

Exit status: 0 success, 1 failure, 2 usage error.
"""

import json
import sys
import time

import ovs.db.idl
import ovs.poller


def connect(remote, schema, tables, deadline):
    """Returns an Idl of 'tables' of the Chan DB at 'remote' that has its
    first copy of the database, or exits 1 at 'deadline'."""
    helper = ovs.db.idl.SchemaHelper(location=schema)
    for table in tables:
        helper.register_table(table)
    idl = ovs.db.idl.Idl(remote, helper)
    while not run_once(idl, deadline):
        pass
    return idl


def run_once(idl, deadline):
    """Processes what the server sent, waiting up to 100 ms for more.
    Returns True once 'idl' has the database's contents."""
    idl.run()
    if idl.has_ever_connected():
        return True
    if time.monotonic() > deadline:
        sys.exit("idl-tool: no contents from the Chan DB in time")
    poller = ovs.poller.Poller()
    idl.wait(poller)
    poller.timer_wait(100)
    poller.block()
    return False


def wait_for_change(idl, deadline):
    poller = ovs.poller.Poller()
    idl.wait(poller)
    poller.timer_wait(max(1, min(100, int((deadline - time.monotonic())
                                          * 1000))))
    poller.block()
    idl.run()


def find_record(idl, vm, key):
    for row in idl.tables["Record"].rows.values():
        if row.key == key and row.vm == [vm]:
            return row
    return None


def find_channel(idl, vm):
    for row in idl.tables["Channel"].rows.values():
        if row.vm == vm:
            return row
    return None


def push(remote, schema, vm, key, value):
    json.loads(value)           # The Chan DB holds JSON text.
    deadline = time.monotonic() + 30
    idl = connect(remote, schema, ["Record"], deadline)
    for _ in range(10):
        txn = ovs.db.idl.Transaction(idl)
        txn.add_comment("idl-tool: push %s to %s" % (key, vm))
        row = find_record(idl, vm, key)
        if row is None:
            row = txn.insert(idl.tables["Record"])
            row.key = key
            row.vm = [vm]
            version = 1
        else:
            row.verify("version")
            version = row.version + 1
        row.value = value
        row.version = version
        status = txn.commit_block()
        if status in (ovs.db.idl.Transaction.SUCCESS,
                      ovs.db.idl.Transaction.UNCHANGED):
            print(version)
            idl.close()
            return 0
        if status != ovs.db.idl.Transaction.TRY_AGAIN:
            sys.stderr.write("idl-tool: push %s to %s: %s (%s)\n"
                             % (key, vm, status, txn.get_error()))
            idl.close()
            return 1
        # Someone else changed the row: read it again, try again.
        wait_for_change(idl, deadline)
    sys.stderr.write("idl-tool: push %s to %s: gave up\n" % (key, vm))
    idl.close()
    return 1


def wait_applied(remote, schema, vm, key, version, seconds):
    deadline = time.monotonic() + seconds
    idl = connect(remote, schema, ["Channel"], deadline)
    while True:
        ch = find_channel(idl, vm)
        if ch is not None and ch.applied.get(key, -1) >= version:
            print("applied %s %d state %s"
                  % (key, ch.applied[key], ch.state))
            idl.close()
            return 0
        if time.monotonic() >= deadline:
            if ch is None:
                seen = "no Channel row for %s" % vm
            else:
                seen = ("Channel row for %s: state %s, %s applied at %s"
                        % (vm, ch.state, key, ch.applied.get(key, "none")))
            sys.stderr.write("idl-tool: %s version %d not applied in %g s "
                             "(%s)\n" % (key, version, seconds, seen))
            idl.close()
            return 1
        wait_for_change(idl, deadline)


def main(argv):
    if len(argv) == 7 and argv[1] == "push":
        return push(argv[2], argv[3], argv[4], argv[5], argv[6])
    if len(argv) == 8 and argv[1] == "wait-applied":
        return wait_applied(argv[2], argv[3], argv[4], argv[5],
                            int(argv[6]), float(argv[7]))
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
