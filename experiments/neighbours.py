"""Shared pieces of the experiments that check the neighbouring papers (issue 15).

Not an experiment itself: the growth of a timed run, the instance families of the
competitive-ratio experiments (Jaillet et al., Feng et al., Kong et al.), the integer
program run on them, and the adversarial "blocking" families with their bounds.

All the functions that run in worker processes are module-level and take plain values.
"""

from __future__ import annotations

import numpy as np

RESOLUTION = 5e-3
"""Growth rates below RESOLUTION x (the rate scale of the experiment) count as "no
growth": the smallest drift the horizons are meant to resolve (a queue growing at it
from the start would hold RESOLUTION x rate x T / 2 requests more at the end)."""


# ------------------------------------------------------------------------ timed runs
def number_in_system(arrival_time: np.ndarray, completion_time: np.ndarray, t: float) -> int:
    """Requests arrived by time t and not completed by it (completion nan: never)."""
    done = np.nan_to_num(completion_time, nan=np.inf)
    return int((arrival_time <= t).sum() - (done <= t).sum())


def timed_growth(task: dict) -> dict:
    """One timed replication: growth of the number in system over the second half of
    [0, T] seconds ((N(T) - N(T/2)) / (T/2), requests per second), completions and tokens
    per second over that half, evictions.

    ``task``: workload (a ``stability.Workload`` with rates in requests per second),
    policy, memory, clock, seconds, seed, world (simulate's eviction / requeue /
    block_size), slot_floor (a lower bound on one iteration's duration, to size the
    horizon).
    """
    import stability as s

    seconds = float(task["seconds"])
    req = task["workload"].generate_timed(seconds, task["seed"])
    horizon = int(seconds / task["slot_floor"]) + 10
    r = s.simulate(req, task["policy"], task["memory"], horizon=horizon, seed=task["seed"],
                   clock=task["clock"], series_points=2, **task.get("world", {}))
    ct = r.completion_time
    at = req.arrival_time
    half = seconds / 2
    growth = (number_in_system(at, ct, seconds) - number_in_system(at, ct, half)) / half
    window = (np.nan_to_num(ct, nan=np.inf) > half) & (np.nan_to_num(ct, nan=np.inf) <= seconds)
    tokens = float((req.prompt[window] + req.decode[window]).sum())
    return {"growth": float(growth), "throughput": float(window.sum() / half),
            "tokens_per_second": tokens / half, "evictions": int(r.evictions_total),
            "arrived": int(len(req)), "reached": float(np.nanmax(ct)) if np.isfinite(ct).any()
            else 0.0}


# --------------------------------------------------------------- instance families
FAMILIES = ("batch", "online", "prompts")
"""Jaillet et al.'s synthetic family with all requests in slot 0 ("batch") or Poisson
arrivals at 1 per slot ("online"), and a family with widely spread prompts, all in slot 0
("prompts": M ~ U{30..50}, l ~ U{1..M/2}, o ~ U{1..M - l}), where smallest-volume and
shortest-decode orders differ."""


def family_instance(family: str, n: int, seed: int):
    """(requests, M) of one instance of ``family`` (see :data:`FAMILIES`)."""
    from stability import Requests
    from stability.hindsight import synthetic_batch

    if family == "batch":
        return synthetic_batch(n, seed)
    if family == "online":
        requests, memory = synthetic_batch(n, seed)
        rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
        gaps = rng.exponential(1.0, n)
        arrival = np.floor(np.cumsum(gaps) - gaps[0]).astype(np.int64)
        return Requests(arrival, requests.prompt, requests.decode), memory
    if family == "prompts":
        rng = np.random.default_rng(np.random.SeedSequence([seed, 2]))
        memory = int(rng.integers(30, 51))
        prompt = rng.integers(1, memory // 2 + 1, size=n)
        decode = rng.integers(1, memory - prompt + 1)
        return Requests(np.zeros(n, np.int64), prompt, decode), memory
    raise ValueError(f"family must be one of {', '.join(FAMILIES)}, got {family!r}")


def competitive_policies() -> dict:
    """Label -> policy run on every instance (lengths known exactly to the clairvoyant
    ones; Greedy and FlowControl do not use them)."""
    import stability as s
    from stability.policies.volume import SVF

    return {"MC-SF": s.MCSF(), "SVF": SVF(), "MC-Benchmark": s.MCBenchmark(),
            "Greedy": s.Greedy(), "FlowControl(2)": s.FlowControl(2)}


def total_latency(requests, policy, memory: int, seed: int = 0) -> int | None:
    """Sum of completion - arrival + 1 with every request run to the end (None if some
    request is still unfinished after 50 x the instance's safe horizon)."""
    import stability as s
    from stability.hindsight import safe_horizon

    horizon = 50 * max(safe_horizon(requests), 1) + 50
    res = s.simulate(requests, policy, memory, horizon=horizon, seed=seed)
    if (res.completion < 0).any():
        return None
    return int(np.sum(res.completion - requests.arrival + 1))


def solve_instance(family: str, n: int, seed: int, time_limit: float) -> dict:
    """The hindsight optimum (integer program) and each policy's total latency."""
    from experiments.common import quiet_hindsight_optimum

    req, memory = family_instance(family, n, seed)
    opt = quiet_hindsight_optimum(req, memory, time_limit)
    return {"family": family, "n": n, "seed": seed, "memory": memory, "status": opt.status,
            "optimum": opt.total_latency, "lower_bound": opt.lower_bound,
            "latencies": {k: total_latency(req, p, memory, seed)
                          for k, p in competitive_policies().items()}}


def solved_instances(ctx, families, per_family: int, n: int, time_limit: float,
                     root_seed: int) -> list:
    """Every (family, instance) solved once and cached (shared by the experiments that
    read them: a second experiment asking for the same set reuses the cache)."""
    from experiments.common import cached_json

    def run():
        jobs = []
        for k, family in enumerate(families):
            for j in range(per_family):
                args = (family, n, root_seed + 1000 * k + j, time_limit)
                jobs.append(ctx.executor.submit(solve_instance, *args) if ctx.executor
                            else solve_instance(*args))
        return [j.result() if hasattr(j, "result") else j for j in jobs]

    key = dict(families=list(families), per_family=per_family, n=n, time_limit=time_limit,
               root_seed=root_seed, policies=list(competitive_policies()))
    name = "neighbours_instances_" + "_".join(families) + f"_{per_family}x{n}"
    return cached_json(ctx, name, key, run)


def ratios(rows: list, policy: str, family: str) -> list:
    """policy / optimum on the instances of ``family`` proven optimal."""
    return [r["latencies"][policy] / r["optimum"] for r in rows
            if r["family"] == family and r["status"] == "optimal"
            and r["latencies"][policy] is not None]


# ------------------------------------------------------- adversarial blocking family
def blocking_instance(long_decode: int, shorts: int, online: bool):
    """The blocking family (ours, in the spirit of Jaillet et al.'s lower bound).

    M = K (o_L + 1).  A long request (l = M - o_L, o = o_L) is first in the queue; K short
    requests (l = o_L, o = 1) each need o_L + 1 tokens, so none fits beside the long one
    at any age, while all K fit together in an empty cache.  ``online``: the long one
    arrives in slot 0 alone and the shorts in slot 1; else all arrive in slot 0 (the
    offline batch setting), the long one first in the queue.

    Returns (requests, M, an upper bound on the optimum from a feasible schedule, a
    lower bound).  Feasible schedule: the shorts first (all in one slot), then the long
    one; lower bound: sum of o.
    """
    from stability import Requests
    from stability.hindsight import decode_lower_bound, evaluate_schedule

    o_long, k = int(long_decode), int(shorts)
    memory = k * (o_long + 1)
    arrival = np.zeros(k + 1, np.int64)
    if online:
        arrival[1:] = 1
    prompt = np.concatenate([[memory - o_long], np.full(k, o_long)])
    decode = np.concatenate([[o_long], np.ones(k, np.int64)])
    req = Requests(arrival, prompt, decode)
    first = 1 if online else 0  # the slot the shorts run in
    start = np.concatenate([[first + 1], np.full(k, first)])
    upper = evaluate_schedule(req, start, memory).total_latency
    return req, memory, int(upper), int(decode_lower_bound(req))


def blocking_task(task: dict) -> dict:
    """Each policy's total latency on one blocking instance, with the optimum's bounds."""
    req, memory, upper, lower = blocking_instance(task["long_decode"], task["shorts"],
                                                  task["online"])
    out = {"long_decode": task["long_decode"], "shorts": task["shorts"],
           "online": task["online"], "memory": memory, "opt_upper": upper,
           "opt_lower": lower, "latencies": {}}
    for label, policy in task["policies"].items():
        out["latencies"][label] = total_latency(req, policy, memory)
    return out


# ------------------------------------------------------------------- growth verdicts
def growth_verdict(values, resolution: float, level: float):
    """("stable" | "unstable" | "undecided", Interval) for growth rates of independent
    replications: stable when the Student-t interval at ``level`` lies below
    ``resolution``, unstable when it lies above it (the convention of the region
    experiment: a verdict needs the interval to clear the smallest drift resolved)."""
    from experiments.common import Interval

    iv = Interval.of(values, level)
    if iv.n >= 2 and iv.high < resolution:
        return "stable", iv
    if iv.n >= 2 and iv.low > resolution:
        return "unstable", iv
    return "undecided", iv


def claim_verdict(state: str, wanted: str) -> str:
    """PASS when the measured state is the claimed one, FAIL when it is the other one,
    INCONCLUSIVE when the budget could not decide."""
    if state == "undecided":
        return "INCONCLUSIVE"
    return "PASS" if state == wanted else "FAIL"


def stream_growth(task: dict) -> dict:
    """One streaming replication: growth of the number in system over the second half
    (from the run and its exact half-length prefix, requests per slot), evictions."""
    import stability as s

    slots = int(task["slots"])
    runs = [s.simulate_stream(task["workload"], task["policy"], task["memory"], n,
                              seed=task["seed"], series_points=2, **task.get("world", {}))
            for n in (slots // 2, slots)]
    count = [r.waiting_at_end + r.active_at_end for r in runs]
    return {"growth": (count[1] - count[0]) / (slots - slots // 2),
            "evictions": int(runs[1].evictions_total)}


def run_tasks(ctx, fn, tasks: list) -> list:
    """``fn`` on every task, on the shared executor when there is one."""
    if ctx.executor is None:
        return [fn(t) for t in tasks]
    return [f.result() for f in [ctx.executor.submit(fn, t) for t in tasks]]


def competitive_budget(ctx) -> dict:
    """Budget shared by the competitive-ratio experiments (one solved set for all three)."""
    return dict(n=ctx.pick(4, 5, 7), per_family=ctx.pick(3, 10, 60),
                time_limit=ctx.pick(20.0, 20.0, 60.0),
                sizes=ctx.pick([10, 40], [10, 40, 160], [10, 20, 40, 80, 160, 320]),
                shorts_per_step=10)


COMPETITIVE_SEED = 20250211


def competitive_data(ctx) -> dict:
    """The solved instances of every family and the blocking families (cached, shared)."""
    from experiments.common import cached_json

    b = competitive_budget(ctx)
    rows = solved_instances(ctx, FAMILIES, b["per_family"], b["n"], b["time_limit"],
                            COMPETITIVE_SEED)

    def run():
        tasks = [{"long_decode": o, "shorts": b["shorts_per_step"] * o, "online": online,
                  "policies": competitive_policies()}
                 for online in (False, True) for o in b["sizes"]]
        return run_tasks(ctx, blocking_task, tasks)

    blocking = cached_json(ctx, "neighbours_blocking", dict(b, policies=list(
        competitive_policies())), run)
    return {"params": dict(b, root_seed=COMPETITIVE_SEED, families=list(FAMILIES)),
            "instances": rows, "blocking": blocking}


def blocking_ratios(data: dict, policy: str, online: bool, bound: str = "lower") -> list:
    """(o_L, ratio) on the blocking family: ``lower`` = policy / (upper bound on OPT), a
    lower bound on the ratio; ``upper`` = policy / (lower bound on OPT)."""
    out = []
    for r in data["blocking"]:
        if r["online"] != online or r["latencies"][policy] is None:
            continue
        opt = r["opt_upper"] if bound == "lower" else r["opt_lower"]
        out.append((r["long_decode"], r["latencies"][policy] / opt))
    return sorted(out)
