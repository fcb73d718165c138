"""Plain JSON values for reports: one conversion used by the CLI, the theory report and
the experiments (strict JSON: nan becomes null, infinities the strings "inf" / "-inf")."""

from __future__ import annotations

import math

import numpy as np


def plain(x):
    """``x`` with numpy scalars and arrays, tuples and non-finite floats made JSON-safe."""
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
        if math.isnan(x):
            return None
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return x
    return x
