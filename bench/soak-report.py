#!/usr/bin/env python3
"""bench/soak-report.py -- turns the raw data of scripts/bench --soak into
its report.

    soak-report.py --raw DIR --md FILE --json FILE [--summary]

DIR is the raw directory of the soak (scripts/lib/soak.sh): meta.json,
samples.tsv (time, process name, pid, start time in clock ticks, VmRSS kB,
open descriptors, utime + stime ticks), counters.tsv (time, VM, operations
applied in its datastore, newest publication in Guest_Record), events.tsv,
checks.tsv and the load generators' outputs.  Writes FILE.md and FILE.json
(every figure and the raw samples).  --summary also prints the result and
the process table on standard output.

Per process name (a restarted chand-guest is a new pid under the same
name): RSS and descriptors at the start, after the warm-up and at the end;
their slopes per hour, a least-squares fit over the samples taken after the
warm-up (counted from the start of the soak and from the start of each
process), with a line of its own per pid (the slope is common, each pid
has its own intercept: a restart's drop in RSS is not a negative slope);
the average CPU use.  MB are 10^6 bytes.  The targets (no chand daemon
grows more than 1 MB/h; no descriptor leak: no pid ends with more
descriptors than it had after its warm-up, or a slope under 0.5 per hour)
are reported, never asserted.  The exit status is 0 unless the input cannot be read.

Standard library only.
"""

import argparse
import json
import os
import statistics
import sys

RSS_TARGET_MB_H = 1.0
FD_SLOPE_TOLERANCE = 0.5


def load(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def read_tsv(path, n_fields):
    rows = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.rstrip("\n").split("\t", n_fields - 1)
                if len(parts) == n_fields:
                    rows.append(parts)
    except OSError:
        pass
    return rows


def read_text(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


# --- Figures ---------------------------------------------------------------

def pooled_slope(groups):
    """Least-squares slope common to several groups of (x, y) points, each
    group with its own intercept; None without two points in a group."""
    sxy = sxx = 0.0
    n = 0
    for pts in groups:
        if len(pts) < 2:
            continue
        mx = statistics.fmean(x for x, _ in pts)
        my = statistics.fmean(y for _, y in pts)
        sxy += sum((x - mx) * (y - my) for x, y in pts)
        sxx += sum((x - mx) ** 2 for x, _ in pts)
        n += len(pts)
    if not n or sxx == 0:
        return None, n
    return sxy / sxx, n


def process_figures(name, samples, meta, t0):
    """samples: [(t, pid, start_ticks, rss_kb, fds, ticks)] of one name."""
    hz = meta.get("hz", 100)
    btime = meta.get("btime")
    warmup = meta.get("warmup_s", 600)
    # The pids in order of appearance, each with its samples.
    runs = []
    for s in samples:
        if not runs or (runs[-1]["pid"], runs[-1]["start_ticks"]) != (
                s[1], s[2]):
            runs.append({"pid": s[1], "start_ticks": s[2], "samples": []})
        runs[-1]["samples"].append(s)
    for i, r in enumerate(runs):
        # When the process started (wall clock): from its start time in
        # ticks after boot, or else its first sample.
        born = (btime + r["start_ticks"] / hz) if btime else \
            r["samples"][0][0]
        r["born"] = born
        r["fit_from"] = max(t0, born) + warmup
        r["fit"] = [s for s in r["samples"] if s[0] >= r["fit_from"]]
    first, last = samples[0], samples[-1]
    mb = 1024 / 1e6                 # kB (KiB) to MB.
    rss_slope, n_fit = pooled_slope(
        [[((s[0] - t0) / 3600, s[3] * mb) for s in r["fit"]] for r in runs])
    fd_slope, _ = pooled_slope(
        [[((s[0] - t0) / 3600, s[4]) for s in r["fit"]] for r in runs])
    fitted = [s for r in runs for s in r["fit"]]
    after = fitted[0] if fitted else None
    # The descriptors after the warm-up of the pid that ran at the end.
    last_fit = runs[-1]["fit"]
    fd_after_last = last_fit[0][4] if last_fit else None
    ticks = 0
    for i, r in enumerate(runs):
        if i == 0:
            ticks += r["samples"][-1][5] - r["samples"][0][5]
        else:
            ticks += r["samples"][-1][5]    # All of it during the soak.
    elapsed = last[0] - first[0]
    cpu = 100.0 * ticks / hz / elapsed if elapsed > 0 else None

    chand = name.startswith("chand-")
    if rss_slope is None:
        rss_met = None
    else:
        rss_met = rss_slope <= RSS_TARGET_MB_H
    # Each pid's descriptors at its end against after its warm-up (a pid
    # stopped before its warm-up was over tells nothing).
    fitted_runs = [r["fit"] for r in runs if r["fit"]]
    if fd_slope is None or not fitted_runs:
        fd_met = None
    else:
        fd_met = (all(f[-1][4] <= f[0][4] for f in fitted_runs)
                  or abs(fd_slope) < FD_SLOPE_TOLERANCE)
    return {
        "restarts": len(runs) - 1,
        "pids": [{"pid": r["pid"], "started": round(r["born"], 3),
                  "first_sample": r["samples"][0][0],
                  "last_sample": r["samples"][-1][0],
                  "samples": len(r["samples"]),
                  "fit_samples": len(r["fit"])} for r in runs],
        "rss_mb": {
            "start": round(first[3] * mb, 3),
            "after_warmup": round(after[3] * mb, 3) if after else None,
            "end": round(last[3] * mb, 3),
            "max": round(max(s[3] for s in samples) * mb, 3),
            "slope_mb_per_h": (round(rss_slope, 4)
                               if rss_slope is not None else None),
            "fit_samples": n_fit,
        },
        "fds": {
            "start": first[4],
            "after_warmup": after[4] if after else None,
            "after_warmup_last_pid": fd_after_last,
            "end": last[4],
            "max": max(s[4] for s in samples),
            "slope_per_h": (round(fd_slope, 4)
                            if fd_slope is not None else None),
        },
        "cpu_percent": round(cpu, 3) if cpu is not None else None,
        "cpu_seconds": round(ticks / hz, 2),
        "targets": {
            "applies": chand,
            "rss": {"target": "slope <= %g MB/h after the warm-up"
                              % RSS_TARGET_MB_H, "met": rss_met},
            "fds": {"target": "end <= after the warm-up (each pid), or "
                              "|slope| < %g/h"
                              % FD_SLOPE_TOLERANCE, "met": fd_met},
        },
    }


def build(raw):
    meta = load(os.path.join(raw, "meta.json"), {})
    samples = [(float(t), name, int(pid), int(st), int(rss), int(fds),
                int(ticks))
               for t, name, pid, st, rss, fds, ticks in
               read_tsv(os.path.join(raw, "samples.tsv"), 7)]
    counters = [(float(t), vm, int(a), int(v)) for t, vm, a, v in
                read_tsv(os.path.join(raw, "counters.tsv"), 4)]
    events = [{"t": float(t), "kind": k, "vm": vm, "detail": d}
              for t, k, vm, d in read_tsv(os.path.join(raw, "events.tsv"), 4)]
    checks = [{"check": c, "vm": vm, "ok": r == "ok", "detail": d}
              for c, vm, r, d in read_tsv(os.path.join(raw, "checks.tsv"), 4)]
    t0 = samples[0][0] if samples else 0.0
    names = []
    for s in samples:
        if s[1] not in names:
            names.append(s[1])
    procs = {}
    for name in names:
        procs[name] = process_figures(
            name, [(s[0], s[2], s[3], s[4], s[5], s[6])
                   for s in samples if s[1] == name], meta, t0)

    load_ = {}
    for vm in meta.get("vms", []):
        push = load(os.path.join(raw, "push-%s.json" % vm), {})
        pubs = []
        n = 1
        while os.path.exists(os.path.join(raw, "publish-%s-%d.json"
                                          % (vm, n))):
            pubs.append(load(os.path.join(raw, "publish-%s-%d.json"
                                          % (vm, n)), {}) or {})
            n += 1
        c = [x for x in counters if x[1] == vm and x[2] >= 0]
        v = [x for x in counters if x[1] == vm and x[3] >= 0]
        channel = load(os.path.join(raw, "channel-%s.json" % vm), {}) or {}
        guest = load(os.path.join(raw, "guest-%s.json" % vm), {}) or {}
        cc = channel.get("counters", {})
        recs = read_text(os.path.join(raw, "records-%s.txt" % vm)).split("|")
        load_[vm] = {
            "pushed": push.get("sent"),
            "push_rate": push.get("achieved_rate"),
            "push_errors": push.get("errors"),
            "push_first_error": push.get("first_error") or None,
            "ops_applied": (c[-1][2] - c[0][2]) if c else None,
            "records_in_datastore": (int(recs[0]) if recs[0].isdigit()
                                     else None),
            "published": sum(p.get("ok", 0) for p in pubs),
            "publish_errors": sum(p.get("errors", 0) for p in pubs),
            "publish_first_error": next((p.get("first_error") for p in pubs
                                         if p.get("first_error")), None),
            "publisher_runs": len(pubs),
            "guest_record_version": ({"start": v[0][3], "end": v[-1][3]}
                                     if v else None),
            "channel": {k: cc.get(k) for k in (
                "sessions", "frames_sent", "frames_resent",
                "fast_retransmits", "timeouts", "tx_key_generation",
                "rx_key_generation")},
            "guest_auth_failures": guest.get("keys", {}).get(
                "auth_failures"),
            "guest_generations": guest.get("keys", {}).get("generations"),
            "checks": [x for x in checks if x["vm"] == vm],
        }

    problems = [e["detail"] for e in events if e["kind"] == "fail"]
    result = {
        "meta": meta,
        "ok": not problems and meta.get("ended") == "end",
        "problems": problems,
        "duration_s": round(samples[-1][0] - t0, 1) if samples else 0,
        "samples_per_process": (len(samples) // len(names)) if names else 0,
        "processes": procs,
        "load": load_,
        "events": [dict(e, t=round(e["t"] - t0, 1)) for e in events],
        "checks": checks,
        "raw": {
            "samples": {
                "columns": ["t", "pid", "start_ticks", "rss_kb", "fds",
                            "cpu_ticks"],
                "t0": t0,
                "by_process": {name: [[round(s[0] - t0, 3), s[2], s[3],
                                       s[4], s[5], s[6]]
                                      for s in samples if s[1] == name]
                               for name in names},
            },
            "counters": {
                "columns": ["t", "ops_applied", "guest_record_version"],
                "by_vm": {vm: [[round(x[0] - t0, 3), x[2], x[3]]
                               for x in counters if x[1] == vm]
                          for vm in meta.get("vms", [])},
            },
        },
    }
    return result


# --- Markdown --------------------------------------------------------------

def fmt(v, spec="%.2f"):
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return spec % v
    return str(v)


def met(m, applies):
    if m is None:
        return "not measured"
    s = "met" if m else "**not met**"
    return s if applies else "(%s)" % ("met" if m else "not met")


def process_table(r):
    lines = [
        "| process | restarts | RSS start | after warm-up | end | slope "
        "MB/h | fds start | after warm-up | end | fd slope /h | CPU % | "
        "memory target | fd target |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|---|",
    ]
    for name, p in r["processes"].items():
        t = p["targets"]
        lines.append(
            "| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s "
            "| %s |" % (
                name, p["restarts"], fmt(p["rss_mb"]["start"], "%.1f"),
                fmt(p["rss_mb"]["after_warmup"], "%.1f"),
                fmt(p["rss_mb"]["end"], "%.1f"),
                fmt(p["rss_mb"]["slope_mb_per_h"], "%+.3f"),
                p["fds"]["start"], fmt(p["fds"]["after_warmup"]),
                p["fds"]["end"], fmt(p["fds"]["slope_per_h"], "%+.2f"),
                fmt(p["cpu_percent"], "%.2f"),
                met(t["rss"]["met"], t["applies"]),
                met(t["fds"]["met"], t["applies"])))
    return lines


def markdown(r):
    m = r["meta"]
    out = ["# chand soak, %s" % m.get("date", "?"), ""]
    out.append(
        "%g h requested, %.0f s sampled (%d samples per process, one every "
        "%g s; warm-up %g s); %s VMs (%s); load: %g records/s pushed to the "
        "Chan DB (%d records per VM round-robin), %g publications/s per VM "
        "(%d records round-robin), a key rotation every %g s, a chand-guest "
        "restart every %g s.  git %s, %s, %s CPUs (%s), kernel %s, load "
        "average %s at the start, %s at the end." % (
            m.get("hours", 0), r["duration_s"], r["samples_per_process"],
            m.get("interval_s", 0), m.get("warmup_s", 0),
            len(m.get("vms", [])), ", ".join(m.get("vms", [])),
            m.get("push_rate", 0), m.get("push_keys_per_vm", 0),
            m.get("publish_rate_per_vm", 0),
            m.get("publish_keys_per_vm", 0), m.get("rotate_s", 0),
            m.get("restart_s", 0), m.get("git", "?"), m.get("ovs", "?"),
            m.get("cpus", "?"), (m.get("cpu_model") or "?").strip(),
            m.get("kernel", "?"), " ".join(m.get("loadavg_start", [])),
            " ".join(m.get("loadavg_end", []))))
    out.append("")
    if r["ok"]:
        out.append("**Result: the channel worked throughout** (every check "
                   "below passed).")
    elif not r["problems"] and m.get("ended") == "interrupted":
        out.append("**Result: interrupted** after %.0f s (the checks below "
                   "ran once the load stopped)." % r["duration_s"])
    else:
        out.append("**Result: FAILED** (%s)." % (
            m.get("ended") if m.get("ended") not in (None, "end", "failed")
            else "see the problems"))
        for p in r["problems"]:
            out.append("- %s" % p)
    out += ["", "## Processes", ""]
    out.append(
        "RSS in MB (10^6 bytes), from VmRSS; fds: open descriptors; slopes: "
        "least squares over the samples after the warm-up (from the start "
        "and from each restart), one line per pid with a common slope; CPU: "
        "utime + stime over the soak, %% of one CPU.  Targets: no chand "
        "daemon grows more than %g MB/h after the warm-up; no descriptor "
        "leak (no pid ends with more than it had after its warm-up, or "
        "|slope| < %g/h).  Open vSwitch's results are in parentheses: not chand's "
        "targets.  *n/a*, *not measured*: no sample after the warm-up."
        % (RSS_TARGET_MB_H, FD_SLOPE_TOLERANCE))
    out.append("")
    out += process_table(r)
    out += ["", "## Targets", ""]
    for name, p in r["processes"].items():
        if not p["targets"]["applies"]:
            continue
        out.append("- %s: memory %s (%s MB/h), descriptors %s (%s -> %s, "
                   "%s/h)%s" % (
                       name, met(p["targets"]["rss"]["met"], True),
                       fmt(p["rss_mb"]["slope_mb_per_h"], "%+.3f"),
                       met(p["targets"]["fds"]["met"], True),
                       fmt(p["fds"]["after_warmup_last_pid"]),
                       p["fds"]["end"],
                       fmt(p["fds"]["slope_per_h"], "%+.2f"),
                       ", %d restart%s" % (p["restarts"], "s" * (
                           p["restarts"] != 1)) if p["restarts"] else ""))
    out += ["", "## Load", ""]
    out.append("| VM | records pushed | push errors | ops applied in the "
               "guest | soak records in the datastore | publications | "
               "publish errors | Guest_Record version (start -> end) | "
               "sessions | frames resent | timeouts | key generation |")
    out.append("|---|--:|--:|--:|--:|--:|--:|---|--:|--:|--:|--:|")
    for vm, l in r["load"].items():
        gv = l["guest_record_version"]
        ch = l["channel"]
        out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s "
                   "| %s |" % (
                       vm, fmt(l["pushed"]), fmt(l["push_errors"]),
                       fmt(l["ops_applied"]), fmt(l["records_in_datastore"]),
                       l["published"], l["publish_errors"],
                       "%d -> %d" % (gv["start"], gv["end"]) if gv else "n/a",
                       fmt(ch.get("sessions")), fmt(ch.get("frames_resent")),
                       fmt(ch.get("timeouts")),
                       fmt(ch.get("tx_key_generation"))))
    out.append("")
    out.append("Records pushed: updates written to the Chan DB; ops applied: "
               "the growth of the guest datastore's channel.ops_applied "
               "(chand-host sends only the newest version of a record it "
               "has not sent yet, so it can be lower); publications: "
               "acknowledged by chand-guest's API (%s publisher runs, one per "
               "chand-guest)." % "/".join(
                   str(l["publisher_runs"]) for l in r["load"].values()))
    for vm, l in r["load"].items():
        for e in ("push_first_error", "publish_first_error"):
            if l.get(e):
                out.append("- %s %s: %s" % (vm, e.replace("_", " "), l[e]))
    out += ["", "## Checks at the end", ""]
    if not r["checks"]:
        out.append("(none ran)")
    for c in r["checks"]:
        out.append("- %s %s: %s (%s)" % (c["check"], c["vm"],
                                         "ok" if c["ok"] else "**FAILED**",
                                         c["detail"]))
    out += ["", "## Events", ""]
    rot = [e for e in r["events"] if e["kind"] == "rotate"]
    rst = [e for e in r["events"] if e["kind"] == "restart"]
    out.append("%d key rotations, %d chand-guest restarts." % (len(rot),
                                                              len(rst)))
    out.append("")
    for e in r["events"]:
        what = e["kind"] + (" " + e["vm"] if e["vm"] != "-" else "")
        out.append("- %7.1f s  %s: %s" % (max(e["t"], 0.0) + 0.0, what,
                                          e["detail"]))
    out += ["", "The raw samples are in the JSON (`raw`)."]
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", required=True)
    ap.add_argument("--md", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--summary", action="store_true")
    a = ap.parse_args()
    if not os.path.exists(os.path.join(a.raw, "samples.tsv")):
        sys.exit("soak-report: no samples.tsv in %s" % a.raw)
    r = build(a.raw)
    with open(a.json, "w") as f:
        json.dump(r, f, indent=1)
    md = markdown(r)
    with open(a.md, "w") as f:
        f.write(md)
    if a.summary:
        print("\n".join(process_table(r)))
        print()
        print(next(line for line in md.splitlines()
                   if line.startswith("**Result")))
        for p in r["problems"]:
            print("- %s" % p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
