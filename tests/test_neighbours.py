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


# ------------------------------------------------- every row can both pass and fail
def _verdicts(module, results) -> list:
    return [r.verdict for r in module.verify(results)]


def _both_ways(module, good, bad, rows):
    """Row i passes on one result and fails on the other, for every row."""
    a, b = _verdicts(module, good), _verdicts(module, bad)
    assert len(a) == len(b) == rows, (a, b)
    for i, (x, y) in enumerate(zip(a, b)):
        assert {x, y} == {"PASS", "FAIL"}, (i, x, y)


def _summary(values):
    from experiments.common import summary

    return summary(values)


def _ao(good: bool) -> dict:
    from experiments.ao_limit_cycles import COPRIME, HOMOGENEOUS, INPUT_DOMINATED, NON_COPRIME

    homo = []
    for h in HOMOGENEOUS:
        l, o, k = h["l"], h["o"], h["k"]
        memory = k * memory_time(l, o)
        eq, cyc = equilibrium_throughput(l, o, memory), cohort_cycle_throughput(l, o, memory)
        base = dict(l=l, o=o, k=k, memory=memory, equilibrium=eq, cycle=cyc,
                    cycle_loss=cohort_cycle_loss(l, o, memory), fluid_loss=fluid_cycle_loss(l, o))
        homo += [dict(base, variant="unperturbed", throughput=eq if good else cyc,
                      evictions_total=0 if good else 7, tail_evicted=0, periodic_o=True),
                 dict(base, variant="perturbed", throughput=cyc if good else eq,
                      evictions_total=9 if good else 0, tail_evicted=5 if good else 0,
                      periodic_o=good),
                 dict(base, variant="recompute", throughput=0.995 * eq if good else 0.6 * eq,
                      evictions_total=4, tail_evicted=3, periodic_o=False),
                 dict(base, variant="flow", throughput=eq, evictions_total=0 if good else 2,
                      tail_evicted=0, periodic_o=True)]
    if not good:  # a loss far from 50%
        for h in homo:
            if h["variant"] == "perturbed":
                h["throughput"] = 0.9 * h["equilibrium"]
    cells = []
    for l in (20, INPUT_DOMINATED):
        for pair in COPRIME + NON_COPRIME:
            radius = greedy_linearised_radius(l, pair)
            unstable = math.gcd(*pair) > 1 or radius > 1
            share = [0.02, 0.03, 0.025] if unstable == good else [0.0, 0.0, 0.0]
            cells.append({"l": l, "pair": list(pair), "gcd": math.gcd(*pair),
                          "radius": radius, "restart_share": share})
    return {"homogeneous": homo, "cells": cells}


def test_ao_rows_pass_and_fail():
    from experiments import ao_limit_cycles

    _both_ways(ao_limit_cycles, _ao(True), _ao(False), rows=8)


def _nie(good: bool) -> dict:
    from experiments.nie_stability import ABOVE, BELOW, LATTICE_RATE, WORLDS, theory

    th = theory()
    grows, still = [1.1, 1.12, 1.09, 1.11], [0.001, -0.002, 0.0, 0.001]
    mu = th["uniform"]["mu_second"]
    curves = {"vLLM v1 configuration (uniform lengths)": [
        {"load": ABOVE, "growth": _summary(grows if good else still)},
        {"load": BELOW, "growth": _summary(still if good else grows)}]}
    cells = {f"Greedy, {k}": (still if good else grows) if k.startswith("restart") else still
             for k in WORLDS}
    cells["vLLM v1 configuration"] = still if good else grows

    def timed(values, **extra):
        return [dict({"growth": v}, **extra) for v in values]

    state = still if good else grows
    return {"theory": th, "curves": curves, "cells": cells,
            "params": {"load_cell": 3 * LATTICE_RATE / th["lattice"]["mu_slot"]},
            "timed": {"saturated": [{"growth": 5.0, "throughput": (0.97 if good else 0.5) * mu}
                                    for _ in range(4)],
                      "below": timed(state), "near": timed(state), "jitter": timed(state),
                      "lattice restart": timed(state), "lattice restart near": timed(state),
                      "lattice recompute near": timed(state)}}


def test_nie_rows_pass_and_fail():
    from experiments import nie_stability

    _both_ways(nie_stability, _nie(True), _nie(False), rows=12)


def _ldp(good: bool) -> dict:
    from experiments.ldp_throughput import ABOVE, BELOW, SATURATED, policies, theory

    th = theory()
    wc, capped = list(policies())
    grow, still = [1.5, 1.4, 1.6, 1.5], [0.01, -0.02, 0.0, 0.01]

    def runs(values, tokens=0.0):
        return [{"growth": v, "tokens_per_second": tokens} for v in values]

    cap = th["capacity_tokens"]
    return {"theory": th, "points": {
        wc: {str(BELOW): runs(still if good else grow), str(ABOVE): runs(grow if good else still),
             str(SATURATED): runs(grow, (1.004 if good else 0.8) * cap)},
        capped: {str(BELOW): runs(grow if good else still)}}}


def test_ldp_rows_pass_and_fail():
    from experiments import ldp_throughput

    _both_ways(ldp_throughput, _ldp(True), _ldp(False), rows=4)


def _competitive(good: bool) -> dict:
    rng = np.random.default_rng(3)
    policies = ("MC-SF", "SVF", "MC-Benchmark", "Greedy", "FlowControl(2)")
    instances = []
    for family in ("batch", "online", "prompts"):
        for seed in range(10):
            opt = 100
            lat = {p: int(opt * (1.3 + 0.01 * rng.random())) for p in policies}
            if good:
                lat["MC-SF"] = opt + int(rng.integers(0, 2))
                lat["SVF"] = lat["MC-SF"] - 1 if family == "prompts" else lat["MC-SF"]
            else:
                lat["MC-SF"] = 130 + seed % 3
                lat["SVF"] = 600 if (seed, family) == (0, "batch") else lat["MC-SF"] + 2
            instances.append({"family": family, "seed": seed, "status": "optimal",
                              "optimum": opt, "latencies": lat})
    blocking = []
    for online in (False, True):
        for o in (10, 40, 160):
            lower, upper = 11 * o, 11 * o + 1
            long_wait = (o * 10 * o + o) if good else 2 * upper
            lat = {p: long_wait for p in policies}
            if not online:
                lat["MC-SF"] = upper if good else 12 * upper
                lat["SVF"] = upper if good else 12 * upper
            blocking.append({"long_decode": o, "online": online, "opt_upper": upper,
                             "opt_lower": lower, "latencies": lat})
    return {"params": {"n": 5, "families": ["batch", "online", "prompts"]},
            "instances": instances, "blocking": blocking}


@pytest.mark.parametrize("name, rows", [("jaillet_competitive", 3), ("kong_svf", 3),
                                        ("feng_nonclairvoyant", 2)])
def test_competitive_rows_pass_and_fail(name, rows):
    import importlib

    module = importlib.import_module(f"experiments.{name}")
    _both_ways(module, _competitive(True), _competitive(False), rows=rows)
