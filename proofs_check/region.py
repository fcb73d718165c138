"""Checks of the effective-rate condition of issue 16 (docs/theory_region.md).

The proposition: with U the saturated, eviction-free demand, h = l_min + 1 and
r_bar = E[ceil((U - M)^+ / h)], lambda < E[B] - r_bar implies rate stability of Alg. 2
(in the fresh-length relaxation).  Its algebra is checked symbolically, the package's
numbers against enumeration and its pathwise premise against the simulator.
"""

from __future__ import annotations

import math

import numpy as np
import sympy as sp

from proofs_check import Outcome, check
from proofs_check.brute import enumerated_pmf, panjer_pmf
from stability.theory.budget import Budget
from stability.theory.effective import (corrected_window, effective_rate, loss_rate_bound,
                                        removal_unit)
from stability.workload import Deterministic, RequestClass, UniformInt, Workload


@check("removal_count_lemma", "beyond",
       "one slot's LIFO removals each free at least h = l_min + 1 tokens, so a slot with "
       "demand R removes at most ceil((R - M)^+ / h) requests; and for integer Y >= 0, "
       "ceil(Y / h) = sum_{k >= 0} 1{Y > k h}, so E[ceil((U - M)^+ / h)] = "
       "sum_{k >= 0} P(U > M + k h)", evidence="symbolic")
def removal_count_lemma():
    # sympy: ceil(x/h) h >= x > (ceil(x/h) - 1) h for x = q h + r, 0 < r <= h (q >= 0
    # integer), where ceil(x/h) = q + 1: the first removal count that clears the excess
    q = sp.Symbol("q", integer=True, nonnegative=True)
    hh, rr = sp.symbols("h r", positive=True)
    x = q * hh + rr
    kstar = q + 1  # ceil((q h + r) / h) for 0 < r <= h
    cleared = sp.simplify(kstar * hh - x)          # = h - r >= 0
    not_yet = sp.simplify(x - (kstar - 1) * hh)    # = r > 0
    ok_sym = _nonneg_given(cleared, rr, hh) and sp.simplify(not_yet - rr) == 0
    # exhaustive: ceil(Y/h) = #{k >= 0 : Y > k h} and the ceiling formula, integers
    count_ok = all(sum(1 for kk in range(0, y + 1) if y > kk * h) == math.ceil(y / h)
                   and (y == 0 or (y - (math.ceil(y / h) - 1) * h > 0
                                   and y - math.ceil(y / h) * h <= 0))
                   for h in range(1, 13) for y in range(0, 301))
    return Outcome(ok_sym and count_ok,
                   "sympy: x = q h + r, 0 < r <= h needs q + 1 removals; exhaustive integer "
                   "check (Y <= 300, h <= 12) of the count identity",
                   f"ceil(x/h) h - x = {cleared} >= 0 and x - (ceil(x/h) - 1) h = {not_yet} > 0")


def _nonneg_given(expr, r, h) -> bool:
    """expr = h - r is >= 0 on 0 < r <= h."""
    return sp.simplify(expr - (h - r)) == 0


@check("loss_chernoff_closed_form", "beyond",
       "sum_{k >= 0} exp(-I(M + k h)) <= exp(-I(M)) / (1 - exp(-theta* h)): I is convex with "
       "I'(M) = theta* > 0, so I(M + k h) >= I(M) + theta* k h, and the geometric series sums "
       "to the closed form", evidence="symbolic")
def loss_chernoff_closed_form():
    k = sp.Symbol("k", integer=True, nonnegative=True)
    big_i, th, hh, rho = sp.symbols("I theta h rho", positive=True)
    # e^{-I - theta k h} = e^{-I} rho^k with rho = e^{-theta h} in (0, 1) for theta h > 0
    series = sp.piecewise_fold(sp.summation(rho**k, (k, 0, sp.oo)))
    cond = True
    if isinstance(series, sp.Piecewise):
        series, cond = series.args[0]
    converges = bool(cond.subs(rho, sp.Rational(1, 2))) if cond is not True else True
    total = sp.exp(-big_i) * series.subs(rho, sp.exp(-th * hh))
    closed = sp.exp(-big_i) / (1 - sp.exp(-th * hh))
    ok = sp.simplify(total - closed) == 0 and converges
    # numeric: the package's Chernoff loss equals the closed form, and is >= the exact sum
    w = Workload.paper_4_1(1.0)
    ch = loss_rate_bound(w, 11, 16492, "chernoff")
    ex = loss_rate_bound(w, 11, 16492, "exact", max_levels=1000)
    ok_num = (math.isclose(ch.loss, ch.overflow * ch.removals_per_overflow, rel_tol=1e-12)
              and ch.loss >= ex.loss)
    return Outcome(ok and ok_num,
                   "sympy: sum of the geometric series; numeric: Sec. 4.1 mix, b = 11",
                   f"sum = {sp.simplify(total)} (rho^k series for |rho| < 1); b = 11: Chernoff r_bar = {ch.loss:.4g} >= "
                   f"exact {ex.loss:.4g}")


@check("effective_rate_condition", "beyond",
       "while the queue is long every slot admits B_t and returns N_t removed requests, so "
       "Q_T - Q_0 = sum_t (A_t + N_t - B_t) and the drift is lambda + r - E[B]; it is < 0 iff "
       "lambda < E[B] - r; since r_bar >= r the corrected window "
       "{beta: beta - r_bar(beta) > lambda} lies inside (lambda, inf) and shrinks as r_bar grows",
       evidence="symbolic")
def effective_rate_condition():
    lam, eb, rr, rb = sp.symbols("lambda EB r rbar", nonnegative=True)
    drift = lam + rr - eb
    sol = sp.solve_univariate_inequality(drift < 0, lam, relational=False)
    target = sp.solve_univariate_inequality(lam < eb - rr, lam, relational=False)
    ok_drift = sp.simplify(sol.symmetric_difference(target)) == sp.EmptySet
    # r <= r_bar: the certified condition implies the true one
    implies = sp.Implies(sp.And(eb - rb - lam > 0, rr <= rb), eb - rr - lam > 0)
    ok_implies = all(bool(implies.subs({lam: lv, eb: ev, rr: rv, rb: bv}))
                     for lv in (0, 1, 5) for ev in (0, 2, 6) for rv in (0, 0.5, 3)
                     for bv in (0, 0.5, 3, 10))
    # numeric: the package's corrected window sits inside the reconstructed one and only
    # holds budgets that satisfy the condition (Sec. 4.1 mix at 3.0 per class)
    w = Workload.paper_4_1(3.0)
    cw = corrected_window(w, 16492, "two-point")
    ok_window = (cw.nonempty and cw.reconstructed[0] < cw.low <= cw.high < cw.reconstructed[1]
                 and all(effective_rate(w, Budget(x, "two-point"), 16492).holds
                         for x in np.linspace(cw.low, cw.high, 7)))
    empty = not corrected_window(Workload.paper_4_1(3.9), 16492, "deterministic").nonempty
    return Outcome(ok_drift and ok_implies and ok_window and empty,
                   "sympy: solve the drift inequality; truth table of the implication; "
                   "numeric: corrected windows of the Sec. 4.1 mix",
                   f"drift < 0 iff lambda in {sol}; 3.0 per class two-point corrected window "
                   f"[{cw.low:.4g}, {cw.high:.4g}] in ({cw.reconstructed[0]:.4g}, "
                   f"{cw.reconstructed[1]:.4g}); 3.9 per class deterministic: empty = {empty}")


@check("loss_bound_vs_enumeration", "beyond",
       "the package's exact r_bar equals E[ceil((U - M)^+ / h)] computed from the enumerated "
       "law of U (deterministic, two-point budgets) and from Panjer's recursion (Poisson), "
       "and the Chernoff r_bar is never below it", evidence="numeric")
def loss_bound_vs_enumeration():
    cases = [
        (Workload.single(1.0, UniformInt(1, 2), UniformInt(1, 3)), Budget(2)),
        (Workload.single(1.0, UniformInt(1, 3), Deterministic(3)), Budget(1.5, "two-point")),
        (Workload((RequestClass(1.0, UniformInt(2, 3), Deterministic(2)),
                   RequestClass(2.0, Deterministic(1), UniformInt(1, 3)))),
         Budget(1.4, "two-point")),
        (Workload.single(1.0, UniformInt(1, 3), UniformInt(1, 4)), Budget(2.5, "poisson")),
    ]
    worst, n, below = 0.0, 0, 0
    for w, b in cases:
        if b.law == "poisson":
            pmf = panjer_pmf(w, b, 400)
        else:
            d = enumerated_pmf(w, b)
            pmf = np.zeros(max(d) + 1)
            for u, pr in d.items():
                pmf[u] = pr
        h = removal_unit(w)
        mean = float(np.dot(np.arange(pmf.size), pmf))
        for memory in range(max(1, int(mean) - 3), int(mean) + 10, 2):
            u = np.arange(pmf.size)
            ref = float(np.dot(pmf, np.ceil(np.maximum(u - memory, 0) / h)))
            got = loss_rate_bound(w, b, memory, "exact", max_levels=5000).loss
            ch = loss_rate_bound(w, b, memory, "chernoff").loss
            worst = max(worst, abs(got - ref) / max(ref, 1e-9 * max(1.0, b.mean)))
            below += ch < got - 1e-12
            n += 1
    return Outcome(worst < 1e-5 and below == 0,
                   f"numeric: {n} (case, M) pairs, 4 tiny cases",
                   f"max relative error {worst:.1e}; Chernoff below exact: {below}")


@check("removals_pathwise_identical_requests", "beyond",
       "with identical requests (the rigorous case) the simulated removals up to T never exceed "
       "sum_{t<T} ceil((U_t - M)^+ / h), U_t the eviction-free demand of b activations per "
       "slot, in both engines", evidence="numeric")
def removals_pathwise_identical_requests():
    from stability import FlowControl, Requests, simulate

    checked, worst = 0, 0.0
    ok = True
    for l, o, bb in [(1, 3, 2), (2, 5, 3), (3, 6, 4), (5, 4, 2), (10, 20, 3)]:
        stationary = bb * sum(l + a + 1 for a in range(o))
        for slack in (-25, -9, -3, 0, 4):
            memory = max(l + o + 1, stationary + slack)
            slots = 80
            n = bb * slots + 10
            req = Requests(np.zeros(n, int), np.full(n, l), np.full(n, o))
            bound = sum(math.ceil(max(bb * sum(l + a + 1 for a in range(min(t + 1, o)))
                                      - memory, 0) / (l + 1)) for t in range(slots))
            for engine in ("fast", "reference"):
                m = simulate(req, FlowControl(bb), memory, horizon=slots, seed=0,
                             engine=engine).metrics()
                removed = m.bounces + m.evictions
                ok &= removed <= bound
                if bound:
                    worst = max(worst, removed / bound)
                checked += 1
    return Outcome(ok, f"numeric: {checked} saturated runs (5 shapes x 5 capacities x 2 engines)",
                   f"largest removals / bound = {worst:.3f}")
