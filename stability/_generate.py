"""Jitted request generation shared by ``Workload.generate`` and the streaming engine.

Poisson arrivals are drawn slot-with-arrivals by slot-with-arrivals: the gap to the next
slot holding an arrival is geometric with success probability 1 - exp(-lambda), and its
count is Poisson(lambda) conditioned on >= 1.  Each request then picks its class with
probability lambda_k / lambda.  This is exactly the superposition of independent
Poisson(lambda_k) streams, at a cost that grows with arrivals, not with slots.
"""

from __future__ import annotations

from typing import NamedTuple

import math

import numpy as np
from numba import njit

from stability import _rng
from stability.workload import (
    LAW_DETERMINISTIC,
    LAW_GEOMETRIC,
    LAW_UNIFORM,
    Requests,
    Workload,
)


class EncodedWorkload(NamedTuple):
    """A workload as plain arrays for the kernels (K classes)."""

    total_rate: float  # lambda = sum_k lambda_k, arrivals per slot
    class_cdf: np.ndarray  # (K,) cumulative class probabilities lambda_k / lambda
    law_offset: np.ndarray  # (2K,) start of law 2k (prompt) and 2k+1 (decode) in law_data
    law_data: np.ndarray  # flat float vector of the encoded laws (LengthLaw.encode)


def encode_workload(workload: Workload) -> EncodedWorkload:
    pieces, offsets, position = [], [], 0
    for c in workload.classes:
        for law in (c.prompt, c.decode):
            vec = law.encode()
            offsets.append(position)
            pieces.append(vec)
            position += vec.size
    rates = workload.rates
    total = float(rates.sum())
    cdf = np.cumsum(rates) / total if total > 0 else np.ones(rates.size)
    cdf[-1] = 1.0
    return EncodedWorkload(total, cdf, np.array(offsets, np.int64), np.concatenate(pieces))


def seed_streams(seed: int):
    """(arrival state, length state, budget key): one stream per source of randomness."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    arrivals, lengths, budgets = np.random.SeedSequence(int(seed)).spawn(3)
    return _rng.new_state(arrivals), _rng.new_state(lengths), _rng.new_key(budgets)


@njit(cache=True, nogil=True, inline="always")
def draw_length(data, offset, state):
    """One draw of the law encoded at ``data[offset:]`` (layouts in LengthLaw.encode)."""
    code = int(data[offset])
    if code == LAW_DETERMINISTIC:
        return int(data[offset + 1])
    if code == LAW_GEOMETRIC:
        limit = data[offset + 2]
        if limit > 0:
            u = 1.0 - _rng.uniform(state) * data[offset + 3]
            return min(1 + int(math.floor(math.log(u) / data[offset + 1])), int(limit))
        return 1 + int(math.floor(math.log(_rng.uniform(state)) / data[offset + 1]))
    if code == LAW_UNIFORM:
        return int(data[offset + 1]) + int(_rng.uniform(state) * data[offset + 2])
    n = int(data[offset + 1])
    x = _rng.uniform(state) * n
    i = int(x)
    base = offset + 2
    if x - i < data[base + i]:
        return int(data[base + n + i])
    return int(data[base + 2 * n + i])


@njit(cache=True, nogil=True)
def draw_requests(count, class_cdf, law_offset, law_data, arrival_state, length_state,
                  out_class, out_prompt, out_decode, at):
    """Classes and lengths of ``count`` requests, written to the outputs from index ``at``."""
    num_classes = class_cdf.size
    for r in range(count):
        k = 0
        if num_classes > 1:
            u = _rng.uniform(arrival_state)
            while k < num_classes - 1 and u >= class_cdf[k]:
                k += 1
        out_class[at + r] = k
        out_prompt[at + r] = draw_length(law_data, law_offset[2 * k], length_state)
        out_decode[at + r] = draw_length(law_data, law_offset[2 * k + 1], length_state)


@njit(cache=True, nogil=True)
def _generate(slots, total_rate, class_cdf, law_offset, law_data, arrival_state, length_state,
              capacity):
    arrival = np.empty(capacity, np.int64)
    cls = np.empty(capacity, np.int64)
    prompt = np.empty(capacity, np.int64)
    decode = np.empty(capacity, np.int64)
    n = 0
    slot = -1
    if total_rate <= 0.0:
        return arrival[:0], prompt[:0], decode[:0], cls[:0]
    while True:
        slot += _rng.geometric_gap(arrival_state, total_rate)
        if slot >= slots:
            break
        count = _rng.poisson_positive(arrival_state, total_rate)
        if n + count > arrival.size:
            new_size = max(2 * arrival.size, n + count)
            arrival = _grow(arrival, new_size)
            cls = _grow(cls, new_size)
            prompt = _grow(prompt, new_size)
            decode = _grow(decode, new_size)
        draw_requests(count, class_cdf, law_offset, law_data, arrival_state, length_state,
                      cls, prompt, decode, n)
        arrival[n:n + count] = slot
        n += count
    return arrival[:n], prompt[:n], decode[:n], cls[:n]


@njit(cache=True, nogil=True)
def _grow(a, size):
    out = np.empty(size, a.dtype)
    out[: a.size] = a
    return out


def generate_requests(workload: Workload, slots: int, seed: int) -> Requests:
    enc = encode_workload(workload)
    arrival_state, length_state, _ = seed_streams(seed)
    mean = enc.total_rate * slots
    capacity = int(mean + 10.0 * math.sqrt(mean) + 16)
    a, l, o, k = _generate(slots, enc.total_rate, enc.class_cdf, enc.law_offset, enc.law_data,
                           arrival_state, length_state, capacity)
    return Requests._trusted(a, l, o, k)
