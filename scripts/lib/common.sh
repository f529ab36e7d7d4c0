# Shared shell helpers for scripts/check, scripts/demo and the test tiers.
# Sourced; expects $top to be the source tree.

# Debian packages chand needs to build and test.  (ovn-central and ovn-host:
# test/system/test-ovn-iface-id.sh runs a private OVN of its own; where
# systemd runs, the packages also enable their system services.
# qemu-guest-agent: test/system/test-qga.sh compares chand-qga's answers
# with the real qemu-ga's, run on a Unix socket of its own.)
CHAND_DEB_PACKAGES="build-essential autoconf automake pkg-config
libjansson-dev libpcap-dev libcunit1-dev libsqlite3-dev libssl-dev sqlite3
openvswitch-switch openvswitch-common python3 python3-openvswitch iproute2
nftables tcpdump python3-prometheus-client
python3-pip python3-venv
clang libclang-rt-14-dev
openvswitch-switch-dpdk librte-net-pcap23 librte-mempool-ring23
librte-net-virtio23
debhelper dh-autoreconf dh-python dpkg-dev fakeroot lintian debootstrap systemd
logrotate
ovn-central ovn-host qemu-guest-agent"

log() {
    printf '%s\n' "$*" >&2
}

die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# install_deps: installs the missing Debian packages with apt-get, quietly.
# Idempotent: does nothing when everything is present.
install_deps() {
    local missing=() p
    for p in $CHAND_DEB_PACKAGES; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" != 0 ]; then
        log "missing Debian packages: ${missing[*]}"
        log "run as root, or: sudo apt-get install ${missing[*]}"
        return 1
    fi
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" \
            >/tmp/chand-apt.log 2>&1; then
        apt-get update -qq >>/tmp/chand-apt.log 2>&1
        apt-get install -y -qq --no-install-recommends "${missing[@]}" \
            >>/tmp/chand-apt.log 2>&1 ||
            { tail -20 /tmp/chand-apt.log >&2; log "apt-get failed"; return 1; }
    fi
    # The Debian package may start a system OVS; chand runs its own.
    return 0
}

# bootstrap: runs autoreconf when configure is missing or older than its
# inputs.
bootstrap() {
    if [ ! -x "$top/configure" ] || [ "$top/configure.ac" -nt "$top/configure" ]; then
        log "autoreconf"
        (cd "$top" && autoreconf -fi >/tmp/chand-autoreconf.log 2>&1) ||
            { cat /tmp/chand-autoreconf.log >&2; return 1; }
    fi
}

# configure_build DIR [asan]: configures an out-of-tree build in DIR once.
configure_build() {
    local dir=$1 flavour=${2:-}
    mkdir -p "$dir"
    if [ -f "$dir/Makefile" ] && [ "$dir/config.status" -nt "$top/configure" ]; then
        return 0
    fi
    local cflags="-g -O2"
    local extra=()
    if [ "$flavour" = asan ]; then
        cflags="-g -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all"
        extra=(CC=clang)
    fi
    log "configure ($dir)"
    (cd "$dir" && "$top/configure" -q --enable-werror "${extra[@]}" \
        CFLAGS="$cflags" LDFLAGS="${cflags/-g -O1 /}" >config.out 2>&1) ||
        { cat "$dir/config.out" >&2; return 1; }
}

# make_build DIR: builds everything, including test programs.
make_build() {
    local dir=$1
    log "make ($dir)"
    (cd "$dir" && make -s -j"$jobs" all >make.out 2>&1 &&
        make -s -j"$jobs" TESTS= check >>make.out 2>&1) ||
        { tail -40 "$dir/make.out" >&2; return 1; }
}

tier_exists() {
    case $1 in
        unit) [ -d "$top/test/unit" ] ;;
        replay) [ -x "$top/test/replay/run" ] ;;
        system | system-dpdk) [ -x "$top/test/system/run" ] ;;
        fuzz) [ -x "$top/test/fuzz/run" ] ;;
        bench) [ -x "$top/scripts/bench" ] ;;
        package) [ -x "$top/test/package/run" ] && [ -d "$top/debian" ] ;;
        *) return 1 ;;
    esac
}

tier_wants_asan() {
    case $1 in unit|replay) return 0 ;; *) return 1 ;; esac
}

# tiers_want_asan TIER...: whether any of TIERs runs the ASan/UBSan build
# (the unit and replay tiers, and the system tier's few tests).
tiers_want_asan() {
    local t
    for t in "$@"; do
        tier_wants_asan "$t" && return 0
        [ "$t" = system ] && return 0
    done
    return 1
}

# run_tier TIER BUILD_DIR: runs one tier against a build; returns its status
# (77 = skipped).
run_tier() {
    local tier=$1 dir=$2
    case $tier in
        unit)
            local rc=0
            run_unit "$dir" || rc=$?
            run_manpages "$dir" || rc=1
            return $rc ;;
        replay) run_both_ovs "$dir" "$top/test/replay/run" ;;
        system) run_system_lanes "$dir" ;;
        system-dpdk) run_system_dpdk "$dir" ;;
        fuzz) CHAND_BUILD_DIR=$dir "$top/test/fuzz/run" ;;
        bench) run_bench "$dir" ;;
        package) "$top/test/package/run" ;;
    esac
}

# run_bench DIR: the quick benchmark (every phase, to show the harness
# works), then its OVS-DPDK lane (scripts/bench --ovs=dpdk) where
# dpdk_env_check finds that it can run; where it cannot, the system-dpdk
# tier says why and skips.
run_bench() {
    local dir=$1 rc
    run_bench_bad_options || return 1
    CHAND_BUILD_DIR=$dir "$top/scripts/bench" --quick
    rc=$?
    [ $rc = 0 ] || return $rc
    . "$top/scripts/lib/dpdk-env.sh"
    if ! dpdk_env_check; then
        log "bench: the OVS-DPDK lane is left out: $DPDK_WHY"
        return 0
    fi
    log "bench: the OVS-DPDK lane (scripts/bench --quick --ovs=dpdk)"
    CHAND_BUILD_DIR=$dir "$top/scripts/bench" --quick --ovs=dpdk
}

# run_bench_bad_options: scripts/bench refuses bad lane and phase options
# with exit 2 and a message saying what is wrong, before it sets anything up.
run_bench_bad_options() {
    local args want out rc bad=0
    while IFS='|' read -r args want; do
        # shellcheck disable=SC2086
        out=$("$top/scripts/bench" $args 2>&1)
        rc=$?
        if [ $rc = 2 ] && grep -qF -- "$want" <<<"$out"; then
            log "bench: ok: scripts/bench $args: $want"
        else
            log "bench: FAIL: scripts/bench $args: exit $rc, '$out'" \
                "(expected exit 2 and '$want')"
            bad=1
        fi
    done <<'EOF'
--ovs=foo|unknown --ovs=foo
--phases dpdk|name at least one of them
--soak 1 --ovs=dpdk|--soak runs alone
EOF
    return $bad
}

# run_both_ovs DIR RUNNER: runs a tier's RUNNER against stock Open vSwitch,
# then against Open vSwitch built with ovs-patches/ (scripts/build-ovs), in
# the DIR build.  Returns 77 if the tier skips, else non-zero if either run
# fails.
run_both_ovs() {
    local dir=$1 runner=$2 rc
    log "--- against stock Open vSwitch"
    CHAND_BUILD_DIR=$dir "$runner" --ovs=stock
    rc=$?
    [ $rc -eq 77 ] && return 77
    log "--- against Open vSwitch with ovs-patches/"
    CHAND_BUILD_DIR=$dir "$runner" --ovs=patched || rc=1
    return $rc
}

# run_system_lanes DIR: the system tier against stock Open vSwitch and
# against Open vSwitch built with ovs-patches/, the two lanes at once, each
# with network namespaces of its own (netns_private); each lane's output is
# printed whole when both have ended.  Returns 77 if the tier skips, else
# non-zero if either lane fails.
run_system_lanes() {
    local dir=$1 out lane pid rc=0 lrc
    out=$(mktemp -d /tmp/chand-lanes.XXXXXX) || return 1
    declare -A pids
    for lane in stock patched; do
        CHAND_BUILD_DIR=$dir netns_private "$top/test/system/run" \
            --ovs=$lane >"$out/$lane.log" 2>&1 &
        pids[$lane]=$!
    done
    for lane in stock patched; do
        wait "${pids[$lane]}"
        lrc=$?
        case $lane in
            stock) log "--- against stock Open vSwitch" ;;
            patched) log "--- against Open vSwitch with ovs-patches/" ;;
        esac
        cat "$out/$lane.log"
        [ $lrc = 77 ] && [ $lane = stock ] && { rm -rf "$out"; return 77; }
        [ $lrc = 0 ] || rc=1
    done
    rm -rf "$out"
    return $rc
}

# netns_private CMD...: runs CMD in a mount namespace of its own whose
# /run/netns is a fresh tmpfs, so that the network namespaces CMD makes with
# 'ip netns' are its own: another CMD may use the same names at the same
# time.  Those namespaces go when CMD and what it started have exited.
netns_private() {
    unshare --mount --propagation private -- sh -c \
        'mkdir -p /run/netns && mount -t tmpfs -o mode=0755 chand-netns /run/netns &&
         exec "$@"' sh "$@"
}

# run_system_asan DIR: a few system tests, the daemons built with ASan and
# UBSan in DIR, against stock Open vSwitch: the daemons' own paths (first
# flow sync, a thousand-step push, migration, 200 channels with restarts)
# under the sanitizers, which stop a daemon at the first error.  The
# sanitizers' reports go to DIR/sanitizer.*, printed if there are any.
# Returns non-zero if a test fails or a report was written.
SYSTEM_ASAN_TESTS="test-e2e.sh test-migration.sh test-scale.sh"
run_system_asan() {
    local dir=$1 rc f
    rm -f "$dir"/sanitizer.*
    # shellcheck disable=SC2086
    ASAN_OPTIONS=detect_leaks=0:log_path=$dir/sanitizer \
        UBSAN_OPTIONS=print_stacktrace=1:log_path=$dir/sanitizer \
        CHAND_BUILD_DIR=$dir "$top/test/system/run" --ovs=stock \
        $SYSTEM_ASAN_TESTS
    rc=$?
    for f in "$dir"/sanitizer.*; do
        [ -e "$f" ] || continue
        printf '\n--- %s\n' "$f"
        cat "$f"
        rc=1
    done
    return $rc
}

# run_system_dpdk DIR: the system tier's OVS-DPDK lane (test/system/run
# --ovs=dpdk: its few tests), then the same with the patched Open vSwitch
# built with DPDK (--ovs=dpdk-patched), with the hugepages and the
# hugetlbfs mount set up here.  Skips (77) without root, and where DPDK cannot run (what
# dpdk_env_check finds, or a test whose OVS-DPDK does not initialize); fails
# loudly if the hugepages or the mount cannot be had.
run_system_dpdk() {
    local dir=$1 huge=/tmp/chand-huge.$$ rc
    . "$top/scripts/lib/dpdk-env.sh"
    if ! dpdk_env_check; then
        log "system-dpdk: SKIP: $DPDK_WHY"
        return 77
    fi
    if ! dpdk_env_setup "$huge"; then
        log "system-dpdk: FAIL: OVS-DPDK needs hugepages: $DPDK_WHY"
        return 1
    fi
    log "--- against Debian's OVS-DPDK"
    CHAND_BUILD_DIR=$dir CHAND_DPDK_HUGE_DIR=$huge \
        "$top/test/system/run" --ovs=dpdk
    rc=$?
    if [ $rc != 77 ]; then
        log "--- against Open vSwitch with ovs-patches/, built with DPDK"
        CHAND_BUILD_DIR=$dir CHAND_DPDK_HUGE_DIR=$huge \
            "$top/test/system/run" --ovs=dpdk-patched || rc=1
    fi
    dpdk_env_undo
    return $rc
}

# run_manpages DIR: checks the man pages against the programs built in DIR
# (test/unit/check-manpages.py).  The result does not depend on the
# compiler, so it runs once: not in the ASan/UBSan build ($asan_dir, set by
# scripts/check).
run_manpages() {
    local dir=$1
    [ "$dir" = "${asan_dir:-}" ] && return 0
    printf '\n--- manpages\n'
    python3 "$top/test/unit/check-manpages.py" "$dir" "$top"
}

# run_unit DIR: runs the CUnit suites through 'make check' and prints each
# suite's CUnit run summary.
run_unit() {
    local dir=$1 rc=0 log
    (cd "$dir" && make -s -j"$jobs" check >check.out 2>&1) || rc=$?
    for log in "$dir"/test/unit/test-*.log; do
        [ -f "$log" ] || continue
        printf '\n--- %s\n' "$(basename "$log" .log)"
        sed -n '/^Run Summary:/,/^Elapsed/p' "$log"
        grep -E '^ +[0-9]+\. .*:[0-9]+ +- ' "$log" | head -20
    done
    grep -E '^# (TOTAL|PASS|FAIL|ERROR):' "$dir/check.out"
    if [ $rc -ne 0 ]; then
        grep -E '^(FAIL|ERROR):' "$dir/check.out" >&2
    fi
    return $rc
}
