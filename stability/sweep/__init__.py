"""Sweeps: grids of simulation runs on any ``concurrent.futures.Executor``, stored in a
resumable results store (``spec``: what to run; ``run``: running it)."""

from stability.sweep.run import SweepError, SweepReport, local_executor, run_sweep, run_task
from stability.sweep.spec import Sweep, Task, WorldSpec, load_config, task_seed
from stability.workload.spec import WorkloadSpec

__all__ = ["WorkloadSpec", "WorldSpec", "Sweep", "Task", "SweepReport", "SweepError",
           "load_config", "run_task", "run_sweep", "task_seed", "local_executor"]
