"""Module: the base of every layer and network; parameters, modes, and weight files."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
from backproplab.autograd import Node, Tensor, Value

__all__ = ["Module", "StateError"]


class StateError(ValueError):
    """A state dict or a saved file does not fit the model: a key missing, extra, or misshapen."""


class Module:
    """Base class: subclasses set parameters and submodules as attributes and define ``forward``.

    Parameters are the attributes (and list items) that are Values or Tensors with
    ``requires_grad``; submodules are Module attributes or lists of Modules. Their dotted names
    (``layers.0.weight``) come from the attribute names, in the order they were set.
    """

    training: bool = True

    # -- structure ---------------------------------------------------------------------------------

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Compute the module's output; subclasses define it."""
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """Yield (name, submodule) for direct submodules, lists of modules flattened as name.i."""
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value
            elif isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    if isinstance(item, Module):
                        yield f"{name}.{i}", item

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Node]]:
        """Yield (dotted name, parameter) for every parameter, this module's own first."""
        for name, value in vars(self).items():
            if _is_param(value):
                yield prefix + name, value
            elif isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    if _is_param(item):
                        yield f"{prefix}{name}.{i}", item
        for name, child in self.named_children():
            yield from child.named_parameters(f"{prefix}{name}.")

    def parameters(self) -> list[Node]:
        """Every parameter, in the order of ``named_parameters``."""
        return [p for _, p in self.named_parameters()]

    def modules(self) -> Iterator[Module]:
        """This module and every submodule, depth first."""
        yield self
        for _, child in self.named_children():
            yield from child.modules()

    def zero_grad(self) -> None:
        """Reset every parameter's gradient (see ``Tensor.zero_grad``)."""
        for p in self.parameters():
            p.zero_grad()

    # -- modes -------------------------------------------------------------------------------------

    def train(self, mode: bool = True) -> Module:
        """Switch this module and its submodules to training mode (dropout active); returns self."""
        for m in self.modules():
            m.training = mode
        return self

    def eval(self) -> Module:
        """Switch to inference mode (no dropout), as PyTorch's ``eval()``; returns self."""
        return self.train(False)

    # -- state -------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, np.ndarray]:
        """Return a copy of every parameter's data as an array, by dotted name."""
        return {name: np.array(p.data, dtype=np.float64) for name, p in self.named_parameters()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Set every parameter from ``state``, all or nothing.

        Raises StateError naming the key when one is missing, extra, or of the wrong shape, or
        holds a value that is not finite, or not finite in the parameter's dtype (1e300 in a
        float32 model); the model is then left exactly as it was.
        """
        params = dict(self.named_parameters())
        missing = sorted(params.keys() - state.keys())
        extra = sorted(state.keys() - params.keys())
        if missing:
            raise StateError(f"state is missing {_names(missing)} for {type(self).__name__}")
        if extra:
            raise StateError(f"state has unexpected {_names(extra)} for {type(self).__name__}")
        staged: dict[str, Any] = {}
        for name, p in params.items():
            try:
                given = np.asarray(state[name])
            except (TypeError, ValueError):
                raise StateError(f"state[{name!r}] is not an array of numbers") from None
            # Booleans and complex numbers would convert, silently and wrongly.
            kind = given.dtype.kind
            if kind in "bc":
                what = "booleans" if kind == "b" else "complex numbers"
                raise StateError(f"state[{name!r}] holds {what}; parameters are real numbers")
            if kind not in "iuf":
                raise StateError(f"state[{name!r}] is not an array of numbers")
            value = given.astype(np.float64)
            shape = np.shape(p.data)
            if value.shape != shape:
                raise StateError(
                    f"state[{name!r}] has shape {value.shape}, the parameter has shape {shape}"
                )
            if not np.all(np.isfinite(value)):
                raise StateError(f"state[{name!r}] holds NaN or infinity")
            staged[name] = value if isinstance(p, Value) else _fitted(name, value, p.data.dtype)
        for name, p in params.items():  # nothing above touched the model; now it all goes in
            p.data = float(staged[name]) if isinstance(p, Value) else staged[name]
            p.zero_grad()

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the state dict to ``path``: safetensors, or .npz when the name ends in .npz.

        safetensors (any other name) is what PyTorch reads: ``safetensors.torch.load_file(path)``
        gives the state dict of this model's ``to_torch()`` (an MLP's weights transposed to
        PyTorch's (out, in) layout, see ``MLP.to_torch``). Neither format can hold a pickle.
        The write follows ``nn.files.safe_write``: only a regular file is replaced (a device,
        FIFO or directory is refused), a symlink's target is written and the link kept, an
        existing file keeps its permissions, and a failed save leaves the old file whole.
        Raises OSError naming ``path``.
        """
        from .weights import write_weights

        write_weights(path, self.state_dict())

    def load(self, path: str | os.PathLike[str]) -> None:
        """Load parameters saved by ``save``, all or nothing, never unpickling anything.

        The format follows the extension as in ``save``. Every name, dtype and shape in the
        file's headers is checked against this model before any data is read.
        Raises FileNotFoundError, and StateError naming the path and the key for a missing,
        extra or misshapen key, an array that is not of floats (integers, bools, complex,
        text), NaN or infinity (in the model's dtype: 1e300 overflows a float32 model), a header
        claiming more data than the file holds, or a file that is not of its extension's
        format; the model is left as it was on any error.
        """
        from .weights import read_weights

        layout = {name: np.shape(p.data) for name, p in self.named_parameters()}
        state = read_weights(path, layout, type(self).__name__)
        try:
            self.load_state_dict(state)
        except StateError as e:  # a value this model cannot hold: say which file holds it
            raise StateError(f"{os.fspath(path)!r}: {e}") from None

    # -- display ------------------------------------------------------------------------------

    def extra_repr(self) -> str:
        """The arguments shown in this module's line of ``repr``; subclasses override."""
        return ""

    def __repr__(self) -> str:
        children = list(self.named_children())
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not children:
            return head + ")"
        lines = [head]
        for name, child in children:
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        return "\n".join(lines) + "\n)"


def _fitted(name: str, value: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """value in the parameter's dtype; StateError naming the key and the value when a finite
    number overflows it (1e300 would be inf in float32)."""
    with np.errstate(over="ignore"):
        fitted = value.astype(dtype)
    if not np.all(np.isfinite(fitted)):
        at = np.unravel_index(int(np.argmax(~np.isfinite(fitted))), value.shape)
        big = np.finfo(dtype).max
        raise StateError(
            f"state[{name!r}] holds {value[at]:g} at index {list(map(int, at))}, beyond the "
            f"range of the parameter's {dtype} (±{big:g})"
        )
    return fitted


def _is_param(value: object) -> bool:
    return isinstance(value, (Value, Tensor)) and value.requires_grad and value.op is None


def _names(keys: list[str]) -> str:
    shown = ", ".join(repr(k) for k in keys[:5])
    more = f" and {len(keys) - 5} more" if len(keys) > 5 else ""
    return f"key{'s' if len(keys) > 1 else ''} {shown}{more}"
