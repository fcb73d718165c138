"""What an engine returns: per-request arrays, counters, slot statistics, series.

Both engines fill the same :class:`RawRun`, so the differential tests compare them field
by field.  :mod:`stability.result` turns it into metrics.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np


@dataclass(frozen=True)
class SlotStats:
    """Sums over the measured slots t >= warmup of per-slot quantities (docs/model.md 2.5).

    ``kv`` is R after the overflow check (tokens), ``demand`` R before it (after admission,
    the candidates that bounced included); ``queue`` |W| and ``active`` |S| after it.
    """

    measured_slots: int
    kv_sum: int
    kv_sq_sum: float
    kv_max: int
    kv_high_slots: int  # slots with kv > 0.95 M
    overflow_slots: int  # overflow events
    demand_sum: int
    demand_sq_sum: float
    demand_max: int
    excess_sum: int  # sum of (demand - M)^+
    queue_sum: int
    queue_max: int
    active_sum: int
    active_max: int
    completed: int  # completions in measured slots, whatever their arrival slot
    completed_tokens: int  # ... and their decode tokens
    evictions: int
    bounces: int
    wasted_tokens: int

    @staticmethod
    def high_threshold(memory: int) -> int:
        """kv > 0.95 M  <=>  kv > floor(19 M / 20) for integer kv."""
        return (19 * memory) // 20

    @classmethod
    def from_series(cls, kv, demand, queue, active, overflow, memory, warmup=0,
                    events=None) -> "SlotStats":
        """From per-slot series; ``events`` holds per-slot counts of completed,
        completed_tokens, evictions, bounces and wasted_tokens."""
        kv, demand = kv[warmup:], demand[warmup:]
        queue, active = queue[warmup:], active[warmup:]
        counts = {k: int(np.sum(v[warmup:])) for k, v in (events or {}).items()}
        if kv.size == 0:
            return cls(0, 0, 0.0, 0, 0, 0, 0, 0.0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        return cls(
            measured_slots=int(kv.size),
            kv_sum=int(kv.sum()),
            kv_sq_sum=float(np.sum(kv.astype(float) ** 2)),
            kv_max=int(kv.max()),
            kv_high_slots=int(np.count_nonzero(kv > cls.high_threshold(memory))),
            overflow_slots=int(np.count_nonzero(overflow[warmup:])),
            demand_sum=int(demand.sum()),
            demand_sq_sum=float(np.sum(demand.astype(float) ** 2)),
            demand_max=int(demand.max()),
            excess_sum=int(np.maximum(demand - memory, 0).sum()),
            queue_sum=int(queue.sum()),
            queue_max=int(queue.max()),
            active_sum=int(active.sum()),
            active_max=int(active.max()),
            **counts,
        )

    @classmethod
    def from_counters(cls, c) -> "SlotStats":
        """From the fast kernel's counter record."""
        return cls(
            measured_slots=int(c["measured"]), kv_sum=int(c["kv_sum"]),
            kv_sq_sum=float(c["kv_sq"]), kv_max=int(c["kv_max"]),
            kv_high_slots=int(c["kv_high"]), overflow_slots=int(c["overflows_measured"]),
            demand_sum=int(c["kv_sum"] + c["pre_extra"]),
            demand_sq_sum=float(c["kv_sq"] + c["pre_sq_extra"]),
            demand_max=int(max(c["kv_max"], c["pre_max"])), excess_sum=int(c["excess_sum"]),
            queue_sum=int(c["queue_sum"]), queue_max=int(c["queue_max"]),
            active_sum=int(c["active_sum"]), active_max=int(c["active_max"]),
            completed=int(c["completed_measured"]), completed_tokens=int(c["tokens_measured"]),
            evictions=int(c["evictions_measured"]), bounces=int(c["bounces_measured"]),
            wasted_tokens=int(c["wasted_measured"]),
        )

    @classmethod
    def pooled(cls, parts: list) -> "SlotStats":
        """Independent runs as one sample: sums added, maxima taken."""
        out = {}
        for f in fields(cls):
            values = [getattr(s, f.name) for s in parts]
            out[f.name] = max(values) if f.name.endswith("_max") else sum(values)
        out["kv_sq_sum"] = float(out["kv_sq_sum"])
        out["demand_sq_sum"] = float(out["demand_sq_sum"])
        return cls(**out)


@dataclass(frozen=True)
class TimeStats:
    """A timed run's clock (ticks; ``tick`` seconds each): when the measured window
    started and ended, and how much of it the engine was busy and busy prefilling."""

    tick: float
    window_start: int
    end: int
    busy: int
    prefill: int


@dataclass(frozen=True)
class RawRun:
    """One run of an engine on a batch of requests (arrays aligned with the input).

    ``arrival`` is the slot each request joined the queue (its input slot, or for a timed
    run the first iteration starting at or after its arrival time; -1 if not yet);
    first_token, start (start slot u of the current or final run, -1 while waiting),
    completion (-1 if not completed) and evictions are int64 arrays, one per request;
    ``first_tick`` and ``completion_tick`` (timed runs, else empty) the ends of the
    iterations of the first token and of the completion.  The series hold every
    ``series_stride``-th slot (t = 0, stride, 2 stride, ...).
    """

    arrival: np.ndarray
    first_token: np.ndarray
    start: np.ndarray
    completion: np.ndarray
    evictions: np.ndarray
    first_tick: np.ndarray
    completion_tick: np.ndarray
    overflow_events: int
    evictions_total: int
    bounces: int
    wasted_tokens: int
    decoded_tokens: int
    prefill_tokens: int
    recomputed_tokens: int
    completed: int
    slots: int
    waiting_at_end: int
    active_at_end: int
    stats: SlotStats
    time: TimeStats | None
    series_stride: int
    series_kv: np.ndarray
    series_queue: np.ndarray
    series_active: np.ndarray
    control: object = None  # a stateful policy's ControlStats (stability.engine.control)

    def differences(self, other: "RawRun", float_rtol: float = 1e-12) -> list[str]:
        """Names of the fields on which two runs disagree (empty when identical).

        Integers and arrays must match exactly; the sums of squares to ``float_rtol``,
        since the engines add them up in different orders.
        """
        diffs = []
        for f in fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if isinstance(a, np.ndarray):
                if a.shape != b.shape or not np.array_equal(a, b):
                    diffs.append(f.name)
            elif isinstance(a, (SlotStats, TimeStats)):
                for g in fields(a):
                    x, y = getattr(a, g.name), getattr(b, g.name)
                    if isinstance(x, float) and g.name != "tick":
                        if abs(x - y) > float_rtol * max(1.0, abs(x), abs(y)):
                            diffs.append(f"{f.name}.{g.name}")
                    elif x != y:
                        diffs.append(f"{f.name}.{g.name}")
            elif a != b:
                diffs.append(f.name)
        return diffs
