"""Backprop derived by hand, in NumPy: the formulas of the three write-ups, written out.

The configurable MLP's, the circle classifier's and the random ReLU regression's write-ups are
seed 000, 001 and 002 in the code's names. Nothing here uses the engine's backward pass. It is the
other side of ``nn.checker``, which sets these gradients beside the engine's and beside central
differences.

- ``ManualBackprop``: the forward and backward pass of ``nn.Linear`` and ``nn.MLP`` with every
  option, from the configurable MLP's write-up's formulas for one linear layer. Each formula is a
  method whose docstring states it in math; a wrong derivation is a subclass that overrides one of
  them.
- ``relu_net_grads``: the random ReLU regression's two-layer network, as its write-up derives it.
- ``circle_neuron_grads``: the circle classifier's per-neuron rule, over a scalar ``nn.scalar.MLP``.

**Layout.** The configurable MLP's write-up writes one sample as a column: y = W x + b with W of
shape (out, in), and ∂L/∂W = δ xᵀ, ∂L/∂b = δ, ∂L/∂x = Wᵀ δ. ``nn.Linear`` is batch first: x is
(B, in), each sample a row, and ``weight`` is stored (in, out), so z = x W + b. Transposing the
write-up's formulas and summing them over the B samples gives, with δ = ∂L/∂z of shape (B, out)::

    ∂L/∂W = xᵀ δ            (in, out)   Σ over samples of the write-up's δ xᵀ, transposed
    ∂L/∂b = Σ_batch δ       (out,)      the write-up's δ, summed over samples
    ∂L/∂x = δ Wᵀ            (B, in)     the write-up's Wᵀ δ, one row per sample

and through an activation a = σ(z): ∂L/∂z = ∂L/∂a ⊙ σ'(z).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .layers import MLP, Linear
from .scalar import MLP as ScalarMLP

__all__ = [
    "LOSSES",
    "LayerCache",
    "ManualBackprop",
    "circle_neuron_grads",
    "manual_grads",
    "relu_net_grads",
]

LOSSES: tuple[str, ...] = ("sq-error", "sum-sq-error", "cross-entropy")
"""The losses the hand derivation covers (names as in ``nn.losses.LOSSES``)."""


@dataclass
class LayerCache:
    """What one layer's forward pass keeps for its backward pass (the circle classifier's write-up's
    "cache")."""

    name: str  # the parameter prefix: "layers.0." in an MLP, "" for a lone Linear
    x: np.ndarray  # the layer's input, (B, in)
    z: np.ndarray  # x W + b, (B, out)
    a: np.ndarray  # σ(z), (B, out)
    mask: np.ndarray | None  # the engine's 0/1 dropout mask, or None without dropout
    y: np.ndarray  # the layer's output: a, or a ⊙ mask / (1 - p) with dropout


class ManualBackprop:
    """Hand-derived gradients of a loss on an ``nn.Linear`` or ``nn.MLP``, in NumPy.

    Call an instance as ``manual(model, x, y, loss)``: it returns ∂L/∂p for every parameter,
    keyed by the names of ``model.named_parameters()``, where L is the loss the trainer
    minimises (``nn.MLPTrainer``): ``loss(output, y) + model.penalty()``, the output being the
    logits for cross-entropy (``model.logits(x)`` on a softmax MLP, else ``model.forward(x)``).

    The weights are read from the model by name, so both sides compute on the same numbers, in
    the parameters' dtype. Dropout reuses the engine's masks: each layer's ``last_mask``, which
    the engine's training-mode forward on the same batch leaves behind. Run that forward first.

    Each formula is a method with its math in the docstring. To try a derivation of your own,
    subclass and override the method; ``nn.checker.check_model(..., manual=YourSubclass())``
    says whether it is right.
    """

    # -- one linear layer: the configurable MLP's write-up -----------------------------------

    def linear(self, x: np.ndarray, W: np.ndarray, b: np.ndarray | None) -> np.ndarray:
        """z = x W + b   (x: B × in, W: in × out, b: out; b is added to every row)"""
        z = x @ W
        return z if b is None else z + b

    def weight_grad(self, x: np.ndarray, delta: np.ndarray) -> np.ndarray:
        """∂L/∂W = xᵀ δ   (in × out; the configurable MLP's δ xᵀ for each sample, summed)"""
        return x.T @ delta

    def bias_grad(self, delta: np.ndarray) -> np.ndarray:
        """∂L/∂b = Σ_batch δ   (out; the configurable MLP's ∂L/∂b = δ for each sample, summed)"""
        return delta.sum(axis=0)

    def input_grad(self, delta: np.ndarray, W: np.ndarray) -> np.ndarray:
        """∂L/∂x = δ Wᵀ   (B × in; the configurable MLP's Wᵀ δ for each sample, as a row)"""
        return delta @ W.T

    # -- activations ---------------------------------------------------------------------------

    def activation(self, z: np.ndarray, name: str) -> np.ndarray:
        """a = σ(z): relu max(z, 0), sigmoid 1 / (1 + e⁻ᶻ), tanh, or none (a = z)."""
        if name == "relu":
            return np.maximum(z, 0.0)
        if name == "sigmoid":
            # Written so that exp never overflows: e^-|z| is at most 1.
            e = np.exp(-np.abs(z))
            return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(z.dtype)
        if name == "tanh":
            return np.tanh(z)
        if name == "none":
            return z
        raise ValueError(f"unknown activation {name!r}")

    def activation_derivative(self, z: np.ndarray, a: np.ndarray, name: str) -> np.ndarray:
        """σ'(z): relu [z > 0] (0 at 0, as the engine), sigmoid a (1 − a), tanh 1 − a², none 1."""
        if name == "relu":
            return (z > 0).astype(z.dtype)
        if name == "sigmoid":
            return a * (1.0 - a)
        if name == "tanh":
            return 1.0 - a * a
        if name == "none":
            return np.ones_like(z)
        raise ValueError(f"unknown activation {name!r}")

    def activation_grad(
        self, grad_a: np.ndarray, z: np.ndarray, a: np.ndarray, name: str
    ) -> np.ndarray:
        """∂L/∂z = ∂L/∂a ⊙ σ'(z)   (the configurable MLP's write-up's "through an activation")"""
        return grad_a * self.activation_derivative(z, a, name)

    # -- dropout -------------------------------------------------------------------------------

    def dropout(self, a: np.ndarray, mask: np.ndarray, p: float) -> np.ndarray:
        """y = a ⊙ m / (1 − p)   (inverted dropout; m the engine's 0/1 mask)"""
        return a * (mask / (1.0 - p))

    def dropout_grad(self, grad_y: np.ndarray, mask: np.ndarray, p: float) -> np.ndarray:
        """∂L/∂a = ∂L/∂y ⊙ m / (1 − p)   (a dropped unit passes back nothing)"""
        return grad_y * (mask / (1.0 - p))

    # -- the output: softmax and the losses ---------------------------------------------------

    def softmax(self, s: np.ndarray) -> np.ndarray:
        """p_c = e^(s_c) / Σ_k e^(s_k) over each row (the row's maximum subtracted first)."""
        e = np.exp(s - s.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)  # type: ignore[no-any-return]

    def softmax_grad(self, grad_p: np.ndarray, p: np.ndarray) -> np.ndarray:
        """∂L/∂s = p ⊙ (∂L/∂p − Σ_c ∂L/∂p_c p_c)   (the softmax Jacobian, row by row)"""
        return p * (grad_p - (grad_p * p).sum(axis=1, keepdims=True))  # type: ignore[no-any-return]

    def softmax_ce_grad(self, s: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """∂L/∂s = (softmax(s) − Y) / B   for L = −(1/B) Σ_i Σ_c Y_ic log softmax(s)_ic

        The fused gradient of softmax and cross-entropy; Y holds one-hot (or probability) rows.
        """
        return (self.softmax(s) - Y) / s.shape[0]  # type: ignore[no-any-return]

    def mse_grad(self, pred: np.ndarray, t: np.ndarray) -> np.ndarray:
        """∂L/∂pred = 2 (pred − t) / (B k)   for L = mean of (pred − t)² over all B × k entries"""
        return 2.0 * (pred - t) / pred.size  # type: ignore[no-any-return]

    def sse_grad(self, pred: np.ndarray, t: np.ndarray) -> np.ndarray:
        """∂L/∂pred = 2 (pred − t)   for L = Σ (pred − t)², summed (the random ReLU regression's)"""
        return 2.0 * (pred - t)  # type: ignore[no-any-return]

    # -- penalties -----------------------------------------------------------------------------

    def l1_grad(self, W: np.ndarray, beta: float) -> np.ndarray:
        """∂(β Σ|W|)/∂W = β sign(W)   (0 at 0, as the engine's abs)"""
        return beta * np.sign(W)  # type: ignore[no-any-return]

    def l2_grad(self, W: np.ndarray, beta: float) -> np.ndarray:
        """∂(β Σ W²)/∂W = 2 β W"""
        return 2.0 * beta * W

    # -- the whole model -----------------------------------------------------------------------

    def forward(self, model: Linear | MLP, x: Any) -> list[LayerCache]:
        """Run the model's forward pass by hand: one LayerCache per layer, in order.

        The last cache's ``y`` is the model's output before any softmax (its logits).
        Raises ValueError when a layer drops out but has no mask of this batch's shape.
        """
        params = _parameters(model)
        dtype = params[next(iter(params))].dtype
        h = np.asarray(x, dtype=dtype)
        caches = []
        for prefix, layer in _layers(model):
            W = params[f"{prefix}weight"]
            b = params.get(f"{prefix}bias")
            z = self.linear(h, W, b)
            a = self.activation(z, layer.applied_activation)
            mask = None
            y = a
            if layer.training and layer.dropout > 0.0:
                mask = layer.last_mask
                if mask is None or mask.shape != a.shape:
                    raise ValueError(
                        f"{prefix.rstrip('.') or 'the layer'} drops out {layer.dropout:g} of its "
                        f"outputs but has no dropout mask of shape {a.shape}: run the engine's "
                        "training-mode forward on this batch first, so both sides use its mask"
                    )
                y = self.dropout(a, mask, layer.dropout)
            caches.append(LayerCache(prefix.rstrip("."), h, z, a, mask, y))
            h = y
        return caches

    def output_grad(self, model: Linear | MLP, logits: np.ndarray, y: Any, loss: str) -> np.ndarray:
        """∂L/∂(logits) for the loss (without the penalty), by the output's kind.

        cross-entropy: the fused (softmax(s) − Y) / B, the logits taken as the scores. Squared
        errors on a softmax MLP: the loss's gradient at p = softmax(s), then the softmax
        Jacobian. Otherwise the loss's gradient at the output itself.
        """
        if loss == "cross-entropy":
            return self.softmax_ce_grad(logits, _targets(y, logits.shape, logits.dtype))
        loss_grad = self.mse_grad if loss == "sq-error" else self.sse_grad
        if _is_softmax(model):
            p = self.softmax(logits)
            return self.softmax_grad(loss_grad(p, _fit(y, p)), p)
        return loss_grad(logits, _fit(y, logits))

    def loss(self, model: Linear | MLP, x: Any, y: Any, loss: str = "sq-error") -> float:
        """The loss L (penalty included) computed by hand, for comparing forward passes."""
        _check_loss(loss)
        s = self.forward(model, x)[-1].y
        if loss == "cross-entropy":
            Y = _targets(y, s.shape, s.dtype)
            shifted = s - s.max(axis=1, keepdims=True)
            logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
            value = float(-(Y * logp).sum() / s.shape[0])
        else:
            pred = self.softmax(s) if _is_softmax(model) else s
            sq = (pred - _fit(y, pred)) ** 2
            value = float(sq.mean() if loss == "sq-error" else sq.sum())
        params = _parameters(model)
        for prefix, layer in _layers(model):
            W = params[f"{prefix}weight"]
            if layer.regularisation == "l1":
                value += layer.beta * float(np.abs(W).sum())
            elif layer.regularisation == "l2":
                value += layer.beta * float((W * W).sum())
        return value

    def __call__(
        self, model: Linear | MLP, x: Any, y: Any, loss: str = "sq-error"
    ) -> dict[str, np.ndarray]:
        """∂L/∂p for every parameter p of the model, keyed by ``named_parameters()`` names.

        ``x`` is a batch (B, in); ``y`` the targets (B, out) for the squared errors, or class
        indices (B,) or one-hot rows (B, classes) for cross-entropy. Going back layer by layer:
        undo the dropout, then the activation, then take the layer's gradients and pass
        ∂L/∂x = δ Wᵀ to the layer before. Raises ValueError for an unknown loss, a model that
        is not a Linear or MLP, or a missing dropout mask.
        """
        _check_loss(loss)
        params = _parameters(model)
        layers = dict(_layers(model))
        caches = self.forward(model, x)
        grads: dict[str, np.ndarray] = {}
        grad_y = self.output_grad(model, caches[-1].y, y, loss)
        for i in range(len(caches) - 1, -1, -1):
            c = caches[i]
            prefix = f"{c.name}." if c.name else ""
            layer = layers[prefix]
            grad_a = grad_y if c.mask is None else self.dropout_grad(grad_y, c.mask, layer.dropout)
            delta = self.activation_grad(grad_a, c.z, c.a, layer.applied_activation)
            W = params[f"{prefix}weight"]
            dW = self.weight_grad(c.x, delta)
            if layer.regularisation == "l1":
                dW = dW + self.l1_grad(W, layer.beta)
            elif layer.regularisation == "l2":
                dW = dW + self.l2_grad(W, layer.beta)
            grads[f"{prefix}weight"] = dW
            if f"{prefix}bias" in params:
                grads[f"{prefix}bias"] = self.bias_grad(delta)
            if i > 0:  # the first layer's input is data: its gradient is not needed
                grad_y = self.input_grad(delta, W)
        return {name: grads[name] for name in params}  # named_parameters() order


manual_grads = ManualBackprop()
"""The hand derivation, ready to call: ``manual_grads(model, x, y, loss)``."""


# -- the random ReLU regression: two layers, ReLU, no biases -----------------------------------


def relu_net_grads(
    X: np.ndarray, y: np.ndarray, W1: np.ndarray, W2: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The random ReLU regression's hand-derived gradients of L = Σ (relu(X W1) W2 − y)², as its
    write-up has them.

    Forward: h = relu(X W1), pred = h W2. Backward::

        d_pred = 2 (pred − y)
        d_W2   = hᵀ d_pred
        d_h    = d_pred W2ᵀ, zeroed where X W1 < 0
        d_W1   = Xᵀ d_h

    Returns (d_W1, d_W2), shaped as W1 and W2.
    """
    activations = X @ W1
    h = np.maximum(activations, 0.0)
    pred = h @ W2
    d_pred = 2.0 * (pred - y)
    d_W2 = h.T @ d_pred
    d_h = d_pred @ W2.T
    d_h[activations < 0] = 0.0
    d_W1 = X.T @ d_h
    return d_W1, d_W2


# -- the circle classifier: the per-neuron rule, over a scalar MLP -----------------------------


def _scalar_act(name: str, z: float) -> float:
    if name == "sigmoid":
        return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))
    if name == "tanh":
        return math.tanh(z)
    if name == "relu":
        return z if z > 0 else 0.0
    return z


def _scalar_derivative(name: str, z: float, a: float) -> float:
    """σ'(z): sigmoid a (1 − a), tanh 1 − a², relu [z > 0], none 1."""
    if name == "sigmoid":
        return a * (1.0 - a)
    if name == "tanh":
        return 1.0 - a * a
    if name == "relu":
        return 1.0 if z > 0 else 0.0
    return 1.0


def circle_neuron_grads(
    net: ScalarMLP,
    inputs: Sequence[Sequence[float]],
    targets: Sequence[float] | Sequence[Sequence[float]],
) -> dict[str, float]:
    """The circle classifier's per-neuron backprop of the mean squared error over a scalar MLP.

    L = (1 / (n k)) Σ_samples Σ_outputs (a − t)², n samples of k outputs (the circle classifier:
    k = 1, so L is its loss averaged over the 121 points). For each sample, the forward pass caches
    each neuron's inputs and z = Σ_i w_i input_i + b; then, from d_a = 2 (a − t) / (n k) at each
    output, layer by layer backwards, every neuron does::

        d_z       = d_a · σ'(z)
        d_bias   += d_z
        d_w[i]   += d_z · input[i]
        passes d_z · w[i] back to input i

    and the next layer back gets, for each of its neurons, the sum of what the neurons after it
    passed back. Gradients accumulate (``+=``) over the samples, as in the circle classifier's
    write-up's ``zero_grad`` / ``backward`` loop.

    ``targets`` holds one float per sample (a single-output network) or one list per sample.
    Returns the gradients as floats keyed by ``net.named_parameters()`` names
    (``layers.0.neurons.0.w.0`` ... ``layers.0.neurons.0.b``). Raises ValueError when the
    counts do not fit the network.
    """
    params = {name: p.data for name, p in net.named_parameters()}
    n = len(inputs)
    if n == 0 or len(targets) != n:
        raise ValueError(f"need one target per input and at least one, got {n} and {len(targets)}")
    k = net.nouts[-1]
    grads = dict.fromkeys(params, 0.0)
    acts = [[neuron.activation for neuron in layer.neurons] for layer in net.layers]
    for sample, target in zip(inputs, targets, strict=True):
        t: list[float] = np.atleast_1d(np.asarray(target, dtype=np.float64)).tolist()
        if len(sample) != net.nin or len(t) != k:
            raise ValueError(
                f"each sample needs {net.nin} inputs and {k} targets, "
                f"got {len(sample)} and {len(t)}"
            )
        # Forward, caching each neuron's inputs and z (the circle classifier's write-up's
        # inputs_cache and z_cache).
        cache: list[list[tuple[list[float], float, float]]] = []
        values = [float(v) for v in sample]
        for li, layer in enumerate(net.layers):
            row = []
            for j in range(len(layer.neurons)):
                w = [params[f"layers.{li}.neurons.{j}.w.{i}"] for i in range(len(values))]
                z = sum(v * wi for v, wi in zip(values, w, strict=True))
                z += params[f"layers.{li}.neurons.{j}.b"]
                row.append((values, z, _scalar_act(acts[li][j], z)))
            cache.append(row)
            values = [a for _, _, a in row]
        # Backward: the circle classifier's write-up's square_loss_derivative / num_samples,
        # averaged over outputs too.
        d_as = [2.0 * (a - tj) / (n * k) for a, tj in zip(values, t, strict=True)]
        for li in range(len(net.layers) - 1, -1, -1):
            passed = []
            for j, (ins, z, a) in enumerate(cache[li]):
                d_z = d_as[j] * _scalar_derivative(acts[li][j], z, a)
                grads[f"layers.{li}.neurons.{j}.b"] += d_z
                back = []
                for i, xi in enumerate(ins):
                    grads[f"layers.{li}.neurons.{j}.w.{i}"] += d_z * xi
                    back.append(d_z * params[f"layers.{li}.neurons.{j}.w.{i}"])
                passed.append(back)
            d_as = [sum(col) for col in zip(*passed, strict=True)]  # a layer's inputs, summed
    return grads


# -- helpers ------------------------------------------------------------------------------------


def _layers(model: Linear | MLP) -> list[tuple[str, Linear]]:
    """(parameter prefix, layer) for each layer, in order."""
    if isinstance(model, MLP):
        return [(f"layers.{i}.", layer) for i, layer in enumerate(model.layers)]
    if isinstance(model, Linear):
        return [("", model)]
    raise ValueError(
        f"hand-derived backprop covers nn.Linear and nn.MLP, got {type(model).__name__}"
    )


def _parameters(model: Linear | MLP) -> dict[str, np.ndarray]:
    _layers(model)  # the type check
    return {name: p.data for name, p in model.named_parameters()}


def _is_softmax(model: Linear | MLP) -> bool:
    return isinstance(model, MLP) and model.is_softmax


def _check_loss(loss: str) -> None:
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}: choose one of {', '.join(map(repr, LOSSES))}")


def _fit(y: Any, like: np.ndarray) -> np.ndarray:
    """Targets in the prediction's shape and dtype (nn.losses allows axes of length 1 to differ)."""
    t = np.asarray(y, dtype=like.dtype)
    return t if t.shape == like.shape else t.reshape(like.shape)


def _targets(y: Any, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """Cross-entropy labels as rows Y of shape (B, classes): one-hot rows for class indices."""
    labels = np.asarray(y)
    batch, classes = shape
    if labels.shape == (batch, 1) and classes > 1:
        labels = labels.reshape(batch)
    if labels.shape == (batch,):
        Y = np.zeros(shape, dtype=dtype)
        Y[np.arange(batch), labels.astype(np.intp)] = 1.0
        return Y
    if labels.shape == shape:
        return labels.astype(dtype)
    raise ValueError(f"labels of shape {labels.shape} do not fit scores of shape {shape}")
