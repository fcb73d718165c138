"""Budgets as the theory sees them: Alg. 2's law, Alg. 1's per-class budgets, streams.

A budget is the number of activations per slot, B_t.  The law itself (mean, variance,
generating function) is :class:`stability.budgets.Budget`, the object ``FlowControl``
draws from; this module adds Alg. 1's per-class budgets and the split of activations
into independent streams that the demand model needs.

Policy objects from :mod:`stability.policies` are accepted by duck typing: anything with
``budget`` and ``law`` is a flow-control budget, anything with ``budgets`` is a per-class
budget (Alg. 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from stability.budgets import Budget, check_law, check_mean
from stability.workload import Workload

__all__ = ["Budget", "PerClassBudget", "Stream", "as_budget", "budget_streams", "class_mix", "UNTHROTTLED"]

UNTHROTTLED = "unthrottled"
"""Budget description meaning: admit every arrival at once (B_t ~ Poisson(lambda))."""


@dataclass(frozen=True)
class PerClassBudget:
    """Alg. 1's budgets: b_k activations of class k per slot (ClassBudgets, docs/model.md 4.1).

    Parameters
    ----------
    budgets : tuple
        One budget per class, b_k (integers for ``law="deterministic"``).
    law : str
        Law of each class budget (the paper's Alg. 1 is deterministic).
    """

    budgets: tuple
    law: str = "deterministic"

    def __post_init__(self):
        check_law(self.law)
        budgets = self.budgets
        if isinstance(budgets, (int, float, np.integer, np.floating)):
            budgets = (budgets,)
        budgets = tuple(budgets)
        if not budgets:
            raise ValueError("budgets must hold one budget per class, got an empty sequence")
        checked = tuple(check_mean(f"budgets[{k}]", b, self.law) for k, b in enumerate(budgets))
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
