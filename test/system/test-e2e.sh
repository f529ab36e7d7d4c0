#!/usr/bin/env bash
# End to end on real OVS: 1,000 pushes (to one VM, to all, updates and
# deletes mixed) land exactly in each guest datastore, the Chan DB's applied
# state agrees; deprovisioning removes a channel's flows and marks it down;
# misprovisioned interfaces get chand-status "error: ..." without
# disturbing the working channel.

. "$(dirname "$0")/lib.sh"
st_require_root
here=$(cd "$(dirname "$0")" && pwd)
N=${CHAND_E2E_PUSHES:-1000}

st_up chst-vm1:11 chst-vm2:12

st_check "both channels ready" st_chanctl wait --timeout 60

# --- 1,000 mixed pushes -------------------------------------------------
ops=$OVSI_BASE/ops.txt
"$here/push-model.py" 42 "$N" chst-vm1 chst-vm2 >"$ops"
st_log "pushing $N operations"
while read -r line; do
    eval "st_chanctl $line" || st_fail "chanctl $line"
done <"$ops"
"$here/push-model.py" --expect "$ops" chst-vm1 chst-vm2 >"$OVSI_BASE/expect.json"

st_check "channels converge after $N pushes" st_chanctl wait --timeout 120
for vm in chst-vm1 chst-vm2; do
    st_check "$vm datastore equals what was aimed at it" \
        "$here/compare-store.py" "$OVSI_BASE/expect.json" "$vm" \
        "$TOPO_RUN/$vm/guest.db"
done
chandb_state() {
    ovsdb-client transact "$(topo_db)" \
        '["Chan",{"op":"select","table":"Record","where":[]},
                 {"op":"select","table":"Channel","where":[]}]'
}
st_check "Chan DB applied state agrees" \
    bash -c "$(declare -f chandb_state topo_db ovsi_dir); \
             OVSI_BASE=$OVSI_BASE TOPO_HOST=$TOPO_HOST chandb_state \
             | '$here/check-chandb.py' chst-vm1 chst-vm2"
st_check "guest API serves a pushed value" \
    bash -c "[ \"\$(ip netns exec chst-vm1 '$ST_BUILD/utilities/chanctl' \
              get \$(sqlite3 '$TOPO_RUN/chst-vm1/guest.db' \
              'select key from records limit 1') >/dev/null; echo \$?)\" = 0 ]"

# --- a value far larger than the window (256 frames of 1420 bytes) -------
big_len() {
    [ "$(sqlite3 "$TOPO_RUN/chst-vm1/guest.db" \
         "select length(value) from records where key = 'big'")" = $((2 * 1024 * 1024 + 2)) ]
}
"$here/push-big.py" "$(topo_db | sed 's/^unix://')" chst-vm1 big $((2 * 1024 * 1024)) ||
    st_fail "pushing a 2 MiB record"
st_check "a 2 MiB value (1,477 frames) arrives whole" st_wait 60 big_len

# --- key rotation while records flow -------------------------------------
host_tx_gen() {
    st_output_has "\"tx_key_generation\": $1" st_chanctl channel-show chst-vm1
}
st_check "vm1 starts with key generation 1" host_tx_gen 1
topo_key_add chst-vm1                   # Chan DB and the guest's key file.
for i in $(seq 20); do
    st_chanctl push --vm chst-vm1 "rot$i" "$i" || st_fail "push rot$i"
done
st_check "host switches to key generation 2 once the guest has it" \
    st_wait 30 host_tx_gen 2
st_chanctl key-retire --vm chst-vm1 1 || st_fail "key-retire"
sed -i '/^1 /d' "$TOPO_RUN/chst-vm1/channel.key"
for i in $(seq 21 40); do
    st_chanctl push --vm chst-vm1 "rot$i" "$i" || st_fail "push rot$i"
done
rot_count() {
    [ "$(sqlite3 "$TOPO_RUN/chst-vm1/guest.db" \
         "select count(*) from records where key like 'rot%'")" = 40 ]
}
st_check "no update lost across the rotation" st_wait 30 rot_count
st_check "channel in sync on generation 2 only" \
    st_chanctl wait --vm chst-vm1 --timeout 30

# --- misprovisioned interfaces ------------------------------------------
bad_iface() {
    local name=$1
    shift
    ovsi_exec "$TOPO_HOST" ip link add "$name" type veth peer name "$name-p"
    ovsi_exec "$TOPO_HOST" ip link set "$name" up
    st_vsctl add-port br-int "$name" -- set Interface "$name" "$@"
}
status_of() {
    st_vsctl get Interface "$1" external_ids:chand-status 2>/dev/null | tr -d '"'
}
status_is_error() {
    case $(status_of "$1") in "error: "*) return 0 ;; *) return 1 ;; esac
}
bad_iface chst-dup external_ids:chand-vm=dup external_ids:chand-id=11
bad_iface chst-vid0 external_ids:chand-vm=vid0 external_ids:chand-id=31 \
    external_ids:chand-vid=0
bad_iface chst-vid5k external_ids:chand-vm=vid5k external_ids:chand-id=32 \
    external_ids:chand-vid=5000
bad_iface chst-nan external_ids:chand-vm=nan external_ids:chand-id=abc
for i in chst-dup chst-vid0 chst-vid5k chst-nan; do
    st_check "$i gets chand-status error" st_wait 20 status_is_error "$i"
    st_log "  $i: $(status_of "$i")"
done
st_check "vm1 still ready after misprovisioning" \
    test "$(status_of chst-vm1-vnic)" = ready
st_chanctl push --vm chst-vm1 after-bad '"still working"'
st_check "vm1 still receives updates" st_wait 20 \
    st_guest chst-vm1 get after-bad

# --- flows deleted behind chand-host's back come back --------------------
chan11_flows() {
    st_ofctl dump-flows br-int "cookie=0x000000000000000b/0x00000000ffffffff" \
        | grep -c cookie=
}
n11=$(chan11_flows)
st_ofctl del-flows br-int "cookie=0x000000000000000b/0x00000000ffffffff"
st_log "deleted vm1's $n11 flows; $(chan11_flows) left"
chan11_back() {
    [ "$(chan11_flows)" = "$n11" ]
}
st_check "the periodic flow check puts vm1's $n11 flows back" \
    st_wait 20 chan11_back
st_chanctl push --vm chst-vm1 after-del-flows '"flows back"'
st_check "vm1 receives updates again" st_wait 20 \
    st_guest chst-vm1 get after-del-flows

# --- deprovisioning -----------------------------------------------------
chan12_flows() {
    st_ofctl dump-flows br-int "cookie=0x000000000000000c/0x00000000ffffffff" \
        | grep -c cookie=
}
st_check "vm2 has flows before deprovisioning" test "$(chan12_flows)" -gt 0
st_vsctl remove Interface chst-vm2-vnic external_ids chand-vm chand-id
no_chan12_flows() {
    [ "$(chan12_flows)" = 0 ]
}
st_check "deprovisioned vm2's flows are removed" st_wait 20 no_chan12_flows
vm2_state() {
    ovsdb-client transact "$(topo_db)" \
        '["Chan",{"op":"select","table":"Channel","where":[["vm","==","chst-vm2"]],"columns":["state"]}]' \
        | grep -o '"state":"[a-z]*"'
}
st_check "deprovisioned vm2 is marked down" \
    st_wait 20 bash -c "$(declare -f vm2_state topo_db ovsi_dir); \
        OVSI_BASE=$OVSI_BASE TOPO_HOST=$TOPO_HOST vm2_state | grep -q down"
st_chanctl push --vm chst-vm1 late 1
st_check "vm1 unaffected by vm2's removal" st_wait 20 st_guest chst-vm1 get late

st_exit
