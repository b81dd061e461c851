"""The learner's own gradients on the page: each judged against the engine's, the first wrong one
in backward order found, and what went wrong there said in words.

The words about the gradient itself (a missing local factor, a fan-out term left out, a sign,
a shape) come from ``autograd.diagnose``, which every checker shares; this module adds what only
the pass can tell: whether the gradient arriving from upstream was right, so that the mistake is
in this step, or was already wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from backproplab.autograd import Node
from backproplab.autograd.diagnose import Diagnosis, diagnose

from .trace import FULL_ARRAY, View, d, num, to_json


def check(
    trace: dict[str, Any],
    views: list[View],
    manual: Mapping[str, Any],
    rtol: float,
    atol: float,
) -> None:
    """Judge each manual gradient, find the first wrong one in backward order, say why.

    Raises:
        TypeError: manual is not a mapping, or a gradient is not numbers.
        ValueError: a name labels no node or several, or a constant; a gradient of the wrong
            shape, or holding NaN or infinity.
    """
    if not isinstance(manual, Mapping):
        raise TypeError(f"manual= takes a dict from labels to gradients, got {type(manual)}")
    nodes = trace["nodes"]
    given = {i: m for i, m in (_read_one(nodes, views, k, v) for k, v in manual.items())}
    for i, m in given.items():
        nodes[i]["manual"] = to_json(m) if m.size <= FULL_ARRAY else None

    def close(a: Any, b: Any) -> bool:
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        return bool(np.all(np.abs(a - b) <= atol + rtol * np.abs(b)))

    for i, m in given.items():
        nodes[i]["verdict"] = "right" if close(m, nodes[i]["_grad"]) else "wrong"
    trace["tolerance"] = {"rtol": rtol, "atol": atol}
    # A gradient is complete at the step of the last rule that feeds it: that is its place.
    order = sorted(trace["order"], key=lambda i: nodes[i]["complete_at"] or 0)
    first = next((i for i in order if nodes[i].get("verdict") == "wrong"), None)
    trace["first_wrong"] = first
    if first is not None:
        trace["diagnosis"] = explain(trace, views, first, given, close, (rtol, atol))


def _read_one(
    nodes: list[dict[str, Any]], views: list[View], name: str, value: Any
) -> tuple[int, np.ndarray]:
    found = [n["id"] for n in nodes if n["label"] == name]
    if not found:
        known = sorted({n["label"] for n in nodes if n["label"]})
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
        if isinstance(value, (str, bytes)):
            raise TypeError  # numpy would read "0.5" as a number
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
    if not np.all(np.isfinite(m)):
        bad = m if m.ndim == 0 else m[~np.isfinite(m)][0]
        raise ValueError(
            f"manual= gives {name!r} {float(bad)}: a manual gradient must be a finite number "
            "(a derivation that gives NaN or infinity has gone wrong before this check)"
        )
    return i, m


def explain(
    trace: dict[str, Any],
    views: list[View],
    i: int,
    given: dict[int, Any],
    close: Callable[[Any, Any], bool],
    tolerance: tuple[float, float],
) -> dict[str, Any]:
    """Where the learner's gradient at node i, the first wrong one, went wrong.

    The gradient there is the sum over the nodes it feeds of (their gradient) x (the local
    derivative along the edge). Those nodes come earlier in the pass, so any the learner gave is
    right: when all of them are given, the upstream was right and this step was wrong.
    """
    nodes, edges = trace["nodes"], trace["edges"]
    name, m, truth = str(nodes[i]["name"]), given[i], nodes[i]["_grad"]
    out = [e for e in edges if e["source"] == i and "_c" in e]
    consumers = list(dict.fromkeys(e["target"] for e in out))
    if not consumers:  # the root
        text = f"{name} is the root: its gradient is {d(name)}/{d(name)} = 1"
        return {"node": i, "cause": "root", "kind": "factor", "factor": None, "text": text}
    terms = {_use(nodes, e, out): e["_c"] for e in out} if len(out) > 1 else None
    local = local_name = None
    if len(out) == 1 and out[0]["local"] is not None:
        local = out[0]["local"]
        local_name = f"{d(nodes[out[0]['target']]['name'])}/{d(name)}"
    rtol, atol = tolerance
    found = diagnose(
        name, m, truth, local=local, local_name=local_name, terms=terms, rtol=rtol, atol=atol
    )
    if found.kind == "factor" and found.factor_name is None and np.size(m) == 1:
        # one number is always some multiple of another: "a constant factor" would say nothing
        text = f"{name}: your gradient is {_brief(m)}, the engine's {_brief(truth)}"
        found = Diagnosis(name, "wrong", text, manual_value=float(m), reference_value=truth)
    if found.kind == "missing-term":
        cause, more = "sum", ""
    elif found.factor_name == "the local factor":
        cause, more = "local", ""
    else:
        cause, more = _upstream(nodes, views, i, out, consumers, given, close)
    text = found.message + (f". {more}" if more else "")
    if more.startswith("Your ") and " alone: " in more:
        # the local derivative alone: what the pass tells is the whole story, and a factor
        # named from the values (here 2, by chance) would only mislead
        text = f"{name}: y{more[1:]}"
    return {
        "node": i,
        "cause": cause,
        "kind": found.kind,
        "factor": found.factor_name,
        "text": text,
    }


def _use(nodes: list[dict[str, Any]], e: dict[str, Any], out: list[dict[str, Any]]) -> str:
    """A use's name; the second edge into the same node (a * a) is told apart by its place."""
    target = str(nodes[e["target"]]["name"])
    same = [x for x in out if x["target"] == e["target"]]
    return target if len(same) == 1 else f"{target} (input {e['input'] + 1})"


def _upstream(
    nodes: list[dict[str, Any]],
    views: list[View],
    i: int,
    out: list[dict[str, Any]],
    consumers: list[int],
    given: dict[int, Any],
    close: Callable[[Any, Any], bool],
) -> tuple[str, str]:
    """Whether the gradient arriving from upstream was right: (cause, the sentence saying so)."""
    name, m = str(nodes[i]["name"]), given[i]

    def who(t: int) -> str:
        return str(nodes[t]["name"])

    if all(t in given for t in consumers):
        ups = ", ".join(f"{who(t)} {_brief(nodes[t]['_grad'])}" for t in consumers)
        return "local", (
            f"The upstream gradient was right (your own {ups}), so the mistake is in this step: "
            f"the local derivative of {', '.join(who(t) for t in consumers)} with respect to "
            f"{name}" + (", or the sum of the contributions" if len(out) > 1 else "")
        )
    if views[i].is_array or len(out) != 1 or out[0]["local"] in (None, 0.0):
        missing = [who(t) for t in consumers if t not in given]
        return "upstream", (
            f"The gradient of {', '.join(missing)} was not given, so this page cannot tell "
            f"whether your upstream gradient or your local derivative went wrong: give "
            f"{'it' if len(missing) == 1 else 'them'} too"
        )
    local, t = out[0]["local"], out[0]["target"]
    up = nodes[t]["_grad"]
    if close(m, local) and not close(local, nodes[i]["_grad"]):
        return "upstream", (
            f"Your {_brief(m)} is the local derivative {d(who(t))}/{d(name)} alone: it was never "
            f"multiplied by the upstream gradient {_brief(up)} of {who(t)}"
        )
    return "upstream", (
        f"With the local derivative {d(who(t))}/{d(name)} = {_brief(local)}, your {_brief(m)} "
        f"means you had {_brief(float(m) / local)} as the gradient of {who(t)}, where it is "
        f"{_brief(up)}: the upstream gradient was already wrong (you gave none for {who(t)}; "
        "give it to pin the mistake down)"
    )


def _brief(x: Any) -> str:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 0:
        return num(a)
    if a.size <= 6:
        return "[" + ", ".join(num(y) for y in a.ravel()) + "]"
    return f"an array of shape {a.shape} (norm {num(np.linalg.norm(a))})"
