"""Checks of the neighbouring papers' claims as encoded in ``stability.theory.neighbours``
(issue 15): Ao et al.'s cycle loss and survival-polynomial roots, Nie et al.'s service
rate in unit slots, Li-Dai-Peng's Theorem 2 boundary under their step clock.  Each
statement is ours (the papers' texts were not available); the kind is "beyond"."""

from __future__ import annotations

import math

import numpy as np
import sympy as sp

from proofs_check import Outcome, check, sig


@check("ao_cycle_loss", "beyond",
       "Ao et al.'s worst-case cycle in the slot model (cohorts of identical requests, "
       "LIFO restart) delivers floor(M / (l + o)) / o per slot against M / w(l, o) at the "
       "equilibrium; without floors the loss 1 - w / (o (l + o)) equals (o - 1) / (2 (l + o)), "
       "is below 1/2 for every l >= 0, o >= 1 and tends to 1/2 as o -> infinity with l = 0 "
       "(\"throughput losses as large as 50%\")", evidence="symbolic")
def ao_cycle_loss():
    from stability.theory.neighbours import fluid_cycle_loss

    l = sp.Symbol("l", nonnegative=True)
    o = sp.Symbol("o", positive=True)
    w = l * o + o * (o + 1) / 2
    loss = 1 - w / (o * (l + o))
    closed = sp.simplify(loss - (o - 1) / (2 * (l + o))) == 0
    gap = sp.factor(sp.Rational(1, 2) - (o - 1) / (2 * (l + o)))  # (l + 1) / (2 (l + o)) > 0
    below = sp.simplify(gap - (l + 1) / (2 * (l + o))) == 0
    limit = sp.limit(loss.subs(l, 0), o, sp.oo) == sp.Rational(1, 2)
    grid = [(a, b) for a in (0, 1, 10, 100) for b in (1, 2, 20, 1000)]
    package = max(abs(fluid_cycle_loss(a, b) - float(loss.subs({l: a, o: b})))
                  for a, b in grid)
    ok = closed and below and limit and package < 1e-12
    return Outcome(ok, "sympy: simplify the loss, factor 1/2 - loss, limit; the package's "
                       "fluid_cycle_loss on a grid",
                   f"1/2 - loss = {gap}; limit (l = 0, o -> oo) = 1/2; package error "
                   f"{'< 1e-12' if package < 1e-12 else sig(package)}")


@check("ao_cohort_cycle_simulated", "beyond",
       "saturated Greedy with restart eviction and identical requests settles on the cohort "
       "cycle: its second-half throughput is floor(M / (l + o)) / o "
       "(stability.theory.neighbours.cohort_cycle_throughput) on a grid of (l, o, M)",
       evidence="numeric")
def ao_cohort_cycle_simulated():
    import stability as s
    from stability.theory.neighbours import cohort_cycle_throughput, memory_time

    worst, cases = 0.0, 0
    for l, o, memory in [(1, 10, 200), (5, 7, 311), (10, 20, 2000), (30, 5, 777),
                         (2, 40, 5000), (100, 30, 20000)]:
        horizon = 40 * o
        n = int(2 * horizon * memory / memory_time(l, o)) + memory // (l + 1) + 10
        req = s.Requests(np.zeros(n, int), np.full(n, l), np.full(n, o))
        r = s.simulate(req, s.Greedy(), memory, horizon=horizon)
        done = np.sum(r.completion >= horizon // 2) / (horizon - horizon // 2)
        worst = max(worst, abs(done - cohort_cycle_throughput(l, o, memory)))
        cases += 1
    return Outcome(worst < 1e-12, "the simulator against the closed form",
                   f"{cases} cases, largest difference {sig(worst)} requests per slot")


@check("ao_noncoprime_unit_roots", "beyond",
       "the survival polynomial of two decode lengths d1, d2 (weights 1/2), "
       "sum_j S(j) z^(J-1-j), vanishes at z = exp(2 pi i / g) when g = gcd(d1, d2) > 1: a "
       "mode on the unit circle that the (l + j + 1) weights push outside (Ao et al.'s "
       "non-coprime instability)", evidence="symbolic")
def ao_noncoprime_unit_roots():
    z = sp.Symbol("z")
    found = []
    for d1, d2 in [(2, 4), (3, 6), (4, 6), (4, 8), (6, 9), (10, 15)]:
        g = math.gcd(d1, d2)
        top = max(d1, d2)
        poly = sum(sp.Rational(1, 2) * (int(j < d1) + int(j < d2)) * z ** (top - 1 - j)
                   for j in range(top))
        omega = sp.exp(2 * sp.pi * sp.I / g)
        found.append(sp.simplify(sp.expand_complex(poly.subs(z, omega))) == 0)
    return Outcome(all(found), "sympy: exact evaluation at the primitive gcd-th root of unity",
                   f"{sum(found)} of {len(found)} non-coprime pairs vanish there")


@check("ao_coprime_inside", "beyond",
       "for coprime decode lengths the linearised Greedy map at a large prompt has every "
       "root strictly inside the unit disc, and for non-coprime ones a root outside "
       "(stability.theory.neighbours.greedy_linearised_radius at l = 400 and l = 10^6)",
       evidence="numeric")
def ao_coprime_inside():
    from stability.theory.neighbours import greedy_linearised_radius

    coprime = [(2, 3), (3, 4), (3, 5), (4, 7), (5, 8), (7, 9)]
    other = [(2, 4), (3, 6), (4, 6), (4, 8), (6, 9)]
    rows = []
    for l in (400, 10**6):
        inside = max(greedy_linearised_radius(l, p) for p in coprime)
        outside = min(greedy_linearised_radius(l, p) for p in other)
        rows.append((l, inside, outside))
    ok = all(i < 1 < o for _, i, o in rows)
    return Outcome(ok, "numpy roots of the characteristic polynomial",
                   "; ".join(f"l = {l}: coprime max {i:.7f}, non-coprime min {o:.7f}"
                             for l, i, o in rows))


@check("nie_mu_unit_slots", "beyond",
       "Nie et al.'s mu = M / (b E[g]) with b = 1 slot and g the lifetime memory w(l, o) is "
       "Prop. 3.2's lambda* = M / E[w]; E[g] for l ~ U{5..15}, o ~ U{1..79} derived exactly",
       evidence="symbolic")
def nie_mu_unit_slots():
    import stability as s
    from stability.theory import critical_rate
    from stability.theory.neighbours import service_rate

    l, o = sp.symbols("l o", integer=True, positive=True)
    w = l * o + o * (o + 1) / 2
    mean_g = sp.summation(sp.summation(w, (o, 1, 79)), (l, 5, 15)) / (11 * 79)
    memory = 16492
    work = s.Workload.single(1.0, s.UniformInt(5, 15), s.UniformInt(1, 79))
    exact = sp.Rational(memory) / mean_g
    err = abs(service_rate(float(mean_g), memory) - critical_rate(work, memory))
    err2 = abs(float(exact) - critical_rate(work, memory))
    ok = err < 1e-9 and err2 < 1e-9
    return Outcome(ok, "sympy: double sum of w over the uniform supports; the package's "
                       "service_rate and critical_rate",
                   f"E[g] = {mean_g} = {sig(float(mean_g))}; mu = {sig(float(exact))} req/slot")


@check("ldp_step_boundary", "beyond",
       "Li-Dai-Peng's Theorem 2 boundary under their step model t = 11.28 + 35.47 "
       "ceil(b / 128) ms: lambda_c = b / (t(b) (m_p + m_d)); for b = 250, m_p + m_d = 192 it "
       "is 250 / (0.08222 x 192) requests per second, from the clock's own duration",
       evidence="symbolic")
def ldp_step_boundary():
    from stability.clock import li_dai_peng
    from stability.theory.neighbours import throughput_optimal_rate

    b = 250
    t_b = sp.Rational(1128, 100000) + sp.Rational(3547, 100000) * sp.ceiling(sp.Rational(b, 128))
    exact = sp.Rational(b) / (t_b * 192)
    clock = li_dai_peng()
    from_clock = b / (float(clock.seconds(b, 0, 0)) * 192)
    package = throughput_optimal_rate(clock, b, 64, 128)
    ok = abs(package - float(exact)) < 1e-9 and abs(from_clock - float(exact)) < 1e-9
    return Outcome(ok, "sympy rational arithmetic; the clock's seconds() and the package",
                   f"t(b) = {t_b} s, lambda_c = {exact} = {sig(float(exact))} req/s")
