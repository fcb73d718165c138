"""Cheap lower bounds on the hindsight optimum and the safe horizon (Lemma H)."""

from __future__ import annotations

import math

import numpy as np

from stability import validation
from stability.workload import Requests


# ----------------------------------------------------------------------------------------
# Validation


def _check_instance(requests, memory) -> int:
    if not isinstance(requests, Requests):
        raise ValueError(f"requests must be a stability.Requests, got {type(requests).__name__}")
    memory = validation.memory(memory)
    requests.check_fits(memory)  # names the request, its l, o and M
    return memory


def _check_time_limit(time_limit) -> float:
    if (isinstance(time_limit, bool) or not isinstance(time_limit, (int, float, np.number))
            or not math.isfinite(float(time_limit)) or time_limit <= 0):
        raise ValueError(f"time_limit must be a positive number of seconds, got {time_limit!r}")
    return float(time_limit)


def _check_horizon(requests: Requests, horizon) -> int | None:
    if horizon is None:
        return None
    horizon = validation.integer("horizon", horizon, 1)
    a, o = requests.arrival, requests.decode
    late = np.flatnonzero(a + o > horizon)
    if late.size:
        i = int(late[0])
        raise ValueError(
            f"horizon={horizon} is too short: request {i} arrives in slot a={int(a[i])} and "
            f"needs o={int(o[i])} decode slots, so it cannot complete by slot {horizon - 1}"
        )
    return horizon


# ----------------------------------------------------------------------------------------
# Cheap lower bounds


def safe_horizon(requests: Requests) -> int:
    """H = max a + sum o: by Lemma H (module docstring) every optimal schedule completes in
    slots 0..H-1."""
    if len(requests) == 0:
        return 0
    return int(requests.arrival.max() + requests.decode.sum())


def decode_lower_bound(requests: Requests) -> int:
    """sum_i o_i: latency_i = s_i + o_i - a_i >= o_i because s_i >= a_i (H2)."""
    return int(requests.decode.sum())


def _volume_bound(a: np.ndarray, o: np.ndarray, w: np.ndarray, memory: int) -> int:
    n = a.size
    if n == 0:
        return 0
    e = np.sort(a + o - 1)
    cum = np.cumsum(np.sort(w))
    v = int(a.min()) - 1 + (-(-cum // memory))  # a_min - 1 + ceil(W_k / M)
    return int(np.maximum(e, v).sum() - a.sum() + n)


def memory_volume_lower_bound(requests: Requests, memory: int) -> int:
    """Claim V (memory-volume bound on the total latency).

    Let w_i = l_i o_i + o_i (o_i + 1) / 2 (docs/model.md 1), W_k the sum of the k smallest w_i,
    e_(k) the k-th smallest of a_i + o_i - 1 and a_min = min_i a_i.  Every feasible
    schedule (with or without eviction) has

        total latency >= sum_{k=1..n} max(e_(k), a_min - 1 + ceil(W_k / M)) - sum_i a_i + n.

    Proof.  Order the completions C_(1) <= ... <= C_(n).  (i) C_i >= a_i + o_i - 1 for every
    i, and the k-th smallest of a pointwise larger vector is larger, so C_(k) >= e_(k).
    (ii) Let K be the k requests completing first.  Each i in K holds, over its (final)
    run, m_i(t) = l_i + (t - s_i) + 1 tokens in o_i slots, w_i in total (H1), all inside
    slots [a_min, C_(k)].  At most M tokens are held per slot, so
    M (C_(k) - a_min + 1) >= sum_{i in K} w_i >= W_k, and C_(k) is an integer:
    C_(k) >= a_min - 1 + ceil(W_k / M).  Summing max(i, ii) over k bounds sum_i C_i, and
    total latency = sum_i C_i - sum_i a_i + n (H2).  QED

    Part (i) alone sums to sum_i o_i, so this bound is >= ``decode_lower_bound``.
    """
    memory = _check_instance(requests, memory)
    return _volume_bound(requests.arrival, requests.decode, requests.memory_time(), memory)


def _leave_one_out_bounds(requests: Requests, memory: int) -> np.ndarray:
    """LB(-j) = memory-volume bound of the instance without request j, for every j."""
    a, o, w = requests.arrival, requests.decode, requests.memory_time()
    n = a.size
    out = np.zeros(n, np.int64)
    keep = np.ones(n, bool)
    for j in range(n):
        keep[j] = False
        out[j] = _volume_bound(a[keep], o[keep], w[keep], memory)
        keep[j] = True
    return out


