"""What theory survives for adaptive and prediction-aware flow control (issue 12).

docs/adaptive.md section 3 states the results; this module computes them.

**Adaptive flow control in budgeted mode.**  With budget b (a credit refilled by b per slot,
capped at b, debt allowed), at most ceil(b) waiting requests are *candidates* in a slot,
each admitted only if it fits (Greedy's memory test, stopping at the first that does not).
Let U be the saturated eviction-free demand of docs/model.md 3.2 with the deterministic budget
B = ceil(b) and h = l_min + 1.  Then, while the policy stays in budgeted mode with that
budget (for longer than the largest decode length):

1. *Overflow.*  The real active set is a subset of the relaxed one (the coupling of
   docs/theory_region.md step 2: the j-th admission of a slot gets the lengths of the j-th
   relaxed activation), so R_t <= U_t and P(overflow in a slot) <= P(U > M) <= e^{-I(M)},
   the Alg. 2 bound at budget ceil(b).  It says something only when ceil(b) E[w] < M.
2. *Refusals and removals.*  A slot refuses (memory test) and removes (LIFO eviction) at
   most ceil((U - M)^+ / h) requests in all: if the running requests alone exceed M every
   candidate is refused and the evictions clear the excess; otherwise the refused
   candidates after the first one that did not fit each need at least h tokens beyond M.
   (proofs_check ``adaptive_refusal_count``, exhaustively on small cases.)
3. *Drain.*  A refused candidate leaves its credit unused and the cap discards at most that
   much, so over T backlogged slots the admissions are at least b T - 1 - (refusals).
   Hence the effective-rate condition of issue 16 carries over with the budget's mean b
   and the loss bound at ceil(b):

       lambda < b - r_bar(ceil(b))   =>   the queue is rate stable (Q_T / T -> 0),

   under the same fresh-length premise (F) as Alg. 2 (docs/theory_region.md).

The controller keeps b >= rate_floor x lambda_hat, but it chooses b from the measured
waste, not from this condition: the guarantee is conditional on the budget the controller
holds, and :func:`certified_budgets` lists the budgets that satisfy it.

**Prediction-aware flow control.**  The credit admits W units of *predicted* memory-time
per slot, FCFS; in saturation the admitted requests are the arrivals in order, so by
renewal-reward the admitted true memory-time per slot, hence E[U], is W E[w] / E[w_hat]
(with exact predictions exactly W).  The analogue of Prop. 3.2 / the budget window is

    lambda E[w_hat] < W < M E[w_hat] / E[w]          (exact predictions: lambda E[w] < W < M)

(the drain condition in predicted units; the relaxed mean demand below M).  The window in
load units, (rho, 1) with rho = lambda E[w] / M, no longer depends on the length law.  The
overflow bound replaces the number of admissions per slot by a Poisson law of the same
mean beta = W / E[w_hat] (an *approximation*: the admitted count of a memory-time credit is
less variable than Poisson when predicted sizes vary little and can be more variable
when they are heavy-tailed); prediction noise enters through beta, i.e. through
E[w_hat] / E[w].
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from stability.predictions import Predictions
from stability.theory.budget import Budget
from stability.theory.demand import DemandModel
from stability.theory.effective import loss_rate_bound
from stability.theory.moments import mean_memory_time_mix
from stability.theory.overflow import chernoff_rate
from stability.workload import Workload

__all__ = ["BudgetedGuarantee", "budgeted_guarantee", "certified_budgets",
           "refusals_and_removals", "MemoryTimeWindow", "memory_time_window",
           "predicted_overflow_bound", "PredictedOverflow", "ADAPTIVE_NOTE"]

ADAPTIVE_NOTE = (
    "budgeted mode of adaptive flow control at budget b: Alg. 2 overflow bound and "
    "effective-rate condition at the deterministic budget ceil(b) (candidates per slot); "
    "rigorous under the fresh-length premise (F) of docs/theory_region.md, a heuristic "
    "otherwise; says nothing about greedy mode.")


def _check_memory(memory) -> int:
    if isinstance(memory, bool) or not isinstance(memory, (int, np.integer)) or memory < 1:
        raise ValueError(f"memory must be an integer >= 1 (KV capacity M, tokens), got {memory!r}")
    return int(memory)


def _check_budget(budget) -> float:
    if isinstance(budget, bool) or not isinstance(budget, (int, float, np.integer, np.floating)) \
            or not math.isfinite(budget) or budget <= 0:
        raise ValueError(f"budget must be a finite number > 0 (b, requests per slot), got "
                         f"{budget!r}")
    return float(budget)


def refusals_and_removals(running: int, needs, memory: int, h: int) -> tuple[int, int]:
    """One slot of budgeted admission, by the rule: candidates with the given needs are
    admitted while running + admitted + need <= M (stopping at the first that does not
    fit); then LIFO removes admitted requests, each freeing at least h, while the demand
    exceeds M (only the running ones can then be over).  Returns (refused, removed), the
    removals counted as the fewest h-token removals that clear the excess.  Used by
    proofs_check to verify item 2 of the module docstring."""
    demand = int(running)
    refused = 0
    admitted = True
    for n in needs:
        if admitted and demand + n <= memory:
            demand += n
        else:
            admitted = False
            refused += 1
    removed = math.ceil(max(demand - memory, 0) / h)
    return refused, removed


@dataclass(frozen=True)
class BudgetedGuarantee:
    """The guarantee of adaptive flow control in budgeted mode at budget b.

    Attributes
    ----------
    budget : b, mean admissions per slot allowed by the credit.
    candidates : ceil(b), the most candidates in a slot (the deterministic budget of U).
    memory : M.
    mean_demand : E[U] = ceil(b) E[w], tokens.
    overflow : e^{-I(M)} at budget ceil(b), a bound on P(overflow in a slot) (1 when
        E[U] >= M: nothing is bounded).
    overflow_estimate : the same with the two-point law of mean b (not a bound: the credit's
        candidate counts have mean b but are not independent from slot to slot).
    loss : r_bar(ceil(b)), bound on refusals + removals per slot (Chernoff form).
    effective_rate : b - loss.
    arrival_rate : lambda (total), or nan.
    certified : lambda < b - loss.
    critical_rate : lambda* = M / E[w].
    note : what kind of statement this is.
    """

    budget: float
    candidates: int
    memory: int
    mean_demand: float
    overflow: float
    overflow_estimate: float
    loss: float
    effective_rate: float
    arrival_rate: float
    certified: bool
    critical_rate: float
    note: str = ADAPTIVE_NOTE

    def to_dict(self) -> dict:
        return asdict(self)


def budgeted_guarantee(workload: Workload, memory: int, budget: float,
                       arrival_rate: float | None = None) -> BudgetedGuarantee:
    """Overflow bound and effective-rate condition of budgeted mode at budget b.

    ``workload`` gives the class mix (its rate is the arrival rate unless ``arrival_rate``
    is given).
    """
    memory = _check_memory(memory)
    b = _check_budget(budget)
    lam = workload.total_rate if arrival_rate is None else float(arrival_rate)
    k = int(math.ceil(b - 1e-12))
    ew = mean_memory_time_mix(workload)
    model = DemandModel(workload, Budget(k, "deterministic"))
    r = chernoff_rate(model, memory)
    overflow = math.exp(-r.rate)
    estimate = math.exp(-chernoff_rate(DemandModel(workload, Budget(b, "two-point")),
                                       memory).rate)
    loss = loss_rate_bound(workload, k, memory, "chernoff", model=model).loss
    return BudgetedGuarantee(b, k, memory, k * ew, overflow, estimate, loss, b - loss, lam,
                             bool(lam < b - loss), memory / ew)


def certified_budgets(workload: Workload, memory: int, arrival_rate: float | None = None,
                      top: float | None = None) -> list[tuple[float, float]]:
    """The budgets b that satisfy lambda < b - r_bar(ceil(b)), as intervals (lo, hi].

    For ceil(b) = k the condition reads b > lambda + r_bar(k), so the set is the union over
    k of (max(k - 1, lambda + r_bar(k)), k]; k runs from ceil(lambda) to ``top`` (default
    the largest k below M / E[w] + 2).  Adjacent intervals are merged.
    """
    memory = _check_memory(memory)
    lam = workload.total_rate if arrival_rate is None else float(arrival_rate)
    ew = mean_memory_time_mix(workload)
    last = int(math.ceil(top if top is not None else memory / ew + 2))
    out: list[tuple[float, float]] = []
    for k in range(max(1, int(math.floor(lam)) + 1), last + 1):
        loss = loss_rate_bound(workload, k, memory, "chernoff").loss
        lo = max(k - 1.0, lam + loss)
        if lo < k:
            if out and math.isclose(out[-1][1], lo):
                out[-1] = (out[-1][0], float(k))
            else:
                out.append((float(lo), float(k)))
    return out


# ------------------------------------------------------------------ prediction-aware
def _sample_lengths(workload: Workload, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n (prompt, decode) pairs from the class mix, for moments of w_hat."""
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    rates = workload.rates
    cls = rng.choice(len(rates), size=n, p=rates / rates.sum())
    prompt = np.empty(n, np.int64)
    decode = np.empty(n, np.int64)
    for k, c in enumerate(workload.classes):
        mask = cls == k
        m = int(mask.sum())
        for law, out in ((c.prompt, prompt), (c.decode, decode)):
            values, probs = law.pmf()
            out[mask] = rng.choice(values, size=m, p=probs / probs.sum())
    return prompt, decode


@dataclass(frozen=True)
class MemoryTimeWindow:
    """The budget window of prediction-aware flow control, in memory-time per slot.

    Attributes
    ----------
    predictions : the prediction model (text).
    arrival_rate : lambda, requests per slot.
    memory : M.
    mean_memory_time : E[w] (exact).
    mean_predicted : E[w_hat] (exact for exact predictions, else Monte Carlo).
    predicted_error : standard error of that Monte Carlo mean (0 when exact).
    inflation : E[w_hat] / E[w]: > 1 when predictions over-state memory-time on average.
    low : lambda E[w_hat], the W below which the queue cannot drain.
    high : M E[w_hat] / E[w], the W above which the relaxed mean demand exceeds M.
    load_low, load_high : the window in load units, low / (M inflation), high /
        (M inflation) (= rho and 1).
    """

    predictions: str
    arrival_rate: float
    memory: int
    mean_memory_time: float
    mean_predicted: float
    predicted_error: float
    inflation: float
    low: float
    high: float

    @property
    def nonempty(self) -> bool:
        return self.low < self.high

    def mean_demand(self, budget: float) -> float:
        """E[U] = W E[w] / E[w_hat] at memory-time budget W (saturated)."""
        return float(budget) / self.inflation

    def to_dict(self) -> dict:
        return dict(asdict(self), nonempty=self.nonempty)


def memory_time_window(workload: Workload, memory: int, predictions: Predictions | None = None,
                       samples: int = 400_000, seed: int = 0) -> MemoryTimeWindow:
    """The window lambda E[w_hat] < W < M E[w_hat] / E[w] of prediction-aware flow control.

    Predictions are capped at M - l as ``simulate`` caps them.  E[w_hat] is exact for exact
    predictions and a Monte Carlo mean over ``samples`` draws otherwise.
    """
    memory = _check_memory(memory)
    predictions = predictions or Predictions()
    ew = mean_memory_time_mix(workload)
    if predictions.kind == "exact":
        ewh, err = ew, 0.0
    else:
        prompt, decode = _sample_lengths(workload, samples, seed)
        point = predictions.draw(decode, seed).capped(memory - prompt).point
        w_hat = prompt * point + point * (point + 1) / 2.0
        ewh = float(w_hat.mean())
        err = float(w_hat.std(ddof=1) / math.sqrt(samples))
    lam = workload.total_rate
    return MemoryTimeWindow(predictions.text(), lam, memory, ew, ewh, err, ewh / ew, lam * ewh,
                            memory * ewh / ew)


@dataclass(frozen=True)
class PredictedOverflow:
    """Overflow estimate of prediction-aware flow control at memory-time budget W.

    Attributes
    ----------
    budget : W.
    admissions : beta = W / E[w_hat], mean admissions per slot in saturation.
    mean_demand : E[U] = beta E[w], tokens.
    per_slot : e^{-I(M)} with Poisson(beta) admissions per slot (approximation).
    rate : I(M).
    note : what kind of statement this is.
    """

    budget: float
    admissions: float
    mean_demand: float
    per_slot: float
    rate: float
    note: str

    def to_dict(self) -> dict:
        return asdict(self)


def predicted_overflow_bound(workload: Workload, memory: int, budget: float,
                             window: MemoryTimeWindow | None = None,
                             predictions: Predictions | None = None) -> PredictedOverflow:
    """The Alg. 2 bound for prediction-aware flow control with admissions Poisson(beta),
    beta = W / E[w_hat] (approximation; see the module docstring)."""
    memory = _check_memory(memory)
    w = _check_budget(budget)
    window = window or memory_time_window(workload, memory, predictions)
    beta = w / window.mean_predicted
    model = DemandModel(workload, Budget(beta, "poisson"))
    r = chernoff_rate(model, memory)
    return PredictedOverflow(w, beta, beta * window.mean_memory_time, math.exp(-r.rate), r.rate,
                             "approximation: Poisson(W / E[w_hat]) admissions per slot in the "
                             "Alg. 2 bound (docs/model.md 3.2 reconstruction)")
