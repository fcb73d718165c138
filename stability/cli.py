"""The ``stability`` command line.

Each subcommand is a pair (add its arguments, run it) registered in ``COMMANDS``.  Bad
input prints one line ``stability: error: ...`` and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

from stability.policies import (
    MCSF,
    AMax,
    AMin,
    ClassBudgets,
    Conservative,
    FlowControl,
    Greedy,
    MCBenchmark,
    Policy,
)
from stability.jsonvalues import plain
from stability.predictions import Predictions
from stability.workload import (
    Deterministic,
    Geometric,
    LengthLaw,
    LogNormal,
    UniformInt,
    Workload,
)

WORKLOADS = ("paper-4.1", "synthetic", "azure-conv", "azure-code")
POLICIES = ("flow", "classes", "greedy", "conservative", "mcsf", "mc-benchmark", "amax", "amin")


class CliError(ValueError):
    """A usage error reported as one line."""


# ---------------------------------------------------------------------------- workloads
def parse_law(text: str, field: str) -> LengthLaw:
    """A length law from ``det:V``, ``geom:P``, ``geom-mean:MEAN``, ``uniform:LO:HI`` or
    ``lognormal:MEAN:MEDIAN:MAX``."""
    parts = text.split(":")
    kind, args = parts[0], parts[1:]
    try:
        if kind == "det" and len(args) == 1:
            return Deterministic(int(args[0]))
        if kind == "geom" and len(args) == 1:
            return Geometric(float(args[0]))
        if kind == "geom-mean" and len(args) == 1:
            return Geometric(1.0 / float(args[0]))
        if kind == "uniform" and len(args) == 2:
            return UniformInt(int(args[0]), int(args[1]))
        if kind == "lognormal" and len(args) == 3:
            return LogNormal.matching(float(args[0]), int(args[1]), int(args[2]))
    except (ValueError, ZeroDivisionError) as err:
        raise CliError(f"--{field} {text!r}: {err}") from None
    raise CliError(f"--{field} {text!r} is not a length law; use det:V, geom:P, geom-mean:MEAN, "
                   "uniform:LO:HI or lognormal:MEAN:MEDIAN:MAX")


def add_workload_arguments(parser: argparse.ArgumentParser) -> None:
    """The workload flags shared by ``simulate``, ``analyze`` and sweeps."""
    g = parser.add_argument_group("workload")
    g.add_argument("--workload", choices=WORKLOADS, default="paper-4.1",
                   help="paper-4.1: the three Section 4.1 classes (rate per class); synthetic: "
                        "one class with --prompt/--decode laws; azure-conv/azure-code: the "
                        "Azure trace lengths (synthetic stand-in if the trace is absent)")
    g.add_argument("--rate", type=float, help="Poisson arrivals per slot (per class for "
                                              "paper-4.1)")
    g.add_argument("--load", type=float,
                   help="instead of --rate: the fraction of the critical load M / E[w] "
                        "(Prop. 3.2), e.g. 0.9")
    g.add_argument("--prompt", default="det:10", help="prompt law for --workload synthetic")
    g.add_argument("--decode", default="geom-mean:40", help="decode law for --workload synthetic")
    g.add_argument("--trace", metavar="FILE",
                   help="a trace CSV (processed, Azure original or lengths only)")
    g.add_argument("--slot-seconds", type=float, default=None,
                   help="seconds per slot for timed traces (default 0.05)")
    g.add_argument("--time-scale", type=float, default=1.0,
                   help="stretch (>1) or compress (<1) trace time; load scales by 1/time-scale")


def workload_from_args(args) -> Workload:
    """The Workload the flags describe (a trace becomes its empirical lengths)."""
    from stability import traces

    if args.rate is not None and args.load is not None:
        raise CliError("give --rate or --load, not both")
    if args.trace:  # --load rescales below, so any base rate will do
        base = traces.trace_workload(
            args.trace, rate=1.0 if args.load is not None else args.rate,
            slot_seconds=args.slot_seconds or traces.DEFAULT_SLOT_SECONDS,
            time_scale=args.time_scale)
    elif args.workload == "paper-4.1":
        base = Workload.paper_4_1(rate=1.0 if args.rate is None else args.rate)
    elif args.workload == "synthetic":
        base = Workload.single(1.0 if args.rate is None else args.rate,
                               parse_law(args.prompt, "prompt"), parse_law(args.decode, "decode"))
    else:
        if args.rate is None and args.load is None:
            raise CliError(f"--workload {args.workload} needs --rate or --load")
        base = traces.azure_workload(args.workload.split("-", 1)[1], rate=args.rate or 1.0)
    if args.load is not None:
        memory = getattr(args, "memory", None)
        if memory is None:
            raise CliError("--load needs --memory")
        if not (math.isfinite(args.load) and args.load > 0):
            raise CliError(f"--load must be a number > 0, got {args.load}")
        base = base.scaled(args.load * memory / base.mean_kv_load())
    elif args.rate is None and args.workload != "paper-4.1" and not args.trace:
        raise CliError(f"--workload {args.workload} needs --rate or --load")
    return base


# ----------------------------------------------------------------------------- policies
def add_policy_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("policy")
    g.add_argument("--policy", choices=POLICIES, default="flow")
    g.add_argument("--budget", type=float, default=None,
                   help="FlowControl budget mean (activations per slot)")
    g.add_argument("--budget-law", choices=("deterministic", "poisson", "two-point"),
                   default=None, help="FlowControl budget law (default: deterministic for an "
                                      "integer budget, two-point otherwise)")
    g.add_argument("--budgets", default="4,4,4", help="ClassBudgets b_k, comma separated")
    g.add_argument("--watermark", type=float, default=0.0,
                   help="Greedy watermark alpha in [0, 1) (alpha-protection)")
    g.add_argument("--clearing", type=float, default=0.0,
                   help="Greedy beta-clearing: on overflow evict down to (1 - beta) M")
    g.add_argument("--predictions", default="exact",
                   help="length predictions for mcsf, mc-benchmark, amax, amin: exact, "
                        "noisy:SIGMA (lognormal factor) or interval:WIDTH")
    g.add_argument("--max-decode", type=int, default=None, help="Conservative reservation")


def parse_predictions(text: str) -> Predictions:
    """``exact``, ``noisy:SIGMA`` or ``interval:WIDTH``."""
    kind, _, value = text.partition(":")
    try:
        if kind == "exact" and not value:
            return Predictions()
        if kind == "noisy" and value:
            return Predictions.noisy(float(value))
        if kind == "interval" and value:
            return Predictions.interval(float(value))
    except ValueError as err:
        raise CliError(f"--predictions {text!r}: {err}") from None
    raise CliError(f"--predictions {text!r} must be exact, noisy:SIGMA or interval:WIDTH")


def policy_from_args(args) -> Policy:
    if args.policy == "flow":
        if args.budget is None:
            raise CliError("--policy flow needs --budget")
        law = args.budget_law or ("deterministic" if float(args.budget).is_integer()
                                  else "two-point")
        budget = int(args.budget) if law == "deterministic" and float(args.budget).is_integer() \
            else args.budget
        return FlowControl(budget, law=law)
    if args.policy == "classes":
        try:
            budgets = tuple(int(x) for x in args.budgets.split(","))
        except ValueError:
            raise CliError(f"--budgets {args.budgets!r} must be comma-separated integers") from None
        return ClassBudgets(budgets)
    if args.policy == "greedy":
        return Greedy(args.watermark, clearing=args.clearing)
    if args.policy in ("mcsf", "mc-benchmark", "amax", "amin"):
        predictions = parse_predictions(args.predictions)
        return {"mcsf": MCSF, "mc-benchmark": MCBenchmark, "amax": AMax,
                "amin": AMin}[args.policy](predictions)
    if args.max_decode is None:
        raise CliError("--policy conservative needs --max-decode")
    return Conservative(args.max_decode)


# ----------------------------------------------------------------------------- simulate
def _add_simulate(parser):
    add_workload_arguments(parser)
    add_policy_arguments(parser)
    parser.add_argument("--memory", type=int, default=16492, help="KV capacity M in tokens")
    parser.add_argument("--slots", type=int, default=10_000, help="slots to simulate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--warmup", type=int, default=0, help="slots left out of the metrics")
    parser.add_argument("--stream", action="store_true",
                        help="streaming engine: arrivals drawn inside the kernel, memory "
                             "O(active set), for very long runs")
    parser.add_argument("--replications", type=int, default=1,
                        help="--stream: independent replications, pooled (exact quantiles)")
    parser.add_argument("--workers", type=int, default=None,
                        help="--stream: threads running replications side by side "
                             "(default: one per core)")
    parser.add_argument("--engine", choices=("fast", "reference"), default="fast")
    parser.add_argument("--progress", action="store_true", help="progress bar (--stream)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _run_simulate(args) -> int:
    import stability
    from stability import traces

    policy = policy_from_args(args)
    if args.trace and args.rate is None and args.load is None:
        requests = traces.load_trace(args.trace,
                                     slot_seconds=args.slot_seconds or traces.DEFAULT_SLOT_SECONDS,
                                     time_scale=args.time_scale)
        result = stability.simulate(requests, policy, args.memory, horizon=args.slots,
                                    seed=args.seed, engine=args.engine, warmup=args.warmup)
    else:
        workload = workload_from_args(args)
        if args.stream:
            result = stability.simulate_streams(
                workload, policy, args.memory, args.slots, seed=args.seed,
                replications=args.replications, workers=args.workers, warmup=args.warmup,
                progress=args.progress)
        else:
            result = stability.simulate(workload.generate(args.slots, args.seed), policy,
                                        args.memory, horizon=args.slots, seed=args.seed,
                                        engine=args.engine, warmup=args.warmup)
    if not args.stream and args.replications != 1:
        raise CliError("--replications needs --stream")
    metrics = result.metrics()
    if args.json:
        info = dict(vars(result.info))
        print(json.dumps({"run": info, "metrics": plain(metrics.to_dict())}, indent=2))
    else:
        print(f"policy {result.info.policy}, M = {result.info.memory}, seed {result.info.seed}, "
              f"engine {result.info.engine}")
        if getattr(result, "interrupted", False):
            print("interrupted: the metrics cover the slots simulated before Ctrl-C")
        print(metrics.table())
    return 0


def _lazy(module: str, name: str):
    """A function of ``module`` imported on first call (sweep and store import this module)."""
    def call(*args):
        import importlib

        return getattr(importlib.import_module(module), name)(*args)
    return call


COMMANDS = {
    "simulate": (_add_simulate, _run_simulate, "simulate one run and print its metrics"),
    "sweep": (_lazy("stability.sweep", "add_arguments"), _lazy("stability.sweep", "run_command"),
              "run a grid of simulations into a results store (resumable)"),
    "results": (_lazy("stability.store", "add_arguments"),
                _lazy("stability.store", "run_command"),
                "export or summarise a results store"),
    "analyze": (_lazy("stability.theory.report", "add_arguments"),
                _lazy("stability.theory.report", "cli_analyze"),
                "theory of DESIGN 3 for a workload: Prop. 3.2, overflow bound, exact tail, "
                "queue, budget tuner"),
    "reproduce": (_lazy("stability.reproduce", "add_arguments"),
                  _lazy("stability.reproduce", "run_command"),
                  "run every experiment, draw every figure, write VERIFICATION.md"),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="stability",
        description="Flow-controlled scheduling for LLM inference: simulation, theory, figures.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (add, _, help_text) in COMMANDS.items():
        add(sub.add_parser(name, help=help_text, description=help_text))
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command][1](args)
    except (ValueError, FileNotFoundError) as err:
        print(f"stability: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("stability: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. head: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
