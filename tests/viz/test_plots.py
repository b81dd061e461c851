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
    levels = sorted(float(line.get_ydata()[0]) for line in ax.get_lines())
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
        assert f"wrote {path}" in lines
        assert_picture(path)
