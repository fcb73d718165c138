"""Plain JSON values for reports: one conversion used by the command line, the theory
report and the results summaries.

JSON has no nan and no infinity.  Our choice: **both become null**.  A null number in a
report means "no finite value": undefined (a mean over no sample, a rate over no slot) or
infinite (the mean queue of an unstable system, a Chernoff parameter without bound); the
text report beside it tells which, and each field's documentation says when it can be
infinite.  No number is ever written as a string.  (The reproduction's cached results,
which must round-trip infinities, write them as the JSON numbers ``1e999`` and ``-1e999``
instead: see ``experiments.common.dumps``.)
"""

from __future__ import annotations

import math

import numpy as np


def plain(x):
    """``x`` with numpy scalars and arrays and tuples made JSON-safe, and every non-finite
    float (nan, inf, -inf) as None (JSON null)."""
    if isinstance(x, dict):
        return {str(k): plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return plain(x.tolist())
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, (float, np.floating)):
        x = float(x)
        return x if math.isfinite(x) else None
    return x
