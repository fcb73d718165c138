"""``stability reproduce``: this package's subcommand of the ``stability`` command line.

Registered in ``pyproject.toml`` under the ``stability.commands`` entry-point group, so
the library finds it without importing the experiments itself.
"""

from experiments.run import add_arguments, run_command

HELP = "run every experiment, draw every figure, write VERIFICATION.md"
__all__ = ["HELP", "add_arguments", "run"]


def run(args) -> int:
    return run_command(args)
