"""python -m benchmarks.hindsight: MILP solve times on Jaillet et al.'s synthetic family.

Instances (``stability.hindsight.synthetic_batch``): M ~ U{30..50}, n requests all
arriving in slot 0, prompt ~ U{1..5}, decode ~ U{1..M - prompt}.  For each one the table
gives the MILP status and time, the best total latency, the proven lower bound and gap,
and the cheap bounds (decode sum, memory volume, LP relaxation) and heuristic upper bound.
Times are wall clock and depend on the machine's load.
"""

from __future__ import annotations

import argparse

from stability.hindsight import (
    decode_lower_bound,
    hindsight_optimum,
    lp_lower_bound,
    memory_volume_lower_bound,
    synthetic_batch,
)

COLUMNS = ("n", "seed", "M", "status", "solve_s", "best", "lower", "gap", "lp", "volume",
           "decode", "heuristic", "vars", "nnz")


def run(sizes, seeds, time_limit):
    """One row (dict) per (n, seed)."""
    rows = []
    for n in sizes:
        for seed in range(seeds):
            req, memory = synthetic_batch(n, seed)
            res = hindsight_optimum(req, memory, time_limit=time_limit)
            lp = lp_lower_bound(req, memory, time_limit=time_limit)
            rows.append(dict(
                n=n, seed=seed, M=memory, status=res.status,
                solve_s=round(res.solve_seconds, 1), best=res.total_latency,
                lower=res.lower_bound, gap=f"{100 * res.gap:.1f}%", lp=round(lp.value, 1),
                volume=memory_volume_lower_bound(req, memory),
                decode=decode_lower_bound(req), heuristic=res.heuristic_latency,
                vars=res.num_variables, nnz=res.nonzeros))
            print(" ".join(f"{k}={rows[-1][k]}" for k in COLUMNS), flush=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hindsight", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="8,10,20,30,40",
                        help="comma-separated request counts (default 8,10,20,30,40)")
    parser.add_argument("--seeds", type=int, default=3, help="instances per size (default 3)")
    parser.add_argument("--time-limit", type=float, default=60.0,
                        help="HiGHS seconds per instance (default 60)")
    args = parser.parse_args(argv)
    run([int(x) for x in args.sizes.split(",")], args.seeds, args.time_limit)


if __name__ == "__main__":
    main()
