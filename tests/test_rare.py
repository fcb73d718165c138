"""stability.theory.rare: importance sampling of P(U > M) against exact tails, plain MC and Chernoff.

Every stochastic check has a fixed seed and a stated level: ALPHA = 0.01 is the
family-wise level, so a test (or a parametrized family of tests) checking k intervals
puts each at level 1 - ALPHA / k (Bonferroni).  It asserts that the interval contains the
true value AND is narrow, and a negative control (a wrong value) must fall outside.  The exact values come from the FFT tail of stability.theory, which
tests/test_theory.py checks against brute-force enumeration and Panjer's recursion.
"""

import math

import pytest
from scipy.stats import norm

from stability.theory.rare import (
    Estimate,
    TiltedSampler,
    overflow_probability_is,
    overflow_probability_mc,
    overflow_table,
)
from stability.theory import (
    Budget,
    DemandModel,
    PerClassBudget,
    chernoff_rate,
    demand_mean,
    demand_variance,
    exact_tail,
)
from stability.workload import Deterministic, Geometric, RequestClass, UniformInt, Workload

ALPHA = 0.01
Z = norm.ppf(1 - ALPHA / 2)


def bonferroni(k: int) -> float:
    """Per-interval alpha for k intervals checked at family-wise level ALPHA."""
    return ALPHA / k

# A small lattice case: two classes, random lengths, bounded U (max 252 for b = 2).
SMALL = Workload((RequestClass(2.0, UniformInt(1, 4), UniformInt(1, 12)),
                  RequestClass(1.0, 2, Deterministic(8))))
# Unbounded geometric decode lengths: exercises the age truncation and its bound.
GEOMETRIC = Workload((RequestClass(1.0, UniformInt(1, 3), Geometric(0.2)),))
PAPER = Workload.paper_4_1(5.0)

# (workload, budget, levels M with exact tails ~1e-3, ~1e-6, ~1e-12)
CASES = {
    "deterministic b=2": (SMALL, Budget(2), (155, 189, 227)),
    "poisson beta=2": (SMALL, Budget(2, "poisson"), (195, 260, 360)),
    "two-point beta=1.5": (SMALL, Budget(1.5, "two-point"), (130, 165, 211)),
    "geometric, deterministic b=3": (GEOMETRIC, Budget(3), (211, 286, 410)),
    "geometric, unthrottled": (GEOMETRIC.scaled(2.0), "unthrottled", (170, 243, 364)),
}


# The parametrized family below checks 5 cases x 3 levels = 15 intervals.
CASES_ALPHA = bonferroni(sum(len(levels) for _, _, levels in CASES.values()))


@pytest.mark.parametrize("name", list(CASES))
def test_is_interval_contains_exact_tail_down_to_1e_12_and_is_narrow(name):
    workload, budget, levels = CASES[name]
    exact = exact_tail(workload, budget, list(levels)).prob
    assert 5e-4 < exact[0] < 2e-3 and 5e-13 < exact[2] < 2e-12  # the intended depths
    for m, x in zip(levels, exact):
        est = overflow_probability_is(workload, budget, m, samples=20_000, seed=1,
                                      alpha=CASES_ALPHA)
        assert est.level == 1 - CASES_ALPHA and est.samples == 20_000 and est.theta > 0
        assert est.contains(x), (name, m, est, x)
        assert est.rel_half_width < 0.10, (name, m, est.rel_half_width)
        # Negative controls: 1.5 x the truth, and the truth at a wrong slack (M - 10),
        # fall outside the interval.
        assert not est.contains(1.5 * x)
        assert not est.contains(float(exact_tail(workload, budget, [m - 10]).prob[0]))
        assert est.truncation_bound <= 1e-6 * est.value


# Other shapes at ~1e-9: a two-point budget below 1 (n = 0), Alg. 1's per-class budgets
# (one stream per class), a mix of bounded and unbounded geometric decode lengths.
MIX = Workload((RequestClass(2.0, UniformInt(1, 5), UniformInt(1, 30)),
                RequestClass(1.0, 3, Geometric(0.1))))
SHAPES = {
    "two-point beta=0.6": (SMALL, Budget(0.6, "two-point"), 113),
    "per-class (1, 2)": (SMALL, PerClassBudget((1, 2)), 226),
    "mixed geometric, two-point beta=2.5": (MIX, Budget(2.5, "two-point"), 1015),
    "poisson beta=0.7": (SMALL, Budget(0.7, "poisson"), 179),
}


@pytest.mark.parametrize("name", list(SHAPES))
def test_is_interval_contains_exact_tail_for_other_budget_shapes(name):
    workload, budget, m = SHAPES[name]
    x = float(exact_tail(workload, budget, [m]).prob[0])
    assert 3e-10 < x < 3e-9
    # one interval per shape, 4 shapes: Bonferroni over the family
    est = overflow_probability_is(workload, budget, m, samples=20_000, seed=1,
                                  alpha=bonferroni(len(SHAPES)))
    assert est.contains(x) and est.rel_half_width < 0.10, (name, est, x)
    assert not est.contains(1.5 * x) and not est.contains(x / 1.5)


def test_plain_mc_cannot_reach_1e_12_but_is_does():
    m = CASES["deterministic b=2"][2][2]
    mc = overflow_probability_mc(SMALL, Budget(2), m, samples=50_000, seed=3)
    assert mc.hits == 0 and mc.value == 0.0 and mc.rel_error == math.inf
    assert mc.ci_high > 1e-5  # all plain MC can say
    est = overflow_probability_is(SMALL, Budget(2), m, samples=20_000, seed=3)
    assert est.ci_high < 1e-11


def test_plain_mc_contains_exact_tail():
    """The direct sampler (simulator's generator, no tilt) against the exact tail; three
    intervals, each at level 1 - ALPHA / 3 (Bonferroni)."""
    for budget, m in ((Budget(2), 130), (Budget(2, "poisson"), 150),
                      (Budget(1.5, "two-point"), 110)):
        x = float(exact_tail(SMALL, budget, [m]).prob[0])
        assert 5e-3 < x < 5e-2
        mc = overflow_probability_mc(SMALL, budget, m, samples=100_000, seed=4,
                                     alpha=bonferroni(3))
        assert mc.contains(x), (budget, mc, x)
        assert mc.rel_half_width < 0.15
        assert not mc.contains(1.3 * x) and not mc.contains(x / 1.3)


def test_is_agrees_with_plain_mc_where_both_reach_1e_3():
    """Sec. 4.1 classes, b = 10, slack 1500 tokens (P ~ 1.2e-3)."""
    budget = Budget(10)
    m = int(round(demand_mean(PAPER, budget))) + 1500
    est = overflow_probability_is(PAPER, budget, m, samples=20_000, seed=5)
    mc = overflow_probability_mc(PAPER, budget, m, samples=200_000, seed=6)
    assert mc.hits > 150 and est.rel_half_width < 0.05
    z = (est.value - mc.value) / math.hypot(est.stderr, mc.stderr)
    assert abs(z) < Z, (est, mc)
    # Negative control: IS at 200 tokens less slack is far outside the MC interval.
    wrong = overflow_probability_is(PAPER, budget, m - 200, samples=20_000, seed=5)
    assert not mc.contains(wrong.value)
    assert mc.contains(float(exact_tail(PAPER, budget, [m]).prob[0]))


def test_is_below_chernoff_bound():
    """P(U > M) <= exp(-I(M)) (docs/model.md 3.2): the whole interval lies below the bound (15
    intervals, each at level 1 - ALPHA / 15, Bonferroni)."""
    for name, (workload, budget, levels) in CASES.items():
        model = DemandModel(workload, budget)
        for m in levels:
            bound = math.exp(-chernoff_rate(model, m).rate)
            est = overflow_probability_is(workload, budget, m, samples=20_000, seed=2,
                                          alpha=CASES_ALPHA)
            assert est.ci_high < bound, (name, m)
            # Negative control: the bound at a level 3 sd deeper does not cover the estimate.
            sd = math.sqrt(demand_variance(workload, budget))
            deeper = math.exp(-chernoff_rate(model, m + 3 * sd).rate)
            assert deeper < est.ci_low, (name, m)


def test_tilted_mean_equals_lambda_prime():
    """Under the tilt at theta*, E_theta[U] = Lambda'(theta*) = M (the tilt is right).
    Five normal intervals, each at level 1 - ALPHA / 5 (Bonferroni)."""
    z = norm.ppf(1 - bonferroni(len(CASES)) / 2)
    for workload, budget, levels in CASES.values():
        model = DemandModel(workload, budget)
        m = levels[1]
        theta = chernoff_rate(model, m).theta
        u = TiltedSampler(workload, budget, theta).sample(20_000, seed=8).astype(float)
        half = z * u.std(ddof=1) / math.sqrt(u.size)
        assert abs(u.mean() - m) < half, (budget, u.mean(), m, half)
        assert half < 0.01 * m
        assert abs(u.mean() - (m - 0.2 * u.std())) > half  # negative control


def test_sampler_log_mgf_matches_demand_model_for_bounded_lengths():
    for workload, budget in ((SMALL, Budget(2)), (SMALL, Budget(1.5, "two-point")),
                             (PAPER, Budget(11, "poisson"))):
        model = DemandModel(workload, budget)
        for theta in (0.0, 0.01, 0.05):
            s = TiltedSampler(workload, budget, theta)
            assert s.truncation_mass == 0.0
            assert s.log_mgf == pytest.approx(model.log_mgf(theta), rel=1e-12, abs=1e-12)


def test_reproducible_and_independent_of_workers():
    kwargs = dict(samples=2 * 2**15 + 7, seed=11)
    a = overflow_probability_is(SMALL, Budget(2), 189, **kwargs)
    b = overflow_probability_is(SMALL, Budget(2), 189, workers=2, **kwargs)
    c = overflow_probability_is(SMALL, Budget(2), 189, samples=kwargs["samples"], seed=12)
    assert (a.value, a.stderr, a.hits) == (b.value, b.stderr, b.hits)
    assert a.value != c.value


def test_degenerate_levels():
    # M at or above max U: P(U > M) = 0 exactly.
    top = int(DemandModel(SMALL, Budget(2)).max_value)
    est = overflow_probability_is(SMALL, Budget(2), top, samples=100)
    assert est.value == 0.0 and est.ci_high == 0.0
    # M below the mean: theta* = 0, plain sampling with weight 1.
    est = overflow_probability_is(SMALL, Budget(2), 60, samples=20_000, seed=1)
    x = float(exact_tail(SMALL, Budget(2), [60]).prob[0])
    assert est.theta == 0.0 and est.contains(x) and est.rel_half_width < 0.01


def test_overflow_table_columns():
    table = overflow_table(SMALL, Budget(2), [130, 189], samples=5_000, mc_samples=20_000,
                           seed=0, alpha=bonferroni(2))  # two intervals checked below
    assert [r.memory for r in table.rows] == [130, 189]
    assert table.exact_unit == 1
    for r in table.rows:
        assert isinstance(r.importance, Estimate) and r.plain.method == "plain"
        assert r.importance.contains(r.exact) and r.exact <= r.chernoff
        assert r.slack == pytest.approx(r.memory - table.mean)
    text = table.format()
    assert "Chernoff" in text and "exact FFT" in text
    assert table.to_dict()["rows"][0]["importance"]["memory"] == 130


@pytest.mark.parametrize("call, field", [
    (lambda: overflow_probability_is(SMALL, 2, 0), "memory"),
    (lambda: overflow_probability_is(SMALL, 2, 10.5), "memory"),
    (lambda: overflow_probability_is(SMALL, 2, 100, samples=1), "samples"),
    (lambda: overflow_probability_is(SMALL, 2, 100, seed=-1), "seed"),
    (lambda: overflow_probability_is(SMALL, 2, 100, alpha=1.5), "alpha"),
    (lambda: overflow_probability_is(SMALL, 2, 100, theta=-0.1), "theta"),
    (lambda: overflow_probability_is(GEOMETRIC, 2, 100, theta=1.0), "theta"),
    (lambda: overflow_probability_is(SMALL, 2, 100, workers=0), "workers"),
    (lambda: overflow_probability_is("paper", 2, 100), "workload"),
    (lambda: overflow_probability_is(SMALL, "greedy", 100), "budget"),
    (lambda: overflow_probability_is(SMALL, Budget(2.5), 100), "budget"),
    (lambda: overflow_probability_mc(SMALL, 2, -3), "memory"),
    (lambda: overflow_probability_mc(SMALL, 2, 100, samples=0), "samples"),
    (lambda: overflow_table(SMALL, 2, []), "memories"),
    (lambda: overflow_table(SMALL, 2, [100], mc_samples=-1), "mc_samples"),
])
def test_bad_input_names_the_field(call, field):
    with pytest.raises(ValueError, match=field):
        call()


def test_cli_quick_json_reaches_below_1e_12(capsys):
    import json

    from stability.cli import main

    assert main(["rare", "--quick", "--json", "--samples", "2000", "--mc-samples", "2000",
                 "--mc-method", "tables"]) == 0
    tables = json.loads(capsys.readouterr().out)
    assert len(tables) == 2  # Sec. 4.1 classes with b = 10, and the geometric case
    for t in tables:
        values = [r["importance"]["value"] for r in t["rows"]]
        assert values[0] > 0.3 and values[-1] < 1e-12  # over 10 decades
        assert all(a > b for a, b in zip(values, values[1:]))  # decays with the slack
