"""Nie, Si, Zhou, "A Queueing-Theoretic Framework for Stability Analysis of LLM Inference
with KV Cache Memory Constraints" (arXiv 2605.04595, ICML 2026): the service rate
mu = M / (b E[g]) and work-conserving stability; and where it disagrees with the
thrashing of Greedy seen in this package.

Read: the abstract and a third-party technical review quoting the result (the paper's
text was not available here).  Claims: "the system is overloaded if lambda > mu, and it is
stable under a work-conserving batching policy if lambda < mu (1 - delta), where delta is
a small memory-slack term tied to the largest single request"; mu = M / (b E[g(s, o)]),
g the lifetime cumulative KV memory of a request, b a representative batch time;
"predicted service rates are usually within about 10% of measured GPU throughput"
(vLLM v1, chunked prefill, A100, Llama-3-8B).

Configuration: the package's VLLM policy (vLLM v1's schedule: FCFS from the head, chunked
prefill with a token budget of 8192, max_num_seqs 1024, preempted requests keep their
tokens and go back to the front: recompute eviction, front requeue), KV counted in tokens
(block size 1, as g is), prompts U{5..15} and decodes U{1..79}, M = 16492.  With unit slots
b = 1 and g = w(l, o), so mu is Prop. 3.2's lambda* = M / E[w]; with Jaillet et al.'s
Linear clock b is the clock's iteration time at the full-memory operating point
(``stability.theory.neighbours.operating_batch_time``; Nie et al. measure it).  delta is
read as max (l + o) / M (their exact expression is not available).  What differs: their
prefill chunks fill memory gradually during prefill; here a prompt (at most 15 tokens)
fits one iteration, so g = w.

The disagreement: Greedy is work-conserving, yet on the Section 4.1 lattice (l = 10, o =
20 / 40 / 60) with restart eviction it grows at 3.75 requests per class and slot, 0.923 mu,
well below mu (1 - delta) = 0.996 mu.  The rows below switch one assumption at a time:
eviction rule, requeue position, length lattice, batch-time clock.
"""

from __future__ import annotations

from experiments.common import (CHECK_LEVEL, LEVEL, Check, Context, Interval, cached_json,
                                fmt, growth_rate, half_sweep, policy_key, run_sweeps, select,
                                summary, write_results)
from experiments.neighbours import (claim_verdict, growth_verdict, run_tasks, stream_growth,
                                    timed_growth)

NAME = "nie_stability"
TITLE = ("Nie, Si, Zhou (arXiv 2605.04595): mu = M / (b E[g]), work-conserving stability, "
         "and the disagreement with Greedy's thrashing")
FIGURE = "fig12_work_conserving"

ROOT_SEED = 20260506
MEMORY = 16492
PROMPT, DECODE = "uniform:5:15", "uniform:1:79"
NIE_POLICY = {"kind": "vllm", "max_num_seqs": 1024, "max_num_batched_tokens": 8192}
NIE_WORLD = {"block_size": 1}
LATTICE_RATE = 3.75
"""Requests per class and slot on the Section 4.1 lattice (0.923 lambda*)."""
WORLDS = {"restart, arrival": {"eviction": "restart", "requeue": "arrival"},
          "restart, front": {"eviction": "restart", "requeue": "front"},
          "recompute, arrival": {"eviction": "recompute", "requeue": "arrival"},
          "recompute, front": {"eviction": "recompute", "requeue": "front"}}
BELOW, ABOVE, SATURATED, NEAR = 0.9, 1.1, 1.5, 0.96
RESOLUTION = 1e-3
"""Unit-slot runs: growth below RESOLUTION x mu (requests per slot) counts as none."""
TIMED_RESOLUTION = 5e-3
"""Timed runs (fewer iterations): growth below TIMED_RESOLUTION x mu (per second)."""
ACCURACY = 0.10
"""Nie et al.'s stated accuracy of mu against measured service rates."""
SLOT_FLOOR = 0.0446
"""Shortest iteration of Jaillet et al.'s clock (c0, seconds): sizes the horizons."""


def _budget(ctx: Context) -> dict:
    return dict(loads=ctx.pick([0.9, 1.1], [0.9, 1.1, 1.2],
                               [0.7, 0.8, 0.85, 0.9, 0.95, 0.97, 1.03, 1.05, 1.1, 1.2]),
                lattice=ctx.pick([0.9], [0.9, 1.05],
                                 [0.7, 0.8, 0.85, 0.9, 0.95, 0.97, 1.03, 1.05, 1.1]),
                slots=ctx.pick(4000, 20000, 200000), replications=ctx.pick(2, 6, 10),
                cell_replications=ctx.pick(3, 8, 16), seconds=ctx.pick(600.0, 6000.0, 30000.0))


def _lattice(jitter: int = 0):
    """Section 4.1's classes at rate 1 per class, decodes jittered by +-jitter."""
    import stability as s

    if not jitter:
        return s.Workload.paper_4_1(1.0)
    return s.Workload(tuple(s.RequestClass(1.0, 10, s.UniformInt(o - jitter, o + jitter))
                            for o in (20, 40, 60)))


def _uniform():
    import stability as s

    return s.Workload.single(1.0, s.UniformInt(5, 15), s.UniformInt(1, 79))


def theory() -> dict:
    from stability.clock import jaillet
    from stability.theory import critical_rate
    from stability.theory.neighbours import (largest_request_slack, operating_batch_time,
                                             service_rate)

    clock = jaillet()
    out = {}
    for key, w, longest in (("uniform", _uniform(), 15 + 79), ("lattice", _lattice(), 70)):
        mean_w = MEMORY / critical_rate(w, MEMORY)
        mean_l = sum(c.rate * c.prompt.mean() for c in w.classes) / w.total_rate
        mean_o = sum(c.rate * c.decode.mean() for c in w.classes) / w.total_rate
        bbar = operating_batch_time(clock, mean_l, mean_o, mean_w, MEMORY)
        out[key] = {"mean_g": mean_w, "mu_slot": service_rate(mean_w, MEMORY),
                    "delta": largest_request_slack(longest, MEMORY), "batch_time": bbar,
                    "mu_second": service_rate(mean_w, MEMORY, bbar)}
    return out


def compute(ctx: Context) -> dict:
    import stability as s
    from stability.clock import jaillet
    from stability.simulate import replication_seeds
    from stability.sweep import Sweep

    b = _budget(ctx)
    th = theory()
    common = dict(memory=(MEMORY,), replications=b["replications"], root_seed=ROOT_SEED,
                  slots=b["slots"], warmup=b["slots"] // 2, engine="stream")
    uniform = Sweep(name=f"{NAME}-uniform", workloads=tuple(
        {"kind": "synthetic", "load": f, "prompt": PROMPT, "decode": DECODE}
        for f in b["loads"]), policies=(NIE_POLICY,), worlds=(NIE_WORLD,), **common)
    curves = Sweep(name=f"{NAME}-lattice", workloads=tuple(
        {"kind": "paper-4.1", "load": f} for f in b["lattice"]), policies=({"kind": "greedy"},),
        worlds=(WORLDS["restart, arrival"], WORLDS["recompute, arrival"]), **common)
    per_cell = dict(common, replications=b["cell_replications"])
    cell = Sweep(name=f"{NAME}-cell", workloads=({"kind": "paper-4.1", "rate": LATTICE_RATE},),
                 policies=({"kind": "greedy"},), worlds=tuple(WORLDS.values()), **per_cell)
    vllm_cell = Sweep(name=f"{NAME}-cell-vllm", workloads=cell.workloads,
                      policies=(NIE_POLICY,), worlds=(NIE_WORLD,), **per_cell)
    sweeps = [uniform, curves, cell, vllm_cell]
    columns = run_sweeps(ctx, NAME, sweeps + [half_sweep(x) for x in sweeps])

    def growth(sweep, workload, policy, world) -> list:
        both = select(columns, workload=workload.canonical(), policy=policy_key(policy),
                      world=_canon(world))
        full = select(both, slots=sweep.slots)
        return growth_rate(full, select(both, slots=sweep.slots // 2)).tolist()

    lam = th["lattice"]["mu_slot"]
    results_curves = {
        "vLLM v1 configuration (uniform lengths)": [
            {"load": w.load, "growth": summary(growth(uniform, w, NIE_POLICY, NIE_WORLD))}
            for w in uniform.workloads],
        "Greedy, restart (Sec. 4.1 lattice)": [
            {"load": w.load, "growth": summary(growth(curves, w, {"kind": "greedy"},
                                                      WORLDS["restart, arrival"]))}
            for w in curves.workloads],
        "Greedy, recompute (Sec. 4.1 lattice)": [
            {"load": w.load, "growth": summary(growth(curves, w, {"kind": "greedy"},
                                                      WORLDS["recompute, arrival"]))}
            for w in curves.workloads]}
    cells = {f"Greedy, {k}": growth(cell, cell.workloads[0], {"kind": "greedy"}, v)
             for k, v in WORLDS.items()}
    cells["vLLM v1 configuration"] = growth(vllm_cell, cell.workloads[0], NIE_POLICY,
                                            NIE_WORLD)
    load_cell = 3 * LATTICE_RATE / lam

    def custom():
        seeds = replication_seeds(ROOT_SEED + 1, b["replications"])
        nie = s.VLLM(max_num_seqs=1024, max_num_batched_tokens=8192)
        jit = [{"workload": _lattice(5).with_total_rate(3 * LATTICE_RATE), "policy": s.Greedy(),
                "memory": MEMORY, "slots": b["slots"], "seed": sd} for sd in seeds]
        clock = jaillet()
        mu_u, mu_l = th["uniform"]["mu_second"], th["lattice"]["mu_second"]

        def timed(w, rate, policy, world):
            return [{"workload": w.with_total_rate(rate), "policy": policy, "memory": MEMORY,
                     "clock": clock, "seconds": b["seconds"], "seed": sd, "world": world,
                     "slot_floor": SLOT_FLOOR} for sd in seeds]

        groups = {
            "saturated": timed(_uniform(), SATURATED * mu_u, nie, NIE_WORLD),
            "below": timed(_uniform(), BELOW * mu_u, nie, NIE_WORLD),
            "near": timed(_uniform(), NEAR * mu_u, nie, NIE_WORLD),
            "lattice restart": timed(_lattice(), load_cell * mu_l, s.Greedy(), {}),
            "lattice restart near": timed(_lattice(), NEAR * mu_l, s.Greedy(), {}),
            "lattice recompute near": timed(_lattice(), NEAR * mu_l, s.Greedy(),
                                            {"eviction": "recompute"})}
        flat = [t for g in groups.values() for t in g]
        out = run_tasks(ctx, timed_growth, flat)
        res, i = {}, 0
        for key, g in groups.items():
            res[key] = out[i:i + len(g)]
            i += len(g)
        res["jitter"] = run_tasks(ctx, stream_growth, jit)
        return res

    extra = cached_json(ctx, f"{NAME}_custom", dict(b, root_seed=ROOT_SEED, theory=th), custom)
    results = {"title": TITLE,
               "params": dict(b, memory=MEMORY, root_seed=ROOT_SEED, prompt=PROMPT,
                              decode=DECODE, policy=NIE_POLICY, world=NIE_WORLD,
                              lattice_rate=LATTICE_RATE, load_cell=load_cell,
                              resolution=RESOLUTION, timed_resolution=TIMED_RESOLUTION),
               "theory": th, "curves": results_curves, "cells": cells, "timed": extra}
    write_results(ctx, NAME, results)
    return results


def _canon(world: dict) -> str:
    from stability.sweep.spec import WorldSpec, canonical

    return canonical(WorldSpec(**world).to_dict())


# ---------------------------------------------------------------------------- verify
def _curve_point(results: dict, label: str, load: float):
    for p in results["curves"].get(label, []):
        if abs(p["load"] - load) < 1e-9:
            return p["growth"]["values"]
    return None


def _stable_row(claim, source, values, scale, resolution, theory_text, unit, wanted,
                level=CHECK_LEVEL):
    eps = resolution * scale
    state, iv = growth_verdict(values, eps, level)
    return Check(NAME, claim, source, theory_text,
                 f"growth {iv.level_text(level, 3, unit)}: {state}",
                 f"{wanted} iff the {level:.4g} Student-t interval of the growth lies "
                 f"{'below' if wanted == 'stable' else 'above'} {fmt(eps, 3)} {unit} "
                 f"({resolution:g} mu); the opposite side fails; else inconclusive",
                 claim_verdict(state, wanted))


def verify(results: dict) -> list:
    th, rows = results["theory"], []
    uni = th["uniform"]
    label = "vLLM v1 configuration (uniform lengths)"
    for load, wanted in ((ABOVE, "unstable"), (BELOW, "stable")):
        values = _curve_point(results, label, load)
        if values is None:
            continue
        if wanted == "unstable":
            claim = (f"overloaded if lambda > mu: at lambda = {load:g} mu (b = 1 slot, "
                     f"mu = M / E[g] = {fmt(uni['mu_slot'], 4)} req/slot) the queue grows")
        else:
            claim = (f"stable under a work-conserving policy if lambda < mu (1 - delta): at "
                     f"lambda = {load:g} mu < mu (1 - delta) = "
                     f"{fmt(1 - uni['delta'], 4)} mu (delta = max(l + o) / M)")
        rows.append(_stable_row(claim, "paper", values, uni["mu_slot"], RESOLUTION,
                                f"{wanted} (mu = {fmt(uni['mu_slot'], 4)} req/slot)",
                                "req/slot", wanted))
    timed = results["timed"]
    sat = [t["throughput"] for t in timed.get("saturated", [])]
    if sat:
        iv = Interval.of([x / uni["mu_second"] for x in sat], LEVEL)
        inside = 1 - ACCURACY <= iv.low and iv.high <= 1 + ACCURACY
        outside = iv.high < 1 - ACCURACY or iv.low > 1 + ACCURACY
        rows.append(Check(
            NAME, "mu predicts the measured service rate within about 10% (Jaillet et al.'s "
                  f"batch-time clock, b = {fmt(uni['batch_time'] * 1e3, 4)} ms at the "
                  "full-memory operating point; saturated input)", "paper",
            f"mu = M / (b E[g]) = {fmt(uni['mu_second'], 4)} req/s",
            f"completions / mu = {iv.level_text(LEVEL, 4)}",
            f"PASS if the {LEVEL:.0%} interval lies within 1 +- {ACCURACY:g}, FAIL if it "
            "lies outside, else inconclusive",
            "PASS" if inside else "FAIL" if outside else "INCONCLUSIVE"))
    for key, load in (("below", BELOW), ("near", NEAR)):
        values = [t["growth"] for t in timed.get(key, [])]
        if values:
            rows.append(_stable_row(
                f"stable at lambda = {load:g} mu < mu (1 - delta) under the batch-time clock "
                f"(vLLM v1 configuration, uniform lengths; mu = {fmt(uni['mu_second'], 4)} "
                "req/s)", "paper", values, uni["mu_second"], TIMED_RESOLUTION, "stable",
                "req/s", "stable"))
    rows += _disagreement_rows(results)
    return rows


def _disagreement_rows(results: dict) -> list:
    th, cells, timed = results["theory"], results["cells"], results["timed"]
    lat = th["lattice"]
    load = results["params"]["load_cell"]
    where = (f"Sec. 4.1 lattice, {LATTICE_RATE:g} req/class/slot = {fmt(load, 3)} mu < "
             f"mu (1 - delta) = {fmt(1 - lat['delta'], 4)} mu")
    rows = []
    if "Greedy, restart, arrival" in cells:
        rows.append(_stable_row(
            "Nie et al.'s stability in Dong & Cao's world: Greedy (work-conserving), restart "
            f"eviction, unit slots; {where}", "paper", cells["Greedy, restart, arrival"],
            lat["mu_slot"], RESOLUTION, "stable (Nie et al.)", "req/slot", "stable"))
    if "vLLM v1 configuration" in cells:
        rows.append(_stable_row(
            "the same claim in vLLM v1's world (VLLM policy: recompute, front requeue, "
            f"chunked prefill; block size 1), unit slots; {where}", "paper",
            cells["vLLM v1 configuration"], lat["mu_slot"], RESOLUTION,
            "stable (Nie et al.)", "req/slot", "stable"))
    if all(f"Greedy, {k}" in cells for k in WORLDS):
        level = 1 - (1 - CHECK_LEVEL) / len(WORLDS)
        eps = RESOLUTION * lat["mu_slot"]
        states = {k: growth_verdict(cells[f"Greedy, {k}"], eps, level) for k in WORLDS}
        want = {k: ("unstable" if k.startswith("restart") else "stable") for k in WORLDS}
        same = all(cells[f"Greedy, {e}, arrival"] == cells[f"Greedy, {e}, front"]
                   for e in ("restart", "recompute"))
        if any(st == "undecided" for st, _ in states.values()):
            v = "INCONCLUSIVE"
        else:
            v = "PASS" if same and all(states[k][0] == want[k] for k in WORLDS) else "FAIL"
        rows.append(Check(
            NAME, "which assumption makes the difference: with everything else fixed "
                  f"(Greedy, unit slots, {where}), restart eviction grows and recompute "
                  "eviction is stable, whatever the requeue position (front = arrival for "
                  "a single FIFO queue)", "ours",
            "; ".join(f"{k}: {want[k]}" for k in WORLDS) + "; front and arrival identical",
            "; ".join(f"{k}: {iv.text(3)} ({st})" for k, (st, iv) in states.items())
            + f"; front == arrival per seed: {same}",
            f"each world's growth interval (level {level:.4g}: {CHECK_LEVEL:.0%} Bonferroni "
            f"over 4) on the stated side of {fmt(eps, 3)} req/slot, and identical growth "
            "for front and arrival", v))
    jit = [t["growth"] for t in timed.get("jitter", [])]
    if jit:
        rows.append(_stable_row(
            "lengths on a lattice are needed for the thrash: decodes jittered by +-5 (same "
            f"means), Greedy with restart, unit slots, {LATTICE_RATE:g} req/class/slot, is "
            "stable", "ours", jit, lat["mu_slot"], RESOLUTION, "stable", "req/slot",
            "stable"))
    for key, text, load_ in (
            ("lattice restart", "restart", load),
            ("lattice restart near", "restart", NEAR),
            ("lattice recompute near", "recompute", NEAR)):
        values = [t["growth"] for t in timed.get(key, [])]
        if not values:
            continue
        rows.append(_stable_row(
            f"batch time: Nie et al.'s stability under Jaillet et al.'s clock, Greedy with "
            f"{text} eviction on the Sec. 4.1 lattice at lambda = {fmt(load_, 3)} mu "
            f"(mu = {fmt(lat['mu_second'], 4)} req/s, b = {fmt(lat['batch_time'] * 1e3, 4)} "
            "ms)", "paper", values, lat["mu_second"], TIMED_RESOLUTION,
            "stable (Nie et al.)", "req/s", "stable"))
    return rows
