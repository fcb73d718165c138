"""The ``stability`` command line: one module per subcommand.

Each subcommand module defines ``HELP``, ``add_arguments(parser)`` and ``run(args)``.
Commands of other installed packages join through the ``stability.commands`` entry-point
group (the reproduction of the paper's figures, ``stability reproduce``, is provided by
the repository's ``experiments`` package that way; it is not installed with the wheel,
so an editable install finds it in its source checkout).

Bad input prints one line ``stability: error: ...`` and exits with status 2, with nothing
written: a usage error, a value out of range, a file that cannot be read or a place that
cannot be written, a run that would not fit in memory.  Warnings are one line
``stability: warning: ...``.  Ctrl-C exits with 130.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import warnings
from importlib.metadata import entry_points
from pathlib import Path

from stability.cli.common import CliError

__all__ = ["main", "CliError", "COMMANDS"]

COMMANDS = ("simulate", "sweep", "results", "analyze", "rare", "tune")
"""Subcommands of this package, each a module ``stability.cli.<name>``."""


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line, without the usage block."""

    def error(self, message):
        raise CliError(message)


def _checkout() -> Path | None:
    """The source checkout this package runs from (an editable install), if any."""
    root = Path(__file__).resolve().parents[2]
    pyproject = root / "pyproject.toml"
    try:
        if pyproject.is_file() and 'name = "stability"' in pyproject.read_text():
            return root
    except OSError:
        pass
    return None


def _load(ep):
    """Load a plugin; a module of this project's checkout that the wheel leaves out
    (``experiments``) is found in the checkout of an editable install."""
    try:
        return ep.load()
    except ImportError:
        root = _checkout()
        if root is None or str(root) in sys.path or not (
                root / ep.value.split(".")[0].split(":")[0]).is_dir():
            raise
        sys.path.append(str(root))
        return ep.load()


class _Unavailable:
    """A registered command whose package cannot be imported here."""

    def __init__(self, name: str, err: ImportError):
        self.HELP = f"(unavailable here: {err})"
        self._text = (f"{name} is not available in this installation ({err}); it needs the "
                      "source checkout: git clone the repository and pip install -e .")

    def add_arguments(self, parser) -> None:
        parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)

    def run(self, args) -> int:
        raise CliError(self._text)


def _plugins() -> dict:
    """name -> loader of the subcommands other packages register."""
    return {ep.name: (lambda ep=ep: _load(ep)) for ep in entry_points(group="stability.commands")
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
        except ImportError as err:  # a plugin whose package is not importable here
            modules[name] = _Unavailable(name, err)
    for name, module in modules.items():
        sub_parser = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(sub_parser)
        handlers[name] = module.run
    parser.set_defaults(handlers=handlers)
    return parser


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    """Warnings as ``stability: warning: ...`` (no source line)."""
    print(f"stability: warning: {message}", file=sys.stderr if file is None else file)


def _os_error_text(err: OSError) -> str:
    """An OSError as one line naming the file: "cannot write PATH: Read-only file system"."""
    what = err.strerror or str(err)
    name = err.filename
    if name is None:
        return what
    return f"{name}: {what}"


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    previous = warnings.showwarning
    warnings.showwarning = _one_line_warning
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("stability: %(message)s"))
    logger = logging.getLogger("stability")
    logger.addHandler(handler)
    try:
        parser = build_parser()
        args = parser.parse_args(_attach_dash_values(parser, argv))
        return args.handlers[args.command](args)
    except ValueError as err:
        print(f"stability: error: {err}", file=sys.stderr)
        return 2
    except MemoryError as err:
        print(f"stability: error: {err or 'out of memory'}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("stability: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. head: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as err:  # a file that cannot be read, a place that cannot be written
        print(f"stability: error: {_os_error_text(err)}", file=sys.stderr)
        return 2
    finally:
        warnings.showwarning = previous
        logger.removeHandler(handler)


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
