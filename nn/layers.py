"""Tensor layers with the configurable MLP's API: ``Linear`` and ``MLP``, batch first.

Their arguments are those of the configurable MLP's write-up (seed 000 in the code's names).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, TypeGuard

import numpy as np
from backproplab.autograd import Tensor, dense, no_grad
from backproplab.autograd.seeding import draw_seed

from .functional import activate, check_activation
from .module import Module

__all__ = ["INITS", "MLP", "REGULARISATIONS", "Linear"]

INITS: tuple[str, ...] = ("auto", "normal", "xavier", "he")
"""Weight initialisations: "auto" is He for relu and Xavier otherwise (see ``Linear``)."""

REGULARISATIONS: tuple[str | None, ...] = (None, "l1", "l2")
"""Penalties a layer can add to the loss (``None``, or the string "none", for no penalty)."""


class Linear(Module):
    """A dense layer ``y = act(x @ weight + bias)``, with dropout and an l1/l2 penalty.

    The argument order and defaults are the configurable MLP's write-up's::

        Linear(input_size, output_size, activation="sigmoid", use_bias=True, dropout=0.0,
               use_act=True, eval=True, regularisation=None, beta=0.0, *, init="auto", seed=None)

    - ``input_size``, ``output_size``: positive ints. ``x`` has shape (batch, input_size) (or
      (input_size,) for one sample) and ``weight`` shape (input_size, output_size).
    - ``activation``: "relu", "sigmoid", "tanh" or "none" ("linear"). ``use_act=False`` turns it
      off whatever it says.
    - ``use_bias``: with False there is no ``bias`` parameter (the attribute is None).
    - ``dropout``: the fraction p in [0, 1) of outputs zeroed in training mode. Inverted dropout:
      the kept outputs are scaled by 1 / (1 - p), so inference needs no rescaling. The 0/1 mask
      of the last training forward is kept in ``last_mask`` (None after an inference forward, or
      when p is 0), for hand-derived backprop to reuse.
    - ``eval``: the configurable MLP's write-up's flag, True meaning *training* mode ("keep what
      training needs"). It sets ``self.training``. Note that ``Module.eval()`` means the opposite,
      as in PyTorch: it switches to inference. ``train()`` / ``eval()`` change the mode afterwards.
    - ``regularisation``: "l1", "l2" or None, with ``beta`` >= 0: ``penalty()`` is
      beta * sum|W| or beta * sum W², on the weight only. Add it to the loss yourself.
    - ``init``: "xavier" (Glorot uniform, bound sqrt(6 / (fan_in + fan_out))), "he" (Kaiming normal,
      std sqrt(2 / fan_in)), "normal" (standard normal, as the random ReLU regression's write-up
      draws), or "auto": He for relu, Xavier for the rest (the activation actually applied, so
      "none" when use_act=False). The weight is drawn from ``np.random.default_rng(seed)``; the bias
      starts at zero.
    - ``seed``: seeds ``self.rng``, the generator that draws the weight and then every dropout
      mask. None (the default) takes a fresh seed from the shared generator that
      ``backproplab.manual_seed`` seeds, so two layers differ and a seeded run repeats; the seed
      used is kept in ``self.seed``.
    - ``fused``: with True (the default) a (batch, input_size) input goes through
      ``autograd.dense``, the whole layer as one graph node, about twice as fast on small
      networks. False records the three steps (MatMul, Add, the activation) as their own
      nodes, for a picture of the graph that shows them; the gradients are the same.

    Raises ValueError naming the argument and its value for any invalid argument.
    """

    def __init__(
        self,
        input_size: int,
        output_size: int,
        activation: str = "sigmoid",
        use_bias: bool = True,
        dropout: float = 0.0,
        use_act: bool = True,
        eval: bool = True,  # the configurable MLP's write-up's name: True is training mode
        regularisation: str | None = None,
        beta: float = 0.0,
        *,
        init: str = "auto",
        seed: int | None = None,
        fused: bool = True,
    ) -> None:
        self.input_size = _check_size(input_size, "input_size")
        self.output_size = _check_size(output_size, "output_size")
        self.activation = check_activation(activation)
        self.use_bias = bool(use_bias)
        self.dropout = _check_dropout(dropout, "dropout")
        self.use_act = bool(use_act)
        self.regularisation = _check_regularisation(regularisation, "regularisation")
        self.beta = _check_beta(beta, "beta")
        self.init = _check_choice(init, INITS, "init")
        self.seed = draw_seed() if seed is None else _check_seed(seed)
        self.training = bool(eval)
        self.fused = bool(fused)
        self.rng = np.random.default_rng(self.seed)
        self.last_mask: np.ndarray | None = None
        self.weight = Tensor(self._initial_weight(), requires_grad=True, name="weight")
        self.bias: Tensor | None = (
            Tensor(np.zeros(self.output_size), requires_grad=True, name="bias")
            if self.use_bias
            else None
        )

    @property
    def applied_activation(self) -> str:
        """The activation the forward pass applies: ``activation``, or "none" without use_act."""
        return self.activation if self.use_act else "none"

    def _initial_weight(self) -> np.ndarray:
        shape = (self.input_size, self.output_size)
        init = self.init
        if init == "auto":
            init = "he" if self.applied_activation == "relu" else "xavier"
        if init == "normal":
            return self.rng.standard_normal(shape)
        if init == "he":
            return self.rng.normal(0.0, math.sqrt(2.0 / self.input_size), shape)
        bound = math.sqrt(6.0 / (self.input_size + self.output_size))
        return self.rng.uniform(-bound, bound, shape)

    def forward(self, x: Any) -> Tensor:
        """Return act(x @ weight + bias), with dropout in training mode.

        ``x`` is a Tensor or anything ``np.asarray`` takes (made a constant Tensor), of shape
        (batch, input_size) or (input_size,). Raises ValueError naming both shapes and the layer
        when the last axis is not input_size.
        """
        if not isinstance(x, Tensor):
            x = Tensor(x, name="x")  # named, so that a drawn graph shows the input as x
        shape = x.data.shape
        if len(shape) == 2 and shape[1] == self.input_size and self.fused:
            # the usual batch: the whole layer as one node (autograd.dense)
            y = dense(x, self.weight, self.bias, self.applied_activation)
        elif not shape or shape[-1] != self.input_size:
            raise ValueError(
                f"{self!r} takes inputs of shape (batch, {self.input_size}), got shape {x.shape}"
            )
        else:
            z = x @ self.weight
            if self.bias is not None:
                z = z + self.bias
            y = activate(z, self.applied_activation)
        if self.training and self.dropout > 0.0:
            p = self.dropout
            self.last_mask = (self.rng.random(y.shape) >= p).astype(y.dtype)
            # One constant factor: the mask and the 1 / (1 - p) rescaling in a single multiply.
            y = y * (self.last_mask / (1.0 - p))
        else:
            self.last_mask = None
        return y

    def penalty(self) -> Tensor:
        """Return the regularisation term as a scalar Tensor (a constant zero without one)."""
        if self.regularisation == "l1":
            return self.beta * self.weight.abs().sum()
        if self.regularisation == "l2":
            return self.beta * (self.weight * self.weight).sum()
        return Tensor(0.0)

    def extra_repr(self) -> str:
        """The sizes and activation, then every other argument that is not at its default."""
        parts = [str(self.input_size), str(self.output_size), f"activation={self.activation!r}"]
        if not self.use_bias:
            parts.append("use_bias=False")
        if self.dropout:
            parts.append(f"dropout={self.dropout:g}")
        if not self.use_act:
            parts.append("use_act=False")
        if self.regularisation is not None:
            parts.append(f"regularisation={self.regularisation!r}, beta={self.beta:g}")
        if self.init != "auto":
            parts.append(f"init={self.init!r}")
        return ", ".join(parts)


class MLP(Module):
    """A multi-layer perceptron: a list of ``Linear`` layers, with an optional softmax output.

    The argument order and defaults are the configurable MLP's write-up's::

        MLP(input_size, output_size, hid_sizes=(), activation="sigmoid", is_softmax=False,
            reg=None, beta=0.0, layer_dropout=0.0, use_bias=True, eval=True, *, init="auto",
            seed=None)

    ``self.layers[i]`` maps size i to size i + 1 of [input_size, *hid_sizes, output_size]
    (parameters ``layers.0.weight``, ``layers.0.bias``, ...) and is seeded with ``seed + i``.
    ``seed=None`` (the default) takes one fresh seed from the shared generator that
    ``backproplab.manual_seed`` seeds and keeps it in ``self.seed``: ``MLP(..., seed=m.seed)``
    rebuilds ``m``'s initial weights.
    Every layer shares ``activation``, ``reg``/``beta``, ``use_bias``, ``init`` and ``fused`` (False
    draws each layer's MatMul, Add and activation as nodes of their own; see ``Linear``).
    ``layer_dropout`` applies to the hidden layers only: dropping outputs of the last layer would
    drop predictions. ``eval`` is the configurable MLP's write-up's flag, True meaning training mode
    (see ``Linear``).

    With ``is_softmax`` the output layer has no activation and ``forward`` returns the softmax of
    its output over the last axis: a sigmoid or relu squashing the scores before a softmax would
    cripple training. Without it the output layer uses ``activation``, as the configurable MLP's
    write-up does.
    A softmax model is a classifier: ``predict(x)`` gives class labels and ``predict_proba(x)``
    the probabilities, as in scikit-learn.

    Raises ValueError naming the argument and its value for any invalid argument.
    """

    def __init__(
        self,
        input_size: int,
        output_size: int,
        hid_sizes: Sequence[int] = (),
        activation: str = "sigmoid",
        is_softmax: bool = False,
        reg: str | None = None,
        beta: float = 0.0,
        layer_dropout: float = 0.0,
        use_bias: bool = True,
        eval: bool = True,  # the configurable MLP's write-up's name: True is training mode
        *,
        init: str = "auto",
        seed: int | None = None,
        fused: bool = True,
    ) -> None:
        # Checked here as well as in Linear so that errors carry MLP's own argument names.
        self.input_size = _check_size(input_size, "input_size")
        self.output_size = _check_size(output_size, "output_size")
        if isinstance(hid_sizes, (str, bytes)) or not isinstance(hid_sizes, (Sequence, np.ndarray)):
            raise ValueError(f"hid_sizes must be a list of positive ints, got {hid_sizes!r}")
        self.hid_sizes = [_check_size(h, f"hid_sizes[{i}]") for i, h in enumerate(hid_sizes)]
        self.activation = check_activation(activation)
        self.is_softmax = bool(is_softmax)
        self.reg = _check_regularisation(reg, "reg")
        self.beta = _check_beta(beta, "beta")
        self.layer_dropout = _check_dropout(layer_dropout, "layer_dropout")
        self.use_bias = bool(use_bias)
        self.init = _check_choice(init, INITS, "init")
        self.seed = draw_seed() if seed is None else _check_seed(seed)
        self.training = bool(eval)
        sizes = [self.input_size, *self.hid_sizes, self.output_size]
        last = len(sizes) - 2
        self.layers = [
            Linear(
                sizes[i],
                sizes[i + 1],
                self.activation,
                self.use_bias,
                0.0 if i == last else self.layer_dropout,
                not (i == last and self.is_softmax),
                self.training,
                self.reg,
                self.beta,
                init=self.init,
                seed=self.seed + i,
                fused=fused,
            )
            for i in range(last + 1)
        ]

    def logits(self, x: Any) -> Tensor:
        """Return the output layer's output before any softmax (forward(x) without is_softmax).

        With ``is_softmax`` these are the scores that ``cross_entropy(..., from_logits=True)``
        wants: the log-softmax of logits is stable where the log of a softmax is not.
        """
        h = self.layers[0].forward(x)
        for layer in self.layers[1:]:
            h = layer.forward(h)
        return h

    def forward(self, x: Any) -> Tensor:
        """Return the network's output for ``x`` of shape (batch, input_size) (a softmax over
        the last axis with ``is_softmax``). Raises ValueError when x has the wrong feature count.
        """
        out = self.logits(x)
        return out.softmax(axis=-1) if self.is_softmax else out

    def predict(self, x: Any) -> np.ndarray:
        """Return the class labels (n,) of a softmax classifier, else ``forward(x)`` as an array.

        For ``is_softmax`` the label of a row is the index of its largest probability, as
        scikit-learn's ``predict``; ``predict_proba`` gives the probabilities. Without a softmax
        the model's outputs are returned as they are. No graph is recorded. It runs in the
        current mode: call ``eval()`` first for predictions without dropout.

        ``x`` is a batch (n, input_size), as in scikit-learn: one sample is ``x.reshape(1, -1)``.
        Raises ValueError naming the shape for any other.
        """
        _check_batch(x, "predict")
        with no_grad():
            out = np.array(self.forward(x).data)
        return out.argmax(axis=-1) if self.is_softmax else out

    def predict_proba(self, x: Any) -> np.ndarray:
        """Return the class probabilities of a softmax classifier, shape (n, output_size), for
        ``x`` of shape (n, input_size) (one sample is ``x.reshape(1, -1)``).

        Raises ValueError for a model built without ``is_softmax``, whose outputs are not
        probabilities, and for an ``x`` that is not 2-D (naming its shape), as scikit-learn.
        """
        if not self.is_softmax:
            raise ValueError(
                f"predict_proba needs a classifier (MLP(..., is_softmax=True)); {self!r} gives "
                "scores: use predict(x)"
            )
        _check_batch(x, "predict_proba")
        with no_grad():
            return np.array(self.forward(x).data)

    def penalty(self) -> Tensor:
        """Return the sum of the layers' regularisation terms, a scalar Tensor."""
        total = self.layers[0].penalty()
        for layer in self.layers[1:]:
            total = total + layer.penalty()
        return total

    def to_torch(self) -> Any:
        """Return a ``torch.nn.Sequential`` computing what this MLP computes (weights copied,
        in PyTorch's (out, in) layout); see ``nn.torch_bridge``. Needs torch (the ``torch``
        extra): raises ImportError without it.
        """
        from .torch_bridge import to_torch

        return to_torch(self)

    @classmethod
    def from_torch(cls, module: Any) -> MLP:
        """Build an MLP from a ``torch.nn.Sequential`` of the form ``to_torch`` returns; see
        ``nn.torch_bridge.from_torch`` for what it takes and the TypeError or ValueError it
        raises for anything else.
        """
        from .torch_bridge import from_torch

        return from_torch(module)

    def extra_repr(self) -> str:
        """The sizes, then every other argument that is not at its default."""
        parts = [str(self.input_size), str(self.output_size)]
        if self.hid_sizes:
            parts.append(f"hid_sizes={self.hid_sizes}")
        parts.append(f"activation={self.activation!r}")
        if self.is_softmax:
            parts.append("is_softmax=True")
        if self.reg is not None:
            parts.append(f"reg={self.reg!r}, beta={self.beta:g}")
        if self.layer_dropout:
            parts.append(f"layer_dropout={self.layer_dropout:g}")
        if not self.use_bias:
            parts.append("use_bias=False")
        if self.init != "auto":
            parts.append(f"init={self.init!r}")
        return ", ".join(parts)


# --- argument checks ------------------------------------------------------------------------


def _check_batch(x: Any, who: str) -> None:
    # 1-D input is one sample to forward(), but predict's answer would then lose its row axis
    # ((3,) probabilities where (n, 3) is promised): refused as scikit-learn refuses it.
    shape = np.shape(x.data if isinstance(x, Tensor) else x)
    if len(shape) != 2:
        raise ValueError(
            f"{who} takes a 2-D batch (n_samples, n_features), got shape {shape}: for a single "
            "sample, reshape it with x.reshape(1, -1)"
        )


def _check_size(n: object, argument: str) -> int:
    # bool is an int subclass, but Linear(True, 2) is surely a mistake.
    if isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 1:
        return int(n)
    raise ValueError(f"{argument} must be a positive int, got {n!r}")


def _check_seed(seed: object) -> int:
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed >= 0:
        return int(seed)
    raise ValueError(f"seed must be an int >= 0 or None, got {seed!r}")


def _check_dropout(p: object, argument: str) -> float:
    # NaN fails the range test too.
    if _is_number(p) and 0.0 <= p < 1.0:
        return float(p)
    raise ValueError(f"{argument} must be a fraction in [0, 1), got {p!r}")


def _check_beta(beta: object, argument: str) -> float:
    if _is_number(beta) and 0.0 <= beta < math.inf:
        return float(beta)
    raise ValueError(f"{argument} must be a finite number >= 0, got {beta!r}")


def _is_number(x: object) -> TypeGuard[float]:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)


def _check_regularisation(reg: object, argument: str) -> str | None:
    if reg is None or (isinstance(reg, str) and reg == "none"):
        return None
    return _check_choice(reg, ("l1", "l2"), argument, extra="or None")


def _check_choice(value: object, choices: Sequence[str], argument: str, extra: str = "") -> str:
    if isinstance(value, str) and value in choices:
        return value
    listed = ", ".join(repr(c) for c in choices) + (f" {extra}" if extra else "")
    raise ValueError(f"unknown {argument} {value!r}: choose one of {listed}")
