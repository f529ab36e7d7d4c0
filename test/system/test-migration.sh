#!/usr/bin/env bash
# Channels that follow a migrating VM, and a host's monitor limited to its
# own VMs (doc/operations.md, "Many hypervisors on one Chan DB" and
# "Migration"), with two hypervisors on one Chan DB (hv-a's, over unix:,
# both chand-hosts with --monitor=own):
#   - traffic: records pushed to hv-b's VM reach hv-a as nothing (its
#     row_updates counters), records for all VMs reach both;
#   - migration: vm1's vNIC moves from hv-a to hv-b and back while records
#     are pushed to it every 50 ms; its datastore ends exactly as desired,
#     the serving Channel row counts 2 migrations, its channel resumed
#     (resumes_after_migration) without a snapshot (sessions 0), hv-a's
#     and hv-b's old rows are gone, and what vm1 published stays;
#   - split brain: an Interface for vm1 appears on hv-b while vm1's vNIC
#     stays on hv-a: the newest claim (hv-b) wins, hv-a yields and says so
#     in chand-status; when hv-b's Interface goes, hv-a serves vm1 again,
#     resumed, and nothing pushed meanwhile is lost.
. "$(dirname "$0")/lib.sh"
st_require_root

A=hva B=hvb
NS_A=chst-mha NS_B=chst-mhb
V1=chst-mvm1 V2=chst-mvm2
DB=unix:$OVSI_BASE/$A/run/db.sock

# hv NAME CMD...: runs a topology function as hypervisor NAME.
hv() {
    local n=$1 ns
    shift
    [ "$n" = "$A" ] && ns=$NS_A || ns=$NS_B
    TOPO_HOST=$n TOPO_HOST_NS=$ns TOPO_RUN=$OVSI_BASE/$n/chand "$@"
}
topo_db() { echo "$DB"; }

cleanup() {
    local vm
    for vm in $V1 $V2; do
        topo_guest_stop "$vm" 2>/dev/null
        ovsi_stop "$vm" 2>/dev/null
        ovsi_vm_destroy "$vm" 2>/dev/null
    done
    hv $A topo_host_stop
    hv $B topo_host_stop
    ovsi_stop $A
    ovsi_stop $B
    ovsi_netns_del $NS_A 2>/dev/null
    ovsi_netns_del $NS_B 2>/dev/null
    kill "$PUSHER" 2>/dev/null
    st_cleanup
}
PUSHER=
trap cleanup EXIT
# The guests' files live under hv-a's run directory.
TOPO_RUN=$OVSI_BASE/$A/chand

# --- two hypervisors on one Chan DB -------------------------------------------
TOPO_HOST_ARGS=(--chassis=hv-a --monitor=own --chan-db="$DB")
hv $A topo_host_up || { st_fail "hv-a did not start"; exit 1; }
mkdir -p "$OVSI_BASE/$B/chand"
ovsi_netns_add $NS_B && ovsi_start $B $NS_B &&
    topo_host_bridge_up $B ||
    { st_fail "hv-b's Open vSwitch did not start"; exit 1; }
TOPO_HOST_ARGS=(--chassis=hv-b --monitor=own --chan-db="$DB")
hv $B topo_host_start || { st_fail "hv-b's chand-host did not start"; exit 1; }

ctl() {
    CHAND_CHAN_DB=$DB "$ST_BUILD/utilities/chanctl" "$@"
}
# vm1 on hv-a, vm2 on hv-b (the guests' key files and datastores are kept
# under one directory, whichever hypervisor serves them).
hv $A topo_vm_up $V1 11 || { st_fail "vm1 did not start"; exit 1; }
ovsi_vm_create $V2 $B br-int $V2-vnic 10.77.0.2/24 && ovsi_start $V2 $V2 &&
    TOPO_RUN=$OVSI_BASE/$A/chand topo_key_add $V2 &&
    TOPO_RUN=$OVSI_BASE/$A/chand topo_guest_start $V2 12 &&
    ovsi_vsctl $B set Interface $V2-vnic external_ids:chand-vm=$V2 \
        external_ids:chand-id=12 external_ids:chand-vid=4094 ||
    { st_fail "vm2 did not start"; exit 1; }
st_check "both channels are ready" ctl wait --timeout 60

host_status() {
    CHAND_HOST_CTL=$OVSI_BASE/$1/chand/chand-host.ctl \
        "$ST_BUILD/utilities/chanctl" host host/status
}
row_updates() {
    host_status "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["chan_db"]["row_updates"][sys.argv[1]])' "$2"
}
st_check "hv-a monitors its own VMs only" \
    bash -c "$(declare -f host_status); OVSI_BASE=$OVSI_BASE ST_BUILD=$ST_BUILD host_status $A | grep -q '\"monitor\": \"own\"'"

# --- traffic: hv-b's VM costs hv-a nothing ---------------------------------------
a_rec=$(row_updates $A Record)
b_rec=$(row_updates $B Record)
python3 - "$DB" $V2 <<'PY' || st_fail "cannot push 200 records to vm2"
import json, subprocess, sys
db, vm = sys.argv[1], sys.argv[2]
ops = ["Chan"] + [{"op": "insert", "table": "Record",
                   "row": {"key": "t/%d" % i, "vm": vm,
                           "value": json.dumps(i), "version": 1}}
                  for i in range(200)]
subprocess.run(["ovsdb-client", "transact", db, json.dumps(ops)],
               check=True, stdout=subprocess.DEVNULL)
PY
st_check "vm2 has the 200 records" ctl wait --vm $V2 --timeout 60
a_rec2=$(row_updates $A Record)
b_rec2=$(row_updates $B Record)
st_log "Record row updates: hv-a $a_rec -> $a_rec2, hv-b $b_rec -> $b_rec2"
st_check "hv-a received none of vm2's 200 records" test $((a_rec2 - a_rec)) -le 5
st_check "hv-b received them all" test $((b_rec2 - b_rec)) -ge 200
ctl push everyone '"hello"' >/dev/null
st_check "a record for all VMs reaches vm1 (hv-a)" \
    st_wait 30 st_guest $V1 get everyone
st_check "a record for all VMs reaches vm2 (hv-b)" \
    st_wait 30 st_guest $V2 get everyone

# --- migration there and back, records pushed all along ---------------------------
st_check "vm1 publishes a record" st_guest $V1 publish app/before '"moved"'
published() {
    st_output_has "$1" ctl published --vm $V1 app/ 2>/dev/null
}
st_check "vm1's record reaches the Chan DB" st_wait 30 published app/before

( i=0; while :; do i=$((i + 1))
      ctl push --vm $V1 "m/$((i % 40))" "$i" >/dev/null 2>&1
      sleep 0.05; done ) &
PUSHER=$!

# move VM FROM TO: vm's vNIC leaves FROM's bridge and joins TO's.
move() {
    local vm=$1 from=$2 to=$3 ns_to
    [ "$to" = "$A" ] && ns_to=$NS_A || ns_to=$NS_B
    ovsi_vsctl "$from" del-port br-int "$vm-vnic" &&
        ovsi_exec "$from" ip link set "$vm-vnic" netns "$ns_to" &&
        ovsi_exec "$to" ip link set "$vm-vnic" up &&
        ovsi_vsctl "$to" add-port br-int "$vm-vnic" -- \
            set Interface "$vm-vnic" external_ids:chand-vm="$vm" \
            external_ids:chand-id=11 external_ids:chand-vid=4094
}
# serving VM: prints "chassis state claim migrations sessions resumes" of
# VM's newest claim.
serving() {
    ovsdb-client -f json transact "$DB" \
        "[\"Chan\",{\"op\":\"select\",\"table\":\"Channel\",\"where\":[[\"vm\",\"==\",\"$1\"]]}]" |
        python3 -c '
import json, sys
rows = json.load(sys.stdin)[0]["rows"]
r = max(rows, key=lambda r: r["claim"])
st = dict(r["statistics"][1])
print(len(rows), r["chassis"], r["state"], r["claim"], r["migrations"],
      st.get("sessions", 0), st.get("resumes_after_migration", 0))'
}
served_by() {
    set -- $(serving $V1) "$1" "${2:-ready}"
    [ "$2" = "$8" ] && [ "$3" = "$9" ]
}
sleep 1
st_check "vm1 moves to hv-b" move $V1 $A $B
st_check "hv-b serves vm1" st_wait 30 served_by hv-b
sleep 1
st_check "vm1 moves back to hv-a" move $V1 $B $A
st_check "hv-a serves vm1 again" st_wait 30 served_by hv-a
sleep 1
kill $PUSHER; wait $PUSHER 2>/dev/null; PUSHER=

st_check "vm1 has applied everything pushed" ctl wait --vm $V1 --timeout 60
# expect VM: the desired state of VM (its records and those for all VMs)
# as compare-store.py reads it.
expect() {
    ovsdb-client -f json transact "$DB" \
        '["Chan",{"op":"select","table":"Record","where":[],"columns":["key","vm","value"]}]' |
        python3 -c '
import json, sys
vm = sys.argv[1]
rows = json.load(sys.stdin)[0]["rows"]
own = {r["key"]: json.loads(r["value"]) for r in rows if r["vm"] == vm}
out = {r["key"]: json.loads(r["value"]) for r in rows if r["vm"] == ["set", []]}
out.update(own)
print(json.dumps({vm: out}))' "$1" > "$OVSI_BASE/expect.json"
}
expect $V1
st_check "vm1's datastore is exactly as desired" \
    python3 "$ST_SRC/test/system/compare-store.py" "$OVSI_BASE/expect.json" \
    $V1 "$OVSI_BASE/$A/chand/$V1/guest.db"
set -- $(serving $V1)
st_log "vm1's Channel rows: $1; serving: chassis $2, state $3, claim $4, migrations $5, sessions $6, resumes_after_migration $7"
st_check "one Channel row of vm1 left" test "$1" = 1
st_check "the Chan DB counts 2 migrations" test "$5" = 2
st_check "the channel resumed after the migration" test "$7" = 1
st_check "without a snapshot" test "$6" = 0
st_check "vm1's published record stayed through both moves" published app/before
st_guest $V1 publish app/after '"here"' >/dev/null
st_check "and what it publishes now arrives" st_wait 30 published app/after

# --- split brain --------------------------------------------------------------------
ovsi_vsctl $B add-port br-int ghost -- set Interface ghost type=internal \
    external_ids:chand-vm=$V1 external_ids:chand-id=11 \
    external_ids:chand-vid=4094
status_is() {
    ovsi_vsctl "$1" get Interface "$2" external_ids:chand-status 2>/dev/null |
        grep -q "$3"
}
# (the ghost Interface leads to no guest: hv-b's channel stays connecting)
st_check "hv-b's newer claim wins" st_wait 30 served_by hv-b connecting
st_check "hv-a yields and says so" \
    st_wait 30 status_is $A $V1-vnic "standby: served by chassis hv-b"
ctl push --vm $V1 during-split '"kept"' >/dev/null 2>&1
ovsi_vsctl $B del-port br-int ghost
st_check "hv-a serves vm1 again once hv-b's Interface is gone" \
    st_wait 30 served_by hv-a
st_check "what was pushed during the split reaches vm1" \
    ctl wait --vm $V1 --timeout 60
expect $V1
st_check "vm1's datastore is exactly as desired after the split" \
    python3 "$ST_SRC/test/system/compare-store.py" "$OVSI_BASE/expect.json" \
    $V1 "$OVSI_BASE/$A/chand/$V1/guest.db"
set -- $(serving $V1)
st_check "resumed again, without a snapshot" test "$6" = 0 -a "$7" = 1

st_exit
