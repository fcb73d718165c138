"""``stability results export|summary``: read a results store."""

from __future__ import annotations

import sys

from stability.store import (
    DEFAULT_SUMMARY_METRICS,
    export_csv,
    format_summary,
    load,
    summarize,
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


def run(args) -> int:
    if args.results_command == "export":
        n = export_csv(args.db, args.csv)
        if args.csv != "-":
            print(f"{n} runs written to {args.csv}", file=sys.stderr)
        return 0
    columns = load(args.db)
    if not len(columns.get("key", ())):
        print(f"{args.db}: no runs")
        return 0
    summary = summarize(columns, args.metric, args.level)
    print(format_summary(summary, args.metric or DEFAULT_SUMMARY_METRICS, args.level))
    return 0


