#!/usr/bin/env bash
# test/system/chanctl.sh [BUILDDIR] -- tests chanctl end to end.
#
# Starts a private ovsdb-server with the Chan DB in a temporary directory,
# plus two small stand-ins written in Python: one for chand-host's control
# socket (lib/ctl protocol) and one for chand-guest's local API; then runs
# every chanctl command and every error path against them and checks exit
# statuses, output and the database contents.  Needs no root.
#
# BUILDDIR (or $CHAND_BUILD_DIR; default _build/default) is a configured
# and built tree; $CHANCTL overrides the binary.  Exits 0 if every check
# passed, 1 if any failed (each failure is printed with the command's
# output), 77 if a tool it needs is missing.

set -u -o pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-${CHAND_BUILD_DIR:-$top/_build/default}}
CHANCTL=${CHANCTL:-$build/utilities/chanctl}
schema=$top/ovsdb/chan.ovsschema

for tool in ovsdb-tool ovsdb-server ovsdb-client ovs-appctl python3; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "chanctl.sh: SKIP: $tool not found" >&2
        exit 77
    fi
done
if [ ! -x "$CHANCTL" ]; then
    echo "chanctl.sh: $CHANCTL not found (build first, or pass BUILDDIR)" >&2
    exit 1
fi

# Keep the caller's settings out of the way: every test says where to go.
unset CHAND_CHAN_DB CHAND_DB CHAND_HOST_CTL CHAND_GUEST_API CHAND_GUEST_CTL

tmp=$(mktemp -d /tmp/chanctl-test.XXXXXX)
pids=()
cleanup() {
    [ -S "$tmp/ovsdb.ctl" ] && ovs-appctl -t "$tmp/ovsdb.ctl" exit \
        >/dev/null 2>&1
    [ -S "$tmp/other.ctl" ] && ovs-appctl -t "$tmp/other.ctl" exit \
        >/dev/null 2>&1
    [ -S "$tmp/conn.ctl" ] && ovs-appctl -t "$tmp/conn.ctl" exit \
        >/dev/null 2>&1
    local p
    for p in "${pids[@]}"; do
        kill "$p" 2>/dev/null
    done
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

DB=unix:$tmp/db.sock
HOSTCTL=$tmp/chand-host.ctl
API=@chanctl-test-$$
GUESTCTL=@chanctl-test-ctl-$$
n_checks=0
n_failed=0

# ---------------------------------------------------------------------------
# Helpers.

# run CMD...: runs CMD, keeping its status in $rc and output in $tmp/out and
# $tmp/err.
run() {
    last_cmd="$*"
    "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
}

fail() {
    n_failed=$((n_failed + 1))
    {
        echo "FAIL: $*"
        echo "  command: $last_cmd (exit $rc)"
        sed 's/^/  stdout: /' "$tmp/out"
        sed 's/^/  stderr: /' "$tmp/err"
    } >&2
}

# expect STATUS CMD...: runs CMD and checks its exit status.
expect() {
    local want=$1
    shift
    run "$@"
    n_checks=$((n_checks + 1))
    if [ "$rc" != "$want" ]; then
        fail "expected exit $want"
        return 1
    fi
    # Sanitizer builds report leaks and undefined behaviour on stderr.
    if grep -qE 'Sanitizer|runtime error:' "$tmp/err"; then
        fail "sanitizer report"
        return 1
    fi
    return 0
}

# out_has TEXT / err_has TEXT: the last command's stdout / stderr contains
# TEXT (a fixed string).
out_has() {
    n_checks=$((n_checks + 1))
    grep -qF -- "$1" "$tmp/out" || fail "stdout lacks '$1'"
}
err_has() {
    n_checks=$((n_checks + 1))
    grep -qF -- "$1" "$tmp/err" || fail "stderr lacks '$1'"
}
# out_is TEXT: the last command's stdout is exactly TEXT (plus newline).
out_is() {
    n_checks=$((n_checks + 1))
    [ "$(cat "$tmp/out")" = "$1" ] || fail "stdout is not '$1'"
}
out_empty() {
    n_checks=$((n_checks + 1))
    [ ! -s "$tmp/out" ] || fail "stdout is not empty"
}
err_empty() {
    n_checks=$((n_checks + 1))
    [ ! -s "$tmp/err" ] || fail "stderr is not empty"
}
# check_that DESCRIPTION CMD...: CMD (a test) must succeed.
check_that() {
    local what=$1
    shift
    n_checks=$((n_checks + 1))
    if ! "$@"; then
        n_failed=$((n_failed + 1))
        echo "FAIL: $what" >&2
        echo "  check: $*" >&2
    fi
}

# ovsdb CMD...: ovsdb-client against the test database.
dbq() {
    ovsdb-client transact "$DB" "[\"Chan\", $1]"
}
# record_field KEY VM COLUMN: the column of the Record (VM "" = all VMs),
# as ovsdb-client prints it in a select.
record_json() {
    local vmcond
    if [ -z "$2" ]; then
        vmcond='["vm","==",["set",[]]]'
    else
        vmcond="[\"vm\",\"==\",\"$2\"]"
    fi
    dbq "{\"op\":\"select\",\"table\":\"Record\",
          \"where\":[[\"key\",\"==\",\"$1\"],$vmcond]}"
}
# pyget EXPR: evaluates EXPR on the JSON in $tmp/out (as 'j').
pyget() {
    python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print($1)" \
        "$tmp/out"
}
record_version() {
    record_json "$1" "$2" >"$tmp/out"
    pyget 'j[0]["rows"][0]["version"] if j[0]["rows"] else "absent"'
}
record_value() {
    record_json "$1" "$2" >"$tmp/out"
    pyget 'j[0]["rows"][0]["value"] if j[0]["rows"] else "absent"'
}

# ---------------------------------------------------------------------------
# Servers.

ovsdb-tool create "$tmp/chan.db" "$schema" || exit 1
ovsdb-server --detach --no-chdir --pidfile="$tmp/ovsdb.pid" \
    --remote="punix:$tmp/db.sock" --unixctl="$tmp/ovsdb.ctl" \
    --log-file="$tmp/ovsdb.log" "$tmp/chan.db" 2>"$tmp/ovsdb.start" ||
    { cat "$tmp/ovsdb.start" >&2; exit 1; }

# A server without the Chan DB, for the "no such database" error.
cat >"$tmp/other.ovsschema" <<'EOF'
{"name": "Other", "tables": {"T": {"columns": {"c": {"type": "string"}}}}}
EOF
ovsdb-tool create "$tmp/other.db" "$tmp/other.ovsschema" || exit 1
ovsdb-server --detach --no-chdir --pidfile="$tmp/other.pid" \
    --remote="punix:$tmp/other.sock" --unixctl="$tmp/other.ctl" \
    --log-file="$tmp/other.log" "$tmp/other.db" 2>"$tmp/other.start" ||
    { cat "$tmp/other.start" >&2; exit 1; }

# Stand-ins for chand-host's control socket and chand-guest's API.
cat >"$tmp/fake.py" <<'EOF'
import json, os, socket, sys, threading, time

mode, path = sys.argv[1], sys.argv[2]
RECORDS = {
    "net/dns": ({"servers": ["10.0.0.1", "10.0.0.2"]}, 3),
    "net/ntp": ("pool.ntp.org", 1),
    "app/flag": (True, 7),
}

def send(conn, msg):
    conn.sendall(json.dumps(msg).encode())

def reply(conn, req, result):
    send(conn, {"id": req["id"], "result": result, "error": None})

def error(conn, req, err):
    send(conn, {"id": req["id"], "result": None, "error": err})

def messages(conn):
    buf, dec = "", json.JSONDecoder()
    while True:
        data = conn.recv(65536)
        if not data:
            return
        buf += data.decode()
        while buf.strip():
            buf = buf.lstrip()
            try:
                msg, end = dec.raw_decode(buf)
            except ValueError:
                break
            buf = buf[end:]
            yield msg

def rec(key):
    value, version = RECORDS[key]
    return {"key": key, "value": value, "version": version}

def ctl(conn, req):
    m, p = req["method"], req["params"]
    if m == "channel/list":
        reply(conn, req, "VM   CHAN_ID  VID   STATE\nvm1  7        4094  ready\n")
    elif m == "channel/show":
        if p == ["vm1"]:
            reply(conn, req, '{"vm": "vm1", "chan_id": 7}')
        else:
            error(conn, req, "no channel for VM %s\n" % p[0])
    elif m == "list-commands":
        reply(conn, req, "channel/list\nchannel/show VM\nvlog/set SPEC\n")
    elif m == "vlog/set":
        reply(conn, req, "" if p == ["ANY:dbg"] else "bad " + " ".join(p))
    elif m == "args":
        reply(conn, req, "|".join(p))
    elif m == "hang":
        time.sleep(30)
    elif m == "badreply":
        reply(conn, req, 42)
    else:
        error(conn, req, '"%s" is not a valid command' % m)

def guest(conn, req):
    m, p = req["method"], req["params"]
    if m == "get":
        if len(p) != 1 or not isinstance(p[0], str):
            error(conn, req, {"error": "bad params"})
        elif p[0] == "malformed":
            reply(conn, req, "not an object")
        elif p[0] == "garbage":
            conn.sendall(b"}}}not json")
            conn.close()
        elif p[0] in RECORDS:
            reply(conn, req, rec(p[0]))
        else:
            error(conn, req, {"error": "not found", "details": p[0]})
    elif m == "list":
        prefix = p[0] if p else ""
        reply(conn, req, [rec(k) for k in sorted(RECORDS)
                          if k.startswith(prefix)])
    elif m == "watch":
        prefix = p[0] if p else ""
        if prefix == "forbidden/":
            error(conn, req, "watch refused")
            return
        reply(conn, req, [rec("net/dns")] if prefix == "cur/" else {})
        if prefix == "bare/":
            # Not quite JSON-RPC (params should be an array): accepted.
            send(conn, {"id": None, "method": "update", "params":
                        {"key": "bare/x", "op": "put", "value": 2,
                         "version": 1}})
        send(conn, {"id": None, "method": "update", "params": [
            {"key": "net/dns", "op": "put", "value": {"servers": []},
             "version": 4}]})
        send(conn, {"id": None, "method": "update", "params": [
            {"key": "net/ntp", "op": "delete"}]})
        # Only a client that answers echo sees the third update.
        send(conn, {"id": "e1", "method": "echo", "params": ["x"]})
        for msg in messages(conn):
            if msg.get("id") == "e1" and msg.get("result") == ["x"]:
                send(conn, {"id": None, "method": "update", "params": [
                    {"key": "echo/ok", "op": "put", "value": 1,
                     "version": 1}]})
                if prefix == "close/":
                    conn.close()
                    return
    elif m == "status":
        reply(conn, req, {"state": "in-session", "host_epoch": 123,
                          "position": 5, "records": len(RECORDS)})
    else:
        error(conn, req, "unknown method")

def serve(conn):
    try:
        for req in messages(conn):
            (ctl if mode == "ctl" else guest)(conn, req)
    except OSError:
        pass
    try:
        conn.close()
    except OSError:
        pass

s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind("\0" + path[1:] if path.startswith("@") else path)
s.listen(16)
open(sys.argv[3], "w").close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF
python3 "$tmp/fake.py" ctl "$HOSTCTL" "$tmp/ctl.ready" &
pids+=($!)
python3 "$tmp/fake.py" guest "$API" "$tmp/guest.ready" &
pids+=($!)
python3 "$tmp/fake.py" ctl "$GUESTCTL" "$tmp/guestctl.ready" &
pids+=($!)
for i in $(seq 100); do
    [ -e "$tmp/ctl.ready" ] && [ -e "$tmp/guest.ready" ] && \
        [ -e "$tmp/guestctl.ready" ] && \
        [ -S "$tmp/db.sock" ] && break
    sleep 0.1
done

# ---------------------------------------------------------------------------
# Command line.

expect 0 "$CHANCTL" --help && err_empty
for cmd in push delete status wait channels channel-show host get list \
           watch guest-status guest; do
    out_has "  $cmd "
done
for opt in --chan-db --db --host-ctl --api --guest-ctl --vm --json \
           --timeout --verbose --help --version CHAND_CHAN_DB CHAND_DB \
           CHAND_HOST_CTL deprecated \
           CHAND_GUEST_API CHAND_GUEST_CTL unix:/var/run/openvswitch/db.sock \
           /var/run/chand/chand-host.ctl @chand-guest @chand-guest.ctl; do
    out_has "$opt"
done
expect 0 "$CHANCTL" -h && out_has "usage: chanctl"
expect 0 "$CHANCTL" --version && out_has "chanctl (chand) "
expect 0 "$CHANCTL" -V && out_has "chanctl (chand) "

expect 2 "$CHANCTL" && err_has "missing command" && err_has "--help"
expect 2 "$CHANCTL" frobnicate && err_has "unknown command 'frobnicate'"
expect 2 "$CHANCTL" --frob status && err_has "unknown option '--frob'"
expect 2 "$CHANCTL" -x status && err_has "unknown option '-x'"
expect 2 "$CHANCTL" status --chan-db && err_has "'--chan-db' needs a value"
expect 2 "$CHANCTL" status --chan-db= && err_has "nonempty"
expect 2 "$CHANCTL" status --db && err_has "'--db' needs a value"
expect 2 "$CHANCTL" status --json=yes && err_has "takes no value"
expect 2 "$CHANCTL" --vm vm1 get k && err_has "'get' does not take --vm"
expect 2 "$CHANCTL" --json push k 1 && err_has "'push' does not take --json"
expect 2 "$CHANCTL" --json channels && err_has "does not take --json"
expect 2 "$CHANCTL" push k && err_has "missing arguments for 'push'"
expect 2 "$CHANCTL" push k 1 2 && err_has "push takes KEY JSON pairs"
expect 2 "$CHANCTL" delete && err_has "missing arguments for 'delete'"
expect 2 "$CHANCTL" status extra && err_has "too many arguments"
expect 2 "$CHANCTL" wait extra && err_has "too many arguments"
expect 2 "$CHANCTL" channels extra && err_has "too many arguments"
expect 2 "$CHANCTL" channel-show && err_has "missing arguments"
expect 2 "$CHANCTL" channel-show a b && err_has "too many arguments"
expect 2 "$CHANCTL" host && err_has "missing arguments for 'host'"
expect 2 "$CHANCTL" guest && err_has "missing arguments for 'guest'"
expect 2 "$CHANCTL" --vm x guest version && err_has "does not take --vm"
expect 2 "$CHANCTL" get && err_has "missing arguments for 'get'"
expect 2 "$CHANCTL" list a b && err_has "too many arguments for 'list'"
expect 2 "$CHANCTL" watch a b && err_has "too many arguments for 'watch'"
expect 2 "$CHANCTL" guest-status x && err_has "too many arguments"
for t in abc -1 1e9 nan inf ''; do
    expect 2 "$CHANCTL" --timeout "$t" status && err_has "--timeout"
done

# ---------------------------------------------------------------------------
# push.

expect 0 "$CHANCTL" --chan-db "$DB" push net/dns '{"servers": ["10.0.0.1"]}' &&
    out_empty && err_empty
check_that "push inserts version 1" [ "$(record_version net/dns '')" = 1 ]
check_that "push stores the JSON text" \
    [ "$(record_value net/dns '')" = '{"servers": ["10.0.0.1"]}' ]
expect 0 "$CHANCTL" --chan-db "$DB" -v push net/dns '{"servers": []}' &&
    out_is "pushed net/dns version 2 to all VMs"
check_that "push bumps the version" [ "$(record_version net/dns '')" = 2 ]
check_that "push updates the value" \
    [ "$(record_value net/dns '')" = '{"servers": []}' ]

# A lost reply (as in a cluster failover): drop-reply-proxy.py forwards to
# the Chan DB but loses the reply to the second transaction of its first
# connection, a push's write, after the server committed it.  chanctl
# reconnects, finds its own write there and stops: once, not twice.
lost_push() {
    local expect_version=$1
    shift
    python3 "$top/test/system/drop-reply-proxy.py" "$tmp/lossy.sock" \
        "$tmp/db.sock" 2 >"$tmp/proxy.out" 2>"$tmp/proxy.err" &
    local proxy=$! i
    # Up to 30 s: a loaded machine can take seconds to start Python.
    for i in $(seq 300); do
        [ -s "$tmp/proxy.out" ] && break
        sleep 0.1
    done
    [ -s "$tmp/proxy.out" ] ||
        echo "drop-reply-proxy.py is not ready: $(cat "$tmp/proxy.err")" >&2
    expect 0 "$CHANCTL" --chan-db "unix:$tmp/lossy.sock" -v push "$@" &&
        out_is "pushed $1 version $expect_version to all VMs"
    kill "$proxy" 2>/dev/null
    wait "$proxy" 2>/dev/null
}
lost_push 1 net/lost '"written once"'
check_that "the insert's reply was lost" \
    grep -q "lost the reply" "$tmp/proxy.err"
check_that "a push whose insert reply was lost is in once: version 1" \
    [ "$(record_version net/lost '')" = 1 ]
lost_push 2 net/lost '"updated once"'
check_that "the update's reply was lost" \
    grep -q "lost the reply" "$tmp/proxy.err"
check_that "a push whose update reply was lost is in once: version 2" \
    [ "$(record_version net/lost '')" = 2 ]
check_that "with the value pushed" \
    [ "$(record_value net/lost '')" = '"updated once"' ]
expect 0 "$CHANCTL" push --chan-db="$DB" --vm vm1 net/dns '"vm1 only"' --verbose &&
    out_is "pushed net/dns version 1 to vm1"
check_that "push --vm inserts a per-VM record" \
    [ "$(record_version net/dns vm1)" = 1 ]
check_that "push --vm leaves the all-VM record" \
    [ "$(record_version net/dns '')" = 2 ]
CHAND_CHAN_DB=$DB expect 0 "$CHANCTL" -v push --vm vm1 net/dns '"again"' &&
    out_is "pushed net/dns version 2 to vm1"
# The deprecated spellings --db and CHAND_DB still work for one release;
# CHAND_CHAN_DB wins over CHAND_DB.
expect 0 "$CHANCTL" --db "$DB" -v push --vm vm1 net/dns '"again"' &&
    out_is "pushed net/dns version 3 to vm1"
CHAND_DB=$DB expect 0 "$CHANCTL" -v push --vm vm1 net/dns '"again"' &&
    out_is "pushed net/dns version 4 to vm1"
CHAND_DB=unix:$tmp/nothing.sock CHAND_CHAN_DB=$DB \
    expect 0 "$CHANCTL" -v push --vm vm1 net/dns '"again"' &&
    out_is "pushed net/dns version 5 to vm1"
expect 0 "$CHANCTL" --chan-db "$DB" push num -5
check_that "a negative number is a value" [ "$(record_value num '')" = -5 ]
expect 0 "$CHANCTL" --chan-db "$DB" push -- num -6.5
check_that "'--' ends options" [ "$(record_value num '')" = -6.5 ]
for v in 'null' 'true' '"s"' '[]' '{}' '0' '"ünïcødé"'; do
    expect 0 "$CHANCTL" --chan-db "$DB" push scalar "$v"
    check_that "push stores $v" [ "$(record_value scalar '')" = "$v" ]
done
key256=$(printf 'k%.0s' $(seq 256))
expect 0 "$CHANCTL" --chan-db "$DB" push "$key256" 1
check_that "a 256-byte key is accepted" \
    [ "$(record_version "$key256" '')" = 1 ]
vm64=$(printf 'v%.0s' $(seq 64))
expect 0 "$CHANCTL" --chan-db "$DB" push --vm "$vm64" k 1

# push of several records: one Record_Set row ("chanctl") per target, in
# one transaction; a Record row of the same key goes (it would win).
set_json() {
    local vmcond
    if [ -z "$2" ]; then
        vmcond='["vm","==",["set",[]]]'
    else
        vmcond="[\"vm\",\"==\",\"$2\"]"
    fi
    dbq "{\"op\":\"select\",\"table\":\"Record_Set\",
          \"where\":[[\"name\",\"==\",\"$1\"],$vmcond]}"
}
set_records() {
    set_json "$1" "$2" >"$tmp/out"
    pyget 'json.dumps(dict(j[0]["rows"][0]["records"][1]), sort_keys=True) if j[0]["rows"] else "absent"'
}
expect 0 "$CHANCTL" --chan-db "$DB" push --vm vmset net/dns '"single"'
expect 0 "$CHANCTL" --chan-db "$DB" -v push --vm vmset set/a 1 set/b '"two"' \
    net/dns '{"x": [1]}' && out_has "pushed 3 records to vmset"
check_that "push of several records writes one Record_Set" \
    [ "$(set_records chanctl vmset)" = '{"net/dns": "{\"x\": [1]}", "set/a": "1", "set/b": "\"two\""}' ]
check_that "...and removes the Record row of a key it holds" \
    [ "$(record_version net/dns vmset)" = absent ]
expect 0 "$CHANCTL" --chan-db "$DB" push --vm vmset set/b 3 set/c null
check_that "a second push changes and adds entries of the same set" \
    [ "$(set_records chanctl vmset)" = '{"net/dns": "{\"x\": [1]}", "set/a": "1", "set/b": "3", "set/c": "null"}' ]
expect 0 "$CHANCTL" --chan-db "$DB" push s/1 1 s/2 2
check_that "without --vm the set is the all-VMs one" \
    [ "$(set_records chanctl '')" = '{"s/1": "1", "s/2": "2"}' ]
expect 0 "$CHANCTL" --chan-db "$DB" -v delete --vm vmset set/a &&
    out_has "deleted set/a from vmset"
check_that "delete takes a key out of the target's set" \
    [ "$(set_records chanctl vmset)" = '{"net/dns": "{\"x\": [1]}", "set/b": "3", "set/c": "null"}' ]
expect 1 "$CHANCTL" --chan-db "$DB" delete --vm vmset set/a &&
    err_has "no record set/a for vmset"
expect 2 "$CHANCTL" --chan-db "$DB" push --vm vmset a 1 a 2 &&
    err_has "key a given twice"
expect 2 "$CHANCTL" --chan-db "$DB" push --vm vmset a 1 b '{' &&
    err_has "value for b is not valid JSON"
# The sets would be pending in the channel checks below.
dbq '{"op":"delete","table":"Record_Set","where":[]}' >/dev/null

# push: usage errors (exit 2), nothing written.
expect 2 "$CHANCTL" --chan-db "$DB" push bad '{"a": 1' &&
    err_has "value for bad is not valid JSON"
expect 2 "$CHANCTL" --chan-db "$DB" push bad '{"a": 1, "a": 2}' &&
    err_has "duplicate"
expect 2 "$CHANCTL" --chan-db "$DB" push bad '' && err_has "not valid JSON"
expect 2 "$CHANCTL" --chan-db "$DB" push bad 'nope' && err_has "not valid JSON"
expect 2 "$CHANCTL" --chan-db "$DB" push bad '1 2' && err_has "not valid JSON"
expect 2 "$CHANCTL" --chan-db "$DB" push bad "$(printf '"\xff"')" &&
    err_has "not valid JSON"
check_that "invalid values are not written" \
    [ "$(record_version bad '')" = absent ]
expect 2 "$CHANCTL" --chan-db "$DB" push '' 1 && err_has "KEY must be 1 to 256"
expect 2 "$CHANCTL" --chan-db "$DB" push "k$key256" 1 &&
    err_has "KEY must be 1 to 256 bytes (got 257)"
expect 2 "$CHANCTL" --chan-db "$DB" push "$(printf 'k\xff')" 1 &&
    err_has "not valid UTF-8"
expect 2 "$CHANCTL" --chan-db "$DB" push --vm 'bad name' k 1 &&
    err_has "not a valid VM name"
expect 2 "$CHANCTL" --chan-db "$DB" push --vm "v$vm64" k 1 &&
    err_has "not a valid VM name"

# push: connection errors (exit 1).
expect 1 "$CHANCTL" --chan-db "unix:$tmp/nothing.sock" push k 1 &&
    err_has "cannot connect to unix:$tmp/nothing.sock: No such file or directory (is ovsdb-server running? use --chan-db)"
CHAND_CHAN_DB=unix:$tmp/nothing.sock expect 1 "$CHANCTL" push k 1 &&
    err_has "cannot connect to unix:$tmp/nothing.sock" &&
    err_has "use --chan-db or unset CHAND_CHAN_DB"
CHAND_DB=unix:$tmp/nothing.sock expect 1 "$CHANCTL" push k 1 &&
    err_has "use --chan-db or unset CHAND_DB)"
expect 1 "$CHANCTL" --db "unix:$tmp/nothing.sock" push k 1 &&
    err_has "(is ovsdb-server running? use --db)"
expect 1 "$CHANCTL" --chan-db "$tmp/nothing.sock" push k 1 &&
    err_has "cannot connect to unix:$tmp/nothing.sock"
# Transfer, allowlist and install commands: bad arguments (exit 2).
D64=$(printf 'a%.0s' $(seq 64))
expect 2 "$CHANCTL" --chan-db "$DB" allow XYZ &&
    err_has "'XYZ' is not a DIGEST"
expect 2 "$CHANCTL" --chan-db "$DB" disallow 12 &&
    err_has "'12' is not a DIGEST"
expect 2 "$CHANCTL" --chan-db "$DB" install "$D64" /x &&
    err_has "install needs --vm NAME"
expect 2 "$CHANCTL" --chan-db "$DB" install --vm v1 "$D64" rel/path &&
    err_has "PATH 'rel/path' is not absolute"
expect 2 "$CHANCTL" --chan-db "$DB" install --vm v1 "$D64" /x --mode 4755 &&
    err_has "has setuid, setgid or sticky bits"
expect 2 "$CHANCTL" --chan-db "$DB" install --vm v1 "$D64" /x --mode 0789 &&
    err_has "is not an octal mode"
expect 2 "$CHANCTL" object-fetch --vm v1 nothex &&
    err_has "'nothex' is not a DIGEST"
expect 2 "$CHANCTL" object-restore ABC /x &&
    err_has "'ABC' is not a DIGEST"
expect 2 "$CHANCTL" object-store &&
    err_has "missing arguments for 'object-store'"

expect 2 "$CHANCTL" --chan-db sctp:127.0.0.1:6640 push k 1 &&
    err_has "unsupported Chan DB remote 'sctp:127.0.0.1:6640'"
expect 1 "$CHANCTL" --chan-db tcp:127.0.0.1:1 push k 1 &&
    err_has "cannot connect to tcp:127.0.0.1:1: Connection refused"
expect 1 "$CHANCTL" --chan-db "tcp:127.0.0.1:1,unix:$tmp/nothing.sock" \
    push k 1 &&
    err_has "cannot connect to tcp:127.0.0.1:1: Connection refused; unix:$tmp/nothing.sock: No such file or directory"
expect 1 "$CHANCTL" --chan-db "unix:$tmp/other.sock" push k 1 &&
    err_has "serves no database \"Chan\""
if [ ! -e /var/run/openvswitch/db.sock ]; then
    expect 1 "$CHANCTL" push k 1 &&
        err_has "cannot connect to unix:/var/run/openvswitch/db.sock: No such file or directory (is ovsdb-server running? use --chan-db)"
fi

# push: concurrent writers of one record all succeed, and every push
# bumps the version exactly once (optimistic concurrency with retries).
expect 0 "$CHANCTL" --chan-db "$DB" push race 0
race_pids=()
for i in $(seq 8); do
    "$CHANCTL" --chan-db "$DB" push race "$i" 2>"$tmp/race.$i" &
    race_pids+=($!)
done
race_failed=0
for p in "${race_pids[@]}"; do
    wait "$p" || race_failed=$((race_failed + 1))
done
check_that "concurrent pushes all succeed ($(cat "$tmp"/race.* 2>/dev/null))" \
    [ "$race_failed" = 0 ]
check_that "concurrent pushes bump the version once each" \
    [ "$(record_version race '')" = 9 ]

# push: the version continues from whatever another client wrote, and a
# record deleted and re-created by another client between pushes is
# updated, not duplicated.
for i in $(seq 5); do
    dbq '{"op":"delete","table":"Record","where":[["key","==","flap"]]},
         {"op":"insert","table":"Record",
          "row":{"key":"flap","value":"0","version":100}}' >/dev/null
    expect 0 "$CHANCTL" --chan-db "$DB" -v push flap 1 &&
        out_is "pushed flap version 101 to all VMs"
done

# ---------------------------------------------------------------------------
# delete.

expect 0 "$CHANCTL" --chan-db "$DB" delete num && out_empty && err_empty
check_that "delete removes the record" [ "$(record_version num '')" = absent ]
expect 1 "$CHANCTL" --chan-db "$DB" delete num &&
    err_has "delete: no record num for all VMs"
expect 0 "$CHANCTL" --chan-db "$DB" -v delete --vm vm1 net/dns &&
    out_is "deleted net/dns from vm1"
check_that "delete --vm leaves the all-VM record" \
    [ "$(record_version net/dns '')" = 2 ]
expect 1 "$CHANCTL" --chan-db "$DB" delete --vm vm1 net/dns &&
    err_has "no record net/dns for vm1" &&
    err_has "net/dns has records for: all VMs (without --vm)"
expect 0 "$CHANCTL" --chan-db "$DB" push --vm vm7 only7 1
expect 1 "$CHANCTL" --chan-db "$DB" delete only7 &&
    err_has "only7 has records for: vm7"
expect 2 "$CHANCTL" --chan-db "$DB" delete '' && err_has "KEY must be 1 to 256"
expect 1 "$CHANCTL" --chan-db "unix:$tmp/nothing.sock" delete k &&
    err_has "cannot connect to unix:$tmp/nothing.sock"
expect 1 "$CHANCTL" --chan-db "unix:$tmp/other.sock" delete k &&
    err_has "serves no database"

# ---------------------------------------------------------------------------
# status.

expect 0 "$CHANCTL" --chan-db "$DB" status && out_is "no channels"
expect 0 "$CHANCTL" --chan-db "$DB" status --json && out_is "[]"
expect 1 "$CHANCTL" --chan-db "$DB" status --vm vm1 &&
    err_has "no channel for VM vm1"
expect 1 "$CHANCTL" --chan-db "unix:$tmp/nothing.sock" status &&
    err_has "cannot connect"
expect 1 "$CHANCTL" --chan-db "unix:$tmp/other.sock" status &&
    err_has "serves no database"

# Start over with a known desired state: all VMs get net/dns v2 and
# app/x v1; vm1 has its own net/dns.  Then write Channel rows the way
# chand-host would.
dbq '{"op":"delete","table":"Record","where":[]}' >/dev/null
"$CHANCTL" --chan-db "$DB" push net/dns '{"servers": []}'
"$CHANCTL" --chan-db "$DB" push net/dns '{"servers": ["10.0.0.9"]}'
"$CHANCTL" --chan-db "$DB" push app/x 1
"$CHANCTL" --chan-db "$DB" push --vm vm1 net/dns '"vm1 dns"'
dbq '{"op":"insert","table":"Record",
      "row":{"key":"broken","value":"{oops","version":1,
             "error":"value is not valid JSON"}}' >/dev/null
dbq '{"op":"insert","table":"Channel","row":{
        "vm":"vm1","chan_id":7,"vid":4094,"interface":"tap-vm1",
        "state":"ready","host_epoch":305419896,"guest_epoch":42,
        "applied":["map",[["app/x",1],["net/dns",1]]],
        "desired_count":2,"applied_count":2,"synced":true,
        "statistics":["map",[["frames_sent",12],["retransmits",1]]]}},
     {"op":"insert","table":"Channel","row":{
        "vm":"vm2","chan_id":8,"vid":4093,"interface":"tap-vm2",
        "state":"connecting","state_reason":"no HELLO from the guest yet",
        "host_epoch":0,"guest_epoch":0,
        "desired_count":2,"applied_count":0,"synced":false,
        "errors":["map",[["big/key","value too large"]]]}}' >/dev/null

expect 0 "$CHANCTL" --chan-db "$DB" status && err_empty
out_has "VM   STATE       APPLIED/DESIRED  SYNCED  HOST_EPOCH"
out_has "vm1  ready       2/2              yes     305419896"
out_has "vm2  connecting  0/2              no      0"
out_has "    reason: no HELLO from the guest yet"
out_has "    error: big/key: value too large"
out_has "Record errors:"
out_has "  broken (all VMs): value is not valid JSON"

expect 0 "$CHANCTL" --chan-db "$DB" status --json
check_that "status --json lists both channels" \
    [ "$(pyget '",".join(c["vm"] for c in j)')" = "vm1,vm2" ]
check_that "status --json has the columns" \
    [ "$(pyget '[j[0][k] for k in ("state","chan_id","vid","interface","host_epoch","guest_epoch","desired_count","applied_count","synced")]')" = "['ready', 7, 4094, 'tap-vm1', 305419896, 42, 2, 2, True]" ]
check_that "status --json has maps" \
    [ "$(pyget '(j[0]["applied"], j[0]["statistics"], j[1]["errors"])')" = "({'app/x': 1, 'net/dns': 1}, {'frames_sent': 12, 'retransmits': 1}, {'big/key': 'value too large'})" ]
check_that "status --json: vm1 has nothing pending" \
    [ "$(pyget 'j[0]["pending"]')" = "[]" ]
check_that "status --json: vm2's pending keys" \
    [ "$(pyget 'sorted((p["key"], p["desired_version"], p["applied_version"]) for p in j[1]["pending"])')" = "[('app/x', 1, None), ('net/dns', 2, None)]" ]
check_that "status --json: record errors" \
    [ "$(pyget 'j[1]["record_errors"]')" = "[{'key': 'broken', 'vm': None, 'error': 'value is not valid JSON'}]" ]
check_that "status --json: state_reason" \
    [ "$(pyget '(j[0]["state_reason"], j[1]["state_reason"])')" = "(None, 'no HELLO from the guest yet')" ]

expect 0 "$CHANCTL" --chan-db "$DB" status --vm vm1
out_has "vm:             vm1"
out_has "state:          ready"
out_has "chan_id:        7"
out_has "vid:            4094"
out_has "interface:      tap-vm1"
out_has "host_epoch:     305419896"
out_has "guest_epoch:    42"
out_has "applied_count:  2"
out_has "desired_count:  2"
out_has "applied map:    2 keys"
out_has "synced:         yes"
out_has "pending:        none"
out_has "  frames_sent: 12"
out_has "  broken (all VMs): value is not valid JSON"
n_checks=$((n_checks + 1))
grep -q '^  app/x: 1$' "$tmp/out" && fail "applied keys listed without -v"
expect 0 "$CHANCTL" --chan-db "$DB" status --vm vm1 -v && out_has "  app/x: 1" &&
    out_has "  net/dns: 1"
expect 0 "$CHANCTL" --chan-db "$DB" status --vm vm2
out_has "state:          connecting (no HELLO from the guest yet)"
out_has "synced:         no"
out_has "pending:        2: "
out_has "app/x (version 1, not applied)"
out_has "  big/key: value too large"
expect 0 "$CHANCTL" --chan-db "$DB" status --vm vm2 --json
check_that "status --vm --json is one object" \
    [ "$(pyget '(j["vm"], j["vid"])')" = "('vm2', 4093)" ]
expect 1 "$CHANCTL" --chan-db "$DB" status --vm vm3 --json &&
    err_has "no channel for VM vm3" && out_empty

# ---------------------------------------------------------------------------
# wait.

expect 0 "$CHANCTL" --chan-db "$DB" wait --vm vm1 --timeout 5 && out_empty
expect 1 "$CHANCTL" --chan-db "$DB" wait --timeout 0.3 &&
    err_has "wait: timed out after 0.3 seconds" &&
    err_has "vm2: state is connecting (no HELLO from the guest yet); not synced (applied 0/2); pending: " &&
    err_has "    error: big/key: value too large"
expect 1 "$CHANCTL" --chan-db "$DB" wait --vm vm2 --timeout 0.2 &&
    err_has "vm2: state is connecting"
expect 1 "$CHANCTL" --chan-db "$DB" wait --vm vm9 --timeout 0.2 &&
    err_has "vm9: no Channel row"
expect 1 "$CHANCTL" --chan-db "unix:$tmp/nothing.sock" wait --timeout 1 &&
    err_has "cannot connect"

# A new version is pending until the Channel row says it was applied,
# even while the row still says synced.
"$CHANCTL" --chan-db "$DB" push --vm vm1 net/dns '"vm1 dns v2"'
expect 1 "$CHANCTL" --chan-db "$DB" wait --vm vm1 --timeout 0.3 &&
    err_has "vm1: pending: net/dns (version 2, applied 1)"
# Channel rows catching up while wait runs: it returns 0.
(sleep 0.5
 dbq '{"op":"update","table":"Channel","where":[["vm","==","vm1"]],
       "row":{"applied":["map",[["app/x",1],["net/dns",2]]]}},
      {"op":"update","table":"Channel","where":[["vm","==","vm2"]],
       "row":{"state":"ready","state_reason":["set",[]],
              "applied":["map",[["app/x",1],["net/dns",2]]],
              "applied_count":2,"synced":true,"errors":["map",[]]}}' \
     >/dev/null) &
updater=$!
expect 0 "$CHANCTL" --chan-db "$DB" wait --timeout 10 && out_empty && err_empty
wait "$updater"
expect 0 "$CHANCTL" --chan-db "$DB" status && out_has "vm2  ready"
# A delete is pending until the guest no longer has the key.
"$CHANCTL" --chan-db "$DB" delete app/x
expect 1 "$CHANCTL" --chan-db "$DB" wait --vm vm2 --timeout 0.2 &&
    err_has "pending: app/x (to delete)"

# ---------------------------------------------------------------------------
# chand-host control socket.

expect 0 "$CHANCTL" --host-ctl "$HOSTCTL" channels && err_empty &&
    out_is "VM   CHAN_ID  VID   STATE
vm1  7        4094  ready"
CHAND_HOST_CTL=$HOSTCTL expect 0 "$CHANCTL" channel-show vm1 &&
    out_is '{"vm": "vm1", "chan_id": 7}'
expect 1 "$CHANCTL" --host-ctl "$HOSTCTL" channel-show vm9 &&
    err_has "chand-host: channel/show: no channel for VM vm9" && out_empty
expect 0 "$CHANCTL" --host-ctl "$HOSTCTL" host list-commands &&
    out_has "channel/show VM"
expect 0 "$CHANCTL" --host-ctl "$HOSTCTL" host vlog/set ANY:dbg && out_empty
expect 0 "$CHANCTL" --host-ctl "$HOSTCTL" host args --json -v -- --vm x &&
    out_is "--json|-v|--|--vm|x"
expect 1 "$CHANCTL" --host-ctl "$HOSTCTL" host no/such &&
    err_has 'chand-host: no/such: "no/such" is not a valid command'
expect 1 "$CHANCTL" --host-ctl "$HOSTCTL" host badreply &&
    err_has "malformed reply"
expect 1 "$CHANCTL" --host-ctl "$HOSTCTL" --timeout 0.5 host hang &&
    err_has "host: timed out after 0.5 seconds"
expect 1 "$CHANCTL" --host-ctl "$tmp/none.ctl" channels &&
    err_has "cannot connect to chand-host control socket $tmp/none.ctl: No such file or directory (is chand-host running? use --host-ctl)"
CHAND_HOST_CTL=$tmp/none.ctl expect 1 "$CHANCTL" channels &&
    err_has "unset CHAND_HOST_CTL"
if [ ! -e /var/run/chand/chand-host.ctl ]; then
    expect 1 "$CHANCTL" channels &&
        err_has "cannot connect to chand-host control socket /var/run/chand/chand-host.ctl"
fi

# chand-guest control socket (the same protocol).
expect 0 "$CHANCTL" --guest-ctl "$GUESTCTL" guest list-commands &&
    out_has "vlog/set SPEC" && err_empty
CHAND_GUEST_CTL=$GUESTCTL expect 0 "$CHANCTL" guest args -x --json &&
    out_is "-x|--json"
expect 1 "$CHANCTL" --guest-ctl "$GUESTCTL" guest no/such &&
    err_has 'chand-guest: no/such: "no/such" is not a valid command'
expect 1 "$CHANCTL" --guest-ctl @chanctl-test-none-$$ guest version &&
    err_has "cannot connect to chand-guest control socket @chanctl-test-none-$$: Connection refused (is chand-guest running? use --guest-ctl)"
CHAND_GUEST_CTL=$tmp/none.ctl expect 1 "$CHANCTL" guest version &&
    err_has "unset CHAND_GUEST_CTL"

# ---------------------------------------------------------------------------
# chand-guest API.

expect 0 "$CHANCTL" --api "$API" get net/dns && err_empty &&
    out_is '{"servers":["10.0.0.1","10.0.0.2"]}'
CHAND_GUEST_API=$API expect 0 "$CHANCTL" get net/ntp && out_is '"pool.ntp.org"'
expect 0 "$CHANCTL" --api "unix:$API" get app/flag && out_is 'true'
expect 1 "$CHANCTL" --api "$API" get nope &&
    err_has "get nope: not found" && out_empty
expect 1 "$CHANCTL" --api "$API" get malformed && err_has "malformed reply"
expect 1 "$CHANCTL" --api "$API" get garbage && err_has "get garbage:"
expect 2 "$CHANCTL" --api "$API" get "$(printf '\xff')" &&
    err_has "not valid UTF-8"

expect 0 "$CHANCTL" --api "$API" list && out_is "$(printf '%s\n' \
    'app/flag	true' \
    'net/dns	{"servers":["10.0.0.1","10.0.0.2"]}' \
    'net/ntp	"pool.ntp.org"')"
expect 0 "$CHANCTL" --api "$API" list net/ && out_has "net/ntp" &&
    check_that "list PREFIX filters" [ "$(wc -l <"$tmp/out")" = 2 ]
expect 0 "$CHANCTL" --api "$API" list zzz/ && out_empty
expect 0 "$CHANCTL" --api "$API" list --json
check_that "list --json is an array of records" \
    [ "$(pyget '[(r["key"], r["version"]) for r in j]')" = "[('app/flag', 7), ('net/dns', 3), ('net/ntp', 1)]" ]

expect 0 "$CHANCTL" --api "$API" --timeout 1.5 watch net/ && err_empty &&
    out_is "$(printf '%s\n' \
        'put	net/dns	4	{"servers":[]}' \
        'delete	net/ntp	-' \
        'put	echo/ok	1	1')"
expect 0 "$CHANCTL" --api "$API" --timeout 1.5 watch --json
check_that "watch --json prints one update per line" \
    [ "$(python3 -c 'import json,sys; print([json.loads(l)["op"] for l in open(sys.argv[1])])' "$tmp/out")" = "['put', 'delete', 'put']" ]
expect 0 "$CHANCTL" --api "$API" --timeout 1.5 watch cur/ &&
    out_has 'current	net/dns	3	{"servers":["10.0.0.1","10.0.0.2"]}'
expect 0 "$CHANCTL" --api "$API" --timeout 1 watch bare/ &&
    out_has 'put	bare/x	1	2'
expect 1 "$CHANCTL" --api "$API" watch close/ &&
    out_has "echo/ok" && err_has "connection closed by chand-guest"
expect 1 "$CHANCTL" --api "$API" watch forbidden/ &&
    err_has "watch: watch refused"

expect 0 "$CHANCTL" --api "$API" guest-status && out_has "state: in-session" &&
    out_has "host_epoch: 123" && out_has "position: 5"
expect 0 "$CHANCTL" --api "$API" guest-status --json
check_that "guest-status --json" [ "$(pyget 'j["position"]')" = 5 ]

expect 1 "$CHANCTL" --api @chanctl-test-none-$$ get k &&
    err_has "cannot connect to chand-guest API unix:@chanctl-test-none-$$: Connection refused (is chand-guest running? use --api)"
CHAND_GUEST_API=$tmp/none.sock expect 1 "$CHANCTL" list &&
    err_has "cannot connect to chand-guest API unix:$tmp/none.sock" &&
    err_has "unset CHAND_GUEST_API"
expect 1 "$CHANCTL" --api "$tmp/none.sock" watch && err_has "cannot connect"
expect 1 "$CHANCTL" --api "$tmp/none.sock" guest-status &&
    err_has "cannot connect"

# ---------------------------------------------------------------------------
# set-connection, get-connection, del-connection, rbac-init, on a Chan DB
# of their own served with --remote=db:Chan,Chan_Global,connections.

expect 2 "$CHANCTL" --chan-db "$DB" set-connection &&
    err_has "missing arguments for 'set-connection'"
expect 2 "$CHANCTL" --chan-db "$DB" set-connection bogus:1 &&
    err_has "'bogus:1' is not a TARGET"
expect 2 "$CHANCTL" --chan-db "$DB" set-connection ptcp:port &&
    err_has "'ptcp:port' is not a TARGET"
expect 2 "$CHANCTL" --chan-db "$DB" set-connection pssl:70000 &&
    err_has "'pssl:70000' is not a TARGET"
expect 2 "$CHANCTL" --chan-db "$DB" set-connection pssl: &&
    err_has "'pssl:' is not a TARGET"
expect 2 "$CHANCTL" --chan-db "$DB" set-connection ptcp:1 ptcp:1 &&
    err_has "TARGET 'ptcp:1' is given twice"
expect 2 "$CHANCTL" --chan-db "$DB" set-connection --inactivity-probe 999 \
    ptcp:1 && err_has "'999' is neither 0 (no probes) nor"
expect 2 "$CHANCTL" --chan-db "$DB" set-connection --inactivity-probe=-1 \
    ptcp:1 && err_has "'-1' is neither 0"
expect 2 "$CHANCTL" --chan-db "$DB" set-connection --inactivity-probe=5s \
    ptcp:1 && err_has "'5s' is neither 0"
expect 2 "$CHANCTL" --chan-db "$DB" set-connection --read-only=yes ptcp:1 &&
    err_has "option '--read-only' takes no value"
expect 2 "$CHANCTL" --chan-db "$DB" set-connection --role= ptcp:1 &&
    err_has "option '--role' needs a nonempty value"
expect 2 "$CHANCTL" --chan-db "$DB" get-connection --role x &&
    err_has "'get-connection' does not take --role"
expect 2 "$CHANCTL" --chan-db "$DB" del-connection ptcp:1 &&
    err_has "too many arguments for 'del-connection'"
expect 2 "$CHANCTL" --chan-db "$DB" rbac-init --read-only &&
    err_has "'rbac-init' does not take --read-only"
expect 2 "$CHANCTL" --chan-db "$DB" push --inactivity-probe 1000 k 1 &&
    err_has "'push' does not take --inactivity-probe"
expect 2 "$CHANCTL" --chan-db "$DB" rbac-init --json &&
    err_has "'rbac-init' does not take --json"

ovsdb-tool create "$tmp/conn.db" "$schema" || exit 1
ovsdb-server --detach --no-chdir --pidfile="$tmp/conn.pid" \
    --remote="punix:$tmp/conn.sock" \
    --remote=db:Chan,Chan_Global,connections --unixctl="$tmp/conn.ctl" \
    --log-file="$tmp/conn.log" "$tmp/conn.db" 2>"$tmp/conn.start" ||
    { cat "$tmp/conn.start" >&2; exit 1; }
CDB=unix:$tmp/conn.sock
conn_count() {
    ovsdb-client transact "$CDB" "[\"Chan\", {\"op\": \"select\",
        \"table\": \"$1\", \"where\": []}]" |
        python3 -c 'import json, sys; print(len(json.load(sys.stdin)[0]["rows"]))'
}
expect 0 "$CHANCTL" --chan-db "$CDB" get-connection && out_empty
expect 0 "$CHANCTL" --chan-db "$CDB" del-connection && out_empty
check_that "del-connection without Chan_Global creates none" \
    [ "$(conn_count Chan_Global)" = 0 ]
expect 0 "$CHANCTL" --chan-db "$CDB" -v set-connection --role chand-host \
    --inactivity-probe 3000 "punix:$tmp/hv.sock" ptcp:0:127.0.0.1 &&
    out_has "connection punix:$tmp/hv.sock role chand-host" &&
    err_has "there is no RBAC role 'chand-host' yet"
check_that "set-connection created the Chan_Global row" \
    [ "$(conn_count Chan_Global)" = 1 ]
expect 0 "$CHANCTL" --chan-db "$CDB" get-connection &&
    out_is "role=\"chand-host\" inactivity-probe=3000 ptcp:0:127.0.0.1
role=\"chand-host\" inactivity-probe=3000 punix:$tmp/hv.sock"
served() { [ -S "$tmp/hv.sock" ]; }
wait_for() {
    local i
    for i in $(seq 50); do "$@" && return 0; sleep 0.1; done
    return 1
}
check_that "ovsdb-server serves the punix: connection" wait_for served
# Again, with other options: the rows are replaced, not added to (the
# same target included).
expect 0 "$CHANCTL" --chan-db "$CDB" set-connection --read-only \
    "punix:$tmp/hv.sock" && err_empty
expect 0 "$CHANCTL" --chan-db "$CDB" get-connection &&
    out_is "read-only punix:$tmp/hv.sock"
check_that "one Connection row is left" [ "$(conn_count Connection)" = 1 ]
expect 0 "$CHANCTL" --chan-db "$CDB" get-connection --json &&
    out_has '"read_only": true' && out_has '"role": ""' &&
    out_has '"inactivity_probe": null' && out_has '"is_connected": false'
expect 0 "$CHANCTL" --chan-db "$CDB" -v del-connection &&
    out_is "deleted connection punix:$tmp/hv.sock"
expect 0 "$CHANCTL" --chan-db "$CDB" get-connection && out_empty
check_that "del-connection leaves no Connection row" \
    [ "$(conn_count Connection)" = 0 ]
not_served() { [ ! -S "$tmp/hv.sock" ]; }
check_that "ovsdb-server no longer serves it" wait_for not_served

expect 0 "$CHANCTL" --chan-db "$CDB" rbac-init &&
    out_is "created role chand-host: writes Channel, Guest_Record, Object, Object_Ref, Record, Record_Set (Channel: only rows whose chassis is the client's certificate CN)"
expect 0 "$CHANCTL" --chan-db "$CDB" rbac-init &&
    out_is "role chand-host is already set up: nothing changed"
check_that "rbac-init made 6 RBAC_Permission rows" \
    [ "$(conn_count RBAC_Permission)" = 6 ]
ovsdb-client transact "$CDB" '["Chan", {"op": "select", "table":
    "RBAC_Permission", "where": [["table", "==", "Channel"]]}]' \
    >"$tmp/perm.json"
check_that "Channel: authorization chassis, insert_delete, no chassis in update" \
    python3 -c '
import json, sys
row = json.load(open(sys.argv[1]))[0]["rows"][0]
upd = row["update"][1]
assert row["authorization"] == "chassis", row
assert row["insert_delete"] is True
assert "chassis" not in upd and "vm" not in upd and "applied" in upd
assert "applied_digest" in upd, upd
assert len(upd) == 22, upd' "$tmp/perm.json"
# Something else changed the role: rbac-init puts it right, once.
dbc() { ovsdb-client transact "$CDB" "[\"Chan\", $1]" >/dev/null; }
dbc '{"op": "mutate", "table": "RBAC_Permission",
      "where": [["table", "==", "Record"]],
      "mutations": [["update", "insert", "key"]]}'
expect 0 "$CHANCTL" --chan-db "$CDB" rbac-init &&
    out_has "replaced the permissions of role chand-host"
expect 0 "$CHANCTL" --chan-db "$CDB" rbac-init &&
    out_has "nothing changed"
check_that "the old RBAC_Permission rows are gone" \
    [ "$(conn_count RBAC_Permission)" = 6 ]
expect 0 "$CHANCTL" --chan-db "$CDB" rbac-init --role other &&
    out_has "created role other"
check_that "another role has rows of its own" \
    [ "$(conn_count RBAC_Permission)" = 12 ]
expect 0 "$CHANCTL" --chan-db "$CDB" rbac-init && out_has "nothing changed"

# ---------------------------------------------------------------------------
# doc/chan-db.md: its `sh` blocks, run in order against an empty Chan DB,
# must all succeed and leave the state the text describes.

doc=$top/doc/chan-db.md
dbq '{"op":"delete","table":"Record","where":[]},
     {"op":"delete","table":"Channel","where":[]},
     {"op":"insert","table":"Channel","row":{
        "vm":"vm1","chan_id":7,"vid":4094,"interface":"tap-vm1",
        "state":"ready","host_epoch":1,"guest_epoch":2,
        "applied":["map",[["net/dns",3]]],
        "desired_count":1,"applied_count":1,"synced":true}}' >/dev/null
mkdir "$tmp/doc"
awk -v dir="$tmp/doc" '
    /^```sh$/ { inb = 1; n++; next }
    /^```/ { inb = 0; next }
    inb { print > (dir "/block." sprintf("%02d", n) ".sh") }' "$doc"
n_blocks=0
for block in "$tmp"/doc/block.*.sh; do
    [ -e "$block" ] || continue
    n_blocks=$((n_blocks + 1))
    DB=$DB expect 0 bash -e -u "$block" || continue
    n_checks=$((n_checks + 1))
    if grep -qE '"error":"|"count":0' "$tmp/out"; then
        fail "doc/chan-db.md block $(basename "$block"): an operation failed"
    fi
    cp "$tmp/out" "$block.out"
done
check_that "doc/chan-db.md has sh blocks" [ "$n_blocks" -ge 8 ]
check_that "doc: net/dns for all VMs is at version 3" \
    [ "$(record_version net/dns '')" = 3 ]
check_that "doc: net/dns for all VMs has the last value" \
    [ "$(record_value net/dns '')" = '{"servers": ["10.0.0.55"]}' ]
check_that "doc: vm1's own net/dns was deleted" \
    [ "$(record_version net/dns vm1)" = absent ]
last_block=$(ls "$tmp"/doc/block.*.sh.out | tail -1)
check_that "doc: the applied-includes select finds vm1" \
    grep -qF '"vm":"vm1"' "$last_block"
expect 0 "$CHANCTL" --chan-db "$DB" wait --vm vm1 --timeout 5

# ---------------------------------------------------------------------------
# chand-host's options for a shared Chan DB: bad values are usage errors
# that name the option, before anything starts.

HOSTD=$build/chand-host/chand-host
expect 2 "$HOSTD" --monitor=bogus
err_has "invalid --monitor 'bogus'"
expect 2 "$HOSTD" --monitor=
err_has "invalid --monitor"
expect 2 "$HOSTD" --chassis=
err_has "invalid --chassis"
run "$HOSTD" --help
out_has "--monitor=WHAT"

# ---------------------------------------------------------------------------

if [ "$n_failed" -ne 0 ]; then
    echo "chanctl.sh: $n_failed of $n_checks checks FAILED" >&2
    exit 1
fi
echo "chanctl.sh: all $n_checks checks passed"
exit 0
