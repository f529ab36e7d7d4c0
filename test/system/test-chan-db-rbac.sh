#!/usr/bin/env bash
# Role-based access control on a Chan DB that several hypervisors share
# (doc/operations.md, "The Chan DB over the network"; doc/chan-db.md,
# "Connection, RBAC_Role and RBAC_Permission"): one Chan DB served by
# ovsdb-server with --remote=db:Chan,Chan_Global,connections, a punix:
# remote and a pssl: remote without a role for the operator, and the
# remote that chanctl set-connection --role=chand-host adds for the
# hypervisors; chanctl rbac-init makes the role.  With certificates from
# ovs-pki whose CN is exactly the chassis name (ovs-pki -u), ovsdb-client
# shows what hv-a may do: insert, update and delete its own Channel rows;
# not another chassis's, not move a row to another chassis, not write
# Channel_Key, Relay, VM_Id, Chan_Global, Connection or the RBAC tables; and what
# it still may: read everything (Channel_Key included) and write Record
# rows of any VM.  Then the real chand-host connects as hv-a, with
# --chassis=hv-a and hv-a's certificate.
. "$(dirname "$0")/lib.sh"
st_require_root
command -v ovs-pki >/dev/null ||
    { echo "$ST_NAME: SKIP: needs ovs-pki (Debian: openvswitch-common)" >&2; exit 77; }
TOPO_HOST_NS=chst-rhv
V1=chst-rvm1
PORT=16643                      # hypervisors: role chand-host
OPPORT=16644                    # the operator: no role
st_up "$V1:121"
st_chanctl wait --timeout 60 || { st_fail "channel not ready"; exit 1; }

in_host() {
    ip netns exec "$TOPO_HOST_NS" "$@"
}
ip -n "$TOPO_HOST_NS" link set lo up

# --- certificates ---------------------------------------------------------
# ovsdb-server takes a client's id for RBAC from its certificate's CN.
# "ovs-pki req+sign NAME switch" gives the CN "NAME id:UUID"; with -u
# (--unique: NAME is unique) the CN is NAME itself.  scripts/lib/cluster.sh's
# cl_pki_sign uses -u; plain/hv-a is hv-a's without it (--with-id).
. "$ST_SRC/scripts/lib/cluster.sh"
cl_pki_ca &&
    cl_pki_sign chan-db &&
    cl_pki_sign hv-a &&
    cl_pki_sign hv-b &&
    cl_pki_sign operator &&
    cl_pki_sign --with-id plain/hv-a ||
    { st_fail "ovs-pki cannot make the certificates"; exit 1; }
C=$CL_BASE/certs
CACERT=$(cl_cacert)
cn() {
    openssl x509 -noout -subject -nameopt multiline -in "$1" |
        sed -n 's/^ *commonName *= *//p'
}
st_log "CN with -u: '$(cn "$C/hv-a-cert.pem")'; without: '$(cn "$C/plain/hv-a-cert.pem")'"
st_check "ovs-pki -u req+sign hv-a: the CN is exactly hv-a" \
    test "$(cn "$C/hv-a-cert.pem")" = hv-a
st_check "without -u the CN is 'hv-a id:UUID'" \
    grep -q '^hv-a id:' <<<"$(cn "$C/plain/hv-a-cert.pem")"

# --- the Chan DB, served with roles ------------------------------------------
DB=$OVSI_BASE/chan-rbac.db
ovsdb-tool create "$DB" "$ST_SRC/ovsdb/chan.ovsschema" ||
    { st_fail "cannot create the Chan DB"; exit 1; }
# Debian's ovsdb-server and ovsdb-client, built with TLS (a patched Open
# vSwitch first in PATH may be built without it).
server=/usr/sbin/ovsdb-server client=/usr/bin/ovsdb-client
[ -x "$server" ] || server=ovsdb-server
[ -x "$client" ] || client=ovsdb-client
in_host "$server" "$DB" --remote="punix:$OVSI_BASE/rbac.sock" \
    --remote="pssl:$OPPORT:127.0.0.1" \
    --remote=db:Chan,Chan_Global,connections \
    --private-key="$C/chan-db-privkey.pem" \
    --certificate="$C/chan-db-cert.pem" --ca-cert="$CACERT" \
    --pidfile="$OVSI_BASE/rbac.pid" --log-file="$OVSI_BASE/rbac.log" \
    --unixctl="$OVSI_BASE/rbac.ctl" --detach --no-chdir ||
    { st_fail "cannot start the ovsdb-server"; exit 1; }
trap 'kill "$(cat "$OVSI_BASE/rbac.pid" 2>/dev/null)" 2>/dev/null;
      st_cleanup' EXIT

# The operator: chanctl on the punix: remote (no role, no certificate).
op() {
    in_host "$ST_BUILD/utilities/chanctl" \
        --chan-db="unix:$OVSI_BASE/rbac.sock" "$@"
}
st_check "chanctl set-connection --role=chand-host pssl:" \
    op set-connection --role=chand-host --inactivity-probe=10000 \
    "pssl:$PORT:127.0.0.1"
out=$(op get-connection)
st_log "get-connection: $out"
st_check "get-connection shows it" test "$out" = \
    "role=\"chand-host\" inactivity-probe=10000 pssl:$PORT:127.0.0.1"
out=$(op rbac-init)
st_log "rbac-init: $out"
st_check "chanctl rbac-init creates the role" grep -q "^created role chand-host" <<<"$out"
out=$(op rbac-init)
st_check "a second rbac-init changes nothing and says so" \
    test "$out" = "role chand-host is already set up: nothing changed"

# ovsdb-client transact over ssl: as WHO (hv-a, hv-b, operator, plain/hv-a),
# on the chand-host remote (the operator: its own).  Prints the result.
REMOTE=ssl:127.0.0.1:$PORT
tx() {
    local who=$1 remote=$REMOTE
    [ "$who" = operator ] && remote=ssl:127.0.0.1:$OPPORT
    in_host timeout 20 "$client" --private-key="$C/$who-privkey.pem" \
        --certificate="$C/$who-cert.pem" --ca-cert="$CACERT" \
        transact "$remote" "[\"Chan\", $2]" 2>&1
}
# ok WHO OPS: every operation succeeded (ovsdb-client exits 0 even when
# an operation fails: look at the result).
ok() {
    local out
    out=$(tx "$1" "$2")
    st_log "  $1: $(head -c 300 <<<"$out")"
    [[ $out == '[{'* ]] && ! grep -q '"error"' <<<"$out"
}
# denied WHO OPS WHAT: the transaction failed with the RBAC error for WHO
# (named by its certificate's CN) and "prohibit WHAT".
denied() {
    local out id
    out=$(tx "$1" "$2")
    id=$(cn "$C/$1-cert.pem")
    st_log "  $1: $(head -c 300 <<<"$out")"
    grep -q '"error":"permission error"' <<<"$out" &&
        grep -qF "RBAC rules for client \\\"$id\\\" role \\\"chand-host\\\" prohibit $3" <<<"$out"
}
# Wait until the hypervisors' remote answers.
listening() {
    tx hv-a '{"op": "select", "table": "Chan_Global", "where": []}' |
        grep -q '"rows"'
}
st_check "ovsdb-server serves the pssl: connection" st_wait 20 listening

channel() {     # channel VM CHASSIS [CHAN_ID]: a Channel row
    printf '{"vm": "%s", "chassis": "%s", "chan_id": %s, "state": "down"}' \
        "$1" "$2" "${3:-1}"
}
where() {       # where VM CHASSIS: that row
    printf '[["vm", "==", "%s"], ["chassis", "==", "%s"]]' "$1" "$2"
}

# --- a host's own rows ---------------------------------------------------------
st_check "hv-b inserts its Channel row (chassis hv-b)" \
    ok hv-b "{\"op\": \"insert\", \"table\": \"Channel\", \"row\": $(channel vm-b hv-b 2)}"
st_check "hv-a inserts its Channel row (chassis hv-a)" \
    ok hv-a "{\"op\": \"insert\", \"table\": \"Channel\", \"row\": $(channel vm-a hv-a 1)}"
# Every column chand-host writes but vm and chassis (chandb.c: the
# Channel row, and the upstream position with the Guest_Record rows).
st_check "hv-a updates it, in every column chand-host writes but vm and chassis" \
    ok hv-a "{\"op\": \"update\", \"table\": \"Channel\", \"where\": $(where vm-a hv-a),
             \"row\": {\"chan_id\": 1, \"vid\": 4094, \"interface\": \"tap-a\",
                     \"state\": \"ready\", \"state_reason\": [\"set\", []],
                     \"host_epoch\": 3, \"guest_epoch\": 2,
                     \"applied\": [\"map\", [[\"k\", 1]]], \"applied_seq\": 4,
                     \"desired_count\": 1, \"applied_count\": 1, \"synced\": true,
                     \"statistics\": [\"map\", [[\"frames_sent\", 9]]],
                     \"errors\": [\"map\", []], \"claim\": 1, \"sent_seq\": 4,
                     \"sent\": [\"map\", [[\"k\", 1]]]}},
             {\"op\": \"update\", \"table\": \"Channel\", \"where\": $(where vm-a hv-a),
             \"row\": {\"up_epoch\": 1, \"up_position\": 5, \"published_count\": 0}}"
st_check "hv-a mutates it" \
    ok hv-a "{\"op\": \"mutate\", \"table\": \"Channel\", \"where\": $(where vm-a hv-a),
             \"mutations\": [[\"migrations\", \"+=\", 1]]}"
st_check "hv-b updates its own row" \
    ok hv-b "{\"op\": \"update\", \"table\": \"Channel\", \"where\": $(where vm-b hv-b),
             \"row\": {\"state\": \"connecting\"}}"
st_check "hv-a inserts and deletes another row of its own" \
    ok hv-a "{\"op\": \"insert\", \"table\": \"Channel\", \"row\": $(channel vm-a2 hv-a 3)},
             {\"op\": \"delete\", \"table\": \"Channel\", \"where\": $(where vm-a2 hv-a)}"

# --- another host's rows ---------------------------------------------------------
st_check "hv-a cannot update hv-b's row" \
    denied hv-a "{\"op\": \"update\", \"table\": \"Channel\", \"where\": $(where vm-b hv-b),
                 \"row\": {\"state\": \"degraded\"}}" \
    'modification of table \"Channel\"'
st_check "hv-a cannot update hv-b's row by vm alone" \
    denied hv-a '{"op": "update", "table": "Channel", "where": [["vm", "==", "vm-b"]],
                 "row": {"state": "degraded"}}' \
    'modification of table \"Channel\"'
st_check "nor every row" \
    denied hv-a '{"op": "update", "table": "Channel", "where": [],
                 "row": {"synced": false}}' \
    'modification of table \"Channel\"'
st_check "hv-a cannot mutate hv-b's row" \
    denied hv-a "{\"op\": \"mutate\", \"table\": \"Channel\", \"where\": $(where vm-b hv-b),
                 \"mutations\": [[\"claim\", \"+=\", 1]]}" \
    'mutate operation on table \"Channel\"'
st_check "hv-a cannot delete hv-b's row" \
    denied hv-a "{\"op\": \"delete\", \"table\": \"Channel\", \"where\": $(where vm-b hv-b)}" \
    'row deletion from table \"Channel\"'
st_check "hv-a cannot insert a row naming hv-b" \
    denied hv-a "{\"op\": \"insert\", \"table\": \"Channel\", \"row\": $(channel vm-c hv-b 4)}" \
    'row insertion into table \"Channel\"'
st_check "hv-a cannot move its own row to hv-b (chassis)" \
    denied hv-a "{\"op\": \"update\", \"table\": \"Channel\", \"where\": $(where vm-a hv-a),
                 \"row\": {\"chassis\": \"hv-b\"}}" \
    'modification of table \"Channel\"'
st_check "hv-a cannot rename its own row's vm" \
    denied hv-a "{\"op\": \"update\", \"table\": \"Channel\", \"where\": $(where vm-a hv-a),
                 \"row\": {\"vm\": \"vm-b\"}}" \
    'modification of table \"Channel\"'
rows() {        # VM,CHASSIS,STATE of every Channel row, as the operator sees it
    in_host "$client" transact "unix:$OVSI_BASE/rbac.sock" \
        '["Chan", {"op": "select", "table": "Channel", "where": []}]' |
        python3 -c '
import json, sys
rows = json.load(sys.stdin)[0]["rows"]
print(" ".join(sorted("%s,%s,%s" % (r["vm"], r["chassis"], r["state"])
                      for r in rows)))'
}
out=$(rows)
st_log "Channel rows: $out"
st_check "the rows are as hv-a and hv-b left them" \
    test "$out" = "vm-a,hv-a,ready vm-b,hv-b,connecting"

# --- the tables a host may not write -----------------------------------------
op key-add --vm vm-b >/dev/null || st_fail "the operator adds vm-b's key"
st_check "hv-a cannot write Channel_Key" \
    denied hv-a '{"op": "insert", "table": "Channel_Key", "row": {"vm": "vm-a",
                 "generation": 9, "key": "00"}}' \
    'row insertion into table \"Channel_Key\"'
st_check "nor change a key" \
    denied hv-a '{"op": "update", "table": "Channel_Key", "where": [],
                 "row": {"key": "00"}}' \
    'modification of table \"Channel_Key\"'
st_check "hv-a cannot write Relay" \
    denied hv-a '{"op": "insert", "table": "Relay", "row": {"prefix": "x/",
                 "to": "all"}}' \
    'row insertion into table \"Relay\"'
op id-set --vm vm-a platform-id:1 >/dev/null ||
    st_fail "the operator gives vm-a a platform id"
st_check "hv-a cannot write VM_Id (platform ids)" \
    denied hv-a '{"op": "insert", "table": "VM_Id", "row": {"vm": "vm-a",
                 "kind": "platform-id", "id": "2"}}' \
    'row insertion into table \"VM_Id\"'
st_check "nor retire an id" \
    denied hv-a '{"op": "update", "table": "VM_Id", "where": [],
                 "row": {"retired": 1}}' \
    'modification of table \"VM_Id\"'
st_check "nor delete one" \
    denied hv-a '{"op": "delete", "table": "VM_Id", "where": []}' \
    'row deletion from table \"VM_Id\"'
st_check "hv-a cannot write Chan_Global" \
    denied hv-a '{"op": "update", "table": "Chan_Global", "where": [],
                 "row": {"guest_limits": ["map", [["max_records", 1]]]}}' \
    'modification of table \"Chan_Global\"'
st_check "hv-a cannot widen its rights (RBAC_Permission)" \
    denied hv-a '{"op": "mutate", "table": "RBAC_Permission",
                 "where": [["table", "==", "Channel"]],
                 "mutations": [["update", "insert", "chassis"]]}' \
    'mutate operation on table \"RBAC_Permission\"'
st_check "nor give itself a role row" \
    denied hv-a '{"op": "insert", "table": "RBAC_Role", "row": {"name": "x"}}' \
    'row insertion into table \"RBAC_Role\"'
st_check "nor change its connection (Connection)" \
    denied hv-a '{"op": "update", "table": "Connection", "where": [],
                 "row": {"role": ""}}' \
    'modification of table \"Connection\"'

# --- what a host still may (doc/operations.md: known limits) ------------------
# RBAC restricts writes only: a host reads every table, every VM's keys
# included.
out=$(tx hv-a '{"op": "select", "table": "Channel_Key", "where": [["vm", "==", "vm-b"]]}')
st_check "hv-a can read Channel_Key, vm-b's key included (RBAC restricts writes only)" \
    grep -q '"key":"[0-9a-f]\{64\}"' <<<"$out"
# Record, Guest_Record, Object and Object_Ref are not scoped per chassis.
st_check "hv-a can write a Record for any VM (not scoped per chassis)" \
    ok hv-a '{"op": "insert", "table": "Record", "row": {"key": "from/x",
             "vm": "vm-b", "value": "1", "version": 1}}'
st_check "and a Guest_Record of another host's VM" \
    ok hv-a '{"op": "insert", "table": "Guest_Record", "row": {"vm": "vm-b",
             "key": "k", "value": "1", "version": 1, "updated": 1}}'

# --- the CN is the whole id -------------------------------------------------------
st_check "a certificate whose CN is 'hv-a id:UUID' cannot write hv-a's rows" \
    denied plain/hv-a "{\"op\": \"insert\", \"table\": \"Channel\", \"row\": $(channel vm-p hv-a 5)}" \
    'row insertion into table \"Channel\"'
out=$(tx plain/hv-a "{\"op\": \"insert\", \"table\": \"Channel\", \"row\": $(channel vm-p hv-a 5)}")
st_check "ovsdb-server names it by its CN" \
    grep -q 'RBAC rules for client \\"hv-a id:' <<<"$out"

# --- the operator is not restricted -------------------------------------------------
st_check "a client on a remote without a role (the operator's pssl:) writes anything" \
    ok operator "{\"op\": \"update\", \"table\": \"Channel\", \"where\": $(where vm-b hv-b),
                 \"row\": {\"chassis\": \"hv-c\"}},
                 {\"op\": \"delete\", \"table\": \"Channel\", \"where\": [[\"vm\", \"==\", \"vm-b\"]]},
                 {\"op\": \"delete\", \"table\": \"Record\", \"where\": []},
                 {\"op\": \"delete\", \"table\": \"Guest_Record\", \"where\": []}"

# --- the real chand-host as hv-a --------------------------------------------------------
# The VM's channel key moves with it (generation 1 in both).
key=$(awk '$1 == 1 { print $2 }' "$TOPO_RUN/$V1/channel.key")
st_check "the VM's key goes into the RBAC Chan DB" \
    op key-add --vm "$V1" "$key" >/dev/null
topo_host_stop
TOPO_HOST_ARGS=(--chan-db="$REMOTE" --chassis=hv-a
                --private-key="$C/hv-a-privkey.pem"
                --certificate="$C/hv-a-cert.pem" --ca-cert="$CACERT")
st_check "chand-host starts as hv-a on the chand-host remote" topo_host_start
connected() {
    st_output_has '"chan_db_connected": true' st_chanctl host host/status
}
st_check "chand-host: chan_db_connected" st_wait 30 connected
v1_row() {
    [[ " $(rows) " == *" $V1,hv-a,"* ]]
}
st_check "chand-host inserts its Channel row (chassis hv-a)" st_wait 30 v1_row
st_check "the operator pushes; chand-host delivers" \
    op push --vm "$V1" motd '"under RBAC"'
delivered() {
    [ "$(st_guest "$V1" get motd)" = '"under RBAC"' ]
}
st_check "the VM applies it" st_wait 30 delivered

# chand-host updates its row without vm and chassis (a role may update
# its rows but not rename them), so nothing it writes is refused.
st_check "Channel.applied shows the push (chand-host updates its row)" \
    op wait --vm "$V1" --timeout 15
n_denied=$(grep -c 'RBAC rules' "$TOPO_RUN/chand-host.log")
st_check "none of chand-host's writes is refused ($n_denied refused)" \
    test "$n_denied" = 0
st_exit
