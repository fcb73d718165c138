"""The fast event-driven kernel (docs/model.md sections 2 and 5): batches and streams.

:func:`advance` runs the slot of docs/model.md 2.2 as named steps (the functions of
:mod:`stability.engine.steps`): arrive, running demand (with a chunked prefill's
progress), admit, evict, decode, complete, then skip the quiet slots before the next
event.  Cost grows with events, not with slots x active requests:

- the demand of the decoding requests, R(t) = sum (l + t - u + 1) = L + n (t + 1) - U,
  comes from three aggregates (n, L = sum of prompts, U = sum of start slots); a request
  readmitted with g kept tokens (recompute eviction) simply starts at u = t - g.  With KV
  in blocks the demand is kept as a block count updated per slot from phase buckets;
- completions come from a heap keyed by the completion slot u + o - 1, lazily invalidated;
- the active list is a stack in activation order with lazy deletion, so LIFO eviction
  pops from its top;
- each waiting queue is a ring deque: arrivals join the back, removed requests the front
  (for FIFO admission that is their arrival position: every active request precedes every
  waiting one of its queue in arrival order);
- candidates of Alg. 1 and 2 that would bounce are never moved: LIFO removal of a slot's
  admissions keeps exactly the longest prefix that fits;
- between events nothing changes but R (by n per slot) and the clock, so quiet stretches
  are skipped with closed-form statistics, overflow slot and elapsed time.

All state lives in arrays (``stability.engine.state``), so a run advances in chunks.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from stability.engine import admission, stats, timing
from stability.engine.codes import ACTIVE, DONE_OK, NEED_ROOM, NO_LIMIT, REQUEUE_FRONT, WAITING
from stability.engine.steps import (
    admission_need,
    arrive_batch,
    arrive_stream,
    bounced_need,
    complete,
    decoding_demand,
    head_of,
    heap_pop,
    join_decoding,
    prefill_need,
    progress_prefill,
    remove_active,
    requeue_bounced_front,
)


# ------------------------------------------------------------------------------ advance
@njit(cache=True, nogil=True)
def advance(cfg, cnt, req, order, q, stack, heap, pol, class_budgets, arrivals, hist, series,
            phase):
    """Simulate slots cnt.t .. cfg.t_stop - 1; returns DONE_OK, NEED_ROOM or BURST.

    Batch mode: the requests are ``req`` indexed by input position, ``order`` lists them by
    arrival (empty when the input is already in that order); with ``until_done`` the run
    stops once all have completed.  Stream mode: arrivals are drawn from ``arrivals`` one
    slot ahead, requests live in a pool of reusable entries and completed ones are folded
    into ``hist``.  The kernel never reallocates: before each slot it checks that every
    buffer has room (``state.room_needed``) and returns NEED_ROOM otherwise.
    """
    cf = cfg[0]
    c = cnt[0]
    p = pol[0]
    code_ = p.code
    source = admission.source(code_)
    mask = q.items.shape[1] - 1
    half = cf.memory // 2 + 1
    quota = np.zeros(q.length.size, np.int64)
    choosing = source == admission.FROM_CHOICE
    members_l = np.empty(q.items.shape[1] + half + 1 if choosing else 1, np.int64)
    members_u = np.empty(members_l.size, np.int64)
    members_e = np.empty(members_l.size, np.int64)
    w_idx = np.empty(q.items.shape[1] if choosing else 1, np.int64)
    w_key = np.empty(w_idx.size, np.int64)
    choice = np.empty(q.items.shape[1], np.int64)  # chosen candidates, or bounced ones
    status = DONE_OK
    while True:
        t = c.t
        if cf.until_done and c.completed == cf.nreq:
            break
        if t >= cf.t_stop:
            break
        # ---- room for this slot (see state.room_needed)
        incoming = cf.burst
        if cf.streaming:
            incoming = c.pending_n if t == c.next_arrival else 0
            if c.free_n < incoming:
                status = NEED_ROOM
                break
        bound = c.waiting_n + c.n_dec + (1 if c.pre_idx >= 0 else 0) + incoming
        active_bound = min(bound, half)
        if (bound > q.items.shape[1] or c.heap_n + active_bound + 1 > heap.key.size
                or c.stack_n + active_bound + 1 > stack.idx.size):
            status = NEED_ROOM
            break
        if cf.timed and t == cf.warmup:
            c.window_start = c.now
        # ---- 1. arrivals
        if cf.streaming:
            status = arrive_stream(cf, c, req, q, arrivals, t)
            if status != DONE_OK:
                break
        else:
            arrive_batch(cf, c, req, order, q, t)
        # ---- 2. running demand; a chunked prefill goes on first
        budget_left = cf.token_budget - c.n_dec if cf.token_budget < NO_LIMIT else NO_LIMIT
        pre = c.pre_idx
        demand = decoding_demand(cf, c, t)
        pre_held, used, pre_completed = progress_prefill(cf, c, req, heap, phase, t,
                                                         budget_left)
        demand += pre_held
        budget_left -= used
        # ---- 3. admission: the policy's candidates, in its order, while they fit
        if choosing:
            ncand = 0
            if q.length[0] > 0:
                count = admission.active_members(t, p, req, stack.idx, stack.stamp,
                                                 c.stack_n, members_l, members_u, members_e)
                for j in range(q.length[0]):
                    idx = q.items[0, (q.head[0] + j) & mask]
                    w_idx[j] = idx
                    w_key[j] = req.qkey[idx]
                ncand = admission.memory_checked_choice(
                    t, cf.memory, p.order, p.estimate, members_l, members_u, members_e,
                    count, w_idx, q.length[0], req.prompt, req.kept, req.point, req.lower,
                    req.upper, w_key, choice)
        else:
            ncand = admission.candidates(code_, p, class_budgets, t, c.waiting_n, q.length,
                                         quota)
        active_now = c.n_dec + (1 if c.pre_idx >= 0 else 0)
        admitted = 0
        before = demand  # the demand before eviction, bounced candidates included
        while True:
            g = 0
            if choosing:
                if admitted == ncand:
                    break
                idx = choice[admitted]
            elif source == admission.FROM_CLASSES:
                g = -1
                best = 0
                for h in range(q.length.size):
                    if quota[h] > 0:
                        key = req.qkey[head_of(q, h)]
                        if g < 0 or key < best:
                            g = h
                            best = key
                if g < 0:
                    break
                idx = head_of(q, g)
            else:
                if admitted >= ncand or q.length[0] == 0:
                    break
                idx = head_of(q, 0)
            if active_now >= cf.max_active or budget_left <= 0:
                break
            chunk, need = admission_need(cf, req, idx, budget_left)
            upper = req.upper[idx] if req.upper.size else 0
            booking = admission.reservation(code_, p, req.prompt[idx], upper)
            if not admission.fits(code_, p, cf.memory, demand, need, c.reserved, booking):
                if admission.bounces(code_):
                    extra = bounced_need(cf, req, q, quota, source, 0, ncand - admitted)
                    before = demand + extra
                    bounced = quota.sum() if source == admission.FROM_CLASSES \
                        else ncand - admitted
                    c.bounces += bounced
                    if t >= cf.warmup:
                        c.bounces_measured += bounced
                    if cf.requeue == REQUEUE_FRONT:
                        requeue_bounced_front(c, req, q, quota, source, ncand - admitted,
                                              choice)
                break
            if not choosing:
                q.head[g] = (q.head[g] + 1) & mask
                q.length[g] -= 1
            if source == admission.FROM_CLASSES:
                quota[g] -= 1
            c.waiting_n -= 1
            req.state[idx] = ACTIVE
            req.admitted[idx] = t
            req.chunk[idx] = chunk
            budget_left -= chunk
            if chunk == prefill_need(req, idx):
                join_decoding(cf, c, req, heap, phase, idx, t)
            else:
                c.pre_idx = idx
                c.pre_done = chunk
            stack.idx[c.stack_n] = idx
            stack.stamp[c.stack_n] = t
            c.stack_n += 1
            demand += need
            before += need
            c.reserved += booking
            admitted += 1
            active_now += 1
        if choosing and admitted > 0:  # the chosen leave the queue, which keeps its order
            kept = 0
            for j in range(q.length[0]):
                idx = q.items[0, (q.head[0] + j) & mask]
                if req.state[idx] == WAITING:
                    q.items[0, (q.head[0] + kept) & mask] = idx
                    kept += 1
            q.length[0] = kept
        # ---- 4. overflow check, LIFO eviction
        if before > cf.memory:
            c.overflows += 1
            if t >= cf.warmup:
                c.overflows_measured += 1
            while demand > cf.evict_to:
                c.stack_n -= 1
                idx = stack.idx[c.stack_n]
                if req.state[idx] != ACTIVE or req.admitted[idx] != stack.stamp[c.stack_n]:
                    continue  # a completed request's stale entry
                demand -= remove_active(cf, c, req, q, phase, idx, t)
                c.reserved -= admission.reservation(
                    code_, p, req.prompt[idx], req.upper[idx] if req.upper.size else 0)
        # ---- 5. decode; prefill work of the requests that stayed
        n = c.n_dec
        prefill = 0
        j = c.stack_n - 1
        while j >= 0 and stack.stamp[j] == t:  # this slot's admissions that stayed
            idx = stack.idx[j]
            prefill += req.chunk[idx]
            if req.evictions[idx] > 0:
                c.recomputed += req.chunk[idx]
            j -= 1
        if pre >= 0 and req.state[pre] == ACTIVE and req.admitted[pre] < t:
            prefill += req.chunk[pre]
            if req.evictions[pre] > 0:
                c.recomputed += req.chunk[pre]
        c.prefill_tokens += prefill
        d = 0
        if cf.timed:
            d = timing.duration(cf, n, demand, prefill)
            if t >= cf.warmup:
                c.busy += d
                c.prefill_time += d - timing.duration(cf, n, demand, 0)
        end_tick = c.now + d
        c.decoded += n
        j = c.stack_n - 1
        while j >= 0 and stack.stamp[j] == t:
            idx = stack.idx[j]
            if req.start[idx] >= 0 and req.first[idx] < 0:
                req.first[idx] = t
                if cf.timed:
                    req.first_tick[idx] = end_tick
            j -= 1
        if pre_completed and req.state[pre] == ACTIVE and req.first[pre] < 0:
            req.first[pre] = t
            if cf.timed:
                req.first_tick[pre] = end_tick
        stats.account_slot(c, cf, series, t, demand, before, c.waiting_n,
                           n + (1 if c.pre_idx >= 0 else 0))
        # ---- 6. completions
        while c.heap_n > 0 and heap.key[0] <= t:
            idx = heap.idx[0]
            key = heap.key[0]
            heap_pop(c, heap)
            if req.state[idx] != ACTIVE or req.start[idx] + req.decode[idx] - 1 != key:
                continue  # stale: this run was evicted
            complete(cf, c, req, hist, phase, idx, t, end_tick)
            c.reserved -= admission.reservation(
                code_, p, req.prompt[idx], req.upper[idx] if req.upper.size else 0)
        # ---- end of slot: block growth, stack compaction, clock
        if cf.block > 1:
            c.blocks += phase[(-t) % cf.block]
        if c.stack_n > 2 * (c.n_dec + 1) + 64:
            kept = 0
            for j in range(c.stack_n):
                idx = stack.idx[j]
                if req.state[idx] == ACTIVE and req.admitted[idx] == stack.stamp[j]:
                    stack.idx[kept] = idx
                    stack.stamp[kept] = stack.stamp[j]
                    kept += 1
            c.stack_n = kept
        c.now = end_tick
        if (cf.timed and c.n_dec == 0 and c.pre_idx < 0 and c.waiting_n == 0
                and c.next_arrival < cf.nreq):  # idle: sleep until the next arrival
            nxt = c.next_arrival if order.size == 0 else order[c.next_arrival]
            c.now = max(c.now, req.arrival_tick[nxt])
        t += 1
        c.t = t
        # ---- skip the quiet slots before the next event
        if t >= cf.t_stop or (cf.until_done and c.completed == cf.nreq):
            continue
        skip_quiet(cf, c, req, order, q, heap, p, class_budgets, series, code_)
    return status


@njit(cache=True, nogil=True, inline="always")
def skip_quiet(cf, c, req, order, q, heap, p, class_budgets, series, code_):
    """Jump over the slots before the next event when nothing can be admitted meanwhile:
    R grows by n per slot, so statistics, the first overflow slot and the elapsed time
    have closed forms."""
    if cf.block > 1 or c.pre_idx >= 0:
        return
    t = c.t
    n = c.n_dec
    waiting = c.waiting_n
    demand = c.sum_l + n * (t + 1) - c.sum_u
    head_need = 0
    head_booking = 0
    if waiting > 0 and not cf.groups_by_class:
        idx = head_of(q, 0)
        left = cf.token_budget - n if cf.token_budget < NO_LIMIT else NO_LIMIT
        head_need = admission_need(cf, req, idx, left)[1]
        head_booking = admission.reservation(code_, p, req.prompt[idx],
                                             req.upper[idx] if req.upper.size else 0)
    capped = n >= cf.max_active or (cf.token_budget < NO_LIMIT and cf.token_budget - n <= 0)
    if not (capped or admission.quiet(code_, p, class_budgets, cf.memory, waiting, q.length,
                                      demand, head_need, c.reserved, head_booking)):
        return
    stop = cf.t_stop
    if cf.streaming:
        stop = min(stop, c.next_arrival)
    elif c.next_arrival < cf.nreq:
        nxt = c.next_arrival if order.size == 0 else order[c.next_arrival]
        if cf.timed:
            stop = min(stop, t + timing.iterations_until(cf, n, demand,
                                                         req.arrival_tick[nxt] - c.now))
        else:
            stop = min(stop, req.arrival[nxt])
    if c.heap_n > 0:
        stop = min(stop, heap.key[0])
    if n > 0:
        stop = min(stop, (cf.memory - c.sum_l + c.sum_u) // n)  # first slot with R > M
    if cf.timed:
        stop = min(stop, t + timing.safe_span(cf, n, demand))
    if stop <= t:
        return
    stats.account(c, cf, series, t, stop, demand, n, waiting, n)
    c.decoded += n * (stop - t)
    if cf.timed:
        if t <= cf.warmup < stop:
            c.window_start = c.now + timing.stretch_time(cf, n, demand, cf.warmup - t)
        first = max(t, cf.warmup)
        if first < stop:
            c.busy += timing.stretch_time(cf, n, demand + n * (first - t), stop - first)
        c.now += timing.stretch_time(cf, n, demand, stop - t)
    c.t = stop
