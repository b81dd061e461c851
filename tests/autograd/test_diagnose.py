"""autograd.diagnose: each kind of mistake, made on purpose, is named in its own words.

Every reference gradient here is derived by hand (a mean squared error through one linear layer),
never by the code under test; each test then makes one mistake a learner makes.
"""

from __future__ import annotations

import numpy as np
import pytest
from backproplab.autograd.diagnose import KINDS, Diagnosis, diagnose

RNG = np.random.default_rng(0)
X = RNG.standard_normal((8, 4))
W = RNG.standard_normal((4, 3))
B = RNG.standard_normal(3)
T = RNG.standard_normal((8, 3))
DELTA = 2 * (X @ W + B - T) / T.size  # dL/dz of mean((x W + b - t)²)
GRAD_W = X.T @ DELTA
GRAD_B = DELTA.sum(axis=0)


def test_right() -> None:
    d = diagnose("W", X.T @ DELTA, GRAD_W)
    assert (d.kind, d.ok) == ("right", True)


def test_a_bias_not_summed_over_the_batch_is_said_in_those_words() -> None:
    d = diagnose("b2", DELTA, GRAD_B, batch=8)
    assert d.kind == "not-summed" and d.axis == 0
    assert d.message == (
        "b2: your gradient has shape (8, 3), b2 has shape (3,): it looks like the bias gradient "
        "was not summed over the batch of 8 (sum over axis 0)"
    )


def test_an_unsummed_gradient_of_a_weight_is_not_called_a_bias() -> None:
    per_sample = np.einsum("bi,bo->bio", X, DELTA)  # one outer product per sample
    d = diagnose("layers.0.weight", per_sample, GRAD_W)
    assert d.kind == "not-summed"
    assert "it looks like the gradient was not summed over the batch of 8 (sum over axis 0)" in (
        d.message
    )


def test_averaged_instead_of_summed() -> None:
    d = diagnose("bias", DELTA * 8, GRAD_B)
    assert d.message.endswith("was not averaged over the batch of 8 (mean over axis 0)")


def test_an_extra_axis_that_is_not_the_batch_is_named_by_its_size() -> None:
    d = diagnose("b", DELTA, GRAD_B, batch=5)
    assert d.message.endswith(
        "the bias gradient was not summed over axis 0 (of size 8) (sum over axis 0)"
    )


def test_an_extra_axis_that_sums_to_the_wrong_thing() -> None:
    d = diagnose("b", DELTA * 3, GRAD_B)
    assert d.kind == "shape"
    assert "it has an extra axis 0 of size 8, which a gradient of b must be summed over" in (
        d.message
    )


def test_summed_where_it_must_not_be() -> None:
    grad_x = DELTA @ W.T
    d = diagnose("x", grad_x.sum(axis=0), grad_x)
    assert d.kind == "shape"
    assert d.message.endswith(
        "it is the engine's gradient summed over axis 0, where x needs one "
        "gradient per element (do not sum over that axis)"
    )


def test_transposed_shape() -> None:
    d = diagnose("W", DELTA.T @ X, GRAD_W)  # δᵀ x: the write-up's column layout
    assert d.kind == "transposed"
    assert d.message == (
        "W: your gradient has shape (3, 4), W has shape (4, 3): it is the right gradient, "
        "transposed (use its .T)"
    )


def test_transposed_square_matrix_is_told_by_its_values() -> None:
    square = X[:, :3].T @ DELTA
    d = diagnose("W", square.T, square)
    assert d.kind == "transposed"
    assert d.message == "W: your gradient is the engine's transposed (use its .T)"


def test_keepdims_shape() -> None:
    d = diagnose("b", GRAD_B[None, :], GRAD_B)
    assert d.kind == "shape"
    assert d.message.endswith(
        "the numbers are right, reshape it to (3,) (a sum with keepdims=True keeps the summed axis)"
    )


def test_plain_wrong_shape() -> None:
    d = diagnose("W", np.ones(5), GRAD_W)
    assert (d.kind, d.message) == ("shape", "W: your gradient has shape (5,), W has shape (4, 3)")


@pytest.mark.parametrize(
    ("factor", "factor_name", "words"),
    [
        (
            8.0,
            "the batch size",
            "is 8 times the engine's, the batch size: the 1/8 of a mean over the batch is missing",
        ),
        (
            1 / 8,
            "the batch size",
            "is 1/8 of the engine's, one over the batch size: it was "
            "divided by the batch size once too often",
        ),
        (-1.0, "the sign", "is the engine's with the wrong sign (-1 times it)"),
        (2.0, "2", "is twice the engine's: a factor 2 counted twice, or a term added twice"),
        (0.5, "1/2", "is half the engine's: a factor 2 is missing (d(x²)/dx is 2x)"),
        (3.0, None, "is exactly 3 times the engine's everywhere: a constant factor is off"),
    ],
)
def test_off_by_a_named_factor(factor: float, factor_name: str | None, words: str) -> None:
    d = diagnose("W", GRAD_W * factor, GRAD_W, batch=8)
    assert (d.kind, d.factor_name) == ("factor", factor_name)
    assert d.factor == pytest.approx(factor)
    assert d.message == "W: your gradient " + words


def test_without_the_batch_size_a_factor_8_is_still_found() -> None:
    d = diagnose("W", GRAD_W * 8, GRAD_W)
    assert (
        d.message
        == "W: your gradient is exactly 8 times the engine's everywhere: a constant factor is off"
    )


def test_off_by_the_local_factor() -> None:
    # c = a * b with a = 2, b = -3, dc = 0.5: da = dc * b = -1.5; forgetting b leaves 0.5.
    d = diagnose("a", 0.5, -1.5, local=-3.0, local_name="d(a*b)/da")
    assert (d.kind, d.factor_name) == ("factor", "the local factor")
    assert d.message == (
        "a: your gradient is off by exactly the local factor d(a*b)/da = -3: it was not "
        "multiplied by it"
    )
    twice = diagnose("a", 0.5 * 9.0, -1.5, local=-3.0)
    assert twice.message == (
        "a: your gradient is off by exactly the local factor -3: it was multiplied in twice"
    )


def test_one_term_of_a_fan_out_sum_missing() -> None:
    # a feeds a*b (b = 3), a + c and a*a (a = 2), each with an upstream gradient of 1.
    terms = {"a*b": 3.0, "a + c": 1.0, "a*a": 4.0}
    d = diagnose("a", 7.0, 8.0, terms=terms)
    assert (d.kind, d.term) == ("missing-term", "a + c")
    assert d.message == (
        "a: a feeds 3 uses, and its gradient is the sum of what each sends back: yours leaves "
        "out the term through a + c"
    )
    alone = diagnose("a", 3.0, 8.0, terms=terms)
    assert alone.message.endswith("yours is the term through a*b alone, add the others")


def test_plain_wrong_names_the_worst_element_and_both_values() -> None:
    wrong = GRAD_W.copy()
    wrong[2, 1] += 0.25
    d = diagnose("W", wrong, GRAD_W)
    assert (d.kind, d.where) == ("wrong", (2, 1))
    assert d.message == (
        f"W: your gradient is wrong at [2, 1]: yours {wrong[2, 1]:.6g}, the engine's "
        f"{GRAD_W[2, 1]:.6g}"
    )


def test_nan_is_named() -> None:
    wrong = GRAD_B.copy()
    wrong[1] = np.nan
    d = diagnose("b", wrong, GRAD_B)
    assert d.message == f"b: your gradient is nan at [1], where the engine's is {GRAD_B[1]:.6g}"


def test_a_zero_reference_names_no_factor() -> None:
    d = diagnose("w", np.ones(3), np.zeros(3))
    assert d.kind == "wrong"


def test_missing_and_not_numbers() -> None:
    assert diagnose("W", None, GRAD_W).message == "W: no gradient was given"
    # numpy would read "0.5" as a number: text is refused all the same
    assert diagnose("W", "0.5", GRAD_W).message == "W: your gradient is a str, not numbers"
    d = diagnose("W", {"W": 1}, GRAD_W)
    assert (d.kind, d.message) == ("type", "W: your gradient is a dict, not numbers")


def test_every_kind_is_listed_and_the_repr_reads() -> None:
    d = diagnose("b", DELTA, GRAD_B)
    assert d.kind in KINDS and isinstance(d, Diagnosis)
    assert repr(d).startswith("<Diagnosis not-summed: b: your gradient has shape (8, 3)")
    assert str(d) == d.message and ";" not in d.message


def test_all_zeros_is_said() -> None:
    d = diagnose("W", np.zeros_like(GRAD_W), GRAD_W)
    i, j = d.where
    assert abs(GRAD_W[i, j]) == np.max(np.abs(GRAD_W))
    assert d.message == (
        f"W: your gradient is all zeros, where the engine's is not (it is {GRAD_W[i, j]:.6g} at "
        f"[{i}, {j}]): no gradient reached W"
    )


def test_a_number_against_an_infinity_is_wrong_not_close() -> None:
    # |5 - inf| <= rtol * inf would pass a naive test; the checkers' rule says they differ.
    d = diagnose("w", np.array([5.0, 1.0]), np.array([np.inf, 1.0]))
    assert (d.kind, d.where) == ("wrong", (0,))
    assert diagnose("w", np.array([np.inf, 1.0]), np.array([np.inf, 1.0])).ok


def test_a_scalar_is_never_called_a_constant_factor_off() -> None:
    d = diagnose("a", 1.7, 0.3)
    assert (d.kind, d.message) == (
        "wrong",
        "a: your gradient is wrong: yours 1.7, the engine's 0.3",
    )
    assert diagnose("a", -0.3, 0.3).factor_name == "the sign"  # a named factor still is named
