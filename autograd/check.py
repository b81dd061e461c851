"""Gradient checks: the engine against central differences, and your own gradient beside both."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .engine import Node, gradients, no_grad
from .functional import scalar_root
from .tensor import Tensor
from .value import Value

__all__ = [
    "Comparison",
    "GradcheckError",
    "GradientReport",
    "GradientRow",
    "compare",
    "compare_gradients",
    "gradcheck",
    "numerical_gradient",
]


class GradcheckError(AssertionError):
    """The engine's gradient and central differences disagree beyond the tolerance."""


@dataclass(frozen=True)
class Comparison:
    """How far gradient ``a`` lies from reference gradient ``b``.

    ``max_abs`` is the largest |a - b|; ``max_rel`` is that divided by the largest |b| (relative
    to the gradient's scale, so an element near zero does not blow it up). ``ok`` holds when
    every element satisfies |a - b| <= atol + rtol * |b|; ``worst`` is the index of the element
    furthest past that bound, with both values there.
    """

    max_abs: float
    max_rel: float
    ok: bool
    worst: tuple[int, ...]
    a_worst: float
    b_worst: float


def compare(a: Any, b: Any, atol: float, rtol: float) -> Comparison:
    """Compare gradient a with reference b elementwise; the tolerance logic every check shares.

    Raises ValueError when the shapes differ.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"cannot compare gradients of shapes {a.shape} and {b.shape}")
    if a.size == 0:
        return Comparison(0.0, 0.0, True, (), 0.0, 0.0)
    # Non-finite elements agree only when identical (both NaN, or the same infinity); a number
    # against an infinity is infinitely far, whatever rtol says.
    finite = np.isfinite(a) & np.isfinite(b)
    same = (np.isnan(a) & np.isnan(b)) | (np.isinf(a) & (a == b))
    with np.errstate(invalid="ignore"):
        diff = np.where(finite, np.abs(a - b), np.where(same, 0.0, np.inf))
        excess = diff - (atol + rtol * np.where(finite, np.abs(b), 0.0))
    worst = np.unravel_index(int(np.argmax(excess)), a.shape) if a.ndim else ()
    scale = float(np.max(np.abs(np.where(np.isfinite(b), b, 0.0))))
    max_abs = float(np.max(diff))
    max_rel = max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else np.inf)
    return Comparison(
        max_abs=max_abs,
        max_rel=float(max_rel),
        ok=bool(np.all(excess <= 0)),
        worst=tuple(int(i) for i in worst),
        a_worst=float(a[worst]),
        b_worst=float(b[worst]),
    )


def numerical_gradient(
    f: Callable[..., Any], inputs: Sequence[Any], eps: float = 1e-6
) -> list[Any]:
    """Central differences (f(x + eps) - f(x - eps)) / 2 eps for each input, in float64.

    ``f`` takes the inputs as plain floats or float64 arrays and returns a number.
    """
    xs = [x if isinstance(x, float) else np.array(x, dtype=np.float64) for x in inputs]
    result: list[Any] = []
    for i, x in enumerate(xs):
        if isinstance(x, float):
            up = f(*xs[:i], x + eps, *xs[i + 1 :])
            down = f(*xs[:i], x - eps, *xs[i + 1 :])
            result.append((up - down) / (2 * eps))
            continue
        g = np.zeros_like(x)
        flat, gflat = x.reshape(-1), g.reshape(-1)  # views: perturbing flat perturbs x
        for j in range(flat.size):
            keep = flat[j]
            flat[j] = keep + eps
            up = f(*xs)
            flat[j] = keep - eps
            down = f(*xs)
            flat[j] = keep
            gflat[j] = (up - down) / (2 * eps)
        result.append(g)
    return result


def gradcheck(
    f: Callable[..., Any],
    *inputs: Any,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
) -> bool:
    """Check the engine's gradient of f against central differences, in float64.

    ``inputs`` are floats or Values (f gets Values) and arrays or Tensors (f gets Tensors).
    f returns a scalar, or a Tensor that is reduced to one with fixed random weights (a wrong
    gradient then still shows, with probability 1). Returns True; raises GradcheckError naming
    the input, the worst element's index and both values when they disagree.

    >>> gradcheck(lambda x, y: (x * y).tanh(), 0.3, -1.2)
    True
    """
    auto, numeric, _ = _engine_and_numeric(f, inputs, eps)
    for i, (a, n) in enumerate(zip(auto, numeric, strict=True)):
        c = compare(a, n, atol, rtol)
        if not c.ok:
            where = f" at index {c.worst}" if c.worst else ""
            raise GradcheckError(
                f"gradcheck failed for input {i}{where}: engine {c.a_worst:.10g} vs numeric "
                f"{c.b_worst:.10g} (|diff| {abs(c.a_worst - c.b_worst):.3g} > atol {atol:g} "
                f"+ rtol {rtol:g} * |numeric|)"
            )
    return True


@dataclass(frozen=True)
class GradientRow:
    """One input's line in a report: its name and shape, and the two comparisons.

    ``problem`` says why a comparison could not be made at all (say, a hand-derived gradient of
    the wrong shape, or none); such a row fails, and the report's last line gives the reason.
    """

    name: str
    shape: tuple[int, ...]
    manual: Comparison | None  # manual against automatic
    numeric: Comparison | None  # automatic against central differences
    problem: str | None = None

    @property
    def ok(self) -> bool:
        """True when there is no problem and both comparisons that were made passed."""
        return self.problem is None and all(c is None or c.ok for c in (self.manual, self.numeric))


@dataclass(frozen=True)
class GradientReport:
    """Hand-derived, automatic and numeric gradients side by side, one row per input.

    ``str(report)`` is a table; its last line names every input that disagrees.
    """

    rows: list[GradientRow]
    manual_tol: tuple[float, float] = (1e-12, 1e-9)  # (atol, rtol)
    numeric_tol: tuple[float, float] = (1e-5, 1e-3)
    title: str = field(default="gradients: manual vs automatic vs numeric")
    label: str = "input"  # the first column's heading: what a row is (an input, a parameter)

    @property
    def ok(self) -> bool:
        """True when every row passed."""
        return all(r.ok for r in self.rows)

    @property
    def failures(self) -> list[str]:
        """Names of the rows that failed."""
        return [r.name for r in self.rows if not r.ok]

    def __str__(self) -> str:
        head = (self.label, "shape", "|man-auto|", "rel", "|auto-num|", "rel", "")
        lines: list[tuple[str, ...]] = [head]
        for r in self.rows:
            shape = "×".join(map(str, r.shape)) if r.shape else "scalar"
            cells = [r.name, shape]
            for c in (r.manual, r.numeric):
                cells += ["-", "-"] if c is None else [f"{c.max_abs:.2e}", f"{c.max_rel:.2e}"]
            cells.append("ok" if r.ok else "FAIL")
            lines.append(tuple(cells))
        widths = [max(len(line[k]) for line in lines) for k in range(len(head))]
        body = [
            "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
            for line in lines
        ]
        (ma, mr), (na, nr) = self.manual_tol, self.numeric_tol
        foot = (
            f"tolerance: manual vs automatic atol {ma:g} rtol {mr:g}; "
            f"automatic vs numeric atol {na:g} rtol {nr:g}"
        )
        if self.ok:
            verdict = "all gradients agree"
        else:
            parts = []
            for r in self.rows:
                if r.problem is not None:
                    parts.append(f"{r.name} ({r.problem})")
                for what, c in (
                    ("manual vs automatic", r.manual),
                    ("automatic vs numeric", r.numeric),
                ):
                    if c is not None and not c.ok:
                        at = f" at {list(c.worst)}" if c.worst else ""
                        parts.append(f"{r.name} ({what}{at}: {c.a_worst:.6g} vs {c.b_worst:.6g})")
            verdict = "FAILED: " + "; ".join(parts)
        return "\n".join([self.title, *body, foot, verdict])


def compare_gradients(
    f: Callable[..., Any],
    manual_grad: Callable[..., Any],
    *inputs: Any,
    names: Sequence[str] | None = None,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    manual_atol: float = 1e-12,
    manual_rtol: float = 1e-9,
) -> GradientReport:
    """Set your hand-derived gradient beside the engine's and beside central differences.

    f runs on the engine (Values for float inputs, Tensors for arrays). ``manual_grad`` gets the
    same inputs as plain floats and float64 arrays and returns one gradient per input, in order
    (a lone gradient for a single input is fine). Returns a GradientReport: ``.ok``, and per
    input the largest absolute and relative |manual - automatic| and |automatic - numeric|.
    Raises ValueError when manual_grad returns the wrong number of gradients or a wrong shape.
    """
    auto, numeric, raw = _engine_and_numeric(f, inputs, eps)
    manual = manual_grad(*[r if isinstance(r, float) else r.copy() for r in raw])
    if len(raw) == 1 and not isinstance(manual, (tuple, list)):
        manual = (manual,)
    if not isinstance(manual, (tuple, list)) or len(manual) != len(raw):
        got = len(manual) if isinstance(manual, (tuple, list)) else f"a {type(manual).__name__}"
        raise ValueError(
            f"manual_grad must return {len(raw)} gradient(s), one per input; got {got}"
        )
    labels = list(names) if names is not None else [_name(x, i) for i, x in enumerate(inputs)]
    if len(labels) != len(raw):
        raise ValueError(f"names has {len(labels)} entries for {len(raw)} inputs")
    rows = []
    for label, r, m, a, n in zip(labels, raw, manual, auto, numeric, strict=True):
        shape = () if isinstance(r, float) else r.shape
        if np.shape(m) != shape:
            raise ValueError(
                f"manual gradient for {label} has shape {np.shape(m)}, the input has shape {shape}"
            )
        rows.append(
            GradientRow(
                label,
                shape,
                manual=compare(m, a, manual_atol, manual_rtol),
                numeric=compare(a, n, atol, rtol),
            )
        )
    return GradientReport(rows, (manual_atol, manual_rtol), (atol, rtol))


# --- shared machinery -------------------------------------------------------------------------


def _raw(x: Any) -> Any:
    """The input as float64 data: a float for scalars, an array otherwise."""
    if isinstance(x, Value):
        return float(x.data)
    if isinstance(x, Tensor):
        return np.array(x.data, dtype=np.float64)
    if isinstance(x, (int, float, np.floating, np.integer)) and not isinstance(x, bool):
        return float(x)
    try:
        return np.array(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"cannot check a gradient for a {type(x).__name__} input") from None


def _leaf(r: Any) -> Value | Tensor:
    return Value(r) if isinstance(r, float) else Tensor(r.copy(), requires_grad=True)


def _engine_and_numeric(
    f: Callable[..., Any], inputs: Sequence[Any], eps: float
) -> tuple[list[Any], list[Any], list[Any]]:
    if not inputs:
        raise ValueError("a gradient check needs at least one input")
    raw = [_raw(x) for x in inputs]
    weights: list[np.ndarray | None] = [None]  # drawn on the first call, reused for every other

    def scalar(*args: Any) -> Any:
        out = f(*args)
        if isinstance(out, Tensor) and out.size != 1:
            if weights[0] is None or weights[0].shape != out.shape:
                weights[0] = np.random.default_rng(1234).uniform(0.5, 1.5, out.shape)
            out = (out * weights[0]).sum()
        return scalar_root(out, "a gradient check")

    leaves = [_leaf(r) for r in raw]
    root = scalar(*leaves)
    if isinstance(root, Node) and root.requires_grad:
        auto = [
            np.asarray(g, dtype=np.float64) if not isinstance(g, float) else g
            for g in gradients(root, leaves)
        ]
    else:
        auto = [0.0 if isinstance(r, float) else np.zeros_like(r) for r in raw]

    def at(*xs: Any) -> float:
        with no_grad():
            out = scalar(*[Value(x) if isinstance(x, float) else Tensor(x) for x in xs])
        return float(out.data if isinstance(out, Node) else out)

    return auto, numerical_gradient(at, raw, eps), raw


def _name(x: Any, i: int) -> str:
    label = getattr(x, "label", "") or getattr(x, "name", "")
    return label or f"input {i}"
