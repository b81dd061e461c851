"""Arrays an op keeps from the user (indices, masks, conditions, labels): a write into one after
the forward never changes a gradient. Each gradient is checked against its formula for the
arrays as they were at the forward."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.testing as npt
import pytest
from backproplab.autograd import Op, Tensor, Value, where
from backproplab.autograd.ops import Index
from backproplab.nn.losses import cross_entropy

G = np.array([1.0, 2.0, 3.0])


def _scattered(shape: tuple[int, ...], index: Any, g: np.ndarray) -> np.ndarray:
    out = np.zeros(shape)
    np.add.at(out, index, g)
    return out


def test_an_index_array_written_after_the_forward() -> None:
    t = Tensor(np.arange(5.0), requires_grad=True)
    idx = np.array([0, 2, 4])
    y = t[idx]
    idx[:] = 0
    y.backward(G)
    npt.assert_array_equal(t.grad, [1.0, 0.0, 2.0, 0.0, 3.0])


def test_a_boolean_mask_written_after_the_forward() -> None:
    t = Tensor(np.arange(5.0), requires_grad=True)
    mask = np.array([True, False, True, False, True])
    y = t[mask]
    mask[:] = [True, True, True, False, False]
    y.backward(G)
    npt.assert_array_equal(t.grad, [1.0, 0.0, 2.0, 0.0, 3.0])


def test_a_boolean_tensor_mask_written_after_the_forward() -> None:
    t = Tensor(np.arange(5.0), requires_grad=True)
    mask = Tensor(np.array([True, False, True, False, True]))
    y = t[mask]
    mask.data[:] = [True, True, True, False, False]
    y.backward(G)
    npt.assert_array_equal(t.grad, [1.0, 0.0, 2.0, 0.0, 3.0])


def test_a_tuple_of_index_arrays_written_after_the_forward() -> None:
    t = Tensor(np.arange(12.0).reshape(3, 4), requires_grad=True)
    rows, cols = np.array([0, 1, 2]), np.array([3, 0, 1])
    y = t[rows, cols]
    rows[:] = 0
    cols[:] = 0
    y.backward(G)
    npt.assert_array_equal(t.grad, _scattered((3, 4), (np.array([0, 1, 2]), [3, 0, 1]), G))


def test_an_index_array_written_before_a_second_order_pass() -> None:
    # the recorded backward of Index is a Scatter, which keeps the index too
    t = Tensor(np.array([1.0, 2.0, 3.0, 4.0]), requires_grad=True)
    idx = np.array([1, 3])
    y = (t[idx] ** 3).sum()
    idx[:] = 0
    (g,) = _grads(y, t)
    idx[:] = 2
    g.sum().backward()
    # d/dt sum(3 t_i^2 at i in {1, 3}) = 6 t_i there
    npt.assert_array_equal(g.data, [0.0, 12.0, 0.0, 48.0])
    npt.assert_array_equal(t.grad, [0.0, 12.0, 0.0, 24.0])


def _grads(y: Tensor, *xs: Tensor) -> list[Any]:
    from backproplab.autograd.engine import gradients

    return gradients(y, list(xs), create_graph=True)


def test_a_where_condition_written_after_the_forward() -> None:
    a = Tensor(np.ones(3), requires_grad=True)
    b = Tensor(np.ones(3), requires_grad=True)
    cond = np.array([True, False, True])
    y = where(cond, a, b)
    cond[:] = False
    y.backward(G)
    npt.assert_array_equal(a.grad, [1.0, 0.0, 3.0])
    npt.assert_array_equal(b.grad, [0.0, 2.0, 0.0])


def test_a_where_condition_tensor_written_after_the_forward() -> None:
    a = Tensor(np.ones(3), requires_grad=True)
    cond = Tensor(np.array([True, False, True]))
    y = where(cond, a, 0.0)
    cond.data[:] = False
    y.backward(G)
    npt.assert_array_equal(a.grad, [1.0, 0.0, 3.0])


def test_cross_entropy_labels_written_after_the_forward() -> None:
    scores = Tensor(np.array([[1.0, 2.0, 0.5], [0.1, -1.0, 2.0]]), requires_grad=True)
    labels = np.array([2, 0], dtype=np.intp)  # already indices: the loss keeps no copy of its own
    loss = cross_entropy(scores, labels)
    labels[:] = 1
    loss.backward()
    p = np.exp(scores.data) / np.exp(scores.data).sum(axis=1, keepdims=True)
    onehot = np.eye(3)[[2, 0]]
    npt.assert_allclose(scores.grad, (p - onehot) / 2, rtol=1e-12)


@pytest.mark.parametrize("library_op", [True, False], ids=["Index", "own-op"])
def test_an_array_param_of_apply_written_after_the_forward(
    library_op: bool, restore_ops: None
) -> None:
    class Pick(Op):
        """A user's op with an array param: out = x[index];  dx = g added at index"""

        @staticmethod
        def forward(xp: Any, x: Any, index: Any) -> Any:
            return x[index]

        @staticmethod
        def backward(xp: Any, g: Any, out: Any, x: Any, index: Any) -> tuple[Any, ...]:
            return (_scattered(x.shape, index, g),)

    t = Tensor(np.arange(5.0), requires_grad=True)
    idx = np.array([4, 3, 1])
    y = Tensor.apply(Index if library_op else Pick, t, params=[idx])
    idx[:] = 0
    y.backward(G)
    npt.assert_array_equal(t.grad, [0.0, 3.0, 0.0, 2.0, 1.0])


def test_a_list_param_of_value_apply_written_after_the_forward(restore_ops: None) -> None:
    class Weighted(Op):
        """A user's scalar op with a list param: out = x * sum(ws);  dx = g * sum(ws)"""

        @staticmethod
        def forward(xp: Any, x: Any, ws: Any) -> Any:
            return x * sum(ws)

        @staticmethod
        def backward(xp: Any, g: Any, out: Any, x: Any, ws: Any) -> tuple[Any, ...]:
            return (g * sum(ws),)

    x = Value(2.0)
    ws = [1.0, 2.0]
    y = Value.apply(Weighted, x, params=[ws])
    ws[0] = 100.0
    y.backward()
    assert x.grad == 3.0


def test_kept_index_arrays_are_read_only() -> None:
    # whoever reads a node's params cannot write into them either
    t = Tensor(np.arange(5.0), requires_grad=True)
    y = t[np.array([0, 1])]
    (index,) = y.params
    with pytest.raises(ValueError, match="read-only"):
        index[0] = 3


@pytest.mark.parametrize("call", [0, 1], ids=["the-traced-call", "a-replay"])
def test_labels_and_a_condition_written_after_a_compiled_forward(call: int) -> None:
    from backproplab.autograd.compile import compile

    w = Tensor(np.array([[1.0, -2.0, 0.5], [0.3, 0.2, -1.0]]), requires_grad=True)
    x = np.array([[1.0, 2.0], [-1.0, 0.5], [0.2, 0.1]])

    def step(x: np.ndarray, labels: np.ndarray, cond: np.ndarray) -> Tensor:
        scores = Tensor(x) @ w
        return cross_entropy(where(cond, scores, 2.0 * scores), labels)

    compiled = compile(step)
    for _ in range(call + 1):
        labels, cond = np.array([2, 0, 1]), np.array([[True, False, True]] * 3)
        loss = compiled(x, labels, cond)
        labels[:] = 1
        cond[:] = False
        w.zero_grad()
        loss.backward()
    compiled_grad = w.grad
    w.zero_grad()
    step(x, np.array([2, 0, 1]), np.array([[True, False, True]] * 3)).backward()
    npt.assert_allclose(compiled_grad, w.grad, rtol=1e-12)


@pytest.mark.parametrize("loss", ["one-hot", "bce", "mse"])
def test_the_other_losses_targets_written_after_the_forward(loss: str) -> None:
    # their targets become constant Tensors (copies) already: guarded here with the rest
    from backproplab.nn.losses import binary_cross_entropy, mse

    def run(target: np.ndarray, write: bool) -> np.ndarray:
        scores = Tensor(np.array([[0.2, 0.7], [0.9, 0.4]]), requires_grad=True)
        fn = {"one-hot": cross_entropy, "bce": binary_cross_entropy, "mse": mse}[loss]
        out = fn(scores, target)
        if write:
            target[...] = 0.5 if loss != "one-hot" else [[0.0, 1.0], [0.0, 1.0]]
        out.backward()
        return np.asarray(scores.grad)

    target = np.array([[1.0, 0.0], [0.0, 1.0]])
    npt.assert_array_equal(run(target.copy(), True), run(target.copy(), False))
