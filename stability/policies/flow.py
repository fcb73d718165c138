"""Flow control: Alg. 2 (one budget B_t for all) and Alg. 1 (one budget per class).

Both admit their candidates with no memory check; candidates that do not fit bounce at
the overflow check (docs/model.md sections 2.2 and 4.1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stability import validation
from stability.budgets import LAWS, Budget
from stability.engine import admission
from stability.engine.codes import NO_LIMIT
from stability.policies.base import Choice, Floats, Ints, OneOf, PerClass, Policy, param


@dataclass(frozen=True)
class FlowControl(Policy, kind="flow"):
    """Alg. 2 (lengths unknown): each slot admit the first min(B_t, |W|) waiting requests.

    No memory check at admission; overflow is left to the LIFO check (the admitted
    requests that do not fit bounce back to the front of the queue).  B_t is a pure
    function of (seed, t): a counter-based draw.

    Parameters
    ----------
    budget : float
        E[B], activations per slot (an integer for the deterministic law).
    law : str, optional
        "deterministic" (B_t = budget), "poisson" (B_t ~ Poisson(budget)) or "two-point"
        (floor / ceil of budget with mean budget); default deterministic for an integer
        budget, else two-point.
    """

    budget: float = param(help="E[B], activations per slot (Alg. 2's budget)",
                          examples=OneOf((Ints(0, 8), Floats(0.25, 8.0))))
    law: str | None = param(None, help="budget law: deterministic, poisson or two-point "
                                       "(default: deterministic for an integer budget)",
                            parse=str, flag="--budget-law", examples=Choice(LAWS))

    def __post_init__(self):
        b = validation.number("budget", self.budget, 0.0)
        law = self.law if self.law is not None else (
            "deterministic" if b.is_integer() else "two-point")
        law = Budget(b, validation.choice("law", law, LAWS)).law  # checks integer b
        object.__setattr__(self, "law", law)
        object.__setattr__(self, "budget", int(b) if law == "deterministic" else b)

    @property
    def budget_law(self) -> Budget:
        """B_t's law (mean, variance, generating function) for the theory."""
        return Budget(self.budget, self.law)

    @property
    def mean_budget(self) -> float:
        """E[B], activations per slot."""
        return float(self.budget)

    def encode(self, memory, num_classes):
        law = self.budget_law
        params = admission.new_params(code=admission.FLOW, budget_law=law.code,
                                      budget=min(int(self.budget), NO_LIMIT)
                                      if self.law == "deterministic" else 0,
                                      budget_mean=float(self.budget))
        return admission.Encoded(params, np.zeros(0, np.int64), False, memory)

    def check_progress(self, requests, memory, predicted=None, block=1):
        if len(requests) and self.budget == 0:
            raise ValueError("horizon=None needs a policy that admits: FlowControl budget=0 "
                             "never does; give a horizon")


def _budgets(text) -> tuple:
    try:
        return tuple(int(x) for x in str(text).split(","))
    except ValueError:
        raise ValueError(f"budgets must be comma-separated integers, got {text!r}") from None


@dataclass(frozen=True)
class ClassBudgets(Policy, kind="classes"):
    """Alg. 1 (lengths known per class): each slot admit the first min(b_k, |W_k|) of class k.

    The admitted requests join the active list in arrival order; no memory check.  Under
    inequality (2), sum_k b_k w_k <= M, the overflow check never fires (Thm 3.3).

    Parameters
    ----------
    budgets : tuple of int
        b_k, activations of class k per slot.
    """

    budgets: tuple = param(help="b_k per class, comma separated (Alg. 1)", parse=_budgets,
                           plain=list, coerce=lambda v: tuple(v) if isinstance(
                               v, (list, tuple)) else v,
                           examples=PerClass(Ints(0, 4)))

    def __post_init__(self):
        budgets = self.budgets
        if isinstance(budgets, (int, np.integer)) and not isinstance(budgets, bool):
            budgets = (budgets,)
        if not isinstance(budgets, (tuple, list)) or not budgets:
            raise ValueError(f"budgets must hold one integer >= 0 per class, got {budgets!r}")
        object.__setattr__(self, "budgets", tuple(
            validation.integer(f"budgets[{k}]", b, 0) for k, b in enumerate(budgets)))

    def encode(self, memory, num_classes):
        if num_classes > len(self.budgets):
            raise ValueError(
                f"budgets has {len(self.budgets)} entries but the requests have {num_classes} "
                "classes; give one budget per class")
        params = admission.new_params(code=admission.CLASSES)
        return admission.Encoded(params, np.array(self.budgets, np.int64), True, memory)

    def check_progress(self, requests, memory, predicted=None, block=1):
        for k in np.unique(requests.class_id):
            if k >= len(self.budgets) or self.budgets[k] == 0:
                raise ValueError(f"horizon=None but class {k} has budget 0, so its requests "
                                 "never start; give a horizon")
