"""The plain slot-by-slot reference simulator of docs/model.md section 2.

Slow on purpose: it follows the steps of a slot literally (arrivals, running demand with
chunked prefills, admission, overflow check with LIFO eviction, decode, completion), keeps
the waiting queues as Python lists in queue order, the active list as a list in activation
order, and recomputes the demand from scratch every slot.  Flow control and Alg. 1 really
admit their candidates and let the overflow check bounce them.  The fast kernel
(:mod:`stability.engine.kernel`) must agree with it exactly on every instance.

Each policy's admission is a rule in :data:`RULES`: its candidates in order, and whether
the next one fits.
"""

from __future__ import annotations

import bisect

import numpy as np

from stability.engine import admission as adm
from stability.engine import rng
from stability.engine.codes import EVICT_RESTART, NO_LIMIT, REQUEUE_FRONT
from stability.engine.control import retarget
from stability.engine.raw import RawRun, SlotStats, TimeStats
from stability.engine.reference_control import ReferenceControl
from stability.engine.state import World
from stability.engine.timing import duration_ticks


class _Slot:
    """What a rule sees in slot t: the waiting queues, the active list, the demand R so
    far and the reservations, plus the run's constants."""

    def __init__(self, sim, t):
        self.sim = sim
        self.t = t
        self.demand = 0
        self.reserved = 0
        self.capped = False  # a stateful policy's budget (not memory) stopped admission


# ----------------------------------------------------------------------- policy rules
def _flow_candidates(s: _Slot):
    """Alg. 2: the first min(B_t, |W|) waiting requests, no memory check."""
    queue = s.sim.waiting[0]
    if not queue:
        return []
    p = s.sim.params
    b = rng.budget(int(p["budget_law"]), int(p["budget"]), float(p["budget_mean"]),
                   p["key0"], p["key1"], s.t)
    return list(queue[:b])


def _class_candidates(s: _Slot):
    """Alg. 1: the first b_k of each class queue, merged in queue-key order."""
    taken = []
    budgets = s.sim.class_budgets
    for k, queue in enumerate(s.sim.waiting):
        b = int(budgets[k]) if k < len(budgets) else 0
        taken.extend(queue[:b])
    return sorted(taken, key=lambda i: s.sim.qkey[i])


def _fcfs_candidates(s: _Slot):
    return list(s.sim.waiting[0])


def _paced_candidates(s: _Slot):
    """PacedGreedy: at most per_slot requests from the head."""
    return list(s.sim.waiting[0][: int(s.sim.params["per_slot"])])


def _no_check(s: _Slot, i: int, need: int) -> bool:
    return True


def _under_cap(s: _Slot, i: int, need: int) -> bool:
    return s.demand + need <= int(s.sim.params["cap"])


def _booking(sim, i) -> int:
    """Conservative / A_max: l + the bound reserved for request i."""
    p = sim.params
    bound = int(sim.predicted.upper[i]) if p["use_upper"] else int(p["max_decode"])
    return int(sim.prompt[i]) + bound


def _reservation_fits(s: _Slot, i: int, need: int) -> bool:
    return s.reserved + _booking(s.sim, i) <= s.sim.memory


def _memory_checked_candidates(s: _Slot):
    """MC-SF / MC-Benchmark / A_min: the longest prefix (in the policy's order) keeping the
    projected memory <= M at every predicted completion slot; requests requeued at the
    front come first."""
    sim, t = s.sim, s.t
    p = sim.params
    mode = int(p["estimate"])

    def est(i, g):
        return _estimate(mode, g, int(sim.predicted.point[i]), int(sim.predicted.lower[i]),
                         int(sim.predicted.upper[i]))

    members = [(int(sim.prompt[i]), int(sim.start[i]),
                int(sim.start[i]) + est(i, t - int(sim.start[i])) - 1)
               for i in sim.active if sim.start[i] >= 0]
    queue = sim.waiting[0]
    front = [i for i in queue if sim.qkey[i] < 0]
    rest = [i for i in queue if sim.qkey[i] >= 0]
    if int(p["order"]) == adm.ORDER_SHORTEST:
        rest = sorted(rest, key=lambda i: (est(i, int(sim.kept[i])), sim.qkey[i]))
    elif int(p["order"]) == adm.ORDER_VOLUME:  # SVF: smallest w(l, e) first
        rest = sorted(rest, key=lambda i: (int(sim.prompt[i]) * est(i, int(sim.kept[i]))
                                           + est(i, int(sim.kept[i]))
                                           * (est(i, int(sim.kept[i])) + 1) // 2, sim.qkey[i]))
    admitted = []
    for i in front + rest:
        u = t - int(sim.kept[i])
        trial = members + [(int(sim.prompt[i]), u, u + est(i, int(sim.kept[i])) - 1)]
        if any(sum(l + tau - u_ + 1 for l, u_, e in trial if e >= tau) > sim.memory
               for tau in {e for _, _, e in trial}):
            break
        members = trial
        admitted.append(i)
    return admitted


def _estimate(mode, g, point, lower, upper):
    """Estimated total length after g tokens (see ``admission.estimate``)."""
    if mode == adm.ESTIMATE_POINT:
        return max(point, g + 1)
    e = lower
    while e <= g and e < upper:
        e = 2 * e
    return max(min(e, upper), g + 1)


def _adaptive_fits(s: _Slot, i: int, need: int) -> bool:
    """Adaptive flow control: Greedy's memory test, then (budgeted mode) the credit; an
    admitted request takes its unit from the credit here (the rule admits iff True)."""
    if s.demand + need > s.sim.memory:
        return False
    control = s.sim.control
    if not control.allows():
        s.capped = True
        return False
    control.charge(int(s.sim.prompt[i]), s.sim.point(i))
    return True


def _predicted_flow_candidates(s: _Slot):
    """Prediction-aware flow control: from the head while the credit is positive, each
    charged its predicted memory-time; no memory check (they bounce like Alg. 2's)."""
    sim = s.sim
    taken = []
    for i in sim.waiting[0]:
        if sim.control.credit <= 0:
            break
        sim.control.credit -= sim.control.unit(int(sim.prompt[i]), sim.point(i))
        taken.append(i)
    return taken


RULES = {
    adm.FLOW: (_flow_candidates, _no_check),
    adm.CLASSES: (_class_candidates, _no_check),
    adm.GREEDY: (_fcfs_candidates, _under_cap),
    adm.CONSERVATIVE: (_fcfs_candidates, _reservation_fits),
    adm.MEMORY_CHECKED: (_memory_checked_candidates, _no_check),
    adm.PACED: (_paced_candidates, _under_cap),
    adm.ADAPTIVE: (_fcfs_candidates, _adaptive_fits),
    adm.PREDICTED_FLOW: (_predicted_flow_candidates, _no_check),
}
"""Policy code -> (candidates in order, does the next one fit)."""


# ------------------------------------------------------------------------- simulator
class _Simulation:
    def __init__(self, arrival, prompt, decode, class_id, enc: adm.Encoded, memory, world,
                 arrival_tick, predicted):
        n = len(prompt)
        self.n = n
        self.prompt, self.decode, self.class_id = prompt, decode, class_id
        self.params = enc.params[0]
        self.code = enc.code
        self.class_budgets = enc.class_budgets
        self.per_class = enc.groups_by_class
        self.evict_to = enc.evict_to
        self.max_active = enc.max_active
        self.token_budget = enc.token_budget
        self.memory = memory
        self.world = world
        self.clock = world.clock
        self.predicted = predicted
        timed = self.clock is not None
        times = arrival_tick if timed else arrival
        order = np.lexsort((np.arange(n), times))
        self.rank = np.empty(n, np.int64)
        self.rank[order] = np.arange(n)
        self.qkey = self.rank.copy()
        self.order = [int(i) for i in order]
        self.times = times
        groups = (int(class_id.max()) + 1 if n else 1) if self.per_class else 1
        self.waiting: list[list[int]] = [[] for _ in range(groups)]
        self.active: list[int] = []  # activation order
        self.start = np.full(n, -1, np.int64)  # u while decoding
        self.prefilled = np.zeros(n, np.int64)  # prefill tokens computed (while prefilling)
        self.admitted_at = np.full(n, -1, np.int64)
        self.kept = np.zeros(n, np.int64)
        self.front_key = -1
        self.control = ReferenceControl(self.code, enc.control) if enc.control is not None \
            else None

    def point(self, i) -> int:
        """Request i's point prediction (0 without predictions)."""
        return int(self.predicted.point[i]) if self.predicted is not None else 0

    def group(self, i):
        return int(self.class_id[i]) if self.per_class else 0

    def held(self, tokens):
        b = self.world.block
        return -(-tokens // b) * b

    def requeue(self, removed):
        """Removed requests (in activation order) re-enter W."""
        if self.world.requeue == REQUEUE_FRONT:  # ahead of everyone, oldest activation first
            for i in removed[::-1]:
                self.qkey[i] = self.front_key
                self.front_key -= 1
            for g in range(len(self.waiting)):
                mine = [i for i in removed if self.group(i) == g]
                self.waiting[g][:0] = mine
        else:  # at the arrival position
            for i in removed:
                self.qkey[i] = self.rank[i]
                bisect.insort(self.waiting[self.group(i)], i, key=lambda j: self.qkey[j])


def run_reference(arrival, prompt, decode, class_id, enc: adm.Encoded, memory: int,
                  horizon: int, warmup: int = 0, world: World = World(),
                  arrival_tick=None, predicted=None, events: list | None = None,
                  supervisor=None) -> RawRun:
    """Simulate slot by slot; ``horizon < 0`` runs until every request completes.

    ``supervisor`` (``Policy.supervisor``), when given, is asked for a new budget at the
    start of each of its pause slots, with the arrival and completion slots seen so far.

    ``events``, when given, receives (slot, kind, request) tuples with kind one of
    "arrive", "admit", "evict", "bounce", "complete", in the order they happen.
    """
    log = events.append if events is not None else (lambda item: None)
    sim = _Simulation(arrival, prompt, decode, class_id, enc, memory, world, arrival_tick,
                      predicted)
    n = sim.n
    timed = sim.clock is not None
    candidates_of, fits = RULES[sim.code]
    seen_arrival = np.full(n, -1, np.int64) if timed else np.asarray(arrival, np.int64).copy()
    first_token = np.full(n, -1, np.int64)
    completion = np.full(n, -1, np.int64)
    first_tick = np.full(n, -1, np.int64) if timed else np.zeros(0, np.int64)
    completion_tick = np.full(n, -1, np.int64) if timed else np.zeros(0, np.int64)
    evictions = np.zeros(n, np.int64)
    counts = dict(overflow=0, evictions=0, bounces=0, wasted=0, decoded=0, prefill=0,
                  recomputed=0, completed=0)
    series = {k: [] for k in ("kv", "demand", "queue", "active", "overflow")}
    per_slot = {k: [] for k in ("completed", "completed_tokens", "evictions", "bounces",
                                "wasted_tokens")}
    next_pos = 0
    now = int(min(sim.times)) if timed and n else 0
    window_start, busy, prefill_time = -1, 0, 0
    t = 0
    control = sim.control
    pause = supervisor.next_pause(-1) if supervisor is not None else -1
    while (horizon < 0 and counts["completed"] < n) or (0 <= t < horizon):
        if t == pause:
            decision = supervisor.decide(t, seen_arrival if timed else np.where(
                seen_arrival < t, seen_arrival, -1), completion)
            if decision is not None:
                retarget(control, *decision)
            pause = supervisor.next_pause(t)
        if timed and t == warmup:
            window_start = now
        arrived = 0  # credit units of this slot's arrivals (stateful policies)
        # 1. arrivals join W in arrival order
        while next_pos < n:
            i = sim.order[next_pos]
            if (timed and sim.times[i] > now) or (not timed and sim.times[i] != t):
                break
            next_pos += 1
            seen_arrival[i] = t
            bisect.insort(sim.waiting[sim.group(i)], i, key=lambda j: sim.qkey[j])
            log((t, "arrive", i))
            if control is not None:
                arrived += control.unit(int(prompt[i]), sim.point(i))
        # 2. running demand; chunked prefills get their next chunk first
        decoding = [i for i in sim.active if sim.start[i] >= 0]
        left = NO_LIMIT if sim.token_budget >= NO_LIMIT else sim.token_budget - len(decoding)
        chunk = {}
        completing = []
        demand = sum(sim.held(int(prompt[i]) + t - int(sim.start[i]) + 1) for i in decoding)
        for i in sim.active:
            if sim.start[i] < 0:
                need = int(prompt[i]) + int(sim.kept[i]) - int(sim.prefilled[i])
                c = min(need, left)
                left -= c
                chunk[i] = c
                if c == need:
                    completing.append(i)
                    demand += sim.held(int(prompt[i]) + int(sim.kept[i]) + 1)
                else:
                    demand += sim.held(int(sim.prefilled[i]) + c)
        # 3. admission
        s = _Slot(sim, t)
        s.demand = demand
        s.reserved = sum(_booking(sim, i) for i in sim.active) \
            if sim.code == adm.CONSERVATIVE else 0
        admitted = []
        if control is not None:
            control.refill()
        for i in candidates_of(s):
            if len(sim.active) + len(admitted) >= sim.max_active or left <= 0:
                break
            target = int(prompt[i]) + int(sim.kept[i])
            c = min(target, left)
            need = sim.held(target + 1) if c == target else sim.held(c)
            if not fits(s, i, need):
                break
            admitted.append(i)
            sim.waiting[sim.group(i)].remove(i)
            chunk[i] = c
            left -= c
            s.demand += need
            if sim.code == adm.CONSERVATIVE:
                s.reserved += _booking(sim, i)
            sim.admitted_at[i] = t
            if c == target:
                completing.append(i)
            log((t, "admit", i))
        sim.active.extend(admitted)
        demand = s.demand
        before = demand
        # 4. overflow check, LIFO eviction (down to M, or to (1 - beta) M with clearing)
        before_counts = dict(counts)
        overflowed = demand > memory
        removed = []
        if overflowed:
            counts["overflow"] += 1
            while demand > sim.evict_to:
                i = sim.active.pop()
                if i in completing:  # held its whole prefill plus the first token
                    demand -= sim.held(int(prompt[i]) + int(sim.kept[i]) + 1)
                    g = int(sim.kept[i])
                    completing.remove(i)
                elif sim.start[i] >= 0:
                    g = t - int(sim.start[i])
                    demand -= sim.held(int(prompt[i]) + g + 1)
                else:
                    demand -= sim.held(int(sim.prefilled[i]) + chunk[i])
                    g = int(sim.kept[i])
                if sim.admitted_at[i] == t:
                    counts["bounces"] += 1
                    log((t, "bounce", i))
                else:
                    counts["evictions"] += 1
                    evictions[i] += 1
                    if world.eviction == EVICT_RESTART:
                        counts["wasted"] += g
                    log((t, "evict", i))
                sim.kept[i] = 0 if world.eviction == EVICT_RESTART else g
                sim.start[i] = -1
                sim.prefilled[i] = 0
                sim.admitted_at[i] = -1
                chunk.pop(i, None)
                removed.insert(0, i)
            sim.requeue(removed)
        # prefill progress of the requests that stayed
        prefill = sum(chunk.values())
        counts["prefill"] += prefill
        counts["recomputed"] += sum(c for i, c in chunk.items() if evictions[i] > 0)
        for i in sim.active:
            if i in chunk:
                if i in completing:
                    sim.start[i] = t - int(sim.kept[i])
                    sim.prefilled[i] = 0
                else:
                    sim.prefilled[i] += chunk[i]
        decoding = [i for i in sim.active if sim.start[i] >= 0]
        d = duration_ticks(sim.clock, len(decoding), demand, prefill) if timed else 0
        if timed and t >= warmup:
            busy += d
            prefill_time += d - duration_ticks(sim.clock, len(decoding), demand, 0)
        series["overflow"].append(overflowed)
        series["kv"].append(demand)
        series["demand"].append(before)
        series["queue"].append(sum(len(w) for w in sim.waiting))
        series["active"].append(len(sim.active))
        per_slot["evictions"].append(counts["evictions"] - before_counts["evictions"])
        per_slot["bounces"].append(counts["bounces"] - before_counts["bounces"])
        per_slot["wasted_tokens"].append(counts["wasted"] - before_counts["wasted"])
        # 5. decode
        counts["decoded"] += len(decoding)
        for i in decoding:
            if first_token[i] < 0:
                first_token[i] = t
                if timed:
                    first_tick[i] = now + d
        # 6. completion
        still = []
        done_now = done_tokens = done_square = 0
        for i in sim.active:
            if sim.start[i] >= 0 and t - int(sim.start[i]) + 1 == int(decode[i]):
                completion[i] = t
                if timed:
                    completion_tick[i] = now + d
                counts["completed"] += 1
                done_now += 1
                done_tokens += int(decode[i])
                done_square += (int(prompt[i]) + int(decode[i])) ** 2
                log((t, "complete", i))
            else:
                still.append(i)
        sim.active = still
        per_slot["completed"].append(done_now)
        per_slot["completed_tokens"].append(done_tokens)
        if control is not None:
            control.observe(t, warmup, arrived, len(decoding), per_slot["wasted_tokens"][-1],
                            s.capped, overflowed, done_now, done_tokens, done_square)
        now += d
        if timed and not sim.active and not any(sim.waiting) and next_pos < n:
            now = max(now, int(sim.times[sim.order[next_pos]]))  # idle until the next arrival
        t += 1

    arrays = {k: np.array(v, np.int64) for k, v in series.items() if k != "overflow"}
    return RawRun(
        arrival=seen_arrival, first_token=first_token, start=sim.start.copy(),
        completion=completion, evictions=evictions, first_tick=first_tick,
        completion_tick=completion_tick, overflow_events=counts["overflow"],
        evictions_total=counts["evictions"], bounces=counts["bounces"],
        wasted_tokens=counts["wasted"], decoded_tokens=counts["decoded"],
        prefill_tokens=counts["prefill"], recomputed_tokens=counts["recomputed"],
        completed=counts["completed"], slots=t,
        waiting_at_end=sum(len(w) for w in sim.waiting), active_at_end=len(sim.active),
        stats=SlotStats.from_series(arrays["kv"], arrays["demand"], arrays["queue"],
                                    arrays["active"], np.array(series["overflow"], bool),
                                    memory, warmup, {k: np.array(v, np.int64)
                                                     for k, v in per_slot.items()}),
        time=TimeStats(sim.clock.tick, window_start, now, busy, prefill_time) if timed else None,
        series_stride=1, series_kv=arrays["kv"], series_queue=arrays["queue"],
        series_active=arrays["active"],
        control=control.stats() if control is not None else None,
    )

