"""mnist: an MNIST-sized training step, 784-256-256-10 ReLU on a batch of 256, cross-entropy.

Random data of MNIST's shapes (four batches, taken in turn, so that every call gets new arrays);
the labels are an argument of the compiled function, as a user passes each minibatch. The row
is the compiled step against the same code run eagerly (goal: never slower), both sides timed in
turn in one fresh interpreter a pair (see ``bench._paired``); their losses must agree first.
Worker entry point: ``python -m bench.mnist --worker KIND [--against KIND2] --iters N``.
"""

from __future__ import annotations

import itertools
import sys

import numpy as np
from backproplab.autograd import CompileError, Tensor, compile
from backproplab.nn.losses import cross_entropy

from ._paired import Sides, Step, agreement, first_losses, paired_row, step_worker
from ._timing import Row, emit, header, runs_for

NAME = "mnist"
SIZES = (784, 256, 256, 10)
BATCH = 256
BATCHES = 4
LR = 0.01
WORKLOAD = (
    f"MLP 784->256->256->10 (ReLU hidden, logits out), batch {BATCH} of random MNIST-shaped "
    f"data ({BATCHES} batches in turn), cross_entropy with int64 labels as an argument, "
    f"SGD lr {LR:g} (p.data -= lr * p.grad); time per step (forward, backward, update)"
)


def batches() -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    return [
        (rng.random((BATCH, SIZES[0])), rng.integers(0, SIZES[-1], BATCH)) for _ in range(BATCHES)
    ]


def parameters() -> list[Tensor]:
    """W1, b1, W2, b2, W3, b3: He-scaled normal weights, zero biases."""
    rng = np.random.default_rng(1)
    out = []
    for n_in, n_out in itertools.pairwise(SIZES):
        out.append(Tensor(rng.normal(0.0, (2.0 / n_in) ** 0.5, (n_in, n_out)), requires_grad=True))
        out.append(Tensor(np.zeros(n_out), requires_grad=True))
    return out


def _step(loss_of: object, params: list[Tensor]) -> Step:
    data = batches()
    k = [0]

    def step() -> float:
        x, labels = data[k[0] % BATCHES]
        k[0] += 1
        loss = loss_of(x, labels)  # type: ignore[operator]
        loss.backward()
        for p in params:
            p.data -= LR * p.grad
            p.zero_grad()
        return float(loss.item())

    return step


def step_eager(steps: int) -> Step:
    params = parameters()
    w1, b1, w2, b2, w3, b3 = params

    def loss_of(x: np.ndarray, labels: np.ndarray) -> Tensor:
        h = ((Tensor(x) @ w1 + b1).relu() @ w2 + b2).relu()
        return cross_entropy(h @ w3 + b3, labels)

    return _step(loss_of, params)


def step_compiled(steps: int) -> Step:
    params = parameters()
    w1, b1, w2, b2, w3, b3 = params

    @compile
    def loss_of(x: np.ndarray, labels: np.ndarray) -> Tensor:
        h = ((Tensor(x) @ w1 + b1).relu() @ w2 + b2).relu()
        return cross_entropy(h @ w3 + b3, labels)

    return _step(loss_of, params)


SIDES: Sides = {"eager": step_eager, "compiled": step_compiled}


def run(quick: bool) -> list[Row]:
    header(NAME, WORKLOAD)
    case = "compiled vs eager"
    eager_losses = first_losses(SIDES, "eager")
    try:
        compiled_losses = first_losses(SIDES, "compiled")
    except CompileError as e:  # a refusal is this row's result, in one line
        return [emit(Row(NAME, case, WORKLOAD, ratio_text=f"refused: {e}"[:120], status="FAIL"))]
    ok = agreement("compiled vs eager", compiled_losses, eager_losses)
    return [
        paired_row(
            bench=NAME,
            case=case,
            workload=WORKLOAD + "; the same code under @compile vs eager",
            module=NAME,
            ours=("compiled", "ours, compiled"),
            peer=("eager", "ours, eager"),
            peer_name="eager",
            goal=1.0,
            pairs=2 * runs_for(quick, full=3, fast=1),
            iters=10 if quick else 30,
            losses_agree=ok,
        )
    ]


if __name__ == "__main__":
    step_worker(NAME, SIDES, sys.argv[1:])
