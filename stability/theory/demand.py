"""The saturated, eviction-free KV demand U of Alg. 2 and its log-MGF Lambda(theta).

DESIGN 3 (*reconstruction* of the paper's Alg. 2 overflow bound): a request activated a
slots ago contributes X(a) = (l + a + 1) 1{o > a}; with B_{t-a} activations in slot t - a,

    U = sum_{a >= 0} sum_{i=1..B_{t-a}} X_i(a),        E[U] = E[B] E[w],

and, with phi_a(theta) = E[e^{theta X(a)}] and G the budget's generating function,

    Lambda(theta) = log E[e^{theta U}] = sum_a log G(phi_a(theta)).

:class:`DemandModel` holds U as tables (prompt pmf, P(o > a) per age, one row per class,
one block per independent stream of activations) and evaluates Lambda and Lambda' in log
space.  It can also hold U on a coarser lattice of ``unit`` tokens, each contribution
rounded up (``rounding="up"``: ceil(l/h) + ceil((a+1)/h) >= (l+a+1)/h, so h U_up >= U) or
down (a lower bracket); :mod:`exact_tail` uses that.

Unbounded geometric decode lengths: ages with P(o > a) >= 1e-16 are tabulated; the rest
(a >= A, where P(o > a) = (1-p)^a) enter Lambda through the closed-form bound
log G(phi) <= E[B] (phi - 1) (true for the three budget laws), so the computed Lambda is
an upper bound and exp(-I) stays a valid bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from stability.theory.budget import Budget, budget_streams
from stability.theory.moments import is_unbounded_geometric, survival
from stability.workload import Workload

__all__ = ["DemandModel", "ClassTable", "StreamTable"]

PROMPT_TAIL = 1e-16
"""Unbounded prompt laws are represented by their table cut where the tail is < this."""


@dataclass(frozen=True, eq=False)
class ClassTable:
    """One class as seen by one stream, on a lattice of ``unit`` tokens.

    Attributes
    ----------
    weight : probability that an activation of the stream is of this class.
    prompt_values : int array, l rounded to lattice units.
    prompt_probs : float array, P(l = value).
    survival : float array (ages,), P(o > a) for the stream's tabulated ages.
    geometric_q : 1 - p if o is unbounded geometric (P(o > a) = q^a beyond the table).
    """

    weight: float
    prompt_values: np.ndarray
    prompt_probs: np.ndarray
    survival: np.ndarray
    geometric_q: float | None

    def log_prompt_mgf(self, eta: float) -> tuple[float, float]:
        """log E[e^{eta l}] and the tilted mean E[l e^{eta l}] / E[e^{eta l}]."""
        x = eta * self.prompt_values + np.log(self.prompt_probs)
        lm = float(logsumexp(x))
        mu = float(np.dot(np.exp(x - lm), self.prompt_values))
        return lm, mu


@dataclass(frozen=True, eq=False)
class StreamTable:
    """An independent stream of activations: its budget, classes and tabulated ages.

    ``steps[a]`` is the lattice value of the age part a + 1 of X(a).
    """

    budget: Budget
    classes: tuple
    steps: np.ndarray

    @property
    def ages(self) -> int:
        return int(self.steps.size)


def _round(values: np.ndarray, unit: int, rounding: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.int64)
    if unit == 1:
        return values
    if rounding == "up":
        return -((-values) // unit)
    return values // unit


class DemandModel:
    """U (DESIGN 3) for a workload and a budget, optionally on a coarser lattice.

    Parameters
    ----------
    workload : the request classes (rates give the class mix under flow control).
    budget : a number (deterministic b), :class:`Budget`, :class:`PerClassBudget`, a
        FlowControl/ClassBudgets policy, or ``"unthrottled"`` (Poisson(lambda) activations).
    unit : lattice unit h in tokens (1 = exact).
    rounding : "up" (conservative, h U >= U) or "down" (h U <= U); ignored when unit = 1.
    ages : tabulate at least this many ages (used by :mod:`exact_tail` to push the
        geometric cut further out when a strong tilt needs it).
    """

    def __init__(self, workload: Workload, budget, unit: int = 1, rounding: str = "up",
                 ages: int | None = None):
        if isinstance(unit, bool) or not isinstance(unit, (int, np.integer)) or unit < 1:
            raise ValueError(f"unit must be an integer >= 1 (tokens per lattice point), got {unit!r}")
        if rounding not in ("up", "down"):
            raise ValueError(f"rounding={rounding!r} is not allowed; use 'up' or 'down'")
        self.workload = workload
        self.unit = int(unit)
        self.rounding = rounding
        streams = []
        for st in budget_streams(workload, budget):
            n_ages = 1 if ages is None else int(ages)
            for c in st.classes:
                n_ages = max(n_ages, survival(c.decode).size)
            steps = _round(np.arange(1, n_ages + 1), self.unit, rounding)
            tables = []
            for w, c in zip(st.weights, st.classes):
                if w == 0:
                    continue
                v, pr = c.prompt.pmf(PROMPT_TAIL)
                keep = pr > 0
                lv = _round(v[keep], self.unit, rounding)
                uv, inv = np.unique(lv, return_inverse=True)
                up = np.bincount(inv, weights=pr[keep])
                q = 1.0 - c.decode.p if is_unbounded_geometric(c.decode) else None
                tables.append(ClassTable(float(w), uv, up, survival(c.decode, n_ages), q))
            streams.append(StreamTable(st.budget, tuple(tables), steps))
        self.streams = tuple(streams)

    # -- support ------------------------------------------------------------------
    @property
    def theta_max(self) -> float:
        """Lambda(theta) < inf exactly for theta < theta_max (lattice units^-1).

        -h ln(1 - p) over unbounded geometric classes; inf otherwise (bounded U, or
        Poisson budgets, whose Lambda is finite for every theta).
        """
        out = math.inf
        for st in self.streams:
            for c in st.classes:
                if c.geometric_q is not None:
                    out = min(out, -self.unit * math.log(c.geometric_q))
        return out

    @property
    def max_value(self) -> float:
        """Largest value of U (lattice units) with positive probability; inf if unbounded."""
        total = 0.0
        for st in self.streams:
            if math.isinf(st.budget.max_value):
                return math.inf
            # Each age independently attains its largest contribution over the class mix.
            per_age = np.zeros(st.ages)
            for c in st.classes:
                if c.geometric_q is not None:
                    return math.inf
                top = np.where(c.survival > 0, c.prompt_values.max() + st.steps, 0)
                per_age = np.maximum(per_age, top)
            total += st.budget.max_value * float(per_age.sum())
        return total

    # -- Lambda and Lambda' ----------------------------------------------------------
    def _stream_terms(self, st: StreamTable, eta: float):
        """log phi_a, d log phi_a / d eta (ages of the table), and the geometric tail
        bound T = sum_{a >= A} (phi_a - 1) with its derivative."""
        log_phi_parts, dens, slopes = [], [], []
        tail = dtail = 0.0
        with np.errstate(divide="ignore"):
            for c in st.classes:
                lm, mu = c.log_prompt_mgf(eta)
                log_s = np.log(c.survival)
                log_active = log_s + eta * st.steps + lm
                log_phi_c = np.logaddexp(np.log1p(-np.minimum(c.survival, 1.0)), log_active)
                log_phi_parts.append(math.log(c.weight) + log_phi_c)
                dens.append(math.log(c.weight) + log_active)
                slopes.append(st.steps + mu)
                if c.geometric_q is not None:
                    t, dt = _geometric_tail(c, st.ages, eta, lm, mu, self.unit, self.rounding)
                    tail += c.weight * t
                    dtail += c.weight * dt
        log_phi = logsumexp(np.vstack(log_phi_parts), axis=0)
        dlog_phi = np.zeros(st.ages)
        for d, sl in zip(dens, slopes):
            dlog_phi += np.exp(d - log_phi) * sl
        return log_phi, dlog_phi, tail, dtail

    def log_mgf(self, eta: float) -> float:
        """Lambda(eta) = log E[e^{eta U}] (U in lattice units), eta >= 0.

        Exact finite sum over tabulated ages; the geometric tail beyond the table enters
        through an upper bound, so the value is >= the true Lambda there.
        """
        eta = float(eta)
        if eta < 0:
            raise ValueError(f"theta must be >= 0, got {eta!r}")
        if eta >= self.theta_max:
            return math.inf
        total = 0.0
        for st in self.streams:
            log_phi, _, tail, _ = self._stream_terms(st, eta)
            total += float(np.sum(st.budget.log_pgf_of_log(log_phi))) + st.budget.mean * tail
        return total

    def dlog_mgf(self, eta: float) -> float:
        """Lambda'(eta): the mean of U under the exponentially tilted law."""
        eta = float(eta)
        if eta >= self.theta_max:
            return math.inf
        total = 0.0
        for st in self.streams:
            log_phi, dlog_phi, _, dtail = self._stream_terms(st, eta)
            total += float(np.dot(st.budget.dlog_pgf_of_log(log_phi), dlog_phi))
            total += st.budget.mean * dtail
        return total

    def stream_log_phi(self, st: StreamTable, eta: float) -> np.ndarray:
        """log phi_a(eta) of one stream's class mix for its tabulated ages."""
        return self._stream_terms(st, eta)[0]


def _geometric_tail(c: ClassTable, ages: int, eta: float, lm: float, mu: float,
                    unit: int, rounding: str) -> tuple[float, float]:
    """sum_{a >= A} q^a (E[e^{eta l}] e^{eta step_a} - 1) and its eta-derivative.

    With step_a = a + 1 (unit 1) the sum is exact:
        q^A [m e^{eta(A+1)} / (1 - q e^eta) - 1/(1-q)].
    On a coarser lattice step_a <= (a + c0)/h with c0 = h (up) or 1 (down), which gives the
    same geometric series with ratio q e^{eta/h}: an upper bound for eta >= 0.
    """
    q = c.geometric_q
    c0 = unit if (rounding == "up" and unit > 1) else 1
    r_log = math.log(q) + eta / unit
    if r_log >= 0:
        return math.inf, math.inf
    r = math.exp(r_log)
    log_lead = ages * math.log(q) + lm + eta * (ages + c0) / unit
    lead = math.exp(log_lead) / (1.0 - r)
    t = lead - q**ages / (1.0 - q)
    dt = lead * (mu + (ages + c0) / unit + (r / unit) / (1.0 - r))
    return t, dt
