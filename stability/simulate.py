"""The simulation API: validate, allocate, seed, call an engine, wrap the result."""

from __future__ import annotations

import math
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import njit

from stability import _kernel
from stability._generate import draw_next_slot, encode_workload, seed_streams
from stability.policies import (
    ClassBudgets,
    AMax,
    Conservative,
    EncodedPolicy,
    FlowControl,
    Greedy,
    Policy,
)
from stability.provenance import result_version
from stability.raw import RawRun, SlotStats
from stability.reference import run_reference
from stability.result import RunInfo, Series, SimulationResult, StreamResult
from stability.workload import Requests, Workload

__all__ = ["simulate", "simulate_stream", "simulate_streams"]

ENGINES = ("fast", "reference")
_NO_LIMIT = 2**62


def _check_int(name: str, value, low: int, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        allowed = f"an integer >= {low}" + (" or None" if allow_none else "")
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return int(value)


def _check_policy(policy) -> Policy:
    if not isinstance(policy, Policy):
        raise ValueError(
            f"policy must be a policy object (FlowControl, ClassBudgets, Greedy, Conservative), "
            f"got {policy!r}"
        )
    return policy


def _check_progress(requests: Requests, policy: Policy, memory: int, predicted=None) -> None:
    """With horizon=None the run must end: every request must eventually be admissible."""
    if len(requests) == 0:
        return
    if isinstance(policy, FlowControl) and policy.budget == 0:
        raise ValueError("horizon=None needs a policy that admits: FlowControl budget=0 never "
                         "does; give a horizon")
    if isinstance(policy, ClassBudgets):
        present = np.unique(requests.class_id)
        for k in present:
            if k >= len(policy.budgets) or policy.budgets[k] == 0:
                raise ValueError(f"horizon=None but class {k} has budget 0, so its requests "
                                 "never start; give a horizon")
    if isinstance(policy, Greedy):
        cap = policy.admission_cap(memory)
        bad = np.flatnonzero(requests.prompt + 1 > cap)
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"horizon=None but request {i} (l={int(requests.prompt[i])}) never "
                             f"fits under the watermark cap {cap}; give a horizon")
        # beta-clearing evicts down to (1 - beta) M: a request holding more than that can be
        # evicted even when it is the oldest, and may then restart forever
        clear_to = policy.encode(memory, 1).evict_to
        bad = np.flatnonzero(requests.prompt + requests.decode > clear_to)
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"horizon=None but request {i} (l + o = "
                             f"{int(requests.prompt[i] + requests.decode[i])}) exceeds the "
                             f"clearing level {clear_to} and may restart forever; give a horizon")
    if isinstance(policy, (Conservative, AMax)):
        bound = predicted.upper if isinstance(policy, AMax) else policy.max_decode
        bad = np.flatnonzero(requests.prompt + bound > memory)
        if bad.size:
            i = int(bad[0])
            what = (f"upper bound {int(predicted.upper[i])}" if isinstance(policy, AMax)
                    else f"max_decode={policy.max_decode}")
            raise ValueError(f"horizon=None but request {i} (l={int(requests.prompt[i])}) never "
                             f"fits with {what} in M={memory}; give a horizon")
    if predicted is not None and not isinstance(policy, AMax):
        first = predicted.point if policy.estimate == 0 else predicted.lower
        bad = np.flatnonzero(requests.prompt + first > memory)
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"horizon=None but request {i} (l={int(requests.prompt[i])}, "
                             f"estimated length {int(first[i])}) never passes the memory check "
                             f"in M={memory}; give a horizon")


@njit(cache=True, nogil=True)
def _is_sorted(a):
    for i in range(1, a.size):
        if a[i] < a[i - 1]:
            return False
    return True


def _empty_stream_inputs():
    """Placeholders for the stream-only kernel arguments of a batch run."""
    return dict(total_rate=0.0, class_cdf=np.ones(1), law_offset=np.zeros(2, np.int64),
                law_data=np.zeros(2), rng=np.zeros(8, np.uint64),
                scratch=np.zeros((3, 1), np.int64), free_list=np.zeros(0, np.int64),
                lat_hist=np.zeros((1, 1), np.int64), ttft_hist=np.zeros((1, 1), np.int64),
                class_acc=np.zeros((1, _kernel.NUM_CLASS_COLUMNS), np.int64),
                r_rank=np.zeros(0, np.int64))


def _call(streaming, t_stop, until_done, nreq, order, burst, st) -> None:
    """Advance the kernel to ``t_stop``, growing buffers whenever it asks for room."""
    while True:
        status = _kernel.advance(
            streaming, t_stop, until_done, nreq, order, burst,
            st["r_arrival"], st["r_prompt"], st["r_decode"], st["r_group"], st["r_rank"],
            st["r_start"], st["r_first"], st["r_completion"], st["r_evictions"], st["r_state"],
            st["r_point"], st["r_lower"], st["r_upper"], st["total_rate"], st["class_cdf"], st["law_offset"], st["law_data"],
            st["rng"], st["scratch"], st["pcode"], st["pints"], st["pfloats"], st["bkey"],
            st["memory"], st["evict_to"], st["warmup"], st["sc"], st["fsc"], st["heap_key"], st["heap_idx"],
            st["stack_idx"], st["stack_stamp"], st["dq"], st["dq_head"], st["dq_len"],
            st["free_list"], st["series"], st["lat_hist"], st["ttft_hist"], st["class_acc"])
        if status == _kernel.DONE_OK:
            return
        if status == _kernel.BURST:
            raise RuntimeError("a slot drew more arrivals than the scratch bound (an event of "
                               "probability below 1e-30); please report this with the seed")
        sc = st["sc"]
        incoming = int(sc[_kernel.PENDING_N]) if streaming else burst
        _make_room(st, _kernel.room_needed(sc, st["memory"], incoming), streaming)


def _grown(a: np.ndarray, size: int, fill=0) -> np.ndarray:
    out = np.full(size, fill, a.dtype)
    out[: a.size] = a
    return out


def _make_room(st: dict, need: dict, streaming: bool) -> None:
    """Grow every buffer that is smaller than ``need`` (to twice the need)."""
    dq = st["dq"]
    if need["deque"] > dq.shape[1]:
        cap = 1 << int(2 * need["deque"] - 1).bit_length()
        new = np.zeros((dq.shape[0], cap), np.int64)
        for g in range(dq.shape[0]):
            positions = (st["dq_head"][g] + np.arange(st["dq_len"][g])) % dq.shape[1]
            new[g, : positions.size] = dq[g, positions]
        st["dq"] = new
        st["dq_head"][:] = 0
    for keys in (("heap_key", "heap_idx"), ("stack_idx", "stack_stamp")):
        size = need["heap" if keys[0] == "heap_key" else "stack"]
        if size > st[keys[0]].size:
            for key in keys:
                st[key] = _grown(st[key], 2 * size)
    sc = st["sc"]
    if streaming and sc[_kernel.FREE_N] < need["pool"]:
        old = st["r_arrival"].size
        new_size = 2 * old + need["pool"]
        for key in ("r_arrival", "r_prompt", "r_decode", "r_group", "r_rank", "r_start",
                    "r_first", "r_evictions", "r_state"):
            st[key] = _grown(st[key], new_size)
        free = st["free_list"]
        count = int(sc[_kernel.FREE_N])
        st["free_list"] = np.concatenate(
            [free[:count], np.arange(new_size - 1, old - 1, -1, dtype=np.int64),
             np.zeros(old - count, np.int64)])
        sc[_kernel.FREE_N] = count + new_size - old


def _size_histograms(st: dict, t_start: int, t_stop: int) -> None:
    """Make the latency histograms long enough for every completion before ``t_stop``.

    A request completing in slot t < t_stop has latency t - a + 1 <= t_stop - a, and a is
    at least the oldest arrival still pending (or t_start for later arrivals).
    """
    pending = (st["r_state"] == _kernel.WAITING) | (st["r_state"] == _kernel.ACTIVE)
    oldest = min(int(st["r_arrival"][pending].min()) if pending.any() else t_start, t_start)
    need = t_stop - oldest + 1
    hist = st["lat_hist"]
    if need > hist.shape[1]:
        size = max(need, 2 * hist.shape[1])
        for key in ("lat_hist", "ttft_hist"):
            grown = np.zeros((hist.shape[0], size), np.int64)
            grown[:, : hist.shape[1]] = st[key]
            st[key] = grown


@njit(cache=True, nogil=True)
def _max_burst(sorted_arrival):
    """Largest number of requests arriving in one slot (arrivals sorted)."""
    best = 0
    run = 0
    for i in range(sorted_arrival.size):
        run = run + 1 if i > 0 and sorted_arrival[i] == sorted_arrival[i - 1] else 1
        best = max(best, run)
    return best


def _common_state(enc: EncodedPolicy, memory, warmup, groups, budget_key, series_points):
    sc = np.zeros(_kernel.NUM_SCALARS, np.int64)
    sc[_kernel.SER_STRIDE] = 1
    none = np.zeros(0, np.int64)
    return dict(
        pcode=enc.code, pints=enc.int_params, pfloats=enc.float_params, bkey=budget_key,
        memory=memory, evict_to=enc.evict_to, warmup=warmup, sc=sc, fsc=np.zeros(1),
        r_point=none, r_lower=none, r_upper=none,
        heap_key=np.zeros(1024, np.int64), heap_idx=np.zeros(1024, np.int64),
        stack_idx=np.zeros(1024, np.int64), stack_stamp=np.zeros(1024, np.int64),
        dq=np.zeros((groups, 1024), np.int64), dq_head=np.zeros(groups, np.int64),
        dq_len=np.zeros(groups, np.int64), series=np.zeros((3, max(series_points, 1)), np.int64),
    )


def _stats(sc, fsc) -> SlotStats:
    k = _kernel
    return SlotStats(
        measured_slots=int(sc[k.MEASURED]), kv_sum=int(sc[k.KV_SUM]), kv_sq_sum=float(fsc[0]),
        kv_max=int(sc[k.KV_MAX]), kv_high_slots=int(sc[k.KV_HIGH]),
        overflow_slots=int(sc[k.OVERFLOW_MEASURED]), queue_sum=int(sc[k.Q_SUM]),
        queue_max=int(sc[k.Q_MAX]), active_sum=int(sc[k.A_SUM]), active_max=int(sc[k.A_MAX]),
    )


def run_fast(requests: Requests, enc: EncodedPolicy, memory: int, horizon: int | None,
             budget_key: np.ndarray, warmup: int = 0, series_points: int = 100_000,
             predicted=None) -> RawRun:
    """The event-driven kernel on a batch of requests (``predicted``: PredictedLengths)."""
    n = len(requests)
    arrays = requests._arrays
    arrival = arrays["arrival"]
    if _is_sorted(arrival):
        order = np.zeros(0, np.int64)  # the kernel reads the input in place
        burst = _max_burst(arrival)
    else:
        order = np.lexsort((np.arange(n), arrival)).astype(np.int64)
        burst = _max_burst(arrival[order])
    groups = max(requests.num_classes, len(enc.int_params)) if enc.groups_by_class else 1
    points = series_points if horizon is None else max(1, min(series_points, horizon))
    st = _common_state(enc, memory, warmup, groups, budget_key, points)
    st.update(_empty_stream_inputs())
    st.update(
        r_arrival=arrival, r_prompt=arrays["prompt"], r_decode=arrays["decode"],
        r_group=arrays["class_id"], r_start=np.full(n, -1, np.int64),
        r_first=np.full(n, -1, np.int64), r_completion=np.full(n, -1, np.int64),
        r_evictions=np.zeros(n, np.int64), r_state=np.zeros(n, np.int8),
    )
    if predicted is not None:
        st.update(r_point=predicted.point, r_lower=predicted.lower, r_upper=predicted.upper)
    until_done = horizon is None
    _call(False, _NO_LIMIT if until_done else horizon, until_done, n, order, burst, st)
    sc = st["sc"]
    k = _kernel
    m = int(sc[k.SER_N])
    return RawRun(
        first_token=st["r_first"], start=st["r_start"], completion=st["r_completion"],
        evictions=st["r_evictions"], overflow_events=int(sc[k.OVERFLOWS]),
        evictions_total=int(sc[k.EVICTIONS]), bounces=int(sc[k.BOUNCES]),
        wasted_tokens=int(sc[k.WASTED]), decoded_tokens=int(sc[k.DECODED]),
        completed=int(sc[k.COMPLETED]), slots=int(sc[k.T]),
        waiting_at_end=int(sc[k.WAITING_N]), active_at_end=int(sc[k.N_ACT]),
        stats=_stats(sc, st["fsc"]), series_stride=int(sc[k.SER_STRIDE]),
        series_kv=st["series"][0, :m].copy(), series_queue=st["series"][1, :m].copy(),
        series_active=st["series"][2, :m].copy(),
    )


def simulate(requests: Requests, policy: Policy, memory: int, horizon: int | None = None,
             seed: int = 0, engine: str = "fast", warmup: int = 0,
             series_points: int = 100_000) -> SimulationResult:
    """Simulate a batch of requests under a policy with KV capacity ``memory`` (M tokens).

    Parameters
    ----------
    requests : the requests (arrival slot, prompt and decode lengths, class).
    policy : FlowControl, ClassBudgets, Greedy or Conservative.
    memory : M, KV-cache capacity in tokens.
    horizon : number of slots to simulate; None runs until every request completes.
    seed : root seed; the budget stream of FlowControl is spawned from it.
    engine : "fast" (event-driven numba kernel) or "reference" (plain slot by slot).
    warmup : slots excluded from the per-slot statistics and arrivals excluded from the
        per-request metrics.
    series_points : at most this many per-slot samples are kept (every slot while the run
        is shorter, then every 2nd, 4th, ... slot).

    A request with l + o > M is rejected before the run starts.
    """
    if not isinstance(requests, Requests):
        raise ValueError(f"requests must be a stability.Requests, got {type(requests).__name__}")
    policy = _check_policy(policy)
    memory = _check_int("memory", memory, 2)
    horizon = _check_int("horizon", horizon, 0, allow_none=True)
    warmup = _check_int("warmup", warmup, 0)
    series_points = _check_int("series_points", series_points, 1)
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    _, _, budget_key = seed_streams(seed)
    requests.check_fits(memory)
    enc = policy.encode(memory, requests.num_classes)
    predicted = None
    if enc.predictions is not None:  # capped at M - l: every request satisfies l + o <= M
        predicted = enc.predictions.draw(requests.decode, seed).capped(memory - requests.prompt)
    if horizon is None:
        _check_progress(requests, policy, memory, predicted)
    if engine == "fast":
        raw = run_fast(requests, enc, memory, horizon, budget_key, warmup, series_points,
                       predicted)
    else:
        a = requests._arrays
        raw = run_reference(a["arrival"], a["prompt"], a["decode"], a["class_id"], enc, memory,
                            -1 if horizon is None else horizon, budget_key, warmup,
                            predicted=predicted)
    info = RunInfo(policy=repr(policy), memory=memory, seed=int(seed), horizon=horizon,
                   warmup=warmup, engine=engine, version=result_version())
    return SimulationResult(requests=requests, raw=raw, info=info)


def simulate_stream(workload: Workload, policy: Policy, memory: int, slots: int, seed: int = 0,
                    warmup: int = 0, series_points: int = 10_000, progress: bool = False,
                    chunk_seconds: float = 1.0, stop: threading.Event | None = None
                    ) -> StreamResult:
    """Stream ``slots`` slots of a workload, drawing arrivals inside the kernel.

    Memory stays proportional to the waiting and active requests; latency and TTFT
    quantiles are exact (integer histograms).  The arrivals are exactly those of
    ``workload.generate(slots, seed)``.  A request with l + o > M (possible only with an
    unbounded length law) is counted in ``rejected`` and not simulated.  Ctrl-C stops the
    run between chunks and returns what was simulated so far (``interrupted=True``); so
    does setting the ``stop`` event from another thread.
    """
    if not isinstance(workload, Workload):
        raise ValueError(f"workload must be a stability.Workload, got {type(workload).__name__}")
    policy = _check_policy(policy)
    memory = _check_int("memory", memory, 2)
    slots = _check_int("slots", slots, 0)
    warmup = _check_int("warmup", warmup, 0)
    series_points = _check_int("series_points", series_points, 1)
    arrival_state, length_state, budget_key = seed_streams(seed)
    enc_w = encode_workload(workload)
    k = workload.num_classes
    enc = policy.encode(memory, k)
    if enc.predictions is not None:
        raise ValueError(f"policy {policy!r} uses predicted lengths, which the streaming "
                         "engine does not draw; use simulate on workload.generate(...)")
    groups = max(k, len(enc.int_params)) if enc.groups_by_class else 1
    st = _common_state(enc, memory, warmup, groups, budget_key, series_points)
    pool = 1024
    # P(Poisson(lambda) > lambda + 12 sqrt(lambda) + 30) < 1e-30: room for any slot's arrivals
    burst = int(math.ceil(enc_w.total_rate + 12.0 * math.sqrt(enc_w.total_rate) + 30.0))
    st.update(
        total_rate=enc_w.total_rate, class_cdf=enc_w.class_cdf, law_offset=enc_w.law_offset,
        law_data=enc_w.law_data, rng=np.concatenate([arrival_state, length_state]),
        scratch=np.zeros((3, burst), np.int64),
        free_list=np.arange(pool - 1, -1, -1, dtype=np.int64),
        lat_hist=np.zeros((k, 1024), np.int64), ttft_hist=np.zeros((k, 1024), np.int64),
        class_acc=np.zeros((k, _kernel.NUM_CLASS_COLUMNS), np.int64),
        r_arrival=np.zeros(pool, np.int64), r_prompt=np.zeros(pool, np.int64),
        r_decode=np.zeros(pool, np.int64), r_group=np.zeros(pool, np.int64),
        r_rank=np.zeros(pool, np.int64), r_start=np.zeros(pool, np.int64),
        r_first=np.zeros(pool, np.int64), r_completion=np.zeros(0, np.int64),
        r_evictions=np.zeros(pool, np.int64), r_state=np.zeros(pool, np.int8),
    )
    sc = st["sc"]
    sc[_kernel.FREE_N] = pool
    order = np.zeros(0, np.int64)
    if enc_w.total_rate > 0:  # the first slot holding arrivals, as in Workload.generate
        gap, count = draw_next_slot(st["rng"], enc_w.total_rate, enc_w.class_cdf,
                                    enc_w.law_offset, enc_w.law_data, st["scratch"])
        if count > burst:
            raise RuntimeError("the first slot drew more arrivals than the scratch bound")
        sc[_kernel.NEXT_ARRIVAL] = gap - 1
        sc[_kernel.PENDING_N] = count
    else:
        sc[_kernel.NEXT_ARRIVAL] = _NO_LIMIT
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=slots, unit="slot", unit_scale=True, mininterval=0.5)
    interrupted = False
    began = time.perf_counter()
    step = 4096
    try:
        while sc[_kernel.T] < slots:
            if stop is not None and stop.is_set():
                interrupted = True
                break
            t0 = time.perf_counter()
            before = int(sc[_kernel.T])
            chunk_end = min(slots, before + step)
            _size_histograms(st, before, chunk_end)
            _call(True, chunk_end, False, 0, order, burst, st)
            elapsed = time.perf_counter() - t0
            if bar is not None:
                bar.update(int(sc[_kernel.T]) - before)
            # aim each chunk at about chunk_seconds so Ctrl-C and progress stay responsive
            step = int(min(max(step * min(4.0, chunk_seconds / max(elapsed, 1e-6)), 1024), 2**40))
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if bar is not None:
            bar.close()
    kk = _kernel
    m = int(sc[kk.SER_N])
    info = RunInfo(policy=repr(policy), memory=memory, seed=int(seed), horizon=slots,
                   warmup=warmup, engine="stream", version=result_version())
    return StreamResult(
        info=info, slots=int(sc[kk.T]), arrived=int(sc[kk.ARRIVED]),
        rejected=int(sc[kk.REJECTED]), overflow_events=int(sc[kk.OVERFLOWS]),
        evictions_total=int(sc[kk.EVICTIONS]), bounces=int(sc[kk.BOUNCES]),
        wasted_tokens=int(sc[kk.WASTED]), decoded_tokens=int(sc[kk.DECODED]),
        waiting_at_end=int(sc[kk.WAITING_N]), active_at_end=int(sc[kk.N_ACT]),
        stats=_stats(sc, st["fsc"]),
        series=Series(int(sc[kk.SER_STRIDE]), st["series"][0, :m].copy(),
                      st["series"][1, :m].copy(), st["series"][2, :m].copy()),
        latency_histogram=st["lat_hist"], ttft_histogram=st["ttft_hist"],
        class_totals=st["class_acc"].copy(), interrupted=interrupted,
        elapsed_seconds=time.perf_counter() - began,
    )


def replication_seeds(seed: int, replications: int) -> list[int]:
    """Independent 63-bit seeds for ``replications`` runs, spawned from ``seed``."""
    _check_int("seed", seed, 0)
    children = np.random.SeedSequence(int(seed)).spawn(replications)
    return [int(c.generate_state(1, np.uint64)[0] >> np.uint64(1)) for c in children]


def simulate_streams(workload: Workload, policy: Policy, memory: int, slots: int, seed: int = 0,
                     replications: int = 2, workers: int | None = None, warmup: int = 0,
                     progress: bool = False) -> StreamResult:
    """Independent streaming replications run side by side, pooled into one result.

    The kernels release the GIL, so ``workers`` threads use as many cores.  Replication r
    uses the r-th seed of ``replication_seeds(seed, replications)``; the pooled result sums
    counters, slot statistics and histograms, so its quantiles are the exact quantiles of
    all completed requests of all replications.  Ctrl-C stops every replication at its
    next chunk and pools what was simulated.
    """
    replications = _check_int("replications", replications, 1)
    workers = _check_int("workers", workers, 1, allow_none=True) or min(replications,
                                                                        os.cpu_count() or 1)
    seeds = replication_seeds(seed, replications)
    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(simulate_stream, workload, policy, memory, slots, seed=r_seed,
                               warmup=warmup, progress=progress and i == 0, stop=stop)
                   for i, r_seed in enumerate(seeds)]
        try:
            results = [f.result() for f in futures]
        except KeyboardInterrupt:
            stop.set()
            results = [f.result() for f in futures]
    return StreamResult.pooled(results, seed=int(seed))
