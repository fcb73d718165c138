"""Benchmarks of the simulation engines: ``python -m benchmarks`` prints the numbers."""
