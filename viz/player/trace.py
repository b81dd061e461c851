"""The trace: the backward pass replayed node by node through the ops' own rules, with what each
rule sent along each edge, ready to be drawn and stepped through.

Every node field and every rule call goes through ``_read``, so that a change of the engine's
node interface is a change here alone. Names come from ``autograd.naming``, as in every other
picture of a graph.
"""

from __future__ import annotations

import functools
import inspect
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from backproplab.autograd import Node, naming

FULL_ARRAY = 16
"""Arrays with at most this many elements are carried (and shown) whole; bigger ones summarised."""


@dataclass
class View:
    """What the player needs of one node."""

    node: Node
    data: Any
    parents: tuple[Node, ...]
    op: Any  # the Op class, None for a leaf
    params: tuple[Any, ...]
    label: str
    requires_grad: bool
    is_array: bool
    rule: Callable[[Any], tuple[Any, ...]]  # g -> one gradient (or None) per input
    arg_names: tuple[str, ...] | None  # the rule's names for the inputs, then the params


def read(n: Node) -> View:
    """The one place that reads a node's fields and calls its op's rule.

    Rules run through ``engine.call_backward`` with the node kind's ``xp``, exactly as the
    backward pass runs them, and ``fit_gradient`` undoes broadcasting as the pass does.
    """
    from backproplab.autograd import engine

    op: Any = n.op
    parents: tuple[Node, ...] = tuple(n.parents)
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

    return View(
        node=n,
        data=n.data,
        parents=parents,
        op=op,
        params=params,
        label=str(n.label or ""),
        requires_grad=bool(n.requires_grad),
        is_array=isinstance(n.data, np.ndarray),
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


def walk(root: Node) -> list[View]:
    """Every node root depends on, read once, each after its parents, root last."""
    return [read(n) for n in naming.walk(root)]


def build(views: list[View], model: Any) -> dict[str, Any]:
    """Replay the backward pass through the rules, node by node, and record what each did."""
    params, layers = naming.model_names(model) if model is not None else ({}, {})
    names = naming.names([v.node for v in views], model)
    nodes, groups = _nodes(views, names, params, layers)
    index = {id(v.node): i for i, v in enumerate(views)}
    edges: list[dict[str, Any]] = []
    into: list[list[int]] = [[] for _ in views]  # edges ending at each node
    for t, v in enumerate(views):
        for k, p in enumerate(v.parents):
            into[t].append(len(edges))
            edges.append({"id": len(edges), "source": index[id(p)], "target": t, "input": k})
    order = _replay(views, nodes, edges, into)
    for edge in edges:  # edges whose target needs no gradient carried nothing
        edge.setdefault("local", None)
        edge.setdefault("contribution", None)
        edge.setdefault("filled", None)
    root = len(views) - 1
    # A leaf takes no step of its own: its gradient arrives with the rules that feed it.
    steps = [i for i in order if views[i].op is not None or i == root]
    step_of = {i: k + 1 for k, i in enumerate(steps)}
    complete = {i: step_of.get(i, 1) for i in order}  # one no rule reached is whole (0) at once
    for e in edges:
        if e["contribution"] is not None or "summary" in e:
            s = e["source"]
            complete[s] = max(complete[s], step_of[e["target"]])
    for i, node in enumerate(nodes):
        node["complete_at"] = complete.get(i)
    return {
        "nodes": nodes,
        "edges": edges,
        "steps": steps,
        "order": order,
        "first_wrong": None,
        "diagnosis": None,
        "tolerance": None,
        "groups": [{"name": k, "members": m} for k, m in groups.items()],
    }


def _nodes(
    views: list[View], names: dict[int, str], params: dict[int, str], layers: dict[str, str]
) -> tuple[list[dict[str, Any]], dict[str, list[int]]]:
    root = len(views) - 1
    nodes: list[dict[str, Any]] = []
    groups: dict[str, list[int]] = {}
    for i, v in enumerate(views):
        name = names[id(v.node)]
        full = params.get(id(v.node))
        shown = name
        if full is not None and layers.get(full):
            layer = layers[full]
            groups.setdefault(layer, []).append(i)
            shown = full[len(layer) + 1 :]  # inside its layer's box, the box names the layer
        kind = "root" if i == root else "computed" if v.op is not None else None
        if kind is None:
            kind = "parameter" if v.requires_grad else "input"
        node: dict[str, Any] = {
            "id": i,
            "label": full or v.label,
            "name": name,
            "shown": shown,
            "op": None if v.op is None else _op_name(v),
            "kind": kind,
            "formula": None if v.op is None else formula(v.op),
            "value": None,
            "grad": None,
        }
        if v.is_array:
            data = np.asarray(v.data)
            node["shape"] = list(data.shape)
            node["dtype"] = str(data.dtype)
            node["summary"] = {"value": summary(data), "grad": None}
            node["value"] = to_json(data) if data.size <= FULL_ARRAY else None
        else:
            node["value"] = to_json(v.data)
        nodes.append(node)
    return nodes, groups


def _replay(
    views: list[View],
    nodes: list[dict[str, Any]],
    edges: list[dict[str, Any]],
    into: list[list[int]],
) -> list[int]:
    """Run each rule once, in the pass's order, and record its edges; returns that order."""
    # The walk reversed puts each node after every node it feeds.
    order = [i for i in reversed(range(len(views))) if views[i].requires_grad]
    root = len(views) - 1
    arrived: list[Any] = [None] * len(views)
    arrived[root] = np.ones_like(views[root].data) if views[root].is_array else 1.0
    for i in order:
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
            if not views[s].requires_grad or gp is None:
                edge["local"], edge["contribution"] = None, None
                continue
            edge["local"] = None if local is None else to_json(local)
            edge["_c"] = gp  # unrounded, for the manual check; dropped before the page is written
            if views[s].is_array:
                a = np.asarray(gp)
                edge["contribution"] = to_json(a) if a.size <= FULL_ARRAY else None
                edge["summary"] = summary(a)
                edge["shape"] = list(a.shape)
            else:
                edge["contribution"] = to_json(gp)
            names = [str(nodes[edges[k]["source"]]["name"]) for k in into[i]]
            nodes[i]["rule"] = named(v, names, str(nodes[i]["name"]))
            edge["filled"] = filled(v, edge["input"], g, gp, names, str(nodes[i]["name"]))
            arrived[s] = gp if arrived[s] is None else arrived[s] + gp
    return order


def _set_grad(node: dict[str, Any], g: Any, is_array: bool) -> None:
    if is_array:
        a = np.asarray(g)
        node["grad"] = to_json(a) if a.size <= FULL_ARRAY else None
        node["summary"]["grad"] = summary(a)
        node["_grad"] = a  # kept for the manual check, dropped before the page is written
    else:
        node["grad"] = to_json(g)
        node["_grad"] = float(g)


_WITH_NUMBER = {
    "Pow": "**{c}",
    "AddNumber": "+ {c}",
    "MulNumber": "* {c}",
    "DivNumber": "/ {c}",
    "NumberSub": "{c} -",
    "NumberDiv": "{c} /",
    "NumberPow": "{c} **",
}


def _op_name(v: View) -> str:
    name: str = v.op.name
    if name in _WITH_NUMBER and v.params and isinstance(v.params[0], (int, float)):
        return _WITH_NUMBER[name].format(c=num(v.params[0]))
    if name == "Dense" and v.params:
        act = v.params[-1]
        affine = "x@W+b" if len(v.parents) == 3 else "x@W"
        return affine if act is None else f"{act.name.lower()}({affine})"
    return name


@functools.cache
def formula(op: Any) -> str:
    """The op's docstring up to its first blank line, on one line, without its asides."""
    doc = op.__dict__.get("__doc__") or ""
    lines = []
    for line in doc.strip().split("\n\n")[0].splitlines():
        lines.append(re.sub(r"\s{3,}\(.*$", "", line.strip()))  # "   (a primitive: ...)"
    return " ".join(" ".join(lines).split())


_CLAUSE = re.compile(r"(?:^|[;,]\s*)(d[A-Za-z_]\w*)\s*=\s*")
_WORD = re.compile(r"\b[A-Za-z_]\w*\b")


def filled(
    v: View, position: int, g: float, result: Any, inputs: list[str], own: str
) -> str | None:
    """The rule's clause for one input, in the graph's own names, then with the numbers in:
    ``d(w1) = g · x1 = 0.5 · 2 = 1``. ``inputs`` are the names of v's inputs, ``own`` v's."""
    if v.is_array or v.arg_names is None or v.op is None:
        return None
    _, semi, derivative = formula(v.op).partition(";")
    if not semi:
        return None
    arg = v.arg_names[position]
    matches = list(_CLAUSE.finditer(derivative.strip()))
    derivative = derivative.strip()
    found = [k for k, m in enumerate(matches) if m.group(1).lower() == "d" + arg.lower()]
    if not found:
        return None
    k = found[0]
    end = matches[k + 1].start() if k + 1 < len(matches) else len(derivative)
    rhs = derivative[matches[k].end() : end].strip().rstrip(",;").strip()
    words: dict[str, str] = {"out": own}
    numbers: dict[str, Any] = {"g": g, "out": v.data}
    for name, value, shown in zip(
        v.arg_names, [*(p.data for p in v.parents), *v.params], [*inputs, *v.params], strict=False
    ):
        words[name] = _word(shown)
        numbers[name] = value
    # g is the gradient arriving at v; were a node named g too, call it d(own) instead.
    words["g"] = "g" if "g" not in inputs and own != "g" else d(own)

    def put(table: dict[str, str]) -> Callable[[re.Match[str]], str]:
        def one(mt: re.Match[str]) -> str:
            text = table.get(mt.group(0))
            if text is None:
                return mt.group(0)
            atom = re.fullmatch(r"[\w.]+|[\w.]*\(.*\)", text) is not None
            return text if atom and not text.startswith("-") else f"({text})"

        return one

    shown_numbers = {
        key: num(x)
        for key, x in numbers.items()
        if isinstance(x, (int, float)) and not isinstance(x, bool)
    }
    symbolic = _WORD.sub(put(words), rhs).replace(" * ", " · ")
    with_numbers = _WORD.sub(put(shown_numbers), rhs).replace(" * ", " · ")
    said = [symbolic, with_numbers, num(result)]
    said = [x for k, x in enumerate(said) if k == 0 or x != said[k - 1]]  # "g = 0.5", not twice
    return f"{d(inputs[position])} = " + " = ".join(said)


def named(v: View, inputs: list[str], own: str) -> str | None:
    """The op's whole rule in the graph's own names: ``o = tanh(n); d(n) = g · (1 - o ** 2)``,
    so that no letter of the op's (a, b, x) can be read as one of the user's."""
    if v.op is None or v.arg_names is None:
        return None
    words: dict[str, str] = {"out": own}
    for arg, shown in zip(v.arg_names, [*inputs, *v.params], strict=False):
        words[arg] = _word(shown)
        words["d" + arg] = d(words[arg])
    words["g"] = "g" if "g" not in inputs and own != "g" else d(own)

    rule = formula(v.op)

    def one(mt: re.Match[str]) -> str:
        text = words.get(mt.group(0))
        if text is None:
            return mt.group(0)
        before, after = rule[mt.start() - 1 : mt.start()], rule[mt.end() : mt.end() + 1]
        # no brackets where the rule has its own, or on the left of "=" (o = ...; d(n) = ...)
        left = rule[mt.end() :].startswith(" =") or mt.start() == 0
        alone = (before in "(" and after in "),") or (after in ("", " ") and left)
        atom = re.fullmatch(r"[\w.]+|[\w.]*\(.*\)", text) is not None and text[0] != "-"
        return text if alone or atom or text.startswith("d(") else f"({text})"

    return _WORD.sub(one, rule).replace(" * ", " · ")


def _word(x: Any) -> str:
    """A rule's argument as text: a name, a number, or what else a param holds (an axis)."""
    if isinstance(x, str):
        return x
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return num(x)
    return repr(x)


def d(name: str) -> str:
    """d of a name, bracketed: d(x1), d(x1*w1 + b)."""
    return f"d({name})"


def num(x: Any) -> str:
    """Four significant digits, as every picture prints; -0 as 0."""
    return naming.number(x)


def summary(a: np.ndarray) -> dict[str, Any]:
    """min, max, mean, the largest magnitude and the norm of an array, JSON-ready."""
    x = np.asarray(a, dtype=np.float64)
    if x.size == 0:
        return {"min": None, "max": None, "mean": None, "maxabs": None, "norm": 0.0}
    return {
        "min": to_json(x.min()),
        "max": to_json(x.max()),
        "mean": to_json(x.mean()),
        "maxabs": to_json(np.abs(x).max()),
        "norm": to_json(np.linalg.norm(x)),
    }


def to_json(x: Any) -> Any:
    """A number or array as JSON can hold it: nested lists, non-finite numbers as strings."""
    if isinstance(x, np.ndarray):
        if x.ndim == 0:
            return to_json(x.item())
        return [to_json(y) for y in x]
    if isinstance(x, Node):
        return to_json(x.data)
    f = float(x)
    if math.isfinite(f):
        return f
    return "NaN" if math.isnan(f) else ("Infinity" if f > 0 else "-Infinity")
