"""What an engine returns: per-request arrays, counters, slot statistics, series.

Both engines fill the same :class:`RawRun`, so the differential tests compare them
field by field.  :mod:`stability.result` turns it into metrics.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np


@dataclass(frozen=True)
class SlotStats:
    """Sums over the measured slots t >= warmup of per-slot quantities (DESIGN 1.3).

    ``kv`` is R after step 4 (tokens), ``queue`` |W| and ``active`` |S| after step 4.
    """

    measured_slots: int
    kv_sum: int
    kv_sq_sum: float
    kv_max: int
    kv_high_slots: int  # slots with kv > 0.95 M
    overflow_slots: int  # overflow events (DESIGN 1.2 step 4)
    queue_sum: int
    queue_max: int
    active_sum: int
    active_max: int

    @staticmethod
    def high_threshold(memory: int) -> int:
        """kv > 0.95 M  <=>  kv > floor(19 M / 20) for integer kv."""
        return (19 * memory) // 20

    @classmethod
    def from_series(cls, kv, queue, active, overflow, memory, warmup=0) -> "SlotStats":
        kv, queue, active = kv[warmup:], queue[warmup:], active[warmup:]
        if kv.size == 0:
            return cls(0, 0, 0.0, 0, 0, 0, 0, 0, 0, 0)
        return cls(
            measured_slots=int(kv.size),
            kv_sum=int(kv.sum()),
            kv_sq_sum=float(np.sum(kv.astype(float) ** 2)),
            kv_max=int(kv.max()),
            kv_high_slots=int(np.count_nonzero(kv > cls.high_threshold(memory))),
            overflow_slots=int(np.count_nonzero(overflow[warmup:])),
            queue_sum=int(queue.sum()),
            queue_max=int(queue.max()),
            active_sum=int(active.sum()),
            active_max=int(active.max()),
        )


@dataclass(frozen=True)
class RawRun:
    """One run of an engine on a batch of requests (arrays aligned with the input).

    first_token, start (start slot of the current or final run, -1 while waiting),
    completion (-1 if not completed) and evictions are int64 arrays, one per request.
    The series hold every ``series_stride``-th slot (t = 0, stride, 2 stride, ...).
    """

    first_token: np.ndarray
    start: np.ndarray
    completion: np.ndarray
    evictions: np.ndarray
    overflow_events: int
    evictions_total: int
    bounces: int
    wasted_tokens: int
    decoded_tokens: int
    completed: int
    slots: int
    waiting_at_end: int
    active_at_end: int
    stats: SlotStats
    series_stride: int
    series_kv: np.ndarray
    series_queue: np.ndarray
    series_active: np.ndarray

    def differences(self, other: "RawRun", float_rtol: float = 1e-12) -> list[str]:
        """Names of the fields on which two runs disagree (empty when identical).

        Integers and arrays must match exactly; the one float (sum of squared KV) to
        ``float_rtol``, since the engines add it up in different orders.
        """
        diffs = []
        for f in fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if isinstance(a, np.ndarray):
                if a.shape != b.shape or not np.array_equal(a, b):
                    diffs.append(f.name)
            elif isinstance(a, SlotStats):
                for g in fields(a):
                    x, y = getattr(a, g.name), getattr(b, g.name)
                    if isinstance(x, float):
                        if abs(x - y) > float_rtol * max(1.0, abs(x), abs(y)):
                            diffs.append(f"stats.{g.name}")
                    elif x != y:
                        diffs.append(f"stats.{g.name}")
            elif a != b:
                diffs.append(f.name)
        return diffs
