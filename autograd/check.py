"""Gradient checks: the engine against central differences, and your own gradient beside both."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .diagnose import Diagnosis, diagnose
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
    "manual_row",
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


@dataclass(frozen=True, repr=False)
class GradientRow:
    """One input's line in a report: its name and shape, and the two comparisons.

    ``problem`` says why a comparison could not be made at all (say, a hand-derived gradient of
    the wrong shape, or none); such a row fails, and the report's last line gives the reason.
    ``diagnosis`` (from ``autograd.diagnose``) says what is wrong with a failed manual gradient.
    """

    name: str
    shape: tuple[int, ...]
    manual: Comparison | None  # manual against automatic
    numeric: Comparison | None  # automatic against central differences
    problem: str | None = None
    diagnosis: Diagnosis | None = None

    @property
    def ok(self) -> bool:
        """True when there is no problem and both comparisons that were made passed."""
        return self.problem is None and all(c is None or c.ok for c in (self.manual, self.numeric))

    @property
    def reasons(self) -> list[str]:
        """Why the row failed, in words: what is wrong with the manual gradient (its diagnosis,
        else its problem or worst element), then any automatic-vs-numeric disagreement."""
        out = []
        if self.diagnosis is not None and not self.diagnosis.ok:
            out.append(self.diagnosis.message)
        elif self.problem is not None:
            out.append(f"{self.name} ({self.problem})")
        elif self.manual is not None and not self.manual.ok:
            out.append(_disagreement(self.name, "manual vs automatic", self.manual))
        if self.numeric is not None and not self.numeric.ok:
            out.append(_disagreement(self.name, "automatic vs numeric", self.numeric))
        return out

    def __repr__(self) -> str:
        verdict = "ok" if self.ok else "FAIL: " + "; ".join(self.reasons)
        return f"<GradientRow {self.name} {_shape_text(self.shape)}: {verdict}>"


def _disagreement(name: str, what: str, c: Comparison) -> str:
    at = f" at {list(c.worst)}" if c.worst else ""
    return f"{name} ({what}{at}: {c.a_worst:.6g} vs {c.b_worst:.6g})"


def _shape_text(shape: tuple[int, ...]) -> str:
    return "×".join(map(str, shape)) if shape else "scalar"


def manual_row(
    name: str,
    shape: tuple[int, ...],
    manual: Any,
    auto: Any,
    numeric: Comparison | None,
    atol: float,
    rtol: float,
    *,
    batch: int | None = None,
) -> GradientRow:
    """A report's row for a hand-derived gradient: compared with the engine's, diagnosed if wrong.

    Every checker builds its rows here, so the same mistake is said in the same words whichever
    checker finds it. A manual gradient that is missing (None), not numbers, or of the wrong
    shape gives a failed row whose ``problem`` is its diagnosis, never an exception. ``batch``
    lets the diagnosis name a factor N or 1/N as the batch size.
    """
    shape = tuple(shape)
    undefined = _nan_at(auto)
    if undefined is not None:  # NaN matches NaN: agreement there would have compared nothing
        problem = (
            f"the engine's gradient is nan at {undefined}: the function is not defined there "
            "(or overflows) at these inputs, so there is nothing to check against; try others"
        )
        return GradientRow(name, shape, None, numeric, problem=problem)
    if manual is not None and not isinstance(manual, (str, bytes)):
        try:
            same_shape = np.shape(manual) == shape
            c = compare(manual, auto, atol, rtol) if same_shape else None
        except (TypeError, ValueError):
            c = None  # not numbers (a dict, ragged lists): the diagnosis below says so
        if c is not None:
            found = (
                None if c.ok else diagnose(name, manual, auto, batch=batch, atol=atol, rtol=rtol)
            )
            return GradientRow(name, shape, c, numeric, diagnosis=found)
    found = diagnose(name, manual, auto, batch=batch, atol=atol, rtol=rtol)
    return GradientRow(name, shape, None, numeric, problem=found.message, diagnosis=found)


def refuse_not_finite(x: Any, what: str) -> None:
    """Raise ValueError ("{what} holds nan at [i, j]") when x holds a number that is not finite.

    A check needs finite inputs: every gradient there would be NaN, and NaN against NaN (equal
    by ``compare``'s rule) would report agreement having compared nothing."""
    a = np.asarray(x, dtype=np.float64)
    bad = np.argwhere(~np.isfinite(a))
    if len(bad):
        where = [int(k) for k in bad[0]]
        raise ValueError(f"{what} holds {a[tuple(where)]} at {where}")


def _nan_at(g: Any) -> list[int] | None:
    """The index of the first NaN in gradient g (``[]`` for a scalar), or None."""
    a = np.asarray(g, dtype=np.float64)
    where = np.argwhere(np.isnan(a))
    return [int(i) for i in where[0]] if len(where) else None


@dataclass(frozen=True, repr=False)
class GradientReport:
    """Hand-derived, automatic and numeric gradients side by side, one row per input.

    ``str(report)`` is a table; its last line names every input that disagrees, with what is
    wrong with it. In Jupyter the report shows as an HTML table.
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

    @property
    def tolerance(self) -> str:
        """The tolerances, as the line under the table says them."""
        (ma, mr), (na, nr) = self.manual_tol, self.numeric_tol
        return (
            f"tolerance: manual vs automatic atol {ma:g} rtol {mr:g}; "
            f"automatic vs numeric atol {na:g} rtol {nr:g}"
        )

    @property
    def verdict(self) -> str:
        """The last line: that all agree, or every failed row with what is wrong with it."""
        if self.ok:
            return "all gradients agree"
        return "FAILED: " + "; ".join(reason for r in self.rows for reason in r.reasons)

    def cells(self) -> list[tuple[str, ...]]:
        """The table's rows as text: name, shape, both comparisons, verdict."""
        lines = []
        for r in self.rows:
            cells = [r.name, _shape_text(r.shape)]
            for c in (r.manual, r.numeric):
                cells += ["-", "-"] if c is None else [f"{c.max_abs:.2e}", f"{c.max_rel:.2e}"]
            cells.append("ok" if r.ok else "FAIL")
            lines.append(tuple(cells))
        return lines

    def __str__(self) -> str:
        head = (self.label, "shape", "|man-auto|", "rel", "|auto-num|", "rel", "")
        lines = [head, *self.cells()]
        widths = [max(len(line[k]) for line in lines) for k in range(len(head))]
        body = [
            "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
            for line in lines
        ]
        return "\n".join([self.title, *body, self.tolerance, self.verdict])

    def __repr__(self) -> str:
        # The table itself: a report is read, not rebuilt from its repr.
        return str(self)

    def _repr_html_(self) -> str:
        """The report as an HTML table for Jupyter, with what is wrong beside each failed row."""
        return _html(self)


def _html(report: GradientReport) -> str:
    esc = html.escape
    head = (report.label, "shape", "|manual − auto|", "rel", "|auto − numeric|", "rel", "", "")
    th = "".join(f"<th>{esc(h)}</th>" for h in head)
    trs = []
    for row, cells in zip(report.rows, report.cells(), strict=True):
        color = "#1a7f37" if row.ok else "#cf222e"
        tds = "".join(f"<td>{esc(c)}</td>" for c in cells[:-1])
        why = esc("; ".join(row.reasons))
        trs.append(
            f'<tr>{tds}<td style="color:{color};font-weight:bold">{esc(cells[-1])}</td>'
            f'<td style="text-align:left">{why}</td></tr>'
        )
    verdict_color = "#1a7f37" if report.ok else "#cf222e"
    verdict = "all gradients agree" if report.ok else f"FAILED: {', '.join(report.failures)}"
    return (
        '<table class="backproplab-report" style="font-family:monospace">'
        f'<caption style="text-align:left;font-weight:bold">{esc(report.title)}</caption>'
        f"<thead><tr>{th}</tr></thead><tbody>{''.join(trs)}</tbody>"
        f'<tfoot><tr><td colspan="8" style="text-align:left">{esc(report.tolerance)}</td></tr>'
        f'<tr><td colspan="8" style="text-align:left;color:{verdict_color};font-weight:bold">'
        f"{esc(verdict)}</td></tr></tfoot></table>"
    )


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
    batch: int | None = None,
) -> GradientReport:
    """Set your hand-derived gradient beside the engine's and beside central differences.

    f runs on the engine (Values for float inputs, Tensors for arrays). ``manual_grad`` gets the
    same inputs as plain floats and float64 arrays and returns one gradient per input, in order
    (a lone gradient for a single input is fine). Returns a GradientReport: ``.ok``, and per
    input the largest absolute and relative |manual - automatic| and |automatic - numeric|.

    A manual gradient that is wrong is diagnosed (``autograd.diagnose``): a wrong shape (say, a
    bias gradient not summed over the batch), a transpose, a factor such as -1 or 2, or else the
    worst element. A wrong shape, or None, fails its row; it is never an exception. Give
    ``batch`` (the batch size N) to have a gradient off by N or 1/N named as such.

    Raises ValueError when manual_grad returns the wrong number of gradients, or ``names`` has
    the wrong length.
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
    rows = [
        manual_row(
            label,
            () if isinstance(r, float) else r.shape,
            m,
            a,
            compare(a, n, atol, rtol),
            manual_atol,
            manual_rtol,
            batch=batch,
        )
        for label, r, m, a, n in zip(labels, raw, manual, auto, numeric, strict=True)
    ]
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
    for i, r in enumerate(raw):
        refuse_not_finite(r, f"a gradient check needs finite inputs: input {i}")
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
