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

__all__ = [
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
