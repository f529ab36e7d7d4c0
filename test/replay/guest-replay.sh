#!/usr/bin/env bash
# test/replay/guest-replay.sh -- offline replay of a channel capture into a
# guest datastore (chand-guest-replay; doc/replay.md, "Offline replay into
# a guest datastore").
#
# Builds a capture with make-guest-capture.py (an independent Python
# encoder: Ethernet, 802.1Q, IPv4, UDP, chand frames with HMAC trailers),
# replays it with chand-guest-replay into fresh and existing datastores,
# and checks the summary and, with sqlite3, the exact records, position and
# apply counts.  No Open vSwitch, no root, no namespaces.
#
# Usage: test/replay/guest-replay.sh [--keep]
# Environment:
#   CHAND_BUILD_DIR     build directory holding
#                       utilities/chand-guest-replay
#                       (default: _build/default of this tree)
#   CHAND_GUEST_REPLAY  the chand-guest-replay binary (overrides
#                       CHAND_BUILD_DIR)
# Exit status: 0 pass, 1 fail, 77 skip (python3 or sqlite3 missing, or
# chand-guest-replay not built).

set -u -o pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
build=${CHAND_BUILD_DIR:-$top/_build/default}
replay_tool=${CHAND_GUEST_REPLAY:-$build/utilities/chand-guest-replay}
keep=0
[ "${1:-}" = --keep ] && keep=1

for prog in python3 sqlite3; do
    if ! command -v "$prog" >/dev/null 2>&1; then
        echo "guest-replay: SKIP: $prog not found"
        exit 77
    fi
done
if [ ! -x "$replay_tool" ]; then
    echo "guest-replay: SKIP: $replay_tool not built" \
         "(set CHAND_BUILD_DIR or CHAND_GUEST_REPLAY)"
    exit 77
fi

work=$(mktemp -d /tmp/chand-guest-replay.XXXXXX)
failures=0
cleanup() {
    if [ $keep = 1 ] || [ $failures != 0 ]; then
        echo "guest-replay: work directory kept: $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# replay NAME DB [ARGS...]: runs chand-guest-replay of the test capture
# into DB with ARGS; the summary goes to $work/NAME.out, the log to
# $work/NAME.log, the exit status to $rc.
replay() {
    local name=$1 db=$2
    shift 2
    "$replay_tool" --db="$db" "$@" "$cap" \
        >"$work/$name.out" 2>"$work/$name.log"
    rc=$?
    last=$name
}

# expect NAME VALUE...: the last replay's summary has "NAME VALUE" for each
# pair (drop_* counters are listed only when nonzero).
expect() {
    while [ $# -ge 2 ]; do
        local got
        got=$(awk -v n="$1" '$1 == n { print $2 }' "$work/$last.out")
        case $1 in drop_*) got=${got:-0} ;; esac
        if [ "$got" != "$2" ]; then
            fail "$last: $1 is '${got}', expected '$2'"
        fi
        shift 2
    done
}

expect_rc() {
    if [ "$rc" != "$1" ]; then
        fail "$last: exit status $rc, expected $1"
        sed 's/^/    /' "$work/$last.log" | tail -5
    fi
}

# expect_db DB EXPECTED: the records (key|value|version|apply_count, by
# key) and the channel row (host_epoch|position|snapshot_state|
# snapshot_end|frames_applied|ops_applied) of DB, one line each.
expect_db() {
    local got
    got=$(sqlite3 -readonly "$1" \
          "SELECT key, value, version, apply_count FROM records ORDER BY key;
           SELECT 'channel', printf('0x%x', host_epoch), position,
                  snapshot_state, snapshot_end, frames_applied, ops_applied
           FROM channel;")
    if [ "$got" != "$2" ]; then
        fail "$1 holds:"
        echo "$got" | sed 's/^/    got: /'
        echo "$2" | sed 's/^/    expected: /'
    fi
}

say() {
    printf '%s\n' "$*"
}

cap=$work/cap.pcap
keys=$work/channel.key
python3 "$top/test/replay/make-guest-capture.py" "$cap" "$keys" ||
    { echo "guest-replay: FAIL: cannot build the capture"; exit 1; }
chmod 600 "$keys"
big=\"$(printf 'b%.0s' $(seq 300))\"

full_store="big|$big|1|1
late|[1,2,3]|1|1
motd|\"hello again\"|2|2
untagged|null|1|1
channel|0x1234abcd|8|complete|4|7|7"

# ---------------------------------------------------------------------------
say "replay into a fresh datastore"
replay fresh "$work/fresh.db" --chan-id=7 --key-file="$keys"
expect_rc 0
expect frames_read 19 frames_for_channel 14 frames_from_guest 2 \
       frames_other_vid 1 frames_other 1 frames_not_udp 1 \
       frames_truncated 0 rx_sync 1 rx_data 9 rx_heartbeat 1 \
       applied_messages 7 applied_records 7 skipped_messages 0 \
       duplicates 1 sync_repeats 0 snapshots_begun 1 snapshots_finished 1 \
       commit_errors 0 drop_auth 1 drop_gap 1 drop_source 1 drops 3 \
       key_generations 1,2 rx_generation 2 guest_epoch 195939070 \
       host_epoch 305441741 position 8 snapshot complete snapshot_end 4 \
       records 4
expect_db "$work/fresh.db" "$full_store"
grep -q "new datastore with the captured guest epoch 195939070" \
    "$work/fresh.log" || fail "fresh: guest epoch from the capture not logged"

# ---------------------------------------------------------------------------
say "the same capture again: nothing applied twice"
before=$(sqlite3 -readonly "$work/fresh.db" \
         "SELECT * FROM records ORDER BY key; SELECT * FROM channel;")
replay again "$work/fresh.db" --chan-id=7 --key-file="$keys"
expect_rc 0
expect frames_for_channel 14 applied_messages 0 applied_records 0 \
       duplicates 10 sync_repeats 1 drop_gap 0 drop_auth 1 position 8 \
       records 4
expect_db "$work/fresh.db" "$full_store"
after=$(sqlite3 -readonly "$work/fresh.db" \
        "SELECT * FROM records ORDER BY key; SELECT * FROM channel;")
[ "$before" = "$after" ] || fail "again: the datastore changed"

# ---------------------------------------------------------------------------
say "the channel given by address instead of chan-id"
replay by_ip "$work/by-ip.db" --guest-ip=169.254.1.7 --vid=4094 \
    --key-file="$keys"
expect_rc 0
expect frames_for_channel 14 applied_messages 7 position 8 records 4
expect_db "$work/by-ip.db" "$full_store"
# Another channel's address: nothing of ours.
replay other "$work/other.db" --chan-id=8 --vid=4093 --key-file="$keys"
expect_rc 0
expect frames_for_channel 1 frames_other_vid 16 frames_other 1 \
       frames_not_udp 1 applied_messages 0 \
       drop_epoch 1 position 0 records 0

# ---------------------------------------------------------------------------
say "keys: the guest lacks generation 2"
grep -v '^2 ' "$keys" >"$work/gen1.key"
replay gen1 "$work/gen1.db" --chan-id=7 --key-file="$work/gen1.key"
expect_rc 0
expect applied_messages 3 drop_auth 8 key_generations 1 rx_generation 1 \
       position 4 snapshot complete records 3
expect_db "$work/gen1.db" "big|$big|1|1
motd|\"hello\"|1|1
net/dns|{\"servers\":[\"10.0.0.2\"]}|1|1
channel|0x1234abcd|4|complete|4|3|3"

say "keys: no key file (unauthenticated): nothing verifies"
replay nokeys "$work/nokeys.db" --chan-id=7 --key-file="$work/none.key"
expect_rc 0
expect drop_auth 13 drop_source 1 applied_messages 0 key_generations none \
       position 0 records 0
grep -q "no key file" "$work/nokeys.log" ||
    fail "nokeys: missing key file not logged"

say "keys: an invalid key file stops the replay"
printf '1 %s\n1 %s\n' "$(printf '0%.0s' $(seq 64))" \
    "$(printf 'a%.0s' $(seq 64))" >"$work/bad.key"
replay badkeys "$work/badkeys.db" --chan-id=7 --key-file="$work/bad.key"
expect_rc 1
grep -q "bad.key: line 2: generation 1 appears again (first on line 1)" \
    "$work/badkeys.log" || fail "badkeys: error not reported"
[ ! -e "$work/badkeys.db" ] || fail "badkeys: a datastore was created"

# ---------------------------------------------------------------------------
say "an existing store of another guest: the SYNC is not for it"
replay wiped "$work/wiped.db" --chan-id=7 --key-file="$work/none.key"
replay otherguest "$work/wiped.db" --chan-id=7 --key-file="$keys"
expect_rc 0
expect drop_sync_guest 1 applied_messages 0 position 0 records 0
grep -q "its SYNC will be ignored" "$work/otherguest.log" ||
    fail "otherguest: epoch mismatch not reported"

# ---------------------------------------------------------------------------
say "errors"
replay nodb "$work/no/such/dir/g.db" --chan-id=7 --key-file="$keys"
expect_rc 1
grep -q "cannot open the datastore" "$work/nodb.log" ||
    fail "nodb: error not reported"

cp "$cap" "$work/cap.orig"
cap=$work/missing.pcap
replay nopcap "$work/nopcap.db" --chan-id=7 --key-file="$keys"
expect_rc 1
grep -q "cannot read capture" "$work/nopcap.log" ||
    fail "nopcap: error not reported"

echo "not a capture" >"$work/text.pcap"
cap=$work/text.pcap
replay textpcap "$work/text.db" --chan-id=7 --key-file="$keys"
expect_rc 1

python3 -c 'import struct, sys
sys.stdout.buffer.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0,
                                    65535, 113))' >"$work/sll.pcap"
cap=$work/sll.pcap
replay sll "$work/sll.db" --chan-id=7 --key-file="$keys"
expect_rc 1
grep -q "is not Ethernet" "$work/sll.log" || fail "sll: error not reported"

# A capture cut short in its last frame: what came before is applied.
size=$(stat -c %s "$work/cap.orig")
head -c $((size - 20)) "$work/cap.orig" >"$work/cut.pcap"
cap=$work/cut.pcap
replay cut "$work/cut.db" --chan-id=7 --key-file="$keys"
expect_rc 1
expect frames_read 18 position 8 records 4
grep -q "error reading" "$work/cut.log" || fail "cut: error not reported"

cap=$work/cap.orig
"$replay_tool" --chan-id=7 "$cap" >"$work/nodbopt.out" 2>&1
[ $? = 2 ] || fail "without --db: not a usage error"
"$replay_tool" --db="$work/x.db" "$cap" >"$work/noid.out" 2>&1
[ $? = 2 ] ||
    fail "without --chan-id or --guest-ip: not a usage error"
"$replay_tool" --db="$work/x.db" --chan-id=7 >"$work/nocap.out" 2>&1
[ $? = 2 ] || fail "without a capture: not a usage error"

# ---------------------------------------------------------------------------
if [ $failures != 0 ]; then
    echo "guest-replay: $failures failure(s)"
    exit 1
fi
echo "guest-replay: PASS"
exit 0
