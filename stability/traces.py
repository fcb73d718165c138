"""Old location of :mod:`stability.workload.traces` (kept so that existing imports work)."""

from stability.workload.traces import *  # noqa: F401,F403
from stability.workload.traces import DEFAULT_SLOT_SECONDS, __all__  # noqa: F401
