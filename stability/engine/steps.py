"""The steps of a slot and the small structures they use (docs/model.md 2.2).

Each function is inlined into :func:`stability.engine.kernel.advance` (``inline="always"``),
so passing the state's arrays costs nothing.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from stability.engine import admission, rng
from stability.engine.codes import (
    BURST,
    C_COMPLETED,
    C_EVICTIONS,
    C_LATENCY_SUM,
    C_RESTARTED,
    C_TOKENS,
    C_TTFT_SUM,
    DONE,
    DONE_OK,
    EVICT_RESTART,
    FREE,
    REQUEUE_FRONT,
    WAITING,
)
from stability.engine.generate import fill_requests


# ------------------------------------------------------------------------ small pieces
@njit(cache=True, nogil=True, inline="always")
def held(cf, tokens):
    """KV taken by ``tokens`` tokens: rounded up to whole blocks."""
    b = cf.block
    return tokens if b == 1 else ((tokens + b - 1) // b) * b


@njit(cache=True, nogil=True, inline="always")
def decoding_demand(cf, c, t):
    """R of the decoding requests in slot t: sum over them of held(l + g + 1)."""
    if cf.block == 1:
        return c.sum_l + c.n_dec * (t + 1) - c.sum_u
    return c.blocks * cf.block


@njit(cache=True, nogil=True, inline="always")
def heap_push(c, heap, key, idx):
    i = c.heap_n
    c.heap_n += 1
    while i > 0:
        parent = (i - 1) >> 1
        if heap.key[parent] <= key:
            break
        heap.key[i] = heap.key[parent]
        heap.idx[i] = heap.idx[parent]
        i = parent
    heap.key[i] = key
    heap.idx[i] = idx


@njit(cache=True, nogil=True, inline="always")
def heap_pop(c, heap):
    """Remove the root (the caller read it)."""
    last = c.heap_n - 1
    c.heap_n = last
    moved_key = heap.key[last]
    moved = heap.idx[last]
    i = 0
    while True:
        child = 2 * i + 1
        if child >= last:
            break
        if child + 1 < last and heap.key[child + 1] < heap.key[child]:
            child += 1
        if heap.key[child] >= moved_key:
            break
        heap.key[i] = heap.key[child]
        heap.idx[i] = heap.idx[child]
        i = child
    heap.key[i] = moved_key
    heap.idx[i] = moved


@njit(cache=True, nogil=True, inline="always")
def join_decoding(cf, c, req, heap, phase, idx, t):
    """Request ``idx`` decodes from slot t with its kept tokens: u = t - g; returns the
    KV it holds in slot t."""
    g = req.kept[idx]
    u = t - g
    l = req.prompt[idx]
    req.start[idx] = u
    c.n_dec += 1
    c.sum_l += l
    c.sum_u += u
    if cf.block > 1:
        c.blocks += (l + g + 1 + cf.block - 1) // cf.block
        phase[(l - u + 1) % cf.block] += 1
    heap_push(c, heap, u + req.decode[idx] - 1, idx)
    return held(cf, l + g + 1)


@njit(cache=True, nogil=True, inline="always")
def leave_decoding(cf, c, req, phase, idx, t):
    """Take a decoding request out of the aggregates; returns the KV it held in slot t."""
    l = req.prompt[idx]
    u = req.start[idx]
    c.n_dec -= 1
    c.sum_l -= l
    c.sum_u -= u
    if cf.block > 1:
        c.blocks -= (l + t - u + 1 + cf.block - 1) // cf.block
        phase[(l - u + 1) % cf.block] -= 1
    return held(cf, l + t - u + 1)


@njit(cache=True, nogil=True, inline="always")
def enqueue_back(q, g, idx):
    mask = q.items.shape[1] - 1
    q.items[g, (q.head[g] + q.length[g]) & mask] = idx
    q.length[g] += 1


@njit(cache=True, nogil=True, inline="always")
def enqueue_front(q, g, idx):
    mask = q.items.shape[1] - 1
    q.head[g] = (q.head[g] - 1) & mask
    q.items[g, q.head[g]] = idx
    q.length[g] += 1


@njit(cache=True, nogil=True, inline="always")
def head_of(q, g):
    return q.items[g, q.head[g]]


@njit(cache=True, nogil=True, inline="always")
def prefill_need(req, idx):
    """Prefill tokens a request needs when (re)admitted: l, plus g kept tokens."""
    return req.prompt[idx] + req.kept[idx]


@njit(cache=True, nogil=True, inline="always")
def admission_need(cf, req, idx, budget_left):
    """(chunk, KV it adds) for admitting ``idx`` with ``budget_left`` tokens of this
    iteration left: the whole prefill plus the first token, or a partial chunk."""
    target = prefill_need(req, idx)
    chunk = min(target, budget_left)
    if chunk == target:
        return chunk, held(cf, target + 1)
    return chunk, held(cf, chunk)


# ------------------------------------------------------------------------------ steps
@njit(cache=True, nogil=True, inline="always")
def arrive_batch(cf, c, req, order, q, t):
    """Step 1 (batch): requests arriving in slot t (or, timed, by its start) join W."""
    in_order = order.size == 0
    while c.next_arrival < cf.nreq:
        idx = c.next_arrival if in_order else order[c.next_arrival]
        if cf.timed:
            if req.arrival_tick[idx] > c.now:
                break
            req.arrival[idx] = t
        elif req.arrival[idx] != t:
            break
        c.next_arrival += 1
        req.state[idx] = WAITING
        enqueue_back(q, req.group[idx] if cf.groups_by_class else 0, idx)
        c.waiting_n += 1


@njit(cache=True, nogil=True, inline="always")
def arrive_stream(cf, c, req, q, arrivals, t):
    """Step 1 (stream): this slot's drawn arrivals join W; draw the next slot's.

    Returns BURST if the next slot drew more arrivals than ``scratch`` holds."""
    if t != c.next_arrival:
        return DONE_OK
    scratch = arrivals.scratch
    for r in range(c.pending_n):
        k = scratch[0, r]
        if t >= cf.warmup:
            c.arrived += 1
        if scratch[1, r] + scratch[2, r] > cf.memory:
            c.rejected += 1  # l + o > M could never complete
            continue
        c.free_n -= 1
        idx = arrivals.free[c.free_n]
        req.arrival[idx] = t
        req.prompt[idx] = scratch[1, r]
        req.decode[idx] = scratch[2, r]
        req.group[idx] = k
        req.rank[idx] = c.next_rank
        req.qkey[idx] = c.next_rank
        c.next_rank += 1
        req.start[idx] = -1
        req.admitted[idx] = -1
        req.first[idx] = -1
        req.evictions[idx] = 0
        req.kept[idx] = 0
        req.state[idx] = WAITING
        enqueue_back(q, k if cf.groups_by_class else 0, idx)
        c.waiting_n += 1
    st = arrivals.rng
    a0, a1, a2, a3 = st[0], st[1], st[2], st[3]
    l0, l1, l2, l3 = st[4], st[5], st[6], st[7]
    a0, a1, a2, a3, gap = rng.geometric_gap(a0, a1, a2, a3, arrivals.total_rate)
    c.next_arrival += gap
    a0, a1, a2, a3, count = rng.poisson_positive(a0, a1, a2, a3, arrivals.total_rate)
    status = DONE_OK
    if count > scratch.shape[1]:
        status = BURST
    else:
        a0, a1, a2, a3, l0, l1, l2, l3 = fill_requests(
            count, arrivals.class_cdf, arrivals.law_offset, arrivals.law_data,
            a0, a1, a2, a3, l0, l1, l2, l3, scratch, 0)
        c.pending_n = count
    st[0], st[1], st[2], st[3] = a0, a1, a2, a3
    st[4], st[5], st[6], st[7] = l0, l1, l2, l3
    return status


@njit(cache=True, nogil=True, inline="always")
def progress_prefill(cf, c, req, heap, phase, t, budget_left):
    """Step 2 for the request part-way through a chunked prefill: its next chunk.

    Returns (KV it holds in slot t, tokens of budget used, whether it completed)."""
    idx = c.pre_idx
    if idx < 0:
        return 0, 0, False
    chunk = min(prefill_need(req, idx) - c.pre_done, budget_left)
    req.chunk[idx] = chunk
    done = c.pre_done + chunk
    if done == prefill_need(req, idx):
        c.pre_idx = -1
        c.pre_done = 0
        return join_decoding(cf, c, req, heap, phase, idx, t), chunk, True
    c.pre_done = done
    return held(cf, done), chunk, False


@njit(cache=True, nogil=True, inline="always")
def bounced_need(cf, req, q, quota, source, head_from, remaining):
    """KV the candidates that bounce would have added (they are never moved)."""
    mask = q.items.shape[1] - 1
    total = 0
    if source == admission.FROM_CLASSES:
        for g in range(q.length.size):
            for j in range(quota[g]):
                idx = q.items[g, (q.head[g] + j) & mask]
                total += held(cf, prefill_need(req, idx) + 1)
    else:
        for j in range(remaining):
            idx = q.items[0, (q.head[0] + head_from + j) & mask]
            total += held(cf, prefill_need(req, idx) + 1)
    return total


@njit(cache=True, nogil=True, inline="always")
def requeue_bounced_front(c, req, q, quota, source, remaining, scratch):
    """Requeue at the front: the candidates that bounce stay where they are (at the heads
    of their queues) but take front keys as LIFO removal would give them, the last
    candidate first."""
    mask = q.items.shape[1] - 1
    count = 0
    if source == admission.FROM_CLASSES:
        taken = np.zeros(q.length.size, np.int64)
        while True:  # the candidates in merged (admission) order
            g = -1
            best = 0
            for h in range(q.length.size):
                if taken[h] < quota[h]:
                    key = req.qkey[q.items[h, (q.head[h] + taken[h]) & mask]]
                    if g < 0 or key < best:
                        g = h
                        best = key
            if g < 0:
                break
            scratch[count] = q.items[g, (q.head[g] + taken[g]) & mask]
            taken[g] += 1
            count += 1
    else:
        for j in range(remaining):
            scratch[count] = q.items[0, (q.head[0] + j) & mask]
            count += 1
    for j in range(count - 1, -1, -1):
        req.qkey[scratch[j]] = c.front_key
        c.front_key -= 1


@njit(cache=True, nogil=True, inline="always")
def remove_active(cf, c, req, q, phase, idx, t):
    """Step 4 for one request popped by LIFO eviction: back to W by the requeue rule.

    Returns the KV it held."""
    if req.start[idx] >= 0:
        g = t - req.start[idx]
        freed = leave_decoding(cf, c, req, phase, idx, t)
    else:  # part-way through a chunked prefill: its computed tokens are lost
        g = req.kept[idx]
        freed = held(cf, c.pre_done)
        c.pre_idx = -1
        c.pre_done = 0
    measured = t >= cf.warmup
    if req.admitted[idx] == t:
        c.bounces += 1
        c.bounces_measured += measured
    else:
        c.evictions += 1
        c.evictions_measured += measured
        req.evictions[idx] += 1
        if cf.eviction == EVICT_RESTART:
            c.wasted += g
            if measured:
                c.wasted_measured += g
    req.kept[idx] = 0 if cf.eviction == EVICT_RESTART else g
    req.state[idx] = WAITING
    req.start[idx] = -1
    req.admitted[idx] = -1
    if cf.requeue == REQUEUE_FRONT:
        req.qkey[idx] = c.front_key
        c.front_key -= 1
    else:
        req.qkey[idx] = req.rank[idx]
    enqueue_front(q, req.group[idx] if cf.groups_by_class else 0, idx)
    c.waiting_n += 1
    return freed


@njit(cache=True, nogil=True, inline="always")
def complete(cf, c, req, hist, phase, idx, t, end_tick):
    """Step 6 for one request with g = o."""
    leave_decoding(cf, c, req, phase, idx, t)
    c.completed += 1
    if t >= cf.warmup:
        c.completed_measured += 1
        c.tokens_measured += req.decode[idx]
    if cf.streaming:
        req.state[idx] = FREE
        if req.arrival[idx] >= cf.warmup:
            k = req.group[idx]
            latency = t - req.arrival[idx] + 1
            ttft = req.first[idx] - req.arrival[idx] + 1
            hist.latency[k, latency] += 1
            hist.ttft[k, ttft] += 1
            acc = hist.totals
            acc[k, C_COMPLETED] += 1
            acc[k, C_TOKENS] += req.decode[idx]
            acc[k, C_LATENCY_SUM] += latency
            acc[k, C_TTFT_SUM] += ttft
            acc[k, C_EVICTIONS] += req.evictions[idx]
            if req.evictions[idx] > 0:
                acc[k, C_RESTARTED] += 1
    else:
        req.state[idx] = DONE
        req.completion[idx] = t
        if cf.timed:
            req.completion_tick[idx] = end_tick


