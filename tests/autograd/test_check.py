"""gradcheck, compare_gradients and the comparison they share.

A checker is only worth something if it fails when it should, so every "passes" test here has a
twin with a deliberately wrong gradient that must be caught and reported legibly.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from html.parser import HTMLParser

import numpy as np
import numpy.testing as npt
import pytest
from backproplab.autograd import (
    OPS,
    GradcheckError,
    Op,
    Tensor,
    Value,
    compare_gradients,
    gradcheck,
    numerical_gradient,
)
from backproplab.autograd.check import compare

FAILURE = re.compile(
    r"input (?P<input>\d+)(?: at index \((?P<index>[\d, ]+)\))?: "
    r"engine (?P<engine>\S+) vs numeric (?P<numeric>\S+)"
)


def parse_failure(message: str) -> dict[str, object]:
    match = FAILURE.search(message)
    assert match, f"unexpected gradcheck message: {message}"
    index = match["index"]
    return {
        "input": int(match["input"]),
        "index": tuple(int(i) for i in index.split(",") if i.strip()) if index else None,
        "engine": float(match["engine"]),
        "numeric": float(match["numeric"]),
    }


@pytest.fixture
def forgetful_cube() -> Iterator[type[Op]]:
    """x**3 whose backward drops the factor 3: the engine then reports one third of the truth.

    Defined per test and removed from OPS afterwards, so the op-table test never sees it."""
    before = dict(OPS)

    class ForgetfulCube(Op):
        """out = x ** 3;  dx = g * x ** 2   (wrong on purpose: the 3 is missing)"""

        @staticmethod
        def forward(xp, x):
            return x * x * x

        @staticmethod
        def backward(xp, g, out, x):
            return (g * x * x,)

    yield ForgetfulCube
    OPS.clear()
    OPS.update(before)


# --- gradcheck passes on correct gradients ------------------------------------------------------


def test_gradcheck_passes_on_values() -> None:
    assert gradcheck(lambda x, y: (x * y).tanh() + x.exp() / y, 0.3, -1.2) is True
    assert gradcheck(lambda x: x.sigmoid() * x**3, Value(0.7)) is True


def test_gradcheck_passes_on_tensors() -> None:
    x = np.array([0.5, -1.0, 2.0])
    w = np.array([[1.0, 2.0, -0.5], [0.3, -0.4, 0.8]])
    assert gradcheck(lambda x, w: (w @ x).tanh().sum(), x, w) is True
    assert gradcheck(lambda x: x.log_softmax().max(), Tensor(x)) is True


def test_gradcheck_passes_on_non_scalar_tensor_outputs() -> None:
    # A non-scalar output is reduced with fixed weights, so every element's gradient counts.
    x = np.array([[0.5, -1.0], [2.0, 0.1]])
    assert gradcheck(lambda x: x.softmax(axis=1), x) is True
    assert gradcheck(lambda x, b: (x @ x.T + b).tanh(), x, np.array([0.2, -0.3])) is True


def test_gradcheck_passes_when_f_ignores_an_input() -> None:
    assert gradcheck(lambda x, unused: x * x, 0.5, 3.0) is True


# --- gradcheck fails on wrong gradients ------------------------------------------------------


def test_gradcheck_names_input_index_and_both_values(forgetful_cube) -> None:
    # Input 0 (a) gets a correct gradient; input 1 (x) a third of it, worst where |x| is largest.
    a = np.ones(3)
    x = np.array([0.5, -2.0, 1.0])
    with pytest.raises(GradcheckError) as info:
        gradcheck(lambda a, x: (a * Tensor.apply(forgetful_cube, x)).sum(), a, x)
    failure = parse_failure(str(info.value))
    assert failure["input"] == 1
    assert failure["index"] == (1,)
    assert failure["engine"] == pytest.approx(4.0, rel=1e-6)  # x**2 at -2
    assert failure["numeric"] == pytest.approx(12.0, rel=1e-6)  # 3 x**2 at -2


def test_gradcheck_failure_on_a_2d_input_names_a_2d_index(forgetful_cube) -> None:
    x = np.array([[0.5, -1.0], [1.0, 3.0]])
    with pytest.raises(GradcheckError) as info:
        gradcheck(lambda x: Tensor.apply(forgetful_cube, x), x)  # non-scalar output
    failure = parse_failure(str(info.value))
    assert failure["input"] == 0
    assert failure["index"] == (1, 1)
    # Whatever weights reduced the output, the engine is off by exactly the dropped factor.
    assert failure["numeric"] / failure["engine"] == pytest.approx(3.0, rel=1e-6)


def test_gradcheck_failure_on_a_value(forgetful_cube) -> None:
    with pytest.raises(GradcheckError) as info:
        gradcheck(lambda x, y: Value.apply(forgetful_cube, x) + y, 0.7, 2.0)
    failure = parse_failure(str(info.value))
    assert failure["input"] == 0 and failure["index"] is None
    assert failure["engine"] == pytest.approx(0.49, rel=1e-6)
    assert failure["numeric"] == pytest.approx(1.47, rel=1e-6)


def test_gradcheck_error_is_an_assertion_error() -> None:
    # So a bare gradcheck(...) inside a test fails that test like an assert would.
    assert issubclass(GradcheckError, AssertionError)


# --- compare_gradients --------------------------------------------------------------------------

W0 = np.array([[0.1, -0.2, 0.3], [0.4, 0.5, -0.6]])
X0 = np.array([1.0, 2.0, -1.0])
B0 = np.array([0.05, -0.1])
T0 = np.array([0.3, -0.2])


def layer_loss(w, x, b):
    """L = sum((tanh(W x + b) - t)**2) on the engine."""
    return (((w @ x + b).tanh() - T0) ** 2).sum()


def by_hand(w, x, b):
    # dL/dy = 2 (y - t); dy/dz = 1 - y**2; z = W x + b gives dW = dz x^T, dx = W^T dz, db = dz.
    y = np.tanh(w @ x + b)
    dz = 2 * (y - T0) * (1 - y**2)
    return np.outer(dz, x), w.T @ dz, dz


def forgot_tanh_derivative(w, x, b):
    y = np.tanh(w @ x + b)
    dz = 2 * (y - T0)
    return np.outer(dz, x), w.T @ dz, dz


def forgot_x_in_dw(w, x, b):
    _, dx, db = by_hand(w, x, b)
    return np.outer(db, np.ones_like(x)), dx, db


def test_compare_gradients_accepts_a_correct_derivation() -> None:
    report = compare_gradients(layer_loss, by_hand, W0, X0, B0, names=["W", "x", "b"])
    assert report.ok
    assert report.failures == []
    assert [r.name for r in report.rows] == ["W", "x", "b"]
    assert [r.shape for r in report.rows] == [(2, 3), (3,), (2,)]
    assert str(report).splitlines()[-1] == "all gradients agree"


def test_compare_gradients_flags_a_missing_activation_derivative() -> None:
    report = compare_gradients(
        layer_loss, forgot_tanh_derivative, W0, X0, B0, names=["W", "x", "b"]
    )
    assert not report.ok
    assert report.failures == ["W", "x", "b"]
    verdict = str(report).splitlines()[-1]
    assert verdict.startswith("FAILED")
    for name in ("W", "x", "b"):
        assert f"{name}: your gradient is wrong at [" in verdict
    # The engine itself is right: only the manual column fails.
    assert "automatic vs numeric" not in verdict
    assert all(row.numeric.ok for row in report.rows)


def test_compare_gradients_names_only_the_failing_input() -> None:
    report = compare_gradients(layer_loss, forgot_x_in_dw, W0, X0, B0, names=["W", "x", "b"])
    assert report.failures == ["W"]
    verdict = str(report).splitlines()[-1]
    assert "W: your gradient is wrong at [" in verdict
    assert "x:" not in verdict and "b:" not in verdict
    table = str(report).splitlines()
    (w_line,) = [line for line in table if line.startswith("W ")]
    assert w_line.endswith("FAIL")


def test_compare_gradients_flags_a_wrong_engine(forgetful_cube) -> None:
    # The hand derivation agrees with the (wrong) engine; only central differences can tell.
    report = compare_gradients(
        lambda x: Tensor.apply(forgetful_cube, x).sum(),
        lambda x: x**2,  # a lone gradient for a lone input is allowed
        np.array([0.5, -2.0]),
        names=["x"],
    )
    assert report.failures == ["x"]
    (row,) = report.rows
    assert row.manual.ok and not row.numeric.ok
    assert "x (automatic vs numeric at [1]" in str(report).splitlines()[-1]


def test_compare_gradients_on_scalars_with_default_names() -> None:
    def f(x, y):
        return (x * y).tanh()

    def manual(x, y):
        d = 1 - math.tanh(x * y) ** 2
        return d * y, d * x

    report = compare_gradients(f, manual, Value(0.3, label="x"), 1.5)
    assert report.ok
    assert [r.name for r in report.rows] == ["x", "input 1"]
    assert [r.shape for r in report.rows] == [(), ()]


def test_compare_gradients_takes_names_from_tensors() -> None:
    report = compare_gradients(
        layer_loss, by_hand, Tensor(W0, name="weights"), X0, Tensor(B0, name="bias")
    )
    assert [r.name for r in report.rows] == ["weights", "input 1", "bias"]


def test_manual_gradient_gets_copies() -> None:
    # A hand derivation that scribbles on its arguments must not change the engine's inputs.
    def scribbles(w, x, b):
        result = by_hand(w, x, b)
        w[...] = 0.0
        x[...] = 0.0
        return result

    assert compare_gradients(layer_loss, scribbles, W0, X0, B0).ok
    assert W0[0, 0] == 0.1 and X0[0] == 1.0


@pytest.mark.parametrize(
    ("manual", "message"),
    [
        pytest.param(lambda w, x, b: by_hand(w, x, b)[:2], r"3 gradient.*got 2", id="too-few"),
        pytest.param(lambda w, x, b: (*by_hand(w, x, b), b), r"3 gradient.*got 4", id="too-many"),
        pytest.param(lambda w, x, b: by_hand(w, x, b)[0], r"3 gradient", id="lone"),
    ],
)
def test_compare_gradients_rejects_malformed_manual_gradients(manual, message) -> None:
    with pytest.raises(ValueError, match=message):
        compare_gradients(layer_loss, manual, W0, X0, B0, names=["W", "x", "b"])


@pytest.mark.parametrize(
    ("manual", "failed", "words"),
    [
        pytest.param(
            lambda w, x, b: (by_hand(w, x, b)[0].T, *by_hand(w, x, b)[1:]),
            "W",
            "W: your gradient has shape (3, 2), W has shape (2, 3): it is the right gradient, "
            "transposed (use its .T)",
            id="transposed",
        ),
        pytest.param(
            lambda w, x, b: (*by_hand(w, x, b)[:2], 0.0),
            "b",
            "b: your gradient has shape (), b has shape (2,)",
            id="scalar-for-vector",
        ),
        pytest.param(
            lambda w, x, b: (*by_hand(w, x, b)[:2], None),
            "b",
            "b: no gradient was given",
            id="none",
        ),
        pytest.param(
            lambda w, x, b: (*by_hand(w, x, b)[:2], "db"),
            "b",
            "b: your gradient is a str, not numbers",
            id="text",
        ),
    ],
)
def test_a_malformed_manual_gradient_fails_its_row_with_its_diagnosis(
    manual, failed: str, words: str
) -> None:
    # Not an exception: the other rows are still checked, and the row says what is wrong.
    report = compare_gradients(layer_loss, manual, W0, X0, B0, names=["W", "x", "b"])
    assert report.failures == [failed]
    (row,) = [r for r in report.rows if not r.ok]
    assert row.manual is None and row.numeric.ok
    assert row.diagnosis.message == words
    assert str(report).splitlines()[-1] == f"FAILED: {words}"


def test_compare_gradients_rejects_wrong_number_of_names() -> None:
    with pytest.raises(ValueError, match="names"):
        compare_gradients(layer_loss, by_hand, W0, X0, B0, names=["W", "x"])


# --- compare: the tolerance rule both checks share ----------------------------------------------


def test_compare_shape_mismatch_raises() -> None:
    with pytest.raises(ValueError, match=re.escape("(2,) and (3,)")):
        compare([1.0, 2.0], [1.0, 2.0, 3.0], atol=1e-5, rtol=1e-3)
    with pytest.raises(ValueError):
        compare([[1.0, 2.0]], [1.0, 2.0], atol=1e-5, rtol=1e-3)  # no broadcasting


def test_compare_equal_is_ok() -> None:
    c = compare(np.array([[1.0, -2.0]]), np.array([[1.0, -2.0]]), atol=0.0, rtol=0.0)
    assert c.ok and c.max_abs == 0.0 and c.max_rel == 0.0


def test_compare_bound_is_atol_plus_rtol_times_reference() -> None:
    # |a - b| <= atol + rtol * |b|, with b (the second argument) the reference.
    assert compare([1.0], [1.25], atol=0.0, rtol=0.2).ok  # 0.25 <= 0.2 * 1.25
    assert not compare([1.25], [1.0], atol=0.0, rtol=0.2).ok  # 0.25 > 0.2 * 1.0
    assert compare([0.0], [0.5], atol=0.5, rtol=0.0).ok
    assert not compare([0.0], [0.75], atol=0.5, rtol=0.0).ok
    assert compare([0.0], [1.0], atol=0.5, rtol=0.5).ok  # the two add


def test_compare_reports_the_worst_element() -> None:
    a = np.array([[1.0, 2.0], [3.0, 4.0]])
    b = np.array([[1.0, 2.1], [3.0, 5.0]])
    c = compare(a, b, atol=1e-5, rtol=1e-3)
    assert not c.ok
    assert c.worst == (1, 1)
    assert (c.a_worst, c.b_worst) == (4.0, 5.0)
    assert c.max_abs == pytest.approx(1.0)
    assert c.max_rel == pytest.approx(1.0 / 5.0)  # relative to the largest reference element


def test_compare_worst_is_past_the_bound_not_largest_difference() -> None:
    # A big element with a large absolute error can be within rtol while a small one is not.
    c = compare([1000.5, 0.1], [1000.0, 0.2], atol=1e-5, rtol=1e-3)
    assert not c.ok and c.worst == (1,)
    assert c.max_abs == pytest.approx(0.5)


def test_compare_scalars() -> None:
    c = compare(1.0, 1.5, atol=0.0, rtol=0.0)
    assert not c.ok and c.worst == () and (c.a_worst, c.b_worst) == (1.0, 1.5)


def test_compare_empty_is_ok() -> None:
    assert compare(np.zeros((0, 3)), np.zeros((0, 3)), atol=0.0, rtol=0.0).ok


def test_compare_nan_against_a_number_fails() -> None:
    with np.errstate(invalid="ignore"):
        for a, b in (([1.0, np.nan], [1.0, 2.0]), ([1.0, 2.0], [1.0, np.nan])):
            c = compare(a, b, atol=1e-5, rtol=1e-3)
            assert not c.ok
            assert c.worst == (1,)
            assert c.max_abs == np.inf


def test_compare_nan_matching_nan_agrees() -> None:
    # compare() maps |NaN - NaN| to 0 on purpose where both sides are NaN (a gradient that is
    # NaN in the engine and in central differences alike is not a disagreement); the verdict
    # has to follow the difference it reports.
    with np.errstate(invalid="ignore"):
        c = compare([1.0, np.nan], [1.0, np.nan], atol=1e-5, rtol=1e-3)
    assert c.max_abs == 0.0
    assert c.ok


def test_compare_infinite_gradient_against_a_number_fails() -> None:
    assert not compare([np.inf], [1.0], atol=1e-5, rtol=1e-3).ok


def test_compare_number_against_an_infinite_reference_fails() -> None:
    # rtol * |inf| is an infinite allowance; a finite gradient is still no match for an infinite
    # one (the engine's gradient is the reference when compare_gradients checks a hand derivation).
    c = compare([1.0], [np.inf], atol=1e-5, rtol=1e-3)
    assert not c.ok


# --- numerical_gradient ---------------------------------------------------------------------------


def test_numerical_gradient_of_floats_and_arrays() -> None:
    def f(s, arr):
        return s * float(np.sum(arr**2))

    arr = np.array([[1.0, -2.0], [0.5, 3.0]])
    ds, darr = numerical_gradient(f, [1.5, arr])
    assert ds == pytest.approx(np.sum(arr**2), rel=1e-8)
    npt.assert_allclose(darr, 2 * 1.5 * arr, rtol=1e-7)
    npt.assert_array_equal(arr, [[1.0, -2.0], [0.5, 3.0]])  # inputs are left as they were


# --- the report in Jupyter and at the prompt ----------------------------------------------------


class _Table(HTMLParser):
    """The cells of an HTML table, row by row, and the caption."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.caption = ""
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self.rows[-1].append("")
            self._in = "cell"
        elif tag == "caption":
            self._in = "caption"

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th", "caption"):
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "cell":
            self.rows[-1][-1] += data
        elif self._in == "caption":
            self.caption += data


def test_the_report_shows_as_an_html_table_with_each_diagnosis() -> None:
    def bias_not_summed(w, x, b):
        dW, dx, db = by_hand(w, x, b)
        return dW, dx, np.stack([db, db])  # two rows where one belongs

    report = compare_gradients(layer_loss, bias_not_summed, W0, X0, B0, names=["W", "x", "b<1>"])
    page = report._repr_html_()
    assert page.startswith("<table") and page.endswith("</table>")
    table = _Table()
    table.feed(page)
    assert table.caption == report.title
    head, *rows, tolerance, verdict = table.rows
    assert head[:2] == ["input", "shape"]
    assert [r[0] for r in rows] == ["W", "x", "b<1>"]  # escaped in the page, read back as text
    assert "<1>" not in page
    assert [r[6] for r in rows] == ["ok", "ok", "FAIL"]
    assert rows[2][7] == report.rows[2].diagnosis.message
    assert rows[2][7].startswith("b<1>: your gradient has shape (2, 2), b<1> has shape (2,)")
    assert rows[0][7] == ""
    assert tolerance == [report.tolerance]
    assert verdict == ["FAILED: b<1>"]


def test_the_repr_is_the_table_and_a_row_reads_in_one_line() -> None:
    report = compare_gradients(layer_loss, forgot_x_in_dw, W0, X0, B0, names=["W", "x", "b"])
    assert repr(report) == str(report)
    assert "GradientRow(" not in repr(report)
    assert repr(report.rows[1]) == "<GradientRow x 3: ok>"
    assert repr(report.rows[0]).startswith(
        "<GradientRow W 2×3: FAIL: W: your gradient is wrong at ["
    )


def test_a_gradient_check_refuses_inputs_that_are_not_finite() -> None:
    # every gradient there is NaN, and NaN against NaN would report agreement having compared
    # nothing
    with pytest.raises(ValueError, match=r"finite inputs: input 0 holds nan at \[1\]"):
        compare_gradients(lambda w: (w * w).sum(), lambda w: 2 * w, np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match=r"input 1 holds inf at \[\]"):
        compare_gradients(lambda a, b: a * b, lambda a, b: (b, a), 1.0, float("inf"))


def test_a_nan_gradient_of_the_engine_fails_its_row_instead_of_agreeing() -> None:
    # sqrt at a negative number: the engine's gradient, the hand-derived one and the central
    # differences are all NaN, which compare() takes as equal
    with np.errstate(invalid="ignore"):
        report = compare_gradients(
            lambda w: (w**0.5).sum(), lambda w: 0.5 * w**-0.5, np.array([4.0, -1.0]), names=["w"]
        )
    assert not report.ok
    (row,) = report.rows
    assert row.problem is not None and "the engine's gradient is nan at [1]" in row.problem
    assert "w (the engine's gradient is nan at [1]" in str(report)
