"""Experiment 1: Section 4.1, Alg. 1 with b = (4, 4, 4) at lambda = 5 (overload) and 3.

docs/model.md 3.2 constants: classes (l, o) = (10, 20), (10, 40), (10, 60), M = 16492,
w = (410, 1220, 2430), sum_k b_k w_k = 16240 <= M.  Thm 3.3: the saturated demand peaks at
exactly 16240 and never overflows; each class queue is the Lindley walk
Q' = max(Q + N - b_k, 0): at lambda = 5 it grows by lambda - b = 1 per class per slot (3 in
total), at lambda = 3 it is positive recurrent with the stationary mean of Spitzer's identity.

Replications run through the sweep store (scalar metrics); one replication per rate is also
run with its per-slot series (KV demand, per-class queues) for the time-series panels.
"""

from __future__ import annotations

import numpy as np

from experiments.common import (CHECK_LEVEL, Check, Context, Interval, cached, fmt,
                                growth_rate, half_sweep, select, summary, sweep_seeds, verdict,
                                write_results)

NAME = "section41"
TITLE = "Section 4.1: Alg. 1 (b = 4, 4, 4) in overload (lambda = 5) and stable (lambda = 3)"
FIGURE = "fig1_section41"

MEMORY = 16492
BUDGETS = (4, 4, 4)
RATES = (5.0, 3.0)
ROOT_SEED = 20260401


def _budget(ctx: Context) -> dict:
    return dict(slots=ctx.pick(4000, 20000, 100000), replications=ctx.pick(3, 10, 30),
                series_slots=ctx.pick(2000, 5000, 5000))


def _sweep(b: dict):
    from stability.sweep import Sweep

    return Sweep(name=f"{NAME}-{b['slots']}", workloads=tuple(
        {"kind": "paper-4.1", "rate": r} for r in RATES),
        policies=({"kind": "classes", "budgets": list(BUDGETS)},), memory=(MEMORY,),
        replications=b["replications"], root_seed=ROOT_SEED, slots=b["slots"],
        warmup=b["slots"] // 2)


def _series(rate: float, slots: int, seed: int) -> dict:
    """One run with every slot recorded: KV demand, total and per-class waiting queues."""
    import stability as s

    workload = s.Workload.paper_4_1(rate)
    requests = workload.generate(slots, seed)
    result = s.simulate(requests, s.ClassBudgets(BUDGETS), MEMORY, horizon=slots, seed=seed,
                        series_points=slots)
    if result.series.stride != 1:
        raise RuntimeError("expected every slot in the series")
    if result.evictions_total or result.bounces:
        raise RuntimeError("Alg. 1 evicted under inequality (2); per-class queues from "
                           "first-token slots would be wrong")
    # Without evictions a request waits (after step 4) in slots a .. first_token - 1.
    queues = np.zeros((workload.num_classes, slots), np.int64)
    for k in range(workload.num_classes):
        mine = requests.class_id == k
        arrivals = np.bincount(requests.arrival[mine], minlength=slots)[:slots]
        started = result.first_token[mine]
        starts = np.bincount(started[started >= 0], minlength=slots)[:slots]
        queues[k] = np.cumsum(arrivals) - np.cumsum(starts)
    if not np.array_equal(queues.sum(axis=0), result.series.queue):
        raise RuntimeError("per-class queues do not add up to the simulated queue")
    return {"slot": result.series.slot, "kv": result.series.kv, "queue": result.series.queue,
            "class_queue": queues}


def compute(ctx: Context) -> dict:
    import stability as s
    from stability.theory import (PerClassBudget, alg1_condition, lindley_mean_queue,
                                  mean_memory_time, queue_drift)
    from stability.theory.budget import Budget

    from stability.sweep.spec import canonical

    from experiments.common import run_sweeps

    b = _budget(ctx)
    sweep = _sweep(b)
    columns = run_sweeps(ctx, NAME, [sweep, half_sweep(sweep)])
    seeds = sweep_seeds([sweep])
    policy = canonical(sweep.policies[0].to_spec())
    points = {}
    for spec in sweep.workloads:
        both = select(columns, workload=spec.canonical(), policy=policy)
        rows = select(both, slots=sweep.slots)
        lam = spec.rate
        growth = growth_rate(rows, select(both, slots=sweep.slots // 2))
        delays = [summary(rows[f"class{k}_queueing_delay_mean"]) for k in range(3)]
        points[f"{lam:g}"] = {
            "rate": lam,
            "runs": int(rows["key"].size),
            "peak_kv": (np.round(rows["kv_max"] * MEMORY)).astype(np.int64).tolist(),
            "overflow_events": rows["overflow_events"].astype(np.int64).tolist(),
            "evictions": rows["evictions"].astype(np.int64).tolist(),
            "growth": summary(growth),
            "queue_per_class": summary(rows["queue_mean"] / 3.0),
            "class_delay": delays,
            "latency_mean": summary(rows["latency_mean"]),
        }
        series_seed = seeds[spec.canonical()][0]
        params = dict(rate=lam, slots=b["series_slots"], seed=series_seed)
        cached(ctx, f"{NAME}_series_{lam:g}", params,
               lambda lam=lam: _series(lam, b["series_slots"], series_seed))
    w5 = s.Workload.paper_4_1(5.0)
    cond = alg1_condition(w5, PerClassBudget(BUDGETS), MEMORY)
    lindley = lindley_mean_queue(3.0, Budget(4))
    theory = {
        "memory_time": [mean_memory_time(c) for c in w5.classes],
        "peak_demand": cond.peak,
        "inequality_2": cond.inequality_2,
        "drift_overload": queue_drift(w5, PerClassBudget(BUDGETS)),
        "drift_per_class_overload": 5.0 - 4.0,
        "lindley_mean_queue": lindley.mean_queue,
        "lindley_mean_delay": lindley.mean_delay,
    }
    results = {"title": TITLE, "params": dict(b, memory=MEMORY, budgets=BUDGETS, rates=RATES,
                                              root_seed=ROOT_SEED, warmup=b["slots"] // 2,
                                              sweep=sweep.to_dict()),
               "seeds": seeds, "theory": theory, "points": points}
    write_results(ctx, NAME, results)
    return results


def verify(results: dict) -> list:
    th, pts = results["theory"], results["points"]
    over, stable = pts["5"], pts["3"]
    n5, n3 = over["runs"], stable["runs"]
    peaks = over["peak_kv"]
    rows = []
    peak_ok = all(p == th["peak_demand"] for p in peaks)
    rows.append(Check(
        NAME, "Alg. 1 at lambda = 5: peak KV demand equals sum_k b_k w_k (Thm 3.3)", "paper",
        f"{th['peak_demand']:.0f} tokens (<= M = {MEMORY})",
        f"peak per replication: min {min(peaks)}, max {max(peaks)} tokens (n={n5})",
        "every replication's peak equals 16240 exactly", verdict(peak_ok)))
    events = sum(over["overflow_events"]) + sum(stable["overflow_events"])
    evictions = sum(over["evictions"]) + sum(stable["evictions"])
    rows.append(Check(
        NAME, "Alg. 1 never overflows under inequality (2) (Thm 3.3)", "paper",
        "0 overflow events (16240 <= 16492)",
        f"{events} overflow events, {evictions} evictions in {n5 + n3} runs",
        "zero overflow events in every run at lambda = 5 and 3", verdict(events == 0)))
    g = Interval.from_dict(over["growth"], CHECK_LEVEL)
    rows.append(Check(
        NAME, "lambda = 5: total queue grows by sum_k (lambda_k - b_k) per slot", "paper",
        f"{th['drift_overload']:g} requests/slot",
        g.level_text(CHECK_LEVEL, 4, "req/slot"),
        "99% CI of (arrivals - completions) / slot over the second half contains 3 and "
        "excludes 0 (negative control)",
        verdict(g.contains(th["drift_overload"]) and g.low > 0)))
    q = Interval.from_dict(stable["queue_per_class"], CHECK_LEVEL)
    rows.append(Check(
        NAME, "lambda = 3: mean per-class queue equals the stationary Lindley mean", "theory",
        f"E[Q] = {fmt(th['lindley_mean_queue'], 5)} requests (Spitzer, Q' = max(Q + N - 4, 0))",
        q.level_text(CHECK_LEVEL, 4, "req"),
        "99% CI of the time-average queue / 3 (classes are identical) contains E[Q]",
        verdict(q.contains(th["lindley_mean_queue"]))))
    level = 1 - (1 - CHECK_LEVEL) / 3  # Bonferroni over the three classes
    delays = [Interval.from_dict(d, level) for d in stable["class_delay"]]
    rows.append(Check(
        NAME, "lambda = 3: mean queueing delay of each class equals E[Q] / lambda (Little)",
        "theory", f"{fmt(th['lindley_mean_delay'], 5)} slots",
        "; ".join(f"class {k}: {d.text(4)}" for k, d in enumerate(delays)),
        f"each class's {100 * level:.3g}% CI contains E[Q] / lambda (99% family-wise, "
        "Bonferroni)",
        verdict(all(d.contains(th["lindley_mean_delay"]) for d in delays))))
    return rows
