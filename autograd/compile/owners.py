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
Only those slots are compared: an attribute a forward rebinds to what it computed
(``self.out = out``) is not one, so it does not retrace.
"""

from __future__ import annotations

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
    """An object of the user's own class, followed for the parameters and settings it holds."""
    return hasattr(obj, "__dict__") and not isinstance(obj, _NOT_STATE)


def _setting(v: Any) -> bool:
    """A number, flag or name an object holds (``training``, ``temperature``, ``activation``):
    what a forward may read to decide what it computes, so a change retraces."""
    return v.__class__ in (bool, int, float, str)


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
        if isinstance(obj, (list, tuple)) and len(obj) <= MAX_ITEMS:
            found = [self.holds(v, depth - 1) for v in obj]
            if any(found) and isinstance(obj, list):  # a tuple cannot change
                self.owners.append((obj, len(obj), None, tuple(obj)))
        elif (isinstance(obj, dict) and len(obj) <= MAX_ITEMS) or _object(obj):
            space = obj if isinstance(obj, dict) else vars(obj)
            found = [self.holds(v, depth - 1) for v in space.values()]
            settings = not isinstance(obj, dict)
            keys = tuple(
                k
                for k, v, f in zip(space, space.values(), found, strict=True)
                if f or v is None or (settings and _setting(v))
            )
            # A module's settings count even where it holds no parameter (a Dropout's training)
            if any(found) or (_module(obj) and keys):
                self.owners.append((obj, len(space), keys, tuple(space[k] for k in keys)))
        else:
            return False
        self.seen[id(obj)] = any(found)
        return any(found)


def param_owners(roots: list[Any], leaves: list[Node]) -> list[Owner]:
    """The owners of ``leaves`` reached from ``roots`` (the values of the names the function
    reads, its object arguments), each with what it held at the trace."""
    walk = _Walk({id(leaf) for leaf in leaves})
    for root in roots:
        walk.holds(root, _DEPTH)
    return walk.owners


def outside_arrays(roots: list[Any], sources: list[np.ndarray]) -> list[Owner]:
    """The arrays from outside (a global, a closure cell, an object argument's, one level into a
    list or an object) that the function made Tensors from, each with a copy of its numbers: the
    trace keeps those numbers as constants, where the eager function reads the array anew, so a
    call replays only while the array still holds them (written in place, it traces again)."""
    held = [v for v in _one_level(roots) if isinstance(v, np.ndarray)]
    out: list[Owner] = []
    for arr in held:
        if any(np.shares_memory(arr, s) for s in sources):
            out.append((arr, arr.size, _ARRAY, arr.copy()))
    return out


def _one_level(roots: list[Any]) -> list[Any]:
    out = list(roots)
    for r in roots:
        if isinstance(r, (list, tuple)) and len(r) <= MAX_ITEMS:
            out.extend(r)
        elif _object(r) and not isinstance(r, np.ndarray):
            out.extend(vars(r).values())
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
        else:
            space = obj if isinstance(obj, dict) else obj.__dict__  # a dict subclass too
            if len(space) != size or not all(map(is_, map(space.get, keys), held)):
                return False
    return True
