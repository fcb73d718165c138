"""Checks of every claim of docs/model.md section 3: sympy proofs of the algebra, numeric
cross-checks where a proof is out of sympy's reach.

Run ``python -m proofs_check`` from the repository root: it runs every registered check,
writes ``proofs_check/REPORT.md`` (claim, statement, evidence, method, result) and exits
non-zero if any check fails.  Each check calls the package code it is about (a function
of :mod:`stability.theory` or an expression of :mod:`stability.theory.symbolic`) and can
fail.  Each names the kind of statement it verifies:

* ``paper``: stated by the paper (as known from its public sources, docs/model.md);
* ``reconstruction``: our reconstruction of the paper's Alg. 2 overflow bound (docs/model.md 3.2);
* ``beyond``: beyond the paper (exact FFT tail, Lindley mean by FFT, tuner);
* ``identity``: model algebra used everywhere (docs/model.md 1);

and the kind of evidence it gives (:data:`EVIDENCE`): a *symbolic proof* (sympy derives
the statement for all parameter values) or a *numeric cross-check* (the package's numbers
against an independent computation on stated cases: evidence, not proof).

Each check runs in a child process with a time limit, so a computation that hangs (an
FFT too short to make progress, a livelocked kernel) is reported as a failure.
"""

from __future__ import annotations

import math
import multiprocessing
import time
import traceback
from dataclasses import dataclass
from typing import Callable

__all__ = ["Check", "Outcome", "CHECKS", "EVIDENCE", "DEFAULT_TIMEOUT", "check", "run_all",
           "sig", "below"]

KINDS = {
    "identity": "model identity (docs/model.md 1)",
    "paper": "paper's claim (as stated in docs/model.md 3.2)",
    "reconstruction": "reconstruction of the paper's Alg. 2 bound (docs/model.md 3.2)",
    "beyond": "beyond the paper (ours)",
}

EVIDENCE = {
    "symbolic": "symbolic proof",
    "numeric": "numeric cross-check",
}

DEFAULT_TIMEOUT = 120.0
"""Seconds a check may take (the slowest takes about 20 s on a loaded two-core machine)."""

SIGNIFICANT = 4
"""Significant digits of the numbers a check reports (stable across machines)."""


def sig(x: float, digits: int = SIGNIFICANT) -> str:
    """``x`` to ``digits`` significant digits: the report must not change with the last
    bits of floating-point arithmetic, which differ between machines and libraries."""
    return f"{float(x):.{digits}g}"


def below(x: float) -> str:
    """An error magnitude as the smallest power of ten above it ("< 1e-12"), or "0".

    Round-off errors differ between machines in every digit; their order of magnitude is
    what a reader needs and what stays the same."""
    x = abs(float(x))
    if x == 0:
        return "0"
    if not math.isfinite(x):
        return str(x)
    return f"< 1e{math.floor(math.log10(x)) + 1}"


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
    evidence: str
    statement: str
    run: Callable[[], Outcome]
    timeout: float = DEFAULT_TIMEOUT


CHECKS: list[Check] = []


def check(name: str, kind: str, statement: str, evidence: str,
          timeout: float = DEFAULT_TIMEOUT):
    """Register a check: a function returning an :class:`Outcome`.

    ``evidence`` is "symbolic" (a sympy proof) or "numeric" (a numeric cross-check).
    """
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r} is not allowed; use one of {', '.join(KINDS)}")
    if evidence not in EVIDENCE:
        raise ValueError(f"evidence={evidence!r} is not allowed; use one of {', '.join(EVIDENCE)}")
    if any(c.name == name for c in CHECKS):
        raise ValueError(f"a check named {name!r} is already registered")

    def deco(fn):
        CHECKS.append(Check(name, kind, evidence, statement, fn, timeout))
        return fn
    return deco


def _guarded(c: Check) -> Outcome:
    try:
        return c.run()
    except Exception:  # a crash is a failure, reported with its traceback
        return Outcome(False, "crashed", traceback.format_exc(limit=3).replace("\n", " "))


def _run_limited(c: Check, timeout: float) -> Outcome:
    """Run one check in a forked child; a check still running after ``timeout`` s fails."""
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)

    def child():
        send.send(_guarded(c))
        send.close()

    proc = ctx.Process(target=child, daemon=True)
    proc.start()
    send.close()
    try:
        if receive.poll(timeout):
            try:
                return receive.recv()
            except EOFError:
                proc.join()
                return Outcome(False, "crashed", f"the check's process exited with code "
                                                 f"{proc.exitcode} before reporting")
        return Outcome(False, "timed out", f"no result within the time limit of {timeout:g} s")
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join()
        receive.close()


def run_all(only: list[str] | None = None, timeout: float | None = None,
            isolate: bool = True) -> list[tuple[Check, Outcome, float]]:
    """Run the registered checks (all, or those named in ``only``).

    Each runs in a child process under its time limit (``timeout`` overrides every
    check's own); ``isolate=False`` runs them in this process, without a limit.
    """
    from proofs_check import algebra, neighbours, numeric, region, adaptive  # noqa: F401,E501  (registers, in order)

    results = []
    for c in CHECKS:
        if only and c.name not in only:
            continue
        t0 = time.perf_counter()
        out = _run_limited(c, timeout or c.timeout) if isolate else _guarded(c)
        results.append((c, out, time.perf_counter() - t0))
    return results
