#!/usr/bin/env bash
# Each chand-host replicates only what concerns its own VMs (doc/
# operations.md, "Many hypervisors on one Chan DB": --monitor=own, the
# default on ssl:): the clustered Chan DB, hv-a (vm1, vm2) and hv-b (vm3,
# vm4).  200 records pushed to vm3 alone reach hv-b (its Record row
# updates grow by at least 200) and not hv-a (its Record and Guest_Record
# row updates grow by a handful at most); records for all VMs still reach
# all four.  host/status: chan_db.monitor "own", chan_db.row_updates.
. "$(dirname "$0")/lib.sh"
st_require_root
. "$(dirname "$0")/cluster-lib.sh"

HANDFUL=5
ct_up
ct_push push motd '"for everyone"'
ct_push push --vm "$CT_V1" role '"web"'
ct_push push --vm "$CT_V3" role '"db"'
ct_converge "the first records are delivered"
ct_check_stores "${CT_VMS[@]}"

for hv in hv-a hv-b; do
    ct_log "$hv: chan_db: $(cl_host_status "$hv" | python3 -c '
import json, sys
print(json.dumps(json.load(sys.stdin).get("chan_db"), sort_keys=True))' | cut -c1-400)"
    ct_check "$hv's chand-host monitors its own VMs only (chan_db.monitor own)" \
        test "$(ct_host "$hv" chan_db.monitor)" = own
done

updates() {
    ct_host "$1" "chan_db.row_updates.$2"
}
A_REC=$(updates hv-a Record) A_GREC=$(updates hv-a Guest_Record)
B_REC=$(updates hv-b Record)
ct_log "before: hv-a row updates Record $A_REC, Guest_Record $A_GREC; hv-b Record $B_REC"
case "$A_REC$A_GREC$B_REC" in
    *[!0-9]*) st_fail "host/status has no chan_db.row_updates"; exit 1 ;;
esac

# 200 operations on vm3's records only, 10 per transaction.
ct_bulk vm3 5 200 10 0.02 --no-all "$CT_V3" 2>"$OVSI_BASE/bulk.err" ||
    st_fail "the push to vm3 failed: $(tail -2 "$OVSI_BASE/bulk.err")"
ct_converge "vm3 is in sync" 60 "$CT_V3"
ct_check_stores "$CT_V3"
sleep 2
a_rec=$(updates hv-a Record) a_grec=$(updates hv-a Guest_Record)
b_rec=$(updates hv-b Record)
ct_log "after 200 operations for vm3: hv-a Record $A_REC -> $a_rec, Guest_Record $A_GREC -> $a_grec; hv-b Record $B_REC -> $b_rec"
ct_check "hv-a got at most $HANDFUL Record updates ($((a_rec - A_REC)))" \
    test $((a_rec - A_REC)) -le $HANDFUL
ct_check "hv-a got at most $HANDFUL Guest_Record updates ($((a_grec - A_GREC)))" \
    test $((a_grec - A_GREC)) -le $HANDFUL
ct_check "hv-b got every one of them ($((b_rec - B_REC)) Record updates)" \
    test $((b_rec - B_REC)) -ge 200

# Records for all VMs (chanctl push without --vm) reach all four.
for i in 1 2 3 4 5; do
    ct_push push "global/$i" "{\"n\":$i}"
done
ct_push delete motd
ct_converge "every channel in sync"
ct_check_stores "${CT_VMS[@]}"
st_exit
