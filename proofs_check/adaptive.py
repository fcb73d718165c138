"""Checks of the theory of adaptive and prediction-aware flow control (docs/adaptive.md
section 3, ``stability.theory.adaptive``).

Budgeted mode: the one-slot count of refusals and removals (exhaustive), the credit's drain
(admissions + refusals >= b T - 1, on random refusal patterns through the engines' state
machine), the guarantee at ceil(b) against the Alg. 2 bound and the certified budgets
against the condition itself.  Prediction-aware flow control: the window's algebra
(symbolic) and the admitted memory-time per slot against the simulator in both engines.
"""

from __future__ import annotations

import math

import numpy as np
import sympy as sp

from proofs_check import Outcome, check, sig
from stability.theory.adaptive import (budgeted_guarantee, certified_budgets,
                                       memory_time_window, predicted_overflow_bound,
                                       refusals_and_removals)
from stability.theory.budget import Budget
from stability.theory.effective import loss_rate_bound
from stability.theory.overflow import overflow_bound
from stability.workload import Workload

_LAM_STAR_41 = 16492 / (1353 + 1 / 3)  # Sec. 4.1 classes: lambda* in total


@check("adaptive_refusal_count", "beyond",
       "budgeted mode of adaptive flow control, one slot: candidates admitted FCFS while they "
       "fit (stopping at the first that does not), then LIFO removals of h >= l_min + 1 "
       "tokens each: refused + removed <= ceil((U - M)^+ / h) for any U >= running + the "
       "candidates' needs (stability.theory.adaptive.refusals_and_removals), with equality "
       "reached", evidence="numeric")
def adaptive_refusal_count():
    cases = worst = tight = 0
    ok = True
    for h in (1, 2, 3):
        for memory in (6, 11, 20):
            for running in range(0, memory + 8):
                for k in range(0, 4):
                    for extra in np.ndindex(*(4,) * k):
                        needs = [h + x for x in extra]
                        refused, removed = refusals_and_removals(running, needs, memory, h)
                        bound = math.ceil(max(running + sum(needs) - memory, 0) / h)
                        ok &= refused + removed <= bound
                        tight += refused + removed == bound and bound > 0
                        worst = max(worst, refused + removed - bound)
                        cases += 1
    return Outcome(ok and tight > 0,
                   f"numeric: exhaustive over {cases} slots (h <= 3, M in 6/11/20, up to 3 "
                   f"candidates with needs h..h+3)",
                   f"largest (refused + removed) - bound = {worst}; bound attained in {tight} "
                   f"slots with an excess")


@check("adaptive_credit_drain", "beyond",
       "budgeted mode's credit (refilled to min(c + q, q) each slot, one request per admission "
       "while it is positive): over T backlogged slots the admissions plus the refused "
       "candidates are at least b T - 1 and the admissions at most b T + 1, whatever the "
       "memory test refuses (random refusal patterns, the engines' state machine)",
       evidence="numeric")
def adaptive_credit_drain():
    from stability.engine.control import ADAPTIVE, SCALE
    from stability.engine.reference_control import ReferenceControl
    from stability.policies.adaptive import AdaptiveFlow

    rng = np.random.default_rng(12)
    ok, runs, slack = True, 0, math.inf
    for b in (0.3, 1.0, 1.5, 2.25, 7.8):
        for p_refuse in (0.0, 0.2, 0.7):
            m = ReferenceControl(ADAPTIVE, AdaptiveFlow().encode(1000, 1).control)
            m.budgeted, m.rate, m.quantum, m.credit = True, b, int(b * SCALE), 0
            admitted = refused = 0
            slots = 500
            for _ in range(slots):
                m.refill()
                while m.allows():
                    if rng.random() < p_refuse:  # the head does not fit: the slot ends
                        refused += -(-m.credit // SCALE)  # the candidates the credit allowed
                        break
                    m.charge(10, 0)
                    admitted += 1
            low = m.quantum / SCALE * slots - 1
            ok &= admitted + refused >= low and admitted <= b * slots + 1
            slack = min(slack, admitted + refused - low)
            runs += 1
    return Outcome(ok, f"numeric: {runs} runs of 500 slots (b from 0.3 to 7.8, refusal "
                       "probability 0, 0.2, 0.7 per candidate)",
                   f"smallest (admitted + refused) - (b T - 1) = {sig(slack)}")


@check("adaptive_budgeted_bound", "reconstruction",
       "in budgeted mode at budget b the guarantee is the Alg. 2 bound at the deterministic "
       "budget ceil(b): budgeted_guarantee's overflow equals overflow_bound at ceil(b), is "
       "1 when ceil(b) E[w] >= M and is non-decreasing in b; the certified budgets are "
       "exactly the b with lambda < b - r_bar(ceil(b)) (grid of b, Sec. 4.1 classes at "
       "0.8 and 0.95 lambda*)", evidence="numeric")
def adaptive_budgeted_bound():
    memory = 16492
    ok, details = True, []
    for share in (0.8, 0.95):
        w = Workload.paper_4_1(share * _LAM_STAR_41 / 3)
        prev = 0.0
        grid = np.arange(0.25, 14.0, 0.25) + 0.1
        for b in grid:
            g = budgeted_guarantee(w, memory, float(b))
            k = math.ceil(b)
            ref = overflow_bound(w, Budget(k), memory).per_slot
            ok &= math.isclose(g.overflow, ref, rel_tol=1e-9) and g.overflow >= prev - 1e-15
            prev = g.overflow
        intervals = certified_budgets(w, memory)
        inside = [any(lo < b <= hi for lo, hi in intervals) for b in grid]
        truth = [w.total_rate < b - loss_rate_bound(w, math.ceil(b), memory, "chernoff").loss
                 for b in grid]
        ok &= inside == truth
        details.append(f"{share} lambda*: certified {[(sig(a), sig(c)) for a, c in intervals]}"
                       f", {sum(truth)} of {len(grid)} grid budgets")
    return Outcome(ok, "numeric: b on a grid of 0.25 from 0.35 to 13.85, both loads",
                   "; ".join(details))


@check("memory_time_window_algebra", "beyond",
       "prediction-aware flow control admits beta = W / E[w_hat] requests per slot in "
       "saturation, so E[U] = W E[w] / E[w_hat]; lambda < beta and beta E[w] < M iff "
       "lambda E[w_hat] < W < M E[w_hat] / E[w], i.e. rho < W / (M E[w_hat] / E[w]) < 1 with "
       "rho = lambda E[w] / M; memory_time_window and predicted_overflow_bound return these",
       evidence="symbolic")
def memory_time_window_algebra():
    lam, ew, ewh, mm, ww = sp.symbols("lambda Ew Ewhat M W", positive=True)
    beta = ww / ewh
    drain = sp.solve_univariate_inequality(lam < beta, ww, relational=False)
    # beta E[w] is increasing in W (positive derivative) and equals M at one root
    roots = sp.solve(sp.Eq(beta * ew, mm), ww)
    below_m = sp.Interval.open(0, roots[0]) if len(roots) == 1 else None
    ok_sym = (drain == sp.Interval.open(lam * ewh, sp.oo)
              and sp.diff(beta * ew, ww).is_positive
              and below_m == sp.Interval.open(0, mm * ewh / ew)
              and sp.simplify(lam * ewh / (mm * ewh / ew) - lam * ew / mm) == 0)
    w = Workload.paper_4_1(3.0)
    exact = memory_time_window(w, 16492)
    noisy = memory_time_window(w, 16492, _noisy(0.5), samples=100_000)
    ok_num = True
    for win in (exact, noisy):
        ok_num &= math.isclose(win.low, win.arrival_rate * win.mean_predicted, rel_tol=1e-12)
        ok_num &= math.isclose(win.high, 16492 * win.mean_predicted / win.mean_memory_time,
                               rel_tol=1e-12)
        est = predicted_overflow_bound(w, 16492, 0.9 * win.high, window=win)
        ok_num &= math.isclose(est.admissions, 0.9 * win.high / win.mean_predicted,
                               rel_tol=1e-12)
        ok_num &= math.isclose(est.mean_demand, 0.9 * 16492, rel_tol=1e-9)
    ok_num &= exact.inflation == 1.0 and noisy.inflation > 1.0
    return Outcome(bool(ok_sym) and ok_num,
                   "sympy: solve both inequalities in W; numeric: the package's window and "
                   "overflow estimate at 0.9 of the upper end (exact and noisy:0.5)",
                   f"drain: W in {drain}; below M: W in {below_m}; inflation of noisy:0.5 = "
                   f"{sig(noisy.inflation)}")


def _noisy(sigma):
    from stability.predictions import Predictions
    return Predictions.noisy(sigma)


@check("predicted_flow_memory_time", "beyond",
       "saturated prediction-aware flow control with exact predictions admits W predicted "
       "memory-time per slot up to one request (|admitted / T - W| <= max w / T + 1), in both "
       "engines; with noisy predictions the measured mean demand is W E[w] / E[w_hat] "
       "(memory_time_window) within 3%", evidence="numeric")
def predicted_flow_memory_time():
    import stability as s
    from stability.policies.adaptive import PredictedFlow

    ok, details = True, []
    w = s.Workload.single(8.0, 10, s.UniformInt(5, 30))
    req = w.generate(300, 1)
    for engine in ("fast", "reference"):
        W = 400
        r = s.simulate(req, PredictedFlow(W), 10**7, horizon=300, seed=1, engine=engine)
        started = (r.start >= 0) | (r.completion >= 0)
        admitted = req.memory_time()[started & (r.first_token < 300)].sum() / 300
        ok &= abs(admitted - W) <= req.memory_time().max() / 300 + 1
        details.append(f"{engine}: {sig(admitted)} per slot at W = {W}")
    big = s.Workload.single(40.0, 10, s.UniformInt(5, 30))
    pred = s.Predictions.noisy(0.5)
    win = memory_time_window(big, 10**7, pred, samples=200_000)
    W = 0.75 * win.low  # below the drain end: the queue grows, admissions are saturated
    r = s.simulate(big.generate(6000, 2), PredictedFlow(W, pred), 10**7, horizon=6000,
                   seed=2, warmup=2000)
    demand = r.metrics().demand_mean * 10**7
    ok &= abs(demand / win.mean_demand(W) - 1) < 0.03
    details.append(f"noisy:0.5, W = {sig(W)}: E[U] {sig(demand)} vs {sig(win.mean_demand(W))}")
    return Outcome(ok, "numeric: saturated runs with M = 1e7 (no bounce)", "; ".join(details))
