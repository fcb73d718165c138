"""python -m benchmarks [--scale X]: print engine throughput (requests and slots per second)."""

import argparse

from benchmarks import engines

parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
parser.add_argument("--scale", type=float, default=1.0,
                    help="multiply every run length by this (0.1 for a quick look)")
parser.add_argument("--skip-scaling", action="store_true",
                    help="leave out the cost-against-active-set and horizon tables")
args = parser.parse_args()
print(engines.report(args.scale), flush=True)
print(engines.worlds_report(1e6 * args.scale), flush=True)
if not args.skip_scaling:
    print(engines.scaling_report(3e6 * args.scale))
