#!/usr/bin/env bash
# The upstream direction (doc/SESSION.md, "Upstream"): a VM publishes
# records, the Chan DB's Guest_Record table follows.
#
# chst-uvm1 publishes 1,000 operations (new records, updates, withdrawals)
# under each fault of the reliability matrix, one after the other on the
# same topology: 20% loss into the guest and 10% out of it; kill -9 of
# chand-guest; kill -9 of chand-host; an ovs-vswitchd restart; an
# ovsdb-server restart; a wiped guest datastore.  After each, Guest_Record
# must equal exactly what chst-uvm1 holds as published, which must equal
# the model of what was published, and nothing may be pending in the VM.
# No version is written twice: the rows chand-host wrote stay within the
# operations made.
#
# Then the relay: a rule lets chst-uvm1's share/ records reach chst-uvm2,
# and nothing else reaches anyone; messages (to/VM/...) go only where a
# rule allows and are otherwise refused and counted; withdrawing a record
# or deleting the rule takes the relayed copies away.  And the limits: a
# VM over its record limit gets an error, keeps what it has, and cannot
# publish under from/.

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fault-lib.sh"
st_require_root
command -v nft >/dev/null || { echo "$ST_NAME: SKIP: no nft" >&2; exit 77; }
here=$(cd "$(dirname "$0")" && pwd)
PY=$(python3 -c 'import sys; print(sys.executable)')
UT=$here/upstream-tool.py
TOPO_HOST_NS=chst-uhv
V1=chst-uvm1 V2=chst-uvm2 V3=chst-uvm3
M=$OVSI_BASE/model.json
N=${CHAND_UPSTREAM_OPS:-1000}
OPS=0

ut_vm() {               # VM ARGS...: upstream-tool.py inside VM.
    local vm=$1
    shift
    ip netns exec "$vm" "$PY" "$UT" "$@"
}

ut() {
    "$PY" "$UT" "$@"
}

counter() {             # VM NAME: one of chand-host's counters for VM.
    fl_host "$1" "counters.$2" | sed 's/^-$/0/'
}

# converged VM: nothing pending in VM, and Guest_Record equals what VM
# holds as published, which equals the model.
converged() {
    local vm=$1 pub=$OVSI_BASE/pub.json rows=$OVSI_BASE/rows.json
    ut_vm "$vm" published >"$pub.all" 2>/dev/null || return 1
    [ "$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["pending"])' "$pub.all")" = 0 ] ||
        return 1
    "$PY" -c 'import json,sys; json.dump(json.load(open(sys.argv[1]))["records"], open(sys.argv[2], "w"))' \
        "$pub.all" "$pub"
    # The workload's records: all but chand-guest's own statistics.
    "$PY" -c 'import json,sys; r = json.load(open(sys.argv[1])); json.dump({k: v for k, v in r.items() if not k.startswith("stats/")}, open(sys.argv[2], "w"))' \
        "$pub" "$pub.work"
    ut guest-records "$(topo_db)" "$vm" >"$rows" || return 1
    ut compare x "$pub" "$rows" >/dev/null
}

# check PHASE: the end checks after one phase.
check() {
    local phase=$1 pub=$OVSI_BASE/pub.json rows=$OVSI_BASE/rows.json
    if st_wait 90 converged "$V1"; then
        fl_log "ok: $phase: converged ($(counter "$V1" up_batches) batches," \
            "$(counter "$V1" up_rows_written) rows written)"
    else
        st_fail "$phase: $V1 did not converge"
    fi
    hcheck ut compare "$phase: Guest_Record equals what $V1 holds" \
        "$pub" "$rows"
    hcheck ut compare "$phase: what $V1 holds equals what was published" \
        "$M" "$pub.work"
}

hcheck() {
    local line out rc
    out=$("$@" 2>&1)
    rc=$?
    while IFS= read -r line; do
        case $line in
            ok:*) fl_log "$line" ;;
            FAIL:*) st_fail "${line#FAIL: }" ;;
            *) st_log "  $line" ;;
        esac
    done <<<"$out"
    [ $rc = 0 ] || [ -n "$out" ] || st_fail "$*: exit $rc"
}

work() {                # PREFIX SEED [PAUSE]: N operations in V1.
    ut_vm "$V1" work "$M" "$1" "$2" "$N" --pause "${3:-0}"
}

work_bg() {
    work "$@" >"$OVSI_BASE/work.out" 2>&1 &
    WORK_PID=$!
}

work_join() {
    if wait "$WORK_PID"; then
        fl_log "  workload: $(cat "$OVSI_BASE/work.out")"
        OPS=$((OPS + N))
    else
        st_fail "workload failed: $(tail -3 "$OVSI_BASE/work.out")"
    fi
}

fl_up "$V1:31" "$V2:32" "$V3:33"
echo '{}' >"$M"
# The other direction runs at the same time, during the first phases:
# records pushed to the VMs, checked at the end (fl_final_checks).
fl_bulk_bg d 11 2000 100 0.1

# --- the fault matrix ---------------------------------------------------

work a 1
OPS=$((OPS + N))
check "no fault"

topo_vm_loss "$V1" 20 10 || { st_fail "cannot add the loss rules"; exit 1; }
work_bg l 2 0.002
work_join
fl_log "  loss dropped $(topo_vm_loss_drops "$V1" in) datagrams to $V1 and" \
    "$(topo_vm_loss_drops "$V1" out) from it"
check "20% loss in, 10% out"
st_check "the loss dropped the guest's frames (its DATA)" \
    test "$(topo_vm_loss_drops "$V1" out)" -gt 0
topo_vm_loss_off "$V1"
st_check "chand-host saw duplicates or gaps under loss" \
    test "$(( $(counter "$V1" up_rx_duplicate) + $(counter "$V1" up_drop_gap) ))" -gt 0

fl_bulk_join

work_bg g 3 0.004
sleep 1
topo_guest_kill "$V1"
sleep 0.5
topo_guest_start "$V1" 31 || st_fail "chand-guest did not restart"
work_join
check "kill -9 chand-guest"

work_bg h 4 0.004
sleep 1
# A restarted chand-host counts its acknowledged messages from 0 again
# (nothing goes downstream meanwhile: the push is over).
for vm in "${FL_VMS[@]}"; do
    FL_GOFF[$vm]=$(fl_guest_frames "$vm")
    FL_HOFF[$vm]=0
done
topo_host_kill || st_fail "cannot kill chand-host"
sleep 1
topo_host_start || st_fail "chand-host did not restart"
work_join
check "kill -9 chand-host"

work_bg v 5 0.004
sleep 1
topo_host_vswitchd_restart || st_fail "ovs-vswitchd did not restart"
work_join
check "ovs-vswitchd restart"

work_bg o 6 0.004
sleep 1
topo_host_ovsdb_restart || st_fail "ovsdb-server did not restart"
work_join
check "ovsdb-server restart"

WIPED=$("$PY" -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$M")
topo_guest_stop "$V1"
# The new store counts applied frames from 0 again.
FL_GOFF[$V1]=0
FL_HOFF[$V1]=$(fl_host "$V1" counters.msgs_acked)
rm -f "$TOPO_RUN/$V1"/guest.db*
topo_guest_start "$V1" 31 || st_fail "chand-guest did not start on a wiped store"
# The VM holds nothing now (chand-guest's own statistics aside): the rows
# of everything it published before must go.
echo '{}' >"$M"
ut_vm "$V1" call published '[]' >/dev/null ||
    st_fail "chand-guest does not answer on its new store"
check "wiped guest datastore (empty)"
work w 7
OPS=$((OPS + N))
check "wiped guest datastore, then $N operations"

# At most once: every row chand-host wrote is a version the guest made (an
# operation, or chand-guest's statistics record, republished every 10 s
# and at each start) or a delete of the wiped store's snapshot.
written=$(counter "$V1" up_rows_written)
elapsed=$(fl_elapsed | cut -d. -f1)
bound=$((OPS + WIPED + 2 * (elapsed / 10 + 4)))
fl_log "chand-host wrote $written rows for $OPS operations, $WIPED deletes" \
    "after the wipe, ${elapsed}s of statistics"
st_check "no version was written twice ($written rows <= $bound)" \
    test "$written" -le "$bound"

# --- relay --------------------------------------------------------------

db_tx() {
    ovsdb-client transact "$(topo_db)" "[\"Chan\",$1]" >/dev/null
}

has() {                 # VM KEY: VM's datastore holds KEY.
    st_guest "$1" get "$2" >/dev/null 2>&1
}

hasnt() {
    ! has "$@"
}

from_count() {          # VM: records under from/ in VM's datastore.
    st_guest "$1" list from/ 2>/dev/null | grep -c . || true
}

ut_vm "$V1" call publish '["share/a", {"doc": 1}]' >/dev/null &&
ut_vm "$V1" call publish '["other/x", 1]' >/dev/null ||
    st_fail "publish in $V1"
sleep 2
st_check "no rule: nothing relayed to $V2" test "$(from_count "$V2")" = 0
st_check "no rule: nothing relayed to $V3" test "$(from_count "$V3")" = 0

db_tx '{"op":"insert","table":"Relay","row":{"source":"'"$V1"'",
        "prefix":"share/","to":"vms","vms":["set",["'"$V2"'"]]}}' ||
    st_fail "insert the Relay rule"
st_check "$V2 gets $V1's share/a as from/$V1/share/a" \
    st_wait 20 has "$V2" "from/$V1/share/a"
st_check "$V2 gets the value $V1 published" \
    test "$(st_guest "$V2" get "from/$V1/share/a")" = '{"doc":1}'
ut_vm "$V1" call publish '["share/b", "late"]' >/dev/null
st_check "$V2 gets share/b published after the rule" \
    st_wait 20 has "$V2" "from/$V1/share/b"
st_check "$V2 does not get other/x (no rule for it)" \
    hasnt "$V2" "from/$V1/other/x"
st_check "$V3 gets nothing" test "$(from_count "$V3")" = 0
st_check "$V1 does not get its own records back" \
    test "$(from_count "$V1")" = 0

ut_vm "$V1" call unpublish '["share/a"]' >/dev/null
st_check "withdrawing share/a takes it from $V2" \
    st_wait 20 hasnt "$V2" "from/$V1/share/a"

# Messages: vm1 may message vm2, not vm3.
db_tx '{"op":"insert","table":"Relay","row":{"source":"'"$V1"'",
        "prefix":"to/","to":"vms","vms":["set",["'"$V2"'"]]}}' ||
    st_fail "insert the message rule"
ut_vm "$V1" call publish '["to/'"$V2"'/hello", "hi"]' >/dev/null
ut_vm "$V1" call publish '["to/'"$V3"'/hello", "hi"]' >/dev/null
st_check "$V2 gets $V1's message" \
    st_wait 20 has "$V2" "from/$V1/to/$V2/hello"
refused() {
    [ "$(counter "$V1" relay_refused)" -ge 1 ]
}
st_check "$V1's message to $V3 is refused and counted" st_wait 20 refused
st_check "$V3 still gets nothing" test "$(from_count "$V3")" = 0

db_tx '{"op":"delete","table":"Relay","where":[]}'
gone() {
    [ "$(from_count "$V2")" = 0 ]
}
st_check "deleting the rules takes the relayed records from $V2" \
    st_wait 20 gone

# --- limits -------------------------------------------------------------

db_tx '{"op":"insert","table":"Guest_Limits","row":{"vm":"'"$V3"'",
        "limits":["map",[["max_records",5]]]}}' ||
    st_fail "insert Guest_Limits"
sleep 2
n_ok=0
for i in 1 2 3 4; do
    ut_vm "$V3" call publish '["lim/'"$i"'", '"$i"']' >/dev/null &&
        n_ok=$((n_ok + 1))
done
# stats/chand-guest is the fifth record; a sixth is over the limit.
over=$(ut_vm "$V3" call publish '["lim/5", 5]' 2>&1 >/dev/null)
st_check "$V3 published 4 records under its limit of 5" test "$n_ok" = 4
st_check "the record over $V3's limit is refused with an error ($over)" \
    test -n "$over"
forged=$(ut_vm "$V3" call publish '["from/'"$V1"'/x", 1]' 2>&1 >/dev/null)
st_check "$V3 cannot publish under from/ ($forged)" test -n "$forged"
lim_rows() {
    [ "$(ut guest-records "$(topo_db)" "$V3" lim/ |
         "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 4 ]
}
st_check "Guest_Record holds $V3's 4 records under lim/" st_wait 20 lim_rows

fl_final_checks
st_exit
