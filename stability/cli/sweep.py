"""``stability sweep CONFIG.toml``: run (or continue) a sweep into its results store."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from stability import validation
from stability.cli.common import run_into_store
from stability.store import ResultStore
from stability.sweep import Sweep, load_config, run_sweep

HELP = "run a grid of simulations into a results store (resumable)"

CONNECT_SECONDS = 10
"""How long ``--dask ADDRESS`` waits for the scheduler to answer."""


def add_arguments(parser) -> None:
    """``stability sweep [--resume] CONFIG.toml``."""
    parser.add_argument("config", help="sweep config (TOML; see experiments/configs/"
                                       "example_sweep.toml)")
    parser.add_argument("--db", metavar="PATH",
                        help="results store (SQLite; default results/<name>.sqlite)")
    parser.add_argument("--resume", action="store_true",
                        help="continue in an existing store: needed when it holds runs of a "
                             "different configuration (they are kept; finished runs of this "
                             "one are skipped); refused if the store does not exist")
    parser.add_argument("--workers", type=int, default=None,
                        help="worker processes (default: every core)")
    parser.add_argument("--dask", metavar="ADDRESS",
                        help="run on Dask distributed: a scheduler address "
                             "(tcp://HOST:PORT) or 'local' for a LocalCluster on this machine")
    parser.add_argument("--quiet", action="store_true", help="no progress bar, no summary")


def _check_resume(db: Path, sweep: Sweep, resume: bool) -> None:
    """Refuse to mix configurations silently: running a config again continues it, but
    writing a different config into an existing store needs --resume."""
    if not db.exists():
        if resume:
            raise ValueError(f"--resume: {db} does not exist, so there is nothing to resume "
                             "(run without --resume to start the sweep)")
        return
    with ResultStore(db) as store:
        recorded = store.sweeps()
        runs = len(store)
    if resume or not recorded and not runs:
        return
    if sweep.fingerprint() not in {fp for _, fp, _, _, _ in recorded}:
        names = sorted({name for name, _, _, _, _ in recorded}) or ["(unknown)"]
        raise ValueError(f"{db} already holds {runs} runs of another sweep configuration "
                         f"({', '.join(names)}); pass --resume to add this configuration's "
                         "runs to it (finished runs are reused), or choose another --db")


def _executor_from_args(args):
    """(executor or None, closer): a Dask ClientExecutor for --dask, else None."""
    if not args.dask:
        return None, lambda: None
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ValueError("--dask needs the 'distributed' package (pip install "
                         "'stability[dask]')") from None
    if args.dask == "local":
        n = args.workers or os.cpu_count() or 1
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)

        def close():
            client.close()
            cluster.close()
    else:
        if args.workers is not None:
            raise ValueError("--workers applies to the local pool and --dask local; a Dask "
                             "scheduler's workers are set where they are started")
        try:
            client = Client(args.dask, timeout=CONNECT_SECONDS)
        except (OSError, TimeoutError, ValueError) as err:
            text = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise ValueError(f"--dask {args.dask}: cannot reach a Dask scheduler there within "
                             f"{CONNECT_SECONDS} s ({text}); start one with `dask scheduler` "
                             "or use --dask local") from None
        close = client.close
    return client.get_executor(), close


def run(args) -> int:
    """``stability sweep``: run (or continue) a sweep into its results store."""
    sweep = load_config(args.config)
    db = Path(args.db) if args.db else Path("results") / f"{sweep.name}.sqlite"
    if args.workers is not None:
        validation.integer("--workers", args.workers, 1)
    _check_resume(db, sweep, args.resume)
    executor, close = _executor_from_args(args)
    try:
        report, status = run_into_store(
            lambda: run_sweep(sweep, db, executor=executor, workers=args.workers,
                              progress=False if args.quiet else None), db)
    finally:
        close()
    if status is not None:
        return status
    if not args.quiet:
        print(f"sweep {sweep.name}: {report.total} runs, {report.skipped} already in {db}, "
              f"{report.added} new, {len(report.failed)} failed ({report.seconds:.1f} s)")
    if report.failed:
        task, error = report.failed[0]
        print(f"stability: error: {len(report.failed)} runs failed and were not stored; "
              f"first: {task.describe()}: {error}", file=sys.stderr)
        return 1
    return 0
