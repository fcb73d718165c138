"""Length-aware policies that use output-length predictions (docs/model.md section 4.4).

``AMax`` reserves each request's predicted upper bound (Chen et al. 2508.14544); ``MCSF``,
``MCBenchmark`` (Jaillet et al. 2502.07115) and ``AMin`` admit while the projected memory
stays within M at every predicted completion.  Predictions come from
:class:`stability.Predictions`, drawn per run and capped at M - l.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from stability.engine import admission
from stability.policies.base import Choice, Floats, Mapped, OneOf, Policy, param
from stability.predictions import Predictions


def _predictions_param(default: Predictions, examples):
    return param(default, help="length predictions: exact, noisy:SIGMA (lognormal factor) or "
                               "interval:WIDTH", parse=Predictions.parse, plain=Predictions.text,
                 coerce=Predictions.parse, examples=examples)


_POINT = OneOf((Choice((Predictions(),)), Mapped(Floats(0.05, 1.0), Predictions.noisy)))
_INTERVAL = Mapped(Floats(0.0, 0.9), Predictions.interval)


def _check_predictions(value) -> Predictions:
    if not isinstance(value, Predictions):
        raise ValueError(f"predictions must be a stability.Predictions, got {value!r}")
    return value


def _never_fits(requests, memory, bound, what):
    bad = np.flatnonzero(requests.prompt + bound > memory)
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"horizon=None but request {i} (l={int(requests.prompt[i])}, "
                         f"{what} {int(bound[i])}) never passes the memory check in "
                         f"M={memory}; give a horizon")


@dataclass(frozen=True)
class AMax(Policy, kind="amax"):
    """A_max with interval predictions: reserve the upper bound, admit FCFS while
    sum over S and the head of (l + upper) <= M.  Never evicts when every interval
    contains the true length."""

    predictions: Predictions = _predictions_param(Predictions.interval(0.5), _INTERVAL)

    def __post_init__(self):
        _check_predictions(self.predictions)

    def encode(self, memory, num_classes):
        params = admission.new_params(code=admission.CONSERVATIVE, use_upper=True)
        return admission.Encoded(params, np.zeros(0, np.int64), False, memory,
                                 predictions=self.predictions)

    def check_progress(self, requests, memory, predicted=None, block=1):
        _never_fits(requests, memory, predicted.upper, "upper bound")


class _MemoryChecked(Policy):
    """Admission with a projected-memory check over future predicted completions.

    Each slot t, the waiting requests are taken in the policy's order and the longest
    prefix is admitted for which the projected memory
        m(tau) = sum over r in S and the admitted with e_r >= tau of (l_r + tau - u_r + 1)
    stays <= M at every predicted completion slot tau = e_r (the maxima of m); when the
    active requests alone are projected to exceed M, nothing is admitted.  A request
    started at u_r with g = t - u_r tokens has estimated length est_r and
    e_r = u_r + est_r - 1; est_r = max(prediction, g + 1) ("point"), or, for A_min
    ("doubling"), the lower bound doubled each time the request outlives it, capped at
    the upper bound.  Overflows (wrong predictions) evict LIFO like every policy here.
    These rules are re-evaluated every slot, so the kernel does not skip slots for them.
    """

    order: ClassVar[int] = admission.ORDER_SHORTEST
    estimate: ClassVar[int] = admission.ESTIMATE_POINT

    def __post_init__(self):
        _check_predictions(self.predictions)

    def encode(self, memory, num_classes):
        params = admission.new_params(code=admission.MEMORY_CHECKED, order=self.order,
                                      estimate=self.estimate)
        return admission.Encoded(params, np.zeros(0, np.int64), False, memory,
                                 predictions=self.predictions)

    def check_progress(self, requests, memory, predicted=None, block=1):
        first = predicted.point if self.estimate == admission.ESTIMATE_POINT else predicted.lower
        _never_fits(requests, memory, first, "estimated length")


@dataclass(frozen=True)
class MCSF(_MemoryChecked, kind="mcsf"):
    """MC-SF (Jaillet et al. 2502.07115): shortest predicted length first, memory-checked."""

    predictions: Predictions = _predictions_param(Predictions(), _POINT)


@dataclass(frozen=True)
class MCBenchmark(_MemoryChecked, kind="mc-benchmark"):
    """MC-Benchmark (Jaillet et al.): the MC-SF feasibility check in FCFS order."""

    predictions: Predictions = _predictions_param(Predictions(), _POINT)
    order = admission.ORDER_FCFS


@dataclass(frozen=True)
class AMin(_MemoryChecked, kind="amin"):
    """A_min (Chen et al. 2508.14544) with interval predictions: start from the lower
    bound, double the estimate whenever a request outlives it (capped at the upper bound),
    admit shortest estimate first under the projected-memory check, evict LIFO.

    The doubling rule and the shortest-first order are our choices where the published
    rule leaves room; ``MCSF`` with exact predictions is the order-by-length alternative.
    """

    predictions: Predictions = _predictions_param(Predictions.interval(0.5), _INTERVAL)
    estimate = admission.ESTIMATE_DOUBLING
