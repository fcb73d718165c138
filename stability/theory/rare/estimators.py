"""Importance-sampling and plain Monte Carlo estimates of P(U > M), and their tables."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.stats import beta as beta_dist
from scipy.stats import norm

from stability import validation
from stability.theory.budget import as_budget
from stability.theory.demand import DemandModel
from stability.theory.exact_tail import exact_tail
from stability.theory.moments import demand_mean, demand_variance
from stability.theory.overflow import chernoff_rate
from stability.theory.rare.sampler import (
    MAX_AGES,
    MC_METHODS,
    MIN_HITS,
    TiltedSampler,
    _check_alpha,
    _check_int,
    _ages_needed,
    _check_workload,
    _plain_samples,
)
from stability.workload import Workload

__all__ = ["Estimate", "OverflowRow", "OverflowTable", "overflow_probability_is",
           "overflow_probability_mc", "overflow_table"]

# ---------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class Estimate:
    """An estimate of the per-slot overflow probability P(U > M) (the U of docs/model.md 3.2).

    Attributes
    ----------
    value : float
        The estimate of P(U > M).
    stderr : float
        Its standard error.
    ci_low, ci_high : float
        Confidence interval at ``level`` (importance sampling: normal
        interval, ``ci_high`` widened by ``truncation_bound``; plain MC: Clopper-Pearson).
    rel_error : float
        stderr / value (inf when value is 0).
    samples : int
        N, samples drawn.
    theta : float
        Tilt, per token (0 for plain Monte Carlo).
    memory : int
        M, KV capacity in tokens.
    level : float
        Confidence level 1 - alpha of the interval.
    hits : int
        Samples with U > M.
    log_value : float
        Natural log of ``value`` (finite below 1e-308).
    truncation_bound : float
        Bound on the bias from ages beyond the table (absolute; 0 when
        every decode law is bounded).
    method : str
        "importance" or "plain".
    seconds : float
        Wall time of the sampling.
    """

    value: float
    stderr: float
    ci_low: float
    ci_high: float
    rel_error: float
    samples: int
    theta: float
    memory: int
    level: float
    hits: int
    log_value: float
    truncation_bound: float
    method: str
    seconds: float

    @property
    def rel_half_width(self) -> float:
        """(ci_high - ci_low) / (2 value): the interval's half-width relative to the value."""
        return (self.ci_high - self.ci_low) / (2.0 * self.value) if self.value > 0 else math.inf

    def contains(self, x: float) -> bool:
        return self.ci_low <= x <= self.ci_high

    def to_dict(self) -> dict:
        return asdict(self)



# ---------------------------------------------------------------------------------------
# Importance sampling


def _check_memory(memory) -> int:
    return validation.memory(memory)


def _max_value(workload: Workload, budget) -> float:
    return DemandModel(workload, budget).max_value


def overflow_probability_is(workload: Workload, budget, memory: int, samples: int = 100_000,
                            seed: int = 0, alpha: float = 0.01, theta: float | None = None,
                            workers: int = 1) -> Estimate:
    """P(U > M) by importance sampling with exponential tilting (docs/model.md 3.4; beyond the paper).

    Estimates the per-slot overflow probability of the saturated, eviction-free
    relaxation (see the module docstring): a bound on the real system's overflow
    frequency for deterministic budgets, a prediction otherwise.

    Parameters
    ----------
    workload : Workload
        Request classes (their rates give the class mix lambda_k / lambda).
    budget : float, Budget, PerClassBudget or FlowControl
        A number (deterministic b), ``Budget(mean, law)``, a FlowControl policy,
        ``PerClassBudget`` or ``"unthrottled"`` (Poisson(lambda_k) activations).
    memory : int
        M, KV capacity in tokens.
    samples : int
        N, tilted draws.
    seed : int
        Random seed (the draws depend on (seed, samples) only, not on ``workers``).
    alpha : float
        The interval has level 1 - alpha.
    theta : float or None
        Tilt per token; default the Chernoff optimiser theta*(M) (0 when M <= E[U]).
    workers : int
        Threads (the kernel releases the GIL).

    Returns
    -------
    Estimate with value = e^{Lambda_A - theta M} mean_i[1{U_i > M} e^{-theta (U_i - M)}].
    """
    _check_workload(workload)
    memory = _check_memory(memory)
    samples = _check_int("samples", samples, 2, "number of draws")
    seed = _check_int("seed", seed, 0, "random seed")
    alpha = _check_alpha(alpha)
    t0 = time.perf_counter()
    level = 1.0 - alpha
    if memory >= _max_value(workload, budget):  # U <= max U <= M surely
        return Estimate(0.0, 0.0, 0.0, 0.0, math.inf, 0, math.inf, memory, level, 0, -math.inf,
                        0.0, "importance", time.perf_counter() - t0)
    if theta is None:
        theta = chernoff_rate(DemandModel(workload, budget), memory).theta
        theta = _feasible_theta(workload, budget, theta)
    sampler = TiltedSampler(workload, budget, theta)
    u = sampler.sample(samples, seed, workers)
    return _is_estimate(u, sampler, memory, alpha, time.perf_counter() - t0)


def _feasible_theta(workload: Workload, budget, theta: float) -> float:
    """Lower theta until its geometric age table fits MAX_AGES (IS stays unbiased)."""
    base = DemandModel(workload, budget)
    while theta > 0 and _ages_needed(base, theta) > MAX_AGES:
        theta *= 0.9 if theta > 0.5 * base.theta_max else 0.99
        theta = min(theta, base.theta_max * (1 - 1e-9))
    return theta


def _is_estimate(u: np.ndarray, sampler: TiltedSampler, memory: int, alpha: float,
                 seconds: float) -> Estimate:
    theta = sampler.theta
    over = u > memory
    n = u.size
    w = np.zeros(n)
    w[over] = np.exp(-theta * (u[over] - memory).astype(float))
    mean_w = float(w.mean())
    sd_w = float(w.std(ddof=1))
    log_scale = sampler.log_mgf - theta * memory
    scale = math.exp(log_scale)
    value = scale * mean_w
    stderr = scale * sd_w / math.sqrt(n)
    z = float(norm.ppf(1.0 - alpha / 2.0))
    bias = math.exp(sampler.log_mgf_upper - theta * memory) * sampler.truncation_mass
    log_value = log_scale + math.log(mean_w) if mean_w > 0 else -math.inf
    rel = sd_w / (math.sqrt(n) * mean_w) if mean_w > 0 else math.inf
    return Estimate(value, stderr, max(value - z * stderr, 0.0), value + z * stderr + bias,
                    rel, n, theta, memory, 1.0 - alpha, int(over.sum()), log_value, bias,
                    "importance", seconds)



def _mc_estimate(u: np.ndarray, memory: int, alpha: float, tail: float,
                 seconds: float) -> Estimate:
    n = u.size
    hits = int(np.count_nonzero(u > memory))
    p = hits / n
    lo = float(beta_dist.ppf(alpha / 2, hits, n - hits + 1)) if hits > 0 else 0.0
    hi = float(beta_dist.ppf(1 - alpha / 2, hits + 1, n - hits)) if hits < n else 1.0
    stderr = math.sqrt(p * (1 - p) / n)
    rel = stderr / p if p > 0 else math.inf
    return Estimate(p, stderr, lo, min(hi + tail, 1.0), rel, n, 0.0, memory, 1.0 - alpha, hits,
                    math.log(p) if p > 0 else -math.inf, tail, "plain", seconds)


def overflow_probability_mc(workload: Workload, budget, memory: int, samples: int = 100_000,
                            seed: int = 0, alpha: float = 0.01, workers: int = 1,
                            method: str = "direct") -> Estimate:
    """P(U > M) by plain Monte Carlo: U sampled without tilt (for validation).

    ``method="direct"``: budgets, classes and lengths are drawn per age with the
    simulator's generator, and each activation of age a with o > a adds l + a + 1.
    ``method="tables"``: the importance sampler's tables at theta = 0.  Unbounded
    geometric decode lengths: ages beyond the point where the expected number of older
    live activations is below 1e-12 are not sampled (the bound is ``truncation_bound``,
    added to ``ci_high``).  Interval: Clopper-Pearson at level 1 - alpha.
    """
    _check_workload(workload)
    memory = _check_memory(memory)
    samples = _check_int("samples", samples, 2, "number of draws")
    seed = _check_int("seed", seed, 0, "random seed")
    alpha = _check_alpha(alpha)
    t0 = time.perf_counter()
    u, tail = _plain_samples(workload, budget, samples, seed, workers, method)
    return _mc_estimate(u, memory, alpha, tail, time.perf_counter() - t0)



# ---------------------------------------------------------------------------------------
# The validation table


@dataclass(frozen=True)
class OverflowRow:
    """One capacity M of :class:`OverflowTable`.

    Attributes
    ----------
    memory : int
        M, tokens.
    slack : float
        Delta = M - E[U], tokens.
    importance : Estimate
        The importance-sampling :class:`Estimate`.
    plain : Estimate or None
        The plain Monte Carlo :class:`Estimate` (None if not run).
    exact : float or None
        Exact P(U > M) by FFT (:func:`stability.theory.exact_tail`), None if not run;
        an upper bound when ``exact_unit > 1``.
    exact_lower : float or None
        Rounded-down lower bracket when ``exact_unit > 1``, else None.
    chernoff : float
        The Chernoff bound exp(-I(M)) (reconstruction of the paper's bound).
    """

    memory: int
    slack: float
    importance: Estimate
    plain: Estimate | None
    exact: float | None
    exact_lower: float | None
    chernoff: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class OverflowTable:
    """IS, plain MC, exact FFT tail and Chernoff bound over a grid of capacities.

    Attributes
    ----------
    title : str
        Description of the workload and budget.
    mean : float
        E[U] = E[B] E[w], tokens.
    sd : float
        sqrt(Var U), tokens.
    rows : tuple
        One :class:`OverflowRow` per capacity.
    exact_unit : int or None
        Lattice unit of the FFT tail (1 = exact), None if not run.
    seconds : float
        Wall time.
    notes : tuple
        What was approximated and how.
    """

    title: str
    mean: float
    sd: float
    rows: tuple
    exact_unit: int | None
    seconds: float
    notes: tuple = field(default=())

    def to_dict(self) -> dict:
        d = asdict(self)
        d["rows"] = [r.to_dict() for r in self.rows]
        d["notes"] = list(self.notes)
        return d

    def format(self) -> str:
        """A plain-text table (probabilities in scientific notation)."""
        lines = [f"{self.title}: E[U] = {self.mean:.1f}, sd(U) = {self.sd:.1f} tokens"]
        level = self.rows[0].importance.level if self.rows else 0.99
        head = (f"{'M':>9} {'slack':>8} {'IS':>10} {f'IS {level:.0%} CI':>23} {'rel.err':>8} "
                f"{'plain MC':>10} {'exact FFT':>10} {'IS/exact':>8} {'Chernoff':>10}")
        lines.append(head)
        for r in self.rows:
            e = r.importance
            mc = "-"
            if r.plain is not None:
                mc = (f"{r.plain.value:.3e}" if r.plain.hits >= MIN_HITS
                      else f"<{r.plain.ci_high:.1e}")
            ex = "-" if r.exact is None else f"{r.exact:.3e}"
            if r.exact_lower is not None:
                ex = f"{r.exact_lower:.2e}..{r.exact:.2e}"
            ratio = "-" if not r.exact else f"{e.value / r.exact:.3f}"
            if r.exact_lower is not None and r.exact is not None:
                # A bracket [lower, upper]: say whether the IS interval meets it.
                meets = e.ci_low <= r.exact and e.ci_high >= r.exact_lower
                ratio = "meets" if meets else "MISSES"
            lines.append(f"{r.memory:>9d} {round(r.slack):>8d} {e.value:>10.3e} "
                         f"[{e.ci_low:.3e}, {e.ci_high:.3e}] {e.rel_error:>8.2%} "
                         f"{mc:>10} {ex:>10} {ratio:>8} {r.chernoff:>10.3e}")
        for note in self.notes:
            lines.append(f"  note: {note}")
        return "\n".join(lines)


def _describe(workload: Workload, budget) -> str:
    b = as_budget(budget)
    budget_text = b if isinstance(b, str) else b.describe()
    names = ", ".join(c.name or f"class {k}" for k, c in enumerate(workload.classes))
    return f"{names}; {budget_text}"


def overflow_table(workload: Workload, budget, memories, samples: int = 100_000,
                   mc_samples: int = 200_000, seed: int = 0, alpha: float = 0.01,
                   exact: bool = True, workers: int = 1, title: str | None = None,
                   mc_method: str = "direct") -> OverflowTable:
    """IS estimate, interval, relative error, plain MC, exact FFT tail and Chernoff bound
    of P(U > M) for each capacity M (docs/model.md 3.2's eviction-free relaxation).

    Parameters
    ----------
    workload : Workload
        As for :func:`overflow_probability_is`.
    budget : float, Budget, PerClassBudget, FlowControl or str
        As for :func:`overflow_probability_is`.
    memories : sequence of int
        Capacities M (tokens), integers >= 2.
    samples : int
        Importance-sampling draws per capacity (common random numbers: every
        capacity uses ``seed``).
    mc_samples : int
        Plain Monte Carlo draws, shared by all capacities (0 to skip).
    mc_method : str
        Plain Monte Carlo sampler, "direct" or "tables" (:data:`MC_METHODS`).
    seed : int
        As for :func:`overflow_probability_is`.
    alpha : float
        As for :func:`overflow_probability_is`.
    workers : int
        As for :func:`overflow_probability_is`.
    exact : bool
        Also compute the exact FFT tail (may coarsen to a lattice of h tokens for very
        large cases; then ``exact`` is an upper bound and ``exact_lower`` a lower one).
    title : str or None
        Heading of the table (default: the classes and the budget).

    Returns
    -------
    OverflowTable, one row per capacity; ``format()`` gives the text table.
    """
    t0 = time.perf_counter()
    _check_workload(workload)
    mem = [_check_int(f"memories[{i}]", m, 1, "KV capacity M, tokens")
           for i, m in enumerate([memories] if np.ndim(memories) == 0 else list(memories))]
    if not mem:
        raise ValueError("memories must hold at least one capacity M (tokens)")
    mc_samples = _check_int("mc_samples", mc_samples, 0, "plain Monte Carlo draws")
    alpha = _check_alpha(alpha)
    if mc_method not in MC_METHODS:
        raise ValueError(f"mc_method={mc_method!r} is not allowed; use one of "
                         f"{', '.join(MC_METHODS)}")
    model = DemandModel(workload, budget)
    mean = demand_mean(workload, budget)
    sd = math.sqrt(max(demand_variance(workload, budget), 0.0))
    notes = []
    ex = ex_low = None
    unit = None
    if exact:
        tail = exact_tail(workload, budget, mem)
        ex, unit = tail.prob, tail.unit
        ex_low = tail.prob_lower
        notes.extend(f"exact FFT: {n}" for n in tail.notes)
        if unit > 1:
            notes.append("exact FFT column: [lower, upper] bracket; IS/exact says whether the "
                         "IS interval meets it")
    mc_u = mc_tail = None
    if mc_samples >= 2:
        tm = time.perf_counter()
        mc_u, mc_tail = _plain_samples(workload, budget, mc_samples, seed + 1, workers,
                                       mc_method)
        mc_seconds = time.perf_counter() - tm
    rows = []
    for i, m in enumerate(mem):
        est = overflow_probability_is(workload, budget, m, samples, seed, alpha, None, workers)
        mc = None if mc_u is None else _mc_estimate(mc_u, m, alpha, mc_tail, mc_seconds)
        rate = chernoff_rate(model, m).rate
        rows.append(OverflowRow(m, m - mean, est, mc,
                                None if ex is None else float(ex[i]),
                                None if ex_low is None else float(ex_low[i]),
                                math.exp(-rate)))
    if any(r.importance.truncation_bound > 0 for r in rows):
        worst = max(r.importance.truncation_bound / r.importance.value
                    for r in rows if r.importance.value > 0)
        notes.append(f"unbounded decode: IS ages truncated, bias <= {worst:.1e} relative "
                     "(added to ci_high)")
    notes.append(f"IS: {samples} tilted samples per M (seed {seed}); plain MC ({mc_method}): "
                 f"{mc_samples} samples, '<x' = fewer than {MIN_HITS} overflows, x its "
                 f"Clopper-Pearson upper limit; intervals at level {1 - alpha:g}")
    return OverflowTable(title or _describe(workload, budget), mean, sd, tuple(rows), unit,
                         time.perf_counter() - t0, tuple(notes))


