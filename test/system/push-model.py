#!/usr/bin/env python3
"""Random record workload for the system tests, with its expected outcome.

usage: push-model.py SEED N VM... > ops.txt

Prints N operations, one per line, as arguments for chanctl:
    push [--vm VM] KEY JSON      (a put aimed at VM, or at all VMs)
    delete [--vm VM] KEY
mixing new keys, updates of existing ones and deletes, aimed at one VM or at
all.  'expect' mode computes what each VM's datastore must hold:

usage: push-model.py --expect OPS_FILE VM...   prints {"vm": {key: value}}
"""
import json
import random
import shlex
import sys


def generate(seed, n, vms):
    rng = random.Random(seed)
    live = {}                   # (key, vm or None) -> value
    out = []
    for i in range(n):
        target = rng.choice([None] + vms + vms)
        r = rng.random()
        existing = [k for k in live if k[1] == target]
        if r < 0.15 and existing:
            key = rng.choice(existing)[0]
            del live[(key, target)]
            out.append(["delete"] + (["--vm", target] if target else []) + [key])
            continue
        if r < 0.55 and existing:
            key = rng.choice(existing)[0]
        else:
            key = "k%03d" % rng.randrange(400)
        value = rng.choice([
            i, "v%d" % i, {"n": i, "tags": ["a", "b"][: i % 3]},
            [i, i * 2], True, None, {"nested": {"deep": [i, {"x": "y"}]}},
            "unicode \u00e9\u4e2d %d" % i,
        ])
        live[(key, target)] = value
        out.append(["push"] + (["--vm", target] if target else [])
                   + [key, json.dumps(value, separators=(",", ":"))])
    for op in out:
        print(" ".join(shlex.quote(a) for a in op))


def expect(path, vms):
    live = {}
    with open(path) as f:
        for line in f:
            args = shlex.split(line)
            verb, args = args[0], args[1:]
            vm = None
            if args[0] == "--vm":
                vm, args = args[1], args[2:]
            if verb == "push":
                live[(args[0], vm)] = json.loads(args[1])
            else:
                live.pop((args[0], vm), None)
    result = {}
    for vm in vms:
        state = {k: v for (k, t), v in live.items() if t is None}
        state.update({k: v for (k, t), v in live.items() if t == vm})
        result[vm] = state
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    if sys.argv[1] == "--expect":
        expect(sys.argv[2], sys.argv[3:])
    else:
        generate(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:])
