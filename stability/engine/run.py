"""Drivers of the fast kernel: allocate its state, call it, grow buffers when it asks.

:func:`run_batch` simulates a batch of requests to a horizon (or to the end) and returns a
:class:`~stability.engine.raw.RawRun`; :class:`Stream` holds a streaming run that the API
advances in chunks (progress, Ctrl-C) and reads out at the end.  Both keep the requests
that wait or run in a pool sized by the busiest slot, so a batch's memory beyond its
inputs is its outputs (32 bytes a request, 56 with a timed clock).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from stability.engine import control, kernel, state
from stability.engine.admission import Encoded
from stability.engine.codes import BURST, DONE_OK, NO_LIMIT
from stability.engine.generate import EncodedWorkload, draw_next_slot
from stability.engine.raw import RawRun, SlotStats, TimeStats
from stability.engine.state import Batch, World

__all__ = ["run_batch", "Stream"]

_NONE = np.zeros(0, np.int64)


@njit(cache=True, nogil=True)
def _max_burst(sorted_values):
    """Largest number of equal consecutive values (arrivals in one slot)."""
    best = 0
    run = 0
    for i in range(sorted_values.size):
        run = run + 1 if i > 0 and sorted_values[i] == sorted_values[i - 1] else 1
        best = max(best, run)
    return best


@njit(cache=True, nogil=True)
def _is_sorted(a):
    for i in range(1, a.size):
        if a[i] < a[i - 1]:
            return False
    return True


class _Run:
    """The kernel's arguments, grown in place when it returns NEED_ROOM."""

    def __init__(self, cfg, cnt, batch: Batch, outputs, pool, queues, enc: Encoded,
                 arrivals, hist, series, phase):
        self.cfg, self.cnt, self.batch = cfg, cnt, batch
        (self.out, self.out_t), (self.req, self.free) = outputs, pool
        self.qi, self.qe = queues
        self.stack, self.heap = state.new_stack(), state.new_heap()
        self.params, self.class_budgets = enc.params, enc.class_budgets
        self.arrivals, self.hist, self.series, self.phase = arrivals, hist, series, phase
        self.length_aware = enc.predictions is not None
        self.scratch = self._scratch()
        # a stateful policy's state, fresh for this run (a placeholder for the others)
        self.ctl = (enc.control if enc.control is not None else control.new_control()).copy()

    def _scratch(self):
        return state.new_scratch(self.qe.size, self.qi.shape[1], int(self.cfg[0]["memory"]),
                                 self.length_aware)

    def advance(self, t_stop: int, until_done: bool = False) -> None:
        cf = self.cfg[0]
        cf["t_stop"] = t_stop
        cf["until_done"] = until_done
        while True:
            status = kernel.advance(self.cfg, self.cnt, self.batch, self.out, self.out_t,
                                    self.req, self.free, self.qi, self.qe, self.stack,
                                    self.heap, self.params, self.class_budgets, self.arrivals,
                                    self.hist, self.series, self.phase, self.scratch,
                                    self.ctl)
            if status == DONE_OK:
                return
            if status == BURST:
                raise RuntimeError("a slot drew more arrivals than the scratch bound (an "
                                   "event of probability below 1e-30); please report this "
                                   "with the seed")
            need = state.room_needed(self.cnt, int(cf["memory"]), int(self.cnt[0]["pending_n"]))
            if need["deque"] > self.qi.shape[1]:
                self.qi, self.qe = state.grow_queues(self.qi, self.qe, need["deque"])
                self.scratch = self._scratch()
            self.heap = state.grow_array(self.heap, need["heap"])
            self.stack = state.grow_array(self.stack, need["stack"])
            self.req, self.free = state.grow_pool(self.req, self.free, self.cnt, need["pool"])

    def series_arrays(self):
        c = self.cnt[0]
        m = int(c["series_n"])
        return (int(c["series_stride"]), self.series[0, :m].copy(),
                self.series[1, :m].copy(), self.series[2, :m].copy())


def _config(enc: Encoded, memory, warmup, world: World, **kwargs):
    return state.new_config(memory, enc.evict_to, warmup, eviction=world.eviction,
                            requeue=world.requeue, block=world.block,
                            max_active=enc.max_active, token_budget=enc.token_budget,
                            groups_by_class=enc.groups_by_class, clock=world.clock, **kwargs)


def _groups(enc: Encoded, num_classes: int) -> int:
    return max(num_classes, enc.class_budgets.size) if enc.groups_by_class else 1


def _no_arrivals() -> state.Arrivals:
    """Placeholders for the stream-only arguments of a batch run."""
    return state.Arrivals(0.0, np.ones(1), np.zeros(2, np.int64), np.zeros(2),
                          np.zeros(8, np.uint64), np.zeros((3, 1), np.int64))


def run_batch(arrival, prompt, decode, class_id, enc: Encoded, memory: int,
              horizon: int | None, warmup: int, world: World, series_points: int = 100_000,
              arrival_tick=None, predicted=None, supervisor=None) -> RawRun:
    """The fast kernel on a batch (arrays aligned by request; ``arrival_tick`` for a timed
    clock, ``predicted`` for a length-aware policy; ``supervisor`` (``Policy.supervisor``)
    is asked for a new budget at the start of each of its pause slots)."""
    n = prompt.size
    timed = world.clock is not None
    times = arrival_tick if timed else arrival
    order = _NONE if _is_sorted(times) else np.lexsort((np.arange(n), times)).astype(np.int64)
    burst = 0 if timed else _max_burst(times if order.size == 0 else times[order])
    num_classes = int(class_id.max()) + 1 if n else 1
    points = series_points if horizon is None else max(1, min(series_points, horizon))
    cfg = _config(enc, memory, warmup, world, streaming=False, nreq=n, burst=burst)
    cnt = state.new_counters()
    if timed and n:
        cnt[0]["now"] = int(times.min())
    batch = Batch(order, arrival, arrival_tick if timed else _NONE, prompt, decode, class_id,
                  *((predicted.point, predicted.lower, predicted.upper)
                    if predicted is not None else (_NONE, _NONE, _NONE)))
    pool = state.new_pool(1024)
    cnt[0]["free_n"] = 1024
    run = _Run(cfg, cnt, batch, state.new_outputs(n, timed), pool,
               state.new_queues(_groups(enc, num_classes)), enc, _no_arrivals(),
               state.new_histograms(1, 1), np.zeros((3, max(points, 1)), np.int64),
               np.zeros(max(world.block, 1), np.int64))
    stop = NO_LIMIT if horizon is None else horizon
    pause = supervisor.next_pause(-1) if supervisor is not None else NO_LIMIT
    while pause < stop:
        run.advance(pause, until_done=horizon is None)
        if horizon is None and int(cnt[0]["completed"]) == n:  # the run is over
            break
        _decide(run, supervisor, pause, arrival, order, timed, n)
        pause = supervisor.next_pause(pause)
    run.advance(stop, until_done=horizon is None)
    c = cnt[0]
    stride, kv, queue, active = run.series_arrays()
    seen = int(c["next_arrival"])
    state.finish_outputs(run.out, np.arange(seen, n) if order.size == 0 else order[seen:])
    out, out_t = run.out[:n], run.out_t[:n]
    return RawRun(
        arrival=out_t["arrival"] if timed else arrival, first_token=out["first"],
        start=out["start"], completion=out["completion"], evictions=out["evictions"],
        first_tick=out_t["first_tick"] if timed else _NONE,
        completion_tick=out_t["completion_tick"] if timed else _NONE,
        overflow_events=int(c["overflows"]), evictions_total=int(c["evictions"]),
        bounces=int(c["bounces"]), wasted_tokens=int(c["wasted"]),
        decoded_tokens=int(c["decoded"]), prefill_tokens=int(c["prefill_tokens"]),
        recomputed_tokens=int(c["recomputed"]), completed=int(c["completed"]),
        slots=int(c["t"]), waiting_at_end=int(c["waiting_n"]),
        active_at_end=int(c["n_dec"]) + (1 if c["pre_idx"] >= 0 else 0),
        stats=SlotStats.from_counters(c), time=time_stats(world, c),
        series_stride=stride, series_kv=kv, series_queue=queue, series_active=active,
        control=control_stats(enc, run.ctl),
    )


def _decide(run: _Run, supervisor, t: int, arrival, order, timed: bool, n: int) -> None:
    """At the start of slot t: the supervisor's budget, from the arrival and completion
    slots seen so far (the records of requests not yet arrived are not read)."""
    seen_n = int(run.cnt[0]["next_arrival"])
    if order.size == 0 and not timed:  # in arrival order: the first seen_n, read-only views
        seen, completion = arrival[:seen_n].view(), run.out["completion"][:seen_n]
        seen.flags.writeable = completion.flags.writeable = False
    else:
        unseen = order[seen_n:] if order.size else np.arange(seen_n, n)
        seen = (run.out_t["arrival"][:n] if timed else arrival).astype(np.int64)  # a copy
        completion = run.out["completion"][:n].copy()
        seen[unseen] = -1
        completion[unseen] = -1
    decision = supervisor.decide(t, seen, completion)
    if decision is not None:
        control.retarget(run.ctl[0], *decision)


def control_stats(enc: Encoded, ctl) -> control.ControlStats | None:
    """What a stateful policy did (None for the others)."""
    return control.ControlStats.from_record(ctl) if enc.control is not None else None


def time_stats(world: World, c) -> TimeStats | None:
    if world.clock is None:
        return None
    return TimeStats(world.clock.tick, int(c["window_start"]), int(c["now"]), int(c["busy"]),
                     int(c["prefill_time"]))


class Stream:
    """A streaming run: arrivals drawn inside the kernel from ``workload`` (an
    :class:`EncodedWorkload`) with the arrival and length stream states ``rng``."""

    POOL = 1024

    def __init__(self, workload: EncodedWorkload, enc: Encoded, memory: int, warmup: int,
                 world: World, rng, num_classes: int, series_points: int):
        if world.clock is not None:
            raise ValueError("clock: streaming runs count in slots; simulate a timed clock "
                             "with simulate(...) on generated requests")
        # P(Poisson(lambda) > lambda + 12 sqrt(lambda) + 30) < 1e-30: room for any slot
        burst = int(math.ceil(workload.total_rate + 12.0 * math.sqrt(workload.total_rate)
                              + 30.0))
        cfg = _config(enc, memory, warmup, world, streaming=True)
        cnt = state.new_counters()
        cnt[0]["free_n"] = self.POOL
        arrivals = state.Arrivals(workload.total_rate, workload.class_cdf, workload.law_offset,
                                  workload.law_data, rng, np.zeros((3, burst), np.int64))
        if workload.total_rate > 0:  # the first slot holding arrivals, as in generation
            gap, count = draw_next_slot(rng, workload.total_rate, workload.class_cdf,
                                        workload.law_offset, workload.law_data,
                                        arrivals.scratch)
            if count > burst:
                raise RuntimeError("the first slot drew more arrivals than the scratch bound")
            cnt[0]["next_arrival"] = gap - 1
            cnt[0]["pending_n"] = count
        else:
            cnt[0]["next_arrival"] = NO_LIMIT
        batch = Batch(*([_NONE] * 9))
        self.enc = enc
        self.run = _Run(cfg, cnt, batch, state.new_outputs(0, False), state.new_pool(self.POOL),
                        state.new_queues(_groups(enc, num_classes)), enc, arrivals,
                        state.new_histograms(num_classes),
                        np.zeros((3, max(series_points, 1)), np.int64),
                        np.zeros(max(world.block, 1), np.int64))

    @property
    def counters(self):
        return self.run.cnt[0]

    @property
    def control(self) -> control.ControlStats | None:
        """What a stateful policy did so far (None for the others)."""
        return control_stats(self.enc, self.run.ctl)

    @property
    def slot(self) -> int:
        return int(self.run.cnt[0]["t"])

    def advance(self, t_stop: int) -> None:
        """Simulate up to slot ``t_stop`` (histograms sized for every completion before it)."""
        self._size_histograms(self.slot, t_stop)
        self.run.advance(t_stop)

    def _size_histograms(self, t_start: int, t_stop: int) -> None:
        """A request completing in slot t < t_stop has latency t - a + 1 <= t_stop - a, and a
        is at least the oldest arrival still pending (or t_start for later arrivals)."""
        req = self.run.req
        live = state.pending(req)
        oldest = min(int(req["arrival"][live].min()) if live.any() else t_start, t_start)
        need = t_stop - oldest + 1
        hist = self.run.hist
        width = hist.latency.shape[1]
        if need > width:
            size = max(need, 2 * width)
            grown = []
            for h in (hist.latency, hist.ttft):
                g = np.zeros((h.shape[0], size), np.int64)
                g[:, :width] = h
                grown.append(g)
            self.run.hist = hist._replace(latency=grown[0], ttft=grown[1])
