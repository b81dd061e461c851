"""``backproplab check``, run in-process: its table and its exit codes 0, 1 and 2."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from backproplab.nn.manual import ManualBackprop
from backproplab.viz.cli import main
from backproplab.viz.cmd_check import DEFAULT_BETA, build_check

PARAMS = ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"]
PARAMS += ["layers.2.weight", "layers.2.bias"]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str], str]:
    code = main(["check", *argv])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def test_the_issues_example_agrees(capsys: pytest.CaptureFixture[str]) -> None:
    argv = "--hidden 16,16 --activation tanh --loss cross-entropy --softmax --reg l2 --beta 0.01"
    code, out, err = _run([*argv.split(), "--dropout", "0.2"], capsys)
    assert (code, err) == (0, "")
    assert out[0] == (
        "MLP(4, 3, hid_sizes=[16, 16], activation='tanh', is_softmax=True, reg='l2', "
        "beta=0.01, layer_dropout=0.2): cross-entropy + penalty, batch 8, float64"
    )
    assert out[1].split()[0] == "parameter"
    assert [line.split()[0] for line in out[2:8]] == PARAMS
    assert [line.split()[1] for line in out[2:8]] == ["4×16", "16", "16×16", "16", "16×3", "3"]
    assert all(line.endswith("ok") for line in out[2:8])
    assert out[-2].startswith("tolerance: manual vs automatic atol 1e-12 rtol 1e-09")
    assert out[-1] == "all gradients agree"


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--activation", "relu", "--loss", "sum-sq-error", "--no-bias", "--dropout", "0.5"],
        ["--hidden", "", "--activation", "none", "--reg", "l1", "--batch", "1"],
        ["--hidden", "5", "--loss", "cross-entropy", "--seed", "7"],
    ],
    ids=["defaults", "relu-no-bias-dropout", "no-hidden-l1-batch-1", "ce-without-softmax"],
)
def test_other_configurations_agree(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(argv, capsys)
    assert code == 0 and out[-1] == "all gradients agree"


def test_float32_uses_the_float32_tolerance(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["--float32", "--activation", "tanh", "--reg", "l2"], capsys)
    assert code == 0
    assert out[0].endswith("float32")
    assert out[-2].startswith("tolerance: manual vs automatic atol 1e-06 rtol 0.0001")


def test_reg_without_beta_takes_the_default(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["--reg", "l1"], capsys)
    assert code == 0 and f"reg='l1', beta={DEFAULT_BETA:g}" in out[0]


def test_a_wrong_formula_exits_1_and_names_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # l2's gradient without its factor 2: only the weights are wrong.
    monkeypatch.setattr(ManualBackprop, "l2_grad", lambda self, W, beta: beta * W)
    code, out, err = _run(["--activation", "tanh", "--reg", "l2", "--beta", "0.1"], capsys)
    assert (code, err) == (1, "")
    failed = [line.split()[0] for line in out[2:8] if line.endswith("FAIL")]
    assert failed == ["layers.0.weight", "layers.1.weight", "layers.2.weight"]
    assert out[-1].startswith("FAILED: layers.0.weight: your gradient is wrong at [")
    assert "layers.2.weight: your gradient is wrong at [" in out[-1]
    assert "bias" not in out[-1]


def test_a_forgotten_activation_derivative_exits_1(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ManualBackprop, "activation_grad", lambda self, grad_a, z, a, name: grad_a)
    code, out, _ = _run(["--activation", "sigmoid"], capsys)
    assert code == 1
    assert out[-1].startswith("FAILED: ")
    assert all(f"{name}: your gradient is wrong at [" in out[-1] for name in PARAMS)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--hidden", "16,x"], "argument --hidden: '16,x' is not a comma-separated list"),
        (["--hidden", "16,0"], "argument --hidden: layer widths must be positive"),
        (["--activation", "gelu"], "argument --activation: invalid choice: 'gelu'"),
        (["--loss", "bce"], "argument --loss: invalid choice: 'bce'"),
        (["--reg", "l3"], "argument --reg: invalid choice: 'l3'"),
        (["--beta", "0.1"], "--beta needs --reg l1 or --reg l2"),
        (["--reg", "l2", "--beta", "-1"], "argument --beta: must be a finite number >= 0"),
        (["--reg", "l2", "--beta", "nan"], "argument --beta: must be a finite number >= 0"),
        (["--dropout", "1"], "argument --dropout: must be a fraction in [0, 1), got 1"),
        (["--dropout", "x"], "argument --dropout: 'x' is not a number"),
        (["--hidden", "", "--dropout", "0.5"], "--dropout applies to hidden layers"),
        (["--seed", "-1"], "argument --seed: must be an integer >= 0, got -1"),
        (["--batch", "0"], "argument --batch: must be an integer in [1, 10001), got 0"),
        (["--batch", "10001"], "argument --batch: must be an integer in [1, 10001), got 10001"),
        (
            ["--hidden", "100000,100000"],
            # refused before the 75 GiB it would ask for
            "--hidden 100000,100000 gives a network of 10,000,900,003 parameters; the check "
            "takes at most 100,000",
        ),
        (["--batch", "two"], "argument --batch: 'two' is not an integer"),
        (["--frobnicate"], "unrecognized arguments: --frobnicate"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(argv, capsys)
    assert code == 2 and out == []
    assert err.count("\n") == 1 and "Traceback" not in err
    # argparse reports an unknown option from the top-level parser, the rest from check's own.
    prog = "backproplab" if message.startswith("unrecognized") else "backproplab check"
    assert err.startswith(f"{prog}: error: ")
    assert message in err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["--help"], capsys)
    assert code == 0 and "--dropout P" in "\n".join(out)


def test_the_batch_is_seeded_and_the_biases_are_not_zero() -> None:
    model, x, y = build_check([3], "tanh", "cross-entropy", seed=4, batch=6)
    again, x2, y2 = build_check([3], "tanh", "cross-entropy", seed=4, batch=6)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    assert x.shape == (6, 4) and y.shape == (6,) and set(y) <= {0, 1, 2}
    for layer, twin in zip(model.layers, again.layers, strict=True):
        np.testing.assert_array_equal(layer.bias.data, twin.bias.data)
        assert np.all(layer.bias.data != 0.0)


def test_the_console_script_runs_check() -> None:
    # Through a real process once: the subcommand is registered in viz.cli's COMMANDS.
    done = subprocess.run(
        [sys.executable, "-m", "backproplab.viz.cli", "check", "--hidden", "4", "--batch", "3"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "all gradients agree"
