"""The ``backproplab demo`` command line, run in-process, and the pictures it draws."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import backproplab.viz.cmd_demo as cmd_demo
import numpy as np
import pytest
from backproplab.nn.seed_circle import circle_lines
from backproplab.nn.seed_relu import relu_numpy_reference
from backproplab.viz.cli import main
from backproplab.viz.plots import plot_function_2d, plot_loss_curve

PNG = b"\x89PNG\r\n\x1a\n"


def _is_png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG and path.stat().st_size > 1000


def _no_matplotlib(monkeypatch: pytest.MonkeyPatch) -> None:
    # `import matplotlib` raises ImportError while sys.modules holds None for it.
    monkeypatch.setitem(sys.modules, "matplotlib", None)


# -- demo circle ------------------------------------------------------------------------------


@pytest.mark.parametrize(("engine", "steps"), [("tensor", 300), ("value", 100)])
def test_circle_prints_its_write_ups_numbers_under_a_header(
    engine: str, steps: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "circle", "--engine", engine, "--steps", str(steps)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("the circle classifier: a 2-4-1 sigmoid network")
    assert "learning rate 10" in out[1] and "mean squared error" in out[1]
    assert out[2] == "untrained output at (0, 0): 0.5588"
    assert out[3].split() == ["step", "loss"]
    rows = [line.split() for line in out[4:]]
    expected, _ = circle_lines(engine, steps)  # the write-up's own lines: "1 0.2919" ...
    assert rows == [line.split() for line in expected[1:]]
    assert rows[:2] == [["1", "0.2919"], ["100", "0.1420"]]
    assert len({len(line) for line in out[3:]}) == 1  # aligned columns


def test_circle_writes_its_pictures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "new" / "folder"
    argv = ["demo", "circle", "--engine", "tensor", "--steps", "200", "--out", str(out_dir)]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    for name in ("circle_loss.png", "circle_function.png"):
        assert _is_png(out_dir / name)
        assert any(line.startswith(f"wrote {out_dir / name}: ") for line in lines)


def test_circle_without_matplotlib_says_how_to_get_pictures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_matplotlib(monkeypatch)
    rc = main(["demo", "circle", "--engine", "tensor", "--steps", "100", "--out", str(tmp_path)])
    assert rc == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == (
        "pictures skipped: matplotlib is not installed (to get them: "
        "pip install 'backproplab[plot]')"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_picture_that_cannot_be_written_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_file = tmp_path / "taken"
    a_file.write_text("not a folder")
    rc = main(["demo", "circle", "--engine", "tensor", "--steps", "100", "--out", str(a_file)])
    assert rc == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("backproplab: error: cannot create the picture folder")


# -- demo relu --------------------------------------------------------------------------------


@pytest.mark.slow
def test_relu_prints_the_trajectory_of_the_hand_derived_reference(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["demo", "relu", "--seed", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    ref = relu_numpy_reference(1)
    assert lines[0].startswith("the random ReLU regression: ")
    assert "seed 1" in lines[1]
    assert lines[2].split() == ["step", "loss"]
    losses = lines[3 : 3 + len(ref.losses)]
    assert len({len(line) for line in lines[2 : 3 + len(ref.losses)]}) == 1  # aligned
    for line, (i, loss) in zip(losses, ref.losses, strict=True):
        step, value = line.split()
        assert int(step) == i
        assert float(value) == pytest.approx(loss, abs=5e-5)  # printed to 4 decimals
    rest = lines[3 + len(ref.losses) :]
    assert rest[0] == "after training, prediction minus target for the first five samples:"
    assert rest[1].split() == ["sample", "error"]
    errors = [float(line.split()[1]) for line in rest[2:]]
    np.testing.assert_allclose(errors, ref.errors.ravel(), rtol=1e-4)


# -- demo mlp ---------------------------------------------------------------------------------


def _final_accuracy(out: str) -> float:
    match = re.search(r"^final validation accuracy: (\d+\.\d)%$", out, re.MULTILINE)
    assert match, out
    return float(match.group(1))


@pytest.mark.parametrize("data", ["moons", "spirals"])
def test_mlp_reaches_95_percent(data: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "mlp", "--data", data]) == 0
    out = capsys.readouterr().out
    assert _final_accuracy(out) >= 95.0
    header = next(line for line in out.splitlines() if line.startswith("epoch"))
    assert header.split() == ["epoch", "train", "loss", "train", "acc", "val", "loss", "val", "acc"]


def test_mlp_epochs_and_pictures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "mlp", "--epochs", "3", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if re.match(r"^\s+\d+ ", line)]
    assert [int(r[0]) for r in rows] == [1, 2, 3]
    assert "trained 3 epochs" in out
    assert _is_png(tmp_path / "mlp_moons_loss.png")
    assert _is_png(tmp_path / "mlp_moons_function.png")


# -- the tour ---------------------------------------------------------------------------------


def test_tour_runs_everything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cmd_demo, "TOUR_CIRCLE_STEPS", 100)
    monkeypatch.setattr(cmd_demo, "demo_relu", lambda seed: print("relu ran") or 0)
    assert main(["demo", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    headings = [line for line in out.splitlines() if line.startswith("== ")]
    assert [h[:7] for h in headings] == [f"== {i}/6 " for i in range(1, 7)]
    names = [
        "the engine",
        "the neuron",
        "the same neuron's backward pass",
        "the circle classifier",
        "the random ReLU",
        "the MLP classifier",
    ]
    assert all(h[7:].startswith(n) for h, n in zip(headings, names, strict=True))
    assert "1. A neuron on scalar Values" in out  # autograd.demo
    assert "untrained output at (0, 0): 0.5588" in out and "\n 100  0.1420\n" in out
    assert "relu ran" in out
    assert "final validation accuracy:" in out
    assert re.search(r"^tour done in \d+\.\d s$", out, re.MULTILINE)
    assert re.search(r"^  the circle classifier +\d+\.\d$", out, re.MULTILINE)  # its time
    listed = out.split("\npictures:\n")[1].splitlines()
    assert listed[0].split() == ["file", "what", "it", "shows"]
    for name in ("circle_loss", "circle_function", "mlp_moons_loss", "mlp_moons_function"):
        assert _is_png(tmp_path / f"{name}.png")
        assert any(line.split()[0] == str(tmp_path / f"{name}.png") for line in listed)
    page = tmp_path / "backward.html"
    assert 'id="backprop-trace"' in page.read_text(encoding="utf-8")
    assert any(line.split()[0] == str(page) for line in listed)
    drawn = "neuron.svg" if shutil.which("dot") else "neuron.gv"
    assert (tmp_path / drawn).is_file()
    assert any(line.split()[0] == str(tmp_path / drawn) for line in listed)


# -- bad arguments ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "the following arguments are required: COMMAND"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["demo", "nope"], "invalid choice: 'nope'"),
        (["demo", "circle", "--steps", "0"], "--steps: must be an integer >= 1, got 0"),
        (["demo", "circle", "--steps", "ten"], "--steps: 'ten' is not an integer"),
        (["demo", "circle", "--engine", "gpu"], "--engine: invalid choice: 'gpu'"),
        (["demo", "relu", "--seed", "-1"], "--seed: must be an integer in [0, 4294967296)"),
        (["demo", "relu", "--seed", "4294967296"], "--seed: must be an integer in"),
        (["demo", "mlp", "--data", "iris"], "--data: invalid choice: 'iris'"),
        (["demo", "mlp", "--epochs", "0"], "--epochs: must be an integer >= 1, got 0"),
        (["demo", "relu", "--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert captured.err.startswith("backproplab")
    assert message in captured.err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "mlp", "--help"]) == 0
    assert "--data {moons,spirals}" in capsys.readouterr().out


def test_the_exit_code_reaches_the_shell() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "backproplab.viz.cli", "demo", "circle", "--steps", "-5"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "backproplab demo circle: error: argument --steps: must be an integer >= 1, got -5 "
        "(see 'backproplab demo circle --help')"
    ]


# -- viz.plots --------------------------------------------------------------------------------


def test_plot_loss_curve_takes_losses_or_a_history(tmp_path: Path) -> None:
    assert plot_loss_curve([3.0, 2.0, 1.0], tmp_path / "a.png") == tmp_path / "a.png"
    history = [{"epoch": 1, "train_loss": 1.0, "val_loss": 1.5}, {"epoch": 2, "train_loss": 0.5}]
    history[1]["val_loss"] = 0.7
    plot_loss_curve(history, tmp_path / "b.png", log=False)
    plot_loss_curve([1.0, 0.0], tmp_path / "c.png")  # a zero loss: linear axis, no error
    assert all(_is_png(tmp_path / f"{n}.png") for n in "abc")
    with pytest.raises(ValueError, match="empty"):
        plot_loss_curve([], tmp_path / "d.png")
    with pytest.raises(ValueError, match="train_loss"):
        plot_loss_curve([{"epoch": 1}], tmp_path / "d.png")


def test_plot_function_2d(tmp_path: Path) -> None:
    X = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    y = np.array([0, 1, 1])
    seen: list[tuple[int, ...]] = []

    def predict(points: np.ndarray) -> np.ndarray:
        seen.append(points.shape)
        return (points.sum(axis=1) > 1).astype(int)

    plot_function_2d(predict, X, y, tmp_path / "f.png", resolution=30)
    assert seen == [(900, 2)]
    assert _is_png(tmp_path / "f.png")
    with pytest.raises(ValueError, match="one value per point"):
        plot_function_2d(lambda p: np.zeros(3), X, y, tmp_path / "g.png")
    with pytest.raises(ValueError, match=r"X must have shape \(n, 2\)"):
        plot_function_2d(predict, np.zeros((3, 3)), y, tmp_path / "g.png")


def test_plots_without_matplotlib_say_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_matplotlib(monkeypatch)
    with pytest.raises(ImportError, match=r"pip install 'backproplab\[plot\]'"):
        plot_loss_curve([1.0], tmp_path / "x.png")


@pytest.mark.parametrize("demo", [["circle", "--engine", "tensor"], ["mlp"]])
def test_an_unwritable_out_fails_before_any_training(
    demo: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    rc = main(["demo", *demo, "--out", str(blocker / "pictures")])
    assert rc == 1
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing trained, nothing printed
    assert captured.err.count("\n") == 1
    assert "cannot create the picture folder" in captured.err


# -- names a learner knows --------------------------------------------------------------------

NAMES = ("the circle classifier", "the random ReLU regression", "the MLP classifier")


@pytest.mark.parametrize(
    "argv", [["--help"], ["demo", "--help"], ["demo", "circle", "--help"], ["graph", "--help"]]
)
def test_help_names_the_networks_and_never_says_seed(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert "seed 00" not in text.lower()
    if argv[0] != "graph":
        wanted = NAMES if argv[-1] == "--help" and len(argv) <= 2 else NAMES[:1]
        for name in wanted:
            assert name.lower() in text.lower(), name


def test_demo_output_never_says_seed_00x(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "circle", "--engine", "tensor", "--steps", "100"]) == 0
    assert main(["demo", "mlp", "--epochs", "2"]) == 0
    out = capsys.readouterr().out
    assert "seed 00" not in out.lower()
    assert out.count("the circle classifier: ") == 1 and "the MLP classifier on two moons" in out
