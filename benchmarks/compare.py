"""Engine throughput of this checkout against another one, measured side by side.

``python -m benchmarks.compare --against DIR`` runs the same cases with the package of
this checkout and with the package found in ``DIR`` (for example an earlier commit,
``git worktree add /tmp/before <commit>``), alternating between the two in fresh
processes so that both see the same machine load, and prints the median requests per
second of each and their ratio.  Only the public API both versions share is used.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]

CASES = {
    "paper-4.1 3.5/class FlowControl(12) batch": (
        "w = s.Workload.paper_4_1(rate=3.5); r = w.generate(SLOTS, 1)",
        "s.simulate(r, s.FlowControl(12), 16492, horizon=SLOTS, seed=1)", 400_000),
    "paper-4.1 3.5/class FlowControl(12) stream": (
        "w = s.Workload.paper_4_1(rate=3.5)",
        "s.simulate_stream(w, s.FlowControl(12), 16492, SLOTS, seed=1)", 1_000_000),
    "azure-conv 90% M=1e6 Greedy stream": (
        "from stability.traces import azure_workload\n"
        "w = azure_workload('conv', rate=1.0, synthetic=True)\n"
        "w = w.scaled(0.9 * 1_000_000 / w.mean_kv_load())",
        "s.simulate_stream(w, s.Greedy(), 1_000_000, SLOTS, seed=1)", 2_000_000),
    "geometric ~1e4 active FlowControl(100.5, poisson) stream": (
        "w = s.Workload.single(100.0, s.Deterministic(10), s.Geometric(0.01))\n"
        "M = int(1.15 * w.mean_kv_load())",
        "s.simulate_stream(w, s.FlowControl(100.5, 'poisson'), M, SLOTS, seed=1)", 100_000),
}

_SCRIPT = """
import sys, time, json
sys.path.insert(0, {root!r})
import stability as s
SLOTS = {slots}
{setup}
{call}  # compile (cached after the first process)
t0 = time.perf_counter()
res = {call}
seconds = time.perf_counter() - t0
m = res.metrics()
print(json.dumps({{"requests": int(m.arrived), "seconds": seconds}}))
"""


def measure(root: Path, case: str, python: str) -> float:
    """Requests per second of one run of ``case`` with the package under ``root``."""
    setup, call, slots = CASES[case]
    code = _SCRIPT.format(root=str(root), slots=slots, setup=setup, call=call)
    env = dict(os.environ, PYTHONPATH=str(root))
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, env=env,
                         cwd=str(root), check=True)
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return data["requests"] / data["seconds"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compare",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--against", required=True, type=Path,
                        help="a checkout of the version to compare with")
    parser.add_argument("--repeats", type=int, default=3, help="runs per case and version")
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args(argv)
    other = args.against.resolve()
    if not (other / "stability" / "__init__.py").is_file():
        print(f"benchmarks.compare: error: {other} holds no stability package", file=sys.stderr)
        return 2
    print(f"{'case':<58} {'this [req/s]':>14} {'other [req/s]':>14} {'ratio':>7}")
    for case in CASES:
        mine, theirs = [], []
        for _ in range(args.repeats):  # alternate, so both see the same load
            mine.append(measure(HERE, case, args.python))
            theirs.append(measure(other, case, args.python))
        a, b = statistics.median(mine), statistics.median(theirs)
        print(f"{case:<58} {a:14.4g} {b:14.4g} {a / b:7.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
