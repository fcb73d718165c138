"""The plain slot-by-slot reference simulator of DESIGN 1.2.

Slow on purpose: it follows the six steps of a slot literally (arrivals, running demand,
admission, overflow check with LIFO eviction, decode, completion), keeps the waiting
queue sorted by (arrival, index) with ``bisect`` and the active list as a Python list.
The fast engine (:mod:`stability._kernel`) must agree with it exactly on every instance.
"""

from __future__ import annotations

import bisect

import numpy as np

from stability import _rng
from stability.policies import (
    ESTIMATE_POINT,
    ORDER_SHORTEST,
    POLICY_CLASSES,
    POLICY_CONSERVATIVE,
    POLICY_FLOW,
    POLICY_GREEDY,
    POLICY_MEMORY_CHECKED,
    EncodedPolicy,
)
from stability.raw import RawRun, SlotStats


def run_reference(arrival, prompt, decode, class_id, policy: EncodedPolicy, memory: int,
                  horizon: int, budget_key: np.ndarray, warmup: int = 0,
                  events: list | None = None, predicted=None) -> RawRun:
    """Simulate slot by slot; ``horizon < 0`` runs until every request completes.

    ``events``, when given, receives (slot, kind, request) tuples with kind one of
    "arrive", "admit", "evict", "bounce", "complete", in the order they happen.
    """
    log = events.append if events is not None else (lambda item: None)
    n = len(arrival)
    rank = {i: r for r, i in enumerate(np.lexsort((np.arange(n), arrival)))}
    by_slot: dict[int, list[int]] = {}
    for i in sorted(range(n), key=rank.__getitem__):
        by_slot.setdefault(int(arrival[i]), []).append(i)
    per_class = policy.groups_by_class
    num_groups = (int(class_id.max()) + 1 if n else 1) if per_class else 1
    waiting: list[list[tuple[int, int]]] = [[] for _ in range(num_groups)]  # (rank, id)
    active: list[int] = []  # activation order
    start = np.full(n, -1, np.int64)
    first_token = np.full(n, -1, np.int64)
    completion = np.full(n, -1, np.int64)
    evictions = np.zeros(n, np.int64)
    overflow_events = evictions_total = bounces = wasted = decoded = completed = 0
    kv_series, queue_series, active_series, overflow_series = [], [], [], []

    def group(i):
        return int(class_id[i]) if per_class else 0

    t = 0
    while (horizon < 0 and completed < n) or (0 <= t < horizon):
        # 1. arrivals join W in arrival order
        for i in by_slot.get(t, ()):
            bisect.insort(waiting[group(i)], (rank[i], i))
            log((t, "arrive", i))
        # 2. running demand
        demand = sum(int(prompt[i]) + (t - int(start[i])) + 1 for i in active)
        # 3. admission
        admitted = _admit(policy, t, waiting, active, start, prompt, memory, budget_key, demand,
                          predicted)
        for i in admitted:
            log((t, "admit", i))
            start[i] = t
            active.append(i)
            demand += int(prompt[i]) + 1
        # 4. overflow check, LIFO eviction (down to M, or (1 - beta) M with beta-clearing)
        overflowed = demand > memory
        if overflowed:
            overflow_events += 1
            while demand > policy.evict_to:
                i = active.pop()
                g = t - int(start[i])
                demand -= int(prompt[i]) + g + 1
                if g > 0:
                    evictions_total += 1
                    evictions[i] += 1
                    wasted += g
                    log((t, "evict", i))
                else:
                    bounces += 1
                    log((t, "bounce", i))
                start[i] = -1
                bisect.insort(waiting[group(i)], (rank[i], i))
        overflow_series.append(overflowed)
        kv_series.append(demand)
        queue_series.append(sum(len(w) for w in waiting))
        active_series.append(len(active))
        # 5. decode
        decoded += len(active)
        for i in active:
            if first_token[i] < 0:
                first_token[i] = t
        # 6. completion
        still = []
        for i in active:
            if t - int(start[i]) + 1 == int(decode[i]):
                completion[i] = t
                completed += 1
                log((t, "complete", i))
            else:
                still.append(i)
        active = still
        t += 1

    kv = np.array(kv_series, np.int64)
    queue = np.array(queue_series, np.int64)
    act = np.array(active_series, np.int64)
    return RawRun(
        first_token=first_token, start=start, completion=completion, evictions=evictions,
        overflow_events=overflow_events, evictions_total=evictions_total, bounces=bounces,
        wasted_tokens=wasted, decoded_tokens=decoded, completed=completed, slots=t,
        waiting_at_end=sum(len(w) for w in waiting), active_at_end=len(active),
        stats=SlotStats.from_series(kv, queue, act, np.array(overflow_series, bool), memory,
                                    warmup),
        series_stride=1, series_kv=kv, series_queue=queue, series_active=act,
    )


def _admit(policy, t, waiting, active, start, prompt, memory, budget_key, demand, predicted):
    """The requests the policy activates in slot t, removed from ``waiting``, in order."""
    code, ints = policy.code, policy.int_params
    if code == POLICY_MEMORY_CHECKED:
        return _memory_checked(t, waiting[0], active, start, prompt, memory, predicted,
                               int(ints[0]), int(ints[1]))
    if code == POLICY_FLOW:
        queue = waiting[0]
        if not queue:
            return []
        b = _rng.budget(int(ints[0]), int(ints[1]), float(policy.float_params[0]),
                        budget_key[0], budget_key[1], t)
        taken = queue[:b]
        del queue[:b]
        return [i for _, i in taken]
    if code == POLICY_CLASSES:
        taken = []
        for k, queue in enumerate(waiting):
            b = int(ints[k]) if k < len(ints) else 0
            taken.extend(queue[:b])
            del queue[:b]
        return [i for _, i in sorted(taken)]
    queue = waiting[0]
    admitted = []
    if code == POLICY_GREEDY:
        cap = int(ints[0])
        while queue and demand + int(prompt[queue[0][1]]) + 1 <= cap:
            i = queue.pop(0)[1]
            demand += int(prompt[i]) + 1
            admitted.append(i)
        return admitted
    if code == POLICY_CONSERVATIVE:
        if int(ints[1]):  # A_max: reserve each request's upper bound
            bound = lambda i: int(predicted.upper[i])  # noqa: E731
        else:
            bound = lambda i: int(ints[0])  # noqa: E731
        reserved = sum(int(prompt[i]) + bound(i) for i in active)
        while queue and reserved + int(prompt[queue[0][1]]) + bound(queue[0][1]) <= memory:
            i = queue.pop(0)[1]
            reserved += int(prompt[i]) + bound(i)
            admitted.append(i)
        return admitted
    raise ValueError(f"unknown policy code {code}")


def _estimate(mode, g, point, lower, upper):
    """Estimated total length after g tokens: the prediction (at least g + 1), or for
    A_min the lower bound doubled until it exceeds g, capped at the upper bound."""
    if mode == ESTIMATE_POINT:
        return max(point, g + 1)
    e = lower
    while e <= g and e < upper:
        e = 2 * e
    return max(min(e, upper), g + 1)


def _memory_checked(t, queue, active, start, prompt, memory, predicted, order, mode):
    """MC-SF / MC-Benchmark / A_min: the longest prefix keeping projected memory <= M."""
    def est(i, g):
        return _estimate(mode, g, int(predicted.point[i]), int(predicted.lower[i]),
                         int(predicted.upper[i]))

    members = [(int(prompt[i]), int(start[i]), int(start[i]) + est(i, t - int(start[i])) - 1)
               for i in active]
    candidates = sorted(queue, key=lambda item: (est(item[1], 0), item[0])) \
        if order == ORDER_SHORTEST else list(queue)
    admitted = []
    for item in candidates:
        i = item[1]
        trial = members + [(int(prompt[i]), t, t + est(i, 0) - 1)]
        if any(sum(l + tau - u + 1 for l, u, e in trial if e >= tau) > memory
               for tau in {e for _, _, e in trial}):
            break
        members = trial
        admitted.append(i)
        queue.remove(item)
    return admitted
