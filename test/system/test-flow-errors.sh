#!/usr/bin/env bash
# Flow programming errors reach the operator with the rule's source.
#
# chand-host programs its flows over its own OpenFlow connection
# (lib/ofctrl).  Two broken templates, each a copy of flows/host.flows with
# one [channel] rule added:
#   1. a rule chand's parser refuses (an unknown action): the channel gets
#      chand-status "error: ..." naming the template file and line, and is
#      left out (its flows go, the bridge's shared flows stay);
#   2. a rule the parser accepts and ovs-vswitchd refuses (pop_vlan without
#      a VLAN match): the log names the template file and line with the
#      switch's error, host/status counts it, the bundle leaves the bridge's
#      flows as they were, and the channel is not ready.
# With the real template back, the channel is ready and carries records,
# and a restart with it changes no flow, even while chand-host cannot know
# its channels (the Chan DB away).

. "$(dirname "$0")/lib.sh"
st_require_root
here=$(cd "$(dirname "$0")" && pwd)

st_up chst-fe1:31
st_check "channel ready with the real template" st_chanctl wait --timeout 60

chand_cookies() {
    st_ofctl dump-flows br-int \
        "cookie=0x4300000000000000/0xff00000000000000" 2>/dev/null |
        sed -n 's/.*cookie=\(0x[0-9a-f]*\).*/\1/p' | sort
}
status() {
    st_vsctl get Interface chst-fe1-vnic external_ids:chand-status 2>/dev/null |
        tr -d '"'
}
host_status() {
    st_chanctl host host/status
}
before=$(chand_cookies)
n_before=$(echo "$before" | grep -c .)
st_log "$n_before chand flows on br-int"

# A template with one more [channel] rule, $1, after the [channel] line.
# Prints the line number of that rule to stdout.
make_template() {
    local out=$1 rule=$2
    awk -v rule="$rule" '{ print } /^\[channel\]/ { print rule }' \
        "$TOPO_SRC/flows/host.flows" >"$out"
    grep -n -F -x -- "$rule" "$out" | cut -d: -f1
}
restart_host() {
    topo_host_stop
    TOPO_HOST_ARGS=("$@")
    n_log=$(wc -l <"$TOPO_RUN/chand-host.log")
    topo_host_start || st_fail "chand-host did not start"
}
new_log() {
    tail -n +$((n_log + 1)) "$TOPO_RUN/chand-host.log"
}

# --- 1. a rule the parser refuses ----------------------------------------
bad1=$OVSI_BASE/parse-error.flows
line1=$(make_template "$bad1" \
    'priority=40090,in_port=${VNIC_OFPORT},actions=frobnicate:1')
restart_host --flows="$bad1"
status_names_line() {
    status | grep -q "parse-error.flows:$line1: unknown action .frobnicate:1"
}
st_check "chand-status names the template line ($line1) and the action" \
    st_wait 30 status_names_line
st_log "  chand-status: $(status)"
sleep 1
# The channel is left out of the wanted flows, as with any rule that
# cannot be rendered: its flows go, the bridge's shared ones stay.
channel_flows_gone() {
    [ "$(chand_cookies | grep -c .)" -lt "$n_before" ] &&
        [ "$(chand_cookies | grep -c .)" -gt 0 ]
}
st_check "the channel's flows are removed, the shared ones kept" \
    st_wait 10 channel_flows_gone

# --- 2. a rule the switch refuses ----------------------------------------
before2=$(chand_cookies)
bad2=$OVSI_BASE/switch-error.flows
line2=$(make_template "$bad2" \
    'priority=40090,in_port=${VNIC_OFPORT},udp,actions=pop_vlan,output:${VNIC_OFPORT}')
restart_host --flows="$bad2"
log_names_line() {
    st_output_has "switch-error.flows:$line2: OFPBAC_MATCH_INCONSISTENT: switch refused flow: priority=40090," new_log
}
st_check "the log names the template line ($line2) and the switch's error" \
    st_wait 30 log_names_line
new_log | grep 'switch-error.flows' | head -1 | sed 's/^/    /'
flow_errors() {
    host_status | python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if d["flow_errors"] > 0 and not d["flows_installed"] else 1)'
}
st_check "host/status counts the error, flows not installed" flow_errors
st_check "the refused bundle left the bridge's flows as they were" \
    test "$(chand_cookies)" = "$before2"
down_no_flows() {
    st_output_has '"state": "down"' st_chanctl channel-show chst-fe1
}
st_check "the channel is down (flows not installed)" st_wait 10 down_no_flows

# --- the real template again ---------------------------------------------
restart_host
st_check "ready again with the real template" st_chanctl wait --timeout 60
st_check "chand-status is ready" test "$(status)" = ready
st_chanctl push --vm chst-fe1 after '"the fix"' || st_fail "push"
st_check "a record arrives" st_chanctl wait --vm chst-fe1 --timeout 60
st_check "it is in the guest store" \
    test "$(sqlite3 "$TOPO_RUN/chst-fe1/guest.db" \
            "select value from records where key = 'after'")" = '"the fix"'

# --- a restart with the same template changes nothing --------------------
# chand-host syncs only once it knows its channels: a sync before that
# would remove every channel's flows until they are known.  The Chan DB is
# taken away for the restart, so that chand-host cannot know them for a
# while.
before3=$(chand_cookies)
hv_dir=$(ovsi_dir "$TOPO_HOST")
ovsi_run "$TOPO_HOST" ovs-appctl -t ovsdb-server ovsdb-server/remove-db Chan ||
    st_fail "cannot take the Chan DB away"
restart_host
sleep 3
st_check "without its channels known, chand-host removes no flow" \
    test "$(chand_cookies)" = "$before3"
ovsi_run "$TOPO_HOST" ovs-appctl -t ovsdb-server ovsdb-server/add-db \
    "$hv_dir/db/chan.db" || st_fail "cannot bring the Chan DB back"
st_check "ready after the restart" st_chanctl wait --timeout 60
sleep 1
st_check "the restart removed no flow" \
    bash -c "! tail -n +$((n_log + 1)) '$TOPO_RUN/chand-host.log' |
             grep -q 'flows synced: [1-9]'"
st_check "and left the same flows" test "$(chand_cookies)" = "$before3"
st_exit
