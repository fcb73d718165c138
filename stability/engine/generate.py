"""Jitted request generation shared by ``Workload.generate`` and the streaming kernel.

Poisson arrivals are drawn slot-with-arrivals by slot-with-arrivals: the gap to the next
slot holding an arrival is geometric with success probability 1 - exp(-lambda), and its
count is Poisson(lambda) conditioned on >= 1.  Each request then picks its class with
probability lambda_k / lambda.  This is exactly the superposition of independent
Poisson(lambda_k) streams, at a cost that grows with arrivals, not with slots.
Class choices and gaps use the arrival stream; lengths use the length stream.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from stability.engine import rng as _rng
from stability.engine.codes import LAW_DETERMINISTIC, LAW_GEOMETRIC, LAW_UNIFORM


class EncodedWorkload(NamedTuple):
    """A workload as plain arrays for the kernels (K classes); see ``Workload.encode``."""

    total_rate: float  # lambda = sum_k lambda_k, arrivals per slot
    class_cdf: np.ndarray  # (K,) cumulative class probabilities lambda_k / lambda
    law_offset: np.ndarray  # (2K,) start of law 2k (prompt) and 2k+1 (decode) in law_data
    law_data: np.ndarray  # flat float vector of the encoded laws (LengthLaw.encode)


def seed_streams(seed: int):
    """(arrival state, length state, budget key): one stream per source of randomness."""
    arrivals, lengths, budgets = np.random.SeedSequence(int(seed)).spawn(3)
    return _rng.new_state(arrivals), _rng.new_state(lengths), _rng.new_key(budgets)


@njit(cache=True, nogil=True)
def fill_requests(count, class_cdf, law_offset, law_data, a0, a1, a2, a3, l0, l1, l2, l3,
                  out, at):
    """Draw class, prompt and decode of ``count`` requests into out[0:3, at:at + count].

    Returns the advanced arrival and length stream states.  Length layouts are those of
    ``LengthLaw.encode``.
    """
    num_classes = class_cdf.size
    for r in range(count):
        k = 0
        if num_classes > 1:
            a0, a1, a2, a3, u = _rng.uniform(a0, a1, a2, a3)
            for j in range(num_classes - 1):  # branch-free: classes are picked at random
                k += u >= class_cdf[j]
        out[0, at + r] = k
        for which in range(2):
            off = law_offset[2 * k + which]
            code = int(law_data[off])
            if code == LAW_DETERMINISTIC:
                v = int(law_data[off + 1])
            else:
                l0, l1, l2, l3, u = _rng.uniform(l0, l1, l2, l3)
                if code == LAW_GEOMETRIC:
                    limit = law_data[off + 2]
                    if limit > 0:  # truncated by conditioning: invert P(o <= k) / P(o <= max)
                        v = min(1 + int(math.floor(math.log1p(-u * law_data[off + 3])
                                                   / law_data[off + 1])), int(limit))
                    else:
                        v = 1 + int(math.floor(math.log(u) / law_data[off + 1]))
                elif code == LAW_UNIFORM:
                    v = int(law_data[off + 1]) + int(u * law_data[off + 2])
                else:  # alias table
                    n = int(law_data[off + 1])
                    x = u * n
                    i = int(x)
                    if x - i < law_data[off + 2 + i]:
                        v = int(law_data[off + 2 + n + i])
                    else:
                        v = int(law_data[off + 2 + 2 * n + i])
            out[1 + which, at + r] = v
    return a0, a1, a2, a3, l0, l1, l2, l3


@njit(cache=True, nogil=True)
def grow(a, size):
    """A copy of ``a`` with room for ``size`` items."""
    out = np.empty(size, a.dtype)
    out[: a.size] = a
    return out


@njit(cache=True, nogil=True)
def _generate(slots, total_rate, class_cdf, law_offset, law_data, arrival_state, length_state,
              capacity):
    arrival = np.empty(capacity, np.int64)
    drawn = np.empty((3, capacity), np.int64)  # class, prompt, decode
    a0, a1, a2, a3 = arrival_state[0], arrival_state[1], arrival_state[2], arrival_state[3]
    l0, l1, l2, l3 = length_state[0], length_state[1], length_state[2], length_state[3]
    n = 0
    slot = -1
    while total_rate > 0.0:
        a0, a1, a2, a3, gap = _rng.geometric_gap(a0, a1, a2, a3, total_rate)
        slot += gap
        if slot >= slots:
            break
        a0, a1, a2, a3, count = _rng.poisson_positive(a0, a1, a2, a3, total_rate)
        if n + count > arrival.size:
            new_size = max(2 * arrival.size, n + count)
            arrival = grow(arrival, new_size)
            wider = np.empty((3, new_size), np.int64)
            wider[:, :n] = drawn[:, :n]
            drawn = wider
        a0, a1, a2, a3, l0, l1, l2, l3 = fill_requests(
            count, class_cdf, law_offset, law_data, a0, a1, a2, a3, l0, l1, l2, l3, drawn, n)
        arrival[n:n + count] = slot
        n += count
    return arrival[:n], drawn[:, :n]


@njit(cache=True, nogil=True)
def draw_next_slot(rng, total_rate, class_cdf, law_offset, law_data, scratch):
    """Gap to the next slot with arrivals and its requests (into ``scratch`` rows 0-2).

    ``rng`` holds the arrival then the length stream state and is advanced in place;
    the draws are those ``_generate`` makes for one slot.  Returns (gap, count); the
    requests are drawn only when they fit in ``scratch``.
    """
    a0, a1, a2, a3 = rng[0], rng[1], rng[2], rng[3]
    l0, l1, l2, l3 = rng[4], rng[5], rng[6], rng[7]
    a0, a1, a2, a3, gap = _rng.geometric_gap(a0, a1, a2, a3, total_rate)
    a0, a1, a2, a3, count = _rng.poisson_positive(a0, a1, a2, a3, total_rate)
    if count <= scratch.shape[1]:
        a0, a1, a2, a3, l0, l1, l2, l3 = fill_requests(
            count, class_cdf, law_offset, law_data, a0, a1, a2, a3, l0, l1, l2, l3, scratch, 0)
    rng[0], rng[1], rng[2], rng[3] = a0, a1, a2, a3
    rng[4], rng[5], rng[6], rng[7] = l0, l1, l2, l3
    return gap, count


def generate_arrays(enc: EncodedWorkload, slots: int, seed: int):
    """(arrival, prompt, decode, class) of the requests arriving in slots 0 .. slots-1.

    The streaming kernel draws exactly the same requests for the same seed.
    """
    arrival_state, length_state, _ = seed_streams(seed)
    mean = enc.total_rate * slots
    capacity = int(mean + 10.0 * math.sqrt(mean) + 16)
    arrival, drawn = _generate(slots, enc.total_rate, enc.class_cdf, enc.law_offset,
                               enc.law_data, arrival_state, length_state, capacity)
    return arrival, drawn[1], drawn[2], drawn[0]
