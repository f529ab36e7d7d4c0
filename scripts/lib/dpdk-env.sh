# scripts/lib/dpdk-env.sh -- what the system tier's OVS-DPDK lane needs
# from the machine (test/system/run --ovs=dpdk, scripts/check
# system-dpdk): root, Debian's ovs-vswitchd-dpdk with DPDK's virtio_user
# and ring mempool drivers, two CPUs, 2 MB hugepages and a hugetlbfs
# mount.  Sourced.
#
#   dpdk_env_check        sets DPDK_WHY to why the lane cannot run here
#                         (empty: it can)
#   dpdk_env_setup DIR    reserves the hugepages (if fewer are free) and
#                         mounts hugetlbfs on DIR; on failure DPDK_WHY
#                         says why.  dpdk_env_undo gives back what it took.

DPDK_ENV_PAGES=384      # 2 MB pages: two OVS-DPDK instances of 256 MB,
                        # and some slack.
DPDK_ENV_UNDO=()

dpdk_env_check() {
    local vswitchd=${OVSI_DPDK_VSWITCHD:-/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk} d
    DPDK_WHY=
    if [ "$(id -u)" != 0 ]; then
        DPDK_WHY="needs root (hugepages, network namespaces)"
    elif [ ! -x "$vswitchd" ]; then
        DPDK_WHY="$vswitchd not found (Debian: apt-get install openvswitch-switch-dpdk librte-net-virtio23 librte-mempool-ring23)"
    elif [ "$(nproc)" -lt 2 ]; then
        DPDK_WHY="needs 2 CPUs (the PMD threads poll on CPU 1)"
    else
        for d in net_virtio mempool_ring; do
            ls /usr/lib/*/dpdk/pmds-*/librte_$d.so* >/dev/null 2>&1 && continue
            DPDK_WHY="DPDK's $d driver is not installed (apt-get install librte-${d//_/-}23)"
            break
        done
    fi
    [ -z "$DPDK_WHY" ]
}

dpdk_env_setup() {
    local dir=$1 pages free err
    DPDK_WHY=
    free=$(awk '/^HugePages_Free:/ {print $2}' /proc/meminfo)
    if [ "${free:-0}" -lt "$DPDK_ENV_PAGES" ]; then
        pages=$(cat /proc/sys/vm/nr_hugepages 2>/dev/null || echo 0)
        if ! echo $((pages + DPDK_ENV_PAGES - ${free:-0})) \
                >/proc/sys/vm/nr_hugepages 2>/dev/null; then
            DPDK_WHY="cannot reserve 2 MB hugepages (/proc/sys/vm/nr_hugepages is not writable)"
            return 1
        fi
        DPDK_ENV_UNDO=("echo $pages >/proc/sys/vm/nr_hugepages")
        free=$(awk '/^HugePages_Free:/ {print $2}' /proc/meminfo)
        if [ "${free:-0}" -lt "$DPDK_ENV_PAGES" ]; then
            DPDK_WHY="only ${free:-0} free 2 MB hugepages after asking for more (need $DPDK_ENV_PAGES)"
            dpdk_env_undo
            return 1
        fi
    fi
    mkdir -p "$dir" || { DPDK_WHY="cannot create $dir"; dpdk_env_undo; return 1; }
    if ! err=$(mount -t hugetlbfs -o pagesize=2M none "$dir" 2>&1); then
        DPDK_WHY="cannot mount hugetlbfs on $dir: $err"
        rmdir "$dir"
        dpdk_env_undo
        return 1
    fi
    # Undone in order: unmount (freeing what a killed DPDK process left in
    # it) before giving the pages back.
    DPDK_ENV_UNDO=("umount $dir" "rmdir $dir" "${DPDK_ENV_UNDO[@]}")
}

dpdk_env_undo() {
    local c
    for c in "${DPDK_ENV_UNDO[@]}"; do
        eval "$c" >/dev/null 2>&1
    done
    DPDK_ENV_UNDO=()
}
