#!/usr/bin/env bash
# Requests and responses on the channel (doc/adapters.md): chanctl call on
# the host against a real chand-guest.
#
# ping, info, time, os-info and network-interfaces answer; a file is
# written, read back and closed through handles; exec is refused while
# chand-guest has no --exec-allow, and after a restart with one it runs a
# listed executable (output and exit code) and refuses an unlisted one; an
# unknown command and a request that is not an object get their error
# classes; an exec past its timeout gets Timeout; a request answered once
# is not run again across a restart of chand-guest and of chand-host (an
# exec that appends to a file leaves one line), one cut short by a stop
# is answered Interrupted and not run again; deleting a request withdraws
# its response; chanctl call leaves no request behind.  chand-guest keeps
# running throughout.

. "$(dirname "$0")/lib.sh"
st_require_root
here=$(cd "$(dirname "$0")" && pwd)
PY=$(python3 -c 'import sys; print(sys.executable)')
UT=$here/upstream-tool.py
TOPO_HOST_NS=chst-chv
VM=chst-cvm1
ID=71

# Records of at most 8 KiB: a larger request cannot be delivered.
TOPO_HOST_ARGS=(--max-record=8192)
st_up "$VM:$ID"
st_chanctl wait --timeout 60 || { st_fail "channel not ready"; exit 1; }

D=$OVSI_BASE/call
mkdir -p "$D"
ALLOW=$D/exec-allow
printf '# allowed\n/bin/sh\n' >"$ALLOW"

call() {
    st_chanctl call --vm "$VM" "$@"
}

# json_ok PYEXPR: stdin parsed as 'r' satisfies PYEXPR.
json_ok() {
    "$PY" -c '
import base64, json, sys
r = json.load(sys.stdin)
sys.exit(0 if eval(sys.argv[1]) else 1)' "$1"
}

# response_is KEY PYEXPR: the VM's Guest_Record result/call/KEY (as 'r',
# parsed; None if absent) satisfies PYEXPR.
response_is() {
    "$PY" "$UT" guest-records "$(topo_db)" "$VM" result/call/ | "$PY" -c '
import json, sys
r = json.load(sys.stdin).get("result/call/" + sys.argv[1])
sys.exit(0 if eval(sys.argv[2]) else 1)' "$1" "$2"
}

# fails_with CLASS CMD...: CMD exits 1 and says CLASS on stderr.
fails_with() {
    local class=$1 status=0
    shift
    "$@" >"$D/out" 2>"$D/err" || status=$?
    [ "$status" = 1 ] && grep -q ": $class: " "$D/err" ||
        { st_log "exit $status: $(cat "$D/err")"; return 1; }
}

# --- the in-loop commands -------------------------------------------------
st_check "ping answers {}" test "$(call ping)" = "{}"
st_check "info: version and commands, exec disabled" eval 'call info |
    json_ok "r[\"version\"] and {\"name\": \"exec\", \"enabled\": False} in r[\"supported_commands\"] and len(r[\"supported_commands\"]) >= 10"'
now_ns=$(date +%s%N)
st_check "time: within 10 s of the host's" eval 'call time |
    json_ok "abs(r - $now_ns) < 10 * 10**9"'
st_check "os-info: the kernel release" eval 'call os-info |
    json_ok "r[\"kernel-release\"] == \"$(uname -r)\" and r[\"machine\"] == \"$(uname -m)\""'
st_check "network-interfaces: the guest endpoint and lo" eval 'call network-interfaces |
    json_ok "any(a[\"ip-address\"].startswith(\"169.254.\") and i.get(\"hardware-address\", \"\").startswith(\"0a:c4:\") for i in r for a in i[\"ip-addresses\"]) and any(a[\"ip-address\"] == \"127.0.0.1\" and a[\"prefix\"] == 8 for i in r for a in i[\"ip-addresses\"])"'

# --- files ---------------------------------------------------------------
F=$D/file
handle() {
    "$PY" -c 'import json, sys; print(json.load(sys.stdin)["handle"])'
}
h=$(call file-open "{\"path\":\"$F\",\"mode\":\"w\"}" | handle)
st_check "file-open w gives a handle ($h)" test -n "$h"
b64=$(printf 'hello through the channel\n' | base64)
st_check "file-write" eval 'call file-write "{\"handle\":$h,\"buf-b64\":\"$b64\"}" |
    json_ok "r[\"count\"] == 26"'
st_check "file-close" call file-close "{\"handle\":$h}"
st_check "the file holds what was written" \
    test "$(cat "$F")" = "hello through the channel"
h=$(call file-open "{\"path\":\"$F\"}" | handle)
st_check "file-read reads it back" eval 'call file-read "{\"handle\":$h,\"count\":100}" |
    json_ok "base64.b64decode(r[\"buf-b64\"]) == b\"hello through the channel\\n\" and r[\"eof\"] and r[\"count\"] == 26"'
st_check "file-close" call file-close "{\"handle\":$h}"
st_check "a closed handle is refused" fails_with InvalidParameter \
    call file-read "{\"handle\":$h}"

# --- errors --------------------------------------------------------------
st_check "an unknown command: CommandNotFound" fails_with CommandNotFound \
    call frobnicate
st_check "exec without --exec-allow: PermissionDenied" \
    fails_with PermissionDenied call exec '{"path":"/bin/sh","arg":["-c","true"]}'
st_check "a request that is not an object" \
    st_chanctl push --vm "$VM" call/bad '[1]'
st_check "gets InvalidRequest" st_wait 30 response_is bad \
    "r and r['error']['class'] == 'InvalidRequest'"
st_check "bad JSON args are refused by chanctl" test "$(call ping '[1' \
    >/dev/null 2>&1; echo $?)" = 2

# --- exec ----------------------------------------------------------------
topo_guest_stop "$VM"
TOPO_GUEST_ARGS=(--exec-allow="$ALLOW")
st_check "chand-guest restarts with --exec-allow" topo_guest_start "$VM" "$ID"
st_check "info: exec enabled" eval 'call --timeout 30 info |
    json_ok "{\"name\": \"exec\", \"enabled\": True} in r[\"supported_commands\"]"'
st_check "exec of a listed executable: output and exit code" eval 'call exec \
    "{\"path\":\"/bin/sh\",\"arg\":[\"-c\",\"echo out; echo err >&2; exit 7\"]}" |
    json_ok "r[\"exitcode\"] == 7 and base64.b64decode(r[\"out-data\"]) == b\"out\\n\" and base64.b64decode(r[\"err-data\"]) == b\"err\\n\""'
st_check "exec of an unlisted one: PermissionDenied" \
    fails_with PermissionDenied call exec '{"path":"/bin/ls"}'
started=$(date +%s)
st_check "exec past its timeout: Timeout" fails_with Timeout \
    call --timeout 2 exec '{"path":"/bin/sh","arg":["-c","sleep 30"]}'
took=$(( $(date +%s) - started ))
st_check "answered within its time and the grace (${took}s)" test "$took" -le 6

# --- exactly once --------------------------------------------------------
ONCE=$D/once
st_check "a request that appends a line" st_chanctl push --vm "$VM" call/once \
    "{\"command\":\"exec\",\"args\":{\"path\":\"/bin/sh\",\"arg\":[\"-c\",\"echo x >> $ONCE\"]}}"
st_check "is answered" st_wait 30 response_is once \
    "r and r['result']['exitcode'] == 0"
at=$("$PY" "$UT" guest-records "$(topo_db)" "$VM" result/call/ |
     "$PY" -c 'import json, sys; print(json.load(sys.stdin)["result/call/once"]["at"])')
topo_guest_stop "$VM"
st_check "chand-guest restarts" topo_guest_start "$VM" "$ID"
topo_host_stop
st_check "chand-host restarts (a new session: a snapshot)" topo_host_start
st_check "the channel is in sync again" st_chanctl wait --timeout 60
sleep 2
st_check "the file has one line" test "$(wc -l <"$ONCE")" = 1
st_check "the same response, not a new one" st_wait 30 response_is once \
    "r and r['at'] == $at"

CUT=$D/cut
st_check "a request that runs 3 s" st_chanctl push --vm "$VM" call/cut \
    "{\"command\":\"exec\",\"args\":{\"path\":\"/bin/sh\",\"arg\":[\"-c\",\"sleep 3; echo x >> $CUT\"]}}"
running() {
    st_guest "$VM" guest-status --json |
        json_ok 'len(r["calls"]["running"]) == 1'
}
st_check "it runs" st_wait 30 running
topo_guest_kill "$VM"
st_check "chand-guest restarts after kill -9" topo_guest_start "$VM" "$ID"
st_check "it is answered Interrupted" st_wait 30 response_is cut \
    "r and r['error']['class'] == 'Interrupted'"
sleep 4
st_check "and was not run again (nor to its end)" test ! -e "$CUT"

# --- limits --------------------------------------------------------------
big=$(head -c 12000 /dev/zero | base64 -w0)
undeliverable() {
    ! call file-write "{\"handle\":1,\"buf-b64\":\"$big\"}" \
        >/dev/null 2>"$D/err" &&
        grep -q "cannot deliver the request: value of .* exceeds the limit of 8192 bytes" \
            "$D/err" || { cat "$D/err" >&2; return 1; }
}
st_check "a request over chand-host's --max-record: a clear error at once" \
    undeliverable
db_tx() {
    ovsdb-client transact "$(topo_db)" "[\"Chan\",$1]" >/dev/null
}
db_tx '{"op":"insert","table":"Guest_Limits","row":{"vm":"'"$VM"'",
        "limits":["map",[["max_value_bytes",1024]]]}}' ||
    st_fail "insert Guest_Limits"
head -c 4000 /dev/zero >"$D/big"
sleep 3                 # The guest learns its limits at its next SYNC.
h=$(call file-open "{\"path\":\"$D/big\"}" | handle)
st_check "a response over the VM's publication limits: ResultTooLarge" \
    fails_with ResultTooLarge call file-read "{\"handle\":$h,\"count\":4000}"
st_check "seek back to where it was" eval 'call file-seek "{\"handle\":$h,\"offset\":-4000,\"whence\":\"cur\"}" |
    json_ok "r[\"position\"] == 0"'
st_check "a smaller read fits" eval 'call file-read "{\"handle\":$h,\"count\":100}" |
    json_ok "r[\"count\"] == 100"'
db_tx '{"op":"delete","table":"Guest_Limits","where":[]}'

# --- deletion ------------------------------------------------------------
st_check "deleting a request" st_chanctl delete --vm "$VM" call/once
st_check "withdraws its response" st_wait 30 response_is once "r is None"
no_leftovers() {
    st_chanctl delete --vm "$VM" call/bad >/dev/null 2>&1
    st_chanctl delete --vm "$VM" call/cut >/dev/null 2>&1
    "$PY" "$UT" guest-records "$(topo_db)" "$VM" result/call/ |
        json_ok 'r == {}'
}
st_check "chanctl call left no request or response behind" st_wait 30 \
    no_leftovers

counters_ok() {
    st_guest "$VM" guest-status --json |
        json_ok 'r["calls"]["counters"]["interrupted"] == 1 and r["calls"]["counters"]["too_large"] == 1'
}
st_check "chand-guest answers, with its counters" counters_ok
st_check "chand-guest is up" kill -0 "$(cat "$TOPO_RUN/$VM/chand-guest.pid")"

st_exit
