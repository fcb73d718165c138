"""The stateful policies' state for the reference simulator: a plain-Python transcription
of :mod:`stability.engine.control`, slot by slot (no closed form over quiet stretches).

The floating-point updates are written as the same operations in the same order as the
kernel's, so both engines reach bit-identical states; credits are integers.
"""

from __future__ import annotations

from stability.engine import control as ctl
from stability.engine.control import ADAPTIVE, PREDICTED_FLOW


class ReferenceControl:
    """One run's :data:`~stability.engine.control.CONTROL` state as Python attributes."""

    def __init__(self, code: int, record):
        self.code = code
        r = record[0]
        for name in ctl.CONTROL.names:
            value = r[name]
            setattr(self, name, bool(value) if ctl.CONTROL[name].kind == "b" else
                    float(value) if ctl.CONTROL[name].kind == "f" else int(value))

    def __getitem__(self, name):  # record-style access, for control.retarget
        return getattr(self, name)

    def __setitem__(self, name, value):
        setattr(self, name, value)

    # -- admission -------------------------------------------------------------------
    def unit(self, prompt: int, point: int) -> int:
        if self.memory_time:
            return ctl.memory_time(int(prompt), int(point))
        return ctl.SCALE

    def uses_credit(self) -> bool:
        return self.code == PREDICTED_FLOW or (self.code == ADAPTIVE and self.budgeted)

    def refill(self) -> None:
        """Every slot, before admission."""
        if self.uses_credit():
            self.credit = min(self.credit + self.quantum, self.quantum)

    def allows(self) -> bool:
        return not (self.code == ADAPTIVE and self.budgeted) or self.credit > 0

    def charge(self, prompt: int, point: int) -> None:
        if self.code == ADAPTIVE and self.budgeted:
            self.credit -= self.unit(prompt, point)

    # -- end of slot -----------------------------------------------------------------
    def observe(self, t, warmup, arrived, decoded, wasted, capped, overflowed, done,
                done_decode, done_square) -> None:
        if self.code != ADAPTIVE:
            return
        self.p_arrived += arrived
        self.p_decoded += decoded
        self.p_wasted += wasted
        self.p_capped += 1 if capped else 0
        self.capped_slots += 1 if capped else 0
        self.p_done += done
        self.p_done_decode += done_decode
        self.p_done_square += done_square
        if self.budgeted and t >= warmup:
            self.budgeted_slots += 1
            self.p_budgeted += 1
            self.budgeted_overflows += 1 if overflowed else 0
        if (t + 1) % self.period == 0:
            self.update()

    def update(self) -> None:
        """The controller at a period end (``control.update``, line by line)."""
        c = self.period
        self.rate_sum += self.rate * self.p_budgeted
        if self.p_budgeted > 0 and self.rate > self.rate_max:
            self.rate_max = self.rate
        self.p_budgeted = 0
        arrivals = self.p_arrived / self.unit_scale / c
        if self.started:
            self.arrival_rate += (arrivals - self.arrival_rate) / ctl.SMOOTH
        else:
            self.arrival_rate = arrivals
            self.started = True
        if self.p_done > 0:
            o = self.p_done_decode / self.p_done
            sq = self.p_done_square / self.p_done
            if self.mean_square > 0.0:
                self.mean_decode += (o - self.mean_decode) / ctl.SMOOTH
                self.mean_square += (sq - self.mean_square) / ctl.SMOOTH
            else:
                self.mean_decode = o
                self.mean_square = sq
        self.waste_long += (self.p_wasted - self.waste_long) / ctl.LONG
        self.decoded_long += (self.p_decoded - self.decoded_long) / ctl.LONG
        self.waste_short += (self.p_wasted - self.waste_short) / ctl.SHORT
        self.decoded_short += (self.p_decoded - self.decoded_short) / ctl.SHORT
        if self.follow:
            if self.budgeted:
                self.rate = max(self.held, self.multiplier * self.arrival_rate)
                self.quantum = int(self.rate * self.unit_scale)
        elif self.budgeted:
            if self.waste_long > self.target * self.decoded_long:
                self.rate = self.rate - self.rate * ctl.STEP_DOWN
            elif self.p_capped > 0:
                self.rate = self.rate + self.rate * ctl.STEP_UP
            low = self.floor * self.arrival_rate
            if self.rate < low:
                self.rate = low
            self.quantum = int(self.rate * self.unit_scale)
            self.hold -= 1
            if self.rate >= self.ceiling * self.arrival_rate:
                self.budgeted = False
                self.greedy_age = 0
            elif self.hold <= 0:
                self.budgeted = False
                self.trial = ctl.TRIAL
                self.greedy_age = 1
                self.saved_rate = self.rate
        elif ((self.mean_square > 0.0 and self.decoded_short > 0.0
               and self.waste_short * self.waste_short * self.mean_decode
               > self.trigger * self.trigger * self.decoded_short * c * self.mean_square)
              or (self.trial > 0 and self.p_wasted > ctl.SPIKE * self.target * self.p_decoded)):
            self.budgeted = True
            if self.greedy_age > 0:
                self.rate = self.saved_rate
                self.hold_length = min(2 * self.hold_length, ctl.LONGEST_HOLD)
            else:
                self.rate = self.start * self.arrival_rate
                self.hold_length = self.retry
            self.hold = self.hold_length
            self.trial = 0
            self.greedy_age = 0
            self.quantum = int(self.rate * self.unit_scale)
            self.credit = 0
            self.switches += 1
        else:
            if self.trial > 0:
                self.trial -= 1
            if self.greedy_age > 0:
                self.greedy_age = self.greedy_age + 1 if self.greedy_age < self.hold_length else 0
        self.p_arrived = self.p_decoded = self.p_wasted = self.p_capped = 0
        self.p_done = self.p_done_decode = self.p_done_square = 0

    def stats(self) -> ctl.ControlStats:
        rec = ctl.new_control(**{name: getattr(self, name) for name in ctl.CONTROL.names})
        return ctl.ControlStats.from_record(rec)
