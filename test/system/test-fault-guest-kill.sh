#!/usr/bin/env bash
# Fault: chand-guest killed (SIGKILL) in the middle of a push, twice, with
# more pushes while it is down.  The guest store keeps the position with
# the data, so on restart the guest asks to resume where it is, the host
# goes on from there within the same session (no snapshot), and nothing is
# applied twice or lost.

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fault-lib.sh"
st_require_root

fl_up chst-fvm1:21 chst-fvm2:22
for i in 1 2 3 4; do
    fl_push push "pre$i" "\"before the crash $i\""
    fl_push push --vm chst-fvm1 "own$i" "\"vm1 only $i\""
done
fl_converge "initial records delivered"
sessions0=$(fl_host chst-fvm1 counters.sessions)

n_down=0

# --- 1: while the host delivers a bulk push ------------------------------
fl_bulk_bg b 11 3000 1000 0.3
fl_midpush chst-fvm1 200 10 "$TOPO_RUN/chst-fvm1/chand-guest.pid" chand-guest
topo_guest_kill chst-fvm1
read -r frames ops pos epoch _ <<<"$(fl_guest chst-fvm1)"
fl_log "its datastore: position $pos of host epoch $epoch, $frames frames" \
    "applied"
fl_log "the host had sent up to seq $FL_MID_SENT and seen $FL_MID_ACKED" \
    "acknowledged when it died"
# A record for it alone, which nothing can apply while it is down (the
# guest may have applied and acknowledged all the host had sent).
fl_push push --vm chst-fvm1 "down$((++n_down))" '"pushed while it is down"'
fl_pending chst-fvm1
fl_hot 12 hot/
fl_push delete pre1
fl_push delete --vm chst-fvm1 own1
fl_push push --vm chst-fvm1 own2 '"updated while vm1 was down"'
sleep 0.5
topo_guest_start chst-fvm1 21 || st_fail "chand-guest did not restart"
fl_log "chand-guest of chst-fvm1 restarted"
fl_bulk_join

# --- 2: again, during the next push --------------------------------------
fl_converge "caught up after the first crash"
base=$(fl_channel chst-fvm1 | cut -d' ' -f2)
fl_bulk_bg c 12 3000 1000 0.3
fl_midpush chst-fvm1 $((base + 100)) 10 \
    "$TOPO_RUN/chst-fvm1/chand-guest.pid" chand-guest
topo_guest_kill chst-fvm1
read -r frames ops pos epoch _ <<<"$(fl_guest chst-fvm1)"
fl_log "its datastore: position $pos, $frames frames applied"
fl_log "the host had sent up to seq $FL_MID_SENT and seen $FL_MID_ACKED" \
    "acknowledged when it died"
# A record for it alone, which nothing can apply while it is down (the
# guest may have applied and acknowledged all the host had sent).
fl_push push --vm chst-fvm1 "down$((++n_down))" '"pushed while it is down"'
fl_pending chst-fvm1
fl_hot 12 hot/
sleep 0.3
topo_guest_start chst-fvm1 21 || st_fail "chand-guest did not restart"
fl_log "chand-guest of chst-fvm1 restarted"
fl_bulk_join
fl_push delete pre2
fl_push push pre3 '"after the crashes"'

fl_final_checks

# The cheap path: the guest resumed its session both times.
read -r sessions resumes <<<"$(fl_host chst-fvm1 counters.sessions \
    counters.resumes | tr '\n' ' ')"
fl_log "chst-fvm1: host sessions $sessions0 -> $sessions, resumes $resumes"
st_check "chst-fvm1 resumed after each crash (no new session, no snapshot)" \
    test "$sessions" = "$sessions0" -a "${resumes/-/0}" -ge 2
st_check "the guest log shows it asked to resume" \
    grep -q "asking the host to resume" "$TOPO_RUN/chst-fvm1/chand-guest.log"
st_exit
