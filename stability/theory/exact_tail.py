"""Exact tail of the eviction-free KV demand U on the integer lattice, by FFT.

Beyond the paper (docs/model.md 3.4).  U = sum over ages a of independent compound sums: B_{t-a}
activations, each contributing X(a) = (l + a + 1) 1{o > a}.  On the lattice the generating
function of one activation is

    P_a(z) = (1 - S(a)) + S(a) z^{a+1} L(z),     S(a) = P(o > a),  L(z) = E[z^l],

(a mixture over classes under flow control), and U has generating function
prod_a G(P_a(z)), G the budget's.  We evaluate it at the N-th roots of unity and invert with
one real FFT:

* Poisson budgets: log prod_a G(P_a) = beta sum_c [L_c(z) D_c(z) - D_c(1)] with
  D_c(z) = sum_a S_c(a) z^{a+1}: three FFTs, O(N log N).
* deterministic and two-point budgets: a jitted product over ages, O(ages x N).

Accuracy.  The FFT sees U modulo N (aliasing) and has absolute round-off ~1e-16, so a
plain inversion cannot resolve tails far below 1e-13.  Each pass therefore inverts the
*exponentially tilted* law, P_eta(U = k) = P(U = k) e^{eta k - Lambda(eta)}, with eta the
Chernoff maximiser at the smallest level it serves, and untilts, which gives relative
accuracy deep in the tail (a pass serves the levels whose tilted tail is >= 1e-9, so the
relative error is ~1e-7 at worst; against enumeration it is ~1e-11 to 1e-7).  The window
of N lattice points each pass reads, and N itself, are chosen from Chernoff bounds so that
wrapped mass from above and below is below e^-37 relative (:func:`_window`), or so that the
window holds all of U when U is bounded.  Negative round-off is clipped to 0.

Coarsening.  Large cases (M ~ 10^6 tokens) use a lattice of h tokens: every contribution
is rounded *up*, ceil((l + a + 1) / h) (so h U_up >= U and the reported tail is
an upper bound), and, when ``bracket`` is set, also down (a lower bound).

Unbounded geometric decode lengths are truncated at the first age where the tilted mass of
all older activations is below 1e-20; the bound on the dropped mass is reported.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import fft as sfft
from scipy.signal import lfilter
from scipy.special import expit, logsumexp

from stability import validation
from stability.theory._kernels import age_product
from stability.theory.demand import DemandModel, StreamTable
from stability.theory.overflow import chernoff_lower_rate, chernoff_rate
from stability.workload import Workload

__all__ = ["TailResult", "exact_tail", "per_slot_overflow", "choose_unit"]

ALIAS_MARGIN = 37.0
"""Aliased mass <= e^-37 (~1e-16) relative to the tail it pollutes."""
ACCEPT = 1e-9
"""A pass answers a level m when its tilted tail P_eta(U > m) is at least this."""
TRUNCATION = 1e-20
"""Geometric ages are tabulated until the tilted mass of older activations is below this."""
WORK_LIMIT = 2.5e8
"""Default budget of (age, frequency) pairs for the product kernel (~1 s)."""
POISSON_POINTS = 2**22
"""Default largest lattice for Poisson budgets (FFT only)."""


@dataclass(frozen=True)
class TailResult:
    """P(U > m) on a grid of levels (U of docs/model.md 3.2; beyond the paper, 3.4).

    Attributes
    ----------
    levels : numpy.ndarray
        int array (n,), m in tokens.
    prob : numpy.ndarray
        float array (n,), P(U > m); an upper bound when ``unit > 1`` (contributions
        rounded up), exact up to the stated errors when ``unit == 1``.
    log_prob : numpy.ndarray
        float array (n,), natural log of ``prob`` (finite even below 1e-308).
    prob_lower : numpy.ndarray or None
        float array (n,) or None, the rounded-down lower bracket (unit > 1).
    unit : int
        h, tokens per lattice point.
    lattice_sizes : tuple
        FFT length N of each pass.
    tilts : tuple
        eta of each pass, per token.
    mean : float
        E[U] in tokens (exact).
    truncation_bound : float
        Bound on the tilted mass dropped with old geometric ages (0 if none).
    seconds : float
        Wall time.
    notes : tuple
        What was approximated and how.
    """

    levels: np.ndarray
    prob: np.ndarray
    log_prob: np.ndarray
    prob_lower: np.ndarray | None
    unit: int
    lattice_sizes: tuple
    tilts: tuple
    mean: float
    truncation_bound: float
    seconds: float
    notes: tuple = field(default=())

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("levels", "prob", "log_prob", "prob_lower"):
            if d[k] is not None:
                d[k] = np.asarray(d[k]).tolist()
        d["lattice_sizes"] = list(self.lattice_sizes)
        d["tilts"] = list(self.tilts)
        d["notes"] = list(self.notes)
        return d


# ---------------------------------------------------------------------------------------
# One pass: the tilted pmf of U on a lattice of size N.

MARGIN = ALIAS_MARGIN + 10.0
"""Chernoff exponents bound tails up to a polynomial prefactor; 10 more nats cover it."""


def _exp(x: np.ndarray) -> np.ndarray:
    """exp(x) with x < -700 sent to 0: no subnormal numbers (slow) reach the kernels."""
    return np.exp(np.where(x < -700.0, -np.inf, x))


def _geometric_ages_needed(model: DemandModel, eta: float) -> int:
    """Ages to tabulate so that the tilted mass of older activations is < TRUNCATION."""
    need = 0
    for st in model.streams:
        count = max(1.0, math.ceil(st.budget.mean))
        for c in st.classes:
            if c.geometric_q is None:
                continue
            lm, _ = c.log_prompt_mgf(eta, 0)
            r_log = math.log(c.geometric_q) + eta / model.unit
            if r_log >= 0:
                raise ValueError("tilt outside the domain of Lambda; the level is too deep")
            # count * w * m e^{eta(A + h)/h} q^A / (1 - r) <= TRUNCATION, solved for A.
            rhs = (math.log(TRUNCATION / (count * c.weight)) + math.log1p(-math.exp(r_log))
                   - lm - eta)
            need = max(need, int(math.ceil(rhs / r_log)) + 1)
    return need


def _truncation_mass(model: DemandModel, eta: float) -> float:
    """Bound on the tilted expected number of active activations older than the table.

    With A = st.ages tabulated ages, an activation of age a >= A is active with
    probability q^a and weighs at most e^{eta (a + h)/h} e^{eta L} after tilting, so the
    mass is at most count w m e^{eta (A + h)/h} q^A / (1 - q e^{eta/h}) (m = E[e^{eta L}]),
    the same expression :func:`_geometric_ages_needed` solves for A.
    """
    total = 0.0
    for st in model.streams:
        count = max(1.0, math.ceil(st.budget.mean))
        for c in st.classes:
            if c.geometric_q is None:
                continue
            lm, _ = c.log_prompt_mgf(eta, 0)
            r = c.geometric_q * math.exp(eta / model.unit)
            log_term = (st.ages * math.log(c.geometric_q) + lm + eta * (st.ages + model.unit)
                        / model.unit)
            total += count * c.weight * math.exp(log_term) / (1 - r)
    return total


def _stream_log_pgf(st: StreamTable, model: DemandModel, eta: float, n_points: int,
                    roots: np.ndarray) -> tuple[np.ndarray, float]:
    """log of the tilted generating function of one stream at z_k, k = 0..N/2, and the
    stream's Lambda over its tabulated ages (the normaliser of the tilt)."""
    half = n_points // 2 + 1
    budget = st.budget
    log_phi = model.stream_log_phi(st, eta)
    lam = float(np.sum(budget.log_pgf_of_log(log_phi)))
    n_res = model.unit
    pgfs = np.empty((len(st.classes), n_res, half), dtype=complex)
    log_rho, log_idle = [], []
    with np.errstate(divide="ignore"):
        for ci, c in enumerate(st.classes):
            lms, _ = c.log_prompt_mgfs(eta)
            for r in range(n_res):
                mass = np.zeros(n_points)
                v = c.prompt_values[r]
                np.add.at(mass, v.astype(np.int64) % n_points,
                          _exp(eta * v + c.prompt_log_probs[r] - lms[r]))
                pgfs[ci, r] = sfft.rfft(mass)
            log_rho.append(math.log(c.weight) + np.log(c.survival) + eta * st.shifts
                           + lms[st.residues])
            log_idle.append(math.log(c.weight) + np.log1p(-np.minimum(c.survival, 1.0)))
    if budget.law == "poisson":
        # log prod_a G(P_a) = beta sum_{c,a} rho_{c,a} (z^{shift_a} L_{c,r_a}(z) - 1).
        out = np.zeros(half, dtype=complex)
        for ci in range(len(st.classes)):
            rho = _exp(log_rho[ci])
            for r in range(n_res):
                sel = st.residues == r
                if not np.any(sel):
                    continue
                d = np.zeros(n_points)
                np.add.at(d, st.shifts[sel] % n_points, rho[sel])
                out += budget.mean * pgfs[ci, r] * sfft.rfft(d)
            out -= budget.mean * rho.sum()
        return out, lam
    w_idle = _exp(logsumexp(np.vstack(log_idle), axis=0) - log_phi)
    w_active = _exp(np.vstack(log_rho) - log_phi)
    main = np.ones(half, dtype=complex)
    extra = np.ones(half, dtype=complex)
    two = budget.law == "two-point" and budget.frac > 0
    if two:
        f = budget.frac
        g_extra = expit(math.log(f) + log_phi - math.log1p(-f))
    else:
        g_extra = np.zeros(st.ages)
    age_product(roots, st.shifts.astype(np.int64), st.residues.astype(np.int64), w_idle,
                w_active, pgfs, 1.0 - g_extra, g_extra, two, main, extra)
    power = int(budget.mean) if budget.law == "deterministic" else budget.floor
    out = np.zeros(half, dtype=complex)
    with np.errstate(divide="ignore"):
        # Real arithmetic, so that a zero product gives log = -inf + 0j (not nan).
        if power:
            out += power * np.log(np.abs(main)) + 1j * power * np.angle(main)
        if two:
            out += np.log(np.abs(extra)) + 1j * np.angle(extra)
    return out, lam


def _tilted_pmf(model: DemandModel, eta: float, n_points: int) -> tuple[np.ndarray, float]:
    """P_eta(U = k mod N), k = 0..N-1 (circular), and Lambda(eta) over the tabulated ages."""
    roots = np.exp(-2j * np.pi * np.arange(n_points) / n_points)
    log_pgf = np.zeros(n_points // 2 + 1, dtype=complex)
    lam = 0.0
    for st in model.streams:
        lp, ls = _stream_log_pgf(st, model, eta, n_points, roots)
        log_pgf += lp
        lam += ls
    pmf = sfft.irfft(np.exp(log_pgf), n=n_points)
    return np.clip(pmf, 0.0, 1.0), lam


def _smallest(ok, start: int = 64) -> int:
    """Smallest n >= 1 (to within 5%) with ok(n), for ok monotone in n."""
    n = start
    while not ok(n):
        n *= 2
    lo = n // 2
    while n - lo > max(16, n // 20):
        mid = (lo + n) // 2
        if ok(mid):
            n = mid
        else:
            lo = mid
    return n


def _window(model: DemandModel, level: float, eta: float, rate: float) -> tuple[int, int]:
    """First lattice point s and FFT length N of a pass tilted by eta serving ``level``.

    The pass reads positions k mod N for k in the window [s, s + N), s <= level.  Untilting
    multiplies the tilted pmf at k by e^{Lambda - eta k}, so wrapped mass is harmless when:

    * from above: mass at x >= s + N is missing from the tail sums, negligible when
      I(s + N) >= I(m) + MARGIN for each level m served; and mass at x = k + jN
      (j >= 1, x >= level + N) lands on a read position with weight P(U = x) e^{eta j N},
      negligible when I(level + N) - eta N >= I(level) + MARGIN (Chernoff); neither
      exists when s + N > max U;
    * from below: mass at x < s lands with weight <= P(U < s) e^{-eta N}; negligible when
      I_-(s) + eta N >= I(m) + MARGIN for each level m served (lower Chernoff rate I_-;
      checked per level in _tail_on_lattice), and absent when s = 0.

    Two candidates are compared: s = level with N large enough that eta N alone suppresses
    the lower wrap (deep levels), and s = the point where I_-(s) >= I(level) + MARGIN
    (levels near the mean, where eta is small).
    """
    top = model.max_value
    need = rate + MARGIN

    def upper_ok(s, n):
        if s + n > top:
            return True
        if s < level and chernoff_rate(model, s + n).rate < need:
            return False
        return level + n > top or chernoff_rate(model, level + n).rate - eta * n >= need

    best = None
    if eta > 0:
        n = _smallest(lambda n: eta * n >= need and upper_ok(int(level), n))
        best = (int(level), n)
    cap = int(min(level, model.dlog_mgf(0.0)))
    if cap <= 0 or chernoff_lower_rate(model, 0) < need:
        s = 0
    else:
        s = cap - _smallest(lambda d: chernoff_lower_rate(model, cap - d) >= need,
                            start=max(1, cap // 64))
        s = max(s, 0)
    room = int(level) - s + 2
    n = _smallest(lambda n: n >= room and upper_ok(s, n))
    if best is None or n < best[1]:
        best = (s, n)
    s, n = best
    return s, sfft.next_fast_len(max(n, 16), real=True)


def _pass_cost(model: DemandModel, n_points: int) -> float:
    """Work of one pass, in kernel (age, frequency) pairs or FFT-equivalents."""
    if all(st.budget.law == "poisson" for st in model.streams):
        return n_points * math.log2(max(n_points, 2)) / 20.0
    return sum(len(st.classes) * st.ages for st in model.streams
               if st.budget.law != "poisson") * (n_points / 2 + 1)


def choose_unit(workload: Workload, budget, levels, work_limit: float = WORK_LIMIT,
                poisson_points: int = POISSON_POINTS) -> int:
    """Smallest lattice unit h whose passes fit the work limit (1 when the exact lattice does)."""
    exact = DemandModel(workload, budget)
    levels = np.asarray(levels, dtype=float)
    sizes = []
    for lv in (float(levels.min()), float(levels.max())):
        r = chernoff_rate(exact, lv)
        if math.isinf(r.rate):
            continue
        sizes.append(_window(exact, lv, r.theta, r.rate)[1])
    if not sizes:
        return 1
    n_exact = max(sizes)
    if all(st.budget.law == "poisson" for st in exact.streams):
        return max(1, math.ceil(n_exact / poisson_points))
    return max(1, math.ceil(_pass_cost(exact, n_exact) / work_limit))


# ---------------------------------------------------------------------------------------
# Passes over the grid of levels.


def _tail_on_lattice(model: DemandModel, levels_u: np.ndarray):
    """log P(U > m) for lattice levels m (sorted, unique), with the passes used."""
    out = np.full(levels_u.size, np.nan)
    top = model.max_value
    out[levels_u >= top] = -np.inf
    sizes, tilts, trunc = [], [], 0.0
    todo = np.flatnonzero(np.isnan(out))
    while todo.size:
        m1 = float(levels_u[todo[0]])
        r = chernoff_rate(model, m1)
        eta = r.theta
        need = _geometric_ages_needed(model, eta)
        if need > max(st.ages for st in model.streams):
            model = DemandModel(model.workload, model.budget, model.unit, model.rounding,
                                ages=need)
        trunc = max(trunc, _truncation_mass(model, eta))
        start, n_points = _window(model, m1, eta, r.rate)
        pmf, lam = _tilted_pmf(model, eta, n_points)
        seg = np.roll(pmf, -(start % n_points))  # seg[i] = P_eta(U = start + i)
        tilted_tail = np.concatenate([np.cumsum(seg[::-1])[::-1][1:], [0.0]])
        # c(i) = sum_{j > i} seg(j) e^{-eta (j - i)}, via d(i) = seg(i) + e^-eta d(i + 1).
        weighted = lfilter([1.0], [1.0, -math.exp(-eta)], seg[::-1])[::-1] - seg
        lower_rate = math.inf if start == 0 else chernoff_lower_rate(model, start)
        upper_rate = chernoff_rate(model, start + n_points).rate
        for i in todo:
            m = float(levels_u[i])
            if m < start:  # P(U <= m) <= e^{-I_-(start)}, negligible: P(U > m) = 1
                out[i] = 0.0
                continue
            k = int(m) - start
            if k >= n_points - 1:
                break
            if i != todo[0]:
                if tilted_tail[k] < ACCEPT:
                    break
                rate_m = chernoff_rate(model, m).rate + MARGIN
                if rate_m > lower_rate + eta * n_points or rate_m > upper_rate:
                    break
            with np.errstate(divide="ignore"):
                out[i] = lam - eta * m + math.log(weighted[k]) if weighted[k] > 0 else -np.inf
        if np.isnan(out[todo[0]]):
            # _window always covers the first level of a pass; if it did not, the next
            # pass would be the same one and the loop would never end
            raise RuntimeError(f"FFT pass of {n_points} points from {start} does not reach "
                               f"level {levels_u[todo[0]]:g}: the lattice window is too short")
        sizes.append(n_points)
        tilts.append(eta / model.unit)
        todo = np.flatnonzero(np.isnan(out))
    return out, tuple(sizes), tuple(tilts), trunc


def exact_tail(workload: Workload, budget, levels, unit: int | None = None,
               bracket: bool | None = None, work_limit: float = WORK_LIMIT) -> TailResult:
    """P(U > m) for each level m (tokens): the exact tail of the eviction-free demand.

    Parameters
    ----------
    workload : Workload
        Request classes.
    budget : float, Budget, PerClassBudget, FlowControl or str
        As for :class:`~stability.theory.demand.DemandModel` (``"unthrottled"`` gives the
        compound-Poisson demand of an unthrottled system).
    levels : int or array_like of int
        int or array of ints >= 0, m in tokens.
    unit : int or None
        Lattice unit h in tokens; default: 1 unless the work limit needs coarsening.
    bracket : bool or None
        Also compute the rounded-down lower bracket (default: when unit > 1).
    work_limit : float
        (age, frequency) pairs per pass allowed before coarsening.
    """
    import time

    t0 = time.perf_counter()
    lv = np.atleast_1d(np.asarray(levels))
    if lv.size == 0 or lv.ndim != 1:
        raise ValueError("levels must be a non-empty one-dimensional list of integers >= 0")
    if not np.issubdtype(lv.dtype, np.integer):
        if not np.all(np.isfinite(lv)) or np.any(lv != np.round(lv)):
            raise ValueError(f"levels must be integers >= 0 (tokens), got {lv.tolist()[:5]}")
    lv = lv.astype(np.int64)
    if lv.min() < 0:
        raise ValueError(f"levels must be integers >= 0 (tokens), got {int(lv.min())}")
    if unit is None:
        unit = choose_unit(workload, budget, lv, work_limit)
    if bracket is None:
        bracket = unit > 1
    notes = []
    results = {}
    for rounding in (("up", "down") if bracket and unit > 1 else ("up",)):
        model = DemandModel(workload, budget, unit, rounding)
        lat = lv // unit
        uniq, inv = np.unique(lat, return_inverse=True)
        logp, sizes, tilts, trunc = _tail_on_lattice(model, uniq.astype(float))
        results[rounding] = (logp[inv], sizes, tilts, trunc)
    logp, sizes, tilts, trunc = results["up"]
    if unit > 1:
        notes.append(f"lattice of h={unit} tokens; contributions rounded up "
                     "(ceil((l+a+1)/h)), so prob is an upper bound on P(U > m)")
    if trunc > 0:
        notes.append(f"unbounded geometric decode: ages truncated, dropped tilted mass <= {trunc:.1e}")
    lower = None
    if "down" in results:
        lower = np.exp(results["down"][0])
        notes.append("prob_lower: contributions rounded down, a lower bound on P(U > m)")
    mean = DemandModel(workload, budget).dlog_mgf(0.0)
    return TailResult(lv, np.exp(logp), logp, lower, int(unit), sizes, tilts, mean, trunc,
                      time.perf_counter() - t0, tuple(notes))


def per_slot_overflow(workload: Workload, budget, memory: int, **kwargs) -> TailResult:
    """P(U > M): the per-slot overflow probability of the saturated, eviction-free demand."""
    return exact_tail(workload, budget, [validation.memory(memory)], **kwargs)
