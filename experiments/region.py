"""Experiment 8 (issue 16): where flow control (Alg. 2) is really stable.

The package's budget window (lambda, M / E[w]) was taken as the condition under which flow
control is stable.  It is not sufficient: a request that bounces (admitted and removed in the
same slot) or is evicted re-enters the queue, so the queue drains at the effective rate
E[B] - r_loss, not at E[B].  This experiment measures the true region and checks the
corrected condition lambda < E[B] - r_bar(E[B]) (``stability.theory.effective``).

Measurement, per panel (workload x budget law) on a grid of (lambda / lambda*, E[B] / lambda*)
with E[B] > lambda:

* growth rate of the number in system (waiting + active) per slot: the least-squares slope
  of its series over the second half of each run, R independent streaming replications
  (``simulate_stream``, common random numbers across the budgets of a rate), 99% Student-t
  interval; verdict "unstable" when the interval lies above 0 and the mean queue over the
  second half exceeds delta T / 4, "stable" when the interval lies below delta and so does
  that queue, "undecided" otherwise.  delta = RESOLUTION x lambda* is the smallest growth
  the horizon is meant to catch: a queue growing at delta from the start would hold about
  0.75 delta T requests on average in the second half, so it cannot pass as stable;
* the saturated completion rate mu_sat(E[B]) (the queue never empties: arrivals at
  E[B] + 1 per slot; completions over the second half, from a run and its exact half-length
  prefix), with the saturated loss rate (bounces + evictions per slot).  The saturation rule
  says the queue is stable iff lambda < mu_sat: the measured boundary.

Theory: the reconstructed window, the loss bound r_bar (Chernoff closed form; exact FFT in
the full mode) and the corrected condition, and the largest certified rate per law.
"""

from __future__ import annotations

import math
import warnings
from functools import lru_cache

import numpy as np

from experiments.common import (CHECK_LEVEL, Check, Context, InlineExecutor, Interval,
                                cached_json, fmt, verdict, write_results)

NAME = "region"
TITLE = "Where flow control is stable: measured region, budget window and effective-rate condition"
FIGURE = "fig8_region"

ROOT_SEED = 20260416
RESOLUTION = 1e-3
"""delta = RESOLUTION x lambda*: the smallest growth (requests per slot) a verdict resolves."""
SAT_EXTRA = 1.0
"""Saturation runs: arrivals at E[B] + SAT_EXTRA per slot, so the queue never empties."""
LAWS = ("deterministic", "two-point", "poisson")
WORKLOADS = {
    "paper-4.1": {"label": "Section 4.1 classes (l = 10; o = 20, 40, 60)", "memory": 16492},
    "geometric": {"label": "l = 10, o geometric with mean 40", "memory": 16492},
    "azure-conv": {"label": "Azure conversation lengths", "memory": 2_000_000},
}
"""Workload kinds, each at a fixed M (Azure conv: M = 2e6 tokens so that lambda* = 7.2
requests per slot and integer budgets are meaningful)."""
PER_CLASS_4_1 = (3.5, 3.7, 3.8, 3.9)
"""The issue's Section 4.1 rates per class; their lambda / lambda* join the 4.1 grid."""


@lru_cache(maxsize=None)
def base_workload(kind: str):
    """The workload of ``kind`` with total rate 1 per slot."""
    import stability as s

    if kind == "paper-4.1":
        return s.Workload.paper_4_1(1.0 / 3.0)
    if kind == "geometric":
        return s.Workload.single(1.0, 10, s.Geometric(1.0 / 40.0))
    if kind == "azure-conv":
        from stability.traces import azure_workload

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the synthetic stand-in says so in its name
            return azure_workload("conv", 1.0)
    raise ValueError(f"unknown workload kind {kind!r}; use one of {', '.join(WORKLOADS)}")


def critical(kind: str) -> float:
    """lambda* = M / E[w] (total, per slot) of a workload kind at its memory."""
    from stability.theory import critical_rate

    return critical_rate(base_workload(kind), WORKLOADS[kind]["memory"])


def _policy(law: str, budget: float):
    import stability as s

    return s.FlowControl(int(round(budget)) if law == "deterministic" else float(budget), law)


def _run_growth(task: dict) -> dict:
    """One replication at one grid point: growth slope and queue over the second half."""
    import stability as s

    slots = task["slots"]
    w = base_workload(task["kind"]).with_total_rate(task["rate"])
    r = s.simulate_stream(w, _policy(task["law"], task["budget"]), task["memory"], slots,
                          seed=task["seed"], series_points=4096)
    ser = r.series
    t = ser.slot.astype(float)
    n = (ser.queue + ser.active).astype(float)
    half = t >= slots / 2
    tc = t[half] - t[half].mean()
    slope = float(np.dot(tc, n[half] - n[half].mean()) / np.dot(tc, tc))
    return {"growth": slope, "queue_second_half": float(ser.queue[half].mean()),
            "loss_rate": (r.bounces + r.evictions_total) / slots,
            "overflow_rate": r.overflow_events / slots}


def _run_saturated(task: dict) -> dict:
    """One saturated replication: completions and losses per slot over the second half."""
    import stability as s

    slots = task["slots"]
    w = base_workload(task["kind"]).with_total_rate(task["budget"] + SAT_EXTRA)
    pol = _policy(task["law"], task["budget"])
    runs = [s.simulate_stream(w, pol, task["memory"], n, seed=task["seed"])
            for n in (slots // 2, slots)]
    span = slots - slots // 2

    def done(r):
        return r.arrived - r.rejected - r.waiting_at_end - r.active_at_end

    a, b = runs
    queue = b.series.queue[b.series.slot >= slots // 2]
    return {"completion_rate": (done(b) - done(a)) / span,
            "loss_rate": (b.bounces + b.evictions_total - a.bounces - a.evictions_total) / span,
            "overflow_rate": (b.overflow_events - a.overflow_events) / span,
            "min_queue": int(queue.min()) if queue.size else 0}


def _seeds(replications: int) -> list:
    """Independent 63-bit seeds, the same for every point (common random numbers)."""
    children = np.random.SeedSequence(ROOT_SEED).spawn(replications)
    return [int(c.generate_state(1, np.uint64)[0] >> np.uint64(1)) for c in children]


def _budget(ctx: Context) -> dict:
    four = [("paper-4.1", "deterministic"), ("paper-4.1", "two-point")]
    return dict(
        panels=ctx.pick(four[:1],
                        four + [("geometric", "two-point"), ("azure-conv", "two-point")],
                        [(k, law) for k in WORKLOADS for law in LAWS]),
        loads=ctx.pick([0.75, 0.96], [0.75, 0.9, 0.96],
                       [0.5, 0.7, 0.8, 0.86, 0.9, 0.93, 0.96, 0.98]),
        per_class_4_1=ctx.pick([3.9], [3.7, 3.9], list(PER_CLASS_4_1)),
        budgets=ctx.pick([0.9, 1.0, 1.2], [0.8, 0.9, 1.0, 1.2],
                         [0.8, 0.85, 0.9, 0.95, 1.0, 1.05, 1.1, 1.2, 1.5]),
        slots=ctx.pick(20_000, 150_000, 300_000),
        saturated_slots=ctx.pick(20_000, 60_000, 300_000),
        replications=ctx.pick(3, 4, 4),
        # the exact FFT loss bound costs about a second per budget (a minute for Azure conv
        # at M = 2e6 tokens, whose panels therefore use the Chernoff bound in every mode)
        loss_method=ctx.pick("chernoff", "chernoff", "exact"),
        line_points=ctx.pick(12, 30, 60),
    )


def _loss_method(kind: str, b: dict) -> str:
    return "chernoff" if kind == "azure-conv" else b["loss_method"]


def _grid(kind: str, law: str, b: dict) -> tuple[list, list]:
    """(loads, budgets) of one panel, both as fractions of lambda*; deterministic budgets
    are integers (so their fractions are b / lambda*)."""
    lam_star = critical(kind)
    loads = list(b["loads"])
    if kind == "paper-4.1":  # the rates, each replacing the nearest grid load
        for per_class in b["per_class_4_1"]:
            x = 3 * per_class / lam_star
            loads.remove(min(loads, key=lambda v: abs(v - x)))
            loads.append(x)
        loads = sorted(set(round(x, 6) for x in loads))
    if law == "deterministic":
        ints = sorted({max(1, int(round(y * lam_star))) for y in b["budgets"]})
        budgets = [i / lam_star for i in ints]
    else:
        budgets = list(b["budgets"])
    return loads, budgets


def _theory(task: dict) -> dict:
    """r_bar at the grid budgets (loss method of the mode, and Chernoff), lines against
    E[B], the largest certified rate, and the reconstructed window."""
    from stability.theory import critical_rate
    from stability.theory.budget import Budget
    from stability.theory.effective import certified_rate, loss_rate_bound

    kind, law, budgets, b = task["kind"], task["law"], task["budgets"], task["mode"]
    method = _loss_method(kind, b)
    memory = WORKLOADS[kind]["memory"]
    w = base_workload(kind)
    lam_star = critical_rate(w, memory)

    def loss(y, method):
        beta = y * lam_star
        if law == "deterministic":
            beta = round(beta)
        if beta <= 0:
            return 0.0
        return loss_rate_bound(w, Budget(beta, law), memory, method).loss

    line_y = np.linspace(0.5, 1.0, b["line_points"] + 1)[:-1]
    if law == "deterministic":
        line_y = np.array(sorted({round(y * lam_star) for y in line_y} - {0})) / lam_star
    out = {"critical_rate": lam_star, "window_high": 1.0,  # M / E[w] = lambda* (fractions)
           "loss_method": method,
           "points": {"budget": budgets, "loss": [loss(y, method) for y in budgets],
                      "loss_chernoff": [loss(y, "chernoff") for y in budgets]},
           "line": {"budget": line_y.tolist(),
                    "loss_chernoff": [loss(y, "chernoff") for y in line_y]}}
    cr = {m: certified_rate(w, memory, law, m, resolution=(1e-3 if m == "chernoff" else 5e-3)
                            * lam_star, grid=40 if m == "chernoff" else 10)
          for m in sorted({"chernoff", method})}
    out["certified"] = {m: c.to_dict() for m, c in cr.items()}
    return out


def _panel_key(kind: str, law: str) -> str:
    return f"{kind}/{law}"


def compute(ctx: Context) -> dict:
    b = _budget(ctx)
    seeds = _seeds(b["replications"])
    executor = ctx.executor or InlineExecutor()
    panels, growth_jobs, sat_jobs = {}, [], []
    for kind, law in b["panels"]:
        memory = WORKLOADS[kind]["memory"]
        lam_star = critical(kind)
        loads, budgets = _grid(kind, law, b)
        points = [(x, y) for y in budgets for x in loads if y > x]
        panels[_panel_key(kind, law)] = dict(kind=kind, law=law, memory=memory,
                                             critical_rate=lam_star, loads=loads,
                                             budgets=budgets, grid=points)
        for x, y in points:
            for seed in seeds:
                growth_jobs.append(dict(kind=kind, law=law, memory=memory,
                                        rate=x * lam_star, budget=y * lam_star,
                                        slots=b["slots"], seed=seed))
        for y in budgets:
            for seed in seeds:
                sat_jobs.append(dict(kind=kind, law=law, memory=memory, budget=y * lam_star,
                                     slots=b["saturated_slots"], seed=seed))

    theory_jobs = [dict(kind=kind, law=law, budgets=panels[_panel_key(kind, law)]["budgets"],
                        mode=b) for kind, law in b["panels"]]

    def compute_all():
        # theory first: its exact bounds are the longest tasks; everything shares the pool
        futures = [executor.submit(_theory, j) for j in theory_jobs]
        futures += [executor.submit(_run_growth, j) for j in growth_jobs]
        futures += [executor.submit(_run_saturated, j) for j in sat_jobs]
        done = [f.result() for f in futures]
        n = len(theory_jobs)
        return {"theory": done[:n], "growth": done[n:n + len(growth_jobs)],
                "saturated": done[n + len(growth_jobs):]}

    params = dict(b, seeds=seeds, root_seed=ROOT_SEED, resolution=RESOLUTION,
                  sat_extra=SAT_EXTRA, workloads=WORKLOADS,
                  panels_spec=[list(p) for p in b["panels"]])
    ctx.log(f"{NAME}: {len(theory_jobs)} theory panels, {len(growth_jobs)} growth runs, "
            f"{len(sat_jobs)} saturated runs")
    runs = cached_json(ctx, f"{NAME}_runs", params, compute_all)
    theory = {_panel_key(j["kind"], j["law"]): th for j, th in zip(theory_jobs, runs["theory"])}
    # regroup the runs per point
    growth_iter = iter(runs["growth"])
    sat_iter = iter(runs["saturated"])
    R = len(seeds)
    out_panels = {}
    for kind, law in b["panels"]:
        key = _panel_key(kind, law)
        p = panels[key]
        lam_star = p["critical_rate"]
        delta = RESOLUTION * lam_star
        th = theory[key]
        loss_at = dict(zip([round(y, 9) for y in th["points"]["budget"]], th["points"]["loss"]))
        pts = []
        for x, y in p["grid"]:
            reps = [next(growth_iter) for _ in range(R)]
            g = np.array([r["growth"] for r in reps])
            q = float(np.mean([r["queue_second_half"] for r in reps]))
            pts.append(dict(load=x, budget=y, growth=dict(Interval.of(g).to_dict(),
                                                          values=g.tolist()),
                            queue_second_half=q,
                            loss_rate=float(np.mean([r["loss_rate"] for r in reps])),
                            verdict=classify(g, q, delta, b["slots"]),
                            r_bar=loss_at[round(y, 9)]))
        sat = []
        for y in p["budgets"]:
            reps = [next(sat_iter) for _ in range(R)]
            mu = np.array([r["completion_rate"] for r in reps]) / lam_star
            lr = np.array([r["loss_rate"] for r in reps])
            sat.append(dict(budget=y, completion=dict(Interval.of(mu).to_dict(),
                                                      values=mu.tolist()),
                            loss_rate=dict(Interval.of(lr).to_dict(), values=lr.tolist()),
                            overflow_rate=float(np.mean([r["overflow_rate"] for r in reps])),
                            min_queue=min(r["min_queue"] for r in reps),
                            r_bar=loss_at[round(y, 9)]))
        out_panels[key] = dict(p, label=WORKLOADS[kind]["label"], delta=delta, points=pts,
                               saturated=sat, theory=th, conservatism=_conservatism(th, sat))
    results = {"title": TITLE, "params": params, "panels": out_panels}
    write_results(ctx, NAME, results)
    return results


def _conservatism(th: dict, sat: list) -> dict:
    """How far inside the measured boundary the certified one sits (fractions of lambda*).

    capacity: the largest measured mu_sat over the tested budgets; certified: the largest
    rate the condition certifies (max over E[B] of E[B] - r_bar); gaps: at each tested
    budget below M / E[w], mu_sat - max(E[B] - r_bar, 0).
    """
    lam_star = th["critical_rate"]
    cert = th["certified"][th["loss_method"]]
    capacity = max(s["completion"]["mean"] for s in sat)
    gaps = []
    for s in sat:
        if s["budget"] >= 1.0:
            continue
        certified_here = max(s["budget"] - s["r_bar"] / lam_star, 0.0) \
            if math.isfinite(s["r_bar"]) else 0.0
        gaps.append({"budget": s["budget"], "measured": s["completion"]["mean"],
                     "certified": certified_here,
                     "gap": s["completion"]["mean"] - certified_here})
    return {"capacity": capacity, "certified": cert["fraction"],
            "certified_budget": cert["budget"] / lam_star,
            "gap": capacity - cert["fraction"], "per_budget": gaps}


def classify(growth, queue_second_half: float, delta: float, slots: int,
             level: float = CHECK_LEVEL) -> str:
    """"stable", "unstable" or "undecided" from per-replication growth rates (req/slot).

    unstable: the ``level`` Student-t interval of the mean growth lies above 0 and the mean
    queue over the second half exceeds delta T / 4; stable: the interval lies below delta
    and so does that queue; undecided otherwise (too close to the boundary, or too few or
    too short runs to tell).
    """
    g = Interval.of(growth, level)
    big = queue_second_half > delta * slots / 4
    if g.n < 2 or math.isnan(g.low):
        return "undecided"
    if g.low > 0 and big:
        return "unstable"
    if g.high < delta and not big:
        return "stable"
    return "undecided"


# ------------------------------------------------------------------------ verification
def _describe(panel: dict, p: dict) -> str:
    lam_star = panel["critical_rate"]
    g = Interval.from_dict(p["growth"], CHECK_LEVEL)
    budget = p["budget"] * lam_star
    btxt = f"b = {round(budget)}" if panel["law"] == "deterministic" else f"E[B] = {budget:.4g}"
    return (f"{panel['kind']} {panel['law']} {btxt}, lambda/lambda* = {p['load']:.4g}: "
            f"growth {g.text(3)} req/slot, {p['verdict']}")


def _points(results: dict):
    for panel in results["panels"].values():
        for p in panel["points"]:
            yield panel, p


def _inside_corrected(panel: dict, p: dict) -> bool:
    """lambda < E[B] - r_bar(E[B]) and E[B] < M / E[w] (the corrected condition)."""
    lam_star = panel["critical_rate"]
    return (p["load"] * lam_star < p["budget"] * lam_star - p["r_bar"]) and p["budget"] < 1.0


def _saturated(panel: dict, budget: float) -> dict | None:
    for s in panel["saturated"]:
        if abs(s["budget"] - budget) < 1e-9:
            return s
    return None


def _listing(items: list, limit: int = 4) -> str:
    if not items:
        return "none"
    extra = f"; and {len(items) - limit} more" if len(items) > limit else ""
    return "; ".join(items[:limit]) + extra


def _tally(points: list, bad_verdict: str, good_verdict: str | None = None) -> tuple:
    """(verdict, counts, offending points): FAIL if some point has ``bad_verdict``;
    INCONCLUSIVE if none does but some are undecided (or none was tested); PASS otherwise.
    With ``good_verdict`` every point must have it to PASS."""
    counts = {v: sum(p["verdict"] == v for _, p in points)
              for v in ("stable", "unstable", "undecided")}
    bad = [(pa, p) for pa, p in points if p["verdict"] == bad_verdict]
    if bad:
        return "FAIL", counts, bad
    pending = [(pa, p) for pa, p in points
               if p["verdict"] == "undecided" or (good_verdict and p["verdict"] != good_verdict)]
    if not points or pending:
        return "INCONCLUSIVE", counts, pending
    return "PASS", counts, []


def _count_text(n: int, counts: dict) -> str:
    return (f"{n} points: {counts['stable']} stable, {counts['undecided']} undecided, "
            f"{counts['unstable']} unstable")


def _boundary_sides(results: dict, margin: float = 3.0) -> tuple[list, list]:
    """Points beyond (lambda > mu_sat upper 99% end + margin delta) and within (lambda <
    mu_sat lower end - margin delta) the measured boundary at their budget."""
    beyond, within = [], []
    for pa, p in _points(results):
        s = _saturated(pa, p["budget"])
        if s is None:
            continue
        mu = Interval.from_dict(s["completion"], CHECK_LEVEL)
        d = margin * pa["delta"] / pa["critical_rate"]  # in units of lambda*
        if p["load"] > mu.high + d:
            beyond.append((pa, p))
        elif p["load"] < mu.low - d:
            within.append((pa, p))
    return beyond, within


def verify(results: dict) -> list:
    rows = []
    crit = ("99% CI of the growth rate (req/slot) over replications; unstable: CI above 0 and "
            "mean queue over the second half > delta T/4; stable: CI below delta = "
            f"{RESOLUTION:g} lambda* and queue below delta T/4; ")
    # 1. The reconstructed window is sufficient (the package's former claim).
    inside = [(pa, p) for pa, p in _points(results) if p["load"] < p["budget"] < 1.0]
    v, c, bad = _tally(inside, "unstable")
    rows.append(Check(
        NAME, "the budget window (lambda, M/E[w]) is sufficient: every tested point with "
              "lambda < E[B] < M/E[w] is stable", "theory",
        "stable inside the window (docs/model.md 3.2 budget window, reconstruction)",
        _count_text(len(inside), c) + "; " + ("unstable" if v == "FAIL" else "undecided")
        + ": " + _listing([_describe(pa, p) for pa, p in bad]),
        crit + "FAIL if a point inside is unstable, INCONCLUSIVE if some are undecided", v))
    # 2. The window's upper end is necessary (docs/model.md 3.2: "stability needs ... E[B] E[w] < M").
    above = [(pa, p) for pa, p in _points(results) if p["budget"] >= 1.0]
    v, c, bad = _tally(above, "stable", "unstable")
    rows.append(Check(
        NAME, "the window's upper end is necessary: every tested point with E[B] >= M/E[w] "
              "is unstable", "theory", "stability needs E[B] E[w] < M (docs/model.md 3.2)",
        _count_text(len(above), c) + "; " + ("stable" if v == "FAIL" else "not unstable")
        + ": " + _listing([_describe(pa, p) for pa, p in bad]),
        crit + "FAIL if a point above M/E[w] is stable, INCONCLUSIVE if some are undecided", v))
    # 3. The corrected condition is sufficient.
    methods = sorted({pa["theory"]["loss_method"] for pa in results["panels"].values()})
    corr = [(pa, p) for pa, p in _points(results) if _inside_corrected(pa, p)]
    v, c, bad = _tally(corr, "unstable")
    rows.append(Check(
        NAME, "effective-rate condition: every tested point with lambda < E[B] - r_bar(E[B]) "
              "(and E[B] < M/E[w]) is stable", "ours",
        f"rate stability when lambda < E[B] - r_bar, r_bar by {'/'.join(methods)} "
        "(rigorous in the fresh-length relaxation, else a heuristic)",
        _count_text(len(corr), c) + "; " + ("unstable" if v == "FAIL" else "undecided")
        + ": " + _listing([_describe(pa, p) for pa, p in bad]),
        crit + "FAIL if a point inside the condition is unstable, INCONCLUSIVE if some are "
               "undecided or none is tested", v))
    # 4. The saturation rule, both sides: beyond the measured boundary the queue grows,
    #    inside it it does not.
    beyond, within = _boundary_sides(results)
    v, c, bad = _tally(beyond, "stable", "unstable")
    rows.append(Check(
        NAME, "beyond the measured boundary (lambda > saturated completion rate mu_sat(E[B]) "
              "+ 3 delta) every tested point is unstable", "ours",
        "saturation rule: the queue grows at lambda - mu_sat when lambda > mu_sat",
        _count_text(len(beyond), c) + "; " + ("stable" if v == "FAIL" else "not unstable")
        + ": " + _listing([_describe(pa, p) for pa, p in bad]),
        crit + "mu_sat at 99%; FAIL if a point beyond is stable, INCONCLUSIVE if some are "
               "undecided", v))
    v, c, bad = _tally(within, "unstable")
    rows.append(Check(
        NAME, "inside the measured boundary (lambda < mu_sat(E[B]) - 3 delta) every tested "
              "point is stable", "ours", "saturation rule: stable when lambda < mu_sat",
        _count_text(len(within), c) + "; " + ("unstable" if v == "FAIL" else "undecided")
        + ": " + _listing([_describe(pa, p) for pa, p in bad]),
        crit + "mu_sat at 99%; FAIL if a point inside is unstable, INCONCLUSIVE if some are "
               "undecided", v))
    # 5. The loss bound dominates the measured saturated loss rate.
    checked, bad = 0, []
    for pa in results["panels"].values():
        for s in pa["saturated"]:
            if not math.isfinite(s["r_bar"]) or s["budget"] >= 1.0:
                continue
            checked += 1
            lr = Interval.from_dict(s["loss_rate"], CHECK_LEVEL)
            if lr.low > s["r_bar"]:
                bad.append(f"{pa['kind']} {pa['law']} E[B]/lambda* = {s['budget']:.4g}: "
                           f"measured {lr.text(3)} > r_bar {fmt(s['r_bar'], 3)}")
    ratios = []  # (mean / r_bar, CI lower end / r_bar, where)
    for pa in results["panels"].values():
        for s in pa["saturated"]:
            if math.isfinite(s["r_bar"]) and s["r_bar"] > 0 and s["budget"] < 1.0:
                lr = Interval.from_dict(s["loss_rate"], CHECK_LEVEL)
                ratios.append((lr.mean / s["r_bar"], lr.low / s["r_bar"],
                               f"{pa['kind']} {pa['law']} E[B]/lambda* = {s['budget']:.4g}: "
                               f"measured {lr.text(3)}, r_bar {fmt(s['r_bar'], 3)}"))
    if ratios:
        top = max(ratios)
        summary_text = (f"measured mean / r_bar: median {np.median([x[0] for x in ratios]):.3g},"
                        f" largest {top[0]:.3g} ({top[2]}); largest 99% CI lower end / r_bar "
                        f"{max(x[1] for x in ratios):.3g}")
    else:
        summary_text = "no budget with a finite, positive r_bar"
    rows.append(Check(
        NAME, "the loss bound r_bar is at least the saturated rate of bounces + evictions at "
              "every tested budget below M/E[w]", "ours",
        f"r_bar = E[ceil((U - M)^+ / h)] (by {'/'.join(methods)}), an upper bound",
        f"{checked} budgets; {summary_text}; above the bound: " + _listing(bad),
        "99% CI lower end of the measured loss rate <= r_bar at every budget "
        "(INCONCLUSIVE if no budget is tested)",
        "INCONCLUSIVE" if not checked else verdict(not bad)))
    return rows
