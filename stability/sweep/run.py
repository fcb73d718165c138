"""Running sweeps: every task on any ``concurrent.futures.Executor`` into the store.

Finished runs go to a :class:`stability.store.ResultStore` as they arrive, keyed by
:attr:`Task.key`, so a sweep run again (after Ctrl-C, a crash, or with more points) only
runs what is missing.  Results do not depend on the executor, the number of workers or
the order in which runs finish: every run is computed from its task alone and stored
under its key.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, Executor, wait
from dataclasses import dataclass

from stability import validation
from stability.provenance import result_version
from stability.simulate import simulate, simulate_stream
from stability.store import ResultStore, flatten_metrics
from stability.sweep.spec import Sweep, Task

__all__ = ["SweepReport", "SweepError", "run_task", "run_sweep", "local_executor"]


class SweepError(RuntimeError):
    """A sweep could not finish (failed runs, a dead worker); finished rows are saved."""


def run_task(task: Task) -> dict:
    """Run one task; returns its flat metrics, workload figures and wall time (seconds).

    Module-level and free of global state, so any executor (a process pool, Dask) can
    run it.
    """
    if task.version != result_version():
        raise RuntimeError(f"this worker runs stability {result_version()} but the task "
                           f"was made by {task.version}; install the same version everywhere")
    began = time.perf_counter()
    workload = task.workload.build(task.memory)
    policy = task.policy
    world = task.world.kwargs()
    total_rate = workload.total_rate
    if task.world.timed:  # the same fraction of the critical rate, per second
        from stability.theory.clocked import critical_rate_seconds

        clock = task.world.clock_object()
        crit = critical_rate_seconds(workload, task.memory, clock)
        total_rate = workload.total_rate * crit.per_second / crit.per_iteration
        requests = workload.with_total_rate(total_rate).generate_timed(
            task.slots * crit.iteration_seconds, task.seed)
        result = simulate(requests, policy, task.memory, horizon=task.slots, seed=task.seed,
                          warmup=task.warmup, clock=clock, **world)
        rejected = 0
    elif task.engine == "batch":
        requests = workload.generate(task.slots, task.seed)
        result = simulate(requests, policy, task.memory, horizon=task.slots, seed=task.seed,
                          warmup=task.warmup, **world)
        rejected = 0
    else:
        result = simulate_stream(workload, policy, task.memory, task.slots, seed=task.seed,
                                 warmup=task.warmup, progress=False, **world)
        if result.interrupted:
            raise RuntimeError("the streaming run was interrupted; it is not stored")
        rejected = result.rejected
    metrics = flatten_metrics(result.metrics())
    metrics["rejected"] = int(rejected)
    return {"metrics": metrics, "total_rate": total_rate,
            "offered_load": workload.mean_kv_load() / task.memory,
            "num_classes": workload.num_classes, "seconds": time.perf_counter() - began}


# ---------------------------------------------------------------------------- running
@dataclass(frozen=True)
class SweepReport:
    """What a call of :func:`run_sweep` did: runs in the sweep, already stored before,
    newly stored, failed (not stored; a re-run retries them), wall time."""

    total: int
    skipped: int
    added: int
    failed: tuple = ()
    seconds: float = 0.0


def _worker_init() -> None:
    """Pool workers leave Ctrl-C to the main process, and exit if it dies (so SIGKILL of
    the main process leaves no orphans behind)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()

    def watch():
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def local_executor(workers: int | None = None) -> Executor:
    """A process pool of ``workers`` processes (default: every core), 'spawn' start method
    (a fork of a process holding numba's threads is not safe)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    workers = (os.cpu_count() or 1) if workers is None else validation.integer("workers",
                                                                                 workers, 1)
    return ProcessPoolExecutor(max_workers=workers, initializer=_worker_init,
                               mp_context=multiprocessing.get_context("spawn"))


def _stop_local(executor: Executor) -> None:
    """Stop a pool we made now: cancel queued runs and end its worker processes."""
    executor.shutdown(wait=False, cancel_futures=True)
    processes = list((getattr(executor, "_processes", None) or {}).values())
    for proc in processes:
        if proc.is_alive():
            proc.terminate()
    for proc in processes:
        proc.join(timeout=5)


def run_sweep(sweep: Sweep, store, executor: Executor | None = None,
              workers: int | None = None, progress: bool | None = None,
              max_in_flight: int | None = None, on_result=None) -> SweepReport:
    """Run every task of ``sweep`` not yet in ``store`` and store each result as it arrives.

    Parameters
    ----------
    sweep : Sweep
        The sweep.
    store : ResultStore, str or pathlib.Path
        An open :class:`stability.store.ResultStore` or a path (created if missing).
    executor : Executor or None
        Any ``concurrent.futures.Executor`` (e.g. ``Client.get_executor()`` of Dask
        ``distributed``); None makes a local process pool of ``workers`` processes.
    progress : bool or None
        A tqdm bar on stderr (None: only when stderr is a terminal).
    max_in_flight : int or None
        Runs submitted ahead (default four per worker; 256 for an executor
        passed in), which bounds memory and the work lost to an interruption.
    on_result : callable or None
        Called with no argument after each run finishes (stored or failed), e.g. to
        report progress elsewhere.

    Runs that raise are reported in the result (and not stored); a dead worker
    (:class:`SweepError`) or an interruption stops the sweep with every finished row
    saved.  The local pool starts its workers with 'spawn', so a script calling this
    must guard its entry point with ``if __name__ == "__main__":`` (as for any
    multiprocessing or Dask LocalCluster program).
    """
    from tqdm import tqdm

    began = time.perf_counter()
    own_store = not isinstance(store, ResultStore)
    if own_store:
        store = ResultStore(store, create=True)
    try:
        store.record_sweep(sweep.name, sweep.fingerprint(), sweep.to_dict(), sweep.version)
        tasks = sweep.tasks()
        done = store.keys()
        todo = [t for t in tasks if t.key not in done]
        skipped = len(tasks) - len(todo)
        if not todo:
            return SweepReport(len(tasks), skipped, 0, (), time.perf_counter() - began)
        own_executor = executor is None
        if own_executor:
            workers = min((os.cpu_count() or 1) if workers is None else workers, len(todo))
            executor = local_executor(workers)
            max_in_flight = max_in_flight or 4 * workers
        max_in_flight = max_in_flight or 256
        if progress is None:
            progress = sys.stderr.isatty()
        bar = tqdm(total=len(todo), unit="run", desc=sweep.name, disable=not progress,
                   dynamic_ncols=True, smoothing=0.05, file=sys.stderr)
        added, failed = 0, []
        pending: dict = {}
        queue = iter(todo)
        clean = False
        try:
            while True:
                while len(pending) < max_in_flight:
                    task = next(queue, None)
                    if task is None:
                        break
                    pending[executor.submit(run_task, task)] = task
                if not pending:
                    break
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    task = pending.pop(future)
                    try:
                        out = future.result()
                    except BrokenExecutor:
                        raise
                    except Exception as err:  # a failing run must not stop the others
                        failed.append((task, f"{type(err).__name__}: {err}"))
                        if on_result is not None:
                            on_result()
                        continue
                    row = task.columns()
                    row.update(key=task.key, metrics=out["metrics"], seconds=out["seconds"],
                               total_rate=out["total_rate"], offered_load=out["offered_load"],
                               num_classes=out["num_classes"])
                    added += store.add(row)
                    bar.update(1)
                    if on_result is not None:
                        on_result()
            clean = True
        except BrokenExecutor as err:
            raise SweepError(
                f"a worker process died ({type(err).__name__}: {err}); {added} new runs were "
                f"saved in {store.path}; run the sweep again to resume") from None
        finally:
            bar.close()
            if own_executor:
                if clean:
                    executor.shutdown(wait=True)
                else:
                    _stop_local(executor)
            else:
                for future in pending:
                    future.cancel()
        return SweepReport(len(tasks), skipped, added, tuple(failed),
                           time.perf_counter() - began)
    finally:
        if own_store:
            store.close()


