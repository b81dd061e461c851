"""Who owns a Tensor's gradient array: kept without a copy when the pass made it, never shared.

A leaf keeps the array a rule made for it (``Op.makes_new_arrays``) rather than a copy, and every
``.grad`` a pass writes is an array of its node's own, so adding into one in place touches no other
node, no node's data, no array the caller passed in, and no seed a compiled program keeps.
"""

from __future__ import annotations

import gc
import weakref
from typing import Any

import numpy as np
import numpy.testing as npt
from backproplab.autograd import Op, Tensor, compile


def _all_grads_private(nodes: list[Tensor], others: list[np.ndarray]) -> None:
    """Each node's .grad is a writeable ndarray sharing memory with no other .grad, no node's
    data and none of ``others``."""
    grads = [n.grad for n in nodes]
    for i, g in enumerate(grads):
        assert isinstance(g, np.ndarray), f"node {i}: {type(g).__name__}"
        assert g.flags.writeable, f"node {i}'s gradient is read-only"
        for j, h in enumerate(grads[i + 1 :], start=i + 1):
            assert not np.shares_memory(g, h), f"nodes {i} and {j} share a gradient array"
        for k, n in enumerate(nodes):
            assert not np.shares_memory(g, n.data), f"node {i}'s gradient is node {k}'s data"
        for other in others:
            assert not np.shares_memory(g, other), f"node {i}'s gradient is a caller's array"


def test_every_grad_is_its_nodes_own_array() -> None:
    # Add hands one array to both inputs, Sum a read-only broadcast view, Reshape and Transpose
    # views of g, AddNumber g itself, the root its seed: none of them may end up shared.
    a = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    b = Tensor([1.0, -2.0, 0.5], requires_grad=True)
    c = a + b  # b broadcast over rows
    d = c.reshape(3, 2).T  # views of g in the backward
    e = (d + 1.0) * 1.0
    f = e + e.sum(axis=0, keepdims=True)
    root = f.sum()
    root.backward()
    nodes = [a, b, c, d, e, f, root]
    _all_grads_private(nodes, [])
    # still the chain rule: d(root)/d(a) = 1 + 2 per element (through e and through e.sum)
    npt.assert_array_equal(a.grad, np.full((2, 3), 3.0))
    npt.assert_array_equal(b.grad, np.full(3, 6.0))

    before = [n.grad.copy() for n in nodes]
    a.grad += 100.0  # the leaf's own: nothing else moves
    for n, old in zip(nodes[1:], before[1:], strict=True):
        npt.assert_array_equal(n.grad, old)


def test_a_grad_never_shares_the_array_passed_to_backward() -> None:
    x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x + 0.0  # AddNumber: dx is the seed itself
    seed = np.array([4.0, 5.0, 6.0])
    y.backward(seed)
    _all_grads_private([x, y], [seed])
    x.grad += 1.0
    y.grad += 1.0
    npt.assert_array_equal(seed, [4.0, 5.0, 6.0])


def test_a_leaf_keeps_the_array_its_rule_made_without_a_copy(restore_ops: None) -> None:
    made: list[np.ndarray] = []

    class Twice(Op):
        """out = 2 x;  dx = 2 g   (a new array, recorded to check that the leaf keeps it)"""

        makes_new_arrays = True

        @staticmethod
        def forward(xp: Any, x: Any) -> Any:
            return x * 2.0

        @staticmethod
        def backward(xp: Any, g: Any, out: Any, x: Any) -> tuple[Any, ...]:
            dx = g * 2.0
            made.append(dx)
            return (dx,)

    x = Tensor(np.ones((3, 4)), requires_grad=True)
    y = Tensor.apply(Twice, x)
    (y * np.full((3, 4), 3.0)).sum().backward(retain_grads=False)
    assert len(made) == 1
    assert x.grad is made[0]  # the same array, not a copy of it
    npt.assert_array_equal(x.grad, np.full((3, 4), 6.0))


def test_an_op_that_shares_its_arrays_gets_copies(restore_ops: None) -> None:
    # An op that does not declare makes_new_arrays may return g, an input's data, or one array
    # for two inputs: each input still gets an array of its own.
    class Echo(Op):
        """out = a + b;  da = g,  db = g, returned as b's data when g is all ones (a test op)"""

        @staticmethod
        def forward(xp: Any, a: Any, b: Any) -> Any:
            return a + b

        @staticmethod
        def backward(xp: Any, g: Any, out: Any, a: Any, b: Any) -> tuple[Any, ...]:
            return g, g

    class Identity(Op):
        """out = x;  dx = g, returned as x's own data, which equals g here (a test op)"""

        @staticmethod
        def forward(xp: Any, x: Any) -> Any:
            return x.copy()

        @staticmethod
        def backward(xp: Any, g: Any, out: Any, x: Any) -> tuple[Any, ...]:
            return (x if np.array_equal(x, g) else g,)

    a = Tensor([1.0, 1.0], requires_grad=True)
    b = Tensor([2.0, 3.0], requires_grad=True)
    y = Tensor.apply(Echo, a, b)
    y.backward(np.ones(2))
    _all_grads_private([a, b, y], [])

    x = Tensor([1.0, 1.0], requires_grad=True)
    z = Tensor.apply(Identity, x)
    z.backward(np.ones(2))
    _all_grads_private([x, z], [])
    x.grad += 1.0
    npt.assert_array_equal(x.data, [1.0, 1.0])


def test_writing_into_a_compiled_roots_grad_leaves_the_next_pass_right() -> None:
    # compile keeps one implied seed per program; the root's .grad must not be that array.
    w = Tensor([1.0, 2.0], requires_grad=True)

    @compile
    def loss_fn(x: np.ndarray) -> Tensor:
        return (w * x).sum()

    x = np.array([3.0, 4.0])
    for _ in range(3):  # the first call traces; the later ones replay with the kept seed
        loss = loss_fn(x)
        loss.backward()
        npt.assert_array_equal(loss.grad, 1.0)
        npt.assert_array_equal(w.grad, [3.0, 4.0])
        assert loss.grad.flags.writeable
        loss.grad[...] = 7.0
        w.zero_grad()


def test_the_implied_seed_is_not_the_roots_grad() -> None:
    x = Tensor([1.0, 2.0], requires_grad=True)
    loss = (x * x).sum()
    loss.backward()
    loss.grad[...] = 5.0  # the root's own array
    x.zero_grad()
    loss.backward()
    npt.assert_array_equal(x.grad, [2.0, 4.0])


def test_zero_grad_keeps_the_old_array_until_the_next_pass() -> None:
    # So that a training loop does not hand a parameter-sized array back to the system at the
    # end of each step and fault it in again at the next (bench/README.md, relu_net); the old
    # array is never written into.
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (x * x).sum().backward()
    old = x.grad
    kept = weakref.ref(old)
    x.zero_grad()
    assert x.grad is None
    del old
    gc.collect()
    assert kept() is not None  # still held: let go of when the next gradient arrives
    npt.assert_array_equal(kept(), [2.0, 4.0])
    (x * 3.0).sum().backward()
    npt.assert_array_equal(x.grad, [3.0, 3.0])
    assert kept() is None


def test_zero_grad_does_not_keep_a_recorded_gradient_alive() -> None:
    # With create_graph the gradient is a Tensor whose graph refers back to x: keeping it would
    # keep that graph too.
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (x * x).sum().backward(create_graph=True)
    assert isinstance(x.grad, Tensor)
    kept = weakref.ref(x.grad.data)  # Tensors take no weak references; their arrays do
    x.zero_grad()
    gc.collect()
    assert kept() is None
