"""The guard on parameter owners: a module the function reads, whose parameters it may rebind.

A name the function reads is guarded by identity, but a module bound to it stays the same object
when a parameter of it is rebound (``layer.weight = Tensor(...)``), a layer is put into it or
appended, or a parameter is added: the trace would go on reading the old parameters. So each
object that holds parameters (a module, found by its ``parameters()`` method since autograd does
not import nn, or a list, tuple or dict holding nodes or modules) is recorded at the trace with
its parameters, and a call replays only while each still holds the very same ones, in order.
"""

from __future__ import annotations

from typing import Any

from ..engine import Node

# Items a list, tuple or dict may hold to be guarded: walking it is paid on every call.
MAX_ITEMS = 256
_DEPTH = 3  # nesting of lists and dicts followed (a list of layers, a dict of lists of params)

Owner = tuple[Any, tuple[int, ...], tuple[Node, ...]]  # (object, ids of its params, the params)


def _params(obj: Any, depth: int = _DEPTH) -> list[Node] | None:
    """The parameters ``obj`` holds, in order, or None for an object that holds none."""
    if isinstance(obj, Node):
        return [obj]
    if isinstance(obj, (list, tuple, dict)):
        items = obj.values() if isinstance(obj, dict) else obj
        if depth == 0 or len(items) > MAX_ITEMS:
            return None
        found = [_params(v, depth - 1) for v in items]
        if all(f is None for f in found):
            return None
        return [p for f in found if f is not None for p in f]
    if isinstance(obj, type) or not callable(getattr(type(obj), "parameters", None)):
        return None
    out = obj.parameters()
    if not isinstance(out, (list, tuple)) or not all(isinstance(p, Node) for p in out):
        return None  # a parameters() of another meaning: not a module of ours
    return list(out)


def param_owners(objects: list[Any]) -> list[Owner]:
    """Each of ``objects`` (values of the names the function reads, its object arguments) that
    holds parameters, with them. A node itself is left out: its name is guarded by identity."""
    out: list[Owner] = []
    seen: set[int] = set()
    for obj in objects:
        if isinstance(obj, Node) or id(obj) in seen:
            continue
        seen.add(id(obj))
        params = _params(obj)
        if params is not None:
            out.append((obj, tuple(map(id, params)), tuple(params)))  # kept alive: ids stay theirs
    return out


def owners_unchanged(owners: list[Owner]) -> bool:
    """Whether each owner holds the very parameters it held at the trace, in the same order."""
    for obj, ids, _ in owners:
        now = _params(obj)
        if now is None or tuple(map(id, now)) != ids:
            return False
    return True
