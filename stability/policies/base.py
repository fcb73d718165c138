"""Policies as small frozen dataclasses that register themselves by kind.

A policy class declares its ``kind`` (``class Greedy(Policy, kind="greedy")``) and its
parameters as dataclass fields made with :func:`param`, which carry what the rest of the
package derives from them: the help text and command-line parser (``stability simulate
--watermark 0.1``), the conversion to and from plain spec values (sweep configs, the
results store, JSON), and a small example domain the property tests draw from.  The class
answers for itself: :meth:`Policy.encode` (what the engines run), :meth:`check_progress`
(whether a run without a horizon can end) and :attr:`world_defaults`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, ClassVar

__all__ = ["Policy", "param", "registry", "policy_class", "from_spec", "Ints", "Floats",
           "Choice", "OneOf", "Mapped", "PerClass"]

_REGISTRY: dict[str, type] = {}


# ------------------------------------------------------------------ example domains
@dataclasses.dataclass(frozen=True)
class Ints:
    """Integers in [low, high] (property tests draw from it)."""

    low: int
    high: int


@dataclasses.dataclass(frozen=True)
class Floats:
    """Floats in [low, high]."""

    low: float
    high: float


@dataclasses.dataclass(frozen=True)
class Choice:
    """One of the given values."""

    values: tuple


@dataclasses.dataclass(frozen=True)
class OneOf:
    """A value from one of the given domains."""

    domains: tuple


@dataclasses.dataclass(frozen=True)
class Mapped:
    """``function(value)`` for a value from ``domain``."""

    domain: Any
    function: Callable


@dataclasses.dataclass(frozen=True)
class PerClass:
    """A tuple with one value from ``domain`` per request class."""

    domain: Any


# ------------------------------------------------------------------------ parameters
def _same(value):
    return value


def param(default: Any = dataclasses.MISSING, *, help: str, parse: Callable = float,
          plain: Callable = _same, coerce: Callable = _same, examples: Any = None,
          flag: str | None = None):
    """A policy parameter.

    help : what it means (shown by ``stability simulate --help``).
    parse : command-line text -> value (e.g. ``float``, ``Predictions.parse``).
    plain : value -> plain JSON/TOML value (specs, the results store).
    coerce : plain value -> value (read back from a spec).
    examples : the domain property tests draw from (:class:`Ints`, :class:`Floats`, ...).
    flag : the command-line flag, default ``--`` + the name with dashes.
    """
    metadata = dict(help=help, parse=parse, plain=plain, coerce=coerce, examples=examples,
                    flag=flag)
    return dataclasses.field(default=default, metadata=metadata)


class Policy:
    """Base class of the admission rules; eviction is LIFO.

    Subclasses are frozen dataclasses registered under ``kind``.
    """

    kind: ClassVar[str] = ""
    world_defaults: ClassVar[dict] = {}
    """Defaults of ``simulate``'s world arguments (eviction, requeue, block_size) when the
    caller gives none; empty: the model's restart / arrival / token-by-token."""

    def __init_subclass__(cls, kind: str | None = None, **kwargs):
        super().__init_subclass__(**kwargs)
        if kind is None:
            return
        if kind in _REGISTRY:
            raise TypeError(f"policy kind {kind!r} is registered twice "
                            f"({_REGISTRY[kind].__name__} and {cls.__name__})")
        cls.kind = kind
        _REGISTRY[kind] = cls

    # -- what every policy answers ------------------------------------------------------
    def encode(self, memory: int, num_classes: int):
        """The policy for the engines (``stability.engine.admission.Encoded``)."""
        raise NotImplementedError

    def check_progress(self, requests, memory: int, predicted=None, block: int = 1) -> None:
        """Raise ValueError if a run with no horizon might never end (default: it ends).

        ``block``: KV is allocated in blocks of that many tokens (docs/model.md 2.3)."""

    def supervisor(self, requests, memory: int, world, seed: int):
        """What changes the policy's budget between slots of a batch run (``TwinFlow``'s
        twin), or None: the engines pause at its ``next_pause`` slots and apply its
        ``decide`` (docs/adaptive.md 5).  ``world``: the run's engine ``World``."""
        return None

    @property
    def uses_predictions(self) -> bool:
        return getattr(self, "predictions", None) is not None

    def describe(self) -> str:
        return repr(self)

    # -- derived from the fields ----------------------------------------------------------
    @classmethod
    def parameters(cls) -> tuple:
        """The parameter fields, in declaration order."""
        return tuple(f for f in dataclasses.fields(cls) if "help" in f.metadata)

    def to_spec(self) -> dict:
        """``{"kind": ..., parameter: plain value, ...}``: the canonical spec."""
        spec = {"kind": self.kind}
        for f in self.parameters():
            spec[f.name] = f.metadata["plain"](getattr(self, f.name))
        return spec

    @classmethod
    def from_values(cls, values: dict, where: str = "policy") -> "Policy":
        """Build from plain values (a spec table without ``kind``); errors name the field."""
        names = {f.name: f for f in cls.parameters()}
        for key in values:
            if key not in names:
                allowed = ", ".join(names) or "no parameters"
                raise ValueError(f"{where}.{key}: a {cls.kind} policy takes {allowed}")
        kwargs = {}
        for key, value in values.items():
            try:
                kwargs[key] = names[key].metadata["coerce"](value)
            except (TypeError, ValueError) as err:
                raise ValueError(f"{where}.{key}: {err}") from None
        missing = [f.name for f in cls.parameters()
                   if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
                   and f.name not in kwargs]
        if missing:
            raise ValueError(f"{where}.{missing[0]}: missing (a {cls.kind} policy needs it)")
        try:
            return cls(**kwargs)
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None


def registry() -> dict:
    """kind -> policy class, for every registered policy."""
    return dict(_REGISTRY)


def policy_class(kind: str) -> type:
    if kind not in _REGISTRY:
        raise ValueError(f"kind must be one of {', '.join(_REGISTRY)}, got {kind!r}")
    return _REGISTRY[kind]


def from_spec(table: dict, where: str = "policy") -> Policy:
    """A policy from ``{"kind": ..., parameter: value, ...}`` (sweep configs, stored specs)."""
    if not isinstance(table, dict):
        raise ValueError(f"{where}: must be a table with a kind, got {table!r}")
    if "kind" not in table:
        raise ValueError(f"{where}.kind: missing")
    try:
        cls = policy_class(table["kind"])
    except ValueError as err:
        raise ValueError(f"{where}.{err}") from None
    return cls.from_values({k: v for k, v in table.items() if k != "kind"}, where)
