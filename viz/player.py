"""The backward pass, played step by step: one self-contained HTML page built from a graph.

``play(root)`` walks everything that produced ``root``, replays the backward pass one node at a
time through the ops' own rules, and returns a ``Page``: Jupyter shows it inline, and
``page.save("backward.html")`` writes one file that opens from disk in any browser. The page
needs no network, no CDN and no server, and its layout is computed here, so Graphviz's ``dot``
is not needed either.

What the page carries, for other tools as much as for the eye: one
``<script type="application/json" id="backprop-trace">`` holding the trace (``Page.trace``):

- ``nodes``: ``id``, ``label``, ``op``, ``kind`` (root, computed, parameter, input), ``value``,
  ``grad`` (d root / d node, from one pass seeded with 1; None for a node that needs no
  gradient), ``formula`` (the op's docstring: ``out = tanh(x);  dx = g * (1 - out ** 2)``).
  A Tensor's node adds ``shape``, ``dtype`` and ``summary`` (min, max, mean and norm of its value
  and gradient); its ``value`` and ``grad`` are the full arrays (nested lists) when they have at
  most ``FULL_ARRAY`` elements, else None. With ``manual=`` a node the learner gave a gradient
  for has ``manual`` and ``verdict`` ("right" or "wrong").
- ``edges``: ``source`` (an input), ``target`` (the node computed from it), ``input`` (its
  position among the target's inputs; ``a * a`` has two edges), ``local`` (d target / d source
  at the forward values, for scalars; None for arrays, whose local derivative is a Jacobian),
  ``contribution`` (what the target's rule sends back along the edge: local times the target's
  gradient) and ``filled`` (the rule's formula with the numbers put in, for scalars).
- ``steps``: the ids of the nodes that need a gradient, in the order the pass visits them, root
  first; every node comes after all the nodes it feeds, so its gradient is complete when its
  step comes.
- ``first_wrong``: the first node in ``steps`` whose manual gradient is wrong (or None), and
  ``diagnosis``: where the learner's derivation went wrong there (their upstream gradient or
  their local derivative) and whether their value is off by exactly the local factor.

Numbers that are not finite are written as the strings "NaN", "Infinity" and "-Infinity", which
JSON cannot hold as numbers.
"""

from __future__ import annotations

import functools
import html
import inspect
import json
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from backproplab.autograd import Node
from backproplab.nn.files import write_bytes

__all__ = ["FULL_ARRAY", "MANUAL_ATOL", "MANUAL_RTOL", "MAX_NODES", "Page", "play"]

MAX_NODES = 3_000
"""The most nodes a page draws: a bigger graph gives a page that says so and how to shrink it.
A page of a scalar MLP's 3,000 Values takes a few seconds to open (bench/README.md), and more
than that is no longer a picture a reader follows step by step."""

FULL_ARRAY = 16
"""Arrays with at most this many elements are carried (and shown) whole; bigger ones summarised."""

MANUAL_RTOL = 1e-3
MANUAL_ATOL = 1e-9
"""A learner's gradient m is right when |m - g| <= atol + rtol |g| for every element, g the
engine's. Relative 1e-3, because learners type numbers rounded to a few digits."""

_BIG = 300  # from this many nodes on, the page keeps only the active node's edge labels


# ---------------------------------------------------------------------------------------------
# The adapter: every node field and every rule call goes through _read, so that a change of the
# engine's node interface is a change here alone.


@dataclass
class _View:
    """What the player needs of one node."""

    node: Node
    data: Any
    grad: Any
    parents: tuple[Node, ...]
    op: Any  # the Op class, None for a leaf
    params: tuple[Any, ...]
    label: str
    requires_grad: bool
    is_array: bool
    rule: Callable[[Any], tuple[Any, ...]]  # g -> one gradient (or None) per input
    arg_names: tuple[str, ...] | None  # the rule's names for the inputs, then the params


def _read(n: Node) -> _View:
    """The one place that reads a node's fields and calls its op's rule.

    Rules run through ``engine.call_backward`` with the node kind's ``xp``, exactly as the
    backward pass runs them, and ``fit_gradient`` undoes broadcasting as the pass does.
    """
    from backproplab.autograd import engine

    op: Any = n.op
    parents: tuple[Node, ...] = tuple(n.parents)
    is_array = isinstance(n.data, np.ndarray)
    label = str(n.label or "")
    params = tuple(n.params)
    inputs = [p.data for p in parents]

    def rule(g: Any) -> tuple[Any, ...]:
        grads = engine.call_backward(op, type(n).xp, g, n.data, inputs, params, parents)
        out = []
        for i, (p, gp) in enumerate(zip(parents, grads, strict=True)):
            if gp is not None and p.requires_grad:
                gp = p.fit_gradient(gp, op, i)
            out.append(gp)
        return tuple(out)

    return _View(
        node=n,
        data=n.data,
        grad=n.grad,
        parents=parents,
        op=op,
        params=params,
        label=label,
        requires_grad=bool(n.requires_grad),
        is_array=is_array,
        rule=rule,
        arg_names=None if op is None else _arg_names(op),
    )


@functools.cache
def _arg_names(op: Any) -> tuple[str, ...] | None:
    """The rule's names for its inputs and params (after ``out``); None when it takes *args."""
    sig = [  # needs_grad= (the new interface's keyword) names no input
        p
        for p in inspect.signature(op.backward).parameters.values()
        if p.kind is not inspect.Parameter.KEYWORD_ONLY
    ]
    names = [p.name for p in sig]
    after_out = sig[names.index("out") + 1 :] if "out" in names else []
    if all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in after_out):
        return tuple(p.name for p in after_out)
    return None


# ---------------------------------------------------------------------------------------------
# The page


class Page:
    """A played backward pass: ``html`` (the whole page) and ``trace`` (what it carries).

    Jupyter shows it inline through ``_repr_html_``; ``save(path)`` writes the page to a file.
    """

    def __init__(self, html_text: str, trace: dict[str, Any]) -> None:
        self.html = html_text
        self.trace = trace

    def _repr_html_(self) -> str:
        # An iframe of its own: the page's ids, styles and keys cannot clash with the notebook's
        # or with another page shown in the same notebook.
        return (
            f'<iframe srcdoc="{html.escape(self.html, quote=True)}" '
            'style="width: 100%; height: 640px; border: 1px solid #ccc" '
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
    """Build the page that plays the backward pass from ``root``, one node at a time.

    Args:
        root: a Value, or a Tensor with a single element. When no backward pass has been run
            from it yet (its ``.grad`` is unset), ``play`` runs ``root.backward()`` first, so the
            graph's ``.grad`` fields agree with the page.
        manual: the learner's own gradients, by node label (a Value's ``label``, a Tensor's
            ``name``, or with ``model=`` a parameter's dotted name): floats, or arrays of the
            node's shape. Each is judged against the engine's within ``atol + rtol |engine|``,
            and the page names the first wrong one in backward order and says why.
        model: an ``nn`` Module; its parameters get their dotted names and each layer's
            parameters are drawn in a labelled box, as ``draw_graph`` groups them.
        max_nodes: past this many nodes the page draws nothing and says how to shrink the graph.
        rtol, atol: the tolerance for ``manual``, stated on the page.
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
            the wrong shape; max_nodes below 1; a negative tolerance.
    """
    if not isinstance(root, Node):
        raise TypeError(f"play() plays a Value or a Tensor, got {type(root).__name__}")
    if isinstance(max_nodes, bool) or not isinstance(max_nodes, int) or max_nodes < 1:
        raise ValueError(f"max_nodes must be an int >= 1, got {max_nodes!r}")
    if not (rtol >= 0 and atol >= 0):
        raise ValueError(f"rtol and atol must be >= 0, got rtol={rtol!r}, atol={atol!r}")
    top = _read(root)
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
    heading = title or "The backward pass, step by step"
    views = _walk(root)
    if len(views) > max_nodes:
        trace: dict[str, Any] = {
            "nodes": [],
            "edges": [],
            "steps": [],
            "first_wrong": None,
            "too_big": {"nodes": len(views), "limit": max_nodes},
        }
        return Page(_too_big_page(heading, len(views), max_nodes, trace), trace)
    if _unset(top.grad):
        root.backward()  # the page replays the pass itself; this fills the graph's .grad too
    names, layers = _model_names(model)
    trace = _trace(views, names, layers)
    if manual is not None:
        _check_manual(trace, views, manual, rtol, atol)
    layout = _layout(trace, views)
    return Page(_page(heading, trace, layout), trace)


# ---------------------------------------------------------------------------------------------
# The walk and the trace


def _unset(grad: Any) -> bool:
    """No backward pass has reached this node: a Value's 0.0 or a Tensor's None."""
    if grad is None:
        return True
    g = grad.data if isinstance(grad, Node) else grad
    return isinstance(g, float) and g == 0.0


def _walk(root: Node) -> list[_View]:
    """Every node root depends on, read once, each after its parents, root last.

    An explicit stack, so a chain thousands deep needs no recursion; nodes are keyed by id(),
    since a Tensor's == is elementwise.
    """
    order: list[_View] = []
    seen: set[int] = set()
    stack: list[tuple[Node, _View | None]] = [(root, None)]
    while stack:
        n, view = stack.pop()
        if view is not None:
            order.append(view)
            continue
        if id(n) in seen:
            continue
        seen.add(id(n))
        view = _read(n)
        stack.append((n, view))
        for p in reversed(view.parents):  # reversed: the first input is numbered first
            if id(p) not in seen:
                stack.append((p, None))
    return order


def _model_names(model: Any) -> tuple[dict[int, str], dict[str, str]]:
    if model is None:
        return {}, {}
    from .graph import _model_names as names_of  # draw_graph's grouping, so the two agree

    return names_of(model)


def _trace(views: list[_View], names: dict[int, str], layers: dict[str, str]) -> dict[str, Any]:
    """Replay the backward pass through the rules, node by node, and record what each did."""
    index = {id(v.node): i for i, v in enumerate(views)}
    root = len(views) - 1
    nodes: list[dict[str, Any]] = []
    groups: dict[str, list[int]] = {}
    for i, v in enumerate(views):
        full = names.get(id(v.node))
        label = full or v.label
        shown = label
        if full is not None:
            layer = layers.get(full, "")
            if layer:
                groups.setdefault(layer, []).append(i)
                shown = full[len(layer) + 1 :]
        kind = (
            "root"
            if i == root
            else "computed"
            if v.op is not None
            else "parameter"
            if v.requires_grad
            else "input"
        )
        node: dict[str, Any] = {
            "id": i,
            "label": label,
            "name": label or _expression(v, i, nodes, index),
            "shown": shown,
            "op": None if v.op is None else _op_name(v),
            "kind": kind,
            "formula": None if v.op is None else _formula(v.op),
            "value": None,
            "grad": None,
        }
        if v.is_array:
            data = np.asarray(v.data)
            node["shape"] = list(data.shape)
            node["dtype"] = str(data.dtype)
            node["summary"] = {"value": _summary(data), "grad": None}
            node["value"] = _json(data) if data.size <= FULL_ARRAY else None
        else:
            node["value"] = _json(v.data)
        nodes.append(node)

    edges: list[dict[str, Any]] = []
    into: list[list[int]] = [[] for _ in views]  # edges ending at each node
    for t, v in enumerate(views):
        for k, p in enumerate(v.parents):
            into[t].append(len(edges))
            edges.append({"id": len(edges), "source": index[id(p)], "target": t, "input": k})

    # The order of the pass: the walk reversed puts each node after every node it feeds.
    steps = [i for i in reversed(range(len(views))) if views[i].requires_grad]
    arrived: list[Any] = [None] * len(views)
    arrived[root] = np.ones_like(views[root].data) if views[root].is_array else 1.0
    for i in steps:
        v = views[i]
        g = arrived[i]
        if g is None:  # every rule that reached it sent nothing: its gradient is zero
            g = np.zeros_like(v.data) if v.is_array else 0.0
        _set_grad(nodes[i], g, v.is_array)
        if v.op is None:
            continue
        grads = v.rule(g)
        locals_ = v.rule(1.0) if not v.is_array else (None,) * len(grads)
        for e, gp, local in zip(into[i], grads, locals_, strict=True):
            edge = edges[e]
            s = edge["source"]
            wanted = views[s].requires_grad and gp is not None
            edge["local"] = None if local is None or not wanted else _json(local)
            if not wanted:
                edge["contribution"] = None
                continue
            edge["_c"] = gp  # unrounded, for the manual check; dropped before the page is written
            if views[s].is_array:
                a = np.asarray(gp)
                edge["contribution"] = _json(a) if a.size <= FULL_ARRAY else None
                edge["summary"] = _summary(a)
            else:
                edge["contribution"] = _json(gp)
            edge["filled"] = _filled(v, edge["input"], g, gp)
            arrived[s] = gp if arrived[s] is None else arrived[s] + gp
    for edge in edges:  # edges whose target needs no gradient carried nothing
        edge.setdefault("local", None)
        edge.setdefault("contribution", None)
        edge.setdefault("filled", None)

    return {
        "nodes": nodes,
        "edges": edges,
        "steps": steps,
        "first_wrong": None,
        "diagnosis": None,
        "tolerance": None,
        "groups": [{"name": k, "members": m} for k, m in groups.items()],
    }


_INFIX = {"Add": "+", "Sub": "-", "Mul": "*", "Div": "/", "Pow(a, b)": "**"}
# The rewrite's ops with a number operand as a param (x + 2 is AddNumber(x; 2)), as expressions.
_WITH_NUMBER = {
    "Pow": "{x}**{c}",
    "AddNumber": "{x} + {c}",
    "MulNumber": "{x} * {c}",
    "DivNumber": "{x} / {c}",
    "NumberSub": "{c} - {x}",
    "NumberDiv": "{c} / {x}",
    "NumberPow": "{c}**{x}",
}


def _expression(v: _View, i: int, done: list[dict[str, Any]], index: dict[int, int]) -> str:
    """A name for an unlabelled node: the expression it computes while short, else op#id."""
    if v.op is None:
        return _num(v.data) if not v.is_array else f"t{i}"

    def operand(p: Node) -> str:
        node = done[index[id(p)]]
        name = str(node["name"])
        # an expression inside another keeps its brackets; a name or a single call needs none
        return f"({name})" if not node["label"] and not _is_call(name) and " " in name else name

    args = [operand(p) for p in v.parents]
    name = v.op.name
    if name in _INFIX and len(args) == 2:
        text = f"{args[0]} {_INFIX[name]} {args[1]}"
    elif name in _WITH_NUMBER and v.params and len(args) == 1:
        text = _WITH_NUMBER[name].format(x=args[0], c=_num(v.params[0]))
    elif name == "Neg":
        text = f"-{args[0]}"
    else:
        inner = [str(done[index[id(p)]]["name"]) for p in v.parents]
        text = f"{name.lower()}({', '.join(inner)})"
    return text if len(text) <= 24 else f"{name}#{i}"


def _is_call(text: str) -> bool:
    """``f(...)`` whose first bracket closes at the end: tanh(a + b), not tanh(a) + f(b)."""
    m = re.match(r"[A-Za-z_][\w#]*\(", text)
    if m is None or not text.endswith(")"):
        return False
    depth = 0
    for k in range(m.end() - 1, len(text)):
        depth += {"(": 1, ")": -1}.get(text[k], 0)
        if depth == 0:
            return k == len(text) - 1
    return False


def _set_grad(node: dict[str, Any], g: Any, is_array: bool) -> None:
    if is_array:
        a = np.asarray(g)
        node["grad"] = _json(a) if a.size <= FULL_ARRAY else None
        node["summary"]["grad"] = _summary(a)
        node["_grad"] = a  # kept for the manual check, dropped before the page is written
    else:
        node["grad"] = _json(g)
        node["_grad"] = float(g)


def _op_name(v: _View) -> str:
    name: str = v.op.name
    if name in _WITH_NUMBER and v.params and isinstance(v.params[0], (int, float)):
        return _WITH_NUMBER[name].format(x="", c=_num(v.params[0])).strip()
    if name == "Dense" and v.params:
        act = v.params[-1]
        affine = "x@W+b" if len(v.parents) == 3 else "x@W"
        return affine if act is None else f"{act.name.lower()}({affine})"
    return name


@functools.cache
def _formula(op: Any) -> str:
    """The op's docstring up to its first blank line, on one line, without its asides."""
    doc = op.__dict__.get("__doc__") or ""
    lines = []
    for line in doc.strip().split("\n\n")[0].splitlines():
        lines.append(re.sub(r"\s{3,}\(.*$", "", line.strip()))  # "   (a primitive: ...)"
    return " ".join(" ".join(lines).split())


_CLAUSE = re.compile(r"(?:^|[;,]\s*)(d[A-Za-z_]\w*)\s*=\s*")


def _filled(v: _View, position: int, g: float, result: Any) -> str | None:
    """The rule's clause for one input with the numbers put in: ``da = 1 * (-3) = -3``."""
    if v.is_array or v.arg_names is None or v.op is None:
        return None
    formula = _formula(v.op)
    _, semi, derivative = formula.partition(";")
    if not semi:
        return None
    name = v.arg_names[position]
    derivative = derivative.strip()
    matches = list(_CLAUSE.finditer(derivative))
    found = [k for k, m in enumerate(matches) if m.group(1).lower() == "d" + name.lower()]
    if not found:
        return None
    k = found[0]
    end = matches[k + 1].start() if k + 1 < len(matches) else len(derivative)
    rhs = derivative[matches[k].end() : end].strip().rstrip(",;").strip()
    values: dict[str, Any] = {"g": g, "out": v.data}
    inputs = [p.data for p in v.parents]
    values.update(zip(v.arg_names, [*inputs, *v.params], strict=False))
    numbers = {
        key: x
        for key, x in values.items()
        if isinstance(x, (int, float)) and not isinstance(x, bool)
    }

    def put(mt: re.Match[str]) -> str:
        text = _num(numbers[mt.group(0)])
        return f"({text})" if text.startswith("-") else text

    pattern = r"\b(" + "|".join(re.escape(key) for key in numbers) + r")\b"
    filled = re.sub(pattern, put, rhs)
    return f"{matches[k].group(1)} = {rhs} = {filled} = {_num(result)}"


def _num(x: Any) -> str:
    """Four significant digits, as draw_graph prints; -0 as 0."""
    x = float(x)
    if math.isnan(x):
        return "NaN"
    return f"{x + 0.0:.4g}"


def _summary(a: np.ndarray) -> dict[str, Any]:
    x = np.asarray(a, dtype=np.float64)
    if x.size == 0:
        return {"min": None, "max": None, "mean": None, "norm": 0.0}
    return {
        "min": _json(x.min()),
        "max": _json(x.max()),
        "mean": _json(x.mean()),
        "norm": _json(np.linalg.norm(x)),
    }


def _json(x: Any) -> Any:
    """A number or array as JSON can hold it: nested lists, non-finite numbers as strings."""
    if isinstance(x, np.ndarray):
        if x.ndim == 0:
            return _json(x.item())
        return [_json(y) for y in x]
    if isinstance(x, Node):
        return _json(x.data)
    f = float(x)
    if math.isfinite(f):
        return f
    return "NaN" if math.isnan(f) else ("Infinity" if f > 0 else "-Infinity")


# ---------------------------------------------------------------------------------------------
# The learner's own gradients


def _check_manual(
    trace: dict[str, Any],
    views: list[_View],
    manual: Mapping[str, Any],
    rtol: float,
    atol: float,
) -> None:
    """Judge each manual gradient, find the first wrong one in backward order, say why."""
    if not isinstance(manual, Mapping):
        raise TypeError(f"manual= takes a dict from labels to gradients, got {type(manual)}")
    nodes = trace["nodes"]
    by_label: dict[str, list[int]] = {}
    for node in nodes:
        if node["label"]:
            by_label.setdefault(node["label"], []).append(node["id"])
    given: dict[int, Any] = {}
    for name, value in manual.items():
        found = by_label.get(name, [])
        if not found:
            known = sorted(by_label)
            hint = ", ".join(repr(k) for k in known[:8]) + (" ..." if len(known) > 8 else "")
            raise ValueError(
                f"manual= names {name!r}, which labels no node of the graph "
                f"(labels: {hint or 'none: give your nodes labels'})"
            )
        if len(found) > 1:
            raise ValueError(
                f"manual= names {name!r}, which labels {len(found)} nodes: label them apart"
            )
        i = found[0]
        if not views[i].requires_grad:
            raise ValueError(f"manual= names {name!r}, a constant: it has no gradient to check")
        try:
            m = np.asarray(value.data if isinstance(value, Node) else value, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(
                f"manual= gives {name!r} a {type(value).__name__}, not a number or array"
            ) from None
        want = np.shape(views[i].data)
        if m.shape != want:
            raise ValueError(
                f"manual= gives {name!r} a gradient of shape {m.shape}, its node has shape {want}"
            )
        given[i] = m
        nodes[i]["manual"] = _json(m) if m.size <= FULL_ARRAY else None

    def close(a: Any, b: Any) -> bool:
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        return bool(np.all(np.abs(a - b) <= atol + rtol * np.abs(b)))

    for i, m in given.items():
        nodes[i]["verdict"] = "right" if close(m, nodes[i]["_grad"]) else "wrong"
    trace["tolerance"] = {"rtol": rtol, "atol": atol}
    first = next((i for i in trace["steps"] if nodes[i].get("verdict") == "wrong"), None)
    trace["first_wrong"] = first
    if first is not None:
        trace["diagnosis"] = _diagnose(trace, views, first, given, close)


def _diagnose(
    trace: dict[str, Any],
    views: list[_View],
    i: int,
    given: dict[int, Any],
    close: Callable[[Any, Any], bool],
) -> dict[str, Any]:
    """Where the learner's gradient at node i, the first wrong one, went wrong.

    The gradient there is the sum over the nodes it feeds of (their gradient) x (the local
    derivative along the edge). Those nodes come earlier in the pass, so any the learner gave is
    right: when all of them are given the upstream was right and the local step was wrong;
    otherwise the value tells what it can (off by the local factor, one term of a sum missing).
    """
    nodes, edges = trace["nodes"], trace["edges"]
    node = nodes[i]
    name = node["name"]
    m = given[i]
    truth = node["_grad"]
    out = [e for e in edges if e["source"] == i and "_c" in e]
    consumers = list(dict.fromkeys(e["target"] for e in out))
    upstream = [nodes[t]["_grad"] for t in consumers]

    def say(cause: str, factor: str | None, text: str) -> dict[str, Any]:
        return {"node": i, "cause": cause, "factor": factor, "text": text}

    def who(t: int) -> str:
        return str(nodes[t]["name"])

    if not consumers:  # the root
        return say("root", None, f"{name} is the root: its gradient is {_d(name)}/{_d(name)} = 1")
    contributions = [_contribution(e) for e in out]
    total = ", ".join(_brief(c) for c in contributions)
    if len(out) > 1:
        for e, c in zip(out, contributions, strict=True):
            if close(m, c) and not close(c, truth):
                return say(
                    "sum",
                    None,
                    f"{name} feeds {len(out)} uses, and its gradient is the sum of what each "
                    f"sends back ({total}); your {_brief(m)} is the part through "
                    f"{who(e['target'])} alone: add the others",
                )
    if not views[i].is_array:
        locals_ = [e["local"] for e in out]
        ups = [nodes[e["target"]]["_grad"] for e in out]
        if all(isinstance(x, float) for x in locals_):
            without = sum(ups)
            twice = sum(u * loc * loc for u, loc in zip(ups, locals_, strict=True))
            if close(m, without) and not close(without, truth):
                return say(
                    "local",
                    "missing",
                    f"your {_brief(m)} is off by exactly the local factor: it is the upstream "
                    f"gradient, passed on without multiplying by the local derivative "
                    f"{_d(who(out[0]['target']))}/{_d(name)} = {_brief(locals_[0])}"
                    + (" (and the others')" if len(out) > 1 else ""),
                )
            alone = sum(locals_)
            if close(m, alone) and not close(alone, truth):
                return say(
                    "upstream",
                    None,
                    f"your {_brief(m)} is the local derivative "
                    f"{_d(who(out[0]['target']))}/{_d(name)} alone: it was never multiplied by the "
                    f"upstream gradient {_brief(ups[0])} of {who(out[0]['target'])}",
                )
            if close(m, twice) and not close(twice, truth):
                return say(
                    "local",
                    "twice",
                    f"your {_brief(m)} is off by exactly the local factor: it has the local "
                    f"derivative ({_brief(locals_[0])}) multiplied in twice",
                )
    elif (
        len(consumers) == 1
        and np.shape(upstream[0]) == np.shape(truth)
        and close(m, upstream[0])
        and not close(upstream[0], truth)
    ):
        return say(
            "local",
            "missing",
            f"your gradient for {name} equals the upstream gradient of "
            f"{who(consumers[0])}: the local derivative was not applied",
        )
    if close(m, -np.asarray(truth)) and not close(truth, 0.0):
        return say(
            "local", "sign", f"your {_brief(m)} has the wrong sign: the engine has {_brief(truth)}"
        )
    unchecked = [t for t in consumers if t not in given]
    if not unchecked:
        ups_text = ", ".join(f"{who(t)} {_brief(nodes[t]['_grad'])}" for t in consumers)
        return say(
            "local",
            None,
            f"the upstream gradient was right (your own {ups_text}), so the mistake is in this "
            f"step: the local derivative of {', '.join(who(t) for t in consumers)} with respect "
            f"to {name}"
            + (", or the sum of the contributions" if len(out) > 1 else "")
            + f"; the engine's gradient is {_brief(truth)}, yours {_brief(m)}",
        )
    if not views[i].is_array and len(out) == 1 and out[0]["local"] not in (None, 0.0):
        local = out[0]["local"]
        implied = float(m) / local
        t = out[0]["target"]
        return say(
            "upstream",
            None,
            f"with the local derivative {_d(who(t))}/{_d(name)} = {_brief(local)}, "
            f"your {_brief(m)} means you had {_brief(implied)} as the gradient of {who(t)}, "
            f"where it is {_brief(nodes[t]['_grad'])}: the upstream gradient was already "
            f"wrong (you gave none for {who(t)}; give it to pin the mistake down)",
        )
    return say(
        "upstream",
        None,
        f"the gradient of {', '.join(who(t) for t in unchecked)} was not given, so this page "
        f"cannot tell whether your upstream gradient or your local derivative went wrong: give "
        f"{'it' if len(unchecked) == 1 else 'them'} too; the engine's gradient here is "
        f"{_brief(truth)}, yours {_brief(m)}",
    )


def _d(name: str) -> str:
    """d of a name, bracketed when the name is an expression: dx1, d(x1 * w1)."""
    return f"d({name})" if " " in name else f"d{name}"


def _contribution(edge: dict[str, Any]) -> Any:
    """What an edge carried back, unrounded (a float or an array)."""
    return edge["_c"]


def _brief(x: Any) -> str:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 0:
        return _num(a)
    if a.size <= 6:
        return "[" + ", ".join(_num(y) for y in a.ravel()) + "]"
    return f"an array of shape {a.shape} (norm {_num(np.linalg.norm(a))})"


# ---------------------------------------------------------------------------------------------
# The layout: layers left to right (longest path from the leaves), each column ordered by the
# barycentres of its neighbours, a few sweeps each way.

_GAP_X = 90.0
_GAP_Y = 16.0
_MARGIN = 24.0


@dataclass
class _Layout:
    x: list[float]
    y: list[float]
    w: list[float]
    h: list[float]
    width: float
    height: float


def _box(node: dict[str, Any]) -> tuple[float, float]:
    if "shape" in node:
        return 250.0, 76.0
    return 150.0, 58.0


def _layout(trace: dict[str, Any], views: list[_View]) -> _Layout:
    nodes = trace["nodes"]
    n = len(nodes)
    parents: list[list[int]] = [[] for _ in range(n)]
    children: list[list[int]] = [[] for _ in range(n)]
    for e in trace["edges"]:
        parents[e["target"]].append(e["source"])
        children[e["source"]].append(e["target"])
    layer = [0] * n
    for i in range(n):  # ids are in topological order, parents first
        if parents[i]:
            layer[i] = 1 + max(layer[p] for p in parents[i])
    for i in range(n):  # a leaf sits in the column just before its first use
        if not parents[i] and children[i]:
            layer[i] = min(layer[c] for c in children[i]) - 1
    group: list[str | None] = [None] * n
    for g in trace["groups"]:
        # A layer's parameters share one column (the leftmost), so its box holds them alone.
        leftmost = min(layer[i] for i in g["members"])
        for i in g["members"]:
            group[i] = g["name"]
            layer[i] = leftmost
    sizes = [_box(node) for node in nodes]
    columns: dict[int, list[int]] = {}
    for i in range(n):
        columns.setdefault(layer[i], []).append(i)
    depth = max(columns) + 1 if columns else 0
    col_w = [max((sizes[i][0] for i in columns.get(c, [])), default=0.0) for c in range(depth)]
    y = [0.0] * n
    for members in columns.values():
        top = 0.0
        for i in members:
            y[i] = top
            top += sizes[i][1] + _GAP_Y

    def place(members: list[int], want: dict[int, float]) -> None:
        # Members of one group keep together: they sort by their group's mean wish.
        wishes: dict[str, list[float]] = {}
        for i in members:
            gname = group[i]
            if gname is not None:
                wishes.setdefault(gname, []).append(want[i])
        means = {gname: sum(ws) / len(ws) for gname, ws in wishes.items()}
        key = {i: means.get(group[i] or "", want[i]) for i in members}
        ordered = sorted(members, key=lambda i: (key[i], want[i], i))
        pos: list[float] = []
        for k, i in enumerate(ordered):
            lo = -math.inf
            if k:
                before = ordered[k - 1]
                # room for a layer box's frame and title where one group meets another
                frame = 30.0 if group[i] != group[before] else 0.0
                lo = pos[-1] + sizes[before][1] + _GAP_Y + frame
            pos.append(max(want[i], lo))
        shift = sum(want[i] for i in ordered) / len(ordered) - sum(pos) / len(pos)
        for i, p in zip(ordered, pos, strict=True):
            y[i] = p + shift

    def centre(i: int) -> float:
        return y[i] + sizes[i][1] / 2

    for _ in range(4):
        for c in range(1, depth):
            members = columns.get(c, [])
            want = {
                i: (
                    sum(centre(p) for p in parents[i]) / len(parents[i]) - sizes[i][1] / 2
                    if parents[i]
                    else y[i]
                )
                for i in members
            }
            if members:
                place(members, want)
        for c in range(depth - 2, -1, -1):
            members = columns.get(c, [])
            want = {
                i: (
                    sum(centre(k) for k in children[i]) / len(children[i]) - sizes[i][1] / 2
                    if children[i]
                    else y[i]
                )
                for i in members
            }
            if members:
                place(members, want)
    top = min(y) if y else 0.0
    col_x = [_MARGIN]
    for c in range(1, depth):
        col_x.append(col_x[-1] + col_w[c - 1] + _GAP_X)
    xs = [col_x[layer[i]] + (col_w[layer[i]] - sizes[i][0]) / 2 for i in range(n)]
    ys = [y[i] - top + _MARGIN + (22.0 if trace["groups"] else 0.0) for i in range(n)]
    width = (col_x[-1] + col_w[-1] + _MARGIN) if depth else 2 * _MARGIN
    height = max((ys[i] + sizes[i][1] for i in range(n)), default=0.0) + _MARGIN
    return _Layout(xs, ys, [s[0] for s in sizes], [s[1] for s in sizes], width, height)


# ---------------------------------------------------------------------------------------------
# The HTML


def _svg(trace: dict[str, Any], lay: _Layout) -> str:
    nodes, edges = trace["nodes"], trace["edges"]
    esc = html.escape
    parts = [
        f'<svg id="graph" xmlns="http://www.w3.org/2000/svg" width="{lay.width:.0f}" '
        f'height="{lay.height:.0f}" viewBox="0 0 {lay.width:.0f} {lay.height:.0f}">'
    ]
    for g in trace["groups"]:
        ms = g["members"]
        x0 = min(lay.x[i] for i in ms) - 10
        y0 = min(lay.y[i] for i in ms) - 22
        x1 = max(lay.x[i] + lay.w[i] for i in ms) + 10
        y1 = max(lay.y[i] + lay.h[i] for i in ms) + 8
        parts.append(
            f'<g class="group"><rect x="{x0:.1f}" y="{y0:.1f}" width="{x1 - x0:.1f}" '
            f'height="{y1 - y0:.1f}" rx="8"/><text x="{x0 + 8:.1f}" y="{y0 + 15:.1f}">'
            f"{esc(g['name'])}</text></g>"
        )
    fan_in = [0] * len(nodes)
    for e in edges:
        fan_in[e["target"]] += 1
    for e in edges:
        s, t = e["source"], e["target"]
        x0, y0 = lay.x[s] + lay.w[s], lay.y[s] + lay.h[s] / 2
        x1, y1 = lay.x[t], lay.y[t] + lay.h[t] / 2
        # inputs of one node arrive at slightly different heights, so a * a shows two edges
        count = fan_in[t]
        y1 += (e["input"] - (count - 1) / 2) * min(10.0, lay.h[t] / count)
        dx = max((x1 - x0) / 2, 20.0)
        # One element an edge, its label drawn by the page's script once it has carried a
        # gradient: a scalar MLP's page has 15,000 edges, and every element costs load time.
        parts.append(
            f'<path class="edge" data-edge="{e["id"]}" data-state="waiting" '
            f'd="M{x0:.0f},{y0:.0f}C{x0 + dx:.0f},{y0:.0f} {x1 - dx:.0f},{y1:.0f} '
            f'{x1:.0f},{y1:.0f}"/>'
        )
    parts.append('<g id="edge-labels"></g>')
    for node in nodes:
        i = node["id"]
        w, h = lay.w[i], lay.h[i]
        head = node["shown"] or ""
        if node["op"]:
            head = f"{head} = {node['op']}" if head else node["op"]
        room = 28 if "shape" in node else 19  # characters that fit in the box's first line
        if "verdict" in node:
            room -= 12  # the learner's value shares the line
        lines = [f'<text class="t-head" x="8" y="16">{esc(head[:room])}</text>']
        if "shape" in node:
            shape = "×".join(map(str, node["shape"])) or "scalar"
            lines.append(f'<text class="t-data" x="8" y="32">{shape} {esc(node["dtype"])}</text>')
            room = int((w - 16) / 7.4) - 5  # characters that fit after "grad " (bold)
            value = _brief_json(node["value"], node["summary"]["value"], room)
            lines.append(f'<text class="t-data" x="8" y="48">data {esc(value)}</text>')
            grad = _brief_json(node["grad"], node["summary"]["grad"], room)
            gy = 66
        else:
            lines.append(f'<text class="t-data" x="8" y="34">data {_num(node["value"])}</text>')
            grad = _num(node["grad"]) if node["grad"] is not None else ""
            gy = 50
        if node["grad"] is not None or (node.get("summary") or {}).get("grad"):
            lines.append(f'<text class="t-grad" x="8" y="{gy}">grad {esc(grad)}</text>')
            lines.append(f'<text class="t-wait" x="8" y="{gy}">grad ?</text>')
        if "verdict" in node:
            mark = "✓" if node["verdict"] == "right" else "✗"
            lines.append(
                f'<text class="t-manual" x="{w - 8:.0f}" y="16" text-anchor="end">'
                f"yours {esc(_brief_json(node.get('manual'), None, 12))} {mark}</text>"
            )
        verdict = f" verdict-{node['verdict']}" if "verdict" in node else ""
        parts.append(
            f'<g class="node kind-{node["kind"]}{verdict}" data-node="{i}" data-state="waiting" '
            f'transform="translate({lay.x[i]:.1f},{lay.y[i]:.1f})">'
            f'<rect width="{w:.0f}" height="{h:.0f}" rx="6"/>' + "".join(lines) + "</g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _brief_json(value: Any, summary: dict[str, Any] | None, room: int = 1_000) -> str:
    """A value as a box shows it: whole when it fits in ``room`` characters, else summarised."""
    if value is not None:
        text = _brief_list(value)
        if len(text) <= room or not summary:
            return text if len(text) <= room else text[: room - 1] + "…"
    if summary:
        text = f"norm {_num(summary['norm'])} in [{_num(summary['min'])}, {_num(summary['max'])}]"
        return text if len(text) <= room else f"norm {_num(summary['norm'])}"  # the panel has all
    return "—"


def _brief_list(x: Any) -> str:
    if isinstance(x, list):
        return "[" + ", ".join(_brief_list(y) for y in x) + "]"
    return _num(x) if not isinstance(x, str) else x


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


def _page(heading: str, trace: dict[str, Any], lay: _Layout) -> str:
    svg = _svg(trace, lay)
    data = _script_json(_public(trace))
    big = " big" if len(trace["nodes"]) >= _BIG else ""
    tol = trace["tolerance"]
    tolerance = (
        f"Your gradients are judged against the engine's: right when |yours − engine| ≤ "
        f"{tol['atol']:g} + {tol['rtol']:g}·|engine|, element by element."
        if tol
        else ""
    )
    return _fill(heading, big, html.escape(tolerance), svg, data)


def _too_big_page(heading: str, count: int, limit: int, trace: dict[str, Any]) -> str:
    notice = (
        f"This graph has {count:,} nodes, more than the {limit:,} this page draws: a picture "
        "that big is unreadable and slow to open. Group it: build the model from Tensors (one "
        "node per layer, e.g. an nn.MLP on a batch) and pass model= to box each layer; or play "
        "a smaller piece (one sample, one layer, one sub-expression); or raise max_nodes."
    )
    body = f'<p id="too-big">{html.escape(notice)}</p>'
    return _fill(heading, " too-big", "", body, _script_json(trace))


def _fill(heading: str, big: str, tolerance: str, body: str, data: str) -> str:
    """The template with its slots filled in one pass, so no inserted text is read as a slot."""
    parts = {
        "TITLE": html.escape(heading),
        "BIG": big,
        "TOLERANCE": tolerance,
        "SVG": body,
        "CSS": _asset("player.css"),
        "JS": _asset("player.js"),
        "TRACE": data,
    }
    return re.sub(r"@@([A-Z]+)@@", lambda m: parts[m.group(1)], _asset("player.html"))


def _asset(name: str) -> str:
    """The page's template, style sheet or script, kept beside this module as files of their own."""
    return (resources.files(__package__) / name).read_text(encoding="utf-8")
