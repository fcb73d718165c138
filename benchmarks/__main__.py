"""python -m benchmarks [--scale X]: print engine throughput (requests and slots per second)."""

import argparse

from benchmarks import engines

parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
parser.add_argument("--scale", type=float, default=1.0,
                    help="multiply every run length by this (0.1 for a quick look)")
args = parser.parse_args()
print(engines.report(args.scale))
