"""Twin-tuned flow control: the budget chosen online by simulating the observed workload
(docs/adaptive.md section 5).

``AdaptiveFlow`` reads its budget from run-time signals, and none of them is precise enough
within a run to place b (docs/adaptive.md 4: one 256-slot window's drain varies by 1.5-4%
of lambda, neighbouring budgets differ by 0.5-1.5%).  ``TwinFlow`` moves the noise from the
signal to a computation: it fits the workload the scheduler has seen (the arrival rate and
the completed requests' (l, o) pairs), simulates ``CheckedFlow`` at budgets of the tuning
grid (and Greedy) on that fitted workload (the whole grid first, then a local search around
the budget held), and runs the best.  Estimating lambda and the length law needs only a
few thousand slots; the Monte Carlo noise of the twin costs CPU, not run time.
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
CHANGE_Z = 3.0
"""Standard errors by which the fit must move for a decision after the early ones to run
the twin again, once the last twin confirmed the multiple held (:class:`Fit`): with the
window full, a stationary workload's fit is no more precise than the last one, so a new
twin would only redraw its noise.  A twin that changed the multiple is always checked by
the next one (a change can be the twin's noise: on the tuning seeds, one replication of the
l = 100 lattice left Greedy for 3 lambda at slot 4096 and came back at 16384)."""
REFINE_BAND = 0.05
"""Share of the twin objective within which budgets are run again on longer twins
(:meth:`Twin.refine`)."""
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
    resampled in blocks, in seconds under a clock; lengths resampled from the sample),
    runs budgets b = m lambda_hat of the tuning grid
    (:data:`stability.budgets.CHECKED_MULTIPLIERS`, m = infinity being Greedy) on the same
    draws (all of them at first, then a local search around the multiple held,
    :func:`search`) and keeps the one with the fewest requests in the system (the tuning
    objective), within ``margin`` (:func:`choose`).  From ``retune`` on, a decision whose
    fit has not moved since a twin that confirmed the multiple runs no twin (:class:`Fit`).
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
        self.tick = None  # a timed run: each request's arrival tick
        if world.clock is not None:
            self.tick = requests.arrival_ticks(world.clock.tick)
        self.incumbent: float | None = None  # the multiplier held (None: none chosen yet)
        self.fit: Fit | None = None  # the workload the last twin was drawn from
        self.confirmed = False  # the last twin kept the multiple held
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
        """(pattern, prompts, decodes, slot_ticks) from the last ``window`` slots before t:
        the arrivals per slot (lambda_hat is its mean), the length sample, and for a timed
        run the mean ticks per iteration (None in unit slots); ``seen`` is each request's
        arrival slot (-1: not yet), ``completion`` its completion slot (-1: not yet).

        In a timed run the pattern counts arrivals in the window's iterations' worth of
        equal bins of *time* (its first to its last arrival): how many arrive per iteration
        depends on how long the iterations are, and so on the budget, while the arrivals
        per second do not (:class:`TwinBench` replays them in seconds).

        The sample is the longest run of consecutive arrivals, from the window's first,
        that have all completed: a cohort chosen by arrival, not by length, so the law is
        not tilted towards short requests (which finish first, and under restart eviction
        are the ones that finish at all while the cache thrashes)."""
        start = max(0, t - self.policy.window)
        recent = np.flatnonzero((seen >= start) & (seen < t))
        recent = recent[np.argsort(seen[recent], kind="stable")]
        pending = np.flatnonzero(completion[recent] < 0)
        cohort = recent[:pending[0]] if pending.size else recent
        if self.tick is None:
            pattern = np.bincount(seen[recent] - start, minlength=t - start)
            return pattern, self.prompt[cohort], self.decode[cohort], None
        ticks = self.tick[recent]
        first = int(ticks.min()) if ticks.size else 0
        slot_ticks = max(1.0, (int(ticks.max()) + 1 - first) / (t - start)) if ticks.size \
            else 1.0
        bins = np.minimum(((ticks - first) / slot_ticks).astype(np.int64), t - start - 1)
        pattern = np.bincount(bins, minlength=t - start)
        return pattern, self.prompt[cohort], self.decode[cohort], slot_ticks

    def decide(self, t: int, seen, completion) -> tuple[float, float] | None:
        """(budget, multiplier) from slot t on (inf: Greedy), or None to keep the current
        one."""
        pattern, prompts, decodes, slot_ticks = self.observation(t, seen, completion)
        rate = float(pattern.sum()) / pattern.size  # lambda_hat
        if prompts.size < self.policy.min_sample or rate <= 0.0:
            return None
        fit = Fit.of(rate, pattern.size, prompts, decodes)
        if t >= self.policy.retune and self.confirmed and not fit.differs(self.fit):
            self._stretch()  # kept, without a twin
            return None
        self.fit = fit
        bench = TwinBench(rate, pattern, prompts, decodes, self.memory, self.world,
                          self.policy.twin_slots, self.policy.twin_replications,
                          [self.seed, t, TWIN_TAG], slot_ticks)
        objective = search(bench, CHECKED_MULTIPLIERS, self.incumbent)
        objective = self.refine(objective, rate, pattern, prompts, decodes, slot_ticks, t)
        best = choose(objective, self.policy.margin, self.incumbent)
        kept = best == self.incumbent
        self.confirmed = kept
        if kept:
            self._stretch()
        else:
            self.step = self.policy.retune
        self.incumbent = best
        return (math.inf, math.inf) if math.isinf(best) else (round(best * rate, 6), best)


    def _stretch(self) -> None:
        """A kept budget: the step to the next decision doubles, up to :data:`STRETCH` x
        ``retune``."""
        self.step = min(2 * self.step, STRETCH * self.policy.retune)

    def refine(self, objective, rate, pattern, prompts, decodes, slot_ticks, t) -> dict:
        """Where a budget beats Greedy by more than ``margin`` and several finite multiples
        lie within :data:`REFINE_BAND` of the best, those run again on twins twice as
        long, and the choice is made among them on these.  The multiple held is not added
        when it lies outside the band: a longer twin on fresh draws would give a clearly
        beaten budget a second chance (on one report replication of the l = 100 lattice it
        kept 3 lambda, 58% behind 1.7 lambda in the short twin, because the thrash did not
        begin in the long one)."""
        finite = {m: v for m, v in objective.items() if not math.isinf(m)}
        greedy = objective.get(math.inf)
        if not finite or greedy is None:
            return objective
        low = min(finite.values())
        if greedy <= (1.0 + self.policy.margin) * low:
            return objective
        close = {m for m, v in finite.items() if v <= (1.0 + REFINE_BAND) * low}
        if len(close) < 2:
            return objective
        long = TwinBench(rate, pattern, prompts, decodes, self.memory, self.world,
                         2 * self.policy.twin_slots, self.policy.twin_replications,
                         [self.seed, t, TWIN_TAG, 1], slot_ticks)
        return {m: long.objective(m) for m in sorted(close)}


@dataclass(frozen=True)
class Fit:
    """What a twin is drawn from, in two numbers with their standard errors: the arrival
    rate lambda_hat (se sqrt(lambda_hat / slots), Poisson) and the sample's mean
    memory-time E[w] = E[l o + o (o + 1) / 2] (se: sample sd / sqrt(n)), the load's two
    factors."""

    rate: float
    rate_se: float
    work: float
    work_se: float

    @classmethod
    def of(cls, rate: float, slots: int, prompts, decodes) -> "Fit":
        w = prompts.astype(float) * decodes + decodes * (decodes + 1.0) / 2.0
        return cls(rate, math.sqrt(rate / slots), float(w.mean()),
                   float(w.std(ddof=1)) / math.sqrt(w.size) if w.size > 1 else math.inf)

    def differs(self, other: "Fit", z: float = CHANGE_Z) -> bool:
        """True if either number moved by more than ``z`` combined standard errors."""
        return (abs(self.rate - other.rate) > z * math.hypot(self.rate_se, other.rate_se)
                or abs(self.work - other.work) > z * math.hypot(self.work_se, other.work_se))


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


class TwinBench:
    """The twin of one decision: ``replications`` workloads drawn from the fit (arrivals
    per slot from :func:`arrivals`, the observed ``pattern`` resampled in blocks at the
    rates of :func:`spread`; (l, o) resampled from the sample), and :meth:`objective` of
    each multiplier on them, run once and remembered.  The twin runs on the fast kernel in
    the run's ``world`` (an engine ``World``).  With ``slot_ticks`` (a timed run) the
    pattern's bins are that many ticks long: the twin's arrivals get times (uniform within
    their bin, over twice the twin's expected span) and it runs under the run's clock."""

    def __init__(self, rate, pattern, prompts, decodes, memory, world, slots, replications,
                 entropy, slot_ticks=None):
        self.rate, self.memory, self.slots, self.world = rate, memory, slots, world
        timed = slot_ticks is not None and world.clock is not None
        if not timed:
            self.world = world._replace(clock=None)
        rng = np.random.default_rng(entropy)
        self.draws = []
        for r in range(replications):
            factor = spread(r, replications, rate, pattern.size)
            if not timed:
                counts = arrivals(rng, pattern, slots, factor)
                arrival, tick = np.repeat(np.arange(slots, dtype=np.int64), counts), None
            else:
                counts = arrivals(rng, pattern, 2 * slots, factor)
                bins = np.repeat(np.arange(2 * slots), counts)
                tick = np.sort(np.rint((bins + rng.random(bins.size)) * slot_ticks)
                               .astype(np.int64))
                arrival = np.zeros(tick.size, np.int64)
            pick = rng.integers(0, prompts.size, arrival.size)
            self.draws.append((arrival, prompts[pick].astype(np.int64),
                               decodes[pick].astype(np.int64), tick))
        self.values: dict[float, float] = {}
        self.unbound = math.inf  # from this multiplier up, the budget never binds
        self.runs = 0  # twin runs made

    def objective(self, m: float) -> float:
        """Mean requests in the system (waiting + running, after a quarter of warmup; per
        slot, or in a timed twin per unit of time) of ``CheckedFlow(m rate)`` (m = inf:
        Greedy) over the draws, the tuning objective.
        A budget that held back no request that fitted, in any draw (``capped_slots`` = 0),
        gives the same runs at every larger budget and at Greedy: the credit of a larger
        quantum is never smaller, slot by slot, so no admission changes.  Those are not
        run again."""
        if m > self.unbound:
            return self.values[self.unbound]
        if m not in self.values:
            from stability.policies.adaptive import CheckedFlow
            from stability.policies.fcfs import Greedy

            policy = Greedy() if math.isinf(m) else CheckedFlow(round(m * self.rate, 6))
            enc = policy.encode(self.memory, 1)
            results = [self._run(enc, *draw) for draw in self.draws]
            self.runs += len(results)
            self.values[m] = sum(v for v, _ in results) / len(results)
            if sum(c for _, c in results) == 0:
                self.unbound = min(self.unbound, m)
        return self.values[m]

    def _run(self, enc, arrival, prompt, decode, tick) -> tuple[float, int]:
        """(mean requests in the system, capped slots (1 for Greedy, which has no budget))
        of one twin run: per slot as Metrics.queue_mean + active_mean, or in a timed twin
        by :func:`time_in_system`."""
        from stability.engine.run import run_batch

        raw = run_batch(arrival, prompt, decode, np.zeros(arrival.size, np.int64), enc,
                        self.memory, self.slots, self.slots // 4, self.world, series_points=1,
                        arrival_tick=tick)
        capped = raw.control.capped_slots if raw.control is not None else 1
        if tick is not None:
            end = min(raw.time.end, int(tick[-1]) + 1) if tick.size else raw.time.end
            return time_in_system(tick, raw.completion_tick, raw.time.window_start, end), \
                capped
        measured = raw.stats.measured_slots
        return raw.stats.queue_sum / measured + raw.stats.active_sum / measured, capped


def time_in_system(arrival, completion, start: int, end: int) -> float:
    """Time-average number of requests in the system over [start, end): each request is in
    it from its arrival to its completion (-1: not completed, still in it at ``end``).
    By Little's law its ratio to the arrival rate is the mean time in system, the
    objective in seconds."""
    if end <= start:
        return 0.0
    leave = np.where(completion < 0, end, np.minimum(completion, end))
    inside = np.clip(leave - np.maximum(arrival, start), 0, None)
    return float(inside.sum()) / (end - start)


def search(bench: TwinBench, grid, incumbent: float | None) -> dict:
    """The objective of the multipliers a decision looks at (``grid`` ascending, Greedy's
    inf last).  With no finite multiple held (the first decision, or Greedy held) it looks
    at the whole grid: Greedy has no neighbour on it (3 lambda binds in bursts, and was
    often worse than both 2.2 lambda and Greedy on the +-5 lattice).  Otherwise it looks at
    the multiple held, the two below it, the one above and Greedy, then further down (up)
    while the lowest (highest) budget looked at is strictly better than the next one up
    (down): it stops at a minimum of the objective along the grid or at an end.  Two below,
    not one: the objective can have a bump just below a large multiple held (the +-5
    lattice again).  On the tuning seeds this search chose as the whole grid did in 159 of
    160 regime-map cells (one step down: 158); on the 400,000-slot benchmark workloads it
    makes 56 twin runs instead of 108.  Greedy is
    looked at last, so that a budget that never binds gives its value without a run
    (:meth:`TwinBench.objective`)."""
    grid = list(grid)
    finite = [m for m in grid if not math.isinf(m)]
    if incumbent not in finite:
        return {m: bench.objective(m) for m in grid}
    i = finite.index(incumbent)
    lo, hi = max(0, i - 2), min(len(finite) - 1, i + 1)
    values = {m: bench.objective(m) for m in finite[lo:hi + 1]}
    while lo > 0 and values[finite[lo]] < values[finite[lo + 1]]:
        lo -= 1
        values[finite[lo]] = bench.objective(finite[lo])
    while hi < len(finite) - 1 and values[finite[hi]] < values[finite[hi - 1]]:
        hi += 1
        values[finite[hi]] = bench.objective(finite[hi])
    for m in grid[len(finite):]:  # Greedy
        values[m] = bench.objective(m)
    return values


__all__ = ["TwinFlow", "Twin", "TwinBench", "search", "time_in_system"]
