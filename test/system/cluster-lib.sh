# test/system/cluster-lib.sh -- shared by test/system/test-cluster-*.sh:
# the clustered Chan DB over TLS (scripts/lib/cluster.sh), hypervisors hv-a
# and hv-b with two VMs each, pushes with their history, exact checks.
#
# Sourced after lib.sh (and st_require_root).  Namespaces: chst-c*.

if ! command -v ovs-pki >/dev/null; then
    echo "$ST_NAME: SKIP: needs ovs-pki (Debian: openvswitch-common)" >&2
    exit 77
fi
CT_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CT_TOOL=$CT_HERE/cluster-tool.py
. "$ST_SRC/scripts/lib/cluster.sh"
CL_NS=chst-c
# The single-hypervisor globals of lib.sh stay unused (st_cleanup finds
# nothing of theirs to remove).
TOPO_HOST_NS=
TOPO_RUN=$CL_BASE/none

# VMs: vm1 and vm2 on hv-a, vm3 and vm4 on hv-b.
CT_V1=chst-cvm1 CT_V2=chst-cvm2 CT_V3=chst-cvm3 CT_V4=chst-cvm4
CT_VMS=("$CT_V1" "$CT_V2" "$CT_V3" "$CT_V4")

ct_cleanup() {
    if [ "$ST_FAILED" != 0 ] || [ "${CHAND_KEEP_LOGS:-0}" = 1 ]; then
        cl_dump_logs
    fi
    cl_down >/dev/null 2>&1
    st_cleanup
}

# ct_up: the cluster, hv-a with vm1 and vm2, hv-b with vm3 and vm4, every
# channel ready.
ct_up() {
    trap ct_cleanup EXIT
    ct_log "certificates, network, 3-member cluster"
    cl_up || { st_fail "the cluster did not start"; exit 1; }
    ct_log "cluster up, leader: member $(cl_leader)"
    cl_hv_up hv-a || { st_fail "hv-a did not start"; exit 1; }
    cl_hv_up hv-b || { st_fail "hv-b did not start"; exit 1; }
    cl_vm_up hv-a "$CT_V1" 31 && cl_vm_up hv-a "$CT_V2" 32 &&
        cl_vm_up hv-b "$CT_V3" 33 && cl_vm_up hv-b "$CT_V4" 34 ||
        { st_fail "the VMs did not start"; exit 1; }
    # Per VM: "chanctl wait" alone does not wait for a row not written yet.
    if ct_converge "" 60 "${CT_VMS[@]}" >/dev/null 2>&1; then
        ct_log "up: hv-a ($CT_V1 $CT_V2), hv-b ($CT_V3 $CT_V4), channels ready"
    else
        cl_chanctl status >&2
        st_fail "channels not ready after setup"
        exit 1
    fi
}

CT_T0=$(date +%s.%N)
ct_log() {
    st_log "[$(awk -v a="$CT_T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')s] $*"
}

ct_check() {
    local what=$1
    shift
    if "$@"; then
        ct_log "ok: $what"
    else
        st_fail "$what"
    fi
}

# ct_tool ARGS...: cluster-tool.py as the operator (its namespace and
# certificate).
ct_tool() {
    cl_op env CL_KEY="$(cl_key operator)" CL_CERT="$(cl_cert operator)" \
        CL_CACERT="$(cl_cacert)" python3 "$CT_TOOL" "$@"
}

# ct_bulk NAME SEED N BATCH PAUSE VM...: N operations on keys NAME/* in
# transactions of BATCH, aimed at the VMs or all, logged in push-NAME.log.
ct_bulk() {
    local name=$1
    shift
    ct_tool bulk "$(cl_remotes)" "$OVSI_BASE/push-$name.log" "$name/" "$@"
}

# ct_push ARGS...: chanctl push/delete ARGS on the cluster, logged in
# push-chanctl.log.
ct_push() {
    cl_chanctl "$@" >/dev/null || { st_fail "chanctl $*"; return 1; }
    printf '%s\n' "$(printf '%q ' "$@")" >>"$OVSI_BASE/push-chanctl.log"
}

# ct_host HV PATH...: members of HV's host/status, "-" if absent.
ct_host() {
    local hv=$1
    shift
    cl_host_status "$hv" 2>/dev/null | python3 "$CT_HERE/fault-tool.py" \
        json-get "$@"
}

# ct_host_member HV: the Chan DB remote HV's chand-host is on (host/status
# chan_db.remote; else the last it connected to, from its log).
ct_host_member() {
    local r
    r=$(ct_host "$1" chan_db.remote)
    case $r in
        ssl:* | tcp:*) printf '%s\n' "$r" ;;
        *) sed -n 's/.*ovsdb_replica|INFO|Chan: connected to //p' \
               "$CL_BASE/$1/chand-host.log" | tail -1 ;;
    esac
}

# ct_channel VM PATH...: members of chand-host's view of VM's channel
# (channel/show on the hypervisor VM is on), "-" if absent.
ct_channel() {
    local vm=$1
    shift
    CHAND_HOST_CTL=$(cl_host_ctl "$(cl_vm_at "$vm")") \
        "$ST_BUILD/utilities/chanctl" channel-show "$vm" 2>/dev/null |
        python3 "$CT_HERE/fault-tool.py" json-get "$@"
}

ct_host_connected() {
    [ "$(ct_host "$1" chan_db_connected)" = true ]
}

# ct_converge WHAT [TIMEOUT] [VM...]: the channels (all, or these) ready
# and in sync (chanctl wait; with VMs named, also a VM whose Channel row
# is not written yet).
CT_WAIT=90
ct_converge() {
    local what=$1 timeout=${2:-$CT_WAIT} out vm rc=0
    shift 2 2>/dev/null || shift $#
    if [ $# -eq 0 ]; then
        out=$(cl_chanctl wait --timeout "$timeout" 2>&1) || rc=1
    else
        for vm in "$@"; do
            out=$(cl_chanctl wait --vm "$vm" --timeout "$timeout" 2>&1) ||
                { rc=1; break; }
        done
    fi
    if [ $rc = 0 ]; then
        [ -z "$what" ] || ct_log "ok: $what"
    else
        printf '%s\n' "$out" | head -8 >&2
        st_fail "$what"
        CT_WAIT=10
    fi
    return $rc
}

# ct_expect VM...: the desired state from every push log so far, in
# expect.json.
ct_expect() {
    local logs=("$OVSI_BASE"/push-*.log)
    ct_tool expect "${logs[@]}" -- "$@" >"$OVSI_BASE/expect.json"
}

# ct_check_stores VM...: each VM's datastore holds exactly the desired
# records (keys, values, versions) -- within CT_STORE_WAIT seconds (default
# 30: a Channel row may say "synced" for a while after its chand-host
# died) -- and the Chan DB the committed pushes.
ct_check_stores() {
    local vm out
    ct_expect "${CT_VMS[@]}" || { st_fail "no desired state"; return 1; }
    ct_log "$(cat "$OVSI_BASE"/push-*.log | wc -l) operations committed in all"
    if out=$(ct_tool chandb-check "$(cl_remotes)" "$OVSI_BASE/expect.json" \
             "${CT_VMS[@]}"); then
        ct_log "ok: $out"
    else
        printf '%s\n' "$out" >&2
        st_fail "the Chan DB's records are the committed pushes"
    fi
    for vm in "$@"; do
        if st_wait "${CT_STORE_WAIT:-30}" ct_store_is "$vm"; then
            ct_log "ok: $(ct_store_is "$vm")"
        else
            ct_store_is "$vm" >&2
            st_fail "$vm's datastore is exactly the desired state"
        fi
    done
}

# ct_store_is VM: VM's datastore is exactly expect.json's (ct_expect).
ct_store_is() {
    python3 "$CT_TOOL" compare "$OVSI_BASE/expect.json" "$1" "$(cl_vm_db "$1")"
}
