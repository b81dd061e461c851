"""Pictures of training runs: loss curves, a 2-D model's function over the plane (decision
regions), and a gradient check's manual-vs-automatic chart.

Each picture has a ``*_figure`` function that returns a matplotlib ``Figure``, which a Jupyter
cell shows as its output with no ``%matplotlib`` magic and no ``plt.show()`` (the Figure has its
own PNG display), and a ``plot_*`` function that writes it to a PNG file.
Every PNG file is at least ``MIN_WIDTH_PX`` pixels wide, wide enough for a slide, and every
picture has a title in words and labelled axes (and colour bar).

matplotlib is optional (the ``plot`` extra: ``pip install 'backproplab[plot]'``) and imported
only when a picture is drawn. The figures are drawn on matplotlib's ``Figure`` with the Agg
canvas, never through pyplot, so drawing here neither opens windows nor changes the backend of
a program (or notebook) that imports this module.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from backproplab.nn.files import safe_write

__all__ = [
    "MIN_WIDTH_PX",
    "PLOT_HINT",
    "function_2d_figure",
    "gradient_check_figure",
    "have_matplotlib",
    "loss_curve_figure",
    "plot_function_2d",
    "plot_gradient_check",
    "plot_loss_curve",
    "plot_values_2d",
    "values_2d_figure",
]

PLOT_HINT = "pip install 'backproplab[plot]'"
"""How to get matplotlib, for messages that skip pictures."""

MIN_WIDTH_PX = 1600
"""The narrowest PNG written, in pixels: the resolution rises with a narrow figure."""

PathLike = str | os.PathLike[str]


def have_matplotlib() -> bool:
    """True when matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


_figure_class: type | None = None


def _inline_figure_class() -> type:
    """matplotlib's Figure with a PNG display of its own, made once, on first use."""
    global _figure_class
    if _figure_class is None:
        from matplotlib.figure import Figure

        class InlineFigure(Figure):  # type: ignore[misc]
            """A Figure that Jupyter shows as a PNG by itself.

            IPython shows a bare Figure as a picture only once pyplot has set up its inline
            backend (``%matplotlib inline``, or importing pyplot); these figures never go
            through pyplot, so they bring their own ``_repr_png_``.
            """

            def _repr_png_(self) -> bytes:
                buffer = io.BytesIO()
                self.savefig(buffer, format="png", bbox_inches="tight")
                return buffer.getvalue()

        _figure_class = InlineFigure
    return _figure_class


def _figure(width: float = 6.0, height: float = 4.0) -> Any:
    """A new Figure on the Agg canvas; ImportError with the install hint without matplotlib."""
    try:
        # matplotlib itself first: a stale submodule in sys.modules must not hide its absence.
        import matplotlib  # noqa: F401
        from matplotlib.backends.backend_agg import FigureCanvasAgg
    except ImportError as e:
        raise ImportError(f"drawing pictures needs matplotlib: {PLOT_HINT}") from e
    fig = _inline_figure_class()(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: PathLike) -> Path:
    # The figure keeps its size in inches (so its text keeps its proportions); the dots per inch
    # make it MIN_WIDTH_PX wide or more.
    dpi = max(fig.dpi, math.ceil(MIN_WIDTH_PX / fig.get_figwidth()))
    # By nn.files' rules: only a regular file is replaced, and a failed save leaves the old one.
    with safe_write(path) as f:
        fig.savefig(f, format="png", dpi=dpi)
    return Path(path)


def plot_loss_curve(
    history_or_losses: Sequence[Mapping[str, float]] | Sequence[float] | np.ndarray,
    path: PathLike,
    log: bool = True,
    title: str = "loss",
    ylabel: str = "loss",
) -> Path:
    """Draw a loss curve and write it to ``path`` as a PNG.

    The picture is ``loss_curve_figure(history_or_losses, log, title, ylabel)``; see it for the
    arguments. Returns the path written, as a Path. Raises ValueError and ImportError as that
    function does, and OSError when the file cannot be written.
    """
    return _save(loss_curve_figure(history_or_losses, log=log, title=title, ylabel=ylabel), path)


def loss_curve_figure(
    history_or_losses: Sequence[Mapping[str, float]] | Sequence[float] | np.ndarray,
    log: bool = True,
    title: str = "loss",
    ylabel: str = "loss",
) -> Any:
    """Draw a loss curve on a new matplotlib ``Figure`` (Agg canvas) and return it.

    Args:
        history_or_losses: either one loss per step (a sequence of numbers, drawn against the
            step 1, 2, ...), or an ``MLPTrainer`` history (a sequence of dicts with "epoch",
            "train_loss" and maybe "val_loss", drawn as one curve each against the epoch).
        log: a logarithmic y axis; ignored (linear) when some loss is not positive, since a log
            axis cannot show it.
        title: the figure's title.
        ylabel: what the loss is ("mean squared error" ...), the y axis' label.

    Returns:
        The Figure, with one Axes (``fig.axes[0].get_yscale()`` is "log" or "linear").

    Raises:
        ValueError: for an empty sequence, or a history without "train_loss".
        ImportError: when matplotlib is missing (the message says how to install it).
    """
    if len(history_or_losses) == 0:
        raise ValueError("nothing to plot: the history or list of losses is empty")
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    first = history_or_losses[0]
    if isinstance(first, Mapping):
        rows: Sequence[Mapping[str, float]] = history_or_losses  # type: ignore[assignment]
        if "train_loss" not in first:
            raise ValueError(f"a history needs 'train_loss' in each row, got keys {list(first)}")
        epochs = np.array([row.get("epoch", i + 1) for i, row in enumerate(rows)], dtype=float)
        for key in ("train_loss", "val_loss"):
            if key in first:
                curves[key.replace("_", " ")] = (epochs, np.array([r[key] for r in rows], float))
        xlabel = "epoch"
    else:
        losses = np.asarray(history_or_losses, dtype=float).reshape(-1)
        curves["loss"] = (np.arange(1, losses.size + 1, dtype=float), losses)
        xlabel = "step"
    fig = _figure()
    ax = fig.add_subplot()
    for label, (xs, ys) in curves.items():
        ax.plot(xs, ys, label=label, linewidth=1.5)
    all_losses = np.concatenate([ys for _, ys in curves.values()])
    if log and np.all(all_losses[np.isfinite(all_losses)] > 0):
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel + (" (log scale)" if ax.get_yscale() == "log" else ""))
    ax.set_title(title)
    if len(curves) > 1:
        ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_function_2d(
    predict_fn: Callable[[np.ndarray], Any],
    X: Any,
    y: Any,
    path: PathLike,
    resolution: int = 100,
    title: str = "the trained network's function",
    margin: float = 0.25,
    *,
    axis_labels: tuple[str, str] = ("x1", "x2"),
    value_label: str = "network output",
    class_names: Sequence[str] | None = None,
) -> Path:
    """Draw a function of two inputs over the plane, with the data points on top, to a PNG.

    The picture is ``function_2d_figure(predict_fn, X, y, ...)``; see it for the arguments.
    Returns the path written, as a Path. Raises ValueError and ImportError as that function
    does, and OSError when the file cannot be written.
    """
    fig = function_2d_figure(
        predict_fn,
        X,
        y,
        resolution,
        title,
        margin,
        axis_labels=axis_labels,
        value_label=value_label,
        class_names=class_names,
    )
    return _save(fig, path)


def function_2d_figure(
    predict_fn: Callable[[np.ndarray], Any],
    X: Any,
    y: Any,
    resolution: int = 100,
    title: str = "the trained network's function",
    margin: float = 0.25,
    *,
    axis_labels: tuple[str, str] = ("x1", "x2"),
    value_label: str = "network output",
    class_names: Sequence[str] | None = None,
) -> Any:
    """Draw a function of two inputs over the plane, with the data points on top, on a new
    matplotlib ``Figure``, and return it: the decision regions of a classifier.

    A predict_fn that gives class labels (whole numbers, at most 10 of them) draws decision
    regions, one colour per class; one that gives scores or probabilities draws a shaded
    surface (see ``values_2d_figure``). For micrograd's moons::

        function_2d_figure(lambda pts: [model(list(p)).data > 0 for p in pts], X, y)

    Args:
        predict_fn: maps points of shape (m, 2) to m values (a probability, a score or a class
            label per point; an (m, 1) result, a Tensor or a list of Values is fine).
        X: the data points, shape (n, 2); the picture covers their bounding box, widened by
            ``margin`` (a fraction of each side's range).
        y: their labels or targets, n values, which colour the points.
        resolution: grid points along each axis (predict_fn sees resolution² points).
        title: the figure's title.
        axis_labels, value_label, class_names: as for ``values_2d_figure``.

    Returns:
        The Figure, with the plot's Axes first.

    Raises:
        ValueError: for X not of shape (n, 2), y not of length n, resolution < 2, or a
            predict_fn result that is not one value per point.
        ImportError: when matplotlib is missing.
    """
    points = np.asarray(X, dtype=float)
    if points.ndim != 2 or points.shape[1] != 2 or len(points) == 0:
        raise ValueError(f"X must have shape (n, 2), got {points.shape}")
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 2:
        raise ValueError(f"resolution must be an integer >= 2, got {resolution!r}")
    lo, hi = points.min(axis=0), points.max(axis=0)
    pad = np.maximum(hi - lo, 1e-9) * margin
    xs = np.linspace(lo[0] - pad[0], hi[0] + pad[0], resolution)
    ys = np.linspace(lo[1] - pad[1], hi[1] + pad[1], resolution)
    gx, gy = np.meshgrid(xs, ys)
    values = np.asarray(predict_fn(np.column_stack([gx.ravel(), gy.ravel()])), dtype=float)
    if values.size != gx.size:
        raise ValueError(
            f"predict_fn returned {values.size} values for {gx.size} points (shape "
            f"{values.shape}); it must return one value per point"
        )
    return values_2d_figure(
        xs,
        ys,
        values.reshape(gx.shape),
        points,
        y,
        title=title,
        axis_labels=axis_labels,
        value_label=value_label,
        class_names=class_names,
    )


def _classes(labels: np.ndarray) -> np.ndarray | None:
    """The sorted distinct labels when they look like classes (whole numbers, at most 10)."""
    finite = labels[np.isfinite(labels)]
    if finite.size and np.all(finite == np.round(finite)) and np.unique(finite).size <= 10:
        return np.unique(finite)
    return None


def _class_name(c: float, class_names: Sequence[str] | None) -> str:
    k = int(c)
    if class_names is not None and 0 <= k < len(class_names):
        return class_names[k]
    return f"class {k}"


def plot_values_2d(
    xs: Any,
    ys: Any,
    values: Any,
    X: Any,
    y: Any,
    path: PathLike,
    title: str = "the trained network's function",
    *,
    axis_labels: tuple[str, str] = ("x1", "x2"),
    value_label: str = "network output",
    class_names: Sequence[str] | None = None,
) -> Path:
    """Draw values already computed on the grid xs × ys, with the data points on top, to a PNG.

    The picture is ``values_2d_figure(xs, ys, values, X, y, ...)``; see it for the arguments.
    Returns the path written. Raises ValueError when the shapes do not fit, ImportError
    without matplotlib, OSError when the file cannot be written.
    """
    fig = values_2d_figure(
        xs,
        ys,
        values,
        X,
        y,
        title,
        axis_labels=axis_labels,
        value_label=value_label,
        class_names=class_names,
    )
    return _save(fig, path)


def values_2d_figure(
    xs: Any,
    ys: Any,
    values: Any,
    X: Any,
    y: Any,
    title: str = "the trained network's function",
    *,
    axis_labels: tuple[str, str] = ("x1", "x2"),
    value_label: str = "network output",
    class_names: Sequence[str] | None = None,
) -> Any:
    """Draw values already computed on the grid xs × ys, with the data points on top, on a new
    matplotlib ``Figure``, and return it.

    ``values[i, j]`` is the function at (xs[j], ys[i]), the layout of ``np.meshgrid(xs, ys)``
    (and of ``nn.seed_circle.predict_grid``). Integer-valued results with at most 10 distinct
    values (class labels) are drawn as decision regions, each cell of the grid filled in the
    colour of its class (no gaps between regions), the points in the same colours. Other
    values are a shaded surface with a colour bar labelled ``value_label``; points whose labels
    are classes are then drawn in colours of their own (white and black for two classes), so
    they stand out from the surface wherever the fit is good. Either way a legend names the
    classes (``class_names[k]`` for label k, else "class k").

    ``axis_labels`` names the two inputs (x1 and x2 by default: ``y`` is the label). The rest
    is as for ``function_2d_figure``.

    Returns the Figure. Raises ValueError when the shapes do not fit, ImportError without
    matplotlib.
    """
    xs, ys, grid, points, labels = _values_2d_arrays(xs, ys, values, X, y)
    fig = _figure(7.0, 5.5)
    ax = fig.add_subplot()
    point_classes = _classes(labels.astype(float))
    region_classes = _classes(grid)
    if region_classes is not None:
        _draw_regions(ax, xs, ys, grid, points, labels, region_classes, class_names)
    else:
        _draw_surface(
            fig, ax, xs, ys, grid, points, labels, point_classes, value_label, class_names
        )
    ax.set_xlim(xs[0], xs[-1])
    ax.set_ylim(ys[0], ys[-1])
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    ax.set_title(title)
    ax.set_aspect("equal", adjustable="box")
    fig.tight_layout()
    return fig


def _values_2d_arrays(
    xs: Any, ys: Any, values: Any, X: Any, y: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``values_2d_figure``'s inputs as arrays: (xs, ys, grid, points, labels).

    Raises ValueError when the grid is not (len(ys), len(xs)) or X is not n points of 2 with
    n labels in y.
    """
    xs, ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    grid = np.asarray(values, dtype=float)
    points = np.asarray(X, dtype=float)
    labels = np.asarray(y).reshape(-1)
    if grid.shape != (len(ys), len(xs)):
        raise ValueError(
            f"values must have shape (len(ys), len(xs)) = {(len(ys), len(xs))}, got {grid.shape}"
        )
    if points.ndim != 2 or points.shape[1] != 2 or len(labels) != len(points):
        raise ValueError(
            f"X must have shape (n, 2) and y n values, got shapes {points.shape} and {np.shape(y)}"
        )
    return xs, ys, grid, points, labels


def _draw_regions(
    ax: Any,
    xs: np.ndarray,
    ys: np.ndarray,
    grid: np.ndarray,
    points: np.ndarray,
    labels: np.ndarray,
    region_classes: np.ndarray,
    class_names: Sequence[str] | None,
) -> None:
    """Draw class-valued ``grid`` on ``ax`` as decision regions, the points in their class's
    colour on top, and a legend of the classes."""
    # One flat colour per grid cell (pcolormesh, not contourf, whose filled bands leave seams
    # between regions), each class in the colour of its points.
    from matplotlib.colors import ListedColormap

    classes = np.unique(np.concatenate([region_classes, labels.astype(float)]))
    palette = ListedColormap([f"C{int(c) % 10}" for c in classes])
    index = np.searchsorted(classes, grid)
    ax.pcolormesh(
        xs,
        ys,
        index,
        cmap=palette,
        vmin=-0.5,
        vmax=len(classes) - 0.5,
        alpha=0.3,
        shading="nearest",
        linewidth=0,
        antialiased=False,
    )
    for k, c in enumerate(classes):
        mine = labels.astype(float) == c
        if np.any(mine):
            ax.scatter(
                points[mine, 0],
                points[mine, 1],
                color=palette(k),
                edgecolors="black",
                linewidths=0.5,
                s=22,
                label=_class_name(c, class_names),
            )
    ax.legend(loc="best", fontsize=9, framealpha=0.9, title="data points")


def _draw_surface(
    fig: Any,
    ax: Any,
    xs: np.ndarray,
    ys: np.ndarray,
    grid: np.ndarray,
    points: np.ndarray,
    labels: np.ndarray,
    point_classes: np.ndarray | None,
    value_label: str,
    class_names: Sequence[str] | None,
) -> None:
    """Draw ``grid`` on ``ax`` as a shaded surface with a colour bar labelled ``value_label``,
    and the points on top: in colours of their own (with a legend) when their labels are
    classes, else in the surface's colour map."""
    surface = ax.contourf(xs, ys, grid, levels=20, cmap="RdBu_r", alpha=0.85)
    bar = fig.colorbar(surface, ax=ax)
    bar.set_label(value_label)
    if point_classes is not None:
        two = {0: ("white", "o"), 1: ("black", "o")} if len(point_classes) <= 2 else {}
        for k, c in enumerate(point_classes):
            face, marker = two.get(k, (f"C{int(c) % 10}", "o"))
            mine = labels.astype(float) == c
            ax.scatter(
                points[mine, 0],
                points[mine, 1],
                color=face,
                marker=marker,
                edgecolors="black" if face != "black" else "white",
                linewidths=0.8,
                s=26,
                label=_class_name(c, class_names),
            )
        ax.legend(
            loc="upper center",
            bbox_to_anchor=(0.5, -0.12),
            ncol=min(len(point_classes), 3),
            fontsize=9,
            title="data points",
            frameon=False,
        )
    else:
        ax.scatter(
            points[:, 0],
            points[:, 1],
            c=labels.astype(float),
            cmap="RdBu_r",
            norm=surface.norm,
            edgecolors="white",  # a point shares the surface's colour where the fit is good
            linewidths=0.8,
            s=18,
        )


def plot_gradient_check(report: Any, path: PathLike, title: str | None = None) -> Path:
    """Draw a gradient check's manual-vs-automatic chart and write it to ``path`` as a PNG.

    The picture is ``gradient_check_figure(report, title)``; see it for what it shows.
    Returns the path written. Raises ValueError for a report without rows, ImportError without
    matplotlib, OSError when the file cannot be written.
    """
    return _save(gradient_check_figure(report, title), path)


def gradient_check_figure(report: Any, title: str | None = None) -> Any:
    """Chart a gradient check on a new matplotlib ``Figure`` (Agg canvas) and return it.

    One group of bars per row of the report (per parameter or input), on a log scale: the
    largest relative difference between the hand-derived and the engine's gradient (max |manual
    − automatic| / max |automatic|), and beside it, lighter, the engine's against central
    differences. Each comparison's relative tolerance is a line across its own bars (dashed for
    manual vs automatic, dotted for automatic vs numeric). A bar is green when its
    comparison passed and red when it failed; the verdict is the report's own elementwise test
    (|a − b| <= atol + rtol |b| for every element), so a bar just above its line may still pass
    on atol. A difference of exactly 0 is drawn as a short bar labelled 0, an infinite one as a
    bar to the top labelled inf, and a row whose comparison could not be made (no manual
    gradient, or one of the wrong shape) is marked "n/a".

    Args:
        report: an ``autograd.GradientReport`` (from ``compare_gradients`` or
            ``nn.checker.check_model``): its ``rows`` (name, manual and numeric comparisons),
            ``manual_tol`` and ``numeric_tol`` as (atol, rtol), and ``title``.
        title: the figure's title; by default the report's.

    Returns:
        The Figure, with one Axes on a log y scale.

    Raises:
        ValueError: for a report without rows.
        ImportError: when matplotlib is missing.
    """
    rows = list(report.rows)
    if not rows:
        raise ValueError("nothing to plot: the report has no rows")
    kinds = _comparisons(report, rows)
    floor, ceiling = _log_range(rows, kinds)
    fig = _figure(max(7.5, 3.5 + 0.6 * len(rows) * len(kinds)), 4.5)  # the legend: ~3 in
    ax = fig.add_subplot()
    ax.set_yscale("log")
    width = 0.8 / len(kinds)
    xs = np.arange(len(rows), dtype=float)
    seen: set[tuple[str, bool]] = set()  # (comparison, passed) pairs drawn, for their swatches
    for k, (key, label, rtol, alpha) in enumerate(kinds):
        at = xs - 0.4 + width * (k + 0.5)
        verdicts = _draw_comparison_bars(ax, at, rows, key, alpha, width, floor, ceiling)
        seen.update((label, ok) for ok in verdicts)
        # The tolerance across this comparison's own bars only: a line across the whole chart
        # would seem to judge the other comparison's bars too.
        ax.hlines(
            [rtol] * len(at),
            at - width * 0.5,
            at + width * 0.5,
            colors="black",
            linestyles="--" if k == 0 else ":",
            linewidth=1.5,
            label=f"{label} tolerance (rtol {rtol:g})",
        )
    handles = _gradient_legend_handles(ax, kinds, seen)
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_ylim(floor, ceiling)
    ax.set_xticks(xs)
    names = [r.name for r in rows]
    turned = max(map(len, names)) > 8
    ax.set_xticklabels(names, rotation=30 if turned else 0, ha="right" if turned else "center")
    ax.set_xlim(-0.6, len(rows) - 0.4)
    ax.set_xlabel("parameter")
    ax.set_ylabel("largest relative difference (log scale)")
    ax.set_title(report.title if title is None else title, fontsize=10)
    ax.grid(True, axis="y", which="major", alpha=0.3)
    fig.tight_layout()
    return fig


# A comparison a gradient check's chart draws: (the row's attribute, its name in the legend,
# its relative tolerance, the shade of its bars).
_Comparison = tuple[str, str, float, float]


def _comparisons(report: Any, rows: list[Any]) -> list[_Comparison]:
    """The comparisons of ``report`` to chart: manual vs automatic, then automatic vs numeric."""
    kinds = [
        ("manual", "manual vs automatic", report.manual_tol[1], 1.0),
        ("numeric", "automatic vs numeric", report.numeric_tol[1], 0.45),
    ]
    # Only the comparisons the report made: compare_gradients always makes both, a report
    # built by hand may hold only one.
    return [k for k in kinds if any(getattr(r, k[0]) is not None for r in rows)] or kinds[:1]


def _log_range(rows: list[Any], kinds: list[_Comparison]) -> tuple[float, float]:
    """The chart's (floor, ceiling): two decades below and above every finite, nonzero
    difference and tolerance."""
    # A log axis shows neither 0 nor inf: both get a stub at the axis' floor or ceiling, and a
    # label saying which.
    shown = [
        c.max_rel
        for r in rows
        for key, *_ in kinds
        if (c := getattr(r, key)) is not None and np.isfinite(c.max_rel) and c.max_rel > 0
    ]
    tolerances = [rtol for _, _, rtol, _ in kinds if rtol > 0]
    low = min([*shown, *tolerances], default=1e-12)
    high = max([*shown, *tolerances], default=1.0)
    floor = 10.0 ** (np.floor(np.log10(low)) - 2)
    ceiling = 10.0 ** (np.ceil(np.log10(high)) + 2)
    return floor, ceiling


def _draw_comparison_bars(
    ax: Any,
    at: np.ndarray,
    rows: list[Any],
    key: str,
    alpha: float,
    width: float,
    floor: float,
    ceiling: float,
) -> set[bool]:
    """Draw one comparison's bar for each row at the x positions ``at`` (or "n/a" where the row
    has none) and return the verdicts drawn (True for passed, False for failed)."""
    verdicts: set[bool] = set()
    for x, r in zip(at, rows, strict=True):
        c = getattr(r, key)
        if c is None:
            # No comparison for this row: a failed row (its problem) or one never checked.
            failed = key == "manual" and getattr(r, "problem", None) is not None
            ax.text(
                x,
                floor * 3,
                "n/a",
                ha="center",
                va="bottom",
                rotation=90,
                color="C3" if failed else "gray",
                fontsize=8,
            )
            continue
        verdicts.add(c.ok)
        value = c.max_rel if np.isfinite(c.max_rel) else ceiling
        height = value if value > 0 else floor * 2
        ax.bar(
            x,
            height,
            width * 0.9,
            bottom=floor,
            color="C2" if c.ok else "C3",
            alpha=alpha,
            edgecolor="black",
            linewidth=0.5,
        )
        if value <= 0 or not np.isfinite(c.max_rel):
            ax.text(
                x,
                height * 1.3,
                "0" if value <= 0 else "inf",
                ha="center",
                va="bottom",
                fontsize=8,
            )
    return verdicts


def _gradient_legend_handles(
    ax: Any, kinds: list[_Comparison], seen: set[tuple[str, bool]]
) -> list[Any]:
    """The chart's legend entries: each comparison's tolerance line, followed by a swatch for
    each verdict of its bars drawn."""
    # One swatch per kind of bar drawn, in that bar's very colour and shade, beside the line of
    # its comparison's tolerance.
    from matplotlib.patches import Patch

    lines, _ = ax.get_legend_handles_labels()
    shade = {label: alpha for _, label, _, alpha in kinds}
    handles = []
    for k, (_, label, _, _) in enumerate(kinds):
        handles.append(lines[k])
        for verdict in (True, False):
            if (label, verdict) in seen:
                handles.append(
                    Patch(
                        facecolor="C2" if verdict else "C3",
                        alpha=shade[label],
                        edgecolor="black",
                        linewidth=0.5,
                        label=f"{label}: {'passed' if verdict else 'FAILED'}",
                    )
                )
    return handles
