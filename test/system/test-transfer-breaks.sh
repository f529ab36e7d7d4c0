#!/usr/bin/env bash
# File transfer across the other breaks (doc/objects.md, "File transfer"):
# a restore from a sibling whose guest -> host fetch sees chand-host killed
# (SIGKILL) and started again, and the source VM's link down for 2 s; then
# its host -> guest delivery sees the hypervisor's ovs-vswitchd killed and
# started again.  Each time the transfer resumes from what is durable: the
# restarted chand-host's fetch starts with the chunks of its last
# checkpoint, and the restored file is byte for byte the source's.
. "$(dirname "$0")/lib.sh"
st_require_root
PY=$(python3 -c 'import sys; print(sys.executable)')
TOPO_HOST_NS=chst-bhv
V1=chst-bvm1 V2=chst-bvm2
D=$OVSI_BASE/files
HD=$OVSI_BASE/handlers.d
mkdir -p "$D/1" "$D/2"
TOPO_GUEST_ARGS=(--handlers-dir="$HD")
# Fetches from a VM ask for 80% of its meter's rate: 6000/s makes the
# guest -> host half take seconds, long enough to break it in the middle.
TOPO_HOST_ARGS=(--guest-rate=6000/1000)
st_up "$V1:101" "$V2:102"
st_chanctl wait --timeout 60 || { st_fail "channels not ready"; exit 1; }
st_install_handlers "$HD" || st_fail "cannot install the handlers"

# have_of PYEXPR-ON-TRANSFER-LIST: chunks held by the pull PYEXPR selects.
host_have() {
    st_chanctl host transfer/list 2>/dev/null | "$PY" -c '
import json, sys
j = json.load(sys.stdin)
pulls = [p for l in j["lanes"].values() for p in l["pulls"]
         if p["digest"] == sys.argv[1]]
print(pulls[0]["have"] if pulls else 0)' "$1"
}
guest_have() {
    st_guest "$1" guest guest/status 2>/dev/null | "$PY" -c '
import json, sys
j = json.load(sys.stdin)
pulls = [p for p in j["transfer"]["pulls"] if p["digest"] == sys.argv[1]]
print(pulls[0]["have"] if pulls else 0)' "$2"
}
at_least() {
    [ "$("${@:2}")" -ge "$1" ]
}

SIZE=$((48 << 20))
N=$(( (SIZE + 1419) / 1420 ))
head -c "$SIZE" /dev/urandom >"$D/1/k"
cp "$D/1/k" "$D/2/k"
K=$(sha256sum <"$D/1/k" | cut -d' ' -f1)
st_check "vm1 registers K" st_guest "$V1" object-add "$D/1/k"
st_check "vm2 registers K" st_guest "$V2" object-add "$D/2/k"
both() {
    st_output_has "refs 2" st_chanctl object-list "$K"
}
st_check "the Chan DB maps K to both" st_wait 30 both
rm -f "$D/2/k"
# 20% loss on vm2's frames both ways, so that its host -> guest half takes
# long enough to break in the middle as well.
topo_vm_loss "$V2" 20 20 || st_fail "cannot add the loss rules"
st_check "vm2 asks for K back" \
    st_guest "$V2" object-restore "$K" "$D/2/k" --no-wait

st_check "chand-host fetches a third of K from vm1" \
    st_wait 60 at_least $((N / 3)) host_have "$K"
topo_host_kill || st_fail "cannot kill chand-host"
st_log "chand-host killed"
topo_vm_link "$V1" down
sleep 2
topo_vm_link "$V1" up
st_log "vm1's link was down for 2 s"
topo_host_start || st_fail "chand-host does not restart"
resumed() {
    grep -q "transfer ${K:0:12}: resuming with [1-9]" \
        "$TOPO_RUN/chand-host.log"
}
st_check "the restarted chand-host resumes the fetch from its checkpoint" \
    st_wait 60 resumed
st_log "$(grep -o "transfer ${K:0:12}: resuming with [0-9]* of [0-9]* chunks" \
          "$TOPO_RUN/chand-host.log" | tail -1)"

# host -> guest: break it with an ovs-vswitchd restart on the hypervisor.
st_check "vm2 receives part of K" \
    st_wait 120 at_least $((N / 4)) guest_have "$V2" "$K"
topo_host_vswitchd_restart || st_fail "cannot restart ovs-vswitchd"
st_log "the hypervisor's ovs-vswitchd restarted"
restored() {
    cmp -s "$D/1/k" "$D/2/k"
}
st_check "vm2's restore completes, byte for byte" st_wait 180 restored
topo_vm_loss_off "$V2"
st_check "and vm2 reports it ok" st_wait 30 \
    st_result_is "$V2" restore "$K" "r is not None and r['status'] == 'ok'"
st_check "vm2's pull was not started again from zero" \
    test "$(grep -c "transfer ${K:0:12}: pulling" \
            "$TOPO_RUN/$V2/chand-guest.log")" -eq 1
st_exit
