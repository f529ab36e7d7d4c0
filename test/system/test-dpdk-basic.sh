#!/usr/bin/env bash
# The OVS-DPDK host lane (test/system/run --ovs=dpdk; scripts/lib/
# topology.sh, "OVS-DPDK"): the hypervisor's br-int is a netdev bridge of
# ovs-vswitchd-dpdk, each VM's vNIC a dpdkvhostuserclient port polled by
# its PMD thread, the VM's end DPDK's virtio_user.  With chand unchanged:
# both channels are provisioned and come up; records pushed to one VM and
# to both are applied and acknowledged, injected by OpenFlow PACKET_OUT
# (Debian's OVS-DPDK has no chand port) or through the chand port
# (--ovs=dpdk-patched); records a VM publishes reach the
# Chan DB; the frames cross the vhost-user ports both ways (their
# statistics move); chand's flows are on the DPDK bridge and the channel
# rule that pushes the VLAN tag toward the vhost-user port and the
# guest->host rule with its meter both count frames; the meters exist on
# the netdev datapath; the PMD thread polls both vNICs and sleeps between
# polls.  Skips (77) unless run on the lane.

. "$(dirname "$0")/lib.sh"
st_require_root
if [ "${TOPO_DPDK:-0}" != 1 ]; then
    echo "$ST_NAME: SKIP: the OVS-DPDK lane only (test/system/run --ovs=dpdk)" >&2
    exit 77
fi
TOPO_HOST_NS=chst-dhv
V1=chst-dvm1 V2=chst-dvm2

st_up $V1:61 $V2:62

# --- the topology is the one asked for -----------------------------------
for vm in $V1 $V2; do
    st_check "$vm's vNIC is a dpdkvhostuserclient port" \
        test "$(st_vsctl get Interface "$vm-vnic" type)" = dpdkvhostuserclient
done
st_check "br-int is a netdev bridge" \
    test "$(st_vsctl get Bridge br-int datapath_type)" = netdev
vnic_up() {
    [ "$(st_vsctl get Interface "$1-vnic" link_state)" = up ]
}
for vm in $V1 $V2; do
    st_check "$vm's vhost-user port is connected (link up)" \
        st_wait 20 vnic_up "$vm"
done
pmd_polls() {
    local out
    out=$(ovsi_appctl "$TOPO_HOST" dpif-netdev/pmd-rxq-show) || return 1
    grep -q "core_id 1:" <<<"$out" &&
        grep -q "port: $V1-vnic" <<<"$out" && grep -q "port: $V2-vnic" <<<"$out"
}
st_check "one PMD thread, on CPU 1, polls both vNICs" pmd_polls
st_log "$(ovsi_appctl "$TOPO_HOST" dpif-netdev/pmd-rxq-show | grep -E 'core_id|port:')"

# --- provisioning, push, apply, ack ----------------------------------------
st_check "both channels ready" st_chanctl wait --timeout 60
for vm in $V1 $V2; do
    st_check "$vm's chand-status is ready" \
        test "$(st_vsctl get Interface "$vm-vnic" external_ids:chand-status)" = ready
done

# port_stat VM rx|tx: packets of VM's vhost-user port (rx: from the VM),
# as OpenFlow counts them (the statistics column lags by 5 s).
port_stat() {
    st_ofctl dump-ports br-int "$(ovsi_ofport "$TOPO_HOST" "$1-vnic")" |
        sed -n "s/.*$2 pkts=\([0-9]*\).*/\1/p"
}
rx0=$(port_stat $V1 rx) tx0=$(port_stat $V1 tx)
for i in $(seq 50); do
    st_chanctl push --vm $V1 "own$i" "{\"n\": $i}" >/dev/null || st_fail "push own$i"
done
for i in $(seq 20); do
    st_chanctl push "all$i" "\"to both $i\"" >/dev/null || st_fail "push all$i"
done
st_check "the pushes are applied and acknowledged" st_chanctl wait --timeout 60
count() {
    st_guest "$1" list | grep -c "^$2"
}
st_check "$V1 holds its 50 records" test "$(count $V1 own)" = 50
st_check "$V2 holds none of them" test "$(count $V2 own)" = 0
for vm in $V1 $V2; do
    st_check "$vm holds the 20 records for both" test "$(count $vm all)" = 20
done
st_check "a value reads back in the VM" \
    test "$(st_guest $V1 get own7)" = '{"n": 7}' -o \
         "$(st_guest $V1 get own7)" = '{"n":7}'
rx1=$(port_stat $V1 rx) tx1=$(port_stat $V1 tx)
st_log "$V1-vnic: tx $tx0 -> $tx1, rx $rx0 -> $rx1 packets"
st_check "the records went out through the vhost-user port" \
    test "$tx1" -ge $((tx0 + 50))
st_check "the acknowledgements came in through it" test "$rx1" -gt "$rx0"

host_status() {
    st_chanctl host host/status | "$(dirname "$0")/fault-tool.py" json-get "$@"
}
# The path follows the Open vSwitch: Debian's OVS-DPDK has no chand port
# type (OpenFlow PACKET_OUT); the patched build has (--ovs=dpdk-patched).
path=$(host_status inject.path)
st_check "chand-host's path is ${CHAND_EXPECT_INJECT:-either} ($path)" \
    test "$path" = "${CHAND_EXPECT_INJECT:-$path}"
if [ "$path" = port ]; then
    st_check "the pushes went through the chand port (tx_frames $(host_status inject.port.tx_frames))" \
        test "$(host_status inject.port.tx_frames)" -ge 50
    st_check "and the acks came back through it (rx_frames $(host_status inject.port.rx_frames))" \
        test "$(host_status inject.port.rx_frames)" -gt 0
else
    st_check "the pushes went out as PACKET_OUTs ($(host_status packet_outs))" \
        test "$(host_status packet_outs)" -ge 50
fi

# --- the other way: a VM publishes ------------------------------------------
for i in $(seq 10); do
    st_guest $V2 publish "doc/$i" "{\"size\": $i}" >/dev/null ||
        st_fail "publish doc/$i"
done
published() {
    [ "$(st_chanctl published --vm $V2 doc/ | grep -c '^doc/')" = 10 ]
}
st_check "the 10 records $V2 published are in the Chan DB" st_wait 30 published

# --- chand's flows on the DPDK bridge ---------------------------------------
ofport=$(ovsi_ofport "$TOPO_HOST" "$V1-vnic")
# n_packets of the flows whose text matches the regular expression $1.
flow_packets() {
    st_ofctl dump-flows br-int | grep -E -- "$1" |
        sed -n 's/.*n_packets=\([0-9]*\).*/\1/p' | awk '{s += $1} END {print s + 0}'
}
down=$(flow_packets "set_field:8190->vlan_vid,output:$ofport\$")
up=$(flow_packets "in_port=$ofport,dl_vlan=4094.*actions=meter:")
st_log "flows: host->$V1 (VLAN push to the vhost-user port) $down packets," \
    "$V1->host (metered) $up packets"
st_check "the VLAN push toward the vhost-user port counts the pushes" \
    test "$down" -ge 50
st_check "the metered guest->host rule counts the acks" test "$up" -gt 0
meters=$(st_ofctl meter-stats br-int)
st_check "the channels' meters exist on the netdev datapath" \
    test "$(grep -c '^meter:' <<<"$meters")" -ge 2
st_check "a meter counts the VM's frames" \
    grep -qE 'packet_in_count:[1-9]' <<<"$meters"

# --- the PMD sleeps while idle (pmd-maxsleep), so the lane leaves the CPU
# to others.
perf=$(ovsi_appctl "$TOPO_HOST" dpif-netdev/pmd-perf-show)
st_log "PMD: $(grep -E 'Used TSC cycles|sleep iterations' <<<"$perf" | tr -s ' ' | tr '\n' ';')"
st_check "the PMD thread sleeps between polls" \
    grep -qE 'sleep iterations: +[1-9]' <<<"$perf"

st_exit
