"""Schedules: evaluation, list-scheduling heuristics, brute force, Jaillet et al.'s
synthetic family, and the validation the hindsight module shares."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from stability import validation
from stability.hindsight.bounds import _check_instance, safe_horizon
from stability.workload import Requests


HEURISTIC_ORDERS = ("fcfs", "shortest-decode", "smallest-work", "earliest-finish")


# ----------------------------------------------------------------------------------------
# Schedules


@dataclass(frozen=True)
class Schedule:
    """A feasible one-start-per-request schedule (module docstring, (H1)-(H2)).

    ``start``, ``completion`` and ``latency`` are int64 arrays aligned with the requests;
    ``memory[t]`` is the KV usage sum_i m_i(t) in slot t = 0, ..., makespan.
    """

    start: np.ndarray
    completion: np.ndarray
    latency: np.ndarray
    memory: np.ndarray

    @property
    def total_latency(self) -> int:
        return int(self.latency.sum())

    @property
    def makespan(self) -> int:
        """Last completion slot (-1 for no requests)."""
        return int(self.completion.max()) if self.completion.size else -1

    @property
    def peak_memory(self) -> int:
        return int(self.memory.max()) if self.memory.size else 0


def _usage(arrival, prompt, decode, start) -> np.ndarray:
    """Per-slot memory sum_i m_i(t), t = 0..max completion, by difference arrays (H1).

    In slot t an active request holds (l_i + 1 - s_i) + t, so the usage is A(t) + t N(t)
    with A the sum of (l_i + 1 - s_i) and N the count over active requests.
    """
    if start.size == 0:
        return np.zeros(0, np.int64)
    end = start + decode  # first slot after the run
    length = int(end.max())
    da = np.zeros(length + 1, np.int64)
    dn = np.zeros(length + 1, np.int64)
    np.add.at(da, start, prompt + 1 - start)
    np.add.at(da, end, -(prompt + 1 - start))
    np.add.at(dn, start, 1)
    np.add.at(dn, end, -1)
    t = np.arange(length, dtype=np.int64)
    return np.cumsum(da)[:length] + t * np.cumsum(dn)[:length]


def evaluate_schedule(requests: Requests, start, memory: int) -> Schedule:
    """Check a start-slot vector against (H1) and the memory limit; return its Schedule.

    Raises ValueError naming the first request that starts before it arrives, or the first
    slot whose memory exceeds M.
    """
    memory = _check_instance(requests, memory)
    start = np.asarray(start, dtype=np.int64)
    a, l, o = requests.arrival, requests.prompt, requests.decode
    if start.shape != a.shape:
        raise ValueError(f"start has shape {start.shape}, expected {a.shape}")
    early = np.flatnonzero(start < a)
    if early.size:
        i = int(early[0])
        raise ValueError(f"request {i} starts in slot {int(start[i])} before its arrival "
                         f"a={int(a[i])}")
    usage = _usage(a, l, o, start)
    over = np.flatnonzero(usage > memory)
    if over.size:
        t = int(over[0])
        raise ValueError(f"slot {t} uses {int(usage[t])} tokens, above M={memory}")
    completion = start + o - 1
    return Schedule(start=start, completion=completion, latency=completion - a + 1,
                    memory=usage)


def _order(requests: Requests, order: str) -> np.ndarray:
    a, o = requests.arrival, requests.decode
    idx = np.arange(len(requests))
    if order == "fcfs":
        return np.lexsort((idx, a))
    if order == "shortest-decode":
        return np.lexsort((idx, a, o))
    if order == "smallest-work":
        return np.lexsort((idx, a, requests.memory_time()))
    if order == "earliest-finish":
        return np.lexsort((idx, o, a + o))
    raise ValueError(f"order must be one of {HEURISTIC_ORDERS}, got {order!r}")


def heuristic_schedule(requests: Requests, memory: int, order: str = "fcfs") -> Schedule:
    """List scheduling: take requests in ``order`` and start each at the earliest slot
    s >= a_i at which its whole profile l_i + 1, ..., l_i + o_i fits under M on top of the
    requests already placed.

    Orders: "fcfs" (arrival, index), "shortest-decode" (o first), "smallest-work" (w first),
    "earliest-finish" (a + o first).  Always feasible (each request fits alone since
    l + o <= M) and completes every request by slot max a + sum o - 1: the placed requests
    occupy at most sum o slots, so o_i consecutive free slots begin at or before
    a_i + (sum of the placed decode lengths).
    """
    memory = _check_instance(requests, memory)
    n = len(requests)
    a, l, o = requests.arrival, requests.prompt, requests.decode
    start = np.zeros(n, np.int64)
    if n == 0:
        return evaluate_schedule(requests, start, memory)
    horizon = safe_horizon(requests)
    used = np.zeros(horizon + 1, np.int64)
    for i in _order(requests, order):
        need = l[i] + 1 + np.arange(o[i])
        cap = memory - need
        s = int(a[i])
        while np.any(used[s:s + o[i]] > cap):
            s += 1
        used[s:s + o[i]] += need
        start[i] = s
    return evaluate_schedule(requests, start, memory)


def upper_bound_schedule(requests: Requests, memory: int) -> Schedule:
    """The cheapest of ``heuristic_schedule`` over ``HEURISTIC_ORDERS`` (an upper bound)."""
    schedules = [heuristic_schedule(requests, memory, order) for order in HEURISTIC_ORDERS]
    return min(schedules, key=lambda sch: sch.total_latency)



# ----------------------------------------------------------------------------------------
# Brute force


def brute_force_optimum(requests: Requests, memory: int, max_requests: int = 6) -> Schedule:
    """Exact optimum by enumerating start vectors s_i in [a_i, H - o_i] (H of Lemma H),
    for tiny instances only (at most ``max_requests`` requests).

    Independent of the MILP code: a depth-first enumeration in input order that keeps a
    plain per-slot memory list, adds each request's tokens slot by slot (H1) and checks
    every slot against M.  Two prunings keep it fast without changing the answer: a
    partial assignment that already exceeds M in some slot cannot become feasible (memory
    only grows as requests are added), and one whose latency so far plus sum of the
    remaining o_j (each latency >= o_j) cannot beat the best complete vector found is
    skipped.  Ties go to the lexicographically smallest start vector.
    """
    memory = _check_instance(requests, memory)
    max_requests = validation.integer("max_requests", max_requests, 0)
    n = len(requests)
    if n > max_requests:
        raise ValueError(f"brute_force_optimum is for tiny instances: {n} requests > "
                         f"max_requests={max_requests}")
    a = [int(x) for x in requests.arrival]
    l = [int(x) for x in requests.prompt]
    o = [int(x) for x in requests.decode]
    horizon = (max(a) + sum(o)) if n else 0
    used = [0] * (horizon + 1)
    rest = [sum(o[i:]) for i in range(n + 1)]
    best_cost = [math.inf]
    best_start: list[list[int]] = [[]]
    cur = [0] * n

    def place(i: int, cost: int) -> None:
        if i == n:
            if cost < best_cost[0]:
                best_cost[0] = cost
                best_start[0] = list(cur)
            return
        for s in range(a[i], horizon - o[i] + 1):
            lat = s + o[i] - a[i]
            if cost + lat + rest[i + 1] >= best_cost[0]:
                break  # later starts only cost more
            ok = True
            for k in range(o[i]):
                if used[s + k] + l[i] + k + 1 > memory:
                    ok = False
                    break
            if not ok:
                continue
            for k in range(o[i]):
                used[s + k] += l[i] + k + 1
            cur[i] = s
            place(i + 1, cost + lat)
            for k in range(o[i]):
                used[s + k] -= l[i] + k + 1

    place(0, 0)
    return evaluate_schedule(requests, np.array(best_start[0], np.int64), memory)


# ----------------------------------------------------------------------------------------
# Jaillet et al.'s synthetic family


def synthetic_batch(n: int, seed: int = 0) -> tuple[Requests, int]:
    """Jaillet et al. (arXiv 2502.07115) synthetic instance: M ~ U{30..50}, then n requests
    all arriving in slot 0 with prompt l ~ U{1..5} and decode o ~ U{1..M - l}.

    Returns (requests, M); l + o <= M holds by construction.
    """
    n = validation.integer("n", n, 0)
    rng = np.random.default_rng(seed)
    memory = int(rng.integers(30, 51))
    prompt = rng.integers(1, 6, size=n)
    decode = rng.integers(1, memory - prompt + 1)
    return Requests(np.zeros(n, np.int64), prompt, decode), memory

