"""The saturated, eviction-free KV demand U of Alg. 2 and its log-MGF Lambda(theta).

docs/model.md 3.2 (*reconstruction* of the paper's Alg. 2 overflow bound): a request activated a
slots ago contributes X(a) = (l + a + 1) 1{o > a}; with B_{t-a} activations in slot t - a,

    U = sum_{a >= 0} sum_{i=1..B_{t-a}} X_i(a),        E[U] = E[B] E[w],

and, with phi_a(theta) = E[e^{theta X(a)}] and G the budget's generating function,

    Lambda(theta) = log E[e^{theta U}] = sum_a log G(phi_a(theta)).

:class:`DemandModel` holds U as tables (prompt pmf, P(o > a) per age, one row per class,
one block per independent stream of activations) and evaluates Lambda and Lambda' in log
space.  It can also hold U on a coarser lattice of ``unit`` tokens, each contribution
rounded up (``rounding="up"``: ceil((l+a+1)/h) >= (l+a+1)/h, so h U_up >= U) or
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

from stability.theory._kernels import log_mgf_table
from stability.theory.budget import Budget, budget_streams
from stability.theory.moments import is_unbounded_geometric, survival
from stability.workload import Workload

__all__ = ["DemandModel", "ClassTable", "StreamTable"]

PROMPT_TAIL = 1e-16
"""Unbounded prompt laws are represented by their table cut where the tail is < this."""


def _log_mgf_table(eta: float, values: np.ndarray, log_probs: np.ndarray) -> tuple[float, float]:
    """log E[e^{eta V}] and E[V e^{eta V}] / E[e^{eta V}] for a finite table (jitted)."""
    return log_mgf_table(float(eta), values, log_probs)


@dataclass(frozen=True, eq=False)
class ClassTable:
    """One class as seen by one stream, on a lattice of ``unit`` = h tokens.

    The contribution of an activation of age a is X(a) = (l + s) 1{o > a}, s = a + 1.  On
    the lattice, with s = h q_s + r_s (0 <= r_s < h), it is
    ceil((l + s)/h) = q_s + ceil((l + r_s)/h) (rounding up; floor for rounding down), so
    the prompt enters through one table per residue r.

    Attributes
    ----------
    weight : float
        Probability that an activation of the stream is of this class.
    prompt_values : tuple
        tuple over residues r of int arrays, ceil((l + r)/h) (h = 1: l).
    prompt_log_probs : tuple
        tuple over residues of float arrays, log P(value).
    survival : numpy.ndarray
        float array (ages,), P(o > a) for the stream's tabulated ages.
    geometric_q : float or None
        1 - p if o is unbounded geometric (P(o > a) = q^a beyond the table).
    """

    weight: float
    prompt_values: tuple
    prompt_log_probs: tuple
    survival: np.ndarray
    geometric_q: float | None

    def log_prompt_mgf(self, eta: float, residue: int = 0) -> tuple[float, float]:
        """log E[e^{eta L_r}] and the tilted mean of L_r, L_r the prompt part for residue r."""
        return _log_mgf_table(eta, self.prompt_values[residue], self.prompt_log_probs[residue])

    def log_prompt_mgfs(self, eta: float) -> tuple[np.ndarray, np.ndarray]:
        """Both quantities for every residue, as arrays of length h."""
        pairs = [self.log_prompt_mgf(eta, r) for r in range(len(self.prompt_values))]
        return np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])

    @property
    def max_prompt(self) -> np.ndarray:
        return np.array([v.max() for v in self.prompt_values])


@dataclass(frozen=True, eq=False)
class StreamTable:
    """An independent stream of activations: its budget, classes and tabulated ages.

    For age a (s = a + 1 = h shifts[a] + residues[a]) the lattice contribution of an active
    request is shifts[a] + (prompt value of residue residues[a]).
    """

    budget: Budget
    classes: tuple
    shifts: np.ndarray
    residues: np.ndarray

    @property
    def ages(self) -> int:
        return int(self.shifts.size)


def _lattice_prompt(values: np.ndarray, probs: np.ndarray, unit: int, rounding: str):
    keep = probs > 0
    values, probs = np.asarray(values, dtype=np.int64)[keep], probs[keep]
    out_v, out_lp = [], []
    for r in range(unit):
        if unit == 1:
            lv = values
        elif rounding == "up":
            lv = -((-(values + r)) // unit)
        else:
            lv = (values + r) // unit
        uv, inv = np.unique(lv, return_inverse=True)
        up = np.bincount(inv, weights=probs)
        out_v.append(uv.astype(float))
        out_lp.append(np.log(up))
    return tuple(out_v), tuple(out_lp)


class DemandModel:
    """U (docs/model.md 3.2) for a workload and a budget, optionally on a coarser lattice.

    Parameters
    ----------
    workload : Workload
        The request classes (rates give the class mix under flow control).
    budget : float, Budget, PerClassBudget or FlowControl
        A number (deterministic b), :class:`Budget`, :class:`PerClassBudget`, a
        FlowControl/ClassBudgets policy, or ``"unthrottled"`` (Poisson(lambda) activations).
    unit : int
        Lattice unit h in tokens (1 = exact).
    rounding : str
        "up" (conservative, h U >= U) or "down" (h U <= U); ignored when unit = 1.
    ages : int or None
        Tabulate at least this many ages (used by :mod:`exact_tail` to push the
        geometric cut further out when a strong tilt needs it).
    """

    def __init__(self, workload: Workload, budget, unit: int = 1, rounding: str = "up",
                 ages: int | None = None):
        if isinstance(unit, bool) or not isinstance(unit, (int, np.integer)) or unit < 1:
            raise ValueError(f"unit must be an integer >= 1 (tokens per lattice point), got {unit!r}")
        if rounding not in ("up", "down"):
            raise ValueError(f"rounding={rounding!r} is not allowed; use 'up' or 'down'")
        self.workload = workload
        self.budget = budget
        self.unit = int(unit)
        self.rounding = rounding
        streams = []
        for st in budget_streams(workload, budget):
            n_ages = 1 if ages is None else int(ages)
            for c in st.classes:
                n_ages = max(n_ages, survival(c.decode).size)
            s = np.arange(1, n_ages + 1)
            shifts, residues = s // self.unit, s % self.unit
            tables = []
            for w, c in zip(st.weights, st.classes):
                if w == 0:
                    continue
                v, pr = c.prompt.pmf(PROMPT_TAIL)
                pv, plp = _lattice_prompt(v, pr, self.unit, rounding)
                q = 1.0 - c.decode.p if is_unbounded_geometric(c.decode) else None
                tables.append(ClassTable(float(w), pv, plp, survival(c.decode, n_ages), q))
            streams.append(StreamTable(st.budget, tuple(tables), shifts, residues))
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
                top = np.where(c.survival > 0, c.max_prompt[st.residues] + st.shifts, 0)
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
                lms, mus = c.log_prompt_mgfs(eta)
                log_s = np.log(c.survival)
                log_active = log_s + eta * st.shifts + lms[st.residues]
                log_phi_c = np.logaddexp(np.log1p(-np.minimum(c.survival, 1.0)), log_active)
                log_phi_parts.append(math.log(c.weight) + log_phi_c)
                dens.append(math.log(c.weight) + log_active)
                slopes.append(st.shifts + mus[st.residues])
                if c.geometric_q is not None and eta >= 0:
                    # eta < 0: the dropped ages only lower Lambda, so the table is an upper bound.
                    lm, mu = c.log_prompt_mgf(eta, 0)
                    t, dt = _geometric_tail(c, st.ages, eta, lm, mu, self.unit, self.rounding)
                    tail += c.weight * t
                    dtail += c.weight * dt
        if len(log_phi_parts) == 1:
            log_phi = log_phi_parts[0]
        else:
            log_phi = logsumexp(np.vstack(log_phi_parts), axis=0)
        dlog_phi = np.zeros(st.ages)
        for d, sl in zip(dens, slopes):
            dlog_phi += np.exp(np.maximum(d - log_phi, -700.0)) * sl
        return log_phi, dlog_phi, tail, dtail

    def log_mgf(self, eta: float) -> float:
        """Lambda(eta) = log E[e^{eta U}] (U in lattice units).

        Exact finite sum over tabulated ages; for unbounded geometric decode lengths the
        ages beyond the table enter through an upper bound (eta >= 0) or are dropped
        (eta < 0, where they can only lower Lambda), so the value is >= the true Lambda.
        """
        eta = float(eta)
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
    """sum_{a >= A} q^a (E[e^{eta X_lattice(a)} | o > a] - 1) and its eta-derivative.

    Unit 1 (X = l + a + 1) the sum is exact: q^A [m e^{eta(A+1)} / (1 - q e^eta) - 1/(1-q)],
    m = E[e^{eta l}].  On a coarser lattice X <= ceil(l/h) + (a + c0)/h with c0 = h (up) or
    1 (down), which gives the same geometric series with ratio q e^{eta/h} and m the
    residue-0 prompt MGF: an upper bound for eta >= 0.
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
