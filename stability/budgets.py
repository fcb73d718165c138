"""The budget law of flow control: B_t activations per slot (docs/model.md section 3.1).

One object serves the policy (``FlowControl`` draws B_t from it in the kernels, by its
:attr:`Budget.code`), the theory (mean, variance, generating function) and the
rare-event sampler.  The closed forms are stated in :mod:`stability.theory.symbolic`;
the numeric versions here are the same expressions written to stay finite for large s
(``proofs_check`` compares them with the lambdified symbolic ones).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from stability import validation
from stability.engine.codes import BUDGET_LAWS

__all__ = ["Budget", "LAWS", "MULTIPLIERS", "CHECKED_MULTIPLIERS"]

LAWS = tuple(BUDGET_LAWS)
"""Names of the budget laws: deterministic, poisson, two-point."""
MULTIPLIERS = (1.02, 1.05, 1.1, 1.2, 1.4, 1.7, 2.2, 3.0)
"""The tuning grid: budgets tried as multiples of the arrival rate lambda
(``stability.sweep.tune``, ``TwinFlow``)."""
CHECKED_MULTIPLIERS = MULTIPLIERS + (math.inf,)
"""``CheckedFlow``'s grid: flow control's, and b = infinity, which is Greedy exactly."""


def check_mean(name: str, value, law: str) -> float:
    """A budget mean for ``law``: a finite number >= 0, an integer if deterministic."""
    value = validation.number(name, value, 0.0)
    if law == "deterministic" and value != int(value):
        raise ValueError(
            f"{name}={value!r} is not allowed for law='deterministic': a deterministic budget "
            "must be an integer (use law='poisson' or law='two-point' for a real mean)"
        )
    return value


def check_law(law) -> str:
    """One of :data:`LAWS`."""
    return validation.choice("law", law, LAWS)


@dataclass(frozen=True)
class Budget:
    """Activations per slot B_t, i.i.d. over slots (Alg. 2's budget).

    Parameters
    ----------
    mean : float
        E[B] = beta, activations per slot (an integer b for ``law="deterministic"``).
    law : str
        "deterministic" (B = b), "poisson" (B ~ Poisson(beta)) or "two-point"
        (B = floor(beta) or ceil(beta), with mean beta).
    """

    mean: float
    law: str = "deterministic"

    def __post_init__(self):
        check_law(self.law)
        object.__setattr__(self, "mean", check_mean("budget", self.mean, self.law))

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

    @property
    def code(self) -> int:
        """The law's code for the kernels (:data:`stability.engine.codes.BUDGET_LAWS`)."""
        return BUDGET_LAWS[self.law]

    def describe(self) -> str:
        if self.law == "deterministic":
            return f"deterministic b={int(self.mean)}"
        return f"{self.law} beta={self.mean:g}"
