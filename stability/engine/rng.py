"""Jitted random numbers: xoshiro256** streams and counter-based draws.

Each source of randomness (arrivals, lengths, budgets) has its own stream, seeded from
``numpy.random.SeedSequence`` (docs/model.md 5).  Budgets are counter-based: the draw of slot t
is a pure function of (key, t), so it does not depend on how an engine steps through time.

The functions take and return the four state words as scalars, so the kernels keep a
stream in registers (passing state arrays to jitted helpers costs reference counting
on every call).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from stability.engine.codes import BUDGET_DETERMINISTIC, BUDGET_POISSON

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_TWO53 = 1.0 / 9007199254740992.0


def new_state(seed_sequence: np.random.SeedSequence) -> np.ndarray:
    """Four 64-bit words of xoshiro256** state from a SeedSequence."""
    state = seed_sequence.generate_state(4, dtype=np.uint64)
    if not state.any():
        state[0] = 1
    return state


def new_key(seed_sequence: np.random.SeedSequence) -> np.ndarray:
    """Two 64-bit words keying a counter-based stream."""
    return seed_sequence.generate_state(2, dtype=np.uint64)


@njit(cache=True, nogil=True)
def _rotl(x, k):
    return (x << np.uint64(k)) | (x >> np.uint64(64 - k))


@njit(cache=True, nogil=True)
def uniform(s0, s1, s2, s3):
    """One xoshiro256** step: (new state, u) with u uniform on the open interval (0, 1)."""
    result = _rotl(s1 * np.uint64(5), 7) * np.uint64(9)
    t = s1 << np.uint64(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = _rotl(s3, 45)
    return s0, s1, s2, s3, (float(result >> np.uint64(11)) + 0.5) * _TWO53


@njit(cache=True, nogil=True)
def mix64(x):
    """splitmix64 finaliser: a bijective 64-bit hash."""
    z = x + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


@njit(cache=True, nogil=True)
def counter_state(key0, key1, counter):
    """A xoshiro state that is a pure function of (key, counter)."""
    h = mix64(key0 ^ mix64(np.uint64(counter) + key1))
    s0 = mix64(h + _GOLDEN)
    s1 = mix64(s0 + _GOLDEN)
    s2 = mix64(s1 + _GOLDEN)
    s3 = mix64(s2 + _GOLDEN)
    return s0, s1, s2, s3


@njit(cache=True, nogil=True)
def poisson(s0, s1, s2, s3, lam):
    """Poisson(lam): inversion below 10, Hoermann's PTRS transformed rejection above."""
    if lam <= 0.0:
        return s0, s1, s2, s3, 0
    if lam < 10.0:
        s0, s1, s2, s3, u = uniform(s0, s1, s2, s3)
        k = 0
        p = math.exp(-lam)
        cdf = p
        while u > cdf and k < 200:
            k += 1
            p *= lam / k
            cdf += p
        return s0, s1, s2, s3, k
    slam = math.sqrt(lam)
    loglam = math.log(lam)
    b = 0.931 + 2.53 * slam
    a = -0.059 + 0.02483 * b
    invalpha = 1.1239 + 1.1328 / (b - 3.4)
    vr = 0.9277 - 3.6224 / (b - 2.0)
    while True:
        s0, s1, s2, s3, u = uniform(s0, s1, s2, s3)
        s0, s1, s2, s3, v = uniform(s0, s1, s2, s3)
        u -= 0.5
        us = 0.5 - abs(u)
        k = math.floor((2.0 * a / us + b) * u + lam + 0.43)
        if us >= 0.07 and v <= vr:
            return s0, s1, s2, s3, int(k)
        if k < 0 or (us < 0.013 and v > us):
            continue
        if math.log(v) + math.log(invalpha) - math.log(a / (us * us) + b) <= (
            -lam + k * loglam - math.lgamma(k + 1.0)
        ):
            return s0, s1, s2, s3, int(k)


@njit(cache=True, nogil=True)
def poisson_positive(s0, s1, s2, s3, lam):
    """Poisson(lam) conditioned on being >= 1."""
    if lam >= 10.0:
        while True:
            s0, s1, s2, s3, k = poisson(s0, s1, s2, s3, lam)
            if k > 0:
                return s0, s1, s2, s3, k
    p = math.exp(-lam)
    s0, s1, s2, s3, u = uniform(s0, s1, s2, s3)
    u = p + u * (-math.expm1(-lam))
    k = 0
    cdf = p
    while u > cdf and k < 200:
        k += 1
        p *= lam / k
        cdf += p
    return s0, s1, s2, s3, max(k, 1)


@njit(cache=True, nogil=True)
def geometric_gap(s0, s1, s2, s3, lam):
    """Slots to the next slot holding at least one Poisson(lam) arrival (>= 1).

    P(a slot has an arrival) = 1 - exp(-lam), so the gap is 1 + floor(-log(U) / lam).
    """
    s0, s1, s2, s3, u = uniform(s0, s1, s2, s3)
    return s0, s1, s2, s3, 1 + int(math.floor(-math.log(u) / lam))


@njit(cache=True, nogil=True)
def budget(law, b, beta, key0, key1, t):
    """B_t, the activation budget of slot t: a pure function of (key, t) (docs/model.md 3.1)."""
    if law == BUDGET_DETERMINISTIC:
        return b
    s0, s1, s2, s3 = counter_state(key0, key1, t)
    if law == BUDGET_POISSON:
        s0, s1, s2, s3, k = poisson(s0, s1, s2, s3, beta)
        return k
    base = math.floor(beta)
    s0, s1, s2, s3, u = uniform(s0, s1, s2, s3)
    return int(base) + (1 if u < beta - base else 0)
