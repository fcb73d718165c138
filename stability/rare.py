"""Rare events: the per-slot overflow probability P(U > M) down to 1e-12 and below.

Beyond the paper (DESIGN 3, "rare-event estimates far below what plain Monte Carlo
sees").  U is the saturated, eviction-free KV demand of DESIGN 3 (*reconstruction* of
the paper's Alg. 2 analysis): a request activated a slots ago holds
X(a) = (l + a + 1) 1{o > a} tokens, and with B_{t-a} activations in slot t - a,

    U = sum_{a >= 0} sum_{i=1..B_{t-a}} X_i(a),    E[U] = E[B] E[w].

P(U > M) is the overflow probability of one slot of that relaxation.  With deterministic
budgets no smaller than the actual activations it bounds the real system's overflow
frequency until the first overflow (the saturated process dominates it); otherwise, and
with ``budget="unthrottled"`` (Poisson(lambda_k) activations: the compound-Poisson,
M/G/infinity demand), it is a prediction of that frequency.  See
:mod:`stability.theory.overflow` for the bound exp(-I(M)) and
:mod:`stability.theory.exact_tail` for the exact FFT tail of the same quantity.

Estimator.  Importance sampling with exponential tilting at the Chernoff optimiser
theta* (Lambda'(theta*) = M, so the tilted mean of U is M).  Under the tilted law the
ages stay independent and, with phi_a = E[e^{theta X(a)}] and G the budget's generating
function,

* Poisson(beta) budgets: the count of age a is Poisson(beta phi_a);
* deterministic b: b activations per age;
* two-point floor/ceil: P_theta(B = k) proportional to P(B = k) phi_a^k;

and each activation is drawn from the tilted law of X(a), P_theta(X = x) proportional to
e^{theta x} P(X(a) = x): active with probability m_a / phi_a, m_a = E[e^{theta X} 1{o > a}],
of class c with probability proportional to w_c P(o_c > a) e^{theta(a+1)} E[e^{theta l_c}],
with its prompt drawn from the tilted prompt law.  The likelihood ratio is
dP/dP_theta = exp(-theta U + Lambda(theta)), Lambda(theta) = sum_a log G(phi_a(theta)), so

    P(U > M) = e^{Lambda(theta) - theta M} E_theta[1{U > M} e^{-theta (U - M)}],

estimated by the sample mean over N tilted draws (weights in [0, 1], no overflow), with
its standard error and a normal (CLT) interval at level 1 - alpha.  The tables (prompt
pmf, P(o > a) per age, budget law, class mix) are those of
:class:`stability.theory.DemandModel`.

Unbounded (geometric) decode lengths.  Ages are tabulated up to A, chosen so that the
tilted expected number of active activations older than A is tau <= 1e-12
(:data:`TRUNCATION`).  The sampler then draws U_A (ages < A) *exactly* with the exact
Lambda_A, so the estimate is unbiased for P(U_A > M), and

    0 <= P(U > M) - P(U_A > M) <= e^{Lambda(theta) - theta M} tau,

(P(U > M, U_A <= M) <= P(U > M, some older activation active), bounded under the full
tilted law by Markov's inequality), with Lambda <= Lambda_A + tau (log G(phi) <=
E[B] (phi - 1) and phi_a - 1 <= m_a).  That bound is
reported as ``truncation_bound`` and added to ``ci_high``; relative to the estimate it is
~tau / E_theta[weight], below 1e-9 in practice.

Plain Monte Carlo (:func:`overflow_probability_mc`) samples U directly with the
simulator's own generator (:func:`stability._generate.fill_requests`), an independent
code path used for validation, with an exact (Clopper-Pearson) binomial interval.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.special import expit, logsumexp
from scipy.stats import beta as beta_dist
from scipy.stats import norm

from stability import _rare, _rng
from stability.theory.budget import Budget, as_budget, budget_streams
from stability.theory.demand import DemandModel
from stability.theory.exact_tail import exact_tail
from stability.theory.moments import demand_mean, demand_variance, is_unbounded_geometric
from stability.theory.overflow import chernoff_rate
from stability.workload import Deterministic, Geometric, RequestClass, Workload

__all__ = ["Estimate", "OverflowRow", "OverflowTable", "TiltedSampler",
           "overflow_probability_is", "overflow_probability_mc", "overflow_table",
           "paper_tables", "main", "MC_METHODS", "TRUNCATION"]

TRUNCATION = 1e-12
"""Unbounded geometric decode: tilted expected active activations older than the table."""
SPARSE = 0.05
"""Ages whose P(active count >= 1) stays below this are visited by geometric skips."""
MAX_AGES = 4_000_000
"""Largest age table; a tilt needing more is lowered (any theta gives an unbiased IS)."""
CHUNK = 1 << 15
"""Samples per chunk; each chunk has its own random stream (SeedSequence.spawn), so the
result does not depend on the number of workers."""
MIN_HITS = 10
"""Plain MC is shown in the table only when at least this many samples overflow."""


# ---------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class Estimate:
    """An estimate of the per-slot overflow probability P(U > M) (DESIGN 3's U).

    Attributes
    ----------
    value : the estimate of P(U > M).
    stderr : its standard error.
    ci_low, ci_high : confidence interval at ``level`` (importance sampling: normal
        interval, ``ci_high`` widened by ``truncation_bound``; plain MC: Clopper-Pearson).
    rel_error : stderr / value (inf when value is 0).
    samples : N, samples drawn.
    theta : tilt, per token (0 for plain Monte Carlo).
    memory : M, KV capacity in tokens.
    level : confidence level 1 - alpha of the interval.
    hits : samples with U > M.
    log_value : natural log of ``value`` (finite below 1e-308).
    truncation_bound : bound on the bias from ages beyond the table (absolute; 0 when
        every decode law is bounded).
    method : "importance" or "plain".
    seconds : wall time of the sampling.
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
# Input validation


def _check_int(name: str, value, low: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low} ({what}), got {value!r}")
    return int(value)


def _check_alpha(alpha) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating)) \
            or not 0.0 < float(alpha) < 1.0:
        raise ValueError(f"alpha must be in (0, 1) (the interval's level is 1 - alpha), "
                         f"got {alpha!r}")
    return float(alpha)


def _check_workload(workload) -> Workload:
    if not isinstance(workload, Workload):
        raise ValueError(f"workload must be a Workload, got {workload!r}")
    return workload


# ---------------------------------------------------------------------------------------
# Tilted tables


@dataclass(frozen=True, eq=False)
class _StreamTilt:
    """Arrays for :func:`stability._rare.sample_tilted_stream` (one stream)."""

    law: int
    n: int
    mu: float
    dense_end: int
    p_act: np.ndarray
    g_extra: np.ndarray
    s_pos: np.ndarray
    env: np.ndarray
    q0: np.ndarray
    ratio: np.ndarray
    cls_cdf: np.ndarray
    pair_thr: np.ndarray
    pair_alias: np.ndarray
    pair_class: np.ndarray
    pair_age: np.ndarray
    prompt_off: np.ndarray
    prompt_thr: np.ndarray
    prompt_val: np.ndarray
    prompt_alt: np.ndarray

    def kernel_args(self) -> tuple:
        return (self.law, self.n, self.mu, self.dense_end, self.p_act, self.g_extra,
                self.s_pos, self.env, self.q0, self.ratio, self.cls_cdf, self.pair_thr,
                self.pair_alias, self.pair_class, self.pair_age, self.prompt_off,
                self.prompt_thr, self.prompt_val, self.prompt_alt)


_LAW_CODES = {"deterministic": _rare.LAW_DETERMINISTIC, "poisson": _rare.LAW_POISSON,
              "two-point": _rare.LAW_TWO_POINT}
_EMPTY_F = np.zeros(0)
_EMPTY_I = np.zeros(0, np.int64)


def _effective_count(budget: Budget) -> float:
    """Bound on the tilted mean count per age relative to phi: beta (Poisson), ceil(beta)."""
    return budget.mean if budget.law == "poisson" else float(math.ceil(budget.mean))


def _geometric_tail_mass(model: DemandModel, theta: float, ages: int) -> float:
    """tau: bound on the tilted expected number of active activations of age >= ``ages``.

    Per age the tilted mean active count is m_a G'(phi_a) / G(phi_a) <= c m_a
    (c = beta for Poisson, ceil(beta) otherwise), m_a = sum_c w_c q_c^a e^{theta(a+1)} L_c;
    summed over a >= A it is c sum_c w_c L_c e^{theta(A+1)} q_c^A / (1 - q_c e^theta).
    """
    total = 0.0
    for st in model.streams:
        for c in st.classes:
            if c.geometric_q is None:
                continue
            lm, _ = c.log_prompt_mgf(theta, 0)
            r_log = math.log(c.geometric_q) + theta
            if r_log >= 0:
                return math.inf
            log_term = (math.log(c.weight) + lm + theta * (ages + 1)
                        + ages * math.log(c.geometric_q) - math.log(-math.expm1(r_log)))
            total += _effective_count(st.budget) * math.exp(log_term)
    return total


def _ages_needed(model: DemandModel, theta: float) -> int:
    """Smallest table length A (to 1%) with tail mass tau(A) <= TRUNCATION."""
    lo = max(st.ages for st in model.streams)
    if _geometric_tail_mass(model, theta, lo) <= TRUNCATION:
        return lo
    hi = 2 * lo
    while _geometric_tail_mass(model, theta, hi) > TRUNCATION:
        hi *= 2
        if hi > 64 * MAX_AGES:
            return hi
    while hi - lo > max(1, lo // 100):
        mid = (lo + hi) // 2
        if _geometric_tail_mass(model, theta, mid) <= TRUNCATION:
            hi = mid
        else:
            lo = mid
    return hi


def _stream_tilt(st, theta: float) -> tuple[_StreamTilt, float]:
    """The tilted tables of one stream and its Lambda_A(theta) over the tabulated ages."""
    budget: Budget = st.budget
    ages = st.ages
    shifts = st.shifts.astype(float)  # a + 1 (unit 1)
    log_m_c, log_idle_parts = [], []
    prompt_off, prompt_thr, prompt_val, prompt_alt = [0], [], [], []
    with np.errstate(divide="ignore"):
        for c in st.classes:
            lm, _ = c.log_prompt_mgf(theta, 0)
            log_m_c.append(math.log(c.weight) + np.log(c.survival) + theta * shifts + lm)
            log_idle_parts.append(math.log(c.weight) + np.log1p(-np.minimum(c.survival, 1.0)))
            values, log_probs = c.prompt_values[0], c.prompt_log_probs[0]
            w = np.exp(theta * values + log_probs - lm)
            thr, alias = _rare.alias_table(w)
            prompt_thr.append(thr)
            prompt_val.append(values.astype(np.int64))
            prompt_alt.append(values.astype(np.int64)[alias])
            prompt_off.append(prompt_off[-1] + values.size)
    log_m_c = np.vstack(log_m_c)  # (K, A)
    log_m = logsumexp(log_m_c, axis=0)
    log_idle = logsumexp(np.vstack(log_idle_parts), axis=0)
    log_phi = np.logaddexp(log_idle, log_m)
    lam = float(np.sum(budget.log_pgf_of_log(log_phi)))
    with np.errstate(invalid="ignore"):
        cls = np.exp(log_m_c - log_m)  # class given active; nan where m_a = 0
    cls = np.where(np.isfinite(cls), cls, 1.0 / len(st.classes))
    cls_cdf = np.ascontiguousarray(np.cumsum(cls, axis=0).T)  # (A, K)
    p_act = np.exp(log_m - log_phi)
    law = _LAW_CODES[budget.law]
    prompts = (np.array(prompt_off, np.int64), np.concatenate(prompt_thr),
               np.concatenate(prompt_val), np.concatenate(prompt_alt))
    if budget.law == "poisson":
        rates = np.exp(log_m_c)  # tilted active rate per unit of beta: m_{c,a}
        flat = rates.ravel()
        keep = np.flatnonzero(flat > 0)
        mu = budget.mean * float(flat[keep].sum())
        if keep.size == 0:  # nothing is ever active (beta = 0): a dummy table, never read
            keep = np.zeros(1, np.int64)
            thr, alias = np.ones(1), np.zeros(1, np.int64)
        else:
            thr, alias = _rare.alias_table(flat[keep])
        k_idx, a_idx = np.divmod(keep, ages)
        zeros = np.zeros(ages)
        tilt = _StreamTilt(law, 0, mu, 0, zeros, zeros, zeros, zeros, zeros, zeros, cls_cdf,
                           thr, alias.astype(np.int64), k_idx.astype(np.int64),
                           a_idx.astype(np.int64), *prompts)
        return tilt, lam
    n = budget.floor if budget.law == "two-point" else int(budget.mean)
    f = budget.frac if budget.law == "two-point" else 0.0
    if f > 0:
        g_extra = expit(math.log(f) - math.log1p(-f) + log_phi)
    else:
        g_extra = np.zeros(ages)
    with np.errstate(divide="ignore"):
        # P(count >= 1) = 1 - (1 - p)^n (1 - g p); (1 - p)^0 = 1 even where p = 1
        log_none = n * np.log1p(-np.minimum(p_act, 1.0)) if n > 0 else np.zeros(ages)
        s_pos = -np.expm1(log_none + np.log1p(-g_extra * p_act))
    s_pos = np.clip(s_pos, 0.0, 1.0)
    env = np.maximum.accumulate(s_pos[::-1])[::-1].copy()
    sparse = np.flatnonzero(env < SPARSE)
    dense_end = int(sparse[0]) if sparse.size else ages
    small = np.minimum(p_act, 1.0 - p_act)
    with np.errstate(divide="ignore"):
        q0 = np.exp(n * np.log1p(-small))
        ratio = small / (1.0 - small)
    tilt = _StreamTilt(law, n, 0.0, dense_end, p_act, g_extra, s_pos, env, q0, ratio, cls_cdf,
                       _EMPTY_F, _EMPTY_I, _EMPTY_I, _EMPTY_I, *prompts)
    return tilt, lam


class TiltedSampler:
    """The exponentially tilted law of U (DESIGN 3) at one theta, ready to sample.

    Parameters
    ----------
    workload, budget : as for :class:`stability.theory.DemandModel` (a number is a
        deterministic b; ``Budget(mean, law)``; a FlowControl policy; ``"unthrottled"``).
    theta : tilt, per token, 0 <= theta < theta_max (0 gives the untilted law).

    Attributes
    ----------
    theta : the tilt.
    log_mgf : Lambda_A(theta), the exact log-MGF of U_A (ages below the table's end).
    ages : A, the table length (the largest over streams).
    truncation_mass : tau, bound on the tilted expected active activations older than A
        (0 when every decode law is bounded).
    log_mgf_upper : Lambda_A + tau >= Lambda(theta) of the untruncated U (the dropped
        ages add sum log G(phi_a) <= E[B] sum (phi_a - 1) <= tau).
    """

    def __init__(self, workload: Workload, budget, theta: float):
        _check_workload(workload)
        base = DemandModel(workload, budget)
        if isinstance(theta, bool) or not isinstance(theta, (int, float, np.integer,
                                                             np.floating)):
            raise ValueError(f"theta must be a number (tilt per token), got {theta!r}")
        theta = float(theta)
        if not (math.isfinite(theta) and 0.0 <= theta < base.theta_max):
            raise ValueError(f"theta must be in [0, theta_max={base.theta_max:g}) per token, "
                             f"got {theta!r}")
        need = _ages_needed(base, theta)
        if need > MAX_AGES:
            raise ValueError(f"theta={theta:g} is too close to theta_max={base.theta_max:g}: "
                             f"the tilted geometric tail needs {need} ages (limit {MAX_AGES})")
        model = base if need <= max(st.ages for st in base.streams) else \
            DemandModel(workload, budget, ages=need)
        self.workload, self.budget, self.theta, self.model = workload, budget, theta, model
        self.ages = max(st.ages for st in model.streams)
        self.truncation_mass = _geometric_tail_mass(model, theta, self.ages)
        tilts, lam = [], 0.0
        for st in model.streams:
            t, ls = _stream_tilt(st, theta)
            tilts.append(t)
            lam += ls
        self.streams = tuple(tilts)
        self.log_mgf = lam
        self.log_mgf_upper = lam + self.truncation_mass

    def sample(self, samples: int, seed: int = 0, workers: int = 1) -> np.ndarray:
        """``samples`` tilted draws of U_A (tokens), int64; reproducible for (samples, seed)."""
        samples = _check_int("samples", samples, 1, "number of draws")
        seed = _check_int("seed", seed, 0, "random seed")
        return _run_chunks(samples, seed, workers, self._fill)

    def _fill(self, out: np.ndarray, ss: np.random.SeedSequence) -> None:
        for st, child in zip(self.streams, ss.spawn(len(self.streams))):
            s = _rng.new_state(child)
            _rare.sample_tilted_stream(*st.kernel_args(), s[0], s[1], s[2], s[3], out)


def _run_chunks(samples: int, seed: int, workers: int, fill) -> np.ndarray:
    """Fill ``samples`` values chunk by chunk, chunk j seeded by SeedSequence(seed) child j."""
    workers = _check_int("workers", workers, 1, "threads")
    out = np.zeros(samples, np.int64)
    n_chunks = -(-samples // CHUNK)
    children = np.random.SeedSequence(seed).spawn(n_chunks)
    jobs = [(out[j * CHUNK:(j + 1) * CHUNK], children[j]) for j in range(n_chunks)]
    if workers == 1 or n_chunks == 1:
        for view, child in jobs:
            fill(view, child)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:  # kernels release the GIL
            list(pool.map(lambda job: fill(*job), jobs))
    return out


# ---------------------------------------------------------------------------------------
# Importance sampling


def _check_memory(memory) -> int:
    return _check_int("memory", memory, 1, "KV capacity M, tokens")


def _max_value(workload: Workload, budget) -> float:
    return DemandModel(workload, budget).max_value


def overflow_probability_is(workload: Workload, budget, memory: int, samples: int = 100_000,
                            seed: int = 0, alpha: float = 0.01, theta: float | None = None,
                            workers: int = 1) -> Estimate:
    """P(U > M) by importance sampling with exponential tilting (DESIGN 3; beyond the paper).

    Estimates the per-slot overflow probability of the saturated, eviction-free
    relaxation (see the module docstring): a bound on the real system's overflow
    frequency for deterministic budgets, a prediction otherwise.

    Parameters
    ----------
    workload : request classes (their rates give the class mix lambda_k / lambda).
    budget : a number (deterministic b), ``Budget(mean, law)``, a FlowControl policy,
        ``PerClassBudget`` or ``"unthrottled"`` (Poisson(lambda_k) activations).
    memory : M, KV capacity in tokens.
    samples : N, tilted draws.
    seed : random seed (the draws depend on (seed, samples) only, not on ``workers``).
    alpha : the interval has level 1 - alpha.
    theta : tilt per token; default the Chernoff optimiser theta*(M) (0 when M <= E[U]).
    workers : threads (the kernel releases the GIL).

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


# ---------------------------------------------------------------------------------------
# Plain Monte Carlo


def _direct_ages(st, mean_count: float) -> tuple[int, float]:
    """Ages sampled directly, and a bound on P(some older activation is alive).

    The expected number of live activations older than A is
    sum_c mean_count w_c q_c^A / p_c over unbounded geometric classes.
    """
    ages, tail = 1, 0.0
    geometric = []
    for w, c in zip(st.weights, st.classes):
        if w <= 0 or mean_count <= 0:
            continue
        if is_unbounded_geometric(c.decode):
            p = c.decode.p
            geometric.append((mean_count * w / p, 1.0 - p))
            ages = max(ages, math.ceil(math.log(TRUNCATION * p / (mean_count * w))
                                       / math.log1p(-p)))
        else:
            ages = max(ages, int(c.decode.max_value))
    for scale, q in geometric:
        tail += scale * q**ages
    return ages, tail


def _encode_classes(weights, classes):
    pieces, offsets, pos = [], [], 0
    for c in classes:
        for law in (c.prompt, c.decode):
            vec = law.encode()
            offsets.append(pos)
            pieces.append(vec)
            pos += vec.size
    cdf = np.cumsum(np.asarray(weights, float))
    cdf = cdf / cdf[-1]
    cdf[-1] = 1.0
    return cdf, np.array(offsets, np.int64), np.concatenate(pieces)


MC_METHODS = ("direct", "tables")
"""Plain Monte Carlo samplers: "direct" draws every activation with the simulator's
generator (independent of the IS code; cost ~ ages x E[B] per sample); "tables" runs the
IS sampler at theta = 0 (cost ~ active requests per sample, much faster for long ages)."""


def _plain_samples(workload: Workload, budget, samples: int, seed: int, workers: int,
                   method: str = "direct") -> tuple[np.ndarray, float]:
    """Untilted draws of U (tokens) and the bound on P(U differs from the full U)."""
    if method not in MC_METHODS:
        raise ValueError(f"method={method!r} is not allowed; use one of {', '.join(MC_METHODS)}")
    if method == "tables":
        sampler = TiltedSampler(workload, budget, 0.0)
        return sampler.sample(samples, seed, workers), sampler.truncation_mass
    streams, tail = [], 0.0
    for st in budget_streams(workload, budget):
        b: Budget = st.budget
        ages, t = _direct_ages(st, _effective_count(b))
        tail += t
        keep = [i for i, w in enumerate(st.weights) if w > 0]
        enc = _encode_classes(st.weights[keep], [st.classes[i] for i in keep])
        n = b.floor if b.law != "deterministic" else int(b.mean)
        streams.append((_LAW_CODES[b.law], n, b.mean, ages, *enc))

    def fill(out, ss):
        for args, child in zip(streams, ss.spawn(len(streams))):
            g, a, l = (_rng.new_state(x) for x in child.spawn(3))
            _rare.sample_direct_stream(*args, *g, *a, *l, out)

    return _run_chunks(samples, seed, workers, fill), tail


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
    memory : M, tokens.
    slack : Delta = M - E[U], tokens.
    importance : the importance-sampling :class:`Estimate`.
    plain : the plain Monte Carlo :class:`Estimate` (None if not run).
    exact : exact P(U > M) by FFT (:func:`stability.theory.exact_tail`), None if not run;
        an upper bound when ``exact_unit > 1``.
    exact_lower : rounded-down lower bracket when ``exact_unit > 1``, else None.
    chernoff : the Chernoff bound exp(-I(M)) (reconstruction of the paper's bound).
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
    title : description of the workload and budget.
    mean : E[U] = E[B] E[w], tokens.
    sd : sqrt(Var U), tokens.
    rows : one :class:`OverflowRow` per capacity.
    exact_unit : lattice unit of the FFT tail (1 = exact), None if not run.
    seconds : wall time.
    notes : what was approximated and how.
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
    of P(U > M) for each capacity M (DESIGN 3's eviction-free relaxation).

    Parameters
    ----------
    workload, budget : as for :func:`overflow_probability_is`.
    memories : capacities M (tokens), integers >= 1.
    samples : importance-sampling draws per capacity (common random numbers: every
        capacity uses ``seed``).
    mc_samples : plain Monte Carlo draws, shared by all capacities (0 to skip).
    mc_method : plain Monte Carlo sampler, "direct" or "tables" (:data:`MC_METHODS`).
    seed, alpha, workers : as for :func:`overflow_probability_is`.
    exact : also compute the exact FFT tail (may coarsen to a lattice of h tokens for very
        large cases; then ``exact`` is an upper bound and ``exact_lower`` a lower one).
    title : heading of the table (default: the classes and the budget).

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


# ---------------------------------------------------------------------------------------
# The Section 4.1 and geometric tables (``python -m stability.rare``)


def _paper_cases(azure: bool = False):
    paper = Workload.paper_4_1(5.0)
    geometric = Workload((RequestClass(1.0, Deterministic(20), Geometric(1 / 50),
                                       name="l=20, o~Geometric(1/50)"),))
    slack_paper = (0, 250, 500, 1000, 1500, 2000, 3000, 4000, 5000)
    slack_geometric = (0, 1000, 2000, 3000, 4000, 6000, 8000, 10000)
    cases = [
        (paper, Budget(10, "deterministic"), slack_paper),
        (paper, Budget(11, "poisson"), slack_paper),
        (paper, Budget(11.5, "two-point"), slack_paper),
        (paper, Budget(12, "deterministic"), slack_paper),
        (geometric, Budget(4, "deterministic"), slack_geometric),
        (geometric, Budget(4, "poisson"), slack_geometric),
    ]
    if azure:
        import warnings

        from stability.traces import azure_workload

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the synthetic stand-in is announced in the title
            conv = azure_workload("conv", 1.0)
        # sd(U) ~ 6.6e4 tokens for b = 10: slack grid up to ~9 sd.
        cases.append((conv, Budget(10, "deterministic"),
                      (0, 50_000, 100_000, 200_000, 300_000, 400_000, 600_000)))
    return cases


def paper_tables(samples: int = 100_000, mc_samples: int = 200_000, seed: int = 0,
                 alpha: float = 0.01, workers: int = 1, quick: bool = False,
                 azure: bool = False, mc_method: str = "direct") -> list:
    """The validation tables: the Sec. 4.1 classes under FlowControl budgets of mean
    10-12 (deterministic, Poisson, two-point), one unbounded geometric class (deterministic
    and Poisson budgets) and, with ``azure``, the Azure conv lengths (up to 1000 ages), over
    slack grids reaching 1e-12 and below.  ``quick``: two tables, fewer samples."""
    cases = _paper_cases(azure)
    if quick:
        cases = [cases[0], cases[4]] + cases[6:]
        samples, mc_samples = min(samples, 20_000), min(mc_samples, 50_000)
    out = []
    for workload, budget, slacks in cases:
        mean = demand_mean(workload, budget)
        memories = [int(round(mean + s)) for s in slacks]
        out.append(overflow_table(workload, budget, memories, samples, mc_samples, seed,
                                  alpha, True, workers, mc_method=mc_method))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m stability.rare",
        description="Per-slot overflow probability P(U > M) of the eviction-free relaxation "
                    "(DESIGN 3): importance sampling vs plain MC, exact FFT tail and the "
                    "Chernoff bound, for the Sec. 4.1 workload and a geometric case.")
    parser.add_argument("--samples", type=int, default=100_000, help="IS samples per M")
    parser.add_argument("--mc-samples", type=int, default=200_000, help="plain MC samples")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--alpha", type=float, default=0.01, help="interval level 1 - alpha")
    parser.add_argument("--workers", type=int, default=1, help="threads")
    parser.add_argument("--quick", action="store_true", help="two tables, fewer samples")
    parser.add_argument("--azure", action="store_true",
                        help="add the Azure conv lengths (trace if present, else synthetic)")
    parser.add_argument("--mc-method", choices=MC_METHODS, default="direct",
                        help="plain MC sampler: direct draws or the IS tables at theta = 0")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = parser.parse_args(argv)
    tables = paper_tables(args.samples, args.mc_samples, args.seed, args.alpha, args.workers,
                          args.quick, args.azure, args.mc_method)
    if args.json:
        json.dump([t.to_dict() for t in tables], sys.stdout, indent=1, default=float)
        print()
    else:
        for t in tables:
            print(t.format())
            print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
