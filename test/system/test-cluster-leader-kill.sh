#!/usr/bin/env bash
# A clustered Chan DB loses its leader in the middle of a push: a 3-member
# Raft cluster served over ssl: only (Raft traffic TLS too), hypervisors
# hv-a (vm1, vm2) and hv-b (vm3, vm4), each chand-host on the cluster with
# its own certificate.  2,000 records spread over the four VMs and all of
# them are pushed in transactions of 20; mid-push the leader is killed
# (SIGKILL), the others elect a new one, the pusher and the chand-hosts
# move on to the members left, and the old leader comes back on its files
# and rejoins.  chand-host picks a member at random, so it may have been
# on a follower: then the member it is on is killed too, during a second
# push, so that every chand-host loses its member once.  Every VM's
# datastore must end exactly as desired (each key, value and version:
# also those of a key chanctl pushes 40 times across the fault), the
# Chan DB's records exactly the committed pushes, both chand-hosts
# connected to the Chan DB, and no channel needed a new session.
. "$(dirname "$0")/lib.sh"
st_require_root
. "$(dirname "$0")/cluster-lib.sh"

ct_up
for i in 1 2 3; do
    ct_push push "pre$i" "\"before the fault $i\""
done
ct_push push --vm "$CT_V3" own '"vm3 only"'
ct_converge "the first records are delivered"

declare -A MOVED
# fault N WHAT: kill -9 member N, wait for a leader among the others,
# restart N on its files, wait until it is a follower again.
fault() {
    local n=$1 what=$2 new hv
    for hv in hv-a hv-b; do
        if [ "$(ct_host_member "$hv")" = "ssl:10.78.0.$n:$CL_PORT" ]; then
            ct_log "$hv's chand-host is on member $n"
            MOVED[$hv]=1
        fi
    done
    cl_member_kill "$n" || { st_fail "cannot kill member $n"; exit 1; }
    ct_log "killed member $n ($what) after $(wc -l <"$OVSI_BASE/push-$PUSH.log") operations"
    if new=$(cl_wait_leader 30); then
        ct_log "ok: member $new leads the two others"
    else
        st_fail "no leader after member $n died"
    fi
    [ "$what" = leader ] &&
        ct_check "member $new is another member" test "$new" != "$n"
    sleep 1
    ct_log "$(wc -l <"$OVSI_BASE/push-$PUSH.log") operations committed by now, member $n still down"
    cl_member_start "$n" || st_fail "member $n does not restart"
    rejoined() {
        cl_member_status "$n" | grep -q '^Status: cluster member' &&
            cl_member_status "$n" | grep -q '^Role: follower'
    }
    ct_check "member $n restarted on its files and rejoined as a follower" \
        st_wait 30 rejoined
    ct_check "the cluster has one leader for all its members" \
        eval 'cl_wait_leader 30 >/dev/null'
}

# bulk NAME SEED N: the push in the background (20 operations per
# transaction, one transaction every 20 ms); mid NAME MIN: wait until MIN
# operations are committed; bulk_join: wait for its end.
bulk() {
    PUSH=$1
    ct_bulk "$1" "$2" "$3" 20 0.02 "${CT_VMS[@]}" 2>"$OVSI_BASE/$1.err" &
    BULK=$!
}
mid() {
    committed() {
        [ "$(cat "$OVSI_BASE/push-$PUSH.log" 2>/dev/null | wc -l)" -ge "$1" ]
    }
    st_wait 60 committed "$1" || { st_fail "the push did not get under way"; exit 1; }
}
bulk_join() {
    if wait "$BULK"; then
        ct_log "ok: the push finished: $(tail -1 "$OVSI_BASE/$PUSH.err")"
    else
        st_fail "the push failed: $(tail -3 "$OVSI_BASE/$PUSH.err")"
    fi
    grep -q reconnecting "$OVSI_BASE/$PUSH.err" &&
        ct_log "the pusher: $(grep -m1 reconnecting "$OVSI_BASE/$PUSH.err")"
}

# 2,000 operations (mostly new records, some updates and deletes): about
# 2 s of pushing before the fault and as much after.
bulk bulk 7 2000
mid 600
# Meanwhile chanctl pushes one key over and over, one push at a time: a
# push whose reply the failover cut off is checked before it is retried,
# so the key's version ends exactly at the number of pushes (the store
# checks below compare versions; one push applied twice would be one too
# many).
(
    for i in $(seq 1 40); do
        ct_push push --vm "$CT_V2" failover/once "$i" ||
            echo "push $i failed" >>"$OVSI_BASE/chanctl-failed"
        sleep 0.05
    done
) &
CHANCTL_LOOP=$!
leader=$(cl_leader) || { st_fail "no leader before the fault"; exit 1; }
fault "$leader" leader
bulk_join
wait "$CHANCTL_LOOP"
ct_check "chanctl's 40 pushes across the leader's death all succeeded" \
    test ! -e "$OVSI_BASE/chanctl-failed"

# A chand-host that was on a follower: its member goes down too.
for hv in hv-a hv-b; do
    [ -n "${MOVED[$hv]:-}" ] && continue
    bulk "second-$hv" 11 400
    mid 100
    m=$(ct_host_member "$hv" | sed 's/^ssl:10\.78\.0\.\([0-9]*\):.*/\1/')
    fault "$m" "the member $hv's chand-host is on"
    bulk_join
done

# After the faults, records still go through, to one VM and to all.
ct_push push pre2 '"after the fault"'
ct_push delete pre3
ct_push push --vm "$CT_V1" own '"vm1 only"'
ct_push delete --vm "$CT_V3" own

ct_converge "every channel ready and in sync" 90
ct_check_stores "${CT_VMS[@]}"
for hv in hv-a hv-b; do
    ct_check "$hv's chand-host is connected to the Chan DB" \
        st_wait 30 ct_host_connected "$hv"
    ct_log "$hv's chand-host is on $(ct_host_member "$hv") now"
done
for vm in "${CT_VMS[@]}"; do
    ct_check "$vm: no new session was needed (resumed, not resynced)" \
        test "$(ct_channel "$vm" counters.sessions)" = 1
done
st_exit
