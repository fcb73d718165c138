"""Exact checks of stability.theory: published constants, closed forms, FFT tail, tuner.

Statistical comparisons with the simulator live in test_theory_vs_simulation.py.
"""

import json
import math
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import stability as s
from proofs_check.brute import enumerated_pmf, panjer_pmf
from stability.theory import (
    Budget,
    DemandModel,
    PerClassBudget,
    alg1_condition,
    alg1_peak_demand,
    chernoff_rate,
    critical_rate,
    demand_mean,
    demand_variance,
    exact_tail,
    lindley_mean_queue,
    mean_memory_time,
    necessary_condition,
    overflow_bound,
    per_slot_overflow,
    queue_drift,
)
from stability.cli.analyze import budget_from_args
from stability.theory.report import analyze
from stability.theory.tuning import best_budget, budget_window, predicted_overflow, tune_budget

M = 16492
PAPER_W = (410, 1220, 2430)


# ---------------------------------------------------------------------------------------
# Section 4.1: the paper's published constants


def test_section_4_1_memory_times_peak_and_critical_rate():
    w = s.Workload.paper_4_1(5.0)
    assert [mean_memory_time(c) for c in w.classes] == list(PAPER_W)
    assert alg1_peak_demand(w, PerClassBudget((4, 4, 4))) == 16240 <= M
    # lambda* = 16492 / 4060 = 4.0621 per class (three classes at equal rates)
    per_class = critical_rate(w, M) / 3
    assert per_class == pytest.approx(16492 / 4060, rel=1e-15)
    assert round(per_class, 4) == 4.0621


def test_section_4_1_overload_violates_prop_3_2_and_alg1_queues_grow_by_3():
    over = s.Workload.paper_4_1(5.0)
    nec = necessary_condition(over, M)
    assert nec.load == 5 * sum(PAPER_W) == 20300 and not nec.holds
    cond = alg1_condition(over, PerClassBudget((4, 4, 4)), M)
    assert cond.inequality_2 and not cond.budgets_exceed_rates and not cond.stable
    assert queue_drift(over, PerClassBudget((4, 4, 4))) == 3.0
    under = s.Workload.paper_4_1(3.0)
    assert necessary_condition(under, M).strict
    assert alg1_condition(under, PerClassBudget((4, 4, 4)), M).stable
    assert not alg1_condition(under, PerClassBudget((4, 4, 5)), M).inequality_2  # 16240+2430


def test_constant_demand_has_variance_zero_not_minus_round_off():
    """Deterministic lengths and budget: U is constant, and the two sums in demand_variance
    cancel; round-off must not make the variance negative (sqrt would fail)."""
    for l, o, b in ((1, 4, 1), (10, 20, 4), (3, 7, 2)):
        var = demand_variance(s.Workload.single(1.0, l, o), Budget(b))
        assert 0.0 <= var < 1e-9


def test_saturated_alg1_demand_is_deterministic_and_never_exceeds_the_peak():
    w = s.Workload.paper_4_1(5.0)
    b = PerClassBudget((4, 4, 4))
    assert demand_mean(w, b) == 16240 and demand_variance(w, b) == 0
    assert overflow_bound(w, b, M).per_slot == 0.0
    tail = exact_tail(w, b, [16239, 16240], unit=1).prob
    assert tail[0] == pytest.approx(1.0) and tail[1] == 0.0


# ---------------------------------------------------------------------------------------
# Geometric closed forms vs finite sums


def _kappa(theta, l, p):
    return math.exp(theta * (l + 1)) / (1 - (1 - p) * math.exp(theta)) - 1 / p


@settings(deadline=None, max_examples=40)
@given(l=st.integers(1, 3000), p=st.floats(0.005, 0.95))
def test_geometric_mean_memory_time_is_l_over_p_plus_one_over_p_squared(l, p):
    c = s.RequestClass(1.0, s.Deterministic(l), s.Geometric(p))
    k = np.arange(1, int(math.log(1e-300) / math.log1p(-p)) + 2)
    pmf = np.exp((k - 1) * math.log1p(-p)) * p
    finite_sum = float(np.sum(pmf * (l * k + k * (k + 1) / 2)))
    assert mean_memory_time(c) == pytest.approx(l / p + 1 / p**2, rel=1e-12)
    assert finite_sum == pytest.approx(l / p + 1 / p**2, rel=1e-10)


@settings(deadline=None, max_examples=40)
@given(l=st.integers(1, 500), p=st.floats(0.01, 0.9), frac=st.floats(0.0, 0.99),
       beta=st.floats(0.1, 20.0))
def test_kappa_closed_form_equals_series_and_poisson_lambda(l, p, frac, beta):
    theta = frac * -math.log1p(-p)
    log_r = math.log1p(-p) + theta  # terms decay like r^j, r = (1 - p) e^theta < 1
    j = np.arange(1, int(math.log(1e-20) / log_r) + 2)
    log_q = (j - 1) * math.log1p(-p)
    series = float(np.sum(np.exp(log_q + theta * (l + j)) - np.exp(log_q)))
    closed = _kappa(theta, l, p)
    assert series == pytest.approx(closed, rel=1e-9, abs=1e-12)
    model = DemandModel(s.Workload.single(1.0, l, s.Geometric(p)), Budget(beta, "poisson"))
    assert model.log_mgf(theta) == pytest.approx(beta * closed, rel=1e-9, abs=1e-12)


def test_kappa_of_a_class_matches_the_closed_form_and_the_finite_sum():
    from stability.theory import kappa, kappa_geometric

    geo = s.RequestClass(1.0, s.Deterministic(10), s.Geometric(0.05))
    assert kappa(geo, 0.03) == pytest.approx(kappa_geometric(0.03, 10, 0.05), rel=1e-12)
    det = s.RequestClass(1.0, s.Deterministic(10), s.Deterministic(20))
    assert kappa(det, 0.01) == pytest.approx(sum(math.expm1(0.01 * (10 + j)) for j in range(1, 21)),
                                             rel=1e-13)


def test_poisson_variance_is_beta_kappa_second_derivative():
    l, p, beta = 10, 0.05, 3.0
    kappa2 = (l**2 * p**2 + 2 * l * p - p + 2) / p**3
    w = s.Workload.single(1.0, l, s.Geometric(p))
    assert demand_variance(w, Budget(beta, "poisson")) == pytest.approx(beta * kappa2, rel=1e-12)


# ---------------------------------------------------------------------------------------
# The demand U: mean, variance, convexity


def _laws():
    det = st.integers(1, 6).map(s.Deterministic)
    uni = st.tuples(st.integers(1, 5), st.integers(0, 4)).map(lambda t: s.UniformInt(t[0], t[0] + t[1]))
    return st.one_of(det, uni)


@st.composite
def small_workloads(draw, max_classes=2):
    k = draw(st.integers(1, max_classes))
    return s.Workload(tuple(s.RequestClass(draw(st.floats(0.1, 5.0)), draw(_laws()), draw(_laws()))
                            for _ in range(k)))


@st.composite
def budgets(draw, laws=("deterministic", "poisson", "two-point"), top=3.0):
    law = draw(st.sampled_from(laws))
    if law == "deterministic":
        return Budget(draw(st.integers(1, int(top))))
    return Budget(draw(st.floats(0.2, top)), law)


@settings(deadline=None, max_examples=60)
@given(w=small_workloads(), b=budgets())
def test_mean_demand_is_mean_budget_times_mean_memory_time(w, b):
    mix = w.rates / w.total_rate
    expected = b.mean * float(np.dot(mix, [mean_memory_time(c) for c in w.classes]))
    model = DemandModel(w, b)
    assert model.dlog_mgf(0.0) == pytest.approx(expected, rel=1e-12)
    assert demand_mean(w, b) == pytest.approx(expected, rel=1e-12)
    var = demand_variance(w, b)
    h = 1e-4 / math.sqrt(max(var, 1.0))
    assert (model.dlog_mgf(h) - model.dlog_mgf(0.0)) / h == pytest.approx(var, rel=1e-3, abs=1e-9)


@settings(deadline=None, max_examples=40)
@given(w=small_workloads(), b=budgets())
def test_lambda_is_convex_and_the_rate_increasing_and_convex(w, b):
    model = DemandModel(w, b)
    grid = np.linspace(0.0, 2.0, 31)
    lam = np.array([model.log_mgf(t) for t in grid])
    assert np.all(lam[2:] - 2 * lam[1:-1] + lam[:-2] >= -1e-9 * (1 + np.abs(lam[1:-1])))
    mean, sd = demand_mean(w, b), math.sqrt(demand_variance(w, b))
    top = min(model.max_value - 0.5, mean + 10 * sd)
    levels = np.linspace(mean, top, 15)
    rates = np.array([chernoff_rate(model, x).rate for x in levels])
    assert rates[0] == pytest.approx(0.0, abs=1e-9)
    assert np.all(np.diff(rates) >= -1e-9)
    assert np.all(np.diff(rates, 2) >= -1e-6 * (1 + rates[2:]))


def test_large_slack_slope_tends_to_minus_log_one_minus_p():
    p = 0.05
    model = DemandModel(s.Workload.single(1.0, 10, s.Geometric(p)), Budget(3.0, "poisson"))
    slope = (chernoff_rate(model, 2e8).rate - chernoff_rate(model, 1e8).rate) / 1e8
    assert slope == pytest.approx(-math.log1p(-p), rel=0.01)
    assert slope < -math.log1p(-p)


# ---------------------------------------------------------------------------------------
# Exact FFT tail


def _tail_from_pmf(pmf):
    return np.concatenate([np.cumsum(pmf[::-1])[::-1][1:], [0.0]])


TINY = [
    (s.Workload.single(1.0, s.UniformInt(1, 2), s.UniformInt(1, 3)), Budget(2)),
    (s.Workload.single(1.0, s.UniformInt(1, 3), s.Deterministic(3)), Budget(1.5, "two-point")),
    (s.Workload((s.RequestClass(1.0, s.UniformInt(2, 3), s.Deterministic(2)),
                 s.RequestClass(2.0, s.Deterministic(1), s.UniformInt(1, 3)))), Budget(1)),
    (s.Workload((s.RequestClass(1.0, s.UniformInt(2, 3), s.Deterministic(2)),
                 s.RequestClass(2.0, s.Deterministic(1), s.UniformInt(1, 3)))),
     Budget(1.4, "two-point")),
]


@pytest.mark.parametrize("case", range(len(TINY)))
def test_fft_tail_matches_brute_force_enumeration(case):
    w, b = TINY[case]
    d = enumerated_pmf(w, b)
    pmf = np.zeros(max(d) + 1)
    for u, pr in d.items():
        pmf[u] = pr
    ref = _tail_from_pmf(pmf)
    got = exact_tail(w, b, np.arange(pmf.size), unit=1)
    pos = ref > 0
    np.testing.assert_allclose(got.prob[pos], ref[pos], rtol=1e-7)
    assert np.all(got.prob[~pos] == 0)


@settings(deadline=None, max_examples=25)
@given(w=small_workloads(), beta=st.floats(0.2, 3.0))
def test_fft_tail_matches_panjer_recursion_for_poisson_budgets(w, beta):
    b = Budget(beta, "poisson")
    pmf = panjer_pmf(w, b, 600)
    ref = _tail_from_pmf(pmf)[:120]
    got = exact_tail(w, b, np.arange(120), unit=1).prob
    keep = ref > 1e-200
    np.testing.assert_allclose(got[keep], ref[keep], rtol=1e-6)


@settings(deadline=None, max_examples=40)
@given(w=small_workloads(), b=budgets(), z=st.lists(st.floats(0.0, 15.0), min_size=1, max_size=4))
def test_chernoff_bound_dominates_the_exact_tail(w, b, z):
    mean, sd = demand_mean(w, b), math.sqrt(demand_variance(w, b))
    levels = np.unique(np.round(mean + sd * np.array(z)).astype(int))
    exact = exact_tail(w, b, levels, unit=1).prob
    model = DemandModel(w, b)
    bound = np.array([math.exp(-chernoff_rate(model, x).rate) for x in levels])
    assert np.all(exact <= bound * (1 + 1e-9))


def test_coarse_lattice_brackets_the_exact_tail():
    w = s.Workload.single(1.0, s.UniformInt(100, 400), s.UniformInt(1, 80))
    b = Budget(3)
    mean, sd = demand_mean(w, b), math.sqrt(demand_variance(w, b))
    levels = np.round(mean + sd * np.array([0.0, 1.0, 3.0, 6.0])).astype(int)
    exact = exact_tail(w, b, levels, unit=1).prob
    coarse = exact_tail(w, b, levels, unit=7, bracket=True)
    assert coarse.unit == 7 and coarse.prob_lower is not None
    assert np.all(coarse.prob_lower <= exact * (1 + 1e-9))
    assert np.all(exact <= coarse.prob * (1 + 1e-9))
    assert np.all(coarse.prob_lower < coarse.prob)


def test_geometric_decode_truncation_is_bounded_and_tail_matches_panjer():
    w = s.Workload.single(1.0, s.UniformInt(1, 3), s.Geometric(0.4))
    b = Budget(1.2, "poisson")
    got = exact_tail(w, b, np.arange(0, 80, 5), unit=1)
    assert 0 < got.truncation_bound < 1e-15 and any("truncated" in n for n in got.notes)
    # Panjer on the same law with decode cut where (1-p)^a < 1e-18 (a bounded stand-in)
    cut = s.Workload.single(1.0, s.UniformInt(1, 3), s.Geometric(0.4, max=90))
    ref = _tail_from_pmf(panjer_pmf(cut, b, 400))[np.arange(0, 80, 5)]
    np.testing.assert_allclose(got.prob, ref, rtol=1e-6)


@pytest.mark.parametrize("unit", [1, 3])
def test_truncation_bound_covers_the_tilted_mass_of_the_old_ages(unit):
    """The reported bound on the dropped ages is at least the tilted expected number of
    active activations of age a >= A, summed directly: count q^a e^{eta ceil((l+a+1)/h)}
    (deterministic b = 3, so count = 3), and it is tight: the bound's exponent
    eta (ceil(l/h) + (a + h)/h) exceeds eta ceil((l+a+1)/h) by less than 2 eta, and on the
    unit lattice, where the prompt is a point mass, the two are equal."""
    from stability.theory.exact_tail import _truncation_mass

    l, p, b = 10, 0.05, 3
    w = s.Workload.single(1.0, l, s.Geometric(p))
    for ages in (400, 1000, 1300):
        model = DemandModel(w, Budget(b), unit=unit, ages=ages)
        tabulated = model.streams[0].ages
        for eta in (0.002 * unit, 0.0066 * unit, 0.013 * unit):
            a = np.arange(tabulated, tabulated + 400_000)
            log_terms = a * math.log1p(-p) + eta * -(-(l + a + 1) // unit)
            direct = b * float(np.sum(np.exp(log_terms)))
            bound = _truncation_mass(model, eta)
            assert direct <= bound * (1 + 1e-9), (ages, eta, direct, bound)
            assert bound <= direct * math.exp(2 * eta) * (1 + 1e-9)
            if unit == 1:
                assert bound == pytest.approx(direct, rel=1e-9)


def test_reported_truncation_bound_at_l10_p05_b3_is_the_dropped_mass():
    """exact_tail tabulates ages until the bound on the dropped tilted mass is below 1e-20
    (TRUNCATION), cutting at the first age that gets there, and reports the bound: at the
    cut it lies within a factor (q e^eta)^-2 < 10 of 1e-20, not orders of magnitude below
    (the true dropped mass here, summed directly, is 9.2e-21)."""
    w = s.Workload.single(1.0, 10, s.Geometric(0.05))
    got = exact_tail(w, Budget(3), [2295], unit=1)
    assert 1e-21 < got.truncation_bound < 1e-20


def test_tail_is_zero_beyond_the_largest_demand():
    w = s.Workload.single(1.0, s.Deterministic(2), s.UniformInt(1, 3))
    b = Budget(2)
    top = DemandModel(w, b).max_value  # 2 * (3 + 4 + 5)
    assert top == 24
    got = exact_tail(w, b, [23, 24, 30], unit=1).prob
    # U = 24 needs all six activations to be alive at their age: P(o=3)^2 P(o>=2)^2 * 1
    assert got[0] == pytest.approx((1 / 3) ** 2 * (2 / 3) ** 2, rel=1e-9)
    assert got[1] == 0 and got[2] == 0


def test_fft_tail_at_the_paper_capacity_is_fast():
    w = s.Workload.paper_4_1(4.0)
    per_slot_overflow(w, Budget(10), M)  # compile
    t0 = time.perf_counter()
    for b in (Budget(10), Budget(10.5, "poisson"), Budget(10.5, "two-point")):
        r = per_slot_overflow(w, b, M)
        assert r.unit == 1 and 0 < r.prob[0] < 1
    assert time.perf_counter() - t0 < 10.0


@pytest.mark.slow
def test_fft_tail_at_a_million_tokens_with_azure_lengths_is_fast():
    conv = s.Workload.single(3.0, s.LogNormal.fit(1155, 1020, 14050), s.LogNormal.fit(211, 129, 1000))
    per_slot_overflow(conv, Budget(3), 10**6)  # compile
    t0 = time.perf_counter()
    r = per_slot_overflow(conv, Budget(3), 10**6)
    bound = overflow_bound(conv, Budget(3), 10**6).per_slot
    assert 0 < r.prob[0] < bound
    assert time.perf_counter() - t0 < 30.0


# ---------------------------------------------------------------------------------------
# Lindley queue


def test_lindley_mean_with_unit_budget_is_pollaczek_khinchine():
    for lam in (0.1, 0.5, 0.9, 0.99):
        # Q' = max(Q + N - 1, 0), N ~ Poisson(lambda): E[Q] = lambda^2 / (2 (1 - lambda))
        assert lindley_mean_queue(lam, Budget(1)).mean_queue == pytest.approx(
            lam**2 / (2 * (1 - lam)), rel=1e-8)


@pytest.mark.parametrize("lam,b", [(3.0, 4), (9.0, 10), (3.9, 4)])
def test_lindley_fft_equals_spitzer_series(lam, b):
    fft = lindley_mean_queue(lam, Budget(b)).mean_queue
    series = lindley_mean_queue(lam, Budget(b), method="series").mean_queue
    assert fft == pytest.approx(series, rel=1e-9)


def test_lindley_mean_is_infinite_at_or_above_the_budget_and_zero_without_arrivals():
    assert math.isinf(lindley_mean_queue(4.0, Budget(4)).mean_queue)
    assert math.isinf(lindley_mean_queue(4.0, Budget(4.0, "poisson")).mean_delay)
    assert lindley_mean_queue(0.0, Budget(4)).mean_queue == 0.0


def test_a_more_variable_budget_queues_more_at_the_same_mean():
    """At the same mean E[B] the Lindley mean grows with the budget's variance (a convex
    order): deterministic (Var 0) < two-point (Var f(1-f)) < Poisson (Var = mean), at
    means 3.5 (two-point vs Poisson) and 4 (deterministic vs Poisson).  A two-point budget
    with an integer mean is the deterministic law itself (f = 0), so there the two agree."""
    two = lindley_mean_queue(3.0, Budget(3.5, "two-point")).mean_queue
    poi = lindley_mean_queue(3.0, Budget(3.5, "poisson")).mean_queue
    assert two < poi
    det = lindley_mean_queue(3.0, Budget(4)).mean_queue
    assert det < lindley_mean_queue(3.0, Budget(4.0, "poisson")).mean_queue
    assert Budget(4.0, "two-point").frac == 0.0
    assert lindley_mean_queue(3.0, Budget(4.0, "two-point")).mean_queue == pytest.approx(det, rel=1e-12)


def test_lindley_mean_delay_is_the_mean_queue_over_lambda_pollaczek_khinchine():
    """Little's law: mean delay = E[Q] / lambda.  With a unit budget, E[Q] =
    lambda^2 / (2 (1 - lambda)), so the delay is lambda / (2 (1 - lambda)), in slots."""
    for lam in (0.1, 0.5, 0.9):
        res = lindley_mean_queue(lam, Budget(1))
        assert res.mean_delay == pytest.approx(lam / (2 * (1 - lam)), rel=1e-8)
        assert res.mean_delay == pytest.approx(res.mean_queue / lam, rel=1e-15)
    for b in (Budget(4), Budget(4.0, "poisson"), Budget(3.5, "two-point")):
        res = lindley_mean_queue(3.0, b)
        assert res.mean_delay == pytest.approx(res.mean_queue / 3.0, rel=1e-15)
    series = lindley_mean_queue(3.0, Budget(4), method="series")
    assert series.mean_delay == pytest.approx(series.mean_queue / 3.0, rel=1e-15)


# ---------------------------------------------------------------------------------------
# Budget window and tuner


# One class with l = 1, o = 1, so w = 2 exactly: at rate 5 the load is exactly 10 tokens.
UNIT_W = s.Workload.single(5.0, 1, 1)


def test_prop_3_2_at_its_boundary_holds_but_not_strictly():
    """Prop. 3.2 is sum_k lambda_k E[w_k] <= M: at load = M exactly it holds (necessary
    condition met) but not strictly (empty budget window); one token either side flips both."""
    at = necessary_condition(UNIT_W, 10)
    assert at.load == 10.0 and at.holds and not at.strict and at.utilisation == 1.0
    above = necessary_condition(UNIT_W, 11)
    assert above.holds and above.strict
    below = necessary_condition(UNIT_W, 9)
    assert not below.holds and not below.strict


def test_budget_window_at_its_boundary_is_empty():
    """The window (lambda, M / E[w]) is an open interval: at lambda = M / E[w] it is empty."""
    at = budget_window(UNIT_W, 10)
    assert (at.low, at.high, at.nonempty) == (5.0, 5.0, False)
    assert budget_window(UNIT_W, 11).nonempty and budget_window(UNIT_W, 11).high == 5.5
    assert not budget_window(UNIT_W, 9).nonempty


def test_critical_rate_weights_classes_by_their_rates():
    """lambda* = M / E[w] with E[w] = sum_k (lambda_k / lambda) E[w_k].  Classes (10, 20)
    at rate 1 and (10, 60) at rate 3: E[w] = (410 + 3 * 2430) / 4 = 1925, so
    lambda* = 16492 / 1925; the unweighted mean (410 + 2430) / 2 = 1420 would be wrong.
    At lambda* (same mix) the load of Prop. 3.2 is exactly M."""
    w = s.Workload((s.RequestClass(1.0, 10, 20), s.RequestClass(3.0, 10, 60)))
    lam_star = critical_rate(w, M)
    assert lam_star == pytest.approx(M / 1925, rel=1e-15)
    assert lam_star != pytest.approx(M / 1420, rel=0.01)
    at = s.Workload((s.RequestClass(lam_star / 4, 10, 20), s.RequestClass(3 * lam_star / 4, 10, 60)))
    assert necessary_condition(at, M).load == pytest.approx(M, rel=1e-14)


def test_alg1_peak_uses_the_largest_lengths_of_each_class():
    """With random lengths the Thm 3.3 peak is the worst case sum_k b_k w(max l_k, max o_k)
    (the simulated check that it never overflows is in test_absolute.py)."""
    w = s.Workload((s.RequestClass(1.0, s.UniformInt(2, 12), s.UniformInt(1, 30)),
                    s.RequestClass(1.0, 5, s.Geometric(0.2, max=25))))
    assert alg1_peak_demand(w, PerClassBudget((3, 2))) == 3 * (12 * 30 + 30 * 31 / 2) + \
        2 * (5 * 25 + 25 * 26 / 2)
    unbounded = s.Workload.single(1.0, 10, s.Geometric(0.1))
    assert math.isinf(alg1_peak_demand(unbounded, PerClassBudget((1,))))


def test_overflow_bound_over_t_slots_is_t_times_the_per_slot_bound():
    """Union bound: P(any overflow in T slots) <= sum_t P(U_t > M) <= T exp(-I(M)), with
    I(M) from chernoff_rate (the per-slot bound)."""
    w, b = s.Workload.paper_4_1(4.0), Budget(10)
    rate = chernoff_rate(DemandModel(w, b), 15520).rate
    one = overflow_bound(w, b, 15520)
    many = overflow_bound(w, b, 15520, slots=1000)
    assert one.per_slot == pytest.approx(math.exp(-rate), rel=1e-12)
    assert one.expected_events == pytest.approx(one.per_slot, rel=1e-15)
    assert many.per_slot == one.per_slot and many.slots == 1000
    assert many.expected_events == pytest.approx(1000 * math.exp(-rate), rel=1e-12)


def test_tuner_latency_is_lindley_delay_plus_the_decode_length():
    """Latency = completion - a + 1 = delay + o for a request never evicted; with every
    decode length equal to 30 the tuner's mean latency is its Lindley delay plus exactly 30,
    and the delay is the Lindley mean delay at the tuned budget."""
    w = s.Workload((s.RequestClass(1.0, 10, 30), s.RequestClass(2.0, 50, 30)))
    for law in ("deterministic", "poisson"):
        t = tune_budget(w, 8000, 1e-6, law)
        assert t.stable
        assert t.mean_delay == pytest.approx(
            lindley_mean_queue(3.0, Budget(t.budget, law)).mean_delay, rel=1e-12)
        assert t.mean_latency == pytest.approx(t.mean_delay + 30, rel=1e-15)


def test_budget_window_is_nonempty_iff_prop_3_2_holds_strictly():
    for rate in (3.0, 4.0, 4.1, 5.0):
        w = s.Workload.paper_4_1(rate)
        win = budget_window(w, M)
        assert win.low == pytest.approx(3 * rate)
        assert win.high == pytest.approx(3 * 16492 / 4060)
        assert win.nonempty == necessary_condition(w, M).strict


@pytest.mark.parametrize("law", ["deterministic", "poisson", "two-point"])
def test_tuned_budget_meets_the_target_and_one_step_more_does_not(law):
    w = s.Workload.paper_4_1(3.0)
    t = tune_budget(w, M, 1e-6, law, "chernoff", resolution=1e-3)
    step = 1.0 if law == "deterministic" else 1e-3
    assert t.overflow <= 1e-6 < predicted_overflow(w, Budget(t.budget + step, law), M)
    assert t.stable and t.mean_latency > t.mean_delay > 0


def test_tuned_budget_grows_with_the_target_and_the_capacity():
    w = s.Workload.paper_4_1(3.0)
    by_target = [tune_budget(w, M, t, "poisson").budget for t in (1e-9, 1e-6, 1e-3, 0.1)]
    by_memory = [tune_budget(w, m, 1e-6, "poisson").budget for m in (12000, 16492, 20000)]
    assert by_target == sorted(by_target) and by_target[0] < by_target[-1]
    assert by_memory == sorted(by_memory) and by_memory[0] < by_memory[-1]
    # exact tail is below the Chernoff bound, so the exact tuner allows at least as much
    assert tune_budget(w, M, 1e-6, "poisson", "exact").budget >= by_target[1]


def test_best_budget_minimises_predicted_latency_among_feasible_laws():
    res = best_budget(s.Workload.paper_4_1(3.0), M, 1e-6)
    feasible = [c for c in res.candidates if c.stable]
    assert res.best is not None and res.best.mean_latency == min(c.mean_latency for c in feasible)
    none = best_budget(s.Workload.paper_4_1(4.5), M, 1e-6)  # beyond lambda*: no window
    assert none.best is None and "lambda" in none.note


# ---------------------------------------------------------------------------------------
# Report and agreement with the workload module


def test_analyze_reports_the_paper_numbers_as_text_and_strict_json():
    rep = analyze(s.Workload.paper_4_1(3.0), M, Budget(10), target_overflow=1e-6)
    text = rep.to_text()
    assert "Prop. 3.2" in text and "reconstruction" in text and "4.06207" in text
    d = json.loads(json.dumps(rep.to_dict(), allow_nan=False))
    assert d["demand"]["mean"] == pytest.approx(10 * 4060 / 3)
    assert d["exact"]["prob"] < d["chernoff"]["per_slot"]
    assert d["queue"]["mean_queue"] == pytest.approx(lindley_mean_queue(9.0, Budget(10)).mean_queue)
    assert d["tuning"]["best"]["law"] in ("deterministic", "poisson", "two-point")


def test_analyze_accepts_policy_objects_by_duck_typing():
    w = s.Workload.paper_4_1(3.0)
    a = analyze(w, M, s.FlowControl(10), exact=False).to_dict()
    b = analyze(w, M, Budget(10), exact=False).to_dict()
    assert a == b
    c = analyze(w, M, s.ClassBudgets((4, 4, 4)), exact=False).to_dict()
    assert c["queue"]["kind"] == "per-class" and c["queue"]["peak"] == 16240


def test_workload_methods_agree_with_the_theory():
    classes = [s.RequestClass(1.0, s.UniformInt(3, 9), s.Geometric(0.1)),
               s.RequestClass(2.0, s.Geometric(0.3, max=40), s.UniformInt(1, 50)),
               s.RequestClass(0.5, s.LogNormal.fit(100, 80, 500), s.Deterministic(7))]
    w = s.Workload(tuple(classes))
    for c in classes:
        assert c.mean_memory_time() == pytest.approx(mean_memory_time(c), rel=1e-12)
    assert w.mean_kv_load() == pytest.approx(necessary_condition(w, 10**6).load, rel=1e-12)


# ---------------------------------------------------------------------------------------
# Bad input: one clear error naming the field, the value and what is allowed


BAD = [
    (lambda: Budget(2.5), "integer"),
    (lambda: Budget(3, "uniform"), "law must be one of deterministic, poisson, two-point, got 'uniform'"),
    (lambda: Budget(-1.0, "poisson"), "budget must be a finite number >= 0"),
    (lambda: PerClassBudget(()), "budgets"),
    (lambda: DemandModel(s.Workload.paper_4_1(1.0), PerClassBudget((1, 2))), "3 classes"),
    (lambda: DemandModel(s.Workload.paper_4_1(1.0), "lots"), "budget='lots'"),
    (lambda: overflow_bound(s.Workload.paper_4_1(1.0), 3, 0), "memory must be an integer >= 2"),
    (lambda: exact_tail(s.Workload.paper_4_1(1.0), 3, [-5]), "levels must be integers >= 0"),
    (lambda: tune_budget(s.Workload.paper_4_1(1.0), M, 1.5), "target_overflow"),
    (lambda: tune_budget(s.Workload.paper_4_1(1.0), M, 1e-6, method="magic"), "method='magic'"),
    (lambda: tune_budget(s.Workload.paper_4_1(1.0), M, 1e-6, law="gamma"), "law='gamma'"),
    (lambda: lindley_mean_queue(-1.0, Budget(2)), "arrival_rate"),
    (lambda: analyze(s.Workload.paper_4_1(1.0), M, "unthrottled"), "unthrottled"),
    (lambda: budget_from_args("4,4", "poisson"), "--budget='4,4'"),
    (lambda: budget_from_args("x", "deterministic"), "--budget='x'"),
    (lambda: budget_from_args("4", "weird"), "--budget-law='weird'"),
]


@pytest.mark.parametrize("call,message", BAD, ids=[m for _, m in BAD])
def test_bad_input_raises_one_clear_value_error(call, message):
    with pytest.raises(ValueError) as err:
        call()
    assert message in str(err.value) and "\n" not in str(err.value)


def test_cli_analyze_prints_the_report_and_reports_bad_input_in_one_line(capsys):
    from stability.cli import main

    assert main(["analyze", "--memory", "16492", "--rate", "3", "--budget", "10"]) == 0
    out = capsys.readouterr().out
    assert "Prop. 3.2" in out and "Lindley queue" in out and "reconstruction" in out
    assert main(["analyze", "--memory", "16492", "--rate", "5", "--budget", "4,4,4",
                 "--budget-law", "per-class", "--json", "--no-exact"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["queue"]["peak"] == 16240 and d["queue"]["drift"] == 3.0
    assert main(["analyze", "--memory", "16492", "--budget", "2.5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "budget" in err and "integer" in err
