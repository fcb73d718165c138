"""Experiment 3: flow control against the practical baselines, lengths unknown.

Three workloads with Poisson arrivals, at loads rho = lambda / lambda* (lambda* = M /
E[w], Prop. 3.2) up to and beyond 1:

* ``section-4.1``: the paper's three classes (l, o) = (10, 20), (10, 40), (10, 60) in equal
  proportions, M = 16492 (lengths unknown to every policy here);
* ``geometric``: prompt l = 10, decode o geometric with mean 40, M = 16492;
* ``azure-conv``: prompt and decode lengths of the Azure conversation trace (resampled
  independently; the synthetic stand-in when the trace is absent), M = 1,000,000.

Policies: flow control with the tuner's budget (largest two-point E[B] whose Chernoff
overflow bound is <= 1e-3 per slot; independent of the load), flow control with the middle
of the budget window, E[B] = (lambda + lambda*) / 2, Greedy (vLLM-style FCFS), Greedy
with a 5% watermark (alpha-protection) and Conservative (reserves l + o_max: the 99th
percentile of o for the geometric workload, the maximum decode length otherwise).

The paper claims flow control gives higher request and token throughput, lower mean and
tail latency and more stable KV utilisation than practical baselines.  The rows compare
flow control (window middle) with Greedy, paired by replication (common random numbers),
at a heavy stable load (0.95) and in overload (1.1).
"""

from __future__ import annotations

import numpy as np

from experiments.common import (policy_key, Check, Context, Interval, cached, critical_total_rate, fmt,
                                geometric_quantile, mean_decode, select, sweep_seeds,
                                write_results)

NAME = "baselines"
TITLE = "Flow control against Greedy, watermark and Conservative (lengths unknown)"
FIGURE = "fig3_baselines"

ROOT_SEED = 20260403
TARGET_OVERFLOW = 1e-3
WATERMARK = 0.05
SERIES_LOAD = 0.95
CLAIM_LOADS = (0.95, 1.1)
METRICS = ("latency_mean", "latency_p95", "token_throughput", "request_throughput", "kv_mean",
           "kv_cv", "overflow_rate", "eviction_rate", "waste_rate", "unfinished")

WORKLOADS = {
    "section-4.1": {"memory": 16492, "spec": {"kind": "paper-4.1"},
                    "label": "Section 4.1 classes, M = 16,492"},
    "geometric": {"memory": 16492, "spec": {"kind": "synthetic", "prompt": "det:10",
                                            "decode": "geom-mean:40"},
                  "label": "l = 10, o ~ Geometric(mean 40), M = 16,492"},
    "azure-conv": {"memory": 1_000_000, "spec": {"kind": "azure-conv", "source": "auto"},
                   "label": "Azure conv lengths, M = 1,000,000"},
}


def _budget(ctx: Context) -> dict:
    loads = ctx.pick([0.7, 0.95, 1.1], [0.5, 0.7, 0.8, 0.9, 0.95, 1.0, 1.05, 1.1],
                     [0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0, 1.05, 1.1])
    return dict(loads=loads, slots=ctx.pick(5000, 30000, 100000),
                replications=ctx.pick(2, 5, 10), series_warmup=ctx.pick(1000, 5000, 5000),
                series_window=ctx.pick(1000, 2000, 2000))


def _max_decode(name: str, base) -> int:
    if name == "geometric":
        return geometric_quantile(base.classes[0].decode.p, 0.99)
    return int(max(c.decode.max_value for c in base.classes))


def policy_table(name: str, base, memory: int, load: float, tuned: float) -> dict:
    """Label -> policy spec at ``load``; ``base`` is the workload at rate 1 (per class)."""
    lam_star = critical_total_rate(base, memory)
    window = 0.5 * (load + 1.0) * lam_star
    return {
        "FlowControl (tuned)": {"kind": "flow", "budget": round(tuned, 6), "law": "two-point"},
        "FlowControl (window middle)": {"kind": "flow", "budget": round(window, 6),
                                        "law": "two-point"},
        "Greedy": {"kind": "greedy", "watermark": 0.0},
        f"Greedy (watermark {WATERMARK:g})": {"kind": "greedy", "watermark": WATERMARK},
        f"Conservative({_max_decode(name, base)})": {"kind": "conservative",
                                                    "max_decode": _max_decode(name, base)},
    }


def _derived(rows: dict) -> dict:
    slots = rows["slots"].astype(float)
    out = dict(rows)  # overflow_rate: the store's, events per measured slot (after warm-up)
    out["eviction_rate"] = rows["evictions"] / slots
    out["waste_rate"] = rows["wasted_tokens"] / slots
    return out


def _series(workload, memory: int, table: dict, slots: int, seed: int) -> dict:
    import stability as s
    from stability.policies import from_spec

    requests = workload.generate(slots, seed)
    out = {}
    for i, spec in enumerate(table.values()):
        result = s.simulate(requests, from_spec(spec), memory, horizon=slots,
                            seed=seed, series_points=slots)
        out[f"kv_{i}"] = result.series.kv.astype(np.float64) / memory
    return out


def compute(ctx: Context) -> dict:
    from stability.sweep import Sweep, WorkloadSpec
    from stability.theory.tuning import tune_budget

    from experiments.common import run_sweeps

    b = _budget(ctx)
    out = {}
    all_sweeps = []
    for name, info in WORKLOADS.items():
        memory = info["memory"]
        base = WorkloadSpec.from_dict(dict(info["spec"], rate=1.0)).build(memory)
        lam_star = critical_total_rate(base, memory)
        tuned = tune_budget(base, memory, TARGET_OVERFLOW, law="two-point", method="chernoff")
        sweeps, tables = [], {}
        for load in b["loads"]:
            table = policy_table(name, base, memory, load, tuned.budget)
            tables[load] = table
            sweeps.append(Sweep(
                name=f"{NAME}-{name}-{load:g}-{b['slots']}",
                workloads=(dict(info["spec"], load=load),), policies=tuple(table.values()),
                memory=(memory,), replications=b["replications"], root_seed=ROOT_SEED,
                slots=b["slots"], warmup=b["slots"] // 4))
        all_sweeps += sweeps
        columns = _derived(run_sweeps(ctx, f"{NAME}-{name}", sweeps))
        labels = list(tables[b["loads"][0]])
        curves = {label: [] for label in labels}
        for load, sweep in zip(b["loads"], sweeps):
            w = sweep.workloads[0].canonical()
            for label, spec in zip(labels, tables[load].values()):
                rows = select(columns, workload=w, policy=policy_key(spec))
                order = np.argsort(rows["replication"])
                point = {"load": load, "budget": spec.get("budget"),
                         "replications": rows["replication"][order].tolist()}
                for m in METRICS:
                    values = np.asarray(rows[m], dtype=float)[order]
                    point[m] = Interval.of(values).to_dict()
                    point[m]["values"] = values.tolist()
                curves[label].append(point)
        # Time series of KV utilisation at one load, every policy on the same requests.
        series_sweep = sweeps[b["loads"].index(SERIES_LOAD)] if SERIES_LOAD in b["loads"] \
            else sweeps[-1]
        spec0 = series_sweep.workloads[0]
        seed = sweep_seeds([series_sweep])[spec0.canonical()][0]
        slots = b["series_warmup"] + b["series_window"]
        table = tables[spec0.load]
        params = dict(workload=spec0.to_dict(), memory=memory, policies=table, slots=slots,
                      seed=seed)
        cached(ctx, f"{NAME}_series_{name}", params,
               lambda: _series(spec0.build(memory), memory, table, slots, seed))
        out[name] = {"label": info["label"], "memory": memory, "critical_rate": lam_star,
                     "mean_memory_time": base.mean_kv_load() / base.total_rate,
                     "source": spec0.source,
                     "mean_decode": mean_decode(base),
                     "tuned": tuned.to_dict(), "policies": {k: v for k, v in
                                                           tables[b["loads"][0]].items()},
                     "series": {"load": spec0.load, "warmup": b["series_warmup"],
                                "window": b["series_window"], "seed": seed,
                                "labels": list(table)},
                     "curves": curves}
    results = {"title": TITLE,
               "params": dict(b, root_seed=ROOT_SEED, target_overflow=TARGET_OVERFLOW,
                              watermark=WATERMARK, warmup=b["slots"] // 4,
                              sweeps=[s.to_dict() for s in all_sweeps]),
               "seeds": sweep_seeds(all_sweeps), "workloads": out}
    write_results(ctx, NAME, results)
    return results


# ---------------------------------------------------------------------------- verify
_CLAIMS = [
    # (load, metric, better, description)
    (0.95, "latency_p95", "lower", "p95 latency"),
    (0.95, "latency_mean", "lower", "mean latency"),
    (0.95, "kv_cv", "lower", "KV utilisation CV"),
    (1.1, "token_throughput", "higher", "token throughput"),
    (1.1, "request_throughput", "higher", "request throughput"),
    (1.1, "latency_p95", "lower", "p95 latency"),
    (1.1, "kv_cv", "lower", "KV utilisation CV"),
]
FLOW = "FlowControl (window middle)"
BASELINE = "Greedy"


def _point(curve: list, load: float) -> dict | None:
    for p in curve:
        if abs(p["load"] - load) < 1e-9:
            return p
    return None


def verify(results: dict) -> list:
    rows = []
    for name, wl in results["workloads"].items():
        curves = wl["curves"]
        if FLOW not in curves or BASELINE not in curves:
            continue
        for load, metric, better, text in _CLAIMS:
            fp, gp = _point(curves[FLOW], load), _point(curves[BASELINE], load)
            if fp is None or gp is None:
                continue
            if fp["replications"] != gp["replications"]:
                raise RuntimeError("flow control and Greedy runs are not paired")
            f = np.array(fp[metric]["values"], dtype=float)
            g = np.array(gp[metric]["values"], dtype=float)
            diff = Interval.of(f - g)
            fi, gi = Interval.from_dict(fp[metric]), Interval.from_dict(gp[metric])
            if diff.n < 2 or np.isnan(diff.low):
                v = "INCONCLUSIVE"
                why = ""
            elif (better == "lower" and diff.high < 0) or (better == "higher" and diff.low > 0):
                v, why = "PASS", ""
            elif (better == "lower" and diff.low > 0) or (better == "higher" and diff.high < 0):
                v, why = "FAIL", " -- not reproduced: Greedy is significantly better"
            else:
                v, why = "FAIL", " -- not reproduced: no significant difference"
            rows.append(Check(
                NAME, f"{name} at load {load:g}: flow control has {better} {text} than Greedy",
                "paper", f"{better} {text} than practical baselines (abstract)",
                f"flow (window middle, E[B] = {fmt(fp['budget'], 4)}): {fi.text(4)}; Greedy: "
                f"{gi.text(4)}; paired difference {diff.text(3)}{why}",
                f"95% CI of the paired difference (flow - Greedy, same seeds) lies "
                f"{'below' if better == 'lower' else 'above'} 0", v))
    return rows
