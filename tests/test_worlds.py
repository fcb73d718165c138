"""The worlds of docs/model.md 2.3-2.4 on hand-worked instances, in both engines: eviction
that keeps progress, requeue at the front, KV blocks, chunked prefill and timed clocks;
and the policies' own rules (PacedGreedy's pacing)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import stability as s
from stability.clock import Linear
from tests.support import instances, runnable_horizon

ENGINES = ("fast", "reference")


def run(req, policy, memory, engine, **kw):
    return s.simulate(req, policy, memory, engine=engine, seed=0, **kw)


@pytest.mark.parametrize("engine", ENGINES)
def test_recompute_keeps_the_tokens_restart_loses_them(engine):
    """M = 12, A = (a 0, l 2, o 6), B = (a 1, l 2, o 6) under Greedy.  In slot 4 the demand
    is 7 + 6 = 13 > 12 and B (g = 3) is evicted.  Restart: B is readmitted in slot 5 with
    l + 1 = 3 tokens and completes in slot 10, wasting 3 tokens and re-prefilling l = 2.
    Recompute: B needs l + g + 1 = 6 tokens, fits only after A completes (slot 5), starts
    again in slot 6 at u = 6 - 3 and completes in slot 8, re-prefilling l + g = 5."""
    req = s.Requests([0, 1], [2, 2], [6, 6])
    restart = run(req, s.Greedy(), 12, engine, eviction="restart")
    recompute = run(req, s.Greedy(), 12, engine, eviction="recompute")
    assert restart.completion.tolist() == [5, 10]
    assert recompute.completion.tolist() == [5, 8]
    for r in (restart, recompute):
        assert r.evictions.tolist() == [0, 1] and r.overflow_events == 1
    assert (restart.wasted_tokens, restart.recomputed_tokens) == (3, 2)
    assert (recompute.wasted_tokens, recompute.recomputed_tokens) == (0, 5)
    assert restart.decoded_tokens == 6 + 3 + 6 and recompute.decoded_tokens == 12
    assert recompute.prefill_tokens == 2 + 2 + 5


@pytest.mark.parametrize("engine", ENGINES)
def test_chunked_prefill_splits_a_prompt_over_iterations(engine):
    """max_num_batched_tokens = 4: a prompt of 6 is prefilled 4 + 2, its first token comes
    with the last chunk (slot 1, TTFT 2 slots) and it holds 4 tokens in slot 0, then
    l + 1 = 7 and 8."""
    req = s.Requests([0], [6], [2])
    r = run(req, s.Greedy(max_num_seqs=2, max_num_batched_tokens=4), 50, engine)
    assert r.first_token.tolist() == [1] and r.completion.tolist() == [2]
    assert r.series.kv.tolist() == [4, 7, 8]
    assert r.prefill_tokens == 6 and r.decoded_tokens == 2


@pytest.mark.parametrize("engine", ENGINES)
def test_kv_blocks_round_each_request_up(engine):
    """Blocks of 4 tokens: l = 3, o = 3 holds 4, 5, 6 tokens, i.e. 4, 8, 8 in blocks."""
    req = s.Requests([0], [3], [3])
    r = run(req, s.Greedy(), 8, engine, block_size=4)
    assert r.series.kv.tolist() == [4, 8, 8]
    with pytest.raises(ValueError, match="in blocks of 4 tokens"):
        run(s.Requests([0], [3], [3]), s.Greedy(), 7, engine, block_size=4)


@pytest.mark.parametrize("engine", ENGINES)
def test_linear_clock_times_every_iteration(engine):
    """c0 = 1, c_seq = 0.5, c_ctx = 0.125, c_prefill = 0.25 s (binary fractions, so the
    times are exact).  One request (l 2, o 3) arrives at 0.25 s: iteration 0 has n = 1,
    R = 3, p = 2 and lasts 2.375 s; then R = 4 (2 s) and R = 5 (2.125 s).  A second
    request arrives at 100 s, after the engine has gone idle: it starts at once."""
    clock = Linear(c0=1.0, c_seq=0.5, c_ctx=0.125, c_prefill=0.25)
    req = s.Requests([0, 0], [2, 2], [3, 3], arrival_time=[0.25, 100.0])
    r = run(req, s.Greedy(), 50, engine, clock=clock)
    assert r.first_token_time.tolist() == [2.625, 102.375]
    assert r.completion_time.tolist() == [6.75, 106.5]
    m = r.metrics().seconds
    assert (m.ttft.mean, m.e2e.mean) == (2.375, 6.5)
    assert m.tpot.mean == (6.75 - 2.625) / 2
    assert r.arrival.tolist() == [0, 3]  # seen at the iteration starting at 100 s
    assert r.completion.tolist() == [2, 5]
    busy = 2 * (2.375 + 2.0 + 2.125)
    assert m.busy_share == pytest.approx(busy / (106.5 - 0.25), rel=1e-12)
    assert m.prefill_share == pytest.approx(2 * 0.5 / busy, rel=1e-12)


def test_an_arrival_joins_at_the_first_iteration_boundary_after_it():
    """Iterations of 1 s from 0: a request arriving at 0.5 s is seen at 1 s (slot 1), one
    arriving exactly at 2 s is seen in slot 2."""
    clock = Linear(c0=1.0)
    req = s.Requests([0, 0, 0], [1, 1, 1], [5, 1, 1], arrival_time=[0.0, 0.5, 2.0])
    for engine in ENGINES:
        r = run(req, s.Greedy(), 50, engine, clock=clock)
        assert r.arrival.tolist() == [0, 1, 2], engine


@pytest.mark.parametrize("engine", ENGINES)
def test_paced_greedy_admits_at_most_per_slot_and_never_bounces(engine):
    req = s.Requests(np.zeros(10, int), np.full(10, 3), np.full(10, 4))
    r = run(req, s.policies.registry()["paced"](3), 1000, engine)
    assert np.bincount(r.first_token).tolist() == [3, 3, 3, 1]
    assert r.bounces == 0 and r.overflow_events == 0


SINGLE_QUEUE_FIFO = ("flow", "greedy", "vllm", "paced", "conservative", "amax",
                     "mc-benchmark")


@settings(max_examples=100)
@given(instances(world=True))
def test_front_and_arrival_requeue_agree_for_single_queue_fifo_policies(instance):
    """With one FIFO queue every active request precedes every waiting one in arrival
    order, so putting a removed request back at its arrival position is putting it at the
    front (docs/model.md 2.3); for shortest-first and per-class queues they differ."""
    req, policy, memory, horizon, seed, world = instance
    if policy.kind not in SINGLE_QUEUE_FIFO:
        return
    world = dict(world)
    world.pop("requeue")
    horizon = runnable_horizon(req, policy, memory, horizon, seed, **world)
    a = s.simulate(req, policy, memory, horizon=horizon, seed=seed, requeue="arrival", **world)
    b = s.simulate(req, policy, memory, horizon=horizon, seed=seed, requeue="front", **world)
    assert a.raw.differences(b.raw) == []


def test_front_requeue_changes_a_shortest_first_order():
    """MC-SF with a wrong (too short) prediction for an early request: evicted, it goes
    ahead of a shorter waiting request under "front" but not under "arrival"."""
    found = False
    for seed in range(40):
        w = s.Workload.single(0.8, s.UniformInt(1, 4), s.UniformInt(1, 20))
        req = w.generate(60, seed)
        pol = s.MCSF(s.Predictions.noisy(1.0))
        a = s.simulate(req, pol, 40, horizon=200, seed=seed, requeue="arrival")
        b = s.simulate(req, pol, 40, horizon=200, seed=seed, requeue="front")
        if a.raw.differences(b.raw):
            found = True
            break
    assert found


@settings(max_examples=60)
@given(st.integers(0, 2**32))
def test_vllm_defaults_are_recompute_front_and_blocks_of_16(seed):
    req = s.Workload.paper_4_1(2.0).generate(60, seed)
    v = s.simulate(req, s.VLLM(), 16492, horizon=100, seed=seed)
    assert (v.info.eviction, v.info.requeue, v.info.block_size) == ("recompute", "front", 16)
    g = s.simulate(req, s.Greedy(max_num_seqs=256, max_num_batched_tokens=8192), 16492,
                   horizon=100, seed=seed, eviction="recompute", requeue="front", block_size=16)
    assert v.raw.differences(g.raw) == []


@pytest.mark.parametrize("engine", ENGINES)
def test_throughput_counts_window_completions_whatever_their_arrival(engine):
    """A backlog at the warm-up: 60 requests all arrive in slot 0 (l 1, o 5, M 12, so at
    most two run at once) and the window starts at slot 40.  Every completion in slots
    [40, horizon) counts, although none of those requests arrived after the warm-up
    (counting arrivals after the warm-up, as the paper's metric did, would give 0)."""
    req = s.Requests([0] * 60, [1] * 60, [5] * 60)
    res = run(req, s.Greedy(), 12, engine, horizon=100, warmup=40)
    m = res.metrics()
    done = res.completion[res.completion >= 0]
    in_window = done[done >= 40]
    assert in_window.size > 0 and m.completed_in_window == in_window.size
    assert m.request_throughput == pytest.approx(in_window.size / 60)
    assert m.token_throughput == pytest.approx(5 * in_window.size / 60)
    assert m.latency.count == 0  # per-request figures: requests arriving after the warm-up


def test_stream_throughput_counts_window_completions():
    """The streaming engine measures the same window: with a backlog at the warm-up its
    request throughput equals the service capacity, not the post-warm-up arrivals'."""
    w = s.Workload.single(2.0, 1, 5)  # offered 10 tokens/slot against M = 12: overloaded
    res = s.simulate_stream(w, s.Greedy(), 12, 4000, seed=1, warmup=1000)
    m = res.metrics()
    # Greedy holds two requests of 1 + 5 tokens at most, each completes in 5 slots: 0.4
    # completions per slot while the queue is never empty.
    assert m.request_throughput == pytest.approx(0.4, rel=0.01)
