"""Weight files: safetensors by default, .npz by extension, and every hostile file refused from
its headers before any data is read, naming the key, with the model left as it was."""

from __future__ import annotations

import io
import json
import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.testing as npt
import pytest
import safetensors.numpy
from backproplab.nn.layers import MLP
from backproplab.nn.module import Module, StateError
from backproplab.nn.weights import read_weights

X = np.random.default_rng(0).normal(size=(4, 2))


def model(seed: int = 1) -> MLP:
    return MLP(2, 3, [4], "tanh", seed=seed)


def snapshot(m: Module) -> dict[str, np.ndarray]:
    return {name: np.array(p.data, copy=True) for name, p in m.named_parameters()}


def assert_unchanged(m: Module, before: dict[str, np.ndarray]) -> None:
    now = snapshot(m)
    assert now.keys() == before.keys()
    for name in before:
        npt.assert_array_equal(now[name], before[name], err_msg=name)


def refused(path: Path, pattern: str) -> str:
    """Load ``path`` into a fresh model: it must raise StateError matching ``pattern`` and
    leave the model as it was. Returns the message."""
    m = model(seed=42)
    before = snapshot(m)
    with pytest.raises(StateError, match=pattern) as e:
        m.load(path)
    assert_unchanged(m, before)
    message = str(e.value)
    assert "pickle" not in message.replace(str(path), "")  # never suggests unpickling
    return message


# --- formats ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["model.safetensors", "model", "model.weights", "model.NPZ"])
def test_save_load_round_trip_in_each_format(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    source, target = model(), model(seed=99)
    source.save(path)
    target.load(path)
    assert_unchanged(target, snapshot(source))
    npt.assert_array_equal(target(X).data, source(X).data)


def test_the_format_follows_the_extension(tmp_path: Path) -> None:
    model().save(tmp_path / "a.safetensors")
    model().save(tmp_path / "b")
    model().save(tmp_path / "c.npz")
    for name in ("a.safetensors", "b"):
        loaded = safetensors.numpy.load_file(str(tmp_path / name))
        assert sorted(loaded) == sorted(model().state_dict())
        npt.assert_array_equal(loaded["layers.0.weight"], model().layers[0].weight.data)
    assert zipfile.is_zipfile(tmp_path / "c.npz")
    with np.load(tmp_path / "c.npz", allow_pickle=False) as data:
        npt.assert_array_equal(data["layers.1.bias"], model().layers[1].bias.data)


def test_an_npz_saved_by_the_old_code_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "old.npz"
    np.savez(path, **model().state_dict())  # what Module.save wrote before safetensors
    m = model(seed=5)
    m.load(path)
    assert_unchanged(m, snapshot(model()))


def test_float32_and_float16_files_load_as_float64(tmp_path: Path) -> None:
    state = {k: v.astype(np.float32) for k, v in model().state_dict().items()}
    state["layers.1.bias"] = state["layers.1.bias"].astype(np.float16)
    path = tmp_path / "m.safetensors"
    path.write_bytes(safetensors.numpy.save(state))
    m = model(seed=5)
    m.load(path)
    assert m.layers[0].weight.data.dtype == np.float64
    npt.assert_array_equal(m.layers[0].weight.data, state["layers.0.weight"])


def test_a_scalar_model_round_trips(tmp_path: Path) -> None:
    from backproplab.nn.scalar import MLP as ScalarMLP

    source, target = ScalarMLP(2, [3, 1]), ScalarMLP(2, [3, 1])
    for p in target.parameters():
        p.data = 0.5
    source.save(tmp_path / "s.safetensors")
    target.load(tmp_path / "s.safetensors")
    assert [p.data for p in target.parameters()] == [p.data for p in source.parameters()]


# --- hostile safetensors files ------------------------------------------------------------------


def good_state() -> dict[str, np.ndarray]:
    return model().state_dict()


def save_st(path: Path, state: dict[str, np.ndarray]) -> Path:
    path.write_bytes(safetensors.numpy.save(state))
    return path


NOT_FLOATS = {
    "int8": np.int8,
    "bool": np.bool_,
    "uint64": np.uint64,
    "int64": np.int64,
    "complex64": np.complex64,
}


@pytest.mark.parametrize("dtype", sorted(NOT_FLOATS))
def test_safetensors_of_other_dtypes_are_refused(tmp_path: Path, dtype: str) -> None:
    state: dict[str, Any] = good_state()
    state["layers.0.bias"] = np.ones(4, dtype=NOT_FLOATS[dtype])
    try:
        path = save_st(tmp_path / "m.safetensors", state)
    except Exception:
        pytest.skip(f"this safetensors cannot write {dtype}")  # complex came late to it
    refused(path, rf"'layers.0.bias' holds {dtype} values, not floating-point numbers")


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        (lambda s: s.pop("layers.1.bias"), r"missing key 'layers.1.bias' of MLP"),
        (lambda s: s.update({"layers.2.weight": np.ones((3, 3))}), r"unexpected key 'layers.2"),
        (
            lambda s: s.update({"layers.0.weight": np.ones((4, 2))}),
            r"'layers.0.weight' has shape \(4, 2\), the parameter has shape \(2, 4\)",
        ),
    ],
    ids=["missing", "extra", "misshapen"],
)
def test_safetensors_with_wrong_keys_are_refused(tmp_path: Path, change: Any, pattern: str) -> None:
    state = good_state()
    change(state)
    message = refused(save_st(tmp_path / "m.safetensors", state), pattern)
    assert str(tmp_path / "m.safetensors") in message


def handmade_st(path: Path, header: dict[str, Any], data: bytes) -> Path:
    """A safetensors file with this header and data, whatever they say."""
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


def good_header() -> tuple[dict[str, Any], bytes]:
    """The header and data of good_state(), taken apart."""
    blob = safetensors.numpy.save(good_state())
    (n,) = struct.unpack("<Q", blob[:8])
    return json.loads(blob[8 : 8 + n]), blob[8 + n :]


def test_a_safetensors_header_claiming_more_data_than_the_file_holds(tmp_path: Path) -> None:
    header, data = good_header()
    # The data cut short: the last array's bytes claimed but not there.
    last = max(header, key=lambda k: header[k]["data_offsets"][1] if k != "__metadata__" else 0)
    path = handmade_st(tmp_path / "cut.safetensors", header, data[:-8])
    begin = header[last]["data_offsets"][0]
    refused(
        path,
        rf"'{last}' claims the data's bytes {begin} to {len(data)}, but the file holds "
        rf"{len(data) - 8} bytes of data",
    )


def test_a_safetensors_header_claiming_a_terabyte_is_refused(tmp_path: Path) -> None:
    header, data = good_header()
    header["layers.0.bias"] = {
        "dtype": "F64",
        "shape": [125_000_000_000],
        "data_offsets": [0, 10**12],
    }
    path = handmade_st(tmp_path / "huge.safetensors", header, data)
    refused(path, r"'layers.0.bias' claims the data's bytes 0 to 1000000000000, but the file")


def test_a_safetensors_header_length_past_the_end_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    path.write_bytes(struct.pack("<Q", 10**12) + b"{}")
    refused(path, r"not a saved model \(.safetensors\): its header claims 1000000000000 bytes")


@pytest.mark.parametrize(
    ("header", "pattern"),
    [
        (b"not json at all", "its header is not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"layers.0.bias": 3}', "entry for 'layers.0.bias' is malformed"),
        (b'{"a": {}, "a": {}}', "the key 'a' appears twice"),
    ],
)
def test_a_malformed_safetensors_header_is_refused(
    tmp_path: Path, header: bytes, pattern: str
) -> None:
    path = tmp_path / "m.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    refused(path, pattern)


def test_an_npz_named_safetensors_is_refused_with_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    np.savez(path.open("wb"), **good_state())
    refused(path, r"it looks like a zip: name it \.npz")


def test_short_files_are_refused(tmp_path: Path) -> None:
    for content in (b"", b"\x01\x02"):
        path = tmp_path / "short.safetensors"
        path.write_bytes(content)
        refused(path, r"not a saved model \(.safetensors\)")


# --- hostile .npz files -------------------------------------------------------------------------


def save_npz(path: Path, state: dict[str, Any]) -> Path:
    np.savez(path, **state)
    return path


@pytest.mark.parametrize(
    ("value", "described"),
    [
        (np.ones(4, dtype=np.int8), "int8"),
        (np.ones(4, dtype=bool), "bool"),
        (np.ones(4, dtype=np.uint64), "uint64"),
        (np.ones(4, dtype=np.complex128), "complex128"),
        (np.array(["a", "b", "c", "d"]), r"text \(<U1\)"),
        (np.array([b"a", b"b", b"c", b"d"]), r"text \(\|S1\)"),
    ],
    ids=["int8", "bool", "uint64", "complex", "str", "bytes"],
)
def test_npz_of_other_dtypes_are_refused(tmp_path: Path, value: np.ndarray, described: str) -> None:
    state: dict[str, Any] = good_state()
    state["layers.0.bias"] = value
    refused(save_npz(tmp_path / "m.npz", state), rf"'layers.0.bias' holds {described} values")


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        (lambda s: s.pop("layers.1.bias"), r"missing key 'layers.1.bias' of MLP"),
        (lambda s: s.update({"layers.2.weight": np.ones((3, 3))}), r"unexpected key 'layers.2"),
        (
            lambda s: s.update({"layers.0.weight": np.ones((4, 2))}),
            r"'layers.0.weight' has shape \(4, 2\), the parameter has shape \(2, 4\)",
        ),
    ],
    ids=["missing", "extra", "misshapen"],
)
def test_npz_with_wrong_keys_are_refused(tmp_path: Path, change: Any, pattern: str) -> None:
    state = good_state()
    change(state)
    refused(save_npz(tmp_path / "m.npz", state), pattern)


def npy_header(shape: tuple[int, ...], descr: str = "<f8") -> bytes:
    """An .npy file's magic and header (version 1.0) for an array of this shape, no data."""
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        out, {"descr": descr, "fortran_order": False, "shape": shape}
    )
    return out.getvalue()


def npz_with(path: Path, name: str, member: bytes) -> Path:
    """An .npz of good_state() whose member ``name`` is replaced by these bytes."""
    with zipfile.ZipFile(path, "w") as z:
        for key, value in good_state().items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, value, allow_pickle=False)
            z.writestr(f"{key}.npy", member if key == name else buf.getvalue())
    return path


def test_an_npz_header_claiming_10_to_the_12_elements_is_refused(tmp_path: Path) -> None:
    # Today np.load tries to allocate 8 TB and raises a raw MemoryError (or ValueError).
    path = npz_with(tmp_path / "huge.npz", "layers.1.bias", npy_header((10**12,)) + b"\0" * 24)
    refused(path, r"'layers.1.bias' claims 8000000000000 bytes of data, but the file holds 24")


def test_an_npz_header_claiming_more_than_its_data_is_refused(tmp_path: Path) -> None:
    # The right shape, the data cut short.
    path = npz_with(tmp_path / "cut.npz", "layers.0.weight", npy_header((2, 4)) + b"\0" * 40)
    refused(path, r"'layers.0.weight' claims 64 bytes of data, but the file holds 40")


def test_an_npz_member_that_is_not_an_array_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("notes.txt", "hello")
    refused(path, r"not a saved model \(.npz\): its member 'notes.txt' is not an \.npy array")


def test_an_npz_member_with_bad_magic_is_refused(tmp_path: Path) -> None:
    path = npz_with(tmp_path / "m.npz", "layers.0.bias", b"this is no npy file at all")
    refused(path, r"not a saved model \(.npz\)")


def test_read_weights_reads_no_data_before_the_headers_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A file whose first array is fine and whose last is refused: nothing may be loaded at all.
    state: dict[str, Any] = good_state()
    state["layers.1.bias"] = np.ones(3, dtype=np.int8)
    path = save_npz(tmp_path / "m.npz", state)
    built: list[Any] = []
    real = np.frombuffer
    monkeypatch.setattr(np, "frombuffer", lambda *a, **k: built.append(a) or real(*a, **k))
    layout = {k: v.shape for k, v in good_state().items()}
    with pytest.raises(StateError, match=r"'layers.1.bias' holds int8"):
        read_weights(path, layout)
    assert built == []


# --- values a model cannot hold, and the float formats others write ------------------------------


def float32_model(seed: int = 42) -> MLP:
    m = model(seed)
    for p in m.parameters():
        p.data = p.data.astype(np.float32)
    return m


def test_a_float64_file_overflowing_a_float32_model_is_refused(tmp_path: Path) -> None:
    state = good_state()
    state["layers.1.weight"][2, 1] = 1e300  # finite in the file, inf in float32
    path = save_st(tmp_path / "big.safetensors", state)
    m = float32_model()
    before = snapshot(m)
    with pytest.raises(StateError, match=r"'layers.1.weight'.* 1e\+300 .*float32") as e:
        m.load(path)
    assert str(path) in str(e.value)
    assert_unchanged(m, before)
    model().load(path)  # a float64 model holds it


def test_a_state_dict_overflowing_a_float32_model_is_refused() -> None:
    state = good_state()
    state["layers.0.bias"][0] = -1e39
    m = float32_model()
    before = snapshot(m)
    with pytest.raises(StateError, match=r"state\['layers.0.bias'\] holds -1e\+39 .*float32"):
        m.load_state_dict(state)
    assert_unchanged(m, before)


def test_a_header_of_deeply_nested_brackets_is_refused(tmp_path: Path) -> None:
    header = b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    path = tmp_path / "deep.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    message = refused(path, r"not a saved model \(.safetensors\): its header nests brackets too")
    assert str(path) in message


def bfloat16_bits(values: np.ndarray) -> np.ndarray:
    """The bfloat16 bits of float32 values that bfloat16 holds exactly (their low 16 bits 0)."""
    bits = values.astype(np.float32).view(np.uint32)
    assert not np.any(bits & 0xFFFF)
    return (bits >> 16).astype("<u2")


def half_precision_file(path: Path, dtype: str) -> tuple[Path, dict[str, np.ndarray]]:
    """A file of good_state()'s names and shapes in F16 or BF16, and the exact values it holds."""
    header: dict[str, Any] = {}
    data = b""
    values = {}
    for name, a in sorted(good_state().items()):
        if dtype == "F16":
            exact = a.astype(np.float16)
            raw = exact.astype("<f2").tobytes()
        else:  # bfloat16 keeps float32's exponent and 8 bits of its mantissa
            exact = (a.astype(np.float32).view(np.uint32) & 0xFFFF0000).view(np.float32)
            if name == "layers.0.weight":
                exact = exact * np.float32(2.0**100)  # exact, and past float16's range
            raw = bfloat16_bits(exact).tobytes()
        header[name] = {
            "dtype": dtype,
            "shape": list(a.shape),
            "data_offsets": [len(data), len(data) + len(raw)],
        }
        data += raw
        values[name] = exact
    return handmade_st(path, header, data), values


@pytest.mark.parametrize("dtype", ["F16", "BF16"])
@pytest.mark.parametrize("model_dtype", [np.float32, np.float64])
def test_half_precision_files_load_exactly(
    tmp_path: Path, dtype: str, model_dtype: type[np.floating[Any]]
) -> None:
    path, values = half_precision_file(tmp_path / f"m-{dtype}.safetensors", dtype)
    m = float32_model() if model_dtype is np.float32 else model(seed=42)
    m.load(path)
    for name, p in m.named_parameters():
        assert p.data.dtype == model_dtype
        npt.assert_array_equal(p.data, values[name].astype(np.float64), err_msg=name)
    if dtype == "BF16":  # against safetensors' own reading, through torch, when it is there
        torch = pytest.importorskip("torch")
        import safetensors.torch

        theirs = safetensors.torch.load_file(str(path))
        for name, p in m.named_parameters():
            npt.assert_array_equal(p.data, theirs[name].to(torch.float64).numpy(), err_msg=name)
