"""The page: ``play(root)`` and the ``Page`` it returns, one self-contained HTML file."""

from __future__ import annotations

import html
import json
import math
import os
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from backproplab.autograd import Node
from backproplab.nn.files import write_bytes

from . import manual as manual_check
from .drawing import svg
from .layout import LAYERED_NODES, columns
from .trace import build, read, walk

MAX_NODES = 3_000
"""The most nodes a page draws: a bigger graph gives a page that says so and how to shrink it.
A page of a scalar MLP's 3,000 Values takes a few seconds to open (bench/README.md), and more
than that is no longer a picture a reader follows step by step."""

MANUAL_RTOL = 1e-3
MANUAL_ATOL = 1e-9
"""A learner's gradient m is right when |m - g| <= atol + rtol |g| for every element, g the
engine's. Relative 1e-3, because learners type numbers rounded to a few digits."""

_BIG = 300  # from this many nodes on, the page keeps only the active node's edge labels


class Page:
    """A played backward pass: ``html`` (the whole page) and ``trace`` (what it carries).

    Jupyter shows it inline through ``_repr_html_``, as wide as the cell; ``save(path)`` writes
    the page to a file.
    """

    def __init__(self, html_text: str, trace: dict[str, Any]) -> None:
        self.html = html_text
        self.trace = trace

    def _repr_html_(self) -> str:
        # An iframe of its own: the page's ids, styles and keys cannot clash with the notebook's
        # or with another page shown in the same notebook. The page fits whatever width it gets.
        return (
            f'<iframe srcdoc="{html.escape(self.html, quote=True)}" '
            'style="width: 100%; height: 680px; border: 1px solid #ccc; box-sizing: border-box" '
            'title="backward pass"></iframe>'
        )

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the page to ``path`` (folders created as needed) and return the path.

        It is written by the rules of ``nn.files.safe_write``, as every file the library writes:
        a failed save leaves the old file whole, a symlink stays a link, an existing file keeps
        its permissions, and a device, FIFO or folder is never replaced. Raises OSError naming
        ``path`` when it cannot be written.
        """
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_bytes(target, self.html.encode("utf-8"))
        return target

    def __repr__(self) -> str:
        t = self.trace
        return f"<backward-pass page: {len(t['nodes'])} nodes, {len(t['steps'])} steps>"


def play(
    root: Node,
    manual: Mapping[str, Any] | None = None,
    model: Any = None,
    *,
    max_nodes: int = MAX_NODES,
    rtol: float = MANUAL_RTOL,
    atol: float = MANUAL_ATOL,
    title: str | None = None,
) -> Page:
    """Build the page that plays the backward pass from ``root``, one rule at a time.

    Args:
        root: a Value, or a Tensor with a single element. When no backward pass has been run
            from it yet (its ``.grad`` is unset), ``play`` runs ``root.backward()`` first, so the
            graph's ``.grad`` fields agree with the page.
        manual: the learner's own gradients, by node label (a Value's ``label``, a Tensor's
            ``name``, or with ``model=`` a parameter's dotted name): finite floats, or arrays of
            the node's shape. Each is judged against the engine's within
            ``atol + rtol |engine|``, and the page names the first wrong one in backward order
            and says why (in ``autograd.diagnose``'s words).
        model: an ``nn`` Module; its parameters get their dotted names and each layer's
            parameters are drawn in a labelled box, as ``draw_graph`` groups them.
        max_nodes: past this many nodes the page draws nothing and says how to shrink the graph.
        rtol, atol: the tolerance for ``manual``, stated on the page: finite, >= 0, not both 0.
        title: the page's heading (default: "The backward pass, step by step").

    Returns:
        a ``Page``.

    Raises:
        TypeError: root is not a Value or Tensor; model is not an nn Module; a manual gradient
            is not a number or array.
        ArithmeticError: a rule divides by zero or overflows on floats (sqrt at 0), as the
            engine's backward pass does there.
        ValueError: root needs no gradient, or is a Tensor of more than one element; a manual
            name is not a label in the graph, or labels more than one node; a manual gradient has
            the wrong shape or is not finite; max_nodes below 1; a tolerance that is negative,
            not finite, or both zero; a label or title no file can hold (a lone surrogate).
    """
    _check_arguments(root, max_nodes, rtol, atol)
    top = read(root)
    _check_root(top)
    heading = title or "The backward pass, step by step"
    _check_text("title", heading)
    views = walk(root)
    for v in views:
        _check_text("label", v.label)
    if len(views) > max_nodes:
        return _too_big(heading, len(views), max_nodes)
    if _unset(top.node.grad):
        root.backward()  # the page replays the pass itself; this fills the graph's .grad too
    trace = build(views, model)
    if manual is not None:
        manual_check.check(trace, views, manual, rtol, atol)
    return Page(_page(heading, trace), trace)


def _check_root(top: Any) -> None:
    """A pass to play: the root needs a gradient and is a single number (a loss)."""
    if not top.requires_grad:
        raise ValueError(
            "play() needs a root that requires grad: this one was made from constants only, "
            "or under no_grad(), so there is no backward pass to play"
        )
    if top.is_array and np.size(top.data) != 1:
        raise ValueError(
            f"play() needs a root with a single element (a loss), got a Tensor of shape "
            f"{np.shape(top.data)}: reduce it first, e.g. with .sum()"
        )


def _check_arguments(root: Any, max_nodes: Any, rtol: Any, atol: Any) -> None:
    if not isinstance(root, Node):
        raise TypeError(f"play() plays a Value or a Tensor, got {type(root).__name__}")
    if isinstance(max_nodes, bool) or not isinstance(max_nodes, int) or max_nodes < 1:
        raise ValueError(f"max_nodes must be an int >= 1, got {max_nodes!r}")
    for name, tol in (("rtol", rtol), ("atol", atol)):
        if isinstance(tol, bool) or not isinstance(tol, (int, float)):
            raise TypeError(f"{name} must be a number, got {type(tol).__name__}")
        if not (math.isfinite(tol) and tol >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {tol!r}")
    if rtol == 0 and atol == 0:
        raise ValueError("rtol and atol are both 0: no typed gradient could ever be judged right")


def _check_text(what: str, text: str) -> None:
    """Refuse text that no UTF-8 file can hold (a lone surrogate), naming it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(
            f"the {what} {text!r} holds a lone surrogate ({text[e.start]!r} at position "
            f"{e.start}), which no page file can hold: give it real characters"
        ) from None


def _unset(grad: Any) -> bool:
    """No backward pass has reached this node: a Value's 0.0 or a Tensor's None."""
    if grad is None:
        return True
    g = grad.data if isinstance(grad, Node) else grad
    return isinstance(g, float) and g == 0.0


def _script_json(data: Any) -> str:
    """JSON that cannot end the <script> element it sits in, whatever the labels say."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _public(trace: dict[str, Any]) -> dict[str, Any]:
    """The trace without its private fields (the unrounded arrays kept for checking)."""
    for node in trace["nodes"]:
        node.pop("_grad", None)
    for edge in trace["edges"]:
        edge.pop("_c", None)
    return trace


def _page(heading: str, trace: dict[str, Any]) -> str:
    layered = len(trace["nodes"]) <= LAYERED_NODES
    picture = svg(trace, None if layered else columns(trace))
    data = _script_json(_public(trace))
    flags = (" big" if len(trace["nodes"]) >= _BIG else "") + (" layered" if layered else "")
    tol = trace["tolerance"]
    tolerance = (
        f"Your gradients are judged against the engine's: right when |yours − engine| ≤ "
        f"{tol['atol']:g} + {tol['rtol']:g}·|engine|, element by element."
        if tol
        else ""
    )
    if not layered:
        tolerance += (
            f" This graph has more than {LAYERED_NODES} nodes, so it is drawn in plain columns:"
            " its edges may pass behind boxes."
        )
    return _fill(heading, flags, html.escape(tolerance.strip()), picture, data)


def _too_big(heading: str, count: int, limit: int) -> Page:
    trace: dict[str, Any] = {
        "nodes": [],
        "edges": [],
        "steps": [],
        "order": [],
        "first_wrong": None,
        "too_big": {"nodes": count, "limit": limit},
    }
    notice = (
        f"This graph has {count:,} nodes, more than the {limit:,} this page draws: a picture "
        "that big is unreadable and slow to open. Group it: build the model from Tensors (one "
        "node per layer, e.g. an nn.MLP on a batch) and pass model= to box each layer; or play "
        "a smaller piece (one sample, one layer, one sub-expression); or raise max_nodes."
    )
    body = f'<p id="too-big">{html.escape(notice)}</p>'
    return Page(_fill(heading, " too-big", "", body, _script_json(trace)), trace)


def _fill(heading: str, flags: str, tolerance: str, body: str, data: str) -> str:
    """The template with its slots filled in one pass, so no inserted text is read as a slot."""
    parts = {
        "TITLE": html.escape(heading),
        "BIG": flags,
        "TOLERANCE": tolerance,
        "SVG": body,
        "CSS": _asset("player.css"),
        "DAGRE": _asset("dagre.min.js") if "layered" in flags else "",
        "JS": _asset("player.js"),
        "TRACE": data,
    }
    return re.sub(r"@@([A-Z]+)@@", lambda m: parts[m.group(1)], _asset("player.html"))


def _asset(name: str) -> str:
    """The page's template, style sheet or scripts: files of their own beside this module."""
    return (resources.files(__package__) / name).read_text(encoding="utf-8")
