"""The state a compiled function reads besides its arguments, and the refusal of changes to it.

``_read_names`` follows the function (its globals and closure cells, the functions and the
methods of the user's classes of the objects they hold, a bound method's object, a partial's
arguments, the defaults) to what a call's result depends on: the names a call checks are bound as
at the trace, and the objects the owners guard walks (owners.py). Around the trace, what those
objects hold is compared: a function that stores what it computed, or changes anything it reads
(a counter, an item appended, a parameter's ``.grad``), would do so at the trace only, as a replay
runs the generated code alone, so it is refused, naming the place.
"""

from __future__ import annotations

import functools
import types
from typing import Any

import numpy as np

from ..engine import Node
from .entry import _cell
from .errors import CompileError
from .guard import _MISSING
from .owners import (
    _DEPTH,
    _MAX_VISITS,
    _UNSET,
    MAX_ITEMS,
    SMALL_ARRAY,
    _attrs,
    _object,
    library,
    user_class,
)


def escaped(roots: list[tuple[str, Any]], fresh: set[int]) -> str | None:
    """Where state that outlives a call (reached from ``roots``, each with the name it is known
    by) holds a value the trace made (``fresh``: the ids of its nodes, masks and stand-ins), as
    a path (``model.bn.running_mean``, ``history[0]``); None when nothing does."""
    seen: set[int] = set()
    todo = [(name, obj, _DEPTH) for name, obj in roots]
    while todo:
        path, obj, depth = todo.pop()
        if id(obj) in fresh:
            return path
        if isinstance(obj, Node) or id(obj) in seen or depth == 0 or len(seen) > _MAX_VISITS:
            continue
        seen.add(id(obj))
        if isinstance(obj, (list, tuple)) and len(obj) <= MAX_ITEMS:
            todo += [(f"{path}[{i}]", v, depth - 1) for i, v in enumerate(obj)]
        elif isinstance(obj, dict) and len(obj) <= MAX_ITEMS:
            todo += [(f"{path}[{k!r}]", v, depth - 1) for k, v in obj.items()]
        elif _object(obj) and not isinstance(obj, np.ndarray):
            todo += [(f"{path}.{k}", v, depth - 1) for k, v in _attrs(obj).items()]
    return None


def shells(traced: Any) -> list[tuple[Any, Any]]:
    """Each list and dict the stand-ins of the arguments are held in, with what it held."""
    out: list[tuple[Any, Any]] = []
    todo = [traced]
    while todo:
        x = todo.pop()
        if isinstance(x, (list, tuple)):
            if isinstance(x, list):
                out.append((x, tuple(x)))
            todo += x
        elif isinstance(x, dict):
            out.append((x, tuple(x.items())))
            todo += x.values()
    return out


def labelled(args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[tuple[str, Any]]:
    return [(f"argument {i}", a) for i, a in enumerate(args)] + [
        (f"argument {k}", v) for k, v in kwargs.items()
    ]


def nothing_kept(
    trace: Any,
    traced_flat: list[Any],
    flat: list[Any],
    containers: list[tuple[Any, Any]],
    roots: list[Any],
) -> None:
    """Refuse a function that stores what it computed where it outlives the call (a running
    mean set as a module's attribute, ``self.out = out``, ``history.append(loss)``, into a list
    it was given): a replay runs the generated code alone, which stores nothing, so that place
    would keep the first call's value while the eager function sets it on every call."""
    for shell, held in containers:
        now = tuple(shell.items()) if isinstance(shell, dict) else tuple(shell)
        if len(now) != len(held) or not all(
            a is b or (isinstance(a, tuple) and a[0] == b[0] and a[1] is b[1])
            for a, b in zip(now, held, strict=True)
        ):
            raise CompileError(
                f"the function wrote into a {type(shell).__name__} it was given as an argument: "
                + _KEPT_INSTEAD
            )
    fresh = set(trace.made) | {id(m) for m in trace.masks}
    fresh |= {id(t) for t, a in zip(traced_flat, flat, strict=True) if t is not a}
    where = escaped(roots, fresh)
    if where is not None:
        raise CompileError(
            f"{where} holds a value the function computed (or a stand-in of an array argument), "
            "stored where it outlives the call: " + _KEPT_INSTEAD
        )


_KEPT_INSTEAD = (
    "a replay runs the generated code alone and stores nothing, so it would keep the first "
    "call's value where the function, run eagerly, stores a new one each call. Return what "
    "you store as another output (return loss, h) and store it after the call (running "
    "statistics: return the batch's mean, update the running mean outside), or call the "
    "function without @compile"
)

# One object's state in a snapshot: (its path from a root, the object, what it held).
Snapshot = list[tuple[str, Any, tuple[Any, ...]]]


def state_of(roots: list[tuple[str, Any]]) -> Snapshot:
    """What each list, dict and object (the user's, a module) reached from ``roots`` holds, for
    ``changed`` to compare after the trace: a node's grad, data and flag, a small array's
    numbers (a large one's are not copied: a dataset)."""
    out: Snapshot = []
    seen: set[int] = set()
    todo = [(name, obj, _DEPTH) for name, obj in roots]
    while todo:
        path, obj, depth = todo.pop()
        if id(obj) in seen or depth == 0 or len(seen) > _MAX_VISITS:
            continue
        seen.add(id(obj))
        if isinstance(obj, Node):  # p.grad = None, p.data = ..., p.requires_grad = ...
            out.append((path, obj, _node_state(obj)))
        elif isinstance(obj, np.ndarray):  # RUNNING *= 0.9: a small one's numbers
            if obj.dtype != object and obj.size <= SMALL_ARRAY:
                out.append((path, obj, (obj.copy(),)))
        elif isinstance(obj, (list, tuple)) and len(obj) <= MAX_ITEMS:
            if isinstance(obj, list):
                out.append((path, obj, tuple(obj)))
            todo += [(f"{path}[{i}]", v, depth - 1) for i, v in enumerate(obj)]
        elif isinstance(obj, dict) and len(obj) <= MAX_ITEMS:
            out.append((path, obj, tuple(obj.items())))
            todo += [(f"{path}[{k!r}]", v, depth - 1) for k, v in obj.items()]
        elif _object(obj) and not isinstance(obj, np.ndarray) and _state_class(type(obj)):
            space = _attrs(obj)
            out.append((path, obj, tuple(space.items())))
            todo += [(f"{path}.{k}", v, depth - 1) for k, v in space.items()]
    return out


def _state_class(cls: type) -> bool:
    """A class whose objects hold a model's state: the user's or the library's (a module), not
    the standard library's or NumPy's (a threading.Event's flag is set by other threads)."""
    top = str(getattr(cls, "__module__", "")).partition(".")[0]
    return top == "backproplab" or not library(top)


def changed(snapshot: Snapshot) -> str | None:
    """The path of the first place in ``snapshot`` that holds something else now, or None."""
    for path, obj, held in snapshot:
        if isinstance(obj, Node):
            for (k, a), (_, b) in zip(_node_state(obj), held, strict=True):
                if not same_object(a, b):
                    return f"{path}.{k}"
            continue
        if isinstance(obj, np.ndarray):
            if obj.shape != held[0].shape or not np.array_equal(obj, held[0], equal_nan=True):
                return f"{path} (its numbers, written in place)"
            continue
        if isinstance(obj, list):
            if len(obj) != len(held):
                return f"{path} (its length)"
            for i, (a, b) in enumerate(zip(obj, held, strict=True)):
                if not same_object(a, b):
                    return f"{path}[{i}]"
            continue
        now = tuple(obj.items()) if isinstance(obj, dict) else tuple(_attrs(obj).items())
        if len(now) != len(held):
            return f"{path} (its {'keys' if isinstance(obj, dict) else 'attributes'})"
        for (k, a), (j, b) in zip(now, held, strict=True):
            if k != j or not same_object(a, b):
                return f"{path}[{k!r}]" if isinstance(obj, dict) else f"{path}.{k}"
    return None


def _node_state(node: Node) -> tuple[tuple[str, Any], ...]:
    return (("grad", node.grad), ("data", node._data), ("requires_grad", node.requires_grad))


def same_object(a: Any, b: Any) -> bool:
    """The same object, or an equal number, flag, name or tuple of them (``self.shape = x.shape``
    sets an equal tuple on every call)."""
    if a is b:
        return True
    kinds = (bool, int, float, str, tuple)
    if a.__class__ is not b.__class__ or a.__class__ not in kinds:
        return False
    if a.__class__ is tuple:
        return len(a) == len(b) and all(map(same_object, a, b))
    return bool(a == b)


def _nothing_changed(before: Snapshot, bound: list[tuple[Any, Any, Any]]) -> None:
    """Refuse a function that changed the state it reads (a counter ``self.steps += 1``, an
    item appended to a list, an attribute set, a global or a closure variable rebound): a
    replay runs the generated code alone, so the change would happen at the trace and never
    again, where the eager function makes it on every call."""
    where = changed(before)
    for space, name, value in bound:
        if where is None and not same_object(_value(space, name), value):
            where = name if isinstance(space, dict) else f"{name} (a closure variable)"
    if where is not None:
        raise CompileError(
            f"{where} was changed by the function (a counter, an item appended, an attribute "
            "set): a replay runs the generated code alone and changes nothing, where the "
            "function, run eagerly, changes it on every call. Make the change outside the "
            "compiled function (return what it needs as another output), or call the function "
            "without @compile"
        )


def _read_names(fn: Any) -> tuple[list[tuple[Any, Any]], list[tuple[str, Any]]]:
    """What a call's result depends on besides its arguments, found by following the function:
    (namespace, name) for each global its code reads (nested code included) and (cell, None) for
    each closure cell, which a call checks are bound as at the trace; and the state it holds,
    each object with the name it is known by (what the names are bound to, a bound method's
    self, a partial's arguments, the defaults, a callable object itself), which the owners guard
    and the check for stored values walk. Followed into each function of the user's these hold
    (a helper, a compiled function called inside) and into the methods of the user's classes of
    the objects they hold (a model's forward): a global one of them reads changes the step as
    much as one of the function's own."""
    names: dict[tuple[int, Any], tuple[Any, Any]] = {}
    roots: list[tuple[str, Any]] = []
    seen: set[int] = set()
    todo: list[tuple[str, Any]] = [(getattr(fn, "__name__", type(fn).__name__), fn)]
    called = {id(fn)}  # what is called, not only held: a callable object among them is state
    while todo and len(seen) < _MAX_FOLLOWED:
        label, f = todo.pop()
        if id(f) in seen:
            continue
        seen.add(id(f))
        if getattr(type(f), "_not_state", False) and hasattr(f, "fn"):  # a Compiled
            todo.append((label, f.fn))
            called.add(id(f.fn))
        elif isinstance(f, (types.MethodType, staticmethod, classmethod)):
            if isinstance(f, types.MethodType):
                roots.append(("self", f.__self__))
                todo.append(("self", f.__self__))
            todo.append((label, f.__func__))
        elif isinstance(f, property):
            todo += [(label, g) for g in (f.fget, f.fset, f.fdel) if g is not None]
        elif isinstance(f, functools.partial):
            held = [(f"{label}'s argument {i}", a) for i, a in enumerate(f.args)]
            held += [(f"{label}'s argument {k}", a) for k, a in f.keywords.items()]
            roots += held
            todo += [*held, (label, f.func)]
            called.add(id(f.func))
        elif isinstance(f, types.FunctionType):
            if f is fn or not library(str(f.__globals__.get("__name__", ""))):
                todo += _function_reads(f, names, roots)
        elif not isinstance(f, _NOT_FOLLOWED):
            if id(f) in called:  # a callable object (a model): its state and its __call__
                roots.append((label, f))
            todo += _object_reads(label, f)
    return list(names.values()), roots


# Functions and objects _read_names visits at most (a trace-time walk; the guard's cost per call
# is the names it finds).
_MAX_FOLLOWED = 10_000

_NOT_FOLLOWED = (type, types.ModuleType, types.BuiltinFunctionType, np.ndarray, Node, str, bytes)


def _function_reads(
    f: types.FunctionType, names: dict[tuple[int, Any], tuple[Any, Any]], roots: list[Any]
) -> list[tuple[str, Any]]:
    """Record the globals and cells ``f`` reads and the defaults it holds; return them to follow."""
    space = f.__globals__
    found: set[str] = set()
    stack = [f.__code__]
    while stack:
        c = stack.pop()
        found.update(c.co_names)
        stack.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
    read = [(n, space[n]) for n in sorted(found) if n in space]
    for n, _ in read:
        names.setdefault((id(space), n), (space, n))
    cells = list(zip(f.__code__.co_freevars, f.__closure__ or (), strict=False))
    for n, cell in cells:
        names.setdefault((id(cell), None), (cell, n))
    held = [(n, _cell(c)) for n, c in cells] + read
    defaults = [*(f.__defaults__ or ()), *(f.__kwdefaults__ or {}).values()]
    held += [(f"a default of {f.__name__}", d) for d in defaults]
    roots += [(n, v) for n, v in held if v is not _MISSING]
    return [(n, v) for n, v in held if v is not _MISSING]


def _object_reads(label: str, obj: Any) -> list[tuple[str, Any]]:
    """What an object leads to: the items of a list, tuple or dict (not too long), the
    attributes of an object and the functions of its classes that are the user's."""
    if isinstance(obj, (list, tuple)):
        return list(zip([label] * len(obj), obj, strict=True)) if len(obj) <= MAX_ITEMS else []
    if isinstance(obj, dict):
        return [(label, v) for v in obj.values()] if len(obj) <= MAX_ITEMS else []
    if isinstance(obj, (int, float, complex, bool, type(None))) or not hasattr(obj, "__class__"):
        return []
    out = [(label, v) for v in _attrs(obj).values()] if _object(obj) else []
    for klass in type(obj).__mro__:
        if user_class(klass):
            out += [(label, v) for v in vars(klass).values() if _is_code(v)]
    return out


def _is_code(v: Any) -> bool:
    return isinstance(v, (types.FunctionType, staticmethod, classmethod, property))


def _value(space: Any, name: Any) -> Any:
    return space.get(name, _MISSING) if isinstance(space, dict) else _cell(space)


def restore(snapshot: Snapshot, bound: list[tuple[Any, Any, Any]]) -> None:
    """Put back what ``snapshot`` and ``bound`` (the names, with their values) recorded: a
    function refused at its trace leaves nothing changed by that trace (a counter it stepped, an
    item it appended), so that its refusal, or the eager run that follows with
    fallback="eager", finds the state as the call found it."""
    for _, obj, held in reversed(snapshot):
        if isinstance(obj, Node):
            obj.grad, obj._data, obj.requires_grad = (v for _, v in held)
        elif isinstance(obj, np.ndarray):
            if obj.shape == held[0].shape:
                obj[...] = held[0]
        elif isinstance(obj, list):
            obj[:] = held
        elif isinstance(obj, dict):
            obj.clear()
            obj.update(held)
        else:
            now = _attrs(obj)
            for k in now.keys() - dict(held).keys():
                delattr(obj, k)
            for k, v in held:
                if v is _UNSET:
                    if hasattr(obj, k):
                        delattr(obj, k)
                elif now.get(k, _UNSET) is not v:
                    setattr(obj, k, v)
    for space, name, value in bound:
        if isinstance(space, dict):
            if value is _MISSING:
                space.pop(name, None)
            else:
                space[name] = value
        elif value is not _MISSING:
            space.cell_contents = value
