"""Scalar networks on ``autograd.Value``: micrograd's Neuron, Layer and MLP as Modules, and the
max-margin loss of micrograd's demo."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Sequence
from typing import Union

from backproplab.autograd import Value, dot, sum_values
from backproplab.autograd.seeding import draw_seed

from .functional import check_activation
from .module import Module

__all__ = ["INITS", "MLP", "Layer", "Neuron", "hinge"]

Scalar = Union[Value, int, float]  # noqa: UP007 - a runtime alias; `|` needs 3.10 objects

INITS = ("uniform", "seed001", "zeros")


def _check_count(name: str, n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"{name} must be a positive int, got {n!r}")
    return n


def _check_init(init: object) -> str:
    if not isinstance(init, str) or init not in INITS:
        raise ValueError(f"unknown init {init!r}: expected one of {list(INITS)}")
    return init


def _generator(seed: int | None, rng: random.Random | None) -> random.Random:
    """The generator a module draws from: ``rng`` when a Layer or MLP hands down its own, else
    ``random.Random(seed)``, the seed drawn from the shared generator when None."""
    if rng is not None:
        return rng
    if seed is None:
        return random.Random(draw_seed())
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an int >= 0 or None, got {seed!r}")
    return random.Random(seed)


def _draw_weights(init: str, nin: int, rng: random.Random) -> list[float]:
    # One draw per weight in input order and none for the bias, on a random.Random: with
    # Random(s) the draws are those that `random.seed(s)` gives the global generator, which is
    # how the circle classifier's write-up (`seed(0)`, then `random() - 0.5`) and micrograd
    # (`random.uniform(-1, 1)`) get their numbers.
    if init == "uniform":
        return [rng.uniform(-1, 1) for _ in range(nin)]
    if init == "seed001":
        return [rng.random() - 0.5 for _ in range(nin)]
    return [0.0] * nin


class Neuron(Module):
    """One neuron: ``activation(w · x + b)`` over Values.

    Args:
        nin: the number of inputs (>= 1).
        activation: "relu", "sigmoid", "tanh", or "none"/"linear" for the bare weighted sum.
        init: "uniform" (micrograd: each weight ``random.uniform(-1, 1)``), "seed001" (the circle
            classifier's write-up's init, seed 001 in the code's names: each weight
            ``random.random() - 0.5``) or "zeros". The bias always starts at 0.0.
        seed: the weights are drawn in input order from ``random.Random(seed)``, the draws that
            ``random.seed(seed)`` would give. None (the default) takes a fresh seed from the
            shared generator that ``backproplab.manual_seed`` seeds.
        rng: a ``random.Random`` to draw from instead (Layer and MLP pass theirs, so that the
            draws run on from neuron to neuron); it overrides ``seed``.

    Attributes:
        w: the weights, a list of ``nin`` Values labelled "w0", "w1", ...
        b: the bias, a Value labelled "b".

    Raises:
        ValueError: naming the argument, when nin is not a positive int or the activation or
            init is unknown.
    """

    def __init__(
        self,
        nin: int,
        activation: str = "relu",
        init: str = "uniform",
        seed: int | None = None,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.nin = _check_count("nin", nin)
        self.activation = check_activation(activation)
        self.init = _check_init(init)
        draws = _draw_weights(init, nin, _generator(seed, rng))
        self.w = [Value(d, label=f"w{i}") for i, d in enumerate(draws)]
        self.b = Value(0.0, label="b")
        # The Value method itself (its names are the activations'), looked up once, not per call
        self._act: Callable[[Value], Value] | None = (
            None if self.activation == "none" else getattr(Value, self.activation)
        )

    def forward(self, xs: Sequence[Scalar]) -> Value:
        """Return ``activation(w · xs + b)`` for ``nin`` numbers or Values.

        Raises ValueError when ``xs`` does not hold ``nin`` items.
        """
        return self._forward(_checked_input(xs, self.nin, "Neuron"))

    def _forward(self, xs: Sequence[Scalar]) -> Value:
        # The weighted sum as one Dot node, not 2n Mul/Add nodes: half the graph, twice the speed.
        z = dot(self.w, xs) + self.b
        act = self._act
        return z if act is None else act(z)

    def extra_repr(self) -> str:
        return f"nin={self.nin}, activation={self.activation!r}"


class Layer(Module):
    """``nout`` Neurons over the same inputs.

    Args:
        nin: the number of inputs of every neuron (>= 1).
        nout: the number of neurons (>= 1).
        activation, init: passed to each Neuron (see Neuron).
        seed, rng: one generator for all the neurons, in order (see Neuron).

    Attributes:
        neurons: the list of Neurons, built in order (so their random draws come in order).

    Raises:
        ValueError: naming the argument, when nin or nout is not a positive int or the
            activation or init is unknown.
    """

    def __init__(
        self,
        nin: int,
        nout: int,
        activation: str = "relu",
        init: str = "uniform",
        seed: int | None = None,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.nin = _check_count("nin", nin)
        self.nout = _check_count("nout", nout)
        check_activation(activation)
        _check_init(init)
        self.activation = activation
        shared = _generator(seed, rng)
        self.neurons = [Neuron(nin, activation, init, rng=shared) for _ in range(nout)]

    def forward(self, xs: Sequence[Scalar]) -> Value | list[Value]:
        """Return the neurons' outputs: a list of Values, or the single Value when nout == 1.

        That single-Value case is micrograd's behaviour, so its examples run unchanged.
        Raises ValueError when ``xs`` does not hold ``nin`` items.
        """
        out = self._forward(_checked_input(xs, self.nin, "Layer"))
        return out[0] if len(out) == 1 else out

    def _forward(self, xs: Sequence[Scalar]) -> list[Value]:
        return [n._forward(xs) for n in self.neurons]

    def extra_repr(self) -> str:
        return f"nin={self.nin}, nout={self.nout}, activation={self.activation!r}"


class MLP(Module):
    """A multilayer perceptron of scalar Layers, shaped as micrograd's ``MLP(nin, nouts)``.

    Args:
        nin: the number of inputs (>= 1).
        nouts: each layer's width, in order; the last is the number of outputs.
        activation: the hidden layers' activation, or a list giving every layer's activation
            (one per entry of nouts, the output layer's included; it then overrides
            output_activation).
        output_activation: the last layer's activation when ``activation`` is a single name.
        init: each weight's init (see Neuron). Construction goes layer by layer, neuron by
            neuron, weights before bias, from one ``random.Random(seed)``, so
            ``MLP(2, [4, 1], ["sigmoid", "sigmoid"], init="seed001", seed=0)`` draws exactly as
            the circle classifier's write-up's ``MyNet(2, [4])`` after ``random.seed(0)``.
        seed: that generator's seed; None (the default) takes a fresh one from the shared
            generator that ``backproplab.manual_seed`` seeds. Python's global ``random`` is
            never used.

    Attributes:
        layers: the list of Layers. Parameter names run ``layers.0.neurons.0.w.0`` ...
            ``layers.0.neurons.0.b``.

    Raises:
        ValueError: naming the argument and its value, when nin or a width is not a positive
            int, nouts is empty, an activation or the init is unknown, or the list of
            activations does not have one entry per layer.
    """

    def __init__(
        self,
        nin: int,
        nouts: Sequence[int],
        activation: str | Sequence[str] = "relu",
        output_activation: str = "none",
        init: str = "uniform",
        seed: int | None = None,
    ) -> None:
        self.nin = _check_count("nin", nin)
        if isinstance(nouts, (str, bytes)) or not isinstance(nouts, Sequence) or not nouts:
            raise ValueError(f"nouts must be a non-empty list of layer widths, got {nouts!r}")
        widths = [_check_count(f"nouts[{i}]", n) for i, n in enumerate(nouts)]
        if isinstance(activation, str):
            acts = [check_activation(activation)] * (len(widths) - 1)
            acts.append(check_activation(output_activation, "output_activation"))
        else:
            acts = [check_activation(a, f"activation[{i}]") for i, a in enumerate(activation)]
            if len(acts) != len(widths):
                raise ValueError(
                    f"activation lists {len(acts)} activations {acts!r} for {len(widths)} "
                    f"layers (nouts={widths!r}): give one per layer"
                )
        _check_init(init)
        self.nouts = widths
        self.activations = acts
        sizes = [nin, *widths]
        shared = _generator(seed, None)
        self.layers = [
            Layer(sizes[i], sizes[i + 1], acts[i], init, rng=shared) for i in range(len(widths))
        ]

    def forward(self, x: Sequence[Scalar]) -> Value | list[Value]:
        """Run every layer on ``x`` (``nin`` numbers or Values).

        Returns a list of Values, or the single Value when the last layer has one neuron.
        Raises ValueError when ``x`` does not hold ``nin`` items.
        """
        out = self.layers[0]._forward(_checked_input(x, self.nin, "MLP"))
        for layer in self.layers[1:]:
            # Every layer, a hidden width-1 one included, hands the next a list; only the
            # final output is unwrapped (micrograd's MLP fails on MLP(2, [1, 1]) here).
            out = layer._forward(out)
        return out[0] if len(out) == 1 else out

    def extra_repr(self) -> str:
        return f"nin={self.nin}, nouts={self.nouts!r}, activations={self.activations!r}"


def _checked_input(xs: Sequence[Scalar], nin: int, who: str) -> Sequence[Scalar]:
    try:
        n = len(xs)
    except TypeError:
        raise ValueError(f"{who} takes a sequence of {nin} inputs (nin), got {xs!r:.80}") from None
    if n != nin:
        raise ValueError(f"{who} takes {nin} inputs (nin), got {n}: {xs!r:.80}")
    return xs


def hinge(
    scores: Sequence[Value],
    labels: Sequence[float],
    *,
    alpha: float = 0.0,
    parameters: Iterable[Value] = (),
) -> Value:
    """micrograd's max-margin ("SVM") loss on Values, as its demo.ipynb writes it.

    ``sum((1 + -y*score).relu() for each sample) / n + alpha * sum(p*p for p in parameters)``:
    a score on the right side of its label by a margin of 1 costs nothing, and the L2 penalty
    (micrograd's demo takes ``alpha = 1e-4`` and ``model.parameters()``) keeps the weights small.

    Args:
        scores: one Value per sample (``[model(x) for x in X]``).
        labels: -1 or +1 per sample (for 0/1 labels pass ``2 * y - 1``).
        alpha: the L2 penalty's weight, a finite number >= 0.
        parameters: the Values the penalty covers.

    Returns a Value; ``loss.backward()`` reaches the scores and the parameters.

    Raises:
        ValueError: naming the values, for a label that is not ±1, scores and labels of
            different lengths, no samples, or a bad alpha.
        TypeError: when a score is not a Value.

    >>> hinge([Value(2.0), Value(0.5), Value(-0.5)], [1, 1, 1]).data  # (0 + 0.5 + 1.5) / 3
    0.6666666666666666
    """
    scores, labels = list(scores), list(labels)
    if len(scores) != len(labels) or not scores:
        raise ValueError(
            f"hinge needs one label per score and at least one of each, got {len(scores)} "
            f"scores and {len(labels)} labels"
        )
    for i, (s, y) in enumerate(zip(scores, labels, strict=True)):
        if not isinstance(s, Value):
            raise TypeError(f"hinge: score {i} is a {type(s).__name__}, not a Value")
        if isinstance(y, bool) or y not in (-1, 1):
            zero_one = all(v in (0, 1) for v in labels)
            hint = " (for 0/1 labels pass 2 * y - 1)" if zero_one else ""
            raise ValueError(f"hinge: labels must be -1 or +1, got {y!r} at index {i}{hint}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha < math.inf:
        raise ValueError(f"hinge: alpha must be a finite number >= 0, got {alpha!r}")
    losses = [(1 + -float(y) * s).relu() for s, y in zip(scores, labels, strict=True)]
    loss = sum_values(losses) * (1.0 / len(losses))
    params = list(parameters) if alpha else []
    if not params:
        return loss
    return loss + alpha * sum_values([p * p for p in params])
