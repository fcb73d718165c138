"""Old location of :mod:`stability.theory.rare` (kept so that existing imports work; the
command line is ``stability rare``)."""

from stability.theory.rare import *  # noqa: F401,F403
from stability.theory.rare import __all__  # noqa: F401
