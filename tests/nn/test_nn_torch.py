"""The hand-over to PyTorch: MLP.to_torch / MLP.from_torch against torch itself, in float64, and
our saved file read by safetensors.torch. torch is in the dev extra (torch==2.13.0)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import numpy.testing as npt
import pytest
import safetensors.torch
import torch
from backproplab.autograd import Tensor
from backproplab.nn.layers import MLP
from backproplab.nn.losses import cross_entropy
from backproplab.nn.torch_bridge import torch_names, torch_state_dict

ACTIVATIONS = ["relu", "sigmoid", "tanh", "none"]
RNG = np.random.default_rng(7)
X = RNG.normal(size=(6, 3))
TARGET = RNG.normal(size=(6, 4))
LABELS = RNG.integers(0, 4, size=6)


def outputs(model: MLP, x: np.ndarray) -> np.ndarray:
    """What the network computes: a classifier's probabilities (its predict gives labels)."""
    return model.predict_proba(x) if model.is_softmax else model.predict(x)


def our_loss(model: MLP, x: np.ndarray) -> Tensor:
    out = model(Tensor(x))
    if model.is_softmax:
        return cross_entropy(out, LABELS, from_logits=False)  # out is a softmax
    return ((out - Tensor(TARGET)) ** 2).mean()


def their_loss(seq: torch.nn.Sequential, x: np.ndarray) -> torch.Tensor:
    out = seq(torch.from_numpy(x))
    if isinstance(seq[-1], torch.nn.Softmax):
        return torch.nn.functional.nll_loss(torch.log(out), torch.from_numpy(LABELS))
    return ((out - torch.from_numpy(TARGET)) ** 2).mean()


@pytest.mark.parametrize("softmax", [False, True], ids=["plain", "softmax"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_to_torch_gives_the_same_outputs_and_gradients(activation: str, softmax: bool) -> None:
    ours = MLP(3, 4, [5, 6], activation, softmax, layer_dropout=0.25, seed=3).eval()
    seq = ours.to_torch()
    assert isinstance(seq, torch.nn.Sequential) and not seq.training
    linears = [m for m in seq if isinstance(m, torch.nn.Linear)]
    assert [tuple(m.weight.shape) for m in linears] == [(5, 3), (6, 5), (4, 6)]  # (out, in)
    assert all(m.weight.dtype == torch.float64 for m in linears)
    kinds = [type(m).__name__ for m in seq]
    assert kinds.count("Dropout") == 2  # the hidden layers' dropout, none after the output
    assert (kinds[-1] == "Softmax") == softmax

    npt.assert_allclose(
        seq(torch.from_numpy(X)).detach().numpy(), outputs(ours, X), rtol=0, atol=1e-12
    )
    loss = our_loss(ours, X)
    loss.backward()
    theirs = their_loss(seq, X)
    theirs.backward()
    npt.assert_allclose(theirs.item(), loss.item(), rtol=1e-12)
    params = dict(seq.named_parameters())
    for ours_name, their_name in torch_names(ours).items():
        grad = params[their_name].grad.numpy()
        mine = dict(ours.named_parameters())[ours_name].grad
        if ours_name.endswith("weight"):
            grad = grad.T
        npt.assert_allclose(grad, mine, rtol=1e-10, atol=1e-13, err_msg=ours_name)


@pytest.mark.parametrize("softmax", [False, True], ids=["plain", "softmax"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_from_torch_gives_the_same_outputs(activation: str, softmax: bool) -> None:
    torch.manual_seed(0)
    layers: list[Any] = []
    sizes = [3, 5, 6, 4]
    act = {"relu": torch.nn.ReLU, "sigmoid": torch.nn.Sigmoid, "tanh": torch.nn.Tanh}
    for i in range(3):
        layers.append(torch.nn.Linear(sizes[i], sizes[i + 1], dtype=torch.float64))
        last = i == 2
        if activation in act and not (last and softmax):
            layers.append(act[activation]())
        if not last:
            layers.append(torch.nn.Dropout(0.1))
    if softmax:
        layers.append(torch.nn.Softmax(dim=-1))
    seq = torch.nn.Sequential(*layers).eval()
    ours = MLP.from_torch(seq)
    assert (ours.hid_sizes, ours.activation, ours.is_softmax) == ([5, 6], activation, softmax)
    assert ours.layer_dropout == pytest.approx(0.1) and not ours.training
    npt.assert_allclose(
        outputs(ours, X), seq(torch.from_numpy(X)).detach().numpy(), rtol=0, atol=1e-12
    )
    # And back: the round trip is the same Sequential.
    again = ours.to_torch()
    assert [type(m) for m in again] == [type(m) for m in seq]
    for a, b in zip(again.state_dict().values(), seq.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_from_torch_without_bias_and_float32() -> None:
    seq = torch.nn.Sequential(torch.nn.Linear(3, 2, bias=False), torch.nn.Tanh())
    ours = MLP.from_torch(seq)
    assert not ours.use_bias and ours.layers[0].bias is None
    assert ours.layers[0].weight.data.dtype == np.float64
    expected = seq(torch.from_numpy(X).float()).detach().double().numpy()
    npt.assert_allclose(outputs(ours, X.astype(np.float32)), expected, rtol=1e-6)


@pytest.mark.parametrize(
    ("module", "error", "pattern"),
    [
        (torch.nn.Linear(3, 2), TypeError, r"Sequential .*got Linear"),
        (
            torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.GELU()),
            TypeError,
            r"cannot take GELU \(module 1 of the Sequential\)",
        ),
        (
            torch.nn.Sequential(torch.nn.Conv1d(1, 1, 1)),
            TypeError,
            r"cannot take Conv1d \(module 0",
        ),
        (
            torch.nn.Sequential(torch.nn.Tanh(), torch.nn.Linear(3, 2)),
            ValueError,
            r"module 0 \(Tanh\) comes before the first Linear",
        ),
        (
            torch.nn.Sequential(
                torch.nn.Linear(3, 2), torch.nn.ReLU(), torch.nn.Linear(2, 2), torch.nn.Tanh()
            ),
            ValueError,
            r"different activations \(relu, tanh\)",
        ),
        (
            torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(4, 2)),
            ValueError,
            r"module 1 \(Linear\) takes 4 inputs, but 2 come to it",
        ),
        (
            torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Softmax(dim=0)),
            ValueError,
            r"over dim 0",
        ),
        (
            torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Dropout(0.5)),
            ValueError,
            r"followed by Dropout",
        ),
        (
            torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Tanh(), torch.nn.Softmax(dim=-1)),
            ValueError,
            r"activation before the Softmax",
        ),
        (
            torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 2, bias=False)),
            ValueError,
            r"some Linear layers have a bias",
        ),
        (torch.nn.Sequential(), ValueError, r"has no Linear"),
    ],
    ids=[
        "not-sequential",
        "gelu",
        "conv",
        "act-first",
        "mixed-acts",
        "sizes",
        "softmax-dim",
        "last-dropout",
        "act-before-softmax",
        "mixed-bias",
        "empty",
    ],
)
def test_from_torch_refuses_what_an_mlp_is_not(module: Any, error: type, pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        MLP.from_torch(module)


def test_safetensors_torch_reads_our_saved_file(tmp_path: Path) -> None:
    ours = MLP(3, 4, [5], "tanh", True, seed=2).eval()
    path = tmp_path / "model.safetensors"
    ours.save(path)
    loaded = safetensors.torch.load_file(str(path))
    assert sorted(loaded) == sorted(ours.state_dict())
    assert all(t.dtype == torch.float64 for t in loaded.values())
    # Our names and layout, mapped onto to_torch()'s: the same tensors, weights transposed.
    seq = ours.to_torch()
    expected = seq.state_dict()
    as_torch = torch_state_dict(ours, loaded)
    assert as_torch.keys() == expected.keys()
    for name, tensor in as_torch.items():
        assert torch.equal(tensor, expected[name]), name
    # A fresh Sequential loads it and computes what ours does.
    fresh = MLP(3, 4, [5], "tanh", True, seed=99).to_torch().eval()
    fresh.load_state_dict(as_torch)
    npt.assert_allclose(
        fresh(torch.from_numpy(X)).detach().numpy(), outputs(ours, X), rtol=0, atol=1e-12
    )


def test_importing_backproplab_never_imports_torch(tmp_path: Path) -> None:
    code = (
        "import sys; import backproplab, backproplab.nn, backproplab.nn.layers, "
        "backproplab.nn.weights, backproplab.viz, backproplab.viz.cli; "
        "from backproplab.nn import MLP; MLP(2, 1).save(sys.argv[1]); "
        "bad = [m for m in sys.modules if m == 'torch' or m.startswith('torch.')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "m.safetensors")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- PyTorch's usual network, and the classes that only look like ours --------------------------


def bare_output_sequential(activation: type, dropout: float = 0.0) -> torch.nn.Sequential:
    """Linear, act, [Dropout], Linear, act, [Dropout], Linear: the last layer bare."""
    torch.manual_seed(1)
    sizes = [3, 5, 6, 4]
    layers: list[Any] = []
    for i in range(3):
        layers.append(torch.nn.Linear(sizes[i], sizes[i + 1], dtype=torch.float64))
        if i < 2:
            layers.append(activation())
            if dropout:
                layers.append(torch.nn.Dropout(dropout))
    return torch.nn.Sequential(*layers).eval()


@pytest.mark.parametrize("dropout", [0.0, 0.2], ids=["", "dropout"])
@pytest.mark.parametrize("activation", [torch.nn.Tanh, torch.nn.ReLU, torch.nn.Sigmoid])
def test_from_torch_takes_a_bare_output_layer(activation: type, dropout: float) -> None:
    seq = bare_output_sequential(activation, dropout)
    ours = MLP.from_torch(seq)
    assert [layer.applied_activation for layer in ours.layers] == [
        ours.activation,
        ours.activation,
        "none",
    ]
    x = torch.from_numpy(X).requires_grad_(True)
    out = seq(x)
    npt.assert_allclose(ours.predict(X), out.detach().numpy(), rtol=0, atol=1e-12)
    # the same function: its gradients too, for the input and every weight
    (out * torch.from_numpy(TARGET)).sum().backward()
    xt = Tensor(X, requires_grad=True)
    (ours(xt) * Tensor(TARGET)).sum().backward()
    npt.assert_allclose(xt.grad, x.grad.numpy(), rtol=0, atol=1e-12)
    linears = [m for m in seq if isinstance(m, torch.nn.Linear)]
    for layer, linear in zip(ours.layers, linears, strict=True):
        npt.assert_allclose(layer.weight.grad, linear.weight.grad.numpy().T, atol=1e-12)
    # and back again: the same Sequential
    again = ours.to_torch().eval()
    assert [type(m) for m in again] == [type(m) for m in seq]
    for a, b in zip(again.state_dict().values(), seq.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    with torch.no_grad():
        assert torch.equal(again(torch.from_numpy(X)), seq(torch.from_numpy(X)))


class Linear(torch.nn.Linear):
    """A Linear with a forward of its own: named Linear, but not torch's."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 2.0 * super().forward(x)


class Tanh(torch.nn.Tanh):
    """A Tanh that is not tanh."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(2.0 * x)


class Sequential(torch.nn.Sequential):
    """A Sequential that does not run its modules in order."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) + 1.0


@pytest.mark.parametrize(
    ("module", "pattern"),
    [
        (
            torch.nn.Sequential(Linear(3, 2)),
            r"cannot take [\w.]*test_nn_torch\.Linear \(module 0 of the Sequential\): it is not "
            r"torch\.nn\.Linear",
        ),
        (
            torch.nn.Sequential(torch.nn.Linear(3, 2), Tanh()),
            r"cannot take [\w.]*test_nn_torch\.Tanh \(module 1 of the Sequential\)",
        ),
        (
            Sequential(torch.nn.Linear(3, 2)),
            r"takes a torch\.nn\.Sequential .*got [\w.]*test_nn_torch\.Sequential",
        ),
    ],
    ids=["linear", "tanh", "sequential"],
)
def test_from_torch_refuses_subclasses_with_their_own_forward(module: Any, pattern: str) -> None:
    module.double()
    ours_would_give = module(torch.from_numpy(X[:, :3])).detach().numpy()
    assert ours_would_give.shape == (6, 2)  # they run, and differ from what an MLP computes
    with pytest.raises(TypeError, match=pattern):
        MLP.from_torch(module)


def test_from_torch_names_the_linears_with_and_without_a_bias() -> None:
    seq = torch.nn.Sequential(
        torch.nn.Linear(3, 2),
        torch.nn.Tanh(),
        torch.nn.Linear(2, 2, bias=False),
        torch.nn.Tanh(),
        torch.nn.Linear(2, 2),
    )
    with pytest.raises(ValueError) as e:
        MLP.from_torch(seq)
    assert str(e.value) == (
        "from_torch: some Linear layers have a bias and some do not "
        "(modules 0, 4 have one, module 2 has none)"
    )


@pytest.mark.parametrize("sequential_training", [True, False], ids=["train", "eval"])
def test_from_torch_refuses_a_dropout_in_another_mode_than_the_sequential(
    sequential_training: bool,
) -> None:
    torch.manual_seed(0)
    seq = torch.nn.Sequential(
        torch.nn.Linear(3, 5, dtype=torch.float64),
        torch.nn.ReLU(),
        torch.nn.Dropout(0.5),
        torch.nn.Linear(5, 2, dtype=torch.float64),
    )
    seq.train(sequential_training)
    seq[2].train(not sequential_training)
    # Ours has one mode for every layer: it would drop out where torch does not, or not where it
    # does, so the two would compute different functions.
    with pytest.raises(ValueError) as e:
        MLP.from_torch(seq)
    modes = ("training", "eval") if sequential_training else ("eval", "training")
    assert str(e.value) == (
        f"from_torch: module 2 (Dropout) is in {modes[1]} mode but the Sequential in "
        f"{modes[0]} mode; our MLP has one mode for all its layers (set it with .train() or "
        ".eval() on the Sequential)"
    )
    seq.train(sequential_training)  # one mode again: taken
    assert MLP.from_torch(seq).training == sequential_training
