#!/usr/bin/env bash
# Fault: the hypervisor's ovs-vswitchd crashes (SIGKILL) and restarts in
# the middle of a push.  Its OpenFlow flows are gone, the frames in flight
# are lost and chand-host's OpenFlow connection breaks: chand-host must
# reconnect, install its flows again and retransmit, without applying
# anything twice.  Its periodic flow check is off (--flow-check=0), so the
# flows can only come back through the re-sync after the reconnection.

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fault-lib.sh"
st_require_root

chand_flows() {
    st_ofctl dump-flows br-int \
        "cookie=0x4300000000000000/0xff00000000000000" 2>/dev/null |
        grep -c cookie=
}
chand_flows_back() {
    [ "$(chand_flows)" -ge "$1" ]
}

TOPO_HOST_ARGS=(--flow-check=0)
fl_up chst-fvm1:21 chst-fvm2:22
for i in 1 2 3; do
    fl_push push "pre$i" "\"before the restart $i\""
done
fl_converge "initial records delivered"
n_flows=$(chand_flows)
fl_log "$n_flows chand flows on br-int"

fl_bulk_bg b 3 3000 1000 0.3
n_log=$(wc -l <"$TOPO_RUN/chand-host.log")
fl_midpush chst-fvm1 200 10 "$(ovsi_dir "$TOPO_HOST")/run/ovs-vswitchd.pid" \
    ovs-vswitchd
# Pushes while it is down: chand-host sends their frames into the void.
fl_hot 8 hot/
topo_host_vswitchd_start || st_fail "ovs-vswitchd did not restart"
fl_log "ovs-vswitchd restarted"
fl_pending chst-fvm1
fl_hot 4 hot/
if st_wait 20 chand_flows_back "$n_flows"; then
    fl_log "ok: $(chand_flows) chand flows on br-int again"
else
    st_fail "chand-host did not install its flows again ($(chand_flows) of $n_flows)"
fi
added=$(tail -n +$((n_log + 1)) "$TOPO_RUN/chand-host.log" |
    sed -n 's/.*flows synced: [0-9]* removed, \([0-9]*\) added.*/\1/p' |
    awk '{ n += $1 } END { print n + 0 }')
fl_check "chand-host added its flows to the new ovs-vswitchd ($added added)" \
    test "$added" -ge "$n_flows"
fl_bulk_join
fl_push delete pre1
fl_push push pre2 '"after the restart"'

fl_final_checks
fl_check_one_session

# The bridge is fail_mode=secure (topology.sh, doc/operations.md "The
# hypervisor bridge"); chand-host says so, and warns once it is not.
fail_mode() {
    st_chanctl host host/status | "$FL_TOOL" json-get bridge_fail_mode
}
fl_check "host/status: bridge_fail_mode secure" \
    test "$(fail_mode)" = secure
fl_check "no fail_mode warning on a secure bridge" \
    sh -c '! grep -q "WARN|bridge br-int is fail_mode" "$1"' - "$TOPO_RUN/chand-host.log"
ovsi_vsctl "$TOPO_HOST" set Bridge br-int fail_mode=standalone
standalone_seen() {
    [ "$(fail_mode)" = standalone ] &&
        grep -q "bridge br-int is fail_mode=standalone: .*set fail_mode=secure" \
            "$TOPO_RUN/chand-host.log"
}
if st_wait 10 standalone_seen; then
    fl_log "ok: chand-host warns of a standalone bridge"
else
    st_fail "no warning for fail_mode=standalone (host/status: $(fail_mode))"
fi
ovsi_vsctl "$TOPO_HOST" set Bridge br-int fail_mode=secure
st_exit
