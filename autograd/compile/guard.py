"""The cache's keys: an argument signature, and the generated guard of the latest trace."""

from __future__ import annotations

import builtins
import itertools
import linecache
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

import numpy as np

from ..engine import Node
from ..modes import anomaly, grad_enabled, tracing
from ..tensor import Tensor
from .source import _tuple

_MISSING = object()  # a name the function reads that is not bound

# Set while the self-check runs a function eagerly: a compiled function it calls runs its
# function eagerly too, so that the reference is the eager engine's throughout.
eager_reference: ContextVar[bool] = ContextVar("eager_reference", default=False)
_GUARDS = itertools.count()


def _signature(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[list[Any], tuple[Any, ...], list[Any]]:
    """(the arguments' arrays and nodes in order, the key of their trace, objects to keep alive).

    Arrays and nodes are read on every call; their shapes and dtypes are part of the key, and so
    is every other argument (a number, a string, an object by identity), which the trace keeps.
    """
    flat: list[Any] = []
    key: list[Any] = []
    keep: list[Any] = []
    first: dict[int, int] = {}

    def walk(x: Any) -> None:
        if isinstance(x, (Node, np.ndarray)):
            alias = first.setdefault(id(x), len(flat))
            if isinstance(x, Tensor):
                key.append(("T", x._data.shape, x._data.dtype.str, x.requires_grad, alias))
            elif isinstance(x, Node):
                key.append(("V", x.requires_grad, alias))
            else:
                key.append(("A", x.shape, x.dtype.str, alias))
            flat.append(x)
        elif isinstance(x, (list, tuple)):
            key.append((type(x).__name__, len(x)))
            for v in x:
                walk(v)
        elif isinstance(x, dict):
            key.append(("dict", len(x)))
            for k in sorted(x, key=repr):
                key.append(("key", k) if isinstance(k, (str, int)) else ("key", id(k)))
                walk(x[k])
        elif isinstance(x, float):
            key.append(("float", x.hex()))
        elif isinstance(x, (bool, int, str, bytes, type(None), complex)):
            key.append((type(x).__name__, x))
        else:  # an object (a model, a function): by identity, kept alive so the id stays its own
            key.append(("object", id(x)))
            keep.append(x)

    walk(args)
    walk(kwargs)
    return flat, tuple(key), keep


def _array_key(args: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """The signature of arguments that are all arrays and Tensors (the usual step), else None."""
    key: list[tuple[Any, ...]] = []
    for a in args:
        c = a.__class__
        if c is np.ndarray:
            key.append((c, a.shape, a.dtype))
        elif c is Tensor:
            d = a._data
            key.append((c, d.shape, d.dtype, a.requires_grad))
        else:
            return None
    if len(args) > 1 and len({id(a) for a in args}) != len(args):
        return None  # one object passed twice: the slow key records which
    return tuple(key)


# Arguments and leaves a guard checks at most: past this, the dict of traces is as quick.
MAX_GUARDED = 64


def _keyed_on(
    leaves: list[Node], watch: list[tuple[Any, Any, Any]], space: dict[str, Any]
) -> list[str]:
    """The guard's tests of what a trace is keyed on besides its arguments: the grad mode, each
    leaf's requires_grad, each name the function reads (bound to the very object it was)."""
    # TRACING: called inside another function's trace, its ops are that trace's (api._call)
    extra = [f"GRAD_MODE.get() is {grad_enabled.get()}", "ANOMALY.get() is False"]
    extra.append("TRACING.get() is None and EAGER_REFERENCE.get() is False")
    extra += [f"L[{j}].requires_grad is {leaf.requires_grad}" for j, leaf in enumerate(leaves)]
    for i, (where, name, value) in enumerate(watch):
        space[f"NS{i}"], space[f"N{i}"], space[f"W{i}"] = where, name, value
        read = f"NS{i}.get(N{i}, MISSING)" if isinstance(where, dict) else f"NS{i}.cell_contents"
        extra.append(f"{read} is W{i}")
    return extra


def _make_guard(
    args: tuple[Any, ...], leaves: list[Node], watch: list[tuple[Any, Any, Any]]
) -> Callable[[tuple[Any, ...], list[Node]], bool] | None:
    """One generated test of what _array_key and _Entry.fresh check between them, for a trace
    made from ``args`` (arrays and Tensors only, no object twice): the same number of
    arguments of the same classes, each array (an argument's, a Tensor argument's data, a
    leaf's data) of the same class, shape and dtype, and the same requires_grad. The test
    compares a few tuples rather than building a key to look up, which is what a step of a
    small network notices. Built from indices alone: shapes and dtypes are globals of its own.

    The arrays that last passed are remembered (``S0``...): when a call brings the very same
    array objects (a training loop's data, parameters updated in place), only their shapes are
    read again (``a.shape = ...`` reshapes an array in place). This keeps those arrays alive
    until the next call.

    It checks too what the trace is keyed on besides the arguments: the grad mode, each leaf's
    requires_grad, and each name the function reads (``watch``: a global or a closure cell, and
    the object it was bound to), by identity.
    """
    checked = [j for j, leaf in enumerate(leaves) if isinstance(leaf._data, np.ndarray)]
    if len(args) + len(checked) > MAX_GUARDED or len(leaves) + len(watch) > 4 * MAX_GUARDED:
        return None
    n = len(args)
    tensors = [i for i, x in enumerate(args) if x.__class__ is Tensor]
    datas = [f"a{i}._data" if i in tensors else f"a{i}" for i in range(n)]
    datas += [f"L[{j}]._data" for j in checked]
    arrays = [args[i]._data if i in tensors else args[i] for i in range(n)]
    arrays += [leaves[j]._data for j in checked]
    space: dict[str, Any] = {
        "__builtins__": builtins,
        "CLASSES": tuple(x.__class__ for x in args),
        "ARRAYS": (np.ndarray,) * len(arrays),
        "SHAPES": tuple(x.shape for x in arrays),
        "DTYPES": tuple(x.dtype for x in arrays),
        "Tensor": Tensor,
        "GRAD_MODE": grad_enabled,
        "ANOMALY": anomaly,
        "TRACING": tracing,
        "EAGER_REFERENCE": eager_reference,
        "MISSING": _MISSING,
    }
    extra = _keyed_on(leaves, watch, space)
    seen = [f"S{i}" for i in range(len(datas))]
    space.update(zip(seen, arrays, strict=True))
    text = "\n".join(_guard_source(args, tensors, datas, seen, extra)) + "\n"
    filename = f"<backproplab.compile guard {next(_GUARDS)}>"  # shown in tracebacks and pdb
    linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    exec(builtins.compile(text, filename, "exec"), space)
    guard: Callable[[tuple[Any, ...], list[Node]], bool] = space["guard"]
    return guard


def _guard_source(
    args: tuple[Any, ...], tensors: list[int], datas: list[str], seen: list[str], extra: list[str]
) -> list[str]:
    """The guard's lines: ``datas`` the expressions of the arrays it checks, ``seen`` the globals
    remembering those that passed last, ``extra`` the tests of what else the trace is keyed on."""
    n = len(args)
    a = [f"a{i}" for i in range(n)]
    d = [f"d{i}" for i in range(len(datas))]
    src = ["def guard(A, L):"]
    if seen:
        src.append(f"    global {', '.join(seen)}")
    if not n:
        src += ["    if A:", "        return False"]
    src.append("    try:")  # another number of arguments, or an array where a Tensor was
    src += [f"        if not ({' and '.join(extra)}):", "            return False"]
    if n:
        src.append(f"        {_tuple(a)[1:-1]} = A")
    src += [f"        {name} = {expr}" for name, expr in zip(d, datas, strict=True)]
    src += ["        pass", "    except (ValueError, AttributeError):", "        return False"]
    distinct = [f"{a[i]} is not {a[k]}" for i in range(n) for k in range(i + 1, n)]
    grads = [f"a{i}.requires_grad is {args[i].requires_grad}" for i in tensors]
    same = [f"{x} is {y}" for x, y in zip(d, seen, strict=True)]
    same += [f"a{i}.__class__ is Tensor" for i in tensors] + grads + distinct
    if same:  # the very arrays that passed last time: their class and dtype are known, and
        # their shape is read again, as a.shape = ... reshapes an array in place
        if d:
            same.append(f"{_tuple([x + '.shape' for x in d])} == SHAPES")
        src += [f"    if {' and '.join(same)}:", "        return True"]
    if n:
        src += [
            f"    if {_tuple([x + '.__class__' for x in a])} != CLASSES:",
            "        return False",
        ]
    if grads or distinct:
        src += [f"    if not ({' and '.join(grads + distinct)}):", "        return False"]
    if d:
        for fact, known in ((".__class__", "ARRAYS"), (".shape", "SHAPES"), (".dtype", "DTYPES")):
            src += [f"    if {_tuple([x + fact for x in d])} != {known}:", "        return False"]
        src.append(f"    {_tuple(seen)[1:-1]} = {_tuple(d)[1:-1]}")
    src.append("    return True")
    return src
