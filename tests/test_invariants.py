"""Invariants of the slot (docs/model.md 2.2) on random instances, checked on the reference's event log.

The fast engine equals the reference on every field (tests/test_engines.py), so these
hold for both engines.
"""

import numpy as np
from hypothesis import given

import stability as s
from stability.policies import ClassBudgets
from stability.engine.generate import seed_streams
from stability.engine.reference import run_reference
from tests.support import FIFO_POLICIES, instances, runnable_horizon


def run_with_log(req, policy, memory, horizon, seed):
    horizon = runnable_horizon(req, policy, memory, horizon, seed)
    events = []
    a = req._arrays
    enc = policy.encode(memory, req.num_classes)
    enc.params[0]["key0"], enc.params[0]["key1"] = seed_streams(seed)[2]
    predicted = (enc.predictions.draw(req.decode, seed).capped(memory - req.prompt)
                 if enc.predictions else None)
    raw = run_reference(a["arrival"], a["prompt"], a["decode"], a["class_id"], enc, memory,
                        -1 if horizon is None else horizon, 0, predicted=predicted,
                        events=events)
    return raw, events, horizon


@given(instances())
def test_memory_never_exceeds_capacity(instance):
    req, policy, memory, horizon, seed = instance
    fast = s.simulate(req, policy, memory, horizon=runnable_horizon(req, policy, memory, horizon,
                                                                    seed), seed=seed)
    assert fast.series.stride == 1
    assert (fast.series.kv <= memory).all()
    assert fast.raw.stats.kv_max <= memory


@given(instances())
def test_every_request_is_accounted_for(instance):
    req, policy, memory, horizon, seed = instance
    raw, events, horizon = run_with_log(req, policy, memory, horizon, seed)
    arrived = int(np.sum(req.arrival < raw.slots))
    assert raw.completed + raw.waiting_at_end + raw.active_at_end == arrived
    assert raw.completed == int(np.sum(raw.completion >= 0))
    if horizon is None:
        assert raw.completed == len(req)
    # the event log replays to the same state: waiting + active + done, always disjoint
    state = {}
    for t, kind, i in events:
        before = state.get(i)
        if kind == "arrive":
            assert before is None
            state[i] = "waiting"
        elif kind == "admit":
            assert before == "waiting"
            state[i] = "active"
        elif kind in ("evict", "bounce"):
            assert before == "active"
            state[i] = "waiting"
        else:
            assert before == "active"
            state[i] = "done"
    assert sum(v == "waiting" for v in state.values()) == raw.waiting_at_end
    assert sum(v == "active" for v in state.values()) == raw.active_at_end


@given(instances())
def test_fifo_admission_and_lifo_eviction(instance):
    req, policy, memory, horizon, seed = instance
    raw, events, _ = run_with_log(req, policy, memory, horizon, seed)
    fifo = isinstance(policy, FIFO_POLICIES)
    by_class = isinstance(policy, ClassBudgets)
    rank = {i: r for r, i in enumerate(np.lexsort((np.arange(len(req)), req.arrival)))}
    group = (lambda i: int(req.class_id[i])) if by_class else (lambda i: 0)
    waiting = {}
    active = []  # activation order
    for t, kind, i in events:
        if kind == "arrive":
            waiting.setdefault(group(i), set()).add(i)
        elif kind == "admit":
            # FIFO: the admitted request is the earliest waiting one of its group
            if fifo:
                assert rank[i] == min(rank[j] for j in waiting[group(i)])
            waiting[group(i)].remove(i)
            active.append(i)
        elif kind in ("evict", "bounce"):
            # LIFO: the removed request is the most recently activated one
            assert active[-1] == i
            active.pop()
            waiting[group(i)].add(i)
        else:
            active.remove(i)


@given(instances())
def test_first_starts_follow_arrival_order(instance):
    """FIFO: requests decode for the first time in arrival order (within a class queue)."""
    req, policy, memory, horizon, seed = instance
    if not isinstance(policy, FIFO_POLICIES):
        return  # shortest-first policies reorder by design
    res = s.simulate(req, policy, memory, horizon=runnable_horizon(req, policy, memory, horizon,
                                                                   seed), seed=seed)
    started = res.first_token >= 0
    classes = np.unique(req.class_id) if isinstance(policy, ClassBudgets) else [None]
    for k in classes:
        mask = started if k is None else started & (req.class_id == k)
        ids = np.flatnonzero(mask)
        order = ids[np.lexsort((ids, req.arrival[ids]))]
        assert (np.diff(res.first_token[order]) >= 0).all()


@given(instances())
def test_undisturbed_request_has_latency_exactly_o(instance):
    req, policy, memory, horizon, seed = instance
    res = s.simulate(req, policy, memory, horizon=runnable_horizon(req, policy, memory, horizon,
                                                                   seed), seed=seed)
    clean = (res.first_token == req.arrival) & (res.evictions == 0) & (res.completion >= 0)
    latency = res.completion - req.arrival + 1
    assert np.array_equal(latency[clean], req.decode[clean])
    # any completed request: latency >= o and its final run lasted exactly o slots
    done = res.completion >= 0
    assert (latency[done] >= req.decode[done]).all()
    assert np.array_equal(res.completion[done] - res.start[done] + 1, req.decode[done])


@given(instances())
def test_token_accounting(instance):
    """Decoded tokens = goodput of completed runs + wasted + tokens of runs still going."""
    req, policy, memory, horizon, seed = instance
    res = s.simulate(req, policy, memory, horizon=runnable_horizon(req, policy, memory, horizon,
                                                                   seed), seed=seed)
    done = res.completion >= 0
    running = (res.start >= 0) & ~done
    in_flight = int(np.sum(res.slots - res.start[running]))
    assert res.decoded_tokens == int(req.decode[done].sum()) + res.wasted_tokens + in_flight
    assert res.evictions_total == int(res.evictions.sum())
