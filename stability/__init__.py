"""stability: flow-controlled scheduling for LLM inference, simulated and checked.

Reproduces and extends Dong & Cao, "Flow-Controlled Scheduling for LLM Inference with
Provable Stability Guarantees" (arXiv 2604.11001).  See DESIGN.md for the model.
"""

from stability.workload import (
    Deterministic,
    Empirical,
    Geometric,
    LengthLaw,
    LogNormal,
    RequestClass,
    Requests,
    UniformInt,
    Workload,
)

__version__ = "0.1.0"

from stability.policies import (  # noqa: E402
    MCSF,
    AMax,
    AMin,
    ClassBudgets,
    Conservative,
    FlowControl,
    Greedy,
    MCBenchmark,
    Policy,
)
from stability.predictions import Predictions  # noqa: E402
from stability.simulate import simulate, simulate_stream, simulate_streams  # noqa: E402

__all__ = [
    "AMax",
    "AMin",
    "MCBenchmark",
    "MCSF",
    "Predictions",
    "ClassBudgets",
    "Conservative",
    "FlowControl",
    "Greedy",
    "Policy",
    "simulate",
    "simulate_stream",
    "simulate_streams",
    "Deterministic",
    "Empirical",
    "Geometric",
    "LengthLaw",
    "LogNormal",
    "RequestClass",
    "Requests",
    "UniformInt",
    "Workload",
    "__version__",
]
