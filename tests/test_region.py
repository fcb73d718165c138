"""Issue 16: the effective-rate condition, the corrected window and the measured region.

* exact checks of the loss-rate bound r_bar = E[ceil((U - M)^+ / h)] on tiny cases
  (enumeration, Panjer) and of its pathwise premise on identical requests, where the
  proposition is rigorous: a slot removes at most ceil((R - M)^+ / h) requests and R <= U;
* the tuner never returns a budget outside the corrected window;
* ``stability analyze`` at 3.9 per class with b = 12 no longer calls the regime stable;
* a statistical test at alpha = 0.01: a point well inside the condition is stable, a point
  well beyond the measured boundary grows at lambda - mu_sat;
* every verification row of ``experiments.region`` can pass and can fail.
"""

import copy
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import stability as s
from proofs_check.brute import enumerated_pmf, panjer_pmf
from stability.theory import analyze
from stability.theory.budget import Budget
from stability.theory.effective import (certified_rate, corrected_window, effective_rate,
                                        loss_rate_bound, removal_unit)
from stability.theory.tuning import best_budget, budget_window, tune_budget

M = 16492
PAPER = s.Workload.paper_4_1(1.0)


def _brute_loss(pmf: np.ndarray, memory: int, h: int) -> float:
    """E[ceil((U - M)^+ / h)] from a pmf on 0..n-1."""
    u = np.arange(pmf.size)
    return float(np.dot(pmf, np.ceil(np.maximum(u - memory, 0) / h)))


def _pmf(d: dict) -> np.ndarray:
    out = np.zeros(max(d) + 1)
    for u, pr in d.items():
        out[u] = pr
    return out


TINY = [
    (s.Workload.single(1.0, s.UniformInt(1, 2), s.UniformInt(1, 3)), Budget(2)),
    (s.Workload.single(1.0, s.UniformInt(1, 3), s.Deterministic(3)), Budget(1.5, "two-point")),
    (s.Workload((s.RequestClass(1.0, s.UniformInt(2, 3), s.Deterministic(2)),
                 s.RequestClass(2.0, s.Deterministic(1), s.UniformInt(1, 3)))),
     Budget(1.4, "two-point")),
]


@pytest.mark.parametrize("case", range(len(TINY)))
def test_exact_loss_bound_equals_enumeration_on_tiny_cases(case):
    w, b = TINY[case]
    pmf = _pmf(enumerated_pmf(w, b))
    h = removal_unit(w)
    mean = float(np.dot(np.arange(pmf.size), pmf))
    for memory in sorted({int(mean) - 2, int(mean), int(mean) + 3, int(mean) + 8}):
        if memory < 1:
            continue
        ref = _brute_loss(pmf, memory, h)
        got = loss_rate_bound(w, b, memory, "exact", max_levels=5000)  # spacing s = h
        ch = loss_rate_bound(w, b, memory, "chernoff")
        assert got.spacing == h
        assert got.loss == pytest.approx(ref, rel=1e-6, abs=2e-9 * max(1, b.mean)), memory
        assert got.loss >= ref - 1e-12  # an upper bound (the remainder is added)
        coarse = loss_rate_bound(w, b, memory, "exact", max_levels=3)  # s > h: looser
        assert coarse.loss >= ref - 1e-12
        assert ch.loss >= got.loss - 1e-12  # Chernoff is looser
        assert got.effective_rate == pytest.approx(b.mean - got.loss)


def test_exact_loss_bound_equals_panjer_for_poisson_budgets():
    w = s.Workload.single(1.0, s.UniformInt(1, 3), s.UniformInt(1, 4))
    b = Budget(2.5, "poisson")
    pmf = panjer_pmf(w, b, 400)
    h = removal_unit(w)
    for memory in (10, 14, 20, 30):
        ref = _brute_loss(pmf, memory, h)
        got = loss_rate_bound(w, b, memory, "exact", max_levels=5000)
        assert got.loss == pytest.approx(ref, rel=1e-6, abs=5e-9), memory
        assert loss_rate_bound(w, b, memory, "exact").loss >= ref - 1e-12


def test_loss_bound_on_the_paper_mix():
    b11 = loss_rate_bound(PAPER, 11, M, "exact", max_levels=1000)
    assert b11.removal_unit == 11 and b11.spacing == 11  # h = l + 1; every level used
    assert 0.012 < b11.loss < 0.013  # 0.0126 (measured saturated loss: 0.0033)
    b12 = loss_rate_bound(PAPER, 12, M, "exact", max_levels=1000)
    assert 10 < b12.loss < 10.5  # far above the margin 12 - 11.7 = 0.3
    coarse = loss_rate_bound(PAPER, 12, M, "exact")  # fewer levels: looser, still a bound
    assert coarse.loss >= b12.loss
    ch = loss_rate_bound(PAPER, 12, M, "chernoff")
    assert ch.loss >= coarse.loss
    # the Chernoff form is the overflow bound times the geometric removals bound
    assert ch.loss == pytest.approx(ch.overflow * ch.removals_per_overflow)
    # E[U] >= M: the Chernoff form gives up, the exact sum is finite and >= (E[U] - M) / h
    over = loss_rate_bound(PAPER, 13, M, "chernoff")
    assert math.isinf(over.loss) and over.effective_rate == -math.inf
    ex = loss_rate_bound(PAPER, 13, M, "exact")
    assert (13 * 4060 / 3 - M) / 11 <= ex.loss < math.inf


def _saturated_identical(l: int, o: int, b: int, memory: int, slots: int, engine: str):
    """Identical requests, all waiting at slot 0 (the queue never empties)."""
    n = b * slots + 10
    req = s.Requests(np.zeros(n, int), np.full(n, l), np.full(n, o))
    return s.simulate(req, s.FlowControl(b), memory, horizon=slots, seed=0, engine=engine)


def _relaxed_demand(l: int, o: int, b: int, t: int) -> int:
    """U_t of the eviction-free process with b activations per slot since slot 0."""
    return b * sum(l + a + 1 for a in range(min(t + 1, o)))


@settings(deadline=None, max_examples=60)
@given(l=st.integers(1, 6), o=st.integers(1, 8), b=st.integers(1, 4),
       slack=st.integers(-40, 30), engine=st.sampled_from(["fast", "reference"]))
def test_removals_never_exceed_the_relaxed_excess_for_identical_requests(l, o, b, slack,
                                                                        engine):
    """Steps (i)-(ii) of the proposition, pathwise: with identical requests the coupling is
    exact, so the removals up to T are at most sum_t ceil((U_t - M)^+ / h)."""
    stationary = _relaxed_demand(l, o, b, o)
    memory = max(l + o + 1, stationary + slack)
    slots = 60
    res = _saturated_identical(l, o, b, memory, slots, engine)
    m = res.metrics()
    removed = m.bounces + m.evictions
    h = l + 1
    bound = sum(math.ceil(max(_relaxed_demand(l, o, b, t) - memory, 0) / h)
                for t in range(slots))
    assert removed <= bound
    if bound == 0:
        assert m.overflow_events == 0


def test_identical_requests_lose_at_most_r_bar_per_slot_in_the_long_run():
    l, o, b = 3, 6, 4
    memory = _relaxed_demand(l, o, b, o) - 9  # the stationary U exceeds M by 9
    w = s.Workload.single(1.0, l, o)
    bound = loss_rate_bound(w, b, memory, "exact")
    assert bound.loss == pytest.approx(math.ceil(9 / (l + 1)))  # U is deterministic
    slots = 3000
    m = _saturated_identical(l, o, b, memory, slots, "fast").metrics()
    assert 0 < (m.bounces + m.evictions) / slots <= bound.loss


def test_corrected_window_lies_inside_the_reconstructed_one_and_satisfies_the_condition():
    for rate in (2.5, 3.0, 3.5):
        w = s.Workload.paper_4_1(rate)
        rec = budget_window(w, M)
        for law in ("deterministic", "two-point", "poisson"):
            cw = corrected_window(w, M, law)
            if not cw.nonempty:
                continue
            assert rec.low < cw.low <= cw.high < rec.high
            for beta in np.linspace(cw.low, cw.high, 5):
                if law == "deterministic":
                    beta = round(beta)
                assert effective_rate(w, Budget(beta, law), M).holds
                assert cw.contains(beta)
            step = 1.0 if law == "deterministic" else 2e-3
            for beta in (cw.high + step, cw.low - step):
                if rec.low < beta < rec.high:
                    assert not effective_rate(w, Budget(beta, law), M).holds
    # 3.9 per class: no budget of any law is certified, though the window is non-empty
    w = s.Workload.paper_4_1(3.9)
    assert budget_window(w, M).nonempty
    for law in ("deterministic", "two-point", "poisson"):
        assert not corrected_window(w, M, law).nonempty
    # the exact bound certifies at least what the Chernoff bound does
    w = s.Workload.paper_4_1(3.0)
    ch = corrected_window(w, M, "deterministic", "chernoff")
    ex = corrected_window(w, M, "deterministic", "exact")
    assert ex.low <= ch.low and ex.high >= ch.high
    win = budget_window(w, M, law="two-point")
    assert win.corrected is not None and win.to_dict()["corrected"]["nonempty"]


def test_certified_rate_is_below_the_critical_rate():
    cr = certified_rate(PAPER, M, "deterministic", "chernoff")
    assert cr.budget == 11 and 0.88 < cr.fraction < 0.9
    cr_two = certified_rate(PAPER, M, "two-point", "chernoff")
    assert cr.rate - 1e-9 <= cr_two.rate < cr_two.critical_rate


@pytest.mark.parametrize("rate,target", [(2.0, 1e-6), (3.0, 1e-3), (3.0, 0.3), (3.4, 0.5),
                                         (3.5, 1e-2), (3.9, 0.5)])
def test_tuner_never_returns_a_budget_outside_the_corrected_window(rate, target):
    w = s.Workload.paper_4_1(rate)
    for law in ("deterministic", "two-point", "poisson"):
        t = tune_budget(w, M, target, law)
        cw = corrected_window(w, M, law)
        assert t.stable == cw.contains(t.budget)
        if t.stable:
            assert t.effective_rate > w.total_rate
            assert t.budget <= cw.high + 1e-12
        if t.capped:  # the overflow target allowed more: lowered to the window's top
            assert t.budget == pytest.approx(cw.high)
    res = best_budget(w, M, target)
    if res.best is not None:
        best = res.best
        assert corrected_window(w, M, best.law).contains(best.budget)


def test_tuner_caps_a_budget_the_overflow_target_alone_would_allow():
    w = s.Workload.paper_4_1(3.0)
    t = tune_budget(w, M, 0.3, "two-point")
    assert t.capped and t.stable
    loose = tune_budget(w, M, 0.3, "two-point").budget
    assert loose == pytest.approx(corrected_window(w, M, "two-point").high)


def test_analyze_no_longer_calls_3_9_per_class_with_b_12_stable():
    rep = analyze(s.Workload.paper_4_1(3.9), M, 12)
    assert rep.window["low"] < 12 < rep.window["high"]  # inside the reconstructed window
    assert rep.queue["stable"] is False
    e = rep.effective
    assert not e["holds"] and e["effective_rate"] < 11.7
    assert not e["corrected_window"]["nonempty"]
    text = rep.to_text()
    assert "NOT certified stable" in text and "loss eats the margin" in text
    assert "E[B] - lambda = 0.3" in text and "WARNING" in text
    ok = analyze(s.Workload.paper_4_1(3.0), M, 10, exact=False)
    assert ok.queue["stable"] and ok.effective["holds"] and not ok.effective["warning"]
    assert "certified stable (effective-rate condition holds)" in ok.to_text()
    gone = analyze(s.Workload.paper_4_1(4.5), M, 12, exact=False)  # lambda > E[B]
    assert not gone.queue["stable"] and "UNSTABLE" in gone.to_text()


def test_effective_rate_rejects_bad_input():
    with pytest.raises(ValueError, match="method"):
        loss_rate_bound(PAPER, 10, M, "magic")
    with pytest.raises(ValueError, match="per-class"):
        loss_rate_bound(PAPER, s.ClassBudgets((4, 4, 4)), M)
    with pytest.raises(ValueError, match="memory"):
        effective_rate(PAPER, 10, 0)
    with pytest.raises(ValueError, match="law"):
        corrected_window(PAPER, M, "gamma")
    with pytest.raises(ValueError, match="max_levels"):
        loss_rate_bound(PAPER, 10, M, "exact", max_levels=0)


# ---------------------------------------------------------------- statistical (alpha 0.01)
@pytest.mark.slow
def test_inside_the_condition_stable_beyond_the_boundary_growing_at_lambda_minus_mu_sat():
    from scipy.stats import t as student_t

    from experiments.region import _run_growth, _run_saturated, _seeds, classify

    seeds = _seeds(5)
    slots = 200_000
    lam_star = 3 * M / 4060

    def growth(rate, budget):
        reps = [_run_growth(dict(kind="paper-4.1", law="deterministic", memory=M, rate=rate,
                                 budget=budget, slots=slots, seed=sd)) for sd in seeds]
        return (np.array([r["growth"] for r in reps]),
                float(np.mean([r["queue_second_half"] for r in reps])))

    def ci(x):
        half = student_t.ppf(0.995, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size)
        return x.mean() - half, x.mean() + half

    delta = 1e-3 * lam_star
    # well inside: 3.0 per class, b = 10 (E[B] - r_bar = 10 - 1.6e-8 > 9)
    assert effective_rate(s.Workload.paper_4_1(3.0), 10, M, "exact").holds
    g_in, q_in = growth(9.0, 10)
    lo, hi = ci(g_in)
    assert classify(g_in, q_in, delta, slots) == "stable"
    assert lo <= 0 <= hi and hi - lo < 0.01  # contains 0 and narrow enough to mean something
    # well beyond the measured boundary: 3.9 per class, b = 12 (mu_sat(12) = 11.6 < 11.7)
    g_out, q_out = growth(11.7, 12)
    assert classify(g_out, q_out, delta, slots) == "unstable"
    mu = np.array([_run_saturated(dict(kind="paper-4.1", law="deterministic", memory=M,
                                       budget=12, slots=slots, seed=sd))["completion_rate"]
                   for sd in seeds])
    drift = 11.7 - mu.mean()
    lo_out, hi_out = ci(g_out)
    assert lo_out > 0
    # the growth is lambda - mu_sat (saturation rule), within the two intervals' widths
    se = math.sqrt(g_out.var(ddof=1) / g_out.size + mu.var(ddof=1) / mu.size)
    assert abs(g_out.mean() - drift) <= student_t.ppf(0.995, g_out.size - 1) * se
    # negative controls: the stable interval excludes that drift, the unstable one excludes 0
    assert not lo <= drift <= hi
    assert not lo_out <= 0 <= hi_out


# ----------------------------------------------------------- verification rows: both sides
def _interval(values):
    from experiments.common import Interval

    x = np.asarray(values, float)
    return dict(Interval.of(x).to_dict(), values=x.tolist())


def _results():
    """A small honest panel: one point per row of interest (loads, budgets / lambda*)."""
    def point(load, budget, verdict, r_bar, g):
        return dict(load=load, budget=budget, verdict=verdict, r_bar=r_bar,
                    growth=_interval(g), queue_second_half=0.0, loss_rate=0.0)

    def sat(budget, mu, loss, r_bar):
        return dict(budget=budget, completion=_interval(mu), loss_rate=_interval(loss),
                    r_bar=r_bar, overflow_rate=0.0, min_queue=100)

    panel = dict(kind="paper-4.1", law="deterministic", memory=M, critical_rate=12.0,
                 delta=0.012, theory={"loss_method": "exact"},
                 points=[point(0.7, 0.8, "stable", 0.0, [0.0, 1e-5, -1e-5]),      # A
                         point(0.96, 0.985, "unstable", 10.0, [0.1, 0.11, 0.09]),  # B
                         point(0.8, 1.2, "stable", math.inf, [0.0, 1e-5, -1e-5]),  # C
                         point(0.97, 1.2, "unstable", math.inf, [0.3, 0.31, 0.29])],  # D
                 saturated=[sat(0.8, [0.8, 0.8001, 0.7999], [0.0, 0.0, 0.0], 0.0),
                            sat(0.985, [0.951, 0.9512, 0.9508], [0.40, 0.41, 0.39], 10.0),
                            sat(1.2, [0.94, 0.9402, 0.9398], [3.0, 3.1, 2.9], math.inf)])
    return {"panels": {"paper-4.1/deterministic": panel}}


def _verdicts(results):
    from experiments.region import verify

    return [r.verdict for r in verify(results)]


def test_every_region_row_can_pass_and_fail():
    base = _results()
    assert _verdicts(base) == ["FAIL", "FAIL", "PASS", "PASS", "PASS", "PASS"]

    def changed(edit):
        r = copy.deepcopy(base)
        edit(r["panels"]["paper-4.1/deterministic"])
        return _verdicts(r)

    # 1. window sufficient: passes without the unstable point B
    assert changed(lambda p: p["points"].pop(1))[0] == "PASS"
    # 2. upper end necessary: passes without the stable point C above M / E[w]
    assert changed(lambda p: p["points"].pop(2))[1] == "PASS"
    # 3. corrected condition: fails when A is unstable, inconclusive when undecided
    assert changed(lambda p: p["points"][0].update(verdict="unstable"))[2] == "FAIL"
    assert changed(lambda p: p["points"][0].update(verdict="undecided"))[2] == "INCONCLUSIVE"
    # 4. beyond the boundary: fails when D is stable
    assert changed(lambda p: p["points"][3].update(verdict="stable"))[3] == "FAIL"
    # 5. inside the boundary: fails when C is unstable
    assert changed(lambda p: p["points"][2].update(verdict="unstable"))[4] == "FAIL"
    # 6. loss bound: fails when the measured loss exceeds r_bar
    assert changed(lambda p: p["saturated"][1].update(
        loss_rate=_interval([12.0, 12.1, 11.9])))[5] == "FAIL"


def test_classify_needs_a_significant_and_substantial_growth():
    from experiments.region import classify

    delta, slots = 0.012, 200_000
    assert classify([0.1, 0.11, 0.09, 0.1], 10_000.0, delta, slots) == "unstable"
    assert classify([1e-5, -1e-5, 2e-5, 0.0], 5.0, delta, slots) == "stable"
    # significant but below the resolution delta, with a small queue: stable at this budget
    assert classify([0.002, 0.0021, 0.0019], 50.0, delta, slots) == "stable"
    # significant but the queue is small and the growth not resolved below delta: undecided
    assert classify([0.02, 0.021, 0.019], 50.0, delta, slots) == "undecided"
    # too wide to exclude growth delta, or a large queue that does not grow significantly
    assert classify([0.05, -0.05, 0.0], 5.0, delta, slots) == "undecided"
    assert classify([0.05, -0.05, 0.0], 5000.0, delta, slots) == "undecided"
    assert classify([0.1], 1e6, delta, slots) == "undecided"  # one replication: no interval


def test_demand_variance_of_a_deterministic_demand_is_zero_not_negative():
    """Deterministic lengths and budget make U deterministic; the two sums of
    demand_variance cancel and rounding once left -7e-15 (a math domain error downstream)."""
    from stability.theory.moments import demand_variance

    w = s.Workload.single(1.0, 1, 4)
    assert demand_variance(w, Budget(1)) == 0.0
    assert demand_variance(w, Budget(2, "poisson")) > 0
