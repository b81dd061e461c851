"""Why a hand-derived gradient is wrong: one diagnosis that every checker and the player share.

``diagnose(name, manual, reference, ...)`` sets a learner's gradient beside the engine's and names
the mistake in words: a wrong shape (a gradient not summed over the batch, a transposed matrix),
a named factor (the batch size, a sign, 2, the local factor), one term of a fan-out sum missing,
or, failing all of those, the element that is furthest off with both values.

    >>> import numpy as np
    >>> per_sample = np.ones((8, 3))                      # dL/db for each sample, never summed
    >>> d = diagnose("b2", per_sample, np.full(3, 8.0))
    >>> d.kind, d.axis
    ('not-summed', 0)
    >>> print(d.message)  # doctest: +NORMALIZE_WHITESPACE
    b2: your gradient has shape (8, 3), b2 has shape (3,): it looks like the bias gradient
    was not summed over the batch of 8 (sum over axis 0)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["KINDS", "Diagnosis", "diagnose"]

KINDS: tuple[str, ...] = (
    "right",
    "missing",
    "type",
    "not-summed",
    "transposed",
    "shape",
    "missing-term",
    "factor",
    "wrong",
)
"""Every ``Diagnosis.kind``: right; no gradient given; not numbers; a per-sample gradient not summed
(or averaged) over an axis; a transposed matrix; another wrong shape; one term of a sum of uses
missing (or only one term given); off by a factor (named in ``factor_name`` when it is the batch
size, the sign, 2, 1/2 or the local factor); and wrong in no way these explain."""


@dataclass(frozen=True, repr=False)
class Diagnosis:
    """What is wrong with a hand-derived gradient: a kind, the words, and the numbers behind them.

    ``message`` starts with the gradient's name and never contains a semicolon, so a report can
    join several. ``factor`` is set for kind "factor" (manual = factor × reference),
    ``axis`` for "not-summed", ``term`` for "missing-term", ``where`` (an index) with both values
    there for "wrong".
    """

    name: str
    kind: str
    message: str
    factor: float | None = None
    factor_name: str | None = None  # "the batch size", "the sign", "2", "1/2", "the local factor"
    axis: int | None = None
    term: str | None = None
    where: tuple[int, ...] | None = None
    manual_value: float | None = None
    reference_value: float | None = None

    @property
    def ok(self) -> bool:
        """True when the gradient is right."""
        return self.kind == "right"

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"<Diagnosis {self.kind}: {self.message}>"


def diagnose(
    name: str,
    manual: Any,
    reference: Any,
    *,
    batch: int | None = None,
    local: Any = None,
    local_name: str | None = None,
    terms: Mapping[str, Any] | None = None,
    atol: float = 1e-12,
    rtol: float = 1e-9,
) -> Diagnosis:
    """Explain how ``manual``, a hand-derived gradient of ``name``, differs from ``reference``.

    Args:
        name: what the gradient is of (a parameter's or a node's name), used in the words.
        manual: the learner's gradient: a number or array (None: none was given).
        reference: the right gradient (the engine's), of the parameter's shape.
        batch: the batch size N, when known: then a factor N or 1/N is named as the batch size,
            and an extra axis of size N as the batch.
        local: the local derivative along the edge, when known (a number, or an array of the
            gradient's shape): a gradient off by exactly that factor is named so.
        local_name: how to write the local derivative, such as "d(a*b)/da".
        terms: when ``name`` feeds several uses, what each use sends back, by the use's name
            (each of the gradient's shape); the gradient is their sum.
        atol, rtol: two arrays agree when |a - b| <= atol + rtol * |b| everywhere.

    Returns:
        A Diagnosis; kind "right" when manual agrees with reference.
    """
    ref = np.asarray(reference, dtype=np.float64)
    if manual is None:
        return Diagnosis(name, "missing", f"{name}: no gradient was given")
    try:
        if isinstance(manual, (str, bytes)):
            raise TypeError  # numpy would read "0.5" as a number
        m = np.asarray(manual, dtype=np.float64)
    except (TypeError, ValueError):
        return Diagnosis(
            name, "type", f"{name}: your gradient is a {type(manual).__name__}, not numbers"
        )

    def close(a: Any, b: Any) -> bool:
        # The rule of autograd.check.compare: non-finite elements agree only when identical.
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        if a.shape != b.shape:
            return False
        finite = np.isfinite(a) & np.isfinite(b)
        same = (np.isnan(a) & np.isnan(b)) | (np.isinf(a) & (a == b))
        with np.errstate(invalid="ignore", over="ignore"):
            near = np.abs(a - b) <= atol + rtol * np.abs(b)
        return bool(np.all(np.where(finite, near, same)))

    if m.shape != ref.shape:
        return _shape(name, m, ref, batch, close)
    if close(m, ref):
        return Diagnosis(name, "right", f"{name}: your gradient agrees with the engine's")
    found = _transposed(name, m, ref, close) or _terms(name, m, ref, terms, close)
    if found is None and not close(ref, np.zeros_like(ref)):
        found = _factor(name, m, ref, batch, local, local_name, close)
    return found or _wrong(name, m, ref, atol, rtol)


def _shape(name: str, m: np.ndarray, ref: np.ndarray, batch: int | None, close: Any) -> Diagnosis:
    """A gradient of the wrong shape: which reduction or reshape would have made it right."""
    head = f"{name}: your gradient has shape {m.shape}, {name} has shape {ref.shape}"
    if m.ndim == ref.ndim + 1:
        for axis in range(m.ndim):
            # An extra axis of size 1 is a keepdims= matter, handled below as a reshape.
            if m.shape[:axis] + m.shape[axis + 1 :] != ref.shape or m.shape[axis] == 1:
                continue
            size = m.shape[axis]
            over = (
                f"the batch of {size}"
                if batch is None or batch == size
                else f"axis {axis} (of size {size})"
            )
            what = "the bias gradient" if _is_bias(name) else "the gradient"
            for verb, reduce in (("summed", np.sum), ("averaged", np.mean)):
                if close(reduce(m, axis=axis), ref):
                    how = "sum" if verb == "summed" else "mean"
                    return Diagnosis(
                        name,
                        "not-summed",
                        f"{head}: it looks like {what} was not {verb} over {over} "
                        f"({how} over axis {axis})",
                        axis=axis,
                    )
            return Diagnosis(
                name,
                "shape",
                f"{head}: it has an extra axis {axis} of size {size}, which a gradient of "
                f"{name} must be summed over, and even summed over it, it is not the "
                f"engine's",
                axis=axis,
            )
    if m.ndim + 1 == ref.ndim:
        for axis in range(ref.ndim):
            if ref.shape[:axis] + ref.shape[axis + 1 :] == m.shape and close(m, ref.sum(axis=axis)):
                return Diagnosis(
                    name,
                    "shape",
                    f"{head}: it is the engine's gradient summed over axis {axis}, where {name} "
                    f"needs one gradient per element (do not sum over that axis)",
                    axis=axis,
                )
    if m.ndim == 2 and m.shape == ref.shape[::-1]:
        if close(m.T, ref):
            return Diagnosis(
                name, "transposed", f"{head}: it is the right gradient, transposed (use its .T)"
            )
        return Diagnosis(
            name, "shape", f"{head}: its shape is transposed, and even transposed it is wrong"
        )
    if m.size == ref.size and close(m.reshape(ref.shape), ref):
        keep = " (a sum with keepdims=True keeps the summed axis)" if 1 in m.shape else ""
        return Diagnosis(
            name, "shape", f"{head}: the numbers are right, reshape it to {ref.shape}{keep}"
        )
    return Diagnosis(name, "shape", head)


def _transposed(name: str, m: np.ndarray, ref: np.ndarray, close: Any) -> Diagnosis | None:
    """A square matrix's gradient transposed: the shapes cannot tell, the values do."""
    if m.ndim == 2 and m.shape[0] == m.shape[1] and close(m.T, ref) and not close(ref.T, ref):
        return Diagnosis(
            name,
            "transposed",
            f"{name}: your gradient is the engine's transposed (use its .T)",
        )
    return None


def _terms(
    name: str, m: np.ndarray, ref: np.ndarray, terms: Mapping[str, Any] | None, close: Any
) -> Diagnosis | None:
    """A fan-out sum with one use left out, or only one use counted."""
    if not terms or len(terms) < 2:
        return None
    parts = {
        k: np.broadcast_to(np.asarray(v, dtype=np.float64), ref.shape) for k, v in terms.items()
    }
    uses = f"{name} feeds {len(parts)} uses, and its gradient is the sum of what each sends back"
    # With two uses, the term through one alone is the other left out: say "alone".
    for use, part in parts.items():
        if close(m, part):
            return Diagnosis(
                name,
                "missing-term",
                f"{name}: {uses}: yours is the term through {use} alone, add the "
                f"{'other' if len(parts) == 2 else 'others'}",
                term=use,
            )
    for use, part in parts.items():
        if close(m, ref - part) and not close(part, np.zeros_like(part)):
            return Diagnosis(
                name,
                "missing-term",
                f"{name}: {uses}: yours leaves out the term through {use}",
                term=use,
            )
    return None


def _factor(
    name: str,
    m: np.ndarray,
    ref: np.ndarray,
    batch: int | None,
    local: Any,
    local_name: str | None,
    close: Any,
) -> Diagnosis | None:
    """Off by a factor: the local derivative, the batch size, a sign, 2, or any constant."""
    head = f"{name}: your gradient is"
    if local is not None:
        loc = np.asarray(local, dtype=np.float64)
        said = f"{local_name} = {_num(loc)}" if local_name else _num(loc)
        with np.errstate(divide="ignore", invalid="ignore"):
            missing, twice = ref / loc, ref * loc
        if np.all(np.isfinite(missing)) and close(m, missing) and not close(missing, ref):
            text = f"{head} off by exactly the local factor {said}: it was not multiplied by it"
            return Diagnosis(
                name, "factor", text, factor=_scalar(1 / loc), factor_name="the local factor"
            )
        if close(m, twice) and not close(twice, ref):
            text = f"{head} off by exactly the local factor {said}: it was multiplied in twice"
            return Diagnosis(
                name, "factor", text, factor=_scalar(loc), factor_name="the local factor"
            )
    named: list[tuple[float, str, str]] = []
    if batch is not None and batch > 1:
        named += [
            (
                float(batch),
                "the batch size",
                f"{batch} times the engine's, the batch size: the "
                f"1/{batch} of a mean over the batch is missing",
            ),
            (
                1 / batch,
                "the batch size",
                f"1/{batch} of the engine's, one over the batch size: "
                f"it was divided by the batch size once too often",
            ),
        ]
    named += [
        (-1.0, "the sign", "the engine's with the wrong sign (-1 times it)"),
        (2.0, "2", "twice the engine's: a factor 2 counted twice, or a term added twice"),
        (0.5, "1/2", "half the engine's: a factor 2 is missing (d(x²)/dx is 2x)"),
    ]
    for factor, factor_name, words in named:
        if close(m, factor * ref):
            return Diagnosis(
                name, "factor", f"{head} {words}", factor=factor, factor_name=factor_name
            )
    # Any other constant: the least-squares factor, confirmed elementwise. One number is always
    # some multiple of another, so for a scalar that would say nothing.
    if m.size == 1:
        return None
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        c = float(np.sum(m * ref) / np.sum(ref * ref))
    if np.isfinite(c) and c != 0 and close(m, c * ref):
        text = f"{head} exactly {c:.6g} times the engine's everywhere: a constant factor is off"
        return Diagnosis(name, "factor", text, factor=c)
    return None


def _wrong(name: str, m: np.ndarray, ref: np.ndarray, atol: float, rtol: float) -> Diagnosis:
    """No pattern fits: the element furthest past the tolerance, with both values."""
    with np.errstate(invalid="ignore", over="ignore"):
        both = np.isfinite(m) & np.isfinite(ref)
        excess = np.where(both, np.abs(m - ref) - atol - rtol * np.abs(ref), np.inf)
        excess = np.where((m == ref) | (np.isnan(m) & np.isnan(ref)), -np.inf, excess)
    where = (
        tuple(int(i) for i in np.unravel_index(int(np.argmax(excess)), m.shape)) if m.ndim else ()
    )
    mv, rv = float(m[where]), float(ref[where])
    at = f" at {list(where)}" if where else ""
    if not np.any(m) and m.size > 1:
        says = (
            f"{name}: your gradient is all zeros, where the engine's is not (it is {rv:.6g}{at}): "
            f"no gradient reached {name}"
        )
    elif np.isnan(mv) or np.isinf(mv):
        says = f"{name}: your gradient is {mv}{at}, where the engine's is {rv:.6g}"
    else:
        says = f"{name}: your gradient is wrong{at}: yours {mv:.6g}, the engine's {rv:.6g}"
    return Diagnosis(name, "wrong", says, where=where, manual_value=mv, reference_value=rv)


def _is_bias(name: str) -> bool:
    """A name that says bias: "bias", "layers.0.bias", "b", "b2", "fc.b1"."""
    last = name.rsplit(".", 1)[-1].lower()
    return "bias" in last or re.fullmatch(r"b\d*", last) is not None


def _num(x: np.ndarray) -> str:
    return f"{float(x):.6g}" if x.size == 1 else f"(an array of shape {x.shape})"


def _scalar(x: Any) -> float | None:
    x = np.asarray(x, dtype=np.float64)
    return float(x) if x.size == 1 else None
