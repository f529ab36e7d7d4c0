#!/usr/bin/env bash
# Restore from a sibling and approved install (doc/objects.md), with the
# hostile cases, on three VMs.
#
#   - vm1 and vm2 hold F; vm2 deletes it and restores it with chanctl
#     object-restore: chand-host fetches F from vm1, sends it to vm2, the
#     built-in restore handler writes it back byte for byte;
#   - G only vm2 ever held: its restore fails with "no other VM holds a
#     clean copy";
#   - vm3 asks for F, which it never held: refused ("not entitled"),
#     counted, nothing written;
#   - H: vm1's copy was changed after it was registered (same size), vm3's
#     is clean, vm2 withdrew its own with object-remove: vm2's restore
#     fetches from vm1 first, finds the content does not match the digest
#     (counted), and gets it from vm3;
#   - H is superseded by H2, which only chand-host's content store holds:
#     vm3, which holds H, gets the notice and fetches H2 with
#     object-restore; vm2, which withdrew H, is not entitled to it;
#   - install: a script on the allowlist installs in vm3 and runs; one
#     that is not is refused and the refusal shows in the Chan DB; once
#     the script is removed from the allowlist a new install of it is
#     refused; install paths outside the install directory, or through
#     "..", are refused and counted, and nothing is written there;
#   - a 24 MiB package installs in the three VMs at once: three lanes
#     serve it, chand-host's content store holds it once;
#   - chand-host refuses a GET of F from vm3, which no record entitles to
#     it (a forged XFER frame), with "not_entitled", and counts it.
. "$(dirname "$0")/lib.sh"
st_require_root
here=$(cd "$(dirname "$0")" && pwd)
PY=$(python3 -c 'import sys; print(sys.executable)')
TOPO_HOST_NS=chst-rhv
V1=chst-rvm1 V2=chst-rvm2 V3=chst-rvm3
D=$OVSI_BASE/files
HD=$OVSI_BASE/handlers.d
INST=$D/installed
mkdir -p "$D/1" "$D/2" "$D/3" "$D/host" "$INST"
TOPO_GUEST_ARGS=(--handlers-dir="$HD" --install-dir="$INST")
st_up "$V1:91" "$V2:92" "$V3:93"
st_chanctl wait --timeout 60 || { st_fail "channels not ready"; exit 1; }
st_install_handlers "$HD" || st_fail "cannot install the handlers"

host_transfers() {
    st_chanctl host transfer/list
}

# jq_host PYEXPR: PYEXPR on chand-host's transfer/list ('j').
jq_host() {
    host_transfers | "$PY" -c '
import json, sys
j = json.load(sys.stdin)
print(eval(sys.argv[1]))' "$1"
}

# jq_guest VM PYEXPR: PYEXPR on VM's guest/status ('j').
jq_guest() {
    st_guest "$1" guest guest/status | "$PY" -c '
import json, sys
j = json.load(sys.stdin)
print(eval(sys.argv[1]))' "$2"
}

mapped() {
    ovsdb-client transact "$(topo_db)" \
        "[\"Chan\",{\"op\":\"select\",\"table\":\"Object_Ref\",
          \"where\":[[\"vm\",\"==\",\"$1\"],[\"digest\",\"==\",\"$2\"]]}]" |
        grep -q '"vm"'
}

# --- restore from a sibling ----------------------------------------------
head -c 3000000 /dev/urandom >"$D/1/f"
cp "$D/1/f" "$D/2/f"
chmod 640 "$D/2/f"
F=$(sha256sum <"$D/1/f" | cut -d' ' -f1)
st_check "vm1 registers F" st_guest "$V1" object-add "$D/1/f"
st_check "vm2 registers F" st_guest "$V2" object-add "$D/2/f"
st_check "the Chan DB maps F to vm1" st_wait 30 mapped "$V1" "$F"
st_check "and to vm2" st_wait 30 mapped "$V2" "$F"
rm -f "$D/2/f"
st_check "vm2 restores F from a sibling" \
    st_guest "$V2" object-restore "$F" "$D/2/f" --timeout 60
st_check "byte for byte" cmp "$D/1/f" "$D/2/f"
st_check "the Chan DB shows vm2's restore ok" st_wait 30 \
    st_result_is "$V2" restore "$F" "r is not None and r['status'] == 'ok'"
st_check "chand-host fetched F into its content store" \
    test -f "$TOPO_RUN/content/$F"

# --- no clean sibling ------------------------------------------------------
printf 'only vm2 has this\n' >"$D/2/g"
G=$(sha256sum <"$D/2/g" | cut -d' ' -f1)
st_check "vm2 registers G" st_guest "$V2" object-add "$D/2/g"
st_check "the Chan DB maps G to vm2" st_wait 30 mapped "$V2" "$G"
rm -f "$D/2/g"
out=$(st_guest "$V2" object-restore "$G" "$D/2/g" --timeout 60 2>&1)
rc=$?
st_log "object-restore G: rc $rc: $out"
st_check "a restore with no clean sibling fails" test "$rc" -ne 0
st_check "with a clear error" \
    grep -q "no other VM holds a clean copy of object ${G:0:12}" <<<"$out"
st_check "and writes nothing" test ! -e "$D/2/g"

# --- never entitled --------------------------------------------------------
out=$(st_guest "$V3" object-restore "$F" "$D/3/f" --timeout 60 2>&1)
rc=$?
st_log "object-restore F in vm3: rc $rc: $out"
st_check "vm3, which never held F, is refused" test "$rc" -ne 0
st_check "as not entitled" grep -q "not entitled" <<<"$out"
st_check "and nothing is written" test ! -e "$D/3/f"

# --- a sibling whose copy changed ---------------------------------------
head -c 100000 /dev/urandom >"$D/1/h"
cp "$D/1/h" "$D/3/h"
cp "$D/1/h" "$D/2/h"
H=$(sha256sum <"$D/1/h" | cut -d' ' -f1)
for v in 1 2 3; do
    vm=chst-rvm$v
    st_check "vm$v registers H" st_guest "$vm" object-add "$D/$v/h"
    st_check "the Chan DB maps H to vm$v" st_wait 30 mapped "$vm" "$H"
done
st_check "vm2 withdraws H" st_guest "$V2" object-remove "$D/2/h"
gone() {
    ! mapped "$V2" "$H"
}
st_check "the Chan DB no longer maps H to vm2" st_wait 30 gone
# vm1's file changes behind its registration (same size, other bytes).
printf 'tampered' | dd of="$D/1/h" bs=1 seek=5000 conv=notrunc 2>/dev/null
rm -f "$D/2/h"
mismatches0=$(jq_host "j['counters']['digest_mismatches']")
st_check "vm2, which held H before, restores it" \
    st_guest "$V2" object-restore "$H" "$D/2/h" --timeout 60
st_check "with H's bytes" cmp "$D/3/h" "$D/2/h"
mismatches=$(jq_host "j['counters']['digest_mismatches']")
st_log "digest mismatches: $mismatches0 -> $mismatches"
st_check "vm1's changed copy was caught and counted" \
    test "$mismatches" -gt "$mismatches0"
st_check "chand-host logged the mismatch" \
    grep -q "content does not match" "$TOPO_RUN/chand-host.log"

# --- an update notice's new object -------------------------------------------
printf 'H, version 2\n' >"$D/host/h2"
H2=$(st_chanctl object-store "$D/host/h2" | cut -d' ' -f1)
st_check "chand-host stores H's new version" test "$H2" = \
    "$(sha256sum <"$D/host/h2" | cut -d' ' -f1)"
st_check "H is superseded by it" st_chanctl object-set "$H" \
    superseded_by="$H2"
noticed() {
    st_guest "$V3" get "notice/$H" >/dev/null
}
st_check "vm3, which holds H, gets the notice" st_wait 30 noticed
st_check "and fetches the new version the notice names" \
    st_guest "$V3" object-restore "$H2" "$D/3/h2" --timeout 60
st_check "byte for byte" cmp "$D/host/h2" "$D/3/h2"
out=$(st_guest "$V2" object-restore "$H2" "$D/2/h2" --timeout 60 2>&1)
st_log "object-restore H2 in vm2: $out"
st_check "vm2, which no longer holds H, got no notice and is refused" \
    grep -q "not entitled" <<<"$out"

# --- approved install --------------------------------------------------------
printf '#!/bin/sh\necho installed-and-running\n' >"$D/host/tool"
printf '#!/bin/sh\necho not-allowed\n' >"$D/host/other"
X=$(st_chanctl object-store "$D/host/tool" | cut -d' ' -f1)
Y=$(st_chanctl object-store "$D/host/other" | cut -d' ' -f1)
st_check "chand-host stores the tool" test "$X" = \
    "$(sha256sum <"$D/host/tool" | cut -d' ' -f1)"
st_check "the tool goes on the allowlist" st_chanctl allow "$X" tool
st_check "install it in vm3" st_chanctl install --vm "$V3" "$X" "$INST/tool"
st_check "vm3 reports the install ok" st_wait 30 \
    st_result_is "$V3" install "$X" "r is not None and r['status'] == 'ok'"
st_check "the installed tool runs" \
    test "$(ip netns exec "$V3" "$INST/tool")" = installed-and-running
st_check "it is executable (mode 755)" \
    test "$(stat -c %a "$INST/tool")" = 755

st_check "install something not on the allowlist" \
    st_chanctl install --vm "$V3" "$Y" "$INST/other"
st_check "vm3 refuses it and the Chan DB shows why" st_wait 30 \
    st_result_is "$V3" install "$Y" \
    "r is not None and r['status'] == 'failed' and 'allowlist' in r['reason']"
st_check "nothing is installed" test ! -e "$INST/other"

st_check "the tool leaves the allowlist" st_chanctl disallow "$X"
st_check "install it again elsewhere" \
    st_chanctl install --vm "$V3" "$X" "$INST/tool2"
st_check "it is refused" st_wait 30 \
    st_result_is "$V3" install "$X" \
    "r is not None and r['status'] == 'failed' and 'allowlist' in r['reason']"
st_check "and not written" test ! -e "$INST/tool2"

st_check "the tool is allowed again" st_chanctl allow "$X" tool
refused0=$(jq_guest "$V3" "j['transfer']['refused']['path']")
st_check "install through .. is pushed" st_chanctl push --vm "$V3" \
    "install/$X" "{\"digest\":\"$X\",\"path\":\"$INST/../escape\",\"size\":$(stat -c %s "$D/host/tool")}"
st_check "and refused" st_wait 30 \
    st_result_is "$V3" install "$X" \
    "r is not None and r['status'] == 'failed' and 'path' in r['reason']"
st_check "install outside the directory is pushed" st_chanctl push --vm "$V3" \
    "install/$X" "{\"digest\":\"$X\",\"path\":\"$D/outside\",\"size\":$(stat -c %s "$D/host/tool")}"
st_check "and refused" st_wait 30 \
    st_result_is "$V3" install "$X" \
    "r is not None and r['status'] == 'failed' and 'outside the install directory' in r['reason']"
refused=$(jq_guest "$V3" "j['transfer']['refused']['path']")
st_check "both are counted" test "$refused" -ge $((refused0 + 2))
st_check "nothing is written outside" \
    test ! -e "$D/escape" -a ! -e "$D/outside"

# --- three VMs at once -------------------------------------------------------
head -c $((24 << 20)) /dev/urandom >"$D/host/pkg"
P=$(st_chanctl object-store "$D/host/pkg" | cut -d' ' -f1)
st_check "a 24 MiB package goes on the allowlist" st_chanctl allow "$P" pkg
for v in 1 2 3; do
    st_check "install it in vm$v" \
        st_chanctl install --vm "chst-rvm$v" "$P" "$INST/pkg-$v" --mode 0644
done
installed_all() {
    local v
    for v in 1 2 3; do
        st_result_is "chst-rvm$v" install "$P" \
            "r is not None and r['status'] == 'ok'" || return 1
    done
}
st_check "all three install it" st_wait 120 installed_all
for v in 1 2 3; do
    st_check "vm$v's copy is byte for byte the package" \
        cmp "$D/host/pkg" "$INST/pkg-$v"
done
overlap=$(st_chanctl host transfer/list | "$PY" -c '
import json, sys
j = json.load(sys.stdin)
spans = []
for vm, lane in j["lanes"].items():
    for s in lane["served"]:
        if s["digest"] == sys.argv[1]:
            spans.append(vm)
print(len(spans))' "$P")
st_check "chand-host served it on three lanes" test "$overlap" -eq 3
st_check "and keeps one copy of it" \
    test "$(ls "$TOPO_RUN/content" | grep -c "^$P")" -eq 1
at_once() {
    local v first last
    for v in 1 2 3; do
        grep -h "transfer ${P:0:12}: pulling" \
            "$TOPO_RUN/chst-rvm$v/chand-guest.log" | cut -c1-23
        grep -h "transfer ${P:0:12}: complete" \
            "$TOPO_RUN/chst-rvm$v/chand-guest.log" | cut -c1-23
    done
}
spans=$(at_once | tr '\n' ' ')
st_log "pulls (start, end per VM): $spans"
overlapping() {
    "$PY" -c '
import sys
t = sys.argv[1:]
spans = sorted(zip(t[0::2], t[1::2]))
sys.exit(0 if len(spans) == 3
         and any(b[0] < a[1] for a, b in zip(spans, spans[1:])) else 1)
' $spans
}
st_check "and the pulls ran at the same time" overlapping

# --- the operator fetches an object ----------------------------------------
head -c 5000000 /dev/urandom >"$D/3/j"
J=$(sha256sum <"$D/3/j" | cut -d' ' -f1)
st_check "vm3 registers J" st_guest "$V3" object-add "$D/3/j"
st_check "the Chan DB maps J to vm3" st_wait 30 mapped "$V3" "$J"
out=$(st_chanctl object-fetch --vm "$V3" "$J" --wait --timeout 60 2>&1)
st_log "object-fetch --wait: $out"
st_check "chanctl object-fetch --wait reports the fetch done" \
    grep -q "fetched $J from $V3" <<<"$out"
st_check "and the content store holds J" \
    cmp "$D/3/j" "$TOPO_RUN/content/$J"

# --- a forged GET -----------------------------------------------------------
refused0=$(jq_host "j['counters']['refused_not_entitled']")
# A GET authenticated like any of vm3's frames (its own key), naming an
# object no record entitles vm3 to.
key=$(awk 'NF == 2 { k = $2 } END { print k }' "$TOPO_RUN/$V3/channel.key")
st_check "vm3 sends a GET for F" ip netns exec "$V3" \
    "$PY" "$here/hostile-tool.py" xfer-get eth0 93 "$F" 3000000 --key "$key"
more_refused() {
    [ "$(jq_host "j['counters']['refused_not_entitled']")" -gt "$refused0" ]
}
st_check "chand-host refuses it as not entitled, and counts it" \
    st_wait 30 more_refused
st_check "and logs it" grep -q "refused GET of ${F:0:12}" \
    "$TOPO_RUN/chand-host.log"

guests_up() {
    local vm
    for vm in "$V1" "$V2" "$V3"; do
        st_guest "$vm" guest guest/status >/dev/null || return 1
    done
}
st_check "every chand-guest is up" guests_up
st_exit
