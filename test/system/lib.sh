# test/system/lib.sh -- shared helpers for the system tests: namespaces as
# VMs, real Open vSwitch, the real daemons.  Sourced by each test-*.sh.
#
# test/system/run --ovs=dpdk runs the tests on the OVS-DPDK host lane
# (TOPO_DPDK=1): the hypervisor's vNICs are dpdkvhostuserclient ports, each
# VM's end of the vhost-user socket DPDK's virtio_user PMD in a "NIC"
# OVS-DPDK instance that hands the frames to the VM's eth0 (a veth) --
# scripts/lib/topology.sh, "OVS-DPDK", says how and why.

set -u -o pipefail

ST_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ST_BUILD=${1:-${CHAND_BUILD_DIR:-$ST_SRC/_build/default}}
ST_NAME=$(basename "$0" .sh)

# Everything this test makes lives under one short directory (unix socket
# paths must fit in 108 bytes) and in namespaces with a "chst" prefix.
export OVSI_BASE=/tmp/chst.$$
. "$ST_SRC/scripts/ovs-instance.sh"
. "$ST_SRC/scripts/lib/topology.sh"
TOPO_BIN=$ST_BUILD
TOPO_SRC=$ST_SRC
TOPO_RUN=$OVSI_BASE/chand
TOPO_HOST_NS=chst-hv

ST_VMS=""
ST_FAILED=0

st_log() {
    printf '[%s %3ds] %s\n' "$ST_NAME" "$SECONDS" "$*" >&2
}

st_fail() {
    st_log "FAIL: $*"
    ST_FAILED=1
}

# st_output_has PATTERN CMD...: whether CMD succeeds and prints a line
# matching PATTERN (grep's basic regular expression).  CMD's output is read
# whole before grep looks at it: with pipefail, 'CMD | grep -q PATTERN'
# fails at random when grep exits at its first match while CMD, still
# writing (stdio writes a pipe in 4 KiB pieces), dies of SIGPIPE.
st_output_has() {
    local pattern=$1 out
    shift
    out=$("$@") || return 1
    grep -q -- "$pattern" <<<"$out"
}

# st_check DESCRIPTION CMD...: runs CMD; a failure is recorded, not fatal.
st_check() {
    local what=$1
    shift
    if "$@"; then
        st_log "ok: $what"
    else
        st_fail "$what"
    fi
}

st_require_root() {
    if [ "$(id -u)" != 0 ]; then
        echo "$ST_NAME: SKIP: needs root (network namespaces, OVS)" >&2
        exit 77
    fi
    if ! ip netns add chst-probe.$$ 2>/dev/null; then
        echo "$ST_NAME: SKIP: cannot create network namespaces" >&2
        exit 77
    fi
    ip netns del chst-probe.$$
    local p
    for p in ovsdb-server ovs-vswitchd ovs-vsctl ovs-ofctl sqlite3 python3; do
        command -v "$p" >/dev/null || { echo "$ST_NAME: missing $p" >&2; exit 1; }
    done
}

st_dump_logs() {
    local f
    for f in "$TOPO_RUN"/*.log "$TOPO_RUN"/*/*.log; do
        [ -f "$f" ] || continue
        echo "---- $f (last 40 lines)" >&2
        tail -40 "$f" >&2
    done
}

st_cleanup() {
    if [ "$ST_FAILED" != 0 ] || [ "${CHAND_KEEP_LOGS:-0}" = 1 ]; then
        st_dump_logs
    fi
    topo_down $ST_VMS >/dev/null 2>&1
    rm -rf "$OVSI_BASE"
}

# st_dpdk_skip_if_down: on the OVS-DPDK lane (test/system/run --ovs=dpdk,
# scripts/lib/topology.sh "OVS-DPDK"), exits 77 with DPDK's own reason if
# one of the topology's OVS-DPDK instances did not initialize DPDK.
st_dpdk_skip_if_down() {
    [ "${TOPO_DPDK:-0}" = 1 ] || return 0
    local name log
    for name in "$TOPO_HOST" "$TOPO_NIC"; do
        log=$(ovsi_dir "$name")/log/ovs-vswitchd.log
        [ -f "$log" ] || continue
        ovsi__pid "$(ovsi_dir "$name")/run/ovs-vswitchd.pid" \
                  ovs-vswitchd >/dev/null &&
            [ "$(ovsi_vsctl "$name" get Open_vSwitch . dpdk_initialized \
                 2>/dev/null)" = true ] && continue
        echo "$ST_NAME: SKIP: DPDK cannot start here; $log ends:" >&2
        tail -8 "$log" >&2
        exit 77
    done
}

# st_up VM:CHAN_ID...: the hypervisor and these VMs.
st_up() {
    trap st_cleanup EXIT
    topo_host_up ||
        { st_dpdk_skip_if_down; st_fail "hypervisor did not start"; exit 1; }
    local spec
    for spec in "$@"; do
        ST_VMS="$ST_VMS ${spec%%:*}"
        topo_vm_up "${spec%%:*}" "${spec#*:}" ||
            { st_fail "VM ${spec%%:*} did not start"; exit 1; }
    done
}

st_chanctl() {
    CHAND_CHAN_DB=$(topo_db) CHAND_HOST_CTL=$TOPO_RUN/chand-host.ctl \
        "$ST_BUILD/utilities/chanctl" "$@"
}

# st_guest VM CHANCTL-ARGS...: chanctl inside VM (guest API).
st_guest() {
    local vm=$1
    shift
    ip netns exec "$vm" "$ST_BUILD/utilities/chanctl" "$@"
}

st_vsctl() {
    ovsi_vsctl "$TOPO_HOST" "$@"
}

st_ofctl() {
    ovsi_ofctl "$TOPO_HOST" "$@"
}

# st_install_handlers DIR: DIR (mode 0755) holds the built-in chand-handler
# as the verdict and notice handlers.
st_install_handlers() {
    mkdir -p -m 755 "$1" && chmod 755 "$1" || return 1
    local kind
    for kind in verdict notice install restore; do
        install -m 755 "$ST_BUILD/utilities/chand-handler" "$1/$kind" ||
            return 1
    done
}

# st_result_is VM KIND DIGEST PYEXPR: VM's Guest_Record result/KIND/DIGEST
# (as 'r', parsed; None if absent) satisfies the Python expression PYEXPR.
st_result_is() {
    python3 "$ST_SRC/test/system/upstream-tool.py" guest-records \
            "$(topo_db)" "$1" result/ | python3 -c '
import json, sys
r = json.load(sys.stdin).get("result/%s/%s" % (sys.argv[1], sys.argv[2]))
sys.exit(0 if eval(sys.argv[3]) else 1)' "$2" "$3" "$4"
}

# st_wait SECONDS CMD...: polls CMD every 0.2 s until it succeeds.
st_wait() {
    local deadline=$(( $(date +%s) + $1 ))
    shift
    while ! "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$deadline" ] || return 1
        sleep 0.2
    done
}

st_exit() {
    if [ "$ST_FAILED" != 0 ]; then
        st_log "FAILED"
        exit 1
    fi
    st_log "PASSED"
    exit 0
}
