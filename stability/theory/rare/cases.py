"""The validation tables of the rare-event estimator: the Section 4.1 classes, a
geometric class and (optionally) the Azure conv lengths, over slack grids reaching 1e-12."""

from __future__ import annotations

from stability.theory.budget import Budget
from stability.theory.moments import demand_mean
from stability.theory.rare.estimators import overflow_table
from stability.workload import Deterministic, Geometric, RequestClass, Workload

__all__ = ["paper_tables"]

# ---------------------------------------------------------------------------------------
# The Section 4.1 and geometric tables (``python -m stability.rare``)


def _paper_cases(azure: bool = False):
    paper = Workload.paper_4_1(5.0)
    geometric = Workload((RequestClass(1.0, Deterministic(20), Geometric(1 / 50),
                                       name="l=20, o~Geometric(1/50)"),))
    slack_paper = (0, 250, 500, 1000, 1500, 2000, 3000, 4000, 5000)
    slack_geometric = (0, 1000, 2000, 3000, 4000, 6000, 8000, 10000)
    cases = [
        (paper, Budget(10, "deterministic"), slack_paper),
        (paper, Budget(11, "poisson"), slack_paper),
        (paper, Budget(11.5, "two-point"), slack_paper),
        (paper, Budget(12, "deterministic"), slack_paper),
        (geometric, Budget(4, "deterministic"), slack_geometric),
        (geometric, Budget(4, "poisson"), slack_geometric),
    ]
    if azure:
        import warnings

        from stability.workload.traces import azure_workload

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the synthetic stand-in is announced in the title
            conv = azure_workload("conv", 1.0)
        # sd(U) ~ 6.6e4 tokens for b = 10: slack grid up to ~9 sd.
        cases.append((conv, Budget(10, "deterministic"),
                      (0, 50_000, 100_000, 200_000, 300_000, 400_000, 600_000)))
    return cases


def paper_tables(samples: int = 100_000, mc_samples: int = 200_000, seed: int = 0,
                 alpha: float = 0.01, workers: int = 1, quick: bool = False,
                 azure: bool = False, mc_method: str = "direct") -> list:
    """The validation tables: the Sec. 4.1 classes under FlowControl budgets of mean
    10-12 (deterministic, Poisson, two-point), one unbounded geometric class (deterministic
    and Poisson budgets) and, with ``azure``, the Azure conv lengths (up to 1000 ages), over
    slack grids reaching 1e-12 and below.  ``quick``: two tables, fewer samples."""
    cases = _paper_cases(azure)
    if quick:
        cases = [cases[0], cases[4]] + cases[6:]
        samples, mc_samples = min(samples, 20_000), min(mc_samples, 50_000)
    out = []
    for workload, budget, slacks in cases:
        mean = demand_mean(workload, budget)
        memories = [int(round(mean + s)) for s in slacks]
        out.append(overflow_table(workload, budget, memories, samples, mc_samples, seed,
                                  alpha, True, workers, mc_method=mc_method))
    return out


