"""Admission hooks: each policy's part of the fast kernel, chosen by its code.

A policy enters the kernel through five small functions (docs/model.md section 4):

- :func:`candidates`: how many waiting requests it considers this slot (and, for the
  length-aware policies, which ones);
- :func:`fits`: whether the next candidate may join the batch, given its need;
- :func:`bounces`: whether a candidate that does not fit bounces (counted, like a request
  admitted and removed by the overflow check: Alg. 1 and 2 admit without a memory check)
  or simply stops admission (memory-checked rules);
- :func:`reservation`: the tokens a policy books for an active request (worst-case
  reservation rules), kept as a running sum;
- :func:`quiet`: whether nothing can be admitted until the next event, so the kernel may
  skip slots.

Adding a policy: a code, a :data:`PARAMS` field if it needs one, a branch in the hooks
that differ from the default, its class in :mod:`stability.policies` and its rule in
:mod:`stability.engine.reference`.

Policies with state that lasts from slot to slot (a credit, a controller) keep it in a
:data:`stability.engine.control.CONTROL` record, which ``Encoded.control`` carries and the
engines copy per run (adaptive and prediction-aware flow control, docs/adaptive.md).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from stability.engine import rng
from stability.engine.codes import ACTIVE, NO_LIMIT
from stability.engine.control import ADAPTIVE, PREDICTED_FLOW

# policy codes
FLOW = 0  # Alg. 2: B_t from the head, no memory check
CLASSES = 1  # Alg. 1: b_k per class, no memory check
GREEDY = 2  # FCFS while R + need <= cap
CONSERVATIVE = 3  # FCFS while the reservations fit in M
MEMORY_CHECKED = 4  # MC-SF, MC-Benchmark, A_min: projected memory at predicted completions
PACED = 5  # FCFS while R + need <= cap, at most ``per_slot`` admissions per slot
# ADAPTIVE = 6: FCFS while R + need <= M, at most a credit-paced budget in budgeted mode
# PREDICTED_FLOW = 7: from the head while a credit in predicted memory-time lasts, no
# memory check (both defined in stability.engine.control, with their state)

# how candidates are taken from the waiting queues
FROM_HEAD, FROM_CLASSES, FROM_CHOICE = 0, 1, 2

# memory-checked orders and estimates
ORDER_SHORTEST, ORDER_FCFS = 0, 1
ORDER_VOLUME = 2  # SVF (Kong et al.): smallest memory-time w(l, e) = l e + e (e + 1) / 2 first
ESTIMATE_POINT, ESTIMATE_DOUBLING = 0, 1

PARAMS = np.dtype([
    ("code", np.int64),  # which policy (the codes above)
    ("budget_law", np.int64), ("budget", np.int64), ("budget_mean", np.float64),  # FLOW
    ("key0", np.uint64), ("key1", np.uint64),  # FLOW: the counter-based budget stream
    ("cap", np.int64),  # GREEDY, PACED: admit while R + need <= cap
    ("per_slot", np.int64),  # PACED
    ("max_decode", np.int64), ("use_upper", np.bool_),  # CONSERVATIVE (A_max: upper bound)
    ("order", np.int64), ("estimate", np.int64),  # MEMORY_CHECKED
])
"""Named parameters of every policy (a policy sets the fields it uses)."""


def new_params(**values) -> np.ndarray:
    params = np.zeros(1, PARAMS)
    for name, value in values.items():
        params[0][name] = value
    return params


@njit(cache=True, nogil=True, inline="always")
def source(code):
    """Where the candidates come from: the head of one queue, per-class quotas, or a list."""
    if code == CLASSES:
        return FROM_CLASSES
    if code == MEMORY_CHECKED:
        return FROM_CHOICE
    return FROM_HEAD


@njit(cache=True, nogil=True, inline="always")
def bounces(code):
    """True if a candidate that does not fit bounces (admitted without a memory check)."""
    return code == FLOW or code == CLASSES or code == PREDICTED_FLOW


@njit(cache=True, nogil=True, inline="always")
def reservation(code, p, prompt, upper):
    """Tokens booked for an active request (Conservative / A_max: l + bound)."""
    if code == CONSERVATIVE:
        return prompt + (upper if p.use_upper else p.max_decode)
    return 0


@njit(cache=True, nogil=True, inline="always")
def fits(code, p, memory, demand, need, reserved, booking):
    """May the next candidate join: ``need`` more tokens on top of ``demand`` (R so far),
    or ``booking`` on top of the reserved total?"""
    if code == GREEDY or code == PACED:
        return demand + need <= p.cap
    if code == CONSERVATIVE:
        return reserved + booking <= memory
    if code == MEMORY_CHECKED:
        return True  # chosen by memory_checked_choice
    return demand + need <= memory  # FLOW, CLASSES: the longest prefix that fits stays


@njit(cache=True, nogil=True, inline="always")
def candidates(code, p, class_budgets, t, waiting, ends, quota):
    """Candidates this slot (FROM_HEAD: from the head; FROM_CLASSES: fills ``quota``).

    FROM_CHOICE policies compute their list in :func:`memory_checked_choice`.
    """
    count = waiting
    if code == FLOW:
        count = 0
        if ends[0].length > 0:
            count = min(rng.budget(p.budget_law, p.budget, p.budget_mean, p.key0, p.key1, t),
                        ends[0].length)
    elif code == CLASSES:
        count = 0
        for g in range(ends.size):
            quota[g] = min(class_budgets[g], ends[g].length) if g < class_budgets.size else 0
            count += quota[g]
    elif code == PACED:
        count = min(p.per_slot, waiting)
    return count


@njit(cache=True, nogil=True, inline="always")
def quiet(code, p, class_budgets, memory, waiting, ends, demand_next, head_need,
          reserved, head_booking):
    """True if nothing can be admitted in the next slot nor until an event changes the
    state (a completion, an arrival, an eviction): R only grows in between.

    ``demand_next`` is R of the next slot before admission, ``head_need`` what the head of
    the (single) queue would add.
    """
    result = False  # memory-checked admission is re-evaluated every slot
    if waiting == 0:
        result = True
    elif code == FLOW:
        result = p.budget_law == 0 and p.budget == 0
    elif code == CLASSES:
        result = True
        for g in range(ends.size):
            if ends[g].length > 0 and g < class_budgets.size and class_budgets[g] > 0:
                result = False
    elif code == GREEDY:
        result = demand_next + head_need > p.cap
    elif code == PACED:
        result = p.per_slot == 0 or demand_next + head_need > p.cap
    elif code == CONSERVATIVE:
        result = reserved + head_booking > memory
    elif code == ADAPTIVE:  # its credit only delays by slots: quiet only when nothing fits
        result = demand_next + head_need > memory
    elif code == PREDICTED_FLOW:
        result = p.budget == 0
    return result


# ---------------------------------------------------------------- length-aware policies
@njit(cache=True, nogil=True)
def estimate(mode, g, point, lower, upper):
    """Estimated total length of a request with g tokens so far (memory-checked rules):
    the prediction (at least g + 1), or for A_min the lower bound doubled each time the
    request outlives it, capped at the upper bound."""
    if mode == ESTIMATE_POINT:
        return max(point, g + 1)
    e = lower
    while e <= g and e < upper:
        e *= 2
    return max(min(e, upper), g + 1)


@njit(cache=True, nogil=True, inline="always")
def sort_stably(keys, order, tmp, n):
    """Reorder ``order[:n]`` so that keys[order[j]] is nondecreasing, ties kept in place
    (bottom-up merge sort into ``tmp``; allocates nothing)."""
    src, dst = order, tmp
    width = 1
    passes = 0
    while width < n:
        for lo in range(0, n, 2 * width):
            mid = min(lo + width, n)
            hi = min(lo + 2 * width, n)
            i, j, k = lo, mid, lo
            while i < mid and j < hi:
                if keys[src[j]] < keys[src[i]]:
                    dst[k] = src[j]
                    j += 1
                else:
                    dst[k] = src[i]
                    i += 1
                k += 1
            while i < mid:
                dst[k] = src[i]
                i += 1
                k += 1
            while j < hi:
                dst[k] = src[j]
                j += 1
                k += 1
        src, dst = dst, src
        passes += 1
        width *= 2
    if passes % 2 == 1:
        for k in range(n):
            order[k] = tmp[k]


@njit(cache=True, nogil=True)
def memory_checked_choice(t, memory, order, mode, members_l, members_u, members_e, count,
                          waiting, waiting_n, req, key, out, s):
    """The longest prefix of ``waiting`` (in the policy's order) that keeps the projected
    memory <= M at every predicted completion slot; written to ``out``.

    members_* hold (l, u, e) of the active requests in their first ``count`` entries and
    have room for the admitted ones.  m(tau) = sum_{e_r >= tau} (l_r + tau - u_r + 1) is
    kept at every checkpoint tau = e_r and updated in O(count) per candidate.  A request
    readmitted with g kept tokens starts at u = t - g.  Requests requeued at the front
    (negative ``key``) come first, in key order; the rest in the policy's order.  ``s`` is
    the kernel's scratch (it allocates nothing).
    """
    ranked = s.ranked
    for j in range(waiting_n):
        ranked[j] = j
    sort_stably(key, ranked, s.sort_tmp, waiting_n)
    if order == ORDER_SHORTEST:
        first = s.first
        for j in range(waiting_n):  # by position in ``waiting``
            r = req[waiting[j]]
            first[j] = -1 if key[j] < 0 else estimate(mode, r.kept, r.point, r.lower,
                                                       r.upper)
        sort_stably(first, ranked, s.sort_tmp, waiting_n)
    elif order == ORDER_VOLUME:
        first = s.first
        for j in range(waiting_n):  # by position in ``waiting``
            r = req[waiting[j]]
            e = estimate(mode, r.kept, r.point, r.lower, r.upper)
            first[j] = -1 if key[j] < 0 else r.prompt * e + e * (e + 1) // 2
        sort_stably(first, ranked, s.sort_tmp, waiting_n)
    level = s.level  # m at each member's completion slot
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
        r = req[idx]
        l = r.prompt
        g = r.kept
        u = t - g
        e = u + estimate(mode, g, r.point, r.lower, r.upper) - 1
        ok = True
        for a in range(count):
            if members_e[a] <= e and level[a] + l + members_e[a] - u + 1 > memory:
                ok = False
                break
        own = l + e - u + 1
        for b in range(count):
            if members_e[b] >= e:
                own += members_l[b] + e - members_u[b] + 1
        if not ok or own > memory:
            break
        for a in range(count):
            if members_e[a] <= e:
                level[a] += l + members_e[a] - u + 1
        members_l[count] = l
        members_u[count] = u
        members_e[count] = e
        level[count] = own
        count += 1
        out[taken] = idx
        taken += 1
    return taken


@njit(cache=True, nogil=True)
def active_members(t, p, req, stack, stack_n, members_l, members_u, members_e):
    """(l, u, predicted completion slot) of every decoding request; returns their count."""
    count = 0
    for j in range(stack_n):
        r = req[stack[j].idx]
        if r.state == ACTIVE and r.admitted == stack[j].stamp and r.start >= 0:
            members_l[count] = r.prompt
            members_u[count] = r.start
            members_e[count] = r.start - 1 + estimate(p.estimate, t - r.start, r.point,
                                                      r.lower, r.upper)
            count += 1
    return count


class Encoded(NamedTuple):
    """A policy as the engines see it (``Policy.encode``).

    params : one :data:`PARAMS` record; class_budgets : Alg. 1's b_k (else empty);
    groups_by_class : one FIFO queue per class; evict_to : an overflow evicts LIFO until
    R <= evict_to; max_active, token_budget : caps on the batch (vLLM's max_num_seqs and
    max_num_batched_tokens, ``codes.NO_LIMIT`` when off); predictions : the prediction
    model of a length-aware policy (drawn by the API), else None; control : the initial
    state of a stateful policy (copied per run), else None.
    """

    params: np.ndarray
    class_budgets: np.ndarray
    groups_by_class: bool
    evict_to: int
    max_active: int = NO_LIMIT
    token_budget: int = NO_LIMIT
    predictions: object = None
    control: object = None  # a stability.engine.control.CONTROL record (stateful policies)

    @property
    def code(self) -> int:
        return int(self.params[0]["code"])
