"""viz.plots: the training pictures are valid, non-blank PNGs, and their options take effect."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")  # the optional `plot` extra; imports below need it

import matplotlib.image
from backproplab.autograd import compare_gradients
from backproplab.autograd.check import Comparison, GradientReport, GradientRow
from backproplab.viz.cli import main
from backproplab.viz.plots import (
    MIN_WIDTH_PX,
    gradient_check_figure,
    loss_curve_figure,
    plot_function_2d,
    plot_gradient_check,
    plot_loss_curve,
)

PNG = b"\x89PNG\r\n\x1a\n"
GREEN, RED = (0.172549, 0.627451, 0.172549), (0.839216, 0.152941, 0.156863)  # C2, C3


def assert_picture(path: Path) -> None:
    """A PNG (by its signature) with something drawn on it (its pixels are not all one colour)."""
    assert path.read_bytes()[:8] == PNG
    pixels = matplotlib.image.imread(path)
    assert pixels.ndim == 3 and min(pixels.shape[:2]) >= 100
    assert pixels.shape[1] >= MIN_WIDTH_PX  # wide enough for a slide
    assert float(np.var(pixels[..., :3])) > 1e-3


HISTORY = [
    {"epoch": e, "train_loss": 2.0 / e, "val_loss": 2.5 / e, "train_acc": 0.5, "val_acc": 0.5}
    for e in range(1, 21)
]


def test_loss_curves_train_and_validation(tmp_path: Path) -> None:
    path = plot_loss_curve(HISTORY, tmp_path / "loss.png", title="two curves")
    assert path == tmp_path / "loss.png"
    assert_picture(path)
    ax = loss_curve_figure(HISTORY).axes[0]
    assert [line.get_label() for line in ax.get_lines()] == ["train loss", "val loss"]
    np.testing.assert_allclose(ax.get_lines()[1].get_ydata(), [r["val_loss"] for r in HISTORY])


def test_the_log_option_sets_the_y_scale(tmp_path: Path) -> None:
    assert loss_curve_figure(HISTORY, log=True).axes[0].get_yscale() == "log"
    assert loss_curve_figure(HISTORY, log=False).axes[0].get_yscale() == "linear"
    # A log axis cannot show a zero loss: the curve is drawn on a linear one instead.
    assert loss_curve_figure([1.0, 0.5, 0.0], log=True).axes[0].get_yscale() == "linear"
    log = plot_loss_curve(HISTORY, tmp_path / "log.png", log=True)
    linear = plot_loss_curve(HISTORY, tmp_path / "linear.png", log=False)
    assert_picture(log)
    assert_picture(linear)
    assert log.read_bytes() != linear.read_bytes()


def test_the_function_over_the_plane_with_the_points(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (60, 2))
    y = (X[:, 0] * X[:, 1] > 0).astype(int)
    assert_picture(plot_function_2d(lambda p: p[:, 0] * p[:, 1], X, y, tmp_path / "f.png"))
    classes = plot_function_2d(lambda p: p[:, 0] * p[:, 1] > 0, X, y, tmp_path / "c.png")
    assert_picture(classes)


def _loss(w: np.ndarray, x: np.ndarray) -> object:
    return ((w @ x).tanh() ** 2).sum()  # type: ignore[attr-defined]


def _by_hand(w: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.tanh(w @ x)
    dz = 2 * y * (1 - y**2)
    return np.outer(dz, x), w.T @ dz


def _forgot_tanh(w: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.tanh(w @ x)
    return np.outer(2 * y, x), _by_hand(w, x)[1]  # W wrong, x right


W = np.array([[0.1, -0.2, 0.3], [0.4, 0.5, -0.6]])
X = np.array([1.0, 2.0, -1.0])


def _bar_colours(ax: object) -> list[tuple[float, ...]]:
    return [tuple(round(c, 6) for c in p.get_facecolor()[:3]) for p in ax.patches]  # type: ignore[attr-defined]


def test_gradient_check_chart(tmp_path: Path) -> None:
    report = compare_gradients(_loss, _forgot_tanh, W, X, names=["W", "x"])
    assert report.failures == ["W"]
    path = plot_gradient_check(report, tmp_path / "check.png")
    assert path == tmp_path / "check.png"
    assert_picture(path)

    ax = gradient_check_figure(report).axes[0]
    assert ax.get_yscale() == "log"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["W", "x"]
    # The tolerance lines, at each comparison's rtol.
    levels = sorted(float(c.get_segments()[0][0][1]) for c in ax.collections)
    assert levels == [report.manual_tol[1], report.numeric_tol[1]]
    # Bars, in order: manual vs automatic for W (failed) and x (passed), then numeric for both.
    assert _bar_colours(ax) == [RED, GREEN, GREEN, GREEN]
    heights = [p.get_y() + p.get_height() for p in ax.patches]
    w_row = report.rows[0].manual
    assert w_row is not None and heights[0] == pytest.approx(w_row.max_rel)
    assert heights[0] > report.manual_tol[1] > heights[1]


def test_gradient_check_chart_shows_zero_infinite_and_missing(tmp_path: Path) -> None:
    def comparison(rel: float, ok: bool) -> Comparison:
        return Comparison(rel, rel, ok, (), 0.0, 0.0)

    rows = [
        GradientRow("exact", (2,), comparison(0.0, True), None),
        GradientRow("broken", (2,), comparison(float("inf"), False), None),
        GradientRow("absent", (2,), None, None, problem="no manual gradient"),
    ]
    report = GradientReport(rows, title="made by hand")
    ax = gradient_check_figure(report).axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["0", "inf", "n/a"]
    assert ax.get_title() == "made by hand"
    assert_picture(plot_gradient_check(report, tmp_path / "odd.png", title="odd"))
    with pytest.raises(ValueError, match="no rows"):
        gradient_check_figure(GradientReport([]))


def test_demo_mlp_writes_all_three_pictures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "mlp", "--epochs", "2", "--out", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "gradient check on 16 training points: all gradients agree" in lines
    for name in ("loss", "function", "gradcheck"):
        path = tmp_path / f"mlp_moons_{name}.png"
        assert any(line.startswith(f"wrote {path}: ") for line in lines)
        assert_picture(path)


# -- pictures for a slide -----------------------------------------------------------------------


def _png_width(path: Path) -> int:
    return int.from_bytes(path.read_bytes()[16:20], "big")  # the IHDR chunk's width


def test_every_demo_picture_is_wide_enough_for_a_slide(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    circle = ["demo", "circle", "--engine", "tensor", "--steps", "50", "--out", str(tmp_path)]
    assert main(circle) == 0
    assert main(["demo", "mlp", "--epochs", "2", "--out", str(tmp_path)]) == 0
    pictures = sorted(tmp_path.glob("*.png"))
    assert len(pictures) == 5
    for path in pictures:
        assert _png_width(path) >= 1600, path.name


def _figure_of(draw: object, *args: object, **kwargs: object) -> object:
    """The Figure a plot_* function saves, caught on its way to the file."""
    import backproplab.viz.plots as plots

    caught: list[object] = []
    keep = plots._save
    plots._save = lambda fig, path: caught.append(fig) or Path(path)  # type: ignore[assignment]
    try:
        draw(*args, **kwargs)  # type: ignore[operator]
    finally:
        plots._save = keep  # type: ignore[assignment]
    return caught[0]


def test_the_circle_surface_colours_points_by_class_with_x1_x2_axes(tmp_path: Path) -> None:
    from backproplab.viz.plots import plot_values_2d

    xs = ys = np.linspace(-2, 2, 21)
    gx, gy = np.meshgrid(xs, ys)
    surface = 1 / (1 + np.exp(4 * (gx**2 + gy**2 - 1)))  # about 1 inside the circle
    X = np.array([[0.0, 0.0], [1.5, 1.5], [0.2, -0.3], [-1.8, 0.4]])
    z = np.array([1.0, 0.0, 1.0, 0.0])
    names = ("outside", "inside")
    fig = _figure_of(
        plot_values_2d,
        xs,
        ys,
        surface,
        X,
        z,
        tmp_path / "c.png",
        title="T",
        value_label="network output",
        class_names=names,
    )
    ax, bar = fig.axes  # type: ignore[attr-defined]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("x1", "x2")
    assert bar.get_ylabel() == "network output"
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["outside", "inside"]
    faces = [tuple(c.get_facecolor()[0][:3]) for c in ax.collections[-2:]]
    assert faces == [(1.0, 1.0, 1.0), (0.0, 0.0, 0.0)]  # white and black, off the surface's scale


def test_decision_regions_fill_the_axes_and_name_the_classes(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    X = rng.uniform(-1, 1, (40, 2))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    fig = _figure_of(
        plot_function_2d,
        lambda p: (p.sum(axis=1) > 0).astype(int),
        X,
        y,
        tmp_path / "r.png",
        class_names=["below", "above"],
    )
    ax = fig.axes[0]  # type: ignore[attr-defined]
    mesh = ax.collections[0]
    cells = np.asarray(mesh.get_array())
    assert cells.size == 100 * 100 and not np.ma.is_masked(cells)  # every cell filled
    x0, x1 = ax.get_xlim()
    assert x0 >= X[:, 0].min() - 0.6 and x1 <= X[:, 0].max() + 0.6  # no band beyond the grid
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["below", "above"]


def test_gradient_check_legend_swatches_match_the_bars(tmp_path: Path) -> None:
    report = compare_gradients(_loss, _forgot_tanh, W, X, names=["W", "x"])
    ax = gradient_check_figure(report).axes[0]
    bars = {
        (
            round(p.get_facecolor()[0], 6),
            round(p.get_facecolor()[1], 6),
            round(p.get_facecolor()[3], 6),
        )
        for p in ax.patches
    }
    legend = ax.get_legend()
    swatches = [h for h in legend.legend_handles if h.__class__.__name__ == "Rectangle"]
    shown = {
        (
            round(s.get_facecolor()[0], 6),
            round(s.get_facecolor()[1], 6),
            round(s.get_facecolor()[3], 6),
        )
        for s in swatches
    }
    assert shown == bars  # one swatch per kind of bar, in its colour and shade, and no other
    texts = [t.get_text() for t in legend.get_texts()]
    assert texts == [
        "manual vs automatic tolerance (rtol 1e-09)",
        "manual vs automatic: passed",
        "manual vs automatic: FAILED",
        "automatic vs numeric tolerance (rtol 0.001)",
        "automatic vs numeric: passed",
    ]
    # One tolerance line per comparison, across that comparison's bars only.
    from matplotlib.collections import LineCollection

    lines = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert len(lines) == 2
    bar_x = [(p.get_x(), p.get_x() + p.get_width()) for p in ax.patches]
    for kind, collection in enumerate(lines):
        for row, segment in enumerate(collection.get_segments()):
            left, right = bar_x[kind * 2 + row]
            assert left - 0.05 <= segment[0][0] and segment[1][0] <= right + 0.05
