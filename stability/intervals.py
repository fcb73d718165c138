"""Confidence intervals, computed in one place: Student-t intervals of a mean over
independent replications, and exact Poisson upper bounds for event counts.

The results summaries (:mod:`stability.store.summary`) and the reproduction's
verification rows (``experiments.common.Interval``) both use :func:`student_t`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

__all__ = ["TInterval", "student_t", "poisson_upper"]


class TInterval(NamedTuple):
    """A two-sided Student-t interval of a mean.

    Attributes
    ----------
    mean : float
        Mean of the defined values (nan if there are none).
    std : float
        Their sample standard deviation (ddof=1; nan if n < 2).
    n : int
        Number of defined (non-nan) values.
    low, high : float
        mean -+ half_width (nan if n < 2).
    half_width : float
        t_{(1+level)/2, n-1} std / sqrt(n) (nan if n < 2).
    """

    mean: float
    std: float
    n: int
    low: float
    high: float
    half_width: float


def student_t(values, level: float = 0.95) -> TInterval:
    """The two-sided Student-t interval at ``level`` of the mean of ``values`` (nan
    entries are left out).

    A mean smaller than the floating-point resolution of the values (a sum of values of
    either sign that cancels, e.g. 1e-19 from growth rates of +-1e-3) is reported as 0.

    Parameters
    ----------
    values : array_like of float
        One value per independent replication.
    level : float
        Confidence level in (0, 1), e.g. 0.95.

    Returns
    -------
    TInterval
    """
    from scipy.stats import t as student

    if not (isinstance(level, float) and 0.0 < level < 1.0):
        raise ValueError(f"level must be a number in (0, 1), got {level!r}")
    x = np.asarray(values, dtype=float).ravel()
    x = x[~np.isnan(x)]
    n = int(x.size)
    if n == 0:
        return TInterval(math.nan, math.nan, 0, math.nan, math.nan, math.nan)
    mean = float(x.mean())
    scale = float(np.abs(x).max())
    if math.isfinite(scale) and abs(mean) <= 8 * n * np.finfo(float).eps * scale:
        mean = 0.0  # below the resolution of the sum: cancellation noise
    if n == 1:
        return TInterval(mean, math.nan, 1, math.nan, math.nan, math.nan)
    std = float(x.std(ddof=1))
    half = float(student.ppf((1 + level) / 2, n - 1) * std / math.sqrt(n))
    return TInterval(mean, std, n, mean - half, mean + half, half)


def poisson_upper(events: int, exposure: float, level: float = 0.95) -> float:
    """Exact one-sided upper confidence bound at ``level`` for a Poisson rate, after
    ``events`` events in ``exposure`` units (e.g. slots): the Garwood bound
    chi2_{level}(2 (k + 1)) / (2 exposure).

    With no event it is -ln(1 - level) / exposure: 3.0 / exposure at 95% (the rule of
    three) and 4.6 / exposure at 99%.
    """
    from scipy.stats import chi2

    if isinstance(events, bool) or not isinstance(events, (int, np.integer)) or events < 0:
        raise ValueError(f"events must be an integer >= 0, got {events!r}")
    if not (exposure > 0 and math.isfinite(exposure)):
        raise ValueError(f"exposure must be a finite number > 0, got {exposure!r}")
    if not (0.0 < level < 1.0):
        raise ValueError(f"level must be a number in (0, 1), got {level!r}")
    if events == 0:
        return -math.log1p(-level) / exposure
    return float(chi2.ppf(level, 2 * (int(events) + 1)) / (2.0 * exposure))
