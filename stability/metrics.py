"""Metrics of DESIGN 1.3, from per-request arrays (batch) or histograms (stream).

Quantiles are exact order statistics: the q-quantile is the smallest value x with
F(x) >= q (numpy's ``inverted_cdf``), computed from integer counts with exact rational
arithmetic so that the batch and streaming engines report identical values.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from fractions import Fraction

import numpy as np

from stability.raw import SlotStats

QUANTILES = (0.5, 0.95, 0.99)


@dataclass(frozen=True)
class Distribution:
    """Mean and p50 / p95 / p99 of a delay in slots (nan when there is no sample)."""

    count: int
    mean: float
    p50: float
    p95: float
    p99: float

    @classmethod
    def from_values(cls, values: np.ndarray) -> "Distribution":
        values = np.sort(np.asarray(values, dtype=np.int64))
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
class Metrics:
    """Every metric of DESIGN 1.3 (slots unless stated) for one run.

    Per-request figures cover requests arriving at or after the warm-up; throughputs
    divide their completions by the measured slots.  ``unfinished`` counts requests still
    waiting or active at the horizon (censored, never dropped silently).
    """

    slots: int
    measured_slots: int
    arrived: int
    completed: int
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
    overflow_events: int
    overflow_rate: float  # overflow events per measured slot
    evictions: int
    bounces: int
    wasted_tokens: int
    restart_rate: float
    queue_mean: float
    queue_max: int
    active_mean: float
    active_max: int
    per_class: dict = field(default_factory=dict)

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
            ("KV use mean / std / cv [fraction of M]",
             f"{self.kv_mean:.4f} / {self.kv_std:.4f} / {self.kv_cv:.4f}"),
            ("KV use max; share of slots above 0.95",
             f"{self.kv_max:.4f}; {self.kv_share_above_95:.4g}"),
            ("overflow events / evictions / bounces",
             f"{self.overflow_events} / {self.evictions} / {self.bounces}"),
            ("overflow rate [events per measured slot]", f"{self.overflow_rate:.4g}"),
            ("wasted tokens; restart rate", f"{self.wasted_tokens}; {self.restart_rate:.4g}"),
            ("queue mean / max", f"{self.queue_mean:.4g} / {self.queue_max}"),
            ("active mean / max", f"{self.active_mean:.4g} / {self.active_max}"),
        ]
        for k, c in sorted(self.per_class.items()):
            rows.append((f"class {k}: completed, latency mean / p95, restart rate",
                         f"{c.completed}, {c.latency.mean:.4g} / {c.latency.p95:.4g}, "
                         f"{c.restart_rate:.4g}"))
        width = max(len(r[0]) for r in rows)
        return "\n".join(f"{a.ljust(width)}  {b}" for a, b in rows)


def slot_metrics(stats: SlotStats, memory: int) -> dict:
    """KV utilisation, queue and active-count summaries over the measured slots."""
    m = stats.measured_slots
    if m == 0:
        nan = math.nan
        return dict(kv_mean=nan, kv_std=nan, kv_cv=nan, kv_max=nan, kv_share_above_95=nan,
                    queue_mean=nan, queue_max=0, active_mean=nan, active_max=0,
                    decode_throughput=nan, overflow_rate=nan)
    mean = stats.kv_sum / m
    var = max(stats.kv_sq_sum / m - mean * mean, 0.0)
    std = math.sqrt(var)
    return dict(
        kv_mean=mean / memory,
        kv_std=std / memory,
        kv_cv=std / mean if mean > 0 else math.nan,
        kv_max=stats.kv_max / memory,
        kv_share_above_95=stats.kv_high_slots / m,
        queue_mean=stats.queue_sum / m,
        queue_max=stats.queue_max,
        active_mean=stats.active_sum / m,
        active_max=stats.active_max,
        decode_throughput=stats.active_sum / m,  # every active request decodes one token
        overflow_rate=stats.overflow_slots / m,
    )
