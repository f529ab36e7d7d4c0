#!/usr/bin/env bash
# The Hyper-V KVP view (doc/kvp.md): chand-guest --kvp-prefix=kvp/ keeps
# hv_kvp_daemon's pool files, read and written here by an independent
# tool (test/system/kvp-tool.py: Python struct "512s2048s" and fcntl
# locks).
#
# A record pushed from the host as kvp/0/color appears in pool 0 next to
# an entry chand did not write, which stays; an update changes it, a
# delete removes it.  A guest tool's entry in pool 1 reaches the host's
# Guest_Record as kvp/1/<name>, follows its changes and is withdrawn with
# it.  A value over KVP's 2,047 bytes is refused for the view (the host
# sees result/kvp/0/big failed with the reason, and the refusal in the
# statistics record) and stays whole in the guest datastore.  A name a
# tool already holds is a conflict, the tool's entry untouched.  After
# kill -9 of chand-guest, a pool file rewritten by someone else and a
# record changed meanwhile, the restarted chand-guest rebuilds the view,
# recognizing its own entries.

. "$(dirname "$0")/lib.sh"
st_require_root
here=$(cd "$(dirname "$0")" && pwd)
PY=$(python3 -c 'import sys; print(sys.executable)')
KT=$here/kvp-tool.py
UT=$here/upstream-tool.py
TOPO_HOST_NS=chst-khv
V1=chst-kvm1
HV=$OVSI_BASE/hyperv
TOPO_GUEST_ARGS=(--kvp-prefix=kvp/ --kvp-dir="$HV" --stats-interval=1)

st_up "$V1:71"
st_chanctl wait --timeout 60 || { st_fail "channel not ready"; exit 1; }
mkdir -p "$HV"
"$PY" "$KT" set "$HV" 0 Foreign "written by someone else" ||
    st_fail "cannot write pool 0"

# pool_is POOL PYEXPR: pool POOL as read by kvp-tool ('p', a dict)
# satisfies PYEXPR.
pool_is() {
    "$PY" "$KT" read "$HV" "$1" | "$PY" -c '
import json, sys
p = json.load(sys.stdin)
sys.exit(0 if eval(sys.argv[1]) else 1)' "$2"
}

# rows_are PYEXPR: the VM's Guest_Record rows under kvp/ ('r', key ->
# value) satisfy PYEXPR.
rows_are() {
    "$PY" "$UT" guest-records "$(topo_db)" "$V1" kvp/ | "$PY" -c '
import json, sys
r = json.load(sys.stdin)
sys.exit(0 if eval(sys.argv[1]) else 1)' "$1"
}

# stats_are PYEXPR: the kvp counters of the VM's stats/chand-guest row
# ('k') satisfy PYEXPR.
stats_are() {
    "$PY" "$UT" guest-records "$(topo_db)" "$V1" stats/ | "$PY" -c '
import json, sys
k = json.load(sys.stdin).get("stats/chand-guest", {}).get("kvp", {})
sys.exit(0 if eval(sys.argv[1]) else 1)' "$1"
}

guest_kvp() {           # PYEXPR on guest/status's "kvp" object ('k').
    st_guest "$V1" guest-status --json | "$PY" -c '
import json, sys
k = json.load(sys.stdin)["kvp"]
sys.exit(0 if eval(sys.argv[1]) else 1)' "$1"
}

# --- down: records to pool 0 ----------------------------------------------
st_check "push kvp/0/color" st_chanctl push --vm "$V1" kvp/0/color '"blue"'
st_check "push kvp/0/dns (an object)" st_chanctl push --vm "$V1" kvp/0/dns \
    '{"servers": ["10.0.0.53"]}'
st_check "pool 0 shows them, the foreign entry kept" st_wait 30 pool_is 0 \
    "p == {'Foreign': 'written by someone else', 'color': 'blue', 'dns': '{\"servers\":[\"10.0.0.53\"]}'}"
st_check "update kvp/0/color" st_chanctl push --vm "$V1" kvp/0/color '"green"'
st_check "pool 0 follows" st_wait 30 pool_is 0 "p.get('color') == 'green'"
st_check "delete kvp/0/dns" st_chanctl delete --vm "$V1" kvp/0/dns
st_check "pool 0 loses it, keeps the rest" st_wait 30 pool_is 0 \
    "p == {'Foreign': 'written by someone else', 'color': 'green'}"

# --- over KVP's limits ----------------------------------------------------
BIG=$("$PY" -c 'print("\"" + "x" * 3000 + "\"")')
st_check "push a 3,000-byte value" st_chanctl push --vm "$V1" kvp/0/big "$BIG"
st_check "the host sees it refused for the view" st_wait 30 st_result_is \
    "$V1" kvp/0 big \
    "r is not None and r['status'] == 'failed' and 'over KVP' in r['reason'] and 'value 3000 bytes' in r['reason']"
st_check "the statistics record counts it" st_wait 30 stats_are \
    "k.get('refused', 0) >= 1"
st_check "it is not in pool 0" pool_is 0 "'big' not in p"
st_check "it is whole in the guest datastore" \
    test "$(st_guest "$V1" get kvp/0/big)" = "$BIG"

# --- a name a tool holds --------------------------------------------------
"$PY" "$KT" set "$HV" 0 taken "the tool's" || st_fail "tool write"
st_check "push kvp/0/taken" st_chanctl push --vm "$V1" kvp/0/taken '"chand"'
st_check "a conflict, reported" st_wait 30 st_result_is "$V1" kvp/0 taken \
    "r is not None and 'conflict' in r['reason']"
st_check "the tool's entry untouched" pool_is 0 "p.get('taken') == \"the tool's\""

# --- up: a guest tool's entries in pool 1 ---------------------------------
st_check "a tool writes pool 1" "$PY" "$KT" set "$HV" 1 GuestStatus ready
st_check "the host's Guest_Record has it" st_wait 30 rows_are \
    "r.get('kvp/1/GuestStatus') == 'ready'"
st_check "the tool changes it" "$PY" "$KT" set "$HV" 1 GuestStatus busy
st_check "the host follows" st_wait 30 rows_are \
    "r.get('kvp/1/GuestStatus') == 'busy'"
st_check "the tool removes it" "$PY" "$KT" remove "$HV" 1 GuestStatus
st_check "the host's row goes" st_wait 30 rows_are \
    "'kvp/1/GuestStatus' not in r"

# --- restart rebuilds the view --------------------------------------------
st_check "kill -9 chand-guest" topo_guest_kill "$V1"
"$PY" "$KT" remove "$HV" 0 color || st_fail "tool remove"
"$PY" "$KT" remove "$HV" 0 taken || st_fail "tool remove"
st_check "push kvp/0/color while the guest is down" \
    st_chanctl push --vm "$V1" kvp/0/color '"red"'
st_check "restart chand-guest" topo_guest_start "$V1" 71
st_check "pool 0 rebuilt" st_wait 60 pool_is 0 \
    "p == {'Foreign': 'written by someone else', 'color': 'red', 'taken': 'chand'}"
st_check "the conflict's result withdrawn" st_wait 30 st_result_is "$V1" \
    kvp/0 taken "r is None"
st_check "stop chand-guest" topo_guest_stop "$V1"
st_check "start it again" topo_guest_start "$V1" 71
st_check "its own entries recognized: no conflict, nothing rewritten" \
    st_wait 30 guest_kvp \
    "k['counters']['syncs'] >= 1 and k['counters']['conflicts'] == 0 and k['counters']['writes'] == 0 and k['pools'][0]['owned'] == 2"
st_check "pool 0 unchanged" pool_is 0 \
    "p == {'Foreign': 'written by someone else', 'color': 'red', 'taken': 'chand'}"

st_exit
