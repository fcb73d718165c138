"""Numeric cross-checks: the package's numbers against closed forms and slow references."""

from __future__ import annotations

import math

import numpy as np
import sympy as sp
from scipy.stats import poisson

from proofs_check import Outcome, below, check, sig
from proofs_check.brute import enumerated_pmf, panjer_pmf, saturated_alg1_demand
from stability.theory import symbolic as S
from stability.theory.budget import Budget, PerClassBudget
from stability.theory.conditions import alg1_peak_demand, lindley_mean_queue
from stability.theory.demand import DemandModel
from stability.theory.exact_tail import _tilted_pmf, exact_tail
from stability.theory.moments import demand_mean, demand_variance, mean_memory_time
from stability.theory.overflow import chernoff_rate
from stability.theory.tuning import predicted_overflow, tune_budget
from stability.workload import (
    Deterministic,
    Geometric,
    RequestClass,
    Requests,
    UniformInt,
    Workload,
)

GEOMETRIC = Workload.single(1.0, 10, Geometric(0.05))
SMALL = Workload.single(1.0, UniformInt(1, 2), UniformInt(1, 3))
MIXED = Workload((RequestClass(1.0, UniformInt(2, 3), Deterministic(2)),
                  RequestClass(2.0, Deterministic(1), UniformInt(1, 3))))


def _cases():
    """(label, workload, budget) over which the numeric checks range."""
    paper = Workload.paper_4_1(1.0)
    return [
        ("paper mix, b=10", paper, Budget(10)),
        ("paper mix, b=12", paper, Budget(12)),
        ("paper mix, Poisson 10.5", paper, Budget(10.5, "poisson")),
        ("paper mix, two-point 10.5", paper, Budget(10.5, "two-point")),
        ("paper, per-class (4,4,4)", paper, PerClassBudget((4, 4, 4))),
        ("geometric p=0.05, Poisson 3", GEOMETRIC, Budget(3.0, "poisson")),
        ("geometric p=0.05, b=3", GEOMETRIC, Budget(3)),
        ("geometric p=0.05, two-point 2.5", GEOMETRIC, Budget(2.5, "two-point")),
        ("uniform lengths, b=4", Workload.single(1.0, UniformInt(5, 50), UniformInt(1, 30)), Budget(4)),
        ("two classes, two-point 2.3", MIXED, Budget(2.3, "two-point")),
        ("paper rates 3, unthrottled", Workload.paper_4_1(3.0), "unthrottled"),
    ]


@check("requests_memory_time", "identity",
       "Requests.memory_time() equals sum_{j=1..o} (l + j) for every request", evidence="numeric")
def requests_memory_time():
    rng = np.random.default_rng(1)
    l = rng.integers(1, 3000, 2000)
    o = rng.integers(1, 3000, 2000)
    r = Requests(np.zeros(2000, dtype=int), l, o)
    direct = np.array([sum(li + jj for jj in range(1, oi + 1)) for li, oi in zip(l[:200], o[:200])])
    ok = np.array_equal(r.memory_time()[:200], direct) and \
        np.array_equal(r.memory_time(), l * o + o * (o + 1) // 2)
    return Outcome(bool(ok), "numeric: 2000 random (l, o), 200 by explicit summation", "exact equality")


@check("alg1_peak_simulated", "paper",
       "saturated Alg. 1 on the Sec. 4.1 classes with b = (4, 4, 4): demand rises to "
       "sum_k b_k w_k = 16240 by slot 59 and never exceeds it", evidence="numeric")
def alg1_peak_simulated():
    demand = saturated_alg1_demand((10, 10, 10), (20, 40, 60), (4, 4, 4), 200)
    peak = alg1_peak_demand(Workload.paper_4_1(5.0), PerClassBudget((4, 4, 4)))
    ok = (demand.max() == 16240 == peak and np.all(demand[59:] == 16240)
          and np.all(np.diff(demand[:60]) > 0))
    return Outcome(bool(ok), "numeric: slot-by-slot saturated Alg. 1 (docs/model.md 2.2 order)",
                   f"max = {demand.max()}, first slot at peak = {int(np.argmax(demand))}, "
                   f"alg1_peak_demand = {peak:g}")


@check("moments_vs_closed_forms", "reconstruction",
       "numeric E[w] and kappa''(0) of stability.theory.moments equal the closed forms "
       "l/p + 1/p^2 and (l^2 p^2 + 2 l p - p + 2)/p^3 for geometric o", evidence="numeric")
def moments_vs_closed_forms():
    from stability.theory.moments import mean_square_demand_sum

    k2 = sp.lambdify((S.l, S.p), S.kappa_derivative_at_zero(2))
    worst = 0.0
    for l in (1, 10, 1000):
        for p in (0.9, 0.3, 0.05, 0.002):
            c = RequestClass(1.0, Deterministic(l), Geometric(p))
            worst = max(worst, abs(mean_memory_time(c) / (l / p + 1 / p**2) - 1),
                        abs(mean_square_demand_sum(c) / k2(l, p) - 1))
    # A bounded law, against explicit sums over its table.
    c = RequestClass(1.0, UniformInt(3, 9), UniformInt(1, 50))
    direct = np.mean([[l * o + o * (o + 1) / 2 for o in range(1, 51)] for l in range(3, 10)])
    worst = max(worst, abs(mean_memory_time(c) / direct - 1))
    return Outcome(worst < 1e-12, "numeric: 12 geometric cases and a uniform case",
                   f"max relative error {below(worst)}")


@check("kappa_numeric", "reconstruction",
       "DemandModel's Lambda for Poisson(beta) budgets and geometric o equals beta kappa(theta) "
       "(closed form) up to theta_max, including the analytic tail beyond the age table", evidence="numeric")
def kappa_numeric():
    kap = sp.lambdify((S.theta, S.l, S.p), S.kappa_geometric)
    model = DemandModel(GEOMETRIC, Budget(3.0, "poisson"))
    tmax = -math.log(0.95)
    worst = 0.0
    for th in (1e-4, 0.01, 0.03, 0.05, tmax * 0.999):
        worst = max(worst, abs(model.log_mgf(th) / (3.0 * kap(th, 10, 0.05)) - 1))
    ok = worst < 1e-10 and math.isclose(model.theta_max, tmax, rel_tol=1e-15)
    return Outcome(ok, "numeric: 5 values of theta up to 0.999 theta_max",
                   f"max relative error {below(worst)}; theta_max = {sig(model.theta_max)}")


@check("mean_variance_numeric", "reconstruction",
       "E[U] = E[B] E[w] and Var U = sum_a [E[B] Var X(a) + Var B E[X(a)]^2] agree with "
       "Lambda'(0), a finite difference of Lambda', and the FFT pmf of U", evidence="numeric")
def mean_variance_numeric():
    worst_mean = worst_var = worst_fft = 0.0
    for label, w, b in _cases():
        model = DemandModel(w, b)
        mean, var = demand_mean(w, b), demand_variance(w, b)
        worst_mean = max(worst_mean, abs(model.dlog_mgf(0.0) / mean - 1))
        if var > 0:
            h = 1e-3 / math.sqrt(var)
            fd = (model.dlog_mgf(h) - model.dlog_mgf(0.0)) / h
            worst_var = max(worst_var, abs(fd / var - 1))
            n = 1 << int(math.ceil(math.log2(mean + 40 * math.sqrt(var) + 64)))
            pmf, _ = _tilted_pmf(model, 0.0, n)
            u = np.arange(n)
            m_fft = float(np.dot(u, pmf))
            v_fft = float(np.dot((u - m_fft) ** 2, pmf))
            worst_fft = max(worst_fft, abs(m_fft / mean - 1), abs(v_fft / var - 1))
    ok = worst_mean < 1e-12 and worst_var < 1e-3 and worst_fft < 1e-9
    return Outcome(ok, f"numeric: {len(_cases())} workloads and budgets",
                   f"max rel. error: Lambda'(0) {below(worst_mean)}, finite difference "
                   f"{below(worst_var)}, FFT moments {below(worst_fft)}")


@check("budget_law_forms", "identity",
       "the stable numeric log G(e^s) and its derivative equal the lambdified symbolic forms", evidence="numeric")
def budget_law_forms():
    worst = 0.0
    s_grid = np.linspace(0.0, 8.0, 33)
    for b in (Budget(7), Budget(3.7, "poisson"), Budget(3.7, "two-point"), Budget(4.0, "two-point")):
        subs = {S.b: b.mean, S.beta: b.mean, S.n: b.floor, S.f: b.frac}
        expr = S.budget_log_pgf_of_log[b.law].subs(subs)
        value = sp.lambdify(S.s, expr, "numpy")(s_grid)
        deriv = sp.lambdify(S.s, sp.diff(expr, S.s), "numpy")(s_grid)
        worst = max(worst, float(np.max(np.abs(b.log_pgf_of_log(s_grid) - value) / (1 + np.abs(value)))),
                    float(np.max(np.abs(b.dlog_pgf_of_log(s_grid) - deriv) / (1 + np.abs(deriv)))))
    return Outcome(worst < 1e-12, "numeric: 33 values of s for 4 budgets",
                   f"max relative error {below(worst)}")


@check("lambda_convex_numeric", "reconstruction",
       "Lambda(theta) computed by DemandModel is convex on [0, theta_max) for every case", evidence="numeric")
def lambda_convex_numeric():
    worst = 0.0
    for label, w, b in _cases():
        model = DemandModel(w, b)
        top = min(model.theta_max * 0.98, 0.5)
        grid = np.linspace(0.0, top, 41)
        lam = np.array([model.log_mgf(t) for t in grid])
        d2 = lam[2:] - 2 * lam[1:-1] + lam[:-2]
        worst = min(worst, float(np.min(d2 / (1e-300 + np.abs(lam[1:-1]) + 1e-12))))
    return Outcome(worst > -1e-9, f"numeric: second differences on 41 points, {len(_cases())} cases",
                   "smallest relative second difference "
                   + (">= 0" if worst >= 0 else "> -" + below(worst)[2:]))


@check("rate_monotone_numeric", "reconstruction",
       "I(E[U] + D) is 0 at D <= 0, increasing and convex in the slack D, so the bound "
       "T exp(-I(M)) decays (at least) exponentially in the slack - the paper's headline claim", evidence="numeric")
def rate_monotone_numeric():
    bad = []
    for label, w, b in _cases():
        model = DemandModel(w, b)
        mean, sd = demand_mean(w, b), math.sqrt(max(demand_variance(w, b), 1e-12))
        top = min(model.max_value - 1, mean + 30 * sd)
        if top <= mean:
            continue
        levels = np.linspace(mean - sd, top, 40)
        rates = np.array([chernoff_rate(model, x).rate for x in levels])
        d1 = np.diff(rates)
        d2 = np.diff(rates, 2)
        if rates[0] != 0 or np.any(d1 < -1e-9) or np.any(d2 < -1e-7 * (1 + rates[2:])):
            bad.append(label)
    return Outcome(not bad, "numeric: 40 levels from E[U] - sd to E[U] + 30 sd per case",
                   "all cases monotone and convex" if not bad else f"failed: {bad}")


@check("large_slack_slope_numeric", "reconstruction",
       "geometric o (p = 0.05): theta*(M) increases to -ln(1-p) and the slope of I(M) at large "
       "M is within 1% of -ln(1-p), for Poisson, deterministic and two-point budgets", evidence="numeric")
def large_slack_slope_numeric():
    tmax = -math.log(0.95)
    details, ok = [], True
    for b in (Budget(3.0, "poisson"), Budget(3), Budget(2.5, "two-point")):
        model = DemandModel(GEOMETRIC, b)
        gaps = []
        for M in (1e4, 1e5, 1e6, 1e7, 1e8):
            gaps.append(tmax - chernoff_rate(model, M).theta)
        slope = (chernoff_rate(model, 2e8).rate - chernoff_rate(model, 1e8).rate) / 1e8
        ok &= all(g2 < g1 for g1, g2 in zip(gaps, gaps[1:])) and gaps[-1] > 0
        ok &= abs(slope / tmax - 1) < 0.01
        details.append(f"{b.describe()}: slope {sig(slope)}")
    return Outcome(ok, "numeric: theta* at M = 1e4..1e8; slope (I(2e8) - I(1e8)) / 1e8",
                   f"theta_max = {sig(tmax)}; " + "; ".join(details))


@check("fft_tail_vs_enumeration", "beyond",
       "the FFT tail P(U > m) equals brute-force enumeration (deterministic, two-point budgets) "
       "and Panjer's recursion (Poisson budgets) at every level", evidence="numeric")
def fft_tail_vs_enumeration():
    worst, compared = 0.0, 0
    for w, b in ((SMALL, Budget(2)), (SMALL, Budget(1.5, "two-point")), (MIXED, Budget(1)),
                 (MIXED, Budget(1.4, "two-point")), (Workload.paper_4_1(1.0).scaled(1.0), Budget(1))):
        if b.mean * max(c.decode.max_value for c in w.classes) > 8:
            pmf = _conv_reference(w, b)
        else:
            d = enumerated_pmf(w, b)
            pmf = np.zeros(max(d) + 1)
            for u, pr in d.items():
                pmf[u] += pr
        tail = np.concatenate([np.cumsum(pmf[::-1])[::-1][1:], [0.0]])
        levels = np.arange(pmf.size)
        got = exact_tail(w, b, levels, unit=1).prob
        ref_ok = tail > 1e-300
        worst = max(worst, float(np.max(np.abs(got[ref_ok] / tail[ref_ok] - 1))))
        worst = max(worst, float(np.max(got[~ref_ok])) if np.any(~ref_ok) else 0.0)
        compared += pmf.size
    for w, beta in ((SMALL, 1.6), (MIXED, 0.8)):
        g = panjer_pmf(w, Budget(beta, "poisson"), 400)
        tail = 1.0 - np.cumsum(g)
        levels = np.arange(60)
        got = exact_tail(w, Budget(beta, "poisson"), levels, unit=1).prob
        ref = np.concatenate([np.cumsum(g[::-1])[::-1][1:], [0.0]])[:60]
        keep = ref > 1e-250
        worst = max(worst, float(np.max(np.abs(got[keep] / ref[keep] - 1))))
        compared += int(keep.sum())
        del tail
    return Outcome(worst < 1e-6, f"numeric: {compared} levels, 7 tiny cases",
                   f"max relative error {below(worst)}")


def _conv_reference(w: Workload, b: Budget) -> np.ndarray:
    """pmf of U by direct convolution, age by age (deterministic budgets; no FFT)."""
    from stability.theory.budget import class_mix

    weights = class_mix(w)
    ages = max(int(c.decode.max_value) for c in w.classes)
    total = np.ones(1)
    for a in range(ages):
        x = np.zeros(1)
        for wt, c in zip(weights, w.classes):
            lv, lp = c.prompt.pmf()
            s = float(np.sum(c.decode.pmf()[1][c.decode.pmf()[0] > a]))
            top = int(lv.max()) + a + 2
            if x.size < top:
                x = np.pad(x, (0, top - x.size))
            x[0] += wt * (1 - s)
            for li, pl in zip(lv, lp):
                x[int(li) + a + 1] += wt * s * pl
        for _ in range(int(b.mean)):
            total = np.convolve(total, x)
    return total


@check("chernoff_dominates_exact", "reconstruction",
       "the Chernoff bound exp(-I(m)) is >= the exact tail P(U > m) at every level tried, from "
       "E[U] to E[U] + 12 sd, for every case; and chernoff_rate's I(m) is the supremum: "
       "I(m) >= theta m - Lambda(theta) for every theta >= 0 on a grid, with equality at the "
       "returned theta*", evidence="numeric")
def chernoff_dominates_exact():
    worst, gap, n = 0.0, 0.0, 0
    rows = []
    for label, w, b in _cases():
        mean, sd = demand_mean(w, b), math.sqrt(max(demand_variance(w, b), 0.0))
        model = DemandModel(w, b)
        levels = np.unique(np.clip(np.round(mean + sd * np.array([0.5, 1, 2, 3, 5, 8, 12])), 0,
                                   None).astype(int))
        exact = exact_tail(w, b, levels, unit=1)
        rates = [chernoff_rate(model, x) for x in levels]
        bound = np.array([math.exp(-r.rate) for r in rates])
        pos = exact.prob > 0
        if np.any(bound[~pos] < 0):
            worst = math.inf
        if np.any(pos):
            worst = max(worst, float(np.max(exact.prob[pos] / bound[pos])))
        # the other side: a rate that is too small (a bound too weak) must fail too
        for x, r in zip(levels, rates):
            if math.isinf(r.rate):
                continue
            top = 4.0 * r.theta + 1.0 / max(sd, 1.0)
            if math.isfinite(model.theta_max):
                top = min(top, model.theta_max * (1 - 1e-6))
            for th in np.append(np.linspace(0.0, top, 201), r.theta):
                excess = (th * x - model.log_mgf(th)) - r.rate
                gap = max(gap, excess / (1.0 + r.rate))
            gap = max(gap, abs(r.theta * x - model.log_mgf(r.theta) - r.rate) / (1.0 + r.rate))
        n += levels.size
        i = int(np.argmin(np.abs(levels - (mean + 3 * sd))))
        rows.append(f"{label}: at E+3sd bound {sig(bound[i], 3)} vs exact {sig(exact.prob[i], 3)}")
    return Outcome(worst <= 1.0 + 1e-9 and gap <= 1e-9,
                   f"numeric: {n} levels over {len(_cases())} cases, exact tail on the unit "
                   "lattice; 202 values of theta in [0, 4 theta* + 1/sd] per level",
                   f"max exact/bound = {sig(worst, 3)}; max (theta m - Lambda(theta) - I(m)) / "
                   f"(1 + I) {'<= 0' if gap <= 0 else below(gap)}; " + "; ".join(rows[:4]))


def _markov_chain_mean(lam: float, b: Budget, size: int = 600) -> float:
    """E[Q] of the Lindley walk from its truncated transition matrix (dense solve)."""
    bv, bp = b.pmf()
    arrivals = poisson.pmf(np.arange(size + int(bv.max()) + 1), lam)
    P = np.zeros((size, size))
    for q in range(size):
        for bb, pb in zip(bv, bp):
            nxt = np.maximum(q + np.arange(arrivals.size) - bb, 0)
            keep = nxt < size
            np.add.at(P[q], nxt[keep], pb * arrivals[keep])
    P /= P.sum(axis=1, keepdims=True)
    A = P.T - np.eye(size)
    A[-1] = 1.0
    rhs = np.zeros(size)
    rhs[-1] = 1.0
    pi = np.linalg.solve(A, rhs)
    return float(pi @ np.arange(size))


@check("lindley_mean_crosscheck", "beyond",
       "the Lindley mean by one FFT of Spitzer's identity equals Spitzer's series (deterministic "
       "budgets) and the stationary mean of the truncated Markov chain (all laws)", evidence="numeric")
def lindley_mean_crosscheck():
    worst, rows = 0.0, []
    for lam, b in ((3.0, Budget(4)), (0.5, Budget(1)), (3.0, Budget(4.0, "poisson")),
                   (3.0, Budget(3.5, "two-point")), (6.0, Budget(7.3, "two-point"))):
        fft = lindley_mean_queue(lam, b).mean_queue
        chain = _markov_chain_mean(lam, b)
        worst = max(worst, abs(fft / chain - 1))
        if b.law == "deterministic":
            worst = max(worst, abs(fft / lindley_mean_queue(lam, b, method="series").mean_queue - 1))
        rows.append(f"lambda={lam}, {b.describe()}: {sig(fft)}")
    return Outcome(worst < 1e-8, "numeric: 5 cases, chain truncated at 600 states",
                   f"max relative difference {below(worst)}; " + "; ".join(rows))


@check("tuner_monotone", "beyond",
       "predicted overflow is nondecreasing in the budget (Chernoff and exact), and the tuned "
       "budget meets the target while one resolution step more does not", evidence="numeric")
def tuner_monotone():
    w, M = Workload.paper_4_1(3.0), 16492
    ok, rows = True, []
    for method in ("chernoff", "exact"):
        for law in ("deterministic", "poisson", "two-point"):
            grid = [8, 9, 10, 11, 12] if law == "deterministic" else [8.0, 9.0, 9.5, 10.0, 10.5, 11.0]
            vals = [predicted_overflow(w, Budget(x, law), M, method) for x in grid]
            ok &= all(v2 >= v1 * (1 - 1e-9) for v1, v2 in zip(vals, vals[1:]))
            t = tune_budget(w, M, 1e-6, law, method, resolution=1e-2)
            step = 1.0 if law == "deterministic" else 1e-2
            ok &= t.overflow <= 1e-6 < predicted_overflow(w, Budget(t.budget + step, law), M, method)
            rows.append(f"{method}/{law}: {sig(t.budget)}")
    return Outcome(bool(ok), "numeric: Sec. 4.1 mix at lambda = 3 per class, M = 16492, "
                             "target 1e-6", "; ".join(rows))


@check("poisson_lambda_is_beta_kappa", "reconstruction",
       "Poisson(beta) budgets: Lambda(theta) = sum_a log G(phi_a) = beta sum_a (phi_a - 1) "
       "= beta kappa(theta), kappa(theta) = E[sum_{j=1..o} (e^{theta(l+j)} - 1)] over the class "
       "mix; DemandModel's Lambda for Poisson budgets (and for 'unthrottled', sum_k lambda_k "
       "kappa_k) equals it", evidence="numeric")
def poisson_lambda_is_beta_kappa():
    from stability.theory.budget import class_mix

    def kappa_direct(c, theta):
        """E[sum_{j=1..o} (e^{theta(l+j)} - 1)] by explicit sums over the pmf tables."""
        lv, lp = c.prompt.pmf()
        ov, op = c.decode.pmf()
        return sum(pl * po * sum(math.expm1(theta * (li + jj)) for jj in range(1, int(oi) + 1))
                   for li, pl in zip(lv, lp) for oi, po in zip(ov, op))

    worst, cases = 0.0, 0
    for w in (SMALL, MIXED, Workload.single(1.0, UniformInt(5, 40), UniformInt(1, 25)),
              Workload.paper_4_1(2.0)):
        mix = class_mix(w)
        for theta in (0.0, 1e-3, 0.02, 0.1):
            kap = sum(m * kappa_direct(c, theta) for m, c in zip(mix, w.classes))
            for beta in (0.5, 3.7):
                got = DemandModel(w, Budget(beta, "poisson")).log_mgf(theta)
                worst = max(worst, abs(got - beta * kap) / (1e-300 + abs(beta * kap)) if kap else abs(got))
            unthrottled = DemandModel(w, "unthrottled").log_mgf(theta)
            expect = sum(c.rate * kappa_direct(c, theta) for c in w.classes)
            worst = max(worst, abs(unthrottled - expect) / (1e-300 + abs(expect)) if expect
                        else abs(unthrottled))
            cases += 1
    return Outcome(worst < 1e-12, f"numeric: {cases} (workload, theta) pairs with bounded lengths, "
                                  "kappa by explicit double sums over (l, o); Poisson beta = 0.5 "
                                  "and 3.7, and unthrottled",
                   f"max relative error {below(worst)}")


@check("rate_monotone_convex", "reconstruction",
       "I(M) = sup_{theta >= 0} [theta M - Lambda(theta)] has I'(M) = theta*(M) (envelope) and "
       "theta*(M) is nondecreasing, so I is nondecreasing and convex in M and exp(-I) decays at "
       "least exponentially in the slack M - E[U]: chernoff_rate's I and theta* satisfy both",
       evidence="numeric")
def rate_monotone_convex():
    worst_env, worst_mono, n = 0.0, 0.0, 0
    for label, w, b in _cases():
        model = DemandModel(w, b)
        mean, sd = demand_mean(w, b), math.sqrt(max(demand_variance(w, b), 1e-12))
        top = min(model.max_value - 2 * max(1.0, sd / 50), mean + 20 * sd)
        if top <= mean + sd:
            continue
        levels = np.linspace(mean + 0.5 * sd, top, 25)
        thetas = []
        for x in levels:
            h = 1e-3 * sd
            r = chernoff_rate(model, x)
            slope = (chernoff_rate(model, x + h).rate - chernoff_rate(model, x - h).rate) / (2 * h)
            worst_env = max(worst_env, abs(slope - r.theta) / r.theta)
            thetas.append(r.theta)
            n += 1
        worst_mono = max(worst_mono, float(np.max(-np.diff(thetas) / np.array(thetas[1:]))))
    ok = worst_env < 1e-4 and worst_mono <= 0.0
    return Outcome(ok, f"numeric: {n} levels from E[U] + sd/2 to E[U] + 20 sd over the cases; "
                       "central difference of I (step sd/1000) vs theta*; theta* along the levels",
                   f"max relative |I'(M) - theta*(M)| {below(worst_env)}; theta* "
                   f"{'nondecreasing' if worst_mono <= 0 else 'DECREASES by ' + sig(worst_mono)}")


@check("section_4_1_constants", "paper",
       "Sec. 4.1: (l, o) = (10,20), (10,40), (10,60): w = 410, 1220, 2430; "
       "sum_k 4 w_k = 16240 <= 16492; lambda* = 16492/4060 = 4.0621 per class; at lambda = 5 "
       "Prop. 3.2 fails (20300 > 16492) and Alg. 1's queues grow by 3 per slot",
       evidence="numeric")
def section_4_1_constants():
    from stability.theory import (
        alg1_condition,
        critical_rate,
        necessary_condition,
        queue_drift,
    )

    memory = 16492
    w = Workload.paper_4_1(5.0)
    budgets = PerClassBudget((4, 4, 4))
    # exact rational arithmetic from the symbolic memory-time, for the package to match
    exact_w = [S.memory_time.subs({S.l: 10, S.o: oo}) for oo in (20, 40, 60)]
    got_w = [mean_memory_time(c) for c in w.classes]
    peak = alg1_peak_demand(w, budgets)
    per_class = critical_rate(w, memory) / 3
    nec = necessary_condition(w, memory)
    cond = alg1_condition(w, budgets, memory)
    drift = queue_drift(w, budgets)
    ok = (got_w == [410, 1220, 2430] == exact_w
          and peak == 16240 == 4 * sum(exact_w) and cond.inequality_2
          and math.isclose(per_class, float(sp.Rational(memory, sum(exact_w))), rel_tol=1e-14)
          and round(per_class, 4) == 4.0621
          and nec.load == 20300 and not nec.holds and not cond.stable
          and drift == 3.0)
    return Outcome(ok, "numeric: the package on Workload.paper_4_1(5.0) (mean_memory_time, "
                       "alg1_peak_demand, critical_rate, necessary_condition, alg1_condition, "
                       "queue_drift) vs the paper's numbers and exact sympy rationals",
                   f"w = {', '.join(sig(x) for x in got_w)}; peak = {sig(peak, 6)}; lambda* per class = "
                   f"{sig(per_class, 6)}; load at 5 = {sig(nec.load, 6)} (holds: {nec.holds}); "
                   f"drift = {sig(drift)}")


@check("budget_window", "paper",
       "the budget window (lambda, M / E[w]) is non-empty iff lambda E[w] < M (Prop. 3.2 "
       "strictly): stability.theory.budget_window on cases inside, outside and at the boundary",
       evidence="numeric")
def budget_window():
    from stability.theory import budget_window as window
    from stability.theory import necessary_condition

    lam, ew, m = sp.symbols("lambda Ew M", positive=True)
    solved = sp.solve_univariate_inequality(lam * ew < m, lam, relational=False)
    cases = [  # (workload, M): inside, outside, exactly at the boundary
        (Workload.paper_4_1(3.0), 16492), (Workload.paper_4_1(5.0), 16492),
        (Workload.single(5.0, 1, 1), 10), (Workload.single(5.0, 1, 1), 11),
        (Workload.single(5.0, 1, 1), 9), (MIXED, 20), (MIXED, 17),
    ]
    rows, ok = [], True
    for w, memory in cases:
        ew_num = sum(c.rate * mean_memory_time(c) for c in w.classes) / w.total_rate
        win = window(w, memory)
        expect = bool(solved.contains(sp.nsimplify(w.total_rate)).subs(
            {ew: sp.nsimplify(ew_num), m: memory}))
        ok &= (win.nonempty == expect == necessary_condition(w, memory).strict
               and win.low == w.total_rate and math.isclose(win.high, memory / ew_num, rel_tol=1e-15))
        rows.append(f"lambda={sig(w.total_rate)}, M/E[w]={sig(memory / ew_num)}: "
                    f"{'non-empty' if win.nonempty else 'empty'}")
    return Outcome(ok, f"numeric: {len(cases)} workloads, 2 of them at lambda E[w] = M exactly; "
                       "sympy's solution of lambda E[w] < M as the reference",
                   f"lambda in {solved}; " + "; ".join(rows))
