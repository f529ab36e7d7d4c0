#!/usr/bin/env bash
# Fault: chand-host killed (SIGKILL) and restarted, twice.
#  1. In the middle of a bulk push; while it is down, records are deleted
#     and updated.  The new chand-host either resumes where the guest is
#     (if the Channel row's applied_seq matches the guest's position) or
#     starts a new session whose snapshot deletes what is no longer
#     desired.
#  2. With everything delivered; records deleted and updated while it is
#     down.  The guest is exactly where the Channel row says, so the new
#     chand-host must resume the old session and send only the difference
#     (deletes included), without a snapshot.

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fault-lib.sh"
st_require_root

fl_up chst-fvm1:21 chst-fvm2:22
for i in $(seq 6); do
    fl_push push "pre$i" "\"before the crash $i\""
    fl_push push --vm chst-fvm1 "own$i" "\"vm1 only $i\""
    fl_push push --vm chst-fvm2 "own$i" "\"vm2 only $i\""
done
fl_converge "initial records delivered"

# The frames check restarts with the new chand-host: its counters start
# at 0, the guests' at what they hold when it comes back.
host_down() {
    local vm
    sleep 0.5                   # Frames still in the datapath land.
    for vm in "${FL_VMS[@]}"; do
        FL_GOFF[$vm]=$(fl_guest_frames "$vm")
        FL_HOFF[$vm]=0
        fl_log "$vm while chand-host is down: $(fl_guest "$vm") (frames ops" \
            "position host_epoch guest_epoch)"
    done
}

# --- 1: in the middle of a push -----------------------------------------
fl_bulk_bg b 5 3000 300 0.2
fl_midpush chst-fvm1 200 10 "$TOPO_RUN/chand-host.pid" chand-host
topo_host_kill
fl_pending chst-fvm1
host_down
fl_bulk_join
fl_push delete pre1
fl_push delete --vm chst-fvm1 own1
fl_push delete --vm chst-fvm2 own2
fl_push push pre2 '"updated while chand-host was down"'
fl_push push --vm chst-fvm1 own3 '"updated while chand-host was down"'
fl_push delete --vm chst-fvm1 own4
n_log=$(wc -l <"$TOPO_RUN/chand-host.log")
topo_host_start || st_fail "chand-host did not restart"
fl_log "chand-host restarted"
fl_hot 12 hot/
fl_final_checks
for vm in "${FL_VMS[@]}"; do
    fl_log "$vm after restart 1: $(tail -n +$((n_log + 1)) "$TOPO_RUN/chand-host.log" |
        grep -E "$vm: (new session|guest is where)" | sed 's/.*|INFO|//' |
        head -2 | tr '\n' ' ')"
done

# --- 2: with everything delivered ----------------------------------------
sleep 0.5                       # Channel rows written (every 200 ms).
topo_host_kill
fl_log "killed chand-host (SIGKILL) with every channel synced"
host_down
fl_push delete pre3
fl_push delete --vm chst-fvm1 own5
fl_push push pre5 '"updated while chand-host was down (2)"'
fl_push push --vm chst-fvm2 own6 '"updated while chand-host was down (2)"'
fl_push push --vm chst-fvm2 pre6 '"vm2 now overrides pre6"'
fl_push push new-after '"created while chand-host was down"'
topo_host_start || st_fail "chand-host did not restart"
fl_log "chand-host restarted"
fl_final_checks
for vm in "${FL_VMS[@]}"; do
    read -r sessions resumes <<<"$(fl_host "$vm" counters.sessions \
        counters.resumes_after_restart | tr '\n' ' ')"
    st_check "$vm: the new chand-host resumed the old session (sessions ${sessions/-/0}, resumes after restart ${resumes/-/0})" \
        test "${sessions/-/0}" = 0 -a "${resumes/-/0}" = 1
done
st_exit
