"""Jitted random numbers: xoshiro256** streams and counter-based draws.

Each source of randomness (arrivals, lengths, budgets) has its own stream, seeded from
``numpy.random.SeedSequence`` (DESIGN 4).  Budgets are counter-based: the draw of slot t
is a pure function of (key, t), so it does not depend on how an engine steps through time.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

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


@njit(cache=True, nogil=True, inline="always")
def _rotl(x, k):
    return (x << np.uint64(k)) | (x >> np.uint64(64 - k))


@njit(cache=True, nogil=True, inline="always")
def next_u64(state):
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    result = _rotl(s1 * np.uint64(5), 7) * np.uint64(9)
    t = s1 << np.uint64(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = _rotl(s3, 45)
    state[0], state[1], state[2], state[3] = s0, s1, s2, s3
    return result


@njit(cache=True, nogil=True, inline="always")
def uniform(state):
    """Uniform on the open interval (0, 1)."""
    return (float(next_u64(state) >> np.uint64(11)) + 0.5) * _TWO53


@njit(cache=True, nogil=True, inline="always")
def mix64(x):
    """splitmix64 finaliser: a bijective 64-bit hash."""
    z = x + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


@njit(cache=True, nogil=True)
def seed_counter_state(key, counter, state):
    """Fill ``state`` with a xoshiro state that is a pure function of (key, counter)."""
    h = mix64(key[0] ^ mix64(np.uint64(counter) + key[1]))
    for j in range(4):
        h = mix64(h + np.uint64(j + 1) * _GOLDEN)
        state[j] = h


@njit(cache=True, nogil=True)
def poisson(state, lam):
    """Poisson(lam): inversion below 10, Hoermann's PTRS transformed rejection above."""
    if lam <= 0.0:
        return 0
    if lam < 10.0:
        u = uniform(state)
        k = 0
        p = math.exp(-lam)
        cdf = p
        while u > cdf and k < 1000:
            k += 1
            p *= lam / k
            cdf += p
        return k
    slam = math.sqrt(lam)
    loglam = math.log(lam)
    b = 0.931 + 2.53 * slam
    a = -0.059 + 0.02483 * b
    invalpha = 1.1239 + 1.1328 / (b - 3.4)
    vr = 0.9277 - 3.6224 / (b - 2.0)
    while True:
        u = uniform(state) - 0.5
        v = uniform(state)
        us = 0.5 - abs(u)
        k = math.floor((2.0 * a / us + b) * u + lam + 0.43)
        if us >= 0.07 and v <= vr:
            return int(k)
        if k < 0 or (us < 0.013 and v > us):
            continue
        if math.log(v) + math.log(invalpha) - math.log(a / (us * us) + b) <= (
            -lam + k * loglam - math.lgamma(k + 1.0)
        ):
            return int(k)


@njit(cache=True, nogil=True)
def poisson_positive(state, lam):
    """Poisson(lam) conditioned on being >= 1."""
    if lam >= 10.0:
        while True:
            k = poisson(state, lam)
            if k > 0:
                return k
    p = math.exp(-lam)
    u = p + uniform(state) * (-math.expm1(-lam))
    k = 0
    cdf = p
    while u > cdf and k < 1000:
        k += 1
        p *= lam / k
        cdf += p
    return max(k, 1)


@njit(cache=True, nogil=True)
def geometric_gap(state, lam):
    """Slots to the next slot holding at least one Poisson(lam) arrival (>= 1)."""
    return 1 + int(math.floor(-math.log(uniform(state)) / lam))
