#!/usr/bin/env bash
# How chand-host's frames meet the host bridge (doc/ovs-port.md): with an
# ovs-vswitchd that has the chand port type (ovs-patches/), chand-host
# creates port chand0 (an access port of VLAN 4095) and every frame goes
# through it, none through OpenFlow PACKET_OUT/PACKET_IN; NORMAL floods do
# not reach the port; after an ovs-vswitchd restart the port comes back and
# chand-host reconnects; --inject=openflow switches to PACKET_OUT and back
# with nothing lost.  With stock Open vSwitch, chand-host says it has no
# chand port type and uses OpenFlow.
#
# The expected path comes from the database (iface_types lists "chand"),
# and CHAND_EXPECT_INJECT (port or openflow), when set, must agree with it.

. "$(dirname "$0")/lib.sh"
st_require_root
TOPO_HOST_NS=chst-ihv
TOOL=$(dirname "$0")/fault-tool.py

host_status() {
    st_chanctl host host/status | "$TOOL" json-get "$@"
}
pushed=0
# push_some N: pushes N more records to all VMs, waits until applied.
push_some() {
    local i end=$((pushed + $1))
    for ((i = pushed; i < end; i++)); do
        st_chanctl push "k$i" "\"value $i\"" >/dev/null || return 1
    done
    pushed=$end
    st_chanctl wait --timeout 60 >/dev/null
}
all_have_everything() {
    local vm n
    for vm in chst-ivm1 chst-ivm2; do
        n=$(st_guest "$vm" list | grep -c '^k[0-9]')
        [ "$n" = "$pushed" ] || { st_log "$vm has $n of $pushed"; return 1; }
    done
}

st_up chst-ivm1:41 chst-ivm2:42
st_check "both channels ready" st_chanctl wait --timeout 60

if st_vsctl get Open_vSwitch . iface_types | grep -qw chand; then
    expect=port
else
    expect=openflow
fi
st_log "ovs-vswitchd $(ovs-vswitchd --version | head -1):" \
    "chand port type $([ $expect = port ] && echo present || echo absent)"
if [ -n "${CHAND_EXPECT_INJECT:-}" ]; then
    st_check "the Open vSwitch under test is the one expected" \
        test "$CHAND_EXPECT_INJECT" = "$expect"
fi
st_check "chand-host chose the $expect path" \
    st_wait 20 bash -c "[ \"\$(CHAND_HOST_CTL=$TOPO_RUN/chand-host.ctl \
        $ST_BUILD/utilities/chanctl host host/status | $TOOL json-get \
        inject.path)\" = $expect ]"
st_log "inject: $(host_status inject | tr -d '\n ')"

set -- $(host_status packet_outs packet_ins)
outs0=$1 ins0=$2
st_check "200 records reach both VMs" push_some 200
st_check "both datastores hold every record" all_have_everything
set -- $(host_status packet_outs packet_ins inject.port.tx_frames \
         inject.port.rx_frames)
st_log "packet_outs +$(($1 - outs0)), packet_ins +$(($2 - ins0)), port" \
    "tx/rx frames $3/$4"
if [ $expect = port ]; then
    st_check "no PACKET_OUT while the port is up" test "$1" = "$outs0"
    st_check "no PACKET_IN while the port is up" test "$2" = "$ins0"
    st_check "frames went out through the port" test "$3" -gt 0
    st_check "frames came back through the port" test "$4" -gt 0
    ofport=$(st_vsctl get Interface chand0 ofport)
    st_check "chand0 is a chand port with an ofport ($ofport)" \
        test "$(st_vsctl get Interface chand0 type)" = chand -a "$ofport" -gt 0
    st_check "chand0 is an access port of VLAN 4095" \
        test "$(st_vsctl get Port chand0 tag)" = 4095
    flows=$(st_ofctl dump-flows br-int)
    st_check "the flows inject from chand0 and output to it" \
        test "$(grep -cE "pkt_mark=0x[0-9a-f]+,(udp,)?in_port=$ofport[, ]" \
                <<<"$flows")" = 4 -a \
        "$(grep -c "pkt_mark,output:$ofport\$" <<<"$flows")" = 2
else
    st_check "frames went out as PACKET_OUT" test "$1" -gt "$outs0"
    st_check "frames came back as PACKET_IN" test "$2" -gt "$ins0"
    st_check "chand-host says why" \
        test "$(host_status inject.reason)" = \
        "ovs-vswitchd has no chand port type"
fi

# Broadcasts from a VM are flooded by NORMAL; none may reach chand-host
# (it would count a frame without a channel mark), not even those tagged
# with the chand port's VLAN.
ip netns exec chst-ivm1 ping -c 3 -i 0.2 -W 1 10.77.0.99 >/dev/null 2>&1
ip netns exec chst-ivm1 ping -b -c 3 -i 0.2 -W 1 10.77.0.255 >/dev/null 2>&1
# Broadcasts tagged with vid 4095, the chand port's VLAN, raw on the vNIC.
ip netns exec chst-ivm1 python3 - <<'PY' || st_fail "cannot send raw frames"
import socket
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
frame = (b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + b"\x81\x00\x0f\xff"
         + b"\x88\xb5" + b"chand-test" * 5)
for _ in range(5):
    s.send(frame)
PY
sleep 0.5
st_check "no flooded frame reached chand-host" \
    test "$(host_status counters.rx_drop_unknown_mark)" = -

# ovs-vswitchd restarts: the port's socket is new, chand-host reconnects.
topo_host_vswitchd_restart || st_fail "ovs-vswitchd did not restart"
st_check "records pushed after an ovs-vswitchd restart arrive" push_some 50
st_check "both datastores hold every record" all_have_everything
if [ $expect = port ]; then
    st_check "chand-host reconnected to the port" \
        test "$(host_status inject.port.connects)" -ge 2
    st_check "still on the port path" test "$(host_status inject.path)" = port

    # Switch to OpenFlow and back, by restarting chand-host.
    topo_host_stop
    TOPO_HOST_ARGS=(--inject=openflow)
    topo_host_start || st_fail "chand-host did not start with --inject=openflow"
    st_check "--inject=openflow: OpenFlow path" \
        st_wait 20 bash -c "[ \"\$(CHAND_HOST_CTL=$TOPO_RUN/chand-host.ctl \
            $ST_BUILD/utilities/chanctl host host/status | $TOOL json-get \
            inject.path)\" = openflow ]"
    st_check "records arrive through OpenFlow" push_some 50
    st_check "packet_ins counted" test "$(host_status packet_ins)" -gt 0
    topo_host_stop
    TOPO_HOST_ARGS=()
    topo_host_start || st_fail "chand-host did not start again"
    st_check "records arrive after switching back" push_some 50
    st_check "back on the port path" test "$(host_status inject.path)" = port
    st_check "both datastores hold every record" all_have_everything
fi
st_exit
