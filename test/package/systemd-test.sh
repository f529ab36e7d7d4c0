#!/usr/bin/env bash
# systemd-test.sh ROOT -- run by test/package/run: the units under a real
# systemd.
#
# Boots the systemd of ROOT (where the packages are installed) as PID 1 of
# a container made with unshare (new PID, mount, network, UTS, IPC and
# cgroup namespaces, a cgroup of its own), with stand-ins for
# ovsdb-server.service and ovs-vswitchd.service (sleep: no Open vSwitch is
# started) and chand-guest configured with --no-bridge.  Then checks, with
# the units exactly as packaged:
#   - chand-host.service runs after boot (the package enabled it), its
#     ExecStartPre ran and says that it finds no ovsdb-server (a failure
#     it is meant to survive), and its hardening is in force: the
#     capability bounding set is CAP_NET_ADMIN, no_new_privs is set, /usr
#     is read-only and /var/lib/chand writable in its mount namespace;
#   - chanctl reaches both daemons on their default control sockets, and
#     chand-host reads the files given to chanctl object-store in /tmp and
#     in /root;
#   - systemctl enable --now chand-guest runs it, with its capabilities;
#   - logrotate -f /etc/logrotate.d/chand makes both reopen their logs;
#   - a chand-host killed with SIGKILL is restarted (Restart=on-failure);
#   - stopping ovs-vswitchd.service stops both (BindsTo=), starting it
#     starts both again (WantedBy=).
# Prints "ok" and "FAIL" lines; exits non-zero on a failure.  Stops the
# container and removes its cgroup on exit.

set -u -o pipefail

root=$1
version=$2
failed=0
ok() { printf 'ok    systemd: %s\n' "$*"; }
fail() { printf 'FAIL  systemd: %s\n' "$*"; failed=1; }

# Stand-ins for Open vSwitch's units, the guest's options.
for u in ovsdb-server ovs-vswitchd; do
    printf '[Unit]\nDescription=stand-in for %s (test/package)\n[Service]\nExecStart=/bin/sleep infinity\n' \
        "$u" >"$root/etc/systemd/system/$u.service"
done
ln -sf /dev/null "$root/etc/systemd/system/ovs-record-hostname.service"
sed -i 's/^CHAND_GUEST_OPTS=.*/CHAND_GUEST_OPTS="--chan-id=7 --no-bridge --stats-interval=0"/' \
    "$root/etc/default/chand-guest"

cg2=$(findmnt -n -t cgroup2 -o TARGET | head -1)
[ -n "$cg2" ] || { fail "no cgroup2 file system mounted"; exit 1; }
cgroup=$cg2/chand-package-$$
mkdir "$cgroup" || { fail "cannot create $cgroup"; exit 1; }

# The container: its root a mount point (systemd makes / a slave mount),
# fresh /proc, /sys, cgroup2, /run and /tmp, the host's /dev.
cat >"$root/../boot.sh" <<'EOF'
set -eu
r=$1
mount --make-rprivate /
mount --bind "$r" "$r"
mount -t proc proc "$r/proc"
mount -t sysfs sysfs "$r/sys"
mount -t cgroup2 cgroup2 "$r/sys/fs/cgroup"
mount -t tmpfs tmpfs "$r/run"
mount -t tmpfs tmpfs "$r/tmp"
mount --rbind /dev "$r/dev"
exec chroot "$r" env container=chand-test /lib/systemd/systemd --system --log-target=journal
EOF
(echo "$BASHPID" >"$cgroup/cgroup.procs" &&
    exec unshare --pid --fork --mount --uts --ipc --net --cgroup \
        sh "$root/../boot.sh" "$root" >"$root/../boot.log" 2>&1) &
launcher=$!

pid1=
stop_container() {
    [ -n "$pid1" ] && kill -KILL "$pid1" 2>/dev/null
    wait "$launcher" 2>/dev/null
    for _ in 1 2 3 4 5; do
        find "$cgroup" -depth -type d -exec rmdir {} + 2>/dev/null
        [ -d "$cgroup" ] || break
        sleep 0.2
    done
}
trap stop_container EXIT

# unshare's child runs boot.sh, then execs systemd.
for _ in $(seq 50); do
    p=$(pgrep -P "$launcher" | head -1)
    if [ -n "$p" ] && [ "$(cat "/proc/$p/comm" 2>/dev/null)" = systemd ]; then
        pid1=$p
        break
    fi
    sleep 0.1
done
[ -n "$pid1" ] || { fail "systemd did not start: $(cat "$root/../boot.log")"; exit 1; }

# ct CMD...: runs CMD in the container.
ct() {
    nsenter -t "$pid1" -m -p -n -u -i -r -w "$@"
}
state=
for _ in $(seq 100); do
    state=$(ct systemctl is-system-running 2>/dev/null)
    case $state in running|degraded) break ;; esac
    sleep 0.2
done
case $state in
    running|degraded) ok "systemd booted in the root ($state)" ;;
    *) fail "systemd did not come up: '$state'"; exit 1 ;;
esac

# active UNIT: waits up to 5 s for UNIT to be active.
active() {
    for _ in $(seq 25); do
        [ "$(ct systemctl is-active "$1")" = active ] && return 0
        sleep 0.2
    done
    return 1
}
inactive() {
    for _ in $(seq 25); do
        [ "$(ct systemctl is-active "$1")" != active ] && return 0
        sleep 0.2
    done
    return 1
}
mainpid() { ct systemctl show -P MainPID "$1"; }
# caps PID FIELD: a capability set of PID, as seen from the host.
caps() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }
# host_pid PID COMMAND: the host's PID of the container's process PID,
# running COMMAND.
host_pid() {
    local inner=$1 p ns
    ns=$(readlink "/proc/$pid1/ns/pid")
    for p in $(pgrep -f "$2"); do
        [ "$(readlink "/proc/$p/ns/pid")" = "$ns" ] &&
            [ "$(awk '/^NSpid:/ { print $3 }' "/proc/$p/status")" = "$inner" ] &&
            { echo "$p"; return; }
    done
}

if active chand-host.service; then
    ok "chand-host.service runs after boot"
else
    fail "chand-host.service: $(ct systemctl status chand-host --no-pager 2>&1 | head -20)"
    exit 1
fi
if ct journalctl -u chand-host --no-pager |
        grep -q 'chan-db-serve: ovsdb-server does not answer on unix:/run/openvswitch/db.sock'; then
    ok "its ExecStartPre ran, said why it could not serve the Chan DB, and did not stop it"
else
    fail "ExecStartPre: $(ct journalctl -u chand-host --no-pager | grep chan-db-serve)"
fi
hpid=$(host_pid "$(mainpid chand-host)" /usr/sbin/chand-host)
if [ "$(caps "$hpid" CapBnd)" = 0000000000001000 ] &&
        [ "$(awk '/^NoNewPrivs:/ { print $2 }' "/proc/$hpid/status")" = 1 ]; then
    ok "chand-host: capability bounding set CAP_NET_ADMIN only, no_new_privs"
else
    fail "chand-host: CapBnd $(caps "$hpid" CapBnd), $(grep NoNewPrivs "/proc/$hpid/status")"
fi
if ! nsenter -t "$hpid" -m -r touch /usr/chand-test 2>/dev/null &&
        nsenter -t "$hpid" -m -r touch /var/lib/chand/chand-test; then
    ok "chand-host: /usr read-only, /var/lib/chand writable (ProtectSystem=strict)"
    rm -f "$root/var/lib/chand/chand-test"
else
    fail "chand-host: ProtectSystem=strict and ReadWritePaths are not in force"
fi
# chanctl object-store FILE has chand-host open FILE itself: the sandbox
# must leave the operator's files readable, in /tmp and in home directories.
for f in /tmp/chand-object /root/chand-object; do
    ct sh -c "echo 'an object in $f' > $f"
    out=$(ct chanctl object-store "$f" 2>&1)
    if echo "$out" | grep -Eq '^[0-9a-f]{64} [0-9]+$'; then
        ok "chanctl object-store $f: chand-host read it"
    else
        fail "chanctl object-store $f: '$out'"
    fi
done
out=$(ct chanctl host version 2>&1)
if [ "$out" = "chand $version" ]; then
    ok "chanctl host version: $out"
else
    fail "chanctl host version: '$out'"
fi

ct systemctl enable --now chand-guest.service >/dev/null 2>&1
if active chand-guest.service; then
    ok "systemctl enable --now chand-guest"
else
    fail "chand-guest.service: $(ct systemctl status chand-guest --no-pager 2>&1 | head -20)"
    exit 1
fi
if ct chanctl guest-status >/dev/null 2>&1; then
    ok "chanctl guest-status"
else
    fail "chanctl guest-status: $(ct chanctl guest-status 2>&1)"
fi
gpid=$(host_pid "$(mainpid chand-guest)" /usr/sbin/chand-guest)
# CAP_CHOWN 0, DAC_OVERRIDE 1, DAC_READ_SEARCH 2, FOWNER 3, FSETID 4,
# KILL 5, SETGID 6, SETUID 7, NET_ADMIN 12, NET_RAW 13.
if [ "$(caps "$gpid" CapBnd)" = 00000000000030ff ]; then
    ok "chand-guest: capability bounding set as the unit lists"
else
    fail "chand-guest: CapBnd $(caps "$gpid" CapBnd), expected 00000000000030ff"
fi

ct logrotate -f /etc/logrotate.d/chand
for d in host guest; do
    p=$(host_pid "$(mainpid chand-$d)" /usr/sbin/chand-$d)
    if [ -s "$root/var/log/chand/chand-$d.log.1" ] &&
            readlink "/proc/$p/fd/"* | grep -qx "$root/var/log/chand/chand-$d.log"; then
        ok "logrotate: chand-$d reopened its log"
    else
        fail "logrotate: chand-$d: $(ls -l "$root/var/log/chand")"
    fi
done

old=$(mainpid chand-host)
ct kill -KILL "$old"
sleep 0.5
if active chand-host.service && [ "$(mainpid chand-host)" != "$old" ]; then
    ok "chand-host killed with SIGKILL is restarted"
else
    fail "chand-host was not restarted after SIGKILL"
fi

ct systemctl stop ovs-vswitchd.service
if inactive chand-host.service && inactive chand-guest.service; then
    ok "stopping ovs-vswitchd.service stops chand-host and chand-guest"
else
    fail "after stopping ovs-vswitchd: chand-host $(ct systemctl is-active chand-host), chand-guest $(ct systemctl is-active chand-guest)"
fi
ct systemctl start ovs-vswitchd.service
if active chand-host.service && active chand-guest.service; then
    ok "starting ovs-vswitchd.service starts them again"
else
    fail "after starting ovs-vswitchd: chand-host $(ct systemctl is-active chand-host), chand-guest $(ct systemctl is-active chand-guest)"
fi

exit $failed
