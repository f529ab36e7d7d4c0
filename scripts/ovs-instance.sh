# scripts/ovs-instance.sh -- private Open vSwitch instances for tests.
#
# Sourced by bash scripts (path-probe, test/system, demo).  Each instance is
# an ovsdb-server plus an ovs-vswitchd (userspace datapath only) with its own
# OVS_RUNDIR, OVS_LOGDIR and OVS_DBDIR under $OVSI_BASE/<name>, optionally
# running inside a network namespace.  Nothing here touches
# /var/run/openvswitch or the system OVS: every command an instance runs gets
# the instance's environment.
#
# Two userspace OVS instances cannot share a network namespace (both create
# the "ovs-netdev" tap), so give each instance its own namespace.
#
#   OVSI_BASE            parent of the instance directories
#                        (default: /tmp/ovsi.<uid>); keep it short, the unix
#                        socket paths under it must fit in 108 bytes.
#
#   ovsi_netns_add NS            create network namespace NS (lo up)
#   ovsi_netns_del NS            delete it (idempotent)
#   ovsi_start NAME [NS]         start instance NAME (in namespace NS)
#   ovsi_stop NAME               stop it, by pidfile (idempotent)
#   ovsi_run NAME CMD...         run CMD with NAME's environment, in its netns
#   ovsi_exec NAME CMD...        run CMD in NAME's netns only
#   ovsi_vsctl/ovsi_ofctl/ovsi_appctl NAME ARGS...
#                                the OVS tools against instance NAME
#                                (ovsi_ofctl adds -O OpenFlow13)
#   ovsi_add_bridge NAME BR      add a netdev bridge speaking OpenFlow 1.3
#   ovsi_vm_create VM HOST BR VNIC [CIDR]
#                                namespace VM with a veth pair: VNIC on
#                                bridge BR of instance HOST, eth0 in VM
#                                (with address CIDR if given)
#   ovsi_vm_destroy VM           delete the namespace (and so the veth)
#   ovsi_ofport NAME IFACE       print IFACE's OpenFlow port number
#   ovsi_start_dpdk NAME [NS]    start instance NAME with OVS-DPDK
#                                (needs OVSI_DPDK_HUGE_DIR, see there)
#
# Functions return non-zero and print a message on stderr on failure.

OVSI_BASE=${OVSI_BASE:-/tmp/ovsi.$(id -u)}
OVSI_SCHEMA=${OVSI_SCHEMA:-/usr/share/openvswitch/vswitch.ovsschema}

ovsi__err() {
    printf 'ovs-instance: %s\n' "$*" >&2
}

ovsi_dir() {
    printf '%s/%s\n' "$OVSI_BASE" "$1"
}

# Prints the namespace instance $1 runs in (empty for the current one).
ovsi_netns() {
    local f
    f=$(ovsi_dir "$1")/netns
    [ -f "$f" ] && cat "$f"
    return 0
}

ovsi_netns_add() {
    local ns=$1
    if ! ip netns list | awk '{print $1}' | grep -qx -- "$ns"; then
        ip netns add "$ns" || { ovsi__err "cannot create netns $ns"; return 1; }
    fi
    ip -n "$ns" link set lo up
}

ovsi_netns_del() {
    local ns=$1
    if ip netns list | awk '{print $1}' | grep -qx -- "$ns"; then
        ip netns del "$ns"
    fi
    return 0
}

# ovsi_exec NAME CMD...: runs CMD inside instance NAME's namespace (if any),
# without the OVS environment.
ovsi_exec() {
    local ns
    ns=$(ovsi_netns "$1")
    shift
    if [ -n "$ns" ]; then
        ip netns exec "$ns" "$@"
    else
        "$@"
    fi
}

# ovsi_run NAME CMD...: runs CMD with instance NAME's OVS_* environment, in
# its namespace.
ovsi_run() {
    local name=$1 dir
    dir=$(ovsi_dir "$name")
    shift
    ovsi_exec "$name" env OVS_RUNDIR="$dir/run" OVS_LOGDIR="$dir/log" \
        OVS_DBDIR="$dir/db" OVS_SYSCONFDIR="$dir/etc" "$@"
}

ovsi_vsctl() {
    local name=$1
    shift
    ovsi_run "$name" ovs-vsctl --timeout=10 "$@"
}

ovsi_ofctl() {
    local name=$1
    shift
    ovsi_run "$name" ovs-ofctl -O OpenFlow13 "$@"
}

ovsi_appctl() {
    local name=$1
    shift
    ovsi_run "$name" ovs-appctl --timeout=10 "$@"
}

# Prints the pid in pidfile $1 if that process is alive and is program $2.
ovsi__pid() {
    local pidfile=$1 prog=$2 pid
    [ -f "$pidfile" ] || return 1
    pid=$(cat "$pidfile" 2>/dev/null)
    case $pid in '' | *[!0-9]*) return 1 ;; esac
    [ -r "/proc/$pid/cmdline" ] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$prog" || return 1
    printf '%s\n' "$pid"
}

# ovsi_start NAME [NS]: creates a fresh database and starts ovsdb-server and
# ovs-vswitchd for instance NAME, in namespace NS if given (NS must exist).
# Fails if the instance is already running.
ovsi_start() {
    ovsi_start_db "$@" && ovsi_start_vswitchd "$1" ovs-vswitchd
}

# ovsi_start_db NAME [NS]: the first half of ovsi_start: a fresh database
# served by ovsdb-server, initialized.
ovsi_start_db() {
    local name=$1 ns=${2:-} dir
    dir=$(ovsi_dir "$name")
    if ovsi__pid "$dir/run/ovs-vswitchd.pid" ovs-vswitchd >/dev/null ||
       ovsi__pid "$dir/run/ovsdb-server.pid" ovsdb-server >/dev/null; then
        ovsi__err "instance $name is already running"
        return 1
    fi
    if [ -n "$ns" ] && [ ! -e "/var/run/netns/$ns" ]; then
        ovsi__err "netns $ns does not exist"
        return 1
    fi
    rm -rf "$dir"
    mkdir -p "$dir/run" "$dir/log" "$dir/db" "$dir/etc" || return 1
    printf '%s\n' "$ns" >"$dir/netns"
    [ -n "$ns" ] || rm -f "$dir/netns"

    ovsdb-tool create "$dir/db/conf.db" "$OVSI_SCHEMA" || return 1
    ovsi_run "$name" ovsdb-server "$dir/db/conf.db" -vconsole:off \
        --remote="punix:$dir/run/db.sock" \
        --pidfile="$dir/run/ovsdb-server.pid" \
        --log-file="$dir/log/ovsdb-server.log" --detach --no-chdir ||
        { ovsi__err "$name: ovsdb-server failed"; return 1; }
    ovsi_vsctl "$name" --no-wait init
}

# ovsi_start_vswitchd NAME PROGRAM: starts PROGRAM (ovs-vswitchd or
# ovs-vswitchd-dpdk) for instance NAME, whose ovsdb-server runs, and waits
# until it answers.  The program is remembered in NAME's directory
# (ovsi_vswitchd_prog), so that a restart runs the same one.
ovsi_start_vswitchd() {
    local name=$1 prog=$2 dir i
    dir=$(ovsi_dir "$name")
    printf '%s\n' "$prog" >"$dir/vswitchd"
    # Under its own name, the daemon's control socket would be
    # ovs-vswitchd-dpdk.PID.ctl, which "ovs-appctl -t ovs-vswitchd" and
    # chand-host do not look for.
    if [ "$(basename "$prog")" != ovs-vswitchd ]; then
        mkdir -p "$dir/bin" && ln -sf "$prog" "$dir/bin/ovs-vswitchd" ||
            return 1
        prog=$dir/bin/ovs-vswitchd
    fi
    # --disable-system: no kernel datapath here, only netdev bridges.
    ovsi_run "$name" "$prog" "unix:$dir/run/db.sock" -vconsole:off \
        --disable-system --pidfile="$dir/run/ovs-vswitchd.pid" \
        --log-file="$dir/log/ovs-vswitchd.log" --detach --no-chdir ||
        { ovsi__err "$name: $prog failed"; return 1; }
    # Wait until ovs-vswitchd has read the database (OVS-DPDK: and set up
    # DPDK, which takes a few seconds).
    for i in $(seq 300); do
        ovsi_appctl "$name" -t ovs-vswitchd version >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    ovsi__err "$name: ovs-vswitchd does not answer"
    return 1
}

# ovsi_vswitchd_prog NAME: the ovs-vswitchd program instance NAME runs.
ovsi_vswitchd_prog() {
    cat "$(ovsi_dir "$1")/vswitchd" 2>/dev/null || echo ovs-vswitchd
}

# --- OVS-DPDK instances ----------------------------------------------------
#
#   OVSI_DPDK_VSWITCHD   the DPDK build of ovs-vswitchd (default: Debian's
#                        /usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk)
#   OVSI_DPDK_HUGE_DIR   a hugetlbfs mount that every DPDK instance keeps
#                        its memory in (each with a file prefix of its own)
#   OVSI_DPDK_PMD_SLEEP  how long (µs) a PMD may sleep while there is
#                        nothing to poll (default 10000; 0: it never
#                        sleeps and takes CPU 1 whole)
#
# The machine is small and shared: every instance polls with one PMD
# thread on CPU 1, its other DPDK threads on CPU 0, holds 256 MB of
# hugepages, and lets its PMD sleep up to 10 ms while there is nothing to
# poll (OVS 3.1 calls it pmd-maxsleep, later versions pmd-sleep-max; each
# ignores the other's name).  Every DPDK instance must be stopped when its
# test ends: a PMD that does not sleep takes a whole core.
OVSI_DPDK_VSWITCHD=${OVSI_DPDK_VSWITCHD:-/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk}

# ovsi_start_dpdk NAME [NS]: like ovsi_start, with ovs-vswitchd-dpdk;
# fails (with DPDK's own complaint from the log) unless DPDK initialized.
ovsi_start_dpdk() {
    local name=$1 dir
    dir=$(ovsi_dir "$name")
    [ -d "${OVSI_DPDK_HUGE_DIR:-}" ] ||
        { ovsi__err "OVSI_DPDK_HUGE_DIR is not a hugetlbfs mount"; return 1; }
    ovsi_start_db "$@" || return 1
    ovsi_vsctl "$name" --no-wait set Open_vSwitch . \
        other_config:dpdk-init=true \
        "other_config:dpdk-extra=--no-pci --single-file-segments --huge-dir=$OVSI_DPDK_HUGE_DIR --file-prefix=$(basename "$OVSI_BASE")-$name" \
        other_config:dpdk-socket-mem=256 other_config:dpdk-socket-limit=256 \
        other_config:per-port-memory=true \
        other_config:dpdk-lcore-mask=0x1 other_config:pmd-cpu-mask=0x2 \
        other_config:pmd-maxsleep="${OVSI_DPDK_PMD_SLEEP:-10000}" \
        other_config:pmd-sleep-max="${OVSI_DPDK_PMD_SLEEP:-10000}" ||
        return 1
    ovsi_start_vswitchd "$name" "$OVSI_DPDK_VSWITCHD" || return 1
    if [ "$(ovsi_vsctl "$name" get Open_vSwitch . dpdk_initialized)" != true ]
    then
        ovsi__err "$name: DPDK did not initialize:"
        grep -i -E 'dpdk|EAL' "$dir/log/ovs-vswitchd.log" | tail -5 >&2
        return 1
    fi
}

# True if process $1 exists and is not a zombie (PID 1 in some containers
# reaps detached daemons only every second or two).
ovsi__alive() {
    local st
    st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
    case $st in '' | Z* | X*) return 1 ;; esac
    return 0
}

# Sends TERM to the process in pidfile $1 (program $2), waits up to 5 s, then
# KILL.
ovsi__kill() {
    local pidfile=$1 prog=$2 pid i
    pid=$(ovsi__pid "$pidfile" "$prog") || { rm -f "$pidfile"; return 0; }
    kill -TERM "$pid" 2>/dev/null
    for i in $(seq 100); do
        ovsi__alive "$pid" || break
        sleep 0.05
    done
    if ovsi__alive "$pid"; then
        kill -KILL "$pid" 2>/dev/null
        sleep 0.1
    fi
    rm -f "$pidfile"
}

# ovsi_stop NAME: stops instance NAME's daemons by pidfile.  Idempotent; the
# instance directory (logs) is kept.
ovsi_stop() {
    local name=$1 dir
    dir=$(ovsi_dir "$name")
    [ -d "$dir" ] || return 0
    ovsi__kill "$dir/run/ovs-vswitchd.pid" ovs-vswitchd
    ovsi__kill "$dir/run/ovsdb-server.pid" ovsdb-server
    return 0
}

# ovsi_add_bridge NAME BR [ARGS...]: adds netdev bridge BR speaking only
# OpenFlow 1.3; extra ovs-vsctl "set Bridge" column=value ARGS may follow.
ovsi_add_bridge() {
    local name=$1 br=$2
    shift 2
    ovsi_vsctl "$name" -- add-br "$br" \
        -- set Bridge "$br" datapath_type=netdev protocols=OpenFlow13 "$@"
}

# ovsi_ofport NAME IFACE: prints IFACE's OpenFlow port number once assigned.
ovsi_ofport() {
    local name=$1 iface=$2 port i
    for i in $(seq 50); do
        port=$(ovsi_vsctl "$name" get Interface "$iface" ofport 2>/dev/null)
        case $port in
            '' | '[]' | -1) sleep 0.1 ;;
            *) printf '%s\n' "$port"; return 0 ;;
        esac
    done
    ovsi__err "$name: no ofport for $iface"
    return 1
}

# ovsi_vm_create VM HOST BR VNIC [CIDR]: creates namespace VM (a "VM") and a
# veth pair: VNIC stays in instance HOST's namespace and is added to bridge
# BR there; its peer becomes eth0 inside VM, up, with address CIDR if given.
ovsi_vm_create() {
    local vm=$1 host=$2 br=$3 vnic=$4 cidr=${5:-} hns
    hns=$(ovsi_netns "$host")
    ovsi_netns_add "$vm" || return 1
    if [ -n "$hns" ]; then
        ip -n "$hns" link add "$vnic" type veth peer name eth0 netns "$vm"
    else
        ip link add "$vnic" type veth peer name eth0 netns "$vm"
    fi || { ovsi__err "cannot create veth $vnic"; return 1; }
    ovsi_exec "$host" ip link set "$vnic" up || return 1
    ip -n "$vm" link set eth0 up || return 1
    if [ -n "$cidr" ]; then
        ip -n "$vm" addr add "$cidr" dev eth0 || return 1
    fi
    ovsi_vsctl "$host" add-port "$br" "$vnic"
}

ovsi_vm_destroy() {
    ovsi_netns_del "$1"
}
