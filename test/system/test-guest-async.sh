#!/usr/bin/env bash
# The guest loop never blocks: chand-guest sets up and checks its bridge
# over its own OVSDB and OpenFlow connections, without waiting for either
# and without child processes, so while the VM's own ovs-vswitchd does not
# answer it still serves its local API at once, and reports the bridge as
# not ready.
#
# Two faults of the VM's ovs-vswitchd, each after a record arrived:
#   1. stopped (SIGSTOP): it keeps its sockets open and answers nothing, so
#      the check's flow sync gets no answer until its deadline;
#   2. killed (SIGKILL): chand0 and the flows are gone.
# During each, `chanctl get KEY` in the VM is timed, again and again, from
# the fault until chand-guest reports the bridge not ready with a failed
# check and for a while after (its setups failing): every answer must come
# within $GA_MAX_MS ms (ip netns exec and chanctl included).  Then
# ovs-vswitchd is resumed (SIGCONT) or started again, and the bridge must
# be ready again and a new record arrive.

. "$(dirname "$0")/lib.sh"
st_require_root

TOPO_HOST_NS=chst-gahv
VM=chst-ga1
GA_MAX_MS=${CHAND_GA_MAX_MS:-100}
VSD_PIDFILE=$(ovsi_dir "$VM")/run/ovs-vswitchd.pid

# bridge FIELD...: the fields of chand-guest's "bridge" status, one a line.
bridge() {
    st_guest "$VM" guest-status --json | python3 -c '
import json, sys
b = json.load(sys.stdin)["bridge"]
for f in sys.argv[1:]:
    v = b.get(f)
    print(json.dumps(v) if not isinstance(v, str) else v)' "$@"
}

bridge_ready() {
    [ "$(bridge ready)" = true ]
}

# bridge_down CHECK_FAILURES: not ready, after more than CHECK_FAILURES
# failed checks.
bridge_down() {
    local ready failures
    { read -r ready; read -r failures; } < <(bridge ready check_failures)
    [ "$ready" = false ] && [ "${failures:-0}" -gt "$1" ]
}

# probe: one `chanctl get` in the VM, timed; adds to the samples.
GA_N=0
GA_SLOW=0
GA_MAX=0
probe() {
    local t0 t1 out ms
    t0=$(date +%s%N)
    out=$(st_guest "$VM" get ga-key 2>&1)
    t1=$(date +%s%N)
    ms=$(( (t1 - t0) / 1000000 ))
    GA_N=$((GA_N + 1))
    [ "$ms" -gt "$GA_MAX" ] && GA_MAX=$ms
    if [ "$ms" -gt "$GA_MAX_MS" ]; then
        GA_SLOW=$((GA_SLOW + 1))
        st_log "  chanctl get took $ms ms"
    fi
    case $out in
        *'"first"'*) ;;
        *) GA_SLOW=$((GA_SLOW + 1)); st_log "  chanctl get said: $out" ;;
    esac
}

probe_reset() {
    GA_N=0
    GA_SLOW=0
    GA_MAX=0
}

# probe_until SECONDS CMD...: probes every 0.2 s until CMD succeeds (timed
# out: returns 1).
probe_until() {
    local deadline=$(( $(date +%s) + $1 ))
    shift
    while ! "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$deadline" ] || return 1
        probe
        sleep 0.2
    done
}

# probe_for N: N more probes, 0.5 s apart.
probe_for() {
    local i
    for i in $(seq "$1"); do
        probe
        sleep 0.5
    done
}

# probe_report WHAT MIN: checks that there were at least MIN answers and
# all came in time.
probe_report() {
    local what="$1: all $GA_N answers within $GA_MAX_MS ms"
    st_check "$what (slowest $GA_MAX ms)" \
        test "$GA_N" -ge "$2" -a "$GA_SLOW" = 0
}

guest_pid() {
    cat "$TOPO_RUN/$VM/chand-guest.pid"
}

# chand-guest runs nothing: it has no child process.
no_children() {
    local n
    n=$(ps -o pid= --ppid "$(guest_pid)" | wc -l)
    [ "$n" -eq 0 ] || { st_log "  chand-guest has $n children"; return 1; }
}

st_up "$VM:41"
st_check "channel ready" st_chanctl wait --timeout 60
st_chanctl push --vm "$VM" ga-key '"first"' || st_fail "push ga-key"
st_check "the first record arrives" st_wait 20 st_guest "$VM" get ga-key
st_check "the guest bridge is ready" bridge_ready
pid0=$(guest_pid)

probe_reset
probe_for 10
probe_report "with ovs-vswitchd running" 10

# --- 1: the VM's ovs-vswitchd stopped -------------------------------------
vsd=$(ovsi__pid "$VSD_PIDFILE" ovs-vswitchd) ||
    st_fail "no ovs-vswitchd in $VM"
failures=$(bridge check_failures)
kill -STOP "$vsd"
st_log "ovs-vswitchd of $VM stopped (SIGSTOP)"
probe_reset
if probe_until 60 bridge_down "$failures"; then
    st_log "ok: chand-guest reports its bridge not ready: $(bridge last_error)"
else
    st_fail "chand-guest does not report its bridge down" \
        "while ovs-vswitchd is stopped"
fi
probe_for 20          # Its setups wait for OpenFlow meanwhile.
st_log "  bridge sync now: $(bridge syncing step sync_ms | tr '\n' ' ')"
probe_report "ovs-vswitchd stopped" 40
st_check "no child process" no_children
kill -CONT "$vsd"
st_log "ovs-vswitchd of $VM resumed (SIGCONT)"
st_check "the guest bridge is ready again" st_wait 60 bridge_ready
st_chanctl push --vm "$VM" ga-stop '"after the stop"' || st_fail "push ga-stop"
st_check "a record pushed after the stop arrives" \
    st_wait 30 st_guest "$VM" get ga-stop

# --- 2: the VM's ovs-vswitchd killed -------------------------------------
failures=$(bridge check_failures)
setups=$(bridge setups)
topo_vswitchd_kill "$VM" || st_fail "cannot kill ovs-vswitchd of $VM"
st_log "ovs-vswitchd of $VM killed"
probe_reset
if probe_until 60 bridge_down "$failures"; then
    st_log "ok: chand-guest reports its bridge not ready: $(bridge last_error)"
else
    st_fail "chand-guest does not report its bridge down" \
        "after ovs-vswitchd died"
fi
probe_for 20          # Its setups fail meanwhile, backing off.
st_log "  setup failures: $(bridge setup_failures)," \
    "backoff $(bridge backoff_ms) ms, last error: $(bridge last_error)"
probe_report "ovs-vswitchd dead" 20
topo_vswitchd_start "$VM" || st_fail "ovs-vswitchd of $VM did not start"
st_log "ovs-vswitchd of $VM started again"
st_check "the guest bridge is set up again" st_wait 60 bridge_ready
st_check "it took a new setup" test "$(bridge setups)" -gt "$setups"
st_chanctl push --vm "$VM" ga-kill '"after the kill"' || st_fail "push ga-kill"
st_check "a record pushed after the restart arrives" \
    st_wait 30 st_guest "$VM" get ga-kill

st_check "the channel converges" st_chanctl wait --vm "$VM" --timeout 60
st_check "chand-guest ran throughout (pid $pid0)" test "$(guest_pid)" = "$pid0"
st_check "no child process" no_children
st_exit
