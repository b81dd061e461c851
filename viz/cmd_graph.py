"""``backproplab graph "EXPR" --var NAME=VALUE --param NAME=VALUE ...``: an expression's value,
gradients and graph.

    $ backproplab graph "tanh(x1*w1 + x2*w2 + b)" --var x1=2 --var x2=0 --param w1=-3 \\
          --param w2=1 --param b=6.8813735870195432
    value = 0.7071
    d/dx1 = -1.5
    ...
    wrote graph.svg

The rule for inputs and parameters: a name given with ``--var`` is an input (data), one given
with ``--param`` a parameter (what training would change). Both get their gradient printed and
drawn; the picture tells them apart. The expression is read by ``autograd.parse`` (never
evaluated as Python), run forward and backward, and drawn by ``viz.graph.draw_graph``. Refused
text, a name without a value, a value the expression does not use, a malformed ``--var`` or
``--param`` and a domain error (the log of a negative number) each print one line on stderr and
exit 2.
"""

from __future__ import annotations

import argparse
import keyword
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from backproplab.autograd import naming

from .argtypes import int_from

__all__ = ["DIGITS", "register", "run"]

PROG = "backproplab graph"

DIGITS = 4
"""Significant digits of the printed value and gradients."""

_SUFFIXES = (".svg", ".png", ".pdf", ".gv", ".dot")


def _binding(text: str) -> tuple[str, float]:
    """argparse type of ``--var``: NAME=NUMBER, NAME a Python identifier."""
    name, equals, number = text.partition("=")
    name = name.strip()
    if not equals or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=NUMBER, got {text!r}")
    if not name.isidentifier() or keyword.iskeyword(name):
        raise argparse.ArgumentTypeError(f"{name!r} is not a name (in {text!r})")
    try:
        value = float(number)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{number.strip()!r} is not a number (in {text!r})"
        ) from None
    return name, value


_binding.__name__ = "NAME=NUMBER"  # argparse names the type in some messages


def _picture(text: str) -> Path:
    """argparse type of ``-o``: a file whose suffix names a format render knows."""
    path = Path(text)
    if path.suffix.lower() not in _SUFFIXES:
        raise argparse.ArgumentTypeError(
            f"{text!r} must end in .svg, .png or .pdf (or .gv for the DOT source alone)"
        )
    return path


def add_bindings(command: argparse.ArgumentParser) -> None:
    """Add ``--var`` (an input's value) and ``--param`` (a parameter's) to a subcommand that
    reads an expression: ``graph`` and ``play`` take the same names the same way."""
    for option, what in (
        ("--var", "an input (data)"),
        ("--param", "a parameter (a weight or bias)"),
    ):
        command.add_argument(
            option,
            action="append",
            type=_binding,
            default=[],
            metavar="NAME=VALUE",
            help=f"the value of {what} in EXPR; one {option} per name",
        )


def register(commands: Any) -> None:
    """Add ``graph`` to the ``backproplab`` subcommands (a registrar for ``viz.cli.COMMANDS``)."""
    from backproplab.autograd.parse import FUNCTIONS

    graph = commands.add_parser(
        "graph",
        help="an expression's value, gradients and computation graph",
        description="Build the expression with autograd.parse (numbers, names, + - * / **, "
        f"parentheses and {' '.join(FUNCTIONS)}), run it forward and backward, print its value "
        "and the gradient of every name, and draw its graph. Names given with --var are "
        "inputs, names given with --param are parameters: both get gradients, the picture "
        "tells them apart.",
        epilog='example: backproplab graph "tanh(x1*w1 + x2*w2 + b)" --var x1=2 --var x2=0 '
        "--param w1=-3 --param w2=1 --param b=6.8813735870195432",
    )
    graph.add_argument("expression", metavar="EXPR", help="the expression, quoted")
    add_bindings(graph)
    graph.add_argument(
        "-o",
        "--output",
        type=_picture,
        default=Path("graph.svg"),
        metavar="FILE",
        help="the picture: .svg, .png or .pdf (default: graph.svg); the DOT source is "
        "written beside it as .gv",
    )
    graph.add_argument(
        "--rankdir", choices=("LR", "TB"), default="LR", help="LR: left to right (default); TB"
    )
    graph.add_argument(
        "--decimals",
        type=int_from(1, 18),
        default=DIGITS,
        metavar="N",
        help=f"significant digits of the numbers printed and drawn (default: {DIGITS})",
    )
    graph.add_argument(
        "--no-legend",
        dest="legend",
        action="store_false",
        help="draw no legend of the kinds of node",
    )
    graph.add_argument(
        "--max-nodes",
        type=int_from(1),
        default=1000,
        metavar="N",
        help="refuse to draw a graph of more nodes (default: 1000)",
    )
    graph.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Parse, run forward and backward, print the value and gradients, draw the graph.

    Returns 0; 2 after one line on stderr for refused text, missing, unused, repeated or
    malformed ``--var``s, a graph over ``--max-nodes`` and domain errors; 1 after one line when
    the picture cannot be written. (It returns the code rather than raising ``viz.cli``'s
    errors: under ``python -m backproplab.viz.cli`` that module runs as ``__main__``, and an error
    class imported from ``viz.cli`` would be another class than the one its ``main`` catches.)
    """
    try:
        return _run(args)
    except _Failed as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return e.code


class _Failed(Exception):
    """One line for stderr, and the exit code."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def build(
    text: str, var: Sequence[tuple[str, float]], param: Sequence[tuple[str, float]] = ()
) -> tuple[Any, dict[str, Any], set[str]]:
    """The expression's root Value after a backward pass, its named leaves by name, and which
    of those names are parameters (given with --param) rather than inputs (--var).

    Shared by ``graph`` and ``play``. Raises ``_Failed`` (exit 2, one line) for refused text,
    a name given twice, missing or unused, and domain errors.
    """
    from backproplab.autograd import ParseError, Value, parse
    from backproplab.autograd.parse import expression_names

    from .cli_hints import expression_hint

    values: dict[str, float] = {}
    params: set[str] = set()
    given = {name: "--var" for name, _ in var}
    for option, bindings in (("--var", var), ("--param", param)):
        for name, value in bindings:
            if name in values:
                first = "--param" if name in params else given[name]
                twice = "is given twice" if first == option else f"is given as {first} too"
                raise _Failed(f"{option} {name} {twice}")
            values[name] = value
            if option == "--param":
                params.add(name)
    try:
        names = expression_names(text)
    except ParseError as e:
        raise _Failed(f"cannot read the expression: {e}{expression_hint(text)}") from None
    missing = [n for n in names if n not in values]
    if missing:
        raise _Failed(
            f"no value for {', '.join(missing)}: give "
            + " ".join(f"--var {n}=NUMBER" for n in missing)
            + " (or --param, for a parameter)"
        )
    unused = [n for n in values if n not in names]
    if unused:
        uses = ", ".join(names) if names else "no names"
        option = "--param" if unused[0] in params else "--var"
        raise _Failed(f"{option} {unused[0]}: the expression does not use it (it uses {uses})")

    leaves = {name: Value(values[name], label=name) for name in names}
    try:
        root = parse(text, **leaves)
        if root.requires_grad:  # an expression of numbers alone has no gradients
            root.backward()
    except ParseError as e:  # checked above; kept so that no refusal becomes a traceback
        raise _Failed(f"cannot read the expression: {e}") from None
    except (ValueError, ArithmeticError) as e:  # the engine's domain errors
        raise _Failed(f"cannot compute the expression: {e}") from None
    return root, leaves, params


def _run(args: argparse.Namespace) -> int:
    root, leaves, params = build(args.expression, args.var, args.param)

    from .graph import FORMATS, draw_graph, render

    path: Path = args.output
    fmt = path.suffix.lower().lstrip(".")
    try:
        picture = draw_graph(
            root,
            rankdir=args.rankdir,
            format=fmt if fmt in FORMATS else "svg",
            decimals=args.decimals,
            max_nodes=args.max_nodes,
            legend=args.legend,
            inputs=[leaf for name, leaf in leaves.items() if name not in params],
        )
    except ValueError as e:  # more nodes than --max-nodes
        raise _Failed(f"{e} (--max-nodes raises the limit)") from None
    # Printed once the graph is known to be drawable, so a refusal prints nothing else.
    print(f"value = {_fmt(root.data, args.decimals)}")
    names = naming.names(root)  # what the picture calls each node
    for leaf in leaves.values():
        print(f"d/d{names[id(leaf)]} = {_fmt(leaf.grad, args.decimals)}")
    try:
        written = render(picture, path)
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        raise _Failed(f"cannot write {where}{e.strerror or e}", 1) from None
    except RuntimeError as e:  # dot is there but failed
        raise _Failed(str(e), 1) from None
    print(f"wrote {written}")
    return 0


def _fmt(x: float, digits: int = DIGITS) -> str:
    """``digits`` significant digits; -0 printed as 0."""
    if math.isnan(x):
        return "nan"
    return f"{x + 0.0:.{digits}g}"
