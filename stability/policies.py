"""Admission policies (DESIGN 2) as small frozen parameter objects.

Every policy evicts LIFO (most recently activated first) when the demand of a slot
exceeds the KV capacity M.  A policy crosses into the kernels as a
:class:`EncodedPolicy`: a code, integer and float parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import NamedTuple

import numpy as np

__all__ = ["FlowControl", "ClassBudgets", "Greedy", "Conservative", "MCSF", "MCBenchmark",
           "AMax", "AMin", "Policy", "BUDGET_LAWS"]

# Codes shared with the kernels.
POLICY_FLOW = 0
POLICY_CLASSES = 1
POLICY_GREEDY = 2
POLICY_CONSERVATIVE = 3
POLICY_MEMORY_CHECKED = 4  # MC-SF, MC-Benchmark, A_min

ORDER_SHORTEST, ORDER_FCFS = 0, 1
ESTIMATE_POINT, ESTIMATE_DOUBLING = 0, 1

BUDGET_DETERMINISTIC = 0
BUDGET_POISSON = 1
BUDGET_TWO_POINT = 2
BUDGET_LAWS = {"deterministic": BUDGET_DETERMINISTIC, "poisson": BUDGET_POISSON,
               "two-point": BUDGET_TWO_POINT}


class EncodedPolicy(NamedTuple):
    code: int
    int_params: np.ndarray  # int64
    float_params: np.ndarray  # float64
    groups_by_class: bool  # one FIFO queue per class (True) or one global queue
    evict_to: int  # after an overflow, evict LIFO until R <= evict_to (M unless clearing)
    predictions: object = None  # a Predictions model for length-aware policies


class Policy:
    """Base class: an admission rule; eviction is LIFO."""

    def encode(self, memory: int, num_classes: int) -> EncodedPolicy:
        raise NotImplementedError

    @property
    def uses_predictions(self) -> bool:
        return getattr(self, "predictions", None) is not None

    def describe(self) -> str:
        return repr(self)


@dataclass(frozen=True)
class FlowControl(Policy):
    """Alg. 2 (lengths unknown): each slot admit the first min(B_t, |W|) waiting requests.

    No memory check at admission; overflow is left to the LIFO check (the admitted
    requests that do not fit bounce back to the front of the queue).

    Parameters
    ----------
    budget : B_t's mean; an int with ``law="deterministic"`` is b activations per slot.
    law : "deterministic" (budget must be an integer), "poisson" (B_t ~ Poisson(budget))
        or "two-point" (floor/ceil of budget with mean budget).
        B_t is a pure function of (seed, t): a counter-based draw (DESIGN 2).
    """

    budget: float
    law: str = "deterministic"

    def __post_init__(self):
        if self.law not in BUDGET_LAWS:
            raise ValueError(f"law must be one of {sorted(BUDGET_LAWS)}, got {self.law!r}")
        b = self.budget
        if isinstance(b, bool) or not isinstance(b, (int, float, np.integer, np.floating)):
            raise ValueError(f"budget must be a number >= 0, got {b!r}")
        if not math.isfinite(b) or b < 0:
            raise ValueError(f"budget must be a finite number >= 0, got {b!r}")
        if self.law == "deterministic":
            if float(b) != int(b):
                raise ValueError(
                    f"budget={b!r} is not an integer; a deterministic budget must be an integer "
                    "(use law='poisson' or law='two-point' for a real mean)"
                )
            object.__setattr__(self, "budget", int(b))
        else:
            object.__setattr__(self, "budget", float(b))

    @property
    def mean_budget(self) -> float:
        """E[B], activations per slot."""
        return float(self.budget)

    def encode(self, memory, num_classes):
        law = BUDGET_LAWS[self.law]
        b = int(self.budget) if law == BUDGET_DETERMINISTIC else 0
        ints = np.array([law, min(b, 2**62)], np.int64)
        return EncodedPolicy(POLICY_FLOW, ints, np.array([float(self.budget)]), False, memory)


@dataclass(frozen=True)
class ClassBudgets(Policy):
    """Alg. 1 (lengths known per class): each slot admit the first min(b_k, |W_k|) of class k.

    The admitted requests join the active list in arrival order; no memory check.
    Under inequality (2), sum_k b_k w_k <= M, the overflow check never fires (Thm 3.3).
    """

    budgets: tuple

    def __post_init__(self):
        budgets = tuple(self.budgets) if not isinstance(self.budgets, int) else (self.budgets,)
        if not budgets:
            raise ValueError("budgets must hold one integer >= 0 per class")
        for k, b in enumerate(budgets):
            if isinstance(b, bool) or not isinstance(b, (int, np.integer)) or b < 0:
                raise ValueError(f"budgets[{k}] must be an integer >= 0, got {b!r}")
        object.__setattr__(self, "budgets", tuple(int(b) for b in budgets))

    def encode(self, memory, num_classes):
        if num_classes > len(self.budgets):
            raise ValueError(
                f"budgets has {len(self.budgets)} entries but the requests have {num_classes} "
                "classes; give one budget per class"
            )
        return EncodedPolicy(POLICY_CLASSES, np.array(self.budgets, np.int64), np.zeros(1), True,
                             memory)


@dataclass(frozen=True)
class Greedy(Policy):
    """vLLM-style FCFS: admit the head while R + l_head + 1 <= (1 - watermark) M.

    Stops at the first head that does not fit (no skipping).  With a watermark alpha this
    is Jaillet et al.'s alpha-protection; with ``clearing`` beta an overflow evicts LIFO
    until R <= (1 - beta) M (their beta-clearing) instead of until R <= M.
    """

    watermark: float = 0.0
    clearing: float = 0.0

    def __post_init__(self):
        for name in ("watermark", "clearing"):
            w = getattr(self, name)
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not (0.0 <= w < 1.0):
                raise ValueError(f"{name} must be a number in [0, 1), got {w!r}")
            object.__setattr__(self, name, float(w))

    def admission_cap(self, memory: int) -> int:
        """floor((1 - watermark) M), computed exactly from the decimal watermark."""
        return _fraction_of(memory, self.watermark)

    def encode(self, memory, num_classes):
        return EncodedPolicy(POLICY_GREEDY, np.array([self.admission_cap(memory)], np.int64),
                             np.zeros(1), False, _fraction_of(memory, self.clearing))


def _fraction_of(memory: int, share: float) -> int:
    """floor((1 - share) M) with the decimal ``share`` taken exactly (0.1 is 1/10)."""
    return math.floor((1 - Fraction(repr(share))) * memory)


@dataclass(frozen=True)
class Conservative(Policy):
    """Worst-case reservation (A_max): admit the head while sum over S and it of (l + max_decode) <= M.

    Never evicts when every decode length is <= max_decode.
    """

    max_decode: int

    def __post_init__(self):
        d = self.max_decode
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1:
            raise ValueError(f"max_decode must be an integer >= 1, got {d!r}")
        object.__setattr__(self, "max_decode", int(d))

    def encode(self, memory, num_classes):
        return EncodedPolicy(POLICY_CONSERVATIVE, np.array([self.max_decode, 0], np.int64),
                             np.zeros(1), False, memory)


def _check_predictions(predictions):
    from stability.predictions import Predictions

    if not isinstance(predictions, Predictions):
        raise ValueError(f"predictions must be a stability.Predictions, got {predictions!r}")


@dataclass(frozen=True)
class AMax(Policy):
    """A_max with interval predictions: reserve the upper bound, admit FCFS while
    sum over S and the head of (l + upper) <= M (Chen et al. 2508.14544).

    Never evicts when every interval contains the true length.
    """

    predictions: object = None

    def __post_init__(self):
        if self.predictions is None:
            from stability.predictions import Predictions

            object.__setattr__(self, "predictions", Predictions())
        _check_predictions(self.predictions)

    def encode(self, memory, num_classes):
        return EncodedPolicy(POLICY_CONSERVATIVE, np.array([0, 1], np.int64), np.zeros(1),
                             False, memory, self.predictions)


class _MemoryChecked(Policy):
    """Admission with a projected-memory check over future predicted completions.

    Each slot t, the waiting requests are taken in the policy's order and the longest
    prefix is admitted for which the projected memory
        m(tau) = sum over r in S and the admitted with e_r >= tau of (l_r + tau - u_r + 1)
    stays <= M at every predicted completion slot tau = e_r (the maxima of m); when the
    active requests alone are projected to exceed M, nothing is admitted.  A request
    r started at u_r with g = t - u_r tokens has estimated length est_r and
    e_r = u_r + est_r - 1; est_r = max(prediction, g + 1) ("point": a request that has
    outlived its prediction is projected to end now), or, for A_min ("doubling"), the
    lower bound doubled each time the request outlives it, capped at the upper bound.
    Overflows (wrong predictions) evict LIFO like every policy here.  Cost per slot is
    O(|S| + |W| log |W| + admitted x |S|), so these baselines do not skip slots.
    """

    order = ORDER_SHORTEST
    estimate = ESTIMATE_POINT

    def __post_init__(self):
        if self.predictions is None:
            from stability.predictions import Predictions

            object.__setattr__(self, "predictions", Predictions())
        _check_predictions(self.predictions)

    def encode(self, memory, num_classes):
        return EncodedPolicy(POLICY_MEMORY_CHECKED, np.array([self.order, self.estimate],
                                                             np.int64),
                             np.zeros(1), False, memory, self.predictions)


@dataclass(frozen=True)
class MCSF(_MemoryChecked):
    """MC-SF (Jaillet et al. 2502.07115): shortest predicted length first, memory-checked."""

    predictions: object = None


@dataclass(frozen=True)
class MCBenchmark(_MemoryChecked):
    """MC-Benchmark (Jaillet et al.): the MC-SF feasibility check in FCFS order."""

    predictions: object = None
    order = ORDER_FCFS


@dataclass(frozen=True)
class AMin(_MemoryChecked):
    """A_min (Chen et al. 2508.14544) with interval predictions: start from the lower
    bound, double the estimate whenever a request outlives it (capped at the upper bound),
    admit shortest estimate first under the projected-memory check, evict LIFO on overflow.

    The doubling rule and the shortest-first order are our choices where the published
    rule leaves room; ``MCSF`` with exact predictions is the order-by-length alternative.
    """

    predictions: object = None
    estimate = ESTIMATE_DOUBLING
