"""Checks of every claim of DESIGN section 3: sympy proofs of the algebra, numeric
cross-checks where a proof is out of sympy's reach.

Run ``python -m proofs_check`` from the repository root: it runs every registered check,
writes ``proofs_check/REPORT.md`` (claim, statement, method, result) and exits non-zero if
any check fails.  Each check names the kind of statement it verifies:

* ``paper``: stated by the paper (as reconstructed in DESIGN from its public summary);
* ``reconstruction``: our reconstruction of the paper's Alg. 2 overflow bound (DESIGN 3);
* ``beyond``: beyond the paper (exact FFT tail, Lindley mean by FFT, tuner);
* ``identity``: model algebra used everywhere (DESIGN 1).
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from typing import Callable

__all__ = ["Check", "Outcome", "CHECKS", "check", "run_all"]

KINDS = {
    "identity": "model identity (DESIGN 1)",
    "paper": "paper's claim (as stated in DESIGN 3)",
    "reconstruction": "reconstruction of the paper's Alg. 2 bound (DESIGN 3)",
    "beyond": "beyond the paper (ours)",
}


@dataclass(frozen=True)
class Outcome:
    """What a check found: pass/fail, how it was shown, the numbers behind it."""

    passed: bool
    method: str
    details: str


@dataclass(frozen=True)
class Check:
    name: str
    kind: str
    statement: str
    run: Callable[[], Outcome]


CHECKS: list[Check] = []


def check(name: str, kind: str, statement: str):
    """Register a check: a function returning an :class:`Outcome`."""
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r} is not allowed; use one of {', '.join(KINDS)}")

    def deco(fn):
        CHECKS.append(Check(name, kind, statement, fn))
        return fn
    return deco


def run_all(only: list[str] | None = None) -> list[tuple[Check, Outcome, float]]:
    """Run the registered checks (all, or those named in ``only``)."""
    from proofs_check import algebra, numeric, region  # noqa: F401  (registers the checks)

    results = []
    for c in CHECKS:
        if only and c.name not in only:
            continue
        t0 = time.perf_counter()
        try:
            out = c.run()
        except Exception:  # a crash is a failure, reported with its traceback
            out = Outcome(False, "crashed", traceback.format_exc(limit=3).replace("\n", " "))
        results.append((c, out, time.perf_counter() - t0))
    return results
