"""``stability simulate``: one run, its metrics as a table or JSON."""

from __future__ import annotations

import dataclasses
import json
import sys

from stability import validation
from stability.workload import traces
from stability.cli.common import (
    CliError,
    add_policy_arguments,
    add_workload_arguments,
    add_world_arguments,
    flag_value,
    policy_from_args,
    slot_seconds,
    workload_from_args,
    world_from_args,
)
from stability.jsonvalues import plain
from stability.simulate import check_batch_size, simulate, simulate_streams

HELP = "simulate one run and print its metrics"


def add_arguments(parser) -> None:
    add_workload_arguments(parser)
    add_policy_arguments(parser)
    add_world_arguments(parser)
    parser.add_argument("--memory", type=int, default=16492, help="KV capacity M in tokens")
    parser.add_argument("--slots", type=int, default=None,
                        help="slots (iterations) to simulate; default 10000, or until every "
                             "request of a --trace completes")
    parser.add_argument("--seconds", type=float, default=None,
                        help="with a timed --clock and a workload: arrivals over this many "
                             "seconds, the rates read as requests per second")
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
    parser.add_argument("--progress", action="store_true",
                        help="--stream: a progress bar from the start (without it, a run "
                             "projected to take more than 30 s prints its estimate and then "
                             "its progress)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _check_flags(args) -> None:
    """The numeric flags, named as the user typed them."""
    flag_value(validation.memory, args.memory, "--memory")
    if args.slots is not None:
        flag_value(validation.slots, args.slots, "--slots")
    flag_value(validation.seed, args.seed, "--seed")
    flag_value(validation.integer, args.warmup, "--warmup", 0)
    flag_value(validation.integer, args.replications, "--replications", 1)
    if args.workers is not None:
        flag_value(validation.integer, args.workers, "--workers", 1)
    if args.seconds is not None:
        flag_value(validation.positive, args.seconds, "--seconds")
    if args.warmup and args.slots is not None and args.warmup >= args.slots:
        raise CliError(f"--warmup {args.warmup} must be smaller than --slots {args.slots} "
                       "(every slot would be left out of the metrics)")


def run(args) -> int:
    _check_flags(args)
    policy = policy_from_args(args)
    world = world_from_args(args)
    timed = world.get("clock") is not None and world["clock"].encode() is not None
    if not args.stream and args.replications != 1:
        raise CliError("--replications needs --stream")
    if args.seconds is not None and not timed:
        raise CliError("--seconds needs a timed --clock (jaillet, li-dai-peng, linear:..., "
                       "profile:...)")
    if args.trace and args.rate is None and args.load is None:
        if args.stream:
            raise CliError("--stream draws its own arrivals; replay a --trace without it, "
                           "or give --rate or --load to resample its lengths")
        requests = traces.load_trace(args.trace, slot_seconds=slot_seconds(args),
                                     time_scale=args.time_scale)
        result = simulate(requests, policy, args.memory, horizon=args.slots, seed=args.seed,
                          engine=args.engine, warmup=args.warmup, **world)
    else:
        workload = workload_from_args(args)
        slots = 10_000 if args.slots is None else args.slots
        if args.stream:
            result = simulate_streams(
                workload, policy, args.memory, slots, seed=args.seed,
                replications=args.replications, workers=args.workers, warmup=args.warmup,
                progress=True if args.progress else None,
                **{k: v for k, v in world.items() if k != "clock"})
        elif timed:
            if args.seconds is None:
                raise CliError("a timed --clock with a workload needs --seconds (arrivals "
                               "over that many seconds, rates per second)")
            requests = workload.generate_timed(args.seconds, args.seed)
            result = simulate(requests, policy, args.memory, horizon=args.slots, seed=args.seed,
                              engine=args.engine, warmup=args.warmup, **world)
        else:
            check_batch_size(workload, slots)
            result = simulate(workload.generate(slots, args.seed), policy, args.memory,
                              horizon=slots, seed=args.seed, engine=args.engine,
                              warmup=args.warmup, **world)
    metrics = result.metrics()
    interrupted = bool(getattr(result, "interrupted", False))
    rejected = getattr(result, "rejected", None)  # streams: arrivals with l + o > M
    control = getattr(result, "control", None)  # stateful policies (AdaptiveFlow)
    if args.json:
        info = dict(vars(result.info))
        if rejected is not None:
            info["rejected"] = rejected
        info["interrupted"] = interrupted
        out = {"run": info, "metrics": plain(metrics.to_dict())}
        if control is not None:
            out["control"] = plain(dataclasses.asdict(control))
        print(json.dumps(out, indent=2))
    else:
        info = result.info
        print(f"policy {info.policy}, M = {info.memory}, seed {info.seed}, engine {info.engine}")
        print(f"world: eviction {info.eviction}, requeue {info.requeue}, block size "
              f"{info.block_size}, clock {info.clock}")
        if interrupted:
            print(f"PARTIAL: interrupted by Ctrl-C after {metrics.slots} of "
                  f"{info.horizon * max(args.replications, 1)} slots; the metrics cover "
                  "those slots only")
        if rejected:
            print(f"rejected: {rejected} arrivals had l + o > M = {info.memory} and were "
                  "never simulated (an unbounded length law)")
        print(metrics.table())
        if control is not None:
            print(f"{'controller: budgeted slots; mean / max b; switches':54s}"
                  f"{control.budgeted_slots}; {control.mean_rate:.4g} / {control.max_rate:.4g}; "
                  f"{control.switches}")
    if rejected:
        print(f"stability: warning: {rejected} arrivals were rejected (l + o > M = "
              f"{result.info.memory}: they could never complete)", file=sys.stderr)
    if interrupted:
        print("stability: interrupted: the metrics above are partial (the slots simulated "
              "before Ctrl-C)", file=sys.stderr)
        return 130
    return 0
