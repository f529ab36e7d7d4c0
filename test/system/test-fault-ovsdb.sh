#!/usr/bin/env bash
# Fault: the hypervisor's ovsdb-server -- it serves the Chan DB and the
# local Open_vSwitch DB -- crashes (SIGKILL) in the middle of a push and
# comes back 6 seconds later on the same database files.  chand-host stays
# responsive meanwhile (while ovs-vswitchd, without its database, serves no
# OpenFlow), reconnects to both databases, resynchronises (standalone
# ovsdb-server never resumes a monitor), writes its Channel rows again and
# picks up what was pushed after the restart.

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fault-lib.sh"
st_require_root

host_status() {
    st_chanctl host host/status | "$FL_TOOL" json-get "$@" | tr '\n' ' '
}
host_reconnected() {
    [ "$(host_status chan_db_connected ovs_db_connected)" = "true true " ]
}

fl_up chst-fvm1:21 chst-fvm2:22
for i in 1 2 3; do
    fl_push push "pre$i" "\"before the restart $i\""
    fl_push push --vm chst-fvm2 "own$i" "\"vm2 only $i\""
done
fl_converge "initial records delivered"

# The push goes on across the crash (fault-tool.py bulk reconnects and
# finds out whether its last transaction committed).
fl_bulk_bg b 9 4000 1000 0.3
fl_midpush chst-fvm1 100 10 "$(ovsi_dir "$TOPO_HOST")/run/ovsdb-server.pid" \
    ovsdb-server
# Down for longer than chand-host's periodic flow check (5 s): ovs-vswitchd
# serves no OpenFlow while it has no database, and chand-host must not
# hang on it.
sleep 6
fl_check "chand-host answers its control socket while ovsdb-server is down" \
    st_chanctl --timeout 3 host host/status
if [ -n "$(pgrep -P "$(cat "$TOPO_RUN/chand-host.pid")")" ]; then
    fl_log "chand-host's child processes (a flow sync, ovs-ofctl): $(for c in $(pgrep -P "$(cat "$TOPO_RUN/chand-host.pid")"); do
        tr '\0' ' ' <"/proc/$c/cmdline"; done)"
fi
topo_host_ovsdb_start || { st_fail "ovsdb-server did not restart"; exit 1; }
fl_log "ovsdb-server restarted 6 s later on the same files"
if st_wait 20 host_reconnected; then
    fl_log "ok: chand-host reconnected to both databases"
else
    st_fail "chand-host did not reconnect: $(host_status chan_db_connected ovs_db_connected)"
fi

# Pushes after the restart must reach the guests too.
fl_push delete pre1
fl_push push pre2 '"after the restart"'
fl_push delete --vm chst-fvm2 own1
fl_hot 12 hot/
fl_bulk_join
fl_bulk c 19 500 250 0

fl_final_checks
fl_check_one_session
st_exit
