#!/usr/bin/env bash
# Fault: a guest's datastore is lost or goes back in time while chand-guest
# is stopped.
#  1. Wiped (a rebuilt VM): guest.db, -wal and -shm deleted.  chand-guest
#     creates a new store with a new guest epoch; chand-host must start a
#     new session and deliver the whole desired state as a snapshot.
#  2. Restored from an older copy of the store (a VM rolled back to a
#     snapshot image): same guest epoch, but a position behind what the
#     host saw acknowledged, and records since deleted.  chand-host must
#     start a new session, and the end of the snapshot must delete every
#     record the desired state no longer holds.

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fault-lib.sh"
st_require_root

db_files() {
    local db=$TOPO_RUN/chst-fvm1/guest.db
    printf '%s\n' "$db" "$db-wal" "$db-shm"
}
guest_epoch() {
    fl_guest chst-fvm1 | cut -d' ' -f5
}
sessions() {
    fl_host chst-fvm1 counters.sessions
}
# stop_guest: stops chst-fvm1's chand-guest with nothing in flight; the
# frames check then goes on from the host's count at that moment.
stop_guest() {
    fl_converge "$1"
    topo_guest_stop chst-fvm1
    FL_HOFF[chst-fvm1]=$(fl_host chst-fvm1 counters.msgs_acked)
}

fl_up chst-fvm1:21 chst-fvm2:22
fl_bulk b 13 2000 1000 0
for i in $(seq 6); do
    fl_push push "pre$i" "\"before $i\""
    fl_push push --vm chst-fvm1 "own$i" "\"vm1 only $i\""
done

# --- 1: wiped ------------------------------------------------------------
stop_guest "records delivered before the wipe"
epoch0=$(guest_epoch)
sessions0=$(sessions)
rm -f $(db_files)
fl_log "chst-fvm1's chand-guest stopped, its datastore deleted (guest epoch" \
    "was $epoch0)"
fl_push delete pre1
fl_push push pre2 '"changed while vm1 was being rebuilt"'
fl_push delete --vm chst-fvm1 own1
fl_bulk c 17 300 300 0
topo_guest_start chst-fvm1 21 || st_fail "chand-guest did not start"
FL_GOFF[chst-fvm1]=0
fl_final_checks
epoch1=$(guest_epoch)
fl_log "chst-fvm1: guest epoch $epoch0 -> $epoch1, host sessions $sessions0 -> $(sessions)"
st_check "the rebuilt store has a new guest epoch" test "$epoch1" != "$epoch0"
st_check "chand-host started a new session for it" \
    test "$(sessions)" = $((sessions0 + 1))

# --- 2: restored from an older copy --------------------------------------
stop_guest "records delivered before the backup"
mkdir -p "$OVSI_BASE/backup"
cp $(db_files) "$OVSI_BASE/backup/" 2>/dev/null
backup_frames=$(fl_guest_frames chst-fvm1)
fl_log "copied chst-fvm1's store: $(fl_guest chst-fvm1) (frames ops" \
    "position host_epoch guest_epoch)"
topo_guest_start chst-fvm1 21 || st_fail "chand-guest did not start"
# Records that the old copy has and the desired state will not.
fl_push delete pre3
fl_push delete --vm chst-fvm1 own2
fl_push delete --vm chst-fvm1 own3
fl_push push pre4 '"changed after the backup"'
fl_push push --vm chst-fvm1 own4 '"changed after the backup"'
fl_bulk b 23 400 400 0          # Updates and deletes of earlier b/ keys.
stop_guest "records delivered after the backup"
sessions0=$(sessions)
rm -f $(db_files)
cp "$OVSI_BASE"/backup/* "$TOPO_RUN/chst-fvm1/"
fl_log "chst-fvm1's store rolled back to the copy: $(fl_guest chst-fvm1)"
FL_GOFF[chst-fvm1]=$backup_frames
topo_guest_start chst-fvm1 21 || st_fail "chand-guest did not start"
fl_final_checks
fl_log "chst-fvm1: host sessions $sessions0 -> $(sessions)"
st_check "chand-host started a new session for the rolled-back store" \
    test "$(sessions)" = $((sessions0 + 1))
st_check "the snapshot deleted stale records" \
    grep -Eq "snapshot of host epoch .* [1-9][0-9]* stale records deleted" \
    "$TOPO_RUN/chst-fvm1/chand-guest.log"
st_exit
