#!/usr/bin/env bash
# Record_Set, the bulk form of Record (doc/chan-db.md): a set's entries
# reach the guests like Record rows; changing one entry sends only it; a
# Record row of the same key wins over the set and the set's error says
# so; invalid entries are left out with an error, the rest delivered;
# chanctl push of several records writes one set and chanctl delete takes
# a key out of it.  Also: chand-host's latency histograms see the pushes,
# in channel-show, host/status and Channel.statistics.

. "$(dirname "$0")/lib.sh"
st_require_root

st_up chst-vm1:11 chst-vm2:12
st_check "both channels ready" st_chanctl wait --timeout 60

db() { ovsdb-client transact "$(topo_db)" "[\"Chan\", $1]"; }
guest_value() {
    sqlite3 "$TOPO_RUN/$1/guest.db" "select value from records where key = '$2'"
}
guest_count() {
    sqlite3 "$TOPO_RUN/$1/guest.db" \
        "select count(*) from records where key like '$2%'"
}
value_is() { [ "$(guest_value "$1" "$2")" = "$3" ]; }
count_is() { [ "$(guest_count "$1" "$2")" = "$3" ]; }
frames_sent() {
    st_chanctl channel-show chst-vm1 | python3 -c '
import json, sys
print(json.load(sys.stdin)["counters"]["frames_sent"])'
}
# set_error NAME VM: the error column of VM's Record_Set NAME.
set_error() {
    db '{"op":"select","table":"Record_Set","where":[["name","==","'"$1"'"],
         ["vm","==","'"$2"'"]], "columns":["error"]}' | python3 -c '
import json, sys
e = json.load(sys.stdin)[0]["rows"][0]["error"]
print(e if isinstance(e, str) else "")'
}

# --- 200 records in one push: one Record_Set row ------------------------
pad=$(printf 'x%.0s' $(seq 150))
args=()
for i in $(seq 200); do
    args+=("bulk/$i" "\"$pad-$i\"")
done
st_chanctl push --vm chst-vm1 "${args[@]}" || st_fail "push of 200 records"
st_check "all 200 records of the set reach vm1" st_wait 30 count_is chst-vm1 bulk/ 200
st_check "with their values" value_is chst-vm1 bulk/77 "\"$pad-77\""
st_check "vm2 gets none of them" count_is chst-vm2 bulk/ 0
st_check "channel in sync" st_chanctl wait --vm chst-vm1 --timeout 30

# --- one entry changed: only it is sent ---------------------------------
before=$(frames_sent)
db '{"op":"mutate","table":"Record_Set","where":[["name","==","chanctl"],["vm","==","chst-vm1"]],
     "mutations":[["records","delete",["set",["bulk/5"]]],
                  ["records","insert",["map",[["bulk/5","\"changed\""]]]]]}' >/dev/null
st_check "the changed entry arrives" st_wait 30 value_is chst-vm1 bulk/5 '"changed"'
st_check "channel in sync again" st_chanctl wait --vm chst-vm1 --timeout 30
after=$(frames_sent)
st_log "frames sent for one changed entry of 200: $((after - before))"
st_check "one changed entry of 200 costs one frame, not the whole set" \
    [ $((after - before)) -le 2 ]

# --- all-VMs set ----------------------------------------------------------
st_chanctl push every/a 1 every/b 2 || st_fail "push to all VMs"
for vm in chst-vm1 chst-vm2; do
    st_check "$vm gets the all-VMs set" st_wait 30 count_is "$vm" every/ 2
done

# --- a Record row of the same key wins; the set says so -----------------
st_chanctl push --vm chst-vm1 bulk/9 '"from a Record row"' || st_fail "push bulk/9"
st_check "the Record row's value wins over the set's" \
    st_wait 30 value_is chst-vm1 bulk/9 '"from a Record row"'
shadowed() { set_error chanctl chst-vm1 | grep -q "1 keys also given by a Record row"; }
st_check "the set's error names the shadowed key" st_wait 30 shadowed
db '{"op":"delete","table":"Record","where":[["key","==","bulk/9"]]}' >/dev/null
st_check "with the Record row gone the set's value is back" \
    st_wait 30 value_is chst-vm1 bulk/9 "\"$pad-9\""
no_error() { [ -z "$(set_error chanctl chst-vm1)" ]; }
st_check "and its error is cleared" st_wait 30 no_error

# --- invalid entries are left out, the rest delivered -------------------
db '{"op":"insert","table":"Record_Set","row":{"name":"mixed","vm":"chst-vm2",
     "version":4,"records":["map",[["mix/good","[1,2]"],["mix/bad","{nope"]]]}}' >/dev/null
st_check "a set's valid entry arrives" st_wait 30 value_is chst-vm2 mix/good '[1,2]'
st_check "its invalid entry does not" count_is chst-vm2 mix/bad 0
bad_noted() { set_error mixed chst-vm2 | grep -q "1 of 2 records invalid, left out (mix/bad: value is not valid JSON"; }
st_check "the set's error says which entry is invalid" st_wait 30 bad_noted
applied_version() {
    db '{"op":"select","table":"Channel","where":[["vm","==","chst-vm2"]],
         "columns":["applied"]}' | python3 -c '
import json, sys
m = dict(json.load(sys.stdin)[0]["rows"][0]["applied"][1])
sys.exit(0 if m.get("mix/good") == 4 else 1)'
}
st_check "the entry carries the set's version back in Channel.applied" \
    st_wait 30 applied_version

# --- chanctl delete takes a key out of the set ----------------------------
st_chanctl delete --vm chst-vm1 bulk/200 || st_fail "delete bulk/200"
st_check "deleting a set's key removes it from the guest" \
    st_wait 30 count_is chst-vm1 bulk/200 0
st_check "and leaves the others" count_is chst-vm1 bulk/ 199

# --- latency histograms ----------------------------------------------------
lat_ok() {
    st_chanctl channel-show chst-vm1 | python3 -c '
import json, sys
lat = json.load(sys.stdin)["latency"]
for stage in ("seen_to_sent", "sent_to_acked", "acked_to_applied",
              "seen_to_acked", "seen_to_applied"):
    h = lat[stage]
    assert h["count"] > 0, stage
    assert 0 < h["p50_us"] <= h["p99_us"] <= h["max_us"], (stage, h)
    assert sum(b[1] for b in h["buckets"]) == h["count"], stage
# The stages add up: seen -> applied is no shorter than seen -> acked.
assert lat["seen_to_applied"]["p50_us"] >= lat["seen_to_acked"]["p50_us"]'
}
st_check "channel-show has every latency stage" st_wait 30 lat_ok
status_lat() {
    st_chanctl host host/status | python3 -c '
import json, sys
lat = json.load(sys.stdin)["latency"]
assert lat["seen_to_acked"]["count"] > 0'
}
st_check "host/status adds the channels' histograms up" status_lat
stats_lat() {
    db '{"op":"select","table":"Channel","where":[["vm","==","chst-vm1"]],
         "columns":["statistics"]}' | python3 -c '
import json, sys
s = dict(json.load(sys.stdin)[0]["rows"][0]["statistics"][1])
assert s["latency_seen_to_applied_p99_us"] >= s["latency_seen_to_applied_p50_us"] > 0, s'
}
st_check "Channel.statistics carries the p50 and p99" st_wait 30 stats_lat

st_exit
