"""Admission policies (docs/model.md section 4), registered by kind.

Every module of this package is imported here, so a policy class defined in any of them
(``class MyPolicy(Policy, kind="mine")``) is known to the command line, sweeps, the
results store and the property tests with no further edit.
"""

from __future__ import annotations

import importlib
import pkgutil

from stability.policies.base import Policy, from_spec, param, policy_class, registry

_FIRST = ("flow", "fcfs", "predicted")  # the registry lists the kinds in this order
for _name in (*_FIRST, *sorted(m.name for m in pkgutil.iter_modules(__path__))):
    if _name != "base":
        importlib.import_module(f"{__name__}.{_name}")

from stability.policies.adaptive import AdaptiveFlow, CheckedFlow, PredictedFlow  # noqa: E402
from stability.policies.fcfs import VLLM, Conservative, Greedy, PacedGreedy  # noqa: E402
from stability.policies.flow import ClassBudgets, FlowControl  # noqa: E402
from stability.policies.predicted import MCSF, AMax, AMin, MCBenchmark  # noqa: E402
from stability.policies.volume import SVF  # noqa: E402

__all__ = ["Policy", "param", "registry", "policy_class", "from_spec", "FlowControl",
           "ClassBudgets", "Greedy", "VLLM", "PacedGreedy", "Conservative", "AMax", "MCSF",
           "MCBenchmark", "AMin", "SVF", "AdaptiveFlow", "CheckedFlow", "PredictedFlow"]
