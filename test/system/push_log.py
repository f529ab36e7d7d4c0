"""Push logs of the system tests' bulk writers (fault-tool.py,
cluster-tool.py): the operations a writer committed, one per line, in the
format of push-model.py (the arguments of a chanctl command):
    push [--vm VM] KEY JSON
    delete [--vm VM] KEY
and the Chan DB condition that picks a line's record.
"""
import json
import shlex


def read_log(path):
    """Yields (verb, vm or None, key, value or None) for each line; nothing
    if there is no log yet."""
    try:
        f = open(path)
    except FileNotFoundError:
        return
    with f:
        for line in f:
            args = shlex.split(line)
            if not args:
                continue
            verb, args = args[0], args[1:]
            vm = None
            if args[0] == "--vm":
                vm, args = args[1], args[2:]
            yield (verb, vm, args[0],
                   json.loads(args[1]) if verb == "push" else None)


def log_line(verb, vm, key, value=None):
    """The line of one operation (vm None: aimed at all VMs)."""
    op = [verb] + (["--vm", vm] if vm else []) + [key]
    if verb == "push":
        op.append(json.dumps(value, separators=(",", ":"),
                             ensure_ascii=False))
    return " ".join(shlex.quote(a) for a in op) + "\n"


def vm_cond(vm):
    """The "where" clause on Record.vm for records aimed at 'vm' (None: the
    records for all VMs, whose vm is empty)."""
    return ["vm", "==", vm if vm else ["set", []]]
