"""The hand-over to PyTorch: an ``MLP`` as a ``torch.nn.Sequential``, and back.

torch is optional (``pip install 'backproplab[torch]'``) and imported only inside these
functions, so ``import backproplab.nn`` never imports it.

The Sequential is what a PyTorch user would write for the same network: for each of our
layers a ``Linear`` (its ``weight`` transposed to PyTorch's (out, in) layout), then the layer's
activation (``ReLU``, ``Sigmoid``, ``Tanh``, nothing for "none"), then ``Dropout`` where the layer
has dropout; a final ``Softmax(dim=-1)`` for ``is_softmax``. Its parameters are named by
position in the Sequential (``0.weight``, ``2.weight``, ...); ``torch_state_dict`` maps one of our
state dicts (for instance a saved file read by ``safetensors.torch.load_file``) onto those names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .layers import MLP

if TYPE_CHECKING:
    import torch

__all__ = ["from_torch", "to_torch", "torch_names", "torch_state_dict"]

# Our activation names and PyTorch's module classes, both ways.
_TO_TORCH = {"relu": "ReLU", "sigmoid": "Sigmoid", "tanh": "Tanh"}
_FROM_TORCH = {"ReLU": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Identity": "none"}


def _class_name(x: object) -> str:
    """x's class, with its module unless it is torch's own (``torch.nn.modules.linear.Linear``
    is shown as Linear, a user's ``Linear`` as ``mymodule.Linear``)."""
    cls = type(x)
    return (
        cls.__name__
        if cls.__module__.startswith("torch.")
        else f"{cls.__module__}.{cls.__qualname__}"
    )


def _import_torch() -> Any:
    try:
        import torch
    except ImportError as e:
        raise ImportError(
            "the PyTorch hand-over needs torch: pip install 'backproplab[torch]'"
        ) from e
    return torch


def _modules(model: MLP) -> list[tuple[str, Any]]:
    """What ``to_torch`` puts in the Sequential, in order: (kind, argument) pairs."""
    plan: list[tuple[str, Any]] = []
    for i, layer in enumerate(model.layers):
        plan.append(("Linear", i))
        if layer.applied_activation != "none":
            plan.append((_TO_TORCH[layer.applied_activation], None))
        if layer.dropout > 0.0:
            plan.append(("Dropout", layer.dropout))
    if model.is_softmax:
        plan.append(("Softmax", None))
    return plan


def torch_names(model: MLP) -> dict[str, str]:
    """Our parameter names mapped to those of ``to_torch(model)``'s state dict.

    ``layers.1.weight`` becomes ``2.weight`` when an activation module sits between the first
    two Linears. The weights are also transposed (see ``torch_state_dict``).
    """
    names = {}
    for position, (kind, i) in enumerate(_modules(model)):
        if kind == "Linear":
            names[f"layers.{i}.weight"] = f"{position}.weight"
            if model.layers[i].bias is not None:
                names[f"layers.{i}.bias"] = f"{position}.bias"
    return names


def torch_state_dict(model: MLP, state: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Our state dict ``state`` (arrays or torch tensors) as ``to_torch(model)``'s state dict.

    Renamed by ``torch_names`` and with each weight transposed from our (in, out) layout to
    PyTorch's (out, in). For example, to load a file ``model.save`` wrote::

        seq.load_state_dict(torch_state_dict(model, safetensors.torch.load_file(path)))

    Raises KeyError naming a parameter of ``model`` that ``state`` lacks.
    """
    torch = _import_torch()
    out = {}
    for ours, theirs in torch_names(model).items():
        if ours not in state:
            raise KeyError(f"the state has no {ours!r} (needed for {theirs!r})")
        value = state[ours]
        if not torch.is_tensor(value):
            value = torch.from_numpy(np.array(value))
        out[theirs] = value.T.contiguous() if ours.endswith(".weight") else value
    return out


def to_torch(model: MLP) -> torch.nn.Sequential:
    """Return a ``torch.nn.Sequential`` that computes what ``model`` computes.

    Its parameters are copies of ours in our dtype (float64 unless changed), weights in
    PyTorch's (out, in) layout; it is in training mode when ``model`` is. The module list is
    described in this module's docstring. Raises ImportError when torch is not installed.
    """
    torch = _import_torch()
    layers: list[Any] = []
    for kind, arg in _modules(model):
        if kind == "Linear":
            layer = model.layers[arg]
            dtype = torch.from_numpy(np.asarray(layer.weight.data)).dtype
            layers.append(
                torch.nn.Linear(
                    layer.input_size, layer.output_size, bias=layer.bias is not None, dtype=dtype
                )
            )
        elif kind == "Dropout":
            layers.append(torch.nn.Dropout(arg))
        elif kind == "Softmax":
            layers.append(torch.nn.Softmax(dim=-1))
        else:
            layers.append(getattr(torch.nn, kind)())
    sequential = torch.nn.Sequential(*layers)
    sequential.load_state_dict(torch_state_dict(model, model.state_dict()))
    sequential.train(model.training)
    return sequential


def from_torch(module: Any) -> MLP:
    """Build our ``MLP`` from a ``torch.nn.Sequential`` of the form ``to_torch`` returns.

    That is: Linear layers, each followed by at most one activation (ReLU, Sigmoid, Tanh or
    Identity, the same for every layer) and then at most one Dropout (the same p on every
    hidden layer, none after the last), and optionally a final Softmax over the last axis
    (dim -1 or 1), in which case the last Linear has no activation. The last Linear may also
    stand bare after hidden layers that share an activation (``Linear, Tanh, ..., Linear``,
    PyTorch's usual network): the MLP's last layer then applies none (``use_act`` False).
    All Linears have a bias or none does. The weights are copied (as float64); the mode follows
    ``module.training`` (a Dropout left in the other mode is refused). Only torch.nn's own
    classes are taken, not subclasses of them, whose forward may compute something else.

    Raises:
        TypeError: ``module`` is not a torch.nn.Sequential, or holds a module we do not have
            (named with its class and position).
        ValueError: the Sequential is of modules we have but not in an MLP's arrangement
            (the message says what differs).
    """
    torch = _import_torch()
    children = _children(torch, module)
    _check_modes(module, children)
    groups, softmax = _grouped(children)
    activation, bare_output = _activation(children, groups, softmax)
    rate, bias = _dropout_and_bias(children, groups)
    sizes = _sizes(children, groups)
    model = MLP(
        sizes[0],
        sizes[-1],
        sizes[1:-1],
        activation,
        softmax,
        layer_dropout=rate,
        use_bias=bias,
        eval=module.training,
    )
    if bare_output:
        model.layers[-1].use_act = False
    state = {}
    for i, g in enumerate(groups):
        state[f"layers.{i}.weight"] = g.linear.weight.detach().cpu().double().numpy().T
        if g.linear.bias is not None:
            state[f"layers.{i}.bias"] = g.linear.bias.detach().cpu().double().numpy()
    model.load_state_dict(state)
    return model


@dataclass
class _Group:
    """One Linear of the Sequential with the activation and the dropout that follow it."""

    linear: Any
    at: int  # the Linear's position in the Sequential
    act: str | None = None  # our name of the activation module, None when there is none
    dropout: float = 0.0


def _refuse(children: list[Any], position: int, why: str) -> ValueError:
    return ValueError(f"from_torch: module {position} ({type(children[position]).__name__}) {why}")


def _children(torch: Any, module: Any) -> list[Any]:
    """The Sequential's modules, once each is known to be one of torch.nn's own that we have."""
    # torch's own classes exactly: a subclass may have a forward of its own, which we would drop
    if type(module) is not torch.nn.Sequential:
        raise TypeError(
            f"from_torch takes a torch.nn.Sequential of Linear and activation modules, "
            f"got {_class_name(module)}"
        )
    children = list(module)
    known = ("Linear", "Dropout", "Softmax", *_FROM_TORCH)
    for position, child in enumerate(children):
        kind = type(child).__name__
        if kind in known and type(child) is getattr(torch.nn, kind):
            continue
        lookalike = kind in known and isinstance(child, getattr(torch.nn, kind))
        raise TypeError(
            f"from_torch cannot take {_class_name(child)} (module {position} of the Sequential)"
            + (f": it is not torch.nn.{kind}, and may compute something else" if lookalike else "")
            + f"; an MLP is made of torch.nn's Linear, {', '.join(_FROM_TORCH)}, Dropout and a "
            "final Softmax"
        )
    return children


def _check_modes(module: Any, children: list[Any]) -> None:
    """Refuse a Dropout whose mode is not the Sequential's: our MLP has one mode, which follows
    ``module.training``, so it would drop out where torch does not, or not where it does."""
    mode = {True: "training", False: "eval"}
    for position, child in enumerate(children):
        if type(child).__name__ == "Dropout" and child.p and child.training != module.training:
            raise _refuse(
                children,
                position,
                f"is in {mode[child.training]} mode but the Sequential in "
                f"{mode[module.training]} mode; our MLP has one mode for all its layers (set it "
                "with .train() or .eval() on the Sequential)",
            )


def _grouped(children: list[Any]) -> tuple[list[_Group], bool]:
    """Each Linear with the activation and dropout that follow it, and whether a Softmax ends
    the Sequential; refused where the order is not a Linear's, activation's, dropout's."""
    groups: list[_Group] = []
    softmax = False
    for position, child in enumerate(children):
        kind = type(child).__name__
        if softmax:
            raise _refuse(
                children, position, "comes after the Softmax, which must be the last module"
            )
        if kind == "Linear":
            groups.append(_Group(child, position))
        elif not groups:
            raise _refuse(children, position, "comes before the first Linear")
        elif kind == "Softmax":
            if child.dim not in (-1, 1):
                raise _refuse(
                    children, position, f"is over dim {child.dim}; ours is over the last axis"
                )
            softmax = True
        elif kind == "Dropout":
            if groups[-1].dropout:
                raise _refuse(children, position, "is a second Dropout after one Linear")
            groups[-1].dropout = float(child.p)
        else:
            if groups[-1].act is not None or groups[-1].dropout:
                raise _refuse(
                    children,
                    position,
                    "follows an activation or a Dropout: ours has one "
                    "activation after each Linear, then any dropout",
                )
            groups[-1].act = _FROM_TORCH[kind]
    if not groups:
        raise ValueError("from_torch: the Sequential has no Linear")
    return groups, softmax


def _activation(children: list[Any], groups: list[_Group], softmax: bool) -> tuple[str, bool]:
    """The MLP's one activation, and whether its last layer stands bare (applies none)."""
    acts = [g.act or "none" for g in groups]
    # PyTorch's usual network ends in a bare Linear (its loss applies softmax or sigmoid): ours
    # is an MLP whose last layer applies no activation, like the output layer of is_softmax.
    bare_output = len(groups) > 1 and acts[-1] == "none" and not softmax
    hidden_acts = set(acts[:-1] if softmax or bare_output else acts)
    if len(hidden_acts) > 1:
        raise ValueError(
            f"from_torch: the layers have different activations ({', '.join(acts)}); an MLP "
            f"applies one activation after every Linear (the last one too unless a Softmax "
            f"ends it)"
        )
    if softmax and groups[-1].act is not None:
        raise _refuse(
            children, groups[-1].at, "has an activation before the Softmax; ours has none there"
        )
    return (hidden_acts.pop() if hidden_acts else "none"), bare_output


def _dropout_and_bias(children: list[Any], groups: list[_Group]) -> tuple[float, bool]:
    """The hidden layers' one dropout rate, and whether the Linears have biases."""
    if groups[-1].dropout:
        raise _refuse(
            children, groups[-1].at, "is followed by Dropout; our MLP has none after its output"
        )
    rates = {g.dropout for g in groups[:-1]}
    if len(rates) > 1:
        raise ValueError(f"from_torch: the hidden layers' dropout rates differ: {sorted(rates)}")
    with_bias = [g.at for g in groups if g.linear.bias is not None]
    without = [g.at for g in groups if g.linear.bias is None]
    if with_bias and without:
        raise ValueError(
            "from_torch: some Linear layers have a bias and some do not "
            f"({_modules_that(with_bias, 'has one', 'have one')}, "
            f"{_modules_that(without, 'has none', 'have none')})"
        )
    return (rates.pop() if rates else 0.0), bool(with_bias)


def _modules_that(positions: list[int], singular: str, plural: str) -> str:
    """ "module 2 has none" or "modules 0, 4 have one": where in the Sequential."""
    if len(positions) == 1:
        return f"module {positions[0]} {singular}"
    return f"modules {', '.join(map(str, positions))} {plural}"


def _sizes(children: list[Any], groups: list[_Group]) -> list[int]:
    """The layer sizes, input first, once every Linear takes what the one before it gives."""
    sizes = [groups[0].linear.in_features] + [g.linear.out_features for g in groups]
    for g, size in zip(groups, sizes[:-1], strict=True):
        if g.linear.in_features != size:
            raise _refuse(
                children, g.at, f"takes {g.linear.in_features} inputs, but {size} come to it"
            )
    return sizes
