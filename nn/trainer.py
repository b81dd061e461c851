"""MLPTrainer: the configurable MLP's training loop, mini-batch gradient descent on the engine."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np
from backproplab.autograd import Tensor, Value, no_grad
from backproplab.autograd.compile import Compiled, CompileError
from backproplab.autograd.compile import compile as compile_step
from backproplab.autograd.seeding import draw_seed

from .layers import MLP, Linear
from .losses import LOSSES, check_signed_labels, get_loss
from .module import Module
from .optim import SGD, Adam
from .progress import progress_bar
from .scalar import MLP as ScalarMLP
from .sequential import Sequential, _Activation

__all__ = ["CLASSIFICATION_LOSSES", "OPTIMIZERS", "MLPTrainer"]

CLASSIFICATION_LOSSES: tuple[str, ...] = ("cross-entropy", "bce", "hinge")
"""Loss names whose labels are classes: their history also records accuracies."""

OPTIMIZERS: tuple[str, ...] = ("sgd", "adam")
"""Optimizers the trainer builds by name, with ``learning_rate`` as their step size."""

History = list[dict[str, float]]


class MLPTrainer:
    """Train a model on (x, y) in shuffled mini-batches: the configurable MLP's write-up's
    ``MLPTrainer``.

    Args (the write-up's positional order, then keyword extensions):
        model: the network, a ``Module`` whose ``forward`` maps a (batch, features) array to
            (batch, outputs) scores, such as ``nn.layers.MLP``. If it has ``penalty()`` (MLP's
            l1/l2 term), that scalar is added to every loss, so the engine differentiates the
            regularisation along with the data term.
        learning_rate: the optimizer's step size, > 0.
        batch_size: rows per training step, >= 1; the last batch of an epoch may be smaller.
        lossfn: "sq-error" (mean squared error), "cross-entropy", or any name
            ``nn.losses.get_loss`` knows ("sum-sq-error", "bce", "hinge").
        optimizer: "sgd", "adam", or an optimizer built on ``model.parameters()`` (anything with
            ``step()`` and ``zero_grad()``, e.g. ``nn.optim.SGD(params, lr, momentum=0.9)``); an
            instance keeps its own step size and ``learning_rate`` is then only checked.
        seed: seeds ``np.random.default_rng``, which shuffles the batches: the same seed gives
            the same sequence of batches. None (the default) takes a fresh seed from the shared
            generator that ``backproplab.manual_seed`` seeds; the seed used is ``self.seed``.
        verbose: show a progress bar during ``train`` (``tqdm.auto``: a widget in Jupyter, a
            text bar elsewhere, never a warning; one printed line per epoch without tqdm);
            False shows nothing.
        compile: with True (the default) each training step runs as generated code
            (``autograd.compile``): the step is traced once per batch shape and replayed, with
            the same results to the bit and a fraction of the eager engine's per-node cost.
            It falls back to eager steps, on its own, for a model that draws dropout masks (a
            random mask drawn inside a traced step would be replayed unchanged) or a step
            compile cannot follow; ``compiled`` then says False. ``compile=False`` always
            runs the eager engine.

    How the loss is computed: what the model ends in is read through the module tree
    (``output_of``: Sequentials and MLPs, however nested). "cross-entropy" takes the logits
    before a final softmax (an ``MLP``'s ``logits(x)``, after any modules before it), else
    ``forward(x)``, as logits (``from_logits=True``: the stable log-softmax). "bce" takes
    ``forward(x)`` as probabilities when the model ends in a sigmoid or a softmax, else as
    logits. The other losses compare ``forward(x)`` with y.

    Raises:
        ValueError: naming the argument and its value, for a learning_rate that is not a
            positive finite number, a batch_size < 1, or an unknown loss or optimizer name.
        TypeError: when model is not a Module, is a network of Values (``nn.scalar``), or,
            for "cross-entropy" and "bce", does not show or say what its forward ends in
            (see ``output_of``); or when optimizer lacks step()/zero_grad().
    """

    def __init__(
        self,
        model: Module,
        learning_rate: float,
        batch_size: int,
        lossfn: str,
        optimizer: str | Any = "sgd",
        seed: int | None = None,
        verbose: bool = True,
        compile: bool = True,
    ) -> None:
        if not isinstance(model, Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        self.model = model
        self.learning_rate = _positive_finite("learning_rate", learning_rate)
        self.batch_size = _int_at_least("batch_size", batch_size, 1)
        if not isinstance(lossfn, str) or lossfn not in LOSSES:
            raise ValueError(
                f"unknown lossfn {lossfn!r}: choose one of {', '.join(map(repr, LOSSES))}"
            )
        self.lossfn = lossfn
        self.loss = get_loss(lossfn)
        self.classification = lossfn in CLASSIFICATION_LOSSES
        _check_model(model, lossfn)
        self.optimizer = self._make_optimizer(optimizer)
        if seed is None:
            seed = draw_seed()
        if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
        self.seed = int(seed)
        self.rng: np.random.Generator = np.random.default_rng(self.seed)
        self.verbose: bool = bool(verbose)
        self.history: History = []
        self.compile = bool(compile)
        self._step: Compiled | None = compile_step(self._loss_and_scores) if compile else None

    def _make_optimizer(self, optimizer: str | Any) -> Any:
        if isinstance(optimizer, str):
            name = optimizer.lower()
            if name == "sgd":
                return SGD(self.model.parameters(), lr=self.learning_rate)
            if name == "adam":
                return Adam(self.model.parameters(), lr=self.learning_rate)
            raise ValueError(
                f"unknown optimizer {optimizer!r}: choose one of "
                f"{', '.join(map(repr, OPTIMIZERS))}, or pass an optimizer instance"
            )
        if not (
            callable(getattr(optimizer, "step", None))
            and callable(getattr(optimizer, "zero_grad", None))
        ):
            raise TypeError(
                f"optimizer must be 'sgd', 'adam' or an object with step() and zero_grad(), "
                f"got {type(optimizer).__name__}"
            )
        return optimizer

    # -- the model's shape, where it can be read --------------------------------------------------

    @property
    def in_features(self) -> int | None:
        """The model's input width, from ``model.layers[0].weight`` (rows), or None if unknown."""
        return _weight_dim(self.model, 0, 0)

    @property
    def out_features(self) -> int | None:
        """The model's output width, from ``model.layers[-1].weight`` (columns), or None."""
        return _weight_dim(self.model, -1, 1)

    # -- batches ----------------------------------------------------------------------------------

    def data_loader(
        self, data: tuple[Any, Any], shuffle: bool = True
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (x_batch, y_batch) pairs of ``batch_size`` rows from ``data = (x, y)``.

        The last batch holds the remaining rows and may be smaller. With ``shuffle`` each call
        draws a new permutation from the trainer's generator, so successive epochs differ and a
        trainer built with the same seed repeats the same sequence; ``shuffle=False`` keeps the
        rows in order.

        Raises ValueError if data is not a pair (x, y) or x and y differ in length.
        """
        if not isinstance(data, (tuple, list)) or len(data) != 2:
            raise ValueError("data must be a pair (x, y)")
        x, y = np.asarray(data[0]), np.asarray(data[1])
        if x.ndim == 0 or y.ndim == 0 or len(x) != len(y):
            raise ValueError(
                f"x and y must have the same number of rows, got shapes {x.shape} and {y.shape}"
            )
        n = len(x)
        order = self.rng.permutation(n) if shuffle else np.arange(n)
        for start in range(0, n, self.batch_size):
            idx = order[start : start + self.batch_size]
            yield x[idx], y[idx]

    # -- training ---------------------------------------------------------------------------------

    def train(
        self,
        x_train: Any,
        y_train: Any,
        x_val: Any = None,
        y_val: Any = None,
        epochs: int = 1,
    ) -> History:
        """Train for ``epochs`` passes over (x_train, y_train) and return the history.

        Each step: ``optimizer.zero_grad()``, the loss (plus ``model.penalty()``) on one
        batch in training mode, ``loss.backward(retain_grads=False)``, ``optimizer.step()``.
        After each epoch the model is evaluated on (x_val, y_val) in inference mode under
        ``no_grad`` (pass both as None to skip validation). The model is left in inference mode.

        Everything is checked before the first step, so a bad argument changes nothing.

        Returns:
            One dict per epoch (also appended to ``self.history``): "epoch" (1-based),
            "train_loss" (the mean over the epoch's batches, weighted by batch size, of the loss
            as trained on, penalty included), "val_loss" (the same loss on the validation set,
            in inference mode), and for classification losses "train_acc" (over the epoch's
            batches as trained) and "val_acc", fractions in [0, 1].

        Raises:
            ValueError: naming the problem and the values: x and y of different lengths, x not
                2-D, empty data, NaN or infinity in the data, a feature count that is not the
                model's, class labels out of range or not whole numbers, targets that do not fit
                the model's output, only one of x_val and y_val, or epochs < 0.
        """
        epochs = _int_at_least("epochs", epochs, 0)
        x_tr, y_tr = self._check_data(x_train, y_train, "x_train", "y_train")
        if (x_val is None) != (y_val is None):
            raise ValueError("give both x_val and y_val, or neither")
        val = None if x_val is None else self._check_data(x_val, y_val, "x_val", "y_val")

        history: History = []
        bar = self._progress_bar(epochs)
        try:
            for epoch in range(1, epochs + 1):
                row = self._train_epoch(epoch, x_tr, y_tr)
                if val is not None:
                    evaluated = self.evaluate(*val)
                    row.update({f"val_{k}": v for k, v in evaluated.items()})
                history.append(row)
                self.history.append(row)
                self._report(bar, row, epochs)
        finally:
            if bar is not None:
                bar.close()
            self.model.eval()
        return history

    def _train_epoch(self, epoch: int, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
        self.model.train()
        total = 0.0
        correct = 0
        seen = 0
        step = self._step if self._step is not None and self._can_compile() else None
        for xb, yb in self.data_loader((x, y)):
            self.optimizer.zero_grad()
            if step is None:
                loss, scores = self._loss_and_scores(xb, yb)
            else:
                try:
                    loss, scores = step(xb, self._target_for_step(yb))
                except CompileError:
                    # a step compile cannot follow: eager from here on, as with compile=False
                    self._step = step = None
                    loss, scores = self._loss_and_scores(xb, yb)
            loss.backward(retain_grads=False)
            self.optimizer.step()
            total += loss.item() * len(xb)
            seen += len(xb)
            if self.classification:
                correct += self._correct(scores.data, yb)
        row = {"epoch": epoch, "train_loss": total / seen}
        if self.classification:
            row["train_acc"] = correct / seen
        return row

    def evaluate(self, x: Any, y: Any) -> dict[str, float]:
        """The loss (penalty included) and, for classification, the accuracy of the model on
        (x, y), in inference mode and without recording a graph.

        Returns {"loss": ...} plus "acc" for classification losses. The model is left in
        inference mode. Raises ValueError as ``train`` does for bad data.
        """
        x_arr, y_arr = self._check_data(x, y, "x", "y")
        self.model.eval()
        total = 0.0
        correct = 0
        with no_grad():
            for xb, yb in self.data_loader((x_arr, y_arr), shuffle=False):
                scores = self._scores(xb)
                total += self._objective(scores, yb).item() * len(xb)
                if self.classification:
                    correct += self._correct(scores.data, yb)
        out = {"loss": total / len(x_arr)}
        if self.classification:
            out["acc"] = correct / len(x_arr)
        return out

    # -- the loss ---------------------------------------------------------------------------------

    @property
    def compiled(self) -> bool:
        """True when training steps run as generated code (see the ``compile`` argument)."""
        return self._step is not None and self._can_compile()

    def _can_compile(self) -> bool:
        # Dropout draws a new mask inside every training step: a trace would freeze one.
        layers = getattr(self.model, "layers", None)
        if not isinstance(layers, Sequence):
            return True
        return not any(float(getattr(layer, "dropout", 0.0) or 0.0) > 0.0 for layer in layers)

    def _loss_and_scores(self, x: np.ndarray, y: np.ndarray) -> tuple[Tensor, Tensor]:
        """One training step's loss (penalty included) and the scores it was computed from."""
        scores = self._scores(x)
        return self._objective(scores, y), scores

    def _target_for_step(self, y: np.ndarray) -> np.ndarray:
        """The batch's targets as the loss reads them, so that a compiled step binds them.

        A compiled step rereads an argument's array only where the loss uses that very array,
        so targets go in already in the dtype (and, for the squared errors and bce, the shape)
        the loss would give them; the numbers are the ones the eager step uses.
        """
        if self.lossfn == "cross-entropy":
            return y
        outputs = self.out_features
        y = np.asarray(y, dtype=np.float64)
        if outputs is not None and y.size == len(y) * outputs:
            y = y.reshape(len(y), outputs)
        return y

    def _gives_probabilities(self) -> bool:
        # a sigmoid's outputs, or a softmax's (each in [0, 1], whatever "bce" makes of them)
        return output_of(self.model)[0] in ("sigmoid", "softmax")

    def _scores(self, x: np.ndarray) -> Tensor:
        """What the loss takes: logits for cross-entropy on a model ending in a softmax (found
        through the module tree), else forward."""
        xt = Tensor(x, name="x")
        if self.lossfn == "cross-entropy":
            kind, logits = output_of(self.model)
            if kind == "softmax" and logits is not None:
                return logits(xt)
        return self.model(xt)  # type: ignore[no-any-return]

    def _objective(self, scores: Tensor, y: np.ndarray) -> Tensor:
        if self.lossfn == "cross-entropy":
            loss = self.loss(scores, y, from_logits=True)
        elif self.lossfn == "bce":
            loss = self.loss(scores, y, from_logits=not self._gives_probabilities())
        else:
            loss = self.loss(scores, y)
        penalty = getattr(self.model, "penalty", None)
        return loss + penalty() if callable(penalty) else loss

    def _correct(self, scores: np.ndarray, y: np.ndarray) -> int:
        """How many rows the scores classify as the labels do."""
        if self.lossfn in ("bce", "hinge"):
            # A probability above 1/2 and a logit above 0 are the same decision; hinge: the sign.
            threshold = 0.5 if self.lossfn == "bce" and self._gives_probabilities() else 0.0
            y = (y > 0).astype(np.int64) if self.lossfn == "hinge" else y
            predicted = (scores.reshape(len(y), -1) > threshold).astype(np.int64)
            return int(np.all(predicted == y.reshape(len(y), -1), axis=1).sum())
        labels = y.argmax(axis=1) if y.ndim == 2 and y.shape[1] > 1 else y.reshape(-1)
        return int((scores.argmax(axis=1) == labels).sum())

    # -- checks -----------------------------------------------------------------------------------

    def _check_data(
        self, x: Any, y: Any, x_name: str, y_name: str
    ) -> tuple[np.ndarray, np.ndarray]:
        """x as a float array (n, features) and y in the form the loss wants, or ValueError."""
        xa = _numeric(x, x_name)
        ya = _numeric(y, y_name)
        if xa.ndim != 2:
            raise ValueError(f"{x_name} must be 2-D (samples, features), got shape {xa.shape}")
        if ya.ndim == 0 or len(xa) != len(ya):
            raise ValueError(
                f"{x_name} and {y_name} differ in length: {len(xa)} rows and "
                f"{len(ya) if ya.ndim else 'a scalar'} (shapes {xa.shape} and {ya.shape})"
            )
        if len(xa) == 0:
            raise ValueError(f"{x_name} is empty: no rows to train or evaluate on")
        _check_finite(xa, x_name)
        _check_finite(ya, y_name)
        features = self.in_features
        if features is not None and xa.shape[1] != features:
            raise ValueError(
                f"{x_name} has {xa.shape[1]} features per row, the model takes {features}"
            )
        outputs = self.out_features
        if self.lossfn == "hinge":
            check_signed_labels(ya, y_name)
        if self.lossfn == "cross-entropy":
            ya = _check_classes(ya, y_name, outputs)
        elif self.lossfn == "bce":
            _check_binary(ya, y_name, outputs)
        elif outputs is not None and ya.size != len(ya) * outputs:
            raise ValueError(
                f"{y_name} of shape {ya.shape} does not fit the model's {outputs} outputs: "
                f"give ({len(ya)}, {outputs}) targets"
            )
        return xa.astype(np.float64, copy=False), ya

    # -- progress ---------------------------------------------------------------------------------

    def _progress_bar(self, epochs: int) -> Any:
        # the `progress` extra: a widget in Jupyter, text elsewhere, None without tqdm
        return progress_bar(epochs, "training", "epoch") if self.verbose else None

    def _report(self, bar: Any, row: dict[str, float], epochs: int) -> None:
        if not self.verbose:
            return
        metrics = {k: v for k, v in row.items() if k != "epoch"}
        if bar is not None:
            bar.set_postfix({k: f"{v:.4g}" for k, v in metrics.items()}, refresh=False)
            bar.update(1)
        else:
            shown = " ".join(f"{k}={v:.4g}" for k, v in metrics.items())
            print(f"epoch {int(row['epoch'])}/{epochs}: {shown}")


# -- what the model ends in, read through the module tree ------------------------------------

Logits = Callable[[Tensor], Tensor]

# What a module may say it ends in (applied_activation): raw scores ("none"), or an elementwise
# activation. A softmax needs its logits too, so it is said with is_softmax and logits().
_OUTPUTS = ("none", "tanh", "relu", "sigmoid")


def output_of(model: Module) -> tuple[str, Logits | None]:
    """What ``model``'s forward ends in, and a function giving its logits when that is a softmax.

    The kind is "softmax", "sigmoid", "tanh", "relu", "none" (raw scores, logits), or "" when
    it cannot be told. Sequentials are read through to their last module, an ``MLP`` to its
    softmax or its output layer, however deep they nest; a module with a forward of its own
    is taken at its word: its ``applied_activation`` (as ``Linear`` and ``nn.Tanh`` have), or
    ``is_softmax`` with a ``logits`` method (as ``MLP`` has), else it cannot be told.
    """
    if isinstance(model, Sequential) and type(model).forward is Sequential.forward:
        *first, last = model.layers
        kind, logits = output_of(last)
        if logits is None or not first:
            return kind, logits
        inner = logits  # the first modules' output, then the last one's logits

        def through(x: Tensor) -> Tensor:
            for m in first:
                x = m(x)
            return inner(x)

        return kind, through
    if isinstance(model, MLP) and type(model).forward is MLP.forward:
        if model.is_softmax:
            return "softmax", model.logits
        return output_of(model.layers[-1])
    said = getattr(model, "applied_activation", None)
    if isinstance(said, str) and said in _OUTPUTS:
        return said, None
    logits = getattr(model, "logits", None)
    if getattr(model, "is_softmax", False) is True and callable(logits):
        return "softmax", logits
    return "", None


def _check_model(model: Module, lossfn: str) -> None:
    """Refuse a model of Values, and a model whose output a classification loss cannot read."""
    if any(isinstance(p, Value) for p in model.parameters()):
        raise TypeError(
            f"MLPTrainer trains networks of Tensors on batches; {_scalar_name(model)} is a "
            f"network of Values that takes one sample at a time. {_scalar_advice(model, lossfn)}"
        )
    if lossfn in CLASSIFICATION_LOSSES and output_of(model)[0] == "":
        name = type(model).__name__
        raise TypeError(
            f"MLPTrainer cannot tell whether {name}'s forward gives logits or probabilities, "
            f"which {lossfn!r} must know: give {name} the attribute applied_activation "
            "('none' for logits, or the 'sigmoid', 'tanh' or 'relu' it ends in), or is_softmax "
            "= True and a logits(x) method giving the scores before its softmax"
        )


def _scalar_name(model: Module) -> str:
    if isinstance(model, ScalarMLP):
        return f"nn.scalar.MLP({model.extra_repr()})"
    return f"{type(model).__name__} (of {type(model).__module__})"


def _scalar_advice(model: Module, lossfn: str) -> str:
    """The Tensor network that computes what a scalar MLP does, where there is one to name."""
    loop = "or train it with your own loop over samples (micrograd's way)"
    general = f"Build it of nn.Linear layers and activation modules in nn.Sequential, {loop}"
    if not isinstance(model, ScalarMLP):
        return general
    *hidden, out = model.activations
    act = hidden[0] if hidden else out
    sizes = f"{model.nin}, {model.nouts[-1]}, {model.nouts[:-1]}, {act!r}"
    if any(a != act for a in hidden):
        return general
    if out == act:
        return f"The same network is nn.MLP({sizes}): train that, {loop}"
    if out == "none" and lossfn == "cross-entropy":  # the trainer takes its logits: the same
        return (
            f"The same network, trained on its logits, is nn.MLP({sizes}, is_softmax=True): "
            f"train that, {loop}"
        )
    return general


def _linears(model: Any, from_end: bool) -> Iterator[Any]:
    """The dense layers of model in the order the input meets them (or from the end), through
    Sequentials and MLPs; the activation modules between them are passed over."""
    if isinstance(model, Linear):
        yield model
    elif isinstance(model, (Sequential, MLP)):
        for m in reversed(model.layers) if from_end else model.layers:
            yield from _linears(m, from_end)
    elif not isinstance(model, _Activation):
        yield None  # a module of its own: its width is unknown


# -- helpers ----------------------------------------------------------------------------------


def _weight_dim(model: Module, layer: int, axis: int) -> int | None:
    linear = next(_linears(model, from_end=layer == -1), None)
    layers = getattr(model, "layers", None)
    if linear is None and isinstance(layers, Sequence) and layers:
        linear = layers[layer]  # a module of its own with a list of layers: read as before
    shape = getattr(getattr(linear, "weight", None), "shape", None)
    if not isinstance(shape, tuple) or len(shape) != 2:
        return None
    return int(shape[axis])


def _numeric(a: Any, name: str) -> np.ndarray:
    if isinstance(a, Tensor):
        a = a.data
    try:
        arr = np.asarray(a)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} is not an array of numbers: {e}") from None
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold numbers, got an array of dtype {arr.dtype}")
    return arr


def _check_finite(a: np.ndarray, name: str) -> None:
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        bad = np.argwhere(~np.isfinite(a))
        first = tuple(int(i) for i in bad[0])
        raise ValueError(
            f"{name} holds {len(bad)} NaN or infinite value(s), the first {a[first].item()} at "
            f"index {list(first)}"
        )


def _check_classes(y: np.ndarray, name: str, classes: int | None) -> np.ndarray:
    """Class indices (n,) as int64, or one-hot rows (n, classes) as float64."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.reshape(-1)
    if y.ndim == 2:
        if classes is not None and y.shape[1] != classes:
            raise ValueError(
                f"{name} has one-hot rows of {y.shape[1]} classes, the model has {classes} outputs"
            )
        rows_ok = np.all((y == 0) | (y == 1), axis=1) & (y.sum(axis=1) == 1)
        if not np.all(rows_ok):
            row = int(np.flatnonzero(~rows_ok)[0])
            raise ValueError(f"{name} row {row} is not one-hot: {y[row].tolist()}")
        return y.astype(np.float64, copy=False)
    if y.ndim != 1:
        raise ValueError(f"{name} must be class labels (n,) or one-hot rows, got shape {y.shape}")
    if y.dtype.kind == "b":
        raise ValueError(f"{name} holds booleans: give integer class labels")
    whole = y == np.round(y)
    if not np.all(whole):
        i = int(np.flatnonzero(~whole)[0])
        raise ValueError(
            f"{name} must hold whole-number class labels, got {y[i].item()!r} at index {i}"
        )
    top = (classes - 1) if classes is not None else None
    out = (y < 0) | (y > top) if top is not None else (y < 0)
    if np.any(out):
        i = int(np.flatnonzero(out)[0])
        allowed = f"[0, {top}]" if top is not None else "non-negative"
        raise ValueError(
            f"{name} has class label {y[i].item()!r} at index {i}, out of range: labels must be "
            f"{allowed}" + (f" for a model with {classes} outputs" if classes else "")
        )
    return y.astype(np.int64)


def _check_binary(y: np.ndarray, name: str, outputs: int | None) -> None:
    if outputs is not None and y.size != len(y) * outputs:
        raise ValueError(f"{name} of shape {y.shape} does not fit the model's {outputs} outputs")
    bad = (y != 0) & (y != 1)
    if np.any(bad):
        first = np.argwhere(bad)[0]
        raise ValueError(
            f"{name} must hold 0/1 labels for 'bce', got {y[tuple(first)].item()!r} at index "
            f"{first.tolist()}"
        )


def _int_at_least(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _positive_finite(name: str, value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, Real)
        or not (math.isfinite(float(value)) and float(value) > 0)
    ):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)
