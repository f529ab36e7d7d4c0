#!/usr/bin/env bash
# chand-qga: a qemu-guest-agent socket per VM (doc/adapters.md §7), driven
# by a qemu-ga client (qga-client.py) and compared with Debian's real
# qemu-ga, which runs beside it on a socket of its own.
#
# The command list (sync, ping, info, OS info, time, interfaces, fsfreeze
# status, file open/write/seek/read/close, exec and exec-status, and the
# usual errors) answers through the channel with the shapes and error
# classes the real qemu-ga gives; the values are the VM's; the 0xFF
# resync drops a partial request as qemu-ga's does; guest-exec of an
# executable not on the VM's allowlist is refused; malformed, oversized
# and non-object requests get errors and the connection goes on; sockets
# named by libvirt UUID come and go with the VM's id; a VM without a
# channel has no socket.  A 64 MiB guest-file-read (over qemu-ga's 48 MiB
# cap) goes through the transfer lane; one whose chand-host control socket
# never answers fails after 10 s while other requests are answered; and a
# 32 MiB one interrupted by kill -9 of chand-guest ends with an error or the
# whole file, never a hang.  chand-qga keeps running.

. "$(dirname "$0")/lib.sh"
st_require_root
here=$(cd "$(dirname "$0")" && pwd)
PY=$(python3 -c 'import sys; print(sys.executable)')
QC=$here/qga-client.py
VM=chst-qvm1
ID=73
command -v qemu-ga >/dev/null ||
    { echo "test-qga: missing qemu-ga (Debian's qemu-guest-agent)" >&2; exit 1; }

D=/tmp/chst.$$.qga
mkdir -p "$D"
ALLOW=$D/exec-allow
printf '/bin/sh\n' >"$ALLOW"
TOPO_GUEST_ARGS=(--exec-allow="$ALLOW")
# Fetches from a VM are paced to 80% of its meter: a faster one keeps the
# large reads short.
TOPO_HOST_ARGS=(--guest-rate=20000/5000)
st_up "$VM:$ID"
st_chanctl wait --timeout 60 || { st_fail "channel not ready"; exit 1; }

# chand-qga: topo_qga_start / topo_qga_stop (its log is among those
# st_cleanup shows when a check failed).
QGA_CTL=$(topo_qga_ctl)
real_stop() {
    [ -f "$D/qemu-ga.pid" ] && kill "$(cat "$D/qemu-ga.pid")" 2>/dev/null
    rm -f "$D/qemu-ga.pid"
}
cleanup() {
    topo_qga_stop
    real_stop
    rm -rf "$D"
    st_cleanup
}
trap cleanup EXIT

qstats() {
    "$PY" - "$QGA_CTL" <<'EOF'
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(30)
s.connect(sys.argv[1])
s.sendall(json.dumps({"method": "qga/stats", "params": [], "id": 1}).encode())
buf = b""
while True:
    buf += s.recv(65536)
    try:
        print(json.loads(json.loads(buf)["result"]))
        break
    except ValueError:
        continue
EOF
}

# Bad options: refused with a clear error, nothing started.
bad_option() {
    local status=0
    "$ST_BUILD/chand-qga/chand-qga" "$@" --ctl="$D/bad.ctl" \
        --socket-dir="$D/bad" >"$D/bad.out" 2>&1 || status=$?
    [ "$status" != 0 ] && grep -q -e "${1%%=*}" "$D/bad.out" &&
        [ ! -e "$D/bad.ctl" ] || { cat "$D/bad.out" >&2; return 1; }
}
for opt in --call-timeout=0 --exec-timeout=abc --file-timeout=-5 \
           --max-request=0 --max-file-read=2G --max-file-write=x; do
    st_check "chand-qga refuses $opt" bad_option "$opt"
done
st_check "chand-qga refuses --socket-name=bogus" bad_option --socket-name=bogus

SOCK=$(topo_qga_sock "$VM")
st_check "chand-qga starts" topo_qga_start --max-request=1M
st_check "the VM's socket appears" st_wait 30 test -S "$SOCK"
st_check "no socket for a VM without a channel" \
    test ! -e "$(topo_qga_sock chst-nosuchvm)"

# --- the real qemu-ga beside it ------------------------------------------
mkdir -p "$D/qga-state"
qemu-ga -m unix-listen -p "$D/real.sock" -t "$D/qga-state" \
    -f "$D/qemu-ga.pid" -d 2>"$D/qemu-ga.err" ||
    st_fail "qemu-ga: $(cat "$D/qemu-ga.err")"
st_wait 10 test -S "$D/real.sock"

st_check "the command list against chand-qga" eval \
    '"$PY" "$QC" "$SOCK" list "$D/ours" >"$D/ours.json"'
st_check "the command list against the real qemu-ga" eval \
    '"$PY" "$QC" "$D/real.sock" list "$D/theirs" >"$D/theirs.json"'
same_shapes() {
    "$PY" "$QC" compare "$D/ours.json" "$D/theirs.json" >&2
}
st_check "every answer has qemu-ga's shape and error class" same_shapes

# ours_ok PYEXPR: the command list's answers (as 'r') satisfy PYEXPR.
ours_ok() {
    "$PY" -c '
import base64, json, sys
r = json.load(open(sys.argv[1]))
sys.exit(0 if eval(sys.argv[2]) else 1)' "$D/ours.json" "$1"
}
now_ns=$(date +%s%N)
st_check "guest-get-time is the VM's clock" \
    ours_ok "abs(r['guest-get-time']['return'] - $now_ns) < 30 * 10**9"
st_check "guest-get-osinfo is the VM's kernel" \
    ours_ok "r['guest-get-osinfo']['return']['kernel-release'] == '$(uname -r)'"
st_check "guest-network-get-interfaces has the VM's channel address" \
    ours_ok "any(a['ip-address'].startswith('169.254.') for i in r['guest-network-get-interfaces']['return'] for a in i.get('ip-addresses', []))"
st_check "guest-sync echoes its id" ours_ok "r['guest-sync']['return'] == 4242"
st_check "guest-file-read reads back what guest-file-write wrote" \
    ours_ok "base64.b64decode(r['guest-file-read']['return']['buf-b64']) == b'hello, qemu-ga\n'"
st_check "the file is in the VM's file system" \
    test "$(cat "$D/ours-file")" = "hello, qemu-ga"
st_check "guest-exec-status: exit code and output" \
    ours_ok "r['guest-exec-status']['return']['exitcode'] == 3 and base64.b64decode(r['guest-exec-status']['return']['out-data']) == b'out\n' and base64.b64decode(r['guest-exec-status']['return']['err-data']) == b'err\n'"
st_check "guest-info lists what chand-qga serves, exec enabled" \
    ours_ok "{'enabled': True, 'name': 'guest-exec', 'success-response': True} in r['guest-info']['return']['supported_commands']"
st_check "guest-info: guest-fsfreeze-freeze disabled (chand-guest freezes named mount points only)" \
    ours_ok "{'enabled': False, 'name': 'guest-fsfreeze-freeze', 'success-response': True} in r['guest-info']['return']['supported_commands']"

# --- exec allowlist --------------------------------------------------------
refused() {
    ! "$PY" "$QC" "$SOCK" execute guest-exec '{"path": "/bin/ls"}' \
        >"$D/out" && grep -q GenericError "$D/out" &&
        grep -q "not in the allowlist\|allowlist" "$D/out" ||
        { cat "$D/out" >&2; return 1; }
}
st_check "guest-exec of an executable not on the allowlist is refused" refused

# --- 0xFF resync -------------------------------------------------------------
# A partial request, then 0xFF and guest-sync-delimited: one error (the
# dropped partial request), then 0xFF and the sync's response.
resync() {
    "$PY" "$QC" "$1" raw '{"execute": "guest-pi' 0xff \
        '{"execute":"guest-sync-delimited","arguments":{"id":7}}' \
        >"$D/raw.$2"
    "$PY" - "$D/raw.$2" <<'EOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert len(lines) == 2, lines
assert json.loads(lines[0])["error"]["class"] == "GenericError", lines
assert lines[1].startswith("\xff"), lines
assert json.loads(lines[1][1:]) == {"return": 7}, lines
EOF
}
st_check "0xFF drops a partial request (real qemu-ga)" resync "$D/real.sock" real
st_check "0xFF drops a partial request (chand-qga)" resync "$SOCK" ours

# --- hostile input ---------------------------------------------------------
hostile() {
    "$PY" - "$SOCK" <<'EOF'
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.settimeout(30)
buf = b""
def line():
    global buf
    while b"\n" not in buf:
        chunk = s.recv(65536)
        assert chunk, "connection closed"
        buf += chunk
    l, buf = buf.split(b"\n", 1)
    return json.loads(l)
def expect_error(payload, what):
    s.sendall(payload)
    r = line()
    assert r["error"]["class"] == "GenericError" and what in r["error"]["desc"], r
expect_error(b'{"execute": }', "JSON parse error")
expect_error(b'[1, 2]', "must be a JSON object")
expect_error(b'{"execute": "guest-ping", "bogus": 1}', "'bogus' is unexpected")
expect_error(b'{"arguments": {}}', "lacks member 'execute'")
expect_error(b'nonsense ', "stray")
expect_error(b'{"execute": "guest-ping", "arguments": {"x": "' + b"a" * (2 << 20) + b'"}}',
             "over the limit")
expect_error(b'{"execute": "guest-file-write", "arguments": {"handle": 1, "buf-b64": "!!!"}}',
             "Base64")
expect_error(b'{' * 2000 + b'}' * 2000, "deeper than")
s.sendall(b'{"execute": "guest-ping", "id": "after"}')
r = line()
assert r == {"return": {}, "id": "after"}, r
EOF
}
st_check "bad requests get errors and the connection goes on" hostile
st_check "chand-qga counted them" eval \
    'qstats | "$PY" -c "import ast, sys; s = ast.literal_eval(sys.stdin.read()); sys.exit(0 if s[\"commands\"][\"errors\"] >= 1 else 1)"'
st_check "chand-qga is up" topo_qga_running

# --- large files -----------------------------------------------------------
# 64 MiB in one guest-file-read, over qemu-ga's own cap of 48 MiB.  It
# goes through the transfer lane.
head -c 64M /dev/urandom >"$D/big1"
want=$(sha256sum "$D/big1" | cut -d' ' -f1)
st_check "a 64 MiB guest-file-read returns the whole file" eval \
    'test "$("$PY" "$QC" "$SOCK" cat "$D/big1" $((64 << 20)))" = "$want 67108864"'
rm -f "$D/big1"
large_reads() {
    qstats | "$PY" -c "import ast, sys; s = ast.literal_eval(sys.stdin.read()); sys.exit(0 if s['commands']['large_reads'] >= 1 and s['commands']['large_read_bytes'] >= 64 << 20 else 1)"
}
st_check "through the transfer lane" large_reads

# A chand-host control socket that accepts and never answers (a stand-in
# for a hung chand-host; the real one keeps serving the channel): a large
# read fails after 10 s with an error that says so, and meanwhile
# chand-qga answers other requests.
HUNG=$D/hung.ctl
"$PY" - "$HUNG" <<'EOF' &
import os, socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(16)
held = []
while True:
    c, _ = s.accept()
    held.append(c)
    open(sys.argv[1] + ".accepted", "w").close()
EOF
hung_pid=$!
topo_qga_stop
st_check "chand-qga restarts with a --host-ctl that never answers" \
    topo_qga_start --host-ctl="$HUNG"
st_check "the VM's socket is back" st_wait 30 test -S "$SOCK"
head -c 1M /dev/urandom >"$D/big3"
started=$(date +%s)
timeout 120 "$PY" "$QC" "$SOCK" cat "$D/big3" $((1 << 20)) >"$D/cat3" 2>&1 &
cat_pid=$!
st_check "the read asks the hung control socket" \
    st_wait 60 test -e "$HUNG.accepted"
st_check "meanwhile guest-ping is answered" \
    timeout 20 "$PY" "$QC" "$SOCK" execute guest-ping
st_check "and guest-info" st_output_has supported_commands \
    timeout 20 "$PY" "$QC" "$SOCK" execute guest-info
st_check "while the read still waits" kill -0 "$cat_pid"
cat_status=0
wait "$cat_pid" || cat_status=$?
took=$(( $(date +%s) - started ))
st_log "the read ended after ${took}s with status $cat_status: $(head -c 300 "$D/cat3")"
st_check "it ends with a GenericError naming the silent socket" \
    grep -q "GenericError.*chand-host's control socket $HUNG did not answer object/fetch-status in time" "$D/cat3"
st_check "after the 10 s chand-qga waits for an answer, not the read's 600 s" \
    test "$took" -le 60
st_check "chand-qga counted it" eval \
    'qstats | "$PY" -c "import ast, sys; s = ast.literal_eval(sys.stdin.read()); sys.exit(0 if s[\"commands\"][\"host_errors\"] >= 1 else 1)"'
kill "$hung_pid" 2>/dev/null
wait "$hung_pid" 2>/dev/null
rm -f "$D/big3" "$HUNG" "$HUNG.accepted"
topo_qga_stop
st_check "chand-qga restarts with chand-host's control socket" topo_qga_start
st_check "the VM's socket is back" st_wait 30 test -S "$SOCK"

# kill -9 of chand-guest while a 32 MiB read is under way: the client gets
# an error or the whole file, never a hang.
head -c 32M /dev/urandom >"$D/big2"
want2=$(sha256sum "$D/big2" | cut -d' ' -f1)
started=$(date +%s)
timeout 120 "$PY" "$QC" "$SOCK" cat "$D/big2" $((32 << 20)) >"$D/cat2" 2>&1 &
cat_pid=$!
exporting() {
    compgen -G "$TOPO_RUN/$VM/content/export/*" >/dev/null ||
        find "$TOPO_RUN/$VM" -path '*export/*' -type f | grep -q .
}
st_check "the export is made in the VM" st_wait 60 exporting
topo_guest_kill "$VM"
cat_status=0
wait "$cat_pid" || cat_status=$?
took=$(( $(date +%s) - started ))
st_log "the read ended after ${took}s with status $cat_status: $(head -c 300 "$D/cat2")"
ended_properly() {
    [ "$cat_status" != 124 ] && { grep -q '"GenericError"' "$D/cat2" ||
        test "$(cat "$D/cat2")" = "$want2 33554432"; }
}
st_check "the client got an error or the whole file, in ${took}s" ended_properly
st_check "within the call timeout and the channel's grace" test "$took" -le 75
st_check "chand-guest restarts" topo_guest_start "$VM" "$ID"
st_check "the channel is ready again" st_chanctl wait --timeout 60
st_check "the same read then returns the whole file" eval \
    'test "$("$PY" "$QC" "$SOCK" cat "$D/big2" $((32 << 20)))" = "$want2 33554432"'
st_check "chand-qga is up" topo_qga_running

# --- a chand-qga that dies leaves no requests behind ------------------------
qga_requests() {
    ovsdb-client dump "$(topo_db)" Chan Record key external_ids |
        grep -c 'chand-qga=' || true
}
st_check "a guest-exec that runs 60 s" "$PY" "$QC" "$SOCK" execute guest-exec \
    '{"path": "/bin/sh", "arg": ["-c", "sleep 60"]}'
st_check "its request is in the Chan DB, marked" test "$(qga_requests)" = 1
topo_qga_kill
st_check "chand-qga restarts after kill -9" topo_qga_start
st_check "and deletes the request of its earlier run" st_wait 30 \
    eval 'test "$(qga_requests)" = 0'

# --- sockets by libvirt UUID ----------------------------------------------
topo_qga_stop
UUID=6f1c2d3e-4a5b-4c6d-8e7f-0123456789ab
st_check "chand-qga restarts with --socket-name=libvirt-uuid" \
    topo_qga_start --socket-dir="$D/by-uuid" --socket-name=libvirt-uuid
sleep 1
st_check "no socket while the VM has no libvirt UUID" \
    test -z "$(ls "$D/by-uuid")"
st_check "the VM gets a libvirt UUID" \
    st_chanctl id-set --vm "$VM" "libvirt-uuid:$UUID"
st_check "its socket appears under the UUID" \
    st_wait 30 test -S "$D/by-uuid/$UUID.sock"
st_check "and answers" "$PY" "$QC" "$D/by-uuid/$UUID.sock" execute guest-ping
# A client connected when the VM stops being served there is disconnected.
"$PY" - "$D/by-uuid/$UUID.sock" "$D/held" <<'EOF' &
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.settimeout(60)
s.sendall(b'{"execute": "guest-ping"}')
assert json.loads(s.makefile().readline()) == {"return": {}}
open(sys.argv[2] + ".ready", "w").close()
while s.recv(65536):
    pass
open(sys.argv[2] + ".closed", "w").close()
EOF
held_pid=$!
st_check "a client holds the UUID's socket" st_wait 30 test -e "$D/held.ready"
st_check "the UUID is retired" st_chanctl id-retire "libvirt-uuid:$UUID"
st_check "its socket goes" st_wait 30 test ! -e "$D/by-uuid/$UUID.sock"
st_check "and its client is disconnected" st_wait 30 test -e "$D/held.closed"
wait "$held_pid"
topo_qga_stop

st_exit
