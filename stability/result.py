"""Results of simulation runs: per-request arrays, counters, series and metrics."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from stability.engine.control import ControlStats
from stability.engine.raw import RawRun, SlotStats
from stability.metrics import ClassMetrics, Distribution, Metrics, Seconds, slot_metrics
from stability.workload import Requests


@dataclass(frozen=True)
class Series:
    """Per-slot series sampled every ``stride`` slots: entry j is slot j * stride.

    kv: R after step 4 (tokens); queue: |W|; active: |S| (both after step 4).
    """

    stride: int
    kv: np.ndarray
    queue: np.ndarray
    active: np.ndarray

    @property
    def slot(self) -> np.ndarray:
        return np.arange(self.kv.size, dtype=np.int64) * self.stride


@dataclass(frozen=True)
class RunInfo:
    """What determines a run, recorded with its result (the world: docs/model.md 2.3)."""

    policy: str
    memory: int
    seed: int
    horizon: int | None
    warmup: int
    engine: str
    version: str
    eviction: str = "restart"
    requeue: str = "arrival"
    block_size: int = 1
    clock: str = "unit"


@dataclass(frozen=True)
class SimulationResult:
    """A batch run (``stability.simulate``).

    Per-request int64 arrays aligned with the input: ``first_token`` (slot of the first
    decode, -1 if none), ``start`` (start slot of the current or final run, -1 while
    waiting), ``completion`` (-1 where it did not happen) and ``evictions``.
    """

    requests: Requests
    raw: RawRun
    info: RunInfo

    first_token = property(lambda self: self.raw.first_token)
    start = property(lambda self: self.raw.start)
    completion = property(lambda self: self.raw.completion)
    evictions = property(lambda self: self.raw.evictions)
    overflow_events = property(lambda self: self.raw.overflow_events)
    evictions_total = property(lambda self: self.raw.evictions_total)
    bounces = property(lambda self: self.raw.bounces)
    wasted_tokens = property(lambda self: self.raw.wasted_tokens)
    decoded_tokens = property(lambda self: self.raw.decoded_tokens)
    slots = property(lambda self: self.raw.slots)

    @property
    def series(self) -> Series:
        r = self.raw
        return Series(r.series_stride, r.series_kv, r.series_queue, r.series_active)

    prefill_tokens = property(lambda self: self.raw.prefill_tokens)
    recomputed_tokens = property(lambda self: self.raw.recomputed_tokens)
    control = property(lambda self: self.raw.control)  # stateful policies: ControlStats

    @property
    def arrival(self) -> np.ndarray:
        """Slot each request joined the queue (a timed run's first iteration boundary at or
        after its arrival time; -1 if it had not arrived by the horizon)."""
        return self.raw.arrival

    @property
    def first_token_time(self) -> np.ndarray | None:
        """Timed runs: end of the first token's iteration, seconds (nan if none)."""
        return self._seconds(self.raw.first_tick)

    @property
    def completion_time(self) -> np.ndarray | None:
        """Timed runs: end of the completion iteration, seconds (nan if none)."""
        return self._seconds(self.raw.completion_tick)

    def _seconds(self, ticks):
        if self.raw.time is None:
            return None
        return np.where(ticks >= 0, ticks * self.raw.time.tick, np.nan)

    def metrics(self) -> Metrics:
        req, raw = self.requests, self.raw
        arrival = raw.arrival
        measured = (arrival >= self.info.warmup) & (arrival < raw.slots)
        done = measured & (raw.completion >= 0)
        latency = raw.completion[done] - arrival[done] + 1
        ttft = raw.first_token[done] - arrival[done] + 1
        per_class = {}
        for k in range(req.num_classes):
            dk = done & (req.class_id == k)
            per_class[k] = ClassMetrics(
                completed=int(dk.sum()),
                latency=Distribution.from_values(raw.completion[dk] - arrival[dk] + 1),
                ttft=Distribution.from_values(raw.first_token[dk] - arrival[dk] + 1),
                queueing_delay=Distribution.from_values(raw.first_token[dk] - arrival[dk]),
                restart_rate=float(np.mean(raw.evictions[dk] > 0)) if dk.any() else float("nan"),
            )
        completed = int(done.sum())
        return Metrics(
            slots=raw.slots,
            measured_slots=raw.stats.measured_slots,
            arrived=int(measured.sum()),
            completed=completed,
            unfinished=raw.waiting_at_end + raw.active_at_end,
            waiting_at_end=raw.waiting_at_end,
            active_at_end=raw.active_at_end,
            latency=Distribution.from_values(latency),
            ttft=Distribution.from_values(ttft),
            queueing_delay=Distribution.from_values(ttft - 1),
            overflow_events=raw.overflow_events,
            evictions=raw.evictions_total,
            bounces=raw.bounces,
            wasted_tokens=raw.wasted_tokens,
            restart_rate=float(np.mean(raw.evictions[done] > 0)) if completed else float("nan"),
            prefill_tokens=raw.prefill_tokens,
            recomputed_tokens=raw.recomputed_tokens,
            per_class=per_class,
            seconds=self._seconds_metrics(done),
            **slot_metrics(raw.stats, self.info.memory),
        )

    def _seconds_metrics(self, done: np.ndarray) -> Seconds | None:
        """TTFT, TPOT and end-to-end latency in seconds, throughputs per second."""
        raw, time = self.raw, self.raw.time
        if time is None:
            return None
        tick = time.tick
        a = self.requests.arrival_ticks(tick)
        ttft = raw.first_tick - a
        e2e = raw.completion_tick - a
        o = self.requests.decode
        several = done & (o > 1)
        tpot = (raw.completion_tick[several] - raw.first_tick[several]) * tick / (o[several] - 1)
        window = (time.end - time.window_start) * tick if time.window_start >= 0 else 0.0
        per_class = {}
        for k in range(self.requests.num_classes):
            dk = done & (self.requests.class_id == k)
            per_class[k] = {"ttft": Distribution.from_values(ttft[dk]).scaled(tick),
                            "e2e": Distribution.from_values(e2e[dk]).scaled(tick)}
        stats = raw.stats
        return Seconds(
            ttft=Distribution.from_values(ttft[done]).scaled(tick),
            tpot=Distribution.from_values(tpot),
            e2e=Distribution.from_values(e2e[done]).scaled(tick),
            request_throughput=stats.completed / window if window > 0 else float("nan"),
            token_throughput=stats.completed_tokens / window if window > 0 else float("nan"),
            window_seconds=window,
            busy_share=time.busy * tick / window if window > 0 else float("nan"),
            prefill_share=time.prefill / time.busy if time.busy > 0 else float("nan"),
            per_class=per_class,
        )


@dataclass(frozen=True)
class StreamResult:
    """A streaming run (``stability.simulate_stream``): aggregates only, memory O(active set).

    ``latency_histogram[k, x]`` counts class-k completions with latency x slots (likewise
    ``ttft_histogram``); quantiles from them are exact.
    """

    info: RunInfo
    slots: int
    arrived: int
    rejected: int
    overflow_events: int
    evictions_total: int
    bounces: int
    wasted_tokens: int
    decoded_tokens: int
    prefill_tokens: int
    recomputed_tokens: int
    waiting_at_end: int
    active_at_end: int
    stats: SlotStats
    series: Series
    latency_histogram: np.ndarray
    ttft_histogram: np.ndarray
    class_totals: np.ndarray  # (K, 6): completed, tokens, restarted, latency sum, ttft sum, evictions
    interrupted: bool = False
    elapsed_seconds: float = field(default=0.0, compare=False)
    control: object = None  # a stateful policy's ControlStats (stability.engine.control)

    @property
    def completed(self) -> int:
        return int(self.class_totals[:, 0].sum())

    @classmethod
    def pooled(cls, results: list["StreamResult"], seed: int) -> "StreamResult":
        """Independent replications as one sample: sums of counts, statistics, histograms.

        ``slots`` is the total over replications, so rates per slot are averages; the
        series is the first replication's.
        """
        first = results[0]
        width = max(r.latency_histogram.shape[1] for r in results)

        def total(name):
            out = np.zeros((first.latency_histogram.shape[0], width), np.int64)
            for r in results:
                h = getattr(r, name)
                out[:, : h.shape[1]] += h
            return out

        def add(name):
            return sum(getattr(r, name) for r in results)

        stats = SlotStats.pooled([r.stats for r in results])
        info = dataclasses.replace(first.info, seed=seed,
                                   engine=f"stream x {len(results)} replications")
        return cls(
            info=info, slots=add("slots"), arrived=add("arrived"), rejected=add("rejected"),
            overflow_events=add("overflow_events"), evictions_total=add("evictions_total"),
            bounces=add("bounces"), wasted_tokens=add("wasted_tokens"),
            decoded_tokens=add("decoded_tokens"), prefill_tokens=add("prefill_tokens"),
            recomputed_tokens=add("recomputed_tokens"), waiting_at_end=add("waiting_at_end"),
            active_at_end=add("active_at_end"), stats=stats, series=first.series,
            latency_histogram=total("latency_histogram"), ttft_histogram=total("ttft_histogram"),
            class_totals=sum(r.class_totals for r in results),
            interrupted=any(r.interrupted for r in results),
            elapsed_seconds=max(r.elapsed_seconds for r in results),
            control=ControlStats.pooled([r.control for r in results]),
        )

    def metrics(self) -> Metrics:
        ct = self.class_totals
        lat = self.latency_histogram
        ttft = self.ttft_histogram
        per_class = {}
        for k in range(ct.shape[0]):
            done = int(ct[k, 0])
            per_class[k] = ClassMetrics(
                completed=done,
                latency=Distribution.from_histogram(lat[k], int(ct[k, 3])),
                ttft=Distribution.from_histogram(ttft[k], int(ct[k, 4])),
                queueing_delay=Distribution.from_histogram(ttft[k, 1:], int(ct[k, 4]) - done),
                restart_rate=ct[k, 2] / done if done else float("nan"),
            )
        completed = int(ct[:, 0].sum())
        total_ttft = ttft.sum(axis=0)
        return Metrics(
            slots=self.slots,
            measured_slots=self.stats.measured_slots,
            arrived=self.arrived,
            completed=completed,
            unfinished=self.waiting_at_end + self.active_at_end,
            waiting_at_end=self.waiting_at_end,
            active_at_end=self.active_at_end,
            latency=Distribution.from_histogram(lat.sum(axis=0), int(ct[:, 3].sum())),
            ttft=Distribution.from_histogram(total_ttft, int(ct[:, 4].sum())),
            queueing_delay=Distribution.from_histogram(total_ttft[1:],
                                                       int(ct[:, 4].sum()) - completed),
            overflow_events=self.overflow_events,
            evictions=self.evictions_total,
            bounces=self.bounces,
            wasted_tokens=self.wasted_tokens,
            restart_rate=float(ct[:, 2].sum()) / completed if completed else float("nan"),
            prefill_tokens=self.prefill_tokens,
            recomputed_tokens=self.recomputed_tokens,
            per_class=per_class,
            **slot_metrics(self.stats, self.info.memory),
        )
