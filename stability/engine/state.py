"""The fast kernel's state: named records and named tuples of arrays.

Everything the kernel reads or writes crosses into numba as one of these:

- :data:`CONFIG` (one record): what a run is (capacity, rules, caps, clock, horizon);
- :data:`COUNTERS` (one record): the state scalars, event counters and slot statistics;
- :class:`RequestTable`: per-request arrays (a batch's requests, or a stream's pool);
- :class:`Queues`, :class:`Stack`, :class:`Heap`: the waiting queues, the active list in
  activation order and the completion calendar;
- :class:`Arrivals`: the workload and random stream a streaming run draws from;
- :class:`Histograms`: a streaming run's latency histograms and per-class totals.

The kernel never reallocates; :func:`room_needed` says what a slot may need and
:func:`make_room` grows the buffers in Python between calls.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from stability.engine.codes import ACTIVE, NUM_CLASS_COLUMNS, WAITING

I8, I64, F64 = np.int8, np.int64, np.float64

CONFIG = np.dtype([
    ("streaming", np.bool_),  # arrivals drawn inside the kernel (else a batch of requests)
    ("t_stop", I64),  # simulate slots t < t_stop
    ("until_done", np.bool_),  # batch: also stop once every request has completed
    ("nreq", I64),  # batch: number of requests
    ("burst", I64),  # most arrivals in one slot (room to reserve per slot)
    ("memory", I64),  # M, KV capacity in tokens
    ("evict_to", I64),  # an overflow evicts LIFO until R <= evict_to (M unless clearing)
    ("high", I64),  # floor(19 M / 20): kv > high is "above 0.95 M"
    ("warmup", I64),  # slots t < warmup are left out of the slot statistics
    ("eviction", I64),  # codes.EVICT_*
    ("requeue", I64),  # codes.REQUEUE_*
    ("block", I64),  # KV is allocated in blocks of this many tokens (1: token by token)
    ("max_active", I64),  # cap on requests in the batch (vLLM max_num_seqs)
    ("token_budget", I64),  # tokens per iteration, prefill chunks included (NO_LIMIT: off)
    ("groups_by_class", np.bool_),  # one FIFO queue per class (Alg. 1) or one queue
    ("timed", np.bool_),  # a clock with durations (else one slot = one time unit)
    ("c0", I64), ("c_seq", I64), ("c_ctx", I64), ("c_prefill", I64),  # clock, in ticks
    ("c_step", I64), ("step_tokens", I64),  # + c_step * ceil(tokens in batch / step_tokens)
])

COUNTERS = np.dtype([
    # -- state
    ("t", I64),  # next slot to simulate
    ("now", I64),  # timed: start of slot t, in ticks
    ("n_dec", I64),  # decoding requests (prefill complete): n
    ("sum_l", I64),  # sum of their prompts: L
    ("sum_u", I64),  # sum of their start slots u (g = t - u): U
    ("blocks", I64),  # block mode: sum over decoding requests of ceil((l + g + 1) / block)
    ("pre_idx", I64),  # the request part-way through a chunked prefill (-1: none)
    ("pre_done", I64),  # its prefill tokens computed so far (it holds that much KV)
    ("heap_n", I64),
    ("stack_n", I64),
    ("next_arrival", I64),  # batch: position in arrival order; stream: next slot with arrivals
    ("free_n", I64),  # stream: free entries in the pool
    ("next_rank", I64),  # stream: arrival sequence number
    ("pending_n", I64),  # stream: requests drawn for slot next_arrival, in ``scratch``
    ("waiting_n", I64),
    ("reserved", I64),  # sum over the active requests of the policy's reservation
    ("front_key", I64),  # next queue key of a request requeued at the front (decreasing)
    ("series_stride", I64),
    ("series_n", I64),
    # -- events (whole run)
    ("overflows", I64),
    ("evictions", I64),
    ("bounces", I64),
    ("wasted", I64),  # decode tokens lost by restart evictions
    ("decoded", I64),
    ("completed", I64),
    ("prefill_tokens", I64),  # prefill tokens processed (chunks of requests kept in the batch)
    ("recomputed", I64),  # ... of those, by requests that had been evicted before
    ("arrived", I64),  # stream: arrivals in measured slots
    ("rejected", I64),  # stream: arrivals with l + o > M, never simulated
    # -- measured slots t >= warmup
    ("measured", I64),
    ("overflows_measured", I64),
    ("completed_measured", I64),  # completions in measured slots, whatever their arrival
    ("tokens_measured", I64),  # ... and their decode tokens
    ("evictions_measured", I64),
    ("bounces_measured", I64),
    ("wasted_measured", I64),
    ("kv_sum", I64),  # R after eviction
    ("kv_max", I64),
    ("kv_high", I64),
    ("kv_sq", F64),
    ("pre_sum", I64),  # demand before eviction (after admission)
    ("pre_max", I64),
    ("pre_sq", F64),
    ("excess_sum", I64),  # sum of (demand before eviction - M)^+
    ("queue_sum", I64),
    ("queue_max", I64),
    ("active_sum", I64),
    ("active_max", I64),
    ("window_start", I64),  # timed: start of slot ``warmup`` in ticks (-1 before it)
    ("busy", I64),  # timed: ticks of non-empty iterations in measured slots
    ("prefill_time", I64),  # timed: ticks those iterations spent on prefill
])


class RequestTable(NamedTuple):
    """Per-request int64 arrays (state int8), aligned by request (batch) or pool entry."""

    arrival: np.ndarray  # slot the request joined W (timed batch: written when seen)
    arrival_tick: np.ndarray  # timed: arrival time in ticks (empty otherwise)
    prompt: np.ndarray  # l
    decode: np.ndarray  # o
    group: np.ndarray  # class
    rank: np.ndarray  # arrival order (ties by input index)
    qkey: np.ndarray  # order in the waiting queue: rank, or a negative key if requeued at the front
    start: np.ndarray  # u of the current run (g = t - u), -1 while waiting
    admitted: np.ndarray  # slot of the current run's admission, -1 while waiting
    first: np.ndarray  # slot of the first decode ever, -1 before
    completion: np.ndarray  # completion slot, -1 before (batch only; empty in a stream)
    evictions: np.ndarray
    state: np.ndarray  # codes.WAITING / ACTIVE / DONE / FREE
    kept: np.ndarray  # recompute: tokens generated before the last eviction
    chunk: np.ndarray  # prefill tokens processed in the slot of the last admission or chunk
    first_tick: np.ndarray  # timed batch: end of the iteration of the first token
    completion_tick: np.ndarray  # timed batch: end of the completion iteration
    point: np.ndarray  # predicted decode length (length-aware policies; else empty)
    lower: np.ndarray
    upper: np.ndarray


class Queues(NamedTuple):
    """One ring-buffer deque per group (capacity a power of two)."""

    items: np.ndarray  # (groups, capacity)
    head: np.ndarray  # (groups,)
    length: np.ndarray  # (groups,)


class Stack(NamedTuple):
    """The active list in activation order, with lazy deletion: an entry is live iff its
    request is active and was admitted in the slot ``stamp``."""

    idx: np.ndarray
    stamp: np.ndarray


class Heap(NamedTuple):
    """Completion calendar: binary min-heap of (completion slot, request), lazily
    invalidated (an entry is stale unless the request is active with that completion slot)."""

    key: np.ndarray
    idx: np.ndarray


class Arrivals(NamedTuple):
    """What a streaming run draws arrivals from (``Workload.encode``) and its streams."""

    total_rate: float
    class_cdf: np.ndarray
    law_offset: np.ndarray
    law_data: np.ndarray
    rng: np.ndarray  # uint64[8]: arrival stream state, then length stream state
    scratch: np.ndarray  # (3, burst): class, prompt, decode of slot next_arrival's arrivals
    free: np.ndarray  # free pool entries (the first free_n)


class Histograms(NamedTuple):
    """A streaming run's completed requests: latency and TTFT counts per class and value,
    and per-class totals (columns ``codes.C_*``)."""

    latency: np.ndarray
    ttft: np.ndarray
    totals: np.ndarray


def new_config(memory: int, evict_to: int, warmup: int, *, streaming: bool, nreq: int = 0,
               burst: int = 1, eviction: int = 0, requeue: int = 0, block: int = 1,
               max_active: int, token_budget: int, groups_by_class: bool,
               clock=None) -> np.ndarray:
    cfg = np.zeros(1, CONFIG)
    c = cfg[0]
    c["streaming"] = streaming
    c["nreq"] = nreq
    c["burst"] = burst
    c["memory"] = memory
    c["evict_to"] = evict_to
    c["high"] = (19 * memory) // 20
    c["warmup"] = warmup
    c["eviction"] = eviction
    c["requeue"] = requeue
    c["block"] = block
    c["max_active"] = max_active
    c["token_budget"] = token_budget
    c["groups_by_class"] = groups_by_class
    if clock is not None:
        c["timed"] = True
        for name in ("c0", "c_seq", "c_ctx", "c_prefill", "c_step", "step_tokens"):
            c[name] = getattr(clock, name)
    else:
        c["step_tokens"] = 1
    return cfg


def new_counters() -> np.ndarray:
    cnt = np.zeros(1, COUNTERS)
    cnt[0]["pre_idx"] = -1
    cnt[0]["front_key"] = -1
    cnt[0]["series_stride"] = 1
    cnt[0]["window_start"] = -1
    return cnt


def new_requests(n: int, *, arrival=None, prompt=None, decode=None, group=None, rank=None,
                 arrival_tick=None, completion: bool = True, timed: bool = False,
                 predicted=None) -> RequestTable:
    """A table of ``n`` entries; given arrays are adopted, the rest start empty."""
    def ints(value, fill=0):
        return np.full(n, fill, I64) if value is None else value

    none = np.zeros(0, I64)
    return RequestTable(
        arrival=ints(arrival), arrival_tick=none if arrival_tick is None else arrival_tick,
        prompt=ints(prompt), decode=ints(decode), group=ints(group), rank=ints(rank),
        qkey=(rank.copy() if rank is not None else ints(None)),
        start=ints(None, -1), admitted=ints(None, -1), first=ints(None, -1),
        completion=ints(None, -1) if completion else none, evictions=ints(None),
        state=np.zeros(n, I8), kept=ints(None), chunk=ints(None),
        first_tick=ints(None, -1) if timed else none,
        completion_tick=ints(None, -1) if timed else none,
        point=none if predicted is None else predicted.point,
        lower=none if predicted is None else predicted.lower,
        upper=none if predicted is None else predicted.upper,
    )


def new_queues(groups: int, capacity: int = 1024) -> Queues:
    return Queues(np.zeros((groups, capacity), I64), np.zeros(groups, I64),
                  np.zeros(groups, I64))


def new_stack(capacity: int = 1024) -> Stack:
    return Stack(np.zeros(capacity, I64), np.zeros(capacity, I64))


def new_heap(capacity: int = 1024) -> Heap:
    return Heap(np.zeros(capacity, I64), np.zeros(capacity, I64))


def new_histograms(classes: int, width: int = 1024) -> Histograms:
    return Histograms(np.zeros((classes, width), I64), np.zeros((classes, width), I64),
                      np.zeros((classes, NUM_CLASS_COLUMNS), I64))


def room_needed(cnt, memory: int, incoming: int) -> dict:
    """Entries each structure must hold so that slot cnt['t'] cannot overflow it.

    During one slot the waiting queue gains at most the arrivals and the removed active
    requests, and the active set never exceeds M / 2 (each active request holds at least
    two tokens), so these bounds hold until the next check.
    """
    c = cnt[0]
    waiting_or_active = int(c["waiting_n"] + c["n_dec"] + (c["pre_idx"] >= 0) + incoming)
    active = min(waiting_or_active, memory // 2 + 1)
    return dict(deque=waiting_or_active, heap=int(c["heap_n"]) + active + 1,
                stack=int(c["stack_n"]) + active + 1, pool=int(incoming))


def _grown(a: np.ndarray, size: int, fill=0) -> np.ndarray:
    out = np.full(size, fill, a.dtype)
    out[: a.size] = a
    return out


def grow_queues(q: Queues, need: int) -> Queues:
    """Queues with capacity for ``need`` entries per group, contents kept in order."""
    if need <= q.items.shape[1]:
        return q
    cap = 1 << int(2 * need - 1).bit_length()
    items = np.zeros((q.items.shape[0], cap), I64)
    for g in range(q.items.shape[0]):
        positions = (q.head[g] + np.arange(q.length[g])) % q.items.shape[1]
        items[g, : positions.size] = q.items[g, positions]
    return Queues(items, np.zeros_like(q.head), q.length)


def grow_pairs(pair, need: int):
    """A Stack or Heap with room for ``need`` entries."""
    if need <= pair[0].size:
        return pair
    return type(pair)(*(_grown(a, 2 * need) for a in pair))


def grow_pool(req: RequestTable, arrivals: Arrivals, cnt, need: int):
    """A streaming pool with at least ``need`` free entries (the table doubles)."""
    c = cnt[0]
    if c["free_n"] >= need:
        return req, arrivals
    old = req.prompt.size
    size = 2 * old + need
    grown = {}
    for name, a in req._asdict().items():
        grown[name] = _grown(a, size) if a.size == old else a
    free = arrivals.free
    count = int(c["free_n"])
    free = np.concatenate([free[:count], np.arange(size - 1, old - 1, -1, dtype=I64),
                           np.zeros(old - count, I64)])
    c["free_n"] = count + size - old
    return RequestTable(**grown), arrivals._replace(free=free)


def pending(req: RequestTable) -> np.ndarray:
    """Mask of the entries still waiting or active."""
    return (req.state == WAITING) | (req.state == ACTIVE)


class World(NamedTuple):
    """The rules of a run beyond the policy (docs/model.md section 2.3): what eviction
    does to a request's progress, where a removed request re-enters the queue, the KV
    block size and the clock (None: one slot = one time unit)."""

    eviction: int = 0
    requeue: int = 0
    block: int = 1
    clock: object = None
