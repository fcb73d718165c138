"""Samplers of the eviction-free demand U: tilted (importance sampling) and plain.

See :mod:`stability.theory.rare` for the estimator; this module builds the per-stream
tilted tables and runs the jitted samplers of :mod:`stability.theory.rare.kernels` in
chunks with their own random streams.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy.special import expit, logsumexp

from stability import validation
from stability.engine import rng as _rng
from stability.theory.budget import Budget, budget_streams
from stability.theory.demand import DemandModel
from stability.theory.moments import is_unbounded_geometric
from stability.theory.rare import kernels as _rare
from stability.workload import RequestClass, Workload


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
# Input validation


def _check_int(name: str, value, low: int, what: str) -> int:
    try:
        return validation.integer(name, value, low)
    except ValueError as err:
        raise ValueError(f"{err} ({what})") from None


def _check_alpha(alpha) -> float:
    try:
        return validation.number("alpha", alpha, 0.0, 1.0, strict_low=True, strict_high=True)
    except ValueError:
        raise ValueError(f"alpha must be in (0, 1) (the interval's level is 1 - alpha), "
                         f"got {alpha!r}") from None


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
    """The exponentially tilted law of U (docs/model.md 3.2) at one theta, ready to sample.

    Parameters
    ----------
    workload : Workload
        Request classes.
    budget : float, Budget, PerClassBudget, FlowControl or str
        As for :class:`stability.theory.DemandModel` (a number is a deterministic b;
        ``Budget(mean, law)``; a FlowControl policy; ``"unthrottled"``).
    theta : float
        Tilt, per token, 0 <= theta < theta_max (0 gives the untilted law).

    Attributes
    ----------
    theta : float
        The tilt.
    log_mgf : float
        Lambda_A(theta), the exact log-MGF of U_A (ages below the table's end).
    ages : int
        A, the table length (the largest over streams).
    truncation_mass : float
        tau, bound on the tilted expected active activations older than A (0 when every
        decode law is bounded).
    log_mgf_upper : float
        Lambda_A + tau >= Lambda(theta) of the untruncated U (the dropped ages add
        sum log G(phi_a) <= E[B] sum (phi_a - 1) <= tau).
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
    """(class cdf, law offsets, law data) of ``classes`` picked with ``weights``: the
    workload encoding the simulator's generator uses."""
    enc = Workload(tuple(RequestClass(float(w), c.prompt, c.decode)
                         for w, c in zip(weights, classes))).encode()
    return enc.class_cdf, enc.law_offset, enc.law_data


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


