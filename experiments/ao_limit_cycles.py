"""Ao, Dong, Luo, Simchi-Levi, "Service-Induced Congestion in Memory-Constrained LLM
Serving" (arXiv 2606.15555): limit cycles of greedy batching.

Read: the abstract (arXiv listing and HTML front page); the model's equations were not
available here.  Claims, in the abstract's words: "In the saturated-input regime, the
system admits both eviction-free fixed points and limit cycles with evictions.  For
homogeneous workloads, the eviction-free equilibrium is unstable under standard batching
dynamics and, except for a Lebesgue-measure-zero exact-capture set, the system converges
to a unique worst-case limit cycle ... with throughput losses as large as 50%.  ... Under
an input-dominated scaling regime, coprime decoding lengths stabilize the eviction-free
equilibrium, while non-coprime lengths create synchronized modes that drive instability."

Their model as a configuration of the engine: saturated input (a queue that never empties:
all requests present from the start), Greedy admission ("standard batching": admit while
the cache fits), eviction that discards the cache and restarts the request (restart, LIFO),
unit slots.  What may differ: their dynamics are a (possibly continuous) map of admissions
and ages; ours are integer requests in slots with LIFO eviction of the newest.

Homogeneous runs start on the eviction-free equilibrium: k identical requests arrive per
slot for o + 10 slots with M = k w(l, o) exactly (so ages 0..o-1 each hold k requests and
the cache is exactly full), then the queue saturates.  "Perturbed": one request fewer in
one slot.  Two-class runs: common prompt l, decode d1 or d2 with probability 1/2 each in
random order (the randomness is the perturbation), k per slot during the ramp-up and
M = k E[w]; restart share = share of the requests completing in the second half that
were evicted at least once.  Theory (``stability.theory.neighbours``): the cohort cycle
floor(M / (l + o)) / o and its loss, and the spectral radius of Greedy linearised at the
equilibrium (the survival-polynomial mechanism in our slot model).
"""

from __future__ import annotations

import math

import numpy as np

from experiments.common import Check, Context, cached_json, fmt, verdict, write_results

NAME = "ao_limit_cycles"
TITLE = ("Ao et al. (arXiv 2606.15555): limit cycles of greedy batching, coprime and "
         "non-coprime decode lengths")
FIGURE = "fig11_limit_cycles"

ROOT_SEED = 20260614
HOMOGENEOUS = ({"l": 10, "o": 20, "k": 4}, {"l": 50, "o": 20, "k": 10}, {"l": 1, "o": 100, "k": 2})
"""(prompt, decode, requests per slot at the equilibrium); the last has the largest loss."""
COPRIME = ((2, 3), (3, 4), (3, 5), (4, 7), (5, 8))
NON_COPRIME = ((2, 4), (3, 6), (4, 6), (4, 8), (6, 9))
INPUT_DOMINATED = 400
"""The prompt of the input-dominated rows (44 to 200 times the decode lengths); the grid
of prompts also holds shorter ones, where the linearisation decides."""
VARIANTS = ("unperturbed", "perturbed", "recompute", "flow")
"""Homogeneous runs: Greedy from the equilibrium, Greedy with one request fewer in one
slot, the same under recompute eviction, and FlowControl(k) (Alg. 2) perturbed."""
NEAR_FULL = 0.98
"""Recompute keeps at least this share of the equilibrium throughput (stated criterion)."""


def _w(l: int, o: int) -> int:
    return l * o + o * (o + 1) // 2


def homogeneous_run(task: dict) -> dict:
    """One homogeneous saturated run from the equilibrium (deterministic)."""
    import stability as s

    l, o, k, variant = task["l"], task["o"], task["k"], task["variant"]
    memory = k * _w(l, o)
    ramp = o + 10
    horizon = task["periods"] * o
    arrival = list(np.repeat(np.arange(ramp), k))
    if variant != "unperturbed":
        arrival.remove(ramp - 3)  # one request fewer, three slots before saturation
    saturate = int(horizon * 2 * memory / _w(l, o)) + memory // (l + 1) + 100
    arrival = np.array(arrival + [ramp] * saturate, dtype=np.int64)
    req = s.Requests(arrival, np.full(arrival.size, l), np.full(arrival.size, o))
    policy = s.FlowControl(k) if variant == "flow" else s.Greedy()
    world = {"eviction": "recompute"} if variant == "recompute" else {}
    r = s.simulate(req, policy, memory, horizon=horizon, series_points=horizon + 1, **world)
    half = horizon // 2
    tail = r.completion >= half
    kv = r.series.kv.astype(np.int64)
    active = r.series.active.astype(np.int64)
    last = kv[-4 * o:]
    periodic = bool(np.array_equal(last[:-o], last[o:]))
    window = slice(max(ramp - 2 * o, 0), min(ramp + 12 * o, kv.size))
    return {"l": l, "o": o, "k": k, "variant": variant, "memory": memory,
            "horizon": horizon, "throughput": float(tail.sum() / (horizon - half)),
            "evictions_total": int(r.evictions_total),
            "tail_evicted": int(np.sum(tail & (r.evictions > 0))),
            "periodic_o": periodic, "kv_window_start": window.start,
            "kv_window": kv[window].tolist(), "active_window": active[window].tolist(),
            "ramp": ramp}


def two_class_run(task: dict) -> dict:
    """One two-class saturated run (random class order from ``seed``)."""
    import stability as s

    l, (d1, d2), k, horizon = task["l"], task["pair"], task["k"], task["horizon"]
    mean_w = (_w(l, d1) + _w(l, d2)) / 2
    memory = int(k * mean_w)
    ramp = max(d1, d2) + 10
    saturate = int(2 * horizon * memory / (l * min(d1, d2)))
    arrival = np.concatenate([np.repeat(np.arange(ramp), k), np.full(saturate, ramp)])
    rng = np.random.default_rng(task["seed"])
    cls = (rng.random(arrival.size) < 0.5).astype(np.int64)
    decode = np.where(cls == 0, d1, d2)
    req = s.Requests(arrival, np.full(arrival.size, l), decode, cls)
    r = s.simulate(req, s.Greedy(), memory, horizon=horizon, series_points=2)
    tail = r.completion >= horizon // 2
    done = int(tail.sum())
    return {"l": l, "pair": [d1, d2], "seed": task["seed"], "memory": memory,
            "completed_tail": done,
            "restart_share": float(np.sum(tail & (r.evictions > 0)) / max(done, 1)),
            "throughput_ratio": float(done / (horizon - horizon // 2) / (memory / mean_w))}


def _budget(ctx: Context) -> dict:
    return dict(periods=ctx.pick(30, 60, 120),
                prompts=ctx.pick([400], [20, 100, 400], [10, 20, 50, 100, 400, 1000]),
                k=ctx.pick(10, 20, 40), horizon=ctx.pick(800, 1500, 8000),
                replications=ctx.pick(2, 3, 8))


def _map(ctx: Context, fn, tasks: list) -> list:
    if ctx.executor is None:
        return [fn(t) for t in tasks]
    return [f.result() for f in [ctx.executor.submit(fn, t) for t in tasks]]


def compute(ctx: Context) -> dict:
    from stability.theory.neighbours import (cohort_cycle_loss, cohort_cycle_throughput,
                                             equilibrium_throughput, fluid_cycle_loss,
                                             greedy_linearised_radius)

    b = _budget(ctx)
    pairs = COPRIME + NON_COPRIME
    seeds = [ROOT_SEED + r for r in range(b["replications"])]

    def run():
        homo = [dict(h, variant=v, periods=b["periods"]) for h in HOMOGENEOUS for v in VARIANTS]
        two = [{"l": l, "pair": p, "k": b["k"], "horizon": b["horizon"], "seed": sd}
               for l in b["prompts"] for p in pairs for sd in seeds]
        return {"homogeneous": _map(ctx, homogeneous_run, homo),
                "two_class": _map(ctx, two_class_run, two)}

    data = cached_json(ctx, f"{NAME}_runs", dict(b, root_seed=ROOT_SEED,
                                                 homogeneous=list(HOMOGENEOUS)), run)
    for h in data["homogeneous"]:
        l, o, m = h["l"], h["o"], h["memory"]
        h["equilibrium"] = equilibrium_throughput(l, o, m)
        h["cycle"] = cohort_cycle_throughput(l, o, m)
        h["cycle_loss"] = cohort_cycle_loss(l, o, m)
        h["fluid_loss"] = fluid_cycle_loss(l, o)
    cells = []
    for l in b["prompts"]:
        for p in pairs:
            runs = [r for r in data["two_class"] if r["l"] == l and tuple(r["pair"]) == p]
            cells.append({"l": l, "pair": list(p), "gcd": math.gcd(*p),
                          "radius": greedy_linearised_radius(l, p),
                          "restart_share": [r["restart_share"] for r in runs],
                          "throughput_ratio": [r["throughput_ratio"] for r in runs],
                          "completed_tail": [r["completed_tail"] for r in runs]})
    results = {"title": TITLE, "params": dict(b, root_seed=ROOT_SEED,
                                              input_dominated=INPUT_DOMINATED,
                                              homogeneous=list(HOMOGENEOUS)),
               "homogeneous": data["homogeneous"], "cells": cells}
    write_results(ctx, NAME, results)
    return results


# ---------------------------------------------------------------------------- verify
def _homo(results: dict, variant: str) -> list:
    return [h for h in results["homogeneous"] if h["variant"] == variant]


def _label(h: dict) -> str:
    return f"(l, o, k) = ({h['l']}, {h['o']}, {h['k']})"


def _stable(cell: dict) -> bool:
    """No eviction among the second-half completions of any replication."""
    return all(x == 0 for x in cell["restart_share"])


def _unstable(cell: dict) -> bool:
    """Evictions among the second-half completions of every replication."""
    return all(x > 0 for x in cell["restart_share"])


def verify(results: dict) -> list:
    rows = []
    still = _homo(results, "unperturbed")
    if still:
        ok = all(h["evictions_total"] == 0 and abs(h["throughput"] - h["equilibrium"]) < 1e-9
                 for h in still)
        rows.append(Check(
            NAME, "homogeneous, saturated, Greedy with restart: started exactly on the "
                  "eviction-free equilibrium the system stays there (a fixed point; the "
                  "exact-capture case)", "paper",
            "; ".join(f"{_label(h)}: {fmt(h['equilibrium'], 4)} req/slot" for h in still),
            "; ".join(f"{_label(h)}: {fmt(h['throughput'], 4)} req/slot, "
                      f"{h['evictions_total']} evictions" for h in still),
            "no eviction and second-half throughput = M / w exactly, every configuration",
            verdict(ok)))
    moved = _homo(results, "perturbed")
    if moved:
        ok = all(h["tail_evicted"] > 0 and h["throughput"] < h["equilibrium"] - 1e-9
                 for h in moved)
        rows.append(Check(
            NAME, "the eviction-free equilibrium is unstable: one request fewer in one slot "
                  "and Greedy never returns to it", "paper",
            "evictions persist; throughput below M / w",
            "; ".join(f"{_label(h)}: {h['tail_evicted']} evicted second-half completions, "
                      f"{fmt(h['throughput'], 4)} < {fmt(h['equilibrium'], 4)} req/slot"
                      for h in moved),
            "evictions among the second-half completions and throughput < M / w, every "
            "configuration", verdict(ok)))
        ok = all(abs(h["throughput"] - h["cycle"]) < 1e-9 and h["periodic_o"] for h in moved)
        rows.append(Check(
            NAME, "it converges to the worst-case limit cycle: synchronised cohorts of "
                  "period o that complete floor(M / (l + o)) requests per period", "paper",
            "; ".join(f"{_label(h)}: {fmt(h['cycle'], 4)} req/slot" for h in moved),
            "; ".join(f"{_label(h)}: {fmt(h['throughput'], 4)} req/slot, KV demand "
                      f"{'periodic' if h['periodic_o'] else 'NOT periodic'} with period o"
                      for h in moved),
            "second-half throughput = floor(M / (l + o)) / o exactly and the KV demand of "
            "the last 4 periods repeats with period o, every configuration", verdict(ok)))
        loss = [1 - h["throughput"] / h["equilibrium"] for h in moved]
        top = max(loss)
        ok = all(x < 0.5 for x in loss) and top >= 0.45
        rows.append(Check(
            NAME, "throughput losses as large as 50% (loss = 1 - cycle / equilibrium)",
            "paper",
            "loss (o - 1) / (2 (l + o)) < 1/2 (fluid), -> 1/2 as l / o -> 0; with floors: "
            + "; ".join(f"{_label(h)}: {fmt(h['cycle_loss'], 4)}" for h in moved),
            "; ".join(f"{_label(h)}: {fmt(x, 4)}" for h, x in zip(moved, loss)),
            "every loss < 0.5 and the largest >= 0.45", verdict(ok)))
    redo, flow = _homo(results, "recompute"), _homo(results, "flow")
    if redo and flow:
        ok = (all(h["tail_evicted"] > 0 and h["throughput"] >= NEAR_FULL * h["equilibrium"]
                  for h in redo)
              and all(h["evictions_total"] == 0 and abs(h["throughput"] - h["equilibrium"])
                      < 1e-9 for h in flow))
        rows.append(Check(
            NAME, "which assumption makes the loss: the discarded cache (restart).  Under "
                  "recompute eviction the perturbed Greedy still evicts but keeps the "
                  "throughput; flow control (Alg. 2, b = k per slot) never evicts", "ours",
            "recompute: evictions, throughput >= 0.98 M / w; FlowControl(k): M / w, no "
            "eviction",
            "; ".join(f"{_label(h)}: recompute {fmt(h['throughput'] / h['equilibrium'], 4)} "
                      f"x M / w ({h['tail_evicted']} evicted), flow {fmt(f['throughput'] / f['equilibrium'], 4)} x M / w "
                      f"({f['evictions_total']} evictions)" for h, f in zip(redo, flow)),
            f"recompute: evictions in the second half and throughput >= {NEAR_FULL} M / w; "
            "flow control: no eviction and throughput = M / w exactly", verdict(ok)))
    rows += _two_class_rows(results)
    return rows


def _two_class_rows(results: dict) -> list:
    cells = results.get("cells", [])
    top = [c for c in cells if c["l"] == INPUT_DOMINATED]
    rows = []
    co = [c for c in top if c["gcd"] == 1]
    non = [c for c in top if c["gcd"] > 1]

    def name(c):
        return f"({c['pair'][0]}, {c['pair'][1]})"

    if co:
        ok = all(_stable(c) for c in co)
        rows.append(Check(
            NAME, f"two classes, common prompt l = {INPUT_DOMINATED} (input-dominated): "
                  "coprime decode lengths stabilise the eviction-free equilibrium", "paper",
            "; ".join(f"{name(c)}: radius {fmt(c['radius'], 4)}" for c in co),
            "; ".join(f"{name(c)}: restart share {fmt(max(c['restart_share']), 3)} (max of "
                      f"n={len(c['restart_share'])})" for c in co),
            "no eviction among the second-half completions of any replication, every "
            "coprime pair", verdict(ok)))
    if non:
        ok = all(_unstable(c) for c in non)
        rows.append(Check(
            NAME, f"two classes, common prompt l = {INPUT_DOMINATED}: non-coprime decode "
                  "lengths synchronise and destabilise it", "paper",
            "; ".join(f"{name(c)}: radius {fmt(c['radius'], 4)}" for c in non),
            "; ".join(f"{name(c)}: restart share {fmt(min(c['restart_share']), 3)} to "
                      f"{fmt(max(c['restart_share']), 3)} (n={len(c['restart_share'])})"
                      for c in non),
            "evictions among the second-half completions of every replication, every "
            "non-coprime pair", verdict(ok)))
    if cells:
        agree = [(_stable(c) if c["radius"] < 1 else _unstable(c)) for c in cells]
        bad = [f"l={c['l']} {name(c)}" for c, a in zip(cells, agree) if not a]
        rows.append(Check(
            NAME, "the survival-polynomial mechanism: the linearised Greedy map (our slot "
                  "model) predicts which cells are stable, at every prompt length", "ours",
            f"stable iff spectral radius < 1 ({sum(c['radius'] < 1 for c in cells)} of "
            f"{len(cells)} cells)",
            f"{sum(agree)} of {len(cells)} cells agree" + (f"; disagree: {', '.join(bad)}"
                                                          if bad else ""),
            "radius < 1: no second-half eviction in any replication; radius > 1: "
            "second-half evictions in every replication (every cell)",
            verdict(all(agree))))
    return rows
