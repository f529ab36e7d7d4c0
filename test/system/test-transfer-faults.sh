#!/usr/bin/env bash
# File transfer under faults (doc/objects.md, "File transfer"): 256 MiB
# host -> guest and 64 MiB guest -> host, each under 20% random loss both
# ways on the VM's chand0 (nftables: CHUNK frames counted apart), with
# chand-guest killed (SIGKILL) halfway and started again.
#
# Shown from the counters:
#   - the transfer resumes: the restarted chand-guest holds (h->g) or sends
#     (g->h) only what was missing, and the content matches its digest;
#   - chunks sent twice for any reason but the loss rule (the kill, early
#     retransmissions) stay under 10% of the object's chunks:
#       h->g: chand-host's chunks sent again - CHUNK frames the rule dropped
#             on the way in;
#       g->h: chunks chand-host received twice (its duplicates).
. "$(dirname "$0")/lib.sh"
st_require_root
PY=$(python3 -c 'import sys; print(sys.executable)')
TOPO_HOST_NS=chst-thv
V1=chst-tvm1 V2=chst-tvm2
D=$OVSI_BASE/files
HD=$OVSI_BASE/handlers.d
mkdir -p "$D/host" "$D/2" "$D/installed"
# Fetches from a VM ask for 80% of its meter's rate: raise it so that the
# 64 MiB take seconds, not half a minute (the default is 2000/500).
TOPO_HOST_ARGS=(--guest-rate=20000/2000)
TOPO_GUEST_ARGS=(--handlers-dir="$HD" --install-dir="$D/installed")
st_up "$V1:81" "$V2:82"
st_chanctl wait --timeout 60 || { st_fail "channels not ready"; exit 1; }
st_install_handlers "$HD" || st_fail "cannot install the handlers"

# json_get JSON-PRODUCING-CMD... -- PYEXPR: evaluates PYEXPR on the JSON
# ('j') that the command prints.
json_get() {
    local expr=${*: -1}
    "${@:1:$#-2}" | "$PY" -c '
import json, sys
j = json.load(sys.stdin)
print(eval(sys.argv[1]))' "$expr"
}

host_transfers() {
    st_chanctl host transfer/list
}

guest_status() {
    st_guest "$1" guest guest/status
}

# --- host -> guest: 256 MiB ---------------------------------------------
SIZE=$((256 << 20))
head -c "$SIZE" /dev/urandom >"$D/host/big"
B=$(sha256sum <"$D/host/big" | cut -d' ' -f1)
st_check "chand-host stores the 256 MiB object" \
    st_chanctl host object/store "$D/host/big"
st_check "the Chan DB allows it" ovsdb-client transact "$(topo_db)" \
    "[\"Chan\",{\"op\":\"insert\",\"table\":\"Allowlist\",
      \"row\":{\"digest\":\"$B\",\"name\":\"big\"}}]"
topo_vm_loss_typed "$V1" 20 || { st_fail "cannot add the loss rules"; exit 1; }
st_check "install it in vm1 (its content goes host -> guest)" \
    st_chanctl push --vm "$V1" "install/$B" \
    "{\"digest\":\"$B\",\"path\":\"$D/installed/big\",\"size\":$SIZE}"

N=$(( (SIZE + 1419) / 1420 ))
half_there() {
    local have
    have=$(json_get guest_status "$V1" -- \
           "([p['have'] for p in j['transfer']['pulls']] or [0])[0]")
    [ "$have" -ge $((N / 2)) ]
}
st_check "vm1 pulls it under 20% loss, half of it arrives" \
    st_wait 120 half_there
topo_guest_kill "$V1"
st_log "chand-guest of vm1 killed halfway"
topo_guest_start "$V1" 81 || st_fail "chand-guest of vm1 does not restart"

in_guest_store() {
    [ -f "$TOPO_RUN/$V1/content/$B" ]
}
st_check "the transfer completes after the restart" st_wait 180 in_guest_store
st_check "and the content matches its digest" \
    test "$(sha256sum <"$TOPO_RUN/$V1/content/$B" | cut -d' ' -f1)" = "$B"
resumed=$(sed -n 's/.*transfer [0-9a-f]*: resuming with \([0-9]*\) of.*/\1/p' \
          "$TOPO_RUN/$V1/chand-guest.log" | tail -1)
st_log "the restarted chand-guest resumed with ${resumed:-no} chunks of $N"
st_check "it resumed from its last checkpoint, not from zero" \
    test "${resumed:-0}" -ge $((N / 3))
sent=$(json_get host_transfers -- \
       "[s['chunks_sent'] for s in j['lanes']['$V1']['served'] if s['digest'] == '$B'][0]")
again=$(json_get host_transfers -- \
        "[s['sent_again'] for s in j['lanes']['$V1']['served'] if s['digest'] == '$B'][0]")
dropped=$(topo_vm_loss_drops "$V1" in-chunk)
waste=$((again - dropped))
st_log "h->g: $N chunks; chand-host sent $sent, $again of them again;" \
       "the loss rule dropped $dropped CHUNK frames; sent twice for" \
       "other reasons: $waste ($((waste * 1000 / N)) per mille)"
st_check "fewer than 10% of the chunks were sent twice but for the loss" \
    test "$waste" -lt $((N / 10))
topo_vm_loss_off "$V1"

# --- guest -> host: 64 MiB ----------------------------------------------
SIZE=$((64 << 20))
head -c "$SIZE" /dev/urandom >"$D/2/g"
G=$(sha256sum <"$D/2/g" | cut -d' ' -f1)
st_check "vm2 registers the 64 MiB object" st_guest "$V2" object-add "$D/2/g"
has_object() {
    st_chanctl object-show "$G" >/dev/null
}
st_check "the Chan DB maps it" st_wait 30 has_object
topo_vm_loss_typed "$V2" 20 || { st_fail "cannot add the loss rules"; exit 1; }
st_check "chand-host fetches it from vm2" \
    st_chanctl host object/fetch "$V2" "$G"
N=$(( (SIZE + 1419) / 1420 ))
host_half() {
    local have
    have=$(json_get host_transfers -- \
           "([p['have'] for p in j['lanes']['$V2']['pulls']] or [0])[0]")
    [ "$have" -ge $((N / 2)) ]
}
st_check "half of it arrives under 20% loss" st_wait 120 host_half
topo_guest_kill "$V2"
st_log "chand-guest of vm2 killed halfway"
topo_guest_start "$V2" 82 || st_fail "chand-guest of vm2 does not restart"
in_host_store() {
    [ -f "$TOPO_RUN/content/$G" ]
}
st_check "the fetch completes after the restart" st_wait 180 in_host_store
st_check "and the content matches its digest" \
    test "$(sha256sum <"$TOPO_RUN/content/$G" | cut -d' ' -f1)" = "$G"
received=$(json_get host_transfers -- \
           "j['lanes']['$V2']['counters']['chunks_received']")
dups=$(json_get host_transfers -- \
       "j['lanes']['$V2']['counters']['chunks_duplicate']")
resent=$(json_get guest_status "$V2" -- \
         "[s['chunks_sent'] for s in j['transfer']['served'] if s['digest'] == '$G'][0]")
dropped=$(topo_vm_loss_drops "$V2" out-chunk)
st_log "g->h: $N chunks; chand-host stored $received, received $dups twice;" \
       "the restarted chand-guest sent $resent; the loss rule dropped" \
       "$dropped CHUNK frames"
st_check "chand-host stored every chunk once" test "$received" -eq "$N"
st_check "fewer than 10% of the chunks arrived twice" \
    test "$dups" -lt $((N / 10))
st_check "the restarted chand-guest sent only what was missing (< 70%)" \
    test "$resent" -lt $((N * 7 / 10))
topo_vm_loss_off "$V2"

guests_up() {
    st_guest "$V1" guest guest/status >/dev/null &&
        st_guest "$V2" guest guest/status >/dev/null
}
st_check "both chand-guests are up" guests_up
st_exit
