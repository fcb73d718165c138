"""The necessary condition in requests per second under a timed clock (docs/model.md 2.4, 3.1).

Claim (ours, extending Prop. 3.2): under a :class:`~stability.clock.Linear` clock no
scheduler is stable at a rate per second above

    lambda*_s = lambda* / d*,   d* = c0 + c_seq lambda* E[o] + c_ctx M + c_prefill lambda* E[l]
                                     + c_step lambda* (E[o] + E[l]) / step_tokens,

with lambda* = M / E[w] the bound of Prop. 3.2 per iteration.  Proof: count only the
iterations that run something, and let lambda_it be the arrivals per such iteration.  Each
request decodes at least o tokens, holds at least w token-iterations and prefills at least
l tokens, so per iteration E[n] >= lambda_it E[o], E[R] >= lambda_it E[w] and E[p] >=
lambda_it E[l]; the memory caps E[R] <= M, so lambda_it <= lambda*; and ceil(x) >= x bounds
the step term.  The mean iteration therefore lasts at least c0 + lambda_it K with K = c_seq
E[o] + c_ctx E[w] + c_prefill E[l] + c_step (E[o] + E[l]) / step_tokens, and the wall time
per iteration is at least that (idle time only adds), so lambda_s <= lambda_it / (c0 +
lambda_it K), which increases in lambda_it and is largest at lambda_it = lambda*.  At
that point it is the mean iteration of a full memory with no eviction, no recomputed
prefill and no idle time; evictions, recomputes, idle gaps and rounding of the step term
all make the achievable rate lower.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from stability.clock import Clock, Linear, Unit
from stability.theory.conditions import critical_rate
from stability.theory.budget import class_mix
from stability.workload import Workload

__all__ = ["CriticalSeconds", "critical_rate_seconds"]


@dataclass(frozen=True)
class CriticalSeconds:
    """lambda* per iteration and per second under a clock, with the boundary's batch."""

    per_iteration: float  # lambda* = M / E[w], total requests per iteration
    iteration_seconds: float  # d* = clock(E[n], M, E[p]) at the boundary
    per_second: float  # lambda* / d*
    running: float  # E[n] = lambda* E[o]
    prefill_tokens: float  # E[p] = lambda* E[l]

    def to_dict(self) -> dict:
        return asdict(self)


def critical_rate_seconds(workload: Workload, memory: int, clock: Clock) -> CriticalSeconds:
    """lambda*_s = lambda* / d*: no scheduler is stable at a larger rate per second with
    ``workload``'s class mix under ``clock`` (the module docstring proves it)."""
    if isinstance(clock, Unit) or not isinstance(clock, Linear):
        raise ValueError(f"clock must be a timed Linear clock (jaillet, li-dai-peng, "
                         f"linear:..., profile:...), got {clock!r}")
    lam = critical_rate(workload, memory)
    mix = class_mix(workload)
    mean_o = float(np.dot(mix, [c.decode.mean() for c in workload.classes]))
    mean_l = float(np.dot(mix, [c.prompt.mean() for c in workload.classes]))
    n, p = lam * mean_o, lam * mean_l
    d = (clock.c0 + clock.c_seq * n + clock.c_ctx * memory + clock.c_prefill * p
         + clock.c_step * (n + p) / clock.step_tokens)
    return CriticalSeconds(lam, d, lam / d, n, p)
