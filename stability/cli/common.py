"""What the subcommands share: the workload, policy and world flags, and errors.

The policy flags are derived from the policy registry: every parameter of every
registered policy becomes one flag (``--budget``, ``--watermark``, ...), parsed by the
parameter's own parser, so a new policy needs no edit here.
"""

from __future__ import annotations

import argparse
import dataclasses

from stability import validation
from stability.workload import traces
from stability.clock import Clock, parse_clock
from stability.engine.codes import EVICTION_RULES, REQUEUE_RULES
from stability.policies import Policy, policy_class, registry
from stability.workload import Workload
from stability.workload.spec import KINDS as WORKLOADS
from stability.workload.spec import WorkloadSpec


class CliError(ValueError):
    """A usage error reported as one line."""


def run_into_store(call, db) -> tuple:
    """``call()``, a sweep writing into the results store ``db``: (its value, None), or
    (None, exit status) after one line on stderr -- 1 for a dead worker, 130 for Ctrl-C,
    whose finished runs stay in the store."""
    import sys

    from stability.sweep import SweepError

    try:
        return call(), None
    except SweepError as err:
        print(f"stability: error: {err}", file=sys.stderr)
        return None, 1
    except KeyboardInterrupt:
        print(f"stability: interrupted; finished runs are saved in {db}; run again to resume",
              file=sys.stderr)
        return None, 130


def flag_value(check, value, flag: str, *args, **kwargs):
    """``check(flag, value, ...)`` of :mod:`stability.validation` (or ``check(value, flag)``
    for the one-argument checks), its error naming the flag as typed."""
    try:
        if check in (validation.memory, validation.seed, validation.slots):
            return check(value, flag, **kwargs)
        return check(flag, value, *args, **kwargs)
    except ValueError as err:
        raise CliError(str(err)) from None


def slot_seconds(args) -> float:
    """``--slot-seconds`` (seconds per slot for timed traces), default 0.05; 0 or less is
    an error, not the default."""
    if args.slot_seconds is None:
        return traces.DEFAULT_SLOT_SECONDS
    return flag_value(validation.positive, args.slot_seconds, "--slot-seconds")


# ---------------------------------------------------------------------------- workloads
def add_workload_arguments(parser: argparse.ArgumentParser) -> None:
    """The workload flags shared by ``simulate`` and ``analyze``."""
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
    g.add_argument("--prompt", default=None, help="prompt law for --workload synthetic "
                                                  "(det:10, geom:P, geom-mean:MEAN, "
                                                  "uniform:LO:HI, lognormal:MEAN:MEDIAN:MAX)")
    g.add_argument("--decode", default=None, help="decode law for --workload synthetic "
                                                  "(default geom-mean:40)")
    g.add_argument("--trace", metavar="FILE",
                   help="a trace CSV (processed, Azure original or lengths only)")
    g.add_argument("--slot-seconds", type=float, default=None,
                   help="seconds per slot for timed traces under the unit clock (default 0.05)")
    g.add_argument("--time-scale", type=float, default=1.0,
                   help="stretch (>1) or compress (<1) trace time; load scales by 1/time-scale")


def _check_workload_flags(args) -> None:
    if args.rate is not None:
        flag_value(validation.number, args.rate, "--rate", 0.0)
    if args.load is not None:
        flag_value(validation.positive, args.load, "--load")
    flag_value(validation.positive, args.time_scale, "--time-scale")
    slot_seconds(args)
    if getattr(args, "memory", None) is not None:
        flag_value(validation.memory, args.memory, "--memory")


def workload_spec(args) -> WorkloadSpec:
    """The workload spec the flags describe (not for --trace)."""
    _check_workload_flags(args)
    if args.rate is not None and args.load is not None:
        raise CliError("give --rate or --load, not both")
    if args.workload != "synthetic" and (args.prompt or args.decode):
        raise CliError("--prompt and --decode apply to --workload synthetic")
    if args.rate is None and args.load is None:
        if args.workload != "paper-4.1":
            raise CliError(f"--workload {args.workload} needs --rate or --load")
        args.rate = 1.0
    if args.load is not None and getattr(args, "memory", None) is None:
        raise CliError("--load needs --memory")
    table = {"kind": args.workload}
    table["rate" if args.rate is not None else "load"] = (
        args.rate if args.rate is not None else args.load)
    if args.workload == "synthetic":
        table.update(prompt=args.prompt or "det:10", decode=args.decode or "geom-mean:40")
    try:
        return WorkloadSpec.from_dict(table, "workload")
    except ValueError as err:
        text = str(err)
        raise CliError("--" + text.removeprefix("workload.") if text.startswith("workload.")
                       else text) from None


def workload_from_args(args) -> Workload:
    """The Workload the flags describe (a trace becomes its empirical lengths)."""
    if args.trace:
        _check_workload_flags(args)
        if args.rate is not None and args.load is not None:
            raise CliError("give --rate or --load, not both")
        base = traces.trace_workload(
            args.trace, rate=1.0 if args.load is not None else args.rate,
            slot_seconds=slot_seconds(args), time_scale=args.time_scale)
        if args.load is not None:
            base = base.scaled(args.load * args.memory / base.mean_kv_load())
        return base
    return workload_spec(args).build(getattr(args, "memory", None) or 1)


# ----------------------------------------------------------------------------- policies
def _flag(field) -> str:
    return field.metadata.get("flag") or "--" + field.name.replace("_", "-")


def policy_flags() -> dict:
    """flag -> (field name, parser, help) over every registered policy's parameters."""
    flags: dict = {}
    for cls in registry().values():
        for f in cls.parameters():
            flag = _flag(f)
            entry = (f.name, f.metadata["parse"], f.metadata["help"])
            if flag in flags and flags[flag][:2] != entry[:2]:
                raise TypeError(f"{flag} means different things to two policies")
            flags.setdefault(flag, entry)
    return flags


def add_policy_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("policy (each flag applies to the policies that take it)")
    g.add_argument("--policy", choices=tuple(registry()), default="flow")
    for flag, (name, parse, text) in policy_flags().items():
        takers = [k for k, cls in registry().items()
                  if any(_flag(f) == flag for f in cls.parameters())]
        g.add_argument(flag, dest=f"policy_{name}", type=_parser(flag, parse), default=None,
                       help=f"{text} [{', '.join(takers)}]")


def _parser(flag: str, parse):
    def convert(text):
        try:
            return parse(text)
        except (TypeError, ValueError) as err:
            raise argparse.ArgumentTypeError(f"{flag} {text!r}: {err}") from None
    convert.__name__ = flag
    return convert


def policy_from_args(args) -> Policy:
    """The policy of ``--policy`` with the parameters given by its flags."""
    cls = policy_class(args.policy)
    mine = {f.name: f for f in cls.parameters()}
    kwargs = {}
    for flag, (name, _, _) in policy_flags().items():
        value = getattr(args, f"policy_{name}", None)
        if value is None:
            continue
        if name not in mine:
            takes = ", ".join(_flag(f) for f in mine.values()) or "no parameters"
            raise CliError(f"{flag} does not apply to --policy {args.policy} (it takes {takes})")
        kwargs[name] = value
    for name, f in mine.items():
        if name not in kwargs and f.default is dataclasses.MISSING:
            raise CliError(f"--policy {args.policy} needs {_flag(f)}")
    try:
        return cls(**kwargs)
    except ValueError as err:
        raise CliError(f"--policy {args.policy}: {err}") from None


# ------------------------------------------------------------------------------- world
def add_world_arguments(parser: argparse.ArgumentParser, clock: bool = True) -> None:
    g = parser.add_argument_group("world (docs/model.md 2.3; default: the policy's)")
    g.add_argument("--eviction", choices=tuple(EVICTION_RULES), default=None,
                   help="restart: an evicted request loses its tokens; recompute: it keeps "
                        "them and re-prefills l + g (vLLM)")
    g.add_argument("--requeue", choices=tuple(REQUEUE_RULES), default=None,
                   help="where a removed request re-enters the queue: its arrival position "
                        "or the front (vLLM)")
    g.add_argument("--block-size", type=int, default=None,
                   help="KV allocated in blocks of this many tokens (vLLM: 16)")
    if clock:
        g.add_argument("--clock", type=_parser("--clock", parse_clock), default=None,
                       help="iteration durations: unit (slots), jaillet, li-dai-peng, "
                            "linear:C0,C_SEQ,C_CTX,C_PREFILL (seconds) or profile:CSV")


def world_from_args(args) -> dict:
    """``simulate`` keyword arguments for the world flags that were given."""
    out = {}
    for name in ("eviction", "requeue", "block_size", "clock"):
        value = getattr(args, name, None)
        if value is not None:
            out[name] = value
    clock = out.get("clock")
    if clock is not None and not isinstance(clock, Clock):
        raise CliError(f"--clock {clock!r} is not a clock")
    return out
