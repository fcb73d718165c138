"""``stability tune``: flow control's budget for a workload, found by simulation
(:mod:`stability.sweep.tune`; the theory's prediction is ``stability analyze``)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from stability import validation
from stability.cli.common import (CliError, _parser, add_workload_arguments,
                                  add_world_arguments, flag_value, run_into_store,
                                  workload_spec, world_from_args)
from stability.store import ResultStore
from stability.sweep import WorldSpec
from stability.sweep.tune import FAMILIES, TUNE_SEED, tune_grid

HELP = ("find a budget by simulation: a grid of budgets on tuning seeds, with confidence "
        "intervals (resumable)")


def _multipliers(text: str) -> tuple:
    values = []
    for part in text.split(","):
        try:
            values.append(math.inf if part.strip() == "inf" else float(part))
        except ValueError:
            raise ValueError(f"{part!r} is not a number (give e.g. 1.05,1.1,1.2)") from None
        if not values[-1] > 0:
            raise ValueError(f"each must be > 0, got {part!r}")
    return tuple(values)


def add_arguments(parser) -> None:
    add_workload_arguments(parser)
    parser.add_argument("--memory", type=int, required=True, help="KV capacity M, tokens")
    parser.add_argument("--policy", choices=FAMILIES, default="flow",
                        help="flow: Alg. 2 (two-point budget law); flow-checked: the same rate "
                             "with Greedy's memory test, its grid ending with Greedy (b = inf)")
    parser.add_argument("--multipliers", type=_parser("--multipliers", _multipliers),
                        default=None,
                        help="budgets as multiples of the arrival rate, comma separated "
                             "('inf': Greedy, flow-checked only; default "
                             "1.02,1.05,1.1,1.2,1.4,1.7,2.2,3.0)")
    parser.add_argument("--slots", type=int, default=20_000, help="slots per run (the first "
                                                                  "quarter is warmup)")
    parser.add_argument("--replications", type=int, default=4, help="runs per budget")
    parser.add_argument("--seed", type=int, default=TUNE_SEED,
                        help="root seed of the tuning runs: report your numbers on others")
    parser.add_argument("--db", metavar="PATH", default=None,
                        help="results store (SQLite, resumable; default "
                             "results/tune-<policy>.sqlite)")
    parser.add_argument("--workers", type=int, default=None,
                        help="worker processes (default: every core)")
    add_world_arguments(parser, clock=False)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _fmt(x: float) -> str:
    return "nan" if x != x else f"{x:.4g}"


def run(args) -> int:
    if args.trace:
        raise CliError("--trace: tune draws arrivals from a workload; give --workload "
                       "azure-conv or azure-code for the trace's lengths")
    spec = workload_spec(args)
    flag_value(validation.integer, args.slots, "--slots", 4)
    flag_value(validation.integer, args.replications, "--replications", 2)
    flag_value(validation.seed, args.seed, "--seed")
    if args.workers is not None:
        flag_value(validation.integer, args.workers, "--workers", 1)
    if args.multipliers and args.policy == "flow" and math.inf in args.multipliers:
        raise CliError("--multipliers: inf (Greedy) belongs to --policy flow-checked")
    db = Path(args.db) if args.db else Path("results") / f"tune-{args.policy}.sqlite"
    db.parent.mkdir(parents=True, exist_ok=True)
    if db.exists():
        ResultStore(db).close()  # refuse a file that is not a results store, before running
    world = WorldSpec(**world_from_args(args))
    result, status = run_into_store(
        lambda: tune_grid(spec, args.memory, db, args.policy, world, args.slots,
                          args.replications, args.seed, args.multipliers,
                          workers=args.workers, progress=False if args.quiet else None), db)
    if status is not None:
        return status
    if args.json:
        print(json.dumps(dict(result.to_dict(), store=str(db)), indent=1))
        return 0
    print(f"{args.policy} budgets for {spec.canonical()} at M = {args.memory} "
          f"(lambda = {result.total_rate:.4g} per slot; {args.replications} x {args.slots} "
          f"slots per budget, seed {args.seed}; store {db})")
    rows = [("b / lambda", "budget", "in system [95% CI]", "latency", "p95", "waste",
             "overflow/slot", "")]
    for p in result.points:
        mean, low, high = p.in_system
        rows.append((_fmt(p.multiplier),
                     "greedy" if p.spec["kind"] == "greedy" else _fmt(p.spec["budget"]),
                     f"{_fmt(mean)} [{_fmt(low)}, {_fmt(high)}]", _fmt(p.latency_mean),
                     _fmt(p.latency_p95), f"{p.waste_share:.2%}", _fmt(p.overflow_rate),
                     "<- best" if p is result.best else ""))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.rjust(w) if i < 7 else c for i, (c, w) in enumerate(zip(r, widths)))
              .rstrip())
    sys.stdout.flush()
    return 0
