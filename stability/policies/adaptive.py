"""Adaptive flow control and prediction-aware flow control (docs/adaptive.md).

The paper's future work: a policy that needs no budget from the user and moves between
greedy admission and a budgeted rate from what the cache is doing (``AdaptiveFlow``), and
flow control whose budget counts predicted memory-time instead of requests
(``PredictedFlow``); and the adaptive policy's budgeted mode on its own, at a fixed budget
(``CheckedFlow``).  All keep state from slot to slot in a
:data:`stability.engine.control.CONTROL` record.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from stability import validation
from stability.engine import admission, control
from stability.policies.base import Choice, Ints, Mapped, OneOf, Policy, param
from stability.predictions import Predictions


def _optional_predictions(value):
    if value is None or (isinstance(value, str) and value.lower() in ("none", "")):
        return None
    return Predictions.parse(value)


def _predictions_text(value):
    return None if value is None else value.text()


_POINT = OneOf((Choice((Predictions(),)), Mapped(Choice((0.1, 0.5)), Predictions.noisy),
                Mapped(Choice((0.3,)), Predictions.interval)))


def _positive(name, value, low=0.0, strict=False):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or value < low or (strict and value == low):
        raise ValueError(f"{name} must be a finite number {'>' if strict else '>='} {low}, "
                         f"got {value!r}")
    return float(value)


@dataclass(frozen=True)
class AdaptiveFlow(Policy, kind="adaptive"):
    """Adaptive flow control: Greedy's admission with a budget switched on when the cache
    thrashes (docs/adaptive.md).

    Every slot: admit the head of the queue while R + l + 1 <= M (Greedy, FCFS, no
    skipping); in *budgeted mode* also while a credit refilled by b per slot is positive
    (each admission costs one request, or with ``predictions`` its predicted memory-time).
    Every ``period`` slots a controller reads the wasted tokens (restart evictions), the
    decoded tokens, the arrivals and the completed lengths:

    - greedy -> budgeted when the recent waste is more than ``trigger`` standard deviations
      of the memory random completions free per slot (z = f sqrt(n E[o] / E[(l+o)^2]), f
      the wasted share of decoded tokens, n the decoding requests), with b = ``rate_start``
      x the arrival rate;
    - in budgeted mode b shrinks by 1/1024 per period while the long-run waste (an average
      over 64 periods) is above ``waste_target``, else grows by 1/2048 if the budget held
      back a request that fitted; never below ``rate_floor`` x the arrival rate; at
      ``rate_ceiling`` x the arrival rate it hands back to greedy mode;
    - after ``retry`` periods in budgeted mode greedy is tried again for 16 periods: if it
      thrashes, the budget comes back at its last value and the next trial waits twice as
      long (hysteresis against oscillation); if not, greedy stays.

    No budget is needed from the user: the defaults are the rule (reasons in
    docs/adaptive.md).
    """

    period: int = param(64, help="adaptive: slots between controller updates", parse=int,
                        examples=Ints(1, 6))
    trigger: float = param(0.2, help="adaptive: thrash trigger, in standard deviations of "
                                     "the memory completions free per slot",
                           examples=Choice((0.0, 0.05, 0.2)))
    waste_target: float = param(0.0015, help="adaptive: wasted share of decoded tokens the "
                                            "budget aims at", examples=Choice((0.0, 0.002, 0.05)))
    rate_floor: float = param(1.0625, help="adaptive: budget >= this x the arrival rate",
                              examples=Choice((1.0, 1.0625, 1.5)))
    rate_ceiling: float = param(3.0, help="adaptive: budget >= this x the arrival rate "
                                          "hands back to greedy", examples=Choice((1.6, 3.0)))
    rate_start: float = param(1.2, help="adaptive: budget on entering budgeted mode, x the "
                                        "arrival rate", examples=Choice((1.5, 1.1)))
    retry: int = param(256, help="adaptive: periods in budgeted mode before greedy is tried "
                                 "again (doubled each time greedy thrashes again)", parse=int,
                       examples=Choice((1, 3, 256)))
    predictions: Predictions | None = param(
        None, help="length predictions: exact, noisy:SIGMA (lognormal factor) or "
                   "interval:WIDTH", parse=Predictions.parse, plain=_predictions_text,
        coerce=_optional_predictions, examples=OneOf((Choice((None,)), _POINT)))

    def __post_init__(self):
        object.__setattr__(self, "period", validation.integer("period", self.period, 1))
        object.__setattr__(self, "retry", validation.integer("retry", self.retry, 1))
        for name in ("trigger", "waste_target"):
            object.__setattr__(self, name, _positive(name, getattr(self, name)))
        floor = _positive("rate_floor", self.rate_floor, 1.0)
        ceiling = _positive("rate_ceiling", self.rate_ceiling, 1.0)
        start = _positive("rate_start", self.rate_start, 0.0)
        if not floor <= start < ceiling:
            raise ValueError(f"need rate_floor <= rate_start < rate_ceiling, got "
                             f"{floor} <= {start} < {ceiling}")
        object.__setattr__(self, "rate_floor", floor)
        object.__setattr__(self, "rate_ceiling", ceiling)
        object.__setattr__(self, "rate_start", start)
        if self.predictions is not None and not isinstance(self.predictions, Predictions):
            raise ValueError(f"predictions must be a stability.Predictions or None, got "
                             f"{self.predictions!r}")

    def encode(self, memory, num_classes):
        params = admission.new_params(code=admission.ADAPTIVE, cap=memory)
        mt = self.predictions is not None
        ctl = control.new_control(
            period=self.period, trigger=self.trigger, target=self.waste_target,
            floor=self.rate_floor, ceiling=self.rate_ceiling, start=self.rate_start,
            retry=self.retry,
            memory_time=mt, unit_scale=1.0 if mt else float(control.SCALE))
        return admission.Encoded(params, np.zeros(0, np.int64), False, memory,
                                 predictions=self.predictions, control=ctl)


@dataclass(frozen=True)
class CheckedFlow(Policy, kind="flow-checked"):
    """Alg. 2's activation budget with Greedy's memory test: ``AdaptiveFlow``'s budgeted
    mode held at a fixed b (docs/adaptive.md section 1, "Budgeted mode").

    Each slot the credit becomes min(credit + b, b) (b counted in 2^20 units per request,
    so a fractional b is exact; a debt carries over, unused credit does not pile up) and
    the head of the queue is admitted while R + l + 1 <= M and the credit is positive.
    Unlike Alg. 2 it never admits a request that does not fit, so it never bounces; over
    T saturated slots it admits T b requests up to one.  ``PacedGreedy(k)`` is its integer
    case.  The controller never runs (its period is :data:`~stability.engine.control.NEVER`).
    """

    budget: float = param(help="flow-checked: b, admissions per slot (Alg. 2's rate with "
                               "Greedy's memory test)",
                          examples=OneOf((Ints(0, 6), Choice((0.5, 1.5, 2.25)))))

    def __post_init__(self):
        b = validation.number("budget", self.budget, 0.0)
        object.__setattr__(self, "budget", int(b) if float(b).is_integer() else b)

    @property
    def quantum(self) -> int:
        """Credit added per slot: floor(b x 2^20)."""
        return int(self.budget * control.SCALE)

    def encode(self, memory, num_classes):
        params = admission.new_params(code=admission.ADAPTIVE, cap=memory)
        ctl = control.new_control(period=control.NEVER, budgeted=True, rate=self.budget,
                                  quantum=self.quantum, unit_scale=float(control.SCALE))
        return admission.Encoded(params, np.zeros(0, np.int64), False, memory, control=ctl)

    def check_progress(self, requests, memory, predicted=None, block=1):
        if len(requests) and self.quantum == 0:
            raise ValueError("horizon=None needs a policy that admits: CheckedFlow budget "
                             f"{self.budget} < 2^-20 never does; give a horizon")


@dataclass(frozen=True)
class PredictedFlow(Policy, kind="flow-predicted"):
    """Prediction-aware flow control: Alg. 2 with the budget counted in predicted
    memory-time (docs/adaptive.md section 2).

    Each slot the credit becomes min(credit + W, W) (a debt carries over, unused credit
    does not pile up) and the waiting requests are taken from the head while the credit is
    positive, each charged w_hat = l o_hat + o_hat (o_hat + 1) / 2 with o_hat its point
    prediction; like Alg. 2 they join with no memory check and the overflow check bounces
    what does not fit.  Over T saturated slots the admitted predicted memory-time is
    T W up to one request, so W plays the role of E[B] E[w]: the budget window becomes
    lambda E[w] < W < M.
    """

    budget: float = param(help="flow-predicted: W, predicted memory-time admitted per slot "
                               "(tokens x slots per slot)",
                          examples=OneOf((Ints(0, 60), Choice((500.0,)))))
    predictions: Predictions = param(
        Predictions(), help="length predictions: exact, noisy:SIGMA (lognormal factor) or "
                            "interval:WIDTH", parse=Predictions.parse, plain=Predictions.text,
        coerce=Predictions.parse, examples=_POINT)

    def __post_init__(self):
        b = validation.number("budget", self.budget, 0.0)
        object.__setattr__(self, "budget", int(b) if float(b).is_integer() else b)
        if not isinstance(self.predictions, Predictions):
            raise ValueError(f"predictions must be a stability.Predictions, got "
                             f"{self.predictions!r}")

    @property
    def quantum(self) -> int:
        """Credit added per slot: floor(W) tokens x slots."""
        return int(math.floor(self.budget))

    def encode(self, memory, num_classes):
        params = admission.new_params(code=admission.PREDICTED_FLOW, budget=self.quantum)
        ctl = control.new_control(memory_time=True, unit_scale=1.0, quantum=self.quantum)
        return admission.Encoded(params, np.zeros(0, np.int64), False, memory,
                                 predictions=self.predictions, control=ctl)

    def check_progress(self, requests, memory, predicted=None, block=1):
        if len(requests) and self.quantum == 0:
            raise ValueError("horizon=None needs a policy that admits: PredictedFlow "
                             "budget < 1 never does; give a horizon")
