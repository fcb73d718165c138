"""``analyze(workload, memory, ...)``: the theory of docs/model.md section 3 for one configuration.

The report gathers Prop. 3.2, the critical rate, the budget window, and, for a budget,
the mean demand, the Chernoff overflow bound (*reconstruction*), the exact FFT tail of the
eviction-free demand, the Lindley queue (or Thm 3.3 for per-class budgets), the
compound-Poisson prediction of an unthrottled system and, for an overflow target, the
tuned budget.  ``to_text()`` prints tables; ``to_dict()`` is JSON-ready.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np

from stability import validation
from stability.jsonvalues import plain
from stability.theory.budget import UNTHROTTLED, Budget, PerClassBudget, as_budget
from stability.theory.conditions import (
    alg1_condition,
    critical_rate,
    lindley_mean_queue,
    necessary_condition,
    queue_drift,
)
from stability.theory.demand import DemandModel
from stability.theory.effective import (FRESH_LENGTH_NOTE, certified_rate, corrected_window,
                                        effective_rate)
from stability.theory.exact_tail import per_slot_overflow
from stability.theory.moments import demand_variance, mean_memory_time
from stability.theory.overflow import RECONSTRUCTION_NOTE, overflow_bound
from stability.theory.symbolic import BUDGET_LAWS
from stability.theory.tuning import best_budget, budget_window
from stability.workload import Workload

ANALYZE_LEVELS = 200
"""FFT tail levels for the exact loss-rate bound of the analysed budget (one evaluation)."""

__all__ = ["AnalysisReport", "analyze"]


@dataclass(frozen=True)
class AnalysisReport:
    """Theory of docs/model.md section 3 for one workload, capacity and (optionally) budget.

    Attributes
    ----------
    memory : int
        M, tokens.
    classes : tuple
        Per class: name, rate (lambda_k), mean prompt, mean decode, E[w_k],
        lambda_k E[w_k].
    necessary : dict
        Prop. 3.2 (load, utilisation, holds).
    critical_rate : float
        lambda* = M / E[w] for the same class mix (total, per slot).
    window : dict
        Budget window (lambda, M / E[w]).
    budget : str or None
        Description of the analysed budget, or None.
    demand : dict or None
        E[U], sd(U), slack M - E[U] for the budget, or None.
    chernoff : dict or None
        Alg. 2 overflow bound (reconstruction) for the budget, or None.
    exact : dict or None
        Exact FFT per-slot overflow P(U > M) of the eviction-free demand, or None.
    queue : dict or None
        Lindley mean queue/delay (flow control) or Thm 3.3 and per-class Lindley
        queues (per-class budgets), with the drift when unstable; or None.
    unthrottled : dict
        Compound-Poisson prediction with lambda in place of E[B] (bound and exact).
    tuning : dict or None
        Tuned budgets per law and the best, if a target was given.
    notes : tuple
        Reconstruction and approximation statements.
    effective : dict or None
        Flow-control budgets only (issue 16): the loss-rate bound r_bar on bounces +
        evictions per slot (Chernoff, and exact FFT when ``exact``), the effective activation
        rate E[B] - r_bar, whether lambda < E[B] - r_bar holds, the corrected window of the
        budget's law, and a warning when the loss eats the margin E[B] - lambda; or None.
    """

    memory: int
    classes: tuple
    necessary: dict
    critical_rate: float
    window: dict
    budget: str | None
    demand: dict | None
    chernoff: dict | None
    exact: dict | None
    queue: dict | None
    unthrottled: dict
    tuning: dict | None
    horizon: int
    notes: tuple = field(default=())
    effective: dict | None = None

    def to_dict(self) -> dict:
        return plain({k: getattr(self, k) for k in self.__dataclass_fields__})

    def to_json(self, indent: int = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def to_text(self) -> str:
        lines = []
        add = lines.append
        add(f"KV capacity M = {self.memory} tokens")
        add("")
        add(f"{'class':<12}{'lambda_k':>10}{'E[l]':>10}{'E[o]':>10}{'E[w_k]':>14}"
            f"{'lambda_k E[w_k]':>18}")
        for c in self.classes:
            add(f"{c['name']:<12}{c['rate']:>10.4g}{c['mean_prompt']:>10.4g}"
                f"{c['mean_decode']:>10.4g}{c['mean_memory_time']:>14.6g}{c['load']:>18.6g}")
        n = self.necessary
        add("")
        add(f"Prop. 3.2 (necessary): sum_k lambda_k E[w_k] = {n['load']:.6g} "
            f"{'<=' if n['holds'] else '>'} M = {self.memory}  "
            f"(utilisation {n['utilisation']:.4f}: {'holds' if n['holds'] else 'VIOLATED, no policy is stable'})")
        total_rate = sum(c["rate"] for c in self.classes)
        shares = ", ".join(f"{self.critical_rate * c['rate'] / total_rate:.6g}"
                           for c in self.classes) if total_rate > 0 else "-"
        add(f"critical rate lambda* = M / E[w] = {self.critical_rate:.6g} per slot "
            f"(same class mix; per class: {shares})")
        w = self.window
        add(f"budget window (lambda, M/E[w]) = ({w['low']:.6g}, {w['high']:.6g})"
            f"{'' if w['nonempty'] else '  EMPTY'}")
        if self.budget is not None:
            add("")
            add(f"budget: {self.budget}")
            d = self.demand
            add(f"  eviction-free demand U: E[U] = {d['mean']:.6g}, sd = {d['sd']:.6g}, "
                f"slack M - E[U] = {d['slack']:.6g}")
            ch = self.chernoff
            if ch is not None:
                add(f"  Chernoff (reconstruction): I(M) = {ch['rate']:.6g}, theta* = {ch['theta']:.4g}"
                    f" (theta_max = {ch['theta_max']:.4g})")
                add(f"    P(overflow per slot) <= {ch['per_slot']:.4g}; "
                    f"P(any overflow in {self.horizon} slots) <= {ch['expected_events']:.4g}")
            ex = self.exact
            if ex is not None:
                extra = ""
                if ex.get("lower") is not None:
                    extra = f" (lower bracket {ex['lower']:.4g}, lattice unit {ex['unit']} tokens)"
                add(f"  exact (FFT, eviction-free): P(U > M) = {ex['prob']:.4g}{extra}; "
                    f"{ex['seconds']:.2f} s")
            q = self.queue
            if q is not None:
                if q["kind"] == "flow-control":
                    if q["drift"] > 0:
                        status = f"  (UNSTABLE: lambda >= E[B], drift {q['drift']:.4g} per slot)"
                    elif not q["stable"]:
                        status = ("  (no loss assumed; NOT certified stable: see the effective "
                                  "rate below)")
                    else:
                        status = ""
                    add(f"  Lindley queue: E[Q] = {q['mean_queue']:.6g}, mean delay = "
                        f"{q['mean_delay']:.6g} slots{status}")
                    if self.effective is not None:
                        lines.extend(_effective_lines(self.effective))
                else:
                    add(f"  inequality (2): sum_k b_k w_k = {q['peak']:.6g} "
                        f"{'<=' if q['inequality_2'] else '>'} M; b_k > lambda_k for all k: "
                        f"{q['budgets_exceed_rates']}; Thm 3.3 stable: {q['stable']}")
                    if not q["stable"] and q["drift"] > 0:
                        add(f"    queues grow by {q['drift']:.4g} requests per slot")
                    for k, mq in enumerate(q["class_mean_queue"]):
                        add(f"    class {k}: Lindley E[Q_k] = {mq:.6g}")
        u = self.unthrottled
        add("")
        add(f"unthrottled (compound Poisson, lambda in place of E[B]): E[U] = {u['mean']:.6g}, "
            f"bound {u['per_slot']:.4g}" + (f", exact {u['exact']:.4g}" if u.get("exact") is not None else ""))
        if self.tuning is not None:
            t = self.tuning
            add("")
            add(f"budget tuner: target P(overflow per slot) <= {t['target']:.3g} (method {t['method']})")
            add(f"  {'law':<14}{'E[B]':>12}{'overflow':>12}{'slack':>12}{'mean delay':>12}"
                f"{'latency':>10}{'r_bar':>11}   corrected window")
            for c in t["candidates"]:
                if math.isnan(c["corrected_low"]):
                    win = "empty"
                else:
                    win = f"[{c['corrected_low']:.6g}, {c['corrected_high']:.6g}]"
                win += ("" if c["stable"] else "  budget outside: not stable") + \
                    ("  (capped at its upper end)" if c["capped"] else "")
                add(f"  {c['law']:<14}{c['budget']:>12.6g}{c['overflow']:>12.3g}{c['slack']:>12.6g}"
                    f"{c['mean_delay']:>12.4g}{c['mean_latency']:>10.4g}{c['loss']:>11.3g}   {win}")
            b = t["best"]
            add("  best: " + (f"{b['law']} E[B] = {b['budget']:.6g}" if b else t["note"]))
        if self.notes:
            add("")
            for note in self.notes:
                add(f"note: {note}")
        return "\n".join(lines)


def _effective_lines(e: dict) -> list:
    """The effective-rate section of the text report (issue 16)."""
    out = []
    best = e.get("exact") or e["chernoff"]
    ch = e["chernoff"]["loss"]
    loss_text = f"r_bar <= {ch['loss']:.4g} (Chernoff)"
    if e.get("exact") is not None:
        loss_text = f"r_bar <= {e['exact']['loss']['loss']:.4g} (exact FFT; Chernoff {ch['loss']:.4g})"
    out.append(f"  bounces + evictions per slot: {loss_text}; per-slot overflow <= "
               f"{best['loss']['overflow']:.4g}, removals per overflow <= "
               f"{best['loss']['removals_per_overflow']:.4g} (h = l_min + 1 = "
               f"{best['loss']['removal_unit']} tokens per removal)")
    out.append(f"  effective activation rate E[B] - r_bar = {best['effective_rate']:.6g} "
               f"{'>' if best['holds'] else '<='} lambda = {best['arrival_rate']:.6g}: "
               + ("certified stable (effective-rate condition holds)" if best["holds"] else
                  "NOT certified stable"))
    cw = e["corrected_window"]
    if cw["nonempty"]:
        out.append(f"  corrected window ({cw['law']}, Chernoff r_bar): E[B] in "
                   f"[{cw['low']:.6g}, {cw['high']:.6g}] certified for lambda = "
                   f"{cw['arrival_rate']:.6g}; reconstructed window ({cw['reconstructed'][0]:.6g}, "
                   f"{cw['reconstructed'][1]:.6g})")
    else:
        cr = e["certified_rate"]
        out.append(f"  corrected window ({cw['law']}, Chernoff r_bar): EMPTY for lambda = "
                   f"{cw['arrival_rate']:.6g}: no {cw['law']} budget is certified (this law "
                   f"certifies lambda < {cr['rate']:.6g} = {cr['fraction']:.4g} lambda*, at "
                   f"E[B] = {cr['budget']:.6g}); reconstructed window "
                   f"({cw['reconstructed'][0]:.6g}, {cw['reconstructed'][1]:.6g})")
    if e["warning"]:
        out.append(f"  WARNING: {e['warning']}")
    return out


def _effective(workload: Workload, b: Budget, memory: int, exact: bool, model) -> dict:
    """Loss-rate bound, effective rate, corrected window and warning for one budget."""
    ch = effective_rate(workload, b, memory, "chernoff", model=model)
    ex = effective_rate(workload, b, memory, "exact", model=model,
                        max_levels=ANALYZE_LEVELS) if exact else None
    best = ex or ch
    cw = corrected_window(workload, memory, b.law, "chernoff")
    cr = certified_rate(workload, memory, b.law, "chernoff")
    warning = ""
    if best.margin > 0 and not best.holds:
        where = ("inside the reconstructed window (lambda, M/E[w]), but "
                 if best.in_reconstructed_window else "")
        warning = (f"{where}the loss eats the margin: E[B] - lambda = {best.margin:.4g} while "
                   f"bounces + evictions may reach r_bar = {best.loss.loss:.4g} per slot; the "
                   "queue is only guaranteed to drain at E[B] - r_bar = "
                   f"{best.effective_rate:.4g} < lambda = {best.arrival_rate:.4g}. Bounced and "
                   "evicted requests re-enter the queue, so it may grow without bound; "
                   "r_bar is a conservative bound (docs/theory_region.md gives the measured "
                   "region).")
    return {"chernoff": ch.to_dict(), "exact": None if ex is None else ex.to_dict(),
            "holds": best.holds, "effective_rate": best.effective_rate,
            "corrected_window": cw.to_dict(), "certified_rate": cr.to_dict(),
            "warning": warning}


def _class_rows(workload: Workload) -> tuple:
    rows = []
    for k, c in enumerate(workload.classes):
        ew = mean_memory_time(c)
        rows.append({"name": c.name or f"class {k}", "rate": c.rate,
                     "mean_prompt": c.prompt.mean(), "mean_decode": c.decode.mean(),
                     "mean_memory_time": ew, "load": c.rate * ew})
    return tuple(rows)


def analyze(workload: Workload, memory: int, budget=None, target_overflow: float | None = None,
            horizon: int = 10**6, exact: bool = True, method: str = "chernoff") -> AnalysisReport:
    """Everything docs/model.md section 3 says about one configuration.

    Parameters
    ----------
    workload : Workload
        Request classes.
    memory : int
        M, KV capacity in tokens.
    budget : float, Budget, PerClassBudget or FlowControl
        None, a number (deterministic b), Budget, PerClassBudget, or a FlowControl /
        ClassBudgets policy.
    target_overflow : float or None
        Per-slot overflow target for the budget tuner (None: no tuning).
    horizon : int
        T, slots of the horizon for the bound P(any overflow in T slots) <= T e^{-I(M)}.
    exact : bool
        Also compute the exact FFT tail (beyond the paper).
    method : str
        Overflow prediction used by the tuner ("chernoff" or "exact").
    """
    if not isinstance(workload, Workload):
        raise ValueError(f"workload must be a Workload, got {workload!r}")
    memory = validation.memory(memory)
    if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise ValueError(f"horizon must be an integer >= 1 (slots), got {horizon!r}")
    notes = [RECONSTRUCTION_NOTE]
    if workload.num_classes > 1 and not isinstance(as_budget(budget) if budget is not None
                                                   else None, PerClassBudget):
        notes.append("flow control: an activation is of class k with probability "
                     "lambda_k / lambda (assumption of the saturated relaxation)")
    nec = necessary_condition(workload, memory)
    window = budget_window(workload, memory)
    b = None if budget is None else as_budget(budget)
    if b == UNTHROTTLED:
        raise ValueError("budget='unthrottled' is reported anyway; give a real budget or none")
    demand = chernoff = ex = queue = effective = None
    if b is not None:
        model = DemandModel(workload, b)
        mean = model.dlog_mgf(0.0)
        demand = {"mean": mean, "sd": math.sqrt(demand_variance(workload, b)),
                  "slack": memory - mean}
        chernoff = overflow_bound(workload, b, memory, horizon, model=model).to_dict()
        if exact:
            ex = _exact_dict(workload, b, memory)
        if isinstance(b, PerClassBudget):
            cond = alg1_condition(workload, b, memory)
            queues = [lindley_mean_queue(c.rate, Budget(bk, b.law)).mean_queue
                      for c, bk in zip(workload.classes, b.budgets)]
            queue = {"kind": "per-class", **cond.to_dict(), "class_mean_queue": queues,
                     "drift": queue_drift(workload, b)}
        else:
            lq = lindley_mean_queue(workload.total_rate, b)
            effective = _effective(workload, b, memory, exact, model)
            # stable means certified: the effective rate E[B] - r_bar exceeds lambda (issue
            # 16), not merely E[B] > lambda
            queue = {"kind": "flow-control", "mean_queue": lq.mean_queue,
                     "mean_delay": lq.mean_delay,
                     "stable": workload.total_rate < b.mean and effective["holds"],
                     "drift": queue_drift(workload, b)}
            notes.append(FRESH_LENGTH_NOTE)
        if ex is not None and ex["unit"] > 1:
            notes.append(f"exact tail on a lattice of {ex['unit']} tokens, contributions rounded "
                         "up (prob) and down (lower): a bracket of the exact value")
    un = overflow_bound(workload, UNTHROTTLED, memory, horizon)
    unthrottled = {"mean": un.mean_demand, "rate": un.rate, "per_slot": un.per_slot,
                   "expected_events": un.expected_events, "exact": None}
    if exact:
        unthrottled["exact"] = _exact_dict(workload, UNTHROTTLED, memory)["prob"]
    tuning = None
    if target_overflow is not None:
        res = best_budget(workload, memory, target_overflow, BUDGET_LAWS, method)
        tuning = {"target": float(target_overflow), "method": method, **res.to_dict()}
    return AnalysisReport(memory, _class_rows(workload), nec.to_dict(),
                          critical_rate(workload, memory), window.to_dict(),
                          None if b is None else b.describe(), demand, chernoff, ex, queue,
                          unthrottled, tuning, int(horizon), tuple(notes), effective)


def _exact_dict(workload, budget, memory) -> dict:
    r = per_slot_overflow(workload, budget, memory)
    return {"prob": float(r.prob[0]),
            "lower": None if r.prob_lower is None else float(r.prob_lower[0]),
            "unit": r.unit, "seconds": r.seconds, "notes": list(r.notes)}
