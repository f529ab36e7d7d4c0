#!/usr/bin/env bash
# Fault: records deleted (and some updated) while a VM is unreachable must
# be gone from it once it is back.
#  1. chand-guest stopped (the VM is off).
#  2. The VM's vNIC down on the host (chand-guest runs, hears nothing; the
#     host's retransmissions go nowhere).
#  3. chand-guest stopped and chand-host crashing and restarting meanwhile:
#     the new chand-host knows what the VM has only from the Chan DB.
# Each time the other VM stays in sync throughout.

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fault-lib.sh"
st_require_root

vm1_has() {
    sqlite3 -readonly "$TOPO_RUN/chst-fvm1/guest.db" \
        "SELECT count(*) FROM records WHERE key = '$1'"
}
# offline_changes N: deletes and updates made while chst-fvm1 is away;
# N tells the rounds apart.
offline_changes() {
    local n=$1
    fl_push delete "all$n"                    # all-VM record
    fl_push delete --vm chst-fvm1 "own$n"     # vm1's own record
    fl_push delete --vm chst-fvm1 "ovr$n"     # own override: all-VM comes back
    fl_push push "upd$n" "\"updated offline, round $n\""
    fl_push push --vm chst-fvm1 "vupd$n" "\"updated offline, round $n\""
    fl_push push "gone$n" '"short-lived"'
    fl_push delete "gone$n"                   # created and deleted offline
    fl_push delete "rec$n"                    # deleted and created again:
    fl_push push "rec$n" "\"recreated $n\""    # its version starts over
    fl_bulk b $((40 + n)) 300 300 0           # b/ updates and deletes
}
# vm1_down_checks N: while chst-fvm1 is away, the Chan DB shows it pending
# and chst-fvm2 in sync.
vm1_down_checks() {
    fl_pending chst-fvm1
    if st_chanctl wait --vm chst-fvm2 --timeout 20; then
        fl_log "ok: chst-fvm2 in sync while chst-fvm1 is away"
    else
        st_fail "chst-fvm2 not in sync while chst-fvm1 is away"
    fi
}
# vm1_back_checks N: the deleted keys are gone from chst-fvm1's store.
vm1_back_checks() {
    local n=$1
    fl_converge "chst-fvm1 caught up after round $n"
    fl_check "round $n: deleted records are gone from chst-fvm1" test \
        "$(vm1_has "all$n")$(vm1_has "own$n")$(vm1_has "gone$n")" = 000
    fl_check "round $n: the all-VM record is back under the deleted override" \
        test "$(st_guest chst-fvm1 get "ovr$n")" = "\"all $n\""
    fl_check "round $n: the record deleted and created again has its new value" \
        test "$(st_guest chst-fvm1 get "rec$n")" = "\"recreated $n\""
}

fl_up chst-fvm1:21 chst-fvm2:22
fl_bulk b 1 1500 1500 0
for n in 1 2 3; do
    fl_push push "all$n" "\"all $n\""
    fl_push push --vm chst-fvm1 "own$n" "\"own $n\""
    fl_push push "ovr$n" "\"all $n\""
    fl_push push --vm chst-fvm1 "ovr$n" "\"override $n\""
    fl_push push "upd$n" "\"all $n\""
    fl_push push --vm chst-fvm1 "vupd$n" "\"own $n\""
    fl_push push "rec$n" "\"original $n\""
done
fl_converge "initial records delivered"

# --- 1: chand-guest stopped ----------------------------------------------
sessions0=$(fl_host chst-fvm1 counters.sessions)
topo_guest_stop chst-fvm1
fl_log "round 1: chand-guest of chst-fvm1 stopped"
offline_changes 1
vm1_down_checks
topo_guest_start chst-fvm1 21 || st_fail "chand-guest did not start"
vm1_back_checks 1

# --- 2: vNIC down --------------------------------------------------------
topo_vm_link chst-fvm1 down || st_fail "cannot set the vNIC down"
fl_log "round 2: chst-fvm1's vNIC down"
offline_changes 2
vm1_down_checks
sleep 2                         # The host retransmits into the void.
fl_log "chst-fvm1 while its vNIC is down: $(fl_channel chst-fvm1)"
topo_vm_link chst-fvm1 up || st_fail "cannot set the vNIC up"
vm1_back_checks 2
sessions=$(fl_host chst-fvm1 counters.sessions)
fl_check "rounds 1 and 2 resumed the session (host sessions $sessions0 -> $sessions)" \
    test "$sessions" = "$sessions0"

# --- 3: chand-guest stopped, chand-host restarted meanwhile ---------------
sleep 0.5                       # Channel rows written.
topo_guest_stop chst-fvm1
topo_host_kill
fl_log "round 3: chand-guest of chst-fvm1 stopped, chand-host killed"
for vm in "${FL_VMS[@]}"; do
    FL_GOFF[$vm]=$(fl_guest_frames "$vm")
    FL_HOFF[$vm]=0
done
offline_changes 3
topo_host_start || st_fail "chand-host did not restart"
vm1_down_checks
topo_guest_start chst-fvm1 21 || st_fail "chand-guest did not start"
vm1_back_checks 3

fl_final_checks
st_exit
