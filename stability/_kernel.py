"""The fast event-driven engine (DESIGN 4): one jitted kernel for batches and streams.

Cost grows with events (arrivals, admissions, completions, evictions), not with
slots x active requests:

- the running demand R(t) = sum_S (l + t - u + 1) = L + n (t + 1) - U comes from three
  aggregates (n = |S|, L = sum of prompts, U = sum of start slots), so it is O(1);
- completions come from a binary heap keyed by the completion slot u + o - 1, with lazy
  invalidation: an evicted request's entry stays until its slot comes and is then
  recognised as stale (the request is no longer active with that start slot);
- the active list S is a stack in activation order with lazy deletion of completed
  entries (an entry is live iff its request is active with the same start slot), so LIFO
  eviction pops from the top; the stack is compacted when dead entries dominate;
- the waiting queue of each group (one group, or one per class for ClassBudgets) is a
  ring-buffer deque: arrivals join the back and evicted requests the front.  For FIFO
  admission this is exactly "re-enter W at the arrival position": every active request
  precedes every waiting one of its group in arrival order, and LIFO evicts the latest;
- between events nothing changes but R, which grows by n per slot, so stretches of quiet
  slots are skipped, their statistics summed in closed form and the first overflowing
  slot computed as floor((M - L + U) / n);
- admitted requests that would be bounced in the same slot are never moved: LIFO
  eviction of a slot's admissions keeps exactly the longest prefix that fits.

All state lives in arrays, so a run can be advanced in chunks (progress, interrupts).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from stability import _rng
from stability._generate import fill_requests
from stability.policies import (
    ESTIMATE_POINT,
    ORDER_SHORTEST,
    POLICY_CLASSES,
    POLICY_CONSERVATIVE,
    POLICY_FLOW,
    POLICY_GREEDY,
    POLICY_MEMORY_CHECKED,
)

# request states
FREE, WAITING, ACTIVE, DONE = 0, 1, 2, 3

# indices of the scalar state vector ``sc``
T = 0  # next slot to simulate
N_ACT = 1  # n = |S|
SUM_L = 2  # L = sum of prompts over S
SUM_U = 3  # U = sum of start slots over S
HEAP_N = 4
STACK_N = 5
NEXT_ARRIVAL = 6  # batch: position in the sorted order; stream: next slot with arrivals
FREE_N = 7  # stream: free pool entries
NEXT_RANK = 8  # stream: arrival sequence number
OVERFLOWS = 9
EVICTIONS = 10
BOUNCES = 11
WASTED = 12
DECODED = 13
COMPLETED = 14
WAITING_N = 15
MEASURED = 16
KV_SUM = 17
KV_MAX = 18
KV_HIGH = 19
Q_SUM = 20
Q_MAX = 21
A_SUM = 22
A_MAX = 23
SER_STRIDE = 24
SER_N = 25
ARRIVED = 26
REJECTED = 27
PENDING_N = 28  # stream: arrivals drawn for slot NEXT_ARRIVAL, waiting in ``scratch``
SUM_RES = 29  # Conservative / A_max: sum over S of the reservations l + bound
OVERFLOW_MEASURED = 30  # overflow events in slots t >= warmup
NUM_SCALARS = 31

# why ``advance`` returned
DONE_OK = 0  # reached t_stop, or every request completed
NEED_ROOM = 1  # a buffer is too small for the next slot: grow (``room_needed``) and resume
BURST = 2  # a slot drew more arrivals than ``scratch`` holds (probability < 1e-30)

# columns of the per-class accumulators (streaming)
C_COMPLETED, C_TOKENS, C_RESTARTED, C_LATENCY_SUM, C_TTFT_SUM, C_EVICTIONS = 0, 1, 2, 3, 4, 5
NUM_CLASS_COLUMNS = 6


@njit(cache=True, nogil=True, inline="always")
def _account(sc, fsc, series, s0, s1, kv0, inc, queue, active, warmup, high):
    """Statistics of slots s0..s1-1 where kv(s) = kv0 + inc (s - s0), queue and active fixed."""
    stride = sc[SER_STRIDE]
    s = ((s0 + stride - 1) // stride) * stride
    while s < s1:
        j = sc[SER_N]
        if j == series.shape[1]:  # full: keep every other sample, double the stride
            kept = (j + 1) // 2
            for m in range(kept):
                series[0, m] = series[0, 2 * m]
                series[1, m] = series[1, 2 * m]
                series[2, m] = series[2, 2 * m]
            sc[SER_N] = kept
            stride *= 2
            sc[SER_STRIDE] = stride
            s = ((s + stride - 1) // stride) * stride
            continue
        series[0, j] = kv0 + inc * (s - s0)
        series[1, j] = queue
        series[2, j] = active
        sc[SER_N] = j + 1
        s += stride
    first = max(s0, warmup)
    if first >= s1:
        return
    c = s1 - first
    k0 = kv0 + inc * (first - s0)
    last = k0 + inc * (c - 1)
    sc[MEASURED] += c
    sc[KV_SUM] += c * k0 + (inc * (c - 1)) * c // 2
    fc, fk, fi = float(c), float(k0), float(inc)
    fsc[0] += fc * fk * fk + fk * fi * fc * (fc - 1.0) + fi * fi * (fc - 1.0) * fc * (2.0 * fc - 1.0) / 6.0
    if last > sc[KV_MAX]:
        sc[KV_MAX] = last
    if k0 > high:
        sc[KV_HIGH] += c
    elif inc > 0:
        sc[KV_HIGH] += max(0, c - ((high - k0) // inc + 1))
    sc[Q_SUM] += c * queue
    sc[A_SUM] += c * active
    if queue > sc[Q_MAX]:
        sc[Q_MAX] = queue
    if active > sc[A_MAX]:
        sc[A_MAX] = active


@njit(cache=True, nogil=True)
def estimate(mode, g, point, lower, upper):
    """Estimated total length of a request with g tokens so far (``_MemoryChecked``)."""
    if mode == ESTIMATE_POINT:
        return max(point, g + 1)
    e = lower  # doubling: lower, 2 lower, 4 lower, ... until it exceeds g, capped at upper
    while e <= g and e < upper:
        e *= 2
    return max(min(e, upper), g + 1)


@njit(cache=True, nogil=True)
def memory_checked_choice(t, memory, order, mode, members_l, members_u, members_e, count,
                          waiting, waiting_n, r_prompt, r_point, r_lower, r_upper, rank_key,
                          out):
    """The longest prefix of ``waiting`` (in the policy's order) that keeps the projected
    memory <= M at every predicted completion slot (``_MemoryChecked``); written to ``out``.

    members_* hold (l, u, e) of the active requests in their first ``count`` entries and
    have room for the admitted ones.  m(tau) = sum_{e_r >= tau} (l_r + tau - u_r + 1) is
    kept at every checkpoint tau = e_r and updated in O(count) per candidate.
    """
    key = np.empty(waiting_n, np.int64)
    for j in range(waiting_n):
        key[j] = rank_key[j]
    by_rank = np.argsort(key, kind="mergesort")
    if order == ORDER_SHORTEST:
        first = np.empty(waiting_n, np.int64)
        for j in range(waiting_n):
            idx = waiting[by_rank[j]]
            first[j] = estimate(mode, 0, r_point[idx], r_lower[idx], r_upper[idx]) \
                if r_point.size else 1
        ranked = by_rank[np.argsort(first, kind="mergesort")]
    else:
        ranked = by_rank
    level = np.empty(members_l.size, np.int64)  # m at each member's completion slot
    for a in range(count):
        total = 0
        for b in range(count):
            if members_e[b] >= members_e[a]:
                total += members_l[b] + members_e[a] - members_u[b] + 1
        level[a] = total
        if total > memory:
            return 0  # the active set alone is projected to overflow: admit nothing
    taken = 0
    for j in range(waiting_n):
        idx = waiting[ranked[j]]
        l = r_prompt[idx]
        e = t + estimate(mode, 0, r_point[idx], r_lower[idx], r_upper[idx]) - 1
        ok = True
        for a in range(count):
            if members_e[a] <= e and level[a] + l + members_e[a] - t + 1 > memory:
                ok = False
                break
        own = l + e - t + 1
        for b in range(count):
            if members_e[b] >= e:
                own += members_l[b] + e - members_u[b] + 1
        if not ok or own > memory:
            break
        for a in range(count):
            if members_e[a] <= e:
                level[a] += l + members_e[a] - t + 1
        members_l[count] = l
        members_u[count] = t
        members_e[count] = e
        level[count] = own
        count += 1
        out[taken] = idx
        taken += 1
    return taken


def room_needed(sc, memory, burst):
    """Entries each structure must hold so that slot sc[T] cannot overflow it.

    During one slot the waiting queue gains at most the arrivals and the evicted active
    requests, and the active set never exceeds M / 2 (each active request holds at least
    two tokens), so these bounds hold until the next check.
    """
    waiting_or_active = int(sc[WAITING_N] + sc[N_ACT] + burst)
    active = min(waiting_or_active, memory // 2 + 1)
    return dict(deque=waiting_or_active, heap=int(sc[HEAP_N]) + active + 1,
                stack=int(sc[STACK_N]) + active + 1, pool=int(burst))


@njit(cache=True, nogil=True)
def advance(streaming, t_stop, until_done, nreq, order, burst,
            r_arrival, r_prompt, r_decode, r_group, r_rank, r_start, r_first, r_completion,
            r_evictions, r_state, r_point, r_lower, r_upper,
            total_rate, class_cdf, law_offset, law_data, rng, scratch,
            pcode, pints, pfloats, bkey, memory, evict_to, warmup,
            sc, fsc, heap_key, heap_idx, stack_idx, stack_stamp, dq, dq_head, dq_len,
            free_list, series, lat_hist, ttft_hist, class_acc):
    """Simulate slots sc[T] .. t_stop - 1 (DESIGN 1.2); returns DONE_OK, NEED_ROOM or BURST.

    Batch mode (``streaming`` False): the requests are the r_* arrays indexed by input
    position, ``order`` lists them by (arrival, index) (empty when the input is already
    in that order) and ``burst`` bounds the arrivals
    of one slot; with ``until_done`` the run stops once all have completed.  Stream mode:
    arrivals are drawn from the workload arrays and the rng states one slot ahead (into
    ``scratch``), requests live in a pool of reusable entries, and completed ones are
    folded into the latency histograms (sized by the caller for the chunk) and the
    per-class accumulators.  The kernel never reallocates: before each slot it checks
    that every buffer has room (``room_needed``) and returns NEED_ROOM otherwise.
    """
    in_order = order.size == 0
    groups = dq.shape[0]
    mask = dq.shape[1] - 1
    high = (19 * memory) // 20
    half = memory // 2 + 1
    per_class = pcode == POLICY_CLASSES
    checked = pcode == POLICY_MEMORY_CHECKED
    quota = np.zeros(groups, np.int64)
    # memory-checked admission: scratch for the active set (<= M/2) plus the admitted
    # (<= the queue), the queue and the choice
    members_l = np.empty(dq.shape[1] + half + 1 if checked else 1, np.int64)
    members_u = np.empty(members_l.size, np.int64)
    members_e = np.empty(members_l.size, np.int64)
    w_idx = np.empty(dq.shape[1] if checked else 1, np.int64)
    w_key = np.empty(w_idx.size, np.int64)
    choice = np.empty(w_idx.size, np.int64)
    use_bound = pcode == POLICY_CONSERVATIVE and pints[1] == 1
    a0, a1, a2, a3 = rng[0], rng[1], rng[2], rng[3]
    l0, l1, l2, l3 = rng[4], rng[5], rng[6], rng[7]
    status = DONE_OK
    t = sc[T]
    while True:
        if until_done and sc[COMPLETED] == nreq:
            break
        if t >= t_stop:
            break
        # ---- room for this slot (see room_needed)
        incoming = burst
        if streaming:
            incoming = sc[PENDING_N] if t == sc[NEXT_ARRIVAL] else 0
            if sc[FREE_N] < incoming:
                status = NEED_ROOM
                break
        bound = sc[WAITING_N] + sc[N_ACT] + incoming
        active_bound = min(bound, half)
        if (bound > dq.shape[1] or sc[HEAP_N] + active_bound + 1 > heap_key.size
                or sc[STACK_N] + active_bound + 1 > stack_idx.size):
            status = NEED_ROOM
            break
        # ---- 1. arrivals join the back of their group's queue
        if streaming:
            if t == sc[NEXT_ARRIVAL]:
                for r in range(sc[PENDING_N]):
                    k = scratch[0, r]
                    if t >= warmup:
                        sc[ARRIVED] += 1
                    if scratch[1, r] + scratch[2, r] > memory:
                        sc[REJECTED] += 1  # l + o > M could never complete
                        continue
                    sc[FREE_N] -= 1
                    idx = free_list[sc[FREE_N]]
                    r_arrival[idx] = t
                    r_prompt[idx] = scratch[1, r]
                    r_decode[idx] = scratch[2, r]
                    r_group[idx] = k
                    r_rank[idx] = sc[NEXT_RANK]
                    sc[NEXT_RANK] += 1
                    r_start[idx] = -1
                    r_first[idx] = -1
                    r_evictions[idx] = 0
                    r_state[idx] = WAITING
                    g = k if per_class else 0
                    dq[g, (dq_head[g] + dq_len[g]) & mask] = idx
                    dq_len[g] += 1
                    sc[WAITING_N] += 1
                # draw the next slot holding arrivals and its requests
                a0, a1, a2, a3, gap = _rng.geometric_gap(a0, a1, a2, a3, total_rate)
                sc[NEXT_ARRIVAL] += gap
                a0, a1, a2, a3, count = _rng.poisson_positive(a0, a1, a2, a3, total_rate)
                if count > scratch.shape[1]:
                    status = BURST
                    break
                a0, a1, a2, a3, l0, l1, l2, l3 = fill_requests(
                    count, class_cdf, law_offset, law_data, a0, a1, a2, a3, l0, l1, l2, l3,
                    scratch, 0)
                sc[PENDING_N] = count
        else:
            while sc[NEXT_ARRIVAL] < nreq:
                idx = sc[NEXT_ARRIVAL] if in_order else order[sc[NEXT_ARRIVAL]]
                if r_arrival[idx] != t:
                    break
                sc[NEXT_ARRIVAL] += 1
                r_state[idx] = WAITING
                g = r_group[idx] if per_class else 0
                dq[g, (dq_head[g] + dq_len[g]) & mask] = idx
                dq_len[g] += 1
                sc[WAITING_N] += 1
        # ---- 2. running demand, O(1) from the aggregates
        demand = sc[SUM_L] + sc[N_ACT] * (t + 1) - sc[SUM_U]
        # ---- 3. admission: one loop, the policy picks the group and the fit test
        candidates = 0
        if pcode == POLICY_FLOW:
            if dq_len[0] > 0:
                candidates = min(_rng.budget(pints[0], pints[1], pfloats[0], bkey[0], bkey[1], t),
                                 dq_len[0])
        elif per_class:
            for g in range(groups):
                quota[g] = min(pints[g], dq_len[g]) if g < pints.size else 0
                candidates += quota[g]
        elif checked and dq_len[0] > 0:
            count = 0  # the active set with its projected completion slots
            for j in range(sc[STACK_N]):
                idx = stack_idx[j]
                if r_state[idx] == ACTIVE and r_start[idx] == stack_stamp[j]:
                    members_l[count] = r_prompt[idx]
                    members_u[count] = r_start[idx]
                    members_e[count] = r_start[idx] - 1 + estimate(
                        pints[1], t - r_start[idx], r_point[idx], r_lower[idx], r_upper[idx])
                    count += 1
            for j in range(dq_len[0]):
                idx = dq[0, (dq_head[0] + j) & mask]
                w_idx[j] = idx
                w_key[j] = r_rank[idx] if streaming else r_arrival[idx] * nreq + idx
            candidates = memory_checked_choice(
                t, memory, pints[0], pints[1], members_l, members_u, members_e, count, w_idx,
                dq_len[0], r_prompt, r_point, r_lower, r_upper, w_key, choice)
        max_decode = pints[0]
        reserved = sc[SUM_RES]
        admitted = 0
        while True:
            if checked:
                if admitted == candidates:
                    break
                g = 0
                idx = choice[admitted]
            elif per_class:
                g = -1
                best = 0
                for h in range(groups):
                    if quota[h] > 0:
                        j = dq[h, dq_head[h]]
                        key = r_rank[j] if streaming else r_arrival[j] * nreq + j
                        if g < 0 or key < best:
                            g = h
                            best = key
                if g < 0:
                    break
            else:
                g = 0
                if dq_len[0] == 0 or (pcode == POLICY_FLOW and admitted >= candidates):
                    break
            if not checked:
                idx = dq[g, dq_head[g]]
            prompt = r_prompt[idx]
            bound = r_upper[idx] if use_bound else max_decode
            if pcode == POLICY_GREEDY:
                fits = demand + prompt + 1 <= pints[0]
            elif pcode == POLICY_CONSERVATIVE:
                fits = reserved + prompt + bound <= memory
            elif checked:
                fits = True  # chosen by memory_checked_choice
            else:
                fits = demand + prompt + 1 <= memory
            if not fits:
                break
            if not checked:  # checked choices leave the queue below, all at once
                dq_head[g] = (dq_head[g] + 1) & mask
                dq_len[g] -= 1
            sc[WAITING_N] -= 1
            if per_class:
                quota[g] -= 1
            # activate: u = t, g = 0
            r_state[idx] = ACTIVE
            r_start[idx] = t
            sc[N_ACT] += 1
            sc[SUM_L] += prompt
            sc[SUM_U] += t
            demand += prompt + 1
            reserved += prompt + bound
            sc[SUM_RES] += prompt + bound
            admitted += 1
            stack_idx[sc[STACK_N]] = idx
            stack_stamp[sc[STACK_N]] = t
            sc[STACK_N] += 1
            # push (completion slot, request) on the heap; kept inline because a jitted
            # helper taking arrays pays reference counting on every call
            key = t + r_decode[idx] - 1
            i = sc[HEAP_N]
            sc[HEAP_N] += 1
            while i > 0:
                parent = (i - 1) >> 1
                if heap_key[parent] <= key:
                    break
                heap_key[i] = heap_key[parent]
                heap_idx[i] = heap_idx[parent]
                i = parent
            heap_key[i] = key
            heap_idx[i] = idx
        if checked and admitted > 0:  # drop the admitted from the queue, keeping its order
            kept = 0
            for j in range(dq_len[0]):
                idx = dq[0, (dq_head[0] + j) & mask]
                if r_state[idx] == WAITING:
                    dq[0, (dq_head[0] + kept) & mask] = idx
                    kept += 1
            dq_len[0] = kept
        overflow = False
        if pcode == POLICY_FLOW or per_class:
            # the candidates that did not fit bounce without ever leaving the queue
            if candidates > admitted:
                overflow = True
                sc[BOUNCES] += candidates - admitted
        # ---- 4. overflow check, LIFO eviction
        if demand > memory:
            overflow = True
            while demand > evict_to:
                sc[STACK_N] -= 1
                idx = stack_idx[sc[STACK_N]]
                if r_state[idx] != ACTIVE or r_start[idx] != stack_stamp[sc[STACK_N]]:
                    continue  # a completed request's stale entry
                done = t - r_start[idx]
                demand -= r_prompt[idx] + done + 1
                sc[N_ACT] -= 1
                sc[SUM_L] -= r_prompt[idx]
                sc[SUM_U] -= r_start[idx]
                if pcode == POLICY_CONSERVATIVE:
                    sc[SUM_RES] -= r_prompt[idx] + (r_upper[idx] if use_bound else max_decode)
                if done > 0:
                    sc[EVICTIONS] += 1
                    r_evictions[idx] += 1
                    sc[WASTED] += done
                else:
                    sc[BOUNCES] += 1
                r_state[idx] = WAITING
                r_start[idx] = -1
                g = r_group[idx] if per_class else 0
                dq_head[g] = (dq_head[g] - 1) & mask
                dq[g, dq_head[g]] = idx
                dq_len[g] += 1
                sc[WAITING_N] += 1
        if overflow:
            sc[OVERFLOWS] += 1
            if t >= warmup:
                sc[OVERFLOW_MEASURED] += 1
        n = sc[N_ACT]
        _account(sc, fsc, series, t, t + 1, demand, 0, sc[WAITING_N], n, warmup, high)
        # ---- 5. decode; this slot's surviving admissions (top of the stack) decode first
        sc[DECODED] += n
        j = sc[STACK_N] - 1
        while j >= 0 and stack_stamp[j] == t:
            idx = stack_idx[j]
            if r_first[idx] < 0:
                r_first[idx] = t
            j -= 1
        # ---- 6. completions
        while sc[HEAP_N] > 0 and heap_key[0] <= t:
            idx = heap_idx[0]
            key = heap_key[0]
            last = sc[HEAP_N] - 1  # pop: move the last entry down from the root
            sc[HEAP_N] = last
            moved_key = heap_key[last]
            moved = heap_idx[last]
            i = 0
            while True:
                c = 2 * i + 1
                if c >= last:
                    break
                if c + 1 < last and heap_key[c + 1] < heap_key[c]:
                    c += 1
                if heap_key[c] >= moved_key:
                    break
                heap_key[i] = heap_key[c]
                heap_idx[i] = heap_idx[c]
                i = c
            heap_key[i] = moved_key
            heap_idx[i] = moved
            if r_state[idx] != ACTIVE or r_start[idx] + r_decode[idx] - 1 != key:
                continue  # stale: this run was evicted
            sc[N_ACT] -= 1
            sc[SUM_L] -= r_prompt[idx]
            sc[SUM_U] -= r_start[idx]
            if pcode == POLICY_CONSERVATIVE:
                sc[SUM_RES] -= r_prompt[idx] + (r_upper[idx] if use_bound else max_decode)
            sc[COMPLETED] += 1
            if streaming:
                r_state[idx] = FREE
                free_list[sc[FREE_N]] = idx
                sc[FREE_N] += 1
                if r_arrival[idx] >= warmup:
                    k = r_group[idx]
                    latency = t - r_arrival[idx] + 1
                    ttft = r_first[idx] - r_arrival[idx] + 1
                    lat_hist[k, latency] += 1
                    ttft_hist[k, ttft] += 1
                    class_acc[k, C_COMPLETED] += 1
                    class_acc[k, C_TOKENS] += r_decode[idx]
                    class_acc[k, C_LATENCY_SUM] += latency
                    class_acc[k, C_TTFT_SUM] += ttft
                    class_acc[k, C_EVICTIONS] += r_evictions[idx]
                    if r_evictions[idx] > 0:
                        class_acc[k, C_RESTARTED] += 1
            else:
                r_state[idx] = DONE
                r_completion[idx] = t
        if sc[STACK_N] > 2 * sc[N_ACT] + 64:  # compact away completed entries
            kept = 0
            for j in range(sc[STACK_N]):
                idx = stack_idx[j]
                if r_state[idx] == ACTIVE and r_start[idx] == stack_stamp[j]:
                    stack_idx[kept] = idx
                    stack_stamp[kept] = stack_stamp[j]
                    kept += 1
            sc[STACK_N] = kept
        t += 1
        # ---- skip the quiet slots before the next event
        if t >= t_stop or (until_done and sc[COMPLETED] == nreq):
            continue
        n = sc[N_ACT]
        waiting = sc[WAITING_N]
        if pcode == POLICY_FLOW:
            quiet = waiting == 0 or (pints[0] == 0 and pints[1] == 0)
        elif per_class:
            quiet = True
            for g in range(groups):
                if dq_len[g] > 0 and g < pints.size and pints[g] > 0:
                    quiet = False
        elif waiting == 0:
            quiet = True
        else:
            head = r_prompt[dq[0, dq_head[0]]]
            head_idx = dq[0, dq_head[0]]
            if pcode == POLICY_GREEDY:
                quiet = sc[SUM_L] + n * (t + 1) - sc[SUM_U] + head + 1 > pints[0]
            elif pcode == POLICY_CONSERVATIVE:
                quiet = sc[SUM_RES] + head + (r_upper[head_idx] if use_bound else max_decode) \
                    > memory
            else:
                quiet = False  # memory-checked admission is re-evaluated every slot
        if not quiet:
            continue
        stop = t_stop
        if streaming:
            stop = min(stop, sc[NEXT_ARRIVAL])
        elif sc[NEXT_ARRIVAL] < nreq:
            p = sc[NEXT_ARRIVAL]
            stop = min(stop, r_arrival[p if in_order else order[p]])
        if sc[HEAP_N] > 0:
            stop = min(stop, heap_key[0])
        if n > 0:
            stop = min(stop, (memory - sc[SUM_L] + sc[SUM_U]) // n)  # first slot with R > M
        if stop > t:
            _account(sc, fsc, series, t, stop, sc[SUM_L] + n * (t + 1) - sc[SUM_U], n, waiting, n,
                     warmup, high)
            sc[DECODED] += n * (stop - t)
            t = stop
    sc[T] = t
    rng[0], rng[1], rng[2], rng[3] = a0, a1, a2, a3
    rng[4], rng[5], rng[6], rng[7] = l0, l1, l2, l3
    return status
