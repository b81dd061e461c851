"""Command-line near misses: each refusal a newcomer is likely to meet carries the hint it needs,
on its one line of stderr, with exit code 2."""

from __future__ import annotations

import re

import pytest
from backproplab.autograd import ParseError, parse
from backproplab.viz.cli import main


def refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


def test_a_mistyped_command_gets_did_you_mean(capsys: pytest.CaptureFixture[str]) -> None:
    err = refused(["chek"], capsys)
    assert "invalid choice: 'chek'" in err and "; did you mean 'check'?" in err


def test_a_mistyped_choice_of_an_option_too(capsys: pytest.CaptureFixture[str]) -> None:
    err = refused(["demo", "circle", "--engine", "tensr"], capsys)
    assert "; did you mean 'tensor'?" in err


def test_a_choice_like_nothing_gets_no_guess(capsys: pytest.CaptureFixture[str]) -> None:
    assert "did you mean" not in refused(["zzzzzz"], capsys)


def test_a_number_against_a_name_gets_the_product(capsys: pytest.CaptureFixture[str]) -> None:
    err = refused(["graph", "2x + 1", "--var", "x=3"], capsys)
    assert "invalid decimal literal; write 2*x to multiply" in err


def test_a_value_inside_the_expression_gets_the_var_option(
    capsys: pytest.CaptureFixture[str],
) -> None:
    err = refused(["graph", "x**2 x=3"], capsys)
    assert "cannot read the expression" in err and "--var x=3 (--param for a parameter)" in err


def test_a_value_as_an_argument_of_its_own_gets_the_var_option(
    capsys: pytest.CaptureFixture[str],
) -> None:
    err = refused(["play", "x**2 * y", "x=3", "y=-1.5"], capsys)
    assert "unrecognized arguments: x=3 y=-1.5" in err
    assert "--var x=3 --var y=-1.5" in err


def test_other_refusals_get_no_binding_hint(capsys: pytest.CaptureFixture[str]) -> None:
    assert "--var" not in refused(["graph", "x == 3", "--var", "x=3"], capsys)


@pytest.mark.parametrize(
    ("text", "hint"),
    [("2x + 1", "write 2*x"), ("3.5w * x", "write 3.5*w"), ("x + 1e5z", "write 1e5*z")],
)
def test_parse_itself_says_how_to_multiply(text: str, hint: str) -> None:
    with pytest.raises(ParseError, match=re.escape(f"{hint} to multiply")):
        parse(text, x=1.0, w=2.0, z=1.0)


def test_a_number_with_an_exponent_is_not_taken_for_a_product() -> None:
    assert parse("1e5 * x", x=2.0).data == 2e5
