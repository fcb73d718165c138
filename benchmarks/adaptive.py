"""Throughput of adaptive flow control (and of its budgeted mode at a fixed budget,
CheckedFlow) against Greedy, in one process.

``python -m benchmarks.adaptive [--scale X] [--repeats N]`` runs each case for both
policies alternately (after a compiling run), takes the median requests per second of
each and prints their ratio.  The issue 12 requirement: adaptive keeps at least half of
Greedy's throughput on the benchmark workloads (``benchmarks.compare``'s paper and Azure
cases, batch and stream).
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import stability as s
from stability.policies.adaptive import AdaptiveFlow
from stability.policies.twin import TwinFlow

SLOTS = {"paper-4.1 3.5/class batch": 400_000, "paper-4.1 3.5/class stream": 1_000_000,
         "azure-conv 90% M=1e6 batch": 400_000, "azure-conv 90% M=1e6 stream": 2_000_000}


def _workload(case: str):
    if case.startswith("paper"):
        return s.Workload.paper_4_1(rate=3.5), 16492
    from stability.traces import azure_workload

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = azure_workload("conv", rate=1.0)
    return w.scaled(0.9 * 1_000_000 / w.mean_kv_load()), 1_000_000


def run(case: str, policy, slots: int, requests=None) -> float:
    """Requests per second of one run."""
    w, memory = _workload(case)
    t0 = time.perf_counter()
    if case.endswith("stream"):
        res = s.simulate_stream(w, policy, memory, slots, seed=1)
        n = res.arrived
    else:
        res = s.simulate(requests, policy, memory, horizon=slots, seed=1)
        n = len(requests)
    return n / (time.perf_counter() - t0)


def report(scale: float = 1.0, repeats: int = 3) -> tuple[str, dict]:
    """Greedy, adaptive, CheckedFlow at 1.2 lambda (the adaptive policy's budgeted mode
    held at a fixed budget) and, on the batch cases, TwinFlow (a stream does not keep the
    requests its twin needs), alternately on each case; ratios to Greedy."""
    lines = ["| case | Greedy (requests/s) | adaptive (requests/s) | ratio | "
             "CheckedFlow(1.2 lambda) (requests/s) | ratio | TwinFlow (requests/s) | ratio |",
             "|---|---|---|---|---|---|---|---|"]
    ratios = {}
    for case, slots in SLOTS.items():
        slots = max(1000, int(slots * scale))
        w, _ = _workload(case)
        batch = case.endswith("batch")
        requests = w.generate(slots, 1) if batch else None
        policies = {"greedy": s.Greedy(), "adaptive": AdaptiveFlow(),
                    "checked": s.CheckedFlow(round(1.2 * w.total_rate, 6))}
        if batch:
            policies["twin"] = TwinFlow()
        for policy in policies.values():  # compile
            run(case, policy, min(slots, 2000), requests)
        timings = {name: [] for name in policies}
        for _ in range(repeats):
            for name, policy in policies.items():
                timings[name].append(run(case, policy, slots, requests))
        speed = {n: statistics.median(timings[n]) for n in policies}
        g = speed["greedy"]
        cols = []
        for name in ("adaptive", "checked", "twin"):
            if name in speed:
                ratios[case if name == "adaptive" else f"{case} {name}"] = speed[name] / g
                cols.append(f"{speed[name]:,.0f} | {speed[name] / g:.2f}")
            else:
                cols.append("n/a (stream) | n/a")
        lines.append(f"| {case} ({slots:,} slots) | {g:,.0f} | " + " | ".join(cols) + " |")
    return "\n".join(lines), ratios


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.adaptive", description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    text, _ = report(args.scale, args.repeats)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
