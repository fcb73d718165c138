"""Absolute checks of the engines through the public API only (docs/model.md 2.2 and 2.5).

The differential tests (fast kernel == reference) cannot see an error both engines share,
such as a latency off by one or a wrong eviction order.  These tests compare each engine
with values derived by hand from docs/model.md 1, or with the theory of docs/model.md section 3:

* a request admitted on arrival and never evicted has latency exactly o, TTFT exactly 1
  and queueing delay exactly 0 (docs/model.md 2.2 consequences), in the batch metrics, the
  per-class metrics and the streaming histograms;
* LIFO eviction on a two-request instance whose every slot is worked out below;
* the simulated mean queueing delay of flow control against the Lindley mean delay
  E[Q] / lambda (Spitzer's identity and Little's law), and the simulated mean latency at
  the tuner's budget against the tuner's prediction mean_delay + E[o];
* the Alg. 2 union bound P(any overflow in T slots) <= T exp(-I(M)) against the simulated
  frequency of runs with an overflow;
* inequality (2) with random lengths: capacity sum_k b_k w(max l_k, max o_k) never
  overflows under saturated Alg. 1.

Statistical checks follow STYLE.md: fixed seeds, R independent replications, Student-t
(or Clopper-Pearson) intervals at a stated level, Bonferroni-corrected when one test
checks several intervals, a narrowness check and a finite negative control.
"""

import math

import numpy as np
import pytest
from scipy import stats

import stability as s
from stability.theory import (
    Budget,
    PerClassBudget,
    alg1_peak_demand,
    lindley_mean_queue,
    overflow_bound,
    tune_budget,
)

ALPHA = 0.01  # family-wise level of each test
HUGE = 10**9  # a KV capacity that never binds
ENGINES = ("fast", "reference")


def t_interval(samples, alpha):
    """Student-t interval at level 1 - alpha for the mean of independent replications."""
    x = np.asarray(samples, dtype=float)
    half = stats.t.ppf(1 - alpha / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size)
    return x.mean() - half, x.mean() + half


# ---------------------------------------------------------------------------------------
# Undisturbed requests: latency = o, TTFT = 1, queueing delay = 0 (docs/model.md 2.2)


def _undisturbed_batch():
    """Eight requests of two classes, several arriving in the same slot; with a capacity
    that never binds, Greedy and FlowControl(8) admit every one on arrival."""
    arrival = np.array([0, 0, 0, 3, 3, 7, 12, 12])
    prompt = np.array([5, 1, 9, 2, 2, 4, 7, 3])
    decode = np.array([6, 1, 13, 4, 9, 2, 11, 5])
    class_id = np.array([0, 1, 0, 1, 1, 0, 0, 1])
    return s.Requests(arrival, prompt, decode, class_id)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("policy", [s.Greedy(), s.FlowControl(8)], ids=["greedy", "flow8"])
def test_undisturbed_requests_have_latency_o_ttft_1_and_no_delay(engine, policy):
    req = _undisturbed_batch()
    res = s.simulate(req, policy, HUGE, engine=engine)
    # per request, from docs/model.md 2.2: first decode in the arrival slot, completion o - 1 later
    assert np.array_equal(res.first_token, req.arrival)
    assert np.array_equal(res.completion, req.arrival + req.decode - 1)
    assert res.evictions_total == 0 and res.bounces == 0 and res.overflow_events == 0
    m = res.metrics()
    assert m.completed == len(req) and m.unfinished == 0
    o = np.sort(req.decode)
    # latency = completion - a + 1 = o: mean and order statistics of the decode lengths
    assert m.latency.mean == pytest.approx(o.mean(), rel=1e-15)
    assert (m.latency.p50, m.latency.p99) == (o[3], o[7])  # ceil(q n)-th smallest, n = 8
    assert m.ttft.mean == 1.0 and m.ttft.p50 == 1.0 and m.ttft.p99 == 1.0
    assert m.queueing_delay.mean == 0.0 and m.queueing_delay.p99 == 0.0
    for k in (0, 1):
        ok = np.sort(req.decode[req.class_id == k])
        pc = m.per_class[k]
        assert pc.latency.mean == pytest.approx(ok.mean(), rel=1e-15)
        assert pc.latency.p99 == ok[-1]
        assert pc.ttft.mean == 1.0 and pc.queueing_delay.mean == 0.0


def test_undisturbed_stream_has_latency_o_ttft_1_and_no_delay():
    """Streaming engine, Greedy with a capacity that never binds: every arrival starts at
    once, so class k (deterministic o_k) has latency exactly o_k and TTFT exactly 1."""
    w = s.Workload((s.RequestClass(2.0, s.UniformInt(1, 30), 7),
                    s.RequestClass(1.0, 4, 13)))
    res = s.simulate_stream(w, s.Greedy(), HUGE, 3000, seed=3, warmup=50)
    m = res.metrics()
    assert m.completed > 8000 and res.evictions_total == 0 and res.overflow_events == 0
    for k, o in ((0, 7), (1, 13)):
        pc = m.per_class[k]
        assert pc.completed > 2000
        assert (pc.latency.mean, pc.latency.p50, pc.latency.p99) == (o, o, o)
        assert (pc.ttft.mean, pc.ttft.p50, pc.ttft.p99) == (1.0, 1.0, 1.0)
        assert pc.queueing_delay.mean == 0.0
    assert m.ttft.mean == 1.0 and m.queueing_delay.mean == 0.0
    # mean latency = mean o over the completed requests (their tokens / their number)
    tokens, completed = res.class_totals[:, 1].sum(), res.class_totals[:, 0].sum()
    assert m.latency.mean == pytest.approx(tokens / completed, rel=1e-12)


# ---------------------------------------------------------------------------------------
# LIFO eviction, worked out slot by slot


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("policy", [s.Greedy(), s.FlowControl(1)], ids=["greedy", "flow1"])
def test_lifo_evicts_the_most_recent_activation(engine, policy):
    """M = 20; A (a = 0, l = 1, o = 10) and B (a = 1, l = 1, o = 10), both admitted on
    arrival.  In slot t the running demand is (t + 2) + (t + 1) = 2t + 3, which first
    exceeds 20 at t = 9, A's last slot.  LIFO evicts B (8 tokens wasted); A completes in
    slot 9; B restarts in slot 10 and completes in slot 19.  (FIFO eviction would evict
    A instead: A would complete in slot 19 and B in slot 10.)"""
    req = s.Requests([0, 1], [1, 1], [10, 10])
    res = s.simulate(req, policy, 20, horizon=40, engine=engine)
    assert res.completion.tolist() == [9, 19]
    assert res.evictions.tolist() == [0, 1]
    assert res.first_token.tolist() == [0, 1]
    assert res.start.tolist() == [0, 10]
    assert (res.overflow_events, res.evictions_total, res.wasted_tokens) == (1, 1, 8)
    m = res.metrics()
    assert m.latency.mean == (10 + 19) / 2  # A: 9 - 0 + 1, B: 19 - 1 + 1
    assert m.queueing_delay.mean == 0.0  # both first started on arrival
    assert m.restart_rate == 0.5


# ---------------------------------------------------------------------------------------
# Queueing delay and latency against the theory (docs/model.md 3.2)

W = s.Workload.paper_4_1(3.0)  # lambda = 9 per slot, E[o] = 40
M = 16492
SLOTS, WARMUP, SEEDS = 50_000, 500, range(300, 310)
LAWS = [Budget(10), Budget(10.5, "poisson"), Budget(10.5, "two-point")]


def _policy(budget):
    mean = int(budget.mean) if budget.law == "deterministic" else budget.mean
    return s.FlowControl(mean, law=budget.law)


def test_simulated_queueing_delay_is_the_lindley_mean_delay():
    """Flow control at lambda = 9 < E[B] with a capacity that never binds: the queue after
    admission is the Lindley walk max(Q + N - B, 0), so the mean queueing delay (first
    start minus arrival) is E[Q] / lambda (Little's law).  Three laws, so each interval is
    at level 1 - ALPHA / 3 (Bonferroni).  Negative controls: the delay plus one slot (the
    delay counted as TTFT) and the Lindley delay of a budget one higher."""
    alpha = ALPHA / len(LAWS)
    for budget in LAWS:
        theory = lindley_mean_queue(W.total_rate, budget).mean_delay
        delays = [s.simulate_stream(W, _policy(budget), HUGE, SLOTS, seed=seed, warmup=WARMUP)
                  .metrics().queueing_delay.mean for seed in SEEDS]
        lo, hi = t_interval(delays, alpha)
        assert lo <= theory <= hi, (budget, lo, theory, hi)
        assert hi - lo < 0.1 * theory and hi - lo < 0.5  # narrow: 10% and half a slot
        assert not lo <= theory + 1 <= hi
        wrong = lindley_mean_queue(W.total_rate, Budget(budget.mean + 1, budget.law)).mean_delay
        assert math.isfinite(wrong) and not lo <= wrong <= hi


def test_simulated_latency_at_the_tuned_budget_is_the_tuners_prediction():
    """At the tuner's budget for a per-slot overflow target of 1e-6 (Chernoff) overflow is
    rare, so a request's latency is its queueing delay plus o: the simulated mean latency
    (Sec. 4.1 classes at lambda = 2.5 each, capacity M = 16492) matches
    mean_latency = Lindley delay + E[o].  Three laws: Bonferroni level 1 - ALPHA / 3 per
    interval.  Negative control: one slot less."""
    alpha = ALPHA / 3
    w = s.Workload.paper_4_1(2.5)
    for law in ("deterministic", "poisson", "two-point"):
        tuned = tune_budget(w, M, 1e-6, law)
        assert tuned.stable
        lat = [s.simulate_stream(w, _policy(Budget(tuned.budget, law)), M, SLOTS, seed=seed,
                                 warmup=WARMUP).metrics().latency.mean for seed in SEEDS]
        lo, hi = t_interval(lat, alpha)
        assert lo <= tuned.mean_latency <= hi, (law, lo, tuned.mean_latency, hi)
        assert hi - lo < 0.25
        assert not lo <= tuned.mean_latency - 1 <= hi


# ---------------------------------------------------------------------------------------
# The union bound over a horizon, and inequality (2) with random lengths


def test_any_overflow_in_t_slots_is_below_t_times_the_per_slot_bound():
    """Saturated flow control (lambda = 12 > b = 10), deterministic budget: the saturated
    eviction-free demand dominates the real one until the first overflow, so
    P(any overflow in T slots) <= T exp(-I(M)) (docs/model.md 3.2).  M = 15520 puts exp(-I(M)) at
    3.0e-4; with T = 1000 the bound is 0.30.  Clopper-Pearson interval from 400 runs at
    level 1 - ALPHA: it lies below the bound (the bound holds), and its lower end lies
    above exp(-I(M)), the bound of one slot (negative control: without the factor T the
    bound would be violated)."""
    w, budget, memory, horizon = s.Workload.paper_4_1(4.0), Budget(10), 15520, 1000
    bound = overflow_bound(w, budget, memory, slots=horizon)
    assert bound.per_slot == pytest.approx(3.0e-4, rel=0.01)
    runs = 400
    hits = sum(s.simulate_stream(w, s.FlowControl(10), memory, horizon, seed=seed)
               .overflow_events > 0 for seed in range(runs))
    ci = stats.binomtest(hits, runs).proportion_ci(1 - ALPHA, method="exact")
    assert ci.high < bound.expected_events
    assert ci.low > bound.per_slot


def test_inequality_2_capacity_never_overflows_with_random_lengths():
    """Saturated Alg. 1 (rates far above the budgets) with random lengths: at capacity
    alg1_peak_demand = sum_k b_k w(max l_k, max o_k) it never overflows (each class holds
    at most b_k activations per age, each at most max l + a + 1 tokens).  Negative control:
    at the capacity sum_k b_k w(E[l_k], E[o_k]) built from mean lengths, it does."""
    w = s.Workload((s.RequestClass(6.0, s.UniformInt(2, 12), s.UniformInt(1, 30)),
                    s.RequestClass(4.0, 5, s.UniformInt(10, 20))))
    budgets = (2, 1)
    peak = alg1_peak_demand(w, PerClassBudget(budgets))
    assert peak == 2 * (12 * 30 + 30 * 31 / 2) + 1 * (5 * 20 + 20 * 21 / 2)
    res = s.simulate_stream(w, s.ClassBudgets(budgets), int(peak), 20_000, seed=7)
    assert res.overflow_events == 0 and res.stats.kv_max <= peak
    mean_peak = 2 * (7 * 15.5 + 15.5 * 16.5 / 2) + 1 * (5 * 15 + 15 * 16 / 2)
    low = s.simulate_stream(w, s.ClassBudgets(budgets), int(mean_peak), 20_000, seed=7)
    assert low.overflow_events > 0
