"""A budget found by simulation: a grid of budgets on tuning seeds (docs/comparisons.md 1).

Flow control's performance depends on its activation budget, which the paper leaves to be
tuned per workload. The theory tuner (:mod:`stability.theory.tuning`) predicts a budget
from the overflow bound; this one measures. Each budget b = m lambda (m in
:data:`MULTIPLIERS`, lambda the workload's arrival rate) runs ``replications`` times on
seeds spawned from ``root_seed`` (keep them apart from the seeds of any number you report),
and the best budget is the one with the fewest requests in the system on average (waiting
plus running: by Little's law the mean time in system, unfinished requests included, so a
budget that leaves a growing queue behind cannot look good).

Two families: ``flow`` (Alg. 2, two-point budget law) and ``flow-checked`` (``CheckedFlow``:
the same rate with Greedy's memory test), whose grid also holds b = infinity, which is
Greedy exactly. ``experiments.tuned`` tunes every experiment's cells with the same grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stability.budgets import CHECKED_MULTIPLIERS, MULTIPLIERS  # the grid (re-exported)
from stability.intervals import student_t

TUNE_SEED = 907_2026
"""Root seed of the tuning runs (``stability reproduce`` reports no number from it)."""
FAMILIES = ("flow", "flow-checked")


def flow_spec(budget: float) -> dict:
    """Alg. 2 at E[B] = ``budget`` (two-point law: the least variable with that mean)."""
    return {"kind": "flow", "budget": round(float(budget), 6), "law": "two-point"}


def checked_spec(budget: float) -> dict:
    """``CheckedFlow`` at ``budget`` (the adaptive policy's budgeted mode held at b); an
    infinite budget is Greedy."""
    if math.isinf(budget):
        return {"kind": "greedy"}
    return {"kind": "flow-checked", "budget": round(float(budget), 6)}


SPECS = {"flow": (flow_spec, MULTIPLIERS), "flow-checked": (checked_spec, CHECKED_MULTIPLIERS)}


def budget_grid(total_rate: float, spec=flow_spec, multipliers=MULTIPLIERS) -> list[dict]:
    """Specs at E[B] = m lambda for every multiplier m (flow control by default)."""
    return [spec(m * total_rate) for m in multipliers]


@dataclass(frozen=True)
class GridPoint:
    """One budget of the grid, over its replications (95% Student-t intervals)."""

    multiplier: float
    spec: dict
    in_system: tuple  # (mean, low, high): waiting + running requests per slot
    latency_mean: float  # mean over replications of the mean latency (slots)
    latency_p95: float
    waste_share: float  # wasted decode tokens / decoded tokens, pooled
    overflow_rate: float  # overflow events per measured slot, mean over replications

    def to_dict(self) -> dict:
        return {"multiplier": self.multiplier, "spec": self.spec,
                "in_system": list(self.in_system), "latency_mean": self.latency_mean,
                "latency_p95": self.latency_p95, "waste_share": self.waste_share,
                "overflow_rate": self.overflow_rate}


@dataclass(frozen=True)
class GridResult:
    """Every budget of the grid and the best (fewest requests in the system on average)."""

    family: str
    total_rate: float
    points: tuple
    best: GridPoint

    def to_dict(self) -> dict:
        return {"family": self.family, "total_rate": self.total_rate,
                "points": [p.to_dict() for p in self.points], "best": self.best.to_dict()}


def grid_sweep(workload, memory: int, family: str = "flow", world=None, slots: int = 20_000,
               replications: int = 4, root_seed: int = TUNE_SEED, multipliers=None,
               name: str = "tune"):
    """The :class:`~stability.sweep.Sweep` of the grid (warmup: the first quarter), and its
    multipliers and specs.  ``workload``: a :class:`~stability.sweep.WorkloadSpec`."""
    from stability import validation
    from stability.sweep.spec import Sweep, WorldSpec

    if family not in SPECS:
        raise ValueError(f"family must be one of {', '.join(FAMILIES)}, got {family!r}")
    spec, default = SPECS[family]
    multipliers = tuple(default if multipliers is None else multipliers)
    for m in multipliers:
        if not (isinstance(m, (int, float)) and m > 0 and not math.isnan(m)):
            raise ValueError(f"multipliers: each must be a number > 0, got {m!r}")
    validation.integer("slots", slots, 4)
    rate = workload.build(memory).total_rate
    specs = budget_grid(rate, spec, multipliers)
    sweep = Sweep(name=name, workloads=(workload,), policies=tuple(specs), memory=(memory,),
                  worlds=(world if world is not None else WorldSpec(),),
                  replications=replications, root_seed=root_seed, slots=slots,
                  warmup=slots // 4)
    return sweep, multipliers, specs, rate


def tune_grid(workload, memory: int, db, family: str = "flow", world=None,
              slots: int = 20_000, replications: int = 4, root_seed: int = TUNE_SEED,
              multipliers=None, workers: int | None = None, executor=None,
              progress: bool | None = None) -> GridResult:
    """Run the grid into the results store ``db`` (runs already there are reused, so an
    interrupted call loses nothing) and rank its budgets."""
    from stability.policies import from_spec
    from stability.store import load
    from stability.sweep.run import SweepError, run_sweep

    sweep, multipliers, specs, rate = grid_sweep(workload, memory, family, world, slots,
                                                 replications, root_seed, multipliers)
    report = run_sweep(sweep, Path(db), executor=executor, workers=workers, progress=progress)
    if report.failed:
        task, error = report.failed[0]
        raise SweepError(f"{len(report.failed)} runs failed and were not stored; first: "
                         f"{task.describe()}: {error}")
    columns = load(Path(db), expand=False)
    row = {k: i for i, k in enumerate(columns["key"])}
    by_policy = {}
    for task in sweep.tasks():
        by_policy.setdefault(task.policy, []).append(row[task.key])
    points = []
    for m, spec in zip(multipliers, specs):
        rows = np.asarray(by_policy[from_spec(spec)])
        n = columns["queue_mean"][rows] + columns["active_mean"][rows]
        t = student_t(n)
        decoded = float(np.sum(columns["decode_throughput"][rows]))
        wasted = float(np.sum(columns["waste_rate"][rows]))
        points.append(GridPoint(
            float(m), spec, (float(t.mean), float(t.low), float(t.high)),
            float(np.mean(columns["latency_mean"][rows])),
            float(np.mean(columns["latency_p95"][rows])),
            wasted / decoded if decoded else 0.0,
            float(np.mean(columns["overflow_rate"][rows]))))
    best = min(points, key=lambda p: p.in_system[0])
    return GridResult(family, float(rate), tuple(points), best)
