"""Run every experiment, draw every figure and write VERIFICATION.md.

``stability reproduce [--quick] [--output DIR] [--only NAME,...] [--workers N] [--quiet]``
(also ``python -m experiments``).  Results are cached under ``DIR/cache/<mode>/`` (SQLite
stores of scalar runs, JSON summaries, ``.npz`` series), so running again only plots.
VERIFICATION.md is built from the cached results of every experiment of the mode, so
``--only`` refreshes some experiments and keeps the rows of the others.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from pathlib import Path

from experiments import EXPERIMENTS
from experiments.common import (
    CHECK_LEVEL,
    LEVEL,
    Context,
    InlineExecutor,
    ProgressExecutor,
    read_results,
    versions,
)

BUDGET_NOTES = {
    "smoke": "smoke test budget (CI only; numbers are not meaningful)",
    "quick": "quick budget (minutes; short runs, few replications)",
    "full": "full budget (publication quality)",
}


def default_output() -> Path:
    """``paper_figures/output`` of the source checkout, else of the working directory."""
    root = Path(__file__).resolve().parents[1]
    if (root / "pyproject.toml").is_file() and (root / "paper_figures").is_dir():
        return root / "paper_figures" / "output"
    return Path.cwd() / "paper_figures" / "output"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help="small budgets: every figure and row in a few minutes")
    parser.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--output", metavar="DIR", default=None,
                        help="where figures and VERIFICATION.md go (default "
                             "paper_figures/output); results are cached in DIR/cache/<mode>")
    parser.add_argument("--only", metavar="NAME,...", default=None,
                        help=f"run only these experiments ({', '.join(EXPERIMENTS)})")
    parser.add_argument("--workers", type=int, default=None,
                        help="worker processes for the simulation grids (default: every core)")
    parser.add_argument("--quiet", action="store_true", help="no progress messages")


def _warm_up_kernels(ctx: Context) -> None:
    """Compile (or load) the numba kernels once here, before the worker processes start,
    so that they find them in the cache instead of compiling side by side."""
    import stability as s

    began = time.perf_counter()
    workload = s.Workload.paper_4_1(1.0)
    requests = workload.generate(50, 0)
    for policy in (s.FlowControl(3), s.FlowControl(3.5, "two-point"), s.ClassBudgets((1, 1, 1)),
                   s.Greedy(), s.Conservative(60)):
        s.simulate(requests, policy, 16492, horizon=50, seed=0)
        s.simulate_stream(workload, policy, 16492, slots=50, seed=0)
    ctx.log(f"kernels ready ({time.perf_counter() - began:.1f} s)")


def run(mode: str = "quick", output=None, only=None, workers: int | None = None,
        quiet: bool = False) -> dict:
    """Compute the selected experiments, plot their figures, write VERIFICATION.md.

    Returns {"verification": path, "rows": [Check], "seconds": wall time}.
    """
    from stability.sweep import local_executor

    if mode not in ("smoke", "quick", "full"):
        raise ValueError(f"mode must be smoke, quick or full, got {mode!r}")
    names = list(EXPERIMENTS)
    if only:
        names = [n.strip() for n in only.split(",") if n.strip()]
        unknown = [n for n in names if n not in EXPERIMENTS]
        if unknown or not names:
            raise ValueError(f"--only: unknown experiment {', '.join(unknown) or '(none)'}; "
                             f"choose from {', '.join(EXPERIMENTS)}")
    if workers is None:
        workers = os.cpu_count() or 1
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"--workers must be an integer >= 1, got {workers!r}")
    output = Path(output) if output is not None else default_output()
    cache = output / "cache" / mode
    _check_writable(output)
    cache.mkdir(parents=True, exist_ok=True)
    ctx = Context(mode=mode, output=output, cache=cache, workers=workers, quiet=quiet)
    ctx.log(f"stability reproduce: mode {mode}, experiments {', '.join(names)}, "
            f"{workers} workers, output {output}")
    _warm_up_kernels(ctx)
    timings = _read_timings(cache)
    # every task an experiment submits is counted, so long experiments report progress
    ctx.executor = ProgressExecutor(local_executor(workers) if workers > 1
                                    else InlineExecutor(), ctx)
    try:
        for name in names:
            module = importlib.import_module(f"experiments.{name}")
            began = time.perf_counter()
            ctx.log(f"{name}: computing ({module.TITLE})")
            ctx.executor.experiment(name)
            module.compute(ctx)
            spent = time.perf_counter() - began
            figure = importlib.import_module(f"paper_figures.{module.FIGURE}")
            paths = figure.main(cache, output)
            timings[name] = {"compute_seconds": spent,
                             "plot_seconds": time.perf_counter() - began - spent}
            ctx.log(f"{name}: done in {time.perf_counter() - began:.1f} s -> "
                    f"{', '.join(p.name for p in paths)}")
    finally:
        if ctx.executor is not None:
            ctx.executor.shutdown(wait=True, cancel_futures=True)
    seconds = time.perf_counter() - ctx.started
    timings["_last_invocation"] = {"experiments": names, "seconds": seconds}
    (cache / "timings.json").write_text(json.dumps(timings, indent=1))
    path, rows = write_verification(output, mode, timings)
    counts = {v: sum(r.verdict == v for r in rows) for v in ("PASS", "FAIL", "INCONCLUSIVE")}
    ctx.log(f"{path}: {len(rows)} rows: " + ", ".join(f"{n} {v}" for v, n in counts.items()))
    return {"verification": path, "rows": rows, "seconds": seconds}


def _check_writable(output: Path) -> None:
    """Refuse, before any work, an output directory that cannot be written."""
    probe = output
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise ValueError(f"--output {output}: {probe} is not a directory")
    if not os.access(probe, os.W_OK):
        try:
            read_only = bool(os.statvfs(probe).f_flag & os.ST_RDONLY)
        except (OSError, AttributeError):
            read_only = False
        why = "Read-only file system" if read_only else "not writable"
        raise ValueError(f"--output {output}: cannot write there ({probe}: {why}); choose "
                         "another directory with --output DIR")


def _read_timings(cache: Path) -> dict:
    try:
        return json.loads((cache / "timings.json").read_text())
    except (OSError, ValueError):
        return {}


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def collect_rows(cache: Path) -> tuple[list, dict]:
    """Verification rows of every experiment with cached results, and the results."""
    rows, found = [], {}
    for name in EXPERIMENTS:
        results = read_results(cache, name)
        if results is None:
            continue
        module = importlib.import_module(f"experiments.{name}")
        found[name] = results
        rows += module.verify(results)
    return rows, found


def row_id(experiment: str, number: int) -> str:
    """The stable name of an experiment's ``number``-th row: ``budget.3``."""
    return f"{experiment}.{number}"


def write_verification(output: Path, mode: str, timings: dict | None = None):
    """VERIFICATION.md in ``output`` from the cached results of ``mode``."""
    cache = Path(output) / "cache" / mode
    rows, found = collect_rows(cache)
    info = versions()
    counts = {v: sum(r.verdict == v for r in rows) for v in ("PASS", "FAIL", "INCONCLUSIVE")}
    command = "stability reproduce" + {"quick": " --quick", "smoke": " --smoke", "full": ""}[mode]
    commit = info.get("git_commit", "unknown")
    if info.get("git_dirty"):
        commit += " (with uncommitted changes)"
    lines = [
        "# Verification report",
        "",
        f"Generated by `{command}` on {time.strftime('%Y-%m-%d %H:%M %Z')} with stability "
        f"{info['stability']} (commit {commit}), Python {info['python']}, numpy {info['numpy']}, "
        f"scipy {info['scipy']}, numba {info['numba']}; {BUDGET_NOTES[mode]}.",
        "",
        "Each row is one claim of the paper (Dong & Cao, arXiv 2604.11001; *paper*), a theorem "
        "or bound as encoded in `stability.theory` (*theory*; the Alg. 2 overflow bound is our "
        "reconstruction of the paper's, docs/model.md section 3.2) or a claim of ours beyond "
        "the paper (*ours*). "
        "Intervals are two-sided Student-t intervals over independent replications, written "
        "`mean [low, high] (n=...)`: rows that test whether a theoretical value lies inside use "
        f"{CHECK_LEVEL:.0%} (Bonferroni-corrected when a row tests several), comparisons and "
        f"bounds use {LEVEL:.0%} unless the row states another level; every simulated "
        "interval is followed by its level. A rate of events that never happened is reported "
        "as an exact Poisson upper bound, not as an interval. Figures draw "
        f"{LEVEL:.0%} intervals. Verdicts: "
        "PASS (the criterion holds), FAIL (it does not: the claim is not reproduced at this "
        "budget), INCONCLUSIVE (this budget cannot decide; see the row). Rows are named "
        "`experiment.N` (N counts the experiment's own rows), so a row keeps its name "
        "whichever experiments a run included.",
        "",
        f"**Summary: {len(rows)} rows: {counts['PASS']} PASS, {counts['FAIL']} FAIL, "
        f"{counts['INCONCLUSIVE']} INCONCLUSIVE.**",
        "",
    ]
    for name, results in found.items():  # experiments that say what their results mean
        module = importlib.import_module(f"experiments.{name}")
        if hasattr(module, "overview"):
            lines += ["## What reproduces, where, and why", "", *module.overview(results), ""]
    if timings:
        spent = [f"{n} {t['compute_seconds'] + t['plot_seconds']:.0f} s" for n, t in
                 timings.items() if not n.startswith("_")]
        last = timings.get("_last_invocation")
        if last:
            lines += [f"Wall time of the last invocation ({', '.join(last['experiments'])}): "
                      f"{last['seconds']:.0f} s; per experiment (compute + plot, last run): "
                      f"{', '.join(spent)}.", ""]
    for name in EXPERIMENTS:
        module = importlib.import_module(f"experiments.{name}")
        lines += [f"## {module.TITLE}", ""]
        if name not in found:
            lines += [f"Not run in this mode yet (`{command} --only {name}`).", ""]
            continue
        lines += [f"Figure: `{module.FIGURE}.png` / `.pdf`. Results: `cache/{mode}/{name}.json`.",
                  "", "| row | claim | source | theory | simulation | criterion | verdict |",
                  "|---|---|---|---|---|---|---|"]
        for number, r in enumerate((r for r in rows if r.experiment == name), 1):
            lines.append(f"| {row_id(name, number)} | {_cell(r.claim)} | {r.source} | "
                         f"{_cell(r.theory)} | {_cell(r.simulation)} | {_cell(r.criterion)} | "
                         f"**{r.verdict}** |")
        lines.append("")
    path = Path(output) / "VERIFICATION.md"
    path.write_text("\n".join(lines))
    return path, rows


def run_command(args) -> int:
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    out = run(mode, args.output, args.only, args.workers, args.quiet)
    rows = out["rows"]
    counts = {v: sum(r.verdict == v for r in rows) for v in ("PASS", "FAIL", "INCONCLUSIVE")}
    print(f"{out['verification']}: {len(rows)} rows, {counts['PASS']} PASS, {counts['FAIL']} "
          f"FAIL, {counts['INCONCLUSIVE']} INCONCLUSIVE ({out['seconds']:.0f} s)")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments",
                                     description="Run every experiment, figure and check.")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_command(args)
    except ValueError as err:
        print(f"experiments: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"experiments: error: {err.filename or ''}: {err.strerror or err}", file=sys.stderr)
        return 2
