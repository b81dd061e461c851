"""Module: the base of every layer and network; parameters, modes, and saving to .npz."""

from __future__ import annotations

import os
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
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

        Raises StateError naming the key when one is missing, extra, or of the wrong shape;
        the model is then left exactly as it was.
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
                value = np.asarray(state[name], dtype=np.float64)
            except (TypeError, ValueError):
                raise StateError(f"state[{name!r}] is not an array of numbers") from None
            shape = np.shape(p.data)
            if value.shape != shape:
                raise StateError(
                    f"state[{name!r}] has shape {value.shape}, the parameter has shape {shape}"
                )
            if not np.all(np.isfinite(value)):
                raise StateError(f"state[{name!r}] holds NaN or infinity")
            staged[name] = value
        for name, p in params.items():  # nothing above touched the model; now it all goes in
            if isinstance(p, Value):
                p.data = float(staged[name])
            else:
                p.data = staged[name].astype(p.data.dtype)
            p.zero_grad()

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the state dict to ``path`` as .npz (no pickle).

        The file is written beside the target and renamed over it, so a failed save leaves any
        old file as it was. Raises OSError when the folder cannot be written.
        """
        target = Path(path)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            # mkstemp makes the file private (0600); give it the mode a plain open() would
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
            with os.fdopen(fd, "wb") as f:
                np.savez(f, allow_pickle=False, **self.state_dict())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def load(self, path: str | os.PathLike[str]) -> None:
        """Load parameters saved by ``save``, all or nothing, never unpickling anything.

        Raises FileNotFoundError, StateError (a missing, extra or misshapen key; not an .npz
        file); the model is left as it was on any error.
        """
        try:
            data = np.load(path, allow_pickle=False)
            if not isinstance(data, np.lib.npyio.NpzFile):  # a bare .npy array
                raise ValueError("it holds a single array, not named parameters")
            with data:
                state = {name: data[name] for name in data.files}
        except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
            if isinstance(e, FileNotFoundError):
                raise
            raise StateError(f"{os.fspath(path)!r} is not a saved model (.npz): {e}") from None
        self.load_state_dict(state)

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


def _is_param(value: object) -> bool:
    return isinstance(value, (Value, Tensor)) and value.requires_grad and value.op is None


def _names(keys: list[str]) -> str:
    shown = ", ".join(repr(k) for k in keys[:5])
    more = f" and {len(keys) - 5} more" if len(keys) > 5 else ""
    return f"key{'s' if len(keys) > 1 else ''} {shown}{more}"
