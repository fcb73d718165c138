"""The hindsight optimum: minimum total latency when every length is known in advance.

Model (DESIGN 1, slot model, all lengths known in hindsight).  Request i has arrival slot
a_i, prompt l_i and decode o_i.  A *schedule* gives every request one start slot s_i >= a_i;
the request decodes in slots s_i, ..., s_i + o_i - 1, completes in slot C_i = s_i + o_i - 1,
and in slot t of that range holds

    m_i(t) = l_i + (t - s_i) + 1                                             (H1)

tokens of KV cache.  The schedule is *feasible* when sum_i m_i(t) <= M in every slot t, and
its cost is the total latency

    sum_i latency_i,   latency_i = C_i - a_i + 1 = s_i + o_i - a_i.          (H2)

Modelling choice: one start per request, no eviction.  A hindsight schedule never benefits
from eviction: given any run with evictions, keep only the final (completing) run of each
request.  Every slot's memory can only go down (the dropped partial runs held tokens, the
kept runs are unchanged) and every completion slot is unchanged, so the latencies are equal.
Hence restricting to one contiguous run per request loses nothing.  This is the integer
program of Jaillet et al., "Online Scheduling for LLM Inference with KV Cache Constraints"
(arXiv 2502.07115), whose hindsight-optimal benchmark chooses one start time per request
subject to one memory constraint per time step; here it is written in DESIGN 1's slot
model (a request holds l + g + 1 tokens while decoding its (g+1)-th token, and its memory
is free in the slot after its completion slot).

The integer program (``hindsight_optimum``), binaries x[i, s] = 1 iff s_i = s:

    minimise   sum_i sum_s (s + o_i - a_i) x[i, s]                          (IP-obj)
    subject to sum_s x[i, s] = 1                          for every i       (IP-one)
               sum_i sum_{s <= t <= s + o_i - 1} (l_i + t - s + 1) x[i, s] <= M
                                                          for every slot t  (IP-mem)
               x[i, s] in {0, 1},  s in [a_i, last_i]

with two families of valid rows added by default: (IP-clique) for every slot t,
sum of x[i, s] over the (i, s) whose m_i(t) > M/2 is <= 1 (two such requests would exceed M);
(IP-sym) s_i <= s_j for identical requests i < j (same a, l, o: swapping them changes
neither feasibility nor cost).  Neither removes every optimal schedule.

Lemma H (safe horizon).  Every optimal schedule completes by slot max_i a_i + sum_i o_i - 1,
so ``safe_horizon`` H = max a + sum o slots (0..H-1) lose no optimum.  Proof: let T be the
last completion slot of an optimal schedule.  If some slot u in [max a, T] had no active
request, every request starting after u could start one slot earlier: its start stays
>= max a >= its arrival, the requests starting at or before u have all completed before u
(none is active in u), so the shifted requests only meet each other and the memory of every
slot t >= u becomes the old memory of slot t + 1 <= M; the total latency drops, a
contradiction.  So each slot of [max a, T] is covered by the decode interval of some
request; these intervals cover at most sum o slots, hence T - max a + 1 <= sum o.  QED

Lemma W (windows from an upper bound).  If some feasible schedule costs U, every schedule of
cost <= U (in particular every optimal one) has, for every j,

    latency_j <= U - LB(-j),  i.e.  s_j <= a_j + U - LB(-j) - o_j,          (H3)

where LB(-j) is any lower bound on the optimum of the instance without j: deleting j from
a feasible schedule leaves a feasible schedule of the others (memory only decreases), whose
cost is >= OPT(-j) >= LB(-j).  The MILP uses U from ``upper_bound_schedule`` and
LB(-j) = ``memory_volume_lower_bound`` of the others, intersected with Lemma H.

Cheap lower bounds: ``decode_lower_bound`` (latency_i >= o_i) and
``memory_volume_lower_bound`` (Claim V below), plus the LP relaxation
(``lp_lower_bound``).  ``brute_force_optimum`` enumerates start vectors for tiny instances
to verify the MILP; ``heuristic_schedule`` / ``upper_bound_schedule`` give feasible
schedules (upper bounds).

Limits (measured with ``python -m benchmarks.hindsight`` on 2 shared cores, HiGHS through
SciPy 1.17, 60 s per instance): on Jaillet et al.'s synthetic family (``synthetic_batch``:
all requests in slot 0, M ~ U{30..50}, decode up to M - prompt) the program is proven
optimal in 3-25 s for 8 requests and within 60 s for most 10-12 request instances; from
about 15 requests on HiGHS stops at the time limit (gap 8-10% at 15, 15-19% at 20, 19-31%
at 30-40 requests, where it does not finish the root node and the heuristic is the best
schedule).  The LP relaxation is 10-30% below the optimum on this family, which is what
limits the branch and bound.  Instances whose arrivals are spread out have much shorter
start windows and solve faster.  HiGHS may print "HighsMipSolverData::..." lines on stdout.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

from stability import validation
from stability.workload import Requests

__all__ = [
    "Schedule",
    "HindsightResult",
    "LPBound",
    "hindsight_optimum",
    "lp_lower_bound",
    "brute_force_optimum",
    "heuristic_schedule",
    "upper_bound_schedule",
    "evaluate_schedule",
    "decode_lower_bound",
    "memory_volume_lower_bound",
    "safe_horizon",
    "synthetic_batch",
    "HEURISTIC_ORDERS",
]

HEURISTIC_ORDERS = ("fcfs", "shortest-decode", "smallest-work", "earliest-finish")


# ----------------------------------------------------------------------------------------
# Validation


def _check_instance(requests, memory) -> int:
    if not isinstance(requests, Requests):
        raise ValueError(f"requests must be a stability.Requests, got {type(requests).__name__}")
    memory = validation.memory(memory)
    requests.check_fits(memory)  # names the request, its l, o and M
    return memory


def _check_time_limit(time_limit) -> float:
    if (isinstance(time_limit, bool) or not isinstance(time_limit, (int, float, np.number))
            or not math.isfinite(float(time_limit)) or time_limit <= 0):
        raise ValueError(f"time_limit must be a positive number of seconds, got {time_limit!r}")
    return float(time_limit)


def _check_horizon(requests: Requests, horizon) -> int | None:
    if horizon is None:
        return None
    horizon = validation.integer("horizon", horizon, 1)
    a, o = requests.arrival, requests.decode
    late = np.flatnonzero(a + o > horizon)
    if late.size:
        i = int(late[0])
        raise ValueError(
            f"horizon={horizon} is too short: request {i} arrives in slot a={int(a[i])} and "
            f"needs o={int(o[i])} decode slots, so it cannot complete by slot {horizon - 1}"
        )
    return horizon


# ----------------------------------------------------------------------------------------
# Schedules


@dataclass(frozen=True)
class Schedule:
    """A feasible one-start-per-request schedule (module docstring, (H1)-(H2)).

    ``start``, ``completion`` and ``latency`` are int64 arrays aligned with the requests;
    ``memory[t]`` is the KV usage sum_i m_i(t) in slot t = 0, ..., makespan.
    """

    start: np.ndarray
    completion: np.ndarray
    latency: np.ndarray
    memory: np.ndarray

    @property
    def total_latency(self) -> int:
        return int(self.latency.sum())

    @property
    def makespan(self) -> int:
        """Last completion slot (-1 for no requests)."""
        return int(self.completion.max()) if self.completion.size else -1

    @property
    def peak_memory(self) -> int:
        return int(self.memory.max()) if self.memory.size else 0


def _usage(arrival, prompt, decode, start) -> np.ndarray:
    """Per-slot memory sum_i m_i(t), t = 0..max completion, by difference arrays (H1).

    In slot t an active request holds (l_i + 1 - s_i) + t, so the usage is A(t) + t N(t)
    with A the sum of (l_i + 1 - s_i) and N the count over active requests.
    """
    if start.size == 0:
        return np.zeros(0, np.int64)
    end = start + decode  # first slot after the run
    length = int(end.max())
    da = np.zeros(length + 1, np.int64)
    dn = np.zeros(length + 1, np.int64)
    np.add.at(da, start, prompt + 1 - start)
    np.add.at(da, end, -(prompt + 1 - start))
    np.add.at(dn, start, 1)
    np.add.at(dn, end, -1)
    t = np.arange(length, dtype=np.int64)
    return np.cumsum(da)[:length] + t * np.cumsum(dn)[:length]


def evaluate_schedule(requests: Requests, start, memory: int) -> Schedule:
    """Check a start-slot vector against (H1) and the memory limit; return its Schedule.

    Raises ValueError naming the first request that starts before it arrives, or the first
    slot whose memory exceeds M.
    """
    memory = _check_instance(requests, memory)
    start = np.asarray(start, dtype=np.int64)
    a, l, o = requests.arrival, requests.prompt, requests.decode
    if start.shape != a.shape:
        raise ValueError(f"start has shape {start.shape}, expected {a.shape}")
    early = np.flatnonzero(start < a)
    if early.size:
        i = int(early[0])
        raise ValueError(f"request {i} starts in slot {int(start[i])} before its arrival "
                         f"a={int(a[i])}")
    usage = _usage(a, l, o, start)
    over = np.flatnonzero(usage > memory)
    if over.size:
        t = int(over[0])
        raise ValueError(f"slot {t} uses {int(usage[t])} tokens, above M={memory}")
    completion = start + o - 1
    return Schedule(start=start, completion=completion, latency=completion - a + 1,
                    memory=usage)


def _order(requests: Requests, order: str) -> np.ndarray:
    a, o = requests.arrival, requests.decode
    idx = np.arange(len(requests))
    if order == "fcfs":
        return np.lexsort((idx, a))
    if order == "shortest-decode":
        return np.lexsort((idx, a, o))
    if order == "smallest-work":
        return np.lexsort((idx, a, requests.memory_time()))
    if order == "earliest-finish":
        return np.lexsort((idx, o, a + o))
    raise ValueError(f"order must be one of {HEURISTIC_ORDERS}, got {order!r}")


def heuristic_schedule(requests: Requests, memory: int, order: str = "fcfs") -> Schedule:
    """List scheduling: take requests in ``order`` and start each at the earliest slot
    s >= a_i at which its whole profile l_i + 1, ..., l_i + o_i fits under M on top of the
    requests already placed.

    Orders: "fcfs" (arrival, index), "shortest-decode" (o first), "smallest-work" (w first),
    "earliest-finish" (a + o first).  Always feasible (each request fits alone since
    l + o <= M) and completes every request by slot max a + sum o - 1: the placed requests
    occupy at most sum o slots, so o_i consecutive free slots begin at or before
    a_i + (sum of the placed decode lengths).
    """
    memory = _check_instance(requests, memory)
    n = len(requests)
    a, l, o = requests.arrival, requests.prompt, requests.decode
    start = np.zeros(n, np.int64)
    if n == 0:
        return evaluate_schedule(requests, start, memory)
    horizon = safe_horizon(requests)
    used = np.zeros(horizon + 1, np.int64)
    for i in _order(requests, order):
        need = l[i] + 1 + np.arange(o[i])
        cap = memory - need
        s = int(a[i])
        while np.any(used[s:s + o[i]] > cap):
            s += 1
        used[s:s + o[i]] += need
        start[i] = s
    return evaluate_schedule(requests, start, memory)


def upper_bound_schedule(requests: Requests, memory: int) -> Schedule:
    """The cheapest of ``heuristic_schedule`` over ``HEURISTIC_ORDERS`` (an upper bound)."""
    schedules = [heuristic_schedule(requests, memory, order) for order in HEURISTIC_ORDERS]
    return min(schedules, key=lambda sch: sch.total_latency)


# ----------------------------------------------------------------------------------------
# Cheap lower bounds


def safe_horizon(requests: Requests) -> int:
    """H = max a + sum o: by Lemma H (module docstring) every optimal schedule completes in
    slots 0..H-1."""
    if len(requests) == 0:
        return 0
    return int(requests.arrival.max() + requests.decode.sum())


def decode_lower_bound(requests: Requests) -> int:
    """sum_i o_i: latency_i = s_i + o_i - a_i >= o_i because s_i >= a_i (H2)."""
    return int(requests.decode.sum())


def _volume_bound(a: np.ndarray, o: np.ndarray, w: np.ndarray, memory: int) -> int:
    n = a.size
    if n == 0:
        return 0
    e = np.sort(a + o - 1)
    cum = np.cumsum(np.sort(w))
    v = int(a.min()) - 1 + (-(-cum // memory))  # a_min - 1 + ceil(W_k / M)
    return int(np.maximum(e, v).sum() - a.sum() + n)


def memory_volume_lower_bound(requests: Requests, memory: int) -> int:
    """Claim V (memory-volume bound on the total latency).

    Let w_i = l_i o_i + o_i (o_i + 1) / 2 (DESIGN 1), W_k the sum of the k smallest w_i,
    e_(k) the k-th smallest of a_i + o_i - 1 and a_min = min_i a_i.  Every feasible
    schedule (with or without eviction) has

        total latency >= sum_{k=1..n} max(e_(k), a_min - 1 + ceil(W_k / M)) - sum_i a_i + n.

    Proof.  Order the completions C_(1) <= ... <= C_(n).  (i) C_i >= a_i + o_i - 1 for every
    i, and the k-th smallest of a pointwise larger vector is larger, so C_(k) >= e_(k).
    (ii) Let K be the k requests completing first.  Each i in K holds, over its (final)
    run, m_i(t) = l_i + (t - s_i) + 1 tokens in o_i slots, w_i in total (H1), all inside
    slots [a_min, C_(k)].  At most M tokens are held per slot, so
    M (C_(k) - a_min + 1) >= sum_{i in K} w_i >= W_k, and C_(k) is an integer:
    C_(k) >= a_min - 1 + ceil(W_k / M).  Summing max(i, ii) over k bounds sum_i C_i, and
    total latency = sum_i C_i - sum_i a_i + n (H2).  QED

    Part (i) alone sums to sum_i o_i, so this bound is >= ``decode_lower_bound``.
    """
    memory = _check_instance(requests, memory)
    return _volume_bound(requests.arrival, requests.decode, requests.memory_time(), memory)


def _leave_one_out_bounds(requests: Requests, memory: int) -> np.ndarray:
    """LB(-j) = memory-volume bound of the instance without request j, for every j."""
    a, o, w = requests.arrival, requests.decode, requests.memory_time()
    n = a.size
    out = np.zeros(n, np.int64)
    keep = np.ones(n, bool)
    for j in range(n):
        keep[j] = False
        out[j] = _volume_bound(a[keep], o[keep], w[keep], memory)
        keep[j] = True
    return out


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
    requests : the requests (a, l, o); class ids are ignored.
    memory : M, the KV capacity in tokens (integer >= 2, and l_i + o_i <= M for every i).
    horizon : requests must complete in slots 0..horizon-1.  None uses the safe horizon
        max a + sum o of Lemma H, so the result is the unrestricted optimum.  A shorter
        horizon gives the optimum among schedules completing within it (possibly
        "infeasible"); ``horizon_certified`` tells whether it is also the unrestricted one.
    time_limit : seconds for HiGHS; on expiry the best schedule and a lower bound are
        returned with status "time_limit".
    symmetry_breaking : add (IP-sym), s_i <= s_j for identical requests i < j.
    clique_rows : add (IP-clique), at most one request above M/2 tokens per slot.

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


# ----------------------------------------------------------------------------------------
# Brute force


def brute_force_optimum(requests: Requests, memory: int, max_requests: int = 6) -> Schedule:
    """Exact optimum by enumerating start vectors s_i in [a_i, H - o_i] (H of Lemma H),
    for tiny instances only (at most ``max_requests`` requests).

    Independent of the MILP code: a depth-first enumeration in input order that keeps a
    plain per-slot memory list, adds each request's tokens slot by slot (H1) and checks
    every slot against M.  Two prunings keep it fast without changing the answer: a
    partial assignment that already exceeds M in some slot cannot become feasible (memory
    only grows as requests are added), and one whose latency so far plus sum of the
    remaining o_j (each latency >= o_j) cannot beat the best complete vector found is
    skipped.  Ties go to the lexicographically smallest start vector.
    """
    memory = _check_instance(requests, memory)
    max_requests = validation.integer("max_requests", max_requests, 0)
    n = len(requests)
    if n > max_requests:
        raise ValueError(f"brute_force_optimum is for tiny instances: {n} requests > "
                         f"max_requests={max_requests}")
    a = [int(x) for x in requests.arrival]
    l = [int(x) for x in requests.prompt]
    o = [int(x) for x in requests.decode]
    horizon = (max(a) + sum(o)) if n else 0
    used = [0] * (horizon + 1)
    rest = [sum(o[i:]) for i in range(n + 1)]
    best_cost = [math.inf]
    best_start: list[list[int]] = [[]]
    cur = [0] * n

    def place(i: int, cost: int) -> None:
        if i == n:
            if cost < best_cost[0]:
                best_cost[0] = cost
                best_start[0] = list(cur)
            return
        for s in range(a[i], horizon - o[i] + 1):
            lat = s + o[i] - a[i]
            if cost + lat + rest[i + 1] >= best_cost[0]:
                break  # later starts only cost more
            ok = True
            for k in range(o[i]):
                if used[s + k] + l[i] + k + 1 > memory:
                    ok = False
                    break
            if not ok:
                continue
            for k in range(o[i]):
                used[s + k] += l[i] + k + 1
            cur[i] = s
            place(i + 1, cost + lat)
            for k in range(o[i]):
                used[s + k] -= l[i] + k + 1

    place(0, 0)
    return evaluate_schedule(requests, np.array(best_start[0], np.int64), memory)


# ----------------------------------------------------------------------------------------
# Jaillet et al.'s synthetic family


def synthetic_batch(n: int, seed: int = 0) -> tuple[Requests, int]:
    """Jaillet et al. (arXiv 2502.07115) synthetic instance: M ~ U{30..50}, then n requests
    all arriving in slot 0 with prompt l ~ U{1..5} and decode o ~ U{1..M - l}.

    Returns (requests, M); l + o <= M holds by construction.
    """
    n = validation.integer("n", n, 0)
    rng = np.random.default_rng(seed)
    memory = int(rng.integers(30, 51))
    prompt = rng.integers(1, 6, size=n)
    decode = rng.integers(1, memory - prompt + 1)
    return Requests(np.zeros(n, np.int64), prompt, decode), memory
