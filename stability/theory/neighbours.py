"""Theory values of the neighbouring papers, written in this package's slot model.

Each function states the claim it encodes and what in it is ours.  Sources (read from
their public abstracts and summaries; the full texts were not available here):

- Ao, Dong, Luo, Simchi-Levi, arXiv 2606.15555 (limit cycles of greedy batching);
- Nie, Si, Zhou, arXiv 2605.04595 (service rate mu = M / (b E[g]));
- Li, Dai, Peng, arXiv 2504.07347 (throughput optimality, lambda (m_p + m_d) < b / t(b)).

Model (docs/model.md section 1): a request with prompt l and decode o holds l + g + 1 tokens while it
decodes its (g + 1)-th token, so its memory-time is w(l, o) = l o + o (o + 1) / 2 slots x
tokens; one slot is one iteration.
"""

from __future__ import annotations

import math

import numpy as np

from stability import validation

__all__ = ["memory_time", "equilibrium_throughput", "cohort_cycle_throughput",
           "cohort_cycle_loss", "fluid_cycle_loss", "greedy_linearised_radius",
           "service_rate", "operating_batch_time", "largest_request_slack",
           "step_batch_time", "token_capacity", "throughput_optimal_rate"]


def memory_time(prompt: int, decode: int) -> int:
    """w(l, o) = l o + o (o + 1) / 2: tokens x slots one request holds (docs/model.md section 1)."""
    l = validation.integer("prompt", prompt, 1)
    o = validation.integer("decode", decode, 1)
    return l * o + o * (o + 1) // 2


# ------------------------------------------------------------- Ao et al. (limit cycles)
def equilibrium_throughput(prompt: int, decode: int, memory: int) -> float:
    """Completions per slot of the eviction-free equilibrium of identical requests under
    saturated input: M / w(l, o) (exact when M is a multiple of w: k requests start every
    slot, ages 0..o-1, memory exactly M)."""
    memory = validation.memory(memory)
    return memory / memory_time(prompt, decode)


def cohort_cycle_throughput(prompt: int, decode: int, memory: int) -> float:
    """Completions per slot on the worst-case limit cycle of saturated Greedy with restart
    eviction and identical requests, in this package's slot model (ours).

    The cycle: a cohort of floor(M / (l + 1)) starts together in an empty cache; every
    slot the cohort's demand grows by one token per request and LIFO eviction thins it to
    floor(M / (l + a + 1)) at age a (the evicted lose their progress and rejoin the
    queue); floor(M / (l + o)) complete together after o slots, freeing the cache for the
    next cohort.  So the cycle has period o and delivers floor(M / (l + o)) / o per slot.
    Ao et al. prove that the eviction-free equilibrium is unstable and that the system
    converges to a unique worst-case cycle; this is that cycle as it appears here.
    """
    memory = validation.memory(memory)
    l = validation.integer("prompt", prompt, 1)
    o = validation.integer("decode", decode, 1)
    return (memory // (l + o)) / o


def cohort_cycle_loss(prompt: int, decode: int, memory: int) -> float:
    """Throughput lost on the cohort cycle, 1 - cycle / equilibrium (exact, with floors)."""
    return 1.0 - (cohort_cycle_throughput(prompt, decode, memory)
                  / equilibrium_throughput(prompt, decode, memory))


def fluid_cycle_loss(prompt: float, decode: float) -> float:
    """The same loss without the floors: 1 - w / (o (l + o)) = (o - 1) / (2 (l + o)).

    It is below 1/2 and tends to 1/2 as l / o -> 0 and o -> infinity: Ao et al.'s
    "throughput losses as large as 50%"."""
    return (decode - 1) / (2.0 * (prompt + decode))


def greedy_linearised_radius(prompt: float, decodes, weights=None) -> float:
    """Spectral radius of saturated Greedy linearised at its eviction-free equilibrium
    (ours: the survival-polynomial mechanism of Ao et al. written in this slot model).

    Greedy keeps the cache full: sum_{j >= 0} a_{t-j} c_j = M with a_t the admissions of
    slot t and c_j = S(j) (l + j + 1), S(j) the share of requests with o > j.  Deviations
    x_t from the equilibrium obey sum_j c_j x_{t-j} = 0, whose characteristic polynomial
    is sum_j c_j z^(J - 1 - j), J = max o.  The equilibrium is locally stable iff every
    root lies inside the unit disc.  As l grows c_j / l -> S(j), whose polynomial has roots
    on the unit circle exactly when gcd(decodes) > 1: coprime lengths stabilise,
    non-coprime ones do not (the input-dominated regime of Ao et al.).
    """
    d = [validation.integer("decode", x, 1) for x in decodes]
    if not d:
        raise ValueError("decodes must hold at least one decode length")
    p = np.full(len(d), 1.0 / len(d)) if weights is None else np.asarray(weights, float)
    if p.shape != (len(d),) or np.any(p < 0) or not math.isclose(float(p.sum()), 1.0):
        raise ValueError(f"weights must be {len(d)} shares >= 0 summing to 1, got {weights!r}")
    top = max(d)
    c = np.array([sum(pk for dk, pk in zip(d, p) if j < dk) * (prompt + j + 1)
                  for j in range(top)], dtype=float)
    if top == 1:
        return 0.0
    return float(np.max(np.abs(np.roots(c))))


# ---------------------------------------------------------- Nie et al. (service rate)
def service_rate(mean_memory_time: float, memory: int, batch_time: float = 1.0) -> float:
    """mu = M / (b E[g]) (Nie et al.): requests per time unit.  With g the lifetime KV
    memory in tokens x iterations (here E[w]) and b = 1 slot, mu is Prop. 3.2's
    lambda* = M / E[w]; with b in seconds, mu is in requests per second."""
    memory = validation.memory(memory)
    validation.number("mean_memory_time", mean_memory_time, 0.0, strict_low=True)
    validation.number("batch_time", batch_time, 0.0, strict_low=True)
    return memory / (batch_time * mean_memory_time)


def operating_batch_time(clock, mean_prompt: float, mean_decode: float,
                         mean_memory_time: float, memory: int) -> float:
    """A representative batch time b (seconds) of a Linear clock: its iteration time at the
    full-memory operating point (ours; Nie et al. take b from measurements).

    At the service rate x = M / E[w] requests per iteration the cache holds about M tokens,
    n = x E[o] requests decode (Little) and p = x E[l] prompt tokens are prefilled per
    iteration, so b = c0 + c_seq n + c_ctx M + c_prefill p + c_step ceil((n + p) / step).
    """
    memory = validation.memory(memory)
    x = memory / mean_memory_time
    n, p = x * mean_decode, x * mean_prompt
    return float(clock.c0 + clock.c_seq * n + clock.c_ctx * memory + clock.c_prefill * p
                 + clock.c_step * math.ceil((n + p) / clock.step_tokens))


def largest_request_slack(largest_tokens: int, memory: int) -> float:
    """delta = max (l + o) / M: the memory slack tied to the largest request (our reading
    of Nie et al.'s delta; their exact expression is not available here)."""
    memory = validation.memory(memory)
    return validation.integer("largest_tokens", largest_tokens, 1) / memory


# ---------------------------------------------------------- Li, Dai, Peng (Theorem 2)
def step_batch_time(clock, tokens: int) -> float:
    """t(b) of a step clock (seconds) for a batch of ``tokens`` tokens and no decode or
    context terms: c0 + c_step ceil(b / step)."""
    tokens = validation.integer("tokens", tokens, 1)
    return float(clock.c0 + clock.c_step * math.ceil(tokens / clock.step_tokens))


def token_capacity(clock, token_budget: int) -> float:
    """b / t(b): tokens per second of full batches of b tokens."""
    return token_budget / step_batch_time(clock, token_budget)


def throughput_optimal_rate(clock, token_budget: int, mean_prompt: float,
                            mean_decode: float) -> float:
    """Li-Dai-Peng's Theorem 2 boundary: a work-conserving batcher with b tokens per batch
    is stable iff lambda (m_p + m_d) < b / t(b), i.e. lambda < b / (t(b) (m_p + m_d)).
    Here a request costs l prefill tokens and o decode tokens (m_p = E[l], m_d = E[o])."""
    return token_capacity(clock, token_budget) / (mean_prompt + mean_decode)
