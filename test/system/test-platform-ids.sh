#!/usr/bin/env bash
# Platform ids (doc/chan-db.md, "VM_Id"; doc/adapters.md): a VM with a real
# channel gets a libvirt domain UUID, an iface-id, a Nova instance UUID and a
# platform integer id with chanctl id-set.  Each of them, and "any:", names
# the VM for push, status, wait, delete, published, key-list and
# channel-show, and the results name the VM by the id given.  A replaced
# libvirt UUID and a retired platform-id still resolve, with a note, and
# are reported as retired; a retired id becomes current again.  The
# mapping is one-to-one both ways: an id another VM holds (current or
# retired) is refused by chanctl and, for any writer, by ovsdb-server's
# indexes, as is a second current id of a kind for one VM.  An id two VMs
# have under different kinds is ambiguous as "any:"; an unknown id and a
# malformed one are errors, and nothing is written.
. "$(dirname "$0")/lib.sh"
st_require_root
TOPO_HOST_NS=chst-phv
V1=chst-pvm1                    # (a veth name "V1-vnic" has 15 bytes at most)
OTHER=vm-other                  # VMs without a channel: ids only.
THIRD=vm-third
st_up "$V1:141"
st_check "the channel is ready" st_chanctl wait --vm "$V1" --timeout 60 ||
    { st_fail "no channel"; exit 1; }

U1=6f1c2d3e-4a5b-4c6d-8e7f-0123456789ab
U1_UPPER=6F1C2D3E-4A5B-4C6D-8E7F-0123456789AB
U2=2c4e6a8b-1d3f-4b5c-9d7e-abcdefabcdef
NOVA=3d0f9e8c-7b6a-4c5d-8e4f-102030405060
IFACE=0b9a8c7d-6e5f-4a3b-9c2d-1e0f2a3b4c5d
ZERO=00000000-0000-0000-0000-000000000000

OUT=$OVSI_BASE/out ERR=$OVSI_BASE/err
# run CHANCTL-ARGS...: chanctl on the host, output in $OUT and $ERR; its
# exit status in $rc.
run() {
    st_chanctl "$@" >"$OUT" 2>"$ERR"
    rc=$?
    st_log "  chanctl $*: exit $rc: $(head -c 300 "$OUT" | tr '\n' '|') $(head -c 300 "$ERR" | tr '\n' '|')"
}
exits() { [ "$rc" = "$1" ]; }
# exit_and CODE CMD...: the exit status was CODE and CMD succeeds.
exit_and() {
    local code=$1
    shift
    [ "$rc" = "$code" ] && "$@"
}
out_is() { [ "$(cat "$OUT")" = "$1" ]; }
out_has() { grep -qF -- "$1" "$OUT"; }
# err_has STRING...: $ERR has every STRING.
err_has() {
    local s
    for s in "$@"; do
        grep -qF -- "$s" "$ERR" || return 1
    done
}
no_err() { [ ! -s "$ERR" ]; }
# json PYEXPR: the JSON in $OUT (as 'j') satisfies PYEXPR.
json() {
    python3 -c 'import json, sys; j = json.load(open(sys.argv[1]));
sys.exit(0 if eval(sys.argv[2]) else 1)' "$OUT" "$1"
}
dbq() { ovsdb-client transact "$(topo_db)" "[\"Chan\", $1]"; }
n_records() {
    dbq '{"op": "select", "table": "Record", "where": [], "columns": ["key"]}' |
        grep -o '"key"' | wc -l
}
guest_has() { [ "$(st_guest "$V1" get "$1" 2>/dev/null)" = "$2" ]; }

# --- id-set: four kinds, in the forms people type --------------------------
run -v id-set --vm "$V1" "libvirt-uuid:$U1_UPPER" "iface-id:$IFACE" \
    "nova-uuid:$NOVA" platform-id:0042
st_check "id-set --vm VM gives four ids in one call" exits 0
st_check "  and -v says so" out_has "libvirt-uuid:$U1 is $V1's"
run id-list --vm "$V1" --json
st_check "id-list: four current ids, stored normalized" json \
    "sorted((r['kind'], r['id'], r['current']) for r in j) == [
       ('iface-id', '$IFACE', True), ('libvirt-uuid', '$U1', True),
       ('nova-uuid', '$NOVA', True), ('platform-id', '42', True)]"
run id-list
st_check "id-list (text): a header and four rows" \
    test "$(wc -l <"$OUT")" = 5
run id-set --vm "$V1" "libvirt-uuid:$U1"
st_check "id-set of an id the VM has: nothing to do, exit 0" exits 0

# --- every kind names the VM, and results carry the id given ---------------
n=0
for spec in "libvirt-uuid:$U1" "libvirt-uuid:$U1_UPPER" "iface-id:$IFACE" \
            "nova-uuid:$NOVA" platform-id:42 platform-id:042 "any:$NOVA" \
            any:42; do
    n=$((n + 1))
    run -v push --vm "$spec" "id/$n" "\"$spec\""
    st_check "push --vm $spec" exits 0
    st_check "  reported as $spec ($V1)" \
        out_is "pushed id/$n version 1 to $spec ($V1)"
    run wait --vm "$spec" --timeout 60
    st_check "  wait --vm $spec" exits 0
    st_check "  the guest has it" st_wait 10 guest_has "id/$n" "\"$spec\""
    run status --vm "$spec"
    st_check "  status --vm $spec: an id line" \
        exit_and 0 out_has "id:             $spec (current)"
    st_check "  status names the VM" out_has "vm:             $V1"
    run status --vm "$spec" --json
    st_check "  status --json: id, id_status and vm" \
        json "j['id'] == '$spec' and j['id_status'] == 'current' and j['vm'] == '$V1' and j['synced']"
    st_check "  no note for a current id" no_err
done
run channel-show "nova-uuid:$NOVA"
st_check "channel-show KIND:ID: chand-host's view, with the id" \
    json "j['id'] == 'nova-uuid:$NOVA' and j['id_status'] == 'current' and j['vm'] == '$V1'"
run channel-show "$V1"
st_check "channel-show NAME: as before, no id" json "'id' not in j"
run -v delete --vm platform-id:42 id/5
st_check "delete --vm platform-id:42, reported with it" \
    out_is "deleted id/5 from platform-id:42 ($V1)"
run key-list --vm "iface-id:$IFACE"
st_check "key-list --vm iface-id:..." out_is "$V1 1"
st_guest "$V1" publish pub/x '"x"' >/dev/null ||
    st_fail "publish in $V1"
published() {
    run published --vm "libvirt-uuid:$U1" pub/ && out_has 'pub/x = "x"'
}
st_check "published --vm libvirt-uuid:...: the guest's record" \
    st_wait 30 published
st_check "  reported with the id" \
    out_has "1 records published by libvirt-uuid:$U1 ($V1)"

# --- history: a new libvirt UUID, a retired platform-id ---------------------
run -v id-set --vm "$V1" "libvirt-uuid:$U2"
st_check "a new libvirt UUID retires the old one" \
    out_has "retired libvirt-uuid:$U1 of $V1"
run -v push --vm "libvirt-uuid:$U1" old/libvirt '"old"'
st_check "the old libvirt UUID still resolves (push)" exits 0
st_check "  with a note that it is retired, naming the current one" \
    err_has "note: libvirt-uuid:$U1 is a retired id of $V1 (retired 20"
st_check "  ... its current libvirt-uuid" \
    err_has "its current libvirt-uuid is $U2)"
st_check "  reported with the old id" \
    out_is "pushed old/libvirt version 1 to libvirt-uuid:$U1 ($V1)"
run wait --vm "libvirt-uuid:$U1" --timeout 60
st_check "wait --vm the old id" exits 0
st_check "  the guest has it" st_wait 10 guest_has old/libvirt '"old"'
run status --vm "libvirt-uuid:$U1"
st_check "status --vm the old id: reported as retired" \
    out_has "id:             libvirt-uuid:$U1 (retired)"
run status --vm "libvirt-uuid:$U1" --json
st_check "status --json: id_status retired" \
    json "j['id_status'] == 'retired' and j['vm'] == '$V1'"
run id-show "libvirt-uuid:$U2"
st_check "id-show of the new UUID: the VM" exit_and 0 out_is "$V1"
st_check "  and no note" no_err

# Retyping: the integer id goes, the VM keeps its UUIDs.
run -v id-retire platform-id:42
st_check "id-retire platform-id:42" out_is "retired platform-id:42 of $V1"
run id-show platform-id:42 --json
st_check "id-show --json: retired, when, the VM" \
    json "j['status'] == 'retired' and j['vm'] == '$V1' and j['retired'] > 0 and j['kind'] == 'platform-id'"
st_check "  with the note" \
    err_has "it has no current platform-id"
run -v push --vm platform-id:42 old/platform '"p"'
st_check "push --vm the retired platform-id still reaches the VM" \
    out_is "pushed old/platform version 1 to platform-id:42 ($V1)"
st_check "  the guest has it" st_wait 30 guest_has old/platform '"p"'
run id-retire platform-id:42
st_check "retiring it again: exit 1, says so" \
    exit_and 1 err_has "already retired"

# A retired id becomes current again; the one it replaced is retired.
run -v id-set --vm "$V1" "libvirt-uuid:$U1"
st_check "id-set of a retired id of the VM makes it current again" \
    out_has "retired libvirt-uuid:$U2 of $V1"
run id-show "libvirt-uuid:$U1" --json
st_check "  it resolves as current" json "j['status'] == 'current'"
run id-list --vm "$V1" --json
st_check "id-list: the history, one current id per kind" json \
    "sorted((r['kind'], r['id'], r['current']) for r in j) == sorted([
       ('iface-id', '$IFACE', True), ('libvirt-uuid', '$U1', True),
       ('libvirt-uuid', '$U2', False), ('nova-uuid', '$NOVA', True),
       ('platform-id', '42', False)])"

# --- one-to-one, both ways ---------------------------------------------------
n0=$(n_records)
run id-set --vm "$OTHER" "iface-id:$IFACE"
st_check "another VM cannot take a current id" \
    exit_and 1 err_has "iface-id:$IFACE is $V1's current id"
run id-set --vm "$OTHER" platform-id:42
st_check "nor a retired one (id-delete first)" \
    exit_and 1 err_has "$V1's retired id" "id-delete"
run id-set --vm "$V1" "libvirt-uuid:$U1" "libvirt-uuid:$U2"
st_check "two ids of one kind in one id-set: usage error" exits 2
out=$(dbq "{\"op\": \"insert\", \"table\": \"VM_Id\", \"row\": {\"vm\": \"$OTHER\",
      \"kind\": \"libvirt-uuid\", \"id\": \"$U2\"}}")
st_log "  raw insert of $V1's retired id for $OTHER: $out"
st_check "ovsdb-server refuses another VM a retired id ((kind, id) index)" \
    grep -q '"error":"constraint violation"' <<<"$out"
out=$(dbq "{\"op\": \"insert\", \"table\": \"VM_Id\", \"row\": {\"vm\": \"$V1\",
      \"kind\": \"nova-uuid\", \"id\": \"$ZERO\"}}")
st_log "  raw insert of a second current nova-uuid: $out"
st_check "ovsdb-server refuses a VM a second current id of a kind ((vm, kind, retired) index)" \
    grep -q '"error":"constraint violation"' <<<"$out"
out=$(dbq '{"op": "insert", "table": "VM_Id", "row": {"vm": "x",
      "kind": "vmware-uuid", "id": "1"}}')
st_check "ovsdb-server refuses an unknown kind" \
    grep -q '"error":"constraint violation"' <<<"$out"
st_check "nothing was pushed by the refusals" test "$(n_records)" = "$n0"

# Forgotten, an id may go to another VM.
run -v id-delete platform-id:42
st_check "id-delete forgets the retired platform-id" out_is "deleted platform-id:42"
run id-set --vm "$OTHER" platform-id:42
st_check "then another VM may have it" exits 0
run id-show platform-id:42
st_check "  and it names that VM now" out_is "$OTHER"
run id-delete platform-id:42
run id-delete platform-id:42
st_check "id-delete of an unknown id: exit 1" \
    exit_and 1 err_has "no VM has the id platform-id:42"

# --- ambiguous, unknown, malformed --------------------------------------------
st_chanctl id-set --vm "$OTHER" platform-id:7 >/dev/null &&
    st_chanctl id-set --vm "$THIRD" iface-id:7 >/dev/null ||
    st_fail "id-set for $OTHER and $THIRD"
run id-show any:7
st_check "any:7, a platform-id of one VM and an iface-id of another: ambiguous" \
    exit_and 1 err_has "any:7 is ambiguous" "$OTHER (platform-id)" \
    "$THIRD (iface-id)"
run push --vm any:7 amb '"x"'
st_check "push --vm any:7: refused, exit 1" exits 1
run id-show platform-id:7
st_check "with its kind it is not ambiguous" out_is "$OTHER"
run id-show "any:$IFACE"
st_check "any: of an id of one VM under one kind resolves" out_is "$V1"
run status --vm "nova-uuid:$ZERO"
st_check "status --vm an unknown id: exit 1, says so" \
    exit_and 1 err_has "no VM has the id nova-uuid:$ZERO"
run push --vm "nova-uuid:$ZERO" k '"v"'
st_check "push --vm an unknown id: exit 1" exits 1
run wait --vm "nova-uuid:$ZERO" --timeout 1
st_check "wait --vm an unknown id: exit 1" exits 1
run channel-show "nova-uuid:$ZERO"
st_check "channel-show of an unknown id: exit 1" exits 1
run status --vm libvirt-uuid:xyz
st_check "a malformed UUID: usage error that says what a UUID is" \
    exit_and 2 err_has "is not a libvirt-uuid"
run push --vm bogus:1 k '"v"'
st_check "an unknown kind: usage error" exits 2
run id-set --vm "$V1" platform-id:-1
st_check "a negative platform-id: usage error" exits 2
run id-set --vm "$V1" "iface-id:a b"
st_check "an iface-id with a space: usage error" exits 2
st_check "nothing was pushed by the failures" test "$(n_records)" = "$n0"
st_check "the channel is still in sync" st_chanctl wait --timeout 30

st_exit
