#!/usr/bin/env bash
# The Chan DB driven by the Open vSwitch Python IDL (python3-openvswitch's
# ovs.db.idl), as README.md and doc/chan-db.md promise: no chand code on
# the control plane's side.
#
# idl-tool.py pushes a record for chst-pvm1 the way `chanctl push --vm`
# does (a Record row inserted, then updated with version + 1) and reads
# chst-pvm1's Channel row back until it says the record is applied at that
# version; the guest's datastore must hold the pushed value.  And the
# test can fail: a record for a VM without a channel never shows as
# applied, and idl-tool.py says so.

. "$(dirname "$0")/lib.sh"
st_require_root
here=$(cd "$(dirname "$0")" && pwd)
IT=$here/idl-tool.py
SCHEMA=$ST_SRC/ovsdb/chan.ovsschema
TOPO_HOST_NS=chst-pyhv
VM=chst-pvm1

# The interpreter that has the ovs package: python3 in PATH may be a
# version manager's, without Debian's python3-openvswitch.
PY=
for p in python3 /usr/bin/python3; do
    if "$p" -c 'import ovs.db.idl' 2>/dev/null; then
        PY=$p
        break
    fi
done
if [ -z "$PY" ]; then
    st_log "FAIL: no python3 with the ovs package (Debian: python3-openvswitch)"
    exit 1
fi
st_log "Python IDL: $("$PY" -c 'import ovs, sys; print(sys.executable, ovs.__file__)')"

idl() {
    "$PY" "$IT" "$1" "$(topo_db)" "$SCHEMA" "${@:2}"
}

# guest_has KEY JSON: the guest's value of KEY equals JSON (as JSON).
guest_has() {
    local got
    got=$(st_guest "$VM" get "$1" 2>/dev/null) || return 1
    "$PY" -c 'import json, sys; sys.exit(json.loads(sys.argv[1]) != json.loads(sys.argv[2]))' \
        "$got" "$2"
}

# push_applied WHAT VERSION JSON: pushes JSON as py/rec for $VM with the
# IDL, expecting VERSION; the Channel row must show it applied and the
# guest hold JSON.
push_applied() {
    local what=$1 want=$2 value=$3 ver out
    ver=$(idl push "$VM" py/rec "$value") || st_fail "push ($what) failed"
    st_check "the $what is version $want" test "$ver" = "$want"
    out=$(idl wait-applied "$VM" py/rec "$want" 30) &&
        st_log "ok: Channel row: $out" ||
        st_fail "version $want not applied: $out"
    st_check "the guest holds version $want's value" guest_has py/rec "$value"
}

st_up "$VM:41"
st_check "$VM ready" st_chanctl wait --vm "$VM" --timeout 30

push_applied insert 1 '{"source": "python-idl", "n": 1}'
# Update: version + 1, on the row the IDL found.
push_applied update 2 '{"source": "python-idl", "n": 2, "list": [1, 2, 3]}'
st_check "chanctl agrees: in sync" \
    st_chanctl wait --vm "$VM" --timeout 10

# The check can fail: nothing applies a record for a VM without a channel.
ver=$(idl push chst-nosuch py/rec '"lost"') || st_fail "push to chst-nosuch"
if idl wait-applied chst-nosuch py/rec "$ver" 2 2>"$OVSI_BASE/err"; then
    st_fail "a record for a VM without a channel was reported applied"
else
    st_log "ok: not applied without a channel: $(cat "$OVSI_BASE/err")"
fi
# Nor an older version for a newer one.
if idl wait-applied "$VM" py/rec 3 2 2>"$OVSI_BASE/err"; then
    st_fail "version 3 reported applied, but only 2 was pushed"
else
    st_log "ok: version 3 not applied: $(cat "$OVSI_BASE/err")"
fi

st_exit
