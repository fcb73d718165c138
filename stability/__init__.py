"""stability: flow-controlled scheduling for LLM inference, simulated and checked.

Reproduces and extends Dong & Cao, "Flow-Controlled Scheduling for LLM Inference with
Provable Stability Guarantees" (arXiv 2604.11001).  The model, the policies and the
theory are written down in the repository's ``docs/model.md``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("stability")
except PackageNotFoundError:  # a source tree that is not installed
    __version__ = "0+unknown"

from stability import provenance  # noqa: E402

provenance.isolate_numba_cache()  # before any jitted function is defined

from stability import clock  # noqa: E402
from stability.budgets import Budget  # noqa: E402
from stability.policies import (  # noqa: E402
    MCSF,
    SVF,
    VLLM,
    AdaptiveFlow,
    AMax,
    AMin,
    CheckedFlow,
    ClassBudgets,
    Conservative,
    FlowControl,
    Greedy,
    MCBenchmark,
    PacedGreedy,
    Policy,
    PredictedFlow,
)
from stability.predictions import Predictions  # noqa: E402
from stability.simulate import simulate, simulate_stream, simulate_streams  # noqa: E402
from stability.workload import (  # noqa: E402
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

__all__ = [
    "AMax", "AMin", "MCBenchmark", "MCSF", "SVF", "VLLM", "PacedGreedy", "AdaptiveFlow",
    "CheckedFlow", "PredictedFlow", "Predictions", "ClassBudgets",
    "Conservative", "FlowControl", "Greedy", "Policy", "Budget", "clock",
    "simulate", "simulate_stream", "simulate_streams",
    "Deterministic", "Empirical", "Geometric", "LengthLaw", "LogNormal", "RequestClass",
    "Requests", "UniformInt", "Workload", "__version__",
]
