"""``stability rare``: per-slot overflow probabilities P(U > M) of the eviction-free
relaxation (docs/model.md 3.4): importance sampling vs plain Monte Carlo, the exact FFT
tail and the Chernoff bound, for the Section 4.1 workload and a geometric case."""

from __future__ import annotations

import json
import sys

from stability.jsonvalues import plain
from stability.theory.rare import MC_METHODS, paper_tables

HELP = "rare-event estimates of the per-slot overflow probability, with their checks"


def add_arguments(parser) -> None:
    parser.add_argument("--samples", type=int, default=100_000, help="IS samples per M")
    parser.add_argument("--mc-samples", type=int, default=200_000, help="plain MC samples")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--alpha", type=float, default=0.01, help="interval level 1 - alpha")
    parser.add_argument("--workers", type=int, default=1, help="threads")
    parser.add_argument("--quick", action="store_true", help="two tables, fewer samples")
    parser.add_argument("--azure", action="store_true",
                        help="add the Azure conv lengths (trace if present, else synthetic)")
    parser.add_argument("--mc-method", choices=MC_METHODS, default="direct",
                        help="plain MC sampler: direct draws or the IS tables at theta = 0")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def run(args) -> int:
    tables = paper_tables(args.samples, args.mc_samples, args.seed, args.alpha, args.workers,
                          args.quick, args.azure, args.mc_method)
    if args.json:
        json.dump(plain([t.to_dict() for t in tables]), sys.stdout, indent=1, default=float)
        print()
    else:
        for t in tables:
            print(t.format())
            print()
    return 0


