"""The fast event-driven kernel (docs/model.md sections 2 and 5): batches and streams.

:func:`advance` runs the slot of docs/model.md 2.2 as named steps (the functions of
:mod:`stability.engine.steps`): arrive, running demand (with a chunked prefill's
progress), admit, evict, decode, complete, then skip the quiet slots before the next
event.  Cost grows with events, not with slots x active requests:

- the demand of the decoding requests, R(t) = sum (l + t - u + 1) = L + n (t + 1) - U,
  comes from three aggregates (n, L = sum of prompts, U = sum of start slots); a request
  readmitted with g kept tokens (recompute eviction) simply starts at u = t - g.  With KV
  in blocks the demand is kept as a block count updated per slot from phase buckets;
- completions come from a (4-ary) heap keyed by the completion slot u + o - 1, lazily
  invalidated;
- the active list is a stack in activation order with lazy deletion, so LIFO eviction
  pops from its top;
- each waiting queue is a ring deque: arrivals join the back, removed requests the front
  (for FIFO admission that is their arrival position: every active request precedes every
  waiting one of its queue in arrival order);
- candidates of Alg. 1 and 2 that would bounce are never moved: LIFO removal of a slot's
  admissions keeps exactly the longest prefix that fits;
- between events nothing changes but R (by n per slot) and the clock, so quiet stretches
  are skipped with closed-form statistics, overflow slot and elapsed time.

All state lives in arrays (``stability.engine.state``), so a run advances in chunks.  The
kernel allocates nothing and is compiled without numba's reference counting
(``_nrt=False``): the arrays it hands to its inlined steps would otherwise be counted on
every call, which cost about a third of its time.
"""

from __future__ import annotations

from numba import njit

from stability.engine import admission, control, stats, timing
from stability.engine.codes import ACTIVE, DONE_OK, NEED_ROOM, NO_LIMIT, REQUEUE_FRONT, WAITING
from stability.engine.steps import (
    admission_need,
    arrive_stream,
    bounced_need,
    complete,
    decoding_demand,
    evict,
    first_token,
    head_of,
    heap_pop,
    held,
    join_decoding,
    mark_first_ticks,
    prefill_chunk,
    record_batch,
    record_stream,
    requeue_bounced_front,
    take_entry,
)


# ------------------------------------------------------------------------------ advance
@njit(cache=True, nogil=True, _nrt=False)
def advance(cfg, cnt, batch, out, out_t, req, free, qi, qe, stack, heap, pol, class_budgets,
            arrivals, hist, series, phase, scratch, ctl):
    """Simulate slots cnt.t .. cfg.t_stop - 1; returns DONE_OK, NEED_ROOM or BURST.

    The requests waiting or running live in ``req``, a pool of reusable entries (free ones
    listed in ``free``).  Batch mode: arrivals come from ``batch`` (its ``order`` lists the
    requests by arrival, empty when the input is already in that order) and each request's
    outputs go to ``out`` (and ``out_t`` for a timed clock) at its input index; with
    ``until_done`` the run stops once all have completed.  Stream mode: arrivals are drawn
    from ``arrivals`` one slot ahead and completed requests are folded into ``hist``.  The
    kernel never reallocates: before each slot it checks that every buffer has room
    (``state.room_needed``) and returns NEED_ROOM otherwise.  ``ctl`` holds the state of a
    stateful policy (``control.CONTROL``; unused by the others).
    """
    cf = cfg[0]
    c = cnt[0]
    order = batch.order  # the batch's arrays, read once here, never through the tuple again
    b_arrival, b_tick, b_prompt, b_decode = batch.arrival, batch.tick, batch.prompt, batch.decode
    b_group, b_point, b_lower, b_upper = batch.group, batch.point, batch.lower, batch.upper
    in_order = order.size == 0
    p = pol[0]
    code_ = p.code
    ps = ctl[0]
    adaptive = code_ == control.ADAPTIVE
    source = admission.source(code_)
    mask = qi.shape[1] - 1
    half = cf.memory // 2 + 1
    choosing = source == admission.FROM_CHOICE
    quota, choice = scratch.quota, scratch.choice  # choice: chosen candidates, or bounced
    members_l, members_u, members_e = scratch.members_l, scratch.members_u, scratch.members_e
    w_idx, w_key = scratch.waiting, scratch.key
    status = DONE_OK
    while True:
        t = c.t
        if cf.until_done and c.completed == cf.nreq:
            break
        if t >= cf.t_stop:
            break
        # ---- room for this slot (see state.room_needed)
        if cf.streaming:
            incoming = c.pending_n if t == c.next_arrival else 0
        elif cf.timed:  # the requests arriving by the start of slot t
            incoming = 0
            while c.next_arrival + incoming < cf.nreq:
                i = c.next_arrival + incoming
                if b_tick[i if in_order else order[i]] > c.now:
                    break
                incoming += 1
            c.pending_n = incoming
        else:  # at most the largest number of arrivals in one slot
            incoming = cf.burst
            c.pending_n = incoming
        if c.free_n < incoming:
            status = NEED_ROOM
            break
        bound = c.waiting_n + c.n_dec + (1 if c.pre_idx >= 0 else 0) + incoming
        active_bound = min(bound, half)
        if (bound > qi.shape[1] or c.heap_n + active_bound + 1 > heap.size
                or c.stack_n + active_bound + 1 > stack.size):
            status = NEED_ROOM
            break
        if cf.timed and t == cf.warmup:
            c.window_start = c.now
        # ---- 1. arrivals
        arrived = 0  # credit units of this slot's arrivals (stateful policies)
        if cf.streaming:
            if t == c.next_arrival:
                waiting_before = c.waiting_n
                status = arrive_stream(cf, c, req, free, qi, qe, arrivals, t)
                if status != DONE_OK:
                    break
                arrived = (c.waiting_n - waiting_before) * control.SCALE
        else:
            while c.next_arrival < cf.nreq:
                i = c.next_arrival if in_order else order[c.next_arrival]
                if (b_tick[i] > c.now) if cf.timed else (b_arrival[i] != t):
                    break
                c.next_arrival += 1
                idx = take_entry(cf, c, req, free, qi, qe, i, t, b_prompt[i], b_decode[i],
                                 b_group[i], c.next_arrival - 1)
                o = out[i]  # its outputs, written first here (the rest after the run)
                o.first = -1
                o.start = -1
                o.completion = -1
                o.evictions = 0
                if b_point.size:
                    req[idx].point = b_point[i]
                    req[idx].lower = b_lower[i]
                    req[idx].upper = b_upper[i]
                if cf.timed:
                    out_t[i].arrival = t
                if adaptive:
                    arrived += control.unit(ps, req[idx].prompt, req[idx].point)
        # ---- 2. running demand; a chunked prefill goes on first
        budget_left = cf.token_budget - c.n_dec if cf.token_budget < NO_LIMIT else NO_LIMIT
        pre = c.pre_idx
        demand = decoding_demand(cf, c, t)
        pre_completed = False
        if pre >= 0:
            used, pre_completed = prefill_chunk(c, req[pre], budget_left)
            budget_left -= used
            if pre_completed:
                c.pre_idx = -1
                c.pre_done = 0
                demand += join_decoding(cf, c, req, out, heap, phase, pre, t)
            else:
                demand += held(cf, c.pre_done)
        # ---- 3. admission: the policy's candidates, in its order, while they fit
        if choosing:
            ncand = 0
            if qe[0].length > 0:
                count = admission.active_members(t, p, req, stack, c.stack_n, members_l,
                                                 members_u, members_e)
                for j in range(qe[0].length):
                    idx = qi[0, (qe[0].head + j) & mask]
                    w_idx[j] = idx
                    w_key[j] = req[idx].qkey
                ncand = admission.memory_checked_choice(
                    t, cf.memory, p.order, p.estimate, members_l, members_u, members_e,
                    count, w_idx, qe[0].length, req, w_key, choice, scratch)
        else:
            control.refill(code_, ps)
            if code_ == control.PREDICTED_FLOW:
                ncand = control.count_candidates(ps, req, qi, qe)
            else:
                ncand = admission.candidates(code_, p, class_budgets, t, c.waiting_n, qe,
                                             quota)
        capped = False  # the budget (not memory) stopped admission
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
                for h in range(qe.size):
                    if quota[h] > 0:
                        key = req[head_of(qi, qe, h)].qkey
                        if g < 0 or key < best:
                            g = h
                            best = key
                if g < 0:
                    break
                idx = head_of(qi, qe, g)
            else:
                if admitted >= ncand or qe[0].length == 0:
                    break
                idx = head_of(qi, qe, 0)
            if active_now >= cf.max_active or budget_left <= 0:
                break
            chunk, need = admission_need(cf, req[idx], budget_left)
            upper = req[idx].upper
            booking = admission.reservation(code_, p, req[idx].prompt, upper)
            if not admission.fits(code_, p, cf.memory, demand, need, c.reserved, booking):
                if admission.bounces(code_):
                    extra = bounced_need(cf, req, qi, qe, quota, source, ncand - admitted)
                    before = demand + extra
                    bounced = quota.sum() if source == admission.FROM_CLASSES \
                        else ncand - admitted
                    c.bounces += bounced
                    if t >= cf.warmup:
                        c.bounces_measured += bounced
                    if cf.requeue == REQUEUE_FRONT:
                        requeue_bounced_front(c, req, qi, qe, quota, source, ncand - admitted,
                                              choice, scratch.taken)
                break
            if not control.allows(code_, ps):
                capped = True
                break
            control.charge(code_, ps, req[idx].prompt, req[idx].point)
            if not choosing:
                qe[g].head = (qe[g].head + 1) & mask
                qe[g].length -= 1
            if source == admission.FROM_CLASSES:
                quota[g] -= 1
            c.waiting_n -= 1
            req[idx].state = ACTIVE
            req[idx].admitted = t
            req[idx].chunk = chunk
            budget_left -= chunk
            if chunk == req[idx].prompt + req[idx].kept:
                join_decoding(cf, c, req, out, heap, phase, idx, t)
            else:
                c.pre_idx = idx
                c.pre_done = chunk
            stack[c.stack_n].idx = idx
            stack[c.stack_n].stamp = t
            c.stack_n += 1
            demand += need
            before += need
            c.reserved += booking
            admitted += 1
            active_now += 1
        if choosing and admitted > 0:  # the chosen leave the queue, which keeps its order
            kept = 0
            for j in range(qe[0].length):
                idx = qi[0, (qe[0].head + j) & mask]
                if req[idx].state == WAITING:
                    qi[0, (qe[0].head + kept) & mask] = idx
                    kept += 1
            qe[0].length = kept
        # ---- 4. overflow check, LIFO eviction
        wasted_before = c.wasted
        if before > cf.memory:
            c.overflows += 1
            if t >= cf.warmup:
                c.overflows_measured += 1
            while demand > cf.evict_to:
                c.stack_n -= 1
                idx = stack[c.stack_n].idx
                if req[idx].state != ACTIVE or req[idx].admitted != stack[c.stack_n].stamp:
                    continue  # a completed request's stale entry
                demand -= evict(cf, c, req, out, qi, qe, phase, idx, t)
                c.reserved -= admission.reservation(
                    code_, p, req[idx].prompt, req[idx].upper)
        # ---- 5. decode: prefill work and first tokens of the requests that stayed
        n = c.n_dec
        prefill = 0
        j = c.stack_n - 1
        while j >= 0 and stack[j].stamp == t:  # this slot's admissions that stayed
            idx = stack[j].idx
            prefill += req[idx].chunk
            if req[idx].evictions > 0:
                c.recomputed += req[idx].chunk
            if req[idx].start >= 0 and req[idx].first < 0:
                first_token(req, out, idx, t)
            j -= 1
        if pre >= 0 and req[pre].state == ACTIVE and req[pre].admitted < t:
            prefill += req[pre].chunk
            if req[pre].evictions > 0:
                c.recomputed += req[pre].chunk
            if pre_completed and req[pre].first < 0:
                first_token(req, out, pre, t)
        c.prefill_tokens += prefill
        d = 0
        if cf.timed:
            d = timing.duration(cf, n, demand, prefill)
            if t >= cf.warmup:
                c.busy += d
                c.prefill_time += d - timing.duration(cf, n, demand, 0)
            mark_first_ticks(req, out_t, stack, c, pre, t, c.now + d)
        end_tick = c.now + d
        c.decoded += n
        stats.account_slot(c, cf, series, t, demand, before, c.waiting_n,
                           n + (1 if c.pre_idx >= 0 else 0))
        # ---- 6. completions
        done = done_decode = done_square = 0
        while c.heap_n > 0 and heap[0].key <= t:
            idx = heap[0].idx
            key = heap[0].key
            heap_pop(c, heap)
            if req[idx].state != ACTIVE or req[idx].start + req[idx].decode - 1 != key:
                continue  # stale: this run was evicted
            complete(cf, c, req, free, phase, idx, t)
            if cf.streaming:
                record_stream(cf, req[idx], hist, t)
            else:
                record_batch(cf, req[idx], out, out_t, t, end_tick)
            c.reserved -= admission.reservation(
                code_, p, req[idx].prompt, req[idx].upper)
            if adaptive:
                size = req[idx].prompt + req[idx].decode
                done += 1
                done_decode += req[idx].decode
                done_square += size * size
        control.observe(code_, ps, t, cf.warmup, arrived, n, c.wasted - wasted_before, capped,
                        before > cf.memory, done, done_decode, done_square)
        # ---- end of slot: block growth, stack compaction, clock
        if cf.block > 1:
            c.blocks += phase[(-t) % cf.block]
        if c.stack_n > 2 * (c.n_dec + 1) + 64:
            kept = 0
            for j in range(c.stack_n):
                idx = stack[j].idx
                if req[idx].state == ACTIVE and req[idx].admitted == stack[j].stamp:
                    stack[kept].idx = idx
                    stack[kept].stamp = stack[j].stamp
                    kept += 1
            c.stack_n = kept
        c.now = end_tick
        if (cf.timed and c.n_dec == 0 and c.pre_idx < 0 and c.waiting_n == 0
                and c.next_arrival < cf.nreq):  # idle: sleep until the next arrival
            nxt = c.next_arrival if in_order else order[c.next_arrival]
            c.now = max(c.now, b_tick[nxt])
        t += 1
        c.t = t
        # ---- skip the quiet slots before the next event
        if t >= cf.t_stop or (cf.until_done and c.completed == cf.nreq):
            continue
        nxt = c.next_arrival if in_order else order[min(c.next_arrival, order.size - 1)]
        next_arrival = -1  # the next batch arrival's slot (unit) or tick (timed)
        if not cf.streaming and c.next_arrival < cf.nreq:
            next_arrival = b_tick[nxt] if cf.timed else b_arrival[nxt]
        stop = quiet_until(cf, c, req, next_arrival, qi, qe, heap, p, class_budgets, code_,
                           ps)
        if stop > t:
            skip_to(cf, c, series, stop, code_, ps)
    return status


@njit(cache=True, nogil=True, inline="always")
def quiet_until(cf, c, req, next_arrival, qi, qe, heap, p, class_budgets, code_, ps):
    """The slot of the next event if nothing can be admitted before it, else c.t: R grows
    by n per slot in between, so the first overflow slot has a closed form.  A stateful
    policy's next update (``control.next_update``) is an event too.
    """
    t = c.t
    stop = t
    if cf.block == 1 and c.pre_idx < 0:
        n = c.n_dec
        waiting = c.waiting_n
        demand = c.sum_l + n * (t + 1) - c.sum_u
        head_need = 0
        head_booking = 0
        if waiting > 0:
            head = req[head_of(qi, qe, 0)]
            left = cf.token_budget - n if cf.token_budget < NO_LIMIT else NO_LIMIT
            head_need = admission_need(cf, head, left)[1]
            head_booking = admission.reservation(code_, p, head.prompt, head.upper)
        capped = n >= cf.max_active or (cf.token_budget < NO_LIMIT
                                        and cf.token_budget - n <= 0)
        if capped or admission.quiet(code_, p, class_budgets, cf.memory, waiting, qe, demand,
                                     head_need, c.reserved, head_booking):
            stop = cf.t_stop
            if cf.streaming:
                stop = min(stop, c.next_arrival)
            elif next_arrival >= 0:
                if cf.timed:
                    stop = min(stop, t + timing.iterations_until(cf, n, demand,
                                                                 next_arrival - c.now))
                else:
                    stop = min(stop, next_arrival)
            if c.heap_n > 0:
                stop = min(stop, heap[0].key)
            if n > 0:
                stop = min(stop, (cf.memory - c.sum_l + c.sum_u) // n)  # first slot R > M
            if cf.timed:
                stop = min(stop, t + timing.safe_span(cf, n, demand))
            stop = min(stop, control.next_update(code_, ps, t))
            stop = max(stop, t)
    return stop


@njit(cache=True, nogil=True, inline="always")
def skip_to(cf, c, series, stop, code_, ps):
    """Jump over the quiet slots c.t .. stop - 1: their statistics, elapsed time and the
    stateful policy's credit in closed form."""
    t = c.t
    n = c.n_dec
    control.skip(code_, ps, t, stop, n, cf.warmup)
    demand = c.sum_l + n * (t + 1) - c.sum_u
    stats.account(c, cf, series, t, stop, demand, n, c.waiting_n, n)
    c.decoded += n * (stop - t)
    if cf.timed:
        if t <= cf.warmup < stop:
            c.window_start = c.now + timing.stretch_time(cf, n, demand, cf.warmup - t)
        first = max(t, cf.warmup)
        if first < stop:
            c.busy += timing.stretch_time(cf, n, demand + n * (first - t), stop - first)
        c.now += timing.stretch_time(cf, n, demand, stop - t)
    c.t = stop
