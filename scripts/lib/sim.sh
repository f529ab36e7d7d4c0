# scripts/lib/sim.sh -- many simulated VMs on one hypervisor: the guest
# simulator (`chand-bench guests`, doc/bench.md "The guest simulator"), a
# load generator for benchmarks and scale tests.  Correctness tests use the
# real chand-guest (topology.sh's topo_vm_up).
#
# Sourced after topology.sh, with its hypervisor up (topo_host_up).  Each
# simulated VM gets a veth pair: its host end is a vNIC on br-int,
# provisioned like any VM's (external_ids chand-vm, chand-id, chand-vid),
# its peer sits in one namespace shared by all simulated VMs, where one
# chand-bench guests process serves every channel.  Keys (TOPO_KEYS=1, the
# default) are written to the Chan DB's Channel_Key table directly, in a
# few transactions, and to one key file per VM.
#
# Set before use (besides topology.sh's variables):
#   SIM_NS      the simulator's namespace (default chand-sim)
#   SIM_DIR     channel list, key files, status, logs (default
#               $TOPO_RUN/sim)
#   SIM_STORE   the datastores, one SQLite file per VM (default
#               /dev/shm/chand-sim.<pid>: tmpfs)
#   SIM_PREFIX  VM name prefix (default sim): VMs sim1, sim2, ...; host
#               ends sim1-vnic, ..., peers sim1-eth, ... (at most 10
#               characters of name, so keep the prefix short)
#   SIM_VID     the channels' vid (default 4094)
#   SIM_ARGS    (optional) array of extra chand-bench guests options
#
#   topo_sim_up N [FIRST]   VMs FIRST..FIRST+N-1 (default 1; chan-id = the
#                           VM's number): veths, keys, channel list,
#                           simulator, provisioning
#   topo_sim_start / topo_sim_stop   the simulator alone (stop: SIGTERM,
#                           its last status stays in the status file)
#   topo_sim_kill           SIGKILL the simulator
#   topo_sim_status         print the status file (JSON)
#   topo_sim_down           undo topo_sim_up (ports, keys, namespace,
#                           datastores)

SIM_NS=${SIM_NS:-chand-sim}
SIM_PREFIX=${SIM_PREFIX:-sim}
SIM_VID=${SIM_VID:-4094}
SIM_BATCH=${SIM_BATCH:-100}     # ports per ovs-vsctl call
SIM_KEY_BATCH=100               # keys per transaction (one command-line
                                # argument: at most 128 kB)

sim__dir() {
    printf '%s\n' "${SIM_DIR:-$TOPO_RUN/sim}"
}

sim__store() {
    printf '%s\n' "${SIM_STORE:-/dev/shm/chand-sim.$$}"
}

# The VM numbers topo_sim_up made ($(sim__dir)/range: FIRST LAST).
sim__range() {
    cat "$(sim__dir)/range" 2>/dev/null
}

topo_sim_up() {
    local n=$1 first=${2:-1} last dir store i vm args
    last=$(( first + n - 1 ))
    dir=$(sim__dir)
    store=$(sim__store)
    mkdir -p "$dir/keys" "$store" || return 1
    chmod 700 "$dir/keys"
    printf '%s %s\n' "$first" "$last" >"$dir/range"

    # The namespace: no IPv6 on its links (no DAD, router or multicast
    # listener traffic for br-int to flood to every port).
    ovsi_netns_add "$SIM_NS" || return 1
    ip netns exec "$SIM_NS" sysctl -qw net.ipv6.conf.default.disable_ipv6=1 \
        net.ipv6.conf.all.disable_ipv6=1 || return 1

    # The veth pairs, in two `ip -batch` runs.
    for i in $(seq "$first" "$last"); do
        vm=$SIM_PREFIX$i
        printf 'link add %s-vnic type veth peer name %s-eth netns %s\n' \
            "$vm" "$vm" "$SIM_NS"
        printf 'link set %s-vnic addrgenmode none\n' "$vm"
        printf 'link set %s-vnic up\n' "$vm"
    done | ovsi_exec "$TOPO_HOST" ip -batch - ||
        { echo "sim: cannot create the veth pairs" >&2; return 1; }
    for i in $(seq "$first" "$last"); do
        printf 'link set %s%s-eth up\n' "$SIM_PREFIX" "$i"
    done | ip -n "$SIM_NS" -batch - || return 1

    # Keys and the channel list.
    : >"$dir/channels"
    if [ "${TOPO_KEYS:-1}" = 1 ]; then
        sim__keys "$first" "$last" || return 1
    fi
    for i in $(seq "$first" "$last"); do
        vm=$SIM_PREFIX$i
        if [ "${TOPO_KEYS:-1}" = 1 ]; then
            printf '%s %s %s %s-eth %s/keys/%s.key\n' "$vm" "$i" "$SIM_VID" \
                "$vm" "$dir" "$vm"
        else
            printf '%s %s %s %s-eth -\n' "$vm" "$i" "$SIM_VID" "$vm"
        fi
    done >>"$dir/channels"

    topo_sim_start || return 1

    # Provisioning: SIM_BATCH ports per ovs-vsctl call.
    i=$first
    while [ "$i" -le "$last" ]; do
        args=()
        local j
        for j in $(seq "$i" $(( i + SIM_BATCH - 1 < last ? i + SIM_BATCH - 1
                                                          : last ))); do
            vm=$SIM_PREFIX$j
            args+=(-- --may-exist add-port br-int "$vm-vnic"
                   -- set Interface "$vm-vnic" external_ids:chand-vm="$vm"
                   external_ids:chand-id="$j" external_ids:chand-vid="$SIM_VID")
        done
        # ovs-vsctl waits until ovs-vswitchd has added the ports: with a
        # thousand on the bridge, and the kernel perhaps still tearing
        # down an earlier run's veths, that can take longer than
        # ovsi_vsctl's 10 s.
        ovsi_run "$TOPO_HOST" ovs-vsctl --timeout=120 "${args[@]}" ||
            { echo "sim: provisioning ports $i.. failed" >&2; return 1; }
        i=$(( i + SIM_BATCH ))
    done
}

# sim__keys FIRST LAST: generation 1 of a fresh random key for each VM, in
# the Chan DB (Channel_Key rows, SIM_KEY_BATCH per transaction) and in
# $(sim__dir)/keys/VM.key.  The VMs must have no key yet.
sim__keys() {
    local first=$1 last=$2 dir db
    dir=$(sim__dir)
    db=$(topo_db)
    python3 - "$first" "$last" "$SIM_PREFIX" "$dir/keys" "$SIM_KEY_BATCH" <<'EOF' |
import json, os, sys
first, last, prefix, keydir, batch = (int(sys.argv[1]), int(sys.argv[2]),
                                      sys.argv[3], sys.argv[4],
                                      int(sys.argv[5]))
ops = []
for i in range(first, last + 1):
    vm, key = "%s%d" % (prefix, i), os.urandom(32).hex()
    fd = os.open(os.path.join(keydir, vm + ".key"),
                 os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, ("1 %s\n" % key).encode())
    os.close(fd)
    ops.append({"op": "insert", "table": "Channel_Key",
                "row": {"vm": vm, "generation": 1, "key": key}})
    if len(ops) == batch or i == last:
        print(json.dumps(["Chan"] + ops))
        ops = []
EOF
    while IFS= read -r txn; do
        local out
        out=$(ovsdb-client transact "$db" "$txn") || exit 1
        case $out in
            *'"error"'*)
                echo "sim: adding keys failed: $out" | cut -c1-300 >&2
                exit 1 ;;
        esac
    done
}

topo_sim_start() {
    local dir store
    dir=$(sim__dir)
    store=$(sim__store)
    rm -f "$dir/status.json" "$dir/ready"
    ip netns exec "$SIM_NS" "$(topo__prog bench chand-bench)" guests \
        --channels="$dir/channels" --dir="$store" \
        --status="$dir/status.json" --ready="$dir/ready" \
        --log-file="$dir/guests.log" \
        ${SIM_ARGS[@]+"${SIM_ARGS[@]}"} \
        >"$dir/guests.out" 2>>"$dir/guests.err" </dev/null &
    printf '%s\n' $! >"$dir/guests.pid"
    local i
    for i in $(seq 300); do
        [ -e "$dir/ready" ] && return 0
        kill -0 "$(cat "$dir/guests.pid")" 2>/dev/null ||
            { tail -5 "$dir/guests.err" >&2; return 1; }
        sleep 0.1
    done
    echo "sim: the simulator did not start within 30 s" >&2
    return 1
}

topo_sim_stop() {
    topo__kill "$(sim__dir)/guests.pid"
}

topo_sim_kill() {
    topo__kill9 "$(sim__dir)/guests.pid" chand-bench
}

topo_sim_status() {
    cat "$(sim__dir)/status.json"
}

topo_sim_down() {
    local range first last i j args ops
    topo_sim_stop
    range=$(sim__range)
    if [ -n "$range" ]; then
        read -r first last <<<"$range"
        i=$first
        while [ "$i" -le "$last" ]; do
            args=()
            ops=""
            for j in $(seq "$i" $(( i + SIM_KEY_BATCH - 1 < last
                                    ? i + SIM_KEY_BATCH - 1 : last ))); do
                args+=(-- --if-exists del-port br-int "$SIM_PREFIX$j-vnic")
                ops="$ops,{\"op\":\"delete\",\"table\":\"Channel_Key\",\"where\":[[\"vm\",\"==\",\"$SIM_PREFIX$j\"]]}"
            done
            ovsi_run "$TOPO_HOST" ovs-vsctl --timeout=120 "${args[@]}" \
                >/dev/null 2>&1
            ovsdb-client transact "$(topo_db)" "[\"Chan\"$ops]" \
                >/dev/null 2>&1
            i=$(( i + SIM_KEY_BATCH ))
        done
    fi
    ovsi_netns_del "$SIM_NS"        # and with it every veth pair
    rm -rf "$(sim__store)" "$(sim__dir)/range"
    return 0
}
