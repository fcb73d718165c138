"""Output-length predictions for the length-aware policies (docs/model.md section 4.4).

A prediction model turns the true decode lengths into a point prediction and an interval
[lower, upper], drawn from a random stream of its own (the fourth child of the run's
SeedSequence, after arrivals, lengths and budgets), so adding predictions leaves every
other draw unchanged (common random numbers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

__all__ = ["Predictions", "PredictedLengths"]

KINDS = ("exact", "noisy", "interval")


class PredictedLengths(NamedTuple):
    point: np.ndarray  # int64, >= 1
    lower: np.ndarray  # int64, >= 1
    upper: np.ndarray  # int64, >= lower

    def capped(self, most: np.ndarray) -> "PredictedLengths":
        """Every prediction at most ``most`` (per request): a scheduler that knows
        l + o <= M never needs to assume more than M - l decode tokens."""
        return PredictedLengths(np.minimum(self.point, most), np.minimum(self.lower, most),
                                np.minimum(self.upper, most))


@dataclass(frozen=True)
class Predictions:
    """How predictions relate to the true decode length o.

    - ``exact``: point = lower = upper = o.
    - ``noisy``: point = max(1, round(o exp(sigma Z))), Z ~ N(0, 1) (multiplicative
      lognormal error, median-unbiased); lower = upper = point.
    - ``interval``: lower = max(1, floor(o (1 - width U1))), upper = ceil(o (1 + width U2)),
      U1, U2 ~ U[0, 1] independent, so o always lies in [lower, upper] and the relative
      width is at most 2 ``width``; point = round(sqrt(lower upper)).

    ``stability.simulate`` caps every prediction at M - l (``PredictedLengths.capped``):
    requests satisfy l + o <= M, so no scheduler needs to assume a longer decode.
    """

    kind: str = "exact"
    sigma: float = 0.0
    width: float = 0.0

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        for name in ("sigma", "width"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (
                    math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        if self.kind == "interval" and not self.width < 1:
            raise ValueError(f"width must be < 1 for interval predictions, got {self.width!r}")

    @classmethod
    def parse(cls, text) -> "Predictions":
        """``exact``, ``noisy:SIGMA`` or ``interval:WIDTH`` (a Predictions passes through)."""
        if isinstance(text, Predictions):
            return text
        if not isinstance(text, str):
            raise ValueError(f"predictions must be exact, noisy:SIGMA or interval:WIDTH, "
                             f"got {text!r}")
        kind, _, value = text.partition(":")
        try:
            if kind == "exact" and not value:
                return cls()
            if kind in ("noisy", "interval") and value:
                return cls.noisy(float(value)) if kind == "noisy" else cls.interval(float(value))
        except ValueError as err:
            raise ValueError(f"predictions {text!r}: {err}") from None
        raise ValueError(f"predictions must be exact, noisy:SIGMA or interval:WIDTH, "
                         f"got {text!r}")

    def text(self) -> str:
        """The inverse of :meth:`parse`."""
        if self.kind == "exact":
            return "exact"
        return f"noisy:{self.sigma!r}" if self.kind == "noisy" else f"interval:{self.width!r}"

    @classmethod
    def noisy(cls, sigma: float) -> "Predictions":
        return cls("noisy", sigma=sigma)

    @classmethod
    def interval(cls, width: float) -> "Predictions":
        return cls("interval", width=width)

    def draw(self, decode: np.ndarray, seed: int) -> PredictedLengths:
        """Predictions for the true lengths ``decode`` from the run's seed."""
        decode = np.asarray(decode, dtype=np.int64)
        stream = np.random.SeedSequence(int(seed)).spawn(4)[3]
        rng = np.random.default_rng(stream)
        if self.kind == "exact":
            return PredictedLengths(decode.copy(), decode.copy(), decode.copy())
        if self.kind == "noisy":
            point = np.maximum(1, np.rint(decode * np.exp(self.sigma * rng.standard_normal(
                decode.size)))).astype(np.int64)
            return PredictedLengths(point, point.copy(), point.copy())
        u1, u2 = rng.random(decode.size), rng.random(decode.size)
        lower = np.maximum(1, np.floor(decode * (1 - self.width * u1))).astype(np.int64)
        upper = np.ceil(decode * (1 + self.width * u2)).astype(np.int64)
        point = np.maximum(1, np.rint(np.sqrt(lower * upper))).astype(np.int64)
        return PredictedLengths(point, lower, upper)
