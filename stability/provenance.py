"""What produced a result: the package version and a fingerprint of the engine's source.

The fingerprint is a hash of the modules that determine simulation results, so a change
to the model, a kernel or a metric changes the keys of stored results (a stale cached row
is never reused), while edits elsewhere (CLI, plots, docs) leave them valid.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

RESULT_MODULES = ("workload", "_generate", "_rng", "_kernel", "reference", "policies",
                  "predictions", "simulate", "raw", "result", "metrics", "traces")


@functools.lru_cache(maxsize=1)
def engine_fingerprint() -> str:
    """12 hex digits of a SHA-256 over the source of ``RESULT_MODULES``."""
    root = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for name in RESULT_MODULES:
        digest.update(name.encode())
        digest.update((root / f"{name}.py").read_bytes())
    return digest.hexdigest()[:12]


def result_version() -> str:
    """``<package version>+<engine fingerprint>``: keys and labels stored results."""
    from stability import __version__

    return f"{__version__}+{engine_fingerprint()}"
