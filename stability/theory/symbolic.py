"""Symbolic statements of docs/model.md section 3 (sympy).

Every closed form used numerically in :mod:`stability.theory` is stated here first and
either lambdified or re-derived as an exact finite sum; ``proofs_check`` proves the
algebra from these expressions.

Symbols (all per slot, memory in tokens):

========  ===========================================================
``l``     prompt length l
``o``     decode length o
``j``     index of a generated token, 1..o
``a``     age of an active request (slots since activation), a >= 0
``p``     geometric decode parameter, P(o = k) = (1 - p)^(k-1) p
``q``     1 - p
``theta`` Chernoff / tilting parameter theta
``b``     deterministic budget (activations per slot)
``beta``  mean budget, beta = E[B]
``n, f``  two-point budget: B = n with prob 1 - f, n + 1 with prob f
``s``     log phi, the log moment generating function of one activation
========  ===========================================================
"""

from __future__ import annotations

import sympy as sp

__all__ = [
    "l", "o", "j", "a", "k", "p", "q", "theta", "b", "beta", "n", "f", "s", "z", "M",
    "memory_time", "memory_time_sum", "contribution", "alg1_saturated_demand",
    "geometric_pmf", "geometric_pgf", "geometric_moment", "geometric_mean_memory_time",
    "kappa_series_term", "kappa_geometric", "kappa_geometric_partial", "theta_max_geometric",
    "kappa_derivative_at_zero", "budget_pgf", "budget_log_pgf_of_log", "BUDGET_LAWS",
]

l, o, j, a, k = sp.symbols("l o j a k", integer=True, positive=True)
p = sp.Symbol("p", positive=True)
q = sp.Symbol("q", positive=True)
theta = sp.Symbol("theta", real=True)
b = sp.Symbol("b", integer=True, nonnegative=True)
beta = sp.Symbol("beta", positive=True)
n = sp.Symbol("n", integer=True, nonnegative=True)
f = sp.Symbol("f", nonnegative=True)
s = sp.Symbol("s", real=True)
z = sp.Symbol("z")
M = sp.Symbol("M", positive=True)

# ---------------------------------------------------------------------------------------
# Memory-time (docs/model.md 1): w(l, o) = sum_{j=1..o} (l + j) = l o + o (o + 1) / 2.

memory_time_sum = sp.Sum(l + j, (j, 1, o))
"""w as the sum of the per-slot demands l + 1, ..., l + o (unevaluated)."""

memory_time = l * o + o * (o + 1) / 2
"""w(l, o) = l o + o (o + 1) / 2, docs/model.md 1."""

contribution = (l + a + 1) * sp.Piecewise((1, o > a), (0, True))
"""X(a) = (l + a + 1) 1{o > a}: demand of a request activated a slots ago (docs/model.md 3.2)."""


def alg1_saturated_demand(t):
    """Demand of one saturated class under Alg. 1 in slot t >= 0 (b activations per slot).

    The requests active in slot t were activated at ages a = 0..min(t, o - 1); each holds
    l + a + 1 tokens.  For t >= o - 1 this equals b w(l, o) (Thm 3.3's peak).
    """
    return sp.Sum(b * (l + a + 1), (a, 0, sp.Min(t, o - 1)))


# ---------------------------------------------------------------------------------------
# Geometric decode lengths, P(o = k) = q^(k-1) p, q = 1 - p.

geometric_pmf = (1 - p) ** (k - 1) * p
geometric_pgf = p * z / (1 - (1 - p) * z)
"""E[z^o] for geometric o (|z| < 1/(1-p))."""


def geometric_moment(r: int):
    """E[o^r] for geometric o, from the PGF: apply (z d/dz)^r at z = 1."""
    expr = geometric_pgf
    for _ in range(r):
        expr = z * sp.diff(expr, z)
    return sp.simplify(expr.subs(z, 1))


geometric_mean_memory_time = l / p + 1 / p**2
"""E[w] = l/p + 1/p^2 for geometric o and fixed l (docs/model.md 3.2)."""

# kappa(theta) = E[sum_{j=1..o} (e^{theta(l+j)} - 1)] = sum_{j>=1} P(o >= j) (e^{theta(l+j)} - 1),
# and P(o >= j) = q^(j-1) for geometric o.
kappa_series_term = (1 - p) ** (j - 1) * (sp.exp(theta * (l + j)) - 1)
"""j-th term of kappa(theta) for geometric o: P(o >= j) (e^{theta(l+j)} - 1)."""

kappa_geometric = sp.exp(theta * (l + 1)) / (1 - (1 - p) * sp.exp(theta)) - 1 / p
"""kappa(theta) = e^{theta(l+1)} / (1 - (1-p) e^theta) - 1/p, theta < -ln(1-p) (docs/model.md 3.2)."""

theta_max_geometric = -sp.log(1 - p)
"""Right end of the domain of kappa for geometric o: kappa is finite iff theta < -ln(1-p)."""


def kappa_geometric_partial(N):
    """sum_{j=1..N} of the kappa series (closed finite geometric sums)."""
    r = (1 - p) * sp.exp(theta)
    return sp.exp(theta * (l + 1)) * (1 - r**N) / (1 - r) - (1 - (1 - p) ** N) / p


def kappa_derivative_at_zero(order: int):
    """d^order kappa / d theta^order at theta = 0 for geometric o (a rational function of l, p)."""
    expr = sp.diff(kappa_geometric, theta, order)
    return sp.simplify(expr.subs(theta, 0))


# ---------------------------------------------------------------------------------------
# Budget laws: G(z) = E[z^B] and log G(e^s) (the numeric code works with s = log phi).

BUDGET_LAWS = ("deterministic", "poisson", "two-point")

budget_pgf = {
    "deterministic": z**b,
    "poisson": sp.exp(beta * (z - 1)),
    "two-point": z**n * (1 - f + f * z),
}
"""Generating functions of the budget laws (two-point: n = floor(beta), f = beta - n)."""

budget_log_pgf_of_log = {
    "deterministic": b * s,
    "poisson": beta * (sp.exp(s) - 1),
    "two-point": n * s + sp.log(1 - f + f * sp.exp(s)),
}
"""log G(e^s) for each budget law; Lambda(theta) = sum_a log G(phi_a(theta)) with s = log phi_a."""
