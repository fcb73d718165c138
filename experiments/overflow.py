"""Experiment 4: overflow frequency against the slack Delta = M - E[B] E[w].

Flow control with E[B] = 12 activations per slot (deterministic and Poisson budgets) on
the Section 4.1 classes, kept saturated (arrivals 4.02 per class per slot, 12.06 in total,
so the queue never empties after the first ~5e4 slots), for a range of capacities M.
Per slot the simulated overflow frequency is compared with

* the Chernoff bound exp(-I(M)) of the reconstructed Alg. 2 overflow bound
  (``stability.theory.overflow_bound``), and
* the exact FFT tail P(U > M) of the saturated, eviction-free demand U
  (``stability.theory.exact_tail``).

Low frequencies need long runs: every point is a set of streaming replications (the sweep
store's ``stream`` engine, run side by side on the process pool) whose length is chosen
from the FFT prediction so that about ``events`` overflows are expected, capped.  The
warm-up (the queue building up) is removed exactly: each replication is also run for the
warm-up slots alone with the same seed (the streaming engine is deterministic in the seed,
so it is the same prefix) and those overflow events are subtracted.

Rare-event estimates: :func:`rare_event_points` adds importance-sampling points from
``stability.theory.rare`` far below what plain simulation reaches.
"""

from __future__ import annotations

import math

import numpy as np

from experiments.common import (policy_key, Check, Context, Interval, cached_json, fmt, select,
                                sweep_seeds, write_results)

NAME = "overflow"
TITLE = "Overflow events per slot against the slack: simulation, Chernoff bound, exact tail"
FIGURE = "fig4_overflow"

RATE = 4.02
"""Arrivals per class per slot: above the budget's 4 per class, so the system is saturated."""
BUDGET = 12
LAWS = ("deterministic", "poisson")
ROOT_SEED = 20260404
MEAN_DEMAND = 12 * 4060 / 3  # E[B] E[w] = 16240 tokens
RARE_LEVEL = 1e-4
"""Points with P(U > M) at most this are the rare regime of the accuracy row."""


def _budget(ctx: Context) -> dict:
    return dict(
        slacks={"deterministic": ctx.pick([260, 760, 1260], [260, 760, 1260, 1760, 2260],
                                          [260, 760, 1260, 1760, 2260, 2760]),
                "poisson": ctx.pick([260, 1260, 2260], [260, 1260, 2260, 3260],
                                    [260, 1260, 2260, 3260, 4260])},
        events=ctx.pick(20, 60, 200), rep_slots=ctx.pick(100_000, 1_000_000, 10_000_000),
        min_reps=ctx.pick(2, 4, 8), max_slots=ctx.pick(400_000, 6_000_000, 200_000_000),
        warmup=ctx.pick(20_000, 50_000, 50_000),
        line_slacks=list(range(0, 6001, ctx.pick(500, 100, 100))))


def _plan(p_fft: float, b: dict) -> tuple[int, int]:
    """(replications, slots per replication) for a point whose eviction-free tail is p_fft.

    The simulated frequency is below P(U > M) (evictions clip the excursions), by a factor
    of at most ~3 where we looked, so we ask for events / (p_fft / 3) slots.
    """
    need = b["events"] / max(p_fft / 3.0, 1e-300)
    total = min(max(need, b["min_reps"] * b["rep_slots"] / 10), b["max_slots"])
    reps = max(b["min_reps"], math.ceil(total / b["rep_slots"]))
    per_rep = max(int(math.ceil(total / reps / 1000.0)) * 1000, 4 * b["warmup"])
    return reps, per_rep


RARE_SLACKS = {"deterministic": (1260, 2260, 3260, 4260, 5260),
               "poisson": (2260, 3260, 4260, 5260, 6000)}
"""Slacks at which a rare-event estimator (if present) adds points, down to ~1e-20."""


def rare_event_points(workload, law: str, mode: str, log=None) -> list:
    """Importance-sampling estimates of P(U > M) (``stability.theory.rare``), the per-slot
    overflow probability of the saturated eviction-free relaxation (the quantity of the
    FFT line), at :data:`RARE_SLACKS`, with intervals Bonferroni-corrected to 99%
    family-wise.  Returns dicts (memory, slack, estimate, ci_low, ci_high, fft, method)."""
    from stability.theory import exact_tail
    from stability.theory.budget import Budget
    from stability.theory.rare import overflow_probability_is

    samples = {"smoke": 2_000, "quick": 20_000, "full": 200_000}[mode]
    budget = Budget(BUDGET, law)
    memories = [int(MEAN_DEMAND + d) for d in RARE_SLACKS[law]]
    fft = exact_tail(workload, budget, memories).prob
    out = []
    alpha = 0.01 / len(memories)  # Bonferroni: 99% family-wise over the points
    for memory, p in zip(memories, fft):
        est = overflow_probability_is(workload, budget, memory, samples=samples,
                                      seed=ROOT_SEED, alpha=alpha)
        out.append({"memory": memory, "slack": memory - MEAN_DEMAND, "estimate": est.value,
                    "ci_low": est.ci_low, "ci_high": est.ci_high, "fft": float(p),
                    "samples": samples, "level": 1 - alpha,
                    "method": f"{est.method} sampling of P(U > M)"})
    return out


def _rare_digest() -> str:
    """Hash of the rare-event estimator's source: new estimator code, new points."""
    import hashlib
    from pathlib import Path

    import stability.theory.rare as rare

    digest = hashlib.sha256()
    for path in sorted(Path(rare.__file__).parent.glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _lines(workload, budget, slacks: list) -> dict:
    from stability.theory import exact_tail, overflow_bound

    memories = [int(MEAN_DEMAND + d) for d in slacks]
    tail = exact_tail(workload, budget, memories)
    return {"slack": list(slacks), "memory": memories, "fft": tail.prob.tolist(),
            "chernoff": [overflow_bound(workload, budget, m).per_slot for m in memories],
            "fft_notes": list(tail.notes)}


def compute(ctx: Context) -> dict:
    import stability as s
    from stability.sweep import Sweep
    from stability.theory import exact_tail, overflow_bound
    from stability.theory.budget import Budget

    from experiments.common import run_sweeps

    b = _budget(ctx)
    workload = s.Workload.paper_4_1(RATE)
    lines, plans, sweeps, prefix = {}, {}, [], []
    for law in LAWS:
        budget = Budget(BUDGET, law)
        lines[law] = cached_json(ctx, f"{NAME}_lines_{law}", dict(law=law, rate=RATE,
                                                                   slacks=b["line_slacks"]),
                                 lambda: _lines(workload, budget, b["line_slacks"]))
        mems = [int(MEAN_DEMAND + d) for d in b["slacks"][law]]
        p_sim = exact_tail(workload, budget, mems).prob
        for m, p in zip(mems, p_sim):
            reps, per_rep = _plan(float(p), b)
            plans[(law, m)] = (reps, per_rep, float(p))
            common = dict(workloads=({"kind": "paper-4.1", "rate": RATE},),
                          policies=({"kind": "flow", "budget": BUDGET, "law": law},),
                          memory=(m,), replications=reps, root_seed=ROOT_SEED, engine="stream")
            sweeps.append(Sweep(name=f"{NAME}-{law}-{m}-{per_rep}", slots=per_rep, **common))
            prefix.append(Sweep(name=f"{NAME}-{law}-{m}-warmup-{b['warmup']}",
                                slots=b["warmup"], **common))
    total = sum(r * n for r, n, _ in plans.values())
    ctx.log(f"{NAME}: {len(plans)} points, {total:.3g} simulated slots in all")
    columns = run_sweeps(ctx, NAME, sweeps + prefix)
    points = {law: [] for law in LAWS}
    for (law, m), (reps, per_rep, p) in plans.items():
        policy = {"kind": "flow", "budget": BUDGET, "law": law}
    
        canon = policy_key(policy)
        full = select(columns, policy=canon, memory=m, slots=per_rep)
        head = select(columns, policy=canon, memory=m, slots=b["warmup"])
        by_seed = dict(zip(head["seed"].tolist(), head["overflow_events"].tolist()))
        events = np.array([e - by_seed[sd] for sd, e in zip(full["seed"].tolist(),
                                                             full["overflow_events"].tolist())],
                          dtype=float)
        freq = events / (per_rep - b["warmup"])
        measured = reps * (per_rep - b["warmup"])
        ci = Interval.of(freq)
        points[law].append({
            "memory": m, "slack": m - MEAN_DEMAND, "replications": reps,
            "slots_per_replication": per_rep, "measured_slots": measured,
            "events": int(events.sum()), "frequency": ci.to_dict(),
            "frequency_values": freq.tolist(),
            # Rule of three: with no event, 3 / slots is a 95% upper bound for a Poisson rate.
            "zero_event_bound": 3.0 / measured if events.sum() == 0 else None,
            "fft": p, "chernoff": overflow_bound(workload, Budget(BUDGET, law), m).per_slot,
            "queue_at_end": Interval.of(full["waiting_at_end"]).to_dict(),
        })
    rare = {law: cached_json(ctx, f"{NAME}_rare_{law}", dict(law=law, rate=RATE, mode=ctx.mode,
                                                         slacks=RARE_SLACKS[law],
                                                         rare=_rare_digest()),
                             lambda law=law: rare_event_points(workload, law, ctx.mode, ctx.log))
            for law in LAWS}
    results = {"title": TITLE,
               "params": dict(b, rate_per_class=RATE, budget=BUDGET, root_seed=ROOT_SEED,
                              mean_demand=MEAN_DEMAND, memory_grid={
                                  law: [p["memory"] for p in points[law]] for law in LAWS},
                              sweeps=[s.to_dict() for s in sweeps + prefix]),
               "seeds": sweep_seeds(sweeps), "lines": lines, "points": points,
               "rare": rare, "simulated_slots": total}
    write_results(ctx, NAME, results)
    return results


def verify(results: dict) -> list:
    rows = []
    for law in LAWS:
        pts = results["points"][law]
        if not pts:
            continue
        sim = [Interval.from_dict(p["frequency"]) for p in pts]

        def describe(key):
            return "; ".join(
                f"Delta={p['slack']:.0f}: {s.text(3)} ({p['events']} events) vs {fmt(p[key], 3)}"
                for p, s in zip(pts, sim))

        def not_above(key):
            """A bound is refuted only by a simulation significantly above it."""
            return all((s.low if not math.isnan(s.low) else s.mean) <= p[key]
                       for p, s in zip(pts, sim))

        ok = not_above("chernoff")
        strict = all((s.high if not math.isnan(s.high) else s.mean) <= p["chernoff"]
                     for p, s in zip(pts, sim))
        rows.append(Check(
            NAME, f"{law} budget E[B] = 12: simulated overflow frequency <= Chernoff bound "
                  "exp(-I(M)) at every slack (reconstructed Alg. 2 bound)", "paper",
            "exp(-I(M)) per slot at each Delta", describe("chernoff"),
            "no point significantly above the bound (95% CI lower end <= bound)"
            + ("; every CI lies below the bound" if strict else ""), "PASS" if ok else "FAIL"))
        ok = not_above("fft")
        rows.append(Check(
            NAME, f"{law} budget: the exact tail P(U > M) of the eviction-free demand bounds "
                  "the simulated overflow frequency (evictions only remove demand)", "ours",
            "P(U > M) by FFT at each Delta", describe("fft"),
            "no point significantly above P(U > M) (95% CI lower end <= P(U > M))",
            "PASS" if ok else "FAIL"))
        rare_pts = [(p, s) for p, s in zip(pts, sim) if p["fft"] <= RARE_LEVEL]
        ratios = [s.mean / p["fft"] for p, s in zip(pts, sim)]
        trend = "; ".join(f"Delta={p['slack']:.0f}: {r:.2f}" for p, r in zip(pts, ratios))
        if not rare_pts or any(p["events"] < 10 for p, _ in rare_pts):
            v, note = "INCONCLUSIVE", (" (no simulated point with P(U > M) <= 1e-4 and >= 10 "
                                       "events at this budget)")
        else:
            v = "PASS" if all(0.5 <= s.mean / p["fft"] <= 2.0 for p, s in rare_pts) else "FAIL"
            note = ""
        rows.append(Check(
            NAME, f"{law} budget: in the rare regime (P(U > M) <= 1e-4) the saturated "
                  "eviction-free tail predicts the overflow frequency", "ours",
            "sim / P(U > M) -> 1 as the slack grows", f"ratio sim / P(U > M): {trend}{note}",
            "ratio within [1/2, 2] at every point with P(U > M) <= 1e-4 and >= 10 events", v))
        rare = (results.get("rare") or {}).get(law) or []
        if rare:
            ok = all(p["ci_low"] <= p["fft"] <= p["ci_high"] for p in rare)
            rows.append(Check(
                NAME, f"{law} budget: rare-event estimates of P(U > M) (stability.theory.rare) agree "
                      "with the exact FFT tail", "ours", "P(U > M) by FFT",
                "; ".join(f"Delta={p['slack']:.0f}: {fmt(p['estimate'], 3)} "
                          f"[{fmt(p['ci_low'], 3)}, {fmt(p['ci_high'], 3)}] vs {fmt(p['fft'], 3)}"
                          for p in rare),
                f"every {100 * rare[0]['level']:.3g}% interval ({rare[0]['samples']} samples; 99% "
                "family-wise, Bonferroni) contains the FFT value",
                "PASS" if ok else "FAIL"))
    return rows
