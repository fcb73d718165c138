"""The critical rate per second under a timed clock (stability.theory.clocked)."""

import json

import numpy as np
import pytest

import stability as s
from stability.cli import main
from stability.clock import Linear, Unit, jaillet
from stability.theory import critical_rate_seconds


def test_formula_by_hand():
    """l = 2, o = 3, M = 100: E[w] = 2 * 3 + (9 + 3) / 2 = 12, lambda* = 100 / 12;
    d* = c0 + c_seq 3 lambda* + c_ctx M + c_prefill 2 lambda* + c_step 5 lambda* / 4."""
    w = s.Workload.single(1.0, 2, 3)
    clock = Linear(c0=0.5, c_seq=0.25, c_ctx=0.01, c_prefill=0.125, c_step=2.0, step_tokens=4)
    c = critical_rate_seconds(w, 100, clock)
    lam = 100 / 12
    d = 0.5 + 0.25 * 3 * lam + 0.01 * 100 + 0.125 * 2 * lam + 2.0 * 5 * lam / 4
    assert c.per_iteration == pytest.approx(lam)
    assert c.iteration_seconds == pytest.approx(d)
    assert c.per_second == pytest.approx(lam / d)
    assert (c.running, c.prefill_tokens) == pytest.approx((3 * lam, 2 * lam))


def test_class_mix_and_scale_invariance():
    """lambda*_s depends on the class mix, not on the rate the workload was given at."""
    a = critical_rate_seconds(s.Workload.paper_4_1(1.0), 16492, jaillet())
    b = critical_rate_seconds(s.Workload.paper_4_1(7.0), 16492, jaillet())
    assert a.per_second == pytest.approx(b.per_second)
    assert a.per_iteration == pytest.approx(16492 / ((410 + 1220 + 2430) / 3))


@pytest.mark.parametrize("policy, eviction", [(s.Greedy(), "recompute"),
                                              (s.Greedy(), "restart"),
                                              (s.FlowControl(13.0, law="two-point"), "restart")])
def test_no_policy_beats_the_bound_in_overload(policy, eviction):
    """Offered 1.3 lambda*_s: the completions per second stay below lambda*_s (the
    necessary condition holds on every sample path in the long run; 30 simulated minutes,
    about 50,000 requests)."""
    w = s.Workload.paper_4_1(1.0)
    c = critical_rate_seconds(w, 16492, jaillet())
    req = w.with_total_rate(1.3 * c.per_second).generate_timed(1800.0, seed=5)
    m = s.simulate(req, policy, 16492, clock=jaillet(), eviction=eviction, seed=5).metrics()
    assert m.queue_mean > 1000  # overloaded indeed
    assert m.seconds.request_throughput < c.per_second
    # and not absurdly far below for Greedy under recompute: the bound is within 20%
    if eviction == "recompute":
        assert m.seconds.request_throughput > 0.8 * c.per_second


def test_unit_clock_is_refused():
    with pytest.raises(ValueError, match="clock must be a timed Linear clock"):
        critical_rate_seconds(s.Workload.single(1.0, 2, 3), 100, Unit())


def test_analyze_prints_the_rate_per_second(capsys):
    args = ["analyze", "--workload", "paper-4.1", "--memory", "16492", "--no-exact"]
    assert main(args + ["--clock", "jaillet"]) == 0
    out = capsys.readouterr().out
    assert "no scheduler is stable above lambda* = 31.354 requests/s" in out
    assert main(args + ["--clock", "jaillet", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["clock"]["per_second"] == pytest.approx(31.354, rel=1e-4)
    assert main(args) == 0
    assert "requests/s" not in capsys.readouterr().out


def test_timed_arrivals_are_in_time_order_with_generates_draws():
    """generate_timed: the requests of generate on 1 ms slots, each placed inside its slot,
    in time order (so FIFO by index is FIFO by time), none at or after the horizon."""
    w = s.Workload.paper_4_1(rate=40.0)
    timed = w.generate_timed(5.0, seed=3)
    plain = w.scaled(1e-3).generate(5000, seed=3)
    t = timed.arrival_time
    assert (np.diff(t) >= 0).all() and t.max() < 5.0
    assert np.array_equal(np.floor(t / 1e-3).astype(np.int64), timed.arrival)
    # the same draws, reordered only inside a slot
    key = lambda r: sorted(zip(r.arrival.tolist(), r.prompt.tolist(), r.decode.tolist(),  # noqa: E731
                               r.class_id.tolist()))
    assert key(timed) == key(plain)
