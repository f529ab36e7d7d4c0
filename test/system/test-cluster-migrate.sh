#!/usr/bin/env bash
# A VM's channel follows its vNIC (doc/operations.md, "Migration"): the
# clustered Chan DB over ssl:, hv-a (vm1, vm2) and hv-b (vm3, vm4).  vm1's
# vNIC moves from hv-a to hv-b while its namespace, OVS and chand-guest
# keep running and a record is pushed to it every 50 ms, then back to
# hv-a.  After each move the Channel row with the highest claim for vm1
# names the destination and is ready, the old chassis's row is gone or
# "released", vm1's datastore is exactly what was pushed (keys, values,
# versions), and the guest never needed a full snapshot again: the serving
# row's statistics "sessions" does not grow across a move while
# "resumes_after_migration" does (the statistics are the counters of the
# chand-host that writes the row: on the destination's new row it is 1,
# with no session), and chand-guest began no other snapshot.
# After both moves the serving row counts 2 migrations.
. "$(dirname "$0")/lib.sh"
st_require_root
. "$(dirname "$0")/cluster-lib.sh"

ct_up
ct_push push motd '"before the moves"'
ct_push push --vm "$CT_V1" role '"web"'
ct_bulk before 3 200 20 0 "${CT_VMS[@]}" 2>/dev/null ||
    st_fail "the first push failed"
ct_converge "the first records are delivered"
ct_check_stores "$CT_V1"

# serving VM FIELD...: FIELD (chassis, state, claim, migrations, or
# statistics.NAME, 0 if absent) of VM's Channel row with the highest claim.
serving() {
    local vm=$1
    shift
    ct_tool channels "$(cl_remotes)" "$vm" | python3 -c '
import json, sys
rows = json.load(sys.stdin)
if not rows:
    print("none")
    sys.exit(1)
row = max(rows, key=lambda r: r.get("claim") or 0)
out = []
for f in sys.argv[1:]:
    if f.startswith("statistics."):
        out.append(str((row.get("statistics") or {}).get(f[11:], 0)))
    else:
        out.append(str(row.get(f)))
print(" ".join(out))' "$@"
}
rows() {
    ct_tool channels "$(cl_remotes)" "$1" | python3 -c '
import json, sys
for r in json.load(sys.stdin):
    s = r.get("statistics") or {}
    print("    chassis %s state %s claim %s migrations %s sessions %s resumes_after_migration %s resumes_after_restart %s"
          % (r["chassis"], r["state"], r.get("claim"), r.get("migrations"),
             s.get("sessions", 0), s.get("resumes_after_migration", 0),
             s.get("resumes_after_restart", 0)))'
}
# old_row_gone VM CHASSIS: CHASSIS's row for VM is deleted or "released".
old_row_gone() {
    ct_tool channels "$(cl_remotes)" "$1" | python3 -c '
import json, sys
rows = [r for r in json.load(sys.stdin) if r["chassis"] == sys.argv[1]]
sys.exit(0 if all(r["state"] == "released" for r in rows) else 1)' "$2"
}
serving_is() {
    [ "$(serving "$1" chassis state)" = "$2 ready" ]
}
guest_snapshots() {
    st_guest "$CT_V1" guest-status --json |
        python3 "$CT_HERE/fault-tool.py" json-get counters.snapshots_begun
}

# The pusher: one record to vm1 every 50 ms (new keys and updates of a
# few hot ones), each logged once chanctl says it committed.
pusher() {
    local i=$1
    while [ ! -e "$OVSI_BASE/stop" ]; do
        if [ $((i % 3)) = 0 ]; then
            ct_push push --vm "$CT_V1" "hot/$((i % 7))" "{\"i\":$i}"
        else
            ct_push push --vm "$CT_V1" "cont/$i" "\"pushed while moving $i\""
        fi || echo "$i" >>"$OVSI_BASE/push-failed"
        i=$((i + 1))
        sleep 0.05
    done
}
pusher_start() {
    rm -f "$OVSI_BASE/stop"
    pusher "$1" &
    PUSHER=$!
}
pusher_stop() {
    touch "$OVSI_BASE/stop"
    wait "$PUSHER"
    ct_check "every push during the move committed" \
        test ! -e "$OVSI_BASE/push-failed"
}

rows "$CT_V1" >&2
read -r S0 R0 <<<"$(serving "$CT_V1" statistics.sessions statistics.resumes_after_migration)"
G0=$(guest_snapshots)
ct_log "before: $CT_V1 served by $(serving "$CT_V1" chassis), sessions $S0, resumes_after_migration $R0, guest snapshots begun $G0"

# move VM FROM TO ROUND: migrate under the pusher, then the checks.
move() {
    local vm=$1 from=$2 to=$3 round=$4 s r g
    pusher_start "$((round * 100000))"
    sleep 1
    ct_log "moving $vm's vNIC from $from to $to"
    cl_migrate "$vm" "$to" || { st_fail "cl_migrate $vm $to failed"; exit 1; }
    if st_wait 30 serving_is "$vm" "$to"; then
        ct_log "ok: the newest claim for $vm is $to's, ready: $(serving "$vm" chassis state claim migrations)"
    else
        st_fail "the newest claim for $vm is $to's, ready (it is: $(serving "$vm" chassis state claim migrations))"
    fi
    sleep 1
    pusher_stop
    ct_log "$(cat "$OVSI_BASE"/push-chanctl.log | wc -l) chanctl pushes so far"
    ct_converge "$vm is in sync after the move" 60 "$vm"
    rows "$vm" >&2
    ct_check "$from's row for $vm is deleted or released" \
        st_wait 20 old_row_gone "$vm" "$from"
    ct_check_stores "$vm"
    read -r s r <<<"$(serving "$vm" statistics.sessions statistics.resumes_after_migration)"
    g=$(guest_snapshots)
    ct_check "no full snapshot for the move: the serving row's sessions did not grow ($S0 -> $s)" \
        test "$s" -le "$S0"
    # Channel.statistics are the counters of the chand-host that writes
    # the row (doc/chan-db.md): the destination's row starts from 0, so
    # "grew" is either more than the source row's, or at least 1 on a row
    # that began no session.
    ct_check "the serving row's resumes_after_migration grew ($R0 -> $r, sessions $s)" \
        eval '[ "$r" -gt "$R0" ] || { [ "$r" -ge 1 ] && [ "$s" = 0 ]; }'
    ct_check "chand-guest began no snapshot ($G0 -> $g)" test "$g" = "$G0"
    ct_check "$vm's chand-guest still runs (the VM stayed up)" \
        eval 'st_guest "$vm" guest-status >/dev/null'
    S0=$s R0=$r
}

move "$CT_V1" hv-a hv-b 1
move "$CT_V1" hv-b hv-a 2
ct_check "the serving row counts 2 migrations ($(serving "$CT_V1" migrations))" \
    test "$(serving "$CT_V1" migrations)" = 2
ct_check "vm2, vm3 and vm4 were not disturbed" \
    eval 'ct_converge "the other VMs in sync" 30 "$CT_V2" "$CT_V3" "$CT_V4"'
ct_push push motd '"after the moves"'
ct_check_stores "${CT_VMS[@]}"
st_exit
