"""The manual-vs-automatic checker: hand-derived backprop beside the engine and central differences.

``check_model(model, x, y, loss)`` computes the gradient of the training loss with respect to
every parameter of an ``nn.Linear`` or ``nn.MLP`` three ways:

- **manual**: ``nn.manual.ManualBackprop`` (or a derivation of your own), NumPy formulas only;
- **automatic**: the engine's backward pass;
- **numeric**: central differences of the engine's loss, in float64.

It returns an ``autograd.GradientReport``, the report ``compare_gradients`` gives for a function
of your own, with the same tolerance rule (``autograd.check.compare``) and the same table.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np
from backproplab.autograd import Node, Tensor, Value, enable_grad, gradients, no_grad
from backproplab.autograd.check import (
    GradientReport,
    compare,
    compare_gradients,
    manual_row,
    numerical_gradient,
    refuse_not_finite,
)

from .layers import MLP, Linear
from .losses import cross_entropy, mse, sum_squared_error
from .manual import LOSSES, manual_grads

__all__ = [
    "FLOAT32_TOL",
    "FLOAT64_TOL",
    "NUMERIC_TOL",
    "DerivationError",
    "Grads",
    "Loss",
    "ManualGradient",
    "check_derivation",
    "check_model",
    "model_loss",
]

ManualGradient = Callable[[Any, np.ndarray, np.ndarray, str], Mapping[str, Any]]
"""A hand derivation: (model, x, y, loss) -> {parameter name: gradient}."""

FLOAT64_TOL: tuple[float, float] = (1e-12, 1e-9)
"""(atol, rtol) for manual vs automatic on a float64 model, as ``compare_gradients`` uses. Both
sides are exact up to rounding: over every option combination of the command's 16-16 network
(three seeds each) they differed by at most 3e-15 of the gradient's largest element (1.4e-14
absolute). Rounding scales with the gradient, so gradients far above 100 in size (a summed
loss over a big batch) may need a larger atol for elements that cancel to near zero."""

FLOAT32_TOL: tuple[float, float] = (1e-6, 1e-4)
"""(atol, rtol) for manual vs automatic on a float32 model. float32 carries about 7 digits and
the two sides round in different orders. Measured over every option combination of the command's
16-16 network (two seeds each): |manual − automatic| at most 5.7e-7 of the gradient's largest
element (7.6e-6 absolute, on summed squared errors whose gradients reach 110), and never more
than 6e-9 beyond 1e-4 · |automatic|. rtol 1e-4 and atol 1e-6 leave a margin of over 100, and
every wrong formula the tests try is off by 10% or more."""

NUMERIC_TOL: tuple[float, float] = (1e-5, 1e-3)
"""(atol, rtol) for automatic vs central differences, as ``compare_gradients`` uses: central
differences with step 1e-6 are accurate to about 1e-8 here, not exactly."""


def model_loss(model: Linear | MLP, x: Tensor, y: Any, loss: str) -> Tensor:
    """The loss the trainer minimises, on the engine: ``loss(scores, y) + model.penalty()``.

    As ``nn.MLPTrainer`` computes it: cross-entropy takes logits (``model.logits(x)`` on a
    softmax MLP, else ``model.forward(x)``); the squared errors take ``model.forward(x)``.
    """
    if loss == "cross-entropy":
        scores = model.logits(x) if isinstance(model, MLP) and model.is_softmax else model(x)
        value = cross_entropy(scores, y, from_logits=True)
    else:
        value = (mse if loss == "sq-error" else sum_squared_error)(model(x), y)
    return value + model.penalty()


def check_model(
    model: Linear | MLP,
    x: Any,
    y: Any,
    loss: str = "sq-error",
    *,
    seed: int | None = 0,
    rtol: float | None = None,
    atol: float | None = None,
    numeric_rtol: float = NUMERIC_TOL[1],
    numeric_atol: float = NUMERIC_TOL[0],
    eps: float = 1e-6,
    manual: ManualGradient | None = None,
    title: str | None = None,
) -> GradientReport:
    """Set hand-derived gradients beside the engine's and central differences, per parameter.

    Args:
        model: an ``nn.Linear`` or ``nn.MLP`` whose parameters are all float64 or all float32.
            It is checked in its current mode: in training mode its dropout is on.
        x: a batch of shape (B, in).
        y: targets (B, out) for "sq-error" and "sum-sq-error"; class indices (B,) or one-hot
            rows (B, classes) for "cross-entropy".
        loss: "sq-error" (mean squared error), "sum-sq-error" or "cross-entropy". The loss
            checked is the trainer's, the model's penalty included (see ``model_loss``).
        seed: the dropout masks are drawn from ``np.random.default_rng([seed, i])`` for layer
            i, so one call gives one report; None draws them from the layers' own generators
            (the masks their next training forward would draw). Either way the engine's
            forward draws the masks once, the hand derivation reads them from ``last_mask``, and
            every central-difference evaluation redraws exactly the same ones.
        rtol, atol: the tolerance for manual vs automatic; by default ``FLOAT64_TOL`` (1e-9
            relative) for a float64 model and ``FLOAT32_TOL`` (1e-4 relative) for float32.
        numeric_rtol, numeric_atol: the tolerance for automatic vs central differences.
        eps: the central differences' step.
        manual: the hand derivation, called as ``manual(model, x, y, loss)`` and returning a
            dict {parameter name: gradient}, or a list of gradients in ``named_parameters()``
            order; by default ``nn.manual.manual_grads``.
        title: the report's first line; by default it describes the model, loss and batch.

    Returns:
        A GradientReport with one row per parameter, in ``named_parameters()`` order: its
        name and shape, the largest absolute and relative |manual − automatic| and
        |automatic − numeric|, and pass or fail. A wrong manual gradient is diagnosed as
        ``compare_gradients`` does (``autograd.diagnose``, knowing the batch size): one that
        is missing or of the wrong shape (a bias not summed over the batch) fails its row,
        never raises. ``str(report)`` is the table; its last line names every parameter that
        disagrees, with what is wrong.

    Raises:
        ValueError: for an unknown loss, a model of mixed or non-float dtypes, an x that is not
            2-D, a NaN or infinity in x, y or a parameter, a manual gradient for a parameter
            the model does not have, or a list of manual gradients of the wrong length.
        TypeError: when the model is not an ``nn.Linear`` or ``nn.MLP``, ``manual`` is not a
            function, or it returns neither a dict nor a list.

    The model is left as it was: parameters, gradients, generators and ``last_mask``.

    Central differences need a derivative to exist. At a kink they see half of each side's
    slope: relu at z = 0 exactly (which a zero bias gives under an input row that relu or
    dropout zeroed entirely; nn.Linear's biases start at zero), or |w| at w = 0 for l1. There
    the numeric column can fail while manual and automatic agree, both taking 0 as relu'(0).
    """
    named, xs, ys = _checked_batch(model, x, y, loss)
    dtype = xs.dtype
    if rtol is None or atol is None:
        default_atol, default_rtol = FLOAT32_TOL if dtype == np.float32 else FLOAT64_TOL
        atol = default_atol if atol is None else atol
        rtol = default_rtol if rtol is None else rtol
    if manual is not None and not callable(manual):
        raise TypeError(
            "manual= takes a function (model, x, y, loss) that returns the gradients, as a dict "
            f"{{parameter name: gradient}} or a list in named_parameters() order; got a "
            f"{type(manual).__name__}"
        )
    derive = manual_grads if manual is None else manual
    auto, derived, numeric = _three_ways(model, named, xs, ys, loss, derive, seed, eps)
    rows = [
        manual_row(
            name,
            tuple(p.data.shape),
            derived.get(name),
            a,
            compare(a, n, numeric_atol, numeric_rtol),
            atol,
            rtol,
            batch=len(xs),
        )
        for (name, p), a, n in zip(named, auto, numeric, strict=True)
    ]
    if title is None:
        title = describe(model, len(xs), loss, dtype)
    return GradientReport(
        rows, (atol, rtol), (numeric_atol, numeric_rtol), title=title, label="parameter"
    )


_Named = list[tuple[str, Node]]


def _checked_batch(
    model: Linear | MLP, x: Any, y: Any, loss: str
) -> tuple[_Named, np.ndarray, np.ndarray]:
    """The model's named parameters, and x and y as arrays in its dtype (class labels stay
    integers), once the model, the loss and x are known to be what ``check_model`` checks."""
    if not isinstance(model, (Linear, MLP)):
        raise TypeError(f"check_model checks an nn.Linear or nn.MLP, got {type(model).__name__}")
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}: choose one of {', '.join(map(repr, LOSSES))}")
    named = list(model.named_parameters())
    dtypes = {p.data.dtype for _, p in named}
    if len(dtypes) != 1 or dtypes.pop() not in (np.float32, np.float64):
        raise ValueError(
            "check_model needs parameters that are all float64 or all float32, got "
            + ", ".join(f"{n} {p.data.dtype}" for n, p in named)
        )
    for name, p in named:
        refuse_not_finite(p.data, f"check_model needs finite numbers: {name}")
    dtype = named[0][1].data.dtype
    xs = np.asarray(x, dtype=dtype)
    if xs.ndim != 2:
        raise ValueError(f"x must be a batch of shape (B, {model.input_size}), got {xs.shape}")
    refuse_not_finite(xs, "check_model needs finite numbers: x")
    # Targets in the model's dtype, so a float32 model's loss stays float32; class labels stay
    # integers.
    ys = np.asarray(y)
    if loss != "cross-entropy" or ys.dtype.kind == "f":
        ys = ys.astype(dtype)
        refuse_not_finite(ys, "check_model needs finite numbers: y")
    return named, xs, ys


def _three_ways(
    model: Linear | MLP,
    named: _Named,
    xs: np.ndarray,
    ys: np.ndarray,
    loss: str,
    derive: ManualGradient,
    seed: int | None,
    eps: float,
) -> tuple[list[np.ndarray], dict[str, Any], list[np.ndarray]]:
    """Every parameter's gradient from the engine, by hand and by central differences, each
    under the same dropout masks; the model is left as it was."""
    layers = model.layers if isinstance(model, MLP) else [model]
    same_masks = _same_masks(layers, seed)
    with _restored(layers, named) as start:
        # The engine. gradients() leaves every .grad as it was.
        same_masks()
        with enable_grad():
            root = model_loss(model, Tensor(xs, name="x"), ys, loss)
            auto = [np.asarray(g) for g in gradients(root, [p for _, p in named])]
        # By hand, on the same weights and the masks the engine's forward just drew.
        derived = _by_name(derive(model, xs.copy(), ys.copy(), loss), [n for n, _ in named])
        # Central differences, in float64 whatever the model's dtype.
        x64 = xs.astype(np.float64)
        y64 = ys.astype(np.float64) if ys.dtype.kind == "f" else ys

        def at(*arrays: np.ndarray) -> float:
            for (_, p), arr in zip(named, arrays, strict=True):
                p.data = arr
            same_masks()
            with no_grad():
                return float(model_loss(model, Tensor(x64), y64, loss).data)

        numeric = numerical_gradient(at, [d.astype(np.float64) for d in start], eps)
    return auto, derived, numeric


def _same_masks(layers: list[Linear], seed: int | None) -> Callable[[], None]:
    """A function to call before every forward: it gives each layer that drops out a copy of
    one generator state, so every forward draws the same dropout masks."""
    fresh = (
        [np.random.default_rng([seed, i]) for i in range(len(layers))]
        if seed is not None
        else [copy.deepcopy(layer.rng) for layer in layers]
    )
    # Only a layer that drops out draws from its generator in a forward pass.
    dropping = [i for i, layer in enumerate(layers) if layer.training and layer.dropout > 0.0]

    def same_masks() -> None:
        for i in dropping:
            layers[i].rng = copy.deepcopy(fresh[i])

    return same_masks


@contextmanager
def _restored(layers: list[Linear], named: _Named) -> Iterator[list[np.ndarray]]:
    """Give back the parameters' data (yielded, as they are on entry), the layers' generators
    and their last masks on exit, however the checks inside end."""
    saved_rngs = [layer.rng for layer in layers]
    saved_masks = [layer.last_mask for layer in layers]
    saved_data = [p.data for _, p in named]
    try:
        yield saved_data
    finally:
        for (_, p), data in zip(named, saved_data, strict=True):
            p.data = data
        for layer, g, mask in zip(layers, saved_rngs, saved_masks, strict=True):
            layer.rng = g
            layer.last_mask = mask


def _by_name(result: Any, names: list[str]) -> dict[str, Any]:
    """A derivation's result as {name: gradient}: a mapping as it is, a list in parameter order."""
    if isinstance(result, Mapping):
        unknown = sorted(set(result) - set(names))
        if unknown:
            raise ValueError(
                f"the manual gradient names {', '.join(map(str, unknown))}, which the model does "
                f"not have (its parameters: {', '.join(names)})"
            )
        return dict(result)
    if isinstance(result, (list, tuple)):
        if len(result) != len(names):
            raise ValueError(
                f"the manual derivation returned {len(result)} gradients, the model has "
                f"{len(names)} parameters ({', '.join(names)}), in that order"
            )
        return dict(zip(names, result, strict=True))
    raise TypeError(
        "the manual derivation must return a dict {parameter name: gradient} or a list in "
        f"named_parameters() order ({', '.join(names)}); it returned a {type(result).__name__}"
    )


def describe(model: Linear | MLP, batch: int, loss: str, dtype: Any) -> str:
    """One line naming what was checked: the model with its options, the loss, batch, dtype."""
    head = f"{type(model).__name__}({model.extra_repr()})"
    penalised = any(
        layer.regularisation is not None
        for layer in (model.layers if isinstance(model, MLP) else [model])
    )
    objective = f"{loss} + penalty" if penalised else loss
    return f"{head}: {objective}, batch {batch}, {np.dtype(dtype).name}"


class DerivationError(ValueError):
    """A derivation given to ``check_derivation`` returned the wrong kind of thing."""


Loss = Callable[[Mapping[str, Tensor], Any, Any], Any]
"""A loss on the engine: (params as Tensors, x, y) -> a scalar Tensor."""

Grads = Callable[[Mapping[str, np.ndarray], Any, Any], Mapping[str, Any]]
"""A derivation by hand: (params as float64 arrays, x, y) -> {name: gradient}."""


def check_derivation(
    loss: Loss,
    grads: Grads,
    params: Mapping[str, Any],
    x: Any,
    y: Any,
    *,
    rtol: float = FLOAT64_TOL[1],
    atol: float = FLOAT64_TOL[0],
    numeric_rtol: float = NUMERIC_TOL[1],
    numeric_atol: float = NUMERIC_TOL[0],
    eps: float = 1e-6,
    title: str | None = None,
) -> GradientReport:
    """Check your own backprop: ``grads`` by hand beside the engine's gradient of ``loss``.

    Args:
        loss: ``loss(params, x, y)``, written with backproplab's ops: ``params`` maps each name
            to a Tensor, ``x`` and ``y`` are as given; it returns a scalar Tensor (or Value).
        grads: ``grads(params, x, y)``, your derivation, in NumPy: ``params`` maps each name to
            a float64 array (a copy); it returns {name: gradient of the loss}.
        params: {name: array} where the gradients are taken; float64 throughout.
        x, y: the batch (``len(x)`` is the batch size a diagnosis names).
        rtol, atol: the tolerance for manual vs automatic (``FLOAT64_TOL``).
        numeric_rtol, numeric_atol, eps: central differences and their tolerance.
        title: the report's first line.

    Returns:
        A GradientReport, one row per parameter in ``params`` order, each wrong gradient
        diagnosed (``autograd.diagnose``): missing, of the wrong shape, off by a factor...

    Raises:
        DerivationError: ``params`` is not a non-empty {name: numbers}, or it, ``x`` or a float
            ``y`` holds a number that is not finite (NaN against NaN would agree having
            compared nothing); ``loss`` does not return
            a scalar on the engine, or ``grads`` returns no dict or names a parameter that
            ``params`` does not have. Whatever ``loss`` or ``grads`` raise goes through.
    """
    names, values = _parameters(params)
    for what, data in (("x", x), ("y", y)):
        try:
            array = np.asarray(data.data if isinstance(data, Tensor) else data)
        except (TypeError, ValueError):
            continue  # not numbers: what the user's loss makes of them is theirs to say
        if array.dtype.kind == "f":  # class labels are integers: nothing to refuse there
            _finite(array, what)
    batch = len(x) if np.ndim(x) >= 1 else None

    def on_engine(*tensors: Tensor) -> Any:
        out = loss(dict(zip(names, tensors, strict=True)), x, y)
        if not isinstance(out, (Tensor, Value)):
            raise DerivationError(
                f"loss(params, x, y) returned a {type(out).__name__}: it must compute the loss "
                "with backproplab's ops on the Tensors in params and return a scalar Tensor"
            )
        if isinstance(out, Tensor) and out.size != 1:
            raise DerivationError(
                f"loss(params, x, y) returned a Tensor of shape {out.shape}: it must return a "
                "scalar (take its .mean() or .sum())"
            )
        return out

    def by_hand(*arrays: np.ndarray) -> list[Any]:
        result = grads(dict(zip(names, arrays, strict=True)), x, y)
        if not isinstance(result, Mapping):
            raise DerivationError(
                f"grads(params, x, y) returned a {type(result).__name__}: it must return a dict "
                f"{{name: gradient}} for {', '.join(names)}"
            )
        unknown = sorted(map(str, set(result) - set(names)))
        if unknown:
            raise DerivationError(
                f"grads(params, x, y) returned a gradient for {', '.join(unknown)}, which params "
                f"does not have (its names: {', '.join(names)})"
            )
        return [result.get(n) for n in names]

    report = compare_gradients(
        on_engine,
        by_hand,
        *values,
        names=names,
        eps=eps,
        atol=numeric_atol,
        rtol=numeric_rtol,
        manual_atol=atol,
        manual_rtol=rtol,
        batch=batch,
    )
    if title is None:
        count = sum(v.size for v in values)
        title = f"loss(params, x, y) and grads(params, x, y): {count} parameters, batch {batch}"
    return GradientReport(report.rows, report.manual_tol, report.numeric_tol, title, "parameter")


def _parameters(params: Any) -> tuple[list[str], list[np.ndarray]]:
    """params as (names, float64 arrays), refused unless a non-empty {name: numbers}."""
    if not isinstance(params, Mapping) or not params:
        got = f"a {type(params).__name__}" if not isinstance(params, Mapping) else "an empty dict"
        raise DerivationError(f"params must be a dict {{name: array}}, got {got}")
    names, values = [], []
    for name, value in params.items():
        if not isinstance(name, str):
            raise DerivationError(f"params' names must be strings, got {name!r}")
        try:
            if isinstance(value, (str, bytes)):
                raise TypeError
            array = np.array(value.data if isinstance(value, Tensor) else value, dtype=np.float64)
        except (TypeError, ValueError):
            raise DerivationError(
                f"params[{name!r}] is a {type(value).__name__}, not an array of numbers"
            ) from None
        _finite(array, f"params[{name!r}]")
        names.append(name)
        values.append(array)
    return names, values


def _finite(x: Any, what: str) -> None:
    """Refuse numbers that are not finite as a DerivationError (refuse_not_finite's words)."""
    try:
        refuse_not_finite(x, f"a gradient check needs finite numbers: {what}")
    except ValueError as e:
        raise DerivationError(str(e)) from None
