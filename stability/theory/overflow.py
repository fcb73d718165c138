"""Chernoff bound on the overflow probability of Alg. 2 (docs/model.md 3.2, *reconstruction*).

The paper's headline claim is that overflow events become rare exponentially fast in the
slack Delta = M - E[B] E[w].  Its proof is not available; this module encodes our
reconstruction of it:

    P(U > M) <= exp(-I(M)),    I(M) = sup_{theta >= 0} [theta M - Lambda(theta)],

with U the saturated, eviction-free demand and Lambda its log-MGF
(:class:`stability.theory.demand.DemandModel`).  What follows for a horizon of T slots is
a union bound: P(any overflow in T slots) <= T exp(-I(M)).  With deterministic budgets b
no smaller than the actual activations, the saturated process dominates the real one until
the first overflow, which makes that bound rigorous there.  It is *not* a bound on the
expected number of overflow events of the real system: after the first overflow the
domination is lost (LIFO eviction and restarts change the demand), so only the first
overflow is controlled.  (For the eviction-free relaxation itself, T exp(-I(M)) does bound
the expected number of slots with U > M, by linearity.)  With the arrival rate lambda in place of E[B]
(``budget="unthrottled"``) the same formula is the compound-Poisson (M/G/infinity)
prediction for an unsaturated system.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import sympy as sp
from scipy.optimize import brentq

from stability import validation
from stability.theory import symbolic as sym
from stability.theory.budget import UNTHROTTLED, Budget, as_budget
from stability.theory.demand import DemandModel
from stability.workload import RequestClass, Workload

__all__ = ["kappa", "kappa_geometric", "chernoff_rate", "chernoff_lower_rate", "RateResult", "OverflowBound", "overflow_bound",
           "compound_poisson_prediction", "RECONSTRUCTION_NOTE"]

RECONSTRUCTION_NOTE = (
    "Alg. 2 overflow bound: reconstruction (docs/model.md 3.2), not the paper's text. "
    "Rigorous for deterministic budgets b >= actual activations until the first overflow; "
    "otherwise a prediction from the saturated, eviction-free relaxation."
)


kappa_geometric = sp.lambdify((sym.theta, sym.l, sym.p), sym.kappa_geometric, "math")
"""kappa(theta) = e^{theta(l+1)} / (1 - (1-p) e^theta) - 1/p (lambdified from :mod:`symbolic`);
valid for theta < -ln(1-p)."""


def kappa(request_class: RequestClass, theta: float) -> float:
    """kappa(theta) = E[sum_{j=1..o} (e^{theta(l+j)} - 1)] for any class (docs/model.md 3.2).

    Poisson(beta) budgets have Lambda = beta kappa; computed as Lambda / beta of a Poisson(1)
    stream of this class (exact finite sum over ages, closed-form geometric tail).
    """
    return DemandModel(Workload((request_class,)), Budget(1.0, "poisson")).log_mgf(theta)


@dataclass(frozen=True)
class RateResult:
    """The Chernoff rate at one level.

    Attributes
    ----------
    level : float
        x, the demand level (lattice units of the model; tokens for unit 1).
    rate : float
        I(x) = sup_{theta >= 0} [theta x - Lambda(theta)] (0 when x <= E[U]; inf when
        x >= max U, where P(U > x) = 0).
    theta : float
        The maximiser theta*(x) (per lattice unit); I'(x) = theta*(x).
    """

    level: float
    rate: float
    theta: float


def chernoff_rate(model: DemandModel, level: float, xtol: float = 1e-13) -> RateResult:
    """I(level) for a :class:`DemandModel`, solving Lambda'(theta) = level.

    Lambda is convex (a cumulant generating function), so theta x - Lambda(theta) is concave
    and its maximiser is the root of Lambda'(theta) = x on [0, theta_max).
    """
    x = float(level)
    if not math.isfinite(x):
        raise ValueError(f"level must be finite, got {level!r}")
    mean = model.dlog_mgf(0.0)
    if x <= mean:
        return RateResult(x, 0.0, 0.0)
    if x >= model.max_value:
        return RateResult(x, math.inf, math.inf)
    tmax = model.theta_max
    lo, hi = 0.0, min(1.0 / x, tmax / 2.0)
    while model.dlog_mgf(hi) < x:
        lo = hi
        hi = 2.0 * hi if math.isinf(tmax) else 0.5 * (hi + tmax)
        if hi == lo:  # reached theta_max in floating point: the rate is ~ theta_max x
            break
    if hi == lo:
        theta = lo
    else:
        theta = brentq(lambda t: model.dlog_mgf(t) - x, lo, hi, xtol=xtol * max(hi, 1e-300),
                       rtol=1e-15, maxiter=500)
    return RateResult(x, max(theta * x - model.log_mgf(theta), 0.0), theta)


def chernoff_lower_rate(model: DemandModel, level: float) -> float:
    """I_-(x) = sup_{theta <= 0} [theta x - Lambda(theta)], so P(U <= x) <= exp(-I_-(x)).

    0 when x >= E[U]; inf when x is below the smallest value of U.
    """
    x = float(level)
    mean = model.dlog_mgf(0.0)
    if x >= mean:
        return 0.0
    lo, hi = -1.0 / max(mean, 1.0), 0.0
    while model.dlog_mgf(lo) > x:
        hi = lo
        lo *= 2.0
        if lo < -1e6:  # Lambda' tends to min U > x: P(U <= x) = 0
            return math.inf
    theta = brentq(lambda t: model.dlog_mgf(t) - x, lo, hi, rtol=1e-15, maxiter=500)
    return max(theta * x - model.log_mgf(theta), 0.0)


@dataclass(frozen=True)
class OverflowBound:
    """Chernoff bound on overflow for one workload, budget and capacity (docs/model.md 3.2).

    Attributes
    ----------
    memory : int
        M, KV capacity in tokens.
    budget : str
        Description of the budget.
    mean_demand : float
        E[U] = E[B] E[w], tokens.
    slack : float
        Delta = M - E[U], tokens.
    rate : float
        I(M).
    theta : float
        theta*(M), per token.
    theta_max : float
        Right end of the domain of Lambda (inf if Lambda is finite everywhere).
    per_slot : float
        exp(-I(M)), a bound on P(overflow in a slot).
    slots : int
        T.
    expected_events : float
        T exp(-I(M)), a union bound on P(any overflow in T slots) (the name
        is historical: it is not a bound on the expected number of overflow events of
        the real system, only on the probability that there is at least one; for the
        eviction-free relaxation it also bounds the expected number of slots with U > M).
    note : str
        What kind of statement this is (reconstruction; rigorous where).
    """

    memory: int
    budget: str
    mean_demand: float
    slack: float
    rate: float
    theta: float
    theta_max: float
    per_slot: float
    slots: int
    expected_events: float
    note: str

    def to_dict(self) -> dict:
        return asdict(self)


def _describe(budget) -> str:
    b = as_budget(budget)
    return b if isinstance(b, str) else b.describe()


def overflow_bound(workload: Workload, budget, memory: int, slots: int = 1,
                   model: DemandModel | None = None) -> OverflowBound:
    """Bound the overflow probability per slot and P(any overflow in T slots) <= T e^{-I(M)}.

    Parameters
    ----------
    workload : Workload
        Request classes.
    budget : float, Budget, PerClassBudget or FlowControl
        See :class:`DemandModel`.
    memory : int
        M, tokens.
    slots : int
        T, slots in the horizon.
    model : DemandModel or None
        A prebuilt exact (unit 1) model of the same workload and budget.
    """
    memory = validation.memory(memory)
    if isinstance(slots, bool) or not isinstance(slots, int) or slots < 1:
        raise ValueError(f"slots must be an integer >= 1 (horizon T), got {slots!r}")
    model = model or DemandModel(workload, budget)
    r = chernoff_rate(model, memory)
    mean = model.dlog_mgf(0.0)
    per_slot = math.exp(-r.rate)
    note = RECONSTRUCTION_NOTE
    if as_budget(budget) == UNTHROTTLED:
        note = ("Compound-Poisson (M/G/infinity) prediction with lambda in place of E[B]; "
                "uses the reconstructed Alg. 2 bound (docs/model.md 3.2).")
    return OverflowBound(memory, _describe(budget), mean, memory - mean, r.rate, r.theta,
                         model.theta_max, per_slot, slots, slots * per_slot, note)


def compound_poisson_prediction(workload: Workload, memory: int, slots: int = 1) -> OverflowBound:
    """The same bound with lambda_k in place of the budget: every arrival admitted at once."""
    return overflow_bound(workload, UNTHROTTLED, memory, slots)
