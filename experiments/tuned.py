"""Flow control at its best budget, tuned on seeds independent of the ones reported.

A comparison of flow control with another policy is only fair at flow control's best
activation budget.  For each cell (a workload at a load, a memory, a world) a grid of
budgets E[B] = m * lambda (two-point law, m in :data:`MULTIPLIERS`) is run on the tuning
seeds (root seed :data:`TUNE_SEED`, never used for a reported number), and the budget with
the fewest requests in the system on average (waiting plus running: by Little's law the
mean time in system, unfinished requests included, so an unstable budget cannot look good
by leaving its queue behind) is the one reported.  Budgets above every multiplier tend to
Greedy (b -> infinity admits the longest prefix that fits, which is Greedy), which the
experiments show as a policy of its own.
"""

from __future__ import annotations

import math

import numpy as np

from experiments.common import Context, policy_key, select
# The grid, its specs and its seed are the package's, so ``stability reproduce`` and
# ``stability tune`` tune alike (re-exported for the experiments).
from stability.sweep.tune import (CHECKED_MULTIPLIERS, MULTIPLIERS, TUNE_SEED,  # noqa: F401
                                  checked_spec)


def cell_rows(columns: dict, sweep, spec: dict) -> dict:
    """The rows of ``spec`` in the one-workload, one-world, one-memory ``sweep``."""
    from stability.sweep.spec import canonical

    return select(columns, workload=sweep.workloads[0].canonical(), policy=policy_key(spec),
                  world=canonical(sweep.worlds[0].to_dict()), memory=sweep.memory[0])


def tune(ctx: Context, store: str, cells: list, slots: int, replications: int,
         family: str = "flow") -> dict:
    """The best budget of every cell, of flow control or (``family="flow-checked"``) of
    CheckedFlow, whose grid ends with b = infinity (Greedy); each cell's grid is
    :func:`stability.sweep.tune.grid_sweep`'s, as ``stability tune`` runs it.

    ``cells``: dicts with ``key``, ``workload`` (a spec table with its load or rate),
    ``memory`` and ``world`` (a world table).  Returns {key: {"spec": the best spec,
    "multiplier", "objective": {multiplier: mean number in system}, "drain": {multiplier:
    mean effective drain}}}; the effective drain of a budget b is b - (bounces + evictions)
    per slot, the measured counterpart of the effective rate E[B] - r_bar(E[B]) of
    docs/theory_region.md: the requests a saturated budget really moves into service.
    """
    from stability.sweep import WorkloadSpec, WorldSpec
    from stability.sweep.tune import grid_sweep

    from experiments.common import run_sweeps

    sweeps, grids = [], {}
    for cell in cells:
        sweep, multipliers, grid, _ = grid_sweep(
            WorkloadSpec.from_dict(cell["workload"]), cell["memory"], family,
            WorldSpec(**cell["world"]), slots, replications, TUNE_SEED,
            name=f"{store}-tune-{cell['key']}")
        grids[cell["key"]] = grid
        sweeps.append(sweep)
    columns = run_sweeps(ctx, f"{store}-tune", sweeps)
    out = {}
    for cell, sweep in zip(cells, sweeps):
        objective, drain = {}, {}
        for m, s in zip(multipliers, grids[cell["key"]]):
            rows = cell_rows(columns, sweep, s)
            objective[m] = float(np.mean(rows["queue_mean"] + rows["active_mean"]))
            if math.isfinite(m):
                drain[m] = float(np.mean(s["budget"] - rows["bounce_rate"]
                                         - rows["eviction_rate"]))
        best = min(objective, key=objective.get)
        out[cell["key"]] = {"spec": grids[cell["key"]][multipliers.index(best)],
                            "multiplier": best, "objective": objective, "drain": drain}
    return out
