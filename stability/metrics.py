"""Metrics of a run (docs/model.md section 2.5), from per-request arrays or histograms.

Quantiles are exact order statistics: the q-quantile is the smallest value x with
F(x) >= q (numpy's ``inverted_cdf``), computed from integer counts with exact rational
arithmetic so that the batch and streaming engines report identical values.

Throughputs count completions inside the measured window (slots t >= warmup), whatever
their arrival slot, divided by the measured slots.  KV stability is reported both after
the overflow check (``kv_*``: what the cache holds) and before it (``demand_*``: what the
policy asked for, bounced candidates included), since a policy pinned at a full cache
while thrashing holds a steady cache but an unsteady demand.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from fractions import Fraction

import numpy as np

from stability.engine.raw import SlotStats

QUANTILES = (0.5, 0.95, 0.99)


@dataclass(frozen=True)
class Distribution:
    """Mean and p50 / p95 / p99 of a delay (nan when there is no sample)."""

    count: int
    mean: float
    p50: float
    p95: float
    p99: float

    @classmethod
    def from_values(cls, values: np.ndarray) -> "Distribution":
        """From integer samples (slots, ticks) or float samples (seconds)."""
        values = np.asarray(values)
        values = np.sort(values if values.dtype.kind == "f" else values.astype(np.int64))
        if values.size == 0:
            return cls(0, math.nan, math.nan, math.nan, math.nan)
        qs = [float(values[_rank(q, values.size) - 1]) for q in QUANTILES]
        return cls(int(values.size), float(values.mean()), *qs)

    @classmethod
    def from_histogram(cls, counts: np.ndarray, total_sum: int) -> "Distribution":
        """``counts[x]`` samples equal to x; ``total_sum`` their exact sum."""
        n = int(counts.sum())
        if n == 0:
            return cls(0, math.nan, math.nan, math.nan, math.nan)
        cum = np.cumsum(counts)
        qs = [float(np.searchsorted(cum, _rank(q, n), side="left")) for q in QUANTILES]
        return cls(n, total_sum / n, *qs)

    def scaled(self, factor: float) -> "Distribution":
        """The same distribution in other units (e.g. ticks to seconds)."""
        return Distribution(self.count, self.mean * factor, self.p50 * factor,
                            self.p95 * factor, self.p99 * factor)


def _rank(q: float, n: int) -> int:
    """ceil(q n) computed exactly from the decimal q (at least 1)."""
    return max(1, math.ceil(Fraction(repr(q)) * n))


@dataclass(frozen=True)
class ClassMetrics:
    completed: int
    latency: Distribution
    ttft: Distribution
    queueing_delay: Distribution
    restart_rate: float


@dataclass(frozen=True)
class Seconds:
    """A timed run's metrics in seconds (clock of docs/model.md 2.4).

    ttft : arrival to the end of the first token's iteration; tpot : time per output
    token after the first, (completion - first token) / (o - 1), over requests with
    o > 1; e2e : arrival to the end of the completion iteration.  Throughputs divide the
    completions of the measured window by its length; ``prefill_share`` is the share of
    busy time the clock charges to prefill.
    """

    ttft: Distribution
    tpot: Distribution
    e2e: Distribution
    request_throughput: float  # requests per second
    token_throughput: float  # output tokens per second
    window_seconds: float
    busy_share: float
    prefill_share: float
    per_class: dict = field(default_factory=dict)  # class -> {"ttft", "e2e"}


@dataclass(frozen=True)
class Metrics:
    """Every metric of a run (slots unless stated).

    Per-request figures cover requests arriving at or after the warm-up; throughputs and
    rates divide events of the measured slots by their number.  ``unfinished`` counts
    requests still waiting or active at the horizon (censored, never dropped silently).
    """

    slots: int
    measured_slots: int
    arrived: int
    completed: int
    completed_in_window: int
    unfinished: int
    waiting_at_end: int
    active_at_end: int
    latency: Distribution
    ttft: Distribution
    queueing_delay: Distribution
    request_throughput: float
    token_throughput: float
    decode_throughput: float
    kv_mean: float
    kv_std: float
    kv_cv: float
    kv_max: float
    kv_share_above_95: float
    demand_mean: float
    demand_std: float
    demand_cv: float
    demand_max: float
    overflow_excess: float  # mean of (demand - M)^+ per measured slot, fraction of M
    overflow_events: int
    overflow_rate: float  # overflow events per measured slot
    evictions: int
    bounces: int
    wasted_tokens: int
    eviction_rate: float  # per measured slot
    bounce_rate: float
    waste_rate: float  # wasted decode tokens per measured slot
    restart_rate: float
    prefill_tokens: int
    recomputed_tokens: int
    queue_mean: float
    queue_max: int
    active_mean: float
    active_max: int
    per_class: dict = field(default_factory=dict)
    seconds: Seconds | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def table(self) -> str:
        """A human-readable two-column table."""
        rows = [
            ("slots (measured)", f"{self.slots} ({self.measured_slots})"),
            ("requests arrived / completed / unfinished",
             f"{self.arrived} / {self.completed} / {self.unfinished}"),
        ]
        for name in ("latency", "ttft", "queueing_delay"):
            d = getattr(self, name)
            rows.append((f"{name} mean / p50 / p95 / p99 [slots]",
                         f"{d.mean:.4g} / {d.p50:.4g} / {d.p95:.4g} / {d.p99:.4g}"))
        rows += [
            ("request throughput [req/slot]", f"{self.request_throughput:.6g}"),
            ("token throughput (goodput) [tok/slot]", f"{self.token_throughput:.6g}"),
            ("raw decode throughput [tok/slot]", f"{self.decode_throughput:.6g}"),
            ("KV held mean / std / cv [fraction of M]",
             f"{self.kv_mean:.4f} / {self.kv_std:.4f} / {self.kv_cv:.4f}"),
            ("KV held max; share of slots above 0.95",
             f"{self.kv_max:.4f}; {self.kv_share_above_95:.4g}"),
            ("KV demand before eviction mean / cv / max",
             f"{self.demand_mean:.4f} / {self.demand_cv:.4f} / {self.demand_max:.4f}"),
            ("overflow events; rate [per slot]; mean excess [of M]",
             f"{self.overflow_events}; {self.overflow_rate:.4g}; {self.overflow_excess:.4g}"),
            ("evictions / bounces / wasted tokens",
             f"{self.evictions} / {self.bounces} / {self.wasted_tokens}"),
            ("per slot: evictions / bounces / wasted tokens",
             f"{self.eviction_rate:.4g} / {self.bounce_rate:.4g} / {self.waste_rate:.4g}"),
            ("restart rate; prefill / recomputed tokens",
             f"{self.restart_rate:.4g}; {self.prefill_tokens} / {self.recomputed_tokens}"),
            ("queue mean / max", f"{self.queue_mean:.4g} / {self.queue_max}"),
            ("active mean / max", f"{self.active_mean:.4g} / {self.active_max}"),
        ]
        for k, c in sorted(self.per_class.items()):
            rows.append((f"class {k}: completed, latency mean / p95, restart rate",
                         f"{c.completed}, {c.latency.mean:.4g} / {c.latency.p95:.4g}, "
                         f"{c.restart_rate:.4g}"))
        if self.seconds is not None:
            s = self.seconds
            for name in ("ttft", "tpot", "e2e"):
                d = getattr(s, name)
                rows.append((f"{name} mean / p50 / p95 / p99 [s]",
                             f"{d.mean:.4g} / {d.p50:.4g} / {d.p95:.4g} / {d.p99:.4g}"))
            rows += [
                ("throughput [req/s; output tok/s]",
                 f"{s.request_throughput:.5g}; {s.token_throughput:.5g}"),
                ("window [s]; busy share; prefill share of busy time",
                 f"{s.window_seconds:.5g}; {s.busy_share:.4g}; {s.prefill_share:.4g}"),
            ]
        width = max(len(r[0]) for r in rows)
        return "\n".join(f"{a.ljust(width)}  {b}" for a, b in rows)


def _moments(total: int, squares: float, m: int, memory: int):
    mean = total / m
    std = math.sqrt(max(squares / m - mean * mean, 0.0))
    return mean / memory, std / memory, (std / mean if mean > 0 else math.nan)


def slot_metrics(stats: SlotStats, memory: int) -> dict:
    """Throughputs, KV held and demanded, event rates, queue and active-count summaries
    over the measured slots."""
    m = stats.measured_slots
    names = ("kv_mean", "kv_std", "kv_cv", "kv_max", "kv_share_above_95", "demand_mean",
             "demand_std", "demand_cv", "demand_max", "overflow_excess", "queue_mean",
             "active_mean", "decode_throughput", "overflow_rate", "request_throughput",
             "token_throughput", "eviction_rate", "bounce_rate", "waste_rate")
    if m == 0:
        out = dict.fromkeys(names, math.nan)
        out.update(queue_max=0, active_max=0, completed_in_window=0)
        return out
    kv_mean, kv_std, kv_cv = _moments(stats.kv_sum, stats.kv_sq_sum, m, memory)
    d_mean, d_std, d_cv = _moments(stats.demand_sum, stats.demand_sq_sum, m, memory)
    return dict(
        kv_mean=kv_mean, kv_std=kv_std, kv_cv=kv_cv, kv_max=stats.kv_max / memory,
        kv_share_above_95=stats.kv_high_slots / m,
        demand_mean=d_mean, demand_std=d_std, demand_cv=d_cv,
        demand_max=stats.demand_max / memory,
        overflow_excess=stats.excess_sum / m / memory,
        queue_mean=stats.queue_sum / m,
        queue_max=stats.queue_max,
        active_mean=stats.active_sum / m,
        active_max=stats.active_max,
        decode_throughput=stats.active_sum / m,  # every active request decodes one token
        overflow_rate=stats.overflow_slots / m,
        request_throughput=stats.completed / m,
        token_throughput=stats.completed_tokens / m,
        completed_in_window=stats.completed,
        eviction_rate=stats.evictions / m,
        bounce_rate=stats.bounces / m,
        waste_rate=stats.wasted_tokens / m,
    )
