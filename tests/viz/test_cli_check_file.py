"""``backproplab check FILE.py``: a learner's own derivation against the engine and central
differences. The right one passes; each mistake fails with its words; a file that cannot be
checked is refused in one line, exit code 2, no traceback.

Every case starts from docs/my_backprop.py (the file docs/reference.md shows) and changes one line,
as a learner's slip would.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from backproplab.viz.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "my_backprop.py"
TEXT = EXAMPLE.read_text()


def _file(tmp_path: Path, text: str, name: str = "my_backprop.py") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _mutated(tmp_path: Path, old: str, new: str) -> str:
    assert TEXT.count(old) == 1, old  # the mutation applies to exactly one place
    return _file(tmp_path, TEXT.replace(old, new))


def _check(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str], str]:
    code = main(["check", *argv])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def test_the_documented_file_is_the_one_docs_show() -> None:
    reference = (EXAMPLE.parents[0] / "reference.md").read_text()
    assert TEXT in reference


def test_a_right_derivation_passes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _check([str(EXAMPLE)], capsys)
    assert (code, err) == (0, "")
    assert out[0] == f"{EXAMPLE}: 4 parameters (W1, b1, W2, b2), batch 16"
    assert [line.split()[0] for line in out[2:6]] == ["W1", "b1", "W2", "b2"]
    assert all(line.endswith("ok") for line in out[2:6])
    assert out[-1] == "all gradients agree"


def test_the_seed_draws_another_example(capsys: pytest.CaptureFixture[str]) -> None:
    first = _check([str(EXAMPLE), "--seed", "1"], capsys)
    second = _check([str(EXAMPLE), "--seed", "2"], capsys)
    assert first[0] == second[0] == 0 and first[1][2] != second[1][2]


@pytest.mark.parametrize(
    ("old", "new", "failed", "words"),
    [
        (
            '"b2": d_out.sum(axis=0)',
            '"b2": d_out',
            ["b2"],
            "b2: your gradient has shape (16, 3), b2 has shape (3,): it looks like the bias "
            "gradient was not summed over the batch of 16 (sum over axis 0)",
        ),
        (
            '"W1": x.T @ d_z1',
            '"W1": d_z1.T @ x',
            ["W1"],
            "W1: your gradient has shape (8, 4), W1 has shape (4, 8): it is the right gradient, "
            "transposed (use its .T)",
        ),
        (
            "d_out = 2 * (out - y) / out.size",
            "d_out = 2 * (out - y) / 3",
            ["W1", "b1", "W2", "b2"],
            "W1: your gradient is 16 times the engine's, the batch size: the 1/16 of a mean over "
            "the batch is missing",
        ),
        (
            "d_out = 2 * (out - y) / out.size",
            "d_out = (out - y) / out.size",
            ["W1", "b1", "W2", "b2"],
            "W1: your gradient is half the engine's: a factor 2 is missing (d(x²)/dx is 2x)",
        ),
        (
            '"W2": h.T @ d_out',
            '"W2": -h.T @ d_out',
            ["W2"],
            "W2: your gradient is the engine's with the wrong sign (-1 times it)",
        ),
        (
            '        "b1": d_z1.sum(axis=0),\n',
            "",
            ["b1"],
            "b1: no gradient was given",
        ),
        (
            "d_z1 = d_h * (1 - h**2)",
            "d_z1 = d_h",
            ["W1", "b1"],
            "W1: your gradient is wrong at [",
        ),
    ],
    ids=["bias-not-summed", "transposed", "times-batch", "half", "sign", "missing", "wrong"],
)
def test_each_mistake_fails_with_its_words(
    old: str,
    new: str,
    failed: list[str],
    words: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = _check([_mutated(tmp_path, old, new)], capsys)
    assert (code, err) == (1, "")
    assert [line.split()[0] for line in out[2:6] if line.endswith("FAIL")] == failed
    assert out[-1].startswith("FAILED: " + words)
    for name in failed:
        assert f"{name}: " in out[-1]


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    code, out, err = _check(argv, capsys)
    assert code == 2 and out == []
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("backproplab check: error: ")
    return err.strip()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "def loss(p, x, y):\n    return 0\n",
            "defines no example(rng) -> (params, x, y); no grads",
        ),
        ("def example(rng)\n    pass\n", ", line 1: expected ':'"),
        (
            "import no_such_module_here\n",
            "running it raised ModuleNotFoundError: No module named 'no_such_module_here' (line 1)",
        ),
        (
            TEXT.replace("def grads(params, x, y):", "def grads(params):"),
            ": grads must take 3 arguments, as grads(params, x, y); it is grads(params)",
        ),
        (
            TEXT.replace("def example(rng):", "def example():"),
            ": example must take 1 argument, as example(rng); it is example()",
        ),
        (
            TEXT.replace("    return params, x, y", "    return params, x"),
            ": example(rng) returned a tuple of 2; it must return (params, x, y)",
        ),
        (
            TEXT.replace("    return params, x, y", "    return [params, x, y]"),
            ": example(rng) returned a list; it must return (params, x, y)",
        ),
        (
            TEXT.replace(
                "return ((out - y) ** 2).mean()", "return float(((out - y) ** 2).mean().data)"
            ),
            ": loss(params, x, y) returned a float: it must compute the loss with backproplab",
        ),
        (
            TEXT.replace("return ((out - y) ** 2).mean()", "return (out - y) ** 2"),
            ": loss(params, x, y) returned a Tensor of shape (16, 3): it must return a scalar",
        ),
        (
            TEXT + "\n\n_right = grads\n\n\ndef grads(params, x, y):\n"
            "    return list(_right(params, x, y).values())\n",
            ": grads(params, x, y) returned a list: it must return a dict {name: gradient} for "
            "W1, b1, W2, b2",
        ),
        (
            TEXT.replace('"b2": d_out.sum(axis=0),', '"b2": d_out.sum(axis=0), "W3": 0.0,'),
            ": grads(params, x, y) returned a gradient for W3, which params does not have",
        ),
        (
            TEXT.replace('d_h = d_out @ params["W2"].T', 'd_h = d_out @ params["W3"].T'),
            ": KeyError: 'W3' (line 31, in grads)",
        ),
        (
            TEXT.replace(
                "    x = rng.standard_normal((16, 4))", "    x = rng.standard_normal((16, 5))"
            ),
            ": ValueError: MatMul cannot take shapes (16, 5) and (4, 8)",
        ),
        (
            TEXT.replace('"W1": rng.normal(0.0, 0.5, (4, 8)),', '"W1": "weights",'),
            ": params['W1'] is a str, not an array of numbers",
        ),
    ],
    ids=[
        "no-function",
        "syntax",
        "import",
        "grads-signature",
        "example-signature",
        "example-pair",
        "example-list",
        "loss-float",
        "loss-not-scalar",
        "grads-list",
        "grads-unknown",
        "grads-raises",
        "loss-raises",
        "params-text",
    ],
)
def test_a_file_that_cannot_be_checked_is_refused_in_one_line(
    text: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _file(tmp_path, text)
    err = _refused([path], capsys)
    assert f"error: {path}" in err and message in err


def test_no_such_file_and_not_python(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / "nowhere.py")
    assert _refused([missing], capsys).endswith(f"{missing}: no such file")
    assert _refused([str(tmp_path)], capsys).endswith(f"{tmp_path}: not a file")
    text = _file(tmp_path, TEXT, name="my_backprop.txt")
    assert _refused([text], capsys).endswith(f"{text}: not a Python file (.py)")


def test_the_networks_options_do_not_apply_to_a_file(capsys: pytest.CaptureFixture[str]) -> None:
    err = _refused([str(EXAMPLE), "--hidden", "3", "--float32"], capsys)
    assert "--hidden, --float32 describe the command's own network" in err


def test_a_main_block_does_not_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _file(tmp_path, TEXT + '\nif __name__ == "__main__":\n    raise SystemExit(7)\n')
    assert _check([path], capsys)[0] == 0


def test_a_file_can_import_its_neighbours(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "my_layers.py").write_text("SCALE = 2\n")
    path = _file(tmp_path, "import my_layers\n" + TEXT)
    assert _check([path], capsys)[0] == 0
    assert str(tmp_path) not in sys.path  # put back as it was


def test_through_a_real_process(tmp_path: Path) -> None:
    bad = _mutated(tmp_path, '"b2": d_out.sum(axis=0)', '"b2": d_out')
    done = subprocess.run(
        [sys.executable, "-m", "backproplab.viz.cli", "check", bad],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and done.stderr == ""
    assert "b2: your gradient has shape (16, 3)" in done.stdout.splitlines()[-1]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            '"b1": rng.normal(0.0, 0.1, 8),',
            '"b1": rng.normal(0.0, 0.1, 8) * float("inf"),',
            ": a gradient check needs finite numbers: params['b1'] holds ",
        ),
        (
            "    x = rng.standard_normal((16, 4))",
            '    x = rng.standard_normal((16, 4))\n    x[2, 1] = float("nan")',
            ": a gradient check needs finite numbers: x holds nan at [2, 1]",
        ),
    ],
    ids=["params-infinite", "x-nan"],
)
def test_numbers_that_are_not_finite_are_refused_in_one_line(
    old: str, new: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # NaN against NaN agrees by compare's rule: the check would have compared nothing
    path = _mutated(tmp_path, old, new)
    err = _refused([path], capsys)
    assert f"error: {path}" in err and message in err and "Traceback" not in err
