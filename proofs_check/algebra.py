"""Symbolic proofs (sympy) of the identities and inequalities of docs/model.md section 3, from the
expressions of :mod:`stability.theory.symbolic` that the package lambdifies or re-derives."""

from __future__ import annotations

import sympy as sp

from proofs_check import Outcome, check, sig
from stability.theory import symbolic as S

l, o, j, a, k, p, theta, b, beta, n, f, s = (S.l, S.o, S.j, S.a, S.k, S.p, S.theta, S.b,
                                             S.beta, S.n, S.f, S.s)


def _zero(expr) -> bool:
    return sp.simplify(sp.expand(expr)) == 0


def _branch(expr, which: int = 0):
    """One branch of a (possibly nested) Piecewise result, with its condition."""
    e = sp.piecewise_fold(expr)
    if isinstance(e, sp.Piecewise):
        return e.args[which][0], e.args[which][1]
    return e, True


@check("memory_time_identity", "identity",
       "w(l, o) = sum_{j=1..o} (l + j) = l o + o(o+1)/2", evidence="symbolic")
def memory_time_identity():
    lhs = S.memory_time_sum.doit()
    ok = _zero(lhs - S.memory_time)
    return Outcome(ok, "sympy: evaluate the sum, subtract the closed form, simplify to 0",
                   f"sum = {sp.factor(lhs)}")


@check("alg1_saturated_peak", "paper",
       "Thm 3.3: saturated Alg. 1 has demand D(t) = sum_k sum_{a<=min(t,o_k-1)} b_k (l_k+a+1), "
       "increasing in t up to t = o_k - 1 and equal to sum_k b_k w_k from then on; so the peak "
       "is sum_k b_k w_k (with random lengths at most sum_k b_k w(max l_k, max o_k)), which "
       "stability.theory.alg1_peak_demand returns", evidence="symbolic")
def alg1_saturated_peak():
    from stability.theory import PerClassBudget, alg1_peak_demand
    from stability.workload import Deterministic, Geometric, RequestClass, UniformInt, Workload

    d = sp.Symbol("d", integer=True, nonnegative=True)
    e = sp.Symbol("e", integer=True, positive=True)
    saturated = S.alg1_saturated_demand(o - 1 + d).doit()      # any t >= o - 1
    ok_full = _zero(saturated - b * S.memory_time)
    t_ramp = o - 1 - e                                          # any t < o - 1
    step = sp.simplify(S.alg1_saturated_demand(t_ramp + 1).doit()
                       - S.alg1_saturated_demand(t_ramp).doit())
    ok_step = _zero(step - b * (l + t_ramp + 2))
    # Several classes: each D_k is nondecreasing and constant from o_k - 1 on, so the sum is
    # nondecreasing and constant from max_k o_k - 1 on, where it equals sum_k b_k w_k.  The
    # package's number must be that closed form at the largest lengths of each class.
    cases = [
        (Workload.paper_4_1(5.0), (4, 4, 4)),
        (Workload((RequestClass(1.0, UniformInt(2, 12), UniformInt(1, 30)),
                   RequestClass(3.0, 5, Geometric(0.2, max=25)))), (3, 2)),
        (Workload((RequestClass(1.0, Deterministic(7), UniformInt(4, 9)),)), (5,)),
    ]
    worst = 0.0
    for w, budgets in cases:
        proven = sum(bk * S.memory_time.subs({l: int(c.prompt.max_value),
                                              o: int(c.decode.max_value)})
                     for bk, c in zip(budgets, w.classes))
        worst = max(worst, abs(alg1_peak_demand(w, PerClassBudget(budgets)) - float(proven)))
    return Outcome(ok_full and ok_step and worst == 0.0,
                   "sympy: the package's ramp sum alg1_saturated_demand(t) at t = o-1+d (d >= 0) "
                   "and its increment for t < o-1; alg1_peak_demand vs the proven form at the "
                   "largest lengths on 3 workloads (2 with random lengths)",
                   f"D(o-1+d) = {sp.factor(saturated)} = b w; D(t+1) - D(t) = {step} = b (l + t + 2) "
                   f"at t = o-1-e; "
                   f"alg1_peak_demand differs by {sig(worst)}")


@check("geometric_moments", "paper",
       "geometric o, P(o=k) = (1-p)^(k-1) p: E[o] = 1/p, E[o^2] = (2-p)/p^2, "
       "E[o^3] = (6-6p+p^2)/p^3 and E[w] = l/p + 1/p^2", evidence="symbolic")
def geometric_moments():
    found = []
    ok = True
    for r in (1, 2, 3):
        series, cond = _branch(sp.Sum(k**r * S.geometric_pmf, (k, 1, sp.oo)).doit())
        ok &= _zero(series - S.geometric_moment(r)) and cond in (True, sp.Abs(p - 1) < 1)
        found.append(f"E[o^{r}] = {sp.factor(S.geometric_moment(r))}")
    m1, m2 = S.geometric_moment(1), S.geometric_moment(2)
    ew = l * m1 + (m2 + m1) / 2                                # E[w], l fixed
    ok &= _zero(ew - S.geometric_mean_memory_time)
    return Outcome(ok, "sympy: infinite sums (branch |p - 1| < 1, which holds for 0 < p <= 1) "
                       "vs derivatives of the PGF p z / (1 - (1-p) z); E[l o + o(o+1)/2] from them",
                   "; ".join(found) + f"; E[w] = {sp.simplify(ew)}")


def _positive_q():
    """q = 1 - p in (0, 1) written as 1/(1+v), v > 0, so sympy knows both bounds."""
    v = sp.Symbol("v", positive=True)
    return v, 1 / (1 + v)


@check("kappa_closed_form", "reconstruction",
       "kappa(theta) = E[sum_{j=1..o} (e^{theta(l+j)} - 1)] = sum_j (1-p)^(j-1) (e^{theta(l+j)} - 1) "
       "= e^{theta(l+1)} / (1 - (1-p) e^theta) - 1/p for theta < -ln(1-p)", evidence="symbolic")
def kappa_closed_form():
    # P(o >= j) = sum_{k >= j} q^(k-1) p = q^(j-1): the weight of term j (q = 1/(1+v) < 1).
    v, q = _positive_q()
    surv = sp.Sum(q ** (k - 1) * (1 - q), (k, j, sp.oo)).doit()
    ok_surv = _zero(_branch(surv)[0] - q ** (j - 1))
    # Partial sums: closed form minus the first N terms is the remainder R_N.
    N = sp.Symbol("N", integer=True, positive=True)
    r = sp.Symbol("r", positive=True)                          # r = (1-p) e^theta
    geo = _branch(sp.summation(r ** (j - 1), (j, 1, N)), which=1)[0]   # branch r != 1
    ok_geo = _zero(geo - (1 - r**N) / (1 - r))
    remainder = sp.simplify(S.kappa_geometric - S.kappa_geometric_partial(N))
    expect = (sp.exp(theta * (l + 1)) * ((1 - p) * sp.exp(theta)) ** N
              / (1 - (1 - p) * sp.exp(theta)) - (1 - p) ** N / p)
    ok_rem = _zero(sp.simplify(remainder - expect))
    # R_N -> 0 when (1-p) e^theta < 1 and 0 < 1-p < 1: both powers vanish.
    u = sp.Symbol("u", positive=True)
    ok_lim = (sp.limit((1 / (1 + u)) ** N, N, sp.oo) == 0
              and sp.limit(q ** N, N, sp.oo) == 0)
    ok = ok_surv and ok_geo and ok_rem and ok_lim
    return Outcome(ok, "sympy: survival sum; finite geometric sum; closed form minus partial sum "
                       "= remainder; remainder -> 0 for r = (1-p)e^theta < 1",
                   f"R_N = {sp.simplify(expect)}")


@check("kappa_derivatives", "reconstruction",
       "kappa'(0) = E[w] = l/p + 1/p^2 and kappa''(0) = E[sum_{j=1..o} (l+j)^2] (the "
       "per-activation second moment; Var U = beta kappa''(0) for Poisson budgets)", evidence="symbolic")
def kappa_derivatives():
    k1 = S.kappa_derivative_at_zero(1)
    k2 = S.kappa_derivative_at_zero(2)
    sq = sp.expand(sp.summation((l + j) ** 2, (j, 1, o)))      # polynomial in l, o
    poly = sp.Poly(sq, o)
    e_sq = sum(c * S.geometric_moment(int(m[0])) if m[0] else c
               for m, c in zip(poly.monoms(), poly.coeffs()))
    ok = _zero(k1 - S.geometric_mean_memory_time) and _zero(k2 - e_sq)
    return Outcome(ok, "sympy: differentiate the closed form at 0; expectation of the "
                       "polynomial sum_j (l+j)^2 with geometric moments",
                   f"kappa'(0) = {sp.factor(k1)}; kappa''(0) = {sp.factor(k2)}")


@check("mean_and_variance_of_U", "reconstruction",
       "E[U] = Lambda'(0) = E[B] E[w] and Var U = Lambda''(0) = sum_a [E[B] Var X(a) + "
       "Var B E[X(a)]^2] for the three budget laws", evidence="symbolic")
def mean_and_variance_of_U():
    z = sp.Symbol("z", positive=True)
    m1, m2 = sp.symbols("m1 m2", positive=True)                 # E[X], E[X^2]
    details, ok = [], True
    laws = {"deterministic": (b, 0), "poisson": (beta, beta),
            "two-point": (n + f, f * (1 - f))}
    for law, (mean_b, var_b) in laws.items():
        G = S.budget_pgf[law].subs(S.z, z)
        L1 = sp.simplify(sp.diff(sp.log(G), z).subs(z, 1))
        L2 = sp.simplify(sp.diff(sp.log(G), z, 2).subs(z, 1))
        # h = log G(phi(theta)): h'(0) = L'(1) phi'(0), h''(0) = L''(1) phi'(0)^2 + L'(1) phi''(0)
        h1 = L1 * m1
        h2 = L2 * m1**2 + L1 * m2
        ok &= _zero(h1 - mean_b * m1)
        ok &= _zero(h2 - (mean_b * (m2 - m1**2) + var_b * m1**2))
        details.append(f"{law}: G'(1) = {L1}, Var B = {sp.factor(sp.simplify(L2 + L1))}")
    return Outcome(ok, "sympy: chain rule for log G(phi(theta)) at 0 with phi(0) = 1, "
                       "phi' = E[X], phi'' = E[X^2]; summed over ages gives E[B] E[w]",
                   "; ".join(details))


@check("lambda_convex", "reconstruction",
       "Lambda(theta) = sum_a log G(e^{s_a(theta)}) is convex: each log G(e^s) is convex and "
       "nondecreasing in s, and each s_a = log E[e^{theta X(a)}] is convex", evidence="symbolic")
def lambda_convex():
    g = sp.Symbol("g", positive=True)
    ok, details = True, []
    for law, expr in S.budget_log_pgf_of_log.items():
        e = expr.subs(f, 1 / (1 + g))                          # f in (0, 1)
        d1 = sp.simplify(sp.diff(e, s))
        d2 = sp.simplify(sp.diff(e, s, 2))
        good = bool(sp.simplify(d1).is_nonnegative) and bool(sp.simplify(d2).is_nonnegative)
        ok &= good
        details.append(f"{law}: d/ds = {d1}, d2/ds2 = {d2}")
    # X(a) = x 1{o > a} has two values: (log phi)'' = S(1-S) x^2 e^{theta x} / (1-S+S e^{theta x})^2.
    x = sp.Symbol("x", positive=True)
    surv = 1 / (1 + g)
    logphi = sp.log(1 - surv + surv * sp.exp(theta * x))
    d2 = sp.simplify(sp.diff(logphi, theta, 2))
    ok &= bool(d2.is_nonnegative)
    details.append(f"two-point X: (log phi)'' = {sp.factor(d2)} >= 0 (Cauchy-Schwarz in general)")
    return Outcome(ok, "sympy: signs of first and second derivatives (f = 1/(1+g), S = 1/(1+g)); "
                       "convex nondecreasing of convex is convex",
                   "; ".join(details))


@check("large_slack_slope", "reconstruction",
       "geometric o, Poisson budgets: kappa'(theta) -> +inf as theta -> -ln(1-p) from below, "
       "so theta*(M) -> -ln(1-p) and the slope I'(M) of the rate tends to -ln(1-p)", evidence="symbolic")
def large_slack_slope():
    v, q = _positive_q()
    eps = sp.Symbol("eps", positive=True)
    kp = sp.diff(S.kappa_geometric, theta).subs(p, 1 - q)
    tmax = -sp.log(q)
    lim = sp.limit(kp.subs(theta, tmax - eps), eps, 0, "+")
    ok = lim == sp.oo
    return Outcome(ok, "sympy: limit of kappa'(theta_max - eps) as eps -> 0+ (q = 1 - p = 1/(1+v))",
                   f"limit = {lim}; theta_max = -ln(1-p)")
