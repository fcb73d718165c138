"""The ``stability`` command line: one module per subcommand.

Each subcommand module defines ``HELP``, ``add_arguments(parser)`` and ``run(args)``.
Commands of other installed packages join through the ``stability.commands`` entry-point
group (the reproduction of the paper's figures, ``stability reproduce``, is provided by
the repository's ``experiments`` package that way).  Bad input prints one line
``stability: error: ...`` and exits with status 2; Ctrl-C exits with 130.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from importlib.metadata import entry_points

from stability.cli.common import CliError

__all__ = ["main", "CliError", "COMMANDS"]

COMMANDS = ("simulate", "sweep", "results", "analyze", "rare")
"""Subcommands of this package, each a module ``stability.cli.<name>``."""


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line, without the usage block."""

    def error(self, message):
        raise CliError(message)


def _plugins() -> dict:
    """name -> loader of the subcommands other packages register."""
    return {ep.name: ep.load for ep in entry_points(group="stability.commands")
            if ep.name not in COMMANDS}


def build_parser() -> argparse.ArgumentParser:
    from stability import __version__

    parser = _Parser(prog="stability",
                     description="Flow-controlled scheduling for LLM inference: simulation, "
                                 "theory, figures.")
    parser.add_argument("--version", action="version", version=f"stability {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    handlers = {}
    modules = {name: importlib.import_module(f"stability.cli.{name}") for name in COMMANDS}
    for name, load in _plugins().items():
        try:
            modules[name] = load()
        except ImportError:  # a plugin whose package is not importable here
            continue
    for name, module in modules.items():
        sub_parser = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(sub_parser)
        handlers[name] = module.run
    parser.set_defaults(handlers=handlers)
    return parser


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        args = parser.parse_args(_attach_dash_values(parser, argv))
        return args.handlers[args.command](args)
    except (ValueError, FileNotFoundError) as err:
        print(f"stability: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("stability: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. head: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _attach_dash_values(parser, argv: list) -> list:
    """``--budgets -1,4,4``: a value starting with a dash after an option that takes one
    is that option's value (argparse would read it as an unknown option)."""
    takes_value = set()
    stack = [parser]
    while stack:
        p = stack.pop()
        for action in p._actions:
            if action.option_strings and action.nargs is None and action.const is None \
                    and not isinstance(action, argparse._VersionAction):
                takes_value.update(action.option_strings)
            if isinstance(action, argparse._SubParsersAction):
                stack.extend(action.choices.values())
    out = []
    i = 0
    while i < len(argv):
        token = argv[i]
        if token in takes_value and i + 1 < len(argv) and argv[i + 1].startswith("-") \
                and argv[i + 1] not in takes_value and len(argv[i + 1]) > 1 \
                and not argv[i + 1].startswith("--"):
            out.append(f"{token}={argv[i + 1]}")
            i += 2
            continue
        out.append(token)
        i += 1
    return out
