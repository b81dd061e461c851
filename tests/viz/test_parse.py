"""autograd.parse: expressions from text, checked against an allow-list, never executed."""

from __future__ import annotations

import ast
import builtins
import contextlib
import math
import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import backproplab.autograd as autograd
import pytest
from backproplab.autograd import ParseError, Value, parse
from backproplab.autograd.parse import (
    FUNCTIONS,
    MAX_DEPTH,
    MAX_LENGTH,
    MAX_OPERATORS,
    expression_names,
)
from hypothesis import given, settings
from hypothesis import strategies as st

# -- a guard: nothing is executed --------------------------------------------------------------


class Executed(AssertionError):
    """Something tried to run code or touch the system while text was parsed."""


@contextlib.contextmanager
def nothing_executed() -> Iterator[list[str]]:
    """Within the block eval, exec, compile-to-code, os.system, subprocess and open raise
    Executed. compile() is let through only with ast.PyCF_ONLY_AST: ast.parse is built on it,
    and that flag makes a tree, never code. Yields the list of what was attempted."""
    attempts: list[str] = []
    real_compile = builtins.compile

    def refuse(what: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            attempts.append(what)
            raise Executed(f"{what} was called")

        return call

    def compile_ast_only(
        source: Any, filename: Any, mode: str, flags: int = 0, *a: Any, **k: Any
    ) -> Any:
        if not flags & ast.PyCF_ONLY_AST:
            attempts.append("compile")
            raise Executed("compile to code was called")
        return real_compile(source, filename, mode, flags, *a, **k)

    patches = [
        (builtins, "eval", refuse("eval")),
        (builtins, "exec", refuse("exec")),
        (builtins, "compile", compile_ast_only),
        (builtins, "open", refuse("open")),
        (os, "system", refuse("os.system")),
        (subprocess, "Popen", refuse("subprocess.Popen")),
    ]
    saved = [(obj, name, getattr(obj, name)) for obj, name, _ in patches]
    try:
        for obj, name, new in patches:
            setattr(obj, name, new)
        yield attempts
    finally:
        for obj, name, old in saved:
            setattr(obj, name, old)
    assert attempts == [], attempts


# -- values and gradients ------------------------------------------------------------------------


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


# (text, the same function in Python, the values)
CASES: list[tuple[str, Callable[..., float], dict[str, float]]] = [
    ("x + y", lambda x, y: x + y, {"x": 1.5, "y": -2.0}),
    ("x - y * 2", lambda x, y: x - y * 2, {"x": 1.5, "y": -2.0}),
    ("x / y", lambda x, y: x / y, {"x": 1.5, "y": -2.0}),
    ("2 - 3 - x", lambda x: 2 - 3 - x, {"x": 0.7}),  # left to right: (2 - 3) - x
    ("x / y / 2", lambda x, y: x / y / 2, {"x": 3.0, "y": 1.5}),
    ("x ** 3", lambda x: x**3, {"x": 1.3}),
    ("x ** y", lambda x, y: x**y, {"x": 1.3, "y": 2.5}),
    ("2 ** x", lambda x: 2**x, {"x": 0.3}),
    ("x ** 2 ** y", lambda x, y: x ** (2**y), {"x": 1.1, "y": 0.5}),  # right to left
    ("-x ** 2", lambda x: -(x**2), {"x": 1.5}),
    ("(-x) ** 2", lambda x: (-x) ** 2, {"x": 1.5}),
    ("x ** -2", lambda x: x**-2, {"x": 1.5}),
    ("+x - -y", lambda x, y: x + y, {"x": 1.5, "y": 0.25}),
    ("exp(x) * log(y)", lambda x, y: math.exp(x) * math.log(y), {"x": 0.5, "y": 3.0}),
    ("tanh(x) + sigmoid(y)", lambda x, y: math.tanh(x) + _sigmoid(y), {"x": 0.5, "y": -1.0}),
    ("relu(x) - relu(-y)", lambda x, y: max(x, 0) - max(-y, 0), {"x": 0.5, "y": -1.0}),
    ("abs(x - y) + sqrt(y)", lambda x, y: abs(x - y) + math.sqrt(y), {"x": 0.5, "y": 2.0}),
    ("x*x*x / (1 + y**2)", lambda x, y: x * x * x / (1 + y**2), {"x": 0.5, "y": 2.0}),
    ("1e-3*x + 0x10*y + 1_0", lambda x, y: 1e-3 * x + 16 * y + 10, {"x": 2.0, "y": 0.5}),
    ("x + x + x", lambda x: 3 * x, {"x": 0.5}),
    ("x * (y + x) * x", lambda x, y: x * (y + x) * x, {"x": 0.5, "y": -1.5}),
    ("exp(-(x - 1) ** 2 / 2)", lambda x: math.exp(-((x - 1) ** 2) / 2), {"x": 0.2}),
    (
        "log(sigmoid(x) * (1 - sigmoid(x)))",
        lambda x: math.log(_sigmoid(x) * (1 - _sigmoid(x))),
        {"x": 0.3},
    ),
    ("(x\n   + y)", lambda x, y: x + y, {"x": 1.0, "y": 2.0}),  # a line break inside brackets
    ("\tx*y ", lambda x, y: x * y, {"x": 1.0, "y": 2.0}),
]


def _central(f: Callable[..., float], values: dict[str, float], name: str) -> float:
    eps = 1e-6
    up = dict(values, **{name: values[name] + eps})
    down = dict(values, **{name: values[name] - eps})
    return (f(**up) - f(**down)) / (2 * eps)


@pytest.mark.parametrize(("text", "f", "values"), CASES, ids=[c[0] for c in CASES])
def test_value_and_gradients(text: str, f: Callable[..., float], values: dict[str, float]) -> None:
    leaves = {name: Value(v) for name, v in values.items()}
    with nothing_executed():
        out = parse(text, **leaves)
    out.backward()
    assert out.data == pytest.approx(f(**values), rel=1e-12)
    for name, leaf in leaves.items():
        assert leaf.label == name  # an unlabelled Value gets its name
        assert leaf.grad == pytest.approx(_central(f, values, name), rel=1e-6, abs=1e-8), name


def test_the_classic_neuron() -> None:
    o = parse("tanh(x1*w1 + x2*w2 + b)", x1=2, x2=0, w1=-3, w2=1, b=6.8813735870195432)
    o.backward()
    assert round(o.data, 4) == 0.7071
    leaves = {}
    stack = [o]
    while stack:
        node = stack.pop()
        if node.op is None and node.label:
            leaves[node.label] = node
        stack.extend(node.parents)
    assert {k: round(v.grad, 4) for k, v in leaves.items()} == {
        "x1": -1.5,
        "w1": 1.0,
        "x2": 0.5,
        "w2": 0.0,
        "b": 0.5,
    }
    assert autograd.parse is parse


def test_names_are_one_node_and_values_keep_their_identity() -> None:
    x = Value(3.0, label="mine")
    out = parse("x * x + y", x=x, y=2)
    out.backward()
    assert x.grad == 6.0 and x.label == "mine"  # a labelled Value keeps its label
    y = out.parents[1]
    assert y.label == "y" and y.grad == 1.0 and y.requires_grad


def test_constant_exponents_are_saved_not_nodes() -> None:
    assert parse("x ** 2", x=3.0).op.name == "Pow"
    assert parse("x ** -0.5", x=4.0).data == 0.5
    assert parse("2 ** x", x=3.0).op.name == "Pow(a, b)"  # a Value exponent: differentiable
    assert parse("-2", x=1).data == -2.0 and parse("-2").requires_grad is False


def test_expression_names_in_order_of_first_appearance() -> None:
    assert expression_names("tanh(x1*w1 + x2*w2 + b)") == ["x1", "w1", "x2", "w2", "b"]
    assert expression_names("b*a + a - exp(c) / b") == ["b", "a", "c"]
    assert expression_names("2 * 3") == []


def test_long_sums_and_products_do_not_recurse() -> None:
    # ast.parse alone gives up on a chain of ~3,000 (RecursionError); parse splits top-level
    # sums and products into their terms, so any length that fits MAX_LENGTH works.
    n = 5_000
    out = parse("+".join(["x"] * n), x=0.5)
    out.backward()
    assert out.data == n * 0.5
    assert out.parents[1].grad == n  # x: every term is the same node
    prod = parse("*".join(["x"] * 3_000) + " / y", x=1.0001, y=2.0)
    assert prod.data == pytest.approx(1.0001**3000 / 2, rel=1e-9)
    mixed = parse(" - ".join(["2*x*y"] * 1_000), x=1.0, y=3.0)
    assert mixed.data == 6.0 - 999 * 6.0


def test_the_limits_themselves_are_allowed() -> None:
    x = Value(2.0)
    assert parse("(" * MAX_DEPTH + "x" + ")" * MAX_DEPTH, x=x) is x
    assert parse("-" * MAX_DEPTH + "x", x=2.0).data == 2.0
    assert parse("exp(" * 50 + "-" * 50 + "x" + ")" * 50, x=-50.0).data > 0
    text = "x" + "+x" * ((MAX_LENGTH - 1) // 2) + " "
    assert len(text) == MAX_LENGTH
    assert parse(text, x=1.0).data == MAX_LENGTH // 2
    inside = "exp(" + "+".join(["x"] * (MAX_OPERATORS // 2)) + ")"
    assert parse(inside, x=0.001).data == pytest.approx(math.exp(0.5))


def test_domain_errors_are_the_engines() -> None:
    with pytest.raises(ValueError, match=r"log of a non-positive number: log\(-1.0\)") as e:
        parse("log(x)", x=-1)
    assert not isinstance(e.value, ParseError)
    with pytest.raises(ZeroDivisionError, match="division by zero"):
        parse("1 / (x - 1)", x=1)
    with pytest.raises(ValueError, match="square root of a negative number"):
        parse("sqrt(x)", x=-4)


def test_bad_values_are_type_errors() -> None:
    with pytest.raises(TypeError, match="'x' must be a real number or a Value, got str"):
        parse("x", x="1")
    with pytest.raises(TypeError, match="got bool"):
        parse("x", x=True)
    with pytest.raises(TypeError, match="takes the expression as a str"):
        parse(b"x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="got Tensor"):
        parse("x", x=autograd.Tensor([1.0]))


def test_an_unbound_name_is_named_with_the_bound_ones() -> None:
    with pytest.raises(ParseError) as e:
        parse("x1 * w1 + b", x1=1, w1=2)
    assert str(e.value) == "no value for the name 'b' (bound names: w1, x1) (column 11)"
    with pytest.raises(ParseError, match=r"no value for the name 'x' \(bound names: none\)"):
        parse("exp(x)")


def test_the_error_says_where() -> None:
    with pytest.raises(ParseError) as e:
        parse("(x +\n  y.z)", x=1, y=2)
    assert (e.value.line, e.value.column) == (2, 5)
    assert e.value.reason == "attribute access is not allowed"
    assert str(e.value) == "attribute access is not allowed (line 2, column 5)"
    with pytest.raises(ParseError) as e:
        parse("é + ü.real", é=1, ü=2)  # columns count characters, not UTF-8 bytes
    assert e.value.column == 7


def test_a_mismatched_bracket_is_placed_by_line_and_column() -> None:
    # The opening bracket's place was its offset in the whole text, which is no column once
    # the text spans lines.
    with pytest.raises(ParseError) as e:
        parse("(x\n  + [y\n )", x=1, y=2)
    assert str(e.value) == "')' does not match '[' at line 2, column 5 (line 3, column 2)"
    with pytest.raises(ParseError) as e:
        parse("x + (y]", x=1, y=2)
    assert str(e.value) == "']' does not match '(' at column 5 (column 7)"


# -- hostile text --------------------------------------------------------------------------------

HOSTILE: list[tuple[str, str, int | None]] = [
    # (text, what the message says, the column it names)
    ("__import__('os').system('echo hi')", "attribute access is not allowed", 18),
    ("x.__class__", "attribute access is not allowed", 3),
    ("().__class__.__bases__[0]", "subscripts (x[...]) are not allowed", 24),
    ("[1,2]", "lists are not allowed", 1),
    ("{'a': 1}", "dicts are not allowed", 1),
    ('"abc"', "strings are not allowed", 1),
    ('f"{x}"', "f-strings are not allowed", 1),
    ("lambda: 1", "lambdas are not allowed", 1),
    ("[x for x in y]", "comprehensions are not allowed", 1),
    ("x[0]", "subscripts (x[...]) are not allowed", 3),
    ("exp(x, y)", "exp() takes exactly one argument, got 2", 1),
    ("exp(x=1)", "keyword arguments are not allowed", 5),
    (
        "open('f')",
        "calling 'open' is not allowed (only exp, log, tanh, sigmoid, relu, abs, sqrt, sin, cos)",
        1,
    ),
    ("1 if x else 2", "conditional expressions (a if c else b) are not allowed", 3),
    ("x and y", "'and' and 'or' are not allowed", 3),
    ("x < y", "comparisons are not allowed", 3),
    ("x @ y", "the operator '@' is not allowed", 3),
    ("x // y", "the operator '//' is not allowed", 3),
    ("x % y", "the operator '%' is not allowed", 3),
    ("~x", "the operator '~' is not allowed", 1),
    ("True", "True and False are not allowed", 1),
    ("1j", "complex numbers are not allowed", 1),
    ("*x", "syntax error: cannot use starred expression here", 1),
    (
        "(" * 100_000 + "x" + ")" * 100_000,
        "text longer than 10,000 characters is not allowed",
        10_001,
    ),
    ("-" * 100_000 + "1", "text longer than 10,000 characters is not allowed", 10_001),
    ("+".join(["x"] * 100_000), "text longer than 10,000 characters is not allowed", 10_001),
    ("x" * 1_000_000, "text longer than 10,000 characters is not allowed", 10_001),
    # the same shapes within the length limit
    ("(" * 101 + "x" + ")" * 101, f"nesting deeper than {MAX_DEPTH} levels", 101),
    ("-" * 101 + "1", f"nesting deeper than {MAX_DEPTH} levels", 101),
    ("**".join(["x"] * 102), f"nesting deeper than {MAX_DEPTH} levels", 302),
    ("exp(" * 101 + "x" + ")" * 101, f"nesting deeper than {MAX_DEPTH} levels", 404),
    ("not " * 101 + "x", f"nesting deeper than {MAX_DEPTH} levels", 401),
    ("exp(" + "+".join(["x"] * 1_200) + ")", "more than 1,000 operators inside one bracket", 2_004),
    ("x" + ".a" * 3_000, "more than 1,000 operators inside one bracket", 2_002),
    # and more
    ("exp", "exp is a function: call it as exp(...)", 1),
    ("x()", "calling 'x' is not allowed", 1),
    ("(lambda: 1)()", "calling anything but a function's name is not allowed", 1),
    ("exp(*x)", "starred arguments (*x) are not allowed", 5),
    ("x.y()", "attribute access is not allowed", 3),
    ("not x", "the operator 'not' is not allowed", 1),
    ("x := 1", "assignment expressions (:=) are not allowed", 1),
    ("x, y", "tuples (a comma outside a call) are not allowed", 1),
    ("{x}", "sets are not allowed", 1),
    ("(x for x in y)", "generator expressions are not allowed", 1),
    ("await x", "'await' is not allowed", 1),
    ("(yield x)", "'yield' is not allowed", 2),
    ("None", "None is not allowed", 1),
    ("...", "'...' is not allowed", 1),
    ("b'x'", "bytes are not allowed", 1),
    ("rb'\\x00' + 1", "bytes are not allowed", 1),
    ("'''a\nb'''", "strings are not allowed", 1),
    ("'abc", "a string that is never closed is not allowed", 1),
    ("x # comment", "comments (#) are not allowed", 3),
    ("1e999", "a number too large for a float is not allowed", 1),
    ("1" * 400, "a number too large for a float is not allowed", 1),
    ("1" * 5_000, "syntax error: Exceeds the limit", 1),
    ("x\x00", "the non-printable character U+0000 is not allowed", 2),
    ("x\r+ y", "the non-printable character U+000D is not allowed", 2),
    ("x\n+ y", "a line break outside brackets is not allowed", 2),
    ("x +", "'+' needs an operand on its right", 3),
    ("x * ", "'*' needs an operand on its right", 3),
    ("(x", "'(' was never closed", 1),
    ("x)", "unmatched ')'", 2),
    ("(x]", "']' does not match '(' at column 1", 3),
    ("x y", "syntax error: invalid syntax", 1),
    ("x if", "syntax error", None),
    ("\\x", "syntax error", None),
    ("$x", "syntax error: invalid syntax", None),
    ("x = 1", "syntax error", None),
    ("", "the expression is empty", None),
    ("   ", "the expression is empty", None),
]


@pytest.mark.parametrize(
    ("text", "message", "column"), HOSTILE, ids=[repr(h[0][:30]) for h in HOSTILE]
)
def test_hostile_text_is_refused_cleanly(text: str, message: str, column: int | None) -> None:
    with nothing_executed(), pytest.raises(ParseError) as e:
        parse(text, x=1.0, y=2.0)
    assert message in str(e.value)
    assert "\n" not in str(e.value)
    if column is not None:  # None: the column is Python's parser's to say
        assert e.value.column == column
        assert str(e.value).endswith(f"column {column})")
    elif text.strip():
        assert e.value.column is not None
    with nothing_executed(), pytest.raises(ParseError):
        expression_names(text)


def test_nothing_runs_even_with_the_names_bound(capfd: pytest.CaptureFixture[str]) -> None:
    with nothing_executed(), pytest.raises(ParseError):
        parse("__import__('os').system('echo hi')", __import__=1, os=2, system=3)
    assert "hi" not in capfd.readouterr().out


def test_the_guard_would_notice() -> None:
    with pytest.raises(Executed), nothing_executed():
        eval("1")
    with pytest.raises(Executed), nothing_executed():
        compile("1", "<test>", "eval")


# -- fuzz: random strings ------------------------------------------------------------------------

DOMAIN_ERRORS = (
    "log of a non-positive number",
    "square root of a negative number",
    "division by zero",
    "raised to a negative power",
    "negative number raised to a fractional power",
)

_EXPRESSION_ALPHABET = [
    *"xyz0123456789.e+-*/() ,_",
    "exp(",
    "log(",
    "tanh(",
    "sqrt(",
    "relu(",
    "abs(",
    "sigmoid(",
    "**",
    "//",
    "[",
    "]",
    "{",
    "}",
    ":",
    "'",
    '"',
    "#",
    "\\",
    "\n",
    "@",
    "%",
    "<",
    "=",
    "!",
    "~",
    "lambda",
    "not",
    "if",
    " else ",
    "for",
    "in",
    "__import__",
    ".",
    "j",
    "True",
    "f'",
    "0x",
    "1e",
]


@settings(max_examples=400)
@given(
    st.one_of(
        st.text(max_size=40),
        st.lists(st.sampled_from(_EXPRESSION_ALPHABET), max_size=25).map("".join),
    )
)
def test_any_string_parses_or_is_refused(text: str) -> None:
    with nothing_executed():
        try:
            out = parse(text, x=0.5, y=-1.5, z=2.0)
        except ParseError as e:
            assert e.reason and "\n" not in str(e)
            return
        except (ValueError, ArithmeticError) as e:
            # The engine's domain errors, which the same expression in Python would raise.
            assert any(m in str(e) for m in DOMAIN_ERRORS), repr(e)
            return
    assert isinstance(out, Value)


# -- fuzz: random trees, printed and parsed back ---------------------------------------------


@dataclass(frozen=True)
class Tree:
    """An expression: a leaf (a name or a number), a unary sign, a binary op or a call."""

    kind: str  # "name", "number", "unary", "binary", "call"
    op: str = ""
    value: float = 0.0
    children: tuple[Tree, ...] = ()


VALUES = {"x": 0.5, "y": -1.5, "z": 2.0}
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}


def _leaves() -> st.SearchStrategy[Tree]:
    names = st.sampled_from(sorted(VALUES)).map(lambda n: Tree("name", n))
    ints = st.integers(0, 12).map(lambda v: Tree("number", "int", float(v)))
    floats = st.floats(0, 20, allow_nan=False).map(lambda v: Tree("number", "float", v))
    return names | ints | floats


def _extend(inner: st.SearchStrategy[Tree]) -> st.SearchStrategy[Tree]:
    return (
        st.tuples(st.sampled_from(["-", "+"]), inner).map(lambda t: Tree("unary", t[0], 0, (t[1],)))
        | st.tuples(st.sampled_from(["+", "-", "*", "/", "**"]), inner, inner).map(
            lambda t: Tree("binary", t[0], 0, (t[1], t[2]))
        )
        | st.tuples(st.sampled_from(sorted(FUNCTIONS)), inner).map(
            lambda t: Tree("call", t[0], 0, (t[1],))
        )
    )


def _number_text(t: Tree) -> str:
    return str(int(t.value)) if t.op == "int" else repr(t.value)


def minimal(t: Tree) -> tuple[str, int]:
    """Print with only the brackets Python's precedence needs: (text, precedence)."""
    if t.kind == "name":
        return t.op, 5
    if t.kind == "number":
        return _number_text(t), 5
    if t.kind == "call":
        return f"{t.op}({minimal(t.children[0])[0]})", 5
    if t.kind == "unary":
        text, p = minimal(t.children[0])
        return t.op + (text if p >= 3 else f"({text})"), 3
    (left, lp), (right, rp) = minimal(t.children[0]), minimal(t.children[1])
    if t.op == "**":  # binds tighter than a sign on its left, and groups to the right
        return f"{left if lp > 4 else f'({left})'} ** {right if rp >= 3 else f'({right})'}", 4
    p = _PRECEDENCE[t.op]
    return f"{left if lp >= p else f'({left})'} {t.op} {right if rp > p else f'({right})'}", p


def full(t: Tree) -> str:
    """Print with brackets around everything."""
    if t.kind == "name":
        return t.op
    if t.kind == "number":
        return _number_text(t)
    if t.kind == "call":
        return f"{t.op}({full(t.children[0])})"
    if t.kind == "unary":
        return f"({t.op}{full(t.children[0])})"
    return f"({full(t.children[0])} {t.op} {full(t.children[1])})"


def direct(t: Tree) -> float:
    """The value on plain floats, with the engine's conventions (exp and ** overflow to inf)."""
    if t.kind == "name":
        return VALUES[t.op]
    if t.kind == "number":
        return t.value
    if t.kind == "unary":
        v = direct(t.children[0])
        return -v if t.op == "-" else v
    if t.kind == "call":
        v = direct(t.children[0])
        if t.op == "exp":
            try:
                return math.exp(v)
            except OverflowError:
                return math.inf
        if t.op == "log":
            if v <= 0:
                raise ValueError("log of a non-positive number")
            return math.log(v)
        if t.op == "sqrt":
            if v < 0:
                raise ValueError("square root of a negative number")
            return math.sqrt(v)
        return {
            "tanh": math.tanh,
            "sigmoid": _sigmoid,
            "relu": lambda a: a if a > 0 else 0.0,
            "sin": math.sin,
            "cos": math.cos,
            "abs": abs,
        }[t.op](v)
    a, b = direct(t.children[0]), direct(t.children[1])
    if t.op == "+":
        return a + b
    if t.op == "-":
        return a - b
    if t.op == "*":
        return a * b
    if t.op == "/":
        return a / b
    try:
        out = a**b
    except OverflowError:
        return math.inf
    if isinstance(out, complex):
        raise ValueError("negative number raised to a fractional power")
    return out


@settings(max_examples=300)
@given(st.recursive(_leaves(), _extend, max_leaves=12))
def test_random_trees_print_parse_and_evaluate_alike(tree: Tree) -> None:
    try:
        expected: float | None = direct(tree)
    except (ValueError, ArithmeticError):
        expected = None
    for text in (minimal(tree)[0], full(tree)):
        with nothing_executed():
            if expected is None:
                with pytest.raises((ValueError, ArithmeticError)) as e:
                    parse(text, **VALUES)
                assert not isinstance(e.value, ParseError), (text, e.value)
                continue
            got = parse(text, **VALUES).data
        if math.isnan(expected):
            assert math.isnan(got), text
        else:
            assert got == pytest.approx(expected, rel=1e-12, abs=1e-300), text


# -- suggestions ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "suggestion"),
    [
        ("tahn(x)", "calling 'tahn' is not allowed: did you mean 'tanh'?"),
        ("Tanh(x)", "calling 'Tanh' is not allowed: did you mean 'tanh'?"),
        ("sigmod(x)", "did you mean 'sigmoid'?"),
        ("ln(x)", "calling 'ln' is not allowed: did you mean 'log'?"),
        ("sqr(x)", "did you mean 'sqrt'?"),
        ("x ^ 2", "the operator '^' is not allowed: did you mean '**'?"),
        ("y + 1", "no value for the name 'y': did you mean 'y1'?"),
    ],
)
def test_a_near_miss_suggests_the_allowed_name(text: str, suggestion: str) -> None:
    with pytest.raises(ParseError) as e:
        parse(text, x=1.0, y1=2.0)
    assert suggestion in str(e.value)


@pytest.mark.parametrize("text", ["foo(x)", "x // 2", "open('f')"])
def test_nothing_close_suggests_nothing(text: str) -> None:
    with pytest.raises(ParseError) as e:
        parse(text, x=1.0)
    assert "did you mean" not in str(e.value)


def test_sin_and_cos_parse_with_their_derivatives() -> None:
    x, y = Value(0.7, label="x"), Value(-1.3, label="y")
    out = parse("sin(x) * cos(y)", x=x, y=y)
    out.backward()
    assert out.data == pytest.approx(math.sin(0.7) * math.cos(-1.3), rel=1e-15)
    assert x.grad == pytest.approx(math.cos(0.7) * math.cos(-1.3), rel=1e-15)  # by hand
    assert y.grad == pytest.approx(-math.sin(0.7) * math.sin(-1.3), rel=1e-15)


def test_a_near_miss_of_sin_suggests_it() -> None:
    with pytest.raises(ParseError, match="did you mean 'sin'"):
        parse("sine(x)", x=1.0)
