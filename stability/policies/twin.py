"""Twin-tuned flow control: the budget chosen online by simulating the observed workload
(docs/adaptive.md section 5).

``AdaptiveFlow`` reads its budget from run-time signals, and none of them is precise enough
within a run to place b (docs/adaptive.md 4: one 256-slot window's drain varies by 1.5-4%
of lambda, neighbouring budgets differ by 0.5-1.5%).  ``TwinFlow`` moves the noise from the
signal to a computation: it fits the workload the scheduler has seen (the arrival rate and
the completed requests' (l, o) pairs), simulates ``CheckedFlow`` at every budget of the
tuning grid (and Greedy) on that fitted workload, and runs the best.  Estimating lambda and
the length law needs only a few thousand slots; the Monte Carlo noise of the twin costs CPU,
not run time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from stability import validation
from stability.budgets import CHECKED_MULTIPLIERS
from stability.engine import admission, control
from stability.policies.base import Choice, Policy, param

BLOCK = 256
"""Slots per block of the twin's resampled arrivals (:func:`arrivals`)."""
FOLLOW_PERIOD = 64
"""Slots between updates of the arrival-rate average the budget follows (as AdaptiveFlow's
period: an exponential average over 8 periods, 512 slots)."""
STRETCH = 8
"""The step between decisions grows to at most this many ``retune`` (131,072 slots)."""
TWIN_TAG = 0x7717
"""Mixed into the twin's seeds, so its draws are apart from the run's own streams."""


def _flag(text) -> bool:
    """Command-line or spec value -> bool (true/false, yes/no, 1/0, or a bool)."""
    if isinstance(text, (bool, np.bool_)):
        return bool(text)
    value = str(text).strip().lower()
    if value not in ("true", "false", "yes", "no", "1", "0"):
        raise ValueError(f"follow must be true or false, got {text!r}")
    return value in ("true", "yes", "1")


@dataclass(frozen=True)
class TwinFlow(Policy, kind="flow-twin"):
    """Twin-tuned flow control: Greedy, then ``CheckedFlow`` at the budget a simulation of
    the observed workload ranks best (docs/adaptive.md section 5).

    At slots 256, 1024, 4096, 16384 and then every ``retune`` slots or more (the step
    doubles while the decisions agree, :meth:`Twin.next_pause`): lambda_hat = the
    arrivals of the last ``window`` slots per slot; the sample = a cohort of completed
    requests that arrived in that window (:meth:`Twin.observation`).  The twin draws
    ``twin_replications`` workloads of ``twin_slots`` slots (the observed arrivals per slot
    resampled in blocks, lengths resampled from the sample), runs each budget
    b = m lambda_hat of the tuning grid (:data:`stability.budgets.CHECKED_MULTIPLIERS`,
    m = infinity being Greedy) on the same draws and keeps the one with the fewest
    requests in the system (the tuning objective), within ``margin`` (:func:`choose`).
    Between decisions the admission is ``CheckedFlow``'s at that b (or Greedy's), raised to
    m x the measured arrival rate when the load grows (``follow``), so the Section 3
    guarantee of the budgeted mode holds at the budget held.
    """

    observe: int = param(256, help="flow-twin: slot of the first decision (greedy before)",
                         parse=int, examples=Choice((3, 20)))
    retune: int = param(16384, help="flow-twin: slots between decisions", parse=int,
                        examples=Choice((7, 50)))
    window: int = param(4096, help="flow-twin: slots of history a decision reads", parse=int,
                        examples=Choice((10, 4096)))
    twin_slots: int = param(8000, help="flow-twin: slots of each twin run (a quarter warmup)",
                            parse=int, examples=Choice((40, 120)))
    twin_replications: int = param(2, help="flow-twin: twin workloads per budget", parse=int,
                                   examples=Choice((1, 2)))
    follow: bool = param(True, help="flow-twin: between decisions raise the budget to the "
                                    "chosen multiple of the measured arrival rate when the "
                                    "load grows (updated every 64 slots)", parse=_flag,
                         coerce=_flag, examples=Choice((True, False)))
    margin: float = param(0.02, help="flow-twin: share of the twin objective a change of "
                                     "budget must gain (Greedy: over the best budget)",
                          examples=Choice((0.0, 0.02)))
    min_sample: int = param(32, help="flow-twin: completed requests a decision needs (fewer: "
                                     "the budget is kept)", parse=int, examples=Choice((1, 4)))

    def __post_init__(self):
        for name, low in (("observe", 1), ("retune", 1), ("window", 1), ("twin_slots", 4),
                          ("twin_replications", 1), ("min_sample", 1)):
            object.__setattr__(self, name, validation.integer(name, getattr(self, name), low))
        if not isinstance(self.follow, (bool, np.bool_)):
            raise ValueError(f"follow must be True or False, got {self.follow!r}")
        object.__setattr__(self, "follow", bool(self.follow))
        object.__setattr__(self, "margin", validation.number(
            "margin", self.margin, 0.0, 1.0, strict_high=True))

    def encode(self, memory, num_classes):
        params = admission.new_params(code=admission.ADAPTIVE, cap=memory)
        ctl = control.new_control(period=FOLLOW_PERIOD if self.follow else control.NEVER,
                                  follow=self.follow, unit_scale=float(control.SCALE))
        return admission.Encoded(params, np.zeros(0, np.int64), False, memory, control=ctl)

    def supervisor(self, requests, memory, world, seed):
        return Twin(self, requests, memory, world, seed)


class Twin:
    """The decisions of one run: the engines call :meth:`decide` at each :meth:`next_pause`
    slot, before that slot's arrivals, with what they have seen so far."""

    def __init__(self, policy: TwinFlow, requests, memory: int, world, seed: int):
        self.policy, self.memory, self.world, self.seed = policy, memory, world, seed
        self.prompt, self.decode = requests.prompt, requests.decode
        self.incumbent: float | None = None  # the multiplier held (None: none chosen yet)
        self.step = policy.retune  # slots to the next decision once the early ones are done

    def next_pause(self, t: int) -> int:
        """The decision slot after slot t (t = -1: the first; the engines ask right after
        each decision): ``observe`` x 1, 4, 16, ... until the step reaches ``retune``
        (256, 1024, 4096, 16384 by default), then every ``step`` slots.  The step is
        ``retune``, doubled (up to :data:`STRETCH` x ``retune``) each time a decision keeps
        the budget it had: a workload that stays the same is re-examined more and more
        rarely, one that changes every ``retune`` slots."""
        p = self.policy
        pause = p.observe
        while pause <= t and 3 * pause < p.retune:
            pause *= 4
        return pause if pause > t else t + self.step

    def observation(self, t: int, seen, completion):
        """(pattern, prompts, decodes) from the last ``window`` slots before t: the
        arrivals per slot (lambda_hat is its mean) and the length sample; ``seen`` is each
        request's arrival slot (-1: not yet), ``completion`` its completion slot (-1: not
        yet).

        The sample is the longest run of consecutive arrivals, from the window's first,
        that have all completed: a cohort chosen by arrival, not by length, so the law is
        not tilted towards short requests (which finish first, and under restart eviction
        are the ones that finish at all while the cache thrashes)."""
        start = max(0, t - self.policy.window)
        recent = np.flatnonzero((seen >= start) & (seen < t))
        recent = recent[np.argsort(seen[recent], kind="stable")]
        pattern = np.bincount(seen[recent] - start, minlength=t - start)
        pending = np.flatnonzero(completion[recent] < 0)
        cohort = recent[:pending[0]] if pending.size else recent
        return pattern, self.prompt[cohort], self.decode[cohort]

    def decide(self, t: int, seen, completion) -> tuple[float, float] | None:
        """(budget, multiplier) from slot t on (inf: Greedy), or None to keep the current
        one."""
        pattern, prompts, decodes = self.observation(t, seen, completion)
        rate = float(pattern.sum()) / pattern.size  # lambda_hat
        if prompts.size < self.policy.min_sample or rate <= 0.0:
            return None
        objective = twin_objective(rate, pattern, prompts, decodes,
                                   self.memory, self.world, self.policy.twin_slots,
                                   self.policy.twin_replications, [self.seed, t, TWIN_TAG],
                                   CHECKED_MULTIPLIERS)
        best = choose(objective, self.policy.margin, self.incumbent)
        kept = best == self.incumbent
        self.step = min(2 * self.step, STRETCH * self.policy.retune) if kept \
            else self.policy.retune
        self.incumbent = best
        return (math.inf, math.inf) if math.isinf(best) else (round(best * rate, 6), best)


def choose(objective: dict, margin: float, incumbent: float | None = None) -> float:
    """The multiplier with the fewest requests in the system, with two margins (shares).
    Greedy (m = inf) only if it beats the best finite budget by more than ``margin``; and
    a finite ``incumbent`` (the multiplier held) stays unless the winner beats it by more
    than ``margin`` (no switching on twin noise).  A twin starts empty and runs a few
    thousand slots, and Greedy's thrash on synchronised lengths does
    not always begin within them: then Greedy ties with the large budgets (whose credit
    never binds) while the real run, already loaded, thrashes.  Where Greedy is truly best
    the large budgets are within a percent or two of it."""
    finite = {m: v for m, v in objective.items() if not math.isinf(m)}
    best = min(finite, key=finite.get) if finite else math.inf
    greedy = objective.get(math.inf)
    if greedy is not None and (not finite or greedy < (1.0 - margin) * finite[best]):
        return math.inf
    if incumbent in finite and finite[incumbent] <= (1.0 + margin) * finite[best]:
        return incumbent
    return best


def arrivals(rng, pattern: np.ndarray, slots: int, factor: float) -> np.ndarray:
    """Twin arrivals per slot: blocks of :data:`BLOCK` consecutive slots of the observed
    ``pattern`` (arrivals per slot), from random offsets, joined to ``slots`` slots (a
    block bootstrap: bursts and lulls up to a block long are kept, where a Poisson twin
    would smooth them away), then scaled by ``factor``: each arrival kept with
    probability ``factor`` (< 1), or Poisson((factor - 1) x count) more per slot (> 1)."""
    block = min(BLOCK, pattern.size)
    starts = rng.integers(0, pattern.size - block + 1, -(-slots // block))
    counts = pattern[(starts[:, None] + np.arange(block)).ravel()[:slots]]
    if factor < 1.0:
        return rng.binomial(counts, factor)
    return counts + rng.poisson((factor - 1.0) * counts)


def spread(r: int, replications: int, rate: float, window: int) -> float:
    """Replication r's arrival rate over lambda_hat: 1 + z_r se, with se = 1 / sqrt(lambda_hat
    window) the relative standard error of lambda_hat and z_r evenly spread over [-1, 1]
    (1 for a single replication: the twin is loaded at the pessimistic end).  A budget is
    then judged over the arrival rates the observation cannot tell apart."""
    z = 1.0 if replications == 1 else -1.0 + 2.0 * r / (replications - 1)
    return 1.0 + z / math.sqrt(rate * window)


def twin_objective(rate, pattern, prompts, decodes, memory, world, slots, replications,
                   entropy, multipliers) -> dict:
    """Mean requests in the system (waiting + running, after a quarter of warmup) of
    ``CheckedFlow(m rate)`` for every m (inf: Greedy), each on the same ``replications``
    twin workloads: arrivals per slot from :func:`arrivals` (the observed ``pattern``
    resampled in blocks, at the rates of :func:`spread`) with (l, o) resampled from the
    sample.  The twin runs on the fast kernel in the run's ``world`` (an engine ``World``)
    in unit slots, whatever the run's clock."""
    from stability.engine.run import run_batch
    from stability.policies.adaptive import CheckedFlow
    from stability.policies.fcfs import Greedy

    rng = np.random.default_rng(entropy)
    draws = []
    for r in range(replications):
        counts = arrivals(rng, pattern, slots, spread(r, replications, rate, pattern.size))
        pick = rng.integers(0, prompts.size, int(counts.sum()))
        draws.append((np.repeat(np.arange(slots, dtype=np.int64), counts),
                       prompts[pick].astype(np.int64), decodes[pick].astype(np.int64)))
    unit = world._replace(clock=None)
    objective = {}
    for m in multipliers:
        enc = (Greedy() if math.isinf(m) else CheckedFlow(round(m * rate, 6))).encode(memory, 1)
        total = 0.0
        for arrival, prompt, decode in draws:
            raw = run_batch(arrival, prompt, decode, np.zeros(arrival.size, np.int64), enc,
                            memory, slots, slots // 4, unit, series_points=1)
            stats = raw.stats
            measured = stats.measured_slots  # as Metrics.queue_mean + active_mean
            total += stats.queue_sum / measured + stats.active_sum / measured
        objective[m] = total / replications
    return objective


__all__ = ["TwinFlow", "Twin", "twin_objective"]
