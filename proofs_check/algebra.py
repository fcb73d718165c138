"""Symbolic checks (sympy): each proves an identity or inequality of DESIGN 3."""

from __future__ import annotations

import sympy as sp

from proofs_check import Outcome, check
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
       "w(l, o) = sum_{j=1..o} (l + j) = l o + o(o+1)/2")
def memory_time_identity():
    lhs = S.memory_time_sum.doit()
    ok = _zero(lhs - S.memory_time)
    return Outcome(ok, "sympy: evaluate the sum, subtract the closed form, simplify to 0",
                   f"sum = {sp.factor(lhs)}")


@check("alg1_saturated_peak", "paper",
       "Thm 3.3: saturated Alg. 1 has demand D(t) = sum_k sum_{a<=min(t,o_k-1)} b_k (l_k+a+1), "
       "nondecreasing in t and equal to sum_k b_k w_k for t >= max_k o_k - 1; so the peak is "
       "sum_k b_k w_k")
def alg1_saturated_peak():
    t = sp.Symbol("t", integer=True, nonnegative=True)
    ramp = sp.summation(b * (l + a + 1), (a, 0, t))           # t <= o - 1
    full = ramp.subs(t, o - 1)
    step = sp.simplify(ramp.subs(t, t + 1) - ramp)
    ok_full = _zero(full - b * S.memory_time)
    ok_step = _zero(step - b * (l + t + 2))
    # Several classes: each D_k is nondecreasing and constant from o_k - 1 on, so the sum is
    # nondecreasing and constant from max_k o_k - 1 on, where it equals sum_k b_k w_k.
    return Outcome(ok_full and ok_step,
                   "sympy: closed form of the ramp sum; its value at t = o-1 and its increment",
                   f"D(o-1) = {sp.factor(full)} = b w; D(t+1) - D(t) = {step} > 0")


@check("geometric_moments", "paper",
       "geometric o, P(o=k) = (1-p)^(k-1) p: E[o] = 1/p, E[o^2] = (2-p)/p^2, "
       "E[o^3] = (6-6p+p^2)/p^3 and E[w] = l/p + 1/p^2")
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
       "= e^{theta(l+1)} / (1 - (1-p) e^theta) - 1/p for theta < -ln(1-p)")
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
       "per-activation second moment; Var U = beta kappa''(0) for Poisson budgets)")
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


@check("poisson_lambda_is_beta_kappa", "reconstruction",
       "Poisson(beta) budgets: Lambda(theta) = sum_a log G(phi_a) = beta sum_a (phi_a - 1) "
       "= beta kappa(theta), since sum_a E[(e^{theta(l+a+1)} - 1) 1{o > a}] = kappa(theta)")
def poisson_lambda_is_beta_kappa():
    z = sp.Symbol("z", positive=True)
    ok_g = _zero(sp.log(S.budget_pgf["poisson"].subs(S.z, z)) - beta * (z - 1))
    # Shift a = j - 1 for fixed o (P(o > a) = 1 for a < o): the two finite sums agree.
    by_age = sp.Sum(sp.exp(theta * (l + a + 1)) - 1, (a, 0, o - 1))
    by_token = sp.Sum(sp.exp(theta * (l + j)) - 1, (j, 1, o))
    ok_shift = _zero(by_age.doit() - by_token.doit())
    # Geometric o: P(o > a) = q^a = P(o >= a + 1), so the age sum is the kappa series.
    ok_geo = _zero(S.kappa_series_term.subs(j, a + 1) - (1 - p) ** a * (sp.exp(theta * (l + a + 1)) - 1))
    return Outcome(ok_g and ok_shift and ok_geo,
                   "sympy: log of the Poisson PGF; index shift a = j - 1; geometric survival",
                   "log G(z) = beta (z - 1); sum over ages = sum over tokens")


@check("mean_and_variance_of_U", "reconstruction",
       "E[U] = Lambda'(0) = E[B] E[w] and Var U = Lambda''(0) = sum_a [E[B] Var X(a) + "
       "Var B E[X(a)]^2] for the three budget laws")
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
       "nondecreasing in s, and each s_a = log E[e^{theta X(a)}] is convex")
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


@check("rate_monotone_convex", "reconstruction",
       "I(M) = sup_{theta >= 0} [theta M - Lambda(theta)] is nondecreasing and convex in M, with "
       "I'(M) = theta*(M) (envelope); so exp(-I) decays at least exponentially in the slack "
       "M - E[U] beyond any slack where I > 0")
def rate_monotone_convex():
    M = S.M
    lam = sp.Function("Lambda")
    affine = theta * M - lam(theta)
    ok = sp.diff(affine, M) == theta and sp.diff(affine, M, 2) == 0
    return Outcome(ok, "sympy: d/dM of theta M - Lambda(theta) is theta >= 0 and d2/dM2 = 0, so I "
                       "is a supremum of nondecreasing affine functions",
                   "convexity gives I(E[U] + D) >= I(E[U] + D0) + theta*(E[U] + D0) (D - D0)")


@check("large_slack_slope", "reconstruction",
       "geometric o, Poisson budgets: kappa'(theta) -> +inf as theta -> -ln(1-p) from below, "
       "so theta*(M) -> -ln(1-p) and the slope I'(M) of the rate tends to -ln(1-p)")
def large_slack_slope():
    v, q = _positive_q()
    eps = sp.Symbol("eps", positive=True)
    kp = sp.diff(S.kappa_geometric, theta).subs(p, 1 - q)
    tmax = -sp.log(q)
    lim = sp.limit(kp.subs(theta, tmax - eps), eps, 0, "+")
    ok = lim == sp.oo
    return Outcome(ok, "sympy: limit of kappa'(theta_max - eps) as eps -> 0+ (q = 1 - p = 1/(1+v))",
                   f"limit = {lim}; theta_max = -ln(1-p)")


@check("section_4_1_constants", "paper",
       "Sec. 4.1: (l, o) = (10,20), (10,40), (10,60): w = 410, 1220, 2430; "
       "sum_k 4 w_k = 16240 <= 16492; lambda* = 16492/4060 = 4.0621 per class; at lambda = 5 "
       "Prop. 3.2 fails (20300 > 16492) and Alg. 1's queues grow by 3 per slot")
def section_4_1_constants():
    ws = [S.memory_time.subs({l: 10, o: oo}) for oo in (20, 40, 60)]
    peak = 4 * sum(ws)
    lam_star = sp.Rational(16492, sum(ws))
    load = 5 * sum(ws)
    growth = 3 * (5 - 4)
    ok = (ws == [410, 1220, 2430] and peak == 16240 and peak <= 16492
          and abs(float(lam_star) - 4.0621) < 5e-5 and load == 20300
          and load > 16492 and growth == 3)
    return Outcome(ok, "sympy: exact rational arithmetic",
                   f"w = {ws}; peak = {peak}; lambda* = {lam_star} = {float(lam_star):.6f}; "
                   f"load at 5 = {load}")


@check("budget_window", "paper",
       "the budget window (lambda, M / E[w]) is non-empty iff lambda E[w] < M (Prop. 3.2 strictly)")
def budget_window():
    lam, ew, M = sp.symbols("lambda Ew M", positive=True)
    lhs = sp.solve_univariate_inequality(lam < M / ew, lam, relational=False) & sp.Interval.open(0, sp.oo)
    rhs = sp.solve_univariate_inequality(lam * ew < M, lam, relational=False) & sp.Interval.open(0, sp.oo)
    ok = sp.simplify(lhs - rhs) == sp.EmptySet and sp.simplify(rhs - lhs) == sp.EmptySet
    return Outcome(ok, "sympy: solve both inequalities for lambda > 0", f"lambda in {lhs}")
