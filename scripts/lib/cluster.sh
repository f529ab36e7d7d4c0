# scripts/lib/cluster.sh -- a clustered Chan DB over TLS and several
# hypervisors, all in network namespaces on this machine: shared by the
# system tests (test/system/test-cluster-*.sh), scripts/demo cluster and the
# benchmark.
#
# Sourced after scripts/ovs-instance.sh and scripts/lib/topology.sh (and
# after setting TOPO_BIN or TOPO_INSTALLED, and TOPO_SRC, as for them).
#
#   the network   namespace $CL_NS"net" holds a Linux bridge (br0) and is
#                 the operator's place (chanctl, ovsdb-client): 10.78.0.254;
#   the Chan DB   $CL_MEMBERS (default 3) ovsdb-server processes, Debian's
#                 (built with TLS), each in namespace $CL_NS"dbN" at
#                 10.78.0.N, one Raft cluster (ovsdb-tool create-cluster /
#                 join-cluster) whose Raft traffic is TLS too (ssl:
#                 10.78.0.N:$CL_RAFT_PORT), clients on pssl:$CL_PORT only;
#   hypervisors   each an instance of scripts/lib/topology.sh (its own
#                 TOPO_HOST, TOPO_HOST_NS = $CL_NS"HV", TOPO_RUN =
#                 $CL_BASE/HV), attached to the network at 10.78.0.(10+i),
#                 chand-host on the cluster over ssl: with a certificate
#                 whose CN is the chassis name (--chassis=HV, and the
#                 Open_vSwitch DB's external_ids:system-id=HV too);
#   certificates  ovs-pki: one CA ($CL_BASE/pki), a certificate per member
#                 (dbN), per hypervisor (its name) and for the operator
#                 ("operator"), every CN exactly that name (ovs-pki -u);
#                 and a foreign CA ($CL_BASE/rogue) with one certificate
#                 ("intruder"), for the refusal tests.  Files:
#                 $CL_BASE/certs/NAME-{privkey,cert}.pem, cl_cacert.
#
# Settings (before cl_net_up):
#   CL_BASE       directory for everything (default $OVSI_BASE/cl)
#   CL_NS         prefix of the namespaces (default chst-c: the system
#                 tests' own; scripts/demo uses cl-)
#   CL_MEMBERS    number of Chan DB members (default 3)
#   CL_PORT, CL_RAFT_PORT   client and Raft ports (default 6641, 6643)
#   CL_SERVER_ARGS  (optional) array of extra ovsdb-server options for the
#                 members, e.g. --remote=db:Chan,Chan_Global,connections
#
# Functions (all return non-zero with a message on stderr on failure):
#   cl_up                   network, certificates, cluster with a leader
#   cl_net_up / cl_pki_up / cl_cluster_up   the three parts of cl_up
#   cl_pki_ca [PKI_DIR]     a CA (cl_pki_up makes $CL_BASE/pki and the
#                           foreign one, $CL_BASE/rogue)
#   cl_pki_sign [--with-id] NAME [PKI_DIR]   a certificate for NAME (see
#                           there); cl_key NAME / cl_cert NAME its files
#   cl_remotes              ssl:10.78.0.1:PORT,ssl:10.78.0.2:PORT,...
#   cl_wait_leader [SECS]   wait until the cluster has a leader (all
#                           running members see it); prints its number
#   cl_leader               prints the leader's member number (1..N)
#   cl_member_status N      ovs-appctl cluster/status Chan of member N
#   cl_member_kill N        kill -9 member N; cl_member_start N restarts
#                           it on its files
#   cl_member_ctl N         member N's unixctl socket
#   cl_chanctl ARGS...      chanctl as the operator, on the cluster
#   cl_ovsdb_client CMD ARGS...   Debian's ovsdb-client as the operator,
#                           e.g. cl_ovsdb_client transact "$(cl_remotes)" ..
#   cl_op CMD...            CMD in the operator's namespace
#   cl_hv_up HV             a hypervisor (see above); cl_hv_down HV
#   cl_hv HV CMD...         CMD with HV's topology variables, e.g.
#                           cl_hv hv-a topo_host_kill
#   cl_vm_up HV VM CHAN_ID [VID]   a VM on HV (topo_vm_up), its key in the
#                           cluster
#   cl_vm_home VM / cl_vm_at VM    the hypervisor VM was created on (its
#                           files are in $CL_BASE/HOME/VM) / is on now
#   cl_vm_db VM             VM's guest datastore
#   cl_host_ctl HV          HV's chand-host control socket
#   cl_host_status HV       chand-host's host/status (JSON)
#   cl_migrate VM TO        move VM's vNIC to hypervisor TO (see there)
#   cl_down                 stop and remove everything; safe to call twice,
#                           also from a shell that did not start it
#   cl_dump_logs            the last lines of every log, on stderr

CL_BASE=${CL_BASE:-$OVSI_BASE/cl}
CL_NS=${CL_NS:-chst-c}
CL_MEMBERS=${CL_MEMBERS:-3}
CL_PORT=${CL_PORT:-6641}
CL_RAFT_PORT=${CL_RAFT_PORT:-6643}
CL_NET=10.78.0
CL_OP_IP=$CL_NET.254

# Debian's Open vSwitch database tools: built with TLS, unlike a patched
# Open vSwitch that a test may put first in PATH.
CL_OVSDB_SERVER=/usr/sbin/ovsdb-server
CL_OVSDB_TOOL=/usr/bin/ovsdb-tool
CL_OVSDB_CLIENT=/usr/bin/ovsdb-client
CL_APPCTL=/usr/bin/ovs-appctl
[ -x "$CL_OVSDB_SERVER" ] || CL_OVSDB_SERVER=ovsdb-server
[ -x "$CL_OVSDB_TOOL" ] || CL_OVSDB_TOOL=ovsdb-tool
[ -x "$CL_OVSDB_CLIENT" ] || CL_OVSDB_CLIENT=ovsdb-client
[ -x "$CL_APPCTL" ] || CL_APPCTL=ovs-appctl

cl__err() {
    printf 'cluster: %s\n' "$*" >&2
}

cl_netns() {
    printf '%s%s\n' "$CL_NS" "$1"
}

# --- the network --------------------------------------------------------------

# cl__attach NS IP: a veth from the network's bridge into NS (as cl0, with
# IP/24).  The bridge's end is named after NS's suffix.
cl__attach() {
    local ns=$1 ip=$2 net peer
    net=$(cl_netns net)
    peer=v-${ns#"$CL_NS"}
    peer=${peer:0:15}
    ip -n "$ns" link show cl0 >/dev/null 2>&1 && return 0
    ip -n "$net" link add "$peer" type veth peer name cl0 netns "$ns" ||
        { cl__err "cannot create veth $peer to $ns"; return 1; }
    ip -n "$net" link set "$peer" master br0 up &&
        ip -n "$ns" addr add "$ip/24" dev cl0 &&
        ip -n "$ns" link set cl0 up &&
        ip -n "$ns" link set lo up
}

cl_net_up() {
    local net
    net=$(cl_netns net)
    mkdir -p "$CL_BASE" || return 1
    ovsi_netns_add "$net" || return 1
    if ! ip -n "$net" link show br0 >/dev/null 2>&1; then
        ip -n "$net" link add br0 type bridge &&
            ip -n "$net" addr add "$CL_OP_IP/24" dev br0 &&
            ip -n "$net" link set br0 up ||
            { cl__err "cannot create the bridge"; return 1; }
    fi
}

# cl_op CMD...: CMD in the operator's namespace (the network's).
cl_op() {
    ip netns exec "$(cl_netns net)" "$@"
}

# --- certificates ---------------------------------------------------------------

cl_cacert() {
    printf '%s/pki/switchca/cacert.pem\n' "$CL_BASE"
}

cl_rogue_cacert() {
    printf '%s/rogue/switchca/cacert.pem\n' "$CL_BASE"
}

# cl_cert NAME: "--private-key=... --certificate=..." of NAME (words).
cl_key() {
    printf '%s/certs/%s-privkey.pem\n' "$CL_BASE" "$1"
}

cl_cert() {
    printf '%s/certs/%s-cert.pem\n' "$CL_BASE" "$1"
}

# cl_pki_ca [PKI_DIR]: a CA (ovs-pki init) in PKI_DIR (default
# $CL_BASE/pki, the one cl_cacert names), unless it is there already.
cl_pki_ca() {
    local pki=${1:-$CL_BASE/pki}
    command -v ovs-pki >/dev/null ||
        { cl__err "ovs-pki is missing (Debian: openvswitch-pki or openvswitch-common)"; return 1; }
    mkdir -p "$CL_BASE/certs" || return 1
    [ -s "$pki/switchca/cacert.pem" ] && return 0
    ovs-pki --dir="$pki" init >>"$CL_BASE/pki.log" 2>&1 ||
        { cl__err "ovs-pki init of $pki failed (see $CL_BASE/pki.log)"; return 1; }
}

# cl_pki_sign [--with-id] NAME [PKI_DIR]: a certificate whose CN is exactly
# NAME (-u: without it ovs-pki appends " id:UUID" to the CN), signed by the
# CA in PKI_DIR (default $CL_BASE/pki); --with-id: the CN "NAME id:UUID".
# NAME may be SUBDIR/NAME: the files go to $CL_BASE/certs/SUBDIR (cl_key
# and cl_cert take SUBDIR/NAME too), the CN is NAME.
cl_pki_sign() {
    local unique=(-u)
    [ "$1" = --with-id ] && { unique=(); shift; }
    local name=$1 pki=${2:-$CL_BASE/pki} dir
    dir=$(dirname "$CL_BASE/certs/$name")
    [ -s "$(cl_cert "$name")" ] && return 0
    (mkdir -p "$dir" && cd "$dir" &&
        ovs-pki --dir="$pki" "${unique[@]}" req+sign "$(basename "$name")" switch \
            >>"$CL_BASE/pki.log" 2>&1) ||
        { cl__err "ovs-pki cannot sign $name (see $CL_BASE/pki.log)"; return 1; }
}

cl_pki_up() {
    local i
    cl_pki_ca || return 1
    for i in $(seq "$CL_MEMBERS"); do
        cl_pki_sign "db$i" || return 1
    done
    cl_pki_sign operator || return 1
    cl_pki_ca "$CL_BASE/rogue" || return 1
    cl_pki_sign intruder "$CL_BASE/rogue"
}

# --- the Chan DB cluster ------------------------------------------------------------

cl_remotes() {
    local i out=
    for i in $(seq "$CL_MEMBERS"); do
        out=${out:+$out,}ssl:$CL_NET.$i:$CL_PORT
    done
    printf '%s\n' "$out"
}

cl__mdir() {
    printf '%s/db%s\n' "$CL_BASE" "$1"
}

cl_member_ctl() {
    printf '%s/ctl\n' "$(cl__mdir "$1")"
}

cl_member_pid() {
    ovsi__pid "$(cl__mdir "$1")/pid" ovsdb-server
}

# cl_member_start N: starts member N's ovsdb-server on its database file
# (created by cl_cluster_up).
cl_member_start() {
    local n=$1 dir ns
    dir=$(cl__mdir "$n")
    ns=$(cl_netns "db$n")
    cl_member_pid "$n" >/dev/null && return 0
    ip netns exec "$ns" env OVS_RUNDIR="$dir" OVS_LOGDIR="$dir" \
        OVS_DBDIR="$dir" "$CL_OVSDB_SERVER" "$dir/chan.db" \
        --remote="pssl:$CL_PORT:$CL_NET.$n" --remote="punix:$dir/db.sock" \
        --private-key="$(cl_key "db$n")" --certificate="$(cl_cert "db$n")" \
        --ca-cert="$(cl_cacert)" \
        ${CL_SERVER_ARGS[@]+"${CL_SERVER_ARGS[@]}"} \
        --pidfile="$dir/pid" --log-file="$dir/ovsdb-server.log" \
        --unixctl="$dir/ctl" -vconsole:off --detach --no-chdir \
        2>>"$dir/stderr.log" ||
        { cl__err "member $n: ovsdb-server did not start"; tail -5 "$dir/ovsdb-server.log" >&2; return 1; }
}

# cl_member_kill N: SIGKILL, as a crash; returns once it is gone.
cl_member_kill() {
    topo__kill9 "$(cl__mdir "$1")/pid" ovsdb-server
}

# cl_member_stop N: SIGTERM.
cl_member_stop() {
    ovsi__kill "$(cl__mdir "$1")/pid" ovsdb-server
}

cl_member_status() {
    "$CL_APPCTL" -t "$(cl_member_ctl "$1")" --timeout=5 cluster/status Chan
}

cl_cluster_up() {
    local i n=$CL_MEMBERS dir others
    for i in $(seq "$n"); do
        dir=$(cl__mdir "$i")
        mkdir -p "$dir" || return 1
        ovsi_netns_add "$(cl_netns "db$i")" || return 1
        cl__attach "$(cl_netns "db$i")" "$CL_NET.$i" || return 1
    done
    dir=$(cl__mdir 1)
    if [ ! -f "$dir/chan.db" ]; then
        "$CL_OVSDB_TOOL" create-cluster "$dir/chan.db" \
            "$TOPO_SRC/ovsdb/chan.ovsschema" "ssl:$CL_NET.1:$CL_RAFT_PORT" \
            2>>"$dir/stderr.log" ||
            { cl__err "ovsdb-tool create-cluster failed"; return 1; }
    fi
    cl_member_start 1 || return 1
    for i in $(seq 2 "$n"); do
        dir=$(cl__mdir "$i")
        if [ ! -f "$dir/chan.db" ]; then
            others=$(seq "$n" | grep -vx "$i" |
                sed "s/.*/ssl:$CL_NET.&:$CL_RAFT_PORT/" | tr '\n' ' ')
            # shellcheck disable=SC2086
            "$CL_OVSDB_TOOL" join-cluster "$dir/chan.db" Chan \
                "ssl:$CL_NET.$i:$CL_RAFT_PORT" $others 2>>"$dir/stderr.log" ||
                { cl__err "ovsdb-tool join-cluster (member $i) failed"; return 1; }
        fi
        cl_member_start "$i" || return 1
    done
    cl_wait_leader 60 >/dev/null
}

# cl_leader: the member that says it is the leader.
cl_leader() {
    local i
    for i in $(seq "$CL_MEMBERS"); do
        cl_member_pid "$i" >/dev/null || continue
        if cl_member_status "$i" 2>/dev/null | grep -q '^Role: leader'; then
            printf '%s\n' "$i"
            return 0
        fi
    done
    return 1
}

# cl_wait_leader [SECS]: a leader, and every running member a cluster
# member that knows it; prints the leader.
cl_wait_leader() {
    local deadline=$(( $(date +%s) + ${1:-60} )) i leader ok
    while :; do
        ok=1
        leader=$(cl_leader) || ok=0
        if [ $ok = 1 ]; then
            for i in $(seq "$CL_MEMBERS"); do
                cl_member_pid "$i" >/dev/null || continue
                cl_member_status "$i" 2>/dev/null | grep -q '^Status: cluster member' &&
                    cl_member_status "$i" 2>/dev/null | grep -q '^Leader: ' &&
                    ! cl_member_status "$i" 2>/dev/null | grep -q '^Leader: unknown' ||
                    { ok=0; break; }
            done
        fi
        if [ $ok = 1 ]; then
            printf '%s\n' "$leader"
            return 0
        fi
        [ "$(date +%s)" -lt "$deadline" ] ||
            { cl__err "the cluster has no leader"; return 1; }
        sleep 0.2
    done
}

cl__tls_op() {
    printf '%s\n' --private-key="$(cl_key operator)" \
        --certificate="$(cl_cert operator)" --ca-cert="$(cl_cacert)"
}

# cl_chanctl ARGS...: chanctl as the operator, on the cluster (an earlier
# --chan-db in ARGS wins: chanctl takes the last).
cl_chanctl() {
    cl_op "$(topo__prog utilities chanctl)" --chan-db="$(cl_remotes)" \
        --private-key="$(cl_key operator)" --certificate="$(cl_cert operator)" \
        --ca-cert="$(cl_cacert)" "$@"
}

# cl_ovsdb_client COMMAND ARGS...: Debian's ovsdb-client as the operator;
# give the remote(s) in ARGS, e.g. "$(cl_remotes)".
cl_ovsdb_client() {
    cl_op "$CL_OVSDB_CLIENT" --private-key="$(cl_key operator)" \
        --certificate="$(cl_cert operator)" --ca-cert="$(cl_cacert)" "$@"
}

# cl_transact JSON-OPS: one transaction on the Chan DB (ops without the
# leading "Chan"), e.g. cl_transact '{"op":"select","table":"Channel","where":[]}'.
cl_transact() {
    cl_ovsdb_client transact "$(cl_remotes)" "[\"Chan\",$1]"
}

cl_up() {
    cl_net_up && cl_pki_up && cl_cluster_up
}

# --- hypervisors and VMs ------------------------------------------------------------

cl_host_ctl() {
    printf '%s/%s/chand-host.ctl\n' "$CL_BASE" "$1"
}

# cl_hv HV CMD...: runs CMD with hypervisor HV's topology variables
# (TOPO_HOST, TOPO_HOST_NS, TOPO_RUN, TOPO_HOST_ARGS, TOPO_CHANCTL).
# TOPO_HOST_ARGS set by the caller is added to HV's own (the Chan DB, TLS,
# --chassis).
cl_hv() {
    local hv=$1
    shift
    local TOPO_HOST=$hv TOPO_HOST_NS
    TOPO_HOST_NS=$(cl_netns "$hv")
    local TOPO_RUN=$CL_BASE/$hv
    local -a TOPO_HOST_ARGS=(--chan-db="$(cl_remotes)"
        --private-key="$(cl_key "$hv")" --certificate="$(cl_cert "$hv")"
        --ca-cert="$(cl_cacert)" --chassis="$hv"
        ${CL_HOST_ARGS[@]+"${CL_HOST_ARGS[@]}"})
    local -a TOPO_CHANCTL=(cl_chanctl)
    "$@"
}

cl__hvs() {
    [ -f "$CL_BASE/hvs" ] && cat "$CL_BASE/hvs"
    return 0
}

cl__vms() {
    [ -d "$CL_BASE/vms" ] && ls "$CL_BASE/vms"
    return 0
}

# cl_hv_up HV: hypervisor HV: its namespace on the network (10.78.0.(10+i),
# i its rank), certificate, OVS (topo_host_up), chand-host on the cluster.
# CL_HOST_ARGS (optional array) adds chand-host options.
cl_hv_up() {
    local hv=$1 idx ns
    ns=$(cl_netns "$hv")
    [ ${#ns} -le 15 ] || { cl__err "namespace name $ns too long"; return 1; }
    cl__hvs | grep -qx -- "$hv" || printf '%s\n' "$hv" >>"$CL_BASE/hvs"
    idx=$(cl__hvs | grep -nx -- "$hv" | cut -d: -f1)
    cl_pki_sign "$hv" || return 1
    ovsi_netns_add "$ns" || return 1
    cl__attach "$ns" "$CL_NET.$((10 + idx))" || return 1
    mkdir -p "$CL_BASE/$hv" || return 1
    cl_hv "$hv" topo_host_up || return 1
    ovsi_vsctl "$hv" set Open_vSwitch . external_ids:system-id="$hv"
}

# cl_vm_up HV VM CHAN_ID [VID]: a VM on HV (topo_vm_up; its key goes into
# the cluster).
cl_vm_up() {
    local hv=$1 vm=$2
    mkdir -p "$CL_BASE/vms/$vm" || return 1
    printf '%s\n' "$hv" >"$CL_BASE/vms/$vm/home"
    printf '%s\n' "$hv" >"$CL_BASE/vms/$vm/at"
    cl_hv "$hv" topo_vm_up "$vm" "$3" "${4:-4094}"
}

cl_vm_home() {
    cat "$CL_BASE/vms/$1/home"
}

cl_vm_at() {
    cat "$CL_BASE/vms/$1/at"
}

cl_vm_db() {
    printf '%s/%s/%s/guest.db\n' "$CL_BASE" "$(cl_vm_home "$1")" "$1"
}

# cl_vm VM CMD...: CMD with the topology variables of VM's home hypervisor
# (where its files are), e.g. cl_vm vm1 topo_guest_stop vm1.
cl_vm() {
    local vm=$1
    shift
    cl_hv "$(cl_vm_home "$vm")" "$@"
}

cl_host_status() {
    CHAND_HOST_CTL=$(cl_host_ctl "$1") "$(topo__prog utilities chanctl)" \
        host host/status
}

# cl_migrate VM TO: moves VM's vNIC from the hypervisor it is on to TO,
# while VM's namespace, OVS and chand-guest keep running: deletes the port
# from the source's br-int, moves the host end of the veth to TO's
# namespace, adds it to TO's br-int with the same external_ids (chand-vm,
# chand-id, chand-vid).
cl_migrate() {
    local vm=$1 to=$2 from vnic k v ids=()
    from=$(cl_vm_at "$vm") || return 1
    vnic=$vm-vnic
    [ "$from" != "$to" ] || { cl__err "$vm is already on $to"; return 1; }
    for k in chand-vm chand-id chand-vid; do
        v=$(ovsi_vsctl "$from" --if-exists get Interface "$vnic" \
            "external_ids:$k" 2>/dev/null) || v=
        [ -n "$v" ] && ids+=("external_ids:$k=$v")
    done
    [ ${#ids[@]} -gt 0 ] || { cl__err "$vnic is not provisioned on $from"; return 1; }
    ovsi_vsctl "$from" del-port br-int "$vnic" || return 1
    ip -n "$(cl_netns "$from")" link set dev "$vnic" netns "$(cl_netns "$to")" ||
        { cl__err "cannot move $vnic to $to"; return 1; }
    ip -n "$(cl_netns "$to")" link set "$vnic" up || return 1
    ovsi_vsctl "$to" add-port br-int "$vnic" -- set Interface "$vnic" \
        "${ids[@]}" || return 1
    printf '%s\n' "$to" >"$CL_BASE/vms/$vm/at"
}

cl_hv_down() {
    local hv=$1 vm vms=()
    for vm in $(cl__vms); do
        [ "$(cl_vm_home "$vm")" = "$hv" ] && vms+=("$vm")
    done
    cl_hv "$hv" topo_down ${vms[@]+"${vms[@]}"} >/dev/null 2>&1
    return 0
}

# cl_down: everything, in any state, from any shell (it reads what exists
# under $CL_BASE and which namespaces carry the prefix).
cl_down() {
    local hv vm i ns
    for vm in $(cl__vms); do
        cl_vm "$vm" topo_vm_down "$vm" >/dev/null 2>&1
    done
    for hv in $(cl__hvs); do
        cl_hv_down "$hv"
    done
    for i in $(seq "$CL_MEMBERS"); do
        [ -d "$(cl__mdir "$i")" ] && cl_member_kill "$i" >/dev/null 2>&1
        ovsi_netns_del "$(cl_netns "db$i")"
    done
    for hv in $(cl__hvs); do
        ovsi_netns_del "$(cl_netns "$hv")"
    done
    ovsi_netns_del "$(cl_netns net)"
    rm -rf "$CL_BASE/vms" "$CL_BASE/hvs"
    return 0
}

cl_dump_logs() {
    local f
    for f in "$CL_BASE"/db*/ovsdb-server.log "$CL_BASE"/*/chand-host.log \
             "$CL_BASE"/*/*/chand-guest.log; do
        [ -f "$f" ] || continue
        echo "---- $f (last ${CL_LOG_LINES:-40} lines)" >&2
        tail -"${CL_LOG_LINES:-40}" "$f" >&2
    done
}
