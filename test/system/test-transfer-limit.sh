#!/usr/bin/env bash
# The transfer limit (doc/objects.md, "File transfer"): an object of exactly
# the default --max-transfer, 1 GiB, installs host -> guest byte for byte;
# one byte more is refused by chand-guest with the limit as the reason,
# reported in the Chan DB, and nothing is written.
. "$(dirname "$0")/lib.sh"
st_require_root
TOPO_HOST_NS=chst-lhv
V1=chst-lvm1
D=$OVSI_BASE/files
HD=$OVSI_BASE/handlers.d
mkdir -p "$D/host" "$D/installed"
TOPO_GUEST_ARGS=(--handlers-dir="$HD" --install-dir="$D/installed")
st_up "$V1:121"
st_chanctl wait --timeout 60 || { st_fail "channel not ready"; exit 1; }
st_install_handlers "$HD" || st_fail "cannot install the handlers"

SIZE=$((1 << 30))
head -c "$SIZE" /dev/urandom >"$D/host/big"
B=$(st_chanctl object-store "$D/host/big" | cut -d' ' -f1)
st_check "chand-host stores 1 GiB" test -n "$B"
st_check "it goes on the allowlist" st_chanctl allow "$B" big
t0=$SECONDS
st_check "install it in vm1" \
    st_chanctl install --vm "$V1" "$B" "$D/installed/big" --mode 0644
installed() {
    st_result_is "$V1" install "$B" "r is not None and r['status'] == 'ok'"
}
st_check "1 GiB installs" st_wait 600 installed
st_log "1 GiB host -> guest in $((SECONDS - t0)) s"
st_check "byte for byte" cmp "$D/host/big" "$D/installed/big"
rm -f "$D/installed/big" "$D/host/big"

head -c $((SIZE + 1)) /dev/urandom >"$D/host/big2"
B2=$(st_chanctl object-store "$D/host/big2" | cut -d' ' -f1)
rm -f "$D/host/big2"
st_check "one byte more goes on the allowlist" st_chanctl allow "$B2" big2
st_check "install it in vm1" \
    st_chanctl install --vm "$V1" "$B2" "$D/installed/big2"
refused() {
    st_result_is "$V1" install "$B2" \
        "r is not None and r['status'] == 'failed' and 'above the transfer limit of 1073741824 bytes' in r['reason']"
}
st_check "it is refused for the limit, and the Chan DB shows why" \
    st_wait 60 refused
st_check "nothing is written" test ! -e "$D/installed/big2"
st_exit
