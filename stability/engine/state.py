"""The fast kernel's state: named records and named tuples of arrays.

Everything the kernel reads or writes crosses into numba as one of these:

- :data:`CONFIG` (one record): what a run is (capacity, rules, caps, clock, horizon);
- :data:`COUNTERS` (one record): the state scalars, event counters and slot statistics;
- :data:`REQUEST`: one record per request (a batch's requests, or a stream's pool);
- the waiting queues (an item array and :data:`ENDS`), the active list in activation
  order (:data:`STACK`) and the completion calendar (:data:`HEAP`);
- :class:`Arrivals`: the workload and random stream a streaming run draws from;
- :class:`Histograms`: a streaming run's latency histograms and per-class totals.

The kernel never reallocates; :func:`room_needed` says what a slot may need and
:func:`make_room` grows the buffers in Python between calls.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from stability.engine.codes import ACTIVE, FREE, NUM_CLASS_COLUMNS, WAITING

I64, F64 = np.int64, np.float64

CONFIG = np.dtype([
    ("streaming", np.bool_),  # arrivals drawn inside the kernel (else a batch of requests)
    ("t_stop", I64),  # simulate slots t < t_stop
    ("until_done", np.bool_),  # batch: also stop once every request has completed
    ("nreq", I64),  # batch: number of requests
    ("burst", I64),  # batch, unit clock: the most requests arriving in one slot
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
    ("pending_n", I64),  # requests arriving in the next slot (stream: drawn, in ``scratch``)
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
    ("pre_extra", I64),  # sum of (demand before eviction - after) over overflow slots
    ("pre_max", I64),  # largest demand before eviction in an overflow slot
    ("pre_sq_extra", F64),  # sum of (before^2 - after^2) over overflow slots
    ("excess_sum", I64),  # sum of (demand before eviction - M)^+
    ("queue_sum", I64),
    ("queue_max", I64),
    ("active_sum", I64),
    ("active_max", I64),
    ("window_start", I64),  # timed: start of slot ``warmup`` in ticks (-1 before it)
    ("busy", I64),  # timed: ticks of non-empty iterations in measured slots
    ("prefill_time", I64),  # timed: ticks those iterations spent on prefill
])


REQUEST = np.dtype([
    ("id", I64),  # batch: the request's input index (where its outputs go); stream: -1
    ("arrival", I64),  # slot the request joined W
    ("prompt", I64),  # l
    ("decode", I64),  # o
    ("group", I64),  # class
    ("rank", I64),  # arrival order (ties by input index)
    ("qkey", I64),  # order in the waiting queue: rank, or a negative key if requeued at the front
    ("start", I64),  # u of the current run (g = t - u), -1 while waiting or prefilling
    ("admitted", I64),  # slot of the current run's admission, -1 while waiting
    ("first", I64),  # slot of the first decode ever, -1 before
    ("evictions", I64),
    ("state", I64),  # codes.WAITING / ACTIVE / FREE
    ("kept", I64),  # recompute: tokens generated before the last eviction
    ("chunk", I64),  # prefill tokens processed in the slot of the last admission or chunk
    ("point", I64),  # predicted decode length (length-aware policies)
    ("lower", I64),
    ("upper", I64),
], align=True)
"""A request while it waits or runs: an entry of the pool, reused once it completes.
Records of one array, so the kernel touches one cache line per request and passes no
array views around (views of arrays in helpers cost reference counting)."""

OUT = np.dtype([("first", I64), ("start", I64), ("completion", I64), ("evictions", I64)],
               align=True)
"""A batch request's outputs, at its input index: first-token slot, start slot u of the
current or final run, completion slot (-1 where none) and evictions."""

OUT_TIMED = np.dtype([("arrival", I64), ("first_tick", I64), ("completion_tick", I64)],
                     align=True)
"""A timed batch request's outputs: the slot it was seen and the ends of its first-token
and completion iterations (ticks; -1 where none)."""


class Batch(NamedTuple):
    """A batch's requests as the kernel reads them (unused arrays are empty)."""

    order: np.ndarray  # input positions by arrival (empty: the input is in that order)
    arrival: np.ndarray  # arrival slot
    tick: np.ndarray  # timed: arrival time in ticks
    prompt: np.ndarray
    decode: np.ndarray
    group: np.ndarray
    point: np.ndarray  # predictions of a length-aware policy
    lower: np.ndarray
    upper: np.ndarray


ENDS = np.dtype([("head", I64), ("length", I64)], align=True)
"""Where each group's ring deque starts and how many it holds (capacity a power of two)."""

STACK = np.dtype([("idx", I64), ("stamp", I64)], align=True)
"""The active list in activation order, with lazy deletion: an entry is live iff its
request is active and was admitted in the slot ``stamp``."""

HEAP = np.dtype([("key", I64), ("idx", I64)], align=True)
"""Completion calendar: 4-ary min-heap of (completion slot, request), lazily
invalidated (an entry is stale unless the request is active with that completion slot)."""


class Arrivals(NamedTuple):
    """What a streaming run draws arrivals from (``Workload.encode``) and its streams."""

    total_rate: float
    class_cdf: np.ndarray
    law_offset: np.ndarray
    law_data: np.ndarray
    rng: np.ndarray  # uint64[8]: arrival stream state, then length stream state
    scratch: np.ndarray  # (3, burst): class, prompt, decode of slot next_arrival's arrivals


class Scratch(NamedTuple):
    """Working arrays of one slot (the kernel allocates nothing)."""

    quota: np.ndarray  # per group: Alg. 1's candidates left this slot
    taken: np.ndarray  # per group: bounced candidates counted so far
    choice: np.ndarray  # queue capacity: chosen (length-aware) or bounced candidates
    waiting: np.ndarray  # queue capacity: the waiting requests (length-aware policies)
    key: np.ndarray  # ... and their queue keys
    members_l: np.ndarray  # queue capacity + M / 2 + 1: projected active set (length-aware)
    members_u: np.ndarray
    members_e: np.ndarray
    level: np.ndarray  # ... projected memory at each member's completion
    ranked: np.ndarray  # queue capacity: the waiting requests in the policy's order
    sort_tmp: np.ndarray
    first: np.ndarray  # ... their estimated lengths (shortest first)


def new_scratch(groups: int, capacity: int, memory: int, length_aware: bool) -> Scratch:
    members = capacity + memory // 2 + 1 if length_aware else 1
    waiting = capacity if length_aware else 1
    return Scratch(np.zeros(groups, I64), np.zeros(groups, I64), np.zeros(capacity, I64),
                   *(np.zeros(waiting, I64) for _ in range(2)),
                   *(np.zeros(members, I64) for _ in range(4)),
                   *(np.zeros(waiting, I64) for _ in range(3)))


class Histograms(NamedTuple):
    """A streaming run's completed requests: latency and TTFT counts per class and value,
    and per-class totals (columns ``codes.C_*``)."""

    latency: np.ndarray
    ttft: np.ndarray
    totals: np.ndarray


def new_config(memory: int, evict_to: int, warmup: int, *, streaming: bool, nreq: int = 0,
               burst: int = 0, eviction: int = 0, requeue: int = 0, block: int = 1,
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


def new_pool(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(pool, free list): ``n`` free request entries."""
    pool = np.zeros(n, REQUEST)
    pool["state"] = FREE
    return pool, np.arange(n - 1, -1, -1, dtype=I64)


def new_outputs(n: int, timed: bool) -> tuple[np.ndarray, np.ndarray]:
    """(out, out_t) of a batch of ``n`` requests, each with one more scratch record at the
    end (stream entries, id -1, write there; so does a unit-clock run into ``out_t``, which
    has only that record).  The kernel writes a request's records when it arrives;
    :func:`finish_outputs` fills those of the requests that never did."""
    out = np.empty(n + 1, OUT)
    out_t = np.empty(n + 1 if timed else 1, OUT_TIMED)
    out_t[:] = np.array((-1, -1, -1), dtype=OUT_TIMED)
    return out, out_t


def finish_outputs(out: np.ndarray, unseen: np.ndarray) -> None:
    """The outputs of the requests that had not arrived by the horizon: no slot, no
    eviction."""
    out[unseen] = np.array((-1, -1, -1, 0), dtype=OUT)


def new_queues(groups: int, capacity: int = 1024):
    """(items, ends): one ring deque per group."""
    return np.zeros((groups, capacity), I64), np.zeros(groups, ENDS)


def new_stack(capacity: int = 1024) -> np.ndarray:
    return np.zeros(capacity, STACK)


def new_heap(capacity: int = 1024) -> np.ndarray:
    return np.zeros(capacity, HEAP)


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


def _grown(a: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros(size, a.dtype)
    out[: a.size] = a
    return out


def grow_queues(items: np.ndarray, ends: np.ndarray, need: int):
    """Queues with capacity for ``need`` entries per group, contents kept in order."""
    if need <= items.shape[1]:
        return items, ends
    cap = 1 << int(2 * need - 1).bit_length()
    grown = np.zeros((items.shape[0], cap), I64)
    for g in range(items.shape[0]):
        positions = (ends[g]["head"] + np.arange(ends[g]["length"])) % items.shape[1]
        grown[g, : positions.size] = items[g, positions]
    ends = ends.copy()
    ends["head"] = 0
    return grown, ends


def grow_array(a: np.ndarray, need: int) -> np.ndarray:
    """A stack or heap with room for ``need`` entries."""
    return a if need <= a.size else _grown(a, 2 * need)


def grow_pool(req: np.ndarray, free: np.ndarray, cnt, need: int):
    """A pool with at least ``need`` free entries (the table doubles)."""
    c = cnt[0]
    if c["free_n"] >= need:
        return req, free
    old = req.size
    size = 2 * old + need
    count = int(c["free_n"])
    free = np.concatenate([free[:count], np.arange(size - 1, old - 1, -1, dtype=I64),
                           np.zeros(old - count, I64)])
    c["free_n"] = count + size - old
    grown = _grown(req, size)
    grown["state"][old:] = FREE
    return grown, free


def pending(req: np.ndarray) -> np.ndarray:
    """Mask of the entries still waiting or active."""
    return (req["state"] == WAITING) | (req["state"] == ACTIVE)


class World(NamedTuple):
    """The rules of a run beyond the policy (docs/model.md section 2.3): what eviction
    does to a request's progress, where a removed request re-enters the queue, the KV
    block size and the clock (None: one slot = one time unit)."""

    eviction: int = 0
    requeue: int = 0
    block: int = 1
    clock: object = None
