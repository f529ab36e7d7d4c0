#!/usr/bin/env bash
# Handlers in the guest (doc/objects.md, "Handlers"): the anti-virus
# scenario with three VMs.
#
# vm1 and vm2 hold file F (each at its own path), vm3 holds H.  The
# handlers directory holds the built-in chand-handler as verdict and
# notice.  object-set F flags=infected: vm1 and vm2 quarantine F (gone
# from its path, in the quarantine directory with its metadata), vm3 is
# untouched; the Chan DB shows each VM's result (Guest_Record
# result/verdict/F, status ok) and Object_Ref flags "quarantined".
# chand-handler release puts the files back.  The same with the verdict
# published by vm1's scanner, which a Relay rule lets count.  Then the
# verdict handler
# hangs: it is killed at its timeout and reported failed; then it crashes
# (SIGSEGV): reported failed; a handler of vm3's, started with
# --handler-user=nobody, runs as nobody; chand-guest stays up and keeps
# answering.

. "$(dirname "$0")/lib.sh"
st_require_root
here=$(cd "$(dirname "$0")" && pwd)
PY=$(python3 -c 'import sys; print(sys.executable)')
UT=$here/upstream-tool.py
TOPO_HOST_NS=chst-hhv
V1=chst-hvm1 V2=chst-hvm2 V3=chst-hvm3

HD=$OVSI_BASE/handlers.d
Q=$OVSI_BASE/quarantine
TIMEOUT=3
TOPO_GUEST_ARGS=(--handlers-dir="$HD" --quarantine-dir="$Q"
                 --handler-timeout="$TIMEOUT")

st_up "$V1:61" "$V2:62" "$V3:63"
st_chanctl wait --timeout 60 || { st_fail "channels not ready"; exit 1; }

st_install_handlers "$HD" || st_fail "cannot install the handlers"

D=$OVSI_BASE/files
mkdir -p "$D/1" "$D/2" "$D/3"
printf 'the infected file F\n' >"$D/1/f"
printf 'the infected file F\n' >"$D/2/copy-of-f"
printf 'the clean file H\n' >"$D/3/h"
chmod 640 "$D/1/f"
F=$(sha256sum <"$D/1/f" | cut -d' ' -f1)
H=$(sha256sum <"$D/3/h" | cut -d' ' -f1)

st_check "vm1 registers F" st_guest "$V1" object-add "$D/1/f"
st_check "vm2 registers F" st_guest "$V2" object-add "$D/2/copy-of-f"
st_check "vm3 registers H" st_guest "$V3" object-add "$D/3/h"

# result_is VM PYEXPR: VM's Guest_Record result/verdict/F ('r', None if
# absent) satisfies PYEXPR.
result_is() {
    st_result_is "$1" verdict "$F" "$2"
}

# ref_flags_are VM FLAGS...: VM's Object_Ref row of F has exactly FLAGS.
ref_flags_are() {
    local vm=$1
    shift
    ovsdb-client transact "$(topo_db)" \
        "[\"Chan\",{\"op\":\"select\",\"table\":\"Object_Ref\",
          \"where\":[[\"vm\",\"==\",\"$vm\"],[\"digest\",\"==\",\"$F\"]]}]" |
        "$PY" -c '
import json, sys
rows = json.load(sys.stdin)[0]["rows"]
f = rows[0]["flags"] if rows else None
flags = f[1] if isinstance(f, list) and f[0] == "set" else [f]
sys.exit(0 if rows and sorted(flags) == sorted(sys.argv[1:]) else 1)' "$@"
}

# --- the verdict ----------------------------------------------------------
st_check "the Chan DB maps F to vm1" st_wait 30 ref_flags_are "$V1"
st_check "and to vm2" st_wait 30 ref_flags_are "$V2"
st_check "object-set F flags=infected" st_chanctl object-set "$F" \
    flags=infected
st_check "vm1 reports its verdict handled ok" st_wait 30 result_is "$V1" \
    "r is not None and r['status'] == 'ok' and 'quarantined 1 of 1' in r['detail']"
st_check "vm2 reports its verdict handled ok" st_wait 30 result_is "$V2" \
    "r is not None and r['status'] == 'ok' and r['key'] == 'verdict/$F'"
st_check "vm3 reports nothing" result_is "$V3" "r is None"
st_check "vm1's F is gone from its path" test ! -e "$D/1/f"
st_check "vm2's F is gone from its path" test ! -e "$D/2/copy-of-f"
st_check "vm3's H is untouched" test "$(sha256sum <"$D/3/h" | cut -d' ' -f1)" = "$H"
quarantined() {
    "$PY" - "$Q/$F" "$D" <<'EOF'
import glob, json, os, sys
q, d = sys.argv[1], sys.argv[2]
metas = [json.load(open(p)) for p in sorted(glob.glob(q + "/*.json"))]
paths = sorted(m["path"] for m in metas)
assert paths == [d + "/1/f", d + "/2/copy-of-f"], paths
for p in glob.glob(q + "/*.json"):
    assert os.path.isfile(p[:-5]), p
m = [m for m in metas if m["path"] == d + "/1/f"][0]
assert m["mode"] == 0o640 and m["uid"] == 0 and m["quarantined_at"] > 0, m
EOF
}
st_check "both copies are in the quarantine directory with metadata" \
    quarantined
st_check "the Chan DB shows vm1's F quarantined" st_wait 30 ref_flags_are \
    "$V1" quarantined
st_check "the Chan DB shows vm2's F quarantined" st_wait 30 ref_flags_are \
    "$V2" quarantined
st_chanctl object-show "$F" | sed 's/^/    /'

# --- release --------------------------------------------------------------
st_check "chand-handler release F" env CHAND_QUARANTINE_DIR="$Q" \
    "$ST_BUILD/utilities/chand-handler" release "$F"
st_check "vm1's F is back, byte for byte" \
    test "$(sha256sum <"$D/1/f" | cut -d' ' -f1)" = "$F"
st_check "with its mode" test "$(stat -c %a "$D/1/f")" = 640
st_check "vm2's F is back" \
    test "$(sha256sum <"$D/2/copy-of-f" | cut -d' ' -f1)" = "$F"

# --- the same verdict from vm1's scanner ----------------------------------
st_check "the control plane's verdict is cleared" \
    st_chanctl object-set "$F" flags=
st_check "vm1's result is withdrawn with it" st_wait 30 result_is "$V1" \
    "r is None"
ovsdb-client transact "$(topo_db)" \
    '["Chan",{"op":"insert","table":"Relay",
              "row":{"source":"'"$V1"'","prefix":"verdict/","to":"vms"}}]' \
    >/dev/null || st_fail "cannot insert the Relay rule for vm1's verdicts"
st_check "vm1's scanner publishes a verdict on F" \
    st_guest "$V1" publish "verdict/$F" '{"verdict":"infected"}'
st_check "vm1 handles it ok" st_wait 30 result_is "$V1" \
    "r is not None and r['status'] == 'ok'"
st_check "vm2 handles it ok" st_wait 30 result_is "$V2" \
    "r is not None and r['status'] == 'ok'"
st_check "vm3 reports nothing" result_is "$V3" "r is None"
st_check "vm1's F is quarantined again" test ! -e "$D/1/f"
st_check "vm2's F too" test ! -e "$D/2/copy-of-f"
st_check "release again" env CHAND_QUARANTINE_DIR="$Q" \
    "$ST_BUILD/utilities/chand-handler" release "$F"
st_check "vm1's F is back" test -e "$D/1/f"
st_check "vm1 withdraws its verdict" st_guest "$V1" unpublish "verdict/$F"
st_check "the results are withdrawn" st_wait 30 result_is "$V2" "r is None"

# new_verdict: withdraws the verdict and sets it again (a new version).
new_verdict() {
    st_chanctl object-set "$F" flags= >/dev/null &&
        st_wait 30 result_is "$V1" "r is None" &&
        st_chanctl object-set "$F" flags=infected >/dev/null
}

# --- a handler that hangs -------------------------------------------------
printf '#!/bin/sh\nsleep 600\n' >"$HD/verdict.new"
chmod 755 "$HD/verdict.new"
mv "$HD/verdict.new" "$HD/verdict"
started=$(date +%s)
st_check "a new verdict" new_verdict
st_check "the hanging handler is reported timed out" st_wait 30 result_is \
    "$V1" "r is not None and r['status'] == 'failed' and r['reason'] == 'timed out after $TIMEOUT s'"
took=$(( $(date +%s) - started ))
st_check "killed after its timeout (${took}s)" test "$took" -ge "$TIMEOUT"
st_check "vm2's too" st_wait 30 result_is "$V2" \
    "r is not None and r['reason'] == 'timed out after $TIMEOUT s'"
no_sleep_left() {
    ! pgrep -f '^sleep 600$' >/dev/null
}
st_check "nothing of it is left running" st_wait 10 no_sleep_left
st_check "the files were left alone" test -e "$D/1/f"

# --- a handler that crashes -----------------------------------------------
printf '#!/bin/sh\nkill -SEGV $$\n' >"$HD/verdict.new"
chmod 755 "$HD/verdict.new"
mv "$HD/verdict.new" "$HD/verdict"
st_check "another verdict" new_verdict
st_check "the crash is reported" st_wait 30 result_is "$V1" \
    "r is not None and r['status'] == 'failed' and r['reason'] == 'crashed: signal 11'"

# --- a handler run as another user (--handler-user) -----------------------
printf '#!/bin/sh\nprintf "{\\"detail\\":\\"uid %%s gid %%s\\"}" "$(id -u)" "$(id -g)"\n' \
    >"$HD/notice.new"
chmod 755 "$HD/notice.new"
mv "$HD/notice.new" "$HD/notice"
topo_guest_stop "$V3"
TOPO_GUEST_ARGS+=(--handler-user=nobody)
topo_guest_start "$V3" 63 || st_fail "vm3's chand-guest did not restart"
nobody="uid $(id -u nobody) gid $(id -g nobody)"
st_check "object-set H superseded_by=F" st_chanctl object-set "$H" \
    "superseded_by=$F"
st_check "vm3's notice handler ran as nobody ($nobody)" st_wait 30 \
    st_result_is "$V3" notice "$H" \
    "r is not None and r['status'] == 'ok' and r['detail'] == '$nobody'"

# --- chand-guest carries on -----------------------------------------------
counters_ok() {
    st_guest "$V1" guest-status --json | "$PY" -c '
import json, sys
c = json.load(sys.stdin)["handlers"]["counters"]
sys.exit(0 if c["timeouts"] >= 1 and c["crashes"] >= 1 and c["ok"] >= 1 else 1)'
}
st_check "vm1's chand-guest answers, with the counters" counters_ok
alive() {
    kill -0 "$(cat "$TOPO_RUN/$1/chand-guest.pid")"
}
st_check "vm1's chand-guest is up" alive "$V1"
st_check "vm2's chand-guest is up" alive "$V2"
st_check "vm3's chand-guest is up" alive "$V3"
st_check "vm1 still publishes" st_guest "$V1" publish app/alive '"yes"'
published() {
    st_output_has alive "$PY" "$UT" guest-records "$(topo_db)" "$V1" app/
}
st_check "and the host gets it" st_wait 30 published
st_exit
