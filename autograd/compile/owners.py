"""The guard on parameter owners: a module the function reads, whose parameters may be rebound.

A name the function reads is guarded by identity, but a module bound to it stays the same object
when a parameter of it is rebound (``layer.weight = Tensor(...)``), a layer is put into it or
appended, or a parameter is added: the trace would go on reading the old parameters. So at the
trace each object on the way from a name the function reads (or an object argument) to a leaf the
trace read is recorded: a module (found by its ``parameters()`` method, as autograd does not
import nn), a list or a dict, with the attributes or items that lead to a leaf (or are None, where
a parameter may be put later), and the numbers, flags and names an object holds (a temperature,
a module's ``training``, also where the module holds no parameter: a Dropout). A call replays
only while each still holds the very same objects there, and the same number of attributes.
Objects with ``__slots__`` are read through them, and the settings of the user's classes they
are of (``scale = 1.0`` in a class body) are recorded too.

The state reached from the same places is also where a function may store what it computed or
change what it reads: state.py refuses such a function at its trace.
"""

from __future__ import annotations

import functools
import sys
import types
from operator import is_
from typing import Any

import numpy as np

from ..engine import Node

# Items a list or dict may hold to be followed, and objects visited at most: a longer walk than
# this is paid at the trace only, but what it records is compared on every call.
MAX_ITEMS = 1024
_MAX_VISITS = 10_000
_DEPTH = 8

# (the object, its size then, the keys compared or None for a list's items, their objects then);
# for an array from outside, (the array, its size, _ARRAY, a copy of its numbers then)
Owner = tuple[Any, int, Any, Any]
_ARRAY = ("an array's numbers",)


def _module(obj: Any) -> bool:
    return (
        not isinstance(obj, type)
        and hasattr(obj, "__dict__")
        and callable(getattr(type(obj), "parameters", None))
    )


# What is never followed: code and namespaces, not the state of a model.
_NOT_STATE = (
    type,
    types.ModuleType,
    types.FunctionType,
    types.MethodType,
    types.BuiltinFunctionType,
)


def _object(obj: Any) -> bool:
    """An object of the user's own class, followed for the parameters and settings it holds
    (in its ``__dict__``, or in the ``__slots__`` of a dataclass(slots=True))."""
    return (
        (hasattr(obj, "__dict__") or bool(_slots(type(obj))))
        and not isinstance(obj, (*_NOT_STATE, Node, np.ndarray))  # a node's data: a leaf's
        and not getattr(type(obj), "_not_state", False)  # a Compiled: its counts and cache
    )


_NO_SLOTS: tuple[str, ...] = ()


def _slots(cls: type) -> tuple[str, ...]:
    """The attribute names the ``__slots__`` of ``cls`` and its bases declare."""
    names: list[str] = []
    for k in cls.__mro__:
        declared = k.__dict__.get("__slots__", _NO_SLOTS)
        declared = (declared,) if isinstance(declared, str) else declared
        names += [n for n in declared if n not in ("__dict__", "__weakref__")]
    return tuple(names)


_UNSET = object()  # an empty slot


class _SlotKeys(tuple):  # type: ignore[type-arg]
    """The keys of an object with slots: compared with getattr, as it has no __dict__ to read."""


def _attrs(obj: Any) -> dict[str, Any]:
    """An object's attributes by name: its ``__dict__`` and its slots (an empty one _UNSET)."""
    out = dict(vars(obj)) if hasattr(obj, "__dict__") else {}
    for n in _slots(type(obj)):
        out[n] = getattr(obj, n, _UNSET)
    return out


def user_class(cls: type) -> bool:
    """A class of the user's (not the library's, NumPy's or the standard library's)."""
    return not library(str(getattr(cls, "__module__", "")))


def library(module: str) -> bool:
    """The library's, NumPy's or the standard library's module: its functions and classes are not
    state a user changes between calls (and would swell the guard)."""
    top = module.partition(".")[0]
    return top in ("backproplab", "numpy", "builtins") or top in sys.stdlib_module_names


def _setting(v: Any) -> bool:
    """A number, flag or name an object holds (``training``, ``temperature``, ``activation``):
    what a forward may read to decide what it computes, so a change retraces. NumPy's scalars
    count (a number taken from an array, ``lrs[epoch]``, is an np.float64)."""
    return v.__class__ in (bool, int, float, str) or isinstance(v, np.generic)


def _config(obj: Any) -> bool:
    """An object of the user's class, or a SimpleNamespace: its settings count wherever it is
    held (``model.config.temperature``), though it holds no parameter."""
    return isinstance(obj, types.SimpleNamespace) or user_class(type(obj))


def _choice(v: Any) -> bool:
    """A setting, or a function an object holds to call (``self.act = relu``, a ufunc): which
    one it holds decides what the forward computes, as a setting does."""
    return _setting(v) or isinstance(v, _FUNCTIONS)


_FUNCTIONS = (
    types.FunctionType,
    types.MethodType,
    types.BuiltinFunctionType,
    np.ufunc,
    functools.partial,
)


class _Walk:
    def __init__(self, leaves: set[int]) -> None:
        self.leaves = leaves
        self.owners: list[Owner] = []
        self.seen: dict[int, bool] = {}  # id -> whether a leaf is reached through it

    def holds(self, obj: Any, depth: int) -> bool:
        """Whether a leaf is reached through ``obj``; records the owners on the way."""
        if isinstance(obj, Node):
            return id(obj) in self.leaves
        if id(obj) in self.seen:
            return self.seen[id(obj)]
        self.seen[id(obj)] = False  # a cycle back to it finds nothing new
        if depth == 0 or len(self.seen) > _MAX_VISITS:
            return False
        if _sequence(obj) and len(obj) <= MAX_ITEMS:
            found = [self.holds(v, depth - 1) for v in obj]
            if any(found) and not isinstance(obj, tuple):  # a tuple cannot change
                self.owners.append((obj, len(obj), None, tuple(obj)))
        elif (isinstance(obj, dict) and len(obj) <= MAX_ITEMS) or _object(obj):
            slotted = not isinstance(obj, dict) and bool(_slots(type(obj)))
            space = obj if isinstance(obj, dict) else _attrs(obj) if slotted else vars(obj)
            found = [self.holds(v, depth - 1) for v in space.values()]
            settings = not isinstance(obj, dict)
            keys = tuple(
                k
                for k, v, f in zip(space, space.values(), found, strict=True)
                if f or v is None or (settings and _choice(v))
            )
            # A module's settings count even where it holds no parameter (a Dropout's training)
            if any(found) or (keys and (_module(obj) or _config(obj))):
                held = tuple(space[k] for k in keys)
                if slotted:
                    keys = _SlotKeys(keys)
                self.owners.append((obj, len(space), keys, held))
            if settings:  # what self.x finds in the class body when the object has no x
                self.classes(type(obj))
        else:
            return False
        self.seen[id(obj)] = any(found)
        return any(found)

    def classes(self, cls: type) -> None:
        """Record the settings and parameters of the user's classes an owner is of (``scale =
        1.0`` or a weight shared by every object in a class body, read as ``self.scale``):
        rebinding one there changes what the forward computes."""
        for k in cls.__mro__:
            if id(k) in self.seen or not user_class(k):
                continue
            self.seen[id(k)] = False
            space = k.__dict__
            keys = tuple(
                n
                for n, v in space.items()
                if (_setting(v) and not n.startswith("__")) or id(v) in self.leaves
            )
            if keys:
                self.owners.append((k, len(space), keys, tuple(space[n] for n in keys)))


def _sequence(obj: Any) -> bool:
    """A list, a tuple, or a NumPy array of objects (parameters kept in np.empty(n, object))."""
    return isinstance(obj, (list, tuple)) or (
        isinstance(obj, np.ndarray) and obj.dtype == object and obj.ndim == 1
    )


def param_owners(roots: list[Any], leaves: list[Node]) -> list[Owner]:
    """The owners of ``leaves`` reached from ``roots`` (the values of the names the function
    reads, its object arguments), each with what it held at the trace."""
    walk = _Walk({id(leaf) for leaf in leaves})
    for root in roots:
        walk.holds(root, _DEPTH)
    return walk.owners + _settings_held(roots, {id(o[0]) for o in walk.owners})


def _settings_held(roots: list[Any], done: set[int]) -> list[Owner]:
    """The numbers, flags and names held by a list, a dict or an object of the user's that the
    function reads (or one in a list or dict it reads), though no parameter is reached through
    it: ``cfg["scale"]``, ``coefs[0]``, ``hp.temperature``, ``xs[i][j]`` (a dataset as lists):
    the trace keeps them as constants, so a call replays only while each holds the same."""
    out: list[Owner] = []
    near = list(roots)
    for r in roots:
        if isinstance(r, (list, tuple)) and len(r) <= MAX_ITEMS:
            near.extend(r)
        elif isinstance(r, dict) and len(r) <= MAX_ITEMS:
            near.extend(r.values())
    for obj in near:
        if id(obj) in done:
            continue
        done.add(id(obj))
        if isinstance(obj, list) and len(obj) <= MAX_ITEMS and any(map(_setting, obj)):
            out.append((obj, len(obj), None, tuple(obj)))
        elif (isinstance(obj, dict) and len(obj) <= MAX_ITEMS) or (
            _object(obj) and not isinstance(obj, dict) and user_class(type(obj))
        ):
            space = obj if isinstance(obj, dict) else _attrs(obj)
            keys = tuple(k for k, v in space.items() if _choice(v))
            if keys:
                held = tuple(space[k] for k in keys)
                slotted = not isinstance(obj, dict) and bool(_slots(type(obj)))
                out.append((obj, len(space), _SlotKeys(keys) if slotted else keys, held))
    return out


def outside_arrays(roots: list[Any], sources: list[np.ndarray]) -> list[Owner]:
    """The arrays from outside (a global, a closure cell, an object argument's, one level into a
    list or an object) that the function made Tensors from or indexed with, and any small one,
    each with a copy of its numbers: the
    trace keeps those numbers as constants, where the eager function reads the array anew, so a
    call replays only while the array still holds them (written in place, it traces again)."""
    held = [v for v in _one_level(roots) if isinstance(v, np.ndarray) and v.dtype != object]
    out: list[Owner] = []
    seen: set[int] = set()
    for arr in held:
        if id(arr) in seen:
            continue
        seen.add(id(arr))
        # a small one always: a number read out of it (IDX[0], float(C[1])) is a constant too
        if arr.size <= SMALL_ARRAY or any(np.shares_memory(arr, s) for s in sources):
            out.append((arr, arr.size, _ARRAY, arr.copy()))
    return out


# Elements up to which an array from outside is compared on every call whether or not the
# trace made a Tensor of it (a few microseconds; a dataset is compared only where it is used).
SMALL_ARRAY = 1024


def _one_level(roots: list[Any]) -> list[Any]:
    out = list(roots)
    for r in roots:
        if isinstance(r, (list, tuple)) and len(r) <= MAX_ITEMS:
            out.extend(r)
        elif _object(r) and not isinstance(r, np.ndarray):
            out.extend(_attrs(r).values())
    return out


def owners_unchanged(owners: list[Owner]) -> bool:
    """Whether each owner holds the very objects it held at the trace, where it was recorded."""
    for obj, size, keys, held in owners:
        if keys is _ARRAY:
            if obj.size != size or not np.array_equal(obj, held, equal_nan=True):
                return False
        elif keys is None:
            if len(obj) != size or not all(map(is_, obj, held)):
                return False
        elif keys.__class__ is _SlotKeys:
            now = [getattr(obj, k, _UNSET) for k in keys]
            if len(_attrs(obj)) != size or not all(map(is_, now, held)):
                return False
        else:
            space = obj if isinstance(obj, dict) else obj.__dict__  # a dict subclass, a class too
            if len(space) != size or not all(map(is_, map(space.get, keys), held)):
                return False
    return True
