"""Per-run state of the stateful policies and its per-slot update (docs/adaptive.md).

Two policies keep state from slot to slot (``stability.policies.adaptive``):

- ``PREDICTED_FLOW`` (prediction-aware flow control): a credit counted in predicted
  memory-time.  Each slot the credit is refilled by the budget W (unused credit does not
  accumulate beyond one slot's W; a debt carries over) and the waiting requests are taken
  from the head while the credit is positive, each charged its predicted memory-time
  w_hat = l o_hat + o_hat (o_hat + 1) / 2.  Like Alg. 2 they join without a memory check.
- ``ADAPTIVE`` (adaptive flow control): Greedy's admission (FCFS while R + l + 1 <= M) in
  *greedy mode*; in *budgeted mode* also at most a budget b per slot, through the same
  kind of credit (one request = ``SCALE`` credit units, or with predictions its w_hat).
  A controller updated every ``period`` slots moves between the modes and adapts b from
  the signals the scheduler has: wasted tokens (restart evictions), decoded tokens,
  arrivals, completed lengths and whether the budget held a request back.

Everything lives in one :data:`CONTROL` record (configuration set by the policy's
``encode``, state updated by the engines), so the kernel stays free of allocation and
the reference simulator (:mod:`stability.engine.reference_control`) can mirror it line by
line.  Credits are integers, so a quiet stretch of k slots has an exact closed form
(:func:`skip`); the controller's floats are updated only at period ends, which the kernel
always simulates (:func:`next_update`), by the same operations in both engines.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from stability.engine.codes import NO_LIMIT

I64, F64 = np.int64, np.float64

ADAPTIVE = 6  # policy codes (stability.engine.admission imports them)
PREDICTED_FLOW = 7

SCALE = 1 << 20
"""Credit units of one request when the budget counts requests (fractional budgets)."""

# Controller constants of ADAPTIVE (docs/adaptive.md section 1 gives the reason for each).
STEP_DOWN = 1.0 / 1024.0  # b shrinks by this share while the long-run waste is above target
STEP_UP = 1.0 / 2048.0  # b grows by this share when the budget held a request back
LONG = 64.0  # periods of the long-run waste average (the budget's target)
SHORT = 4.0  # periods of the short-run waste average (the thrash trigger)
SMOOTH = 8.0  # periods of the arrival-rate and length-moment averages
TRIAL = 16  # periods of a trial of greedy, in which one period's waste can end it
SPIKE = 4.0  # ... a period wasting more than SPIKE x target
LONGEST_HOLD = 1 << 40  # the doubling wait before another trial stops here
NEVER = 1 << 40
"""``period`` of a policy whose controller never runs (CheckedFlow: the budget is fixed)."""

CONTROL = np.dtype([
    # -- configuration (the policy's encode)
    ("period", I64),  # ADAPTIVE: slots per controller update (C)
    ("trigger", F64),  # ADAPTIVE: thrash trigger z_on (greedy -> budgeted)
    ("target", F64),  # ADAPTIVE: waste target f* (share of decoded tokens)
    ("floor", F64),  # ADAPTIVE: b >= floor x arrival rate
    ("ceiling", F64),  # ADAPTIVE: b >= ceiling x arrival rate -> greedy
    ("start", F64),  # ADAPTIVE: b = start x arrival rate on entering budgeted mode
    ("retry", I64),  # ADAPTIVE: periods in budgeted mode before greedy is tried again
    ("memory_time", np.bool_),  # budgets count predicted memory-time (else requests)
    ("unit_scale", F64),  # credit units per budget unit (SCALE for requests, 1 for tokens)
    ("follow", np.bool_),  # TWIN: b = multiplier x lambda_hat at each period end, no controller
    # -- state
    ("budgeted", np.bool_),  # ADAPTIVE: budgeted mode (else greedy)
    ("rate", F64),  # ADAPTIVE: b, budget units per slot
    ("multiplier", F64),  # follow: b / lambda_hat, set by the supervisor (control.retarget)
    ("held", F64),  # follow: the budget the supervisor chose (b never falls below it)
    ("quantum", I64),  # credit added per slot: int(b x unit_scale); PREDICTED_FLOW: W
    ("credit", I64),  # admission allowed while > 0
    ("started", np.bool_),  # the averages below hold at least one period
    ("hold", I64),  # budgeted: periods left before greedy is tried again
    ("hold_length", I64),  # ... the current length of that wait (retry, doubled per failure)
    ("trial", I64),  # greedy: periods left in a trial of greedy (0: not a trial)
    ("greedy_age", I64),  # greedy: periods since leaving budgeted mode (0: none to remember)
    ("saved_rate", F64),  # b when budgeted mode was left
    ("arrival_rate", F64),  # lambda_hat, budget units per slot
    ("mean_decode", F64),  # E[o] of completed requests
    ("mean_square", F64),  # E[(l + o)^2] of completed requests
    ("waste_long", F64), ("decoded_long", F64),  # wasted / decoded tokens per period (LONG)
    ("waste_short", F64), ("decoded_short", F64),  # ... (SHORT)
    # -- this period's sums
    ("p_arrived", I64),  # credit units of the arrivals
    ("p_decoded", I64), ("p_wasted", I64),
    ("p_capped", I64),  # slots in which the budget held back a request that fitted
    ("p_done", I64), ("p_done_decode", I64), ("p_done_square", I64),
    ("p_budgeted", I64),  # measured budgeted slots (b is added to rate_sum at the update)
    # -- statistics of the run (measured slots t >= warmup)
    ("budgeted_slots", I64),
    ("budgeted_overflows", I64),
    ("rate_sum", F64),  # sum of b over the budgeted measured slots of ended periods
    ("rate_max", F64),  # largest b over the budgeted measured slots of ended periods
    ("switches", I64),  # greedy -> budgeted transitions (whole run)
    ("capped_slots", I64),  # slots in which the budget held back a request that fitted (whole run)
])


def new_control(**values) -> np.ndarray:
    """A one-element :data:`CONTROL` record with the given fields (the rest zero)."""
    rec = np.zeros(1, CONTROL)
    for name, value in values.items():
        rec[0][name] = value
    return rec


def memory_time(prompt, point):
    """Predicted memory-time w_hat = l o_hat + o_hat (o_hat + 1) / 2 (docs/model.md 1)."""
    return prompt * point + point * (point + 1) // 2


@njit(cache=True, nogil=True, inline="always")
def unit(ps, prompt, point):
    """Credit one admission costs: SCALE (a request) or its predicted memory-time."""
    if ps.memory_time:
        return prompt * point + point * (point + 1) // 2
    return SCALE


@njit(cache=True, nogil=True, inline="always")
def uses_credit(code, ps):
    return code == PREDICTED_FLOW or (code == ADAPTIVE and ps.budgeted)


@njit(cache=True, nogil=True, inline="always")
def refill(code, ps):
    """Start of admission (every slot): credit = min(credit + quantum, quantum)."""
    if uses_credit(code, ps):
        ps.credit = min(ps.credit + ps.quantum, ps.quantum)


@njit(cache=True, nogil=True, inline="always")
def allows(code, ps):
    """May one more request be admitted this slot?  (Greedy mode: always.)"""
    return not (code == ADAPTIVE and ps.budgeted) or ps.credit > 0


@njit(cache=True, nogil=True, inline="always")
def charge(code, ps, prompt, point):
    """An admission under ADAPTIVE's budget takes its unit from the credit."""
    if code == ADAPTIVE and ps.budgeted:
        ps.credit -= unit(ps, prompt, point)


@njit(cache=True, nogil=True, inline="always")
def count_candidates(ps, req, qi, qe):
    """PREDICTED_FLOW: the candidates from the head while the credit is positive, each
    charged its w_hat (the ones that will bounce too, as Alg. 2 counts them)."""
    mask = qi.shape[1] - 1
    count = 0
    while count < qe[0].length and ps.credit > 0:
        r = req[qi[0, (qe[0].head + count) & mask]]
        ps.credit -= unit(ps, r.prompt, r.point)
        count += 1
    return count


@njit(cache=True, nogil=True, inline="always")
def next_update(code, ps, t):
    """The next slot >= t the kernel must simulate for the policy: ADAPTIVE's period end."""
    if code != ADAPTIVE:
        return NO_LIMIT
    return ((t + ps.period) // ps.period) * ps.period - 1


@njit(cache=True, nogil=True, inline="always")
def skip(code, ps, t0, t1, n, warmup):
    """Slots t0 .. t1 - 1 in which nothing is admitted, evicted, arrives or completes and
    no period ends: n tokens decoded per slot, the credit refilled t1 - t0 times."""
    k = t1 - t0
    if k > 0 and uses_credit(code, ps) and ps.quantum > 0:
        # min(credit + k quantum, quantum), without forming k quantum when it is huge
        deficit = ps.quantum - ps.credit
        if k >= (deficit + ps.quantum - 1) // ps.quantum:
            ps.credit = ps.quantum
        else:
            ps.credit += k * ps.quantum
    if code == ADAPTIVE:
        ps.p_decoded += k * n
        if ps.budgeted and t1 > warmup:
            m = t1 - max(t0, warmup)
            ps.budgeted_slots += m
            ps.p_budgeted += m


@njit(cache=True, nogil=True, inline="always")
def observe(code, ps, t, warmup, arrived, decoded, wasted, capped, overflowed, done,
            done_decode, done_square):
    """End of slot t: this slot's signals; at a period end, the controller's update."""
    if code != ADAPTIVE:
        return
    ps.p_arrived += arrived
    ps.p_decoded += decoded
    ps.p_wasted += wasted
    ps.p_capped += 1 if capped else 0
    ps.capped_slots += 1 if capped else 0
    ps.p_done += done
    ps.p_done_decode += done_decode
    ps.p_done_square += done_square
    if ps.budgeted and t >= warmup:
        ps.budgeted_slots += 1
        ps.p_budgeted += 1
        ps.budgeted_overflows += 1 if overflowed else 0
    if (t + 1) % ps.period == 0:
        update(ps)


@njit(cache=True, nogil=True)
def update(ps):
    """The controller at a period end (docs/adaptive.md section 1)."""
    c = ps.period
    ps.rate_sum += ps.rate * ps.p_budgeted  # b was constant over the period
    if ps.p_budgeted > 0 and ps.rate > ps.rate_max:
        ps.rate_max = ps.rate
    ps.p_budgeted = 0
    arrivals = ps.p_arrived / ps.unit_scale / c
    if ps.started:
        ps.arrival_rate += (arrivals - ps.arrival_rate) / SMOOTH
    else:
        ps.arrival_rate = arrivals
        ps.started = True
    if ps.p_done > 0:
        o = ps.p_done_decode / ps.p_done
        sq = ps.p_done_square / ps.p_done
        if ps.mean_square > 0.0:
            ps.mean_decode += (o - ps.mean_decode) / SMOOTH
            ps.mean_square += (sq - ps.mean_square) / SMOOTH
        else:
            ps.mean_decode = o
            ps.mean_square = sq
    ps.waste_long += (ps.p_wasted - ps.waste_long) / LONG
    ps.decoded_long += (ps.p_decoded - ps.decoded_long) / LONG
    ps.waste_short += (ps.p_wasted - ps.waste_short) / SHORT
    ps.decoded_short += (ps.p_decoded - ps.decoded_short) / SHORT
    if ps.follow:  # TwinFlow: the budget chosen, raised with the measured arrival rate
        if ps.budgeted:
            ps.rate = max(ps.held, ps.multiplier * ps.arrival_rate)
            ps.quantum = int(ps.rate * ps.unit_scale)
    elif ps.budgeted:
        if ps.waste_long > ps.target * ps.decoded_long:
            ps.rate = ps.rate - ps.rate * STEP_DOWN
        elif ps.p_capped > 0:
            ps.rate = ps.rate + ps.rate * STEP_UP
        low = ps.floor * ps.arrival_rate
        if ps.rate < low:
            ps.rate = low
        ps.quantum = int(ps.rate * ps.unit_scale)
        ps.hold -= 1
        if ps.rate >= ps.ceiling * ps.arrival_rate:
            ps.budgeted = False  # the budget no longer binds: greedy, nothing to remember
            ps.greedy_age = 0
        elif ps.hold <= 0:  # a trial of greedy
            ps.budgeted = False
            ps.trial = TRIAL
            ps.greedy_age = 1
            ps.saved_rate = ps.rate
    elif ((ps.mean_square > 0.0 and ps.decoded_short > 0.0
           and ps.waste_short * ps.waste_short * ps.mean_decode
           > ps.trigger * ps.trigger * ps.decoded_short * c * ps.mean_square)
          or (ps.trial > 0 and ps.p_wasted > SPIKE * ps.target * ps.p_decoded)):
        # thrash: the waste is many standard deviations of the memory that random
        # completions free per slot (z = f n / sigma, sigma^2 = (n / E[o]) E[(l + o)^2]);
        # in a trial of greedy, one period wasting SPIKE x the target is enough
        ps.budgeted = True
        if ps.greedy_age > 0:  # greedy failed before lasting as long as the budget did
            ps.rate = ps.saved_rate
            ps.hold_length = min(2 * ps.hold_length, LONGEST_HOLD)
        else:
            ps.rate = ps.start * ps.arrival_rate
            ps.hold_length = ps.retry
        ps.hold = ps.hold_length
        ps.trial = 0
        ps.greedy_age = 0
        ps.quantum = int(ps.rate * ps.unit_scale)
        ps.credit = 0
        ps.switches += 1
    else:
        if ps.trial > 0:
            ps.trial -= 1
        if ps.greedy_age > 0:  # greedy has lasted as long as the budget did: forget
            ps.greedy_age = ps.greedy_age + 1 if ps.greedy_age < ps.hold_length else 0
    ps.p_arrived = 0
    ps.p_decoded = 0
    ps.p_wasted = 0
    ps.p_capped = 0
    ps.p_done = 0
    ps.p_done_decode = 0
    ps.p_done_square = 0


def retarget(r, budget: float, multiplier: float = 0.0) -> None:
    """Hold ``budget`` from this slot on (inf: greedy mode).  When the record follows the
    arrival rate, each period end then sets b = max(budget, ``multiplier`` x lambda_hat),
    so the budget rises with the load until the next decision.  ``r`` is a
    :data:`CONTROL` record element or a ``ReferenceControl`` (both engines apply the same
    operations).  The mean-budget statistics are settled at the old b first, as a period
    end does."""
    r["rate_sum"] += r["rate"] * r["p_budgeted"]
    if r["p_budgeted"] > 0 and r["rate"] > r["rate_max"]:
        r["rate_max"] = r["rate"]
    r["p_budgeted"] = 0
    if math.isinf(budget):
        r["budgeted"] = False
        return
    if not r["budgeted"]:
        r["switches"] += 1
    r["budgeted"] = True
    r["multiplier"] = float(multiplier)
    r["held"] = float(budget)
    r["rate"] = float(budget)
    r["quantum"] = int(budget * r["unit_scale"])
    r["credit"] = 0


@dataclass(frozen=True)
class ControlStats:
    """What a stateful policy did in a run (read from its :data:`CONTROL` record).

    budgeted_slots : measured slots (t >= warmup) in budgeted mode; budgeted_overflows :
    overflow events among them; mean_rate : mean budget b over them (budget units per slot:
    requests, or predicted memory-time), nan if none; max_rate : the largest b over them;
    switches : greedy -> budgeted transitions over the whole run; budgeted, rate : the mode
    and b at the end; capped_slots : slots of the whole run in which the budget held back a
    request that fitted (0: the run is the same at any larger budget, and at Greedy).
    """

    budgeted_slots: int
    budgeted_overflows: int
    mean_rate: float
    max_rate: float
    switches: int
    budgeted: bool
    rate: float
    capped_slots: int

    @classmethod
    def from_record(cls, rec) -> "ControlStats":
        r = rec[0]
        slots = int(r["budgeted_slots"])
        total = float(r["rate_sum"]) + float(r["rate"]) * int(r["p_budgeted"])
        top = float(r["rate_max"])
        if int(r["p_budgeted"]) > 0:
            top = max(top, float(r["rate"]))
        return cls(slots, int(r["budgeted_overflows"]), total / slots if slots else math.nan,
                   top if slots else math.nan, int(r["switches"]), bool(r["budgeted"]),
                   float(r["rate"]), int(r["capped_slots"]))

    @classmethod
    def pooled(cls, parts: list) -> "ControlStats | None":
        """Independent runs as one: sums, and the mean budget over all budgeted slots."""
        if not parts or any(p is None for p in parts):
            return None
        slots = sum(p.budgeted_slots for p in parts)
        total = sum(p.mean_rate * p.budgeted_slots for p in parts if p.budgeted_slots)
        tops = [p.max_rate for p in parts if p.budgeted_slots]
        return cls(slots, sum(p.budgeted_overflows for p in parts),
                   total / slots if slots else math.nan, max(tops) if tops else math.nan,
                   sum(p.switches for p in parts), parts[0].budgeted, parts[0].rate,
                   sum(p.capped_slots for p in parts))

    def __eq__(self, other):  # nan == nan here: the engines agree when both have none
        if not isinstance(other, ControlStats):
            return NotImplemented
        return all((a == b) or (a != a and b != b) for a, b in zip(
            dataclasses.astuple(self), dataclasses.astuple(other)))

    __hash__ = None
