"""``stability results export|summary``: read a results store."""

from __future__ import annotations

import json
import sys

from stability.cli.common import CliError
from stability.store import (
    DEFAULT_SUMMARY_METRICS,
    export_csv,
    format_summary,
    load,
    summarize,
    summary_records,
    write_summary_csv,
)

HELP = "export or summarise a results store"


def add_arguments(parser) -> None:
    """``stability results export|summary``."""
    sub = parser.add_subparsers(dest="results_command", required=True)
    ex = sub.add_parser("export", help="write every run to CSV",
                        description="Write every run (parameters, metrics, per-class metrics, "
                                    "seed, version, timing) to a CSV file.")
    ex.add_argument("db", help="results store (SQLite)")
    ex.add_argument("--csv", required=True, metavar="OUT", help="output CSV file ('-': stdout)")
    su = sub.add_parser("summary", help="mean and confidence interval per point",
                        description="Print mean +- half-width of a Student-t confidence "
                                    "interval across replications, per point.")
    su.add_argument("db", help="results store (SQLite)")
    su.add_argument("--metric", action="append", metavar="NAME",
                    help=f"metric column (repeatable; default {', '.join(DEFAULT_SUMMARY_METRICS)})")
    su.add_argument("--level", type=float, default=0.95, help="confidence level (default 0.95)")
    out = su.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true",
                     help="print one JSON record per point (undefined values are null)")
    out.add_argument("--csv", metavar="OUT", default=None,
                     help="write one CSV row per point to OUT ('-': stdout)")


def run(args) -> int:
    if args.results_command == "export":
        n = export_csv(args.db, args.csv)
        if args.csv != "-":
            print(f"{n} runs written to {args.csv}", file=sys.stderr)
        return 0
    if not (0.0 < args.level < 1.0):
        raise CliError(f"--level must be a number in (0, 1), got {args.level}")
    columns = load(args.db)
    metrics = args.metric or list(DEFAULT_SUMMARY_METRICS)
    if not len(columns.get("key", ())):
        if args.json:
            print("[]")
        elif args.csv is None:
            print(f"{args.db}: no runs")
        else:
            print(f"{args.db}: no runs; nothing written", file=sys.stderr)
        return 0
    summary = summarize(columns, metrics, args.level)
    if args.json:
        print(json.dumps(summary_records(summary, metrics, args.level), indent=1))
    elif args.csv is not None:
        n = write_summary_csv(summary, metrics, args.csv)
        if args.csv != "-":
            print(f"{n} points written to {args.csv}", file=sys.stderr)
    else:
        print(format_summary(summary, metrics, args.level))
    return 0


