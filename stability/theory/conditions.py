"""Stability conditions of docs/model.md 3.2: Prop. 3.2, inequality (2) / Thm 3.3, Lindley queues.

* Prop. 3.2 (necessary, any scheduler): sum_k lambda_k E[w_k] <= M.  Each completion
  consumes at least w memory-slots and at most M are available per slot.
* Inequality (2) and Thm 3.3 (Alg. 1): sum_k b_k w_k <= M makes the saturated peak demand
  exactly sum_k b_k w_k, so Alg. 1 never overflows; with b_k > lambda_k as well, each class
  queue is a Lindley walk Q' = max(Q + N - b_k, 0) and is positive recurrent.
* The Lindley walk's stationary mean, by Spitzer's identity (exact series).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import brentq, minimize_scalar
from scipy.stats import poisson

from stability import validation
from stability.theory.budget import Budget, PerClassBudget, as_budget, class_mix
from stability.theory.moments import mean_memory_time
from stability.workload import Deterministic, Workload

__all__ = [
    "NecessaryCondition", "necessary_condition", "critical_rate", "alg1_peak_demand",
    "Alg1Condition", "alg1_condition", "LindleyMean", "lindley_mean_queue", "queue_drift",
]


def _check_memory(memory) -> int:
    """M, the KV capacity in tokens: the one rule of :func:`stability.validation.memory`."""
    return validation.memory(memory)


@dataclass(frozen=True)
class NecessaryCondition:
    """Prop. 3.2: a stable system needs load = sum_k lambda_k E[w_k] <= M.

    Attributes
    ----------
    load : float
        sum_k lambda_k E[w_k], token-slots of KV demand arriving per slot.
    memory : int
        M, tokens.
    utilisation : float
        load / M.
    holds : bool
        load <= M (necessary; the boundary itself is not claimed stable).
    strict : bool
        load < M (the budget window is non-empty).
    """

    load: float
    memory: int
    utilisation: float
    holds: bool
    strict: bool

    def to_dict(self) -> dict:
        return asdict(self)


def necessary_condition(workload: Workload, memory: int) -> NecessaryCondition:
    """Check Prop. 3.2 (necessary for stability under any scheduler)."""
    memory = _check_memory(memory)
    load = float(sum(c.rate * mean_memory_time(c) for c in workload.classes))
    return NecessaryCondition(load, memory, load / memory, load <= memory, load < memory)


def critical_rate(workload: Workload, memory: int) -> float:
    """lambda* = M / E[w]: the largest total rate with the same class mix that Prop. 3.2
    allows (E[w] = sum_k (lambda_k / lambda) E[w_k]).  Class k's share is
    lambda* lambda_k / lambda; Section 4.1: 16492 / 4060 = 4.0621 per class."""
    memory = _check_memory(memory)
    mix = class_mix(workload)
    mean_w = float(np.dot(mix, [mean_memory_time(c) for c in workload.classes]))
    return memory / mean_w


def _per_class(workload: Workload, budgets) -> PerClassBudget:
    b = as_budget(budgets)
    if not isinstance(b, PerClassBudget):
        raise ValueError(f"budgets={budgets!r} is not allowed here; give one budget per class "
                         "(PerClassBudget or a ClassBudgets policy)")
    if len(b.budgets) != workload.num_classes:
        raise ValueError(f"budgets has {len(b.budgets)} entries but the workload has "
                         f"{workload.num_classes} classes; give one budget per class")
    return b


def alg1_peak_demand(workload: Workload, budgets) -> float:
    """Peak demand of saturated Alg. 1: sum_k b_k w(l_k, o_k) (Thm 3.3).

    In slot t the class-k requests activated at ages a = 0..min(t, o_k - 1) are active and
    hold l_k + a + 1 tokens each, so the demand grows until t = o_k - 1 and then stays at
    b_k sum_{a<o_k} (l_k + a + 1) = b_k w_k.  Exact for deterministic lengths; with random
    lengths this returns sum_k b_k w(max l_k, max o_k), an upper bound (inf if unbounded).
    """
    b = _per_class(workload, budgets)
    total = 0.0
    for bk, c in zip(b.budgets, workload.classes):
        lmax, omax = c.prompt.max_value, c.decode.max_value
        if math.isinf(lmax) or math.isinf(omax):
            return math.inf if bk > 0 else total
        total += bk * (lmax * omax + omax * (omax + 1) / 2.0)
    return total


@dataclass(frozen=True)
class Alg1Condition:
    """Inequality (2) and Thm 3.3 for per-class budgets b_k.

    Attributes
    ----------
    peak : float
        sum_k b_k w_k (exact for deterministic lengths, else the worst-case bound).
    memory : int
        M.
    inequality_2 : bool
        peak <= M (no overflow, ever).
    budgets_exceed_rates : bool
        b_k > lambda_k for every class.
    stable : bool
        Both (Thm 3.3: positive recurrent class queues).
    exact_lengths : bool
        Every class has deterministic prompt and decode lengths.
    """

    peak: float
    memory: int
    inequality_2: bool
    budgets_exceed_rates: bool
    stable: bool
    exact_lengths: bool

    def to_dict(self) -> dict:
        return asdict(self)


def alg1_condition(workload: Workload, budgets, memory: int) -> Alg1Condition:
    """Check inequality (2) and the hypotheses of Thm 3.3."""
    memory = _check_memory(memory)
    b = _per_class(workload, budgets)
    peak = alg1_peak_demand(workload, b)
    exceed = all(bk > c.rate for bk, c in zip(b.budgets, workload.classes))
    exact = all(isinstance(c.prompt, Deterministic) and isinstance(c.decode, Deterministic)
                for c in workload.classes)
    ok = peak <= memory
    return Alg1Condition(peak, memory, ok, exceed, ok and exceed, exact)


# ---------------------------------------------------------------------------------------
# Lindley walk Q' = max(Q + N - B, 0), N ~ Poisson(lambda), B the budget.


@dataclass(frozen=True)
class LindleyMean:
    """Stationary mean of the queue after admission, Q' = max(Q + N - B, 0).

    Attributes
    ----------
    arrival_rate : float
        lambda, Poisson arrivals per slot.
    budget : str
        Description of B.
    mean_queue : float
        E[Q], requests waiting after the admission step (inf if lambda >= E[B]).
    mean_delay : float
        E[Q] / lambda, mean slots from arrival to first activation (Little's law:
        a request that waits d slots is counted in d end-of-admission queues).
    terms : int
        Lattice size of the FFT (method "fft") or terms of the series ("series").
    truncation_bound : float
        Change at the last doubling ("fft") or Chernoff bound on the
        neglected terms ("series").
    """

    arrival_rate: float
    budget: str
    mean_queue: float
    mean_delay: float
    terms: int
    truncation_bound: float

    def to_dict(self) -> dict:
        return asdict(self)


def _log_increment_cf(lam: float, b: Budget, u: np.ndarray) -> np.ndarray:
    """log E[e^{u (N - B)}] for complex u (N ~ Poisson(lambda), B the budget)."""
    out = lam * np.expm1(u)
    if b.law == "deterministic":
        return out - u * b.mean
    if b.law == "poisson":
        return out + b.mean * np.expm1(-u)
    n, f = b.floor, b.frac
    return out - u * n + np.log(1.0 - f + f * np.exp(-u))


def lindley_mean_queue(arrival_rate: float, budget, tol: float = 1e-12,
                       method: str = "fft") -> LindleyMean:
    """E[Q] of the Lindley walk Q' = max(Q + N - B, 0), N ~ Poisson(lambda), B the budget.

    Spitzer's identity: E[Q] = sum_{n >= 1} E[S_n^+] / n = sum_{k > 0} k h(k), where S_n is
    the sum of n increments Y = N - B and h(k) = sum_n P(S_n = k) / n.

    ``method="fft"`` (default, any law): h tilted by e^{s k} has the Fourier transform
    -log(1 - psi(s + i t)), psi(u) = E[e^{u Y}]; with s = s*/2 (s* > 0 the root of
    psi(s*) = 1) the tilted h decays like e^{-s |k|} on both sides, so one FFT on a lattice of
    L points with L s / 2 >= 40 gives it up to e^-40 aliasing; L is doubled until E[Q]
    changes by less than ``tol`` relative.
    ``method="series"`` (deterministic budgets): the series itself, with
    E[(A - c)^+] = n lambda P(A >= c) - c P(A > c) for A ~ Poisson(n lambda), c = n b, summed
    until the Chernoff bound psi^{n+1} / (e theta (n+1)(1 - psi)) on the rest is below ``tol``.

    This is the queue of flow control with budget B (one FIFO queue, no evictions) and, per
    class, of Alg. 1 (Thm 3.3: N ~ Poisson(lambda_k), B = b_k).  Q is counted after the
    admission step, so E[Q] / lambda is the mean queueing delay (Little's law).
    """
    if isinstance(arrival_rate, bool) or not isinstance(arrival_rate, (int, float, np.floating)) \
            or not math.isfinite(arrival_rate) or arrival_rate < 0:
        raise ValueError(f"arrival_rate must be a finite number >= 0, got {arrival_rate!r}")
    if method not in ("fft", "series"):
        raise ValueError(f"method={method!r} is not allowed; use 'fft' or 'series'")
    b = as_budget(budget)
    if not isinstance(b, Budget):
        raise ValueError(f"budget={budget!r} is not allowed; give a single budget (number, "
                         "Budget or FlowControl)")
    lam = float(arrival_rate)
    if lam == 0.0:
        return LindleyMean(lam, b.describe(), 0.0, 0.0, 0, 0.0)
    if lam >= b.mean:
        return LindleyMean(lam, b.describe(), math.inf, math.inf, 0, math.inf)

    def log_psi(t):
        return float(np.real(_log_increment_cf(lam, b, np.array(t, dtype=complex))))

    upper = math.log(b.mean / lam) + 1.0
    while log_psi(upper) < 0:
        upper *= 2.0
    res = minimize_scalar(log_psi, bounds=(0.0, upper), method="bounded",
                          options={"xatol": 1e-12})
    theta, lpsi = float(res.x), float(res.fun)
    if method == "series":
        if b.law != "deterministic":
            raise ValueError("method='series' needs a deterministic budget; use method='fft'")
        return _spitzer_series(lam, b, theta, lpsi, tol)
    s_star = brentq(log_psi, theta, upper)
    s = 0.5 * s_star
    size = 1 << max(6, int(math.ceil(math.log2(160.0 / s_star))))
    previous = None
    while True:
        t = 2.0 * np.pi * np.arange(size) / size
        # H(t) = sum_k h_s(k) e^{i t k}, so h_s(k) = (1/L) sum_j H(t_j) e^{-i t_j k}: a forward FFT.
        h = np.fft.fft(-np.log(-np.expm1(_log_increment_cf(lam, b, s + 1j * t)))).real / size
        k = np.arange(1, size // 2)
        mean = float(np.sum(k * np.exp(-s * k) * h[1:size // 2]))
        if previous is not None and abs(mean - previous) <= tol * max(abs(mean), 1e-300):
            break
        previous = mean
        size *= 2
        if size > 2**24:
            raise ValueError(f"the Lindley mean did not converge for arrival_rate={lam} and "
                             f"{b.describe()}; the queue is too close to critical")
    return LindleyMean(lam, b.describe(), mean, mean / lam, size, abs(mean - previous))


def _spitzer_series(lam: float, b: Budget, theta: float, lpsi: float, tol: float) -> LindleyMean:
    def remainder(n):
        return math.exp((n + 1) * lpsi) / (math.e * theta * (n + 1) * -math.expm1(lpsi))

    total, n_done, chunk = 0.0, 0, 256
    while True:
        ns = np.arange(n_done + 1, n_done + chunk + 1)
        c = ns * int(b.mean)
        mu = ns * lam
        total += float(np.sum((mu * poisson.sf(c - 1, mu) - c * poisson.sf(c, mu)) / ns))
        n_done += chunk
        bound = remainder(n_done)
        if bound <= tol * max(total, 1e-300) or bound < 1e-300:
            break
        if n_done > 50_000_000:
            raise ValueError("Spitzer's series did not converge; the queue is too close to critical")
        chunk = min(2 * chunk, 65536)
    return LindleyMean(lam, b.describe(), total, total / lam, n_done, bound)


def queue_drift(workload: Workload, budget) -> float:
    """Growth of the total queue per slot when it never empties: lambda - E[B] (flow
    control) or sum_k max(lambda_k - b_k, 0) for per-class budgets.  Section 4.1 at
    lambda = 5 per class and b = (4, 4, 4): 3 requests per slot."""
    b = as_budget(budget)
    if isinstance(b, PerClassBudget):
        return float(sum(max(c.rate - bk, 0.0) for c, bk in zip(workload.classes, b.budgets)))
    if isinstance(b, Budget):
        return max(workload.total_rate - b.mean, 0.0)
    return 0.0
