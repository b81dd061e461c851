"""README.md is a learner's first page: short, in words a newcomer knows, its calls written with
keywords, its links and line counts true. (Its examples run as doctests: pytest collects it.)"""

from __future__ import annotations

import ast
import doctest
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAX_LINES = 200

# Words a newcomer cannot know: names of the project's own history and internals.
JARGON = [
    r"write-?up",
    r"configurable MLP",
    r"makes_new_arrays",
    r"page faults?",
    r"\bseed \d{3}\b",
    r"\bseed0\d\d",
]

# The most positional arguments a call may take before the rest must be keywords: the ones
# whose meaning is plain from the call (a model, the sizes of a layer, the data).
POSITIONAL = {
    "MLPTrainer": 1,
    "MLP": 2,
    "Linear": 2,
    "train": 4,
    "two_moons": 0,
    "train_val_split": 2,
    "compare_gradients": None,  # f, by_hand and the inputs are all positional by nature
}


def _text() -> str:
    return README.read_text(encoding="utf-8")


# Where the learner's first part ends: what follows is for when speed matters.
SECOND_PART = "## Compiled training steps"


def test_readme_first_part_is_short() -> None:
    text = _text()
    assert SECOND_PART in text, f"README.md has no {SECOND_PART!r} heading"
    lines = text[: text.index(SECOND_PART)].splitlines()
    assert len(lines) <= MAX_LINES, (
        f"README.md's first part has {len(lines)} lines, over {MAX_LINES}"
    )
    total = len(text.splitlines())
    assert total <= MAX_LINES + 60, f"README.md has {total} lines: move reference to docs/"


# The pages a learner reads first: this README and the notebooks.
PAGES = ["README.md", "notebooks/lecture.ipynb", "notebooks/teacher.ipynb"]


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("pattern", JARGON)
def test_first_pages_have_no_project_jargon(page: str, pattern: str) -> None:
    found = re.search(pattern, (ROOT / page).read_text(encoding="utf-8"), re.IGNORECASE)
    assert found is None, f"{page} says {found.group(0)!r}" if found else ""


def _calls() -> list[tuple[str, ast.Call, str]]:
    examples = doctest.DocTestParser().get_examples(_text())
    assert examples, "README.md has no examples"
    calls = []
    for example in examples:
        tree = ast.parse(example.source)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                calls.append((name, node, example.source.strip()))
    return calls


def test_readme_calls_use_keywords() -> None:
    checked = set()
    for name, call, source in _calls():
        limit = POSITIONAL.get(name)
        if limit is None:
            continue
        checked.add(name)
        assert len(call.args) <= limit, (
            f"README.md calls {name} with {len(call.args)} positional arguments "
            f"(at most {limit}; name the rest): {source}"
        )
    assert {"MLPTrainer", "MLP", "Linear", "train_val_split"} <= checked


def test_readme_links_exist() -> None:
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", _text())
    local = [t for t in targets if not re.match(r"[a-z]+://", t)]
    assert "docs/reference.md" in local
    for target in local:
        assert (ROOT / target).exists(), f"README.md links to {target}, which does not exist"


def test_readme_line_counts_hold() -> None:
    rows = re.findall(r"^\| \[([^\]]+)\]\([^)]+\) \|[^|]*\| about (\d+) \|$", _text(), re.M)
    assert len(rows) >= 3, "the afternoon's reading names its files and their length"
    for path, stated in rows:
        actual = len((ROOT / path).read_text(encoding="utf-8").splitlines())
        # "about": rounded to tens, and a file may grow or shrink a little before anyone
        # updates the README; past a tenth the count is wrong.
        assert abs(int(stated) - actual) <= max(20, actual // 10), (
            f"README.md says {path} has about {stated} lines; it has {actual}"
        )
