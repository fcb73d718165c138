"""``stability analyze``: the theory of docs/model.md section 3 for a workload."""

from __future__ import annotations

from stability.budgets import LAWS as BUDGET_LAWS
from stability.budgets import Budget
import json

from stability.clock import Unit, parse_clock
from stability.cli.common import _parser, add_workload_arguments, workload_from_args
from stability.theory.budget import PerClassBudget
from stability.theory.report import analyze
from stability.theory.tuning import METHODS
from stability.workload import Workload

HELP = ("theory for a workload: Prop. 3.2, overflow bound, exact tail, queue, budget tuner")


def add_arguments(parser) -> None:
    """All flags of ``stability analyze``: the shared workload flags and its own."""
    add_workload_arguments(parser)
    add_analyze_arguments(parser)


def add_analyze_arguments(parser) -> None:
    """The flags of ``stability analyze`` besides the shared workload flags."""
    parser.add_argument("--memory", type=int, required=True, help="KV capacity M, tokens")
    parser.add_argument("--budget", default=None,
                        help="activations per slot: b (deterministic), a mean (poisson, "
                             "two-point) or b_1,b_2,... (per-class)")
    parser.add_argument("--budget-law", default="deterministic",
                        help="deterministic | poisson | two-point | per-class")
    parser.add_argument("--target-overflow", type=float, default=None,
                        help="per-slot overflow target for the budget tuner")
    parser.add_argument("--tune-method", default="chernoff", help="chernoff | exact")
    parser.add_argument("--horizon", type=int, default=10**6,
                        help="slots T for the bound on P(any overflow in T slots)")
    parser.add_argument("--no-exact", action="store_true", help="skip the exact FFT tail")
    parser.add_argument("--clock", type=_parser("--clock", parse_clock), default=None,
                        help="also give the critical rate in requests per second under this "
                             "clock: jaillet | li-dai-peng | linear:C0,C_SEQ,C_CTX,C_PREFILL | "
                             "profile:CSV (docs/model.md 2.4; the approximation is stated)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")


def budget_from_args(text: str | None, law: str):
    """Parse ``--budget`` and ``--budget-law`` into a Budget or PerClassBudget (or None)."""
    laws = (*BUDGET_LAWS, "per-class")
    if law not in laws:
        raise ValueError(f"--budget-law={law!r} is not allowed; use one of {', '.join(laws)}")
    if text is None:
        return None
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise ValueError(f"--budget={text!r} is not allowed; give a number or numbers "
                         "separated by commas") from None
    if law == "per-class":
        return PerClassBudget(tuple(values), "deterministic")
    if len(values) != 1:
        raise ValueError(f"--budget={text!r} is not allowed with --budget-law={law}; give one "
                         "number (or use --budget-law per-class)")
    return Budget(values[0], law)


def run(args) -> int:
    """Run ``stability analyze`` from parsed arguments; print the report."""
    if args.tune_method not in METHODS:
        raise ValueError(f"--tune-method={args.tune_method!r} is not allowed; use one of "
                         f"{', '.join(METHODS)}")
    workload = workload_from_args(args)
    if not isinstance(workload, Workload):
        raise ValueError("analyze needs a workload model (rates and length laws), not a trace "
                         "of requests")
    budget = budget_from_args(args.budget, args.budget_law)
    rep = analyze(workload, args.memory, budget, args.target_overflow, args.horizon,
                  exact=not args.no_exact, method=args.tune_method)
    clocked = None
    if args.clock is not None and not isinstance(args.clock, Unit):
        from stability.theory.clocked import critical_rate_seconds

        clocked = critical_rate_seconds(workload, args.memory, args.clock)
    if args.json:
        out = rep.to_dict()
        if clocked is not None:
            out["clock"] = dict(clocked.to_dict(), clock=args.clock.describe())
        print(json.dumps(out, indent=2))
    else:
        print(rep.to_text())
        if clocked is not None:
            print(clock_text(clocked, args.clock.describe()))
    return 0


def clock_text(c, name: str) -> str:
    """The critical rate per second under a clock, with its approximation stated."""
    return (f"\nUnder the {name} clock no scheduler is stable above lambda* = "
            f"{c.per_second:.6g} requests/s (= {c.per_iteration:.6g} per iteration / d* = "
            f"{c.iteration_seconds:.6g} s, the iteration of a full memory: {c.running:.5g} "
            f"running, M context tokens, {c.prefill_tokens:.5g} prefill tokens, no eviction, "
            "no idle time; stability.theory.clocked)")
