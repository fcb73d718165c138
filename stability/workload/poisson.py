"""Workloads of independent Poisson classes (docs/model.md section 1).

A :class:`Workload` is a list of classes, each with a Poisson arrival rate (lambda_k,
requests per slot) and two length laws.  Random draws are made by the jitted generator
(``stability.engine.generate``) so that ``Workload.generate`` and the streaming kernel
see exactly the same requests for the same seed (one random stream for arrivals, one for
lengths).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from stability import validation
from stability.engine.generate import EncodedWorkload, generate_arrays
from stability.workload.laws import Deterministic, LengthLaw, UniformInt
from stability.workload.requests import Requests

__all__ = ["RequestClass", "Workload", "GENERATED_BYTES"]

GENERATED_BYTES = 32
"""Bytes :meth:`Workload.generate` allocates per request (arrival slot, class, prompt and
decode lengths, int64 each)."""


def _fitting(count: int, unit: str) -> str:
    """How much of a horizon fits, for an error message."""
    if count < 1:
        return f"not even one {unit[:-1]} fits at this rate: lower the rate"
    return f"at this rate about {count:.3g} {unit} fit"


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
        """E[w] = E[l] E[o] + (E[o^2] + E[o]) / 2 (l and o independent), docs/model.md 1."""
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

    def encode(self) -> EncodedWorkload:
        """The workload as plain arrays for the jitted samplers (one encoding for the
        generator, the streaming kernel and the rare-event sampler)."""
        pieces, offsets, position = [], [], 0
        for c in self.classes:
            for law in (c.prompt, c.decode):
                vec = law.encode()
                offsets.append(position)
                pieces.append(vec)
                position += vec.size
        rates = self.rates
        total = float(rates.sum())
        cdf = np.cumsum(rates) / total if total > 0 else np.ones(rates.size)
        cdf[-1] = 1.0
        return EncodedWorkload(total, cdf, np.array(offsets, np.int64), np.concatenate(pieces))

    def expected_requests(self, slots: float) -> float:
        """A high estimate of the arrivals in ``slots`` slots (mean + 10 standard
        deviations), the size the generator allocates for."""
        mean = self.total_rate * float(slots)
        return mean + 10.0 * math.sqrt(mean) + 16.0

    def slots_for(self, requests: float) -> int:
        """The most slots whose arrivals (by :meth:`expected_requests`) stay below
        ``requests``."""
        if self.total_rate <= 0:
            return validation.MAX_SLOTS
        room = max(float(requests) - 16.0, 0.0)
        mean = (math.sqrt(25.0 + room) - 5.0) ** 2  # mean + 10 sqrt(mean) = room
        return int(min(mean / self.total_rate, validation.MAX_SLOTS))

    def generate(self, slots: int, seed: int = 0) -> Requests:
        """Draw the arrivals in slots 0 .. slots-1 (same draws as the streaming engine).

        Raises ValueError, before allocating anything, when the arrivals would not fit in
        the memory available (:data:`GENERATED_BYTES` per request).
        """
        slots = validation.slots(slots)
        seed = validation.seed(seed)
        validation.allocation(
            f"drawing the arrivals of {slots} slots at {self.total_rate:g} per slot",
            self.expected_requests(slots), GENERATED_BYTES, "request",
            lambda fit: _fitting(self.slots_for(fit), "slots"))
        return Requests._trusted(*generate_arrays(self.encode(), slots, seed))

    def generate_timed(self, seconds: float, seed: int = 0, resolution: float = 1e-3
                       ) -> Requests:
        """Arrivals in seconds: the class rates are read as requests per second.

        The draws are those of ``generate`` on slots of ``resolution`` seconds (rates
        scaled by it), each arrival placed uniformly at random inside its slot from its
        own stream, the requests in time order; ``arrival`` holds the slot index at that
        resolution.
        """
        seconds = validation.number("seconds", seconds, 0.0)
        resolution = validation.number("resolution", resolution, 0.0, strict_low=True)
        seed = validation.seed(seed)
        validation.allocation(
            f"drawing the arrivals of {seconds:g} seconds at {self.total_rate:g} per second",
            self.expected_requests(seconds), GENERATED_BYTES, "request",
            lambda fit: _fitting(self.slots_for(fit), "seconds"))
        slots = validation.slots(int(math.ceil(seconds / resolution)),
                                 "seconds / resolution")
        requests = self.scaled(resolution).generate(slots, seed)
        offsets = np.random.default_rng(np.random.SeedSequence(seed).spawn(5)[4]).random(
            len(requests))
        times = (requests._arrays["arrival"] + offsets) * resolution
        # in time order: the offsets reorder requests only inside a slot (stable sort)
        order = np.argsort(times, kind="stable")
        order = order[times[order] < seconds]
        a = requests._arrays
        return Requests._trusted(a["arrival"][order], a["prompt"][order], a["decode"][order],
                                 a["class_id"][order], times[order])

    # -- named workloads -------------------------------------------------------------
    @classmethod
    def paper_4_1(cls, rate: float = 5.0, jitter: int = 0, prompt=10) -> "Workload":
        """Section 4.1: classes (l, o) = (10, 20), (10, 40), (10, 60), each Poisson ``rate``.

        ``jitter`` j > 0 spreads each decode length uniformly over o - j .. o + j (the
        lattice made random, same means); ``prompt`` replaces l = 10 (an int or a law).
        """
        jitter = validation.integer("jitter", jitter, 0, 19)
        return cls(tuple(
            RequestClass(rate, prompt,
                         UniformInt(o - jitter, o + jitter) if jitter else Deterministic(o),
                         name=f"o={o}" + (f"+-{jitter}" if jitter else ""))
            for o in (20, 40, 60)))

    @classmethod
    def single(cls, rate: float, prompt, decode) -> "Workload":
        """One class with the given rate and length laws (ints mean deterministic)."""
        return cls((RequestClass(rate, prompt, decode),))
