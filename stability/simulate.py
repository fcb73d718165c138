"""The simulation API: validate, seed, resolve the world, call an engine, wrap the result."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from stability import validation
from stability.clock import Clock, Unit
from stability.engine.codes import EVICTION_RULES, REQUEUE_RULES
from stability.engine.generate import seed_streams
from stability.engine.reference import run_reference
from stability.engine.run import Stream, run_batch
from stability.engine.state import World
from stability.engine.raw import SlotStats
from stability.policies import Policy
from stability.provenance import result_version
from stability.result import RunInfo, Series, SimulationResult, StreamResult
from stability.workload import Requests, Workload

__all__ = ["simulate", "simulate_stream", "simulate_streams", "replication_seeds",
           "resolve_world"]

ENGINES = ("fast", "reference")


def _check_policy(policy) -> Policy:
    if not isinstance(policy, Policy):
        raise ValueError(f"policy must be a policy object (FlowControl, Greedy, ...), got "
                         f"{policy!r}")
    return policy


def resolve_world(policy: Policy, eviction=None, requeue=None, block_size=None,
                  clock=None) -> tuple[World, dict]:
    """The run's rules (docs/model.md 2.3): each argument, else the policy's default, else
    the model's (restart, arrival, 1, ``Unit()``).  Returns the engine's World and the
    resolved names for the record."""
    d = policy.world_defaults
    eviction = validation.choice("eviction", eviction or d.get("eviction", "restart"),
                                 EVICTION_RULES)
    requeue = validation.choice("requeue", requeue or d.get("requeue", "arrival"),
                                REQUEUE_RULES)
    block = validation.integer("block_size", d.get("block_size", 1) if block_size is None
                               else block_size, 1)
    clock = Unit() if clock is None else clock
    if not isinstance(clock, Clock):
        raise ValueError(f"clock must be a stability.clock.Clock (Unit(), Linear(...), "
                         f"jaillet(), ...), got {clock!r}")
    world = World(EVICTION_RULES[eviction], REQUEUE_RULES[requeue], block, clock.encode())
    return world, dict(eviction=eviction, requeue=requeue, block_size=block,
                       clock=clock.describe())


def simulate(requests: Requests, policy: Policy, memory: int, horizon: int | None = None,
             seed: int = 0, engine: str = "fast", warmup: int = 0,
             series_points: int = 100_000, eviction: str | None = None,
             requeue: str | None = None, block_size: int | None = None,
             clock: Clock | None = None) -> SimulationResult:
    """Simulate a batch of requests under a policy with KV capacity ``memory`` (M tokens).

    Parameters
    ----------
    requests : Requests
        Arrival slots (or, for a timed clock, arrival times in seconds), prompt and decode
        lengths, classes.
    policy : Policy
        ``FlowControl``, ``Greedy``, ``VLLM``, ... (``stability.policies``).
    memory : int
        M, KV-cache capacity in tokens.
    horizon : int or None
        Slots (iterations) to simulate; None runs until every request completes.
    seed : int
        Root seed; the budget stream and the predictions are spawned from it.
    engine : {"fast", "reference"}
        The event-driven numba kernel, or the plain slot-by-slot reference simulator.
    warmup : int
        Slots excluded from the slot statistics and throughputs; requests arriving before
        it are excluded from the per-request metrics.
    series_points : int
        At most this many per-slot samples are kept (every slot while the run is shorter,
        then every 2nd, 4th, ... slot).
    eviction : {"restart", "recompute"} or None
        What an evicted request keeps (docs/model.md 2.3); None: the policy's default
        (restart, or recompute for ``VLLM``).
    requeue : {"arrival", "front"} or None
        Where a removed request re-enters the queue; None: the policy's default.
    block_size : int or None
        KV is allocated in blocks of this many tokens; None: the policy's default (1).
    clock : Clock or None
        Iteration durations (``stability.clock``); None or ``Unit()``: one slot is one time
        unit and arrivals are slots.

    A request needing more than M tokens (l + o, in whole blocks) is rejected before the
    run starts.
    """
    if not isinstance(requests, Requests):
        raise ValueError(f"requests must be a stability.Requests, got {type(requests).__name__}")
    policy = _check_policy(policy)
    memory = validation.memory(memory)
    horizon = validation.integer("horizon", horizon, 0, allow_none=True)
    warmup = validation.integer("warmup", warmup, 0)
    series_points = validation.integer("series_points", series_points, 1)
    seed = validation.seed(seed)
    validation.choice("engine", engine, ENGINES)
    world, names = resolve_world(policy, eviction, requeue, block_size, clock)
    requests.check_fits(memory, world.block)
    arrival_tick = None
    if world.clock is not None:
        if requests.arrival_time is None:
            raise ValueError(f"clock {names['clock']} needs arrival times in seconds: give "
                             "Requests(..., arrival_time=...) (traces and "
                             "Workload.generate_timed do)")
        arrival_tick = np.rint(requests.arrival_time / world.clock.tick).astype(np.int64)
    _, _, budget_key = seed_streams(seed)
    enc = policy.encode(memory, requests.num_classes)
    enc.params[0]["key0"], enc.params[0]["key1"] = budget_key
    predicted = None
    if enc.predictions is not None:  # capped at M - l: every request satisfies l + o <= M
        predicted = enc.predictions.draw(requests.decode, seed).capped(memory - requests.prompt)
    if horizon is None and len(requests):
        policy.check_progress(requests, memory, predicted, block=world.block)
    a = requests._arrays
    if engine == "fast":
        raw = run_batch(a["arrival"], a["prompt"], a["decode"], a["class_id"], enc, memory,
                        horizon, warmup, world, series_points, arrival_tick, predicted)
    else:
        raw = run_reference(a["arrival"], a["prompt"], a["decode"], a["class_id"], enc, memory,
                            -1 if horizon is None else horizon, warmup, world,
                            arrival_tick=arrival_tick, predicted=predicted)
    info = RunInfo(policy=repr(policy), memory=memory, seed=seed, horizon=horizon,
                   warmup=warmup, engine=engine, version=result_version(), **names)
    return SimulationResult(requests=requests, raw=raw, info=info)


def simulate_stream(workload: Workload, policy: Policy, memory: int, slots: int, seed: int = 0,
                    warmup: int = 0, series_points: int = 10_000, progress: bool = False,
                    chunk_seconds: float = 1.0, stop: threading.Event | None = None,
                    eviction: str | None = None, requeue: str | None = None,
                    block_size: int | None = None) -> StreamResult:
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
    memory = validation.memory(memory)
    slots = validation.integer("slots", slots, 0)
    warmup = validation.integer("warmup", warmup, 0)
    series_points = validation.integer("series_points", series_points, 1)
    seed = validation.seed(seed)
    world, names = resolve_world(policy, eviction, requeue, block_size)
    arrival_state, length_state, budget_key = seed_streams(seed)
    k = workload.num_classes
    enc = policy.encode(memory, k)
    enc.params[0]["key0"], enc.params[0]["key1"] = budget_key
    if enc.predictions is not None:
        raise ValueError(f"policy {policy!r} uses predicted lengths, which the streaming "
                         "engine does not draw; use simulate on workload.generate(...)")
    stream = Stream(workload.encode(), enc, memory, warmup, world,
                    np.concatenate([arrival_state, length_state]), k, series_points)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=slots, unit="slot", unit_scale=True, mininterval=0.5)
    interrupted = False
    began = time.perf_counter()
    step = 4096
    try:
        while stream.slot < slots:
            if stop is not None and stop.is_set():
                interrupted = True
                break
            t0 = time.perf_counter()
            before = stream.slot
            stream.advance(min(slots, before + step))
            elapsed = time.perf_counter() - t0
            if bar is not None:
                bar.update(stream.slot - before)
            # aim each chunk at about chunk_seconds so Ctrl-C and progress stay responsive
            step = int(min(max(step * min(4.0, chunk_seconds / max(elapsed, 1e-6)), 1024), 2**40))
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if bar is not None:
            bar.close()
    c = stream.counters
    run = stream.run
    stride, kv, queue, active = run.series_arrays()
    info = RunInfo(policy=repr(policy), memory=memory, seed=seed, horizon=slots,
                   warmup=warmup, engine="stream", version=result_version(), **names)
    return StreamResult(
        info=info, slots=int(c["t"]), arrived=int(c["arrived"]), rejected=int(c["rejected"]),
        overflow_events=int(c["overflows"]), evictions_total=int(c["evictions"]),
        bounces=int(c["bounces"]), wasted_tokens=int(c["wasted"]),
        decoded_tokens=int(c["decoded"]), prefill_tokens=int(c["prefill_tokens"]),
        recomputed_tokens=int(c["recomputed"]),
        waiting_at_end=int(c["waiting_n"]),
        active_at_end=int(c["n_dec"]) + (1 if c["pre_idx"] >= 0 else 0),
        stats=SlotStats.from_counters(c), series=Series(stride, kv, queue, active),
        latency_histogram=run.hist.latency, ttft_histogram=run.hist.ttft,
        class_totals=run.hist.totals.copy(), interrupted=interrupted,
        elapsed_seconds=time.perf_counter() - began, control=stream.control,
    )


def replication_seeds(seed: int, replications: int) -> list[int]:
    """Independent 63-bit seeds for ``replications`` runs, spawned from ``seed``."""
    validation.seed(seed)
    children = np.random.SeedSequence(int(seed)).spawn(replications)
    return [int(c.generate_state(1, np.uint64)[0] >> np.uint64(1)) for c in children]


def simulate_streams(workload: Workload, policy: Policy, memory: int, slots: int, seed: int = 0,
                     replications: int = 2, workers: int | None = None, warmup: int = 0,
                     progress: bool = False, **world) -> StreamResult:
    """Independent streaming replications run side by side, pooled into one result.

    The kernels release the GIL, so ``workers`` threads use as many cores.  Replication r
    uses the r-th seed of ``replication_seeds(seed, replications)``; the pooled result sums
    counters, slot statistics and histograms, so its quantiles are the exact quantiles of
    all completed requests of all replications.  Ctrl-C stops every replication at its
    next chunk and pools what was simulated.  ``world`` takes ``simulate_stream``'s
    eviction, requeue and block_size.
    """
    replications = validation.integer("replications", replications, 1)
    workers = validation.integer("workers", workers, 1, allow_none=True) or min(
        replications, os.cpu_count() or 1)
    seeds = replication_seeds(seed, replications)
    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(simulate_stream, workload, policy, memory, slots, seed=r_seed,
                               warmup=warmup, progress=progress and i == 0, stop=stop, **world)
                   for i, r_seed in enumerate(seeds)]
        try:
            results = [f.result() for f in futures]
        except KeyboardInterrupt:
            stop.set()
            results = [f.result() for f in futures]
    return StreamResult.pooled(results, seed=int(seed))

