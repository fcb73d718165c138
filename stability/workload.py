"""Workloads: request arrays, length laws, multi-class Poisson workloads.

DESIGN 1: request i has an arrival slot a_i >= 0, a prompt length l_i >= 1, a decode
length o_i >= 1 and a class k_i.  A :class:`Workload` is a list of classes, each with a
Poisson arrival rate (lambda_k, requests per slot) and two length laws.

Random draws are made by the jitted generator in :mod:`stability._generate` so that
``Workload.generate`` and the streaming engine see exactly the same requests for the
same seed (one random stream for arrivals, one for lengths, DESIGN 4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "Requests",
    "LengthLaw",
    "Deterministic",
    "Geometric",
    "UniformInt",
    "Empirical",
    "LogNormal",
    "RequestClass",
    "Workload",
]

# Codes shared with the jitted sampler (stability._generate.draw_length).
LAW_DETERMINISTIC = 0
LAW_GEOMETRIC = 1
LAW_UNIFORM = 2
LAW_TABLE = 3


def _as_int_array(name: str, values) -> np.ndarray:
    """A one-dimensional int64 copy of ``values``; floats must be whole numbers."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a one-dimensional array, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.issubdtype(arr.dtype, np.floating):
            raise ValueError(f"{name} must hold integers, got dtype {arr.dtype}")
        bad = np.flatnonzero(~np.isfinite(arr) | (arr != np.round(arr)))
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"{name}[{i}] = {float(arr[i])!r} is not allowed; {name} must hold integers")
    return arr.astype(np.int64)


class Requests:
    """A batch of requests, aligned by index (DESIGN 1).

    Parameters
    ----------
    arrival : int array, a_i, arrival slot (>= 0).
    prompt : int array, l_i, prompt tokens (>= 1).
    decode : int array, o_i, decode tokens (>= 1).
    class_id : int array or None, k_i (>= 0); all zero when omitted.

    The arrays are copied to int64 and exposed read-only.
    """

    __slots__ = ("_arrays",)

    def __init__(self, arrival, prompt, decode, class_id=None):
        arrays = {
            "arrival": _as_int_array("arrival", arrival),
            "prompt": _as_int_array("prompt", prompt),
            "decode": _as_int_array("decode", decode),
        }
        n = arrays["arrival"].size
        arrays["class_id"] = (np.zeros(n, dtype=np.int64) if class_id is None
                              else _as_int_array("class_id", class_id))
        for name, arr in arrays.items():
            if arr.size != n:
                raise ValueError(
                    f"{name} has length {arr.size}, but arrival has length {n}; "
                    "all request arrays must have equal lengths"
                )
        for name, low in (("arrival", 0), ("prompt", 1), ("decode", 1), ("class_id", 0)):
            arr = arrays[name]
            bad = np.flatnonzero(arr < low)
            if bad.size:
                i = int(bad[0])
                raise ValueError(
                    f"{name}[{i}] = {int(arr[i])} is not allowed; {name} must be >= {low}"
                )
        self._arrays = arrays

    @classmethod
    def _trusted(cls, arrival, prompt, decode, class_id) -> "Requests":
        """Adopt int64 arrays known to be valid (fresh generator output) without copying."""
        obj = object.__new__(cls)
        obj._arrays = {"arrival": arrival, "prompt": prompt, "decode": decode,
                       "class_id": class_id}
        return obj

    def _view(self, name):
        view = self._arrays[name].view()
        view.setflags(write=False)
        return view

    arrival = property(lambda self: self._view("arrival"), doc="a_i, arrival slots")
    prompt = property(lambda self: self._view("prompt"), doc="l_i, prompt tokens")
    decode = property(lambda self: self._view("decode"), doc="o_i, decode tokens")
    class_id = property(lambda self: self._view("class_id"), doc="k_i, classes")

    def __len__(self) -> int:
        return int(self._arrays["arrival"].size)

    def __repr__(self) -> str:
        return f"Requests(n={len(self)}, classes={self.num_classes})"

    @property
    def num_classes(self) -> int:
        return int(self._arrays["class_id"].max()) + 1 if len(self) else 1

    def check_fits(self, memory: int) -> None:
        """Raise if some request can never complete: l + o > M (DESIGN 1)."""
        prompt, decode = self._arrays["prompt"], self._arrays["decode"]
        bad = np.flatnonzero(prompt + decode > memory)
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                f"request {i} has prompt l={int(prompt[i])} and decode o={int(decode[i])}, "
                f"so l + o = {int(prompt[i] + decode[i])} exceeds the KV capacity M={memory}; "
                "it could never complete"
            )

    def memory_time(self) -> np.ndarray:
        """w(l, o) = l*o + o(o+1)/2 per request (KV workload, DESIGN 1)."""
        prompt, decode = self._arrays["prompt"], self._arrays["decode"]
        return prompt * decode + decode * (decode + 1) // 2


# ----------------------------------------------------------------------------------------
# Length laws


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
        """The law as a flat float vector for the jitted sampler (``_generate.draw_length``).

        Layouts: deterministic [0, v]; geometric [1, log(1-p), max or -1, P(o <= max)];
        uniform [2, low, count]; table [3, n, thresholds(n), values(n), alias values(n)]
        (Vose's alias method, so a table law is sampled in O(1)).
        """
        raise NotImplementedError


def _check_int(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


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
    """P(o = k) = (1 - p)^(k-1) p for k = 1, 2, ... (mean 1/p), DESIGN 3.

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


# ----------------------------------------------------------------------------------------
# Classes and workloads


@dataclass(frozen=True)
class RequestClass:
    """One request class: Poisson arrivals at ``rate`` (lambda_k per slot) and length laws."""

    rate: float
    prompt: LengthLaw
    decode: LengthLaw
    name: str = ""

    def __post_init__(self):
        if isinstance(self.prompt, int):
            object.__setattr__(self, "prompt", Deterministic(self.prompt))
        if isinstance(self.decode, int):
            object.__setattr__(self, "decode", Deterministic(self.decode))
        if not isinstance(self.rate, (int, float)) or not math.isfinite(self.rate) or self.rate < 0:
            raise ValueError(f"rate must be a finite number >= 0, got {self.rate!r}")
        object.__setattr__(self, "rate", float(self.rate))
        for name in ("prompt", "decode"):
            if not isinstance(getattr(self, name), LengthLaw):
                raise ValueError(f"{name} must be a LengthLaw or an int, got {getattr(self, name)!r}")

    def mean_memory_time(self) -> float:
        """E[w] = E[l] E[o] + (E[o^2] + E[o]) / 2 (l and o independent), DESIGN 1."""
        o = self.decode
        return self.prompt.mean() * o.mean() + (o.second_moment() + o.mean()) / 2.0


@dataclass(frozen=True)
class Workload:
    """Independent Poisson streams, one per class (lambda_k requests per slot).

    Equivalently one Poisson(sum_k lambda_k) stream whose requests pick class k with
    probability lambda_k / sum lambda; the generator draws it that way, so arrivals of
    different classes are interleaved at random within a slot.
    """

    classes: tuple

    def __post_init__(self):
        classes = tuple(self.classes)
        if not classes:
            raise ValueError("classes must hold at least one RequestClass")
        for i, c in enumerate(classes):
            if not isinstance(c, RequestClass):
                raise ValueError(f"classes[{i}] must be a RequestClass, got {c!r}")
        object.__setattr__(self, "classes", classes)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def rates(self) -> np.ndarray:
        return np.array([c.rate for c in self.classes])

    @property
    def total_rate(self) -> float:
        return float(sum(c.rate for c in self.classes))

    def max_request_tokens(self) -> float:
        """Largest possible l + o over classes (inf if some law is unbounded)."""
        return max(c.prompt.max_value + c.decode.max_value for c in self.classes)

    def mean_kv_load(self) -> float:
        """sum_k lambda_k E[w_k]: mean KV demand per slot (Prop. 3.2's left side)."""
        return float(sum(c.rate * c.mean_memory_time() for c in self.classes))

    def scaled(self, factor: float) -> "Workload":
        """The same classes with every rate multiplied by ``factor``."""
        if not (math.isfinite(factor) and factor >= 0):
            raise ValueError(f"factor must be a finite number >= 0, got {factor!r}")
        return Workload(
            tuple(RequestClass(c.rate * factor, c.prompt, c.decode, c.name) for c in self.classes)
        )

    def with_total_rate(self, rate: float) -> "Workload":
        """Rescale the class rates (keeping their proportions) so they sum to ``rate``."""
        total = self.total_rate
        if total <= 0:
            raise ValueError("cannot rescale a workload whose total rate is 0")
        return self.scaled(rate / total)

    def generate(self, slots: int, seed: int = 0) -> Requests:
        """Draw the arrivals in slots 0 .. slots-1 (same draws as the streaming engine)."""
        from stability import _generate

        slots = _check_int("slots", slots, 0)
        return _generate.generate_requests(self, slots, seed)

    # -- named workloads -------------------------------------------------------------
    @classmethod
    def paper_4_1(cls, rate: float = 5.0) -> "Workload":
        """Section 4.1: classes (l, o) = (10, 20), (10, 40), (10, 60), each Poisson ``rate``."""
        return cls(
            tuple(
                RequestClass(rate, Deterministic(10), Deterministic(o), name=f"o={o}")
                for o in (20, 40, 60)
            )
        )

    @classmethod
    def single(cls, rate: float, prompt, decode) -> "Workload":
        """One class with the given rate and length laws (ints mean deterministic)."""
        return cls((RequestClass(rate, prompt, decode),))
