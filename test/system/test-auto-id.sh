#!/usr/bin/env bash
# Automatic chand-ids (doc/operations.md, "Automatic channel ids"): an
# Interface with only external_ids:chand-vm gets a free id from chand-host,
# written back as chand-id with chand-id-auto equal to it; the channel works
# with it (push, applied and acknowledged); a restarted chand-host keeps it;
# two VMs get different ids; an id set by hand is never chosen, and a
# duplicate set by hand is still a loud error; an operator racing the
# allocation never gets a silent duplicate; a VM whose vNIC goes and comes
# back gets its id back, and a new VM meanwhile does not get it.

. "$(dirname "$0")/lib.sh"
st_require_root
TOPO_HOST_NS=chst-ahv

ext() {     # ext IFACE KEY: the value of external_ids:KEY, or nothing
    st_vsctl --if-exists get Interface "$1" "external_ids:$2" 2>/dev/null |
        tr -d '"'
}
has_id() { [ -n "$(ext "$1" chand-id)" ]; }
status_is() { [ "$(ext "$1" chand-status)" = "$2" ]; }
status_has() { ext "$1" chand-status | grep -q -- "$2"; }
settled() { ! ext "$1" chand-status | grep -q '^pending' && has_status "$1"; }
has_status() { [ -n "$(ext "$1" chand-status)" ]; }

# auto_vm_up VM: a VM (namespace, vNIC, its own OVS, a key) whose vNIC is
# provisioned with chand-vm only; once chand-host has written the id, its
# chand-guest starts with it, as whatever builds the VM would do.
auto_vm_up() {
    local vm=$1 n
    n=$(topo__vm_index "$vm")
    ST_VMS="$ST_VMS $vm"
    ovsi_vm_create "$vm" "$TOPO_HOST" br-int "$vm-vnic" "10.77.0.$n/24" &&
        ovsi_start "$vm" "$vm" && topo_key_add "$vm" &&
        st_vsctl set Interface "$vm-vnic" external_ids:chand-vm="$vm" ||
        return 1
    st_wait 20 has_id "$vm-vnic" || { st_log "$vm: no chand-id"; return 1; }
    topo_guest_start "$vm" "$(ext "$vm-vnic" chand-id)"
}

# push_to VM KEY: pushes a record to VM and checks that the guest applied
# it (chanctl wait: applied and acknowledged).
push_to() {
    local vm=$1 key=$2
    st_chanctl push --vm "$vm" "$key" "\"$vm $key\"" >/dev/null &&
        st_chanctl wait --timeout 60 --vm "$vm" >/dev/null &&
        [ "$(st_guest "$vm" get "$key")" = "\"$vm $key\"" ]
}

# chan_db VM COLUMN: a column of VM's Channel row.
chan_db() {
    ovsi_run "$TOPO_HOST" ovsdb-client --timeout=10 transact "$(topo_db)" \
        "[\"Chan\",{\"op\":\"select\",\"table\":\"Channel\",
          \"where\":[[\"vm\",\"==\",\"$1\"]],\"columns\":[\"$2\"]}]" |
        python3 -c 'import json,sys; r=json.load(sys.stdin)[0]["rows"];
print(r[0][sys.argv[1]] if r else "")' "$2"
}
vm_state_is() { [ "$(chan_db "$1" state)" = "$2" ]; }
chan_db_ids_are() {
    [ "$(chan_db $V1 chan_id)" = "$id1" ] && [ "$(chan_db $V2 chan_id)" = "$id2" ]
}

allocated_lines() { grep -c "allocated chand-id" "$TOPO_RUN/chand-host.log"; }

# no_silent_duplicate: every chand-id that two Interfaces share is an error
# on all but one of them.
no_silent_duplicate() {
    st_vsctl --format=json --columns=name,external_ids list Interface |
        python3 -c '
import json, sys, collections
by_id = collections.defaultdict(list)
for name, ids in json.load(sys.stdin)["data"]:
    kv = dict(ids[1])
    if "chand-id" in kv:
        by_id[kv["chand-id"]].append((name, kv.get("chand-status", "")))
bad = 0
for cid, users in sorted(by_id.items()):
    if len(users) > 1:
        print("chand-id %s on %s" % (cid, users), file=sys.stderr)
        quiet = [n for n, s in users if "duplicate chand-id" not in s]
        bad |= len(quiet) != 1
sys.exit(bad)'
}

st_up
V1=chst-avm1 V2=chst-avm2 V3=chst-avm3

st_check "vm1: an id is allocated and the guest starts with it" auto_vm_up $V1
id1=$(ext $V1-vnic chand-id)
st_log "vm1 has chand-id $id1"
st_check "vm1: chand-id-auto marks it ($(ext $V1-vnic chand-id-auto))" \
    test "$(ext $V1-vnic chand-id-auto)" = "$id1"
st_check "vm1: the log says so" \
    grep -q "allocated chand-id $id1 for $V1 on $V1-vnic" \
    "$TOPO_RUN/chand-host.log"
st_check "vm1: chand-status ready" st_wait 30 status_is $V1-vnic ready
st_check "vm1: a push is applied and acknowledged" push_to $V1 a

st_check "vm2: an id is allocated" auto_vm_up $V2
id2=$(ext $V2-vnic chand-id)
st_log "vm2 has chand-id $id2"
st_check "vm1 and vm2 have different ids" test "$id1" != "$id2"
st_check "vm2: a push is applied and acknowledged" push_to $V2 a
st_check "the Chan DB's Channel rows carry the ids" chan_db_ids_are
# A restart reads the ids back from the Interfaces: nothing is allocated.
n0=$(allocated_lines)
topo_host_stop
st_check "chand-host restarts" topo_host_start
st_check "vm1 ready again" st_wait 30 status_is $V1-vnic ready
st_check "vm2 ready again" st_wait 30 status_is $V2-vnic ready
st_check "vm1 keeps chand-id $id1" test "$(ext $V1-vnic chand-id)" = "$id1"
st_check "vm2 keeps chand-id $id2" test "$(ext $V2-vnic chand-id)" = "$id2"
st_check "no id was allocated again" test "$(allocated_lines)" = "$n0"
st_check "vm1 works after the restart" push_to $V1 b
st_check "vm2 works after the restart" push_to $V2 b

# A hand-set duplicate of an allocated id is a loud error; vm1 goes on.
st_vsctl add-port br-int dup1 -- set Interface dup1 type=internal \
    external_ids:chand-vm=dup1 external_ids:chand-id="$id1"
st_check "hand-set duplicate: chand-status names the owner" \
    st_wait 20 status_has dup1 \
    "error: duplicate chand-id $id1 (already used by $V1-vnic, allocated automatically)"
st_check "hand-set duplicate: logged" \
    st_wait 10 grep -q "interface dup1: duplicate chand-id $id1" \
    "$TOPO_RUN/chand-host.log"
st_check "vm1 unaffected by the duplicate" push_to $V1 c
st_vsctl del-port br-int dup1

# An id set by hand in the same transaction is not chosen.
next=1
while grep -qx "$next" <(printf '%s\n' "$id1" "$id2"); do next=$((next + 1)); done
st_vsctl add-port br-int same1 -- set Interface same1 type=internal \
    external_ids:chand-vm=same1 -- \
    add-port br-int same2 -- set Interface same2 type=internal \
    external_ids:chand-vm=same2 external_ids:chand-id="$next"
st_check "an id set by hand at once is avoided" st_wait 20 has_id same1
st_log "same1 got $(ext same1 chand-id), same2 has $next by hand"
st_check "same1 did not get the hand-set $next" \
    test "$(ext same1 chand-id)" != "$next"
st_check "same2's hand-set id is fine" st_wait 20 status_is same2 ready

# Races: an operator sets chand-id by hand while chand-host allocates, on
# another Interface (the id chand-host is about to choose) and on the same
# Interface.  Whatever the order of the commits, no silent duplicate, and a
# hand-set id is never marked automatic.
for r in 1 2 3 4 5; do
    used=$(st_vsctl --format=csv --data=bare --no-headings \
               --columns=external_ids list Interface |
           grep -o 'chand-id=[0-9]*' | cut -d= -f2 | sort -n)
    next=1
    while grep -qx "$next" <<<"$used"; do next=$((next + 1)); done
    st_vsctl add-port br-int ra$r -- set Interface ra$r type=internal \
        external_ids:chand-vm=ra$r &
    st_vsctl add-port br-int rb$r -- set Interface rb$r type=internal \
        external_ids:chand-vm=rb$r external_ids:chand-id="$next" &
    wait
    st_vsctl add-port br-int rc$r -- set Interface rc$r type=internal \
        external_ids:chand-vm=rc$r
    st_vsctl set Interface rc$r external_ids:chand-id=$((60000 + r))
    st_wait 20 settled ra$r
    st_wait 20 settled rb$r
    st_wait 20 settled rc$r
    st_log "race $r: ra$r $(ext ra$r chand-id) ($(ext ra$r chand-status))," \
        "rb$r $next by hand ($(ext rb$r chand-status))," \
        "rc$r $(ext rc$r chand-id) auto=$(ext rc$r chand-id-auto)"
    st_check "race $r: no silent duplicate" no_silent_duplicate
    st_check "race $r: rc$r keeps the hand-set id" \
        test "$(ext rc$r chand-id)" = $((60000 + r))
    st_check "race $r: rc$r's hand-set id is not marked automatic" \
        test "$(ext rc$r chand-id-auto)" != $((60000 + r))
done
st_log "writes refused by the precondition: $(grep -c 'not written' \
    "$TOPO_RUN/chand-host.log")"

# vm2's vNIC goes; a new VM does not get its id (its Channel row still has
# it); the vNIC comes back with chand-vm only and gets its id back, and the
# guest, still running with it, gets its records.
st_vsctl del-port br-int $V2-vnic
st_check "vm2's Channel row is released" st_wait 20 vm_state_is $V2 released
st_check "vm3: an id is allocated" auto_vm_up $V3
id3=$(ext $V3-vnic chand-id)
st_log "vm3 has chand-id $id3"
st_check "vm3 did not get vm2's id" test "$id3" != "$id2"
st_check "vm3 works" push_to $V3 a
st_vsctl add-port br-int $V2-vnic -- set Interface $V2-vnic \
    external_ids:chand-vm=$V2
st_check "vm2's vNIC is back with an id" st_wait 20 has_id $V2-vnic
st_check "vm2 gets its id $id2 back" test "$(ext $V2-vnic chand-id)" = "$id2"
st_check "vm2 works again" push_to $V2 d

# Two chand-hosts on one bridge (an overlapping restart, a mistake): for
# the same Interfaces both may choose the same ids; for each, one write
# commits and the other's precondition refuses it, or the second host sees
# the first one's ids before it writes.
dir=$(ovsi_dir "$TOPO_HOST")
refused() { cat "$TOPO_RUN"/chand-host*.log | grep -c "not written"; }
r0=$(refused)
st_check "a second chand-host starts" \
    ovsi_run "$TOPO_HOST" "$ST_BUILD/chand-host/chand-host" --chassis=hv-b \
    --ovs-db="unix:$dir/run/db.sock" --ovs-rundir="$dir/run" \
    --flows="$ST_SRC/flows/host.flows" --ctl="$TOPO_RUN/chand-host-b.ctl" \
    --content-dir="$TOPO_RUN/content-b" \
    --log-file="$TOPO_RUN/chand-host-b.log" \
    --pidfile="$TOPO_RUN/chand-host-b.pid" --detach
st_wait 10 grep -q "Open_vSwitch: synced" "$TOPO_RUN/chand-host-b.log"
args=()
for i in $(seq 10); do
    args+=(-- add-port br-int tw$i -- set Interface tw$i type=internal
           external_ids:chand-vm=tw$i)
done
st_vsctl "${args[@]:1}"
all_tw_have_ids() {
    local i
    for i in $(seq 10); do has_id tw$i || return 1; done
}
st_check "two chand-hosts: every Interface gets an id" st_wait 20 all_tw_have_ids
sleep 1
st_check "two chand-hosts: no duplicate at all" no_silent_duplicate
tw_ids=$(for i in $(seq 10); do ext tw$i chand-id; done | sort -u | wc -l)
st_check "two chand-hosts: ten different ids ($tw_ids)" test "$tw_ids" = 10
# Whether the two actually raced depends on timing: when one host's
# write lands before the other reads, the other never writes.  Either way
# the ids above are distinct; the refusals are reported, not required.
st_log "two chand-hosts: $(( $(refused) - r0 )) writes refused by the" \
    "precondition"
topo__kill "$TOPO_RUN/chand-host-b.pid"

st_exit
