#!/usr/bin/env python3
"""Score privacy-benchmark runs (examples/privacy_bench.rs writes them; scripts/bench-privacy.sh calls this).

    classify.py [--markdown] RUNDIR...

Each RUNDIR holds meta.tsv, packets.tsv (every WAN frame: time, up/down, length), truth.tsv (the
devices' activities) and exchanges.tsv (request/answer latencies at the devices). Runs are grouped by
configuration. The observer cuts the WAN link into 5 s windows, describes each by the sizes and timing
of its packets (count, bytes, size histogram, inter-arrival statistics, upstream vs downstream) and a
random forest learns "some device is active in this window" from the ground truth of the other runs
(other seeds) of the same configuration; it is scored on the held-out run (every run held out once).
Then, for the configurations without cover or delay (none, vpn, two-padded), the decoy floor: the
least overhead at which any defence that only adds packets to that traffic could hold this observer
to a balanced accuracy of 0.55 / 0.65 / 0.75 (see decoy_floor), and the same floor after a rate cap per
direction has delayed the real packets (delay_floor: what smoothing the real traffic could buy, and the
delay it costs).
Printed per configuration: balanced accuracy and ROC AUC of the whole link, of the upstream alone and
of the downstream alone; overhead (WAN bytes / the devices' own bytes); latency of the small
request/answer exchanges (heartbeats, toggles, state reports) and of the speaker's answer (from the
end of the audio upload to the last byte of the answer); and which windows the whole-link observer
flags, by what happened in them (idle ones are its false alarms; a kind of activity it still flags
is what the defence does not hide). Figures only: nothing here passes or fails.
"""
import os
import sys

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

WINDOW = 5.0
SIZE_BINS = [0, 100, 200, 400, 700, 1000, 1300, 1500, 1e9]
SMALL = {"heartbeat", "toggle", "state-report"}
ORDER = ["none", "vpn", "up-constant", "up-stochastic", "two-constant", "two-stochastic", "two-padded"]


def read_tsv(path):
    with open(path) as f:
        head = f.readline().rstrip("\n").split("\t")
        return head, [line.rstrip("\n").split("\t") for line in f if line.strip()]


def load(d):
    meta = dict(line.rstrip("\n").split("\t", 1) for line in open(os.path.join(d, "meta.tsv")) if "\t" in line)
    _, rows = read_tsv(os.path.join(d, "packets.tsv"))
    t = np.array([float(r[0]) for r in rows])
    up = np.array([r[1] == "up" for r in rows], dtype=bool)
    ln = np.array([int(r[2]) for r in rows])
    _, truth = read_tsv(os.path.join(d, "truth.tsv"))
    acts = [(float(r[2]), float(r[3])) for r in truth]
    kinds = [r[1] for r in truth]
    _, ex = read_tsv(os.path.join(d, "exchanges.tsv"))
    return {"dir": d, "meta": meta, "t": t, "up": up, "len": ln, "acts": acts, "kinds": kinds, "ex": ex}


def view_features(t, ln):
    """Features of one direction's packets in one window."""
    n = len(t)
    hist = np.histogram(ln, bins=SIZE_BINS)[0] if n else np.zeros(len(SIZE_BINS) - 1)
    if n >= 2:
        ia = np.diff(np.sort(t))
        iaf = [ia.mean(), ia.std(), ia.min(), ia.max(), np.median(ia)]
    else:
        iaf = [WINDOW] * 5
    sz = [ln.mean(), ln.std(), ln.max(), len(np.unique(ln))] if n else [0, 0, 0, 0]
    return [n, ln.sum() if n else 0, np.log1p(n), np.log1p(ln.sum() if n else 0)] + list(hist) + iaf + sz


def windows(run):
    start, end = float(run["meta"]["start"]), float(run["meta"]["end"])
    nwin = int((end - start) // WINDOW)
    feats = {"all": [], "up": [], "down": []}
    labels, kinds = [], []
    idx = np.floor((run["t"] - start) / WINDOW).astype(int)
    for w in range(nwin):
        a, b = start + w * WINDOW, start + (w + 1) * WINDOW
        m = idx == w
        u, dn = m & run["up"], m & ~run["up"]
        fu = view_features(run["t"][u], run["len"][u])
        fd = view_features(run["t"][dn], run["len"][dn])
        fa = view_features(run["t"][m], run["len"][m])
        nu, nd = u.sum(), dn.sum()
        split = [nu / max(nu + nd, 1), run["len"][u].sum() / max(run["len"][m].sum(), 1)]
        feats["all"].append(fa + fu + fd + split)
        feats["up"].append(fu)
        feats["down"].append(fd)
        labels.append(int(any(s < b and e > a for s, e in run["acts"])))
        here = {k for (s, e), k in zip(run["acts"], run["kinds"]) if s < b and e > a}
        kinds.append(here.pop() if len(here) == 1 else ("idle" if not here else "mixed"))
    return {k: np.array(v, dtype=float) for k, v in feats.items()}, np.array(labels), kinds


def score(runs, view):
    """Leave one run out: train on the others, score the held-out one. Returns the balanced
    accuracies and AUCs of the folds and, per kind of window (idle, one activity kind, mixed),
    [windows flagged active, windows] over the held-out runs."""
    ba, auc = [], []
    flagged = {}  # window kind -> [flagged, windows] over the held-out runs
    data = [windows(r) for r in runs]
    for i in range(len(runs)):
        xtr = np.vstack([d[0][view] for j, d in enumerate(data) if j != i])
        ytr = np.concatenate([d[1] for j, d in enumerate(data) if j != i])
        xte, yte = data[i][0][view], data[i][1]
        if len(set(ytr)) < 2 or len(set(yte)) < 2:
            continue
        rf = RandomForestClassifier(n_estimators=300, min_samples_leaf=2, class_weight="balanced", random_state=0)
        rf.fit(xtr, ytr)
        pred = rf.predict(xte)
        ba.append(balanced_accuracy_score(yte, pred))
        auc.append(roc_auc_score(yte, rf.predict_proba(xte)[:, 1]))
        for k, p in zip(data[i][2], pred):
            f = flagged.setdefault(k, [0, 0])
            f[0] += int(p)
            f[1] += 1
    return ba, auc, flagged


FLOOR_TARGETS = (0.55, 0.65, 0.75)
# Configurations whose WAN traffic is the devices' own (possibly padded), with no cover packet and
# nothing delayed: the decoy floor is computed on top of them.
FLOOR_BASES = ("none", "vpn", "two-padded")


def decoy_floor(runs, target):
    """The least overhead (WAN bytes / device bytes) at which a defence that only ADDS packets to
    these runs' traffic (decoys; it neither delays nor drops a real one) could hold an observer of
    5 s windows to balanced accuracy <= target.

    The observer who flags a window when it carries at least t bytes has balanced accuracy
    (1 + TPR(t) - FPR(t)) / 2. Added packets only raise an active window's bytes, so TPR(t) >=
    S(t), the share of the real active windows with >= t bytes. Holding every such observer to
    `target` needs FPR(t) >= S(t) - (2 target - 1) for every t, and an idle window's expected bytes
    are the integral of FPR(t) over t: at least the integral of max(0, S(t) - (2 target - 1)).
    The floor is the real active windows' bytes plus that much in every idle window (or the idle
    windows' own bytes, if more), over the devices' bytes. A lower bound: a real classifier also
    has timing and direction, and a real decoy is not shaped to the byte."""
    act, idle, dev = [], [], 0
    for r in runs:
        x, y, _ = windows(r)
        b = x["all"][:, 1]
        act.extend(b[y == 1])
        idle.extend(b[y == 0])
        dev += int(r["meta"]["device_bytes"])
    if not act or not idle or not dev:
        return float("nan")
    a, c, n = np.sort(np.array(act)), 2 * target - 1, len(act)
    prev, need = 0.0, 0.0
    for k, v in enumerate(a):
        # for t in (prev, v]: S(t) = share of active windows with >= t bytes = (n - k) / n
        need += (v - prev) * max(0.0, (n - k) / n - c)
        prev = v
    per_idle = max(need, float(np.mean(idle)))
    return (a.sum() + per_idle * len(idle)) / dev


# Per-direction rate caps (bytes/s of WAN frames) of the delay floor; the burst is one second's worth.
DELAY_CAPS = (80e3, 40e3, 20e3, 10e3)


def rate_capped(run, cap):
    """The run as it would look if each direction's real packets left through a FIFO token bucket
    of `cap` bytes/s (burst: one second's worth): the same packets, later. Returns (run, delays)."""
    t = run["t"].copy()
    for direction in (True, False):
        idx = np.where(run["up"] == direction)[0]
        idx = idx[np.argsort(run["t"][idx], kind="stable")]
        tokens, last = cap, -np.inf  # before the first packet the bucket is full
        for i in idx:
            need = float(run["len"][i])
            send = max(run["t"][i], last)
            tokens = min(cap, tokens + (send - last) * cap)
            if tokens < need:
                send += (need - tokens) / cap
                tokens = need
            tokens -= need
            last = t[i] = send
    return dict(run, t=t), t - run["t"]


def delay_floor(runs, cap):
    """The decoy floor (see decoy_floor) of these runs after a rate cap of `cap` bytes/s per
    direction delayed their real packets: what a defence that both smooths and adds could reach.
    Returns (packet delay p50, p99 and max in s, [floor per FLOOR_TARGETS])."""
    capped, delays = zip(*(rate_capped(r, cap) for r in runs))
    d = np.concatenate(delays)
    return pct(d, 50), pct(d, 99), float(d.max()), [decoy_floor(list(capped), x) for x in FLOOR_TARGETS]


def pct(v, q):
    return float(np.percentile(v, q)) if len(v) else float("nan")


def fmt(v):
    if not v:
        return "n/a"
    return f"{np.mean(v):.2f}" if len(v) == 1 else f"{np.mean(v):.2f} ({min(v):.2f}-{max(v):.2f})"


def main(argv):
    md = "--markdown" in argv
    dirs = [a for a in argv if not a.startswith("--")]
    groups = {}
    for d in dirs:
        try:
            r = load(d)
        except (OSError, ValueError, KeyError) as e:
            print(f"{d}: skipped ({e})")
            continue
        groups.setdefault(r["meta"]["config"], []).append(r)
    rows = []
    for cfg in sorted(groups, key=lambda c: ORDER.index(c) if c in ORDER else 99):
        runs = sorted(groups[cfg], key=lambda r: int(r["meta"]["seed"]))
        labels = np.concatenate([windows(r)[1] for r in runs])
        res = {v: score(runs, v) if len(runs) >= 2 else ([], [], {}) for v in ("all", "up", "down")}
        per_kind = res["all"][2]
        wan = sum(int(r["meta"]["wan_bytes"]) for r in runs)
        dev = sum(int(r["meta"]["device_bytes"]) for r in runs)
        small = [float(e[3]) for r in runs for e in r["ex"] if e[1] in SMALL and e[3] != "fail"]
        voice = [float(e[3]) for r in runs for e in r["ex"] if e[1] == "voice-answer" and e[3] != "fail"]
        fails = sum(1 for r in runs for e in r["ex"] if e[3] == "fail")
        nex = sum(len(r["ex"]) for r in runs)
        mins = np.mean([float(r["meta"]["seconds"]) for r in runs]) / 60
        rows.append({
            "cfg": cfg, "runs": len(runs), "seeds": ",".join(r["meta"]["seed"] for r in runs), "min": mins,
            "win": len(labels), "active": labels.mean() if len(labels) else 0,
            "ba": fmt(res["all"][0]), "auc": fmt(res["all"][1]), "ba_up": fmt(res["up"][0]),
            "auc_up": fmt(res["up"][1]), "ba_down": fmt(res["down"][0]),
            "over": wan / dev if dev else float("nan"),
            "rate": dev / 1e3 / sum(float(r["meta"]["end"]) - float(r["meta"]["start"]) for r in runs),
            "p50": pct(small, 50), "p99": pct(small, 99), "v50": pct(voice, 50), "v99": pct(voice, 99),
            "fails": f"{fails}/{nex}", "per_kind": per_kind,
        })
    if not rows:
        print("no runs to score")
        return
    cols = [("configuration", "cfg"), ("runs (seeds)", None), ("min/run", "min"), ("windows (active)", None), ("device KB/s", "rate"),
            ("bal. acc. whole link", "ba"), ("AUC", "auc"), ("bal. acc. upstream", "ba_up"),
            ("AUC up", "auc_up"), ("bal. acc. downstream", "ba_down"), ("overhead", "over"),
            ("small req/ans p50/p99 ms", None), ("speaker answer p50/p99 ms", None), ("failed exchanges", "fails")]

    def cell(r, key, title):
        if title.startswith("runs"):
            return f"{r['runs']} ({r['seeds']})"
        if title.startswith("windows"):
            return f"{r['win']} ({100 * r['active']:.0f}%)"
        if title.startswith("small"):
            return f"{r['p50']:.1f} / {r['p99']:.1f}"
        if title.startswith("speaker"):
            return f"{r['v50']:.0f} / {r['v99']:.0f}"
        v = r[key]
        if key == "over":
            return f"{v:.2f}x"
        if key in ("min", "rate"):
            return f"{v:.1f}"
        return str(v)

    table = [[cell(r, k, t) for t, k in cols] for r in rows]
    heads = [t for t, _ in cols]
    if md:
        print("| " + " | ".join(heads) + " |")
        print("|" + "---|" * len(heads))
        for t in table:
            print("| " + " | ".join(t) + " |")
    else:
        for t in table:
            print("\n".join(f"  {h:<27} {c}" for h, c in zip(heads, t)))
            print()
    if any(r["per_kind"] for r in rows):
        print("whole link, share of held-out windows flagged active, by what happened in them (idle: false alarms;")
        print("one kind of activity alone; mixed: several), with the number of windows:")
    for r in rows:
        pk = r["per_kind"]
        if pk:
            order = sorted(pk, key=lambda k: (k != "idle", k == "mixed", k))
            print(f"  {r['cfg']:<27} " + ", ".join(f"{k} {pk[k][0] / pk[k][1]:.2f} ({pk[k][1]})" for k in order))
    floors = [(cfg, [decoy_floor(groups[cfg], t) for t in FLOOR_TARGETS]) for cfg in FLOOR_BASES if cfg in groups]
    if floors:
        head = " / ".join(f"{t:.2f}" for t in FLOOR_TARGETS)
        print("decoy floor: least overhead at which added packets alone (nothing delayed) could hold the observer")
        print(f"to a balanced accuracy of {head}, on top of the traffic of")
        for cfg, v in floors:
            print(f"  {cfg:<27} " + " / ".join(f"{x:.2f}x" for x in v))
        print("delay floor: the same after each direction's real packets leave through a token bucket of")
        print("CAP bytes/s (1 s burst), which delays them (packet delay p50 / p99 / max):")
        for cfg, _ in floors:
            for cap in DELAY_CAPS:
                p50, p99, top, v = delay_floor(groups[cfg], cap)
                print(f"  {cfg:<14} {cap / 1e3:>4.0f} KB/s  delay {p50:.2f} / {p99:.2f} / {top:.1f} s  floor "
                      + " / ".join(f"{x:.2f}x" for x in v))
    if any(r["runs"] < 2 for r in rows):
        print("(a configuration with one run has no classifier figure: it is trained on one seed and scored on another)")


if __name__ == "__main__":
    main(sys.argv[1:])
