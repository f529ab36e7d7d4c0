#!/usr/bin/env bash
# Fault: 20% random loss on a guest's input path (nftables, input hook of
# chand0, UDP port 7433) during a 5,000-operation push in bulk OVSDB
# transactions, with chanctl pushes of a few hot keys at the same time.
# Retransmission must deliver everything, and the guest's seq check must
# keep the duplicates go-back-N resends out of the store.

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fault-lib.sh"
st_require_root
command -v nft >/dev/null || { echo "$ST_NAME: SKIP: no nft" >&2; exit 77; }

fl_up chst-fvm1:21 chst-fvm2:22
for i in 1 2 3; do
    fl_push push "pre$i" "\"before the loss $i\""
done
fl_push push --vm chst-fvm1 pre-own '"vm1 only"'

topo_vm_loss chst-fvm1 20 10 ||
    { st_fail "cannot add the nftables loss rules"; exit 1; }
fl_log "20% loss on chst-fvm1's input path (udp dport 7433 on chand0)," \
    "10% on its output (its ACKs)"

fl_bulk_bg b 7 5000 500 0.1
fl_midpush chst-fvm1 300
# For a while (20 pushes, a second, and until the host timed out twice)
# every ACK is lost: the host times out and sends again
# frames the guest already applied, which it must recognise as duplicates.
ovsi_exec chst-fvm1 nft -f - <<'NFT'
table inet chblock {
    chain out {
        type filter hook output priority -10;
        oifname "chand0" udp sport 7433 counter drop
    }
}
NFT
t_block=$(date +%s.%N)
timeouts0=$(fl_host chst-fvm1 counters.timeouts)
fl_hot 20 hot/
# Until the host has timed out (and sent again) at least twice: a second
# went by without any at times.
timed_out_twice() {
    [ "$(fl_host chst-fvm1 counters.timeouts)" -ge $((${timeouts0:-0} + 2)) ]
}
sleep 1
st_wait 10 timed_out_twice ||
    fl_log "chand-host did not time out twice with every ACK lost"
blocked=$(ovsi_exec chst-fvm1 nft list table inet chblock |
    sed -n 's/.*counter packets \([0-9]*\) .*/\1/p')
ovsi_exec chst-fvm1 nft delete table inet chblock
fl_log "all of chst-fvm1's ACKs dropped for" \
    "$(awk -v a="$t_block" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')" \
    "s: $blocked datagrams"
fl_hot 40 hot/
fl_log "chst-fvm1 during the push: $(fl_channel chst-fvm1)"
fl_bulk_join
fl_push delete pre1
fl_push push pre2 '"updated under loss"'
fl_push delete --vm chst-fvm1 pre-own

fl_converge "converged with the loss still on" 90
drops=$(topo_vm_loss_drops chst-fvm1 in)
drops_out=$(topo_vm_loss_drops chst-fvm1 out)
fl_log "nftables dropped ${drops:-?} datagrams to chst-fvm1 and" \
    "${drops_out:-?} from it; host sent/resent/timeouts:" \
    $(fl_host chst-fvm1 counters.frames_sent counters.frames_resent \
      counters.timeouts counters.fast_retransmits)
st_check "the loss rule dropped datagrams to the guest" \
    test "${drops:-0}" -gt 0
st_check "the loss rule dropped ACKs from the guest" \
    test "${drops_out:-0}" -gt 0
resent=$(fl_host chst-fvm1 counters.frames_resent)
st_check "chand-host retransmitted to chst-fvm1" test "${resent:-0}" -gt 0
fast=$(fl_host chst-fvm1 counters.fast_retransmits)
st_check "some retransmissions came from gap acks ($fast), not the timer" \
    test "${fast:-0}" -gt 0
set -- $(fl_guest_counter chst-fvm1 rx_duplicate drop_gap)
fl_log "chst-fvm1 saw $1 duplicate frames and dropped $2 after gaps"
st_check "duplicates reached chst-fvm1's receiver (and were not applied)" \
    test "$1" -gt 0
topo_vm_loss_off chst-fvm1

fl_final_checks
st_exit
