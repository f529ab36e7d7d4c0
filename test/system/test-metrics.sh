#!/usr/bin/env bash
# Metrics on the real topology: `chanctl metrics` on the host and in a
# guest, and chand-host's --metrics over HTTP, each parsed with
# prometheus_client's text parser (a real Prometheus parser): HELP and TYPE
# on every family, the counters the test caused (records pushed and
# applied, frames acknowledged), labels vm and chassis with the right
# values; then 404, 405, 400 and 431 over HTTP, a silent client cut off
# after the timeout while others are served, chand-host still serving after
# garbage and its bad-request counter gone up by as many; a second
# chand-host on the same port exits 1 saying why; bad control commands
# counted on host and guest.

. "$(dirname "$0")/lib.sh"
st_require_root
here=$(cd "$(dirname "$0")" && pwd)
TOPO_HOST_NS=chst-mhv
VM1=chst-mvm1
VM2=chst-mvm2
CHASSIS=chst-metrics-hv
PORT=9478
N1=25
N2=7

# The interpreter that has prometheus_client: python3 in PATH may be a
# version manager's, without Debian's python3-prometheus-client.
PY=
for p in python3 /usr/bin/python3; do
    if "$p" -c 'import prometheus_client.parser' 2>/dev/null; then
        PY=$p
        break
    fi
done
if [ -z "$PY" ]; then
    st_log "FAIL: no python3 with prometheus_client (Debian: python3-prometheus-client)"
    exit 1
fi
MT() {
    "$PY" "$here/metrics-tool.py" "$@"
}
# In chand-host's namespace, where --metrics listens.
MT_HV() {
    ovsi_exec "$TOPO_HOST" "$PY" "$here/metrics-tool.py" "$@"
}

TOPO_HOST_ARGS=(--chassis="$CHASSIS" --metrics=127.0.0.1:$PORT)
st_up $VM1:41 $VM2:42
st_check "both channels ready" st_chanctl wait --timeout 60

for i in $(seq $N1); do
    st_chanctl push --vm $VM1 "m/$i" "$i" || st_fail "push m/$i to $VM1"
done
for i in $(seq $N2); do
    st_chanctl push --vm $VM2 "m/$i" "\"v$i\"" || st_fail "push m/$i to $VM2"
done
st_check "channels in sync after the pushes" st_chanctl wait --timeout 60

out=$OVSI_BASE/metrics
mkdir -p "$out"
# The Channel rows and counters settle a moment after the guest acks.
applied_is() {
    st_chanctl metrics >"$out/host.txt" &&
        [ "$(MT value "$out/host.txt" chand_channel_applied_records \
             vm=$VM1)" = $N1 ]
}

# --- chanctl metrics on the host -----------------------------------------
st_check "host: $VM1's applied records reach $N1" st_wait 30 applied_is
st_check "host: chanctl metrics parses, HELP and TYPE everywhere" \
    MT parse "$out/host.txt"
st_log "  $(MT parse "$out/host.txt")"
value_is() {
    local file=$1 want=$2
    shift 2
    local got
    got=$(MT value "$file" "$@") || return 1
    [ "$got" = "$want" ] || { st_log "  $* is $got, not $want"; return 1; }
}
value_ge() {
    local file=$1 want=$2
    shift 2
    local got
    got=$(MT value "$file" "$@") || return 1
    [ "${got%.*}" -ge "$want" ] ||
        { st_log "  $* is $got, below $want"; return 1; }
}
st_check "host: $VM1 desired records = $N1" \
    value_is "$out/host.txt" $N1 chand_channel_desired_records vm=$VM1
st_check "host: $VM2 applied records = $N2" \
    value_is "$out/host.txt" $N2 chand_channel_applied_records vm=$VM2
st_check "host: $VM1 is ready" \
    value_is "$out/host.txt" 1 chand_channel_state vm=$VM1 state=ready
st_check "host: 2 channels" value_is "$out/host.txt" 2 chand_host_channels
st_check "host: $VM1's channel id is in chand_channel_info" \
    value_is "$out/host.txt" 1 chand_channel_info vm=$VM1 chan_id=41 \
    chassis=$CHASSIS
st_check "host: $VM1's messages acknowledged >= 1" \
    value_ge "$out/host.txt" 1 chand_channel_messages_acked_total vm=$VM1
st_check "host: seen_to_acked histogram counts >= 1 push for $VM1" \
    value_ge "$out/host.txt" 1 chand_channel_record_latency_seconds_count \
    vm=$VM1 stage=seen_to_acked
st_check "host: histogram's +Inf bucket equals its count" \
    test "$(MT value "$out/host.txt" \
            chand_channel_record_latency_seconds_bucket vm=$VM1 \
            stage=seen_to_acked le=+Inf)" = \
         "$(MT value "$out/host.txt" \
            chand_channel_record_latency_seconds_count vm=$VM1 \
            stage=seen_to_acked)"
st_check "host: every chand_channel_ series has vm and chassis" \
    MT labels "$out/host.txt" chand_channel_ chassis=$CHASSIS
st_check "host: every chand_host_ series has chassis" \
    MT labels "$out/host.txt" chand_host_ chassis=$CHASSIS
st_check "host: $VM2's series carry vm=$VM2" \
    value_is "$out/host.txt" 1 chand_channel_info vm=$VM2 chan_id=42
no_vm_missing() {
    ! grep -E '^chand_channel_[a-z_]+(\{|\s)' "$out/host.txt" |
        grep -v 'vm="chst-mvm[12]"'
}
st_check "host: no chand_channel_ sample without a vm label" no_vm_missing

# --- chanctl metrics in a guest ------------------------------------------
st_guest $VM1 metrics guest >"$out/guest.txt" ||
    st_fail "chanctl metrics guest in $VM1"
st_check "guest: chanctl metrics parses, HELP and TYPE everywhere" \
    MT parse "$out/guest.txt"
st_log "  $(MT parse "$out/guest.txt")"
st_check "guest: $VM1 holds $N1 records" \
    value_is "$out/guest.txt" $N1 chand_guest_records chan_id=41
st_check "guest: $N1 records applied" \
    value_is "$out/guest.txt" $N1 chand_guest_records_applied_total chan_id=41
st_check "guest: every series has chan_id 41" \
    MT labels "$out/guest.txt" chand_guest_ chan_id=41
st_guest $VM1 metrics >"$out/guest-auto.txt" ||
    st_fail "chanctl metrics (no argument) in $VM1"
st_check "guest: chanctl metrics without an argument asks chand-guest" \
    MT parse "$out/guest-auto.txt"

# --- --metrics over HTTP ---------------------------------------------------
url=http://127.0.0.1:$PORT
scrape=$(MT_HV scrape "$url/metrics" "$out/http.txt")
st_check "http: GET /metrics answers 200 text/plain; version=0.0.4" \
    test "$scrape" = "200 text/plain; version=0.0.4; charset=utf-8"
st_check "http: the scrape parses, HELP and TYPE everywhere" \
    MT parse "$out/http.txt"
st_check "http: same $VM1 applied records as chanctl metrics" \
    value_is "$out/http.txt" $N1 chand_channel_applied_records vm=$VM1 \
    chassis=$CHASSIS
st_check "http: one scrape counted so far" \
    value_is "$out/http.txt" 1 chand_host_metrics_http_responses_total \
    code=200 chassis=$CHASSIS
bad_before=$(MT value "$out/http.txt" chand_host_metrics_http_bad_requests_total)

st_check "http: GET /other answers 404" \
    test "$(MT_HV scrape "$url/other" "$out/404.txt" | cut -d' ' -f1)" = 404
st_check "http: POST /metrics answers 405" \
    test "$(MT_HV raw 127.0.0.1 $PORT \
            'POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n')" \
         = "HTTP/1.1 405 Method Not Allowed"
st_check "http: garbage answers 400" \
    test "$(MT_HV raw 127.0.0.1 $PORT '\x16\x03\x01\x02\x00garbage\r\n\r\n')" \
         = "HTTP/1.1 400 Bad Request"
st_check "http: a request line without a version answers 400" \
    test "$(MT_HV raw 127.0.0.1 $PORT 'GET /metrics\r\n\r\n')" \
         = "HTTP/1.1 400 Bad Request"
big=$("$PY" -c 'print("GET /metrics HTTP/1.1\\r\\nX: " + "a" * 9000 + "\\r\\n\\r\\n")')
st_check "http: a 9 kB request head answers 431" \
    test "$(MT_HV raw 127.0.0.1 $PORT "$big")" \
         = "HTTP/1.1 431 Request Header Fields Too Large"
# A client that says nothing holds a connection until the timeout; others
# are served meanwhile.
MT_HV raw 127.0.0.1 $PORT '' >"$out/silent.txt" 2>&1 &
silent=$!
sleep 0.5
st_check "http: served while a silent client is connected" \
    test "$(MT_HV scrape "$url/metrics" "$out/http-silent.txt" |
            cut -d' ' -f1)" = 200
st_check "http: the silent client is cut off after the timeout" \
    st_wait 20 bash -c "! kill -0 $silent"
wait $silent
st_check "chand-host still running after bad requests" \
    kill -0 "$(cat "$TOPO_RUN/chand-host.pid")"
scrape=$(MT_HV scrape "$url/metrics" "$out/http2.txt")
st_check "http: chand-host still serves GET /metrics" \
    test "${scrape%% *}" = 200
st_check "http: bad requests counted (5 more)" \
    value_is "$out/http2.txt" $((bad_before + 5)) \
    chand_host_metrics_http_bad_requests_total chassis=$CHASSIS
st_check "http: 404 counted" value_is "$out/http2.txt" 1 \
    chand_host_metrics_http_responses_total code=404
st_check "http: the silent client counted as a timeout" \
    value_is "$out/http2.txt" 1 chand_host_metrics_http_timeouts_total

# A second chand-host cannot take the port: it says so and exits 1.
second_fails() {
    local rc
    ovsi_exec "$TOPO_HOST" timeout 10 "$ST_BUILD/chand-host/chand-host" \
        --metrics=127.0.0.1:$PORT --ctl="$OVSI_BASE/second.ctl" \
        --flows="$ST_SRC/flows/host.flows" --ovs-db=unix:/nonexistent \
        --content-dir="$OVSI_BASE/second-content" 2>"$out/second.err"
    rc=$?
    [ $rc = 1 ] && grep -q "cannot serve metrics on 127.0.0.1:$PORT: Address already in use" \
        "$out/second.err"
}
st_check "a second chand-host on the same --metrics port exits 1, saying why" \
    second_fails

# --- bad input on the control sockets is counted too ----------------------
st_chanctl host no/such-command >/dev/null 2>&1 &&
    st_fail "an unknown control command succeeded"
st_check "host: chanctl still answers" st_chanctl metrics host \
    >"$out/host2.txt"
st_check "host: the unknown control command is counted" \
    value_is "$out/host2.txt" 1 chand_host_ctl_unknown_commands_total \
    chassis=$CHASSIS
st_guest $VM1 guest guest/nonsense >/dev/null 2>&1 &&
    st_fail "an unknown guest control command succeeded"
st_guest $VM1 metrics guest >"$out/guest2.txt" ||
    st_fail "chanctl metrics guest in $VM1 after bad input"
st_check "guest: the unknown control command is counted" \
    value_is "$out/guest2.txt" 1 chand_guest_ctl_unknown_commands_total \
    chan_id=41
st_check "guest: chanctl metrics foo is a usage error" \
    bash -c "! '$ST_BUILD/utilities/chanctl' metrics foo 2>/dev/null"

# CHAND_METRICS_SAVE=DIR keeps the scrapes (e.g. to list the metrics).
if [ -n "${CHAND_METRICS_SAVE:-}" ]; then
    mkdir -p "$CHAND_METRICS_SAVE" && cp "$out"/*.txt "$CHAND_METRICS_SAVE"
fi

st_exit
