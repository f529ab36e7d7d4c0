#!/usr/bin/env bash
# chand next to OVN on one br-int (doc/operations.md, "chand and OVN on one
# br-int"): a private OVN (NB and SB ovsdb-servers, ovn-northd,
# ovn-controller) runs on the test's hypervisor; two VMs' vNICs are bound to
# logical switch ports by external_ids:iface-id only, as Nova and os-vif do.
# chand-host runs with --vm-name-from=iface-id: each vNIC's iface-id is its
# VM name and it gets an automatic chand-id.  Checked: OVN's flows are in
# place and switch the VMs' ordinary traffic (UDP); chand's channels work
# beside them (push, applied, acknowledged); ovn-controller, restarted,
# deletes every flow of the bridge as it reconnects, and chand-host puts its
# own back by itself, after which the channels work again.
#
# Needs Debian's ovn-central and ovn-host (ovn-northd, ovn-controller and
# the schemas); without them the test exits 77.

. "$(dirname "$0")/lib.sh"
st_require_root
for p in ovn-controller ovn-northd ovn-nbctl ovn-sbctl; do
    command -v "$p" >/dev/null ||
        { echo "$ST_NAME: SKIP: $p missing (Debian ovn-central, ovn-host)" >&2
          exit 77; }
done
OVN_SHARE=/usr/share/ovn
[ -f $OVN_SHARE/ovn-nb.ovsschema ] && [ -f $OVN_SHARE/ovn-sb.ovsschema ] ||
    { echo "$ST_NAME: SKIP: no OVN schemas in $OVN_SHARE" >&2; exit 77; }

TOPO_HOST_NS=chst-ohv
TOPO_HOST_NORMAL=0              # br-int's switching is OVN's.
TOPO_HOST_ARGS=(--vm-name-from=iface-id)
OVN=$OVSI_BASE/ovn
V1=chst-ovm1 V2=chst-ovm2
L1=lsp-vm1 L2=lsp-vm2           # The logical ports: the VMs' names.

ext() {
    st_vsctl --if-exists get Interface "$1" "external_ids:$2" 2>/dev/null |
        tr -d '"'
}
has_id() { [ -n "$(ext "$1" chand-id)" ]; }
status_is() { [ "$(ext "$1" chand-status)" = "$2" ]; }
nbctl() { ovsi_exec "$TOPO_HOST" ovn-nbctl --db="unix:$OVN/nb.sock" "$@"; }
sbctl() { ovsi_exec "$TOPO_HOST" ovn-sbctl --db="unix:$OVN/sb.sock" "$@"; }

ovn_cleanup() {
    local f
    for f in ovn-controller ovn-northd nb sb; do
        topo__kill "$OVN/$f.pid"
    done
    st_cleanup
}

# ovn_db NAME SCHEMA: a private ovsdb-server for an OVN database.
ovn_db() {
    ovsdb-tool create "$OVN/$1.db" "$OVN_SHARE/$2" &&
        ovsi_exec "$TOPO_HOST" ovsdb-server "$OVN/$1.db" \
            --remote="punix:$OVN/$1.sock" --pidfile="$OVN/$1.pid" \
            --unixctl="$OVN/$1.ctl" --log-file="$OVN/$1.log" --detach
}

ovn_controller_start() {
    local dir
    dir=$(ovsi_dir "$TOPO_HOST")
    ovsi_run "$TOPO_HOST" env OVN_RUNDIR="$OVN" \
        ovn-controller "unix:$dir/run/db.sock" \
        --pidfile="$OVN/ovn-controller.pid" \
        --log-file="$OVN/ovn-controller.log" --detach
}

# ovn_up: NB and SB, ovn-northd, ovn-controller on br-int as chassis hv1.
ovn_up() {
    mkdir -p "$OVN" &&
        ovn_db nb ovn-nb.ovsschema && ovn_db sb ovn-sb.ovsschema &&
        ovsi_exec "$TOPO_HOST" env OVN_RUNDIR="$OVN" \
            ovn-northd --ovnnb-db="unix:$OVN/nb.sock" \
            --ovnsb-db="unix:$OVN/sb.sock" --pidfile="$OVN/ovn-northd.pid" \
            --unixctl="$OVN/ovn-northd.ctl" \
            --log-file="$OVN/ovn-northd.log" --detach &&
        st_vsctl set Open_vSwitch . external_ids:system-id=hv1 \
            external_ids:ovn-remote="unix:$OVN/sb.sock" \
            external_ids:ovn-encap-type=geneve \
            external_ids:ovn-encap-ip=127.0.0.1 \
            external_ids:ovn-bridge=br-int &&
        ovn_controller_start
}

# ovn_vm_up VM LSP N: a VM whose vNIC is bound to logical port LSP by its
# iface-id only; its key is added under the VM name chand-host will use,
# the iface-id; once chand-host has allocated the id, chand-guest starts.
ovn_vm_up() {
    local vm=$1 lsp=$2 n=$3 line
    ST_VMS="$ST_VMS $vm"
    nbctl lsp-add ls1 "$lsp" && nbctl lsp-set-addresses "$lsp" unknown &&
        ovsi_vm_create "$vm" "$TOPO_HOST" br-int "$vm-vnic" "10.77.0.$n/24" &&
        ovsi_start "$vm" "$vm" || return 1
    mkdir -p "$TOPO_RUN/$vm" &&
        line=$(st_chanctl key-add --vm "$lsp") &&
        (umask 077 && printf '%s\n' "$line" >"$TOPO_RUN/$vm/channel.key") &&
        st_vsctl set Interface "$vm-vnic" external_ids:iface-id="$lsp" ||
        return 1
    st_wait 30 has_id "$vm-vnic" || { st_log "$vm: no chand-id"; return 1; }
    topo_guest_start "$vm" "$(ext "$vm-vnic" chand-id)"
}

push_to() {     # push_to VM-NAME KEY GUEST-NAMESPACE
    st_chanctl push --vm "$1" "$2" "\"$1 $2\"" >/dev/null &&
        st_chanctl wait --timeout 60 --vm "$1" >/dev/null &&
        [ "$(st_guest "$3" get "$2")" = "\"$1 $2\"" ]
}

flows() { st_ofctl dump-flows br-int; }
# chand's cookies have 0x43 in their top byte (64 bits: 16 hex digits);
# OVN's are 32 bits, and one may well start with 43.
CHAND_COOKIE='cookie=0x43[0-9a-f]\{14\},'
chand_flows() { flows | grep -c "$CHAND_COOKIE"; }
ovn_flows() { flows | grep -v "$CHAND_COOKIE" | grep -vc 'NXST_FLOW\|OFPST_FLOW'; }
ovn_tables() { flows | grep -v "$CHAND_COOKIE" | grep -o 'table=[0-9]*' |
               sort -u | wc -l; }
bound() { [ "$(ext "$1" ovn-installed)" = true ]; }
both_bound() { bound $V1-vnic && bound $V2-vnic; }
sb_has_both() {
    [ "$(sbctl --bare --columns=chassis find Port_Binding 'type=""' |
         grep -c .)" = 2 ]
}
chan_db_knows() {
    local s
    s=$(st_chanctl status) && grep -q "$L1" <<<"$s" && grep -q "$L2" <<<"$s"
}
# ordinary_ok: a UDP datagram from vm1 to vm2 and its echo back, switched by
# OVN's logical switch (no ping on a minimal Debian).  Sent without a UDP
# checksum (SO_NO_CHECK): a veth leaves it to be offloaded, and the
# userspace datapath forwards it unfilled, so the receiving kernel would
# drop the datagram (ARP, without checksums, goes through).
ordinary_ok() {
    local rc
    ip netns exec $V2 timeout 4 python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, 11, 1)      # SO_NO_CHECK
s.bind(("10.77.0.2", 9999))
d, a = s.recvfrom(100)
s.sendto(d, a)' &
    sleep 0.5
    ip netns exec $V1 timeout 3 python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, 11, 1)      # SO_NO_CHECK
s.settimeout(2)
s.sendto(b"hello", ("10.77.0.2", 9999))
assert s.recvfrom(100)[0] == b"hello"' 2>/dev/null
    rc=$?
    wait
    return $rc
}

st_up
trap ovn_cleanup EXIT
# chand speaks OpenFlow 1.3, ovn-controller 1.5.
st_vsctl set Bridge br-int protocols=OpenFlow13,OpenFlow15
ovn_up || { st_fail "OVN did not start"; tail -5 "$OVN"/*.log >&2; exit 1; }
st_log "ok: OVN started (NB, SB, ovn-northd, ovn-controller)"
nbctl ls-add ls1
st_check "vm1 on $L1: chand-id allocated, guest started" ovn_vm_up $V1 $L1 1
st_check "vm2 on $L2: chand-id allocated, guest started" ovn_vm_up $V2 $L2 2
st_log "chand-ids: $L1 $(ext $V1-vnic chand-id), $L2 $(ext $V2-vnic chand-id)"
st_check "vm1's ids: chand-id-auto set" \
    test "$(ext $V1-vnic chand-id-auto)" = "$(ext $V1-vnic chand-id)"
st_check "ovn-controller bound both ports" st_wait 60 both_bound ||
    { tail -20 "$OVN/ovn-controller.log" >&2; exit 1; }
st_check "the SB has both ports on a chassis" st_wait 30 sb_has_both
st_check "vm1 ready" st_wait 30 status_is $V1-vnic ready
st_check "vm2 ready" st_wait 30 status_is $V2-vnic ready
st_check "OVN's flows switch the VMs' ordinary traffic (UDP vm1 -> vm2 and back)" \
    st_wait 30 ordinary_ok
n_ovn=$(ovn_flows) n_chand=$(chand_flows)
st_log "br-int: $n_ovn OVN flows in $(ovn_tables) tables, $n_chand chand flows"
st_check "OVN flows present" test "$n_ovn" -gt 20
st_check "chand flows present" test "$n_chand" -gt 20
st_check "vm1's channel works beside OVN, named by its iface-id" \
    push_to $L1 a $V1
st_check "vm2's channel works beside OVN" push_to $L2 a $V2
st_check "the Chan DB knows the VMs by their iface-ids" chan_db_knows

# ovn-controller restarts: as it reconnects it deletes every flow, group and
# meter of br-int (ofctrl's initial clear), chand's included.  chand-host's
# periodic check (--flow-check, 5 s) puts chand's back.
syncs0=$(grep -c "flows synced" "$TOPO_RUN/chand-host.log")
topo__kill "$OVN/ovn-controller.pid"
st_check "ovn-controller restarts" ovn_controller_start
ovn_back() { [ "$(ovn_flows)" -ge "$n_ovn" ]; }
st_check "OVN's flows are back" st_wait 30 ovn_back
all_chand_back() { [ "$(chand_flows)" -ge "$n_chand" ]; }
st_check "chand's flows are back (chand-host re-added them)" \
    st_wait 30 all_chand_back
st_log "chand-host flow syncs since: $(sed -n "$((syncs0 + 1)),\$p" \
    <(grep "flows synced" "$TOPO_RUN/chand-host.log") | tr '\n' ' ')"
readded() {     # the most chand flows one sync added since the restart
    grep "flows synced" "$TOPO_RUN/chand-host.log" | sed -n "$((syncs0 + 1)),\$p" |
        sed -n 's/.* \([0-9]*\) added.*/\1/p' | sort -n | tail -1
}
added=$(readded)
st_check "ovn-controller's clear took chand's flows: chand-host re-added $added of $n_chand" \
    test "${added:-0}" -ge "$n_chand"
st_check "vm1's channel works after ovn-controller's restart" \
    push_to $L1 b $V1
st_check "vm2's channel works after ovn-controller's restart" \
    push_to $L2 b $V2
st_check "OVN still switches the VMs' traffic" st_wait 30 ordinary_ok
st_check "ovn-controller logged no error" \
    eval "! grep -q '|ERR|' $OVN/ovn-controller.log"

st_exit
