"""The hindsight optimum (stability.hindsight): MILP vs brute force, bounds, schedules,
policies run by the simulator, bad input."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import stability as s
from stability.hindsight import (
    HEURISTIC_ORDERS,
    brute_force_optimum,
    decode_lower_bound,
    evaluate_schedule,
    heuristic_schedule,
    hindsight_optimum,
    lp_lower_bound,
    memory_volume_lower_bound,
    safe_horizon,
    synthetic_batch,
    upper_bound_schedule,
)


@st.composite
def tiny(draw, max_requests=4, max_prompt=3, max_decode=4, max_arrival=3, extra_memory=6):
    """1..max_requests requests, l in 1..3, o in 1..4, a in 0..3, M in [max(l+o), +6]."""
    n = draw(st.integers(1, max_requests))
    ints = lambda lo, hi: st.lists(st.integers(lo, hi), min_size=n, max_size=n)  # noqa: E731
    a, l, o = draw(ints(0, max_arrival)), draw(ints(1, max_prompt)), draw(ints(1, max_decode))
    need = max(max(x + y for x, y in zip(l, o)), 2)
    memory = draw(st.integers(need, need + extra_memory))
    return s.Requests(a, l, o), memory


def plain_check(req, start, memory):
    """Independent feasibility check, slot by slot: returns the per-slot memory list."""
    a, l, o = list(req.arrival), list(req.prompt), list(req.decode)
    start = [int(x) for x in start]
    end = max(si + oi for si, oi in zip(start, o)) if start else 0
    usage = []
    for t in range(end):
        total = 0
        for i in range(len(a)):
            assert start[i] >= a[i]
            if start[i] <= t <= start[i] + o[i] - 1:
                total += l[i] + (t - start[i]) + 1
        assert total <= memory, f"slot {t}: {total} > {memory}"
        usage.append(total)
    return usage


def check_schedule(req, sch, memory):
    usage = plain_check(req, sch.start, memory)
    assert list(sch.memory) == usage
    assert np.array_equal(sch.completion, sch.start + req.decode - 1)
    assert np.array_equal(sch.latency, sch.start + req.decode - req.arrival)
    assert sch.total_latency == int(sch.latency.sum())


@settings(deadline=None, max_examples=150)
@given(tiny(), st.booleans(), st.booleans())
def test_milp_equals_brute_force(instance, clique_rows, symmetry_breaking):
    req, memory = instance
    res = hindsight_optimum(req, memory, time_limit=20, clique_rows=clique_rows,
                            symmetry_breaking=symmetry_breaking)
    bf = brute_force_optimum(req, memory)
    assert res.optimal and res.horizon_certified
    assert res.total_latency == bf.total_latency
    assert res.lower_bound == res.total_latency and res.gap == 0
    check_schedule(req, res.schedule, memory)
    check_schedule(req, bf, memory)
    assert res.schedule.makespan < safe_horizon(req)


@settings(deadline=None, max_examples=100)
@given(tiny(max_requests=5, max_decode=6, max_arrival=6))
def test_bounds_sandwich_the_optimum(instance):
    req, memory = instance
    opt = hindsight_optimum(req, memory, time_limit=20).require_optimal().total_latency
    lp = lp_lower_bound(req, memory)
    plain_lp = lp_lower_bound(req, memory, clique_rows=False, symmetry_breaking=False)
    assert plain_lp.status == "optimal" and plain_lp.value <= lp.value + 1e-6
    assert plain_lp.bound <= opt
    dec = decode_lower_bound(req)
    vol = memory_volume_lower_bound(req, memory)
    assert lp.status == "optimal"
    assert dec <= vol <= opt
    assert dec <= lp.value + 1e-6 and lp.bound <= opt
    for order in HEURISTIC_ORDERS:
        sch = heuristic_schedule(req, memory, order)
        check_schedule(req, sch, memory)
        assert opt <= sch.total_latency
    assert upper_bound_schedule(req, memory).total_latency >= opt


def test_brute_force_five_requests():
    rng = np.random.default_rng(7)
    for _ in range(6):
        n = 5
        l, o = rng.integers(1, 4, n), rng.integers(1, 5, n)
        req = s.Requests(rng.integers(0, 4, n), l, o)
        memory = int((l + o).max()) + int(rng.integers(0, 7))
        bf = brute_force_optimum(req, memory)
        res = hindsight_optimum(req, memory).require_optimal()
        assert res.total_latency == bf.total_latency
        check_schedule(req, res.schedule, memory)


POLICIES = [s.Greedy(), s.FlowControl(1), s.FlowControl(2), s.FlowControl(5)]


@settings(deadline=None, max_examples=60)
@given(tiny(max_requests=7, max_prompt=4, max_decode=6, max_arrival=8, extra_memory=10),
       st.sampled_from(POLICIES + ["conservative"]))
def test_simulated_policies_are_no_better_than_the_optimum(instance, policy):
    req, memory = instance
    if policy == "conservative":
        policy = s.Conservative(int(req.decode.max()))
    opt = hindsight_optimum(req, memory, time_limit=20).require_optimal().total_latency
    run = s.simulate(req, policy, memory)  # horizon=None: to completion
    assert (run.completion >= 0).all()
    total = int((run.completion - req.arrival + 1).sum())
    assert total >= opt
    # the final (completing) runs alone are a feasible one-start schedule of the same cost
    assert np.array_equal(run.completion, run.start + req.decode - 1)
    sch = evaluate_schedule(req, run.start, memory)
    plain_check(req, run.start, memory)
    assert sch.total_latency == total


def test_synthetic_family_bounds_and_schedule():
    for seed in range(4):
        req, memory = synthetic_batch(6, seed)
        assert 30 <= memory <= 50 and (req.arrival == 0).all()
        assert (req.prompt <= 5).all() and (req.prompt + req.decode <= memory).all()
        res = hindsight_optimum(req, memory, time_limit=30).require_optimal()
        check_schedule(req, res.schedule, memory)
        lp = lp_lower_bound(req, memory)
        assert decode_lower_bound(req) <= memory_volume_lower_bound(req, memory)
        assert memory_volume_lower_bound(req, memory) <= res.total_latency
        assert lp.bound <= res.total_latency <= res.heuristic_latency
        for policy in (s.Greedy(), s.FlowControl(2)):
            run = s.simulate(req, policy, memory)
            assert int((run.completion - req.arrival + 1).sum()) >= res.total_latency


def test_time_limit_reports_best_schedule_and_bound():
    req, memory = synthetic_batch(24, seed=3)
    res = hindsight_optimum(req, memory, time_limit=1)
    assert res.status == "time_limit"
    assert not res.optimal
    assert res.total_latency is not None and res.total_latency <= res.heuristic_latency
    assert memory_volume_lower_bound(req, memory) <= res.lower_bound <= res.total_latency
    assert 0 <= res.gap < 1
    check_schedule(req, res.schedule, memory)
    with pytest.raises(RuntimeError, match="time_limit"):
        res.require_optimal()


def test_short_horizon_infeasible_and_certificates():
    req = s.Requests([0, 0], [1, 1], [3, 3])  # 2,3,4 tokens each: they cannot overlap at M=4
    res = hindsight_optimum(req, 4, horizon=3)
    assert res.status == "infeasible" and res.total_latency is None and res.schedule is None
    with pytest.raises(RuntimeError, match="infeasible"):
        res.require_optimal()
    full = hindsight_optimum(req, 4).require_optimal()
    assert full.total_latency == 3 + 6 and full.horizon == safe_horizon(req) == 6
    short = hindsight_optimum(req, 4, horizon=6).require_optimal()
    assert short.total_latency == 9 and short.horizon_certified


@settings(deadline=None, max_examples=40)
@given(tiny(max_requests=4, max_decode=5))
def test_restricted_horizons_and_their_certificates(instance):
    """Every horizon from max(a + o) to the optimal makespan + 1: the restricted optimum is
    >= the unrestricted one, equal once the optimum fits, and a certified horizon never
    claims a restricted optimum that is worse than the true one."""
    req, memory = instance
    full = hindsight_optimum(req, memory).require_optimal()
    for h in range(int((req.arrival + req.decode).max()), full.schedule.makespan + 2):
        res = hindsight_optimum(req, memory, horizon=h)
        if res.status == "infeasible":
            assert not res.horizon_certified
            continue
        res.require_optimal()
        check_schedule(req, res.schedule, memory)
        assert res.schedule.makespan <= h - 1
        assert res.total_latency >= full.total_latency
        if h > full.schedule.makespan:
            assert res.total_latency == full.total_latency
        if res.horizon_certified:
            assert res.total_latency == full.total_latency


def test_empty_instance():
    req = s.Requests([], [], [])
    res = hindsight_optimum(req, 10)
    assert res.optimal and res.total_latency == 0
    assert brute_force_optimum(req, 10).total_latency == 0
    assert memory_volume_lower_bound(req, 10) == decode_lower_bound(req) == 0
    assert lp_lower_bound(req, 10).bound == 0


def test_bad_input():
    req = s.Requests([0, 1], [2, 3], [4, 5])
    with pytest.raises(ValueError, match=r"request 1 has prompt l=3 and decode o=5.*M=7"):
        hindsight_optimum(req, 7)
    for bad in (1, 0, -5, 2.5, "10", True, None):
        with pytest.raises(ValueError, match="memory must be an integer >= 2"):
            hindsight_optimum(req, bad)
    with pytest.raises(ValueError, match="requests must be a stability.Requests"):
        hindsight_optimum([(0, 1, 1)], 10)
    for bad in (0, -1, float("inf"), "5", None):
        with pytest.raises(ValueError, match="time_limit must be a positive number"):
            hindsight_optimum(req, 10, time_limit=bad)
    with pytest.raises(ValueError, match=r"horizon=5 is too short: request 1 .* a=1 .* o=5"):
        hindsight_optimum(req, 10, horizon=5)
    with pytest.raises(ValueError, match="horizon must be an integer >= 1"):
        hindsight_optimum(req, 10, horizon=0)
    with pytest.raises(ValueError, match="max_requests=6"):
        brute_force_optimum(s.Requests([0] * 7, [1] * 7, [1] * 7), 10)
    with pytest.raises(ValueError, match="order must be one of"):
        heuristic_schedule(req, 10, order="random")
    with pytest.raises(ValueError, match="before its arrival"):
        evaluate_schedule(req, [0, 0], 10)
    with pytest.raises(ValueError, match="above M=8"):
        evaluate_schedule(req, [0, 1], 8)
    with pytest.raises(ValueError, match="memory must be an integer >= 2"):
        lp_lower_bound(req, 1)
    with pytest.raises(ValueError, match="request 1 has prompt"):
        memory_volume_lower_bound(req, 7)
