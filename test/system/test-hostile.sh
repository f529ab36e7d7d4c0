#!/usr/bin/env bash
# A hostile VM (doc/design.md §5, "Security model").  Two VMs: the victim chst-vic1
# (chan-id 11, vid 4094) and the attacker chst-att2 (chan-id 12, vid 3000),
# with per-channel keys when chand-guest supports --key-file.  While a
# legitimate push of a few thousand records runs to both, the attacker's
# namespace sends from its eth0 (raw AF_PACKET frames, tagged and
# untagged, built by hostile-tool.py):
#   - the victim's endpoint spoofed (its vid, MAC, IP), the host daemon's
#     addresses as source (to the victim and to the host endpoint),
#     broadcasts and ARP for the host endpoint on the channel vids, an
#     L3 spoof to the victim over the ordinary LAN;
#   - malformed datagrams on its own channel with exact addresses (bad IP
#     checksum, options, fragments, truncated UDP, garbage chand headers,
#     wrong trailers -- forged and empty-key --, near-MTU and jumbo frames,
#     well-authenticated frames with bad fields), and replays of its own
#     channel's captured frames, of the current and of an old epoch;
#   - hostile datagrams to its own chand-guest (spoofed host source);
#   - a flood of valid-looking frames on its own channel (>= 50k frames).
# It asserts: the victim's store holds exactly the legitimate data, no
# attacker frame reached the victim (its counters, host and guest side, do
# not move; a sniffer on its eth0 sees no foreign channel frame), every
# frame is counted where the protection that stops it lives (flow n_packets
# of the drop rules, chand-host's and chand-guest's drop counters, the
# meter), the victim converges within the normal bound while the flood
# runs, and the attacker's own channel converges afterwards with nothing
# lost or applied twice.  Isolation (flows/README.md): nothing the attacker
# sends into the channel space, whatever its tags or addresses, reaches the
# victim's eth0, ordinary link-local traffic still does, the attacker's
# isolation_drops count it all, and frames written to the attacker's own
# chand0 into the channel space are counted by its guest bridge.
#
# Knobs: CHAND_HOSTILE_PUSHES (3000), CHAND_HOSTILE_BOUND (30 s: the
# victim's convergence bound under the flood), CHAND_HOSTILE_NOKEYS=1 (run
# unauthenticated: no keys in the Chan DB nor in the guests).

. "$(dirname "$0")/lib.sh"
st_require_root
here=$(cd "$(dirname "$0")" && pwd)
# The interpreter itself, once: a version-manager shim in front of python3
# can cost half a second per call, and the checks make many.
PY=$(python3 -c 'import sys; print(sys.executable)')
HT=$here/hostile-tool.py
ht() {
    "$PY" "$HT" "$@"
}
N=${CHAND_HOSTILE_PUSHES:-3000}
BOUND=${CHAND_HOSTILE_BOUND:-30}
# Namespaces of their own (still chst-*), so that a test-e2e started by
# someone else meanwhile cannot take over or delete ours.
TOPO_HOST_NS=chst-hhv
V=chst-vic1 V_ID=11 V_VID=4094
A=chst-att2 A_ID=12 A_VID=3000
HOST_MAC=0a:c4:00:00:00:00
W=$OVSI_BASE/hostile
T0=$(date +%s.%N)

hl() {
    st_log "[$(awk -v a="$T0" -v b="$(date +%s.%N)" \
        'BEGIN { printf "%.1f", b - a }')s] $*"
}

# hcheck CMD...: runs a checker printing "ok: ..." / "FAIL: ..." lines;
# each line is logged, each FAIL recorded.
hcheck() {
    local line failed=0
    while IFS= read -r line; do
        case $line in
            ok:*) st_log "$line" ;;
            FAIL:*) st_fail "${line#FAIL: }"; failed=1 ;;
            rc=0) ;;
            rc=*) [ $failed = 1 ] || st_fail "$1 ${2:-}: $line" ;;
            *) st_log "  $line" ;;
        esac
    done < <("$@" 2>&1; echo "rc=$?")
}

ht selftest >/dev/null || { st_fail "hostile-tool.py selftest"; exit 1; }

# Keys: topology.sh gives each VM a key (TOPO_KEYS=1, its default) in the
# Chan DB and in $TOPO_RUN/VM/channel.key for its chand-guest.
KEYS=1
if [ "${CHAND_HOSTILE_NOKEYS:-0}" = 1 ]; then
    KEYS=0
fi
TOPO_KEYS=$KEYS

# --- helpers ------------------------------------------------------------

host_show() {           # VM: chand-host's view of VM's channel (JSON).
    st_chanctl channel-show "$1"
}

guest_show() {          # VM: chand-guest's status (JSON).
    st_guest "$1" guest-status --json
}

jget() {                # PATH... on stdin.
    ht json-get "$@"
}

flows_json() {
    st_ofctl dump-flows br-int | ht flows
}

meters_json() {
    st_ofctl meter-stats br-int | ht meters
}

vnic_rx_dropped() {
    topo_vnic_stat "$1" rx_dropped
}

pid_alive() {
    local pid
    pid=$(cat "$1" 2>/dev/null) && kill -0 "$pid" 2>/dev/null
}

daemons_alive() {
    pid_alive "$TOPO_RUN/chand-host.pid" &&
        pid_alive "$TOPO_RUN/$V/chand-guest.pid" &&
        pid_alive "$TOPO_RUN/$A/chand-guest.pid"
}

# push PREFIX SEED COUNT BATCH PAUSE: legitimate records for both VMs and
# for all, logged in $W/push-PREFIX.log (push-model.py format).
push() {
    ht push "$(topo_db)" "$W/push-$1.log" "$1" "$2" "$3" "$4" "$5" "$V" "$A"
}

attack() {              # PHASE [COUNT]: from the attacker's eth0.
    ip netns exec "$A" "$PY" "$HT" attack eth0 "$1" --cfg "$W/cfg.json" \
        --count "${2:-20}"
}

# merge_sent JSON: adds the cases of one phase to $W/sent.json.
merge_sent() {
    "$PY" -c 'import json, sys
s = json.load(open(sys.argv[1]))
s.update(json.loads(sys.argv[2]))
json.dump(s, open(sys.argv[1], "w"), sort_keys=True)' "$W/sent.json" "$1"
}

# --- topology, keys -----------------------------------------------------

for ns in "$TOPO_HOST_NS" "$V" "$A"; do
    if ip netns list | awk '{print $1}' | grep -qx -- "$ns"; then
        echo "$ST_NAME: namespace $ns exists: another run of this test?" >&2
        exit 1
    fi
done
mkdir -p "$W"
echo '{}' >"$W/sent.json"
BG_PIDS=()
hostile_cleanup() {
    local pid
    touch "$W/flood.stop" 2>/dev/null
    for pid in "${BG_PIDS[@]}"; do
        kill "$pid" 2>/dev/null
    done
    wait 2>/dev/null
    st_cleanup
}
trap hostile_cleanup EXIT
topo_host_up || { st_fail "hypervisor did not start"; exit 1; }
for spec in "$V:$V_ID:$V_VID" "$A:$A_ID:$A_VID"; do
    IFS=: read -r vm id vid <<<"$spec"
    ST_VMS="$ST_VMS $vm"
    topo_vm_up "$vm" "$id" "$vid" || { st_fail "VM $vm did not start"; exit 1; }
done
st_chanctl wait --timeout 60 || { st_fail "channels not ready"; exit 1; }
hl "up: victim $V (id $V_ID, vid $V_VID), attacker $A (id $A_ID, vid $A_VID)"

A_KEY=""
if [ $KEYS = 1 ]; then
    for vm in "$V" "$A"; do
        line=$(grep -v '^#' "$TOPO_RUN/$vm/channel.key" | tail -1)
        gen=${line%% *}
        [ "$vm" = "$A" ] && A_KEY=${line#* }
        keyed() {
            [ "$(host_show "$1" | jget counters.tx_key_generation \
                counters.rx_key_generation | tr '\n' ' ')" = "$2 $2 " ]
        }
        st_check "$vm: both ends use key generation $gen" \
            st_wait 20 keyed "$vm" "$gen"
    done
    hl "keys: generation $gen on both channels (the attacker knows its own key)"
else
    hl "keys: NOT TESTED (CHAND_HOSTILE_NOKEYS=1): channels unauthenticated (empty key)"
fi

# --- captures of the attacker's own channel -----------------------------
# Two sessions' worth: a push, then the attacker's store is lost (its
# chand-guest restarts on an empty datastore, so the host starts a new
# epoch), then another push.  Frames of the first epoch are then "old".

ip netns exec "$A" "$PY" "$HT" capture eth0 60 "$W/capture.jsonl" \
    >"$W/capture.out" 2>&1 &
CAP_PID=$!
BG_PIDS+=("$CAP_PID")
sleep 0.5
push w0 1 300 100 0 || st_fail "push w0"
st_check "both converge after the first push" st_chanctl wait --timeout 30
epoch_before=$(host_show "$A" | jget host_epoch)
# The attacker's new store counts applied frames from 0 again; the host's
# msgs_acked does not.
declare -A ACKED_OFFSET=([$V]=0 [$A]=$(host_show "$A" | jget counters.msgs_acked))
topo_guest_stop "$A"
rm -f "$TOPO_RUN/$A"/guest.db*
topo_guest_start "$A" "$A_ID" "$A_VID" ||
    { st_fail "attacker's chand-guest did not restart"; exit 1; }
new_epoch() {
    [ "$(host_show "$A" | jget host_epoch)" != "$epoch_before" ]
}
st_check "attacker's channel has a new epoch after its store was lost" \
    st_wait 20 new_epoch
push w0b 2 60 30 0 || st_fail "push w0b"
st_check "both converge after the attacker's resync" \
    st_chanctl wait --timeout 30
sleep 0.5
kill "$CAP_PID" 2>/dev/null
wait "$CAP_PID" 2>/dev/null
A_EPOCH=$(host_show "$A" | jget host_epoch)
VM1_ETH=$(ip netns exec "$V" cat /sys/class/net/eth0/address)
VM2_ETH=$(ip netns exec "$A" cat /sys/class/net/eth0/address)
cat >"$W/cfg.json" <<EOF
{"victim_id": $V_ID, "victim_vid": $V_VID,
 "attacker_id": $A_ID, "attacker_vid": $A_VID,
 "victim_eth_mac": "$VM1_ETH", "attacker_eth_mac": "$VM2_ETH",
 "attacker_key": "$A_KEY", "capture": "$W/capture.jsonl",
 "host_epoch": $A_EPOCH, "victim_vm": "$V", "attacker_vm": "$A"}
EOF
hl "captured $(wc -l <"$W/capture.jsonl") frames on $A's eth0 (host epochs $epoch_before then $A_EPOCH)"
ht capture-summary --cfg "$W/cfg.json" >"$W/capture-summary.json"
hl "  by direction/epoch/type: $(cat "$W/capture-summary.json")"
has_captured() {        # GROUP TYPE
    [ "$(jget "$1.$2" <"$W/capture-summary.json")" != - ]
}
st_check "capture holds host DATA of the current epoch (to replay)" \
    has_captured in_cur DATA
st_check "capture holds host DATA of the old epoch (to replay)" \
    has_captured in_old DATA
st_check "capture holds guest ACKs of the old epoch (to replay)" \
    has_captured out_old ACK

# --- baselines ----------------------------------------------------------

snapshot() {            # NAME: everything the checks compare.
    flows_json >"$W/flows.$1.json"
    meters_json >"$W/meters.$1.json"
    host_show "$V" >"$W/host-v.$1.json"
    host_show "$A" >"$W/host-a.$1.json"
    guest_show "$V" >"$W/guest-v.$1.json"
    guest_show "$A" >"$W/guest-a.$1.json"
    vnic_rx_dropped "$A" >"$W/vnic-a-drop.$1"
}
snapshot 0

guest_mac() {          # CHAN_ID: the derived guest endpoint MAC.
    printf '0a:c4:%02x:%02x:%02x:%02x\n' $(($1 >> 24 & 255)) \
        $(($1 >> 16 & 255)) $(($1 >> 8 & 255)) $(($1 & 255))
}
ip netns exec "$V" "$PY" "$HT" sniff eth0 "$W/sniff.json" \
    --guest-mac "$(guest_mac "$V_ID")" --host-mac "$HOST_MAC" \
    --vid "$V_VID" &
SNIFF_PID=$!
BG_PIDS+=("$SNIFF_PID")
st_wait 10 test -e "$W/sniff.json.ready" || st_fail "sniffer did not start"

# --- the attack, during a legitimate push -------------------------------

push w1 3 "$N" 100 0.15 &
PUSH_PID=$!
BG_PIDS+=("$PUSH_PID")
hl "pushing $N operations (batches of 100) while $A attacks"

for phase in spoof hostsrc bcast lan isolation tenant malformed; do
    out=$(attack "$phase") || st_fail "attack phase $phase"
    merge_sent "$out"
    hl "sent [$phase] $out"
done
out=$(ip netns exec "$A" "$PY" "$HT" guest-inject --cfg "$W/cfg.json" --count 20) ||
    st_fail "guest-inject"
merge_sent "$out"
hl "sent [guest-inject] $out"
out=$(attack replay) || st_fail "attack phase replay"
merge_sent "$out"
hl "sent [replay] $out"
ip -n "$A" link set eth0 mtu 9000 || st_fail "cannot raise $A's eth0 MTU"
out=$(attack jumbo 10) || st_fail "attack phase jumbo"
merge_sent "$out"
ip -n "$A" link set eth0 mtu 1500
hl "sent [jumbo] $out"
sleep 1                 # Let PACKET_INs and counters settle.
snapshot 1

wait "$PUSH_PID" || st_fail "legitimate push w1 failed"
hl "push of $N operations committed"

# --- the flood ----------------------------------------------------------

rm -f "$W/flood.stop"
ip netns exec "$A" "$PY" "$HT" flood eth0 --cfg "$W/cfg.json" --min 50000 \
    --max-seconds $((BOUND + 10)) --stop "$W/flood.stop" >"$W/flood.json" &
FLOOD_PID=$!
BG_PIDS+=("$FLOOD_PID")
sleep 1
push w2 4 1000 100 0.1 || st_fail "legitimate push w2 failed"
hl "flood running; 1000 more operations committed; waiting for $V"
t=$(date +%s.%N)
if st_chanctl wait --vm "$V" --timeout "$BOUND"; then
    took=$(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    st_log "ok: victim $V converged during the flood in ${took}s (bound ${BOUND}s)"
else
    st_fail "victim $V did not converge within ${BOUND}s during the flood"
fi
st_check "the flood was still running when the victim converged" \
    kill -0 "$FLOOD_PID"
meter_dropping() {
    [ "$(host_show "$A" | jget --zero counters.rx_drop_meter)" -gt 0 ]
}
st_check "chand-host reports rx_drop_meter > 0 for the attacker's channel" \
    st_wait 12 meter_dropping
touch "$W/flood.stop"
wait "$FLOOD_PID" || st_fail "flood failed"
hl "flood: $(cat "$W/flood.json")"
sleep 1
snapshot 2

kill "$SNIFF_PID" 2>/dev/null
wait "$SNIFF_PID" 2>/dev/null

# --- the attacker's channel recovers, everything is exact ---------------

st_check "attacker $A's channel converges after the attack" \
    st_chanctl wait --vm "$A" --timeout 60
st_check "all channels converge" st_chanctl wait --timeout 30
cat "$W"/push-*.log >"$W/ops.txt"
"$here/push-model.py" --expect "$W/ops.txt" "$V" "$A" >"$W/expect.json"
hl "$(wc -l <"$W/ops.txt") legitimate operations pushed in all"
for vm in "$V" "$A"; do
    st_check "$vm datastore holds exactly the legitimate data" \
        "$here/compare-store.py" "$W/expect.json" "$vm" "$TOPO_RUN/$vm/guest.db"
done
chandb_state() {
    ovsdb-client transact "$(topo_db)" \
        '["Chan",{"op":"select","table":"Record","where":[]},
                 {"op":"select","table":"Channel","where":[]}]'
}
chandb_state >"$W/chandb.json"
st_check "Chan DB applied state is true" \
    "$here/check-chandb.py" "$V" "$A" <"$W/chandb.json"

# Exactly once: frames the guest store applied = messages the host saw
# acknowledged (a replayed DATA frame applied again would break it).
frames_equal() {
    local vm=$1 h g
    h=$(host_show "$vm" | jget counters.msgs_acked counters.in_flight \
        counters.queued_msgs | tr '\n' ' ')
    g=$(guest_show "$vm" | jget frames_applied)
    FRAMES="guest frames_applied $g, host msgs_acked/in_flight/queued $h, acked before the store was lost ${ACKED_OFFSET[$vm]}"
    set -- $h
    [ "$2" = 0 ] && [ "$3" = 0 ] && [ "$g" = $(($1 - ACKED_OFFSET[$vm])) ]
}
for vm in "$V" "$A"; do
    FRAMES="?"
    if st_wait 15 frames_equal "$vm"; then
        st_log "ok: $vm applied every frame once ($FRAMES)"
    else
        frames_equal "$vm"
        st_fail "$vm: frames applied != messages acknowledged ($FRAMES)"
    fi
done

st_chanctl push after-attack '"still serving"' || st_fail "push after-attack"
echo "push after-attack '\"still serving\"'" >"$W/push-zz.log"
cat "$W"/push-*.log >"$W/ops.txt"
"$here/push-model.py" --expect "$W/ops.txt" "$V" "$A" >"$W/expect.json"
for vm in "$V" "$A"; do
    st_check "$vm receives a push after the attack" \
        st_wait 20 st_guest "$vm" get after-attack
done
st_check "chand-host and both chand-guests are alive" daemons_alive

# --- the victim never saw the attacker ----------------------------------

hcheck ht unchanged "victim's chand-guest drop counters" \
    "$W/guest-v.0.json" "$W/guest-v.2.json" drop_ drop_gap,drop_epoch
hcheck ht unchanged "chand-host's drop counters of the victim's channel" \
    "$W/host-v.0.json" "$W/host-v.2.json" rx_drop_,rx_bad_,rx_stale_
hl "victim's guest counters after: $(jget counters <"$W/guest-v.2.json" | tr -d ' \n')"
sniff() {
    jget --zero "$1" <"$W/sniff.json"
}
hl "sniffer on $V's eth0: $("$PY" -c 'import json,sys; j=json.load(open(sys.argv[1])); j.pop("samples"); print(j)' "$W/sniff.json")"
st_check "no foreign tagged frame arrived on the victim's eth0 ($(sniff foreign_tagged))" \
    test "$(sniff foreign_tagged)" = 0
st_check "no untagged frame to or from a chand MAC arrived on the victim's eth0 ($(sniff chand_mac_untagged))" \
    test "$(sniff chand_mac_untagged)" = 0
st_check "the victim's eth0 did see legitimate channel frames ($(sniff legit))" \
    test "$(sniff legit)" -gt 0
if [ "$(sniff foreign_tagged)$(sniff chand_mac_untagged)" != 00 ]; then
    st_log "  samples: $(jget samples <"$W/sniff.json")"
fi
# Isolation: nothing the attacker sent into the channel space (any tags,
# any destination MAC, the host daemon's addresses as source; the LAN
# case too, UDP to 7433 in 169.254.0.0/16) reached the victim's vNIC.
st_check "no frame in the channel space but the channel's own arrived on the victim's eth0 ($(sniff channel_space))" \
    test "$(sniff channel_space)" = 0
if [ "$(sniff channel_space)" != 0 ]; then
    st_log "  samples: $(jget samples.channel_space <"$W/sniff.json")"
fi
# The control: ordinary link-local traffic between the same two VMs (not
# UDP to the channel port) is switched as before.
tenant=$(jget --zero tenant_ll_udp tenant_ll_udp_from_7433 <"$W/sent.json" |
         awk '{ n += $1 } END { print n + 0 }')
st_check "ordinary link-local traffic from $A reached the victim's eth0 ($(sniff tenant)/$tenant)" \
    test "$tenant" -gt 0 -a "$(sniff tenant)" -ge "$tenant"

# --- every frame counted where its protection lives ---------------------

hl "attack cases sent: $(tr -d ' \n' <"$W/sent.json")"
hcheck ht check --sent "$W/sent.json" \
    --flows0 "$W/flows.0.json" --flows1 "$W/flows.1.json" \
    --host0 "$W/host-a.0.json" --host1 "$W/host-a.1.json" \
    --guest0 "$W/guest-a.0.json" --guest1 "$W/guest-a.1.json" \
    --victim-vid "$V_VID" --attacker-vid "$A_VID" \
    --attacker-ofport "$(ovsi_vsctl "$TOPO_HOST" get Interface "$A-vnic" ofport)"

# The same drops as chand-host counts them per VM: the attacker's
# isolation_drops cover everything it sent into the channel space, in
# channel-show and in the Chan DB's Channel.statistics; the victim sent
# nothing there.
iso_sent=$(jget --zero $(ht iso-cases) <"$W/sent.json" |
           awk '{ n += $1 } END { print n + 0 }')
iso_counted() {         # VM: isolation_drops in chand-host's channel-show.
    host_show "$1" | jget --zero counters.isolation_drops
}
iso_db() {              # VM: isolation_drops in the Chan DB.
    ovsdb-client transact "$(topo_db)" '["Chan",{"op":"select",
        "table":"Channel","where":[["vm","==","'"$1"'"]],
        "columns":["statistics"]}]' |
        "$PY" -c 'import json, sys
rows = json.load(sys.stdin)[0]["rows"]
m = dict(rows[0]["statistics"][1]) if rows else {}
print(m.get("isolation_drops", 0))'
}
iso_reached() {
    [ "$(iso_counted "$A")" -ge "$iso_sent" ] &&
        [ "$(iso_db "$A")" -ge "$iso_sent" ]
}
st_check "$A's isolation_drops >= the $iso_sent frames it sent into the channel space, in channel-show and the Chan DB" \
    st_wait 30 iso_reached
hl "  isolation_drops: $A channel-show $(iso_counted "$A"), Chan DB $(iso_db "$A"); $V $(iso_counted "$V")"
st_check "the victim $V sent nothing into the channel space (isolation_drops $(iso_counted "$V"))" \
    test "$(iso_counted "$V")" = 0

# The meter: the attacker's dropped, the victim's never.
meter() {               # SNAPSHOT CHAN_ID FIELD
    jget --zero "$2.$3" <"$W/meters.$1.json"
}
a_drop=$(( $(meter 2 "$A_ID" drop) - $(meter 1 "$A_ID" drop) ))
st_check "meter $A_ID (attacker) dropped flood frames ($a_drop)" \
    test "$a_drop" -gt 0
st_check "meter $V_ID (victim) dropped nothing ($(meter 2 "$V_ID" drop))" \
    test "$(meter 2 "$V_ID" drop)" = 0
flood_sent=$(jget sent <"$W/flood.json")
a_pass=$(( $(meter 2 "$A_ID" in) - $(meter 1 "$A_ID" in) - a_drop ))
auth_flood=$(( $(jget --zero counters.rx_drop_auth <"$W/host-a.2.json") - \
               $(jget --zero counters.rx_drop_auth <"$W/host-a.1.json") ))
hl "flood: $flood_sent frames sent, $(( $(meter 2 "$A_ID" in) - $(meter 1 "$A_ID" in) )) reached the meter, $a_drop dropped by it, $a_pass passed; chand-host counted $auth_flood as rx_drop_auth"
st_check "the flood was >= 50000 frames ($flood_sent)" test "$flood_sent" -ge 50000
st_check "chand-host rejected the flood frames that passed the meter as auth ($auth_flood > 0)" \
    test "$auth_flood" -gt 0
st_check "chand-host saw at most what passed the meter ($auth_flood <= $a_pass)" \
    test "$auth_flood" -le "$a_pass"

# Jumbo frames never reach Open vSwitch: the far end of the VM's veth (MTU
# 1500: the hypervisor's, or on the OVS-DPDK lane the NIC's) drops them.
jumbo=$(jget --zero jumbo_9000 <"$W/sent.json")
vdrop=$(( $(cat "$W/vnic-a-drop.1") - $(cat "$W/vnic-a-drop.0") ))
st_check "the $jumbo jumbo frames were dropped by the vNIC's veth ($vdrop rx_dropped)" \
    test "$vdrop" -ge "$jumbo"

# --- the attacker's own replays of HELLO ---------------------------------
# Not sequenced: the host cannot tell a replayed HELLO from a fresh one.
# Whatever it does with it, the attacker's channel must converge again.
sessions0=$(host_show "$A" | jget --zero counters.sessions)
out=$(attack replay-hello 5) || st_fail "attack phase replay-hello"
hl "sent [replay-hello] $out"
sleep 1
st_check "attacker's channel converges after replayed HELLOs" \
    st_chanctl wait --vm "$A" --timeout 30
hl "  chand-host sessions with $A: $sessions0 -> $(host_show "$A" | jget --zero counters.sessions)"
st_check "victim still in sync" st_chanctl wait --vm "$V" --timeout 10
for vm in "$V" "$A"; do
    st_check "$vm datastore still exact after the HELLO replays" \
        "$here/compare-store.py" "$W/expect.json" "$vm" "$TOPO_RUN/$vm/guest.db"
done
st_check "chand-host and both chand-guests are alive at the end" daemons_alive
hl "keys: $([ $KEYS = 1 ] && echo "tested (generation ${gen:-?})" || echo "NOT tested")"

# --- the attacker's own upstream stream, by hand -------------------------
# Bypassing its chand-guest, with its own key: a record under from/ (the
# victim's origin), a value over its limit, a message to itself (a relay
# loop), sent three times.  chand-host refuses and counts each, the victim
# and its rows stay as they were, and the attacker's rows come back to what
# its chand-guest publishes (its next refresh shows the host another
# session, and its snapshot replaces the hand-made one).
UT=$here/upstream-tool.py
ovsdb-client transact "$(topo_db)" '["Chan",
    {"op":"insert","table":"Guest_Limits","row":{"vm":"'"$A"'",
     "limits":["map",[["max_value_bytes",100]]]}},
    {"op":"insert","table":"Relay","row":{"source":"'"$A"'",
     "prefix":"to/","to":"vms","vms":["set",["'"$A"'"]]}}]' >/dev/null ||
    st_fail "cannot add the attacker's limit and relay rule"
sleep 1
v_rows() {              # The victim's rows, but for its statistics.
    "$PY" "$UT" guest-records "$(topo_db)" "$V" | "$PY" -c 'import json, sys
print(json.dumps({k: v for k, v in json.load(sys.stdin).items()
                  if not k.startswith("stats/")}, sort_keys=True))'
}
ip netns exec "$V" "$PY" "$UT" call publish '["mine", {"of": "the victim"}]' \
    >/dev/null || st_fail "the victim cannot publish"
v_has_mine() {
    st_output_has '"mine"' v_rows
}
st_check "the victim's own record is in its Guest_Record rows" \
    st_wait 20 v_has_mine
v_rows >"$W/v-rows.0.json"
up_refused() {
    local c
    c=$(host_show "$A" | jget --zero counters.up_refused_reserved \
        counters.up_refused_value_size counters.relay_refused | tr '\n' ' ')
    UP_REFUSED=$c
    set -- $c
    [ "$1" -ge 1 ] && [ "$2" -ge 1 ] && [ "$3" -ge 1 ]
}
# The hand-made stream races the attacker's own chand-guest: if that one
# starts an upstream session between the hand-made SYNC and DATA (right
# after a new downstream session, say), the DATA lands in a dead epoch and
# is dropped as such (up_drop_epoch), not refused.  Then it is sent again,
# at most three times in all.
for try in 1 2 3; do
    out=$(attack upstream 3) || st_fail "attack phase upstream"
    hl "sent [upstream] $out"
    st_wait 10 up_refused && break
    hl "  not refused yet (try $try): up_drop_epoch, up_rx_sync, up_sessions: $(host_show "$A" | jget --zero counters.up_drop_epoch counters.up_rx_sync counters.up_sessions | tr '\n' ' ')"
done
st_check "chand-host refused the forged origin, the value over the limit and the relay loop" \
    up_refused
hl "  up_refused_reserved, up_refused_value_size, relay_refused: $UP_REFUSED"
v_rows >"$W/v-rows.1.json"
hcheck "$PY" "$UT" compare "the victim's Guest_Record rows did not move" \
    "$W/v-rows.0.json" "$W/v-rows.1.json"
st_check "$V datastore still exact after the hand-made upstream stream" \
    "$here/compare-store.py" "$W/expect.json" "$V" "$TOPO_RUN/$V/guest.db"
a_healed() {
    "$PY" "$UT" guest-records "$(topo_db)" "$A" >"$W/a-rows.json" &&
        ! grep -q hand-made "$W/a-rows.json"
}
st_check "the attacker's rows come back to what its chand-guest publishes" \
    st_wait 30 a_healed
st_check "nothing was relayed to $A itself" \
    test -z "$(st_guest "$A" list from/ 2>/dev/null)"

# --- the guest bridge's isolation rules ----------------------------------
# chand-guest reports what its bridge's isolation rules (guest.flows,
# priority 40000) dropped as bridge.isolation_drops in guest-status.  While
# the host bridge isolates, nothing in the channel space but the channel's
# own frames reaches a guest bridge from its vNIC, and what a VM sends on
# its own eth0 leaves it without entering its guest bridge; the other way
# in is chand0.  So the attacker, inside its VM, writes frames into the
# channel space that are not its channel to chand0 (raw, as a process of
# the VM or a faulty chand-guest could): to the victim's endpoint, tagged
# with the victim's vid, and broadcast to the link-local subnet on the
# channel port.  Its guest bridge must drop and count every one (the
# counter is read from the bridge every 5 s).
g_iso() {               # VM: its guest bridge's isolation_drops.
    guest_show "$1" | jget bridge.isolation_drops
}
is_count() {
    [[ $1 =~ ^[0-9]+$ ]]
}
v_giso=$(g_iso "$V")
st_check "the victim's chand-guest reports its bridge's isolation_drops ($v_giso)" \
    is_count "$v_giso"
hl "  guest bridge isolation_drops: $V $v_giso; $A $(jget bridge.isolation_drops <"$W/guest-a.0.json") before the attack, $(jget bridge.isolation_drops <"$W/guest-a.2.json") after it (sent on its eth0)"
a_giso0=$(g_iso "$A")
g_sent=$(ip netns exec "$A" "$PY" - "$(guest_show "$A" | jget guest_mac guest_ip)" \
    "$(guest_show "$V" | jget guest_mac guest_ip)" "$V_VID" 10 <<'PY'
import socket, struct, sys
a_mac, a_ip = sys.argv[1].split()
v_mac, v_ip = sys.argv[2].split()
vid, n = int(sys.argv[3]), int(sys.argv[4])

def mac(s):
    return bytes(int(x, 16) for x in s.split(":"))

def udp(src, dst, text):
    payload = text.encode().ljust(18, b"\0")
    u = struct.pack("!HHHH", 7433, 7433, 8 + len(payload), 0) + payload
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(u), 0xBAD0, 0, 64,
                    17, 0, socket.inet_aton(src), socket.inet_aton(dst))
    s = sum(struct.unpack("!10H", h))
    s = (s & 0xffff) + (s >> 16)
    s = (s & 0xffff) + (s >> 16)
    return h[:10] + struct.pack("!H", ~s & 0xffff) + h[12:] + u

ip4 = b"\x08\x00"
frames = [
    mac(v_mac) + mac(a_mac) + ip4 + udp(a_ip, v_ip, "sideways"),
    mac(v_mac) + mac(a_mac) + struct.pack("!HH", 0x8100, vid) + ip4
    + udp(a_ip, v_ip, "victim vid"),
    b"\xff" * 6 + mac(a_mac) + ip4 + udp(a_ip, "169.254.255.255", "bcast"),
]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("chand0", 0))
for f in frames:
    for _ in range(n):
        s.send(f)
print(len(frames) * n)
PY
) || st_fail "cannot send raw frames on $A's chand0"
g_iso_counted() {       # The attacker's count grew by >= what it sent.
    a_giso1=$(g_iso "$A")
    is_count "$a_giso0" && is_count "$a_giso1" && is_count "${g_sent:-}" &&
        [ $((a_giso1 - a_giso0)) -ge "$g_sent" ]
}
st_wait 15 g_iso_counted
st_check "$A's guest bridge counted the ${g_sent:-?} frames written to its chand0 into the channel space as isolation_drops ($a_giso0 -> $a_giso1)" \
    g_iso_counted

st_exit
