#!/usr/bin/env bash
# Clones (doc/objects.md, "Clones"): a VM's guest datastore copied into a
# new VM.
#
# vm1 holds file F, vm3 holds H, vm2 holds nothing; the handlers
# directory holds the built-in chand-handler as verdict and notice.  vm1's
# chand-guest is stopped and its datastore copied into a new VM, vm4, with
# its own chand-vm name and chan-id; vm1 is started again.  vm4's
# chand-guest detects the clone (a WARN, guest/status) and publishes
# everything again as its own.  All the namespaces of this test share one
# file system, so the path vm4 inherits is vm1's very file: vm4 gets its
# own copy of F at another path, registers it and unregisters the
# inherited path (in a real clone the file is at the same path on the
# clone's own disk).  Then: the Chan DB has separate Object_Ref rows of F
# for vm1 and vm4; object-set F flags=infected makes vm1 and vm4 each run
# their handler and each publish its own result (Guest_Record
# result/verdict/F of vm1 and of vm4, ok), and nothing in vm2 and vm3.
# Before the clone, vm1 handles an update notice of F: vm4 inherits the
# notice but not vm1's handled row or result, so it runs its own notice
# handler and publishes its own result.
# Last, vm1's Guest_Record and Object_Ref rows are deleted by hand and
# chanctl object-delink --vm vm1 rebuilds them from vm1's guest.

. "$(dirname "$0")/lib.sh"
st_require_root
here=$(cd "$(dirname "$0")" && pwd)
PY=$(python3 -c 'import sys; print(sys.executable)')
UT=$here/upstream-tool.py
TOPO_HOST_NS=chst-chv
V1=chst-cvm1 V2=chst-cvm2 V3=chst-cvm3 V4=chst-cvm4

HD=$OVSI_BASE/handlers.d
Q=$OVSI_BASE/quarantine
TOPO_GUEST_ARGS=(--handlers-dir="$HD" --quarantine-dir="$Q"
                 --handler-timeout=10)

st_up "$V1:71" "$V2:72" "$V3:73"
st_chanctl wait --timeout 60 || { st_fail "channels not ready"; exit 1; }

st_install_handlers "$HD" || st_fail "cannot install the handlers"

D=$OVSI_BASE/files
mkdir -p "$D/1" "$D/3" "$D/4"
printf 'the infected file F\n' >"$D/1/f"
printf 'the clean file H\n' >"$D/3/h"
F=$(sha256sum <"$D/1/f" | cut -d' ' -f1)
H=$(sha256sum <"$D/3/h" | cut -d' ' -f1)

st_check "vm1 registers F" st_guest "$V1" object-add "$D/1/f"
st_check "vm3 registers H" st_guest "$V3" object-add "$D/3/h"

# refs_of VM: VM's Object_Ref row of F, as JSON ({"paths": [...]} or null).
refs_of() {
    ovsdb-client transact "$(topo_db)" \
        "[\"Chan\",{\"op\":\"select\",\"table\":\"Object_Ref\",
          \"where\":[[\"vm\",\"==\",\"$1\"],[\"digest\",\"==\",\"$F\"]]}]" |
        "$PY" -c '
import json, sys
rows = json.load(sys.stdin)[0]["rows"]
if not rows:
    print("null")
else:
    p = rows[0]["paths"]
    paths = p[1] if isinstance(p, list) and p[0] == "set" else [p]
    print(json.dumps({"paths": sorted(paths), "uuid": rows[0]["_uuid"][1]}))'
}

# ref_is VM PYEXPR: VM's Object_Ref row of F ('r', None if absent)
# satisfies PYEXPR.
ref_is() {
    refs_of "$1" | "$PY" -c '
import json, sys
r = json.load(sys.stdin)
sys.exit(0 if eval(sys.argv[1]) else 1)' "$2"
}

# result_is VM PYEXPR [KIND]: VM's Guest_Record result/KIND/F (KIND:
# verdict by default; 'r', None if absent) satisfies PYEXPR.
result_is() {
    st_result_is "$1" "${3:-verdict}" "$F" "$2"
}

# handled_ok VM N: VM's chand-guest counts at least N handler runs ok.
handled_ok() {
    st_guest "$1" guest-status --json | "$PY" -c '
import json, sys
c = json.load(sys.stdin)["handlers"]["counters"]
sys.exit(0 if c.get("ok", 0) >= int(sys.argv[1]) else 1)' "$2"
}

# n_records VM: how many Guest_Record rows VM has.
n_records() {
    "$PY" "$UT" guest-records "$(topo_db)" "$1" "" |
        "$PY" -c 'import json, sys; print(len(json.load(sys.stdin)))'
}

st_check "the Chan DB maps F to vm1" st_wait 30 ref_is "$V1" \
    "r is not None and r['paths'] == ['$D/1/f']"

# An update notice that vm1 handles before it is cloned: its datastore then
# holds the notice, a handled row and its result.
st_check "object-set F superseded_by=H" st_chanctl object-set "$F" \
    superseded_by="$H"
st_check "vm1 reports the notice handled ok" st_wait 30 result_is "$V1" \
    "r is not None and r['status'] == 'ok'" notice

# --- the clone ------------------------------------------------------------
st_check "vm1's chand-guest stops" topo_guest_stop "$V1"
mkdir -p "$TOPO_RUN/$V4"
st_check "vm1's datastore is copied into vm4" \
    cp "$TOPO_RUN/$V1/guest.db" "$TOPO_RUN/$V4/guest.db"
for ext in -wal -shm; do
    if [ -e "$TOPO_RUN/$V1/guest.db$ext" ]; then
        cp "$TOPO_RUN/$V1/guest.db$ext" "$TOPO_RUN/$V4/guest.db$ext"
    fi
done
ST_VMS="$ST_VMS $V4"
st_check "vm4 starts with it (chand-vm $V4, chan-id 74)" topo_vm_up "$V4" 74
st_check "vm1's chand-guest starts again" topo_guest_start "$V1" 71
st_check "the channels are ready" st_chanctl wait --timeout 60

identity_is() {
    st_guest "$1" guest-status --json | "$PY" -c '
import json, sys
i = json.load(sys.stdin)["identity"]
sys.exit(0 if eval(sys.argv[1]) else 1)' "$2"
}
st_check "vm4's guest status shows the clone of chan-id 71" identity_is \
    "$V4" "i == {'chan_id': 74, 'clones': 1, 'clone_of': 71, 'clone_detected': True}"
st_check "vm1's shows none" identity_is "$V1" \
    "i['chan_id'] == 71 and i['clones'] == 0 and not i['clone_detected']"
st_check "vm4 logs it" grep -q \
    "datastore was chan-id 71, now chan-id 74: a clone" \
    "$TOPO_RUN/$V4/chand-guest.log"
st_check "the Chan DB maps the inherited F to vm4, in a row of its own" \
    st_wait 30 ref_is "$V4" "r is not None and r['paths'] == ['$D/1/f']"
st_check "vm4 handles the notice it inherited itself (no handled row)" \
    st_wait 30 handled_ok "$V4" 1
st_check "and publishes its own result" st_wait 30 result_is "$V4" \
    "r is not None and r['status'] == 'ok'" notice

# vm4's own copy of F (see above: one file system for every namespace).
printf 'the infected file F\n' >"$D/4/f"
st_check "vm4 registers its own copy of F" st_guest "$V4" object-add "$D/4/f"
st_check "and unregisters vm1's path, which it only shares here" \
    st_guest "$V4" object-remove "$D/1/f"
st_check "vm4's Object_Ref row names its own path" st_wait 30 ref_is "$V4" \
    "r is not None and r['paths'] == ['$D/4/f']"
st_check "vm1's row is still its own" ref_is "$V1" \
    "r is not None and r['paths'] == ['$D/1/f']"
u1=$(refs_of "$V1") u4=$(refs_of "$V4")
st_check "two rows" test "$u1" != "$u4"

# --- a verdict reaches both -----------------------------------------------
st_check "object-set F flags=infected" st_chanctl object-set "$F" \
    flags=infected
st_check "vm1 reports its verdict handled ok" st_wait 30 result_is "$V1" \
    "r is not None and r['status'] == 'ok' and 'quarantined 1 of 1' in r['detail']"
st_check "vm4 reports its own, ok" st_wait 30 result_is "$V4" \
    "r is not None and r['status'] == 'ok' and 'quarantined 1 of 1' in r['detail']"
st_check "vm2 reports nothing" result_is "$V2" "r is None"
st_check "vm3 reports nothing" result_is "$V3" "r is None"
st_check "vm1's F is gone from its path" test ! -e "$D/1/f"
st_check "vm4's F is gone from its path" test ! -e "$D/4/f"
st_check "vm3's H is untouched" \
    test "$(sha256sum <"$D/3/h" | cut -d' ' -f1)" = "$H"
st_chanctl object-show "$F" | sed 's/^/    /'

# --- object-delink --------------------------------------------------------
before=$(n_records "$V1")
ovsdb-client transact "$(topo_db)" \
    '["Chan",{"op":"delete","table":"Object_Ref",
              "where":[["vm","==","'"$V1"'"]]},
             {"op":"delete","table":"Guest_Record",
              "where":[["vm","==","'"$V1"'"]]}]' >/dev/null ||
    st_fail "cannot delete vm1's rows"
st_check "vm1's rows are gone" test "$(n_records "$V1")" = 0
st_check "vm1's Object_Ref row too" ref_is "$V1" "r is None"
st_check "chanctl object-delink --vm vm1" st_chanctl object-delink \
    --vm "$V1"
st_check "vm1's Object_Ref row comes back" st_wait 30 ref_is "$V1" \
    "r is not None and r['paths'] == ['$D/1/f']"
st_check "and its result" st_wait 30 result_is "$V1" \
    "r is not None and r['status'] == 'ok'"
records_are() {
    test "$(n_records "$V1")" = "$1"
}
st_check "all $before of its Guest_Record rows" st_wait 30 records_are \
    "$before"
st_check "vm4's row was left alone" ref_is "$V4" \
    "r is not None and r['paths'] == ['$D/4/f']"
st_check "object-delink of an unknown VM fails" \
    eval '! st_chanctl object-delink --vm nosuchvm'
st_exit
