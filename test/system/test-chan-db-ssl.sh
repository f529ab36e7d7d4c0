#!/usr/bin/env bash
# The Chan DB over TLS (doc/operations.md, "The Chan DB over the network"):
# an ovsdb-server of its own serves the Chan DB on pssl: only, with
# certificates made by ovs-pki; chand-host reaches it with --chan-db=ssl:
# (listed after a dead remote) and its own certificate, provisions the VM
# and delivers what chanctl (also over ssl:, with a certificate of its own)
# pushes.  A client with no
# certificate, one signed by another CA, and a plain tcp: client are all
# refused with a clear error; --bootstrap-ca-cert learns the CA from the
# server.  chanctl with several remotes uses the first that answers.
. "$(dirname "$0")/lib.sh"
st_require_root
TOPO_HOST_NS=chst-shv
V1=chst-svm1
PORT=16641
st_up "$V1:111"
st_chanctl wait --timeout 60 || { st_fail "channel not ready"; exit 1; }

in_host() {
    ip netns exec "$TOPO_HOST_NS" "$@"
}
ip -n "$TOPO_HOST_NS" link set lo up

# --- certificates ------------------------------------------------------------
# scripts/lib/cluster.sh's: a CA, and a foreign one ($CL_BASE/rogue).
. "$ST_SRC/scripts/lib/cluster.sh"
cl_pki_ca &&
    cl_pki_sign chan-db &&
    cl_pki_sign host-a &&
    cl_pki_sign operator &&
    cl_pki_ca "$CL_BASE/rogue" &&
    cl_pki_sign intruder "$CL_BASE/rogue" ||
    { st_fail "ovs-pki cannot make the certificates"; exit 1; }
C=$CL_BASE/certs
CACERT=$(cl_cacert)
st_check "ovs-pki made a CA and certificates" \
    test -s "$CACERT" -a -s "$C/chan-db-cert.pem" -a -s "$C/host-a-cert.pem"

# --- a Chan DB served over TLS only ------------------------------------------
DB=$OVSI_BASE/chan-ssl.db
ovsdb-tool create "$DB" "$ST_SRC/ovsdb/chan.ovsschema" ||
    { st_fail "cannot create the Chan DB"; exit 1; }
# Debian's ovsdb-server, built with TLS (a patched Open vSwitch first in
# PATH, test/system/run --ovs=patched, may be built without it); this
# Chan DB server is the same whichever switch the VMs' traffic crosses.
server=/usr/sbin/ovsdb-server client=/usr/bin/ovsdb-client
[ -x "$server" ] || server=ovsdb-server
[ -x "$client" ] || client=ovsdb-client
in_host "$server" "$DB" --remote="pssl:$PORT:127.0.0.1" \
    --private-key="$C/chan-db-privkey.pem" \
    --certificate="$C/chan-db-cert.pem" --ca-cert="$CACERT" \
    --pidfile="$OVSI_BASE/chan-ssl.pid" --log-file="$OVSI_BASE/chan-ssl.log" \
    --unixctl="$OVSI_BASE/chan-ssl.ctl" \
    --detach --no-chdir ||
    { st_fail "cannot start the TLS ovsdb-server"; exit 1; }
trap 'kill "$(cat "$OVSI_BASE/chan-ssl.pid" 2>/dev/null)" 2>/dev/null;
      st_cleanup' EXIT

REMOTE=ssl:127.0.0.1:$PORT
op() {
    in_host "$ST_BUILD/utilities/chanctl" --chan-db="$REMOTE" \
        --private-key="$C/operator-privkey.pem" \
        --certificate="$C/operator-cert.pem" --ca-cert="$CACERT" "$@"
}

# The VM's channel key moves with it (generation 1 in both).
key=$(awk '$1 == 1 { print $2 }' "$TOPO_RUN/$V1/channel.key")
st_check "the VM's key goes into the TLS Chan DB" \
    op key-add --vm "$V1" "$key"

# The hypervisor's name in the Chan DB, as OVN takes it.
st_vsctl set Open_vSwitch . external_ids:system-id=hv-a

# chand-host moves to it.
topo_host_stop
# Two remotes, one of them dead: chand-host connects to the one that
# answers.
TOPO_HOST_ARGS=(--chan-db="ssl:127.0.0.1:1,$REMOTE"
                --private-key="$C/host-a-privkey.pem"
                --certificate="$C/host-a-cert.pem" --ca-cert="$CACERT")
st_check "chand-host starts on the TLS Chan DB" topo_host_start
if op wait --vm "$V1" --timeout 60; then
    st_log "ok: the channel is ready, as the Chan DB over TLS shows"
else
    st_fail "the channel is ready, as the Chan DB over TLS shows"
    tail -20 "$TOPO_RUN/chand-host.log" >&2
fi
chassis_is() {
    in_host "$client" --private-key="$C/operator-privkey.pem" \
        --certificate="$C/operator-cert.pem" --ca-cert="$CACERT" \
        --format=csv --no-headings dump "$REMOTE" Chan Channel chassis |
        grep -qx "\"\\?$1\"\\?"
}
st_check "the Channel row names the chassis that serves it (system-id)" \
    st_wait 30 chassis_is hv-a
st_check "chanctl pushes over ssl:" op push --vm "$V1" motd '"over TLS"'
delivered() {
    [ "$(st_guest "$V1" get motd)" = '"over TLS"' ]
}
st_check "the VM applies it" st_wait 30 delivered

# --- refusals -------------------------------------------------------------------
out=$(in_host "$ST_BUILD/utilities/chanctl" --chan-db="$REMOTE" status 2>&1)
rc=$?
st_log "no certificate: rc $rc: $out"
st_check "a client without a certificate is refused" test "$rc" -ne 0
st_check "and told that TLS needs one" grep -q "TLS needs" <<<"$out"

out=$(in_host "$ST_BUILD/utilities/chanctl" --chan-db="$REMOTE" \
      --private-key="$C/intruder-privkey.pem" \
      --certificate="$C/intruder-cert.pem" \
      --ca-cert="$(cl_rogue_cacert)" status 2>&1)
rc=$?
st_log "another CA: rc $rc: $out"
st_check "a client whose certificate another CA signed is refused" \
    test "$rc" -ne 0
st_check "by the TLS handshake" grep -q "TLS handshake failed" <<<"$out"

out=$(in_host "$ST_BUILD/utilities/chanctl" --chan-db="tcp:127.0.0.1:$PORT" \
      status 2>&1)
rc=$?
st_log "plain tcp: rc $rc: $(head -c 300 <<<"$out")"
st_check "a plain tcp: client gets nothing" test "$rc" -ne 0

# --- bootstrap and several remotes ------------------------------------------------
BOOT=$OVSI_BASE/boot/cacert.pem
mkdir -p "$(dirname "$BOOT")"
boot() {
    in_host "$ST_BUILD/utilities/chanctl" --chan-db="$REMOTE" \
        --private-key="$C/operator-privkey.pem" \
        --certificate="$C/operator-cert.pem" --bootstrap-ca-cert="$BOOT" \
        "$@"
}
boot status >/dev/null 2>&1
fingerprint() {
    openssl x509 -noout -fingerprint -sha256 -in "$1"
}
st_check "--bootstrap-ca-cert saved the server's CA" \
    test "$(fingerprint "$CACERT")" = "$(fingerprint "$BOOT")"
st_check "and the next connection verifies with it" boot status --vm "$V1"
st_check "with several remotes, chanctl uses the first that answers" \
    op --chan-db="tcp:127.0.0.1:1,$REMOTE" status --vm "$V1"
st_exit
