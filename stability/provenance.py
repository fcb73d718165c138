"""What produced a result: the package version and a fingerprint of the engine's source.

The fingerprint is a hash of the modules that determine simulation results, so a change
to the model, a kernel, a policy or a metric changes the keys of stored results (a stale
cached row is never reused), while edits elsewhere (CLI, plots, docs) leave them valid.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

RESULT_SOURCES = ("engine", "policies", "workload", "simulate.py", "result.py", "metrics.py",
                  "clock.py", "budgets.py", "predictions.py", "validation.py")
"""Modules and packages (relative to the ``stability`` package) that determine results."""


_ROOT = Path(__file__).resolve().parent


def _digest(files) -> str:
    """12 hex digits of a SHA-256 over each file's path (relative to the package) and bytes."""
    digest = hashlib.sha256()
    for f in files:
        digest.update(str(f.relative_to(_ROOT)).encode())
        digest.update(f.read_bytes())
    return digest.hexdigest()[:12]


@functools.lru_cache(maxsize=1)
def engine_fingerprint() -> str:
    """12 hex digits of a SHA-256 over the source of :data:`RESULT_SOURCES`."""
    return _digest(f for name in RESULT_SOURCES
                   for f in (sorted((_ROOT / name).rglob("*.py")) if (_ROOT / name).is_dir()
                             else [_ROOT / name]))


def result_version() -> str:
    """``<package version>+<engine fingerprint>``: keys and labels stored results."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        package = version("stability")
    except PackageNotFoundError:  # running from a source tree that is not installed
        package = "0+unknown"
    return f"{package}+{engine_fingerprint()}"


def jit_fingerprint() -> str:
    """12 hex digits of a SHA-256 over every module of the package that uses numba."""
    return _digest(f for f in sorted(_ROOT.rglob("*.py")) if b"numba" in f.read_bytes())


def isolate_numba_cache() -> None:
    """Give numba's on-disk cache one directory per :func:`jit_fingerprint`.

    Numba keys a cached function by its own bytecode and its file's timestamp only, so a
    kernel that inlines a hook from another module (the admission hooks, the steps) would
    load stale machine code after that module changed.  Run before any jitted function of
    the package is defined (``stability/__init__``): any change to jitted source then
    compiles afresh.  A ``NUMBA_CACHE_DIR`` set by the user is kept as the parent.
    """
    import numba

    parent = os.environ.get("NUMBA_CACHE_DIR") or str(_ROOT / "__pycache__")
    numba.config.CACHE_DIR = os.path.join(parent, f"numba-{jit_fingerprint()}")
