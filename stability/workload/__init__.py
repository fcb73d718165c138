"""Workloads: request arrays, length laws, Poisson classes (docs/model.md section 1)."""

from stability.workload.laws import (
    Deterministic,
    Empirical,
    Geometric,
    LengthLaw,
    LogNormal,
    UniformInt,
    parse_law,
)
from stability.workload.poisson import RequestClass, Workload
from stability.workload.requests import Requests

__all__ = ["Requests", "LengthLaw", "Deterministic", "Geometric", "UniformInt", "Empirical",
           "LogNormal", "parse_law", "RequestClass", "Workload"]
