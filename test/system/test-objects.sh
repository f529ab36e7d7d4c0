#!/usr/bin/env bash
# The object mapping on the host, and the records it sends back
# (doc/objects.md).
#
# Three VMs register files with chanctl object-add: vm1 and vm2 hold file F
# (same content, other paths), vm2 also G, vm3 holds H.  The Chan DB's
# Object and Object_Ref rows must say exactly that, with each object's
# reference count (the size of Object.refs) equal to its Object_Ref rows.
# A verdict (object-set F flags=infected) reaches vm1 and vm2, each with
# its own paths, and not vm3; an update notice (G superseded by H) reaches
# vm2 with H's size; a verdict published by vm1's scanner counts only once
# a Relay rule allows it.  A VM that claims F under another size maps nothing
# and is counted.  chand-host is killed (-9) while vm1 registers 40 more
# files, and the mapping is still exactly what the guests hold, with no
# reference written twice.  Withdrawals and cleared verdicts take the
# records away.

. "$(dirname "$0")/lib.sh"
st_require_root
here=$(cd "$(dirname "$0")" && pwd)
PY=$(python3 -c 'import sys; print(sys.executable)')
UT=$here/upstream-tool.py
V1=chst-obj1 V2=chst-obj2 V3=chst-obj3

st_up "$V1:51" "$V2:52" "$V3:53"
st_chanctl wait --timeout 60 || { st_fail "channels not ready"; exit 1; }

D=$OVSI_BASE/files
mkdir -p "$D/1" "$D/2" "$D/3" "$D/bulk"
printf 'the file F\n' >"$D/1/f"
printf 'the file F\n' >"$D/2/copy-of-f"
printf 'the file G, old\n' >"$D/2/g"
printf 'the file H, a newer G\n' >"$D/3/h"
printf 'not F, but of another size\n' >"$D/3/liar"
F=$(sha256sum <"$D/1/f" | cut -d' ' -f1)
G=$(sha256sum <"$D/2/g" | cut -d' ' -f1)
H=$(sha256sum <"$D/3/h" | cut -d' ' -f1)

st_check "vm1 registers F" st_guest "$V1" object-add "$D/1/f"
st_check "vm2 registers F and G" st_guest "$V2" object-add "$D/2/copy-of-f" \
    "$D/2/g"
st_check "vm3 registers H" st_guest "$V3" object-add "$D/3/h"

# mapping: the Object and Object_Ref rows, as ovsdb-client prints them.
mapping() {
    ovsdb-client transact "$(topo_db)" \
        '["Chan",{"op":"select","table":"Object","where":[]},
                 {"op":"select","table":"Object_Ref","where":[]}]'
}

# check_mapping PYEXPR: PYEXPR holds over 'objs' (digest -> {size, refs:
# n}) and 'refs' (vm -> digest -> sorted paths), and every object's
# reference count equals its Object_Ref rows.
check_mapping() {
    mapping | "$PY" -c '
import json, sys
res = json.load(sys.stdin)
def atoms(d):
    return d[1] if isinstance(d, list) and d and d[0] == "set" else [d]
objs, uuids = {}, {}
for r in res[0]["rows"]:
    objs[r["digest"]] = {"size": r["size"], "refs": len(atoms(r["refs"])),
                         "flags": sorted(atoms(r["flags"]))}
    uuids[r["_uuid"][1]] = r["digest"]
refs, count = {}, {}
for r in res[1]["rows"]:
    refs.setdefault(r["vm"], {})[r["digest"]] = sorted(atoms(r["paths"]))
    assert uuids[r["object"][1]] == r["digest"], "object of a ref"
    count[r["digest"]] = count.get(r["digest"], 0) + 1
for d, o in objs.items():
    if o["refs"] != count.get(d, 0):
        sys.exit("refs of %s: %d, Object_Ref rows: %d"
                 % (d, o["refs"], count.get(d, 0)))
sys.exit(0 if eval("(" + sys.argv[1] + ")") else 1)' "$1"
}

st_check "F is referenced by vm1 and vm2, each with its path" \
    st_wait 30 check_mapping \
    "objs['$F']['refs'] == 2 and objs['$F']['size'] == 11
     and refs['$V1']['$F'] == ['$D/1/f'] and refs['$V2']['$F'] == ['$D/2/copy-of-f']"
st_check "G is vm2's alone, H vm3's" st_wait 30 check_mapping \
    "objs['$G']['refs'] == 1 and sorted(refs['$V2']) == sorted(['$F', '$G'])
     and objs['$H']['refs'] == 1 and list(refs['$V3']) == ['$H']"
st_chanctl object-show "$F" | sed 's/^/    /'

# --- a VM claims F under another size --------------------------------------
refused_count() {
    st_chanctl channel-show "$1" | "$PY" -c \
        'import json,sys; print(json.load(sys.stdin)["counters"].get("objects_refused", 0))'
}
ip netns exec "$V3" "$PY" "$UT" call object-add \
    "[{\"path\": \"$D/3/liar\", \"digest\": \"$F\", \"size\": 27}]" >/dev/null ||
    st_fail "vm3's guest refused the raw object-add"
liar_counted() {
    [ "$(refused_count "$V3")" -ge 1 ]
}
st_check "chand-host refuses vm3's F of another size and counts it" \
    st_wait 30 liar_counted
st_check "F is still referenced by vm1 and vm2 only" check_mapping \
    "objs['$F']['refs'] == 2 and '$F' not in refs.get('$V3', {})"

# --- bad object-set arguments ---------------------------------------------
# refused WHAT EXPECTED-STATUS EXPECTED-TEXT CMD...
refused() {
    local what=$1 status=$2 text=$3 out rc
    shift 3
    out=$("$@" 2>&1)
    rc=$?
    if [ "$rc" = "$status" ] && [[ $out == *"$text"* ]]; then
        st_log "ok: $what: $out"
    else
        st_fail "$what: exit $rc, \"$out\""
    fi
}
refused "object-set with a word that is no change" 2 'is not flags=' \
    st_chanctl object-set "$F" infected
refused "object-set of an object nobody holds" 1 'no object 0000' \
    st_chanctl object-set 0000 flags=infected
st_check "and F keeps no flag" check_mapping "objs['$F']['flags'] == []"

# --- a verdict ------------------------------------------------------------
st_check "object-set F flags=infected" st_chanctl object-set "$F" \
    flags=infected action=quarantine
# verdict_is VM PYEXPR: VM's verdict/F record ('v', None if absent).
verdict_is() {
    local out
    out=$(st_guest "$1" get "verdict/$F" 2>/dev/null) || out=null
    "$PY" -c 'import json,sys; v = json.loads(sys.argv[1]); sys.exit(0 if eval(sys.argv[2]) else 1)' \
        "$out" "$2"
}
st_check "vm1 gets the verdict with its own path" st_wait 30 verdict_is "$V1" \
    "v == {'action': 'quarantine', 'digest': '$F', 'paths': ['$D/1/f'], 'verdict': 'infected'}"
st_check "vm2 gets it with its own path" st_wait 30 verdict_is "$V2" \
    "v is not None and v['paths'] == ['$D/2/copy-of-f']"
st_check "vm3 gets none" verdict_is "$V3" "v is None"
st_check "the Chan DB shows the flag" check_mapping \
    "objs['$F']['flags'] == ['infected']"

# --- an update notice -----------------------------------------------------
st_check "object-set G superseded_by=H" st_chanctl object-set "$G" \
    "superseded_by=$H"
notice_ok() {
    local out
    out=$(st_guest "$V2" get "notice/$G" 2>/dev/null) || return 1
    "$PY" -c 'import json,sys; v = json.loads(sys.argv[1]); sys.exit(0 if v["superseded_by"] == sys.argv[2] and v["size"] == 22 else 1)' \
        "$out" "$H"
}
st_check "vm2 gets the notice with H's digest and size" st_wait 30 notice_ok
no_notice() {
    ! st_guest "$1" get "notice/$G" >/dev/null 2>&1
}
st_check "vm1 gets none" no_notice "$V1"
st_check "vm3 gets none" no_notice "$V3"

# --- a verdict from vm1's scanner -----------------------------------------
# record_is VM KEY PYEXPR: VM's record KEY ('v', None if absent).
record_is() {
    local out
    out=$(st_guest "$1" get "$2" 2>/dev/null) || out=null
    "$PY" -c 'import json,sys; v = json.loads(sys.argv[1]); sys.exit(0 if eval(sys.argv[2]) else 1)' \
        "$out" "$3"
}
st_check "vm1's scanner publishes a verdict on H" \
    st_guest "$V1" publish "verdict/$H" '{"verdict":"infected"}'
sleep 2
st_check "without a rule, it does not count: vm3 gets no verdict" \
    record_is "$V3" "verdict/$H" "v is None"
ovsdb-client transact "$(topo_db)" \
    '["Chan",{"op":"insert","table":"Relay",
              "row":{"source":"'"$V1"'","prefix":"verdict/","to":"vms"}}]' \
    >/dev/null || st_fail "cannot insert the Relay rule"
st_check "with a rule for vm1's verdicts, vm3 gets one on H, naming vm1" \
    st_wait 30 record_is "$V3" "verdict/$H" \
    "v is not None and v['source'] == '$V1' and v['paths'] == ['$D/3/h']"
st_check "vm2 (no H) gets none" record_is "$V2" "verdict/$H" "v is None"
st_check "vm1 withdraws its verdict" st_guest "$V1" unpublish "verdict/$H"
st_check "vm3's verdict on H goes" \
    st_wait 30 record_is "$V3" "verdict/$H" "v is None"

# --- kill -9 of chand-host while vm1 registers 40 files -------------------
for i in $(seq 1 40); do
    printf 'bulk file %d\n' "$i" >"$D/bulk/$i"
done
(
    for i in $(seq 1 40); do
        st_guest "$V1" object-add "$D/bulk/$i" >/dev/null || exit 1
        sleep 0.02
    done
) &
adder=$!
sleep 0.3
topo_host_kill || st_fail "cannot kill chand-host"
sleep 0.5
topo_host_start || st_fail "chand-host did not restart"
wait "$adder" || st_fail "object-add in vm1 failed"
guest_objects() {
    st_guest "$V1" objects --json
}
same_as_guest() {
    local g
    g=$(guest_objects) || return 1
    check_mapping "
(lambda g: all(refs['$V1'].get(o['digest']) == sorted(p['path'] for p in g if p['digest'] == o['digest']) for o in g)
           and len(refs['$V1']) == len({o['digest'] for o in g}))(json.loads('''$g'''))"
}
st_check "after the kill, vm1's references are exactly its 41 objects" \
    st_wait 60 same_as_guest
st_check "each bulk object is referenced once" check_mapping \
    "sum(1 for d in refs['$V1']) == 41 and all(o['refs'] == 1 for d, o in objs.items() if d not in ('$F',))"

# --- withdrawals ----------------------------------------------------------
st_check "vm1 removes F" st_guest "$V1" object-remove "$D/1/f"
st_check "F is vm2's alone" st_wait 30 check_mapping \
    "objs['$F']['refs'] == 1 and '$F' not in refs['$V1']"
st_check "vm1 loses its verdict" st_wait 30 verdict_is "$V1" "v is None"
st_check "vm2 keeps it" verdict_is "$V2" "v is not None"
st_check "clearing the flag" st_chanctl object-set "$F" flags=
st_check "vm2's verdict goes" st_wait 30 verdict_is "$V2" "v is None"
st_exit
