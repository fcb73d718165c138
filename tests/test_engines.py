"""Differential tests: the fast kernel equals the plain reference on every instance, in
every world (eviction rule, requeue position, KV blocks, clock) and for every registered
policy; times are integer ticks, so they are compared exactly."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import stability as s
from tests.support import assert_metrics_equal, instances, runnable_horizon, worlds


LONG = 3000
"""Slots the reference steps through at most: a run until every request completes can take
millions of slots (a budget that admits one request per 10^5 slots), which the fast engine
skips in closed form and the reference would walk slot by slot; such runs are compared
over their first LONG slots instead."""


def both(req, policy, memory, horizon, seed, **kw):
    horizon = runnable_horizon(req, policy, memory, horizon, seed, **kw)
    fast = None
    if horizon is None and len(req):
        fast = s.simulate(req, policy, memory, horizon=None, seed=seed, **kw)
        if fast.slots > LONG:
            horizon, fast = LONG, None
    if horizon is not None and kw.get("warmup", 0) >= horizon:  # the API refuses it
        kw["warmup"] = max(horizon - 1, 0)
    if fast is None:
        fast = s.simulate(req, policy, memory, horizon=horizon, seed=seed, **kw)
    ref = s.simulate(req, policy, memory, horizon=horizon, seed=seed, engine="reference", **kw)
    return fast, ref


@given(instances(), st.integers(0, 20))
def test_fast_equals_reference(instance, warmup):
    fast, ref = both(*instance, warmup=warmup)
    assert fast.raw.differences(ref.raw) == []
    assert_metrics_equal(fast.metrics(), ref.metrics())


@settings(max_examples=500)
@given(instances(world=True), st.integers(0, 20))
def test_fast_equals_reference_in_every_world(instance, warmup):
    req, policy, memory, horizon, seed, world = instance
    fast, ref = both(req, policy, memory, horizon, seed, warmup=warmup, **world)
    assert fast.raw.differences(ref.raw) == []
    assert_metrics_equal(fast.metrics(), ref.metrics())


@given(instances(), st.integers(1, 40))
def test_sampled_series_are_every_stride_th_slot(instance, points):
    req, policy, memory, horizon, seed = instance
    fast, ref = both(req, policy, memory, horizon, seed, series_points=points)
    stride = fast.series.stride
    assert fast.series.kv.size <= points
    full = ref.series
    assert np.array_equal(fast.series.kv, full.kv[::stride][: fast.series.kv.size])
    assert np.array_equal(fast.series.queue, full.queue[::stride][: fast.series.kv.size])
    assert np.array_equal(fast.series.active, full.active[::stride][: fast.series.kv.size])
    # every sampled slot that exists is kept: no sample is dropped at the end
    assert fast.series.kv.size == -(-ref.slots // stride)
    assert fast.raw.stats == ref.raw.stats or fast.raw.differences(ref.raw) == [
        "series_stride", "series_kv", "series_queue", "series_active"]


@settings(max_examples=25)
@given(st.integers(0, 2**32), st.sampled_from([s.FlowControl(12), s.ClassBudgets((4, 4, 4)),
                                                s.Greedy(0.05), s.Conservative(60),
                                                s.FlowControl(11.7, "poisson"),
                                                s.VLLM(max_num_seqs=64, max_num_batched_tokens=256)]),
       st.sampled_from([3000, 16492]), worlds())
def test_fast_equals_reference_on_paper_workload(seed, policy, memory, world):
    w = s.Workload.paper_4_1(rate=3.0)
    req = w.generate_timed(2.0, seed) if world.get("clock") else w.generate(120, seed)
    fast, ref = both(req, policy, memory, 300, seed, **world)
    assert fast.raw.differences(ref.raw) == []


@settings(max_examples=30)
@given(st.integers(0, 2**32), st.floats(0.05, 3.0), worlds(clocks=False))
def test_stream_equals_batch(seed, rate, world):
    """simulate_stream draws exactly workload.generate(slots, seed) and simulates it alike."""
    w = s.Workload((s.RequestClass(rate, s.UniformInt(1, 6), s.Geometric(0.2, max=30)),
                    s.RequestClass(rate / 2, 3, s.UniformInt(1, 20))))
    slots, memory = 400, 64
    for policy in (s.FlowControl(2), s.Greedy(), s.ClassBudgets((1, 1)), s.Conservative(25),
                   s.Greedy(max_num_seqs=3, max_num_batched_tokens=6)):
        batch = s.simulate(w.generate(slots, seed), policy, memory, horizon=slots, seed=seed,
                           **world)
        stream = s.simulate_stream(w, policy, memory, slots, seed=seed, series_points=slots,
                                   **world)
        assert stream.stats == batch.raw.stats
        assert np.array_equal(stream.series.kv, batch.series.kv)
        assert np.array_equal(stream.series.queue, batch.series.queue)
        for name in ("overflow_events", "evictions_total", "bounces", "wasted_tokens",
                     "decoded_tokens", "prefill_tokens", "recomputed_tokens", "slots"):
            assert getattr(stream, name) == getattr(batch, name), name
        assert_metrics_equal(batch.metrics(), stream.metrics(), rel=0)
        assert (stream.waiting_at_end, stream.active_at_end) == (
            batch.raw.waiting_at_end, batch.raw.active_at_end)


def test_unsorted_input_gives_the_same_per_request_results():
    req = s.Workload.paper_4_1(rate=2.0).generate(50, 3)
    perm = np.random.default_rng(0).permutation(len(req))
    shuffled = s.Requests(req.arrival[perm], req.prompt[perm], req.decode[perm], req.class_id[perm])
    # ties in arrival are broken by input index, so compare engines, not the two orders
    for policy in (s.FlowControl(5), s.Greedy()):
        fast, ref = both(shuffled, policy, 700, None, 1)
        assert fast.raw.differences(ref.raw) == []


def test_stream_grows_its_buffers_and_histograms():
    """A long overloaded stream forces every buffer and histogram to grow several times."""
    w = s.Workload.single(3.0, 2, s.Geometric(0.1))
    res = s.simulate_stream(w, s.FlowControl(2), 400, 20_000, seed=5)
    batch = s.simulate(w.generate(20_000, 5), s.FlowControl(2), 400, horizon=20_000, seed=5)
    assert res.waiting_at_end > 5000  # overloaded: the queue holds thousands
    assert res.metrics().latency == batch.metrics().latency
    assert res.stats == batch.raw.stats


def test_parallel_replications_pool_exactly():
    """Pooled replications equal their separate runs, whatever the number of threads."""
    from stability.simulate import replication_seeds, simulate_streams

    w = s.Workload.single(1.5, s.UniformInt(1, 4), s.Geometric(0.1, max=60))
    policy, memory, slots = s.FlowControl(2), 120, 3000
    pooled = simulate_streams(w, policy, memory, slots, seed=9, replications=3, workers=2)
    serial = simulate_streams(w, policy, memory, slots, seed=9, replications=3, workers=1)
    parts = [s.simulate_stream(w, policy, memory, slots, seed=x)
             for x in replication_seeds(9, 3)]
    assert_metrics_equal(pooled.metrics(), serial.metrics(), rel=0)
    assert pooled.stats == serial.stats
    assert pooled.arrived == sum(p.arrived for p in parts)
    assert pooled.completed == sum(p.completed for p in parts)
    latencies = np.concatenate([np.repeat(np.arange(p.latency_histogram.shape[1]),
                                          p.latency_histogram.sum(axis=0)) for p in parts])
    m = pooled.metrics()
    assert m.latency == s.metrics.Distribution.from_values(latencies)
    assert m.slots == 3 * slots
