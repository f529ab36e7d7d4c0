#!/usr/bin/env python3
"""bench/report.py -- turns the raw data of scripts/bench into the report.

    report.py --raw DIR --md FILE --json FILE [--check]

DIR is the raw directory scripts/bench filled (one JSON file per helper
run, logs of send and receive times).  Writes FILE.json with every figure
and FILE.md, the human report, with the same figures.  Each figure is the
median over the runs, with min and max.  With --check (quick mode) it exits
1 if the harness looks broken: nothing counted, nothing applied, a join
with no samples.  It never judges timings.

Standard library only.
"""

import argparse
import glob
import json
import os
import re
import statistics
import sys


# --- Helpers -------------------------------------------------------------

def load(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def read_text(path, default=""):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def mmm(values):
    """Median, min, max of the non-None values, or None."""
    v = [x for x in values if x is not None]
    if not v:
        return None
    return {"median": statistics.median(v), "min": min(v), "max": max(v),
            "runs": len(v)}


def pct(sorted_v, p):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_v:
        return None
    k = max(1, min(len(sorted_v), int(-(-p * len(sorted_v) // 100))))
    return sorted_v[k - 1]


def dist_ms(values_ns):
    v = sorted(values_ns)
    if not v:
        return {"n": 0}
    return {"n": len(v), "p50_ms": pct(v, 50) / 1e6,
            "p90_ms": pct(v, 90) / 1e6, "p99_ms": pct(v, 99) / 1e6,
            "p999_ms": pct(v, 99.9) / 1e6, "min_ms": v[0] / 1e6,
            "max_ms": v[-1] / 1e6}


def fmt(x, digits=None):
    if x is None:
        return "n/a"
    if isinstance(x, float) and x.is_integer() and digits is None:
        x = int(x)
    if isinstance(x, int) or (digits is None and abs(x) >= 100):
        return "{:,.0f}".format(x)
    if digits is None:
        digits = 2 if abs(x) < 10 else 1
    return "{:,.{}f}".format(x, digits)


def fm(stat, key=None, digits=None, scale=1.0):
    """'median (min–max)' for an mmm() result."""
    if stat is None:
        return "n/a"
    if key:
        stat = stat.get(key)
        if stat is None:
            return "n/a"
    if stat["runs"] == 1:
        return fmt(stat["median"] * scale, digits)
    return "{} ({}–{})".format(fmt(stat["median"] * scale, digits),
                               fmt(stat["min"] * scale, digits),
                               fmt(stat["max"] * scale, digits))


def run_files(pattern):
    """Files matching pattern, with the run number parsed, sorted."""
    out = []
    for f in glob.glob(pattern):
        m = re.search(r"-(\d+)\.[a-z.]+$", os.path.basename(f))
        out.append((int(m.group(1)) if m else 0, f))
    return sorted(out)


def read_log(path, ncols):
    """Rows of a whitespace log: (key, version) -> tuple of ints."""
    rows = {}
    try:
        with open(path) as f:
            for line in f:
                p = line.split()
                if len(p) != ncols:
                    continue
                rows[(p[0], int(p[1]))] = tuple(int(x) for x in p[2:])
    except OSError:
        pass
    return rows


PROBLEMS = []


def problem(msg):
    PROBLEMS.append(msg)


# --- Phases --------------------------------------------------------------

def ceilings(raw):
    out = {}
    for path in ("a", "b"):
        d = os.path.join(raw, "ceil-" + path)
        if not os.path.isdir(d):
            continue
        by_size = {}
        for f in glob.glob(os.path.join(d, "*.count.json")):
            run, size, rate = os.path.basename(f).split(".")[0].split("-")
            cnt = load(f)
            snd = load(f.replace(".count.json", ".send.json"))
            if not cnt or not snd:
                problem("ceiling ({}) point {} has no data".format(path, f))
                continue
            loss = 1 - cnt["received"] / snd["sent"] if snd["sent"] else None
            afp = read_text(f.replace(".count.json", ".afp")).split()
            afp_lost = (int(afp[1]) - int(afp[0])
                        if len(afp) == 2 and all(x.isdigit() for x in afp)
                        else None)
            lost = snd["sent"] - cnt["received"]
            by_size.setdefault(int(size), {}).setdefault(int(run), []).append({
                "offered_rate": int(rate), "offered_pps": snd["offered_pps"],
                "sent": snd["sent"], "received": cnt["received"],
                "delivered_pps": cnt["rate_pps"], "loss": loss,
                "socket_drops": cnt.get("socket_drops", 0),
                "lost_at_guest_afpacket": (min(1.0, afp_lost / lost)
                                           if afp_lost is not None and lost > 0
                                           else None)})
        res = {}
        for size, runs in sorted(by_size.items()):
            ceil_runs, lossfree_runs = [], []
            sweep = {}
            for run, points in runs.items():
                good = [p for p in points if p["received"] > 1]
                if not good:
                    problem("ceiling ({}) {} B run {}: nothing received"
                            .format(path, size, run))
                    continue
                ceil_runs.append(max(p["delivered_pps"] for p in good))
                lf = [p["offered_pps"] for p in good if p["loss"] < 0.01]
                lossfree_runs.append(max(lf) if lf else 0.0)
                for p in points:
                    sweep.setdefault(p["offered_rate"], []).append(p)
            table = []
            for rate in sorted(sweep, key=lambda r: (r == 0, r)):
                ps = sweep[rate]
                table.append({
                    "offered_rate": rate or "unpaced",
                    "offered_pps": mmm([p["offered_pps"] for p in ps]),
                    "delivered_pps": mmm([p["delivered_pps"] for p in ps]),
                    "loss": mmm([p["loss"] for p in ps]),
                    "lost_at_guest_afpacket": mmm(
                        [p["lost_at_guest_afpacket"] for p in ps])})
            res[str(size)] = {"ceiling_pps": mmm(ceil_runs),
                              "lossfree_pps": mmm(lossfree_runs),
                              "sweep": table}
        if not res:
            problem("ceiling ({}): no measurement".format(path))
        out[path] = res
    if os.path.exists(os.path.join(raw, "ceil-a", "from-transfer")):
        out["a_from_transfer"] = True
    txt = read_text(os.path.join(raw, "ceil-a", "guest-afpacket.txt"))
    m = re.search(r"rb(\d+).*?d(\d+)\)", txt)
    if m:
        out["guest_afpacket"] = {"rcvbuf": int(m.group(1)),
                                 "drops": int(m.group(2))}
    return out


def cost_of(costf, n):
    c = load(costf)
    if not c:
        return None
    hz = c["hz"]
    ours = 0
    res = {}
    for d in c["daemons"]:
        name = re.sub(r"\(chb-vm\d+\)", "(vm)", d["name"])
        if name in res:     # Several VMs: add up (only vm1 is busy here).
            res[name]["cpu_s"] += d["cpu_ticks"] / hz
            res[name]["peak_rss_mb"] = max(res[name]["peak_rss_mb"],
                                           d["vmhwm_kb"] / 1024)
        else:
            res[name] = {"cpu_s": d["cpu_ticks"] / hz,
                         "peak_rss_mb": d["vmhwm_kb"] / 1024}
        ours += d["cpu_ticks"]
    for r in res.values():
        r["cpu_s_per_million"] = r["cpu_s"] / n * 1e6 if n else None
    busy = c["machine_busy_ticks"]
    total = busy + c["machine_idle_ticks"]
    return {"daemons": res,
            "machine_busy_share": busy / total if total else None,
            "others_busy_share": (busy - ours) / total if total else None}


def tput_one(prefix):
    push = load(prefix + ".push.json")
    poll = load(prefix + ".poll.json")
    if not push or not poll or not poll.get("t_done"):
        problem("throughput run {}: records not applied".format(prefix))
        return None
    n = push["records"]
    sq = read_text(prefix + ".sqlite").strip()
    if sq != str(n):
        problem("throughput run {}: the datastore holds {} of {} records"
                .format(prefix, sq or "?", n))
    ch = load(prefix + ".channel.json", {}) or {}
    ch0 = load(prefix + ".channel0.json", {}) or {}
    counters = dict(ch.get("counters", {}))
    for k, v in ch0.get("counters", {}).items():
        if k in counters and isinstance(v, int) and k != "in_flight":
            counters[k] -= v
    gs = load(prefix + ".guest.json", {}) or {}
    t_commit, t_first, t_done = (push["t_commit"], poll["t_first"],
                                 poll["t_done"])
    r = {
        "records": n,
        "messages": poll.get("frames"),
        "datastore_count": int(sq) if sq.isdigit() else None,
        "ingest_s": (push["t_commit"] - push["t_send"]) / 1e9,
        "host_first_s": (t_first - t_commit) / 1e9,
        "apply_s": (t_done - t_first) / 1e9,
        "rate_from_commit": n / ((t_done - t_commit) / 1e9),
        "rate_from_send": n / ((t_done - push["t_send"]) / 1e9),
        "rate_steady": n / ((t_done - t_first) / 1e9) if t_done > t_first
        else None,
        "channel_row_lag_s": ((push["t_channel_applied"] - t_done) / 1e9
                              if push.get("t_channel_applied") else None),
        "frames_sent": counters.get("frames_sent"),
        "frames_resent": counters.get("frames_resent"),
        "timeouts": counters.get("timeouts"),
        "guest_commits": gs.get("counters", {}).get("commits"),
        "cost": cost_of(prefix + ".cost.json", n),
    }
    if r["messages"]:
        r["msgs_from_commit"] = r["messages"] / ((t_done - t_commit) / 1e9)
        if t_done > t_first:
            r["msgs_steady"] = r["messages"] / ((t_done - t_first) / 1e9)
    return r


def agg_runs(runs, keys):
    return {k: mmm([r.get(k) for r in runs]) for k in keys}


def agg_cost(runs):
    names = {}
    for r in runs:
        for name, c in (r["cost"] or {}).get("daemons", {}).items():
            names.setdefault(name, []).append(c)
    out = {}
    for name, cs in names.items():
        out[name] = {"cpu_s_per_million": mmm([c["cpu_s_per_million"]
                                               for c in cs]),
                     "peak_rss_mb": mmm([c["peak_rss_mb"] for c in cs]),
                     "cpu_s": mmm([c["cpu_s"] for c in cs])}
    share = mmm([(r["cost"] or {}).get("others_busy_share") for r in runs])
    return {"daemons": out, "others_busy_share": share}


TPUT_KEYS = ["records", "messages", "ingest_s", "host_first_s", "apply_s",
             "rate_from_commit", "rate_steady", "msgs_from_commit",
             "msgs_steady", "channel_row_lag_s", "frames_resent",
             "timeouts", "guest_commits", "frames_sent", "rate_from_send"]


def throughput(raw):
    d = os.path.join(raw, "tput")
    out = {}
    for kind in ("msgs", "msgsets", "recs", "sets"):
        runs = [tput_one(f[:-len(".push.json")]) for _, f in
                run_files(os.path.join(d, kind + "-*.push.json"))]
        runs = [r for r in runs if r]
        if runs:
            out[kind] = agg_runs(runs, TPUT_KEYS)
            out[kind]["cost"] = agg_cost(runs)
            out[kind]["per_run"] = runs
    return out


def lat_one(base, what):
    """One latency run (lat_run's files BASE.*): the distributions."""
    sent = read_log(base + ".push.log", 3)
    seen = read_log(base + ".watch.log", 3)
    cap = read_log(base + ".cap.log", 4)
    total, to_frame, frame_ack, ack_watch = [], [], [], []
    for key, (ts,) in sent.items():
        if key not in seen:
            continue
        tw = seen[key][0]
        total.append(tw - ts)
        if key in cap:
            tf, ta = cap[key]
            to_frame.append(tf - ts)
            frame_ack.append(ta - tf)
            ack_watch.append(tw - ta)
    if not total:
        problem("{}: no sample matched".format(what))
    capj = load(base + ".cap.json", {}) or {}
    pr = load(base + ".push.json", {}) or {}
    return {
        "sent": len(sent), "applied_seen": len(total),
        "achieved_rate": pr.get("achieved_rate"),
        "push_to_applied": dist_ms(total),
        "push_to_frame": dist_ms(to_frame),
        "frame_to_ack_per_record": dist_ms(frame_ack),
        "ack_to_notified": dist_ms(ack_watch),
        "frame_to_ack": capj.get("frame_to_ack", {"n": 0}),
        "data_frames": capj.get("data_frames"),
        "resent_frames": capj.get("resent_frames"),
        "host_hist": host_hist_delta(base)}


HOST_STAGES = ("seen_to_sent", "sent_to_acked", "acked_to_applied",
               "seen_to_acked", "seen_to_applied")


def hist_pct(buckets, p):
    """Percentile 'p' of [[upper bound us, count], ...] as chand-host
    computes it (the upper bound of the bucket holding the rank)."""
    n = sum(c for _, c in buckets)
    if not n:
        return None
    rank = max(1, int(-(-p / 100.0 * n // 1)))
    seen = 0
    for bound, c in sorted(buckets):
        seen += c
        if seen >= rank:
            return bound
    return buckets[-1][0]


def host_hist_delta(base):
    """chand-host's latency histograms of channel-show after the run minus
    before: {stage: {"n", "p50_ms", "p99_ms"}}, or {} if not read."""
    before = (load(base + ".channel0.json", {}) or {}).get("latency")
    after = (load(base + ".channel.json", {}) or {}).get("latency")
    if not after:
        return {}
    out = {}
    for stage in HOST_STAGES:
        b = dict((k, c) for k, c in
                 ((before or {}).get(stage) or {}).get("buckets", []))
        d = []
        for k, c in (after.get(stage) or {}).get("buckets", []):
            if c - b.get(k, 0) > 0:
                d.append([k, c - b.get(k, 0)])
        n = sum(c for _, c in d)
        p50, p99 = hist_pct(d, 50), hist_pct(d, 99)
        out[stage] = {"n": n,
                      "p50_ms": p50 / 1e3 if p50 is not None else None,
                      "p99_ms": p99 / 1e3 if p99 is not None else None}
    return out


LAT_PARTS = ("push_to_applied", "push_to_frame", "frame_to_ack",
             "frame_to_ack_per_record", "ack_to_notified")


def lat_agg(runs):
    """Median, min, max over latency runs of each part's percentiles."""
    r = {"runs": runs}
    for part in LAT_PARTS:
        r[part] = {p: mmm([x[part].get(p) for x in runs])
                   for p in ("p50_ms", "p99_ms", "p999_ms", "max_ms")}
    r["samples"] = mmm([x["applied_seen"] for x in runs])
    r["sent"] = mmm([x["sent"] for x in runs])
    r["records_per_frame"] = mmm([
        x["sent"] / x["data_frames"] for x in runs if x["data_frames"]])
    r["resent_frames"] = mmm([x["resent_frames"] for x in runs])
    r["host_hist"] = {
        stage: {k: mmm([(x["host_hist"].get(stage) or {}).get(k)
                        for x in runs])
                for k in ("n", "p50_ms", "p99_ms")}
        for stage in HOST_STAGES
        if any(x["host_hist"].get(stage) for x in runs)}
    return r


def latency(raw):
    out = {}
    for f in glob.glob(os.path.join(raw, "lat", "*.push.json")):
        base = f[:-len(".push.json")]
        rate, run = os.path.basename(base).split("-")
        out.setdefault(int(rate), []).append(
            lat_one(base, "latency {}/s run {}".format(rate, run)))
    return {str(rate): lat_agg(runs) for rate, runs in sorted(out.items())}


def control_plane(raw):
    runs = []
    for _, f in run_files(os.path.join(raw, "cp", "*.push.log")):
        base = f[:-len(".push.log")]
        sent = read_log(f, 4)
        seen = read_log(base + ".watch.log", 3)
        lat = [seen[k][0] - v[0] for k, v in sent.items() if k in seen]
        client = [v[1] - v[0] for v in sent.values()]
        if not lat:
            problem("control plane run {}: no write seen applied".format(f))
        runs.append({"write_to_applied": dist_ms(lat),
                     "ovsdb_client": dist_ms(client)})
    if not runs:
        return {}
    return {
        "samples": mmm([r["write_to_applied"]["n"] for r in runs]),
        "write_to_applied": {p: mmm([r["write_to_applied"].get(p)
                                     for r in runs])
                             for p in ("p50_ms", "p99_ms", "max_ms")},
        "ovsdb_client_exit": {p: mmm([r["ovsdb_client"].get(p)
                                      for r in runs])
                              for p in ("p50_ms", "p99_ms")},
        "runs": runs}


def fanout(raw):
    res = {}
    for f in glob.glob(os.path.join(raw, "fanout", "*.push.log")):
        level = int(os.path.basename(f).split(".")[0])
        sent = read_log(f, 3)
        watches = glob.glob(os.path.join(raw, "fanout",
                                         "{}-*.watch.log".format(level)))
        seen = [read_log(w, 3) for w in watches]
        all_applied, first = [], []
        incomplete = 0
        for key, (ts,) in sent.items():
            ts_vm = [s[key][0] for s in seen if key in s]
            if len(ts_vm) < len(seen) or not ts_vm:
                incomplete += 1
                continue
            all_applied.append(max(ts_vm) - ts)
            first.append(min(ts_vm) - ts)
        if incomplete or not all_applied:
            problem("fan-out to {} VMs: {} of {} records not seen by every "
                    "VM".format(level, incomplete, len(sent)))
        res[str(level)] = {
            "vms": len(seen), "records": len(sent),
            "all_applied_ms": mmm([x / 1e6 for x in all_applied]),
            "first_applied_ms": mmm([x / 1e6 for x in first]),
            "all_applied": dist_ms(all_applied)}
    return dict(sorted(res.items(), key=lambda kv: int(kv[0])))


def large(raw):
    res = {}
    for f in glob.glob(os.path.join(raw, "large", "*.push.json")):
        base = f[:-len(".push.json")]
        size, run = os.path.basename(base).split("-")
        push = load(f, {}) or {}
        poll = load(base + ".poll.json", {}) or {}
        cap = load(base + ".cap.json", {}) or {}
        ch = load(base + ".channel.json", {}) or {}
        toolong = read_text(base + ".toolong", "0").strip()
        counters = ch.get("counters", {})
        r = {"bytes": push.get("bytes"),
             "ingest_s": ((push["t_commit"] - push["t_send"]) / 1e9
                          if push.get("t_commit") else None),
             "delivered": bool(poll.get("t_done")),
             "frames_sent": counters.get("frames_sent"),
             "frames_acked": counters.get("frames_acked"),
             "frames_resent": counters.get("frames_resent"),
             "in_flight": counters.get("in_flight"),
             "timeouts": counters.get("timeouts"),
             "capture_data_frames": cap.get("data_frames"),
             "capture_resent_frames": cap.get("resent_frames"),
             "msg_too_long_logs": int(toolong) if toolong.isdigit() else 0,
             "cost": cost_of(base + ".cost.json", 1)}
        if r["delivered"]:
            t_commit, t_done = push["t_commit"], poll["t_done"]
            r["seconds"] = (t_done - t_commit) / 1e9
            r["mb_per_s"] = push["bytes"] / 1e6 / r["seconds"]
            r["mb_per_s_from_send"] = (push["bytes"] / 1e6
                                       / ((t_done - push["t_send"]) / 1e9))
            if cap.get("t_first_data"):
                r["host_prep_s"] = (cap["t_first_data"] - t_commit) / 1e9
                r["transfer_s"] = (t_done - cap["t_first_data"]) / 1e9
        errors = ch.get("errors") or {}
        if r["delivered"]:
            pass
        elif r["msg_too_long_logs"]:
            r["why"] = ("chand-host's Chan DB connection refused the update "
                        "carrying the row (\"received message too long\", "
                        "the lib/jsonrpc message cap) and reconnected, "
                        "again and again; nothing reached the guest")
        elif errors:
            r["why"] = "chand-host refused the record: {}".format(
                "; ".join("{}: {}".format(k, v) for k, v in errors.items()))
        elif r["in_flight"] and not r["frames_acked"]:
            r["why"] = ("nothing acknowledged: {} frames in flight (the "
                        "window), {} retransmission timeouts — the message "
                        "needs more frames than the window and the guest "
                        "did not acknowledge a partial message".format(
                            r["in_flight"], r["timeouts"]))
        else:
            r["why"] = ("not applied within the timeout: chand-host had "
                        "sent {} frames, {} acknowledged, {} resent, {} "
                        "retransmission timeouts".format(
                            fmt(r["frames_sent"]), fmt(r["frames_acked"]),
                            fmt(r["frames_resent"]), fmt(r["timeouts"])))
        res.setdefault(size, []).append(r)
    out = {}
    for size, runs in res.items():
        out[size] = {
            "bytes": runs[0]["bytes"],
            "delivered": all(r["delivered"] for r in runs),
            "mb_per_s": mmm([r.get("mb_per_s") for r in runs]),
            "mb_per_s_from_send": mmm([r.get("mb_per_s_from_send")
                                       for r in runs]),
            "seconds": mmm([r.get("seconds") for r in runs]),
            "ingest_s": mmm([r.get("ingest_s") for r in runs]),
            "host_prep_s": mmm([r.get("host_prep_s") for r in runs]),
            "transfer_s": mmm([r.get("transfer_s") for r in runs]),
            "frames": mmm([r.get("capture_data_frames") for r in runs]),
            "frames_resent": mmm([r.get("frames_resent") for r in runs]),
            "timeouts": mmm([r.get("timeouts") for r in runs]),
            "why": next((r["why"] for r in runs if r.get("why")), None),
            "runs": runs}
        if not out[size]["delivered"] and size in ("256K", "300K"):
            problem("large value {} not delivered".format(size))
    return dict(sorted(out.items(), key=lambda kv: kv[1]["bytes"] or 0))


MTUS = ("1500", "9000")


def mtu(raw):
    """The mtu phase: throughput's runs and the 64 MiB value per MTU."""
    out = {}
    for m in MTUS:
        base = os.path.join(raw, "mtu", m)
        if not os.path.isdir(base):
            continue
        t, lv = throughput(base), large(base)
        if t or lv:
            out[m] = {"throughput": t, "large": lv.get("64M")}
    return out


def mtu_md(r, w):
    mt = r.get("mtu") or {}
    if not mt:
        return
    w("## 7b. Jumbo frames: MTU 1,500 and 9,000")
    w("")
    w("Section 2's two throughput runs and section 7's 64 MiB value again, "
      "at each MTU, on the same topology: chb-vm1's vNIC veth pair and its "
      "`chand0` set to the MTU (`ip link set ... mtu`, Interface "
      "`mtu_request`), which chand-host (the vNIC's Interface `mtu`) and "
      "chand-guest (its interfaces) detect and advertise; the channel "
      "sends with the smaller of the two (doc/PROTOCOL.md §4.1).  At 9,000 "
      "a frame carries up to 8,920 payload bytes instead of 1,420, and "
      "chand-host batches records up to 8,880 bytes per message instead "
      "of 1,380.")
    w("")

    def get(m, *path):
        return dig(mt, m, *path)

    def row(label, *path, digits=None, bold=False):
        a, b = get("1500", *path), get("9000", *path)
        ratio = ("{:.2f}×".format(b["median"] / a["median"])
                 if a and b and a.get("median") else "n/a")
        fa, fb = fm(a, digits=digits), fm(b, digits=digits)
        if bold:
            fa, fb = "**{}**".format(fa), "**{}**".format(fb)
        w("| {} | {} | {} | {} |".format(label, fa, fb, ratio))

    w("| figure | MTU 1,500 | MTU 9,000 | 9,000 / 1,500 |")
    w("|---|---|---|---|")
    row("acknowledged messages/s (--max-batch=1, commit → all applied)",
        "throughput", "msgs", "msgs_from_commit", bold=True)
    row("records/s (batching, commit → all applied)",
        "throughput", "recs", "rate_from_commit", bold=True)
    row("records/s, steady (batching, first → last applied)",
        "throughput", "recs", "rate_steady")
    row("messages applied (batching)", "throughput", "recs", "messages")
    row("DATA frames sent (batching)", "throughput", "recs", "frames_sent")
    row("64 MiB value: MB/s (commit → applied)", "large", "mb_per_s",
        bold=True)
    row("64 MiB value: seconds", "large", "seconds")
    row("64 MiB value: first frame → committed in the guest, s", "large",
        "transfer_s")
    row("64 MiB value: DATA frames (capture on the vNIC)", "large",
        "frames")
    row("64 MiB value: frames resent", "large", "frames_resent")
    row("64 MiB value: retransmission timeouts", "large", "timeouts")
    w("")
    for m in MTUS:
        lv = get(m, "large")
        if lv and not lv["delivered"]:
            w("- **64 MiB at MTU {}** not delivered: {}.".format(m,
                                                                lv["why"]))
    w("")


def natural(name):
    return [int(x) if x.isdigit() else x for x in re.split(r"(\d+)", name)]


def knobs(raw):
    out = {}
    groups = {}
    for f in glob.glob(os.path.join(raw, "knobs", "*.push.json")):
        name = os.path.basename(f)[:-len(".push.json")]
        if name.startswith("lat-"):
            continue
        m = re.match(r"^((?:msgs-)?window-\d+)-(\d+)$", name)
        r = tput_one(f[:-len(".push.json")])
        if r:
            r.pop("cost", None)
            groups.setdefault(m.group(1) if m else name, []).append(r)
    for name in sorted(groups, key=natural):
        runs = groups[name]
        out[name] = agg_runs(runs, TPUT_KEYS)
    for f in glob.glob(os.path.join(raw, "knobs", "lat-*.push.log")):
        base = f[:-len(".push.log")]
        sent = read_log(f, 3)
        seen = read_log(base + ".watch.log", 3)
        cap = read_log(base + ".cap.log", 4)
        total = [seen[k][0] - v[0] for k, v in sent.items() if k in seen]
        to_frame = [cap[k][0] - v[0] for k, v in sent.items() if k in cap]
        out[os.path.basename(base)] = {
            "push_to_applied": dist_ms(total),
            "push_to_frame": dist_ms(to_frame)}
    return out


def profile(raw):
    d = os.path.join(raw, "profile")
    if not os.path.isdir(d):
        return {}
    names = {}
    for line in read_text(os.path.join(d, "daemons")).splitlines():
        p = line.split()
        if len(p) == 2:
            names[p[1]] = re.sub(r"\(chb-(vm\d+)\)", r"(\1)", p[0])

    def who(field):
        m = re.match(r"(\d+):", field)
        return names.get(m.group(1), field) if m else field

    def rows(path, limit):
        res = []
        for line in read_text(os.path.join(d, path)).splitlines():
            m = re.match(r"\s+([\d.]+)%\s+(?:([\d.]+)%\s+)?(\S+)\s+(.*)$",
                         line)
            if m and not line.lstrip().startswith("#"):
                res.append({"pct": float(m.group(1)),
                            "comm": who(m.group(3)),
                            "what": m.group(4).strip()})
        return res[:limit]
    prof = {"big_children": rows("big-children.txt", 80),
            "chand_by_dso": rows("chand-by-dso.txt", 20),
            "ovs_by_dso": rows("ovs-by-dso.txt", 20),
            "self": rows("chand-self.txt", 60),
            "children": rows("chand-children.txt", 80)}
    tput = tput_one(os.path.join(d, "recs"))
    if tput:
        prof["records_per_s"] = tput["rate_from_commit"]
    return prof


INJECT_PATHS = ("openflow", "port")


def ratio(a, b):
    return a / b if a is not None and b else None


def inject(raw):
    """Section 8: the same workloads through OpenFlow and the chand port."""
    d = os.path.join(raw, "inject")
    if not os.path.isdir(d):
        return {}
    why = read_text(os.path.join(d, "unavailable.txt")).strip()
    if why:
        problem("injection path not measured: no patched Open vSwitch ({})"
                .format(why))
        return {"measured": False, "unavailable": why}
    setup = load(os.path.join(d, "setup.json"), {}) or {}
    per_path = {}
    for p in INJECT_PATHS:
        runs = {}
        for kind in ("msgs", "recs", "lat"):
            for run, f in run_files(os.path.join(
                    d, "{}-{}-*.push.json".format(p, kind))):
                base = f[:-len(".push.json")]
                if kind == "lat":
                    x = lat_one(base, "inject {} latency run {}".format(p, run))
                else:
                    x = tput_one(base)
                if x is None:
                    continue
                chk = load(base + ".check.json")
                if not chk:
                    problem("inject {} {} run {}: no path check".format(
                        p, kind, run))
                elif not chk.get("ok"):
                    problem("inject {} {} run {}: {}".format(
                        p, kind, run, "; ".join(chk.get("errors", []))))
                x["path_check"] = chk
                afp = read_text(base + ".afp").split()
                x["guest_afpacket_drops"] = (
                    int(afp[1]) - int(afp[0]) if len(afp) == 2 and
                    all(v.isdigit() for v in afp) else None)
                runs.setdefault(run, {})[kind] = x
        if not runs:
            problem("inject: no run on the {} path".format(p))
        per_path[p] = runs

    def fig(run):
        """The figures of one run of one path (any of them may be None)."""
        m, rc, lt = run.get("msgs"), run.get("recs"), run.get("lat")
        f = {}
        if m:
            f["msgs_per_s"] = m.get("msgs_from_commit")
            f["msgs_steady"] = m.get("msgs_steady")
            f["msgs_frames_resent"] = m.get("frames_resent")
            f["msgs_timeouts"] = m.get("timeouts")
            dm = (m.get("cost") or {}).get("daemons", {})
            for name in ("chand-host", "ovs-vswitchd(host)",
                         "ovsdb-server(host)", "chand-guest(vm)",
                         "ovs-vswitchd(vm)"):
                if name in dm:
                    f["cpu_us_per_msg " + name] = \
                        dm[name]["cpu_s_per_million"]
            c = m.get("path_check") or {}
            f["msgs_packet_outs"] = c.get("packet_outs")
            f["msgs_packet_ins"] = c.get("packet_ins")
            f["msgs_port_tx_frames"] = c.get("port_tx_frames")
            f["msgs_port_rx_frames"] = c.get("port_rx_frames")
            if c.get("port_tx_batches"):
                f["msgs_port_frames_per_tx_batch"] = \
                    c["port_tx_frames"] / c["port_tx_batches"]
        for kind, x in (("msgs", m), ("recs", rc), ("lat", lt)):
            if x:
                f[kind + "_guest_afpacket_drops"] = \
                    x.get("guest_afpacket_drops")
        if rc:
            f["records_per_s"] = rc.get("rate_from_commit")
            f["records_steady"] = rc.get("rate_steady")
            f["recs_frames_resent"] = rc.get("frames_resent")
            f["recs_timeouts"] = rc.get("timeouts")
        if lt:
            for q in ("p50_ms", "p99_ms", "p999_ms"):
                f["push_to_applied_" + q] = lt["push_to_applied"].get(q)
            for part in ("push_to_frame", "frame_to_ack_per_record"):
                for q in ("p50_ms", "p99_ms"):
                    f[part + "_" + q] = lt[part].get(q)
            f["lat_samples"] = lt["applied_seen"]
            f["lat_sent"] = lt["sent"]
            f["lat_resent_frames"] = lt.get("resent_frames")
        return f

    figs = {p: {run: fig(x) for run, x in per_path[p].items()}
            for p in INJECT_PATHS}
    keys = []
    for p in INJECT_PATHS:
        for f in figs[p].values():
            keys += [k for k in f if k not in keys]
    out = {"measured": True, "setup": setup, "figures": {}}
    for k in keys:
        a = mmm([f.get(k) for f in figs["openflow"].values()])
        b = mmm([f.get(k) for f in figs["port"].values()])
        # Runs of both paths with the same number were taken back to back.
        paired = [ratio(figs["port"][run].get(k),
                        figs["openflow"][run].get(k))
                  for run in figs["port"] if run in figs["openflow"]]
        out["figures"][k] = {
            "openflow": a, "port": b,
            "ratio_port_to_openflow": ratio(med(b), med(a)),
            "ratio_per_run": mmm(paired)}
    out["per_run"] = {p: {str(run): f for run, f in figs[p].items()}
                      for p in INJECT_PATHS}
    out["path_checks"] = {
        p: {"runs": sum(1 for run in per_path[p].values() for x in
                        run.values()),
            "ok": sum(1 for run in per_path[p].values() for x in
                      run.values() if (x.get("path_check") or {}).get("ok"))}
        for p in INJECT_PATHS}
    out["targets"] = inject_targets(out)
    return out


def inject_targets(ij):
    out = []
    fg = ij.get("figures", {})
    m = fg.get("msgs_per_s")
    if m and m["ratio_port_to_openflow"] is not None:
        out.append({"target": "chand port: acknowledged messages/s >= 3x "
                              "the PACKET_OUT path",
                    "value": m["ratio_port_to_openflow"],
                    "unit": "x the PACKET_OUT path",
                    "port": med(m["port"]), "openflow": med(m["openflow"]),
                    "met": m["ratio_port_to_openflow"] >= 3})
    lt = fg.get("push_to_applied_p99_ms")
    if lt and lt["port"] and lt["openflow"]:
        out.append({"target": "chand port: lower p99 push to applied than "
                              "the PACKET_OUT path (at {:,} msg/s)".format(
                                  ij["setup"].get("latency_rate", 1000)),
                    "value": lt["ratio_port_to_openflow"],
                    "unit": "x the PACKET_OUT path",
                    "port": med(lt["port"]), "openflow": med(lt["openflow"]),
                    "met": med(lt["port"]) < med(lt["openflow"])})
    return out


def delta(before, after):
    """after - before for the integer counters of two flat dicts."""
    out = {}
    for k, v in (after or {}).items():
        if isinstance(v, int) and not isinstance(v, bool):
            b = (before or {}).get(k)
            out[k] = v - b if isinstance(b, int) else v
    return out


def up_counters(base):
    """The counters of one upstream run: chand-host's channel counters
    (up_*, relayed), the guest publisher's and its sender's, as deltas."""
    c0 = load(base + ".channel0.json", {}) or {}
    c1 = load(base + ".channel.json", {}) or {}
    g0 = (load(base + ".guest0.json", {}) or {}).get("publisher") or {}
    g1 = (load(base + ".guest.json", {}) or {}).get("publisher") or {}
    host = delta(c0.get("counters"), c1.get("counters"))
    pub = delta(g0.get("counters"), g1.get("counters"))
    snd = delta(g0.get("sender"), g1.get("sender"))
    return {
        "host_msgs": host.get("up_msgs"),
        "host_records": host.get("up_records"),
        "host_batches": host.get("up_batches"),
        "host_rows_written": host.get("up_rows_written"),
        "host_rx_data": host.get("up_rx_data"),
        "host_rx_duplicate": host.get("up_rx_duplicate"),
        "host_drop_gap": host.get("up_drop_gap"),
        "host_tx_ack": host.get("up_tx_ack"),
        "relayed": host.get("relayed"),
        "relay_refused": host.get("relay_refused"),
        "guest_msgs_queued": pub.get("msgs_queued"),
        "guest_records_queued": pub.get("records_queued"),
        "guest_frames_sent": snd.get("frames_sent"),
        "guest_frames_resent": snd.get("frames_resent"),
        "guest_fast_retransmits": snd.get("fast_retransmits"),
        "guest_timeouts": snd.get("timeouts"),
        "guest_cwnd_end": g1.get("cwnd"),
        "guest_sessions": pub.get("sessions"),
    }


def up_rate_tenths(pub_log):
    """Publications/s the API answered over the first and the last tenth of
    a run (from the reply times), or (None, None)."""
    t = sorted(v[1] for v in read_log(pub_log, 4).values())
    n = len(t) // 10
    if n < 10:
        return None, None

    def rate(a):
        return (n - 1) / ((a[-1] - a[0]) / 1e9) if a[-1] > a[0] else None
    return rate(t[:n]), rate(t[-n:])


def up_tput_one(base):
    pub = load(base + ".pub.json")
    gr = load(base + ".gr.json")
    if not pub or not gr or gr.get("end") != "count" or not pub.get("ok"):
        problem("upstream throughput run {}: records not all in "
                "Guest_Record".format(base))
        return None
    n = pub["ok"]
    rows = read_text(base + ".rows").strip()
    if rows != str(pub["count"]):
        problem("upstream throughput run {}: Guest_Record holds {} of {} "
                "records".format(base, rows or "?", pub["count"]))
    t0, t_first, t_done = pub["t_start"], gr["t_first"], gr["t_last"]
    first, last = up_rate_tenths(base + ".pub.log")
    r = {"records": n,
         "guest_record_rows": int(rows) if rows.isdigit() else None,
         "rate": n / ((t_done - t0) / 1e9),
         "rate_steady": (n / ((t_done - t_first) / 1e9)
                         if t_done > t_first else None),
         "publish_rate": (n / ((pub["t_last_reply"] - t0) / 1e9)
                          if pub["t_last_reply"] > t0 else None),
         "publish_rate_first_tenth": first,
         "publish_rate_last_tenth": last,
         "first_row_s": (t_first - t0) / 1e9,
         "tail_s": (t_done - pub["t_last_reply"]) / 1e9,
         "api_p50_ms": pub["send_to_reply"].get("p50_ms"),
         "api_p99_ms": pub["send_to_reply"].get("p99_ms"),
         "cost": cost_of(base + ".cost.json", n)}
    r.update(up_counters(base))
    if r["host_msgs"]:
        r["records_per_msg"] = n / r["host_msgs"]
    if r["guest_frames_sent"]:
        r["records_per_frame"] = n / r["guest_frames_sent"]
    return r


def up_lat_one(base, what):
    sent = read_log(base + ".pub.log", 4)
    seen = read_log(base + ".gr.log", 3)
    vis, vis_send, api = [], [], []
    for key, (ts, tr) in sent.items():
        api.append(tr - ts)
        if key in seen:
            vis.append(seen[key][0] - tr)
            vis_send.append(seen[key][0] - ts)
    if not vis:
        problem("{}: no published version seen in Guest_Record".format(what))
    pub = load(base + ".pub.json", {}) or {}
    r = {"sent": len(sent), "seen": len(vis),
         "achieved_rate": pub.get("achieved_rate"),
         "max_send_lag_ms": pub.get("max_send_lag_ms"),
         "publish_to_visible": dist_ms(vis),
         "send_to_visible": dist_ms(vis_send),
         "api_call": dist_ms(api)}
    r.update(up_counters(base))
    return r


def up_relay_one(base, source, what):
    sent = read_log(base + ".pub.log", 4)
    gr = read_log(base + ".gr.log", 3)
    rel = read_log(base + ".relay.log", 3)
    seen = read_log(base + ".watch.log", 3)
    total, to_gr, to_rel, to_app = [], [], [], []
    for (key, ver), (ts, tr) in sent.items():
        rk = ("from/{}/{}".format(source, key), ver)
        if rk not in seen:
            continue
        ta = seen[rk][0]
        total.append(ta - tr)
        if (key, ver) in gr and rk in rel:
            to_gr.append(gr[(key, ver)][0] - tr)
            to_rel.append(rel[rk][0] - gr[(key, ver)][0])
            to_app.append(ta - rel[rk][0])
    if not total:
        problem("{}: no relayed record seen applied".format(what))
    elif len(total) < len(sent):
        problem("{}: {} of {} relayed records not seen applied".format(
            what, len(sent) - len(total), len(sent)))
    sq = read_text(base + ".sqlite").strip()
    if sq != str(len(sent)):
        problem("{}: the target's datastore holds {} of {} relayed records"
                .format(what, sq or "?", len(sent)))
    r = {"sent": len(sent), "applied_seen": len(total),
         "target_datastore_count": int(sq) if sq.isdigit() else None,
         "publish_to_applied": dist_ms(total),
         "publish_to_guest_record": dist_ms(to_gr),
         "guest_record_to_relayed_row": dist_ms(to_rel),
         "relayed_row_to_applied": dist_ms(to_app)}
    r.update(up_counters(base))
    return r


UP_TPUT_KEYS = ["records", "rate", "rate_steady", "publish_rate",
                "publish_rate_first_tenth", "publish_rate_last_tenth",
                "first_row_s", "tail_s", "api_p50_ms", "api_p99_ms",
                "records_per_msg", "records_per_frame", "host_msgs",
                "host_batches", "host_rows_written", "host_rx_duplicate",
                "host_tx_ack", "guest_frames_sent", "guest_frames_resent",
                "guest_fast_retransmits", "guest_timeouts",
                "guest_cwnd_end"]


def dist_agg(runs, parts, extra=("p999_ms", "max_ms")):
    return {part: {p: mmm([x[part].get(p) for x in runs])
                   for p in ("p50_ms", "p99_ms") + tuple(extra)}
            for part in parts}


def upstream(raw):
    """Section 9: records the guests publish, and their relay."""
    d = os.path.join(raw, "up")
    if not os.path.isdir(d):
        return {}
    setup = load(os.path.join(d, "setup.json"), {}) or {}
    out = {"setup": setup}
    runs = [up_tput_one(f[:-len(".pub.json")]) for _, f in
            run_files(os.path.join(d, "tput-*.pub.json"))]
    runs = [x for x in runs if x]
    if runs:
        t = agg_runs(runs, UP_TPUT_KEYS)
        t["cost"] = agg_cost(runs)
        t["per_run"] = runs
        out["throughput"] = t
    elif setup:
        problem("upstream: no throughput run")
    lat = [up_lat_one(f[:-len(".pub.json")],
                      "upstream latency run {}".format(run))
           for run, f in run_files(os.path.join(d, "lat-*.pub.json"))]
    if lat:
        x = dist_agg(lat, ("publish_to_visible", "send_to_visible",
                           "api_call"))
        x.update({k: mmm([r.get(k) for r in lat])
                  for k in ("sent", "seen", "achieved_rate",
                            "max_send_lag_ms", "host_msgs", "host_batches",
                            "guest_frames_sent", "guest_frames_resent",
                            "guest_fast_retransmits", "guest_timeouts")})
        x["per_run"] = lat
        out["latency"] = x
    elif setup:
        problem("upstream: no latency run")
    source = setup.get("relay_source", "chb-vm1")
    rel = [up_relay_one(f[:-len(".pub.json")], source,
                        "relay run {}".format(run))
           for run, f in run_files(os.path.join(d, "relay-*.pub.json"))]
    if rel:
        x = dist_agg(rel, ("publish_to_applied", "publish_to_guest_record",
                           "guest_record_to_relayed_row",
                           "relayed_row_to_applied"))
        x.update({k: mmm([r.get(k) for r in rel])
                  for k in ("sent", "applied_seen", "relayed",
                            "relay_refused")})
        vms = read_text(os.path.join(d, "relay-vms")).strip()
        x["vms_up"] = int(vms) if vms.isdigit() else None
        x["per_run"] = rel
        out["relay"] = x
    elif os.path.exists(os.path.join(d, "relay-vms")):
        problem("upstream: no relay run")
    prof = perf_rows(os.path.join(d, "profile-children.txt"), 120)
    if prof:
        out["profile"] = {"children": prof,
                          "run": up_tput_one(os.path.join(d, "profile"))}
    return out


def perf_rows(path, limit):
    """Rows of a `perf report --stdio --sort comm,sym` listing: pct, comm,
    what (the first percentage column)."""
    res = []
    for line in read_text(path).splitlines():
        m = re.match(r"\s+([\d.]+)%\s+(?:([\d.]+)%\s+)?(\S+)\s+(.*)$", line)
        if m and not line.lstrip().startswith("#"):
            what = re.sub(r"\s*\(inlined\)$", "",
                          m.group(4).replace("[.] ", "").strip())
            res.append({"pct": float(m.group(1)), "comm": m.group(3),
                        "what": what})
    return res[:limit]


def up_prof_pct(up, comm, fn):
    """Inclusive share of 'fn' in 'comm' in the upstream profile, or None."""
    for row in (up.get("profile") or {}).get("children", []):
        if row["comm"] == comm and row["what"] == fn:
            return row["pct"]
    return None


# --- 10. File transfer ---------------------------------------------------

XFER_CHUNK = 1420          # Payload bytes of a CHUNK frame.
XFER_CONDS = ("h2g", "g2h-default", "g2h-high")


def guest_rate_of(host_args):
    """The packets/s of chand-host's --guest-rate in 'host_args' (2000,
    its default, without one)."""
    m = re.search(r"--guest-rate=(\d+)", host_args or "")
    return int(m.group(1)) if m else 2000


def xdelta(before, after):
    """after - before of two counters (a missing 'before' counts as 0)."""
    if not isinstance(after, int):
        return None
    return after - (before if isinstance(before, int) else 0)


def xfer_one(base):
    setup = load(base + ".setup.json", {}) or {}
    t = load(base + ".time.json", {}) or {}
    h0, h1 = load(base + ".host0.json", {}) or {}, \
        load(base + ".host.json", {}) or {}
    g0, g1 = load(base + ".guest0.json", {}) or {}, \
        load(base + ".guest.json", {}) or {}
    vm = "chb-vm1"
    hl0 = (h0.get("lanes") or {}).get(vm) or {}
    hl1 = (h1.get("lanes") or {}).get(vm) or {}
    gl0, gl1 = g0.get("transfer") or {}, g1.get("transfer") or {}
    h2g = setup.get("direction") == "h2g"
    snd0, snd1 = (hl0, hl1) if h2g else (gl0, gl1)
    rcv0, rcv1 = (gl0, gl1) if h2g else (hl0, hl1)
    digest = setup.get("digest")
    n = setup.get("bytes") or 0
    r = {"bytes": n, "n_chunks": -(-n // XFER_CHUNK),
         "loss_pct": setup.get("loss_pct"),
         "chand_host_args": setup.get("chand_host_args", ""),
         "guest_rate_pps": guest_rate_of(setup.get("chand_host_args")),
         "completed": bool(t.get("t_done")), "digest": digest}
    if r["completed"]:
        r["seconds"] = (t["t_done"] - t["t_start"]) / 1e9
        r["mb_per_s"] = n / 1e6 / r["seconds"]
    m = re.search(r"complete and verified \(\d+ bytes in (\d+) ms\)",
                  read_text(base + ".log"))
    if m:
        r["receiver_pull_s"] = int(m.group(1)) / 1e3
    served = next((s for s in snd1.get("served") or []
                   if s.get("digest") == digest), None)
    c0, c1 = snd0.get("counters") or {}, snd1.get("counters") or {}
    if served:
        r["chunks_sent"] = served.get("chunks_sent")
        r["sent_again"] = served.get("sent_again")
    elif c1:
        r["chunks_sent"] = xdelta(c0.get("chunks_sent"), c1.get("chunks_sent"))
        r["sent_again"] = xdelta(c0.get("chunks_sent_again"),
                                c1.get("chunks_sent_again"))
    r["send_errors"] = (xdelta(c0.get("tx_errors"), c1.get("tx_errors"))
                        if c1 else None)
    c0, c1 = rcv0.get("counters") or {}, rcv1.get("counters") or {}
    for k, name in (("chunks_received", "chunks_received"),
                    ("chunks_duplicate", "duplicates"),
                    ("gets_sent", "gets_sent"), ("tx_errors", "rx_tx_errors"),
                    ("checkpoints", "checkpoints")):
        r[name] = xdelta(c0.get(k), c1.get(k)) if c1 else None
    p = t.get("last_pull") or {}
    r["rerequested"] = p.get("rerequested")
    r["rerequested_fast"] = p.get("rerequested_fast")
    r["pull_timeouts"] = p.get("timeouts")
    r["last_sample_have"] = (p["have"] / p["n_chunks"]
                             if p.get("n_chunks") else None)
    drops = dict(l.split(None, 1) if len(l.split()) == 2 else (l.strip(), "")
                 for l in read_text(base + ".drops").splitlines()
                 if l.strip())
    def num(k):
        v = drops.get(k, "").strip()
        return int(v) if v.isdigit() else (0 if not r["loss_pct"] else None)
    r["chunk_frames_dropped"] = num("in-chunk" if h2g else "out-chunk")
    r["other_frames_dropped"] = (
        num("out") + num("in") if num("out") is not None
        and num("in") is not None else None)
    if not r["completed"]:
        problem("transfer {}: not complete after the timeout ({})".format(
            os.path.basename(base), t.get("error") or "the receiver's "
            "content store never had the object"))
    elif not r.get("chunks_sent"):
        problem("transfer {}: the sender's counters show no chunk sent"
                .format(os.path.basename(base)))
    return r


XFER_KEYS = ("mb_per_s", "seconds", "receiver_pull_s", "chunks_sent",
             "sent_again", "send_errors", "rerequested", "rerequested_fast",
             "duplicates",
             "chunk_frames_dropped", "other_frames_dropped",
             "last_sample_have")


def transfer(raw):
    d = os.path.join(raw, "xfer")
    if not os.path.isdir(d):
        return {}
    res = {}
    for f in glob.glob(os.path.join(d, "*.time.json")):
        m = re.match(r"(h2g|g2h-default|g2h-high)-loss(\d+)-(\d+)"
                     r"\.time\.json$", os.path.basename(f))
        if not m:
            continue
        r = xfer_one(f[:-len(".time.json")])
        r["run"] = int(m.group(3))
        res.setdefault("{}-loss{}".format(m.group(1), m.group(2)),
                       []).append(r)
    out = {"setup": load(os.path.join(d, "setup.json"), {}), "figures": {}}
    def order(name):
        cond, loss = name.rsplit("-loss", 1)
        return XFER_CONDS.index(cond), int(loss)
    for name, runs in sorted(res.items(), key=lambda kv: order(kv[0])):
        runs.sort(key=lambda r: r["run"])
        fig = {k: mmm([r.get(k) for r in runs]) for k in XFER_KEYS}
        fig.update({"bytes": runs[0]["bytes"],
                    "n_chunks": runs[0]["n_chunks"],
                    "loss_pct": runs[0]["loss_pct"],
                    "guest_rate_pps": runs[0]["guest_rate_pps"],
                    "chand_host_args": runs[0]["chand_host_args"],
                    "completed": all(r["completed"] for r in runs),
                    "per_run": runs})
        out["figures"][name] = fig
    if not out["figures"]:
        problem("transfer: no measurement")
    return out


def xfer_ceilings(r):
    """Adds to each transfer figure its ceilings (MB/s) and ratios: ceiling
    (a) at 1,400 B × 1,420 bytes per CHUNK frame; for guest -> host also
    the fetch's pace, 80% of the meter's packets/s × 1,420."""
    tr = r.get("transfer") or {}
    a = ((r.get("ceilings") or {}).get("a") or {}).get("1400", {}) \
        .get("ceiling_pps")
    raw_mb = a["median"] * XFER_CHUNK / 1e6 if a else None
    tr["raw_ceiling_mb_per_s"] = raw_mb
    for name, f in (tr.get("figures") or {}).items():
        v = med(f["mb_per_s"])
        f["raw_ceiling_mb_per_s"] = raw_mb
        f["ratio_to_raw"] = ratio(v, raw_mb)
        if name.startswith("g2h"):
            meter = f["guest_rate_pps"] * 0.8 * XFER_CHUNK / 1e6
            f["meter_ceiling_mb_per_s"] = meter
            f["ratio_to_meter"] = ratio(v, meter)
            f["ceiling_mb_per_s"] = (min(raw_mb, meter) if raw_mb
                                     else meter)
            f["ratio_to_ceiling"] = ratio(v, f["ceiling_mb_per_s"])
        else:
            f["ceiling_mb_per_s"] = raw_mb
            f["ratio_to_ceiling"] = f["ratio_to_raw"]


def transfer_md(r, w):
    tr = r.get("transfer") or {}
    figs = tr.get("figures") or {}
    if not figs:
        return
    st = tr.get("setup") or {}
    raw = tr.get("raw_ceiling_mb_per_s")
    a = ((r.get("ceilings") or {}).get("a") or {}).get("1400", {}) \
        .get("ceiling_pps")
    w("## 10. File transfer (the transfer lane)")
    w("")
    w("One object of random bytes per run, from a reset (both content "
      "stores empty).  **Host → guest**: chand-host stores it "
      "(`chanctl object-store`), it goes on the allowlist, and once "
      "chb-vm1 holds `allow/<digest>` the record `install/<digest>` is "
      "pushed; chand-guest pulls the content from chand-host.  **Guest → "
      "host**: chb-vm1 registers it (`chanctl object-add`), and once the "
      "Chan DB has its `Object` row chand-host is asked to fetch it "
      "(`object/fetch`).  The clock runs from the request (the install "
      "push; the fetch command) until the receiver's content store has "
      "the object, complete and verified against its digest.  MB/s = 10⁶ "
      "bytes/s.  *Loss*: nftables in the VM drops that share of the "
      "chand frames at random both ways on `chand0` (CHUNK frames "
      "counted apart).")
    w("")
    if raw:
        w("*Raw ceiling*: ceiling (a) at 1,400-byte datagrams ({} "
          "pkts/s{}) × {:,} payload bytes per CHUNK frame = **{} MB/s** "
          "(measured host → guest; the guest → host path is not measured "
          "on its own).  Guest → host fetches ask for at most 80 % of "
          "chand-host's `--guest-rate` packets/s, so their *ceiling* is "
          "the lower of the raw ceiling and that pace × {:,} bytes."
          .format(fmt(a["median"]),
                  ", measured by this phase" if ((r.get("ceilings") or {})
                                                 .get("a_from_transfer"))
                  else ", section 1", XFER_CHUNK, fmt(raw), XFER_CHUNK))
    else:
        w("*Raw ceiling*: not measured (no ceiling (a) at 1,400 B).")
    w("")
    w("| direction | chand-host `--guest-rate` | loss | object | MB/s | "
      "seconds | receiver's own pull time (s) | raw ceiling MB/s | ratio "
      "| meter pace ceiling MB/s | ratio |")
    w("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, f in figs.items():
        h2g = name.startswith("h2g")
        rate = "{}{}".format(
            (st.get("high_guest_rate") if "high" in name
             else st.get("default_guest_rate", "2000/500")),
            "" if "high" in name else " (default)")
        w("| {} | {} | {} % | {} MiB | {} | {} | {} | {} | {} | {} | {} |"
          .format("host → guest" if h2g else "guest → host",
                  "—" if h2g else rate, f["loss_pct"],
                  fmt(f["bytes"] / 2**20), fm(f["mb_per_s"]),
                  fm(f["seconds"]), fm(f["receiver_pull_s"]),
                  fmt(f["raw_ceiling_mb_per_s"]),
                  pct_of(f["ratio_to_raw"]),
                  "—" if h2g else fmt(f["meter_ceiling_mb_per_s"]),
                  "—" if h2g else pct_of(f["ratio_to_meter"])))
    w("")
    w("*Receiver's own pull time*: from its log (\"complete and verified "
      "(N bytes in T ms)\"), from the pull's start to the verified "
      "content; the difference to *seconds* is the request reaching the "
      "receiver (a record through the channel, or the control command) "
      "and starting the pull.")
    w("")
    w("Counters per run (median, min–max): the sender's chunks sent for "
      "the object and how many of them it had sent before (chand-host's "
      "`transfer/list` for host → guest, chand-guest's `guest/status` "
      "`transfer` for guest → host), the receiver's chunks received "
      "twice (its lane's `chunks_duplicate`), chunks it asked for again "
      "(its pull's `rerequested`, of which on a gap: `rerequested_fast`; "
      "a finished pull leaves the status, so these are as of the last "
      "status sample, taken every 100 ms, and the column *sampled at* "
      "says how much of the object had arrived by then) and the CHUNK "
      "frames the loss rule dropped on their way.  The rule drops guest → "
      "host frames in the VM's output hook, where the sender's `sendto()` "
      "fails: such a chunk never left, counts as a send error, not as "
      "sent, and its second transmission not as *sent again*.")
    w("")
    w("| direction | `--guest-rate` | loss | chunks | sent | sent again "
      "| sender's send errors | re-requested (fast) | sampled at | "
      "duplicates | CHUNK frames dropped | other frames dropped |")
    w("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, f in figs.items():
        h2g = name.startswith("h2g")
        w("| {} | {} | {} % | {} | {} | {} | {} | {} ({}) | {} | {} | {} "
          "| {} |"
          .format("host → guest" if h2g else "guest → host",
                  "—" if h2g else ("high" if "high" in name else "default"),
                  f["loss_pct"], fmt(f["n_chunks"]), fm(f["chunks_sent"]),
                  fm(f["sent_again"]), fm(f["send_errors"]),
                  fm(f["rerequested"]),
                  fm(f["rerequested_fast"]),
                  fm(f["last_sample_have"], digits=0, scale=100) + " %"
                  if f["last_sample_have"] else "n/a",
                  fm(f["duplicates"]), fm(f["chunk_frames_dropped"]),
                  fm(f["other_frames_dropped"])))
    w("")
    if any((f.get("ratio_to_raw") or 0) > 1 for f in figs.values()):
        w("A ratio above 100 % means the lane moved more chunks per second "
          "than the sweep of section 1 delivered at its best point: the "
          "sweep's bursts overflow the guest ovs-vswitchd's AF_PACKET "
          "buffer (its last column), while a pull keeps at most 64 chunks "
          "outstanding.  Quick mode's sweep has two points only, so its "
          "ceiling is rough.")
        w("")
    d0, hi = figs.get("g2h-default-loss0"), figs.get("g2h-high-loss0")
    if d0 and d0.get("ratio_to_meter") and hi and hi.get("mb_per_s"):
        w("Guest → host at the default `--guest-rate` ran at {} of the "
          "fetch's pace ({:,.0f} chunks/s, {} MB/s): there the pace is the "
          "limit, not the path.  With `--guest-rate={}` the same fetch "
          "reached {} MB/s ({} of the raw ceiling).".format(
              pct_of(d0["ratio_to_meter"]), d0["guest_rate_pps"] * 0.8,
              fmt(d0["meter_ceiling_mb_per_s"]),
              st.get("high_guest_rate"), fmt(med(hi["mb_per_s"])),
              pct_of(hi.get("ratio_to_raw"))))
        w("")
    for name, f in figs.items():
        if not f["completed"]:
            w("- **{}**: not every run completed within the timeout (see "
              "`problems`).".format(name))
    w("")


# --- 10b. qemu-ga endpoint (chand-qga) ----------------------------------

QGA_RATES = ("default", "high")


def qga_counters(base):
    """chand-qga's qga/stats increments across one read: calls started
    (Chan DB requests), large reads and their bytes."""
    s0 = load(base + ".stats0.json", {}) or {}
    s1 = load(base + ".stats.json", {}) or {}
    c0, c1 = s0.get("calls") or {}, s1.get("calls") or {}
    q0, q1 = s0.get("commands") or {}, s1.get("commands") or {}
    return {"requests": xdelta(c0.get("started"), c1.get("started")),
            "large_reads": xdelta(q0.get("large_reads"),
                                  q1.get("large_reads")),
            "large_read_bytes": xdelta(q0.get("large_read_bytes"),
                                       q1.get("large_read_bytes"))}


def qga_read_one(base, what):
    """One timed read (large, lane or inline): seconds, MB/s, checks."""
    t = load(base + ".json")
    name = os.path.basename(base)
    if not t:
        problem("qga {}: no result".format(name))
        return None
    r = {"bytes": t.get("bytes"), "sha256_ok": bool(t.get("sha256_ok"))}
    if t.get("error") or not t.get("ns"):
        problem("qga {}: {}".format(name, t.get("error") or "no time"))
        return r
    r["seconds"] = t["ns"] / 1e9
    r["mb_per_s"] = (t.get("bytes") or 0) / 1e6 / r["seconds"]
    steps = {}
    for s in t.get("steps") or []:
        steps.setdefault(s["command"], []).append(s["ns"] / 1e9)
    if what == "lane":
        r["export_s"] = sum(steps.get("file-export", [])) or None
        r["fetch_s"] = sum(steps.get("object-fetch", [])) or None
        r["fetch_exact_s"] = (t["fetch_exact_ns"] / 1e9
                              if t.get("fetch_exact_ns") else None)
    else:
        r["reads"] = t.get("reads")
        r["read_s"] = sum(steps.get("guest-file-read", [])) or None
        reads = [x for x in t.get("steps") or []
                 if x["command"] == "guest-file-read"
                 and "first_byte_ns" in x]
        if reads:
            r["first_byte_s"] = sum(x["first_byte_ns"] for x in reads) / 1e9
            r["response_s"] = sum(x["last_byte_ns"] - x["first_byte_ns"]
                                  for x in reads) / 1e9
            r["decode_s"] = sum(x["ns"] - x["last_byte_ns"]
                                for x in reads) / 1e9
        r.update(qga_counters(base))
        if what == "large" and not r["large_reads"]:
            problem("qga {}: chand-qga counted no large read (not through "
                    "the transfer lane)".format(name))
        if what == "inline" and r["large_reads"]:
            problem("qga {}: chand-qga counted a large read for 48 KiB "
                    "reads".format(name))
    if not r["sha256_ok"]:
        problem("qga {}: the bytes are not the file's".format(name))
    return r


def qga_ping_one(path):
    t = load(path, {}) or {}
    ns = sorted(t.get("ns") or [])
    if t.get("error") or not ns:
        problem("qga {}: {}".format(os.path.basename(path),
                                    t.get("error") or "no round trip"))
        return None
    return {"n": len(ns), "p50_ms": pct(ns, 50) / 1e6,
            "p99_ms": pct(ns, 99) / 1e6, "max_ms": ns[-1] / 1e6}


QGA_READ_KEYS = {
    "large": ("mb_per_s", "seconds", "read_s", "first_byte_s", "response_s",
              "decode_s", "requests", "large_reads"),
    "lane": ("mb_per_s", "seconds", "export_s", "fetch_s", "fetch_exact_s"),
    "inline": ("mb_per_s", "seconds", "reads", "requests", "large_reads"),
}


def qga_rate(d, rate):
    """The figures at one --guest-rate: each read's over the runs, and
    the ratios qga/lane and qga/inline per run (same run, same rate)."""
    runs = {}
    for what in QGA_READ_KEYS:
        for n, f in run_files(os.path.join(d, "{}-{}-*.json".format(
                what, rate))):
            if f.endswith((".stats0.json", ".stats.json")):
                continue
            r = qga_read_one(f[:-len(".json")], what)
            if r:
                runs.setdefault(n, {})[what] = r
    if not runs:
        return None
    fig = {"per_run": [dict(run=n, **x) for n, x in sorted(runs.items())]}
    for what, keys in QGA_READ_KEYS.items():
        xs = [x[what] for x in runs.values() if what in x]
        if len(xs) < len(runs):
            problem("qga: a run at the {} --guest-rate has no {} read"
                    .format(rate, what))
        fig[what] = {k: mmm([x.get(k) for x in xs]) for k in keys}
        fig[what]["bytes"] = xs[0].get("bytes") if xs else None
    fig["ratio_qga_to_lane"] = mmm(
        [ratio((x.get("large") or {}).get("mb_per_s"),
               (x.get("lane") or {}).get("mb_per_s"))
         for x in runs.values()])
    fig["ratio_read_to_export_fetch"] = mmm(
        [ratio(((x.get("lane") or {}).get("export_s") or 0)
               + ((x.get("lane") or {}).get("fetch_exact_s") or 0),
               (x.get("large") or {}).get("read_s"))
         for x in runs.values()
         if (x.get("lane") or {}).get("fetch_exact_s")])
    fig["ratio_qga_to_inline"] = mmm(
        [ratio((x.get("large") or {}).get("mb_per_s"),
               (x.get("inline") or {}).get("mb_per_s"))
         for x in runs.values()])
    return fig


def qga(raw):
    d = os.path.join(raw, "qga")
    if not os.path.isdir(d):
        return {}
    out = {"setup": load(os.path.join(d, "setup.json"), {}),
           "figures": {}}
    for rate in QGA_RATES:
        fig = qga_rate(d, rate)
        if fig:
            out["figures"][rate] = fig
    pings = [p for _, f in run_files(os.path.join(d, "ping-*.json"))
             for p in [qga_ping_one(f)] if p]
    out["ping"] = {"p50_ms": mmm([p["p50_ms"] for p in pings]),
                   "p99_ms": mmm([p["p99_ms"] for p in pings]),
                   "max_ms": mmm([p["max_ms"] for p in pings]),
                   "per_run": pings}
    if not out["figures"]:
        problem("qga: no measurement")
    if not pings:
        problem("qga: no guest-ping round trip")
    return out


def qga_md(r, w):
    q = r.get("qga") or {}
    figs = q.get("figures") or {}
    if not figs:
        return
    st = q.get("setup") or {}
    w("## 10b. qemu-ga endpoint (chand-qga)")
    w("")
    w("chand-qga (doc/chand-qga.8) on the bench's Chan DB and chand-host, "
      "chb-vm1's socket driven by a qemu-ga client (the system tests' "
      "`qga-client.py`: 0xFF and `guest-sync-delimited`, then one request "
      "at a time; a `guest-file-read`'s response is received by the "
      "bench in chunks, as `qga-client.py` copies its buffer per MiB).  **qga large read**: `guest-file-open`, one "
      "`guest-file-read` of the whole {} MiB file (chand-guest's "
      "`file-export`, chand-host's transfer lane into its content store, "
      "chand-qga reads it there and answers in base64), "
      "`guest-file-close`.  **Lane alone** (baseline A): the same number "
      "of bytes with `chanctl call file-open` and `file-export`, then "
      "`chanctl object-fetch --size --wait`, then `file-close`.  **Inline "
      "reads** (baseline B): a {} MiB file read with `guest-file-read` of "
      "{:,} bytes at a time, each one `file-read` request through the "
      "Chan DB.  Seconds from the open to the close's response; every "
      "file is new random bytes (no content store holds them) and its "
      "sha256 is checked.  MB/s = 10⁶ bytes/s.  At chand-host's default "
      "`--guest-rate` ({}) and at the transfer phase's high one ({}), "
      "from a reset each."
      .format(fmt((st.get("large_bytes") or 0) / 2**20),
              fmt((st.get("inline_bytes") or 0) / 2**20),
              st.get("inline_count") or 0, st.get("default_guest_rate"),
              st.get("high_guest_rate")))
    w("")
    w("| chand-host `--guest-rate` | qga large read MB/s | seconds | lane "
      "alone MB/s | seconds | **qga / lane** | inline reads MB/s | "
      "**qga / inline** |")
    w("|---|---|---|---|---|---|---|---|")
    for rate, f in figs.items():
        w("| {} | {} | {} | {} | {} | {} | {} | {} |".format(
            st.get("{}_guest_rate".format(rate), rate)
            + (" (default)" if rate == "default" else ""),
            fm(f["large"]["mb_per_s"]), fm(f["large"]["seconds"]),
            fm(f["lane"]["mb_per_s"]), fm(f["lane"]["seconds"]),
            fm(f["ratio_qga_to_lane"], digits=2),
            fm(f["inline"]["mb_per_s"]),
            fm(f["ratio_qga_to_inline"], digits=1)))
    w("")
    w("*qga / lane* below 1 is chand-qga's overhead over the lane (the "
      "file-export request through the Chan DB, reading the content "
      "store, base64 and the JSON response); above 1, the lane alone "
      "lost more to `chanctl`'s 200 ms polls (below) than chand-qga "
      "added, and the read against the lane's export and fetch (next) is "
      "the sharper figure.  *qga / inline* is what the lane buys over "
      "48 KiB `file-read` requests.  Both are per run (same run, same "
      "rate), then the median.")
    w("")
    for rate, f in figs.items():
        x = f.get("ratio_read_to_export_fetch")
        if x:
            w("At the {} rate the `guest-file-read` itself took {} s where "
              "the lane's `file-export` and the fetch into the content "
              "store took {} s: a ratio of {}.  Of the read, the "
              "response's first byte came after {} s, its last {} s "
              "later, and the client decoded it (JSON, base64) in {} s."
              .format(rate, fmt(med(f["large"]["read_s"])),
                      fmt(med(f["lane"]["export_s"], 0)
                          + med(f["lane"]["fetch_exact_s"], 0)),
                      fm(x, digits=2), fm(f["large"]["first_byte_s"]),
                      fm(f["large"]["response_s"]),
                      fm(f["large"]["decode_s"])))
            w("")
    w("| `--guest-rate` | qga: the `guest-file-read` alone (s) | Chan DB "
      "requests | lane: `file-export` (s) | `object-fetch --wait` (s) | "
      "the fetch until the content store has it (s) | inline: reads | "
      "Chan DB requests | seconds |")
    w("|---|---|---|---|---|---|---|---|---|")
    for rate, f in figs.items():
        w("| {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
            rate, fm(f["large"]["read_s"]), fm(f["large"]["requests"]),
            fm(f["lane"]["export_s"]), fm(f["lane"]["fetch_s"]),
            fm(f["lane"]["fetch_exact_s"]),
            fm(f["inline"]["reads"]), fm(f["inline"]["requests"]),
            fm(f["inline"]["seconds"])))
    w("")
    w("*Chan DB requests*: chand-qga's `qga/stats` calls started during "
      "the read (open, reads or the export, close).  `chanctl call` and "
      "`object-fetch --wait` poll every 200 ms, so each step of the lane "
      "alone takes a multiple of it (the lane's *seconds* include up to "
      "0.2 s per step that chand-qga, which watches the Chan DB, does not "
      "wait); the fetch is also timed until chand-host's content store "
      "has the object (polled every 2 ms).  At the default `--guest-rate` "
      "the VM's replies, DATA and CHUNK frames alike, are paced by the "
      "same meter, so all three reads run at about its rate; the inline "
      "file is smaller, so the meter's burst is a larger share of it.")
    w("")
    p = q.get("ping") or {}
    if p.get("p50_ms"):
        w("**guest-ping round trip** through the socket ({} pings, one at "
          "a time, at the default `--guest-rate`): p50 {} ms, p99 {} ms, "
          "max {} ms.".format(fmt(st.get("pings")), fm(p["p50_ms"]),
                              fm(p["p99_ms"]), fm(p["max_ms"])))
        w("")


# --- 11. Clustered Chan DB ------------------------------------------------

def cl_status_delta(d):
    """chand-host's chan_db counters across a failover run."""
    s0 = (load(d + ".status0.json", {}) or {}).get("chan_db") or {}
    s1 = (load(d + ".status.json", {}) or {}).get("chan_db") or {}
    out = {"remote_before": s0.get("remote"), "remote_after": s1.get("remote")}
    for k in ("connects", "full_syncs", "resumes", "leader_changes",
              "remote_moves", "server_rejects", "bytes_received"):
        a, b = s0.get(k), s1.get(k)
        out[k] = b - a if isinstance(a, int) and isinstance(b, int) else None
    return out


def cl_failover_one(d):
    fo = load(d + ".fo.json")
    watch = read_log(d + ".watch.log", 3)
    if not fo or not fo.get("t_commit") or not watch:
        problem("cluster failover {}: the record pushed after the kill was "
                "not applied".format(d))
        return None
    t_applied = min(v[0] for v in watch.values())
    r = {"on_leader": read_text(d + ".on_leader").strip() == "true",
         "killed_member": read_text(d + ".leader").strip(),
         "new_leader": read_text(d + ".new_leader").strip(),
         "kill_to_commit_s": (fo["t_commit"] - fo["t_kill"]) / 1e9,
         "kill_to_applied_s": (t_applied - fo["t_kill"]) / 1e9,
         "push_attempts": fo.get("attempts"),
         "push_unanswered": fo.get("unanswered"),
         "pusher_remote": fo.get("remote_at_commit")}
    r.update(cl_status_delta(d))
    r["resumed"] = bool(r.get("resumes")) and not r.get("full_syncs")
    if r["on_leader"] and not r.get("connects"):
        problem("cluster failover {}: chand-host was on the killed leader "
                "but did not reconnect".format(d))
    return r


def cl_migrate_one(d):
    try:
        t0 = int(read_text(d + ".t0").strip())
        t1 = int(read_text(d + ".t1").strip())
    except ValueError:
        problem("cluster migration {}: no times".format(d))
        return None
    cw = load(d + ".chwait.json") or {}
    push = load(d + ".push.json") or {}
    watch = read_log(d + ".watch.log", 3)
    if not cw.get("t_ready") or not watch:
        problem("cluster migration {}: not ready or record not applied"
                .format(d))
        return None
    hvs = read_text(d + ".hvs").split()
    trans = []
    try:
        with open(d + ".chwait.log") as f:
            for line in f:
                p = line.split()
                if len(p) == 4:
                    trans.append({"t_s": (int(p[0]) - t0) / 1e9,
                                  "chassis": p[1], "claim": int(p[2]),
                                  "state": p[3]})
    except OSError:
        pass
    released = [x["t_s"] for x in trans if x["state"] == "released"]
    return {"from": hvs[0] if hvs else None, "to": hvs[1] if len(hvs) > 1
            else None,
            "move_s": (t1 - t0) / 1e9,
            "to_ready_s": (cw["t_ready"] - t0) / 1e9,
            "to_applied_s": (min(v[0] for v in watch.values()) - t0) / 1e9,
            "push_sent_s": ((push["t_send"] - t0) / 1e9
                            if push.get("t_send") else None),
            "push_committed_s": ((push["t_commit"] - t0) / 1e9
                                 if push.get("t_commit") else None),
            "released_s": released[0] if released else None,
            "transitions": trans}


def cl_sim_one(path):
    d = load(path)
    if not d:
        problem("cluster simulation {}: no result".format(path))
        return None
    hz = 100.0
    out = {"hosts": d["hosts"], "connect_s": d["connect_s"],
           "hosts_per_member": d["hosts_per_member"],
           "full_syncs": d["full_syncs"],
           "idle_bytes_per_host_per_s":
           d["idle"]["bytes"] / d["hosts"] / d["idle"]["seconds"]
           if d["idle"]["seconds"] else None,
           "idle_row_updates": d["idle"]["row_updates"]}
    for kind in ("one_vm", "all_vms"):
        p = d[kind]
        n = p["pushes"]
        if not n:
            continue
        o = p["others"]
        sb, sr = p["serving_bytes"], p["serving_row_updates"]
        cpu = {k: (v / hz * 1e3 / n if v is not None else None)
               for k, v in p["cpu_ticks"].items()}
        out[kind] = {
            "pushes": n,
            "serving_bytes": statistics.median(sb) if sb else None,
            "serving_row_updates": statistics.median(sr) if sr else None,
            "serving_row_updates_max": max(sr) if sr else None,
            "others_bytes_mean": o["bytes"] / o["samples"]
            if o["samples"] else None,
            "others_bytes_max": o["bytes_max"] if o["samples"] else None,
            "others_row_updates": o["row_updates"],
            "others_row_updates_max": o["row_updates_max"],
            "others_samples": o["samples"],
            "members_cpu_ms_per_push": cpu,
            "members_cpu_ms_per_push_total":
            sum(v for v in cpu.values() if v is not None),
            "simulator_cpu_ms_per_push": p["self_cpu_ticks"] / hz * 1e3 / n,
            "first_host_ms": statistics.median(p["t_first_ns"]) / 1e6,
            "last_host_ms": statistics.median(p["t_last_ns"]) / 1e6,
            "cluster_bytes_per_push": (sum(sb) + o["bytes"]) / n}
        if not sb or min(sr) < 1:
            problem("cluster simulation {}: a serving host saw no row "
                    "update".format(path))
    return out


CL_SIM_KEYS = ("serving_bytes", "serving_row_updates", "others_bytes_mean",
               "others_bytes_max", "others_row_updates",
               "others_row_updates_max", "members_cpu_ms_per_push_total",
               "simulator_cpu_ms_per_push", "first_host_ms", "last_host_ms",
               "cluster_bytes_per_push")


def cluster(raw):
    d = os.path.join(raw, "cluster")
    if not os.path.isdir(d):
        return None
    r = {"setup": load(os.path.join(d, "setup.json"), {})}
    tp = {}
    for kind in ("local", "cluster"):
        runs = [tput_one(f[:-len(".push.json")]) for _, f in
                run_files(os.path.join(d, "tput-{}-*.push.json".format(kind)))]
        runs = [x for x in runs if x]
        if runs:
            tp[kind] = agg_runs(runs, TPUT_KEYS)
            tp[kind]["cost"] = agg_cost(runs)
            tp[kind]["per_run"] = runs
    if "local" in tp and "cluster" in tp:
        tp["ratio_cluster_to_local"] = ratio(
            (tp["cluster"]["rate_from_commit"] or {}).get("median"),
            (tp["local"]["rate_from_commit"] or {}).get("median"))
    r["throughput"] = tp
    lat = {}
    for kind in ("local", "cluster"):
        runs = [lat_one(f[:-len(".push.json")],
                        "cluster latency {} run {}".format(kind, run))
                for run, f in run_files(os.path.join(
                    d, "lat-{}-*.push.json".format(kind)))]
        if runs:
            a = {"push_to_applied": {
                p: mmm([x["push_to_applied"].get(p) for x in runs])
                for p in ("p50_ms", "p99_ms", "p999_ms", "max_ms")},
                 "samples": mmm([x["applied_seen"] for x in runs]),
                 "sent": mmm([x["sent"] for x in runs]),
                 "achieved_rate": mmm([x["achieved_rate"] for x in runs]),
                 "per_run": runs}
            lat[kind] = a
    if "local" in lat and "cluster" in lat:
        lat["ratio_p99_cluster_to_local"] = ratio(
            (lat["cluster"]["push_to_applied"]["p99_ms"] or {})
            .get("median"),
            (lat["local"]["push_to_applied"]["p99_ms"] or {}).get("median"))
    r["latency"] = lat
    fo = [cl_failover_one(f[:-len(".fo.json")]) for _, f in
          run_files(os.path.join(d, "failover-*.fo.json"))]
    fo = [x for x in fo if x]
    if fo:
        r["failover"] = {
            "kill_to_applied_s": mmm([x["kill_to_applied_s"] for x in fo]),
            "kill_to_commit_s": mmm([x["kill_to_commit_s"] for x in fo]),
            "on_leader_runs": sum(x["on_leader"] for x in fo),
            "resumed_runs": sum(x["resumed"] for x in fo),
            "full_syncs": sum(x.get("full_syncs") or 0 for x in fo),
            "resumes": sum(x.get("resumes") or 0 for x in fo),
            "per_run": fo}
    mig = [cl_migrate_one(f[:-len(".t0")]) for _, f in
           run_files(os.path.join(d, "migrate-*.t0"))]
    mig = [x for x in mig if x]
    if mig:
        r["migration"] = {k: mmm([x[k] for x in mig]) for k in
                          ("move_s", "to_ready_s", "to_applied_s",
                           "push_committed_s", "released_s")}
        r["migration"]["per_run"] = mig
    sim = {}
    idle = os.path.join(d, "sim-idle.json")
    if os.path.exists(idle):
        x = cl_sim_one(idle)
        if x:
            sim["idle_with_hypervisors"] = x
    levels = {}
    for f in glob.glob(os.path.join(d, "sim-*-*.json")):
        m = re.match(r"sim-(\d+)-(\d+)\.json$", os.path.basename(f))
        if m:
            x = cl_sim_one(f)
            if x:
                levels.setdefault(int(m.group(1)), []).append(x)
    sim["levels"] = {}
    for n, runs in sorted(levels.items()):
        e = {"connect_s": mmm([x["connect_s"] for x in runs]),
             "hosts_per_member": runs[0]["hosts_per_member"],
             "per_run": runs}
        for kind in ("one_vm", "all_vms"):
            rs = [x[kind] for x in runs if kind in x]
            if rs:
                e[kind] = {k: mmm([x.get(k) for x in rs]) for k in CL_SIM_KEYS}
                e[kind]["members_cpu_ms_per_push"] = {
                    m: mmm([x["members_cpu_ms_per_push"].get(m) for x in rs])
                    for m in rs[0]["members_cpu_ms_per_push"]}
        sim["levels"][str(n)] = e
    sim["skipped"] = {os.path.basename(f)[4:-len(".skipped")]:
                      read_text(f).strip() for f in
                      glob.glob(os.path.join(d, "sim-*.skipped"))}
    r["simulation"] = sim
    return r


def cluster_md(r, w):
    c = r.get("cluster")
    if not c:
        return
    st = c.get("setup") or {}
    w("## 11. Clustered Chan DB (3-member Raft over ssl:)")
    w("")
    w("chand-host on a Chan DB that is a 3-member Raft cluster ({}; "
      "`scripts/lib/cluster.sh`), reached over ssl: with ovs-pki "
      "certificates, `--monitor=own`; hypervisors `hva` and `hvb` each in "
      "its own namespace with its own Open vSwitch; VMs chb-cvm1 (stays on "
      "hva) and chb-cvm2 (migrates).  The baseline is the stock topology "
      "of sections 2–3: chand-host on its local standalone Chan DB "
      "(`unix:`), measured in the same run, alternating with the cluster."
      .format(st.get("ovsdb_server", "ovsdb-server")))
    w("")
    tp = c.get("throughput") or {}
    lat = c.get("latency") or {}
    if tp or lat:
        w("| figure | local standalone Chan DB | 3-member cluster, ssl: | "
          "cluster / local |")
        w("|---|---|---|---|")
        loc, clu = tp.get("local") or {}, tp.get("cluster") or {}
        if loc or clu:
            w("| records/s, commit → last applied ({} records, one "
              "transaction, as section 2) | {} | {} | {} |".format(
                  fmt(st.get("records")), fm(loc.get("rate_from_commit")),
                  fm(clu.get("rate_from_commit")),
                  fmt(tp.get("ratio_cluster_to_local"), 2)))
            w("| records/s, transaction sent → last applied (the OVSDB "
              "ingest included) | {} | {} | {} |".format(
                  fm(loc.get("rate_from_send")),
                  fm(clu.get("rate_from_send")),
                  fmt(ratio((clu.get("rate_from_send") or {}).get("median"),
                            (loc.get("rate_from_send") or {})
                            .get("median")), 2)))
            w("| OVSDB ingest (send → commit reply), s | {} | {} | |".format(
                fm(loc.get("ingest_s"), digits=3),
                fm(clu.get("ingest_s"), digits=3)))
            w("| commit → first record applied, s | {} | {} | |".format(
                fm(loc.get("host_first_s"), digits=3),
                fm(clu.get("host_first_s"), digits=3)))
        ll, lc = lat.get("local") or {}, lat.get("cluster") or {}
        if ll or lc:
            for p in ("p50_ms", "p99_ms", "p999_ms"):
                w("| push → applied {} at {}/s ({} updates of 200 keys), ms "
                  "| {} | {} | {} |".format(
                      p[:-3].replace("p999", "p99.9"),
                      fmt(st.get("latency_rate")),
                      fmt(st.get("latency_count")),
                      fm((ll.get("push_to_applied") or {}).get(p)),
                      fm((lc.get("push_to_applied") or {}).get(p)),
                      fmt(ratio(((lc.get("push_to_applied") or {}).get(p)
                                 or {}).get("median"),
                                ((ll.get("push_to_applied") or {}).get(p)
                                 or {}).get("median")), 2)))
        w("")
        w("Section 2's records/s starts its clock at the commit reply.  "
          "On the cluster the reply comes later (the leader commits once "
          "a majority has the log entry), and part of chand-host's work "
          "can overlap that longer ingest (compare commit → first record "
          "applied): the rate from the transaction's sending, which "
          "includes the ingest, is the fairer comparison of the two.")
        w("")
        cc = (clu.get("cost") or {}).get("daemons") or {}
        cl_ = (loc.get("cost") or {}).get("daemons") or {}
        if cc:
            w("CPU seconds per million records during the records/s runs "
              "(as section 6; the local Chan DB is served by the "
              "hypervisor's ovsdb-server, the cluster's by its members):")
            w("")
            w("| process | local | cluster |")
            w("|---|---|---|")
            for name in sorted(set(cc) | set(cl_)):
                w("| {} | {} | {} |".format(
                    name,
                    fm((cl_.get(name) or {}).get("cpu_s_per_million")),
                    fm((cc.get(name) or {}).get("cpu_s_per_million"))))
            w("")
    fo = c.get("failover")
    if fo:
        base = ((lat.get("cluster") or {}).get("push_to_applied") or {})
        w("**Leader killed** (`kill -9` of the member that leads; chand-host "
          "of hva first restarted until it is connected to the leader, "
          "which it was in {} of {} runs).  At the kill, `chand-bench "
          "failover` (connected to a surviving member) pushes one record "
          "for chb-cvm1 and retries every 250 ms until a member commits "
          "it; the watcher in the VM logs when it is applied.".format(
              fo["on_leader_runs"], len(fo["per_run"])))
        w("")
        w("| figure | value | baseline (healthy cluster) |")
        w("|---|---|---|")
        w("| kill → record applied in the guest, s | {} | push → applied "
          "p50 {} ms, p99 {} ms |".format(
              fm(fo["kill_to_applied_s"], digits=2),
              fm(base.get("p50_ms")), fm(base.get("p99_ms"))))
        w("| kill → record committed (new leader elected), s | {} | |"
          .format(fm(fo["kill_to_commit_s"], digits=2)))
        w("| chand-host `chan_db.resumes` / `full_syncs` (sum of the "
          "runs' increments) | {} / {} | resumed in {} of {} runs |".format(
              fo["resumes"], fo["full_syncs"], fo["resumed_runs"],
              len(fo["per_run"])))
        w("")
        w("| run | on leader | killed | chand-host before → after | "
          "connects | resumes | full_syncs | remote_moves | kill → "
          "applied, s |")
        w("|---|---|---|---|---|---|---|---|---|")
        for i, x in enumerate(fo["per_run"], 1):
            w("| {} | {} | member {} | {} → {} | +{} | +{} | +{} | +{} | {} |"
              .format(i, "yes" if x["on_leader"] else "no",
                      x["killed_member"], x["remote_before"],
                      x["remote_after"], x.get("connects"),
                      x.get("resumes"), x.get("full_syncs"),
                      x.get("remote_moves"),
                      fmt(x["kill_to_applied_s"], 2)))
        w("")
    mg = c.get("migration")
    if mg:
        base = ((lat.get("cluster") or {}).get("push_to_applied") or {})
        w("**Migration** of chb-cvm2 between hva and hvb (back and forth), "
          "with `cl_migrate`: delete the vNIC's port on the source, `ip "
          "link set dev VNIC netns` the destination, add it to the "
          "destination's br-int with the same external_ids.  Times from "
          "the start of the move; a record for chb-cvm2 is pushed as soon "
          "as the port is on the destination.")
        w("")
        w("| figure | s |")
        w("|---|---|")
        w("| the move itself (ovs-vsctl del-port, ip link, add-port) | {} |"
          .format(fm(mg["move_s"], digits=3)))
        w("| source's Channel row `released` | {} |".format(
            fm(mg["released_s"], digits=3)))
        w("| newest-claim Channel row on the destination and `ready` | {} |"
          .format(fm(mg["to_ready_s"], digits=3)))
        w("| record pushed at the move: committed | {} |".format(
            fm(mg["push_committed_s"], digits=3)))
        w("| record pushed at the move: applied in the guest | {} |"
          .format(fm(mg["to_applied_s"], digits=3)))
        w("| baseline: push → applied on the healthy cluster, p50 / p99 | "
          "{} / {} ms |".format(fm(base.get("p50_ms")),
                                fm(base.get("p99_ms"))))
        w("")
        w("(chand-host writes a `Channel` row every 200 ms while records "
          "flow (`DB_WRITE_MS`) and within 20 ms once a channel caught up, "
          "so the row can say `ready` after the guest has already applied "
          "the record.)")
        w("")
    sim = c.get("simulation") or {}
    lv = sim.get("levels") or {}
    if lv:
        w("**Many hypervisors.**  `chand-bench simhosts`: N simulated "
          "hypervisors in one process, each a `lib/ovsdb-replica` replica "
          "on the cluster (remotes shuffled, as chand-host) with chand-host's "
          "tables and its `--monitor=own` conditions for its {} VMs; the "
          "real chand-hosts are stopped meanwhile, so the pushes are the "
          "only writes.  {} pushes of one record each to one VM (the first "
          "VM of a different host each time), then {} to all VMs "
          "(`Record.vm` empty); after each, until the serving host(s) have "
          "it and 100 ms more.  Bytes are what the replica received "
          "(`n_bytes_received`), row updates those of the Chan tables.  "
          "Members' CPU from `/proc/PID/stat` (10 ms ticks) over the pushes."
          .format(st.get("sim_vms_per_host", 2), fmt(st.get("sim_pushes")),
                  fmt(st.get("sim_pushes"))))
        w("")
        w("| hosts | connect all, s | push to | serving host: bytes / row "
          "updates | each other host: bytes (mean, max) / row updates "
          "(total) | all hosts: bytes per push | members' CPU per push, ms "
          "| first / last host has it, ms |")
        w("|---|---|---|---|---|---|---|---|")
        for n, e in sorted(lv.items(), key=lambda x: int(x[0])):
            for kind, label in (("one_vm", "one VM"), ("all_vms", "all VMs")):
                k = e.get(kind)
                if not k:
                    continue
                others = "—" if kind == "all_vms" else "{} ({}) / {}".format(
                    fm(k["others_bytes_mean"]), fm(k["others_bytes_max"]),
                    fm(k["others_row_updates"]))
                w("| {} | {} | {} | {} / {} | {} | {} | {} | {} / {} |".format(
                    fmt(int(n)), fm(e["connect_s"], digits=2), label,
                    fm(k["serving_bytes"]), fm(k["serving_row_updates"]),
                    others, fm(k["cluster_bytes_per_push"]),
                    fm(k["members_cpu_ms_per_push_total"], digits=1),
                    fm(k["first_host_ms"], digits=1),
                    fm(k["last_host_ms"], digits=1)))
        w("")
        one = [(int(n), e["one_vm"]) for n, e in lv.items()
               if e.get("one_vm")]
        if one:
            n, k = max(one)
            ob = (k["others_bytes_mean"] or {}).get("median")
            sb = (k["serving_bytes"] or {}).get("median")
            orow = (k["others_row_updates"] or {}).get("median")
            w("Conditional monitoring keeps the *rows* away from the other "
              "hosts: {} row updates reached the {:,} hosts that do not "
              "serve the VM, and each of them received about {} bytes per "
              "push (the serving host {}, so the record itself is about {} "
              "bytes).  What the others get is the `_Server` database's "
              "`Database` row changing its `index` at every commit: "
              "lib/ovsdb-replica monitors it with `monitor_cond`, as Open "
              "vSwitch's ovsdb-cs does, so the update carries that column "
              "only.  A push to one VM costs the cluster about {} bytes "
              "with {:,} hypervisors."
              .format(fmt(orow), n - 1, fmt(ob), fmt(sb),
                      fmt(sb - ob) if sb is not None and ob is not None
                      else "n/a",
                      fm(k["cluster_bytes_per_push"]), n))
            w("")
        idle = sim.get("idle_with_hypervisors")
        if idle:
            w("At rest, with the two real chand-hosts running (two idle VMs, "
              "no push), each of {} simulated hosts received {} bytes/s "
              "and {} row updates: an idle channel's `Channel` row is "
              "rewritten only for its counters, every 5 s "
              "(`CHANNEL_STATS_WRITE_MS`), and each such commit sends the "
              "`_Server` index to every client.".format(
                  idle["hosts"], fmt(idle["idle_bytes_per_host_per_s"]),
                  idle["idle_row_updates"]))
            w("")
        sk = sim.get("skipped") or {}
        for n, why in sk.items():
            w("Not measured with {} hosts: {}.".format(n, why))
            w("")


# --- 12. Scale: N channels on one hypervisor ------------------------------

# The issue's targets: (label, figure, target, unit, test).
SCALE_TARGET_N = 1000


def scale_rss_peak_kb(x):
    v = [x.get("rss_peak_kb")] + [(x.get(k) or {}).get("rss_peak_kb")
                                  for k in ("restart_host",
                                            "restart_vswitchd")]
    v = [y for y in v if y is not None]
    return max(v) if v else None


def scale(raw):
    d = os.path.join(raw, "scale")
    if not os.path.isdir(d):
        return {}
    out = {"setup": load(os.path.join(d, "setup.json"), {}), "levels": {}}
    for f in glob.glob(os.path.join(d, "result-*.json")):
        m = re.search(r"result-(\d+)\.json$", f)
        x = load(f)
        if not m:
            continue
        n = m.group(1)
        if x is None:
            problem("scale {}: result.json unreadable".format(n))
            continue
        if not x.get("ok"):
            problem("scale {}: sim-scale could not do its job: {}".format(
                n, x.get("error")))
        if not x.get("ready"):
            problem("scale {}: no channel became ready".format(n))
        if not (x.get("push") or {}).get("applied"):
            problem("scale {}: the record pushed to all VMs was committed "
                    "by no VM".format(n))
        x["rss_peak_any_kb"] = scale_rss_peak_kb(x)
        out["levels"][n] = x
    out["measured"] = bool(out["levels"])
    out["targets"] = scale_targets(out)
    return out


def scale_targets(sc):
    """The issue's targets at the largest N measured."""
    lv = sc.get("levels") or {}
    if not lv:
        return []
    n = max(lv, key=int)
    x = lv[n]
    idle_window = x.get("idle_measured_s") or 0
    rh = x.get("restart_host")
    rv = x.get("restart_vswitchd")
    at = "" if int(n) == SCALE_TARGET_N else " (target for {:,} channels; " \
        "measured at {:,})".format(SCALE_TARGET_N, int(n))
    out = []

    def t(what, limit, value, unit, met, **kw):
        d = {"target": "scale: {} {}{}".format(what, limit, at),
             "what": what, "limit": limit, "value": value, "unit": unit,
             "met": met, "n": int(n)}
        d.update(kw)
        out.append(d)
    v = x.get("ready_s")
    t("all channels ready after chand-host starts", "≤ 30 s", v, "s",
      v is not None and v <= 30)
    p = x.get("push") or {}
    v = p.get("p99_ms")
    t("one record for all VMs: push → applied in all, p99", "≤ 2,000 ms",
      v, "ms", v is not None and v <= 2000 and p.get("applied") == int(n))
    v = x.get("rss_peak_any_kb")
    t("chand-host RSS (peak)", "≤ 256 MiB", None if v is None else v / 1024,
      "MiB", v is not None and v <= 256 * 1024)
    v = x.get("idle_cpu_pct")
    t("chand-host CPU at rest, all ready, no pushes",
      "≤ 2 % of one core (over ≥ 20 s)", v, "% of a core",
      v is not None and v <= 2 and idle_window >= 20,
      judged=idle_window >= 20)
    if rh:
        v = rh.get("back_s")
        t("kill -9 chand-host: all resynced", "≤ 30 s", v, "s",
          v is not None and v <= 30)
        v = rh.get("snapshots")
        t("kill -9 chand-host: guests given a full snapshot (all positions "
          "known)", "none", v, "guests", v == 0)
    if rv:
        v = rv.get("back_s")
        t("ovs-vswitchd restart: all chand flows back, all channels ready",
          "≤ 30 s", v, "s", v is not None and v <= 30)
    return out


def scale_md(r, w):
    sc = r.get("scale")
    if not sc:
        return
    st = sc.get("setup") or {}
    lv = sc.get("levels") or {}
    w("## 12. Scale: N channels on one hypervisor")
    w("")
    w("`scripts/sim-scale N --idle {} --restart-host{}` for N = {}: one "
      "hypervisor (its own Open vSwitch, Chan DB and chand-host) and N "
      "simulated VMs served by the guest simulator (`chand-bench guests`: "
      "chand-guest's own receiver and datastore per VM, one process, no "
      "guest Open vSwitch; doc/bench.md).  The ports, keys and simulator "
      "are set up first, then chand-host starts{}.  **One run per N**{}.  "
      "Push → applied: one record for all VMs (`chanctl push`), from just "
      "before the push to the commit in each VM's datastore (the "
      "simulator's `--watch-key` times).  Idle CPU: `/proc/PID/stat` over "
      "{} s with every channel ready and nothing pushed.  Restarts: "
      "SIGKILL and a start; *back* is from the kill until every channel is "
      "ready again in a row the new chand-host wrote (for ovs-vswitchd: "
      "with all of chand's flows on br-int again), sampled about twice a "
      "second."
      .format(st.get("idle_s", "?"),
              " --restart-vswitchd" if st.get("restart_vswitchd") else "",
              ", ".join("{:,}".format(n) for n in st.get("levels", [])),
              " (the time to ready is from its start)",
              " whatever `--runs` says" if r["meta"].get("runs", 1) > 1
              else "", st.get("idle_s", "?")))
    w("")
    if not lv:
        w("Not measured.")
        w("")
        return

    def mib(kb):
        return None if kb is None else kb / 1024

    def back(x):
        if not x:
            return "—"
        if x.get("back_s") is None:
            return "not within {} s ({} of N)".format(
                fmt(st.get("wait_s")), fmt(x.get("back")))
        return fmt(x["back_s"], 1)

    def ready(x):
        if x.get("ready_s") is None:
            return "not within {} s ({} ready)".format(
                fmt(x.get("wait_s")), fmt(x.get("ready")))
        return fmt(x["ready_s"], 1)

    w("| N | all ready (s) | push → applied in all: p50 / p99 / max (ms) "
      "| chand-host RSS, MiB (peak) | chand-host idle CPU (% of a core) "
      "| kill -9 chand-host: all back (s) | … guests snapshotted / resumed "
      "| ovs-vswitchd restart: all back (s) | chand flows / meters per "
      "channel |")
    w("|---|---|---|---|---|---|---|---|---|")
    for n, x in sorted(lv.items(), key=lambda kv: int(kv[0])):
        p = x.get("push") or {}
        rh = x.get("restart_host")
        push = "{} / {} / {}".format(fmt(p.get("p50_ms")),
                                     fmt(p.get("p99_ms")),
                                     fmt(p.get("max_ms")))
        if p.get("applied") != int(n):
            push += " ({} of {} applied)".format(fmt(p.get("applied")),
                                                 fmt(int(n)))
        w("| {} | {} | {} | {} ({}) | {} | {} | {} | {} | {} / {} |".format(
            fmt(int(n)), ready(x), push, fmt(mib(x.get("rss_kb")), 1),
            fmt(mib(x.get("rss_peak_any_kb")), 1),
            fmt(x.get("idle_cpu_pct"), 2), back(rh),
            "{} / {}".format(fmt(rh.get("snapshots")),
                             fmt(rh.get("resumes"))) if rh else "—",
            back(x.get("restart_vswitchd")),
            fmt(x.get("flows_per_channel"), 2),
            fmt(x.get("meters_per_channel"), 2)))
    w("")
    w("Context: br-int and the other processes (RSS at rest; CPU over the "
      "idle window), and what the logs said.")
    w("")
    w("| N | setup: veths, keys, simulator, ports (s) | chand flows / all "
      "flows / meters | ovs-vswitchd RSS MiB / idle CPU % | ovsdb-server "
      "idle CPU % | simulator RSS MiB / idle CPU % | ovs-vswitchd "
      "restart: answering again after (s) | new sessions after "
      "ovs-vswitchd restart | chand-host / ovs-vswitchd log warnings |")
    w("|---|---|---|---|---|---|---|---|---|")
    for n, x in sorted(lv.items(), key=lambda kv: int(kv[0])):
        vs = x.get("vswitchd") or {}
        sim = x.get("sim") or {}
        lw = x.get("log_warnings") or {}
        rv = x.get("restart_vswitchd")
        w("| {} | {} | {} / {} / {} | {} / {} | {} | {} / {} | {} | {} | "
          "{} / {} |".format(
              fmt(int(n)), fmt(x.get("setup_s"), 1), fmt(x.get("flows")),
              fmt(x.get("flows_all")), fmt(x.get("meters")),
              fmt(mib(vs.get("rss_kb")), 1), fmt(vs.get("idle_cpu_pct"), 2),
              fmt((x.get("ovsdb_server") or {}).get("idle_cpu_pct"), 2),
              fmt(mib(sim.get("rss_kb")), 1), fmt(sim.get("idle_cpu_pct"), 2),
              fmt(rv.get("started_s"), 1) if rv else "—",
              fmt(rv.get("host_sessions")) if rv else "—",
              fmt(lw.get("chand-host")), fmt(lw.get("ovs-vswitchd"))))
    w("")
    tg = sc.get("targets") or []
    if tg:
        n = tg[0]["n"]
        w("Targets (issue 19) at the largest N measured, {:,}{}:".format(
            n, "" if n == SCALE_TARGET_N else
            " (the targets are for {:,} channels)".format(SCALE_TARGET_N)))
        w("")
        w("| figure | value | target | |")
        w("|---|---|---|---|")
        for t in tg:
            v = t["value"]
            if v is None:
                val = "not within {} s".format(fmt(st.get("wait_s"))) \
                    if t["unit"] == "s" else "n/a"
            else:
                val = "{} {}".format(fmt(v, 1 if t["unit"] == "s" else None),
                                     t["unit"])
            if t.get("judged") is False:
                verdict = "not judged (idle window under 20 s)"
            else:
                verdict = "met" if t["met"] else "**missed**"
            w("| {} | {} | {} | {} |".format(t["what"], val, t["limit"],
                                             verdict))
        w("")
    w("Per-N logs, samples and the simulator's status: the raw directory's "
      "`scale/` (`bench/report.py --raw` re-renders this section from its "
      "`result-N.json`).")
    w("")


def pct_of(x):
    return "n/a" if x is None else "{:.0f} %".format(100 * x)


# --- 13. The OVS-DPDK host lane ------------------------------------------

DPDK_PHASES = ("ceilings", "throughput", "latency", "large")


def dpdk(raw):
    """Section 13: the phases repeated on the OVS-DPDK host lane, read
    from RAW/dpdk with the same functions as the kernel-socket lane's."""
    d = os.path.join(raw, "dpdk")
    if not os.path.isdir(d):
        return {}
    setup = load(os.path.join(d, "setup.json"))
    if not setup:
        problem("the OVS-DPDK lane did not finish (no setup.json)")
        return {"measured": False}
    out = {"measured": True, "setup": setup,
           "ceilings": ceilings(d), "throughput": throughput(d),
           "latency": latency(d), "large": large(d), "pmd": {}}
    for name in ("hv", "nic"):
        txt = read_text(os.path.join(d, "pmd-stats-{}.txt".format(name)))
        st = {}
        for key, pat in (("packets", r"packets received:\s*(\d+)"),
                         ("idle_pct", r"idle cycles:\s*\d+\s*\(([\d.]+)\s*%"),
                         ("busy_pct",
                          r"processing cycles:\s*\d+\s*\(([\d.]+)\s*%"),
                         ("sleep_pct",
                          r"sleep iterations:\s*\d+\s*\(([\d.]+)\s*%")):
            m = re.search(pat, txt)
            if m:
                st[key] = float(m.group(1))
        out["pmd"][name] = st
    if setup.get("inject") != "openflow" and setup.get("inject") is not None:
        out["inject_note"] = setup["inject"]
    for ph in setup.get("phases", []):
        if not out.get(ph):
            problem("the OVS-DPDK lane measured nothing in its {} phase"
                    .format(ph))
    return out


def dig(x, *path):
    """x[path[0]][path[1]]..., or None where a level is missing."""
    for p in path:
        x = (x or {}).get(p)
    return x


def dpdk_rows(r):
    """(label, kernel stat, DPDK stat, digits) for each figure either lane
    has, in the order of sections 1 to 7."""
    dp = r["dpdk"]
    figs = []
    for path in ("a", "b"):
        for size in ("128", "1400"):
            for key, what in (("ceiling_pps", "frames/s delivered"),
                              ("lossfree_pps", "loss-free frames/s")):
                figs.append(("ceiling ({}) {} B, {}".format(path, size, what),
                             ("ceilings", path, size, key), None))
    for kind, key, label in (
            ("msgs", "msgs_from_commit",
             "acknowledged messages/s (Record rows, --max-batch=1)"),
            ("msgsets", "msgs_from_commit",
             "acknowledged messages/s (one Record_Set, --max-batch=1)"),
            ("recs", "rate_from_commit", "records/s (Record rows, batched)"),
            ("sets", "rate_from_commit",
             "records/s (one Record_Set, batched)")):
        figs.append((label, ("throughput", kind, key), None))
    for rate in sorted(set(r["latency"]) | set(dp["latency"]), key=int):
        for p in ("p50", "p99"):
            figs.append(("push → applied {} at {} msg/s (ms)".format(
                p, fmt(int(rate))),
                ("latency", rate, "push_to_applied", p + "_ms"), 2))
    for size in dp["large"] or r["large"]:
        figs.append(("large value {} (MB/s)".format(size),
                     ("large", size, "mb_per_s"), 1))
    rows = []
    for label, path, digits in figs:
        k, v = dig(r, *path), dig(dp, *path)
        if k or v:
            rows.append((label, k, v, digits))
    return rows


def dpdk_md(r, w):
    dp = r.get("dpdk") or {}
    if not dp:
        return
    w("## 13. The OVS-DPDK host lane")
    w("")
    if not dp.get("measured"):
        w("**NOT MEASURED: the OVS-DPDK lane did not finish** (see the "
          "harness's output).")
        w("")
        return
    st = dp["setup"]
    w("The phases {} again on a third topology of the same shape, after "
      "the others: the hypervisor runs {} (`{}`, {}), `br-int` is a "
      "`{}` bridge, and `chb-vm1`'s vNIC is a `{}` port whose other end "
      "is DPDK's `virtio_user` in one more OVS-DPDK instance standing in "
      "for the VM's NIC (doc/operations.md, \"OVS-DPDK\").  chand-host "
      "injected by {}.  Hypervisor settings: `{}`.".format(
          ", ".join(st.get("phases", [])), st.get("ovs", "?"),
          st.get("vswitchd", "?"), st.get("dpdk_version") or "DPDK ?",
          st.get("datapath_type", "?"), st.get("vnic_type", "?"),
          {"openflow": "PACKET_OUT (Debian's OVS-DPDK has no chand port "
                       "type)",
           "port": "the chand port"}.get(st.get("inject"),
                                         st.get("inject") or "?"),
          st.get("other_config", "?")))
    w("")
    m = re.search(r'pmd-maxsleep="?(\d+)', st.get("other_config") or "")
    spin = m is not None and m.group(1) == "0"
    w("**Not DPDK's absolute speed.**  This machine has {} CPUs.  Both "
      "PMD threads (the hypervisor's and the NIC instance's) poll on "
      "CPU 1 {}, sharing it with each other and with every daemon the "
      "scheduler puts there; a DPDK host gives each PMD a core of its "
      "own, isolated.  Here a busy PMD takes CPU from chand and from the "
      "lane's other work, so the ratio below compares the two lanes on "
      "this machine only.".format(
          st.get("cpus", "?"),
          "and never sleep (`pmd-maxsleep=0`: they take that CPU whole)"
          if spin else "and sleep when idle (`pmd-maxsleep`, up to {} µs)"
          .format(m.group(1) if m else "?")))
    w("")
    w("| figure | kernel-socket lane | OVS-DPDK lane | DPDK / kernel |")
    w("|---|---|---|---|")
    for label, k, v, digits in dpdk_rows(r):
        rat = ratio(med(v), med(k))
        w("| {} | {} | {} | {} |".format(
            label, fm(k, digits=digits), fm(v, digits=digits),
            fmt(rat, 2) + "×" if rat is not None else "—"))
    w("")
    share = st.get("pmd_cpu_share") or {}
    pm = dp.get("pmd") or {}
    w("PMD threads over the lane's {} s of phases: the hypervisor's took "
      "{} of a CPU ({} % of its cycles processing packets, {} packets), "
      "the NIC instance's {} of a CPU ({} % processing).".format(
          fmt(st.get("wall_s"), 0),
          fmt(share.get("hv"), 2), fmt((pm.get("hv") or {}).get("busy_pct"),
                                        1),
          fmt((pm.get("hv") or {}).get("packets")),
          fmt(share.get("nic"), 2),
          fmt((pm.get("nic") or {}).get("busy_pct"), 1)))
    w("")
    lv = dp.get("large") or {}
    for size, x in lv.items():
        if not x["delivered"]:
            w("- OVS-DPDK lane: **{}** not delivered: {}.".format(size,
                                                                 x["why"]))
    if any(not x["delivered"] for x in lv.values()):
        w("")


# --- Report ---------------------------------------------------------------

def targets(r):
    out = []
    ca = r["ceilings"].get("a", {})
    a128 = (ca.get("128") or {}).get("ceiling_pps")
    a1400 = (ca.get("1400") or {}).get("ceiling_pps")
    t = r["throughput"]
    best_msgs, msgs_form = None, None
    for kind, name in (("msgs", "Record rows"), ("msgsets", "one Record_Set")):
        x = t.get(kind, {}).get("msgs_from_commit")
        if x and (best_msgs is None or x["median"] > best_msgs):
            best_msgs, msgs_form = x["median"], name
    if a128 and best_msgs:
        ratio_ = best_msgs / a128["median"]
        out.append({"target": "acknowledged messages/s (one record each) "
                              ">= 50 % of ceiling (a) at that frame size",
                    "value": ratio_, "unit": "of ceiling",
                    "form": msgs_form, "met": ratio_ >= 0.5})
    best, form = None, None
    for kind, name in (("recs", "Record rows"), ("sets", "one Record_Set")):
        x = t.get(kind, {}).get("rate_from_commit")
        if x and (best is None or x["median"] > best):
            best, form = x["median"], name
    if best is not None:
        out.append({"target": ">= 100,000 records/s durably applied, with "
                              "batching",
                    "value": best, "unit": "records/s ({})".format(form),
                    "met": best >= 100000})
    fs = r["meta"].get("fsync_ms") or {}
    lat = r["latency"].get("1000", {}).get("push_to_applied", {})
    for p, slack in (("p50", 1.0), ("p99", 3.0)):
        v = (lat.get(p + "_ms") or {}).get("median")
        f = fs.get(p)
        if v is not None and f is not None:
            out.append({"target": "push → applied {} <= fsync {} + {:g} ms "
                                  "at 1,000 msg/s".format(p, p, slack),
                        "value": v, "unit": "ms (limit {})".format(
                            fmt(f + slack)),
                        "met": v <= f + slack})
    big = r["large"].get("64M")
    if big:
        v = big["mb_per_s"]["median"] if big["mb_per_s"] else 0.0
        raw_mb = (a1400["median"] * 1400 / 1e6) if a1400 else None
        out.append({"target": "64 MiB value at >= 25 MB/s and >= 50 % of "
                              "the raw path's byte ceiling",
                    "value": v, "unit": "MB/s" + (
                        " ({:.0f} % of {:.0f} MB/s, ceiling (a) at "
                        "1,400 B)".format(100 * v / raw_mb, raw_mb)
                        if raw_mb and v else ""),
                    "met": bool(big["delivered"] and v >= 25
                                and (not raw_mb or v >= raw_mb / 2))})
    kind = "sets" if t.get("sets", {}).get("cost") else "recs"
    daemons = t.get(kind, {}).get("cost", {}).get("daemons", {})
    if daemons:
        total = sum(med(c.get("cpu_s_per_million")) or 0
                    for c in daemons.values())
        out.append({"target": "CPU s per million records (chand-host, "
                              "ovsdb-server, chand-guest, both "
                              "ovs-vswitchd) <= 20",
                    "value": total, "unit": "s ({})".format(
                        "one Record_Set" if kind == "sets"
                        else "Record rows"),
                    "met": total <= 20})
    ij = r.get("inject") or {}
    if ij.get("measured") is False:
        out.append({"target": "chand port: acknowledged messages/s >= 3x "
                              "the PACKET_OUT path",
                    "value": None, "unit": "not measured", "met": False})
    out += ij.get("targets", [])
    out += [t for t in (r.get("scale") or {}).get("targets", [])
            if t.get("judged") is not False]
    return out


def md_report(r):
    L = []
    w = L.append
    m = r["meta"]
    w("# chand benchmark — {}".format(m["date"]))
    w("")
    w("Produced by `scripts/bench{}` ({} run{} per figure; each figure is "
      "the median, with min–max in parentheses when there are several "
      "runs). Method, helpers and knobs: [doc/bench.md](../../doc/bench.md)."
      .format(" --quick" if m["quick"] else "", m["runs"],
              "" if m["runs"] == 1 else "s"))
    w("")
    w("| machine | |")
    w("|---|---|")
    w("| tree | `{}` |".format(m.get("git", "?")))
    w("| CPU | {} × {} |".format(m.get("cpus"), m.get("cpu_model", "?")))
    w("| kernel | {} |".format(m.get("kernel")))
    w("| Open vSwitch | {} (userspace datapath) |".format(m.get("ovs")))
    ist = (r.get("inject") or {}).get("setup")
    if ist:
        w("| Open vSwitch of section 8 | {}, with ovs-patches/ (`{}`) |"
          .format(ist.get("ovs"), ist.get("prefix")))
    fs = m.get("fsync_ms")
    if fs:
        w("| fsync of a 4 KiB write on the datastores' file system | p50 "
          "{} ms, p90 {} ms, p99 {} ms, max {} ms |".format(
              fmt(fs["p50"]), fmt(fs["p90"]), fmt(fs.get("p99")),
              fmt(fs["max"])))
    w("| load average at start / end | {} / {} |".format(
        " ".join(m.get("loadavg_start", [])),
        " ".join(m.get("loadavg_end", []))))
    share = r["throughput"].get("recs", {}).get("cost", {}) \
        .get("others_busy_share")
    if share:
        w("| CPU used by processes outside the benchmark during the "
          "batched runs | {} of the machine |".format(
              fm(share, digits=0, scale=100) + " %"))
    w("")
    if share and share["median"] > 0.15:
        w("**The machine was shared**: other work used a noticeable part "
          "of the two CPUs during the run, so wall-clock figures (rates, "
          "latencies) are pessimistic and noisy; CPU seconds per million "
          "records are the steadier figure.")
        w("")

    # Targets.
    w("## Targets (reported, not asserted)")
    w("")
    w("| target | measured | met |")
    w("|---|---|---|")
    for t in r["targets"]:
        v = t["value"]
        if t["unit"] == "of ceiling":
            val = "{:.0f} % of ceiling (a){}".format(
                v * 100, " ({})".format(t["form"]) if t.get("form") else "")
        elif t["unit"] == "MB/s" and not v:
            val = "not delivered (see section 7)"
        elif t["unit"] == "not measured":
            val = "**not measured: no patched Open vSwitch** (section 8)"
        elif t["unit"] == "x the PACKET_OUT path":
            val = "{}× ({} vs {}; section 8)".format(
                fmt(v), fmt(t["port"]), fmt(t["openflow"]))
        else:
            val = "{} {}".format(fmt(v), t["unit"])
        w("| {} | {} | {} |".format(t["target"], val,
                                    "yes" if t["met"] else "**no**"))
    w("")
    w("Why each missed target is missed and what would change it: "
      "[below](#what-limits-each-number).")
    w("")

    # 1. Ceilings.
    c = r["ceilings"]
    if c:
        w("## 1. Raw path ceilings (measured first, same topology)")
        w("")
        w("Offered-rate sweep; a point is one burst of datagrams at a paced "
          "rate (\"unpaced\": as fast as the sender can).  *Ceiling* = the "
          "highest delivered rate of the sweep; *loss-free* = the highest "
          "offered rate that lost under 1 %.")
        w("")
        w("- **(a) PACKET_OUT**: UDP frames from the host endpoint to the "
          "guest endpoint, injected by `chand-bench inject` over "
          "`br-int.mgmt` as OpenFlow PACKET_OUT with "
          "`set_field:<chan-id>->pkt_mark, output:TABLE` (what chand-host "
          "sends), through the real host flows (push VLAN 4094, out the "
          "vNIC), the veth, the guest bridge's real flows (pop VLAN, out "
          "`chand0`), counted by a UDP socket bound to the guest daemon's "
          "address and port on `chand0` (chand-guest stopped meanwhile).")
        w("- **(b) plain UDP**: a UDP socket in the hypervisor namespace "
          "sends over an OVS internal port (a tap) on `br-int`; a flow "
          "outputs it to the vNIC; in the VM a flow on `br-chan` outputs it "
          "from `eth0` to a second internal port (a tap) where a UDP socket "
          "counts it.  So it crosses both Open vSwitch instances like a "
          "channel frame, without PACKET_OUT (host) or chand's flows.")
        w("")
        w("| path | datagram | ceiling (pkts/s) | loss-free (pkts/s) |")
        w("|---|---|---|---|")
        for path in ("a", "b"):
            for size, s in c.get(path, {}).items():
                lf = s["lossfree_pps"]
                w("| ({}) | {} B | {} | {} |".format(
                    path, size, fm(s["ceiling_pps"]),
                    fm(lf) if lf and lf["max"] > 0
                    else "none (every point lost ≥ 1 %)"))
        w("")
        if c.get("a_from_transfer"):
            w("Only (a) at 1,400 B here: the ceilings phase did not run, "
              "and the transfer phase (section 10) measured it for its "
              "ratios, with the same sweep.")
            w("")
        w("<details><summary>Sweeps (median delivered rate and loss per "
          "offered rate)</summary>")
        w("")
        w("| path | size | offered | delivered pkts/s | loss | share of "
          "the loss dropped at the guest OVS's AF_PACKET socket |")
        w("|---|---|---|---|---|---|")
        for path in ("a", "b"):
            for size, s in c.get(path, {}).items():
                for p in s["sweep"]:
                    w("| ({}) | {} B | {} | {} | {} | {} |".format(
                        path, size, p["offered_rate"] if p["offered_rate"]
                        != "unpaced" else "unpaced ({})".format(
                            fm(p["offered_pps"])),
                        fm(p["delivered_pps"]),
                        fm(p["loss"], digits=0, scale=100) + " %",
                        fm(p["lost_at_guest_afpacket"], digits=0, scale=100)
                        + " %" if p["lost_at_guest_afpacket"] else "—"))
        w("")
        w("</details>")
        w("")
        ga = c.get("guest_afpacket")
        if ga:
            w("After the sweeps, the guest ovs-vswitchd's AF_PACKET socket "
              "on `eth0` had a receive buffer of {:,} bytes and had "
              "dropped {:,} frames (`ss -0 -m`, `d` counter); the last "
              "column above compares that counter before and after each "
              "point with the datagrams lost.".format(ga["rcvbuf"],
                                                      ga["drops"]))
            w("")

    # 2. Throughput.
    t = r["throughput"]
    ca = c.get("a", {})
    if t:
        w("## 2. Channel throughput (durably applied in the guest)")
        w("")
        w("N records for one VM pushed as **one OVSDB transaction**; the "
          "clock runs from the transaction's commit (its reply) until the "
          "guest datastore's committed `ops_applied` counter shows all N "
          "(polled every 0.5 ms; chand-guest commits with "
          "`synchronous=FULL`, so committed is durable).  Cross-checked "
          "with `sqlite3` (count of the records) and the `Channel` row "
          "(`applied_count`).  *Steady* excludes the time before the first "
          "record is applied (chand-host digesting the transaction).")
        w("")
        w("The second and fourth columns push the same records as the "
          "entries of **one `Record_Set` row** (doc/chan-db.md) instead of "
          "one `Record` row each.")
        w("")
        w("| figure | messages (--max-batch=1) | messages, from one "
          "Record_Set row | records (batching, default) | records in one "
          "Record_Set row |")
        w("|---|---|---|---|---|")
        msgs, recs = t.get("msgs", {}), t.get("recs", {})
        sets, msgsets = t.get("sets", {}), t.get("msgsets", {})
        kinds = (msgs, msgsets, recs, sets)

        def row3(label, key, bold=None):
            cells = []
            for i, k in enumerate(kinds):
                v = fm(k.get(key))
                cells.append("**{}**".format(v) if bold == i else v)
            w("| {} | {} |".format(label, " | ".join(cells)))
        row3("records per run", "records")
        row3("messages (frames) applied", "messages")
        row3("**acknowledged messages/s** (commit → all applied)",
             "msgs_from_commit", bold=1 if msgsets else 0)
        row3("**records/s** (commit → all applied)", "rate_from_commit",
             bold=3 if sets else 2)
        row3("records/s, steady (first → last applied)", "rate_steady")
        a128 = ca.get("128", {}).get("ceiling_pps")
        a1400 = ca.get("1400", {}).get("ceiling_pps")
        if a128 and msgs.get("msgs_from_commit"):
            big = (a1400 or a128)["median"]

            def share(k, ceil):
                m = (k.get("msgs_from_commit") or {}).get("median")
                return ("{:.1f} % of {}".format(100 * m / ceil, fmt(ceil))
                        if m else "—")
            w("| ratio to ceiling (a) (frames/s over ceiling at that frame "
              "size) | {} | {} | {} | {} |".format(
                  share(msgs, a128["median"]), share(msgsets, a128["median"]),
                  share(recs, big), share(sets, big)))
        row3("OVSDB ingest (send → commit reply), s", "ingest_s")
        row3("commit → first record applied, s", "host_first_s")
        row3("first → last record applied, s", "apply_s")
        row3("Channel row shows all applied, s after the guest",
             "channel_row_lag_s")
        w("| frames retransmitted / retransmission timeouts | {} |".format(
            " | ".join("{} / {}".format(fm(k.get("frames_resent")),
                                        fm(k.get("timeouts")))
                       for k in kinds)))
        row3("guest commits (group commit)", "guest_commits")
        w("")
        ut = (r.get("upstream") or {}).get("throughput")
        if ut and recs.get("rate_from_commit"):
            w("The other direction, records a guest publishes until they "
              "are in the Chan DB's `Guest_Record` ([section 9]"
              "(#9-upstream-records-the-guests-publish)): **{} records/s**, "
              "{}× the downstream records/s above.".format(
                  fm(ut["rate"]), fmt(ratio(med(ut["rate"]),
                                            med(recs["rate_from_commit"])),
                                      2)))
            w("")

    # 3. Latency.
    lat = r["latency"]
    if lat:
        w("## 3. Latency")
        w("")
        w("`chand-bench pushrate` updates 200 records of one VM round-robin "
          "at a fixed offered rate, one OVSDB transaction each, pipelined "
          "(open loop), logging CLOCK_MONOTONIC just before each write; "
          "`chand-bench watch` in the VM logs when chand-guest's local API "
          "notifies the change (after its commit); `chand-bench capture` on "
          "the vNIC's host end (AF_PACKET, kernel timestamps) sees each "
          "DATA frame leave and the ACK that covers it come back, and "
          "decodes which records each frame carried.  One clock, one "
          "machine.  Default chand-host options.")
        w("")
        w("| offered msg/s | updates seen applied, of sent | push → "
          "applied p50 / p99 / p99.9 (ms) | frame → ack p50 / p99 / p99.9 "
          "(ms) | records per frame |")
        w("|---|---|---|---|---|")
        for rate, x in lat.items():
            pa, fa = x["push_to_applied"], x["frame_to_ack"]
            w("| {} | {} of {} | {} / {} / {} | {} / {} / {} | {} |".format(
                rate, fm(x["samples"]), fmt(med(x["sent"])),
                fm(pa["p50_ms"]), fm(pa["p99_ms"]),
                fm(pa["p999_ms"]), fm(fa["p50_ms"]), fm(fa["p99_ms"]),
                fm(fa["p999_ms"]), fm(x["records_per_frame"])))
        w("")
        w("An update is not seen when chand-host had not yet sent the "
          "key's previous version: it sends only the latest (by design), "
          "so at high rates some versions are never delivered.")
        w("")
        w("Where push → applied goes (per record, p50 / p99, ms):")
        w("")
        w("| offered msg/s | push → DATA frame on the vNIC (ovsdb-server, "
          "chand-host, host OVS) | frame → its ACK (guest OVS, chand-guest "
          "apply + fsync, ACK back) | ACK → API notification |")
        w("|---|---|---|---|")
        for rate, x in lat.items():
            a, b, cc = (x["push_to_frame"], x["frame_to_ack_per_record"],
                        x["ack_to_notified"])
            w("| {} | {} / {} | {} / {} | {} / {} |".format(
                rate, fm(a["p50_ms"]), fm(a["p99_ms"]), fm(b["p50_ms"]),
                fm(b["p99_ms"]), fm(cc["p50_ms"]), fm(cc["p99_ms"])))
        w("")
        if any(x.get("host_hist") for x in lat.values()):
            w("Cross-check with chand-host's own latency histograms "
              "(`chanctl channel-show`, after the run minus before; "
              "chand-host(8), LATENCY).  Its clock starts when chand-host "
              "reads the change (*seen*), after ovsdb-server committed and "
              "sent it, and its *acked* is the guest's ACK, after the "
              "guest's commit: so seen → acked is the bench's push → "
              "applied less the ovsdb-server leg and the API notification.  "
              "Counts are messages, including the 200 keys inserted before "
              "the clock; percentiles are bucket upper bounds (at most "
              "12.5 % high).  p50 / p99, ms:")
            w("")
            w("| offered msg/s | bench: push → applied | chand-host: seen → "
              "acked | seen → sent | sent → acked | acked → applied (Channel "
              "row committed) | seen → applied | messages counted |")
            w("|---|---|---|---|---|---|---|---|")
            for rate, x in lat.items():
                hh = x.get("host_hist") or {}

                def hp(stage):
                    h = hh.get(stage) or {}
                    return "{} / {}".format(fm(h.get("p50_ms")),
                                            fm(h.get("p99_ms")))
                pa = x["push_to_applied"]
                w("| {} | {} / {} | {} | {} | {} | {} | {} | {} |".format(
                    rate, fm(pa["p50_ms"]), fm(pa["p99_ms"]),
                    hp("seen_to_acked"), hp("seen_to_sent"),
                    hp("sent_to_acked"), hp("acked_to_applied"),
                    hp("seen_to_applied"),
                    fm((hh.get("seen_to_acked") or {}).get("n"))))
            w("")

    # 4. Fan-out.
    fo = r["fanout"]
    if fo:
        w("## 4. Fan-out")
        w("")
        w("One record for all VMs (`vm` empty) inserted at a time, 4 per "
          "second; a watcher in every VM.  Time from the write until every "
          "VM has applied it (median and min–max over the records).")
        w("")
        w("| VMs | records | all applied (ms) | first VM applied (ms) |")
        w("|---|---|---|---|")
        for level, x in fo.items():
            w("| {} | {} | {} | {} |".format(
                level, x["records"], fm(x["all_applied_ms"]),
                fm(x["first_applied_ms"])))
        w("")

    # 5. Control plane.
    cp = r["control_plane"]
    if cp:
        w("## 5. Control plane: an `ovsdb-client transact` write until "
          "applied")
        w("")
        w("`chand-bench cpwrite` runs `ovsdb-client transact` (an update of "
          "one record by key and vm) once every 50 ms after the previous "
          "one returns; the watcher in the VM timestamps the change.  The "
          "time includes starting ovsdb-client.")
        w("")
        wa, oc = cp["write_to_applied"], cp["ovsdb_client_exit"]
        w("| samples per run | write → applied p50 (ms) | p99 (ms) | "
          "ovsdb-client alone (start → exit) p50 (ms) |")
        w("|---|---|---|---|")
        w("| {} | {} | {} | {} |".format(fm(cp["samples"]),
                                          fm(wa["p50_ms"]), fm(wa["p99_ms"]),
                                          fm(oc["p50_ms"])))
        w("")

    # 6. Cost.
    if t:
        w("## 6. Cost per million records")
        w("")
        w("CPU seconds (user + system, from `/proc/PID/stat`) used during "
          "the throughput runs, scaled to a million records, and peak RSS "
          "(`VmHWM`, reset through `clear_refs` before each run).")
        w("")
        w("| process | CPU s / million records (batching) | peak RSS MB | "
          "CPU s / million records (one Record_Set row) | peak RSS MB | "
          "CPU s / million messages (--max-batch=1) | peak RSS MB |")
        w("|---|---|---|---|---|---|---|")
        rc = t.get("recs", {}).get("cost", {}).get("daemons", {})
        sc = t.get("sets", {}).get("cost", {}).get("daemons", {})
        mc = t.get("msgs", {}).get("cost", {}).get("daemons", {})
        totals = [0.0, 0.0, 0.0]
        for name in rc or mc:
            cells = []
            for i, c in enumerate((rc, sc, mc)):
                x = c.get(name, {})
                cells += [fm(x.get("cpu_s_per_million"), digits=1),
                          fm(x.get("peak_rss_mb"), digits=1)]
                totals[i] += med(x.get("cpu_s_per_million")) or 0
            w("| {} | {} |".format(name, " | ".join(cells)))
        w("| **all together** | **{:.1f}** | | **{:.1f}** | | **{:.1f}** | "
          "|".format(*totals))
        w("")

    # 7. Large values.
    lv = r["large"]
    if lv:
        w("## 7. Large values")
        w("")
        w("One record whose value is a JSON string of the given size "
          "(`chand-bench pushbig` writes the OVSDB request as raw JSON: "
          "ovsdb-client cannot take it on its command line); default "
          "chand-host options.  MB/s = 10⁶ bytes per second from the "
          "commit until the guest datastore has it; the capture on the "
          "vNIC splits that time.")
        w("")
        w("| value | delivered | MB/s | seconds | chand-host: commit → "
          "first frame (s) | first frame → committed in the guest (s) | "
          "DATA frames | resent / timeouts |")
        w("|---|---|---|---|---|---|---|---|")
        for size, x in lv.items():
            w("| {} ({:,} B) | {} | {} | {} | {} | {} | {} | {} / {} |"
              .format(size, x["bytes"] or 0,
                      "yes" if x["delivered"] else "**no**",
                      fm(x["mb_per_s"]), fm(x["seconds"]),
                      fm(x["host_prep_s"]), fm(x["transfer_s"]),
                      fm(x["frames"]), fm(x["frames_resent"]),
                      fm(x["timeouts"])))
        w("")
        for size, x in lv.items():
            if not x["delivered"]:
                w("- **{}** not delivered: {}.".format(size, x["why"]))
        w("")

    # 7b. MTU.
    mtu_md(r, w)

    # 8. Injection path.
    inject_md(r, w)

    # 9. Upstream.
    upstream_md(r, w)

    # 10. File transfer.
    transfer_md(r, w)

    # 10b. qemu-ga endpoint.
    qga_md(r, w)

    # 11. Clustered Chan DB.
    cluster_md(r, w)

    # 12. Scale.
    scale_md(r, w)

    # 13. The OVS-DPDK host lane.
    dpdk_md(r, w)

    # Knobs.
    k = r["knobs"]
    if k:
        w("## Knobs measured")
        w("")
        w("chand-host `--window` (frames in flight; `msgs-` rows with "
          "`--max-batch=1`), as many runs as the other figures; and, once, "
          "the same kind of push against a VM that already holds many "
          "keys (`keys-K-push-N`: N records pushed while the VM holds K).")
        w("")
        w("| run | records | records/s (commit → applied) | steady "
          "records/s | commit → first applied (s) | frames retransmitted "
          "| timeouts |")
        w("|---|---|---|---|---|---|---|")
        for name, x in k.items():
            if name.startswith("lat-"):
                continue
            w("| {} | {} | {} | {} | {} | {} | {} |".format(
                name, fm(x["records"]), fm(x["rate_from_commit"]),
                fm(x.get("rate_steady")), fm(x.get("host_first_s")),
                fm(x.get("frames_resent")), fm(x.get("timeouts"))))
        w("")
        for name, x in k.items():
            if name.startswith("lat-"):
                pa, pf = x["push_to_applied"], x["push_to_frame"]
                w("Latency at 1,000 msg/s with the VM holding {} keys: push "
                  "→ applied p50 {} / p99 {} ms; push → frame p50 {} / "
                  "p99 {} ms (compare section 3, where the VM holds a few "
                  "hundred keys).".format(
                      fmt(int(name.split("-")[-1])),
                      fmt(pa.get("p50_ms")), fmt(pa.get("p99_ms")),
                      fmt(pf.get("p50_ms")), fmt(pf.get("p99_ms"))))
                w("")

    # Profile.
    p = r["profile"]
    if p and (p.get("chand_by_dso") or p.get("ovs_by_dso")):
        w("## Profile (perf, during one batched run)")
        w("")
        w("Two `perf record -F 499` sessions during one batched run "
          "({} records/s): chand-host and chand-guest with DWARF call "
          "graphs, and the four OVS daemons (stripped Debian binaries: by "
          "library only).  Shares are of each session's samples."
          .format(fmt(p.get("records_per_s"))))
        w("")
        w("| % of chand samples | process | object |")
        w("|---|---|---|")
        for row in p["chand_by_dso"][:8]:
            w("| {:.1f} | {} | {} |".format(row["pct"], row["comm"],
                                            row["what"]))
        w("")
        w("| % of OVS samples | process | object |")
        w("|---|---|---|")
        for row in p["ovs_by_dso"][:10]:
            w("| {:.1f} | {} | {} |".format(row["pct"], row["comm"],
                                            row["what"]))
        w("")
        w("chand-host and chand-guest functions including what they call "
          "(% of the chand samples; entry points left out):")
        w("")
        w("| % | process | function |")
        w("|---|---|---|")
        n = 0
        skip = ("_start", "main", "__libc_start_main",
                "__libc_start_call_main", "__libc_start_main_impl")
        for row in p["children"]:
            fn = row["what"].replace("[.] ", "").strip()
            fn = re.sub(r"\s*\(inlined\)$", "", fn)
            if fn.split("@")[0] in skip or fn.startswith("0x"):
                continue
            if n < 28:
                w("| {:.1f} | {} | `{}` |".format(row["pct"], row["comm"],
                                                  fn))
                n += 1
        w("")

    w(limits_md(r))
    w("")
    w(daemon_changes_md())
    return "\n".join(L) + "\n"


INJECT_ROWS = [
    # (label, figure key(s), digits; "count": no ratio)
    ("**acknowledged messages/s** (`--max-batch=1`, commit → all applied)",
     "msgs_per_s", None),
    ("messages/s, steady (first → last applied)", "msgs_steady", None),
    ("**records/s** (batching, commit → all applied)", "records_per_s",
     None),
    ("records/s, steady", "records_steady", None),
    ("push → applied p50 (ms) at {rate} msg/s", "push_to_applied_p50_ms",
     None),
    ("**push → applied p99 (ms)** at {rate} msg/s", "push_to_applied_p99_ms",
     None),
    ("push → applied p99.9 (ms)", "push_to_applied_p999_ms", None),
    ("push → DATA frame on the vNIC p50 / p99 (ms)",
     ("push_to_frame_p50_ms", "push_to_frame_p99_ms"), None),
    ("frame → its ACK p50 / p99 (ms)",
     ("frame_to_ack_per_record_p50_ms", "frame_to_ack_per_record_p99_ms"),
     None),
    ("updates seen applied (latency runs)", "lat_samples", "count"),
    ("frames retransmitted / timeouts (messages runs)",
     ("msgs_frames_resent", "msgs_timeouts"), "count"),
    ("frames retransmitted / timeouts (records runs)",
     ("recs_frames_resent", "recs_timeouts"), "count"),
    ("frames dropped at the guest OVS's AF_PACKET socket: messages / "
     "records / latency runs",
     ("msgs_guest_afpacket_drops", "recs_guest_afpacket_drops",
      "lat_guest_afpacket_drops"), "count"),
    ("CPU µs per message: chand-host", "cpu_us_per_msg chand-host", 1),
    ("CPU µs per message: ovs-vswitchd (host)",
     "cpu_us_per_msg ovs-vswitchd(host)", 1),
    ("CPU µs per message: ovsdb-server (host)",
     "cpu_us_per_msg ovsdb-server(host)", 1),
    ("CPU µs per message: chand-guest", "cpu_us_per_msg chand-guest(vm)", 1),
    ("CPU µs per message: ovs-vswitchd (VM)",
     "cpu_us_per_msg ovs-vswitchd(vm)", 1),
    ("PACKET_OUTs / PACKET_INs (messages runs)",
     ("msgs_packet_outs", "msgs_packet_ins"), "count"),
    ("frames sent / received through the chand port (messages runs)",
     ("msgs_port_tx_frames", "msgs_port_rx_frames"), "count"),
    ("frames per `sendmmsg()` to the port (messages runs)",
     "msgs_port_frames_per_tx_batch", "count1"),
]

CPU_NAMES = ("chand-host", "ovs-vswitchd(host)", "ovsdb-server(host)",
             "chand-guest(vm)", "ovs-vswitchd(vm)")


def inject_md(r, w):
    ij = r.get("inject") or {}
    if not ij:
        return
    w("## 8. Injection path: chand port vs OpenFlow")
    w("")
    if not ij.get("measured"):
        w("**NOT MEASURED: the patched Open vSwitch could not be had** — "
          "{}.  The harness failed because of it; `scripts/build-ovs` "
          "builds it (doc/ovs-port.md).".format(ij.get("unavailable")))
        w("")
        return
    st = ij.get("setup", {})
    fg = ij["figures"]
    rate = st.get("latency_rate", 1000)
    w("A second topology of the same shape (hypervisor and `chb-vm1`), "
      "built from the patched Open vSwitch ({}; `{}`, patches {} of "
      "`ovs-patches/series`), measured after the other phases.  Each run measures the same three workloads with "
      "chand-host `--inject=openflow` (PACKET_OUT / PACKET_IN) and with "
      "`--inject=port` (port `chand0` of type `chand`): {} messages "
      "pushed with `--max-batch=1`, {} records with default batching "
      "(both as in section 2), and {} updates at {} msg/s, latency "
      "measured as in section 3.  The two paths alternate within a run "
      "and swap order between runs; the per-run ratio pairs the two "
      "paths' measurements of the same run.  Medians (min–max) over the "
      "runs; on a shared two-CPU machine these are noisy.".format(
          st.get("ovs", "?"), st.get("prefix", "?"),
          ", ".join("`{}`".format(x.split()[-1][:4]) for x in
                    st.get("series", []) if x.startswith("patch")) or "?",
          fmt(st.get("msgs")), fmt(st.get("records")),
          fmt(st.get("latency_count")), fmt(rate)))
    w("")
    w("| figure | OpenFlow | chand port | port / OpenFlow | per-run "
      "ratio |")
    w("|---|---|---|---|---|")
    for label, key, digits in INJECT_ROWS:
        keys = key if isinstance(key, tuple) else (key,)
        if not any(k in fg for k in keys):
            continue
        count = isinstance(digits, str)
        if count:
            digits = 1 if digits == "count1" else None
        cells = []
        for side in ("openflow", "port"):
            cells.append(" / ".join(fm((fg.get(k) or {}).get(side),
                                       digits=digits) for k in keys))
        rat = " / ".join(
            fmt((fg.get(k) or {}).get("ratio_port_to_openflow"), 2) + "×"
            if (fg.get(k) or {}).get("ratio_port_to_openflow") is not None
            and not count else "—" for k in keys)
        pr = " / ".join(
            "{}–{}×".format(fmt(x["min"], 2), fmt(x["max"], 2))
            if x and x["runs"] > 1 and not count else "—"
            for x in ((fg.get(k) or {}).get("ratio_per_run") for k in keys))
        w("| {} | {} | {} | {} | {} |".format(
            label.format(rate=fmt(rate)), cells[0], cells[1], rat, pr))
    w("")
    coarse = (st.get("msgs") or 0) < 2000
    w("CPU µs per message: CPU ticks (10 ms) of each daemon during the "
      "messages runs over the messages{}.".format(
          " — with this few messages (quick mode) a tick is worth {} µs, "
          "so these rows are too coarse to compare".format(
              fmt(1e4 / st["msgs"], 1)) if coarse and st.get("msgs")
          else ""))
    w("")
    w("| target | OpenFlow | chand port | port / OpenFlow | met |")
    w("|---|---|---|---|---|")
    for t in ij.get("targets", []):
        w("| {} | {} | {} | {}× | {} |".format(
            t["target"].replace("chand port: ", ""), fmt(t["openflow"]),
            fmt(t["port"]), fmt(t["value"], 2),
            "yes" if t["met"] else "**no**"))
    w("")
    pc = ij.get("path_checks", {})
    w("Path check (chand-host `host/status` before and after every "
      "measurement; the harness fails if it does not hold): {} of {} "
      "port measurements reported `inject.path` = `port` with no "
      "PACKET_OUT and no PACKET_IN counted and frames through the port "
      "both ways; {} of {} OpenFlow measurements reported `openflow` and "
      "counted PACKET_OUTs.".format(
          pc.get("port", {}).get("ok", 0), pc.get("port", {}).get("runs", 0),
          pc.get("openflow", {}).get("ok", 0),
          pc.get("openflow", {}).get("runs", 0)))
    w("")
    # Where the difference can come from: CPU per message, all daemons.
    tot = {}
    for side in ("openflow", "port"):
        v = [med((fg.get("cpu_us_per_msg " + n) or {}).get(side))
             for n in CPU_NAMES]
        tot[side] = sum(x for x in v if x is not None) if any(
            x is not None for x in v) else None
    hv = {side: med((fg.get("cpu_us_per_msg ovs-vswitchd(host)") or {})
                    .get(side)) for side in ("openflow", "port")}
    mr = (fg.get("msgs_per_s") or {}).get("ratio_port_to_openflow")
    if tot["openflow"] and tot["port"] and hv["openflow"] is not None \
            and not coarse:
        bound = tot["openflow"] / tot["port"]
        tmo = {side: med((fg.get("msgs_timeouts") or {}).get(side))
               for side in ("openflow", "port")}
        secs = {side: (st.get("msgs") or 0) / med(
                    (fg.get("msgs_per_s") or {}).get(side), 1)
                for side in ("openflow", "port")}
        if mr is None:
            rest = ""
        elif mr > 1.1 * bound and None not in tmo.values() \
                and tmo["openflow"] > tmo["port"]:
            rest = ("  The measured ratio is higher because the OpenFlow "
                    "runs also waited for more retransmission timeouts ({} "
                    "per run against {}, 200 ms or more each, in runs of "
                    "about {} s and {} s): one lost burst more or less "
                    "changes a run that short a lot, so this part of the "
                    "ratio varies from run to run (see the per-run "
                    "ratios).".format(fmt(tmo["openflow"]), fmt(tmo["port"]),
                                      fmt(secs["openflow"], 2),
                                      fmt(secs["port"], 2)))
        elif mr > 1.1 * bound:
            rest = ("  The measured ratio is higher: the runs are not "
                    "limited by CPU alone (waiting, other work on the "
                    "machine), and the harness does not separate that.")
        elif mr < 0.9 * bound:
            rest = ("  The measured ratio is lower: the runs are also "
                    "limited by waiting (retransmission timeouts: {} per "
                    "run through OpenFlow, {} through the port) and by "
                    "other work on the machine.".format(
                        fmt(tmo["openflow"]), fmt(tmo["port"])))
        else:
            rest = ""
        w("The port takes the host's ovs-vswitchd out of the per-frame "
          "OpenFlow work: {} µs of its CPU per message through OpenFlow, {} "
          "µs through the port.  The rest of a message's cost is not "
          "injection work (ovsdb-server, chand-host's per-change work, the "
          "guest's ovs-vswitchd, chand-guest and its fsync'd commit): all "
          "the daemons together used {} µs per message through OpenFlow "
          "and {} µs through the port, so where the two CPUs are the limit "
          "the port gains about {}× on messages/s; measured: {}×.{}{}"
          .format(
              fmt(hv["openflow"], 1), fmt(hv["port"], 1),
              fmt(tot["openflow"], 1), fmt(tot["port"], 1), fmt(bound, 2),
              fmt(mr, 2) if mr is not None else "n/a", rest,
              "  3× needs the rest of the pipeline to shrink too (see "
              "\"What limits each number\")." if bound < 3 else ""))
        w("")
    # Losses: the port hands frames over in batches, i.e. in faster bursts.
    rs = {side: med((fg.get("recs_frames_resent") or {}).get(side))
          for side in ("openflow", "port")}
    to = {side: med((fg.get("recs_timeouts") or {}).get(side))
          for side in ("openflow", "port")}
    dr = {side: med((fg.get("recs_guest_afpacket_drops") or {}).get(side))
          for side in ("openflow", "port")}
    rr = (fg.get("records_per_s") or {}).get("ratio_port_to_openflow")
    if None not in rs.values() and rs["port"] > rs["openflow"]:
        at_guest = None not in dr.values() and dr["port"] > dr["openflow"]
        w(("With batching the port path lost more frames: {} against {} "
          "resent and {} against {} retransmission timeouts per run (200 "
          "ms or more each){}; records/s port / OpenFlow: {}×.  {}".format(
              fmt(rs["port"]), fmt(rs["openflow"]), fmt(to["port"]),
              fmt(to["openflow"]),
              "; the guest ovs-vswitchd's AF_PACKET socket on `eth0` "
              "dropped {} against {} frames".format(
                  fmt(dr["port"]), fmt(dr["openflow"]))
              if None not in dr.values() else "",
              fmt(rr, 2) if rr is not None else "n/a",
              ("chand-host hands the port up to 32 frames per "
               "`sendmmsg()` ({} per call in the messages runs) and the "
               "host datapath forwards them at once, so a window of 256 "
               "frames reaches the guest as a faster burst than "
               "PACKET_OUTs, one OpenFlow message each, did, and the "
               "guest's ovs-vswitchd drops what its AF_PACKET buffer "
               "(about 90 full-size frames) cannot hold.  The port makes "
               "the host side faster than the guest side can take "
               "without pacing: the paced sender of \"Daemon changes\" "
               "(1.) is what would turn it into throughput.".format(
                   fmt(med((fg.get("msgs_port_frames_per_tx_batch") or {})
                           .get("port")), 1)))
              if at_guest else
              "The guest's AF_PACKET drop counter does not account for "
              "the difference; the harness does not locate it further."
              if None not in dr.values() else "")).rstrip())
        w("")


def upstream_md(r, w):
    up = r.get("upstream") or {}
    if not up:
        return
    st = up.get("setup") or {}
    w("## 9. Upstream: records the guests publish")
    w("")
    w("The other direction: a guest application publishes a record "
      "through chand-guest's local API (`publish`, JSON-RPC on "
      "`@chand-guest`; the call returns once the record is committed in "
      "the guest datastore), chand-guest sends it upstream and chand-host "
      "writes it to the Chan DB's `Guest_Record`.  `chand-bench publish` "
      "in the VM sends the API requests on one connection, pipelined; "
      "`chand-bench grwatch` on the host holds an OVSDB monitor of "
      "`Guest_Record` (and of `Record`, for relayed rows) and logs when "
      "each version reaches it, i.e. becomes visible to any Chan DB "
      "client.  The VM's publish limits are lifted for these runs "
      "(`Chan_Global.guest_limits`: `max_publish_rate` and `max_records` "
      "0; by default a VM may publish 1,000 records/s and hold 10,000): "
      "this measures the channel, not the policy.")
    w("")
    t = up.get("throughput")
    down = r["throughput"].get("recs", {})
    if t:
        w("**Throughput.** After a reset, chb-vm1 publishes {} new records "
          "as fast as the API answers ({} requests unanswered at most); "
          "the clock runs from the first request until the monitor has "
          "seen the last row.  Downstream, for comparison, is section 2's "
          "records/s (one transaction of as many records, from its commit "
          "until the guest datastore has them all).".format(
              fmt(med(t["records"])), st.get("inflight", "?")))
        w("")
        w("| figure | upstream (publish → `Guest_Record`) | downstream "
          "(section 2, batching) | upstream / downstream |")
        w("|---|---|---|---|")
        w("| records per run | {} | {} | |".format(
            fm(t["records"]), fm(down.get("records"))))
        w("| **records/s** (upstream: first publish → all visible; "
          "downstream: commit → all applied) | **{}** | {} | **{}** |"
          .format(fm(t["rate"]), fm(down.get("rate_from_commit")),
                  fmt(ratio(med(t["rate"]),
                            med(down.get("rate_from_commit"))), 2)))
        w("| records/s, steady (first → last visible / applied) | {} | {} "
          "| {} |".format(fm(t["rate_steady"]), fm(down.get("rate_steady")),
                          fmt(ratio(med(t["rate_steady"]),
                                    med(down.get("rate_steady"))), 2)))
        uc = t.get("cost", {}).get("daemons", {})
        dc = down.get("cost", {}).get("daemons", {})
        for name in ("chand-host", "chand-guest(vm)", "ovsdb-server(host)",
                     "ovs-vswitchd(host)", "ovs-vswitchd(vm)"):
            a = (uc.get(name) or {}).get("cpu_s_per_million")
            b = (dc.get(name) or {}).get("cpu_s_per_million")
            if a or b:
                w("| CPU s per million records: {} | {} | {} | {} |".format(
                    name, fm(a, digits=1), fm(b, digits=1),
                    fmt(ratio(med(a), med(b)), 2)))
        dframes = med(down.get("messages"))
        w("| records per frame | {} | {} | |".format(
            fm(t["records_per_frame"], digits=1),
            fmt(med(down.get("records")) / dframes, 1) if dframes else
            "n/a"))
        w("| frames retransmitted / retransmission timeouts | {} / {} | "
          "{} / {} | |".format(
              fm(t["guest_frames_resent"]), fm(t["guest_timeouts"]),
              fm(down.get("frames_resent")), fm(down.get("timeouts"))))
        w("")
        w("| upstream detail | |")
        w("|---|---|")
        w("| publications/s the API answered (first request → last reply; "
          "each one committed in the guest) | {} |".format(
              fm(t["publish_rate"])))
        w("| ... over the first / the last tenth of the run | {} / {} |"
          .format(fm(t["publish_rate_first_tenth"]),
                  fm(t["publish_rate_last_tenth"])))
        w("| API call (request → reply) p50 / p99 (ms), with {} in flight "
          "| {} / {} |".format(st.get("inflight", "?"), fm(t["api_p50_ms"]),
                               fm(t["api_p99_ms"])))
        w("| first request → first row visible (s) | {} |".format(
            fm(t["first_row_s"])))
        w("| last reply → last row visible (s) | {} |".format(
            fm(t["tail_s"])))
        w("| DATA messages / records per message / chand-host "
          "transactions (`up_msgs`, `up_batches`) | {} / {} / {} |".format(
              fm(t["host_msgs"]), fm(t["records_per_msg"], digits=1),
              fm(t["host_batches"])))
        w("| guest sender: frames sent / resent / fast retransmits | "
          "{} / {} / {} |".format(fm(t["guest_frames_sent"]),
                                  fm(t["guest_frames_resent"]),
                                  fm(t["guest_fast_retransmits"])))
        w("| chand-host: duplicate DATA frames / ACKs sent (`up_rx_duplicate`,"
          " `up_tx_ack`) | {} / {} |".format(fm(t["host_rx_duplicate"]),
                                              fm(t["host_tx_ack"])))
        w("| guest sender's congestion window at the end (frames) | {} |"
          .format(fm(t["guest_cwnd_end"])))
        w("")
    lt = up.get("latency")
    if lt:
        dl = r["latency"].get(str(st.get("latency_rate", 1000)), {}) \
            .get("push_to_applied", {})
        w("**Latency.** After a reset, chb-vm1 publishes updates of {} keys "
          "round-robin at {:,} records/s (open loop: each request at its "
          "time whatever the replies, within {:,} unanswered), {} per run.  "
          "Per record: from the API call's return (the record is durable "
          "in the guest) until the monitor sees that version in "
          "`Guest_Record`.  Downstream is section 3's push → applied at "
          "the same rate.".format(
              st.get("latency_keys", 200), st.get("latency_rate", 1000),
              st.get("latency_inflight", 1000), fmt(med(lt["sent"]))))
        w("")
        w("| figure | p50 | p99 | p99.9 |")
        w("|---|---|---|---|")
        pv, sv, ac = (lt["publish_to_visible"], lt["send_to_visible"],
                      lt["api_call"])
        w("| **publish returned → visible in `Guest_Record`** (ms) | **{}** "
          "| **{}** | {} |".format(fm(pv["p50_ms"]), fm(pv["p99_ms"]),
                                   fm(pv["p999_ms"])))
        w("| request sent → visible (ms) | {} | {} | {} |".format(
            fm(sv["p50_ms"]), fm(sv["p99_ms"]), fm(sv["p999_ms"])))
        w("| the API call alone (request → reply, ms) | {} | {} | {} |"
          .format(fm(ac["p50_ms"]), fm(ac["p99_ms"]), fm(ac["p999_ms"])))
        if dl:
            w("| downstream: push → applied at {:,} msg/s (section 3, ms) | "
              "{} | {} | {} |".format(st.get("latency_rate", 1000),
                                      fm(dl.get("p50_ms")),
                                      fm(dl.get("p99_ms")),
                                      fm(dl.get("p999_ms"))))
            w("| upstream / downstream | {} | {} | {} |".format(*(
                fmt(ratio(med(pv[q]), med(dl.get(q))), 2)
                for q in ("p50_ms", "p99_ms", "p999_ms"))))
        w("")
        w("Achieved rate {}/s (largest lag behind the schedule {} ms); "
          "versions seen in `Guest_Record`: {} of {} published (the guest "
          "sends the latest value of each key: a version published while "
          "the previous one waits is never sent on its own); {} DATA "
          "messages in {} chand-host transactions; frames sent / resent: "
          "{} / {}.".format(
              fm(lt["achieved_rate"]), fm(lt["max_send_lag_ms"]),
              fm(lt["seen"]), fm(lt["sent"]), fm(lt["host_msgs"]),
              fm(lt["host_batches"]), fm(lt["guest_frames_sent"]),
              fm(lt["guest_frames_resent"])))
        w("")
    rl = up.get("relay")
    if rl:
        w("**Relay.** A `Relay` rule (source `{src}`, prefix `rl/`, to "
          "`vms` = `{dst}`) makes chand-host pass each record `{src}` "
          "publishes under `rl/` on to `{dst}` as the record "
          "`from/{src}/<key>`.  `{src}` publishes {n} new records at "
          "{rate}/s; time from the API call's return in `{src}` until "
          "`{dst}`'s local API notifies the record (`chand-bench watch`, "
          "after chand-guest's commit), with the monitor's view of the "
          "`Guest_Record` row and of the relayed `Record` row in between.  "
          "{vms} VMs were up (the relay runs after the fan-out phase, "
          "which adds VMs)."
          .format(src=st.get("relay_source", "chb-vm1"),
                  dst=st.get("relay_target", "chb-vm2"),
                  n=st.get("relay_count", "?"),
                  rate=st.get("relay_rate", "?"),
                  vms=rl.get("vms_up") or "?"))
        w("")
        w("| figure | p50 | p99 | p99.9 |")
        w("|---|---|---|---|")
        for label, part in (
                ("**publish returned → applied in the target** (ms)",
                 "publish_to_applied"),
                ("publish returned → `Guest_Record` row visible",
                 "publish_to_guest_record"),
                ("`Guest_Record` row → relayed `Record` row visible "
                 "(chand-host's relay transaction)",
                 "guest_record_to_relayed_row"),
                ("relayed `Record` row → applied in the target (the "
                 "downstream path)", "relayed_row_to_applied")):
            x = rl[part]
            bold = part == "publish_to_applied"
            w("| {} | {} | {} | {} |".format(
                label, *(("**{}**" if bold and q != "p999_ms" else "{}")
                         .format(fm(x.get(q)))
                         for q in ("p50_ms", "p99_ms", "p999_ms"))))
        w("")
        w("Relayed records applied in the target: {} of {} per run "
          "(`relayed` counter: {}; refused: {}).".format(
              fm(rl["applied_seen"]), fm(rl["sent"]), fm(rl["relayed"]),
              fm(rl["relay_refused"])))
        w("")
    pr = up.get("profile")
    if pr:
        run = pr.get("run") or {}
        w("**Profile.** One more throughput run ({} records, {} records/s "
          "under the profiler; not among the figures above) with `perf "
          "record -F 199 --call-graph dwarf` on chand-host and "
          "chand-guest.  Functions including what they call, in % of both "
          "processes' samples (entry points left out):".format(
              fmt(run.get("records")), fmt(run.get("rate"))))
        w("")
        w("| % | process | function |")
        w("|---|---|---|")
        skip = ("_start", "main", "__libc_start_main",
                "__libc_start_call_main", "__libc_start_main_impl",
                "daemon_run")
        n = 0
        for row in pr["children"]:
            fn = row["what"]
            if (fn.split("@")[0] in skip or fn.startswith("0x")
                    or fn.startswith("[k]") or re.match(r"^0+$", fn)):
                continue
            if n < 24:
                w("| {:.1f} | {} | `{}` |".format(row["pct"], row["comm"],
                                                  fn))
                n += 1
        w("")


def upstream_limits(r, w):
    """The upstream paragraph of 'What limits each number'."""
    up = r.get("upstream") or {}
    t = up.get("throughput")
    if not t:
        return
    down = r["throughput"].get("recs", {})
    rate = med(t["rate"])
    prate = med(t["publish_rate"])
    first = med(t["publish_rate_first_tenth"])
    last = med(t["publish_rate_last_tenth"])
    uc = t.get("cost", {}).get("daemons", {})

    def cpu(name):
        return med((uc.get(name) or {}).get("cpu_s_per_million"))

    ratio_down = ratio(rate, med(down.get("rate_from_commit")))
    tail = med(t["tail_s"])
    run_s = med(t["records"]) / rate if rate else None
    w("**Upstream records/s: {}/s{}.**  The API answered {} publications/s "
      "and the rows trailed the last reply by {} s{}.  The publications "
      "one connection pipelines share one SQLite commit and fsync "
      "(`publish_commits` in chand-guest's `api` status), and chand-guest "
      "used {} CPU s per million records (chand-host {}).".format(
          fmt(rate),
          " ({}× the downstream records/s)".format(fmt(ratio_down, 2))
          if ratio_down else "",
          fmt(prate), fmt(tail),
          ", so the guest's publishing is the limit, not the channel"
          if tail is not None and run_s and tail < 0.1 * run_s
          else ": the channel and chand-host did not keep up with the "
          "publications",
          fmt(cpu("chand-guest(vm)")), fmt(cpu("chand-host"))))
    limits = up_prof_pct(up, "chand-guest", "check_pub_limits")
    commit = up_prof_pct(up, "chand-guest", "datastore_commit")
    relay = up_prof_pct(up, "chand-host", "relay_run")
    host = up_prof_pct(up, "chand-host", "main")
    if first and last and last < 0.7 * first:
        w("The rate fell during the run, from {}/s over its first tenth "
          "to {}/s over its last: the cost of a publication grows with "
          "the records the VM already holds.  {}{}chand-host recomputes "
          "the relayed records from every `Guest_Record` row (and walks "
          "every `Record` row) at each change of the table, rule or no "
          "rule (`relay_run` → `relay_published`){}.  No relay "
          "computation when no rule matches the changed rows would make "
          "it proportional to the change.".format(
              fmt(first), fmt(last),
              "The profile shows why: " if limits or relay
              else "The likely cause: ",
              "chand-guest's limit check (`check_pub_limits`, which "
              "keeps the usage in memory since the scan of `published` "
              "it did before each publication went) still shows — {:.0f} "
              "% of the profiled samples, against {:.0f} % for the commits "
              "with their fsync (`datastore_commit`); and ".format(
                  limits, commit or 0) if limits and limits >= 5 else "",
              " — {:.0f} % of the samples, most of chand-host's {:.0f} %"
              .format(relay, host or 0) if relay else ""))
    resent, sent = med(t["guest_frames_resent"]), med(t["guest_frames_sent"])
    if resent and sent and resent > 0.1 * sent:
        w("{} of {} upstream frames were sent again ({} fast retransmits, "
          "{} retransmission timeouts; chand-host counted {} duplicates).  "
          "The counters fit what the code does: a DATA message of several "
          "frames ({} records per message, {} "
          "per frame here) gets an ACK at its first chunk that repeats "
          "the position already acknowledged (chand-host/upstream.c acks "
          "partial messages so that one longer than the window can "
          "progress), and the guest's sender (lib/chan-sender) takes a "
          "repeated ack with frames in flight for a loss: it goes back "
          "and resends the message and halves its congestion window "
          "({} frames at the end).  Acking a partial message only when "
          "it has more frames than the sender's window, or a sender that "
          "does not count an ack carrying \"limits\" or answering a "
          "partial message as a duplicate, would remove that traffic."
          .format(fmt(resent), fmt(sent),
                  fmt(med(t["guest_fast_retransmits"])),
                  fmt(med(t["guest_timeouts"])),
                  fmt(med(t["host_rx_duplicate"])),
                  fmt(med(t["records_per_msg"]), 1),
                  fmt(med(t["records_per_frame"]), 1),
                  fmt(med(t["guest_cwnd_end"]))))
    lt = up.get("latency")
    if lt:
        pv = lt["publish_to_visible"]
        w("Upstream latency at {:,}/s: p50 {} ms, p99 {} ms from the "
          "API's reply to the row in the Chan DB: the guest's sender, the "
          "channel, chand-host's transaction (one at a time, the records "
          "that arrive meanwhile wait for the next), ovsdb-server's "
          "commit and its monitor update.".format(
              (up.get("setup") or {}).get("latency_rate", 1000),
              fmt(med(pv["p50_ms"])), fmt(med(pv["p99_ms"]))))
    rl = up.get("relay")
    if rl:
        parts = [(lbl, med(rl[k]["p50_ms"])) for lbl, k in (
            ("to `Guest_Record`", "publish_to_guest_record"),
            ("chand-host's relay transaction", "guest_record_to_relayed_row"),
            ("the downstream delivery", "relayed_row_to_applied"))]
        w("Relay p50 {} ms, in parts (p50): {}.".format(
            fmt(med(rl["publish_to_applied"]["p50_ms"])),
            ", ".join("{} {} ms".format(lbl, fmt(v)) for lbl, v in parts)))
    w("")


def med(stat, default=None):
    return stat["median"] if stat else default


def prof_pct(r, comm, fn):
    """Inclusive share of function 'fn' in process 'comm', or None."""
    for row in r["profile"].get("children", []):
        what = re.sub(r"\s*\(inlined\)$", "", row["what"].replace("[.] ", ""))
        if row["comm"] == comm and what.strip() == fn:
            return row["pct"]
    return None


def inject_summary(r):
    """' (section 8: ...)' with what the port path measured, or ''."""
    fg = (r.get("inject") or {}).get("figures") or {}
    m = (fg.get("msgs_per_s") or {}).get("ratio_port_to_openflow")
    if m is None:
        return ""
    hv = fg.get("cpu_us_per_msg ovs-vswitchd(host)") or {}
    return (" — measured in section 8: {}× the messages/s of the PACKET_OUT "
            "path{}{}".format(
                fmt(m, 2),
                "; the host ovs-vswitchd's share of a message's CPU is "
                "small" if m < 3 else "",
                " (host ovs-vswitchd {} → {} µs per message)".format(
                    fmt(med(hv.get("openflow")), 1),
                    fmt(med(hv.get("port")), 1))
                if hv.get("openflow") and hv.get("port") else ""))


def limits_md(r):
    """The analysis: what limits each number, with this run's figures."""
    L = []
    w = L.append
    c, t, lat = r["ceilings"], r["throughput"], r["latency"]
    ca, cb = c.get("a", {}), c.get("b", {})
    a128 = med(ca.get("128", {}).get("ceiling_pps"))
    a1400 = med(ca.get("1400", {}).get("ceiling_pps"))
    b128 = med(cb.get("128", {}).get("ceiling_pps"))
    b1400 = med(cb.get("1400", {}).get("ceiling_pps"))
    fs = r["meta"].get("fsync_ms") or {}
    w("## What limits each number")
    w("")
    w("From this run's figures, counters and profile; doc/bench.md says "
      "how each is measured.")
    w("")

    # Ceilings.
    if a128:
        share = {}
        for path in ("a", "b"):
            for size, x in c.get(path, {}).items():
                for p in x["sweep"]:
                    v = med(p.get("lost_at_guest_afpacket"))
                    if v is not None and med(p["loss"], 0) > 0.05:
                        share.setdefault(path, []).append(v)
        w("**Ceilings.** Both paths go through two ovs-vswitchd main "
          "threads, which poll the userspace datapath's non-DPDK ports and "
          "also serve OpenFlow and OVSDB: the host's (veth and tap ports, "
          "or PACKET_OUT) and the guest's (AF_PACKET on `eth0`, then a tap "
          "write).  Ceiling (a) is {} pkts/s for 128-byte and {} for "
          "1,400-byte datagrams; (b) {} and {}.".format(
              fmt(a128), fmt(a1400), fmt(b128), fmt(b1400)))
        if b128 and a128 < b128:
            w("PACKET_OUT costs the host more than a datapath hit: each "
              "one is decoded and its actions translated through the "
              "OpenFlow tables one packet at a time (no megaflow cache for "
              "packet-outs), which is why (a) is below (b) for small "
              "datagrams.")
        if share:
            w("Beyond the loss-free rate, frames are lost in bursts at the "
              "guest ovs-vswitchd's AF_PACKET receive buffer on `eth0` "
              "({}): 212,992 bytes by default (`net.core.rmem_default`), "
              "about 90 full-size frames; OVS does not enlarge it and it "
              "could not be changed from inside the VM's namespace here."
              .format("; ".join(
                  "path ({}): median {} % of the datagrams lost at the "
                  "sweep points with over 5 % loss were dropped there"
                  .format(path, fmt(statistics.median(v) * 100, 0))
                  for path, v in sorted(share.items()))))
            if share.get("b") and statistics.median(share["b"]) < 0.9:
                w("The rest of path (b)'s loss happens before the guest "
                  "(the host reads its tap port one packet at a time); "
                  "the harness does not locate it further.")
        w("")

    msgs, recs = t.get("msgs", {}), t.get("recs", {})

    def us_per(kind, name):
        d = t.get(kind, {}).get("cost", {}).get("daemons", {}).get(name)
        return med(d["cpu_s_per_million"]) if d else None

    others = med(recs.get("cost", {}).get("others_busy_share"))
    if msgs:
        rate = med(msgs.get("msgs_from_commit"))
        w("**Acknowledged messages/s: {}/s, {} % of ceiling (a) (target "
          "50 %), with the records as `Record` rows.**  With "
          "`--max-batch=1` every record is a message and a "
          "frame.  CPU per message: chand-host {} µs, ovsdb-server {} µs "
          "(the insert, and `Channel` row write-backs), chand-guest {} µs, "
          "both ovs-vswitchd {} µs; the pipeline needs about {} µs of CPU "
          "per message on a machine where other work used {} % of the "
          "CPUs.  {}Group commit is not the limit ({} guest commits for "
          "{} messages).".format(
              fmt(rate), fmt(100 * rate / a128, 0) if a128 else "n/a",
              fmt(us_per("msgs", "chand-host")),
              fmt(us_per("msgs", "ovsdb-server(host)")),
              fmt(us_per("msgs", "chand-guest(vm)")),
              fmt((us_per("msgs", "ovs-vswitchd(host)") or 0)
                  + (us_per("msgs", "ovs-vswitchd(vm)") or 0)),
              fmt(sum(x for x in (
                  us_per("msgs", n) for n in (
                      "chand-host", "ovsdb-server(host)", "chand-guest(vm)",
                      "ovs-vswitchd(host)", "ovs-vswitchd(vm)")) if x)),
              fmt(100 * others, 0) if others is not None else "n/a",
              ("On top of that the sender blasts its whole window (256 "
               "frames), the guest's AF_PACKET buffer overflows, go-back-N "
               "drops everything after the gap and the sender waits for "
               "its 200 ms retransmission timer (per run: {} frames "
               "resent, retransmission timeouts: {}, against {} s for the "
               "whole run).  ".format(
                   fmt(med(msgs.get("frames_resent"))),
                   fmt(med(msgs.get("timeouts"))),
                   fmt(med(msgs.get("host_first_s"), 0)
                       + med(msgs.get("apply_s"), 0)))
               if med(msgs.get("frames_resent"), 0) > 0
               else "No frame was lost in these runs.  "),
              fmt(med(msgs.get("guest_commits"))),
              fmt(med(msgs.get("records")))))
        w("What would change it: a paced sender (a token bucket near the "
          "loss-free rate of ceiling (a)) or a smaller window (see the "
          "`--window` table); retransmitting at once on a gap ACK (the "
          "guest already sends one) instead of waiting for the timer; "
          "less CPU per message in chand-host (see records); the patched "
          "OVS datapath port (ovs-patches/), which exchanges frames in "
          "batches without the OpenFlow slow path{}.".format(
              inject_summary(r)))
        w("")
    if recs:
        n = med(recs.get("records"))
        frames = med(recs.get("messages"))
        apply_s = med(recs.get("apply_s"))
        w("**Records/s with batching: {}/s from the commit, {}/s steady "
          "with `Record` rows (target 100,000/s; section 2 has the "
          "`Record_Set` form).**  The run splits into:".format(
              fmt(med(recs.get("rate_from_commit"))),
              fmt(med(recs.get("rate_steady")))))
        w("")
        w("1. *OVSDB ingest*, before the clock starts: ovsdb-server took "
          "{} s to commit one transaction of {} inserts.".format(
              fmt(med(recs.get("ingest_s"))), fmt(n)))
        sd = prof_pct(r, "chand-host", "channel_set_desired")
        w("2. *chand-host digesting it*: {} s from the commit to the "
          "first record applied.  It parses the monitor update (one row "
          "and one JSON value per record), updates the VM's desired state "
          "by changed key and queues those keys{}.".format(
              fmt(med(recs.get("host_first_s"))),
              "; `channel_set_desired` was {:.0f} % of chand-host's "
              "profile".format(sd) if sd else ""))
        w("3. *The channel*: {} s from the first to the last record, {} "
          "frames (about {} records per frame: a DATA message is capped "
          "at about one frame, 1,380 bytes at MTU 1,500), so {} frames/s "
          "against ceiling (a) of {} at full size{}.".format(
              fmt(apply_s), fmt(frames),
              fmt(n / frames if frames else None, 0),
              fmt(frames / apply_s if frames and apply_s else None),
              fmt(a1400),
              "; {} frames resent and {} retransmission timeouts per run "
              "(200 ms each, doubling while nothing is acknowledged) "
              "account for much of that time".format(
                  fmt(med(recs.get("frames_resent"))),
                  fmt(med(recs.get("timeouts"))))
              if med(recs.get("timeouts"), 0) > 0 else ""))
        wr = prof_pct(r, "chand-host", "write_channel_rows") or \
            prof_pct(r, "chand-host", "chandb_update_channel")
        w("4. *Write-back*: every 200 ms while records flow "
          "(`DB_WRITE_MS`), and at once when the channel caught up, "
          "chand-host writes the keys of `Channel.applied` that changed "
          "(a `mutate`){}; the "
          "control plane saw the records applied {} s after the guest "
          "had them.".format(
              " (`write_channel_rows` was {:.0f} % of chand-host's "
              "profile)".format(wr) if wr else "",
              fmt(med(recs.get("channel_row_lag_s")))))
        w("")
        kn = r["knobs"]
        wins = {int(k.split("-")[1]): v for k, v in kn.items()
                if re.match(r"^window-\d+$", k) and v.get("rate_from_commit")}
        best = max(wins, key=lambda k: wins[k]["rate_from_commit"]["median"]) \
            if wins else None
        w("CPU per million records: chand-host {} s, ovsdb-server {} s, "
          "chand-guest {} s.{}".format(
              fmt(us_per("recs", "chand-host")),
              fmt(us_per("recs", "ovsdb-server(host)")),
              fmt(us_per("recs", "chand-guest(vm)")),
              "  The `--window` table shows the loss part: with "
              "`--window={}` the same push ran at {}/s (timeouts: {}) "
              "against {}/s (timeouts: {}) with the default 256.".format(
                  best, fmt(wins[best]["rate_from_commit"]["median"]),
                  fmt(med(wins[best].get("timeouts"))),
                  fmt(wins[256]["rate_from_commit"]["median"]),
                  fmt(med(wins[256].get("timeouts"))))
              if best and 256 in wins and best != 256 else ""))
        k0 = kn.get("keys-0-push-2000")
        n1 = next((k for k in kn if re.match(r"^keys-[1-9]\d*-push-2000$", k)),
                  None)
        if k0 and n1:
            w("The keys rows show the per-change part: 2,000 records took "
              "{} s from the commit to the first applied record into an "
              "empty VM and {} s into one already holding {} keys.".format(
                  fmt(med(k0.get("host_first_s"))),
                  fmt(med(kn[n1].get("host_first_s"))),
                  fmt(int(n1.split("-")[1]))))
        w("")
        w("Reaching 500,000 records/s needs the channel to run near its "
          "frame ceiling with many records per frame, and everything "
          "around it to keep scaling with the change instead of the "
          "state (chand-host does, since the desired state, "
          "`Channel.applied` and the relayed records are kept by changed "
          "key): a paced sender without timeouts; a larger MTU on the "
          "vNIC segment (chand's frames never leave it) for more records "
          "per frame; fewer JSON copies per record on both sides; and "
          "bulk loads as one `Record_Set` row rather than a row per "
          "record.")
        w("")
    l1 = lat.get("1000")
    if l1:
        pa, pf = l1["push_to_applied"], l1["push_to_frame"]
        fa = l1["frame_to_ack_per_record"]
        keys = next((v for k, v in r["knobs"].items()
                     if k.startswith("lat-")), None)
        w("**Latency: p99 push → applied {} ms at 1,000 msg/s (p50 {} "
          "ms; targets: the fsync's p50 + 1 ms and p99 + 3 ms).**  push → "
          "frame (ovsdb-server commit, the "
          "monitor update, chand-host's per-change work, PACKET_OUT) p50 "
          "{} / p99 {} ms; frame → ack (guest ovs-vswitchd, chand-guest, "
          "the SQLite commit, the ACK back) p50 {} / p99 {} ms.  {}  "
          "The tail comes from CPU contention (two CPUs for seven busy "
          "processes, plus other work), from lost frames, each of which "
          "costs a 200 ms retransmission timeout.  (chand-guest's bridge "
          "health check no longer stalls its receive loop: it runs "
          "in-process, an OpenFlow flow sync that the loop drives every "
          "5 s, where it used to run `ovs-ofctl` and `ovs-vsctl` "
          "synchronously.){}"
          .format(
              fmt(med(pa["p99_ms"])), fmt(med(pa["p50_ms"])),
              fmt(med(pf["p50_ms"])), fmt(med(pf["p99_ms"])),
              fmt(med(fa["p50_ms"])), fmt(med(fa["p99_ms"])),
              ("Every commit waits for an fsync (p50 {} ms, p90 {} ms on "
               "this file system when the run started), so with "
               "`synchronous=FULL` a 2 ms p99 needs the fsync alone to "
               "stay well under 2 ms.".format(fmt(fs.get("p50")),
                                               fmt(fs.get("p90"))))
              if fs.get("p90", 0) >= 1 else
              ("An fsync cost p50 {} ms, p90 {} ms on this file system when "
               "the run started: a small part of the latency."
               .format(fmt(fs.get("p50")), fmt(fs.get("p90"))))
              if fs else "",
              "  With 24,000 keys in the VM (chand-host's work per "
              "change follows the change, not the state): push → applied "
              "p50 {} ms.".format(
                  fmt(keys["push_to_applied"].get("p50_ms")))
              if keys else ""))
        slow_fsync = fs.get("p90", 0) >= 1
        w("What would change it: pacing and selective retransmission "
          "(no 200 ms timer after a burst loss); {}".format(
              "and a chand-guest option for `synchronous=NORMAL` (the "
              "datastore has `DS_SYNC_NORMAL`; after a guest crash the "
              "host would resend from the position the guest reports, "
              "which the session protocol already does)." if slow_fsync
              else "`synchronous=NORMAL` (the datastore has "
              "`DS_SYNC_NORMAL`, chand-guest has no option for it) would "
              "matter only where fsync is slow; it was not here."))
        w("")
    fo = r["fanout"]
    if fo:
        w("**Fan-out.** {}.  chand-host serves the VMs one after the other "
          "from one thread, and every VM adds an ovs-vswitchd and a "
          "chand-guest on the same two CPUs, so the time until the last "
          "VM has a record grows with the number of VMs.".format(
              "; ".join("{} VM{}: {} ms".format(
                  k, "" if k == "1" else "s", fmt(med(v["all_applied_ms"])))
                  for k, v in fo.items())))
        w("")
    cp = r["control_plane"]
    if cp:
        w("**Control plane.** p50 {} ms, of which starting and running "
          "`ovsdb-client` (connect, transact, exit) is {} ms; the rest is "
          "one push → applied as above.".format(
              fmt(med(cp["write_to_applied"]["p50_ms"])),
              fmt(med(cp["ovsdb_client_exit"]["p50_ms"]))))
        w("")
    large_limits(r, w)
    upstream_limits(r, w)
    return "\n".join(L)


def big_profile(r):
    """What chand-host did after the 64 MiB commit, from its profile."""
    rows = r["profile"].get("big_children", [])
    share = {}
    for row in rows:
        fn = re.sub(r"\s*\(inlined\)$", "", row["what"].replace("[.] ", ""))
        share.setdefault(fn.strip(), row["pct"])
    parts = []
    if "jsonrpc_session_recv" in share:
        parts.append("{:.0f} % parsing the monitor update that carries "
                     "the value (`jsonrpc_recv` → `json_loadb`)".format(
                         share["jsonrpc_session_recv"]))
    if "parse_record" in share:
        parts.append("{:.0f} % checking the Record's value "
                     "(`parse_record`)".format(share["parse_record"]))
    if "channel_set_desired" in share:
        parts.append("{:.0f} % in `channel_set_desired`".format(
            share["channel_set_desired"]))
    if not parts:
        return ""
    return " (its profile over the 20 s after the commit: " + \
        "; ".join(parts) + ")"


def large_limits(r, w):
    lv = r["large"]
    big = lv.get("64M")
    if not big:
        return
    a1400 = med(r["ceilings"].get("a", {}).get("1400", {})
                .get("ceiling_pps"))
    cap = a1400 * 1420 / 1e6 if a1400 else None
    if big["delivered"]:
        bp = big_profile(r)
        w("**Large values: the 64 MiB value at {} MB/s (target 25 MB/s "
          "and half the raw path's byte ceiling).** "
          "It travels as {} DATA frames of at most 1,420 payload bytes.  "
          "Of the {} s, chand-host spent {} s between the commit and its "
          "first frame{}, and the transfer took {} s more, frames and the "
          "guest's single 64 MiB SQLite transaction together ({} frames "
          "resent, {} retransmission timeouts: at 200 ms or more each, "
          "waiting for the timer is a large part of it).  OVSDB took "
          "another {} s to commit the value before the clock started."
          .format(
              fmt(med(big["mb_per_s"])), fmt(med(big["frames"])),
              fmt(med(big["seconds"])), fmt(med(big["host_prep_s"])),
              bp, fmt(med(big["transfer_s"])),
              fmt(med(big["frames_resent"])), fmt(med(big["timeouts"])),
              fmt(med(big["ingest_s"]))))
        if cap:
            w("Even at ceiling (a) for full-size frames ({} pkts/s) a "
              "1,420-byte payload per frame gives at most {} MB/s: the "
              "target needs fewer, larger frames (a larger MTU on the vNIC "
              "segment, which chand's frames never leave) or a path that "
              "moves frames in batches (the patched-OVS datapath port of "
              "ovs-patches/), besides a paced sender that does not lose "
              "bursts and pay the 200 ms timer.".format(fmt(a1400),
                                                        fmt(cap)))
    else:
        w("**Large values: the 64 MiB value was not delivered** — {}."
          .format(big["why"]))
        if cap:
            w("Even once delivered, a 1,420-byte payload per frame at "
              "ceiling (a) for full-size frames ({} pkts/s) allows at most "
              "{} MB/s.".format(fmt(a1400), fmt(cap)))
    small = ["{} at {} MB/s ({} frames resent, timeouts: {})".format(
        size, fmt(med(x["mb_per_s"])), fmt(med(x["frames_resent"])),
        fmt(med(x["timeouts"])))
        for size, x in lv.items()
        if size != "64M" and x["delivered"] and x.get("mb_per_s")]
    if small:
        w("")
        w("The smaller values go no faster: {}.  The rate is set by "
          "losses and the timer, not by the size.".format("; ".join(small)))
    w("")





def daemon_changes_md():
    return """## Daemon changes that would help

Done since the first reports: chand-host's per-change work follows the
change (the desired state is updated by changed key, `Channel.applied` is
written as a delta, relayed records are recomputed only for changes under
their prefixes), the bulk `Record_Set` form, a window in bytes
(`--window-bytes`) so that bursts fit the guest's receive buffer, latency
histograms in `channel-show`, a plain string value sent without being
parsed and rendered again, a `Channel` row written at once (at most every
20 ms) when its channel catches up instead of at the next 200 ms tick,
chand-host no longer monitoring `Channel.applied` and `sent` (it read back
every one of its own writes, at a cost that grew with the map; it now
reads them once with a `select` when a channel starts), and a record's
sent, acknowledged and applied states sharing the desired entry instead of
copying it.  What would help next:

1. **Pacing and selective retransmission** (lib/chan-sender): go-back-N
   resends everything after a lost frame, and the timer (200 ms, doubling)
   fires while the guest is still busy applying a large message.
2. **chand-guest's decoding of large values**: the guest parses a whole
   message with jansson and renders each value back to text for its
   store; for a 64 MiB string that is most of the last second (section 7).
   chand-host's jansson parse of the monitor update that carries it is
   most of the time before the first frame.
3. **More than one message per frame**: with one record per message every
   message is a frame through both ovs-vswitchd, so messages/s cannot pass
   ceiling (a) less the CPU the daemons take per message (section 6).
4. **chand-guest `--sync=normal|full`** (the datastore already supports
   NORMAL) for guests whose disks have slow fsync, named for what it risks.
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", required=True)
    ap.add_argument("--md", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()
    raw = a.raw
    r = {"meta": load(os.path.join(raw, "meta.json"), {}),
         "ceilings": ceilings(raw),
         "throughput": throughput(raw),
         "latency": latency(raw),
         "fanout": fanout(raw),
         "control_plane": control_plane(raw),
         "large": large(raw),
         "mtu": mtu(raw),
         "knobs": knobs(raw),
         "profile": profile(raw),
         "inject": inject(raw),
         "upstream": upstream(raw),
         "transfer": transfer(raw),
         "qga": qga(raw),
         "cluster": cluster(raw),
         "scale": scale(raw),
         "dpdk": dpdk(raw)}
    xfer_ceilings(r)
    r["targets"] = targets(r)
    r["problems"] = PROBLEMS
    with open(a.json, "w") as f:
        json.dump(r, f, indent=1, sort_keys=False)
        f.write("\n")
    with open(a.md, "w") as f:
        f.write(md_report(r))
    if PROBLEMS:
        for p in PROBLEMS:
            print("report: " + p, file=sys.stderr)
    if a.check:
        # The phases this run was asked for (all of them without --phases).
        phases = r["meta"].get("phases") or [
            "ceilings", "throughput", "latency", "cp", "large", "fanout"]
        key = {"cp": "control_plane"}
        missing = [key.get(p, p) for p in phases
                   if key.get(p, p) in ("ceilings", "throughput", "latency",
                                        "control_plane", "large", "mtu",
                                        "fanout",
                                        "inject", "upstream", "transfer",
                                        "qga",
                                        "cluster", "scale")
                   and not (r[key.get(p, p)] and
                            r[key.get(p, p)].get("measured", True))]
        up = r["upstream"]
        if "upstream" in phases and up:
            for part in ("throughput", "latency", "relay"):
                if part not in up:
                    missing.append("upstream " + part)
        cl = r.get("cluster")
        if "cluster" in phases and cl:
            for part in ("throughput", "latency", "failover", "migration"):
                if not cl.get(part):
                    missing.append("cluster " + part)
            if not (cl.get("simulation") or {}).get("levels"):
                missing.append("cluster simulation")
        dp = r.get("dpdk")
        if "dpdk" in phases:
            if not (dp and dp.get("measured")):
                missing.append("dpdk")
            else:
                missing += ["dpdk " + p for p in DPDK_PHASES
                            if p in phases and not dp.get(p)]
        for k in missing:
            print("report: no data for " + k, file=sys.stderr)
        if PROBLEMS or missing:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
