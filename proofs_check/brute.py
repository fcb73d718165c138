"""Slow, independent reference computations of the law of U (for checks and tests).

* :func:`enumerated_pmf`: every outcome of every activation enumerated (itertools),
  deterministic or two-point budgets, tiny supports only.
* :func:`panjer_pmf`: U for Poisson budgets is compound Poisson; Panjer's recursion gives
  its pmf exactly without any transform.
* :func:`saturated_alg1_demand`: slot-by-slot demand of saturated Alg. 1.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict

import numpy as np

from stability.theory.budget import Budget, class_mix
from stability.workload import Workload


def _activation_outcomes(workload: Workload, age: int, weights) -> list[tuple[int, float]]:
    """(contribution, probability) of one activation of the class mix at ``age``."""
    out = defaultdict(float)
    for w, c in zip(weights, workload.classes):
        lv, lp = c.prompt.pmf()
        ov, op = c.decode.pmf()
        for li, pl in zip(lv, lp):
            for oi, po in zip(ov, op):
                x = int(li) + age + 1 if oi > age else 0
                out[x] += w * pl * po
    return sorted(out.items())


def enumerated_pmf(workload: Workload, budget: Budget) -> dict[int, float]:
    """P(U = u) by enumerating every budget draw and every activation outcome.

    Flow control: activations pick class k with probability lambda_k / lambda.
    """
    if budget.law == "poisson":
        raise ValueError("enumeration needs a bounded budget; use panjer_pmf for Poisson")
    weights = class_mix(workload)
    ages = max(int(c.decode.max_value) for c in workload.classes)
    per_age = [_activation_outcomes(workload, a, weights) for a in range(ages)]
    bv, bp = budget.pmf()
    pmf = defaultdict(float)
    for counts in itertools.product(range(len(bv)), repeat=ages):
        p_budget = math.prod(bp[i] for i in counts)
        slots = [per_age[a] for a, i in enumerate(counts) for _ in range(int(bv[i]))]
        for combo in itertools.product(*slots):
            pmf[sum(x for x, _ in combo)] += p_budget * math.prod(q for _, q in combo)
    return dict(pmf)


def panjer_pmf(workload: Workload, budget: Budget, size: int) -> np.ndarray:
    """P(U = u), u < size, for Poisson budgets (Panjer's recursion for compound Poisson).

    U = sum over ages of Poisson(beta) activations, each contributing X(a); dropping the
    zero contributions, U is compound Poisson with rate beta sum_a P(X(a) > 0) and jump law
    the mixture of (l + a + 1) over ages and classes: g(0) = e^{-rate},
    g(u) = (rate / u) sum_j j q(j) g(u - j).
    """
    if budget.law != "poisson":
        raise ValueError("panjer_pmf needs a Poisson budget")
    weights = class_mix(workload)
    ages = max(int(c.decode.max_value) for c in workload.classes)
    jumps = np.zeros(size)
    for a in range(ages):
        for x, q in _activation_outcomes(workload, a, weights):
            if 0 < x < size:
                jumps[x] += budget.mean * q
    rate = jumps.sum()
    g = np.zeros(size)
    g[0] = math.exp(-rate)
    jj = np.arange(size) * jumps
    for u in range(1, size):
        g[u] = np.dot(jj[1:u + 1], g[u - 1::-1][:u]) / u
    return g


def saturated_alg1_demand(prompts, decodes, budgets, slots: int) -> np.ndarray:
    """Demand R per slot of Alg. 1 with every class queue always non-empty (docs/model.md 2.2)."""
    active = []  # (l, start slot, o)
    out = np.zeros(slots, dtype=np.int64)
    for t in range(slots):
        for l, o, bk in zip(prompts, decodes, budgets):
            active.extend([(l, t, o)] * bk)
        out[t] = sum(l + (t - u) + 1 for l, u, o in active)
        active = [(l, u, o) for l, u, o in active if t - u + 1 < o]
    return out
