#!/usr/bin/env bash
# The chand-host Debian package's chan-db-serve (debian/scripts/, run by
# chand-host.service before chand-host) against a real ovsdb-server of its
# own: with no DB-FILE it does nothing; it creates the Chan DB file from the
# schema and has ovsdb-server serve it (chanctl then writes to it); run
# again it changes nothing and the data stays; a Chan DB file of an older
# schema is converted before it is served, and so is one the server
# already serves, rows kept; with no ovsdb-server answering it says so and
# fails.
. "$(dirname "$0")/lib.sh"
st_require_root
SERVE=$ST_SRC/debian/scripts/chan-db-serve
export CHAND_SCHEMA=$ST_SRC/ovsdb/chan.ovsschema
VSCHEMA=${OVSI_SCHEMA:-/usr/share/openvswitch/vswitch.ovsschema}
CHANCTL=$ST_BUILD/utilities/chanctl
new_version=$(ovsdb-tool schema-version "$CHAND_SCHEMA")

mkdir -p "$OVSI_BASE"
servers=()
cleanup() {
    local pid
    for pid in "${servers[@]}"; do
        kill "$pid" 2>/dev/null
    done
    [ "$ST_FAILED" != 0 ] && tail -n 20 "$OVSI_BASE"/*/ovsdb-server.log >&2
    rm -rf "$OVSI_BASE"
}
trap cleanup EXIT

# start_server DIR [DB...]: an ovsdb-server with the Open_vSwitch DB (and
# the DBs given), its socket, pidfile and control socket in DIR.
start_server() {
    local dir=$1
    shift
    mkdir -p "$dir"
    ovsdb-tool create "$dir/conf.db" "$VSCHEMA" &&
        OVS_RUNDIR=$dir ovsdb-server "$dir/conf.db" "$@" \
            --remote="punix:$dir/db.sock" \
            --pidfile="$dir/ovsdb-server.pid" \
            --log-file="$dir/ovsdb-server.log" -vconsole:off \
            --detach --no-chdir &&
        servers+=("$(cat "$dir/ovsdb-server.pid")")
}

# serve DIR [DB-FILE]: chan-db-serve against DIR's ovsdb-server.
serve() {
    OVS_RUNDIR=$1 "$SERVE" ${2+"$2"}
}

dbs() {                 # DIR: the databases DIR's server serves, but _Server.
    ovsdb-client list-dbs "unix:$1/db.sock" | grep -vx _Server | sort |
        tr '\n' ' '
}

# old_schema FILE: the Chan DB schema at version 1.5.0, without Record_Set
# and VM_Id (as before 1.6.0).
old_schema() {
    python3 - "$CHAND_SCHEMA" "$1" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
s["version"] = "1.5.0"
s["tables"].pop("Record_Set")
s["tables"].pop("VM_Id")
json.dump(s, open(sys.argv[2], "w"))
PY
}

# --- a fresh Chan DB ---------------------------------------------------------
A=$OVSI_BASE/a
start_server "$A" || { st_fail "ovsdb-server did not start"; exit 1; }
st_check "no DB-FILE: does nothing" serve "$A"
st_check "only Open_vSwitch served" test "$(dbs "$A")" = "Open_vSwitch "
out=$(serve "$A" "$A/chan.db" 2>&1)
st_check "creates and adds the file: $out" \
    sh -c 'test -f "$1" && printf %s "$2" | grep -q "creating $1"' _ \
    "$A/chan.db" "$out"
st_check "Chan served next to Open_vSwitch" test "$(dbs "$A")" = "Chan Open_vSwitch "
st_check "chanctl writes to it" \
    "$CHANCTL" --chan-db="unix:$A/db.sock" push --vm vm1 k1 '"v1"'
st_check "again: nothing to do" serve "$A" "$A/chan.db"
st_check "the record is still there" sh -c \
    'ovsdb-client dump "unix:$1/db.sock" Chan Record key value | grep -q k1' _ "$A"

# --- a file of an older schema, not served yet --------------------------------
B=$OVSI_BASE/b
old_schema "$OVSI_BASE/old.ovsschema"
ovsdb-tool create "$OVSI_BASE/old.db" "$OVSI_BASE/old.ovsschema" &&
    ovsdb-tool transact "$OVSI_BASE/old.db" \
        '["Chan",{"op":"insert","table":"Record","row":{"key":"old","value":"1","vm":"vm1"}}]' \
        >/dev/null || st_fail "making a Chan DB of schema 1.5.0"
cp "$OVSI_BASE/old.db" "$OVSI_BASE/old2.db"
start_server "$B" || { st_fail "second ovsdb-server did not start"; exit 1; }
out=$(serve "$B" "$OVSI_BASE/old.db" 2>&1)
st_check "converts the file, then serves it: $out" \
    sh -c 'printf %s "$1" | grep -q "converting" && printf %s "$1" | grep -q "adding"' _ "$out"
st_check "served at schema $new_version" test \
    "$(ovsdb-client get-schema-version "unix:$B/db.sock" Chan)" = "$new_version"
st_check "its row kept" sh -c \
    'ovsdb-client dump "unix:$1/db.sock" Chan Record key | grep -q old' _ "$B"

# --- an older Chan DB the server already serves --------------------------------
C=$OVSI_BASE/c
start_server "$C" "$OVSI_BASE/old2.db" || { st_fail "third ovsdb-server did not start"; exit 1; }
st_check "the server has schema 1.5.0" test \
    "$(ovsdb-client get-schema-version "unix:$C/db.sock" Chan)" = 1.5.0
out=$(serve "$C" "$OVSI_BASE/unused.db" 2>&1)
st_check "converts the served Chan DB: $out" \
    sh -c 'printf %s "$1" | grep -q "converting the served Chan DB"' _ "$out"
st_check "now at schema $new_version" test \
    "$(ovsdb-client get-schema-version "unix:$C/db.sock" Chan)" = "$new_version"
st_check "no file made for it" test ! -e "$OVSI_BASE/unused.db"
st_check "its row kept" sh -c \
    'ovsdb-client dump "unix:$1/db.sock" Chan Record key | grep -q old' _ "$C"

# --- no ovsdb-server -------------------------------------------------------------
mkdir -p "$OVSI_BASE/none"
rc=0
out=$(serve "$OVSI_BASE/none" "$OVSI_BASE/none/chan.db" 2>&1) || rc=$?
st_check "no server: fails, says so ($out)" \
    sh -c 'test "$1" != 0 && printf %s "$2" | grep -q "does not answer"' _ "$rc" "$out"
st_check "no file made" test ! -e "$OVSI_BASE/none/chan.db"
st_exit
