"""Computation graphs drawn with Graphviz: every node that produced a root, as a ``Digraph``.

``draw_graph(root)`` returns a ``graphviz.Digraph``; Jupyter displays it inline (the Digraph has
``_repr_mimebundle_``), and ``render(graph, "out.svg")`` writes it to disk. Building the Digraph
needs only the ``graphviz`` Python package; turning it into a picture needs Graphviz's ``dot``
program, and without it ``render`` still writes the DOT source and says how to install ``dot``.

What the picture shows:

- A Value is a record ``label | data | grad``; a Tensor a record ``name | shape dtype | data |
  grad`` with the values themselves when it has at most six elements, else norm, min and max.
  Every node is named by ``autograd.naming``, as the player and the command line name it: a
  computed node without a label of its own by the subexpression that made it (``x1*w1``,
  ``tanh(x1*w1 + x2*w2 + b)``, shortened with an ellipsis past ``EXPRESSION_WIDTH``), a layer's
  node by the layer and its op (``layers.0 · Dense``).
  Numbers have ``decimals`` significant digits (4 by default), and a zero is never ``-0``.
- Each op is a small ellipse of its own between its inputs and its result (``x -> * -> x*w``),
  named after the op, with the usual symbol for + - * / ** and @.
- Leaves that are parameters (they require grad), inputs (data: they do not, or they are named
  in ``inputs=``) and constants (an unlabelled number), the root and the computed nodes in
  between each have their own look, explained by a legend (``STYLES``).
- Given ``model=``, each layer's parameters sit in a labelled cluster (``cluster_layers_0``).
- Given ``gradients=``, hand-derived gradients are set against the engine's: a node whose two
  gradients disagree is red and shows both, one where they agree is green.
"""

from __future__ import annotations

import math
import numbers
import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import graphviz
import numpy as np
from backproplab.autograd import GradientReport, Node, Value, naming
from backproplab.autograd.check import compare
from backproplab.nn.files import check_target, write_bytes

__all__ = [
    "DOT_HINT",
    "EXPRESSION_WIDTH",
    "FORMATS",
    "GRADIENT_ATOL",
    "GRADIENT_RTOL",
    "STYLES",
    "draw_graph",
    "render",
]

DOT_HINT = "apt-get install graphviz"
"""How to get Graphviz's ``dot``, for the line ``render`` prints when it is missing."""

EXPRESSION_WIDTH = naming.WIDTH
"""The longest subexpression a computed node is named by; past it, operands become an ellipsis."""

FORMATS = ("svg", "png", "pdf")
"""The picture formats ``render`` writes, chosen by the file's suffix."""

GRADIENT_RTOL = 1e-6
GRADIENT_ATOL = 1e-12
"""A hand gradient h agrees with the engine's g when every element has |h - g| <= atol + rtol |g|
(a ``GradientReport`` brings its own verdict and tolerance, which are used instead)."""

# How each kind of node looks; the legend is drawn from this table too. Named X11 colours keep
# the DOT source readable. The overlay's red and green replace a node's own colours.
STYLES: dict[str, dict[str, str]] = {
    "parameter": {"style": "filled", "fillcolor": "lightblue", "color": "steelblue4"},
    "input": {"style": "filled,dashed", "fillcolor": "gray92", "color": "gray40"},
    "constant": {"style": "dotted", "color": "gray50", "fontcolor": "gray30"},
    "root": {
        "style": "filled,bold",
        "fillcolor": "gold",
        "color": "darkgoldenrod",
        "penwidth": "2",
    },
    "computed": {"style": "filled", "fillcolor": "white", "color": "black"},
    "op": {
        "shape": "ellipse",
        "style": "filled",
        "fillcolor": "gray96",
        "color": "gray50",
        "fontsize": "10",
        "width": "0.3",
        "height": "0.3",
        "margin": "0.03,0.02",
    },
    "disagrees": {
        "style": "filled,bold",
        "fillcolor": "mistyrose",
        "color": "red",
        "penwidth": "2",
    },
    "agrees": {"style": "filled", "fillcolor": "honeydew", "color": "green4", "penwidth": "2"},
}

_LEGEND = {
    "parameter": "parameter (learned: has a gradient)",
    "input": "input (data)",
    "constant": "constant (a number)",
    "root": "root (the output)",
    "computed": "computed",
    "op": "op",
    "disagrees": "hand ≠ automatic gradient",
    "agrees": "hand = automatic gradient",
}

# Symbols read better than names for arithmetic; every other op shows its name (Tanh, Sum ...).
_SYMBOLS = {
    "Add": "+",
    "Sub": "-",
    "Mul": "*",
    "Div": "/",
    "Neg": "neg",
    "Pow(a, b)": "**",
    "MatMul": "@",
    "Sum(values)": "sum",
    "Dot": "dot",
}
_WITH_NUMBER = {
    "Pow": "**{:g}",
    "AddNumber": "{:+g}",
    "MulNumber": "*{:g}",
    "DivNumber": "/{:g}",
    "NumberSub": "{:g}-",
    "NumberDiv": "{:g}/",
    "NumberPow": "{:g}**",
}


class _Picture(graphviz.Digraph):
    """A Digraph whose inline SVG is as wide as the notebook cell that shows it (never wider
    than its own size), instead of its fixed size in points, which a wide graph would cut."""

    def _repr_image_svg_xml(self) -> str:
        svg: str = super()._repr_image_svg_xml()
        return fit_svg(svg)


def fit_svg(svg: str) -> str:
    """The SVG with its root's fixed width and height replaced by 100% of the width it is given,
    at most its own; the viewBox keeps the proportions."""
    root = re.search(r"<svg\b[^>]*>", svg)
    if root is None:
        return svg
    tag = root.group(0)
    width = re.search(r'\swidth="([^"]*)"', tag)
    fitted = re.sub(r'\s(width|height)="[^"]*"', "", tag)
    limit = f"max-width: {width.group(1)}; " if width else ""
    fitted = fitted.replace("<svg", f'<svg width="100%" style="{limit}height: auto"', 1)
    return svg[: root.start()] + fitted + svg[root.end() :]


@dataclass
class _Overlay:
    """One node's hand gradient against the engine's: the verdict and the text that shows it."""

    ok: bool
    text: str


def draw_graph(
    root: Node,
    rankdir: str = "LR",
    format: str = "svg",
    *,
    decimals: int = 4,
    size: str | tuple[float, float] | None = None,
    max_nodes: int = 1000,
    model: Any = None,
    gradients: GradientReport | Mapping[Any, Any] | None = None,
    legend: bool = True,
    inputs: Iterable[Node] = (),
) -> graphviz.Digraph:
    """Return a Graphviz Digraph of ``root`` and every node that produced it.

    Args:
        root: a Value or a Tensor. The graph is walked with an explicit stack, so a chain of any
            depth draws without touching Python's recursion limit.
        rankdir: "LR" (inputs on the left) or "TB" (inputs on top).
        format: the Digraph's output format for its own ``render``/``pipe`` (svg, png, pdf ...).
        decimals: significant digits of every number shown.
        size: Graphviz's size attribute, the largest drawing in inches: "8,5" or (8, 5).
        max_nodes: the most nodes (values and ops together) drawn; a bigger graph is refused,
            since a picture of thousands of nodes is unreadable and slow to lay out.
        model: an ``nn`` Module. Its parameters are labelled with their dotted names and grouped
            into one labelled cluster per layer: per top-level submodule (``layers.0``,
            ``layers.1``; a model with a single submodule and no parameters of its own is
            looked through), parameters of the model itself in a cluster of their own.
        gradients: hand-derived gradients to set against the engine's ``.grad``. Either an
            ``autograd.GradientReport`` (its rows named as ``model.named_parameters()``, or, without
            a model, as the labels/names of leaves of the graph; its own verdict is used), or a
            dict from parameter names (with ``model=``; labels/names of leaves without) or from
            nodes to gradients (floats, arrays, Values or Tensors). A dict's gradient agrees when
            every element is within ``GRADIENT_ATOL + GRADIENT_RTOL * |auto|`` (relative 1e-6).
            Disagreeing nodes are drawn red with both values, agreeing ones green.
        legend: add a legend explaining the kinds of node present.
        inputs: leaves to draw as inputs although they require grad (the data of an expression
            whose gradient you still want shown, as ``backproplab graph`` draws its ``--var``
            names). Without it a leaf that requires grad is a parameter, and one that does not
            an input (or a constant, for an unlabelled Value).

    Returns:
        the ``graphviz.Digraph``; in Jupyter it displays itself as SVG when ``dot`` is installed.

    Raises:
        ValueError: an unknown rankdir, decimals below 1, max_nodes below 1, a size that is not
            two positive numbers (or one, in a string), a graph of more than max_nodes nodes
            (the message gives the count and ways out), a gradient named after no parameter or
            leaf, or a hand gradient of the wrong shape.
        TypeError: root is not a Value or Tensor, or a gradients key is neither name nor node.
    """
    nodes = _checked(root, rankdir, decimals, max_nodes)
    size_attribute = _size_attribute(size)

    names, layers = naming.model_names(model) if model is not None else ({}, {})
    fmt = _Format(decimals)
    overlays = _overlays(gradients, nodes, names, fmt) if gradients is not None else {}
    g = _new_picture(rankdir, format, size_attribute)

    ids = {id(n): f"n{i}" for i, n in enumerate(nodes)}
    as_inputs = {id(n) for n in inputs}
    expressions = naming.names(nodes, model)
    clusters: dict[str, list[tuple[str, dict[str, str]]]] = {}
    kinds_seen: set[str] = set()
    for n in nodes:
        name = ids[id(n)]
        kind = _kind(n, root, as_inputs)
        kinds_seen.add(kind)
        full = names.get(id(n))
        layer = layers.get(full) if full is not None else None
        shown = _shown_name(n, full, layer, expressions[id(n)])
        over = overlays.get(id(n))
        if over is not None:
            kinds_seen.add("agrees" if over.ok else "disagrees")
        attrs = _attributes(n, kind, shown, over, fmt, rankdir)
        if layer is not None:
            clusters.setdefault(layer, []).append((name, attrs))
        else:
            g.node(name, **attrs)
        if n.op is not None:
            kinds_seen.add("op")
            _add_op(g, n, ids)

    used: set[str] = set()
    _add_clusters(g, clusters, list(dict.fromkeys(layers.values())), type(model).__name__, used)
    if legend:
        _add_legend(g, kinds_seen, _cluster_name("legend", used))
    return g


def _new_picture(rankdir: str, format: str, size: str | None) -> _Picture:
    """An empty Digraph with the graph-wide attributes every node and edge shares."""
    graph_attr = {"rankdir": rankdir}
    if size is not None:
        graph_attr["size"] = size
    return _Picture(
        "computation_graph",
        format=format,
        graph_attr=graph_attr,
        node_attr={"shape": "record", "fontname": "Helvetica", "fontsize": "11"},
        edge_attr={"arrowsize": "0.7"},
    )


_SIZE_NUMBER = re.compile(r"\s*(\d+\.?\d*|\.\d+)\s*")


def _size_attribute(size: Any) -> str | None:
    """Graphviz's size attribute: a string as given ("W,H", or "W" for both, either with
    Graphviz's final "!" to scale a small drawing up), a pair (W, H) as "W,H"; refused unless
    every number is a positive one, since dot ignores a size it cannot read, with a warning."""
    if size is None:
        return None
    if isinstance(size, str):
        parts = size.removesuffix("!").split(",")
        valid = len(parts) <= 2 and all(_SIZE_NUMBER.fullmatch(p) and float(p) > 0 for p in parts)
        text = size
    else:
        pair = list(size) if isinstance(size, (tuple, list)) else []
        valid = len(pair) == 2 and all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) and 0 < float(v) < math.inf
            for v in pair
        )
        text = ",".join(f"{v:g}" for v in pair) if valid else ""
    if not valid:
        raise ValueError(
            'size must be the largest drawing in inches, as "W,H" or (W, H) with W and H '
            f"positive numbers, got {size!r}"
        )
    return text


def _add_op(g: graphviz.Digraph, n: Node, ids: dict[int, str]) -> None:
    """The ellipse of the op that made ``n``, with an edge from each parent and one to ``n``."""
    name = ids[id(n)]
    g.node(f"{name}_op", _op_label(n), tooltip=_op_tooltip(n), **STYLES["op"])
    for p in n.parents:  # repeats kept: ``a + a`` shows both edges
        g.edge(ids[id(p)], f"{name}_op")
    g.edge(f"{name}_op", name)


def _add_clusters(
    g: graphviz.Digraph,
    clusters: dict[str, list[tuple[str, dict[str, str]]]],
    order: list[str],
    model_name: str,
    used: set[str],
) -> None:
    """One labelled box per layer around its parameters' nodes; ``order`` is the model's order
    of layers, and "" the model's own parameters (boxed under ``model_name``)."""
    # In the model's order (layers.0 first), not the walk's, which meets the last layer first.
    for layer in sorted(clusters, key=order.index):
        with g.subgraph(name=_cluster_name(layer or "model", used)) as c:
            title = layer or model_name
            c.attr(label=title, style="rounded,dashed", color="gray40", fontname="Helvetica")
            for name, attrs in clusters[layer]:
                c.node(name, **attrs)


def _checked(root: Any, rankdir: str, decimals: Any, max_nodes: Any) -> list[Node]:
    """The graph's nodes, parents first, once the arguments and the graph's size are checked."""
    if not isinstance(root, Node):
        raise TypeError(f"draw_graph() draws a Value or a Tensor, got {type(root).__name__}")
    if rankdir not in ("LR", "TB"):
        raise ValueError(f"rankdir must be 'LR' or 'TB', got {rankdir!r}")
    if isinstance(decimals, bool) or not isinstance(decimals, int) or decimals < 1:
        raise ValueError(f"decimals must be an int >= 1, got {decimals!r}")
    if isinstance(max_nodes, bool) or not isinstance(max_nodes, int) or max_nodes < 1:
        raise ValueError(f"max_nodes must be an int >= 1, got {max_nodes!r}")
    nodes = naming.walk(root)
    ops = sum(1 for n in nodes if n.op is not None)
    if len(nodes) + ops > max_nodes:
        raise ValueError(
            f"the graph has {len(nodes) + ops:,} nodes ({len(nodes):,} values and {ops:,} ops), "
            f"more than max_nodes={max_nodes:,}: draw a smaller piece of it (one sub-expression, "
            "one layer or one sample), build it from Tensors instead of scalar Values (one node "
            "per array, not per number), or raise max_nodes and pass model= to group the "
            "parameters by layer so that it stays readable"
        )
    return nodes


def _attributes(
    n: Node, kind: str, shown: str, over: _Overlay | None, fmt: _Format, rankdir: str
) -> dict[str, str]:
    """A node's DOT attributes: its kind's style (or the overlay's), and its record."""
    fields = _value_fields(n, shown, fmt) if isinstance(n, Value) else _tensor_fields(n, shown, fmt)
    attrs = dict(STYLES[kind])
    if over is not None:
        fields.append(over.text)
        attrs.update(STYLES["agrees" if over.ok else "disagrees"])
    # A record lays its top-level fields out across the flow (a column in LR) and braces flip
    # that; so a Value is one row in either direction, as micrograd draws it, and a Tensor, whose
    # fields are longer, one column.
    flip = isinstance(n, Value) == (rankdir == "LR")
    attrs["label"] = _record(fields, flip)
    return attrs


def render(graph: graphviz.Digraph, path: str | os.PathLike[str], *, quiet: bool = False) -> Path:
    """Write ``graph`` to ``path`` in the format its suffix names (.svg, .png or .pdf).

    The DOT source is always written beside it with the suffix .gv (``out.svg`` -> ``out.gv``);
    a path ending in .gv or .dot asks for the source alone. Missing folders are created.
    Without Graphviz's ``dot`` only the source is written, and one line on stderr (unless
    ``quiet``) says how to install ``dot``, with no traceback.

    Returns:
        the picture's path, or the source's when no picture could be made (no ``dot``): compare
        the returned path with the one asked for to tell.

    Raises:
        ValueError: the suffix is none of .svg, .png, .pdf, .gv, .dot.
        RuntimeError: ``dot`` is there but failed (its message included).
        OSError: the files cannot be written (see ``nn.files.safe_write``: a device, FIFO or
            directory is never replaced, and a failed write leaves the old file).
    """
    target = Path(path)
    fmt = target.suffix.lower().lstrip(".")
    if fmt not in (*FORMATS, "gv", "dot"):
        raise ValueError(
            f"cannot render to {target.name!r}: unknown suffix {target.suffix!r} "
            f"(use .svg, .png or .pdf, or .gv for the DOT source alone)"
        )
    source = target if fmt in ("gv", "dot") else target.with_suffix(".gv")
    # Both files by nn.files' rules, both checked first: a picture that cannot be replaced (a
    # FIFO, a directory) refuses before the source beside it is written.
    check_target(target)
    check_target(source)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(source, graph.source.encode("utf-8"))
    if source == target:
        return source
    try:
        # quiet: dot's warnings would go to our stderr; a failure carries them in the exception.
        picture = graph.pipe(format=fmt, quiet=True)
    except graphviz.ExecutableNotFound:
        if not quiet:
            print(
                f"Graphviz's dot is not installed, so only the DOT source was written to "
                f"{source}: install it with '{DOT_HINT}'",
                file=sys.stderr,
            )
        return source
    except graphviz.CalledProcessError as e:
        detail = e.stderr.decode(errors="replace").strip() if isinstance(e.stderr, bytes) else ""
        raise RuntimeError(f"dot could not render {source} as {fmt}: {detail or e}") from None
    write_bytes(target, picture)
    return target


def _kind(n: Node, root: Node, inputs: set[int]) -> str:
    if n is root:
        return "root"
    if n.op is not None:
        return "computed"
    if n.requires_grad:
        return "input" if id(n) in inputs else "parameter"
    return "constant" if isinstance(n, Value) and not n.label else "input"


# --- labels --------------------------------------------------------------------------------------


class _Format:
    """Numbers with a fixed count of significant digits."""

    def __init__(self, digits: int) -> None:
        self.digits = digits

    def num(self, x: Any) -> str:
        # + 0.0 turns -0.0 into 0.0: a learner reads "-0" as a bug
        return f"{float(x) + 0.0:.{self.digits}g}"

    def array(self, a: np.ndarray) -> str:
        text = np.array2string(
            a, separator=", ", formatter={"float_kind": self.num, "int_kind": self.num}
        )
        return " ".join(text.split())  # one line: 2-D arrays come back over several

    def summary(self, a: np.ndarray) -> str:
        """The values themselves for up to six elements, else norm, min and max."""
        if a.size <= 6:
            return self.array(a) if a.ndim else self.num(a)
        x = a.astype(np.float64)
        return f"norm {self.num(np.linalg.norm(x))} min {self.num(x.min())} max {self.num(x.max())}"


def _escape(text: str) -> str:
    """Make text safe inside a record label, where braces, bars and angles are structure."""
    text = " ".join(str(text).split())  # a newline would end the field
    return re.sub(r'([\\{}|<>"])', r"\\\1", text)


def _record(fields: list[str], flip: bool) -> str:
    body = " | ".join(_escape(f) for f in fields)
    return "{ " + body + " }" if flip else body


def _shown_name(n: Node, full: str | None, layer: str | None, name: str) -> str:
    if full is not None and layer:
        # Inside a layer's cluster its name is already on the cluster: show the rest.
        return full[len(layer) + 1 :]
    if n.op is None and isinstance(n, Value) and not n.label and not n.requires_grad:
        return ""  # a constant: its name is its number, which the record shows as its data
    return name


def _plain(x: Any) -> Any:
    """A gradient's data: ``.grad`` is a node itself after ``backward(create_graph=True)``."""
    return x.data if isinstance(x, Node) else x


def _value_fields(n: Node, shown: str, fmt: _Format) -> list[str]:
    fields = [shown] if shown else []
    fields.append(f"data {fmt.num(n.data)}")
    if n.requires_grad:  # a constant never gets a gradient: a "grad 0" would mislead
        fields.append(f"grad {fmt.num(_plain(n.grad))}")
    return fields


def _tensor_fields(n: Node, shown: str, fmt: _Format) -> list[str]:
    data = np.asarray(n.data)
    shape = "×".join(map(str, data.shape)) if data.shape else "scalar"
    fields = [shown, f"{shape} {data.dtype}", f"data {fmt.summary(data)}"]
    if n.requires_grad:
        grad = _plain(n.grad)
        fields.append("grad none" if grad is None else f"grad {fmt.summary(np.asarray(grad))}")
    return fields


def _op_label(n: Node) -> str:
    assert n.op is not None
    name = n.op.name
    if name in _WITH_NUMBER and n.params:  # a number operand is a param: show it on the op
        return _WITH_NUMBER[name].format(n.params[0])
    if name == "Dense":  # one node for a whole layer: say which parts it stands for
        act = n.params[0]
        affine = "x@W+b" if len(n.parents) == 3 else "x@W"
        return affine if act is None else f"{act.name.lower()}({affine})"
    if name == "SquaredError":
        return "Σ(p−t)²" if n.params[0] == 1.0 else "mean (p−t)²"
    return _SYMBOLS.get(name, name)


def _op_tooltip(n: Node) -> str:
    assert n.op is not None
    if not n.params:
        return n.op.name
    args = ", ".join(
        getattr(s, "name", s.__name__) if isinstance(s, type) else repr(s) for s in n.params
    )
    return f"{n.op.name} ({args[:80]})"


# --- model clusters ------------------------------------------------------------------------------


def _cluster_name(text: str, used: set[str]) -> str:
    base = "cluster_" + re.sub(r"\W", "_", text)
    name, k = base, 1
    while name in used:  # "layers.0" and "layers_0" must not merge into one cluster
        k += 1
        name = f"{base}_{k}"
    used.add(name)
    return name


def _add_legend(g: graphviz.Digraph, kinds: set[str], name: str) -> None:
    with g.subgraph(name=name) as c:
        c.attr(label="legend", style="rounded", color="gray70", fontname="Helvetica")
        for kind, text in _LEGEND.items():
            if kind in kinds:
                attrs = dict(STYLES[kind])
                if kind != "op":
                    attrs["shape"] = "box"
                attrs["fontsize"] = "9"
                c.node(f"legend_{kind}", text, **attrs)


# --- the manual-vs-automatic overlay -------------------------------------------------------------


def _overlays(
    gradients: GradientReport | Mapping[Any, Any],
    nodes: list[Node],
    names: dict[int, str],
    fmt: _Format,
) -> dict[int, _Overlay]:
    """id(node) -> its overlay, for each node the hand gradients name."""
    by_name = _name_index(nodes, names)
    drawn = {id(n) for n in nodes}
    out: dict[int, _Overlay] = {}
    if isinstance(gradients, GradientReport):
        for row in gradients.rows:
            node = _resolve(row.name, by_name, names)
            if node is None:
                continue  # a parameter of the model that this piece of the graph does not use
            # A row that could not be compared at all (no hand gradient, a wrong shape) says why;
            # getattr: older reports have no such field.
            problem = getattr(row, "problem", None)
            if problem:
                out[id(node)] = _Overlay(False, f"hand: {problem}")
                continue
            c = row.manual
            if c is None:
                continue
            at = f" at {list(c.worst)}" if c.worst else ""
            if c.ok:
                text = f"hand = auto (max |diff| {fmt.num(c.max_abs)})"
            else:
                text = f"hand {fmt.num(c.a_worst)} ≠ auto {fmt.num(c.b_worst)}{at}"
            out[id(node)] = _Overlay(c.ok, text)
        return out
    if not isinstance(gradients, Mapping):
        raise TypeError(
            f"gradients= takes a GradientReport or a dict, got {type(gradients).__name__}"
        )
    for key, hand in gradients.items():
        if isinstance(key, Node):
            if id(key) not in drawn:
                raise ValueError(f"gradients= names a node that is not in this graph: {key!r:.80}")
            node, label = key, names.get(id(key)) or _label(key) or "a node"
        elif isinstance(key, str):
            found = _resolve(key, by_name, names)
            if found is None:
                continue
            node, label = found, key
        else:
            raise TypeError(
                f"gradients= keys are parameter names or nodes, got {type(key).__name__}"
            )
        out[id(node)] = _check(node, label, _plain(hand), fmt)
    return out


def _name_index(nodes: list[Node], names: dict[int, str]) -> dict[str, list[Node]]:
    """The graph's nodes by model name, and its leaves by label/name too."""
    index: dict[str, list[Node]] = {}
    for n in nodes:
        for key in {names.get(id(n)), _label(n) if n.op is None else None}:
            if key:
                index.setdefault(key, []).append(n)
    return index


def _label(n: Node) -> str:
    return str(getattr(n, "label", "") or getattr(n, "name", ""))


def _resolve(name: str, by_name: dict[str, list[Node]], names: dict[int, str]) -> Node | None:
    """The node a hand gradient's name means; None for a model parameter not in this graph."""
    found = by_name.get(name, [])
    if len(found) > 1:
        raise ValueError(
            f"gradients= names {name!r}, which labels {len(found)} leaves of the graph: "
            "label them apart, pass model= to use parameter names, or key the dict by node"
        )
    if found:
        return found[0]
    if name in names.values():
        return None
    known = sorted({k for k in by_name})
    hint = ", ".join(repr(k) for k in known[:6]) + (" ..." if len(known) > 6 else "")
    raise ValueError(
        f"gradients= names {name!r}, which is neither a parameter of the model nor the label of "
        f"a leaf in the graph (known: {hint or 'none'})"
    )


def _check(node: Node, label: str, hand: Any, fmt: _Format) -> _Overlay:
    auto = _plain(node.grad)
    if auto is None:
        return _Overlay(False, f"hand {_brief(hand, fmt)}, auto none: run backward() first")
    if np.shape(hand) != np.shape(auto):
        raise ValueError(
            f"the hand gradient for {label} has shape {np.shape(hand)}, "
            f"its node's gradient has shape {np.shape(auto)}"
        )
    c = compare(hand, auto, GRADIENT_ATOL, GRADIENT_RTOL)
    at = f" at {list(c.worst)}" if c.worst else ""
    if not c.ok:
        return _Overlay(False, f"hand {fmt.num(c.a_worst)} ≠ auto {fmt.num(c.b_worst)}{at}")
    if np.ndim(auto) == 0:
        return _Overlay(True, f"hand {fmt.num(hand)} = auto")
    return _Overlay(True, f"hand = auto (max |diff| {fmt.num(c.max_abs)})")


def _brief(x: Any, fmt: _Format) -> str:
    a = np.asarray(x, dtype=np.float64)
    return fmt.num(a) if a.ndim == 0 else f"of shape {'×'.join(map(str, a.shape))}"
