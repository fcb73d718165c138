"""The neighbouring papers (issue 15): theory values against the simulator, SVF's order,
and every verification row of the six experiments passing on a known-good result and
failing on a known-bad one."""

import math

import numpy as np
import pytest

import stability as s
from stability.clock import li_dai_peng
from stability.policies.volume import SVF
from stability.theory import critical_rate
from stability.theory.neighbours import (cohort_cycle_loss, cohort_cycle_throughput,
                                         equilibrium_throughput, fluid_cycle_loss,
                                         greedy_linearised_radius, memory_time,
                                         operating_batch_time, service_rate, step_batch_time,
                                         throughput_optimal_rate)


# ---------------------------------------------------------------------------- theory
@pytest.mark.parametrize("l, o, memory", [(10, 20, 2000), (1, 50, 3000), (100, 30, 20000),
                                          (7, 13, 999)])
def test_saturated_greedy_settles_on_the_cohort_cycle(l, o, memory):
    """Identical requests, all waiting from slot 0, Greedy with restart eviction: the
    second-half throughput is floor(M / (l + o)) / o exactly."""
    horizon = 40 * o
    n = int(2 * horizon * memory / memory_time(l, o)) + memory // (l + 1) + 10
    req = s.Requests(np.zeros(n, int), np.full(n, l), np.full(n, o))
    r = s.simulate(req, s.Greedy(), memory, horizon=horizon)
    done = np.sum(r.completion >= horizon // 2) / (horizon - horizon // 2)
    assert done == pytest.approx(cohort_cycle_throughput(l, o, memory), abs=1e-12)
    assert r.evictions_total > 0


def test_cycle_losses_stay_below_one_half_and_approach_it():
    assert fluid_cycle_loss(1, 1) == 0
    assert fluid_cycle_loss(0, 10**6) == pytest.approx(0.5, abs=1e-6)
    for l, o in [(1, 100), (10, 20), (100, 5)]:
        assert 0 <= fluid_cycle_loss(l, o) < 0.5
        assert 1 - memory_time(l, o) / (o * (l + o)) == pytest.approx(fluid_cycle_loss(l, o))
    # exact (with floors) on the equilibrium M = k w: 0.495 for (1, 100), k = 2
    assert cohort_cycle_loss(1, 100, 2 * memory_time(1, 100)) == pytest.approx(0.495)
    assert equilibrium_throughput(1, 100, 2 * memory_time(1, 100)) == 2.0


def test_linearised_radius_separates_coprime_from_non_coprime_lengths():
    assert greedy_linearised_radius(10**5, [20]) > 1  # homogeneous: unstable
    for pair in [(2, 3), (3, 5), (4, 7)]:
        assert greedy_linearised_radius(400, pair) < 1
    for pair in [(2, 4), (3, 6), (4, 6)]:
        assert greedy_linearised_radius(400, pair) > 1
    # the limit polynomial of a non-coprime pair has a root of modulus 1
    assert greedy_linearised_radius(10**7, (4, 6)) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="weights"):
        greedy_linearised_radius(10, [2, 3], [0.5, 0.6])


def test_service_rate_is_the_critical_rate_in_unit_slots():
    w = s.Workload.paper_4_1(1.0)
    mean_w = 16492 / critical_rate(w, 16492)
    assert mean_w == pytest.approx(4060 / 3)
    assert service_rate(mean_w, 16492) == pytest.approx(critical_rate(w, 16492))
    assert service_rate(mean_w, 16492, 0.5) == pytest.approx(2 * critical_rate(w, 16492))


def test_operating_batch_time_is_the_clocks_iteration_time_at_that_point():
    clock = s.clock.jaillet()
    mean_w = 1220.0
    b = operating_batch_time(clock, 10, 40, mean_w, 16492)
    x = 16492 / mean_w
    assert b == pytest.approx(float(clock.seconds(x * 40, 16492, x * 10)))


def test_throughput_optimal_rate_uses_the_step_clock():
    clock = li_dai_peng()
    assert step_batch_time(clock, 250) == pytest.approx(0.01128 + 2 * 0.03547)
    assert step_batch_time(clock, 250) == pytest.approx(float(clock.seconds(250, 0, 0)))
    rate = throughput_optimal_rate(clock, 250, 64, 128)
    assert rate == pytest.approx(250 / (0.08222 * 192))


# ------------------------------------------------------------------------------- SVF
def test_svf_orders_by_volume_and_mcsf_by_length():
    """Request 0: l = 30, o = 2 (volume 63); request 1: l = 1, o = 5 (volume 20).  Only one
    fits at a time: SVF starts the smaller volume, MC-SF the shorter decode."""
    req = s.Requests([0, 0], [30, 1], [2, 5])
    memory = 33
    svf = s.simulate(req, SVF(), memory)
    mcsf = s.simulate(req, s.MCSF(), memory)
    assert svf.start[1] == 0 and svf.start[0] > 0
    assert mcsf.start[0] == 0 and mcsf.start[1] > 0
    for res, policy in ((svf, SVF()), (mcsf, s.MCSF())):
        ref = s.simulate(req, policy, memory, engine="reference")
        assert res.raw.differences(ref.raw) == []
    assert math.isclose(memory_time(30, 2), 63) and memory_time(1, 5) == 20
