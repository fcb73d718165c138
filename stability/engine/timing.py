"""Iteration durations in integer ticks (docs/model.md section 2.4).

An iteration with n requests decoding, total context R (after eviction) and p prefill
tokens lasts

    d = c0 + c_seq n + c_ctx R + c_prefill p + c_step ceil((n + p) / step_tokens)

ticks, and an iteration with nothing to run (n = p = 0) takes no time.  Coefficients are
integers (``stability.clock`` converts seconds to ticks), so both engines add times
exactly and agree to the tick.  Inside a quiet stretch n is fixed, p = 0 and R grows by n
per slot, so the time of k iterations has the closed form of :func:`stretch_time`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from numba import njit

SAFE = 2**61  # ticks: sums stay below this, far from int64 overflow


@njit(cache=True, nogil=True, inline="always")
def duration(cf, n, ctx, prefill):
    """Ticks of one iteration (0 when the batch is empty)."""
    if n == 0 and prefill == 0:
        return 0
    tokens = n + prefill
    return (cf.c0 + cf.c_seq * n + cf.c_ctx * ctx + cf.c_prefill * prefill
            + cf.c_step * ((tokens + cf.step_tokens - 1) // cf.step_tokens))


@njit(cache=True, nogil=True, inline="always")
def stretch_time(cf, n, ctx, k):
    """Ticks of k quiet iterations from context ``ctx``: sum_{j<k} duration(n, ctx + j n, 0)."""
    if n == 0 or k <= 0:
        return 0
    first = duration(cf, n, ctx, 0)
    return k * first + cf.c_ctx * n * ((k * (k - 1)) // 2)


@njit(cache=True, nogil=True)
def safe_span(cf, n, ctx):
    """The most quiet iterations whose total time stays below :data:`SAFE` ticks."""
    if n == 0:
        return 2**62
    first = float(duration(cf, n, ctx, 0))
    growth = float(cf.c_ctx * n) / 2.0
    if growth > 0.0:
        k = (-first + math.sqrt(first * first + 4.0 * growth * SAFE)) / (2.0 * growth)
    else:
        k = SAFE / max(first, 1.0)
    k = max(int(k * 0.999) - 1, 1)
    return min(k, 2**62)


@njit(cache=True, nogil=True)
def iterations_until(cf, n, ctx, gap):
    """The fewest quiet iterations k >= 0 whose total time is >= ``gap`` ticks.

    A float estimate from the quadratic, corrected with exact integer sums.  Returns a
    huge number when the stretch cannot reach ``gap`` (empty batch).
    """
    if gap <= 0:
        return 0
    if n == 0:
        return 2**62
    first = float(duration(cf, n, ctx, 0))
    growth = float(cf.c_ctx * n) / 2.0
    if growth > 0.0:
        b = first - growth
        k = int((-b + math.sqrt(b * b + 4.0 * growth * float(gap))) / (2.0 * growth))
    else:
        k = int(float(gap) / first)
    limit = safe_span(cf, n, ctx)
    k = min(max(k, 0), limit)
    while k > 0 and stretch_time(cf, n, ctx, k - 1) >= gap:
        k -= 1
    while k < limit and stretch_time(cf, n, ctx, k) < gap:
        k += 1
    return k


class Ticks(NamedTuple):
    """A clock as the engines see it: ``tick`` seconds per tick and integer coefficients
    in ticks (``stability.clock.Clock.encode``)."""

    tick: float
    c0: int
    c_seq: int
    c_ctx: int
    c_prefill: int
    c_step: int
    step_tokens: int


def duration_ticks(clock: Ticks, n: int, ctx: int, prefill: int) -> int:
    """:func:`duration` in plain Python (the reference simulator's clock)."""
    if n == 0 and prefill == 0:
        return 0
    steps = -(-(n + prefill) // clock.step_tokens)
    return (clock.c0 + clock.c_seq * n + clock.c_ctx * ctx + clock.c_prefill * prefill
            + clock.c_step * steps)
