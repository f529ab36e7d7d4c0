# test/system/fault-lib.sh -- shared by the fault tests (test-fault-*.sh):
# workloads whose history is logged, "mid-push" detection, and the three
# end checks every fault test makes:
#
#   (a) every guest datastore equals the desired state (compare-store.py
#       against the model of what was pushed);
#   (b) nothing was applied twice: per key, records.apply_count never
#       exceeds the number of times the key's state for that VM changed
#       (fault-tool.py applies), and -- stronger -- the frames the guest
#       store applied (channel.frames_applied) equal the messages chand-host
#       saw acknowledged (msgs_acked, chanctl channel-show): a duplicate
#       applied again, or a frame applied but never acknowledged, breaks
#       the equality;
#   (c) the Chan DB's applied state is true (check-chandb.py).
#
# Sourced after lib.sh.

FL_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
FL_TOOL=$FL_HERE/fault-tool.py

# Namespaces of their own, so a fault test does not clash with test-e2e
# run by someone else at the same time.
TOPO_HOST_NS=chst-fhv

FL_VMS=()
declare -A FL_GOFF FL_HOFF      # Per VM: frames-check offsets (see below).
FL_T0=$(date +%s.%N)

fl_elapsed() {
    awk -v a="$FL_T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'
}

fl_log() {
    st_log "[$(fl_elapsed)s] $*"
}

# fl_check DESCRIPTION CMD...: st_check, with the time in the log.
fl_check() {
    local what=$1
    shift
    if "$@"; then
        fl_log "ok: $what"
    else
        st_fail "$what"
    fi
}

# fl_up VM:CHAN_ID...: hypervisor and VMs, all channels ready.
fl_up() {
    local spec
    st_up "$@"
    for spec in "$@"; do
        FL_VMS+=("${spec%%:*}")
        FL_GOFF[${spec%%:*}]=0
        FL_HOFF[${spec%%:*}]=0
    done
    st_chanctl wait --timeout 60 ||
        { st_fail "channels not ready after setup"; exit 1; }
    fl_log "up: ${FL_VMS[*]}"
}

# fl_bulk NAME SEED N BATCH PAUSE: N operations on keys NAME/* in
# transactions of BATCH (fault-tool.py bulk), aimed at the VMs or all,
# logged in push-NAME.log.
fl_bulk() {
    local name=$1
    shift
    "$FL_TOOL" bulk "$(topo_db)" "$OVSI_BASE/push-$name.log" "$name/" "$@" \
        "${FL_VMS[@]}"
}

# fl_bulk_bg ...: the same in the background; fl_bulk_join waits for it.
fl_bulk_bg() {
    fl_bulk "$@" &
    FL_BULK_PID=$!
}

fl_bulk_join() {
    wait "$FL_BULK_PID" || st_fail "bulk push failed"
}

# fl_push ARGS...: chanctl push/delete ARGS, logged in push-chanctl.log.
fl_push() {
    st_chanctl "$@" || { st_fail "chanctl $*"; return 1; }
    printf '%s\n' "$(printf '%q ' "$@")" >>"$OVSI_BASE/push-chanctl.log"
}

# fl_hot N PREFIX: N chanctl pushes cycling over 4 hot keys PREFIX0..3 (to
# each VM in turn and to all VMs): keys with many versions in flight at
# once, so that a frame applied twice shows in apply_count.
fl_hot() {
    local n=$1 prefix=$2 i vm targets=("" "${FL_VMS[@]}")
    for i in $(seq "$n"); do
        vm=${targets[$((i % ${#targets[@]}))]}
        fl_push push ${vm:+--vm "$vm"} "$prefix$((i % 4))" "{\"hot\":$i}"
    done
}

# fl_midpush VM MIN_APPLIED [MIN_QUEUED [PIDFILE PROGRAM]]: waits for a
# push to VM to be under way -- its Channel row shows applied_count >=
# MIN_APPLIED, and chand-host has at least MIN_QUEUED (default 10)
# messages for it not yet acknowledged -- and logs it; fails the test if
# that moment never comes.  With PIDFILE, the fault is a SIGKILL of that
# process (PROGRAM), sent at that very moment: a push is delivered in tens
# of milliseconds.  Otherwise inject the fault right after.  Sets
# FL_MID_SENT and FL_MID_ACKED to the host's frames_sent and frames_acked
# at that moment.
fl_midpush() {
    local out rc
    out=$("$FL_TOOL" midpush "$(topo_db)" "$TOPO_RUN/chand-host.ctl" "$1" \
          "$2" "${3:-10}" 30 "${@:4}")
    rc=$?
    fl_log "$(printf '%s\n' "$out" | head -1)"
    read -r FL_MID_SENT FL_MID_ACKED <<<"$(printf '%s\n' "$out" | sed -n 2p)"
    [ $rc = 0 ] || { st_fail "fault not injected mid-push"; return 1; }
}

# fl_pending VM: chanctl wait must show VM's channel with work pending
# (logged); fails the test otherwise.
fl_pending() {
    local out
    if out=$(st_chanctl wait --vm "$1" --timeout 0.05 2>&1); then
        st_fail "$1: chanctl wait shows nothing pending"
        return 1
    fi
    fl_log "chanctl wait: $(printf '%s' "$out" | grep -m1 "$1:" |
        sed 's/^ *//' | cut -c1-160)"
}

# fl_converge WHAT [TIMEOUT]: every channel ready and synced (chanctl
# wait).  After one failure the later waits are short: the test is failing
# anyway.
FL_WAIT=60
fl_converge() {
    local out
    if out=$(st_chanctl wait --timeout "${2:-$FL_WAIT}" 2>&1); then
        fl_log "ok: $1"
    else
        printf '%s\n' "$out" | head -8 >&2
        st_fail "$1"
        FL_WAIT=5
    fi
}

# fl_host VM PATH...: members of chand-host's view of VM's channel
# (chanctl channel-show), e.g. counters.msgs_acked; "-" if absent.
fl_host() {
    local vm=$1
    shift
    st_chanctl channel-show "$vm" 2>/dev/null | "$FL_TOOL" json-get "$@"
}

# fl_guest VM: "frames_applied ops_applied position host_epoch guest_epoch"
# of VM's datastore.
fl_guest() {
    "$FL_TOOL" guest-counters "$TOPO_RUN/$1/guest.db"
}

# fl_guest_counter VM NAME...: chand-guest's counters (guest-status),
# 0 for a counter not reported.
fl_guest_counter() {
    local vm=$1 name
    shift
    st_guest "$vm" guest-status --json >"$OVSI_BASE/gs.json" || return 1
    for name in "$@"; do
        "$FL_TOOL" json-get "counters.$name" <"$OVSI_BASE/gs.json" |
            sed 's/^-$/0/'
    done
}

fl_guest_frames() {
    fl_guest "$1" | cut -d' ' -f1
}

# fl_channel VM: "state applied_count desired_count" of VM's Channel row.
fl_channel() {
    st_chanctl status --vm "$1" --json | "$FL_TOOL" json-get state \
        applied_count desired_count | tr '\n' ' '
}

# The frames check: once chand-host has nothing queued or in flight for
# VM, frames_applied(guest) - FL_GOFF[VM] = msgs_acked(host) - FL_HOFF[VM].
# The offsets are 0 unless a test lost one side's counters (a restarted
# chand-host, a wiped guest store) and set them at that moment.
fl_frames_equal() {
    local vm=$1 h g
    h=$(fl_host "$vm" counters.msgs_acked counters.in_flight \
        counters.queued_msgs | tr '\n' ' ')
    set -- $h
    [ "$2" = 0 ] && [ "$3" = 0 ] || return 1
    g=$(fl_guest_frames "$vm")
    FL_LAST_FRAMES="guest frames_applied $g - ${FL_GOFF[$vm]}, host msgs_acked $1 - ${FL_HOFF[$vm]}"
    [ $((g - FL_GOFF[$vm])) = $(($1 - FL_HOFF[$vm])) ]
}

fl_check_frames() {
    local vm=$1
    FL_LAST_FRAMES="chand-host never idle"
    if st_wait 15 fl_frames_equal "$vm"; then
        fl_log "ok: $vm: every frame applied once and acknowledged once ($FL_LAST_FRAMES)"
    else
        fl_frames_equal "$vm"
        st_fail "$vm: frames applied by the guest != messages acked by the host ($FL_LAST_FRAMES)"
    fi
}

fl_chandb_state() {
    ovsdb-client transact "$(topo_db)" \
        '["Chan",{"op":"select","table":"Record","where":[]},
                 {"op":"select","table":"Channel","where":[]}]'
}

# fl_final_checks: (a), (b) and (c) above, for every VM.
fl_final_checks() {
    local vm logs
    fl_converge "all channels converged"
    logs=("$OVSI_BASE"/push-*.log)
    cat "${logs[@]}" >"$OVSI_BASE/ops.txt"
    "$FL_HERE/push-model.py" --expect "$OVSI_BASE/ops.txt" "${FL_VMS[@]}" \
        >"$OVSI_BASE/expect.json"
    fl_log "$(wc -l <"$OVSI_BASE/ops.txt") operations pushed in all"
    for vm in "${FL_VMS[@]}"; do
        fl_check "$vm datastore equals the desired state" \
            "$FL_HERE/compare-store.py" "$OVSI_BASE/expect.json" "$vm" \
            "$TOPO_RUN/$vm/guest.db"
        fl_check "$vm applied no record change twice" \
            "$FL_TOOL" applies "$vm" "$TOPO_RUN/$vm/guest.db" "${logs[@]}"
        fl_check_frames "$vm"
    done
    fl_chandb_state >"$OVSI_BASE/chandb.json"
    fl_check "Chan DB applied state is true" \
        "$FL_HERE/check-chandb.py" "${FL_VMS[@]}" <"$OVSI_BASE/chandb.json"
    for vm in "${FL_VMS[@]}"; do
        fl_log "$vm: host counters: $(fl_host "$vm" counters | tr -d '\n ')"
        fl_log "$vm: guest counters: $(st_guest "$vm" guest-status --json |
            "$FL_TOOL" json-get counters | tr -d '\n ')"
    done
}

# fl_check_one_session: every VM's channel kept its first session (the
# fault was survived by resuming, not by starting over).
fl_check_one_session() {
    local vm
    for vm in "${FL_VMS[@]}"; do
        st_check "$vm: no new session was needed" \
            test "$(fl_host "$vm" counters.sessions)" = 1
    done
}
