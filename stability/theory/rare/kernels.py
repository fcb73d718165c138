"""Jitted samplers of the eviction-free demand U (docs/model.md 3.2), tilted and plain.

Kernel layer (STYLE): plain arrays and scalars in, ``out`` filled in place, the xoshiro
state passed and returned as scalars (:mod:`stability._rng`).  Each call samples one
independent stream of activations (one budget) and *adds* its demand to ``out``, so U of
a model with several streams is the sum of one call per stream, each with its own state.

Tilted sampler (:func:`sample_tilted_stream`), per sample and age a of the table:

* Poisson budgets: the active activations of all ages form a Poisson(mu) number of
  i.i.d. (class, age) pairs drawn from an alias table (Poisson thinning), so the cost
  grows with the active requests, not with the ages.
* deterministic / two-point budgets: ages below ``dense_end`` draw the tilted budget
  (n, plus one with probability g_a) and a Binomial(B, p_a) active count; older ages,
  where P(count >= 1) = s_a is small, are visited by geometric skips under the
  non-increasing envelope env_a >= s_a and thinned with probability s_a / env, then
  (B, count) is drawn given count >= 1.  Both give each age its exact count law.

Every active activation adds (a + 1) + l, l drawn from its class's tilted prompt alias
table.  The plain sampler (:func:`sample_direct_stream`) draws budgets, classes and
lengths directly with :func:`stability._generate.fill_requests`, the simulator's own
generator, and keeps l + a + 1 for each activation with o > a.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from stability.engine import rng as _rng
from stability.engine.generate import fill_requests

LAW_DETERMINISTIC = 0
LAW_POISSON = 1
LAW_TWO_POINT = 2


@njit(cache=True, nogil=True)
def alias_table(probs):
    """Vose's alias method for nonnegative weights: (threshold, alias index) arrays."""
    n = probs.size
    total = 0.0
    for i in range(n):
        total += probs[i]
    scaled = probs * (n / total)
    threshold = np.ones(n)
    alias = np.arange(n)
    small = np.empty(n, np.int64)
    large = np.empty(n, np.int64)
    ns = 0
    nl = 0
    for i in range(n):
        if scaled[i] < 1.0:
            small[ns] = i
            ns += 1
        else:
            large[nl] = i
            nl += 1
    while ns > 0 and nl > 0:
        ns -= 1
        s = small[ns]
        nl -= 1
        g = large[nl]
        threshold[s] = scaled[s]
        alias[s] = g
        scaled[g] = scaled[g] + scaled[s] - 1.0
        if scaled[g] < 1.0:
            small[ns] = g
            ns += 1
        else:
            large[nl] = g
            nl += 1
    return threshold, alias


@njit(cache=True, nogil=True)
def _draw_prompt(s0, s1, s2, s3, c, prompt_off, prompt_thr, prompt_val, prompt_alt):
    """A tilted prompt length of class c (alias table prompt_off[c]:prompt_off[c + 1])."""
    off = prompt_off[c]
    n = prompt_off[c + 1] - off
    if n == 1:
        return s0, s1, s2, s3, prompt_val[off]
    s0, s1, s2, s3, u = _rng.uniform(s0, s1, s2, s3)
    x = u * n
    i = int(x)
    if i >= n:
        i = n - 1
    if x - i < prompt_thr[off + i]:
        return s0, s1, s2, s3, prompt_val[off + i]
    return s0, s1, s2, s3, prompt_alt[off + i]


@njit(cache=True, nogil=True)
def _invert_binomial(u, k, pk, b, ratio):
    """Binomial inversion from P(K = k) = pk: the first K >= k whose CDF reaches u.

    ``ratio`` = p / (1 - p), so P(K = j + 1) = P(K = j) (b - j) / (j + 1) ratio.
    """
    cdf = pk
    while u > cdf and k < b:
        pk *= (b - k) / (k + 1.0) * ratio
        k += 1
        cdf += pk
    return k


@njit(cache=True, nogil=True)
def _binomial(s0, s1, s2, s3, b, n, small, q0, ratio):
    """Binomial(b, p) by inversion from 0 on the side of small = min(p, 1 - p).

    Precomputed per age: q0 = (1 - small)^n (b is n or n + 1) and ratio = small / (1 -
    small), so a draw costs one uniform and O(1 + b small) steps.  Returns b - K when
    p > 1/2 (the caller passes small = 1 - p and undoes the flip).
    """
    if b <= 0 or small <= 0.0:
        return s0, s1, s2, s3, 0
    if b > 1000 or q0 <= 0.0:  # (1 - small)^b may underflow: sum of Bernoullis
        k = 0
        for _ in range(b):
            s0, s1, s2, s3, u = _rng.uniform(s0, s1, s2, s3)
            if u < small:
                k += 1
        return s0, s1, s2, s3, k
    pk = q0
    if b > n:
        pk *= 1.0 - small
    s0, s1, s2, s3, u = _rng.uniform(s0, s1, s2, s3)
    return s0, s1, s2, s3, _invert_binomial(u, 0, pk, b, ratio)


@njit(cache=True, nogil=True)
def _count_given_positive(s0, s1, s2, s3, n, g, p, s_pos):
    """(B, K) given K >= 1, B = n + Bernoulli(g), K ~ Binomial(B, p) (p small).

    P(K >= 1) = s_pos = 1 - (1 - p)^n (1 - g p); inversion from k = 1.
    """
    lq = math.log1p(-p)
    b = n
    if g > 0.0:
        s0, s1, s2, s3, u = _rng.uniform(s0, s1, s2, s3)
        if u * s_pos < g * -math.expm1((n + 1) * lq):
            b = n + 1
    if b <= 0:  # unreachable when s_pos > 0; kept so a bad table cannot loop
        return s0, s1, s2, s3, 0
    s0, s1, s2, s3, u = _rng.uniform(s0, s1, s2, s3)
    u *= -math.expm1(b * lq)
    pk = b * p * math.exp((b - 1) * lq)
    return s0, s1, s2, s3, _invert_binomial(u, 1, pk, b, p / (1.0 - p))


@njit(cache=True, nogil=True)
def _add_actives(s0, s1, s2, s3, k, a, cls_cdf, prompt_off, prompt_thr, prompt_val, prompt_alt):
    """Demand of k active activations of age a: k (a + 1) plus their tilted prompts."""
    total = k * (a + 1)
    ncls = cls_cdf.shape[1]
    for _ in range(k):
        c = 0
        if ncls > 1:
            s0, s1, s2, s3, u = _rng.uniform(s0, s1, s2, s3)
            while c < ncls - 1 and u >= cls_cdf[a, c]:
                c += 1
        s0, s1, s2, s3, v = _draw_prompt(s0, s1, s2, s3, c, prompt_off, prompt_thr,
                                         prompt_val, prompt_alt)
        total += v
    return s0, s1, s2, s3, total


@njit(cache=True, nogil=True)
def sample_tilted_stream(law, n, mu, dense_end, p_act, g_extra, s_pos, env, q0, ratio,
                         cls_cdf,
                         pair_thr, pair_alias, pair_class, pair_age,
                         prompt_off, prompt_thr, prompt_val, prompt_alt,
                         s0, s1, s2, s3, out):
    """Add one stream's demand under the tilted law to out[i], i = 0..out.size-1.

    Parameters (ages a = 0..A-1 of the table; classes c = 0..K-1 of the stream)
    ----------
    law : LAW_DETERMINISTIC, LAW_POISSON or LAW_TWO_POINT.
    n : b (deterministic) or floor(beta) (two-point).
    mu : Poisson only, tilted mean number of active activations over all ages.
    dense_end : ages below it are drawn one by one; the rest by envelope skips.
    p_act, g_extra, s_pos, env : float (A,): tilted P(an activation is active), tilted
        P(B = n + 1) (two-point), P(active count >= 1), non-increasing envelope of s_pos.
    q0, ratio : float (A,): (1 - x)^n and x / (1 - x), x = min(p_act, 1 - p_act).
    cls_cdf : float (A, K), cumulative tilted class probabilities of an active activation.
    pair_thr, pair_alias, pair_class, pair_age : Poisson only, alias table over
        (class, age) pairs weighted by their tilted active rates.
    prompt_off, prompt_thr, prompt_val, prompt_alt : per-class tilted prompt alias tables.
    """
    ages = p_act.size
    for i in range(out.size):
        total = 0
        if law == LAW_POISSON:
            s0, s1, s2, s3, count = _rng.poisson(s0, s1, s2, s3, mu)
            npairs = pair_thr.size
            for _ in range(count):
                s0, s1, s2, s3, u = _rng.uniform(s0, s1, s2, s3)
                x = u * npairs
                j = int(x)
                if j >= npairs:
                    j = npairs - 1
                if x - j >= pair_thr[j]:
                    j = pair_alias[j]
                s0, s1, s2, s3, v = _draw_prompt(s0, s1, s2, s3, pair_class[j], prompt_off,
                                                 prompt_thr, prompt_val, prompt_alt)
                total += pair_age[j] + 1 + v
        else:
            for a in range(dense_end):
                b = n
                if law == LAW_TWO_POINT and g_extra[a] > 0.0:
                    s0, s1, s2, s3, u = _rng.uniform(s0, s1, s2, s3)
                    if u < g_extra[a]:
                        b = n + 1
                small = p_act[a]
                flip = small > 0.5
                if flip:
                    small = 1.0 - small
                s0, s1, s2, s3, k = _binomial(s0, s1, s2, s3, b, n, small, q0[a], ratio[a])
                if flip:
                    k = b - k
                if k > 0:
                    s0, s1, s2, s3, v = _add_actives(s0, s1, s2, s3, k, a, cls_cdf, prompt_off,
                                                     prompt_thr, prompt_val, prompt_alt)
                    total += v
            a = dense_end
            while a < ages:
                bound = env[a]
                if bound <= 0.0:
                    break
                if bound < 1.0:
                    s0, s1, s2, s3, u = _rng.uniform(s0, s1, s2, s3)
                    skip = math.log(u) / math.log1p(-bound)
                    if skip >= ages - a:
                        break
                    a += int(skip)
                s0, s1, s2, s3, u = _rng.uniform(s0, s1, s2, s3)
                if u * bound < s_pos[a]:
                    s0, s1, s2, s3, k = _count_given_positive(s0, s1, s2, s3, n, g_extra[a],
                                                              p_act[a], s_pos[a])
                    s0, s1, s2, s3, v = _add_actives(s0, s1, s2, s3, k, a, cls_cdf, prompt_off,
                                                     prompt_thr, prompt_val, prompt_alt)
                    total += v
                a += 1
        out[i] += total
    return s0, s1, s2, s3


@njit(cache=True, nogil=True)
def sample_direct_stream(law, b, beta, ages, class_cdf, law_offset, law_data,
                         g0, g1, g2, g3, a0, a1, a2, a3, l0, l1, l2, l3, out):
    """Add one stream's demand, sampled directly (no tilt), to out[i].

    For each age a < ``ages`` draw B_a from the budget law (stream g), then B_a requests
    (class from stream a, lengths from stream l, exactly as the simulator's generator)
    and keep l + a + 1 for each with o > a.
    """
    cap = 64
    scratch = np.empty((3, cap), np.int64)
    for i in range(out.size):
        total = 0
        for a in range(ages):
            count = b
            if law == LAW_POISSON:
                g0, g1, g2, g3, count = _rng.poisson(g0, g1, g2, g3, beta)
            elif law == LAW_TWO_POINT:
                g0, g1, g2, g3, u = _rng.uniform(g0, g1, g2, g3)
                count = b + (1 if u < beta - b else 0)
            if count > cap:
                cap = 2 * count
                scratch = np.empty((3, cap), np.int64)
            a0, a1, a2, a3, l0, l1, l2, l3 = fill_requests(
                count, class_cdf, law_offset, law_data, a0, a1, a2, a3, l0, l1, l2, l3,
                scratch, 0)
            for r in range(count):
                if scratch[2, r] > a:
                    total += scratch[1, r] + a + 1
        out[i] += total
    return g0, g1, g2, g3, a0, a1, a2, a3, l0, l1, l2, l3
