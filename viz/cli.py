"""The ``backproplab`` command line: ``demo`` (see ``cmd_demo``), ``graph``, ``check``, ``play``.

Each subcommand lives in a module of its own (``cmd_demo``, ``cmd_graph``, ``cmd_check``,
``cmd_play``) and is registered by one function in ``COMMANDS``; a new one adds its registrar
there. Exit codes: 0 success, 1 the pictures could not be written, 2 bad
arguments (one line on stderr, never a traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from .argtypes import OutputError, UsageError
from .cli_hints import usage_hint
from .cmd_check import add_check as _add_check
from .cmd_demo import CIRCLE, CONFIGURABLE_MLP, RELU
from .cmd_demo import register as _add_demo
from .cmd_graph import register as _add_graph
from .cmd_play import register as _add_play

__all__ = ["COMMANDS", "OutputError", "UsageError", "build_parser", "main"]

PROG = "backproplab"


class _Parser(argparse.ArgumentParser):
    """argparse, but its errors are one line (no usage block) and raise instead of exiting, so
    ``main`` decides the exit code and in-process callers (tests) get a return value."""

    def error(self, message: str) -> NoReturn:
        hint = usage_hint(message)  # chek: did you mean check? x=3: --var x=3
        raise UsageError(f"{self.prog}: error: {message}{hint} (see '{self.prog} --help')")


COMMANDS: list[Callable[[Any], None]] = [_add_demo, _add_graph, _add_check, _add_play]
"""Registrars, one per subcommand: each adds its parser and sets ``run`` (args -> exit code)."""


def build_parser() -> argparse.ArgumentParser:
    """The ``backproplab`` parser, with every subcommand in ``COMMANDS``."""
    parser = _Parser(
        prog=PROG,
        description="backproplab: a small autograd engine to learn, teach and check "
        f"backpropagation, with three example networks ({CIRCLE}, {RELU}, "
        f"{CONFIGURABLE_MLP}) and pictures.",
    )
    from backproplab import __version__  # the installed distribution's metadata

    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command")
    commands.required = True
    for register in COMMANDS:
        register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line on ``argv`` (default ``sys.argv[1:]``) and return the exit code.

    0 on success; 2 for bad arguments and 1 when pictures cannot be written, each after one
    line on stderr. ``--help`` prints the help and returns 0.
    """
    try:
        args = build_parser().parse_args(argv)
        code: int = args.run(args)
    except UsageError as e:
        print(e, file=sys.stderr)
        return 2
    except OutputError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    except SystemExit as e:  # --help: argparse has printed it and wants to exit
        return e.code if isinstance(e.code, int) else 0
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`backproplab demo | head`): stop quietly, as Unix tools do. Point
        # stdout at /dev/null so the interpreter's final flush does not fail a second time.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a tool killed by the signal
    return code


if __name__ == "__main__":
    # Run the imported viz.cli, not this __main__ copy of it: subcommands raise viz.cli's
    # UsageError, which this copy's main() would not recognise as its own class.
    from backproplab.viz.cli import main as _main

    sys.exit(_main())
