#!/usr/bin/env bash
# test/system/hostile-mutate.sh [MUTATION...] -- proves that test-hostile.sh
# bites: for each protection it covers, a COPY of the source tree is made
# with that protection removed or broken, and the copy's test-hostile.sh is
# run against it; the assertions that fail are listed.  A mutation no
# assertion catches is reported as "SURVIVED".
#
# Flow mutations use the binaries of CHAND_BUILD_DIR (a build of the real
# tree; chand-host reads the copy's flows/host.flows at run time).  Code
# mutations are built out of tree from the copy.  Needs root; runs one
# system test at a time, waiting until no chst-* namespace exists.
#
#   MUTATION  what is broken
#   vid-drop        host.flows: the [vid] rule (priority 40020, dl_vlan=VID)
#   hostmac-src     host.flows: priority 40010 dl_src=HOST_MAC drop
#   hostmac-dst     host.flows: priority 40010 dl_dst=HOST_MAC drop
#   vid-hostmac     both vid-drop and hostmac-src (the two layers that keep
#                   frames "from the host" off another VM's vNIC)
#   chan-drop       host.flows: priority 40050 pkt_mark drop (from CONTROLLER)
#   meter           host.flows: no meter action in the guest->host accept rule
#   accept-addr     host.flows: guest->host accept rule without dl_src/nw_src
#   hmac            lib/chan-wire.c: trailer never compared
#   host-addr       chand-host/host.c: PACKET_IN address check removed
#   accept-host-addr  both accept-addr and host-addr (the flow match and
#                   chand-host's own check on the guest's addresses)
#   host-epoch      chand-host/channel.c: ACKs of another epoch accepted
#   guest-source    chand-guest/receiver.c: source address/port check removed
#   guest-dup       chand-guest/receiver.c: duplicate (seq < next) check removed
#
# Environment: CHAND_BUILD_DIR (default /tmp/b-hostile), HOSTILE_MUT_DIR
# (default /tmp/chand-mut), HOSTILE_MUT_KEEP=1 keeps the copies.

set -u
here=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$here/../.." && pwd)
BUILD=${CHAND_BUILD_DIR:-/tmp/b-hostile}
MUT=${HOSTILE_MUT_DIR:-/tmp/chand-mut}
ALL="vid-drop hostmac-src hostmac-dst vid-hostmac chan-drop meter
     accept-addr hmac host-addr accept-host-addr host-epoch guest-source
     guest-dup"

# edit FILE OLD NEW: replaces the one occurrence of OLD in FILE (python
# string literals), failing if OLD is not there exactly once.
edit() {
    python3 - "$@" <<'EOF'
import ast, sys
path, old, new = sys.argv[1], ast.literal_eval(sys.argv[2]), \
    ast.literal_eval(sys.argv[3])
text = open(path).read()
n = text.count(old)
if n != 1:
    sys.exit("mutation: %r found %d times in %s" % (old, n, path))
open(path, "w").write(text.replace(old, new))
EOF
}

# mutate NAME DIR: applies mutation NAME to the copy in DIR; prints "code"
# if it needs a build.
mutate() {
    local d=$2
    case $1 in
    vid-drop)
        edit "$d/flows/host.flows" "'priority=40020,dl_vlan=\${VID},actions=drop\n'" "''" ;;
    hostmac-src)
        edit "$d/flows/host.flows" "'priority=40010,dl_src=\${HOST_MAC},actions=drop\n'" "''" ;;
    hostmac-dst)
        edit "$d/flows/host.flows" "'priority=40010,dl_dst=\${HOST_MAC},actions=drop\n'" "''" ;;
    vid-hostmac)
        mutate vid-drop "$d" && mutate hostmac-src "$d" ;;
    chan-drop)
        edit "$d/flows/host.flows" "'priority=40050,in_port=CONTROLLER,pkt_mark=\${CHAN_ID},actions=drop\n'" "''" ;;
    meter)
        edit "$d/flows/host.flows" "'actions=meter:\${METER_ID},pop_vlan,'" "'actions=pop_vlan,'" ;;
    accept-addr)
        edit "$d/flows/host.flows" "'    dl_src=\${GUEST_MAC},nw_src=\${GUEST_IP}, \\\\\n'" "''" ;;
    hmac)
        edit "$d/lib/chan-wire.c" "'if (CRYPTO_memcmp(mac, frame + signed_len, sizeof mac)) {'" \
            "'if (0 && CRYPTO_memcmp(mac, frame + signed_len, sizeof mac)) {'" &&
            echo code ;;
    host-addr)
        edit "$d/chand-host/host.c" "'        channel_count_drop(ch, \"addresses\");\n        return;\n'" \
            "'        ;\n'" && echo code ;;
    accept-host-addr)
        mutate accept-addr "$d" && mutate host-addr "$d" ;;
    host-epoch)
        edit "$d/chand-host/channel.c" "'    if (h->epoch != ch->epoch || ch->session == SESSION_NONE) {\n        count(ch, \"rx_stale_epoch\");'" \
            "'    if (ch->session == SESSION_NONE) {\n        count(ch, \"rx_stale_epoch\");'" &&
            echo code ;;
    guest-source)
        edit "$d/chand-guest/receiver.c" "'if (src_ip != rx->cfg.host_ip || src_port != rx->cfg.host_port) {'" \
            "'if (0 && (src_ip != rx->cfg.host_ip || src_port != rx->cfg.host_port)) {'" &&
            echo code ;;
    guest-dup)
        edit "$d/chand-guest/receiver.c" "'    if (h->seq < rx->next_seq) {\n        rx->stats.rx_data++;\n        rx->stats.rx_duplicate++;'" \
            "'    if (0) {\n        rx->stats.rx_data++;\n        rx->stats.rx_duplicate++;'" &&
            echo code ;;
    *)
        echo "hostile-mutate: unknown mutation $1" >&2
        return 1 ;;
    esac
}

# Other system tests share the chst- prefix: start only when none runs.
wait_free() {
    while ip netns list | grep -q chst-; do
        sleep 0.5
    done
}

mkdir -p "$MUT"
declare -A RESULT
muts=${*:-$ALL}
for m in $muts; do
    d=$MUT/$m
    rm -rf "$d" "$d.build"
    mkdir -p "$d"
    tar -C "$SRC" --exclude=./.git --exclude=./_build \
        --exclude=./autom4te.cache -cf - . | tar -C "$d" -xf - || exit 1
    kind=$(mutate "$m" "$d") || { RESULT[$m]="mutation not applied"; continue; }
    build=$BUILD
    if [ "$kind" = code ]; then
        build=$d.build
        mkdir -p "$build"
        if ! (cd "$build" && "$d/configure" -q --enable-werror &&
              make -j2 >make.log 2>&1); then
            RESULT[$m]="build failed (see $build/make.log)"
            continue
        fi
    fi
    wait_free
    log=$MUT/$m.log
    CHAND_BUILD_DIR=$build bash "$d/test/system/test-hostile.sh" "$build" \
        >"$log" 2>&1
    rc=$?
    fails=$(grep -c '^\[test-hostile\] FAIL: ' "$log")
    if [ $rc = 0 ]; then
        RESULT[$m]="SURVIVED (test passed)"
    else
        RESULT[$m]="caught: $fails assertions failed"
    fi
    printf '=== %s: %s\n' "$m" "${RESULT[$m]}" | tee -a "$MUT/summary"
    grep '^\[test-hostile\] FAIL: ' "$log" | sed 's/^\[test-hostile\] FAIL: /    /' |
        grep -v '^    FAILED$' | cut -c1-220
    [ "${HOSTILE_MUT_KEEP:-0}" = 1 ] || rm -rf "$d" "$d.build"
done
echo
echo "mutation matrix:"
for m in $muts; do
    printf '  %-14s %s\n' "$m" "${RESULT[$m]}"
done
