"""Expressions from text: ``parse("tanh(x1*w1 + x2*w2 + b)", x1=2, ...)`` builds a Value graph.

The text is read by Python's own parser (``ast.parse``) and nothing else: the tree it returns is
checked against an allow-list and then walked to build Values. Nothing is ever evaluated as
Python (no ``eval``, ``exec`` or ``compile`` to code), so text is data and can do nothing but
arithmetic on the engine.

What is allowed:

- numbers (int and float literals: ``2``, ``0.5``, ``1e-3``, ``1_000``, ``0x10``);
- names, bound by ``parse``'s keyword arguments;
- ``+ - * / **`` and unary ``-`` and ``+``, with Python's precedence, and parentheses;
- calls of ``exp log tanh sigmoid relu abs sqrt sin cos`` with exactly one argument and no keywords.

Anything else (attributes, subscripts, strings, calls of other names, comparisons, ``//``, ...) is
refused with a ``ParseError`` that names what was refused and where (1-based column).

Limits, checked on the text before ``ast.parse`` sees it, because Python's parser recurses and
gives up (RecursionError, MemoryError) on deep input:

- ``MAX_LENGTH`` characters;
- ``MAX_DEPTH`` levels of nesting, counting brackets, calls, unary signs and ``**`` chains (each
  of these nests the next thing inside it);
- ``MAX_OPERATORS`` operators inside one bracket or factor. ``ast.parse`` builds a left-to-right
  chain ``a + b + c ...`` as a tree as deep as it is long, and Python gives up on trees about
  3,000 deep (fewer when the caller's stack is deep). Sums and products at the top level, outside
  brackets, are not limited by this: they are split into their terms and factors first and each
  is parsed alone, so a sum of 5,000 terms parses and builds its graph without recursing.
"""

from __future__ import annotations

import ast
import bisect
import difflib
import keyword
import math
import numbers
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .engine import Node
from .value import Value

__all__ = [
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "MAX_OPERATORS",
    "ParseError",
    "expression_names",
    "parse",
]

MAX_LENGTH = 10_000
"""The longest text accepted, in characters."""

MAX_DEPTH = 100
"""The deepest nesting accepted: brackets, calls, unary signs and ``**`` nested in one another."""

MAX_OPERATORS = 1_000
"""The most operators (and brackets, commas ...) inside one bracket or top-level factor."""

FUNCTIONS: dict[str, Callable[[Value], Value]] = {
    "exp": Value.exp,
    "log": Value.log,
    "tanh": Value.tanh,
    "sigmoid": Value.sigmoid,
    "relu": Value.relu,
    "abs": Value.abs,
    "sqrt": Value.sqrt,
    "sin": Value.sin,
    "cos": Value.cos,
}
"""The functions an expression may call, each with one argument."""

_BINARY: dict[type[ast.operator], Callable[[Value, Value], Value]] = {
    ast.Add: Value.__add__,
    ast.Sub: Value.__sub__,
    ast.Mult: Value.__mul__,
    ast.Div: Value.__truediv__,
    ast.Pow: Value.__pow__,
}

# What is said of a refused node (the allow-list itself is in _Checker.check).
_REFUSED: dict[type[ast.AST], str] = {
    ast.Attribute: "attribute access is",
    ast.Subscript: "subscripts (x[...]) are",
    ast.Slice: "slices are",
    ast.List: "lists are",
    ast.Tuple: "tuples (a comma outside a call) are",
    ast.Dict: "dicts are",
    ast.Set: "sets are",
    ast.ListComp: "comprehensions are",
    ast.SetComp: "comprehensions are",
    ast.DictComp: "comprehensions are",
    ast.GeneratorExp: "generator expressions are",
    ast.Lambda: "lambdas are",
    ast.IfExp: "conditional expressions (a if c else b) are",
    ast.BoolOp: "'and' and 'or' are",
    ast.Compare: "comparisons are",
    ast.JoinedStr: "f-strings are",
    ast.FormattedValue: "f-strings are",
    ast.NamedExpr: "assignment expressions (:=) are",
    ast.Starred: "starred expressions (*x) are",
    ast.Await: "'await' is",
    ast.Yield: "'yield' is",
    ast.YieldFrom: "'yield' is",
}

# What is said of a literal that is not an int or float.
_NOT_A_NUMBER: dict[type, str] = {
    bool: "True and False are",
    str: "strings are",
    bytes: "bytes are",
    complex: "complex numbers are",
    type(None): "None is",
    type(...): "'...' is",
}

_OPERATOR_TEXT: dict[type[ast.AST], str] = {
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.MatMult: "@",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitOr: "|",
    ast.BitAnd: "&",
    ast.BitXor: "^",
    ast.Invert: "~",
    ast.Not: "not",
}

# What a learner probably meant by an operator Python reads otherwise.
_OPERATOR_HINTS: dict[type[ast.AST], str] = {
    ast.BitXor: ": did you mean '**'? (x ** 2 is a power; ^ is Python's exclusive or)",
}

# Names from other notations that a close-match search would not find.
_FUNCTION_ALIASES = {"ln": "log", "expm": "exp", "sig": "sigmoid", "fabs": "abs"}

_STRING_PREFIXES = {"r", "u", "f", "b", "br", "rb", "fr", "rf"}
_OPEN = {"(": ")", "[": "]", "{": "}"}
_CLOSE = {")": "(", "]": "[", "}": "{"}


class ParseError(ValueError):
    """Text that ``parse`` refuses: what was not allowed, and where.

    ``str(error)`` reads like ``attribute access is not allowed (column 2)``. ``reason`` is the
    message without the place; ``line`` and ``column`` (1-based, in characters) say where, or
    are None when the refusal is about no place in particular.
    """

    def __init__(self, reason: str, line: int | None = None, column: int | None = None) -> None:
        self.reason = reason
        self.line = line
        self.column = column
        if column is None:
            where = ""
        elif line is None or line == 1:
            where = f" (column {column})"
        else:
            where = f" (line {line}, column {column})"
        super().__init__(reason + where)


def parse(text: str, /, **values: Any) -> Value:
    """Build the Value graph of an expression such as ``"tanh(x1*w1 + x2*w2 + b)"``.

    Args:
        text: the expression (see the module's docstring for what it may contain).
        values: a number or a Value for each name the text uses. A number becomes a leaf Value
            labelled with its name; a Value is used itself (given the name as its label when it
            has none), so its ``.grad`` is filled by a backward pass from the result. Every
            use of a name is the same node. Names the text does not use are ignored.

    Returns:
        The expression's root Value; ``.backward()`` gives each named leaf its gradient.

    Raises:
        ParseError: the text is refused (too long or deep, a syntax error, something not on
            the allow-list, or a name with no value); the message says what and where.
        TypeError: a value is neither a real number nor a Value (bools are refused too).
        ValueError, ZeroDivisionError: from the engine, for a domain error such as the log of a
            negative number, as the same expression written in Python would raise them.

    >>> o = parse("tanh(x1*w1 + x2*w2 + b)", x1=2, x2=0, w1=-3, w2=1, b=6.8813735870195432)
    >>> o.backward()
    >>> round(o.data, 4)
    0.7071
    """
    expression = _compile(text)
    bound = _bind(values)
    for name, (line, column) in expression.names.items():
        if name not in bound:
            known = ", ".join(sorted(bound)) if bound else "none"
            raise ParseError(
                f"no value for the name {name!r}{_suggest(name, bound)} (bound names: {known})",
                line,
                column,
            )
    # Fold the terms and factors left to right, as Python groups a + b - c and a * b / c.
    total: Value | None = None
    for sign, factors in expression.terms:
        term: Value | None = None
        for op, tree in factors:
            factor = _evaluate(tree, bound)
            term = factor if term is None else _BINARY[op](term, factor)
        assert term is not None  # every term has a factor: _split refuses an empty one
        total = term if total is None else _BINARY[sign](total, term)
    assert total is not None
    return total


def expression_names(text: str) -> list[str]:
    """The names ``text`` uses, in order of first appearance (the functions it calls excluded).

    The text gets every check ``parse`` makes except binding, so this tells which values to ask
    for. Raises ParseError for text that ``parse`` would refuse whatever the values.

    >>> expression_names("tanh(x1*w1 + x2*w2 + b)")
    ['x1', 'w1', 'x2', 'w2', 'b']
    """
    return list(_compile(text).names)


# --- the text, before ast.parse -----------------------------------------------------------------

_Op = type[ast.operator]


@dataclass
class _Expression:
    """Checked text: its terms (sign, then factors each with its operator and tree) and names."""

    terms: list[tuple[_Op, list[tuple[_Op, ast.expr]]]] = field(default_factory=list)
    names: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (line, column)


def _compile(text: str) -> _Expression:
    if not isinstance(text, str):
        raise TypeError(f"parse() takes the expression as a str, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        # Lines of the first MAX_LENGTH + 1 characters only: the text may be megabytes.
        raise _Lines(text[: MAX_LENGTH + 1]).error(
            f"text longer than {MAX_LENGTH:,} characters is not allowed "
            f"(this one has {len(text):,})",
            MAX_LENGTH,
        )
    if not text.strip():
        raise ParseError("the expression is empty")
    lines = _Lines(text)
    expression = _Expression()
    # Parse and check every piece before building anything, so that a refusal anywhere wins
    # over a domain error in an earlier piece.
    for sign, factors in _split(text, lines):
        trees: list[tuple[_Op, ast.expr]] = []
        for op, start, end in factors:
            tree = _parse_piece(text, start, end, lines)
            _Checker(lines, start - 1, text[start:end], expression.names).check(tree)
            trees.append((op, tree))
        expression.terms.append((sign, trees))
    return expression


class _Lines:
    """Positions in the text: a character offset to (line, column), both 1-based."""

    def __init__(self, text: str) -> None:
        self.starts = [0]
        at = text.find("\n")
        while at >= 0:
            self.starts.append(at + 1)
            at = text.find("\n", at + 1)

    def where(self, offset: int) -> tuple[int, int]:
        line = bisect.bisect_right(self.starts, offset) - 1
        return line + 1, offset - self.starts[line] + 1

    def error(self, reason: str, offset: int) -> ParseError:
        line, column = self.where(max(offset, 0))
        return ParseError(reason, line, column)


def _split(text: str, lines: _Lines) -> list[tuple[_Op, list[tuple[_Op, int, int]]]]:
    """Scan the text once: refuse what no expression may hold and what is too long or deep, and
    split it at its top-level + and - (terms) and then * and / (factors).

    Returns [(sign, [(op, start, end) per factor]) per term]; the first sign and op are Add and
    Mult (folding starts from nothing). Every factor's brackets balance, so it parses alone.
    """
    return _Scanner(text, lines).split()


class _Scanner:
    """``_split``'s one pass over the text: a token at a time, with what the tokens so far leave
    open (the current term and factor, the brackets, how deep the current level sits)."""

    def __init__(self, text: str, lines: _Lines) -> None:
        self.text = text
        self.lines = lines
        self.terms: list[tuple[_Op, list[tuple[_Op, int, int]]]] = []
        self.factors: list[tuple[_Op, int, int]] = []
        self.sign: _Op = ast.Add
        self.op: _Op = ast.Mult
        self.start = 0  # where the current factor begins
        self.last_op = -1  # where the operator before it is, for "needs an operand" errors
        # Brackets open around here: (bracket, offset, the enclosing level's chain when it opened).
        self.stack: list[tuple[str, int, int]] = []
        # Unary signs, 'not' and ** applied in a row at this level: each nests what follows.
        self.chain = 0
        self.nested = 0  # len(stack) plus the chains saved on it: how deep the current level sits
        self.operators = 0  # operator tokens in the current factor
        self.operand = False  # the last token ends an operand (so a following + or - is binary)

    def split(self) -> list[tuple[_Op, list[tuple[_Op, int, int]]]]:
        i, n = 0, len(self.text)
        while i < n:
            i = self._token(i)
        if self.stack:
            bracket, at, _ = self.stack[-1]
            raise self.lines.error(f"{bracket!r} was never closed", at)
        self._cut(n)
        self.terms.append((self.sign, self.factors))
        return self.terms

    def _token(self, i: int) -> int:
        """Take in the token at ``i``; return the offset just past it."""
        text, c = self.text, self.text[i]
        if c in " \t":
            return i + 1
        if c == "\n":
            if not self.stack:
                raise self.lines.error("a line break outside brackets is not allowed", i)
            return i + 1
        if not c.isprintable():  # control characters, surrogates, zero-width spaces ...
            raise self.lines.error(f"the non-printable character U+{ord(c):04X} is not allowed", i)
        if c in "'\"":
            # Skipped, not refused here: the tree then says what the string is part of (a call
            # of open, a dict ...), and refuses the string itself if nothing else.
            self.operand = True
            return _skip_string(text, i, self.lines)
        if c == "#":
            raise self.lines.error("comments (#) are not allowed", i)
        if c.isidentifier():
            return self._word(i)
        if c in "0123456789" or (c == "." and i + 1 < len(text) and text[i + 1] in "0123456789"):
            return self._number(i)
        if c in _OPEN:
            self._open(i)
            return i + 1
        if c in _CLOSE:
            self._close(i)
            return i + 1
        two = text[i : i + 2]
        if two in ("**", "//"):
            self._operator(i, nests=two == "**")  # right-associative: a ** b ** c nests
            return i + 2
        top = not self.stack and self.operand
        if top and (c in "+-" or (c in "*/" and text[i + 1 : i + 2] != "=")):
            self._top_level(i)
            return i + 1
        self._operator(i, nests=c in "+-~" and not self.operand)  # a unary sign nests its operand
        return i + 1

    def _word(self, i: int) -> int:
        """A name, keyword or string prefix starting at ``i``."""
        text, n = self.text, len(self.text)
        j = i + 1
        while j < n and ("a" + text[j]).isidentifier():
            j += 1
        word = text[i:j]
        if j < n and text[j] in "'\"" and word.lower() in _STRING_PREFIXES:
            if "f" in word.lower():
                # Refused now: Python parses the expressions inside an f-string apart,
                # beyond the limits counted here.
                raise self.lines.error("f-strings are not allowed", i)
            self.operand = True
            return _skip_string(text, j, self.lines)
        if keyword.iskeyword(word) and word not in ("True", "False", "None"):
            self._operator(i, nests=word == "not")  # a unary operator: it nests what follows
        else:
            self.operand = True
        return j

    def _number(self, i: int) -> int:
        """A number literal starting at ``i`` (Python's parser judges whether it is well formed)."""
        text, n = self.text, len(self.text)
        j = i + 1
        decimal = text[i : i + 2].lower() not in ("0x", "0o", "0b")
        while j < n and (text[j].isalnum() or text[j] in "._"):
            j += 1
            # An exponent's sign belongs to the number: 1e-5, not 1e - 5.
            if decimal and text[j - 1] in "eE" and j < n and text[j] in "+-":
                j += 1
        self.operand = True
        return j

    def _open(self, i: int) -> None:
        self._count(i)
        self.stack.append((self.text[i], i, self.chain))
        self.nested += 1 + self.chain
        self.chain = 0
        self._deeper(i)
        self.operand = False

    def _close(self, i: int) -> None:
        c = self.text[i]
        if not self.stack:
            raise self.lines.error(f"unmatched {c!r}", i)
        bracket, at, saved = self.stack.pop()
        if bracket != _CLOSE[c]:
            line, column = self.lines.where(at)
            # Named as ParseError names a place: the line only once the text has reached line 2.
            place = (
                f"column {column}"
                if self.lines.where(i)[0] == 1
                else f"line {line}, column {column}"
            )
            raise self.lines.error(f"{c!r} does not match {bracket!r} at {place}", i)
        self.nested -= 1 + saved
        self.chain = saved  # -(x) ** y: the sign before the bracket still applies after it
        self.operand = True

    def _operator(self, at: int, nests: bool) -> None:
        """An operator inside a factor; one that ``nests`` (a unary sign, 'not', **) puts what
        follows one level deeper."""
        self._count(at)
        if nests:
            self.chain += 1
            self._deeper(at)
        else:
            self.chain = 0
        self.operand = False

    def _top_level(self, at: int) -> None:
        """A binary + or - (a new term) or * or / (a new factor) outside brackets."""
        c = self.text[at]
        self._cut(at)
        if c in "+-":
            self.terms.append((self.sign, self.factors))
            self.factors, self.sign, self.op = [], ast.Add if c == "+" else ast.Sub, ast.Mult
        else:
            self.op = ast.Mult if c == "*" else ast.Div
        self.last_op, self.chain, self.operand = at, 0, False

    def _cut(self, at: int) -> None:
        """End the current factor at ``at``; the next one starts after it."""
        if not self.text[self.start : at].strip():
            if self.last_op < 0:
                raise self.lines.error("an operand is missing", at)
            raise self.lines.error(
                f"{self.text[self.last_op]!r} needs an operand on its right", self.last_op
            )
        self.factors.append((self.op, self.start, at))
        self.start, self.operators = at + 1, 0

    def _deeper(self, at: int) -> None:
        if self.nested + self.chain > MAX_DEPTH:
            raise self.lines.error(
                f"nesting deeper than {MAX_DEPTH} levels (brackets, calls, signs and powers "
                "inside one another) is not allowed",
                at,
            )

    def _count(self, at: int) -> None:
        self.operators += 1
        if self.operators > MAX_OPERATORS:
            raise self.lines.error(
                f"more than {MAX_OPERATORS:,} operators inside one bracket or factor are not "
                "allowed (only sums and products outside brackets may be longer)",
                at,
            )


def _skip_string(text: str, start: int, lines: _Lines) -> int:
    """The offset just past the string literal whose quote is at ``start``."""
    quote = text[start] * 3 if text.startswith(text[start] * 3, start) else text[start]
    i, n = start + len(quote), len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if text.startswith(quote, i):
            return i + len(quote)
        if not c.isprintable() and c not in "\t\n":
            raise lines.error(f"the non-printable character U+{ord(c):04X} is not allowed", i)
        if c == "\n" and len(quote) == 1:
            break
        i += 1
    raise lines.error("a string that is never closed is not allowed", start)


def _parse_piece(text: str, start: int, end: int, lines: _Lines) -> ast.expr:
    """ast.parse one factor, in brackets (so that it may span lines, as inside brackets)."""
    source = "(" + text[start:end] + ")"
    try:
        with warnings.catch_warnings():
            # "invalid escape sequence" and the like: the text is refused anyway.
            warnings.simplefilter("ignore")
            tree = ast.parse(source, mode="eval")
    except SyntaxError as e:
        offset = start - 1 + _source_offset(source, e.lineno or 1, (e.offset or 1) - 1, chars=True)
        reason = (e.msg or "invalid syntax") + _product_hint(text[start:end])
        raise lines.error(f"syntax error: {reason}", min(max(offset, start), end)) from None
    except (RecursionError, MemoryError):
        # The limits above keep ast.parse far from these; this is the backstop.
        raise lines.error("too deeply nested for Python's parser", start) from None
    except ValueError as e:  # the scan refuses what raises this (null bytes ...); a backstop
        raise lines.error(f"Python's parser cannot read this: {e}", start) from None
    return tree.body


_NUMBER_THEN_NAME = re.compile(r"(?<![\w.])(\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)([A-Za-z_]\w*)")


def _product_hint(piece: str) -> str:
    """ "; write 2*x to multiply" for a number written against a name, as in 2x + 1."""
    for m in _NUMBER_THEN_NAME.finditer(piece):
        try:
            float(m[0])  # 1e5 and 2e-3 are numbers, not 1 times e5
        except ValueError:
            return f"; write {m[1]}*{m[2]} to multiply"
    return ""


def _source_offset(source: str, line: int, column: int, chars: bool = False) -> int:
    """The character offset in ``source`` of (line, column), column in UTF-8 bytes as ``ast``
    gives them unless ``chars``."""
    lines = source.split("\n")
    line = min(max(line, 1), len(lines))
    before = sum(len(s) + 1 for s in lines[: line - 1])
    text = lines[line - 1]
    if not chars:
        column = len(text.encode("utf-8")[:column].decode("utf-8", errors="ignore"))
    return before + min(max(column, 0), len(text))


# --- the tree, after ast.parse ------------------------------------------------------------------


class _Checker:
    """Walks a factor's tree (with an explicit stack) and refuses anything off the allow-list."""

    def __init__(
        self, lines: _Lines, shift: int, piece: str, names: dict[str, tuple[int, int]]
    ) -> None:
        self.lines = lines
        self.shift = shift  # the text's offset of the wrapped source's first character
        self.source = "(" + piece + ")"
        self.names = names

    def offset(self, node: ast.AST, end: bool = False) -> int:
        """The text's character offset where ``node`` starts (or ends)."""
        if end:
            line, col = node.end_lineno, node.end_col_offset  # type: ignore[attr-defined]
        else:
            line, col = node.lineno, node.col_offset  # type: ignore[attr-defined]
        return self.shift + _source_offset(self.source, line or 1, col or 0)

    def refuse(self, reason: str, node: ast.AST, offset: int | None = None) -> ParseError:
        return self.lines.error(reason, self.offset(node) if offset is None else offset)

    def check(self, root: ast.AST) -> None:
        stack = [root]
        while stack:
            node = stack.pop()
            children: list[ast.AST] = []
            if isinstance(node, ast.BinOp):
                if type(node.op) not in _BINARY:
                    hint = _OPERATOR_HINTS.get(type(node.op), "")
                    raise self.refuse(
                        f"the operator {_OPERATOR_TEXT.get(type(node.op), '?')!r} is not "
                        f"allowed{hint}",
                        node,
                        self._between(node.left, node.right),
                    )
                children = [node.left, node.right]
            elif isinstance(node, ast.UnaryOp):
                if not isinstance(node.op, (ast.USub, ast.UAdd)):
                    raise self.refuse(
                        f"the operator {_OPERATOR_TEXT.get(type(node.op), '?')!r} is not allowed",
                        node,
                    )
                children = [node.operand]
            elif isinstance(node, ast.Constant):
                self._number(node)
            elif isinstance(node, ast.Name):
                if node.id in FUNCTIONS:
                    raise self.refuse(f"{node.id} is a function: call it as {node.id}(...)", node)
                if node.id not in self.names:
                    self.names[node.id] = self.lines.where(self.offset(node))
            elif isinstance(node, ast.Call):
                children = [self._call(node)]
            else:
                raise self._refused(node)
            # Reversed, so the left child comes off the stack first: names are met in the
            # order they appear, and the leftmost refusal is the one reported.
            stack.extend(reversed(children))

    def _refused(self, node: ast.AST) -> ParseError:
        what = _REFUSED.get(type(node), f"{type(node).__name__} expressions are")
        offset = None
        if isinstance(node, ast.Attribute):  # point at the attribute's name
            offset = max(self.offset(node, end=True) - len(node.attr), self.offset(node))
        elif isinstance(node, ast.Subscript):  # point at the index
            offset = self.offset(node.slice)
        elif isinstance(node, ast.Compare):  # point at the operator, the keyword
            offset = self._between(node.left, node.comparators[0])
        elif isinstance(node, ast.BoolOp):
            offset = self._between(node.values[0], node.values[1])
        elif isinstance(node, ast.IfExp):
            offset = self._between(node.body, node.test)
        return self.refuse(f"{what} not allowed", node, offset)

    def _number(self, node: ast.Constant) -> None:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):  # True is an int
            what = _NOT_A_NUMBER.get(type(value), f"{type(value).__name__} values are")
            raise self.refuse(f"{what} not allowed (only int and float numbers)", node)
        try:
            finite = math.isfinite(float(value))
        except OverflowError:
            finite = False
        if not finite:
            raise self.refuse("a number too large for a float is not allowed", node)

    def _call(self, node: ast.Call) -> ast.AST:
        func = node.func
        if isinstance(func, ast.Attribute):  # os.system(...): the attribute is the problem
            raise self._refused(func)
        if not isinstance(func, ast.Name):
            raise self.refuse("calling anything but a function's name is not allowed", node)
        if func.id not in FUNCTIONS:
            raise self.refuse(
                f"calling {func.id!r} is not allowed{_suggest(func.id, FUNCTIONS)} "
                f"(only {', '.join(FUNCTIONS)})",
                node,
            )
        if node.keywords:
            raise self.refuse("keyword arguments are not allowed", node.keywords[0])
        starred = [a for a in node.args if isinstance(a, ast.Starred)]
        if starred:
            raise self.refuse("starred arguments (*x) are not allowed", starred[0])
        if len(node.args) != 1:
            raise self.refuse(f"{func.id}() takes exactly one argument, got {len(node.args)}", node)
        return node.args[0]

    def _between(self, left: ast.AST, right: ast.AST) -> int:
        """Where a binary operator is: the first character after ``left`` that is not a space or
        a closing bracket (the text is all ASCII there, or ast.parse would have refused it)."""
        at, stop = self.offset(left, end=True), self.offset(right)
        text = self.source
        # Walk in the wrapped source's coordinates.
        i = at - self.shift
        while i < stop - self.shift and text[i] in " \t\n)\\":
            i += 1
        return self.shift + i


def _suggest(name: str, known: Any) -> str:
    """ ", did you mean 'tanh'?" for a name close to one of ``known``, else ""."""
    candidates = list(known)
    close = difflib.get_close_matches(name, candidates, n=2, cutoff=0.6)
    if not close:
        close = difflib.get_close_matches(name.lower(), candidates, n=2, cutoff=0.6)
    alias = _FUNCTION_ALIASES.get(name.lower())
    if alias in candidates and alias not in close:
        close.insert(0, alias)
    if not close:
        return ""
    return ": did you mean " + " or ".join(repr(c) for c in close) + "?"


# --- values -------------------------------------------------------------------------------------


def _bind(values: dict[str, Any]) -> dict[str, Value]:
    bound: dict[str, Value] = {}
    for name, v in values.items():
        if isinstance(v, Value):
            if not v.label:
                v.label = name
            bound[name] = v
        elif isinstance(v, numbers.Real) and not isinstance(v, (bool, Node)):
            bound[name] = Value(float(v), label=name)
        else:
            raise TypeError(
                f"the value of {name!r} must be a real number or a Value, got "
                f"{type(v).__name__}: {v!r:.60}"
            )
    return bound


def _constant(node: ast.expr) -> float | None:
    """The number a literal (maybe signed) stands for, or None when ``node`` is not one."""
    sign = 1.0
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        sign = -1.0 if isinstance(node.op, ast.USub) else 1.0
        node = node.operand
    value = node.value if isinstance(node, ast.Constant) else None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return sign * float(value)
    return None


def _evaluate(root: ast.expr, bound: dict[str, Value]) -> Value:
    """Build the Value graph of a checked tree, iteratively (post-order with an explicit stack),
    so a deep tree costs no Python recursion."""
    stack: list[tuple[ast.AST, bool]] = [(root, False)]
    out: list[Value] = []
    while stack:
        node, ready = stack.pop()
        number = _constant(node) if isinstance(node, (ast.Constant, ast.UnaryOp)) else None
        if number is not None:
            # A literal, sign included, is one constant leaf: -2 reads better than neg(2).
            out.append(Value.constant(number))
        elif isinstance(node, ast.Name):
            out.append(bound[node.id])
        elif not ready:
            stack.append((node, True))
            if isinstance(node, ast.BinOp):
                # x ** 2: a constant exponent is the op's param (one Pow node), as in
                # Python code; anything else is a Value exponent.
                if isinstance(node.op, ast.Pow) and _constant(node.right) is not None:
                    stack.append((node.left, False))
                else:
                    stack.extend([(node.right, False), (node.left, False)])
            elif isinstance(node, ast.UnaryOp):
                stack.append((node.operand, False))
            elif isinstance(node, ast.Call):
                stack.append((node.args[0], False))
        elif isinstance(node, ast.BinOp):
            exponent = _constant(node.right) if isinstance(node.op, ast.Pow) else None
            if exponent is not None:
                out.append(out.pop() ** exponent)
            else:
                right, left = out.pop(), out.pop()
                out.append(_BINARY[type(node.op)](left, right))
        elif isinstance(node, ast.UnaryOp):
            operand = out.pop()
            out.append(-operand if isinstance(node.op, ast.USub) else operand)
        elif isinstance(node, ast.Call):
            assert isinstance(node.func, ast.Name)
            out.append(FUNCTIONS[node.func.id](out.pop()))
    assert len(out) == 1
    return out[0]
