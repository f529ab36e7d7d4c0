#!/usr/bin/env bash
# Scale, functional (nothing is timed against a bound): 200 channels on one
# hypervisor, served by the guest simulator (`chand-bench guests`, one
# process, chand-guest's own receiver, keyring and datastore; doc/bench.md
# "The guest simulator") on one veth per simulated VM, provisioned on br-int
# like any VM's vNIC.
#  1. All 200 channels become ready and synced (Channel rows).
#  2. One record pushed to all VMs (Record with no vm) is applied by all
#     200: in each simulated VM's datastore, and in each Channel row's
#     applied map.
#  3. chand-host is killed (SIGKILL) and restarted: all 200 are ready again
#     and take a second all-VMs record; the counters say how they came back
#     (chand-host's resumes_after_restart against sessions, the
#     simulator's snapshots begun): each must have resumed where it was,
#     without a snapshot, and without sending again what the guest holds
#     (the rows' applied_digest matched: resume_digest_matches).
# CHAND_SCALE_N overrides the number of channels (default 200).

. "$(dirname "$0")/lib.sh"
. "$ST_SRC/scripts/lib/sim.sh"
st_require_root

N=${CHAND_SCALE_N:-200}
TOPO_HOST_NS=chst-shv
TOPO_HOST_NORMAL=0
SIM_NS=chst-ssim
SIM_DIR=$TOPO_RUN/sim
SIM_STORE=/dev/shm/chst-sim.$$
SIM_PREFIX=s

scale_cleanup() {
    if [ "$ST_FAILED" != 0 ]; then
        [ -f "$SIM_DIR/status.json" ] &&
            python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["total"]))' \
                "$SIM_DIR/status.json" >&2
        tail -20 "$SIM_DIR/guests.err" "$SIM_DIR/guests.log" >&2 2>/dev/null
    fi
    topo_sim_down >/dev/null 2>&1
    st_cleanup
}

st_up
trap scale_cleanup EXIT
t0=$SECONDS
topo_sim_up "$N" || { st_fail "the simulated VMs did not start"; exit 1; }
st_log "$N simulated VMs provisioned in $((SECONDS - t0)) s"

# chan_query EXPR: prints the Python expression EXPR over the Channel rows
# ('rows': vm -> row, with 'applied' and 'statistics' as dicts).
chan_query() {
    ovsdb-client transact "$(topo_db)" \
        '["Chan",{"op":"select","table":"Channel","where":[],"columns":["vm","state","state_reason","applied","statistics","synced","host_epoch"]}]' |
    python3 -c '
import json, sys
rows = {}
for r in json.load(sys.stdin)[0]["rows"]:
    for col in ("applied", "statistics"):
        r[col] = dict(r[col][1])
    rows[r["vm"]] = r
print(eval(sys.argv[1]))' "$1"
}

# sim_dump: has the simulator write its status now (SIGUSR1).
sim_dump() {
    rm -f "$SIM_DIR/status.json"
    kill -USR1 "$(cat "$SIM_DIR/guests.pid")" &&
        st_wait 10 test -s "$SIM_DIR/status.json"
}

# sim_total NAME: the simulator's aggregate counter NAME, from a fresh
# status dump.
sim_total() {
    sim_dump || return 1
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["total"][sys.argv[2]])' \
        "$SIM_DIR/status.json" "$1"
}

n_ready() {
    chan_query 'sum(r["state"] == "ready" for r in rows.values())'
}

all_ready() {
    [ "$(n_ready)" = "$N" ]
}

# all_applied KEY VERSION: every Channel row has applied[KEY] == VERSION.
all_applied() {
    [ "$(chan_query "sum(r['applied'].get('$1') == $2 for r in rows.values())")" = "$N" ]
}

# stores_have KEY VERSION: every simulated VM's datastore holds KEY at
# VERSION (read from the SQLite files themselves).
stores_have() {
    python3 - "$SIM_STORE" "$SIM_PREFIX" "$N" "$1" "$2" <<'EOF'
import sqlite3, sys
store, prefix, n, key, version = sys.argv[1:]
bad = []
for i in range(1, int(n) + 1):
    db = sqlite3.connect("file:%s/%s%d.db?mode=ro" % (store, prefix, i),
                         uri=True)
    row = db.execute("SELECT version FROM records WHERE key = ?",
                     (key,)).fetchone()
    db.close()
    if not row or row[0] != int(version):
        bad.append("%s%d" % (prefix, i))
if bad:
    print("%d stores lack %s v%s: %s" % (len(bad), key, version,
                                          " ".join(bad[:10])))
    sys.exit(1)
EOF
}

# --- 1: all channels ready ------------------------------------------------
t0=$SECONDS
if st_wait 90 all_ready; then
    st_log "ok: all $N channels ready ($((SECONDS - t0)) s after provisioning)"
else
    st_fail "$(n_ready) of $N channels ready after 90 s"
    chan_query '"\n".join(sorted(set("%s %s" % (r["state"], r["state_reason"]) for r in rows.values())))' >&2
fi
st_check "chanctl wait: every channel ready and synced" \
    st_chanctl wait --timeout 60
st_log "simulator: $(sim_total in_session) of $N in session," \
    "$(sim_total snapshots_begun) snapshots begun; chand-host's path:" \
    "$(st_chanctl host host/status | python3 -c 'import json,sys; print(json.load(sys.stdin)["inject"]["path"])')"

# --- 2: one record to all VMs ----------------------------------------------
t0=$SECONDS
st_chanctl push scale/all '{"n": 1}' || st_fail "push to all VMs failed"
st_check "scale/all v1 in every Channel row's applied map" \
    st_wait 60 all_applied scale/all 1
st_log "applied by all $N in $((SECONDS - t0)) s"
st_check "scale/all v1 in every simulated VM's datastore" \
    stores_have scale/all 1
st_check "the simulator applied at least $N records" \
    test "$(sim_total records_applied)" -ge "$N"

# --- 3: chand-host killed and restarted ------------------------------------
# A row is back once the new chand-host wrote it ready with a session of
# its own: resumed (resumes_after_restart) or new (another host epoch).
# The dead one's rows still say ready.
chan_query 'json.dumps({vm: r["host_epoch"] for vm, r in rows.items()})' \
    >"$SIM_DIR/epochs.json"
n_back() {
    chan_query "sum(r['state'] == 'ready' and (r['statistics'].get('resumes_after_restart', 0) > 0 or r['host_epoch'] != json.load(open('$SIM_DIR/epochs.json')).get(vm)) for vm, r in rows.items())"
}
all_back() {
    [ "$(n_back)" = "$N" ]
}
snaps_before=$(sim_total snapshots_begun)
recs_before=$(sim_total records_applied)
topo_host_kill || st_fail "could not kill chand-host"
st_log "chand-host killed"
sleep 2
t0=$SECONDS
topo_host_start || { st_fail "chand-host did not restart"; exit 1; }
if st_wait 90 all_back; then
    st_log "ok: all $N ready again $((SECONDS - t0)) s after the restart"
else
    st_fail "$(n_back) of $N channels back 90 s after the restart"
fi
st_chanctl push scale/all '{"n": 2}' || st_fail "second push failed"
st_check "scale/all v2 in every Channel row's applied map" \
    st_wait 60 all_applied scale/all 2
st_check "scale/all v2 in every simulated VM's datastore" \
    stores_have scale/all 2

resumes=$(chan_query 'sum(r["statistics"].get("resumes_after_restart", 0) for r in rows.values())')
sessions=$(chan_query 'sum(r["statistics"].get("sessions", 0) for r in rows.values())')
snaps_after=$(sim_total snapshots_begun)
recs_after=$(sim_total records_applied)
st_log "after the restart: chand-host resumes_after_restart=$resumes" \
    "sessions=$sessions (new sessions, each a snapshot); simulator" \
    "snapshots begun $snaps_before -> $snaps_after"
st_check "all $N resumed after the restart" test "$resumes" = "$N"
# The resumed chand-host vouched for what each guest holds by the rows'
# applied_digest, so it sent nothing again: the only records applied since
# the kill are the second push's.
matches=$(chan_query 'sum(r["statistics"].get("resume_digest_matches", 0) for r in rows.values())')
st_check "every resumed channel matched its applied_digest ($matches)" \
    test "$matches" = "$N"
st_check "nothing sent again: $((recs_after - recs_before)) records applied since the kill, $N expected (the second push)" \
    test "$((recs_after - recs_before))" = "$N"
st_check "no new session, no snapshot" \
    test "$sessions" = 0 -a "$snaps_after" = "$snaps_before"
st_check "the simulator counts no authentication failure" \
    test "$(sim_total drop_auth)" = 0
st_log "simulator totals: $(python3 -c 'import json,sys; t=json.load(open(sys.argv[1]))["total"]; print(" ".join("%s=%s" % kv for kv in sorted(t.items())))' "$SIM_DIR/status.json")"

st_exit
