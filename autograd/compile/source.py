"""Functions from lines: chunked, so that no generated function grows enormous."""

from __future__ import annotations

import builtins
import itertools
import linecache
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .emit import _Line

if TYPE_CHECKING:
    from .program import _Program


# Statements per generated function. A straight-line function of 100,000 statements takes
# seconds to build and makes each call's frame enormous; chunks keep both small.
CHUNK = 2_000

_DEFINED = itertools.count()  # a new file name for each generated source


def _render(ln: _Line | str, pad: str) -> str:
    if isinstance(ln, _Line):
        return f"{pad}{ln.target} = {ln.expr}"
    return f"{pad}{ln}"


def _functions(
    name: str, head: list[str], lines: list[_Line | str], returns: list[str], saved: set[str]
) -> tuple[list[str], list[str]]:
    """Source of ``def name(*head)``: the lines, in pieces of at most CHUNK statements.

    The values in ``saved`` are appended to the list ``S`` (a head argument) as they are made;
    the second result is their order there. The function returns the names in ``returns``.
    """
    pieces: list[list[_Line | str]] = [[]]
    count = 0
    for ln in lines:
        if isinstance(ln, _Line):
            if count == CHUNK:
                pieces.append([])
                count = 0
            count += 1
        pieces[-1].append(ln)
    order: list[str] = []
    bodies: list[list[str]] = []
    for piece in pieces:
        body = [_render(ln, "    ") for ln in piece]
        saves = [ln.target for ln in piece if isinstance(ln, _Line) and ln.target in saved]
        if saves:
            body.append(
                f"    S.extend({_tuple(saves)})" if len(saves) > 1 else f"    S.append({saves[0]})"
            )
            order += saves
        bodies.append(body)
    if len(pieces) == 1:
        return [
            f"def {name}({', '.join(head)}):",
            *bodies[0],
            f"    return {_tuple(returns)}",
            "",
        ], order
    # Each piece is a function of the head and of the values earlier pieces made that it uses;
    # it returns the values it made that later pieces (or the result) use.
    made = [{ln.target for ln in p if isinstance(ln, _Line)} for p in pieces]
    uses = [{u for ln in p if isinstance(ln, _Line) for u in ln.uses} for p in pieces]
    later: set[str] = set(returns)
    outs: list[list[str]] = [[] for _ in pieces]
    for i in range(len(pieces) - 1, -1, -1):
        outs[i] = sorted(made[i] & later, key=_name_key)
        later |= uses[i]
    src: list[str] = []
    calls: list[str] = []
    earlier: set[str] = set()
    for i, body in enumerate(bodies):
        ins = sorted((uses[i] & earlier) - set(head), key=_name_key)
        args = ", ".join([*head, *ins])
        src += [f"def {name}_{i}({args}):", *body, f"    return {_tuple(outs[i])}", ""]
        call = f"{name}_{i}({args})"
        calls.append(f"    {_tuple(outs[i])} = {call}" if outs[i] else f"    {call}")
        earlier |= made[i]
    src += [f"def {name}({', '.join(head)}):", *calls, f"    return {_tuple(returns)}", ""]
    return src, order


def _tuple(names: list[str]) -> str:
    if not names:
        return "()"
    return f"({names[0]},)" if len(names) == 1 else "(" + ", ".join(names) + ")"


def _name_key(name: str) -> tuple[str, int]:
    head = name.rstrip("0123456789")
    return head, int(name[len(head) :] or 0)


def _prune(lines: list[_Line | str], live: set[str]) -> list[_Line | str]:
    """Drop assignments nothing uses (the product a skipped input would have had)."""
    need = set(live)
    kept: list[_Line | str] = []
    for ln in reversed(lines):
        if isinstance(ln, _Line):
            if ln.target not in need:
                continue
            need.update(ln.uses)
        kept.append(ln)
    kept.reverse()
    out: list[_Line | str] = []  # a comment whose lines all went goes too
    for i, ln in enumerate(kept):
        if isinstance(ln, str) and (i + 1 == len(kept) or isinstance(kept[i + 1], str)):
            continue
        out.append(ln)
    return out


def _define(prog: _Program, src: list[str], name: str) -> Callable[..., Any]:
    text = "\n".join(src) + "\n"
    # Generated from the op table, our own names and number literals only (see _Emitter.fmt):
    # no text of the user's reaches this source. Registered with linecache under a name of its
    # own, so that tracebacks and pdb show the generated lines.
    filename = f"<backproplab.compile {name} {next(_DEFINED)}>"
    linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    code = builtins.compile(text, filename, "exec")
    exec(code, prog.globals)
    fn: Callable[..., Any] = prog.globals[name]
    return fn
