#!/usr/bin/env bash
# The clustered Chan DB takes TLS clients with a certificate of its CA
# only, on every member: a client without a certificate, one whose
# certificate another CA signed, and a plain tcp: client are refused by
# each of the three members (chanctl fails with a clear error, within its
# timeout), and so is a chand-host with another CA's certificate: it never
# gets chan_db_connected and writes no Channel row.  The Raft port takes
# no plain client either.  The valid ones work: the operator on each
# member, hv-a's chand-host, a push that reaches its VM.
. "$(dirname "$0")/lib.sh"
st_require_root
. "$(dirname "$0")/cluster-lib.sh"

trap ct_cleanup EXIT
cl_up || { st_fail "the cluster did not start"; exit 1; }
cl_hv_up hv-a && cl_vm_up hv-a "$CT_V1" 41 ||
    { st_fail "hv-a and its VM did not start"; exit 1; }
ct_converge "hv-a's channel to $CT_V1 is ready" 60 "$CT_V1"

C=$CL_BASE/certs
chanctl_as() {
    # chanctl_as REMOTE TLS-OPTIONS... -- ARGS...: chanctl as anyone, on
    # one remote, from the operator's namespace, 20 s at most.
    local remote=$1
    shift
    cl_op timeout 20 "$ST_BUILD/utilities/chanctl" --timeout 10 \
        --chan-db="$remote" "$@"
}
# refused WHAT OUTPUT-PATTERN REMOTE TLS-OPTIONS...: chanctl status fails,
# before its timeout, with an error that matches OUTPUT-PATTERN.
refused() {
    local what=$1 pattern=$2 out rc
    shift 2
    out=$(chanctl_as "$@" status 2>&1)
    rc=$?
    st_log "$what: rc $rc: $(head -c 300 <<<"$out" | tr '\n' ' ')"
    ct_check "$what: refused" test "$rc" -ne 0 -a "$rc" -ne 124
    ct_check "$what: with a clear error ($pattern)" grep -qi -- "$pattern" <<<"$out"
}
for n in $(seq "$CL_MEMBERS"); do
    M=ssl:10.78.0.$n:$CL_PORT
    refused "member $n, chanctl without a certificate" "TLS needs" "$M" \
        --ca-cert="$(cl_cacert)"
    out=$(cl_op env CL_CERT= CL_KEY= CL_CACERT="$(cl_cacert)" \
          python3 "$CT_TOOL" probe "$M" 2>&1)
    st_log "member $n, a TLS client that presents no certificate: $out"
    ct_check "member $n refuses a TLS client that presents no certificate" \
        grep -q '^refused' <<<"$out"
    refused "member $n, a certificate from another CA" "TLS handshake failed" \
        "$M" --private-key="$C/intruder-privkey.pem" \
        --certificate="$C/intruder-cert.pem" --ca-cert="$(cl_rogue_cacert)"
    # The same client trusting our CA: now the member must refuse it.
    # (TLS 1.3: the server's "unknown ca" alert comes after the client's
    # handshake is done, as "Protocol error" or "Broken pipe"; chanctl
    # names the remote and says what such a refusal means.)
    refused "member $n, another CA's certificate, our CA trusted" \
        "ssl:10.78.0.$n:$CL_PORT: .*refuses a certificate it does not trust" \
        "$M" --private-key="$C/intruder-privkey.pem" \
        --certificate="$C/intruder-cert.pem" --ca-cert="$(cl_cacert)"
    refused "member $n, plain tcp:" "tcp:10.78.0.$n:$CL_PORT" \
        "tcp:10.78.0.$n:$CL_PORT"
    out=$(cl_op env CL_CACERT="$(cl_cacert)" python3 "$CT_TOOL" probe \
          "tcp:10.78.0.$n:$CL_RAFT_PORT" 2>&1)
    st_log "member $n, the Raft port, plain tcp: $out"
    ct_check "member $n's Raft port takes no plain client" \
        grep -q '^refused' <<<"$out"
    ct_check "member $n serves the operator" \
        eval 'chanctl_as "$M" --private-key="$(cl_key operator)" \
        --certificate="$(cl_cert operator)" --ca-cert="$(cl_cacert)" \
        status --vm "$CT_V1" >/dev/null'
    ct_check "member $n's Raft is TLS (cluster/status)" \
        eval 'cl_member_status "$n" | grep -q "^Address: ssl:"'
done

# A hypervisor whose certificate another CA signed (it trusts ours).
cl_pki_sign hv-x "$CL_BASE/rogue" || { st_fail "no foreign certificate"; exit 1; }
cl_hv_up hv-x || { st_fail "hv-x did not start"; exit 1; }
never_connected() {
    local i
    for i in $(seq 40); do
        [ "$(ct_host hv-x chan_db_connected)" = false ] || return 1
        sleep 0.2
    done
}
ct_check "hv-x's chand-host (another CA's certificate) never gets chan_db_connected (10 s)" \
    never_connected
st_log "hv-x's chand-host log: $(grep -m3 'alert\|Broken pipe\|Protocol error' "$CL_BASE/hv-x/chand-host.log" | cut -c1-160 | tr '\n' ' ')"
ct_check "and wrote no Channel row" \
    eval '! ct_tool channels "$(cl_remotes)" | grep -q "\"chassis\": \"hv-x\""'

# The valid ones.
ct_check "hv-a's chand-host is connected" ct_host_connected hv-a
ct_push push --vm "$CT_V1" motd '"over TLS, clustered"'
ct_check_stores "$CT_V1"
st_exit
