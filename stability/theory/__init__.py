"""Theory of docs/model.md section 3: conditions, moments, overflow bounds, exact tails, tuning.

Modules, each named for what it holds:

``symbolic``     sympy statements of the closed forms (memory-time, kappa, budget laws)
``budget``       budget laws (deterministic, Poisson, two-point) and per-class budgets
``moments``      exact E[w], E[U] and Var(U)
``demand``       the saturated eviction-free demand U and its log-MGF Lambda(theta)
``conditions``   Prop. 3.2, inequality (2) / Thm 3.3, Lindley stationary mean
``overflow``     Chernoff rate I(M) and the Alg. 2 overflow bound (*reconstruction*)
``exact_tail``   the exact tail P(U > m) by FFT (beyond the paper)
``effective``    loss-rate bound, effective activation rate, corrected window (issue 16)
``tuning``       budget window and budget tuner (beyond the paper)
``clocked``      the critical rate in requests per second under a timed clock
``report``       ``analyze(workload, memory, ...)``: everything above in one report
"""

from stability.theory.budget import UNTHROTTLED, Budget, PerClassBudget
from stability.theory.clocked import CriticalSeconds, critical_rate_seconds
from stability.theory.conditions import (
    alg1_condition,
    alg1_peak_demand,
    critical_rate,
    lindley_mean_queue,
    necessary_condition,
    queue_drift,
)
from stability.theory.demand import DemandModel
from stability.theory.effective import (
    CorrectedWindow,
    LossBound,
    certified_rate,
    corrected_window,
    effective_rate,
    loss_rate_bound,
)
from stability.theory.exact_tail import exact_tail, per_slot_overflow
from stability.theory.moments import (
    demand_mean,
    demand_variance,
    mean_memory_time,
    mean_memory_time_mix,
)
from stability.theory.overflow import (
    chernoff_rate,
    compound_poisson_prediction,
    kappa,
    kappa_geometric,
    overflow_bound,
)
from stability.theory.report import AnalysisReport, analyze
from stability.theory.tuning import best_budget, budget_window, tune_budget

__all__ = [
    "Budget", "PerClassBudget", "UNTHROTTLED", "DemandModel",
    "alg1_condition", "alg1_peak_demand", "critical_rate", "lindley_mean_queue",
    "necessary_condition", "queue_drift",
    "exact_tail", "per_slot_overflow",
    "CorrectedWindow", "LossBound", "certified_rate", "corrected_window", "effective_rate",
    "loss_rate_bound",
    "demand_mean", "demand_variance", "mean_memory_time", "mean_memory_time_mix",
    "chernoff_rate", "compound_poisson_prediction", "kappa", "kappa_geometric", "overflow_bound",
    "CriticalSeconds", "critical_rate_seconds",
    "AnalysisReport", "analyze", "best_budget", "budget_window", "tune_budget",
]
