"""Experiment 2: the stability boundary on the Section 4.1 classes.

Growth rate of the number of requests in the system ((arrivals - completions) per slot
over the second half of each run, from the run and its exact half-length prefix; 95%
Student-t interval over replications) against the per-class arrival rate lambda, for
Alg. 1 (b = 4, 4, 4), flow control with budget 12 and with the tuner's budget, Greedy and
Conservative(60).  Lengths are unknown to every policy except Alg. 1 (which only uses the
class budgets).  Prop. 3.2: above lambda* = M / E[w] = 4.0621 per class no policy is stable;
flow control with a budget inside the window (lambda, M / E[w]) is stable below it.
"""

from __future__ import annotations

from experiments.common import (policy_key, CHECK_LEVEL, Check, Context, Interval, fmt, growth_rate,
                                half_sweep, select, summary, sweep_seeds, verdict,
                                write_results)

NAME = "boundary"
TITLE = "Stability boundary: queue growth rate against lambda (Section 4.1 classes)"
FIGURE = "fig2_boundary"

MEMORY = 16492
ROOT_SEED = 20260402
TARGET_OVERFLOW = 1e-3
"""Per-slot overflow target of the tuned flow-control budget (Chernoff, two-point law)."""
ABOVE = (4.4, 5.0)
"""Rates well above lambda* (8% and 23%) where every policy must be unstable."""
BELOW = 3.5
"""A rate well below lambda* (14%) where flow control inside the window must be stable."""


def _budget(ctx: Context) -> dict:
    rates = ctx.pick([3.0, 3.5, 4.4, 5.0],
                     [1.5, 2.0, 2.5, 3.0, 3.5, 3.75, 3.9, 4.0, 4.1, 4.25, 4.4, 4.7, 5.0],
                     [1.5, 2.0, 2.5, 3.0, 3.25, 3.5, 3.75, 3.9, 4.0, 4.1, 4.25, 4.4, 4.7,
                      5.0])
    return dict(rates=rates, slots=ctx.pick(4000, 14000, 100000),
                replications=ctx.pick(3, 6, 10))


def policies(tuned_budget: float) -> dict:
    """Label -> policy spec table."""
    return {
        "Alg. 1 (4,4,4)": {"kind": "classes", "budgets": [4, 4, 4]},
        "FlowControl(12)": {"kind": "flow", "budget": 12, "law": "deterministic"},
        f"FlowControl({tuned_budget:.2f}) tuned": {"kind": "flow",
                                                   "budget": round(tuned_budget, 4),
                                                   "law": "two-point"},
        "Greedy": {"kind": "greedy", "watermark": 0.0},
        "Conservative(60)": {"kind": "conservative", "max_decode": 60},
    }


def compute(ctx: Context) -> dict:
    import stability as s
    from stability.sweep import Sweep
    from stability.theory import critical_rate
    from stability.theory.tuning import tune_budget

    from experiments.common import run_sweeps

    b = _budget(ctx)
    base = s.Workload.paper_4_1(1.0)
    tuned = tune_budget(base, MEMORY, TARGET_OVERFLOW, law="two-point", method="chernoff")
    table = policies(tuned.budget)
    sweep = Sweep(name=f"{NAME}-{b['slots']}",
                  workloads=tuple({"kind": "paper-4.1", "rate": r} for r in b["rates"]),
                  policies=tuple(table.values()), memory=(MEMORY,),
                  replications=b["replications"], root_seed=ROOT_SEED, slots=b["slots"],
                  warmup=b["slots"] // 2)
    columns = run_sweeps(ctx, NAME, [sweep, half_sweep(sweep)])
    curves = {}
    for label, spec in table.items():
        canon = policy_key(spec)
        pts = []
        for w in sweep.workloads:
            both = select(columns, workload=w.canonical(), policy=canon)
            rows = select(both, slots=sweep.slots)
            growth = growth_rate(rows, select(both, slots=sweep.slots // 2))
            pts.append({"rate": w.rate, "growth": summary(growth),
                        "overflow_events": summary(rows["overflow_events"]),
                        "latency_mean": summary(rows["latency_mean"])})
        curves[label] = {"spec": spec, "points": pts}
    lam_star = critical_rate(base, MEMORY) / 3.0  # per class
    window_high = MEMORY / (base.mean_kv_load() / 3.0)  # M / E[w], total activations/slot
    results = {"title": TITLE,
               "params": dict(b, memory=MEMORY, root_seed=ROOT_SEED, warmup=b["slots"] // 2,
                              target_overflow=TARGET_OVERFLOW, sweep=sweep.to_dict()),
               "seeds": sweep_seeds([sweep]),
               "theory": {"critical_rate_per_class": lam_star, "window_high": window_high,
                          "tuned": tuned.to_dict(), "alg1_budget_total": 12},
               "curves": curves}
    write_results(ctx, NAME, results)
    return results


def _at(curve: dict, rate: float) -> Interval | None:
    for p in curve["points"]:
        if abs(p["rate"] - rate) < 1e-9:
            return Interval.from_dict(p["growth"], CHECK_LEVEL)
    return None


def verify(results: dict) -> list:
    th, curves = results["theory"], results["curves"]
    lam_star = th["critical_rate_per_class"]
    rows = []
    for rate in ABOVE:
        found = {label: _at(c, rate) for label, c in curves.items()}
        found = {k: v for k, v in found.items() if v is not None}
        if not found:
            continue
        ok = all(v.low > 0 for v in found.values())
        rows.append(Check(
            NAME, f"lambda = {rate:g} per class ({100 * (rate / lam_star - 1):.0f}% above "
                  f"lambda* = {lam_star:.4f}): every policy's queue grows (Prop. 3.2)", "paper",
            "growth > 0 for any scheduler",
            "; ".join(f"{k}: {v.text(3)}" for k, v in found.items()),
            "for every policy the 99% CI of the growth rate (req/slot) lies above 0",
            verdict(ok)))
    total = 3 * BELOW
    for label, curve in curves.items():
        spec = curve["spec"]
        if spec["kind"] not in ("flow", "classes"):
            continue
        g = _at(curve, BELOW)
        if g is None:
            continue
        if spec["kind"] == "flow":
            budget = spec["budget"]
            inside = total < budget < th["window_high"]
            claim = (f"lambda = {BELOW:g} per class: {label} (E[B] = {budget:g} inside the "
                     f"window ({total:g}, {th['window_high']:.2f})) is stable")
            source = "paper"
        else:
            inside = True
            claim = (f"lambda = {BELOW:g} per class: Alg. 1 (b_k = 4 > lambda_k, ineq. (2)) "
                     "is stable (Thm 3.3)")
            source = "paper"
        rows.append(Check(
            NAME, claim, source, "growth rate 0 (positive recurrent queue)",
            g.level_text(CHECK_LEVEL, 3, "req/slot"),
            "99% CI of the growth rate contains 0" + ("" if inside else
                                                       " (budget outside the window!)"),
            verdict(inside and g.contains(0.0))))
    alg1 = next((c for c in curves.values() if c["spec"]["kind"] == "classes"), None)
    if alg1 is not None:
        g = _at(alg1, ABOVE[0])
        if g is not None:
            drift = 3 * (ABOVE[0] - 4)
            rows.append(Check(
                NAME, f"lambda = {ABOVE[0]:g}: Alg. 1 queue grows by sum_k (lambda_k - b_k)",
                "theory", f"{fmt(drift, 4)} req/slot", g.level_text(CHECK_LEVEL, 4, "req/slot"),
                "99% CI of the growth rate contains the drift", verdict(g.contains(drift))))
    return rows
