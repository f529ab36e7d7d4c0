#!/usr/bin/env bash
# The channel MTU (doc/PROTOCOL.md §4.1): with 9000 on the vNIC veth pair
# and on the guest's chand0, both daemons detect it, advertise it and send
# jumbo frames: a 100 KB value takes a dozen DATA frames instead of 71, and
# a published record goes up in jumbo frames too; both arrive whole.  A
# guest left at 1500 behind a 9000 vNIC (the mixed case) gets 1500-sized
# frames only, and its values arrive whole as well.

. "$(dirname "$0")/lib.sh"
st_require_root
here=$(cd "$(dirname "$0")" && pwd)
PY=$(python3 -c 'import sys; print(sys.executable)')
JG="$PY $here/fault-tool.py json-get"
V1=chst-mtu1 V2=chst-mtu2
SIZE=100000

host_get() {            # VM PATH...: members of chanctl channel-show VM.
    local vm=$1
    shift
    st_chanctl channel-show "$vm" 2>/dev/null | $JG "$@"
}

guest_get() {           # VM PATH...: members of VM's guest-status.
    local vm=$1
    shift
    st_guest "$vm" guest-status --json 2>/dev/null | $JG "$@"
}

mtu_is() {              # VM HOST_EFFECTIVE GUEST_EFFECTIVE
    [ "$(host_get "$1" mtu.effective)" = "$2" ] &&
        [ "$(guest_get "$1" mtu.effective)" = "$3" ]
}

value_len() {           # VM KEY: length of KEY's value in VM's datastore.
    sqlite3 "$TOPO_RUN/$1/guest.db" \
        "select length(value) from records where key = '$2'"
}

value_ok() {            # VM KEY N: KEY holds a string of N 'x's.
    [ "$(value_len "$1" "$2")" = $(($3 + 2)) ] &&
        [ "$(sqlite3 "$TOPO_RUN/$1/guest.db" \
             "select count(*) from records where key = '$2'
              and value = '\"' || replace(hex(zeroblob($3)), '00', 'x') || '\"'")" = 1 ]
}

push_big() {            # VM KEY N
    "$here/push-big.py" "$(topo_db | sed 's/^unix://')" "$1" "$2" "$3"
}

bad_option() {          # DAEMON OPTION VALUE: refused with exit 2, named.
    local out rc=0
    out=$("$ST_BUILD/$1/$1" "--$2=$3" 2>&1) || rc=$?
    [ "$rc" = 2 ] && printf '%s' "$out" | grep -F -- "--$2" | grep -qF "'$3'"
}

# --- bad values of the frame-size options are refused at start -------------
for v in 575 65536 jumbo 1500x ''; do
    st_check "chand-host refuses --mtu='$v'" bad_option chand-host mtu "$v"
    st_check "chand-guest refuses --mtu='$v'" bad_option chand-guest mtu "$v"
done
for v in -1 1x 2G abc ''; do
    st_check "chand-host refuses --window-bytes='$v'" \
        bad_option chand-host window-bytes "$v"
done
for v in 0 65537 abc; do
    st_check "chand-host refuses --window='$v'" bad_option chand-host window "$v"
done

st_up "$V1:41" "$V2:42"
st_check "both channels ready" st_chanctl wait --timeout 60

# --- the default: 1500 everywhere ----------------------------------------
st_check "$V1 starts at 1500 both ways" st_wait 20 mtu_is "$V1" 1500 1500
st_check "channel-show reports the host's own MTU" \
    test "$(host_get "$V1" mtu.local)" = 1500

# --- 9000 on the vNIC pair and chand0 of VM 1; only the vNIC of VM 2 -----
for vm in "$V1" "$V2"; do
    ovsi_exec "$TOPO_HOST" ip link set "$vm-vnic" mtu 9000 ||
        st_fail "setting $vm-vnic's MTU"
done
ip -n "$V1" link set eth0 mtu 9000 || st_fail "setting $V1's eth0 MTU"
ovsi_vsctl "$V1" set Interface chand0 mtu_request=9000 ||
    st_fail "setting $V1's chand0 MTU"

st_check "$V1: host and guest detect 9000 and send with it" \
    st_wait 30 mtu_is "$V1" 9000 9000
st_log "  $V1: host $(host_get "$V1" mtu.local mtu.guest mtu.effective | tr '\n' ' ')"
st_log "  $V1: guest $(guest_get "$V1" mtu.local mtu.host mtu.effective | tr '\n' ' ')"
st_check "$V2: the host has 9000, the guest 1500: 1500 both ways" \
    st_wait 30 mtu_is "$V2" 1500 1500
st_check "$V2: the host's own MTU is its vNIC's 9000" \
    test "$(host_get "$V2" mtu.local)" = 9000
st_check "$V2: the host hears the guest's 1500" \
    test "$(host_get "$V2" mtu.guest)" = 1500

# --- downstream: a 100 KB value --------------------------------------------
st_chanctl wait --timeout 30 >/dev/null
before=$(host_get "$V1" counters.frames_sent)
push_big "$V1" big $SIZE || st_fail "pushing $SIZE bytes to $V1"
st_check "$V1: the $SIZE-byte value arrives whole" \
    st_wait 60 value_ok "$V1" big $SIZE
st_check "$V1: channel in sync" st_chanctl wait --vm "$V1" --timeout 30
after=$(host_get "$V1" counters.frames_sent)
max=$(host_get "$V1" counters.max_frame_sent)
st_log "  $V1: $((after - before)) DATA frames for $SIZE bytes (1500 would" \
       "need $(( (SIZE + 1419) / 1420 ))), largest frame $max bytes"
st_check "$V1: jumbo DATA frames (largest > 1472 bytes)" \
    test "$max" -gt 1472 -a "$max" -le 8972
st_check "$V1: fewer DATA frames than 1500 would need" \
    test $((after - before)) -lt $(( (SIZE + 1419) / 1420 ))
st_check "$V1: the guest received jumbo datagrams" \
    test "$(guest_get "$V1" counters.rx_max_frame)" -gt 1472

st_chanctl wait --timeout 30 >/dev/null
before=$(host_get "$V2" counters.frames_sent)
push_big "$V2" big $SIZE || st_fail "pushing $SIZE bytes to $V2"
st_check "$V2 (mixed): the $SIZE-byte value arrives whole" \
    st_wait 60 value_ok "$V2" big $SIZE
after=$(host_get "$V2" counters.frames_sent)
max=$(host_get "$V2" counters.max_frame_sent)
st_log "  $V2: $((after - before)) DATA frames for $SIZE bytes, largest" \
       "frame $max bytes"
st_check "$V2 (mixed): no frame above 1500" test "$max" -le 1472
st_check "$V2 (mixed): the guest received nothing above 1500" \
    test "$(guest_get "$V2" counters.rx_max_frame)" -le 1472

# --- upstream: a 20 KB published record -----------------------------------
up_value=\"$(head -c 20000 /dev/zero | tr '\0' y)\"
published() {           # VM: Guest_Record up/big holds the value.
    "$PY" "$here/upstream-tool.py" guest-records "$(topo_db)" "$1" up/ |
        "$PY" -c 'import json, sys
r = json.load(sys.stdin).get("up/big")
sys.exit(0 if r == "y" * 20000 else 1)'
}
for vm in "$V1" "$V2"; do
    st_guest "$vm" publish up/big "$up_value" >/dev/null ||
        st_fail "$vm: publish"
    st_check "$vm: the published 20 KB record reaches the Chan DB whole" \
        st_wait 60 published "$vm"
done
st_check "$V1: upstream frames are jumbo" \
    test "$(guest_get "$V1" publisher.sender.max_frame)" -gt 1472
st_check "$V2 (mixed): upstream frames are not" \
    test "$(guest_get "$V2" publisher.sender.max_frame)" -le 1472

# --- back to 1500 on VM 1's guest: the host follows -----------------------
ip -n "$V1" link set eth0 mtu 1500 || st_fail "resetting $V1's eth0 MTU"
st_check "$V1: the guest's MTU drops to 1500, the host follows" \
    st_wait 30 mtu_is "$V1" 1500 1500
push_big "$V1" big2 $SIZE || st_fail "pushing $SIZE bytes to $V1 again"
st_check "$V1: at 1500 again, a value still arrives whole" \
    st_wait 60 value_ok "$V1" big2 $SIZE

st_exit
