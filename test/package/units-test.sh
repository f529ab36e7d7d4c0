# units-test.sh -- run by test/package/run inside the root where the
# packages are installed (chroot), in a private network and mount namespace.
#
# Starts chand-host and chand-guest with their units' own ExecStart lines
# (the options as /etc/default/chand-* would give them: none for the host,
# which then waits for an Open vSwitch that is not there; --no-bridge for
# the guest), checks the Type=forking contract (when the command returns,
# the pidfile names the running daemon), then runs logrotate on
# /etc/logrotate.d/chand and checks that each daemon writes to a new log
# file (its postrotate's vlog/reopen).  Prints "ok" and "FAIL" lines; exits
# non-zero on a failure.  Stops both daemons on exit.

set -u

# execstart UNIT: UNIT's ExecStart command line, continuation lines joined.
execstart() {
    sed -n '/^ExecStart=/,/[^\\]$/p' "/lib/systemd/system/$1" |
        sed 's/^ExecStart=//; s/\\$//' | tr '\n' ' '
}

stop() {
    for d in host guest; do
        if [ -f /run/chand/chand-$d.pid ]; then
            kill "$(cat /run/chand/chand-$d.pid)"
        fi
    done
}
trap stop EXIT

mkdir -p /run/chand             # the units' RuntimeDirectory
# Used by the ExecStart lines, through eval.
export CHAND_HOST_OPTS=""
export CHAND_GUEST_OPTS="--chan-id=7 --no-bridge --stats-interval=0"

for d in host guest; do
    cmd=$(execstart chand-$d.service)
    if eval "$cmd" 2>/dev/null && [ -s /run/chand/chand-$d.pid ] &&
            kill -0 "$(cat /run/chand/chand-$d.pid)"; then
        echo "ok    chand-$d.service's ExecStart returns with the daemon running and its pidfile written"
    else
        echo "FAIL  chand-$d.service's ExecStart: $cmd"
        exit 1
    fi
done

logrotate -f /etc/logrotate.d/chand || { echo "FAIL  logrotate"; exit 1; }
rc=0
for d in host guest; do
    log=/var/log/chand/chand-$d.log
    fds=0
    for fd in /proc/"$(cat /run/chand/chand-$d.pid)"/fd/*; do
        [ "$(readlink "$fd")" = "$log" ] && fds=$((fds + 1))
    done
    if [ -s "$log.1" ] && [ -f "$log" ] && [ "$fds" = 1 ]; then
        echo "ok    logrotate: chand-$d's log rotated to $log.1, $log reopened"
    else
        echo "FAIL  logrotate: chand-$d ($fds descriptors on $log): $(ls -l /var/log/chand | tr '\n' ' ')"
        rc=1
    fi
done
exit $rc
