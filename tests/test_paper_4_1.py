"""Section 4.1 with Alg. 1 (ClassBudgets(4, 4, 4)): exact claims of Thm 3.3."""

import numpy as np
import pytest

import stability as s

M = 16492
BUDGETS = (4, 4, 4)
W = (410, 1220, 2430)


def test_memory_times_and_peak():
    w = s.Workload.paper_4_1(5.0)
    assert [c.mean_memory_time() for c in w.classes] == list(W)
    assert sum(b * x for b, x in zip(BUDGETS, W)) == 16240 <= M


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_saturated_alg1_peak_is_exactly_16240_and_never_overflows(seed):
    """At lambda = 5 > b_k every class queue stays busy: demand is sum_k b_k w_k every slot."""
    req = s.Workload.paper_4_1(5.0).generate(1500, seed)
    res = s.simulate(req, s.ClassBudgets(BUDGETS), M, horizon=1500, seed=seed)
    kv = res.series.kv
    assert res.overflow_events == 0 and res.evictions_total == 0 and res.bounces == 0
    assert kv.max() == 16240
    # once every class queue stays non-empty (it grows by about 1 per slot), each class
    # admits b_k per slot and the demand is the constant sum over ages of b_k (l + a + 1)
    assert (kv[300:] == 16240).all()
    # overload: queues grow by about 3 * (5 - 4) = 3 per slot
    growth = np.polyfit(np.arange(500, 1500), res.series.queue[500:1500], 1)[0]
    assert 2.7 < growth < 3.3


@pytest.mark.parametrize("rate", [3.0, 5.0])
def test_class_queues_follow_the_lindley_recursion(rate):
    """Q_k(t) = max(Q_k(t-1) + N_k(t) - b_k, 0), slot by slot, for every class."""
    slots = 800
    req = s.Workload.paper_4_1(rate).generate(slots, 11)
    res = s.simulate(req, s.ClassBudgets(BUDGETS), M, horizon=slots, seed=11)
    assert res.overflow_events == 0
    t = np.arange(slots)
    total = np.zeros(slots, np.int64)
    for k, b in enumerate(BUDGETS):
        mine = req.class_id == k
        arrivals = np.bincount(req.arrival[mine], minlength=slots)[:slots]
        lindley = np.zeros(slots, np.int64)
        q = 0
        for slot in range(slots):
            q = max(q + int(arrivals[slot]) - b, 0)
            lindley[slot] = q
        # waiting after admission in slot t: arrived by t, not yet started by t
        first = np.where(res.first_token[mine] >= 0, res.first_token[mine], slots)
        simulated = np.array([np.sum((req.arrival[mine] <= x) & (first > x)) for x in t])
        assert np.array_equal(simulated, lindley)
        total += lindley
    assert np.array_equal(res.series.queue, total)
