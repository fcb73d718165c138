"""Li, Dai, Peng, "Throughput-Optimal Scheduling Algorithms for LLM Inference and AI
Agents" (arXiv 2504.07347): work-conserving batching is throughput-optimal.

Read: the abstract (v2, v3) and a third-party summary of the theorem (the paper's text was
not available here).  Claims: "a large class of work-conserving scheduling algorithms
achieve maximum throughput for individual requests"; the single-engine stability
condition lambda (m_p + m_d) < b / t_b (Theorem 2: m_p, m_d the mean prefill and decode
tokens of a request, b the tokens of a full batch and t_b its processing time, under a
step batch-time model); "Orca and Sarathi-Serve are throughput-optimal, while
FasterTransformer and vanilla vLLM are not maximally stable".

Configuration: Greedy with chunked prefill and a token budget of b = 250 tokens per
iteration (max_num_batched_tokens = max_num_seqs = 250): every iteration carries every
decode and fills the rest of the budget with prefill chunks, the mixed batching of Orca /
Sarathi-Serve, i.e. work-conserving in the paper's sense.  Time: Li-Dai-Peng's own step
model for CodeLlama-34B on an A100, t = 11.28 + 35.47 ceil(tokens / 128) ms
(``stability.clock.li_dai_peng``), so t(b) = 82.22 ms.  M = 100,000 tokens, which never
binds (250 requests of at most 288 tokens), as the condition involves no memory.  Prompts
U{32..96} (m_p = 64), decodes U{64..192} (m_d = 128), Poisson arrivals in seconds.

What differs: here the iteration that completes a prompt also decodes its first token
outside the token budget, so a full iteration holds b tokens plus the prompts it
completes (one or two; t stays at two steps because 250 + 6 <= 256); a request costs
l + o token slots in all.  The other half of the claim (vanilla vLLM and
FasterTransformer are not throughput-optimal) is not a configuration of this engine:
every active request decodes in every iteration and admission happens every iteration,
so prefill-only iterations that pause the decodes (vanilla vLLM) and request-level static
batches (FasterTransformer) cannot be expressed.  In their place the rows test a
non-work-conserving cap the engine does have (at most 64 requests in the batch, which
leaves token capacity idle while requests wait).
"""

from __future__ import annotations

from experiments.common import LEVEL, Check, Context, Interval, cached_json, fmt, write_results
from experiments.neighbours import claim_verdict, growth_verdict, run_tasks, timed_growth

NAME = "ldp_throughput"
TITLE = ("Li, Dai, Peng (arXiv 2504.07347): work-conserving batching is throughput-optimal "
         "(Theorem 2 under the step batch-time model)")
FIGURE = "fig13_throughput_optimal"

ROOT_SEED = 20250410
MEMORY = 100_000
TOKEN_BUDGET = 250
CAPPED_SEQS = 64
PROMPT, DECODE = (32, 96), (64, 192)
BELOW, ABOVE, SATURATED = 0.9, 1.1, 1.5
RESOLUTION = 5e-3
"""Growth below RESOLUTION x lambda_c (requests per second) counts as none."""
TOLERANCE = 0.02
"""Saturated token rate within 2% of b / t(b) (the joins noted above add about 0.5%)."""
SLOT_FLOOR = 0.04675
"""Shortest iteration of the step clock (one step), seconds."""
LEVEL_CHECK = 0.99


def policies() -> dict:
    import stability as s

    return {"work-conserving (b = 250)": s.Greedy(max_num_seqs=TOKEN_BUDGET,
                                                  max_num_batched_tokens=TOKEN_BUDGET),
            f"at most {CAPPED_SEQS} in the batch": s.Greedy(
                max_num_seqs=CAPPED_SEQS, max_num_batched_tokens=TOKEN_BUDGET)}


def theory() -> dict:
    from stability.clock import li_dai_peng
    from stability.theory.neighbours import (step_batch_time, throughput_optimal_rate,
                                             token_capacity)

    clock = li_dai_peng()
    m_p, m_d = sum(PROMPT) / 2, sum(DECODE) / 2
    return {"t_b": step_batch_time(clock, TOKEN_BUDGET),
            "capacity_tokens": token_capacity(clock, TOKEN_BUDGET), "m_p": m_p, "m_d": m_d,
            "lambda_c": throughput_optimal_rate(clock, TOKEN_BUDGET, m_p, m_d)}


def _budget(ctx: Context) -> dict:
    return dict(loads=ctx.pick([0.9, 1.1], [0.8, 0.9, 1.1, 1.2],
                               [0.6, 0.8, 0.9, 0.95, 1.05, 1.1, 1.2]),
                replications=ctx.pick(2, 4, 10), seconds=ctx.pick(400.0, 4000.0, 20000.0))


def compute(ctx: Context) -> dict:
    import stability as s
    from stability.clock import li_dai_peng
    from stability.simulate import replication_seeds

    b = _budget(ctx)
    th = theory()
    base = s.Workload.single(1.0, s.UniformInt(*PROMPT), s.UniformInt(*DECODE))
    seeds = replication_seeds(ROOT_SEED, b["replications"])
    pols = policies()

    def run():
        tasks, keys = [], []
        for label, policy in pols.items():
            for load in b["loads"]:
                for sd in seeds:
                    keys.append((label, load))
                    tasks.append({"workload": base.with_total_rate(load * th["lambda_c"]),
                                  "policy": policy, "memory": MEMORY, "clock": li_dai_peng(),
                                  "seconds": b["seconds"], "seed": sd,
                                  "slot_floor": SLOT_FLOOR})
        first = next(iter(pols))
        for sd in seeds:
            keys.append((first, SATURATED))
            tasks.append({"workload": base.with_total_rate(SATURATED * th["lambda_c"]),
                          "policy": pols[first], "memory": MEMORY, "clock": li_dai_peng(),
                          "seconds": b["seconds"], "seed": sd, "slot_floor": SLOT_FLOOR})
        out = run_tasks(ctx, timed_growth, tasks)
        points: dict = {}
        for (label, load), res in zip(keys, out):
            points.setdefault(label, {}).setdefault(str(load), []).append(res)
        return points

    points = cached_json(ctx, f"{NAME}_runs", dict(b, root_seed=ROOT_SEED, theory=th), run)
    results = {"title": TITLE,
               "params": dict(b, memory=MEMORY, token_budget=TOKEN_BUDGET, prompt=PROMPT,
                              decode=DECODE, capped_seqs=CAPPED_SEQS, root_seed=ROOT_SEED,
                              resolution=RESOLUTION, saturated=SATURATED),
               "theory": th, "points": points}
    write_results(ctx, NAME, results)
    return results


def _values(results: dict, label: str, load: float, key: str = "growth"):
    runs = results["points"].get(label, {}).get(str(load))
    return None if runs is None else [r[key] for r in runs]


def _growth_row(results, label, load, wanted, claim, source):
    th = results["theory"]
    values = _values(results, label, load)
    if values is None:
        return None
    eps = RESOLUTION * th["lambda_c"]
    state, iv = growth_verdict(values, eps, LEVEL_CHECK)
    return Check(NAME, claim, source, f"{wanted} (lambda_c = {fmt(th['lambda_c'], 4)} req/s)",
                 f"growth {iv.level_text(LEVEL_CHECK, 3, 'req/s')}: {state}",
                 f"{wanted} iff the {LEVEL_CHECK:.0%} Student-t interval lies "
                 f"{'below' if wanted == 'stable' else 'above'} {fmt(eps, 3)} req/s "
                 f"({RESOLUTION:g} lambda_c); the opposite side fails; else inconclusive",
                 claim_verdict(state, wanted))


def verify(results: dict) -> list:
    th = results["theory"]
    wc, capped = list(policies())
    cond = (f"lambda (m_p + m_d) < b / t(b): lambda_c = {fmt(th['capacity_tokens'], 5)} tok/s "
            f"/ {fmt(th['m_p'] + th['m_d'], 4)} tok = {fmt(th['lambda_c'], 4)} req/s")
    rows = [r for r in (
        _growth_row(results, wc, BELOW, "stable",
                    f"Theorem 2, sufficiency: a work-conserving batcher (chunked prefill, "
                    f"b = {TOKEN_BUDGET} tokens) is stable at lambda = {BELOW:g} lambda_c ({cond})",
                    "paper"),
        _growth_row(results, wc, ABOVE, "unstable",
                    f"Theorem 2, necessity: at lambda = {ABOVE:g} lambda_c even the "
                    "work-conserving batcher grows",
                    "paper")) if r is not None]
    tokens = _values(results, wc, SATURATED, "tokens_per_second")
    if tokens:
        iv = Interval.of([x / th["capacity_tokens"] for x in tokens], LEVEL)
        inside = 1 - TOLERANCE <= iv.low and iv.high <= 1 + TOLERANCE
        outside = iv.high < 1 - TOLERANCE or iv.low > 1 + TOLERANCE
        rows.append(Check(
            NAME, "throughput optimality: saturated, the work-conserving batcher processes "
                  "b / t(b) tokens per second (it attains the bound).  The claim that vanilla "
                  "vLLM and FasterTransformer do not cannot be checked here: prefill-only "
                  "iterations and request-level static batches are not configurations of "
                  "this engine (every active request decodes in every iteration)", "paper",
            f"b / t(b) = {TOKEN_BUDGET} / {fmt(th['t_b'] * 1e3, 4)} ms = "
            f"{fmt(th['capacity_tokens'], 5)} tok/s",
            f"tokens per second / (b / t(b)) = {iv.level_text(LEVEL, 4)}",
            f"PASS if the {LEVEL:.0%} interval lies within 1 +- {TOLERANCE:g}, FAIL if it "
            "lies outside, else inconclusive",
            "PASS" if inside else "FAIL" if outside else "INCONCLUSIVE"))
    row = _growth_row(results, capped, BELOW, "unstable",
                      f"work conservation is the key design principle: the same engine with at "
                      f"most {CAPPED_SEQS} requests in the batch (token capacity idle while "
                      f"requests wait) is not throughput-optimal: it grows at lambda = "
                      f"{BELOW:g} lambda_c", "ours")
    if row is not None:
        rows.append(row)
    return rows
