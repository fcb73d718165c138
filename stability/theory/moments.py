"""Exact moments: E[w] per class, the age profile of one activation, E[U] and Var(U).

Each expectation of a polynomial in (l, o) is taken term by term from the sympy
polynomial in :mod:`stability.theory.symbolic` (l and o independent within a class), with
exact raw moments of the length laws: closed forms for deterministic and unbounded
geometric laws (the latter from the symbolic PGF), finite sums over the probability table
otherwise.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import sympy as sp

from stability.theory import symbolic as sym
from stability.theory.budget import Budget, budget_streams
from stability.workload import Deterministic, Geometric, LengthLaw, RequestClass, Workload

__all__ = [
    "raw_moment", "expect", "mean_memory_time", "mean_square_demand_sum", "survival",
    "GEOMETRIC_AGE_CUT", "mean_memory_time_mix", "demand_mean", "demand_variance",
    "is_unbounded_geometric",
]

GEOMETRIC_AGE_CUT = 1e-16
"""Unbounded geometric decode lengths: tables of P(o > a) stop where it falls below this."""

_SQUARE_SUM = sp.expand(sp.summation((sym.l + sym.j) ** 2, (sym.j, 1, sym.o)))
"""sum_{j=1..o} (l + j)^2, a polynomial in l and o (kappa''(0) = E of it, Poisson budgets)."""


def is_unbounded_geometric(law: LengthLaw) -> bool:
    return isinstance(law, Geometric) and law.max is None and law.p < 1.0


@lru_cache(maxsize=None)
def _geometric_moment_function(r: int):
    return sp.lambdify(sym.p, sym.geometric_moment(r), "math")


def raw_moment(law: LengthLaw, r: int) -> float:
    """E[X^r] for a length law (exact: closed form or finite sum over its table)."""
    if r == 0:
        return 1.0
    if isinstance(law, Deterministic):
        return float(law.value) ** r
    if is_unbounded_geometric(law):
        return float(_geometric_moment_function(r)(law.p))
    v, pr = law.pmf()
    if not np.all(np.isfinite(v)):
        raise ValueError(f"law {law!r} has no finite probability table")
    return float(np.dot(v.astype(float) ** r, pr))


@lru_cache(maxsize=None)
def _terms(expr_key: str):
    expr = {"w": sym.memory_time, "square_sum": _SQUARE_SUM}[expr_key]
    poly = sp.Poly(sp.expand(expr), sym.l, sym.o)
    return tuple((int(i), int(jj), float(c)) for (i, jj), c in poly.terms())


def expect(expr_key: str, cls: RequestClass) -> float:
    """E[expr(l, o)] for a polynomial from :mod:`symbolic`, l and o independent."""
    return float(sum(c * raw_moment(cls.prompt, i) * raw_moment(cls.decode, jj)
                     for i, jj, c in _terms(expr_key)))


def mean_memory_time(cls: RequestClass) -> float:
    """E[w] = E[l] E[o] + (E[o^2] + E[o]) / 2 (docs/model.md 1; Prop. 3.2's per-class term).

    For geometric o and fixed l this is l/p + 1/p^2 (docs/model.md 3.2).
    """
    return expect("w", cls)


def mean_square_demand_sum(cls: RequestClass) -> float:
    """E[sum_{j=1..o} (l + j)^2] = kappa''(0): the per-activation second moment of U.

    With Poisson(beta) budgets Var(U) = beta kappa''(0) (compound Poisson).
    """
    return expect("square_sum", cls)


def mean_memory_time_mix(workload: Workload) -> float:
    """E[w] of an activation under flow control: sum_k (lambda_k / lambda) E[w_k]."""
    from stability.theory.budget import class_mix

    return float(np.dot(class_mix(workload), [mean_memory_time(c) for c in workload.classes]))


def survival(law: LengthLaw, ages: int | None = None) -> np.ndarray:
    """P(o > a) for a = 0, 1, ..., ages - 1 (default: up to the largest value of o).

    Unbounded geometric laws have no largest value: the default stops at the first a with
    (1 - p)^a < GEOMETRIC_AGE_CUT.
    """
    if ages is None:
        if is_unbounded_geometric(law):
            ages = int(math.ceil(math.log(GEOMETRIC_AGE_CUT) / math.log1p(-law.p)))
        else:
            ages = int(law.max_value)
    if is_unbounded_geometric(law):
        return np.exp(np.arange(ages) * math.log1p(-law.p))
    v, pr = law.pmf()
    mass = np.zeros(max(ages, int(v.max())) + 1)
    np.add.at(mass, v.astype(np.int64), pr)
    # P(o > a) = sum_{k > a} P(o = k): a reversed cumulative sum, no cancellation.
    tail = np.cumsum(mass[::-1])[::-1]
    return np.concatenate([tail[1:], [0.0]])[:ages]


def _age_means(stream, ages: int) -> np.ndarray:
    """E[X(a)] of one activation of the stream's class mix, a = 0..ages-1."""
    out = np.zeros(ages)
    for w, c in zip(stream.weights, stream.classes):
        out += w * (c.prompt.mean() + np.arange(ages) + 1.0) * survival(c.decode, ages)
    return out


def _stream_ages(stream) -> int:
    ages = 1
    for c in stream.classes:
        if is_unbounded_geometric(c.decode):
            # E[X(a)]^2 ~ a^2 (1-p)^(2a): cut at 1e-40 relative to its first term.
            ages = max(ages, int(math.ceil(math.log(1e-20) / math.log1p(-c.decode.p))))
        else:
            ages = max(ages, int(c.decode.max_value))
    return ages


def demand_mean(workload: Workload, budget) -> float:
    """E[U] = sum over streams of E[B] E[w] (docs/model.md 3.2; mixture E[w] under flow control)."""
    total = 0.0
    for st in budget_streams(workload, budget):
        total += st.budget.mean * float(np.dot(st.weights, [mean_memory_time(c) for c in st.classes]))
    return total


def demand_variance(workload: Workload, budget) -> float:
    """Var(U) = sum_a [E[B] Var X(a) + Var(B) E[X(a)]^2] over ages and streams.

    Written as E[B] sum_a E[X(a)^2] + (Var B - E[B]) sum_a E[X(a)]^2, where
    sum_a E[X(a)^2] = E[sum_{j=1..o} (l + j)^2] = kappa''(0) exactly; the second sum is a
    finite sum (unbounded geometric: cut where (1-p)^a < 1e-20, relative error < 1e-30).
    For Poisson budgets Var B = E[B] and Var(U) = beta kappa''(0).
    """
    total = 0.0
    for st in budget_streams(workload, budget):
        b: Budget = st.budget
        second = float(np.dot(st.weights, [mean_square_demand_sum(c) for c in st.classes]))
        total += b.mean * second
        if b.var != b.mean:
            m = _age_means(st, _stream_ages(st))
            total += (b.var - b.mean) * float(np.dot(m, m))
    # The two sums cancel exactly when U is constant (deterministic lengths and budget);
    # round-off can then leave -1e-14, and a variance is never negative.
    return max(total, 0.0)
