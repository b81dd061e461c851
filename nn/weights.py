"""Weight files: ``.safetensors`` (the default) and ``.npz``, written safely and read warily.

A file is a state dict: parameter names to float arrays. Reading checks everything a header
tells (every name, dtype and shape, and how many bytes each array claims) against the model
before a single byte of array data is read, so a hostile file costs nothing and changes nothing:
no pickle is ever loaded, no integer, bool, complex or text array is converted, and a header
that claims a terabyte fails on its claim instead of on an allocation.

The format follows the file's extension: ``.npz`` is NumPy's zip of ``.npy`` files (what
``Module.save`` wrote before), anything else is safetensors, the format PyTorch users read with
``safetensors.torch.load_file``.
"""

from __future__ import annotations

import json
import math
import os
import reprlib
import zipfile
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from .files import safe_write, write_bytes
from .module import StateError, _names

__all__ = ["format_of", "read_weights", "write_weights"]

# What safetensors calls the float types we read, and how each is stored; every other dtype is
# refused by name. NumPy has no bfloat16: its 16 bits are read as integers and widened to the
# float32 they are the top half of (bfloat16 is float32 with the low 16 bits of its mantissa
# dropped), which is exact.
_SAFETENSORS_FLOATS: dict[str, np.dtype[Any]] = {
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),
    "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"),
}
_SAFETENSORS_NAMES = {
    "BOOL": "bool",
    "U8": "uint8",
    "I8": "int8",
    "U16": "uint16",
    "I16": "int16",
    "U32": "uint32",
    "I32": "int32",
    "U64": "uint64",
    "I64": "int64",
    "C64": "complex64",
}
# safetensors' own cap: a longer header is a broken or hostile file, not a model of ours.
_MAX_HEADER = 100_000_000

Layout = Mapping[str, tuple[int, ...]]
"""What a model expects: each parameter's name and shape."""


def format_of(path: str | os.PathLike[str]) -> str:
    """The format a path's extension names: "npz" for .npz, else "safetensors"."""
    return "npz" if os.fspath(path).lower().endswith(".npz") else "safetensors"


def write_weights(path: str | os.PathLike[str], state: Mapping[str, np.ndarray]) -> None:
    """Write ``state`` to ``path`` in the format of its extension (see ``format_of``).

    The write follows ``nn.files.safe_write``: only a regular file is replaced, through a
    symlink to its target, keeping its permissions, and a failed write leaves the old file.
    Raises OSError naming ``path``.
    """
    # np.array, not np.ascontiguousarray, which would make a Value's 0-d array 1-d
    arrays = {name: np.array(a, dtype=np.float64, order="C") for name, a in state.items()}
    if format_of(path) == "npz":
        with safe_write(path) as f:
            np.savez(f, allow_pickle=False, **arrays)
    else:
        import safetensors.numpy

        write_bytes(path, safetensors.numpy.save(arrays))


def read_weights(
    path: str | os.PathLike[str], layout: Layout, owner: str = "the model"
) -> dict[str, np.ndarray]:
    """Read the arrays of the weight file ``path``, which must fit ``layout`` exactly.

    Every name, dtype and shape, and the bytes each array claims, are checked from the file's
    headers before any array data is read. ``owner`` names the model in messages.

    Returns:
        name -> array (float16, float32 or float64, as stored; bfloat16 as the float32 of the
        same value).

    Raises:
        FileNotFoundError: no file at ``path``.
        StateError: the file is not a weight file of its extension's format, or holds a
            missing, extra or misshapen key, an array that is not of floats, or claims more
            data than it holds; the message names the path and the key.
    """
    shown = os.fspath(path)
    if format_of(path) == "npz":
        return _read_npz(shown, layout, owner)
    return _read_safetensors(shown, layout, owner)


# --- the checks both formats share ------------------------------------------------------------


def _check_keys(shown: str, found: set[str], layout: Layout, owner: str) -> None:
    missing = sorted(layout.keys() - found)
    extra = sorted(found - layout.keys())
    if missing:
        raise StateError(f"{shown!r} is missing {_names(missing)} of {owner}")
    if extra:
        raise StateError(f"{shown!r} has unexpected {_names(extra)} for {owner}")


def _check_shape(shown: str, name: str, shape: tuple[int, ...], layout: Layout) -> None:
    if shape != layout[name]:
        raise StateError(
            f"{shown!r}: {name!r} has shape {shape}, the parameter has shape {layout[name]}"
        )


def _check_claim(shown: str, name: str, claimed: int, held: int) -> None:
    if claimed > held:
        raise StateError(
            f"{shown!r}: {name!r} claims {claimed} bytes of data, but the file holds {held}"
        )


def _not_floats(shown: str, name: str, what: str) -> StateError:
    return StateError(
        f"{shown!r}: {name!r} holds {what} values, not floating-point numbers: refused"
    )


def _not_saved(shown: str, fmt: str, why: object) -> StateError:
    return StateError(f"{shown!r} is not a saved model (.{fmt}): {why}")


# --- safetensors ------------------------------------------------------------------------------


def _read_safetensors(shown: str, layout: Layout, owner: str) -> dict[str, np.ndarray]:
    """Parse the header by hand (8 bytes of length, then JSON), check it all, then read."""
    with open(shown, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        start = f.read(8)
        if len(start) < 8:
            raise _not_saved(shown, "safetensors", f"it holds {len(start)} bytes, too few")
        length = int.from_bytes(start, "little")
        if length > min(size - 8, _MAX_HEADER):
            hint = " (it looks like a zip: name it .npz)" if start[:4] == b"PK\x03\x04" else ""
            raise _not_saved(
                shown,
                "safetensors",
                f"its header claims {length} bytes, but the file holds {size - 8} after "
                f"the length{hint}",
            )
        raw = f.read(length)
        entries = _safetensors_entries(shown, raw)
        data_size = size - 8 - length
        _check_keys(shown, set(entries), layout, owner)
        spans = []
        for name, (dtype_name, shape, begin, end) in entries.items():
            dtype = _SAFETENSORS_FLOATS.get(dtype_name)
            if dtype is None:
                raise _not_floats(shown, name, _SAFETENSORS_NAMES.get(dtype_name, dtype_name))
            if end > data_size:  # offsets are from the data's start, so the end is the claim
                raise StateError(
                    f"{shown!r}: {name!r} claims the data's bytes {begin} to {end}, but the "
                    f"file holds {data_size} bytes of data"
                )
            _check_shape(shown, name, shape, layout)
            if end - begin != math.prod(shape) * dtype.itemsize:
                raise _not_saved(
                    shown,
                    "safetensors",
                    f"{name!r} has shape {shape} of {dtype_name}, {end - begin} bytes by its "
                    f"offsets, not {math.prod(shape) * dtype.itemsize}",
                )
            spans.append((begin, end, name))
        # safetensors' own rule: the arrays tile the data exactly, in order, with no gap.
        at = 0
        for begin, end, name in sorted(spans):
            if begin != at:
                raise _not_saved(shown, "safetensors", f"{name!r} starts at byte {begin}, not {at}")
            at = end
        if at != data_size:
            raise _not_saved(
                shown, "safetensors", f"its arrays span {at} bytes, but it holds {data_size}"
            )
        # Bounded now: every array has the model's shape and the data is exactly theirs.
        data = f.read(data_size)
    if len(data) != data_size:  # the file shrank while we read it
        raise _not_saved(shown, "safetensors", "it changed while being read")
    state = {}
    view = memoryview(data)
    for name, (dtype_name, shape, begin, end) in entries.items():
        flat = np.frombuffer(view[begin:end], _SAFETENSORS_FLOATS[dtype_name])
        if dtype_name == "BF16":
            flat = (flat.astype(np.uint32) << 16).view(np.float32)
        state[name] = flat.reshape(shape).copy()  # writeable, and not holding the file's bytes
    return state


def _safetensors_entries(
    shown: str, raw: bytes
) -> dict[str, tuple[str, tuple[int, ...], int, int]]:
    """name -> (dtype, shape, begin, end) from the header's JSON, every field's type checked."""

    def refuse_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        for k in keys:
            if keys.count(k) > 1:
                raise ValueError(f"the key {k!r} appears twice")
        return dict(pairs)

    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=refuse_repeats)
    except (UnicodeDecodeError, ValueError) as e:
        raise _not_saved(shown, "safetensors", f"its header is not JSON: {e}") from None
    except RecursionError:  # the parser recurses once per bracket: [[[[... is an attack
        raise _not_saved(shown, "safetensors", "its header nests brackets too deeply") from None
    if not isinstance(header, dict):
        raise _not_saved(shown, "safetensors", "its header is not a JSON object")
    header.pop("__metadata__", None)
    entries = {}
    for name, entry in header.items():
        try:
            dtype = entry["dtype"]
            shape = entry["shape"]
            begin, end = entry["data_offsets"]
            if not isinstance(dtype, str):
                raise TypeError("dtype")
            if not all(_is_count(n) for n in (*shape, begin, end)) or begin > end:
                raise TypeError("shape or offsets")
        except (KeyError, TypeError, ValueError):
            raise _not_saved(
                shown,
                "safetensors",
                f"the header's entry for {name!r} is malformed: {reprlib.repr(entry)}",
            ) from None
        entries[name] = (dtype, tuple(shape), begin, end)
    return entries


def _is_count(n: object) -> bool:
    return isinstance(n, int) and not isinstance(n, bool) and n >= 0


# --- npz --------------------------------------------------------------------------------------


def _read_npz(shown: str, layout: Layout, owner: str) -> dict[str, np.ndarray]:
    """Read the .npy headers inside the zip with numpy.lib.format, check them, then the data."""
    try:
        archive = zipfile.ZipFile(shown)
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        raise _not_saved(shown, "npz", e) from None
    with archive:
        members: dict[str, zipfile.ZipInfo] = {}
        for info in archive.infolist():
            name = info.filename.removesuffix(".npy")
            if name == info.filename:
                raise _not_saved(shown, "npz", f"its member {name!r} is not an .npy array")
            if name in members:
                raise _not_saved(shown, "npz", f"the key {name!r} appears twice")
            members[name] = info
        _check_keys(shown, set(members), layout, owner)
        try:
            # Every header first: nothing is read from any array until all of them pass.
            headers = {
                name: _npy_header(shown, name, archive, info, layout)
                for name, info in members.items()
            }
            state = {}
            for name, (skip, dtype, shape, fortran) in headers.items():
                with archive.open(members[name]) as member:
                    member.read(skip)
                    count = math.prod(shape) * dtype.itemsize
                    data = member.read(count)
                if len(data) != count:
                    raise _not_saved(
                        shown, "npz", f"{name!r} ends after {len(data)} of its {count} bytes"
                    )
                flat = np.frombuffer(data, dtype=dtype)
                state[name] = flat.reshape(shape, order="F" if fortran else "C")
            return state
        except StateError:
            raise
        except (
            zipfile.BadZipFile,
            zlib.error,
            OSError,
            EOFError,
            ValueError,
            NotImplementedError,
        ) as e:
            raise _not_saved(shown, "npz", e) from None


def _npy_header(
    shown: str, name: str, archive: zipfile.ZipFile, info: zipfile.ZipInfo, layout: Layout
) -> tuple[int, np.dtype[Any], tuple[int, ...], bool]:
    """Read one member's .npy header; check its dtype, claimed size and shape.

    Returns the header's length, the dtype, the shape and whether the order is Fortran's.
    """
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(member)
        else:
            raise _not_saved(shown, "npz", f"{name!r} is an .npy file of version {version}")
        skip = member.tell()
    if dtype.kind != "f":
        raise _not_floats(shown, name, _describe(dtype))
    _check_claim(shown, name, math.prod(shape) * dtype.itemsize, info.file_size - skip)
    _check_shape(shown, name, tuple(shape), layout)
    return skip, dtype, tuple(shape), bool(fortran)


def _describe(dtype: np.dtype[Any]) -> str:
    if dtype.hasobject:
        return "Python object"
    if dtype.kind in "US":
        return f"text ({dtype})"
    return str(dtype)
