"""The hindsight optimum as a mixed-integer program (HiGHS) and its LP relaxation."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

from stability.hindsight.bounds import (
    _check_horizon,
    _check_instance,
    _check_time_limit,
    _leave_one_out_bounds,
    memory_volume_lower_bound,
    safe_horizon,
)
from stability.hindsight.schedules import Schedule, evaluate_schedule, upper_bound_schedule
from stability.workload import Requests


# ----------------------------------------------------------------------------------------
# The integer program


@dataclass
class _Model:
    c: np.ndarray
    matrix: sp.csr_matrix
    lower: np.ndarray
    upper: np.ndarray
    request: np.ndarray  # request of each variable
    slot: np.ndarray  # start slot of each variable
    horizon: int
    num_memory_rows: int
    heuristic: Schedule
    heuristic_in_horizon: bool
    loo: np.ndarray  # LB(-j)
    cost_cap: int  # an upper bound on the optimum of the model (for the MILP gap)


def _build(requests: Requests, memory: int, horizon: int | None,
           symmetry_breaking: bool, clique_rows: bool = True) -> _Model:
    """The matrices of (IP-obj), (IP-one), (IP-mem) on the windows of Lemmas H and W, plus
    the valid rows (IP-clique) and (IP-sym) when asked."""
    a, l, o = requests.arrival, requests.prompt, requests.decode
    n = len(requests)
    h = safe_horizon(requests) if horizon is None else horizon
    heur = upper_bound_schedule(requests, memory)
    in_h = heur.makespan <= h - 1
    loo = _leave_one_out_bounds(requests, memory)
    last = h - o  # completion s + o - 1 <= h - 1
    if in_h:  # Lemma W with U = the heuristic cost (>= the optimum within the horizon)
        last = np.minimum(last, a + heur.total_latency - loo - o)
    count = last - a + 1
    assert np.all(count >= 1)
    offsets = np.concatenate([[0], np.cumsum(count)])
    nvar = int(offsets[-1])
    req = np.repeat(np.arange(n), count)
    slot = np.arange(nvar, dtype=np.int64) - offsets[req] + a[req]
    c = (slot + o[req] - a[req]).astype(float)
    t0 = int(a.min())
    t_end = int((last + o - 1).max())  # last slot any request can occupy
    rows_mem = t_end - t0 + 1
    # (IP-one): row i holds the variables of request i
    one_rows = req
    one_cols = np.arange(nvar)
    one_vals = np.ones(nvar)
    # (IP-mem): variable (i, s) puts l_i + k + 1 in row n + (s + k - t0), k = 0..o_i - 1
    mem_r, mem_c, mem_v = [], [], []
    for i in range(n):
        cols = np.arange(offsets[i], offsets[i + 1])
        k = np.arange(o[i])
        rows = (slot[cols][:, None] + k[None, :]) - t0 + n
        mem_r.append(rows.ravel())
        mem_c.append(np.repeat(cols, o[i]))
        mem_v.append(np.tile(l[i] + 1 + k, cols.size).astype(float))
    rows_all = [one_rows, *mem_r]
    cols_all = [one_cols, *mem_c]
    vals_all = [one_vals, *mem_v]
    lower = [np.ones(n), np.full(rows_mem, -np.inf)]
    upper = [np.ones(n), np.full(rows_mem, float(memory))]
    nrows = n + rows_mem
    if clique_rows:
        # (IP-clique): at most one request holds more than M/2 tokens in a slot (two would
        # exceed M).  Valid for the integer program; it tightens the LP a little and, in
        # our runs on Jaillet et al.'s family, speeds HiGHS up by roughly a third.
        r, cc, v = np.concatenate(mem_r), np.concatenate(mem_c), np.concatenate(mem_v)
        big = 2 * v > memory
        rows_all.append(r[big] + rows_mem)
        cols_all.append(cc[big])
        vals_all.append(np.ones(int(big.sum())))
        lower.append(np.full(rows_mem, -np.inf))
        upper.append(np.ones(rows_mem))
        nrows += rows_mem
    if symmetry_breaking:
        # Identical requests (same a, l, o) are interchangeable: permuting their starts keeps
        # feasibility and cost, so one may require s_i <= s_j for identical i < j.
        keys = {}
        pairs = []
        for i in range(n):
            key = (int(a[i]), int(l[i]), int(o[i]))
            if key in keys:
                pairs.append((keys[key], i))
            keys[key] = i
        for p, (i, j) in enumerate(pairs):
            ci = np.arange(offsets[i], offsets[i + 1])
            cj = np.arange(offsets[j], offsets[j + 1])
            rows_all += [np.full(ci.size + cj.size, nrows + p)]
            cols_all += [np.concatenate([ci, cj])]
            vals_all += [np.concatenate([slot[ci], -slot[cj]]).astype(float)]
        lower.append(np.full(len(pairs), -np.inf))
        upper.append(np.zeros(len(pairs)))
        nrows += len(pairs)
    matrix = sp.csr_matrix(
        (np.concatenate(vals_all), (np.concatenate(rows_all), np.concatenate(cols_all))),
        shape=(nrows, nvar))
    cap = heur.total_latency if in_h else int((h - a).sum())
    return _Model(c=c, matrix=matrix, lower=np.concatenate(lower), upper=np.concatenate(upper),
                  request=req, slot=slot, horizon=h, num_memory_rows=rows_mem, heuristic=heur,
                  heuristic_in_horizon=bool(in_h), loo=loo, cost_cap=int(cap))


@dataclass(frozen=True)
class HindsightResult:
    """The outcome of ``hindsight_optimum``.

    status: "optimal" (proven within the horizon), "time_limit" (the best schedule found,
    with a proven ``lower_bound``), "infeasible" (no schedule completes within a
    user-given horizon) or "error" (the solver's ``message``).
    total_latency / schedule: the best schedule found (None when there is none); with
    "time_limit" it may be the MILP incumbent or the heuristic, whichever is cheaper
    (``source``).
    lower_bound: a proven lower bound on the optimum within the horizon (integer: the
    ceiling of the solver's dual bound, and at least the memory-volume bound).
    gap: (total_latency - lower_bound) / total_latency (0 when proven optimal).
    horizon / horizon_certified: schedules complete in slots 0..horizon-1; certified means
    the horizon provably loses no optimum of the unrestricted problem (Lemma H, or the
    post-solve test of ``hindsight_optimum``).
    """

    status: str
    message: str
    total_latency: int | None
    schedule: Schedule | None
    lower_bound: int
    gap: float
    horizon: int
    horizon_certified: bool
    heuristic_latency: int | None
    source: str
    build_seconds: float
    solve_seconds: float
    num_variables: int
    num_constraints: int
    nonzeros: int
    nodes: int

    @property
    def optimal(self) -> bool:
        return self.status == "optimal"

    @property
    def start(self) -> np.ndarray | None:
        return None if self.schedule is None else self.schedule.start

    @property
    def memory_per_slot(self) -> np.ndarray | None:
        return None if self.schedule is None else self.schedule.memory

    @property
    def seconds(self) -> float:
        return self.build_seconds + self.solve_seconds

    def require_optimal(self) -> "HindsightResult":
        """Return self if proven optimal, else raise RuntimeError with the status."""
        if not self.optimal:
            raise RuntimeError(f"hindsight optimum not proven: status={self.status!r} "
                               f"({self.message}); best={self.total_latency}, "
                               f"lower bound={self.lower_bound}, gap={self.gap:.3g}")
        return self


def _empty_result(horizon) -> HindsightResult:
    sch = Schedule(*(np.zeros(0, np.int64) for _ in range(4)))
    return HindsightResult("optimal", "no requests", 0, sch, 0, 0.0, horizon or 0, True, 0,
                           "empty", 0.0, 0.0, 0, 0, 0, 0)


def hindsight_optimum(requests: Requests, memory: int, horizon: int | None = None,
                      time_limit: float = 60, symmetry_breaking: bool = True,
                      clique_rows: bool = True) -> HindsightResult:
    """Minimum total latency (H2) over one-start schedules, by the integer program
    (IP-obj)-(IP-one)-(IP-mem) of the module docstring solved with HiGHS
    (``scipy.optimize.milp``).

    Parameters
    ----------
    requests : Requests
        The requests (a, l, o); class ids are ignored.
    memory : int
        M, the KV capacity in tokens (integer >= 2, and l_i + o_i <= M for every i).
    horizon : int or None
        Requests must complete in slots 0..horizon-1.  None uses the safe horizon
        max a + sum o of Lemma H, so the result is the unrestricted optimum.  A shorter
        horizon gives the optimum among schedules completing within it (possibly
        "infeasible"); ``horizon_certified`` tells whether it is also the unrestricted one.
    time_limit : float
        Seconds for HiGHS; on expiry the best schedule and a lower bound are
        returned with status "time_limit".
    symmetry_breaking : bool
        Add (IP-sym), s_i <= s_j for identical requests i < j.
    clique_rows : bool
        Add (IP-clique), at most one request above M/2 tokens per slot.

    The variables of request j are restricted to starts s in [a_j, last_j] with
    last_j = min(H - o_j, a_j + U - LB(-j) - o_j) (Lemmas H and W), U the cost of
    ``upper_bound_schedule`` when it fits in the horizon.  The solver's relative gap
    tolerance is set below 1 / (2 U), so "optimal" means the integer optimum exactly.

    Horizon certificate (user horizon H shorter than Lemma H's): a schedule in which some
    request j completes in slot >= H costs >= H - a_j + 1 + LB(-j); if that is >= the
    optimum found for every j, no schedule outside the horizon is cheaper.
    """
    memory = _check_instance(requests, memory)
    time_limit = _check_time_limit(time_limit)
    horizon = _check_horizon(requests, horizon)
    if len(requests) == 0:
        return _empty_result(horizon)
    t_build = time.perf_counter()
    model = _build(requests, memory, horizon, symmetry_breaking, clique_rows)
    build_seconds = time.perf_counter() - t_build
    integrality = np.ones(model.c.size)
    options = {"time_limit": time_limit, "disp": False, "presolve": True,
               "mip_rel_gap": min(1e-4, 0.5 / max(model.cost_cap, 1))}
    t_solve = time.perf_counter()
    res = milp(model.c, integrality=integrality, bounds=Bounds(0, 1),
               constraints=LinearConstraint(model.matrix, model.lower, model.upper),
               options=options)
    solve_seconds = time.perf_counter() - t_solve
    a = requests.arrival
    vol = memory_volume_lower_bound(requests, memory)
    best, source = None, "none"
    if res.x is not None:
        x = res.x
        n = len(requests)
        pick = np.full(n, -1, np.int64)
        chosen = np.flatnonzero(x > 0.5)
        pick[model.request[chosen]] = model.slot[chosen]
        if np.any(pick < 0):
            raise RuntimeError("the MILP solution does not start every request once")
        best = evaluate_schedule(requests, pick, memory)  # independent feasibility check
        if abs(best.total_latency - res.fun) > 1e-6 * max(1.0, abs(res.fun)):
            raise RuntimeError(f"MILP objective {res.fun} disagrees with the schedule's "
                               f"total latency {best.total_latency}")
        source = "milp"
    heur = model.heuristic if model.heuristic_in_horizon else None
    if heur is not None and (best is None or heur.total_latency < best.total_latency):
        best, source = heur, "heuristic"
    status = {0: "optimal", 1: "time_limit", 2: "infeasible"}.get(res.status, "error")
    dual = getattr(res, "mip_dual_bound", None)
    lower = vol
    if dual is not None and np.isfinite(dual):
        lower = max(lower, int(math.ceil(dual - 1e-6)))
    total = None if best is None else best.total_latency
    if status == "optimal" and total is not None:
        lower = total  # the tolerance above makes HiGHS's optimum exact for integer costs
    elif status == "time_limit" and total is not None and lower >= total:
        status = "optimal"  # the best schedule meets a proven lower bound
    gap = float("nan") if total is None else (total - lower) / max(total, 1)
    certified = horizon is None or horizon >= safe_horizon(requests)
    if not certified and status == "optimal" and total is not None:
        certified = bool(np.all(model.horizon - a + 1 + model.loo >= total))
    return HindsightResult(
        status=status, message=str(res.message), total_latency=total, schedule=best,
        lower_bound=int(lower), gap=gap, horizon=model.horizon, horizon_certified=certified,
        heuristic_latency=model.heuristic.total_latency, source=source,
        build_seconds=build_seconds, solve_seconds=solve_seconds,
        num_variables=int(model.c.size), num_constraints=int(model.matrix.shape[0]),
        nonzeros=int(model.matrix.nnz), nodes=int(getattr(res, "mip_node_count", 0) or 0),
    )


@dataclass(frozen=True)
class LPBound:
    """The LP relaxation of the integer program: ``value`` (the LP optimum) and ``bound``
    = ceil(value) (total latency is an integer), a lower bound on the optimum within the
    horizon."""

    value: float
    bound: int
    status: str
    seconds: float


def lp_lower_bound(requests: Requests, memory: int, horizon: int | None = None,
                   time_limit: float = 60, symmetry_breaking: bool = True,
                   clique_rows: bool = True) -> LPBound:
    """Solve (IP-obj)-(IP-one)-(IP-mem) with x in [0, 1] continuous: the same matrix as
    ``hindsight_optimum`` (with the same optional valid rows).  Its optimum is <= the
    integer optimum: it relaxes a program whose windows contain every optimal schedule
    (Lemmas H and W) and whose extra rows every schedule (IP-clique), or at least one
    optimal schedule (IP-sym), satisfies."""
    memory = _check_instance(requests, memory)
    time_limit = _check_time_limit(time_limit)
    horizon = _check_horizon(requests, horizon)
    if len(requests) == 0:
        return LPBound(0.0, 0, "optimal", 0.0)
    began = time.perf_counter()
    model = _build(requests, memory, horizon, symmetry_breaking, clique_rows)
    res = milp(model.c, integrality=np.zeros(model.c.size), bounds=Bounds(0, 1),
               constraints=LinearConstraint(model.matrix, model.lower, model.upper),
               options={"time_limit": time_limit, "disp": False, "presolve": True})
    seconds = time.perf_counter() - began
    if res.status != 0 or res.fun is None:
        status = {1: "time_limit", 2: "infeasible"}.get(res.status, "error")
        return LPBound(float("nan"), 0, status, seconds)
    return LPBound(float(res.fun), int(math.ceil(res.fun - 1e-6)), "optimal", seconds)


