"""``stability reproduce``: run every experiment, draw every figure, write VERIFICATION.md.

The logic lives in :mod:`experiments.run` (experiments are the layer above the library);
this module only adapts it to the ``stability`` command line.
"""

from __future__ import annotations


def add_arguments(parser) -> None:
    from experiments.run import add_arguments as add

    add(parser)


def run_command(args) -> int:
    from experiments.run import run_command as run

    return run(args)
