"""The steps of a slot and the small structures they use (docs/model.md 2.2).

Each function is inlined into :func:`stability.engine.kernel.advance` (``inline="always"``),
which runs without numba's reference counting, so passing arrays to them costs nothing.
Writes that only batch runs need go to ``out[r.id]``; a stream's entries (``id`` -1) write
into the scratch record ``out[-1]``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from stability.engine import admission, rng
from stability.engine.codes import (
    ACTIVE,
    BURST,
    C_COMPLETED,
    C_EVICTIONS,
    C_LATENCY_SUM,
    C_RESTARTED,
    C_TOKENS,
    C_TTFT_SUM,
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
    return c.sum_l + c.n_dec * (t + 1) - c.sum_u if cf.block == 1 else c.blocks * cf.block


@njit(cache=True, nogil=True, inline="always")
def phase_of(cf, r):
    """The bucket of a decoding request's block boundary crossings (block mode)."""
    return (r.prompt - r.start + 1) % cf.block


@njit(cache=True, nogil=True, inline="always")
def heap_push(c, heap, key, idx):
    """Push (key, idx) on the completion calendar, a 4-ary min-heap (children of i at
    4i + 1 .. 4i + 4: half the depth of a binary heap).  Indices are unsigned so that
    numba adds no negative-index wraparound."""
    i = np.uint64(c.heap_n)
    c.heap_n += 1
    one, two = np.uint64(1), np.uint64(2)
    while i > 0:
        parent = (i - one) >> two
        if heap[parent].key <= key:
            break
        heap[i].key = heap[parent].key
        heap[i].idx = heap[parent].idx
        i = parent
    heap[i].key = key
    heap[i].idx = idx


@njit(cache=True, nogil=True, inline="always")
def heap_pop(c, heap):
    """Remove the root (the caller read it)."""
    c.heap_n -= 1
    last = np.uint64(c.heap_n)
    one, two, four = np.uint64(1), np.uint64(2), np.uint64(4)
    moved_key = heap[last].key
    moved = heap[last].idx
    i = np.uint64(0)
    while True:
        first = (i << two) + one
        if first >= last:
            break
        best = first
        best_key = heap[first].key
        end = min(first + four, last)
        j = first + one
        while j < end:
            if heap[j].key < best_key:
                best_key = heap[j].key
                best = j
            j += one
        if best_key >= moved_key:
            break
        heap[i].key = best_key
        heap[i].idx = heap[best].idx
        i = best
    heap[i].key = moved_key
    heap[i].idx = moved


@njit(cache=True, nogil=True, inline="always")
def join_decoding(cf, c, req, out, heap, phase, idx, t):
    """Request ``idx`` decodes from slot t with its kept tokens: u = t - g; returns the
    KV it holds in slot t."""
    r = req[idx]
    g = r.kept
    u = t - g
    r.start = u
    out[r.id].start = u
    c.n_dec += 1
    c.sum_l += r.prompt
    c.sum_u += u
    if cf.block > 1:
        c.blocks += (r.prompt + g + 1 + cf.block - 1) // cf.block
    phase[phase_of(cf, r)] += 1  # block 1: one bucket nobody reads
    heap_push(c, heap, u + r.decode - 1, idx)
    return held(cf, r.prompt + g + 1)


@njit(cache=True, nogil=True, inline="always")
def leave_decoding(cf, c, req, phase, idx, t):
    """Take a decoding request out of the aggregates; returns the KV it held in slot t."""
    r = req[idx]
    c.n_dec -= 1
    c.sum_l -= r.prompt
    c.sum_u -= r.start
    if cf.block > 1:
        c.blocks -= (r.prompt + t - r.start + 1 + cf.block - 1) // cf.block
    phase[phase_of(cf, r)] -= 1
    return held(cf, r.prompt + t - r.start + 1)


@njit(cache=True, nogil=True, inline="always")
def enqueue_back(qi, qe, g, idx):
    mask = qi.shape[1] - 1
    qi[g, (qe[g].head + qe[g].length) & mask] = idx
    qe[g].length += 1


@njit(cache=True, nogil=True, inline="always")
def enqueue_front(qi, qe, g, idx):
    mask = qi.shape[1] - 1
    qe[g].head = (qe[g].head - 1) & mask
    qi[g, qe[g].head] = idx
    qe[g].length += 1


@njit(cache=True, nogil=True, inline="always")
def head_of(qi, qe, g):
    """The request at the head of queue g (a stale entry when the queue is empty)."""
    return qi[g, qe[g].head]


@njit(cache=True, nogil=True, inline="always")
def admission_need(cf, r, budget_left):
    """(chunk, KV it adds) for admitting request ``r`` (a record) with ``budget_left``
    tokens of this iteration left: its whole prefill l + g plus the first token, or a
    partial chunk."""
    target = r.prompt + r.kept
    chunk = min(target, budget_left)
    return chunk, held(cf, target + 1) if chunk == target else held(cf, chunk)


# ------------------------------------------------------------------------------ steps
@njit(cache=True, nogil=True, inline="always")
def take_entry(cf, c, req, free, qi, qe, ident, t, prompt, decode, group, rank):
    """An arrival joins W: a free pool entry holds it while it waits or runs."""
    c.free_n -= 1
    idx = free[c.free_n]
    r = req[idx]
    r.id = ident
    r.arrival = t
    r.prompt = prompt
    r.decode = decode
    r.group = group
    r.rank = rank
    r.qkey = rank
    r.start = -1
    r.admitted = -1
    r.first = -1
    r.evictions = 0
    r.kept = 0
    r.chunk = 0
    r.state = WAITING
    enqueue_back(qi, qe, group if cf.groups_by_class else 0, idx)
    c.waiting_n += 1
    return idx


@njit(cache=True, nogil=True, inline="always")
def arrive_stream(cf, c, req, free, qi, qe, arrivals, t):
    """Step 1 (stream, slot t holds arrivals): they join W; draw the next such slot.

    Returns BURST if the next slot drew more arrivals than ``scratch`` holds."""
    scratch = arrivals.scratch
    for r in range(c.pending_n):
        k = scratch[0, r]
        if t >= cf.warmup:
            c.arrived += 1
        if scratch[1, r] + scratch[2, r] > cf.memory:
            c.rejected += 1  # l + o > M could never complete
        else:
            take_entry(cf, c, req, free, qi, qe, -1, t, scratch[1, r], scratch[2, r], k,
                       c.next_rank)
            c.next_rank += 1
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
def prefill_chunk(c, r, budget_left):
    """Step 2 for the request part-way through a chunked prefill (record ``r``): its next
    chunk.  Returns (chunk, whether the prefill completes)."""
    chunk = min(r.prompt + r.kept - c.pre_done, budget_left)
    r.chunk = chunk
    c.pre_done += chunk
    return chunk, c.pre_done == r.prompt + r.kept


@njit(cache=True, nogil=True, inline="always")
def bounced_need(cf, req, qi, qe, quota, source, remaining):
    """KV the candidates that bounce would have added (they are never moved)."""
    mask = qi.shape[1] - 1
    total = 0
    if source == admission.FROM_CLASSES:
        for g in range(qe.size):
            for j in range(quota[g]):
                r = req[qi[g, (qe[g].head + j) & mask]]
                total += held(cf, r.prompt + r.kept + 1)
    else:
        for j in range(remaining):
            r = req[qi[0, (qe[0].head + j) & mask]]
            total += held(cf, r.prompt + r.kept + 1)
    return total


@njit(cache=True, nogil=True, inline="always")
def requeue_bounced_front(c, req, qi, qe, quota, source, remaining, scratch, taken):
    """Requeue at the front: the candidates that bounce stay where they are (at the heads
    of their queues) but take front keys as LIFO removal would give them, the last
    candidate first."""
    mask = qi.shape[1] - 1
    count = 0
    if source == admission.FROM_CLASSES:
        taken[:] = 0
        while True:  # the candidates in merged (admission) order
            g = -1
            best = 0
            for h in range(qe.size):
                if taken[h] < quota[h]:
                    key = req[qi[h, (qe[h].head + taken[h]) & mask]].qkey
                    if g < 0 or key < best:
                        g = h
                        best = key
            if g < 0:
                break
            scratch[count] = qi[g, (qe[g].head + taken[g]) & mask]
            taken[g] += 1
            count += 1
    else:
        for j in range(remaining):
            scratch[count] = qi[0, (qe[0].head + j) & mask]
            count += 1
    for j in range(count - 1, -1, -1):
        req[scratch[j]].qkey = c.front_key
        c.front_key -= 1


@njit(cache=True, nogil=True, inline="always")
def evict(cf, c, req, out, qi, qe, phase, idx, t):
    """Step 4 for one request popped by LIFO eviction: a bounce if it was admitted in this
    slot, else an eviction; it keeps its tokens or loses them by the eviction rule and
    re-enters W by the requeue rule.  Returns the KV it held."""
    r = req[idx]
    decoding = r.start >= 0
    if decoding:
        g = t - r.start
        freed = leave_decoding(cf, c, req, phase, idx, t)
    else:  # part-way through a chunked prefill: its computed tokens are lost
        g = r.kept
        freed = held(cf, c.pre_done)
        c.pre_idx = -1
        c.pre_done = 0
    measured = t >= cf.warmup
    bounce = r.admitted == t
    if bounce:
        c.bounces += 1
        c.bounces_measured += measured
    else:
        c.evictions += 1
        c.evictions_measured += measured
        r.evictions += 1
        if cf.eviction == EVICT_RESTART:
            c.wasted += g
            if measured:
                c.wasted_measured += g
    out[r.id].evictions += 0 if bounce else 1
    out[r.id].start = -1
    r.kept = 0 if cf.eviction == EVICT_RESTART else g
    r.state = WAITING
    r.start = -1
    r.admitted = -1
    if cf.requeue == REQUEUE_FRONT:
        r.qkey = c.front_key
        c.front_key -= 1
    else:
        r.qkey = r.rank
    enqueue_front(qi, qe, r.group if cf.groups_by_class else 0, idx)
    c.waiting_n += 1
    return freed


@njit(cache=True, nogil=True, inline="always")
def first_token(req, out, idx, t):
    """Step 5 for a request decoding its first token ever."""
    req[idx].first = t
    out[req[idx].id].first = t


@njit(cache=True, nogil=True, inline="always")
def mark_first_ticks(req, out_t, stack, c, pre, t, end_tick):
    """Timed batch: the end of this iteration for the requests whose first token it was."""
    j = c.stack_n - 1
    while j >= 0 and stack[j].stamp == t:
        r = req[stack[j].idx]
        if r.first == t:
            out_t[r.id].first_tick = end_tick
        j -= 1
    if pre >= 0 and req[pre].state == ACTIVE and req[pre].first == t:
        out_t[req[pre].id].first_tick = end_tick


@njit(cache=True, nogil=True, inline="always")
def complete(cf, c, req, free, phase, idx, t):
    """Step 6 for one request with g = o: out of the batch; its pool entry is free again."""
    leave_decoding(cf, c, req, phase, idx, t)
    r = req[idx]
    c.completed += 1
    if t >= cf.warmup:
        c.completed_measured += 1
        c.tokens_measured += r.decode
    r.state = FREE
    free[c.free_n] = idx
    c.free_n += 1


@njit(cache=True, nogil=True, inline="always")
def record_batch(cf, r, out, out_t, t, end_tick):
    """A completed batch request's outputs (``out_t`` of a unit-clock run is one scratch
    record)."""
    out[r.id].completion = t
    out_t[r.id if cf.timed else 0].completion_tick = end_tick


@njit(cache=True, nogil=True, inline="always")
def record_stream(cf, r, hist, t):
    """A completed stream request in the latency and TTFT histograms and class totals
    (requests that arrived before the warm-up count for nothing)."""
    counted = 1 if r.arrival >= cf.warmup else 0
    k = r.group
    latency = t - r.arrival + 1
    ttft = r.first - r.arrival + 1
    hist.latency[k, latency] += counted
    hist.ttft[k, ttft] += counted
    acc = hist.totals
    acc[k, C_COMPLETED] += counted
    acc[k, C_TOKENS] += counted * r.decode
    acc[k, C_LATENCY_SUM] += counted * latency
    acc[k, C_TTFT_SUM] += counted * ttft
    acc[k, C_EVICTIONS] += counted * r.evictions
    acc[k, C_RESTARTED] += counted * (r.evictions > 0)
