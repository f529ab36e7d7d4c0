#!/usr/bin/env bash
# File transfer (doc/objects.md, "File transfer"): smoke.
. "$(dirname "$0")/lib.sh"
st_require_root
TOPO_HOST_NS=chst-xhv
V1=chst-xvm1 V2=chst-xvm2
st_up "$V1:71" "$V2:72"
st_chanctl wait --timeout 60 || { st_fail "channels not ready"; exit 1; }
D=$OVSI_BASE/files
mkdir -p "$D/1" "$D/2"
head -c $((8 << 20)) /dev/urandom >"$D/1/big"
F=$(sha256sum <"$D/1/big" | cut -d' ' -f1)
st_check "vm1 registers F" st_guest "$V1" object-add "$D/1/big"
have_object() {
    st_chanctl object-show "$F" >/dev/null
}
st_check "the Chan DB has F" st_wait 30 have_object
st_check "fetch F from vm1" st_chanctl host object/fetch "$V1" "$F"
fetched() {
    [ -f "$TOPO_RUN/content/$F" ]
}
st_check "F arrives in the content store" st_wait 60 fetched
st_chanctl host transfer/list
st_check "and matches its digest" test "$(sha256sum <"$TOPO_RUN/content/$F" | cut -d' ' -f1)" = "$F"
cp "$D/1/big" "$D/2/big"
st_check "vm2 registers F too" st_guest "$V2" object-add "$D/2/big"
rm -f "$D/2/big"
at=$(date +%s%3N)
st_check "vm2 asks for F back" st_guest "$V2" publish "restore/$F" \
    "{\"digest\":\"$F\",\"path\":\"$D/2/big\",\"at\":$at}"
in_guest_store() {
    [ -f "$TOPO_RUN/$V2/content/$F" ]
}
t0=$(date +%s%N)
st_check "F arrives in vm2's content store" st_wait 60 in_guest_store
t1=$(date +%s%N)
st_log "h->g: $(( (8 << 20) * 1000 / ( (t1 - t0) / 1000000 + 1) / 1000 )) kB/s"
st_guest "$V2" guest guest/status | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["transfer"], indent=1))'
st_exit
