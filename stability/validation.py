"""Validation of user input: one place for the rules, one form for the errors.

Every check raises ``ValueError("<name> must be <what is allowed>, got <value>")`` so a
message names the field, the value and what is allowed; callers that know more context
(a config path, a command-line flag) prefix it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["integer", "number", "choice", "fraction", "memory", "seed", "slots", "positive",
           "available_bytes", "allocation", "format_bytes", "MIN_MEMORY", "MAX_SLOTS"]

MIN_MEMORY = 2
"""Smallest KV capacity M: a request holds at least l + 1 >= 2 tokens while it decodes.
The one rule for M everywhere: simulation, theory, the rare-event estimators and the CLI."""

MAX_SLOTS = 10**18
"""Largest number of slots a run may ask for: slot numbers and their sums are int64 in the
kernels, and 1e18 keeps them far from overflow (a run that long would take centuries)."""


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


def slots(value: Any, name: str = "slots", allow_none: bool = False) -> int | None:
    """A number of slots (a horizon): an integer in [0, :data:`MAX_SLOTS`]."""
    return integer(name, value, 0, MAX_SLOTS, allow_none=allow_none)


def positive(name: str, value: Any) -> float:
    """A finite number > 0 (rates of time, seconds per slot, scale factors)."""
    return number(name, value, 0.0, strict_low=True)


# ----------------------------------------------------------------------- memory checks
def available_bytes() -> int | None:
    """Memory this process can allocate now without swapping, in bytes (Linux
    ``MemAvailable``, else the free physical pages); None where the system does not say."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import os

        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):
        return None


def format_bytes(n: float) -> str:
    """``n`` bytes in the largest binary unit that keeps it >= 1 (``1.5 GiB``)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.3g} EiB"  # pragma: no cover


def allocation(what: str, items: float, bytes_per_item: float, item: str,
               advice=None) -> None:
    """Refuse, before allocating, a run whose ``items`` x ``bytes_per_item`` bytes exceed the
    memory available now.

    The error names what would be allocated, how much is available and how many items
    fit, then ``advice``: a text, or a function of the number of items that fit returning
    one (e.g. the longest horizon that fits, or the streaming engine).
    """
    needed = float(items) * float(bytes_per_item)
    available = available_bytes()
    if available is None or needed <= available:
        return
    fit = available / float(bytes_per_item)
    if callable(advice):
        advice = advice(fit)
    raise ValueError(f"{what} needs about {format_bytes(needed)} ({items:.3g} {item}s x "
                     f"{bytes_per_item:g} bytes) but {format_bytes(available)} is available "
                     f"now, enough for about {fit:.3g} {item}s" + (f"; {advice}" if advice else ""))
