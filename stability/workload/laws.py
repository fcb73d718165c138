"""Length laws of prompts and decodes on the positive integers (docs/model.md 1 and 3).

Each law carries its exact mean, second moment and probability table (the theory reads
them) and an encoding for the jitted sampler (``stability.engine.generate``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from stability import validation
from stability.engine.codes import LAW_DETERMINISTIC, LAW_GEOMETRIC, LAW_TABLE, LAW_UNIFORM
from stability.workload.requests import _as_int_array

__all__ = ["LengthLaw", "Deterministic", "Geometric", "UniformInt", "Empirical", "LogNormal",
           "parse_law"]


class LengthLaw:
    """A law of token lengths on the positive integers.

    Subclasses give the exact mean and second moment, a probability table where the
    support is finite, and an encoding for the jitted sampler.
    """

    def mean(self) -> float:
        raise NotImplementedError

    def second_moment(self) -> float:
        raise NotImplementedError

    def var(self) -> float:
        return self.second_moment() - self.mean() ** 2

    @property
    def max_value(self) -> float:
        """Largest value with positive probability (``math.inf`` if unbounded)."""
        raise NotImplementedError

    @property
    def min_value(self) -> int:
        raise NotImplementedError

    def pmf(self, tail: float = 1e-15) -> tuple[np.ndarray, np.ndarray]:
        """Support values and probabilities; unbounded laws are cut where the tail < ``tail``."""
        raise NotImplementedError

    def encode(self) -> np.ndarray:
        """The law as a flat float vector for the jitted sampler (``engine.generate``).

        Layouts: deterministic [0, v]; geometric [1, log(1-p), max or -1, P(o <= max)];
        uniform [2, low, count]; table [3, n, thresholds(n), values(n), alias values(n)]
        (Vose's alias method, so a table law is sampled in O(1)).
        """
        raise NotImplementedError


def _check_int(name: str, value, low: int) -> int:
    return validation.integer(name, value, low, whole_floats=True)


def _alias_table(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vose's alias method: returns (threshold, alias index) arrays for O(1) sampling."""
    n = probs.size
    scaled = probs * n / probs.sum()
    threshold = np.ones(n)
    alias = np.arange(n, dtype=np.int64)
    small = [i for i in range(n) if scaled[i] < 1.0]
    large = [i for i in range(n) if scaled[i] >= 1.0]
    while small and large:
        s, g = small.pop(), large.pop()
        threshold[s] = scaled[s]
        alias[s] = g
        scaled[g] = scaled[g] + scaled[s] - 1.0
        (small if scaled[g] < 1.0 else large).append(g)
    return threshold, alias


@dataclass(frozen=True)
class _TableLaw(LengthLaw):
    """Shared machinery for laws given by a finite probability table."""

    def _table(self) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def mean(self) -> float:
        v, p = self._table()
        return float(np.dot(v, p))

    def second_moment(self) -> float:
        v, p = self._table()
        return float(np.dot(v.astype(float) ** 2, p))

    @property
    def max_value(self) -> int:
        return int(self._table()[0].max())

    @property
    def min_value(self) -> int:
        return int(self._table()[0].min())

    def pmf(self, tail: float = 1e-15):
        return self._table()

    def encode(self):
        v, p = self._table()
        threshold, alias = _alias_table(p)
        return np.concatenate([[LAW_TABLE, v.size], threshold, v, v[alias]]).astype(float)


@dataclass(frozen=True)
class Deterministic(LengthLaw):
    """Every request has length ``value``."""

    value: int

    def __post_init__(self):
        object.__setattr__(self, "value", _check_int("value", self.value, 1))

    def mean(self):
        return float(self.value)

    def second_moment(self):
        return float(self.value) ** 2

    @property
    def max_value(self):
        return self.value

    @property
    def min_value(self):
        return self.value

    def pmf(self, tail: float = 1e-15):
        return np.array([self.value]), np.array([1.0])

    def encode(self):
        return np.array([LAW_DETERMINISTIC, self.value], dtype=float)


@dataclass(frozen=True)
class Geometric(LengthLaw):
    """P(o = k) = (1 - p)^(k-1) p for k = 1, 2, ... (mean 1/p), docs/model.md 3.

    ``max`` truncates by conditioning on o <= max (None: unbounded).
    """

    p: float
    max: int | None = None

    def __post_init__(self):
        if not (isinstance(self.p, (int, float)) and 0.0 < float(self.p) <= 1.0):
            raise ValueError(f"p must be a probability in (0, 1], got {self.p!r}")
        object.__setattr__(self, "p", float(self.p))
        if self.max is not None:
            object.__setattr__(self, "max", _check_int("max", self.max, 1))

    def _truncated(self) -> bool:
        return self.max is not None and self.p < 1.0

    def mean(self):
        if not self._truncated():
            return 1.0 / self.p
        v, p = self.pmf()
        return float(np.dot(v, p))

    def second_moment(self):
        if not self._truncated():
            return (2.0 - self.p) / self.p**2
        v, p = self.pmf()
        return float(np.dot(v.astype(float) ** 2, p))

    @property
    def max_value(self):
        if self.p == 1.0:
            return 1
        return math.inf if self.max is None else self.max

    @property
    def min_value(self):
        return 1

    def pmf(self, tail: float = 1e-15):
        if self.p == 1.0:
            return np.array([1]), np.array([1.0])
        if self.max is not None:
            kmax = self.max
        else:
            kmax = max(1, int(math.ceil(math.log(tail) / math.log1p(-self.p))))
        k = np.arange(1, kmax + 1)
        probs = np.exp((k - 1) * math.log1p(-self.p)) * self.p
        return k, probs / probs.sum()

    def encode(self):
        if self.p == 1.0:
            return np.array([LAW_DETERMINISTIC, 1.0])
        log_q = math.log1p(-self.p)
        if self.max is None:
            return np.array([LAW_GEOMETRIC, log_q, -1.0, 1.0])
        return np.array([LAW_GEOMETRIC, log_q, float(self.max), -math.expm1(self.max * log_q)])


@dataclass(frozen=True)
class UniformInt(LengthLaw):
    """Uniform on the integers low, ..., high (inclusive)."""

    low: int
    high: int

    def __post_init__(self):
        object.__setattr__(self, "low", _check_int("low", self.low, 1))
        object.__setattr__(self, "high", _check_int("high", self.high, 1))
        if self.high < self.low:
            raise ValueError(f"high must be >= low={self.low}, got {self.high}")

    def mean(self):
        return (self.low + self.high) / 2.0

    def second_moment(self):
        n = self.high - self.low + 1
        return self.mean() ** 2 + (n * n - 1) / 12.0

    @property
    def max_value(self):
        return self.high

    @property
    def min_value(self):
        return self.low

    def pmf(self, tail: float = 1e-15):
        v = np.arange(self.low, self.high + 1)
        return v, np.full(v.size, 1.0 / v.size)

    def encode(self):
        return np.array([LAW_UNIFORM, self.low, self.high - self.low + 1], dtype=float)


@dataclass(frozen=True)
class Empirical(_TableLaw):
    """Resampling with replacement from the given positive integer samples."""

    samples: tuple = field(repr=False)

    def __post_init__(self):
        arr = np.asarray(self.samples)
        if arr.ndim != 1 or arr.size == 0:
            raise ValueError("samples must be a non-empty one-dimensional sequence")
        arr = _as_int_array("samples", arr)
        bad = np.flatnonzero(arr < 1)
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"samples[{i}] = {int(arr[i])} is not allowed; samples must be >= 1")
        values, counts = np.unique(arr, return_counts=True)
        object.__setattr__(self, "samples", tuple(int(x) for x in arr))
        object.__setattr__(self, "_values", values)
        object.__setattr__(self, "_probs", counts / counts.sum())

    def _table(self):
        return self._values, self._probs

    def __repr__(self):
        return f"Empirical(n={len(self.samples)}, mean={self.mean():.4g})"


@dataclass(frozen=True)
class LogNormal(_TableLaw):
    """Discretised lognormal: o = ceil(Y), Y ~ LogNormal(mu, sigma), truncated at ``max``.

    ``truncation="condition"``: P(o = k) proportional to F(k) - F(k - 1) on 1..max
    (F the lognormal CDF); ``"clip"``: values above ``max`` are set to ``max``.
    """

    mu: float
    sigma: float
    max: int
    truncation: str = "condition"

    def __post_init__(self):
        if not math.isfinite(self.mu):
            raise ValueError(f"mu must be finite, got {self.mu!r}")
        if not (math.isfinite(self.sigma) and self.sigma > 0):
            raise ValueError(f"sigma must be > 0, got {self.sigma!r}")
        object.__setattr__(self, "max", _check_int("max", self.max, 1))
        if self.truncation not in ("condition", "clip"):
            raise ValueError(f"truncation must be 'condition' or 'clip', got {self.truncation!r}")
        from scipy.stats import lognorm

        k = np.arange(0, self.max + 1, dtype=float)
        cdf = lognorm.cdf(k, s=self.sigma, scale=math.exp(self.mu))
        probs = np.diff(cdf)
        if self.truncation == "clip":
            probs[0] += cdf[0]  # ceil(Y) = 0 has probability 0; keep the mass anyway
            probs[-1] += 1.0 - cdf[-1]
        if probs.sum() <= 0:
            raise ValueError(f"LogNormal(mu={self.mu}, sigma={self.sigma}) puts no mass on 1..{self.max}")
        object.__setattr__(self, "_values", np.arange(1, self.max + 1))
        object.__setattr__(self, "_probs", probs / probs.sum())

    @classmethod
    def fit(cls, mean: float, median: float, max: int) -> "LogNormal":
        """The continuous lognormal with this median and mean (before discretising)."""
        if not (mean > median > 0):
            raise ValueError(f"need mean > median > 0, got mean={mean}, median={median}")
        mu = math.log(median)
        sigma = math.sqrt(2.0 * (math.log(mean) - mu))
        return cls(mu=mu, sigma=sigma, max=max)

    @classmethod
    def matching(cls, mean: float, median: int, max: int, truncation: str = "clip") -> "LogNormal":
        """The discretised, truncated law whose mean is ``mean`` and median about ``median``.

        mu = log(median - 1/2) puts the median of ceil(Y) at ``median``; sigma is then
        solved so that the mean after discretising and truncating is exactly ``mean``.
        """
        from scipy.optimize import brentq

        if not (1 <= median < mean < max):
            raise ValueError(f"need 1 <= median < mean < max, got median={median}, "
                             f"mean={mean}, max={max}")
        mu = math.log(median - 0.5) if median > 1 else math.log(0.75)

        def gap(sigma):
            return cls(mu=mu, sigma=sigma, max=max, truncation=truncation).mean() - mean

        hi = 0.5
        while gap(hi) < 0:
            hi *= 1.5
            if hi > 20:
                raise ValueError(f"no lognormal with median {median} and max {max} reaches "
                                 f"mean {mean}")
        return cls(mu=mu, sigma=brentq(gap, 1e-3, hi, xtol=1e-12), max=max,
                   truncation=truncation)

    def _table(self):
        return self._values, self._probs


def parse_law(text: str) -> LengthLaw:
    """A length law from ``det:V``, ``geom:P``, ``geom-mean:MEAN``, ``uniform:LO:HI`` or
    ``lognormal:MEAN:MEDIAN:MAX`` (the command-line and sweep-config syntax)."""
    parts = str(text).split(":")
    kind, args = parts[0], parts[1:]
    try:
        if kind == "det" and len(args) == 1:
            return Deterministic(int(args[0]))
        if kind == "geom" and len(args) == 1:
            return Geometric(float(args[0]))
        if kind == "geom-mean" and len(args) == 1:
            return Geometric(1.0 / float(args[0]))
        if kind == "uniform" and len(args) == 2:
            return UniformInt(int(args[0]), int(args[1]))
        if kind == "lognormal" and len(args) == 3:
            return LogNormal.matching(float(args[0]), int(args[1]), int(args[2]))
    except (ValueError, ZeroDivisionError) as err:
        raise ValueError(f"{text!r}: {err}") from None
    raise ValueError(f"{text!r} is not a length law; use det:V, geom:P, geom-mean:MEAN, "
                     "uniform:LO:HI or lognormal:MEAN:MEDIAN:MAX")
