#!/usr/bin/env bash
# Objects in the guest (doc/objects.md): what a VM registers shows on the
# host as Guest_Record rows "obj/<sha256>".
#
# In chst-ovm1: chanctl object-add registers two files with the same
# content and one other; the host sees one record per digest with the
# paths and the size; removing one path changes the record, removing the
# last withdraws it.  Then chand-guest restarts with --watch-dir: a file
# dropped into the directory appears as a record, and goes when the file
# is deleted.  Hostile input is refused with a clear error: a symbolic
# link, a path with "..", a size that is not the file's (raw API), and
# publishing under obj/ (chanctl and raw API).

. "$(dirname "$0")/lib.sh"
st_require_root
here=$(cd "$(dirname "$0")" && pwd)
PY=$(python3 -c 'import sys; print(sys.executable)')
UT=$here/upstream-tool.py
TOPO_HOST_NS=chst-ohv
V1=chst-ovm1

# rows: VM's obj/ Guest_Record rows as {key: value}.
rows() {
    "$PY" "$UT" guest-records "$(topo_db)" "$V1" obj/
}

# record_is DIGEST PYEXPR: the row of obj/DIGEST satisfies PYEXPR over 'v'
# (its value; None if there is no row).
record_is() {
    rows | "$PY" -c 'import json,sys
v = json.load(sys.stdin).get("obj/" + sys.argv[1])
sys.exit(0 if eval(sys.argv[2]) else 1)' "$1" "$2"
}

# raw METHOD PARAMS: one request on the VM's API; prints the error.
raw() {
    ip netns exec "$V1" "$PY" "$UT" call "$1" "$2" 2>&1 >/dev/null
}

# refused DESCRIPTION EXPECTED CMD...: CMD fails, saying EXPECTED.
refused() {
    local what=$1 expected=$2 out
    shift 2
    if out=$("$@" 2>&1); then
        st_fail "$what: accepted"
    elif [[ $out != *"$expected"* ]]; then
        st_fail "$what: error \"$out\" does not say \"$expected\""
    else
        st_log "ok: $what refused: $out"
    fi
}

st_up "$V1:41"
st_chanctl wait --timeout 60 || { st_fail "channel not ready"; exit 1; }

F=$OVSI_BASE/files
mkdir -p "$F/sub" "$F/watched"
printf 'same content\n' >"$F/one"
printf 'same content\n' >"$F/two"
printf 'other content, longer\n' >"$F/three"
SAME=$(sha256sum <"$F/one" | cut -d' ' -f1)
OTHER=$(sha256sum <"$F/three" | cut -d' ' -f1)

# --- chanctl object-add / object-remove ---------------------------------

st_check "object-add of three files" \
    st_guest "$V1" object-add --flag clean --param src=test \
        "$F/one" "$F/two" "$F/sub/../three"
st_check "objects lists them" \
    bash -c "[ \"\$(ip netns exec $V1 $ST_BUILD/utilities/chanctl objects | wc -l)\" = 3 ]"
st_check "objects DIGEST lists the two with the same content" \
    bash -c "[ \"\$(ip netns exec $V1 $ST_BUILD/utilities/chanctl objects $SAME | wc -l)\" = 2 ]"
st_check "the host has obj/SAME with both paths and the size" \
    st_wait 30 record_is "$SAME" \
    "v == {'size': 13, 'paths': ['$F/one', '$F/two'], 'flags': ['clean'], 'params': {'src': 'test'}}"
st_check "the host has obj/OTHER with its normalized path" \
    st_wait 30 record_is "$OTHER" "v is not None and v['paths'] == ['$F/three'] and v['size'] == 22"

st_check "object-remove of one path" st_guest "$V1" object-remove "$F/one"
st_check "the record of SAME changes" \
    st_wait 30 record_is "$SAME" "v is not None and v['paths'] == ['$F/two']"
st_check "object-remove of the last path" st_guest "$V1" object-remove "$F/two"
st_check "the record of SAME is withdrawn" \
    st_wait 30 record_is "$SAME" "v is None"
st_check "the record of OTHER stays" record_is "$OTHER" "v is not None"
refused "object-remove of a path not registered" "no object is registered" \
    st_guest "$V1" object-remove "$F/one"

# --- hostile input ------------------------------------------------------

ln -s "$F/three" "$F/link"
refused "object-add of a symbolic link" "symbolic link" \
    st_guest "$V1" object-add "$F/link"
refused "object-add of a directory" "not a regular file" \
    st_guest "$V1" object-add "$F/sub"
refused "raw object-add of a symbolic link" "symbolic link" \
    raw object-add "[{\"path\": \"$F/link\", \"digest\": \"$OTHER\", \"size\": 22}]"
refused "raw object-add of a path with .." "component" \
    raw object-add "[{\"path\": \"$F/sub/../three\", \"digest\": \"$OTHER\", \"size\": 22}]"
refused "raw object-add with a wrong size" "not 23" \
    raw object-add "[{\"path\": \"$F/three\", \"digest\": \"$OTHER\", \"size\": 23}]"
refused "raw object-add with a bad digest" "digest" \
    raw object-add "[{\"path\": \"$F/three\", \"digest\": \"ABC\", \"size\": 22}]"
refused "chanctl publish under obj/" "reserved" \
    st_guest "$V1" publish obj/x '1'
refused "raw publish under obj/" "reserved key" \
    raw publish '["obj/x", 1]'
st_check "the refusals are counted" bash -c \
    "ip netns exec $V1 $ST_BUILD/utilities/chanctl guest-status --json |
     $PY -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)[\"api\"][\"object_errors\"] >= 4 else 1)'"
no_obj_x() {
    ! st_output_has '"obj/x"' rows
}
st_check "no record obj/x on the host" no_obj_x

# --- --watch-dir --------------------------------------------------------

topo_guest_stop "$V1"
TOPO_GUEST_ARGS=(--watch-dir="$F/watched")
topo_guest_start "$V1" 41 || st_fail "chand-guest did not start with --watch-dir"
printf 'dropped in\n' >"$F/watched/new.tmp"
mv "$F/watched/new.tmp" "$F/watched/new"
DROPPED=$(sha256sum <"$F/watched/new" | cut -d' ' -f1)
st_check "a file dropped into the watched directory appears" \
    st_wait 30 record_is "$DROPPED" "v is not None and v['paths'] == ['$F/watched/new']"
dd if=/dev/urandom of="$F/watched/big" bs=1M count=5 status=none
BIG=$(sha256sum <"$F/watched/big" | cut -d' ' -f1)
st_check "a 5 MiB file written in place appears" \
    st_wait 30 record_is "$BIG" "v is not None and v['size'] == 5242880"
rm "$F/watched/new"
st_check "deleting it withdraws its record" \
    st_wait 30 record_is "$DROPPED" "v is None"
st_check "the objects from chanctl stay" record_is "$OTHER" "v is not None"

st_exit
