# scripts/lib/topology.sh -- the embedded-default topology, shared by
# scripts/demo and test/system.
#
# A hypervisor: one private Open vSwitch instance (ovsdb-server serving the
# local Open_vSwitch DB and the Chan DB; ovs-vswitchd with netdev bridge
# br-int), chand-host and, when asked for (topo_qga_start), chand-qga.
# VMs: one network namespace each, a veth pair as vNIC (host end on br-int,
# eth0 inside), the VM's own Open vSwitch instance and chand-guest.
# Channels are provisioned with ovs-vsctl.
#
# Sourced after scripts/ovs-instance.sh.  Set before use:
#   TOPO_BIN     directory holding chand-host/, chand-guest/, utilities/
#                and chand-qga/ (a build tree) -- or TOPO_INSTALLED=1 to
#                use $PATH
#   TOPO_SRC     source tree (for flows/ and ovsdb/)
#   TOPO_RUN     directory for chand's sockets, pidfiles, logs, datastores
#   TOPO_HOST_NS network namespace for the hypervisor ("" = current one)
#   TOPO_KEYS    1 (default): each VM gets a message authentication key,
#                added to the Chan DB with chanctl key-add and handed to
#                its chand-guest in a key file; 0: unauthenticated
#   TOPO_GUEST_ARGS  (optional) array of extra chand-guest options, given
#                to every chand-guest started from then on, e.g.
#                TOPO_GUEST_ARGS=(--watch-dir=/some/dir)
#   TOPO_DPDK    1: the OVS-DPDK host lane (below, "OVS-DPDK"); needs
#                OVSI_DPDK_HUGE_DIR (scripts/ovs-instance.sh)
#   TOPO_CHANCTL (optional) array: the command topo_key_add runs as chanctl
#                to add a VM's key to the Chan DB that chand-host reads,
#                when that is not the hypervisor's own (topo_db), e.g.
#                TOPO_CHANCTL=(chanctl --chan-db=ssl:... --private-key=...)
#                or a shell function (scripts/lib/cluster.sh: cl_chanctl)

TOPO_HOST=hv

topo__prog() {
    if [ "${TOPO_INSTALLED:-0}" = 1 ]; then
        command -v "$2"
    else
        printf '%s/%s/%s\n' "$TOPO_BIN" "$1" "$2"
    fi
}

# topo_host_up: starts the hypervisor's OVS (with the Chan DB) and
# chand-host.
topo_host_up() {
    local dir
    mkdir -p "$TOPO_RUN" || return 1
    if [ -n "$TOPO_HOST_NS" ]; then
        ovsi_netns_add "$TOPO_HOST_NS" || return 1
    fi
    if [ "${TOPO_DPDK:-0}" = 1 ]; then
        ovsi_start_dpdk "$TOPO_HOST" "$TOPO_HOST_NS" &&
            topo__nic_up || return 1
    else
        ovsi_start "$TOPO_HOST" "$TOPO_HOST_NS" || return 1
    fi
    dir=$(ovsi_dir "$TOPO_HOST")
    ovsdb-tool create "$dir/db/chan.db" "$TOPO_SRC/ovsdb/chan.ovsschema" ||
        return 1
    ovsi_run "$TOPO_HOST" ovs-appctl -t ovsdb-server ovsdb-server/add-db \
        "$dir/db/chan.db" || return 1
    topo_host_bridge_up "$TOPO_HOST" || return 1
    topo_host_start
}

# topo_host_bridge_up NAME: br-int on instance NAME, set up as a hypervisor
# bridge for chand (doc/operations.md, "The hypervisor bridge"):
# fail_mode=secure, as OVN sets on its br-int, so that after an
# ovs-vswitchd restart nothing is switched until the flows are back (a
# standalone bridge's own NORMAL flow would flood every guest's frames to
# every port, which at hundreds of vNICs keeps ovs-vswitchd too busy to take
# chand-host's flows); then the VMs' ordinary switching, a priority-0 NORMAL
# flow, as the cloud's own controller would install (a restarted
# ovs-vswitchd has it no more: nothing here plays that controller); and
# vlan-limit=2, so that Open vSwitch sees the IPv4 header behind two VLAN
# tags and chand's isolation rules keep double-tagged frames to a channel's
# IP out of the VMs too (doc/operations.md, "Isolation").
#
# TOPO_HOST_NORMAL=0 leaves the NORMAL flow out, as on an OVN br-int
# (scripts/lib/sim.sh's hypervisors: with it, the HELLOs of a thousand
# simulated guests whose channel flows are not there yet, before chand-host
# starts, would be flooded to every port).
topo_host_bridge_up() {
    local name=$1
    ovsi_add_bridge "$name" br-int fail_mode=secure || return 1
    if [ "${TOPO_HOST_NORMAL:-1}" = 1 ]; then
        ovsi_run "$name" ovs-ofctl -O OpenFlow13 add-flow br-int \
            priority=0,actions=NORMAL || return 1
    fi
    ovsi_vsctl "$name" set Open_vSwitch . other_config:vlan-limit=2
}

# topo_host_start / topo_host_stop: chand-host alone (for restart tests).
# TOPO_HOST_ARGS (an array, default empty) adds options to chand-host.
topo_host_start() {
    local dir
    dir=$(ovsi_dir "$TOPO_HOST")
    ovsi_run "$TOPO_HOST" "$(topo__prog chand-host chand-host)" \
        --ovs-db="unix:$dir/run/db.sock" --ovs-rundir="$dir/run" \
        --flows="$TOPO_SRC/flows/host.flows" \
        --ctl="$TOPO_RUN/chand-host.ctl" \
        --content-dir="$TOPO_RUN/content" \
        --log-file="$TOPO_RUN/chand-host.log" \
        --pidfile="$TOPO_RUN/chand-host.pid" --detach \
        ${TOPO_HOST_ARGS[@]+"${TOPO_HOST_ARGS[@]}"} 2>/dev/null ||
        { tail -5 "$TOPO_RUN/chand-host.log" >&2; return 1; }
}

topo_host_stop() {
    topo__kill "$TOPO_RUN/chand-host.pid"
}

# topo_db: the OVSDB remote of the hypervisor (Open_vSwitch DB and Chan DB).
topo_db() {
    printf 'unix:%s/run/db.sock\n' "$(ovsi_dir "$TOPO_HOST")"
}

# topo_qga_start [ARGS...] / topo_qga_stop: chand-qga (doc/chand-qga.8),
# the VMs' qemu-guest-agent sockets, on the hypervisor's Chan DB (topo_db)
# and chand-host, in the hypervisor's namespace.  Its control socket is
# $TOPO_RUN/chand-qga.ctl (topo_qga_ctl), its log and pidfile
# $TOPO_RUN/chand-qga.log and .pid, the VMs' sockets in $TOPO_RUN/qga
# (topo_qga_sock VM).  ARGS, more chand-qga options, come after these and
# so override them (chand-qga takes the last of a repeated option), e.g.
# --socket-dir=DIR.  topo_qga_start returns once chand-qga has detached,
# not once the sockets are there.  topo_qga_stop sends SIGTERM, waits until
# chand-qga is gone (SIGKILL after 30 s); it does nothing if none runs.
topo_qga_start() {
    local log=$TOPO_RUN/chand-qga.log arg
    for arg in "$@"; do
        case $arg in --log-file=*) log=${arg#--log-file=} ;; esac
    done
    mkdir -p "$TOPO_RUN" || return 1
    ovsi_run "$TOPO_HOST" "$(topo__prog chand-qga chand-qga)" \
        --chan-db="$(topo_db)" --host-ctl="$TOPO_RUN/chand-host.ctl" \
        --ctl="$(topo_qga_ctl)" --socket-dir="$TOPO_RUN/qga" \
        --log-file="$TOPO_RUN/chand-qga.log" \
        --pidfile="$TOPO_RUN/chand-qga.pid" --detach "$@" ||
        { tail -5 "$log" >&2; return 1; }
}

topo_qga_stop() {
    local pid
    if pid=$(ovsi__pid "$TOPO_RUN/chand-qga.pid" chand-qga); then
        kill "$pid" 2>/dev/null
        topo__wait_gone "$pid" || topo_qga_kill
    fi
    rm -f "$TOPO_RUN/chand-qga.pid"
}

# topo_qga_kill: SIGKILL chand-qga, as a crash (topo_qga_start starts it
# again).
topo_qga_kill() {
    topo__kill9 "$TOPO_RUN/chand-qga.pid" chand-qga
}

# topo_qga_running: whether chand-qga runs.
topo_qga_running() {
    ovsi__pid "$TOPO_RUN/chand-qga.pid" chand-qga >/dev/null
}

# topo_qga_ctl: chand-qga's control socket (for ovs-appctl -t).
topo_qga_ctl() {
    printf '%s/chand-qga.ctl\n' "$TOPO_RUN"
}

# topo_qga_sock VM: VM's qemu-guest-agent socket (named by the VM, in the
# default socket directory).
topo_qga_sock() {
    printf '%s/qga/%s.sock\n' "$TOPO_RUN" "$1"
}

# topo_vm_up VM CHAN_ID [VID]: creates VM's namespace and vNIC, its OVS and
# chand-guest, and provisions its channel on the host with ovs-vsctl.
topo_vm_up() {
    local vm=$1 id=$2 vid=${3:-4094} n
    n=$(topo__vm_index "$vm")
    if [ "${TOPO_DPDK:-0}" = 1 ]; then
        topo__nic_vm_create "$vm" "10.77.0.$n/24"
    else
        ovsi_vm_create "$vm" "$TOPO_HOST" br-int "$vm-vnic" "10.77.0.$n/24"
    fi || return 1
    ovsi_start "$vm" "$vm" || return 1
    if [ "${TOPO_KEYS:-1}" = 1 ]; then
        topo_key_add "$vm" || return 1
    fi
    topo_guest_start "$vm" "$id" "$vid" || return 1
    ovsi_vsctl "$TOPO_HOST" set Interface "$vm-vnic" \
        external_ids:chand-vm="$vm" external_ids:chand-id="$id" \
        external_ids:chand-vid="$vid"
}

topo__vm_index() {
    printf '%s\n' "$1" | tr -cd '0-9' | sed 's/^$/1/'
}

# topo_key_add VM: adds VM's next key generation to the Chan DB (topo_db,
# or with TOPO_CHANCTL) and to the key file its chand-guest reads ($TOPO_RUN/VM/channel.key, mode 0600).
topo_key_add() {
    local vm=$1 line
    mkdir -p "$TOPO_RUN/$vm" || return 1
    if [ -n "${TOPO_CHANCTL[*]:-}" ]; then
        line=$("${TOPO_CHANCTL[@]}" key-add --vm "$vm") || return 1
    else
        line=$(CHAND_CHAN_DB=$(topo_db) "$(topo__prog utilities chanctl)" \
               key-add --vm "$vm") || return 1
    fi
    (umask 077 && printf '%s\n' "$line" >>"$TOPO_RUN/$vm/channel.key")
}

# topo_guest_start VM CHAN_ID [VID] / topo_guest_stop VM: chand-guest alone.
topo_guest_start() {
    local vm=$1 id=$2 vid=${3:-4094} dir
    dir=$(ovsi_dir "$vm")
    mkdir -p "$TOPO_RUN/$vm" || return 1
    ovsi_run "$vm" "$(topo__prog chand-guest chand-guest)" \
        --chan-id="$id" --vid="$vid" \
        --ovs-db="unix:$dir/run/db.sock" --ovs-rundir="$dir/run" \
        --flows="$TOPO_SRC/flows/guest.flows" \
        --db="$TOPO_RUN/$vm/guest.db" \
        --key-file="$TOPO_RUN/$vm/channel.key" \
        --log-file="$TOPO_RUN/$vm/chand-guest.log" \
        --pidfile="$TOPO_RUN/$vm/chand-guest.pid" \
        ${TOPO_GUEST_ARGS[@]+"${TOPO_GUEST_ARGS[@]}"} --detach 2>/dev/null ||
        { tail -5 "$TOPO_RUN/$vm/chand-guest.log" >&2; return 1; }
}

topo_guest_stop() {
    topo__kill "$TOPO_RUN/$1/chand-guest.pid"
}

# topo_guest_kill VM: SIGKILL, as a crash.
topo_guest_kill() {
    topo__kill9 "$TOPO_RUN/$1/chand-guest.pid" chand-guest
}

# topo__wait_gone PID: waits up to 30 s for PID to exit (a killed
# ovs-vswitchd with a thousand ports takes seconds to close them).
topo__wait_gone() {
    local i
    for i in $(seq 600); do
        kill -0 "$1" 2>/dev/null || return 0
        [ "$(ps -o stat= -p "$1" 2>/dev/null | cut -c1)" = Z ] && return 0
        sleep 0.05
    done
    return 1
}

topo__kill() {
    local pid
    pid=$(cat "$1" 2>/dev/null) || return 0
    kill "$pid" 2>/dev/null && topo__wait_gone "$pid"
    rm -f "$1"
}

# topo_vm_down VM: stops VM's chand-guest and OVS, deletes its namespace.
topo_vm_down() {
    topo_guest_stop "$1"
    ovsi_stop "$1" 2>/dev/null
    ovsi_vm_destroy "$1" 2>/dev/null
    ovsi_exec "$TOPO_HOST" ip link del "$1-vnic" 2>/dev/null
    [ "${TOPO_DPDK:-0}" = 1 ] && topo__nic_vm_destroy "$1"
    return 0
}

# topo_down VM...: removes everything the topology made (chand-qga
# included).
topo_down() {
    local vm
    topo_qga_stop
    for vm in "$@"; do
        topo_vm_down "$vm"
    done
    topo_host_stop
    ovsi_stop "$TOPO_HOST" 2>/dev/null
    if [ -n "$TOPO_HOST_NS" ]; then
        ovsi_netns_del "$TOPO_HOST_NS" 2>/dev/null
    fi
    if [ "${TOPO_DPDK:-0}" = 1 ]; then
        ovsi_stop "$TOPO_NIC" 2>/dev/null
        ovsi_netns_del "$(topo__nic_ns)" 2>/dev/null
        # DPDK's runtime files (ovsi_start_dpdk's file prefixes).
        rm -rf "/var/run/dpdk/$(basename "$OVSI_BASE")-"*
    fi
    return 0
}

# --- OVS-DPDK ----------------------------------------------------------
#
# With TOPO_DPDK=1 the hypervisor runs OVS-DPDK (ovsi_start_dpdk): br-int
# is a netdev bridge polled by a PMD thread, and each VM's vNIC is a
# dpdkvhostuserclient port, VM-vnic, as a cloud's OVS-DPDK gives its VMs.
# Its vhost-user socket is $OVSI_BASE/vhu/VM.sock.
#
# The VM side of that socket is what QEMU would be: a virtio device whose
# rings the host's vhost-user port reads and writes, here DPDK's
# virtio_user PMD (devargs virtio_userN,path=SOCKET,server=1), in a port
# of one more OVS-DPDK instance, TOPO_NIC, in its own namespace: the VMs'
# NIC hardware.  There, bridge b-VM joins VM's virtio_user port to a veth
# pair whose other end is eth0 inside VM, the NIC the VM's kernel sees, as
# a virtio-net driver would give it.  So the VM is unchanged: its own OVS,
# chand-guest on eth0 and what a hostile VM's root does on eth0 are the
# same as with a veth vNIC, and frames between the VM and br-int cross a
# real vhost-user/virtio ring.  And the lane costs two PMD threads (host
# and NIC instances, both on CPU 1 and sleeping when idle), not one per
# VM, as the VMs' own OVS-DPDK would.
TOPO_NIC=nic

topo__nic_ns() {
    printf '%s-nic\n' "${TOPO_HOST_NS:-topo}"
}

topo__nic_up() {
    local ns
    ns=$(topo__nic_ns)
    ovsi_netns_add "$ns" && ovsi_start_dpdk "$TOPO_NIC" "$ns" &&
        mkdir -p "$OVSI_BASE/vhu"
}

# topo__nic_vm_create VM CIDR: VM's namespace, its vhost-user vNIC on
# br-int and the virtio_user end in TOPO_NIC, joined to eth0 (with address
# CIDR) inside VM.
topo__nic_vm_create() {
    local vm=$1 cidr=$2 sock=$OVSI_BASE/vhu/$1.sock br=b-$1 n ns
    ns=$(topo__nic_ns)
    n=$(ls "$OVSI_BASE/vhu" | wc -l)
    rm -f "$sock"
    ovsi_netns_add "$vm" &&
    ip -n "$ns" link add "$vm-nic" type veth peer name eth0 netns "$vm" &&
    ip -n "$ns" link set "$vm-nic" up &&
    ip -n "$vm" link set eth0 up &&
    ip -n "$vm" addr add "$cidr" dev eth0 &&
    ovsi_vsctl "$TOPO_HOST" add-port br-int "$vm-vnic" \
        -- set Interface "$vm-vnic" type=dpdkvhostuserclient \
        options:vhost-server-path="$sock" &&
    ovsi_add_bridge "$TOPO_NIC" "$br" fail_mode=secure &&
    ovsi_vsctl "$TOPO_NIC" add-port "$br" "$vm-vio" \
        -- set Interface "$vm-vio" type=dpdk \
        options:dpdk-devargs="virtio_user$n,path=$sock,server=1" \
        -- add-port "$br" "$vm-nic" &&
    ovsi_ofctl "$TOPO_NIC" add-flow "$br" "in_port=$vm-vio,actions=$vm-nic" &&
    ovsi_ofctl "$TOPO_NIC" add-flow "$br" "in_port=$vm-nic,actions=$vm-vio" ||
        { ovsi__err "cannot attach $vm over vhost-user"; return 1; }
}

topo__nic_vm_destroy() {
    ovsi_vsctl "$TOPO_HOST" --if-exists del-port br-int "$1-vnic"
    ovsi_vsctl "$TOPO_NIC" --if-exists del-br "b-$1"
    rm -f "$OVSI_BASE/vhu/$1.sock"
    return 0
}

# --- Fault injection (test/system/test-fault-*.sh) ----------------------

# topo_host_vswitchd_restart: kills the hypervisor's ovs-vswitchd (SIGKILL,
# as a crash: its OpenFlow flows are gone) and starts it again on the same
# database; returns once it answers.  topo_host_vswitchd_kill and
# topo_host_vswitchd_start do the two halves (start also after a kill by
# someone else).
topo_host_vswitchd_restart() {
    topo_host_vswitchd_kill && topo_host_vswitchd_start
}

topo_host_vswitchd_kill() {
    topo_vswitchd_kill "$TOPO_HOST"
}

topo_host_vswitchd_start() {
    topo_vswitchd_start "$TOPO_HOST"
}

# topo_vswitchd_kill NAME / topo_vswitchd_start NAME: the same for any
# instance: the hypervisor's ($TOPO_HOST) or a VM's own (its name).
topo_vswitchd_kill() {
    topo__kill9 "$(ovsi_dir "$1")/run/ovs-vswitchd.pid" ovs-vswitchd
}

topo_vswitchd_start() {
    local name=$1 dir
    dir=$(ovsi_dir "$name")
    topo__kill9 "$dir/run/ovs-vswitchd.pid" ovs-vswitchd || return 1
    ovsi_start_vswitchd "$name" "$(ovsi_vswitchd_prog "$name")"
}

# topo_host_ovsdb_restart [DOWN_SECONDS]: kills the hypervisor's
# ovsdb-server (SIGKILL) -- it serves both the Open_vSwitch DB and the Chan
# DB -- and starts it again on the same database files after DOWN_SECONDS
# (default 0), so their contents survive.  topo_host_ovsdb_kill and
# topo_host_ovsdb_start do the two halves.
topo_host_ovsdb_restart() {
    topo_host_ovsdb_kill || return 1
    sleep "${1:-0}"
    topo_host_ovsdb_start
}

topo_host_ovsdb_kill() {
    topo__kill9 "$(ovsi_dir "$TOPO_HOST")/run/ovsdb-server.pid" ovsdb-server
}

topo_host_ovsdb_start() {
    local dir i
    dir=$(ovsi_dir "$TOPO_HOST")
    topo__kill9 "$dir/run/ovsdb-server.pid" ovsdb-server || return 1
    ovsi_run "$TOPO_HOST" ovsdb-server "$dir/db/conf.db" "$dir/db/chan.db" \
        -vconsole:off --remote="punix:$dir/run/db.sock" \
        --pidfile="$dir/run/ovsdb-server.pid" \
        --log-file="$dir/log/ovsdb-server.log" --detach --no-chdir ||
        return 1
    for i in $(seq 50); do
        ovsdb-client list-dbs "unix:$dir/run/db.sock" 2>/dev/null |
            grep -qx Chan && return 0
        sleep 0.1
    done
    return 1
}

# topo__kill9 PIDFILE PROGRAM: SIGKILL the process in PIDFILE if it still
# runs and is PROGRAM, wait until it is gone, remove PIDFILE.
topo__kill9() {
    local pid
    if pid=$(ovsi__pid "$1" "$2"); then
        kill -9 "$pid" 2>/dev/null
        topo__wait_gone "$pid" || return 1
    fi
    rm -f "$1"
}

# topo_vm_loss VM PERCENT [OUT_PERCENT]: drops PERCENT % of the UDP
# datagrams to the chand port (7433) arriving on VM's chand0, at random
# (nftables, in VM's namespace; chand-guest reads a socket, so the input
# hook sees them), and OUT_PERCENT % (default 0) of those chand-guest sends
# from that port through chand0 (its ACKs and HELLOs).  The drops are
# counted: topo_vm_loss_drops VM [in|out] prints how many.
# topo_vm_loss_off VM removes the rules.
topo_vm_loss() {
    local vm=$1 pct=$2 out=${3:-0}
    ovsi_exec "$vm" nft -f - <<NFT
table inet chloss {
    chain in {
        type filter hook input priority 0;
        iifname "chand0" udp dport 7433 numgen random mod 100 < $pct counter drop
    }
    chain out {
        type filter hook output priority 0;
        oifname "chand0" udp sport 7433 numgen random mod 100 < $out counter drop
    }
}
NFT
}

# topo_vm_loss_typed VM PERCENT: like topo_vm_loss VM PERCENT PERCENT, but
# the CHUNK frames of the transfer lane (chand type 6, UDP payload byte 3)
# are dropped and counted apart from the rest, both ways:
# topo_vm_loss_drops VM in-chunk|out-chunk prints how many CHUNK frames
# were dropped, in|out the others.
topo_vm_loss_typed() {
    local vm=$1 pct=$2
    ovsi_exec "$vm" nft -f - <<NFT
table inet chloss {
    chain in-chunk {
        numgen random mod 100 < $pct counter drop
        accept
    }
    chain out-chunk {
        numgen random mod 100 < $pct counter drop
        accept
    }
    chain in {
        type filter hook input priority 0;
        iifname "chand0" udp dport 7433 @th,88,8 6 jump in-chunk
        iifname "chand0" udp dport 7433 numgen random mod 100 < $pct counter drop
    }
    chain out {
        type filter hook output priority 0;
        oifname "chand0" udp sport 7433 @th,88,8 6 jump out-chunk
        oifname "chand0" udp sport 7433 numgen random mod 100 < $pct counter drop
    }
}
NFT
}

topo_vm_loss_drops() {
    ovsi_exec "$1" nft list chain inet chloss "${2:-in}" 2>/dev/null |
        sed -n 's/.*counter packets \([0-9]*\) .*/\1/p' | head -1
}

topo_vm_loss_off() {
    ovsi_exec "$1" nft delete table inet chloss 2>/dev/null
    return 0
}

# topo_vm_link VM up|down: sets the host end of VM's vNIC up or down (the
# VM is unreachable while it is down; chand-guest keeps running).
topo_vm_link() {
    if [ "${TOPO_DPDK:-0}" = 1 ]; then
        ip -n "$(topo__nic_ns)" link set "$1-nic" "$2"
    else
        ovsi_exec "$TOPO_HOST" ip link set "$1-vnic" "$2"
    fi
}

# topo_vnic_stat VM STAT: the kernel's statistic STAT (e.g. rx_dropped) of
# the far end of VM's veth: the hypervisor's VM-vnic, or on the OVS-DPDK
# lane the NIC instance's VM-nic (where frames above the MTU stop).
topo_vnic_stat() {
    if [ "${TOPO_DPDK:-0}" = 1 ]; then
        ip netns exec "$(topo__nic_ns)" cat "/sys/class/net/$1-nic/statistics/$2"
    else
        ovsi_exec "$TOPO_HOST" cat "/sys/class/net/$1-vnic/statistics/$2"
    fi
}

# topo_vnic_far VM: "NS DEV", the namespace and the kernel device where
# VM's vNIC frames can be captured as they leave and reach the VM: the
# hypervisor's VM-vnic, or on the OVS-DPDK lane (no kernel device on the
# hypervisor side) the NIC instance's VM-nic, past the vhost-user ring.
# Needs TOPO_HOST_NS.
topo_vnic_far() {
    if [ "${TOPO_DPDK:-0}" = 1 ]; then
        printf '%s %s-nic\n' "$(topo__nic_ns)" "$1"
    else
        printf '%s %s-vnic\n' "$TOPO_HOST_NS" "$1"
    fi
}

# topo_host_kill: SIGKILL chand-host, as a crash (topo_host_start starts
# it again).
topo_host_kill() {
    topo__kill9 "$TOPO_RUN/chand-host.pid" chand-host
}
