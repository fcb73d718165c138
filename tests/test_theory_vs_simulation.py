"""Theory of docs/model.md section 3 against the simulator, by replications and confidence intervals.

Each test uses fixed seeds, R independent replications (distinct seeds), a Student-t
interval at level 1 - ALPHA over the replication means, and asserts that the theoretical
value lies inside (or on the right side, for a bound) AND that the interval is narrow
enough to mean something; a negative control checks that a wrong value would be caught.
Parameters sit well inside or well outside the stability region, never on its boundary.
"""

import math

import numpy as np
import pytest
from scipy import stats

import stability as s
from stability.theory import (
    Budget,
    critical_rate,
    demand_mean,
    demand_variance,
    exact_tail,
    lindley_mean_queue,
    overflow_bound,
    per_slot_overflow,
)

ALPHA = 0.01
M = 16492
HUGE = 10**9  # a capacity that never binds: the eviction-free process itself


def interval(samples, alpha=ALPHA):
    """Student-t confidence interval for the mean of independent replication values."""
    x = np.asarray(samples, dtype=float)
    half = stats.t.ppf(1 - alpha / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size)
    return x.mean() - half, x.mean() + half


def _stream_means(workload, policy, memory, slots, seeds, warmup, what):
    out = []
    for seed in seeds:
        r = s.simulate_stream(workload, policy, memory, slots, seed=seed, warmup=warmup)
        out.append(getattr(r.stats, what) / r.stats.measured_slots)
    return out


@pytest.mark.parametrize("case", ["unthrottled", "saturated"])
def test_mean_kv_equals_rate_times_mean_memory_time(case):
    """Little's law for memory-time: mean KV = lambda E[w] when every arrival starts at once
    (Greedy, capacity never binding), and E[B] E[w] under saturated flow control (docs/model.md 3.2)."""
    if case == "unthrottled":
        w, policy = s.Workload.paper_4_1(3.0), s.Greedy()
        theory = w.mean_kv_load()
    else:
        w, policy = s.Workload.paper_4_1(4.0), s.FlowControl(10)  # lambda = 12 > b: saturated
        theory = demand_mean(w, Budget(10))
    kv = _stream_means(w, policy, HUGE, 20_000, range(100, 110), 300, "kv_sum")
    lo, hi = interval(kv)
    assert lo <= theory <= hi
    assert hi - lo < 0.01 * theory
    assert not lo <= 1.02 * theory <= hi  # negative control: 2% off is detected


@pytest.mark.parametrize("policy,budget", [
    (s.FlowControl(10), Budget(10)),
    (s.FlowControl(10.5, law="poisson"), Budget(10.5, "poisson")),
    (s.FlowControl(10.5, law="two-point"), Budget(10.5, "two-point")),
])
def test_mean_queue_is_the_lindley_mean(policy, budget):
    """Flow control with lambda = 9 < E[B] and no overflow: the queue after admission is the
    Lindley walk max(Q + N - B, 0), whose mean Spitzer's identity gives exactly."""
    w = s.Workload.paper_4_1(3.0)
    theory = lindley_mean_queue(w.total_rate, budget).mean_queue
    q = _stream_means(w, policy, HUGE, 50_000, range(300, 310), 500, "queue_sum")
    lo, hi = interval(q)
    assert lo <= theory <= hi
    assert hi - lo < 0.15 * theory
    # negative control: the (finite) Lindley mean of the same law with a budget one higher
    wrong = lindley_mean_queue(w.total_rate, Budget(budget.mean + 1.0, budget.law)).mean_queue
    assert math.isfinite(wrong) and not lo <= wrong <= hi


def _growth(workload, policy, slots, seeds, tail=200):
    """Per replication: queue growth per slot; memory-time of all completed requests per
    slot; and memory-time per slot completed of the requests that arrived before
    slots - tail (not censored by the horizon in a stable system)."""
    rates, done_w, early_w = [], [], []
    for seed in seeds:
        req = workload.generate(slots, seed)
        r = s.simulate(req, policy, M, horizon=slots, seed=seed)
        q = r.series.queue.astype(float)
        half = q.size // 2
        # difference of the two half-run means, per slot between their centres
        rates.append((q[half:].mean() - q[:half].mean()) / (half * r.series.stride))
        done = r.completion >= 0
        done_w.append(float(req.memory_time()[done].sum()) / slots)
        early = done & (req.arrival < slots - tail)
        early_w.append(float(req.memory_time()[early].sum()) / (slots - tail))
    return np.array(rates), np.array(done_w), np.array(early_w)


def test_queue_grows_above_the_critical_rate_and_not_below():
    """Prop. 3.2: above lambda* = M / E[w] no policy is stable.  Greedy at 1.2 lambda* per
    class: the queue grows, and completed memory-time per slot never exceeds M (the
    accounting behind Prop. 3.2), so the backlog of memory-time grows at least at
    lambda E[w] - M.  At 0.8 lambda* the queue does not grow."""
    lam_star = critical_rate(s.Workload.paper_4_1(1.0), M) / 3
    over = s.Workload.paper_4_1(1.2 * lam_star)
    rates, done_w, _ = _growth(over, s.Greedy(), 4000, range(700, 710))
    assert np.all(done_w <= M)  # exact: each completion used w memory-slots, M per slot
    lo, hi = interval(rates)
    assert lo > 0.5  # grows: 0, the value of a stable queue, is far outside
    assert hi - lo < 0.5 * (lo + hi) / 2
    under = s.Workload.paper_4_1(0.8 * lam_star)
    rates_u, _, early_u = _growth(under, s.Greedy(), 4000, range(720, 730))
    lo_u, hi_u = interval(rates_u)
    assert lo_u <= 0.0 <= hi_u and hi_u - lo_u < 0.05
    # below lambda* the work completed keeps up with the work arriving: lambda E[w] per slot
    lo_d, hi_d = interval(early_u)
    assert lo_d <= under.mean_kv_load() <= hi_d and hi_d - lo_d < 0.02 * under.mean_kv_load()
    assert not lo_d <= 1.03 * under.mean_kv_load() <= hi_d  # negative control


def test_overflow_frequency_is_below_the_eviction_free_tail_and_the_chernoff_bound():
    """Saturated flow control (lambda = 12 > b = 10) with M = E[U] + 2.5 sd: the overflow
    frequency per slot stays below P(U > M) of the eviction-free relaxation (an overflow
    bounces the newest activations, which lowers later demand) and below exp(-I(M))
    (the reconstructed Alg. 2 bound)."""
    w, b = s.Workload.paper_4_1(4.0), Budget(10)
    mean, sd = demand_mean(w, b), math.sqrt(demand_variance(w, b))
    memory = int(round(mean + 2.5 * sd))
    exact = per_slot_overflow(w, b, memory).prob[0]
    bound = overflow_bound(w, b, memory).per_slot
    freq = []
    for seed in range(400, 410):
        r = s.simulate_stream(w, s.FlowControl(10), memory, 20_000, seed=seed)
        freq.append(r.overflow_events / r.slots)
    lo, hi = interval(freq)
    assert hi <= exact <= bound
    assert lo > 0 and hi - lo < 0.5 * hi
    # negative control: the eviction-free tail one sd further out is below the interval
    assert per_slot_overflow(w, b, int(round(mean + 3.5 * sd))).prob[0] < lo


@pytest.mark.slow
def test_eviction_free_demand_follows_the_exact_fft_law():
    """With a capacity that never binds, saturated flow control's KV demand is U exactly.
    Slots 60 apart share no activation (max decode 60), so thinned samples are independent:
    a chi-square test against the FFT law passes at level ALPHA and rejects the law of a
    Poisson budget with the same mean (negative control)."""
    w = s.Workload.paper_4_1(4.0)
    samples = []
    for seed in range(500, 503):
        r = s.simulate_stream(w, s.FlowControl(10), HUGE, 60_000, seed=seed, series_points=60_000)
        assert r.series.stride == 1
        samples.append(r.series.kv[600::60])
    x = np.concatenate(samples)

    def p_value(budget):
        mean, sd = demand_mean(w, budget), math.sqrt(demand_variance(w, budget))
        edges = np.unique(np.round(mean + sd * stats.norm.ppf(np.linspace(0, 1, 21)[1:-1])))
        cdf = np.concatenate([[0.0], 1.0 - exact_tail(w, budget, edges.astype(int)).prob, [1.0]])
        expected = x.size * np.diff(cdf)
        observed = np.bincount(np.searchsorted(edges, x, side="left"), minlength=expected.size)
        chi2 = float(np.sum((observed - expected) ** 2 / expected))
        return stats.chi2.sf(chi2, expected.size - 1)

    assert x.size >= 2900
    assert p_value(Budget(10)) > ALPHA
    assert p_value(Budget(10.0, "poisson")) < ALPHA
