"""Validation of user input: one place for the rules, one form for the errors.

Every check raises ``ValueError("<name> must be <what is allowed>, got <value>")`` so a
message names the field, the value and what is allowed; callers that know more context
(a config path, a command-line flag) prefix it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["integer", "number", "choice", "fraction", "memory", "seed", "MIN_MEMORY"]

MIN_MEMORY = 2
"""Smallest KV capacity M: a request holds at least l + 1 >= 2 tokens while it decodes."""


def _is_int(value) -> bool:
    return not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, np.integer))


def _range_text(low, high, strict_low=False, strict_high=False) -> str:
    parts = []
    if low is not None:
        parts.append(f"{'>' if strict_low else '>='} {low:g}" if isinstance(low, float)
                     else f"{'>' if strict_low else '>='} {low}")
    if high is not None:
        parts.append(f"{'<' if strict_high else '<='} {high:g}" if isinstance(high, float)
                     else f"{'<' if strict_high else '<='} {high}")
    return " and ".join(parts)


def integer(name: str, value: Any, low: int | None = None, high: int | None = None,
            allow_none: bool = False, whole_floats: bool = False) -> int | None:
    """``value`` as an int within [low, high]; whole floats (3.0) only if ``whole_floats``."""
    if value is None and allow_none:
        return None
    if whole_floats and isinstance(value, (float, np.floating)) and math.isfinite(value) \
            and float(value).is_integer():
        value = int(value)
    ok = _is_int(value) and (low is None or value >= low) and (high is None or value <= high)
    if not ok:
        what = "an integer"
        bounds = _range_text(low, high)
        if bounds:
            what += f" {bounds}"
        if allow_none:
            what += " or None"
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return int(value)


def number(name: str, value: Any, low: float | None = None, high: float | None = None,
           strict_low: bool = False, strict_high: bool = False,
           allow_none: bool = False) -> float | None:
    """``value`` as a finite float within the bounds (strict where asked)."""
    if value is None and allow_none:
        return None
    ok = (not isinstance(value, (bool, np.bool_))
          and isinstance(value, (int, float, np.integer, np.floating))
          and math.isfinite(float(value)))
    if ok:
        v = float(value)
        ok = ((low is None or (v > low if strict_low else v >= low))
              and (high is None or (v < high if strict_high else v <= high)))
    if not ok:
        bounds = _range_text(low, high, strict_low, strict_high)
        what = "a finite number" + (f" {bounds}" if bounds else "")
        if allow_none:
            what += " or None"
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return float(value)


def fraction(name: str, value: Any) -> float:
    """A share in [0, 1) (watermarks, clearing levels)."""
    return number(name, value, 0.0, 1.0, strict_high=True)


def choice(name: str, value: Any, choices) -> Any:
    """One of ``choices``."""
    if value not in tuple(choices):
        raise ValueError(f"{name} must be one of {', '.join(map(str, choices))}, got {value!r}")
    return value


def memory(value: Any, name: str = "memory") -> int:
    """The KV capacity M in tokens (at least :data:`MIN_MEMORY`)."""
    return integer(name, value, MIN_MEMORY)


def seed(value: Any, name: str = "seed") -> int:
    """A root seed for ``numpy.random.SeedSequence`` (an integer >= 0)."""
    return integer(name, value, 0)
