"""Coming from PyTorch: an unknown attribute or keyword is answered with our name for it, or with
the near miss it most likely is, and a method that records ops says which, from ops.py."""

from __future__ import annotations

import difflib
import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = [
    "TORCH_ATTRIBUTES",
    "TORCH_FUNCTIONS",
    "TORCH_KEYWORDS",
    "attribute_error",
    "module_attribute_error",
    "records",
    "torch_keywords",
]

F = TypeVar("F", bound=Callable[..., Any])

TORCH_ATTRIBUTES: dict[str, tuple[str | None, str]] = {
    # PyTorch's name: (the attribute of ours the hint needs the class to have, the hint)
    "view": ("reshape", "PyTorch's view is reshape here: x.reshape(n, -1)"),
    "unsqueeze": ("reshape", "PyTorch's unsqueeze is reshape here: x.reshape(n, 1), or x[:, None]"),
    "squeeze": ("reshape", "PyTorch's squeeze is reshape here: x.reshape(n)"),
    "flatten": ("reshape", "PyTorch's flatten is reshape here: x.reshape(-1)"),
    "permute": ("transpose", "PyTorch's permute is transpose here: x.transpose(1, 0, 2)"),
    "t": ("T", "PyTorch's t() is T here: x.T"),
    "dim": ("ndim", "PyTorch's dim() is ndim here: x.ndim (a property)"),
    "numel": ("size", "PyTorch's numel() is size here: x.size (a property)"),
    "values": ("max", "x.max(axis) returns the values themselves; x.argmax(axis) the indices"),
    "indices": ("argmax", "x.max(axis) returns the values; x.argmax(axis) the indices"),
    "clamp": ("maximum", "PyTorch's clamp is x.maximum(low).minimum(high) here"),
    "clamp_min": ("maximum", "PyTorch's clamp_min is x.maximum(low) here"),
    "clamp_max": ("minimum", "PyTorch's clamp_max is x.minimum(high) here"),
    "pow": ("__pow__", "write x ** p"),
    "square": ("__pow__", "write x ** 2"),
    "mul": ("__mul__", "write x * y"),
    "add": ("__add__", "write x + y"),
    "sub": ("__sub__", "write x - y"),
    "div": ("__truediv__", "write x / y"),
    "matmul": ("__matmul__", "write x @ y"),
    "retain_grad": (
        None,
        "not needed here: after loss.backward() every node keeps its .grad, intermediates too "
        "(retain_grads=True is the default)",
    ),
    "requires_grad_": (None, "Tensor(data, requires_grad=True) makes a leaf that requires grad"),
    "grad_fn": ("op", "x.op is the op that made x (None for a leaf), x.parents its inputs"),
    "is_leaf": ("op", "x.op is None for a leaf"),
    "tolist": ("data", "x.data.tolist()"),
    "clone": ("data", "x.data.copy() for the numbers; x.detach() for a leaf without history"),
    "float": ("data", "Tensors hold float64 already (float32 with dtype=np.float32)"),
    "double": ("data", "Tensors hold float64 already"),
    "to": (None, "there are no devices or dtype casts here: Tensors are NumPy arrays"),
    "cpu": (None, "there are no devices here: Tensors are NumPy arrays in memory"),
    "cuda": (None, "there are no devices here: Tensors are NumPy arrays in memory"),
}
"""PyTorch's Tensor attributes a learner reaches for (the makemore lectures use most of them),
with a hint to ours. An entry whose attribute of ours the class lacks (a Value has no reshape)
is skipped, and a near miss is suggested instead."""

TORCH_KEYWORDS: dict[str, str] = {
    "dim": "axis",
    "keepdim": "keepdims",
    "unbiased": "ddof",
    "correction": "ddof",
}
"""PyTorch's keyword arguments, with ours (NumPy's names)."""

TORCH_FUNCTIONS: dict[str, str] = {
    "tensor": "PyTorch's torch.tensor is Tensor here: Tensor(data, requires_grad=True)",
    "cat": "PyTorch's torch.cat is concatenate here: concatenate([a, b], axis=0)",
    "allclose": "compare(name, manual, node) checks a node's gradient; np.allclose compares arrays",
    "zeros": "make the array with NumPy: Tensor(np.zeros((n, m)))",
    "ones": "make the array with NumPy: Tensor(np.ones((n, m)))",
    "randn": "draw with NumPy: Tensor(np.random.default_rng(seed).normal(size=(n, m)))",
}
"""PyTorch's functions a learner calls on ``torch.``, with ours on ``backproplab.``."""

_KEYWORD_NOTES = {
    "unbiased": "unbiased=True is ddof=1 (Bessel's correction; ddof=0, the default, is NumPy's)",
    "correction": "correction=1 is ddof=1 (the default here is NumPy's ddof=0)",
}


def attribute_error(obj: Any, name: str) -> AttributeError:
    """The AttributeError for ``obj.name``: ours when ``name`` is PyTorch's, else a near miss.

    ``hasattr`` and ``getattr(x, name, None)`` meet this error on purpose, often with the same
    name (the engine asks a Value for a ``shape``): the message is worked out once per class and
    name, and then costs a dictionary look-up.
    """
    cls: type = type(obj)
    return AttributeError(_attribute_message(cls, name))


def module_attribute_error(module: str, names: list[str], name: str) -> AttributeError:
    """The AttributeError for ``backproplab.name``: ours when ``name`` is PyTorch's function,
    else the near miss among ``names``."""
    head = f"module {module!r} has no attribute {name!r}"
    hint = TORCH_FUNCTIONS.get(name)
    if hint is not None:
        return AttributeError(f"{head}: {hint}")
    public = [n for n in names if not n.startswith("_")]
    near = difflib.get_close_matches(name, public, n=2, cutoff=0.7)
    if near:
        return AttributeError(f"{head}; did you mean {' or '.join(repr(n) for n in near)}?")
    return AttributeError(head)


@functools.lru_cache(maxsize=1024)
def _attribute_message(cls: type, name: str) -> str:
    head = f"{cls.__name__!r} object has no attribute {name!r}"
    known = TORCH_ATTRIBUTES.get(name)
    if known is not None and (known[0] is None or hasattr(cls, known[0])):
        return f"{head}: {known[1]}"
    if name.endswith("_") and hasattr(cls, name[:-1]):
        return (
            f"{head}: in-place ops (PyTorch's {name}) are not recorded in the graph; "
            f"write x = x.{name[:-1]}(...)"
        )
    near = difflib.get_close_matches(name, _public_names(cls), n=2, cutoff=0.7)
    if near:
        return f"{head}; did you mean {' or '.join(repr(n) for n in near)}?"
    return head


@functools.cache
def _public_names(cls: type) -> list[str]:
    return [n for n in dir(cls) if not n.startswith("_")]


def torch_keywords(f: F) -> F:
    """Let ``f`` answer a keyword it does not take with ours (``keepdim`` -> ``keepdims``) or a
    near miss, in the TypeError Python would raise anyway. A call with known keywords pays
    one set comparison."""
    params = inspect.signature(f).parameters
    names = frozenset(params)

    @functools.wraps(f)
    def checked(*args: Any, **kwargs: Any) -> Any:
        if kwargs and not names.issuperset(kwargs):
            raise _keyword_error(f.__qualname__, kwargs, names)
        return f(*args, **kwargs)

    return checked  # type: ignore[return-value]


def _keyword_error(where: str, kwargs: dict[str, Any], names: frozenset[str]) -> TypeError:
    name = next(k for k in kwargs if k not in names)
    head = f"{where}() got an unexpected keyword argument {name!r}"
    ours = TORCH_KEYWORDS.get(name)
    if ours is not None and ours in names:
        note = _KEYWORD_NOTES.get(name, f"{ours}={kwargs[name]!r}")
        return TypeError(f"{head}: PyTorch's {name} is {ours} here: {note}")
    public = sorted(n for n in names if n != "self")
    near = difflib.get_close_matches(name, public, n=2, cutoff=0.6)
    if near:
        return TypeError(f"{head}; did you mean {' or '.join(repr(n) for n in near)}?")
    return TypeError(f"{head}; it takes {', '.join(public) or 'no keywords'}")


def records(*ops: Any) -> Callable[[F], F]:
    """Append the formulas of the ops a method records to its docstring, so that
    ``help(Value.tanh)`` shows ``out = tanh(x);  dx = g * (1 - out ** 2)``: the first paragraph
    of the op's own docstring in ops.py, the one place it is written."""

    def add_docs(f: F) -> F:
        text = (f.__doc__ or "").rstrip()
        # the docstring's own indent, so that help() dedents the added lines with the rest
        body = [line for line in text.splitlines()[1:] if line.strip()]
        pad = " " * min((len(x) - len(x.lstrip()) for x in body), default=4)
        lines = []
        for op in ops:
            formula = (op.__doc__ or "").strip().split("\n\n")[0].splitlines()
            lines.append(f"{pad}{op.name}: " + f"\n{pad}    ".join(x.strip() for x in formula))
        kind = "op" if len(ops) == 1 else "ops"
        f.__doc__ = f"{text}\n\n{pad}Records the {kind} (out; derivatives):\n" + "\n".join(lines)
        return f

    return add_docs
