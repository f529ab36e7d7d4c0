#!/usr/bin/env bash
# One hypervisor's chand-host crashes; the other goes on.  The clustered
# Chan DB over ssl:, hv-a (vm1, vm2) and hv-b (vm3, vm4).  hv-a's
# chand-host is killed (SIGKILL); meanwhile records are pushed to vm3 and
# vm4, to vm1 and vm2, and to all VMs: vm3 and vm4 get theirs at once
# (hv-b is not affected: same session, still connected), vm1 and vm2 get
# nothing until hv-a's chand-host is started again, and then exactly what
# was pushed to them while it was down (keys, values, versions), resuming
# their sessions.
. "$(dirname "$0")/lib.sh"
st_require_root
. "$(dirname "$0")/cluster-lib.sh"

ct_up
ct_push push motd '"before the crash"'
ct_push push --vm "$CT_V1" role '"web"'
ct_push push --vm "$CT_V3" role '"db"'
ct_bulk before 3 300 30 0 "${CT_VMS[@]}" 2>/dev/null ||
    st_fail "the first push failed"
ct_converge "the first records are delivered"
ct_check_stores "${CT_VMS[@]}"
sessions_a=$(ct_channel "$CT_V1" counters.sessions)

cl_hv hv-a topo_host_kill || { st_fail "cannot kill hv-a's chand-host"; exit 1; }
ct_log "killed hv-a's chand-host (SIGKILL)"
ct_check "hv-a's chand-host is gone" \
    eval '! cl_host_status hv-a >/dev/null 2>&1'

# While it is down: records for hv-b's VMs, for hv-a's, and for all.
ct_bulk down-b 5 500 25 0.01 "$CT_V3" "$CT_V4" 2>"$OVSI_BASE/down-b.err" ||
    st_fail "the push to vm3 and vm4 failed"
ct_bulk down-a 6 500 25 0.01 "$CT_V1" "$CT_V2" 2>"$OVSI_BASE/down-a.err" ||
    st_fail "the push to vm1 and vm2 failed"
ct_push push motd '"while hv-a is down"'
ct_push push --vm "$CT_V1" role '"web, while down"'
ct_push delete --vm "$CT_V3" role
ct_log "pushed $(cat "$OVSI_BASE"/push-down-*.log | wc -l) operations while hv-a's chand-host is down"

ct_converge "vm3 and vm4 are in sync while hv-a is down" 60 "$CT_V3" "$CT_V4"
ct_expect "${CT_VMS[@]}"
for vm in "$CT_V3" "$CT_V4"; do
    if st_wait 30 ct_store_is "$vm"; then
        ct_log "ok: while hv-a is down: $(ct_store_is "$vm")"
    else
        ct_store_is "$vm" >&2
        st_fail "$vm got what was pushed while hv-a's chand-host is down"
    fi
done
for vm in "$CT_V1" "$CT_V2"; do
    ct_check "$vm has not got it (its chand-host is down)" \
        eval '! ct_store_is "$vm" >/dev/null'
done
ct_check "hv-b's chand-host stayed connected to the Chan DB" \
    ct_host_connected hv-b

cl_hv hv-a topo_host_start || st_fail "hv-a's chand-host does not restart"
ct_log "hv-a's chand-host started again"
ct_check "hv-a's chand-host connects to the Chan DB" \
    st_wait 30 ct_host_connected hv-a
ct_converge "every channel ready and in sync" 90
ct_check_stores "${CT_VMS[@]}"
stat() {
    ct_tool channels "$(cl_remotes)" "$1" | python3 -c '
import json, sys
rows = [r for r in json.load(sys.stdin) if r["chassis"] == sys.argv[1]]
print(rows[0]["statistics"].get(sys.argv[2], 0) if rows else "-")' "$2" "$3"
}
for vm in "$CT_V1" "$CT_V2"; do
    ct_check "$vm resumed its session after the restart (resumes_after_restart $(stat "$vm" hv-a resumes_after_restart))" \
        test "$(stat "$vm" hv-a resumes_after_restart)" -ge 1
    ct_check "$vm needed no new session (chand-host's sessions: $(ct_channel "$vm" counters.sessions))" \
        eval 'case $(ct_channel "$vm" counters.sessions) in -|0) true ;; *) false ;; esac'
done
for vm in "$CT_V3" "$CT_V4"; do
    ct_check "$vm: hv-b kept its first session" \
        test "$(ct_channel "$vm" counters.sessions)" = 1
done
st_exit
