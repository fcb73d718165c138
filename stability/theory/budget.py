"""Budget laws of Alg. 2 and Alg. 1 as the theory sees them (DESIGN 2 and 3).

A budget is the number of activations per slot, B_t.  The theory needs its mean E[B],
its variance, its largest value and log G(e^s), where G(z) = E[z^B] is its generating
function.  The closed forms are stated in :data:`stability.theory.symbolic.budget_pgf`;
the numeric versions here are the same expressions written to stay finite for large s
(``proofs_check`` compares them with the lambdified symbolic ones).

Policy objects from :mod:`stability.policies` are accepted by duck typing: anything with
``budget`` and ``law`` is a flow-control budget, anything with ``budgets`` is a per-class
budget (Alg. 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy.special import expit

from stability.theory.symbolic import BUDGET_LAWS
from stability.workload import Workload

__all__ = ["Budget", "PerClassBudget", "Stream", "as_budget", "budget_streams", "class_mix", "UNTHROTTLED"]

UNTHROTTLED = "unthrottled"
"""Budget description meaning: admit every arrival at once (B_t ~ Poisson(lambda))."""


def _check_mean(name: str, value, law: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    if law == "deterministic" and value != int(value):
        raise ValueError(
            f"{name}={value!r} is not allowed for law='deterministic': a deterministic budget "
            "must be an integer (use law='poisson' or law='two-point' for a real mean)"
        )
    return value


def _check_law(law) -> str:
    if law not in BUDGET_LAWS:
        raise ValueError(f"law={law!r} is not allowed; law must be one of {', '.join(BUDGET_LAWS)}")
    return law


@dataclass(frozen=True)
class Budget:
    """Activations per slot B_t, i.i.d. over slots (Alg. 2's budget).

    Parameters
    ----------
    mean : E[B] = beta, activations per slot (an integer b for ``law="deterministic"``).
    law : "deterministic" (B = b), "poisson" (B ~ Poisson(beta)) or "two-point"
        (B = floor(beta) or ceil(beta), with mean beta).
    """

    mean: float
    law: str = "deterministic"

    def __post_init__(self):
        _check_law(self.law)
        object.__setattr__(self, "mean", _check_mean("budget", self.mean, self.law))

    # -- moments -------------------------------------------------------------------
    @property
    def floor(self) -> int:
        """n = floor(beta)."""
        return int(math.floor(self.mean))

    @property
    def frac(self) -> float:
        """f = beta - floor(beta) (two-point law: P(B = n + 1) = f)."""
        return self.mean - self.floor

    @property
    def var(self) -> float:
        """Var(B): 0, beta, f (1 - f) for deterministic, Poisson, two-point."""
        if self.law == "deterministic":
            return 0.0
        if self.law == "poisson":
            return self.mean
        return self.frac * (1.0 - self.frac)

    @property
    def max_value(self) -> float:
        """Largest value of B with positive probability (inf for Poisson)."""
        if self.law == "poisson":
            return math.inf if self.mean > 0 else 0.0
        return float(math.ceil(self.mean))

    # -- generating function ---------------------------------------------------------
    def log_pgf_of_log(self, s: np.ndarray) -> np.ndarray:
        """log G(e^s), elementwise (s = log phi >= 0 in the Chernoff bound)."""
        s = np.asarray(s, dtype=float)
        if self.law == "deterministic":
            return self.mean * s
        if self.law == "poisson":
            with np.errstate(over="ignore"):
                return self.mean * np.expm1(s)
        n, f = self.floor, self.frac
        if f == 0.0:
            return n * s
        return n * s + np.logaddexp(math.log1p(-f), math.log(f) + s)

    def dlog_pgf_of_log(self, s: np.ndarray) -> np.ndarray:
        """d/ds log G(e^s) (the tilted mean of B)."""
        s = np.asarray(s, dtype=float)
        if self.law == "deterministic":
            return np.full_like(s, self.mean)
        if self.law == "poisson":
            with np.errstate(over="ignore"):
                return self.mean * np.exp(s)
        n, f = self.floor, self.frac
        if f == 0.0:
            return np.full_like(s, float(n))
        return n + expit(s + math.log(f) - math.log1p(-f))

    def pmf(self, tail: float = 1e-17) -> tuple[np.ndarray, np.ndarray]:
        """Values and probabilities of B (Poisson cut where the upper tail is < ``tail``)."""
        if self.law == "deterministic":
            return np.array([int(self.mean)]), np.array([1.0])
        if self.law == "two-point":
            n, f = self.floor, self.frac
            if f == 0.0:
                return np.array([n]), np.array([1.0])
            return np.array([n, n + 1]), np.array([1.0 - f, f])
        from scipy.stats import poisson

        top = int(self.mean + 12.0 * math.sqrt(self.mean) - math.log(tail)) + 1
        v = np.arange(top + 1)
        pr = poisson.pmf(v, self.mean)
        return v, pr / pr.sum()

    def describe(self) -> str:
        if self.law == "deterministic":
            return f"deterministic b={int(self.mean)}"
        return f"{self.law} beta={self.mean:g}"


@dataclass(frozen=True)
class PerClassBudget:
    """Alg. 1's budgets: b_k activations of class k per slot (ClassBudgets, DESIGN 2).

    Parameters
    ----------
    budgets : one budget per class, b_k (integers for ``law="deterministic"``).
    law : law of each class budget (the paper's Alg. 1 is deterministic).
    """

    budgets: tuple
    law: str = "deterministic"

    def __post_init__(self):
        _check_law(self.law)
        budgets = self.budgets
        if isinstance(budgets, (int, float, np.integer, np.floating)):
            budgets = (budgets,)
        budgets = tuple(budgets)
        if not budgets:
            raise ValueError("budgets must hold one budget per class, got an empty sequence")
        checked = tuple(_check_mean(f"budgets[{k}]", b, self.law) for k, b in enumerate(budgets))
        object.__setattr__(self, "budgets", checked)

    def for_class(self, k: int) -> Budget:
        return Budget(self.budgets[k], self.law)

    def describe(self) -> str:
        return f"per-class {self.law} b=({', '.join(f'{b:g}' for b in self.budgets)})"


class Stream(NamedTuple):
    """One independent source of activations: its budget and the class mix it activates.

    ``weights[c]`` is the probability that an activation of this stream is of
    ``classes[c]``.
    """

    budget: Budget
    weights: np.ndarray
    classes: tuple


def as_budget(budget) -> Budget | PerClassBudget | str:
    """Normalise a budget description: Budget, PerClassBudget, a FlowControl- or
    ClassBudgets-like object (duck typing), a number (deterministic) or ``"unthrottled"``."""
    if isinstance(budget, (Budget, PerClassBudget)):
        return budget
    if isinstance(budget, str):
        if budget == UNTHROTTLED:
            return budget
        raise ValueError(f"budget={budget!r} is not allowed; give a number, a Budget, a "
                         f"policy object or {UNTHROTTLED!r}")
    if hasattr(budget, "budgets"):
        return PerClassBudget(tuple(budget.budgets), getattr(budget, "law", "deterministic"))
    if hasattr(budget, "budget") and hasattr(budget, "law"):
        return Budget(budget.budget, budget.law)
    if isinstance(budget, (int, float, np.integer, np.floating)) and not isinstance(budget, bool):
        return Budget(budget, "deterministic")
    raise ValueError(
        f"budget={budget!r} is not allowed; give a number (deterministic b), "
        "Budget(mean, law), PerClassBudget(budgets), a FlowControl or ClassBudgets policy, "
        f"or {UNTHROTTLED!r}"
    )


def budget_streams(workload: Workload, budget) -> tuple[Stream, ...]:
    """Split the activations of ``budget`` applied to ``workload`` into independent streams.

    Flow control (one global FIFO queue, saturated): one stream; an activation is of class
    k with probability lambda_k / lambda.  This is an *assumption* of the saturated
    relaxation: with a FIFO queue fed by independent Poisson streams, the class of the
    request at the head is lambda_k / lambda, independently of everything else.
    Per-class budgets (Alg. 1): one stream per class.  ``"unthrottled"``: every arrival is
    activated at once, i.e. Poisson(lambda_k) class-k activations per slot (the
    compound-Poisson / M/G/infinity prediction).
    """
    if not isinstance(workload, Workload):
        raise ValueError(f"workload must be a Workload, got {workload!r}")
    budget = as_budget(budget)
    classes = workload.classes
    if isinstance(budget, PerClassBudget):
        if len(budget.budgets) != len(classes):
            raise ValueError(
                f"budgets has {len(budget.budgets)} entries but the workload has "
                f"{len(classes)} classes; give one budget per class"
            )
        return tuple(
            Stream(budget.for_class(k), np.ones(1), (c,)) for k, c in enumerate(classes)
        )
    if budget == UNTHROTTLED:
        return tuple(Stream(Budget(c.rate, "poisson"), np.ones(1), (c,)) for c in classes)
    return (Stream(budget, class_mix(workload), classes),)


def class_mix(workload: Workload) -> np.ndarray:
    """lambda_k / lambda: the class probabilities of an activation under flow control."""
    rates = workload.rates
    total = rates.sum()
    if total <= 0:
        if len(rates) == 1:
            return np.ones(1)
        raise ValueError("the workload's total rate is 0, so the class mix of activations "
                         "(lambda_k / lambda) is undefined; give positive rates")
    return rates / total
