"""Clocks: how long an iteration takes (docs/model.md section 2.4).

One slot is one decode iteration.  Under :class:`Unit` every slot lasts one time unit and
arrivals are slots (the paper's Sections 2-4.1).  Under a :class:`Linear` clock an
iteration with n requests decoding, total context R (tokens after eviction) and p prefill
tokens lasts

    d = c0 + c_seq n + c_ctx R + c_prefill p + c_step ceil((n + p) / step_tokens)

seconds (an iteration with nothing to run takes no time); arrivals carry times in seconds
and join at the first iteration boundary at or after them, and an idle engine sleeps
until the next arrival.  Coefficients are kept as integers in ticks of
:data:`TICK` seconds, so both engines add up times exactly.

Presets with their sources:

- :func:`jaillet`: Jaillet et al. (arXiv 2502.07115), Llama2-70B on 2 x A100, their fitted
  per-iteration time (0.0027 avg_ctx + 0.52) batch + 44.6 + 0.378 prefill ms, i.e.
  c0 = 44.6 ms, c_seq = 0.52 ms, c_ctx = 0.0027 ms per context token, c_prefill = 0.378 ms
  per prefill token;
- :func:`li_dai_peng`: Li, Dai, Peng (arXiv 2504.07347), CodeLlama-34B on an A100,
  t = 11.28 + 35.47 ceil(b / 128) ms with b the tokens in the batch.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from stability import validation
from stability.engine.timing import Ticks

__all__ = ["Clock", "Unit", "Linear", "jaillet", "li_dai_peng", "fit_profile", "parse_clock",
           "TICK", "ProfileFit"]

TICK = 1e-12
"""Seconds per tick (a picosecond): int64 ticks reach 106 days of simulated time."""
_PER_SECOND = 10**12


def _ticks(name: str, seconds: float) -> int:
    """``seconds`` in whole ticks, exactly for decimal inputs (0.0027e-3 is 2,700,000)."""
    validation.number(name, seconds, 0.0)
    return int(round(Fraction(repr(float(seconds))) * _PER_SECOND))


class Clock:
    """Base class: ``encode()`` gives the engines' integer clock (None: unit slots)."""

    def encode(self) -> Ticks | None:
        raise NotImplementedError

    def describe(self) -> str:
        return repr(self)

    def seconds(self, n, ctx, prefill) -> np.ndarray:
        """Iteration durations in seconds (numpy broadcasting), 0 for an empty batch."""
        raise NotImplementedError


@dataclass(frozen=True)
class Unit(Clock):
    """One slot per time unit; arrivals are slots (the paper's discrete-time model)."""

    def encode(self):
        return None

    def describe(self) -> str:
        return "unit"

    def seconds(self, n, ctx, prefill):
        raise ValueError("a Unit clock counts slots, not seconds")


@dataclass(frozen=True)
class Linear(Clock):
    """d = c0 + c_seq n + c_ctx R + c_prefill p + c_step ceil((n + p) / step_tokens) seconds.

    Parameters
    ----------
    c0, c_seq, c_ctx, c_prefill, c_step : float
        Seconds per iteration, per request decoding, per context token, per prefill token
        and per step of ``step_tokens`` batched tokens; all >= 0.
    step_tokens : int
        Tokens per step of the step term (token-batched engines).
    name : str
        A label (presets are named after their source).
    """

    c0: float = 0.0
    c_seq: float = 0.0
    c_ctx: float = 0.0
    c_prefill: float = 0.0
    c_step: float = 0.0
    step_tokens: int = 1
    name: str = ""

    def __post_init__(self):
        for field in ("c0", "c_seq", "c_ctx", "c_prefill", "c_step"):
            object.__setattr__(self, field, validation.number(field, getattr(self, field), 0.0))
        object.__setattr__(self, "step_tokens",
                           validation.integer("step_tokens", self.step_tokens, 1))
        if self.encode() == Ticks(TICK, 0, 0, 0, 0, 0, self.step_tokens):
            raise ValueError("a Linear clock needs a coefficient > 0 (every iteration would "
                             "take no time)")

    def encode(self):
        return Ticks(TICK, _ticks("c0", self.c0), _ticks("c_seq", self.c_seq),
                     _ticks("c_ctx", self.c_ctx), _ticks("c_prefill", self.c_prefill),
                     _ticks("c_step", self.c_step), self.step_tokens)

    def describe(self) -> str:
        if self.name:
            return self.name
        terms = [f"c0={self.c0:g}", f"c_seq={self.c_seq:g}", f"c_ctx={self.c_ctx:g}",
                 f"c_prefill={self.c_prefill:g}"]
        if self.c_step:
            terms.append(f"c_step={self.c_step:g}/{self.step_tokens}")
        return "linear(" + ", ".join(terms) + ")"

    def seconds(self, n, ctx, prefill):
        n, ctx, prefill = (np.asarray(x, dtype=float) for x in (n, ctx, prefill))
        d = (self.c0 + self.c_seq * n + self.c_ctx * ctx + self.c_prefill * prefill
             + self.c_step * np.ceil((n + prefill) / self.step_tokens))
        return np.where((n == 0) & (prefill == 0), 0.0, d)


def jaillet() -> Linear:
    """Jaillet et al. 2502.07115's Llama2-70B / 2 x A100 fit (their simulator's
    per-iteration time: (0.0027 avg_ctx + 0.52) batch + 44.6 + 0.378 prefill ms)."""
    return Linear(c0=0.0446, c_seq=0.00052, c_ctx=0.0000027, c_prefill=0.000378,
                  name="jaillet")


def li_dai_peng() -> Linear:
    """Li, Dai, Peng 2504.07347's CodeLlama-34B / A100 step model:
    11.28 + 35.47 ceil(b / 128) ms, b the tokens in the batch."""
    return Linear(c0=0.01128, c_step=0.03547, step_tokens=128, name="li-dai-peng")


# ------------------------------------------------------------------------- profiles
PROFILE_COLUMNS = ("batch_size", "context_tokens", "prefill_tokens", "seconds")


@dataclass(frozen=True)
class ProfileFit:
    """A clock fitted to measured iterations, with its residuals (seconds)."""

    clock: Linear
    rows: int
    rms_residual: float
    max_abs_residual: float
    max_relative_residual: float


def fit_profile(path, name: str | None = None) -> ProfileFit:
    """Fit c0, c_seq, c_ctx, c_prefill (all >= 0, non-negative least squares) to a CSV of
    measured iterations with columns batch_size, context_tokens, prefill_tokens, seconds.

    Errors name the file, the row and the column.
    """
    from scipy.optimize import nnls

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"clock profile {path}: no such file")
    try:
        with open(path, newline="") as handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            missing = [c for c in PROFILE_COLUMNS if c not in header]
            if missing:
                raise ValueError(f"clock profile {path}: missing column {missing[0]!r} (needs "
                                 f"{', '.join(PROFILE_COLUMNS)})")
            rows = []
            for line, row in enumerate(reader, start=2):
                values = []
                for column in PROFILE_COLUMNS:
                    try:
                        v = float(row[column])
                    except (TypeError, ValueError):
                        raise ValueError(f"clock profile {path}:{line}: {column} = "
                                         f"{row[column]!r} is not a number") from None
                    if not math.isfinite(v) or v < 0:
                        raise ValueError(f"clock profile {path}:{line}: {column} = {v!r} must "
                                         "be a finite number >= 0")
                    values.append(v)
                rows.append(values)
    except UnicodeDecodeError:
        raise ValueError(f"clock profile {path}: not a text CSV file") from None
    data = np.array(rows, dtype=float).reshape(-1, 4)
    if data.shape[0] < 4:
        raise ValueError(f"clock profile {path}: {data.shape[0]} rows, but fitting 4 "
                         "coefficients needs at least 4")
    n, ctx, prefill, seconds = data.T
    design = np.column_stack([np.ones_like(n), n, ctx, prefill])
    coef, _ = nnls(design, seconds)
    predicted = design @ coef
    residual = seconds - predicted
    clock = Linear(*coef, name=name or f"profile:{path.name}")
    positive = seconds > 0
    relative = float(np.max(np.abs(residual[positive]) / seconds[positive])) \
        if positive.any() else math.nan
    return ProfileFit(clock, data.shape[0], float(np.sqrt(np.mean(residual**2))),
                      float(np.max(np.abs(residual))), relative)


def parse_clock(text: str) -> Clock:
    """``unit``, ``jaillet``, ``li-dai-peng``, ``linear:C0,C_SEQ,C_CTX,C_PREFILL`` (seconds)
    or ``profile:CSV`` (fitted)."""
    kind, _, rest = str(text).partition(":")
    if kind == "unit" and not rest:
        return Unit()
    if kind == "jaillet" and not rest:
        return jaillet()
    if kind == "li-dai-peng" and not rest:
        return li_dai_peng()
    if kind == "linear" and rest:
        parts = rest.split(",")
        names = ("c0", "c_seq", "c_ctx", "c_prefill")
        if len(parts) != 4:
            raise ValueError(f"clock {text!r}: linear takes 4 coefficients C0,C_SEQ,C_CTX,"
                             f"C_PREFILL in seconds, got {len(parts)}")
        values = {}
        for name, part in zip(names, parts):
            try:
                values[name] = float(part)
            except ValueError:
                raise ValueError(f"clock {text!r}: {name} = {part!r} is not a number") from None
        return Linear(**values)
    if kind == "profile" and rest:
        return fit_profile(rest).clock
    raise ValueError(f"clock must be unit, jaillet, li-dai-peng, linear:C0,C_SEQ,C_CTX,"
                     f"C_PREFILL or profile:CSV, got {text!r}")
