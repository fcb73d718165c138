"""The simulation API: validate, seed, resolve the world, call an engine, wrap the result.

Before a run allocates anything its size is checked against the memory available now
(:func:`check_batch_size`, and the checks of ``simulate`` and ``simulate_stream``), so a
run that cannot fit fails at once with a message saying what fits.  A streaming run
whose projected time exceeds :data:`LONG_RUN_SECONDS` says so on the ``stability``
logger (stderr by default) and reports its progress.
"""

from __future__ import annotations

import logging
import math
import os
import sys
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
from stability.workload.poisson import GENERATED_BYTES

__all__ = ["simulate", "simulate_stream", "simulate_streams", "replication_seeds",
           "resolve_world", "check_batch_size", "check_stream_size", "BATCH_RUN_BYTES",
           "LONG_RUN_SECONDS"]

ENGINES = ("fast", "reference")

BATCH_RUN_BYTES = 80
"""Bytes a batch run allocates per request beyond its inputs: the kernel's outputs (first
token, start, completion, evictions: 32) and the metrics' working arrays (about 48,
measured).  A run whose queue grows needs more (a pool entry of 136 bytes per waiting
request); that part cannot be known in advance and fails with a MemoryError that says so."""

STREAM_SLOT_BYTES = 200
"""Bytes a streaming run needs per request of its busiest slot: the arrival scratch (24)
and a pool entry with its queue and free-list slots (about 176)."""

LONG_RUN_SECONDS = 30.0
"""A streaming run projected to take longer than this announces its estimate and shows
its progress (``progress=None``)."""

_CHUNK_SLOTS = 2**20
"""Most slots per kernel call of a stream: its latency histograms are sized for every
completion a call may record, so this bounds them (and keeps Ctrl-C responsive)."""

_log = logging.getLogger("stability")


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
    horizon = validation.slots(horizon, "horizon", allow_none=True)
    warmup = _check_warmup(validation.integer("warmup", warmup, 0), horizon, "horizon")
    series_points = validation.integer("series_points", series_points, 1)
    seed = validation.seed(seed)
    validation.choice("engine", engine, ENGINES)
    world, names = resolve_world(policy, eviction, requeue, block_size, clock)
    requests.check_fits(memory, world.block)
    validation.allocation(f"simulating {len(requests)} requests", len(requests),
                          BATCH_RUN_BYTES + (24 if world.clock is not None else 0), "request",
                          "simulate fewer requests, or stream a workload (simulate_stream, "
                          "--stream), whose memory does not grow with the horizon")
    arrival_tick = None
    if world.clock is not None:
        if requests.arrival_time is None:
            raise ValueError(f"clock {names['clock']} needs arrival times in seconds: give "
                             "Requests(..., arrival_time=...) (traces and "
                             "Workload.generate_timed do)")
        arrival_tick = requests.arrival_ticks(world.clock.tick)
    _, _, budget_key = seed_streams(seed)
    enc = policy.encode(memory, requests.num_classes)
    enc.params[0]["key0"], enc.params[0]["key1"] = budget_key
    predicted = None
    if enc.predictions is not None:  # capped at M - l: every request satisfies l + o <= M
        predicted = enc.predictions.draw(requests.decode, seed).capped(memory - requests.prompt)
    if horizon is None and len(requests):
        policy.check_progress(requests, memory, predicted, block=world.block)
    a = requests._arrays
    supervisor = policy.supervisor(requests, memory, world, seed)
    try:
        if engine == "fast":
            raw = run_batch(a["arrival"], a["prompt"], a["decode"], a["class_id"], enc,
                            memory, horizon, warmup, world, series_points, arrival_tick,
                            predicted, supervisor)
        else:
            raw = run_reference(a["arrival"], a["prompt"], a["decode"], a["class_id"], enc,
                                memory, -1 if horizon is None else horizon, warmup, world,
                                arrival_tick=arrival_tick, predicted=predicted,
                                supervisor=supervisor)
    except MemoryError:
        raise MemoryError(f"out of memory while simulating {len(requests)} requests: the "
                          "waiting queue outgrew the memory available (is the system "
                          "overloaded?); simulate a shorter horizon") from None
    info = RunInfo(policy=repr(policy), memory=memory, seed=seed, horizon=horizon,
                   warmup=warmup, engine=engine, version=result_version(), **names)
    return SimulationResult(requests=requests, raw=raw, info=info)


def _check_warmup(warmup: int, horizon: int | None, name: str) -> int:
    """A warm-up must leave at least one measured slot."""
    if warmup > 0 and horizon is not None and warmup >= horizon:
        raise ValueError(f"warmup must be smaller than {name} = {horizon} (every slot would "
                         f"be left out of the metrics), got {warmup}")
    return warmup


def check_batch_size(workload: Workload, slots: int) -> None:
    """Raise ValueError, before anything is allocated, if ``simulate`` on
    ``workload.generate(slots)`` would not fit in the memory available now.

    It counts :data:`~stability.workload.poisson.GENERATED_BYTES` +
    :data:`BATCH_RUN_BYTES` per expected request and says how many slots fit.
    """
    slots = validation.slots(slots)
    validation.allocation(
        f"a batch run of {slots} slots at {workload.total_rate:g} arrivals per slot",
        workload.expected_requests(slots), GENERATED_BYTES + BATCH_RUN_BYTES, "request",
        lambda fit: (f"at this rate about {workload.slots_for(fit):.3g} slots fit; longer "
                     "runs: simulate_stream (--stream, engine = \"stream\"), whose memory "
                     "does not grow with the slots") if workload.slots_for(fit) >= 1 else
        "not even one slot fits at this rate: lower the rate")


def _check_stream_workload(workload: Workload, memory: int, block: int) -> None:
    """Refuse what a stream cannot simulate: a bounded length law that draws requests
    longer than M (the batch engine refuses those requests too), or a slot whose arrivals
    alone would not fit in memory."""
    for k, c in enumerate(workload.classes):
        longest = c.prompt.max_value + c.decode.max_value
        if not math.isfinite(longest):
            continue  # unbounded: such requests are counted in ``rejected``
        need = -(-int(longest) // block) * block
        if need > memory:
            blocks = f" ({need} in blocks of {block} tokens)" if block > 1 else ""
            raise ValueError(
                f"class {k} draws requests with l + o up to {int(longest)}{blocks}, more than "
                f"the KV capacity M={memory}; they could never complete (the batch engine "
                f"refuses them too): give memory >= {need} or shorter length laws")
    check_stream_size(workload)


def check_stream_size(workload: Workload) -> None:
    """Raise ValueError if the busiest slot a stream of ``workload`` must make room for
    (:data:`STREAM_SLOT_BYTES` per arrival) would not fit in the memory available now."""
    rate = workload.total_rate
    burst = rate + 12.0 * math.sqrt(rate) + 30.0
    validation.allocation(f"a stream at {rate:g} arrivals per slot (room for one slot's "
                          "arrivals)", burst, STREAM_SLOT_BYTES, "request",
                          "lower the arrival rate")


def _duration(seconds: float) -> str:
    """``seconds`` in the largest unit that keeps it readable (``3.2 h``, ``2.4 years``)."""
    for unit, size in (("years", 365.25 * 86400), ("days", 86400), ("h", 3600),
                       ("min", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.3g} s"


class _Progress:
    """Progress of a streaming run: a tqdm bar when asked (``True``), nothing
    (``False``), or (``None``) an estimate once the run proves long, then a bar on a
    terminal or a line every minute elsewhere.  In a worker process (a sweep's pool)
    ``None`` means nothing: the process that started it reports."""

    EVERY = 60.0

    def __init__(self, mode, slots: int, label: str):
        import multiprocessing

        if mode is None and multiprocessing.parent_process() is not None:
            mode = False
        self.mode, self.slots, self.label = mode, slots, label
        self.bar = None
        self.decided = mode is not None
        self.next_line = None
        self.first = None  # (time, slots) after the first chunk
        self.began = time.perf_counter()
        if mode:
            self._open_bar(0)

    def _open_bar(self, done: int) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=self.slots, initial=done, unit="slot", unit_scale=True,
                        mininterval=0.5, desc=self.label or None, file=sys.stderr)

    def update(self, done: int, advanced: int) -> None:
        now = time.perf_counter()
        if self.bar is not None:
            self.bar.update(advanced)
        if self.first is None:  # the first chunk includes compiling the kernel: not timed
            self.first = (now, done)
            return
        t1, d1 = self.first
        spent = now - t1
        speed = (done - d1) / spent if spent > 0 else math.inf
        left = (self.slots - done) / speed if speed > 0 else math.inf
        if not self.decided and (spent >= 1.0 or done >= self.slots):
            self.decided = True
            if left > LONG_RUN_SECONDS:
                _log.warning("%s%d slots at %.3g slots/s (measured over %.1f s): about %s; "
                             "Ctrl-C stops the run and reports the slots simulated so far",
                             f"{self.label}: " if self.label else "", self.slots, speed,
                             spent, _duration(left))
                if sys.stderr.isatty():
                    self._open_bar(done)
                else:
                    self.next_line = now + self.EVERY
        if self.next_line is not None and now >= self.next_line:
            self.next_line = now + self.EVERY
            _log.warning("%s%d of %d slots (%.3g%%), %s so far, about %s left",
                         f"{self.label}: " if self.label else "", done, self.slots,
                         100.0 * done / max(self.slots, 1), _duration(now - self.began),
                         _duration(left))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def simulate_stream(workload: Workload, policy: Policy, memory: int, slots: int, seed: int = 0,
                    warmup: int = 0, series_points: int = 10_000,
                    progress: bool | None = None, chunk_seconds: float = 1.0,
                    stop: threading.Event | None = None, eviction: str | None = None,
                    requeue: str | None = None, block_size: int | None = None,
                    label: str = "") -> StreamResult:
    """Stream ``slots`` slots of a workload, drawing arrivals inside the kernel.

    Memory stays proportional to the waiting and active requests; latency and TTFT
    quantiles are exact (integer histograms).  The arrivals are exactly those of
    ``workload.generate(slots, seed)``.  A request with l + o > M (possible only with an
    unbounded length law; a bounded law that can draw one is refused) is counted in
    ``rejected`` and not simulated.  Ctrl-C stops the run between chunks and returns what
    was simulated so far (``interrupted=True``); so does setting the ``stop`` event from
    another thread.

    Parameters
    ----------
    progress : bool or None
        True: a progress bar on stderr; False: nothing; None (default): once the first
        second projects more than :data:`LONG_RUN_SECONDS`, the estimate goes to the
        ``stability`` logger, followed by a bar (terminal) or a line a minute.
    label : str
        Prefix of the progress messages (e.g. "replication 1 of 2").
    """
    if not isinstance(workload, Workload):
        raise ValueError(f"workload must be a stability.Workload, got {type(workload).__name__}")
    policy = _check_policy(policy)
    if type(policy).supervisor is not Policy.supervisor:
        raise ValueError(f"policy {policy.kind!r} chooses its budget from the requests it "
                         "has seen, which a stream does not keep: simulate a batch "
                         "(simulate, or the command line without --stream)")
    memory = validation.memory(memory)
    slots = validation.slots(slots)
    warmup = _check_warmup(validation.integer("warmup", warmup, 0), slots, "slots")
    series_points = validation.integer("series_points", series_points, 1)
    seed = validation.seed(seed)
    world, names = resolve_world(policy, eviction, requeue, block_size)
    _check_stream_workload(workload, memory, world.block)
    arrival_state, length_state, budget_key = seed_streams(seed)
    k = workload.num_classes
    enc = policy.encode(memory, k)
    enc.params[0]["key0"], enc.params[0]["key1"] = budget_key
    if enc.predictions is not None:
        raise ValueError(f"policy {policy!r} uses predicted lengths, which the streaming "
                         "engine does not draw; use simulate on workload.generate(...)")
    stream = Stream(workload.encode(), enc, memory, warmup, world,
                    np.concatenate([arrival_state, length_state]), k, series_points)
    report = _Progress(progress, slots, label)
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
            report.update(stream.slot, stream.slot - before)
            # aim each chunk at about chunk_seconds so Ctrl-C and progress stay responsive
            step = int(min(max(step * min(4.0, chunk_seconds / max(elapsed, 1e-6)), 1024),
                           _CHUNK_SLOTS))
    except KeyboardInterrupt:
        interrupted = True
    except MemoryError:
        raise MemoryError(f"out of memory after {stream.slot} of {slots} slots with "
                          f"{int(stream.counters['waiting_n'])} requests waiting: the queue "
                          "outgrew the memory available (is the system overloaded?); "
                          "simulate fewer slots") from None
    finally:
        report.close()
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
                     progress: bool | None = None, **world) -> StreamResult:
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
    label = f"replication 1 of {replications}" if replications > 1 else ""
    futures = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        try:  # Ctrl-C anywhere in here stops every replication at its next chunk
            # the first replication reports for all (they run side by side at the same pace)
            for i, r_seed in enumerate(seeds):
                futures.append(pool.submit(
                    simulate_stream, workload, policy, memory, slots, seed=r_seed,
                    warmup=warmup, progress=progress if i == 0 else False, stop=stop,
                    label=label, **world))
            results = [f.result() for f in futures]
        except KeyboardInterrupt:
            stop.set()
            results = [f.result() for f in futures]
            if not results:
                raise
    return StreamResult.pooled(results, seed=int(seed))

