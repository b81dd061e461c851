"""What a node is called: one name per node, asked for by the graph picture, the player, the
command line and the checkers alike, so that the same node never has two names.

- A leaf is its label (a Value's ``label``, a Tensor's ``name``), or with a model its
  parameter's dotted name (``layers.0.weight``); an unlabelled number is its value (``2``), an
  unlabelled array ``tensor 5×2``.
- A computed node with a label of its own is that label. Otherwise it is named by the
  subexpression that made it (``x1*w1 + x2*w2``), written from its inputs' names with the usual
  symbols and only the brackets it needs; past ``WIDTH`` characters its longest operands give
  way to an ellipsis (``tanh(… + b)``).
- A computed node that reads a layer's parameters is named by that layer and its op
  (``layers.0 · Dense``).

Nothing here prints a node's id or a counter: ``Op#8`` names nothing a learner wrote.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import numpy as np

from .engine import Node

__all__ = ["WIDTH", "model_names", "names", "number", "walk"]

WIDTH = 28
"""The longest name a subexpression gets; past it, operands are shortened to an ellipsis."""

# Binding strength of a piece of text, for brackets: names and calls bind tightest, sums least.
_ATOM, _POWER, _UNARY, _PRODUCT, _SUM = 3.0, 2.0, 1.5, 1.0, 0.0
_INFIX = {
    "Add": (" + ", _SUM),
    "Sub": (" - ", _SUM),
    "Mul": ("*", _PRODUCT),
    "Div": ("/", _PRODUCT),
    "MatMul": (" @ ", _PRODUCT),
    "Pow(a, b)": ("**", _POWER),
}
# Ops with a number operand kept as a param (x + 2 is AddNumber(x; 2)).
_WITH_A_NUMBER = {
    "AddNumber": ("{x} + {k}", _SUM),
    "MulNumber": ("{x}*{k}", _PRODUCT),
    "DivNumber": ("{x}/{k}", _PRODUCT),
    "NumberSub": ("{k} - {x}", _SUM),
    "NumberDiv": ("{k}/{x}", _PRODUCT),
    "NumberPow": ("{k}**{x}", _POWER),
    "Pow": ("{x}**{k}", _POWER),
}
_ELLIPSIS = ("…", _ATOM)


def number(x: Any) -> str:
    """Four significant digits, as every picture prints numbers; -0 as 0, NaN as NaN."""
    f = float(x)
    if f != f:
        return "NaN"
    return f"{f + 0.0:.4g}"


def walk(root: Node) -> list[Node]:
    """Every node ``root`` depends on, each after all of its parents, root last.

    An explicit stack, so a chain a million deep needs no recursion; nodes are keyed by id(),
    since a Tensor's == is elementwise.
    """
    order: list[Node] = []
    expanded: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if id(node) in expanded:
            continue
        expanded.add(id(node))
        stack.append((node, True))
        for p in reversed(node.parents):  # reversed: the first input is numbered first
            if id(p) not in expanded:
                stack.append((p, False))
    return order


def model_names(model: Any) -> tuple[dict[int, str], dict[str, str]]:
    """id(parameter) -> its dotted name, and dotted name -> the layer it belongs to.

    The layer is the top-level submodule (``layers.0``), looking through wrappers: a model whose
    only content is one submodule is split by that submodule's children instead.

    Raises:
        TypeError: ``model`` has no ``named_parameters``/``named_children`` (not an nn Module).
    """
    if not hasattr(model, "named_parameters") or not hasattr(model, "named_children"):
        raise TypeError(f"model= takes an nn.Module, got {type(model).__name__}")
    params = {id(p): name for name, p in model.named_parameters()}
    base, module = "", model
    children = list(module.named_children())
    while len(children) == 1 and not _has_own_parameters(module, children):
        child_name, module = children[0]
        base = f"{base}{child_name}."
        children = list(module.named_children())
    prefixes = [base + name for name, _ in children]
    layers: dict[str, str] = {}
    for full in params.values():
        # The longest matching prefix wins: "layers.1" must not claim "layers.10.weight".
        match = max((p for p in prefixes if full.startswith(p + ".")), key=len, default=None)
        layers[full] = match if match is not None else base.rstrip(".")
    return params, layers


def _has_own_parameters(module: Any, children: list[tuple[str, Any]]) -> bool:
    inside = tuple(f"{name}." for name, _ in children)
    return any(not full.startswith(inside) for full, _ in module.named_parameters())


def names(nodes: Node | Iterable[Node], model: Any = None, *, width: int = WIDTH) -> dict[int, str]:
    """id(node) -> its name, for ``nodes`` (a root, whose whole graph is named, or nodes listed
    parents first, as ``walk`` gives them).

    Args:
        nodes: a root node, or nodes in topological order.
        model: an nn Module whose parameters are named by their dotted names.
        width: the longest subexpression, in characters (default ``WIDTH``).

    Raises:
        TypeError: model is not an nn Module.
        ValueError: width below 8.
    """
    if isinstance(width, bool) or not isinstance(width, int) or width < 8:
        raise ValueError(f"width must be an int >= 8, got {width!r}")
    order = walk(nodes) if isinstance(nodes, Node) else list(nodes)
    params, layers = model_names(model) if model is not None else ({}, {})
    texts: dict[int, tuple[str, float]] = {}
    for n in order:
        texts[id(n)] = _name(n, texts, params, layers, width)
    return {k: text for k, (text, _) in texts.items()}


def _name(
    n: Node,
    texts: dict[int, tuple[str, float]],
    params: dict[int, str],
    layers: dict[str, str],
    width: int,
) -> tuple[str, float]:
    own = params.get(id(n)) or str(getattr(n, "label", "") or "")
    if own:
        return own, _ATOM
    if n.op is None:
        data = n.data
        if isinstance(data, np.ndarray):
            shape = "×".join(map(str, data.shape))
            return (f"tensor {shape}" if shape else "tensor"), _ATOM
        return number(data), _ATOM if float(data) >= 0 else _UNARY
    layer = _layer_of(n, params, layers)
    if layer:
        return f"{layer} · {n.op.name}", _ATOM
    parts = [texts.get(id(p), _ELLIPSIS) for p in n.parents]
    return _fit(n, parts, width)


def _layer_of(n: Node, params: dict[int, str], layers: dict[str, str]) -> str:
    """The one layer whose parameters ``n`` reads directly ('' for none, or for several)."""
    found = {layers.get(params[id(p)], "") for p in n.parents if id(p) in params}
    return found.pop() if len(found) == 1 else ""


def _fit(n: Node, parts: list[tuple[str, float]], width: int) -> tuple[str, float]:
    """The op's text on its operands, its longest operands shortened to … until it fits."""
    parts = list(parts)
    text = _op_text(n, parts)
    while len(text[0]) > width:
        long = [k for k, p in enumerate(parts) if p != _ELLIPSIS]
        if not long:
            return text[0][: width - 1] + "…", text[1]
        k = max(long, key=lambda j: len(parts[j][0]))
        parts[k] = _shorter(parts[k])
        text = _op_text(n, parts)
    return text


def _shorter(part: tuple[str, float]) -> tuple[str, float]:
    """A call keeps its function's name (``exp(…)``); anything else becomes ``…``."""
    m = re.match(r"[A-Za-z_]\w*\(", part[0])
    if m is None or not part[0].endswith(")") or part[0] == m.group(0) + "…)":
        return _ELLIPSIS
    depth = 0
    for k in range(m.end() - 1, len(part[0])):
        depth += {"(": 1, ")": -1}.get(part[0][k], 0)
        if depth == 0:  # the first bracket closes here: a single call only if at the end
            return (m.group(0) + "…)", _ATOM) if k == len(part[0]) - 1 else _ELLIPSIS
    return _ELLIPSIS


def _op_text(n: Node, parts: list[tuple[str, float]]) -> tuple[str, float]:
    """The text of op ``n`` on its operands' texts, with its binding strength."""
    assert n.op is not None
    name = n.op.name
    args = tuple(n.params)

    def wrap(part: tuple[str, float], at_least: float) -> str:
        return part[0] if part[1] >= at_least else f"({part[0]})"

    if name in _INFIX and len(parts) == 2:
        symbol, strength = _INFIX[name]
        power = strength == _POWER
        # Left-associative, so a - (b - c) keeps its brackets; ** is right-associative.
        left_needs = strength + (0.5 if power else 0.0)
        right_needs = strength if name in ("Add", "Mul") else strength + (0.0 if power else 0.5)
        right = wrap(parts[1], right_needs)
        if right.startswith("-"):  # a*(-2.5) rather than a*-2.5, which reads as a typo
            right = f"({right})"
        return wrap(parts[0], left_needs) + symbol + right, strength
    if name in _WITH_A_NUMBER and len(parts) == 1 and args and _is_number(args[0]):
        template, strength = _WITH_A_NUMBER[name]
        k = float(args[0])
        if name == "AddNumber" and k < 0:  # x - 2 is recorded as x + (-2)
            template, k = "{x} - {k}", -k
        text = number(k) if k >= 0 else f"({number(k)})"
        x = wrap(parts[0], strength + (0.0 if template.startswith("{x}") else 0.5))
        if name == "Pow":
            x = wrap(parts[0], _ATOM)
        return template.format(x=x, k=text), strength
    if name == "Neg" and len(parts) == 1:
        return "-" + wrap(parts[0], _POWER), _UNARY
    if name == "Sum(values)":
        return " + ".join(wrap(p, _SUM) for p in parts), _SUM
    if name == "Dot" and len(parts) % 2 == 0:
        half = len(parts) // 2
        pairs = zip(parts[:half], parts[half:], strict=True)
        return " + ".join(f"{wrap(a, _PRODUCT)}*{wrap(b, _PRODUCT + 0.5)}" for a, b in pairs), _SUM
    return f"{name.lower()}({', '.join(p[0] for p in parts)})", _ATOM


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)
