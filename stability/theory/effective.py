"""The effective activation rate of Alg. 2 and the corrected budget window (issue 16).

The budget window (lambda, M / E[w]) of docs/model.md 3.2 is not sufficient for stability: a request
that is admitted and removed in the same slot (a bounce) or evicted later goes back to the
queue, so the queue drains at the *effective* activation rate E[B] - r_loss, where r_loss
is the rate of bounces and evictions, not at E[B].  Measured on the Section 4.1 classes
with b = 12, r_loss = 0.41 per slot in saturation, more than the margin E[B] - lambda = 0.3
at 3.9 per class, and the queue grows (docs/theory_region.md).

Proposition (effective-rate condition; proof sketch in docs/theory_region.md).  Let U be
the saturated, eviction-free demand of docs/model.md 3.2 for the budget law and the class mix,
h = l_min + 1 (every removal frees at least l + 1 >= h tokens), and

    r_bar = E[ceil((U - M)^+ / h)] = sum_{k >= 0} P(U > M + k h)
          <= exp(-I(M)) / (1 - exp(-theta*(M) h))            (Chernoff, I convex).

If lambda < E[B] - r_bar, the number of waiting requests grows sublinearly (Q_T / T -> 0
almost surely: rate stability).  Steps: (i) one slot's LIFO removals free at least h tokens
each, so a slot whose demand is R removes at most ceil((R - M)^+ / h) requests; (ii) under
the coupling that gives the j-th admission of slot t the lengths of the j-th activation of
slot t of the eviction-free process, the real active set is a subset of the relaxed one, so
R_t <= U_t in every slot; (iii) the ergodic theorem for U; (iv) a sample-path argument for
the queue, which is fed at rate lambda + (removals) and drained at E[B] while it is long.

Rigour.  Step (ii) needs the lengths of an admitted request to be independent of the past
(*fresh-length relaxation*).  That is exact when a removed request's lengths did not
influence its removal: every request identical, or deterministic prompts with removals only
at ages below the smallest decode length (Section 4.1's bounces).  Otherwise (an evicted
request is known to have o > g; a long prompt makes its own bounce likelier) re-admitted
requests are slightly longer than fresh ones and the proposition is a heuristic, checked
against simulation by ``experiments/region.py``.  The converse, "unstable when lambda
exceeds the saturated throughput E[B] - r_sat", is the saturation rule; we measure it and
do not prove it.

Two ways to evaluate r_bar, both upper bounds on the exact value:

* ``"chernoff"``: exp(-I(M)) / (1 - exp(-theta* h)) -- the paper's per-slot overflow bound
  times a geometric bound on the removals one overflow can cause; one Chernoff solve.
* ``"exact"``: sum_j ceil(s/h) P(U > M + j s) with the FFT tail (:mod:`exact_tail`) at a
  level spacing s (a multiple of h, s = h when that needs at most ``MAX_LEVELS`` levels)
  and the Chernoff bound for the levels beyond the last one.

The corrected window is the set of mean budgets beta in the reconstructed window
(lambda, M / E[w]) with beta - r_bar(beta) > lambda.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from stability import validation
from stability.theory.budget import Budget, as_budget, class_mix
from stability.theory.demand import DemandModel
from stability.theory.moments import mean_memory_time_mix
from stability.theory.overflow import chernoff_rate
from stability.theory.symbolic import BUDGET_LAWS
from stability.workload import Workload

__all__ = ["LOSS_METHODS", "LossBound", "removal_unit", "loss_rate_bound", "CorrectedWindow",
           "corrected_window", "CertifiedRate", "certified_rate", "EffectiveRate",
           "effective_rate", "FRESH_LENGTH_NOTE"]

LOSS_METHODS = ("chernoff", "exact")
MAX_LEVELS = 48
"""The exact method evaluates the FFT tail at no more than this many levels (the spacing s
grows instead; each level then stands for ceil(s/h) terms of the sum, an upper bound)."""
REMAINDER = 1e-9
"""The exact method stops where the Chernoff bound of the remaining sum is below this
times max(1, E[B]) removals per slot."""

FRESH_LENGTH_NOTE = (
    "effective-rate condition lambda < E[B] - r_bar (issue 16): rigorous (rate stability) "
    "when a re-admitted request's lengths are independent of its removal (fresh-length "
    "relaxation; exact for identical requests and for deterministic prompts with removals "
    "below the smallest decode length), otherwise a heuristic checked by simulation "
    "(docs/theory_region.md)."
)


def _check_memory(memory) -> int:
    """M, the KV capacity in tokens: the one rule of :func:`stability.validation.memory`."""
    return validation.memory(memory)


def _check_method(method) -> str:
    if method not in LOSS_METHODS:
        raise ValueError(f"method={method!r} is not allowed; method must be one of "
                         f"{', '.join(LOSS_METHODS)}")
    return method


def _flow_budget(budget) -> Budget:
    b = as_budget(budget)
    if not isinstance(b, Budget):
        raise ValueError(f"budget={budget!r} is not allowed here: the effective-rate condition "
                         "is about flow control (one Budget: deterministic, poisson or "
                         "two-point), not per-class budgets or 'unthrottled'")
    return b


def removal_unit(workload: Workload) -> int:
    """h = l_min + 1: the fewest tokens one LIFO removal frees (a bounce frees l + 1, an
    eviction of a request with g tokens frees l + g + 1), over the classes that flow control
    activates (positive rate)."""
    if not isinstance(workload, Workload):
        raise ValueError(f"workload must be a Workload, got {workload!r}")
    mix = class_mix(workload)
    return int(min(c.prompt.min_value for w, c in zip(mix, workload.classes) if w > 0)) + 1


@dataclass(frozen=True)
class LossBound:
    """Upper bound r_bar on the rate of bounces plus evictions of Alg. 2 (per slot).

    Attributes
    ----------
    budget : str
        Description of the budget.
    mean_budget : float
        E[B], activations per slot.
    memory : int
        M, tokens.
    removal_unit : int
        h = l_min + 1, tokens freed at least by one removal.
    overflow : float
        Bound on the per-slot overflow probability used (exp(-I(M)) for
        ``"chernoff"``, the FFT P(U > M) for ``"exact"``).
    removals_per_overflow : float
        1 / (1 - exp(-theta* h)) (``"chernoff"``) or r_bar / overflow
        (``"exact"``): the bound on removals per overflowing slot behind r_bar.
    loss : float
        r_bar, removals (bounces + evictions) per slot; inf when E[U] >= M.
    effective_rate : float
        E[B] - r_bar, a lower bound on the saturated completion rate.
    method : str
        "chernoff" or "exact".
    levels : int
        Levels of the FFT tail used (exact), 0 otherwise.
    spacing : int
        s, tokens between those levels (exact), 0 otherwise.
    remainder : float
        Chernoff bound of the part of the sum beyond the last level (exact).
    """

    budget: str
    mean_budget: float
    memory: int
    removal_unit: int
    overflow: float
    removals_per_overflow: float
    loss: float
    effective_rate: float
    method: str
    levels: int = 0
    spacing: int = 0
    remainder: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def _chernoff_loss(model: DemandModel, level: float, h: float) -> tuple[float, float, float]:
    """(exp(-I), 1 / (1 - e^{-theta h}), their product): sum_{k>=0} exp(-I(level + k h))
    <= exp(-I(level)) sum_k exp(-theta* k h) since I is convex with I' = theta*."""
    r = chernoff_rate(model, level)
    if math.isinf(r.rate):
        return 0.0, 1.0, 0.0
    if r.theta <= 0:
        return 1.0, math.inf, math.inf
    per = math.exp(-r.rate)
    factor = 1.0 / -math.expm1(-r.theta * h)
    return per, factor, per * factor


def loss_rate_bound(workload: Workload, budget, memory: int, method: str = "chernoff",
                    model: DemandModel | None = None, max_levels: int = MAX_LEVELS) -> LossBound:
    """r_bar >= E[ceil((U - M)^+ / h)], the bound on bounces + evictions per slot.

    Parameters
    ----------
    workload : Workload
        Request classes (flow control: one FIFO queue, class mix lambda_k / lambda).
    budget : float, Budget, PerClassBudget or FlowControl
        A flow-control budget (number = deterministic b, Budget, FlowControl policy).
    memory : int
        M, tokens.
    method : str
        "chernoff" (closed form from the overflow bound) or "exact" (FFT tail).
    model : DemandModel or None
        A prebuilt unit-1 DemandModel of the same workload and budget.
    max_levels : int
        At most this many FFT tail levels (exact); more levels, a tighter bound.
    """
    memory = _check_memory(memory)
    if isinstance(max_levels, bool) or not isinstance(max_levels, int) or max_levels < 1:
        raise ValueError(f"max_levels must be an integer >= 1, got {max_levels!r}")
    method = _check_method(method)
    b = _flow_budget(budget)
    h = removal_unit(workload)
    model = model or DemandModel(workload, b)
    per, factor, loss = _chernoff_loss(model, memory, h)
    if method == "chernoff" or loss == 0.0:
        return LossBound(b.describe(), b.mean, memory, h, per, factor, loss, b.mean - loss,
                         method)
    # exact: the sum is finite even when E[U] >= M; the Chernoff bound of what lies beyond
    # the last level decides where to stop.
    tol = REMAINDER * max(1.0, b.mean)
    top = memory
    step = max(h, 1)
    while _chernoff_loss(model, top, h)[2] > tol and top < model.max_value:
        top += step
        step *= 2
    lo, hi = memory, top  # bisect the first level with a negligible remainder
    while hi - lo > h:
        mid = (lo + hi) // 2
        if _chernoff_loss(model, mid, h)[2] > tol:
            lo = mid
        else:
            hi = mid
    span = hi - memory
    per_level = max(1, math.ceil(span / (max_levels * h)))
    s = per_level * h
    count = max(1, math.ceil(span / s))
    levels = memory + s * np.arange(count)
    from stability.theory.exact_tail import exact_tail  # FFT machinery, loaded when needed

    tail = exact_tail(workload, b, levels)
    last = int(levels[-1]) + s
    rem_per, rem_factor, _ = _chernoff_loss(model, last, s)
    remainder = per_level * rem_per * rem_factor if rem_per > 0 else 0.0
    total = per_level * float(np.sum(tail.prob)) + remainder
    p_over = float(tail.prob[0])
    return LossBound(b.describe(), b.mean, memory, h, p_over,
                     total / p_over if p_over > 0 else 1.0, total, b.mean - total, method,
                     int(count), int(s), remainder)


@dataclass(frozen=True)
class CorrectedWindow:
    """The mean budgets for which the effective-rate condition holds, for one law.

    Attributes
    ----------
    law : str
        Budget law.
    arrival_rate : float
        lambda, total arrivals per slot.
    reconstructed : tuple
        (lambda, M / E[w]), the window of docs/model.md 3.2 (necessary for the mean
        demand, not sufficient).
    low, high : float
        The certified ends of the corrected window: every beta in [low, high] (every
        integer, for deterministic budgets) has beta - r_bar(beta) > lambda and
        lambda < beta < M / E[w]; found to ``resolution`` (the true ends lie within one
        resolution step outside).  nan when empty.
    nonempty : bool
        Some budget of this law satisfies the condition.
    best_budget : float
        beta maximising beta - r_bar(beta) over the window (an integer for
        deterministic budgets).
    best_effective_rate : float
        That maximum, the largest total arrival rate the condition
        certifies for this law (with this class mix).
    method : str
        How r_bar was evaluated.
    evaluations : int
        Number of r_bar evaluations.
    note : str
        What the window means.
    """

    law: str
    arrival_rate: float
    reconstructed: tuple
    low: float
    high: float
    nonempty: bool
    best_budget: float
    best_effective_rate: float
    method: str
    evaluations: int
    note: str = field(default=FRESH_LENGTH_NOTE)

    def contains(self, budget: float) -> bool:
        """Whether a mean budget lies in the certified corrected window [low, high]."""
        return bool(self.nonempty and self.low <= budget <= self.high)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["reconstructed"] = list(self.reconstructed)
        return d


def corrected_window(workload: Workload, memory: int, law: str = "deterministic",
                     method: str = "chernoff", resolution: float = 1e-3) -> CorrectedWindow:
    """The corrected budget window {beta : beta - r_bar(beta) > lambda, lambda < beta < M/E[w]}.

    The effective rate f(beta) = beta - r_bar(beta) rises with beta while overflow is rare
    and falls once r_bar grows faster than beta; the window is where it exceeds lambda.
    It is found on a grid and refined by bisection at its two ends (to ``resolution`` in
    E[B]; integers for deterministic budgets).  Where f is not unimodal on the grid the
    window reported is the largest interval of the grid where the condition holds, and the
    note says so.
    """
    memory = _check_memory(memory)
    method = _check_method(method)
    if law not in BUDGET_LAWS:
        raise ValueError(f"law={law!r} is not allowed; law must be one of {', '.join(BUDGET_LAWS)}")
    if not (isinstance(resolution, (int, float)) and resolution > 0):
        raise ValueError(f"resolution must be a number > 0, got {resolution!r}")
    lam = workload.total_rate
    high_rec = memory / mean_memory_time_mix(workload)
    count = [0]
    cache: dict = {}

    def eff(beta: float) -> float:
        key = round(beta, 12)
        if key not in cache:
            count[0] += 1
            cache[key] = (beta - loss_rate_bound(workload, Budget(beta, law), memory,
                                                 method).loss) if beta > 0 else 0.0
        return cache[key]

    if law == "deterministic":
        first, last = max(1, math.floor(lam) + 1), math.ceil(high_rec) - 1
        grid = list(range(first, last + 1))
        if len(grid) > 64:  # thin out; the ends are refined below
            grid = sorted({int(round(x)) for x in np.linspace(first, last, 48)})
    else:
        npts = 16 if method == "exact" else 40
        grid = list(np.linspace(max(lam, 0.0), high_rec, npts + 2)[1:-1])
    values = [eff(x) for x in grid]
    best_i = int(np.argmax(values)) if grid else 0
    best = (grid[best_i], values[best_i]) if grid else (math.nan, -math.inf)
    ok = [v > lam for v in values]
    note = FRESH_LENGTH_NOTE
    if not any(ok):
        return CorrectedWindow(law, lam, (lam, high_rec), math.nan, math.nan, False,
                               float(best[0]), float(best[1]), method, count[0], note)
    # the run of grid points around the best one where the condition holds
    i0 = i1 = best_i
    while i0 > 0 and ok[i0 - 1]:
        i0 -= 1
    while i1 < len(grid) - 1 and ok[i1 + 1]:
        i1 += 1
    if sum(ok) != i1 - i0 + 1:
        note += " The condition holds on more than one interval of the grid; the one around " \
                "the best budget is reported."
    if law == "deterministic":
        lo_ok, hi_ok = grid[i0], grid[i1]
        lo_bad = grid[i0 - 1] if i0 > 0 else first - 1
        hi_bad = grid[i1 + 1] if i1 < len(grid) - 1 else last + 1
        while lo_ok - lo_bad > 1:  # integers between thinned grid points
            mid = (lo_ok + lo_bad) // 2
            if eff(mid) > lam:
                lo_ok = mid
            else:
                lo_bad = mid
        while hi_bad - hi_ok > 1:
            mid = (hi_ok + hi_bad) // 2
            if mid <= last and eff(mid) > lam:
                hi_ok = mid
            else:
                hi_bad = mid
        low, high = lo_ok, hi_ok  # the admissible integers are lo_ok, ..., hi_ok
    else:
        lo_bad = grid[i0 - 1] if i0 > 0 else max(lam, 0.0)
        lo_ok = grid[i0]
        while lo_ok - lo_bad > resolution:
            mid = 0.5 * (lo_ok + lo_bad)
            if eff(mid) > lam:
                lo_ok = mid
            else:
                lo_bad = mid
        hi_ok = grid[i1]
        hi_bad = grid[i1 + 1] if i1 < len(grid) - 1 else high_rec
        while hi_bad - hi_ok > resolution:
            mid = 0.5 * (hi_ok + hi_bad)
            if eff(mid) > lam:
                hi_ok = mid
            else:
                hi_bad = mid
        # report the certified part: every beta in [low, high] satisfies the condition
        low, high = lo_ok, hi_ok
    return CorrectedWindow(law, lam, (lam, high_rec), float(low), float(high), True,
                           float(best[0]), float(best[1]), method, count[0], note)


@dataclass(frozen=True)
class EffectiveRate:
    """The effective-rate condition for one workload, budget and capacity.

    Attributes
    ----------
    arrival_rate : float
        lambda.
    mean_budget : float
        E[B].
    margin : float
        E[B] - lambda (what the reconstructed window asks to be positive).
    loss : LossBound
        The LossBound (r_bar).
    effective_rate : float
        E[B] - r_bar.
    holds : bool
        lambda < E[B] - r_bar (the corrected sufficient condition).
    in_reconstructed_window : bool
        lambda < E[B] < M / E[w].
    loss_eats_margin : bool
        Inside the reconstructed window but r_bar >= margin.
    """

    arrival_rate: float
    mean_budget: float
    margin: float
    loss: LossBound
    effective_rate: float
    holds: bool
    in_reconstructed_window: bool
    loss_eats_margin: bool

    def to_dict(self) -> dict:
        d = asdict(self)
        d["loss"] = self.loss.to_dict()
        return d


def effective_rate(workload: Workload, budget, memory: int, method: str = "chernoff",
                   model: DemandModel | None = None,
                   max_levels: int = MAX_LEVELS) -> EffectiveRate:
    """Check lambda < E[B] - r_bar for one budget (the corrected sufficient condition)."""
    memory = _check_memory(memory)
    b = _flow_budget(budget)
    bound = loss_rate_bound(workload, b, memory, method, model, max_levels)
    lam = workload.total_rate
    high_rec = memory / mean_memory_time_mix(workload)
    inside = lam < b.mean < high_rec
    holds = lam < bound.effective_rate
    return EffectiveRate(lam, b.mean, b.mean - lam, bound, bound.effective_rate, holds,
                         inside, inside and not holds)


@dataclass(frozen=True)
class CertifiedRate:
    """The largest total arrival rate the effective-rate condition certifies for one law.

    Attributes
    ----------
    law : str
        Budget law.
    rate : float
        Max over beta in (0, M / E[w]) of beta - r_bar(beta): for every lambda below it
        (same class mix) some budget of this law satisfies the condition.
    budget : float
        The maximising beta (an integer for deterministic budgets).
    critical_rate : float
        lambda* = M / E[w] (Prop. 3.2), for comparison.
    method : str
        How r_bar was evaluated.
    """

    law: str
    rate: float
    budget: float
    critical_rate: float
    method: str

    @property
    def fraction(self) -> float:
        """rate / lambda*."""
        return self.rate / self.critical_rate

    def to_dict(self) -> dict:
        return dict(asdict(self), fraction=self.fraction)


def certified_rate(workload: Workload, memory: int, law: str = "deterministic",
                   method: str = "chernoff", resolution: float = 1e-3,
                   grid: int = 40) -> CertifiedRate:
    """max_beta (beta - r_bar(beta)) over beta < M / E[w]: it depends on the class mix only.

    A grid of ``grid`` points over (0, M / E[w]) and a golden-section refinement around its
    best point to ``resolution`` in E[B] (deterministic budgets: every integer below
    M / E[w], at most 64 of them near the top).
    """
    memory = _check_memory(memory)
    method = _check_method(method)
    if isinstance(grid, bool) or not isinstance(grid, int) or grid < 3:
        raise ValueError(f"grid must be an integer >= 3, got {grid!r}")
    if law not in BUDGET_LAWS:
        raise ValueError(f"law={law!r} is not allowed; law must be one of {', '.join(BUDGET_LAWS)}")
    high = memory / mean_memory_time_mix(workload)

    def eff(beta):
        return beta - loss_rate_bound(workload, Budget(beta, law), memory, method).loss

    if law == "deterministic":
        top = math.ceil(high) - 1
        cands = range(max(1, top - 63), top + 1)
        if top < 1:
            return CertifiedRate(law, 0.0, 0.0, high, method)
        values = {b: eff(b) for b in cands}
        best = max(values, key=values.get)
        return CertifiedRate(law, float(values[best]), float(best), high, method)
    points = np.linspace(0.0, high, grid + 2)[1:-1]
    values = [eff(x) for x in points]
    i = int(np.argmax(values))
    a = points[i - 1] if i > 0 else 0.0
    b = points[i + 1] if i < len(points) - 1 else high
    g = (math.sqrt(5.0) - 1.0) / 2.0
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = eff(c), eff(d)
    while b - a > resolution:
        if fc >= fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = eff(c)
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = eff(d)
    best = max([(values[i], points[i]), (fc, c), (fd, d)])
    return CertifiedRate(law, float(best[0]), float(best[1]), high, method)
