"""backproplab.compare: the makemore lecture's cmp() for any node. The lecture's exercise (an MLP
with batch norm and cross-entropy, backpropagated by hand) is written here as a learner would,
every intermediate compared, and the engine's gradients checked against PyTorch's."""

from __future__ import annotations

import doctest

import backproplab.autograd.cmp
import numpy as np
import numpy.testing as npt
import pytest
import torch

import backproplab
from backproplab import NodeComparison, Tensor, Value, compare, no_grad

N, BLOCK, EMB, HIDDEN, VOCAB = 8, 3, 4, 16, 7
RNG = np.random.default_rng(42)
XB = RNG.integers(0, VOCAB, size=(N, BLOCK))
YB = RNG.integers(0, VOCAB, size=N)
START = {
    "C": RNG.normal(size=(VOCAB, EMB)),
    "W1": RNG.normal(size=(BLOCK * EMB, HIDDEN)) * (5 / 3) / (BLOCK * EMB) ** 0.5,
    "b1": RNG.normal(size=HIDDEN) * 0.1,
    "W2": RNG.normal(size=(HIDDEN, VOCAB)) * 0.1,
    "b2": RNG.normal(size=VOCAB) * 0.1,
    "bngain": 1.0 + RNG.normal(size=(1, HIDDEN)) * 0.1,
    "bnbias": RNG.normal(size=(1, HIDDEN)) * 0.1,
}


def forward(p: dict, xp: str) -> dict:
    """The lecture's forward pass, "chunked into smaller steps that are possible to backward
    one at a time", in our names (ours) or PyTorch's (torch)."""
    n = N
    f: dict = {}
    if xp == "ours":
        f["emb"] = p["C"][XB]
        f["embcat"] = f["emb"].reshape(n, -1)
    else:
        f["emb"] = p["C"][torch.tensor(XB)]
        f["embcat"] = f["emb"].view(n, -1)
    f["hprebn"] = f["embcat"] @ p["W1"] + p["b1"]
    keep = {"keepdims": True} if xp == "ours" else {"keepdim": True}
    f["bnmeani"] = 1 / n * f["hprebn"].sum(0, **keep)
    f["bndiff"] = f["hprebn"] - f["bnmeani"]
    f["bndiff2"] = f["bndiff"] ** 2
    f["bnvar"] = 1 / (n - 1) * f["bndiff2"].sum(0, **keep)  # Bessel's correction
    f["bnvar_inv"] = (f["bnvar"] + 1e-5) ** -0.5
    f["bnraw"] = f["bndiff"] * f["bnvar_inv"]
    f["hpreact"] = p["bngain"] * f["bnraw"] + p["bnbias"]
    f["h"] = f["hpreact"].tanh()
    f["logits"] = f["h"] @ p["W2"] + p["b2"]
    if xp == "ours":
        f["logit_maxes"] = f["logits"].max(1, keepdims=True)
    else:
        f["logit_maxes"] = f["logits"].max(1, keepdim=True).values
    f["norm_logits"] = f["logits"] - f["logit_maxes"]
    f["counts"] = f["norm_logits"].exp()
    f["counts_sum"] = f["counts"].sum(1, **keep)
    f["counts_sum_inv"] = f["counts_sum"] ** -1
    f["probs"] = f["counts"] * f["counts_sum_inv"]
    f["logprobs"] = f["probs"].log()
    f["loss"] = -f["logprobs"][range(n), YB].mean()
    return f


def manual_backward(p: dict, f: dict) -> dict:
    """The lecture's exercise 1 solved by hand, in NumPy on the forward's data."""
    v = {k: t.data for k, t in {**p, **f}.items()}
    n = N
    d: dict = {}
    d["logprobs"] = np.zeros_like(v["logprobs"])
    d["logprobs"][range(n), YB] = -1.0 / n
    d["probs"] = (1.0 / v["probs"]) * d["logprobs"]
    d["counts_sum_inv"] = (v["counts"] * d["probs"]).sum(1, keepdims=True)
    d["counts"] = v["counts_sum_inv"] * d["probs"]
    d["counts_sum"] = -(v["counts_sum"] ** -2) * d["counts_sum_inv"]
    d["counts"] = d["counts"] + np.ones_like(v["counts"]) * d["counts_sum"]
    d["norm_logits"] = v["counts"] * d["counts"]
    d["logit_maxes"] = (-d["norm_logits"]).sum(1, keepdims=True)
    one_hot = np.eye(VOCAB)[v["logits"].argmax(1)]
    d["logits"] = d["norm_logits"] + one_hot * d["logit_maxes"]
    d["h"] = d["logits"] @ v["W2"].T
    d["W2"] = v["h"].T @ d["logits"]
    d["b2"] = d["logits"].sum(0)
    d["hpreact"] = (1.0 - v["h"] ** 2) * d["h"]
    d["bngain"] = (v["bnraw"] * d["hpreact"]).sum(0, keepdims=True)
    d["bnraw"] = v["bngain"] * d["hpreact"]
    d["bnbias"] = d["hpreact"].sum(0, keepdims=True)
    d["bnvar_inv"] = (v["bndiff"] * d["bnraw"]).sum(0, keepdims=True)
    d["bnvar"] = (-0.5 * (v["bnvar"] + 1e-5) ** -1.5) * d["bnvar_inv"]
    d["bndiff2"] = (1.0 / (n - 1)) * np.ones_like(v["bndiff2"]) * d["bnvar"]
    d["bndiff"] = v["bnvar_inv"] * d["bnraw"] + (2 * v["bndiff"]) * d["bndiff2"]
    d["bnmeani"] = (-d["bndiff"]).sum(0, keepdims=True)
    d["hprebn"] = d["bndiff"] + 1.0 / n * (np.ones_like(v["hprebn"]) * d["bnmeani"])
    d["embcat"] = d["hprebn"] @ v["W1"].T
    d["W1"] = v["embcat"].T @ d["hprebn"]
    d["b1"] = d["hprebn"].sum(0)
    d["emb"] = d["embcat"].reshape(v["emb"].shape)
    d["C"] = np.zeros_like(v["C"])
    for k in range(XB.shape[0]):
        for j in range(XB.shape[1]):
            d["C"][XB[k, j]] += d["emb"][k, j]
    return d


def test_the_makemore_exercise_every_intermediate_compared(
    capsys: pytest.CaptureFixture[str],
) -> None:
    params = {k: Tensor(a, requires_grad=True) for k, a in START.items()}
    f = forward(params, "ours")
    f["loss"].backward()  # every node keeps its .grad: no retain_grad() needed
    d = manual_backward(params, f)
    nodes = {**params, **f}
    results = [compare(name, d[name], nodes[name]) for name in d]
    assert set(d) == set(nodes) - {"loss"}  # every intermediate and every parameter
    assert [r.name for r in results if not r.approximate] == []
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(d) == 26
    assert lines[0].startswith("logprobs        | exact: ")
    assert all(" | approximate: True  | maxdiff: " in line for line in lines)


def test_the_engines_intermediate_gradients_are_pytorchs() -> None:
    ours = {k: Tensor(a, requires_grad=True) for k, a in START.items()}
    theirs = {k: torch.tensor(a, requires_grad=True) for k, a in START.items()}
    f, g = forward(ours, "ours"), forward(theirs, "torch")
    for t in g.values():
        if t.requires_grad and not t.is_leaf:
            t.retain_grad()
    f["loss"].backward()
    g["loss"].backward()
    assert f["loss"].item() == pytest.approx(g["loss"].item(), rel=1e-12)
    for name, node in {**ours, **f}.items():
        other = {**theirs, **g}[name]
        npt.assert_allclose(node.grad, other.grad.numpy(), rtol=1e-9, atol=1e-15, err_msg=name)


def test_a_wrong_derivation_shows_and_the_line_is_the_lectures(
    capsys: pytest.CaptureFixture[str],
) -> None:
    x = Tensor([[0.5, -1.0, 2.0]], requires_grad=True)
    h = x.tanh()
    (h * h).sum().backward()
    right = 2 * h.data * (1 - h.data**2)
    r = compare("x", right, x)
    assert r.approximate and r.ok and r.maxdiff <= 1e-15
    wrong = compare("x", 2 * h.data, x)  # the tanh's factor forgotten
    assert not wrong.exact and not wrong.approximate and not wrong.ok
    assert wrong.maxdiff == pytest.approx(np.abs(2 * h.data * h.data**2).max(), rel=1e-12)
    out = capsys.readouterr().out.splitlines()
    assert (
        out[1] == f"x               | exact: False | approximate: False | maxdiff: {wrong.maxdiff}"
    )
    exact = compare("h", 2 * h.data, h, show=False)
    assert exact.exact and exact.maxdiff == 0.0
    assert capsys.readouterr().out == ""  # show=False prints nothing


def test_tolerances_and_nan() -> None:
    x = Tensor([1.0, 2.0], requires_grad=True)
    (x * 3.0).sum().backward()
    near = np.array([3.0, 3.0 + 1e-4])  # 1e-4 > atol 1e-8 + rtol 1e-5 * 3
    assert not compare("x", near, x, show=False).approximate
    assert compare("x", near, x, rtol=1e-4, show=False).approximate
    r = compare("x", np.array([3.0, np.nan]), x, show=False)
    assert not r.exact and not r.approximate and np.isnan(r.maxdiff)


def test_values_too_with_numbers_or_values_as_manual() -> None:
    a = Value(0.3)
    b = a * a
    c = b.tanh()
    c.backward()
    db = 1 - np.tanh(0.09) ** 2
    assert compare("b", db, b, show=False).approximate
    assert compare("a", Value(db * 2 * 0.3), a, show=False).approximate
    assert compare("a", Tensor(db * 2 * 0.3), a, show=False).shape == ()


def test_a_recorded_gradient_is_compared_by_its_data() -> None:
    x = Tensor([1.0, 2.0], requires_grad=True)
    (x**3).sum().backward(create_graph=True)
    assert isinstance(x.grad, Tensor)
    assert compare("x", 3 * np.array([1.0, 4.0]), x, show=False).exact


def test_refusals_name_the_problem() -> None:
    x = Tensor([[1.0, 2.0]], requires_grad=True)
    h = x * 2.0
    with pytest.raises(ValueError, match=r"'h': the node has no .grad yet: call loss.backward"):
        compare("h", np.ones((1, 2)), h)
    h.sum().backward()
    with pytest.raises(ValueError, match=r"needs no gradient.*requires_grad=False"):
        compare("c", np.ones(2), Tensor([1.0, 2.0]))
    with no_grad():
        made = x * 3.0
    with pytest.raises(ValueError, match="no_grad"):
        compare("made", np.ones((1, 2)), made)
    with pytest.raises(TypeError, match=r"Tensor or Value.*got a ndarray"):
        compare("x", np.ones((1, 2)), x.data)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be numbers"):
        compare("x", [["a", "b"]], x)


def test_html_is_a_table_row_with_the_name_escaped() -> None:
    x = Tensor([1.0], requires_grad=True)
    (x * 2.0).sum().backward()
    r = compare("<x>", [2.0], x, show=False)
    page = r._repr_html_()
    assert page.startswith("<table>") and "<code>&lt;x&gt;</code>" in page
    assert page.count("<td") == 5 and ">True</td>" in page
    assert isinstance(r, NodeComparison)


def test_it_is_at_the_front_door_and_its_example_runs() -> None:
    assert backproplab.compare is compare
    failed, attempted = doctest.testmod(backproplab.autograd.cmp)
    assert attempted > 0 and failed == 0


def test_a_wrong_shape_is_a_failed_comparison_in_the_checkers_words() -> None:
    # The lecture's cmp would broadcast a (4,) gradient against a (4, 3) one; here it fails,
    # and says what every checker says of a bias gradient not summed over the batch.
    x = Tensor(np.arange(12.0).reshape(4, 3))
    b = Tensor(np.array([0.1, -0.2, 0.3]), requires_grad=True)
    h = x + b
    (h * h).sum().backward()
    per_row = 2 * h.data  # d loss / d h, which a learner forgot to sum for b
    result = compare("b", per_row, b, batch=4, show=False)
    assert (result.exact, result.approximate, result.ok) == (False, False, False)
    assert np.isnan(result.maxdiff)
    assert result.diagnosis is not None and result.diagnosis.kind == "not-summed"
    assert "not summed over the batch of 4" in str(result)
    assert "not summed over the batch of 4" in result._repr_html_()
    assert compare("b", per_row.sum(0), b, show=False).diagnosis is None


def test_a_gradient_off_by_the_batch_size_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    w = Tensor(np.array([[0.5, -1.0], [2.0, 0.25]]), requires_grad=True)
    x = np.array([[1.0, 2.0], [3.0, -1.0], [0.5, 0.5]])
    loss = (Tensor(x) @ w).tanh().mean()
    loss.backward()
    right = x.T @ ((1 - np.tanh(x @ w.data) ** 2) / 6)
    compare("W", right * 6 / 2, w, batch=3)  # a sum over the batch's 3 rows, not a mean
    printed = capsys.readouterr().out
    assert "exact: False" in printed and "batch size" in printed
