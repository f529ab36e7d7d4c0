# scripts/lib/soak.sh -- scripts/bench --soak HOURS: chand under a steady
# mixed load for hours, the memory, descriptors and CPU of its daemons and
# of Open vSwitch sampled all along (doc/bench.md, "Soak").
#
# Sourced by scripts/bench once the tree is built; it sets top, build, CB
# (chand-bench), CHANCTL, out (--out, may be empty), keep (--keep) and the
# soak's options:
#   soak_hours     how long the load runs, in hours (a decimal number)
#   soak_interval  seconds between samples (--soak-interval, default 60)
#   soak_warmup    seconds left out of the slopes (--soak-warmup, default
#                  600), from the start of the soak and from the start of
#                  each process the soak restarted
#   soak_rotate    seconds between key rotations (--soak-rotate, default 600)
#   soak_restart   seconds between chand-guest restarts (--soak-restart,
#                  default 3600)
# soak_main runs the soak and returns its exit status.
#
# The topology is scripts/lib/topology.sh's: a hypervisor namespace
# chsk-hv (ovsdb-server with the Open_vSwitch DB and the Chan DB,
# ovs-vswitchd, chand-host) and two VMs, chsk-vm1 and chsk-vm2 (each its
# own ovsdb-server, ovs-vswitchd and chand-guest, with a key).  Its files
# are under /tmp/chand-soak/run.XXXXXX, removed at the end (kept, with the
# daemons' logs, if the soak failed).
#
# The load, all along:
#   pushes      chand-bench pushrate, one per VM: updates of 100 records of
#               that VM round-robin, one transaction each, together
#               SOAK_PUSH_RATE records/s (default 100)
#   publishes   chand-bench publish in each VM through chand-guest's local
#               API: updates of 20 records round-robin, SOAK_PUBLISH_RATE
#               per VM and second (default 10), started once the channel is
#               ready (the host acknowledges the first ones before the
#               rate starts)
#   rotation    every soak_rotate seconds, each VM's key: chanctl key-add
#               (and the guest's key file), until both sides send with the
#               new generation, then chanctl key-retire of the old one (and
#               the line out of the key file)
#   restart     every soak_restart seconds, each VM's chand-guest stopped
#               and started again (its publisher too), until its new
#               session is ready
#
# Every soak_interval seconds: VmRSS (/proc/PID/status), the number of open
# descriptors (/proc/PID/fd) and utime + stime (/proc/PID/stat) of each
# process, by name (a restarted process is a new pid under the same name),
# and per VM the operations applied in its datastore (channel.ops_applied,
# with sqlite3) and the newest version of its published records in
# Guest_Record.  The soak fails (exit 1) if a daemon or a load generator
# dies, a rotation or a restart does not complete, a VM applies nothing or
# gets no publication into Guest_Record for three sample intervals (at
# least two minutes), or once the load stops a VM is not in sync within a
# minute or what it published is not what Guest_Record holds.  The memory
# and descriptor targets are reported, not asserted.
#
# bench/soak-report.py turns the samples into DIR/<date>-soak.md and .json
# (DIR: --out, default /tmp/chand-soak).

# (top, build, keep and the soak_* options come from scripts/bench.)
# shellcheck disable=SC2154

SOAK_VMS=(chsk-vm1 chsk-vm2)
SOAK_NAMESPACES="chsk-hv chsk-vm1 chsk-vm2"
SOAK_PUSH_KEYS=100              # Records each pusher updates round-robin.
SOAK_PUBLISH_KEYS=20            # Records each publisher updates.

soak_log() {
    log "soak: $*"
}

# soak_now_us: the wall clock in microseconds.
soak_now_us() {
    printf '%s\n' "${EPOCHREALTIME/./}"
}

# soak_ts US: microseconds as seconds with a fraction.
soak_ts() {
    printf '%d.%06d\n' $(( $1 / 1000000 )) $(( $1 % 1000000 ))
}

# soak_event KIND VM DETAIL...: one line of events.tsv (time, kind, VM or
# "-", free text).
soak_event() {
    local kind=$1 vm=$2
    shift 2
    printf '%s\t%s\t%s\t%s\n' "$(soak_ts "$(soak_now_us)")" "$kind" "$vm" \
        "$*" >>"$RAW/events.tsv"
}

# soak_fail REASON...: records a problem; the soak stops at the next check
# and exits 1 after its report.
soak_fail() {
    SOAK_PROBLEMS+=("$*")
    soak_event fail - "$*"
    soak_log "FAILED: $*"
}

soak_db() {
    topo_db
}

soak_chanctl() {
    CHAND_CHAN_DB=$(topo_db) CHAND_HOST_CTL=$TOPO_RUN/chand-host.ctl \
        "$CHANCTL" "$@"
}

soak_vm_id() {
    echo $(( 10 + ${1#chsk-vm} ))
}

# soak_daemons: NAME PIDFILE of every process sampled.
soak_daemons() {
    local vm run
    run=$(ovsi_dir hv)/run
    echo "chand-host $TOPO_RUN/chand-host.pid"
    echo "ovsdb-server(hv) $run/ovsdb-server.pid"
    echo "ovs-vswitchd(hv) $run/ovs-vswitchd.pid"
    for vm in "${SOAK_VMS[@]}"; do
        run=$(ovsi_dir "$vm")/run
        echo "chand-guest($vm) $TOPO_RUN/$vm/chand-guest.pid"
        echo "ovsdb-server($vm) $run/ovsdb-server.pid"
        echo "ovs-vswitchd($vm) $run/ovs-vswitchd.pid"
    done
}

# soak_sample_procs T: one line of samples.tsv per process: time, name,
# pid, start time (clock ticks after boot: tells a reused pid apart), VmRSS
# (kB), open descriptors, utime + stime (clock ticks).
soak_sample_procs() {
    local t=$1 name pidfile pid st rss fds
    local -a f
    while read -r name pidfile; do
        pid=$(cat "$pidfile" 2>/dev/null)
        if [ -z "$pid" ] || ! read -r st <"/proc/$pid/stat" 2>/dev/null; then
            soak_fail "$name is not running (pidfile $pidfile: '$pid')"
            continue
        fi
        st=${st##*) }           # The fields after "PID (COMM) ".
        read -ra f <<<"$st"
        rss=$(awk '/^VmRSS:/{print $2}' "/proc/$pid/status" 2>/dev/null)
        fds=$(ls "/proc/$pid/fd" 2>/dev/null | wc -l)
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$name" "$pid" \
            "${f[19]}" "${rss:-0}" "$fds" $(( f[11] + f[12] )) \
            >>"$RAW/samples.tsv"
    done < <(soak_daemons)
}

# soak_applied VM: the operations VM's datastore has applied (committed).
soak_applied() {
    sqlite3 -readonly -cmd '.timeout 5000' "$TOPO_RUN/$1/guest.db" \
        'SELECT ops_applied FROM channel' 2>/dev/null
}

# soak_visible VM: the newest version of VM's published soak records in
# Guest_Record (chand-guest numbers its publications in one sequence, so
# it grows with every publication that gets there).
soak_visible() {
    ovsdb-client transact "$(soak_db)" "[\"Chan\",{\"op\":\"select\",
        \"table\":\"Guest_Record\",\"where\":[[\"vm\",\"==\",\"$1\"]],
        \"columns\":[\"key\",\"version\"]}]" 2>/dev/null |
        python3 -c 'import json, sys
rows = json.load(sys.stdin)[0]["rows"]
print(max([r["version"] for r in rows if r["key"].startswith("soakpub/")]
          or [0]))' 2>/dev/null
}

# soak_sample_counters T: one line of counters.tsv per VM: time, VM,
# operations applied, newest publication in Guest_Record.  Checks that
# both keep growing (SOAK_STALL_US without either is a failure).
declare -A SOAK_LAST_APPLIED SOAK_LAST_VISIBLE SOAK_ADV_APPLIED SOAK_ADV_VISIBLE
soak_sample_counters() {
    local t=$1 now vm a v
    now=$(soak_now_us)
    for vm in "${SOAK_VMS[@]}"; do
        a=$(soak_applied "$vm")
        v=$(soak_visible "$vm")
        printf '%s\t%s\t%s\t%s\n' "$t" "$vm" "${a:--1}" "${v:--1}" \
            >>"$RAW/counters.tsv"
        if [ -n "$a" ] && [ "$a" != "${SOAK_LAST_APPLIED[$vm]:-}" ]; then
            SOAK_LAST_APPLIED[$vm]=$a
            SOAK_ADV_APPLIED[$vm]=$now
        fi
        if [ -n "$v" ] && [ "$v" != "${SOAK_LAST_VISIBLE[$vm]:-}" ]; then
            SOAK_LAST_VISIBLE[$vm]=$v
            SOAK_ADV_VISIBLE[$vm]=$now
        fi
        if (( now - ${SOAK_ADV_APPLIED[$vm]:-$now} > SOAK_STALL_US )); then
            soak_fail "$vm applied nothing for" \
                "$(( (now - SOAK_ADV_APPLIED[$vm]) / 1000000 )) s" \
                "(ops_applied stays ${SOAK_LAST_APPLIED[$vm]:-?})"
        fi
        if (( now - ${SOAK_ADV_VISIBLE[$vm]:-$now} > SOAK_STALL_US )); then
            soak_fail "no publication of $vm reached Guest_Record for" \
                "$(( (now - SOAK_ADV_VISIBLE[$vm]) / 1000000 )) s" \
                "(newest version stays ${SOAK_LAST_VISIBLE[$vm]:-?})"
        fi
    done
}

# soak_tail FILE...: the end of what FILEs say, on one line.
soak_tail() {
    cat "$@" 2>/dev/null | tr '\n\t' '  ' | tail -c 300
}

# soak_check_load: the load generators still run.
soak_check_load() {
    local vm
    for vm in "${SOAK_VMS[@]}"; do
        kill -0 "${SOAK_PUSH_PID[$vm]}" 2>/dev/null ||
            soak_fail "the pusher for $vm exited:" \
                "$(soak_tail "$RAW/push-$vm.err" "$RAW/push-$vm.json")"
        [ -z "${SOAK_PUB_PID[$vm]}" ] ||   # (Stopped on purpose.)
        kill -0 "${SOAK_PUB_PID[$vm]}" 2>/dev/null ||
            soak_fail "the publisher in $vm exited:" \
                "$(soak_tail "${SOAK_PUB_OUT[$vm]}.err" \
                   "${SOAK_PUB_OUT[$vm]}.json")"
    done
}

# soak_count RATE: how many samples a load generator at RATE/s needs to
# last until the end of the soak (and ten minutes more).
soak_count() {
    awk -v r="$1" -v s=$(( (SOAK_END_US - $(soak_now_us)) / 1000000 + 600 )) \
        'BEGIN { printf "%d\n", r * s + 1 }'
}

# soak_push_start VM: the pusher of VM's records (chand-bench pushrate).
declare -A SOAK_PUSH_PID SOAK_PUB_PID SOAK_PUB_RUNS SOAK_PUB_OUT
soak_push_start() {
    local vm=$1 rate
    rate=$(awk -v r="$SOAK_PUSH_RATE" -v n=${#SOAK_VMS[@]} \
           'BEGIN { printf "%g\n", r / n }')
    "$CB" pushrate "$(soak_db)" --vm "$vm" --prefix soak/ \
        --keys $SOAK_PUSH_KEYS --rate "$rate" --count "$(soak_count "$rate")" \
        --log /dev/null --timeout-s 120 \
        >"$RAW/push-$vm.json" 2>"$RAW/push-$vm.err" &
    SOAK_PUSH_PID[$vm]=$!
    SOAK_BG+=($!)
}

# soak_publish_start VM / soak_publish_stop VM: VM's publisher
# (chand-bench publish in VM), one run per chand-guest: its output in
# publish-VM-N.json.
soak_publish_start() {
    local vm=$1 n f
    n=$(( ${SOAK_PUB_RUNS[$vm]:-0} + 1 ))
    SOAK_PUB_RUNS[$vm]=$n
    f=$RAW/publish-$vm-$n
    SOAK_PUB_OUT[$vm]=$f
    ip netns exec "$vm" "$CB" publish @chand-guest --prefix soakpub/ \
        --keys $SOAK_PUBLISH_KEYS --rate "$SOAK_PUBLISH_RATE" \
        --count "$(soak_count "$SOAK_PUBLISH_RATE")" --inflight 64 \
        --timeout-s $(( (SOAK_END_US - $(soak_now_us)) / 1000000 + 600 )) \
        --log /dev/null >"$f.json" 2>"$f.err" &
    SOAK_PUB_PID[$vm]=$!
    SOAK_BG+=($!)
}

soak_publish_stop() {
    local pid=${SOAK_PUB_PID[$1]:-}
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    SOAK_PUB_PID[$1]=
}

soak_push_stop() {
    local pid=${SOAK_PUSH_PID[$1]:-}
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    SOAK_PUSH_PID[$1]=
}

# soak_wait SECONDS CMD...: until CMD succeeds, every 0.2 s; fails after
# SECONDS.
soak_wait() {
    local end=$(( $(soak_now_us) + $1 * 1000000 ))
    shift
    until "$@"; do
        (( $(soak_now_us) > end )) && return 1
        sleep 0.2
    done
}

# soak_on_generation VM GEN: chand-host sends to VM with key generation
# GEN and has seen it from the guest, and the guest sends and receives with
# it.
soak_on_generation() {
    local vm=$1 gen=$2 host guest
    host=$(soak_chanctl channel-show "$vm" 2>/dev/null) &&
    guest=$(ip netns exec "$vm" "$CHANCTL" guest-status --json 2>/dev/null) &&
    grep -q "\"tx_key_generation\": $gen," <<<"$host" &&
    grep -q "\"rx_key_generation\": $gen," <<<"$host" &&
    grep -q "\"tx_generation\": $gen," <<<"$guest" &&
    grep -q "\"rx_generation\": $gen," <<<"$guest"
}

# soak_rotate VM: the next generation of VM's key added in the Chan DB and
# in its key file; once both sides use it, the old one retired from both.
soak_rotate() {
    local vm=$1 keys=$TOPO_RUN/$1/channel.key old new t0
    t0=$(soak_now_us)
    old=$(awk 'NF == 2 { g = $1 } END { print g }' "$keys")
    topo_key_add "$vm" || { soak_fail "key-add for $vm failed"; return 1; }
    new=$(awk 'NF == 2 { g = $1 } END { print g }' "$keys")
    if ! soak_wait 60 soak_on_generation "$vm" "$new"; then
        soak_fail "$vm: key generation $new not in use on both sides" \
            "60 s after key-add (old: $old)"
        return 1
    fi
    soak_chanctl key-retire --vm "$vm" "$old" >/dev/null ||
        { soak_fail "key-retire of $vm's generation $old failed"; return 1; }
    sed -i "/^${old}[[:space:]]/d" "$keys"
    soak_event rotate "$vm" "generation $old -> $new in" \
        "$(( ($(soak_now_us) - t0) / 1000 )) ms"
}

# soak_in_session VM: VM's chand-guest (the one running now) is in session
# with chand-host (a restarted guest resumes where its datastore is), and
# chand-host has the channel ready.
soak_in_session() {
    local guest host
    guest=$(ip netns exec "$1" "$CHANCTL" guest-status --json 2>/dev/null) &&
        grep -q '"in_session": true' <<<"$guest" &&
        host=$(soak_chanctl channel-show "$1" 2>/dev/null) &&
        grep -q '"state": "ready"' <<<"$host"
}

# soak_restart VM: VM's chand-guest (and its publisher) stopped and
# started again, until the new session is ready.
soak_restart() {
    local vm=$1 t0 old new i
    t0=$(soak_now_us)
    soak_publish_stop "$vm"
    old=$(cat "$TOPO_RUN/$vm/chand-guest.pid" 2>/dev/null)
    topo_guest_stop "$vm"
    for i in 1 2 3; do
        topo_guest_start "$vm" "$(soak_vm_id "$vm")" 2>>"$W/start.err" &&
            break
        sleep 1
    done
    new=$(cat "$TOPO_RUN/$vm/chand-guest.pid" 2>/dev/null)
    if [ -z "$new" ] || [ "$new" = "$old" ]; then
        soak_fail "chand-guest of $vm did not start again"
        return 1
    fi
    if ! soak_wait 60 soak_in_session "$vm"; then
        soak_fail "$vm: not in session 60 s after chand-guest restarted"
        return 1
    fi
    soak_event restart "$vm" "chand-guest pid $old -> $new, ready in" \
        "$(( ($(soak_now_us) - t0) / 1000 )) ms"
    soak_publish_start "$vm"
}

# soak_end_checks: once the load has stopped, each VM in sync (every
# pushed version applied) and every publication acknowledged, with
# Guest_Record holding exactly what the guest published.  Writes
# checks.tsv (name, ok|FAIL, detail).
soak_end_checks() {
    local vm detail
    for vm in "${SOAK_VMS[@]}"; do
        if detail=$(soak_chanctl wait --vm "$vm" --timeout 60 2>&1); then
            printf 'in-sync\t%s\tok\t%s\n' "$vm" \
                "every pushed version applied" >>"$RAW/checks.tsv"
        else
            printf 'in-sync\t%s\tFAIL\t%s\n' "$vm" \
                "$(tr '\n\t' '  ' <<<"$detail" | cut -c1-300)" \
                >>"$RAW/checks.tsv"
            soak_fail "$vm not in sync 60 s after the load stopped"
        fi
        soak_wait 60 soak_nothing_pending "$vm"
        ip netns exec "$vm" python3 "$top/test/system/upstream-tool.py" \
            published soakpub/ >"$RAW/published-$vm.json" 2>&1
        python3 "$top/test/system/upstream-tool.py" guest-records \
            "$(soak_db)" "$vm" soakpub/ >"$RAW/guest-records-$vm.json" 2>&1
        if detail=$(python3 - "$RAW/published-$vm.json" \
                    "$RAW/guest-records-$vm.json" 2>&1 <<'PY'
import json, sys
pub = json.load(open(sys.argv[1]))
gr = json.load(open(sys.argv[2]))
if pub["pending"]:
    sys.exit("%d publications still pending" % pub["pending"])
if pub["records"] != gr:
    diff = sorted(k for k in set(pub["records"]) | set(gr)
                  if pub["records"].get(k) != gr.get(k))
    sys.exit("Guest_Record differs from the guest's published records"
             " at %d keys, e.g. %s" % (len(diff), diff[:3]))
print("%d records published, all in Guest_Record" % len(gr))
PY
            ); then
            printf 'published\t%s\tok\t%s\n' "$vm" "$detail" \
                >>"$RAW/checks.tsv"
        else
            detail=$(tail -1 <<<"$detail")
            printf 'published\t%s\tFAIL\t%s\n' "$vm" "$detail" \
                >>"$RAW/checks.tsv"
            soak_fail "$vm: $detail"
        fi
        soak_chanctl channel-show "$vm" >"$RAW/channel-$vm.json" 2>&1
        ip netns exec "$vm" "$CHANCTL" guest-status --json \
            >"$RAW/guest-$vm.json" 2>&1
        sqlite3 -readonly "$TOPO_RUN/$vm/guest.db" \
            "SELECT count(*), coalesce(sum(version), 0) FROM records
             WHERE key LIKE 'soak/%'" >"$RAW/records-$vm.txt" 2>&1
    done
}

# soak_nothing_pending VM: chand-host acknowledged all VM's publications.
soak_nothing_pending() {
    local out
    out=$(ip netns exec "$1" python3 "$top/test/system/upstream-tool.py" \
          published soakpub/ 2>/dev/null) &&
        grep -q '"pending": 0' <<<"$out"
}

# soak_meta FILE: the run's settings and machine (completed at the end).
soak_meta() {
    python3 - "$1" "$top" "$soak_hours" "$soak_interval" "$soak_warmup" \
        "$soak_rotate" "$soak_restart" "$SOAK_PUSH_RATE" \
        "$SOAK_PUBLISH_RATE" "$((SOAK_STALL_US / 1000000))" \
        "$(getconf CLK_TCK)" "${SOAK_VMS[*]}" <<'PY'
import json, os, platform, subprocess, sys, time
(out, top, hours, interval, warmup, rotate, restart, push_rate, pub_rate,
 stall, hz, vms) = sys.argv[1:]
def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True,
                              cwd=top).stdout.strip()
    except Exception:
        return ""
json.dump({
    "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    "hours": float(hours), "interval_s": float(interval),
    "warmup_s": float(warmup), "rotate_s": float(rotate),
    "restart_s": float(restart), "push_rate": float(push_rate),
    "push_keys_per_vm": 100, "publish_rate_per_vm": float(pub_rate),
    "publish_keys_per_vm": 20, "stall_s": int(stall), "hz": int(hz),
    "btime": int(next(l.split()[1] for l in open("/proc/stat")
                      if l.startswith("btime "))),
    "vms": vms.split(),
    "git": sh("git describe --always --dirty 2>/dev/null"),
    "kernel": platform.release(),
    "cpus": os.cpu_count(),
    "cpu_model": sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"),
    "ovs": sh("ovs-vswitchd --version | head -1"),
    "loadavg_start": open("/proc/loadavg").read().split()[:3],
}, open(out, "w"), indent=1)
PY
}

# soak_meta_end FILE STATUS: the end of the run in the meta data.
soak_meta_end() {
    python3 - "$1" "$2" <<'PY'
import json, sys, time
m = json.load(open(sys.argv[1]))
m["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
m["end_date"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
m["ended"] = sys.argv[2]
json.dump(m, open(sys.argv[1], "w"), indent=1)
PY
}

soak_cleanup() {
    local p vm
    set +e
    for p in "${SOAK_BG[@]}"; do
        kill "$p" 2>/dev/null
    done
    for p in "${SOAK_BG[@]}"; do
        wait "$p" 2>/dev/null
    done
    if [ "$keep" = 1 ]; then
        soak_log "kept $W (topology still up; remove with:" \
            "OVSI_BASE=$OVSI_BASE; . scripts/ovs-instance.sh;" \
            ". scripts/lib/topology.sh; TOPO_RUN=$TOPO_RUN" \
            "TOPO_HOST_NS=chsk-hv topo_down ${SOAK_VMS[*]})"
        return
    fi
    topo_down "${SOAK_VMS[@]}" >/dev/null 2>&1
    if [ ${#SOAK_PROBLEMS[@]} -gt 0 ] || [ "$SOAK_DONE" = 0 ]; then
        soak_log "kept $W (the daemons' logs, the raw samples)"
    else
        rm -rf "$W"
    fi
}

soak_main() {
    local ns vm t next now i
    SOAK_PUSH_RATE=${SOAK_PUSH_RATE:-100}
    SOAK_PUBLISH_RATE=${SOAK_PUBLISH_RATE:-10}
    SOAK_PROBLEMS=()
    SOAK_BG=()
    SOAK_DONE=0
    SOAK_STOP=
    for ns in $SOAK_NAMESPACES; do
        if [ -e "/var/run/netns/$ns" ]; then
            echo "bench: namespace $ns exists: is another soak running?" \
                 "(remove it with: ip netns del $ns)" >&2
            return 1
        fi
    done
    local dur_s
    dur_s=$(awk -v h="$soak_hours" 'BEGIN { printf "%d\n", h * 3600 + 0.5 }')
    [ "$dur_s" -gt 0 ] || { echo "bench: --soak: too short" >&2; return 2; }
    # A stall: nothing applied (or published) for three sample intervals,
    # at least two minutes.
    SOAK_STALL_US=$(( soak_interval * 3 > 120 ? soak_interval * 3000000
                                               : 120000000 ))

    mkdir -p /tmp/chand-soak || return 1
    W=$(mktemp -d /tmp/chand-soak/run.XXXXXX) || return 1
    RAW=$W/raw
    mkdir -p "$RAW"
    : >"$RAW/samples.tsv"
    : >"$RAW/counters.tsv"
    : >"$RAW/events.tsv"
    : >"$RAW/checks.tsv"
    export OVSI_BASE=$W/o
    . "$top/scripts/ovs-instance.sh"
    . "$top/scripts/lib/topology.sh"
    TOPO_BIN=$build
    TOPO_SRC=$top
    TOPO_RUN=$W/r
    TOPO_HOST_NS=chsk-hv
    trap soak_cleanup EXIT
    trap 'exit 130' INT TERM HUP
    soak_log "work directory $W; $soak_hours h ($dur_s s), a sample every" \
        "$soak_interval s, warm-up $soak_warmup s, key rotation every" \
        "$soak_rotate s, chand-guest restart every $soak_restart s"
    soak_meta "$RAW/meta.json"

    # The topology: the hypervisor, then both VMs, each channel ready.
    topo_host_up 2>>"$W/start.err" ||
        { soak_log "the hypervisor did not start"; tail "$W/start.err" >&2
          return 1; }
    for vm in "${SOAK_VMS[@]}"; do
        topo_vm_up "$vm" "$(soak_vm_id "$vm")" 2>>"$W/start.err" ||
            { soak_log "VM $vm did not start"; tail "$W/start.err" >&2
              return 1; }
    done
    for vm in "${SOAK_VMS[@]}"; do
        soak_chanctl wait --vm "$vm" --timeout 60 >/dev/null 2>&1 ||
            { soak_log "the channel of $vm is not ready"; return 1; }
    done

    # The load.
    local start_us
    start_us=$(soak_now_us)
    SOAK_END_US=$(( start_us + dur_s * 1000000 ))
    for vm in "${SOAK_VMS[@]}"; do
        soak_push_start "$vm"
        soak_publish_start "$vm"
    done
    soak_event start - "load: $SOAK_PUSH_RATE records/s pushed," \
        "$SOAK_PUBLISH_RATE publications/s per VM"

    # From here on an interrupt ends the soak early, with its report.
    trap 'SOAK_STOP=interrupted' INT TERM HUP
    local next_sample=$start_us
    local next_rotate=$(( start_us + soak_rotate * 1000000 ))
    local next_restart=$(( start_us + soak_restart * 1000000 ))
    local n=0 last_sample=0
    while :; do
        now=$(soak_now_us)
        if (( now >= next_sample )); then
            last_sample=$now
            t=$(soak_ts "$now")
            soak_sample_procs "$t"
            soak_sample_counters "$t"
            soak_check_load
            n=$(( n + 1 ))
            next_sample=$(( next_sample + soak_interval * 1000000 ))
            (( next_sample <= now )) &&
                next_sample=$(( now + soak_interval * 1000000 ))
            if (( n % 10 == 1 )); then
                soak_log "sample $n, $(( (now - start_us) / 1000000 )) s of" \
                    "$dur_s; applied: $(for vm in "${SOAK_VMS[@]}"; do
                        printf '%s %s ' "$vm" "${SOAK_LAST_APPLIED[$vm]:-?}"
                    done)"
            fi
        fi
        [ ${#SOAK_PROBLEMS[@]} -gt 0 ] && break
        [ -n "$SOAK_STOP" ] && break
        (( now >= SOAK_END_US )) && break
        if (( now >= next_rotate && now < SOAK_END_US )); then
            for vm in "${SOAK_VMS[@]}"; do
                soak_rotate "$vm" || break
            done
            next_rotate=$(( next_rotate + soak_rotate * 1000000 ))
            continue
        fi
        if (( now >= next_restart && now < SOAK_END_US )); then
            for vm in "${SOAK_VMS[@]}"; do
                soak_restart "$vm" || break
            done
            next_restart=$(( next_restart + soak_restart * 1000000 ))
            continue
        fi
        # Until the next thing due (the end included); in the background so
        # that an interrupt is seen at once.
        next=$next_sample
        (( next_rotate < next )) && next=$next_rotate
        (( next_restart < next )) && next=$next_restart
        (( SOAK_END_US < next )) && next=$SOAK_END_US
        now=$(soak_now_us)
        if (( next > now )); then
            sleep "$(soak_ts $(( next - now )))" &
            wait $! 2>/dev/null
        fi
    done
    # The last sample, at the end (unless the loop just took it).
    now=$(soak_now_us)
    if [ ${#SOAK_PROBLEMS[@]} = 0 ] && (( now - last_sample > 1000000 )); then
        t=$(soak_ts "$now")
        soak_sample_procs "$t"
        soak_sample_counters "$t"
    fi
    trap 'exit 130' INT TERM HUP
    local why=${SOAK_STOP:-end}
    [ ${#SOAK_PROBLEMS[@]} -gt 0 ] && why=failed
    soak_event stop - "$why"
    soak_log "load stopped ($why); checking the channels"
    for vm in "${SOAK_VMS[@]}"; do
        soak_publish_stop "$vm"
        soak_push_stop "$vm"
    done
    soak_end_checks
    if [ -n "$SOAK_STOP" ]; then
        soak_meta_end "$RAW/meta.json" "$SOAK_STOP"
    elif [ ${#SOAK_PROBLEMS[@]} -gt 0 ]; then
        soak_meta_end "$RAW/meta.json" failed
    else
        soak_meta_end "$RAW/meta.json" end
    fi
    SOAK_DONE=1

    # The report.
    local base
    out=${out:-/tmp/chand-soak}
    mkdir -p "$out" || return 1
    base=$out/$(date -u +%Y-%m-%d)-soak
    i=2
    while [ -e "$base.md" ]; do
        base=$out/$(date -u +%Y-%m-%d)-soak-$i
        i=$(( i + 1 ))
    done
    python3 "$top/bench/soak-report.py" --raw "$RAW" --md "$base.md" \
        --json "$base.json" --summary ||
        soak_fail "bench/soak-report.py failed"
    soak_log "report $base.md and $base.json"
    if [ ${#SOAK_PROBLEMS[@]} -gt 0 ]; then
        for i in "${SOAK_PROBLEMS[@]}"; do
            soak_log "FAILED: $i"
        done
        return 1
    fi
    [ -n "$SOAK_STOP" ] && return 130
    return 0
}
