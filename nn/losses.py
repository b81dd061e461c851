"""Loss functions on Tensors: squared error, cross-entropy, binary cross-entropy and hinge.

Each returns a scalar Tensor. Predictions and scores are Tensors (or arrays, made constants);
targets and labels may be arrays or Tensors. Labels for the cross-entropies are data: no gradient
flows into them. The squared errors keep a Tensor target's graph, since (pred - target) is
symmetric and a target may be another model's output.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from backproplab.autograd import Tensor, Value, squared_error, where

__all__ = [
    "LOSSES",
    "PROB_FLOOR",
    "binary_cross_entropy",
    "check_signed_labels",
    "cross_entropy",
    "get_loss",
    "hinge",
    "mse",
    "sum_squared_error",
]

PROB_FLOOR = 1e-12
"""Probabilities are clipped to [PROB_FLOOR, 1] before their log (from_logits=False)."""


def mse(pred: Any, target: Any) -> Tensor:
    """Mean squared error ("sq-error"): the mean over *all* elements of (pred - target)².

    For predictions of shape (batch, k) that is the sum of squares divided by batch * k, so a
    single-output network gets the per-sample average (as in the circle classifier). The target must
    have pred's shape, up to axes of length 1 ((batch,) against (batch, 1) is fine); anything else
    raises ValueError naming both shapes rather than broadcasting to (batch, batch).
    Gradient: 2 (pred - target) / pred.size.
    """
    p = _as_tensor(pred, "mse", "pred")
    return squared_error(p, _fit_target(p, _as_tensor(target, "mse", "target"), "mse"))


def sum_squared_error(pred: Any, target: Any) -> Tensor:
    """Summed squared error ("sum-sq-error"): sum of (pred - target)², not averaged (the random ReLU
    regression's loss).

    Shapes as for ``mse``. Gradient: 2 (pred - target).
    """
    p = _as_tensor(pred, "sum_squared_error", "pred")
    t = _fit_target(p, _as_tensor(target, "sum_squared_error", "target"), "sum_squared_error")
    return squared_error(p, t, "sum")


def cross_entropy(scores: Any, labels: Any, from_logits: bool = True) -> Tensor:
    """Categorical cross-entropy, averaged over the batch: -(1/batch) Σ_i Σ_c y_ic log p_ic.

    ``scores`` has shape (batch, classes). With ``from_logits`` (the default) they are logits
    and log p = log_softmax(scores), stable at any magnitude; the gradient is then
    (softmax(scores) - onehot) / batch. With ``from_logits=False`` they are probabilities (a
    softmax output) and log p = log(clip(p, 1e-12, 1)): a probability that underflowed to 0
    costs log(1e-12) ≈ -27.6 rather than infinity, and gets no gradient where it was clipped.
    Prefer logits (``MLP.logits``) when you have them.

    ``labels`` are integer class indices of shape (batch,) (or (batch, 1)), whole-number floats
    allowed, or rows of shape (batch, classes) that are one-hot or probability distributions
    (non-negative, summing to 1). Raises ValueError naming the problem and the values or shapes:
    a label out of range or not a whole number, a row that is not a distribution, a wrong shape.
    """
    s = _as_tensor(scores, "cross_entropy", "scores")
    if s.ndim != 2 or s.shape[0] == 0 or s.shape[1] == 0:
        raise ValueError(
            f"cross_entropy needs scores of shape (batch, classes), both > 0; got {s.shape}"
        )
    batch, classes = s.shape
    y = _data(labels, "cross_entropy", "labels")
    if y.shape == (batch, 1) and classes > 1:
        y = y.reshape(batch)  # a column of class indices
    logp = s.log_softmax(axis=-1) if from_logits else _clipped_log(s)
    if y.shape == (batch,):
        index = _class_indices(y, classes)
        return -logp[np.arange(batch), index].mean()
    if y.shape == (batch, classes):
        _check_distributions(y)
        return -(logp * y).sum() * (1.0 / batch)
    raise ValueError(
        f"cross_entropy: labels of shape {y.shape} do not fit scores of shape {s.shape}: give "
        f"class indices of shape ({batch},) or one-hot rows of shape ({batch}, {classes})"
    )


def binary_cross_entropy(scores: Any, targets: Any, from_logits: bool = True) -> Tensor:
    """Binary cross-entropy, the mean over all elements of -(t log p + (1 - t) log(1 - p)).

    ``targets`` are in [0, 1] (usually 0 or 1) with scores' shape, up to axes of length 1.
    With ``from_logits`` (the default) p = sigmoid(x) and the loss is computed as
    max(x, 0) - x t + log(1 + exp(-|x|)), which never overflows; its gradient is
    (sigmoid(x) - t) / n, exact at x = 0 too. With ``from_logits=False`` the scores are
    probabilities and both p and 1 - p are clipped to [1e-12, 1] before the log.
    Raises ValueError for targets outside [0, 1] or of a shape that does not fit.
    """
    x = _as_tensor(scores, "binary_cross_entropy", "scores")
    t = _data(targets, "binary_cross_entropy", "targets")
    t = _fit_target(x, Tensor(t, dtype=x.dtype), "binary_cross_entropy").data
    if not np.all((t >= 0.0) & (t <= 1.0)):  # NaN fails this too
        bad = np.flatnonzero(~((t >= 0.0) & (t <= 1.0)))
        raise ValueError(
            f"binary_cross_entropy: targets must lie in [0, 1], got {_few(t.reshape(-1)[bad])} "
            f"at flat index {_few(bad)}"
        )
    if from_logits:
        # maximum, not relu: at x = 0 the tie shares its gradient (1/2), and with abs's zero
        # gradient there the total is sigmoid(0) - t, as it should be. relu would give -t.
        loss = x.maximum(0.0) - x * t + (1.0 + (-x.abs()).exp()).log()
    else:
        loss = -(_clipped_log(x) * t + _clipped_log(1.0 - x) * (1.0 - t))
    return loss.mean()


def hinge(
    scores: Any, labels: Any, *, alpha: float = 0.0, parameters: Iterable[Tensor] = ()
) -> Tensor:
    """micrograd's max-margin ("SVM") loss: mean(relu(1 - y * score)) + alpha * Σ p², labels ±1.

    The loss of micrograd's demo.ipynb, ``(1 + -yi*scorei).relu()`` averaged over the batch,
    plus an L2 penalty ``alpha * sum(p*p)`` over ``parameters`` (every element of each Tensor;
    say ``model.parameters()``). A score on the right side of the label by a margin of 1 costs
    nothing; the gradient is -y / batch where 1 - y * score > 0, else 0 (0 at the kink too).

    ``scores`` has shape (batch,) or (batch, 1); ``labels`` are -1 or +1, batch of them (for
    0/1 labels pass ``2 * y - 1``). Raises ValueError naming the values for labels that are
    not ±1, for an alpha that is negative or not finite, or for shapes that do not fit.

    >>> hinge(Tensor([2.0, 0.5, -0.5]), [1, 1, 1]).item()  # (0 + 0.5 + 1.5) / 3
    0.6666666666666666
    """
    s = _as_tensor(scores, "hinge", "scores")
    if s.ndim > 2 or (s.ndim == 2 and s.shape[1] != 1):
        raise ValueError(
            f"hinge needs one score per sample, shape (batch,) or (batch, 1); got {s.shape}"
        )
    y = _data(labels, "hinge", "labels")
    check_signed_labels(y, "hinge: labels")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha < math.inf:
        raise ValueError(f"hinge: alpha must be a finite number >= 0, got {alpha!r}")
    # Tensor(y) from the caller's own array (not a reshaped copy): a compiled step then reads
    # each batch's labels (see cross_entropy's labels).
    t = _fit_target(s, Tensor(y, dtype=s.dtype), "hinge")
    loss = (1.0 - s * t).relu().mean()
    params = list(parameters) if alpha else []
    if not params:
        return loss
    penalty = (params[0] * params[0]).sum()
    for p in params[1:]:
        penalty = penalty + (p * p).sum()
    return loss + penalty * float(alpha)


def check_signed_labels(y: Any, name: str) -> None:
    """Raise ValueError naming the first few bad values when ``y`` holds anything but -1 and +1."""
    y = np.asarray(y)
    bad = (y != 1) & (y != -1)
    if np.any(bad):
        hint = " (for 0/1 labels pass 2 * y - 1)" if np.all((y == 0) | (y == 1)) else ""
        raise ValueError(
            f"{name} must be -1 or +1, got {_few(y[bad])} at flat index "
            f"{_few(np.flatnonzero(bad))}{hint}"
        )


LOSSES: dict[str, Callable[..., Tensor]] = {
    "sq-error": mse,
    "sum-sq-error": sum_squared_error,
    "cross-entropy": cross_entropy,
    "bce": binary_cross_entropy,
    "hinge": hinge,
}
"""The losses by name; "sq-error" and "cross-entropy" are the configurable MLP's write-up's
``lossfn`` names."""


def get_loss(name: str) -> Callable[..., Tensor]:
    """Return the loss function called ``name`` (a key of ``LOSSES``).

    Raises ValueError naming it and listing the choices when there is no such loss.
    """
    if isinstance(name, str) and name in LOSSES:
        return LOSSES[name]
    choices = ", ".join(repr(k) for k in LOSSES)
    raise ValueError(f"unknown loss {name!r}: choose one of {choices}")


# --- helpers ----------------------------------------------------------------------------------


def _as_tensor(x: Any, loss: str, argument: str) -> Tensor:
    if isinstance(x, Tensor):
        out = x
    elif isinstance(x, Value):
        raise TypeError(f"{loss}: {argument} must be a Tensor or an array, got a Value")
    else:
        # The target is named, so that a drawn graph shows it as y beside the input x.
        out = Tensor(x, name="y" if argument == "target" else "")
    if out.size == 0:
        raise ValueError(f"{loss}: {argument} is empty (shape {out.shape})")
    return out


def _data(x: Any, loss: str, argument: str) -> np.ndarray:
    if isinstance(x, Value):
        raise TypeError(f"{loss}: {argument} must be a Tensor or an array, got a Value")
    arr = np.asarray(x.data if isinstance(x, Tensor) else x)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{loss}: {argument} must be numbers, got an array of dtype {arr.dtype}")
    return arr


def _fit_target(pred: Tensor, target: Tensor, loss: str) -> Tensor:
    """Target in pred's shape; a reshape only when they differ by axes of length 1."""
    if target.shape == pred.shape:
        return target
    squeeze = tuple(d for d in target.shape if d != 1)
    if squeeze == tuple(d for d in pred.shape if d != 1):
        return target.reshape(pred.shape)
    raise ValueError(
        f"{loss}: prediction of shape {pred.shape} and target of shape {target.shape} differ"
    )


def _clipped_log(p: Tensor) -> Tensor:
    """log(clip(p, PROB_FLOOR, 1)); the gradient is 1/p inside the range and 0 where clipped,
    as with np.clip or torch.clamp (``where``, not maximum/minimum, whose ties share it)."""
    inside = (p.data >= PROB_FLOOR) & (p.data <= 1.0)
    return where(inside, p, np.clip(p.data, PROB_FLOOR, 1.0)).log()


def _class_indices(y: np.ndarray, classes: int) -> np.ndarray:
    if y.dtype.kind == "b":
        raise ValueError("cross_entropy: labels are booleans; give integer class indices")
    if y.dtype.kind == "f":
        whole = np.isfinite(y) & (y == np.round(y))
        if not np.all(whole):
            bad = np.flatnonzero(~whole)
            raise ValueError(
                f"cross_entropy: class labels must be whole numbers, got {_few(y[bad])} "
                f"at index {_few(bad)}"
            )
    # asarray, not astype: the labels themselves when they are already indices, which is what
    # lets a compiled training step (autograd.compile) read each batch's own labels
    index = np.asarray(y, dtype=np.intp)
    out = (index < 0) | (index >= classes)
    if np.any(out):
        bad = np.flatnonzero(out)
        raise ValueError(
            f"cross_entropy: class labels must be in [0, {classes - 1}] for {classes} classes, "
            f"got {_few(y[bad])} at index {_few(bad)}"
        )
    return index


def _check_distributions(y: np.ndarray) -> None:
    valid = np.isfinite(y) & (y >= 0.0) & (y <= 1.0)
    if not np.all(valid):
        row = int(np.flatnonzero(~valid.all(axis=1))[0])
        raise ValueError(
            f"cross_entropy: one-hot labels must lie in [0, 1]; row {row} is {_few(y[row])}"
        )
    sums = y.sum(axis=1)
    off = np.abs(sums - 1.0) > 1e-6
    if np.any(off):
        row = int(np.flatnonzero(off)[0])
        raise ValueError(
            f"cross_entropy: each label row must sum to 1 (one-hot or probabilities); "
            f"row {row} is {_few(y[row])}, summing to {sums[row]:g}"
        )


def _few(a: np.ndarray, n: int = 5) -> str:
    """The first few values of a for an error message."""
    a = np.asarray(a).reshape(-1)
    shown = ", ".join(f"{v:g}" if a.dtype.kind == "f" else str(v) for v in a[:n])
    return f"[{shown}{', ...' if a.size > n else ''}]"
