"""``backproplab play "EXPR" --var NAME=VALUE ... [--manual NAME=VALUE ...]``: the backward pass
of an expression, as a page that plays it step by step.

    $ backproplab play "tanh(x1*w1 + x2*w2 + b)" --var x1=2 --var x2=0 --var w1=-3 \\
          --var w2=1 --var b=6.8813735870195432 --manual w1=1 --manual x1=-3
    value = 0.7071
    ...
    first wrong: x1 (step 10): ...
    wrote backward.html

The expression is read by ``autograd.parse`` (never evaluated as Python), exactly as ``graph``
reads it, and its refusals are ``graph``'s: one line on stderr, exit 2. The page is
``viz.player.play``'s, saved whole or not at all.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from backproplab.autograd import naming

from .argtypes import int_from

# graph's parsing and refusals, shared so that the two commands refuse the same text alike
from .cmd_graph import _binding, _Failed, _fmt, add_bindings, build

__all__ = ["DEMO_EXPRESSION", "DEMO_VALUES", "register", "run", "write_demo_page"]

PROG = "backproplab play"

DEMO_EXPRESSION = "tanh(x1*w1 + x2*w2 + b)"
DEMO_VALUES = {"x1": 2.0, "x2": 0.0, "w1": -3.0, "w2": 1.0, "b": 6.8813735870195432}
"""The neuron of micrograd's lecture, which ``make demo`` plays."""


def _page_path(text: str) -> Path:
    """argparse type of ``-o``: an .html file."""
    path = Path(text)
    if path.suffix.lower() not in (".html", ".htm"):
        raise argparse.ArgumentTypeError(f"{text!r} must end in .html")
    return path


def register(commands: Any) -> None:
    """Add ``play`` to the ``backproplab`` subcommands (a registrar for ``viz.cli.COMMANDS``)."""
    from .player import MAX_NODES

    play = commands.add_parser(
        "play",
        help="an expression's backward pass, as a page that plays it step by step",
        description="Build the expression with autograd.parse (as 'graph' does), run it forward "
        "and backward, and write a self-contained HTML page that plays the backward pass one "
        "rule at a time. --manual gives your own gradients: the page marks the wrong ones and "
        "names the first, in backward order.",
        epilog='example: backproplab play "tanh(x1*w1 + x2*w2 + b)" --var x1=2 --var x2=0 '
        "--param w1=-3 --param w2=1 --param b=6.8813735870195432 --manual w1=1",
    )
    play.add_argument("expression", metavar="EXPR", help="the expression, quoted")
    add_bindings(play)
    play.add_argument(
        "--manual",
        action="append",
        type=_binding,
        default=[],
        metavar="NAME=VALUE",
        help="your own gradient d(EXPR)/d(NAME), to be checked on the page",
    )
    play.add_argument(
        "-o",
        "--output",
        type=_page_path,
        default=Path("backward.html"),
        metavar="FILE",
        help="the page (default: backward.html)",
    )
    play.add_argument(
        "--max-nodes",
        type=int_from(1),
        default=MAX_NODES,
        metavar="N",
        help=f"past this many nodes the page says so instead of drawing (default: {MAX_NODES})",
    )
    play.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Parse, run, write the page. Returns 0; 2 after one line for bad arguments; 1 when the
    page cannot be written. (A code rather than viz.cli's errors, for graph's reason.)"""
    try:
        return _run(args)
    except _Failed as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return e.code


def _run(args: argparse.Namespace) -> int:
    from .player import play

    root, leaves, _ = build(args.expression, args.var, args.param)
    manual: dict[str, float] = {}
    for name, value in args.manual:
        if name in manual:
            raise _Failed(f"--manual {name} is given twice")
        if name not in leaves:
            uses = ", ".join(leaves) if leaves else "no names"
            raise _Failed(f"--manual {name}: the expression has no such name (it uses {uses})")
        if not math.isfinite(value):
            raise _Failed(
                f"--manual {name}={value}: a manual gradient must be a finite number "
                f"(your derivation of d/d{name} is what to check, not NaN or infinity)"
            )
        manual[name] = value
    if not root.requires_grad:
        raise _Failed("the expression has no names, so it has no backward pass to play")
    try:
        page = play(root, manual or None, max_nodes=args.max_nodes)
    except (ValueError, TypeError) as e:
        raise _Failed(str(e)) from None
    print(f"value = {_fmt(root.data)}")
    names = naming.names(root)  # what the page calls each node
    for leaf in leaves.values():
        print(f"d/d{names[id(leaf)]} = {_fmt(leaf.grad)}")
    trace = page.trace
    if trace.get("too_big"):
        print(f"the graph has {trace['too_big']['nodes']:,} nodes: the page says so and draws none")
    if manual:
        first = trace["first_wrong"]
        if first is None:
            print(f"your gradients ({', '.join(manual)}) agree with the engine's")
        else:
            step = trace["nodes"][first]["complete_at"]
            name = trace["nodes"][first]["name"]
            print(f"first wrong: {name} (step {step}): {trace['diagnosis']['text']}")
    try:
        written = page.save(args.output)
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        raise _Failed(f"cannot write {where}{e.strerror or e}", 1) from None
    print(f"wrote {written}")
    return 0


def write_demo_page(folder: Path) -> Path:
    """Play micrograd's neuron (``DEMO_EXPRESSION``) into ``folder``/backward.html; its path.

    Raises OSError when the page cannot be written.
    """
    from backproplab.autograd import Value, parse

    from .player import play

    leaves = {name: Value(x, label=name) for name, x in DEMO_VALUES.items()}
    root = parse(DEMO_EXPRESSION, **leaves)
    root.label = "o"
    return play(root, title=f"The backward pass of {DEMO_EXPRESSION}").save(
        Path(folder) / "backward.html"
    )
