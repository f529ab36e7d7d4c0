#!/usr/bin/env bash
# The Python client library (python/chand, doc/python-client.md) against a
# real chand-guest.
#
# The package is installed the way doc/python-client.md says, offline: with
# "pip install ./python" into a fresh venv of Debian's python3 (the build
# backend is in the tree and needs nothing from PyPI; PIP_NO_INDEX makes
# sure nothing is fetched), and with "pip install --target".  Then
# python-client-check.py, run inside the VM's network namespace with the
# venv's interpreter, checks get/list of what the host pushed (a 2 MiB
# value too), watch (the records first, then a push, a delete, a change
# that came while a call waited), publish and unpublish as the Chan DB's
# Guest_Record sees them, the refusals (NotFound, InvalidParams), object
# registration (obj/DIGEST on the host), and the clear error of a wrong
# socket or a broken connection.

. "$(dirname "$0")/lib.sh"
st_require_root
here=$(cd "$(dirname "$0")" && pwd)
TOPO_HOST_NS=chst-pchv
VM=chst-pcvm1

# Debian's interpreter: python3 in PATH may be a version manager's.
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)
if ! "$PY" -m venv --help >/dev/null 2>&1 || ! "$PY" -m pip --version >/dev/null 2>&1; then
    echo "$ST_NAME: SKIP: $PY has no venv or pip module (Debian: python3-venv, python3-pip)" >&2
    exit 77
fi

st_up "$VM:131"
st_check "$VM ready" st_chanctl wait --vm "$VM" --timeout 60

# --- install, offline ---------------------------------------------------
VENV=$OVSI_BASE/venv
TARGET=$OVSI_BASE/pylib
export PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1
unset PIP_FIND_LINKS
"$PY" -m venv "$VENV" || st_fail "python3 -m venv"
st_check "pip install ./python into a venv, offline" \
    bash -c "cd '$ST_SRC' && '$VENV/bin/pip' install ./python >'$OVSI_BASE/pip.log' 2>&1"
st_check "pip install --target DIR ./python, offline" \
    bash -c "cd '$ST_SRC' && '$PY' -m pip install --target '$TARGET' ./python >>'$OVSI_BASE/pip.log' 2>&1"
st_check "the --target copy imports" \
    env PYTHONPATH="$TARGET" "$PY" -c \
    "import chand, sys; sys.exit(not chand.__file__.startswith('$TARGET/'))"
if [ "$ST_FAILED" != 0 ]; then
    tail -20 "$OVSI_BASE/pip.log" >&2
    st_exit
fi

# --- what the host pushes -----------------------------------------------
st_chanctl push --vm "$VM" cfg/a '"alpha"' cfg/b '{"n": 1}' other/x 1 ||
    st_fail "push"
"$here/push-big.py" "$(topo_db | sed 's/^unix://')" "$VM" big $((2 * 1024 * 1024)) ||
    st_fail "pushing a 2 MiB record"
st_check "the pushes reach $VM" st_wait 60 st_guest "$VM" get big

# --- the checks, in the VM ----------------------------------------------
mkdir -p "$OVSI_BASE/pyfiles"
out=$(ip netns exec "$VM" env -u CHAND_GUEST_API \
          CHANCTL="$ST_BUILD/utilities/chanctl" \
          CHAND_CHAN_DB="$(topo_db)" \
          CHAND_HOST_CTL="$TOPO_RUN/chand-host.ctl" \
          timeout 300 "$VENV/bin/python" "$here/python-client-check.py" \
          "$VM" "$OVSI_BASE/pyfiles" "$VENV" 2>&1)
rc=$?
while IFS= read -r line; do
    case $line in
        ok:*) st_log "$line" ;;
        FAIL:*) st_fail "${line#FAIL: }" ;;
        *) st_log "  $line" ;;
    esac
done <<<"$out"
[ $rc = 0 ] || st_fail "python-client-check.py exited $rc"

st_exit
