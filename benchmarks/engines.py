"""Throughput of the fast, streaming and reference engines on named workloads.

Every figure is measured in this process, so the ratios compare like with like.  Times
include generating the workload.  Kernels are compiled before timing.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from dataclasses import dataclass

import stability as s
from stability.traces import azure_workload


@dataclass(frozen=True)
class Case:
    name: str
    workload: s.Workload
    policy: s.Policy
    memory: int
    slots: int  # for the fast engines
    reference_slots: int  # a smaller instance for the plain reference


def named_cases(scale: float = 1.0) -> list[Case]:
    """The workloads of issue 2 (and issue 6), at ``scale`` times the default length."""
    # 3.5 per class: a stable regime of FlowControl(12) (Figure 2 and VERIFICATION rows
    # boundary.*: growth rate 0); 3.9 is inside the budget window but its queue grows
    # without limit (docs/theory_region.md), so a benchmark there measures a growing queue.
    paper = s.Workload.paper_4_1(rate=3.5)
    conv = azure_workload("conv", rate=1.0)
    conv = conv.scaled(0.9 * 1_000_000 / conv.mean_kv_load())  # 90% of M / E[w]
    # a geometric workload whose active set holds about 10^4 requests
    big = s.Workload.single(100.0, s.Deterministic(10), s.Geometric(0.01))
    big_memory = int(1.15 * big.mean_kv_load())
    n = lambda x: max(100, int(x * scale))  # noqa: E731
    return [
        Case("paper-4.1, rate 3.5/class, FlowControl(12)", paper, s.FlowControl(12), 16492,
             n(1_000_000), n(1_500)),
        # E[B] = 3.7 between lambda = 3.47 and M / E[w] = 3.86 (the lengths resampled as
        # joint (prompt, decode) pairs): a budget below lambda would time a growing queue
        Case("azure-conv lengths, 90% load, M=1e6, FlowControl(3.7, two-point)", conv,
             s.FlowControl(3.7, "two-point"), 1_000_000, n(3_000_000), n(1_000)),
        Case("azure-conv lengths, 90% load, M=1e6, Greedy", conv, s.Greedy(), 1_000_000,
             n(3_000_000), n(1_000)),
        Case("geometric, ~1e4 active, FlowControl(100.5, poisson)", big,
             s.FlowControl(100.5, "poisson"), big_memory, n(100_000), n(100)),
    ]


@dataclass(frozen=True)
class Measurement:
    engine: str
    requests: int
    slots: int
    seconds: float
    peak_mib: float

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def slots_per_second(self) -> float:
        return self.slots / self.seconds


def _measure(engine: str, run) -> Measurement:
    gc.collect()
    tracemalloc.start()
    began = time.perf_counter()
    requests, slots = run()
    seconds = time.perf_counter() - began
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return Measurement(engine, requests, slots, seconds, peak / 2**20)


def measure_case(case: Case, seed: int = 1) -> dict[str, Measurement]:
    """Batch (generate + simulate), stream, and reference on a smaller instance."""
    # compile outside the timed region
    small = case.workload.generate(50, seed)
    s.simulate(small, case.policy, case.memory, horizon=50, seed=seed)
    s.simulate_stream(case.workload, case.policy, case.memory, 50, seed=seed)

    def batch():
        req = case.workload.generate(case.slots, seed)
        s.simulate(req, case.policy, case.memory, horizon=case.slots, seed=seed)
        return len(req), case.slots

    def stream():
        res = s.simulate_stream(case.workload, case.policy, case.memory, case.slots, seed=seed)
        return res.arrived, case.slots

    def reference():
        req = case.workload.generate(case.reference_slots, seed)
        s.simulate(req, case.policy, case.memory, horizon=case.reference_slots, seed=seed,
                   engine="reference")
        return len(req), case.reference_slots

    def fast_small():
        req = case.workload.generate(case.reference_slots, seed)
        s.simulate(req, case.policy, case.memory, horizon=case.reference_slots, seed=seed)
        return len(req), case.reference_slots

    return {"fast (batch)": _measure("fast (batch)", batch),
            "fast (stream)": _measure("fast (stream)", stream),
            "fast, reference size": _measure("fast, reference size", fast_small),
            "reference": _measure("reference", reference)}


def report(scale: float = 1.0) -> str:
    lines = []
    for case in named_cases(scale):
        m = measure_case(case)
        lines.append(f"\n{case.name}  (M = {case.memory}, mean KV load "
                     f"{case.workload.mean_kv_load() / case.memory:.1%} of M)")
        lines.append(f"  {'engine':<22}{'requests':>12}{'slots':>11}{'seconds':>9}"
                     f"{'req/s':>12}{'slots/s':>12}{'peak MiB':>10}")
        for x in m.values():
            lines.append(f"  {x.engine:<22}{x.requests:>12,}{x.slots:>11,}{x.seconds:>9.3f}"
                         f"{x.requests_per_second:>12.3e}{x.slots_per_second:>12.3e}"
                         f"{x.peak_mib:>10.1f}")
        ref = m["reference"].requests_per_second
        lines.append(f"  ratio fast/reference on the same instance: "
                     f"{m['fast, reference size'].requests_per_second / ref:,.0f}x; "
                     f"batch {m['fast (batch)'].requests_per_second / ref:,.0f}x, "
                     f"stream {m['fast (stream)'].requests_per_second / ref:,.0f}x "
                     "(large instances)")
    return "\n".join(lines)


def _stream_rate(workload, policy, memory, slots, seed=1) -> Measurement:
    s.simulate_stream(workload, policy, memory, 20, seed=seed)  # compiled already; warm

    def run():
        res = s.simulate_stream(workload, policy, memory, slots, seed=seed)
        return res.arrived, slots

    return _measure("stream", run)


def scaling_report(requests: float = 3e6) -> str:
    """Cost against the active-set size (10^2 .. 10^5) and against the horizon.

    Geometric decode lengths with mean 100 and prompts of 10 tokens; the arrival rate sets
    the mean active set lambda E[o]; M = 1.15 lambda E[w]; FlowControl with a Poisson budget
    of mean 1.05 lambda keeps the system stable.
    """
    lines = ["\ncost against the active set (about %.0e requests each, streaming engine)" % requests,
             f"  {'active set':>10}{'rate/slot':>11}{'slots':>12}{'seconds':>9}{'req/s':>12}"
             f"{'peak MiB':>10}"]
    decode = s.Geometric(0.01)
    for active in (1e2, 1e3, 1e4, 1e5):
        rate = active * 0.01
        w = s.Workload.single(rate, s.Deterministic(10), decode)
        memory = int(1.15 * w.mean_kv_load())
        slots = int(requests / rate)
        m = _stream_rate(w, s.FlowControl(1.05 * rate, "poisson"), memory, slots)
        lines.append(f"  {active:>10.0e}{rate:>11g}{slots:>12,}{m.seconds:>9.2f}"
                     f"{m.requests_per_second:>12.3e}{m.peak_mib:>10.1f}")
    lines += ["\ncost against the horizon (paper-4.1 at rate 3.0 per class, FlowControl(12))",
              f"  {'slots':>12}{'requests':>12}{'seconds':>9}{'req/s':>12}{'peak MiB':>10}"]
    paper = s.Workload.paper_4_1(3.0)
    for slots in (10**4, 10**5, 10**6, 10**7):
        m = _stream_rate(paper, s.FlowControl(12), 16492, slots)
        lines.append(f"  {slots:>12,}{m.requests:>12,}{m.seconds:>9.2f}"
                     f"{m.requests_per_second:>12.3e}{m.peak_mib:>10.1f}")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    print(report())


def worlds_report(requests: float = 1e6) -> str:
    """The same policy and class mix in the paper's world (unit slots, restart) and in a
    served one (Jaillet clock in seconds, recompute eviction): fast engine throughput in
    both, their ratio, and each against the reference on a small instance."""
    from stability.clock import jaillet
    from stability.theory import critical_rate_seconds

    base = s.Workload.paper_4_1(rate=3.5)
    policy = s.FlowControl(11.0, "two-point")
    rate_s = 0.75 * critical_rate_seconds(base, 16492, jaillet()).per_second
    timed = base.with_total_rate(rate_s)
    worlds = {
        "unit slots, restart": (lambda n: base.generate(int(n / base.total_rate), 1), {}),
        "Jaillet clock, recompute": (lambda n: timed.generate_timed(n / rate_s, 1),
                                     {"clock": jaillet(), "eviction": "recompute"}),
    }
    lines = ["\nworlds: paper-4.1 classes, FlowControl(11, two-point), M = 16492 (unit: 3.5 "
             f"per class per slot; timed: {rate_s:.4g} req/s = 0.75 lambda*_s)",
             f"  {'world':<28}{'requests':>12}{'seconds':>9}{'req/s':>12}{'x reference':>13}"]
    rates = {}
    for name, (draw, world) in worlds.items():
        req = draw(1000)
        s.simulate(req, policy, 16492, seed=1, **world)  # compiled and warm

        def fast(req=draw(requests), world=world):
            s.simulate(req, policy, 16492, seed=1, **world)
            return len(req), 0

        def ref(req=draw(2000), world=world):
            s.simulate(req, policy, 16492, seed=1, engine="reference", **world)
            return len(req), 0

        def fast_small(req=draw(2000), world=world):
            s.simulate(req, policy, 16492, seed=1, **world)
            return len(req), 0

        m, r, f = _measure(name, fast), _measure("reference", ref), _measure("small", fast_small)
        rates[name] = m.requests_per_second
        lines.append(f"  {name:<28}{m.requests:>12,}{m.seconds:>9.3f}"
                     f"{m.requests_per_second:>12.3e}"
                     f"{f.requests_per_second / r.requests_per_second:>12,.0f}x")
    a, b = rates.values()
    lines.append(f"  timed and recompute / unit and restart: {b / a:.2f}")
    return "\n".join(lines)
