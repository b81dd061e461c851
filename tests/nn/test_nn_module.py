"""nn.Module through MLP: parameter names, modes, repr, state dicts, saving and loading, and
every refusal, after which the model must be exactly as it was."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.testing as npt
import pytest
from backproplab.nn.layers import MLP, Linear
from backproplab.nn.module import Module, StateError

X = np.random.default_rng(0).normal(size=(4, 2))


def model() -> MLP:
    return MLP(2, 3, [4, 5], "relu", seed=1)


def snapshot(m: Module) -> dict[str, np.ndarray]:
    return {name: np.array(p.data, copy=True) for name, p in m.named_parameters()}


def assert_unchanged(m: Module, before: dict[str, np.ndarray]) -> None:
    now = snapshot(m)
    assert now.keys() == before.keys()
    for name in before:
        npt.assert_array_equal(now[name], before[name], err_msg=name)


# --- structure ----------------------------------------------------------------------------------


def test_named_parameters_order_and_names() -> None:
    m = model()
    names = [n for n, _ in m.named_parameters()]
    assert names == [
        "layers.0.weight",
        "layers.0.bias",
        "layers.1.weight",
        "layers.1.bias",
        "layers.2.weight",
        "layers.2.bias",
    ]
    shapes = [p.data.shape for _, p in m.named_parameters()]
    assert shapes == [(2, 4), (4,), (4, 5), (5,), (5, 3), (3,)]
    assert m.parameters()[0] is m.layers[0].weight
    no_bias = MLP(2, 3, [4], use_bias=False)
    assert [n for n, _ in no_bias.named_parameters()] == ["layers.0.weight", "layers.1.weight"]


def test_zero_grad_clears_every_parameter() -> None:
    m = model()
    m(X).sum().backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())


def test_train_and_eval_reach_every_layer() -> None:
    m = MLP(2, 3, [4, 5], layer_dropout=0.5)
    assert m.training and all(layer.training for layer in m.layers)
    assert m.eval() is m
    assert not m.training and not any(layer.training for layer in m.layers)
    assert m.train() is m
    assert m.training and all(layer.training for layer in m.layers)
    m.train(False)
    assert not any(mod.training for mod in m.modules())
    assert [type(mod) for mod in m.modules()] == [MLP, Linear, Linear, Linear]


def test_repr_is_nested_and_readable() -> None:
    m = MLP(2, 3, [4], "relu", True, reg="l2", beta=0.01, layer_dropout=0.1)
    assert repr(m) == (
        "MLP(2, 3, hid_sizes=[4], activation='relu', is_softmax=True, reg='l2', beta=0.01, "
        "layer_dropout=0.1\n"
        "  (layers.0): Linear(2, 4, activation='relu', dropout=0.1, regularisation='l2', "
        "beta=0.01)\n"
        "  (layers.1): Linear(4, 3, activation='relu', use_act=False, regularisation='l2', "
        "beta=0.01)\n"
        ")"
    )


# --- state dicts --------------------------------------------------------------------------------


def test_state_dict_is_a_copy() -> None:
    m = model()
    state = m.state_dict()
    assert list(state) == [n for n, _ in m.named_parameters()]
    state["layers.0.weight"][...] = 0.0
    assert m.layers[0].weight.data.any()


def test_load_state_dict_round_trip() -> None:
    source, target = model(), MLP(2, 3, [4, 5], "relu", seed=99)
    assert not np.allclose(source(X).data, target(X).data)
    target.load_state_dict(source.state_dict())
    assert_unchanged(target, snapshot(source))
    npt.assert_array_equal(target(X).data, source(X).data)


def test_save_load_round_trip(tmp_path: Path) -> None:
    source, target = model(), MLP(2, 3, [4, 5], "relu", seed=99)
    path = tmp_path / "model.npz"
    source.save(path)
    target.load(path)
    assert_unchanged(target, snapshot(source))
    target.load(str(path))  # str paths too
    npt.assert_array_equal(target(X).data, source(X).data)


def good_state() -> dict[str, np.ndarray]:
    return model().state_dict()


def with_nan() -> dict[str, np.ndarray]:
    state = good_state()
    state["layers.1.weight"][2, 3] = np.nan
    return state


def with_inf() -> dict[str, np.ndarray]:
    state = good_state()
    state["layers.2.bias"][0] = -np.inf
    return state


def without(key: str) -> dict[str, np.ndarray]:
    state = good_state()
    del state[key]
    return state


def with_extra() -> dict[str, np.ndarray]:
    return {**good_state(), "layers.3.weight": np.ones((3, 3))}


def misshapen() -> dict[str, np.ndarray]:
    state = good_state()
    state["layers.1.weight"] = state["layers.1.weight"].T
    return state


def not_numbers() -> dict[str, Any]:
    state: dict[str, Any] = good_state()
    state["layers.0.bias"] = ["a", "b", "c", "d"]
    return state


def with_booleans() -> dict[str, Any]:
    state: dict[str, Any] = good_state()
    state["layers.0.bias"] = np.array([True, False, True, False])
    return state


def with_complex() -> dict[str, Any]:
    state: dict[str, Any] = good_state()
    state["layers.2.bias"] = state["layers.2.bias"] + 1j  # would drop the imaginary part
    return state


REFUSED_STATES = [
    ("missing key", lambda: without("layers.2.bias"), r"missing key 'layers.2.bias'"),
    ("extra key", with_extra, r"unexpected key 'layers.3.weight'"),
    ("wrong shape", misshapen, r"'layers.1.weight'.*\(5, 4\).*\(4, 5\)"),
    ("NaN", with_nan, r"'layers.1.weight'.*NaN"),
    ("infinity", with_inf, r"'layers.2.bias'.*infinity"),
    ("not numbers", not_numbers, r"'layers.0.bias'.*not an array of numbers"),
    ("booleans", with_booleans, r"'layers.0.bias'\] holds booleans"),
    ("complex", with_complex, r"'layers.2.bias'\] holds complex numbers"),
]


FILE_CASES = {"missing key", "extra key", "wrong shape", "NaN", "infinity"}


@pytest.mark.parametrize(
    ("state", "pattern"),
    [(s, p) for _, s, p in REFUSED_STATES],
    ids=[i for i, _, _ in REFUSED_STATES],
)
def test_load_state_dict_refusals_change_nothing(state: Any, pattern: str) -> None:
    m = MLP(2, 3, [4, 5], "relu", seed=42)
    before = snapshot(m)
    with pytest.raises(StateError, match=pattern):
        m.load_state_dict(state())
    assert_unchanged(m, before)


@pytest.mark.parametrize(
    ("state", "pattern"),
    # np.savez refuses the list of strings; the file tests (test_nn_weights) refuse bool and
    # complex arrays by their headers, with messages of their own.
    [(s, p) for i, s, p in REFUSED_STATES if i in FILE_CASES],
    ids=[i for i, _, _ in REFUSED_STATES if i in FILE_CASES],
)
def test_load_file_refusals_change_nothing(tmp_path: Path, state: Any, pattern: str) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, **state())
    m = MLP(2, 3, [4, 5], "relu", seed=42)
    before = snapshot(m)
    with pytest.raises(StateError, match=pattern):
        m.load(path)
    assert_unchanged(m, before)


def test_loading_another_architecture_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.npz"
    MLP(2, 3, [6]).save(path)
    m = model()
    before = snapshot(m)
    with pytest.raises(StateError):
        m.load(path)
    assert_unchanged(m, before)


# --- files that are not saved models ------------------------------------------------------------

UNPICKLED: list[str] = []


def _record_unpickling(message: str) -> str:
    UNPICKLED.append(message)
    return message


class Booby:
    """Unpickling this calls _record_unpickling: proof that someone unpickled it."""

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (_record_unpickling, ("unpickled!",))


def test_a_pickle_in_an_npz_is_refused_without_unpickling(tmp_path: Path) -> None:
    path = tmp_path / "pickled.npz"
    state: dict[str, Any] = good_state()
    state["layers.0.weight"] = np.array([Booby()], dtype=object)
    np.savez(path, **state)  # np.savez pickles object arrays
    UNPICKLED.clear()
    m = model()
    before = snapshot(m)
    with pytest.raises(StateError, match=r"'layers.0.weight' holds Python object values") as e:
        m.load(path)
    assert "allow_pickle" not in str(e.value) and "unpickl" not in str(e.value)
    assert UNPICKLED == []
    assert_unchanged(m, before)
    # The trap works: loading it the unsafe way does unpickle.
    with np.load(path, allow_pickle=True) as data:
        data["layers.0.weight"]
    assert UNPICKLED == ["unpickled!"]


def test_a_text_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.npz"
    path.write_text("these are not the weights you are looking for\n")
    m = model()
    before = snapshot(m)
    with pytest.raises(StateError, match="not a saved model"):
        m.load(path)
    assert_unchanged(m, before)


def test_a_broken_zip_is_refused(tmp_path: Path) -> None:
    good = tmp_path / "good.npz"
    model().save(good)
    path = tmp_path / "truncated.npz"
    path.write_bytes(good.read_bytes()[:100])
    m = model()
    before = snapshot(m)
    with pytest.raises(StateError, match="not a saved model"):
        m.load(path)
    assert_unchanged(m, before)


def test_an_npy_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "weights.npy"
    np.save(path, np.ones((2, 4)))
    m = model()
    before = snapshot(m)
    try:
        with pytest.raises(StateError, match="not a saved model"):
            m.load(path)
    finally:
        assert_unchanged(m, before)


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.npz"
    path.write_bytes(b"")
    m = model()
    before = snapshot(m)
    try:
        with pytest.raises(StateError, match="not a saved model"):
            m.load(path)
    finally:
        assert_unchanged(m, before)


def test_a_saved_file_gets_the_usual_permissions(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    model().save(path)
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_missing_file_raises_file_not_found(tmp_path: Path) -> None:
    m = model()
    before = snapshot(m)
    with pytest.raises(FileNotFoundError):
        m.load(tmp_path / "nowhere.npz")
    assert_unchanged(m, before)


# --- failed saves -------------------------------------------------------------------------------


def test_saving_into_a_missing_folder_fails_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        model().save(tmp_path / "no" / "such" / "model.npz")
    assert list(tmp_path.iterdir()) == []


def test_a_save_that_fails_midway_leaves_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "model.npz"
    old = model()
    old.save(path)
    old_bytes = path.read_bytes()

    def half_a_save(file: Any, *args: Any, **kwargs: Any) -> None:
        file.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", half_a_save)
    with pytest.raises(OSError, match="disk full"):
        MLP(2, 3, [4, 5], "relu", seed=7).save(path)
    monkeypatch.undo()
    assert path.read_bytes() == old_bytes
    assert os.listdir(tmp_path) == ["model.npz"]  # no temporary file left behind
    fresh = MLP(2, 3, [4, 5], "relu", seed=7)
    fresh.load(path)
    assert_unchanged(fresh, snapshot(old))
