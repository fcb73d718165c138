"""Per-slot statistics of the fast kernel, one slot or a quiet stretch at a time.

Over a quiet stretch the KV demand grows linearly (kv(s) = kv0 + inc (s - s0)) while the
queue and the active count stay fixed, so its sums and squares have closed forms; the
sampled series keeps every ``stride``-th slot and halves itself when full.
"""

from __future__ import annotations

from numba import njit


@njit(cache=True, nogil=True, inline="always")
def sample(c, series, s0, s1, kv0, inc, queue, active):
    """Series points of slots s0..s1-1 (every stride-th slot; halved when full)."""
    stride = c.series_stride
    s = ((s0 + stride - 1) // stride) * stride
    while s < s1:
        j = c.series_n
        if j == series.shape[1]:  # full: keep every other sample, double the stride
            kept = (j + 1) // 2
            for m in range(kept):
                series[0, m] = series[0, 2 * m]
                series[1, m] = series[1, 2 * m]
                series[2, m] = series[2, 2 * m]
            c.series_n = kept
            stride *= 2
            c.series_stride = stride
            s = ((s + stride - 1) // stride) * stride
            continue
        series[0, j] = kv0 + inc * (s - s0)
        series[1, j] = queue
        series[2, j] = active
        c.series_n = j + 1
        s += stride


@njit(cache=True, nogil=True, inline="always")
def account(c, cf, series, s0, s1, kv0, inc, queue, active):
    """Statistics of slots s0..s1-1 with kv(s) = kv0 + inc (s - s0), queue and active
    fixed, and no overflow (so the demand before eviction equals kv: only overflow slots
    add to the ``pre_*`` corrections)."""
    sample(c, series, s0, s1, kv0, inc, queue, active)
    first = max(s0, cf.warmup)
    if first < s1:
        measure(c, cf, first, s1, kv0 + inc * (first - s0), inc, queue, active)


@njit(cache=True, nogil=True, inline="always")
def measure(c, cf, first, s1, k0, inc, queue, active):
    """The sums of the measured slots first..s1-1 (kv(first) = k0, growing by inc)."""
    n = s1 - first
    last = k0 + inc * (n - 1)
    total = n * k0 + (inc * (n - 1)) * n // 2
    fn, fk, fi = float(n), float(k0), float(inc)
    squares = (fn * fk * fk + fk * fi * fn * (fn - 1.0)
               + fi * fi * (fn - 1.0) * fn * (2.0 * fn - 1.0) / 6.0)
    c.measured += n
    c.kv_sum += total
    c.kv_sq += squares
    if last > c.kv_max:
        c.kv_max = last
    high = cf.high
    if k0 > high:
        c.kv_high += n
    elif inc > 0:
        c.kv_high += max(0, n - ((high - k0) // inc + 1))
    c.queue_sum += n * queue
    c.active_sum += n * active
    if queue > c.queue_max:
        c.queue_max = queue
    if active > c.active_max:
        c.active_max = active


@njit(cache=True, nogil=True, inline="always")
def account_slot(c, cf, series, t, kv, before, queue, active):
    """Statistics of one slot: ``kv`` after eviction, ``before`` it (after admission)."""
    sample(c, series, t, t + 1, kv, 0, queue, active)
    if t >= cf.warmup:
        measure_slot(c, cf, kv, before, queue, active)


@njit(cache=True, nogil=True, inline="always")
def measure_slot(c, cf, kv, before, queue, active):
    """The sums of one measured slot."""
    c.measured += 1
    c.kv_sum += kv
    c.kv_sq += float(kv) * float(kv)
    if kv > c.kv_max:
        c.kv_max = kv
    if before != kv:  # an overflow slot: the demand before eviction differs from kv
        c.pre_extra += before - kv
        c.pre_sq_extra += float(before) * float(before) - float(kv) * float(kv)
        if before > c.pre_max:
            c.pre_max = before
        if before > cf.memory:
            c.excess_sum += before - cf.memory
    if kv > cf.high:
        c.kv_high += 1
    c.queue_sum += queue
    c.active_sum += active
    if queue > c.queue_max:
        c.queue_max = queue
    if active > c.active_max:
        c.active_max = active
