"""Push logs of the system tests' bulk writers (fault-tool.py,
cluster-tool.py): the operations a writer committed, one per line, in the
format of push-model.py (the arguments of a chanctl command):
    push [--vm VM] KEY JSON
    delete [--vm VM] KEY
and the writers' workload: the Chan DB transactions that make them.
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


def versions(path):
    """(key, vm) -> version of each record the log leaves, in the order
    the records were created (chanctl's rule: a new record gets version 1,
    an update the version plus one)."""
    live = {}
    for verb, vm, key, _ in read_log(path):
        if verb == "push":
            live[(key, vm)] = live.get((key, vm), 0) + 1
        else:
            live.pop((key, vm), None)
    return live


def next_batch(rng, live, targets, prefix, serial, size, accents=False):
    """A bulk writer's next transaction: 'size' operations drawn with
    'rng', each aimed at one of 'targets' (a VM, or None: all VMs).  Mostly
    new records PREFIX<serial>, with updates and deletes of the ones in
    'live' ((key, vm) -> version, brought up to date).  Values are
    numbers, strings, objects and arrays ('accents': also non-ASCII
    strings).  Returns the operations on Record and their log lines."""
    ops, lines, touched = [], [], set()
    while len(ops) < size:
        i = serial + len(ops)
        target = rng.choice(targets)
        r = rng.random()
        mine = [k for k in live if k[1] == target and k not in touched]
        if r < 0.08 and mine:
            key = rng.choice(mine)
            ops.append({"op": "delete", "table": "Record",
                        "where": [["key", "==", key[0]],
                                  vm_cond(target)]})
            lines.append(log_line("delete", target, key[0]))
            del live[key]
            touched.add(key)
            continue
        values = [i, "v%d" % i, {"n": i, "t": [i % 7]}, [i, True, None]]
        if accents:
            values.append("\u00e9t\u00e9 %d" % i)
        value = rng.choice(values)
        if r < 0.25 and mine:
            key = rng.choice(mine)
            live[key] += 1
            ops.append({"op": "update", "table": "Record",
                        "where": [["key", "==", key[0]],
                                  vm_cond(target)],
                        "row": {"value": json.dumps(value),
                                "version": live[key]}})
        else:
            key = ("%s%05d" % (prefix, i), target)
            if key in live:
                continue
            live[key] = 1
            row = {"key": key[0], "value": json.dumps(value),
                   "version": 1}
            if target:
                row["vm"] = target
            ops.append({"op": "insert", "table": "Record", "row": row})
        touched.add(key)
        lines.append(log_line("push", target, key[0], value))
    return ops, lines
