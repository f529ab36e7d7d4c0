#!/usr/bin/env bash
# A large file read through the transfer lane (doc/adapters.md, file-export;
# doc/objects.md, "File transfer"): chanctl call on the host against a real
# chand-guest and chand-host.
#
# A 40 MiB random file in the VM is opened and exported: the result's digest
# is its sha256; chanctl object-fetch --size --wait fetches it although no
# Object row names it, and object/fetch-status then reports it done with a
# path whose content has that sha256.  Another export of the handle (its
# first 20 MiB) replaces it; fetched without --wait, object/fetch-status
# reports it fetching, then done.  An export at the end of the file is
# empty with eof.  An export whose handle was
# closed, and a digest the VM never exported, fail to fetch with the
# guest's reason, and object/fetch-status reports them failed.  Bad SIZE
# and DIGEST arguments get clear errors; both daemons keep running.

. "$(dirname "$0")/lib.sh"
st_require_root
PY=$(python3 -c 'import sys; print(sys.executable)')
TOPO_HOST_NS=chst-xhv
VM=chst-xvm1
ID=73

# Fetches from a VM ask for 80% of its meter's rate: raise it so that the
# 40 MiB take seconds (the default is 2000/500).
TOPO_HOST_ARGS=(--guest-rate=20000/2000)
st_up "$VM:$ID"
st_chanctl wait --timeout 60 || { st_fail "channel not ready"; exit 1; }

D=$OVSI_BASE/export
mkdir -p "$D"

call() {
    st_chanctl call --vm "$VM" "$@"
}

# json_get PYEXPR: prints PYEXPR of stdin parsed as 'r'.
json_get() {
    "$PY" -c '
import json, sys
r = json.load(sys.stdin)
print(eval(sys.argv[1]))' "$1"
}

# json_ok PYEXPR: stdin parsed as 'r' satisfies PYEXPR.
json_ok() {
    "$PY" -c '
import json, sys
r = json.load(sys.stdin)
sys.exit(0 if eval(sys.argv[1]) else 1)' "$1"
}

# fails_saying TEXT CMD...: CMD exits 1 and says TEXT on stderr.
fails_saying() {
    local text=$1 status=0
    shift
    "$@" >"$D/out" 2>"$D/err" || status=$?
    [ "$status" = 1 ] && grep -qF -- "$text" "$D/err" ||
        { st_log "exit $status: $(cat "$D/err")"; return 1; }
}

fetch_status() {
    st_chanctl host object/fetch-status "$1"
}

# --- a 40 MiB export, fetched by digest and size -------------------------
SIZE=$((40 << 20))
head -c "$SIZE" /dev/urandom >"$D/big"
SUM=$(sha256sum <"$D/big" | cut -d' ' -f1)
h=$(call file-open "{\"path\":\"$D/big\"}" | json_get 'r["handle"]')
st_check "file-open gives a handle ($h)" test -n "$h"
call --timeout 60 file-export "{\"handle\":$h}" >"$D/export1" ||
    st_fail "file-export: $(cat "$D/export1")"
st_log "file-export: $(cat "$D/export1")"
st_check "file-export: the whole file, eof" json_ok \
    "r[\"count\"] == $SIZE and r[\"size\"] == $SIZE and r[\"eof\"]" \
    <"$D/export1"
G=$(json_get 'r["digest"]' <"$D/export1")
st_check "its digest is the file's sha256" test "$G" = "$SUM"
st_check "object/fetch-status before any fetch: an error" \
    fails_saying "no fetch of $G and the content store does not hold it" \
    fetch_status "$G"

started=$(date +%s)
st_check "chanctl object-fetch --size --wait fetches it" \
    st_chanctl object-fetch --vm "$VM" "$G" --size "$SIZE" --wait \
    --timeout 120
st_log "fetched in $(( $(date +%s) - started )) s"
fetch_status "$G" >"$D/status1" || st_fail "object/fetch-status failed"
st_log "object/fetch-status: $(cat "$D/status1")"
st_check "object/fetch-status: done, with its size" json_ok \
    "r[\"state\"] == \"done\" and r[\"digest\"] == \"$G\" and r[\"size\"] == $SIZE" \
    <"$D/status1"
P=$(json_get 'r["path"]' <"$D/status1")
st_check "its path ($P) holds the same content" \
    test "$(sha256sum <"$P" | cut -d' ' -f1)" = "$SUM"

# --- while a fetch runs ----------------------------------------------------
HALF=$((20 << 20))
call file-seek "{\"handle\":$h,\"offset\":0,\"whence\":\"set\"}" >/dev/null ||
    st_fail "file-seek"
H2=$(call file-export "{\"handle\":$h,\"count\":$HALF}" | json_get 'r["digest"]')
st_check "an export of the first 20 MiB replaces it" \
    test "$H2" = "$(head -c "$HALF" "$D/big" | sha256sum | cut -d' ' -f1)"
st_check "object-fetch without --wait" \
    st_chanctl object-fetch --vm "$VM" "$H2" --size "$HALF"
fetch_status "$H2" >"$D/status2"
st_log "object/fetch-status at once: $(cat "$D/status2")"
st_check "object/fetch-status: fetching, from the VM" json_ok \
    "r[\"state\"] == \"fetching\" and r[\"source\"] in (\"$VM\", None) and r[\"size\"] == $HALF" \
    <"$D/status2"
fetched() {
    fetch_status "$1" | json_ok 'r["state"] == "done"'
}
st_check "then done" st_wait 60 fetched "$H2"

# --- at the end of the file: the empty export ----------------------------
call file-seek "{\"handle\":$h,\"offset\":0,\"whence\":\"end\"}" >/dev/null ||
    st_fail "file-seek"
E=$(sha256sum </dev/null | cut -d' ' -f1)
st_check "a second export at the end: size 0, eof, the empty digest" \
    eval 'call file-export "{\"handle\":$h}" | json_ok \
    "r[\"count\"] == 0 and r[\"size\"] == 0 and r[\"eof\"] and r[\"digest\"] == \"$E\""'
st_check "file-export with count 0: InvalidParameter" \
    fails_saying "InvalidParameter" call file-export "{\"handle\":$h,\"count\":0}"
st_check "file-close" call file-close "{\"handle\":$h}"

# --- an export whose handle was closed -----------------------------------
head -c 100000 /dev/urandom >"$D/small"
h=$(call file-open "{\"path\":\"$D/small\"}" | json_get 'r["handle"]')
S=$(call file-export "{\"handle\":$h,\"count\":100000}" |
    json_get 'r["digest"]')
st_check "the small file is exported" \
    test "$S" = "$(sha256sum <"$D/small" | cut -d' ' -f1)"
exports_are() {
    st_guest "$VM" guest-status --json | json_ok "r[\"calls\"][\"live_exports\"] == $1"
}
st_check "chand-guest counts one export" exports_are 1
st_check "file-close ends it" call file-close "{\"handle\":$h}"
st_check "chand-guest counts none" exports_are 0
started=$(date +%s)
st_check "fetching it fails: the VM no longer serves it" \
    fails_saying "this VM holds no object ${S:0:12} of 100000 bytes" \
    st_chanctl object-fetch --vm "$VM" "$S" --size 100000 --wait --timeout 60
st_log "object-fetch: $(cat "$D/err")"
st_check "object/fetch-status: failed, with the reason" eval 'fetch_status "$S" |
    json_ok "r[\"state\"] == \"failed\" and \"holds no object\" in r[\"error\"]"'

# --- a digest the VM never exported --------------------------------------
N=$(printf 'never exported' | sha256sum | cut -d' ' -f1)
st_check "fetching a digest never exported fails with the guest's reason" \
    fails_saying "this VM holds no object ${N:0:12} of 4096 bytes" \
    st_chanctl object-fetch --vm "$VM" "$N" --size 4096 --wait --timeout 60
st_log "object-fetch: $(cat "$D/err")"
took=$(( $(date +%s) - started ))
st_check "both failures came within 30 s (${took} s)" test "$took" -le 30

# --- bad arguments ---------------------------------------------------------
st_check "without --size: no Object row" \
    fails_saying "no Object row for ${N:0:12}" \
    st_chanctl object-fetch --vm "$VM" "$N"
st_check "SIZE 0: refused" fails_saying "is not from 1 to the transfer limit" \
    st_chanctl host object/fetch "$VM" "$N" 0
st_check "SIZE not a number: refused" fails_saying "is not a decimal number" \
    st_chanctl host object/fetch "$VM" "$N" 12x
st_check "SIZE over --max-transfer: refused" \
    fails_saying "is not from 1 to the transfer limit" \
    st_chanctl host object/fetch "$VM" "$N" $((2 << 30))
st_check "object/fetch-status of a non-digest: refused" \
    fails_saying "is not a sha256 digest" fetch_status nothex
usage_error() {
    local status=0
    st_chanctl object-fetch --vm "$VM" "$N" --size "$1" >/dev/null 2>&1 ||
        status=$?
    test "$status" = 2
}
st_check "chanctl --size 0: usage error" usage_error 0
st_check "chanctl --size -5: usage error" usage_error -5
st_check "chanctl --size 1k: usage error" usage_error 1k

st_check "chand-guest is up" kill -0 "$(cat "$TOPO_RUN/$VM/chand-guest.pid")"
st_check "chand-host is up" st_chanctl host host/status
st_exit
