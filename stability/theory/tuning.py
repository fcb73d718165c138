"""Choosing the flow-control budget (docs/model.md 3.2 "budget window"; the tuner is beyond the paper, 3.4).

* Budget window: the queue drains only if lambda < E[B]; the overflow bound says
  something (I(M) > 0) only where the mean saturated demand E[B] E[w] is below M.  So
  (lambda, M / E[w]) is where a budget both drains the queue and has a useful overflow
  guarantee; the window is non-empty iff Prop. 3.2 holds strictly.  Budgets above
  M / E[w] are not unstable as such: as b -> infinity flow control *is* Greedy with LIFO
  eviction (docs/model.md 4.1), which may or may not be stable, but the bound is silent there.
  This is why the paper calls its method budget-sensitive.
* Tuner: the largest budget whose predicted per-slot overflow probability stays below a
  target.  The prediction is monotone in the budget (U is stochastically increasing in
  E[B] for each law, and so is Lambda(theta) for theta >= 0), so a bisection finds it.
* Corrected window (issue 16): the budget window is not sufficient, because bounced and
  evicted requests re-enter the queue; the queue drains at the effective rate E[B] - r_loss.
  :func:`stability.theory.effective.corrected_window` gives the budgets with
  E[B] - r_bar(E[B]) > lambda (r_bar a bound on the loss rate), and the tuner never returns
  a budget above its upper end (nor calls a budget below its lower end stable).
* Latency: with overflow rare, a request's latency is its queueing delay plus o; the
  delay's mean is the Lindley mean (Spitzer) divided by lambda.  It decreases with the
  budget, so for one law the best budget is the largest feasible one; across laws the
  budget's variance matters (Poisson budgets queue more than deterministic ones).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from stability import validation
from stability.theory.budget import Budget, class_mix
from stability.theory.conditions import lindley_mean_queue
from stability.theory.demand import DemandModel
from stability.theory.effective import CorrectedWindow, corrected_window, loss_rate_bound
from stability.theory.exact_tail import per_slot_overflow
from stability.theory.moments import mean_memory_time_mix
from stability.theory.overflow import chernoff_rate
from stability.theory.symbolic import BUDGET_LAWS
from stability.workload import Workload

__all__ = ["BudgetWindow", "budget_window", "predicted_overflow", "TunedBudget",
           "tune_budget", "TuningResult", "best_budget", "METHODS"]

METHODS = ("chernoff", "exact")
"""How overflow is predicted: the Chernoff bound exp(-I(M)) (reconstruction, fast) or the
exact FFT tail P(U > M) of the eviction-free relaxation (beyond the paper)."""


@dataclass(frozen=True)
class BudgetWindow:
    """(lambda, M / E[w]): mean budgets that drain the queue and where the overflow bound
    has something to say (mean saturated demand E[B] E[w] below M).

    Attributes
    ----------
    low : float
        lambda, total arrivals per slot.
    high : float
        M / E[w], E[w] the class-mix mean memory-time.
    nonempty : bool
        low < high, i.e. Prop. 3.2 holds strictly.
    corrected : CorrectedWindow or None
        The corrected window of one budget law (issue 16), when asked for: the
        budgets in (low, high) whose effective rate E[B] - r_bar exceeds lambda.  The window
        (low, high) itself is necessary for the mean demand but not sufficient.
    """

    low: float
    high: float
    nonempty: bool
    corrected: CorrectedWindow | None = None

    def to_dict(self) -> dict:
        d = {"low": self.low, "high": self.high, "nonempty": self.nonempty}
        if self.corrected is not None:
            d["corrected"] = self.corrected.to_dict()
        return d


def _check_memory(memory) -> int:
    """M, the KV capacity in tokens: the one rule of :func:`stability.validation.memory`."""
    return validation.memory(memory)


def _check_target(target) -> float:
    if isinstance(target, bool) or not isinstance(target, (int, float)) \
            or not (0.0 < float(target) < 1.0):
        raise ValueError(f"target_overflow must be a probability in (0, 1), got {target!r}")
    return float(target)


def _check_method(method) -> str:
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not allowed; method must be one of "
                         f"{', '.join(METHODS)}")
    return method


def budget_window(workload: Workload, memory: int, law: str | None = None,
                  method: str = "chernoff") -> BudgetWindow:
    """The budget window (lambda, M / E[w]) of docs/model.md 3.2; with ``law``, also the corrected
    window of that budget law (r_bar by ``method``, "chernoff" or "exact")."""
    memory = _check_memory(memory)
    lam = workload.total_rate
    high = memory / mean_memory_time_mix(workload)
    corrected = None if law is None else corrected_window(workload, memory, law, method)
    return BudgetWindow(lam, high, lam < high, corrected)


def predicted_overflow(workload: Workload, budget, memory: int, method: str = "chernoff") -> float:
    """Per-slot overflow probability predicted for ``budget``: exp(-I(M)) or P(U > M)."""
    memory = _check_memory(memory)
    method = _check_method(method)
    if method == "chernoff":
        return math.exp(-chernoff_rate(DemandModel(workload, budget), memory).rate)
    return float(per_slot_overflow(workload, budget, memory).prob[0])


@dataclass(frozen=True)
class TunedBudget:
    """The largest budget of one law meeting an overflow target, and its predictions.

    Attributes
    ----------
    law : str
        Budget law.
    budget : float
        Largest E[B] with predicted overflow <= target (an integer for deterministic;
        to ``resolution`` for the others); 0 if none is positive.
    target_overflow : float
        The per-slot target.
    method : str
        "chernoff" or "exact".
    overflow : float
        Predicted per-slot overflow probability at ``budget`` (by ``method``).
    slack : float
        M - E[B] E[w], tokens.
    stable : bool
        The budget lies in the corrected window: lambda < E[B] - r_bar (the queue
        drains at the effective rate; issue 16), not merely E[B] > lambda.
    mean_delay : float
        Lindley mean queueing delay, slots (inf when not stable).
    mean_latency : float
        mean_delay + E[o], slots (no evictions assumed).
    loss : float
        r_bar at the budget (Chernoff), bounces + evictions per slot.
    effective_rate : float
        E[B] - r_bar.
    corrected_low, corrected_high : float
        The corrected window's certified budgets (nan if empty).
    capped : bool
        The overflow target allowed a larger budget, which was lowered to the corrected
        window's upper end.
    """

    law: str
    budget: float
    target_overflow: float
    method: str
    overflow: float
    slack: float
    stable: bool
    mean_delay: float
    mean_latency: float
    loss: float = math.nan
    effective_rate: float = math.nan
    corrected_low: float = math.nan
    corrected_high: float = math.nan
    capped: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def _mean_decode(workload: Workload) -> float:
    return float(np.dot(class_mix(workload), [c.decode.mean() for c in workload.classes]))


def tune_budget(workload: Workload, memory: int, target_overflow: float,
                law: str = "deterministic", method: str = "chernoff",
                resolution: float = 1e-3) -> TunedBudget:
    """Largest budget of ``law`` whose predicted per-slot overflow is <= ``target_overflow``.

    Parameters
    ----------
    workload : Workload
        Request classes (flow control: one queue, class mix lambda_k / lambda).
    memory : int
        M, tokens.
    target_overflow : float
        Per-slot overflow probability allowed, in (0, 1).
    law : str
        "deterministic", "poisson" or "two-point".
    method : str
        "chernoff" (bound, reconstruction) or "exact" (FFT tail, beyond the paper).
    resolution : float
        Absolute resolution of E[B] for the Poisson and two-point laws.
    """
    memory = _check_memory(memory)
    target = _check_target(target_overflow)
    method = _check_method(method)
    if law not in BUDGET_LAWS:
        raise ValueError(f"law={law!r} is not allowed; law must be one of {', '.join(BUDGET_LAWS)}")
    if not (isinstance(resolution, (int, float)) and resolution > 0):
        raise ValueError(f"resolution must be a number > 0, got {resolution!r}")
    mean_w = mean_memory_time_mix(workload)

    def over(beta):
        return predicted_overflow(workload, Budget(beta, law), memory, method) if beta > 0 else 0.0

    # Bracket: above M / E[w] the mean demand exceeds M; double until infeasible.
    hi = max(1.0, math.ceil(memory / mean_w))
    while over(hi) <= target:
        hi *= 2.0
        if hi > 1e9:
            raise ValueError("no overflow even at a budget of 1e9 per slot; check the workload")
    lo = 0.0
    if law == "deterministic":
        lo_i, hi_i = 0, int(hi)
        while hi_i - lo_i > 1:
            mid = (lo_i + hi_i) // 2
            if over(mid) <= target:
                lo_i = mid
            else:
                hi_i = mid
        lo = float(lo_i)
    else:
        while hi - lo > resolution:
            mid = 0.5 * (lo + hi)
            if over(mid) <= target:
                lo = mid
            else:
                hi = mid
    lam = workload.total_rate
    # Never above the corrected window (r_bar by the Chernoff bound, which is >= the exact
    # one, so this window lies inside the exact-tail window too).
    window = corrected_window(workload, memory, law, "chernoff", resolution)
    capped = window.nonempty and lo > window.high
    if capped:
        lo = window.high
    stable = window.contains(lo)
    if stable:
        delay = lindley_mean_queue(lam, Budget(lo, law)).mean_delay
    else:
        delay = math.inf
    loss = loss_rate_bound(workload, Budget(lo, law), memory, "chernoff").loss if lo > 0 \
        else 0.0
    return TunedBudget(law, lo, target, method, over(lo), memory - lo * mean_w, stable, delay,
                       delay + _mean_decode(workload), loss, lo - loss, window.low, window.high,
                       bool(capped))


@dataclass(frozen=True)
class TuningResult:
    """Candidates (one per law) and the one with the smallest predicted mean latency.

    ``best`` is None when no law has a budget that meets the overflow target and drains
    the queue (budget > lambda).
    """

    candidates: tuple
    best: TunedBudget | None
    note: str = field(default="")

    def to_dict(self) -> dict:
        return {"candidates": [c.to_dict() for c in self.candidates],
                "best": None if self.best is None else self.best.to_dict(), "note": self.note}


def best_budget(workload: Workload, memory: int, target_overflow: float,
                laws=BUDGET_LAWS, method: str = "chernoff") -> TuningResult:
    """The budget minimising predicted mean latency subject to the overflow target.

    For each law the largest feasible budget is best (delay decreases with the budget);
    among laws, the smallest Lindley delay wins.
    """
    cands = tuple(tune_budget(workload, memory, target_overflow, law, method) for law in laws)
    stable = [c for c in cands if c.stable]
    best = min(stable, key=lambda c: c.mean_latency) if stable else None
    note = "" if best else ("no budget meets the overflow target inside the corrected "
                            "window (E[B] - r_bar > lambda): lower the load or relax the target")
    return TuningResult(cands, best, note)
